//! `consentry ledger …` end to end on the embedded SQLite store.

mod common;

use common::{consentry, ok, text};
use consentry_app::DataDir;

#[test]
fn import_checkpoint_receipt_snapshot_and_tamper() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let net = dir.path().join("net");
    ok(&consentry(&data, &["--quiet", "synth", "--members", "1500", "--seed", "3", "--out", net.to_str().unwrap()]));

    // Using the ledger before init is a usage error that says what to do.
    let o = consentry(&data, &["ledger", "verify"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("ledger init"), "{}", text(&o.stderr));

    ok(&consentry(&data, &["ledger", "init"]));
    let pubkey = std::fs::read_to_string(DataDir::new(&data).public_key_file()).unwrap();
    assert_eq!(pubkey.trim().len(), 64);
    let choices = net.join("consent_choices.parquet");
    let imported = ok(&consentry(&data, &["--json", "ledger", "import", "--choices", choices.to_str().unwrap()]));
    let v: serde_json::Value = serde_json::from_str(&imported).unwrap();
    let events = v["events"].as_u64().unwrap();
    assert!(events > 500);
    assert_eq!(v["appended"].as_u64().unwrap(), events);
    // Importing again appends nothing.
    let again = ok(&consentry(&data, &["--json", "ledger", "import", "--choices", choices.to_str().unwrap()]));
    let v: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(v["appended"], 0);
    assert_eq!(v["duplicates"].as_u64().unwrap(), events);

    ok(&consentry(&data, &["ledger", "checkpoint"]));
    assert!(ok(&consentry(&data, &["ledger", "verify"])).starts_with("ok:"));

    // Receipts verify offline and fail when altered.
    let receipt = dir.path().join("r.json");
    // The 1 500 members' fact entries come first in the log: 1 507 is the seventh consent event.
    ok(&consentry(&data, &["ledger", "receipt", "--event", "1507", "--out", receipt.to_str().unwrap()]));
    let pubfile = DataDir::new(&data).public_key_file();
    let nodata = dir.path().join("nothing-here");
    let v = ok(&consentry(
        &nodata,
        &["ledger", "verify-receipt", receipt.to_str().unwrap(), "--public-key", pubfile.to_str().unwrap()],
    ));
    assert!(v.starts_with("valid:"), "{v}");
    assert!(!nodata.exists(), "verify-receipt must not need or create a data directory");
    let json = std::fs::read_to_string(&receipt).unwrap();
    let r: serde_json::Value = serde_json::from_str(&json).unwrap();
    let controller = r["record"]["pii_controller"].as_str().unwrap().to_string();
    let altered = json.replacen(&controller, &controller.replacen('E', "F", 1), 1);
    assert_ne!(altered, json);
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, altered).unwrap();
    let o = consentry(
        &nodata,
        &["ledger", "verify-receipt", bad.to_str().unwrap(), "--public-key", pubfile.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    // With --json the failed check is named, beside the message.
    let o = consentry(
        &nodata,
        &["--json", "ledger", "verify-receipt", bad.to_str().unwrap(), "--public-key", pubfile.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["valid"], false, "{v}");
    assert_eq!(v["check"], "record_signature", "{v}");
    assert!(v["error"].as_str().is_some_and(|e| e.contains("consent record was altered")), "{v}");

    // Appends: refused input is exit 2; retries with the same key are not duplicated.
    let o = consentry(
        &data,
        &["ledger", "append", "--member", "5", "--purpose", "train_ai_system.nope", "--action", "grant"],
    );
    assert_eq!(o.status.code(), Some(2));
    let o = consentry(
        &data,
        &[
            "ledger",
            "append",
            "--member",
            "5",
            "--purpose",
            "train_ai_system.job_recommendations",
            "--action",
            "grant",
            "--event-time",
            "2999-01-01",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("future"), "{}", text(&o.stderr));
    let args = [
        "ledger",
        "append",
        "--member",
        "5",
        "--purpose",
        "train_ai_system.job_recommendations",
        "--action",
        "withdraw",
        "--idempotency-key",
        "retry-1",
    ];
    let first = ok(&consentry(&data, &args));
    let second = ok(&consentry(&data, &args));
    assert!(first.starts_with("appended event"), "{first}");
    assert!(second.starts_with("already recorded as event"), "{second}");

    // Snapshots and their export.
    let at = (1500 + events).to_string();
    let jobs = "train_ai_system.job_recommendations";
    let s = ok(&consentry(&data, &["--json", "ledger", "snapshot", "--purpose", jobs, "--at", &at]));
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    assert_eq!(v["members"], 1500);
    assert_eq!(v["position"].as_u64().unwrap(), 1500 + events);
    assert!(v["allowed"].as_u64().unwrap() > 0);
    // The ledger as it stood before the import knew of no grant.
    let s = ok(&consentry(&data, &["--json", "ledger", "snapshot", "--purpose", jobs, "--at", "2026-01-01"]));
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    assert_eq!((v["position"].as_u64(), v["allowed"].as_u64()), (Some(0), Some(0)));
    let out = dir.path().join("snap.parquet");
    ok(&consentry(
        &data,
        &[
            "ledger",
            "export-snapshot",
            "--purpose",
            "train_ai_system.reply_suggestions",
            "--out",
            out.to_str().unwrap(),
        ],
    ));
    assert!(out.exists());

    // Rewriting a stored event is caught by verify (exit 1), naming the event.
    let conn = rusqlite::Connection::open(DataDir::new(&data).ledger_db()).unwrap();
    conn.execute("UPDATE events SET member_id = member_id + 1 WHERE seq = 1542", []).unwrap();
    drop(conn);
    let o = consentry(&data, &["ledger", "verify"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("first bad event: 1542"), "{}", text(&o.stderr));
}
