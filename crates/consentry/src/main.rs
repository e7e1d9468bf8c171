//! `consentry`: train AI on member data only with explicit consent, and prove it.
//!
//! Exit codes: 0 success, 1 a check found a failure (or the run failed),
//! 2 bad input or usage.

mod cmd;
mod ui;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Train AI on member data only with explicit consent, and prove it.
///
/// Every command works on a data directory (default ./consentry-data) that holds
/// the policy in force, the generated network and, in later stages, the ledger,
/// datasets and models. Exit codes: 0 ok, 1 a check failed, 2 bad input or usage.
#[derive(Parser)]
#[command(name = "consentry", version, about, long_about, propagate_version = true)]
struct Cli {
    /// The data directory every command works on.
    #[arg(long, global = true, env = "CONSENTRY_DATA", default_value = "consentry-data", value_name = "DIR")]
    data: PathBuf,
    /// Put the ledger on PostgreSQL (postgres://user@host/db) instead of SQLite in the data directory.
    #[arg(long, global = true, env = "CONSENTRY_DATABASE", value_name = "URL")]
    database: Option<String>,
    /// The ledger's secret signing key, kept outside the data directory (another disk, a secrets mount) [default:
    /// DIR/ledger.key]. Must not be readable by group or others (chmod 600).
    #[arg(long, global = true, env = "CONSENTRY_SIGNING_KEY", value_name = "FILE")]
    signing_key: Option<PathBuf>,
    /// Print nothing but errors (and the result, with --json).
    #[arg(long, short, global = true)]
    quiet: bool,
    /// Machine-readable JSON on standard output instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// Refuse an output file given as a symbolic link (by default the link is followed and stays a link).
    #[arg(long, global = true)]
    no_follow: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole pipeline on a synthetic network in the data directory.
    Demo(cmd::demo::Args),
    /// Generate a synthetic professional network as Parquet files.
    Synth(cmd::synth::Args),
    /// Validate or display a consent policy file; exchange it with Fides.
    #[command(subcommand)]
    Policy(cmd::policy::Command),
    /// Replace PII in free text by typed placeholders (<EMAIL>, <PERSON_1>), or list spans as JSONL.
    Redact(cmd::redact::Args),
    /// The consent ledger: init, import, append, checkpoints, verification, receipts, snapshots.
    #[command(subcommand)]
    Ledger(cmd::ledger::Command),
    /// Materialise a purpose's training set from consented rows only (+ `gate verify`, `gate merge`).
    Gate(cmd::gate::Args),
    /// Train one of the three models on a gated dataset, one model per shard.
    Train(cmd::train::TrainArgs),
    /// Rank jobs or posts for a member with a trained model.
    Recommend(cmd::train::RecommendArgs),
    /// Suggest up to three short replies to a message with a trained replies model.
    SuggestReplies(cmd::train::SuggestArgs),
    /// Differential privacy: ε of a DP-SGD run (to check a model's claim), or σ for a target ε.
    #[command(subcommand)]
    Dp(cmd::dp::DpCmd),
    /// The registry of datasets and models: where a member's data went, what a model rests on, registration.
    #[command(subcommand)]
    Lineage(cmd::lineage::Command),
    /// Turn withdrawals in the ledger into exact shard retrains of the live models (once, or --watch).
    Unlearn(cmd::unlearn::Args),
    /// Audit ledger, consent of every live model's members, withdrawal deadlines, commitments and DP
    /// records (online, or `--offline DIR` from an evidence bundle; `audit export --out DIR` writes one).
    Audit(cmd::audit::Args),
    /// Write the privacy officer's report: one self-contained HTML file (coverage, exclusions, model quality, DP,
    /// privacy loss, unlearning, audit, how to verify), or its figures with --json.
    Report(cmd::report::Args),
    /// Run the HTTP service on the data directory: members read and change their own consent under /v1/me/.
    Serve(cmd::serve::Args),
    /// Mint a member bearer token for the service (`Authorization: Bearer …`).
    Token(cmd::token::Args),
    /// API keys for operators and auditors of the service: create (shown once), revoke, list.
    #[command(subcommand)]
    Keys(cmd::keys::Command),
    /// A witness: cosigns a log's checkpoints only when they extend what it cosigned before (catches forks).
    #[command(subcommand)]
    Witness(cmd::witness::Command),
}

/// A closed pipe (`consentry lineage models | head -1`) ends the program quietly, as it does other
/// Unix tools: Rust ignores SIGPIPE by default, which turns every later write to standard output
/// into an error and `println!` into a panic.
#[allow(unsafe_code)] // one libc call; the workspace denies unsafe code everywhere else but the gate's SIMD kernels
fn default_sigpipe() {
    // SAFETY: called first thing in `main`, before any other thread exists; SIG_DFL is a valid
    // disposition for SIGPIPE and no handler of ours is replaced.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    consentry_app::arm_fail_points();
    default_sigpipe();
    let cli = Cli::parse();
    let mut ctx = ui::Ctx::new(cli.data, cli.database, cli.quiet, cli.json);
    ctx.dir = ctx.dir.clone().with_signing_key(cli.signing_key);
    ctx.follow_links = !cli.no_follow;
    let result = match cli.command {
        Command::Demo(args) => cmd::demo::run(&ctx, args),
        Command::Synth(args) => cmd::synth::run(&ctx, args),
        Command::Policy(c) => cmd::policy::run(&ctx, c),
        Command::Redact(args) => cmd::redact::run(&ctx, args),
        Command::Ledger(c) => cmd::ledger::run(&ctx, c),
        Command::Gate(args) => cmd::gate::run(&ctx, args),
        Command::Train(args) => cmd::train::run_train(&ctx, args),
        Command::Recommend(args) => cmd::train::run_recommend(&ctx, args),
        Command::SuggestReplies(args) => cmd::train::run_suggest(&ctx, args),
        Command::Dp(c) => cmd::dp::run(&ctx, c),
        Command::Lineage(c) => cmd::lineage::run(&ctx, c),
        Command::Unlearn(args) => cmd::unlearn::run(&ctx, args),
        Command::Audit(args) => cmd::audit::run(&ctx, args),
        Command::Report(args) => cmd::report::run(&ctx, args),
        Command::Serve(args) => cmd::serve::run(&ctx, args),
        Command::Token(args) => cmd::token::run(&ctx, args),
        Command::Keys(c) => cmd::keys::run(&ctx, c),
        Command::Witness(c) => cmd::witness::run(&ctx, c),
    };
    match result {
        Ok(code) => code,
        Err(e) => ui::report_error(&e, ctx.color, ctx.json),
    }
}
