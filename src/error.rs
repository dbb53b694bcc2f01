//! The crate's one error type: each module's error, and the argument values the core refuses
//! for its callers. Variants carry data, not finished sentences; the binding maps this type to
//! Python exceptions in one place (`py/errors.rs`).

use std::io;

use crate::cron::CronError;
use crate::ipc::LockError;
use crate::ipc::mule_queue::MuleError;
use crate::master::MasterError;
use crate::signal::SignalError;
use crate::spool::job::JobError;
use crate::spool::{PacketError, WriteError};

/// Anything a core call can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Packet(#[from] PacketError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Job(#[from] JobError),
    #[error(transparent)]
    Master(#[from] MasterError),
    #[error(transparent)]
    Cron(#[from] CronError),
    #[error(transparent)]
    Signal(#[from] SignalError),
    #[error(transparent)]
    Lock(#[from] LockError),
    /// A target refused where uWSGI's `register_signal` says so.
    #[error("unable to register signal: {0}")]
    RegisterSignal(SignalError),
    /// An RPC call that breaks uWSGI's limits, or a packet that is not RPC.
    #[error("unable to call rpc function: {0}")]
    Rpc(#[from] crate::proto::rpc::RpcError),
    /// An RPC call that got no answer (connect, send, read, deadline, or a bad reply).
    #[error(transparent)]
    Call(#[from] crate::rpc::client::CallError),
    #[error(transparent)]
    Mule(#[from] MuleError),
    #[error(transparent)]
    Io(#[from] io::Error),
    /// A wait's timeout is NaN or negative (`optional`: None is also accepted).
    #[error("timeout must be a non-negative number{}", if *.optional { " or None" } else { "" })]
    BadTimeout { optional: bool },
    #[error("{name} must be a non-negative number of seconds, got {value}")]
    BadSeconds { name: &'static str, value: f64 },
    #[error("share must be (index, count) with 0 <= index < count, got {0:?}")]
    BadShare((u32, u32)),
    #[error("{0} must be a valid file descriptor")]
    BadFd(&'static str),
    /// Not a Unix signal number (1 to 64).
    #[error("not a signal number: {0}")]
    BadUnixSignal(i32),
    /// The object was closed (a master loop in a forked child).
    #[error("this {0} is closed")]
    Closed(&'static str),
    /// A claimed task's outcome was already given.
    #[error("this task already has an outcome")]
    Settled,
}

/// A duration of `value` seconds, or [`Error::BadSeconds`] naming `name`.
pub fn seconds(name: &'static str, value: f64) -> Result<std::time::Duration, Error> {
    std::time::Duration::try_from_secs_f64(value).map_err(|_| Error::BadSeconds { name, value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::{Kind, signum};

    #[test]
    fn messages_name_what_is_wrong() {
        assert_eq!(
            Error::BadTimeout { optional: true }.to_string(),
            "timeout must be a non-negative number or None"
        );
        assert_eq!(
            Error::BadTimeout { optional: false }.to_string(),
            "timeout must be a non-negative number"
        );
        assert_eq!(
            seconds("retry_delay", -1.0).unwrap_err().to_string(),
            "retry_delay must be a non-negative number of seconds, got -1"
        );
        assert_eq!(
            Error::from(signum(256).unwrap_err()).to_string(),
            "signal number 256 is out of range: uWSGI signals are 0 to 255"
        );
        assert_eq!(signum(255), Ok(255));
        assert_eq!(
            Kind::from_name("farm").unwrap_err().to_string(),
            "kind must be worker, spooler or mule, got \"farm\""
        );
        let bad = crate::signal::Target::parse("nope").unwrap_err();
        assert!(
            Error::RegisterSignal(bad)
                .to_string()
                .starts_with("unable to register signal: unsupported signal target \"nope\"")
        );
    }
}
