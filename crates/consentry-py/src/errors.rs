//! The Python exceptions, one per `consentry_app::ErrorKind`: the single mapping from the app layer's errors to
//! exception classes. `BadInput` is also a `ValueError` and `NotFound` a `LookupError`, so generic Python code that
//! catches those keeps working.

use consentry_app::{AppError, ErrorKind};
use pyo3::exceptions::{PyException, PyLookupError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

/// The exception classes, made once per interpreter.
pub struct Errors {
    /// `ConsentryError`, the base of all.
    pub base: Py<PyType>,
    /// `BadInput(ConsentryError, ValueError)`.
    pub bad_input: Py<PyType>,
    /// `NotFound(ConsentryError, LookupError)`.
    pub not_found: Py<PyType>,
    /// `Conflict(ConsentryError)`.
    pub conflict: Py<PyType>,
    /// `IntegrityError(ConsentryError)`.
    pub integrity: Py<PyType>,
    /// `Unavailable(ConsentryError)`.
    pub unavailable: Py<PyType>,
    /// `Forbidden(ConsentryError)`.
    pub forbidden: Py<PyType>,
}

static ERRORS: PyOnceLock<Errors> = PyOnceLock::new();

/// A new exception class `consentry.<name>` with these bases and docstring.
fn class(py: Python<'_>, name: &str, bases: Vec<Bound<'_, PyAny>>, doc: &str) -> PyResult<Py<PyType>> {
    let dict = PyDict::new(py);
    dict.set_item("__module__", "consentry")?;
    dict.set_item("__doc__", doc)?;
    let ty = py.get_type::<PyType>().call1((name, PyTuple::new(py, bases)?, dict))?;
    Ok(ty.cast_into::<PyType>()?.unbind())
}

/// The exception classes of this interpreter (made on first use).
pub fn errors(py: Python<'_>) -> PyResult<&Errors> {
    ERRORS.get_or_try_init(py, || {
        let base = class(
            py,
            "ConsentryError",
            vec![py.get_type::<PyException>().into_any()],
            "Base class of every Consentry error; `kind` is the app layer's error kind (`bad_input`, `not_found`, …).",
        )?;
        let b = || base.bind(py).clone().into_any();
        Ok(Errors {
            bad_input: class(
                py,
                "BadInput",
                vec![b(), py.get_type::<PyValueError>().into_any()],
                "The caller's input is wrong (an argument, a file, a purpose): fix it and retry.",
            )?,
            not_found: class(
                py,
                "NotFound",
                vec![b(), py.get_type::<PyLookupError>().into_any()],
                "What was asked for does not exist (a data directory, a ledger, a member, a dataset).",
            )?,
            conflict: class(
                py,
                "Conflict",
                vec![b()],
                "The request contradicts what is recorded (an output that exists, an idempotency key reused).",
            )?,
            integrity: class(
                py,
                "IntegrityError",
                vec![b()],
                "Evidence does not check out: a signature, a hash, a commitment, a dataset altered after gating.",
            )?,
            unavailable: class(
                py,
                "Unavailable",
                vec![b()],
                "A dependency is down or unreachable (PostgreSQL, the file system).",
            )?,
            forbidden: class(
                py,
                "Forbidden",
                vec![b()],
                "The caller may not do this (or did not prove who they are).",
            )?,
            base,
        })
    })
}

/// The full message of an app error: its own, then each cause's (as the CLI prints `error: a: b: c`), skipping a
/// cause that repeats what is already shown.
pub fn message(e: &AppError) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let m = s.to_string();
        if !m.is_empty() && !out.contains(&m) {
            out.push_str(": ");
            out.push_str(&m);
        }
        source = s.source();
    }
    out
}

/// The Python exception for an app error: its class by kind, its full message, and `kind` as an attribute.
pub fn to_py(e: AppError) -> PyErr {
    Python::attach(|py| match build(py, &e) {
        Ok(err) => err,
        Err(err) => err,
    })
}

fn build(py: Python<'_>, e: &AppError) -> PyResult<PyErr> {
    let errs = errors(py)?;
    let ty = match e.kind() {
        ErrorKind::BadInput => &errs.bad_input,
        ErrorKind::NotFound => &errs.not_found,
        ErrorKind::Conflict => &errs.conflict,
        ErrorKind::Integrity => &errs.integrity,
        ErrorKind::Unavailable => &errs.unavailable,
        ErrorKind::Forbidden | ErrorKind::Unauthenticated => &errs.forbidden,
        _ => &errs.base,
    };
    let value = ty.bind(py).call1((message(e),))?;
    value.setattr("kind", e.kind().as_str())?;
    Ok(PyErr::from_value(value))
}

/// A `BadInput` raised by the binding itself (an argument of the wrong shape), so callers catch one class.
pub fn bad_input(message: impl Into<String>) -> PyErr {
    to_py(AppError::bad_input(message))
}

/// Adds the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let e = errors(py)?;
    for (name, ty) in [
        ("ConsentryError", &e.base),
        ("BadInput", &e.bad_input),
        ("NotFound", &e.not_found),
        ("Conflict", &e.conflict),
        ("IntegrityError", &e.integrity),
        ("Unavailable", &e.unavailable),
        ("Forbidden", &e.forbidden),
    ] {
        m.add(name, ty.clone_ref(py))?;
    }
    Ok(())
}
