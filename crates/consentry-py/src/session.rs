//! `consentry.open(...)` → `Session`: snapshots as Arrow tables, the gate, lineage and checked datasets, each a call
//! on `consentry_app::Session` with the GIL released while it runs.

use crate::errors::{bad_input, to_py};
use arrow_array::{ArrayRef, BooleanArray, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use consentry_app::gate::{GateRun, options};
use consentry_app::ledger::parse_at;
use consentry_app::{AppError, DataDir, NoProgress};
use consentry_ledger::position::At;
use consentry_ledger::snapshot::Snapshot;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};
use pyo3_arrow::PyTable;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Opens the data directory `data_dir` (and its ledger: SQLite inside it, or PostgreSQL at `database`), failing
/// now — not at the first call — when there is no directory or no ledger.
///
/// `openlineage` (a `.jsonl` file or an `http://` collector) sends OpenLineage run events for `gate` and the Spark
/// gate, as the CLI's `--openlineage` does; without it, `CONSENTRY_OPENLINEAGE` and the OpenLineage clients'
/// `OPENLINEAGE_*` variables apply.
#[pyfunction]
#[pyo3(signature = (data_dir, database=None, openlineage=None))]
pub fn open(
    py: Python<'_>,
    data_dir: PathBuf,
    database: Option<String>,
    openlineage: Option<String>,
) -> PyResult<Session> {
    let inner = py
        .detach(|| -> consentry_app::Result<consentry_app::Session> {
            if !data_dir.exists() {
                let shown = std::path::absolute(&data_dir).unwrap_or_else(|_| data_dir.clone());
                return Err(AppError::new(
                    consentry_app::ErrorKind::NotFound,
                    format!(
                        "data directory {} does not exist: pass the directory `consentry demo` or `consentry ledger \
                         init` made (the CLI's --data)",
                        shown.display()
                    ),
                ));
            }
            let dir = DataDir::new(&data_dir);
            if let Some(e) = dir.not_a_directory() {
                return Err(e);
            }
            let s = consentry_app::Session::open(dir, database.as_deref())?.with_openlineage(
                openlineage.as_deref(),
                &|k: &str| std::env::var(k).ok(),
                consentry_app::openlineage::stderr_warnings(),
            )?;
            if !s.has_ledger() {
                return Err(s.dir().no_ledger());
            }
            s.ledger()?;
            Ok(s)
        })
        .map_err(to_py)?;
    Ok(Session { inner: Arc::new(inner) })
}

/// A data directory and its ledger, opened once; safe to share between threads.
#[pyclass(frozen, module = "consentry")]
pub struct Session {
    inner: Arc<consentry_app::Session>,
}

/// A ledger position from Python: an int (a sequence number), an aware `datetime`, a `date` (midnight UTC) or a
/// string the CLI's `--at` accepts; `None` is now, the whole log.
pub fn at_from_py(at: Option<&Bound<'_, PyAny>>) -> PyResult<At> {
    let Some(at) = at else { return Ok(At::Now) };
    if at.is_none() {
        return Ok(At::Now);
    }
    let py = at.py();
    let datetime = py.import("datetime")?;
    if at.is_instance(&datetime.getattr("datetime")?)? {
        if at.call_method0("utcoffset")?.is_none() {
            return Err(bad_input(
                "at: a naive datetime is ambiguous; give it a time zone, e.g. datetime(…, tzinfo=timezone.utc)",
            ));
        }
        let ts: f64 = at.call_method0("timestamp")?.extract()?;
        return Ok(At::Time(ts.floor() as i64));
    }
    if at.is_instance(&datetime.getattr("date")?)? {
        let s: String = at.call_method0("isoformat")?.extract()?;
        return parse_at(Some(&s)).map_err(to_py);
    }
    if at.is_instance_of::<pyo3::types::PyBool>() {
        return Err(bad_input("at: a bool is not a ledger position; give an int, a datetime or a string"));
    }
    if let Ok(s) = at.cast::<PyString>() {
        let s = s.to_str()?;
        return parse_at(Some(s)).map_err(to_py);
    }
    if let Ok(n) = at.extract::<i128>() {
        return u64::try_from(n)
            .map(At::Seq)
            .map_err(|_| bad_input(format!("at: ledger position {n} is not a sequence number (0 or more)")));
    }
    Err(bad_input(format!(
        "at: expected an int (ledger position), an aware datetime or a string (RFC 3339, YYYY-MM-DD, Unix seconds), \
         got {}",
        at.get_type().name()?
    )))
}

/// The snapshot as one Arrow record batch (`member_id`, `allowed`, `reason`) with its provenance in the schema's
/// metadata.
fn snapshot_batch(snap: &Snapshot) -> consentry_app::Result<RecordBatch> {
    let counts = snap.counts();
    let metadata: HashMap<String, String> = [
        ("consentry.purpose", snap.purpose_key().to_string()),
        ("consentry.position", snap.position().to_string()),
        ("consentry.at", snap.at().to_string()),
        ("consentry.tree_root", hex::encode(snap.tree_root)),
        ("consentry.members", counts.members.to_string()),
        ("consentry.allowed", counts.allowed.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let schema = Arc::new(
        Schema::new(vec![
            Field::new("member_id", DataType::UInt64, false),
            Field::new("allowed", DataType::Boolean, false),
            Field::new("reason", DataType::Utf8, true),
        ])
        .with_metadata(metadata),
    );
    let rows = snap.rows();
    let ids: ArrayRef = Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.0)));
    let allowed: ArrayRef = Arc::new(BooleanArray::from_iter(rows.iter().map(|r| Some(r.1))));
    let reasons: ArrayRef = Arc::new(StringArray::from_iter(rows.iter().map(|r| r.2.map(|x| x.as_str()))));
    RecordBatch::try_new(schema, vec![ids, allowed, reasons])
        .map_err(|e| AppError::internal(format!("building the snapshot table: {e}")))
}

impl Session {
    /// The app session, for the other modules of this crate.
    pub(crate) fn inner(&self) -> Arc<consentry_app::Session> {
        self.inner.clone()
    }
}

#[pymethods]
impl Session {
    /// The data directory this session works on.
    #[getter]
    fn data_dir(&self) -> PathBuf {
        self.inner.dir().root().to_path_buf()
    }

    /// Effective consent of every member for `purpose` at `at` (None: now, the whole log) as a `pyarrow.Table`
    /// (`member_id` uint64, `allowed` bool, `reason` string or null), handed over zero-copy through the Arrow C data
    /// interface; the schema's metadata carries `consentry.purpose`, `.position`, `.at`, `.tree_root`, `.members`
    /// and `.allowed`.
    #[pyo3(signature = (purpose, at=None))]
    fn snapshot<'py>(
        &self,
        py: Python<'py>,
        purpose: String,
        at: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let at = at_from_py(at)?;
        let s = self.inner.clone();
        let batch = py.detach(move || snapshot_batch(&s.snapshot(&purpose, at)?)).map_err(to_py)?;
        let schema = batch.schema();
        PyTable::try_new(vec![batch], schema)?.into_pyarrow(py)
    }

    /// Everything the registry knows about one member (datasets, model versions and shards their data went into,
    /// the consent events behind them, unlearning requests, privacy loss), as a dict.
    fn lineage(&self, py: Python<'_>, member_id: u64) -> PyResult<Py<PyAny>> {
        let s = self.inner.clone();
        let lineage = py.detach(move || s.member_lineage(member_id)).map_err(to_py)?;
        crate::json::to_py(py, &lineage)
    }

    /// Materialises `purpose`'s training set into the new directory `out` and registers it — what `consentry gate`
    /// does. `sources` is a source declaration (TOML) [default: the synthetic network's]; `threads` defaults to all
    /// cores. Returns the manifest as a dict, plus `dataset_id`.
    #[pyo3(signature = (purpose, out, at=None, sources=None, shards=consentry_gate::manifest::DEFAULT_SHARDS, base=None, threads=None))]
    #[allow(clippy::too_many_arguments)] // Python keyword arguments, mirroring `consentry gate`'s flags
    fn gate<'py>(
        &self,
        py: Python<'py>,
        purpose: String,
        out: PathBuf,
        at: Option<&Bound<'py, PyAny>>,
        sources: Option<PathBuf>,
        shards: u32,
        base: Option<PathBuf>,
        threads: Option<usize>,
    ) -> PyResult<Py<PyAny>> {
        let at = at_from_py(at)?;
        let run =
            GateRun { purpose, at, sources, base, out, options: options(threads, shards, None), deadline_secs: None };
        let s = self.inner.clone();
        let outcome = py.detach(move || s.gate(run, &NoProgress)).map_err(to_py)?;
        let m = crate::json::to_py(py, &outcome.manifest)?;
        m.bind(py).cast::<PyDict>()?.set_item("dataset_id", outcome.dataset_id)?;
        Ok(m)
    }

    /// Opens the gated dataset at `path` after checking it against its manifest and the ledger: a
    /// `consentry.Dataset` (warns with `ConsentWarning` when members have withdrawn since it was cut).
    fn dataset<'py>(slf: &Bound<'py, Self>, path: PathBuf) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let kwargs = PyDict::new(py);
        kwargs.set_item("session", slf)?;
        py.import("consentry._dataset")?.getattr("Dataset")?.call((path,), Some(&kwargs))
    }

    /// The check behind `consentry.Dataset`: files, rows, commitments and member bitmap against the manifest, the
    /// ledger it was cut from, and the members who withdrew for its purpose since (with how many are past the
    /// unlearning deadline). A dict; used by `consentry.Dataset`.
    fn _check_dataset(&self, py: Python<'_>, path: PathBuf) -> PyResult<Py<PyAny>> {
        let s = self.inner.clone();
        let c = py.detach(move || s.open_dataset(&path)).map_err(to_py)?;
        let d = dataset_dict(py, &c.dataset, c.members)?;
        let b = d.bind(py).cast::<PyDict>()?.clone();
        b.set_item("withdrawn", c.withdrawn)?;
        b.set_item("past_deadline", c.past_deadline)?;
        b.set_item("deadline_secs", c.deadline_secs)?;
        b.set_item("position", c.position)?;
        Ok(d)
    }

    /// Cuts the consent snapshot a Spark job gates by (`consentry.spark`): the answers of every member for `purpose`
    /// at `at`, the policy's categories and the declared tables' plans (`sources`, default: the synthetic network's),
    /// sealed so the workers can check it. Redaction is on unless `redact=False` (benchmarks only).
    #[pyo3(signature = (purpose, at=None, sources=None, redact=true, shards=consentry_gate::manifest::DEFAULT_SHARDS, base=None))]
    #[allow(clippy::too_many_arguments)] // Python keyword arguments, mirroring `consentry gate`'s flags
    fn gate_snapshot<'py>(
        slf: &Bound<'py, Self>,
        purpose: String,
        at: Option<&Bound<'py, PyAny>>,
        sources: Option<PathBuf>,
        redact: bool,
        shards: u32,
        base: Option<PathBuf>,
    ) -> PyResult<crate::spark::GateSnapshot> {
        crate::spark::gate_snapshot(slf.py(), slf, purpose, at, sources, redact, shards, base)
    }

    /// Creates the directory a distributed gate's partitions write into before `gate_finish` assembles them at
    /// `out` (refused when `out` exists); `job` names the run.
    fn gate_staging(&self, py: Python<'_>, out: PathBuf, job: String) -> PyResult<PathBuf> {
        crate::spark::gate_staging(py, out, job)
    }

    /// Assembles a distributed gate's partials into the dataset at `out` and registers it, after checking the
    /// snapshot against this ledger and that the partials cover every source row. Returns the manifest as a dict,
    /// plus `dataset_id`.
    fn gate_finish(
        &self,
        py: Python<'_>,
        snapshot: &crate::spark::GateSnapshot,
        partials: Vec<Vec<u8>>,
        staging: PathBuf,
        out: PathBuf,
    ) -> PyResult<Py<PyAny>> {
        crate::spark::gate_finish(py, self.inner.clone(), snapshot, partials, staging, out)
    }

    fn __repr__(&self) -> String {
        format!("consentry.Session({:?})", self.inner.dir().root().display().to_string())
    }
}

/// The checked dataset as a dict: `dir`, `manifest`, `manifest_hash`, `members`.
pub fn dataset_dict(py: Python<'_>, d: &consentry_learn::data::Dataset, members: u64) -> PyResult<Py<PyAny>> {
    let out = PyDict::new(py);
    out.set_item("dir", &d.dir)?;
    out.set_item("manifest", crate::json::to_py(py, &d.manifest)?)?;
    out.set_item("manifest_hash", &d.manifest_hash)?;
    out.set_item("members", members)?;
    Ok(out.into_any().unbind())
}

/// The files-only check behind `consentry.Dataset(path)` without a session: files, rows, commitments and member
/// bitmap against the manifest (consent since the cut is not counted). A dict.
#[pyfunction]
pub fn _check_dataset_files(py: Python<'_>, path: PathBuf) -> PyResult<Py<PyAny>> {
    let (d, members) = py.detach(move || consentry_app::dataset::check_dataset_files(&path)).map_err(to_py)?;
    dataset_dict(py, &d, members)
}

/// Verifies a consent receipt offline against the ledger's public key: each a path, or the content as bytes (the
/// receipt's JSON; the key's hex). Returns the receipt as a dict; `IntegrityError` names the check that failed.
#[pyfunction]
pub fn verify_receipt(
    py: Python<'_>,
    receipt: &Bound<'_, PyAny>,
    public_key: &Bound<'_, PyAny>,
) -> PyResult<Py<PyAny>> {
    let receipt = content(receipt, "receipt")?;
    let key = content(public_key, "public_key")?;
    let check = py
        .detach(move || -> consentry_app::Result<_> {
            let (text, name) = match receipt {
                Content::Path(p) => (
                    std::fs::read_to_string(&p)
                        .map_err(|e| AppError::bad_input(format!("cannot read {}: {e}", p.display())))?,
                    p.display().to_string(),
                ),
                Content::Bytes(b) => (
                    String::from_utf8(b)
                        .map_err(|_| AppError::bad_input("the receipt is not UTF-8 text: is it a receipt?"))?,
                    "the receipt".to_string(),
                ),
            };
            let key = match key {
                Content::Path(p) => consentry_ledger::PublicKey::load(&p)?,
                Content::Bytes(b) => consentry_ledger::PublicKey::from_hex(&String::from_utf8_lossy(&b))?,
            };
            let check = consentry_app::ledger::verify_receipt_text(&text, &name, key)?;
            check.verdict
        })
        .map_err(to_py)?;
    crate::json::to_py(py, &check)
}

/// A file argument: a path (str or `os.PathLike`) or the content itself (bytes).
enum Content {
    Path(PathBuf),
    Bytes(Vec<u8>),
}

fn content(v: &Bound<'_, PyAny>, what: &str) -> PyResult<Content> {
    if let Ok(b) = v.cast::<PyBytes>() {
        return Ok(Content::Bytes(b.as_bytes().to_vec()));
    }
    v.extract::<PathBuf>()
        .map(Content::Path)
        .map_err(|_| bad_input(format!("{what}: give a path (str or os.PathLike) or its content as bytes")))
}
