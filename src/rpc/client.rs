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
    };
    conn.write_all_by(request, deadline).map_err(io_err)?;
    let mut head = [0u8; HEADER_LEN];
    let got = conn.read_full(&mut head, deadline).map_err(io_err)?;
    if got == 0 {
        return Ok(None);
    }
    let bad = |fault| CallError::Reply {
        addr: describe(addr),
        fault,
    };
    if got < HEADER_LEN {
        return Err(bad(RpcError::ShortHeader { len: got }));
    }
    let header = Header::parse(&head).ok_or(bad(RpcError::ShortHeader { len: got }))?;
    let len = match rpc::reply_head(header) {
        ReplyHead::Value(n) => n,
        ReplyHead::Dict(n) => {
            let dict = conn.read_exact_by(n, deadline, addr)?;
            rpc::content_length(&dict).map_err(bad)?
        }
    };
    let value = conn.read_exact_by(len, deadline, addr)?;
    Ok((!value.is_empty()).then_some(value))
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
                match TcpStream::connect_timeout(&sa, remaining(deadline)?) {
                    Ok(s) => {
                        s.set_nodelay(true)?;
                        return Ok(Stream::Tcp(s));
                    }
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
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.stream {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }

    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match &mut self.stream {
            Stream::Tcp(s) => s.write(data),
            Stream::Unix(s) => s.write(data),
        }
    }

    fn set_timeouts(&self, left: Duration) -> io::Result<()> {
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

    fn write_all_by(&mut self, mut data: &[u8], deadline: Instant) -> io::Result<()> {
        while !data.is_empty() {
            self.set_timeouts(remaining(deadline)?)?;
            match self.write(data) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => data = &data[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => (self.check)()?,
                Err(e) if is_timeout(&e) => return Err(timed_out()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Fill `buf` or stop at end of stream; returns how many bytes came.
    fn read_full(&mut self, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
        let mut got = 0;
        while got < buf.len() {
            self.set_timeouts(remaining(deadline)?)?;
            match self.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => (self.check)()?,
                Err(e) if is_timeout(&e) => return Err(timed_out()),
                Err(e) => return Err(e),
            }
        }
        Ok(got)
    }

    /// Read exactly `len` bytes; the buffer grows with what arrives, so a reply that announces
    /// more than it sends costs no more memory than it sent.
    fn read_exact_by(
        &mut self,
        len: usize,
        deadline: Instant,
        addr: &Addr,
    ) -> Result<Vec<u8>, CallError> {
        let io_err = |source| CallError::Io {
            addr: describe(addr),
            source,
        };
        let mut out = Vec::with_capacity(len.min(1 << 20));
        let mut chunk = vec![0u8; len.clamp(1, 1 << 16)];
        while out.len() < len {
            let want = (len - out.len()).min(chunk.len());
            let n = self.read_full(&mut chunk[..want], deadline).map_err(io_err)?;
            if n == 0 {
                return Err(CallError::Reply {
                    addr: describe(addr),
                    fault: RpcError::Truncated {
                        expected: len,
                        got: out.len(),
                    },
                });
            }
            out.extend_from_slice(&chunk[..n]);
        }
        Ok(out)
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
