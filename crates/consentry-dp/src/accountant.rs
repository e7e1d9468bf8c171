//! The accountant a model carries in its metadata, and a member's cumulative loss across models.

use crate::DpError;
use crate::convert::{self, Conversion, Guarantee};
use crate::rdp::{self, check_mechanism, check_orders};
use serde::{Deserialize, Serialize};

/// One run of the Poisson-subsampled Gaussian mechanism: `steps` steps at sampling rate `q`, noise σ·C.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SampledGaussian {
    /// The probability that a member is in a step's batch.
    pub q: f64,
    /// The noise multiplier σ (noise standard deviation over the clipping norm).
    pub sigma: f64,
    /// How many steps ran.
    pub steps: u64,
}

/// The mechanisms a training run used and their composed RDP curve; stored with the model so any
/// later computation (a member's cumulative loss, an audit) starts from the curve, not from a rounded ε.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "AccountantWire")]
pub struct Accountant {
    orders: Vec<f64>,
    #[serde(with = "crate::serde_inf::vec")]
    rdp: Vec<f64>,
    mechanisms: Vec<SampledGaussian>,
}

/// The serialised form, validated into an [`Accountant`] on read.
#[derive(Deserialize)]
struct AccountantWire {
    orders: Vec<f64>,
    #[serde(with = "crate::serde_inf::vec")]
    rdp: Vec<f64>,
    #[serde(default)]
    mechanisms: Vec<SampledGaussian>,
}

impl TryFrom<AccountantWire> for Accountant {
    type Error = DpError;
    fn try_from(w: AccountantWire) -> Result<Self, DpError> {
        check_orders(&w.orders)?;
        if w.orders.len() != w.rdp.len() {
            return Err(DpError::LengthMismatch { orders: w.orders.len(), rdp: w.rdp.len() });
        }
        if w.rdp.iter().any(|r| r.is_nan()) {
            return Err(DpError::InvalidRdp("an RDP value is NaN".into()));
        }
        Ok(Accountant { orders: w.orders, rdp: w.rdp, mechanisms: w.mechanisms })
    }
}

impl Default for Accountant {
    fn default() -> Self {
        Self::new()
    }
}

impl Accountant {
    /// An empty accountant on dp_accounting's default order grid (no privacy spent yet).
    pub fn new() -> Self {
        let orders = rdp::default_orders();
        let rdp = vec![0.0; orders.len()];
        Accountant { orders, rdp, mechanisms: Vec::new() }
    }

    /// An empty accountant on a custom order grid (e.g. dp_accounting's unit test orders).
    pub fn with_orders(orders: Vec<f64>) -> Result<Self, DpError> {
        check_orders(&orders)?;
        let rdp = vec![0.0; orders.len()];
        Ok(Accountant { orders, rdp, mechanisms: Vec::new() })
    }

    /// An accountant that has run one mechanism on the default grid.
    pub fn sampled_gaussian(q: f64, sigma: f64, steps: u64) -> Result<Self, DpError> {
        let mut a = Self::new();
        a.compose(q, sigma, steps)?;
        Ok(a)
    }

    /// Adds `steps` steps of the sampled Gaussian (RDP composes by addition at each order).
    pub fn compose(&mut self, q: f64, sigma: f64, steps: u64) -> Result<&mut Self, DpError> {
        check_mechanism(q, sigma)?;
        if steps > 0 {
            let one = rdp::rdp_sampled_gaussian(q, sigma, &self.orders)?;
            let count = steps as f64;
            for (r, x) in self.rdp.iter_mut().zip(one) {
                // q = 0 gives 0 at every order, and 0·∞ never arises because σ = 0 with q > 0 gives ∞ only.
                *r += count * x;
            }
        }
        self.mechanisms.push(SampledGaussian { q, sigma, steps });
        Ok(self)
    }

    /// Adds another accountant's curve (same member, another model); the grids must be identical.
    pub fn compose_accountant(&mut self, other: &Accountant) -> Result<&mut Self, DpError> {
        if self.orders != other.orders {
            return Err(DpError::GridMismatch);
        }
        for (r, x) in self.rdp.iter_mut().zip(&other.rdp) {
            *r += x;
        }
        self.mechanisms.extend_from_slice(&other.mechanisms);
        Ok(self)
    }

    /// The smallest ε at δ over the grid, and the order that gave it.
    pub fn epsilon(&self, delta: f64, conversion: Conversion) -> Result<Guarantee, DpError> {
        convert::epsilon(&self.orders, &self.rdp, delta, conversion)
    }

    /// The smallest δ at ε over the grid, and the order that gave it.
    pub fn delta(&self, epsilon: f64, conversion: Conversion) -> Result<Guarantee, DpError> {
        convert::delta(&self.orders, &self.rdp, epsilon, conversion)
    }

    /// The RDP orders.
    pub fn orders(&self) -> &[f64] {
        &self.orders
    }

    /// The composed RDP at each order (+∞ where an order is unbounded or was dropped).
    pub fn rdp(&self) -> &[f64] {
        &self.rdp
    }

    /// The mechanisms composed so far, in order.
    pub fn mechanisms(&self) -> &[SampledGaussian] {
        &self.mechanisms
    }

    /// True if the stored curve is what the listed mechanisms give (to 1e-9 relative), for audits of stored metadata.
    pub fn is_consistent(&self) -> bool {
        let Ok(mut fresh) = Accountant::with_orders(self.orders.clone()) else { return false };
        for m in &self.mechanisms {
            if fresh.compose(m.q, m.sigma, m.steps).is_err() {
                return false;
            }
        }
        fresh.rdp.iter().zip(&self.rdp).all(|(a, b)| a == b || ((a - b) / a.abs().max(b.abs())).abs() <= 1e-9)
    }
}

/// δ to use when the caller has none: min(1/N^1.1, 1e-6) for a training set of N members (1e-6 if N is unknown).
///
/// δ must be well below 1/N (otherwise "leak one member's data outright with probability δ" is allowed);
/// N^−1.1 is the usual rule, and 1e-6 caps it for small sets, so the default is the stricter of the two.
pub fn default_delta(members: Option<u64>) -> f64 {
    match members {
        Some(n) if n > 0 => (n as f64).powf(-1.1).min(1e-6),
        _ => 1e-6,
    }
}

/// What one DP model records against every member of its training set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelLoss {
    /// The model's identifier.
    pub model: String,
    /// The model's ε (null in JSON when infinite).
    #[serde(with = "crate::serde_inf")]
    pub epsilon: f64,
    /// The model's δ.
    pub delta: f64,
    /// The RDP accountant of its training, when it has one; enables the tighter RDP composition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accountant: Option<Accountant>,
}

impl ModelLoss {
    /// The record of a model trained with `accountant`, at the δ the model claims.
    pub fn from_accountant(
        model: impl Into<String>,
        accountant: Accountant,
        delta: f64,
        conversion: Conversion,
    ) -> Result<Self, DpError> {
        let g = accountant.epsilon(delta, conversion)?;
        Ok(ModelLoss { model: model.into(), epsilon: g.epsilon, delta, accountant: Some(accountant) })
    }
}

/// A member's privacy loss across every model trained on their data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CumulativeLoss {
    /// How many models were composed.
    pub models: usize,
    /// Total δ: the sum of the models' δ (both bounds below hold at this δ).
    pub delta: f64,
    /// Basic composition: the sum of the models' ε.
    #[serde(with = "crate::serde_inf")]
    pub basic_epsilon: f64,
    /// RDP composition over the models that carry a curve on a common grid, plus basic composition for the rest.
    #[serde(with = "crate::serde_inf")]
    pub rdp_epsilon: f64,
    /// How many models went into the RDP part.
    pub rdp_models: usize,
    /// The smaller of the two bounds, both valid at `delta`.
    #[serde(with = "crate::serde_inf")]
    pub epsilon: f64,
    /// The conversion used for the RDP part.
    pub conversion: Conversion,
}

/// A member's cumulative (ε, δ) over the models trained on their data: basic composition, and RDP
/// composition where the models carry RDP curves on the same grid (the first such model's grid).
pub fn cumulative_loss<'a>(
    models: impl IntoIterator<Item = &'a ModelLoss>,
    conversion: Conversion,
) -> Result<CumulativeLoss, DpError> {
    let (mut n, mut basic_eps, mut total_delta) = (0usize, 0.0f64, 0.0f64);
    let (mut rdp_acc, mut rdp_models, mut rdp_delta): (Option<Accountant>, usize, f64) = (None, 0, 0.0);
    let mut rest_eps = 0.0f64;
    for m in models {
        if m.epsilon.is_nan() || m.epsilon < 0.0 {
            return Err(DpError::InvalidEpsilon(m.epsilon));
        }
        if !(0.0..1.0).contains(&m.delta) {
            return Err(DpError::InvalidDelta(m.delta));
        }
        n += 1;
        basic_eps += m.epsilon;
        total_delta += m.delta;
        let joined = match (&mut rdp_acc, &m.accountant) {
            (None, Some(a)) if m.delta > 0.0 => {
                rdp_acc = Some(a.clone());
                true
            }
            (Some(acc), Some(a)) if m.delta > 0.0 => acc.compose_accountant(a).is_ok(),
            _ => false,
        };
        if joined {
            rdp_models += 1;
            rdp_delta += m.delta;
        } else {
            rest_eps += m.epsilon;
        }
    }
    let rdp_epsilon = match &rdp_acc {
        Some(acc) if rdp_delta < 1.0 => acc.epsilon(rdp_delta, conversion)?.epsilon + rest_eps,
        _ => basic_eps,
    };
    Ok(CumulativeLoss {
        models: n,
        delta: total_delta,
        basic_epsilon: basic_eps,
        rdp_epsilon,
        rdp_models,
        epsilon: basic_eps.min(rdp_epsilon),
        conversion,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_round_trip_keeps_infinity() -> Result<(), Box<dyn std::error::Error>> {
        let mut a = Accountant::with_orders(vec![1.5, 2.0, 64.0])?;
        a.compose(0.01, 1.0, 100)?;
        a.compose(0.5, 0.0, 1)?;
        let json = serde_json::to_string(&a)?;
        assert!(json.contains("null"));
        let back: Accountant = serde_json::from_str(&json)?;
        assert_eq!(back, a);
        assert!(back.is_consistent());
        Ok(())
    }

    #[test]
    fn deserialisation_validates() {
        assert!(serde_json::from_str::<Accountant>(r#"{"orders":[2.0],"rdp":[0.1,0.2]}"#).is_err());
        assert!(serde_json::from_str::<Accountant>(r#"{"orders":[0.5],"rdp":[0.1]}"#).is_err());
        assert!(serde_json::from_str::<Accountant>(r#"{"orders":[],"rdp":[]}"#).is_err());
    }

    #[test]
    fn tampered_curve_is_inconsistent() -> Result<(), Box<dyn std::error::Error>> {
        let a = Accountant::sampled_gaussian(0.01, 1.0, 1000)?;
        let mut v = serde_json::to_value(&a)?;
        v["rdp"][20] = serde_json::json!(0.0);
        let b: Accountant = serde_json::from_value(v)?;
        assert!(!b.is_consistent());
        Ok(())
    }

    #[test]
    fn composing_accountants_equals_composing_steps() -> Result<(), DpError> {
        let mut a = Accountant::sampled_gaussian(0.01, 1.1, 300)?;
        let b = Accountant::sampled_gaussian(0.01, 1.1, 700)?;
        a.compose_accountant(&b)?;
        let c = Accountant::sampled_gaussian(0.01, 1.1, 1000)?;
        for (x, y) in a.rdp().iter().zip(c.rdp()) {
            assert!((x - y).abs() <= 1e-12 * y.abs());
        }
        let other = Accountant::with_orders(vec![2.0])?;
        assert_eq!(a.compose_accountant(&other).err(), Some(DpError::GridMismatch));
        Ok(())
    }

    #[test]
    fn default_delta_is_the_stricter_rule() {
        assert_eq!(default_delta(None), 1e-6);
        assert_eq!(default_delta(Some(1000)), 1e-6);
        let n = 10_000_000u64;
        assert!((default_delta(Some(n)) - (n as f64).powf(-1.1)).abs() < 1e-20);
    }

    #[test]
    fn cumulative_loss_rdp_beats_basic_for_many_models() -> Result<(), DpError> {
        let models: Vec<ModelLoss> = (0..5)
            .map(|i| {
                let a = Accountant::sampled_gaussian(0.01, 1.0, 2000)?;
                ModelLoss::from_accountant(format!("m{i}"), a, 1e-6, Conversion::Improved)
            })
            .collect::<Result<_, _>>()?;
        let pure = ModelLoss { model: "laplace".into(), epsilon: 0.5, delta: 0.0, accountant: None };
        let mut all = models.clone();
        all.push(pure);
        let loss = cumulative_loss(&all, Conversion::Improved)?;
        assert_eq!(loss.models, 6);
        assert_eq!(loss.rdp_models, 5);
        assert!((loss.delta - 5e-6).abs() < 1e-18);
        assert!((loss.basic_epsilon - (5.0 * models[0].epsilon + 0.5)).abs() < 1e-12);
        assert!(loss.rdp_epsilon < loss.basic_epsilon, "{loss:?}");
        assert_eq!(loss.epsilon, loss.rdp_epsilon);
        let empty = cumulative_loss([], Conversion::Classic)?;
        assert_eq!((empty.epsilon, empty.delta), (0.0, 0.0));
        Ok(())
    }
}
