//! Reading a gated dataset: the manifest is checked against the files first, so a model is never trained on data
//! that is not exactly what the gate wrote.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{TimestampMillisecondType, UInt8Type, UInt64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use consentry_gate::manifest::{MANIFEST_FILE, MEMBERS_FILE, Manifest};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::LearnError;

/// A dataset whose files were checked against its manifest.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Its directory.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// BLAKE3 of `manifest.json`, hex: what a model names as its input.
    pub manifest_hash: String,
}

impl Dataset {
    /// Opens `dir` after checking it is exactly what the gate wrote: every data file's size and BLAKE3, its rows
    /// and the table's row commitment (the gate's LtHash, [`consentry_gate::verify_files`]) against the manifest,
    /// no file the manifest does not list, the member bitmap against its commitment and the data files; a shard
    /// count of at least one; and consent evaluated no later than the dataset's creation and the present.
    pub fn open(dir: &Path) -> Result<Dataset, LearnError> {
        let bad = |message: String| LearnError::Dataset { dir: dir.to_path_buf(), message };
        let manifest = Manifest::read(dir)?;
        if manifest.partition.is_some() {
            return Err(bad("this is a partial result of `gate --partition`; run `consentry gate merge` first".into()));
        }
        if manifest.shard.shards == 0 {
            return Err(bad(
                "its manifest's shard function has 0 shards; the gate never writes that — materialise it again with \
                 `consentry gate`"
                    .into(),
            ));
        }
        if let Some(d) = manifest.time_differences(crate::train::now(), None).first() {
            return Err(bad(format!(
                "{d}; consent judged in the future does not hold today — materialise it again with `consentry gate`"
            )));
        }
        let (manifest_hash, _) = consentry_gate::hash_file(&dir.join(MANIFEST_FILE))?;
        let (checked, diffs) = consentry_gate::verify_files(dir)?;
        if checked != manifest {
            return Err(bad(format!("{MANIFEST_FILE} changed while it was being read; try again")));
        }
        if !diffs.is_empty() {
            let shown: Vec<String> = diffs.iter().take(3).map(ToString::to_string).collect();
            let more = if diffs.len() > 3 { format!(" (and {} more)", diffs.len() - 3) } else { String::new() };
            return Err(LearnError::Altered {
                dir: dir.to_path_buf(),
                message: format!(
                    "it does not match the manifest: {}{more}; the dataset was altered — materialise it again with \
                     `consentry gate`",
                    shown.join("; ")
                ),
            });
        }
        Ok(Dataset { dir: dir.to_path_buf(), manifest, manifest_hash })
    }

    /// Refuses a dataset gated for another purpose than `purpose`, which the `model` model trains on: consent is per
    /// purpose, so data gated for one must never train a model for another.
    pub fn require_purpose(&self, model: &str, purpose: &str) -> Result<(), LearnError> {
        if self.manifest.purpose == purpose {
            return Ok(());
        }
        Err(LearnError::Dataset {
            dir: self.dir.clone(),
            message: format!("it was gated for {}, but the {model} model needs {purpose}", self.manifest.purpose),
        })
    }

    /// The member bitmap of the dataset.
    pub fn members(&self) -> Result<roaring::RoaringTreemap, LearnError> {
        let path = self.dir.join(MEMBERS_FILE);
        let bytes = std::fs::read(&path).map_err(|e| LearnError::io(&path, e))?;
        roaring::RoaringTreemap::deserialize_from(&bytes[..])
            .map_err(|e| LearnError::Dataset { dir: self.dir.clone(), message: format!("{MEMBERS_FILE}: {e}") })
    }

    /// Whether the dataset has a table.
    pub fn has_table(&self, table: &str) -> bool {
        self.manifest.files.iter().any(|f| f.path.starts_with(&format!("{table}/")))
    }

    /// Reads `columns` of every file of `table` (in manifest order; callers sort what they read).
    pub fn read(&self, table: &str, columns: &[&str]) -> Result<Vec<RecordBatch>, LearnError> {
        let mut out = Vec::new();
        let prefix = format!("{table}/");
        let files: Vec<&str> =
            self.manifest.files.iter().filter(|f| f.path.starts_with(&prefix)).map(|f| f.path.as_str()).collect();
        if files.is_empty() {
            return Err(LearnError::Dataset {
                dir: self.dir.clone(),
                message: format!("it has no `{table}` table; is it the dataset of purpose {}?", self.manifest.purpose),
            });
        }
        for rel in files {
            let path = self.dir.join(rel);
            let bad =
                |message: String| LearnError::Dataset { dir: self.dir.clone(), message: format!("{rel}: {message}") };
            let file = File::open(&path).map_err(|e| LearnError::io(&path, e))?;
            let unreadable = |e: Box<dyn std::error::Error + Send + Sync>| LearnError::DatasetFile {
                dir: self.dir.clone(),
                file: rel.to_string(),
                source: e,
            };
            let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| unreadable(e.into()))?;
            let schema = builder.parquet_schema();
            let mut leaves = Vec::new();
            for c in columns {
                let found: Vec<usize> = (0..schema.num_columns())
                    .filter(|&i| schema.column(i).path().parts().first().is_some_and(|p| p == c))
                    .collect();
                if found.is_empty() {
                    return Err(bad(format!("missing column `{c}`; the purpose may not declare it")));
                }
                leaves.extend(found);
            }
            let mask = ProjectionMask::leaves(schema, leaves);
            let reader =
                builder.with_projection(mask).with_batch_size(65_536).build().map_err(|e| unreadable(e.into()))?;
            for batch in reader {
                out.push(batch.map_err(|e| unreadable(e.into()))?);
            }
        }
        Ok(out)
    }
}

fn column<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, LearnError> {
    b.column_by_name(name).ok_or_else(|| LearnError::Column { column: name.into(), message: "missing".into() })
}

fn wrong(name: &str, found: &DataType, expected: &str) -> LearnError {
    LearnError::Column { column: name.into(), message: format!("is {found}, expected {expected}") }
}

fn no_nulls(name: &str, a: &dyn Array) -> Result<(), LearnError> {
    if a.null_count() > 0 {
        return Err(LearnError::Column { column: name.into(), message: format!("has {} nulls", a.null_count()) });
    }
    Ok(())
}

/// A non-null `UInt64` column.
pub fn u64s(b: &RecordBatch, name: &str) -> Result<Vec<u64>, LearnError> {
    let a = column(b, name)?;
    let v = a.as_primitive_opt::<UInt64Type>().ok_or_else(|| wrong(name, a.data_type(), "UInt64"))?;
    no_nulls(name, v)?;
    Ok(v.values().to_vec())
}

/// A nullable `UInt64` column.
pub fn opt_u64s(b: &RecordBatch, name: &str) -> Result<Vec<Option<u64>>, LearnError> {
    let a = column(b, name)?;
    let v = a.as_primitive_opt::<UInt64Type>().ok_or_else(|| wrong(name, a.data_type(), "UInt64"))?;
    Ok(v.iter().collect())
}

/// A non-null `UInt8` column.
pub fn u8s(b: &RecordBatch, name: &str) -> Result<Vec<u8>, LearnError> {
    let a = column(b, name)?;
    let v = a.as_primitive_opt::<UInt8Type>().ok_or_else(|| wrong(name, a.data_type(), "UInt8"))?;
    no_nulls(name, v)?;
    Ok(v.values().to_vec())
}

/// A non-null millisecond timestamp column, as Unix milliseconds.
pub fn times(b: &RecordBatch, name: &str) -> Result<Vec<i64>, LearnError> {
    let a = column(b, name)?;
    let v = a
        .as_primitive_opt::<TimestampMillisecondType>()
        .ok_or_else(|| wrong(name, a.data_type(), "Timestamp(Millisecond)"))?;
    no_nulls(name, v)?;
    Ok(v.values().to_vec())
}

/// A string column; nulls read as empty strings.
pub fn strs(b: &RecordBatch, name: &str) -> Result<Vec<String>, LearnError> {
    let a = column(b, name)?;
    match a.data_type() {
        DataType::Utf8 => Ok(a.as_string::<i32>().iter().map(|s| s.unwrap_or("").to_string()).collect()),
        DataType::LargeUtf8 => Ok(a.as_string::<i64>().iter().map(|s| s.unwrap_or("").to_string()).collect()),
        DataType::Utf8View => Ok(a.as_string_view().iter().map(|s| s.unwrap_or("").to_string()).collect()),
        t => Err(wrong(name, t, "Utf8")),
    }
}

/// A list-of-strings column; nulls read as empty lists.
pub fn str_lists(b: &RecordBatch, name: &str) -> Result<Vec<Vec<String>>, LearnError> {
    let a = column(b, name)?;
    let l = a.as_list_opt::<i32>().ok_or_else(|| wrong(name, a.data_type(), "List<Utf8>"))?;
    let mut out = Vec::with_capacity(l.len());
    for i in 0..l.len() {
        if l.is_null(i) {
            out.push(Vec::new());
            continue;
        }
        let inner = l.value(i);
        let s = inner.as_string_opt::<i32>().ok_or_else(|| wrong(name, inner.data_type(), "List<Utf8>"))?;
        out.push(s.iter().flatten().map(str::to_string).collect());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::UInt64Array;
    use consentry_gate::manifest::*;
    use parquet::arrow::ArrowWriter;
    use std::sync::Arc;

    const PURPOSE: &str = "train_ai_system.job_recommendations";

    fn write_rows(path: &Path, ids: &[u64]) -> RecordBatch {
        let b =
            RecordBatch::try_from_iter([("member_id", Arc::new(UInt64Array::from(ids.to_vec())) as ArrayRef)]).unwrap();
        let mut w = ArrowWriter::try_new(File::create(path).unwrap(), b.schema(), None).unwrap();
        w.write(&b).unwrap();
        w.close().unwrap();
        b
    }

    /// A dataset of one table `t` holding rows for members 1 and 2, exactly as the gate would describe it.
    fn dataset(dir: &Path) -> Manifest {
        std::fs::create_dir_all(dir.join("t")).unwrap();
        let b = write_rows(&dir.join("t/part-00000.parquet"), &[1, 2]);
        let (blake3, bytes) = consentry_gate::hash_file(&dir.join("t/part-00000.parquet")).unwrap();
        let members: roaring::RoaringTreemap = [1u64, 2].into_iter().collect();
        let mut mb = Vec::new();
        members.serialize_into(&mut mb).unwrap();
        std::fs::write(dir.join(MEMBERS_FILE), &mb).unwrap();
        let now = crate::train::now();
        let table = TableStats {
            included: true,
            member_columns: vec!["member_id".into()],
            columns: vec!["member_id".into()],
            rows_out: 2,
            row_commitment: consentry_gate::commit::commit_batch("t", &b).unwrap().to_hex(),
            ..TableStats::default()
        };
        let m = Manifest {
            format: FORMAT,
            purpose: PURPOSE.into(),
            policy: PolicyRef { version: "1".into(), hash: "00".into() },
            ledger: LedgerRef { position: 1, at: now - 60, tree_root: "00".into(), checkpoint: None },
            snapshot: SnapshotRef { hash: "00".into(), allowed: 2, members: 2 },
            sources: SourcesRef { declaration: "test".into(), declaration_hash: "00".into(), files: Vec::new() },
            partition: None,
            tables: [("t".to_string(), table)].into_iter().collect(),
            rows_in: 2,
            rows_out: 2,
            excluded: Default::default(),
            redactions: Default::default(),
            redaction: RedactionRef { enabled: true, member_names: 0 },
            members: MemberSet {
                count: 2,
                commitment: blake3::hash(&mb).to_hex().to_string(),
                file: MEMBERS_FILE.into(),
            },
            shard: ShardFunction::for_purpose(PURPOSE, 2),
            files: vec![OutputFile { path: "t/part-00000.parquet".into(), blake3, bytes, rows: 2 }],
            tool: "test".into(),
            created: now - 30,
        };
        m.write(dir).unwrap();
        m
    }

    fn refusal(dir: &Path) -> String {
        Dataset::open(dir).unwrap_err().to_string()
    }

    #[test]
    fn rows_that_do_not_match_the_manifest_are_refused_even_with_the_file_hash_fixed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut m = dataset(d);
        Dataset::open(d).unwrap();
        // A row for member 3 added, the file's hash and size patched into the manifest.
        write_rows(&d.join("t/part-00000.parquet"), &[1, 2, 3]);
        let (blake3, bytes) = consentry_gate::hash_file(&d.join("t/part-00000.parquet")).unwrap();
        m.files[0].blake3 = blake3;
        m.files[0].bytes = bytes;
        m.write(d).unwrap();
        let e = refusal(d);
        assert!(e.contains("does not match the manifest") && e.contains("rows"), "{e}");
    }

    #[test]
    fn zero_shards_and_future_evaluation_times_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let m = dataset(d);
        let mut zero = m.clone();
        zero.shard.shards = 0;
        zero.write(d).unwrap();
        assert!(refusal(d).contains("0 shards"));
        let mut future = m.clone();
        future.ledger.at = 4_102_444_800;
        future.write(d).unwrap();
        let e = refusal(d);
        assert!(e.contains("evaluation time") && e.contains("2100-01-01"), "{e}");
        let mut later = m;
        later.ledger.at = later.created + 3600;
        later.write(d).unwrap();
        assert!(refusal(d).contains("dataset's creation"));
    }
}
