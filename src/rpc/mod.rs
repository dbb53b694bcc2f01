//! uWSGI's RPC over sockets: the listening side ([`server`]) that workers run and the calling
//! side ([`client`]). The bytes are [`crate::proto::rpc`]'s.
//!
//! Addresses are written as uWSGI writes them: `HOST:PORT` (TCP; `:PORT` binds every
//! interface) or a Unix socket path (anything without a colon).

pub mod client;
pub mod server;

use std::io;
use std::net::{TcpListener, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

pub use client::{call, call_request};
pub use server::{Listener, Note, Server, ServerConfig};

/// Where a node listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    /// `HOST:PORT` as written (resolved at connect or bind time).
    Tcp(String),
    /// A Unix stream socket path.
    Unix(PathBuf),
}

impl Addr {
    /// Parse a node as uWSGI does: with a colon it is `HOST:PORT`, else a Unix socket path.
    pub fn parse(node: &str) -> io::Result<Addr> {
        if node.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "empty rpc address",
            ));
        }
        if node.contains(':') {
            let (host, port) = node.rsplit_once(':').unwrap_or((node, ""));
            if port.parse::<u16>().is_err() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("rpc address {node:?}: the port is not a number (HOST:PORT)"),
                ));
            }
            let host = if host.is_empty() { "0.0.0.0" } else { host };
            Ok(Addr::Tcp(format!("{host}:{port}")))
        } else {
            Ok(Addr::Unix(PathBuf::from(node)))
        }
    }

    /// Bind a listening socket here with `backlog` pending connections at most. A Unix socket
    /// left at the path (by a killed process) is replaced; any other kind of file is an error.
    pub fn bind(&self, backlog: i32) -> io::Result<Listener> {
        match self {
            Addr::Tcp(hp) => {
                let addrs: Vec<_> = hp.to_socket_addrs()?.collect();
                let l = TcpListener::bind(&addrs[..])?;
                crate::sys::set_backlog(l.as_raw_fd(), backlog)?;
                l.set_nonblocking(true)?;
                Ok(Listener::Tcp(l))
            }
            Addr::Unix(path) => {
                remove_stale_socket(path)?;
                let l = UnixListener::bind(path)?;
                crate::sys::set_backlog(l.as_raw_fd(), backlog)?;
                l.set_nonblocking(true)?;
                Ok(Listener::Unix(l))
            }
        }
    }
}

/// Remove a Unix socket at `path` so it can be bound again; leave any other file and refuse.
pub fn remove_stale_socket(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests;
