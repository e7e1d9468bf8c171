//! `consentry synth`: generate a synthetic professional network.

use super::load_policy;
use crate::ui::{self, Ctx, OK, bad_input};
use chrono::NaiveDate;
use consentry_synth::{SynthConfig, SynthSummary};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Number of members to generate.
    #[arg(long, default_value_t = 10_000)]
    pub members: u64,
    /// Seed of every random stream: the same seed gives byte-identical files.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output directory [default: DATA/network].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The day the network is observed (YYYY-MM-DD); activity covers the year before.
    #[arg(long, value_name = "DATE", default_value_t = SynthConfig::default_as_of())]
    pub as_of: NaiveDate,
    /// Policy whose purposes the consent choices cover [default: the policy in force].
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let out = args.out.clone().unwrap_or_else(|| ctx.data_path("network"));
    let summary = generate(ctx, &args, &out)?;
    if ctx.json {
        ctx.print_json(&summary)?;
    }
    Ok(OK)
}

/// Generates with progress bars and prints the table of files; shared with `demo`.
pub fn generate(ctx: &Ctx, args: &Args, out: &Path) -> anyhow::Result<SynthSummary> {
    if args.members == 0 {
        return Err(bad_input("--members must be at least 1"));
    }
    let policy = load_policy(ctx, args.policy.as_deref())?;
    let cfg = SynthConfig { members: args.members, seed: args.seed, as_of: args.as_of };
    let bars = ctx.progress();
    let start = Instant::now();
    let summary = consentry_synth::generate(&cfg, &policy, out, &bars).map_err(|e| {
        if e.is_bad_input() {
            bad_input(e.to_string())
        } else {
            anyhow::Error::new(e).context(format!("generating the network into {}", out.display()))
        }
    })?;
    bars.finish();
    let secs = start.elapsed().as_secs_f64();
    let rows: u64 = summary.tables.iter().map(|t| t.rows).sum();
    if ctx.human() {
        let mut t = ui::table(&["table", "rows", "MiB"]);
        for info in &summary.tables {
            t.add_row(vec![
                info.name.clone(),
                ui::thousands(info.rows),
                format!("{:.1}", info.bytes as f64 / 1048576.0),
            ]);
        }
        ui::align_numbers(&mut t);
        println!("{t}");
        println!(
            "{} members, seed {}, as of {}: {} rows in {:.1} s ({} rows/s) → {}",
            ui::thousands(cfg.members),
            cfg.seed,
            cfg.as_of,
            ui::thousands(rows),
            secs,
            ui::thousands((rows as f64 / secs.max(1e-9)) as u64),
            out.display()
        );
    }
    Ok(summary)
}
