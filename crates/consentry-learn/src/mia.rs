//! Membership inference against the released part of a recommender: the empirical check that unlearning worked.
//!
//! The attacker holds a member's interactions and the model's item factors (what a recommender releases). For each
//! member it folds a vector in from those interactions against the item factors of the member's shard — the
//! weighted-ALS solution, exactly as at serving time — and scores how highly that vector ranks the member's own items
//! among all the shard's items (mean percentile rank). Item factors fitted to a member's rows rank their items a
//! little higher, so training members score higher than members the model never saw. This is the loss/rank
//! attack family of Yeom et al., "Privacy Risk in Machine Learning" (CSF 2018), adapted to matrix factorisation.
//!
//! Reported: ROC AUC (Mann–Whitney, ties counted half) with a 95 % confidence interval from Hanley & McNeil (1982),
//! and the true-positive rate at 1 % false-positive rate (Carlini et al., "Membership Inference Attacks From First
//! Principles", S&P 2022). After exact unlearning, removed members must be indistinguishable from never-seen ones:
//! their AUC's interval contains 0.5.

use crate::ials;
use crate::recs::ShardModel;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Scores members against one model's shards; built once, then queried per member.
pub struct Attack<'a> {
    shards: &'a [ShardModel],
    grams: Vec<Vec<f32>>,
}

impl<'a> Attack<'a> {
    /// Prepares the item-factor Gram matrix of every shard.
    pub fn new(shards: &'a [ShardModel]) -> Attack<'a> {
        let grams = shards.iter().map(|s| ials::gram(&s.item_factors, s.k, s.reg, 1)).collect();
        Attack { shards, grams }
    }

    /// The membership score of a member whose shard is `shard` and whose interactions are `items` (item id, weight):
    /// the mean percentile rank of their items under the folded-in vector, in [0, 1]. `None` when the shard does not
    /// exist, knows none of the items, or the fold-in is singular.
    pub fn score(&self, shard: u32, items: &[(u64, f32)]) -> Option<f64> {
        let si = shard as usize;
        let s = self.shards.get(si)?;
        let mut known: BTreeMap<u32, f32> = BTreeMap::new();
        for &(id, w) in items {
            // A shard's items are ascending.
            if let Ok(j) = s.items.binary_search(&id) {
                *known.entry(j as u32).or_default() += w;
            }
        }
        if known.is_empty() || s.items.len() < 2 {
            return None;
        }
        let (cols, ws): (Vec<u32>, Vec<f32>) = known.iter().map(|(&j, &w)| (j, w)).unzip();
        let x = ials::fold_in(&cols, &ws, &s.item_factors, &self.grams[si], s.k, s.alpha)?;
        let k = s.k;
        let scores: Vec<f32> =
            s.item_factors.chunks_exact(k).map(|y| y.iter().zip(&x).map(|(a, b)| a * b).sum()).collect();
        let mut sorted = scores.clone();
        sorted.sort_by(f32::total_cmp);
        let n = scores.len() as f64;
        let mean = cols
            .iter()
            .map(|&j| {
                let v = scores[j as usize];
                // Items scored strictly below, plus half the ties (the item itself included).
                let below = sorted.partition_point(|&o| o < v) as f64;
                let ties = (sorted.partition_point(|&o| o <= v) as f64) - below;
                (below + (ties - 1.0) / 2.0) / (n - 1.0)
            })
            .sum::<f64>()
            / cols.len() as f64;
        mean.is_finite().then_some(mean)
    }
}

/// How well the scores separate members from non-members.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Separation {
    /// Members scored (positives).
    pub positives: usize,
    /// Non-members scored (negatives).
    pub negatives: usize,
    /// ROC AUC: the chance a random member outscores a random non-member (ties half).
    pub auc: f64,
    /// 95 % confidence interval of the AUC (Hanley & McNeil), clamped to [0, 1].
    pub auc_low: f64,
    /// Upper end of that interval.
    pub auc_high: f64,
    /// True-positive rate when the threshold lets through at most 1 % of non-members.
    pub tpr_at_1pct_fpr: f64,
}

impl Separation {
    /// Whether the interval is consistent with a coin flip: members indistinguishable from non-members.
    pub fn indistinguishable(&self) -> bool {
        self.auc_low <= 0.5 && 0.5 <= self.auc_high
    }
}

/// AUC, its interval and TPR at 1 % FPR of `pos` (members) against `neg` (non-members); `None` if either is empty
/// or a score is not finite.
pub fn separation(pos: &[f64], neg: &[f64]) -> Option<Separation> {
    if pos.is_empty() || neg.is_empty() || pos.iter().chain(neg).any(|v| !v.is_finite()) {
        return None;
    }
    let mut n_sorted = neg.to_vec();
    n_sorted.sort_by(f64::total_cmp);
    // Mann–Whitney U over the sorted negatives: below + ties / 2 for each positive.
    let u: f64 = pos
        .iter()
        .map(|&p| {
            let below = n_sorted.partition_point(|&v| v < p) as f64;
            let ties = n_sorted.partition_point(|&v| v <= p) as f64 - below;
            below + ties / 2.0
        })
        .sum();
    let (np, nn) = (pos.len() as f64, neg.len() as f64);
    let auc = u / (np * nn);
    let q1 = auc / (2.0 - auc);
    let q2 = 2.0 * auc * auc / (1.0 + auc);
    let var = (auc * (1.0 - auc) + (np - 1.0) * (q1 - auc * auc) + (nn - 1.0) * (q2 - auc * auc)) / (np * nn);
    let se = var.max(0.0).sqrt();
    // The threshold: the smallest score that at most 1 % of negatives exceed.
    let allowed = (0.01 * nn).floor() as usize;
    let threshold = n_sorted[n_sorted.len() - 1 - allowed.min(n_sorted.len() - 1)];
    let tpr = pos.iter().filter(|&&p| p > threshold).count() as f64 / np;
    Some(Separation {
        positives: pos.len(),
        negatives: neg.len(),
        auc,
        auc_low: (auc - 1.96 * se).max(0.0),
        auc_high: (auc + 1.96 * se).min(1.0),
        tpr_at_1pct_fpr: tpr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_separated_equal_and_reversed_scores() {
        let pos = [0.9, 0.8, 0.7];
        let neg = [0.1, 0.2, 0.3, 0.4];
        let s = separation(&pos, &neg).unwrap();
        assert_eq!(s.auc, 1.0);
        assert_eq!(s.tpr_at_1pct_fpr, 1.0);
        assert!(!s.indistinguishable());
        assert_eq!(separation(&neg, &pos).unwrap().auc, 0.0);
        let same = separation(&[0.5; 50], &[0.5; 50]).unwrap();
        assert_eq!(same.auc, 0.5);
        assert!(same.indistinguishable());
        assert_eq!(same.tpr_at_1pct_fpr, 0.0);
        assert!(separation(&[], &neg).is_none());
        assert!(separation(&[f64::NAN], &neg).is_none());
    }

    #[test]
    fn auc_counts_pairs() {
        // 2 of the 4 pairs ordered right, one tie: (2 + 0.5) / 4.
        let s = separation(&[0.5, 0.2], &[0.3, 0.5]).unwrap();
        assert!((s.auc - 0.375).abs() < 1e-12, "{}", s.auc);
    }

    #[test]
    fn draws_from_one_distribution_are_indistinguishable() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut draw = |n: usize| (0..n).map(|_| rng.random::<f64>()).collect::<Vec<_>>();
        let (a, b) = (draw(400), draw(400));
        let s = separation(&a, &b).unwrap();
        assert!(s.indistinguishable(), "{s:?}");
        // A shift of half a standard deviation is seen.
        let shifted: Vec<f64> = a.iter().map(|v| v + 0.15).collect();
        assert!(!separation(&shifted, &b).unwrap().indistinguishable());
    }
}
