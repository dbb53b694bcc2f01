//! The Python module `_uwsgidecorators_runtime._core` (also `uwsgidecorators._core`): type conversion and error mapping around the core.

mod blocking;
mod control;
mod erlang;
mod errors;
mod ipc;
mod kind;
mod master;
mod mule;
mod rpc;
mod spool;
mod supervisor;

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use blocking::Flow;

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
/// signal). `monitors`: the file monitors a worker reads itself (`MasterLoop.worker_monitors`),
/// polled too. `timeout` None: no limit.
#[pyfunction]
#[pyo3(
    signature = (private, shared, wake_fd, timeout = None, direct = -1, notify = -1, monitors = None),
    text_signature = "(private, shared, wake_fd, timeout=None, direct=-1, notify=-1, monitors=None)"
)]
// The Python signature's arguments, one each (py is pyo3's).
#[allow(clippy::too_many_arguments)]
fn recv_signals(
    py: Python<'_>,
    private: i32,
    shared: i32,
    wake_fd: i32,
    timeout: Option<f64>,
    direct: i32,
    notify: i32,
    monitors: Option<&master::PyWorkerMonitors>,
) -> PyResult<Vec<u8>> {
    let deadline = blocking::deadline(timeout)?;
    let mut channels = crate::channel::Channels::new(private, direct, shared, wake_fd, notify);
    if let Some(m) = monitors {
        // File monitors this worker reads itself (one hop): their signals run after the others.
        channels = channels.with_monitors(lock(&m.inner).fds());
    }
    // The monitors' lock is taken for a read only, never across the wait: another thread of
    // the worker (a `uwsgi.signal_wait`) may poll the same instances.
    let read_monitor = |fd| monitors.map_or(Ok(Vec::new()), |m| lock(&m.inner).read(fd));
    // A wake-up fd is Python's signal wake-up pipe (the worker loop's): no polling needed.
    let got = blocking::wait(
        py,
        deadline,
        wake_fd >= 0,
        |slice| channels.recv_with(slice, read_monitor),
        |got| Ok(got?.map_or(Flow::Idle, Flow::Done)),
    )?;
    Ok(got.unwrap_or_default())
}

/// Check a uWSGI signal target string as the master will (ValueError naming what is wrong), so a
/// process without the master refuses exactly what the master would.
#[pyfunction]
fn check_signal_target(target: &str) -> PyResult<()> {
    crate::signal::Target::parse(target)
        .map(|_| ())
        .map_err(|e| crate::Error::RegisterSignal(e).into())
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
    control::register(m)?;
    erlang::register(m)?;
    m.add_function(wrap_pyfunction!(hostname, m)?)?;
    m.add_function(wrap_pyfunction!(recv_signals, m)?)?;
    m.add_function(wrap_pyfunction!(check_signal_target, m)?)?;
    m.add_class::<master::PyMasterLoop>()?;
    m.add_class::<master::PyCronSpec>()?;
    m.add_class::<master::PyDirectSender>()?;
    m.add_class::<master::PyWorkerMonitors>()?;
    m.add_function(wrap_pyfunction!(master::direct_socket_path, m)?)?;
    m.add_function(wrap_pyfunction!(master::bind_datagram, m)?)?;
    m.add_function(wrap_pyfunction!(master::set_parent_death_signal, m)?)?;
    m.add_class::<supervisor::PySupervisor>()?;
    m.add_class::<supervisor::PyAction>()?;
    m.add_class::<kind::PyKind>()?;
    m.add_class::<mule::PyMuleQueues>()?;
    m.add_class::<mule::PyMuleReceiver>()?;
    m.add_function(wrap_pyfunction!(mule::mule_queue_path, m)?)?;
    m.add_function(wrap_pyfunction!(mule::mule_wake_path, m)?)?;
    m.add_function(wrap_pyfunction!(mule::mule_msg, m)?)?;
    m.add_function(wrap_pyfunction!(mule::set_mule_sender, m)?)?;
    m.add_class::<ipc::PyRegion>()?;
    m.add_function(wrap_pyfunction!(ipc::lock, m)?)?;
    m.add_function(wrap_pyfunction!(ipc::unlock, m)?)?;
    m.add_function(wrap_pyfunction!(ipc::is_locked, m)?)?;
    m.add_function(wrap_pyfunction!(ipc::forget_lock_region, m)?)?;
    m.add_class::<rpc::PyRpcServer>()?;
    m.add_function(wrap_pyfunction!(rpc::rpc_listen, m)?)?;
    m.add_function(wrap_pyfunction!(rpc::rpc_call, m)?)?;
    Ok(())
}
