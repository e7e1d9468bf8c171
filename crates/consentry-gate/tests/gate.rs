//! The gate's promises, property-tested over random consent histories, member-id
//! layouts and tables written to Parquet in a temporary directory.

use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, UInt64Type};
use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray, UInt64Array};
use consentry_gate::materialize::{GateOptions, GateRequest, NoProgress};
use consentry_gate::{GateError, Manifest, Sources, materialize, merge, verify_files, verify_recompute};
use consentry_ledger::snapshot::Snapshot;
use consentry_ledger::sqlite::SqliteStore;
use consentry_ledger::{Ledger, LedgerOptions, LogKey, MemberRecord, NewEvent};
use consentry_policy::{Action, Policy, Source};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::properties::WriterProperties;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const PURPOSE: &str = "train_ai_system.job_recommendations";
const NOW: i64 = 1_790_000_000;

/// A ledger over members 1..=n: `choices[m-1]` is the member's sequence of (grant?, minor?) events.
struct World {
    _dir: tempfile::TempDir,
    ledger: Ledger,
}

fn world(choices: &[(Vec<bool>, bool)]) -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("ledger.db")).unwrap();
    let ledger =
        Ledger::new(Box::new(store), Policy::default_policy(), LogKey::from_seed([7; 32]), LedgerOptions::default());
    let members: Vec<MemberRecord> = choices
        .iter()
        .enumerate()
        .map(|(i, (_, minor))| MemberRecord {
            member_id: i as u64 + 1,
            jurisdiction: "DE".into(),
            birth_date: chrono::NaiveDate::from_ymd_opt(if *minor { 2015 } else { 1980 }, 3, 1).unwrap(),
        })
        .collect();
    ledger.store().put_members(&members).unwrap();
    let mut events = Vec::new();
    for (i, (acts, _)) in choices.iter().enumerate() {
        for (k, grant) in acts.iter().enumerate() {
            events.push(NewEvent {
                member_id: i as u64 + 1,
                purpose: PURPOSE.into(),
                action: if *grant { Action::Grant } else { Action::Withdraw },
                notice_version: 1,
                source: Source::Ui,
                actor: format!("member:{}", i + 1),
                event_time: 1_775_000_000 + (k as i64) * 1000 + i as i64,
                idempotency_key: format!("k-{i}-{k}"),
            });
        }
    }
    if !events.is_empty() {
        ledger.append_at(events, NOW).unwrap();
    }
    World { _dir: dir, ledger }
}

fn snapshot(w: &World) -> Snapshot {
    let len = w.ledger.store().len().unwrap();
    let pid = w.ledger.policy().purpose_id(PURPOSE).unwrap();
    Snapshot::build(w.ledger.store(), w.ledger.policy(), pid, len, NOW, w.ledger.root(len).unwrap()).unwrap()
}

/// One input row: subject `a`, optional second party `b`, a value `x`.
type Row = (u64, Option<u64>, i64);

fn write_parquet(path: &Path, rows: &[Row], with_b: bool, rg: usize) {
    let a = UInt64Array::from_iter_values(rows.iter().map(|r| r.0));
    let b = UInt64Array::from_iter(rows.iter().map(|r| r.1));
    let x = Int64Array::from_iter_values(rows.iter().map(|r| r.2));
    let y = StringArray::from_iter_values(rows.iter().map(|r| format!("name {}", r.0)));
    let z = StringArray::from_iter_values(rows.iter().map(|r| format!("secret {}", r.2)));
    let mut cols: Vec<(&str, ArrayRef)> = vec![("a", Arc::new(a))];
    if with_b {
        cols.push(("b", Arc::new(b)));
    }
    cols.extend([("x", Arc::new(x) as ArrayRef), ("y", Arc::new(y) as ArrayRef), ("z", Arc::new(z) as ArrayRef)]);
    let batch = RecordBatch::try_from_iter(cols).unwrap();
    let props = WriterProperties::builder().set_max_row_group_row_count(Some(rg.max(1))).build();
    let mut w = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// Writes the rows split at `cuts` into files under `dir/t/`; returns the declaration.
fn write_table(dir: &Path, rows: &[Row], with_b: bool, droppable: bool, cuts: &[usize], rg: usize) -> Sources {
    let t = dir.join("t");
    if t.exists() {
        std::fs::remove_dir_all(&t).unwrap();
    }
    std::fs::create_dir_all(&t).unwrap();
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (rows.len() + 1)).collect();
    bounds.push(0);
    bounds.push(rows.len());
    bounds.sort();
    for (i, w) in bounds.windows(2).enumerate() {
        write_parquet(&t.join(format!("f{i:03}.parquet")), &rows[w[0]..w[1]], with_b, rg);
    }
    let members = if with_b { "['a', 'b']" } else { "['a']" };
    let drop = if with_b && droppable { "droppable = ['b']" } else { "" };
    let text = format!(
        "[tables.t]\npath = 't'\nmembers = {members}\n{drop}\n[tables.t.columns]\nx = 'user.behavior.job_activity'\ny = 'user.name'\n"
    );
    Sources::parse("test.toml", &text, dir).unwrap()
}

fn request<'a>(
    w: &'a World,
    snap: &'a Snapshot,
    sources: &'a Sources,
    partition: Option<(u32, u32)>,
) -> GateRequest<'a> {
    GateRequest {
        policy: w.ledger.policy(),
        snapshot: snap,
        checkpoint: None,
        sources,
        declaration_hash: "test".into(),
        detector: None,
        member_names: 0,
        options: GateOptions { threads: 2, partition, window: 2, batch_rows: 7, ..GateOptions::default() },
        created: NOW,
    }
}

fn read_output(dir: &Path) -> (Vec<String>, Vec<Row>) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("t")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let mut cols = Vec::new();
    let mut rows = Vec::new();
    for f in files {
        let r = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(f).unwrap()).unwrap().build().unwrap();
        for b in r {
            let b = b.unwrap();
            cols = b.schema().fields().iter().map(|f| f.name().clone()).collect();
            let a = b.column_by_name("a").unwrap().as_primitive::<UInt64Type>().clone();
            let bb = b.column_by_name("b").map(|c| c.as_primitive::<UInt64Type>().clone());
            let x = b.column_by_name("x").unwrap().as_primitive::<Int64Type>().clone();
            for i in 0..b.num_rows() {
                let a = if a.is_null(i) { 0 } else { a.value(i) };
                let bv = bb.as_ref().and_then(|c| c.is_valid(i).then(|| c.value(i)));
                rows.push((a, bv, x.value(i)));
            }
        }
    }
    (cols, rows)
}

/// The rules, written the simplest way: what the output must be.
fn expected(rows: &[Row], allowed: &dyn Fn(u64) -> bool, droppable: bool) -> Vec<Row> {
    let mut out = Vec::new();
    for &(a, b, x) in rows {
        let a_ok = allowed(a);
        let b_ok = b.is_none_or(allowed);
        if a_ok && b_ok {
            out.push((a, b, x));
        } else if droppable && a_ok {
            // Only `b` is droppable: its id is nulled, the row stays with `a`.
            out.push((a, None, x));
        }
    }
    out
}

fn sorted(mut v: Vec<Row>) -> Vec<Row> {
    v.sort();
    v
}

fn choices_strategy() -> impl Strategy<Value = Vec<(Vec<bool>, bool)>> {
    prop::collection::vec((prop::collection::vec(prop::bool::weighted(0.7), 0..3), prop::bool::weighted(0.1)), 1..25)
}

fn rows_strategy(n_members: u64) -> impl Strategy<Value = Vec<Row>> {
    prop::collection::vec((1..=n_members + 2, prop::option::weighted(0.7, 1..=n_members + 2), any::<i64>()), 0..60)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn only_allowed_rows_all_allowed_rows_only_purpose_columns(
        (choices, rows) in choices_strategy().prop_flat_map(|c| { let n = c.len() as u64; (Just(c), rows_strategy(n)) }),
        with_b in any::<bool>(),
        droppable in any::<bool>(),
        cuts in prop::collection::vec(any::<usize>(), 0..3),
        rg in 1usize..20,
    ) {
        let w = world(&choices);
        let snap = snapshot(&w);
        let tmp = tempfile::tempdir().unwrap();
        let rows: Vec<Row> = if with_b { rows } else { rows.into_iter().map(|(a, _, x)| (a, None, x)).collect() };
        let droppable = with_b && droppable;
        let sources = write_table(tmp.path(), &rows, with_b, droppable, &cuts, rg);
        let out = tmp.path().join("out");
        let outcome = materialize(&request(&w, &snap, &sources, None), Some(&out), &NoProgress).unwrap();
        let (cols, got) = read_output(&out);
        // Only member ids and the purpose's columns: never `y` (not in the purpose) or `z` (undeclared).
        let want_cols: Vec<String> = if with_b { vec!["a", "b", "x"] } else { vec!["a", "x"] }.into_iter().map(String::from).collect();
        if !got.is_empty() { prop_assert_eq!(cols, want_cols); }
        // No row carries a member who is not allowed.
        for r in &got {
            prop_assert!(r.0 == 0 || snap.is_allowed(r.0), "row {:?} carries a refusing member", r);
            prop_assert!(r.1.is_none_or(|b| snap.is_allowed(b)), "row {:?} carries a refusing member", r);
        }
        // Every allowed row is present, exactly once.
        let exp = sorted(expected(&rows, &|m| snap.is_allowed(m), droppable));
        prop_assert_eq!(sorted(got.clone()), exp);
        let m = &outcome.manifest;
        let t = &m.tables["t"];
        prop_assert_eq!(t.rows_in, rows.len() as u64);
        prop_assert_eq!(t.rows_out, got.len() as u64);
        prop_assert_eq!(t.excluded.values().sum::<u64>(), t.rows_in - t.rows_out);
        // The member set is exactly the members in the output.
        let mut members: Vec<u64> = got.iter().flat_map(|r| [Some(r.0).filter(|a| *a != 0), r.1]).flatten().collect();
        members.sort();
        members.dedup();
        prop_assert_eq!(outcome.members.iter().collect::<Vec<_>>(), members);
        // The files verify.
        let (_, diffs) = verify_files(&out).unwrap();
        prop_assert!(diffs.is_empty(), "{:?}", diffs);

        // Same rows, reversed and split differently: same commitments and counts.
        let mut rev = rows.clone();
        rev.reverse();
        let tmp2 = tempfile::tempdir().unwrap();
        let sources2 = write_table(tmp2.path(), &rev, with_b, droppable, &[rev.len() / 2], rg + 3);
        let again = materialize(&request(&w, &snap, &sources2, None), None, &NoProgress).unwrap().manifest;
        let t2 = &again.tables["t"];
        prop_assert_eq!(&t2.row_commitment, &t.row_commitment);
        prop_assert_eq!(&again.members, &m.members);
        prop_assert_eq!(&t2.excluded, &t.excluded);
    }
}

fn fixed_world() -> World {
    world(&(0..20).map(|i| (vec![i % 3 != 0], i == 5)).collect::<Vec<_>>())
}

fn fixed_rows() -> Vec<Row> {
    (0..200u64).map(|i| (i % 22 + 1, Some((i * 7) % 22 + 1), i as i64)).collect()
}

fn no_leftovers(dir: &Path) {
    let names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(!names.iter().any(|n| n.starts_with("out") || n.contains("partial")), "left behind: {names:?}");
}

#[test]
fn corrupt_missing_column_and_wrong_type_fail_cleanly() {
    let w = fixed_world();
    let snap = snapshot(&w);
    let tmp = tempfile::tempdir().unwrap();
    let rows = fixed_rows();
    let sources = write_table(tmp.path(), &rows, true, false, &[100], 30);
    let out = tmp.path().join("out");

    // A corrupted data page: the error names the file; nothing that looks like a dataset is left.
    let f = tmp.path().join("t/f001.parquet");
    let mut bytes = std::fs::read(&f).unwrap();
    for b in bytes.iter_mut().skip(8).take(200) {
        *b ^= 0x5a;
    }
    std::fs::write(&f, &bytes).unwrap();
    let e = materialize(&request(&w, &snap, &sources, None), Some(&out), &NoProgress).unwrap_err();
    assert!(e.to_string().contains("f001.parquet"), "{e}");
    assert!(!out.exists());
    no_leftovers(tmp.path());

    // A truncated file (no footer).
    std::fs::write(&f, &bytes[..bytes.len() / 2]).unwrap();
    let e = materialize(&request(&w, &snap, &sources, None), Some(&out), &NoProgress).unwrap_err();
    assert!(matches!(e, GateError::Parquet { .. }) && e.to_string().contains("f001.parquet"), "{e}");
    no_leftovers(tmp.path());

    // A column removed.
    let batch = RecordBatch::try_from_iter(vec![
        ("a", Arc::new(UInt64Array::from(vec![1u64])) as ArrayRef),
        ("x", Arc::new(Int64Array::from(vec![1i64])) as ArrayRef),
    ])
    .unwrap();
    let mut wr = ArrowWriter::try_new(std::fs::File::create(&f).unwrap(), batch.schema(), None).unwrap();
    wr.write(&batch).unwrap();
    wr.close().unwrap();
    let e = materialize(&request(&w, &snap, &sources, None), Some(&out), &NoProgress).unwrap_err();
    assert!(matches!(e, GateError::MissingColumn { .. }), "{e}");
    assert!(e.to_string().contains("`b`") && e.to_string().contains("f001.parquet"), "{e}");
    no_leftovers(tmp.path());

    // A type changed (x as text).
    let batch = RecordBatch::try_from_iter(vec![
        ("a", Arc::new(UInt64Array::from(vec![1u64])) as ArrayRef),
        ("b", Arc::new(UInt64Array::from(vec![2u64])) as ArrayRef),
        ("x", Arc::new(StringArray::from(vec!["1"])) as ArrayRef),
        ("y", Arc::new(StringArray::from(vec!["n"])) as ArrayRef),
    ])
    .unwrap();
    let mut wr = ArrowWriter::try_new(std::fs::File::create(&f).unwrap(), batch.schema(), None).unwrap();
    wr.write(&batch).unwrap();
    wr.close().unwrap();
    let e = materialize(&request(&w, &snap, &sources, None), Some(&out), &NoProgress).unwrap_err();
    assert!(matches!(e, GateError::ColumnType { .. }), "{e}");
    assert!(e.to_string().contains("t.x"), "{e}");
    no_leftovers(tmp.path());
}

#[test]
fn output_bytes_do_not_depend_on_threads_or_window() {
    let w = fixed_world();
    let snap = snapshot(&w);
    let tmp = tempfile::tempdir().unwrap();
    let rows: Vec<Row> = fixed_rows().into_iter().chain((0..300u64).map(|i| (i % 21 + 1, None, -(i as i64)))).collect();
    for (with_b, droppable) in [(false, false), (true, true)] {
        let sources = write_table(tmp.path(), &rows, with_b, droppable, &[100, 320], 30);
        let mut runs = Vec::new();
        for (threads, window) in [(1, 1), (2, 4), (5, 2)] {
            let out = tmp.path().join(format!("out-{with_b}-{threads}"));
            let mut req = request(&w, &snap, &sources, None);
            req.options = GateOptions { threads, window, batch_rows: 7, row_group_rows: 40, ..GateOptions::default() };
            let m = materialize(&req, Some(&out), &NoProgress).unwrap().manifest;
            let mut files: Vec<(String, Vec<u8>)> =
                m.files.iter().map(|f| (f.path.clone(), std::fs::read(out.join(&f.path)).unwrap())).collect();
            files.push(("members.roaring".into(), std::fs::read(out.join("members.roaring")).unwrap()));
            runs.push((m.normalized(), files));
        }
        assert!(runs[0].0.rows_out > 0);
        for r in &runs[1..] {
            assert_eq!(r.0, runs[0].0);
            assert!(r.1 == runs[0].1, "output bytes differ between thread counts");
        }
    }
}

#[test]
fn merged_partitions_equal_a_single_run() {
    let w = fixed_world();
    let snap = snapshot(&w);
    let tmp = tempfile::tempdir().unwrap();
    let rows = fixed_rows();
    let sources = write_table(tmp.path(), &rows, true, true, &[30, 90, 150, 170], 25);
    let single = materialize(&request(&w, &snap, &sources, None), Some(&tmp.path().join("single")), &NoProgress)
        .unwrap()
        .manifest;
    let mut parts = Vec::new();
    for i in 0..3 {
        let p = tmp.path().join(format!("part{i}"));
        let m = materialize(&request(&w, &snap, &sources, Some((i, 3))), Some(&p), &NoProgress).unwrap().manifest;
        assert_eq!(m.partition.map(|p| p.index), Some(i));
        parts.push(p);
    }
    let merged = merge(&parts, &tmp.path().join("merged"), NOW).unwrap();
    assert_eq!(merged.normalized(), single.normalized());
    assert_eq!(Manifest::read(&tmp.path().join("merged")).unwrap(), merged);
    let (_, diffs) = verify_files(&tmp.path().join("merged")).unwrap();
    assert!(diffs.is_empty(), "{diffs:?}");
    // Missing or repeated partials are refused.
    assert!(merge(&parts[..2], &tmp.path().join("m2"), NOW).is_err());
    assert!(merge(&[parts[0].clone(), parts[0].clone(), parts[1].clone()], &tmp.path().join("m3"), NOW).is_err());
    assert!(!tmp.path().join("m2").exists() && !tmp.path().join("m3").exists());
}

#[test]
fn verification_recomputes_and_finds_every_difference() {
    let w = fixed_world();
    let snap = snapshot(&w);
    let tmp = tempfile::tempdir().unwrap();
    let rows = fixed_rows();
    let sources = write_table(tmp.path(), &rows, true, false, &[], 50);
    let out = tmp.path().join("out");
    let m = materialize(&request(&w, &snap, &sources, None), Some(&out), &NoProgress).unwrap().manifest;
    assert!(verify_recompute(&m, request(&w, &snap, &sources, None)).unwrap().is_empty());
    assert!(verify_files(&out).unwrap().1.is_empty());

    // Later events do not change what the snapshot at the manifest's position says.
    w.ledger
        .append_at(
            vec![NewEvent {
                member_id: 2,
                purpose: PURPOSE.into(),
                action: Action::Withdraw,
                notice_version: 1,
                source: Source::Ui,
                actor: "member:2".into(),
                event_time: NOW - 10,
                idempotency_key: "late".into(),
            }],
            NOW,
        )
        .unwrap();
    let pid = w.ledger.policy().purpose_id(PURPOSE).unwrap();
    let pos = m.ledger.position;
    let again =
        Snapshot::build(w.ledger.store(), w.ledger.policy(), pid, pos, NOW, w.ledger.root(pos).unwrap()).unwrap();
    assert!(verify_recompute(&m, request(&w, &snap, &sources, None)).unwrap().is_empty());
    assert!(verify_recompute(&m, request(&w, &again, &sources, None)).unwrap().is_empty());
    // ...but the snapshot now does.
    let now = snapshot(&w);
    let d = verify_recompute(&m, request(&w, &now, &sources, None)).unwrap();
    assert!(d.iter().any(|d| d.what == "snapshot hash"), "{d:?}");
    assert!(d.iter().any(|d| d.what == "ledger position"), "{d:?}");

    // A changed source row.
    let changed: Vec<Row> = rows.iter().map(|r| (r.0, r.1, r.2 + 1)).collect();
    let sources2 = write_table(tmp.path(), &changed, true, false, &[], 50);
    let d = verify_recompute(&m, request(&w, &snap, &sources2, None)).unwrap();
    assert!(d.iter().any(|d| d.what.starts_with("source ")), "{d:?}");
    assert!(d.iter().any(|d| d.what == "table t row commitment"), "{d:?}");

    // A dataset file replaced by another valid Parquet file, an extra file, a deleted bitmap.
    let part = out.join("t/part-00000.parquet");
    write_parquet(&part, &rows[..3], true, 10);
    std::fs::write(out.join("t/extra.parquet"), b"x").unwrap();
    std::fs::remove_file(out.join("members.roaring")).unwrap();
    let (_, d) = verify_files(&out).unwrap();
    let whats: Vec<&str> = d.iter().map(|d| d.what.as_str()).collect();
    assert!(whats.contains(&"file t/part-00000.parquet BLAKE3"), "{whats:?}");
    assert!(whats.contains(&"file t/extra.parquet"), "{whats:?}");
    assert!(whats.contains(&"members.roaring"), "{whats:?}");
    assert!(whats.iter().any(|w| w.contains("row commitment")), "{whats:?}");
}

#[test]
fn redaction_is_applied_and_counted() {
    let w = fixed_world();
    let snap = snapshot(&w);
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().join("posts.parquet");
    let ids: Vec<u64> = (1..=20).collect();
    let text: Vec<String> =
        ids.iter().map(|i| format!("Mail me at person{i}@example.com or call +44 20 7946 0958")).collect();
    let batch = RecordBatch::try_from_iter(vec![
        ("author", Arc::new(UInt64Array::from(ids.clone())) as ArrayRef),
        ("text", Arc::new(StringArray::from(text)) as ArrayRef),
    ])
    .unwrap();
    let mut wr = ArrowWriter::try_new(std::fs::File::create(&t).unwrap(), batch.schema(), None).unwrap();
    wr.write(&batch).unwrap();
    wr.close().unwrap();
    let sources = Sources::parse(
        "p.toml",
        "[tables.posts]\npath='posts.parquet'\nmembers=['author']\nredact=['text']\n[tables.posts.columns]\ntext='user.behavior.job_activity'\n",
        tmp.path(),
    )
    .unwrap();
    let det = consentry_redact::Detector::builder().gazetteer(false).build().unwrap();
    let mut req = request(&w, &snap, &sources, None);
    req.detector = Some(&det);
    let out = tmp.path().join("out");
    let m = materialize(&req, Some(&out), &NoProgress).unwrap().manifest;
    let kept = m.rows_out;
    assert!(kept > 0);
    assert_eq!(m.redactions.get("EMAIL"), Some(&kept));
    assert_eq!(m.redactions.get("PHONE"), Some(&kept));
    let f = out.join("posts/part-00000.parquet");
    let r = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(f).unwrap()).unwrap().build().unwrap();
    let mut seen = BTreeMap::new();
    for b in r {
        let b = b.unwrap();
        for v in b.column_by_name("text").unwrap().as_string::<i32>().iter().flatten() {
            assert!(!v.contains('@') && !v.contains("7946"), "{v}");
            *seen.entry(v.to_string()).or_insert(0) += 1;
        }
    }
    assert_eq!(seen.len(), 1, "{seen:?}");
}

#[test]
fn consent_is_never_evaluated_after_the_dataset_is_made() {
    let w = fixed_world();
    let snap = snapshot(&w);
    let tmp = tempfile::tempdir().unwrap();
    let sources = write_table(tmp.path(), &fixed_rows(), true, false, &[], 50);
    // A snapshot evaluated an hour after the dataset's creation: refused, nothing written.
    let mut req = request(&w, &snap, &sources, None);
    req.created = NOW - 3600;
    let e = materialize(&req, Some(&tmp.path().join("future")), &NoProgress).unwrap_err();
    assert!(e.is_bad_input() && e.to_string().contains("after the dataset's creation"), "{e}");
    assert!(!tmp.path().join("future").exists());
    // Within the clock-skew tolerance it is accepted.
    req.created = NOW - 60;
    materialize(&req, None, &NoProgress).unwrap();
    // Zero shards are refused, not silently made one.
    let mut req = request(&w, &snap, &sources, None);
    req.options.shards = 0;
    let e = materialize(&req, None, &NoProgress).unwrap_err();
    assert!(e.to_string().contains("0 shards"), "{e}");

    // A manifest edited to evaluate consent in 2100 fails verification, whatever its creation time says.
    let out = tmp.path().join("out");
    let m = materialize(&request(&w, &snap, &sources, None), Some(&out), &NoProgress).unwrap().manifest;
    let year_2100 = 4_102_444_800;
    let mut forged = m.clone();
    forged.ledger.at = year_2100;
    let d = verify_recompute(&forged, request(&w, &snap, &sources, None)).unwrap();
    assert!(d.iter().any(|d| d.what == "evaluation time" && d.found.contains("2100-01-01")), "{d:?}");
    forged.created = year_2100;
    let d = verify_recompute(&forged, request(&w, &snap, &sources, None)).unwrap();
    assert!(d.iter().any(|d| d.what == "creation time"), "{d:?}");
    assert!(d.iter().any(|d| d.what == "evaluation time" && d.expected.contains("the present")), "{d:?}");
    // Evaluated after the log moved on past the dataset's position.
    let mut early = m.clone();
    early.ledger.position -= 1;
    let next = w.ledger.store().event(m.ledger.position).unwrap().unwrap().event.recorded_time;
    early.ledger.at = next + 3600;
    early.created = next + 3600;
    let d = consentry_gate::verify_times(&early, w.ledger.store(), next + 7200).unwrap();
    assert!(d.iter().any(|d| d.what == "evaluation time" && d.expected.contains("before event")), "{d:?}");
    assert!(consentry_gate::verify_times(&m, w.ledger.store(), NOW).unwrap().is_empty());
}
