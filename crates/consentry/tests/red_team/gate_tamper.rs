//! Tampering with the gate: time (an evaluation time after the present or after the dataset's creation), dataset
//! rows (added to a dataset's Parquet with the manifest patched), manifests (re-forged to match), and declarations
//! (a personal table without a member-id column).

use super::common::{consentry, ok, read_bitmap, text};
use super::{JOBS, audit, audit_finds, fresh, read_json, refused};
use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use arrow_array::{ArrayRef, RecordBatch, UInt64Array};
use consentry_app::DataDir;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// 2100-01-01T00:00:00Z: every member of today is an adult by then.
const YEAR_2100: i64 = 4_102_444_800;

fn jobs_dataset(data: &Path) -> PathBuf {
    DataDir::new(data).datasets_dir().join("job_recommendations")
}

fn write_json(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_vec_pretty(v).expect("serialises")).expect("writable");
}

/// Every member of the synthetic network.
fn network_members(data: &Path) -> Vec<u64> {
    let f =
        std::fs::File::open(DataDir::new(data).network_dir().join("members.parquet")).expect("the network's members");
    let mut out = Vec::new();
    for b in ParquetRecordBatchReaderBuilder::try_new(f).expect("parquet").build().expect("reader") {
        let b = b.expect("a batch");
        let col = b.column_by_name("member_id").expect("member_id");
        out.extend(col.as_primitive::<UInt64Type>().iter().flatten());
    }
    out
}

/// A member of the network the dataset left out (not allowed: no grant, a minor, withdrawn…).
fn non_consented(data: &Path) -> u64 {
    let included = read_bitmap(&jobs_dataset(data).join("members.roaring"));
    network_members(data).into_iter().find(|m| !included.contains(*m)).expect("someone did not consent")
}

/// Appends a copy of the file's first row with `member_id` set to `member`; returns the new file's batches.
fn append_row_for(path: &Path, member: u64) -> Vec<RecordBatch> {
    let f = std::fs::File::open(path).expect("the dataset's parquet");
    let mut batches: Vec<RecordBatch> = ParquetRecordBatchReaderBuilder::try_new(f)
        .expect("parquet")
        .build()
        .expect("reader")
        .collect::<Result<_, _>>()
        .expect("batches");
    let first = batches[0].slice(0, 1);
    let cols: Vec<ArrayRef> = first
        .schema()
        .fields()
        .iter()
        .zip(first.columns())
        .map(|(field, c)| {
            if field.name() == "member_id" { Arc::new(UInt64Array::from(vec![member])) as ArrayRef } else { c.clone() }
        })
        .collect();
    batches.push(RecordBatch::try_new(first.schema(), cols).expect("the forged row"));
    let mut w = ArrowWriter::try_new(std::fs::File::create(path).expect("rewritable"), batches[0].schema(), None)
        .expect("writer");
    for b in &batches {
        w.write(b).expect("written");
    }
    w.close().expect("closed");
    batches
}

/// Points the manifest's entry for `rel` at the file as it is now (hash, size, and optionally its row count).
fn patch_file_entry(m: &mut Value, dir: &Path, rel: &str, rows: Option<u64>) {
    let bytes = std::fs::read(dir.join(rel)).expect("the file");
    let files = m["files"].as_array_mut().expect("files");
    let f = files.iter_mut().find(|f| f["path"] == rel).expect("listed in the manifest");
    f["blake3"] = blake3::hash(&bytes).to_hex().to_string().into();
    f["bytes"] = (bytes.len() as u64).into();
    if let Some(r) = rows {
        f["rows"] = r.into();
    }
}

#[test]
fn time_after_the_present_is_refused_wherever_at_is_resolved() {
    let (_t, data) = fresh();
    let out = DataDir::new(&data).datasets_dir().join("future");
    let out_s = out.to_str().unwrap();
    // The attack of the issue: consent judged in 2100 counts today's minors as adults.
    let o = consentry(&data, &["gate", "--purpose", JOBS, "--at", "2100-01-01", "--out", out_s]);
    refused(&o, "after the present");
    assert_eq!(o.status.code(), Some(2));
    assert!(!out.exists(), "nothing may be written");
    let o = consentry(&data, &["gate", "--purpose", JOBS, "--at", "4102444800000", "--out", out_s]);
    refused(&o, "past the end of the log");
    for verb in ["snapshot", "export-snapshot"] {
        let mut args = vec!["ledger", verb, "--purpose", JOBS, "--at", "2100-01-01T00:00:00Z"];
        let snap = data.join("snap.parquet");
        if verb == "export-snapshot" {
            args.extend(["--out", snap.to_str().unwrap()]);
        }
        refused(&consentry(&data, &args), "after the present");
        assert!(!snap.exists());
    }
    // A time in the past still works.
    ok(&consentry(&data, &["--quiet", "gate", "--purpose", JOBS, "--at", "2026-11-01", "--out", out_s]));
}

#[test]
fn a_dataset_evaluated_in_the_future_is_caught() {
    let (t, data) = fresh();
    // A hand-made dataset: the gate's output with its evaluation (and creation) time moved to 2100.
    let forged = DataDir::new(&data).datasets_dir().join("future");
    super::copy_dir(&jobs_dataset(&data), &forged);
    let mpath = forged.join("manifest.json");
    let mut m = read_json(&mpath);
    m["ledger"]["at"] = YEAR_2100.into();
    write_json(&mpath, &m);
    let report = audit_finds(&data, "evaluation_time", "2100-01-01");
    let on_forged = |r: &Value| {
        r["findings"].as_array().unwrap().iter().any(|f| f["kind"] == "evaluation_time" && f["dataset"] == "future")
    };
    assert!(on_forged(&report), "{report}");
    // Offline too: the bundle carries the manifest.
    let bundle = t.path().join("bundle");
    ok(&consentry(&data, &["--quiet", "audit", "export", "--out", bundle.to_str().unwrap()]));
    let (code, report) = audit(&data, &["--offline", bundle.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{report}");
    assert!(on_forged(&report), "{report}");
    // Creation moved along with it: now both are after the present.
    m["created"] = YEAR_2100.into();
    write_json(&mpath, &m);
    audit_finds(&data, "evaluation_time", "creation time");
    // `gate verify` fails, and no model is trained on it, registered or not.
    let o = consentry(&data, &["gate", "verify", forged.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("evaluation time"), "{}", text(&o.stderr));
    for extra in [&[][..], &["--no-register"][..]] {
        let out = DataDir::new(&data).models_dir().join("future");
        let mut args = vec!["train", "--model", "job-recs", "--dataset", forged.to_str().unwrap()];
        args.extend(["--out", out.to_str().unwrap()]);
        args.extend_from_slice(extra);
        refused(&consentry(&data, &args), "future");
        assert!(!out.exists());
    }
}

#[test]
fn rows_added_to_a_dataset_are_never_trained_on() {
    let (_t, data) = fresh();
    let ds = jobs_dataset(&data);
    let victim = non_consented(&data);
    let rel = "job_activity/part-00000.parquet";
    let batches = append_row_for(&ds.join(rel), victim);
    // The file hash is fixed, the row counts and commitments are not (the attack).
    let mpath = ds.join("manifest.json");
    let mut m = read_json(&mpath);
    patch_file_entry(&mut m, &ds, rel, None);
    write_json(&mpath, &m);
    let out = DataDir::new(&data).models_dir().join("evil");
    // Registering: the manifest is not the registered one; not registering: the rows do not match it.
    for (extra, needle) in
        [(&[][..], "not one the registry holds"), (&["--no-register"][..], "does not match the manifest")]
    {
        let mut args = vec!["train", "--model", "job-recs", "--out", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        refused(&consentry(&data, &args), needle);
        assert!(!out.exists(), "a refused training leaves no model directory");
    }

    // Now re-forge everything the files show: rows, the row commitment, the member bitmap and its commitment.
    let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
    patch_file_entry(&mut m, &ds, rel, Some(rows));
    let mut lt = consentry_gate::LtHash::new();
    let key = consentry_gate::commit::schema_key("job_activity", &batches[0].schema()).unwrap();
    for b in &batches {
        consentry_gate::commit::add_batch(&mut lt, &key, b).unwrap();
    }
    let t = &mut m["tables"]["job_activity"];
    t["row_commitment"] = lt.to_hex().into();
    t["rows_out"] = (t["rows_out"].as_u64().unwrap() + 1).into();
    m["rows_out"] = (m["rows_out"].as_u64().unwrap() + 1).into();
    let mut members = read_bitmap(&ds.join("members.roaring"));
    members.insert(victim);
    let mut bytes = Vec::new();
    members.serialize_into(&mut bytes).unwrap();
    std::fs::write(ds.join("members.roaring"), &bytes).unwrap();
    m["members"]["count"] = members.len().into();
    m["members"]["commitment"] = blake3::hash(&bytes).to_hex().to_string().into();
    write_json(&mpath, &m);
    // The files now match the manifest…
    let (_, diffs) = consentry_gate::verify_files(&ds).unwrap();
    assert!(diffs.is_empty(), "{diffs:?}");
    // …but the manifest is not the one the gate registered: training that registers refuses it.
    let o = consentry(&data, &["train", "--model", "job-recs", "--out", out.to_str().unwrap()]);
    refused(&o, "not one the registry holds");
    assert!(!out.exists(), "a refused training leaves no model directory");
    // And the audit sees the member the gate never let in.
    audit_finds(&data, "member_not_allowed", &victim.to_string());
}

#[test]
fn a_failed_registration_leaves_no_model_directory() {
    let (_t, data) = fresh();
    // The registry's copy of the dataset's members no longer holds the model's members: registration must fail.
    let db = rusqlite::Connection::open(DataDir::new(&data).ledger_db()).unwrap();
    let mut empty = Vec::new();
    roaring::RoaringTreemap::new().serialize_into(&mut empty).unwrap();
    let n = db
        .execute("UPDATE registry_datasets SET members_bitmap = ?1 WHERE purpose = ?2", rusqlite::params![empty, JOBS])
        .unwrap();
    assert!(n >= 1);
    drop(db);
    let out = DataDir::new(&data).models_dir().join("orphan");
    // The dataset's registration is signed, so the altered row is refused before anything is trained.
    let o = consentry(&data, &["train", "--model", "job-recs", "--out", out.to_str().unwrap()]);
    refused(&o, "signing key");
    assert!(!out.exists(), "nothing is trained on a dataset the registry does not vouch for");
    // A registration that fails after training (here: the signing key is not where training runs) removes the model.
    let (_t, data) = fresh();
    std::fs::remove_file(DataDir::new(&data).key_file()).unwrap();
    let out = DataDir::new(&data).models_dir().join("orphan");
    let o = consentry(&data, &["train", "--model", "job-recs", "--out", out.to_str().unwrap()]);
    refused(&o, "registering it failed");
    assert!(text(&o.stderr).contains("removed"), "{}", text(&o.stderr));
    assert!(!out.exists(), "a model nobody registered must not stay where it could be served");
}

#[test]
fn a_declaration_without_member_column_is_refused() {
    let (t, data) = fresh();
    let base = DataDir::new(&data).network_dir();
    let shipped = consentry_gate::sources::SYNTHETIC;
    let table = "[tables.job_activity]\npath = \"job_activity.parquet\"\n";
    let columns = "[tables.job_activity.columns]\njob_id = \"user.behavior.job_activity\"\n\
                   action = \"user.behavior.job_activity\"\nat = \"user.behavior.job_activity\"\n";
    let original = format!("{table}members = [\"member_id\"]\n{columns}");
    assert!(shipped.contains(&original), "the shipped declaration changed; update this test");
    let attacks = [
        // The member column left out: no one's consent would be checked.
        ("no-member", format!("{table}{columns}"), "names no member-id column"),
        // The member id declared as data, under the member-id category…
        ("id-as-data", format!("{table}{columns}member_id = \"user.unique_id\"\n"), "a member id is not data"),
        // …or laundered through a non-personal one.
        ("id-as-catalog", format!("{table}{columns}member_id = \"system.catalog\"\n"), "member-id column elsewhere"),
    ];
    let gate = |decl: &Path, out: &Path| {
        let (decl, base, out) = (decl.to_str().unwrap(), base.to_str().unwrap(), out.to_str().unwrap());
        consentry(&data, &["--quiet", "gate", "--purpose", JOBS, "--sources", decl, "--base", base, "--out", out])
    };
    for (name, attack, needle) in attacks {
        let decl = t.path().join(format!("{name}.toml"));
        std::fs::write(&decl, shipped.replace(&original, &attack)).unwrap();
        let out = DataDir::new(&data).datasets_dir().join(name);
        let o = gate(&decl, &out);
        refused(&o, needle);
        assert_eq!(o.status.code(), Some(2), "{name}");
        assert!(!out.exists(), "{name}");
    }
    // A dataset claiming to come from such a declaration does not verify either.
    let claimed = DataDir::new(&data).datasets_dir().join("claimed");
    super::copy_dir(&jobs_dataset(&data), &claimed);
    let mut m = read_json(&claimed.join("manifest.json"));
    m["sources"]["declaration"] = t.path().join("no-member.toml").to_str().unwrap().into();
    write_json(&claimed.join("manifest.json"), &m);
    let o = consentry(&data, &["gate", "verify", claimed.to_str().unwrap(), "--base", base.to_str().unwrap()]);
    refused(&o, "names no member-id column");
    // The shipped declaration (a job catalogue without members, of a non-personal category) still passes.
    let decl = t.path().join("shipped.toml");
    std::fs::write(&decl, shipped).unwrap();
    ok(&gate(&decl, &DataDir::new(&data).datasets_dir().join("shipped")));
}

#[test]
fn a_manifest_with_zero_shards_is_refused() {
    let (_t, data) = fresh();
    let ds = jobs_dataset(&data);
    let mpath = ds.join("manifest.json");
    let mut m = read_json(&mpath);
    m["shard"]["shards"] = 0.into();
    write_json(&mpath, &m);
    let out = DataDir::new(&data).models_dir().join("one-shard");
    let o = consentry(&data, &["train", "--model", "job-recs", "--no-register", "--out", out.to_str().unwrap()]);
    refused(&o, "0 shards");
    assert!(!out.exists());
    let o = consentry(
        &data,
        &[
            "gate",
            "--purpose",
            JOBS,
            "--shards",
            "0",
            "--out",
            DataDir::new(&data).datasets_dir().join("zero").to_str().unwrap(),
        ],
    );
    refused(&o, "0 shards");
    assert_eq!(o.status.code(), Some(2));
}
