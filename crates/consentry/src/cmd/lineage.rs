//! `consentry lineage …`: the registry of datasets and models, and where a member's data went.

use crate::ui::{self, Ctx, OK};
use clap::Subcommand;
use consentry_app::Session;
use consentry_lineage::registry::{format_time, short};
use consentry_lineage::{ModelRecord, ModelStatus, UnlearningRequest};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum Command {
    /// Where a member's data went: every dataset, model version and shard, under which consent event, and the
    /// status now ("removed by unlearning at …").
    Member {
        /// Member id.
        id: u64,
    },
    /// One model version: dataset, members per shard, the consent events it rests on, runs and unlearning.
    Model {
        /// Model id (BLAKE3 of its model.json), or its first 6+ hex digits.
        id: String,
    },
    /// List registered model versions.
    Models {
        /// Only this purpose.
        #[arg(long)]
        purpose: Option<String>,
        /// Only this status.
        #[arg(long, value_parser = ["live", "superseded", "retired"])]
        status: Option<String>,
    },
    /// Register a gated dataset from its directory (idempotent: the id is its manifest's BLAKE3).
    RegisterDataset {
        /// The dataset directory (with manifest.json).
        dir: PathBuf,
    },
    /// Register a trained model from its directory (checks every file; registers its dataset if needed).
    RegisterModel {
        /// The model directory (with model.json).
        dir: PathBuf,
        /// Deadline in seconds for unlearning members who withdrew after the dataset was gated.
        #[arg(long, default_value_t = consentry_lineage::registry::DEFAULT_DEADLINE_SECS, value_name = "SECS")]
        deadline: i64,
    },
    /// Take a model version out of service for good (closes its unlearning requests).
    Retire {
        /// Model id or prefix.
        id: String,
    },
    /// Unlearning requests still open (pending, or past their deadline), or every one with --all.
    Requests {
        /// Every request, completed ones included.
        #[arg(long)]
        all: bool,
    },
}

pub fn run(ctx: &Ctx, cmd: Command) -> anyhow::Result<ExitCode> {
    let read_only = matches!(cmd, Command::Member { .. } | Command::Model { .. } | Command::Models { .. });
    let session = if read_only { ctx.read_only_session()? } else { ctx.session()? };
    // Opened before anything else, so a data directory without a ledger says so first.
    session.registry()?;
    match cmd {
        Command::Member { id } => member(ctx, &session, id),
        Command::Model { id } => model(ctx, &session, &id),
        Command::Models { purpose, status } => {
            let status = status.as_deref().and_then(ModelStatus::parse);
            let models = session.models(purpose.as_deref(), status)?;
            if ctx.json {
                ctx.print_json(&models)?;
            } else {
                print_models(ctx, &models);
            }
            Ok(OK)
        }
        Command::RegisterDataset { dir } => {
            let d = session.register_dataset(&dir)?;
            if ctx.json {
                ctx.print_json(&d)?;
            } else {
                ctx.say(format!(
                    "dataset {} registered: {}, {} members at ledger position {}",
                    short(&d.id),
                    d.purpose,
                    ui::thousands(d.members),
                    d.ledger_position
                ));
            }
            Ok(OK)
        }
        Command::RegisterModel { dir, deadline } => {
            let r = session.register_model(&dir, deadline)?;
            let (m, waiting) = (&r.model, r.unlearning_requests_opened);
            if ctx.json {
                ctx.print_json(&r)?;
            } else {
                ctx.say(format!(
                    "model {} registered: {} v{} for {}, {}, dataset {}",
                    short(&m.id),
                    m.kind,
                    m.version,
                    m.purpose,
                    m.status,
                    short(&m.dataset)
                ));
                if waiting > 0 {
                    ctx.say(format!(
                        "{waiting} member(s) withdrew after its dataset was gated: run `consentry unlearn` to remove them"
                    ));
                }
            }
            Ok(OK)
        }
        Command::Retire { id } => {
            let m = session.retire(&id)?;
            if ctx.json {
                ctx.print_json(&m)?;
            } else {
                ctx.say(format!("model {} ({} v{}) is retired", short(&m.id), m.kind, m.version));
            }
            Ok(OK)
        }
        Command::Requests { all } => {
            let reqs = session.unlearning_requests(all)?;
            if ctx.json {
                ctx.print_json(&reqs)?;
            } else {
                print_requests(ctx, &reqs);
            }
            Ok(OK)
        }
    }
}

fn member(ctx: &Ctx, session: &Session, id: u64) -> anyhow::Result<ExitCode> {
    let l = session.member_lineage(id)?;
    if ctx.json {
        ctx.print_json(&l)?;
        return Ok(OK);
    }
    ctx.say(format!("member {id}: {} dataset(s), {} model version(s)", l.datasets.len(), l.models.len()));
    if !l.facts.is_empty() {
        let mut t = ui::table(&["facts entry", "jurisdiction", "birth date", "recorded", "by"]);
        for f in &l.facts {
            t.add_row(vec![
                format!("#{}", f.seq),
                f.jurisdiction.clone(),
                f.birth_date.to_string(),
                format_time(f.recorded_time),
                f.actor.clone(),
            ]);
        }
        ctx.say(t.to_string());
    }
    if !l.datasets.is_empty() {
        let mut t = ui::table(&["dataset", "purpose", "ledger position", "created"]);
        for d in &l.datasets {
            t.add_row(vec![
                short(&d.dataset).to_string(),
                d.purpose.clone(),
                d.ledger_position.to_string(),
                format_time(d.created),
            ]);
        }
        ctx.say(t.to_string());
    }
    if !l.models.is_empty() {
        let mut t = ui::table(&["model", "kind", "version", "shard", "consent event", "trained", "status"]);
        for m in &l.models {
            let consent = match (m.consent_event, m.consent_time) {
                (Some(s), Some(at)) => format!("#{s} ({})", format_time(at)),
                (Some(s), None) => format!("#{s}"),
                _ => "jurisdiction default".into(),
            };
            t.add_row(vec![
                short(&m.model).to_string(),
                m.kind.clone(),
                m.version.to_string(),
                m.shard.to_string(),
                consent,
                format_time(m.trained),
                m.state.clone(),
            ]);
        }
        ctx.say(t.to_string());
    }
    let p = &l.privacy;
    if !p.lines.is_empty() || !p.without_bound.is_empty() {
        let mut t = ui::table(&["privacy loss", "ε", "δ"]);
        for x in &p.lines {
            t.add_row(vec![
                format!("model line {}", short(&x.model)),
                format!("{:.3}", x.epsilon),
                format!("{:.1e}", x.delta),
            ]);
        }
        for x in &p.without_bound {
            t.add_row(vec![format!("model line {}", short(x)), "no formal bound (no DP)".into(), "–".into()]);
        }
        if let Some(c) = &p.cumulative {
            let eps = |e: f64| if e.is_finite() { format!("{e:.3}") } else { "∞".into() };
            t.add_row(vec![
                format!("total over {} DP line(s): basic / RDP composition", c.models),
                format!("{} / {}", eps(c.basic_epsilon), eps(c.rdp_epsilon)),
                format!("{:.1e}", c.delta),
            ]);
        }
        ctx.say(t.to_string());
    }
    Ok(OK)
}

fn model(ctx: &Ctx, session: &Session, id: &str) -> anyhow::Result<ExitCode> {
    let l = session.model_lineage(id)?;
    if ctx.json {
        ctx.print_json(&l)?;
        return Ok(OK);
    }
    let m = &l.model;
    ctx.say(format!("model {} — {} v{} for {}, {}", m.id, m.kind, m.version, m.purpose, m.status));
    ctx.say(format!(
        "dataset {} ({} members, ledger position {}), trained {}",
        short(&l.dataset.id),
        ui::thousands(l.dataset.members),
        l.dataset.ledger_position,
        format_time(m.created)
    ));
    if let Some(p) = &m.supersedes {
        ctx.say(format!("supersedes {}", short(p)));
    }
    if let Some(n) = &l.superseded_by {
        ctx.say(format!("superseded by {}", short(n)));
    }
    let range = match (l.events.first(), l.events.last()) {
        (Some(a), Some(b)) => format!(" (#{a}..#{b})"),
        _ => String::new(),
    };
    ctx.say(format!(
        "rests on {} consent event(s){range}; {} member(s) by jurisdiction default",
        ui::thousands(l.events.len() as u64),
        ui::thousands(l.members_without_event)
    ));
    let mut t = ui::table(&["shard", "members", "rows", "file BLAKE3"]);
    for s in &l.shards {
        t.add_row(vec![
            s.index.to_string(),
            ui::thousands(s.members),
            ui::thousands(s.rows),
            short(&s.file_blake3).into(),
        ]);
    }
    t.add_row(vec!["all".into(), ui::thousands(l.members), String::new(), String::new()]);
    ui::align_numbers(&mut t);
    ctx.say(t.to_string());
    for r in &l.runs {
        ctx.say(format!(
            "run {}: {} shard(s) trained in {:.1} s{}",
            format_time(r.finished),
            r.shards_trained.len(),
            r.seconds,
            if r.cause.is_some() { " (unlearning)" } else { "" }
        ));
    }
    if !l.requests.is_empty() {
        print_requests(ctx, &l.requests);
    }
    Ok(OK)
}

fn print_models(ctx: &Ctx, models: &[ModelRecord]) {
    let mut t = ui::table(&["model", "kind", "version", "status", "dataset", "created"]);
    for m in models {
        t.add_row(vec![
            short(&m.id).to_string(),
            m.kind.clone(),
            m.version.to_string(),
            m.status.to_string(),
            short(&m.dataset).to_string(),
            format_time(m.created),
        ]);
    }
    ctx.say(t.to_string());
}

/// The unlearning request table, shared with `consentry unlearn`.
pub fn print_requests(ctx: &Ctx, reqs: &[UnlearningRequest]) {
    if reqs.is_empty() {
        ctx.say("no unlearning requests");
        return;
    }
    let now = consentry_lineage::now();
    let mut t = ui::table(&["member", "event", "model", "withdrew", "deadline", "status", "completed"]);
    for r in reqs {
        let status = if r.completed_at.is_none() && r.deadline < now {
            format!("{} (overdue)", r.status)
        } else {
            r.status.to_string()
        };
        t.add_row(vec![
            r.member.to_string(),
            format!("#{}", r.event_seq),
            short(&r.model).to_string(),
            format_time(r.requested_at),
            format_time(r.deadline),
            status,
            r.completed_at.map_or_else(String::new, format_time),
        ]);
    }
    ctx.say(t.to_string());
}
