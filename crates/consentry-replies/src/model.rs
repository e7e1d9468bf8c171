//! The intent ranker: a softmax over intents on hashed n-gram features, trained by seeded SGD or
//! member-level DP-SGD.

use rand::RngCore;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::inventory::Inventory;
use crate::text::features_with;
use crate::{Pair, ReplyError};

/// Number of suggestions the product shows.
pub const DEFAULT_SUGGESTIONS: usize = 3;

/// Parameters beyond this magnitude mean training blew up (logits of ±1e4 are meaningless), not a usable model.
const MAX_ABS_PARAMETER: f32 = 1e4;

/// Under DP-SGD only the intents this many most-used (by the inventory's public member counts) are trained; the
/// rest keep their prior. Noise on dozens of rare intents' logits would otherwise lift one of them above the common
/// ones in most messages, and a rare intent is seldom the right suggestion anyway.
pub const DP_TRAINED_INTENTS: usize = 10;

/// Upper bound on `buckets × intents`, so a hyper-parameter typo cannot allocate gigabytes.
const MAX_PARAMETERS: u64 = 1 << 28;

/// Training hyper-parameters; everything that, with the rows and the seed, determines the model bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hyper {
    /// Hash buckets for message n-gram features (rows of the weight matrix).
    pub buckets: u32,
    /// Passes over the examples (plain SGD only; DP-SGD runs `DpSgd::steps` instead).
    pub epochs: u32,
    /// SGD step size (decays as 1/√(1+epoch) in plain SGD; constant in DP-SGD).
    pub learning_rate: f64,
    /// L2 weight decay per step on the feature weights.
    pub l2: f64,
}

impl Default for Hyper {
    fn default() -> Hyper {
        Hyper { buckets: 1 << 14, epochs: 8, learning_rate: 0.5, l2: 1e-5 }
    }
}

/// Member-level DP-SGD settings; the caller calibrates `sigma` with an accountant, training just applies it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DpSgd {
    /// Noise multiplier σ: Gaussian noise of standard deviation σ·C per coordinate per step.
    pub sigma: f64,
    /// Clipping bound C on each sampled member's summed gradient (L2 over all parameters).
    pub clip: f64,
    /// Poisson sampling rate q: each member is in a step's batch independently with probability q.
    pub sample_rate: f64,
    /// Number of noisy steps.
    pub steps: u32,
}

/// What a privacy accountant needs to know about a DP-SGD run; stored in the model file.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DpAccounting {
    /// N: members (repliers) with at least one training example; the sampling population.
    pub members: u64,
    /// Poisson sampling rate q.
    pub sample_rate: f64,
    /// Number of steps run.
    pub steps: u32,
    /// Noise multiplier σ.
    pub sigma: f64,
    /// Clipping bound C.
    pub clip: f64,
}

/// Provenance of a model: how it was trained, for lineage and reproducibility.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingInfo {
    /// Seed of every random draw (shuffles, member sampling, noise).
    pub seed: u64,
    /// Hyper-parameters used.
    pub hyper: Hyper,
    /// Training examples: pairs whose reply is an inventory response.
    pub examples: u64,
    /// Distinct repliers among the training examples.
    pub members: u64,
    /// DP-SGD parameters, if the model was trained with member-level DP.
    pub dp: Option<DpAccounting>,
}

/// One suggested reply: display text plus where it came from in the inventory.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    /// Text to show (an inventory response's display text).
    pub text: String,
    /// Index of the response in the inventory.
    pub response: u32,
    /// Intent of the response (suggestions never share one).
    pub intent: u32,
    /// Model probability of the intent.
    pub score: f32,
}

/// Held-out quality; accuracies are over covered pairs (replies that are inventory responses).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Metrics {
    /// Pairs evaluated.
    pub n: u64,
    /// Pairs whose reply normalises to an inventory response.
    pub covered: u64,
    /// covered / n: the share of real replies the inventory could have produced.
    pub coverage: f64,
    /// Share of covered pairs whose reply's intent is the first suggestion's.
    pub top1: f64,
    /// Share of covered pairs whose reply's intent is among the top 3 suggestions.
    pub top3: f64,
    /// Share of covered pairs whose exact response is the first suggestion.
    pub top1_response: f64,
    /// Share of covered pairs whose exact response is among the top 3 suggestions.
    pub top3_response: f64,
}

/// The trained ranker together with the inventory it suggests from.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplyModel {
    pub(crate) inventory: Inventory,
    pub(crate) buckets: u32,
    /// Row-major `[buckets, intents]`.
    pub(crate) weights: Vec<f32>,
    /// `[intents]`.
    pub(crate) bias: Vec<f32>,
    pub(crate) info: TrainingInfo,
}

struct Example {
    features: Vec<(u32, f32)>,
    intent: u32,
}

/// Pairs sorted canonically and grouped by replier, keeping those whose reply is an inventory response.
fn covered_by_member<'a>(pairs: &'a [Pair], inv: &Inventory) -> Vec<(u64, Vec<(&'a Pair, u32)>)> {
    let mut sorted: Vec<&Pair> = pairs.iter().collect();
    sorted
        .sort_by(|a, b| (a.replier, a.at_ms, &a.incoming, &a.reply).cmp(&(b.replier, b.at_ms, &b.incoming, &b.reply)));
    let mut out: Vec<(u64, Vec<(&Pair, u32)>)> = Vec::new();
    for p in sorted {
        let Some(r) = inv.lookup(&p.reply) else { continue };
        let Some(intent) = inv.response(r).map(|x| x.intent) else { continue };
        match out.last_mut() {
            Some((m, v)) if *m == p.replier => v.push((p, intent)),
            _ => out.push((p.replier, vec![(p, intent)])),
        }
    }
    out
}

/// The intent of the inventory response an incoming message normalises to, if it is one (a reply to a reply).
fn incoming_intent(inv: &Inventory, text: &str) -> Option<u32> {
    inv.lookup(text).and_then(|r| inv.response(r)).map(|r| r.intent)
}

/// N for the accountant: distinct repliers with at least one pair whose reply is an inventory response.
pub fn training_members(pairs: &[Pair], inv: &Inventory) -> u64 {
    covered_by_member(pairs, inv).len() as u64
}

/// An independent ChaCha20 stream per purpose, derived from the seed.
fn stream(seed: u64, purpose: &str) -> ChaCha20Rng {
    let mut material = purpose.as_bytes().to_vec();
    material.push(0);
    material.extend_from_slice(&seed.to_le_bytes());
    ChaCha20Rng::from_seed(blake3::derive_key("consentry-replies 2025 training stream v1", &material))
}

/// An independent ChaCha20 stream per purpose, keyed by a secret (DP sampling and noise must not be recomputable).
fn keyed_stream(key: &[u8; 32], seed: u64, purpose: &str) -> ChaCha20Rng {
    let mut h = blake3::Hasher::new_keyed(key);
    h.update(b"consentry-replies dp stream v1\0");
    h.update(purpose.as_bytes());
    h.update(&[0]);
    h.update(&seed.to_le_bytes());
    ChaCha20Rng::from_seed(*h.finalize().as_bytes())
}

/// Uniform in [0, 1) with 53 random bits.
fn uniform(rng: &mut ChaCha20Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Standard normal draws (Marsaglia's polar method), caching the second value of each pair.
struct Normal {
    spare: Option<f64>,
}

impl Normal {
    fn sample(&mut self, rng: &mut ChaCha20Rng) -> f64 {
        if let Some(s) = self.spare.take() {
            return s;
        }
        loop {
            let u = 2.0 * uniform(rng) - 1.0;
            let v = 2.0 * uniform(rng) - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                let f = (-2.0 * s.ln() / s).sqrt();
                self.spare = Some(v * f);
                return u * f;
            }
        }
    }
}

/// Fisher–Yates with a version-independent index draw (multiply-shift on a 64-bit word).
fn shuffle<T>(v: &mut [T], rng: &mut ChaCha20Rng) {
    for i in (1..v.len()).rev() {
        let j = ((u128::from(rng.next_u64()) * (i as u128 + 1)) >> 64) as usize;
        v.swap(i, j);
    }
}

fn check(name: &'static str, value: f64, ok: bool) -> Result<(), ReplyError> {
    if value.is_finite() && ok { Ok(()) } else { Err(ReplyError::InvalidParameter { name, value: value.to_string() }) }
}

fn validate(hyper: &Hyper, dp: Option<&DpSgd>, intents: usize) -> Result<(), ReplyError> {
    let buckets = f64::from(hyper.buckets);
    check("buckets", buckets, hyper.buckets >= 1 && u64::from(hyper.buckets) * intents as u64 <= MAX_PARAMETERS)?;
    check("learning_rate", hyper.learning_rate, hyper.learning_rate > 0.0)?;
    check("l2", hyper.l2, hyper.l2 >= 0.0 && hyper.l2 * hyper.learning_rate < 1.0)?;
    match dp {
        None => check("epochs", f64::from(hyper.epochs), hyper.epochs >= 1),
        Some(d) => {
            check("sigma", d.sigma, d.sigma >= 0.0)?;
            check("clip", d.clip, d.clip > 0.0)?;
            check("sample_rate", d.sample_rate, d.sample_rate > 0.0 && d.sample_rate <= 1.0)?;
            check("steps", f64::from(d.steps), d.steps >= 1)
        }
    }
}

impl ReplyModel {
    /// Trains the intent ranker on `pairs` (any order) with the given inventory; deterministic in (rows, hyper, seed).
    ///
    /// Pairs whose reply is not an inventory response are ignored. With `dp`, runs member-level
    /// DP-SGD instead of plain SGD: per step, Poisson-samples members, clips each sampled member's
    /// summed gradient to `clip`, adds N(0, σ²C²) per coordinate and divides by q·N.
    ///
    /// The DP-SGD streams (sampling, noise) derive from `seed` here, which is recorded in the model: anyone who
    /// knows it can recompute the noise, so this form suits tests and reproducible experiments; a deployed private
    /// model uses [`ReplyModel::train_private`], whose streams derive from a secret key.
    pub fn train(
        pairs: &[Pair],
        inv: Inventory,
        hyper: &Hyper,
        seed: u64,
        dp: Option<&DpSgd>,
    ) -> Result<ReplyModel, ReplyError> {
        ReplyModel::train_inner(pairs, inv, hyper, seed, dp, None)
    }

    /// Member-level DP-SGD whose Poisson sampling and noise come from ChaCha20 streams keyed by the secret
    /// `stream_key` (and `seed`): the noise of a Gaussian mechanism protects only while it cannot be recomputed.
    /// The same key, seed and rows give the same bytes.
    pub fn train_private(
        pairs: &[Pair],
        inv: Inventory,
        hyper: &Hyper,
        seed: u64,
        dp: &DpSgd,
        stream_key: &[u8; 32],
    ) -> Result<ReplyModel, ReplyError> {
        ReplyModel::train_inner(pairs, inv, hyper, seed, Some(dp), Some(stream_key))
    }

    fn train_inner(
        pairs: &[Pair],
        inv: Inventory,
        hyper: &Hyper,
        seed: u64,
        dp: Option<&DpSgd>,
        key: Option<&[u8; 32]>,
    ) -> Result<ReplyModel, ReplyError> {
        if pairs.is_empty() {
            return Err(ReplyError::EmptyInput);
        }
        validate(hyper, dp, inv.intents().len())?;
        let members: Vec<Vec<Example>> = covered_by_member(pairs, &inv)
            .into_iter()
            .map(|(_, v)| {
                v.into_iter()
                    .map(|(p, intent)| Example {
                        features: features_with(&p.incoming, hyper.buckets, incoming_intent(&inv, &p.incoming)),
                        intent,
                    })
                    .collect()
            })
            .collect();
        let examples: usize = members.iter().map(Vec::len).sum();
        if examples == 0 {
            return Err(ReplyError::NoTrainingExamples);
        }
        let mut model = ReplyModel::prior(inv, hyper.buckets);
        let mut dp_info = None;
        match dp {
            None => model.sgd(&members, hyper, seed),
            Some(d) => {
                let (sample_rng, noise_rng) = match key {
                    Some(k) => (keyed_stream(k, seed, "dp-sample"), keyed_stream(k, seed, "dp-noise")),
                    None => (stream(seed, "dp-sample"), stream(seed, "dp-noise")),
                };
                model.dp_sgd(&members, hyper, d, sample_rng, noise_rng)?;
                dp_info = Some(DpAccounting {
                    members: members.len() as u64,
                    sample_rate: d.sample_rate,
                    steps: d.steps,
                    sigma: d.sigma,
                    clip: d.clip,
                });
            }
        }
        if model.weights.iter().chain(&model.bias).any(|w| !w.is_finite() || w.abs() > MAX_ABS_PARAMETER) {
            return Err(ReplyError::Diverged);
        }
        model.info = TrainingInfo {
            seed,
            hyper: hyper.clone(),
            examples: examples as u64,
            members: members.len() as u64,
            dp: dp_info,
        };
        Ok(model)
    }

    /// The most-frequent-intent baseline: no features, intents ranked by their distinct-member counts.
    pub fn frequency_baseline(inv: Inventory) -> ReplyModel {
        ReplyModel::prior(inv, 1)
    }

    /// Zero feature weights and a bias at the log of the (add-one smoothed) intent member counts.
    fn prior(inv: Inventory, buckets: u32) -> ReplyModel {
        let counts = inv.intent_members();
        let total: f64 = counts.iter().map(|&c| c as f64 + 1.0).sum();
        let bias: Vec<f32> = counts.iter().map(|&c| ((c as f64 + 1.0) / total).ln() as f32).collect();
        let intents = bias.len();
        ReplyModel {
            inventory: inv,
            buckets,
            weights: vec![0.0; buckets as usize * intents],
            bias,
            info: TrainingInfo {
                seed: 0,
                hyper: Hyper { buckets, epochs: 0, ..Hyper::default() },
                examples: 0,
                members: 0,
                dp: None,
            },
        }
    }

    /// Softmax probabilities over intents for sparse features.
    fn probabilities(&self, feats: &[(u32, f32)]) -> Vec<f64> {
        let k = self.bias.len();
        let mut logits: Vec<f64> = self.bias.iter().map(|&b| f64::from(b)).collect();
        for &(j, x) in feats {
            let row = &self.weights[j as usize * k..(j as usize + 1) * k];
            for (l, &w) in logits.iter_mut().zip(row) {
                *l += f64::from(x) * f64::from(w);
            }
        }
        let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut sum = 0.0;
        for l in &mut logits {
            *l = (*l - max).exp();
            sum += *l;
        }
        for l in &mut logits {
            *l /= sum;
        }
        logits
    }

    /// Plain SGD over all examples, reshuffled each epoch from the seed.
    fn sgd(&mut self, members: &[Vec<Example>], hyper: &Hyper, seed: u64) {
        let k = self.bias.len();
        let mut order: Vec<(usize, usize)> =
            members.iter().enumerate().flat_map(|(m, ex)| (0..ex.len()).map(move |e| (m, e))).collect();
        let mut rng = stream(seed, "sgd-shuffle");
        for epoch in 0..hyper.epochs {
            shuffle(&mut order, &mut rng);
            let lr = hyper.learning_rate / (1.0 + f64::from(epoch)).sqrt();
            let decay = (1.0 - lr * hyper.l2) as f32;
            for &(m, e) in &order {
                let ex = &members[m][e];
                let mut g = self.probabilities(&ex.features);
                g[ex.intent as usize] -= 1.0;
                for &(j, x) in &ex.features {
                    let row = &mut self.weights[j as usize * k..(j as usize + 1) * k];
                    for (w, gc) in row.iter_mut().zip(&g) {
                        *w = *w * decay - (lr * f64::from(x) * gc) as f32;
                    }
                }
                for (b, gc) in self.bias.iter_mut().zip(&g) {
                    *b -= (lr * gc) as f32;
                }
            }
        }
    }

    /// Member-level DP-SGD: Poisson sampling, per-member clipping, Gaussian noise, division by q·N.
    fn dp_sgd(
        &mut self,
        members: &[Vec<Example>],
        hyper: &Hyper,
        dp: &DpSgd,
        mut sample_rng: ChaCha20Rng,
        mut noise_rng: ChaCha20Rng,
    ) -> Result<(), ReplyError> {
        let k = self.bias.len();
        let n_w = self.weights.len();
        let expected_batch = dp.sample_rate * members.len() as f64;
        // The intents trained (the rest keep their prior, get no update and need no noise), most used first.
        let counts = self.inventory.intent_members();
        let mut ranked: Vec<usize> = (0..k).collect();
        ranked.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));
        let mut trained = vec![false; k];
        for &i in ranked.iter().take(DP_TRAINED_INTENTS) {
            trained[i] = true;
        }
        let mut normal = Normal { spare: None };
        let noise_sd = dp.sigma * dp.clip;
        let lr = hyper.learning_rate;
        // Sum of clipped member gradients: weights then bias.
        let mut total = vec![0.0f64; n_w + k];
        // One member's gradient, with the rows it touched (in first-touch order).
        let mut member = vec![0.0f64; n_w + k];
        let mut touched: Vec<u32> = Vec::new();
        let mut seen = vec![false; self.buckets as usize];
        for _ in 0..dp.steps {
            total.iter_mut().for_each(|t| *t = 0.0);
            for ex_list in members {
                if uniform(&mut sample_rng) >= dp.sample_rate {
                    continue;
                }
                for ex in ex_list {
                    let mut g = self.probabilities(&ex.features);
                    g[ex.intent as usize] -= 1.0;
                    for &(j, x) in &ex.features {
                        if !seen[j as usize] {
                            seen[j as usize] = true;
                            touched.push(j);
                        }
                        let row = &mut member[j as usize * k..(j as usize + 1) * k];
                        for (m, gc) in row.iter_mut().zip(&g) {
                            *m += f64::from(x) * gc;
                        }
                    }
                    for (m, gc) in member[n_w..].iter_mut().zip(&g) {
                        *m += gc;
                    }
                }
                // The norm over the released (trained) coordinates only: the others are never updated.
                let sq_row =
                    |row: &[f64]| row.iter().zip(&trained).filter(|(_, t)| **t).map(|(x, _)| x * x).sum::<f64>();
                let mut sq: f64 = sq_row(&member[n_w..]);
                for &j in &touched {
                    sq += sq_row(&member[j as usize * k..(j as usize + 1) * k]);
                }
                let norm = sq.sqrt();
                let scale = if norm > dp.clip { dp.clip / norm } else { 1.0 };
                for &j in &touched {
                    let range = j as usize * k..(j as usize + 1) * k;
                    for (t, m) in total[range.clone()].iter_mut().zip(&mut member[range]) {
                        *t += *m * scale;
                        *m = 0.0;
                    }
                    seen[j as usize] = false;
                }
                touched.clear();
                for (t, m) in total[n_w..].iter_mut().zip(&mut member[n_w..]) {
                    *t += *m * scale;
                    *m = 0.0;
                }
            }
            let decay = 1.0 - lr * hyper.l2;
            for (i, t) in total.iter().enumerate() {
                if !trained[i % k] {
                    continue;
                }
                let noisy = (t + noise_sd * normal.sample(&mut noise_rng)) / expected_batch;
                let p = if i < n_w { &mut self.weights[i] } else { &mut self.bias[i - n_w] };
                let d = if i < n_w { decay } else { 1.0 };
                *p = (f64::from(*p) * d - lr * noisy) as f32;
            }
            if self.bias.iter().any(|b| !b.is_finite()) {
                return Err(ReplyError::Diverged);
            }
        }
        Ok(())
    }

    /// Intent probabilities for an incoming message, indexed by intent id.
    pub fn intent_scores(&self, text: &str) -> Vec<f64> {
        self.probabilities(&features_with(text, self.buckets, incoming_intent(&self.inventory, text)))
    }

    /// Up to `n` suggestions for an incoming message, best first, at most one per intent.
    ///
    /// Each suggested intent shows its most popular response.
    pub fn suggest(&self, text: &str, n: usize) -> Vec<Suggestion> {
        let probs = self.intent_scores(text);
        let mut order: Vec<usize> = (0..probs.len()).collect();
        order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
        order
            .into_iter()
            .take(n)
            .filter_map(|i| {
                let intent = self.inventory.intents().get(i)?;
                let r = *intent.responses.first()?;
                let resp = self.inventory.response(r)?;
                Some(Suggestion { text: resp.text.clone(), response: r, intent: intent.id, score: probs[i] as f32 })
            })
            .collect()
    }

    /// Top-1/top-3 accuracy (intent and exact response) and coverage on held-out pairs.
    pub fn evaluate(&self, pairs: &[Pair]) -> Metrics {
        let mut m = Metrics::default();
        let (mut t1, mut t3, mut r1, mut r3) = (0u64, 0u64, 0u64, 0u64);
        for p in pairs {
            m.n += 1;
            let Some(r) = self.inventory.lookup(&p.reply) else { continue };
            let Some(intent) = self.inventory.response(r).map(|x| x.intent) else { continue };
            m.covered += 1;
            let s = self.suggest(&p.incoming, DEFAULT_SUGGESTIONS);
            t1 += u64::from(s.first().is_some_and(|x| x.intent == intent));
            t3 += u64::from(s.iter().any(|x| x.intent == intent));
            r1 += u64::from(s.first().is_some_and(|x| x.response == r));
            r3 += u64::from(s.iter().any(|x| x.response == r));
        }
        let share = |x: u64, of: u64| if of == 0 { 0.0 } else { x as f64 / of as f64 };
        m.coverage = share(m.covered, m.n);
        m.top1 = share(t1, m.covered);
        m.top3 = share(t3, m.covered);
        m.top1_response = share(r1, m.covered);
        m.top3_response = share(r3, m.covered);
        m
    }

    /// The inventory this model suggests from.
    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    /// How the model was trained (seed, hyper-parameters, counts, DP accounting inputs).
    pub fn info(&self) -> &TrainingInfo {
        &self.info
    }

    /// Feature weights, row-major `[buckets, intents]`, for audits and tests of DP bounds.
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }

    /// Per-intent bias, for audits and tests of DP bounds.
    pub fn bias(&self) -> &[f32] {
        &self.bias
    }
}
