//! Parquet output: one file per table, written under a temporary name and
//! renamed when complete, with fixed writer settings so the same rows always
//! give the same bytes.

use crate::SynthError;
use arrow_array::RecordBatch;
use arrow_array::builder::{
    ArrayBuilder, Date32Builder, ListBuilder, StringBuilder, TimestampMillisecondBuilder, UInt8Builder, UInt32Builder,
    UInt64Builder,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use consentry_files::{Output, OutputOptions};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::Serialize;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Rows buffered before a batch goes to the writer.
pub(crate) const BATCH_ROWS: usize = 32 * 1024;

/// What one written table looks like, for the run's summary and manifest.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct TableInfo {
    /// Table name; the file is `<name>.parquet`.
    pub name: String,
    /// Rows written.
    pub rows: u64,
    /// File size in bytes.
    pub bytes: u64,
    /// BLAKE3 of the file, hex.
    pub blake3: String,
}

/// The kinds of column the synthetic tables use, so a schema reads as one line per column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Col {
    /// UInt8, not null.
    U8,
    /// UInt32, not null.
    U32,
    /// UInt64, not null.
    U64,
    /// UInt64, nullable.
    OptU64,
    /// Utf8, not null.
    Str,
    /// Utf8, nullable.
    OptStr,
    /// Date32 (days since 1970-01-01), not null.
    Date,
    /// Date32, nullable.
    OptDate,
    /// Timestamp(Millisecond, "UTC"), not null; whole seconds.
    Time,
    /// List<Utf8>, not null.
    StrList,
}

/// Schema from `(name, kind)` pairs, so each table is declared in one place.
pub(crate) fn schema(cols: &[(&str, Col)]) -> SchemaRef {
    let fields: Vec<Field> = cols
        .iter()
        .map(|(name, kind)| {
            let (dt, nullable) = match kind {
                Col::U8 => (DataType::UInt8, false),
                Col::U32 => (DataType::UInt32, false),
                Col::U64 => (DataType::UInt64, false),
                Col::OptU64 => (DataType::UInt64, true),
                Col::Str => (DataType::Utf8, false),
                Col::OptStr => (DataType::Utf8, true),
                Col::Date => (DataType::Date32, false),
                Col::OptDate => (DataType::Date32, true),
                Col::Time => (DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), false),
                Col::StrList => (DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), false),
            };
            Field::new(*name, dt, nullable)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// Column builders for one table, in schema order.
pub(crate) struct Rows {
    schema: SchemaRef,
    cols: Vec<Box<dyn ArrayBuilder>>,
    len: usize,
}

impl Rows {
    pub(crate) fn new(schema: SchemaRef) -> Rows {
        let cols = schema
            .fields()
            .iter()
            .map(|f| -> Box<dyn ArrayBuilder> {
                match f.data_type() {
                    DataType::UInt8 => Box::new(UInt8Builder::new()),
                    DataType::UInt32 => Box::new(UInt32Builder::new()),
                    DataType::UInt64 => Box::new(UInt64Builder::new()),
                    DataType::Utf8 => Box::new(StringBuilder::new()),
                    DataType::Date32 => Box::new(Date32Builder::new()),
                    DataType::Timestamp(..) => Box::new(TimestampMillisecondBuilder::new().with_timezone("UTC")),
                    _ => Box::new(ListBuilder::new(StringBuilder::new())),
                }
            })
            .collect();
        Rows { schema, cols, len: 0 }
    }

    fn col<T: 'static>(&mut self, i: usize) -> &mut T {
        match self.cols[i].as_any_mut().downcast_mut::<T>() {
            Some(b) => b,
            None => panic!("column {i} of {:?} is not the builder a table wrote to it", self.schema.field(i).name()),
        }
    }

    pub(crate) fn u8(&mut self, i: usize, v: u8) {
        self.col::<UInt8Builder>(i).append_value(v);
    }
    pub(crate) fn u32(&mut self, i: usize, v: u32) {
        self.col::<UInt32Builder>(i).append_value(v);
    }
    pub(crate) fn u64(&mut self, i: usize, v: u64) {
        self.col::<UInt64Builder>(i).append_value(v);
    }
    pub(crate) fn opt_u64(&mut self, i: usize, v: Option<u64>) {
        self.col::<UInt64Builder>(i).append_option(v);
    }
    pub(crate) fn str(&mut self, i: usize, v: &str) {
        self.col::<StringBuilder>(i).append_value(v);
    }
    pub(crate) fn opt_str(&mut self, i: usize, v: Option<&str>) {
        self.col::<StringBuilder>(i).append_option(v);
    }
    pub(crate) fn date(&mut self, i: usize, days_since_epoch: i32) {
        self.col::<Date32Builder>(i).append_value(days_since_epoch);
    }
    pub(crate) fn opt_date(&mut self, i: usize, v: Option<i32>) {
        self.col::<Date32Builder>(i).append_option(v);
    }
    /// Times are whole seconds, stored as UTC milliseconds so every Parquet reader sees a timestamp.
    pub(crate) fn time(&mut self, i: usize, unix_seconds: i64) {
        self.col::<TimestampMillisecondBuilder>(i).append_value(unix_seconds * 1000);
    }
    pub(crate) fn str_list<'a>(&mut self, i: usize, v: impl IntoIterator<Item = &'a str>) {
        let b = self.col::<ListBuilder<StringBuilder>>(i);
        for s in v {
            b.values().append_value(s);
        }
        b.append(true);
    }

    /// Marks the end of a row (every column must have been written once).
    pub(crate) fn end_row(&mut self) {
        self.len += 1;
    }

    fn take(&mut self) -> Result<RecordBatch, SynthError> {
        let arrays = self.cols.iter_mut().map(|c| c.finish()).collect();
        self.len = 0;
        Ok(RecordBatch::try_new(self.schema.clone(), arrays)?)
    }
}

/// A table being written: rows buffer into batches, batches into row groups.
pub(crate) struct TableFile {
    name: &'static str,
    path: PathBuf,
    /// Writes a temporary file beside `path`, renamed over it by `finish` (removed if dropped first).
    writer: ArrowWriter<BufWriter<Output>>,
    pub(crate) rows: Rows,
    written: u64,
}

impl TableFile {
    pub(crate) fn create(dir: &Path, name: &'static str, cols: &[(&str, Col)]) -> Result<TableFile, SynthError> {
        let schema = schema(cols);
        let path = dir.join(format!("{name}.parquet"));
        // 0644, what the files were created with under the usual umask before they went through `Output`.
        let file = Output::create(&path, OutputOptions::PUBLIC)?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
            .set_max_row_group_row_count(Some(256 * 1024))
            .set_created_by(format!("consentry-synth {}", env!("CARGO_PKG_VERSION")))
            .build();
        let writer = ArrowWriter::try_new(BufWriter::with_capacity(1 << 20, file), schema.clone(), Some(props))?;
        Ok(TableFile { name, path, writer, rows: Rows::new(schema), written: 0 })
    }

    /// Ends the current row and flushes a batch when enough rows are buffered.
    pub(crate) fn end_row(&mut self) -> Result<(), SynthError> {
        self.rows.end_row();
        if self.rows.len >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SynthError> {
        if self.rows.len > 0 {
            self.written += self.rows.len as u64;
            let batch = self.rows.take()?;
            self.writer.write(&batch)?;
        }
        Ok(())
    }

    /// Writes the footer, syncs, and moves the file into place.
    pub(crate) fn finish(mut self) -> Result<TableInfo, SynthError> {
        self.flush()?;
        let inner = self.writer.into_inner()?;
        let file = inner.into_inner().map_err(|e| SynthError::io(&self.path, e.into_error()))?;
        file.commit()?;
        let (bytes, blake3) = hash_file(&self.path)?;
        Ok(TableInfo { name: self.name.to_string(), rows: self.written, bytes, blake3 })
    }
}

/// Size and BLAKE3 of a file.
pub fn hash_file(path: &Path) -> Result<(u64, String), SynthError> {
    let mut f = File::open(path).map_err(|e| SynthError::io(path, e))?;
    let mut h = blake3::Hasher::new();
    let n = std::io::copy(&mut f, &mut h).map_err(|e| SynthError::io(path, e))?;
    Ok((n, h.finalize().to_hex().to_string()))
}
