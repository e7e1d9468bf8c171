//! Split views (issue 19, item 2): an operator who holds the signing key forks the log — copies the data
//! directory and appends different events to each copy, or goes back to an old copy and writes another history —
//! and shows one history to some people and the other to others. Both histories are signed by the real key, so
//! signatures alone cannot tell. A witness that cosigned one history refuses to cosign the other, naming the fork;
//! an auditor holding a head from one history finds no consistency proof from it in the other; a receipt holder
//! requiring a witness cosignature refuses receipts no trusted witness cosigned.

use crate::common::{consentry, copy_dir, json, ok, text};
use crate::{JOBS, audit, fresh, refused};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use consentry_app::DataDir;
use std::path::{Path, PathBuf};

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Makes a witness in `dir` named `name` watching the log of `data`; returns its verifier key file.
fn witness_for(data: &Path, dir: &Path, name: &str) -> PathBuf {
    ok(&consentry(data, &["--quiet", "ledger", "checkpoint"]));
    ok(&consentry(data, &["--quiet", "witness", "init", "--dir", &s(dir), "--name", name]));
    let note = ok(&consentry(data, &["witness", "checkpoint"]));
    let origin = note.lines().next().expect("a checkpoint note has an origin line").to_string();
    assert!(origin.starts_with("consentry/"), "{note}");
    let public_key = s(&DataDir::new(data).public_key_file());
    ok(&consentry(
        data,
        &["--quiet", "witness", "add-log", "--dir", &s(dir), "--origin", &origin, "--public-key", &public_key],
    ));
    dir.join("witness.vkey")
}

/// A fresh data directory watched by witness `witness.example/w1` (in `<tmp>/witness`), which has cosigned its
/// newest checkpoint: the temporary directory, the data directory, the witness directory and its verifier key.
fn cosigned_fresh() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let (guard, data) = fresh();
    let w = guard.path().join("witness");
    let vkey = witness_for(&data, &w, "witness.example/w1");
    ok(&cosign(&data, &w));
    (guard, data, w, vkey)
}

/// The report's first finding of `kind`.
fn finding<'a>(report: &'a serde_json::Value, kind: &str) -> &'a serde_json::Value {
    report["findings"]
        .as_array()
        .and_then(|fs| fs.iter().find(|f| f["kind"] == kind))
        .unwrap_or_else(|| panic!("a {kind} finding: {report}"))
}

/// Appends one consent event for `member` and signs a checkpoint over the whole log.
fn append(data: &Path, member: &str, action: &str) {
    ok(&consentry(data, &["--quiet", "ledger", "append", "--member", member, "--purpose", JOBS, "--action", action]));
    ok(&consentry(data, &["--quiet", "ledger", "checkpoint"]));
}

fn cosign(data: &Path, witness: &Path) -> std::process::Output {
    consentry(data, &["witness", "cosign", "--dir", &s(witness)])
}

/// The operator copies the data directory, then appends a withdrawal to one copy and a grant to the other: two
/// signed logs of the same size with different roots. The witness cosigned the first; it refuses the second with
/// a FORK error naming both roots, and its state still holds the first. The fork grown further gets no
/// consistency proof either.
#[test]
fn a_witness_refuses_to_cosign_a_forked_copy() {
    let (guard, a, w, _) = cosigned_fresh();
    let b = guard.path().join("fork");
    copy_dir(&a, &b);
    let old = guard.path().join("old");
    copy_dir(&a, &old);
    append(&a, "7", "withdraw");
    append(&b, "7", "grant");
    let first = json(&ok(&consentry(&a, &["--json", "witness", "cosign", "--dir", &s(&w)])));
    let root_a = first["root_hash"].as_str().expect("a root").to_string();
    let o = cosign(&b, &w);
    refused(&o, "FORK");
    let err = text(&o.stderr);
    assert!(err.contains(&root_a), "the refusal names the cosigned root: {err}");
    assert_eq!(o.status.code(), Some(1), "a fork is an integrity failure");
    // The fork grows on: still no proof from the cosigned head leads to it.
    append(&b, "8", "grant");
    refused(&cosign(&b, &w), "no consistency proof");
    // The witness still holds the first history, and keeps following it.
    let shown = json(&ok(&consentry(&a, &["--json", "witness", "show", "--dir", &s(&w)])));
    assert_eq!(shown["logs"][0]["root_hash"], root_a.as_str());
    append(&a, "9", "grant");
    ok(&cosign(&a, &w));
    // Going back to the copy taken before any of this (a smaller log) is a rollback.
    refused(&cosign(&old, &w), "rollback");
}

/// The operator rewinds the log to a backup and writes another history (a withdrawal that "never happened"),
/// re-signing every checkpoint with the real key. An auditor who kept a signed head of the first history
/// (`audit --heads`) finds that the rewritten log does not extend it; and a witness that cosigned the first
/// history refuses the rewritten one.
#[test]
fn an_auditor_holding_an_older_head_catches_a_rewritten_history() {
    let (guard, data, w, _) = cosigned_fresh();
    let backup = guard.path().join("backup");
    copy_dir(&data, &backup);
    // The history the auditor sees: member 7 withdraws; the auditor keeps the signed head.
    append(&data, "7", "withdraw");
    let head = ok(&consentry(&data, &["--json", "ledger", "checkpoint"]));
    let heads = guard.path().join("heads.json");
    std::fs::write(&heads, &head).expect("the auditor keeps the head");
    ok(&cosign(&data, &w));
    // The operator restores the backup over the data directory and records a grant instead.
    std::fs::remove_dir_all(&data).expect("the operator removes the live directory");
    copy_dir(&backup, &data);
    append(&data, "7", "grant");
    let (code, report) = audit(&data, &["--heads", &s(&heads)]);
    assert_eq!(code, Some(1), "the audit must fail: {report}");
    let finding = finding(&report, "inconsistent_heads");
    assert!(finding["message"].as_str().is_some_and(|m| m.contains("no longer has the history")), "{finding}");
    refused(&cosign(&data, &w), "FORK");
}

/// `ledger verify-receipt --witness-key W --witnesses 1`: a receipt whose tree head the witness cosigned passes;
/// the same receipt without its cosignatures, with a cosignature altered, or checked against a witness that never
/// cosigned, fails naming who did and did not cosign.
#[test]
fn receipts_require_the_cosignatures_asked_for() {
    let (guard, data) = fresh();
    let w = guard.path().join("witness");
    let vkey = witness_for(&data, &w, "witness.example/w1");
    let other = guard.path().join("other");
    ok(&consentry(&data, &["--quiet", "witness", "init", "--dir", &s(&other), "--name", "witness.example/w2"]));
    let other_vkey = other.join("witness.vkey");
    // Before any cosignature: a receipt carries none.
    let bare = guard.path().join("bare.json");
    ok(&consentry(&data, &["--quiet", "ledger", "receipt", "--event", "5", "--out", &s(&bare)]));
    ok(&cosign(&data, &w));
    let receipt = guard.path().join("receipt.json");
    ok(&consentry(&data, &["--quiet", "ledger", "receipt", "--event", "5", "--out", &s(&receipt)]));
    let value = json(&std::fs::read_to_string(&receipt).expect("the receipt"));
    assert!(
        value["witnessed"]["cosignatures"][0].as_str().is_some_and(|l| l.contains("witness.example/w1")),
        "{value}"
    );
    let pubkey = s(&DataDir::new(&data).public_key_file());
    let verify = |file: &Path, keys: &[&Path], n: &str| {
        let mut args =
            vec!["ledger".to_string(), "verify-receipt".into(), s(file), "--public-key".into(), pubkey.clone()];
        for k in keys {
            args.extend(["--witness-key".to_string(), s(k)]);
        }
        args.extend(["--witnesses".to_string(), n.to_string()]);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        consentry(&data, &refs)
    };
    let o = verify(&receipt, &[&vkey], "1");
    assert!(ok(&o).contains("cosigned by 1"), "{}", text(&o.stdout));
    // Today's behaviour without the flags; and the bare receipt still verifies without a witness requirement.
    ok(&consentry(&data, &["ledger", "verify-receipt", &s(&receipt), "--public-key", &pubkey]));
    ok(&consentry(&data, &["ledger", "verify-receipt", &s(&bare), "--public-key", &pubkey]));
    // No cosignature.
    let o = verify(&bare, &[&vkey], "1");
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("not cosigned: witness.example/w1"), "{}", text(&o.stderr));
    // A cosignature by a witness not trusted: ignored, named.
    let o = verify(&receipt, &[&other_vkey], "1");
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("not cosigned: witness.example/w2") && err.contains("unknown witnesses: witness.example/w1"),
        "{err}"
    );
    // An altered cosignature (one bit of the Ed25519 signature flipped, still well-formed).
    let mut v = value.clone();
    let line = v["witnessed"]["cosignatures"][0].as_str().expect("a line").to_string();
    let (head, sig) = line.rsplit_once(' ').expect("`— name base64`");
    let mut raw = B64.decode(sig).expect("base64");
    raw[20] ^= 1;
    v["witnessed"]["cosignatures"][0] = format!("{head} {}", B64.encode(raw)).into();
    let tampered = guard.path().join("tampered.json");
    std::fs::write(&tampered, serde_json::to_string_pretty(&v).expect("json")).expect("written");
    let o = verify(&tampered, &[&vkey], "1");
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("cosignature failing: witness.example/w1"), "{}", text(&o.stderr));
    // Two required, one given: bad input.
    let o = verify(&receipt, &[&vkey], "2");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    // Both witnesses trusted, one required: passes with w1's cosignature.
    ok(&verify(&receipt, &[&vkey, &other_vkey], "1"));
    // The audit: the newest head is cosigned, so it passes; a head no witness saw makes it fail, naming who did not.
    let (code, report) = audit(&data, &["--witness-key", &s(&vkey), "--witnesses", "1"]);
    assert_eq!(code, Some(0), "{report}");
    append(&data, "9", "grant");
    let (code, report) = audit(&data, &["--witness-key", &s(&vkey), "--witnesses", "1"]);
    assert_eq!(code, Some(1), "{report}");
    let finding = finding(&report, "witnesses");
    assert!(finding["message"].as_str().is_some_and(|m| m.contains("not cosigned: witness.example/w1")), "{finding}");
    ok(&cosign(&data, &w));
    assert_eq!(audit(&data, &["--witness-key", &s(&vkey), "--witnesses", "1"]).0, Some(0));
}

/// Over HTTP: a witness polls the service (`GET /v1/log/checkpoint/note`, `/v1/log/proofs/consistency`), cosigns,
/// and pushes the cosignature back (`POST /v1/log/cosignatures`, operator key); receipts then carry it. A forked
/// copy of the data directory served to the same witness is refused with FORK, and an auditor's key cannot push.
#[test]
fn a_witness_over_http_cosigns_the_service_and_refuses_a_forked_one() {
    let (guard, a) = fresh();
    let w = guard.path().join("witness");
    let vkey = witness_for(&a, &w, "witness.example/w1");
    let key = ok(&consentry(&a, &["keys", "create", "--role", "operator", "--name", "witness"])).trim().to_string();
    let auditor = ok(&consentry(&a, &["keys", "create", "--role", "auditor", "--name", "a"])).trim().to_string();
    let b = guard.path().join("fork");
    copy_dir(&a, &b);
    let (mut serve, addr) =
        crate::common::spawn_serve(crate::common::command(&a).args(["serve", "--addr", "127.0.0.1:0"]));
    let url = format!("http://{addr}");
    let o = consentry(&a, &["--json", "witness", "cosign", "--dir", &s(&w), "--url", &url, "--api-key", &key]);
    let out = json(&ok(&o));
    assert_eq!(out["cosigned_by"][0], "witness.example/w1", "{out}");
    // An auditor's key reads the note but may not store a cosignature.
    let o = consentry(&a, &["witness", "cosign", "--dir", &s(&w), "--url", &url, "--api-key", &auditor]);
    refused(&o, "403");
    let _ = serve.kill();
    let _ = serve.wait();
    let receipt = guard.path().join("receipt.json");
    ok(&consentry(&a, &["--quiet", "ledger", "receipt", "--event", "3", "--out", &s(&receipt)]));
    let pubkey = s(&DataDir::new(&a).public_key_file());
    ok(&consentry(
        &a,
        &[
            "ledger",
            "verify-receipt",
            &s(&receipt),
            "--public-key",
            &pubkey,
            "--witness-key",
            &s(&vkey),
            "--witnesses",
            "1",
        ],
    ));
    // The fork: both copies grow by one different event; the witness follows A, then is shown B over HTTP.
    append(&a, "7", "withdraw");
    append(&b, "7", "grant");
    ok(&cosign(&a, &w));
    let (mut serve, addr) =
        crate::common::spawn_serve(crate::common::command(&b).args(["serve", "--addr", "127.0.0.1:0"]));
    let o =
        consentry(&b, &["witness", "cosign", "--dir", &s(&w), "--url", &format!("http://{addr}"), "--api-key", &key]);
    let _ = serve.kill();
    let _ = serve.wait();
    refused(&o, "FORK");
}

/// A witness configured with the log's genesis key follows a key rotation: after `ledger rotate-key` the newest
/// checkpoint is signed by the new key and comes with the hand-over, which the witness verifies and keeps; it
/// cosigns, receipts from before and after the rotation both verify with the genesis key and the witness's
/// cosignature, and the audit requiring one cosignature passes online and offline (the bundle carries them) and
/// fails offline on a bundle whose newest head no witness cosigned.
#[test]
fn a_witness_follows_a_key_rotation() {
    let (guard, data, w, vkey) = cosigned_fresh();
    let pubkey = s(&guard.path().join("genesis.pub"));
    std::fs::copy(DataDir::new(&data).public_key_file(), &pubkey).expect("copy the genesis key");
    let before = guard.path().join("before.json");
    ok(&consentry(&data, &["--quiet", "ledger", "receipt", "--event", "5", "--out", &s(&before)]));
    ok(&consentry(&data, &["--quiet", "ledger", "rotate-key"]));
    append(&data, "7", "withdraw");
    let o = json(&ok(&consentry(&data, &["--json", "witness", "cosign", "--dir", &s(&w)])));
    let size = o["tree_size"].as_u64().expect("the cosigned size");
    let shown = json(&ok(&consentry(&data, &["--json", "witness", "show", "--dir", &s(&w)])));
    assert_eq!(shown["logs"][0]["key_handovers"], 1, "the witness keeps the hand-over: {shown}");
    let after = guard.path().join("after.json");
    ok(&consentry(&data, &["--quiet", "ledger", "receipt", "--event", &size.to_string(), "--out", &s(&after)]));
    for r in [&before, &after] {
        let out = ok(&consentry(
            &data,
            &[
                "ledger",
                "verify-receipt",
                &s(r),
                "--public-key",
                &pubkey,
                "--witness-key",
                &s(&vkey),
                "--witnesses",
                "1",
            ],
        ));
        assert!(out.contains("cosigned by 1"), "{out}");
    }
    let (code, report) = audit(&data, &["--witness-key", &s(&vkey), "--witnesses", "1"]);
    assert_eq!(code, Some(0), "{report}");
    // Offline: the bundle carries the cosignatures; a bundle whose newest head no witness cosigned fails.
    let bundle = guard.path().join("bundle");
    ok(&consentry(&data, &["--quiet", "audit", "export", "--out", &s(&bundle)]));
    let offline = |b: &Path| {
        audit(&data, &["--offline", &s(b), "--public-key", &pubkey, "--witness-key", &s(&vkey), "--witnesses", "1"])
    };
    let (code, report) = offline(&bundle);
    assert_eq!(code, Some(0), "{report}");
    append(&data, "8", "grant");
    let later = guard.path().join("later");
    ok(&consentry(&data, &["--quiet", "audit", "export", "--out", &s(&later)]));
    let (code, report) = offline(&later);
    assert_eq!(code, Some(1), "{report}");
    assert!(report.to_string().contains("not cosigned: witness.example/w1"), "{report}");
}
