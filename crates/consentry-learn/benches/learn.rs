//! Job-recommendation benchmark and the peer comparison with `implicit` (PyPI).
//!
//! `cargo bench -p consentry-learn --bench learn -- --mode MODE [options]`, modes:
//!
//! - `export --dataset DIR --out DIR`: the S = 1 split for the Python peer: `members.txt` and `items.txt` (index →
//!   id), `train.csv` (member index, item index, summed weight: exactly the matrix our ALS factorises, without the
//!   profile-token pseudo-items), `heldout.csv` (member index, item index) and `hyper.json`;
//! - `ours --dataset DIR [--shards 1,8]`: trains the job recommender with `consentry_learn::train` for each shard
//!   count, timing it; prints quality (from `model.json`, every held-out member evaluated) and seconds;
//! - `breakdown --dataset DIR`: where the S = 1 time goes (read, split, ALS on the interactions alone — the problem
//!   `implicit` solves —, ALS with the profile tokens, the whole shard, scorer build, evaluation);
//! - `latency [--model DIR] [--n 10000]`: `recommend(member, 10)` latency over random known members, one thread;
//! - `score --dataset DIR --recs FILE [--recs FILE …]`: scores top-20 lists written by the peer (one line per
//!   member: `member_id item_id item_id …`) against the same held-out targets with the same code as ours.
//!
//! - `quality --data DIR [--models job-recs,content] [--shards 1,8] [--dp-epsilon 1] [--set key=value …]`: trains
//!   each model of a demo data directory (its gated datasets; `network/synth.json` fixes the synthetic world) at
//!   every shard count, plain and — job-recs only — with joint DP at ε, evaluated beside the synthetic world's
//!   oracle on the same held-out split (every held-out member), and prints a table per model: model, popularity,
//!   oracle and model ÷ oracle with 95 % intervals. `--set` overrides a content scorer weight
//!   (`topic`, `popularity`, `industry`, `smoothing`, `als`) or `own_tokens`, for exploration only; `--oracle
//!   affinity` ranks by the hidden affinity alone instead of the default likelihood oracle.
//!
//! Common options: `--threads N` (default 2), `--work DIR` (models, default `target/tmp/bench-learn/bench-models`).
//! `bench/learn/run.sh` drives all of it side by side with `implicit`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use consentry_gate::manifest::{ShardFunction, shard_of};
use consentry_learn::data::Dataset;
use consentry_learn::ials::{self, AlsParams};
use consentry_learn::recs::{self, RankMetrics, RecEvaluation, RecHyper, RecKind, Recommender, ShardData};
use consentry_learn::train::{ModelKind, TrainOptions, load_recommender, train_parallel};

mod common;
use common::{die, parse_flags, read_lists};

struct Opts {
    mode: String,
    dataset: PathBuf,
    out: PathBuf,
    work: PathBuf,
    model: Option<PathBuf>,
    recs: Vec<PathBuf>,
    shards: Vec<u32>,
    threads: usize,
    n: usize,
    seed: u64,
    data: PathBuf,
    models: Vec<String>,
    dp_epsilon: Option<f64>,
    set: Vec<(String, f32)>,
    eval_limit: usize,
    affinity_oracle: bool,
}

fn opts() -> Opts {
    let mut o = Opts {
        mode: "ours".into(),
        dataset: PathBuf::from(concat!(env!("CARGO_TARGET_TMPDIR"), "/bench-learn/datasets/job_recommendations")),
        out: PathBuf::from(concat!(env!("CARGO_TARGET_TMPDIR"), "/bench-learn/export")),
        work: PathBuf::from(concat!(env!("CARGO_TARGET_TMPDIR"), "/bench-learn/bench-models")),
        model: None,
        recs: Vec::new(),
        shards: vec![1, 8],
        threads: 2,
        n: 10_000,
        seed: 42,
        data: PathBuf::from(concat!(env!("CARGO_TARGET_TMPDIR"), "/bench-learn")),
        models: vec!["job-recs".into(), "content".into()],
        dp_epsilon: Some(1.0),
        set: Vec::new(),
        eval_limit: usize::MAX,
        affinity_oracle: false,
    };
    parse_flags(|flag, v| {
        match flag {
            "--mode" => o.mode = v,
            "--dataset" => o.dataset = PathBuf::from(v),
            "--out" => o.out = PathBuf::from(v),
            "--work" => o.work = PathBuf::from(v),
            "--model" => o.model = Some(PathBuf::from(v)),
            "--recs" => o.recs.push(PathBuf::from(v)),
            "--shards" => o.shards = v.split(',').filter_map(|s| s.trim().parse().ok()).collect(),
            "--threads" => o.threads = v.parse().unwrap_or(o.threads),
            "--n" => o.n = v.parse().unwrap_or(o.n),
            "--seed" => o.seed = v.parse().unwrap_or(o.seed),
            "--data" => o.data = PathBuf::from(v),
            "--models" => o.models = v.split(',').map(|s| s.trim().to_string()).collect(),
            "--dp-epsilon" => o.dp_epsilon = v.parse().ok().filter(|e: &f64| *e > 0.0),
            "--eval-limit" => o.eval_limit = v.parse().unwrap_or(o.eval_limit),
            "--oracle" => o.affinity_oracle = v == "affinity",
            "--set" => {
                if let Some((k, x)) = v.split_once('=')
                    && let Ok(x) = x.parse()
                {
                    o.set.push((k.to_string(), x));
                }
            }
            _ => return false,
        }
        true
    });
    o
}

/// The S = 1 split exactly as `train` makes it (default hyper-parameters, so the default hold-out).
fn split_one(dataset: &Path) -> (recs::RecInput, ShardData) {
    let ds = Dataset::open(dataset).unwrap_or_else(|e| die("opening the dataset", e));
    let h = RecHyper::default();
    let input = recs::load_input(&ds, RecKind::Jobs, &h).unwrap_or_else(|e| die("reading the dataset", e));
    let d = recs::split(&input, 1, &|_| 0, &h, 0).pop().unwrap_or_else(|| die("split", "no shard"));
    (input, d)
}

fn create(path: &Path) -> BufWriter<std::fs::File> {
    BufWriter::new(std::fs::File::create(path).unwrap_or_else(|e| die(&path.display().to_string(), e)))
}

fn export(o: &Opts) {
    let t0 = Instant::now();
    let (_, d) = split_one(&o.dataset);
    std::fs::create_dir_all(&o.out).unwrap_or_else(|e| die(&o.out.display().to_string(), e));
    let mut w = create(&o.out.join("members.txt"));
    for m in &d.members {
        writeln!(w, "{m}").unwrap_or_else(|e| die("members.txt", e));
    }
    w.flush().unwrap_or_else(|e| die("members.txt", e));
    let mut w = create(&o.out.join("items.txt"));
    for i in &d.items {
        writeln!(w, "{i}").unwrap_or_else(|e| die("items.txt", e));
    }
    w.flush().unwrap_or_else(|e| die("items.txt", e));
    let mut w = create(&o.out.join("train.csv"));
    writeln!(w, "user,item,weight").unwrap_or_else(|e| die("train.csv", e));
    for u in 0..d.train.rows() {
        let (cs, ws) = d.train.row(u);
        for (c, wt) in cs.iter().zip(ws) {
            writeln!(w, "{u},{c},{wt}").unwrap_or_else(|e| die("train.csv", e));
        }
    }
    w.flush().unwrap_or_else(|e| die("train.csv", e));
    let mut w = create(&o.out.join("heldout.csv"));
    writeln!(w, "user,item").unwrap_or_else(|e| die("heldout.csv", e));
    let mut targets = 0usize;
    for (u, items) in &d.heldout {
        for id in items {
            let j = d.items.binary_search(id).unwrap_or_else(|_| die("heldout", format!("item {id} not indexed")));
            writeln!(w, "{u},{j}").unwrap_or_else(|e| die("heldout.csv", e));
            targets += 1;
        }
    }
    w.flush().unwrap_or_else(|e| die("heldout.csv", e));
    let h = RecHyper::default();
    let hyper = serde_json::json!({
        "factors": h.factors,
        "iterations": h.iterations,
        "reg": h.reg,
        "alpha": h.alpha,
        "cg_steps": h.cg_steps,
        "confidence": "1 + alpha * weight (weight summed over a member's events on the item)",
        "weak_weight": h.weak_weight,
        "strong_weight": h.strong_weight,
        "holdout": h.holdout,
        "seed": o.seed,
        "members": d.members.len(),
        "items": d.items.len(),
        "train_nnz": d.train.idx.len(),
        "heldout_members": d.heldout.len(),
        "heldout_targets": targets,
    });
    std::fs::write(o.out.join("hyper.json"), serde_json::to_string_pretty(&hyper).unwrap_or_default())
        .unwrap_or_else(|e| die("hyper.json", e));
    println!(
        "exported S = 1 split to {}: {} members, {} items, {} training entries ({} events), {} held-out members \
         ({targets} targets), vocab {} (not exported) in {:.1} s",
        o.out.display(),
        d.members.len(),
        d.items.len(),
        d.train.idx.len(),
        d.rows,
        d.heldout.len(),
        d.vocab.len(),
        t0.elapsed().as_secs_f64()
    );
}

fn train_opts(o: &Opts, shards: u32) -> TrainOptions {
    let mut t = TrainOptions::new(ModelKind::JobRecs);
    t.shards = Some(shards);
    t.threads = o.threads;
    t.seed = o.seed;
    t.eval_limit = usize::MAX;
    t
}

/// Wall-clock seconds of the training phase alone (shards trained in parallel as `train` does it, without reading,
/// evaluating or writing), the time comparable to `implicit`'s `fit`.
fn training_phase(o: &Opts, shards: u32) -> f64 {
    let h = RecHyper::default();
    let ds = Dataset::open(&o.dataset).unwrap_or_else(|e| die("opening the dataset", e));
    let input = recs::load_input(&ds, RecKind::Jobs, &h).unwrap_or_else(|e| die("reading the dataset", e));
    let sf = ShardFunction::for_purpose(&ds.manifest.purpose, shards);
    let key = sf.key_bytes().unwrap_or_else(|| die("shard key", "not 32 bytes"));
    let data = recs::split(&input, shards, &|m| shard_of(&key, shards, m), &h, o.threads);
    let t = Instant::now();
    let (models, _) = train_parallel(&data, o.threads, &|_| {}, |d, threads| recs::train_shard(d, &h, o.seed, threads))
        .unwrap_or_else(|e| die("training", e));
    let s = secs_since(t);
    std::hint::black_box(models);
    s
}

fn ours(o: &Opts) {
    std::fs::create_dir_all(&o.work).unwrap_or_else(|e| die(&o.work.display().to_string(), e));
    println!(
        "| model | S | Recall@10 | Recall@20 | NDCG@10 | members evaluated | training phase s | shard s (sum) | \
         shard s (max) | train() s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut pop = None;
    for &s in &o.shards {
        let phase = training_phase(o, s);
        let dir = o.work.join(format!("s{s}"));
        let _ = std::fs::remove_dir_all(&dir);
        let t0 = Instant::now();
        let r =
            consentry_learn::train(&o.dataset, &dir, &train_opts(o, s), &|_| {}).unwrap_or_else(|e| die("training", e));
        let secs = t0.elapsed().as_secs_f64();
        let ev: RecEvaluation = serde_json::from_value(r.meta.metrics.clone()).unwrap_or_else(|e| die("metrics", e));
        let sum: f64 = r.shard_seconds.iter().sum();
        let max = r.shard_seconds.iter().copied().fold(0.0, f64::max);
        report("consentry iALS + tokens", "ours", Some((s, [phase, sum, max, secs])), &ev.model);
        pop = Some(ev.popularity);
    }
    if let Some(p) = pop {
        report("popularity (unseen)", "popularity", None, &p);
    }
}

/// One row of `ours`' table, and its machine-readable line for run.sh (`RESULT tag S metrics members` then the
/// training phase, shards sum and max, whole train()); `timed` is S and those seconds, `None` for an untimed baseline.
fn report(name: &str, tag: &str, timed: Option<(u32, [f64; 4])>, m: &RankMetrics) {
    let (row_s, line_s, row, line) = match timed {
        Some((s, t)) => (s.to_string(), s.to_string(), t.map(|x| format!("{x:.2}")), t.map(|x| format!("{x:.3}"))),
        None => ("–".into(), "0".into(), ["–"; 4].map(String::from), ["0"; 4].map(String::from)),
    };
    let (r10, r20, ndcg, members) = (m.recall_at_10, m.recall_at_20, m.ndcg_at_10, m.members);
    println!("| {name} | {row_s} | {r10:.4} | {r20:.4} | {ndcg:.4} | {members} | {} |", row.join(" | "));
    eprintln!("RESULT {tag} {line_s} {r10:.6} {r20:.6} {ndcg:.6} {members} {}", line.join(" "));
}

fn secs_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

fn breakdown(o: &Opts) {
    let h = RecHyper::default();
    let t = Instant::now();
    let ds = Dataset::open(&o.dataset).unwrap_or_else(|e| die("opening the dataset", e));
    let open_s = secs_since(t);
    let t = Instant::now();
    let input = recs::load_input(&ds, RecKind::Jobs, &h).unwrap_or_else(|e| die("reading the dataset", e));
    let read_s = secs_since(t);
    let t = Instant::now();
    let data = recs::split(&input, 1, &|_| 0, &h, o.threads);
    let split_s = secs_since(t);
    let d = &data[0];
    let params = AlsParams {
        factors: h.factors,
        iterations: h.iterations,
        reg: h.reg,
        alpha: h.alpha,
        cg_steps: h.cg_steps,
        seed: o.seed,
        threads: o.threads,
    };
    // The problem `implicit` solves: interactions only.
    let t = Instant::now();
    let f = ials::train(&d.train, d.items.len(), &params);
    let als_plain_s = secs_since(t);
    let plain = score_factors(d, &f.rows, &f.cols, h.factors);
    // Ours: interactions plus profile tokens as pseudo-items (what `train_shard` factorises).
    let n_items = d.items.len();
    let m = recs::token_matrix(d, h.token_weight);
    let t = Instant::now();
    let f = ials::train(&m, n_items + d.vocab.len(), &params);
    let als_tok_s = secs_since(t);
    std::hint::black_box(f);
    let t = Instant::now();
    let model = recs::train_shard(d, &h, o.seed, o.threads).unwrap_or_else(|e| die("training", e));
    let shard_s = secs_since(t);
    let t = Instant::now();
    let bytes = model.to_bytes().unwrap_or_else(|e| die("serialising", e));
    let ser_s = secs_since(t);
    let t = Instant::now();
    let rec = Recommender::new(vec![model], Box::new(|_| 0)).unwrap_or_else(|e| die("scorer", e));
    let new_s = secs_since(t);
    let t = Instant::now();
    let ev = recs::evaluate(&rec, &data, usize::MAX, o.threads).unwrap_or_else(|e| die("evaluating", e));
    let eval_s = secs_since(t);
    let nnz_tok = m.idx.len() - d.train.idx.len();
    println!(
        "S = 1 shard: {} members, {} items, {} vocab tokens, {} interaction entries + {nnz_tok} token entries; \
         k = {}, {} iterations, {} CG steps, {} threads",
        d.members.len(),
        n_items,
        d.vocab.len(),
        d.train.idx.len(),
        h.factors,
        h.iterations,
        h.cg_steps,
        o.threads
    );
    println!("| phase (S = 1) | seconds |");
    println!("|---|---:|");
    let rows = [
        ("open + verify dataset (BLAKE3 of every file)", open_s),
        ("read Parquet → events, profiles, items", read_s),
        ("split (index, hold out)", split_s),
        ("ALS on interactions only (what implicit fits)", als_plain_s),
        ("ALS on interactions + profile tokens", als_tok_s),
        ("train_shard (ALS + tokens + ridge map)", shard_s),
        ("  → ridge token→item map (difference)", (shard_s - als_tok_s).max(0.0)),
        ("serialise shard (safetensors)", ser_s),
        ("Recommender::new", new_s),
        (&format!("evaluate ({} members)", ev.model.members), eval_s),
    ];
    println!(
        "ALS on interactions only, scored by plain x·y (no tokens, no content map): Recall@10 {:.4}, Recall@20 {:.4}, \
         NDCG@10 {:.4} over {} members",
        plain.recall_at_10, plain.recall_at_20, plain.ndcg_at_10, plain.members
    );
    let mut s = String::new();
    for (name, v) in rows {
        let _ = writeln!(s, "| {name} | {v:.2} |");
    }
    print!("{s}");
    eprintln!(
        "RESULT breakdown {als_plain_s:.3} {als_tok_s:.3} {shard_s:.3} {eval_s:.3} {:.6} {:.6} {:.6} {} {}",
        plain.recall_at_10,
        plain.recall_at_20,
        plain.ndcg_at_10,
        plain.members,
        bytes.len()
    );
}

/// Ranks every held-out member of `d` by `x_u · y_i` over unseen items: a bare factor model, no tokens.
fn score_factors(d: &ShardData, x: &[f32], y: &[f32], k: usize) -> recs::RankMetrics {
    let mut sum = recs::PerMember::default();
    for (u, targets) in &d.heldout {
        let u = *u as usize;
        let xu = &x[u * k..(u + 1) * k];
        let seen: BTreeSet<u32> = d.train.row(u).0.iter().copied().collect();
        let mut scored: Vec<(u64, f32)> = (0..d.items.len())
            .filter(|j| !seen.contains(&(*j as u32)))
            .map(|j| (d.items[j], y[j * k..(j + 1) * k].iter().zip(xu).map(|(a, b)| a * b).sum::<f32>()))
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let ranked: Vec<u64> = scored.iter().take(20).map(|p| p.0).collect();
        sum.push(&ranked, &targets.iter().copied().collect());
    }
    sum.metrics()
}

fn latency(o: &Opts) {
    let dir = o.model.clone().unwrap_or_else(|| o.work.join("s8"));
    let t = Instant::now();
    let (meta, rec) = load_recommender(&dir).unwrap_or_else(|e| die("loading the model", e));
    let load_s = secs_since(t);
    let members: Vec<u64> = rec.shards().iter().flat_map(|s| s.members.iter().copied()).collect();
    if members.is_empty() {
        die("latency", "the model knows no member");
    }
    let mut rng = ChaCha8Rng::seed_from_u64(o.seed);
    let pick: Vec<u64> = (0..o.n).map(|_| members[(rng.next_u64() % members.len() as u64) as usize]).collect();
    for &m in pick.iter().take(500) {
        std::hint::black_box(rec.recommend(m, 10).unwrap_or_else(|e| die("recommend", e)));
    }
    let mut us: Vec<f64> = Vec::with_capacity(pick.len());
    for &m in &pick {
        let t = Instant::now();
        let r = rec.recommend(m, 10).unwrap_or_else(|e| die("recommend", e));
        us.push(t.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(r);
    }
    us.sort_by(f64::total_cmp);
    let q = |p: f64| us[((us.len() as f64 * p).ceil() as usize).clamp(1, us.len()) - 1];
    let mean = us.iter().sum::<f64>() / us.len() as f64;
    let s = meta.shard_function.shards;
    println!(
        "recommend(member, 10), S = {s}, {} items, k = {}, one thread, {} random known members (of {}), \
         model loaded in {load_s:.2} s",
        rec.items.len(),
        rec.shards()[0].k,
        us.len(),
        members.len()
    );
    println!("| S | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | mean µs |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {s} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {mean:.0} |",
        q(0.5),
        q(0.9),
        q(0.99),
        q(0.999),
        us[us.len() - 1]
    );
    eprintln!("RESULT latency {s} {:.1} {:.1} {:.1} {:.1} {mean:.1}", q(0.5), q(0.99), q(0.999), us[us.len() - 1]);
    latency_parts(&rec, &pick, o);
}

/// Where one `recommend` call goes with S shards: the S − 1 fold-ins and the scoring pass, timed apart on the model's
/// own factors (median of repeated runs, one thread).
fn latency_parts(rec: &Recommender, members: &[u64], o: &Opts) {
    let shards = rec.shards();
    let (n_s, k, n_items) = (shards.len(), shards[0].k, rec.items.len());
    let s0 = &shards[0];
    let mut cols = s0.item_factors.clone();
    cols.extend_from_slice(&s0.token_factors);
    let gram = ials::gram(&cols, k, s0.reg, 1);
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    // Fold-ins: a shard-0 member's own profile tokens against shard 0's columns.
    let mut rng = ChaCha8Rng::seed_from_u64(o.seed ^ 0x5EED);
    let mut fold = Vec::new();
    for _ in 0..2000 {
        let ui = (rng.next_u64() % s0.members.len() as u64) as usize;
        let (tc, _) = s0.user_tokens.row(ui);
        let cs: Vec<u32> = tc.iter().map(|&c| s0.items.len() as u32 + c).collect();
        let ws = vec![s0.token_weight; cs.len()];
        let t = Instant::now();
        std::hint::black_box(ials::fold_in(&cs, &ws, &cols, &gram, k, s0.alpha));
        fold.push(t.elapsed().as_secs_f64() * 1e6);
    }
    // Scoring: items × (S·k) side by side, as `Recommender` lays it out, filled from shard 0's item factors.
    let width = n_s * k;
    let mut matrix = vec![0f32; n_items * width];
    for (g, row) in matrix.chunks_mut(width).enumerate() {
        let j = g % s0.items.len();
        for blk in row.chunks_mut(k) {
            blk.copy_from_slice(&s0.item_factors[j * k..(j + 1) * k]);
        }
    }
    let x: Vec<f32> = (0..width).map(|i| s0.user_factors[i % (s0.user_factors.len().max(1))]).collect();
    let (mut iter_sum, mut lanes) = (Vec::new(), Vec::new());
    for _ in 0..200 {
        let t = Instant::now();
        let v: Vec<f32> = matrix.chunks(width).map(|r| r.iter().zip(&x).map(|(a, b)| a * b).sum::<f32>()).collect();
        iter_sum.push(t.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(v);
        let t = Instant::now();
        let v: Vec<f32> = matrix.chunks(width).map(|r| ials::dot(r, &x)).collect();
        lanes.push(t.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(v);
    }
    // The seen filter: a BTreeSet of ids probed once per item.
    let mut seen_t = Vec::new();
    for &m in members.iter().take(2000) {
        let si = rec.shards().iter().position(|s| s.members.binary_search(&m).is_ok()).unwrap_or(0);
        let s = &rec.shards()[si];
        let ui = s.members.binary_search(&m).unwrap_or(0);
        let t = Instant::now();
        let seen: BTreeSet<u64> = s.seen.row(ui).0.iter().map(|&j| s.items[j as usize]).collect();
        let n = rec.items.iter().filter(|id| !seen.contains(id)).count();
        seen_t.push(t.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(n);
    }
    let (f, a, b, sf) = (median(fold), median(iter_sum), median(lanes), median(seen_t));
    println!("\nWhere one call goes (S = {n_s}, medians, µs):");
    println!("| part | µs |");
    println!("|---|---:|");
    println!("| one fold-in (f64 Cholesky, k = {k}) | {f:.0} |");
    println!("| {} fold-ins (every other shard) | {:.0} |", n_s - 1, f * (n_s - 1) as f64);
    println!("| scoring {n_items} items × {width} with a plain iterator `sum` (not vectorised) | {a:.0} |");
    println!("| scoring {n_items} items × {width} with `ials::dot` | {b:.0} |");
    println!("| seen filter (BTreeSet<u64> probe per item) | {sf:.0} |");
    eprintln!("RESULT latency-parts {n_s} {f:.1} {a:.1} {b:.1} {sf:.1}");
}

fn score(o: &Opts) {
    let (_, d) = split_one(&o.dataset);
    let targets: BTreeMap<u64, BTreeSet<u64>> =
        d.heldout.iter().map(|(u, t)| (d.members[*u as usize], t.iter().copied().collect())).collect();
    println!("| recs file | Recall@10 | Recall@20 | NDCG@10 | members evaluated | lists missing |");
    println!("|---|---:|---:|---:|---:|---:|");
    for path in &o.recs {
        let lists = read_lists(path);
        let mut sum = recs::PerMember::default();
        let mut missing = 0usize;
        let empty = Vec::new();
        for (m, t) in &targets {
            let ranked = lists.get(m).unwrap_or_else(|| {
                missing += 1;
                &empty
            });
            sum.push(&ranked[..ranked.len().min(20)], t);
        }
        let r = sum.metrics();
        let name = path.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        println!(
            "| {name} | {:.4} | {:.4} | {:.4} | {} | {missing} |",
            r.recall_at_10, r.recall_at_20, r.ndcg_at_10, r.members
        );
        eprintln!(
            "RESULT score {name} {:.6} {:.6} {:.6} {} {missing}",
            r.recall_at_10, r.recall_at_20, r.ndcg_at_10, r.members
        );
    }
}

fn main() {
    let o = opts();
    match o.mode.as_str() {
        "export" => export(&o),
        "ours" => ours(&o),
        "breakdown" => breakdown(&o),
        "latency" => latency(&o),
        "score" => score(&o),
        "quality" => quality(&o),
        m => die("--mode", format!("unknown mode `{m}` (export, ours, breakdown, latency, score)")),
    }
}

/// A table row of `quality`: a metric with its 95 % interval.
fn ci_cell(v: f64, ci: Option<consentry_learn::interval::Interval>) -> String {
    match ci {
        Some(i) => format!("{v:.3} [{:.3}, {:.3}]", i.lo, i.hi),
        None => format!("{v:.3}"),
    }
}

fn quality(o: &Opts) {
    use consentry_learn::dp::DpOptions;
    use consentry_learn::recs::RankIntervals;
    let synth: serde_json::Value = std::fs::read(o.data.join("network/synth.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| die("network/synth.json", "missing or unreadable; run the demo into --data first"));
    let cfg: consentry_synth::SynthConfig =
        serde_json::from_value(synth["config"].clone()).unwrap_or_else(|e| die("synth.json config", e));
    std::fs::create_dir_all(&o.work).unwrap_or_else(|e| die(&o.work.display().to_string(), e));
    println!(
        "network: {} members, seed {}, as of {}; oracle: {}\n",
        cfg.members,
        cfg.seed,
        cfg.as_of,
        if o.affinity_oracle { "affinity" } else { "likelihood (ln P(candidate) + affinity)" }
    );
    for name in &o.models {
        let kind = ModelKind::from_name(name).unwrap_or_else(|| die("--models", format!("unknown model {name}")));
        let mode = if o.affinity_oracle {
            consentry_synth::oracle::OracleMode::Affinity
        } else {
            consentry_synth::oracle::OracleMode::Likelihood
        };
        let oracle = consentry_synth::oracle::Oracle::with_mode(&cfg, mode);
        let score = if kind == ModelKind::JobRecs {
            consentry_synth::oracle::Oracle::job_score
        } else {
            consentry_synth::oracle::Oracle::post_score
        };
        let scorer = move |m: u64, items: &[u64], out: &mut [f32]| oracle.score_into(score, m, items, out);
        let dataset = o.data.join("datasets").join(kind.purpose().trim_start_matches("train_ai_system."));
        println!("### {name}\n");
        println!("| model | S | Recall@10 | Recall@20 | NDCG@10 | members | train s |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
        let mut variants: Vec<(String, Option<f64>)> = vec![("plain".into(), None)];
        if kind == ModelKind::JobRecs
            && let Some(e) = o.dp_epsilon
        {
            variants.push((format!("joint DP ε = {e}"), Some(e)));
        }
        let mut baseline = None;
        for (label, dp) in &variants {
            for &s in &o.shards {
                let mut t = TrainOptions::new(kind);
                t.shards = Some(s);
                t.threads = o.threads;
                t.seed = o.seed;
                t.eval_limit = o.eval_limit;
                for (k, v) in &o.set {
                    let topics = t.rec.topics.get_or_insert_with(Default::default);
                    match k.as_str() {
                        "own_tokens" => t.rec.own_tokens = *v,
                        "topic" => topics.topic = *v,
                        "popularity" => topics.popularity = *v,
                        "industry" => topics.industry = *v,
                        "smoothing" => topics.smoothing = *v,
                        "als" => topics.als = *v,
                        _ => die("--set", format!("unknown key {k}")),
                    }
                }
                if kind == ModelKind::JobRecs && !o.set.iter().any(|(k, _)| k != "own_tokens") {
                    t.rec.topics = None;
                }
                if let Some(e) = dp {
                    t.dp = Some(DpOptions::new(*e, o.work.join("noise.key")));
                }
                let dir = o.work.join(format!("{name}-{}-s{s}", if dp.is_some() { "dp" } else { "plain" }));
                let _ = std::fs::remove_dir_all(&dir);
                let t0 = Instant::now();
                let r = consentry_learn::train::train_with_oracle(&dataset, &dir, &t, &|_| {}, Some(&scorer))
                    .unwrap_or_else(|e| die("training", e));
                let secs = t0.elapsed().as_secs_f64();
                let ev: RecEvaluation =
                    serde_json::from_value(r.meta.metrics.clone()).unwrap_or_else(|e| die("metrics", e));
                let row = |who: &str, s: &str, m: &RankMetrics, secs: &str| {
                    let ci = m.ci;
                    println!(
                        "| {who} | {s} | {} | {} | {} | {} | {secs} |",
                        ci_cell(m.recall_at_10, ci.map(|c| c.recall_at_10)),
                        ci_cell(m.recall_at_20, ci.map(|c| c.recall_at_20)),
                        ci_cell(m.ndcg_at_10, ci.map(|c| c.ndcg_at_10)),
                        m.members
                    );
                };
                let ratio = |who: &str, s: &str, r: &Option<RankIntervals>| {
                    if let Some(r) = r {
                        println!("| {who} | {s} | {} | | |", ratio_cells(r));
                    }
                };
                row(&format!("{name} ({label})"), &s.to_string(), &ev.model, &format!("{secs:.1}"));
                ratio(&format!("{name} ({label}) ÷ oracle"), &s.to_string(), &ev.model_of_oracle);
                let pop_ratio = |m: &RankMetrics| m.recall_at_20 / ev.popularity.recall_at_20.max(1e-12);
                eprintln!(
                    "RESULT quality {name} {label} S={s} r20={:.4} of_oracle={:.3} x_popularity={:.1}",
                    ev.model.recall_at_20,
                    ev.model_of_oracle.map_or(f64::NAN, |r| r.recall_at_20.value),
                    pop_ratio(&ev.model)
                );
                if baseline.is_none() {
                    baseline = Some(ev);
                }
            }
        }
        if let Some(ev) = baseline {
            ev_rows(&ev);
        }
        println!();
    }
}

/// The baseline and oracle rows of a `quality` table (the same for every variant: same split, same members).
fn ev_rows(ev: &RecEvaluation) {
    let row = |who: &str, m: &RankMetrics| {
        let ci = m.ci;
        println!(
            "| {who} | – | {} | {} | {} | {} | |",
            ci_cell(m.recall_at_10, ci.map(|c| c.recall_at_10)),
            ci_cell(m.recall_at_20, ci.map(|c| c.recall_at_20)),
            ci_cell(m.ndcg_at_10, ci.map(|c| c.ndcg_at_10)),
            m.members
        );
    };
    row("popularity (unseen)", &ev.popularity);
    if let Some(o) = &ev.oracle {
        row("oracle (synthetic world's truth)", o);
    }
    if let Some(r) = &ev.popularity_of_oracle {
        println!("| popularity ÷ oracle | – | {} | | |", ratio_cells(r));
    }
}

/// The three ratio cells (Recall@10, Recall@20, NDCG@10) of a `÷ oracle` row, each with its interval.
fn ratio_cells(r: &recs::RankIntervals) -> String {
    [r.recall_at_10, r.recall_at_20, r.ndcg_at_10]
        .iter()
        .map(|i| format!("{:.2} [{:.2}, {:.2}]", i.value, i.lo, i.hi))
        .collect::<Vec<_>>()
        .join(" | ")
}
