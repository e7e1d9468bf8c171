//! The gate on another engine: the fixture's sources split into shuffled partitions of Spark-typed batches, gated
//! by `PartitionGate`s, written as parts and assembled, give the manifest the single-machine gate writes, and a
//! dataset `gate verify` accepts. Bad input is refused with a clear error and nothing at the output.

use arrow_array::{ArrayRef, Decimal128Array, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use consentry_app::gate::{GateRun, options};
use consentry_app::{DataDir, Session};
use consentry_gate::distributed::{GateSpec, PartWriter, Partial, cast_batch, staging_dir};
use consentry_gate::{GateError, Manifest};
use consentry_ledger::position::At;
use consentry_test_support::cli::copy_dir;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const JOBS: &str = "train_ai_system.job_recommendations";
const CONTENT: &str = "train_ai_system.content_suggestions";
const REPLIES: &str = "train_ai_system.reply_suggestions";

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    data: PathBuf,
    /// The synthetic declaration with connections made part of job recommendations (two droppable parties).
    decl: PathBuf,
    session: Session,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../consentry/tests/fixtures/datadir-v1"), &data);
    let text = consentry_gate::sources::SYNTHETIC
        .replace("connected_at = \"user.social.connections\"", "connected_at = \"user.behavior.job_activity\"");
    let decl = data.join("network/sources.toml");
    std::fs::write(&decl, text).unwrap();
    let session = Session::open(DataDir::new(&data), None).unwrap();
    Fixture { root: dir.path().to_path_buf(), _dir: dir, data, decl, session }
}

/// The type Spark hands a column of `dt` to `mapInArrow` in (it has no unsigned integers and no milliseconds).
fn spark_type(dt: &DataType, k: usize) -> DataType {
    match dt {
        DataType::UInt64 => DataType::Decimal128(20, 0),
        DataType::UInt32 => DataType::Int64,
        DataType::UInt16 => DataType::Int32,
        DataType::UInt8 => DataType::Int16,
        DataType::Timestamp(_, _) => DataType::Timestamp(TimeUnit::Microsecond, Some("Etc/UTC".into())),
        // Strings come either way.
        DataType::Utf8 if k.is_multiple_of(2) => DataType::LargeUtf8,
        DataType::Utf8 => DataType::Utf8View,
        DataType::List(f) => {
            DataType::List(Arc::new(Field::new("element", spark_type(f.data_type(), k), f.is_nullable())))
        }
        other => other.clone(),
    }
}

fn to_spark(batch: &RecordBatch, k: usize) -> RecordBatch {
    let fields: Vec<Field> =
        batch.schema().fields().iter().map(|f| Field::new(f.name(), spark_type(f.data_type(), k), true)).collect();
    let cols: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .zip(&fields)
        .map(|(c, f)| arrow_cast::cast(c.as_ref(), f.data_type()).unwrap())
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap()
}

/// Every row of a table's source files, in one batch.
fn read_table(spec: &GateSpec, base: &Path, table: &str) -> RecordBatch {
    let mut batches = Vec::new();
    for f in spec.sources().files.iter().filter(|f| f.table == table) {
        let file = std::fs::File::open(base.join(&f.path)).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
        batches.extend(reader.map(Result::unwrap));
    }
    let schema = batches[0].schema();
    arrow_select::concat::concat_batches(&schema, &batches).unwrap()
}

/// The "engine": every included table's rows shuffled, split into `parts` partitions of random-sized Spark-typed
/// batches; each partition gated (with the spec shipped as bytes, as to a worker), its rows written as a part and
/// cast back to the engine's output schema; the partials shipped back as bytes.
fn run_engine(spec: &GateSpec, base: &Path, staging: &Path, parts: usize, seed: u64) -> Vec<Partial> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // The driver makes the staging directory (workers never create it: see `PartWriter::create`).
    std::fs::create_dir_all(staging).unwrap();
    let worker = GateSpec::from_bytes(&spec.to_bytes().unwrap()).unwrap();
    assert_eq!(worker.digest(), spec.digest());
    let detector = worker.detector().unwrap();
    let mut partials = Vec::new();
    let mut kinds = std::collections::BTreeSet::new();
    for t in worker.tables().iter().filter(|t| t.included()) {
        let all = read_table(&worker, base, t.name());
        let mut order: Vec<u64> = (0..all.num_rows() as u64).collect();
        order.shuffle(&mut rng);
        let chunk = order.len().div_ceil(parts).max(1);
        for (p, rows) in order.chunks(chunk).enumerate() {
            let mut gate = worker.partition(t.name(), detector.clone()).unwrap();
            gate.write_to(PartWriter::create(staging, &worker, t.name(), &format!("part-{p:05}-0")).unwrap()).unwrap();
            let mut at = 0;
            while at < rows.len() {
                let n = rng.random_range(1..=rows.len() - at);
                let idx = UInt64Array::from(rows[at..at + n].to_vec());
                let taken = arrow_select::take::take_record_batch(&all, &idx).unwrap();
                let input = to_spark(&taken, p + at);
                kinds.extend(input.schema().fields().iter().map(|f| format!("{}", f.data_type())));
                let out = gate.push(input.clone()).unwrap();
                assert_eq!(out.schema(), *t.output_schema());
                let engine = t.engine_schema(&input.schema()).unwrap();
                let back = cast_batch(&out, &engine).unwrap();
                assert_eq!(back.num_rows(), out.num_rows());
                at += n;
            }
            let partial = gate.finish().unwrap();
            partials.push(Partial::from_bytes(&partial.to_bytes().unwrap()).unwrap());
        }
    }
    // The engine's types, not the sources': Spark's decimal ids and microsecond times.
    assert!(kinds.contains("Decimal128(20, 0)"), "{kinds:?}");
    assert!(kinds.iter().any(|k| k.starts_with("Timestamp(µs") || k.starts_with("Timestamp(Microsecond")), "{kinds:?}");
    partials
}

/// The manifest with what may differ between a distributed and a single-machine run (data files, creation) cleared.
fn comparable(mut m: Manifest) -> Manifest {
    m.files.clear();
    m.created = 0;
    m
}

#[test]
fn a_distributed_gate_writes_the_manifest_of_the_single_machine_gate() {
    let f = fixture();
    let now = consentry_ledger::now();
    let base = f.data.join("network");
    for (i, purpose) in [JOBS, CONTENT, REPLIES].into_iter().enumerate() {
        let spec = f.session.gate_spec(purpose, At::Time(now), Some(&f.decl), None, true, 4).unwrap();
        let single = f.root.join(format!("single-{i}"));
        let run = GateRun {
            purpose: purpose.into(),
            at: At::Time(now),
            sources: Some(f.decl.clone()),
            base: None,
            out: single.clone(),
            options: options(Some(1), 4, None),
            deadline_secs: None,
        };
        let expected = f.session.gate(run, &consentry_app::progress::NoProgress).unwrap().manifest;

        let out = f.root.join(format!("spark-{i}"));
        let staging = staging_dir(&out, "app-1");
        let partials = run_engine(&spec, &base, &staging, 3, 17 + i as u64);
        let done = f.session.gate_finish(&spec, partials, &staging, &out).unwrap();
        assert!(done.dataset_id.is_some());
        assert!(!staging.exists());
        assert!(expected.rows_out > 0 && expected.members.count > 0, "{purpose}: an empty dataset proves little");
        assert_eq!(comparable(done.manifest.clone()), comparable(expected.clone()), "{purpose}");
        assert_eq!(done.manifest, consentry_gate::Manifest::read(&out).unwrap());
        let (_, diffs) = consentry_gate::verify_files(&out).unwrap();
        assert!(diffs.is_empty(), "{purpose}: {diffs:?}");
        let v = f.session.gate_verify(&out, Some(&f.decl), None).unwrap();
        assert!(v.differences.is_empty(), "{purpose}: {:?}", v.differences);
        if purpose == JOBS {
            let c = &expected.tables["connections"];
            assert!(c.included && c.parties_dropped > 0, "droppable parties untested: {c:?}");
        } else {
            assert!(!expected.redactions.is_empty(), "{purpose}: redaction untested");
        }
    }
}

fn err_text(e: GateError) -> String {
    e.to_string()
}

#[test]
fn bad_batches_specs_and_partials_are_refused_and_nothing_appears_at_out() {
    let f = fixture();
    let now = consentry_ledger::now();
    let base = f.data.join("network");
    let spec = f.session.gate_spec(JOBS, At::Time(now), Some(&f.decl), None, true, 4).unwrap();
    let det = spec.detector().unwrap();

    // Tables: unknown, and one the purpose does not include.
    let e = err_text(spec.partition("nope", det.clone()).unwrap_err());
    assert!(e.contains("`nope` is not declared") && e.contains("job_activity"), "{e}");
    let e = err_text(spec.partition("messages", det.clone()).unwrap_err());
    assert!(e.contains("not included"), "{e}");

    // Columns: text where an id belongs, ids out of range or negative, a missing column.
    let all = read_table(&spec, &base, "job_activity");
    let with = |name: &str, col: ArrayRef| {
        let schema = all.schema();
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        let mut cols = all.columns().to_vec();
        let i = schema.index_of(name).unwrap();
        fields[i] = Field::new(name, col.data_type().clone(), true);
        cols[i] = col;
        RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap()
    };
    let n = all.num_rows();
    let mut gate = spec.partition("job_activity", det.clone()).unwrap();
    let text = Arc::new(StringArray::from(vec!["1"; n])) as ArrayRef;
    let e = gate.push(with("member_id", text)).unwrap_err();
    assert!(matches!(e, GateError::ColumnType { .. }) && e.to_string().contains("job_activity.member_id"), "{e}");
    for v in [i128::from(u64::MAX) + 1, -1] {
        let dec = Decimal128Array::from(vec![v; n]).with_precision_and_scale(38, 0).unwrap();
        let e = gate.push(with("member_id", Arc::new(dec))).unwrap_err();
        assert!(matches!(e, GateError::ColumnType { .. }) && e.to_string().contains("job_activity.member_id"), "{e}");
    }
    let without = all.project(&[0]).unwrap();
    let e = gate.push(without).unwrap_err();
    assert!(matches!(e, GateError::MissingColumn { .. }), "{e}");

    // The spec blob: one byte edited, truncated.
    let bytes = spec.to_bytes().unwrap();
    let mut edited = bytes.clone();
    edited[bytes.len() / 2] ^= 0x20;
    let e = err_text(GateSpec::from_bytes(&edited).unwrap_err());
    assert!(e.contains("truncated or edited"), "{e}");
    assert!(GateSpec::from_bytes(&bytes[..bytes.len() - 5]).is_err());
    let mut partial_bytes = spec.partition("jobs", None).unwrap().finish().unwrap().to_bytes().unwrap();
    partial_bytes[20] ^= 1;
    assert!(Partial::from_bytes(&partial_bytes).is_err());

    // Partials of another spec (another shard count is another spec), into the same job.
    let other = f.session.gate_spec(JOBS, At::Time(now), Some(&f.decl), None, true, 5).unwrap();
    assert_ne!(other.digest(), spec.digest());
    let out = f.root.join("out");
    let staging = staging_dir(&out, "bad");
    let mut partials = run_engine(&spec, &base, &staging, 2, 1);
    let stranger = run_engine(&other, &base, &f.root.join("other-staging"), 1, 1);
    let mut mixed = partials.clone();
    mixed.push(stranger[0].clone());
    let e = f.session.gate_finish(&spec, mixed, &staging, &out).unwrap_err().to_string();
    assert!(e.contains("another job"), "{e}");
    assert!(!out.exists());
    let mut merged = partials[0].clone();
    assert!(merged.merge(stranger[0].clone()).is_err());

    // A partition missing: its table's rows do not add up.
    let lost = partials.remove(0);
    let e = f.session.gate_finish(&spec, partials.clone(), &staging, &out).unwrap_err().to_string();
    assert!(e.contains(&format!("table `{}`: the partials cover", lost.table)) && e.contains("source rows"), "{e}");
    assert!(!out.exists() && !staging.join("manifest.json").exists());
    // The same partition twice.
    let mut twice = partials.clone();
    twice.push(lost.clone());
    twice.push(lost.clone());
    let e = f.session.gate_finish(&spec, twice, &staging, &out).unwrap_err().to_string();
    assert!(e.contains("cover") || e.contains("named by two partials"), "{e}");
    assert!(!out.exists());
    // A part file changed after its partial recorded it.
    let victim = staging.join(&lost.files[0].path);
    let good = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, b"not parquet").unwrap();
    partials.push(lost.clone());
    let e = f.session.gate_finish(&spec, partials.clone(), &staging, &out).unwrap_err().to_string();
    assert!(e.contains("recorded"), "{e}");
    assert!(!out.exists());
    std::fs::write(&victim, good).unwrap();

    // Leftovers of a failed attempt are removed; the dataset is then complete. An existing OUT is refused.
    let stray = victim.with_file_name("part-99999-1.parquet");
    std::fs::write(&stray, b"half").unwrap();
    let taken = f.root.join("taken");
    std::fs::create_dir(&taken).unwrap();
    let e = f.session.gate_finish(&spec, partials.clone(), &staging, &taken).unwrap_err().to_string();
    assert!(e.contains("already exists"), "{e}");
    f.session.gate_finish(&spec, partials, &staging, &out).unwrap();
    assert!(!out.join(stray.strip_prefix(&staging).unwrap()).exists());
    let (_, diffs) = consentry_gate::verify_files(&out).unwrap();
    assert!(diffs.is_empty(), "{diffs:?}");
}

#[test]
fn a_spec_from_another_ledger_is_refused() {
    let a = fixture();
    let b = fixture();
    // The two ledgers part ways by one signal each (the same number of events, different ones).
    let now = consentry_ledger::now();
    a.session.gpc_signal(5, now, "sec-gpc:req-a").unwrap();
    b.session.gpc_signal(6, now, "sec-gpc:req-b").unwrap();
    let spec = b.session.gate_spec(JOBS, At::Now, Some(&b.decl), None, false, 4).unwrap();
    let out = a.root.join("out");
    let staging = staging_dir(&out, "x");
    std::fs::create_dir_all(&staging).unwrap();
    let e = a.session.gate_finish(&spec, Vec::new(), &staging, &out).unwrap_err();
    assert_eq!(e.kind(), consentry_app::ErrorKind::BadInput);
    assert!(e.to_string().contains("cut from a different ledger") && e.to_string().contains("tree root"), "{e}");
    assert!(!out.exists());
    // Ledger B further on: the spec names a position ledger A does not have.
    b.session.gpc_signal(7, now, "sec-gpc:req-c").unwrap();
    let later = b.session.gate_spec(JOBS, At::Now, Some(&b.decl), None, false, 4).unwrap();
    let e = a.session.gate_finish(&later, Vec::new(), &staging, &out).unwrap_err();
    assert!(e.to_string().contains("ledger position"), "{e}");
    assert!(!out.exists());
}

/// Red team: a hostile worker runs the rules with a snapshot that allows more members (a later one, where members
/// have since granted) and stamps its partials with the driver's spec digest. The driver cannot see rows it never
/// gets, so the assembly may go through; the line we hold is that `gate verify` — the audit's recomputation from the
/// ledger and the sources — never accepts the result: its member set and row commitments differ.
#[test]
fn a_worker_gating_with_another_snapshot_does_not_pass_verification() {
    let f = fixture();
    let base = f.data.join("network");
    let len = f.session.ledger().unwrap().store().len().unwrap();
    let now = consentry_ledger::now();
    // The driver's cut is early in the log; the worker's is the whole log, with more members allowed.
    let early = (1..len).rev().step_by(7).find(|&p| {
        let a = f.session.snapshot(JOBS, At::Seq(p)).unwrap().counts().allowed;
        let b = f.session.snapshot(JOBS, At::Time(now)).unwrap().counts().allowed;
        a < b
    });
    let early = early.expect("the fixture's log has grants after some position");
    let spec = f.session.gate_spec(JOBS, At::Seq(early), Some(&f.decl), None, false, 4).unwrap();
    let hostile = f.session.gate_spec(JOBS, At::Time(now), Some(&f.decl), None, false, 4).unwrap();
    assert!(hostile.snapshot().allowed > spec.snapshot().allowed);
    let out = f.root.join("out");
    let staging = staging_dir(&out, "hostile");
    std::fs::create_dir_all(&staging).unwrap();
    let mut partials = run_engine(&hostile, &base, &staging, 2, 5);
    for p in &mut partials {
        p.spec = spec.digest().to_string();
    }
    match f.session.gate_finish(&spec, partials, &staging, &out) {
        Err(e) => assert!(!out.exists(), "refused ({e}) but something stands at {}", out.display()),
        Ok(_) => {
            let v = f.session.gate_verify(&out, Some(&f.decl), None).unwrap();
            let what: Vec<&str> = v.differences.iter().map(|d| d.what.as_str()).collect();
            assert!(what.contains(&"member-set commitment"), "a hostile worker's dataset verified: {what:?}");
            assert!(what.iter().any(|w| w.ends_with("row commitment")), "{what:?}");
        }
    }
}

/// Careless operator / killed driver: a task that outlives its abandoned job (its staging directory removed) must not
/// bring the directory back, so nothing half-written is left beside the output.
#[test]
fn a_late_task_never_recreates_an_abandoned_staging_directory() {
    let f = fixture();
    let spec = f.session.gate_spec(JOBS, At::Now, Some(&f.decl), None, false, 4).unwrap();
    let out = f.root.join("out");
    let staging = staging_dir(&out, "gone");
    let table = spec.tables().iter().find(|t| t.included()).unwrap().name().to_string();
    let e = PartWriter::create(&staging, &spec, &table, "part-00000").unwrap_err();
    assert!(err_text(e).contains("is gone"));
    assert!(!staging.exists());
}
