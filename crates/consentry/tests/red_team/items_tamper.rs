//! Tampering aimed at items models (`train --model items --table T --item-column C`), which read whichever table
//! and column they are told: a table renamed inside a gated dataset (so a model names a table the gate never
//! wrote), and a column edited after gating (item ids pointed elsewhere, the manifest re-forged to match). Every
//! attempt must be refused by training and caught by `gate verify`.

use super::common::{consentry, text};
use super::{b3, fresh, read_json, refused};
use arrow_array::{ArrayRef, RecordBatch, UInt64Array};
use consentry_app::DataDir;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn jobs_dataset(data: &Path) -> PathBuf {
    DataDir::new(data).datasets_dir().join("job_recommendations")
}

fn write_json(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_vec_pretty(v).expect("serialises")).expect("writable");
}

/// `train --model items` on the jobs dataset into `out` (registered unless `extra` says otherwise).
fn train_items(data: &Path, out: &Path, table: &str, extra: &[&str]) -> std::process::Output {
    let ds = jobs_dataset(data);
    let mut args = vec![
        "train",
        "--model",
        "items",
        "--dataset",
        ds.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
        "--table",
        table,
        "--item-column",
        "job_id",
    ];
    args.extend_from_slice(extra);
    consentry(data, &args)
}

/// `gate verify` on the jobs dataset must exit 1 (differences found), naming `needle`.
fn verify_fails(data: &Path, needle: &str) {
    let ds = jobs_dataset(data);
    let o = consentry(data, &["gate", "verify", ds.to_str().expect("utf-8")]);
    let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "gate verify must fail: {all}");
    assert!(all.contains(needle), "gate verify does not mention `{needle}`: {all}");
}

#[test]
fn a_table_renamed_in_a_dataset_is_never_trained_on() {
    let (_t, data) = fresh();
    let ds = jobs_dataset(&data);
    // The insider renames the activity table and rewrites the manifest to match: paths and the table's entry.
    std::fs::rename(ds.join("job_activity"), ds.join("job_views")).expect("renamed");
    let mpath = ds.join("manifest.json");
    let mut m = read_json(&mpath);
    for f in m["files"].as_array_mut().expect("files") {
        let p = f["path"].as_str().expect("a path").replace("job_activity/", "job_views/");
        f["path"] = p.into();
    }
    let tables = m["tables"].as_object_mut().expect("tables");
    let t = tables.remove("job_activity").expect("the activity table");
    tables.insert("job_views".into(), t);
    write_json(&mpath, &m);
    let out = DataDir::new(&data).models_dir().join("evil");
    // Registered: not the dataset the gate registered. Unregistered: the row commitment is keyed by the table's name,
    // so the renamed rows do not match it.
    for (extra, needle) in
        [(&[][..], "not one the registry holds"), (&["--no-register"][..], "does not match the manifest")]
    {
        refused(&train_items(&data, &out, "job_views", extra), needle);
        assert!(!out.exists(), "a refused training leaves no model directory");
    }
    verify_fails(&data, "job_views");
}

#[test]
fn a_column_edited_after_gating_is_never_trained_on() {
    let (_t, data) = fresh();
    let ds = jobs_dataset(&data);
    let rel = "job_activity/part-00000.parquet";
    let path = ds.join(rel);
    // Every job id pointed at one job, the file rewritten and its hash and size patched into the manifest.
    let f = std::fs::File::open(&path).expect("the dataset's parquet");
    let batches: Vec<RecordBatch> = ParquetRecordBatchReaderBuilder::try_new(f)
        .expect("parquet")
        .build()
        .expect("reader")
        .collect::<Result<_, _>>()
        .expect("batches");
    let edited: Vec<RecordBatch> = batches
        .iter()
        .map(|b| {
            let cols: Vec<ArrayRef> = b
                .schema()
                .fields()
                .iter()
                .zip(b.columns())
                .map(|(field, c)| {
                    if field.name() == "job_id" {
                        Arc::new(UInt64Array::from(vec![1u64; b.num_rows()])) as ArrayRef
                    } else {
                        c.clone()
                    }
                })
                .collect();
            RecordBatch::try_new(b.schema(), cols).expect("the edited batch")
        })
        .collect();
    let mut w = ArrowWriter::try_new(std::fs::File::create(&path).expect("rewritable"), edited[0].schema(), None)
        .expect("writer");
    for b in &edited {
        w.write(b).expect("written");
    }
    w.close().expect("closed");
    let bytes = std::fs::read(&path).expect("the file");
    let mpath = ds.join("manifest.json");
    let mut m = read_json(&mpath);
    let entry = m["files"].as_array_mut().expect("files").iter_mut().find(|f| f["path"] == rel).expect("listed");
    entry["blake3"] = b3(&bytes).into();
    entry["bytes"] = (bytes.len() as u64).into();
    write_json(&mpath, &m);
    let out = DataDir::new(&data).models_dir().join("evil");
    for (extra, needle) in
        [(&[][..], "not one the registry holds"), (&["--no-register"][..], "does not match the manifest")]
    {
        refused(&train_items(&data, &out, "job_activity", extra), needle);
        assert!(!out.exists(), "a refused training leaves no model directory");
    }
    // Re-forging the row commitment too makes the files agree with the manifest, but not with a recomputation.
    let mut lt = consentry_gate::LtHash::new();
    let key = consentry_gate::commit::schema_key("job_activity", &edited[0].schema()).expect("schema key");
    for b in &edited {
        consentry_gate::commit::add_batch(&mut lt, &key, b).expect("committed");
    }
    m["tables"]["job_activity"]["row_commitment"] = lt.to_hex().into();
    write_json(&mpath, &m);
    let (_, diffs) = consentry_gate::verify_files(&ds).expect("verifiable");
    assert!(diffs.is_empty(), "the forgery matches the manifest: {diffs:?}");
    refused(&train_items(&data, &out, "job_activity", &[]), "not one the registry holds");
    assert!(!out.exists(), "a refused training leaves no model directory");
    verify_fails(&data, "job_activity");
}
