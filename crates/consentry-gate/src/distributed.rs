//! The gate over record batches another engine schedules (Apache Spark's `mapInArrow`, a process pool, …).
//!
//! The driver builds a [`GateSpec`] once — the purpose, every declared table's plan, the consent answers as
//! bitmaps, the member names the redaction detector needs and the manifest's header — and ships it to the workers
//! as bytes ([`GateSpec::to_bytes`]; versioned, BLAKE3-sealed: a truncated or edited blob is refused). A worker
//! opens a [`PartitionGate`] per table and partition ([`GateSpec::partition`]), pushes the engine's batches through
//! it (columns are picked by name and cast back, without loss, to the sources' types; the rules are the gate's own
//! [`crate::materialize`] code, not a copy) and may write the gated rows with a [`PartWriter`] (the single-machine
//! gate's writer properties; written under a temporary name and renamed). Its [`Partial`] — counts, row
//! commitment, member bitmap, files written — goes back to the driver as bytes. [`assemble`] checks that the
//! partials cover every source row exactly once and every file they name, sums them the way the single-machine
//! gate sums its units, and writes the manifest: the same one `consentry gate` writes for the same sources and
//! ledger position (only the data files' names and bytes, and `created`, may differ), so `consentry gate verify`
//! accepts the dataset.

use crate::GateError;
use crate::commit::{self, LtHash};
use crate::manifest::*;
use crate::materialize::{
    self, Answers, GateRequest, Included, Rules, Tally, check_output, check_times, detector_from_names, kinds_map,
    manifest_refs, source_file, write_members, writer_properties,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_cast::cast::{CastOptions, cast_with_options};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use consentry_policy::DenyReason;
use consentry_redact::{Detector, Kind};
use parquet::arrow::ArrowWriter;
use roaring::RoaringTreemap;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

/// The first bytes of a serialised [`GateSpec`].
pub const SPEC_MAGIC: &[u8; 8] = b"CSGSPEC\0";
/// The first bytes of a serialised [`Partial`].
pub const PARTIAL_MAGIC: &[u8; 8] = b"CSGPART\0";
/// The format version of both blobs this build reads and writes.
pub const BLOB_FORMAT: u32 = 1;

/// How errors name the engine's input (it has no file).
const ENGINE_INPUT: &str = "engine batch";

// ---------------------------------------------------------------------------------------------------------------
// Sealed blobs: MAGIC(8) | format u32 LE | sections (u64 LE length + bytes) | BLAKE3 of everything before (32).

fn seal(magic: &[u8; 8], sections: &[&[u8]]) -> Vec<u8> {
    let len: usize = sections.iter().map(|s| s.len() + 8).sum();
    let mut out = Vec::with_capacity(12 + len + 32);
    out.extend_from_slice(magic);
    out.extend_from_slice(&BLOB_FORMAT.to_le_bytes());
    for s in sections {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s);
    }
    let digest = blake3::hash(&out);
    out.extend_from_slice(digest.as_bytes());
    out
}

/// Checks magic, format and digest; returns the sections and the digest (hex).
fn unseal<'a>(what: &str, magic: &[u8; 8], bytes: &'a [u8]) -> Result<(Vec<&'a [u8]>, String), GateError> {
    let bad = |m: String| GateError::Invalid(format!("{what}: {m}"));
    if bytes.len() < 12 + 32 || &bytes[..8] != magic {
        return Err(bad(format!(
            "not a Consentry {what} ({} bytes that do not start with {:?})",
            bytes.len(),
            String::from_utf8_lossy(&magic[..7])
        )));
    }
    let (body, digest) = bytes.split_at(bytes.len() - 32);
    if blake3::hash(body).as_bytes() != digest {
        return Err(bad(
            "its BLAKE3 digest does not match its contents: the blob was truncated or edited in transit; ship the \
             bytes unchanged"
                .into(),
        ));
    }
    let mut format = [0u8; 4];
    format.copy_from_slice(&body[8..12]);
    let format = u32::from_le_bytes(format);
    if format != BLOB_FORMAT {
        return Err(bad(format!(
            "format {format}, but this build reads format {BLOB_FORMAT}: run the driver and the workers with the same \
             Consentry version"
        )));
    }
    let mut rest = &body[12..];
    let mut sections = Vec::new();
    while !rest.is_empty() {
        if rest.len() < 8 {
            return Err(bad("a section is cut short".into()));
        }
        let mut n = [0u8; 8];
        n.copy_from_slice(&rest[..8]);
        let n = usize::try_from(u64::from_le_bytes(n)).map_err(|_| bad("a section is too long".into()))?;
        rest = &rest[8..];
        if n > rest.len() {
            return Err(bad("a section is cut short".into()));
        }
        sections.push(&rest[..n]);
        rest = &rest[n..];
    }
    Ok((sections, hex::encode(digest)))
}

fn bitmap_bytes(b: &RoaringTreemap) -> Result<Vec<u8>, GateError> {
    let mut buf = Vec::with_capacity(b.serialized_size());
    b.serialize_into(&mut buf).map_err(|e| GateError::Invalid(format!("member bitmap: {e}")))?;
    Ok(buf)
}

fn bitmap_from(what: &str, bytes: &[u8]) -> Result<RoaringTreemap, GateError> {
    RoaringTreemap::deserialize_from(bytes).map_err(|e| GateError::Invalid(format!("{what}: bitmap: {e}")))
}

// ---------------------------------------------------------------------------------------------------------------
// The spec.

/// One declared table as a worker needs it: the plan [`crate::materialize`] derives from the declaration, the
/// files and the purpose.
#[derive(Debug, Clone)]
pub struct TableSpec {
    name: String,
    /// The declared files' Arrow schema (as read from the first file).
    source_schema: SchemaRef,
    /// Indices in `source_schema` of the columns read (= the output columns), in file order.
    read: Vec<usize>,
    rules: Rules,
    /// The manifest's statistics of the table with zero counts (included, columns, minimised, undeclared…).
    stats: TableStats,
    /// The declared free-text columns (the writer turns their dictionaries and statistics off).
    redact: BTreeSet<String>,
    /// Rows of the table's source files.
    source_rows: u64,
}

impl TableSpec {
    /// The table's declared name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// False when the purpose declares none of the table's categories: nothing of it enters the dataset.
    pub fn included(&self) -> bool {
        self.stats.included
    }

    /// The declared files' schema, as the sources hold it (the types a batch is cast back to).
    pub fn source_schema(&self) -> &SchemaRef {
        &self.source_schema
    }

    /// The columns a partition reads (and writes), in order: member ids and the purpose's categories.
    pub fn columns(&self) -> &[String] {
        &self.stats.columns
    }

    /// The schema of the gated rows [`PartitionGate::push`] returns and [`PartWriter`] writes.
    pub fn output_schema(&self) -> &SchemaRef {
        &self.rules.out_schema
    }

    /// The member-id columns, in declaration order.
    pub fn member_columns(&self) -> &[String] {
        &self.stats.member_columns
    }

    /// Declared columns left out because the purpose does not declare their category.
    pub fn minimised(&self) -> &[String] {
        &self.stats.minimised
    }

    /// Columns of the files the declaration does not name (never pass).
    pub fn undeclared(&self) -> &[String] {
        &self.stats.undeclared
    }

    /// Rows the table's source files hold: what the partials of the table must add up to.
    pub fn source_rows(&self) -> u64 {
        self.source_rows
    }

    /// The schema the engine's output of this table has: its input schema restricted to the output columns, in
    /// the output's order, all nullable (a refusing droppable party's columns are nulled). Cast gated rows to it
    /// with [`cast_batch`].
    pub fn engine_schema(&self, input: &Schema) -> Result<SchemaRef, GateError> {
        let fields = self
            .rules
            .out_schema
            .fields()
            .iter()
            .map(|f| {
                let c = input.field_with_name(f.name()).map_err(|_| self.missing(f.name()))?;
                Ok(Field::new(f.name(), c.data_type().clone(), true))
            })
            .collect::<Result<Vec<_>, GateError>>()?;
        Ok(Arc::new(Schema::new(fields)))
    }

    fn missing(&self, column: &str) -> GateError {
        GateError::MissingColumn { path: PathBuf::from(ENGINE_INPUT), table: self.name.clone(), column: column.into() }
    }
}

/// A table of the spec as serialised.
#[derive(Serialize, Deserialize)]
struct TableWire {
    name: String,
    /// Per column of the source schema: name, Arrow type (its `Display` form, which `FromStr` parses), nullable.
    source_schema: Vec<(String, String, bool)>,
    read: Vec<usize>,
    key: String,
    member_pos: Vec<usize>,
    drop_pos: Vec<Vec<usize>>,
    redact_pos: Vec<usize>,
    stats: TableStats,
    redact: BTreeSet<String>,
    source_rows: u64,
}

/// The spec's header as serialised (the bitmaps follow as sections).
#[derive(Serialize, Deserialize)]
struct SpecWire {
    purpose: String,
    policy: PolicyRef,
    ledger: LedgerRef,
    snapshot: SnapshotRef,
    sources: SourcesRef,
    shard: ShardFunction,
    redaction: RedactionRef,
    tables: Vec<TableWire>,
    zstd_level: i32,
    row_group_rows: usize,
    /// The reasons of the denied bitmaps, in the order of their sections (after the allowed one).
    denied: Vec<DenyReason>,
    /// The member names of the PERSON detector (empty: the gazetteer alone).
    member_names: Vec<String>,
    /// When the spec was built (the dataset's own creation time is the assembly's).
    built: i64,
}

/// Everything a worker needs to apply the gate's rules to its partitions, and what the driver needs to write the
/// manifest afterwards; built once by the driver from the ledger and the sources, shipped to workers as bytes.
#[derive(Clone)]
pub struct GateSpec {
    purpose: String,
    policy: PolicyRef,
    ledger: LedgerRef,
    snapshot: SnapshotRef,
    sources: SourcesRef,
    shard: ShardFunction,
    redaction: RedactionRef,
    tables: Vec<TableSpec>,
    zstd_level: i32,
    row_group_rows: usize,
    allowed: RoaringTreemap,
    denied: Vec<(DenyReason, RoaringTreemap)>,
    member_names: Vec<String>,
    built: i64,
    digest: String,
    /// Built on first use and shared by every partition of this process.
    answers: OnceLock<Arc<Answers<'static>>>,
    detector: OnceLock<Option<Arc<Detector>>>,
}

impl std::fmt::Debug for GateSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GateSpec")
            .field("purpose", &self.purpose)
            .field("position", &self.ledger.position)
            .field("tables", &self.tables.iter().map(|t| &t.name).collect::<Vec<_>>())
            .field("allowed", &self.snapshot.allowed)
            .field("redaction", &self.redaction.enabled)
            .field("digest", &self.digest)
            .finish()
    }
}

impl GateSpec {
    /// Plans every declared table, hashes the source files and takes the consent answers, exactly as the
    /// single-machine gate does for the same request (`req.options.partition` must be unset; `shards`,
    /// `zstd_level` and `row_group_rows` are kept; `req.detector` is not used). Redaction is on when `names` is
    /// given: the declaration's member names ([`materialize::member_names`]), from which each worker builds its detector — the
    /// driver, which redacts nothing, builds none.
    pub fn build(req: &GateRequest<'_>, names: Option<Vec<String>>) -> Result<GateSpec, GateError> {
        if req.options.partition.is_some() {
            return Err(GateError::Invalid(
                "a gate spec covers every source file: leave the partition option unset (the engine partitions)".into(),
            ));
        }
        let plans = materialize::plan(req)?;
        let purpose = req.policy.purpose(req.snapshot.purpose()).key.clone();
        let (policy, ledger, snapshot) = manifest_refs(req)?;
        let mut files = Vec::new();
        let mut tables = Vec::with_capacity(plans.len());
        for plan in &plans {
            let mut source_rows = 0;
            if plan.stats.included {
                for f in 0..plan.files.len() {
                    let sf = source_file(req.sources, plan, f)?;
                    source_rows += sf.rows;
                    files.push(sf);
                }
            }
            tables.push(TableSpec {
                name: plan.decl.name.clone(),
                source_schema: plan.schema.clone(),
                read: plan.read.clone(),
                rules: plan.rules.clone(),
                stats: plan.stats.clone(),
                redact: plan.decl.redact.clone(),
                source_rows,
            });
        }
        files.sort();
        let redaction =
            RedactionRef { enabled: names.is_some(), member_names: names.as_ref().map_or(0, |n| n.len() as u64) };
        let denied = DenyReason::ALL
            .iter()
            .filter_map(|r| req.snapshot.denied(*r).map(|b| (*r, b.clone())))
            .filter(|(_, b)| !b.is_empty())
            .collect();
        let mut spec = GateSpec {
            shard: ShardFunction::for_purpose(&purpose, req.options.shards),
            purpose,
            policy,
            ledger,
            snapshot,
            sources: SourcesRef {
                declaration: req.sources.file.clone(),
                declaration_hash: req.declaration_hash.clone(),
                files,
            },
            redaction,
            tables,
            zstd_level: req.options.zstd_level,
            row_group_rows: req.options.row_group_rows.max(1),
            allowed: req.snapshot.allowed().clone(),
            denied,
            member_names: names.unwrap_or_default(),
            built: req.created,
            digest: String::new(),
            answers: OnceLock::new(),
            detector: OnceLock::new(),
        };
        // Settings a writer would refuse are refused here, on the driver.
        writer_properties(&Schema::empty(), &BTreeSet::new(), spec.zstd_level, spec.row_group_rows)?;
        let bytes = spec.to_bytes()?;
        spec.digest = hex::encode(&bytes[bytes.len() - 32..]);
        Ok(spec)
    }

    /// The spec as bytes: `CSGSPEC\0`, the format version, a JSON header, the consent bitmaps (roaring's portable
    /// format) and a BLAKE3 digest of all of it. The same spec always gives the same bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, GateError> {
        let header = SpecWire {
            purpose: self.purpose.clone(),
            policy: self.policy.clone(),
            ledger: self.ledger.clone(),
            snapshot: self.snapshot.clone(),
            sources: self.sources.clone(),
            shard: self.shard.clone(),
            redaction: self.redaction.clone(),
            tables: self.tables.iter().map(table_wire).collect(),
            zstd_level: self.zstd_level,
            row_group_rows: self.row_group_rows,
            denied: self.denied.iter().map(|(r, _)| *r).collect(),
            member_names: self.member_names.clone(),
            built: self.built,
        };
        let header = serde_json::to_vec(&header).map_err(|e| GateError::Invalid(format!("gate spec: {e}")))?;
        let mut bitmaps = vec![bitmap_bytes(&self.allowed)?];
        for (_, b) in &self.denied {
            bitmaps.push(bitmap_bytes(b)?);
        }
        let mut sections: Vec<&[u8]> = vec![&header];
        sections.extend(bitmaps.iter().map(Vec::as_slice));
        Ok(seal(SPEC_MAGIC, &sections))
    }

    /// Reads a spec written by [`GateSpec::to_bytes`]; refuses anything else, another format version, and bytes
    /// whose digest does not match (truncated or edited).
    pub fn from_bytes(bytes: &[u8]) -> Result<GateSpec, GateError> {
        const WHAT: &str = "gate spec";
        let (sections, digest) = unseal(WHAT, SPEC_MAGIC, bytes)?;
        let bad = |m: String| GateError::Invalid(format!("{WHAT}: {m}"));
        let Some((header, bitmaps)) = sections.split_first() else { return Err(bad("no header".into())) };
        let w: SpecWire = serde_json::from_slice(header).map_err(|e| bad(e.to_string()))?;
        if bitmaps.len() != 1 + w.denied.len() {
            return Err(bad(format!("{} bitmaps, expected {}", bitmaps.len(), 1 + w.denied.len())));
        }
        let allowed = bitmap_from(WHAT, bitmaps[0])?;
        let denied = w
            .denied
            .iter()
            .zip(&bitmaps[1..])
            .map(|(r, b)| Ok((*r, bitmap_from(WHAT, b)?)))
            .collect::<Result<Vec<_>, GateError>>()?;
        let tables = w.tables.into_iter().map(table_from_wire).collect::<Result<Vec<_>, _>>()?;
        Ok(GateSpec {
            purpose: w.purpose,
            policy: w.policy,
            ledger: w.ledger,
            snapshot: w.snapshot,
            sources: w.sources,
            shard: w.shard,
            redaction: w.redaction,
            tables,
            zstd_level: w.zstd_level,
            row_group_rows: w.row_group_rows.max(1),
            allowed,
            denied,
            member_names: w.member_names,
            built: w.built,
            digest,
            answers: OnceLock::new(),
            detector: OnceLock::new(),
        })
    }

    /// BLAKE3 of the serialised spec, hex: names the spec (workers cache by it; every partial records it).
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The purpose key.
    pub fn purpose(&self) -> &str {
        &self.purpose
    }

    /// The ledger state the answers were cut at (position, time, tree root, checkpoint).
    pub fn ledger(&self) -> &LedgerRef {
        &self.ledger
    }

    /// The snapshot the answers come from (hash of the allowed set, counts).
    pub fn snapshot(&self) -> &SnapshotRef {
        &self.snapshot
    }

    /// The policy in force.
    pub fn policy(&self) -> &PolicyRef {
        &self.policy
    }

    /// The declaration and the source files, as the manifest records them.
    pub fn sources(&self) -> &SourcesRef {
        &self.sources
    }

    /// The shard function the dataset's manifest records.
    pub fn shard(&self) -> &ShardFunction {
        &self.shard
    }

    /// Whether free text is redacted, and with how many member names.
    pub fn redaction(&self) -> &RedactionRef {
        &self.redaction
    }

    /// Every declared table, in declaration order.
    pub fn tables(&self) -> &[TableSpec] {
        &self.tables
    }

    /// A declared table by name.
    pub fn table(&self, name: &str) -> Result<&TableSpec, GateError> {
        self.tables.iter().find(|t| t.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.tables.iter().map(|t| t.name.as_str()).collect();
            GateError::Invalid(format!("table `{name}` is not declared; the declared tables are {}", names.join(", ")))
        })
    }

    /// The redaction detector the workers apply (`None` when redaction is off), built from the spec's member names
    /// on first use and shared afterwards (building it is the expensive part: once per process and spec).
    pub fn detector(&self) -> Result<Option<Arc<Detector>>, GateError> {
        if let Some(d) = self.detector.get() {
            return Ok(d.clone());
        }
        let d = if self.redaction.enabled { Some(Arc::new(detector_from_names(&self.member_names)?)) } else { None };
        Ok(self.detector.get_or_init(|| d).clone())
    }

    fn answers(&self) -> Arc<Answers<'static>> {
        self.answers
            .get_or_init(|| {
                let denied = self.denied.iter().map(|(r, b)| (*r, Cow::Borrowed(b))).collect();
                Arc::new(Answers::from_bitmaps(Cow::Borrowed(&self.allowed), denied).into_owned())
            })
            .clone()
    }

    /// Opens the gate for one partition of `table`. `detector` must be [`GateSpec::detector`]'s when the spec
    /// redacts (it is ignored when it does not). A table the purpose does not include is refused: nothing of it
    /// may enter the dataset, so the engine skips it.
    pub fn partition(&self, table: &str, detector: Option<Arc<Detector>>) -> Result<PartitionGate, GateError> {
        let t = self.table(table)?;
        if !t.included() {
            return Err(GateError::Invalid(format!(
                "table `{table}` is not included for purpose `{}`: the purpose declares none of its categories, so \
                 nothing of it enters the dataset; skip it",
                self.purpose
            )));
        }
        let detector = if self.redaction.enabled {
            match detector {
                Some(d) => Some(d),
                None if t.rules.redact_pos.is_empty() => None,
                None => {
                    return Err(GateError::Invalid(format!(
                        "table `{table}` has free text and this spec redacts it: pass GateSpec::detector()"
                    )));
                }
            }
        } else {
            None
        };
        Ok(PartitionGate {
            table: t.clone(),
            spec: self.digest.clone(),
            answers: self.answers(),
            detector,
            tally: Tally::new(),
            members: Included::default(),
            writer: None,
            files: Vec::new(),
        })
    }
}

fn table_wire(t: &TableSpec) -> TableWire {
    TableWire {
        name: t.name.clone(),
        source_schema: t
            .source_schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().to_string(), f.is_nullable()))
            .collect(),
        read: t.read.clone(),
        key: hex::encode(t.rules.key),
        member_pos: t.rules.member_pos.clone(),
        drop_pos: t.rules.drop_pos.clone(),
        redact_pos: t.rules.redact_pos.clone(),
        stats: t.stats.clone(),
        redact: t.redact.clone(),
        source_rows: t.source_rows,
    }
}

fn table_from_wire(w: TableWire) -> Result<TableSpec, GateError> {
    let bad = |m: String| GateError::Invalid(format!("gate spec: table `{}`: {m}", w.name));
    let fields = w
        .source_schema
        .iter()
        .map(|(name, ty, nullable)| {
            let dt = DataType::from_str(ty).map_err(|e| bad(format!("column `{name}`: type `{ty}`: {e}")))?;
            Ok(Field::new(name, dt, *nullable))
        })
        .collect::<Result<Vec<_>, GateError>>()?;
    let source_schema = Arc::new(Schema::new(fields));
    let mut out = Vec::with_capacity(w.read.len());
    for &i in &w.read {
        let f = source_schema.fields().get(i).ok_or_else(|| bad(format!("column index {i} out of range")))?;
        out.push(Field::new(f.name(), f.data_type().clone(), true));
    }
    let out_schema = Arc::new(Schema::new(out));
    let key = commit::schema_key(&w.name, &out_schema)?;
    if hex::encode(key) != w.key {
        return Err(bad("its schema key does not match its columns".into()));
    }
    let n = out_schema.fields().len();
    let in_range = |p: &usize| *p < n;
    if !w.member_pos.iter().all(in_range)
        || w.drop_pos.len() != w.member_pos.len()
        || !w.drop_pos.iter().flatten().all(in_range)
        || !w.redact_pos.iter().all(in_range)
        || w.stats.columns.len() != n
    {
        return Err(bad("its column positions do not fit its columns".into()));
    }
    Ok(TableSpec {
        rules: Rules { out_schema, key, member_pos: w.member_pos, drop_pos: w.drop_pos, redact_pos: w.redact_pos },
        name: w.name,
        source_schema,
        read: w.read,
        stats: w.stats,
        redact: w.redact,
        source_rows: w.source_rows,
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Casting between the engine's types and the sources'.

/// Whether a column of type `from` may stand for one of type `to` (a cast that is checked for loss afterwards):
/// numbers for numbers, times for times, text for text, lists of such — never text for a number.
fn castable(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    let numeric = |d: &DataType| d.is_numeric();
    let text = |d: &DataType| matches!(d, Utf8 | LargeUtf8 | Utf8View);
    let binary = |d: &DataType| matches!(d, Binary | LargeBinary | BinaryView);
    match (from, to) {
        (a, b) if a == b => true,
        (Null, _) => true,
        (Dictionary(_, v), b) => castable(v, b),
        (a, b) if numeric(a) && numeric(b) => true,
        (a, b) if text(a) && text(b) => true,
        (a, b) if binary(a) && binary(b) => true,
        (Timestamp(..), Timestamp(..)) | (Date32 | Date64, Date32 | Date64) => true,
        (
            List(a) | LargeList(a) | ListView(a) | LargeListView(a) | FixedSizeList(a, _),
            List(b) | LargeList(b) | ListView(b) | LargeListView(b),
        ) => castable(a.data_type(), b.data_type()),
        _ => false,
    }
}

/// Text to text (and binary to binary, null to anything) cannot lose anything; everything else is checked.
fn lossless_by_kind(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    matches!((from, to), (Utf8 | LargeUtf8 | Utf8View, Utf8 | LargeUtf8 | Utf8View) | (Null, _))
        || matches!((from, to), (Binary | LargeBinary | BinaryView, Binary | LargeBinary | BinaryView))
}

/// Casts one column to `to`, refusing a type that does not stand for it and any value the cast would change
/// (a fraction, an out-of-range id, a sub-millisecond time): the cast result must cast back to the same values.
fn cast_column(col: &ArrayRef, to: &DataType, table: &str, column: &str) -> Result<ArrayRef, GateError> {
    let from = col.data_type();
    if from == to {
        return Ok(col.clone());
    }
    let refuse = |found: String| GateError::ColumnType {
        path: PathBuf::from(ENGINE_INPUT),
        table: table.into(),
        column: column.into(),
        found,
        expected: format!("{to} (or a type that casts to it without loss)"),
    };
    if !castable(from, to) {
        return Err(refuse(from.to_string()));
    }
    let opts = CastOptions { safe: false, ..Default::default() };
    let cast = cast_with_options(col.as_ref(), to, &opts)
        .map_err(|e| refuse(format!("{from} holding a value that does not fit ({e})")))?;
    if !lossless_by_kind(from, to) {
        let back = cast_with_options(cast.as_ref(), from, &opts)
            .map_err(|e| refuse(format!("{from} whose values do not cast back ({e})")))?;
        if back.as_ref() != col.as_ref() {
            return Err(refuse(format!(
                "{from} holding values the cast would change (a fraction, a value out of range, finer time)"
            )));
        }
    }
    Ok(cast)
}

/// Picks `schema`'s columns from `batch` by name and casts each to its type, without loss (see [`cast_column`]):
/// the gate's output to the engine's output schema ([`TableSpec::engine_schema`]), or any batch to any schema.
pub fn cast_batch(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, GateError> {
    cast_named(batch, schema, "(gated rows)")
}

fn cast_named(batch: &RecordBatch, schema: &SchemaRef, table: &str) -> Result<RecordBatch, GateError> {
    let cols = schema
        .fields()
        .iter()
        .map(|f| {
            let col = batch.column_by_name(f.name()).ok_or_else(|| GateError::MissingColumn {
                path: PathBuf::from(ENGINE_INPUT),
                table: table.into(),
                column: f.name().clone(),
            })?;
            cast_column(col, f.data_type(), table, f.name())
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new_with_options(
        schema.clone(),
        cols,
        &arrow_array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
    .map_err(|e| GateError::parquet(Path::new(ENGINE_INPUT), e))
}

// ---------------------------------------------------------------------------------------------------------------
// One partition.

/// The gate over one partition of one table: push the engine's batches, get the gated rows back, and finish with
/// the partition's [`Partial`]. Owns what it uses (it may live in another language's object).
pub struct PartitionGate {
    table: TableSpec,
    spec: String,
    answers: Arc<Answers<'static>>,
    detector: Option<Arc<Detector>>,
    tally: Tally,
    members: Included,
    writer: Option<PartWriter>,
    files: Vec<OutputFile>,
}

impl std::fmt::Debug for PartitionGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionGate")
            .field("table", &self.table.name)
            .field("spec", &self.spec)
            .field("rows_in", &self.tally.rows_in)
            .field("rows_out", &self.tally.rows_out)
            .field("writer", &self.writer)
            .finish()
    }
}

impl PartitionGate {
    /// The table this partition belongs to.
    pub fn table(&self) -> &TableSpec {
        &self.table
    }

    /// Writes every gated batch from now on into `writer` (made for the same spec and table); [`finish`](Self::finish)
    /// closes it and records the file in the partial.
    pub fn write_to(&mut self, writer: PartWriter) -> Result<(), GateError> {
        if writer.table != self.table.name || writer.spec != self.spec {
            return Err(GateError::Invalid(format!(
                "the part writer for table `{}` was made for another table or spec than this partition of `{}`",
                writer.table, self.table.name
            )));
        }
        if let Some(old) = self.writer.replace(writer) {
            self.files.push(old.finish()?);
        }
        Ok(())
    }

    /// Gates one batch in the engine's types: the table's columns are picked by name (others are ignored) and cast
    /// to the sources' types; returns the rows that pass, in [`TableSpec::output_schema`]'s types.
    pub fn push(&mut self, batch: RecordBatch) -> Result<RecordBatch, GateError> {
        let input = cast_named(&batch, &self.table.rules.out_schema, &self.table.name)?;
        let out = materialize::gate_batch(
            &self.answers,
            &self.table.rules,
            self.detector.as_deref(),
            &input,
            &mut self.tally,
            Path::new(ENGINE_INPUT),
        )?;
        self.members.add(&self.tally.members);
        self.tally.members.clear();
        if let Some(w) = self.writer.as_mut() {
            w.write(&out)?;
        }
        Ok(out)
    }

    /// Closes the writer (if any) and returns what the partition counted, committed and wrote.
    pub fn finish(mut self) -> Result<Partial, GateError> {
        if let Some(w) = self.writer.take() {
            self.files.push(w.finish()?);
        }
        self.tally.settle();
        let t = self.tally;
        Ok(Partial {
            spec: self.spec,
            table: self.table.name,
            rows_in: t.rows_in,
            rows_out: t.rows_out,
            excluded: t.excluded.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            parties_dropped: t.parties_dropped,
            redactions: kinds_map(&t.redactions),
            row_commitment: t.lt,
            members: self.members.finish(),
            files: self.files,
        })
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Writing a partition's rows.

/// Writes a partition's gated rows as `DIR/TABLE/NAME.parquet` with the single-machine gate's writer properties:
/// into a temporary name beside it first, renamed when finished (a failed or retried task attempt leaves no
/// half-written file under the final name; [`assemble`] removes leftovers no partial lists).
pub struct PartWriter {
    table: String,
    spec: String,
    rel: String,
    tmp: PathBuf,
    path: PathBuf,
    writer: Option<ArrowWriter<materialize::HashingWriter<std::fs::File>>>,
    rows: u64,
}

impl std::fmt::Debug for PartWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartWriter").field("path", &self.path).field("rows", &self.rows).finish()
    }
}

impl PartWriter {
    /// Starts `dir/TABLE/NAME.parquet` (`name`: letters, digits, `-`, `_` and `.`, not starting with a dot —
    /// e.g. the engine's partition id and attempt).
    pub fn create(dir: &Path, spec: &GateSpec, table: &str, name: &str) -> Result<PartWriter, GateError> {
        let t = spec.table(table)?;
        if !t.included() {
            return Err(GateError::Invalid(format!(
                "table `{table}` is not included for purpose `{}`: nothing of it is written",
                spec.purpose
            )));
        }
        let plain = !name.is_empty()
            && !name.starts_with('.')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !plain {
            return Err(GateError::Invalid(format!(
                "part name `{name}`: use letters, digits, `-`, `_` and `.` only, not starting with a dot"
            )));
        }
        // The staging directory is the driver's to create and remove: a task still running after its job was
        // abandoned (and the directory removed) must not bring it back.
        if !dir.is_dir() {
            return Err(GateError::Invalid(format!(
                "staging directory {} is gone: the job this task belongs to was abandoned",
                dir.display()
            )));
        }
        let tdir = dir.join(table);
        match std::fs::create_dir(&tdir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(GateError::io(&tdir, e)),
            _ => {}
        }
        let file_name = format!("{name}.parquet");
        let path = tdir.join(&file_name);
        let tmp = tdir.join(format!(".{file_name}.tmp-{}-{}", std::process::id(), unique()));
        let file = std::fs::File::create(&tmp).map_err(|e| GateError::io(&tmp, e))?;
        let props = writer_properties(&t.rules.out_schema, &t.redact, spec.zstd_level, spec.row_group_rows)?;
        let writer =
            ArrowWriter::try_new(materialize::HashingWriter::new(file), t.rules.out_schema.clone(), Some(props))
                .map_err(|e| GateError::parquet(&tmp, e))?;
        Ok(PartWriter {
            table: table.into(),
            spec: spec.digest.clone(),
            rel: format!("{table}/{file_name}"),
            tmp,
            path,
            writer: Some(writer),
            rows: 0,
        })
    }

    /// Appends gated rows (in the table's output schema).
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), GateError> {
        let w = self.writer.as_mut().ok_or_else(|| GateError::Invalid("the part writer is closed".into()))?;
        w.write(batch).map_err(|e| GateError::parquet(&self.tmp, e))?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Closes the file, syncs it, renames it to its final name and returns its record for the manifest.
    pub fn finish(mut self) -> Result<OutputFile, GateError> {
        let w = self.writer.take().ok_or_else(|| GateError::Invalid("the part writer is closed".into()))?;
        let hw = w.into_inner().map_err(|e| GateError::parquet(&self.tmp, e))?;
        hw.get_ref().sync_all().map_err(|e| GateError::io(&self.tmp, e))?;
        let (blake3, bytes) = hw.digest();
        drop(hw);
        std::fs::rename(&self.tmp, &self.path).map_err(|e| GateError::io(&self.path, e))?;
        Ok(OutputFile { path: self.rel.clone(), blake3, bytes, rows: self.rows })
    }
}

impl Drop for PartWriter {
    fn drop(&mut self) {
        // Not finished: the temporary file is of no use to anyone.
        if self.writer.is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// A number no other part writer of this process uses, and unlikely in another (time-based).
fn unique() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{t:x}-{n}")
}

// ---------------------------------------------------------------------------------------------------------------
// Partials.

/// What one partition (or several of one table, merged) of a distributed gate counted, committed and wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Partial {
    /// The digest of the spec it was made under.
    pub spec: String,
    /// The table.
    pub table: String,
    /// Rows pushed.
    pub rows_in: u64,
    /// Rows that passed.
    pub rows_out: u64,
    /// Rows excluded, by reason.
    pub excluded: BTreeMap<String, u64>,
    /// Rows kept with a refusing droppable party's columns nulled.
    pub parties_dropped: u64,
    /// Redactions by PII type.
    pub redactions: BTreeMap<String, u64>,
    /// LtHash of the rows that passed.
    pub row_commitment: LtHash,
    /// Members whose data passed.
    pub members: RoaringTreemap,
    /// The files written (paths relative to the dataset directory).
    pub files: Vec<OutputFile>,
}

#[derive(Serialize, Deserialize)]
struct PartialWire {
    spec: String,
    table: String,
    rows_in: u64,
    rows_out: u64,
    excluded: BTreeMap<String, u64>,
    parties_dropped: u64,
    redactions: BTreeMap<String, u64>,
    row_commitment: String,
    files: Vec<OutputFile>,
}

impl Partial {
    /// The partial as bytes: `CSGPART\0`, the format version, a JSON header, the member bitmap (roaring's portable
    /// format) and a BLAKE3 digest of all of it.
    pub fn to_bytes(&self) -> Result<Vec<u8>, GateError> {
        let header = PartialWire {
            spec: self.spec.clone(),
            table: self.table.clone(),
            rows_in: self.rows_in,
            rows_out: self.rows_out,
            excluded: self.excluded.clone(),
            parties_dropped: self.parties_dropped,
            redactions: self.redactions.clone(),
            row_commitment: self.row_commitment.to_hex(),
            files: self.files.clone(),
        };
        let header = serde_json::to_vec(&header).map_err(|e| GateError::Invalid(format!("partial: {e}")))?;
        let members = bitmap_bytes(&self.members)?;
        Ok(seal(PARTIAL_MAGIC, &[&header, &members]))
    }

    /// Reads a partial written by [`Partial::to_bytes`]; refuses anything else and truncated or edited bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Partial, GateError> {
        const WHAT: &str = "gate partial";
        let (sections, _) = unseal(WHAT, PARTIAL_MAGIC, bytes)?;
        let bad = |m: String| GateError::Invalid(format!("{WHAT}: {m}"));
        let [header, members] = sections[..] else {
            return Err(bad(format!("{} sections, expected 2", sections.len())));
        };
        let w: PartialWire = serde_json::from_slice(header).map_err(|e| bad(e.to_string()))?;
        let row_commitment =
            LtHash::from_hex(&w.row_commitment).ok_or_else(|| bad("malformed row commitment".into()))?;
        if let Some(k) = w.redactions.keys().find(|k| !Kind::ALL.iter().any(|x| x.as_str() == k.as_str())) {
            return Err(bad(format!("unknown redaction kind `{k}`")));
        }
        Ok(Partial {
            spec: w.spec,
            table: w.table,
            rows_in: w.rows_in,
            rows_out: w.rows_out,
            excluded: w.excluded,
            parties_dropped: w.parties_dropped,
            redactions: w.redactions,
            row_commitment,
            members: bitmap_from(WHAT, members)?,
            files: w.files,
        })
    }

    /// Adds another partial of the same spec and table (e.g. to combine a worker's partitions before shipping).
    pub fn merge(&mut self, other: Partial) -> Result<(), GateError> {
        if other.spec != self.spec {
            return Err(GateError::Invalid(format!(
                "partials of different gate specs ({} and {}) cannot be merged: they were cut from different ledger \
                 states, sources or options",
                short(&self.spec),
                short(&other.spec)
            )));
        }
        if other.table != self.table {
            return Err(GateError::Invalid(format!(
                "partials of tables `{}` and `{}` cannot be merged: a partial covers one table",
                self.table, other.table
            )));
        }
        // Counts come from bytes another machine sent: they saturate rather than wrap (and then fail the checks).
        self.rows_in = self.rows_in.saturating_add(other.rows_in);
        self.rows_out = self.rows_out.saturating_add(other.rows_out);
        for (k, v) in other.excluded {
            let e = self.excluded.entry(k).or_default();
            *e = e.saturating_add(v);
        }
        self.parties_dropped = self.parties_dropped.saturating_add(other.parties_dropped);
        for (k, v) in other.redactions {
            let e = self.redactions.entry(k).or_default();
            *e = e.saturating_add(v);
        }
        self.row_commitment.merge(&other.row_commitment);
        self.members |= other.members;
        self.files.extend(other.files);
        Ok(())
    }
}

fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

// ---------------------------------------------------------------------------------------------------------------
// Assembly.

/// The directory a distributed job writes its parts into before [`assemble`] renames it to `out`:
/// `.OUT.partial-JOB` beside `out` (`job` names the job, e.g. the engine's application id).
pub fn staging_dir(out: &Path, job: &str) -> PathBuf {
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "dataset".into());
    let job: String = job.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    out.with_file_name(format!(".{name}.partial-{job}"))
}

/// Checks the partials against the spec and the files in `staging`, and turns them into the dataset at `out`:
/// writes `members.roaring` and `manifest.json` into `staging` and renames it to `out`.
///
/// Refused (nothing appears at `out`, `staging` is left for another try): a partial of another spec or of a table
/// the purpose does not include; a file a partial names that is missing, differs from its recorded hash or size,
/// or is named twice; files whose rows differ from the rows the partials passed; a table whose partials do not add
/// up to its source files' rows (a partition missing, failed midway or counted twice); anything in `staging` that
/// is neither a listed part nor a part file of a table (a link, a stray file). Part files no partial lists
/// (leftovers of failed or speculative task attempts) and unfinished temporary files are deleted.
pub fn assemble(
    spec: &GateSpec,
    partials: Vec<Partial>,
    staging: &Path,
    out: &Path,
    created: i64,
) -> Result<Manifest, GateError> {
    check_output(out)?;
    check_times(spec.ledger.at, created)?;
    let mut by_table: BTreeMap<String, Option<Partial>> = BTreeMap::new();
    for p in partials {
        if p.spec != spec.digest {
            return Err(GateError::Invalid(format!(
                "a partial of table `{}` was made under gate spec {}, not this job's {}: partials of another job (or \
                 an older spec) cannot join this dataset",
                p.table,
                short(&p.spec),
                short(&spec.digest)
            )));
        }
        let t = spec.table(&p.table)?;
        if !t.included() {
            return Err(GateError::Invalid(format!(
                "a partial of table `{}`, which purpose `{}` does not include",
                p.table, spec.purpose
            )));
        }
        match by_table.entry(p.table.clone()).or_default() {
            Some(acc) => acc.merge(p)?,
            slot => *slot = Some(p),
        }
    }
    // Every file named once, present, as recorded; and the rows they hold are the rows that passed.
    let mut listed: BTreeSet<String> = BTreeSet::new();
    let mut files = Vec::new();
    for t in spec.tables.iter().filter(|t| t.included()) {
        let Some(p) = by_table.get(&t.name).and_then(Option::as_ref) else {
            if t.source_rows > 0 {
                return Err(GateError::Invalid(format!(
                    "table `{}`: no partial covers its {} source rows; run every partition of every included table",
                    t.name, t.source_rows
                )));
            }
            continue;
        };
        if p.rows_in != t.source_rows {
            return Err(GateError::Invalid(format!(
                "table `{}`: the partials cover {} of {} source rows: a partition is missing, failed midway or was \
                 counted twice; rerun the job",
                t.name, p.rows_in, t.source_rows
            )));
        }
        let accounted = p.excluded.values().fold(p.rows_out, |a, v| a.saturating_add(*v));
        if accounted != p.rows_in {
            return Err(GateError::Invalid(format!(
                "table `{}`: the partials passed {} rows and excluded {} but read {}: a partial was altered or made \
                 by another tool",
                t.name,
                p.rows_out,
                accounted.saturating_sub(p.rows_out),
                p.rows_in
            )));
        }
        let mut rows = 0u64;
        for f in &p.files {
            let prefix = format!("{}/", t.name);
            let ok = f.path.strip_prefix(&prefix).is_some_and(|n| {
                !n.contains('/')
                    && !n.starts_with('.')
                    && n.ends_with(".parquet")
                    && crate::fsguard::is_plain_relative(n)
            });
            if !ok {
                return Err(GateError::Invalid(format!(
                    "a partial of table `{}` names `{}`, which is not a part file of the table",
                    t.name, f.path
                )));
            }
            if !listed.insert(f.path.clone()) {
                return Err(GateError::Invalid(format!(
                    "`{}` is named by two partials: a partition was counted twice; rerun the job",
                    f.path
                )));
            }
            let path = crate::fsguard::inside(staging, &f.path)?;
            if !path.is_file() {
                return Err(GateError::Invalid(format!(
                    "{}: a partial names it but it is not there (written on a machine whose disk is not {}?)",
                    path.display(),
                    staging.display()
                )));
            }
            let (h, bytes) = crate::hash_file(&path)?;
            if h != f.blake3 || bytes != f.bytes {
                return Err(GateError::Invalid(format!(
                    "{}: holds {bytes} bytes with BLAKE3 {}…, but its partial recorded {} bytes with BLAKE3 {}… (a \
                     later task attempt overwrote it?)",
                    path.display(),
                    short(&h),
                    f.bytes,
                    short(&f.blake3)
                )));
            }
            rows = rows.saturating_add(f.rows);
            files.push(f.clone());
        }
        if rows != p.rows_out {
            return Err(GateError::Invalid(format!(
                "table `{}`: the partials passed {} rows but their files hold {rows}: write every partition's rows",
                t.name, p.rows_out
            )));
        }
    }
    tidy_staging(spec, staging, &listed)?;

    let mut tables = BTreeMap::new();
    let mut members = RoaringTreemap::new();
    for t in &spec.tables {
        let mut st = t.stats.clone();
        if let Some(Some(p)) = by_table.remove(&t.name) {
            st.rows_in = p.rows_in;
            st.rows_out = p.rows_out;
            st.excluded = p.excluded;
            st.parties_dropped = p.parties_dropped;
            st.redactions = p.redactions;
            st.row_commitment = p.row_commitment.to_hex();
            members |= p.members;
        }
        tables.insert(t.name.clone(), st);
    }
    files.sort();
    let written = (|| -> Result<Manifest, GateError> {
        let member_set = write_members(&members, Some(staging))?;
        let manifest = materialize::assemble(materialize::ManifestParts {
            purpose: spec.purpose.clone(),
            policy: spec.policy.clone(),
            ledger: spec.ledger.clone(),
            snapshot: spec.snapshot.clone(),
            sources: spec.sources.clone(),
            partition: None,
            tables,
            redaction: spec.redaction.clone(),
            members: member_set,
            shard: spec.shard.clone(),
            files,
            created,
        });
        manifest.write(staging)?;
        Ok(manifest)
    })();
    let manifest = match written {
        Ok(m) => m,
        Err(e) => {
            remove_claims(staging);
            return Err(e);
        }
    };
    // `commit_dir` removes `staging` if the rename fails, so nothing half-made survives anywhere.
    consentry_files::commit_dir(staging, out).map_err(|e| GateError::io(out, e))?;
    Ok(manifest)
}

/// Removes what would make `staging` look like a complete dataset.
fn remove_claims(staging: &Path) {
    let _ = std::fs::remove_file(staging.join(MANIFEST_FILE));
    let _ = std::fs::remove_file(staging.join(MEMBERS_FILE));
}

/// Deletes unlisted part files and unfinished temporary files of the included tables; refuses anything else.
fn tidy_staging(spec: &GateSpec, staging: &Path, listed: &BTreeSet<String>) -> Result<(), GateError> {
    let stray = |p: &Path, why: &str| {
        GateError::Invalid(format!(
            "{}: {why} in the staging directory {}; a distributed gate writes only its tables' part files there",
            p.display(),
            staging.display()
        ))
    };
    let entries = std::fs::read_dir(staging).map_err(|e| GateError::io(staging, e))?;
    for e in entries {
        let e = e.map_err(|e| GateError::io(staging, e))?;
        let path = e.path();
        let ty = e.file_type().map_err(|err| GateError::io(&path, err))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if ty.is_file() && (name == MANIFEST_FILE || name == MEMBERS_FILE) {
            // Left by an assembly that failed after writing them: rewritten below.
            continue;
        }
        let table = spec.tables.iter().find(|t| t.name == name && t.included());
        if !ty.is_dir() || table.is_none() {
            return Err(stray(&path, "not a directory of an included table"));
        }
        for f in std::fs::read_dir(&path).map_err(|err| GateError::io(&path, err))? {
            let f = f.map_err(|err| GateError::io(&path, err))?;
            let fpath = f.path();
            let fty = f.file_type().map_err(|err| GateError::io(&fpath, err))?;
            let fname = f.file_name().to_string_lossy().into_owned();
            let rel = format!("{name}/{fname}");
            if listed.contains(&rel) && fty.is_file() {
                continue;
            }
            let leftover = fty.is_file() && (fname.ends_with(".parquet") || fname.contains(".parquet.tmp-"));
            if !leftover {
                return Err(stray(&fpath, "not a part file"));
            }
            std::fs::remove_file(&fpath).map_err(|err| GateError::io(&fpath, err))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Decimal128Array, Int64Array, StringArray, TimestampMicrosecondArray, UInt64Array};
    use arrow_schema::TimeUnit;

    fn arr(a: impl Array + 'static) -> ArrayRef {
        Arc::new(a)
    }

    #[test]
    fn engine_types_cast_back_without_loss_or_are_refused() {
        let dec = |v: Vec<Option<i128>>, s: i8| arr(Decimal128Array::from(v).with_precision_and_scale(20, s).unwrap());
        // Spark's u64 ids.
        let ok =
            cast_column(&dec(vec![Some(1), None, Some(u64::MAX as i128)], 0), &DataType::UInt64, "t", "id").unwrap();
        assert_eq!(ok.as_ref(), &UInt64Array::from(vec![Some(1), None, Some(u64::MAX)]) as &dyn Array);
        for bad in [dec(vec![Some(u64::MAX as i128 + 1)], 0), dec(vec![Some(-1)], 0), dec(vec![Some(150)], 2)] {
            let e = cast_column(&bad, &DataType::UInt64, "t", "id").unwrap_err().to_string();
            assert!(e.contains("`t.id`") && e.contains("Decimal128"), "{e}");
        }
        // Text never stands for an id, even when it would parse.
        let e = cast_column(&arr(StringArray::from(vec!["7"])), &DataType::UInt64, "t", "id").unwrap_err();
        assert!(matches!(e, GateError::ColumnType { .. }), "{e}");
        // Microseconds to milliseconds: whole milliseconds pass, finer times are refused.
        let ms = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        let us = |v: i64| arr(TimestampMicrosecondArray::from(vec![v]).with_timezone("Etc/UTC"));
        assert!(cast_column(&us(1_000_000), &ms, "t", "at").is_ok());
        assert!(cast_column(&us(1_000_001), &ms, "t", "at").is_err());
        // Integers narrow only while they fit.
        assert!(cast_column(&arr(Int64Array::from(vec![300])), &DataType::UInt8, "t", "n").is_err());
        assert!(cast_column(&arr(Int64Array::from(vec![200])), &DataType::UInt8, "t", "n").is_ok());
    }

    /// Another language's objects hold these, and engines move them between threads.
    #[test]
    fn specs_partials_and_gates_move_between_threads() {
        fn shared<T: Send + Sync>() {}
        fn sent<T: Send>() {}
        shared::<GateSpec>();
        shared::<Partial>();
        sent::<PartitionGate>();
        sent::<PartWriter>();
    }

    #[test]
    fn sealed_blobs_refuse_edits_truncation_and_strangers() {
        let blob = seal(SPEC_MAGIC, &[b"{}", b"abc"]);
        let (s, _) = unseal("x", SPEC_MAGIC, &blob).unwrap();
        assert_eq!(s, vec![&b"{}"[..], &b"abc"[..]]);
        for i in [0, 9, 14, blob.len() - 1] {
            let mut b = blob.clone();
            b[i] ^= 1;
            assert!(unseal("x", SPEC_MAGIC, &b).is_err(), "byte {i}");
        }
        assert!(unseal("x", SPEC_MAGIC, &blob[..blob.len() - 1]).is_err());
        assert!(unseal("x", PARTIAL_MAGIC, &blob).unwrap_err().to_string().contains("not a Consentry"));
    }
}
