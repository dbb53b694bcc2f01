//! A claimed task file and its outcomes, and the reaper that deletes finished ones.
//!
//! A claimed file is held under an exclusive OFD lock until its outcome is stored: `ok` hands
//! the still-locked file to the reaper threads (unlink, then close); `delay` moves the mtime
//! forward; `bury` moves it to `dead/`; dropping it releases it unchanged.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::claim::{move_aside, write_reason};
use super::{DEAD_DIR, SpoolerConfig, unix_now};
use crate::spool::outcome::{AfterFailure, FailOutcome};
use crate::spool::packet::Var;
use crate::spool::queue::{Claimed, Notice, TaskId};
use crate::spool::reaper;
use crate::sys;

/// A claimed task: the file is held under an exclusive lock until an outcome is applied or the
/// task is dropped (which releases it unchanged).
#[derive(Debug)]
pub struct Task {
    /// None once handed to the reaper.
    pub(super) file: Option<File>,
    /// Relative to the spool directory, as the spooler's bookkeeping knows it.
    pub(super) rel: PathBuf,
    /// The spool directory (shared: no copy per task).
    pub(super) root: Arc<Path>,
    pub vars: Vec<Var>,
    pub body: Vec<u8>,
    /// The file's inode number (from the claim's fstat), to recognise it from another process.
    pub ino: u64,
    pub(super) held: Held,
    /// Deletes the file after `ok`.
    pub(super) reaper: Reaper,
    /// The spool directory's handle (`rel` is relative to it).
    pub(super) dir: Arc<OwnedFd>,
}

/// What a spooler's tasks tell it back, shared between the spooler, the tasks it handed out and
/// its reaper threads.
#[derive(Debug, Default)]
pub(super) struct Book {
    /// Handed out and not finished (or finished and not yet deleted): events about them (other
    /// processes opening them, or our own close) must not make the spooler try to claim them
    /// again.
    pub(super) held: RelSet,
    /// Opened for writing by us and left without running (too short: its writer is still at
    /// work), their close event not seen yet: the event is ours, skip it. (Deleted tasks need
    /// no entry: the watches report nothing about unlinked files.)
    pub(super) left: RelSet,
    pub(super) left_order: std::collections::VecDeque<PathBuf>,
}

impl Book {
    pub(super) fn remember_left(&mut self, rel: &Path) {
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
pub(super) struct RelSet(HashSet<Box<[u8]>, rustc_hash::FxBuildHasher>);

impl RelSet {
    pub(super) fn contains(&self, rel: &Path) -> bool {
        self.0.contains(rel.as_os_str().as_bytes())
    }

    pub(super) fn insert(&mut self, rel: &Path) -> bool {
        self.0.insert(rel.as_os_str().as_bytes().into())
    }

    pub(super) fn remove(&mut self, rel: &Path) -> bool {
        self.0.remove(rel.as_os_str().as_bytes())
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Bound on `Book::left` (an event lost to an inotify overflow would leave its entry).
pub(super) const LEFT_MEMORY: usize = 4096;
/// Threads deleting finished tasks. Closing a deleted file mostly waits (for the journal, or the
/// device's discard), so several threads overlap those waits even on one core.
pub(super) const REAPER_THREADS: usize = 8;
/// Finished tasks that may wait for deletion; `ok` blocks beyond this, which also bounds how
/// many finished tasks a crash can make run again.
pub(super) const REAPER_BACKLOG: usize = 64;

pub(super) type Held = Arc<std::sync::Mutex<Book>>;

pub(super) fn held_lock(h: &std::sync::Mutex<Book>) -> std::sync::MutexGuard<'_, Book> {
    h.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A finished task on its way out: its file is still open (so still locked) until deleted.
pub(super) struct Finished {
    pub(super) file: File,
    pub(super) root: Arc<Path>,
    pub(super) rel: PathBuf,
    pub(super) dir: Arc<OwnedFd>,
}

/// Unlink, then close: the lock goes with the last descriptor, after the name is gone.
pub(super) fn reap(book: &std::sync::Mutex<Book>, done: Finished) -> io::Result<()> {
    let res = match sys::unlink_at(&done.dir, &done.rel) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    };
    // Our close after the unlink announces nothing (the watches exclude unlinked files).
    held_lock(book).held.remove(&done.rel);
    drop(done.file);
    res
}

pub(super) type Reaper = Arc<reaper::Reaper<Finished>>;

/// Deletions that failed, for the spooler to report; the flag saves it a lock per task.
#[derive(Default)]
pub(super) struct DeleteFailures {
    pub(super) any: std::sync::atomic::AtomicBool,
    pub(super) notices: std::sync::Mutex<Vec<Notice>>,
}

impl DeleteFailures {
    pub(super) fn push(&self, n: Notice) {
        let mut v = self
            .notices
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        v.push(n);
        self.any.store(true, std::sync::atomic::Ordering::Release);
    }

    pub(super) fn pop(&self) -> Option<Notice> {
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

pub(super) fn start_reaper(held: &Held, failures: &Arc<DeleteFailures>) -> io::Result<Reaper> {
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
    pub(super) fn file(&self) -> &File {
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

    /// The raw descriptor of the claimed file (the master reaches it through `/proc` to record
    /// a harakiri as a failed attempt before the kill drops the lock).
    pub fn raw_fd(&self) -> i32 {
        self.file().as_raw_fd()
    }

    /// Give the task back unchanged (it runs again at once, here or in another spooler).
    pub fn release(self) {}
}

impl Claimed for Task {
    /// The file's full path.
    fn id(&self) -> TaskId {
        TaskId::from(self.path())
    }

    fn name(&self) -> &[u8] {
        Task::name(self)
    }

    fn vars(&self) -> &[Var] {
        &self.vars
    }

    fn body(&self) -> &[u8] {
        &self.body
    }

    fn attempts(&self) -> u32 {
        Task::attempts(self)
    }

    /// A task of a priority subdirectory runs there (as in uWSGI); others in the spool
    /// directory, the queue's home.
    fn workdir(&self) -> Option<PathBuf> {
        if self.in_subdir() {
            self.rel.parent().map(|p| self.root.join(p))
        } else {
            None
        }
    }

    fn ok(self) -> io::Result<()> {
        Task::ok(self)
    }

    /// The run time is the file's mtime (so every spooler, uWSGI's included, waits); the
    /// failure count an extended attribute.
    fn delay(self, at: i64, attempts: Option<u32>) -> io::Result<()> {
        delay_file(self.file(), at, attempts)
    }

    /// Into `dead/`, with `<name>.reason` beside it holding `reason`.
    fn bury(self, attempts: u32, reason: &str) -> io::Result<TaskId> {
        bury_file(self.file(), &self.path(), &self.root, attempts, reason)
    }
}

/// Store a failure count (best effort) and the next run time on an open task file.
pub(super) fn delay_file(file: &File, at: i64, attempts: Option<u32>) -> io::Result<()> {
    if let Some(n) = attempts {
        // Without xattr support the count is not kept; the task still waits and is never lost.
        let _ = sys::write_attempts(file, n);
    }
    sys::set_times(file, at)
}

/// Store a failure count on an open task file, then move it from `path` to `root/dead/` with a
/// `.reason` file.
pub(super) fn bury_file(
    file: &File,
    path: &Path,
    root: &Path,
    attempts: u32,
    reason: &str,
) -> io::Result<TaskId> {
    let _ = sys::write_attempts(file, attempts);
    let to = move_aside(path, &root.join(DEAD_DIR))?;
    write_reason(&to, reason);
    Ok(TaskId::from(to))
}

/// Record a failed attempt on a task that another process (a spooler about to be killed by
/// harakiri) holds: `fd_path` is `/proc/<pid>/fd/<n>` of its claimed file, `ino` the inode it
/// published, `root` its spool directory. Done before the kill, so that when the lock drops no
/// spooler can claim the task before its back-off (or its move to `dead/`) is on the file.
/// Returns None when that descriptor no longer holds the task (it finished meanwhile).
pub fn fail_held(
    fd_path: &Path,
    ino: u64,
    root: &Path,
    cfg: &SpoolerConfig,
    reason: &str,
) -> io::Result<Option<FailOutcome>> {
    let file = match fs::OpenOptions::new().read(true).write(true).open(fd_path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = sys::fstat(&file)?;
    if meta.ino != ino || meta.nlink == 0 || !meta.is_file {
        return Ok(None);
    }
    let path = fs::read_link(fd_path)?;
    if !path.starts_with(root) {
        return Ok(None);
    }
    // The policy decides, as for a task that raised (`Policy::failed`); this process only
    // stores on the file the other one holds.
    let attempts = sys::read_attempts(&file).saturating_add(1);
    Ok(Some(
        match cfg.policy().after_failure(attempts, reason, unix_now()) {
            AfterFailure::RetryAt(at) => {
                delay_file(&file, at, Some(attempts))?;
                FailOutcome::RetryAt { at, attempts }
            }
            AfterFailure::Dead(why) => FailOutcome::Dead {
                to: bury_file(&file, &path, root, attempts, &why)?,
                attempts,
            },
        },
    ))
}
