//! The native half of `consentry.spark`: a gate snapshot (`consentry_gate::GateSpec`, cut once on the driver and
//! shipped to the workers as bytes), the per-partition gate the workers run inside `mapInArrow`, and the driver's
//! staging and assembly of the dataset. Every rule is `consentry_gate::distributed`'s and `consentry_app`'s; this
//! module only moves Arrow batches and bytes across the boundary.

use crate::errors::{bad_input, to_py};
use crate::session::{Session, at_from_py};
use consentry_app::AppError;
use consentry_gate::distributed::{GateSpec, PartWriter, Partial, PartitionGate as Gate, cast_batch};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use pyo3_arrow::PyRecordBatch;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

fn gate_err(e: consentry_gate::GateError) -> PyErr {
    to_py(AppError::from(e))
}

/// One purpose's gate, cut from the ledger once: the consent answers at one position, the policy's categories and
/// the declared tables' plans. Spark ships it to every worker as bytes; a worker parses it once.
#[pyclass(frozen, module = "consentry")]
pub struct GateSnapshot {
    spec: Arc<GateSpec>,
    /// The session that cut it (none when rebuilt from bytes on a worker).
    session: Option<Py<Session>>,
    /// The declared files of each table, absolute (only on the driver, where the declaration was read).
    files: BTreeMap<String, Vec<PathBuf>>,
}

impl GateSnapshot {
    fn table(&self, table: &str) -> PyResult<&consentry_gate::distributed::TableSpec> {
        let t = self.spec.table(table).map_err(gate_err)?;
        if !t.included() {
            return Err(bad_input(format!(
                "table `{table}` holds nothing purpose `{}` may use (every column is minimised or undeclared); \
                 gate one of: {}",
                self.spec.purpose(),
                self.included().join(", ")
            )));
        }
        Ok(t)
    }

    fn included(&self) -> Vec<String> {
        self.spec.tables().iter().filter(|t| t.included()).map(|t| t.name().to_string()).collect()
    }
}

#[allow(clippy::too_many_arguments)] // Python keyword arguments
/// `Session.gate_snapshot(...)`: builds the spec (reads the declaration, hashes the source files, cuts the snapshot).
pub fn gate_snapshot(
    py: Python<'_>,
    session: &Bound<'_, Session>,
    purpose: String,
    at: Option<&Bound<'_, PyAny>>,
    sources: Option<PathBuf>,
    redact: bool,
    shards: u32,
    base: Option<PathBuf>,
) -> PyResult<GateSnapshot> {
    let at = at_from_py(at)?;
    let s = session.get().inner();
    let (spec, files) = py
        .detach(move || -> consentry_app::Result<_> {
            let spec = s.gate_spec(&purpose, at, sources.as_deref(), base.as_deref(), redact, shards)?;
            let loaded = s.dir().load_sources(sources.as_deref(), base.as_deref())?;
            let mut files = BTreeMap::new();
            for t in &loaded.sources.tables {
                let list = t.files().map_err(AppError::from)?;
                files.insert(t.name.clone(), list.into_iter().map(|p| std::path::absolute(&p).unwrap_or(p)).collect());
            }
            Ok((spec, files))
        })
        .map_err(to_py)?;
    Ok(GateSnapshot { spec: Arc::new(spec), session: Some(session.clone().unbind()), files })
}

#[pymethods]
impl GateSnapshot {
    /// Rebuilds a snapshot from `to_bytes()` (on a worker); an edited or truncated blob is refused.
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: Vec<u8>) -> PyResult<GateSnapshot> {
        let spec = py.detach(move || GateSpec::from_bytes(&data)).map_err(gate_err)?;
        Ok(GateSnapshot { spec: Arc::new(spec), session: None, files: BTreeMap::new() })
    }

    /// The bytes Spark ships to the workers (sealed with a BLAKE3 digest).
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let b = self.spec.to_bytes().map_err(gate_err)?;
        Ok(PyBytes::new(py, &b))
    }

    /// BLAKE3 of the bytes, hex: workers cache parsed snapshots by it.
    #[getter]
    fn digest(&self) -> String {
        self.spec.digest().to_string()
    }

    /// The purpose every row is judged for.
    #[getter]
    fn purpose(&self) -> String {
        self.spec.purpose().to_string()
    }

    /// The ledger position the consent answers were cut at.
    #[getter]
    fn position(&self) -> u64 {
        self.spec.ledger().position
    }

    /// When consent was evaluated (Unix seconds).
    #[getter]
    fn at(&self) -> i64 {
        self.spec.ledger().at
    }

    /// The ledger's Merkle root at `position`, hex.
    #[getter]
    fn tree_root(&self) -> String {
        self.spec.ledger().tree_root.clone()
    }

    /// Members allowed / evaluated.
    #[getter]
    fn allowed(&self) -> u64 {
        self.spec.snapshot().allowed
    }

    /// Members the snapshot evaluated.
    #[getter]
    fn members(&self) -> u64 {
        self.spec.snapshot().members
    }

    /// Whether free text is redacted.
    #[getter]
    fn redact(&self) -> bool {
        self.spec.redaction().enabled
    }

    /// BLAKE3 of the source declaration's text, hex.
    #[getter]
    fn declaration_hash(&self) -> String {
        self.spec.sources().declaration_hash.clone()
    }

    /// The declared tables the purpose uses, in declaration order.
    #[getter]
    fn tables(&self) -> Vec<String> {
        self.included()
    }

    /// The session that cut this snapshot (None on a worker).
    #[getter]
    fn session(&self, py: Python<'_>) -> Option<Py<Session>> {
        self.session.as_ref().map(|s| s.clone_ref(py))
    }

    /// Raises `BadInput` unless the purpose uses `table`.
    fn check_table(&self, table: &str) -> PyResult<()> {
        self.table(table).map(|_| ())
    }

    /// The columns the gate reads and writes for `table` (member columns and the purpose's categories), in order.
    fn output_columns(&self, table: &str) -> PyResult<Vec<String>> {
        Ok(self.table(table)?.columns().to_vec())
    }

    /// The declared files of `table`, absolute (driver only).
    fn source_files(&self, table: &str) -> PyResult<Vec<PathBuf>> {
        self.table(table)?;
        self.files.get(table).cloned().ok_or_else(|| {
            bad_input("this snapshot was rebuilt from bytes and knows no source files: read the table yourself")
        })
    }

    /// Raises `BadInput` unless the declaration at `path` is the one this snapshot was cut with.
    fn check_sources(&self, path: PathBuf) -> PyResult<()> {
        let text = std::fs::read(&path)
            .map_err(|e| bad_input(format!("cannot read source declaration {}: {e}", path.display())))?;
        let h = blake3::hash(&text).to_hex().to_string();
        if h != self.spec.sources().declaration_hash {
            return Err(bad_input(format!(
                "{} is not the source declaration this snapshot was cut with ({}): cut a new one with \
                 Session.gate_snapshot(..., sources=...)",
                path.display(),
                self.spec.sources().declaration
            )));
        }
        Ok(())
    }

    fn __repr__(&self) -> String {
        format!(
            "consentry.GateSnapshot(purpose={:?}, position={}, allowed={} of {}, tables={:?}, redact={})",
            self.spec.purpose(),
            self.spec.ledger().position,
            self.spec.snapshot().allowed,
            self.spec.snapshot().members,
            self.included(),
            self.spec.redaction().enabled
        )
    }
}

/// The gate over one partition of one table: push the engine's Arrow batches, get the gated rows back in the
/// engine's types; `finish()` gives the partition's partial (counts, row commitment, members, files written).
#[pyclass(module = "consentry")]
pub struct PartitionGate {
    gate: Mutex<Option<Gate>>,
    spec: Arc<GateSpec>,
    table: String,
}

impl PartitionGate {
    /// Runs `f` on the partition's gate (an error once the partition is finished).
    fn with_gate<T>(
        &self,
        f: impl FnOnce(&mut Gate) -> Result<T, consentry_gate::GateError>,
    ) -> Result<T, consentry_gate::GateError> {
        let mut guard = self.gate.lock().map_err(|_| consentry_gate::GateError::Worker("poisoned".into()))?;
        f(guard.as_mut().ok_or_else(|| consentry_gate::GateError::Invalid("this partition is finished".into()))?)
    }
}

#[pymethods]
impl PartitionGate {
    /// `write_dir`/`part_name`: also write the gated rows as `write_dir/TABLE/part_name.parquet` with the gate's writer.
    #[new]
    #[pyo3(signature = (snapshot, table, write_dir=None, part_name=None))]
    fn new(
        py: Python<'_>,
        snapshot: &GateSnapshot,
        table: String,
        write_dir: Option<PathBuf>,
        part_name: Option<String>,
    ) -> PyResult<PartitionGate> {
        snapshot.table(&table)?;
        let spec = snapshot.spec.clone();
        let (s, t) = (spec.clone(), table.clone());
        let gate = py
            .detach(move || -> Result<Gate, consentry_gate::GateError> {
                let mut g = s.partition(&t, s.detector()?)?;
                if let Some(dir) = write_dir {
                    let name = part_name.unwrap_or_else(|| "part".into());
                    g.write_to(PartWriter::create(&dir, &s, &t, &name)?)?;
                }
                Ok(g)
            })
            .map_err(gate_err)?;
        Ok(PartitionGate { gate: Mutex::new(Some(gate)), spec, table })
    }

    /// Gates one batch; returns the kept rows, the purpose's columns only, in the input's (engine's) types.
    fn push<'py>(&self, py: Python<'py>, batch: PyRecordBatch) -> PyResult<Bound<'py, PyAny>> {
        let batch = batch.into_inner();
        let out = py
            .detach(|| {
                self.with_gate(|g| {
                    let engine = self.spec.table(&self.table)?.engine_schema(&batch.schema())?;
                    cast_batch(&g.push(batch)?, &engine)
                })
            })
            .map_err(gate_err)?;
        PyRecordBatch::new(out).into_pyarrow(py)
    }

    /// Gates one batch for a partition that only writes (`write_dir`): nothing comes back but the number of rows kept,
    /// so no batch is cast back or handed to Python.
    fn feed(&self, py: Python<'_>, batch: PyRecordBatch) -> PyResult<usize> {
        let batch = batch.into_inner();
        py.detach(|| self.with_gate(|g| Ok(g.push(batch)?.num_rows()))).map_err(gate_err)
    }

    /// Ends the partition: closes its file (if writing) and returns its partial as bytes for the driver.
    fn finish<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = py
            .detach(|| -> Result<_, consentry_gate::GateError> {
                let mut guard = self.gate.lock().map_err(|_| consentry_gate::GateError::Worker("poisoned".into()))?;
                let g = guard.take().ok_or_else(|| consentry_gate::GateError::Invalid("already finished".into()))?;
                g.finish()?.to_bytes()
            })
            .map_err(gate_err)?;
        Ok(PyBytes::new(py, &bytes))
    }
}

/// `Session.gate_staging(out)`: the directory partitions write into before the dataset is assembled at `out`.
pub fn gate_staging(py: Python<'_>, out: PathBuf, job: String) -> PyResult<PathBuf> {
    py.detach(move || -> Result<PathBuf, consentry_gate::GateError> {
        consentry_gate::check_output(&out)?;
        let dir = consentry_gate::distributed::staging_dir(&out, &job);
        std::fs::create_dir_all(&dir).map_err(|e| consentry_gate::GateError::Io { path: dir.clone(), source: e })?;
        Ok(dir)
    })
    .map_err(gate_err)
}

/// `Session.gate_finish(...)`: checks the snapshot against this ledger, assembles the partials, registers.
pub fn gate_finish(
    py: Python<'_>,
    s: Arc<consentry_app::Session>,
    snapshot: &GateSnapshot,
    partials: Vec<Vec<u8>>,
    staging: PathBuf,
    out: PathBuf,
) -> PyResult<Py<PyAny>> {
    let spec = snapshot.spec.clone();
    let outcome = py
        .detach(move || -> consentry_app::Result<_> {
            let parts = partials
                .iter()
                .map(|b| Partial::from_bytes(b))
                .collect::<Result<Vec<_>, _>>()
                .map_err(AppError::from)?;
            s.gate_finish(&spec, parts, &staging, &out)
        })
        .map_err(to_py)?;
    let m = crate::json::to_py(py, &outcome.manifest)?;
    m.bind(py).cast::<PyDict>()?.set_item("dataset_id", outcome.dataset_id)?;
    Ok(m)
}
