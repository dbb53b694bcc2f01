//! `ErlangNode`, `ErlangPid`, `ErlangRef`, `erlang_encode`/`erlang_decode`: the Erlang node and
//! the Python <-> term mapping.

use erl_dist::term::{Atom, Pid, Reference};
use num_bigint::BigInt;
use pyo3::exceptions::{PyConnectionError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple,
};

use super::blocking::{self, Flow};
use crate::erlang::node::{self, Dest, Event, Node};
use crate::erlang::term::{self, Value};

/// Deeper than this is refused (a list that contains itself would recurse for ever).
const MAX_DEPTH: usize = 512;

fn node_err(e: node::Error) -> PyErr {
    match e {
        node::Error::Name { .. } => PyValueError::new_err(e.to_string()),
        node::Error::Epmd { .. } | node::Error::Connect { .. } | node::Error::Send { .. } => {
            PyConnectionError::new_err(e.to_string())
        }
        node::Error::Term(t) => term_err(t),
        node::Error::Io(io) => io.into(),
    }
}

fn term_err(e: term::Error) -> PyErr {
    PyValueError::new_err(e.to_string())
}

#[pyclass(name = "ErlangPid", module = "uwsgidecorators._core", frozen, eq, hash)]
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct PyErlangPid {
    #[pyo3(get)]
    node: String,
    #[pyo3(get)]
    id: u32,
    #[pyo3(get)]
    serial: u32,
    #[pyo3(get)]
    creation: u32,
}

#[pymethods]
impl PyErlangPid {
    #[new]
    fn new(node: String, id: u32, serial: u32, creation: u32) -> Self {
        PyErlangPid {
            node,
            id,
            serial,
            creation,
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "ErlangPid({:?}, {}, {}, {})",
            self.node, self.id, self.serial, self.creation
        )
    }
}

impl PyErlangPid {
    fn from_pid(p: Pid) -> Self {
        PyErlangPid {
            node: p.node.name,
            id: p.id,
            serial: p.serial,
            creation: p.creation,
        }
    }
    fn to_pid(&self) -> Pid {
        Pid::new(self.node.clone(), self.id, self.serial, self.creation)
    }
}

#[pyclass(name = "ErlangRef", module = "uwsgidecorators._core", frozen, eq, hash)]
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct PyErlangRef {
    #[pyo3(get)]
    node: String,
    #[pyo3(get)]
    ids: Vec<u32>,
    #[pyo3(get)]
    creation: u32,
}

#[pymethods]
impl PyErlangRef {
    #[new]
    fn new(node: String, ids: Vec<u32>, creation: u32) -> PyResult<Self> {
        if ids.is_empty() || ids.len() > 5 {
            return Err(PyValueError::new_err("a reference has 1 to 5 ids"));
        }
        Ok(PyErlangRef {
            node,
            ids,
            creation,
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "ErlangRef({:?}, {:?}, {})",
            self.node, self.ids, self.creation
        )
    }
}

impl PyErlangRef {
    fn from_ref(r: Reference) -> Self {
        PyErlangRef {
            node: r.node.name,
            ids: r.id,
            creation: r.creation,
        }
    }
    fn to_ref(&self) -> Reference {
        Reference {
            node: Atom::from(self.node.as_str()),
            id: self.ids.clone(),
            creation: self.creation,
        }
    }
}

fn to_value(obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err(format!(
            "cannot send to Erlang: nested deeper than {MAX_DEPTH} levels (a container that holds itself?)"
        )));
    }
    let items = |it: Vec<Bound<'_, PyAny>>| -> PyResult<Vec<Value>> {
        it.iter().map(|o| to_value(o, depth + 1)).collect()
    };
    if obj.is_none() {
        return Ok(Value::List(Vec::new()));
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Atom(
            if b.is_true() { "true" } else { "false" }.into(),
        ));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::Int(i.into()));
        }
        let text = obj.str()?.to_string();
        let big: BigInt = text
            .parse()
            .map_err(|_| PyValueError::new_err(format!("not an integer: {text}")))?;
        return Ok(Value::Int(big));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(Value::Float(f.value()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::Atom(s.to_str()?.to_owned()));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Value::Bytes(b.as_bytes().to_vec()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Value::Bytes(b.to_vec()));
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return Ok(Value::Tuple(items(t.iter().collect())?));
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return Ok(Value::List(items(l.iter().collect())?));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut pairs = Vec::with_capacity(d.len());
        for (k, v) in d.iter() {
            pairs.push((to_value(&k, depth + 1)?, to_value(&v, depth + 1)?));
        }
        return Ok(Value::Map(pairs));
    }
    if let Ok(p) = obj.cast::<PyErlangPid>() {
        return Ok(Value::Pid(p.get().to_pid()));
    }
    if let Ok(r) = obj.cast::<PyErlangRef>() {
        return Ok(Value::Ref(r.get().to_ref()));
    }
    Err(PyTypeError::new_err(format!(
        "cannot send a {} to Erlang (None, bool, int, float, str (an atom), bytes, tuple, list, \
         dict, ErlangPid and ErlangRef can be sent)",
        obj.get_type().name()?
    )))
}

fn from_value(py: Python<'_>, v: Value) -> PyResult<Bound<'_, PyAny>> {
    Ok(match v {
        Value::Int(i) => match i64::try_from(&i) {
            Ok(small) => small.into_pyobject(py)?.into_any(),
            Err(_) => py.get_type::<PyInt>().call1((i.to_string(),))?,
        },
        Value::Float(f) => f.into_pyobject(py)?.into_any(),
        Value::Atom(a) => a.into_pyobject(py)?.into_any(),
        Value::Bytes(b) => PyBytes::new(py, &b).into_any(),
        Value::Tuple(items) => {
            let objs = items
                .into_iter()
                .map(|x| from_value(py, x))
                .collect::<PyResult<Vec<_>>>()?;
            PyTuple::new(py, objs)?.into_any()
        }
        Value::List(items) => {
            let objs = items
                .into_iter()
                .map(|x| from_value(py, x))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, objs)?.into_any()
        }
        Value::Map(pairs) => {
            let d = PyDict::new(py);
            for (k, val) in pairs {
                d.set_item(from_value(py, k)?, from_value(py, val)?)?;
            }
            d.into_any()
        }
        Value::Pid(p) => Bound::new(py, PyErlangPid::from_pid(p))?.into_any(),
        Value::Ref(r) => Bound::new(py, PyErlangRef::from_ref(r))?.into_any(),
    })
}

/// `term_to_binary`: the external term format of a Python value (version byte included).
#[pyfunction]
fn erlang_encode<'py>(py: Python<'py>, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let bytes = term::encode(&to_value(obj, 0)?).map_err(term_err)?;
    Ok(PyBytes::new(py, &bytes))
}

/// `binary_to_term`: the Python value of a term in the external term format.
#[pyfunction]
fn erlang_decode<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    from_value(py, term::decode(data).map_err(term_err)?)
}

#[pyclass(name = "ErlangNode", module = "uwsgidecorators._core", frozen)]
pub(crate) struct PyErlangNode {
    inner: Node,
}

#[pymethods]
impl PyErlangNode {
    #[new]
    #[pyo3(signature = (name, cookie, epmd_port = 4369))]
    fn new(py: Python<'_>, name: &str, cookie: &str, epmd_port: u16) -> PyResult<Self> {
        let inner =
            blocking::detached(py, || Node::start(name, cookie, epmd_port)).map_err(node_err)?;
        Ok(PyErlangNode { inner })
    }

    #[getter]
    fn name(&self) -> String {
        self.inner.name()
    }

    #[getter]
    fn port(&self) -> u16 {
        self.inner.port()
    }

    #[getter]
    fn creation(&self) -> u32 {
        self.inner.creation()
    }

    #[pyo3(signature = (timeout = None))]
    fn recv<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<f64>,
    ) -> PyResult<Option<Bound<'py, PyTuple>>> {
        let deadline = blocking::deadline(timeout)?;
        let ev = blocking::wait(
            py,
            deadline,
            false,
            |slice| self.inner.recv(slice),
            |ev| Ok(ev.map_or(Flow::Idle, Flow::Done)),
        )?;
        ev.map(|ev| event_tuple(py, ev)).transpose()
    }

    fn send(
        &self,
        py: Python<'_>,
        to: &Bound<'_, PyErlangPid>,
        message: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let term = term::to_term(&to_value(message, 0)?).map_err(term_err)?;
        let pid = to.get().to_pid();
        blocking::detached(py, || self.inner.send(&pid, term)).map_err(node_err)
    }

    fn reg_send(
        &self,
        py: Python<'_>,
        node: &str,
        name: &str,
        message: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let term = term::to_term(&to_value(message, 0)?).map_err(term_err)?;
        blocking::detached(py, || self.inner.reg_send(node, name, term)).map_err(node_err)
    }

    fn close(&self) {
        self.inner.close();
    }
}

fn event_tuple(py: Python<'_>, ev: Event) -> PyResult<Bound<'_, PyTuple>> {
    let none = || py.None().into_bound(py);
    let items: [Bound<'_, PyAny>; 5] = match ev {
        Event::Message {
            peer,
            to,
            from,
            message,
        } => {
            let to = match to {
                Dest::Name(n) => n.into_pyobject(py)?.into_any(),
                Dest::Pid(p) => Bound::new(py, PyErlangPid::from_pid(p))?.into_any(),
                Dest::Alias(r) => Bound::new(py, PyErlangRef::from_ref(r))?.into_any(),
            };
            let from = match from {
                Some(p) => Bound::new(py, PyErlangPid::from_pid(p))?.into_any(),
                None => none(),
            };
            match term::to_value(message) {
                Ok(v) => [
                    "message".into_pyobject(py)?.into_any(),
                    peer.into_pyobject(py)?.into_any(),
                    to,
                    from,
                    from_value(py, v)?,
                ],
                Err(e) => [
                    "bad_message".into_pyobject(py)?.into_any(),
                    peer.into_pyobject(py)?.into_any(),
                    to,
                    from,
                    e.to_string().into_pyobject(py)?.into_any(),
                ],
            }
        }
        Event::Connected { peer } => [
            "connected".into_pyobject(py)?.into_any(),
            peer.into_pyobject(py)?.into_any(),
            none(),
            none(),
            none(),
        ],
        Event::Refused { peer, reason } => [
            "refused".into_pyobject(py)?.into_any(),
            peer.unwrap_or_default().into_pyobject(py)?.into_any(),
            none(),
            none(),
            reason.into_pyobject(py)?.into_any(),
        ],
        Event::Closed { peer, reason } => [
            "closed".into_pyobject(py)?.into_any(),
            peer.into_pyobject(py)?.into_any(),
            none(),
            none(),
            reason.into_pyobject(py)?.into_any(),
        ],
    };
    PyTuple::new(py, items)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyErlangNode>()?;
    m.add_class::<PyErlangPid>()?;
    m.add_class::<PyErlangRef>()?;
    m.add_function(wrap_pyfunction!(erlang_encode, m)?)?;
    m.add_function(wrap_pyfunction!(erlang_decode, m)?)?;
    Ok(())
}
