//! `consentry synth`: generate a synthetic professional network.

use crate::ui::{self, Ctx, OK};
use chrono::NaiveDate;
use consentry_app::synth::Generated;
use consentry_synth::SynthConfig;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
    let out = args.out.clone().unwrap_or_else(|| ctx.dir.network_dir());
    let cfg = SynthConfig { members: args.members, seed: args.seed, as_of: args.as_of };
    let bars = ctx.progress();
    let generated = ctx.dir.generate_network(&cfg, args.policy.as_deref(), &out, &bars)?;
    bars.finish();
    print_generated(ctx, &generated, &out);
    if ctx.json {
        ctx.print_json(&generated.summary)?;
    }
    Ok(OK)
}

/// Prints the table of files and the throughput; shared with `demo`.
pub fn print_generated(ctx: &Ctx, generated: &Generated, out: &Path) {
    if !ctx.human() {
        return;
    }
    let (summary, secs) = (&generated.summary, generated.seconds);
    let cfg = &summary.config;
    let rows: u64 = summary.tables.iter().map(|t| t.rows).sum();
    let mut t = ui::table(&["table", "rows", "MiB"]);
    for info in &summary.tables {
        t.add_row(vec![info.name.clone(), ui::thousands(info.rows), format!("{:.1}", info.bytes as f64 / 1048576.0)]);
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
