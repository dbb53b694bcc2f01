//! The seam a spool backend plugs into: a queue that takes jobs and hands out claimed tasks, and
//! a claimed task that records its outcome.
//!
//! Invariants every backend keeps:
//! - A claimed task is held (no other consumer, ours or another process's, runs it) until one
//!   outcome is recorded or it is dropped; dropping it releases it unchanged.
//! - `ok` is the only outcome that removes a task, and only after its handler succeeded.
//! - A task is named by an opaque [`TaskId`]: only the backend knows what its bytes mean (for the
//!   directory backend, the task file's full path, which is what `uwsgi.spool` returns).
//!
//! The policy that decides *which* outcome to record (retry delays, back-off, the dead-letter
//! limit) is backend-independent and lives above the backend, in [`super::outcome`].
//!
//! Generic code calls these traits through type parameters (monomorphised, no `dyn` per task);
//! the Python binding holds the directory backend's concrete types.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::packet::Var;
use crate::sys::EventFd;

/// A task's identity as its backend names it: opaque bytes, stable while the task exists.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TaskId(Box<[u8]>);

impl TaskId {
    /// Wrap a backend's own name for a task.
    pub fn from_bytes(bytes: impl Into<Box<[u8]>>) -> Self {
        TaskId(bytes.into())
    }

    /// The id's bytes (what Python sees).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<PathBuf> for TaskId {
    fn from(p: PathBuf) -> Self {
        use std::os::unix::ffi::OsStringExt;
        TaskId(p.into_os_string().into_vec().into_boxed_slice())
    }
}

impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TaskId({:?})", String::from_utf8_lossy(&self.0))
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

/// One job to enqueue: the encoded uwsgi packet (vars, then body), plus the two vars that
/// decide when and in which order it runs (already inside `packet`; given apart so the backend
/// need not decode it).
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    pub packet: &'a [u8],
    /// The `priority` value (digits; empty: none).
    pub priority: Option<&'a [u8]>,
    /// The `at` value (unix seconds, decimal).
    pub at: Option<&'a [u8]>,
}

/// The writer side of a queue: any process may enqueue, without consuming.
pub trait Enqueue {
    type Error;

    /// Store `job`; it is visible to consumers when this returns. Returns its id.
    fn enqueue(&self, job: &Job<'_>) -> Result<TaskId, Self::Error>;
}

/// Something the queue did on its own that its owner should log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A malformed task was moved aside.
    Quarantined {
        from: PathBuf,
        to: PathBuf,
        reason: String,
    },
    /// A writer's leftover temporary file was removed.
    RemovedTemp { path: PathBuf },
    /// A finished task's file could not be deleted (it will run again).
    DeleteFailed { path: PathBuf, reason: String },
    /// A task file this spooler's user cannot open (reported once per file; it stays in place).
    Unreadable { path: PathBuf, reason: String },
}

/// What a call to [`SpoolQueue::next`] produced.
#[derive(Debug)]
pub enum Next<T> {
    Task(T),
    Notice(Notice),
    /// Nothing to run within the wait.
    Idle,
    /// The waker (or a watched fd) fired.
    Woken,
}

/// The consumer side of a queue, owned by one spooler.
pub trait SpoolQueue: Enqueue {
    type Task: Claimed;

    /// Return a notice or a claimed task if there is one, else wait up to `max_wait` for news
    /// and return [`Next::Idle`] (or [`Next::Woken`] when [`SpoolQueue::waker`] fired).
    fn next(&mut self, max_wait: Duration) -> io::Result<Next<Self::Task>>;

    /// A handle that makes a blocked [`SpoolQueue::next`] return `Woken` (from any thread).
    fn waker(&self) -> Arc<EventFd>;

    /// Wait until every task finished with `ok` is gone from the store.
    fn flush(&self);

    /// Tasks known to be waiting (ready now or later).
    fn pending(&self) -> usize;
}

/// A claimed task. The outcome methods consume it; dropping it is [`Claimed::release`].
pub trait Claimed: Sized {
    /// The task's id (built when asked: not on the drain's path).
    fn id(&self) -> TaskId;

    /// A short name for logs and for the handler (uWSGI's `spooler_task_name`).
    fn name(&self) -> &[u8];

    fn vars(&self) -> &[Var];

    fn body(&self) -> &[u8];

    /// Failures recorded on the task before this run.
    fn attempts(&self) -> u32;

    /// Where the task runs: None for the queue's home (see the binding's `home`), else a
    /// directory of the task's own (the directory backend: a priority subdirectory).
    fn workdir(&self) -> Option<PathBuf>;

    /// Success: remove the task.
    fn ok(self) -> io::Result<()>;

    /// Keep the task; it runs again at `at` (unix seconds). `attempts`, when given, is the
    /// failure count to store with it.
    fn delay(self, at: i64, attempts: Option<u32>) -> io::Result<()>;

    /// Move the task to the dead letters with `attempts` and `reason`; returns where it went.
    fn bury(self, attempts: u32, reason: &str) -> io::Result<TaskId>;

    /// Give the task back unchanged: it may run again at once, here or elsewhere.
    fn release(self) {}
}
