//! Items models side by side with `implicit` (PyPI) on one interactions table (`bench/items/run.sh`: MovieLens 100K).
//!
//! `cargo bench -p consentry-learn --bench items -- --mode MODE [options]`, modes:
//!
//! - `export --model DIR --out DIR`: the S = 1 split of the items model's table, exactly as training made it (the
//!   options recorded in its `model.json`), in the format `bench/learn/implicit_als.py` reads: `members.txt`,
//!   `items.txt`, `train.csv` (member index, item index, summed weight), `heldout.csv` (member index, item index or
//!   -1 for an item no training row has), `hyper.json`;
//! - `time --model DIR [--reps 3]`: the shard-training phase of that model (prepare once, then
//!   `train_parallel(train_shard)` at its shard count), best of the repetitions: `RESULT time NAME SECONDS`;
//! - `score --model NAME=DIR … --recs NAME=FILE … [--fit NAME=SECONDS …] [--label NAME=TEXT …]`: every model's and every peer list's
//!   Recall@10, Recall@20 and NDCG@10 on the same held-out members with `recs::rank_scores`, plus popularity (most
//!   trained-on unseen items), each with a 95 % interval from `interval::mean_ci` over members; a Markdown table.
//!
//! Common options: `--threads N` (default 2). The dataset is the one the model's `model.json` names.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use consentry_learn::data::Dataset;
use consentry_learn::interval::{Interval, mean_ci};
use consentry_learn::model::ModelMeta;
use consentry_learn::recs::{self, ShardData};
use consentry_learn::train::{self, Prepared, TrainOptions, load_recommender, train_parallel};

mod common;
use common::{die, parse_flags, read_lists};

struct Opts {
    mode: String,
    models: Vec<(String, PathBuf)>,
    recs: Vec<(String, PathBuf)>,
    fits: BTreeMap<String, f64>,
    labels: BTreeMap<String, String>,
    out: PathBuf,
    threads: usize,
    reps: usize,
}

fn named(v: &str) -> (String, String) {
    match v.split_once('=') {
        Some((n, x)) => (n.to_string(), x.to_string()),
        None => (Path::new(v).file_name().map_or_else(|| v.to_string(), |s| s.to_string_lossy().into()), v.into()),
    }
}

fn opts() -> Opts {
    let mut o = Opts {
        mode: "score".into(),
        models: Vec::new(),
        recs: Vec::new(),
        fits: BTreeMap::new(),
        labels: BTreeMap::new(),
        out: PathBuf::from(concat!(env!("CARGO_TARGET_TMPDIR"), "/bench-items/export")),
        threads: 2,
        reps: 3,
    };
    parse_flags(|flag, v| {
        match flag {
            "--mode" => o.mode = v,
            "--model" => {
                let (n, p) = named(&v);
                o.models.push((n, PathBuf::from(p)));
            }
            "--recs" => {
                let (n, p) = named(&v);
                o.recs.push((n, PathBuf::from(p)));
            }
            "--fit" => {
                let (n, s) = named(&v);
                o.fits.insert(n, s.parse().unwrap_or_else(|e| die(&format!("--fit {v}"), e)));
            }
            "--label" => {
                let (n, t) = named(&v);
                o.labels.insert(n, t);
            }
            "--out" => o.out = PathBuf::from(v),
            "--threads" => o.threads = v.parse().unwrap_or(o.threads),
            "--reps" => o.reps = v.parse().unwrap_or(o.reps),
            _ => return false,
        }
        true
    });
    o
}

/// The model's recorded options and its dataset, opened (checked against its manifest).
fn model_inputs(dir: &Path) -> (ModelMeta, TrainOptions, Dataset) {
    let meta = ModelMeta::read(dir).unwrap_or_else(|e| die("reading model.json", e));
    let mut opts: TrainOptions =
        serde_json::from_value(meta.hyper.clone()).unwrap_or_else(|e| die("the model's options", e));
    opts.threads = 2;
    let ds = Dataset::open(Path::new(&meta.dataset.path)).unwrap_or_else(|e| die("opening the dataset", e));
    if ds.manifest_hash != meta.dataset.manifest_blake3 {
        die("dataset", "it is not the one the model was trained on");
    }
    (meta, opts, ds)
}

/// The model's inputs split into `shards` shards (1: the whole table, the split every peer sees).
fn split(dir: &Path, shards: u32, threads: usize) -> (TrainOptions, Vec<ShardData>) {
    let (meta, mut opts, ds) = model_inputs(dir);
    opts.threads = threads;
    let key = meta.shard_function.key_bytes().unwrap_or_else(|| die("shard key", "not 32 bytes"));
    let n = shards;
    let shard_of = move |m: u64| if n == 1 { 0 } else { consentry_gate::manifest::shard_of(&key, n, m) };
    match train::prepare(&ds, &opts, &shard_of, shards, &roaring::RoaringTreemap::new()) {
        Ok(Prepared::Recs(d)) => (opts, d),
        Ok(_) => die("prepare", "not a recommender"),
        Err(e) => die("prepare", e),
    }
}

fn create(path: &Path) -> BufWriter<std::fs::File> {
    BufWriter::new(std::fs::File::create(path).unwrap_or_else(|e| die(&path.display().to_string(), e)))
}

fn export(o: &Opts) {
    let (_, dir) = o.models.first().unwrap_or_else(|| die("export", "--model DIR is required"));
    let (opts, mut d) = split(dir, 1, o.threads);
    let d = d.pop().unwrap_or_else(|| die("split", "no shard"));
    std::fs::create_dir_all(&o.out).unwrap_or_else(|e| die(&o.out.display().to_string(), e));
    let w = |name: &str, f: &mut dyn FnMut(&mut BufWriter<std::fs::File>) -> std::io::Result<()>| {
        let mut b = create(&o.out.join(name));
        f(&mut b).and_then(|()| b.flush()).unwrap_or_else(|e| die(name, e));
    };
    w("members.txt", &mut |b| d.members.iter().try_for_each(|m| writeln!(b, "{m}")));
    w("items.txt", &mut |b| d.items.iter().try_for_each(|i| writeln!(b, "{i}")));
    w("train.csv", &mut |b| {
        writeln!(b, "user,item,weight")?;
        for u in 0..d.train.rows() {
            let (cs, ws) = d.train.row(u);
            for (c, wt) in cs.iter().zip(ws) {
                writeln!(b, "{u},{c},{wt}")?;
            }
        }
        Ok(())
    });
    w("heldout.csv", &mut |b| {
        writeln!(b, "user,item")?;
        for (u, items) in &d.heldout {
            // A held-out item nobody trained on has no index (no model can rank it): -1. The peer reads only the
            // member column; targets are scored from the split itself.
            for id in items {
                let j = d.items.binary_search(id).map_or(-1, |j| j as i64);
                writeln!(b, "{u},{j}")?;
            }
        }
        Ok(())
    });
    let h = &opts.rec;
    let hyper = serde_json::json!({
        "factors": h.factors, "reg": h.reg, "alpha": h.alpha, "iterations": h.iterations, "seed": opts.seed,
    });
    std::fs::write(o.out.join("hyper.json"), hyper.to_string()).unwrap_or_else(|e| die("hyper.json", e));
    eprintln!(
        "exported {} members × {} items, {} training entries, {} held-out members → {}",
        d.members.len(),
        d.items.len(),
        d.train.idx.len(),
        d.heldout.len(),
        o.out.display()
    );
}

fn time(o: &Opts) {
    for (name, dir) in &o.models {
        let meta = ModelMeta::read(dir).unwrap_or_else(|e| die("reading model.json", e));
        let (opts, d) = split(dir, meta.shard_function.shards, o.threads);
        let mut best = f64::INFINITY;
        for _ in 0..o.reps.max(1) {
            let t = Instant::now();
            let (models, _) = train_parallel(&d, o.threads, &|_| {}, |d, threads| {
                recs::train_shard(d, &opts.rec, opts.seed, threads)
            })
            .unwrap_or_else(|e| die("training", e));
            best = best.min(t.elapsed().as_secs_f64());
            std::hint::black_box(models);
        }
        eprintln!("RESULT time {name} {best:.4}");
    }
}

/// Per-member (Recall@10, Recall@20, NDCG@10) of ranked lists against the targets, members in ascending order.
fn per_member(targets: &BTreeMap<u64, BTreeSet<u64>>, mut list: impl FnMut(u64) -> Vec<u64>) -> recs::PerMember {
    let mut out = recs::PerMember::default();
    for (&m, t) in targets {
        out.push(&list(m), t);
    }
    out
}

fn cell(i: &Interval) -> String {
    format!("{:.4} [{:.4}, {:.4}]", i.value, i.lo, i.hi)
}

fn score(o: &Opts) {
    let (_, first) = o.models.first().unwrap_or_else(|| die("score", "at least one --model NAME=DIR is required"));
    let (_, mut d) = split(first, 1, o.threads);
    let d = d.pop().unwrap_or_else(|| die("split", "no shard"));
    let targets: BTreeMap<u64, BTreeSet<u64>> =
        d.heldout.iter().map(|(u, t)| (d.members[*u as usize], t.iter().copied().collect())).collect();
    let seen: BTreeMap<u64, BTreeSet<u64>> = d
        .heldout
        .iter()
        .map(|(u, _)| {
            (d.members[*u as usize], d.train.row(*u as usize).0.iter().map(|&j| d.items[j as usize]).collect())
        })
        .collect();
    let mut rows: Vec<(String, recs::PerMember, String)> = Vec::new();
    for (name, dir) in &o.models {
        let (meta, rec) = load_recommender(dir).unwrap_or_else(|e| die("loading the model", e));
        let vals = per_member(&targets, |m| {
            rec.recommend(m, 20).unwrap_or_else(|e| die("recommend", e)).into_iter().map(|(i, _)| i).collect()
        });
        rows.push((format!("{name} (consentry items, S = {})", meta.shards.len()), vals, name.clone()));
    }
    for (name, path) in &o.recs {
        let lists = read_lists(path);
        let missing = targets.keys().filter(|m| !lists.contains_key(m)).count();
        if missing > 0 {
            die(&path.display().to_string(), format!("no list for {missing} held-out members"));
        }
        let vals = per_member(&targets, |m| lists.get(&m).cloned().unwrap_or_default());
        rows.push((o.labels.get(name).cloned().unwrap_or_else(|| name.clone()), vals, name.clone()));
    }
    // Popularity: the most trained-on items the member has not seen (as `recs::evaluate` ranks it).
    let mut pop: BTreeMap<u64, u64> = BTreeMap::new();
    for &j in &d.train.idx {
        *pop.entry(d.items[j as usize]).or_default() += 1;
    }
    let mut popular: Vec<(u64, u64)> = pop.into_iter().collect();
    popular.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let vals = per_member(&targets, |m| {
        let s = &seen[&m];
        popular.iter().map(|(i, _)| *i).filter(|i| !s.contains(i)).take(20).collect()
    });
    rows.push(("popularity (unseen)".into(), vals, String::new()));

    println!(
        "{} members × {} items, {} training entries; {} held-out members, {} held-out items",
        d.members.len(),
        d.items.len(),
        d.train.idx.len(),
        targets.len(),
        targets.values().map(BTreeSet::len).sum::<usize>()
    );
    println!();
    println!("| model | Recall@10 | Recall@20 | NDCG@10 | members | fit s |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (label, vals, key) in &rows {
        let cols = vals.columns();
        let ci: Vec<Interval> = cols.iter().enumerate().map(|(k, v)| mean_ci(v, 42 + k as u64)).collect();
        let fit = o.fits.get(key).map_or_else(|| "–".to_string(), |s| format!("{s:.2}"));
        println!("| {label} | {} | {} | {} | {} | {fit} |", cell(&ci[0]), cell(&ci[1]), cell(&ci[2]), cols[0].len());
        eprintln!("RESULT score {key} {:.6} {:.6} {:.6} {}", ci[0].value, ci[1].value, ci[2].value, cols[0].len());
    }
}

fn main() {
    let o = opts();
    match o.mode.as_str() {
        "export" => export(&o),
        "time" => time(&o),
        "score" => score(&o),
        m => die("--mode", format!("unknown mode `{m}` (export, time, score)")),
    }
}
