//! From an RDP curve to (ε, δ): the classic bound and the tighter one dp_accounting reports.
//!
//! Classic: ε = min_α rdp(α) + log(1/δ)/(α − 1) (Mironov 2017, arXiv:1702.07476 Prop. 3), as TF Privacy's
//! `get_privacy_spent` and the moments accountant of Abadi et al. 2016 report it.
//! Improved: dp_accounting 0.6.0 `compute_epsilon` / `compute_delta` (`rdp/rdp_privacy_accountant.py`), which
//! cites Canonne, Kamath, Steinke 2020 (arXiv:2004.00010 v4, Prop. 12) and Asoodeh et al. 2020
//! (arXiv:2001.05990 v1, Eq. 20); the same bound follows from Balle et al. 2020 (arXiv:1905.09982). Ported
//! operation by operation, including its KL-divergence shortcut and its α > 1.01 cut-off.

use crate::DpError;
use serde::{Deserialize, Serialize};

/// Which RDP → (ε, δ) conversion to use; both are valid upper bounds, improved is never larger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Conversion {
    /// ε = rdp + log(1/δ)/(α−1): the bound published results (Abadi et al., TF Privacy tutorials) quote.
    Classic,
    /// dp_accounting's `compute_epsilon`: what Google's library reports today.
    #[default]
    Improved,
}

impl Conversion {
    /// The lowercase name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Conversion::Classic => "classic",
            Conversion::Improved => "improved",
        }
    }
}

impl std::fmt::Display for Conversion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Conversion {
    type Err = DpError;
    fn from_str(s: &str) -> Result<Self, DpError> {
        match s {
            "classic" => Ok(Conversion::Classic),
            "improved" => Ok(Conversion::Improved),
            other => Err(DpError::UnknownConversion(other.to_string())),
        }
    }
}

/// An (ε, δ) guarantee and the RDP order that gave it, so an auditor can see where the bound came from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Guarantee {
    /// ε (may be +∞ when every order is infinite; serialised as null then).
    #[serde(with = "crate::serde_inf")]
    pub epsilon: f64,
    /// δ.
    pub delta: f64,
    /// The optimal RDP order.
    pub order: f64,
    /// The conversion used.
    pub conversion: Conversion,
}

/// Checks δ ∈ (0, 1): δ = 0 has no finite ε under RDP, δ ≥ 1 says nothing.
pub fn check_delta(delta: f64) -> Result<(), DpError> {
    if delta > 0.0 && delta < 1.0 { Ok(()) } else { Err(DpError::InvalidDelta(delta)) }
}

fn check_curve(orders: &[f64], rdp: &[f64]) -> Result<(), DpError> {
    crate::rdp::check_orders(orders)?;
    if orders.len() != rdp.len() {
        return Err(DpError::LengthMismatch { orders: orders.len(), rdp: rdp.len() });
    }
    if rdp.iter().any(|r| r.is_nan()) {
        return Err(DpError::InvalidRdp("an RDP value is NaN".into()));
    }
    Ok(())
}

/// The first index of the smallest value (NumPy `argmin` semantics on NaN-free input).
fn argmin(values: &[f64]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v < values[best] {
            best = i;
        }
    }
    best
}

/// The smallest ε at `delta` over the orders, with the order that attains it.
pub fn epsilon(orders: &[f64], rdp: &[f64], delta: f64, conversion: Conversion) -> Result<Guarantee, DpError> {
    check_curve(orders, rdp)?;
    check_delta(delta)?;
    let eps: Vec<f64> = match conversion {
        Conversion::Classic => orders.iter().zip(rdp).map(|(&a, &r)| r - delta.ln() / (a - 1.0)).collect(),
        Conversion::Improved => orders
            .iter()
            .zip(rdp)
            .map(|(&a, &r)| {
                if r < 0.0 {
                    // Numerical noise from extreme events; the reference returns 0 here too.
                    0.0
                } else if delta * delta + (-r).exp_m1() > 0.0 {
                    // Bound via KL divergence: δ ≤ sqrt(1 − exp(−KL)).
                    0.0
                } else if a > 1.01 {
                    r + (-1.0 / a).ln_1p() - (delta * a).ln() / (a - 1.0)
                } else {
                    f64::INFINITY
                }
            })
            .collect(),
    };
    let i = argmin(&eps);
    Ok(Guarantee { epsilon: eps[i].max(0.0), delta, order: orders[i], conversion })
}

/// The smallest δ at `epsilon` over the orders, with the order that attains it (capped at 1).
pub fn delta(orders: &[f64], rdp: &[f64], epsilon: f64, conversion: Conversion) -> Result<Guarantee, DpError> {
    check_curve(orders, rdp)?;
    if epsilon.is_nan() || epsilon < 0.0 {
        return Err(DpError::InvalidEpsilon(epsilon));
    }
    let log_deltas: Vec<f64> = match conversion {
        Conversion::Classic => orders
            .iter()
            .zip(rdp)
            .map(|(&a, &r)| if r < 0.0 { f64::NEG_INFINITY } else { (a - 1.0) * (r - epsilon) })
            .collect(),
        Conversion::Improved => orders
            .iter()
            .zip(rdp)
            .map(|(&a, &r)| {
                let mut log_delta = if r <= 0.0 { f64::NEG_INFINITY } else { 0.5 * (-(-r).exp()).ln_1p() };
                if r >= 0.0 && a > 1.01 {
                    let bound = (a - 1.0) * (r - epsilon + (-1.0 / a).ln_1p()) - a.ln();
                    log_delta = log_delta.min(bound);
                }
                log_delta
            })
            .collect(),
    };
    let i = argmin(&log_deltas);
    Ok(Guarantee { epsilon, delta: log_deltas[i].exp().min(1.0), order: orders[i], conversion })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pure_dp_by_hand() -> Result<(), DpError> {
        // dp_accounting's test_compute_epsilon_delta_pure_dp: constant RDP 1.1 on orders 2..=32.
        let orders: Vec<f64> = (2..33).map(f64::from).collect();
        let rdp = vec![1.1; orders.len()];
        let g = epsilon(&orders, &rdp, 1e-5, Conversion::Improved)?;
        assert!((g.epsilon - 1.32783806176).abs() < 1e-9, "{g:?}");
        assert_eq!(g.order, 32.0);
        let d = delta(&orders, &rdp, 1.32783806176, Conversion::Improved)?;
        assert!((d.delta - 1e-5).abs() < 1e-12, "{d:?}");
        assert_eq!(d.order, 32.0);
        Ok(())
    }

    #[test]
    fn classic_round_trip() -> Result<(), DpError> {
        let orders: Vec<f64> = (2..64).map(f64::from).collect();
        let rdp: Vec<f64> = orders.iter().map(|a| a / 50.0).collect();
        let g = epsilon(&orders, &rdp, 1e-6, Conversion::Classic)?;
        let d = delta(&orders, &rdp, g.epsilon, Conversion::Classic)?;
        assert!(((d.delta - 1e-6) / 1e-6).abs() < 1e-9, "{d:?}");
        Ok(())
    }

    #[test]
    fn bad_inputs() {
        let o = [2.0, 3.0];
        assert!(epsilon(&o, &[0.1], 1e-5, Conversion::Classic).is_err());
        assert!(epsilon(&o, &[0.1, 0.2], 0.0, Conversion::Classic).is_err());
        assert!(epsilon(&o, &[0.1, 0.2], 1.0, Conversion::Classic).is_err());
        assert!(epsilon(&o, &[0.1, f64::NAN], 1e-5, Conversion::Classic).is_err());
        assert!(delta(&o, &[0.1, 0.2], -1.0, Conversion::Classic).is_err());
        assert!("foo".parse::<Conversion>().is_err());
    }
}
