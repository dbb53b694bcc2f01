//! One spooler process's view of a spool directory: which task to run next, and its outcome.
//!
//! Discovery is incremental. A full directory scan happens at start, every `frequency`, and when
//! inotify overflows; in between, inotify names each new file (`IN_CREATE` when a name appears,
//! `IN_CLOSE_WRITE` when a writer that filled its file in place closes it or another spooler
//! releases one, `IN_MOVED_TO` from renames), so a task written by any process is seen at once and draining costs the same per task with 200000
//! files queued as with 1000 (no re-scan per task).
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

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};

use super::name;
use super::packet::{self, PacketError, Var};
use super::reaper;
use crate::sys;

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
        }
    }
}

/// Something the spooler did on its own that its owner should log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A malformed file was moved aside.
    Quarantined {
        from: PathBuf,
        to: PathBuf,
        reason: String,
    },
    /// A writer's leftover temporary file was removed.
    RemovedTemp { path: PathBuf },
    /// A finished task's file could not be deleted (it will run again).
    DeleteFailed { path: PathBuf, reason: String },
}

/// What a call to [`Spooler::next`] produced.
#[derive(Debug)]
pub enum Next {
    Task(Task),
    Notice(Notice),
    /// Nothing to run within the wait.
    Idle,
    /// The waker fired.
    Woken,
}

/// Where a task went after a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailOutcome {
    /// Kept; runs again once `at` (unix seconds) is reached.
    RetryAt { at: i64, attempts: u32 },
    /// Moved to `dead/`.
    Dead { to: PathBuf, attempts: u32 },
}

/// A claimed task: the file is held under an exclusive lock until an outcome is applied or the
/// task is dropped (which releases it unchanged).
#[derive(Debug)]
pub struct Task {
    /// None once handed to the reaper.
    file: Option<File>,
    /// Relative to the spool directory, as the spooler's bookkeeping knows it.
    rel: PathBuf,
    /// The spool directory (shared: no copy per task).
    root: Arc<Path>,
    pub vars: Vec<Var>,
    pub body: Vec<u8>,
    held: Held,
    /// Deletes the file after `ok`.
    reaper: Reaper,
    /// The spool directory's handle (`rel` is relative to it).
    dir: Arc<OwnedFd>,
}

/// What a spooler's tasks tell it back, shared between the spooler, the tasks it handed out and
/// its reaper threads.
#[derive(Debug, Default)]
struct Book {
    /// Handed out and not finished (or finished and not yet deleted): events about them (other
    /// processes opening them, or our own close) must not make the spooler try to claim them
    /// again.
    held: RelSet,
    /// Opened for writing by us and left without running (too short: its writer is still at
    /// work), their close event not seen yet: the event is ours, skip it. (Deleted tasks need
    /// no entry: the watches report nothing about unlinked files.)
    left: RelSet,
    left_order: std::collections::VecDeque<PathBuf>,
}

impl Book {
    fn remember_left(&mut self, rel: &Path) {
        if self.left.insert(rel) {
            self.left_order.push_back(rel.to_path_buf());
            if self.left_order.len() > LEFT_MEMORY {
                if let Some(old) = self.left_order.pop_front() {
                    self.left.remove(&old);
                }
            }
        }
    }
}

/// A set of paths relative to the spool directory, hashed as their bytes: `Path`'s own `Hash`
/// walks the components, and these sets are looked up several times per task.
#[derive(Debug, Default)]
struct RelSet(HashSet<Box<[u8]>, rustc_hash::FxBuildHasher>);

impl RelSet {
    fn contains(&self, rel: &Path) -> bool {
        self.0.contains(rel.as_os_str().as_bytes())
    }

    fn insert(&mut self, rel: &Path) -> bool {
        self.0.insert(rel.as_os_str().as_bytes().into())
    }

    fn remove(&mut self, rel: &Path) -> bool {
        self.0.remove(rel.as_os_str().as_bytes())
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Bound on `Book::left` (an event lost to an inotify overflow would leave its entry).
const LEFT_MEMORY: usize = 4096;
/// Threads deleting finished tasks. Closing a deleted file mostly waits (for the journal, or the
/// device's discard), so several threads overlap those waits even on one core.
const REAPER_THREADS: usize = 8;
/// Finished tasks that may wait for deletion; `ok` blocks beyond this, which also bounds how
/// many finished tasks a crash can make run again.
const REAPER_BACKLOG: usize = 64;

type Held = Arc<std::sync::Mutex<Book>>;

fn held_lock(h: &std::sync::Mutex<Book>) -> std::sync::MutexGuard<'_, Book> {
    h.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A finished task on its way out: its file is still open (so still locked) until deleted.
struct Finished {
    file: File,
    root: Arc<Path>,
    rel: PathBuf,
    dir: Arc<OwnedFd>,
}

/// Unlink, then close: the lock goes with the last descriptor, after the name is gone.
fn reap(book: &std::sync::Mutex<Book>, done: Finished) -> io::Result<()> {
    let res = match sys::unlink_at(&done.dir, &done.rel) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    };
    // Our close after the unlink announces nothing (the watches exclude unlinked files).
    held_lock(book).held.remove(&done.rel);
    drop(done.file);
    res
}

type Reaper = Arc<reaper::Reaper<Finished>>;

/// Deletions that failed, for the spooler to report; the flag saves it a lock per task.
#[derive(Default)]
struct DeleteFailures {
    any: std::sync::atomic::AtomicBool,
    notices: std::sync::Mutex<Vec<Notice>>,
}

impl DeleteFailures {
    fn push(&self, n: Notice) {
        let mut v = self
            .notices
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        v.push(n);
        self.any.store(true, std::sync::atomic::Ordering::Release);
    }

    fn pop(&self) -> Option<Notice> {
        if !self.any.load(std::sync::atomic::Ordering::Acquire) {
            return None;
        }
        let mut v = self
            .notices
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = v.pop();
        if v.is_empty() {
            self.any.store(false, std::sync::atomic::Ordering::Release);
        }
        n
    }
}

fn start_reaper(held: &Held, failures: &Arc<DeleteFailures>) -> io::Result<Reaper> {
    let book = held.clone();
    let failures = failures.clone();
    let r = reaper::Reaper::start(
        "spool-reaper",
        REAPER_THREADS,
        REAPER_BACKLOG,
        move |done: Finished| {
            let path = done.root.join(&done.rel);
            if let Err(e) = reap(&book, done) {
                failures.push(Notice::DeleteFailed {
                    path,
                    reason: e.to_string(),
                });
            }
        },
    )?;
    Ok(Arc::new(r))
}

impl Drop for Task {
    fn drop(&mut self) {
        if self.file.is_some() {
            held_lock(&self.held).held.remove(&self.rel);
        }
    }
}

impl Task {
    fn file(&self) -> &File {
        self.file
            .as_ref()
            .expect("a task's file is present until an outcome")
    }

    /// Failures recorded on the file so far (read from the file when asked).
    pub fn attempts(&self) -> u32 {
        sys::read_attempts(self.file())
    }

    pub fn path(&self) -> PathBuf {
        self.root.join(&self.rel)
    }

    /// True when the file is in a priority subdirectory.
    pub fn in_subdir(&self) -> bool {
        self.rel.parent().is_some_and(|p| !p.as_os_str().is_empty())
    }

    /// The file's basename (what uWSGI passes as `spooler_task_name`).
    pub fn name(&self) -> &[u8] {
        self.rel.file_name().map_or(b"", |n| n.as_bytes())
    }

    /// Success: remove the file (before the lock is dropped, so nobody runs it again). Returns
    /// once the spooler's reaper has the file, which it deletes shortly ([`Spooler::flush`]
    /// waits for that); a deletion that fails comes back as a [`Notice::DeleteFailed`].
    pub fn ok(mut self) -> io::Result<()> {
        let file = self
            .file
            .take()
            .expect("a task's file is present until an outcome");
        let done = Finished {
            file,
            root: self.root.clone(),
            rel: std::mem::take(&mut self.rel),
            dir: self.dir.clone(),
        };
        self.reaper.push(done);
        Ok(())
    }

    /// Keep the file; it runs again after `delay` (uWSGI re-runs it at the next scan).
    pub fn retry(self, delay: Duration) -> io::Result<i64> {
        let at = unix_now() + delay.as_secs().max(1) as i64;
        sys::set_times(self.file(), at)?;
        Ok(at)
    }

    /// The task raised: count the failure on the file, then delay it or move it to `dead/`.
    pub fn failed(self, cfg: &SpoolerConfig) -> io::Result<FailOutcome> {
        let attempts = self.attempts().saturating_add(1);
        // Without xattr support the count lives only in memory; the delay still grows within
        // this process, and the file is never lost.
        let _ = sys::write_attempts(self.file(), attempts);
        if cfg.max_attempts > 0 && attempts >= cfg.max_attempts {
            let dir = self.root.join(DEAD_DIR);
            let to = move_aside(&self.path(), &dir)?;
            return Ok(FailOutcome::Dead { to, attempts });
        }
        let exp = attempts.saturating_sub(1).min(30);
        let delay = cfg
            .retry_delay
            .saturating_mul(1u32 << exp)
            .min(cfg.retry_max_delay);
        let at = unix_now() + delay.as_secs().max(1) as i64;
        sys::set_times(self.file(), at)?;
        Ok(FailOutcome::RetryAt { at, attempts })
    }

    /// Give the task back unchanged (it runs again at once, here or in another spooler).
    pub fn release(self) {}
}

/// Ordering key of a ready task: priority bucket, then enqueue time from the name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    bucket: u64,
    /// Enqueue second from the name (None for names not of uWSGI's shape: first).
    sec: Option<u64>,
    /// Not in this process's share (see [`SpoolerConfig::share`]).
    foreign: bool,
    fields: Option<name::NameFields>,
    rel: PathBuf,
}

/// A stable spread of file names over the spooler processes: FNV-1a, then a final mix (FNV's
/// low bits alone follow the parity of the bytes, and uWSGI names repeat digits).
fn name_hash(name: &[u8]) -> u64 {
    let mut h = name.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// Bucket of top-level tasks: after every priority directory.
const TOP_BUCKET: u64 = u64::MAX;

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
    next_scan: Instant,
    notices: Vec<Notice>,
    waker: std::sync::Arc<sys::EventFd>,
    extra_fds: Vec<std::os::fd::RawFd>,
    /// Python's signal wake-up fd: drained here, and makes [`Spooler::next`] return `Woken`.
    wakeup_fd: Option<std::os::fd::RawFd>,
    event_buf: Vec<u8>,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// True if a file's ctime is older than the grace given to a writer that has not written yet.
fn is_old(ctime: i64) -> bool {
    unix_now() - ctime > SHORT_FILE_GRACE.as_secs() as i64
}

fn priority_of(name: &[u8]) -> Option<u64> {
    if !name.is_empty() && name.iter().all(u8::is_ascii_digit) {
        std::str::from_utf8(name).ok()?.parse().ok()
    } else {
        None
    }
}

/// Move `path` into `dir` (created if needed), keeping its name; returns the new path.
fn move_aside(path: &Path, dir: &Path) -> io::Result<PathBuf> {
    match fs::create_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    let to = dir.join(path.file_name().unwrap_or_default());
    fs::rename(path, &to)?;
    Ok(to)
}

enum Claim {
    Got(Task),
    /// Not runnable now (gone, locked, not yet complete); events will bring it back.
    Skip,
    /// Its mtime is in the future.
    Later(i64),
    Quarantine(PacketError),
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
            next_scan: Instant::now(),
            notices: Vec::new(),
            waker: std::sync::Arc::new(sys::EventFd::new()?),
            extra_fds: Vec::new(),
            wakeup_fd: None,
            event_buf: vec![0u8; 64 * 1024],
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

    fn watch(&mut self, dir: &Path, bucket: u64) -> io::Result<()> {
        // CREATE: a new name (a complete file linked into place, or one to be filled in place).
        // CLOSE_WRITE: a writer that created, then filled its file closes it (uWSGI's; ours for
        // a small task).
        // MOVED_TO: writers that rename a finished file into place.
        // EXCL_UNLINK: nothing about a file once its name is gone. A finished task is unlinked
        // before its last close (ours, another spooler's, uWSGI's), and that close would
        // otherwise cost the closing thread an event and every spooler a read of it, per task.
        let mask = WatchMask::CREATE
            | WatchMask::CLOSE_WRITE
            | WatchMask::MOVED_TO
            | WatchMask::ONLYDIR
            | WatchMask::EXCL_UNLINK;
        let wd = self.inotify.watches().add(dir, mask)?;
        self.watches.insert(wd, bucket);
        Ok(())
    }

    fn key(&self, bucket: u64, fields: Option<name::NameFields>, rel: PathBuf) -> Key {
        let (index, count) = self.cfg.share;
        let foreign = count > 1
            && name_hash(rel.file_name().map_or(b"", |n| n.as_bytes())) % u64::from(count)
                != u64::from(index);
        Key {
            bucket,
            sec: fields.as_ref().map(|f| f.sec),
            foreign,
            fields,
            rel,
        }
    }

    fn rel_of(&self, bucket: u64, name: &[u8]) -> PathBuf {
        let name = Path::new(std::ffi::OsStr::from_bytes(name));
        if bucket == TOP_BUCKET {
            name.to_path_buf()
        } else {
            Path::new(&bucket.to_string()).join(name)
        }
    }

    /// Note a candidate file (`announced`: by a write-close event, see `announced`); `book` is this
    /// spooler's, locked once by the caller for a batch of offers.
    fn offer(&mut self, book: &mut Book, bucket: u64, name: &[u8], announced: bool) {
        if !name::is_task_name(name, bucket == TOP_BUCKET && self.cfg.numeric_names) {
            return;
        }
        let rel = self.rel_of(bucket, name);
        if self.known.contains(&rel) {
            return;
        }
        if book.held.contains(&rel) || book.left.remove(&rel) {
            return;
        }
        let fields = std::str::from_utf8(name).ok().and_then(name::parse);
        self.known.insert(&rel);
        if announced {
            self.announced.insert(&rel);
        }
        self.ready.insert(self.key(bucket, fields, rel), ());
    }

    fn scan_dir(&mut self, dir: &Path, bucket: u64, now: SystemTime) -> io::Result<()> {
        self.scan.push((bucket, fs::read_dir(dir)?));
        while !self.scan_step(usize::MAX, now) {}
        Ok(())
    }

    /// List up to `budget` entries of the scan in progress; true when the scan is finished.
    fn scan_step(&mut self, budget: usize, now: SystemTime) -> bool {
        let held = self.held.clone();
        let mut book = held_lock(&held);
        let mut left = budget;
        while let Some((bucket, mut rd)) = self.scan.pop() {
            let mut done = true;
            for entry in rd.by_ref() {
                let Ok(entry) = entry else { continue };
                let fname = entry.file_name();
                let name = fname.as_bytes();
                if bucket == TOP_BUCKET {
                    if let Some(p) = priority_of(name) {
                        if entry.file_type().is_ok_and(|t| t.is_dir()) {
                            let sub = entry.path();
                            // Watch first, then list: a file arriving in between is seen
                            // twice at worst, never missed.
                            if !self.watches.values().any(|&b| b == p) {
                                let _ = self.watch(&sub, p);
                            }
                            if let Ok(sub_rd) = fs::read_dir(&sub) {
                                self.scan.push((bucket, rd));
                                self.scan.push((p, sub_rd));
                                done = false;
                                break;
                            }
                            continue;
                        }
                    }
                }
                if name.starts_with(name::TEMP_PREFIX.as_bytes()) {
                    self.remove_stale_temp(&entry.path(), now);
                } else {
                    self.offer(&mut book, bucket, name, false);
                }
                left -= 1;
                if left == 0 {
                    self.scan.push((bucket, rd));
                    return false;
                }
            }
            if !done {
                continue;
            }
        }
        true
    }

    fn remove_stale_temp(&mut self, path: &Path, now: SystemTime) {
        // ctime, not mtime: a writer sets the mtime to `at`, which may be long past.
        let Ok(meta) = fs::symlink_metadata(path) else {
            return;
        };
        let ctime = UNIX_EPOCH + Duration::from_secs(meta.ctime().max(0) as u64);
        if now.duration_since(ctime).unwrap_or_default() > STALE_TEMP_AGE
            && fs::remove_file(path).is_ok()
        {
            self.notices.push(Notice::RemovedTemp {
                path: path.to_path_buf(),
            });
        }
    }

    /// List the whole directory again (start, periodic fallback, inotify overflow).
    pub fn full_scan(&mut self) -> io::Result<()> {
        self.scan.clear();
        let root = self.root.clone();
        self.scan_dir(&root, TOP_BUCKET, SystemTime::now())?;
        self.next_scan = Instant::now() + self.cfg.frequency;
        Ok(())
    }

    /// Start a rescan that [`Spooler::next`] carries out a slice at a time between tasks, so a
    /// directory of 200000 files never stalls the queue.
    fn start_rescan(&mut self) -> io::Result<()> {
        if self.scan.is_empty() {
            self.scan.push((TOP_BUCKET, fs::read_dir(&self.root)?));
        }
        self.next_scan = Instant::now() + self.cfg.frequency;
        Ok(())
    }

    fn read_events(&mut self) -> io::Result<()> {
        let mut buf = std::mem::take(&mut self.event_buf);
        let result = self.read_events_into(&mut buf);
        self.event_buf = buf;
        result
    }

    /// One read of what inotify has (never blocks): a second read would mostly say EAGAIN, on
    /// the path from an enqueue to its start; what did not fit in the buffer (64 KiB) is read
    /// at the next call, and wakes the next poll at once.
    fn read_events_into(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let events = match self.inotify.read_events(buf) {
            Ok(ev) => ev,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut new_dirs: Vec<(PathBuf, u64)> = Vec::new();
        let mut overflow = false;
        // The book is locked once per batch of events (the reaper threads share it).
        let held = self.held.clone();
        let mut book = held_lock(&held);
        for ev in events {
            if ev.mask.contains(EventMask::Q_OVERFLOW) {
                overflow = true;
                continue;
            }
            if ev.mask.contains(EventMask::IGNORED) {
                self.watches.remove(&ev.wd);
                continue;
            }
            let Some(&bucket) = self.watches.get(&ev.wd) else {
                continue;
            };
            let Some(n) = ev.name else { continue };
            let n = n.as_bytes();
            if ev.mask.contains(EventMask::ISDIR) {
                if bucket == TOP_BUCKET {
                    if let Some(p) = priority_of(n) {
                        new_dirs.push((self.root.join(std::ffi::OsStr::from_bytes(n)), p));
                    }
                }
                continue;
            }
            if ev.mask.contains(EventMask::MOVED_TO) {
                // Renamed into place: a complete file.
                self.offer(&mut book, bucket, n, false);
            } else if ev.mask.contains(EventMask::CREATE) {
                // A new name: a complete file linked into place, or (most often) an empty one
                // that an in-place writer is about to lock and fill. Look before opening: an
                // open and lock of the empty file would make that writer wait for our lock (a
                // wake-up more on the task's way to its handler); its close brings it back.
                self.offer(&mut book, bucket, n, true);
            } else if ev.mask.contains(EventMask::CLOSE_WRITE) {
                // A writer finished, or another spooler left the file: look before opening.
                self.offer(&mut book, bucket, n, true);
            }
        }
        drop(book);
        for (dir, p) in new_dirs {
            if !self.watches.values().any(|&b| b == p) {
                let _ = self.watch(&dir, p);
            }
            let _ = self.scan_dir(&dir, p, SystemTime::now());
        }
        if overflow {
            self.full_scan()?;
        }
        Ok(())
    }

    fn promote_due(&mut self) {
        let now = unix_now();
        while let Some(Reverse((at, bucket, _))) = self.delayed.peek() {
            if *at > now {
                break;
            }
            let bucket = *bucket;
            let Some(Reverse((_, _, rel))) = self.delayed.pop() else {
                break;
            };
            let fields = rel
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(name::parse);
            self.ready.insert(self.key(bucket, fields, rel), ());
        }
    }

    fn try_claim(&mut self, rel: &Path) -> io::Result<Claim> {
        self.claim_attempts += 1;
        if !self.contended.is_empty() && self.contended.contains(rel) {
            // Held elsewhere at our last try: probe read-only, so that our failed attempts emit
            // no write-close events that other spoolers would react to.
            match sys::open_ro_at(&self.dir, rel) {
                Ok(probe) if sys::is_locked(&probe)? => return Ok(Claim::Skip),
                Ok(_) => {
                    self.contended.remove(rel);
                }
                Err(_) => {
                    self.contended.remove(rel);
                    return Ok(Claim::Skip);
                }
            }
        }
        if !self.announced.is_empty() && self.announced.remove(rel) {
            // A write-close named it: maybe another spooler's look at an in-place writer's file
            // between its create and its write. Look before opening it for writing, whose close
            // would announce it to the other spoolers again (a ping-pong while a writer stalls).
            let meta = match sys::lstat_at(&self.dir, rel) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Claim::Skip),
                Err(e) => return Err(e),
            };
            if !meta.is_file {
                return Ok(Claim::Skip);
            }
            if meta.mtime > unix_now() {
                return Ok(Claim::Later(meta.mtime));
            }
            if meta.len < packet::HEADER_LEN as u64 && !is_old(meta.ctime) {
                return Ok(Claim::Skip); // the writer's close brings it back
            }
        }
        // Found by a scan or a create event (or looked at above): open and lock first, check
        // after, one lookup per claim. The file may still be being written; our close of it is
        // skipped by `own_close`, and the other spoolers look before they open what that close
        // announces.
        let file = match sys::open_rw_at(&self.dir, rel, &mut self.noatime) {
            Ok(f) => f,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
                ) || matches!(
                    e.raw_os_error(),
                    Some(libc::ELOOP) | Some(libc::EISDIR) | Some(libc::ENXIO)
                ) =>
            {
                return Ok(Claim::Skip); // gone, not ours to read, or not a regular file
            }
            Err(e) => return Err(e),
        };
        if !sys::try_lock_exclusive(&file)? {
            self.contended.insert(rel);
            return Ok(Claim::Skip);
        }
        let meta = sys::fstat(&file)?;
        if !meta.is_file {
            return Ok(Claim::Skip);
        }
        // The previous holder may have finished and unlinked it while we waited to open it.
        if meta.nlink == 0 {
            return Ok(Claim::Skip);
        }
        if meta.mtime > unix_now() {
            return Ok(Claim::Later(meta.mtime));
        }
        if meta.len < packet::HEADER_LEN as u64 && !is_old(meta.ctime) {
            // A writer between its open and its write (it waits for our lock): its
            // close brings the file back; ours must not.
            self.own_close(rel);
            return Ok(Claim::Skip);
        }
        // Under our lock the content is final (writers hold the lock while they write).
        let mut data = vec![0u8; meta.len as usize];
        if let Err(e) = (&file).read_exact(&mut data) {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                return Ok(Claim::Skip);
            }
            return Err(e);
        }
        let decoded = match packet::decode(&data) {
            Ok(p) => p,
            Err(PacketError::ShortHeader { .. }) => {
                if !is_old(meta.ctime) {
                    self.own_close(rel);
                    return Ok(Claim::Skip);
                }
                return Ok(Claim::Quarantine(PacketError::ShortHeader {
                    len: data.len(),
                }));
            }
            Err(e) => return Ok(Claim::Quarantine(e)),
        };
        held_lock(&self.held).held.insert(rel);
        Ok(Claim::Got(Task {
            file: Some(file),
            rel: rel.to_path_buf(),
            root: self.root.clone(),
            vars: decoded.vars,
            body: decoded.body,
            held: self.held.clone(),
            reaper: self.reaper.clone(),
            dir: self.dir.clone(),
        }))
    }

    /// We opened `rel` for writing and leave it: skip the write-close event our close makes.
    fn own_close(&self, rel: &Path) {
        held_lock(&self.held).remember_left(rel);
    }

    fn quarantine(&mut self, rel: &Path, err: &PacketError) -> io::Result<Notice> {
        let from = self.root.join(rel);
        let dir = self.root.join(QUARANTINE_DIR);
        let to = move_aside(&from, &dir)?;
        let reason = err.to_string();
        let mut reason_path = to.clone().into_os_string();
        reason_path.push(".reason");
        let _ = fs::write(reason_path, format!("{reason}\n"));
        Ok(Notice::Quarantined { from, to, reason })
    }

    /// Run the queue once: return a notice or a claimed task if there is one, else wait up to
    /// `max_wait` for news (inotify, a due timer, the waker) and return `Idle`.
    pub fn next(&mut self, max_wait: Duration) -> io::Result<Next> {
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
                        match self.quarantine(&key.rel, &err) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::write::spool_write;

    fn v(k: &str, val: &str) -> Var {
        (k.as_bytes().to_vec(), val.as_bytes().to_vec())
    }

    fn next_task(sp: &mut Spooler) -> Option<Task> {
        for _ in 0..50 {
            match sp.next(Duration::from_millis(20)).unwrap() {
                Next::Task(t) => return Some(t),
                Next::Notice(_) => {}
                Next::Idle | Next::Woken => return None,
            }
        }
        None
    }

    #[test]
    fn runs_existing_then_new_tasks_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        spool_write(tmp.path(), &[v("n", "1")], b"", false).unwrap();
        spool_write(tmp.path(), &[v("n", "2")], b"", false).unwrap();
        let mut sp = Spooler::open(tmp.path(), SpoolerConfig::default()).unwrap();
        let t = next_task(&mut sp).unwrap();
        assert_eq!(t.vars, vec![v("n", "1")]);
        t.ok().unwrap();
        // A task written now is seen through inotify, before the next full scan.
        spool_write(tmp.path(), &[v("n", "3")], b"", false).unwrap();
        let t = next_task(&mut sp).unwrap();
        assert_eq!(t.vars, vec![v("n", "2")]);
        t.ok().unwrap();
        let t = next_task(&mut sp).unwrap();
        assert_eq!(t.vars, vec![v("n", "3")]);
        t.ok().unwrap();
        assert!(next_task(&mut sp).is_none());
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn priority_dirs_first_lowest_first() {
        let tmp = tempfile::tempdir().unwrap();
        spool_write(tmp.path(), &[v("n", "top")], b"", false).unwrap();
        spool_write(tmp.path(), &[v("priority", "10")], b"", false).unwrap();
        spool_write(tmp.path(), &[v("priority", "2")], b"", false).unwrap();
        let mut sp = Spooler::open(tmp.path(), SpoolerConfig::default()).unwrap();
        let order: Vec<Vec<Var>> = (0..3)
            .map(|_| {
                let t = next_task(&mut sp).unwrap();
                let vars = t.vars.clone();
                t.ok().unwrap();
                vars
            })
            .collect();
        assert_eq!(
            order,
            vec![
                vec![v("priority", "2")],
                vec![v("priority", "10")],
                vec![v("n", "top")]
            ]
        );
    }

    #[test]
    fn new_priority_dir_is_watched() {
        let tmp = tempfile::tempdir().unwrap();
        let mut sp = Spooler::open(tmp.path(), SpoolerConfig::default()).unwrap();
        assert!(next_task(&mut sp).is_none());
        spool_write(tmp.path(), &[v("priority", "7")], b"", false).unwrap();
        let t = next_task(&mut sp).expect("task in a new priority dir");
        assert_eq!(t.path().parent().unwrap(), sp.root().join("7"));
    }

    #[test]
    fn future_at_waits() {
        let tmp = tempfile::tempdir().unwrap();
        let at = (unix_now() + 3600).to_string();
        spool_write(tmp.path(), &[v("at", &at)], b"", false).unwrap();
        let mut sp = Spooler::open(tmp.path(), SpoolerConfig::default()).unwrap();
        assert!(next_task(&mut sp).is_none());
        assert_eq!(sp.pending(), 1);
    }

    #[test]
    fn spoolers_with_shares_start_on_different_files_and_each_ends_with_all() {
        let tmp = tempfile::tempdir().unwrap();
        // One enqueue second for all (as a burst of writes has), so only the shares order them.
        for i in 0..40 {
            let name = format!("uwsgi_spoolfile_on_h_1_{i}_7_1700000000_{i}");
            let data = packet::encode(&[v("n", &i.to_string())], b"").unwrap();
            fs::write(tmp.path().join(name), data).unwrap();
        }
        let cfg = |index| SpoolerConfig {
            share: (index, 2),
            ..SpoolerConfig::default()
        };
        let mut a = Spooler::open(tmp.path(), cfg(0)).unwrap();
        let mut b = Spooler::open(tmp.path(), cfg(1)).unwrap();
        let (ta, tb) = (next_task(&mut a).unwrap(), next_task(&mut b).unwrap());
        // Each starts in its own share: no lock collision.
        let share = |t: &Task| name_hash(t.name()) % 2;
        assert_eq!((share(&ta), share(&tb)), (0, 1));
        assert_eq!(b.claim_attempts, 1, "b's first claim hit no lock of a's");
        ta.ok().unwrap();
        tb.ok().unwrap();
        // One spooler alone still runs everything, the other share included.
        drop(b);
        let mut n = 2;
        while let Some(t) = next_task(&mut a) {
            t.ok().unwrap();
            n += 1;
        }
        assert_eq!(n, 40);
    }

    #[test]
    fn locked_task_is_not_claimed_twice() {
        let tmp = tempfile::tempdir().unwrap();
        spool_write(tmp.path(), &[v("n", "1")], b"", false).unwrap();
        let mut a = Spooler::open(tmp.path(), SpoolerConfig::default()).unwrap();
        let mut b = Spooler::open(tmp.path(), SpoolerConfig::default()).unwrap();
        let t = next_task(&mut a).unwrap();
        assert!(next_task(&mut b).is_none());
        t.release();
        // Releasing (closing) the file tells every watcher about it again.
        assert!(next_task(&mut b).is_some());
    }

    #[test]
    fn tasks_another_spooler_finished_cost_this_one_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        for i in 0..50 {
            spool_write(tmp.path(), &[v("n", &i.to_string())], b"", false).unwrap();
        }
        let mut a = Spooler::open(tmp.path(), SpoolerConfig::default()).unwrap();
        let mut b = Spooler::open(tmp.path(), SpoolerConfig::default()).unwrap();
        let mut ran = 0;
        while let Some(t) = next_task(&mut a) {
            t.ok().unwrap();
            ran += 1;
        }
        a.flush();
        assert_eq!(ran, 50);
        // `a` closed each file after unlinking it: `b` hears nothing of those closes, so it
        // neither looks at nor tries to open any of the 50 names.
        assert!(next_task(&mut b).is_none());
        assert_eq!(b.claim_attempts, 0);
    }

    #[test]
    fn a_created_empty_file_is_looked_at_not_opened() {
        // An in-place writer between its create and its lock: the spooler must not open (and
        // lock) the empty file, which would make the writer wait for it.
        let tmp = tempfile::tempdir().unwrap();
        let mut sp = Spooler::open(tmp.path(), SpoolerConfig::default()).unwrap();
        assert!(next_task(&mut sp).is_none());
        let path = tmp.path().join("uwsgi_spoolfile_on_h_1_1_7_1700000000_1");
        let mut writer = File::create(&path).unwrap();
        let mut spy = Inotify::init().unwrap();
        spy.watches()
            .add(&path, WatchMask::OPEN | WatchMask::CLOSE)
            .unwrap();
        assert!(next_task(&mut sp).is_none());
        let mut buf = [0u8; 1024];
        let opened = match spy.read_events(&mut buf) {
            Ok(evs) => evs.count(),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(opened, 0, "the spooler opened the empty file");
        // The writer fills and closes it: now it runs.
        std::io::Write::write_all(&mut writer, &packet::encode(&[v("n", "1")], b"").unwrap())
            .unwrap();
        drop(writer);
        let t = next_task(&mut sp).expect("the task after the writer's close");
        assert_eq!(t.vars, vec![v("n", "1")]);
        t.ok().unwrap();
    }

    #[test]
    fn rescan_soon_finds_what_no_event_announced() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = SpoolerConfig {
            frequency: Duration::from_secs(3600),
            ..SpoolerConfig::default()
        };
        let mut sp = Spooler::open(tmp.path(), cfg).unwrap();
        assert!(next_task(&mut sp).is_none());
        // Named while another process holds a read lock on it: the claim fails, and the
        // read-only close that drops the lock sends no event the spooler watches.
        let incoming = tmp.path().join("incoming");
        fs::write(&incoming, packet::encode(&[v("n", "1")], b"").unwrap()).unwrap();
        let held = File::open(&incoming).unwrap();
        let fl = libc::flock {
            l_type: libc::F_RDLCK as libc::c_short,
            l_whence: libc::SEEK_SET as libc::c_short,
            l_start: 0,
            l_len: 0,
            l_pid: 0,
        };
        // An OFD lock: a POSIX one would go with the spooler's own close of the file (same
        // process), which another process's lock does not.
        // SAFETY: a valid fd and a live flock struct.
        assert_eq!(
            unsafe { libc::fcntl(held.as_raw_fd(), libc::F_OFD_SETLK, &fl) },
            0
        );
        fs::rename(
            &incoming,
            tmp.path().join("uwsgi_spoolfile_on_h_1_1_7_1700000000_1"),
        )
        .unwrap();
        assert!(next_task(&mut sp).is_none());
        drop(held);
        assert!(next_task(&mut sp).is_none());
        sp.rescan_soon();
        let t = next_task(&mut sp).expect("found by the rescan");
        assert_eq!(t.vars, vec![v("n", "1")]);
        t.ok().unwrap();
    }

    /// uWSGI's writer: create the final name, (lock,) write, close; stopped after the create.
    /// The spoolers find it by an event (created while they run) or by their first scan.
    fn stalled_uwsgi_writer(created_before_spoolers: bool) {
        use std::io::Write;
        let tmp = tempfile::tempdir().unwrap();
        let name = "uwsgi_spoolfile_on_h_1_1_7_1700000000_1";
        let create = || File::create(tmp.path().join(name)).unwrap();
        let early = created_before_spoolers.then(create);
        let mut a = Spooler::open(tmp.path(), SpoolerConfig::default()).unwrap();
        let mut b = Spooler::open(tmp.path(), SpoolerConfig::default()).unwrap();
        let mut w = early.unwrap_or_else(create);
        for _ in 0..20 {
            assert!(matches!(
                a.next(Duration::from_millis(5)).unwrap(),
                Next::Idle
            ));
            assert!(matches!(
                b.next(Duration::from_millis(5)).unwrap(),
                Next::Idle
            ));
        }
        // Looks at the incomplete file must not wake us or the other spooler again and again.
        assert!(a.claim_attempts <= 3, "{} attempts", a.claim_attempts);
        assert!(b.claim_attempts <= 3, "{} attempts", b.claim_attempts);
        w.write_all(&packet::encode(&[v("n", "1")], b"").unwrap())
            .unwrap();
        drop(w); // the writer's close announces the complete file
        let t = next_task(&mut a)
            .or_else(|| next_task(&mut b))
            .expect("runs once complete");
        assert_eq!(t.vars, vec![v("n", "1")]);
        t.ok().unwrap();
    }

    #[test]
    fn a_file_being_written_uwsgi_style_is_not_retried_in_a_loop_seen_by_event() {
        stalled_uwsgi_writer(false);
    }

    #[test]
    fn a_file_being_written_uwsgi_style_is_not_retried_in_a_loop_seen_by_scan() {
        stalled_uwsgi_writer(true);
    }

    #[test]
    fn a_file_held_elsewhere_is_not_retried_in_a_loop() {
        let tmp = tempfile::tempdir().unwrap();
        spool_write(tmp.path(), &[v("n", "1")], b"", false).unwrap();
        let mut a = Spooler::open(tmp.path(), SpoolerConfig::default()).unwrap();
        let mut b = Spooler::open(tmp.path(), SpoolerConfig::default()).unwrap();
        let held = next_task(&mut a).unwrap();
        for _ in 0..20 {
            assert!(matches!(
                b.next(Duration::from_millis(10)).unwrap(),
                Next::Idle
            ));
            assert!(matches!(
                a.next(Duration::from_millis(1)).unwrap(),
                Next::Idle
            ));
        }
        assert!(b.claim_attempts <= 3, "{} attempts", b.claim_attempts);
        assert!(a.claim_attempts <= 2, "{} attempts", a.claim_attempts);
        held.ok().unwrap();
    }

    #[test]
    fn failure_delays_and_dead_letters() {
        let tmp = tempfile::tempdir().unwrap();
        spool_write(tmp.path(), &[v("n", "1")], b"", false).unwrap();
        let cfg = SpoolerConfig {
            max_attempts: 2,
            ..SpoolerConfig::default()
        };
        let mut sp = Spooler::open(tmp.path(), cfg.clone()).unwrap();
        let t = next_task(&mut sp).unwrap();
        let path = t.path().to_path_buf();
        match t.failed(&cfg).unwrap() {
            FailOutcome::RetryAt { at, attempts } => {
                assert_eq!(attempts, 1);
                assert!(at > unix_now() - 1);
                assert_eq!(fs::metadata(&path).unwrap().mtime(), at);
            }
            other => panic!("{other:?}"),
        }
        // Make it due again, as the clock would.
        let f = File::open(&path).unwrap();
        sys::set_times(&f, unix_now() - 1).unwrap();
        drop(f);
        let mut sp = Spooler::open(tmp.path(), cfg.clone()).unwrap();
        let t = next_task(&mut sp).unwrap();
        assert_eq!(t.attempts(), 1, "attempts are kept on the file");
        match t.failed(&cfg).unwrap() {
            FailOutcome::Dead { to, attempts } => {
                assert_eq!(attempts, 2);
                assert!(to.starts_with(tmp.path().canonicalize().unwrap().join(DEAD_DIR)));
                assert!(to.exists());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_files_are_quarantined() {
        let tmp = tempfile::tempdir().unwrap();
        let bad = tmp.path().join("uwsgi_spoolfile_on_h_1_1_1_1_1");
        fs::write(&bad, b"\x11\x04\x00\x00\x00\x00\x00\x00").unwrap();
        let mut sp = Spooler::open(tmp.path(), SpoolerConfig::default()).unwrap();
        match sp.next(Duration::from_millis(50)).unwrap() {
            Next::Notice(Notice::Quarantined { to, reason, .. }) => {
                assert!(reason.contains("zero-length key"), "{reason}");
                assert!(to.exists());
            }
            other => panic!("{other:?}"),
        }
        assert!(!bad.exists());
    }

    #[test]
    fn waker_interrupts_wait() {
        let tmp = tempfile::tempdir().unwrap();
        let mut sp = Spooler::open(tmp.path(), SpoolerConfig::default()).unwrap();
        let w = sp.waker();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            w.notify();
        });
        let start = Instant::now();
        assert!(matches!(
            sp.next(Duration::from_secs(20)).unwrap(),
            Next::Woken
        ));
        assert!(start.elapsed() < Duration::from_secs(10));
        t.join().unwrap();
    }

    #[test]
    fn a_byte_on_the_wakeup_fd_interrupts_the_wait_and_is_consumed() {
        use std::io::Write;
        use std::os::fd::{AsRawFd, FromRawFd};
        let tmp = tempfile::tempdir().unwrap();
        let mut sp = Spooler::open(tmp.path(), SpoolerConfig::default()).unwrap();
        let mut fds = [0; 2];
        // SAFETY: a two-int array for pipe2 to fill.
        assert_eq!(
            unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) },
            0
        );
        // SAFETY: both fds were just created and are owned here alone.
        let (r, mut w) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
        sp.watch_wakeup_fd(r.as_raw_fd());
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            w.write_all(&[15, 2]).unwrap(); // what Python's signal handler writes: signal numbers
            w
        });
        let start = Instant::now();
        assert!(matches!(
            sp.next(Duration::from_secs(20)).unwrap(),
            Next::Woken
        ));
        assert!(start.elapsed() < Duration::from_secs(10));
        let _w = t.join().unwrap();
        // Emptied: the next wait sleeps its whole time instead of spinning on a readable pipe.
        assert!(matches!(
            sp.next(Duration::from_millis(30)).unwrap(),
            Next::Idle
        ));
    }
}
