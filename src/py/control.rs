//! Encoders of the master's control datagrams (`crate::proto::control`) for the senders in Python.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::proto::control::{Control, CronForm};

fn encode<'py>(py: Python<'py>, c: &Control) -> PyResult<Bound<'py, PyBytes>> {
    let bytes = c
        .encode()
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(PyBytes::new(py, &bytes))
}

#[pyfunction]
fn control_raise(py: Python<'_>, num: u8) -> PyResult<Bound<'_, PyBytes>> {
    encode(py, &Control::Raise { num })
}

#[pyfunction]
fn control_register<'py>(py: Python<'py>, num: u8, target: &str) -> PyResult<Bound<'py, PyBytes>> {
    let target = target.to_owned();
    encode(py, &Control::Register { num, target })
}

#[pyfunction]
fn control_clock(py: Python<'_>, seconds: i64) -> PyResult<Bound<'_, PyBytes>> {
    encode(py, &Control::ClockOffset { seconds })
}

#[pyfunction]
fn control_timer(
    py: Python<'_>,
    num: u8,
    secs: f64,
    iterations: u32,
) -> PyResult<Bound<'_, PyBytes>> {
    encode(
        py,
        &Control::Timer {
            num,
            secs,
            iterations,
        },
    )
}

#[derive(FromPyObject)]
enum Form {
    Crontab(String),
    Uwsgi((i64, i64, i64, i64, i64)),
}

#[pyfunction]
fn control_cron<'py>(
    py: Python<'py>,
    num: u8,
    catch_up: bool,
    tz: Option<String>,
    form: Form,
) -> PyResult<Bound<'py, PyBytes>> {
    let form = match form {
        Form::Crontab(t) => CronForm::Crontab(t),
        Form::Uwsgi((m, h, d, mo, w)) => CronForm::Uwsgi([m, h, d, mo, w]),
    };
    encode(
        py,
        &Control::Cron {
            num,
            catch_up,
            tz,
            form,
        },
    )
}

#[pyfunction]
fn control_file_monitor<'py>(
    py: Python<'py>,
    num: u8,
    recursive: bool,
    path: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let path = path.to_vec();
    encode(
        py,
        &Control::FileMonitor {
            num,
            recursive,
            path,
        },
    )
}

#[pyfunction]
fn control_reload(py: Python<'_>, pid: u32) -> PyResult<Bound<'_, PyBytes>> {
    encode(py, &Control::Reload { pid })
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(control_reload, m)?)?;
    m.add_function(wrap_pyfunction!(control_raise, m)?)?;
    m.add_function(wrap_pyfunction!(control_register, m)?)?;
    m.add_function(wrap_pyfunction!(control_clock, m)?)?;
    m.add_function(wrap_pyfunction!(control_timer, m)?)?;
    m.add_function(wrap_pyfunction!(control_cron, m)?)?;
    m.add_function(wrap_pyfunction!(control_file_monitor, m)?)?;
    Ok(())
}
