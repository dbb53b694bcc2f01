//! `_core.Supervisor`: the master's respawn/harakiri/shutdown decisions.

use std::sync::Mutex;

use pyo3::prelude::*;

use super::lock;
use crate::supervisor::{Action, Event, ExitStatus, Level, Supervisor, SupervisorConfig};

#[pyclass(name = "Supervisor", module = "_uwsgidecorators_runtime._core", frozen)]
pub(super) struct PySupervisor {
    inner: Mutex<Supervisor>,
}

/// What the master must do, as `Action.Spawn(slot)`, `Action.Term(pid)`, `Action.Kill(pid)`,
/// `Action.Log(level, message)`, `Action.Exit(code)`, `Action.Reload()` (one Python class per
/// variant, matchable).
#[pyclass(name = "Action", module = "_uwsgidecorators_runtime._core", frozen, eq)]
#[derive(PartialEq)]
pub(super) enum PyAction {
    Spawn { slot: usize },
    Term { pid: u32 },
    Kill { pid: u32 },
    Log { level: String, message: String },
    Exit { code: i32 },
    Reload {},
}

#[pymethods]
impl PyAction {
    fn __repr__(&self) -> String {
        match self {
            PyAction::Spawn { slot } => format!("Action.Spawn(slot={slot})"),
            PyAction::Term { pid } => format!("Action.Term(pid={pid})"),
            PyAction::Kill { pid } => format!("Action.Kill(pid={pid})"),
            PyAction::Log { level, message } => {
                format!("Action.Log(level={level:?}, message={message:?})")
            }
            PyAction::Exit { code } => format!("Action.Exit(code={code})"),
            PyAction::Reload {} => "Action.Reload()".to_owned(),
        }
    }
}

impl From<Action> for PyAction {
    fn from(a: Action) -> Self {
        match a {
            Action::Spawn { slot } => PyAction::Spawn { slot },
            Action::Term { pid } => PyAction::Term { pid },
            Action::Kill { pid } => PyAction::Kill { pid },
            Action::Exit { code } => PyAction::Exit { code },
            Action::Reload => PyAction::Reload {},
            Action::Log { level, message } => PyAction::Log {
                level: match level {
                    Level::Info => "info",
                    Level::Warning => "warning",
                    Level::Error => "error",
                }
                .to_owned(),
                message,
            },
        }
    }
}

impl PySupervisor {
    fn run(&self, ev: Event, now: f64) -> Vec<PyAction> {
        let actions = lock(&self.inner).handle(ev, now);
        actions.into_iter().map(PyAction::from).collect()
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

    fn start(&self, now: f64) -> Vec<PyAction> {
        self.run(Event::Start, now)
    }

    fn spawned(&self, slot: usize, pid: u32, now: f64) -> Vec<PyAction> {
        self.run(Event::Spawned { slot, pid }, now)
    }

    /// `status` is the raw status from `os.waitpid`.
    fn exited(&self, pid: u32, status: i32, now: f64) -> Vec<PyAction> {
        let status = if libc::WIFSIGNALED(status) {
            ExitStatus::Signal(libc::WTERMSIG(status))
        } else {
            ExitStatus::Code(libc::WEXITSTATUS(status))
        };
        self.run(Event::Exited { pid, status }, now)
    }

    /// `what` names the deadline that passed and `function` the function it guarded ("" when
    /// unknown), for the log line.
    #[pyo3(signature = (slot, pid, now, what = "harakiri", function = ""))]
    fn harakiri(
        &self,
        slot: usize,
        pid: u32,
        now: f64,
        what: &str,
        function: &str,
    ) -> Vec<PyAction> {
        self.run(
            Event::HarakiriExpired {
                slot,
                pid,
                what: what.to_owned(),
                function: function.to_owned(),
            },
            now,
        )
    }

    /// A graceful reload: every child is stopped (with mercy), then `Action.Reload()`.
    #[pyo3(signature = (now, why = "reload"))]
    fn reload(&self, now: f64, why: &str) -> Vec<PyAction> {
        self.run(
            Event::Reload {
                why: why.to_owned(),
            },
            now,
        )
    }

    /// Restart these slots gracefully (SIGTERM; respawned at once when they exit).
    #[pyo3(signature = (slots, now, why = "restart"))]
    fn restart(&self, slots: Vec<usize>, now: f64, why: &str) -> Vec<PyAction> {
        self.run(
            Event::Restart {
                slots,
                why: why.to_owned(),
            },
            now,
        )
    }

    /// The fork of `slot` failed with `error`: it is retried after the back-off.
    fn spawn_failed(&self, slot: usize, error: &str, now: f64) -> Vec<PyAction> {
        self.run(
            Event::SpawnFailed {
                slot,
                error: error.to_owned(),
            },
            now,
        )
    }

    /// `why` names the request (e.g. "SIGTERM"), for the log line.
    #[pyo3(signature = (now, why = "stop"))]
    fn stop(&self, now: f64, why: &str) -> Vec<PyAction> {
        self.run(
            Event::Stop {
                why: why.to_owned(),
            },
            now,
        )
    }

    fn tick(&self, now: f64) -> Vec<PyAction> {
        self.run(Event::Tick, now)
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
