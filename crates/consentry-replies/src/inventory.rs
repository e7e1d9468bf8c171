//! The response inventory: k-anonymous responses grouped into intents.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::text::{clean_reply, has_placeholder, reply_key, response_key, tokens};
use crate::{Pair, ReplyError};

/// Default k: a response enters the inventory only if at least this many distinct members used it.
pub const DEFAULT_K: usize = 20;

/// Cosine similarity (IDF-weighted words and character trigrams) above which a response joins an intent.
pub const INTENT_SIMILARITY: f64 = 0.45;

/// Weight of character trigrams relative to whole words in the intent similarity.
const TRIGRAM_WEIGHT: f64 = 0.35;

/// One suggestible response; `text` is what a member sees, `key` what counting uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// Display text: the surface form used by the most distinct members (ties: most uses, then smallest).
    pub text: String,
    /// Normalised key (lower case, single spaces, no trailing punctuation) the k-anonymity count is over.
    pub key: String,
    /// Number of distinct members (repliers) who used this response; always ≥ the inventory's k.
    pub members: u64,
    /// Index of the intent this response belongs to.
    pub intent: u32,
}

/// A group of interchangeable responses, so suggestions never offer two ways of saying the same thing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// Index of this intent in [`Inventory::intents`].
    pub id: u32,
    /// Human-readable label: the key of the intent's most popular response.
    pub label: String,
    /// Indices into [`Inventory::responses`], most popular first.
    pub responses: Vec<u32>,
}

/// The k-anonymous response inventory grouped into intents; the only text a model may ever suggest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    k: u64,
    responses: Vec<Response>,
    intents: Vec<Intent>,
    #[serde(skip)]
    index: BTreeMap<String, u32>,
}

/// Per-key tallies while building.
#[derive(Default)]
struct Tally {
    members: BTreeSet<u64>,
    /// Surface form → (distinct members, uses).
    surfaces: BTreeMap<String, (BTreeSet<u64>, u64)>,
}

impl Inventory {
    /// Builds the inventory from redacted pairs, keeping responses used by at least `k` distinct repliers.
    ///
    /// Input order does not matter. Replies are cleaned (vocatives naming a person stripped, sentences
    /// with other placeholders dropped) and normalised before counting; a member who uses a response
    /// many times counts once. Responses are then grouped into intents (see [`INTENT_SIMILARITY`]).
    pub fn build(pairs: &[Pair], k: usize) -> Result<Inventory, ReplyError> {
        if pairs.is_empty() {
            return Err(ReplyError::EmptyInput);
        }
        if k == 0 {
            return Err(ReplyError::InvalidK);
        }
        let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
        for p in pairs {
            let Some(clean) = clean_reply(&p.reply) else { continue };
            let Some(key) = response_key(&clean) else { continue };
            let t = tallies.entry(key).or_default();
            t.members.insert(p.replier);
            let s = t.surfaces.entry(clean).or_default();
            s.0.insert(p.replier);
            s.1 += 1;
        }
        let candidates = tallies.len();
        let mut responses: Vec<Response> = tallies
            .into_iter()
            .filter(|(_, t)| t.members.len() >= k)
            .filter_map(|(key, t)| {
                let text = t
                    .surfaces
                    .iter()
                    .max_by(|a, b| (a.1.0.len(), a.1.1).cmp(&(b.1.0.len(), b.1.1)).then_with(|| b.0.cmp(a.0)))
                    .map(|(s, _)| s.clone())?;
                Some(Response { text, key, members: t.members.len() as u64, intent: 0 })
            })
            .collect();
        if responses.is_empty() {
            return Err(ReplyError::EmptyInventory { k, candidates });
        }
        responses.sort_by(|a, b| b.members.cmp(&a.members).then_with(|| a.key.cmp(&b.key)));
        let intents = cluster(&mut responses);
        Inventory::assemble(k as u64, responses, intents)
    }

    /// Checks invariants and builds the key index (used after building and after decoding).
    pub(crate) fn assemble(k: u64, responses: Vec<Response>, intents: Vec<Intent>) -> Result<Inventory, ReplyError> {
        let bad = |m: String| Err(ReplyError::InvalidModel(m));
        if k == 0 {
            return bad("inventory k is 0".into());
        }
        if responses.is_empty() || intents.is_empty() {
            return bad("inventory has no responses or no intents".into());
        }
        if responses.len() > u32::MAX as usize {
            return bad("too many responses".into());
        }
        let mut index = BTreeMap::new();
        for (i, r) in responses.iter().enumerate() {
            if r.members < k {
                return bad(format!("response {i} has {} members, fewer than k = {k}", r.members));
            }
            if has_placeholder(&r.text) || reply_key(&r.text).as_ref() != Some(&r.key) {
                return bad(format!("response {i} text {:?} does not normalise to its key", r.text));
            }
            if index.insert(r.key.clone(), i as u32).is_some() {
                return bad(format!("duplicate response key {:?}", r.key));
            }
            let Some(intent) = intents.get(r.intent as usize) else {
                return bad(format!("response {i} names intent {} of {}", r.intent, intents.len()));
            };
            if !intent.responses.contains(&(i as u32)) {
                return bad(format!("intent {} does not list response {i}", r.intent));
            }
        }
        let mut listed = 0usize;
        for (i, intent) in intents.iter().enumerate() {
            if intent.id as usize != i || intent.responses.is_empty() {
                return bad(format!("intent {i} has id {} and {} responses", intent.id, intent.responses.len()));
            }
            for &r in &intent.responses {
                if responses.get(r as usize).map(|x| x.intent) != Some(i as u32) {
                    return bad(format!("intent {i} lists response {r} of another intent"));
                }
            }
            listed += intent.responses.len();
        }
        if listed != responses.len() {
            return bad("intents list a response twice".into());
        }
        Ok(Inventory { k, responses, intents, index })
    }

    /// The k this inventory was built with (minimum distinct members per response).
    pub fn k(&self) -> u64 {
        self.k
    }

    /// All responses, most popular first.
    pub fn responses(&self) -> &[Response] {
        &self.responses
    }

    /// All intents, in order of their most popular response.
    pub fn intents(&self) -> &[Intent] {
        &self.intents
    }

    /// Index of the inventory response a raw (redacted) reply normalises to, if any.
    pub fn lookup(&self, reply: &str) -> Option<u32> {
        self.index.get(&reply_key(reply)?).copied()
    }

    /// The response at `index`, if it exists.
    pub fn response(&self, index: u32) -> Option<&Response> {
        self.responses.get(index as usize)
    }

    /// Distinct members behind each intent (sum over its responses), the prior the models start from.
    pub(crate) fn intent_members(&self) -> Vec<u64> {
        self.intents
            .iter()
            .map(|i| i.responses.iter().filter_map(|&r| self.response(r)).map(|r| r.members).sum())
            .collect()
    }
}

/// Sparse text vector of a response key: IDF-weighted words and (down-weighted) character trigrams.
fn raw_terms(key: &str) -> BTreeMap<String, f64> {
    let mut terms = BTreeMap::new();
    for t in tokens(key) {
        *terms.entry(format!("w\0{t}")).or_insert(0.0) += 1.0;
        let chars: Vec<char> = format!("#{t}#").chars().collect();
        let n = chars.len().saturating_sub(2).max(1) as f64;
        for w in chars.windows(3) {
            let g: String = w.iter().collect();
            *terms.entry(format!("c\0{g}")).or_insert(0.0) += TRIGRAM_WEIGHT / n.sqrt();
        }
    }
    terms
}

fn unit(v: BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    let n = v.values().map(|x| x * x).sum::<f64>().sqrt();
    if n > 0.0 { v.into_iter().map(|(k, x)| (k, x / n)).collect() } else { v }
}

fn dot(a: &BTreeMap<String, f64>, b: &BTreeMap<String, f64>) -> f64 {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    small.iter().filter_map(|(k, x)| large.get(k).map(|y| x * y)).sum()
}

/// Groups responses (sorted most popular first) into intents by leader–centroid clustering.
///
/// Deterministic and single pass: each response, in popularity order, joins the intent whose
/// centroid is most similar if the cosine reaches [`INTENT_SIMILARITY`] (ties: lower intent id),
/// else founds a new intent. Similarity is over IDF-weighted words and character trigrams of the
/// normalised text, so "thanks", "thank you" and "thanks a lot" group while "thanks for reaching
/// out" is kept apart by its rarer words.
fn cluster(responses: &mut [Response]) -> Vec<Intent> {
    let raws: Vec<BTreeMap<String, f64>> = responses.iter().map(|r| raw_terms(&r.key)).collect();
    let mut df: BTreeMap<&str, f64> = BTreeMap::new();
    for v in &raws {
        for k in v.keys() {
            *df.entry(k.as_str()).or_insert(0.0) += 1.0;
        }
    }
    let n = raws.len() as f64;
    let vecs: Vec<BTreeMap<String, f64>> = raws
        .iter()
        .map(|v| {
            unit(
                v.iter()
                    .map(|(k, x)| {
                        (k.clone(), x * ((1.0 + n) / (1.0 + df.get(k.as_str()).copied().unwrap_or(0.0))).ln().max(0.05))
                    })
                    .collect(),
            )
        })
        .collect();
    let mut intents: Vec<Intent> = Vec::new();
    let mut centroids: Vec<BTreeMap<String, f64>> = Vec::new();
    for (i, v) in vecs.iter().enumerate() {
        let mut best: Option<(usize, f64)> = None;
        for (c, cen) in centroids.iter().enumerate() {
            let norm = cen.values().map(|x| x * x).sum::<f64>().sqrt();
            let sim = if norm > 0.0 { dot(v, cen) / norm } else { 0.0 };
            if best.is_none_or(|(_, s)| sim > s) {
                best = Some((c, sim));
            }
        }
        let target = match best {
            Some((c, s)) if s >= INTENT_SIMILARITY => c,
            _ => {
                intents.push(Intent {
                    id: intents.len() as u32,
                    label: responses[i].key.clone(),
                    responses: Vec::new(),
                });
                centroids.push(BTreeMap::new());
                intents.len() - 1
            }
        };
        intents[target].responses.push(i as u32);
        responses[i].intent = target as u32;
        for (k, x) in v {
            *centroids[target].entry(k.clone()).or_insert(0.0) += x;
        }
    }
    intents
}
