//! An Erlang node in this process: registered with EPMD, accepting distribution connections
//! (cookie handshake) and connecting out, delivering what it receives as [`Event`]s.
//!
//! Invariants:
//! - threads: one acceptor, one per connection (handshake, then reading). They only read the
//!   network and push events into one channel; nothing here calls Python. Create a `Node` only
//!   in a process that will not fork (the master runs it in a child of its own).
//! - a peer that fails the cookie check gets no connection: the handshake ends, the socket
//!   closes, and [`Event::Refused`] says who and why.
//! - every connection answers the peer's ticks, so the peer does not drop us as dead, and is
//!   closed after [`IDLE_LIMIT`] without a byte from the peer (a peer ticks every 15 s by default).
//! - the EPMD registration lives as long as the `Node` (its TCP connection).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use erl_dist::LOWEST_DISTRIBUTION_PROTOCOL_VERSION;
use erl_dist::epmd::{EpmdClient, NodeEntry};
use erl_dist::handshake::{ClientSideHandshake, HandshakeStatus, ServerSideHandshake};
use erl_dist::message::{self, Message};
use erl_dist::node::{LocalNode, NodeName};
use erl_dist::term::{Atom, Pid, Reference, Term};
use futures::executor::block_on;
use futures::io::{AsyncRead, AsyncWrite};

/// EPMD's port when `ERL_EPMD_PORT` does not say otherwise.
pub const DEFAULT_EPMD_PORT: u16 = 4369;
/// How long a handshake or an EPMD exchange may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection silent for this long is closed (4 of Erlang's default 15 s ticks, plus slack).
pub const IDLE_LIMIT: Duration = Duration::from_secs(75);
/// Events waiting for the Python loop; a full queue makes the readers wait (back-pressure).
const EVENT_QUEUE: usize = 1024;

/// Errors of the node.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A node name that is not `name@host` (or too long).
    #[error("bad Erlang node name {name:?}: {reason}")]
    Name { name: String, reason: String },
    /// EPMD could not be reached or refused the registration.
    #[error("EPMD at {addr}: {reason}")]
    Epmd { addr: String, reason: String },
    /// A peer node could not be reached or refused us.
    #[error("cannot connect to Erlang node {node}: {reason}")]
    Connect { node: String, reason: String },
    /// Sending on an established connection failed.
    #[error("cannot send to Erlang node {node}: {reason}")]
    Send { node: String, reason: String },
    /// A message that is not a term Erlang accepts.
    #[error(transparent)]
    Term(#[from] super::term::Error),
    /// Binding or accepting.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Where a received message goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Dest {
    /// A registered name (`{Name, Node} ! Msg`).
    Name(String),
    /// A pid of this node.
    Pid(Pid),
    /// A process alias of this node.
    Alias(Reference),
}

/// What the node saw.
#[derive(Debug)]
pub enum Event {
    /// A message for a process of this node; `from` is the sender when the peer said (a
    /// registered send always does).
    Message {
        peer: String,
        to: Dest,
        from: Option<Pid>,
        message: Term,
    },
    /// A peer completed the handshake (in or out).
    Connected { peer: String },
    /// An incoming connection was refused (wrong cookie, bad handshake); `peer` when it gave
    /// its name.
    Refused {
        peer: Option<String>,
        reason: String,
    },
    /// A connection ended.
    Closed { peer: String, reason: String },
}

/// Largest distribution frame a peer may send: erl_dist reads a whole frame into memory.
pub const MAX_FRAME: usize = 64 << 20;

/// A TCP stream shared by the reading thread and the writers, used by `erl_dist`'s async code
/// through blocking calls: every poll completes at once, so `block_on` never parks.
///
/// [`Stream::framed`] is the established connection's message channel: reads come a whole frame
/// at a time, and a frame's terms are size-checked ([`crate::erlang::check`]) before erl_dist
/// decodes them: its decoder trusts declared counts, and a peer's garbage would otherwise abort
/// the node. A frame that fails the check, or is over [`MAX_FRAME`], ends the connection with
/// the reason.
#[derive(Clone)]
struct Stream {
    tcp: Arc<TcpStream>,
    /// With framing: the frame being served and how much of it was read.
    frame: Option<(Vec<u8>, usize)>,
}

impl Stream {
    fn raw(tcp: Arc<TcpStream>) -> Self {
        Stream { tcp, frame: None }
    }

    fn framed(tcp: Arc<TcpStream>) -> Self {
        Stream {
            tcp,
            frame: Some((Vec::new(), 0)),
        }
    }
}

/// The next frame from `tcp`, length prefix included, once its terms passed the check.
fn next_frame(tcp: &TcpStream) -> io::Result<Vec<u8>> {
    let bad = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
    let mut tcp = tcp;
    let mut len = [0u8; 4];
    tcp.read_exact(&mut len)?;
    let n = u32::from_be_bytes(len) as usize;
    if n > MAX_FRAME {
        return Err(bad(format!("a frame of {n} bytes (at most {MAX_FRAME})")));
    }
    let mut frame = Vec::with_capacity(4 + n);
    frame.extend_from_slice(&len);
    frame.resize(4 + n, 0);
    tcp.read_exact(&mut frame[4..])?;
    check_frame(&frame[4..]).map_err(bad)?;
    Ok(frame)
}

/// A frame is empty (a tick), or the pass-through tag then terms, each behind its version byte.
/// Anything else is left to erl_dist, which refuses it without decoding.
fn check_frame(frame: &[u8]) -> Result<(), String> {
    let Some((&112, mut rest)) = frame.split_first() else {
        return Ok(());
    };
    while let Some((&version, term)) = rest.split_first() {
        if version != 131 {
            return Err(format!("a term starting with byte {version}, not 131"));
        }
        let used = crate::erlang::check::term_len(term)?;
        rest = &term[used..];
    }
    Ok(())
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        let Some((frame, at)) = &mut me.frame else {
            return Poll::Ready((&*me.tcp).read(buf));
        };
        if *at == frame.len() {
            // Nothing is served from a frame that failed: empty until one is read and checked.
            frame.clear();
            *at = 0;
            match next_frame(&me.tcp) {
                Ok(f) => *frame = f,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        let n = buf.len().min(frame.len() - *at);
        buf[..n].copy_from_slice(&frame[*at..*at + n]);
        *at += n;
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready((&*self.tcp).write(buf))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready((&*self.tcp).flush())
    }
    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.tcp.shutdown(Shutdown::Write))
    }
}

/// An established connection's sending half.
struct Conn {
    stream: Arc<TcpStream>,
    tx: Mutex<message::Sender<Stream>>,
}

impl Conn {
    fn send(&self, msg: Message) -> Result<(), String> {
        block_on(lock(&self.tx).send(msg)).map_err(|e| e.to_string())
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct Shared {
    local: LocalNode,
    cookie: String,
    epmd_port: u16,
    conns: Mutex<HashMap<String, Arc<Conn>>>,
    events: SyncSender<Event>,
    closed: AtomicBool,
}

/// A node of an Erlang cluster living in this process.
pub struct Node {
    shared: Arc<Shared>,
    events: Mutex<Receiver<Event>>,
    addr: SocketAddr,
    epmd: Mutex<Option<TcpStream>>,
}

/// Splits `name@host`; a name without `@` gets this machine's short host name, as `erl -sname`.
pub fn parse_name(full: &str) -> Result<NodeName, Error> {
    let bad = |reason: String| Error::Name {
        name: full.to_owned(),
        reason,
    };
    let (name, host) = match full.split_once('@') {
        Some((n, h)) => (n.to_owned(), h.to_owned()),
        None => {
            let host = crate::spool::name::hostname();
            (
                full.to_owned(),
                host.split('.').next().unwrap_or(host).to_owned(),
            )
        }
    };
    if name.contains('@') || host.contains('@') {
        return Err(bad("more than one '@'".into()));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(bad(
            "the name part may hold letters, digits, '_' and '-' only".into(),
        ));
    }
    NodeName::new(&name, &host).map_err(|e| bad(e.to_string()))
}

fn resolve(host: &str, port: u16) -> io::Result<SocketAddr> {
    let mut addrs: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
    // Erlang's distribution over inet_tcp is IPv4.
    addrs.sort_by_key(|a| !a.is_ipv4());
    addrs.into_iter().next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{host} resolves to no address"),
        )
    })
}

fn connect(addr: SocketAddr) -> io::Result<Arc<TcpStream>> {
    let s = TcpStream::connect_timeout(&addr, HANDSHAKE_TIMEOUT)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
    s.set_write_timeout(Some(HANDSHAKE_TIMEOUT))?;
    Ok(Arc::new(s))
}

impl Node {
    /// Starts the node `name` (`name@host`): listens on the address `host` resolves to (an
    /// ephemeral port), registers with the EPMD on this machine (`127.0.0.1:epmd_port`) as a
    /// hidden node, as C nodes do, and accepts connections whose handshake proves `cookie`.
    pub fn start(name: &str, cookie: &str, epmd_port: u16) -> Result<Node, Error> {
        let node_name = parse_name(name)?;
        let bind_ip = resolve(node_name.host(), 0)
            .map_err(|e| Error::Name {
                name: name.to_owned(),
                reason: format!("host {}: {e}", node_name.host()),
            })?
            .ip();
        let listener = TcpListener::bind((bind_ip, 0))?;
        let addr = listener.local_addr()?;

        let epmd_addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), epmd_port);
        let epmd_err = |reason: String| Error::Epmd {
            addr: epmd_addr.to_string(),
            reason,
        };
        let epmd = connect(epmd_addr).map_err(|e| {
            epmd_err(format!(
                "{e} (start it with `epmd -daemon`, or start any Erlang node, which starts it)"
            ))
        })?;
        let entry = NodeEntry::new_hidden(node_name.name(), addr.port());
        let (epmd_conn, creation) =
            block_on(EpmdClient::new(Stream::raw(epmd.clone())).register(entry)).map_err(|e| {
                epmd_err(format!(
                    "registration of {} refused: {e} (is a node of that name running?)",
                    node_name.name()
                ))
            })?;
        drop(epmd_conn);
        // The registration lasts as long as this connection; no more reads are expected.
        epmd.set_read_timeout(None)?;

        let (tx, rx) = mpsc::sync_channel(EVENT_QUEUE);
        let shared = Arc::new(Shared {
            local: LocalNode::new(node_name, creation),
            cookie: cookie.to_owned(),
            epmd_port,
            conns: Mutex::new(HashMap::new()),
            events: tx,
            closed: AtomicBool::new(false),
        });
        let acceptor = shared.clone();
        std::thread::Builder::new()
            .name("erlang-accept".into())
            .spawn(move || accept_loop(&acceptor, &listener))?;
        let epmd = Arc::try_unwrap(epmd).ok();
        Ok(Node {
            shared,
            events: Mutex::new(rx),
            addr,
            epmd: Mutex::new(epmd),
        })
    }

    /// The full node name (`name@host`).
    pub fn name(&self) -> String {
        self.shared.local.name.to_string()
    }

    /// The port the node listens on (registered with EPMD).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The creation EPMD gave this incarnation.
    pub fn creation(&self) -> u32 {
        self.shared.local.creation.get()
    }

    /// The next event, waiting at most `timeout`; `None` when none came.
    pub fn recv(&self, timeout: Duration) -> Option<Event> {
        // Disconnected cannot happen while the node holds its own sender.
        lock(&self.events).recv_timeout(timeout).ok()
    }

    /// Sends `message` to the process `to` (on any node, connecting to it if needed).
    pub fn send(&self, to: &Pid, message: Term) -> Result<(), Error> {
        let node = to.node.name.clone();
        let conn = self.shared.conn(&node)?;
        conn.send(Message::send(to.clone(), message))
            .map_err(|reason| self.shared.send_failed(&node, reason))
    }

    /// Sends `message` to the process registered as `name` on `node` (`{Name, Node} ! Msg`),
    /// from this node's pid `<0.0.0>`.
    pub fn reg_send(&self, node: &str, name: &str, message: Term) -> Result<(), Error> {
        let node = parse_name(node)?.to_string();
        let conn = self.shared.conn(&node)?;
        let from = self.shared.self_pid();
        conn.send(Message::reg_send(from, Atom::from(name), message))
            .map_err(|reason| self.shared.send_failed(&node, reason))
    }

    /// Unregisters from EPMD and closes every connection; the node receives nothing more.
    pub fn close(&self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        lock(&self.epmd).take();
        for (_, c) in lock(&self.shared.conns).drain() {
            let _ = c.stream.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.close();
    }
}

impl Shared {
    fn self_pid(&self) -> Pid {
        Pid::new(self.local.name.to_string(), 0, 0, self.local.creation.get())
    }

    fn event(&self, ev: Event) {
        // The receiver is gone only when the node is being dropped.
        let _ = self.events.send(ev);
    }

    fn send_failed(&self, node: &str, reason: String) -> Error {
        if let Some(c) = lock(&self.conns).remove(node) {
            let _ = c.stream.shutdown(Shutdown::Both);
        }
        Error::Send {
            node: node.to_owned(),
            reason,
        }
    }

    /// The connection to `node`, made now if there is none.
    fn conn(self: &Arc<Self>, node: &str) -> Result<Arc<Conn>, Error> {
        if let Some(c) = lock(&self.conns).get(node) {
            return Ok(c.clone());
        }
        let fail = |reason: String| Error::Connect {
            node: node.to_owned(),
            reason,
        };
        let peer_name = parse_name(node)?;
        let epmd =
            connect(resolve(peer_name.host(), self.epmd_port).map_err(|e| fail(e.to_string()))?)
                .map_err(|e| fail(format!("its EPMD: {e}")))?;
        let entry = block_on(EpmdClient::new(Stream::raw(epmd)).get_node(peer_name.name()))
            .map_err(|e| fail(format!("its EPMD: {e}")))?
            .ok_or_else(|| fail("no such node in its EPMD".into()))?;
        let addr = resolve(peer_name.host(), entry.port).map_err(|e| fail(e.to_string()))?;
        let stream = connect(addr).map_err(|e| fail(e.to_string()))?;
        let mut hs = ClientSideHandshake::new(
            Stream::raw(stream.clone()),
            self.local.clone(),
            &self.cookie,
        );
        let status = block_on(hs.execute_send_name(LOWEST_DISTRIBUTION_PROTOCOL_VERSION))
            .map_err(|e| fail(e.to_string()))?;
        let (_, peer) = block_on(hs.execute_rest(matches!(status, HandshakeStatus::Alive)))
            .map_err(|e| fail(format!("handshake: {e} (a wrong cookie looks like this)")))?;
        let peer = peer.name.to_string();
        Ok(self.established(&peer, stream))
    }

    /// Records a connection whose handshake succeeded and starts its reader.
    fn established(self: &Arc<Self>, peer: &str, stream: Arc<TcpStream>) -> Arc<Conn> {
        let _ = stream.set_read_timeout(Some(IDLE_LIMIT));
        let _ = stream.set_write_timeout(Some(HANDSHAKE_TIMEOUT));
        let (tx, rx) = message::channel(Stream::framed(stream.clone()), self.local.flags);
        let conn = Arc::new(Conn {
            stream,
            tx: Mutex::new(tx),
        });
        if let Some(old) = lock(&self.conns).insert(peer.to_owned(), conn.clone()) {
            let _ = old.stream.shutdown(Shutdown::Both);
        }
        self.event(Event::Connected {
            peer: peer.to_owned(),
        });
        let me = self.clone();
        let (peer_name, reader_conn) = (peer.to_owned(), conn.clone());
        let spawned = std::thread::Builder::new()
            .name("erlang-conn".into())
            .spawn(move || me.read_loop(&peer_name, &reader_conn, rx));
        if let Err(e) = spawned {
            self.event(Event::Closed {
                peer: peer.to_owned(),
                reason: format!("no thread for it: {e}"),
            });
            lock(&self.conns).remove(peer);
        }
        conn
    }

    fn read_loop(&self, peer: &str, conn: &Arc<Conn>, mut rx: message::Receiver<Stream>) {
        let reason = loop {
            let msg = match block_on(rx.recv()) {
                Ok(m) => m,
                // The frame was read whole: skip what we cannot parse and go on.
                Err(message::RecvError::UnsupportedOp { .. } | message::RecvError::Decode(_)) => {
                    continue;
                }
                Err(message::RecvError::Closed) => break "closed by the peer".to_owned(),
                Err(e) => break e.to_string(),
            };
            let (to, from, message) = match msg {
                Message::Tick => {
                    if let Err(e) = conn.send(Message::Tick) {
                        break e;
                    }
                    continue;
                }
                Message::Send(m) => (Dest::Pid(m.to_pid), None, m.message),
                Message::SendTt(m) => (Dest::Pid(m.to_pid), None, m.message),
                Message::SendSender(m) => (Dest::Pid(m.to_pid), Some(m.from_pid), m.message),
                Message::SendSenderTt(m) => (Dest::Pid(m.to_pid), Some(m.from_pid), m.message),
                Message::RegSend(m) => (Dest::Name(m.to_name.name), Some(m.from_pid), m.message),
                Message::RegSendTt(m) => (Dest::Name(m.to_name.name), Some(m.from_pid), m.message),
                Message::AliasSend(m) => (Dest::Alias(m.alias), Some(m.from_pid), m.message),
                Message::AliasSendTt(m) => (Dest::Alias(m.alias), Some(m.from_pid), m.message),
                // Links, monitors, exits, spawn requests: a C node has no processes to link.
                _ => continue,
            };
            self.event(Event::Message {
                peer: peer.to_owned(),
                to,
                from,
                message,
            });
        };
        let mut conns = lock(&self.conns);
        if conns.get(peer).is_some_and(|c| Arc::ptr_eq(c, conn)) {
            conns.remove(peer);
        }
        drop(conns);
        let _ = conn.stream.shutdown(Shutdown::Both);
        if !self.closed.load(Ordering::SeqCst) {
            self.event(Event::Closed {
                peer: peer.to_owned(),
                reason,
            });
        }
    }

    fn handshake_in(self: &Arc<Self>, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT));
        let _ = stream.set_write_timeout(Some(HANDSHAKE_TIMEOUT));
        let stream = Arc::new(stream);
        let mut hs = ServerSideHandshake::new(
            Stream::raw(stream.clone()),
            self.local.clone(),
            &self.cookie,
        );
        let name = match block_on(hs.execute_recv_name()) {
            Ok(Some(n)) => n.to_string(),
            Ok(None) => {
                let _ = block_on(hs.execute_rest(HandshakeStatus::NotAllowed));
                self.event(Event::Refused {
                    peer: None,
                    reason: "asked for a dynamic node name".into(),
                });
                return;
            }
            Err(e) => {
                self.event(Event::Refused {
                    peer: None,
                    reason: e.to_string(),
                });
                return;
            }
        };
        match block_on(hs.execute_rest(HandshakeStatus::Ok)) {
            Ok(_) => {
                self.established(&name, stream);
            }
            Err(e) => {
                let _ = stream.shutdown(Shutdown::Both);
                self.event(Event::Refused {
                    peer: Some(name),
                    reason: e.to_string(),
                });
            }
        }
    }
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) {
    for stream in listener.incoming() {
        if shared.closed.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let me = shared.clone();
        let _ = std::thread::Builder::new()
            .name("erlang-handshake".into())
            .spawn(move || me.handshake_in(stream));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            parse_name("ours@localhost").unwrap().to_string(),
            "ours@localhost"
        );
        assert!(parse_name("ours").unwrap().to_string().starts_with("ours@"));
        assert!(matches!(parse_name("@x"), Err(Error::Name { .. })));
        assert!(matches!(parse_name("a@"), Err(Error::Name { .. })));
        assert!(matches!(parse_name("a@b@c"), Err(Error::Name { .. })));
        assert!(matches!(parse_name("/tmp/a@b"), Err(Error::Name { .. })));
    }

    #[test]
    fn frames_pass_through_whole_and_a_garbage_term_ends_the_read() {
        use futures::io::AsyncReadExt;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (ours, _) = listener.accept().unwrap();
        let mut rx = Stream::framed(Arc::new(ours));
        let frame = |body: &[u8]| {
            let mut f = (body.len() as u32).to_be_bytes().to_vec();
            f.extend_from_slice(body);
            f
        };
        // a tick, then {2, '', Pid}-like control with a payload: the tuple {a} and [] (nil)
        let good = frame(&[112, 131, 104, 1, 115, 1, b'a', 131, 106]);
        peer.write_all(&frame(&[])).unwrap();
        peer.write_all(&good).unwrap();
        let mut got = vec![0u8; 4 + good.len()];
        block_on(rx.read_exact(&mut got)).unwrap();
        assert_eq!(&got[..4], &[0, 0, 0, 0]);
        assert_eq!(&got[4..], &good[..]);
        // a list declaring 3,355,805,782 elements: refused before erl_dist decodes it
        peer.write_all(&frame(&[112, 131, 108, 0xC8, 0x05, 0x88, 0x56, 106]))
            .unwrap();
        let mut one = [0u8; 1];
        let e = block_on(rx.read(&mut one)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("3355805782 elements"), "{e}");
        // and a frame over the limit is refused by its length alone
        peer.write_all(&((MAX_FRAME as u32) + 1).to_be_bytes())
            .unwrap();
        let e = block_on(rx.read(&mut one)).unwrap_err();
        assert!(e.to_string().contains("at most"), "{e}");
    }

    #[test]
    fn no_epmd_is_a_clear_error() {
        // A port nothing listens on (bound then released).
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = Node::start("t@localhost", "c", port)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("EPMD at 127.0.0.1:"), "{err}");
        assert!(err.contains("epmd -daemon"), "{err}");
    }
}
