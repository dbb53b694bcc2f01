//! `_core.Kind`: `crate::signal::Kind` for Python (names, numbers and labels come from it).

use pyo3::prelude::*;

use crate::signal::Kind;

#[pyclass(
    name = "Kind",
    module = "_uwsgidecorators_runtime._core",
    frozen,
    eq,
    eq_int,
    hash,
    rename_all = "UPPERCASE"
)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum PyKind {
    Worker = Kind::Worker as isize,
    Spooler = Kind::Spooler as isize,
    Mule = Kind::Mule as isize,
    Erlang = Kind::Erlang as isize,
}

impl From<PyKind> for Kind {
    fn from(k: PyKind) -> Kind {
        match k {
            PyKind::Worker => Kind::Worker,
            PyKind::Spooler => Kind::Spooler,
            PyKind::Mule => Kind::Mule,
            PyKind::Erlang => Kind::Erlang,
        }
    }
}

// Both ways, so a kind added to the core does not compile until it is here too.
impl From<Kind> for PyKind {
    fn from(k: Kind) -> PyKind {
        match k {
            Kind::Worker => PyKind::Worker,
            Kind::Spooler => PyKind::Spooler,
            Kind::Mule => PyKind::Mule,
            Kind::Erlang => PyKind::Erlang,
        }
    }
}

#[pymethods]
impl PyKind {
    /// The name in target strings and logs: "worker", "spooler", "mule", "erlang".
    #[getter]
    fn label(&self) -> &'static str {
        Kind::from(*self).name()
    }

    /// The number the shared process table stores.
    #[getter]
    fn code(&self) -> u8 {
        Kind::from(*self).code()
    }
}
