//! The Python module `uwsgidecorators._core`: type conversion and error mapping around the core.

mod ipc;
mod master;
mod spool;
mod supervisor;

use std::io;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// Longest stretch a blocking call stays detached before it checks for signals (Ctrl-C).
pub(crate) const SIGNAL_SLICE: Duration = Duration::from_millis(100);
/// The same when the wait also watches the process's signal wake-up fd (`signal.set_wakeup_fd`),
/// which every signal with a Python handler makes readable: no polling is needed then, and this
/// bound is only a backstop.
pub(crate) const WAKEUP_FD_SLICE: Duration = Duration::from_secs(60);

/// How long the next detached stretch of a wait may last: up to `deadline`, and at most one
/// slice (see [`SIGNAL_SLICE`], [`WAKEUP_FD_SLICE`]).
pub(crate) fn wait_slice(deadline: Option<Instant>, signals_wake: bool) -> Duration {
    let slice = if signals_wake {
        WAKEUP_FD_SLICE
    } else {
        SIGNAL_SLICE
    };
    deadline.map_or(slice, |d| {
        d.saturating_duration_since(Instant::now()).min(slice)
    })
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic cannot happen while the lock is held (the core returns errors), but a poisoned
    // mutex must not turn into a second failure.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A filesystem path given as str, bytes or os.PathLike (bytes kept byte for byte).
pub(crate) struct FsPath(pub(crate) PathBuf);

impl<'a, 'py> FromPyObject<'a, 'py> for FsPath {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        use std::os::unix::ffi::OsStrExt;
        if let Ok(b) = obj.cast::<PyBytes>() {
            return Ok(FsPath(PathBuf::from(std::ffi::OsStr::from_bytes(
                b.as_bytes(),
            ))));
        }
        Ok(FsPath(obj.extract::<PathBuf>()?))
    }
}

/// Wait for signals on a process's channels: `private` and `direct` (every byte waiting is
/// taken) and `shared` (one datagram: the other processes of the kind take the rest), or until
/// `wake_fd` or `notify` is readable (drained; returns an empty result so the caller can look at
/// its flags). A negative fd is not watched. The GIL is released while waiting. Ctrl-C is checked
/// every 100 ms, or only when `wake_fd` fires if it is given (it must then be the process's signal
/// wake-up fd, or, off the main thread where no Python signal handler runs, any wake-up pipe).
/// `notify` is one more wake-up pipe (`uwsgi.signal_wait`'s: another thread ran the awaited
/// signal). `timeout` None: no limit.
#[pyfunction]
#[pyo3(
    signature = (private, shared, wake_fd, timeout = None, direct = -1, notify = -1),
    text_signature = "(private, shared, wake_fd, timeout=None, direct=-1, notify=-1)"
)]
fn recv_signals(
    py: Python<'_>,
    private: i32,
    shared: i32,
    wake_fd: i32,
    timeout: Option<f64>,
    direct: i32,
    notify: i32,
) -> PyResult<Vec<u8>> {
    let deadline = match timeout {
        Some(t) => Some(
            Instant::now()
                + Duration::try_from_secs_f64(t).map_err(|_| {
                    PyValueError::new_err("timeout must be a non-negative number or None")
                })?,
        ),
        None => None,
    };
    let fds: Vec<i32> = [private, direct, shared, wake_fd, notify]
        .into_iter()
        .filter(|&fd| fd >= 0)
        .collect();
    loop {
        // A wake-up fd is Python's signal wake-up pipe (the worker loop's): no polling needed.
        let slice = wait_slice(deadline, wake_fd >= 0);
        let got = py.detach(|| -> io::Result<Option<Vec<u8>>> {
            let ready = crate::sys::poll_readable(&fds, slice)?;
            let mut nums = Vec::new();
            let mut buf = [0u8; 256];
            let mut woken = false;
            for (&fd, &r) in fds.iter().zip(&ready) {
                if !r {
                    continue;
                }
                if fd == wake_fd || fd == notify {
                    crate::sys::drain_fd(fd);
                    woken = true;
                } else if fd == shared {
                    if let Some(n) = crate::sys::recv_nonblocking(fd, &mut buf)? {
                        nums.extend_from_slice(&buf[..n]);
                    }
                } else {
                    while let Some(n) = crate::sys::recv_nonblocking(fd, &mut buf)? {
                        if n == 0 {
                            break;
                        }
                        nums.extend_from_slice(&buf[..n]);
                    }
                }
            }
            // Ready without data (a peer hung up) also returns, so the caller looks at its flags.
            Ok((woken || !nums.is_empty() || ready.iter().any(|&r| r)).then_some(nums))
        })?;
        if let Some(nums) = got {
            return Ok(nums);
        }
        py.check_signals()?;
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(Vec::new());
        }
    }
}

/// Check a uWSGI signal target string as the master will (ValueError naming what is wrong), so a
/// process without the master refuses exactly what the master would.
#[pyfunction]
fn check_signal_target(target: &str) -> PyResult<()> {
    crate::signal::Target::parse(target)
        .map(|_| ())
        .map_err(|e| PyValueError::new_err(format!("unable to register signal: {e}")))
}

/// The machine's hostname as uWSGI reports it.
#[pyfunction]
fn hostname() -> &'static str {
    crate::spool::name::hostname()
}

#[pymodule(name = "_core")]
fn core_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    spool::register(m)?;
    m.add_function(wrap_pyfunction!(hostname, m)?)?;
    m.add_function(wrap_pyfunction!(recv_signals, m)?)?;
    m.add_function(wrap_pyfunction!(check_signal_target, m)?)?;
    m.add_class::<master::PyMasterLoop>()?;
    m.add_class::<master::PyCronSpec>()?;
    m.add_class::<master::PyDirectSender>()?;
    m.add_function(wrap_pyfunction!(master::direct_socket_path, m)?)?;
    m.add_class::<supervisor::PySupervisor>()?;
    m.add_class::<ipc::PyRegion>()?;
    m.add_function(wrap_pyfunction!(ipc::lock, m)?)?;
    m.add_function(wrap_pyfunction!(ipc::unlock, m)?)?;
    m.add_function(wrap_pyfunction!(ipc::is_locked, m)?)?;
    m.add_function(wrap_pyfunction!(ipc::forget_lock_region, m)?)?;
    Ok(())
}
