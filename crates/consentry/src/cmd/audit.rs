//! `consentry audit`: check the ledger, every live model's consent and withdrawals, commitments and DP
//! records — online from the data directory, or offline from an exported evidence bundle.

use crate::ui::{Ctx, OK};
use consentry_app::AppError;
use consentry_app::ledger::parse_time;
use consentry_audit::{AuditOptions, Report};
use consentry_ledger::PublicKey;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub check: CheckArgs,
}

#[derive(clap::Subcommand)]
pub enum Command {
    /// Write an evidence bundle (signed tree heads, events, member facts, policy, public key, manifests,
    /// bitmaps, model metadata, live models and deadline, an index of BLAKE3s) for `audit --offline`.
    Export {
        /// The bundle directory to create (must not exist).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

/// What to check and against what.
#[derive(clap::Args)]
pub struct CheckArgs {
    /// Audit an exported evidence bundle, without the database or the service.
    #[arg(long, value_name = "DIR")]
    pub offline: Option<PathBuf>,
    /// Audit only this model (a directory name under DATA/models) and its dataset.
    #[arg(long, value_name = "ID")]
    pub model: Option<String>,
    /// Seconds a withdrawn member may remain in a live model [default: the deadline in force, 24 h].
    #[arg(long, value_name = "SECS")]
    pub deadline: Option<i64>,
    /// Seconds past the deadline to accept before a withdrawn member's presence or late removal is a violation.
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub tolerance: i64,
    /// Judge deadlines at this time: RFC 3339, YYYY-MM-DD or Unix seconds [default: now].
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,
    /// The ledger's public key as you obtained it (ledger.pub); a bundle signed by another key fails.
    #[arg(long, value_name = "FILE")]
    pub public_key: Option<PathBuf>,
    /// Signed tree heads you saw before (JSON: one head or an array); the log must still extend them.
    #[arg(long, value_name = "FILE")]
    pub heads: Option<PathBuf>,
    /// Witnesses whose cosignatures the newest signed tree head must carry (online, or offline from the bundle).
    #[command(flatten)]
    pub witnesses: crate::cmd::witness::WitnessArgs,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(Command::Export { out }) => export(ctx, &out),
        None => check(ctx, &args.check),
    }
}

fn export(ctx: &Ctx, out: &Path) -> anyhow::Result<ExitCode> {
    let summary = ctx.read_only_session()?.export_bundle(out)?;
    if ctx.json {
        ctx.print_json(&summary)?;
    } else {
        ctx.say(format!(
            "evidence bundle → {}: {} events, {} signed tree heads, {} members, {} datasets, {} models, {} files\n\
             check it anywhere with `consentry audit --offline {}`",
            out.display(),
            summary.events,
            summary.checkpoints,
            summary.members,
            summary.datasets.len(),
            summary.models.len(),
            summary.files,
            out.display()
        ));
    }
    Ok(OK)
}

fn check(ctx: &Ctx, args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let now = match &args.now {
        Some(t) => parse_time(t)?,
        None => chrono::Utc::now().timestamp(),
    };
    let public_key = match &args.public_key {
        Some(p) => Some(PublicKey::load(p).map_err(AppError::from)?),
        None => None,
    };
    let known_heads = match &args.heads {
        Some(p) => consentry_app::audit::read_heads(p)?,
        None => Vec::new(),
    };
    let opts = AuditOptions {
        now,
        deadline_seconds: args.deadline,
        tolerance_seconds: args.tolerance,
        model: args.model.clone(),
        public_key,
        known_heads,
        witnesses: args.witnesses.policy()?,
    };
    let report = match &args.offline {
        Some(dir) => consentry_app::audit::audit_bundle(dir, &opts)?,
        None => ctx.read_only_session()?.audit(&opts)?,
    };
    print(ctx, &report)?;
    Ok(if report.ok { OK } else { ExitCode::from(1) })
}

/// Prints a report: JSON, violations only when quiet, else the rendered text.
pub fn print(ctx: &Ctx, report: &Report) -> anyhow::Result<()> {
    if ctx.json {
        ctx.print_json(report)?;
    } else if ctx.quiet {
        for f in report.violations() {
            eprintln!("violation {}: {} (expected {}, found {})", f.kind.as_str(), f.message, f.expected, f.found);
        }
    } else {
        print!("{}", report.render());
    }
    Ok(())
}
