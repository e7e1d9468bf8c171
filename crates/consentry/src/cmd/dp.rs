//! `consentry dp epsilon|sigma`: the privacy accountant on the command line, so anyone can check a DP
//! model's claimed (ε, δ) from its training parameters, or plan a run's noise.

use crate::ui::{Ctx, OK, bad_input};
use clap::{Subcommand, ValueEnum};
use consentry_dp::{Accountant, Conversion, DpError, Guarantee, calibrate_sigma, default_delta, default_orders};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum DpCmd {
    /// ε of a DP-SGD run (Poisson-subsampled Gaussian, Rényi DP accountant), to check any model's claim.
    ///
    /// Same order grid and conversions as Google's dp_accounting (RdpAccountant): `improved` is what
    /// dp_accounting reports, `classic` is the bound published results (Abadi et al. 2016) quote.
    /// Example: `consentry dp epsilon --q 0.01 --sigma 4 --steps 10000 --delta 1e-5 --conversion classic`.
    Epsilon(EpsilonArgs),
    /// The smallest noise multiplier σ that keeps a planned DP-SGD run within a target ε.
    Sigma(SigmaArgs),
    /// Re-derive a trained model's privacy claim from the mechanism its model.json records (exit 1 if the
    /// recorded ε is smaller than what the mechanism gives, or the record is inconsistent).
    Model(ModelArgs),
}

#[derive(clap::Args)]
pub struct ModelArgs {
    /// The model directory written by `consentry train`.
    #[arg(long, value_name = "DIR")]
    pub model: std::path::PathBuf,
}

/// The mechanism's parameters and δ, shared by both verbs.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Sampling rate: the probability a member is in a step's batch (a number, or a fraction like 256/60000).
    #[arg(long, value_name = "Q", value_parser = parse_rate)]
    pub q: f64,
    /// Number of training steps.
    #[arg(long, value_name = "T")]
    pub steps: u64,
    /// δ; default min(1/N^1.1, 1e-6) with --members N, else 1e-6.
    #[arg(long, value_name = "D", allow_negative_numbers = true)]
    pub delta: Option<f64>,
    /// Training-set size N in members, to derive the default δ.
    #[arg(long, value_name = "N", conflicts_with = "delta")]
    pub members: Option<u64>,
    /// RDP → (ε, δ) conversion.
    #[arg(long, value_enum, default_value_t = ConversionArg::Improved)]
    pub conversion: ConversionArg,
}

#[derive(clap::Args)]
pub struct EpsilonArgs {
    /// Noise multiplier σ: noise standard deviation over the clipping norm.
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    pub sigma: f64,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(clap::Args)]
pub struct SigmaArgs {
    /// Target ε for the whole run.
    #[arg(long, value_name = "E", allow_negative_numbers = true)]
    pub epsilon: f64,
    #[command(flatten)]
    pub run: RunArgs,
}

/// The conversions, as command-line values.
#[derive(Clone, Copy, ValueEnum)]
pub enum ConversionArg {
    /// ε = min rdp(α) + log(1/δ)/(α−1) (Mironov 2017), as in Abadi et al. 2016 and TF Privacy tutorials.
    Classic,
    /// dp_accounting's compute_epsilon (Canonne–Kamath–Steinke / Balle et al. 2020); never larger.
    Improved,
}

impl From<ConversionArg> for Conversion {
    fn from(c: ConversionArg) -> Self {
        match c {
            ConversionArg::Classic => Conversion::Classic,
            ConversionArg::Improved => Conversion::Improved,
        }
    }
}

/// Accepts `0.004`, `4e-3` or `256/60000`.
fn parse_rate(s: &str) -> Result<f64, String> {
    let bad = || format!("{s:?} is not a number or a fraction like 256/60000");
    let v = match s.split_once('/') {
        Some((a, b)) => {
            let (a, b): (f64, f64) = (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?);
            a / b
        }
        None => s.trim().parse().map_err(|_| bad())?,
    };
    if (0.0..=1.0).contains(&v) { Ok(v) } else { Err(format!("sampling rate {v} is not in [0, 1]")) }
}

pub fn run(ctx: &Ctx, cmd: DpCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        DpCmd::Epsilon(args) => epsilon(ctx, args),
        DpCmd::Sigma(args) => sigma(ctx, args),
        DpCmd::Model(args) => model(ctx, args),
    }
}

fn model(ctx: &Ctx, args: ModelArgs) -> anyhow::Result<ExitCode> {
    use consentry_learn::dp::PrivacyClaim;
    let (_, claim) = ctx.read_only_session()?.privacy_claim(&args.model)?;
    let PrivacyClaim::Dp(c) = claim else {
        if ctx.json {
            ctx.print_json(&serde_json::json!({"model": args.model, "bound": "none"}))?;
        } else {
            ctx.say(format!("{}: no formal bound (trained without differential privacy)", args.model.display()));
        }
        return Ok(OK);
    };
    let checked = c.verify();
    if ctx.json {
        ctx.print_json(&serde_json::json!({
            "model": args.model, "bound": "dp", "claimed_epsilon": c.epsilon, "delta": c.delta,
            "epsilon": checked.as_ref().ok().map(|l| num(l.epsilon)), "holds": checked.is_ok(),
            "error": checked.as_ref().err().map(|e| e.to_string()),
            "q": c.q, "sigma": c.sigma, "steps": c.steps, "clip": c.clip, "conversion": c.conversion.name(),
            "unit": c.unit, "not_covered": c.not_covered,
        }))?;
    } else {
        ctx.say(format!("{}: claims ({}, {:e})-DP — {}", args.model.display(), c.epsilon, c.delta, c.guarantee));
        ctx.say(format!("  unit: {}", c.unit));
        ctx.say(format!(
            "  mechanism: q = {}, σ = {}, {} steps, C = {}, {} conversion",
            c.q, c.sigma, c.steps, c.clip, c.conversion
        ));
        match &checked {
            Ok(l) => ctx.say(format!("  re-derived: ε = {:.6} at δ = {:e} — the claim holds", l.epsilon, l.delta)),
            Err(e) => ctx.say(format!("  FAILS: {e}")),
        }
        ctx.say(format!("  not covered: {}", c.not_covered.join("; ")));
    }
    Ok(if checked.is_ok() { OK } else { ExitCode::from(1) })
}

fn dp_input(e: DpError) -> anyhow::Error {
    bad_input(e.to_string())
}

fn delta_of(run: &RunArgs) -> f64 {
    run.delta.unwrap_or_else(|| default_delta(run.members))
}

fn num(x: f64) -> serde_json::Value {
    if x.is_finite() { serde_json::json!(x) } else { serde_json::Value::Null }
}

fn show(g: &Guarantee) -> String {
    if g.epsilon.is_finite() { format!("{:.6}", g.epsilon) } else { "∞".into() }
}

fn epsilon(ctx: &Ctx, args: EpsilonArgs) -> anyhow::Result<ExitCode> {
    let run = &args.run;
    let delta = delta_of(run);
    let acc = Accountant::sampled_gaussian(run.q, args.sigma, run.steps).map_err(dp_input)?;
    let chosen: Conversion = run.conversion.into();
    let classic = acc.epsilon(delta, Conversion::Classic).map_err(dp_input)?;
    let improved = acc.epsilon(delta, Conversion::Improved).map_err(dp_input)?;
    let g = if chosen == Conversion::Classic { classic } else { improved };
    if ctx.json {
        ctx.print_json(&serde_json::json!({
            "epsilon": num(g.epsilon), "delta": delta, "order": g.order, "conversion": chosen.name(),
            "q": run.q, "sigma": args.sigma, "steps": run.steps,
            "classic": {"epsilon": num(classic.epsilon), "order": classic.order},
            "improved": {"epsilon": num(improved.epsilon), "order": improved.order},
            "accountant": "rdp, Poisson-subsampled Gaussian, dp_accounting default orders",
            "orders": acc.orders().len(),
        }))?;
        return Ok(OK);
    }
    ctx.say(format!("ε = {} at δ = {delta:e}", show(&g)));
    ctx.say(format!(
        "  mechanism:  Poisson-subsampled Gaussian, q = {}, σ = {}, {} steps",
        run.q, args.sigma, run.steps
    ));
    ctx.say(format!(
        "  accountant: Rényi DP over {} orders (dp_accounting's default grid), {chosen} conversion, optimal order α = {}",
        acc.orders().len(),
        g.order
    ));
    let other = if chosen == Conversion::Classic { improved } else { classic };
    ctx.say(format!("  ({} conversion: ε = {} at α = {})", other.conversion, show(&other), other.order));
    Ok(OK)
}

fn sigma(ctx: &Ctx, args: SigmaArgs) -> anyhow::Result<ExitCode> {
    let run = &args.run;
    let delta = delta_of(run);
    let conversion: Conversion = run.conversion.into();
    let sigma = calibrate_sigma(args.epsilon, delta, run.q, run.steps, conversion).map_err(dp_input)?;
    let achieved = Accountant::sampled_gaussian(run.q, sigma, run.steps)
        .and_then(|a| a.epsilon(delta, conversion))
        .map_err(dp_input)?;
    if ctx.json {
        ctx.print_json(&serde_json::json!({
            "sigma": sigma, "target_epsilon": args.epsilon, "epsilon": num(achieved.epsilon), "order": achieved.order,
            "delta": delta, "conversion": conversion.name(), "q": run.q, "steps": run.steps,
            "relative_precision": consentry_dp::SIGMA_REL_PRECISION, "orders": default_orders().len(),
        }))?;
        return Ok(OK);
    }
    ctx.say(format!("σ = {sigma:.6} for ε ≤ {} at δ = {delta:e}", args.epsilon));
    ctx.say(format!(
        "  gives ε = {} ({conversion} conversion, optimal order α = {}) for q = {}, {} steps",
        show(&achieved),
        achieved.order,
        run.q,
        run.steps
    ));
    Ok(OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_as_numbers_or_fractions() {
        assert_eq!(parse_rate("0.01"), Ok(0.01));
        assert_eq!(parse_rate("256/60000"), Ok(256.0 / 60000.0));
        assert!(parse_rate("2").is_err());
        assert!(parse_rate("a/b").is_err());
        assert!(parse_rate("-0.1").is_err());
    }
}
