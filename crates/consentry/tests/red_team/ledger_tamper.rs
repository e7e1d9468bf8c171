//! Tampering with the ledger's stored rows and requests (issue 13, items 2, 6, 9 and the ledger's medium
//! items): a birth date edited in `ledger.db`, a withdrawal turned into a grant, an idempotency key reused
//! for another request, member ids that do not exist, control characters in free text, an import re-run.
//! Every edit of a stored row must make the ledger refuse to read, sign over or extend it, and the audit
//! fail naming it.

use crate::common::{consentry, json, ok, text};
use crate::{JOBS, audit_finds, fresh, ledger_db, refused};
use consentry_app::DataDir;
use std::path::Path;

/// The dataset output directory of an attack (inside the private copy).
fn out(data: &Path, name: &str) -> String {
    DataDir::new(data).datasets_dir().join(name).to_string_lossy().into_owned()
}

/// Runs `ledger import` with these choices and members files and returns its JSON report.
fn import(data: &Path, choices: &Path, members: &Path) -> serde_json::Value {
    json(&ok(&consentry(
        data,
        &[
            "--json",
            "ledger",
            "import",
            "--choices",
            &choices.to_string_lossy(),
            "--members",
            &members.to_string_lossy(),
        ],
    )))
}

/// The facts entry and id of the youngest member who granted the jobs purpose: the one an attacker would want
/// in (or out).
fn youngest_granting(conn: &rusqlite::Connection) -> (i64, i64) {
    conn.query_row(
        "SELECT f.seq, f.member_id FROM facts f JOIN events e ON e.member_id = f.member_id
         JOIN purposes p ON p.id = e.purpose_id WHERE p.key = ?1 AND e.action = 1
         ORDER BY f.birth_date DESC LIMIT 1",
        [JOBS],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .expect("a member with a grant")
}

/// Item 2: a member's birth date edited in the database (a minor made an adult, or the other way round) is
/// tampering, caught by `ledger verify`, the gate (which refuses to cut a dataset from the altered log),
/// `gate verify`, checkpoints and the audit.
#[test]
fn birth_date_edited_in_the_database() {
    let (_guard, data) = fresh();
    let conn = ledger_db(&data);
    let (seq, member) = youngest_granting(&conn);
    // Forty years older: an adult whatever they were.
    let n = conn
        .execute("UPDATE facts SET birth_date = birth_date - 14610 WHERE seq = ?1", [seq])
        .expect("the row can be edited");
    assert_eq!(n, 1);
    drop(conn);

    let o = consentry(&data, &["ledger", "verify"]);
    refused(&o, &format!("member-facts entry {seq} was changed"));
    let o = consentry(&data, &["gate", "--purpose", JOBS, "--out", &out(&data, "attack")]);
    refused(&o, &format!("tampered with at entry {seq}"));
    assert!(!Path::new(&out(&data, "attack")).exists(), "no dataset was cut from the altered log");
    refused(&consentry(&data, &["ledger", "checkpoint"]), &format!("entry {seq}"));
    let report = audit_finds(&data, "ledger_tampered", &format!("member-facts entry {seq}"));
    assert!(!report.to_string().is_empty(), "member {member}");
    // Offline too: the bundle carries the fact entries with their stored hashes.
    let bundle = data.join("..").join("bundle");
    ok(&consentry(&data, &["audit", "export", "--out", &bundle.to_string_lossy()]));
    let (code, report) = crate::audit(&data, &["--offline", &bundle.to_string_lossy()]);
    assert_eq!(code, Some(1), "{report}");
    assert!(report.to_string().contains(&format!("member-facts entry {seq} was changed")), "{report}");
}

/// Item 2: re-importing the same directory records nothing; the facts are entries of the log, so a
/// changed birth date could only arrive as a new, signed, visible entry (the library tests cover that).
#[test]
fn reimport_records_no_new_facts_and_no_events() {
    let (_guard, data) = fresh();
    let before: i64 = ledger_db(&data).query_row("SELECT COUNT(*) FROM facts", [], |r| r.get(0)).expect("count");
    assert!(before >= 2000, "the demo's members are fact entries of the log ({before})");
    let choices = DataDir::new(&data).network_dir().join("consent_choices.parquet");
    let o = ok(&consentry(&data, &["--json", "ledger", "import", "--choices", &choices.to_string_lossy()]));
    let r = json(&o);
    assert_eq!(r["member_facts_recorded"], 0, "{r}");
    assert_eq!(r["appended"], 0, "{r}");
    let after: i64 = ledger_db(&data).query_row("SELECT COUNT(*) FROM facts", [], |r| r.get(0)).expect("count");
    assert_eq!(before, after);
    ok(&consentry(&data, &["ledger", "verify"]));
}

/// Item 6: a withdrawal turned into a grant in the database flows nowhere: the gate, `gate verify`,
/// checkpoints, appends and receipts refuse, naming the first bad entry; the audit fails.
#[test]
fn withdrawal_turned_into_a_grant() {
    let (_guard, data) = fresh();
    let conn = ledger_db(&data);
    let seq: i64 = conn
        .query_row(
            "SELECT e.seq FROM events e JOIN purposes p ON p.id = e.purpose_id
             WHERE p.key = ?1 AND e.action = 2 ORDER BY e.seq LIMIT 1",
            [JOBS],
            |r| r.get(0),
        )
        .expect("a withdrawal from the jobs purpose");
    assert_eq!(conn.execute("UPDATE events SET action = 1 WHERE seq = ?1", [seq]).expect("edit"), 1);
    drop(conn);
    let needle = format!("entry {seq}");
    refused(&consentry(&data, &["gate", "--purpose", JOBS, "--out", &out(&data, "attack")]), &needle);
    let existing = std::fs::read_dir(DataDir::new(&data).datasets_dir()).expect("the demo's datasets").next();
    if let Some(Ok(ds)) = existing {
        refused(&consentry(&data, &["gate", "verify", &ds.path().to_string_lossy()]), &needle);
    }
    refused(&consentry(&data, &["ledger", "checkpoint"]), &needle);
    let append = consentry(&data, &["ledger", "append", "--member", "1", "--purpose", JOBS, "--action", "grant"]);
    refused(&append, &needle);
    refused(&consentry(&data, &["ledger", "receipt", "--event", &seq.to_string()]), &needle);
    // The unlearning worker follows only events the chain vouches for: it refuses instead of reading a grant.
    refused(&consentry(&data, &["unlearn"]), &needle);
    audit_finds(&data, "ledger_tampered", &format!("event {seq} was changed"));
}

/// Item 9: an idempotency key reused for another request is a conflict naming the key; an identical retry
/// returns the original event.
#[test]
fn idempotency_key_reused_for_another_member() {
    let (_guard, data) = fresh();
    let append = |member: &str, action: &str| {
        consentry(
            &data,
            &[
                "--json",
                "ledger",
                "append",
                "--member",
                member,
                "--purpose",
                JOBS,
                "--action",
                action,
                "--event-time",
                "2026-11-01",
                "--idempotency-key",
                "pay-42",
            ],
        )
    };
    let first = json(&ok(&append("5", "grant")));
    assert_eq!(first["duplicate"], false);
    let retry = json(&ok(&append("5", "grant")));
    assert_eq!(retry["duplicate"], true);
    assert_eq!(retry["event"]["seq"], first["event"]["seq"]);
    let o = append("6", "grant");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    refused(&o, "idempotency key `pay-42` was already used");
    refused(&append("5", "withdraw"), "`pay-42`");
    ok(&consentry(&data, &["ledger", "verify"]));
}

/// Medium: ids that are not members (including 2^64-1, which SQLite would store as -1) and control
/// characters in free text are refused before anything is written.
#[test]
fn unknown_members_and_control_characters_are_refused() {
    let (_guard, data) = fresh();
    let len = || -> i64 { ledger_db(&data).query_row("SELECT MAX(seq) FROM events", [], |r| r.get(0)).expect("len") };
    let before = len();
    let append = |member: &str, actor: &str| {
        consentry(
            &data,
            &["ledger", "append", "--member", member, "--purpose", JOBS, "--action", "grant", "--actor", actor],
        )
    };
    refused(&append("18446744073709551615", "ops"), "beyond the largest id");
    refused(&append("99999999", "ops"), "not in the member directory");
    refused(&append("5", "ops\u{1b}[2J\u{7}"), "control character");
    assert_eq!(len(), before);
}

/// Medium (import idempotency): the same rows re-encoded (snappy instead of zstd) and with one row repeated
/// import as nothing new: idempotency keys come from each row's content, not from the file's bytes.
#[test]
fn reencoded_choices_import_nothing_new() {
    use parquet::arrow::ArrowWriter;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::basic::Compression;
    use parquet::file::properties::WriterProperties;

    let (guard, data) = fresh();
    let net = DataDir::new(&data).network_dir();
    let src = std::fs::File::open(net.join("consent_choices.parquet")).expect("the demo's choices");
    let reader = ParquetRecordBatchReaderBuilder::try_new(src).expect("parquet").build().expect("reader");
    let batches: Vec<_> = reader.map(|b| b.expect("a batch")).collect();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let other = guard.path().join("reencoded");
    std::fs::create_dir_all(&other).expect("a directory");
    let file = std::fs::File::create(other.join("consent_choices.parquet")).expect("a file");
    let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let mut w = ArrowWriter::try_new(file, batches[0].schema(), Some(props)).expect("a writer");
    for b in &batches {
        w.write(b).expect("write");
    }
    // One row twice.
    w.write(&batches[0].slice(0, 1)).expect("write");
    w.close().expect("close");

    let members = net.join("members.parquet");
    let choices = other.join("consent_choices.parquet");
    let r = import(&data, &choices, &members);
    assert_eq!(r["events"], rows as u64 + 1, "{r}");
    assert_eq!(r["appended"], 0, "the same rows, re-encoded, imported again: {r}");
    assert_eq!(r["member_facts_recorded"], 0, "{r}");
    ok(&consentry(&data, &["ledger", "verify"]));
}

/// Item 2: re-importing a members.parquet with one changed birth date is no silent overwrite: the change is
/// a new fact entry in the signed log (the old one stays), `ledger verify` accepts it, and the member's facts
/// as of earlier positions are unchanged.
#[test]
fn reimported_birth_date_is_a_new_signed_entry() {
    use arrow_array::{Array, ArrayRef, Date32Array, RecordBatch, UInt64Array};
    use parquet::arrow::ArrowWriter;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let (guard, data) = fresh();
    let (old_seq, member) = youngest_granting(&ledger_db(&data));
    let net = DataDir::new(&data).network_dir();
    let src = std::fs::File::open(net.join("members.parquet")).expect("the demo's members");
    let reader = ParquetRecordBatchReaderBuilder::try_new(src).expect("parquet").build().expect("reader");
    let mut batches: Vec<RecordBatch> = reader.map(|b| b.expect("a batch")).collect();
    let mut changed = 0;
    for b in &mut batches {
        let schema = b.schema();
        let ids = b.column(schema.index_of("member_id").expect("member_id")).clone();
        let ids = ids.as_any().downcast_ref::<UInt64Array>().expect("u64 ids");
        let bi = schema.index_of("birth_date").expect("birth_date");
        let births = b.column(bi).as_any().downcast_ref::<Date32Array>().expect("dates").clone();
        // 1980-01-01 is day 3652.
        let new: Date32Array = (0..births.len())
            .map(|i| Some(if ids.value(i) == member as u64 { 3652 } else { births.value(i) }))
            .collect();
        changed += (0..ids.len()).filter(|&i| ids.value(i) == member as u64).count();
        let mut cols: Vec<ArrayRef> = b.columns().to_vec();
        cols[bi] = std::sync::Arc::new(new);
        *b = RecordBatch::try_new(schema, cols).expect("a batch");
    }
    assert_eq!(changed, 1);
    let other = guard.path().join("changed");
    std::fs::create_dir_all(&other).expect("a directory");
    let file = std::fs::File::create(other.join("members.parquet")).expect("a file");
    let mut w = ArrowWriter::try_new(file, batches[0].schema(), None).expect("a writer");
    for b in &batches {
        w.write(b).expect("write");
    }
    w.close().expect("close");

    let choices = net.join("consent_choices.parquet");
    let members = other.join("members.parquet");
    let r = import(&data, &choices, &members);
    assert_eq!(r["member_facts_recorded"], 1, "exactly the changed member: {r}");
    assert_eq!(r["appended"], 0, "{r}");
    let conn = ledger_db(&data);
    let entries: Vec<(i64, i64)> = conn
        .prepare("SELECT seq, birth_date FROM facts WHERE member_id = ?1 ORDER BY seq")
        .expect("query")
        .query_map([member], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("rows")
        .map(|r| r.expect("a row"))
        .collect();
    assert_eq!(entries.len(), 2, "the old facts stay, the change is a new entry: {entries:?}");
    assert_eq!(entries[0].0, old_seq);
    assert_eq!(entries[1].1, 3652);
    let len: i64 = conn
        .query_row("SELECT MAX(s) FROM (SELECT MAX(seq) s FROM events UNION ALL SELECT MAX(seq) FROM facts)", [], |r| {
            r.get(0)
        })
        .expect("len");
    assert_eq!(entries[1].0, len, "the newest entry of the log");
    drop(conn);
    assert!(ok(&consentry(&data, &["ledger", "verify"])).starts_with("ok:"));

    // The member sees both records in their history, and the change has a receipt that verifies offline.
    let l = json(&ok(&consentry(&data, &["--json", "lineage", "member", &member.to_string()])));
    let seqs: Vec<i64> =
        l["facts"].as_array().expect("a facts list").iter().map(|f| f["seq"].as_i64().unwrap_or(0)).collect();
    assert_eq!(seqs, vec![old_seq, len], "{l}");
    assert_eq!(l["facts"][1]["birth_date"], "1980-01-01", "{l}");
    let receipt = guard.path().join("facts-receipt.json");
    ok(&consentry(&data, &["ledger", "receipt", "--event", &len.to_string(), "--out", &receipt.to_string_lossy()]));
    let public = DataDir::new(&data).public_key_file();
    let v = ok(&consentry(
        &data,
        &["ledger", "verify-receipt", &receipt.to_string_lossy(), "--public-key", &public.to_string_lossy()],
    ));
    assert!(v.starts_with("valid:") && v.contains("born 1980-01-01"), "{v}");
}

/// Medium (receipts): only the canonical bytes verify: an extra field inside the signed record or the event,
/// or the signature in upper-case hex, is refused by `verify-receipt`.
#[test]
fn receipts_accept_only_their_canonical_text() {
    let (guard, data) = fresh();
    let seq: i64 = ledger_db(&data).query_row("SELECT MIN(seq) FROM events", [], |r| r.get(0)).expect("an event");
    let receipt = guard.path().join("r.json");
    ok(&consentry(&data, &["ledger", "receipt", "--event", &seq.to_string(), "--out", &receipt.to_string_lossy()]));
    let public = DataDir::new(&data).public_key_file();
    let check = |text: &str| {
        let f = guard.path().join("x.json");
        std::fs::write(&f, text).expect("write");
        consentry(&data, &["ledger", "verify-receipt", &f.to_string_lossy(), "--public-key", &public.to_string_lossy()])
    };
    let original = std::fs::read_to_string(&receipt).expect("the receipt");
    ok(&check(&original));
    let v = json(&original);
    let sig = v["record_signature"].as_str().expect("a signature").to_string();
    for altered in [
        original.replacen("\"pii_controller\":", "\"granted_by_admin\": true, \"pii_controller\":", 1),
        original.replacen("\"idempotency_key\":", "\"action_override\": \"grant\", \"idempotency_key\":", 1),
        original.replace(&sig, &sig.to_uppercase()),
    ] {
        assert_ne!(altered, original);
        let o = check(&altered);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
        refused(&o, "INVALID");
    }
}

/// Issue 20: the Merkle tree's tiles live in `ledger.db`. A tile overwritten with another (proofs built from it
/// would vouch for other entries) is tampering: `ledger verify` and the audit name it, and nothing is signed over
/// it. Tiles deleted wholesale are only a lost cache: verification passes and the next process writes them again.
#[test]
fn merkle_tile_edited_in_the_database() {
    let (_guard, data) = fresh();
    let conn = ledger_db(&data);
    let count = |conn: &rusqlite::Connection| -> i64 {
        conn.query_row("SELECT COUNT(*) FROM merkle_tiles WHERE level = 0", [], |r| r.get(0)).expect("tiles")
    };
    let tiles = count(&conn);
    assert!(tiles > 2, "the demo's log spans several tiles: {tiles}");
    conn.execute_batch("DELETE FROM merkle_tiles").expect("the tiles can be deleted");
    drop(conn);
    ok(&consentry(&data, &["ledger", "verify"]));
    ok(&consentry(&data, &["ledger", "checkpoint"]));
    let conn = ledger_db(&data);
    assert_eq!(count(&conn), tiles, "rewritten from the entries");
    let n = conn
        .execute(
            "UPDATE merkle_tiles SET hashes = (SELECT hashes FROM merkle_tiles WHERE level = 0 AND idx = 0)
             WHERE level = 0 AND idx = 1",
            [],
        )
        .expect("a tile can be edited");
    assert_eq!(n, 1);
    drop(conn);
    refused(&consentry(&data, &["ledger", "verify"]), "tile/0/001");
    refused(&consentry(&data, &["ledger", "checkpoint"]), "tile/0/001");
    audit_finds(&data, "ledger_tampered", "tile/0/001");
}
