//! `consentry train`, `consentry recommend`, `consentry suggest-replies`: the three AI features on gated datasets.

use crate::ui::{self, Ctx, bad_input};
use clap::{Args as ClapArgs, ValueEnum};
use consentry_app::train::{Registration, TrainRequest};
use consentry_learn::train::{ModelKind, TrainOptions};
use std::path::PathBuf;
use std::process::ExitCode;

/// The model families, by command-line name.
#[derive(Clone, Copy, ValueEnum)]
pub enum Kind {
    /// Job recommendations (purpose train_ai_system.job_recommendations).
    JobRecs,
    /// Feed and content suggestions (train_ai_system.content_suggestions).
    Content,
    /// Reply suggestions (train_ai_system.reply_suggestions).
    Replies,
    /// Any interactions table the dataset holds (--table, --item-column), on the dataset's purpose.
    Items,
}

impl Kind {
    fn model(self) -> ModelKind {
        match self {
            Kind::JobRecs => ModelKind::JobRecs,
            Kind::Content => ModelKind::Content,
            Kind::Replies => ModelKind::Replies,
            Kind::Items => ModelKind::Items,
        }
    }
}

/// Train one of the three models, or a recommender over any interactions table, on a gated dataset, one model per
/// shard.
#[derive(ClapArgs)]
pub struct TrainArgs {
    /// The dataset directory written by `consentry gate` [default: DATA/datasets/<purpose>].
    #[arg(long, value_name = "DIR")]
    dataset: Option<PathBuf>,
    /// Do not record the model in the lineage registry (by default it is, when the data directory has a ledger),
    /// so no withdrawal will ever unlearn it.
    #[arg(long)]
    no_register: bool,
    /// Which model.
    #[arg(long, value_enum)]
    model: Kind,
    /// Items: the interactions table (one the dataset holds).
    #[arg(long, value_name = "T", required_if_eq("model", "items"))]
    table: Option<String>,
    /// Items: the item id column (integer or string ids).
    #[arg(long, value_name = "C", required_if_eq("model", "items"))]
    item_column: Option<String>,
    /// Items: the member-id column the rows are about [default: the table's first declared member column].
    #[arg(long, value_name = "C", requires = "table")]
    member_column: Option<String>,
    /// Items: a numeric weight per interaction [default: 1 per row].
    #[arg(long, value_name = "W", requires = "table")]
    weight_column: Option<String>,
    /// Items: a timestamp column; each member's latest interactions are held out [default: a fixed hashed sample].
    #[arg(long, value_name = "X", requires = "table")]
    time_column: Option<String>,
    /// Number of shards [default: the dataset manifest's shard function, 8].
    #[arg(long)]
    shards: Option<u32>,
    /// Seed of everything random; the same seed and data give byte-identical shard files.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Output model directory (must not exist) [default: DATA/models/<model>].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Worker threads [default: all cores]; never changes the model.
    #[arg(long)]
    threads: Option<usize>,
    /// Latent factors (recommenders).
    #[arg(long)]
    factors: Option<usize>,
    /// ALS iterations (recommenders).
    #[arg(long)]
    iterations: Option<usize>,
    /// Share of each member's latest activity held out for evaluation (0 trains on everything).
    #[arg(long)]
    holdout: Option<f64>,
    /// Replies: a response needs at least this many distinct members.
    #[arg(long, default_value_t = 20)]
    k_anonymity: usize,
    /// Train with differential privacy at this target ε (job-recs: joint DP; replies: DP-SGD); without it the
    /// model records "no formal bound".
    #[arg(long, value_name = "E")]
    dp_epsilon: Option<f64>,
    /// δ of the DP guarantee [default: min(1/N^1.1, 1e-6) for the dataset's N members].
    #[arg(long, value_name = "D", requires = "dp_epsilon")]
    dp_delta: Option<f64>,
    /// Clipping bound C on each member's contribution (job-recs: on ‖s‖² of the token profile; replies: on the
    /// summed gradient's L2 norm).
    #[arg(long, value_name = "C", default_value_t = 1.0, requires = "dp_epsilon")]
    clip: f64,
    /// Replies: DP-SGD steps.
    #[arg(long, value_name = "T", default_value_t = 50, requires = "dp_epsilon")]
    dp_steps: u32,
    /// Replies: Poisson sampling rate of members per DP-SGD step.
    #[arg(long, value_name = "Q", default_value_t = 0.5, requires = "dp_epsilon")]
    dp_sample_rate: f64,
    /// The secret key every DP draw is keyed by (created when missing; never copied into a model)
    /// [default: DATA/dp-noise.key].
    #[arg(long, value_name = "FILE", requires = "dp_epsilon")]
    dp_key: Option<PathBuf>,
    /// Send OpenLineage run events (START, then COMPLETE or FAIL) here: file:///path/events.jsonl (or a
    /// plain path) appends one JSON event per line, http://host:port/api/v1/lineage POSTs each (no https: use a
    /// local collector or the file) [env: CONSENTRY_OPENLINEAGE; without either, OPENLINEAGE_URL (+
    /// OPENLINEAGE_ENDPOINT, OPENLINEAGE_API_KEY) as the OpenLineage clients read it; OPENLINEAGE_NAMESPACE names
    /// the job namespace]. A failed send only warns.
    #[arg(long, value_name = "FILE|URL")]
    openlineage: Option<String>,
}

/// `consentry train`.
pub fn run_train(ctx: &Ctx, a: TrainArgs) -> anyhow::Result<ExitCode> {
    let kind = a.model.model();
    let mut opts = TrainOptions::new(kind);
    opts.shards = a.shards;
    opts.seed = a.seed;
    opts.threads = a.threads.unwrap_or(0);
    if let Some(f) = a.factors {
        opts.rec.factors = f;
    }
    if let Some(i) = a.iterations {
        opts.rec.iterations = i;
    }
    if let Some(h) = a.holdout {
        opts.rec.holdout = h;
        opts.replies.holdout = h;
    }
    opts.replies.k = a.k_anonymity;
    match (kind, a.table, a.item_column) {
        (ModelKind::Items, Some(table), Some(item)) => {
            let mut spec = consentry_learn::items::ItemsSpec::new(&table, &item);
            spec.member_column = a.member_column;
            spec.weight_column = a.weight_column;
            spec.time_column = a.time_column;
            opts.items = Some(spec);
        }
        (ModelKind::Items, _, _) => return Err(bad_input("--model items needs --table T and --item-column C")),
        (_, Some(_), _) | (_, _, Some(_)) => {
            return Err(bad_input("--table and --item-column choose an items model's columns: add --model items"));
        }
        _ => {}
    }
    if let Some(e) = a.dp_epsilon {
        let key = a.dp_key.unwrap_or_else(|| ctx.dir.dp_key_file());
        let key = std::path::absolute(&key).unwrap_or(key);
        let mut d = consentry_learn::dp::DpOptions::new(e, key);
        d.delta = a.dp_delta;
        d.clip = a.clip;
        d.steps = a.dp_steps;
        d.sample_rate = a.dp_sample_rate;
        opts.dp = Some(d);
    }
    let session = ctx.lineage_session(a.openlineage.as_deref())?;
    let bars = ctx.progress();
    let t = session
        .train(TrainRequest { dataset: a.dataset, out: a.out, register: !a.no_register, options: opts }, &bars)?;
    bars.finish();
    let meta = &t.report.meta;
    if ctx.json {
        ctx.print_json(meta)?;
    } else {
        ctx.say(format!(
            "trained {} on {} ({} members, {} shards) in {:.1} s → {}",
            kind.name(),
            t.dataset.display(),
            ui::thousands(meta.dataset.members),
            meta.shards.len(),
            meta.train_seconds,
            t.out.display()
        ));
        print_metrics(ctx, &meta.kind, &meta.metrics);
        print_privacy(ctx, meta);
        match &t.registration {
            Registration::Registered(id) => ctx.say(format!(
                "registered as model {}: withdrawals from {} now reach it (`consentry unlearn`)",
                consentry_lineage::registry::short(id),
                meta.purpose
            )),
            Registration::NotRequested => {
                ctx.say("not registered (--no-register): withdrawals will not reach this model")
            }
            Registration::NoLedger => ctx.say(format!(
                "not registered: {} has no ledger; run `consentry lineage register-model {}` where the ledger is",
                ctx.dir.root().display(),
                t.out.display()
            )),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints a model's privacy claim in one or two lines.
pub fn print_privacy(ctx: &Ctx, meta: &consentry_learn::model::ModelMeta) {
    use consentry_learn::dp::PrivacyClaim;
    match meta.privacy_claim() {
        Ok(PrivacyClaim::None) => ctx.say("privacy: no formal bound (trained without differential privacy)"),
        Ok(PrivacyClaim::Dp(c)) => {
            ctx.say(format!(
                "privacy: ({:.4}, {:.1e})-DP per member ({}), σ = {:.4}, q = {}, steps = {}, C = {}, {} conversion",
                c.epsilon, c.delta, c.unit, c.sigma, c.q, c.steps, c.clip, c.conversion
            ));
            ctx.say(format!("check: {}", c.check));
        }
        Err(e) => ctx.say(format!("privacy: unreadable record ({e})")),
    }
}

/// Prints a model's evaluation as a table.
pub fn print_metrics(ctx: &Ctx, kind: &str, m: &serde_json::Value) {
    if !ctx.human() {
        return;
    }
    let f = |v: &serde_json::Value| v.as_f64().map_or("–".to_string(), |x| format!("{x:.3}"));
    if kind == "replies" {
        let ci = |r: &serde_json::Value, key: &str| share_cell(&r[key], &r[format!("{key}_ci")]);
        let mut t = ui::table(&["replies", "top-1", "top-3", "coverage", "pairs"]);
        for row in ["model", "most_frequent", "oracle"] {
            let r = &m[row];
            if r.is_null() {
                continue;
            }
            t.add_row(vec![
                row.replace('_', " "),
                ci(r, "top1"),
                ci(r, "top3"),
                f(&r["coverage"]),
                r["pairs"].as_u64().map_or("–".into(), ui::thousands),
            ]);
        }
        let ratio = &m["model_over_oracle"];
        if !ratio.is_null() {
            let (top1, top3) = (ratio_cell(&ratio["top1"]), ratio_cell(&ratio["top3"]));
            t.add_row(vec!["model ÷ oracle".into(), top1, top3, "".into(), "".into()]);
        }
        ui::align_numbers(&mut t);
        ctx.say(t.to_string());
        return;
    }
    let cols = ["recall_at_10", "recall_at_20", "ndcg_at_10"];
    let mut t = ui::table(&[kind, "Recall@10", "Recall@20", "NDCG@10", "members"]);
    for row in ["model", "popularity", "oracle"] {
        let r = &m[row];
        if r.is_null() {
            continue;
        }
        let mut cells = vec![row.to_string()];
        cells.extend(cols.iter().map(|c| share_cell(&r[*c], &r["ci"][*c])));
        cells.push(r["members"].as_u64().map_or("–".into(), ui::thousands));
        t.add_row(cells);
    }
    for (row, label) in [("model_of_oracle", "model ÷ oracle"), ("popularity_of_oracle", "popularity ÷ oracle")] {
        let r = &m[row];
        if r.is_null() {
            continue;
        }
        let mut cells = vec![label.to_string()];
        cells.extend(cols.iter().map(|c| ratio_cell(&r[*c])));
        cells.push(String::new());
        t.add_row(cells);
    }
    ui::align_numbers(&mut t);
    ctx.say(t.to_string());
}

/// A share with half its 95 % interval's width when the model recorded one (`0.305 ±0.021`), else the share alone.
fn share_cell(v: &serde_json::Value, ci: &serde_json::Value) -> String {
    match (v.as_f64(), ci["lo"].as_f64(), ci["hi"].as_f64()) {
        (Some(v), Some(lo), Some(hi)) => format!("{v:.3} ±{:.3}", (hi - lo) / 2.0),
        (v, _, _) => v.map_or("–".to_string(), |x| format!("{x:.3}")),
    }
}

/// A ratio to the oracle with its interval (`0.81 [0.78, 0.83]`): a paired ratio is not symmetric, so both ends show.
fn ratio_cell(x: &serde_json::Value) -> String {
    match (x["value"].as_f64(), x["lo"].as_f64(), x["hi"].as_f64()) {
        (Some(v), Some(lo), Some(hi)) => format!("{v:.2} [{lo:.2}, {hi:.2}]"),
        _ => "–".to_string(),
    }
}

/// Rank jobs or posts for a member with a trained model.
#[derive(ClapArgs)]
pub struct RecommendArgs {
    /// The model directory written by `consentry train`.
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// The member id.
    #[arg(long)]
    member: u64,
    /// How many items.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Serve a model the lineage registry does not know (an experiment outside the data directory): no
    /// withdrawal will ever reach it. Models inside the data directory are served only when registered and live.
    #[arg(long)]
    unregistered: bool,
}

/// `consentry recommend`.
pub fn run_recommend(ctx: &Ctx, a: RecommendArgs) -> anyhow::Result<ExitCode> {
    let r = ctx.read_only_session()?.recommend(&a.model, a.member, a.k, a.unregistered)?;
    let (meta, items, micros) = (&r.meta, &r.items, r.micros);
    if ctx.json {
        let v: Vec<_> = items
            .iter()
            .enumerate()
            .map(|(n, (i, s))| match r.names.get(n).cloned().flatten() {
                Some(name) => serde_json::json!({"item": i, "name": name, "score": s}),
                None => serde_json::json!({"item": i, "score": s}),
            })
            .collect();
        ctx.print_json(&serde_json::json!({"model": meta.kind, "member": a.member, "items": v, "micros": micros}))?;
        return Ok(ExitCode::SUCCESS);
    }
    let what = match meta.kind.as_str() {
        "job-recs" => "job",
        "items" => "item",
        _ => "post",
    };
    let mut tab = ui::table(&["rank", what, "score"]);
    for (n, (i, s)) in items.iter().enumerate() {
        let name = r.names.get(n).cloned().flatten().unwrap_or_else(|| i.to_string());
        tab.add_row(vec![(n + 1).to_string(), name, format!("{s:.4}")]);
    }
    ui::align_numbers(&mut tab);
    ctx.say(format!("top {} {what}s for member {} ({} shards, {micros} µs)", items.len(), a.member, meta.shards.len()));
    ctx.say(tab.to_string());
    Ok(ExitCode::SUCCESS)
}

/// Suggest up to three short replies to a message.
#[derive(ClapArgs)]
pub struct SuggestArgs {
    /// The replies model directory.
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// The incoming message.
    #[arg(long)]
    text: String,
    /// How many suggestions (one per intent).
    #[arg(long, default_value_t = 3)]
    n: usize,
    /// Serve a model the lineage registry does not know (an experiment outside the data directory): no
    /// withdrawal will ever reach it. Models inside the data directory are served only when registered and live.
    #[arg(long)]
    unregistered: bool,
}

/// `consentry suggest-replies`.
pub fn run_suggest(ctx: &Ctx, a: SuggestArgs) -> anyhow::Result<ExitCode> {
    let s = ctx.read_only_session()?.suggest_replies(&a.model, &a.text, a.n, a.unregistered)?;
    if ctx.json {
        ctx.print_json(&s)?;
        return Ok(ExitCode::SUCCESS);
    }
    if s.is_empty() {
        ctx.say("no suggestion: the message is unlike anything the model can answer with confidence");
    }
    for (i, x) in s.iter().enumerate() {
        ctx.say(format!("{}. {}  (intent {}, {:.2})", i + 1, x.text, x.intent, x.score));
    }
    Ok(ExitCode::SUCCESS)
}
