//! `_core.MuleQueues`: the mule message queues (`crate::ipc::mule_queue`) for Python.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pyo3::exceptions::PyException;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt, PyString};

use super::blocking::{self, Flow};
use super::{FsPath, lock};
use crate::Error;
use crate::channel::Channels;
use crate::ipc::mule_queue::{self, Dest, MuleError, MuleQueues, Token};

/// The queues of one master, mapped in this process. A handle follows the file when the master
/// replaces it (another layout) at the next send.
#[pyclass(name = "MuleQueues", module = "_uwsgidecorators_runtime._core", frozen)]
pub(super) struct PyMuleQueues {
    inner: Mutex<Arc<MuleQueues>>,
    control: PathBuf,
}

/// What `recv` returns: (token, message, signal numbers).
type Received<'py> = (Option<u64>, Option<Bound<'py, PyBytes>>, Vec<u8>);

enum Got {
    Msg(Token, Vec<u8>),
    Signals(Vec<u8>),
    Nothing,
}

impl PyMuleQueues {
    fn current(&self) -> PyResult<Arc<MuleQueues>> {
        let mut g = lock(&self.inner);
        if g.retired() {
            *g = Arc::new(MuleQueues::open(&self.control).map_err(|e| match e {
                MuleError::Io { ref source, .. }
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    Error::from(MuleError::NoMules)
                }
                e => Error::from(e),
            })?);
        }
        Ok(g.clone())
    }

    fn dest(q: &MuleQueues, target: Option<&Bound<'_, PyAny>>) -> PyResult<Dest> {
        let Some(t) = target.filter(|t| !t.is_none()) else {
            return Ok(Dest::Any);
        };
        if let Ok(s) = t.cast::<PyString>() {
            return Ok(q.dest_farm(s.to_str()?).map_err(Error::from)?);
        }
        if let Ok(b) = t.cast::<PyBytes>() {
            let name = std::str::from_utf8(b.as_bytes())
                .map_err(|_| Error::from(MuleError::NoSuchFarm(format!("{:?}", b.as_bytes()))))?;
            return Ok(q.dest_farm(name).map_err(Error::from)?);
        }
        if t.cast::<PyInt>().is_ok() {
            let n: i64 = t.extract()?;
            let n = u32::try_from(n).map_err(|_| {
                pyo3::exceptions::PyValueError::new_err(format!("invalid mule {n}"))
            })?;
            return Ok(q.dest_mule(n).map_err(Error::from)?);
        }
        Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "mule target must be a mule id (int) or a farm name (str or bytes), got {}",
            t.get_type().name()?
        )))
    }
}

fn describe(q: &MuleQueues, d: &Dest) -> String {
    match *d {
        Dest::Any => "the any-mule queue".to_owned(),
        Dest::Mule(n) => format!("mule {n}'s queue"),
        Dest::Farm(f) => format!(
            "farm {:?}'s queue",
            q.farms().get(f).map(|x| x.0.clone()).unwrap_or_default()
        ),
    }
}

#[pymethods]
impl PyMuleQueues {
    /// The master's: create the queues for `mules` mules and `farms` [(name, [mule ids])] next
    /// to the control socket, or take over the file a previous master left there. Returns the
    /// queues and the number of messages found waiting.
    #[staticmethod]
    #[pyo3(signature = (control, mules, farms, msg_size, send_timeout = 5.0, queue_bytes = mule_queue::DEFAULT_QUEUE_BYTES))]
    fn create(
        py: Python<'_>,
        control: FsPath,
        mules: u32,
        farms: Vec<(String, Vec<u32>)>,
        msg_size: u32,
        send_timeout: f64,
        queue_bytes: u64,
    ) -> PyResult<(PyMuleQueues, usize)> {
        let timeout = crate::error::seconds("send_timeout", send_timeout)?;
        let (q, n) = blocking::detached(py, || {
            MuleQueues::create(&control.0, mules, &farms, msg_size, queue_bytes)
        })
        .map_err(Error::from)?;
        q.set_send_timeout(timeout);
        Ok((
            PyMuleQueues {
                inner: Mutex::new(Arc::new(q)),
                control: control.0,
            },
            n,
        ))
    }

    /// Any process's: the queues of the master whose control socket is `control`.
    #[staticmethod]
    fn open(control: FsPath) -> PyResult<PyMuleQueues> {
        let q = MuleQueues::open(&control.0).map_err(Error::from)?;
        Ok(PyMuleQueues {
            inner: Mutex::new(Arc::new(q)),
            control: control.0,
        })
    }

    /// The number of mules.
    #[getter]
    fn mules(&self) -> PyResult<u32> {
        Ok(self.current()?.mules())
    }

    /// The largest message in bytes (`--mule-msg-size`).
    #[getter]
    fn msg_size(&self) -> PyResult<u32> {
        Ok(self.current()?.msg_size())
    }

    /// The file's path.
    #[getter]
    fn path(&self) -> PyResult<std::ffi::OsString> {
        Ok(self.current()?.path().as_os_str().to_owned())
    }

    /// The farms: [(name, [mule ids])], in declaration order.
    fn farms(&self) -> PyResult<Vec<(String, Vec<u32>)>> {
        Ok(self.current()?.farms())
    }

    /// Queue `msg` for `target` (None or 0: any one mule; N: mule N; a str or bytes: one mule of
    /// that farm). When the queue is full, wait (GIL released, Ctrl-C works) up to `timeout`
    /// seconds (None: the master's `--mule-send-timeout`) for room, then raise `MuleQueueFullError`. A message over `msg_size` bytes, an
    /// unknown mule or farm raise `ValueError`.
    #[pyo3(signature = (msg, target = None, timeout = None))]
    fn send(
        &self,
        py: Python<'_>,
        msg: &Bound<'_, PyAny>,
        target: Option<&Bound<'_, PyAny>>,
        timeout: Option<f64>,
    ) -> PyResult<()> {
        let msg: &[u8] = if let Ok(b) = msg.cast::<PyBytes>() {
            b.as_bytes()
        } else if let Ok(s) = msg.cast::<PyString>() {
            s.to_str()?.as_bytes()
        } else {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "a mule message must be bytes or str, got {}",
                msg.get_type().name()?
            )));
        };
        let q = self.current()?;
        let dest = Self::dest(&q, target)?;
        if q.try_send(&dest, msg).map_err(Error::from)?.is_some() {
            return Ok(());
        }
        let timeout = timeout.unwrap_or_else(|| q.send_timeout().as_secs_f64());
        let deadline = blocking::deadline(Some(timeout))?;
        let qq = q.clone();
        let d2 = dest.clone();
        let sent = blocking::wait(
            py,
            deadline,
            false,
            move |slice| -> Result<bool, MuleError> {
                let end = Instant::now() + slice;
                let mut pause = Duration::from_micros(50);
                loop {
                    if qq.try_send(&d2, msg)?.is_some() {
                        return Ok(true);
                    }
                    if Instant::now() >= end {
                        return Ok(false);
                    }
                    std::thread::sleep(pause.min(end.saturating_duration_since(Instant::now())));
                    pause = (pause * 2).min(Duration::from_millis(5));
                }
            },
            |r| {
                Ok(if r.map_err(Error::from)? {
                    Flow::Done(())
                } else {
                    Flow::Idle
                })
            },
        )?;
        match sent {
            Some(()) => Ok(()),
            None => Err(Error::from(MuleError::Full(format!(
                "{} stayed full for {timeout} s (its mules do not keep up, or none is running)",
                describe(&q, &dest)
            )))
            .into()),
        }
    }

    /// Mule `mule`'s wait: claim the next message of its own queue and the any-mule queue
    /// (`own`) and of its farms' queues (`farms`), or read signals from `private`, `shared` and
    /// `farm_signals` (fds, -1: none). Sleeps in poll on `wake_sock` (its wake socket) and
    /// `wake_fd` (the signal wake-up fd) meanwhile. Returns (token, message, signals): a claimed
    /// message (acknowledge it with `ack(token)` once run), or signal numbers, or (None, None,
    /// []) when `timeout` passed.
    #[pyo3(
        signature = (mule, *, own = true, farms = true, timeout = None, private = -1, shared = -1, farm_signals = Vec::new(), wake_fd = -1, wake_sock = -1),
        text_signature = "(self, /, mule, *, own=True, farms=True, timeout=None, private=-1, shared=-1, farm_signals=..., wake_fd=-1, wake_sock=-1)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn recv<'py>(
        &self,
        py: Python<'py>,
        mule: u32,
        own: bool,
        farms: bool,
        timeout: Option<f64>,
        private: i32,
        shared: i32,
        farm_signals: Vec<i32>,
        wake_fd: i32,
        wake_sock: i32,
    ) -> PyResult<Received<'py>> {
        let q = self.current()?;
        let deadline = blocking::deadline(timeout)?;
        let pid = crate::sys::this_pid();
        let channels =
            Channels::new(private, -1, shared, wake_fd, wake_sock).with_more_shared(&farm_signals);
        let got = blocking::wait(
            py,
            deadline,
            wake_fd >= 0,
            |slice| -> Result<Got, Error> {
                if let Some((t, m)) = q.try_take(mule, pid, own, farms)? {
                    return Ok(Got::Msg(t, m));
                }
                q.set_sleeping(mule, true);
                let again = q.try_take(mule, pid, own, farms);
                if !matches!(again, Ok(None)) {
                    q.set_sleeping(mule, false);
                }
                if let Some((t, m)) = again? {
                    return Ok(Got::Msg(t, m));
                }
                let r = channels.recv(slice);
                q.set_sleeping(mule, false);
                Ok(match r? {
                    Some(nums) if !nums.is_empty() => Got::Signals(nums),
                    // Woken (most often by a sender): take the message without a round trip
                    // through the interpreter; Python's signal handlers run on the way back
                    // otherwise.
                    Some(_) => match q.try_take(mule, pid, own, farms)? {
                        Some((t, m)) => Got::Msg(t, m),
                        None => Got::Nothing,
                    },
                    None => Got::Nothing,
                })
            },
            |g| {
                Ok(match g? {
                    Got::Msg(t, m) => Flow::Done((Some(t.to_u64()), Some(m), Vec::new())),
                    Got::Signals(n) => Flow::Done((None, None, n)),
                    Got::Nothing => Flow::Idle,
                })
            },
        )?;
        Ok(match got {
            Some((t, m, n)) => (t, m.map(|m| PyBytes::new(py, &m)), n),
            None => (None, None, Vec::new()),
        })
    }

    /// The message `token` (from `recv`) ran: remove it from its queue.
    fn ack(&self, token: u64) -> PyResult<()> {
        let q = lock(&self.inner).clone();
        q.ack(Token::from_u64(token), crate::sys::this_pid())
            .map_err(Error::from)?;
        Ok(())
    }

    /// Mule `mule`'s process `pid` died: its claimed message is queued again, unless it has
    /// now killed 3 mules (then dropped). Returns (requeued, dropped).
    fn reclaim(&self, mule: u32, pid: u32) -> PyResult<(usize, usize)> {
        let q = lock(&self.inner).clone();
        Ok(q.reclaim(mule, pid).map_err(Error::from)?)
    }

    /// Process `pid` is about to be killed for the message it runs (harakiri): drop what it
    /// claimed (uWSGI loses it; run again, it would be killed again). Returns how many.
    fn drop_claims(&self, pid: u32) -> PyResult<usize> {
        let q = lock(&self.inner).clone();
        Ok(q.drop_claims(pid).map_err(Error::from)?)
    }

    /// Messages queued or running.
    fn pending(&self) -> usize {
        lock(&self.inner).pending()
    }

    /// At the master's real exit: remove the file when nothing is queued; else keep it (for
    /// the next master) and return how many messages it holds.
    fn retire_if_empty(&self) -> PyResult<usize> {
        let q = lock(&self.inner).clone();
        Ok(q.retire_if_empty().map_err(Error::from)?)
    }
}

/// The queues `mule_msg` sends on in this process, and this process's own send timeout (None:
/// the master's), until `set_mule_sender` changes them. Set by the Python side on the first
/// send, once it has found the master.
static SENDER: Mutex<Option<(Py<PyMuleQueues>, Option<f64>)>> = Mutex::new(None);

/// `uwsgi.mule_msg(message, mule=None)`: queue `message` for mule `mule` (None or 0: any one
/// mule; N: mule N; str or bytes: one mule of that farm). Returns True. The first call asks
/// `_uwsgidecorators_runtime.mules` to find the master's queues (its errors are this call's);
/// later calls go straight to them, through no interpreter frame.
#[pyfunction]
#[pyo3(signature = (message, mule = None, /))]
pub(super) fn mule_msg(
    py: Python<'_>,
    message: &Bound<'_, PyAny>,
    mule: Option<&Bound<'_, PyAny>>,
) -> PyResult<bool> {
    let known = lock(&SENDER).as_ref().map(|(q, t)| (q.clone_ref(py), *t));
    let (q, timeout) = match known {
        Some(k) => k,
        None => {
            let q = py
                .import(intern!(py, "_uwsgidecorators_runtime.mules"))?
                .call_method0(intern!(py, "register_sender"))?;
            let q = q.cast_into::<PyMuleQueues>()?.unbind();
            let t = lock(&SENDER).as_ref().and_then(|(_, t)| *t);
            (q, t)
        }
    };
    q.get().send(py, message, mule, timeout)?;
    Ok(true)
}

/// Make `mule_msg` send on `queues` with `timeout` (None: the master's `--mule-send-timeout`);
/// `queues` None: find them again at the next send.
#[pyfunction]
#[pyo3(signature = (queues, timeout = None))]
pub(super) fn set_mule_sender(queues: Option<Py<PyMuleQueues>>, timeout: Option<f64>) {
    *lock(&SENDER) = queues.map(|q| (q, timeout));
}

/// The path of the mule queue file for the control socket `control_path`.
#[pyfunction]
pub(super) fn mule_queue_path(control_path: FsPath) -> std::ffi::OsString {
    mule_queue::queue_path(&control_path.0).into_os_string()
}

/// The path of mule `mule_id`'s wake socket for the control socket `control_path`.
#[pyfunction]
pub(super) fn mule_wake_path(control_path: FsPath, mule_id: u32) -> std::ffi::OsString {
    mule_queue::wake_path(&control_path.0, mule_id).into_os_string()
}

/// One mule thread's receiving end, built once: its queues, mule id and channels, and the message
/// it took last (until acknowledged). `recv` is the per-message call of `uwsgi.mule_get_msg` and
/// the built-in loop: no fd list, queue list or pid to work out again, and the message is copied
/// once, from the queue straight into the returned bytes.
#[pyclass(
    name = "MuleReceiver",
    module = "_uwsgidecorators_runtime._core",
    frozen
)]
pub(super) struct PyMuleReceiver {
    queues: Py<PyMuleQueues>,
    mule: u32,
    /// Watched without signals; with signals; with signals and the farms' signal queues.
    channels: [Channels; 3],
    signals_wake: bool,
    /// The message taken last and not yet acknowledged, with the mapping it came from.
    held: Mutex<Option<(Arc<MuleQueues>, Token)>>,
}

enum Woke {
    Signals(Vec<u8>),
    Look,
}

impl PyMuleReceiver {
    fn ack_held(&self) -> PyResult<()> {
        let held = lock(&self.held).take();
        if let Some((q, t)) = held {
            q.ack(t, crate::sys::this_pid()).map_err(Error::from)?;
        }
        Ok(())
    }
}

#[pymethods]
impl PyMuleReceiver {
    /// Mule `mule`'s receiver on `queues`: signals come from `private`, `shared` and
    /// `farm_signals` (fds, -1: none); its waits sleep in poll on `wake_sock` (its wake socket)
    /// and `wake_fd` (the signal wake-up fd: only in the thread that runs signal handlers).
    #[new]
    #[pyo3(
        signature = (queues, mule, private = -1, shared = -1, farm_signals = Vec::new(), wake_fd = -1, wake_sock = -1),
        text_signature = "(queues, mule, private=-1, shared=-1, farm_signals=[], wake_fd=-1, wake_sock=-1)"
    )]
    fn new(
        queues: Py<PyMuleQueues>,
        mule: u32,
        private: i32,
        shared: i32,
        farm_signals: Vec<i32>,
        wake_fd: i32,
        wake_sock: i32,
    ) -> PyResult<Self> {
        queues
            .get()
            .current()?
            .reading(mule, true, true)
            .map_err(Error::from)?;
        let own = Channels::new(private, -1, shared, wake_fd, wake_sock).notify_drained_by_caller();
        Ok(PyMuleReceiver {
            queues,
            mule,
            channels: [
                Channels::new(-1, -1, -1, wake_fd, wake_sock).notify_drained_by_caller(),
                own.clone(),
                own.with_more_shared(&farm_signals),
            ],
            signals_wake: wake_fd >= 0,
            held: Mutex::new(None),
        })
    }

    /// Acknowledge the message taken last (it ran), then wait for the next one of this mule's
    /// own and the any-mule queue (`own`) and of its farms' (`farms`), or for signals when
    /// `signals` (GIL released, Ctrl-C works). Returns (message, b""), (None, signal numbers),
    /// or (None, b"") once `timeout` seconds passed (None: no limit). The message is held
    /// (see `holding`) until the next call or `ack`.
    #[pyo3(signature = (own, farms, signals, timeout = None))]
    fn recv<'py>(
        &self,
        py: Python<'py>,
        own: bool,
        farms: bool,
        signals: bool,
        timeout: Option<f64>,
    ) -> PyResult<(Option<Bound<'py, PyBytes>>, Vec<u8>)> {
        self.ack_held()?;
        let q = self.queues.get().current()?;
        let qs = q.reading(self.mule, own, farms).map_err(Error::from)?;
        let pid = crate::sys::this_pid();
        let take = |py: Python<'py>| -> PyResult<Option<Bound<'py, PyBytes>>> {
            Ok(
                match q
                    .try_take_from(&qs, pid, |b| PyBytes::new(py, b))
                    .map_err(Error::from)?
                {
                    Some((t, m)) => {
                        *lock(&self.held) = Some((q.clone(), t));
                        Some(m)
                    }
                    None => None,
                },
            )
        };
        // Messages waiting (a busy mule): no wait at all.
        if let Some(m) = take(py)? {
            return Ok((Some(m), Vec::new()));
        }
        let deadline = blocking::deadline(timeout)?;
        let channels = &self.channels[match (signals, farms) {
            (false, _) => 0,
            (true, false) => 1,
            (true, true) => 2,
        }];
        let (mule, qd, qsd) = (self.mule, &q, &qs);
        let got = blocking::wait(
            py,
            deadline,
            self.signals_wake,
            |slice| -> Result<Woke, Error> {
                qd.set_sleeping(mule, true);
                // The wake-up that ended the last sleep, read now (a sender that sees the
                // sleeping word from here on sends a new one, after its message is ready).
                channels.drain_kept_notify();
                if qd.any_ready(qsd) {
                    qd.set_sleeping(mule, false);
                    return Ok(Woke::Look);
                }
                let r = channels.recv(slice);
                qd.set_sleeping(mule, false);
                Ok(match r? {
                    Some(nums) if !nums.is_empty() => Woke::Signals(nums),
                    _ => Woke::Look,
                })
            },
            |w| {
                Ok(match w? {
                    Woke::Signals(n) => Flow::Done((None, n)),
                    // Woken (most often by a sender), or a slice ended: take the message
                    // attached, straight into bytes; signal handlers run on the way otherwise.
                    Woke::Look => match take(py)? {
                        Some(m) => Flow::Done((Some(m), Vec::new())),
                        None => Flow::Idle,
                    },
                })
            },
        )?;
        Ok(got.unwrap_or((None, Vec::new())))
    }

    /// The built-in loop of a plain mule: wait for each message (as `recv(True, True, True)`)
    /// and run it, until `stop.requested` is set (the message taken last is then acknowledged:
    /// returns True) or `state._gen` is no longer `gen` (what this receiver was built from
    /// changed: returns False, and the caller serves again on a new one). A message goes to
    /// `hook_of.mule_msg_hook(message)`, read for each message, when `direct`, with what an
    /// `Exception` it raises is passed to `on_error(exc)`; to `dispatch(message, hook)` otherwise
    /// (`--mule-harakiri` is armed there) and whenever no hook is set. Signals read meanwhile go
    /// to `signalled(nums)`. Written here rather than in Python so that a message reaches its
    /// hook through no interpreter frame of ours: one less to run cold after every wake-up.
    #[pyo3(signature = (hook_of, stop, dispatch, direct, on_error, signalled, state, r#gen))]
    #[allow(clippy::too_many_arguments)]
    fn serve(
        &self,
        py: Python<'_>,
        hook_of: &Bound<'_, PyAny>,
        stop: &Bound<'_, PyAny>,
        dispatch: &Bound<'_, PyAny>,
        direct: bool,
        on_error: &Bound<'_, PyAny>,
        signalled: &Bound<'_, PyAny>,
        state: &Bound<'_, PyAny>,
        r#gen: i64,
    ) -> PyResult<bool> {
        let (requested, hook_name, gen_name) = (
            intern!(py, "requested"),
            intern!(py, "mule_msg_hook"),
            intern!(py, "_gen"),
        );
        loop {
            if stop.getattr(requested)?.is_truthy()? {
                self.ack_held()?;
                return Ok(true);
            }
            if state.getattr(gen_name)?.extract::<i64>()? != r#gen {
                return Ok(false);
            }
            let (message, nums) = self.recv(py, true, true, true, None)?;
            let Some(message) = message else {
                signalled.call1((PyBytes::new(py, &nums),))?;
                continue;
            };
            let hook = hook_of.getattr_opt(hook_name)?.filter(|h| !h.is_none());
            match hook {
                Some(hook) if direct => {
                    if let Err(e) = hook.call1((message,)) {
                        if !e.is_instance_of::<PyException>(py) {
                            return Err(e); // SystemExit, KeyboardInterrupt: leave
                        }
                        on_error.call1((e.into_value(py),))?; // (its traceback attached)
                    }
                }
                hook => {
                    dispatch.call1((message, hook))?;
                }
            }
        }
    }

    /// Acknowledge the message taken last (it ran); nothing when none is held.
    fn ack(&self) -> PyResult<()> {
        self.ack_held()
    }

    /// Whether a message taken by `recv` waits for its acknowledgement.
    #[getter]
    fn holding(&self) -> bool {
        lock(&self.held).is_some()
    }
}
