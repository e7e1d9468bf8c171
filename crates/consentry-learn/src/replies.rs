//! Reply suggestions on the gated `messages` table: message–reply pairs (a reply's `reply_to` names the message
//! it answers; both rows passed the gate, so sender and recipient both allowed), a row belongs to the replier's
//! shard, the model itself lives in `consentry-replies`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::LearnError;
use crate::data::{self, Dataset};
use crate::model::ModelMeta;
use consentry_replies::{Inventory, ReplyModel};
use std::path::Path;

/// The purpose reply suggestions are trained for.
pub const PURPOSE: &str = "train_ai_system.reply_suggestions";

/// Reply-model settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplyOptions {
    /// A response is suggested only if at least this many distinct members wrote it.
    pub k: usize,
    /// Share of each replier's latest pairs held out for evaluation.
    pub holdout: f64,
}

impl Default for ReplyOptions {
    fn default() -> Self {
        ReplyOptions { k: 20, holdout: 0.2 }
    }
}

/// A pair plus who wrote the message replied to.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedPair {
    /// The pair.
    pub pair: consentry_replies::Pair,
    /// The author of the incoming message.
    pub incoming_sender: u64,
}

/// Reads the message–reply pairs of a reply-suggestions dataset, sorted canonically.
pub fn load_pairs(ds: &Dataset) -> Result<Vec<LoadedPair>, LearnError> {
    ds.require_purpose("replies", PURPOSE)?;
    struct Msg {
        sender: u64,
        reply_to: Option<u64>,
        text: String,
        at: i64,
    }
    let mut msgs: HashMap<u64, Msg> = HashMap::new();
    if !ds.has_table("messages") {
        return Ok(Vec::new());
    }
    for b in ds.read("messages", &["message_id", "sender_id", "reply_to", "text", "sent_at"])? {
        let (id, s, r, t, at) = (
            data::u64s(&b, "message_id")?,
            data::u64s(&b, "sender_id")?,
            data::opt_u64s(&b, "reply_to")?,
            data::strs(&b, "text")?,
            data::times(&b, "sent_at")?,
        );
        for i in 0..b.num_rows() {
            msgs.insert(id[i], Msg { sender: s[i], reply_to: r[i], text: t[i].clone(), at: at[i] });
        }
    }
    let mut pairs: Vec<LoadedPair> = msgs
        .values()
        .filter_map(|m| {
            let prev = msgs.get(&m.reply_to?)?;
            Some(LoadedPair {
                pair: consentry_replies::Pair {
                    replier: m.sender,
                    incoming: prev.text.clone(),
                    reply: m.text.clone(),
                    at_ms: m.at,
                },
                incoming_sender: prev.sender,
            })
        })
        .collect();
    pairs.sort_by(|a, b| {
        let (a, b) = (&a.pair, &b.pair);
        (a.replier, a.at_ms, &a.incoming, &a.reply).cmp(&(b.replier, b.at_ms, &b.incoming, &b.reply))
    });
    Ok(pairs)
}

/// Whether a pair is held out for evaluation: a keyed hash of the pair itself, so the split of one member's pairs
/// never depends on anyone else's.
fn held_out(p: &consentry_replies::Pair, share: f64) -> bool {
    let mut h = blake3::Hasher::new_derive_key("consentry-learn replies holdout v1");
    h.update(&p.replier.to_le_bytes());
    h.update(&p.at_ms.to_le_bytes());
    h.update(p.incoming.as_bytes());
    h.update(&[0]);
    h.update(p.reply.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.finalize().as_bytes()[..8]);
    (u64::from_le_bytes(b) as f64 / u64::MAX as f64) < share
}

/// One reply model per shard; intent probabilities are averaged over the shards.
#[derive(Debug, Clone)]
pub struct ShardedReplies {
    /// The shard models, by index.
    pub shards: Vec<ReplyModel>,
}

/// One suggestion as the CLI shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Suggested {
    /// The reply text.
    pub text: String,
    /// Its intent id.
    pub intent: u32,
    /// Mean probability of the intent over the shards.
    pub score: f64,
}

/// Held-out quality of the reply model.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct ReplyMetrics {
    /// Held-out pairs.
    pub pairs: u64,
    /// Share whose reply is an inventory response (what the inventory could have produced).
    pub coverage: f64,
    /// Share of covered pairs whose reply's intent is the first suggestion's.
    pub top1: f64,
    /// Share of covered pairs whose reply's intent is among the three suggestions.
    pub top3: f64,
}

impl ShardedReplies {
    /// Loads a replies model directory, checking every shard file against `model.json`.
    pub fn load(dir: &Path) -> Result<ShardedReplies, LearnError> {
        let meta = ModelMeta::read(dir)?;
        if meta.kind != "replies" {
            return Err(LearnError::Model {
                dir: dir.to_path_buf(),
                message: format!("it is a `{}` model; suggest-replies needs a replies model", meta.kind),
            });
        }
        let mut shards = Vec::with_capacity(meta.shards.len());
        for i in 0..meta.shards.len() {
            let bytes = meta.shard_bytes(dir, i)?;
            shards.push(ReplyModel::from_bytes(&bytes)?);
        }
        if shards.is_empty() {
            return Err(LearnError::Model { dir: dir.to_path_buf(), message: "it has no shards".into() });
        }
        Ok(ShardedReplies { shards })
    }

    /// Mean intent probabilities over the shards (all shards share one inventory).
    fn scores(&self, text: &str) -> Vec<f64> {
        let mut acc: Vec<f64> = Vec::new();
        for m in &self.shards {
            let s = m.intent_scores(text);
            if acc.is_empty() {
                acc = vec![0.0; s.len()];
            }
            for (a, v) in acc.iter_mut().zip(s) {
                *a += v / self.shards.len() as f64;
            }
        }
        acc
    }

    /// Up to `n` suggestions, best first, at most one per intent (its most used response).
    pub fn suggest(&self, text: &str, n: usize) -> Vec<Suggested> {
        let Some(first) = self.shards.first() else { return Vec::new() };
        let inv = first.inventory();
        let probs = self.scores(text);
        let mut order: Vec<usize> = (0..probs.len()).collect();
        order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
        order
            .into_iter()
            .filter_map(|i| {
                let intent = inv.intents().get(i)?;
                let resp = inv.response(*intent.responses.first()?)?;
                Some(Suggested { text: resp.text.clone(), intent: intent.id, score: probs[i] })
            })
            .take(n)
            .collect()
    }

    /// Top-1/top-3 intent accuracy and coverage on held-out pairs.
    pub fn evaluate(&self, pairs: &[consentry_replies::Pair]) -> ReplyMetrics {
        let Some(first) = self.shards.first() else { return ReplyMetrics::default() };
        let inv = first.inventory();
        let (mut covered, mut t1, mut t3) = (0u64, 0u64, 0u64);
        for p in pairs {
            let Some(intent) = inv.lookup(&p.reply).and_then(|r| inv.response(r)).map(|r| r.intent) else { continue };
            covered += 1;
            let s = self.suggest(&p.incoming, 3);
            t1 += u64::from(s.first().is_some_and(|x| x.intent == intent));
            t3 += u64::from(s.iter().any(|x| x.intent == intent));
        }
        let share = |x: u64, of: u64| if of == 0 { 0.0 } else { x as f64 / of as f64 };
        ReplyMetrics {
            pairs: pairs.len() as u64,
            coverage: share(covered, pairs.len() as u64),
            top1: share(t1, covered),
            top3: share(t3, covered),
        }
    }
}

/// The reply model's inputs, split by shard.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplyInputs {
    /// The k-anonymous inventory over every shard's training pairs.
    pub inventory: Inventory,
    /// Training pairs per shard, canonically sorted.
    pub shards: Vec<Vec<consentry_replies::Pair>>,
    /// Held-out pairs.
    pub test: Vec<consentry_replies::Pair>,
}

/// Reads and splits the pairs, leaving out every pair an `excluded` member took part in (as replier or as the
/// author of the message replied to); one k-anonymous inventory over every shard's training pairs (k-anonymity is
/// a property of the population).
pub(crate) fn prepare(
    ds: &Dataset,
    shards: u32,
    shard_of: &(dyn Fn(u64) -> u32 + Sync),
    o: &ReplyOptions,
    excluded: &roaring::RoaringTreemap,
) -> Result<ReplyInputs, LearnError> {
    if !(0.0..0.9).contains(&o.holdout) {
        return Err(LearnError::Hyper("holdout must be in [0, 0.9)".into()));
    }
    let mut pairs = load_pairs(ds)?;
    pairs.retain(|p| !excluded.contains(p.pair.replier) && !excluded.contains(p.incoming_sender));
    if pairs.is_empty() {
        return Err(LearnError::Empty("the replies dataset holds no message–reply pair".into()));
    }
    let pairs: Vec<consentry_replies::Pair> = pairs.into_iter().map(|p| p.pair).collect();
    let (test, train): (Vec<_>, Vec<_>) = pairs.into_iter().partition(|p| held_out(p, o.holdout));
    let inventory = Inventory::build(&train, o.k)?;
    let mut per_shard: Vec<Vec<consentry_replies::Pair>> = vec![Vec::new(); shards as usize];
    for p in train {
        per_shard[shard_of(p.replier) as usize].push(p);
    }
    Ok(ReplyInputs { inventory, shards: per_shard, test })
}

/// Trains one shard's ranker; a shard without examples serves the inventory's prior.
/// With `dp`, runs member-level DP-SGD whose sampling and noise streams are keyed by the shard's secret seed.
pub(crate) fn train_shard(
    inv: &Inventory,
    rows: &[consentry_replies::Pair],
    seed: u64,
    dp: Option<&(consentry_replies::DpSgd, [u8; 32])>,
) -> Result<ReplyModel, LearnError> {
    if rows.iter().all(|p| inv.lookup(&p.reply).is_none()) {
        return Ok(ReplyModel::frequency_baseline(inv.clone()));
    }
    let hyper = consentry_replies::Hyper::default();
    Ok(match dp {
        None => ReplyModel::train(rows, inv.clone(), &hyper, seed, None)?,
        Some((d, key)) => ReplyModel::train_private(rows, inv.clone(), &hyper, seed, d, key)?,
    })
}

/// The replies crate's DP-SGD settings from resolved DP options.
pub(crate) fn dp_sgd(o: &crate::dp::DpOptions) -> Result<consentry_replies::DpSgd, LearnError> {
    let sigma = o.sigma.ok_or_else(|| LearnError::Internal("σ was not calibrated".into()))?;
    Ok(consentry_replies::DpSgd { sigma, clip: o.clip, sample_rate: o.sample_rate, steps: o.steps })
}

/// Held-out metrics of the sharded model against the most-frequent baseline.
pub(crate) fn metrics(models: Vec<ReplyModel>, inp: &ReplyInputs, k: usize) -> serde_json::Value {
    let sharded = ShardedReplies { shards: models };
    let baseline = ShardedReplies { shards: vec![ReplyModel::frequency_baseline(inp.inventory.clone())] };
    serde_json::json!({
        "model": sharded.evaluate(&inp.test),
        "most_frequent": baseline.evaluate(&inp.test),
        "inventory": { "k": k, "responses": inp.inventory.responses().len(), "intents": inp.inventory.intents().len() },
    })
}
