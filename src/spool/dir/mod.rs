//! The directory backend of the spool queue: uWSGI's spool directory protocol, byte for byte.
//!
//! [`Spooler`] is one spooler process's queue over a directory ([`SpoolQueue`]); [`Task`] a
//! claimed task file ([`Claimed`]); [`DirWriter`] the enqueue side any process may use. A task's
//! [`TaskId`] is its file's full path (what `uwsgi.spool` returns); it runs in the spool
//! directory, or in its priority subdirectory.
//!
//! Files: [`name`] (uWSGI's file names), [`write`] (atomic enqueue), `discover` (scans and
//! inotify), `order` (priority, then enqueue time, and the timer heap of future files), `claim`
//! (open, lock, check, quarantine), `task` (a claimed file and its outcomes, the reaper).
//!
//! Discovery is incremental. A full directory scan happens at start, every `frequency`, and when
//! inotify overflows; in between, inotify names each new file (`IN_CREATE` when a name appears,
//! `IN_CLOSE_WRITE` when a writer that filled its file in place closes it or another spooler
//! releases one, `IN_MOVED_TO` from renames), so a task written by any process is seen at once and draining costs the same per task
//! with 200000 files queued as with 1000 (no re-scan per task).
//!
//! Order: numeric priority subdirectories first, lowest number first, then top-level files, each
//! group oldest first by the time in the file name. A file whose mtime is in the future (`at`, or
//! a retry delay) waits in a timer heap until then.
//!
//! Claiming: open read-write and take a non-blocking exclusive OFD lock, which conflicts with
//! uWSGI's POSIX `fcntl` locks, so our spoolers and uWSGI's share a directory without running a
//! task twice. The lock is held until the outcome is applied: `ok` unlinks before unlocking;
//! `retry`/`failed` move the mtime forward (so every spooler, uWSGI's included, waits); a crash
//! drops the lock and leaves the file to run again.
//!
//! Deleting a finished task is the costliest step of a queue at rest: the last close of an
//! unlinked file frees its inode and blocks, and on a filesystem mounted with `discard` it waits
//! for the device. `ok` therefore hands the still-locked file to reaper threads, which unlink it
//! and then close it, while the spooler claims the next task. The task stays held (locked, and
//! skipped by this spooler) until its file is gone; a crash before that runs it again, as a crash
//! between a handler's return and the unlink always could.
//!
//! Malformed files are moved to `quarantine/` with a `.reason` file beside them; tasks that fail
//! `max_attempts` times are moved to `dead/`. Neither name is numeric nor task-shaped, so no
//! spooler, ours or uWSGI's, looks inside.

mod claim;
mod discover;
pub mod name;
mod order;
mod task;
#[cfg(test)]
mod tests;
pub mod write;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use inotify::{Inotify, WatchDescriptor};

use super::outcome::Policy;
use super::queue::{Enqueue, Job, Next, Notice, SpoolQueue, TaskId};
use crate::sys;

use claim::Claim;
use order::{Key, TOP_BUCKET};
use task::{DeleteFailures, Held, Reaper, RelSet, start_reaper};
pub use task::{Task, fail_held};
pub use write::WriteError;

/// Folder (inside the spool directory) for files that cannot be parsed.
pub const QUARANTINE_DIR: &str = "quarantine";
/// Folder (inside the spool directory) for tasks that failed `max_attempts` times.
pub const DEAD_DIR: &str = "dead";
/// A file shorter than a header is left alone this long: a writer that fills its file in place
/// (uWSGI's; ours for a small task) may be between its `open` and its lock. Older, it is what a
/// writer killed there left, and goes to quarantine.
const SHORT_FILE_GRACE: Duration = Duration::from_secs(60);
/// How often a busy spooler looks at inotify between tasks.
const EVENT_READ_PERIOD: Duration = Duration::from_millis(2);
/// Directory entries a periodic rescan lists between two tasks.
const RESCAN_SLICE: usize = 512;
/// Temporary files of writers that died are removed after this long.
const STALE_TEMP_AGE: Duration = Duration::from_secs(600);

/// Settings of one spooler.
#[derive(Debug, Clone)]
pub struct SpoolerConfig {
    /// Periodic full scan, and the delay before a task that asked for a retry runs again.
    pub frequency: Duration,
    /// Delay after a task's first failure; doubled at each further failure.
    pub retry_delay: Duration,
    /// Upper bound of the growing delay.
    pub retry_max_delay: Duration,
    /// Failures after which a task moves to `dead/`; 0 keeps retrying for ever.
    pub max_attempts: u32,
    /// Also treat all-digit file names at the top level as tasks (uWSGI's `spooler-ordered`).
    pub numeric_names: bool,
    /// This process's share among the spooler processes of the directory: (index, count).
    /// Within one second of enqueue time it takes the files of its share first, so parallel
    /// spoolers do not queue behind each other's locks. (0, 1) shares nothing.
    pub share: (u32, u32),
    /// Users (besides the spooler's own and root) whose task files run; a file owned by anyone
    /// else is quarantined (a task may carry a pickle: code run as the spooler's user).
    pub trusted_uids: Vec<u32>,
}

/// Why a spool directory must not be consumed: others can write it, so any local user could
/// queue a task (a pickle is code) for the spooler's user to run. None when it is fine.
pub fn insecure_dir_reason(dir: &Path) -> io::Result<Option<String>> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::metadata(dir)?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o002 != 0 {
        let sticky = if mode & 0o1000 != 0 {
            " (the sticky bit does not help: anyone may still add files)"
        } else {
            ""
        };
        return Ok(Some(format!(
            "spool directory {} is writable by every user (mode {mode:04o}){sticky}: any local \
             user could queue a task that runs as the spooler's user (a task may carry a pickle, \
             that is code). Use a directory of its own and run: chmod o-w {}",
            dir.display(),
            dir.display()
        )));
    }
    Ok(None)
}

impl SpoolerConfig {
    /// The outcome policy these settings give (retry after `frequency`, back-off, dead letter).
    pub fn policy(&self) -> Policy {
        Policy {
            frequency: self.frequency,
            retry_delay: self.retry_delay,
            retry_max_delay: self.retry_max_delay,
            max_attempts: self.max_attempts,
        }
    }
}

impl Default for SpoolerConfig {
    fn default() -> Self {
        SpoolerConfig {
            frequency: Duration::from_secs(30),
            retry_delay: Duration::from_secs(1),
            retry_max_delay: Duration::from_secs(3600),
            max_attempts: 0,
            numeric_names: false,
            share: (0, 1),
            trusted_uids: Vec::new(),
        }
    }
}

/// The spooler's queue over one directory.
pub struct Spooler {
    root: Arc<Path>,
    cfg: SpoolerConfig,
    inotify: Inotify,
    /// Watch → priority bucket (TOP_BUCKET for the root).
    watches: HashMap<WatchDescriptor, u64>,
    ready: BTreeMap<Key, ()>,
    delayed: BinaryHeap<Reverse<(i64, u64, PathBuf)>>,
    /// Relative paths currently in `ready` or `delayed`, so events and scans do not duplicate.
    known: RelSet,
    /// Ready entries announced by a write-close (a writer finishing, or another spooler leaving
    /// the file): looked at (lstat) before they are opened.
    announced: RelSet,
    /// Claimed by this spooler and not finished.
    held: Held,
    reaper: Reaper,
    delete_failures: Arc<DeleteFailures>,
    /// The spool directory's handle, for lookups relative to it.
    dir: Arc<OwnedFd>,
    /// Open task files with O_NOATIME until the kernel refuses it once.
    noatime: bool,
    /// Files whose last claim failed on a lock held elsewhere: probe them read-only first, so
    /// our failed attempts do not emit write-close events that other spoolers react to.
    contended: RelSet,
    /// An incremental rescan in progress: directories still to list (bucket, iterator).
    scan: Vec<(u64, fs::ReadDir)>,
    first_scan_done: bool,
    last_events: Instant,
    /// Claim attempts made (metrics; tests check that a held file is not retried in a loop).
    pub claim_attempts: u64,
    /// Task files this spooler could not open (permission denied), each reported once.
    unreadable: RelSet,
    /// This process's effective uid: task files of other owners (root and trusted users aside)
    /// are quarantined.
    euid: u32,
    next_scan: Instant,
    notices: Vec<Notice>,
    waker: std::sync::Arc<sys::EventFd>,
    extra_fds: Vec<std::os::fd::RawFd>,
    /// Python's signal wake-up fd: drained here, and makes [`Spooler::next`] return `Woken`.
    wakeup_fd: Option<std::os::fd::RawFd>,
    event_buf: Vec<u8>,
}

/// One read of the directory's inotify events: ~170 events of uWSGI-length names. A burst
/// larger than that is read over several calls; 64 KiB cost a spooler child 48 KiB more of
/// pages written (zeroed) for reads that never filled it.
const EVENT_BUF: usize = 16 * 1024;

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// True if a file's ctime is older than the grace given to a writer that has not written yet.
fn is_old(ctime: i64) -> bool {
    unix_now() - ctime > SHORT_FILE_GRACE.as_secs() as i64
}

impl Spooler {
    /// Open a spooler on an existing directory. The first call to [`Spooler::next`] scans it.
    pub fn open(root: &Path, cfg: SpoolerConfig) -> io::Result<Self> {
        let root: Arc<Path> = fs::canonicalize(root)?.into();
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("spool directory {} is not a directory", root.display()),
            ));
        }
        if let Some(why) = insecure_dir_reason(&root)? {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, why));
        }
        let inotify = Inotify::init()?;
        let held = Held::default();
        let delete_failures = Arc::new(DeleteFailures::default());
        let reaper = start_reaper(&held, &delete_failures)?;
        let dir = Arc::new(sys::open_dir_path(&root)?);
        let mut sp = Spooler {
            root,
            cfg,
            inotify,
            watches: HashMap::new(),
            ready: BTreeMap::new(),
            delayed: BinaryHeap::new(),
            known: RelSet::default(),
            announced: RelSet::default(),
            held,
            reaper,
            delete_failures,
            dir,
            noatime: true,
            contended: RelSet::default(),
            scan: Vec::new(),
            first_scan_done: false,
            last_events: Instant::now(),
            claim_attempts: 0,
            unreadable: RelSet::default(),
            // SAFETY: geteuid cannot fail.
            euid: unsafe { libc::geteuid() },
            next_scan: Instant::now(),
            notices: Vec::new(),
            waker: std::sync::Arc::new(sys::EventFd::new()?),
            extra_fds: Vec::new(),
            wakeup_fd: None,
            event_buf: vec![0u8; EVENT_BUF],
        };
        let root = sp.root.clone();
        sp.watch(&root, TOP_BUCKET)?;
        Ok(sp)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn config(&self) -> &SpoolerConfig {
        &self.cfg
    }

    /// Change the scan period (`uwsgi.set_spooler_frequency`); the next scan is re-planned.
    pub fn set_frequency(&mut self, frequency: Duration) {
        self.cfg.frequency = frequency;
        self.next_scan = self.next_scan.min(Instant::now() + frequency);
    }

    /// List the directory again at the next [`Spooler::next`] (uWSGI's spooler scans when it gets
    /// SIGUSR1): finds what no event announced, e.g. a file whose holder let go of a read lock.
    pub fn rescan_soon(&mut self) {
        self.next_scan = Instant::now();
    }

    /// Also wake [`Spooler::next`] (with `Woken`) when `fd` becomes readable: the spooler
    /// process's signal channels. The caller reads the fd.
    pub fn watch_fd(&mut self, fd: std::os::fd::RawFd) {
        self.extra_fds.push(fd);
    }

    /// Also wake [`Spooler::next`] (with `Woken`) when `fd`, the non-blocking read end of a
    /// process's signal wake-up pipe, becomes readable; the spooler empties it.
    pub fn watch_wakeup_fd(&mut self, fd: std::os::fd::RawFd) {
        self.wakeup_fd = Some(fd);
    }

    /// A handle that makes a blocked [`Spooler::next`] return `Woken` (safe from any thread).
    pub fn waker(&self) -> std::sync::Arc<sys::EventFd> {
        self.waker.clone()
    }

    /// Wait until every task finished with `ok` is deleted.
    pub fn flush(&self) {
        self.reaper.flush();
    }

    /// Tasks known to be waiting (ready now or later); for tests and metrics.
    pub fn pending(&self) -> usize {
        self.known.len()
    }

    /// Task files skipped because this spooler's user cannot open them (each counted once).
    pub fn unreadable(&self) -> usize {
        self.unreadable.len()
    }

    /// Run the queue once: return a notice or a claimed task if there is one, else wait up to
    /// `max_wait` for news (inotify, a due timer, the waker) and return `Idle`.
    pub fn next(&mut self, max_wait: Duration) -> io::Result<Next<Task>> {
        let deadline = Instant::now() + max_wait;
        loop {
            if let Some(n) = self.notices.pop() {
                return Ok(Next::Notice(n));
            }
            if let Some(n) = self.delete_failures.pop() {
                return Ok(Next::Notice(n));
            }
            // Reading inotify costs a syscall: between tasks of a busy queue do it every 2 ms,
            // enough for a new task's (or priority's) turn to come right after the current one.
            let now = Instant::now();
            if self.ready.is_empty() || now >= self.last_events + EVENT_READ_PERIOD {
                self.read_events()?;
                self.last_events = now;
            }
            if self.first_scan_done {
                if now >= self.next_scan {
                    self.start_rescan()?;
                }
                if !self.scan.is_empty() {
                    self.scan_step(RESCAN_SLICE, SystemTime::now());
                }
            } else {
                self.full_scan()?;
                self.first_scan_done = true;
            }
            self.promote_due();
            while let Some((key, ())) = self.ready.pop_first() {
                match self.try_claim(&key.rel) {
                    Ok(Claim::Got(task)) => {
                        self.known.remove(&key.rel);
                        return Ok(Next::Task(task));
                    }
                    Ok(Claim::Skip) => {
                        self.known.remove(&key.rel);
                    }
                    Ok(Claim::Later(at)) => {
                        self.delayed.push(Reverse((at, key.bucket, key.rel)));
                    }
                    Ok(Claim::Quarantine(err)) => {
                        self.known.remove(&key.rel);
                        match self.quarantine(&key.rel, err) {
                            Ok(n) => return Ok(Next::Notice(n)),
                            // Someone else moved or removed it first.
                            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                            Err(e) => return Err(e),
                        }
                    }
                    Err(e) => {
                        self.known.remove(&key.rel);
                        return Err(e);
                    }
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Next::Idle);
            }
            if !self.scan.is_empty() {
                continue; // a rescan is under way: keep listing rather than sleep
            }
            let mut wait = (deadline - now).min(self.next_scan.saturating_duration_since(now));
            if let Some(Reverse((at, _, _))) = self.delayed.peek() {
                let secs = (*at - unix_now()).max(0) as u64;
                // mtimes are whole seconds: wake just after the second turns.
                let until = Duration::from_secs(secs) + Duration::from_millis(1)
                    - Duration::from_nanos(
                        SystemTime::now()
                            .duration_since(UNIX_EPOCH)
                            .map_or(0, |d| u64::from(d.subsec_nanos())),
                    );
                wait = wait.min(until);
            }
            self.reaper.kick(); // about to sleep: finished tasks short of a batch go now
            let mut fds = vec![self.inotify.as_raw_fd(), self.waker.fd()];
            fds.extend(self.wakeup_fd);
            fds.extend_from_slice(&self.extra_fds);
            let ready = sys::poll_readable(&fds, wait)?;
            if ready[1] && self.waker.drain() {
                return Ok(Next::Woken);
            }
            let extra_at = 2 + usize::from(self.wakeup_fd.is_some());
            if let Some(fd) = self.wakeup_fd.filter(|_| ready[2]) {
                sys::drain_fd(fd);
                return Ok(Next::Woken);
            }
            if ready[extra_at..].iter().any(|&r| r) {
                return Ok(Next::Woken);
            }
        }
    }
}

impl Enqueue for Spooler {
    type Error = WriteError;

    /// Enqueue into this spooler's own directory (not durable).
    fn enqueue(&self, job: &Job<'_>) -> Result<TaskId, WriteError> {
        DirWriter::new(&self.root, false).enqueue(job)
    }
}

impl SpoolQueue for Spooler {
    type Task = Task;

    fn next(&mut self, max_wait: Duration) -> io::Result<Next<Task>> {
        Spooler::next(self, max_wait)
    }

    fn waker(&self) -> Arc<sys::EventFd> {
        Spooler::waker(self)
    }

    fn flush(&self) {
        Spooler::flush(self);
    }

    fn pending(&self) -> usize {
        Spooler::pending(self)
    }
}

/// The enqueue side of a spool directory, for any process (it never creates the directory).
/// Borrowed: building one per job costs nothing.
#[derive(Debug, Clone, Copy)]
pub struct DirWriter<'a> {
    root: &'a Path,
    /// fsync the file and the directory before returning.
    durable: bool,
}

impl<'a> DirWriter<'a> {
    pub fn new(root: &'a Path, durable: bool) -> Self {
        DirWriter { root, durable }
    }
}

impl Enqueue for DirWriter<'_> {
    type Error = WriteError;

    /// Write the task file uWSGI's way; its id is the file's full path.
    fn enqueue(&self, job: &Job<'_>) -> Result<TaskId, WriteError> {
        write::spool_write_packet(self.root, job.packet, job.priority, job.at, self.durable)
            .map(TaskId::from)
    }
}

/// The path a directory-backend task id names (the id's bytes are the path's).
pub fn id_path(id: &TaskId) -> &Path {
    Path::new(std::ffi::OsStr::from_bytes(id.as_bytes()))
}

/// Read the task `id` names without claiming it (`uwsgi.spooler_get_task`): its name and
/// packet, or None if it is missing, held by a running spooler or malformed.
pub fn read_task(id: &TaskId) -> io::Result<Option<(Vec<u8>, super::packet::Packet)>> {
    let path = id_path(id);
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(_) => return Ok(None),
    };
    if sys::is_locked(&file)? {
        return Ok(None);
    }
    let mut data = Vec::new();
    io::Read::read_to_end(&mut &file, &mut data)?;
    let name = path
        .file_name()
        .map(|n| n.as_bytes().to_vec())
        .unwrap_or_default();
    Ok(super::packet::decode(&data).ok().map(|p| (name, p)))
}

/// The ids of the tasks waiting at the top level of `root`, in directory order (what
/// `uwsgi.spooler_jobs` lists: regular files named `uwsgi_spoolfile_on_*`).
pub fn list_waiting(root: &Path) -> io::Result<Vec<TaskId>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(root)? {
        let entry = entry?;
        if entry
            .file_name()
            .as_bytes()
            .starts_with(name::PREFIX.as_bytes())
            && entry.file_type().is_ok_and(|t| t.is_file())
        {
            out.push(TaskId::from(root.join(entry.file_name())));
        }
    }
    Ok(out)
}
