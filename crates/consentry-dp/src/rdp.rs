//! Rényi DP of the Poisson-subsampled Gaussian mechanism (Mironov, Talwar, Zhang 2019, arXiv:1908.10530).
//!
//! A line-by-line port of dp_accounting 0.6.0, `dp_accounting/rdp/rdp_privacy_accountant.py`:
//! `_compute_log_a_int`, `_compute_log_a_frac` (with `_MAX_STEPS_LOG_A_FRAC = 1000`),
//! `_compute_rdp_poisson_subsampled_gaussian` and `DEFAULT_RDP_ORDERS`. Same operations in the same order,
//! so the results agree with the reference to rounding (see `bench/dp/run.sh`).
//!
//! Dropped orders: for fractional α near 1 and q ≳ 0.1 the series' terms decay only polynomially, so the
//! reference's stopping rule (both terms decreasing and 30 nats below the total) is not met in 1000 terms and
//! it returns +∞ for that order (dp_accounting logs "Excluding this order"). We do the same, so our ε equals
//! theirs. ε stays a valid bound (a minimum over the remaining orders) but can be looser than the curve
//! allows: on the committed grid, rerunning dp_accounting with a 200 000-term cap changes ε only for
//! q ∈ {0.1, 0.5} with σ ≤ 1, where ε ≥ 37 anyway.

use crate::DpError;
use crate::special::{log_add, log_comb, log_erfc};

/// How many orders the default grid has (99 fractional in (1, 11), 53 integers 11..=63, and 128..=1024).
pub const DEFAULT_ORDERS_LEN: usize = 156;

/// The order grid of dp_accounting's `RdpAccountant` by default, so our ε is comparable with theirs.
///
/// `DEFAULT_RDP_ORDERS = [1 + x / 10.0 for x in range(1, 100)] + list(range(11, 64)) + [128, 256, 512, 1024]`.
pub fn default_orders() -> Vec<f64> {
    let mut orders = Vec::with_capacity(DEFAULT_ORDERS_LEN);
    orders.extend((1..100).map(|x| 1.0 + f64::from(x) / 10.0));
    orders.extend((11..64).map(f64::from));
    orders.extend([128.0, 256.0, 512.0, 1024.0]);
    orders
}

/// The iteration cap of `_compute_log_a_frac`; past it the order is dropped (RDP = +∞), as in dp_accounting.
pub const MAX_STEPS_LOG_A_FRAC: usize = 1000;

/// Checks an order grid: non-empty, every order finite and above 1 (RDP at order 1 is KL, not covered here).
pub fn check_orders(orders: &[f64]) -> Result<(), DpError> {
    if orders.is_empty() {
        return Err(DpError::InvalidOrders("the order grid is empty".into()));
    }
    if let Some(a) = orders.iter().find(|a| !(a.is_finite() && **a > 1.0)) {
        return Err(DpError::InvalidOrders(format!("order {a} is not a finite number above 1")));
    }
    Ok(())
}

/// Checks a sampling rate and noise multiplier the way the reference does, plus NaN.
pub fn check_mechanism(q: f64, sigma: f64) -> Result<(), DpError> {
    if !(0.0..=1.0).contains(&q) {
        return Err(DpError::InvalidSamplingRate(q));
    }
    if !(sigma.is_finite() && sigma >= 0.0) {
        return Err(DpError::InvalidNoiseMultiplier(sigma));
    }
    Ok(())
}

/// RDP of one step of the Poisson-subsampled Gaussian at each order: 0 for q = 0, ∞ for σ = 0.
pub fn rdp_sampled_gaussian(q: f64, sigma: f64, orders: &[f64]) -> Result<Vec<f64>, DpError> {
    check_mechanism(q, sigma)?;
    check_orders(orders)?;
    Ok(orders.iter().map(|&alpha| rdp_one_order(q, sigma, alpha)).collect())
}

/// `compute_one_order` of the reference.
fn rdp_one_order(q: f64, sigma: f64, alpha: f64) -> f64 {
    if q == 0.0 {
        return 0.0;
    }
    if alpha.is_infinite() || sigma == 0.0 {
        return f64::INFINITY;
    }
    if q == 1.0 {
        return alpha / (2.0 * (sigma * sigma));
    }
    compute_log_a(q, sigma, alpha) / (alpha - 1.0)
}

/// log A_α, dispatching on whether α is an integer (`float(alpha).is_integer()`).
pub fn compute_log_a(q: f64, sigma: f64, alpha: f64) -> f64 {
    if alpha.fract() == 0.0 {
        // Orders are at most a few thousand in practice; the cast saturates harmlessly beyond u64.
        compute_log_a_int(q, sigma, alpha as u64)
    } else {
        compute_log_a_frac(q, sigma, alpha)
    }
}

/// log A_α for integer α and 0 < q < 1: the binomial expansion, summed in log space.
fn compute_log_a_int(q: f64, sigma: f64, alpha: u64) -> f64 {
    let mut log_a = f64::NEG_INFINITY;
    let log1mq = (-q).ln_1p();
    let log_q = q.ln();
    let two_s2 = 2.0 * (sigma * sigma);
    let a = alpha as f64;
    for i in 0..=alpha {
        let fi = i as f64;
        let log_coef_i = log_comb(a, fi) + fi * log_q + (alpha - i) as f64 * log1mq;
        let s = log_coef_i + (fi * fi - fi) / two_s2;
        log_a = log_add(log_a, s);
    }
    log_a
}

/// log A_α for fractional α and 0 < q < 1 (Sec. 3.3 of arXiv:1908.10530); +∞ when the series does not settle.
fn compute_log_a_frac(q: f64, sigma: f64, alpha: f64) -> f64 {
    let (mut log_a0, mut log_a1) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    let s2 = sigma * sigma;
    let z0 = s2 * (1.0 / q - 1.0).ln() + 0.5;
    let log1mq = (-q).ln_1p();
    let log_q = q.ln();
    let log_half = 0.5f64.ln();
    let sqrt2_sigma = std::f64::consts::SQRT_2 * sigma;
    let two_s2 = 2.0 * s2;
    let (mut last_s0, mut last_s1) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    for i in 0..MAX_STEPS_LOG_A_FRAC {
        let fi = i as f64;
        let log_coef = log_comb(alpha, fi);
        let j = alpha - fi;

        let log_t0 = log_coef + fi * log_q + j * log1mq;
        let log_t1 = log_coef + j * log_q + fi * log1mq;

        let log_e0 = log_half + log_erfc((fi - z0) / sqrt2_sigma);
        let log_e1 = log_half + log_erfc((z0 - j) / sqrt2_sigma);

        let log_s0 = log_t0 + (fi * fi - fi) / two_s2 + log_e0;
        let log_s1 = log_t1 + (j * j - j) / two_s2 + log_e1;

        log_a0 = log_add(log_a0, log_s0);
        log_a1 = log_add(log_a1, log_s1);

        let total = log_add(log_a0, log_a1);

        // Terminate when both s0 and s1 are decreasing and small relative to the total.
        if log_s0 < last_s0 && log_s1 < last_s1 && log_s0.max(log_s1) < total - 30.0 {
            return total;
        }
        last_s0 = log_s0;
        last_s1 = log_s1;
    }
    f64::INFINITY
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_grid_has_the_reference_shape() {
        let o = default_orders();
        assert_eq!(o.len(), DEFAULT_ORDERS_LEN);
        assert_eq!(o[0], 1.1);
        assert_eq!(o[9], 2.0);
        assert_eq!(o[98], 10.9);
        assert_eq!(o[99], 11.0);
        assert_eq!(o[151], 63.0);
        assert_eq!(&o[152..], &[128.0, 256.0, 512.0, 1024.0]);
        assert!(o.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn special_cases() -> Result<(), DpError> {
        let o = [1.5, 2.0, 32.0];
        assert_eq!(rdp_sampled_gaussian(0.0, 0.0, &o)?, vec![0.0; 3]);
        assert!(rdp_sampled_gaussian(0.5, 0.0, &o)?.iter().all(|r| r.is_infinite()));
        assert_eq!(rdp_sampled_gaussian(1.0, 2.0, &o)?, vec![1.5 / 8.0, 2.0 / 8.0, 4.0]);
        assert!(rdp_sampled_gaussian(1.5, 1.0, &o).is_err());
        assert!(rdp_sampled_gaussian(f64::NAN, 1.0, &o).is_err());
        assert!(rdp_sampled_gaussian(0.5, -1.0, &o).is_err());
        assert!(rdp_sampled_gaussian(0.5, 1.0, &[1.0]).is_err());
        assert!(rdp_sampled_gaussian(0.5, 1.0, &[]).is_err());
        Ok(())
    }

    #[test]
    fn integer_order_two_has_a_closed_form() -> Result<(), DpError> {
        // A_2 = 1 + q²(e^{1/σ²} − 1) for the sampled Gaussian.
        let (q, sigma) = (0.1f64, 1.5f64);
        let want = (q * q * ((1.0 / (sigma * sigma)).exp() - 1.0)).ln_1p();
        let got = rdp_sampled_gaussian(q, sigma, &[2.0])?[0];
        assert!(((got - want) / want).abs() < 1e-13, "{got} vs {want}");
        Ok(())
    }
}
