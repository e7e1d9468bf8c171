//! 95 % confidence intervals for held-out metrics, so "the model beats its baseline" and "the model reaches half
//! of the oracle" are claims about the task rather than about one lucky split.
//!
//! A held-out metric is a mean over evaluation units (members for rankings, message–reply pairs for replies); the
//! intervals are seeded percentile bootstraps over those units. Comparisons of two scorers on the same units use the
//! *paired* bootstrap (one resample of units scores both), which is what makes a ratio such as "model ÷ oracle"
//! meaningful on a few hundred members.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Bootstrap resamples per interval: enough for stable 2.5 % / 97.5 % percentiles at two decimals.
pub const RESAMPLES: usize = 1000;

/// A point estimate with its 95 % confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// The estimate on the full sample.
    pub value: f64,
    /// The 2.5 % bootstrap percentile.
    pub lo: f64,
    /// The 97.5 % bootstrap percentile.
    pub hi: f64,
}

impl Interval {
    /// Whether two intervals share no point (the usual reading of "clearly different").
    pub fn disjoint(&self, other: &Interval) -> bool {
        self.hi < other.lo || other.hi < self.lo
    }
}

impl std::fmt::Display for Interval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.3} [{:.3}, {:.3}]", self.value, self.lo, self.hi)
    }
}

fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() { 0.0 } else { xs.iter().sum::<f64>() / xs.len() as f64 }
}

fn percentiles(mut draws: Vec<f64>, value: f64) -> Interval {
    draws.retain(|d| d.is_finite());
    if draws.is_empty() {
        return Interval { value, lo: value, hi: value };
    }
    draws.sort_by(f64::total_cmp);
    let at = |q: f64| draws[((draws.len() - 1) as f64 * q).round() as usize];
    Interval { value, lo: at(0.025), hi: at(0.975) }
}

/// The mean of per-unit values with its bootstrap interval.
pub fn mean_ci(values: &[f64], seed: u64) -> Interval {
    let value = mean(values);
    if values.len() < 2 {
        return Interval { value, lo: value, hi: value };
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = values.len();
    let draws =
        (0..RESAMPLES).map(|_| (0..n).map(|_| values[rng.random_range(0..n)]).sum::<f64>() / n as f64).collect();
    percentiles(draws, value)
}

/// `mean(num) / mean(den)` over the same units, with a paired bootstrap interval (NaN-free: a resample whose
/// denominator is zero is skipped). Returns `None` when the slices differ in length or the denominator is zero.
pub fn ratio_ci(num: &[f64], den: &[f64], seed: u64) -> Option<Interval> {
    let d = mean(den);
    if num.len() != den.len() || d == 0.0 {
        return None;
    }
    let value = mean(num) / d;
    let n = num.len();
    if n < 2 {
        return Some(Interval { value, lo: value, hi: value });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let draws = (0..RESAMPLES)
        .filter_map(|_| {
            let (mut a, mut b) = (0.0, 0.0);
            for _ in 0..n {
                let i = rng.random_range(0..n);
                a += num[i];
                b += den[i];
            }
            (b != 0.0).then(|| a / b)
        })
        .collect();
    Some(percentiles(draws, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn constant_values_have_a_point_interval() {
        let i = mean_ci(&[0.5; 100], 1);
        assert_eq!((i.value, i.lo, i.hi), (0.5, 0.5, 0.5));
    }

    #[test]
    fn a_coin_interval_is_about_two_standard_errors_wide() {
        let xs: Vec<f64> = (0..400).map(|i| f64::from(u8::from(i % 2 == 0))).collect();
        let i = mean_ci(&xs, 7);
        // sd = 0.5, se = 0.025: the 95 % interval is about ±0.049.
        assert!((i.hi - i.lo - 0.098).abs() < 0.02, "{i}");
        assert!(i.lo < 0.5 && 0.5 < i.hi);
    }

    #[test]
    fn ratio_of_a_scaled_copy_is_exact() {
        let den: Vec<f64> = (0..50).map(|i| f64::from(i % 7)).collect();
        let num: Vec<f64> = den.iter().map(|x| x * 0.5).collect();
        let r = ratio_ci(&num, &den, 3).unwrap();
        assert!((r.value - 0.5).abs() < 1e-12 && (r.lo - 0.5).abs() < 1e-12 && (r.hi - 0.5).abs() < 1e-12);
        assert!(ratio_ci(&num, &den[1..], 3).is_none());
        assert!(ratio_ci(&[1.0], &[0.0], 3).is_none());
    }

    proptest! {
        #[test]
        fn the_estimate_lies_inside_its_interval_and_replays(xs in proptest::collection::vec(0.0f64..1.0, 2..60), seed: u64) {
            let i = mean_ci(&xs, seed);
            prop_assert!(i.lo <= i.value + 1e-12 && i.value <= i.hi + 1e-12, "{i}");
            prop_assert_eq!(i, mean_ci(&xs, seed));
        }
    }
}
