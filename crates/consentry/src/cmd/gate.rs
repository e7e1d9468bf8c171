//! `consentry gate …`: materialise a purpose's training set, verify one, merge partials.

use super::ledger::{self, ledger_err};
use crate::ui::{self, Ctx, OK, bad_input};
use anyhow::Context;
use clap::{Args as ClapArgs, Subcommand};
use consentry_gate::materialize::{GateOptions, GateRequest, build_detector};
use consentry_gate::{GateError, Manifest, Sources};
use consentry_ledger::Ledger;
use consentry_ledger::snapshot::Snapshot;
use consentry_lineage::registry::short;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The name manifests record for the built-in declaration of the synthetic network.
pub const BUILTIN_SOURCES: &str = "synthetic network (built in)";

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
    /// Worker threads [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
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
    },
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(Command::Verify { dir, sources, base }) => verify(ctx, &dir, sources.as_deref(), base.as_deref()),
        Some(Command::Merge { partials, out }) => {
            let m = consentry_gate::merge(&partials, &out, chrono::Utc::now().timestamp()).map_err(gate_err)?;
            let id = register_dataset(ctx, &m, &out)?;
            report(ctx, &m, &out, None, id.as_deref())?;
            Ok(OK)
        }
        None => materialize(ctx, args.run),
    }
}

/// Maps gate errors to exit codes: the caller's fault is bad input (2).
fn gate_err(e: GateError) -> anyhow::Error {
    if e.is_bad_input() { bad_input(e.to_string()) } else { anyhow::Error::new(e) }
}

/// Loads a declaration: a file, or the built-in one over DATA/network; returns it with the BLAKE3 of its text.
pub fn load_sources(ctx: &Ctx, file: Option<&Path>, base: Option<&Path>) -> anyhow::Result<(Sources, String)> {
    let (name, text, dir) = match file {
        Some(f) => {
            let text = std::fs::read_to_string(f)
                .map_err(|e| bad_input(format!("cannot read source declaration {}: {e}", f.display())))?;
            let dir = f.parent().map(Path::to_path_buf).unwrap_or_default();
            (declaration_name(ctx, f), text, dir)
        }
        None => (BUILTIN_SOURCES.to_string(), consentry_gate::sources::SYNTHETIC.to_string(), ctx.data_path("network")),
    };
    let base = base.map(Path::to_path_buf).unwrap_or(dir);
    let sources = Sources::parse(&name, &text, &base).map_err(gate_err)?;
    Ok((sources, blake3::hash(text.as_bytes()).to_hex().to_string()))
}

/// How a manifest names a declaration file: relative to the data directory when inside it (the data directory
/// can move), else absolute (verification can run from any working directory). [`declaration_path`] reverses it.
fn declaration_name(ctx: &Ctx, file: &Path) -> String {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let (file, data) = (abs(file), abs(&ctx.data));
    match file.strip_prefix(&data) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
        _ => file.display().to_string(),
    }
}

/// The declaration file a manifest names: a relative name is inside the data directory.
fn declaration_path(ctx: &Ctx, name: &str) -> PathBuf {
    let p = PathBuf::from(name);
    if p.is_relative() { ctx.data.join(p) } else { p }
}

fn parse_partition(s: &str) -> anyhow::Result<(u32, u32)> {
    let bad = || bad_input(format!("--partition `{s}`: write I/N with 0 ≤ I < N, e.g. 0/4"));
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (u32, u32) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

fn options(threads: Option<usize>, shards: u32, partition: Option<(u32, u32)>) -> GateOptions {
    let mut o = GateOptions { shards, partition, ..GateOptions::default() };
    if let Some(t) = threads {
        o.threads = t.max(1);
    }
    o
}

fn materialize(ctx: &Ctx, a: RunArgs) -> anyhow::Result<ExitCode> {
    let purpose = a.purpose.ok_or_else(|| bad_input("--purpose is required (or use `gate verify` / `gate merge`)"))?;
    let out = a.out.ok_or_else(|| bad_input("--out DIR is required: where to write the dataset"))?;
    consentry_gate::check_output(&out).map_err(gate_err)?;
    let partition = a.partition.as_deref().map(parse_partition).transpose()?;
    if partition.is_some() && a.at.is_none() {
        return Err(bad_input(
            "--partition needs --at SEQ|TIME so that every partition is cut from the same ledger state",
        ));
    }
    let (sources, declaration_hash) = load_sources(ctx, a.sources.as_deref(), a.base.as_deref())?;
    let ledger = ledger::open(ctx)?;
    let snap = ledger::snapshot(&ledger, &purpose, a.at.as_deref())?;
    let (manifest, seconds) =
        run_gate(ctx, &ledger, &sources, declaration_hash, &snap, &out, options(a.threads, a.shards, partition))?;
    let id = register_dataset(ctx, &manifest, &out)?;
    report(ctx, &manifest, &out, Some(seconds), id.as_deref())?;
    Ok(OK)
}

/// Materialises one purpose's dataset from a snapshot into `out`; shared with `demo`.
pub fn run_gate(
    ctx: &Ctx,
    ledger: &Ledger,
    sources: &Sources,
    declaration_hash: String,
    snap: &Snapshot,
    out: &Path,
    options: GateOptions,
) -> anyhow::Result<(Manifest, f64)> {
    let checkpoint = ledger.checkpoint_covering(snap.position()).map_err(ledger_err)?;
    let (detector, names) = build_detector(sources).map_err(gate_err)?;
    let req = GateRequest {
        policy: ledger.policy(),
        snapshot: snap,
        checkpoint: Some(checkpoint),
        sources,
        declaration_hash,
        detector: Some(&detector),
        member_names: names,
        options,
        created: chrono::Utc::now().timestamp(),
    };
    let bars = ctx.progress();
    let outcome = consentry_gate::materialize(&req, Some(out), &bars)
        .map_err(gate_err)
        .with_context(|| format!("materialising {} into {}", snap.purpose_key(), out.display()))?;
    bars.finish();
    Ok((outcome.manifest, outcome.seconds))
}

/// Records a complete dataset in the lineage registry (a partial result is not a dataset until merged); its id.
pub fn register_dataset(ctx: &Ctx, m: &Manifest, out: &Path) -> anyhow::Result<Option<String>> {
    if m.partition.is_some() {
        return Ok(None);
    }
    let rec = super::lineage::open_registry(ctx)?
        .register_dataset_dir(out)
        .map_err(super::lineage::lineage_err)
        .with_context(|| format!("registering {} in the lineage registry", out.display()))?;
    Ok(Some(rec.id))
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
    let (m, mut diffs) = consentry_gate::verify_files(dir).map_err(gate_err)?;
    let file = match sources {
        Some(f) => Some(f.to_path_buf()),
        None if m.sources.declaration == BUILTIN_SOURCES => None,
        None => Some(declaration_path(ctx, &m.sources.declaration)),
    };
    let (sources, declaration_hash) = load_sources(ctx, file.as_deref(), base)?;
    let ledger = ledger::open_read_only(ctx)?;
    // A dataset evaluated in the future (or after the log moved on) is not recomputed: that would only repeat it.
    let times = consentry_gate::verify_times(&m, ledger.store(), consentry_ledger::now()).map_err(gate_err)?;
    if times.is_empty() {
        let snap = snapshot_at(&ledger, &m)?;
        let (detector, names) = build_detector(&sources).map_err(gate_err)?;
        let req = GateRequest {
            policy: ledger.policy(),
            snapshot: &snap,
            checkpoint: m.ledger.checkpoint.clone(),
            sources: &sources,
            declaration_hash,
            detector: m.redaction.enabled.then_some(&detector),
            member_names: names,
            options: GateOptions::default(),
            created: m.created,
        };
        diffs.extend(consentry_gate::verify_recompute(&m, req).map_err(gate_err)?);
    }
    diffs.extend(times);
    if let Some(c) = &m.ledger.checkpoint
        && !ledger.public_key().verify(c)
    {
        diffs.push(consentry_gate::Difference {
            what: "checkpoint signature".into(),
            expected: "signed by this ledger's key".into(),
            found: "invalid".into(),
        });
    }
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
        for d in &diffs {
            eprintln!("  - {d}");
        }
    }
    Ok(if ok { OK } else { ExitCode::from(1) })
}

/// The snapshot at the manifest's ledger position and time.
fn snapshot_at(ledger: &Ledger, m: &Manifest) -> anyhow::Result<Snapshot> {
    let pid = ledger
        .policy()
        .purpose_id(&m.purpose)
        .ok_or_else(|| bad_input(format!("the policy in force has no purpose `{}`", m.purpose)))?;
    let len = ledger.store().len().map_err(ledger_err)?;
    if m.ledger.position > len {
        return Err(bad_input(format!(
            "the manifest names ledger position {}, but this ledger holds {len} events: wrong --data?",
            m.ledger.position
        )));
    }
    ledger.snapshot(pid, m.ledger.position, m.ledger.at).map_err(ledger_err)
}
