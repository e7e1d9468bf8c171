//! The registry: datasets and model versions registered from their directories (after checking every file
//! against its hash), their dependence on consent events, status transitions, unlearning requests, and the
//! lineage queries over all of it.

use crate::db::{Conn, Db, P, Row};
use crate::{LineageError, now};
use consentry_gate::manifest::{MANIFEST_FILE, Manifest, ShardFunction};
use consentry_learn::LearnError;
use consentry_learn::model::{MODEL_FILE, ModelMeta};
#[cfg(feature = "postgres")]
use consentry_ledger::postgres::PgStore;
#[cfg(feature = "sqlite")]
use consentry_ledger::sqlite::SqliteStore;
use consentry_ledger::{FactsEntry, KeyChain, LogKey, PublicKey, Store, StoredEvent};
use consentry_policy::Action;
use roaring::RoaringTreemap;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

/// The deadline from withdrawal to "no live model contains the member" when none is configured: 24 hours.
pub const DEFAULT_DEADLINE_SECS: i64 = 24 * 3600;

/// Where a model version is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelStatus {
    /// Serving; the unlearning worker keeps it free of withdrawn members.
    Live,
    /// Replaced by a newer version (normally one retrained without withdrawn members).
    Superseded,
    /// Taken out of service for good.
    Retired,
}

impl ModelStatus {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelStatus::Live => "live",
            ModelStatus::Superseded => "superseded",
            ModelStatus::Retired => "retired",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<ModelStatus> {
        [ModelStatus::Live, ModelStatus::Superseded, ModelStatus::Retired].into_iter().find(|x| x.as_str() == s)
    }

    /// The lifecycle: live → superseded → retired, live → retired; nothing comes back to life.
    pub fn may_become(self, to: ModelStatus) -> bool {
        matches!(
            (self, to),
            (ModelStatus::Live, ModelStatus::Superseded)
                | (ModelStatus::Live, ModelStatus::Retired)
                | (ModelStatus::Superseded, ModelStatus::Retired)
        )
    }
}

impl fmt::Display for ModelStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an unlearning request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestStatus {
    /// Waiting for its retrain, deadline not yet passed.
    Pending,
    /// Completed within the deadline.
    Done,
    /// The deadline passed before completion (it stays `missed` once completed, so misses remain visible).
    Missed,
}

impl RequestStatus {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Pending => "pending",
            RequestStatus::Done => "done",
            RequestStatus::Missed => "missed",
        }
    }

    fn parse(s: &str) -> Option<RequestStatus> {
        [RequestStatus::Pending, RequestStatus::Done, RequestStatus::Missed].into_iter().find(|x| x.as_str() == s)
    }
}

impl fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A registered dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetRecord {
    /// BLAKE3 of its `manifest.json` (hex).
    pub id: String,
    /// The purpose it was gated for.
    pub purpose: String,
    /// Its directory when registered.
    pub dir: String,
    /// Ledger position (events included) it was materialised at.
    pub ledger_position: u64,
    /// The time of that position (Unix seconds).
    pub ledger_at: i64,
    /// Members in it.
    pub members: u64,
    /// BLAKE3 of its member bitmap.
    pub members_commitment: String,
    /// When the gate wrote it (Unix seconds).
    pub created: i64,
    /// The registration's signature by the ledger's key (hex), over [`crate::signing::dataset_bytes`].
    #[serde(default)]
    pub signature: Option<String>,
}

/// A registered model version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRecord {
    /// BLAKE3 of its `model.json` (hex).
    pub id: String,
    /// `job-recs`, `content` or `replies`.
    pub kind: String,
    /// The purpose of its dataset.
    pub purpose: String,
    /// The dataset it was trained on.
    pub dataset: String,
    /// 1 for a first training, +1 per unlearning.
    pub version: u64,
    /// The version it replaced.
    pub supersedes: Option<String>,
    /// Live, superseded or retired.
    pub status: ModelStatus,
    /// When the status last changed (Unix seconds; `None` while it is the status it was registered with).
    pub status_changed: Option<i64>,
    /// Its directory.
    pub dir: String,
    /// How members map to shards.
    pub shard_function: ShardFunction,
    /// Evaluation results from `model.json`.
    pub metrics: serde_json::Value,
    /// Differential-privacy parameters, when trained with DP.
    pub dp: Option<serde_json::Value>,
    /// When it was written (Unix seconds).
    pub created: i64,
    /// Why this version exists when it was made by unlearning (events and members).
    pub cause: Option<serde_json::Value>,
}

/// One shard of a registered model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardRecord {
    /// Shard index.
    pub index: u32,
    /// BLAKE3 of the shard file.
    pub file_blake3: String,
    /// Members whose rows trained it.
    pub members: u64,
    /// Training rows.
    pub rows: u64,
}

/// A training run (a first training or an unlearning retrain).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The model version it produced.
    pub model: String,
    /// Start (Unix seconds).
    pub started: i64,
    /// End (Unix seconds).
    pub finished: i64,
    /// Shards trained in this run (all of them for a first training).
    pub shards_trained: Vec<u32>,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// What caused it (`{"kind":"unlearning","events":[…],"members":[…]}`), `None` for a first training.
    pub cause: Option<serde_json::Value>,
}

/// One member's unlearning request against one model version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnlearningRequest {
    /// The member to remove.
    pub member: u64,
    /// The purpose they withdrew from.
    pub purpose: String,
    /// The withdrawal (or erasure) event.
    pub event_seq: u64,
    /// The model version that contains the member.
    pub model: String,
    /// When the member withdrew (event time).
    pub requested_at: i64,
    /// When no live model may contain them any more.
    pub deadline: i64,
    /// Pending, done or missed.
    pub status: RequestStatus,
    /// The version retrained without them.
    pub new_model: Option<String>,
    /// When that version went live (or the model was retired).
    pub completed_at: Option<i64>,
}

impl UnlearningRequest {
    /// A new pending request: `member`, in `model`, withdrew from `purpose` by event `event_seq` at `at`; it is
    /// due `deadline_secs` (0 or more) later.
    pub(crate) fn pending(
        member: u64,
        purpose: &str,
        event_seq: u64,
        model: &str,
        at: i64,
        deadline_secs: i64,
    ) -> UnlearningRequest {
        UnlearningRequest {
            member,
            purpose: purpose.to_string(),
            event_seq,
            model: model.to_string(),
            requested_at: at,
            deadline: at.saturating_add(deadline_secs.max(0)),
            status: RequestStatus::Pending,
            new_model: None,
            completed_at: None,
        }
    }
}

/// Seconds a completed request came after its deadline; `None` when it was on time or is still open.
pub fn late_by(q: &UnlearningRequest) -> Option<i64> {
    q.completed_at.map(|at| at.saturating_sub(q.deadline)).filter(|by| *by > 0)
}

/// A dataset a member's data entered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberDataset {
    /// Dataset id.
    pub dataset: String,
    /// Its purpose.
    pub purpose: String,
    /// Its directory.
    pub dir: String,
    /// The ledger position it was gated at.
    pub ledger_position: u64,
    /// When it was written.
    pub created: i64,
}

/// A model version (and shard) a member's data entered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberModel {
    /// Model id.
    pub model: String,
    /// Its kind.
    pub kind: String,
    /// Its purpose.
    pub purpose: String,
    /// Its dataset.
    pub dataset: String,
    /// Its version.
    pub version: u64,
    /// The shard the member's rows trained.
    pub shard: u32,
    /// The grant the member's inclusion rests on (`None`: a jurisdiction default, no event).
    pub consent_event: Option<u64>,
    /// When that grant was made.
    pub consent_time: Option<i64>,
    /// When the model version was written.
    pub trained: i64,
    /// Its status now.
    pub status: ModelStatus,
    /// When that status began.
    pub status_changed: Option<i64>,
    /// When the member was removed from the model line by unlearning.
    pub removed_at: Option<i64>,
    /// The version retrained without them.
    pub removed_by: Option<String>,
    /// Seconds the removal came after its deadline (`None`: on time, or not removed yet).
    #[serde(default)]
    pub removed_late_by: Option<i64>,
    /// One line for people: "live", "removed by unlearning at …", ….
    pub state: String,
}

/// Everything the registry knows about one member: the answer to a data-subject access request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberLineage {
    /// The member.
    pub member: u64,
    /// Every record of the member's facts (jurisdiction, birth date) in the log, oldest first: each is a signed
    /// entry, so a change is visible here and has a receipt (`ledger receipt --event SEQ`).
    pub facts: Vec<FactsEntry>,
    /// Datasets their data entered.
    pub datasets: Vec<MemberDataset>,
    /// Model versions (and shards) their data entered, oldest first.
    pub models: Vec<MemberModel>,
    /// Unlearning requests about them.
    pub requests: Vec<UnlearningRequest>,
    /// Their privacy loss over every model line their data entered (promise 7).
    pub privacy: MemberPrivacy,
}

/// A member's privacy loss: per model line, and composed.
///
/// The versions of one model line (a training and the versions unlearning made from it) count once: a retrained
/// shard reuses its noise, so a later version reveals nothing more about a member who stayed in it. Independent
/// trainings count separately, even of the same kind on the same dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberPrivacy {
    /// Per model line (keyed by its first version's id): the (ε, δ) its training exposed the member to.
    pub lines: Vec<consentry_dp::ModelLoss>,
    /// Basic and RDP composition over the DP lines; `None` when there are none. Lines without a formal bound are
    /// not composed (they are listed in `without_bound`).
    pub cumulative: Option<consentry_dp::CumulativeLoss>,
    /// Model lines trained without differential privacy: no formal bound on what they reveal.
    pub without_bound: Vec<String>,
}

/// Everything the registry knows about one model version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelLineage {
    /// The model.
    pub model: ModelRecord,
    /// Its dataset.
    pub dataset: DatasetRecord,
    /// Its shards with member counts.
    pub shards: Vec<ShardRecord>,
    /// Members over all shards.
    pub members: u64,
    /// Consent events (grant seqs) its members' inclusion rests on, ascending.
    pub events: Vec<u64>,
    /// Members included by a jurisdiction default rather than an event.
    pub members_without_event: u64,
    /// The version that replaced it.
    pub superseded_by: Option<String>,
    /// Its training runs.
    pub runs: Vec<RunRecord>,
    /// Unlearning requests against it.
    pub requests: Vec<UnlearningRequest>,
}

/// A model directory whose files all match `model.json`, with its shard bitmaps loaded.
pub(crate) struct CheckedModel {
    pub id: String,
    pub dir: PathBuf,
    pub meta: ModelMeta,
    pub bitmaps: Vec<(Vec<u8>, RoaringTreemap)>,
    pub excluded: RoaringTreemap,
}

/// The registry, in the same store as the ledger.
pub struct Registry {
    conn: Conn,
    store: Box<dyn Store>,
    /// The ledger's signing key: every registration is signed with it ([`crate::signing`]).
    signer: Option<LogKey>,
    /// The ledger's public key: every registration is checked with it before the registry vouches for it.
    public: Option<KeyChain>,
    /// The data directory: directories inside it are recorded relative to it, so a data directory can be moved
    /// (or copied, as tests do) and the registry still finds its datasets and models.
    base: Option<PathBuf>,
}

pub(crate) fn to_i64(v: u64, what: &str) -> Result<i64, LineageError> {
    i64::try_from(v).map_err(|_| LineageError::Invalid(format!("{what} {v} is too large for the registry")))
}

fn json_text(v: &impl Serialize) -> Result<String, LineageError> {
    serde_json::to_string(v).map_err(|e| LineageError::Corrupt(format!("cannot encode JSON: {e}")))
}

fn parse_json<T: for<'de> Deserialize<'de>>(s: &str, what: &str) -> Result<T, LineageError> {
    serde_json::from_str(s).map_err(|e| LineageError::Corrupt(format!("{what}: {e}")))
}

pub(crate) fn bitmap(bytes: &[u8], what: &str) -> Result<RoaringTreemap, LineageError> {
    RoaringTreemap::deserialize_from(bytes).map_err(|e| LineageError::Corrupt(format!("{what}: {e}")))
}

const DATASET_COLS: &str =
    "id, purpose, dir, ledger_position, ledger_at, members, members_commitment, created, signature";
const MODEL_COLS: &str = "id, kind, purpose, dataset_id, version, supersedes, status, status_changed, dir, \
                          shard_function_json, metrics_json, dp_json, created, cause_json FROM registry_models";
const REQUEST_COLS: &str = "member, purpose, event_seq, old_model, requested_at, deadline, status, new_model, \
                            completed_at FROM registry_unlearning";

fn dataset_row(r: &Row) -> Result<DatasetRecord, LineageError> {
    Ok(DatasetRecord {
        id: r.text(0)?,
        purpose: r.text(1)?,
        dir: r.text(2)?,
        ledger_position: r.u64(3)?,
        ledger_at: r.i64(4)?,
        members: r.u64(5)?,
        members_commitment: r.text(6)?,
        created: r.i64(7)?,
        signature: r.opt_text(8)?,
    })
}

fn model_row(r: &Row) -> Result<ModelRecord, LineageError> {
    let status = r.text(6)?;
    Ok(ModelRecord {
        id: r.text(0)?,
        kind: r.text(1)?,
        purpose: r.text(2)?,
        dataset: r.text(3)?,
        version: r.u64(4)?,
        supersedes: r.opt_text(5)?,
        status: ModelStatus::parse(&status).ok_or_else(|| LineageError::Corrupt(format!("model status {status}")))?,
        status_changed: r.opt_i64(7)?,
        dir: r.text(8)?,
        shard_function: parse_json(&r.text(9)?, "shard function")?,
        metrics: parse_json(&r.text(10)?, "metrics")?,
        dp: r.opt_text(11)?.map(|s| parse_json(&s, "dp")).transpose()?,
        created: r.i64(12)?,
        cause: r.opt_text(13)?.map(|s| parse_json(&s, "cause")).transpose()?,
    })
}

pub(crate) fn request_row(r: &Row) -> Result<UnlearningRequest, LineageError> {
    let status = r.text(6)?;
    Ok(UnlearningRequest {
        member: r.u64(0)?,
        purpose: r.text(1)?,
        event_seq: r.u64(2)?,
        model: r.text(3)?,
        requested_at: r.i64(4)?,
        deadline: r.i64(5)?,
        status: RequestStatus::parse(&status)
            .ok_or_else(|| LineageError::Corrupt(format!("request status {status}")))?,
        new_model: r.opt_text(7)?,
        completed_at: r.opt_i64(8)?,
    })
}

/// What `resolve` looks ids up in: the table, the word for people, and what to do when an id is not there.
struct Lookup {
    table: &'static str,
    what: &'static str,
    hint: &'static str,
}

const DATASETS: Lookup = Lookup {
    table: "registry_datasets",
    what: "dataset",
    hint: "register it with `consentry lineage register-dataset DIR`",
};

const MODELS: Lookup =
    Lookup { table: "registry_models", what: "model", hint: "register it with `consentry lineage register-model DIR`" };

/// Looks an id up by full value or unique prefix (at least 6 hex digits).
fn resolve(db: &mut dyn Db, ids: &Lookup, id: &str) -> Result<String, LineageError> {
    let Lookup { table, what, hint } = *ids;
    let id = id.trim().to_ascii_lowercase();
    if id.len() < 6 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(LineageError::Invalid(format!(
            "`{id}` is not a {what} id: give its BLAKE3 (hex), or at least its first 6 hex digits"
        )));
    }
    let rows =
        db.query(&format!("SELECT id FROM {table} WHERE id LIKE $1 ORDER BY id LIMIT 2"), &[P::T(&format!("{id}%"))])?;
    match rows.len() {
        0 => Err(LineageError::NotFound { what, id, hint }),
        1 => rows[0].text(0),
        _ => Err(LineageError::Invalid(format!("{what} id prefix `{id}` is ambiguous; give more digits"))),
    }
}

pub(crate) fn get_dataset(db: &mut dyn Db, id: &str) -> Result<Option<DatasetRecord>, LineageError> {
    db.query(&format!("SELECT {DATASET_COLS} FROM registry_datasets WHERE id = $1"), &[P::T(id)])?
        .first()
        .map(dataset_row)
        .transpose()
}

pub(crate) fn get_model(db: &mut dyn Db, id: &str) -> Result<Option<ModelRecord>, LineageError> {
    db.query(&format!("SELECT {MODEL_COLS} WHERE id = $1"), &[P::T(id)])?.first().map(model_row).transpose()
}

/// The dataset an id (or unique prefix) names.
fn find_dataset(db: &mut dyn Db, id: &str) -> Result<DatasetRecord, LineageError> {
    let id = resolve(db, &DATASETS, id)?;
    get_dataset(db, &id)?.ok_or_else(|| LineageError::Corrupt(format!("dataset {id} vanished")))
}

/// The model version an id (or unique prefix) names.
fn find_model(db: &mut dyn Db, id: &str) -> Result<ModelRecord, LineageError> {
    let id = resolve(db, &MODELS, id)?;
    get_model(db, &id)?.ok_or_else(|| LineageError::Corrupt(format!("model {id} vanished")))
}

/// Model versions, optionally of one purpose and/or status, oldest first.
pub(crate) fn list_models(
    db: &mut dyn Db,
    purpose: Option<&str>,
    status: Option<ModelStatus>,
) -> Result<Vec<ModelRecord>, LineageError> {
    let rows = db.query(
        &format!(
            "SELECT {MODEL_COLS} WHERE ($1 = '' OR purpose = $1) AND ($2 = '' OR status = $2) \
             ORDER BY created, version, id"
        ),
        &[P::T(purpose.unwrap_or("")), P::T(status.map_or("", ModelStatus::as_str))],
    )?;
    rows.iter().map(model_row).collect()
}

/// The version that replaced `id`, if any.
pub(crate) fn successor(db: &mut dyn Db, id: &str) -> Result<Option<String>, LineageError> {
    db.query("SELECT id FROM registry_models WHERE supersedes = $1 ORDER BY created LIMIT 1", &[P::T(id)])?
        .first()
        .map(|r| r.text(0))
        .transpose()
}

/// Longest version chain followed: ids are content hashes, so a chain cannot loop, but a corrupt store could.
const MAX_CHAIN: usize = 10_000;

/// The first live version among the versions that replaced `id` (following the chain of successors), if any.
pub(crate) fn live_successor(db: &mut dyn Db, id: &str) -> Result<Option<ModelRecord>, LineageError> {
    let mut next = id.to_string();
    for _ in 0..MAX_CHAIN {
        let Some(n) = successor(db, &next)? else { break };
        next = n;
        if let Some(m) = get_model(db, &next)?
            && m.status == ModelStatus::Live
        {
            return Ok(Some(m));
        }
    }
    Ok(None)
}

/// Sets a model's status and when it changed (the caller has checked the lifecycle allows it).
pub(crate) fn mark_status(db: &mut dyn Db, id: &str, to: ModelStatus, at: i64) -> Result<(), LineageError> {
    db.exec(
        "UPDATE registry_models SET status = $2, status_changed = $3 WHERE id = $1",
        &[P::T(id), P::T(to.as_str()), P::I(at)],
    )?;
    Ok(())
}

pub(crate) fn shard_bitmaps(db: &mut dyn Db, model: &str) -> Result<Vec<RoaringTreemap>, LineageError> {
    db.query("SELECT members_bitmap FROM registry_shards WHERE model_id = $1 ORDER BY idx", &[P::T(model)])?
        .iter()
        .map(|r| bitmap(&r.blob(0)?, "shard bitmap"))
        .collect()
}

fn dataset_bitmap(db: &mut dyn Db, id: &str) -> Result<RoaringTreemap, LineageError> {
    let rows = db.query("SELECT members_bitmap FROM registry_datasets WHERE id = $1", &[P::T(id)])?;
    let r = rows.first().ok_or_else(|| LineageError::Corrupt(format!("dataset {id} vanished")))?;
    bitmap(&r.blob(0)?, "dataset bitmap")
}

/// Inserts `(model, event seq, member)` rows in multi-row statements.
pub(crate) fn insert_events(db: &mut dyn Db, model: &str, events: &[(u64, u64)]) -> Result<(), LineageError> {
    for chunk in events.chunks(300) {
        let mut sql = String::from("INSERT INTO registry_model_events (model_id, event_seq, member) VALUES ");
        let mut nums: Vec<i64> = Vec::with_capacity(chunk.len() * 2);
        for (k, (seq, member)) in chunk.iter().enumerate() {
            if k > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("($1, ${}, ${})", 2 + 2 * k, 3 + 2 * k));
            nums.push(to_i64(*seq, "event")?);
            nums.push(to_i64(*member, "member")?);
        }
        let mut params = vec![P::T(model)];
        params.extend(nums.into_iter().map(P::I));
        db.exec(&sql, &params)?;
    }
    Ok(())
}

/// Inserts an unlearning request unless the same (member, event, model) is already recorded.
pub(crate) fn insert_request(db: &mut dyn Db, r: &UnlearningRequest) -> Result<bool, LineageError> {
    let n = db.exec(
        "INSERT INTO registry_unlearning (member, purpose, event_seq, old_model, requested_at, deadline, status) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        &[
            P::I(to_i64(r.member, "member")?),
            P::T(&r.purpose),
            P::I(to_i64(r.event_seq, "event")?),
            P::T(&r.model),
            P::I(r.requested_at),
            P::I(r.deadline),
            P::T(r.status.as_str()),
        ],
    )?;
    Ok(n > 0)
}

/// What is wrong with a model directory, without repeating the directory the error is reported against.
pub(crate) fn model_problem(e: LearnError) -> String {
    match e {
        LearnError::Model { message, .. } => message,
        e => e.to_string(),
    }
}

/// Reads a model directory and checks every shard file and member bitmap against `model.json`.
pub(crate) fn check_model_dir(dir: &Path) -> Result<CheckedModel, LineageError> {
    let bad = |dir: &Path, message: String| LineageError::ModelFiles { dir: dir.to_path_buf(), message };
    let dir = std::fs::canonicalize(dir).map_err(|e| bad(dir, format!("cannot open the directory: {e}")))?;
    let (meta, id) = ModelMeta::read_hashed(&dir).map_err(|e| bad(&dir, model_problem(e)))?;
    if meta.shards.len() != meta.shard_function.shards as usize {
        return Err(bad(
            &dir,
            format!(
                "{MODEL_FILE} lists {} shards but its shard function has {}",
                meta.shards.len(),
                meta.shard_function.shards
            ),
        ));
    }
    let mut bitmaps = Vec::with_capacity(meta.shards.len());
    for (i, s) in meta.shards.iter().enumerate() {
        if s.index as usize != i {
            return Err(bad(&dir, format!("shard {i} is listed with index {}", s.index)));
        }
        meta.shard_bytes(&dir, i).map_err(|e| bad(&dir, model_problem(e)))?;
        let bytes = consentry_gate::fsguard::read_inside(&dir, &s.members_file)
            .map_err(|e| bad(&dir, format!("shard {i} member bitmap {} cannot be read: {e}", s.members_file)))?;
        if blake3::hash(&bytes).to_hex().to_string() != s.members_commitment {
            return Err(bad(
                &dir,
                format!("shard {i} member bitmap {} was altered (BLAKE3 differs from {MODEL_FILE})", s.members_file),
            ));
        }
        let b = RoaringTreemap::deserialize_from(&bytes[..])
            .map_err(|e| bad(&dir, format!("shard {i} member bitmap {}: {e}", s.members_file)))?;
        if b.len() != s.members {
            return Err(bad(&dir, format!("shard {i} has {} members, {MODEL_FILE} says {}", b.len(), s.members)));
        }
        bitmaps.push((bytes, b));
    }
    let excluded = meta.excluded(&dir).map_err(|e| bad(&dir, model_problem(e)))?;
    Ok(CheckedModel { id, dir, meta, bitmaps, excluded })
}

/// What the ledger says about a model's members: the grants their inclusion rests on (at the dataset's
/// position), and withdrawals after that position.
struct ConsentFacts {
    /// (grant seq, member), ascending by seq.
    grants: Vec<(u64, u64)>,
    /// Withdrawals after the dataset's position by members of the model: (seq, member, event time).
    withdrawals: Vec<(u64, u64, i64)>,
}

fn consent_facts(
    store: &dyn Store,
    purpose: &str,
    position: u64,
    members: &RoaringTreemap,
) -> Result<ConsentFacts, LineageError> {
    let len = store.len()?;
    if position > len {
        return Err(LineageError::Invalid(format!(
            "the dataset was gated at ledger position {position}, but this ledger has only {len} events: is this \
             the ledger it was gated from? (check --data / --database)"
        )));
    }
    let mut latest: HashMap<u64, (Action, u64)> = HashMap::new();
    let mut withdrawals = Vec::new();
    store.scan(1, len, &mut |s: StoredEvent| {
        let e = &s.event;
        if e.body.purpose == purpose && members.contains(e.body.member_id) {
            if e.seq <= position {
                latest.insert(e.body.member_id, (e.body.action, e.seq));
            } else if e.body.action == Action::Withdraw {
                withdrawals.push((e.seq, e.body.member_id, e.body.event_time));
            }
        }
        Ok(())
    })?;
    let mut grants: Vec<(u64, u64)> =
        latest.into_iter().filter(|(_, (a, _))| *a == Action::Grant).map(|(m, (_, seq))| (seq, m)).collect();
    grants.sort_unstable();
    Ok(ConsentFacts { grants, withdrawals })
}

impl Registry {
    #[cfg(feature = "sqlite")]
    /// Opens the registry in the ledger's SQLite file (creating the ledger and registry tables if missing).
    pub fn open_sqlite(path: &Path) -> Result<Registry, LineageError> {
        let store = SqliteStore::open(path)?;
        let conn = Conn::open_sqlite(path)?;
        Ok(Registry { conn, store: Box::new(store), signer: None, public: None, base: None })
    }

    #[cfg(feature = "sqlite")]
    /// Opens the registry in the ledger's SQLite file for reading only: for queries, verification and the audit,
    /// which then work on a read-only copy of a data directory; anything that writes fails.
    pub fn open_sqlite_read_only(path: &Path) -> Result<Registry, LineageError> {
        let store = SqliteStore::open_read_only(path)?;
        let conn = Conn::open_sqlite_read_only(path)?;
        Ok(Registry { conn, store: Box::new(store), signer: None, public: None, base: None })
    }

    #[cfg(feature = "postgres")]
    /// Opens the registry in the ledger's PostgreSQL database.
    pub fn connect_postgres(url: &str) -> Result<Registry, LineageError> {
        let store = PgStore::connect(url)?;
        let conn = Conn::connect_postgres(url)?;
        Ok(Registry { conn, store: Box::new(store), signer: None, public: None, base: None })
    }

    /// Records directories inside `data_dir` relative to it from now on, and resolves relative records against it.
    pub fn with_base(mut self, data_dir: &Path) -> Registry {
        self.base = Some(data_dir.canonicalize().unwrap_or_else(|_| data_dir.to_path_buf()));
        self
    }

    /// Signs every registration from now on with the ledger's key (and, unless given a key chain, checks records
    /// with its public half).
    pub fn with_key(mut self, key: LogKey) -> Registry {
        if self.public.is_none() {
            self.public = Some(KeyChain::new(key.public()));
        }
        self.signer = Some(key);
        self
    }

    /// Checks records with the ledger's public key (for readers: queries, serving, the audit); registering still
    /// needs [`Registry::with_key`].
    pub fn with_public_key(self, key: PublicKey) -> Registry {
        self.with_key_chain(KeyChain::new(key))
    }

    /// Checks records with the ledger's chain of keys: records signed before and after key rotations verify.
    pub fn with_key_chain(mut self, chain: KeyChain) -> Registry {
        self.public = Some(chain);
        self
    }

    /// The keys records are checked with, when the registry was given them.
    pub fn key_chain(&self) -> Option<&KeyChain> {
        self.public.as_ref()
    }

    /// The signing key, or why registering `what` cannot go on.
    pub(crate) fn signer(&self, what: impl FnOnce() -> String) -> Result<&LogKey, LineageError> {
        self.signer.as_ref().ok_or_else(|| LineageError::NoSigningKey { what: what() })
    }

    /// Checks a dataset record: its registration's signature by the ledger's key over the fields the registry now
    /// holds, and the stored member bitmap against the signed commitment. An error naming the dataset otherwise.
    pub fn verify_dataset(&self, rec: &DatasetRecord) -> Result<(), LineageError> {
        let key = self
            .public
            .as_ref()
            .ok_or_else(|| LineageError::NoPublicKey { what: format!("dataset {}", short(&rec.id)) })?;
        let fail = |message: String| LineageError::Signature { what: "dataset", id: rec.id.clone(), message };
        if let Some(message) = crate::signing::dataset_problem(key, rec) {
            return Err(fail(message));
        }
        let bytes = self.conn.transaction(false, |db| {
            let rows = db.query("SELECT members_bitmap FROM registry_datasets WHERE id = $1", &[P::T(&rec.id)])?;
            rows.first().map(|r| r.blob(0)).transpose()
        })?;
        match bytes {
            Some(b) if blake3::hash(&b).to_hex().to_string() == rec.members_commitment => Ok(()),
            Some(_) => Err(fail("the stored member bitmap does not match the signed commitment".into())),
            None => Err(fail("the registry holds no member bitmap for it".into())),
        }
    }

    /// The data directory (canonical), when the registry was opened for one.
    pub(crate) fn base(&self) -> Option<&Path> {
        self.base.as_deref()
    }

    /// How a directory is recorded: relative to the data directory when inside it, else absolute.
    pub fn stored_path(&self, dir: &Path) -> String {
        let abs = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        match self.base.as_deref().and_then(|b| abs.strip_prefix(b).ok()) {
            Some(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
            _ => abs.display().to_string(),
        }
    }

    /// Where a recorded directory is now: relative records resolve against the data directory.
    pub fn resolve(&self, stored: &str) -> PathBuf {
        let p = PathBuf::from(stored);
        match &self.base {
            Some(b) if p.is_relative() => b.join(p),
            _ => p,
        }
    }

    /// The ledger store the registry reads consent events from.
    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    pub(crate) fn conn(&self) -> &Conn {
        &self.conn
    }

    /// Registers a dataset from its directory after checking its member bitmap against the manifest;
    /// registering the same manifest again returns the existing record.
    pub fn register_dataset_dir(&self, dir: &Path) -> Result<DatasetRecord, LineageError> {
        let bad = |dir: &Path, message: String| LineageError::Dataset { dir: dir.to_path_buf(), message };
        let dir = std::fs::canonicalize(dir).map_err(|e| bad(dir, format!("cannot open the directory: {e}")))?;
        let manifest_bytes = consentry_gate::fsguard::read_inside(&dir, MANIFEST_FILE).map_err(|e| {
            bad(&dir, format!("cannot read {MANIFEST_FILE}: {e}; is this a dataset written by `consentry gate`?"))
        })?;
        let id = blake3::hash(&manifest_bytes).to_hex().to_string();
        // The bytes just hashed, so the id and the record describe the same manifest.
        let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
            .map_err(|e| bad(&dir, format!("manifest {}: {e}", dir.join(MANIFEST_FILE).display())))?;
        if let Some(d) = manifest.time_differences(now(), None).first() {
            return Err(bad(&dir, format!("{d}: consent judged in the future does not hold today")));
        }
        let file = &manifest.members.file;
        if file.is_empty() || file.contains('/') || file.contains('\\') || file == ".." {
            return Err(bad(&dir, format!("the manifest names member bitmap `{file}`, not a file in the directory")));
        }
        let bytes = consentry_gate::fsguard::read_inside(&dir, file)
            .map_err(|e| bad(&dir, format!("cannot read {file}: {e}")))?;
        if blake3::hash(&bytes).to_hex().to_string() != manifest.members.commitment {
            return Err(bad(&dir, format!("{file} was altered (BLAKE3 differs from the manifest's commitment)")));
        }
        let members = RoaringTreemap::deserialize_from(&bytes[..]).map_err(|e| bad(&dir, format!("{file}: {e}")))?;
        if members.len() != manifest.members.count {
            return Err(bad(
                &dir,
                format!("{file} has {} members, the manifest says {}", members.len(), manifest.members.count),
            ));
        }
        let rec = DatasetRecord {
            id,
            purpose: manifest.purpose.clone(),
            dir: self.stored_path(&dir),
            ledger_position: manifest.ledger.position,
            ledger_at: manifest.ledger.at,
            members: manifest.members.count,
            members_commitment: manifest.members.commitment.clone(),
            created: manifest.created,
            signature: None,
        };
        let signature = crate::signing::sign_dataset(self.signer(|| format!("dataset {}", dir.display()))?, &rec);
        let rec = DatasetRecord { signature: Some(signature), ..rec };
        let manifest_json = String::from_utf8_lossy(&manifest_bytes).into_owned();
        self.conn.transaction(true, |db| {
            if let Some(existing) = get_dataset(db, &rec.id)? {
                return Ok(existing);
            }
            db.exec(
                "INSERT INTO registry_datasets (id, purpose, dir, ledger_position, ledger_at, members, \
                 members_commitment, members_bitmap, manifest_json, created, signature) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                &[
                    P::T(&rec.id),
                    P::T(&rec.purpose),
                    P::T(&rec.dir),
                    P::I(to_i64(rec.ledger_position, "ledger position")?),
                    P::I(rec.ledger_at),
                    P::I(to_i64(rec.members, "member count")?),
                    P::T(&rec.members_commitment),
                    P::B(&bytes),
                    P::T(&manifest_json),
                    P::I(rec.created),
                    P::OptT(rec.signature.as_deref()),
                ],
            )?;
            Ok(rec.clone())
        })
    }

    /// The record of the dataset in `dir` when its `manifest.json` is byte for byte one the registry holds (its
    /// id is the BLAKE3 of those bytes); an error otherwise. Training that registers its model checks this first:
    /// a manifest edited after the gate registered it (files, counts, commitments) is not the gate's.
    pub fn registered_dataset(&self, dir: &Path) -> Result<DatasetRecord, LineageError> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = std::fs::read(&path).map_err(|e| LineageError::Dataset {
            dir: dir.to_path_buf(),
            message: format!("cannot read {}: {e}; is this a dataset written by `consentry gate`?", path.display()),
        })?;
        let id = blake3::hash(&bytes).to_hex().to_string();
        match self.conn.transaction(false, |db| get_dataset(db, &id))? {
            Some(rec) => {
                self.verify_dataset(&rec)?;
                Ok(rec)
            }
            None => Err(LineageError::Dataset {
                dir: dir.to_path_buf(),
                message: format!(
                    "its manifest (BLAKE3 {}) is not one the registry holds: the gate registers every dataset it \
                     writes, so this one was altered after the gate wrote it, or written elsewhere; materialise it \
                     again with `consentry gate`",
                    short(&id)
                ),
            }),
        }
    }

    /// Registers a model version from its directory (status `live`) with the consent events it depends on and
    /// its training run, using the default unlearning deadline for withdrawals already in the ledger.
    pub fn register_model_dir(&self, dir: &Path) -> Result<ModelRecord, LineageError> {
        self.register_model_dir_with_deadline(dir, DEFAULT_DEADLINE_SECS)
    }

    /// [`Registry::register_model_dir`] with an explicit deadline (seconds) for the unlearning requests it
    /// opens for members who withdrew after the dataset was gated.
    ///
    /// Every file is checked against `model.json`; its dataset must be registered (or still be at the path
    /// `model.json` names, and is then registered too). A version made by unlearning supersedes the version it
    /// names as previous. Registering the same directory again returns the existing record.
    pub fn register_model_dir_with_deadline(
        &self,
        dir: &Path,
        deadline_secs: i64,
    ) -> Result<ModelRecord, LineageError> {
        let m = check_model_dir(dir)?;
        if let Some(existing) = self.conn.transaction(false, |db| get_model(db, &m.id))? {
            return Ok(existing);
        }
        let ds_id = m.meta.dataset.manifest_blake3.clone();
        let dataset = match self.conn.transaction(false, |db| get_dataset(db, &ds_id))? {
            Some(d) => {
                self.verify_dataset(&d)?;
                d
            }
            None => {
                let p = PathBuf::from(&m.meta.dataset.path);
                if !p.join(MANIFEST_FILE).is_file() {
                    return Err(LineageError::NotFound {
                        what: "dataset",
                        id: ds_id,
                        hint: "register the model's dataset first with `consentry lineage register-dataset DIR`",
                    });
                }
                let d = self.register_dataset_dir(&p)?;
                if d.id != ds_id {
                    return Err(LineageError::Dataset {
                        dir: p,
                        message: format!("its manifest is not the one model {} was trained on", m.dir.display()),
                    });
                }
                d
            }
        };
        if dataset.purpose != m.meta.purpose {
            return Err(LineageError::ModelFiles {
                dir: m.dir.clone(),
                message: format!("trained for {}, but its dataset was gated for {}", m.meta.purpose, dataset.purpose),
            });
        }
        let ds_members = self.conn.transaction(false, |db| dataset_bitmap(db, &dataset.id))?;
        let mut members = RoaringTreemap::new();
        for (i, (_, b)) in m.bitmaps.iter().enumerate() {
            let extra = b - &ds_members;
            if let Some(x) = extra.min() {
                return Err(LineageError::ModelFiles {
                    dir: m.dir.clone(),
                    message: format!("shard {i} has {} members not in its dataset (e.g. {x})", extra.len()),
                });
            }
            members |= b;
        }
        let facts = consent_facts(&*self.store, &m.meta.purpose, dataset.ledger_position, &members)?;
        let previous = m.meta.unlearning.as_ref().map(|u| u.previous.clone());
        let all_shards: Vec<u32> = (0..m.meta.shards.len() as u32).collect();
        let shards_trained = m.meta.unlearning.as_ref().map_or(all_shards, |u| u.retrained_shards.clone());
        let cause = m.meta.unlearning.as_ref().map(|u| {
            serde_json::json!({ "kind": "unlearning", "previous": u.previous, "excluded": u.excluded,
                                "retrained_shards": u.retrained_shards })
        });
        let registered = now();
        self.conn.transaction(true, |db| {
            if let Some(existing) = get_model(db, &m.id)? {
                return Ok(existing);
            }
            // The version this one replaces, when it is registered.
            let prev = match &previous {
                Some(p) => get_model(db, p)?,
                None => None,
            };
            if let Some(prev) = &prev
                && prev.status == ModelStatus::Live
            {
                mark_status(db, &prev.id, ModelStatus::Superseded, registered)?;
            }
            let version = prev.as_ref().map_or(1, |p| p.version + 1);
            let rec = self.live_record(&m, &dataset.id, version, prev.map(|p| p.id), cause.clone());
            self.insert_model(db, &rec, &m, registered)?;
            insert_events(db, &rec.id, &facts.grants)?;
            insert_run(
                db,
                &RunRecord {
                    model: rec.id.clone(),
                    started: m.meta.created - m.meta.train_seconds.ceil() as i64,
                    finished: m.meta.created,
                    shards_trained: shards_trained.clone(),
                    seconds: m.meta.train_seconds,
                    cause: cause.clone(),
                },
            )?;
            // The version this one replaces: its open requests are done if this version excludes the member,
            // and carry over to this version otherwise.
            if let Some(prev) = &rec.supersedes {
                hand_over(db, prev, Some(&rec.id), registered, |member| !m.excluded.contains(member))?;
            }
            // Members who withdrew after the dataset was gated must be unlearned from this model too.
            for &(seq, member, at) in &facts.withdrawals {
                if m.excluded.contains(member) {
                    continue;
                }
                insert_request(db, &UnlearningRequest::pending(member, &rec.purpose, seq, &rec.id, at, deadline_secs))?;
            }
            Ok(rec)
        })
    }

    /// The record of a checked model directory registered live as `version` of `dataset`.
    pub(crate) fn live_record(
        &self,
        m: &CheckedModel,
        dataset: &str,
        version: u64,
        supersedes: Option<String>,
        cause: Option<serde_json::Value>,
    ) -> ModelRecord {
        ModelRecord {
            id: m.id.clone(),
            kind: m.meta.kind.clone(),
            purpose: m.meta.purpose.clone(),
            dataset: dataset.to_string(),
            version,
            supersedes,
            status: ModelStatus::Live,
            status_changed: None,
            dir: self.stored_path(&m.dir),
            shard_function: m.meta.shard_function.clone(),
            metrics: m.meta.metrics.clone(),
            dp: m.meta.dp.clone(),
            created: m.meta.created,
            cause,
        }
    }

    /// One dataset by id (or unique prefix).
    pub fn dataset(&self, id: &str) -> Result<DatasetRecord, LineageError> {
        self.conn.transaction(false, |db| find_dataset(db, id))
    }

    /// Every registered dataset, oldest first.
    pub fn datasets(&self) -> Result<Vec<DatasetRecord>, LineageError> {
        self.conn.transaction(false, |db| {
            db.query(&format!("SELECT {DATASET_COLS} FROM registry_datasets ORDER BY created, id"), &[])?
                .iter()
                .map(dataset_row)
                .collect()
        })
    }

    /// One model version by id (or unique prefix).
    pub fn model(&self, id: &str) -> Result<ModelRecord, LineageError> {
        self.conn.transaction(false, |db| find_model(db, id))
    }

    /// The live version that replaced model `id` (following the chain of versions), if any: what to use instead
    /// of a version that is no longer served.
    pub fn live_successor(&self, id: &str) -> Result<Option<ModelRecord>, LineageError> {
        self.conn.transaction(false, |db| live_successor(db, id))
    }

    /// Model versions, optionally of one purpose and/or status, oldest first.
    pub fn models(&self, purpose: Option<&str>, status: Option<ModelStatus>) -> Result<Vec<ModelRecord>, LineageError> {
        self.conn.transaction(false, |db| list_models(db, purpose, status))
    }

    /// The member bitmaps of a model's shards, by index.
    pub fn shard_members(&self, model: &str) -> Result<Vec<RoaringTreemap>, LineageError> {
        self.conn.transaction(false, |db| {
            let id = resolve(db, &MODELS, model)?;
            shard_bitmaps(db, &id)
        })
    }

    /// Moves a model along its lifecycle (live → superseded/retired, superseded → retired) at `at`; setting
    /// the status it already has is a no-op. Retiring closes the model's open unlearning requests: no live
    /// model contains those members any more.
    pub fn set_status(&self, model: &str, to: ModelStatus, at: i64) -> Result<ModelRecord, LineageError> {
        self.conn.transaction(true, |db| {
            let rec = find_model(db, model)?;
            if rec.status == to {
                return Ok(rec);
            }
            if !rec.status.may_become(to) {
                return Err(LineageError::Transition { id: rec.id, from: rec.status, to });
            }
            mark_status(db, &rec.id, to, at)?;
            if to == ModelStatus::Retired {
                hand_over(db, &rec.id, None, at, |_| false)?;
            }
            Ok(ModelRecord { status: to, status_changed: Some(at), ..rec })
        })
    }

    /// Unlearning requests not yet completed (pending, or missed and still waiting), by deadline.
    pub fn open_requests(&self) -> Result<Vec<UnlearningRequest>, LineageError> {
        self.requests_where("completed_at IS NULL ORDER BY deadline, member, event_seq, old_model", &[])
    }

    /// Requests whose deadline passed before completion (completed or not), by deadline.
    pub fn missed_requests(&self) -> Result<Vec<UnlearningRequest>, LineageError> {
        self.requests_where("status = 'missed' ORDER BY deadline, member, event_seq, old_model", &[])
    }

    /// Every unlearning request, oldest first.
    pub fn requests(&self) -> Result<Vec<UnlearningRequest>, LineageError> {
        self.requests_where("1 = 1 ORDER BY requested_at, member, event_seq, old_model", &[])
    }

    fn requests_where(&self, clause: &str, params: &[P<'_>]) -> Result<Vec<UnlearningRequest>, LineageError> {
        self.conn.transaction(false, |db| {
            db.query(&format!("SELECT {REQUEST_COLS} WHERE {clause}"), params)?.iter().map(request_row).collect()
        })
    }

    /// The position a named cursor has reached (0 when it never ran).
    pub fn cursor(&self, name: &str) -> Result<u64, LineageError> {
        self.conn.transaction(false, |db| get_cursor(db, name))
    }

    /// Where one member's data went: datasets, model versions and shards, the consent event each inclusion
    /// rests on, and whether unlearning has removed them.
    pub fn member(&self, member: u64) -> Result<MemberLineage, LineageError> {
        let m = to_i64(member, "member")?;
        // The member's facts as the log recorded them, oldest first; a member with none is unknown to the log.
        let facts = self.store.member_history(member)?;
        let known = !facts.is_empty();
        let out = self.conn.transaction(false, |db| {
            let mut datasets = Vec::new();
            let rows = db.query(
                &format!("SELECT {DATASET_COLS}, members_bitmap FROM registry_datasets ORDER BY created, id"),
                &[],
            )?;
            for r in &rows {
                let d = dataset_row(r)?;
                if bitmap(&r.blob(9)?, "dataset bitmap")?.contains(member) {
                    datasets.push(MemberDataset {
                        dataset: d.id,
                        purpose: d.purpose,
                        dir: d.dir,
                        ledger_position: d.ledger_position,
                        created: d.created,
                    });
                }
            }
            let requests: Vec<UnlearningRequest> = db
                .query(
                    &format!("SELECT {REQUEST_COLS} WHERE member = $1 ORDER BY requested_at, old_model"),
                    &[P::I(m)],
                )?
                .iter()
                .map(request_row)
                .collect::<Result<_, _>>()?;
            let models: Vec<ModelRecord> = db
                .query(&format!("SELECT {MODEL_COLS} ORDER BY created, version, id"), &[])?
                .iter()
                .map(model_row)
                .collect::<Result<_, _>>()?;
            // The grant each model's inclusion of the member rests on, by model.
            let mut events: HashMap<String, u64> = HashMap::new();
            for r in db.query(
                "SELECT model_id, event_seq FROM registry_model_events WHERE member = $1 ORDER BY model_id, event_seq",
                &[P::I(m)],
            )? {
                events.entry(r.text(0)?).or_insert(r.u64(1)?);
            }
            let mut found = Vec::new();
            for model in &models {
                let Some(shard) = model.shard_function.shard_of(member) else {
                    return Err(LineageError::Corrupt(format!("model {} has a malformed shard key", model.id)));
                };
                let rows = db.query(
                    "SELECT members_bitmap FROM registry_shards WHERE model_id = $1 AND idx = $2",
                    &[P::T(&model.id), P::I(i64::from(shard))],
                )?;
                let Some(r) = rows.first() else { continue };
                if !bitmap(&r.blob(0)?, "shard bitmap")?.contains(member) {
                    continue;
                }
                let consent_event = events.get(&model.id).copied();
                let removal = requests.iter().find(|q| q.model == model.id && q.completed_at.is_some());
                found.push((model.clone(), shard, consent_event, removal.cloned()));
            }
            // The first version of each found model's line, for counting privacy loss once per line.
            let by_id: HashMap<&str, &ModelRecord> = models.iter().map(|m| (m.id.as_str(), m)).collect();
            let roots: Vec<String> = found.iter().map(|(model, ..)| line_root(&by_id, model).id.clone()).collect();
            Ok((datasets, found, requests, roots))
        })?;
        let (datasets, found, requests, roots) = out;
        let privacy = member_privacy(&found, &roots)?;
        if !known && datasets.is_empty() && found.is_empty() && requests.is_empty() {
            return Err(LineageError::UnknownMember(member));
        }
        let mut models = Vec::with_capacity(found.len());
        for (model, shard, consent_event, removal) in found {
            let consent_time = match consent_event {
                Some(seq) => self.store.event(seq)?.map(|e| e.event.body.event_time),
                None => None,
            };
            let (removed_at, removed_by) = match &removal {
                Some(q) => (q.completed_at, q.new_model.clone()),
                None => (None, None),
            };
            let state = match (model.status, &removal) {
                (_, Some(q)) => {
                    let at = q.completed_at.map_or_else(|| "?".into(), format_time);
                    // A removal after the deadline says by how much, with the times it is measured from.
                    let late = match (q.completed_at, late_by(q)) {
                        (Some(done), Some(by)) => format!(
                            " (deadline missed: withdrew at {}, removed {} s later, {by} s past the deadline {})",
                            format_time(q.requested_at),
                            done.saturating_sub(q.requested_at),
                            format_time(q.deadline)
                        ),
                        _ if q.status == RequestStatus::Missed => " (deadline missed)".into(),
                        _ => String::new(),
                    };
                    match &q.new_model {
                        Some(n) => format!(
                            "removed by unlearning at {at}{late}: version {} ({}) retrained without them after \
                             withdrawal #{}",
                            model.version + 1,
                            short(n),
                            q.event_seq
                        ),
                        None => format!("model retired at {at}{late} after withdrawal #{}", q.event_seq),
                    }
                }
                (ModelStatus::Live, None) => match requests.iter().find(|q| q.model == model.id) {
                    Some(q) => format!(
                        "live; unlearning {} (withdrawal #{}, deadline {})",
                        q.status,
                        q.event_seq,
                        format_time(q.deadline)
                    ),
                    None => "live".into(),
                },
                (ModelStatus::Superseded, None) => format!(
                    "superseded at {} (the member's data is in the next version too)",
                    model.status_changed.map_or_else(|| "?".into(), format_time)
                ),
                (ModelStatus::Retired, None) => {
                    format!("retired at {}", model.status_changed.map_or_else(|| "?".into(), format_time))
                }
            };
            models.push(MemberModel {
                model: model.id,
                kind: model.kind,
                purpose: model.purpose,
                dataset: model.dataset,
                version: model.version,
                shard,
                consent_event,
                consent_time,
                trained: model.created,
                status: model.status,
                status_changed: model.status_changed,
                removed_at,
                removed_by,
                removed_late_by: removal.as_ref().and_then(late_by),
                state,
            });
        }
        Ok(MemberLineage { member, facts, datasets, models, requests, privacy })
    }

    /// One model version's lineage: dataset, members per shard, the consent events it rests on, its runs,
    /// successor and unlearning requests.
    pub fn model_lineage(&self, id: &str) -> Result<ModelLineage, LineageError> {
        self.conn.transaction(false, |db| {
            let model = find_model(db, id)?;
            let id = model.id.clone();
            let dataset = get_dataset(db, &model.dataset)?
                .ok_or_else(|| LineageError::Corrupt(format!("dataset {} of model {id} vanished", model.dataset)))?;
            let shards: Vec<ShardRecord> = db
                .query(
                    "SELECT idx, file_blake3, members, row_count FROM registry_shards WHERE model_id = $1 ORDER BY idx",
                    &[P::T(&id)],
                )?
                .iter()
                .map(|r| {
                    Ok(ShardRecord { index: r.u32(0)?, file_blake3: r.text(1)?, members: r.u64(2)?, rows: r.u64(3)? })
                })
                .collect::<Result<_, LineageError>>()?;
            let members: u64 = shards.iter().map(|s| s.members).sum();
            let events: Vec<u64> = db
                .query(
                    "SELECT event_seq FROM registry_model_events WHERE model_id = $1 ORDER BY event_seq",
                    &[P::T(&id)],
                )?
                .iter()
                .map(|r| r.u64(0))
                .collect::<Result<_, _>>()?;
            let superseded_by = successor(db, &id)?;
            let runs = db
                .query(
                    "SELECT model_id, started, finished, shards_trained, seconds, cause_json FROM registry_runs \
                     WHERE model_id = $1 ORDER BY id",
                    &[P::T(&id)],
                )?
                .iter()
                .map(|r| {
                    Ok(RunRecord {
                        model: r.text(0)?,
                        started: r.i64(1)?,
                        finished: r.i64(2)?,
                        shards_trained: parse_json(&r.text(3)?, "shards trained")?,
                        seconds: r.f64(4)?,
                        cause: r.opt_text(5)?.map(|s| parse_json(&s, "cause")).transpose()?,
                    })
                })
                .collect::<Result<_, LineageError>>()?;
            let requests = db
                .query(
                    &format!("SELECT {REQUEST_COLS} WHERE old_model = $1 ORDER BY requested_at, member"),
                    &[P::T(&id)],
                )?
                .iter()
                .map(request_row)
                .collect::<Result<_, _>>()?;
            let members_without_event = members.saturating_sub(events.len() as u64);
            Ok(ModelLineage {
                model,
                dataset,
                shards,
                members,
                events,
                members_without_event,
                superseded_by,
                runs,
                requests,
            })
        })
    }
}

/// The first version of `model`'s line, following `supersedes` through `by_id`: a line's privacy loss counts once,
/// at its root. A cycle (only a tampered registry has one) stops once every record could have been visited.
pub fn line_root<'a>(by_id: &HashMap<&str, &'a ModelRecord>, model: &'a ModelRecord) -> &'a ModelRecord {
    let mut root = model;
    for _ in 0..=by_id.len() {
        match root.supersedes.as_deref().and_then(|p| by_id.get(p).copied()) {
            Some(prev) => root = prev,
            None => break,
        }
    }
    root
}

/// The first 12 hex digits of an id, for people.
pub fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// Unix seconds as RFC 3339 UTC (`2026-12-01T07:30:00Z`); the number itself outside chrono's range.
pub fn format_time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map_or_else(|| t.to_string(), |d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

pub(crate) fn get_cursor(db: &mut dyn Db, name: &str) -> Result<u64, LineageError> {
    Ok(db
        .query("SELECT seq FROM registry_cursors WHERE name = $1", &[P::T(name)])?
        .first()
        .map(|r| r.u64(0))
        .transpose()?
        .unwrap_or(0))
}

impl Registry {
    /// Inserts a model version's record and shards, signed with the ledger's key over the fields and hashes
    /// [`crate::signing`] names. A version that replaces another also gets the signed record of going live at
    /// `live_at` (in its `cause_json`), the time the audit measures a late removal by.
    pub(crate) fn insert_model(
        &self,
        db: &mut dyn Db,
        rec: &ModelRecord,
        m: &CheckedModel,
        live_at: i64,
    ) -> Result<(), LineageError> {
        let key = self.signer(|| format!("model {}", m.dir.display()))?;
        let files = crate::integrity::RegisteredFiles {
            id: rec.id.clone(),
            kind: rec.kind.clone(),
            purpose: rec.purpose.clone(),
            dataset: rec.dataset.clone(),
            version: rec.version,
            supersedes: rec.supersedes.clone(),
            shards: m
                .meta
                .shards
                .iter()
                .zip(&m.bitmaps)
                .map(|(s, (bytes, _))| crate::integrity::RegisteredShard {
                    index: s.index,
                    file_blake3: s.blake3.clone(),
                    members_blake3: blake3::hash(bytes).to_hex().to_string(),
                })
                .collect(),
            signature: None,
            live_since: None,
        };
        let signature = crate::signing::sign_model(key, &files);
        let Some(prev) = &rec.supersedes else { return insert_model_row(db, rec, m, &signature) };
        let mut cause = match &rec.cause {
            Some(serde_json::Value::Object(c)) => c.clone(),
            _ => serde_json::Map::new(),
        };
        cause.insert("live_since".into(), live_at.into());
        cause.insert("live_since_signature".into(), crate::signing::sign_live(key, &rec.id, prev, live_at).into());
        let rec = ModelRecord { cause: Some(serde_json::Value::Object(cause)), ..rec.clone() };
        insert_model_row(db, &rec, m, &signature)
    }
}

fn insert_model_row(db: &mut dyn Db, rec: &ModelRecord, m: &CheckedModel, signature: &str) -> Result<(), LineageError> {
    let shard_fn = json_text(&rec.shard_function)?;
    let metrics = json_text(&rec.metrics)?;
    let dp = rec.dp.as_ref().map(json_text).transpose()?;
    let cause = rec.cause.as_ref().map(json_text).transpose()?;
    db.exec(
        "INSERT INTO registry_models (id, kind, purpose, dataset_id, version, supersedes, status, status_changed, dir, \
         shard_function_json, metrics_json, dp_json, created, cause_json, signature) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        &[
            P::T(&rec.id),
            P::T(&rec.kind),
            P::T(&rec.purpose),
            P::T(&rec.dataset),
            P::I(to_i64(rec.version, "version")?),
            P::OptT(rec.supersedes.as_deref()),
            P::T(rec.status.as_str()),
            P::OptI(rec.status_changed),
            P::T(&rec.dir),
            P::T(&shard_fn),
            P::T(&metrics),
            P::OptT(dp.as_deref()),
            P::I(rec.created),
            P::OptT(cause.as_deref()),
            P::T(signature),
        ],
    )?;
    for (s, (bytes, b)) in m.meta.shards.iter().zip(&m.bitmaps) {
        db.exec(
            "INSERT INTO registry_shards (model_id, idx, file_blake3, members, row_count, members_bitmap) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                P::T(&rec.id),
                P::I(i64::from(s.index)),
                P::T(&s.blake3),
                P::I(to_i64(b.len(), "member count")?),
                P::I(to_i64(s.rows, "row count")?),
                P::B(bytes),
            ],
        )?;
    }
    Ok(())
}

pub(crate) fn insert_run(db: &mut dyn Db, run: &RunRecord) -> Result<(), LineageError> {
    let shards = json_text(&run.shards_trained)?;
    let cause = run.cause.as_ref().map(json_text).transpose()?;
    db.exec(
        "INSERT INTO registry_runs (model_id, started, finished, shards_trained, seconds, cause_json) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            P::T(&run.model),
            P::I(run.started),
            P::I(run.finished),
            P::T(&shards),
            P::F(run.seconds),
            P::OptT(cause.as_deref()),
        ],
    )?;
    Ok(())
}

/// Open requests against one model version.
fn open_for(db: &mut dyn Db, model: &str) -> Result<Vec<UnlearningRequest>, LineageError> {
    db.query(
        &format!("SELECT {REQUEST_COLS} WHERE old_model = $1 AND completed_at IS NULL ORDER BY member, event_seq"),
        &[P::T(model)],
    )?
    .iter()
    .map(request_row)
    .collect()
}

/// Hands the open requests against `from` (a version leaving service) to `to`, its live replacement if any: a
/// request moves to `to` when `to` still holds its member (`holds`), and is completed at `at` otherwise. Returns
/// the status each completed request ended with.
pub(crate) fn hand_over(
    db: &mut dyn Db,
    from: &str,
    to: Option<&str>,
    at: i64,
    holds: impl Fn(u64) -> bool,
) -> Result<Vec<RequestStatus>, LineageError> {
    let mut completed = Vec::new();
    for r in open_for(db, from)? {
        match to {
            Some(to) if holds(r.member) => repoint(db, &r, to)?,
            _ => completed.push(complete_request(db, &r, at, to)?),
        }
    }
    Ok(completed)
}

/// Moves an open request from one model version to another (the member is still in the newer one).
fn repoint(db: &mut dyn Db, r: &UnlearningRequest, to: &str) -> Result<(), LineageError> {
    insert_request(db, &UnlearningRequest { model: to.to_string(), ..r.clone() })?;
    db.exec(
        "DELETE FROM registry_unlearning WHERE member = $1 AND event_seq = $2 AND old_model = $3",
        &[P::I(to_i64(r.member, "member")?), P::I(to_i64(r.event_seq, "event")?), P::T(&r.model)],
    )?;
    Ok(())
}

/// Completes an open request at `at`, replaced by `new_model` (`None`: no live version holds the member): `done`,
/// or `missed` when it already was or its deadline has passed. Returns the status it ended with.
fn complete_request(
    db: &mut dyn Db,
    r: &UnlearningRequest,
    at: i64,
    new_model: Option<&str>,
) -> Result<RequestStatus, LineageError> {
    let rows = db.query(
        "UPDATE registry_unlearning SET completed_at = $2, new_model = $5, \
         status = CASE WHEN status = 'missed' OR deadline < $2 THEN 'missed' ELSE 'done' END \
         WHERE member = $1 AND event_seq = $3 AND old_model = $4 RETURNING status",
        &[
            P::I(to_i64(r.member, "member")?),
            P::I(at),
            P::I(to_i64(r.event_seq, "event")?),
            P::T(&r.model),
            P::OptT(new_model),
        ],
    )?;
    // Callers complete requests they have just read in the same transaction.
    let status = rows.first().map(|row| row.text(0)).transpose()?.ok_or_else(|| {
        LineageError::Corrupt(format!(
            "the unlearning request of member {} (withdrawal #{}) against model {} vanished",
            r.member,
            r.event_seq,
            short(&r.model)
        ))
    })?;
    RequestStatus::parse(&status).ok_or_else(|| LineageError::Corrupt(format!("request status {status}")))
}

/// Groups requests by model id (deterministic order).
pub(crate) fn by_model(reqs: Vec<UnlearningRequest>) -> BTreeMap<String, Vec<UnlearningRequest>> {
    let mut out: BTreeMap<String, Vec<UnlearningRequest>> = BTreeMap::new();
    for r in reqs {
        out.entry(r.model.clone()).or_default().push(r);
    }
    out
}

/// The privacy loss of the model lines in `found` (one entry per line, from its newest version's DP record).
fn member_privacy(
    found: &[(ModelRecord, u32, Option<u64>, Option<UnlearningRequest>)],
    roots: &[String],
) -> Result<MemberPrivacy, LineageError> {
    let mut lines: BTreeMap<&str, &ModelRecord> = BTreeMap::new();
    for ((model, ..), root) in found.iter().zip(roots) {
        lines.insert(root, model);
    }
    let (mut losses, mut without_bound) = (Vec::new(), Vec::new());
    for (root, model) in lines {
        let claim = consentry_learn::dp::PrivacyClaim::of_record(model.dp.as_ref()).map_err(|e| {
            LineageError::Corrupt(format!("model {}: its dp record cannot be read: {e}", short(&model.id)))
        })?;
        match claim.loss(root)? {
            Some(loss) => losses.push(loss),
            None => without_bound.push(root.to_string()),
        }
    }
    let cumulative = if losses.is_empty() {
        None
    } else {
        Some(
            consentry_dp::cumulative_loss(&losses, consentry_dp::Conversion::Improved)
                .map_err(|e| LineageError::Corrupt(format!("composing privacy loss: {e}")))?,
        )
    };
    Ok(MemberPrivacy { lines: losses, cumulative, without_bound })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_rfc3339_utc() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_time(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_time(1_790_000_000), "2026-09-21T14:13:20Z");
        assert_eq!(format_time(-86_400), "1969-12-31T00:00:00Z");
        assert_eq!(format_time(4_102_444_800), "2100-01-01T00:00:00Z");
    }

    #[test]
    fn the_lifecycle_only_moves_forward() {
        use ModelStatus::*;
        assert!(Live.may_become(Superseded) && Live.may_become(Retired) && Superseded.may_become(Retired));
        for s in [Live, Superseded, Retired] {
            assert!(!s.may_become(s));
            assert!(!Retired.may_become(s));
            assert!(!s.may_become(Live));
            assert_eq!(ModelStatus::parse(s.as_str()), Some(s));
        }
    }
}
