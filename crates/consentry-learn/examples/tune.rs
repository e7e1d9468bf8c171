//! Grid over recommender hyper-parameters on a dataset: `cargo run --release -p consentry-learn --example tune -- DATASET KIND SHARDS`.
use consentry_learn::train::{ModelKind, TrainOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let ds = std::path::PathBuf::from(args.get(1).ok_or("DATASET")?);
    let kind = if args.get(2).map(String::as_str) == Some("content") { ModelKind::Content } else { ModelKind::JobRecs };
    let shards: u32 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
    let grid = std::env::var("GRID").unwrap_or_default();
    for spec in grid.split(';').filter(|s| !s.is_empty()) {
        let mut o = TrainOptions::new(kind);
        o.shards = Some(shards);
        for kv in spec.split(',') {
            let (k, v) = kv.split_once('=').ok_or("k=v")?;
            let f: f32 = v.parse()?;
            match k {
                "factors" => o.rec.factors = f as usize,
                "iters" => o.rec.iterations = f as usize,
                "reg" => o.rec.reg = f,
                "alpha" => o.rec.alpha = f,
                "tw" => o.rec.token_weight = f,
                "creg" => o.rec.content_reg = f,
                "shrink" => o.rec.content_shrink = f,
                "strong" => o.rec.strong_weight = f,
                _ => return Err(format!("unknown {k}").into()),
            }
        }
        let out = std::env::temp_dir().join(format!("tune-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let r = consentry_learn::train(&ds, &out, &o, &|_| {})?;
        let m = &r.meta.metrics["model"];
        println!(
            "{spec:50} R@10 {:.3} R@20 {:.3} NDCG {:.3} ({:.1}s)",
            m["recall_at_10"].as_f64().unwrap_or(0.0),
            m["recall_at_20"].as_f64().unwrap_or(0.0),
            m["ndcg_at_10"].as_f64().unwrap_or(0.0),
            r.meta.train_seconds
        );
        std::fs::remove_dir_all(&out)?;
    }
    Ok(())
}
