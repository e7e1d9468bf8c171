//! Materialisation: the rules applied to every row, streamed over Parquet row
//! groups on all cores, written atomically.
//!
//! A *unit* is one row group of one source file. Workers claim units in
//! input order, read only the columns that can pass, apply the consent rules,
//! minimise, redact, commit, and encode and compress the surviving rows into
//! Parquet column chunks (one output row group per unit, split at
//! `row_group_rows`); the calling thread only appends those chunks in input
//! order (so the output bytes are the same on any number of threads) to one
//! output file per source file (`TABLE/part-NNNNN.parquet`). At most
//! `window` units are in flight, which bounds memory. Everything goes into
//! `OUT.partial-PID` first and is renamed to `OUT` when complete; on error
//! the temporary directory is removed. A run holds a lock on
//! `.OUT.partial-PID.lock` while it writes, so the next run into `OUT` can
//! remove what killed runs left behind without touching a live one's
//! ([`remove_stale_partials`]).

use crate::GateError;
use crate::commit::{self, LtHash};
use crate::manifest::*;
use crate::sources::{Sources, TableDecl};
use arrow_array::builder::{GenericStringBuilder, StringViewBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, UInt32Type, UInt64Type};
use arrow_array::{Array, ArrayRef, BooleanArray, GenericStringArray, OffsetSizeTrait, RecordBatch};
use arrow_buffer::{BooleanBuffer, NullBuffer};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use arrow_select::filter::FilterBuilder;
use consentry_ledger::SignedTreeHead;
use consentry_ledger::position::MAX_CLOCK_SKEW;
use consentry_ledger::snapshot::Snapshot;
use consentry_policy::{DenyReason, Policy, Purpose};
use consentry_redact::{Detector, Kind};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory, ArrowWriter, compute_leaves,
};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use roaring::RoaringTreemap;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

pub use consentry_progress::{NoProgress, Progress};

/// Bytes of dictionary a column chunk may build before the writer falls back to plain (or, for integers, delta) encoding.
const DICTIONARY_LIMIT: usize = 64 * 1024;

/// Arrow types stored as Parquet INT32/INT64, which delta encoding applies to.
fn is_delta_type(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Date32
            | DataType::Date64
            | DataType::Timestamp(..)
    )
}

/// The progress stage name.
pub const STAGE: &str = "gate";

/// How to run (none of these change what a dataset contains, except `partition` and `redact`).
#[derive(Debug, Clone)]
pub struct GateOptions {
    /// Worker threads (default: all cores).
    pub threads: usize,
    /// Shards of the shard function.
    pub shards: u32,
    /// Process only this share of the input files: `(index, count)`.
    pub partition: Option<(u32, u32)>,
    /// Units in flight at most (bounds memory).
    pub window: usize,
    /// Rows per output row group at most (each input row group starts a new one).
    pub row_group_rows: usize,
    /// Rows per batch read.
    pub batch_rows: usize,
    /// zstd level of the output.
    pub zstd_level: i32,
}

impl Default for GateOptions {
    fn default() -> Self {
        GateOptions {
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            shards: DEFAULT_SHARDS,
            partition: None,
            window: 4,
            row_group_rows: 256 * 1024,
            batch_rows: 64 * 1024,
            zstd_level: 1,
        }
    }
}

/// What to materialise.
pub struct GateRequest<'a> {
    /// The policy in force (its version and hash go into the manifest).
    pub policy: &'a Policy,
    /// Effective consent at the chosen ledger position.
    pub snapshot: &'a Snapshot,
    /// A signed tree head covering the snapshot's position.
    pub checkpoint: Option<SignedTreeHead>,
    /// The source declaration.
    pub sources: &'a Sources,
    /// BLAKE3 of the declaration's text, hex.
    pub declaration_hash: String,
    /// The redaction detector; `None` turns redaction off (benchmarks only).
    pub detector: Option<&'a Detector>,
    /// Member names in the detector, for the manifest.
    pub member_names: u64,
    /// Run options.
    pub options: GateOptions,
    /// Creation time for the manifest (Unix seconds).
    pub created: i64,
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The manifest written (or, for a dry run, computed).
    pub manifest: Manifest,
    /// The included members.
    pub members: RoaringTreemap,
    /// Seconds spent.
    pub seconds: f64,
}

/// Builds the redaction detector from the declaration's member-name source (or the gazetteer alone).
pub fn build_detector(sources: &Sources) -> Result<(Detector, u64), GateError> {
    let names = member_names(sources)?;
    let n = names.len() as u64;
    Ok((detector_from_names(&names)?, n))
}

/// The redaction detector over these member names (none: the gazetteer alone), as [`build_detector`] builds it.
pub fn detector_from_names(names: &[String]) -> Result<Detector, GateError> {
    Ok(Detector::builder().member_names(names).build()?)
}

/// The member names the PERSON detector knows: the declaration's name source, joined per row, sorted and
/// deduplicated (none without a name source).
pub fn member_names(sources: &Sources) -> Result<Vec<String>, GateError> {
    let Some(ns) = &sources.names else { return Ok(Vec::new()) };
    let Some(t) = sources.table(&ns.table) else {
        return Err(GateError::Invalid(format!("names table `{}` is not declared", ns.table)));
    };
    let mut names: Vec<String> = Vec::new();
    for path in t.files()? {
        let file = std::fs::File::open(&path).map_err(|e| GateError::io(&path, e))?;
        let b = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| GateError::parquet(&path, e))?;
        let schema = b.schema().clone();
        let idx: Vec<usize> = ns
            .columns
            .iter()
            .map(|c| {
                schema.index_of(c).map_err(|_| GateError::MissingColumn {
                    path: path.clone(),
                    table: t.name.clone(),
                    column: c.clone(),
                })
            })
            .collect::<Result<_, _>>()?;
        let mask = ProjectionMask::roots(b.parquet_schema(), idx.iter().copied());
        let reader = b.with_projection(mask).build().map_err(|e| GateError::parquet(&path, e))?;
        for batch in reader {
            let batch = batch.map_err(|e| GateError::parquet(&path, e))?;
            let cols: Vec<&arrow_array::StringArray> = (0..batch.num_columns())
                .map(|i| {
                    batch.column(i).as_string_opt::<i32>().ok_or_else(|| GateError::ColumnType {
                        path: path.clone(),
                        table: t.name.clone(),
                        column: ns.columns.get(i).cloned().unwrap_or_default(),
                        found: batch.column(i).data_type().to_string(),
                        expected: "Utf8".into(),
                    })
                })
                .collect::<Result<_, _>>()?;
            for r in 0..batch.num_rows() {
                let parts: Vec<&str> = cols.iter().filter(|c| c.is_valid(r)).map(|c| c.value(r)).collect();
                if !parts.is_empty() {
                    names.push(parts.join(" "));
                }
            }
        }
    }
    names.sort_unstable();
    names.dedup();
    Ok(names)
}

/// Consent answers in the fastest form for lookups: a byte per member id
/// (0 allowed, 1 + index in [`DenyReason::ALL`], 255 not in the directory)
/// when ids are small enough, else the snapshot's bitmaps.
pub(crate) enum Answers<'a> {
    Dense(Vec<u8>),
    Sparse {
        allowed: Cow<'a, RoaringTreemap>,
        /// By reason, in [`DenyReason::ALL`] order (a member denied for two reasons answers the first).
        denied: Vec<(DenyReason, Cow<'a, RoaringTreemap>)>,
    },
}

const UNKNOWN: u8 = 255;
/// Largest id covered by the dense table (64 MiB).
const DENSE_LIMIT: u64 = 1 << 26;

impl<'a> Answers<'a> {
    fn new(snapshot: &'a Snapshot) -> Answers<'a> {
        let denied =
            DenyReason::ALL.iter().filter_map(|r| snapshot.denied(*r).map(|b| (*r, Cow::Borrowed(b)))).collect();
        Answers::from_bitmaps(Cow::Borrowed(snapshot.allowed()), denied)
    }

    /// The answers of a snapshot given as its bitmaps: the allowed members and the denied ones by reason.
    pub(crate) fn from_bitmaps(
        allowed: Cow<'a, RoaringTreemap>,
        mut denied: Vec<(DenyReason, Cow<'a, RoaringTreemap>)>,
    ) -> Answers<'a> {
        denied.sort_by_key(|(r, _)| *r);
        let mut max = allowed.max();
        for (_, b) in &denied {
            max = max.max(b.max());
        }
        match max {
            Some(m) if m >= DENSE_LIMIT => Answers::Sparse { allowed, denied },
            _ => {
                let len = max.map_or(0, |m| m as usize + 1);
                let mut v = vec![UNKNOWN; len];
                for id in allowed.iter() {
                    v[id as usize] = 0;
                }
                for (i, r) in DenyReason::ALL.iter().enumerate() {
                    for (_, b) in denied.iter().filter(|(d, _)| d == r) {
                        for id in b.iter() {
                            v[id as usize] = i as u8 + 1;
                        }
                    }
                }
                Answers::Dense(v)
            }
        }
    }

    /// The same answers, owning what they borrowed (so they can outlive the bitmaps they were built from).
    pub(crate) fn into_owned(self) -> Answers<'static> {
        match self {
            Answers::Dense(v) => Answers::Dense(v),
            Answers::Sparse { allowed, denied } => Answers::Sparse {
                allowed: Cow::Owned(allowed.into_owned()),
                denied: denied.into_iter().map(|(r, b)| (r, Cow::Owned(b.into_owned()))).collect(),
            },
        }
    }

    /// The refusal a dense answer code stands for (`None` for 0, allowed).
    #[inline]
    fn reason_of(code: u8) -> Option<&'static str> {
        match code {
            0 => None,
            UNKNOWN => Some("unknown_member"),
            k => Some(DenyReason::ALL.get(k as usize - 1).map_or("unknown_member", |r| r.as_str())),
        }
    }

    /// `None` when allowed, else why not.
    #[inline]
    fn refusal(&self, id: u64) -> Option<&'static str> {
        match self {
            Answers::Dense(v) => Answers::reason_of(v.get(id as usize).copied().unwrap_or(UNKNOWN)),
            Answers::Sparse { allowed, denied } => {
                if allowed.contains(id) {
                    None
                } else {
                    Some(denied.iter().find(|(_, b)| b.contains(id)).map_or("unknown_member", |(r, _)| r.as_str()))
                }
            }
        }
    }
}

/// One table's plan: which columns are read, which are written.
pub(crate) struct TablePlan {
    pub decl: TableDecl,
    pub files: Vec<PathBuf>,
    pub metas: Vec<ArrowReaderMetadata>,
    /// The template of the table's statistics (columns, minimised, undeclared, included; counts zero).
    pub stats: TableStats,
    /// The files' Arrow schema (the first file's; the others agree on every declared column).
    pub schema: SchemaRef,
    /// Indices (in the file schema) of the columns read, in file order.
    pub read: Vec<usize>,
    /// The rules over the columns read.
    pub rules: Rules,
}

/// The rules of one table over a batch of the columns read: what [`gate_batch`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rules {
    /// The output schema (the read columns, all nullable).
    pub out_schema: SchemaRef,
    /// The row commitment's key for the output schema.
    pub key: [u8; 32],
    /// Position in the output of each member column, in declaration order.
    pub member_pos: Vec<usize>,
    /// For each member column: positions of the columns nulled with it (itself and its owned ones), if droppable.
    pub drop_pos: Vec<Vec<usize>>,
    /// Positions of the redacted columns.
    pub redact_pos: Vec<usize>,
}

struct Unit {
    table: usize,
    file: usize,
    row_group: usize,
}

/// What one unit produced.
struct UnitResult {
    /// The surviving rows, encoded: one entry per output row group, one chunk per leaf column.
    groups: Vec<Vec<ArrowColumnChunk>>,
    tally: Tally,
}

/// What gating a stretch of rows (a unit here, a partition of an engine's job) counted.
pub(crate) struct Tally {
    pub rows_in: u64,
    pub rows_out: u64,
    /// Rows excluded, by reason (complete after [`Tally::settle`]).
    pub excluded: BTreeMap<&'static str, u64>,
    /// Exclusions by dense answer code (see [`consent_single`]), not yet in `excluded`.
    codes: [u64; NO_PARTY + 1],
    pub parties_dropped: u64,
    pub redactions: [u64; 9],
    pub lt: LtHash,
    /// Members of the rows kept (unsorted, repeated).
    pub members: Vec<u64>,
}

impl Tally {
    pub(crate) fn new() -> Tally {
        Tally {
            rows_in: 0,
            rows_out: 0,
            excluded: BTreeMap::new(),
            codes: [0; NO_PARTY + 1],
            parties_dropped: 0,
            redactions: [0; 9],
            lt: LtHash::new(),
            members: Vec::new(),
        }
    }

    /// Moves the exclusions counted by answer code into `excluded`.
    pub(crate) fn settle(&mut self) {
        for (code, count) in self.codes.iter_mut().enumerate() {
            if *count == 0 {
                continue;
            }
            let reason = match code {
                NO_PARTY => "no_party",
                k => Answers::reason_of(k as u8).unwrap_or("unknown_member"),
            };
            *self.excluded.entry(reason).or_default() += *count;
            *count = 0;
        }
    }
}

pub(crate) fn plan_table(decl: &TableDecl, purpose: &Purpose) -> Result<TablePlan, GateError> {
    let files = decl.files()?;
    let mut metas = Vec::with_capacity(files.len());
    let mut first: Option<SchemaRef> = None;
    for path in &files {
        let file = std::fs::File::open(path).map_err(|e| GateError::io(path, e))?;
        let meta = ArrowReaderMetadata::load(&file, Default::default()).map_err(|e| GateError::parquet(path, e))?;
        let schema = meta.schema().clone();
        decl.check_schema(path, &schema)?;
        if let Some(f) = &first {
            for c in decl.members.iter().map(|m| &m.column).chain(decl.columns.keys()) {
                let (a, b) = (f.field_with_name(c), schema.field_with_name(c));
                if let (Ok(a), Ok(b)) = (a, b)
                    && a.data_type() != b.data_type()
                {
                    return Err(GateError::ColumnType {
                        path: path.clone(),
                        table: decl.name.clone(),
                        column: c.clone(),
                        found: b.data_type().to_string(),
                        expected: format!("{} (as in {})", a.data_type(), files[0].display()),
                    });
                }
            }
        } else {
            first = Some(schema);
        }
        metas.push(meta);
    }
    let schema = first.ok_or_else(|| GateError::Invalid(format!("table `{}` has no files", decl.name)))?;
    let mut stats = TableStats {
        member_columns: decl.members.iter().map(|m| m.column.clone()).collect(),
        row_commitment: LtHash::new().to_hex(),
        ..TableStats::default()
    };
    let mut read = Vec::new();
    let mut fields = Vec::new();
    let mut any_category = false;
    for (i, f) in schema.fields().iter().enumerate() {
        let name = f.name().as_str();
        let pass = if decl.is_member(name) {
            true
        } else if let Some(cat) = decl.columns.get(name) {
            if purpose.allows_category(cat) {
                any_category = true;
                true
            } else {
                stats.minimised.push(name.to_string());
                false
            }
        } else {
            stats.undeclared.push(name.to_string());
            false
        };
        if pass {
            read.push(i);
            // Nullable always: files of one table may differ in declared nullability,
            // and a droppable party's columns are nulled.
            fields.push(Field::new(name, f.data_type().clone(), true));
            stats.columns.push(name.to_string());
        }
    }
    stats.included = any_category;
    let pos = |c: &str| stats.columns.iter().position(|x| x == c);
    let member_pos: Vec<usize> = decl.members.iter().filter_map(|m| pos(&m.column)).collect();
    let drop_pos: Vec<Vec<usize>> = decl
        .members
        .iter()
        .map(|m| {
            if m.droppable {
                std::iter::once(&m.column).chain(m.owned.iter()).filter_map(|c| pos(c)).collect()
            } else {
                Vec::new()
            }
        })
        .collect();
    let redact_pos: Vec<usize> = decl.redact.iter().filter_map(|c| pos(c)).collect();
    let out_schema = Arc::new(Schema::new(fields));
    let key = commit::schema_key(&decl.name, &out_schema)?;
    let metas = files
        .iter()
        .zip(&metas)
        .map(|(path, m)| view_metadata(m).map_err(|e| GateError::parquet(path, e)))
        .collect::<Result<_, _>>()?;
    Ok(TablePlan {
        decl: decl.clone(),
        files,
        metas,
        stats,
        schema,
        read,
        rules: Rules { out_schema, key, member_pos, drop_pos, redact_pos },
    })
}

/// A file's metadata as the gate reads it: `Utf8` columns as `Utf8View`, which the reader fills with views into
/// the decompressed pages instead of copying every string (and filtering then moves 16-byte views, not text).
/// The values are the same; the row commitment encodes a view as the string it views, and the writer, whose
/// schema still says `Utf8`, encodes it byte for byte as that string.
fn view_metadata(meta: &ArrowReaderMetadata) -> Result<ArrowReaderMetadata, parquet::errors::ParquetError> {
    let schema = meta.schema();
    if !schema.fields().iter().any(|f| f.data_type() == &DataType::Utf8) {
        return Ok(meta.clone());
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8 => f.as_ref().clone().with_data_type(DataType::Utf8View),
            _ => f.as_ref().clone(),
        })
        .collect();
    let hint = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    ArrowReaderMetadata::try_new(meta.metadata().clone(), ArrowReaderOptions::new().with_schema(hint))
}

/// The output schema with each column's type as it is held (text read as views stays views until written).
fn schema_as_held(out: &SchemaRef, cols: &[ArrayRef]) -> SchemaRef {
    if out.fields().len() != cols.len() || out.fields().iter().zip(cols).all(|(f, c)| f.data_type() == c.data_type()) {
        return out.clone();
    }
    let fields: Vec<Field> =
        out.fields().iter().zip(cols).map(|(f, c)| f.as_ref().clone().with_data_type(c.data_type().clone())).collect();
    Arc::new(Schema::new_with_metadata(fields, out.metadata().clone()))
}

/// Member ids of a column as u64 (`None` for null or negative values, which no member has).
pub(crate) fn member_ids(a: &ArrayRef) -> Vec<Option<u64>> {
    match a.data_type() {
        DataType::UInt64 => a.as_primitive::<UInt64Type>().iter().collect(),
        DataType::UInt32 => a.as_primitive::<UInt32Type>().iter().map(|v| v.map(u64::from)).collect(),
        DataType::Int64 => {
            a.as_primitive::<Int64Type>().iter().map(|v| v.map(|x| u64::try_from(x).unwrap_or(u64::MAX))).collect()
        }
        DataType::Int32 => {
            a.as_primitive::<Int32Type>().iter().map(|v| v.map(|x| u64::try_from(x).unwrap_or(u64::MAX))).collect()
        }
        _ => vec![None; a.len()],
    }
}

/// Index in the exclusion counts of rows whose only member id is null.
const NO_PARTY: usize = 256;

/// The common case — one member column, not droppable, dense answers — without per-row
/// allocations or map updates: returns the rows to keep and how many, pushes kept members and
/// counts excluded rows by answer code (`NO_PARTY` for a null id). `None` for other id types.
fn consent_single(
    dense: &[u8],
    col: &ArrayRef,
    codes: &mut [u64; NO_PARTY + 1],
    members: &mut Vec<u64>,
) -> Option<(BooleanBuffer, usize)> {
    fn run<T: Copy>(
        dense: &[u8],
        values: &[T],
        nulls: Option<&NullBuffer>,
        to_id: impl Fn(T) -> u64,
        codes: &mut [u64; NO_PARTY + 1],
        members: &mut Vec<u64>,
    ) -> (BooleanBuffer, usize) {
        // Branch-free (whether a member allowed is a coin toss to the branch predictor): every
        // row's id is written at the end of `members`, which only advances past allowed ones.
        let start = members.len();
        members.resize(start + values.len(), 0);
        let mut len = start;
        let mut counts = [0u64; 256];
        let keep = BooleanBuffer::collect_bool(values.len(), |i| {
            if nulls.is_some_and(|n| n.is_null(i)) {
                codes[NO_PARTY] += 1;
                return false;
            }
            let id = to_id(values[i]);
            let code = usize::try_from(id).ok().and_then(|i| dense.get(i)).copied().unwrap_or(UNKNOWN);
            counts[code as usize] += 1;
            members[len] = id;
            len += usize::from(code == 0);
            code == 0
        });
        members.truncate(len);
        for (c, n) in codes.iter_mut().zip(counts).skip(1) {
            *c += n;
        }
        (keep, counts[0] as usize)
    }
    let neg = |x: i64| u64::try_from(x).unwrap_or(u64::MAX);
    Some(match col.data_type() {
        DataType::UInt64 => {
            let a = col.as_primitive::<UInt64Type>();
            run(dense, a.values(), a.nulls(), |v| v, codes, members)
        }
        DataType::UInt32 => {
            let a = col.as_primitive::<UInt32Type>();
            run(dense, a.values(), a.nulls(), u64::from, codes, members)
        }
        DataType::Int64 => {
            let a = col.as_primitive::<Int64Type>();
            run(dense, a.values(), a.nulls(), neg, codes, members)
        }
        DataType::Int32 => {
            let a = col.as_primitive::<Int32Type>();
            run(dense, a.values(), a.nulls(), |v| neg(i64::from(v)), codes, members)
        }
        _ => return None,
    })
}

struct Ctx<'a> {
    answers: Answers<'a>,
    detector: Option<&'a Detector>,
    batch_rows: usize,
    row_group_rows: usize,
    /// Per table: makes column writers for the workers (`None` in a dry run, which writes nothing).
    encoders: Vec<Option<ArrowRowGroupWriterFactory>>,
}

/// Encodes one unit's surviving rows into row groups of at most `max_rows` rows, on the worker.
struct Encoder<'a> {
    factory: &'a ArrowRowGroupWriterFactory,
    schema: &'a SchemaRef,
    max_rows: usize,
    writers: Option<Vec<ArrowColumnWriter>>,
    rows: usize,
    groups: Vec<Vec<ArrowColumnChunk>>,
}

impl Encoder<'_> {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), parquet::errors::ParquetError> {
        let mut off = 0;
        while off < batch.num_rows() {
            let take = (self.max_rows - self.rows).min(batch.num_rows() - off);
            let writers = match &mut self.writers {
                Some(w) => w,
                None => self.writers.insert(self.factory.create_column_writers(0)?),
            };
            let mut leaves = writers.iter_mut();
            for (field, col) in self.schema.fields().iter().zip(batch.columns()) {
                let col = if take == batch.num_rows() { col.clone() } else { col.slice(off, take) };
                for leaf in compute_leaves(field, &col)? {
                    let w = leaves.next().ok_or_else(|| {
                        parquet::errors::ParquetError::General("more leaf columns than column writers".into())
                    })?;
                    w.write(&leaf)?;
                }
            }
            self.rows += take;
            off += take;
            if self.rows >= self.max_rows {
                self.finish_group()?;
            }
        }
        Ok(())
    }

    fn finish_group(&mut self) -> Result<(), parquet::errors::ParquetError> {
        if let Some(writers) = self.writers.take() {
            let chunks = writers.into_iter().map(|w| w.close()).collect::<Result<Vec<_>, _>>()?;
            if self.rows > 0 {
                self.groups.push(chunks);
            }
        }
        self.rows = 0;
        Ok(())
    }
}

fn process_unit(ctx: &Ctx<'_>, plan: &TablePlan, unit: &Unit) -> Result<UnitResult, GateError> {
    let path = &plan.files[unit.file];
    let file = std::fs::File::open(path).map_err(|e| GateError::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, plan.metas[unit.file].clone());
    let mask = ProjectionMask::roots(builder.parquet_schema(), plan.read.iter().copied());
    let reader = builder
        .with_projection(mask)
        .with_row_groups(vec![unit.row_group])
        .with_batch_size(ctx.batch_rows)
        .build()
        .map_err(|e| GateError::parquet(path, e))?;
    let mut enc = ctx.encoders.get(unit.table).and_then(Option::as_ref).map(|factory| Encoder {
        factory,
        schema: &plan.rules.out_schema,
        max_rows: ctx.row_group_rows,
        writers: None,
        rows: 0,
        groups: Vec::new(),
    });
    let mut r = UnitResult { groups: Vec::new(), tally: Tally::new() };
    for batch in reader {
        let batch = batch.map_err(|e| GateError::parquet(path, e))?;
        let out = gate_batch(&ctx.answers, &plan.rules, ctx.detector, &batch, &mut r.tally, path)?;
        if let Some(enc) = enc.as_mut() {
            enc.write(&out).map_err(|e| GateError::parquet(path, e))?;
        }
    }
    if let Some(mut enc) = enc {
        enc.finish_group().map_err(|e| GateError::parquet(path, e))?;
        r.groups = enc.groups;
    }
    r.tally.settle();
    Ok(r)
}

/// The rules over one batch of a table's read columns (in the output schema's order and types): keeps a row only
/// if every party allows it (or nulls a refusing droppable party's columns), redacts free text, and adds the
/// surviving rows to the row commitment and their members to `t`. The one implementation of the rules: the gate
/// on one machine and the distributed gate both call it. `path` names the input in errors.
pub(crate) fn gate_batch(
    answers: &Answers<'_>,
    rules: &Rules,
    detector: Option<&Detector>,
    batch: &RecordBatch,
    t: &mut Tally,
    path: &Path,
) -> Result<RecordBatch, GateError> {
    let nm = rules.member_pos.len();
    let n = batch.num_rows();
    t.rows_in += n as u64;
    // Consent: every party must allow, or be droppable.
    let fast = match answers {
        Answers::Dense(dense) if nm == 1 && rules.drop_pos[0].is_empty() => {
            consent_single(dense, batch.column(rules.member_pos[0]), &mut t.codes, &mut t.members)
        }
        _ => None,
    };
    let mut nulls: Vec<Option<Vec<bool>>> = vec![None; nm];
    let (filter, kept_rows) = match fast {
        Some((keep, kept)) => (BooleanArray::new(keep, None), kept),
        None if nm == 0 => (BooleanArray::from(vec![true; n]), n),
        None => {
            let (keep, kept) = consent_rows(answers, rules, batch, &mut nulls, t);
            (BooleanArray::from(keep), kept)
        }
    };
    let mut cols: Vec<ArrayRef> = if kept_rows == n {
        batch.columns().to_vec()
    } else {
        let pred = FilterBuilder::new(&filter).optimize().build();
        batch
            .columns()
            .iter()
            .map(|c| pred.filter(c.as_ref()))
            .collect::<Result<_, _>>()
            .map_err(|e| GateError::parquet(path, e))?
    };
    // Null the columns of refusing droppable parties.
    for (k, mask) in nulls.iter().enumerate() {
        let Some(mask) = mask else { continue };
        let mask = BooleanArray::from(mask.clone());
        let mask = if kept_rows == n {
            mask
        } else {
            let m = arrow_select::filter::filter(&mask, &filter).map_err(|e| GateError::parquet(path, e))?;
            m.as_boolean().clone()
        };
        for &p in &rules.drop_pos[k] {
            cols[p] = arrow_select::nullif::nullif(cols[p].as_ref(), &mask).map_err(|e| GateError::parquet(path, e))?;
        }
    }
    // Redact free text.
    if let Some(det) = detector {
        for &p in &rules.redact_pos {
            cols[p] = redact_column(det, &cols[p], &mut t.redactions);
        }
    }
    let out = RecordBatch::try_new(schema_as_held(&rules.out_schema, &cols), cols)
        .map_err(|e| GateError::parquet(path, e))?;
    commit::add_batch(&mut t.lt, &rules.key, &out)?;
    t.rows_out += out.num_rows() as u64;
    Ok(out)
}

fn redact_column(det: &Detector, col: &ArrayRef, counts: &mut [u64; 9]) -> ArrayRef {
    match col.data_type() {
        DataType::Utf8 => redact_strings(det, col.as_string::<i32>(), counts),
        DataType::LargeUtf8 => redact_strings(det, col.as_string::<i64>(), counts),
        DataType::Utf8View => {
            let a = col.as_string_view();
            let mut b = StringViewBuilder::with_capacity(a.len());
            for v in a.iter() {
                match v {
                    Some(s) => b.append_value(redact_counted(det, s, counts)),
                    None => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        // Validation admits only text for redacted columns.
        _ => col.clone(),
    }
}

/// Redacts every value of a string column (either offset width), counting detections by kind.
fn redact_strings<O: OffsetSizeTrait>(det: &Detector, a: &GenericStringArray<O>, counts: &mut [u64; 9]) -> ArrayRef {
    let mut b = GenericStringBuilder::<O>::with_capacity(a.len(), a.value_data().len());
    for v in a.iter() {
        let Some(s) = v else {
            b.append_null();
            continue;
        };
        b.append_value(redact_counted(det, s, counts));
    }
    Arc::new(b.finish())
}

/// One free-text value as the gate writes it into a dataset (the privacy centre shows a member the same).
pub fn redact_text<'a>(det: &Detector, s: &'a str) -> std::borrow::Cow<'a, str> {
    redact_counted(det, s, &mut [0; 9])
}

/// [`redact_text`], counting detections by kind.
fn redact_counted<'a>(det: &Detector, s: &'a str, counts: &mut [u64; 9]) -> std::borrow::Cow<'a, str> {
    let spans = det.detect(s);
    for sp in &spans {
        counts[sp.kind.index()] += 1;
    }
    if spans.is_empty() {
        std::borrow::Cow::Borrowed(s)
    } else {
        std::borrow::Cow::Owned(consentry_redact::redact(s, &spans))
    }
}

/// The general consent rule for one batch (several parties, droppable parties, sparse answers): which rows stay,
/// and how many; fills `nulls` with the refusing droppable parties' rows and counts exclusions and members in `r`.
fn consent_rows(
    answers: &Answers<'_>,
    rules: &Rules,
    batch: &RecordBatch,
    nulls: &mut [Option<Vec<bool>>],
    r: &mut Tally,
) -> (Vec<bool>, usize) {
    let (n, nm) = (batch.num_rows(), rules.member_pos.len());
    let ids: Vec<Vec<Option<u64>>> = rules.member_pos.iter().map(|&p| member_ids(batch.column(p))).collect();
    let mut keep = vec![true; n];
    let mut kept_rows = 0usize;
    for (row, keep_row) in keep.iter_mut().enumerate() {
        let mut remaining = 0usize;
        let mut blocked = false;
        let mut first_refusal: Option<&'static str> = None;
        let mut subject_allowed = false;
        for k in 0..nm {
            let Some(id) = ids[k][row] else { continue };
            if let Some(reason) = answers.refusal(id) {
                if first_refusal.is_none() {
                    first_refusal = Some(reason);
                }
                if rules.drop_pos[k].is_empty() {
                    blocked = true;
                } else {
                    nulls[k].get_or_insert_with(|| vec![false; n])[row] = true;
                }
            } else {
                remaining += 1;
                if k == 0 {
                    subject_allowed = true;
                }
            }
        }
        if blocked || remaining == 0 {
            *keep_row = false;
            let reason = if subject_allowed { "other_party" } else { first_refusal.unwrap_or("no_party") };
            *r.excluded.entry(reason).or_default() += 1;
            continue;
        }
        kept_rows += 1;
        if first_refusal.is_some() {
            r.parties_dropped += 1;
        }
        for (k, col) in ids.iter().enumerate() {
            let dropped = nulls[k].as_ref().is_some_and(|v| v[row]);
            if let (Some(id), false) = (col[row], dropped) {
                r.members.push(id);
            }
        }
    }
    (keep, kept_rows)
}

/// Appends encoded row groups to a file, in order.
fn append_groups(
    w: &mut SerializedFileWriter<HashingWriter<std::fs::File>>,
    groups: Vec<Vec<ArrowColumnChunk>>,
) -> Result<(), parquet::errors::ParquetError> {
    for chunks in groups {
        let mut rg = w.next_row_group()?;
        for c in chunks {
            c.append_to_row_group(&mut rg)?;
        }
        rg.close()?;
    }
    Ok(())
}

/// Writes into `W` while hashing what is written, so a file's BLAKE3 and size come without reading it back.
pub struct HashingWriter<W: std::io::Write> {
    inner: W,
    hasher: blake3::Hasher,
    bytes: u64,
}

impl<W: std::io::Write> HashingWriter<W> {
    /// Starts hashing everything written to `inner`.
    pub fn new(inner: W) -> HashingWriter<W> {
        HashingWriter { inner, hasher: blake3::Hasher::new(), bytes: 0 }
    }

    /// The writer underneath (e.g. to sync the file once done).
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// BLAKE3 (lowercase hex) and size in bytes of everything written so far.
    pub fn digest(&self) -> (String, u64) {
        (self.hasher.finalize().to_hex().to_string(), self.bytes)
    }
}

impl<W: std::io::Write> std::io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        fail::fail_point!("gate::table::write", |a| consentry_files::fault::short_write(&mut self.inner, buf, a));
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Refuses an output path where anything already stands (a dataset, a file, a device, even a
/// dangling link): the gate never replaces what it does not own. Callers ask before any work starts.
pub fn check_output(out: &Path) -> Result<(), GateError> {
    if consentry_files::taken(out) { Err(GateError::OutputExists(out.to_path_buf())) } else { Ok(()) }
}

/// Runs the gate. With `out`, writes the dataset there (atomically); without, computes the manifest only (a dry run, used by verification).
pub fn materialize(req: &GateRequest<'_>, out: Option<&Path>, progress: &dyn Progress) -> Result<Outcome, GateError> {
    let start = std::time::Instant::now();
    let tmp = match out {
        Some(out) => {
            check_output(out)?;
            let tmp = partial_dir(out);
            if let Some(parent) = tmp.parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent).map_err(|e| GateError::io(parent, e))?;
            }
            let claim = Claim::take(&tmp)?;
            remove_stale_partials(out);
            if tmp.exists() {
                std::fs::remove_dir_all(&tmp).map_err(|e| GateError::io(&tmp, e))?;
            }
            std::fs::create_dir(&tmp).map_err(|e| GateError::io(&tmp, e))?;
            Some((tmp, claim))
        }
        None => None,
    };
    // The claim is released (its lock file removed) when this function returns, after the rename.
    let (tmp, _claim) = tmp.unzip();
    let result = run(req, tmp.as_deref(), progress);
    match (result, out, tmp) {
        (Ok(mut outcome), Some(out), Some(tmp)) => {
            fail::fail_point!("gate::dataset::before_rename", |a| {
                let e = consentry_files::fault::injected(a);
                let _ = std::fs::remove_dir_all(&tmp);
                Err(GateError::io(out, e))
            });
            consentry_files::commit_dir(&tmp, out).map_err(|e| GateError::io(out, e))?;
            fail::fail_point!("gate::dataset::after_rename", |a| Err(GateError::io(
                out,
                consentry_files::fault::injected(a)
            )));
            outcome.seconds = start.elapsed().as_secs_f64();
            Ok(outcome)
        }
        (Ok(mut outcome), _, _) => {
            outcome.seconds = start.elapsed().as_secs_f64();
            Ok(outcome)
        }
        (Err(e), _, tmp) => {
            if let Some(tmp) = tmp {
                let _ = std::fs::remove_dir_all(&tmp);
            }
            Err(e)
        }
    }
}

/// The temporary directory a run writes into before renaming to `out`.
pub fn partial_dir(out: &Path) -> PathBuf {
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "dataset".into());
    out.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

/// The lock file beside a temporary directory (`.OUT.partial-PID.lock`), held locked by the run writing it.
fn lock_file(tmp: &Path) -> PathBuf {
    let mut name = tmp.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    tmp.with_file_name(name)
}

/// A run's claim on its temporary directory: an exclusive lock on the lock file beside it, held (and the file
/// removed) until the run ends, so a later run can tell a live run's directory from a killed one's.
struct Claim {
    path: PathBuf,
    _file: std::fs::File,
}

impl Claim {
    fn take(tmp: &Path) -> Result<Claim, GateError> {
        let path = lock_file(tmp);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| GateError::io(&path, e))?;
        file.lock().map_err(|e| GateError::io(&path, e))?;
        Ok(Claim { path, _file: file })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether process `pid` runs on this machine: `Some` only where it can be told (Linux's `/proc`).
fn process_alive(pid: u32) -> Option<bool> {
    cfg!(target_os = "linux").then(|| Path::new("/proc").join(pid.to_string()).exists())
}

/// Removes the temporary directories (`.OUT.partial-PID`) that killed runs into `out` left behind; returns them.
/// A directory is stale only when its lock file can be locked (its run ended without cleaning up), or — without a
/// lock file — when process PID no longer runs here. A live run's directory is never touched; where neither can
/// be told, the directory stays. Best effort: what cannot be removed stays.
pub fn remove_stale_partials(out: &Path) -> Vec<PathBuf> {
    let Some(name) = out.file_name().map(|n| n.to_string_lossy().into_owned()) else { return Vec::new() };
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Ok(entries) = std::fs::read_dir(&parent) else { return Vec::new() };
    let prefix = format!(".{name}.partial-");
    let mut removed = Vec::new();
    for e in entries.flatten() {
        let file_name = e.file_name().to_string_lossy().into_owned();
        // A lock file whose directory is gone (a run killed between removing its directory and its lock): removed
        // once nobody holds it.
        if let Some(pid) = file_name.strip_prefix(&prefix).and_then(|p| p.strip_suffix(".lock"))
            && pid.parse::<u32>().is_ok_and(|p| p != std::process::id())
            && !parent.join(&file_name[..file_name.len() - ".lock".len()]).exists()
            && let Ok(f) = std::fs::OpenOptions::new().write(true).open(e.path())
            && f.try_lock().is_ok()
        {
            let _ = std::fs::remove_file(e.path());
            continue;
        }
        let Some(pid) = file_name.strip_prefix(&prefix).and_then(|p| p.parse::<u32>().ok()) else { continue };
        if pid == std::process::id() || !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let dir = e.path();
        let lock = lock_file(&dir);
        let stale = match std::fs::OpenOptions::new().write(true).open(&lock) {
            // Held by a live run: not ours to touch.
            Ok(f) => match f.try_lock() {
                Ok(()) => Some(f),
                Err(_) => continue,
            },
            Err(_) if process_alive(pid) == Some(false) => None,
            Err(_) => continue,
        };
        if std::fs::remove_dir_all(&dir).is_ok() {
            removed.push(dir);
        }
        if stale.is_some() {
            let _ = std::fs::remove_file(&lock);
        }
    }
    removed
}

/// Consent evaluated after the dataset exists would judge members by a future (today's minors as adults).
pub(crate) fn check_times(at: i64, created: i64) -> Result<(), GateError> {
    if at > created.saturating_add(MAX_CLOCK_SKEW) {
        return Err(GateError::Invalid(format!(
            "consent would be evaluated at {at}, after the dataset's creation time {created}: a dataset is never \
             evaluated in the future; cut the snapshot at a position or time up to now"
        )));
    }
    Ok(())
}

/// Checks a request (shards, times, the declaration against the policy) and plans every declared table.
pub(crate) fn plan(req: &GateRequest<'_>) -> Result<Vec<TablePlan>, GateError> {
    if req.options.shards == 0 {
        return Err(GateError::Invalid("0 shards: the shard function needs at least one shard".into()));
    }
    check_times(req.snapshot.at(), req.created)?;
    let purpose = req.policy.purpose(req.snapshot.purpose());
    req.sources.check_policy(req.policy)?;
    req.sources.tables.iter().map(|decl| plan_table(decl, purpose)).collect()
}

/// What a manifest records of the request's policy, ledger position and snapshot.
pub(crate) fn manifest_refs(req: &GateRequest<'_>) -> Result<(PolicyRef, LedgerRef, SnapshotRef), GateError> {
    let (_, allowed_hash) = req.snapshot.allowed_bytes().map_err(|e| GateError::Invalid(format!("snapshot: {e}")))?;
    let counts = req.snapshot.counts();
    Ok((
        PolicyRef { version: req.policy.version.clone(), hash: req.policy.hash.clone() },
        LedgerRef {
            position: req.snapshot.position(),
            at: req.snapshot.at(),
            tree_root: hex::encode(req.snapshot.tree_root),
            checkpoint: req.checkpoint.clone(),
        },
        SnapshotRef { hash: hex::encode(allowed_hash), allowed: counts.allowed, members: counts.members },
    ))
}

/// File `f` of a table as the manifest records it among the sources: its recorded path, BLAKE3, size and rows.
pub(crate) fn source_file(sources: &Sources, plan: &TablePlan, f: usize) -> Result<SourceFile, GateError> {
    let path = &plan.files[f];
    let (blake3, bytes) = crate::hash_file(path)?;
    Ok(SourceFile {
        table: plan.decl.name.clone(),
        path: sources.recorded_path(path),
        blake3,
        bytes,
        rows: plan.metas[f].metadata().file_metadata().num_rows().max(0) as u64,
    })
}

/// How a table's data files are written (the gate on one machine and each partition of a distributed gate alike).
pub(crate) fn writer_properties(
    out_schema: &Schema,
    redact: &std::collections::BTreeSet<String>,
    zstd_level: i32,
    row_group_rows: usize,
) -> Result<WriterProperties, GateError> {
    let zstd = ZstdLevel::try_new(zstd_level).map_err(|e| GateError::Invalid(e.to_string()))?;
    // Per table: free text is high-cardinality, so dictionary encoding only costs time there.
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(zstd))
        .set_max_row_group_row_count(Some(row_group_rows.max(1)))
        .set_statistics_enabled(EnabledStatistics::Chunk)
        // A column whose distinct values outgrow this falls back to its other encoding early
        // instead of interning every value (high-cardinality ids and times gain nothing from it).
        .set_dictionary_page_size_limit(DICTIONARY_LIMIT)
        .set_created_by(crate::TOOL_VERSION.into());
    // Integers whose dictionary overflows (ids, times) fall back to delta encoding rather than
    // plain: about a tenth smaller output at the same speed, and every Parquet reader decodes it.
    for f in out_schema.fields() {
        if is_delta_type(f.data_type()) {
            b = b.set_column_encoding(ColumnPath::from(f.name().as_str()), Encoding::DELTA_BINARY_PACKED);
        }
    }
    for c in redact {
        // Nor are min/max statistics of free text any use to a reader (and they cost a comparison per value).
        b = b
            .set_column_dictionary_enabled(ColumnPath::from(c.as_str()), false)
            .set_column_statistics_enabled(ColumnPath::from(c.as_str()), EnabledStatistics::None);
    }
    Ok(b.build())
}

fn run(req: &GateRequest<'_>, tmp: Option<&Path>, progress: &dyn Progress) -> Result<Outcome, GateError> {
    let opts = &req.options;
    if let Some((i, n)) = opts.partition
        && (n == 0 || i >= n)
    {
        return Err(GateError::Invalid(format!("partition {i}/{n}: the index must be below the count")));
    }
    let plans = plan(req)?;
    let purpose = req.policy.purpose(req.snapshot.purpose());
    // Files of included tables, in (table, path) order; file j belongs to partition j mod N.
    let mut units = Vec::new();
    let mut my_files: Vec<(usize, usize)> = Vec::new();
    let mut j = 0u32;
    for (t, plan) in plans.iter().enumerate() {
        if !plan.stats.included {
            continue;
        }
        for f in 0..plan.files.len() {
            let mine = opts.partition.is_none_or(|(i, n)| j % n == i);
            j += 1;
            if !mine {
                continue;
            }
            my_files.push((t, f));
            for rg in 0..plan.metas[f].metadata().num_row_groups() {
                units.push(Unit { table: t, file: f, row_group: rg });
            }
        }
    }
    let file_rows = |t: usize, f: usize| plans[t].metas[f].metadata().file_metadata().num_rows().max(0) as u64;
    let total: u64 = my_files.iter().map(|&(t, f)| file_rows(t, f)).sum();
    progress.stage(STAGE, total);

    if let Some(tmp) = tmp {
        for plan in plans.iter().filter(|p| p.stats.included) {
            let d = tmp.join(&plan.decl.name);
            std::fs::create_dir_all(&d).map_err(|e| GateError::io(&d, e))?;
        }
    }
    let props: Vec<WriterProperties> = plans
        .iter()
        .map(|plan| writer_properties(&plan.rules.out_schema, &plan.decl.redact, opts.zstd_level, opts.row_group_rows))
        .collect::<Result<_, _>>()?;
    // Workers encode with writers made from the same schema and properties as the files' writers.
    let encoders: Vec<Option<ArrowRowGroupWriterFactory>> = plans
        .iter()
        .zip(&props)
        .map(|(plan, p)| {
            if tmp.is_none() || !plan.stats.included {
                return Ok(None);
            }
            let w = ArrowWriter::try_new(std::io::sink(), plan.rules.out_schema.clone(), Some(p.clone()))
                .and_then(|w| w.into_serialized_writer())
                .map_err(|e| GateError::Invalid(format!("table `{}`: parquet writer: {e}", plan.decl.name)))?;
            Ok(Some(w.1))
        })
        .collect::<Result<_, GateError>>()?;
    let ctx = Ctx {
        answers: Answers::new(req.snapshot),
        detector: req.detector,
        batch_rows: opts.batch_rows.max(1),
        row_group_rows: opts.row_group_rows.max(1),
        encoders,
    };

    let mut acc: Vec<Acc> = plans.iter().map(|_| Acc::default()).collect();
    let mut included = Included::default();
    let mut files = Vec::new();

    let next = AtomicUsize::new(0);
    let abort = AtomicBool::new(false);
    let written = (Mutex::new(0usize), Condvar::new());
    let window = opts.window.max(1);
    let threads = opts.threads.max(1).min(units.len().max(1));
    let (tx, rx) = std::sync::mpsc::channel::<(usize, Result<UnitResult, GateError>)>();
    let units_ref = &units;
    let plans_ref = &plans;
    let ctx_ref = &ctx;
    let my_files_ref = &my_files;

    let mut source_files = std::thread::scope(|scope| -> Result<Vec<SourceFile>, GateError> {
        // The source files are hashed (and their rows counted) beside the workers, not before them.
        let abort_ref = &abort;
        let hashing = scope.spawn(move || -> Result<Vec<SourceFile>, GateError> {
            let mut out = Vec::with_capacity(my_files_ref.len());
            for &(t, f) in my_files_ref {
                if abort_ref.load(Ordering::Relaxed) {
                    return Err(GateError::Worker("stopped".into()));
                }
                out.push(source_file(req.sources, &plans_ref[t], f)?);
            }
            Ok(out)
        });
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, abort, written) = (&next, &abort, &written);
            scope.spawn(move || {
                loop {
                    if abort.load(Ordering::Relaxed) {
                        return;
                    }
                    let idx = next.fetch_add(1, Ordering::Relaxed);
                    let Some(unit) = units_ref.get(idx) else { return };
                    // Wait until the writer is within `window` units of this one.
                    {
                        let (lock, cv) = written;
                        let Ok(mut done) = lock.lock() else { return };
                        while idx >= *done + window && !abort.load(Ordering::Relaxed) {
                            done = match cv.wait(done) {
                                Ok(d) => d,
                                Err(_) => return,
                            };
                        }
                    }
                    if abort.load(Ordering::Relaxed) {
                        return;
                    }
                    let res = process_unit(ctx_ref, &plans_ref[unit.table], unit);
                    if tx.send((idx, res)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let stop = |e: GateError| {
            abort.store(true, Ordering::Relaxed);
            written.1.notify_all();
            e
        };
        let mut pending: BTreeMap<usize, UnitResult> = BTreeMap::new();
        let mut u = 0usize;
        for &(t, f) in my_files_ref {
            let plan = &plans_ref[t];
            let rel = format!("{}/part-{f:05}.parquet", plan.decl.name);
            let mut writer = match tmp {
                Some(tmp) => {
                    let path = tmp.join(&rel);
                    let file = std::fs::File::create(&path).map_err(|e| stop(GateError::io(&path, e)))?;
                    let hw = HashingWriter::new(file);
                    let w = ArrowWriter::try_new(hw, plan.rules.out_schema.clone(), Some(props[t].clone()))
                        .and_then(|w| w.into_serialized_writer())
                        .map_err(|e| stop(GateError::parquet(&path, e)))?;
                    Some(w.0)
                }
                None => None,
            };
            let mut file_rows = 0u64;
            while u < units_ref.len() && units_ref[u].table == t && units_ref[u].file == f {
                let mut res = loop {
                    if let Some(r) = pending.remove(&u) {
                        break r;
                    }
                    match rx.recv() {
                        Ok((i, Ok(r))) => {
                            pending.insert(i, r);
                        }
                        Ok((_, Err(e))) => return Err(stop(e)),
                        Err(_) => return Err(stop(GateError::Worker("workers stopped early".into()))),
                    }
                };
                if let Some(w) = writer.as_mut() {
                    let groups = std::mem::take(&mut res.groups);
                    append_groups(w, groups).map_err(|e| stop(GateError::parquet(&plan.files[f], e)))?;
                }
                file_rows += res.tally.rows_out;
                included.add(&res.tally.members);
                progress.advance(STAGE, res.tally.rows_in);
                acc[t].add(res.tally);
                u += 1;
                let (lock, cv) = &written;
                if let Ok(mut d) = lock.lock() {
                    *d = u;
                }
                cv.notify_all();
            }
            if let (Some(w), Some(tmp)) = (writer, tmp) {
                let path = tmp.join(&rel);
                let hw = w.into_inner().map_err(|e| stop(GateError::parquet(&path, e)))?;
                hw.get_ref().sync_all().map_err(|e| stop(GateError::io(&path, e)))?;
                let (blake3, bytes) = hw.digest();
                files.push(OutputFile { path: rel, blake3, bytes, rows: file_rows });
            }
        }
        match hashing.join() {
            Ok(r) => r.map_err(stop),
            Err(_) => Err(stop(GateError::Worker("the source hashing thread panicked".into()))),
        }
    })?;
    let members = included.finish();

    let mut tables = BTreeMap::new();
    for (plan, a) in plans.into_iter().zip(acc) {
        let mut st = plan.stats;
        st.rows_in = a.rows_in;
        st.rows_out = a.rows_out;
        st.excluded = a.excluded.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        st.parties_dropped = a.parties_dropped;
        st.redactions = kinds_map(&a.redactions);
        st.row_commitment = a.lt.to_hex();
        tables.insert(plan.decl.name, st);
    }
    let (policy, ledger, snapshot) = manifest_refs(req)?;
    let shard = ShardFunction::for_purpose(&purpose.key, opts.shards);
    let member_set = write_members(&members, tmp)?;
    source_files.sort();
    files.sort();
    let manifest = assemble(ManifestParts {
        purpose: purpose.key.clone(),
        policy,
        ledger,
        snapshot,
        sources: SourcesRef {
            declaration: req.sources.file.clone(),
            declaration_hash: req.declaration_hash.clone(),
            files: source_files,
        },
        partition: opts.partition.map(|(index, count)| Partition { index, count }),
        tables,
        redaction: RedactionRef { enabled: req.detector.is_some(), member_names: req.member_names },
        members: member_set,
        shard,
        files,
        created: req.created,
    });
    if let Some(tmp) = tmp {
        manifest.write(tmp)?;
    }
    Ok(Outcome { manifest, members, seconds: 0.0 })
}

/// The included members as units arrive: a plain bitset for ids below the dense limit (no sorting),
/// a bitmap for the rest.
#[derive(Default)]
pub(crate) struct Included {
    bits: Vec<u64>,
    big: Vec<u64>,
    map: RoaringTreemap,
}

impl Included {
    pub(crate) fn add(&mut self, ids: &[u64]) {
        for &id in ids {
            if id < DENSE_LIMIT {
                let w = (id >> 6) as usize;
                if w >= self.bits.len() {
                    self.bits.resize(w + 1, 0);
                }
                self.bits[w] |= 1 << (id & 63);
            } else {
                self.big.push(id);
            }
        }
        if self.big.len() > 1 << 20 {
            self.flush();
        }
    }

    fn flush(&mut self) {
        self.big.sort_unstable();
        self.big.dedup();
        for id in self.big.drain(..) {
            self.map.insert(id);
        }
    }

    pub(crate) fn finish(mut self) -> RoaringTreemap {
        self.flush();
        let mut small = Vec::new();
        for (w, &word) in self.bits.iter().enumerate() {
            let mut b = word;
            while b != 0 {
                small.push(((w as u64) << 6) | u64::from(b.trailing_zeros()));
                b &= b - 1;
            }
        }
        // Ascending, so the bitmap is built without searching.
        match RoaringTreemap::from_sorted_iter(small.iter().copied()) {
            Ok(m) => self.map | m,
            Err(_) => {
                self.map.extend(small);
                self.map
            }
        }
    }
}

/// Writes `members.roaring` (when writing) and returns its commitment.
pub(crate) fn write_members(members: &RoaringTreemap, dir: Option<&Path>) -> Result<MemberSet, GateError> {
    let mut buf = Vec::with_capacity(members.serialized_size());
    members.serialize_into(&mut buf).map_err(|e| GateError::Invalid(format!("member bitmap: {e}")))?;
    if let Some(dir) = dir {
        let path = dir.join(MEMBERS_FILE);
        consentry_files::write_part("gate::members::write", &path, &buf).map_err(|e| GateError::io(&path, e))?;
    }
    Ok(MemberSet {
        count: members.len(),
        commitment: blake3::hash(&buf).to_hex().to_string(),
        file: MEMBERS_FILE.into(),
    })
}

pub(crate) fn kinds_map(counts: &[u64; 9]) -> BTreeMap<String, u64> {
    Kind::ALL.iter().filter(|k| counts[k.index()] > 0).map(|k| (k.as_str().to_string(), counts[k.index()])).collect()
}

/// Per-table sums over units.
#[derive(Default)]
struct Acc {
    rows_in: u64,
    rows_out: u64,
    excluded: BTreeMap<&'static str, u64>,
    parties_dropped: u64,
    redactions: [u64; 9],
    lt: LtHash,
}

impl Acc {
    fn add(&mut self, r: Tally) {
        self.rows_in += r.rows_in;
        self.rows_out += r.rows_out;
        for (k, v) in r.excluded {
            *self.excluded.entry(k).or_default() += v;
        }
        self.parties_dropped += r.parties_dropped;
        for (a, b) in self.redactions.iter_mut().zip(r.redactions) {
            *a += b;
        }
        self.lt.merge(&r.lt);
    }
}

/// The parts of a manifest; totals are derived from the tables.
pub(crate) struct ManifestParts {
    pub purpose: String,
    pub policy: PolicyRef,
    pub ledger: LedgerRef,
    pub snapshot: SnapshotRef,
    pub sources: SourcesRef,
    pub partition: Option<Partition>,
    pub tables: BTreeMap<String, TableStats>,
    pub redaction: RedactionRef,
    pub members: MemberSet,
    pub shard: ShardFunction,
    pub files: Vec<OutputFile>,
    pub created: i64,
}

/// Builds a manifest, summing the per-table counts into the totals.
pub(crate) fn assemble(p: ManifestParts) -> Manifest {
    let mut excluded = BTreeMap::new();
    let mut redactions = BTreeMap::new();
    let (mut rows_in, mut rows_out) = (0, 0);
    for t in p.tables.values() {
        // Saturating: the counts may come from files or other machines.
        rows_in = u64::saturating_add(rows_in, t.rows_in);
        rows_out = u64::saturating_add(rows_out, t.rows_out);
        for (k, v) in &t.excluded {
            let e = excluded.entry(k.clone()).or_default();
            *e = u64::saturating_add(*e, *v);
        }
        for (k, v) in &t.redactions {
            let e = redactions.entry(k.clone()).or_default();
            *e = u64::saturating_add(*e, *v);
        }
    }
    Manifest {
        format: FORMAT,
        purpose: p.purpose,
        policy: p.policy,
        ledger: p.ledger,
        snapshot: p.snapshot,
        sources: p.sources,
        partition: p.partition,
        tables: p.tables,
        rows_in,
        rows_out,
        excluded,
        redactions,
        redaction: p.redaction,
        members: p.members,
        shard: p.shard,
        files: p.files,
        tool: crate::TOOL_VERSION.into(),
        created: p.created,
    }
}

/// Combines partial results (`gate --partition I/N`, all N of them) into one dataset at `out`.
pub fn merge(partials: &[PathBuf], out: &Path, created: i64) -> Result<Manifest, GateError> {
    check_output(out)?;
    let mut ms = Vec::new();
    for p in partials {
        ms.push((p.clone(), Manifest::read(p)?));
    }
    let Some((_, first)) = ms.first() else { return Err(GateError::Invalid("no partial results given".into())) };
    let count = match first.partition {
        Some(p) => p.count,
        None => {
            return Err(GateError::Invalid(format!(
                "{} is a complete dataset, not a partial result",
                partials[0].display()
            )));
        }
    };
    // The count comes from a file: compare it with what was given before sizing anything by it.
    if u64::from(count) != ms.len() as u64 {
        return Err(GateError::Invalid(format!(
            "{} is partition {} of {count}, but {} partial results were given; pass all {count} of them",
            partials[0].display(),
            first.partition.map_or(0, |p| p.index),
            ms.len()
        )));
    }
    let mut seen = vec![false; ms.len()];
    for (path, m) in &ms {
        let Some(p) = m.partition else {
            return Err(GateError::Invalid(format!("{} is a complete dataset, not a partial result", path.display())));
        };
        let same = m.purpose == first.purpose
            && m.policy == first.policy
            && m.ledger.position == first.ledger.position
            && m.ledger.at == first.ledger.at
            && m.ledger.tree_root == first.ledger.tree_root
            && m.snapshot == first.snapshot
            && m.sources.declaration_hash == first.sources.declaration_hash
            && m.shard == first.shard
            && m.redaction == first.redaction
            && p.count == count;
        if !same {
            return Err(GateError::Invalid(format!(
                "{} was cut from a different purpose, policy, ledger position, snapshot, declaration or partitioning than {}",
                path.display(),
                partials[0].display()
            )));
        }
        match seen.get_mut(p.index as usize) {
            Some(s) if !*s => *s = true,
            _ => return Err(GateError::Invalid(format!("partition {}/{count} is given twice", p.index))),
        }
    }
    if let Some(d) = first.time_differences(created, None).first() {
        return Err(GateError::Invalid(format!("{}: {d}", partials[0].display())));
    }
    if let Some(missing) = seen.iter().position(|s| !s) {
        return Err(GateError::Invalid(format!(
            "partition {missing}/{count} is missing; pass all {count} partial results"
        )));
    }
    let tmp = partial_dir(out);
    if let Some(parent) = tmp.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|e| GateError::io(parent, e))?;
    }
    let _claim = Claim::take(&tmp)?;
    remove_stale_partials(out);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| GateError::io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| GateError::io(&tmp, e))?;
    let result = (|| -> Result<Manifest, GateError> {
        let mut tables: BTreeMap<String, TableStats> = BTreeMap::new();
        let mut lts: BTreeMap<String, LtHash> = BTreeMap::new();
        let mut members = RoaringTreemap::new();
        let mut files = Vec::new();
        let mut sources = Vec::new();
        for (dir, m) in &ms {
            let mpath = dir.join(MEMBERS_FILE);
            let bytes = std::fs::read(&mpath).map_err(|e| GateError::io(&mpath, e))?;
            if blake3::hash(&bytes).to_hex().as_str() != m.members.commitment {
                return Err(GateError::Invalid(format!("{}: does not match its manifest", mpath.display())));
            }
            let part = RoaringTreemap::deserialize_from(&bytes[..])
                .map_err(|e| GateError::Invalid(format!("{}: {e}", mpath.display())))?;
            members |= part;
            for f in &m.files {
                let src = dir.join(&f.path);
                let dst = tmp.join(&f.path);
                if let Some(parent) = dst.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| GateError::io(parent, e))?;
                }
                if std::fs::hard_link(&src, &dst).is_err() {
                    std::fs::copy(&src, &dst).map_err(|e| GateError::io(&src, e))?;
                }
                files.push(f.clone());
            }
            sources.extend(m.sources.files.iter().cloned());
            for (name, t) in &m.tables {
                let lt = LtHash::from_hex(&t.row_commitment).ok_or_else(|| GateError::Manifest {
                    path: dir.join(MANIFEST_FILE),
                    message: format!("table `{name}`: malformed row commitment"),
                })?;
                lts.entry(name.clone()).or_default().merge(&lt);
                match tables.get_mut(name) {
                    None => {
                        tables.insert(name.clone(), t.clone());
                    }
                    Some(s) => {
                        s.rows_in += t.rows_in;
                        s.rows_out += t.rows_out;
                        s.parties_dropped += t.parties_dropped;
                        for (k, v) in &t.excluded {
                            *s.excluded.entry(k.clone()).or_default() += v;
                        }
                        for (k, v) in &t.redactions {
                            *s.redactions.entry(k.clone()).or_default() += v;
                        }
                    }
                }
            }
        }
        for (name, t) in tables.iter_mut() {
            if let Some(lt) = lts.get(name) {
                t.row_commitment = lt.to_hex();
            }
        }
        files.sort();
        sources.sort();
        let member_set = write_members(&members, Some(&tmp))?;
        let manifest = assemble(ManifestParts {
            purpose: first.purpose.clone(),
            policy: first.policy.clone(),
            ledger: first.ledger.clone(),
            snapshot: first.snapshot.clone(),
            sources: SourcesRef {
                declaration: first.sources.declaration.clone(),
                declaration_hash: first.sources.declaration_hash.clone(),
                files: sources,
            },
            partition: None,
            tables,
            redaction: first.redaction.clone(),
            members: member_set,
            shard: first.shard.clone(),
            files,
            created,
        });
        manifest.write(&tmp)?;
        Ok(manifest)
    })();
    match result {
        Ok(m) => {
            consentry_files::commit_dir(&tmp, out).map_err(|e| GateError::io(out, e))?;
            Ok(m)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}
