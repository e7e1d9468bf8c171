//! DP records in `model.json`: recompute ε from the recorded mechanism with the accountant and check
//! the claim is not below it.
//!
//! `model.json`'s `dp` value is `{"bound": "none"}` for a model without DP; otherwise the audit reads
//! these keys (aliases in parentheses): `q` (`sample_rate`), `sigma` (`noise_multiplier`), `steps`, `delta`, `epsilon`, and,
//! when present, `accountant` (a serialised [`consentry_dp::Accountant`]), whose curve must be what its
//! mechanisms give and whose mechanisms must be the recorded ones.

use crate::report::{Finding, ViolationKind};
use consentry_dp::{Accountant, Conversion};
use serde_json::Value;

/// Relative slack for comparing a claimed ε with the recomputed one (printing rounds claims).
const EPSILON_SLACK: f64 = 1e-6;

fn num(v: &Value, keys: &[&str]) -> Option<f64> {
    keys.iter().find_map(|k| v.get(*k)).and_then(Value::as_f64)
}

fn violation(model: &str, message: impl Into<String>, expected: impl ToString, found: impl ToString) -> Finding {
    Finding::violation(ViolationKind::DpRecord, message, expected, found).model(model)
}

/// Every problem with one model's DP record.
pub(crate) fn check(model: &str, dp: &Value) -> Vec<Finding> {
    let mut out = Vec::new();
    // `{"bound": "none"}`: trained without DP, no claim to check.
    match dp.get("bound").and_then(Value::as_str) {
        Some("none") => return out,
        Some("dp") | None => {}
        Some(other) => {
            out.push(violation(model, "the DP record names an unknown kind of bound", "`none` or `dp`", other));
            return out;
        }
    }
    let q = num(dp, &["q", "sample_rate"]);
    let sigma = num(dp, &["sigma", "noise_multiplier"]);
    let steps = dp.get("steps").and_then(Value::as_u64);
    let delta = num(dp, &["delta"]);
    let epsilon = num(dp, &["epsilon"]);
    let (Some(q), Some(sigma), Some(steps), Some(delta), Some(epsilon)) = (q, sigma, steps, delta, epsilon) else {
        out.push(violation(
            model,
            "the DP record lacks what is needed to recompute its ε",
            "numbers q, sigma, steps, delta and epsilon",
            dp,
        ));
        return out;
    };
    let recomputed = Accountant::sampled_gaussian(q, sigma, steps).and_then(|a| a.epsilon(delta, Conversion::Improved));
    match recomputed {
        Err(e) => {
            out.push(violation(model, "the DP record's parameters are not a valid mechanism", "valid q, σ, δ", e))
        }
        Ok(g) => {
            if epsilon < g.epsilon * (1.0 - EPSILON_SLACK) {
                out.push(violation(
                    model,
                    "the model claims a smaller ε than its own DP-SGD parameters give",
                    format!("ε ≥ {:.6} (q = {q}, σ = {sigma}, {steps} steps, δ = {delta})", g.epsilon),
                    format!("ε = {epsilon}"),
                ));
            }
        }
    }
    if let Some(acc) = dp.get("accountant") {
        match serde_json::from_value::<Accountant>(acc.clone()) {
            Err(e) => out.push(violation(model, "the DP record's accountant cannot be read", "an accountant", e)),
            Ok(a) => {
                if !a.is_consistent() {
                    out.push(violation(
                        model,
                        "the stored RDP curve is not what its mechanisms give",
                        "the curve recomputed from the mechanisms",
                        "a different curve",
                    ));
                }
                let listed: Vec<(f64, f64, u64)> = a.mechanisms().iter().map(|m| (m.q, m.sigma, m.steps)).collect();
                if listed != [(q, sigma, steps)] {
                    out.push(violation(
                        model,
                        "the accountant's mechanisms are not the recorded DP-SGD run",
                        format!("[(q {q}, σ {sigma}, {steps} steps)]"),
                        format!("{listed:?}"),
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eps(q: f64, sigma: f64, steps: u64, delta: f64) -> f64 {
        Accountant::sampled_gaussian(q, sigma, steps).unwrap().epsilon(delta, Conversion::Improved).unwrap().epsilon
    }

    #[test]
    fn honest_claims_pass_and_understated_ones_fail() {
        let e = eps(0.01, 1.1, 1000, 1e-6);
        let honest = json!({"q": 0.01, "sigma": 1.1, "steps": 1000, "delta": 1e-6, "epsilon": e});
        assert!(check("m", &honest).is_empty(), "{:?}", check("m", &honest));
        let looser =
            json!({"sample_rate": 0.01, "noise_multiplier": 1.1, "steps": 1000, "delta": 1e-6, "epsilon": e * 2.0});
        assert!(check("m", &looser).is_empty());
        let low = json!({"q": 0.01, "sigma": 1.1, "steps": 1000, "delta": 1e-6, "epsilon": e / 2.0});
        let f = check("m", &low);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].kind, ViolationKind::DpRecord);
        assert!(f[0].expected.contains("ε ≥"), "{:?}", f[0]);
        let incomplete = json!({"bound": "dp", "epsilon": 1.0});
        assert_eq!(check("m", &incomplete).len(), 1);
        assert!(check("m", &json!({"bound": "none"})).is_empty());
        assert_eq!(check("m", &json!({"bound": "maybe"})).len(), 1);
        let bad = json!({"q": 2.0, "sigma": 1.1, "steps": 10, "delta": 1e-6, "epsilon": 1.0});
        assert_eq!(check("m", &bad).len(), 1);
    }

    #[test]
    fn accountant_must_match_the_record() {
        let e = eps(0.01, 1.1, 1000, 1e-6);
        let a = serde_json::to_value(Accountant::sampled_gaussian(0.01, 1.1, 1000).unwrap()).unwrap();
        let ok = json!({"q": 0.01, "sigma": 1.1, "steps": 1000, "delta": 1e-6, "epsilon": e, "accountant": a});
        assert!(check("m", &ok).is_empty(), "{:?}", check("m", &ok));
        let other = serde_json::to_value(Accountant::sampled_gaussian(0.01, 1.1, 10).unwrap()).unwrap();
        let bad = json!({"q": 0.01, "sigma": 1.1, "steps": 1000, "delta": 1e-6, "epsilon": e, "accountant": other});
        assert_eq!(check("m", &bad).len(), 1);
    }
}
