//! The noise multiplier that meets a target ε for the planned training run.

use crate::DpError;
use crate::convert::{self, Conversion, check_delta};
use crate::rdp::{self, check_orders, default_orders};

/// Bisection stops when the bracket is this narrow relative to σ: the returned σ is at most this much too large.
pub const SIGMA_REL_PRECISION: f64 = 1e-9;

/// Calibration gives up above this σ (noise a million times the clipping norm drowns any gradient).
pub const MAX_SIGMA: f64 = 1e6;

/// The smallest σ (to [`SIGMA_REL_PRECISION`]) whose ε over `steps` steps at rate `q` is at most `target_epsilon`.
///
/// Uses dp_accounting's default order grid. The returned σ always meets the target (it is the upper end of
/// the bisection bracket), and σ·(1 − 1e-9) may not. Returns 0 when nothing is spent (`q = 0` or `steps = 0`).
pub fn calibrate_sigma(
    target_epsilon: f64,
    delta: f64,
    q: f64,
    steps: u64,
    conversion: Conversion,
) -> Result<f64, DpError> {
    calibrate_sigma_with_orders(target_epsilon, delta, q, steps, conversion, &default_orders())
}

/// [`calibrate_sigma`] on a given order grid.
pub fn calibrate_sigma_with_orders(
    target_epsilon: f64,
    delta: f64,
    q: f64,
    steps: u64,
    conversion: Conversion,
    orders: &[f64],
) -> Result<f64, DpError> {
    if !(target_epsilon > 0.0 && target_epsilon.is_finite()) {
        return Err(DpError::InvalidEpsilon(target_epsilon));
    }
    check_delta(delta)?;
    rdp::check_mechanism(q, 0.0)?;
    check_orders(orders)?;
    if q == 0.0 || steps == 0 {
        return Ok(0.0);
    }
    if conversion == Conversion::Classic {
        // As σ → ∞ the RDP vanishes and the classic ε tends to min_α log(1/δ)/(α − 1) > 0.
        let floor = orders.iter().map(|a| -delta.ln() / (a - 1.0)).fold(f64::INFINITY, f64::min);
        if target_epsilon <= floor {
            return Err(DpError::Unreachable(format!(
                "target ε = {target_epsilon} is below the classic conversion's floor log(1/δ)/(α_max − 1) = {floor:.6} \
                 at δ = {delta} on this order grid; no σ reaches it. Raise ε or δ, or use the improved conversion"
            )));
        }
    }
    let eps = |sigma: f64| -> Result<f64, DpError> {
        let one = rdp::rdp_sampled_gaussian(q, sigma, orders)?;
        let count = steps as f64;
        let curve: Vec<f64> = one.iter().map(|r| count * r).collect();
        Ok(convert::epsilon(orders, &curve, delta, conversion)?.epsilon)
    };
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    loop {
        let e = eps(hi)?;
        if e <= target_epsilon {
            break;
        }
        if hi >= MAX_SIGMA {
            return Err(DpError::Unreachable(format!(
                "target ε = {target_epsilon} at δ = {delta} needs σ > {MAX_SIGMA} for {steps} steps at q = {q} \
                 (σ = {hi} still gives ε = {e:.6}); raise ε or δ, or plan fewer steps or a smaller q"
            )));
        }
        lo = hi;
        hi = (hi * 2.0).min(MAX_SIGMA);
    }
    while hi - lo > SIGMA_REL_PRECISION * hi {
        let mid = 0.5 * (lo + hi);
        if eps(mid)? <= target_epsilon {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Accountant;

    #[test]
    fn calibrated_sigma_meets_the_target_and_is_tight() -> Result<(), DpError> {
        for conversion in [Conversion::Classic, Conversion::Improved] {
            let (q, steps, delta, target) = (256.0 / 60000.0, 14062, 1e-5, 3.0);
            let sigma = calibrate_sigma(target, delta, q, steps, conversion)?;
            let e = Accountant::sampled_gaussian(q, sigma, steps)?.epsilon(delta, conversion)?.epsilon;
            assert!(e <= target, "{conversion}: σ = {sigma} gives ε = {e}");
            let e_less =
                Accountant::sampled_gaussian(q, sigma * (1.0 - 1e-6), steps)?.epsilon(delta, conversion)?.epsilon;
            assert!(e_less > target, "{conversion}: σ = {sigma} is not the smallest");
        }
        Ok(())
    }

    #[test]
    fn impossible_targets_are_explained() {
        let r = calibrate_sigma(0.001, 1e-5, 0.01, 1000, Conversion::Classic);
        assert!(matches!(r, Err(DpError::Unreachable(ref m)) if m.contains("floor")), "{r:?}");
        assert!(calibrate_sigma(0.0, 1e-5, 0.01, 1000, Conversion::Improved).is_err());
        assert!(calibrate_sigma(1.0, 0.0, 0.01, 1000, Conversion::Improved).is_err());
        assert!(calibrate_sigma(1.0, 1e-5, 2.0, 1000, Conversion::Improved).is_err());
        assert_eq!(calibrate_sigma(1.0, 1e-5, 0.0, 1000, Conversion::Improved), Ok(0.0));
        assert_eq!(calibrate_sigma(1.0, 1e-5, 0.1, 0, Conversion::Improved), Ok(0.0));
    }
}
