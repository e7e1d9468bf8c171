//! A member's own rows of a declared source table, for showing them what the platform holds about them (the
//! privacy centre's "your data"): only rows in which one of the table's declared member-id columns is the member,
//! only the columns asked for, free-text columns redacted exactly as the gate redacts them for training.
//!
//! Two passes per file: the member-id columns alone find the member's rows, then only those rows (the first few the
//! caller keeps) are decoded for the asked columns. The cost is one scan of the member-id columns of each table per
//! call; at platform scale that wants an index by member (or a per-member cache), not a scan per request.

use crate::GateError;
use crate::materialize::{member_ids, redact_text};
use crate::sources::TableDecl;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, TimeUnit};
use consentry_redact::Detector;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReaderBuilder, RowSelection};
use std::path::Path;

/// The longest value rendered, in characters; longer text is cut with `…`.
pub const MAX_VALUE_CHARS: usize = 80;

/// What one table holds about one member.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnRows {
    /// Rows in which the member is any of the declared parties (sender or recipient, either side of a connection).
    pub rows: u64,
    /// The columns asked for, in the table's own order (its first file's schema).
    pub columns: Vec<String>,
    /// The first rows of which the member is the subject (the first declared member column), at most the number
    /// asked for: per column of `columns`, its value as short text (none for null). Free-text columns
    /// are redacted; other members' ids are never among them (member-id columns cannot be asked for).
    pub samples: Vec<Vec<Option<String>>>,
}

/// Reads what `table` holds about `member`: every row of theirs counted, the first `keep` rows of which they are the
/// subject rendered for `columns` (declared data columns of the table), free text redacted by `detector` (without one,
/// free text is never shown: its values come back as none).
pub fn own_rows(
    table: &TableDecl,
    member: u64,
    columns: &[String],
    keep: usize,
    detector: Option<&Detector>,
) -> Result<OwnRows, GateError> {
    if table.members.is_empty() {
        return Ok(OwnRows::default());
    }
    if let Some(c) = columns.iter().find(|c| !table.columns.contains_key(c.as_str())) {
        return Err(GateError::Invalid(format!(
            "table `{}`: `{c}` is not a declared data column (a member id is never shown)",
            table.name
        )));
    }
    let files = table.files()?;
    let mut columns = columns.to_vec();
    if let Some(first) = files.first() {
        let b = builder(first)?;
        columns.sort_by_key(|c| b.schema().index_of(c).unwrap_or(usize::MAX));
    }
    let mut out = OwnRows { columns, ..OwnRows::default() };
    for path in &files {
        let wanted = keep.saturating_sub(out.samples.len());
        let (rows, subject_rows) = find_rows(table, path, member, wanted)?;
        out.rows += rows;
        if !subject_rows.is_empty() && !out.columns.is_empty() {
            out.samples.extend(read_rows(table, path, &subject_rows, &out.columns, detector)?);
        }
    }
    Ok(out)
}

fn builder(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<std::fs::File>, GateError> {
    let file = std::fs::File::open(path).map_err(|e| GateError::io(path, e))?;
    ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| GateError::parquet(path, e))
}

/// Column indexes of `names` in the file's schema, checked against the declaration.
fn indexes(
    table: &TableDecl,
    path: &Path,
    schema: &arrow_schema::Schema,
    names: &[&str],
) -> Result<Vec<usize>, GateError> {
    table.check_schema(path, schema)?;
    names
        .iter()
        .map(|c| {
            schema.index_of(c).map_err(|_| GateError::MissingColumn {
                path: path.to_path_buf(),
                table: table.name.clone(),
                column: c.to_string(),
            })
        })
        .collect()
}

/// Counts the member's rows in one file; the positions of the first `keep` rows they are the subject of.
fn find_rows(table: &TableDecl, path: &Path, member: u64, keep: usize) -> Result<(u64, Vec<usize>), GateError> {
    let b = builder(path)?;
    let names: Vec<&str> = table.members.iter().map(|m| m.column.as_str()).collect();
    let idx = indexes(table, path, b.schema(), &names)?;
    let mask = ProjectionMask::roots(b.parquet_schema(), idx.iter().copied());
    // The projection keeps the file's column order: find each member column in the batch by name.
    let reader = b.with_projection(mask).build().map_err(|e| GateError::parquet(path, e))?;
    let (mut rows, mut subject, mut offset) = (0u64, Vec::new(), 0usize);
    for batch in reader {
        let batch = batch.map_err(|e| GateError::parquet(path, e))?;
        let ids: Vec<Vec<Option<u64>>> = names
            .iter()
            .map(|n| batch.column_by_name(n).map(member_ids).unwrap_or_else(|| vec![None; batch.num_rows()]))
            .collect();
        for r in 0..batch.num_rows() {
            if ids.iter().any(|col| col[r] == Some(member)) {
                rows += 1;
                if ids[0][r] == Some(member) && subject.len() < keep {
                    subject.push(offset + r);
                }
            }
        }
        offset += batch.num_rows();
    }
    Ok((rows, subject))
}

/// Decodes only the rows at `positions` (ascending) of one file, for `columns`.
fn read_rows(
    table: &TableDecl,
    path: &Path,
    positions: &[usize],
    columns: &[String],
    detector: Option<&Detector>,
) -> Result<Vec<Vec<Option<String>>>, GateError> {
    let b = builder(path)?;
    // The positions were read from this file; a footer claiming fewer rows must not make the selection panic.
    let last = positions.last().map_or(0, |p| p + 1);
    let total = usize::try_from(b.metadata().file_metadata().num_rows()).unwrap_or(0).max(last);
    let names: Vec<&str> = columns.iter().map(String::as_str).collect();
    let idx = indexes(table, path, b.schema(), &names)?;
    let mask = ProjectionMask::roots(b.parquet_schema(), idx.iter().copied());
    let selection = RowSelection::from_consecutive_ranges(positions.iter().map(|&p| p..p + 1), total);
    let reader =
        b.with_projection(mask).with_row_selection(selection).build().map_err(|e| GateError::parquet(path, e))?;
    let mut out = Vec::with_capacity(positions.len());
    for batch in reader {
        let batch = batch.map_err(|e| GateError::parquet(path, e))?;
        for r in 0..batch.num_rows() {
            let row = names
                .iter()
                .map(|n| {
                    let col = batch.column_by_name(n)?;
                    let text = display(col, r)?;
                    if table.redact.contains(*n) {
                        detector.map(|d| shorten(&redact_text(d, &text)))
                    } else {
                        Some(shorten(&text))
                    }
                })
                .collect();
            out.push(row);
        }
    }
    Ok(out)
}

/// `s` cut to [`MAX_VALUE_CHARS`] characters (on a character boundary), with `…` when cut.
pub fn shorten(s: &str) -> String {
    match s.char_indices().nth(MAX_VALUE_CHARS) {
        Some((at, _)) => format!("{}…", s[..at].trim_end()),
        None => s.to_string(),
    }
}

/// One value as short text for people: numbers as written, dates as `YYYY-MM-DD`, times as RFC 3339 UTC, lists
/// joined by `, `; none for null.
pub fn display(a: &ArrayRef, i: usize) -> Option<String> {
    if i >= a.len() || a.is_null(i) {
        return None;
    }
    let time = |secs: i64, nanos: u32| {
        chrono::DateTime::from_timestamp(secs, nanos)
            .map_or_else(|| format!("{secs}"), |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
    };
    Some(match a.data_type() {
        DataType::Utf8 => a.as_string::<i32>().value(i).to_string(),
        DataType::LargeUtf8 => a.as_string::<i64>().value(i).to_string(),
        DataType::Boolean => a.as_boolean().value(i).to_string(),
        DataType::UInt8 => a.as_primitive::<UInt8Type>().value(i).to_string(),
        DataType::UInt16 => a.as_primitive::<UInt16Type>().value(i).to_string(),
        DataType::UInt32 => a.as_primitive::<UInt32Type>().value(i).to_string(),
        DataType::UInt64 => a.as_primitive::<UInt64Type>().value(i).to_string(),
        DataType::Int8 => a.as_primitive::<Int8Type>().value(i).to_string(),
        DataType::Int16 => a.as_primitive::<Int16Type>().value(i).to_string(),
        DataType::Int32 => a.as_primitive::<Int32Type>().value(i).to_string(),
        DataType::Int64 => a.as_primitive::<Int64Type>().value(i).to_string(),
        DataType::Float32 => a.as_primitive::<Float32Type>().value(i).to_string(),
        DataType::Float64 => a.as_primitive::<Float64Type>().value(i).to_string(),
        DataType::Date32 => {
            let days = i64::from(a.as_primitive::<Date32Type>().value(i));
            time(days * 86_400, 0).split('T').next().unwrap_or_default().to_string()
        }
        DataType::Date64 => {
            let ms = a.as_primitive::<Date64Type>().value(i);
            time(ms.div_euclid(1000), 0).split('T').next().unwrap_or_default().to_string()
        }
        DataType::Timestamp(unit, _) => {
            let (v, per) = match unit {
                TimeUnit::Second => (a.as_primitive::<TimestampSecondType>().value(i), 1),
                TimeUnit::Millisecond => (a.as_primitive::<TimestampMillisecondType>().value(i), 1_000),
                TimeUnit::Microsecond => (a.as_primitive::<TimestampMicrosecondType>().value(i), 1_000_000),
                TimeUnit::Nanosecond => (a.as_primitive::<TimestampNanosecondType>().value(i), 1_000_000_000),
            };
            time(v.div_euclid(per), 0)
        }
        DataType::List(_) => list(&a.as_list::<i32>().value(i)),
        DataType::LargeList(_) => list(&a.as_list::<i64>().value(i)),
        other => format!("({other} value)"),
    })
}

fn list(items: &ArrayRef) -> String {
    (0..items.len()).filter_map(|j| display(items, j)).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, RecordBatch, StringArray, UInt64Array};
    use arrow_schema::{Field, Schema};
    use std::sync::Arc;

    fn write(path: &Path) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("sender_id", DataType::UInt64, false),
            Field::new("recipient_id", DataType::Int64, true),
            Field::new("text", DataType::Utf8, true),
            Field::new("tags", DataType::new_list(DataType::Utf8, true), true),
        ]));
        let list = {
            let mut b = arrow_array::builder::ListBuilder::new(arrow_array::builder::StringBuilder::new());
            for v in [vec!["Rust", "SQL"], vec![], vec!["Go"], vec![]] {
                for s in v {
                    b.values().append_value(s);
                }
                b.append(true);
            }
            b.finish()
        };
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(UInt64Array::from(vec![7, 8, 7, 9])),
                Arc::new(Int64Array::from(vec![Some(8), Some(7), None, Some(10)])),
                Arc::new(StringArray::from(vec![
                    Some("write to jane.doe@example.com please"),
                    Some("a reply from 8"),
                    None,
                    Some("not about 7"),
                ])),
                Arc::new(list),
            ],
        )
        .unwrap();
        let file = std::fs::File::create(path).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }

    fn decl(path: &Path) -> TableDecl {
        let text = format!(
            "[tables.m]\npath = '{}'\nmembers = ['sender_id', 'recipient_id']\nredact = ['text']\n\
             [tables.m.columns]\ntext = 'user.content.private'\ntags = 'user.professional.skills'\n",
            path.display()
        );
        crate::Sources::parse("t", &text, Path::new(".")).unwrap().tables.remove(0)
    }

    #[test]
    fn only_the_members_rows_count_and_only_their_own_are_shown_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.parquet");
        write(&path);
        let t = decl(&path);
        let det = Detector::new().unwrap();
        let cols = vec!["tags".to_string(), "text".to_string()];
        let seven = own_rows(&t, 7, &cols, 3, Some(&det)).unwrap();
        // In the file's order, whatever the order asked.
        assert_eq!(seven.columns, ["text", "tags"]);
        // Rows 0 and 2 (sender) and 1 (recipient); only the two sent are shown.
        assert_eq!(seven.rows, 3);
        assert_eq!(seven.samples.len(), 2);
        let text = seven.samples[0][0].as_deref().unwrap();
        assert!(!text.contains("jane.doe@example.com") && text.starts_with("write to "), "{text}");
        assert_eq!(seven.samples[0][1].as_deref(), Some("Rust, SQL"));
        assert_eq!(seven.samples[1], vec![None, Some("Go".to_string())]);
        // Member 8 received one and sent one; 10 only received; 11 has nothing.
        assert_eq!(own_rows(&t, 8, &cols, 3, Some(&det)).unwrap().rows, 2);
        let ten = own_rows(&t, 10, &cols, 3, Some(&det)).unwrap();
        assert_eq!((ten.rows, ten.samples.len()), (1, 0));
        let none = own_rows(&t, 11, &cols, 3, Some(&det)).unwrap();
        assert_eq!((none.rows, none.samples.len()), (0, 0));
        // A member id is never a column to show.
        assert!(own_rows(&t, 7, &["recipient_id".to_string()], 3, Some(&det)).is_err());
        // Without a detector, free text is never shown; the other columns are.
        let unredacted = own_rows(&t, 7, &cols, 3, None).unwrap();
        assert_eq!(unredacted.samples[0], vec![None, Some("Rust, SQL".to_string())]);
    }

    #[test]
    fn an_odd_file_is_an_error_naming_it_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.parquet");
        std::fs::write(&path, b"not parquet").unwrap();
        let e = own_rows(&decl(&path), 7, &["text".to_string()], 3, Some(&Detector::new().unwrap())).unwrap_err();
        assert!(e.to_string().contains("m.parquet"), "{e}");
        let e =
            own_rows(&decl(&dir.path().join("gone.parquet")), 7, &[], 3, Some(&Detector::new().unwrap())).unwrap_err();
        assert!(e.to_string().contains("gone.parquet"), "{e}");
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        let long = "é".repeat(100);
        let s = shorten(&long);
        assert_eq!(s.chars().count(), MAX_VALUE_CHARS + 1);
        assert!(s.ends_with('…'));
        assert_eq!(shorten("short"), "short");
    }
}
