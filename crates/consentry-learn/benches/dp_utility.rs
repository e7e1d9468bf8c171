//! Utility of differentially private job recommendations: Recall@20 on the held-out split at several ε, against
//! the non-private model, as a markdown table and an SVG plot.
//!
//! `cargo bench -p consentry-learn --bench dp_utility -- --dataset DIR [--shards 1,8] [--epsilons 0.5,1,2,4,8]
//! [--clip C] [--factors K] [--threads N] [--out DIR]`; `bench/dp/utility.sh` drives it on the synthetic network.
//!
//! Rows: `non-private` is the production iALS model (`recs::train_shard`, default hyper-parameters); `DP, σ = 0` is
//! the DP model's structure without noise (not private: what the mechanism loses by itself); then one row per ε,
//! each trained exactly as `consentry train --dp-epsilon ε` trains (δ = `default_delta` of the dataset's members,
//! σ calibrated with the improved conversion), every held-out member evaluated. The noise key is fixed here (a
//! measurement, not a release).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use consentry_gate::manifest::{ShardFunction, shard_of};
use consentry_learn::data::Dataset;
use consentry_learn::dp::{self, DpOptions, NoiseKey};
use consentry_learn::recs::{self, RecHyper, RecKind, Recommender, ShardData, ShardModel};
use consentry_learn::train::train_parallel;
use plotters::prelude::*;

mod common;
use common::{die, parse_flags};

struct Opts {
    dataset: PathBuf,
    out: PathBuf,
    shards: Vec<u32>,
    epsilons: Vec<f64>,
    clip: f64,
    factors: Option<usize>,
    own: Option<f32>,
    threads: usize,
    seed: u64,
}

fn opts() -> Opts {
    let mut o = Opts {
        dataset: PathBuf::from(concat!(env!("CARGO_TARGET_TMPDIR"), "/dp-util/data/datasets/job_recommendations")),
        out: PathBuf::from(concat!(env!("CARGO_TARGET_TMPDIR"), "/dp-util/results")),
        shards: vec![1, 8],
        epsilons: vec![0.5, 1.0, 2.0, 4.0, 8.0],
        clip: 1.0,
        factors: None,
        own: None,
        threads: 2,
        seed: 42,
    };
    let list = |v: &str| v.split(',').filter_map(|s| s.trim().parse().ok()).collect::<Vec<f64>>();
    parse_flags(|flag, v| {
        match flag {
            "--dataset" => o.dataset = PathBuf::from(v),
            "--out" => o.out = PathBuf::from(v),
            "--shards" => o.shards = list(&v).into_iter().map(|x| x as u32).collect(),
            "--epsilons" => o.epsilons = list(&v),
            "--clip" => o.clip = v.parse().unwrap_or(o.clip),
            "--factors" => o.factors = v.parse().ok(),
            "--own-tokens" => o.own = v.parse().ok(),
            "--threads" => o.threads = v.parse().unwrap_or(o.threads),
            "--seed" => o.seed = v.parse().unwrap_or(o.seed),
            _ => return false,
        }
        true
    });
    o
}

/// One shard count's curve: S, the non-private Recall@20, and (ε, Recall@20) points.
type Series = (u32, f64, Vec<(f64, f64)>);

struct Row {
    label: String,
    epsilon: Option<f64>,
    sigma: Option<f64>,
    recall20: f64,
    recall10: f64,
    ndcg10: f64,
    members: u64,
    seconds: f64,
}

fn evaluate(
    models: Vec<ShardModel>,
    data: &[ShardData],
    key: [u8; 32],
    shards: u32,
    threads: usize,
) -> (f64, f64, f64, u64) {
    let rec = Recommender::new(models, Box::new(move |m| shard_of(&key, shards, m)))
        .unwrap_or_else(|e| die("building the scorer", e));
    let ev = recs::evaluate(&rec, data, usize::MAX, threads).unwrap_or_else(|e| die("evaluating", e));
    (ev.model.recall_at_20, ev.model.recall_at_10, ev.model.ndcg_at_10, ev.model.members)
}

fn main() {
    let o = opts();
    let ds = Dataset::open(&o.dataset).unwrap_or_else(|e| die("opening the dataset", e));
    let mut h = RecHyper::default();
    if let Some(k) = o.factors {
        h.factors = k;
    }
    if let Some(g) = o.own {
        h.dp_own_tokens = g;
    }
    let input = recs::load_input(&ds, RecKind::Jobs, &h).unwrap_or_else(|e| die("reading the dataset", e));
    let members = ds.manifest.members.count;
    let noise_key = NoiseKey::from_bytes(*blake3::hash(b"consentry dp utility bench").as_bytes());
    std::fs::create_dir_all(&o.out).unwrap_or_else(|e| die(&o.out.display().to_string(), e));
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Job recommendations on `{}` ({members} members), every held-out member evaluated.\n",
        o.dataset.display()
    );
    let mut series: Vec<Series> = Vec::new();
    for &shards in &o.shards {
        let sf = ShardFunction::for_purpose(&ds.manifest.purpose, shards);
        let key = sf.key_bytes().unwrap_or_else(|| die("shard key", "not 32 bytes"));
        let data = recs::split(&input, shards, &|m| shard_of(&key, shards, m), &h, o.threads);
        let mut rows: Vec<Row> = Vec::new();
        let t = Instant::now();
        let (models, _) =
            train_parallel(&data, o.threads, &|_| {}, |d, th| recs::train_shard(d, &RecHyper::default(), o.seed, th))
                .unwrap_or_else(|e| die("training", e));
        let secs = t.elapsed().as_secs_f64();
        let (r20, r10, nd, n) = evaluate(models, &data, key, shards, o.threads);
        rows.push(Row {
            label: "non-private iALS (ε = ∞)".into(),
            epsilon: None,
            sigma: None,
            recall20: r20,
            recall10: r10,
            ndcg10: nd,
            members: n,
            seconds: secs,
        });
        let mut configs: Vec<(String, Option<f64>)> = vec![("DP structure, σ = 0 (not private)".into(), None)];
        configs.extend(o.epsilons.iter().map(|&e| (format!("DP ε = {e}"), Some(e))));
        for (label, eps) in configs {
            let (sigma, delta) = match eps {
                None => (0.0, None),
                Some(e) => {
                    let mut d = DpOptions::new(e, PathBuf::new());
                    d.clip = o.clip;
                    dp::resolve(&mut d, dp::RECS_PLAN, members).unwrap_or_else(|e| die("calibrating", e));
                    (d.sigma.unwrap_or(0.0), d.delta)
                }
            };
            let t = Instant::now();
            let idx: Vec<usize> = (0..data.len()).collect();
            let (models, _) = train_parallel(&idx, o.threads, &|_| {}, |&i, th| {
                let noise = dp::ShardNoise::new(&noise_key, sigma, o.clip, o.seed, i as u32);
                dp::train_rec_shard(&data[i], &h, &noise, th)
            })
            .unwrap_or_else(|e| die("DP training", e));
            let secs = t.elapsed().as_secs_f64();
            // Directions the noise threshold kept, and the released vocabulary, in the first shard.
            let kept = models.first().map_or(0, |m| {
                (0..m.k).filter(|&c| (0..m.vocab.len()).any(|r| m.token_factors[r * m.k + c] != 0.0)).count()
            });
            let vocab = models.first().map_or(0, |m| m.vocab.len());
            eprintln!("S={shards} {label}: vocab {vocab}, directions kept {kept}, δ = {delta:?}");
            let (r20, r10, nd, n) = evaluate(models, &data, key, shards, o.threads);
            rows.push(Row {
                label,
                epsilon: eps,
                sigma: Some(sigma),
                recall20: r20,
                recall10: r10,
                ndcg10: nd,
                members: n,
                seconds: secs,
            });
        }
        let (r20, r10, nd, n) = own_tokens_only(&data, &h);
        rows.push(Row {
            label: "own tokens only (no other member's data)".into(),
            epsilon: Some(0.0),
            sigma: None,
            recall20: r20,
            recall10: r10,
            ndcg10: nd,
            members: n,
            seconds: 0.0,
        });
        let base = rows[0].recall20;
        let delta = consentry_dp::default_delta(Some(members));
        let _ = writeln!(
            md,
            "**S = {shards} shards** (δ = {delta:.3e}, C = {}, k = {}, one Gaussian release per shard, improved conversion)\n",
            o.clip, h.factors
        );
        let structure = rows[1].recall20;
        let _ = writeln!(
            md,
            "| model | ε | σ | Recall@20 | vs non-private iALS | vs σ = 0 | Recall@10 | NDCG@10 | members | train s |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        let mut pts = Vec::new();
        for r in &rows {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.4} | {:.1} % | {:.1} % | {:.4} | {:.4} | {} | {:.1} |",
                r.label,
                r.epsilon.map_or("∞".into(), |e| format!("{e}")),
                r.sigma.map_or("–".into(), |s| format!("{s:.3}")),
                r.recall20,
                100.0 * r.recall20 / base.max(f64::MIN_POSITIVE),
                100.0 * r.recall20 / structure.max(f64::MIN_POSITIVE),
                r.recall10,
                r.ndcg10,
                r.members,
                r.seconds
            );
            if let Some(e) = r.epsilon.filter(|&e| e > 0.0) {
                pts.push((e, r.recall20));
            }
            eprintln!("RESULT S={shards} {} eps={:?} recall20={:.4}", r.label, r.epsilon, r.recall20);
        }
        let _ = writeln!(md);
        series.push((shards, base, pts));
    }
    print!("{md}");
    std::fs::write(o.out.join("utility.md"), &md).unwrap_or_else(|e| die("utility.md", e));
    plot(&o, &series);
    eprintln!("wrote {} and {}", o.out.join("utility.md").display(), o.out.join("utility.svg").display());
}

fn plot(o: &Opts, series: &[Series]) {
    let path = o.out.join("utility.svg");
    let root = SVGBackend::new(&path, (720, 440)).into_drawing_area();
    root.fill(&WHITE).unwrap_or_else(|e| die("plot", e));
    let ymax =
        series.iter().flat_map(|s| std::iter::once(s.1).chain(s.2.iter().map(|p| p.1))).fold(0.0f64, f64::max) * 1.15;
    let (xmin, xmax) = (0.4f64, 10.0f64);
    let mut chart = ChartBuilder::on(&root)
        .caption("Job recommendations: Recall@20 vs ε (dashed: non-private iALS)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d((xmin..xmax).log_scale(), 0.0..ymax.max(0.01))
        .unwrap_or_else(|e| die("plot", e));
    chart
        .configure_mesh()
        .x_desc("ε (log scale; δ = default_delta(N))")
        .y_desc("Recall@20")
        .draw()
        .unwrap_or_else(|e| die("plot", e));
    for (i, (s, base, pts)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
            .unwrap_or_else(|e| die("plot", e))
            .label(format!("DP, S = {s}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled()))).unwrap_or_else(|e| die("plot", e));
        chart
            .draw_series(DashedLineSeries::new(vec![(xmin, *base), (xmax, *base)], 6, 4, color.stroke_width(1)))
            .unwrap_or_else(|e| die("plot", e));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .unwrap_or_else(|e| die("plot", e));
    root.present().unwrap_or_else(|e| die("plot", e));
}

/// The data-free baseline: each member's jobs ranked by the overlap of their own token profile (profile tokens and
/// the tokens of jobs they touched, as the DP model builds it) with each job's tokens — nothing learned from anyone
/// else, so ε = 0 for every other member.
fn own_tokens_only(data: &[ShardData], h: &RecHyper) -> (f64, f64, f64, u64) {
    use std::collections::{BTreeMap, BTreeSet};
    let mut sum = recs::PerMember::default();
    for d in data {
        let catalogue: Vec<usize> = (0..d.items.len()).filter(|&j| !d.item_tokens.row(j).0.is_empty()).collect();
        for (ui, targets) in &d.heldout {
            let u = *ui as usize;
            let mut p: BTreeMap<u32, f64> = BTreeMap::new();
            let (cs, ws) = d.train.row(u);
            for (&j, &w) in cs.iter().zip(ws) {
                let (ts, tw) = d.item_tokens.row(j as usize);
                for (&t, &x) in ts.iter().zip(tw) {
                    *p.entry(t).or_default() += f64::from(w) * f64::from(x);
                }
            }
            for &t in d.user_tokens.row(u).0 {
                *p.entry(t).or_default() += f64::from(h.token_weight);
            }
            let seen: BTreeSet<u32> = cs.iter().copied().collect();
            let mut scored: Vec<(u64, f64)> = catalogue
                .iter()
                .filter(|&&j| !seen.contains(&(j as u32)))
                .map(|&j| {
                    let (ts, tw) = d.item_tokens.row(j);
                    (d.items[j], ts.iter().zip(tw).map(|(t, &x)| p.get(t).copied().unwrap_or(0.0) * f64::from(x)).sum())
                })
                .collect();
            scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let ranked: Vec<u64> = scored.into_iter().take(20).map(|x| x.0).collect();
            sum.push(&ranked, &targets.iter().copied().collect());
        }
    }
    let m = sum.metrics();
    (m.recall_at_20, m.recall_at_10, m.ndcg_at_10, m.members)
}
