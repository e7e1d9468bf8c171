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

    // The privacy officer's report shows the same: both DP models on the ε/utility curve beside their non-DP
    // reference, and the member's composed ε as the group of members in both lines.
    let html_path = dir.path().join("report.html");
    let r: Value = serde_json::from_str(&ok(&consentry(
        &data,
        &["--json", "report", "--no-audit", "--out", html_path.to_str().unwrap()],
    )))
    .unwrap();
    let points = r["dp"]["points"].as_array().unwrap();
    let kinds: Vec<&str> = points.iter().map(|x| x["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"job-recs") && kinds.contains(&"replies"), "{}", r["dp"]);
    assert!(points.iter().all(|x| x["epsilon"].as_f64().is_some_and(|e| e > 0.0 && e <= 2.0 + 1e-9)), "{}", r["dp"]);
    assert_eq!(r["dp"]["references"].as_array().unwrap().len(), 2, "a non-DP reference per kind: {}", r["dp"]);
    assert!(r["dp"]["how_to"].is_null(), "{}", r["dp"]);
    let loss = &r["privacy_loss"];
    assert!(loss["bounded"].as_u64().unwrap() >= both.len(), "{loss}");
    let binned: u64 = loss["bins"].as_array().unwrap().iter().map(|b| b["members"].as_u64().unwrap()).sum();
    assert_eq!(binned, loss["bounded"].as_u64().unwrap(), "every bounded member in one bin: {loss}");
    let pair = loss["groups"].as_array().unwrap().iter().find(|g| g["lines"].as_array().unwrap().len() == 2);
    let pair = pair.unwrap_or_else(|| panic!("no group of members in both DP lines: {loss}"));
    assert_eq!(pair["members"].as_u64().unwrap(), both.len(), "{loss}");
    let member_eps = c["epsilon"].as_f64().unwrap();
    assert!((pair["epsilon"].as_f64().unwrap() - member_eps).abs() < 1e-9, "the member's ε {member_eps}: {loss}");
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.contains("<section id=\"dp\"") && html.matches("<svg").count() >= 2, "charts in the report");
}
