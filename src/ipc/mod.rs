//! Shared memory between the master's processes and attached ones.

pub mod mule_queue;
