//! Differentially private training: what a DP model releases, how its noise is drawn, and the claim it records.
//!
//! **Job recommendations** follow the joint-DP split of Jain, Thakkar and Thakurta, "Differentially Private Matrix
//! Completion Revisited" (ICML 2018): the item side of the factorisation is released, computed from member-level
//! clipped statistics plus Gaussian noise; a member's own vector is solved locally from their own rows and the
//! released factors (a fold-in) and is used only to serve that member. Like Chien et al., "Private Alternating Least
//! Squares" (ICML 2021), the noise goes on sufficient statistics with member-level clipping rather than on
//! gradients. The released statistic is the covariance of members' token profiles — "Analyze Gauss" (Dwork,
//! Talwar, Thakurta, Zhang, STOC 2014): each member's vector `s` over the public job-token vocabulary (their
//! profile tokens plus the tokens of the jobs they touched, by interaction weight) is clipped to `‖s‖² ≤ C`, so
//! `s sᵀ` has Frobenius norm at most C, and one Gaussian draw N(0, (σC)²) goes on every upper-triangle entry of
//! `Σ s sᵀ`. One Gaussian mechanism with sampling rate q = 1 per shard; shards hold disjoint members, so the model's
//! bound is one shard's (parallel composition). Everything after the release — the top eigenvectors (the token
//! factors), job factors as token averages, members' fold-ins — is post-processing. A DP shard releases no item
//! counts and no vocabulary beyond the catalogue's tokens, and indexes only catalogue jobs. A member's score also
//! adds their own token match (`RecHyper::dp_own_tokens`: their profile and their jobs' tokens against each job's):
//! it reads only that member's rows and the catalogue, so joint DP gets it for free — the content/profile path.
//!
//! **Reply suggestions** run member-level DP-SGD in `consentry-replies` (Poisson sampling at rate q, per-member
//! clipping to C, noise σC per coordinate per step), one run per shard over the shard's repliers.
//!
//! **Noise is secret.** A Gaussian mechanism protects nobody if its noise can be recomputed, so DP draws (noise,
//! and the members Poisson sampling picks) come from a ChaCha20 stream keyed by a 32-byte noise key kept in a file
//! beside the data, never in the model; `model.json` records only the key's commitment and its path. The key,
//! the seed and the shard index fix the draws, so retraining a shard without a member (unlearning) gives the bytes
//! training from scratch without them would — and two versions of one shard share their noise, so keeping a
//! superseded version next to its successor reveals the removed members' clipped contribution: delete it.

use std::path::{Path, PathBuf};

use consentry_dp::{Accountant, Conversion, ModelLoss, calibrate_sigma, default_delta};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

use crate::LearnError;
use crate::ials::{self, Csr};
use crate::recs::{RecHyper, ShardData, ShardModel};

/// Differential-privacy settings of a training run; σ and δ are resolved at training and stored, so unlearning
/// retrains with the very same noise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DpOptions {
    /// Target ε of the whole model.
    pub epsilon: f64,
    /// δ; `None` picks `consentry_dp::default_delta` of the dataset's member count at training.
    pub delta: Option<f64>,
    /// C: the bound on one member's contribution to each released statistic (L2 norm; Frobenius for the
    /// recommenders' covariance, where it bounds `‖s‖²`).
    pub clip: f64,
    /// RDP → (ε, δ) conversion used to calibrate σ and to state ε.
    pub conversion: Conversion,
    /// Replies: DP-SGD steps.
    pub steps: u32,
    /// Replies: Poisson sampling rate q of members per step.
    pub sample_rate: f64,
    /// The calibrated noise multiplier (set by training).
    #[serde(default)]
    pub sigma: Option<f64>,
    /// The secret noise key's file (read at training and unlearning; never copied into the model).
    pub key_file: PathBuf,
    /// Commitment to the key (set by training), so unlearning refuses a different key.
    #[serde(default)]
    pub key_commitment: Option<String>,
}

impl DpOptions {
    /// Defaults for a target ε with the key in `key_file`: δ from the member count, C = 1, improved conversion,
    /// replies with q = 0.5 over 50 steps (the best of a small grid on the demo network; see ARCHITECTURE.md).
    pub fn new(epsilon: f64, key_file: PathBuf) -> DpOptions {
        DpOptions {
            epsilon,
            delta: None,
            clip: 1.0,
            conversion: Conversion::Improved,
            steps: 50,
            sample_rate: 0.5,
            sigma: None,
            key_file,
            key_commitment: None,
        }
    }

    /// Refuses values that would give a meaningless or broken claim.
    pub fn check(&self) -> Result<(), LearnError> {
        let bad = |m: String| Err(LearnError::Hyper(m));
        if !(self.epsilon > 0.0 && self.epsilon.is_finite()) {
            return bad(format!("DP ε = {} must be a finite number > 0 (omit DP for no bound)", self.epsilon));
        }
        if let Some(d) = self.delta
            && !(d > 0.0 && d < 1.0)
        {
            return bad(format!("DP δ = {d} must be in (0, 1)"));
        }
        if !(self.clip > 0.0 && self.clip.is_finite()) {
            return bad(format!("clip C = {} must be a finite number > 0", self.clip));
        }
        if !(self.sample_rate > 0.0 && self.sample_rate <= 1.0) {
            return bad(format!("DP sample rate q = {} must be in (0, 1]", self.sample_rate));
        }
        if self.steps == 0 {
            return bad("DP steps must be at least 1".into());
        }
        Ok(())
    }
}

/// The 32-byte secret that keys every DP draw.
#[derive(Clone)]
pub struct NoiseKey([u8; 32]);

impl std::fmt::Debug for NoiseKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NoiseKey({}…)", &self.commitment()[..8])
    }
}

impl NoiseKey {
    /// A key from bytes (tests, or a key held elsewhere).
    pub fn from_bytes(b: [u8; 32]) -> NoiseKey {
        NoiseKey(b)
    }

    /// Reads a key file (64 hex digits), creating it from OS randomness (mode 0600) when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<NoiseKey, LearnError> {
        if path.exists() {
            return NoiseKey::load(path);
        }
        let mut b = [0u8; 32];
        // The operating system's randomness: a secret must not come from any seed the model records.
        getrandom::fill(&mut b).map_err(|e| LearnError::Internal(format!("no operating-system randomness: {e}")))?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| LearnError::io(parent, e))?;
        }
        let mut f = consentry_files::create_secret(path).map_err(|e| LearnError::io(path, e))?;
        std::io::Write::write_all(&mut f, format!("{}\n", hex::encode(b)).as_bytes())
            .map_err(|e| LearnError::io(path, e))?;
        f.sync_all().map_err(|e| LearnError::io(path, e))?;
        Ok(NoiseKey(b))
    }

    /// Reads an existing key file.
    pub fn load(path: &Path) -> Result<NoiseKey, LearnError> {
        let text = std::fs::read_to_string(path).map_err(|e| LearnError::io(path, e))?;
        let b: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| LearnError::Hyper(format!("{}: a noise key file holds 64 hex digits", path.display())))?;
        Ok(NoiseKey(b))
    }

    /// The public commitment recorded in `model.json` (a keyed BLAKE3 of the key, not the key).
    pub fn commitment(&self) -> String {
        blake3::keyed_hash(&blake3::derive_key("consentry-learn dp noise key commitment v1", &self.0), b"")
            .to_hex()
            .to_string()
    }

    /// The secret 32-byte seed of one purpose's stream for one shard of one run.
    pub fn stream_seed(&self, purpose: &str, seed: u64, shard: u32) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(&blake3::derive_key("consentry-learn dp streams v1", &self.0));
        h.update(purpose.as_bytes());
        h.update(&[0]);
        h.update(&seed.to_le_bytes());
        h.update(&shard.to_le_bytes());
        *h.finalize().as_bytes()
    }
}

/// The mechanism a model kind runs, before σ is known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// Sampling rate.
    pub q: f64,
    /// Steps.
    pub steps: u64,
}

/// Resolves δ and calibrates σ for `plan` over a training set of `members`, filling `opts.sigma` / `opts.delta`.
pub fn resolve(opts: &mut DpOptions, plan: Plan, members: u64) -> Result<(), LearnError> {
    opts.check()?;
    let delta = opts.delta.unwrap_or_else(|| default_delta(Some(members)));
    let sigma = calibrate_sigma(opts.epsilon, delta, plan.q, plan.steps, opts.conversion)
        .map_err(|e| LearnError::Hyper(format!("DP calibration: {e}")))?;
    opts.delta = Some(delta);
    opts.sigma = Some(sigma);
    Ok(())
}

/// The privacy claim in `model.json`'s `dp`: `{"bound": "none"}` for a model without a formal bound, or the full
/// DP record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "bound", rename_all = "lowercase")]
pub enum PrivacyClaim {
    /// Trained without differential privacy: no formal bound on what it reveals about a member.
    None,
    /// Trained with differential privacy.
    Dp(Box<DpClaim>),
}

impl PrivacyClaim {
    /// The claim a `model.json` `dp` record makes; no record (models from before records existed) is no bound.
    pub fn of_record(dp: Option<&serde_json::Value>) -> Result<PrivacyClaim, serde_json::Error> {
        match dp {
            None => Ok(PrivacyClaim::None),
            Some(v) => serde_json::from_value(v.clone()),
        }
    }

    /// What the claim costs each member of the training set, as model `model` of a composition: the re-derived
    /// (ε, δ) and RDP curve of a DP claim ([`DpClaim::verify`]); `None` for a model without a formal bound.
    pub fn loss(&self, model: &str) -> Result<Option<ModelLoss>, LearnError> {
        let PrivacyClaim::Dp(c) = self else { return Ok(None) };
        let mut loss = c.verify()?;
        loss.model = model.into();
        Ok(Some(loss))
    }
}

/// What a DP model proves, with everything needed to re-check it with `consentry dp epsilon`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DpClaim {
    /// The kind of guarantee.
    pub guarantee: String,
    /// Whose data it protects (the neighbouring relation).
    pub unit: String,
    /// ε at `delta`, from the accountant.
    pub epsilon: f64,
    /// δ.
    pub delta: f64,
    /// The ε training was calibrated for.
    pub target_epsilon: f64,
    /// The RDP → (ε, δ) conversion.
    pub conversion: Conversion,
    /// Noise multiplier σ.
    pub sigma: f64,
    /// Poisson sampling rate q (1 = every member, every step).
    pub q: f64,
    /// Steps of the mechanism.
    pub steps: u64,
    /// Clipping bound C.
    pub clip: f64,
    /// What the mechanism is, in words.
    pub mechanism: String,
    /// The accountant's name and order grid.
    pub accountant_name: String,
    /// The accountant: orders, RDP curve, mechanisms.
    pub accountant: Accountant,
    /// What in the shard files is released (noised or post-processing of noised values).
    pub released: Vec<String>,
    /// What is per member: used only to serve that member (joint DP), never to serve anyone else.
    pub per_member: Vec<String>,
    /// What the bound does not cover.
    pub not_covered: Vec<String>,
    /// Commitment to the secret noise key.
    pub noise_key_commitment: String,
    /// The command that re-derives ε.
    pub check: String,
}

const ACCOUNTANT_NAME: &str =
    "RDP of the Poisson-subsampled Gaussian (consentry-dp, port of dp_accounting RdpAccountant, default orders)";

/// Builds the claim of a trained model from its resolved options.
pub fn claim(opts: &DpOptions, plan: Plan, replies: bool) -> Result<DpClaim, LearnError> {
    let (Some(sigma), Some(delta)) = (opts.sigma, opts.delta) else {
        return Err(LearnError::Internal("DP options were not resolved before training".into()));
    };
    let acc = Accountant::sampled_gaussian(plan.q, sigma, plan.steps)
        .map_err(|e| LearnError::Internal(format!("accountant: {e}")))?;
    let g = acc.epsilon(delta, opts.conversion).map_err(|e| LearnError::Internal(format!("accountant: {e}")))?;
    let check = format!(
        "consentry dp epsilon --q {} --sigma {sigma:e} --steps {} --delta {delta:e} --conversion {}",
        plan.q, plan.steps, opts.conversion
    );
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let (guarantee, unit, mechanism, released, per_member, not_covered) = if replies {
        (
            "(ε, δ)-DP of the intent ranker's weights".to_string(),
            "a replier: adding or removing every training pair whose reply a member wrote".to_string(),
            "member-level DP-SGD: Poisson sampling at rate q, each sampled member's summed gradient clipped to L2 \
             norm C, N(0, (σC)²) per coordinate per step, divided by qN; one run per shard over its repliers \
             (disjoint, so the model's bound is one run's)"
                .to_string(),
            s(&["weights", "bias"]),
            s(&[]),
            s(&[
                "the response inventory (k-anonymous, not differentially private)",
                "authors of the incoming messages (their text is a feature of someone else's example)",
                "each shard's replier count N, used as the public normaliser qN (as in Abadi et al. 2016)",
                "metrics and row counts in model.json (computed on held-out rows)",
                "the shard member bitmaps (who trained, by design of lineage)",
            ]),
        )
    } else {
        (
            "joint (ε, δ)-DP: everything served to other members is (ε, δ)-DP in one member's data".to_string(),
            "a member: adding or removing all of their activity and profile rows".to_string(),
            "Gaussian mechanism (q = 1, one step per shard) on the covariance Σ s sᵀ of members' job-token \
             profiles, each clipped to ‖s‖² ≤ C; token and job factors are its top eigenvectors, members are \
             folded in locally (Jain, Thakkar, Thakurta, ICML 2018; Dwork et al., STOC 2014)"
                .to_string(),
            s(&["item_factors", "token_factors", "content", "item_counts (all zero)", "vocab (catalogue tokens)"]),
            s(&["user_factors", "user_tokens", "seen"]),
            s(&[
                "metrics and row counts in model.json (computed on held-out rows)",
                "the shard member bitmaps (who trained, by design of lineage)",
                "a superseded version of a shard kept beside its unlearned successor (they share noise)",
            ]),
        )
    };
    Ok(DpClaim {
        guarantee,
        unit,
        epsilon: g.epsilon,
        delta,
        target_epsilon: opts.epsilon,
        conversion: opts.conversion,
        sigma,
        q: plan.q,
        steps: plan.steps,
        clip: opts.clip,
        mechanism,
        accountant_name: ACCOUNTANT_NAME.into(),
        accountant: acc,
        released,
        per_member,
        not_covered,
        noise_key_commitment: opts.key_commitment.clone().unwrap_or_default(),
        check,
    })
}

impl DpClaim {
    /// Re-derives ε from the recorded mechanism and refuses a record that claims more privacy than it proves.
    pub fn verify(&self) -> Result<ModelLoss, LearnError> {
        let bad = |m: String| LearnError::Corrupt {
            file: crate::model::MODEL_FILE.into(),
            message: format!("the DP record does not hold: {m}"),
        };
        let fresh = Accountant::sampled_gaussian(self.q, self.sigma, self.steps).map_err(|e| bad(e.to_string()))?;
        if fresh.orders() != self.accountant.orders() || !self.accountant.is_consistent() {
            return Err(bad("the stored accountant does not match its mechanisms".into()));
        }
        if self.accountant.mechanisms() != fresh.mechanisms() {
            return Err(bad("the stored accountant ran a different mechanism than the record states".into()));
        }
        let loss = ModelLoss::from_accountant(String::new(), fresh, self.delta, self.conversion)
            .map_err(|e| bad(e.to_string()))?;
        if self.epsilon < loss.epsilon * (1.0 - 1e-9) {
            return Err(bad(format!("it claims ε = {} but its mechanism gives ε = {}", self.epsilon, loss.epsilon)));
        }
        Ok(loss)
    }
}

/// The noise key of a DP run, checked against the commitment the options carry (set after the first training).
pub fn key_for(opts: &DpOptions) -> Result<NoiseKey, LearnError> {
    let key = match &opts.key_commitment {
        None => NoiseKey::load_or_create(&opts.key_file)?,
        Some(_) => NoiseKey::load(&opts.key_file)?,
    };
    if let Some(c) = &opts.key_commitment
        && *c != key.commitment()
    {
        return Err(LearnError::Hyper(format!(
            "{} is not the noise key this model was trained with (commitment differs); exact retraining needs \
             the original key",
            opts.key_file.display()
        )));
    }
    Ok(key)
}

/// The plan of a job-recommendation DP run: one Gaussian release per shard, every member.
pub const RECS_PLAN: Plan = Plan { q: 1.0, steps: 1 };

/// A shard's public view: catalogue items (those with tokens) and the catalogue's token vocabulary; members' rows
/// re-indexed onto it, anything outside it dropped.
struct PublicView {
    items: Vec<u64>,
    vocab: Vec<String>,
    train: Csr,
    user_tokens: Csr,
    item_tokens: Csr,
}

fn public_view(d: &ShardData) -> PublicView {
    let mut used = vec![false; d.vocab.len()];
    for &v in &d.item_tokens.idx {
        used[v as usize] = true;
    }
    let mut vmap = vec![None; d.vocab.len()];
    let mut vocab = Vec::new();
    for (i, u) in used.iter().enumerate() {
        if *u {
            vmap[i] = Some(vocab.len() as u32);
            vocab.push(d.vocab[i].clone());
        }
    }
    let mut imap = vec![None; d.items.len()];
    let mut items = Vec::new();
    let mut it = Vec::new();
    for (j, slot) in imap.iter_mut().enumerate() {
        let (cs, ws) = d.item_tokens.row(j);
        if cs.is_empty() {
            continue;
        }
        let nj = items.len() as u32;
        *slot = Some(nj);
        items.push(d.items[j]);
        for (&c, &w) in cs.iter().zip(ws) {
            if let Some(v) = vmap[c as usize] {
                it.push((nj, v, w));
            }
        }
    }
    let (mut tr, mut ut) = (Vec::new(), Vec::new());
    for u in 0..d.members.len() {
        let (cs, ws) = d.train.row(u);
        for (&c, &w) in cs.iter().zip(ws) {
            if let Some(j) = imap[c as usize] {
                tr.push((u as u32, j, w));
            }
        }
        for &c in d.user_tokens.row(u).0 {
            if let Some(v) = vmap[c as usize] {
                ut.push((u as u32, v, 1.0));
            }
        }
    }
    PublicView {
        item_tokens: Csr::from_triplets(items.len(), it),
        items,
        vocab,
        train: Csr::from_triplets(d.members.len(), tr),
        user_tokens: Csr::from_triplets(d.members.len(), ut),
    }
}

/// Member `u`'s token profile, sparse and sorted: their profile tokens at `token_weight` plus the tokens of every
/// job they touched at the interaction's weight, clipped to `‖s‖² ≤ clip`.
fn member_profile(v: &PublicView, u: usize, token_weight: f32, clip: f64) -> Vec<(u32, f64)> {
    let mut s: std::collections::BTreeMap<u32, f64> = std::collections::BTreeMap::new();
    let (cs, ws) = v.train.row(u);
    for (&j, &w) in cs.iter().zip(ws) {
        let (ts, tw) = v.item_tokens.row(j as usize);
        for (&t, &x) in ts.iter().zip(tw) {
            *s.entry(t).or_default() += f64::from(w) * f64::from(x);
        }
    }
    for &t in v.user_tokens.row(u).0 {
        *s.entry(t).or_default() += f64::from(token_weight);
    }
    let sq: f64 = s.values().map(|x| x * x).sum();
    let scale = if sq > clip { (clip / sq).sqrt() } else { 1.0 };
    s.into_iter().map(|(t, x)| (t, x * scale)).collect()
}

/// The released statistic of one shard before noise: the upper triangle (row-major, diagonal included) of
/// `Σ_u s_u s_uᵀ` over the shard's members, each profile clipped to `‖s‖² ≤ clip`, and the matrix's size n.
pub fn covariance(d: &ShardData, h: &RecHyper, clip: f64) -> (Vec<f64>, usize) {
    covariance_of(&public_view(d), h, clip)
}

/// The released statistic of one shard: [`covariance`] plus N(0, (σC)²) on every upper-triangle entry, drawn in
/// index order from the shard's secret stream.
pub fn noisy_covariance(d: &ShardData, h: &RecHyper, n: &ShardNoise) -> Vec<f64> {
    noisy_covariance_of(&public_view(d), h, n)
}

fn noisy_covariance_of(v: &PublicView, h: &RecHyper, n: &ShardNoise) -> Vec<f64> {
    let (mut a, _) = covariance_of(v, h, n.clip);
    let mut rng = ChaCha20Rng::from_seed(n.stream);
    consentry_dp::add_noise(&mut a, n.sigma * n.clip, &mut rng);
    a
}

fn covariance_of(v: &PublicView, h: &RecHyper, clip: f64) -> (Vec<f64>, usize) {
    let n = v.vocab.len();
    let mut a = vec![0f64; n * (n + 1) / 2];
    for u in 0..v.train.rows() {
        let s = member_profile(v, u, h.token_weight, clip);
        for (i, &(ti, xi)) in s.iter().enumerate() {
            for &(tj, xj) in &s[i..] {
                a[tri(ti as usize, tj as usize, n)] += xi * xj;
            }
        }
    }
    (a, n)
}

/// Index of (i, j), i ≤ j, in a row-major upper triangle of an n × n matrix.
fn tri(i: usize, j: usize, n: usize) -> usize {
    i * n - i * (i + 1) / 2 + j
}

/// Eigen-decomposition of a symmetric n × n matrix (row-major, f64) by cyclic Jacobi rotations: eigenvalues
/// descending, eigenvectors as the columns of the returned row-major matrix. Deterministic (a fixed sweep order).
pub fn symmetric_eigen(mut a: Vec<f64>, n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0f64; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let total: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    for _sweep in 0..60 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .fold(0.0, |s, (i, j)| s + a[i * n + j] * a[i * n + j]);
        if off.sqrt() <= 1e-13 * total.max(f64::MIN_POSITIVE) {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() <= 1e-300 {
                    continue;
                }
                let (app, aqq) = (a[p * n + p], a[q * n + q]);
                let theta = (aqq - app) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&x, &y| a[y * n + y].total_cmp(&a[x * n + x]).then(x.cmp(&y)));
    let vals: Vec<f64> = order.iter().map(|&i| a[i * n + i]).collect();
    let mut vecs = vec![0f64; n * n];
    for (c, &i) in order.iter().enumerate() {
        for r in 0..n {
            vecs[r * n + c] = v[r * n + i];
        }
    }
    (vals, vecs)
}

/// Largest catalogue vocabulary the DP recommender decomposes (cubic cost: ~10 s at this size).
pub const MAX_DP_VOCAB: usize = 2048;

/// σ and C of a DP shard, and the shard's secret stream seed.
#[derive(Debug, Clone, Copy)]
pub struct ShardNoise {
    /// Noise multiplier.
    pub sigma: f64,
    /// Clipping bound C on `‖s‖²`.
    pub clip: f64,
    /// The shard's secret 32-byte stream seed ([`NoiseKey::stream_seed`]).
    pub stream: [u8; 32],
}

impl ShardNoise {
    /// The noise of job-recommendation shard `shard` of a run with `seed`: σ, C and the shard's secret stream.
    pub fn new(key: &NoiseKey, sigma: f64, clip: f64, seed: u64, shard: u32) -> ShardNoise {
        ShardNoise { sigma, clip, stream: key.stream_seed("recs covariance noise", seed, shard) }
    }
}

/// Trains one job-recommendation shard with joint DP (see the module docs); the file depends only on the shard's
/// rows, `h`, and the secret stream.
pub fn train_rec_shard(d: &ShardData, h: &RecHyper, n: &ShardNoise, threads: usize) -> Result<ShardModel, LearnError> {
    let v = public_view(d);
    let nv = v.vocab.len();
    if nv > MAX_DP_VOCAB {
        return Err(LearnError::Hyper(format!(
            "{nv} catalogue tokens: the DP recommender's dense eigen-decomposition handles at most {MAX_DP_VOCAB}"
        )));
    }
    let a = noisy_covariance_of(&v, h, n);
    let mut full = vec![0f64; nv * nv];
    for i in 0..nv {
        for j in i..nv {
            let x = a[tri(i, j, nv)];
            full[i * nv + j] = x;
            full[j * nv + i] = x;
        }
    }
    let (vals, vecs) = symmetric_eigen(full, nv);
    // Directions below the noise's spectral edge (≈ 2σC√n for a symmetric Gaussian matrix) carry no signal; the
    // rest are weighted by the square root of their excess (a data-independent threshold: post-processing).
    let k = h.factors;
    let edge = 2.0 * n.sigma * n.clip * (nv as f64).sqrt();
    let top = vals.first().map_or(0.0, |&l| (l - edge).max(0.0));
    let mut token_factors = vec![0f32; nv * k];
    for c in 0..k.min(nv) {
        let w = if top > 0.0 { ((vals[c] - edge).max(0.0) / top).sqrt() } else { 0.0 };
        for r in 0..nv {
            token_factors[r * k + c] = (vecs[r * nv + c] * w) as f32;
        }
    }
    let n_items = v.items.len();
    let mut item_factors = vec![0f32; n_items * k];
    for j in 0..n_items {
        let (ts, tw) = v.item_tokens.row(j);
        let out = &mut item_factors[j * k..(j + 1) * k];
        for (&t, &x) in ts.iter().zip(tw) {
            for (o, f) in out.iter_mut().zip(&token_factors[t as usize * k..(t as usize + 1) * k]) {
                *o += x * f;
            }
        }
    }
    let mut cols = item_factors.clone();
    cols.extend_from_slice(&token_factors);
    let gram = ials::gram(&cols, k, h.reg, threads.max(1));
    let members = d.members.len();
    let mut user_factors = vec![0f32; members * k];
    let per = members.div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        for (ci, part) in user_factors.chunks_mut(per * k).enumerate() {
            let (v, cols, gram) = (&v, &cols, &gram);
            s.spawn(move || {
                for (j, xu) in part.chunks_mut(k).enumerate() {
                    let u = ci * per + j;
                    let (is, ws) = v.train.row(u);
                    let mut c: Vec<u32> = is.to_vec();
                    let mut w: Vec<f32> = ws.to_vec();
                    for &t in v.user_tokens.row(u).0 {
                        c.push(n_items as u32 + t);
                        w.push(h.token_weight);
                    }
                    if let Some(x) = ials::fold_in(&c, &w, cols, gram, k, h.alpha) {
                        xu.copy_from_slice(&x);
                    }
                }
            });
        }
    });
    let model = ShardModel {
        members: d.members.clone(),
        items: v.items,
        vocab: v.vocab,
        k,
        user_factors,
        item_factors,
        content: token_factors.clone(),
        token_factors,
        item_counts: vec![0; n_items],
        user_tokens: v.user_tokens,
        item_tokens: v.item_tokens,
        seen: Csr { ptr: v.train.ptr.clone(), idx: v.train.idx.clone(), val: vec![1.0; v.train.idx.len()] },
        alpha: h.alpha,
        reg: h.reg,
        token_weight: h.token_weight,
        content_shrink: 1.0,
        own_tokens: h.dp_own_tokens,
        authored: Csr::from_triplets(d.members.len(), Vec::new()),
        topics: None,
    };
    let all = [&model.user_factors, &model.item_factors, &model.token_factors];
    if all.iter().any(|x| x.iter().any(|f| !f.is_finite())) {
        return Err(LearnError::Diverged("a DP factor became NaN or infinite".into()));
    }
    Ok(model)
}

/// The secret stream of a DP job-recommendation shard.
pub fn rec_shard_noise(key: &NoiseKey, opts: &DpOptions, seed: u64, shard: u32) -> Result<ShardNoise, LearnError> {
    let sigma = opts.sigma.ok_or_else(|| LearnError::Internal("σ was not calibrated".into()))?;
    Ok(ShardNoise::new(key, sigma, opts.clip, seed, shard))
}

/// The secret seed of a DP replies shard's DP-SGD streams.
pub fn replies_shard_key(key: &NoiseKey, seed: u64, shard: u32) -> [u8; 32] {
    key.stream_seed("replies dp-sgd", seed, shard)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eigen_decomposition_reconstructs_and_sorts() {
        let n = 5;
        let mut a = vec![0f64; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = 1.0 / (1.0 + (i + j) as f64) + if i == j { (i as f64) - 2.0 } else { 0.0 };
            }
        }
        let (vals, vecs) = symmetric_eigen(a.clone(), n);
        assert!(vals.windows(2).all(|w| w[0] >= w[1]), "{vals:?}");
        for i in 0..n {
            for j in 0..n {
                let r: f64 = (0..n).map(|c| vecs[i * n + c] * vals[c] * vecs[j * n + c]).sum();
                assert!((r - a[i * n + j]).abs() < 1e-10, "({i}, {j}): {r} vs {}", a[i * n + j]);
                let o: f64 = (0..n).map(|r| vecs[r * n + i] * vecs[r * n + j]).sum();
                assert!((o - f64::from(u8::from(i == j))).abs() < 1e-10);
            }
        }
    }

    #[test]
    fn triangle_index_is_dense_and_in_order() {
        let n = 4;
        let idx: Vec<usize> = (0..n).flat_map(|i| (i..n).map(move |j| tri(i, j, n))).collect();
        assert_eq!(idx, (0..n * (n + 1) / 2).collect::<Vec<_>>());
    }
}
