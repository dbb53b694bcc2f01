//! The spool queue's binding: the directory backend's writer and queue, and claimed tasks.
//! Outcomes go through the core's [`Policy`]; task ids are opaque bytes.

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use super::blocking::{self, Flow};
use super::{FsPath, lock};
use crate::Error;
use crate::error::seconds;
use crate::spool::job::{self, JobError, Spoolers};
use crate::spool::{
    self, Claimed, DirWriter, Enqueue, FailOutcome, Job, Next, Notice, Policy, SpoolerConfig,
    TaskId, Var, WriteError,
};
use crate::sys::EventFd;

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(encode_spool, m)?)?;
    m.add_function(wrap_pyfunction!(decode_spool, m)?)?;
    m.add_function(wrap_pyfunction!(spool_write, m)?)?;
    m.add_function(wrap_pyfunction!(spool_job, m)?)?;
    m.add_function(wrap_pyfunction!(spool_pairs, m)?)?;
    m.add_function(wrap_pyfunction!(spool_read, m)?)?;
    m.add_function(wrap_pyfunction!(spool_list, m)?)?;
    m.add_function(wrap_pyfunction!(fail_held_task, m)?)?;
    m.add_function(wrap_pyfunction!(insecure_spool_dir, m)?)?;
    m.add_class::<PySpooler>()?;
    m.add_class::<PyTask>()?;
    Ok(())
}

fn id_bytes<'py>(py: Python<'py>, id: &TaskId) -> Bound<'py, PyBytes> {
    PyBytes::new(py, id.as_bytes())
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Run a write without the GIL; a signal that interrupted it runs its Python handlers (which
/// may raise, e.g. KeyboardInterrupt) and the write starts again, as PEP 475 asks of system calls.
fn write_with_signals<F>(py: Python<'_>, write: F) -> PyResult<TaskId>
where
    F: Fn() -> Result<TaskId, WriteError> + Sync,
{
    let id = blocking::wait(
        py,
        None,
        false,
        |_| write(),
        |got| match got {
            Err(WriteError::Io { source, .. }) if source.kind() == io::ErrorKind::Interrupted => {
                Ok(Flow::Idle)
            }
            other => Ok(Flow::Done(other?)),
        },
    )?;
    // No deadline: the wait ends only with a result.
    id.ok_or_else(|| io::Error::from(io::ErrorKind::TimedOut).into())
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
#[pyo3(signature = (vars, body = b"".as_slice()), text_signature = "(vars, body=b'')")]
fn encode_spool<'py>(
    py: Python<'py>,
    vars: &Bound<'py, PyAny>,
    body: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let vars = extract_vars(vars)?;
    let bytes = spool::encode(&vars, body)?;
    Ok(PyBytes::new(py, &bytes))
}

#[pyfunction]
fn decode_spool<'py>(
    py: Python<'py>,
    data: &[u8],
) -> PyResult<(Bound<'py, PyList>, Bound<'py, PyBytes>)> {
    let p = spool::decode(data)?;
    Ok((vars_to_list(py, &p.vars)?, PyBytes::new(py, &p.body)))
}

#[pyfunction]
#[pyo3(
    signature = (directory, vars, body = b"".as_slice(), durable = false),
    text_signature = "(directory, vars, body=b'', durable=False)"
)]
fn spool_write<'py>(
    py: Python<'py>,
    directory: FsPath,
    vars: &Bound<'py, PyAny>,
    body: &[u8],
    durable: bool,
) -> PyResult<Bound<'py, PyBytes>> {
    let directory = directory.0;
    let vars = extract_vars(vars)?;
    let packet = spool::encode(&vars, body)?;
    let job = Job {
        packet: &packet,
        priority: spool::packet::lookup(&vars, b"priority"),
        at: spool::packet::lookup(&vars, b"at"),
    };
    let id = write_with_signals(py, || DirWriter::new(&directory, durable).enqueue(&job))?;
    Ok(id_bytes(py, &id))
}

/// The configured spool directories as the shim passes them (a list of bytes).
struct SpoolerList<'a, 'py>(&'a Bound<'py, PyList>);

impl Spoolers for SpoolerList<'_, '_> {
    fn contains(&self, dir: &[u8]) -> bool {
        self.0
            .iter()
            .any(|d| d.cast::<PyBytes>().is_ok_and(|d| d.as_bytes() == dir))
    }

    fn names(&self) -> Vec<Vec<u8>> {
        self.0
            .iter()
            .filter_map(|d| d.cast::<PyBytes>().ok().map(|d| d.as_bytes().to_vec()))
            .collect()
    }
}

fn dir_path(bytes: &[u8]) -> PathBuf {
    PathBuf::from(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(bytes))
}

/// The directory a checked job goes to: the one it names, else the first configured one.
fn job_dir(checked: Option<&[u8]>, spoolers: &Bound<'_, PyList>) -> PyResult<Option<PathBuf>> {
    Ok(match checked {
        Some(d) => Some(dir_path(d)),
        None => match spoolers.get_item(0) {
            Ok(d) => Some(dir_path(d.cast_into::<PyBytes>()?.as_bytes())),
            Err(_) => None,
        },
    })
}

/// `uwsgi.spool(job)` for the common case: every key and value exactly `bytes` and the job
/// passing the core's checks. Returns the new file's path, or None when the job needs the shim's
/// full treatment (conversions of other value types, and the errors uWSGI raises), which then
/// handles it from the start: the caller's dict loses a bytes `body` only when the job is
/// written here (or refused for its `at`).
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
    for (key, value) in &items {
        let (Ok(key), Ok(value)) = (key.cast_exact::<PyBytes>(), value.cast_exact::<PyBytes>())
        else {
            return Ok(None);
        };
        let (key, value) = (key.as_bytes(), value.as_bytes());
        if key == b"body" {
            body = Some(value);
        } else {
            vars.push((key, value));
        }
    }
    // The shim raises the other refusals, with the line uWSGI logs.
    let checked = match job::check(&vars, &SpoolerList(spoolers)) {
        Ok(c) => Ok(c),
        Err(e @ JobError::BadAt(_)) => Err(e),
        Err(_) => return Ok(None),
    };
    let mut packet = Vec::new();
    spool::packet::encode_into(&vars, body.unwrap_or_default(), &mut packet)?;
    let spooler = checked.as_ref().ok().and_then(|c| c.spooler);
    let Some(directory) = job_dir(spooler, spoolers)? else {
        return Ok(None);
    };
    if body.is_some() {
        // uWSGI takes the body out of the caller's dict.
        dict.del_item(PyBytes::new(py, b"body"))?;
    }
    let checked = checked?;
    let job = Job {
        packet: &packet,
        priority: checked.priority,
        at: checked.at,
    };
    let id = write_with_signals(py, || DirWriter::new(&directory, durable).enqueue(&job))?;
    Ok(Some(id_bytes(py, &id)))
}

/// `uwsgi.spool(job)` once the shim converted the job to `(bytes, bytes)` pairs and took its
/// body out: the same checks as `spool_job`, raised with uWSGI's messages (and logged with
/// uWSGI's lines), then the write. `spoolers`: the configured directories, the first the default.
#[pyfunction]
#[pyo3(
    signature = (spoolers, vars, body = b"".as_slice(), durable = false),
    text_signature = "(spoolers, vars, body=b'', durable=False)"
)]
fn spool_pairs<'py>(
    py: Python<'py>,
    spoolers: &Bound<'py, PyList>,
    vars: &Bound<'py, PyAny>,
    body: &[u8],
    durable: bool,
) -> PyResult<Bound<'py, PyBytes>> {
    let vars = extract_vars(vars)?;
    let checked = match job::check(&vars, &SpoolerList(spoolers)) {
        Ok(c) => c,
        Err(e) => {
            if let Some(line) = e.uwsgi_log() {
                log(py, "uwsgidecorators.spool", "error", &line)?;
            }
            return Err(e.into());
        }
    };
    let directory = job_dir(checked.spooler, spoolers)?.ok_or(JobError::NoSpooler)?;
    let mut packet = Vec::new();
    spool::packet::encode_into(&vars, body, &mut packet)?;
    let job = Job {
        packet: &packet,
        priority: checked.priority,
        at: checked.at,
    };
    let id = write_with_signals(py, || DirWriter::new(&directory, durable).enqueue(&job))?;
    Ok(id_bytes(py, &id))
}

/// `Task.failed`'s answer: (attempts, retry_at, dead_path).
type FailedTuple<'py> = (u32, Option<i64>, Option<Bound<'py, PyBytes>>);

/// Record a failed attempt on the task a spooler process holds, before the master kills it
/// (harakiri): `fd_path` is `/proc/<pid>/fd/<n>`, `ino` the inode the spooler published, `root`
/// its spool directory. Returns `(attempts, retry_at, dead_path)` as `Task.failed`, or None
/// when the descriptor no longer holds that task.
#[pyfunction]
#[pyo3(signature = (fd_path, ino, root, *, reason, retry_delay = 1.0, retry_max_delay = 3600.0, max_attempts = 0))]
#[allow(clippy::too_many_arguments)]
fn fail_held_task<'py>(
    py: Python<'py>,
    fd_path: FsPath,
    ino: u64,
    root: FsPath,
    reason: &str,
    retry_delay: f64,
    retry_max_delay: f64,
    max_attempts: u32,
) -> PyResult<Option<FailedTuple<'py>>> {
    let cfg = SpoolerConfig {
        retry_delay: seconds("retry_delay", retry_delay)?,
        retry_max_delay: seconds("retry_max_delay", retry_max_delay)?,
        max_attempts,
        ..SpoolerConfig::default()
    };
    let out = blocking::detached(py, || {
        spool::fail_held(&fd_path.0, ino, &root.0, &cfg, reason)
    })?;
    Ok(out.map(|o| match o {
        FailOutcome::RetryAt { at, attempts } => (attempts, Some(at), None),
        FailOutcome::Dead { to, attempts } => (attempts, None, Some(id_bytes(py, &to))),
    }))
}

/// Why `directory` must not be a spool directory (others can write it), or None.
#[pyfunction]
fn insecure_spool_dir(directory: FsPath) -> PyResult<Option<String>> {
    Ok(spool::insecure_dir_reason(&directory.0)?)
}

/// Read one task as `uwsgi.spooler_get_task` does: `None` if it is missing, held by a running
/// spooler or malformed. `id` is a task id (the directory backend's: the file's path).
#[pyfunction]
fn spool_read<'py>(py: Python<'py>, id: FsPath) -> PyResult<Option<Bound<'py, PyDict>>> {
    let id = TaskId::from(id.0);
    match blocking::detached(py, || spool::dir::read_task(&id)) {
        Ok(Some((name, p))) => Ok(Some(plugin_dict(py, &name, &p.vars, &p.body)?)),
        _ => Ok(None),
    }
}

/// Ids of the tasks waiting at the top level of spool directory `directory`, in directory
/// order (what `uwsgi.spooler_jobs` lists).
#[pyfunction]
fn spool_list<'py>(py: Python<'py>, directory: FsPath) -> PyResult<Vec<Bound<'py, PyBytes>>> {
    let ids = blocking::detached(py, || spool::dir::list_waiting(&directory.0))?;
    Ok(ids.iter().map(|id| id_bytes(py, id)).collect())
}

fn log_notice(py: Python<'_>, notice: &Notice) -> PyResult<()> {
    let msg = match notice {
        Notice::Quarantined { from, to, reason } => format!(
            "spool file {} quarantined (moved to {}): {reason}",
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
        Notice::Unreadable { path, reason } => format!(
            "cannot open task file {}, skipped (reported once per file): {reason}",
            path.display()
        ),
    };
    log(py, "uwsgidecorators.spooler", "warning", &msg)
}

/// One line to a `logging` logger.
fn log(py: Python<'_>, logger: &str, level: &str, msg: &str) -> PyResult<()> {
    let logger = py.import("logging")?.call_method1("getLogger", (logger,))?;
    logger.call_method1(level, (msg,))?;
    Ok(())
}

/// One spooler process's queue over a spool directory.
#[pyclass(name = "Spooler", module = "_uwsgidecorators_runtime._core", frozen)]
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
    #[pyo3(
        signature = (directory, *, frequency = 30.0, retry_delay = 1.0, retry_max_delay = 3600.0, max_attempts = 0, numeric_names = false, share = (0, 1), trusted_uids = Vec::new()),
        text_signature = "(directory, *, frequency=30.0, retry_delay=1.0, retry_max_delay=3600.0, max_attempts=0, numeric_names=False, share=(0, 1), trusted_uids=[])"
    )]
    #[allow(clippy::too_many_arguments)]
    fn new(
        directory: FsPath,
        frequency: f64,
        retry_delay: f64,
        retry_max_delay: f64,
        max_attempts: u32,
        numeric_names: bool,
        share: (u32, u32),
        trusted_uids: Vec<u32>,
    ) -> PyResult<Self> {
        if share.1 == 0 || share.0 >= share.1 {
            return Err(Error::BadShare(share).into());
        }
        let cfg = SpoolerConfig {
            frequency: seconds("frequency", frequency)?.max(Duration::from_millis(10)),
            retry_delay: seconds("retry_delay", retry_delay)?,
            retry_max_delay: seconds("retry_max_delay", retry_max_delay)?,
            max_attempts,
            numeric_names,
            share,
            trusted_uids,
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

    /// Where a task runs when it names no `workdir` of its own (the spool directory).
    #[getter]
    fn home<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        path_bytes(py, lock(&self.inner).root())
    }

    /// Tasks waiting (ready now or later) as far as this spooler knows.
    fn pending(&self) -> usize {
        lock(&self.inner).pending()
    }

    /// Task files skipped because this spooler's user cannot open them (each counted once,
    /// and logged once).
    #[getter]
    fn unreadable(&self) -> usize {
        lock(&self.inner).unreadable()
    }

    /// The scan period in seconds (`uwsgi.set_spooler_frequency` sets it).
    #[getter]
    fn frequency(&self) -> f64 {
        lock(&self.inner).config().frequency.as_secs_f64()
    }

    #[setter]
    fn set_frequency(&self, secs: f64) -> PyResult<()> {
        let d = seconds("frequency", secs)?;
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
            return Err(Error::BadFd("wake-up fd").into());
        }
        lock(&self.inner).watch_wakeup_fd(fd);
        self.signals_wake
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// Wait until every task finished with `ok` is deleted (deletion runs on reaper threads).
    fn flush(&self, py: Python<'_>) {
        blocking::detached(py, || lock(&self.inner).flush());
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
        let deadline = blocking::deadline(timeout)?;
        let signals_wake = self.signals_wake.load(std::sync::atomic::Ordering::Acquire);
        let task = blocking::wait(
            py,
            deadline,
            signals_wake,
            |slice| {
                let mut sp = lock(&self.inner);
                if self.rescan.swap(false, std::sync::atomic::Ordering::AcqRel) {
                    sp.rescan_soon();
                }
                sp.next(slice).map(|n| (n, sp.config().policy()))
            },
            |got| {
                Ok(match got? {
                    (Next::Task(task), policy) => Flow::Done(Some(PyTask {
                        inner: Mutex::new(Some(task)),
                        policy,
                    })),
                    (Next::Notice(n), _) => {
                        log_notice(py, &n)?;
                        Flow::Again
                    }
                    (Next::Woken, _) => Flow::Done(None),
                    (Next::Idle, _) => Flow::Idle,
                })
            },
        )?;
        Ok(task.flatten())
    }
}

/// A claimed task; it stays held until one outcome method is called.
#[pyclass(name = "Task", module = "_uwsgidecorators_runtime._core", frozen)]
struct PyTask {
    inner: Mutex<Option<spool::Task>>,
    policy: Policy,
}

impl PyTask {
    fn take(&self) -> PyResult<spool::Task> {
        Ok(lock(&self.inner).take().ok_or(Error::Settled)?)
    }

    fn with<R>(&self, f: impl FnOnce(&spool::Task) -> R) -> PyResult<R> {
        let guard = lock(&self.inner);
        let task = guard.as_ref().ok_or(Error::Settled)?;
        Ok(f(task))
    }
}

#[pymethods]
impl PyTask {
    /// The task's opaque id (the directory backend's: the file's full path).
    #[getter]
    fn id<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        self.with(|t| id_bytes(py, &t.id()))
    }

    /// Where the task runs (bytes), or None for the queue's home.
    #[getter]
    fn workdir<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        self.with(|t| t.workdir().map(|p| path_bytes(py, &p)))
    }

    /// The task's short name (`spooler_task_name`; the file's basename).
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

    /// The claimed file's descriptor (for the harakiri record in the master's shared table).
    #[getter]
    fn fd(&self) -> PyResult<i32> {
        self.with(spool::Task::raw_fd)
    }

    /// The claimed file's inode number.
    #[getter]
    fn ino(&self) -> PyResult<u64> {
        self.with(|t| t.ino)
    }

    /// Failures recorded before this run.
    #[getter]
    fn attempts(&self) -> PyResult<u32> {
        self.with(Claimed::attempts)
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

    /// Success: remove the task.
    fn ok(&self, py: Python<'_>) -> PyResult<()> {
        let task = self.take()?;
        blocking::detached(py, || Claimed::ok(task))?;
        Ok(())
    }

    /// Keep the task; it runs again after the spooler frequency. Returns the unix time.
    fn retry(&self, py: Python<'_>) -> PyResult<i64> {
        let task = self.take()?;
        Ok(blocking::detached(py, || {
            self.policy.retry(task, unix_now())
        })?)
    }

    /// The task raised. Returns `(attempts, retry_at, dead_path)`: `retry_at` (unix time) when
    /// it is kept, `dead_path` when it was moved to the dead-letter folder, where `reason` (the
    /// last traceback) goes into `<name>.reason` beside it.
    #[pyo3(signature = (reason = ""))]
    fn failed<'py>(
        &self,
        py: Python<'py>,
        reason: &str,
    ) -> PyResult<(u32, Option<i64>, Option<Bound<'py, PyBytes>>)> {
        let task = self.take()?;
        Ok(
            match blocking::detached(py, || self.policy.failed(task, reason, unix_now()))? {
                FailOutcome::RetryAt { at, attempts } => (attempts, Some(at), None),
                FailOutcome::Dead { to, attempts } => (attempts, None, Some(id_bytes(py, &to))),
            },
        )
    }

    /// Give the task back unchanged.
    fn release(&self) -> PyResult<()> {
        Claimed::release(self.take()?);
        Ok(())
    }

    fn __repr__(&self) -> String {
        match lock(&self.inner).as_ref() {
            Some(t) => format!("<Task {}>", t.path().display()),
            None => "<Task (finished)>".to_owned(),
        }
    }
}
