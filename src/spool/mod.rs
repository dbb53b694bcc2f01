//! The spooler: a queue of uwsgi-packet tasks behind one interface, and uWSGI's spool directory
//! as its backend.
//!
//! - [`queue`]: the seam: [`SpoolQueue`] (enqueue, next with a wait, wake, flush) and
//!   [`Claimed`] (an opaque [`TaskId`], vars and body, where the task runs, and ok / delay /
//!   bury / release). A second backend (PostgreSQL is the likely one) implements these.
//! - [`outcome`]: the backend-independent outcome policy (retry after the frequency, back-off
//!   after a failure, dead letter after `max_attempts`, release).
//! - [`job`]: the checks of a job before it is enqueued (which spooler, priority, `at`, size),
//!   once for every way in.
//! - [`packet`]: the byte format of one task (pure; it lives in [`crate::proto::packet`]).
//! - [`dir`]: the directory backend, uWSGI's protocol: naming, atomic enqueue, discovery by
//!   inotify and scans, ordering, claiming by file lock, outcomes on the file.
//! - [`reaper`]: the threads that delete finished tasks off the spooler's path.

pub mod dir;
pub mod job;
pub mod outcome;
/// The byte format of one task: the crate's one uwsgi packet codec, kept at this path too.
pub use crate::proto::packet;
pub mod queue;
pub mod reaper;

#[cfg(test)]
mod mem_tests;

pub use dir::{
    DirWriter, Spooler, SpoolerConfig, Task, fail_held, id_path, insecure_dir_reason, name, write,
};
pub use outcome::{FailOutcome, Policy, Settled, Verdict};
pub use packet::{Packet, PacketError, Var, decode, encode};
pub use queue::{Claimed, Enqueue, Job, Next, Notice, SpoolQueue, TaskId};
pub use write::{WriteError, spool_write, spool_write_packet};
