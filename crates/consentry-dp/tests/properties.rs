//! Properties of the accountant and the mechanism over random inputs.

use consentry_dp::{Accountant, Conversion, clip_and_noise, seeded_rng};
use proptest::prelude::*;

fn q_strategy() -> impl Strategy<Value = f64> {
    (-4.0f64..0.0).prop_map(|e| 10f64.powf(e))
}

fn sigma_strategy() -> impl Strategy<Value = f64> {
    (0.5f64..20.0).prop_map(|s| s)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The improved conversion never gives a larger ε than the classic one, and both shrink as σ grows.
    #[test]
    fn improved_never_exceeds_classic_and_noise_helps(q in q_strategy(), sigma in sigma_strategy(), steps in 1u64..100_000) {
        let a = Accountant::sampled_gaussian(q, sigma, steps).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let c = a.epsilon(1e-5, Conversion::Classic).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let i = a.epsilon(1e-5, Conversion::Improved).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(i.epsilon <= c.epsilon, "{i:?} {c:?}");
        let b = Accountant::sampled_gaussian(q, sigma * 1.5, steps).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let cb = b.epsilon(1e-5, Conversion::Classic).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(cb.epsilon <= c.epsilon, "{cb:?} {c:?}");
    }

    /// More steps never cost less, and ε then δ round-trips.
    #[test]
    fn more_steps_cost_more(q in q_strategy(), sigma in sigma_strategy(), steps in 1u64..50_000) {
        let a = Accountant::sampled_gaussian(q, sigma, steps).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let b = Accountant::sampled_gaussian(q, sigma, steps * 2).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for conv in [Conversion::Classic, Conversion::Improved] {
            let ea = a.epsilon(1e-6, conv).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let eb = b.epsilon(1e-6, conv).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(ea.epsilon <= eb.epsilon);
            if ea.epsilon > 0.0 {
                let d = a.delta(ea.epsilon, conv).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(d.delta <= 1e-6 * (1.0 + 1e-6), "{d:?}");
            }
        }
    }

    /// Whatever the members' rows, each member's clipped contribution has norm at most C.
    #[test]
    fn clipped_sum_is_bounded(
        rows in prop::collection::vec(prop::collection::vec(prop::collection::vec(-1e6f32..1e6, 4), 0..20), 1..8),
        clip in 0.01f64..10.0,
    ) {
        let members: Vec<Vec<&[f32]>> = rows.iter().map(|m| m.iter().map(Vec::as_slice).collect()).collect();
        let out = clip_and_noise(&members, 4, clip, 0.0, &mut seeded_rng(1)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let norm = out.sum.iter().map(|x| x * x).sum::<f64>().sqrt();
        prop_assert!(norm <= clip * members.len() as f64 * (1.0 + 1e-12));
        for m in &members {
            let one = clip_and_noise([m.clone()], 4, clip, 0.0, &mut seeded_rng(1)).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let n1 = one.sum.iter().map(|x| x * x).sum::<f64>().sqrt();
            prop_assert!(n1 <= clip * (1.0 + 1e-12));
        }
    }
}
