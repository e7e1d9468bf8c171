//! `consentry audit`: check the ledger, every live model's consent and withdrawals, commitments and DP
//! records — online from the data directory, or offline from an exported evidence bundle.

use super::ledger::{self as ledger_cmd, ledger_err};
use super::policy_text;
use crate::ui::{Ctx, OK, bad_input};
use consentry_audit::{AuditError, AuditOptions, ExportInput, RegistryModels, Report};
use consentry_ledger::{Ledger, PublicKey, SignedTreeHead};
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
    /// Judge deadlines at this time: RFC 3339, YYYY-MM-DD or Unix seconds [default: now].
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,
    /// The ledger's public key as you obtained it (ledger.pub); a bundle signed by another key fails.
    #[arg(long, value_name = "FILE")]
    pub public_key: Option<PathBuf>,
    /// Signed tree heads you saw before (JSON: one head or an array); the log must still extend them.
    #[arg(long, value_name = "FILE")]
    pub heads: Option<PathBuf>,
}

fn audit_err(e: AuditError) -> anyhow::Error {
    if e.is_bad_input() { bad_input(e.to_string()) } else { anyhow::Error::new(e) }
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(Command::Export { out }) => export(ctx, &out),
        None => check(ctx, &args.check),
    }
}

/// The models to audit, what the registry cites and the model directories it does not know
/// (`RegistryModels::load`).
fn models(ctx: &Ctx) -> anyhow::Result<RegistryModels> {
    let reg = super::lineage::open_registry_read_only(ctx)?;
    RegistryModels::load(&reg, &ctx.data).map_err(audit_err)
}

/// Runs `f` on what the audit reads of the data directory: its ledger, the policy in force and the models.
fn with_input<T>(
    ctx: &Ctx,
    ledger: &Ledger,
    now: i64,
    f: impl FnOnce(&ExportInput<'_>) -> Result<T, AuditError>,
) -> anyhow::Result<T> {
    let policy = policy_text(ctx, None)?;
    let source = models(ctx)?;
    let input = ExportInput {
        data_dir: &ctx.data,
        store: ledger.store(),
        public_key: ledger.public_key(),
        policy_text: &policy.text,
        models: &source,
        now,
    };
    f(&input).map_err(audit_err)
}

fn export(ctx: &Ctx, out: &Path) -> anyhow::Result<ExitCode> {
    consentry_audit::check_export_target(out).map_err(audit_err)?;
    let ledger = ledger_cmd::open_read_only(ctx)?;
    let summary =
        with_input(ctx, &ledger, chrono::Utc::now().timestamp(), |input| consentry_audit::export(input, out))?;
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

fn read_heads(path: &Path) -> anyhow::Result<Vec<SignedTreeHead>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| bad_input(format!("cannot read --heads {}: {e}", path.display())))?;
    if let Ok(v) = serde_json::from_str::<Vec<SignedTreeHead>>(&text) {
        return Ok(v);
    }
    serde_json::from_str::<SignedTreeHead>(&text)
        .map(|h| vec![h])
        .map_err(|e| bad_input(format!("--heads {}: not a signed tree head or an array of them: {e}", path.display())))
}

fn check(ctx: &Ctx, args: &CheckArgs) -> anyhow::Result<ExitCode> {
    if let Some(d) = args.deadline
        && d < 0
    {
        return Err(bad_input("--deadline is a number of seconds ≥ 0"));
    }
    let now = match &args.now {
        Some(t) => ledger_cmd::parse_time(t)?,
        None => chrono::Utc::now().timestamp(),
    };
    let public_key = match &args.public_key {
        Some(p) => Some(PublicKey::load(p).map_err(ledger_err)?),
        None => None,
    };
    let known_heads = match &args.heads {
        Some(p) => read_heads(p)?,
        None => Vec::new(),
    };
    let opts =
        AuditOptions { now, deadline_seconds: args.deadline, model: args.model.clone(), public_key, known_heads };
    let report = match &args.offline {
        Some(dir) => consentry_audit::audit_bundle(dir, &opts).map_err(audit_err)?,
        None => online(ctx, &ledger_cmd::open_read_only(ctx)?, &opts)?,
    };
    print(ctx, &report)?;
    Ok(if report.ok { OK } else { ExitCode::from(1) })
}

/// Audits the data directory's ledger, datasets and models as they are now; shared with `demo`.
pub fn online(ctx: &Ctx, ledger: &Ledger, opts: &AuditOptions) -> anyhow::Result<Report> {
    with_input(ctx, ledger, opts.now, |input| consentry_audit::audit_online(input, opts))
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
