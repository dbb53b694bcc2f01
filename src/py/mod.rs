//! The Python module `uwsgidecorators._core`: type conversion and error mapping around the core.

mod master;
mod supervisor;

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use crate::spool::{self, FailOutcome, Next, Notice, PacketError, SpoolerConfig, Var, WriteError};
use crate::sys::EventFd;

pyo3::import_exception!(uwsgidecorators.exceptions, SpoolPacketError);
pyo3::import_exception!(uwsgidecorators.exceptions, SpoolTooLargeError);

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

fn packet_err(e: PacketError) -> PyErr {
    match e {
        PacketError::VarsTooLarge { .. }
        | PacketError::KeyTooLong { .. }
        | PacketError::ValueTooLong { .. } => SpoolTooLargeError::new_err(e.to_string()),
        PacketError::EmptyKey => PyValueError::new_err(e.to_string()),
        _ => SpoolPacketError::new_err(e.to_string()),
    }
}

/// Run a write without the GIL; a signal that interrupted it runs its Python handlers (which
/// may raise, e.g. KeyboardInterrupt) and the write starts again, as PEP 475 asks of system calls.
fn write_with_signals<F>(py: Python<'_>, write: F) -> PyResult<PathBuf>
where
    F: Fn() -> Result<PathBuf, WriteError> + Sync,
{
    loop {
        match py.detach(&write) {
            Err(WriteError::Io { source, .. }) if source.kind() == io::ErrorKind::Interrupted => {
                py.check_signals()?;
            }
            other => return other.map_err(write_err),
        }
    }
}

fn write_err(e: WriteError) -> PyErr {
    match e {
        WriteError::Packet(p) => packet_err(p),
        WriteError::BadPriority(_) | WriteError::BadAt(_) => PyValueError::new_err(e.to_string()),
        WriteError::Io { source, .. } => PyErr::from(source),
    }
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

/// Accept any iterable of `(bytes, bytes)` pairs.
fn extract_vars(obj: &Bound<'_, PyAny>) -> PyResult<Vec<Var>> {
    let mut vars = Vec::new();
    for item in obj.try_iter()? {
        let item = item?;
        let pair = item
            .cast::<PyTuple>()
            .map_err(|_| PyTypeError::new_err("spool vars must be (bytes, bytes) pairs"))?;
        if pair.len() != 2 {
            return Err(PyTypeError::new_err(
                "spool vars must be (bytes, bytes) pairs",
            ));
        }
        let k = pair.get_item(0)?;
        let v = pair.get_item(1)?;
        let k = k
            .cast::<PyBytes>()
            .map_err(|_| PyTypeError::new_err("spool var keys must be bytes"))?;
        let v = v
            .cast::<PyBytes>()
            .map_err(|_| PyTypeError::new_err("spool var values must be bytes"))?;
        vars.push((k.as_bytes().to_vec(), v.as_bytes().to_vec()));
    }
    Ok(vars)
}

fn vars_to_list<'py>(py: Python<'py>, vars: &[Var]) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for (k, v) in vars {
        list.append((PyBytes::new(py, k), PyBytes::new(py, v)))?;
    }
    Ok(list)
}

/// The dict real uWSGI's Python plugin hands to `uwsgi.spooler`.
fn plugin_dict<'py>(
    py: Python<'py>,
    name: &[u8],
    vars: &[Var],
    body: &[u8],
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("spooler_task_name", PyBytes::new(py, name))?;
    for (k, v) in vars {
        d.set_item(PyBytes::new(py, k), PyBytes::new(py, v))?;
    }
    if !body.is_empty() {
        d.set_item("body", PyBytes::new(py, body))?;
    }
    Ok(d)
}

fn path_bytes<'py>(py: Python<'py>, p: &std::path::Path) -> Bound<'py, PyBytes> {
    use std::os::unix::ffi::OsStrExt;
    PyBytes::new(py, p.as_os_str().as_bytes())
}

#[pyfunction]
#[pyo3(signature = (vars, body = b"".as_slice()))]
fn encode_spool<'py>(
    py: Python<'py>,
    vars: &Bound<'py, PyAny>,
    body: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let vars = extract_vars(vars)?;
    let bytes = spool::encode(&vars, body).map_err(packet_err)?;
    Ok(PyBytes::new(py, &bytes))
}

#[pyfunction]
fn decode_spool<'py>(
    py: Python<'py>,
    data: &[u8],
) -> PyResult<(Bound<'py, PyList>, Bound<'py, PyBytes>)> {
    let p = spool::decode(data).map_err(packet_err)?;
    Ok((vars_to_list(py, &p.vars)?, PyBytes::new(py, &p.body)))
}

#[pyfunction]
#[pyo3(signature = (directory, vars, body = b"".as_slice(), durable = false))]
fn spool_write<'py>(
    py: Python<'py>,
    directory: FsPath,
    vars: &Bound<'py, PyAny>,
    body: &[u8],
    durable: bool,
) -> PyResult<Bound<'py, PyBytes>> {
    let directory = directory.0;
    let vars = extract_vars(vars)?;
    let body = body.to_vec();
    let path = write_with_signals(py, || spool::spool_write(&directory, &vars, &body, durable))?;
    Ok(path_bytes(py, &path))
}

/// `uwsgi.spool(job)` for the common case: every key and value exactly `bytes`, a known
/// `spooler`, a numeric `priority`, vars within 64 KiB. Returns the new file's path, or None when
/// the job needs the shim's full treatment (conversions of other value types, and the errors
/// uWSGI raises), which then handles it from the start: the caller's dict loses a bytes `body`
/// only when the job is written here.
#[pyfunction]
#[pyo3(signature = (job, spoolers, durable = false))]
fn spool_job<'py>(
    py: Python<'py>,
    job: &Bound<'py, PyAny>,
    spoolers: &Bound<'py, PyList>,
    durable: bool,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let Ok(dict) = job.cast_exact::<PyDict>() else {
        return Ok(None);
    };
    // The items are borrowed from the dict's bytes objects, so everything that reads them is
    // done here, under the GIL; only the finished packet crosses into the GIL-free write.
    let items: Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)> = dict.iter().collect();
    let mut vars: Vec<(&[u8], &[u8])> = Vec::with_capacity(items.len());
    let mut body: Option<&[u8]> = None;
    let mut directory: Option<&[u8]> = None;
    let (mut priority, mut at): (Option<Vec<u8>>, Option<Vec<u8>>) = (None, None);
    let mut size = 0usize;
    for (key, value) in &items {
        let (Ok(key), Ok(value)) = (key.cast_exact::<PyBytes>(), value.cast_exact::<PyBytes>())
        else {
            return Ok(None);
        };
        let (key, value) = (key.as_bytes(), value.as_bytes());
        if key == b"body" {
            body = Some(value);
            continue;
        }
        size += 4 + key.len() + value.len();
        if key == b"spooler" && !value.is_empty() {
            let known = spoolers
                .iter()
                .any(|d| d.cast::<PyBytes>().is_ok_and(|d| d.as_bytes() == value));
            if !known {
                return Ok(None);
            }
            directory = Some(value);
        } else if key == b"priority" {
            if !value.is_empty() && spool::write::parse_priority(value).is_err() {
                return Ok(None);
            }
            priority = Some(value.to_vec());
        } else if key == b"at" {
            at = Some(value.to_vec());
        }
        vars.push((key, value));
    }
    if size > spool::packet::MAX_VARS_SIZE {
        return Ok(None);
    }
    let mut packet = Vec::new();
    spool::packet::encode_into(&vars, body.unwrap_or_default(), &mut packet).map_err(packet_err)?;
    let first;
    let directory = match directory {
        Some(d) => d,
        None => match spoolers.get_item(0) {
            Ok(d) => {
                first = d.cast_into::<PyBytes>()?;
                first.as_bytes()
            }
            Err(_) => return Ok(None),
        },
    };
    let directory =
        PathBuf::from(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(directory));
    drop(vars);
    if body.is_some() {
        // uWSGI takes the body out of the caller's dict.
        dict.del_item(PyBytes::new(py, b"body"))?;
    }
    let path = write_with_signals(py, || {
        spool::spool_write_packet(
            &directory,
            &packet,
            priority.as_deref(),
            at.as_deref(),
            durable,
        )
    })?;
    Ok(Some(path_bytes(py, &path)))
}

/// Read one task file as `uwsgi.spooler_get_task` does: `None` if it is missing, locked by a
/// running spooler or malformed.
#[pyfunction]
fn spool_read<'py>(py: Python<'py>, path: FsPath) -> PyResult<Option<Bound<'py, PyDict>>> {
    let path = path.0;
    let read = || -> io::Result<Option<(Vec<u8>, spool::Packet)>> {
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(_) => return Ok(None),
        };
        if crate::sys::is_locked(&file)? {
            return Ok(None);
        }
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut &file, &mut data)?;
        let name = path
            .file_name()
            .map(|n| {
                use std::os::unix::ffi::OsStrExt;
                n.as_bytes().to_vec()
            })
            .unwrap_or_default();
        Ok(spool::decode(&data).ok().map(|p| (name, p)))
    };
    match py.detach(read) {
        Ok(Some((name, p))) => Ok(Some(plugin_dict(py, &name, &p.vars, &p.body)?)),
        _ => Ok(None),
    }
}

fn log_notice(py: Python<'_>, notice: &Notice) -> PyResult<()> {
    let msg = match notice {
        Notice::Quarantined { from, to, reason } => format!(
            "malformed spool file {} moved to {}: {reason}",
            from.display(),
            to.display()
        ),
        Notice::RemovedTemp { path } => {
            format!("removed stale temporary file {}", path.display())
        }
        Notice::DeleteFailed { path, reason } => format!(
            "cannot delete finished task {} (it will run again): {reason}",
            path.display()
        ),
    };
    let logger = py
        .import("logging")?
        .call_method1("getLogger", ("uwsgidecorators.spooler",))?;
    logger.call_method1("warning", (msg,))?;
    Ok(())
}

/// One spooler process's queue over a spool directory.
#[pyclass(name = "Spooler", module = "uwsgidecorators._core", frozen)]
struct PySpooler {
    inner: Mutex<spool::Spooler>,
    waker: Arc<EventFd>,
    /// Set by `rescan` (from a signal handler, while `next_task` may hold `inner`).
    rescan: std::sync::atomic::AtomicBool,
    /// A signal wake-up fd is watched (`watch_wakeup_fd`): waits need no signal polling.
    signals_wake: std::sync::atomic::AtomicBool,
}

#[pymethods]
impl PySpooler {
    #[new]
    #[pyo3(signature = (directory, *, frequency = 30.0, retry_delay = 1.0, retry_max_delay = 3600.0, max_attempts = 0, numeric_names = false, share = (0, 1)))]
    fn new(
        directory: FsPath,
        frequency: f64,
        retry_delay: f64,
        retry_max_delay: f64,
        max_attempts: u32,
        numeric_names: bool,
        share: (u32, u32),
    ) -> PyResult<Self> {
        let secs = |name: &str, v: f64| {
            Duration::try_from_secs_f64(v).map_err(|_| {
                PyValueError::new_err(format!(
                    "{name} must be a non-negative number of seconds, got {v}"
                ))
            })
        };
        if share.1 == 0 || share.0 >= share.1 {
            return Err(PyValueError::new_err(format!(
                "share must be (index, count) with 0 <= index < count, got {share:?}"
            )));
        }
        let cfg = SpoolerConfig {
            frequency: secs("frequency", frequency)?.max(Duration::from_millis(10)),
            retry_delay: secs("retry_delay", retry_delay)?,
            retry_max_delay: secs("retry_max_delay", retry_max_delay)?,
            max_attempts,
            numeric_names,
            share,
        };
        let sp = spool::Spooler::open(&directory.0, cfg)?;
        Ok(PySpooler {
            waker: sp.waker(),
            inner: Mutex::new(sp),
            rescan: std::sync::atomic::AtomicBool::new(false),
            signals_wake: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The spool directory (realpath) as bytes.
    #[getter]
    fn directory<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        path_bytes(py, lock(&self.inner).root())
    }

    /// Tasks waiting (ready now or later) as far as this spooler knows.
    fn pending(&self) -> usize {
        lock(&self.inner).pending()
    }

    /// The scan period in seconds (`uwsgi.set_spooler_frequency` sets it).
    #[getter]
    fn frequency(&self) -> f64 {
        lock(&self.inner).config().frequency.as_secs_f64()
    }

    #[setter]
    fn set_frequency(&self, secs: f64) -> PyResult<()> {
        let d = Duration::try_from_secs_f64(secs).map_err(|_| {
            PyValueError::new_err(format!(
                "frequency must be a non-negative number of seconds, got {secs}"
            ))
        })?;
        lock(&self.inner).set_frequency(d.max(Duration::from_millis(10)));
        Ok(())
    }

    /// Also make `next_task` return None when `fd` is readable (a signal channel to read).
    fn watch_fd(&self, fd: i32) {
        lock(&self.inner).watch_fd(fd);
    }

    /// Watch the non-blocking read end of the pipe given to `signal.set_wakeup_fd`: a Unix
    /// signal then makes `next_task` return None at once (the spooler empties the pipe), and an
    /// idle `next_task` sleeps instead of waking every 100 ms to look for signals.
    fn watch_wakeup_fd(&self, fd: i32) -> PyResult<()> {
        if fd < 0 {
            return Err(PyValueError::new_err(
                "wake-up fd must be a valid file descriptor",
            ));
        }
        lock(&self.inner).watch_wakeup_fd(fd);
        self.signals_wake
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// Wait until every task finished with `ok` is deleted (deletion runs on reaper threads).
    fn flush(&self, py: Python<'_>) {
        py.detach(|| lock(&self.inner).flush());
    }

    /// Make a blocked `next_task` return None soon. Safe from a signal handler or another thread.
    fn wake(&self) {
        self.waker.notify();
    }

    /// List the directory again before the next task (what SIGUSR1 does to uWSGI's spooler).
    /// Safe from a signal handler or another thread.
    fn rescan(&self) {
        self.rescan
            .store(true, std::sync::atomic::Ordering::Release);
        self.waker.notify();
    }

    /// Claim the next task, waiting up to `timeout` seconds (None: for ever).
    #[pyo3(signature = (timeout = None))]
    fn next_task(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<PyTask>> {
        let deadline = match timeout {
            Some(t) if t.is_nan() || t < 0.0 => {
                return Err(PyValueError::new_err(
                    "timeout must be a non-negative number or None",
                ));
            }
            Some(t) => {
                Some(Instant::now() + Duration::try_from_secs_f64(t).unwrap_or(Duration::MAX / 4))
            }
            None => None,
        };
        let signals_wake = self.signals_wake.load(std::sync::atomic::Ordering::Acquire);
        loop {
            let slice = wait_slice(deadline, signals_wake);
            let (next, cfg) = py.detach(|| {
                let mut sp = lock(&self.inner);
                if self.rescan.swap(false, std::sync::atomic::Ordering::AcqRel) {
                    sp.rescan_soon();
                }
                sp.next(slice).map(|n| (n, sp.config().clone()))
            })?;
            match next {
                Next::Task(task) => {
                    return Ok(Some(PyTask {
                        inner: Mutex::new(Some(task)),
                        cfg,
                    }));
                }
                Next::Notice(n) => log_notice(py, &n)?,
                Next::Woken => return Ok(None),
                Next::Idle => {
                    py.check_signals()?;
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Ok(None);
                    }
                }
            }
        }
    }
}

/// A claimed task; its file stays locked until one outcome method is called.
#[pyclass(name = "Task", module = "uwsgidecorators._core", frozen)]
struct PyTask {
    inner: Mutex<Option<spool::Task>>,
    cfg: SpoolerConfig,
}

impl PyTask {
    fn take(&self) -> PyResult<spool::Task> {
        lock(&self.inner)
            .take()
            .ok_or_else(|| PyValueError::new_err("this task already has an outcome"))
    }

    fn with<R>(&self, f: impl FnOnce(&spool::Task) -> R) -> PyResult<R> {
        let guard = lock(&self.inner);
        let task = guard
            .as_ref()
            .ok_or_else(|| PyValueError::new_err("this task already has an outcome"))?;
        Ok(f(task))
    }
}

#[pymethods]
impl PyTask {
    /// The file's basename.
    #[getter]
    fn name<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        self.with(|t| PyBytes::new(py, t.name()))
    }

    /// The file's full path.
    #[getter]
    fn path<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        self.with(|t| path_bytes(py, &t.path()))
    }

    /// True for a task of a priority subdirectory (its file is not directly in the spool dir).
    #[getter]
    fn in_subdir(&self) -> PyResult<bool> {
        self.with(spool::Task::in_subdir)
    }

    /// Failures recorded before this run.
    #[getter]
    fn attempts(&self) -> PyResult<u32> {
        self.with(spool::Task::attempts)
    }

    /// The vars in file order.
    #[getter]
    fn vars<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.with(|t| vars_to_list(py, &t.vars))?
    }

    #[getter]
    fn body<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        self.with(|t| PyBytes::new(py, &t.body))
    }

    /// The dict real uWSGI's plugin passes to `uwsgi.spooler`.
    fn plugin_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.with(|t| plugin_dict(py, t.name(), &t.vars, &t.body))?
    }

    /// Success: delete the file.
    fn ok(&self, py: Python<'_>) -> PyResult<()> {
        let task = self.take()?;
        py.detach(|| task.ok())?;
        Ok(())
    }

    /// Keep the file; it runs again after the spooler frequency. Returns the unix time.
    fn retry(&self, py: Python<'_>) -> PyResult<i64> {
        let task = self.take()?;
        let freq = self.cfg.frequency;
        Ok(py.detach(|| task.retry(freq))?)
    }

    /// The task raised. Returns `(attempts, retry_at, dead_path)`: `retry_at` (unix time) when
    /// it is kept, `dead_path` when it was moved to the dead-letter folder.
    fn failed<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(u32, Option<i64>, Option<Bound<'py, PyBytes>>)> {
        let task = self.take()?;
        let cfg = self.cfg.clone();
        Ok(match py.detach(|| task.failed(&cfg))? {
            FailOutcome::RetryAt { at, attempts } => (attempts, Some(at), None),
            FailOutcome::Dead { to, attempts } => (attempts, None, Some(path_bytes(py, &to))),
        })
    }

    /// Give the task back unchanged.
    fn release(&self) -> PyResult<()> {
        self.take()?.release();
        Ok(())
    }

    fn __repr__(&self) -> String {
        match lock(&self.inner).as_ref() {
            Some(t) => format!("<Task {}>", t.path().display()),
            None => "<Task (finished)>".to_owned(),
        }
    }
}

/// Wait for signals on a process's channels: `private` and `direct` (every byte waiting is
/// taken) and `shared` (one datagram: the other processes of the kind take the rest), or until
/// `wake_fd` is readable (drained; returns an empty result so the caller can look at its stop
/// flag). A negative fd is not watched. The GIL is released while waiting. Ctrl-C is checked
/// every 100 ms, or only when `wake_fd` fires if it is given (it must then be the process's signal
/// wake-up fd). `timeout` None: no limit.
#[pyfunction]
#[pyo3(signature = (private, shared, wake_fd, timeout = None, direct = -1, monitors = None))]
fn recv_signals(
    py: Python<'_>,
    private: i32,
    shared: i32,
    wake_fd: i32,
    timeout: Option<f64>,
    direct: i32,
    monitors: Option<&master::PyWorkerMonitors>,
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
    let mut fds: Vec<i32> = [private, direct, shared, wake_fd]
        .into_iter()
        .filter(|&fd| fd >= 0)
        .collect();
    // File monitors this worker reads itself come after: their signals run after the others.
    let watched = fds.len();
    if let Some(m) = monitors {
        fds.extend(lock(&m.inner).fds());
    }
    loop {
        // A wake-up fd is Python's signal wake-up pipe (the worker loop's): no polling needed.
        let slice = wait_slice(deadline, wake_fd >= 0);
        let got = py.detach(|| -> io::Result<Option<Vec<u8>>> {
            let ready = crate::sys::poll_readable(&fds, slice)?;
            let mut nums = Vec::new();
            let mut buf = [0u8; 256];
            let mut woken = false;
            for (i, (&fd, &r)) in fds.iter().zip(&ready).enumerate() {
                if !r {
                    continue;
                }
                if i >= watched {
                    if let Some(m) = monitors {
                        nums.extend(lock(&m.inner).read(fd)?);
                    }
                } else if fd == wake_fd {
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
    spool::name::hostname()
}

#[pymodule(name = "_core")]
fn core_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(encode_spool, m)?)?;
    m.add_function(wrap_pyfunction!(decode_spool, m)?)?;
    m.add_function(wrap_pyfunction!(spool_write, m)?)?;
    m.add_function(wrap_pyfunction!(spool_job, m)?)?;
    m.add_function(wrap_pyfunction!(spool_read, m)?)?;
    m.add_function(wrap_pyfunction!(hostname, m)?)?;
    m.add_function(wrap_pyfunction!(recv_signals, m)?)?;
    m.add_function(wrap_pyfunction!(check_signal_target, m)?)?;
    m.add_class::<PySpooler>()?;
    m.add_class::<PyTask>()?;
    m.add_class::<master::PyMasterLoop>()?;
    m.add_class::<master::PyCronSpec>()?;
    m.add_class::<master::PyDirectSender>()?;
    m.add_class::<master::PyWorkerMonitors>()?;
    m.add_function(wrap_pyfunction!(master::direct_socket_path, m)?)?;
    m.add_function(wrap_pyfunction!(master::set_parent_death_signal, m)?)?;
    m.add_class::<supervisor::PySupervisor>()?;
    Ok(())
}
