//! OpenLineage events of real gate and train runs on the fixture data directory: START then COMPLETE (or FAIL)
//! with one run id, the manifest's commitments in the output's facet, a collector that is down never failing the
//! run, and the events POSTed to a collector over plain HTTP. (Schema validation against the OpenLineage spec is
//! in `crates/consentry-py/tests/test_openlineage.py`.)

use consentry_app::gate::{GateRun, options};
use consentry_app::openlineage::{HttpTarget, LineageConfig, Transport, Warn};
use consentry_app::train::{Registration, TrainRequest};
use consentry_app::{DataDir, NoProgress, Session};
use consentry_gate::Manifest;
use consentry_learn::train::{ModelKind, TrainOptions};
use consentry_ledger::position::At;
use consentry_test_support::cli::copy_dir;
use serde_json::Value;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const JOBS: &str = "train_ai_system.job_recommendations";

/// A private copy of the fixture data directory.
fn fixture() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../consentry/tests/fixtures/datadir-v1"), &data);
    (dir, data)
}

/// Warnings, kept for the test to read.
fn warnings() -> (Warn, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    (Arc::new(move |m: &str| s.lock().unwrap().push(m.to_string())), seen)
}

fn session(data: &Path, transport: Transport) -> (Session, Arc<Mutex<Vec<String>>>) {
    let (warn, seen) = warnings();
    let cfg = LineageConfig { transport, namespace: "consentry://test".into(), parent: None };
    (Session::open(DataDir::new(data), None).unwrap().with_lineage_config(cfg, warn), seen)
}

fn gate_run(out: &Path) -> GateRun {
    GateRun {
        purpose: JOBS.into(),
        at: At::Now,
        sources: None,
        base: None,
        out: out.to_path_buf(),
        options: options(Some(1), 8, None),
        deadline_secs: None,
    }
}

fn events(file: &Path) -> Vec<Value> {
    std::fs::read_to_string(file).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn a_gate_run_writes_start_then_complete_with_the_manifests_commitments() {
    let (tmp, data) = fixture();
    let file = tmp.path().join("events.jsonl");
    let (s, warned) = session(&data, Transport::File(file.clone()));
    let out = tmp.path().join("ds");
    let g = s.gate(gate_run(&out), &NoProgress).unwrap();
    let ev = events(&file);
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert_eq!((ev[0]["eventType"].as_str(), ev[1]["eventType"].as_str()), (Some("START"), Some("COMPLETE")));
    let id = ev[0]["run"]["runId"].as_str().unwrap();
    assert_eq!(ev[1]["run"]["runId"], id);
    assert_eq!(id.len(), 36);
    for e in &ev {
        assert_eq!(e["job"]["name"], format!("gate.{JOBS}"));
        assert_eq!(e["job"]["namespace"], "consentry://test");
        assert_eq!(e["outputs"][0]["namespace"], "file");
        assert_eq!(e["outputs"][0]["name"], std::fs::canonicalize(&out).unwrap().display().to_string());
    }
    // The facet says what the manifest on disk says.
    let m = Manifest::read(&out).unwrap();
    assert_eq!(m, g.manifest);
    let f = &ev[1]["outputs"][0]["facets"]["consentry_manifest"];
    assert_eq!(f["purpose"], JOBS);
    assert_eq!(f["ledger"]["position"], m.ledger.position);
    assert_eq!(f["ledger"]["tree_root"], m.ledger.tree_root);
    assert_eq!(f["snapshot"]["hash"], m.snapshot.hash);
    assert_eq!(
        (f["snapshot"]["allowed"].as_u64(), f["snapshot"]["members"].as_u64()),
        (Some(m.snapshot.allowed), Some(m.snapshot.members))
    );
    assert_eq!(f["members"]["commitment"], m.members.commitment);
    assert_eq!(f["members"]["count"], m.members.count);
    assert_eq!(
        (f["policy"]["version"].as_str(), f["policy"]["hash"].as_str()),
        (Some(m.policy.version.as_str()), Some(m.policy.hash.as_str()))
    );
    let included: Vec<_> = m.tables.iter().filter(|(_, t)| t.included).collect();
    assert!(!included.is_empty());
    for (name, t) in included {
        assert_eq!(f["tables"][name]["row_commitment"], t.row_commitment, "{name}");
        assert_eq!(f["tables"][name]["rows_out"], t.rows_out, "{name}");
    }
    let id = g.dataset_id.clone().unwrap();
    assert_eq!(f["dataset_id"], id);
    let manifest_hash = blake3::hash(&std::fs::read(out.join("manifest.json")).unwrap()).to_hex().to_string();
    assert_eq!(f["manifest_blake3"], manifest_hash);
    let o = &ev[1]["outputs"][0];
    assert_eq!(o["facets"]["version"]["datasetVersion"], id);
    assert_eq!(o["outputFacets"]["outputStatistics"]["rowCount"], m.rows_out);
    assert_eq!(o["outputFacets"]["outputStatistics"]["fileCount"], m.files.len());
    // Columns with their Parquet types.
    let tables = o["facets"]["schema"]["fields"].as_array().unwrap();
    let activity = tables.iter().find(|t| t["name"] == "job_activity").unwrap();
    assert!(activity["fields"].as_array().unwrap().iter().any(|c| c["name"] == "member_id" && c["type"] == "UInt64"));
    // Inputs: the ledger at the manifest's position, and the source tables.
    let ledger = ev[1]["inputs"].as_array().unwrap().iter().find(|i| i["name"] == "ledger").unwrap();
    assert_eq!(ledger["facets"]["version"]["datasetVersion"], m.ledger.position.to_string());
    assert!(
        ev[1]["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["name"].as_str().unwrap().ends_with("job_activity.parquet"))
    );
    // Every facet carries the base facet's fields; no member id anywhere.
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.matches("\"_producer\"").count(), text.matches("\"_schemaURL\"").count());
    assert!(warned.lock().unwrap().is_empty());

    // Train on it: the dataset is the input (with its commitments), the registered model the output.
    let model = tmp.path().join("model");
    let t = s
        .train(
            TrainRequest {
                dataset: Some(out.clone()),
                out: Some(model.clone()),
                register: true,
                options: TrainOptions::new(ModelKind::JobRecs),
            },
            &NoProgress,
        )
        .unwrap();
    let Registration::Registered(model_id) = &t.registration else { panic!("{:?}", t.registration) };
    let ev = events(&file);
    assert_eq!(ev.len(), 4);
    assert_eq!((ev[2]["eventType"].as_str(), ev[3]["eventType"].as_str()), (Some("START"), Some("COMPLETE")));
    assert_eq!(ev[2]["run"]["runId"], ev[3]["run"]["runId"]);
    assert_ne!(ev[2]["run"]["runId"], ev[0]["run"]["runId"]);
    assert_eq!(ev[3]["job"]["name"], "train.job-recs");
    assert_eq!(ev[3]["inputs"][0]["name"], ev[1]["outputs"][0]["name"], "the lineage graph joins gate and train");
    assert_eq!(ev[3]["inputs"][0]["facets"]["consentry_manifest"]["dataset_id"], id);
    let mo = &ev[3]["outputs"][0];
    assert_eq!(mo["facets"]["datasetType"]["datasetType"], "MODEL");
    assert_eq!(mo["facets"]["version"]["datasetVersion"], model_id.as_str());
    assert_eq!(mo["facets"]["consentry_model"]["dataset"]["manifest_blake3"], id);
    assert_eq!(mo["facets"]["consentry_model"]["shards"].as_array().unwrap().len(), t.report.meta.shards.len());
}

#[test]
fn a_refused_gate_writes_start_and_fail_and_fails_as_before() {
    let (tmp, data) = fixture();
    let file = tmp.path().join("events.jsonl");
    let (s, _) = session(&data, Transport::File(file.clone()));
    let out = tmp.path().join("taken");
    std::fs::create_dir(&out).unwrap();
    let e = s.gate(gate_run(&out), &NoProgress).unwrap_err();
    let ev = events(&file);
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert_eq!((ev[0]["eventType"].as_str(), ev[1]["eventType"].as_str()), (Some("START"), Some("FAIL")));
    assert_eq!(ev[0]["run"]["runId"], ev[1]["run"]["runId"]);
    let msg = ev[1]["run"]["facets"]["errorMessage"]["message"].as_str().unwrap();
    assert!(msg.contains(&e.to_string()), "{msg} / {e}");
    assert_eq!(ev[1]["run"]["facets"]["errorMessage"]["programmingLanguage"], "RUST");
    assert_eq!(ev[1]["outputs"].as_array().unwrap().len(), 0, "a failed run wrote nothing");

    // A purpose the policy does not know fails later, after loading the sources: the same pair.
    let (s, _) = session(&data, Transport::File(file.clone()));
    let mut run = gate_run(&tmp.path().join("fresh"));
    run.purpose = "no.such.purpose".into();
    assert!(s.gate(run, &NoProgress).is_err());
    let ev = events(&file);
    assert_eq!(ev.len(), 4);
    assert_eq!((ev[2]["eventType"].as_str(), ev[3]["eventType"].as_str()), (Some("START"), Some("FAIL")));
    assert_eq!(ev[2]["run"]["runId"], ev[3]["run"]["runId"]);
}

#[test]
fn a_collector_that_is_down_warns_once_and_the_run_goes_on() {
    let (tmp, data) = fixture();
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let target = HttpTarget::parse(&format!("http://127.0.0.1:{port}/api/v1/lineage"), None).unwrap();
    let (s, warned) = session(&data, Transport::Http(target));
    let out = tmp.path().join("ds");
    let g = s.gate(gate_run(&out), &NoProgress).unwrap();
    assert!(g.dataset_id.is_some() && out.join("manifest.json").is_file());
    let w = warned.lock().unwrap();
    assert_eq!(w.len(), 1, "one warning for a collector that stays down: {w:?}");
    assert!(w[0].contains("START") && w[0].contains("goes on"), "{w:?}");
}

/// A collector: answers each POST with `status`, hands back (request head, body).
fn collector(status: u16, n: usize) -> (u16, std::thread::JoinHandle<Vec<(String, String)>>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let mut got = Vec::new();
        for _ in 0..n {
            let (mut c, _) = l.accept().unwrap();
            let mut r = BufReader::new(c.try_clone().unwrap());
            let mut head = String::new();
            let mut len = 0;
            loop {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                if line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            c.write_all(format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n").as_bytes()).unwrap();
            got.push((head, String::from_utf8(body).unwrap()));
        }
        got
    });
    (port, h)
}

#[test]
fn events_are_posted_to_a_collector_with_the_api_key() {
    let (tmp, data) = fixture();
    let (port, h) = collector(201, 2);
    let target = HttpTarget::parse(&format!("http://127.0.0.1:{port}/api/v1/lineage"), Some("s3cret".into())).unwrap();
    let (s, warned) = session(&data, Transport::Http(target));
    s.gate(gate_run(&tmp.path().join("ds")), &NoProgress).unwrap();
    let got = h.join().unwrap();
    assert_eq!(got.len(), 2);
    for (head, _) in &got {
        assert!(head.starts_with("POST /api/v1/lineage HTTP/1.1\r\n"), "{head}");
        assert!(head.to_ascii_lowercase().contains("content-type: application/json"), "{head}");
        assert!(head.contains("authorization: Bearer s3cret"), "{head}");
    }
    let ev: Vec<Value> = got.iter().map(|(_, b)| serde_json::from_str(b).unwrap()).collect();
    assert_eq!((ev[0]["eventType"].as_str(), ev[1]["eventType"].as_str()), (Some("START"), Some("COMPLETE")));
    assert_eq!(ev[0]["run"]["runId"], ev[1]["run"]["runId"]);
    assert!(warned.lock().unwrap().is_empty());

    // A collector that refuses (HTTP 500) is a failed send: warned, the run still succeeds.
    let (port, h) = collector(500, 2);
    let target = HttpTarget::parse(&format!("http://127.0.0.1:{port}/"), None).unwrap();
    let (s, warned) = session(&data, Transport::Http(target));
    s.gate(gate_run(&tmp.path().join("ds2")), &NoProgress).unwrap();
    assert_eq!(h.join().unwrap().len(), 2, "the COMPLETE event is still tried after a failed START");
    let w = warned.lock().unwrap();
    assert!(w.len() == 1 && w[0].contains("HTTP 500"), "{w:?}");
}

#[test]
fn without_configuration_nothing_is_emitted() {
    let (tmp, data) = fixture();
    let s = Session::open(DataDir::new(&data), None).unwrap().with_openlineage(None, &|_| None, warnings().0).unwrap();
    assert!(s.lineage_config().is_none());
    s.gate(gate_run(&tmp.path().join("ds")), &NoProgress).unwrap();
    // The environment's file transport, as the OpenLineage clients spell it.
    let file = tmp.path().join("env.jsonl");
    let f = file.display().to_string();
    let env = move |k: &str| match k {
        "OPENLINEAGE__TRANSPORT__TYPE" => Some("file".to_string()),
        "OPENLINEAGE__TRANSPORT__LOG_FILE_PATH" => Some(f.clone()),
        _ => None,
    };
    let s = Session::open(DataDir::new(&data), None).unwrap().with_openlineage(None, &env, warnings().0).unwrap();
    s.gate(gate_run(&tmp.path().join("ds2")), &NoProgress).unwrap();
    assert_eq!(events(&file).len(), 2);
    assert_eq!(events(&file)[0]["job"]["namespace"], "consentry://data");
}
