//! The master's decisions about its children, as a pure state machine: when to spawn, when to
//! respawn and after what back-off, whom to kill at harakiri and at shutdown, and when to exit.
//!
//! [`Supervisor::handle`] takes an [`Event`] (with the time it happened, in seconds on any
//! monotonic clock) and returns [`Action`]s for the owner to carry out (fork, kill, exit) and
//! log lines to print. It never reads a clock or touches a process, so unit tests drive it with
//! synthetic events. The owner calls it with `Tick` at [`Supervisor::next_deadline`] at the latest.
//!
//! Rules:
//! - every slot is spawned at start;
//! - a child that exits is respawned: at once if it lived at least `quick_death` seconds, if it
//!   recycled itself (a spooler that reached `--spooler-max-tasks` exits 0), or if harakiri
//!   killed it; otherwise after a back-off that doubles with each quick death, up to
//!   `max_backoff` (a crash loop must not spin the machine);
//! - harakiri: SIGKILL the child, once;
//! - stop: SIGTERM every child, wait until all exited or `mercy` seconds passed, then SIGKILL the
//!   rest; exit 0 when none is left. A second stop request (Ctrl-C twice) kills at once. Nothing
//!   is spawned once stopping;
//! - reload: the same graceful stop, ending in `Reload` (the owner re-executes itself) instead of
//!   `Exit`; a stop request during it turns it into a stop;
//! - restart of some slots (`--touch-spoolers-reload`): SIGTERM to those children, respawned at
//!   once when they exit.

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    Signal(i32),
}

impl ExitStatus {
    fn describe(self) -> String {
        match self {
            ExitStatus::Code(c) => format!("exited with code {c}"),
            ExitStatus::Signal(s) => format!("killed by signal {s}"),
        }
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Start,
    /// The owner forked slot `slot` as `pid`.
    Spawned {
        slot: usize,
        pid: u32,
    },
    Exited {
        pid: u32,
        status: ExitStatus,
    },
    /// A child's harakiri deadline passed; `what` names the deadline, for the log.
    HarakiriExpired {
        slot: usize,
        pid: u32,
        what: String,
        /// The function the deadline guarded, as the child published it ("" when unknown).
        function: String,
    },
    /// The owner could not fork slot `slot` (it is retried after the back-off).
    SpawnFailed {
        slot: usize,
        error: String,
    },
    /// SIGTERM/SIGINT reached the master; `why` names it, for the log.
    Stop {
        why: String,
    },
    /// A graceful reload was asked (SIGHUP, `uwsgi.reload()`, a touched file); `why` names it.
    Reload {
        why: String,
    },
    /// Restart these slots gracefully (`--touch-spoolers-reload`); `why` names it.
    Restart {
        slots: Vec<usize>,
        why: String,
    },
    /// Time passed.
    Tick,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Spawn {
        slot: usize,
    },
    Term {
        pid: u32,
    },
    Kill {
        pid: u32,
    },
    Log {
        level: Level,
        message: String,
    },
    Exit {
        code: i32,
    },
    /// Every child is gone after a reload request: re-execute the master.
    Reload,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
    Error,
}

/// Settings.
#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    /// A child that dies sooner than this after its spawn is in a crash loop.
    pub quick_death: f64,
    /// First back-off after a quick death; doubled each time.
    pub first_backoff: f64,
    pub max_backoff: f64,
    /// How long a stop waits for running tasks before SIGKILL.
    pub mercy: f64,
    /// How long, after SIGKILL at the end of a stop, to wait for children the kernel has not
    /// reaped yet (stuck in uninterruptible sleep) before exiting anyway.
    pub kill_grace: f64,
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        SupervisorConfig {
            quick_death: 1.0,
            first_backoff: 0.25,
            max_backoff: 8.0,
            mercy: 30.0,
            kill_grace: 10.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum SlotState {
    /// Waiting to be (re)spawned at this time.
    Down { at: f64 },
    /// Spawn asked, pid not known yet.
    Spawning,
    Up {
        pid: u32,
        since: f64,
        /// Killed by harakiri or asked to restart: respawned at once when it exits.
        harakiri: bool,
    },
}

#[derive(Debug, Clone)]
struct Slot {
    label: String,
    /// A spooler recycles itself by exiting 0.
    recycles: bool,
    state: SlotState,
    quick_deaths: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Idle,
    Running,
    /// `reload`: end with `Action::Reload` instead of `Action::Exit`.
    Stopping {
        until: f64,
        killed: bool,
        reload: bool,
    },
    Done,
}

/// The state machine.
#[derive(Debug, Clone)]
pub struct Supervisor {
    cfg: SupervisorConfig,
    slots: Vec<Slot>,
    phase: Phase,
}

impl Supervisor {
    /// `slots`: one (label, recycles) per child process the master keeps alive.
    pub fn new(cfg: SupervisorConfig, slots: Vec<(String, bool)>) -> Self {
        Supervisor {
            cfg,
            slots: slots
                .into_iter()
                .map(|(label, recycles)| Slot {
                    label,
                    recycles,
                    state: SlotState::Down { at: 0.0 },
                    quick_deaths: 0,
                })
                .collect(),
            phase: Phase::Idle,
        }
    }

    /// The pid in a slot, if it runs.
    pub fn pid(&self, slot: usize) -> Option<u32> {
        match self.slots.get(slot)?.state {
            SlotState::Up { pid, .. } => Some(pid),
            _ => None,
        }
    }

    fn slot_of(&self, pid: u32) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| matches!(s.state, SlotState::Up { pid: p, .. } if p == pid))
    }

    fn alive(&self) -> impl Iterator<Item = u32> + '_ {
        self.slots.iter().filter_map(|s| match s.state {
            SlotState::Up { pid, .. } => Some(pid),
            _ => None,
        })
    }

    /// True once `Exit` was returned.
    pub fn finished(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The latest time by which the owner must send `Tick` (a respawn or the end of mercy).
    pub fn next_deadline(&self) -> Option<f64> {
        match self.phase {
            Phase::Running => self
                .slots
                .iter()
                .filter_map(|s| match s.state {
                    SlotState::Down { at } => Some(at),
                    _ => None,
                })
                .reduce(f64::min),
            Phase::Stopping { until, .. } => Some(until),
            Phase::Idle | Phase::Done => None,
        }
    }

    fn log(out: &mut Vec<Action>, level: Level, message: String) {
        out.push(Action::Log { level, message });
    }

    /// Feed one event that happened at `now`.
    pub fn handle(&mut self, event: Event, now: f64) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Start => {
                if self.phase == Phase::Idle {
                    self.phase = Phase::Running;
                    for s in &mut self.slots {
                        s.state = SlotState::Down { at: now };
                    }
                }
            }
            Event::Spawned { slot, pid } => {
                if let Some(s) = self.slots.get_mut(slot) {
                    s.state = SlotState::Up {
                        pid,
                        since: now,
                        harakiri: false,
                    };
                }
                // Spawned while a stop was already under way: stop it too.
                if matches!(self.phase, Phase::Stopping { .. }) {
                    out.push(Action::Term { pid });
                }
            }
            Event::Exited { pid, status } => self.exited(pid, status, now, &mut out),
            Event::SpawnFailed { slot, error } => {
                let running = self.phase == Phase::Running;
                let (first, max) = (self.cfg.first_backoff, self.cfg.max_backoff);
                if let Some(s) = self.slots.get_mut(slot) {
                    if s.state == SlotState::Spawning {
                        s.quick_deaths += 1;
                        let exp = (s.quick_deaths - 1).min(30) as i32;
                        let delay = (first * 2f64.powi(exp)).min(max);
                        s.state = SlotState::Down {
                            at: if running { now + delay } else { f64::INFINITY },
                        };
                        Self::log(
                            &mut out,
                            Level::Error,
                            format!("cannot spawn {}: {error}; retrying in {delay} s", s.label),
                        );
                    }
                }
            }
            Event::HarakiriExpired {
                slot,
                pid,
                what,
                function,
            } => {
                if let Some(s) = self.slots.get_mut(slot) {
                    if let SlotState::Up {
                        pid: p,
                        harakiri: ref mut h,
                        ..
                    } = s.state
                    {
                        if p == pid && !*h {
                            *h = true;
                            out.push(Action::Kill { pid });
                            let running = if function.is_empty() {
                                String::new()
                            } else {
                                format!(" running {function}")
                            };
                            Self::log(
                                &mut out,
                                Level::Error,
                                format!(
                                    "*** HARAKIRI ON {} (pid: {pid}){running}: {what} deadline passed, SIGKILL ***",
                                    s.label.to_uppercase()
                                ),
                            );
                        }
                    }
                }
            }
            Event::Stop { why } => match self.phase {
                Phase::Idle | Phase::Running => {
                    self.begin_stop(now, false, format!("{why} received: stopping"), &mut out)
                }
                Phase::Stopping {
                    until,
                    killed,
                    reload: true,
                } => {
                    // A stop during a reload: the master exits instead, mercy unchanged.
                    self.phase = Phase::Stopping {
                        until,
                        killed,
                        reload: false,
                    };
                    Self::log(
                        &mut out,
                        Level::Warning,
                        format!("{why} received during the reload: the master will exit instead"),
                    );
                }
                Phase::Stopping { killed, .. } => {
                    // A second request: no more mercy.
                    if !killed {
                        Self::log(
                            &mut out,
                            Level::Warning,
                            format!("{why} received again: no more mercy, SIGKILL to what is left"),
                        );
                        self.phase = Phase::Stopping {
                            until: now,
                            killed: false,
                            reload: false,
                        };
                    }
                }
                Phase::Done => {}
            },
            Event::Reload { why } => match self.phase {
                Phase::Running => self.begin_stop(
                    now,
                    true,
                    format!("{why}: graceful reload, stopping"),
                    &mut out,
                ),
                Phase::Idle | Phase::Done => {}
                Phase::Stopping { .. } => Self::log(
                    &mut out,
                    Level::Warning,
                    format!("{why}: ignored, the master is already stopping or reloading"),
                ),
            },
            Event::Restart { slots, why } => {
                if self.phase == Phase::Running {
                    let mut names = Vec::new();
                    for slot in slots {
                        if let Some(s) = self.slots.get_mut(slot) {
                            if let SlotState::Up {
                                pid,
                                harakiri: ref mut h,
                                ..
                            } = s.state
                            {
                                *h = true;
                                out.push(Action::Term { pid });
                                names.push(format!("{} (pid: {pid})", s.label));
                            }
                        }
                    }
                    Self::log(
                        &mut out,
                        Level::Info,
                        if names.is_empty() {
                            format!("{why}: nothing to restart")
                        } else {
                            format!("{why}: gracefully restarting {}", names.join(", "))
                        },
                    );
                }
            }
            Event::Tick => {}
        }
        self.tick(now, &mut out);
        out
    }

    /// SIGTERM every child and wait for them (`mercy`), then exit or reload.
    fn begin_stop(&mut self, now: f64, reload: bool, what: String, out: &mut Vec<Action>) {
        self.phase = Phase::Stopping {
            until: now + self.cfg.mercy,
            killed: false,
            reload,
        };
        let pids: Vec<u32> = self.alive().collect();
        Self::log(
            out,
            Level::Info,
            format!(
                "{what} {} child process(es), waiting up to {} s for running tasks",
                pids.len(),
                self.cfg.mercy
            ),
        );
        out.extend(pids.into_iter().map(|pid| Action::Term { pid }));
        for s in &mut self.slots {
            if !matches!(s.state, SlotState::Up { .. } | SlotState::Spawning) {
                s.state = SlotState::Down { at: f64::INFINITY };
            }
        }
    }

    fn finish(&mut self, reload: bool, out: &mut Vec<Action>) {
        self.phase = Phase::Done;
        out.push(if reload {
            Action::Reload
        } else {
            Action::Exit { code: 0 }
        });
    }

    fn exited(&mut self, pid: u32, status: ExitStatus, now: f64, out: &mut Vec<Action>) {
        let Some(i) = self.slot_of(pid) else {
            return; // not ours (a grandchild adopted by a subreaper) or already handled
        };
        let cfg = self.cfg.clone();
        let running = self.phase == Phase::Running;
        let s = &mut self.slots[i];
        let SlotState::Up {
            since, harakiri, ..
        } = s.state
        else {
            return;
        };
        let how = status.describe();
        if !running {
            s.state = SlotState::Down { at: f64::INFINITY };
            Self::log(out, Level::Info, format!("{} (pid: {pid}) {how}", s.label));
            return;
        }
        let recycled = s.recycles && status == ExitStatus::Code(0);
        let delay = if recycled || harakiri || now - since >= cfg.quick_death {
            s.quick_deaths = 0;
            0.0
        } else {
            s.quick_deaths += 1;
            let exp = (s.quick_deaths - 1).min(30) as i32;
            (cfg.first_backoff * 2f64.powi(exp)).min(cfg.max_backoff)
        };
        s.state = SlotState::Down { at: now + delay };
        if recycled {
            Self::log(
                out,
                Level::Info,
                format!("{} (pid: {pid}) recycled itself, respawning", s.label),
            );
        } else if delay > 0.0 {
            Self::log(
                out,
                Level::Warning,
                format!(
                    "DAMN ! {} (pid: {pid}) {how}, respawning in {delay} s (it died {} time(s) right after starting)",
                    s.label, s.quick_deaths
                ),
            );
        } else {
            Self::log(
                out,
                Level::Warning,
                format!("DAMN ! {} (pid: {pid}) {how}, respawning", s.label),
            );
        }
    }

    fn tick(&mut self, now: f64, out: &mut Vec<Action>) {
        match self.phase {
            Phase::Running => {
                for (slot, s) in self.slots.iter_mut().enumerate() {
                    if let SlotState::Down { at } = s.state {
                        if at <= now {
                            s.state = SlotState::Spawning;
                            out.push(Action::Spawn { slot });
                        }
                    }
                }
            }
            Phase::Stopping {
                until,
                killed,
                reload,
            } => {
                let pids: Vec<u32> = self.alive().collect();
                if pids.is_empty() && !self.slots.iter().any(|s| s.state == SlotState::Spawning) {
                    self.finish(reload, out);
                } else if killed && now >= until {
                    Self::log(
                        out,
                        Level::Error,
                        format!(
                            "{} child process(es) still not dead {} s after SIGKILL (pids: {pids:?}): {} anyway",
                            pids.len(),
                            self.cfg.kill_grace,
                            if reload { "reloading" } else { "exiting" }
                        ),
                    );
                    self.finish(reload, out);
                } else if !killed && now >= until {
                    out.extend(pids.iter().map(|&pid| Action::Kill { pid }));
                    if !pids.is_empty() {
                        Self::log(
                            out,
                            Level::Warning,
                            format!("mercy over: SIGKILL to {} child process(es)", pids.len()),
                        );
                    }
                    // Killed children still have to be reaped: wait for their exits, a while.
                    self.phase = Phase::Stopping {
                        until: now + self.cfg.kill_grace,
                        killed: true,
                        reload,
                    };
                }
            }
            Phase::Idle | Phase::Done => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sup() -> Supervisor {
        Supervisor::new(
            SupervisorConfig::default(),
            vec![("spooler 1".into(), true), ("worker 1".into(), false)],
        )
    }

    fn spawns(actions: &[Action]) -> Vec<usize> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Spawn { slot } => Some(*slot),
                _ => None,
            })
            .collect()
    }

    fn started() -> Supervisor {
        let mut s = sup();
        assert_eq!(spawns(&s.handle(Event::Start, 0.0)), vec![0, 1]);
        s.handle(Event::Spawned { slot: 0, pid: 100 }, 0.0);
        s.handle(Event::Spawned { slot: 1, pid: 101 }, 0.0);
        s
    }

    #[test]
    fn respawns_at_once_after_a_long_life() {
        let mut s = started();
        let a = s.handle(
            Event::Exited {
                pid: 101,
                status: ExitStatus::Signal(9),
            },
            50.0,
        );
        assert_eq!(spawns(&a), vec![1]);
        assert_eq!(s.pid(1), None);
    }

    #[test]
    fn crash_loop_backs_off_and_resets() {
        let mut s = started();
        let a = s.handle(
            Event::Exited {
                pid: 101,
                status: ExitStatus::Code(1),
            },
            0.1,
        );
        assert!(spawns(&a).is_empty());
        assert_eq!(s.next_deadline(), Some(0.35));
        assert!(spawns(&s.handle(Event::Tick, 0.3)).is_empty());
        assert_eq!(spawns(&s.handle(Event::Tick, 0.35)), vec![1]);
        s.handle(Event::Spawned { slot: 1, pid: 102 }, 0.35);
        s.handle(
            Event::Exited {
                pid: 102,
                status: ExitStatus::Code(1),
            },
            0.4,
        );
        assert_eq!(s.next_deadline(), Some(0.9)); // 0.5 s: doubled
        s.handle(Event::Tick, 0.9);
        s.handle(Event::Spawned { slot: 1, pid: 103 }, 0.9);
        // Lives long enough: the next death respawns at once.
        let a = s.handle(
            Event::Exited {
                pid: 103,
                status: ExitStatus::Code(1),
            },
            10.0,
        );
        assert_eq!(spawns(&a), vec![1]);
    }

    #[test]
    fn backoff_is_capped() {
        let mut s = started();
        let mut pid = 101;
        let mut now = 0.0;
        for _ in 0..20 {
            s.handle(
                Event::Exited {
                    pid,
                    status: ExitStatus::Code(1),
                },
                now,
            );
            now = s.next_deadline().unwrap();
            s.handle(Event::Tick, now);
            pid += 1;
            s.handle(Event::Spawned { slot: 1, pid }, now);
        }
        s.handle(
            Event::Exited {
                pid,
                status: ExitStatus::Code(1),
            },
            now,
        );
        assert_eq!(s.next_deadline(), Some(now + 8.0));
    }

    #[test]
    fn recycled_spooler_respawns_at_once_even_quickly() {
        let mut s = started();
        let a = s.handle(
            Event::Exited {
                pid: 100,
                status: ExitStatus::Code(0),
            },
            0.1,
        );
        assert_eq!(spawns(&a), vec![0]);
    }

    #[test]
    fn harakiri_kills_once_and_respawns_at_once() {
        let mut s = started();
        let a = s.handle(
            Event::HarakiriExpired {
                slot: 0,
                pid: 100,
                what: "task".into(),
                function: "tasks.slow".into(),
            },
            0.2,
        );
        assert!(a.contains(&Action::Kill { pid: 100 }));
        let a = s.handle(
            Event::HarakiriExpired {
                slot: 0,
                pid: 100,
                what: "task".into(),
                function: "tasks.slow".into(),
            },
            0.3,
        );
        assert!(!a.contains(&Action::Kill { pid: 100 }));
        let a = s.handle(
            Event::Exited {
                pid: 100,
                status: ExitStatus::Signal(9),
            },
            0.4,
        );
        assert_eq!(spawns(&a), vec![0]);
    }

    #[test]
    fn harakiri_line_names_the_process_pid_and_function() {
        let mut s = started();
        let a = s.handle(
            Event::HarakiriExpired {
                slot: 1,
                pid: 101,
                what: "user".into(),
                function: "tasks.slow".into(),
            },
            0.2,
        );
        assert!(a.iter().any(|x| matches!(x, Action::Log { message, .. }
            if message.contains("HARAKIRI ON WORKER 1 (pid: 101) running tasks.slow: user deadline passed"))));
    }

    #[test]
    fn reload_stops_gracefully_then_reloads_instead_of_exiting() {
        let mut s = started();
        let a = s.handle(
            Event::Reload {
                why: "SIGHUP".into(),
            },
            5.0,
        );
        assert!(a.contains(&Action::Term { pid: 100 }) && a.contains(&Action::Term { pid: 101 }));
        // a second reload while stopping changes nothing
        let a = s.handle(
            Event::Reload {
                why: "SIGHUP".into(),
            },
            5.1,
        );
        assert!(
            !a.iter()
                .any(|x| matches!(x, Action::Term { .. } | Action::Reload))
        );
        let a = s.handle(
            Event::Exited {
                pid: 100,
                status: ExitStatus::Code(0),
            },
            6.0,
        );
        assert!(spawns(&a).is_empty() && !a.contains(&Action::Reload));
        let a = s.handle(
            Event::Exited {
                pid: 101,
                status: ExitStatus::Code(0),
            },
            6.5,
        );
        assert!(a.contains(&Action::Reload) && !a.contains(&Action::Exit { code: 0 }));
        assert!(s.finished());
    }

    #[test]
    fn reload_past_mercy_kills_then_reloads() {
        let mut s = started();
        s.handle(
            Event::Reload {
                why: "SIGHUP".into(),
            },
            0.0,
        );
        let a = s.handle(Event::Tick, 31.0);
        assert!(a.contains(&Action::Kill { pid: 100 }));
        s.handle(
            Event::Exited {
                pid: 100,
                status: ExitStatus::Signal(9),
            },
            31.1,
        );
        let a = s.handle(
            Event::Exited {
                pid: 101,
                status: ExitStatus::Signal(9),
            },
            31.2,
        );
        assert!(a.contains(&Action::Reload));
    }

    #[test]
    fn a_stop_during_a_reload_exits() {
        let mut s = started();
        s.handle(
            Event::Reload {
                why: "SIGHUP".into(),
            },
            0.0,
        );
        s.handle(
            Event::Stop {
                why: "SIGTERM".into(),
            },
            0.5,
        );
        s.handle(
            Event::Exited {
                pid: 100,
                status: ExitStatus::Code(0),
            },
            1.0,
        );
        let a = s.handle(
            Event::Exited {
                pid: 101,
                status: ExitStatus::Code(0),
            },
            1.0,
        );
        assert!(a.contains(&Action::Exit { code: 0 }) && !a.contains(&Action::Reload));
    }

    #[test]
    fn restart_terms_only_those_slots_and_respawns_them_at_once() {
        let mut s = started();
        let a = s.handle(
            Event::Restart {
                slots: vec![0],
                why: "touched".into(),
            },
            0.1,
        );
        assert!(a.contains(&Action::Term { pid: 100 }) && !a.contains(&Action::Term { pid: 101 }));
        // it exits quickly (a crash would be backed off), but a restart respawns at once
        let a = s.handle(
            Event::Exited {
                pid: 100,
                status: ExitStatus::Signal(15),
            },
            0.2,
        );
        assert_eq!(spawns(&a), vec![0]);
    }

    #[test]
    fn stop_terms_waits_then_kills_and_exits() {
        let mut s = started();
        let a = s.handle(
            Event::Stop {
                why: "SIGTERM".into(),
            },
            5.0,
        );
        assert!(a.contains(&Action::Term { pid: 100 }) && a.contains(&Action::Term { pid: 101 }));
        // Nothing is respawned while stopping.
        let a = s.handle(
            Event::Exited {
                pid: 101,
                status: ExitStatus::Code(0),
            },
            6.0,
        );
        assert!(spawns(&a).is_empty());
        assert_eq!(s.next_deadline(), Some(35.0));
        let a = s.handle(Event::Tick, 35.0);
        assert!(a.contains(&Action::Kill { pid: 100 }));
        assert!(!s.finished());
        let a = s.handle(
            Event::Exited {
                pid: 100,
                status: ExitStatus::Signal(9),
            },
            35.1,
        );
        assert!(a.contains(&Action::Exit { code: 0 }));
        assert!(s.finished());
    }

    #[test]
    fn stop_exits_as_soon_as_children_are_gone() {
        let mut s = started();
        s.handle(
            Event::Stop {
                why: "SIGTERM".into(),
            },
            1.0,
        );
        s.handle(
            Event::Exited {
                pid: 100,
                status: ExitStatus::Code(0),
            },
            1.1,
        );
        let a = s.handle(
            Event::Exited {
                pid: 101,
                status: ExitStatus::Code(0),
            },
            1.2,
        );
        assert_eq!(a.last(), Some(&Action::Exit { code: 0 }));
    }

    #[test]
    fn second_stop_kills_at_once() {
        let mut s = started();
        s.handle(
            Event::Stop {
                why: "SIGTERM".into(),
            },
            1.0,
        );
        let a = s.handle(
            Event::Stop {
                why: "SIGTERM".into(),
            },
            1.5,
        );
        assert!(a.contains(&Action::Kill { pid: 100 }) && a.contains(&Action::Kill { pid: 101 }));
    }

    #[test]
    fn child_spawned_during_stop_is_stopped() {
        let mut s = sup();
        s.handle(Event::Start, 0.0);
        s.handle(
            Event::Stop {
                why: "SIGTERM".into(),
            },
            0.0,
        );
        let a = s.handle(Event::Spawned { slot: 0, pid: 7 }, 0.01);
        assert!(a.contains(&Action::Term { pid: 7 }));
    }

    #[test]
    fn children_that_never_die_do_not_hold_the_master_for_ever() {
        let mut s = started();
        s.handle(
            Event::Stop {
                why: "SIGTERM".into(),
            },
            0.0,
        );
        let a = s.handle(Event::Tick, 30.0);
        assert!(a.contains(&Action::Kill { pid: 100 }));
        assert!(!s.finished());
        assert_eq!(s.next_deadline(), Some(40.0));
        let a = s.handle(Event::Tick, 40.0);
        assert_eq!(a.last(), Some(&Action::Exit { code: 0 }));
    }

    #[test]
    fn failed_spawn_is_retried_after_a_back_off() {
        let mut s = sup();
        s.handle(Event::Start, 0.0);
        let a = s.handle(
            Event::SpawnFailed {
                slot: 1,
                error: "EAGAIN".into(),
            },
            0.0,
        );
        assert!(spawns(&a).is_empty());
        assert_eq!(s.next_deadline(), Some(0.25));
        assert_eq!(spawns(&s.handle(Event::Tick, 0.25)), vec![1]);
        // While stopping, a failed spawn does not block the exit.
        s.handle(Event::Spawned { slot: 0, pid: 5 }, 0.3);
        s.handle(
            Event::Stop {
                why: "SIGINT".into(),
            },
            0.3,
        );
        s.handle(
            Event::SpawnFailed {
                slot: 1,
                error: "EAGAIN".into(),
            },
            0.3,
        );
        let a = s.handle(
            Event::Exited {
                pid: 5,
                status: ExitStatus::Code(0),
            },
            0.4,
        );
        assert_eq!(a.last(), Some(&Action::Exit { code: 0 }));
    }

    #[test]
    fn unknown_pids_are_ignored() {
        let mut s = started();
        assert!(
            s.handle(
                Event::Exited {
                    pid: 999,
                    status: ExitStatus::Code(0)
                },
                1.0
            )
            .is_empty()
        );
    }
}
