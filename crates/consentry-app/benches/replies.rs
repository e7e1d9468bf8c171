//! Reply suggestions against the most-frequent baseline and the oracle (issue 18): trains the replies model on a
//! demo's gated dataset — plain and with member-level DP-SGD — and scores model, most frequent and oracle (the
//! synthetic network's true reply-intent distribution) on the same held-out pairs, with 95 % bootstrap intervals
//! and paired `model ÷ oracle` ratios. Prints a markdown table.
//!
//!   cargo bench -p consentry-app --bench replies -- --data DIR [--shards 8,1] [--epsilon 1] [--seed 42]
//!       [--dp-steps T] [--dp-sample-rate q] [--dp-clip C]
//!
//! The DP flags override `DpOptions::new`'s replies schedule (σ is still calibrated for ε, δ, q and T).
//!
//! DIR is a `consentry demo` data directory (its `datasets/reply_suggestions` and `network`); see
//! `bench/learn/replies.sh`.

use std::path::PathBuf;

use anyhow::{Context, bail};
use consentry_learn::dp::DpOptions;
use consentry_learn::train::{ModelKind, TrainOptions};

struct Args {
    data: PathBuf,
    shards: Vec<u32>,
    epsilon: f64,
    seed: u64,
    dp_steps: Option<u32>,
    dp_q: Option<f64>,
    dp_clip: Option<f64>,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        data: PathBuf::new(),
        shards: vec![8, 1],
        epsilon: 1.0,
        seed: 42,
        dp_steps: None,
        dp_q: None,
        dp_clip: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().with_context(|| format!("{k} needs a value"));
        match k.as_str() {
            "--data" => a.data = PathBuf::from(v()?),
            "--shards" => a.shards = v()?.split(',').map(str::parse).collect::<Result<_, _>>()?,
            "--epsilon" => a.epsilon = v()?.parse()?,
            "--seed" => a.seed = v()?.parse()?,
            "--dp-steps" => a.dp_steps = Some(v()?.parse()?),
            "--dp-sample-rate" => a.dp_q = Some(v()?.parse()?),
            "--dp-clip" => a.dp_clip = Some(v()?.parse()?),
            "--bench" => {}
            other => bail!("unknown argument {other}"),
        }
    }
    if a.data.as_os_str().is_empty() {
        bail!("--data DIR (a `consentry demo` data directory) is required");
    }
    Ok(a)
}

/// `0.305 [0.287, 0.324]` from an interval object.
fn ci(v: &serde_json::Value) -> String {
    match (v["value"].as_f64(), v["lo"].as_f64(), v["hi"].as_f64()) {
        (Some(x), Some(lo), Some(hi)) => format!("{x:.3} [{lo:.3}, {hi:.3}]"),
        _ => "–".into(),
    }
}

fn main() -> anyhow::Result<()> {
    let a = args()?;
    let dataset = a.data.join("datasets/reply_suggestions");
    let network = a.data.join("network");
    let summary = consentry_synth::read_summary(&network)?;
    let work = tempfile::tempdir()?;
    println!(
        "replies on {} members (seed {}), {} — top-1 and top-3 intent accuracy on held-out covered pairs, 95 % CIs\n",
        summary.config.members,
        summary.config.seed,
        dataset.display()
    );
    println!(
        "| ranker | shards | metric | model | most frequent | oracle | model ÷ oracle | held-out pairs (covered) | seconds |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for &shards in &a.shards {
        for dp in [false, true] {
            let mut opts = TrainOptions::new(ModelKind::Replies);
            opts.shards = Some(shards);
            opts.seed = a.seed;
            if dp {
                let mut d = DpOptions::new(a.epsilon, work.path().join("dp-noise.key"));
                if let Some(s) = a.dp_steps {
                    d.steps = s;
                }
                if let Some(q) = a.dp_q {
                    d.sample_rate = q;
                }
                if let Some(c) = a.dp_clip {
                    d.clip = c;
                }
                opts.dp = Some(d);
            }
            let name = if dp { format!("DP-SGD ε = {}", a.epsilon) } else { "plain".into() };
            let out = work.path().join(format!("replies-{shards}-{dp}"));
            let t = std::time::Instant::now();
            consentry_learn::train(&dataset, &out, &opts, &|_| {})?;
            let secs = t.elapsed().as_secs_f64();
            let m = consentry_app::replies_oracle::evaluate(&out, &dataset, &network)?;
            let covered =
                (m["model"]["pairs"].as_f64().unwrap_or(0.0) * m["model"]["coverage"].as_f64().unwrap_or(0.0)).round();
            for (metric, key) in [("top-1", "top1"), ("top-3", "top3")] {
                let ci_key = format!("{key}_ci");
                println!(
                    "| {name} | {shards} | {metric} | {} | {} | {} | {} | {} ({covered}) | {secs:.1} |",
                    ci(&m["model"][&ci_key]),
                    ci(&m["most_frequent"][&ci_key]),
                    ci(&m["oracle"][&ci_key]),
                    ci(&m["model_over_oracle"][key]),
                    m["model"]["pairs"],
                );
            }
        }
    }
    Ok(())
}
