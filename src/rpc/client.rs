//! The calling side: connect, send one request, read one reply, close (`uwsgi_do_rpc`'s
//! algorithm). Every step is bounded by one deadline; nothing here retries.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::Addr;
use crate::proto::packet::{HEADER_LEN, Header};
use crate::proto::rpc::{self, ReplyHead, RpcError};

/// Why a call got no answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The call itself breaks uWSGI's limits (name, argument count or size).
    #[error(transparent)]
    Request(RpcError),
    /// Connecting, sending or reading failed, or the deadline passed.
    #[error("rpc to {addr}: {source}")]
    Io {
        addr: String,
        #[source]
        source: io::Error,
    },
    /// The reply does not follow the protocol.
    #[error("rpc to {addr}: bad reply: {fault}")]
    Reply { addr: String, fault: RpcError },
}

/// Call `name(*args)` at `addr`; `Ok(None)` when the server answered nothing (unknown
/// function, empty result, handler error), as uWSGI's client reports it.
pub fn call<A: AsRef<[u8]>>(
    addr: &Addr,
    name: &[u8],
    args: &[A],
    timeout: Duration,
) -> Result<Option<Vec<u8>>, CallError> {
    let req = rpc::encode_request(name, args, rpc::REPLY_FRAMED).map_err(CallError::Request)?;
    call_request(addr, &req, timeout)
}

/// Send an already encoded request (framed reply asked) and read the reply.
pub fn call_request(
    addr: &Addr,
    request: &[u8],
    timeout: Duration,
) -> Result<Option<Vec<u8>>, CallError> {
    call_request_checked(addr, request, timeout, &mut || Ok(()))
}

/// [`call_request`], calling `check` whenever a system call was interrupted by a signal: an
/// error from it ends the call (the binding runs Python's signal handlers there, so Ctrl-C
/// ends a call at once).
pub fn call_request_checked(
    addr: &Addr,
    request: &[u8],
    timeout: Duration,
    check: &mut dyn FnMut() -> io::Result<()>,
) -> Result<Option<Vec<u8>>, CallError> {
    let deadline = Instant::now() + timeout;
    let io_err = |source| CallError::Io {
        addr: describe(addr),
        source,
    };
    let mut conn = Conn {
        stream: connect(addr, deadline).map_err(io_err)?,
        check,
        deadline,
    };
    conn.set_timeouts().map_err(io_err)?;
    conn.write_all(request).map_err(io_err)?;
    // One read takes the header and, most often, the whole value.
    let mut buf = vec![0u8; 1 << 16];
    let mut got = 0;
    while got < HEADER_LEN {
        let n = conn.read_some(&mut buf[got..]).map_err(io_err)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    if got == 0 {
        return Ok(None);
    }
    let bad = |fault| CallError::Reply {
        addr: describe(addr),
        fault,
    };
    let header = Header::parse(&buf[..got]).ok_or(bad(RpcError::ShortHeader { len: got }))?;
    let mut have = buf[HEADER_LEN..got].to_vec();
    let len = match rpc::reply_head(header) {
        ReplyHead::Value(n) => n,
        ReplyHead::Dict(n) => {
            conn.fill(&mut have, n, addr)?;
            let value_start = have.split_off(n);
            let len = rpc::content_length(&have).map_err(bad)?;
            have = value_start;
            len
        }
    };
    conn.fill(&mut have, len, addr)?;
    have.truncate(len);
    Ok((!have.is_empty()).then_some(have))
}

fn describe(addr: &Addr) -> String {
    match addr {
        Addr::Tcp(hp) => hp.clone(),
        Addr::Unix(p) => p.display().to_string(),
    }
}

enum Stream {
    Tcp(TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

struct Conn<'a> {
    stream: Stream,
    check: &'a mut dyn FnMut() -> io::Result<()>,
    deadline: Instant,
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "timed out")
}

fn remaining(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(timed_out());
    }
    Ok(left)
}

fn connect(addr: &Addr, deadline: Instant) -> io::Result<Stream> {
    match addr {
        Addr::Tcp(hp) => {
            let mut last = None;
            for sa in hp.to_socket_addrs()? {
                match crate::sys::tcp_connect_timeout(&sa, remaining(deadline)?) {
                    Ok(s) => return Ok(Stream::Tcp(s)),
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, "address resolves to nothing")
            }))
        }
        Addr::Unix(path) => loop {
            // A full backlog (every worker busy) gives EAGAIN: try again until the deadline.
            match crate::sys::unix_connect_nonblocking(path) {
                Ok(s) => return Ok(Stream::Unix(s)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(remaining(deadline)?.min(Duration::from_millis(1)));
                }
                Err(e) => return Err(e),
            }
        },
    }
}

impl Conn<'_> {
    /// Bound reads and writes by what is left of the deadline (once, and again after a signal).
    fn set_timeouts(&self) -> io::Result<()> {
        let left = remaining(self.deadline)?;
        match &self.stream {
            Stream::Tcp(s) => {
                s.set_read_timeout(Some(left))?;
                s.set_write_timeout(Some(left))
            }
            Stream::Unix(s) => {
                s.set_read_timeout(Some(left))?;
                s.set_write_timeout(Some(left))
            }
        }
    }

    /// A signal interrupted a system call: run the caller's check, then bound the rest again.
    fn interrupted(&mut self) -> io::Result<()> {
        (self.check)()?;
        self.set_timeouts()
    }

    fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let r = match &mut self.stream {
                Stream::Tcp(s) => s.write(data),
                Stream::Unix(s) => s.write(data),
            };
            match r {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => data = &data[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => self.interrupted()?,
                Err(e) if is_timeout(&e) => return Err(timed_out()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// One read (0: end of stream).
    fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let r = match &mut self.stream {
                Stream::Tcp(s) => s.read(buf),
                Stream::Unix(s) => s.read(buf),
            };
            match r {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => self.interrupted()?,
                Err(e) if is_timeout(&e) => return Err(timed_out()),
                r => return r,
            }
        }
    }

    /// Read until `have` holds `len` bytes; the buffer grows with what arrives, so a reply that
    /// announces more than it sends costs no more memory than it sent.
    fn fill(&mut self, have: &mut Vec<u8>, len: usize, addr: &Addr) -> Result<(), CallError> {
        let mut chunk = vec![0u8; 1 << 16];
        while have.len() < len {
            let want = (len - have.len()).min(chunk.len());
            let n = self
                .read_some(&mut chunk[..want])
                .map_err(|source| CallError::Io {
                    addr: describe(addr),
                    source,
                })?;
            if n == 0 {
                return Err(CallError::Reply {
                    addr: describe(addr),
                    fault: RpcError::Truncated {
                        expected: len,
                        got: have.len(),
                    },
                });
            }
            have.extend_from_slice(&chunk[..n]);
        }
        Ok(())
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
