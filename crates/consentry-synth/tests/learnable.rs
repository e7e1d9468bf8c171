//! The hidden member–job affinity is learnable: on held-out applications a
//! plain skills-overlap ranker beats a popularity ranker. If this fails, the
//! generator has lost the signal every recommender later depends on.

use arrow_array::cast::AsArray;
use arrow_array::types::{TimestampMillisecondType, UInt64Type};
use arrow_array::{Array, RecordBatch};
use consentry_policy::Policy;
use consentry_synth::{NoProgress, SynthConfig, generate};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::collections::{HashMap, HashSet};
use std::path::Path;

fn batches(path: &Path) -> Vec<RecordBatch> {
    let f = std::fs::File::open(path).unwrap();
    ParquetRecordBatchReaderBuilder::try_new(f).unwrap().build().unwrap().map(|b| b.unwrap()).collect()
}

fn skills_of(batch: &RecordBatch, id_col: &str) -> Vec<(u64, HashSet<String>)> {
    let ids = batch.column_by_name(id_col).unwrap().as_primitive::<UInt64Type>();
    let skills = batch.column_by_name("skills").unwrap().as_list::<i32>();
    (0..batch.num_rows())
        .map(|i| {
            let list = skills.value(i);
            let s = list.as_string::<i32>();
            (ids.value(i), (0..s.len()).map(|k| s.value(k).to_string()).collect())
        })
        .collect()
}

#[test]
fn skills_overlap_beats_popularity_on_held_out_applications() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SynthConfig { members: 4000, seed: 11, as_of: SynthConfig::default_as_of() };
    generate(&cfg, &Policy::default_policy(), dir.path(), &NoProgress).unwrap();

    let members: HashMap<u64, HashSet<String>> =
        batches(&dir.path().join("members.parquet")).iter().flat_map(|b| skills_of(b, "member_id")).collect();
    let jobs: Vec<(u64, HashSet<String>)> =
        batches(&dir.path().join("jobs.parquet")).iter().flat_map(|b| skills_of(b, "job_id")).collect();

    // Applications per member in time order; the last one is held out.
    let mut apps: HashMap<u64, Vec<(i64, u64)>> = HashMap::new();
    for b in batches(&dir.path().join("job_activity.parquet")) {
        let m = b.column_by_name("member_id").unwrap().as_primitive::<UInt64Type>();
        let j = b.column_by_name("job_id").unwrap().as_primitive::<UInt64Type>();
        let a = b.column_by_name("action").unwrap().as_string::<i32>();
        let t = b.column_by_name("at").unwrap().as_primitive::<TimestampMillisecondType>();
        for i in 0..b.num_rows() {
            if a.value(i) == "apply" {
                apps.entry(m.value(i)).or_default().push((t.value(i), j.value(i)));
            }
        }
    }
    let mut popularity: HashMap<u64, usize> = HashMap::new();
    let mut held_out = Vec::new();
    for (m, mut v) in apps {
        v.sort();
        if let Some(last) = v.pop() {
            held_out.push((m, last.1));
        }
        for (_, j) in v {
            *popularity.entry(j).or_default() += 1;
        }
    }
    held_out.sort();
    assert!(held_out.len() > 1000, "too few members with applications: {}", held_out.len());

    let mut by_popularity: Vec<u64> = jobs.iter().map(|(j, _)| *j).collect();
    by_popularity.sort_by_key(|j| (std::cmp::Reverse(popularity.get(j).copied().unwrap_or(0)), *j));
    let k = 20;
    let popular_top: HashSet<u64> = by_popularity.iter().take(k).copied().collect();

    let (mut hits_pop, mut hits_skills) = (0, 0);
    for (m, job) in &held_out {
        hits_pop += usize::from(popular_top.contains(job));
        let ms = &members[m];
        let mut scored: Vec<(usize, usize, u64)> = jobs
            .iter()
            .map(|(j, s)| (s.intersection(ms).count(), popularity.get(j).copied().unwrap_or(0), *j))
            .collect();
        scored.sort_by(|a, b| b.cmp(a));
        hits_skills += usize::from(scored.iter().take(k).any(|(_, _, j)| j == job));
    }
    let n = held_out.len() as f64;
    let (r_pop, r_skills) = (hits_pop as f64 / n, hits_skills as f64 / n);
    eprintln!(
        "Recall@{k} on {} held-out applications: popularity {r_pop:.3}, skills overlap {r_skills:.3}",
        held_out.len()
    );
    assert!(r_skills > r_pop * 1.2, "skills overlap {r_skills:.3} does not beat popularity {r_pop:.3}");
}
