//! Reading generated tables back, with errors that name the file and column.

use crate::SynthError;
use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, TimestampMillisecondType, UInt32Type, UInt64Type};
use arrow_array::{Array, RecordBatch};
use chrono::NaiveDate;
use consentry_policy::{Action, Source};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::fs::File;
use std::path::Path;

/// The member facts consent evaluation needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    /// Member id.
    pub member_id: u64,
    /// `US-CA`, `DE`, …
    pub jurisdiction: String,
    /// Date of birth.
    pub birth_date: NaiveDate,
}

/// One consent event from `consent_choices.parquet`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChoiceRow {
    /// Member id.
    pub member_id: u64,
    /// Purpose key.
    pub purpose: String,
    /// Grant or withdraw.
    pub action: Action,
    /// Notice version shown.
    pub notice_version: u32,
    /// Where it came from.
    pub source: Source,
    /// Who recorded it (`member:42`, `gpc-signal`, …).
    pub actor: String,
    /// Event time, Unix seconds.
    pub event_time: i64,
}

/// Calls `f` with every batch of a Parquet table.
fn for_each_batch(
    path: &Path,
    mut f: impl FnMut(&RecordBatch, usize) -> Result<(), SynthError>,
) -> Result<(), SynthError> {
    let file = File::open(path).map_err(|e| SynthError::io(path, e))?;
    let bad =
        |e: Box<dyn std::error::Error + Send + Sync>| SynthError::ParquetFile { path: path.to_path_buf(), source: e };
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.with_batch_size(64 * 1024).build())
        .map_err(|e| bad(e.into()))?;
    let mut offset = 0;
    for batch in reader {
        let batch = batch.map_err(|e| bad(e.into()))?;
        f(&batch, offset)?;
        offset += batch.num_rows();
    }
    Ok(())
}

fn column<'a>(
    path: &Path,
    batch: &'a RecordBatch,
    name: &str,
    expected: &'static str,
) -> Result<&'a dyn Array, SynthError> {
    batch.column_by_name(name).map(|c| c.as_ref()).ok_or_else(|| SynthError::Schema {
        path: path.to_path_buf(),
        column: name.to_string(),
        expected,
    })
}

macro_rules! typed {
    ($path:expr, $batch:expr, $name:expr, $as:ident, $ty:ty, $label:expr) => {{
        let c = column($path, $batch, $name, $label)?;
        c.$as::<$ty>().ok_or_else(|| SynthError::Schema {
            path: $path.to_path_buf(),
            column: $name.to_string(),
            expected: $label,
        })?
    }};
}

fn strings<'a>(path: &Path, batch: &'a RecordBatch, name: &str) -> Result<&'a arrow_array::StringArray, SynthError> {
    column(path, batch, name, "Utf8")?.as_string_opt::<i32>().ok_or_else(|| SynthError::Schema {
        path: path.to_path_buf(),
        column: name.to_string(),
        expected: "Utf8",
    })
}

/// Reads the member facts of `members.parquet` in `dir`.
pub fn read_members(dir: &Path) -> Result<Vec<MemberRow>, SynthError> {
    read_members_file(&dir.join("members.parquet"))
}

/// Reads the member facts of a members table (the schema of `members.parquet`) at any path.
pub fn read_members_file(path: &Path) -> Result<Vec<MemberRow>, SynthError> {
    let path = path.to_path_buf();
    let mut out = Vec::new();
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    for_each_batch(&path, |b, offset| {
        let ids = typed!(&path, b, "member_id", as_primitive_opt, UInt64Type, "UInt64");
        let jur = strings(&path, b, "jurisdiction")?;
        let birth = typed!(&path, b, "birth_date", as_primitive_opt, Date32Type, "Date32");
        for i in 0..b.num_rows() {
            // Days since the epoch from the file: out of chrono's date range is a bad value, not a panic.
            let days = birth.value(i);
            let birth_date =
                epoch.checked_add_signed(chrono::Duration::days(i64::from(days))).ok_or_else(|| SynthError::Value {
                    path: path.clone(),
                    row: offset + i,
                    message: format!("birth_date is {days} days from 1970-01-01, outside the calendar"),
                })?;
            out.push(MemberRow { member_id: ids.value(i), jurisdiction: jur.value(i).to_string(), birth_date });
        }
        Ok(())
    })?;
    Ok(out)
}

/// Reads every event of `consent_choices.parquet` in `dir`.
pub fn read_consent_choices(dir: &Path) -> Result<Vec<ChoiceRow>, SynthError> {
    read_consent_choices_file(&dir.join("consent_choices.parquet"))
}

/// Reads every event of a consent-choices table (the schema of `consent_choices.parquet`) at any path.
pub fn read_consent_choices_file(path: &Path) -> Result<Vec<ChoiceRow>, SynthError> {
    let path = path.to_path_buf();
    let mut out = Vec::new();
    for_each_batch(&path, |b, offset| {
        let ids = typed!(&path, b, "member_id", as_primitive_opt, UInt64Type, "UInt64");
        let purpose = strings(&path, b, "purpose")?;
        let action = strings(&path, b, "action")?;
        let version = typed!(&path, b, "notice_version", as_primitive_opt, UInt32Type, "UInt32");
        let source = strings(&path, b, "source")?;
        let actor = strings(&path, b, "actor")?;
        let time = typed!(&path, b, "event_time", as_primitive_opt, TimestampMillisecondType, "Timestamp(Millisecond)");
        for i in 0..b.num_rows() {
            let bad = |message: String| SynthError::Value { path: path.clone(), row: offset + i, message };
            out.push(ChoiceRow {
                member_id: ids.value(i),
                purpose: purpose.value(i).to_string(),
                action: Action::parse(action.value(i))
                    .ok_or_else(|| bad(format!("action `{}` is neither `grant` nor `withdraw`", action.value(i))))?,
                notice_version: version.value(i),
                source: Source::parse(source.value(i)).ok_or_else(|| {
                    bad(format!("source `{}` is not one of ui, api, gpc, import, erasure", source.value(i)))
                })?,
                actor: actor.value(i).to_string(),
                event_time: time.value(i).div_euclid(1000),
            });
        }
        Ok(())
    })?;
    Ok(out)
}

/// Reads `messages_truth.parquet` in `dir`: per message id, what a reply to it is drawn conditional on (the reply
/// oracle's ground truth, for benchmarks; see [`crate::text::reply_intent_distribution`]).
pub fn read_reply_conditions(
    dir: &Path,
) -> Result<std::collections::HashMap<u64, crate::text::ReplyCondition>, SynthError> {
    let path = dir.join("messages_truth.parquet");
    let mut out = std::collections::HashMap::new();
    for_each_batch(&path, |b, offset| {
        let ids = typed!(&path, b, "message_id", as_primitive_opt, UInt64Type, "UInt64");
        let kind = strings(&path, b, "kind")?;
        let label = strings(&path, b, "label")?;
        for i in 0..b.num_rows() {
            let cond = crate::text::ReplyCondition::from_truth(kind.value(i), label.value(i)).ok_or_else(|| {
                SynthError::Value {
                    path: path.clone(),
                    row: offset + i,
                    message: format!("`{}`/`{}` names no opening kind or reply intent", kind.value(i), label.value(i)),
                }
            })?;
            out.insert(ids.value(i), cond);
        }
        Ok(())
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `ledger_import` fuzz target: a birth date beyond chrono's calendar (`i32::MAX` days after
    /// 1970) panicked with "`NaiveDate + TimeDelta` overflowed"; it is a bad value naming file and row.
    #[test]
    fn a_birth_date_outside_the_calendar_is_refused_not_a_panic() {
        use arrow_array::{ArrayRef, Date32Array, RecordBatch, StringArray, UInt64Array};
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("members.parquet");
        let cols: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from(vec![1u64, 2])),
            Arc::new(StringArray::from(vec!["DE", "DE"])),
            Arc::new(Date32Array::from(vec![0, i32::MAX])),
        ];
        let batch =
            RecordBatch::try_from_iter(["member_id", "jurisdiction", "birth_date"].into_iter().zip(cols)).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(File::create(&path).unwrap(), batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let e = read_members_file(&path).unwrap_err();
        assert!(matches!(e, SynthError::Value { row: 1, .. }), "{e}");
        assert!(e.to_string().contains("outside the calendar"), "{e}");
        // The fuzzer's input: fuzz/corpus/ledger_import/regression-birth-date-overflow (mode 1, rows from the rest).
    }

    /// A file that is not Parquet is named, and the reader's error stays reachable as the source.
    #[test]
    fn an_unreadable_file_keeps_the_parquet_error_as_its_source() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("members.parquet");
        std::fs::write(&path, b"not parquet at all").unwrap();
        let e = read_members_file(&path).unwrap_err();
        assert!(matches!(e, SynthError::ParquetFile { .. }), "{e}");
        let source = std::error::Error::source(&e).expect("the reader's error as source");
        assert!(source.downcast_ref::<parquet::errors::ParquetError>().is_some(), "{source:?}");
        assert!(e.to_string().contains("members.parquet"), "{e}");
    }
}
