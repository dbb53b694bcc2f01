//! `_core.Supervisor`: the master's respawn/harakiri/shutdown decisions.

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::lock;
use crate::supervisor::{Action, Event, ExitStatus, Level, Supervisor, SupervisorConfig};

#[pyclass(name = "Supervisor", module = "_uwsgidecorators_runtime._core", frozen)]
pub(super) struct PySupervisor {
    inner: Mutex<Supervisor>,
}

fn action_tuple<'py>(py: Python<'py>, a: &Action) -> PyResult<Bound<'py, PyTuple>> {
    match a {
        Action::Spawn { slot } => ("spawn", *slot).into_pyobject(py),
        Action::Term { pid } => ("term", *pid).into_pyobject(py),
        Action::Kill { pid } => ("kill", *pid).into_pyobject(py),
        Action::Exit { code } => ("exit", *code).into_pyobject(py),
        Action::Log { level, message } => {
            let level = match level {
                Level::Info => "info",
                Level::Warning => "warning",
                Level::Error => "error",
            };
            ("log", level, message.as_str()).into_pyobject(py)
        }
    }
}

impl PySupervisor {
    fn run<'py>(&self, py: Python<'py>, ev: Event, now: f64) -> PyResult<Vec<Bound<'py, PyTuple>>> {
        let actions = lock(&self.inner).handle(ev, now);
        actions.iter().map(|a| action_tuple(py, a)).collect()
    }
}

#[pymethods]
impl PySupervisor {
    /// `slots`: one `(label, recycles)` per child the master keeps alive.
    #[new]
    #[pyo3(signature = (slots, *, quick_death = 1.0, first_backoff = 0.25, max_backoff = 8.0, mercy = 30.0, kill_grace = 10.0))]
    fn new(
        slots: Vec<(String, bool)>,
        quick_death: f64,
        first_backoff: f64,
        max_backoff: f64,
        mercy: f64,
        kill_grace: f64,
    ) -> Self {
        let cfg = SupervisorConfig {
            quick_death,
            first_backoff,
            max_backoff,
            mercy,
            kill_grace,
        };
        PySupervisor {
            inner: Mutex::new(Supervisor::new(cfg, slots)),
        }
    }

    fn start<'py>(&self, py: Python<'py>, now: f64) -> PyResult<Vec<Bound<'py, PyTuple>>> {
        self.run(py, Event::Start, now)
    }

    fn spawned<'py>(
        &self,
        py: Python<'py>,
        slot: usize,
        pid: u32,
        now: f64,
    ) -> PyResult<Vec<Bound<'py, PyTuple>>> {
        self.run(py, Event::Spawned { slot, pid }, now)
    }

    /// `status` is the raw status from `os.waitpid`.
    fn exited<'py>(
        &self,
        py: Python<'py>,
        pid: u32,
        status: i32,
        now: f64,
    ) -> PyResult<Vec<Bound<'py, PyTuple>>> {
        let status = if libc::WIFSIGNALED(status) {
            ExitStatus::Signal(libc::WTERMSIG(status))
        } else {
            ExitStatus::Code(libc::WEXITSTATUS(status))
        };
        self.run(py, Event::Exited { pid, status }, now)
    }

    /// `what` names the deadline that passed, for the log line.
    #[pyo3(signature = (slot, pid, now, what = "harakiri"))]
    fn harakiri<'py>(
        &self,
        py: Python<'py>,
        slot: usize,
        pid: u32,
        now: f64,
        what: &str,
    ) -> PyResult<Vec<Bound<'py, PyTuple>>> {
        self.run(
            py,
            Event::HarakiriExpired {
                slot,
                pid,
                what: what.to_owned(),
            },
            now,
        )
    }

    /// The fork of `slot` failed with `error`: it is retried after the back-off.
    fn spawn_failed<'py>(
        &self,
        py: Python<'py>,
        slot: usize,
        error: &str,
        now: f64,
    ) -> PyResult<Vec<Bound<'py, PyTuple>>> {
        self.run(
            py,
            Event::SpawnFailed {
                slot,
                error: error.to_owned(),
            },
            now,
        )
    }

    /// `why` names the request (e.g. "SIGTERM"), for the log line.
    #[pyo3(signature = (now, why = "stop"))]
    fn stop<'py>(
        &self,
        py: Python<'py>,
        now: f64,
        why: &str,
    ) -> PyResult<Vec<Bound<'py, PyTuple>>> {
        self.run(
            py,
            Event::Stop {
                why: why.to_owned(),
            },
            now,
        )
    }

    fn tick<'py>(&self, py: Python<'py>, now: f64) -> PyResult<Vec<Bound<'py, PyTuple>>> {
        self.run(py, Event::Tick, now)
    }

    /// When `tick` must be called next at the latest (None: only on events).
    fn next_deadline(&self) -> Option<f64> {
        lock(&self.inner).next_deadline()
    }

    fn pid(&self, slot: usize) -> Option<u32> {
        lock(&self.inner).pid(slot)
    }

    #[getter]
    fn finished(&self) -> bool {
        lock(&self.inner).finished()
    }
}
