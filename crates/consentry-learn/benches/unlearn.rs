//! What unlearning costs (issue: lineage and exact unlearning): one member's withdrawal against a full retrain, and
//! a batch of withdrawals, on a gated dataset.
//!
//! `cargo bench -p consentry-learn --bench unlearn -- [--dataset DIR] [--model job-recs|content|replies]
//!  [--shards 8] [--threads 2] [--batch 1000] [--reps 3] [--work DIR]`
//!
//! For each repetition: a full training run (`train::train`, which also evaluates), then `train::unlearn` of one
//! random member of the model, then of `--batch` random members. Prints the fastest of each, the number of shards
//! retrained and the ratio to the full retrain against the goal 1/S + 10 %. `bench/learn/unlearn.sh` makes the
//! 100 k-member dataset once and runs it.

use std::path::PathBuf;
use std::time::Instant;

use consentry_learn::model::ModelMeta;
use consentry_learn::train::{self, ModelKind, TrainOptions};
use rand::SeedableRng;
use rand::seq::IndexedRandom;
use roaring::RoaringTreemap;

mod common;
use common::{die, parse_flags};

struct Opts {
    dataset: PathBuf,
    kind: ModelKind,
    shards: u32,
    threads: usize,
    batch: usize,
    reps: usize,
    work: PathBuf,
}

fn opts() -> Opts {
    let mut o = Opts {
        dataset: PathBuf::from(concat!(env!("CARGO_TARGET_TMPDIR"), "/bench-learn/datasets/job_recommendations")),
        kind: ModelKind::JobRecs,
        shards: 8,
        threads: 2,
        batch: 1000,
        reps: 3,
        work: PathBuf::from(concat!(env!("CARGO_TARGET_TMPDIR"), "/bench-learn/unlearn")),
    };
    parse_flags(|flag, v| {
        match flag {
            "--dataset" => o.dataset = PathBuf::from(v),
            "--model" => {
                o.kind = ModelKind::from_name(&v)
                    .unwrap_or_else(|| die(flag, format!("{v:?}: expected job-recs, content or replies")))
            }
            "--shards" => o.shards = number(flag, &v),
            "--threads" => o.threads = number(flag, &v),
            "--batch" => o.batch = number(flag, &v),
            "--reps" => o.reps = number(flag, &v),
            "--work" => o.work = PathBuf::from(v),
            _ => return false,
        }
        true
    });
    o
}

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> T {
    v.parse().unwrap_or_else(|_| die(flag, format!("{v:?}: expected a number")))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let o = opts();
    if !o.dataset.join("manifest.json").exists() {
        return Err(format!("no dataset at {} (bench/learn/unlearn.sh makes one)", o.dataset.display()).into());
    }
    if o.work.exists() {
        std::fs::remove_dir_all(&o.work)?;
    }
    std::fs::create_dir_all(&o.work)?;
    let opts = TrainOptions { shards: Some(o.shards), threads: o.threads, ..TrainOptions::new(o.kind) };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let (mut full, mut one, mut batch) = (f64::INFINITY, f64::INFINITY, f64::INFINITY);
    let (mut one_shards, mut batch_shards, mut batch_removed, mut n_members) = (0usize, 0usize, 0usize, 0usize);
    for r in 0..o.reps {
        let model = o.work.join(format!("model-{r}"));
        let t = Instant::now();
        train::train(&o.dataset, &model, &opts, &|_| {})?;
        full = full.min(t.elapsed().as_secs_f64());
        let meta = ModelMeta::read(&model)?;
        let all: Vec<u64> = meta.members(&model)?.iter().collect();
        n_members = all.len();
        let victim: RoaringTreemap = all.choose(&mut rng).copied().into_iter().collect();
        let t = Instant::now();
        let rep = train::unlearn(&model, &o.dataset, &victim, &o.work.join(format!("one-{r}")), o.threads, &|_| {})?;
        one = one.min(t.elapsed().as_secs_f64());
        one_shards = rep.retrained.len();
        let many: RoaringTreemap = all.choose_multiple(&mut rng, o.batch).copied().collect();
        let t = Instant::now();
        let rep = train::unlearn(&model, &o.dataset, &many, &o.work.join(format!("batch-{r}")), o.threads, &|_| {})?;
        batch = batch.min(t.elapsed().as_secs_f64());
        batch_shards = rep.retrained.len();
        batch_removed = rep.removed.len();
        eprintln!("round {} of {}: full {full:.2} s, one {one:.2} s, batch {batch:.2} s", r + 1, o.reps);
    }
    let s = f64::from(o.shards);
    let goal = full / s * 1.1;
    println!(
        "{} on {} ({} members in the model), S = {}, {} threads, fastest of {}:",
        o.kind.name(),
        o.dataset.display(),
        n_members,
        o.shards,
        o.threads,
        o.reps
    );
    println!();
    println!("| operation | seconds | shards retrained | vs full retrain |");
    println!("|---|---:|---:|---:|");
    println!("| full retrain (train + evaluate) | {full:.2} | {} | 1.00 |", o.shards);
    println!("| unlearn 1 member | {one:.2} | {one_shards} | {:.3} (goal ≤ {:.3}) |", one / full, goal / full);
    println!(
        "| unlearn a batch of {} members ({batch_removed} in the model) | {batch:.2} | {batch_shards} | {:.3} |",
        o.batch,
        batch / full
    );
    println!();
    println!("RESULT unlearn {full:.4} {one:.4} {batch:.4} {one_shards} {batch_shards} {}", u8::from(one <= goal));
    Ok(())
}
