//! `_core.MasterLoop` and `_core.CronSpec`.

use std::sync::Mutex;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::blocking::{self, Flow};
use super::{FsPath, lock};
use crate::Error;
use crate::cron::{Civil, CronSpec, tz};
use crate::direct::{DirectSender, WorkerMonitors};
use crate::master::LoopEvent;
use crate::signal::{self, Kind, Target};

fn event_tuple<'py>(py: Python<'py>, e: &LoopEvent) -> PyResult<Bound<'py, PyTuple>> {
    match e {
        LoopEvent::Unregistered { num, source } => {
            ("unregistered", *num, *source).into_pyobject(py)
        }
        LoopEvent::Unrouted { num, reason } => {
            ("unrouted", *num, reason.as_str()).into_pyobject(py)
        }
        LoopEvent::QueueFull { num, to } => ("queue_full", *num, to.as_str()).into_pyobject(py),
        LoopEvent::Wakeup => ("wakeup", 0u8, "").into_pyobject(py),
        LoopEvent::BadControl { reason } => ("bad_control", 0u8, reason.as_str()).into_pyobject(py),
        LoopEvent::FileHook { hook } => ("file_hook", *hook, "").into_pyobject(py),
        LoopEvent::Reload { pid } => ("reload", *pid, "").into_pyobject(py),
    }
}

/// The master's event loop.
#[pyclass(name = "MasterLoop", module = "_uwsgidecorators_runtime._core", frozen)]
pub(super) struct PyMasterLoop {
    /// `None` once closed (in a forked child).
    inner: Mutex<Option<crate::master::MasterLoop>>,
}

impl PyMasterLoop {
    fn with<R>(&self, f: impl FnOnce(&mut crate::master::MasterLoop) -> R) -> PyResult<R> {
        let mut guard = lock(&self.inner);
        let ml = guard.as_mut().ok_or(Error::Closed("MasterLoop"))?;
        Ok(f(ml))
    }
}

#[pymethods]
impl PyMasterLoop {
    #[new]
    #[pyo3(signature = (control_path, wakeup_fd = None, test_clock = false, control_fd = None, region = None))]
    fn new(
        control_path: FsPath,
        wakeup_fd: Option<i32>,
        test_clock: bool,
        control_fd: Option<i32>,
        region: Option<PyRef<'_, super::ipc::PyRegion>>,
    ) -> PyResult<Self> {
        let mut ml = match control_fd {
            Some(fd) => crate::master::MasterLoop::adopt(&control_path.0, fd, wakeup_fd)?,
            None => crate::master::MasterLoop::new(&control_path.0, wakeup_fd)?,
        };
        if let Some(r) = region {
            ml.use_routes(crate::direct::DirectRoutes::on(r.inner.clone()));
        }
        if test_clock {
            ml.enable_test_clock();
        }
        Ok(PyMasterLoop {
            inner: Mutex::new(Some(ml)),
        })
    }

    fn register_signal(&self, num: i64, target: &str) -> PyResult<()> {
        let num = signal::signum(num)?;
        self.with(|ml| ml.register_signal(num, target))??;
        Ok(())
    }

    fn signal_registered(&self, num: i64) -> PyResult<bool> {
        let num = signal::signum(num)?;
        self.with(|ml| ml.signal_registered(num))
    }

    fn add_channel(&self, kind_name: &str, id: u32, fd: i32) -> PyResult<()> {
        let k = Kind::from_name(kind_name)?;
        self.with(|ml| ml.add_channel(k, id, fd))
    }

    fn remove_channel(&self, kind_name: &str, id: u32) -> PyResult<()> {
        let k = Kind::from_name(kind_name)?;
        self.with(|ml| ml.remove_channel(k, id))
    }

    fn add_queue(&self, kind_name: &str, fd: i32) -> PyResult<()> {
        let k = Kind::from_name(kind_name)?;
        self.with(|ml| ml.add_queue(k, fd))
    }

    fn add_farm(&self, name: &str, members: Vec<u32>, fd: i32) -> PyResult<()> {
        self.with(|ml| ml.add_farm(name, members, fd))
    }

    fn raise_signal(&self, num: i64) -> PyResult<()> {
        let num = signal::signum(num)?;
        self.with(|ml| ml.raise_signal(num, "signal"))
    }

    /// A sender for signals aimed at one worker (its own socket, the shared table); a child
    /// takes one before `close_in_child`.
    fn direct_sender(&self) -> PyResult<PyDirectSender> {
        let (routes, control) =
            self.with(|ml| (ml.direct_routes(), ml.control_path().to_owned()))?;
        Ok(PyDirectSender {
            inner: DirectSender::new(routes, &control)?,
        })
    }

    /// In worker `worker_id`, just forked (before `close_in_child`): the file monitors this
    /// worker reads itself (one hop), to pass to `recv_signals`; None if it reads none.
    fn worker_monitors(&self, worker_id: u32) -> PyResult<Option<PyWorkerMonitors>> {
        let (monitors, routes, control) = self.with(|ml| {
            (
                ml.take_worker_monitors(worker_id),
                ml.direct_routes(),
                ml.control_path().to_owned(),
            )
        })?;
        if monitors.is_empty() {
            return Ok(None);
        }
        let sender = DirectSender::new(routes, &control)?;
        Ok(Some(PyWorkerMonitors {
            inner: Mutex::new(WorkerMonitors::new(worker_id, monitors, sender)),
        }))
    }

    /// In a forked child: close the inherited descriptors, leaving the master's socket file.
    /// The control socket's descriptor, made inheritable for a reload's `exec`; the socket file
    /// is then no longer removed when this loop is dropped.
    fn keep_control_across_exec(&self) -> PyResult<i32> {
        Ok(self.with(|ml| ml.keep_control_across_exec())??)
    }

    /// Report `("file_hook", hook, "")` from `step` when `path` changes (no signal is raised).
    fn add_file_hook(&self, hook: u32, path: FsPath) -> PyResult<()> {
        self.with(|ml| ml.add_file_hook(hook, &path.0))??;
        Ok(())
    }

    fn close_in_child(&self) {
        if let Some(ml) = lock(&self.inner).take() {
            ml.close_in_child();
        }
    }

    #[pyo3(signature = (num, secs, iterations = 0))]
    fn add_timer(&self, num: i64, secs: f64, iterations: u32) -> PyResult<()> {
        let num = signal::signum(num)?;
        self.with(|ml| ml.add_timer(num, secs, iterations))??;
        Ok(())
    }

    #[pyo3(signature = (num, spec, tz = None, catch_up = false))]
    fn add_cron(
        &self,
        num: i64,
        spec: &PyCronSpec,
        tz: Option<&str>,
        catch_up: bool,
    ) -> PyResult<()> {
        let num = signal::signum(num)?;
        self.with(|ml| ml.add_cron(num, spec.spec.clone(), tz, catch_up))??;
        Ok(())
    }

    #[pyo3(signature = (num, path, recursive = false))]
    fn add_file_monitor(&self, num: i64, path: FsPath, recursive: bool) -> PyResult<()> {
        let num = signal::signum(num)?;
        self.with(|ml| ml.add_file_monitor(num, &path.0, recursive))??;
        Ok(())
    }

    /// Move the wall clock used by cron (`offset` seconds from the real one).
    fn set_clock_offset(&self, offset: i64) -> PyResult<()> {
        self.with(|ml| ml.set_wall_offset(offset))
    }

    /// The wall clock cron sees, in unix seconds.
    fn wall_time(&self) -> PyResult<f64> {
        self.with(|ml| ml.wall_now().as_duration().as_secs_f64())
    }

    /// Run the loop for up to `timeout` seconds (or until a Unix signal wakes it) and return
    /// the events to log, as `(kind, signum, detail)` tuples.
    #[pyo3(signature = (timeout = 1.0))]
    fn step<'py>(&self, py: Python<'py>, timeout: f64) -> PyResult<Vec<Bound<'py, PyTuple>>> {
        let total = Duration::try_from_secs_f64(timeout)
            .map_err(|_| Error::BadTimeout { optional: false })?;
        let deadline = std::time::Instant::now() + total;
        let signals_wake = self.with(|ml| ml.watches_wakeup_fd())?;
        let events = blocking::wait(
            py,
            Some(deadline),
            signals_wake,
            |slice| self.with(|ml| ml.run(slice)),
            |got| {
                let events = got??;
                if events.is_empty() {
                    return Ok(Flow::Idle);
                }
                // Events already taken off the loop: the handlers run first, then they return.
                py.check_signals()?;
                Ok(Flow::Done(events))
            },
        )?
        .unwrap_or_default();
        events.iter().map(|e| event_tuple(py, e)).collect()
    }
}

/// The file monitors a worker reads itself (see `crate::direct::WorkerMonitors`).
#[pyclass(
    name = "WorkerMonitors",
    module = "_uwsgidecorators_runtime._core",
    frozen
)]
pub(super) struct PyWorkerMonitors {
    pub(super) inner: Mutex<WorkerMonitors>,
}

#[pymethods]
impl PyWorkerMonitors {
    /// The inotify descriptors this worker reads (to wait on them beside other work, such as
    /// serving RPC calls).
    fn fds(&self) -> Vec<i32> {
        lock(&self.inner).fds()
    }
}

/// Direct delivery to one worker (see `crate::direct`).
#[pyclass(
    name = "DirectSender",
    module = "_uwsgidecorators_runtime._core",
    frozen
)]
pub(super) struct PyDirectSender {
    pub(super) inner: DirectSender,
}

#[pymethods]
impl PyDirectSender {
    /// Deliver `num` straight to its worker; False: send it to the master instead.
    fn send(&self, num: i64) -> PyResult<bool> {
        Ok(self.inner.send(signal::signum(num)?))
    }

    /// A worker registered `num` for `target` at run time: the table says so at once.
    fn register(&self, num: i64, target: &str) -> PyResult<()> {
        let t = Target::parse(target)?;
        self.inner.routes().set(signal::signum(num)?, &t);
        Ok(())
    }

    /// The worker `num` goes to directly, or None (through the master).
    fn worker(&self, num: i64) -> PyResult<Option<u32>> {
        Ok(self.inner.routes().worker(signal::signum(num)?))
    }
}

/// `prctl(PR_SET_PDEATHSIG, sig)`: this process gets `sig` when its parent dies. (Through the
/// core rather than ctypes, whose import costs each child about 0.4 MiB.)
#[pyfunction]
pub(super) fn set_parent_death_signal(sig: i32) -> PyResult<()> {
    if !(1..=64).contains(&sig) {
        return Err(Error::BadUnixSignal(sig).into());
    }
    Ok(crate::sys::set_parent_death_signal(sig)?)
}

/// A non-blocking datagram socket bound at `path` (a stale socket file there is replaced); the
/// caller owns the returned descriptor. A child binds its wake-up sockets so, without building
/// Python socket objects it does not otherwise use.
#[pyfunction]
pub(super) fn bind_datagram(path: FsPath) -> PyResult<i32> {
    use std::os::fd::IntoRawFd;
    Ok(crate::sys::bind_datagram(&path.0)
        .map_err(Error::from)?
        .into_raw_fd())
}

/// The path of worker `worker_id`'s direct socket for the control socket `control_path`.
#[pyfunction]
pub(super) fn direct_socket_path(control_path: FsPath, worker_id: u32) -> std::ffi::OsString {
    crate::direct::socket_path(&control_path.0, worker_id).into_os_string()
}

/// (year, month, day, hour, minute)
type CivilTuple = (i32, u8, u8, u8, u8);

/// A cron entry: uWSGI's five integers or a crontab string.
#[pyclass(
    name = "CronSpec",
    module = "_uwsgidecorators_runtime._core",
    frozen,
    eq,
    hash
)]
#[derive(PartialEq, Eq, Hash)]
pub(super) struct PyCronSpec {
    spec: CronSpec,
}

#[pymethods]
impl PyCronSpec {
    /// Parse a crontab string (`"*/5 * * * *"`, `"@daily"`).
    #[new]
    fn new(text: &str) -> PyResult<Self> {
        CronSpec::parse(text)
            .map(|spec| PyCronSpec { spec })
            .map_err(PyErr::from)
    }

    /// uWSGI's `add_cron` integers (-1 any, -N divisible by N).
    /// A value out of its field's range, or a spec that could never fire, raises ValueError.
    #[staticmethod]
    fn from_uwsgi(minute: i64, hour: i64, day: i64, month: i64, weekday: i64) -> PyResult<Self> {
        CronSpec::from_uwsgi(minute, hour, day, month, weekday)
            .map(|spec| PyCronSpec { spec })
            .map_err(PyErr::from)
    }

    /// The five `uwsgi.add_cron` integers with the same meaning, or None if uWSGI cannot say it.
    fn to_uwsgi(&self) -> Option<(i64, i64, i64, i64, i64)> {
        self.spec.to_uwsgi().map(|v| (v[0], v[1], v[2], v[3], v[4]))
    }

    /// True if the wall-clock minute matches.
    fn matches(&self, year: i32, month: u8, day: u8, hour: u8, minute: u8) -> PyResult<bool> {
        Ok(self
            .spec
            .matches(&Civil::checked(year, month, day, hour, minute)?))
    }

    /// The first matching wall-clock minute strictly after the given one, as a tuple.
    fn next_after(
        &self,
        year: i32,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
    ) -> PyResult<Option<CivilTuple>> {
        let c = Civil::checked(year, month, day, hour, minute)?;
        Ok(self
            .spec
            .next_after(&c)
            .map(|n| (n.year, n.month, n.day, n.hour, n.minute)))
    }

    /// The first instant (unix seconds) strictly after `after` whose wall-clock minute matches
    /// in time zone `tz` (None: the system's), each wall-clock minute at most once.
    #[pyo3(signature = (after, tz = None))]
    fn next_fire(&self, after: f64, tz: Option<&str>) -> PyResult<Option<i64>> {
        Ok(tz::next_fire_secs(&self.spec, after, tz)?)
    }

    fn __repr__(&self) -> String {
        let s = &self.spec;
        format!(
            "CronSpec(minutes={:#x}, hours={:#x}, days={:#x}, months={:#x}, weekdays={:#x}, day_or_weekday={})",
            s.minutes, s.hours, s.days, s.months, s.weekdays, s.day_or_weekday
        )
    }
}
