//! The evidence bundle: export from a data directory and its ledger store, and loading back for the
//! checks. The layout and every file's format are documented in `FORMAT.md` (crate root).
//!
//! Loading never trusts the index: it is only a list of what the exporter wrote, so a changed byte
//! shows up twice — as a hash mismatch against the index, and in whatever check recomputes the
//! content (the ledger's signatures, a bitmap's commitment, the consent of its members).

use crate::logfile::{BundleStore, Line, Lines};
use crate::models::{ModelSource, ModelStatus};
use crate::report::{Finding, ViolationKind};
use crate::{AuditError, b3, safe_relative};
use consentry_gate::Manifest;
use consentry_gate::fsguard;
use consentry_gate::manifest::{MANIFEST_FILE, MEMBERS_FILE};
use consentry_gate::materialize::{HashingWriter, partial_dir};
use consentry_learn::model::{MODEL_FILE, ModelMeta};
use consentry_ledger::{Event, FactsEntry, LedgerError, PublicKey, SignedTreeHead, Store};
use consentry_lineage::{CitedPosition, DatasetRecord, RegisteredFiles};
use roaring::RoaringTreemap;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Bundle format version (in `INDEX.json`).
pub const FORMAT: u32 = 2;
/// The index: every other file with its BLAKE3 and size.
pub const INDEX_FILE: &str = "INDEX.json";
/// The ledger's Ed25519 public key, hex (as `ledger.pub`).
pub const PUBLIC_KEY_FILE: &str = "public_key.hex";
/// The policy text in force, byte for byte (its BLAKE3 is the policy hash manifests record).
pub const POLICY_FILE: &str = "policy.toml";
/// The policies in force before the current one (a JSON array of their texts, byte for byte), when the data
/// directory recorded any: a dataset cut before a notice was published names one of them by its BLAKE3.
pub const EARLIER_POLICIES_FILE: &str = "policy-earlier.json";
/// Every signed tree head, by tree size (JSON array of `SignedTreeHead`).
pub const CHECKPOINTS_FILE: &str = "ledger/checkpoints.json";
/// The log's key hand-overs (only in a bundle of a log whose key rotated): heads signed by later keys verify with
/// the bundle's genesis public key through them.
pub const KEY_HANDOVERS_FILE: &str = "ledger/key_handovers.json";
/// Witnesses' cosignatures of the log's checkpoints (only when some witness cosigned): JSON array of
/// [`CosignedHead`]. Each cosignature verifies on its own with the witness's key, so the bundle's index is not what
/// makes them trustworthy.
pub const COSIGNATURES_FILE: &str = "ledger/cosignatures.json";
/// Every event, one JSON object per line, in sequence order.
pub const EVENTS_FILE: &str = "ledger/events.jsonl";
/// Every member-facts entry of the log (jurisdiction and birth date), one JSON object per line, in
/// sequence order: the member directory is derived from them.
pub const FACTS_FILE: &str = "ledger/facts.jsonl";
/// The model list with statuses and the withdrawal deadline in force.
pub const MODELS_FILE: &str = "models.json";

/// One file in the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// Path relative to the bundle, `/`-separated.
    pub path: String,
    /// BLAKE3 of its bytes, hex.
    pub blake3: String,
    /// Its size in bytes.
    pub bytes: u64,
}

/// `INDEX.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// [`FORMAT`].
    pub format: u32,
    /// The tool that wrote it.
    pub tool: String,
    /// When it was written (Unix seconds).
    pub created: i64,
    /// Events in the log at export.
    pub events: u64,
    /// Every other file of the bundle, sorted by path.
    pub files: Vec<IndexEntry>,
}

/// One line of `ledger/events.jsonl`: every field of the canonical encoding plus the hashes the store kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct EventLine {
    #[serde(flatten)]
    pub(crate) event: Event,
    /// Leaf hash as stored, hex (the audit recomputes it from the fields).
    pub(crate) leaf_hash: String,
    /// Chain hash as stored, hex.
    pub(crate) chain_hash: String,
}

/// One line of `ledger/facts.jsonl`: every field of the fact encoding plus the hashes the store kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FactsLine {
    #[serde(flatten)]
    pub(crate) facts: FactsEntry,
    /// Leaf hash as stored, hex.
    pub(crate) leaf_hash: String,
    /// Chain hash as stored, hex.
    pub(crate) chain_hash: String,
}

/// One entry of `models.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelListEntry {
    /// Model id; its files are under `models/<id>/`.
    pub id: String,
    /// Lifecycle state.
    pub status: ModelStatus,
    /// What the lineage registry recorded: the model id (BLAKE3 of `model.json`) and each shard's file and
    /// member-bitmap BLAKE3; absent for a model found by a directory scan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered: Option<RegisteredFiles>,
}

/// `models.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelList {
    /// Seconds from a withdrawal being recorded to "no live model contains the member".
    pub deadline_seconds: i64,
    /// Every exported model.
    pub models: Vec<ModelListEntry>,
    /// Model directories in the data directory that the registry does not know (relative to the data directory).
    #[serde(default)]
    pub unregistered: Vec<String>,
    /// Every ledger position the registry cites (cursors, datasets, requests, consent events of models).
    #[serde(default)]
    pub cited_positions: Vec<CitedPosition>,
    /// Every registered dataset with the fields its registration signed and the signature.
    #[serde(default)]
    pub registered_datasets: Vec<DatasetRecord>,
}

/// What [`export`] needs: the data directory, its ledger store and key, the policy text, the models.
pub struct ExportInput<'a> {
    /// Where the data directory keeps its datasets (every one with a manifest is exported).
    pub datasets_dir: &'a Path,
    /// The ledger store.
    pub store: &'a dyn Store,
    /// The ledger's public key.
    pub public_key: PublicKey,
    /// The policy in force, byte for byte.
    pub policy_text: &'a str,
    /// The policies in force before it (texts), oldest first; empty when the policy never changed.
    pub earlier_policies: &'a [String],
    /// Which models exist and which are live.
    pub models: &'a dyn ModelSource,
    /// The export time (Unix seconds).
    pub now: i64,
    /// Witnesses' cosignatures of the checkpoints, by tree size (empty when no witness cosigned).
    pub cosignatures: Vec<CosignedHead>,
}

/// The witnesses' cosignatures of one checkpoint, as a bundle carries them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CosignedHead {
    /// The checkpoint's tree size.
    pub tree_size: u64,
    /// Its origin line and the cosignature lines.
    pub witnessed: consentry_ledger::witness::Witnessed,
}

/// What was exported, and from where (online checks go back to these directories).
#[derive(Debug, Clone, Serialize)]
pub struct ExportSummary {
    /// The bundle directory.
    pub dir: PathBuf,
    /// Events exported.
    pub events: u64,
    /// Signed tree heads exported.
    pub checkpoints: usize,
    /// Members in the exported directory (distinct ids of the fact entries).
    pub members: u64,
    /// Member-facts entries exported (a member whose facts changed has several).
    pub fact_entries: u64,
    /// Dataset name → source directory.
    pub datasets: BTreeMap<String, PathBuf>,
    /// Model id → source directory.
    pub models: BTreeMap<String, PathBuf>,
    /// Files written (index excluded).
    pub files: usize,
}

/// Writes files under a directory and remembers each one's hash for the index.
struct Writer {
    root: PathBuf,
    entries: Vec<IndexEntry>,
}

impl Writer {
    fn path(&self, rel: &str) -> Result<PathBuf, AuditError> {
        let p = self.root.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| AuditError::io(parent, e))?;
        }
        Ok(p)
    }

    fn put(&mut self, rel: &str, bytes: &[u8]) -> Result<(), AuditError> {
        let p = self.path(rel)?;
        std::fs::write(&p, bytes).map_err(|e| AuditError::io(&p, e))?;
        self.entries.push(IndexEntry { path: rel.to_string(), blake3: b3(bytes), bytes: bytes.len() as u64 });
        Ok(())
    }

    /// Streams lines into a file, hashing as it goes.
    fn lines(
        &mut self,
        rel: &str,
        fill: impl FnOnce(&mut dyn Write) -> Result<(), AuditError>,
    ) -> Result<(), AuditError> {
        let p = self.path(rel)?;
        let f = std::fs::File::create(&p).map_err(|e| AuditError::io(&p, e))?;
        let mut w = HashingWriter::new(BufWriter::new(f));
        fill(&mut w)?;
        w.flush().map_err(|e| AuditError::io(&p, e))?;
        let (blake3, bytes) = w.digest();
        self.entries.push(IndexEntry { path: rel.to_string(), blake3, bytes });
        Ok(())
    }

    /// Streams one JSON line per item `scan` hands to its callback into `rel` and counts them; a failed write stops
    /// the scan and is reported as itself, not as the ledger error the scan passes back.
    fn scan_lines<T: Serialize>(
        &mut self,
        rel: &str,
        scan: impl FnOnce(&mut dyn FnMut(T) -> Result<(), LedgerError>) -> Result<(), LedgerError>,
    ) -> Result<u64, AuditError> {
        let mut count = 0u64;
        self.lines(rel, |out| {
            let mut failed: Option<AuditError> = None;
            scan(&mut |line| {
                if let Err(e) = json_line(out, rel, &line) {
                    failed = Some(e);
                    return Err(LedgerError::Invalid("export stopped".into()));
                }
                count += 1;
                Ok(())
            })
            .map_err(|e| failed.take().unwrap_or(AuditError::Ledger(e)))?;
            failed.map_or(Ok(()), Err)
        })?;
        Ok(count)
    }

    /// Copies `dir/file` (never through a link) to `rel` when it exists.
    fn copy_if_present(&mut self, dir: &Path, file: &str, rel: &str) -> Result<bool, AuditError> {
        match fsguard::read_inside(dir, file) {
            Ok(bytes) => {
                self.put(rel, &bytes)?;
                Ok(true)
            }
            Err(consentry_gate::GateError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Ok(false)
            }
            Err(consentry_gate::GateError::Io { path, source }) => Err(AuditError::io(&path, source)),
            Err(e) => Err(AuditError::Link(e)),
        }
    }
}

/// Reads `dir/file` of the data directory, never through a link.
fn read_source(dir: &Path, file: &str) -> Result<Vec<u8>, AuditError> {
    fsguard::read_inside(dir, file).map_err(|e| match e {
        consentry_gate::GateError::Io { path, source } => AuditError::io(&path, source),
        e => AuditError::Link(e),
    })
}

/// Writes `line` as one line of the JSON Lines file `rel`.
fn json_line(out: &mut dyn Write, rel: &str, line: &impl Serialize) -> Result<(), AuditError> {
    serde_json::to_writer(&mut *out, line)?;
    out.write_all(b"\n").map_err(|e| AuditError::io(Path::new(rel), e))
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> AuditError + '_ {
    move |e| AuditError::io(path, e)
}

/// Why a model id from the model list cannot be a directory name under `models/` (`None`: it can).
fn bad_model_id(id: &str) -> Option<String> {
    (!safe_relative(id) || id.contains('/')).then(|| format!("model id `{id}` cannot name a directory"))
}

/// The bitmap files a `model.json` names, relative to its model directory: each shard's members, and
/// the excluded members of an unlearned version.
fn bitmap_files(meta: &ModelMeta) -> impl Iterator<Item = &str> {
    let shards = meta.shards.iter().map(|s| s.members_file.as_str());
    shards.chain(meta.unlearning.as_ref().map(|u| u.file.as_str()))
}

/// A model to export: its entry, its `model.json` bytes (read once, exported as is) and their parse.
struct ExportedModel<'a> {
    entry: &'a crate::models::ModelEntry,
    bytes: Vec<u8>,
    meta: Option<ModelMeta>,
}

/// Dataset directories to export: every directory under `root` (the data directory's datasets) with a manifest,
/// plus the dataset each model names if it lives elsewhere; deduplicated by manifest BLAKE3, named by directory.
fn dataset_dirs(root: &Path, models: &[ExportedModel<'_>]) -> Result<Vec<(String, PathBuf, Vec<u8>)>, AuditError> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if root.is_dir() {
        let mut found: Vec<PathBuf> = Vec::new();
        for e in std::fs::read_dir(root).map_err(io_err(root))? {
            let e = e.map_err(io_err(root))?;
            let p = e.path();
            if e.file_type().map_err(io_err(&p))?.is_symlink() {
                return Err(AuditError::Link(consentry_gate::GateError::Link { path: p }));
            }
            if p.join(MANIFEST_FILE).is_file() {
                found.push(p);
            }
        }
        found.sort();
        candidates.extend(found);
    }
    for meta in models.iter().filter_map(|m| m.meta.as_ref()) {
        // Only a format this build reads, as `ModelMeta::read` would insist.
        if meta.format == consentry_learn::model::FORMAT {
            let p = PathBuf::from(&meta.dataset.path);
            if p.join(MANIFEST_FILE).is_file() {
                candidates.push(p);
            }
        }
    }
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    for dir in candidates {
        let bytes = read_source(&dir, MANIFEST_FILE)?;
        if !seen.insert(b3(&bytes)) {
            continue;
        }
        let base = dir.file_name().and_then(|n| n.to_str()).filter(|n| safe_relative(n)).unwrap_or("dataset");
        let mut name = base.to_string();
        let mut i = 2;
        while names.contains(&name) {
            name = format!("{base}-{i}");
            i += 1;
        }
        names.insert(name.clone());
        out.push((name, dir, bytes));
    }
    Ok(out)
}

/// Refuses an export path where anything already stands (even a dangling link): a bundle never
/// replaces what it does not own. Callers ask before they gather the bundle's input.
pub fn check_export_target(out: &Path) -> Result<(), AuditError> {
    if consentry_files::taken(out) { Err(AuditError::OutputExists(out.to_path_buf())) } else { Ok(()) }
}

/// Writes an evidence bundle to `out` (which must not exist): written under a temporary name beside
/// it and renamed when complete, so a bundle is never partial.
pub fn export(input: &ExportInput<'_>, out: &Path) -> Result<ExportSummary, AuditError> {
    check_export_target(out)?;
    let tmp = partial_dir(out);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
    let result = write_bundle(input, &tmp, out);
    match result {
        Ok(summary) => {
            consentry_files::commit_dir(&tmp, out).map_err(io_err(out))?;
            Ok(summary)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

fn write_bundle(input: &ExportInput<'_>, tmp: &Path, out: &Path) -> Result<ExportSummary, AuditError> {
    let mut w = Writer { root: tmp.to_path_buf(), entries: Vec::new() };
    w.put(PUBLIC_KEY_FILE, format!("{}\n", input.public_key.to_hex()).as_bytes())?;
    w.put(POLICY_FILE, input.policy_text.as_bytes())?;
    if !input.earlier_policies.is_empty() {
        w.put(EARLIER_POLICIES_FILE, &serde_json::to_vec_pretty(input.earlier_policies)?)?;
    }
    // What the registry cites is read before the log, which can then only be longer than it was.
    let cited_positions = input.models.cited_positions()?;
    let checkpoints = input.store.checkpoints()?;
    w.put(CHECKPOINTS_FILE, &serde_json::to_vec_pretty(&checkpoints)?)?;
    let handovers = input.store.key_handovers()?;
    if !handovers.is_empty() {
        w.put(KEY_HANDOVERS_FILE, &serde_json::to_vec_pretty(&handovers)?)?;
    }
    if !input.cosignatures.is_empty() {
        w.put(COSIGNATURES_FILE, &serde_json::to_vec_pretty(&input.cosignatures)?)?;
    }

    let store = input.store;
    let events = w.scan_lines(EVENTS_FILE, |line| {
        store.scan(1, u64::MAX, &mut |s| {
            line(EventLine {
                event: s.event,
                leaf_hash: hex::encode(s.leaf_hash),
                chain_hash: hex::encode(s.chain_hash),
            })
        })
    })?;

    let mut member_ids = RoaringTreemap::new();
    let fact_entries = w.scan_lines(FACTS_FILE, |line| {
        store.scan_facts(1, u64::MAX, &mut |s| {
            member_ids.insert(s.facts.member_id);
            line(FactsLine {
                facts: s.facts,
                leaf_hash: hex::encode(s.leaf_hash),
                chain_hash: hex::encode(s.chain_hash),
            })
        })
    })?;

    let entries = input.models.models()?;
    let mut sources = Vec::with_capacity(entries.len());
    for entry in &entries {
        if let Some(message) = bad_model_id(&entry.id) {
            return Err(AuditError::Source { path: entry.dir.clone(), message });
        }
        let bytes = read_source(&entry.dir, MODEL_FILE)?;
        // An unreadable model.json is exported as is and reported by the check.
        let meta = serde_json::from_slice::<ModelMeta>(&bytes).ok();
        sources.push(ExportedModel { entry, bytes, meta });
    }
    let mut datasets = BTreeMap::new();
    for (name, dir, manifest) in dataset_dirs(input.datasets_dir, &sources)? {
        w.put(&format!("datasets/{name}/{MANIFEST_FILE}"), &manifest)?;
        w.copy_if_present(&dir, MEMBERS_FILE, &format!("datasets/{name}/{MEMBERS_FILE}"))?;
        datasets.insert(name, dir);
    }

    let mut list = ModelList {
        deadline_seconds: input.models.deadline_seconds(),
        models: Vec::new(),
        unregistered: input.models.unregistered()?,
        cited_positions,
        registered_datasets: input.models.registered_datasets()?,
    };
    let mut models = BTreeMap::new();
    for ExportedModel { entry: m, bytes, meta } in &sources {
        let base = format!("models/{}", m.id);
        w.put(&format!("{base}/{MODEL_FILE}"), bytes)?;
        // The bitmaps model.json names (none when it cannot be parsed).
        for f in meta.iter().flat_map(bitmap_files).filter(|f| safe_relative(f)) {
            w.copy_if_present(&m.dir, f, &format!("{base}/{f}"))?;
        }
        list.models.push(ModelListEntry { id: m.id.clone(), status: m.status, registered: m.registered.clone() });
        models.insert(m.id.clone(), m.dir.clone());
    }
    w.put(MODELS_FILE, &serde_json::to_vec_pretty(&list)?)?;

    w.entries.sort_by(|a, b| a.path.cmp(&b.path));
    let files = w.entries.len();
    let index = Index {
        format: FORMAT,
        tool: concat!("consentry-audit ", env!("CARGO_PKG_VERSION")).into(),
        created: input.now,
        events,
        files: std::mem::take(&mut w.entries),
    };
    w.put(INDEX_FILE, &serde_json::to_vec_pretty(&index)?)?;
    Ok(ExportSummary {
        dir: out.to_path_buf(),
        events,
        checkpoints: checkpoints.len(),
        members: member_ids.len(),
        fact_entries,
        datasets,
        models,
        files,
    })
}

/// A dataset as found in the bundle.
#[derive(Debug, Clone)]
pub struct DatasetEvidence {
    /// Its name (directory under `datasets/`).
    pub name: String,
    /// BLAKE3 of its `manifest.json` bytes (what `model.json` refers to).
    pub manifest_blake3: String,
    /// The parsed manifest, when readable.
    pub manifest: Option<Manifest>,
    /// Its member bitmap with the BLAKE3 of its bytes, when present and readable.
    pub members: Option<(RoaringTreemap, String)>,
}

/// A model as found in the bundle.
#[derive(Debug, Clone)]
pub struct ModelEvidence {
    /// Its id.
    pub id: String,
    /// Its status in `models.json`.
    pub status: ModelStatus,
    /// The parsed `model.json`, when readable.
    pub meta: Option<ModelMeta>,
    /// Bitmap file (relative to the model) → bitmap and the BLAKE3 of its bytes, for the files present and readable.
    pub bitmaps: BTreeMap<String, (RoaringTreemap, String)>,
    /// BLAKE3 of its `model.json` bytes, when present.
    pub model_json_blake3: Option<String>,
    /// What the lineage registry recorded for it, per `models.json`.
    pub registered: Option<RegisteredFiles>,
}

/// An opened evidence bundle: everything the checks need (the log as files read on each scan, the rest in memory),
/// plus what opening already found.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Where it was read from.
    pub dir: PathBuf,
    /// The index as written by the exporter.
    pub index: Index,
    /// Problems found while loading (altered, missing, unlisted or unreadable files).
    pub findings: Vec<Finding>,
    /// The public key in the bundle.
    pub public_key: Option<PublicKey>,
    /// The policy text.
    pub policy_text: Option<String>,
    /// The policies in force before it (texts), if the bundle carries them.
    pub earlier_policies: Vec<String>,
    /// Events, member-facts entries and checkpoints; the events and fact entries are read from their files on
    /// every scan, never held.
    pub store: BundleStore,
    /// Datasets, by name.
    pub datasets: Vec<DatasetEvidence>,
    /// Models, by id.
    pub models: Vec<ModelEvidence>,
    /// The deadline in force at export.
    pub deadline_seconds: i64,
    /// Model directories the registry did not know at export.
    pub unregistered: Vec<String>,
    /// The ledger positions the registry cited at export.
    pub cited_positions: Vec<CitedPosition>,
    /// The registered datasets (signed fields and signatures) at export.
    pub registered_datasets: Vec<DatasetRecord>,
    /// Witnesses' cosignatures of the checkpoints, if the bundle carries them.
    pub cosignatures: Vec<CosignedHead>,
    /// The listed files as the index check read them (bytes and BLAKE3), taken by loading so each file is
    /// read and hashed once; empty once the bundle is open.
    files: HashMap<String, (Vec<u8>, String)>,
}

fn unreadable(rel: &str, e: impl std::fmt::Display) -> Finding {
    Finding::violation(ViolationKind::UnreadableFile, format!("{rel} cannot be read"), "a well-formed file", e)
        .file(rel)
}

fn missing(rel: &str) -> Finding {
    Finding::violation(
        ViolationKind::BundleFileMissing,
        format!("{rel} is missing from the bundle"),
        "present",
        "absent",
    )
    .file(rel)
}

/// A listed file whose bytes are not the ones the index names.
fn altered(e: &IndexEntry, found: &str, bytes: u64) -> Finding {
    Finding::violation(
        ViolationKind::BundleFileAltered,
        format!("{} differs from the bundle index", e.path),
        format!("BLAKE3 {} ({} bytes)", e.blake3, e.bytes),
        format!("BLAKE3 {found} ({bytes} bytes)"),
    )
    .file(&e.path)
}

/// The files that grow with the log: streamed, never read whole.
const STREAMED: [&str; 2] = [EVENTS_FILE, FACTS_FILE];

impl Bundle {
    /// Reads a bundle directory: the index (an error if absent: not a bundle), then every file, noting
    /// each difference from the index and each unreadable file as a finding.
    pub fn open(dir: &Path) -> Result<Bundle, AuditError> {
        let ipath = dir.join(INDEX_FILE);
        let text = std::fs::read_to_string(&ipath).map_err(|e| AuditError::NotABundle {
            path: dir.to_path_buf(),
            message: format!("cannot read {INDEX_FILE}: {e}; export one with `consentry audit export --out DIR`"),
        })?;
        let index: Index = serde_json::from_str(&text)
            .map_err(|e| AuditError::NotABundle { path: dir.to_path_buf(), message: format!("{INDEX_FILE}: {e}") })?;
        if index.format != FORMAT {
            return Err(AuditError::NotABundle {
                path: dir.to_path_buf(),
                message: format!("format {} is not supported (this build reads {FORMAT})", index.format),
            });
        }
        let mut b = Bundle {
            dir: dir.to_path_buf(),
            index,
            findings: Vec::new(),
            public_key: None,
            policy_text: None,
            earlier_policies: Vec::new(),
            store: BundleStore::default(),
            datasets: Vec::new(),
            models: Vec::new(),
            deadline_seconds: consentry_lineage::registry::DEFAULT_DEADLINE_SECS,
            unregistered: Vec::new(),
            cited_positions: Vec::new(),
            registered_datasets: Vec::new(),
            cosignatures: Vec::new(),
            files: HashMap::new(),
        };
        b.check_index()?;
        b.load();
        b.files.clear();
        Ok(b)
    }

    /// Every listed file present with its hash and size; nothing unlisted.
    fn check_index(&mut self) -> Result<(), AuditError> {
        // Walked first and never through a link: a link could loop, or lead the audit out of the bundle.
        let present = fsguard::walk_files(&self.dir).map_err(|e| match e {
            consentry_gate::GateError::Io { path, source } => AuditError::io(&path, source),
            e => AuditError::Link(e),
        })?;
        let mut listed = BTreeSet::new();
        for e in &self.index.files {
            if !safe_relative(&e.path) {
                self.findings.push(
                    Finding::violation(
                        ViolationKind::BundleFileAltered,
                        "the index lists a path outside the bundle",
                        "a relative path inside the bundle",
                        &e.path,
                    )
                    .file(&e.path),
                );
                continue;
            }
            listed.insert(e.path.clone());
            if STREAMED.contains(&e.path.as_str()) {
                // The log's files grow with it: hashed as a stream here and read again, line by line, on each scan.
                match fsguard::hash_inside(&self.dir, &e.path) {
                    Ok((h, bytes)) => {
                        if h != e.blake3 || bytes != e.bytes {
                            self.findings.push(altered(e, &h, bytes));
                        }
                    }
                    Err(_) => self.findings.push(missing(&e.path)),
                }
                continue;
            }
            match fsguard::read_inside(&self.dir, &e.path) {
                Ok(bytes) => {
                    let h = b3(&bytes);
                    if h != e.blake3 || bytes.len() as u64 != e.bytes {
                        self.findings.push(altered(e, &h, bytes.len() as u64));
                    }
                    self.files.insert(e.path.clone(), (bytes, h));
                }
                Err(_) => self.findings.push(missing(&e.path)),
            }
        }
        for rel in present {
            if rel != INDEX_FILE && !listed.contains(&rel) {
                self.findings.push(
                    Finding::violation(
                        ViolationKind::BundleFileMissing,
                        format!("{rel} is in the bundle but not in its index"),
                        "listed in INDEX.json",
                        "unlisted",
                    )
                    .file(&rel),
                );
            }
        }
        Ok(())
    }

    /// A bundle file's bytes and BLAKE3 (as the index check read them, if it did), noting a finding when it
    /// is absent.
    fn read(&mut self, rel: &str) -> Option<(Vec<u8>, String)> {
        if let Some(file) = self.files.remove(rel) {
            return Some(file);
        }
        match fsguard::read_inside(&self.dir, rel) {
            Ok(b) => {
                let h = b3(&b);
                Some((b, h))
            }
            Err(_) => {
                if !self.findings.iter().any(|f| f.file.as_deref() == Some(rel)) {
                    self.findings.push(missing(rel));
                }
                None
            }
        }
    }

    fn load(&mut self) {
        if let Some((bytes, _)) = self.read(PUBLIC_KEY_FILE) {
            match std::str::from_utf8(&bytes)
                .map_err(|e| e.to_string())
                .and_then(|t| PublicKey::from_hex(t).map_err(|e| e.to_string()))
            {
                Ok(k) => self.public_key = Some(k),
                Err(e) => self.findings.push(unreadable(PUBLIC_KEY_FILE, e)),
            }
        }
        if let Some((bytes, _)) = self.read(POLICY_FILE) {
            match String::from_utf8(bytes) {
                Ok(t) => self.policy_text = Some(t),
                Err(e) => self.findings.push(unreadable(POLICY_FILE, e)),
            }
        }
        // Optional: a bundle of a policy that never changed has none.
        self.earlier_policies = self.optional_json(EARLIER_POLICIES_FILE);
        let checkpoints: Vec<SignedTreeHead> = match self.read(CHECKPOINTS_FILE) {
            Some((bytes, _)) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                self.findings.push(unreadable(CHECKPOINTS_FILE, e));
                Vec::new()
            }),
            None => Vec::new(),
        };
        let handovers = self.optional_json(KEY_HANDOVERS_FILE);
        self.cosignatures = self.optional_json(COSIGNATURES_FILE);
        let (events, n_events, last_event) = self.check_lines::<crate::logfile::EventRow>(EVENTS_FILE, |e| e.event.seq);
        let (facts, n_facts, last_fact) = self.check_lines::<FactsLine>(FACTS_FILE, |f| f.facts.seq);
        let len = last_event.max(last_fact);
        self.store = BundleStore::new(events, facts, checkpoints, len, (n_events, n_facts)).with_handovers(handovers);
        self.load_datasets();
        self.load_models();
    }

    /// A JSON file the bundle carries only when it has something to say: read when the index lists it (an
    /// unreadable one is a finding), the empty value otherwise.
    fn optional_json<T: serde::de::DeserializeOwned + Default>(&mut self, rel: &str) -> T {
        if !self.index.files.iter().any(|e| e.path == rel) {
            return T::default();
        }
        let Some((bytes, _)) = self.read(rel) else { return T::default() };
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            self.findings.push(unreadable(rel, e));
            T::default()
        })
    }

    /// Reads a log file of the bundle once, line by line, noting each unreadable line: its path for the store to
    /// stream again (`None` when absent, noted as missing), the readable lines and the highest sequence number.
    fn check_lines<L: Line>(&mut self, rel: &str, seq: impl Fn(&L::Stored) -> u64) -> (Option<PathBuf>, u64, u64) {
        let path = match fsguard::inside(&self.dir, rel) {
            Ok(p) if p.is_file() => p,
            _ => {
                if !self.findings.iter().any(|f| f.file.as_deref() == Some(rel)) {
                    self.findings.push(missing(rel));
                }
                return (None, 0, 0);
            }
        };
        let (mut count, mut last) = (0u64, 0u64);
        let read = Lines::<L>::open(Some(&path)).and_then(|mut lines| {
            while let Some((n, parsed)) = lines.next_line()? {
                match parsed {
                    Ok(s) => {
                        count += 1;
                        last = last.max(seq(&s));
                    }
                    Err(e) => self.findings.push(unreadable(rel, format!("line {n}: {e}"))),
                }
            }
            Ok(())
        });
        if let Err(e) = read {
            self.findings.push(unreadable(rel, e));
        }
        (Some(path), count, last)
    }

    fn bitmap(&mut self, rel: &str) -> Option<(RoaringTreemap, String)> {
        let (bytes, hash) = self.read(rel)?;
        match RoaringTreemap::deserialize_from(&bytes[..]) {
            Ok(b) => Some((b, hash)),
            Err(e) => {
                self.findings.push(unreadable(rel, e));
                None
            }
        }
    }

    fn load_datasets(&mut self) {
        let mut names: BTreeSet<String> = BTreeSet::new();
        for e in &self.index.files {
            if let Some(rest) = e.path.strip_prefix("datasets/")
                && let Some((name, file)) = rest.split_once('/')
                && file == MANIFEST_FILE
            {
                names.insert(name.to_string());
            }
        }
        for name in names {
            let mrel = format!("datasets/{name}/{MANIFEST_FILE}");
            let Some((bytes, manifest_blake3)) = self.read(&mrel) else { continue };
            let manifest = match serde_json::from_slice::<Manifest>(&bytes) {
                Ok(m) => Some(m),
                Err(e) => {
                    self.findings.push(unreadable(&mrel, e).dataset(&name));
                    None
                }
            };
            let members = self.bitmap(&format!("datasets/{name}/{MEMBERS_FILE}"));
            self.datasets.push(DatasetEvidence { name, manifest_blake3, manifest, members });
        }
    }

    fn load_models(&mut self) {
        let list: ModelList = match self.read(MODELS_FILE) {
            Some((bytes, _)) => match serde_json::from_slice(&bytes) {
                Ok(l) => l,
                Err(e) => {
                    self.findings.push(unreadable(MODELS_FILE, e));
                    return;
                }
            },
            None => return,
        };
        self.deadline_seconds = list.deadline_seconds;
        self.unregistered = list.unregistered;
        self.cited_positions = list.cited_positions;
        self.registered_datasets = list.registered_datasets;
        for entry in list.models {
            if let Some(message) = bad_model_id(&entry.id) {
                self.findings.push(unreadable(MODELS_FILE, message));
                continue;
            }
            let base = format!("models/{}", entry.id);
            let mrel = format!("{base}/{MODEL_FILE}");
            let read = self.read(&mrel);
            let model_json_blake3 = read.as_ref().map(|(_, h)| h.clone());
            let meta = read.and_then(|(bytes, _)| match serde_json::from_slice::<ModelMeta>(&bytes) {
                Ok(m) => Some(m),
                Err(e) => {
                    self.findings.push(unreadable(&mrel, e).model(&entry.id));
                    None
                }
            });
            let mut bitmaps = BTreeMap::new();
            for f in meta.iter().flat_map(bitmap_files) {
                if !safe_relative(f) {
                    self.findings.push(
                        unreadable(&mrel, format!("`{f}` is not a file inside the model directory")).model(&entry.id),
                    );
                    continue;
                }
                if let Some(b) = self.bitmap(&format!("{base}/{f}")) {
                    bitmaps.insert(f.to_string(), b);
                }
            }
            self.models.push(ModelEvidence {
                id: entry.id,
                status: entry.status,
                meta,
                bitmaps,
                model_json_blake3,
                registered: entry.registered,
            });
        }
    }
}
