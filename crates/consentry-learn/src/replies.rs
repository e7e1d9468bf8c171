//! Reply suggestions on the gated `messages` table: message–reply pairs (a reply's `reply_to` names the message
//! it answers; both rows passed the gate, so sender and recipient both allowed), a row belongs to the replier's
//! shard, the model itself lives in `consentry-replies`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::LearnError;
use crate::data::{self, Dataset};
use crate::interval::{Interval, mean_ci, ratio_ci};
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
    /// The id of the incoming message (`message_id`), so benchmarks can join what they know about it.
    pub incoming_id: u64,
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
            let incoming_id = m.reply_to?;
            let prev = msgs.get(&incoming_id)?;
            Some(LoadedPair {
                pair: consentry_replies::Pair {
                    replier: m.sender,
                    incoming: prev.text.clone(),
                    reply: m.text.clone(),
                    at_ms: m.at,
                },
                incoming_sender: prev.sender,
                incoming_id,
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
    /// 95 % bootstrap interval of `top1` over the covered pairs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top1_ci: Option<Interval>,
    /// 95 % bootstrap interval of `top3` over the covered pairs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top3_ci: Option<Interval>,
}

/// Seed of the bootstrap intervals of held-out reply metrics (fixed, so a report replays).
const CI_SEED: u64 = 0x0072_6570_6c69_6573;

/// Per covered held-out pair (a pair whose reply is an inventory response), whether a scorer's first intent and its
/// top three intents held the reply's intent: the units every reply metric, interval and ratio is computed over.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PairHits {
    /// Held-out pairs, covered or not.
    pub pairs: u64,
    /// 1.0 where the first intent is the reply's, else 0.0, per covered pair.
    pub top1: Vec<f64>,
    /// 1.0 where the reply's intent is among the top three, else 0.0, per covered pair.
    pub top3: Vec<f64>,
}

impl PairHits {
    /// Scores every held-out pair with `scorer` (intent scores indexed by the inventory's intents, higher first; ties
    /// go to the lower intent id, as suggestions break them; `None` ranks nothing, a miss). `incoming[i]` is the
    /// message id pair `i` answers. One metric code for the model, the baseline and an oracle.
    pub fn score(
        inv: &Inventory,
        test: &[consentry_replies::Pair],
        incoming: &[u64],
        scorer: &dyn Fn(&consentry_replies::Pair, u64) -> Option<Vec<f64>>,
    ) -> PairHits {
        let mut h = PairHits { pairs: test.len() as u64, ..PairHits::default() };
        for (i, p) in test.iter().enumerate() {
            let Some(intent) = inv.lookup(&p.reply).and_then(|r| inv.response(r)).map(|r| r.intent) else { continue };
            let scores = scorer(p, incoming.get(i).copied().unwrap_or(0)).unwrap_or_default();
            let mut order: Vec<usize> = (0..scores.len()).collect();
            order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
            h.top1.push(f64::from(u8::from(order.first() == Some(&(intent as usize)))));
            h.top3.push(f64::from(u8::from(order.iter().take(3).any(|&x| x == intent as usize))));
        }
        h
    }

    /// The shares with their 95 % intervals.
    pub fn metrics(&self) -> ReplyMetrics {
        let covered = self.top1.len();
        let (top1, top3) = (mean_ci(&self.top1, CI_SEED), mean_ci(&self.top3, CI_SEED ^ 3));
        ReplyMetrics {
            pairs: self.pairs,
            coverage: if self.pairs == 0 { 0.0 } else { covered as f64 / self.pairs as f64 },
            top1: top1.value,
            top3: top3.value,
            top1_ci: (covered > 0).then_some(top1),
            top3_ci: (covered > 0).then_some(top3),
        }
    }

    /// `self ÷ other` per metric over the same pairs, with paired-bootstrap intervals (`None` where `other` is 0).
    pub fn ratio(&self, other: &PairHits) -> serde_json::Value {
        serde_json::json!({
            "top1": ratio_ci(&self.top1, &other.top1, CI_SEED),
            "top3": ratio_ci(&self.top3, &other.top3, CI_SEED ^ 3),
        })
    }
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

    /// Top-1/top-3 intent accuracy (with 95 % intervals) and coverage on held-out pairs.
    pub fn evaluate(&self, pairs: &[consentry_replies::Pair]) -> ReplyMetrics {
        self.hits(pairs).metrics()
    }

    /// Per-pair hits on held-out pairs (see [`PairHits::score`]), for intervals and paired ratios.
    pub fn hits(&self, pairs: &[consentry_replies::Pair]) -> PairHits {
        let Some(first) = self.shards.first() else { return PairHits::default() };
        PairHits::score(first.inventory(), pairs, &[], &|p, _| Some(self.scores(&p.incoming)))
    }

    /// The inventory the shards suggest from.
    pub fn inventory(&self) -> Option<&Inventory> {
        self.shards.first().map(ReplyModel::inventory)
    }
}

/// A trained replies model evaluated beside an oracle on the very held-out pairs it was evaluated on (the same
/// split, the same exclusions, the same metric code): `model`, `most_frequent` and `oracle` with 95 % intervals and
/// `model_over_oracle` (paired-bootstrap ratios). `oracle(inventory, incoming_message_id)` returns intent scores
/// indexed by the inventory's intents — in benchmarks the synthetic network's true reply distribution, which this
/// crate never sees.
pub fn evaluate_with_oracle(
    model_dir: &Path,
    dataset_dir: &Path,
    oracle: &dyn Fn(&Inventory, u64) -> Option<Vec<f64>>,
) -> Result<serde_json::Value, LearnError> {
    let meta = ModelMeta::read(model_dir)?;
    let model = ShardedReplies::load(model_dir)?;
    let inv = model.inventory().ok_or_else(|| LearnError::Internal("a replies model without shards".into()))?.clone();
    let opts: crate::train::TrainOptions =
        serde_json::from_value(meta.hyper.clone()).map_err(|e| LearnError::Model {
            dir: model_dir.to_path_buf(),
            message: format!("its training options cannot be read back ({e})"),
        })?;
    let excluded = meta.excluded(model_dir)?;
    let ds = Dataset::open(dataset_dir)?;
    let (test, _) = split_pairs(&ds, &opts.replies, &excluded)?;
    let (test, incoming): (Vec<_>, Vec<_>) = test.into_iter().map(|p| (p.pair, p.incoming_id)).unzip();
    let hits = PairHits::score(&inv, &test, &incoming, &|p, _| Some(model.scores(&p.incoming)));
    let base = ShardedReplies { shards: vec![ReplyModel::frequency_baseline(inv.clone())] };
    let base_hits = PairHits::score(&inv, &test, &incoming, &|p, _| Some(base.scores(&p.incoming)));
    let oracle_hits = PairHits::score(&inv, &test, &incoming, &|_, id| oracle(&inv, id));
    Ok(serde_json::json!({
        "model": hits.metrics(),
        "most_frequent": base_hits.metrics(),
        "oracle": oracle_hits.metrics(),
        "model_over_oracle": hits.ratio(&oracle_hits),
    }))
}

/// The pairs of a replies dataset without those an `excluded` member took part in (as replier or as the author of
/// the message replied to), split into the held-out pairs (with the message each answers) and the training pairs.
fn split_pairs(
    ds: &Dataset,
    o: &ReplyOptions,
    excluded: &roaring::RoaringTreemap,
) -> Result<(Vec<LoadedPair>, Vec<consentry_replies::Pair>), LearnError> {
    let mut pairs = load_pairs(ds)?;
    pairs.retain(|p| !excluded.contains(p.pair.replier) && !excluded.contains(p.incoming_sender));
    let (test, train): (Vec<_>, Vec<_>) = pairs.into_iter().partition(|p| held_out(&p.pair, o.holdout));
    Ok((test, train.into_iter().map(|p| p.pair).collect()))
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
    let (test, train) = split_pairs(ds, o, excluded)?;
    if test.is_empty() && train.is_empty() {
        return Err(LearnError::Empty("the replies dataset holds no message–reply pair".into()));
    }
    let test = test.into_iter().map(|p| p.pair).collect();
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

#[cfg(test)]
mod tests {
    use super::*;
    use consentry_replies::Pair;

    fn pair(replier: u64, incoming: &str, reply: &str) -> Pair {
        Pair { replier, incoming: incoming.into(), reply: reply.into(), at_ms: replier as i64 }
    }

    /// Two responses used by 3 members each (k = 3): "thanks" and "sounds good", two intents.
    fn inventory() -> Inventory {
        let mut v = Vec::new();
        for m in 0..3 {
            v.push(pair(m, "a", "Thanks!"));
            v.push(pair(m + 10, "b", "Sounds good."));
        }
        Inventory::build(&v, 3).unwrap()
    }

    #[test]
    fn pair_hits_score_covered_pairs_only_and_break_ties_by_intent_id() {
        let inv = inventory();
        let thanks = inv.lookup("thanks").and_then(|r| inv.response(r)).unwrap().intent as usize;
        let test = vec![pair(1, "x", "thanks"), pair(2, "y", "sounds good!"), pair(3, "z", "something else")];
        let incoming = [7, 8, 9];
        // A scorer that knows message 7 is answered by "thanks" and ranks nothing for message 8.
        let h = PairHits::score(&inv, &test, &incoming, &|_, id| {
            (id == 7).then(|| (0..2).map(|i| f64::from(u8::from(i == thanks))).collect())
        });
        assert_eq!(h.pairs, 3);
        assert_eq!(h.top1, vec![1.0, 0.0]);
        // Without scores nothing is ranked: a miss even at top 3.
        assert_eq!(h.top3, vec![1.0, 0.0]);
        let m = h.metrics();
        assert!((m.coverage - 2.0 / 3.0).abs() < 1e-12 && (m.top1 - 0.5).abs() < 1e-12);
        assert!(m.top1_ci.is_some());
        // Equal scores: the lower intent id comes first, as suggestions order them.
        let tie = PairHits::score(&inv, &test[..1], &incoming, &|_, _| Some(vec![0.5, 0.5]));
        assert_eq!(tie.top1, vec![f64::from(u8::from(thanks == 0))]);
        // A scorer against itself: the ratio is exactly 1.
        let r = h.ratio(&h);
        assert_eq!(r["top3"]["value"], 1.0);
        assert!(h.ratio(&PairHits { pairs: 3, top1: vec![0.0, 0.0], top3: vec![0.0, 0.0] })["top1"].is_null());
    }
}
