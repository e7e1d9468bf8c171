//! `consentry train`, `consentry recommend`, `consentry suggest-replies`: the three AI features on gated datasets.

use crate::ui::{self, Ctx, bad_input};
use clap::{Args as ClapArgs, ValueEnum};
use consentry_learn::LearnError;
use consentry_learn::train::{ModelKind, TrainOptions, TrainReport, load_recommender};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// The model families, by command-line name.
#[derive(Clone, Copy, ValueEnum)]
pub enum Kind {
    /// Job recommendations (purpose train_ai_system.job_recommendations).
    JobRecs,
    /// Feed and content suggestions (train_ai_system.content_suggestions).
    Content,
    /// Reply suggestions (train_ai_system.reply_suggestions).
    Replies,
}

impl Kind {
    fn model(self) -> ModelKind {
        match self {
            Kind::JobRecs => ModelKind::JobRecs,
            Kind::Content => ModelKind::Content,
            Kind::Replies => ModelKind::Replies,
        }
    }
}

/// Train one of the three models on a gated dataset, one model per shard.
#[derive(ClapArgs)]
pub struct TrainArgs {
    /// The dataset directory written by `consentry gate` [default: DATA/datasets/<purpose>].
    #[arg(long, value_name = "DIR")]
    dataset: Option<PathBuf>,
    /// Which model.
    #[arg(long, value_enum)]
    model: Kind,
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
}

fn learn_err(e: LearnError) -> anyhow::Error {
    if e.is_bad_input() { bad_input(e.to_string()) } else { anyhow::Error::new(e) }
}

/// The default dataset directory of a model kind.
pub fn default_dataset(ctx: &Ctx, kind: ModelKind) -> PathBuf {
    let purpose = kind.purpose();
    ctx.data_path("datasets").join(purpose.rsplit('.').next().unwrap_or(purpose))
}

/// Trains with a progress bar over shards.
pub fn train_model(ctx: &Ctx, dataset: &Path, out: &Path, opts: &TrainOptions) -> anyhow::Result<TrainReport> {
    let shards = u64::from(opts.shards.unwrap_or(8));
    let bar = if ctx.human() && !ctx.quiet {
        let b = ProgressBar::new(shards).with_prefix(format!("train {}", opts.kind.name()));
        b.set_style(
            ProgressStyle::with_template("{prefix:>16} [{bar:30.cyan/blue}] {pos}/{len} shards ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let r = consentry_learn::train(dataset, out, opts, &|_| bar.inc(1)).map_err(learn_err);
    bar.finish_and_clear();
    r
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
    let dataset = a.dataset.unwrap_or_else(|| default_dataset(ctx, kind));
    let out = a.out.unwrap_or_else(|| ctx.data_path("models").join(kind.name()));
    let r = train_model(ctx, &dataset, &out, &opts)?;
    if ctx.json {
        ctx.print_json(&r.meta)?;
    } else {
        ctx.say(format!(
            "trained {} on {} ({} members, {} shards) in {:.1} s → {}",
            kind.name(),
            dataset.display(),
            ui::thousands(r.meta.dataset.members),
            r.meta.shards.len(),
            r.meta.train_seconds,
            out.display()
        ));
        print_metrics(ctx, &r.meta.kind, &r.meta.metrics);
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints a model's evaluation as a table.
pub fn print_metrics(ctx: &Ctx, kind: &str, m: &serde_json::Value) {
    if !ctx.human() {
        return;
    }
    let f = |v: &serde_json::Value| v.as_f64().map_or("–".to_string(), |x| format!("{x:.3}"));
    if kind == "replies" {
        let mut t = ui::table(&["replies", "top-1", "top-3", "coverage", "pairs"]);
        for row in ["model", "most_frequent"] {
            let r = &m[row];
            t.add_row(vec![
                row.replace('_', " "),
                f(&r["top1"]),
                f(&r["top3"]),
                f(&r["coverage"]),
                r["pairs"].as_u64().map_or("–".into(), ui::thousands),
            ]);
        }
        ui::align_numbers(&mut t);
        ctx.say(t.to_string());
        return;
    }
    let mut t = ui::table(&[kind, "Recall@10", "Recall@20", "NDCG@10", "members"]);
    for row in ["model", "popularity"] {
        let r = &m[row];
        t.add_row(vec![
            row.to_string(),
            f(&r["recall_at_10"]),
            f(&r["recall_at_20"]),
            f(&r["ndcg_at_10"]),
            r["members"].as_u64().map_or("–".into(), ui::thousands),
        ]);
    }
    ui::align_numbers(&mut t);
    ctx.say(t.to_string());
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
}

/// `consentry recommend`.
pub fn run_recommend(ctx: &Ctx, a: RecommendArgs) -> anyhow::Result<ExitCode> {
    if a.k == 0 {
        return Err(bad_input("--k must be at least 1"));
    }
    require_dir(&a.model)?;
    let (meta, rec) = load_recommender(&a.model).map_err(learn_err)?;
    let t = Instant::now();
    let items = rec.recommend(a.member, a.k).map_err(learn_err)?;
    let micros = t.elapsed().as_micros();
    if ctx.json {
        let v: Vec<_> = items.iter().map(|(i, s)| serde_json::json!({"item": i, "score": s})).collect();
        ctx.print_json(&serde_json::json!({"model": meta.kind, "member": a.member, "items": v, "micros": micros}))?;
        return Ok(ExitCode::SUCCESS);
    }
    let what = if meta.kind == "job-recs" { "job" } else { "post" };
    let mut tab = ui::table(&["rank", what, "score"]);
    for (r, (i, s)) in items.iter().enumerate() {
        tab.add_row(vec![(r + 1).to_string(), i.to_string(), format!("{s:.4}")]);
    }
    ui::align_numbers(&mut tab);
    ctx.say(format!("top {} {what}s for member {} ({} shards, {micros} µs)", items.len(), a.member, meta.shards.len()));
    ctx.say(tab.to_string());
    Ok(ExitCode::SUCCESS)
}

/// Make sure a directory given as a model exists before loading.
pub fn require_dir(p: &Path) -> anyhow::Result<()> {
    if !p.is_dir() {
        return Err(bad_input(format!(
            "{} is not a directory; pass a model written by `consentry train`",
            p.display()
        )));
    }
    Ok(())
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
}

/// `consentry suggest-replies`.
pub fn run_suggest(ctx: &Ctx, a: SuggestArgs) -> anyhow::Result<ExitCode> {
    require_dir(&a.model)?;
    let model = consentry_learn::replies::ShardedReplies::load(&a.model).map_err(learn_err)?;
    let s = model.suggest(&a.text, a.n);
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
