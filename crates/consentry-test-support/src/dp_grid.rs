//! Compares consentry-dp with reference values written by `bench/dp/compare.py` (dp_accounting).
//! Shared by consentry-dp's `tests/reference.rs` (the committed fixture) and `examples/compare.rs`
//! (the full bench grid).

use consentry_dp::{Accountant, Conversion, rdp};
use serde_json::Value;

/// Our ε may sit below dp_accounting's by at most this much, relative.
pub const BELOW_TOLERANCE: f64 = 1e-6;

/// The outcome of one comparison run.
#[derive(Debug, Default)]
pub struct Report {
    /// (q, σ, steps, δ) points whose ε was compared, to show the grid was covered.
    pub points: usize,
    /// RDP curves compared order by order.
    pub curves: usize,
    /// Single RDP values compared over all curves.
    pub rdp_values: usize,
    /// Largest relative ε difference with the improved conversion: the headline agreement figure.
    pub max_rel_eps_improved: f64,
    /// Largest relative ε difference with the classic conversion.
    pub max_rel_eps_classic: f64,
    /// Largest relative difference of one RDP value.
    pub max_rel_rdp: f64,
    /// The point behind the largest ε difference, so a regression can be replayed.
    pub worst: String,
    /// Points where our ε is below the reference by more than [`BELOW_TOLERANCE`].
    pub below: Vec<String>,
    /// Disagreements on which orders are infinite (dropped), or on the optimal order.
    pub mismatches: Vec<String>,
    /// Points whose one-step curve has orders the reference drops (fractional series not settled in 1000 terms).
    pub points_with_dropped_orders: usize,
    /// Of those, points whose optimal order is the first order above a dropped one (the drop may cost tightness).
    pub optimum_next_to_dropped: usize,
    /// Orders the reference drops across all curves (counted, not compared).
    pub dropped_orders_in_curves: usize,
}

fn num(v: &Value, key: &str) -> Result<f64, String> {
    match v.get(key) {
        Some(Value::Null) => Ok(f64::INFINITY),
        Some(x) => x.as_f64().ok_or_else(|| format!("{key} is not a number")),
        None => Err(format!("missing {key}")),
    }
}

fn rel(ours: f64, reference: f64) -> f64 {
    if ours == reference {
        0.0
    } else if reference.is_infinite() || ours.is_infinite() {
        f64::INFINITY
    } else {
        (ours - reference).abs() / reference.abs().max(f64::MIN_POSITIVE)
    }
}

/// Runs every point and curve of a reference file.
pub fn compare(doc: &Value) -> Result<Report, String> {
    let mut r = Report::default();
    let grid = rdp::default_orders();
    let ref_orders: Vec<f64> = doc["meta"]["orders"]
        .as_array()
        .ok_or("meta.orders missing")?
        .iter()
        .map(|o| o.as_f64().ok_or("bad order"))
        .collect::<Result<_, _>>()?;
    if ref_orders != grid {
        return Err("the reference's DEFAULT_RDP_ORDERS differ from ours".into());
    }
    for c in doc["curves"].as_array().ok_or("curves missing")? {
        let (q, sigma) = (num(c, "q")?, num(c, "sigma")?);
        let orders: Vec<f64> = c["orders"].as_array().ok_or("orders")?.iter().filter_map(Value::as_f64).collect();
        let want: Vec<f64> =
            c["rdp"].as_array().ok_or("rdp")?.iter().map(|x| x.as_f64().unwrap_or(f64::INFINITY)).collect();
        let got = rdp::rdp_sampled_gaussian(q, sigma, &orders).map_err(|e| e.to_string())?;
        r.curves += 1;
        for ((o, g), w) in orders.iter().zip(&got).zip(&want) {
            r.rdp_values += 1;
            if w.is_infinite() {
                r.dropped_orders_in_curves += 1;
            }
            if g.is_infinite() != w.is_infinite() {
                r.mismatches.push(format!("rdp q={q} σ={sigma} α={o}: ours {g}, dp_accounting {w}"));
                continue;
            }
            let d = rel(*g, *w);
            if d > r.max_rel_rdp {
                r.max_rel_rdp = d;
            }
        }
    }
    for p in doc["points"].as_array().ok_or("points missing")? {
        let (q, sigma, delta) = (num(p, "q")?, num(p, "sigma")?, num(p, "delta")?);
        let steps = p["steps"].as_u64().ok_or("steps")?;
        let acc = Accountant::sampled_gaussian(q, sigma, steps).map_err(|e| e.to_string())?;
        r.points += 1;
        let dropped: Vec<usize> =
            acc.rdp().iter().enumerate().filter(|(_, x)| x.is_infinite()).map(|(i, _)| i).collect();
        let finite_somewhere = acc.rdp().iter().any(|x| x.is_finite());
        if !dropped.is_empty() && finite_somewhere {
            r.points_with_dropped_orders += 1;
        }
        for (conv, key, okey) in [
            (Conversion::Improved, "eps_improved", "order_improved"),
            (Conversion::Classic, "eps_classic", "order_classic"),
        ] {
            let g = acc.epsilon(delta, conv).map_err(|e| e.to_string())?;
            let (want, want_order) = (num(p, key)?, num(p, okey)?);
            let label = format!(
                "q={q} σ={sigma} T={steps} δ={delta} {conv}: ours {} (α={}), dp_accounting {want} (α={want_order})",
                g.epsilon, g.order
            );
            let d = rel(g.epsilon, want);
            if d.is_infinite() {
                r.mismatches.push(label.clone());
            }
            let slot =
                if conv == Conversion::Improved { &mut r.max_rel_eps_improved } else { &mut r.max_rel_eps_classic };
            if d > *slot {
                *slot = d;
                if d >= r.max_rel_eps_improved.max(r.max_rel_eps_classic) {
                    r.worst = label.clone();
                }
            }
            if want.is_finite() && want > 0.0 && (want - g.epsilon) / want > BELOW_TOLERANCE {
                r.below.push(label.clone());
            }
            if g.order != want_order && want.is_finite() && d > 1e-12 {
                r.mismatches.push(format!("optimal order differs: {label}"));
            }
            if let Some(i) = grid.iter().position(|o| *o == g.order)
                && i > 0
                && dropped.contains(&(i - 1))
                && conv == Conversion::Improved
            {
                r.optimum_next_to_dropped += 1;
            }
        }
    }
    Ok(r)
}

impl Report {
    /// A few lines for people.
    pub fn summary(&self) -> String {
        format!(
            "{} points, {} one-step curves ({} RDP values) vs dp_accounting\n\
             max relative difference: ε improved {:.3e}, ε classic {:.3e}, RDP {:.3e}\n\
             worst: {}\n\
             points where our ε is below the reference by > {BELOW_TOLERANCE:e}: {}\n\
             mismatches (dropped orders / optimal order): {}\n\
             orders dp_accounting drops (fractional series unsettled after 1000 terms; both sides give +∞): \
             {} of {} curve values; {} points have some, at {} of them the improved optimum sits right above a dropped order",
            self.points,
            self.curves,
            self.rdp_values,
            self.max_rel_eps_improved,
            self.max_rel_eps_classic,
            self.max_rel_rdp,
            self.worst,
            self.below.len(),
            self.mismatches.len(),
            self.dropped_orders_in_curves,
            self.rdp_values,
            self.points_with_dropped_orders,
            self.optimum_next_to_dropped,
        )
    }
}
