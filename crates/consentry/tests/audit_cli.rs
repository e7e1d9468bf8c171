//! `consentry audit` end to end: a clean demo passes online and offline; each planted violation
//! (a non-consented dataset member, a withdrawal left past the deadline, a rewritten ledger row, an
//! altered bundle byte, an understated ε, an altered shard file) is reported with exit code 1.

mod common;

use common::{consentry, copy_dir, ok, read_bitmap, text};
use consentry_app::DataDir;
use roaring::RoaringTreemap;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

const JOBS: &str = "train_ai_system.job_recommendations";

/// One demo for the whole file (a few seconds); each test works on its own copy. It lives under
/// Cargo's per-target temporary directory and is replaced by the next run.
fn demo() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("audit_cli-demo");
        if dir.exists() {
            std::fs::remove_dir_all(&dir).unwrap();
        }
        let data = dir.join("data");
        ok(&consentry(&data, &["--quiet", "demo", "--members", "4000", "--seed", "3"]));
        data
    })
}

/// A private copy of the demo data directory (the temporary directory lives as long as the guard).
fn fresh() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_dir(demo(), &data);
    (dir, data)
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\nstdout:\n{}\nstderr:\n{}", text(&o.stdout), text(&o.stderr)))
}

/// Runs `audit ARGS --json`, asserts exit code `code`, returns the report.
fn audit(data: &Path, args: &[&str], code: i32) -> Value {
    let mut all = vec!["--json", "audit"];
    all.extend_from_slice(args);
    let o = consentry(data, &all);
    assert_eq!(o.status.code(), Some(code), "stdout:\n{}\nstderr:\n{}", text(&o.stdout), text(&o.stderr));
    json_of(&o)
}

/// How many models the report lists as live, and as superseded.
fn live_and_superseded(report: &Value) -> (usize, usize) {
    let status = |s: &str| report["models"].as_array().unwrap().iter().filter(|m| m["status"] == s).count();
    (status("live"), status("superseded"))
}

fn findings<'a>(report: &'a Value, kind: &str) -> Vec<&'a Value> {
    report["findings"].as_array().unwrap().iter().filter(|f| f["kind"] == kind).collect()
}

fn write_bitmap(p: &Path, b: &RoaringTreemap) -> String {
    let mut bytes = Vec::new();
    b.serialize_into(&mut bytes).unwrap();
    std::fs::write(p, &bytes).unwrap();
    blake3::hash(&bytes).to_hex().to_string()
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn write_json(p: &Path, v: &Value) -> String {
    let bytes = serde_json::to_vec_pretty(v).unwrap();
    std::fs::write(p, &bytes).unwrap();
    blake3::hash(&bytes).to_hex().to_string()
}

fn export(data: &Path, out: &Path) {
    ok(&consentry(data, &["--quiet", "audit", "export", "--out", out.to_str().unwrap()]));
}

#[test]
fn clean_demo_passes_online_and_offline_and_bad_input_exits_2() {
    let (dir, data) = fresh();
    let r = audit(&data, &[], 0);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["mode"], "online");
    // The demo's first versions, superseded by unlearning, and the three live versions.
    assert_eq!(live_and_superseded(&r), (3, 3), "{r}");
    for d in r["datasets"].as_array().unwrap() {
        assert!(d["members"].as_u64().unwrap() > 0, "{d}");
        assert_eq!(d["members"], d["allowed_recomputed"], "{d}");
    }
    assert!(r["ledger"]["events"].as_u64().unwrap() > 1000, "{r}");
    assert!(r["ledger"]["checkpoints"].as_u64().unwrap() >= 1, "{r}");

    let bundle = dir.path().join("bundle");
    export(&data, &bundle);
    assert!(bundle.join("INDEX.json").is_file() && bundle.join("ledger/events.jsonl").is_file());
    let pubkey = DataDir::new(&data).public_key_file();
    let r = audit(&data, &["--offline", bundle.to_str().unwrap(), "--public-key", pubkey.to_str().unwrap()], 0);
    assert_eq!(r["mode"], "bundle");
    // The demo's first versions, superseded by unlearning, and the three live versions.
    assert_eq!(live_and_superseded(&r), (3, 3), "{r}");
    let out = ok(&consentry(&data, &["audit", "--offline", bundle.to_str().unwrap()]));
    assert!(out.contains("audit passed"), "{out}");

    // The signed heads the auditor saw earlier must still be extended by the log.
    let heads = bundle.join("ledger/checkpoints.json");
    audit(&data, &["--offline", bundle.to_str().unwrap(), "--heads", heads.to_str().unwrap()], 0);

    // One model only.
    let r = audit(&data, &["--model", "job-recs.v2"], 0);
    assert_eq!(r["models"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(r["datasets"].as_array().unwrap().len(), 1, "{r}");

    // Bad input: exit 2 with a message.
    let o = consentry(&data, &["audit", "export", "--out", bundle.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("already exists"), "{}", text(&o.stderr));
    let o = consentry(&data, &["audit", "--offline", dir.path().join("nowhere").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("not an evidence bundle"), "{}", text(&o.stderr));
    let o = consentry(&data, &["audit", "--model", "no-such-model"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let o = consentry(&data, &["audit", "--deadline", "-5"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
}

/// A member of the directory who never granted the purpose (opt-in everywhere: denied).
fn never_granted(data: &Path, purpose: &str, not_in: &RoaringTreemap) -> u64 {
    let conn = rusqlite::Connection::open(DataDir::new(data).ledger_db()).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT DISTINCT member_id FROM facts WHERE member_id NOT IN \
             (SELECT e.member_id FROM events e JOIN purposes p ON p.id = e.purpose_id WHERE p.key = ?1) \
             ORDER BY member_id",
        )
        .unwrap();
    let ids: Vec<u64> = stmt
        .query_map([purpose], |r| r.get::<_, i64>(0))
        .unwrap()
        .map(|r| r.unwrap() as u64)
        .filter(|m| !not_in.contains(*m))
        .collect();
    *ids.first().expect("some member never granted")
}

#[test]
fn dataset_member_not_allowed_at_its_position_is_reported() {
    let (dir, data) = fresh();
    // Plant a member who never consented, consistently: bitmap, manifest commitment, model reference,
    // shard bitmap and its commitment all agree, so only recomputing consent from the ledger can tell.
    let ds = DataDir::new(&data).datasets_dir().join("job_recommendations");
    let mut members = read_bitmap(&ds.join("members.roaring"));
    let intruder = never_granted(&data, JOBS, &members);
    members.insert(intruder);
    let commitment = write_bitmap(&ds.join("members.roaring"), &members);
    let mut manifest = read_json(&ds.join("manifest.json"));
    manifest["members"]["commitment"] = commitment.clone().into();
    manifest["members"]["count"] = members.len().into();
    let manifest_hash = write_json(&ds.join("manifest.json"), &manifest);

    let model = DataDir::new(&data).models_dir().join("job-recs.v2");
    let mut meta = read_json(&model.join("model.json"));
    meta["dataset"]["manifest_blake3"] = manifest_hash.into();
    meta["dataset"]["members_commitment"] = commitment.into();
    meta["dataset"]["members"] = members.len().into();
    let shard_function: consentry_gate::ShardFunction = serde_json::from_value(meta["shard_function"].clone()).unwrap();
    let shard = shard_function.shard_of(intruder).unwrap() as usize;
    let s = &mut meta["shards"][shard];
    let file = model.join(s["members_file"].as_str().unwrap());
    let mut b = read_bitmap(&file);
    b.insert(intruder);
    s["members_commitment"] = write_bitmap(&file, &b).into();
    s["members"] = b.len().into();
    write_json(&model.join("model.json"), &meta);

    let check = |r: &Value| {
        let f = findings(r, "member_not_allowed");
        assert_eq!(f.len(), 1, "{r}");
        assert_eq!(f[0]["member"], intruder, "{r}");
        assert_eq!(f[0]["dataset"], "job_recommendations", "{r}");
        assert!(f[0]["found"].as_str().unwrap().contains("no_grant"), "{r}");
        assert!(findings(r, "commitment_mismatch").is_empty(), "the planting is consistent: {r}");
        assert!(findings(r, "shard_membership").is_empty(), "{r}");
    };
    let r = audit(&data, &["--model", "job-recs.v2"], 1);
    check(&r);
    // Online also sees that the Parquet files do not hold the planted member.
    assert!(!findings(&r, "dataset_files").is_empty(), "{r}");

    let bundle = dir.path().join("bundle");
    export(&data, &bundle);
    let r = audit(&data, &["--offline", bundle.to_str().unwrap()], 1);
    check(&r);

    // The human rendering names the violation and its evidence.
    let o = consentry(&data, &["audit", "--offline", bundle.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o.stdout);
    assert!(out.contains("VIOLATION member_not_allowed") && out.contains(&format!("member {intruder}")), "{out}");
    assert!(out.contains("expected: allowed at position"), "{out}");
}

#[test]
fn withdrawal_left_in_a_live_model_past_the_deadline_is_reported() {
    let (dir, data) = fresh();
    let member =
        read_bitmap(&DataDir::new(&data).models_dir().join("job-recs.v2/shard-000.members.roaring")).min().unwrap();
    let m = member.to_string();
    let o = ok(&consentry(
        &data,
        &["--json", "ledger", "append", "--member", &m, "--purpose", JOBS, "--action", "withdraw", "--source", "ui"],
    ));
    let appended: Value = serde_json::from_str(&o).unwrap();
    let seq = appended["seq"].as_u64().or_else(|| appended["event"]["seq"].as_u64()).expect("seq in append output");

    // Within the default 24 h deadline: no violation, but the pending withdrawal is visible.
    let r = audit(&data, &["--model", "job-recs.v2"], 0);
    assert_eq!(r["models"][0]["pending_withdrawals"], 1, "{r}");

    // Past the deadline: a violation naming the member, the model and the withdrawal (online and offline).
    let bundle = dir.path().join("bundle");
    export(&data, &bundle);
    let b = bundle.to_str().unwrap();
    let in_two_hours = later(2 * 3600);
    for args in [
        vec!["--model", "job-recs.v2", "--deadline", "0"],
        vec!["--offline", b, "--deadline", "3600", "--now", &in_two_hours],
        vec!["--offline", b, "--deadline", "0"],
    ] {
        let r = audit(&data, &args, 1);
        let f = findings(&r, "withdrawal_deadline_missed");
        assert_eq!(f.len(), 1, "{r}");
        assert_eq!(f[0]["member"], member, "{r}");
        assert_eq!(f[0]["model"], "job-recs.v2", "{r}");
        assert_eq!(f[0]["seq"], seq, "{r}");
        // A zero deadline also makes the demo's own removals (a second or so after its withdrawals) late.
        let history = findings(&r, "withdrawal_removed_late");
        assert!(history.iter().all(|f| f["seq"].as_u64() < Some(seq)), "{r}");
        assert_eq!(r["violations"], 1 + history.len(), "only the deadline is missed: {r}");
    }
    // Other purposes' models are not affected.
    let o = consentry(&data, &["--json", "audit", "--offline", b, "--deadline", "0", "--model", "content.v2"]);
    let r = json_of(&o);
    assert!(findings(&r, "withdrawal_deadline_missed").is_empty(), "{r}");
    let history = findings(&r, "withdrawal_removed_late");
    assert!(history.iter().all(|f| f["seq"].as_u64() < Some(seq)), "{r}");
    assert_eq!(r["violations"], history.len(), "{r}");
    // Within the deadline offline too.
    audit(&data, &["--offline", b], 0);

    // A withdrawal dated just after the dataset was cut (recorded only now): the member's deadline
    // runs from when they withdrew, so a one-minute deadline has long passed.
    let other =
        read_bitmap(&DataDir::new(&data).models_dir().join("job-recs.v2/shard-001.members.roaring")).min().unwrap();
    let manifest = read_json(&DataDir::new(&data).datasets_dir().join("job_recommendations/manifest.json"));
    let withdrew = (manifest["ledger"]["at"].as_i64().unwrap() + 1).to_string();
    let o = other.to_string();
    ok(&consentry(
        &data,
        &[
            "--quiet",
            "ledger",
            "append",
            "--member",
            &o,
            "--purpose",
            JOBS,
            "--action",
            "withdraw",
            "--event-time",
            &withdrew,
        ],
    ));
    let r = audit(&data, &["--model", "job-recs.v2", "--deadline", "60"], 1);
    let f = findings(&r, "withdrawal_deadline_missed");
    assert_eq!(f.len(), 1, "the first withdrawal is within a minute: {r}");
    assert_eq!(f[0]["member"], other, "{r}");
    assert_eq!(r["models"][0]["pending_withdrawals"], 1, "{r}");
}

fn later(secs: i64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    (now + secs).to_string()
}

#[test]
fn rewritten_ledger_row_is_reported_online_and_offline() {
    let (dir, data) = fresh();
    let conn = rusqlite::Connection::open(DataDir::new(&data).ledger_db()).unwrap();
    // The 17th consent event (the members' fact entries come first in the log).
    let seq: i64 = conn.query_row("SELECT seq FROM events ORDER BY seq LIMIT 1 OFFSET 16", [], |r| r.get(0)).unwrap();
    let n = conn.execute("UPDATE events SET member_id = member_id + 1 WHERE seq = ?1", [seq]).unwrap();
    assert_eq!(n, 1);
    drop(conn);
    let check = |r: &Value| {
        let f = findings(r, "ledger_tampered");
        assert!(!f.is_empty(), "{r}");
        assert!(f.iter().any(|f| f["seq"] == seq), "{r}");
        assert!(f.iter().any(|f| f["message"].as_str().unwrap().contains(&format!("event {seq}"))), "{r}");
    };
    check(&audit(&data, &["--model", "replies.v2"], 1));
    let bundle = dir.path().join("bundle");
    export(&data, &bundle);
    check(&audit(&data, &["--offline", bundle.to_str().unwrap()], 1));
}

#[test]
fn altered_bundle_bytes_are_detected() {
    let (dir, data) = fresh();
    // One digit of one member id in the events.
    let a = dir.path().join("a");
    export(&data, &a);
    let path = a.join("ledger/events.jsonl");
    let mut bytes = std::fs::read(&path).unwrap();
    let line_start = bytes.iter().enumerate().filter(|(_, b)| **b == b'\n').nth(9).unwrap().0 + 1;
    let key = b"\"member_id\":";
    let at = line_start + bytes[line_start..].windows(key.len()).position(|w| w == key).unwrap() + key.len();
    bytes[at] = if bytes[at] == b'9' { b'8' } else { bytes[at] + 1 };
    // The 11th event's seq (the members' fact entries come first in the log).
    let line_end = line_start + bytes[line_start..].iter().position(|b| *b == b'\n').unwrap();
    let seq = serde_json::from_slice::<Value>(&bytes[line_start..line_end]).unwrap()["seq"].clone();
    std::fs::write(&path, &bytes).unwrap();
    let r = audit(&data, &["--offline", a.to_str().unwrap()], 1);
    let altered = findings(&r, "bundle_file_altered");
    assert_eq!(altered.len(), 1, "{r}");
    assert_eq!(altered[0]["file"], "ledger/events.jsonl", "{r}");
    let t = findings(&r, "ledger_tampered");
    assert!(t.iter().any(|f| f["seq"] == seq), "the 11th event ({seq}) was changed: {r}");

    // One byte of a dataset's member bitmap.
    let b = dir.path().join("b");
    export(&data, &b);
    let path = b.join("datasets/content_suggestions/members.roaring");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let r = audit(&data, &["--offline", b.to_str().unwrap()], 1);
    assert_eq!(findings(&r, "bundle_file_altered").len(), 1, "{r}");
    let caught = findings(&r, "commitment_mismatch").len() + findings(&r, "unreadable_file").len();
    assert!(caught >= 1, "{r}");

    // A file added to the bundle after export.
    let c = dir.path().join("c");
    export(&data, &c);
    std::fs::write(DataDir::new(&c).datasets_dir().join("extra.txt"), "x").unwrap();
    let r = audit(&data, &["--offline", c.to_str().unwrap()], 1);
    assert_eq!(findings(&r, "bundle_file_missing").len(), 1, "{r}");
}

#[test]
fn understated_epsilon_and_altered_shard_file_are_reported() {
    let (_dir, data) = fresh();
    let path = DataDir::new(&data).models_dir().join("replies.v2/model.json");
    let mut meta = read_json(&path);
    // A genuine DP record, as training writes it (σ and δ resolved, the accountant run).
    let mut opts = consentry_learn::dp::DpOptions::new(2.0, PathBuf::from("unused.key"));
    (opts.sigma, opts.delta) = (Some(1.0), Some(1e-6));
    let claim = consentry_learn::dp::claim(&opts, consentry_learn::dp::Plan { q: 0.2, steps: 200 }, true).unwrap();
    let eps = claim.epsilon;
    meta["dp"] = serde_json::to_value(consentry_learn::dp::PrivacyClaim::Dp(Box::new(claim))).unwrap();
    write_json(&path, &meta);
    // Any edit makes model.json differ from the registered version (its id), whatever the record says; a genuine
    // record passes the DP check itself.
    let r = audit(&data, &["--model", "replies.v2"], 1);
    assert_eq!(findings(&r, "registry_mismatch").len(), 1, "{r}");
    assert!(findings(&r, "dp_record").is_empty(), "{r}");
    meta["dp"]["epsilon"] = (eps / 3.0).into();
    write_json(&path, &meta);
    let r = audit(&data, &["--model", "replies.v2"], 1);
    let f = findings(&r, "dp_record");
    assert_eq!(f.len(), 1, "{r}");
    assert_eq!(f[0]["model"], "replies.v2");

    let shard = DataDir::new(&data).models_dir().join("content.v2/shard-001.safetensors");
    let mut bytes = std::fs::read(&shard).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x80;
    std::fs::write(&shard, &bytes).unwrap();
    let r = audit(&data, &["--model", "content.v2"], 1);
    let f = findings(&r, "shard_file_altered");
    assert_eq!(f.len(), 1, "{r}");
    assert_eq!(f[0]["model"], "content.v2");
}

#[test]
fn removal_after_the_deadline_is_reported_online_offline_and_in_lineage() {
    let (dir, data) = fresh();
    let models = DataDir::new(&data).models_dir();
    let late = read_bitmap(&models.join("job-recs.v2/shard-000.members.roaring")).min().unwrap();
    let regranted = read_bitmap(&models.join("job-recs.v2/shard-001.members.roaring")).min().unwrap();
    // Both withdrew an hour ago; one granted again 30 s later, before a one-minute deadline ran out.
    let append = |member: u64, action: &str, at: i64| -> u64 {
        let (m, t) = (member.to_string(), later(at));
        let args =
            ["--json", "ledger", "append", "--member", &m, "--purpose", JOBS, "--action", action, "--event-time", &t];
        let v: Value = serde_json::from_str(&ok(&consentry(&data, &args))).unwrap();
        v["seq"].as_u64().or_else(|| v["event"]["seq"].as_u64()).expect("seq in append output")
    };
    let seq = append(late, "withdraw", -3600);
    append(regranted, "withdraw", -3600);
    append(regranted, "grant", -3570);
    // The worker removes both now, an hour after they withdrew.
    let u: Value = serde_json::from_str(&ok(&consentry(&data, &["--json", "unlearn", "--deadline", "60"]))).unwrap();
    assert_eq!(u["retrains"].as_array().unwrap().len(), 1, "{u}");

    // Within the bundle's 24 h deadline: on time.
    audit(&data, &[], 0);
    let bundle = dir.path().join("bundle");
    export(&data, &bundle);
    let b = bundle.to_str().unwrap();
    for args in [vec!["--deadline", "60"], vec!["--offline", b, "--deadline", "60"]] {
        let r = audit(&data, &args, 1);
        let f = findings(&r, "withdrawal_removed_late");
        assert_eq!(f.len(), 1, "only the member still withdrawn at the deadline: {r}");
        assert_eq!(r["violations"], 1, "{r}");
        assert_eq!((&f[0]["member"], &f[0]["model"], &f[0]["seq"]), (&late.into(), &"job-recs.v2".into(), &seq.into()));
        let msg = f[0]["message"].as_str().unwrap();
        assert!(msg.contains("version 2") && msg.contains("version 3") && msg.contains("past the deadline"), "{msg}");
        let found = f[0]["found"].as_str().unwrap();
        assert!(found.contains("signed going-live record") && found.contains("s after the withdrawal"), "{found}");
        // A tolerance of two hours accepts it; the default is the promise itself.
        let mut tolerant = args.clone();
        tolerant.extend(["--tolerance", "7200"]);
        audit(&data, &tolerant, 0);
    }
    let out = consentry(&data, &["audit", "--deadline", "60"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("VIOLATION withdrawal_removed_late"), "{}", text(&out.stdout));
    let o = consentry(&data, &["audit", "--tolerance", "-1"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));

    // `lineage member` shows the late removal with its delay.
    let l = ok(&consentry(&data, &["lineage", "member", &late.to_string()]));
    assert!(l.contains("deadline missed") && l.contains("s past the deadline"), "{l}");
    let j: Value =
        serde_json::from_str(&ok(&consentry(&data, &["--json", "lineage", "member", &late.to_string()]))).unwrap();
    let v2 = j["models"].as_array().unwrap().iter().find(|m| m["version"] == 2 && m["kind"] == "job-recs").unwrap();
    assert!(v2["removed_late_by"].as_i64().unwrap() >= 3600 - 60 - 5, "{v2}");
}

#[test]
fn a_demo_that_misses_its_deadline_fails_its_own_audit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Every swap waits 1.1 s, so with a zero deadline each removal comes after its withdrawal's deadline.
    let o = common::command(&data)
        .args(["demo", "--members", "600", "--seed", "5", "--deadline", "0"])
        .env("FAILPOINTS", "unlearn::swap::before_commit=sleep(1100)")
        .output()
        .unwrap();
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert!(!o.status.success(), "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("missed"), "{out}");
    assert!(out.contains("VIOLATION withdrawal_removed_late"), "{out}");
    assert!(err.contains("own audit found"), "{err}");
}
