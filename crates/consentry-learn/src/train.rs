//! Training a model directory from a dataset: split into shards, train the shards in parallel, evaluate the
//! aggregate, write the directory atomically.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use consentry_gate::manifest::ShardFunction;
use serde::{Deserialize, Serialize};

use crate::data::Dataset;
use crate::model::{DatasetRef, FORMAT, ModelMeta, write_model_dir};
use crate::recs::{self, RecHyper, RecKind, Recommender, ShardModel};
use crate::{LearnError, TOOL_VERSION, ials, replies};

/// The three features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelKind {
    /// Job recommendations.
    JobRecs,
    /// Content suggestions.
    Content,
    /// Reply suggestions.
    Replies,
}

impl ModelKind {
    /// The name used on the command line and in `model.json`.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::JobRecs => "job-recs",
            ModelKind::Content => "content",
            ModelKind::Replies => "replies",
        }
    }

    /// Parses a `model.json` kind.
    pub fn from_name(s: &str) -> Option<ModelKind> {
        [ModelKind::JobRecs, ModelKind::Content, ModelKind::Replies].into_iter().find(|k| k.name() == s)
    }

    /// The purpose whose dataset trains it.
    pub fn purpose(self) -> &'static str {
        match self {
            ModelKind::JobRecs => RecKind::Jobs.purpose(),
            ModelKind::Content => RecKind::Content.purpose(),
            ModelKind::Replies => replies::PURPOSE,
        }
    }

    fn rec(self) -> Option<RecKind> {
        match self {
            ModelKind::JobRecs => Some(RecKind::Jobs),
            ModelKind::Content => Some(RecKind::Content),
            ModelKind::Replies => None,
        }
    }
}

/// How to train.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Which model.
    pub kind: ModelKind,
    /// Shards (default: the dataset manifest's).
    pub shards: Option<u32>,
    /// Seed of everything random.
    pub seed: u64,
    /// Worker threads, 0 = all cores; never changes the model.
    pub threads: usize,
    /// Recommender hyper-parameters.
    pub rec: RecHyper,
    /// Reply-model settings.
    pub replies: replies::ReplyOptions,
    /// At most this many held-out members are evaluated.
    pub eval_limit: usize,
}

impl TrainOptions {
    /// Defaults for `kind`.
    pub fn new(kind: ModelKind) -> TrainOptions {
        TrainOptions {
            kind,
            shards: None,
            seed: 42,
            threads: 0,
            rec: RecHyper::default(),
            replies: replies::ReplyOptions::default(),
            eval_limit: 2_000,
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
    /// Seconds per shard.
    pub shard_seconds: Vec<f64>,
}

/// Trains `opts.kind` on the dataset in `dataset_dir` into the new directory `out`; `on_shard` hears each finished
/// shard.
pub fn train(
    dataset_dir: &Path,
    out: &Path,
    opts: &TrainOptions,
    on_shard: &(dyn Fn(u32) + Sync),
) -> Result<TrainReport, LearnError> {
    if out.exists() {
        return Err(LearnError::Exists(out.to_path_buf()));
    }
    let started = Instant::now();
    let ds = Dataset::open(dataset_dir)?;
    let shards = opts.shards.unwrap_or(ds.manifest.shard.shards).max(1);
    if shards > 4096 {
        return Err(LearnError::Hyper(format!("{shards} shards is more than the 4096 supported")));
    }
    let sf = ShardFunction::for_purpose(&ds.manifest.purpose, shards);
    let key: [u8; 32] = hex::decode(&sf.key)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| LearnError::Internal("shard key is not 32 bytes".into()))?;
    let shard_of = move |m: u64| consentry_gate::manifest::shard_of(&key, shards, m);
    let (files, shard_seconds, metrics, hyper) = match opts.kind.rec() {
        Some(kind) => {
            opts.rec.check()?;
            let input = recs::load_input(&ds, kind, &opts.rec)?;
            if input.events.is_empty() {
                return Err(LearnError::Empty(format!("the {} dataset holds no activity", kind.name())));
            }
            let data = recs::split(&input, shards, &shard_of, &opts.rec);
            let (models, secs) = train_parallel(&data, opts.threads, on_shard, |d, threads| {
                recs::train_shard(d, &opts.rec, opts.seed, threads)
            })?;
            let files = models
                .iter()
                .zip(&data)
                .map(|(m, d)| Ok((m.to_bytes()?, m.members.iter().copied().collect(), d.rows)))
                .collect::<Result<Vec<_>, LearnError>>()?;
            let rec = Recommender::new(models, Box::new(shard_of))?;
            let eval = recs::evaluate(&rec, &data, opts.eval_limit, opts.threads)?;
            let hyper = serde_json::to_value(&opts.rec).map_err(|e| LearnError::Internal(e.to_string()))?;
            (files, secs, serde_json::to_value(eval).map_err(|e| LearnError::Internal(e.to_string()))?, hyper)
        }
        None => replies::train_replies(&ds, shards, &shard_of, opts, on_shard)?,
    };
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
        hyper,
        metrics,
        dp: None,
        shards: Vec::new(),
        train_seconds: started.elapsed().as_secs_f64(),
        tool: TOOL_VERSION.into(),
        created: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64),
    };
    let meta = write_model_dir(out, meta, files)?;
    Ok(TrainReport { meta, dir: out.to_path_buf(), shard_seconds })
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
    let next = AtomicUsize::new(0);
    type Slot<M> = Mutex<Option<(Result<M, LearnError>, f64)>>;
    let slots: Vec<Slot<M>> = data.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(d) = data.get(i) else { break };
                    let t = Instant::now();
                    let r = f(d, inner);
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some((r, t.elapsed().as_secs_f64()));
                    }
                    on_shard(i as u32);
                }
            });
        }
    });
    let mut models = Vec::with_capacity(data.len());
    let mut secs = Vec::with_capacity(data.len());
    for (i, slot) in slots.into_iter().enumerate() {
        let taken = slot.into_inner().ok().flatten();
        let (r, t) = taken.ok_or_else(|| LearnError::Internal(format!("shard {i} was not trained")))?;
        models.push(r?);
        secs.push(t);
    }
    Ok((models, secs))
}

/// Loads a job or content model for serving, checking every shard file against `model.json`.
pub fn load_recommender(dir: &Path) -> Result<(ModelMeta, Recommender), LearnError> {
    let meta = ModelMeta::read(dir)?;
    if ModelKind::from_name(&meta.kind).and_then(ModelKind::rec).is_none() {
        return Err(LearnError::Model {
            dir: dir.to_path_buf(),
            message: format!("it is a `{}` model; `recommend` serves job-recs and content models", meta.kind),
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
    let sf = meta.shard_function.clone();
    let key: [u8; 32] = hex::decode(&sf.key).ok().and_then(|k| k.try_into().ok()).ok_or_else(|| LearnError::Model {
        dir: dir.to_path_buf(),
        message: "the shard key in model.json is not 32 hex bytes".into(),
    })?;
    let rec = Recommender::new(shards, Box::new(move |m| consentry_gate::manifest::shard_of(&key, n, m)))?;
    Ok((meta, rec))
}
