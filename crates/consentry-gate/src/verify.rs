//! Verification: a dataset is exactly what the rules produce.
//!
//! [`verify_files`] checks the directory against its manifest (every file's
//! hash, no extra files, the member bitmap, and the rows and row commitment
//! recomputed from the data files). [`verify_recompute`] re-runs the rules
//! from the ledger snapshot at the manifest's position and the sources,
//! without writing, and compares every count and commitment.

use crate::GateError;
use crate::commit::{self, LtHash};
use crate::manifest::*;
use crate::materialize::{GateRequest, NoProgress, materialize};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, UInt32Type, UInt64Type};
use arrow_array::{Array, ArrayRef, RecordBatchReader};
use arrow_schema::DataType;
use consentry_ledger::Store;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use roaring::RoaringTreemap;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One way the dataset differs from what it should be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// What differs (a manifest field or a file).
    pub what: String,
    /// What the manifest says.
    pub expected: String,
    /// What was found.
    pub found: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: manifest says {}, found {}", self.what, self.expected, self.found)
    }
}

fn diff(out: &mut Vec<Difference>, what: impl Into<String>, expected: impl ToString, found: impl ToString) {
    let (e, f) = (expected.to_string(), found.to_string());
    if e != f {
        out.push(Difference { what: what.into(), expected: e, found: f });
    }
}

fn short(s: &str) -> String {
    if s.len() > 64 {
        // The first 16 characters, not bytes: the text comes from a manifest and need not be ASCII hex.
        let head: String = s.chars().take(16).collect();
        format!("{head}… (BLAKE3 {})", &blake3::hash(s.as_bytes()).to_hex()[..16])
    } else {
        s.into()
    }
}

fn ids(a: &ArrayRef) -> Vec<u64> {
    match a.data_type() {
        DataType::UInt64 => a.as_primitive::<UInt64Type>().iter().flatten().collect(),
        DataType::UInt32 => a.as_primitive::<UInt32Type>().iter().flatten().map(u64::from).collect(),
        DataType::Int64 => {
            a.as_primitive::<Int64Type>().iter().flatten().filter_map(|x| u64::try_from(x).ok()).collect()
        }
        DataType::Int32 => {
            a.as_primitive::<Int32Type>().iter().flatten().filter_map(|x| u64::try_from(x).ok()).collect()
        }
        _ => Vec::new(),
    }
}

/// Checks the files on disk against the manifest; returns the manifest and every difference.
pub fn verify_files(dir: &Path) -> Result<(Manifest, Vec<Difference>), GateError> {
    let m = Manifest::read(dir)?;
    let mut out = Vec::new();
    // Every listed file, with its hash; nothing else.
    let mut expected: BTreeSet<String> = m.files.iter().map(|f| f.path.clone()).collect();
    expected.insert(MANIFEST_FILE.into());
    expected.insert(MEMBERS_FILE.into());
    // Never follows a link: one would let the check leave the dataset or loop.
    let found: BTreeSet<String> = crate::fsguard::walk_files(dir)?.into_iter().collect();
    for extra in found.difference(&expected) {
        diff(&mut out, format!("file {extra}"), "absent", "present");
    }
    let mut tables: BTreeMap<String, (u64, LtHash)> = BTreeMap::new();
    let mut members = RoaringTreemap::new();
    for f in &m.files {
        let path = crate::fsguard::inside(dir, &f.path)?;
        if !path.exists() {
            diff(&mut out, format!("file {}", f.path), "present", "absent");
            continue;
        }
        let (h, bytes) = crate::hash_file(&path)?;
        diff(&mut out, format!("file {} BLAKE3", f.path), &f.blake3, &h);
        diff(&mut out, format!("file {} size", f.path), f.bytes, bytes);
        let table = f.path.split('/').next().unwrap_or_default().to_string();
        let member_cols = m.tables.get(&table).map(|t| t.member_columns.clone()).unwrap_or_default();
        let read = (|| -> Result<(u64, LtHash), GateError> {
            let file = std::fs::File::open(&path).map_err(|e| GateError::io(&path, e))?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .map_err(|e| GateError::parquet(&path, e))?
                .build()
                .map_err(|e| GateError::parquet(&path, e))?;
            let key = commit::schema_key(&table, &reader.schema())?;
            let (mut rows, mut lt) = (0u64, LtHash::new());
            for b in reader {
                let b = b.map_err(|e| GateError::parquet(&path, e))?;
                rows += b.num_rows() as u64;
                commit::add_batch(&mut lt, &key, &b)?;
                for c in &member_cols {
                    if let Some(col) = b.column_by_name(c) {
                        members.extend(ids(col));
                    }
                }
            }
            Ok((rows, lt))
        })();
        match read {
            Ok((rows, lt)) => {
                diff(&mut out, format!("file {} rows", f.path), f.rows, rows);
                let e = tables.entry(table).or_default();
                e.0 += rows;
                e.1.merge(&lt);
            }
            Err(e) => diff(&mut out, format!("file {}", f.path), "a readable Parquet file", e),
        }
    }
    for (name, t) in &m.tables {
        let (rows, lt) = tables.remove(name).unwrap_or_default();
        diff(&mut out, format!("table {name} rows in the files"), t.rows_out, rows);
        diff(
            &mut out,
            format!("table {name} row commitment of the files"),
            short(&t.row_commitment),
            short(&lt.to_hex()),
        );
    }
    for name in tables.keys() {
        diff(&mut out, format!("table {name}"), "absent from the manifest", "data files");
    }
    let mpath = dir.join(MEMBERS_FILE);
    match std::fs::read(&mpath) {
        Ok(bytes) => {
            diff(&mut out, "members.roaring BLAKE3", &m.members.commitment, blake3::hash(&bytes).to_hex());
            match RoaringTreemap::deserialize_from(&bytes[..]) {
                Ok(stored) => {
                    diff(&mut out, "member count", m.members.count, stored.len());
                    if stored != members {
                        diff(
                            &mut out,
                            "members in the data files",
                            "the stored bitmap",
                            format!("{} members, a different set", members.len()),
                        );
                    }
                }
                Err(e) => diff(&mut out, "members.roaring", "a roaring bitmap", e),
            }
        }
        Err(e) => diff(&mut out, "members.roaring", "present", e),
    }
    Ok((m, out))
}

/// The manifest's evaluation and creation times against `now` and the log in `store` (see
/// [`Manifest::time_differences`]): a dataset evaluated in the future, or after the log had moved on past its
/// position, fails verification.
pub fn verify_times(m: &Manifest, store: &dyn Store, now: i64) -> Result<Vec<Difference>, GateError> {
    let next = match m.ledger.position.checked_add(1) {
        Some(seq) => store
            .entry(seq)
            .map_err(|e| GateError::Invalid(format!("reading entry {seq} of the ledger: {e}")))?
            .map(|e| e.entry.recorded_time()),
        None => None,
    };
    Ok(m.time_differences(now, next))
}

/// Re-runs the rules (no writing) and compares with the manifest. `req` must hold the snapshot at the manifest's position and time.
///
/// A manifest evaluated after its creation is reported as such and not recomputed (the gate refuses to build one).
pub fn verify_recompute(m: &Manifest, mut req: GateRequest<'_>) -> Result<Vec<Difference>, GateError> {
    let mut out = m.time_differences(consentry_ledger::now(), None);
    if !out.is_empty() {
        return Ok(out);
    }
    if m.shard.shards == 0 {
        diff(&mut out, "shard count", "at least 1", 0);
        return Ok(out);
    }
    req.options.partition = m.partition.map(|p| (p.index, p.count));
    req.options.shards = m.shard.shards;
    let r = materialize(&req, None, &NoProgress)?.manifest;
    diff(&mut out, "purpose", &m.purpose, &r.purpose);
    diff(&mut out, "policy version", &m.policy.version, &r.policy.version);
    diff(&mut out, "policy hash", &m.policy.hash, &r.policy.hash);
    diff(&mut out, "ledger position", m.ledger.position, r.ledger.position);
    diff(&mut out, "ledger time", m.ledger.at, r.ledger.at);
    diff(&mut out, "ledger tree root", &m.ledger.tree_root, &r.ledger.tree_root);
    diff(&mut out, "snapshot hash", &m.snapshot.hash, &r.snapshot.hash);
    diff(&mut out, "snapshot allowed", m.snapshot.allowed, r.snapshot.allowed);
    diff(&mut out, "declaration hash", &m.sources.declaration_hash, &r.sources.declaration_hash);
    let src = |v: &[SourceFile]| v.iter().map(|f| (f.path.clone(), f.blake3.clone())).collect::<BTreeMap<_, _>>();
    let (a, b) = (src(&m.sources.files), src(&r.sources.files));
    for (p, h) in &a {
        diff(&mut out, format!("source {p}"), h, b.get(p).map_or("absent", String::as_str));
    }
    for p in b.keys().filter(|p| !a.contains_key(*p)) {
        diff(&mut out, format!("source {p}"), "absent", "present");
    }
    for (name, t) in &m.tables {
        let Some(u) = r.tables.get(name) else {
            diff(&mut out, format!("table {name}"), "declared", "absent from the sources");
            continue;
        };
        diff(&mut out, format!("table {name} included"), t.included, u.included);
        diff(&mut out, format!("table {name} columns"), t.columns.join(","), u.columns.join(","));
        diff(&mut out, format!("table {name} rows in"), t.rows_in, u.rows_in);
        diff(&mut out, format!("table {name} rows out"), t.rows_out, u.rows_out);
        diff(&mut out, format!("table {name} excluded"), fmt_map(&t.excluded), fmt_map(&u.excluded));
        diff(&mut out, format!("table {name} parties dropped"), t.parties_dropped, u.parties_dropped);
        diff(&mut out, format!("table {name} redactions"), fmt_map(&t.redactions), fmt_map(&u.redactions));
        diff(&mut out, format!("table {name} row commitment"), short(&t.row_commitment), short(&u.row_commitment));
    }
    for name in r.tables.keys().filter(|n| !m.tables.contains_key(*n)) {
        diff(&mut out, format!("table {name}"), "absent", "declared in the sources");
    }
    diff(&mut out, "member count", m.members.count, r.members.count);
    diff(&mut out, "member-set commitment", &m.members.commitment, &r.members.commitment);
    diff(&mut out, "shard function", format!("{:?}", m.shard), format!("{:?}", r.shard));
    Ok(out)
}

fn fmt_map(m: &BTreeMap<String, u64>) -> String {
    let v: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", v.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found with the `manifest` fuzz harness: a manifest whose row commitment is over 64 bytes with a multi-byte
    /// character across byte 16 made `gate verify` panic ("byte index 16 is not a char boundary"); it is a
    /// difference like any other. The whole manifest is in `fuzz/corpus/manifest/regression-short-commitment`.
    #[test]
    fn a_long_non_ascii_commitment_is_shortened_on_a_char_boundary() {
        let s = format!("{}é{}", "a".repeat(15), "b".repeat(60));
        let out = short(&s);
        assert!(out.starts_with(&format!("{}é… (BLAKE3 ", "a".repeat(15))), "{out}");
        let hex = "0".repeat(64);
        assert_eq!(short(&hex), hex, "a BLAKE3 hex stays whole");
    }
}
