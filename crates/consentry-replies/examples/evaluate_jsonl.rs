//! Trains on a JSON-lines file of pairs and prints held-out metrics against the frequency baseline.
//!
//! Usage: `cargo run --release -p consentry-replies --example evaluate_jsonl -- PAIRS.jsonl [K]`, where
//! each line is `{"replier": u64, "incoming": str, "reply": str, "at_ms": i64}`. Members whose id
//! hashes to 0 mod 5 are held out, so no replier is in both sets.

use consentry_replies::{DEFAULT_K, DpSgd, Hyper, Inventory, Pair, ReplyModel, training_members};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: evaluate_jsonl PAIRS.jsonl [K]")?;
    let k: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(DEFAULT_K);
    let mut pairs = Vec::new();
    for line in std::fs::read_to_string(path)?.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        pairs.push(Pair {
            replier: v["replier"].as_u64().ok_or("replier")?,
            incoming: v["incoming"].as_str().ok_or("incoming")?.to_owned(),
            reply: v["reply"].as_str().ok_or("reply")?.to_owned(),
            at_ms: v["at_ms"].as_i64().ok_or("at_ms")?,
        });
    }
    let held_out = |p: &Pair| blake3::hash(&p.replier.to_le_bytes()).as_bytes()[0].is_multiple_of(5);
    let (test, train): (Vec<Pair>, Vec<Pair>) = pairs.into_iter().partition(held_out);
    let inv = Inventory::build(&train, k)?;
    println!(
        "train {} pairs ({} members with covered pairs), test {}; k = {k}: {} responses in {} intents",
        train.len(),
        training_members(&train, &inv),
        test.len(),
        inv.responses().len(),
        inv.intents().len()
    );
    for intent in inv.intents() {
        let texts: Vec<&str> =
            intent.responses.iter().filter_map(|&r| inv.response(r)).map(|r| r.text.as_str()).collect();
        println!("  intent {:>3}: {texts:?}", intent.id);
    }
    let model = ReplyModel::train(&train, inv.clone(), &Hyper::default(), 1, None)?;
    println!("model    {:?}", model.evaluate(&test));
    println!("baseline {:?}", ReplyModel::frequency_baseline(inv.clone()).evaluate(&test));
    let dp = DpSgd { sigma: 1.0, clip: 1.0, sample_rate: 0.05, steps: 200 };
    let hyper = Hyper { buckets: 1 << 10, learning_rate: 2.0, ..Hyper::default() };
    println!("dp-sgd   {:?}", ReplyModel::train(&train, inv, &hyper, 1, Some(&dp))?.evaluate(&test));
    println!("model file {} bytes", model.to_bytes().len());
    Ok(())
}
