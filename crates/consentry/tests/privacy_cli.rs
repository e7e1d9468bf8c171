//! Promise 7's privacy loss end to end: `train --dp-epsilon` records a claim that `dp model` re-derives, and
//! `lineage member` composes a member's loss over every DP model line their data entered — once per line, not
//! once per version — and names the lines without a formal bound.

mod common;

use common::{consentry, model_members as members, ok};
use consentry_app::DataDir;
use serde_json::Value;

#[test]
fn dp_claims_are_rederived_and_compose_per_member() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(&consentry(&data, &["--quiet", "demo", "--members", "4000", "--seed", "3"]));
    let jobs = DataDir::new(&data).models_dir().join("jobs-dp");
    let replies = DataDir::new(&data).models_dir().join("replies-dp");
    for (model, out, eps) in [("job-recs", &jobs, "1"), ("replies", &replies, "2")] {
        ok(&consentry(
            &data,
            &["--quiet", "train", "--model", model, "--dp-epsilon", eps, "--out", out.to_str().unwrap()],
        ));
        // An auditor re-derives the claim from the mechanism recorded in model.json.
        let v: Value =
            serde_json::from_str(&ok(&consentry(&data, &["--json", "dp", "model", "--model", out.to_str().unwrap()])))
                .unwrap();
        assert_eq!(v["holds"], true, "{v}");
        let (claimed, derived) = (v["claimed_epsilon"].as_f64().unwrap(), v["epsilon"].as_f64().unwrap());
        assert!(derived <= claimed + 1e-9 && claimed <= eps.parse::<f64>().unwrap() + 1e-9, "{v}");
    }
    let both = &members(&jobs) & &members(&replies);
    let m = both.min().expect("a member in both DP models");
    let l: Value =
        serde_json::from_str(&ok(&consentry(&data, &["--json", "lineage", "member", &m.to_string()]))).unwrap();
    let p = &l["privacy"];
    let lines = p["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2, "one entry per DP model line: {p}");
    let sum: f64 = lines.iter().map(|x| x["epsilon"].as_f64().unwrap()).sum();
    let c = &p["cumulative"];
    assert!((c["basic_epsilon"].as_f64().unwrap() - sum).abs() < 1e-9, "{p}");
    assert!(c["rdp_epsilon"].as_f64().unwrap() <= sum + 1e-9, "RDP composition is never looser: {p}");
    assert!(sum <= 3.0 + 1e-9, "ε 1 + ε 2 at most: {p}");
    // The demo's own models were trained without DP: named, not summed.
    assert!(!p["without_bound"].as_array().unwrap().is_empty(), "{p}");
}
