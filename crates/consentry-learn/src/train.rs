//! Training a model directory from a dataset: split into shards, train the shards in parallel, evaluate the
//! aggregate, write the directory atomically.

use std::path::{Path, PathBuf};
use std::time::Instant;

use consentry_gate::manifest::ShardFunction;
use serde::{Deserialize, Serialize};

use crate::data::Dataset;
use crate::dp::{self, DpOptions, NoiseKey, PrivacyClaim};
use crate::model::{DatasetRef, EXCLUDED_FILE, FORMAT, ModelMeta, UnlearningRef, write_model_dir};
use crate::recs::{self, RecHyper, RecKind, Recommender, ShardData, ShardModel};
use crate::{LearnError, TOOL_VERSION, ials, items, replies};

/// The three features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelKind {
    /// Job recommendations.
    JobRecs,
    /// Content suggestions.
    Content,
    /// Reply suggestions.
    Replies,
    /// Any declared interactions table ([`TrainOptions::items`] says which), on the purpose its dataset was gated for.
    Items,
}

impl ModelKind {
    /// The name used on the command line and in `model.json`.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::JobRecs => "job-recs",
            ModelKind::Content => "content",
            ModelKind::Replies => "replies",
            ModelKind::Items => "items",
        }
    }

    /// Parses a `model.json` kind.
    pub fn from_name(s: &str) -> Option<ModelKind> {
        [ModelKind::JobRecs, ModelKind::Content, ModelKind::Replies, ModelKind::Items]
            .into_iter()
            .find(|k| k.name() == s)
    }

    /// The purpose whose dataset trains it; empty for [`ModelKind::Items`], which trains on whichever purpose its
    /// dataset was gated for (see [`ModelKind::fixed_purpose`]).
    pub fn purpose(self) -> &'static str {
        self.fixed_purpose().unwrap_or("")
    }

    /// The one purpose a built-in feature trains on; `None` for an items model (its dataset's purpose).
    pub fn fixed_purpose(self) -> Option<&'static str> {
        match self {
            ModelKind::JobRecs => Some(RecKind::Jobs.purpose()),
            ModelKind::Content => Some(RecKind::Content.purpose()),
            ModelKind::Replies => Some(replies::PURPOSE),
            ModelKind::Items => None,
        }
    }

    /// Whether `recommend` serves it (the recommenders: job-recs, content and items).
    pub fn is_recommender(self) -> bool {
        self != ModelKind::Replies
    }

    /// Whether each shard's inputs depend only on its own members' data (the recommenders), so removing a member
    /// changes their shard alone; the replies model's shards share one inventory.
    pub fn shards_independent(self) -> bool {
        self.is_recommender()
    }

    fn rec(self) -> Option<RecKind> {
        match self {
            ModelKind::JobRecs => Some(RecKind::Jobs),
            ModelKind::Content => Some(RecKind::Content),
            ModelKind::Replies | ModelKind::Items => None,
        }
    }
}

/// How to train; stored in `model.json` so that unlearning can retrain a shard exactly as it was trained.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainOptions {
    /// Which model.
    pub kind: ModelKind,
    /// Shards (default: the dataset manifest's, which the gate may size by [`shards_for`]).
    pub shards: Option<u32>,
    /// Seed of everything random.
    pub seed: u64,
    /// Worker threads, 0 = all cores; never changes the model.
    #[serde(skip)]
    pub threads: usize,
    /// Recommender hyper-parameters.
    pub rec: RecHyper,
    /// Reply-model settings.
    pub replies: replies::ReplyOptions,
    /// At most this many held-out members are evaluated.
    pub eval_limit: usize,
    /// Differential privacy (job-recs and replies); `None` trains without a formal bound.
    #[serde(default)]
    pub dp: Option<DpOptions>,
    /// The table and columns of an items model (absent for the built-in features).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<items::ItemsSpec>,
}

impl TrainOptions {
    /// Defaults for `kind`.
    pub fn new(kind: ModelKind) -> TrainOptions {
        TrainOptions {
            kind,
            shards: None,
            seed: 42,
            threads: 0,
            rec: kind.rec().map_or_else(RecHyper::default, RecHyper::for_kind),
            replies: replies::ReplyOptions::default(),
            eval_limit: 2_000,
            dp: None,
            items: None,
        }
    }
}

/// What training produced.
#[derive(Debug, Clone)]
pub struct TrainReport {
    /// The model's metadata as written.
    pub meta: ModelMeta,
    /// Where.
    pub dir: PathBuf,
    /// Seconds per trained shard.
    pub shard_seconds: Vec<f64>,
}

/// A model's inputs, split by shard: what a shard file is a function of.
#[derive(Debug, Clone, PartialEq)]
pub enum Prepared {
    /// Job or content recommendations.
    Recs(Vec<ShardData>),
    /// Reply suggestions.
    Replies(replies::ReplyInputs),
}

impl Prepared {
    fn shards(&self) -> usize {
        match self {
            Prepared::Recs(d) => d.len(),
            Prepared::Replies(r) => r.shards.len(),
        }
    }

    /// Per shard, the BLAKE3 of its inputs in a length-prefixed encoding (so equal digests mean equal inputs): what
    /// [`ModelMeta::shard_inputs`] records, so unlearning can tell which shards a removal changes.
    pub fn inputs_digests(&self) -> Vec<String> {
        let shared = self.shared_inputs();
        (0..self.shards()).map(|i| self.digest(i, &shared)).collect()
    }

    /// [`Prepared::inputs_digests`] of the shards `mask` marks (`None` for the others).
    fn inputs_digests_of(&self, mask: &[bool]) -> Vec<Option<String>> {
        let shared = self.shared_inputs();
        (0..self.shards()).map(|i| mask.get(i).copied().unwrap_or(false).then(|| self.digest(i, &shared))).collect()
    }

    /// What every shard's digest covers: the replies inventory (a change to it changes every shard).
    fn shared_inputs(&self) -> String {
        match self {
            Prepared::Recs(_) => String::new(),
            Prepared::Replies(r) => serde_json::to_string(&r.inventory).unwrap_or_default(),
        }
    }

    fn digest(&self, i: usize, shared: &str) -> String {
        // Encoded into one buffer, hashed once (per-value hasher calls cost more than the hashing).
        let mut b: Vec<u8> = Vec::new();
        fn u64s(b: &mut Vec<u8>, v: impl ExactSizeIterator<Item = u64>) {
            b.extend_from_slice(&(v.len() as u64).to_le_bytes());
            b.reserve(v.len() * 8);
            for x in v {
                b.extend_from_slice(&x.to_le_bytes());
            }
        }
        fn text(b: &mut Vec<u8>, t: &str) {
            b.extend_from_slice(&(t.len() as u64).to_le_bytes());
            b.extend_from_slice(t.as_bytes());
        }
        fn csr(b: &mut Vec<u8>, m: &ials::Csr) {
            u64s(b, m.ptr.iter().map(|&x| x as u64));
            u64s(b, m.idx.iter().map(|&x| u64::from(x)));
            u64s(b, m.val.iter().map(|&x| u64::from(x.to_bits())));
        }
        match self {
            Prepared::Recs(d) => {
                b.extend_from_slice(b"recs");
                let Some(d) = d.get(i) else { return String::new() };
                u64s(&mut b, d.members.iter().copied());
                u64s(&mut b, d.items.iter().copied());
                b.extend_from_slice(&(d.vocab.len() as u64).to_le_bytes());
                for t in &d.vocab {
                    text(&mut b, t);
                }
                csr(&mut b, &d.train);
                csr(&mut b, &d.user_tokens);
                csr(&mut b, &d.item_tokens);
                b.extend_from_slice(&(d.heldout.len() as u64).to_le_bytes());
                for (m, items) in &d.heldout {
                    b.extend_from_slice(&m.to_le_bytes());
                    u64s(&mut b, items.iter().copied());
                }
                b.extend_from_slice(&d.rows.to_le_bytes());
                // Only content shards own items; job shards keep the digests they had.
                if !d.authored.idx.is_empty() {
                    b.extend_from_slice(b"authored");
                    csr(&mut b, &d.authored);
                }
            }
            Prepared::Replies(r) => {
                b.extend_from_slice(b"replies");
                text(&mut b, shared);
                let Some(pairs) = r.shards.get(i) else { return String::new() };
                b.extend_from_slice(&(pairs.len() as u64).to_le_bytes());
                for p in pairs {
                    b.extend_from_slice(&p.replier.to_le_bytes());
                    b.extend_from_slice(&p.at_ms.to_le_bytes());
                    text(&mut b, &p.incoming);
                    text(&mut b, &p.reply);
                }
            }
        }
        hex::encode(blake3::derive_key("consentry-learn shard inputs v1", &b))
    }
}

type ShardOf = Box<dyn Fn(u64) -> u32 + Send + Sync>;

/// The fewest shards the rule picks (and what a model gets when its deadline is long).
pub const MIN_RULE_SHARDS: u32 = 8;
/// The most shards the rule picks.
pub const MAX_RULE_SHARDS: u32 = 1024;
/// The rule never makes shards of fewer members than this: below it each shard's item factors are learnt from too
/// few members (see `bench/learn/SHARDS.md` for Recall@20 against S).
pub const MIN_MEMBERS_PER_SHARD: u64 = 2_000;
/// A withdrawal wave that touches every shard must still be retrained within this fraction of the deadline: the
/// other models' retrains, the batch window and the pass interval share the rest.
pub const FULL_RETRAIN_DEADLINE_FRACTION: f64 = 0.25;

impl ModelKind {
    /// What a retrain costs, in seconds per member of the dataset on the reference machine (2 cores): training
    /// every shard once (the part that splits between shards), and each shard's fixed part (the catalogue every
    /// shard holds, its file), which grows with the network. Measured at a million members
    /// (`bench/learn/SHARDS.md`); the shard rule sizes shards by them.
    pub fn retrain_costs(self) -> (f64, f64) {
        match self {
            // 332 399 members: all 8 shards train in 19.6 s, all 32 in 32.7 s (each shard holds the 100 000 jobs).
            ModelKind::JobRecs | ModelKind::Items => (4.6e-5, 1.65e-6),
            // 416 815 members: 34.8 s at S = 8, 40.5 s at S = 32 (a post lives only in its author's shard).
            ModelKind::Content => (7.9e-5, 5.7e-7),
            // Every replies shard retrains on any removal (one shared inventory): the rule keeps them at the minimum
            // and never reads these; 21 s for all 8 shards of 174 155 members.
            ModelKind::Replies => (1.2e-4, 0.0),
        }
    }
}

/// The shard-count rule. A retrain of `s` of `S` shards costs about `N·(a·s/S + b·s)` for a dataset of `N`
/// members ([`ModelKind::retrain_costs`]): more shards shrink what one withdrawal retrains, until the fixed part
/// `b` dominates (`S ≈ a/b`), and grow what a wave touching every shard costs (`N·(a + b·S)`). So the rule takes
/// the largest power of two `S` from [`MIN_RULE_SHARDS`] up to `a/b` whose full retrain stays within
/// [`FULL_RETRAIN_DEADLINE_FRACTION`] of `deadline_secs`, with shards of at least [`MIN_MEMBERS_PER_SHARD`]
/// members, at most [`MAX_RULE_SHARDS`]. A model whose shards share inputs (replies: one inventory) gains nothing
/// from more shards and keeps the minimum. On 2 cores, at a million members, the 24-hour default deadline gives job
/// recommendations 16 shards and content suggestions 128; a 60-second deadline keeps 8, the fewest (a wave over
/// every shard of either takes 20–35 s). The gate applies it (`gate --deadline`, the demo), since a model trains
/// on its dataset's shard function; `gate --shards` overrides it.
pub fn shards_for(kind: ModelKind, members: u64, deadline_secs: i64) -> u32 {
    if !kind.shards_independent() || deadline_secs <= 0 {
        return MIN_RULE_SHARDS;
    }
    let (a, b) = kind.retrain_costs();
    let n = members as f64;
    let full = |s: u32| n * (a + b * f64::from(s));
    let useful = if b > 0.0 { a / b } else { f64::from(MAX_RULE_SHARDS) };
    let budget = deadline_secs as f64 * FULL_RETRAIN_DEADLINE_FRACTION;
    let by_size = members / MIN_MEMBERS_PER_SHARD;
    let mut s = MIN_RULE_SHARDS;
    while s < MAX_RULE_SHARDS && u64::from(s) * 2 <= by_size && f64::from(s * 2) <= useful && full(s * 2) <= budget {
        s *= 2;
    }
    s
}

fn shard_function(purpose: &str, shards: u32) -> Result<(ShardFunction, ShardOf), LearnError> {
    if shards == 0 || shards > 4096 {
        return Err(LearnError::Hyper(format!("{shards} shards: choose between 1 and 4096")));
    }
    let sf = ShardFunction::for_purpose(purpose, shards);
    let key = sf.key_bytes().ok_or_else(|| LearnError::Internal("shard key is not 32 bytes".into()))?;
    Ok((sf, Box::new(move |m: u64| consentry_gate::manifest::shard_of(&key, shards, m))))
}

/// [`shards_for`] the model trained for `purpose`: the built-in feature whose purpose it is, else a recommender (an
/// items model on a purpose of the platform's own is trained by the recommender code).
pub fn shards_for_purpose(purpose: &str, members: u64, deadline_secs: i64) -> u32 {
    let kind = [ModelKind::JobRecs, ModelKind::Content, ModelKind::Replies]
        .into_iter()
        .find(|k| k.fixed_purpose() == Some(purpose))
        .unwrap_or(ModelKind::Items);
    shards_for(kind, members, deadline_secs)
}

/// Reads a dataset for `opts.kind` without the `excluded` members and splits it by shard.
pub fn prepare(
    ds: &Dataset,
    opts: &TrainOptions,
    shard_of: &(dyn Fn(u64) -> u32 + Sync),
    shards: u32,
    excluded: &roaring::RoaringTreemap,
) -> Result<Prepared, LearnError> {
    prepare_only(ds, opts, shard_of, shards, excluded, None)
}

/// [`prepare`] of only the shards `only` marks (all when `None`; the replies model, whose shards share one
/// inventory, always prepares every shard); unmarked recommender shards come back empty.
fn prepare_only(
    ds: &Dataset,
    opts: &TrainOptions,
    shard_of: &(dyn Fn(u64) -> u32 + Sync),
    shards: u32,
    excluded: &roaring::RoaringTreemap,
    only: Option<&[bool]>,
) -> Result<Prepared, LearnError> {
    if opts.kind == ModelKind::Items {
        opts.rec.check()?;
        let spec = items_spec(opts)?;
        let input = items::load_input(ds, spec, &opts.rec)?.without(excluded);
        if input.events.is_empty() {
            return Err(LearnError::Empty(format!(
                "table `{}` holds no interactions once withdrawn members are removed",
                spec.table
            )));
        }
        return Ok(Prepared::Recs(recs::split_only(&input, shards, shard_of, &opts.rec, opts.threads, only)));
    }
    match opts.kind.rec() {
        Some(kind) => {
            opts.rec.check()?;
            let input = recs::load_input(ds, kind, &opts.rec)?.without(excluded);
            if input.events.is_empty() {
                return Err(LearnError::Empty(format!("the {} dataset holds no activity", kind.name())));
            }
            Ok(Prepared::Recs(recs::split_only(&input, shards, shard_of, &opts.rec, opts.threads, only)))
        }
        None => Ok(Prepared::Replies(replies::prepare(ds, shards, shard_of, &opts.replies, excluded)?)),
    }
}

/// The table and columns of an items model's options.
fn items_spec(opts: &TrainOptions) -> Result<&items::ItemsSpec, LearnError> {
    opts.items.as_ref().ok_or_else(|| {
        LearnError::Hyper("an items model needs its table and item column (`--table T --item-column C`)".into())
    })
}

/// A trained shard: its file bytes, its members, its training rows.
pub type ShardFile = (Vec<u8>, roaring::RoaringTreemap, u64);

// One value per shard, moved once: the size difference between the variants costs nothing.
#[allow(clippy::large_enum_variant)]
enum Trained {
    Rec(ShardModel),
    Reply(consentry_replies::ReplyModel),
}

fn train_some(
    p: &Prepared,
    which: &[usize],
    opts: &TrainOptions,
    key: Option<&NoiseKey>,
    on_shard: &(dyn Fn(u32) + Sync),
) -> Result<(Vec<Trained>, Vec<f64>), LearnError> {
    let dp = match (&opts.dp, key) {
        (Some(d), Some(k)) => Some((d, k)),
        (None, _) => None,
        (Some(_), None) => return Err(LearnError::Internal("a DP run without its noise key".into())),
    };
    train_parallel(which, opts.threads, on_shard, |&i, threads| match (p, dp) {
        (Prepared::Recs(d), None) => recs::train_shard(&d[i], &opts.rec, opts.seed, threads).map(Trained::Rec),
        (Prepared::Recs(d), Some((o, k))) => {
            let noise = dp::rec_shard_noise(k, o, opts.seed, i as u32)?;
            dp::train_rec_shard(&d[i], &opts.rec, &noise, threads).map(Trained::Rec)
        }
        (Prepared::Replies(r), dp) => {
            let dp = match dp {
                Some((o, k)) => Some((replies::dp_sgd(o)?, dp::replies_shard_key(k, opts.seed, i as u32))),
                None => None,
            };
            replies::train_shard(&r.inventory, &r.shards[i], opts.seed, dp.as_ref()).map(Trained::Reply)
        }
    })
}

/// Resolves DP options for a fresh run (δ, σ, key commitment) and returns the key; `None` without DP.
fn prepare_dp(opts: &mut TrainOptions, members: u64) -> Result<Option<NoiseKey>, LearnError> {
    let Some(d) = opts.dp.as_mut() else { return Ok(None) };
    let plan = dp_plan(opts.kind, d)?;
    dp::resolve(d, plan, members)?;
    let key = dp::key_for(d)?;
    d.key_commitment = Some(key.commitment());
    Ok(Some(key))
}

fn dp_plan(kind: ModelKind, d: &DpOptions) -> Result<dp::Plan, LearnError> {
    match kind {
        ModelKind::JobRecs => Ok(dp::RECS_PLAN),
        ModelKind::Replies => Ok(dp::Plan { q: d.sample_rate, steps: u64::from(d.steps) }),
        ModelKind::Content => Err(LearnError::Hyper(
            "differential privacy is implemented for job-recs and replies; content suggestions index members' \
             posts, which a DP model cannot release"
                .into(),
        )),
        ModelKind::Items => Err(LearnError::Hyper(
            "differential privacy is implemented for job-recs and replies; an items model releases its items' \
             factors without a formal bound — train it without --dp-epsilon"
                .into(),
        )),
    }
}

/// The `dp` record of `model.json` for a run with these options.
fn privacy_record(opts: &TrainOptions) -> Result<serde_json::Value, LearnError> {
    let claim = match &opts.dp {
        None => PrivacyClaim::None,
        Some(d) => {
            let plan = dp_plan(opts.kind, d)?;
            PrivacyClaim::Dp(Box::new(dp::claim(d, plan, opts.kind == ModelKind::Replies)?))
        }
    };
    serde_json::to_value(&claim).map_err(|e| LearnError::Internal(e.to_string()))
}

fn shard_file(p: &Prepared, i: usize, t: &Trained) -> Result<ShardFile, LearnError> {
    match (p, t) {
        (Prepared::Recs(d), Trained::Rec(m)) => Ok((m.to_bytes()?, m.members.iter().copied().collect(), d[i].rows)),
        (Prepared::Replies(r), Trained::Reply(m)) => {
            let rows = &r.shards[i];
            Ok((m.to_bytes(), rows.iter().map(|p| p.replier).collect(), rows.len() as u64))
        }
        _ => Err(LearnError::Internal("shard kind mismatch".into())),
    }
}

fn evaluate(
    p: &Prepared,
    trained: Vec<Trained>,
    opts: &TrainOptions,
    shard_of: ShardOf,
    oracle: Option<&recs::ItemScorer<'_>>,
) -> Result<serde_json::Value, LearnError> {
    match p {
        Prepared::Recs(data) => {
            let models: Vec<ShardModel> =
                trained.into_iter().filter_map(|t| if let Trained::Rec(m) = t { Some(m) } else { None }).collect();
            let rec = Recommender::new(models, shard_of)?;
            serde_json::to_value(recs::evaluate_with(&rec, data, opts.eval_limit, opts.threads, oracle)?)
                .map_err(|e| LearnError::Internal(e.to_string()))
        }
        Prepared::Replies(r) => {
            let models =
                trained.into_iter().filter_map(|t| if let Trained::Reply(m) = t { Some(m) } else { None }).collect();
            Ok(replies::metrics(models, r, opts.replies.k))
        }
    }
}

/// Current Unix time in seconds (model creation times, dataset time checks).
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Trains `opts.kind` on the dataset in `dataset_dir` into the new directory `out`; `on_shard` hears each finished
/// shard.
pub fn train(
    dataset_dir: &Path,
    out: &Path,
    opts: &TrainOptions,
    on_shard: &(dyn Fn(u32) + Sync),
) -> Result<TrainReport, LearnError> {
    train_with_oracle(dataset_dir, out, opts, on_shard, None)
}

/// [`train`], evaluating a recommender beside `oracle` (benchmarks and the demo: the synthetic world's truth) on the
/// same held-out split, so `model.json` records the model as a fraction of the oracle. Ignored for replies.
pub fn train_with_oracle(
    dataset_dir: &Path,
    out: &Path,
    opts: &TrainOptions,
    on_shard: &(dyn Fn(u32) + Sync),
    oracle: Option<&recs::ItemScorer<'_>>,
) -> Result<TrainReport, LearnError> {
    if consentry_files::taken(out) {
        return Err(LearnError::Exists(out.to_path_buf()));
    }
    let started = Instant::now();
    let ds = Dataset::open(dataset_dir)?;
    if let Some(purpose) = opts.kind.fixed_purpose() {
        ds.require_purpose(opts.kind.name(), purpose)?;
    }
    let shards = opts.shards.unwrap_or(ds.manifest.shard.shards);
    let (sf, shard_of) = shard_function(&ds.manifest.purpose, shards)?;
    let mut opts = opts.clone();
    opts.shards = Some(shards);
    if opts.kind == ModelKind::Items {
        opts.items = Some(items::resolve(&ds, items_spec(&opts)?)?);
    }
    let key = prepare_dp(&mut opts, ds.manifest.members.count)?;
    let privacy = privacy_record(&opts)?;
    let p = prepare(&ds, &opts, &shard_of, shards, &roaring::RoaringTreemap::new())?;
    let all: Vec<usize> = (0..p.shards()).collect();
    let (trained, shard_seconds) = train_some(&p, &all, &opts, key.as_ref(), on_shard)?;
    let files = trained.iter().enumerate().map(|(i, t)| shard_file(&p, i, t)).collect::<Result<Vec<_>, _>>()?;
    let metrics = evaluate(&p, trained, &opts, shard_of, oracle)?;
    let meta = ModelMeta {
        format: FORMAT,
        kind: opts.kind.name().into(),
        purpose: ds.manifest.purpose.clone(),
        dataset: DatasetRef {
            path: dataset_dir.display().to_string(),
            manifest_blake3: ds.manifest_hash.clone(),
            members_commitment: ds.manifest.members.commitment.clone(),
            members: ds.manifest.members.count,
            ledger_position: ds.manifest.ledger.position,
        },
        shard_function: sf,
        seed: opts.seed,
        hyper: serde_json::to_value(&opts).map_err(|e| LearnError::Internal(e.to_string()))?,
        metrics,
        dp: Some(privacy),
        shards: Vec::new(),
        shard_inputs: p.inputs_digests(),
        unlearning: None,
        train_seconds: started.elapsed().as_secs_f64(),
        tool: TOOL_VERSION.into(),
        created: now(),
    };
    let meta = write_model_dir(out, meta, files, &[])?;
    Ok(TrainReport { meta, dir: out.to_path_buf(), shard_seconds })
}

/// What unlearning did.
#[derive(Debug, Clone)]
pub struct UnlearnReport {
    /// The new version's metadata.
    pub meta: ModelMeta,
    /// Shards retrained (every other shard file was copied unchanged).
    pub retrained: Vec<u32>,
    /// Of the members asked for, those whose data was in the model.
    pub removed: Vec<u64>,
    /// Seconds for the whole operation.
    pub seconds: f64,
}

/// Writes a new version of the model in `model_dir` to `out`, trained without `remove` (and without everyone
/// earlier versions removed): only shards whose inputs change are retrained, from the same dataset, options and
/// seed, so each is byte-identical to training from scratch without those members; every other shard file is
/// copied unchanged. Metrics are carried over from the previous version (re-evaluate with `train` if needed).
pub fn unlearn(
    model_dir: &Path,
    dataset_dir: &Path,
    remove: &roaring::RoaringTreemap,
    out: &Path,
    threads: usize,
    on_shard: &(dyn Fn(u32) + Sync),
) -> Result<UnlearnReport, LearnError> {
    if consentry_files::taken(out) {
        return Err(LearnError::Exists(out.to_path_buf()));
    }
    let started = Instant::now();
    let (meta, previous) = ModelMeta::read_hashed(model_dir)?;
    let ds = Dataset::open(dataset_dir)?;
    if ds.manifest_hash != meta.dataset.manifest_blake3 {
        return Err(LearnError::Dataset {
            dir: ds.dir.clone(),
            message: format!(
                "it is not the dataset model {} was trained on (manifest BLAKE3 {}…, model says {}…)",
                model_dir.display(),
                &ds.manifest_hash[..12],
                meta.dataset.manifest_blake3.get(..12).unwrap_or("?")
            ),
        });
    }
    let mut opts: TrainOptions = serde_json::from_value(meta.hyper.clone()).map_err(|e| LearnError::Model {
        dir: model_dir.to_path_buf(),
        message: format!("its training options cannot be read back ({e}); retrain it with this version"),
    })?;
    opts.threads = threads;
    let key = match &opts.dp {
        Some(d) => Some(dp::key_for(d)?),
        None => None,
    };
    let shards = meta.shard_function.shards;
    let (_, shard_of) = shard_function(&meta.purpose, shards)?;
    // `prepare` splits into exactly `shards` shards (at least one: `shard_function` refuses 0).
    let n = shards as usize;
    if meta.shards.len() != n {
        return Err(LearnError::Model {
            dir: model_dir.to_path_buf(),
            message: format!("{} lists {} shards, the shard function {n}", crate::model::MODEL_FILE, meta.shards.len()),
        });
    }
    if meta.shard_inputs.len() != n {
        return Err(LearnError::Model {
            dir: model_dir.to_path_buf(),
            message: format!(
                "{} records input digests for {} of its {n} shards (it predates them, or was edited), so the shards \
                 a removal changes cannot be told; retrain the model with `consentry train`",
                crate::model::MODEL_FILE,
                meta.shard_inputs.len()
            ),
        });
    }
    let before = meta.excluded(model_dir)?;
    let mut after = before.clone();
    after |= remove;
    // A recommender shard is a function of its own members' rows (and the catalogue, which no member owns): only the
    // shards of newly removed members can change, and only those are read and prepared. The replies model's shards
    // share one inventory that any member's removal may change, so every one is prepared and compared.
    let only: Option<Vec<bool>> = opts.kind.shards_independent().then(|| {
        let mut mask = vec![false; n];
        for m in remove.iter().filter(|m| !before.contains(*m)) {
            if let Some(x) = mask.get_mut(shard_of(m) as usize) {
                *x = true;
            }
        }
        mask
    });
    let new = prepare_only(&ds, &opts, &shard_of, shards, &after, only.as_deref())?;
    let new_inputs: Vec<String> = match &only {
        None => new.inputs_digests(),
        Some(mask) => {
            let fresh = new.inputs_digests_of(mask);
            meta.shard_inputs.iter().zip(fresh).map(|(old, f)| f.unwrap_or_else(|| old.clone())).collect()
        }
    };
    let which: Vec<usize> =
        meta.shard_inputs.iter().zip(&new_inputs).enumerate().filter(|(_, (a, b))| a != b).map(|(i, _)| i).collect();
    let bitmaps = (0..meta.shards.len()).map(|i| meta.shard_members(model_dir, i)).collect::<Result<Vec<_>, _>>()?;
    // Of the members asked for, those whose data is in this version.
    let removed: Vec<u64> = remove
        .iter()
        .filter(|m| !before.contains(*m) && bitmaps.get(shard_of(*m) as usize).is_some_and(|b| b.contains(*m)))
        .collect();
    let (trained, _) = train_some(&new, &which, &opts, key.as_ref(), on_shard)?;
    let mut retrained: Vec<Option<Trained>> = (0..n).map(|_| None).collect();
    for (t, &i) in trained.into_iter().zip(&which) {
        retrained[i] = Some(t);
    }
    let mut files: Vec<ShardFile> = Vec::with_capacity(n);
    for (i, (bm, t)) in bitmaps.into_iter().zip(retrained).enumerate() {
        files.push(match t {
            Some(t) => shard_file(&new, i, &t)?,
            None => (meta.shard_bytes(model_dir, i)?, bm, meta.shards[i].rows),
        });
    }
    let mut excluded_bytes = Vec::new();
    after.serialize_into(&mut excluded_bytes).map_err(|e| LearnError::io(out, e))?;
    let mut next = meta.clone();
    next.shard_inputs = new_inputs;
    next.unlearning = Some(UnlearningRef {
        excluded: after.len(),
        file: EXCLUDED_FILE.into(),
        commitment: blake3::hash(&excluded_bytes).to_hex().to_string(),
        previous,
        retrained_shards: which.iter().map(|&i| i as u32).collect(),
    });
    next.train_seconds = started.elapsed().as_secs_f64();
    next.created = now();
    let next = write_model_dir(out, next, files, &[(EXCLUDED_FILE, excluded_bytes)])?;
    Ok(UnlearnReport {
        meta: next,
        retrained: which.iter().map(|&i| i as u32).collect(),
        removed,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Trains every shard with `f`, up to `threads` at once (each shard gets the leftover threads); results come back in
/// shard order and never depend on the thread count.
pub fn train_parallel<D: Sync, M: Send>(
    data: &[D],
    threads: usize,
    on_shard: &(dyn Fn(u32) + Sync),
    f: impl Fn(&D, usize) -> Result<M, LearnError> + Sync,
) -> Result<(Vec<M>, Vec<f64>), LearnError> {
    let threads = ials::resolve_threads(threads);
    let workers = threads.min(data.len()).max(1);
    let inner = (threads / workers).max(1);
    let done = ials::par_map(data.len(), threads, |i| {
        let t = Instant::now();
        let r = f(&data[i], inner);
        let secs = t.elapsed().as_secs_f64();
        on_shard(i as u32);
        (r, secs)
    });
    let mut models = Vec::with_capacity(data.len());
    let mut secs = Vec::with_capacity(data.len());
    for (r, t) in done {
        models.push(r?);
        secs.push(t);
    }
    Ok((models, secs))
}

/// Loads a job or content model for serving, checking every shard file against `model.json`.
pub fn load_recommender(dir: &Path) -> Result<(ModelMeta, Recommender), LearnError> {
    let meta = ModelMeta::read(dir)?;
    if !ModelKind::from_name(&meta.kind).is_some_and(ModelKind::is_recommender) {
        return Err(LearnError::Model {
            dir: dir.to_path_buf(),
            message: format!("it is a `{}` model; `recommend` serves job-recs, content and items models", meta.kind),
        });
    }
    let mut shards: Vec<ShardModel> = Vec::with_capacity(meta.shards.len());
    for (i, s) in meta.shards.iter().enumerate() {
        let bytes = meta.shard_bytes(dir, i)?;
        shards.push(ShardModel::from_bytes(&bytes, &s.file)?);
    }
    let n = meta.shards.len() as u32;
    if n != meta.shard_function.shards || n == 0 {
        return Err(LearnError::Model {
            dir: dir.to_path_buf(),
            message: format!("{n} shard files for a {}-shard function", meta.shard_function.shards),
        });
    }
    let key = meta.shard_function.key_bytes().ok_or_else(|| LearnError::Model {
        dir: dir.to_path_buf(),
        message: "the shard key in model.json is not 32 hex bytes".into(),
    })?;
    let rec = Recommender::new(shards, Box::new(move |m| consentry_gate::manifest::shard_of(&key, n, m)))?;
    Ok((meta, rec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shard_rule_follows_members_and_deadline() {
        let day = 24 * 3600;
        // The demo's default network keeps 8 shards, whatever the deadline.
        assert_eq!(shards_for(ModelKind::JobRecs, 6_600, 60), 8);
        assert_eq!(shards_for(ModelKind::JobRecs, 6_600, day), 8);
        // A million members (≈ 330 k in the jobs dataset, 420 k in content): a day allows 16 job shards, where a
        // shard's fixed part (the job catalogue) takes over, and 128 content shards; 60 seconds keeps the fewest, so
        // that a wave touching every shard still fits.
        assert_eq!(shards_for(ModelKind::JobRecs, 332_399, day), 16);
        assert_eq!(shards_for(ModelKind::Content, 416_815, day), 128);
        assert_eq!(shards_for(ModelKind::JobRecs, 332_399, 60), 8);
        assert_eq!(shards_for(ModelKind::Content, 416_815, 60), 8);
        // Shards of at least 2,000 members: 42 k content members allow 16, not the 128 the costs alone would.
        assert_eq!(shards_for(ModelKind::Content, 42_000, day), 16);
        // Never fewer than the minimum, even when nothing fits (a billion members on 2 cores).
        assert_eq!(shards_for(ModelKind::JobRecs, 1_000_000_000, day), MIN_RULE_SHARDS);
        assert_eq!(shards_for(ModelKind::JobRecs, 1, 1), MIN_RULE_SHARDS);
        assert_eq!(shards_for(ModelKind::JobRecs, 1_000_000, 0), MIN_RULE_SHARDS);
        assert_eq!(shards_for(ModelKind::JobRecs, 1_000_000, -5), MIN_RULE_SHARDS);
        // The replies model's shards share one inventory: more of them would not shrink a retrain.
        assert_eq!(shards_for(ModelKind::Replies, 10_000_000, day), MIN_RULE_SHARDS);
        // By purpose, as the gate sizes a dataset: the built-in feature's costs, a recommender's for any other.
        assert_eq!(shards_for_purpose(ModelKind::Content.purpose(), 416_815, day), 128);
        assert_eq!(shards_for_purpose(ModelKind::Replies.purpose(), 10_000_000, day), MIN_RULE_SHARDS);
        assert_eq!(shards_for_purpose("train_ai_system.our_own", 332_399, day), 16);
        // A longer deadline never means fewer shards; every answer is a power of two in range.
        for members in [1_000u64, 10_000, 100_000, 1_000_000, 10_000_000] {
            let mut last = 0;
            for d in [1, 60, 600, 3600, day, 30 * day] {
                let s = shards_for(ModelKind::Content, members, d);
                assert!(s >= last && s.is_power_of_two() && (MIN_RULE_SHARDS..=MAX_RULE_SHARDS).contains(&s));
                last = s;
            }
        }
    }
}
