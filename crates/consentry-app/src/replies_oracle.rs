//! The reply oracle joined to a trained replies model: the synthetic network's true distribution of reply intents
//! given the message answered (`consentry-synth`), scored by `consentry-learn`'s ordinary held-out evaluation on the
//! model's own held-out pairs. For the demo and benchmarks only — the ground truth exists for synthetic data alone.

use std::collections::HashMap;
use std::path::Path;

use consentry_replies::Inventory;
use consentry_synth::text::{ReplyCondition, reply_distribution};

use crate::error::Result;

/// Intent scores over `inv`'s intents under `cond`: P(inventory intent | message), each inventory phrasing getting
/// the true probability of the generator's reply text it normalises to.
pub fn oracle_scores(inv: &Inventory, cond: ReplyCondition) -> Vec<f64> {
    let mut scores = vec![0.0; inv.intents().len()];
    for (_, text, p) in reply_distribution(cond) {
        let intent = inv.lookup(text).and_then(|r| inv.response(r)).map(|r| r.intent as usize);
        if let Some(s) = intent.and_then(|i| scores.get_mut(i)) {
            *s += p;
        }
    }
    scores
}

/// `model`, `most_frequent`, `oracle` and `model_over_oracle` (with 95 % intervals) for the replies model in
/// `model_dir`, trained on `dataset_dir`, gated from the synthetic network in `network_dir`.
pub fn evaluate(model_dir: &Path, dataset_dir: &Path, network_dir: &Path) -> Result<serde_json::Value> {
    let conditions = consentry_synth::read_reply_conditions(network_dir)?;
    let cache: std::sync::Mutex<HashMap<ReplyCondition, Vec<f64>>> = std::sync::Mutex::new(HashMap::new());
    let oracle = |inv: &Inventory, id: u64| -> Option<Vec<f64>> {
        let cond = *conditions.get(&id)?;
        let mut c = cache.lock().ok()?;
        Some(c.entry(cond).or_insert_with(|| oracle_scores(inv, cond)).clone())
    };
    Ok(consentry_learn::replies::evaluate_with_oracle(model_dir, dataset_dir, &oracle)?)
}
