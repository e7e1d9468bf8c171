//! DP-SGD primitives: Poisson sampling of members, per-member clipping, Gaussian noise.
//!
//! Deterministic given the seed: every random draw comes from the ChaCha20 stream the caller passes in
//! ([`seeded_rng`]), in a documented order (sampling draws first, then one normal per coordinate in
//! index order).

use crate::DpError;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rand_distr::StandardNormal;

/// The ChaCha20 stream DP-SGD draws from, so a training run can be replayed bit for bit from its seed.
pub fn seeded_rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// Poisson sampling: each of `n` members joins the batch independently with probability `q`; sorted indices.
///
/// Draws geometric gaps (`⌊ln U / ln(1 − q)⌋`) instead of one coin per member, so a step costs O(qn), not
/// O(n); the distribution is exactly that of independent Bernoulli(q) coins.
pub fn poisson_sample<R: Rng + ?Sized>(n: usize, q: f64, rng: &mut R) -> Result<Vec<usize>, DpError> {
    if !(0.0..=1.0).contains(&q) {
        return Err(DpError::InvalidSamplingRate(q));
    }
    if q == 0.0 || n == 0 {
        return Ok(Vec::new());
    }
    if q == 1.0 {
        return Ok((0..n).collect());
    }
    let log1mq = (-q).ln_1p();
    let mut out = Vec::with_capacity(((n as f64) * q * 1.1) as usize + 16);
    let mut next = 0usize;
    loop {
        // 1 − U lies in (0, 1], so its log is finite and ≤ 0.
        let u: f64 = 1.0 - rng.random::<f64>();
        let gap = (u.ln() / log1mq).floor();
        // Gaps beyond the remaining members end the step (the cast saturates for huge gaps).
        let gap = if gap >= (n - next) as f64 { n - next } else { gap as usize };
        next += gap;
        if next >= n {
            break;
        }
        out.push(next);
        next += 1;
        if next >= n {
            break;
        }
    }
    Ok(out)
}

/// The noisy sum of a batch's clipped member contributions.
#[derive(Debug, Clone, PartialEq)]
pub struct NoisySum {
    /// Σ clip(member) + N(0, (σC)² I). Divide by the *expected* batch size q·N, never the actual one.
    pub sum: Vec<f64>,
    /// How many members contributed.
    pub members: usize,
    /// How many of them had their contribution scaled down to norm C.
    pub clipped: usize,
}

/// Per-member clipping and Gaussian noise for one DP-SGD step.
///
/// `members` yields, for each sampled member, the gradient rows of that member's data (any number of rows,
/// f32 or f64, each of length `dim`). A member's rows are summed first and the sum is clipped to L2 norm
/// `clip`, so the member moves the result by at most `clip` however many rows they have. Then each
/// coordinate gets N(0, (sigma·clip)²) noise from `rng`. `sigma = 0` gives the clipped sum without noise
/// (for tests; it is not private).
pub fn clip_and_noise<T, M, Row, R>(
    members: M,
    dim: usize,
    clip: f64,
    sigma: f64,
    rng: &mut R,
) -> Result<NoisySum, DpError>
where
    T: Copy + Into<f64>,
    M: IntoIterator,
    M::Item: IntoIterator<Item = Row>,
    Row: AsRef<[T]>,
    R: Rng + ?Sized,
{
    if !(clip > 0.0 && clip.is_finite()) {
        return Err(DpError::InvalidClip(clip));
    }
    if !(sigma >= 0.0 && sigma.is_finite()) {
        return Err(DpError::InvalidNoiseMultiplier(sigma));
    }
    let mut sum = vec![0.0f64; dim];
    let mut scratch = vec![0.0f64; dim];
    let (mut count, mut clipped) = (0usize, 0usize);
    for (member, rows) in members.into_iter().enumerate() {
        scratch.iter_mut().for_each(|x| *x = 0.0);
        for row in rows {
            let row = row.as_ref();
            if row.len() != dim {
                return Err(DpError::DimensionMismatch { expected: dim, got: row.len() });
            }
            for (s, &g) in scratch.iter_mut().zip(row) {
                *s += g.into();
            }
        }
        let norm = scratch.iter().map(|x| x * x).sum::<f64>().sqrt();
        if !norm.is_finite() {
            return Err(DpError::NonFiniteGradient { member });
        }
        let scale = if norm > clip {
            clipped += 1;
            clip / norm
        } else {
            1.0
        };
        for (s, x) in sum.iter_mut().zip(&scratch) {
            *s += scale * x;
        }
        count += 1;
    }
    add_noise(&mut sum, sigma * clip, rng);
    Ok(NoisySum { sum, members: count, clipped })
}

/// Adds N(0, std²) to every coordinate, in index order; nothing (and no draws) when std is 0.
pub fn add_noise<R: Rng + ?Sized>(values: &mut [f64], std: f64, rng: &mut R) {
    if std == 0.0 {
        return;
    }
    for v in values {
        let z: f64 = rng.sample(StandardNormal);
        *v += std * z;
    }
}
