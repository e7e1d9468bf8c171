//! `consentry gate …`: materialise a purpose's training set, verify one, merge partials.

use crate::ui::{self, Ctx, OK, bad_input};
use clap::{Args as ClapArgs, Subcommand};
use consentry_app::gate::{GateRun, options, parse_partition};
use consentry_app::ledger::parse_at;
use consentry_gate::Manifest;
use consentry_lineage::registry::short;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(ClapArgs)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(ClapArgs)]
pub struct RunArgs {
    /// Purpose key, e.g. train_ai_system.job_recommendations.
    #[arg(long)]
    purpose: Option<String>,
    /// A ledger sequence number, or a time (RFC 3339 or YYYY-MM-DD) [default: now, the whole log].
    #[arg(long, value_name = "SEQ|TIME")]
    at: Option<String>,
    /// Source declaration (TOML) [default: the synthetic network's, over DATA/network].
    #[arg(long, value_name = "FILE")]
    sources: Option<PathBuf>,
    /// Directory relative source paths resolve against [default: the declaration's directory, or DATA/network].
    #[arg(long, value_name = "DIR")]
    base: Option<PathBuf>,
    /// Output dataset directory (must not exist).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Process only share I of N of the input files and write a partial result for `gate merge` (needs --at).
    #[arg(long, value_name = "I/N")]
    partition: Option<String>,
    /// Number of training shards in the shard function.
    #[arg(long, default_value_t = consentry_gate::manifest::DEFAULT_SHARDS)]
    shards: u32,
    /// Size the shard function for this withdrawal deadline (seconds) instead of --shards: as many shards as still
    /// shrink one withdrawal's retrain, while a retrain of all of them fits a quarter of the deadline (a power of
    /// two, 8 to 1024, at least 2,000 members each; bench/learn/SHARDS.md has the rule and its costs).
    #[arg(long, value_name = "SECS", conflicts_with = "shards")]
    deadline: Option<i64>,
    /// Worker threads [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Send OpenLineage run events (START, then COMPLETE or FAIL) here: file:///path/events.jsonl (or a
    /// plain path) appends one JSON event per line, http://host:port/api/v1/lineage POSTs each (no https: use a
    /// local collector or the file) [env: CONSENTRY_OPENLINEAGE; without either, OPENLINEAGE_URL (+
    /// OPENLINEAGE_ENDPOINT, OPENLINEAGE_API_KEY) as the OpenLineage clients read it; OPENLINEAGE_NAMESPACE names
    /// the job namespace]. A failed send only warns.
    #[arg(long, value_name = "FILE|URL")]
    openlineage: Option<String>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Recompute a dataset from the ledger and the sources and compare: exit 0 identical, 1 differences found.
    Verify {
        /// The dataset directory.
        dir: PathBuf,
        /// Source declaration [default: the one the manifest names].
        #[arg(long, value_name = "FILE")]
        sources: Option<PathBuf>,
        /// Directory relative source paths resolve against.
        #[arg(long, value_name = "DIR")]
        base: Option<PathBuf>,
    },
    /// Combine the partial results of `gate --partition I/N` into one dataset.
    Merge {
        /// The partial result directories, all N of them.
        #[arg(required = true)]
        partials: Vec<PathBuf>,
        /// Output dataset directory (must not exist).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Send OpenLineage run events (START, then COMPLETE or FAIL) here: file:///path/events.jsonl (or a
        /// plain path) appends one JSON event per line, http://host:port/api/v1/lineage POSTs each (no https: use a
        /// local collector or the file) [env: CONSENTRY_OPENLINEAGE; without either, OPENLINEAGE_URL (+
        /// OPENLINEAGE_ENDPOINT, OPENLINEAGE_API_KEY) as the OpenLineage clients read it; OPENLINEAGE_NAMESPACE names
        /// the job namespace]. A failed send only warns.
        #[arg(long, value_name = "FILE|URL")]
        openlineage: Option<String>,
    },
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(Command::Verify { dir, sources, base }) => verify(ctx, &dir, sources.as_deref(), base.as_deref()),
        Some(Command::Merge { partials, out, openlineage }) => {
            let g = ctx.lineage_session(openlineage.as_deref())?.gate_merge(&partials, &out)?;
            report(ctx, &g.manifest, &out, None, g.dataset_id.as_deref())?;
            Ok(OK)
        }
        None => materialize(ctx, args.run),
    }
}

fn materialize(ctx: &Ctx, a: RunArgs) -> anyhow::Result<ExitCode> {
    let purpose = a.purpose.ok_or_else(|| bad_input("--purpose is required (or use `gate verify` / `gate merge`)"))?;
    let out = a.out.ok_or_else(|| bad_input("--out DIR is required: where to write the dataset"))?;
    let partition = a.partition.as_deref().map(parse_partition).transpose()?;
    let at = parse_at(a.at.as_deref())?;
    let run = GateRun {
        purpose,
        at,
        sources: a.sources,
        base: a.base,
        out: out.clone(),
        options: options(a.threads, a.shards, partition),
        deadline_secs: a.deadline,
    };
    let session = ctx.lineage_session(a.openlineage.as_deref())?;
    let bars = ctx.progress();
    let g = session.gate(run, &bars)?;
    bars.finish();
    report(ctx, &g.manifest, &out, g.seconds, g.dataset_id.as_deref())?;
    Ok(OK)
}

fn report(ctx: &Ctx, m: &Manifest, out: &Path, seconds: Option<f64>, id: Option<&str>) -> anyhow::Result<()> {
    if ctx.json {
        return ctx.print_json(&serde_json::json!({
            "out": out, "dataset_id": id, "purpose": m.purpose, "rows_in": m.rows_in, "rows_out": m.rows_out,
            "excluded": m.excluded, "redactions": m.redactions, "members": m.members.count,
            "partition": m.partition, "position": m.ledger.position, "seconds": seconds,
            "tables": m.tables.iter().map(|(k, t)| (k.clone(), serde_json::json!({
                "included": t.included, "rows_in": t.rows_in, "rows_out": t.rows_out,
                "excluded": t.excluded, "parties_dropped": t.parties_dropped, "columns": t.columns,
            }))).collect::<serde_json::Map<_, _>>(),
        }));
    }
    let part = m.partition.map(|p| format!(" (partition {}/{})", p.index, p.count)).unwrap_or_default();
    ctx.say(format!(
        "{}{part} at ledger position {}: {} of {} rows kept, {} members → {}{}",
        m.purpose,
        m.ledger.position,
        ui::thousands(m.rows_out),
        ui::thousands(m.rows_in),
        ui::thousands(m.members.count),
        out.display(),
        seconds.map(|s| format!(" in {s:.1} s")).unwrap_or_default()
    ));
    if let Some(id) = id {
        ctx.say(format!("registered as dataset {} (`consentry lineage member ID` shows who is in it)", short(id)));
    }
    let mut t = ui::table(&["table", "rows in", "rows out", "excluded", "parties dropped", "columns"]);
    for (name, s) in &m.tables {
        if !s.included {
            t.add_row(vec![
                name.clone(),
                "–".into(),
                "–".into(),
                "–".into(),
                "–".into(),
                "(no category of the purpose)".into(),
            ]);
            continue;
        }
        let excluded: u64 = s.excluded.values().sum();
        t.add_row(vec![
            name.clone(),
            ui::thousands(s.rows_in),
            ui::thousands(s.rows_out),
            ui::thousands(excluded),
            ui::thousands(s.parties_dropped),
            s.columns.join(", "),
        ]);
    }
    ui::align_numbers(&mut t);
    ctx.say(t.to_string());
    if !m.excluded.is_empty() {
        let v: Vec<String> = m.excluded.iter().map(|(k, v)| format!("{k} {}", ui::thousands(*v))).collect();
        ctx.say(format!("excluded by reason: {}", v.join(", ")));
    }
    if !m.redactions.is_empty() {
        let v: Vec<String> = m.redactions.iter().map(|(k, v)| format!("{k} {}", ui::thousands(*v))).collect();
        ctx.say(format!("redacted: {}", v.join(", ")));
    }
    Ok(())
}

fn verify(ctx: &Ctx, dir: &Path, sources: Option<&Path>, base: Option<&Path>) -> anyhow::Result<ExitCode> {
    let v = ctx.read_only_session()?.gate_verify(dir, sources, base)?;
    let (m, diffs) = (&v.manifest, &v.differences);
    let ok = diffs.is_empty();
    if ctx.json {
        ctx.print_json(&serde_json::json!({"ok": ok, "purpose": m.purpose, "differences": diffs}))?;
    } else if ok {
        ctx.say(format!(
            "ok: {} ({} rows, {} members) is exactly what the rules produce at ledger position {}; files match the manifest",
            dir.display(),
            ui::thousands(m.rows_out),
            ui::thousands(m.members.count),
            m.ledger.position
        ));
    } else {
        eprintln!("FAILED: {} differs from what the rules produce ({} differences):", dir.display(), diffs.len());
        for d in diffs {
            eprintln!("  - {d}");
        }
    }
    Ok(if ok { OK } else { ExitCode::from(1) })
}
