//! The ledger's signing key under attack: rotations forged, a retired key replayed, a head signed by a key the log
//! never had, the key file readable by others or swapped for another. Every try is refused by the command, or
//! `audit` / `ledger verify` names it; a honest rotation keeps every receipt and the audit valid with nothing but
//! the genesis public key.

use crate::common::{consentry, ok, text};
use crate::{audit, audit_finds, fresh, ledger_db, refused};
use consentry_app::DataDir;
use consentry_ledger::{KeyHandover, LogKey, TreeHead};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Rotates the demo's key in place; returns the retired key file.
fn rotate(data: &Path) -> std::path::PathBuf {
    ok(&consentry(data, &["--quiet", "ledger", "rotate-key"]));
    let retired = std::fs::read_dir(data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("ledger.key.retired-"))
        .expect("the old key is renamed beside the new one");
    assert_eq!(std::fs::metadata(&retired).unwrap().permissions().mode() & 0o777, 0o600);
    retired
}

fn verify_receipt(receipt: &Path, public: &Path) -> std::process::Output {
    let nowhere = receipt.with_file_name("no-data-dir");
    consentry(
        &nowhere,
        &["ledger", "verify-receipt", receipt.to_str().unwrap(), "--public-key", public.to_str().unwrap()],
    )
}

/// The honest path: receipts issued before and after a rotation verify with only the genesis `ledger.pub`, the
/// online audit and an offline audit of an exported bundle pass, records signed before it (registry, operator
/// actions) still verify.
#[test]
fn a_rotation_keeps_receipts_and_the_audit_valid() {
    let (dir, data) = fresh();
    let public = dir.path().join("genesis.pub");
    std::fs::copy(DataDir::new(&data).public_key_file(), &public).unwrap();
    let before = dir.path().join("before.json");
    ok(&consentry(&data, &["ledger", "receipt", "--event", "2001", "--out", before.to_str().unwrap()]));
    rotate(&data);
    assert_eq!(std::fs::read(&public).unwrap(), std::fs::read(DataDir::new(&data).public_key_file()).unwrap());
    ok(&consentry(&data, &crate::common::withdrawal("7", crate::JOBS, "ui")));
    let keys: serde_json::Value = serde_json::from_str(&ok(&consentry(&data, &["--json", "ledger", "keys"]))).unwrap();
    assert_eq!(keys["keys"].as_array().unwrap().len(), 2);
    let last = ok(&consentry(&data, &["--json", "ledger", "checkpoint"]));
    let size = serde_json::from_str::<serde_json::Value>(&last).unwrap()["tree_size"].as_u64().unwrap();
    let after = dir.path().join("after.json");
    ok(&consentry(&data, &["ledger", "receipt", "--event", &size.to_string(), "--out", after.to_str().unwrap()]));
    assert!(std::fs::read_to_string(&after).unwrap().contains("key_handovers"));
    for r in [&before, &after] {
        assert!(ok(&verify_receipt(r, &public)).starts_with("valid:"));
    }
    assert!(ok(&consentry(&data, &["ledger", "verify"])).starts_with("ok:"));
    let (code, report) = audit(&data, &[]);
    assert_eq!(code, Some(0), "the audit passes across a rotation: {report}");
    let bundle = dir.path().join("bundle");
    ok(&consentry(&data, &["--quiet", "audit", "export", "--out", bundle.to_str().unwrap()]));
    let (code, report) =
        audit(&data, &["--offline", bundle.to_str().unwrap(), "--public-key", public.to_str().unwrap()]);
    assert_eq!(code, Some(0), "the offline audit passes across a rotation: {report}");
}

/// A receipt stripped of its hand-over names an unknown key and says how to get the hand-overs.
#[test]
fn a_head_signed_by_an_unknown_key_is_refused() {
    let (dir, data) = fresh();
    rotate(&data);
    ok(&consentry(&data, &crate::common::withdrawal("7", crate::JOBS, "ui")));
    let last = ok(&consentry(&data, &["--json", "ledger", "checkpoint"]));
    let size = serde_json::from_str::<serde_json::Value>(&last).unwrap()["tree_size"].as_u64().unwrap();
    let receipt = dir.path().join("r.json");
    ok(&consentry(&data, &["ledger", "receipt", "--event", &size.to_string(), "--out", receipt.to_str().unwrap()]));
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&receipt).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("key_handovers");
    std::fs::write(&receipt, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let o = verify_receipt(&receipt, &DataDir::new(&data).public_key_file());
    assert_eq!(o.status.code(), Some(1));
    let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert!(all.contains("unknown key") && all.contains("consentry ledger keys"), "{all}");

    // A head written into the store signed by a key the log never had.
    let (_dir2, data2) = fresh();
    let intruder = LogKey::from_seed([66; 32]);
    plant_head(&data2, &intruder);
    let o = consentry(&data2, &["ledger", "verify"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert!(all.contains("unknown key"), "{all}");
    audit_finds(&data2, "ledger_tampered", "unknown key");
}

/// Signs the whole log's current head with `key` as if it were the log's, and stores it directly.
fn plant_head(data: &Path, key: &LogKey) {
    let v: serde_json::Value =
        serde_json::from_str(&ok(&consentry(data, &["--json", "ledger", "checkpoint"]))).unwrap();
    let hex32 = |s: &serde_json::Value| -> [u8; 32] { hex::decode(s.as_str().unwrap()).unwrap().try_into().unwrap() };
    let log_id = hex32(&v["log_id"]);
    // A later head: the same root is fine, the signature and the key are what is checked.
    let head = TreeHead {
        tree_size: v["tree_size"].as_u64().unwrap() + 1,
        root_hash: hex32(&v["root_hash"]),
        chain_hash: hex32(&v["chain_hash"]),
        timestamp: v["timestamp"].as_i64().unwrap(),
    };
    // Lengthen the log by one honest entry so the head's size exists.
    ok(&consentry(data, &crate::common::withdrawal("8", crate::JOBS, "ui")));
    let sth = key.sign_for(log_id, head);
    let db = ledger_db(data);
    db.execute(
        "INSERT INTO checkpoints (tree_size, root_hash, chain_hash, timestamp, log_id, signature) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        rusqlite::params![sth.head.tree_size as i64, &sth.head.root_hash[..], &sth.head.chain_hash[..], sth.head.timestamp, &sth.log_id[..], &sth.signature[..]],
    )
    .unwrap();
    if sth.key_id != sth.log_id {
        db.execute(
            "INSERT INTO checkpoint_keys (tree_size, key_id) VALUES (?1, ?2)",
            rusqlite::params![sth.head.tree_size as i64, &sth.key_id[..]],
        )
        .unwrap();
    }
}

/// A hand-over to the attacker's key signed only by the attacker (the old key's signature forged with the
/// attacker's), or with one byte changed, is refused: every command that opens the ledger stops, the audit names it.
#[test]
fn a_forged_handover_is_refused() {
    for forge in ["attacker_only", "flipped"] {
        let (_dir, data) = fresh();
        let genesis = consentry_ledger::PublicKey::load(&DataDir::new(&data).public_key_file()).unwrap();
        let attacker = LogKey::from_seed([66; 32]);
        let h = match forge {
            "attacker_only" => {
                let mut h = KeyHandover::sign(genesis.log_id(), &attacker, &attacker, 1, 0);
                h.old_key_id = genesis.key_id();
                let body = h.signed_bytes();
                h.old_signature = attacker.sign_labelled("consentry-key-handover-v1", &body);
                h.new_signature = attacker.sign_labelled("consentry-key-handover-v1", &body);
                serde_json::to_string(&h).unwrap()
            }
            _ => {
                // An honest rotation, then one byte of the stored hand-over changed.
                rotate(&data);
                let db = ledger_db(&data);
                let text: String = db.query_row("SELECT handover FROM key_handovers", [], |r| r.get(0)).unwrap();
                db.execute("DELETE FROM key_handovers", []).unwrap();
                text.replacen("\"tree_size\":", "\"tree_size\":1", 1)
            }
        };
        let db = ledger_db(&data);
        db.execute("INSERT INTO key_handovers (idx, handover) VALUES (0, ?1)", [&h]).unwrap();
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('log_public_key', ?1)", [genesis.to_hex()])
            .unwrap();
        drop(db);
        if forge == "attacker_only" {
            // The attacker signs with their key, as if it had taken over.
            let key = data.join("attacker.key");
            attacker.save(&key).unwrap();
            let o = consentry(&data, &["--signing-key", key.to_str().unwrap(), "ledger", "checkpoint"]);
            refused(&o, "key hand-over 1");
        }
        // Every command that opens the ledger, the audit included, stops and names the hand-over.
        for args in [&["ledger", "verify"][..], &["audit"][..], &["ledger", "receipt", "--event", "1"][..]] {
            refused(&consentry(&data, args), "key hand-over 1");
        }
    }
}

/// After a rotation the retired key is refused for signing, and a head it signed for a later tree size (a leaked
/// old key replayed) is caught by `ledger verify` and the audit.
#[test]
fn a_retired_key_cannot_sign_later_heads() {
    let (_dir, data) = fresh();
    let retired = rotate(&data);
    let o = consentry(&data, &["--signing-key", retired.to_str().unwrap(), "ledger", "checkpoint"]);
    refused(&o, "retired");
    let old = LogKey::load(&retired).unwrap();
    plant_head(&data, &old);
    let o = consentry(&data, &["ledger", "verify"]);
    assert_eq!(o.status.code(), Some(1));
    let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert!(all.contains("retired key"), "{all}");
    audit_finds(&data, "ledger_tampered", "retired key");
}

/// A key file group or others may read is refused with the fix; 0600 is accepted.
#[test]
fn a_key_file_readable_by_others_is_refused() {
    let (_dir, data) = fresh();
    let key = DataDir::new(&data).key_file();
    for mode in [0o640, 0o644, 0o604] {
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
        let o = consentry(&data, &["ledger", "checkpoint"]);
        assert_eq!(o.status.code(), Some(2), "mode {mode:o}");
        refused(&o, &format!("chmod 600 {}", key.display()));
    }
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    ok(&consentry(&data, &["ledger", "checkpoint"]));
}

/// A key file swapped for another key (0600, well-formed) is refused before anything is signed; swapping the public
/// key too makes the log's own signatures fail.
#[test]
fn a_swapped_key_file_is_refused() {
    let (_dir, data) = fresh();
    let d = DataDir::new(&data);
    std::fs::remove_file(d.key_file()).unwrap();
    let other = LogKey::from_seed([42; 32]);
    other.save(&d.key_file()).unwrap();
    let o = consentry(&data, &["ledger", "checkpoint"]);
    refused(&o, "not one of this log's keys");
    let o = consentry(&data, &crate::common::withdrawal("7", crate::JOBS, "ui"));
    refused(&o, "not one of this log's keys");
    std::fs::write(d.public_key_file(), format!("{}\n", other.public().to_hex())).unwrap();
    let o = consentry(&data, &["ledger", "verify"]);
    assert_ne!(o.status.code(), Some(0), "{}", text(&o.stdout));
}

/// A key planted as `ledger.key.new` (where an in-place rotation stages its new key) is never put in place: no
/// stored hand-over names it, so the next command removes it and signs with the log's key; a file there that is
/// not a key is left alone and blocks nothing.
#[test]
fn a_key_planted_where_rotations_stage_theirs_is_not_used() {
    let (_dir, data) = fresh();
    let d = DataDir::new(&data);
    let key = std::fs::read(d.key_file()).unwrap();
    let mut staged = d.key_file().into_os_string();
    staged.push(".new");
    let staged = std::path::PathBuf::from(staged);
    LogKey::from_seed([66; 32]).save(&staged).unwrap();
    ok(&consentry(&data, &["--quiet", "ledger", "checkpoint"]));
    assert!(!staged.exists(), "the planted key is removed");
    assert_eq!(std::fs::read(d.key_file()).unwrap(), key, "the log's key stays in place");
    std::fs::write(&staged, "not a key\n").unwrap();
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600)).unwrap();
    ok(&consentry(&data, &["--quiet", "ledger", "checkpoint"]));
    assert!(staged.exists(), "a file that is not a key is nobody's to delete");
    assert!(ok(&consentry(&data, &["ledger", "verify"])).starts_with("ok:"));
}
