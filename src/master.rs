//! The master's event loop: one thread, one `poll` over the control socket, the timer fd, the
//! file monitor and the Python wake-up fd. No thread is ever started here, so the process that
//! runs it can fork safely.
//!
//! It owns the signal table, the timers (a [`TimerWheel`] on microseconds, armed through a
//! `timerfd` so a deadline is met to the microsecond, not the poll's millisecond), the cron
//! entries (on the wall clock, which tests can move) and the file monitors, and it routes every
//! raised signal to the processes the owner registered (one datagram byte per delivery).
//!
//! Control datagrams (from children and attached processes, on a Unix socket) are
//! [`crate::proto::control`]'s; their format is documented there, once.
//! A datagram that cannot be applied is reported as [`LoopEvent::BadControl`] with the reason.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::cron::{CronSpec, tz};
use crate::direct::DirectRoutes;
use crate::fsmon::{FileMonitor, MonitorError};
use crate::proto::control::{Control, CronForm, DecodeError};
use crate::signal::{self, Delivery, Kind, SignalError, SignalTable, Target, Topology};
use crate::sys;
use crate::timer::{TimerKey, TimerWheel};

/// Longest poll without looking at the wall clock (cron must notice clock jumps).
const WALL_CHECK: Duration = Duration::from_secs(1);

/// Why a scheduling call was refused.
#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    #[error(transparent)]
    Signal(#[from] SignalError),
    #[error(transparent)]
    Monitor(#[from] MonitorError),
    #[error(
        "timer period must be a number of seconds over 0 (at least 1 us) and at most 1e9, got {0}"
    )]
    BadPeriod(f64),
    #[error("unknown time zone {0:?}")]
    BadTimeZone(String),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Something the owner should log or act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoopEvent {
    /// A raised signal has no registered target.
    Unregistered { num: u8, source: &'static str },
    /// A raised signal's target has no process.
    Unrouted { num: u8, reason: String },
    /// A delivery queue was full: the signal was lost there.
    QueueFull { num: u8, to: String },
    /// The Python wake-up fd fired (a Unix signal arrived in the owner process).
    Wakeup,
    /// A control datagram was not understood or refused.
    BadControl { reason: String },
    /// A file hook (`add_file_hook`) saw its path change.
    FileHook { hook: u32 },
    /// A process asked for a graceful reload (`uwsgi.reload()`); `pid` is the sender's word.
    Reload { pid: u32 },
}

/// What a file monitor stands for: a signal to raise, or one of the owner's hooks to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Watch {
    Signal(u8),
    Hook(u32),
}

#[derive(Debug)]
struct TimerEntry {
    signum: u8,
    period_us: u64,
    origin_us: u64,
    /// `None`: for ever.
    left: Option<u32>,
    key: Option<TimerKey>,
}

#[derive(Debug)]
struct CronEntry {
    signum: u8,
    spec: CronSpec,
    tz: TimeZone,
    catch_up: bool,
    next: Option<Timestamp>,
}

/// Who reads a file monitor's events when it is not the master.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reader {
    /// `workerN`: worker N.
    Worker(u32),
    /// `worker`: every worker, and the first to read takes the event.
    AnyWorker,
}

/// The master loop.
pub struct MasterLoop {
    base_ns: u64,
    control: UnixDatagram,
    control_path: PathBuf,
    timerfd: sys::TimerFd,
    /// The deadline the timerfd is armed for (microsecond tick), to skip re-arming it each turn.
    armed: Option<Option<u64>>,
    wakeup_fd: Option<RawFd>,
    table: SignalTable,
    /// The table's single-worker targets, shared with the children (see [`crate::direct`]).
    routes: DirectRoutes,
    topology: Topology,
    channels: HashMap<(Kind, u32), RawFd>,
    queues: HashMap<Kind, RawFd>,
    farm_queues: HashMap<String, RawFd>,
    wheel: TimerWheel<usize>,
    timers: Vec<TimerEntry>,
    crons: Vec<CronEntry>,
    fsmon: Option<FileMonitor<Watch>>,
    /// File monitors read by workers themselves (one hop), by who reads them: their own
    /// inotify instances, shared with the workers forked after they were added. The loop reads
    /// one only while no worker that reads it is alive.
    worker_fsmon: Vec<(Reader, FileMonitor<u8>)>,
    /// A child was forked: from now on new monitors go to the master's own instance.
    forked: bool,
    test_clock: bool,
    wall_offset: i64,
    events: Vec<LoopEvent>,
    /// Signals raised, for tests and metrics.
    pub raised: u64,
    /// The process that bound the control socket: only it removes the socket file.
    owner_pid: u32,
}

impl MasterLoop {
    /// Bind the control socket at `control_path`, replacing a stale socket left there (the
    /// caller makes sure no live master uses it). Anything else at that path is an error: it is
    /// never removed.
    pub fn new(control_path: &Path, wakeup_fd: Option<RawFd>) -> io::Result<Self> {
        use std::os::unix::fs::FileTypeExt;
        match std::fs::symlink_metadata(control_path) {
            Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(control_path)?,
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "{} exists and is not a socket: not replaced by the control socket",
                        control_path.display()
                    ),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let control = UnixDatagram::bind(control_path)?;
        Self::with_socket(control_path, control, wakeup_fd)
    }

    /// Take over a control socket bound by this process before it re-executed itself (a
    /// reload): datagrams sent meanwhile wait in it. `fd` must be a socket bound to
    /// `control_path`, else it is an error (and the fd is closed).
    pub fn adopt(control_path: &Path, fd: RawFd, wakeup_fd: Option<RawFd>) -> io::Result<Self> {
        let control = UnixDatagram::from(sys::adopt_fd(fd)?);
        let bound = control.local_addr()?;
        if bound.as_pathname() != Some(control_path) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "inherited descriptor {fd} is not the control socket {}",
                    control_path.display()
                ),
            ));
        }
        Self::with_socket(control_path, control, wakeup_fd)
    }

    /// The control socket's descriptor made inheritable across `exec` (a reload), and this
    /// process's loop no longer removes the socket file when dropped.
    pub fn keep_control_across_exec(&mut self) -> io::Result<RawFd> {
        let fd = self.control.as_raw_fd();
        sys::set_inheritable(fd, true)?;
        self.owner_pid = 0;
        Ok(fd)
    }

    fn with_socket(
        control_path: &Path,
        control: UnixDatagram,
        wakeup_fd: Option<RawFd>,
    ) -> io::Result<Self> {
        control.set_nonblocking(true)?;
        let base_ns = sys::monotonic_ns();
        Ok(MasterLoop {
            base_ns,
            control,
            control_path: control_path.to_path_buf(),
            timerfd: sys::TimerFd::new()?,
            armed: None,
            wakeup_fd,
            table: SignalTable::default(),
            routes: DirectRoutes::new()?,
            topology: Topology::default(),
            channels: HashMap::new(),
            queues: HashMap::new(),
            farm_queues: HashMap::new(),
            wheel: TimerWheel::new(0),
            timers: Vec::new(),
            crons: Vec::new(),
            fsmon: None,
            worker_fsmon: Vec::new(),
            forked: false,
            test_clock: false,
            wall_offset: 0,
            events: Vec::new(),
            raised: 0,
            owner_pid: std::process::id(),
        })
    }

    /// In a forked child: close the descriptors this loop owns and leave its memory as it is.
    /// That memory is the master's, shared with the child until written, and the child never
    /// uses it: freeing it would write to (and so copy) every heap page it sits on.
    pub fn close_in_child(self) {
        let mut fds = vec![self.control.as_raw_fd(), self.timerfd.fd()];
        fds.extend(self.fsmon.as_ref().map(FileMonitor::fd));
        fds.extend(self.worker_fsmon.iter().map(|(_, m)| m.fd()));
        // Not dropped: no destructor runs, so each descriptor is closed once, here (and the
        // socket file, the master's, stays).
        std::mem::forget(self);
        for fd in fds {
            // SAFETY: each was owned by the forgotten loop, which will never close it.
            unsafe { libc::close(fd) };
        }
    }

    pub fn control_path(&self) -> &Path {
        &self.control_path
    }

    fn now_us(&self) -> u64 {
        (sys::monotonic_ns() - self.base_ns) / 1000
    }

    /// The wall clock, moved by the test offset. The coarse one: a cron entry fires only once
    /// `time(2)` has entered its minute too, so the handler's `time.localtime()` reads that minute.
    pub fn wall_now(&self) -> Timestamp {
        let (secs, nanos) = sys::realtime_coarse();
        Timestamp::new(secs + self.wall_offset, nanos).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// Let `T` control datagrams move the wall clock (tests only).
    pub fn enable_test_clock(&mut self) {
        self.test_clock = true;
    }

    /// Move the wall clock by `offset` seconds from the real one and re-plan cron entries.
    ///
    /// Forward, entries keep their plan, so the next turn treats the jump like a sleep (missed
    /// minutes skipped, or run once late with `catch_up`); backward, they are planned afresh.
    pub fn set_wall_offset(&mut self, offset: i64) {
        let backward = offset < self.wall_offset;
        self.wall_offset = offset;
        if backward {
            let now = self.wall_now();
            for c in &mut self.crons {
                c.next = current_or_next(&c.spec, now, &c.tz);
            }
        }
    }

    // ----------------------------------------------------------------- signal table & routing

    /// Register `num` for `target` in the master table (a number cannot be registered twice).
    pub fn register_signal(&mut self, num: u8, target: &str) -> Result<(), MasterError> {
        let t = Target::parse(target)?;
        let byte_source = t.clone();
        self.table.register(num, t)?;
        self.routes.set(num, &byte_source);
        Ok(())
    }

    /// The shared direct-delivery table (a handle on the same mapping), for the children.
    pub fn direct_routes(&self) -> DirectRoutes {
        self.routes.clone()
    }

    /// Mirror the table into `routes` from now on (the instance's region, which attached
    /// processes map too); what is already registered is copied over.
    pub fn use_routes(&mut self, routes: DirectRoutes) {
        routes.copy_from(&self.routes);
        self.routes = routes;
    }

    pub fn signal_registered(&self, num: u8) -> bool {
        self.table.is_registered(num)
    }

    /// Add a process's private channel (the master's end of its socketpair).
    pub fn add_channel(&mut self, kind: Kind, id: u32, fd: RawFd) {
        self.forked = true;
        let Some(ids) = self.ids_mut(kind) else {
            return; // a kind that takes no signals (the Erlang node)
        };
        if !ids.contains(&id) {
            ids.push(id);
            ids.sort_unstable();
        }
        self.channels.insert((kind, id), fd);
    }

    /// Forget a process (it died); signals for it are reported as unrouted until it is back.
    pub fn remove_channel(&mut self, kind: Kind, id: u32) {
        self.channels.remove(&(kind, id));
        if let Some(ids) = self.ids_mut(kind) {
            ids.retain(|&i| i != id);
        }
    }

    /// The write end of the shared queue of a kind.
    pub fn add_queue(&mut self, kind: Kind, fd: RawFd) {
        self.queues.insert(kind, fd);
    }

    /// A farm (`--farm NAME:1,2`): its members and the write end of its shared signal queue,
    /// read by every mule of the farm (`farm_NAME`, `farmN` targets).
    pub fn add_farm(&mut self, name: &str, members: Vec<u32>, fd: RawFd) {
        self.farm_queues.insert(name.to_owned(), fd);
        if let Some(f) = self.topology.farms.iter_mut().find(|(n, _)| n == name) {
            f.1 = members;
        } else {
            self.topology.farms.push((name.to_owned(), members));
        }
    }

    fn ids_mut(&mut self, kind: Kind) -> Option<&mut Vec<u32>> {
        match kind {
            Kind::Worker => Some(&mut self.topology.workers),
            Kind::Spooler => Some(&mut self.topology.spoolers),
            Kind::Mule => Some(&mut self.topology.mules),
            Kind::Erlang => None,
        }
    }

    /// Route signal `num` now.
    pub fn raise_signal(&mut self, num: u8, source: &'static str) {
        self.raised += 1;
        let Some(target) = self.table.get(num) else {
            self.events.push(LoopEvent::Unregistered { num, source });
            return;
        };
        match signal::route(target, &self.topology) {
            Err(reason) => self.events.push(LoopEvent::Unrouted { num, reason }),
            Ok(deliveries) => {
                for d in deliveries {
                    let (fd, to) = match &d {
                        Delivery::Queue(k) => {
                            (self.queues.get(k).copied(), format!("{} queue", k.name()))
                        }
                        Delivery::Channel(k, i) => (
                            self.channels.get(&(*k, *i)).copied(),
                            format!("{}{i}", k.name()),
                        ),
                        Delivery::FarmQueue(f) => {
                            (self.farm_queues.get(f).copied(), format!("farm {f}"))
                        }
                    };
                    let sent = match fd {
                        Some(fd) => sys::send_nonblocking(fd, &[num]).unwrap_or(false),
                        None => false,
                    };
                    if !sent {
                        self.events.push(LoopEvent::QueueFull { num, to });
                    }
                }
            }
        }
    }

    // ----------------------------------------------------------------- timers

    /// uWSGI's `add_timer`: raise `num` every `secs` (fractions allowed), first one period from
    /// now, phase-locked; `secs == 0` is accepted and never fires, as in uWSGI.
    pub fn add_timer(&mut self, num: u8, secs: f64, iterations: u32) -> Result<(), MasterError> {
        // Up to about 31 years: enough for any timer, and microsecond arithmetic never overflows.
        if !(secs.is_finite() && (0.0..=1e9).contains(&secs)) || (secs * 1e6).round() < 1.0 {
            // A period of 0 us would never fire (uWSGI accepts 0 and the timer never fires).
            return Err(MasterError::BadPeriod(secs));
        }
        let period_us = (secs * 1e6).round() as u64;
        let origin_us = self.now_us();
        let idx = self.timers.len();
        self.timers.push(TimerEntry {
            signum: num,
            period_us,
            origin_us,
            left: (iterations > 0).then_some(iterations),
            key: None,
        });
        if period_us > 0 {
            let key = self.wheel.insert(origin_us + period_us, idx);
            self.timers[idx].key = Some(key);
        }
        Ok(())
    }

    fn fire_timers(&mut self) -> io::Result<()> {
        let now = self.now_us();
        let mut due = Vec::new();
        for (_, idx) in self.wheel.poll(now) {
            let t = &mut self.timers[idx];
            t.key = None;
            let signum = t.signum;
            if let Some(left) = t.left.as_mut() {
                *left -= 1;
            }
            let again = t.left != Some(0);
            // Next tick on the original grid; ticks missed while late are not replayed.
            let k = (now - t.origin_us) / t.period_us + 1;
            let next = t.origin_us + k * t.period_us;
            if again {
                let key = self.wheel.insert(next, idx);
                self.timers[idx].key = Some(key);
            }
            due.push(signum);
        }
        if due.is_empty() {
            return Ok(());
        }
        // Re-armed before the signals go out: a woken worker often runs on this CPU only once
        // this loop sleeps, so work left after the sends delays its handler.
        self.arm_timerfd()?;
        for signum in due {
            self.raise_signal(signum, "timer");
        }
        Ok(())
    }

    /// Arm the timerfd for the wheel's next deadline, unless it already is.
    fn arm_timerfd(&mut self) -> io::Result<()> {
        let deadline_us = self.wheel.next_deadline();
        if self.armed != Some(deadline_us) {
            self.timerfd
                .set(deadline_us.map(|us| self.base_ns + us * 1000))?;
            self.armed = Some(deadline_us);
        }
        Ok(())
    }

    // ----------------------------------------------------------------- cron

    /// Add a cron entry in `tz` (None: the system's local zone). `catch_up` runs a minute missed
    /// while the master was stopped or the machine slept once, late (uWSGI skips it).
    pub fn add_cron(
        &mut self,
        num: u8,
        spec: CronSpec,
        tz_name: Option<&str>,
        catch_up: bool,
    ) -> Result<(), MasterError> {
        let zone = match tz_name {
            None => TimeZone::system(),
            Some(name) => {
                TimeZone::get(name).map_err(|_| MasterError::BadTimeZone(name.to_owned()))?
            }
        };
        // From the next minute start: a minute already under way when the entry is added is not
        // fired late (uWSGI would fire it at once, at whatever second it is).
        let next = tz::next_fire(&spec, self.wall_now(), &zone);
        self.crons.push(CronEntry {
            signum: num,
            spec,
            tz: zone,
            catch_up,
            next,
        });
        Ok(())
    }

    fn fire_crons(&mut self) {
        let now = self.wall_now();
        let mut fired = Vec::new();
        for c in &mut self.crons {
            while let Some(at) = c.next.filter(|at| *at <= now) {
                let on_time = now.duration_since(at).as_secs() < 60;
                if on_time {
                    fired.push(c.signum);
                    // The next matching minute starts at least a minute after `at`, so after now.
                    c.next = tz::next_fire(&c.spec, at, &c.tz);
                } else if c.catch_up {
                    // Missed while stopped or asleep: once, late, then back on schedule.
                    fired.push(c.signum);
                    c.next = tz::next_fire(&c.spec, now, &c.tz);
                } else {
                    // Missed: skip it, as uWSGI does; the current minute still counts.
                    c.next = current_or_next(&c.spec, now, &c.tz);
                }
            }
        }
        for num in fired {
            self.raise_signal(num, "cron");
        }
    }

    /// Next fire time of cron entry `i` (unix seconds), for tests and logs.
    pub fn cron_next(&self, i: usize) -> Option<i64> {
        self.crons
            .get(i)
            .and_then(|c| c.next)
            .map(|t| t.as_second())
    }

    // ----------------------------------------------------------------- file monitors

    /// Raise `num` when `path` (a file or directory) changes.
    pub fn add_file_monitor(
        &mut self,
        num: u8,
        path: &Path,
        recursive: bool,
    ) -> Result<(), MasterError> {
        // Before any fork, a monitor whose signal goes to one worker (or to any worker) gets
        // an instance that the workers read themselves; the children forked later share it.
        let reader = match self.table.get(num) {
            _ if self.forked => None,
            Some(Target::Worker(n)) => Some(Reader::Worker(*n)),
            Some(Target::AnyWorker) => Some(Reader::AnyWorker),
            _ => None,
        };
        match reader {
            None => {
                if self.fsmon.is_none() {
                    self.fsmon = Some(FileMonitor::new()?);
                }
                if let Some(m) = self.fsmon.as_mut() {
                    m.add(path, recursive, Watch::Signal(num))?;
                }
            }
            Some(r) => {
                let at = match self.worker_fsmon.iter().position(|(who, _)| *who == r) {
                    Some(i) => i,
                    None => {
                        self.worker_fsmon.push((r, FileMonitor::new()?));
                        self.worker_fsmon.len() - 1
                    }
                };
                self.worker_fsmon[at].1.add(path, recursive, num)?;
            }
        }
        Ok(())
    }

    /// Report `LoopEvent::FileHook { hook }` (no signal) when `path` changes: the master's own
    /// watches (`--touch-reload`, `--py-autoreload`...), on the same inotify descriptor.
    pub fn add_file_hook(&mut self, hook: u32, path: &Path) -> Result<(), MasterError> {
        if self.fsmon.is_none() {
            self.fsmon = Some(FileMonitor::new()?);
        }
        if let Some(m) = self.fsmon.as_mut() {
            m.add(path, false, Watch::Hook(hook))?;
        }
        Ok(())
    }

    /// In worker `id`, just forked: take the file monitors it reads itself (see
    /// [`crate::direct::WorkerMonitors`]); this copy of the loop keeps none of them.
    pub fn take_worker_monitors(&mut self, id: u32) -> Vec<FileMonitor<u8>> {
        let (mine, rest) = std::mem::take(&mut self.worker_fsmon)
            .into_iter()
            .partition(|(who, _)| *who == Reader::Worker(id) || *who == Reader::AnyWorker);
        self.worker_fsmon = rest;
        mine.into_iter().map(|(_, m)| m).collect()
    }

    /// True while no live worker reads the monitors of `reader`: the loop reads them then.
    fn unread(&self, reader: Reader) -> bool {
        match reader {
            Reader::Worker(n) => !self.topology.workers.contains(&n),
            Reader::AnyWorker => self.topology.workers.is_empty(),
        }
    }

    // ----------------------------------------------------------------- the loop

    fn read_control(&mut self) {
        let mut buf = [0u8; 4096];
        loop {
            let n = match self.control.recv(&mut buf) {
                Ok(n) => n,
                Err(_) => return,
            };
            if let Err(reason) = self.control_message(&buf[..n]) {
                self.events.push(LoopEvent::BadControl { reason });
            }
        }
    }

    /// Apply one control datagram (its format: [`crate::proto::control`]).
    fn control_message(&mut self, msg: &[u8]) -> Result<(), String> {
        match Control::decode(msg).map_err(|e| e.to_string())? {
            Control::Raise { num } => self.raise_signal(num, "signal"),
            Control::Reload { pid } => self.events.push(LoopEvent::Reload { pid }),
            // A worker read a file event whose signal is not its own to run.
            Control::FileEvent { num } => self.raise_signal(num, "file monitor"),
            Control::Register { num, target } => {
                let t = Target::parse(&target).map_err(|e| e.to_string())?;
                // In the master's order, so the shared copy ends as the table does.
                self.routes.set(num, &t);
                self.table.set(num, t);
            }
            Control::ClockOffset { seconds } if self.test_clock => self.set_wall_offset(seconds),
            Control::ClockOffset { .. } => {
                return Err(DecodeError::Unknown { len: msg.len() }.to_string());
            }
            Control::Timer {
                num,
                secs,
                iterations,
            } => self
                .add_timer(num, secs, iterations)
                .map_err(|e| e.to_string())?,
            Control::Cron {
                num,
                catch_up,
                tz,
                form,
            } => {
                let spec = match form {
                    CronForm::Uwsgi([m, h, d, mo, w]) => CronSpec::from_uwsgi(m, h, d, mo, w),
                    CronForm::Crontab(text) => CronSpec::parse(&text),
                }
                .map_err(|e| e.to_string())?;
                self.add_cron(num, spec, tz.as_deref(), catch_up)
                    .map_err(|e| e.to_string())?;
            }
            Control::FileMonitor {
                num,
                recursive,
                path,
            } => {
                use std::os::unix::ffi::OsStrExt;
                let path = Path::new(std::ffi::OsStr::from_bytes(&path));
                self.add_file_monitor(num, path, recursive)
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// True if a Unix signal wakes [`step`](Self::step) (a wake-up fd was given).
    pub fn watches_wakeup_fd(&self) -> bool {
        self.wakeup_fd.is_some()
    }

    /// One turn: wait up to `max_wait` for anything (control, timers, cron, files, the wake-up
    /// fd), handle it, and return what the owner should know.
    pub fn step(&mut self, max_wait: Duration) -> io::Result<Vec<LoopEvent>> {
        self.arm_timerfd()?;
        let mut wait = max_wait.min(WALL_CHECK);
        if let Some(next) = self.crons.iter().filter_map(|c| c.next).min() {
            let until = next.duration_since(self.wall_now());
            let until = Duration::try_from(until).unwrap_or(Duration::ZERO);
            wait = wait.min(until + Duration::from_millis(1));
        }
        let mut fds = vec![self.control.as_raw_fd(), self.timerfd.fd()];
        // Positions are fixed before handling anything: a control datagram may add the monitor.
        let fsmon_at = self.fsmon.as_ref().map(|m| {
            fds.push(m.fd());
            fds.len() - 1
        });
        let worker_fsmon_at: Vec<(usize, usize)> = (0..self.worker_fsmon.len())
            .filter(|&i| self.unread(self.worker_fsmon[i].0))
            .map(|i| {
                fds.push(self.worker_fsmon[i].1.fd());
                (i, fds.len() - 1)
            })
            .collect();
        let wakeup_at = self.wakeup_fd.map(|w| {
            fds.push(w);
            fds.len() - 1
        });
        let ready = sys::poll_readable(&fds, wait)?;
        if ready[1] {
            self.timerfd.drain();
            self.armed = None; // expired: arm again whatever comes next
        }
        self.fire_timers()?;
        self.fire_crons();
        if ready[0] {
            self.read_control();
        }
        if fsmon_at.is_some_and(|i| ready[i]) {
            let nums = match self.fsmon.as_mut() {
                Some(m) => m.read()?,
                None => Vec::new(),
            };
            for watch in nums {
                match watch {
                    Watch::Signal(num) => self.raise_signal(num, "file monitor"),
                    Watch::Hook(hook) => self.events.push(LoopEvent::FileHook { hook }),
                }
            }
        }
        for (i, at) in worker_fsmon_at {
            if ready[at] {
                for num in self.worker_fsmon[i].1.read()? {
                    self.raise_signal(num, "file monitor");
                }
            }
        }
        if let (Some(i), Some(w)) = (wakeup_at, self.wakeup_fd) {
            if ready[i] {
                sys::drain_fd(w);
                self.events.push(LoopEvent::Wakeup);
            }
        }
        Ok(std::mem::take(&mut self.events))
    }

    /// Turns of [`step`](Self::step) until there is something to report or `max_wait` has
    /// passed: the caller is not woken for turns that only routed signals.
    pub fn run(&mut self, max_wait: Duration) -> io::Result<Vec<LoopEvent>> {
        let deadline = std::time::Instant::now() + max_wait;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let events = self.step(left)?;
            if !events.is_empty() || std::time::Instant::now() >= deadline {
                return Ok(events);
            }
        }
    }
}

impl Drop for MasterLoop {
    fn drop(&mut self) {
        // A forked child closing its inherited copy must not remove the master's socket.
        if std::process::id() == self.owner_pid {
            let _ = std::fs::remove_file(&self.control_path);
        }
    }
}

/// The start of the current minute if it matches, else the next match.
fn current_or_next(spec: &CronSpec, now: Timestamp, zone: &TimeZone) -> Option<Timestamp> {
    let minute_start = now.as_second() - now.as_second().rem_euclid(60);
    let just_before = Timestamp::from_second(minute_start - 1).ok()?;
    tz::next_fire(spec, just_before, zone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    fn setup() -> (tempfile::TempDir, MasterLoop) {
        let tmp = tempfile::tempdir().unwrap();
        let ml = MasterLoop::new(&tmp.path().join("ctl"), None).unwrap();
        (tmp, ml)
    }

    /// One worker whose private channel and the shared worker queue are one socket pair;
    /// returns (the master's end, kept open by the caller, the worker's end).
    fn one_worker(ml: &mut MasterLoop) -> (UnixDatagram, UnixDatagram) {
        let (q_master, q_worker) = UnixDatagram::pair().unwrap();
        q_worker.set_nonblocking(true).unwrap();
        ml.add_queue(Kind::Worker, q_master.as_raw_fd());
        ml.add_channel(Kind::Worker, 1, q_master.as_raw_fd());
        (q_master, q_worker)
    }

    fn recv_all(s: &UnixDatagram) -> Vec<u8> {
        let mut out = Vec::new();
        let mut b = [0u8; 8];
        while let Ok(n) = s.recv(&mut b) {
            out.extend_from_slice(&b[..n]);
        }
        out
    }

    #[test]
    fn routes_raised_signals_to_channels_and_queues() {
        let (_tmp, mut ml) = setup();
        let (q_master, q_worker) = UnixDatagram::pair().unwrap();
        let (w1_m, w1) = UnixDatagram::pair().unwrap();
        let (w2_m, w2) = UnixDatagram::pair().unwrap();
        for s in [&q_worker, &w1, &w2] {
            s.set_nonblocking(true).unwrap();
        }
        ml.add_queue(Kind::Worker, q_master.as_raw_fd());
        ml.add_channel(Kind::Worker, 1, w1_m.as_raw_fd());
        ml.add_channel(Kind::Worker, 2, w2_m.as_raw_fd());
        ml.register_signal(1, "").unwrap();
        ml.register_signal(2, "workers").unwrap();
        ml.register_signal(3, "worker2").unwrap();
        ml.register_signal(4, "spooler").unwrap();
        assert!(ml.register_signal(1, "workers").is_err());
        for n in [1, 2, 3, 4, 9] {
            ml.raise_signal(n, "test");
        }
        assert_eq!(recv_all(&q_worker), vec![1]);
        assert_eq!(recv_all(&w1), vec![2]);
        assert_eq!(recv_all(&w2), vec![2, 3]);
        let events = ml.step(Duration::ZERO).unwrap();
        assert!(events.contains(&LoopEvent::Unrouted {
            num: 4,
            reason: "no spooler is running".into()
        }));
        assert!(events.contains(&LoopEvent::Unregistered {
            num: 9,
            source: "test"
        }));
    }

    #[test]
    fn run_routes_quietly_and_returns_with_the_first_event() {
        let (_tmp, mut ml) = setup();
        let (_q_master, q_worker) = one_worker(&mut ml);
        ml.register_signal(7, "").unwrap();
        let client = UnixDatagram::unbound().unwrap();
        client.send_to(b"S\x07", ml.control_path()).unwrap();
        // Routing alone reports nothing: run keeps waiting until its time is up.
        assert_eq!(ml.run(Duration::from_millis(50)).unwrap(), vec![]);
        assert_eq!(recv_all(&q_worker), vec![7]);
        client.send_to(b"S\x08", ml.control_path()).unwrap();
        let start = std::time::Instant::now();
        let events = ml.run(Duration::from_secs(30)).unwrap();
        assert!(start.elapsed() < Duration::from_secs(20));
        assert_eq!(
            events,
            vec![LoopEvent::Unregistered {
                num: 8,
                source: "signal"
            }]
        );
    }

    #[test]
    fn the_direct_table_follows_the_master_table() {
        let (_tmp, mut ml) = setup();
        let routes = ml.direct_routes();
        ml.register_signal(1, "worker2").unwrap();
        ml.register_signal(2, "workers").unwrap();
        assert_eq!(routes.worker(1), Some(2));
        assert_eq!(routes.worker(2), None);
        // A refused second registration leaves it alone.
        assert!(ml.register_signal(1, "worker3").is_err());
        assert_eq!(routes.worker(1), Some(2));
        // A worker's run-time registration (R datagram) moves it, either way.
        let client = UnixDatagram::unbound().unwrap();
        client.send_to(b"R\x01worker", ml.control_path()).unwrap();
        client.send_to(b"R\x02worker1", ml.control_path()).unwrap();
        ml.step(Duration::from_millis(50)).unwrap();
        assert_eq!(routes.worker(1), None);
        assert_eq!(routes.worker(2), Some(1));
    }

    #[test]
    fn monitors_aimed_at_workers_are_theirs_to_read_while_they_live() {
        let (tmp, mut ml) = setup();
        let (q_master, q_worker) = UnixDatagram::pair().unwrap();
        q_worker.set_nonblocking(true).unwrap();
        ml.add_queue(Kind::Worker, q_master.as_raw_fd());
        let f = tmp.path().join("f");
        std::fs::write(&f, "a").unwrap();
        ml.register_signal(3, "worker2").unwrap();
        ml.register_signal(4, "worker").unwrap();
        ml.register_signal(5, "workers").unwrap();
        for n in [3, 4, 5] {
            ml.add_file_monitor(n, &f, false).unwrap();
        }
        assert_eq!(ml.worker_fsmon.len(), 2);
        assert_eq!(ml.fsmon.as_ref().map(FileMonitor::len), Some(1));
        // No worker alive: the loop reads them all and routes as always.
        std::fs::write(&f, "b").unwrap();
        let events = ml.step(Duration::from_millis(200)).unwrap();
        assert!(events.contains(&LoopEvent::Unrouted {
            num: 3,
            reason: "worker 2 does not exist".into()
        }));
        // Worker 2 is alive: its monitor and the any-worker one are left to the workers.
        ml.add_channel(Kind::Worker, 2, q_master.as_raw_fd());
        std::fs::write(&f, "c").unwrap();
        ml.step(Duration::from_millis(200)).unwrap();
        assert_eq!(recv_all(&q_worker), vec![5]);
        // After a fork, monitors go to the master's instance whatever their target.
        ml.add_file_monitor(3, &f, false).unwrap();
        assert_eq!(ml.fsmon.as_ref().map(FileMonitor::len), Some(2));
        // The worker takes its own and the any-worker instance; another worker takes only that.
        assert_eq!(ml.take_worker_monitors(2).len(), 2);
        assert!(ml.take_worker_monitors(1).is_empty());
    }

    #[test]
    fn a_stale_socket_is_replaced_and_anything_else_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control");
        drop(UnixDatagram::bind(&path).unwrap()); // a killed master's socket file
        let ml = MasterLoop::new(&path, None).unwrap();
        drop(ml);
        assert!(!path.exists());
        std::fs::write(&path, b"precious").unwrap();
        let err = MasterLoop::new(&path, None).err().unwrap();
        assert!(err.to_string().contains("is not a socket"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    }

    #[test]
    fn control_socket_raises_and_timers_fire_phase_locked() {
        let (_tmp, mut ml) = setup();
        let (_q_master, q_worker) = one_worker(&mut ml);
        ml.register_signal(7, "").unwrap();
        ml.register_signal(8, "").unwrap();
        let client = UnixDatagram::unbound().unwrap();
        client.send_to(b"S\x07", ml.control_path()).unwrap();
        ml.step(Duration::from_millis(100)).unwrap();
        assert_eq!(recv_all(&q_worker), vec![7]);
        ml.add_timer(8, 0.02, 3).unwrap();
        let start = std::time::Instant::now();
        let mut got = Vec::new();
        while got.len() < 3 && start.elapsed() < Duration::from_secs(10) {
            ml.step(Duration::from_millis(50)).unwrap();
            got.extend(recv_all(&q_worker));
        }
        assert_eq!(got, vec![8, 8, 8]);
        // Three iterations, then the timer is gone.
        assert!(ml.wheel.is_empty());
    }

    /// (device, inode) of what `fd` refers to now, None once it is closed.
    fn identity(fd: RawFd) -> Option<(u64, u64)> {
        // SAFETY: fstat writes one stat struct; a closed fd only makes it fail.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        (unsafe { libc::fstat(fd, &mut st) } == 0).then_some((st.st_dev, st.st_ino))
    }

    #[test]
    fn closing_in_a_child_closes_every_descriptor_and_keeps_the_socket_file() {
        let (tmp, mut ml) = setup();
        let watched = tmp.path().join("watched");
        std::fs::write(&watched, b"x").unwrap();
        ml.add_file_monitor(3, &watched, false).unwrap();
        let fds = [
            ml.control.as_raw_fd(),
            ml.timerfd.fd(),
            ml.fsmon.as_ref().unwrap().fd(),
        ];
        let before: Vec<_> = fds.iter().map(|&fd| identity(fd).unwrap()).collect();
        ml.close_in_child();
        for (fd, was) in fds.iter().zip(before) {
            // closed, or already reused by another test's thread for something else
            assert_ne!(identity(*fd), Some(was), "fd {fd} still open");
        }
        assert!(
            tmp.path().join("ctl").exists(),
            "the master's socket file was removed"
        );
    }

    #[test]
    fn the_cron_clock_is_never_ahead_of_time_2() {
        // time(2) is what a handler's time.localtime() reads; the precise clock is ahead of it
        // for up to a tick after every second starts (0.4% of readings on a 250 Hz kernel).
        let (_tmp, ml) = setup();
        let deadline = std::time::Instant::now() + Duration::from_millis(1500);
        let mut readings = 0u64;
        while std::time::Instant::now() < deadline {
            let cron = ml.wall_now().as_second();
            // SAFETY: time(2) with a null pointer only returns the value.
            let seen = unsafe { libc::time(std::ptr::null_mut()) };
            assert!(cron <= seen, "cron clock {cron} ahead of time(2) {seen}");
            readings += 1;
        }
        assert!(readings > 1000);
    }

    #[test]
    fn cron_fires_when_the_test_clock_moves_to_a_matching_minute() {
        let (_tmp, mut ml) = setup();
        let (_q_master, q_worker) = one_worker(&mut ml);
        ml.register_signal(5, "").unwrap();
        ml.enable_test_clock();
        ml.add_cron(
            5,
            CronSpec::from_uwsgi(40, 2, -1, -1, -1).unwrap(),
            Some("UTC"),
            false,
        )
        .unwrap();
        // Move the wall clock to 02:40:10 UTC of the next day.
        let now = ml.wall_now().as_second();
        let day = now - now.rem_euclid(86_400) + 86_400;
        let target = day + 2 * 3600 + 40 * 60 + 10;
        let client = UnixDatagram::unbound().unwrap();
        let mut msg = vec![b'T'];
        msg.extend_from_slice(&(target - now).to_le_bytes());
        client.send_to(&msg, ml.control_path()).unwrap();
        ml.step(Duration::from_millis(50)).unwrap();
        ml.step(Duration::from_millis(50)).unwrap();
        assert_eq!(recv_all(&q_worker), vec![5]);
        // Once per minute only, and the next one is tomorrow.
        ml.step(Duration::from_millis(20)).unwrap();
        assert_eq!(recv_all(&q_worker), Vec::<u8>::new());
        assert_eq!(ml.cron_next(0), Some(day + 86_400 + 2 * 3600 + 40 * 60));
    }

    #[test]
    fn catch_up_runs_a_missed_minute_once_after_a_forward_jump() {
        let (_tmp, mut ml) = setup();
        let (_q_master, q_worker) = one_worker(&mut ml);
        ml.register_signal(2, "").unwrap();
        ml.register_signal(3, "").unwrap();
        ml.add_cron(2, CronSpec::parse("30 4 * * *").unwrap(), Some("UTC"), true)
            .unwrap();
        ml.add_cron(
            3,
            CronSpec::parse("30 4 * * *").unwrap(),
            Some("UTC"),
            false,
        )
        .unwrap();
        let now = ml.wall_now().as_second();
        let day = now - now.rem_euclid(86_400) + 86_400;
        ml.set_wall_offset(day + 4 * 3600 + 30 * 60 + 5 - now);
        ml.step(Duration::from_millis(10)).unwrap();
        assert_eq!(recv_all(&q_worker), vec![2, 3]);
        // A day and two minutes later: the catch-up entry runs once, late; the other skips.
        ml.set_wall_offset(day + 86_400 + 4 * 3600 + 32 * 60 - now);
        ml.step(Duration::from_millis(10)).unwrap();
        assert_eq!(recv_all(&q_worker), vec![2]);
        ml.step(Duration::from_millis(10)).unwrap();
        assert_eq!(recv_all(&q_worker), Vec::<u8>::new());
    }

    #[test]
    fn workers_add_timers_crons_and_monitors_through_control_datagrams() {
        let (tmp, mut ml) = setup();
        let client = UnixDatagram::unbound().unwrap();
        let mut t = vec![b't', 9];
        t.extend_from_slice(&0.5f64.to_le_bytes());
        t.extend_from_slice(&2u32.to_le_bytes());
        client.send_to(&t, ml.control_path()).unwrap();
        let mut c = vec![b'c', 10, 1, 3];
        c.extend_from_slice(b"UTC");
        c.push(b'U');
        for v in [0i64, 2, -1, -1, -1] {
            c.extend_from_slice(&v.to_le_bytes());
        }
        client.send_to(&c, ml.control_path()).unwrap();
        let mut f = vec![b'f', 11, 0];
        f.extend_from_slice(tmp.path().to_str().unwrap().as_bytes());
        client.send_to(&f, ml.control_path()).unwrap();
        client
            .send_to(b"f\x0c\x00/does/not/exist", ml.control_path())
            .unwrap();
        client.send_to(b"cX", ml.control_path()).unwrap();
        let events = ml.step(Duration::from_millis(50)).unwrap();
        assert_eq!(ml.timers.len(), 1);
        assert!(ml.add_timer(1, 1e300, 0).is_err());
        assert!(ml.add_timer(1, f64::NAN, 0).is_err());
        assert!(ml.add_timer(1, 0.0, 0).is_err());
        assert!(ml.add_timer(1, 1e-9, 0).is_err());
        assert_eq!(ml.crons.len(), 1);
        assert_eq!(ml.fsmon.as_ref().map(FileMonitor::len), Some(1));
        let bad: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                LoopEvent::BadControl { reason } => Some(reason.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(bad[0].contains("does not exist"), "{bad:?}");
    }

    #[test]
    fn a_file_hook_reports_and_raises_nothing() {
        let (tmp, mut ml) = setup();
        let (_q_master, q_worker) = one_worker(&mut ml);
        ml.register_signal(5, "worker").unwrap();
        let path = tmp.path().join("touch-me");
        std::fs::write(&path, b"x").unwrap();
        ml.add_file_hook(7, &path).unwrap();
        ml.step(Duration::from_millis(10)).unwrap();
        std::fs::write(&path, b"y").unwrap();
        let mut seen = Vec::new();
        for _ in 0..50 {
            seen.extend(ml.step(Duration::from_millis(100)).unwrap());
            if !seen.is_empty() {
                break;
            }
        }
        assert_eq!(seen, vec![LoopEvent::FileHook { hook: 7 }]);
        assert!(recv_all(&q_worker).is_empty());
    }

    #[test]
    fn a_reload_datagram_is_reported() {
        let (tmp, mut ml) = setup();
        let tx = UnixDatagram::unbound().unwrap();
        let msg = Control::Reload { pid: 42 }.encode().unwrap();
        tx.send_to(&msg, tmp.path().join("ctl")).unwrap();
        let events = ml.step(Duration::from_millis(500)).unwrap();
        assert_eq!(events, vec![LoopEvent::Reload { pid: 42 }]);
    }
}
