//! The one way a `_core` call waits: detached from the interpreter, in slices, with Python's
//! signal handlers run between them (Ctrl-C raises `KeyboardInterrupt` from the wait).

use std::time::{Duration, Instant};

use pyo3::prelude::*;

use crate::Error;

/// Longest stretch a blocking call stays detached before it checks for signals (Ctrl-C).
pub(crate) const SIGNAL_SLICE: Duration = Duration::from_millis(100);
/// The same when the wait also watches the process's signal wake-up fd (`signal.set_wakeup_fd`),
/// which every signal with a Python handler makes readable: no polling is needed then, and this
/// bound is only a backstop.
pub(crate) const WAKEUP_FD_SLICE: Duration = Duration::from_secs(60);

/// What the attached half of a wait decides after one detached slice.
pub(crate) enum Flow<T> {
    /// The wait is over: return this (signals are not checked first).
    Done(T),
    /// Nothing yet: run the signal handlers, then stop at the deadline or wait again.
    Idle,
    /// Wait again at once (the slice produced something the caller already handled).
    Again,
}

/// How long the next detached stretch of a wait may last: up to `deadline`, and at most one
/// slice (see [`SIGNAL_SLICE`], [`WAKEUP_FD_SLICE`]).
pub(crate) fn wait_slice(deadline: Option<Instant>, signals_wake: bool) -> Duration {
    let slice = if signals_wake {
        WAKEUP_FD_SLICE
    } else {
        SIGNAL_SLICE
    };
    deadline.map_or(slice, |d| {
        d.saturating_duration_since(Instant::now()).min(slice)
    })
}

/// Run `slice` detached, repeatedly, each time for at most [`wait_slice`]; `then` looks at each
/// result attached. Returns `Some` when `then` says [`Flow::Done`], `None` once `deadline`
/// passed. `signals_wake`: the wait also watches the signal wake-up fd (no polling needed).
pub(crate) fn wait<R, T>(
    py: Python<'_>,
    deadline: Option<Instant>,
    signals_wake: bool,
    mut slice: impl FnMut(Duration) -> R + Send,
    mut then: impl FnMut(R) -> PyResult<Flow<T>>,
) -> PyResult<Option<T>>
where
    R: Send,
{
    loop {
        let d = wait_slice(deadline, signals_wake);
        let got = py.detach(|| slice(d));
        match then(got)? {
            Flow::Done(t) => return Ok(Some(t)),
            Flow::Again => {}
            Flow::Idle => {
                py.check_signals()?;
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(None);
                }
            }
        }
    }
}

/// The deadline `timeout` seconds from now (None: no limit). NaN or negative is refused; a
/// timeout too long to represent is no limit.
pub(crate) fn deadline(timeout: Option<f64>) -> PyResult<Option<Instant>> {
    match timeout {
        None => Ok(None),
        Some(t) if t.is_nan() || t < 0.0 => Err(Error::BadTimeout { optional: true }.into()),
        Some(t) => Ok(Duration::try_from_secs_f64(t)
            .ok()
            .and_then(|d| Instant::now().checked_add(d))),
    }
}

/// Run `f` detached once: a short call (a file operation, a bounded join) that ends on its own
/// and is not worth slicing.
pub(crate) fn detached<T: Send>(py: Python<'_>, f: impl FnOnce() -> T + Send) -> T {
    py.detach(f)
}
