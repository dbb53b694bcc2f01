//! What the processes of one instance share: the file-backed region ([`region`]) with the
//! process table, the direct-delivery routes and the lock table ([`lock`]), and the
//! file-backed queues of the mules and farms ([`mule_queue`]).

pub mod lock;
pub mod mule_queue;
pub mod region;

pub use lock::{LockError, Taken};
pub use region::Region;
