//! RPC: the listening socket, a worker's server loop and the remote client.

use std::io;
use std::os::fd::{BorrowedFd, IntoRawFd, OwnedFd};
use std::sync::Mutex;
use std::time::Instant;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use super::blocking;
use crate::Error;
use crate::proto::rpc;
use crate::rpc::{Addr, Listener, Server, ServerConfig};

/// Bind and listen on `address` (`HOST:PORT` or a Unix socket path) with `backlog` pending
/// connections; returns the fd (the caller owns it: `socket.socket(fileno=fd)`).
#[pyfunction]
pub(crate) fn rpc_listen(py: Python<'_>, address: &str, backlog: i32) -> PyResult<i32> {
    let addr = Addr::parse(address).map_err(Error::from)?;
    let l = blocking::detached(py, || addr.bind(backlog)).map_err(Error::from)?;
    Ok(match l {
        Listener::Tcp(t) => t.into_raw_fd(),
        Listener::Unix(u) => u.into_raw_fd(),
    })
}

/// Call `name(*args)` at `address`, the GIL released; bytes, or None when the server answered
/// nothing. Ctrl-C interrupts the wait.
#[pyfunction]
#[pyo3(signature = (address, name, args, timeout))]
pub(crate) fn rpc_call<'py>(
    py: Python<'py>,
    address: &str,
    name: &[u8],
    args: Vec<Vec<u8>>,
    timeout: f64,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let addr = Addr::parse(address).map_err(Error::from)?;
    let timeout = crate::error::seconds("timeout", timeout)?;
    let req = rpc::encode_request(name, &args, rpc::REPLY_FRAMED).map_err(Error::from)?;
    let mut pending: Option<PyErr> = None;
    let got = py.detach(|| {
        crate::rpc::client::call_request_checked(&addr, &req, timeout, &mut || {
            Python::attach(|py| py.check_signals()).map_err(|e| {
                pending = Some(e);
                io::Error::from(io::ErrorKind::Interrupted)
            })
        })
    });
    if let Some(e) = pending {
        return Err(e);
    }
    let value = got.map_err(Error::from)?;
    Ok(value.map(|v| PyBytes::new(py, &v)))
}

/// A worker's RPC server over listening sockets the master bound before the fork.
#[pyclass(name = "RpcServer", module = "_uwsgidecorators_runtime._core", frozen)]
pub(crate) struct PyRpcServer {
    server: Mutex<Server>,
}

#[pymethods]
impl PyRpcServer {
    #[new]
    #[pyo3(signature = (fds, max_connections = 64, read_timeout = 4.0))]
    fn new(fds: Vec<i32>, max_connections: usize, read_timeout: f64) -> PyResult<Self> {
        let read_timeout = crate::error::seconds("read_timeout", read_timeout)?;
        let mut listeners = Vec::new();
        for fd in fds {
            if fd < 0 {
                return Err(Error::BadFd("fds").into());
            }
            // SAFETY: the fd is valid for this call (the caller's socket object holds it); it is
            // duplicated, so this server owns its own copy.
            let owned: OwnedFd = unsafe { BorrowedFd::borrow_raw(fd) }
                .try_clone_to_owned()
                .map_err(Error::from)?;
            let unix = is_unix(&owned)?;
            listeners.push(Listener::from_fd(owned, unix).map_err(Error::from)?);
        }
        Ok(PyRpcServer {
            server: Mutex::new(Server::new(
                listeners,
                ServerConfig {
                    max_conns: max_connections,
                    read_timeout,
                },
            )),
        })
    }

    /// Serve calls until one of `wake_fds` is readable (True) or `timeout` passes (False):
    /// accept, read and write without the GIL; for each complete request call
    /// `dispatch(name, args)` and answer its bytes (None, or anything else: no reply, the
    /// connection is closed, as uWSGI does). `log(line)` gets the rate-limited report of
    /// connections closed without a reply. One thread at a time.
    #[pyo3(signature = (dispatch, log, wake_fds, timeout = None))]
    fn serve(
        &self,
        py: Python<'_>,
        dispatch: &Bound<'_, PyAny>,
        log: &Bound<'_, PyAny>,
        wake_fds: Vec<i32>,
        timeout: Option<f64>,
    ) -> PyResult<bool> {
        let deadline = blocking::deadline(timeout)?;
        let signals_wake = !wake_fds.is_empty();
        let mut guard = super::lock(&self.server);
        let server: &mut Server = &mut guard;
        loop {
            let slice = blocking::wait_slice(deadline, signals_wake);
            let turn = py
                .detach(|| server.turn(&wake_fds, slice))
                .map_err(Error::from)?;
            for (id, packet) in turn.requests {
                let reply = answer(py, dispatch, &packet);
                match reply {
                    Ok(r) => server.reply(id, r),
                    Err(e) => {
                        server.reply(id, None);
                        return Err(e);
                    }
                }
            }
            if let Some(line) = server.take_report() {
                log.call1((line,))?;
            }
            if turn.extra_ready {
                return Ok(true);
            }
            py.check_signals()?;
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
        }
    }

    /// Connections open now (being read, run or written).
    fn open_connections(&self) -> usize {
        super::lock(&self.server).open_connections()
    }
}

/// Run one request through `dispatch`; the reply bytes, or None for no reply.
fn answer(py: Python<'_>, dispatch: &Bound<'_, PyAny>, packet: &[u8]) -> PyResult<Option<Vec<u8>>> {
    let Ok(req) = rpc::decode_request(packet) else {
        return Ok(None); // the server only hands out packets that decode
    };
    let args = PyTuple::new(py, req.args.iter().map(|a| PyBytes::new(py, a)))?;
    let result = dispatch.call1((PyBytes::new(py, req.name), args))?;
    let Ok(value) = result.cast::<PyBytes>() else {
        return Ok(None);
    };
    let value = value.as_bytes();
    Ok((!value.is_empty()).then(|| rpc::encode_reply(value, req.modifier2)))
}

fn is_unix(fd: &OwnedFd) -> PyResult<bool> {
    use std::os::fd::AsRawFd;
    let family = crate::sys::socket_family(fd.as_raw_fd()).map_err(Error::from)?;
    Ok(family == libc::AF_UNIX)
}
