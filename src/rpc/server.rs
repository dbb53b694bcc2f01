//! The listening side, as each worker runs it: accept on the shared listening sockets, read
//! requests from many connections at once without blocking, hand complete requests to the
//! caller (who runs the function), write the replies, close.
//!
//! Invariants:
//! - Nothing here blocks: every socket is non-blocking and the only wait is [`Server::turn`]'s
//!   `poll`, bounded by the caller's timeout and the earliest connection deadline.
//! - A connection lives at most `read_timeout` while its request arrives, and as long again
//!   while its reply is written; then it is closed. A slow or silent client therefore holds
//!   one slot of `max_conns` for a bounded time and never the worker.
//! - At most `max_conns` connections are open per server; past that the listeners are not
//!   polled, so further clients wait in the kernel's backlog (`--listen`) for another worker.
//! - Bytes other than a well-formed RPC request (another `modifier1`, a truncated or malformed
//!   array, more than 256 items) close the connection without a reply and are counted for a
//!   rate-limited log line ([`Server::take_report`]); they never reach the caller.
//! - Exactly one process takes each connection: `accept` on a shared socket is atomic.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use crate::proto::packet::{HEADER_LEN, Header};
use crate::proto::rpc::{self, RPC_MODIFIER1, RpcError};

/// Bounds of one server.
#[derive(Debug, Clone, Copy)]
pub struct ServerConfig {
    /// Open connections at most (being read, waiting for the function, being written).
    pub max_conns: usize,
    /// Time a client has to send its whole request (and, again, to take the reply).
    pub read_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_conns: 64,
            read_timeout: Duration::from_secs(4),
        }
    }
}

/// A bound, listening, non-blocking socket.
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    /// The socket's fd.
    pub fn fd(&self) -> RawFd {
        match self {
            Listener::Tcp(l) => l.as_raw_fd(),
            Listener::Unix(l) => l.as_raw_fd(),
        }
    }

    /// Take a listener from an fd the caller owns (a socket bound and listening already, in
    /// non-blocking mode or not: it is made non-blocking).
    pub fn from_fd(fd: OwnedFd, unix: bool) -> io::Result<Listener> {
        let l = if unix {
            Listener::Unix(UnixListener::from(fd))
        } else {
            Listener::Tcp(TcpListener::from(fd))
        };
        match &l {
            Listener::Tcp(t) => t.set_nonblocking(true)?,
            Listener::Unix(u) => u.set_nonblocking(true)?,
        }
        Ok(l)
    }

    fn accept(&self) -> io::Result<File> {
        crate::sys::accept_nonblocking(self.fd()).map(File::from)
    }
}

/// Why a connection was closed without a reply (for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A packet for another handler (`modifier1` 0 is a web request, as nginx's `uwsgi_pass`
    /// sends): this socket serves RPC only.
    NotRpc { modifier1: u8 },
    /// Not a valid RPC request.
    Malformed(RpcError),
    /// The request (or the reply's reader) did not finish within `read_timeout`.
    TimedOut,
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    Reading,
    Dispatched,
    Writing(usize),
}

#[derive(Debug)]
struct Conn {
    id: u64,
    file: File,
    buf: Vec<u8>,
    state: State,
    deadline: Instant,
}

/// What one [`Server::turn`] produced.
#[derive(Debug, Default)]
pub struct Turn {
    /// Complete, valid requests: connection id and the whole packet (decode it with
    /// [`rpc::decode_request`]). Each must be answered with [`Server::reply`].
    pub requests: Vec<(u64, Vec<u8>)>,
    /// One of the caller's extra fds is readable.
    pub extra_ready: bool,
}

/// Counts of connections closed without a reply, since the last report.
#[derive(Debug, Default)]
struct Counts {
    not_rpc: u64,
    last_modifier1: u8,
    malformed: u64,
    last_fault: Option<RpcError>,
    timed_out: u64,
    accept_errors: u64,
    last_accept_error: Option<String>,
}

/// One process's RPC server over any number of listeners.
#[derive(Debug)]
pub struct Server {
    listeners: Vec<Listener>,
    conns: Vec<Conn>,
    cfg: ServerConfig,
    next_id: u64,
    counts: Counts,
    last_report: Option<Instant>,
    /// One read's buffer: room for the largest request.
    scratch: Vec<u8>,
}

/// Shortest interval between two report lines.
pub const REPORT_EVERY: Duration = Duration::from_secs(10);

impl Server {
    /// A server over `listeners` (non-blocking, see [`Listener`]).
    pub fn new(listeners: Vec<Listener>, cfg: ServerConfig) -> Server {
        Server {
            listeners,
            conns: Vec::new(),
            cfg: ServerConfig {
                max_conns: cfg.max_conns.max(1),
                ..cfg
            },
            next_id: 0,
            counts: Counts::default(),
            last_report: None,
            scratch: vec![0; HEADER_LEN + rpc::MAX_REQUEST_BLOCK],
        }
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.conns.len()
    }

    /// Wait at most `timeout` for something to do, do it (accept, read, write, expire), and
    /// return the requests that are complete and whether one of `extra` is readable.
    pub fn turn(&mut self, extra: &[RawFd], timeout: Duration) -> io::Result<Turn> {
        let mut turn = Turn::default();
        let now = Instant::now();
        let mut wait = timeout;
        for c in &self.conns {
            if c.state != State::Dispatched {
                wait = wait.min(c.deadline.saturating_duration_since(now));
            }
        }
        let accepting = self.conns.len() < self.cfg.max_conns;
        let mut pfds = Vec::with_capacity(self.listeners.len() + self.conns.len() + extra.len());
        let pollfd = |fd, events| libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        pfds.extend(extra.iter().map(|&fd| pollfd(fd, libc::POLLIN)));
        if accepting {
            pfds.extend(self.listeners.iter().map(|l| pollfd(l.fd(), libc::POLLIN)));
        }
        let first_conn = pfds.len();
        let mut polled = Vec::with_capacity(self.conns.len());
        for (i, c) in self.conns.iter().enumerate() {
            let events = match c.state {
                State::Reading => libc::POLLIN,
                State::Writing(_) => libc::POLLOUT,
                State::Dispatched => continue,
            };
            pfds.push(pollfd(c.file.as_raw_fd(), events));
            polled.push(i);
        }
        crate::sys::poll_fds(&mut pfds, wait)?;
        turn.extra_ready = pfds[..extra.len()].iter().any(|p| p.revents != 0);
        let mut ready: Vec<usize> = polled
            .iter()
            .zip(&pfds[first_conn..])
            .filter(|(_, p)| p.revents != 0)
            .map(|(&i, _)| i)
            .collect();
        if accepting {
            let ready_listeners: Vec<usize> = pfds[extra.len()..first_conn]
                .iter()
                .enumerate()
                .filter(|(_, p)| p.revents != 0)
                .map(|(i, _)| i)
                .collect();
            ready.extend(self.accept_from(&ready_listeners));
        }
        let mut dead = Vec::new();
        for i in ready {
            self.progress(i, &mut turn, &mut dead);
        }
        let now = Instant::now();
        for (i, c) in self.conns.iter().enumerate() {
            if c.state != State::Dispatched && c.deadline <= now && !dead.contains(&i) {
                self.counts.timed_out += 1;
                dead.push(i);
            }
        }
        dead.sort_unstable();
        for i in dead.into_iter().rev() {
            self.conns.swap_remove(i);
        }
        Ok(turn)
    }

    /// Accept one connection from each of the listeners (by index) that poll found ready:
    /// one `accept4` per connection, no extra call to learn that none is left (poll is level
    /// triggered, so the next turn takes the next one, and idle workers share the rest).
    /// Returns the new connections' indexes.
    fn accept_from(&mut self, ready: &[usize]) -> Vec<usize> {
        let mut new = Vec::new();
        for &li in ready {
            if self.conns.len() >= self.cfg.max_conns {
                break;
            }
            match self.listeners[li].accept() {
                Ok(file) => {
                    self.next_id += 1;
                    new.push(self.conns.len());
                    self.conns.push(Conn {
                        id: self.next_id,
                        file,
                        buf: Vec::new(),
                        state: State::Reading,
                        deadline: Instant::now() + self.cfg.read_timeout,
                    });
                }
                // Another worker took it, or the client gave up: nothing to do.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::Interrupted
                            | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) => {
                    // EMFILE and the like: count it and let the next turn try again.
                    self.counts.accept_errors += 1;
                    self.counts.last_accept_error = Some(e.to_string());
                }
            }
        }
        new
    }

    /// Read or write connection `i` as far as it goes without blocking.
    fn progress(&mut self, i: usize, turn: &mut Turn, dead: &mut Vec<usize>) {
        let c = &mut self.conns[i];
        match c.state {
            State::Reading => match read_request(c, &mut self.scratch) {
                Ok(None) => {}
                Ok(Some(())) => match rpc::decode_request(&c.buf) {
                    Ok(_) => {
                        c.state = State::Dispatched;
                        turn.requests.push((c.id, std::mem::take(&mut c.buf)));
                    }
                    Err(fault) => {
                        self.counts.malformed += 1;
                        self.counts.last_fault = Some(fault);
                        dead.push(i);
                    }
                },
                Err(Closed::Quiet) => dead.push(i),
                Err(Closed::Note(Note::NotRpc { modifier1 })) => {
                    self.counts.not_rpc += 1;
                    self.counts.last_modifier1 = modifier1;
                    dead.push(i);
                }
                Err(Closed::Note(Note::Malformed(fault))) => {
                    self.counts.malformed += 1;
                    self.counts.last_fault = Some(fault);
                    dead.push(i);
                }
                Err(Closed::Note(Note::TimedOut)) => {
                    self.counts.timed_out += 1;
                    dead.push(i);
                }
            },
            State::Writing(_) => {
                if write_reply(c) {
                    dead.push(i);
                }
            }
            State::Dispatched => {}
        }
    }

    /// Answer request `id`: `Some(reply bytes)` are written (now, or by the next turns within
    /// `read_timeout`), then the connection is closed; `None` closes it at once (no result).
    pub fn reply(&mut self, id: u64, reply: Option<Vec<u8>>) {
        let Some(i) = self.conns.iter().position(|c| c.id == id) else {
            return;
        };
        match reply {
            None => {
                self.conns.swap_remove(i);
            }
            Some(bytes) => {
                let c = &mut self.conns[i];
                c.buf = bytes;
                c.state = State::Writing(0);
                c.deadline = Instant::now() + self.cfg.read_timeout;
                if write_reply(c) {
                    self.conns.swap_remove(i);
                }
            }
        }
    }

    /// A log line about connections closed without a reply since the last line, at most one
    /// per [`REPORT_EVERY`] (the first at once); None when there is nothing to say yet.
    pub fn take_report(&mut self) -> Option<String> {
        let c = &self.counts;
        if c.not_rpc + c.malformed + c.timed_out + c.accept_errors == 0 {
            return None;
        }
        let now = Instant::now();
        if self.last_report.is_some_and(|t| now < t + REPORT_EVERY) {
            return None;
        }
        self.last_report = Some(now);
        let c = std::mem::take(&mut self.counts);
        let mut parts = Vec::new();
        if c.not_rpc > 0 {
            parts.push(format!(
                "{} not rpc (last modifier1 {}: this socket serves uWSGI RPC, modifier1 173, \
                 only; web requests are your web server's job)",
                c.not_rpc, c.last_modifier1
            ));
        }
        if c.malformed > 0 {
            let fault = c.last_fault.map(|f| f.to_string()).unwrap_or_default();
            parts.push(format!("{} malformed (last: {fault})", c.malformed));
        }
        if c.timed_out > 0 {
            parts.push(format!(
                "{} too slow (over {:?})",
                c.timed_out, self.cfg.read_timeout
            ));
        }
        if c.accept_errors > 0 {
            parts.push(format!(
                "{} accept errors (last: {})",
                c.accept_errors,
                c.last_accept_error.unwrap_or_default()
            ));
        }
        Some(format!(
            "rpc: connections closed without a reply: {}",
            parts.join(", ")
        ))
    }
}

enum Closed {
    /// The peer went away before sending anything: nothing to report.
    Quiet,
    Note(Note),
}

/// Read what is there (through `scratch`, so one read usually takes the whole packet);
/// `Ok(Some)` once the whole packet is in `c.buf`. Bytes past the packet are dropped.
fn read_request(c: &mut Conn, scratch: &mut [u8]) -> Result<Option<()>, Closed> {
    loop {
        let n = match c.file.read(scratch) {
            Ok(0) => {
                return Err(if c.buf.is_empty() {
                    Closed::Quiet
                } else {
                    let need =
                        Header::parse(&c.buf).map_or(HEADER_LEN, |h| HEADER_LEN + h.size as usize);
                    Closed::Note(Note::Malformed(RpcError::Truncated {
                        expected: need,
                        got: c.buf.len(),
                    }))
                });
            }
            Ok(n) => n,
            Err(e) => {
                return match e.kind() {
                    io::ErrorKind::WouldBlock => Ok(None),
                    io::ErrorKind::Interrupted => continue,
                    _ => Err(Closed::Quiet),
                };
            }
        };
        let mut data = &scratch[..n];
        if c.buf.len() < HEADER_LEN {
            let take = (HEADER_LEN - c.buf.len()).min(data.len());
            c.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        let Some(h) = Header::parse(&c.buf) else {
            continue;
        };
        if h.modifier1 != RPC_MODIFIER1 {
            return Err(Closed::Note(Note::NotRpc {
                modifier1: h.modifier1,
            }));
        }
        if h.size == 0 {
            // uWSGI logs "Empty RPC request" and closes.
            return Err(Closed::Note(Note::Malformed(RpcError::NoName)));
        }
        let need = HEADER_LEN + h.size as usize;
        let take = (need - c.buf.len()).min(data.len());
        c.buf.extend_from_slice(&data[..take]);
        if c.buf.len() == need {
            return Ok(Some(()));
        }
    }
}

/// Write what the socket takes; true when done (or failed): the connection is to be closed.
fn write_reply(c: &mut Conn) -> bool {
    let State::Writing(mut pos) = c.state else {
        return true;
    };
    while pos < c.buf.len() {
        match c.file.write(&c.buf[pos..]) {
            Ok(0) => return true,
            Ok(n) => pos += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                c.state = State::Writing(pos);
                return false;
            }
            Err(_) => return true,
        }
    }
    true
}
