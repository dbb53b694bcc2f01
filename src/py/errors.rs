//! The one map from the core's errors to Python exceptions.

use pyo3::PyErr;
use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyRuntimeError, PyValueError};

use crate::Error;
use crate::cron::CronError;
use crate::fsmon::MonitorError;
use crate::ipc::LockError;
use crate::ipc::mule_queue::MuleError;
use crate::master::MasterError;
use crate::rpc::client::CallError;
use crate::signal::SignalError;
use crate::spool::job::JobError;
use crate::spool::{PacketError, WriteError};

pyo3::import_exception!(_uwsgidecorators_runtime.exceptions, SpoolPacketError);
pyo3::import_exception!(_uwsgidecorators_runtime.exceptions, SpoolTooLargeError);
pyo3::import_exception!(_uwsgidecorators_runtime.exceptions, MuleQueueFullError);

impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        match e {
            Error::Packet(p) | Error::Write(WriteError::Packet(p)) => packet(p),
            Error::Job(j @ JobError::TooLarge { .. })
            | Error::Write(WriteError::Job(j @ JobError::TooLarge { .. })) => {
                SpoolTooLargeError::new_err(j.to_string())
            }
            Error::Write(WriteError::Io { dir, source }) => match source.raw_os_error() {
                // An OSError of the right subclass (FileNotFoundError...) that names the directory.
                Some(code) => PyOSError::new_err((
                    code,
                    format!(
                        "cannot write a task into spool directory {}: {source}",
                        dir.display()
                    ),
                    dir.display().to_string(),
                )),
                None => PyErr::from(source),
            },
            Error::Master(MasterError::Monitor(m @ MonitorError::NotFound { .. })) => {
                PyFileNotFoundError::new_err(m.to_string())
            }
            Error::Master(
                MasterError::Monitor(MonitorError::Io { source, .. }) | MasterError::Io(source),
            )
            | Error::Mule(MuleError::Io { source, .. })
            | Error::Io(source)
            | Error::Lock(LockError::Os { source, .. }) => PyErr::from(source),
            Error::Mule(MuleError::Full(_)) => MuleQueueFullError::new_err(e.to_string()),
            // Like threading.Lock's release of an unlocked lock: a misuse by this thread.
            Error::Lock(l @ (LockError::NotHeld { .. } | LockError::AlreadyHeld { .. })) => {
                PyRuntimeError::new_err(l.to_string())
            }
            Error::Call(CallError::Request(r)) => Error::Rpc(r).into(),
            // The caller (the `uwsgi` shim) turns these into uWSGI's None with a log line.
            Error::Call(CallError::Io { ref source, .. }) => {
                // The OSError subclass of its kind (ConnectionRefusedError, TimeoutError...).
                PyErr::from(std::io::Error::new(source.kind(), e.to_string()))
            }
            Error::Call(CallError::Reply { .. }) => {
                PyOSError::new_err((libc::EPROTO, e.to_string()))
            }
            Error::Write(_)
            | Error::Rpc(_)
            | Error::Job(_)
            | Error::Master(_)
            | Error::Cron(_)
            | Error::Signal(_)
            | Error::Lock(_)
            | Error::RegisterSignal(_)
            | Error::BadTimeout { .. }
            | Error::BadSeconds { .. }
            | Error::BadShare(_)
            | Error::BadFd(_)
            | Error::BadUnixSignal(_)
            | Error::Closed(_)
            | Error::Mule(_)
            | Error::Settled => PyValueError::new_err(e.to_string()),
        }
    }
}

fn packet(e: PacketError) -> PyErr {
    match e {
        PacketError::VarsTooLarge { .. }
        | PacketError::KeyTooLong { .. }
        | PacketError::ValueTooLong { .. } => SpoolTooLargeError::new_err(e.to_string()),
        PacketError::EmptyKey => PyValueError::new_err(e.to_string()),
        _ => SpoolPacketError::new_err(e.to_string()),
    }
}

/// Each module's error reaches Python through [`Error`].
macro_rules! through_core_error {
    ($($t:ty),*) => {$(
        impl From<$t> for PyErr {
            fn from(e: $t) -> PyErr {
                Error::from(e).into()
            }
        }
    )*};
}

through_core_error!(
    PacketError,
    WriteError,
    JobError,
    MasterError,
    CronError,
    SignalError,
    MuleError,
    LockError,
    CallError
);
