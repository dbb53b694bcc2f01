//! What the processes of one instance share: the file-backed region ([`region`]) with the
//! process table, the direct-delivery routes and the lock table ([`lock`]).

pub mod lock;
pub mod region;

pub use lock::{LockError, Taken};
pub use region::Region;
