//! The spooler: uWSGI's spool file format and directory protocol.
//!
//! - [`packet`]: the byte format of one spool file (pure).
//! - [`name`]: uWSGI's file naming.
//! - [`write`]: enqueue (atomic, optionally durable).
//! - [`spooler`]: discovery, ordering, claiming and outcomes for one spooler process.
//! - [`reaper`]: the threads that delete finished tasks off the spooler's path.

pub mod name;
pub mod packet;
pub mod reaper;
pub mod spooler;
pub mod write;

pub use packet::{Packet, PacketError, Var, decode, encode};
pub use spooler::{
    FailOutcome, Next, Notice, Spooler, SpoolerConfig, Task, fail_held, insecure_dir_reason,
};
pub use write::{WriteError, spool_write, spool_write_packet};
