//! `_core.Region`: the instance's shared region (process table, routes, locks).

use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, Ordering};

use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;

use super::FsPath;
use super::blocking::{self, Flow};
use super::master::PyDirectSender;
use crate::direct::{DirectRoutes, DirectSender};
use crate::ipc::{Region, Taken};

fn count(n: i64, what: &str) -> PyResult<u32> {
    u32::try_from(n)
        .ok()
        .filter(|&v| v <= crate::ipc::region::MAX_ENTRIES)
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "{what} must be 0 to {}, got {n}",
                crate::ipc::region::MAX_ENTRIES
            ))
        })
}

/// One line in the log when a lock was taken over from a dead holder (rare: no cost otherwise).
fn report(py: Python<'_>, n: u32, t: Taken) -> PyResult<()> {
    if let Some(dead) = t.recovered_from {
        let who = if dead == 0 {
            "a process".to_owned()
        } else {
            format!("pid {dead}")
        };
        let msg = format!(
            "lock {n}: its holder ({who}) died holding it; taken over by pid {} \
             (what it protects may be half-updated)",
            std::process::id()
        );
        py.import("logging")?
            .call_method1("getLogger", ("uwsgidecorators.lock",))?
            .call_method1("warning", (msg,))?;
    }
    Ok(())
}

/// The shared region of an instance.
#[pyclass(name = "Region", module = "_uwsgidecorators_runtime._core", frozen)]
pub(super) struct PyRegion {
    pub(super) inner: Arc<Region>,
}

#[pymethods]
impl PyRegion {
    #[staticmethod]
    fn create(path: FsPath, nslots: i64, nlocks: i64) -> PyResult<Self> {
        let r = Region::create(&path.0, count(nslots, "nslots")?, count(nlocks, "nlocks")?)?;
        Ok(PyRegion { inner: Arc::new(r) })
    }

    #[staticmethod]
    fn open(path: FsPath) -> PyResult<Self> {
        Ok(PyRegion {
            inner: Arc::new(Region::open(&path.0)?),
        })
    }

    #[staticmethod]
    #[pyo3(signature = (nlocks, nslots = 0))]
    fn private(nlocks: i64, nslots: i64) -> PyResult<Self> {
        let r = Region::anonymous(count(nslots, "nslots")?, count(nlocks, "nlocks")?)?;
        Ok(PyRegion { inner: Arc::new(r) })
    }

    #[getter]
    fn path(&self) -> Option<std::ffi::OsString> {
        self.inner.path().map(|p| p.as_os_str().to_owned())
    }

    #[getter]
    fn nslots(&self) -> u32 {
        self.inner.layout().nslots
    }

    #[getter]
    fn nlocks(&self) -> u32 {
        self.inner.nlocks()
    }

    #[getter]
    fn creator(&self) -> u32 {
        self.inner.creator()
    }

    fn remove(&self) -> PyResult<()> {
        Ok(self.inner.remove_file()?)
    }

    fn get(&self, slot: usize, field: usize) -> PyResult<i64> {
        self.inner
            .slot_field(slot, field)
            .map(|a| a.load(std::sync::atomic::Ordering::Relaxed))
            .ok_or_else(|| slot_err(&self.inner, slot, field))
    }

    fn put(&self, slot: usize, field: usize, value: i64) -> PyResult<()> {
        self.inner
            .slot_field(slot, field)
            .map(|a| a.store(value, std::sync::atomic::Ordering::Relaxed))
            .ok_or_else(|| slot_err(&self.inner, slot, field))
    }

    fn header(&self, index: usize) -> PyResult<i64> {
        self.inner
            .table_header(index)
            .map(|a| a.load(std::sync::atomic::Ordering::Relaxed))
            .ok_or_else(|| PyIndexError::new_err(format!("table header word {index} out of range")))
    }

    fn set_header(&self, index: usize, value: i64) -> PyResult<()> {
        self.inner
            .table_header(index)
            .map(|a| a.store(value, std::sync::atomic::Ordering::Relaxed))
            .ok_or_else(|| PyIndexError::new_err(format!("table header word {index} out of range")))
    }

    fn name(&self, slot: usize, which: usize) -> PyResult<String> {
        self.inner
            .name(slot, which)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .ok_or_else(|| name_err(&self.inner, slot, which))
    }

    fn set_name(&self, slot: usize, which: usize, name: &str) -> PyResult<()> {
        if self.inner.set_name(slot, which, name) {
            Ok(())
        } else {
            Err(name_err(&self.inner, slot, which))
        }
    }

    fn reset_table(&self) {
        self.inner.reset_table();
    }

    fn direct_sender(&self, control: FsPath) -> PyResult<PyDirectSender> {
        let routes = DirectRoutes::on(self.inner.clone());
        Ok(PyDirectSender {
            inner: DirectSender::new(routes, &control.0)?,
        })
    }

    #[pyo3(signature = (n = 0))]
    fn lock(&self, py: Python<'_>, n: i64) -> PyResult<()> {
        lock_on(py, &self.inner, n)
    }

    #[pyo3(signature = (n = 0))]
    fn unlock(&self, n: i64) -> PyResult<()> {
        unlock_on(&self.inner, n)
    }

    #[pyo3(signature = (n = 0))]
    fn is_locked(&self, py: Python<'_>, n: i64) -> PyResult<bool> {
        is_locked_on(py, &self.inner, n)
    }

    #[pyo3(signature = (n = 0))]
    fn last_taker(&self, n: i64) -> PyResult<u32> {
        let k = self.inner.lock_number(n)?;
        Ok(self.inner.last_taker(k)?)
    }

    fn __repr__(&self) -> String {
        let l = self.inner.layout();
        format!(
            "Region(path={:?}, nslots={}, nlocks={})",
            self.inner.path(),
            l.nslots,
            l.nlocks
        )
    }
}

fn lock_on(py: Python<'_>, region: &Region, n: i64) -> PyResult<()> {
    let k = region.lock_number(n)?;
    // A free lock is taken with the GIL held: no detach/attach on the fast path.
    if let Some(t) = region.try_lock(k)? {
        return report(py, k, t);
    }
    // Busy: wait with the GIL released, in slices, running signal handlers between them.
    let taken = blocking::wait(
        py,
        None,
        false,
        |slice| region.lock_for(k, slice),
        |got| {
            Ok(match got? {
                Some(t) => Flow::Done(t),
                None => Flow::Idle,
            })
        },
    )?;
    match taken {
        Some(t) => report(py, k, t),
        None => Ok(()), // not reached: the wait has no deadline
    }
}

fn unlock_on(region: &Region, n: i64) -> PyResult<()> {
    let k = region.lock_number(n)?;
    Ok(region.unlock(k)?)
}

fn is_locked_on(py: Python<'_>, region: &Region, n: i64) -> PyResult<bool> {
    let k = region.lock_number(n)?;
    let (held, recovered) = region.is_locked(k)?;
    if let Some(t) = recovered {
        report(py, k, t)?;
    }
    Ok(held)
}

/// The region `uwsgi.lock` uses in this process (null: not resolved yet). Each region stored
/// here is leaked on purpose (one `Arc` count): a thread may still be inside `lock` on the old
/// one when the configuration changes, and regions change only on `configure()`/`reset()`.
static LOCK_REGION: AtomicPtr<Region> = AtomicPtr::new(std::ptr::null_mut());

fn lock_region(py: Python<'_>) -> PyResult<&'static Region> {
    let p = LOCK_REGION.load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: a non-null pointer comes from `Arc::into_raw` below and is never released.
        return Ok(unsafe { &*p });
    }
    let found = py
        .import("_uwsgidecorators_runtime.region")?
        .call_method0("region")?;
    let region = found.cast::<PyRegion>()?.get().inner.clone();
    let raw = Arc::into_raw(region).cast_mut();
    LOCK_REGION.store(raw, Ordering::Release);
    // SAFETY: as above: `raw` is kept alive for the life of the process.
    Ok(unsafe { &*raw })
}

/// `uwsgi.lock(n=0)`: take lock `n` (0 to `--locks`) of this process's region (see
/// `_uwsgidecorators_runtime.region`), waiting as long as another thread or process holds it. The
/// GIL is released while waiting and Ctrl-C interrupts the wait (`KeyboardInterrupt`). A holder
/// that died holding it (kill -9) hands it over at once, with one line in the log. Taking a lock
/// this thread already holds raises `RuntimeError` (uWSGI deadlocks); a number out of range
/// raises `ValueError`.
#[pyfunction]
#[pyo3(signature = (n = 0, /))]
pub(super) fn lock(py: Python<'_>, n: i64) -> PyResult<()> {
    lock_on(py, lock_region(py)?, n)
}

/// `uwsgi.unlock(n=0)`: release lock `n`; `RuntimeError` if this thread does not hold it.
#[pyfunction]
#[pyo3(signature = (n = 0, /))]
pub(super) fn unlock(py: Python<'_>, n: i64) -> PyResult<()> {
    unlock_on(lock_region(py)?, n)
}

/// `uwsgi.is_locked(n=0)`: whether lock `n` is held (by any process or thread, this one included).
#[pyfunction]
#[pyo3(signature = (n = 0, /))]
pub(super) fn is_locked(py: Python<'_>, n: i64) -> PyResult<bool> {
    is_locked_on(py, lock_region(py)?, n)
}

/// Forget the region `lock` uses (the configuration changed): the next call resolves it again.
#[pyfunction]
pub(super) fn forget_lock_region() {
    LOCK_REGION.store(std::ptr::null_mut(), Ordering::Release);
}

fn slot_err(r: &Region, slot: usize, field: usize) -> PyErr {
    PyIndexError::new_err(format!(
        "shared table slot {slot} field {field} out of range ({} slots of {} fields)",
        r.layout().nslots,
        crate::ipc::region::SLOT_FIELDS
    ))
}

fn name_err(r: &Region, slot: usize, which: usize) -> PyErr {
    PyIndexError::new_err(format!(
        "shared table slot {slot} name {which} out of range ({} slots of {} names)",
        r.layout().nslots,
        crate::ipc::region::SLOT_NAMES
    ))
}
