//! The native module of the `consentry` Python package (`consentry._consentry`). A front end like the CLI and the
//! HTTP service: it translates Python arguments into calls on `consentry_app` and renders what comes back as Python
//! objects and Arrow data (zero-copy, through the Arrow C data interface); every rule lives in the libraries.
//!
//! Built by maturin as an abi3 wheel (CPython ≥ 3.11); `extension-module` means nothing links libpython, so the
//! workspace builds and lints without Python's headers. The GIL is released around every call that does I/O or
//! real work.

mod errors;
mod json;
mod redact;
mod session;
mod spark;

use pyo3::prelude::*;

/// Registers the module's classes, functions and exceptions.
#[pymodule]
fn _consentry(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    m.add_class::<session::Session>()?;
    m.add_class::<redact::Redactor>()?;
    m.add_class::<redact::Span>()?;
    m.add_function(wrap_pyfunction!(session::open, m)?)?;
    m.add_function(wrap_pyfunction!(session::verify_receipt, m)?)?;
    m.add_function(wrap_pyfunction!(session::_check_dataset_files, m)?)?;
    m.add_class::<spark::GateSnapshot>()?;
    m.add_class::<spark::PartitionGate>()?;
    Ok(())
}
