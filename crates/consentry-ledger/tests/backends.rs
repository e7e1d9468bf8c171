//! One suite, run against both storage backends: appends, idempotency,
//! validation, concurrency, checkpoints and proofs, receipts, the member
//! directory, consent scans, and tamper evidence (rows changed directly in
//! the database behind the ledger's back).

use consentry_test_support::pg as support;

use consentry_ledger::event::{Event, chain_hash, leaf_hash};
use consentry_ledger::merkle::{Tree, verify_consistency, verify_inclusion};
use consentry_ledger::postgres::PgStore;
use consentry_ledger::receipt::Receipt;
use consentry_ledger::sqlite::SqliteStore;
use consentry_ledger::{
    Hash, Ledger, LedgerError, LedgerOptions, LogKey, MemberRecord, NewEvent, SignedTreeHead, Store,
};
use consentry_policy::{Action, ConsentEvent, Policy, Source};
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

/// "Now" for every test: after the default policy's notices took effect.
const NOW: i64 = 1_790_000_000;
const JOBS: &str = "train_ai_system.job_recommendations";
const FEED: &str = "train_ai_system.content_suggestions";
const REPLY: &str = "train_ai_system.reply_suggestions";

/// A backend instance: where its data lives and how to reach the rows directly.
enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres(support::PgDb),
}

impl Backend {
    fn sqlite() -> Backend {
        Backend::Sqlite(tempfile::tempdir().unwrap())
    }

    fn postgres() -> Option<Backend> {
        support::pg().map(Backend::Postgres)
    }

    fn store(&self) -> Box<dyn Store> {
        match self {
            Backend::Sqlite(dir) => Box::new(SqliteStore::open(&dir.path().join("ledger.db")).unwrap()),
            Backend::Postgres(db) => Box::new(PgStore::connect(&db.url).unwrap()),
        }
    }

    fn ledger_with(&self, checkpoint_every: u64) -> Ledger {
        // The suite exercises the log alone; `members_are_required` covers the directory check.
        let opts = LedgerOptions { checkpoint_every, require_known_members: false, ..LedgerOptions::default() };
        Ledger::new(self.store(), Policy::default_policy(), LogKey::from_seed([1; 32]), opts)
    }

    fn ledger(&self) -> Ledger {
        self.ledger_with(0)
    }

    /// A direct connection to the rows, for tampering.
    fn raw(&self) -> Raw {
        match self {
            Backend::Sqlite(dir) => Raw::Sqlite(rusqlite::Connection::open(dir.path().join("ledger.db")).unwrap()),
            Backend::Postgres(db) => Raw::Postgres(Box::new(db.client())),
        }
    }
}

/// SQL straight to the database, bypassing the ledger.
enum Raw {
    Sqlite(rusqlite::Connection),
    Postgres(Box<::postgres::Client>),
}

impl Raw {
    /// Runs statements that both SQL dialects accept.
    fn exec(&mut self, sql: &str) {
        match self {
            Raw::Sqlite(c) => c.execute_batch(sql).unwrap(),
            Raw::Postgres(c) => c.batch_execute(sql).unwrap(),
        }
    }

    fn set_hashes(&mut self, seq: u64, leaf: &Hash, chain: &Hash) {
        let sql = "UPDATE events SET leaf_hash = $1, chain_hash = $2 WHERE seq = $3";
        let n = match self {
            Raw::Sqlite(c) => {
                c.execute(&sql.replace('$', "?"), rusqlite::params![&leaf[..], &chain[..], seq as i64]).unwrap() as u64
            }
            Raw::Postgres(c) => {
                let (leaf, chain, seq) = (&leaf[..], &chain[..], seq as i64);
                c.execute(sql, &[&leaf, &chain, &seq]).unwrap()
            }
        };
        assert_eq!(n, 1);
    }

    /// Inserts `e` as a row, borrowing the purpose id of the row at `purpose_of`.
    fn insert(&mut self, e: &Event, purpose_of: u64, leaf: &Hash, chain: &Hash) {
        let sql = "INSERT INTO events (seq, member_id, purpose_id, action, notice_version, source, actor, event_time,
                                       recorded_time, idem_key, leaf_hash, chain_hash)
                   VALUES ($1, $2, (SELECT purpose_id FROM events WHERE seq = $3), $4, $5, $6, $7, $8, $9, $10, $11, $12)";
        let b = &e.body;
        let action: i16 = if b.action == Action::Grant { 1 } else { 2 };
        let source: i16 = consentry_ledger::event::source_to_code(b.source) as i16;
        match self {
            Raw::Sqlite(c) => {
                c.execute(
                    &sql.replace('$', "?"),
                    rusqlite::params![
                        e.seq as i64,
                        b.member_id as i64,
                        purpose_of as i64,
                        action,
                        i64::from(b.notice_version),
                        source,
                        b.actor,
                        b.event_time,
                        e.recorded_time,
                        b.idempotency_key,
                        &leaf[..],
                        &chain[..]
                    ],
                )
                .unwrap();
            }
            Raw::Postgres(c) => {
                let params: [&(dyn ::postgres::types::ToSql + Sync); 12] = [
                    &(e.seq as i64),
                    &(b.member_id as i64),
                    &(purpose_of as i64),
                    &action,
                    &i64::from(b.notice_version),
                    &source,
                    &b.actor,
                    &b.event_time,
                    &e.recorded_time,
                    &b.idempotency_key,
                    &&leaf[..],
                    &&chain[..],
                ];
                c.execute(sql, &params).unwrap();
            }
        }
    }
}

fn ev(member: u64, purpose: &str, key: &str) -> NewEvent {
    NewEvent {
        member_id: member,
        purpose: purpose.into(),
        action: Action::Grant,
        notice_version: 1,
        source: Source::Ui,
        actor: format!("member:{member}"),
        event_time: NOW - 100,
        idempotency_key: key.into(),
    }
}

/// `n` varied events with keys `<prefix>-<i>`.
fn events(prefix: &str, n: u64) -> Vec<NewEvent> {
    (0..n)
        .map(|i| {
            let purpose = [JOBS, FEED, REPLY][(i % 3) as usize];
            let mut e = ev(i % 17 + 1, purpose, &format!("{prefix}-{i}"));
            e.action = if i % 4 == 3 { Action::Withdraw } else { Action::Grant };
            e.source = [Source::Ui, Source::Api, Source::Gpc, Source::Import, Source::Erasure][(i % 5) as usize];
            e.event_time = NOW - 100_000 + i as i64;
            e
        })
        .collect()
}

fn all_stored(store: &dyn Store) -> Vec<consentry_ledger::StoredEvent> {
    let mut out = Vec::new();
    store
        .scan(1, u64::MAX, &mut |s| {
            out.push(s);
            Ok(())
        })
        .unwrap();
    out
}

// ---------------------------------------------------------------------------
// The suite; each function runs once per backend (see the macro at the end).

fn appends_assign_gap_free_seqs(b: &Backend) {
    let ledger = b.ledger();
    assert_eq!(ledger.store().len().unwrap(), 0);
    assert!(ledger.store().is_empty().unwrap());
    let mut seqs = Vec::new();
    for e in events("single", 5) {
        let out = ledger.append_at(vec![e], NOW).unwrap();
        assert_eq!(out.len(), 1);
        assert!(!out[0].duplicate);
        seqs.push(out[0].event.seq);
    }
    let out = ledger.append_at(events("batch", 20), NOW).unwrap();
    seqs.extend(out.iter().map(|a| a.event.seq));
    assert!(ledger.append_at(Vec::new(), NOW).unwrap().is_empty());
    assert_eq!(seqs, (1..=25).collect::<Vec<u64>>());
    assert_eq!(ledger.store().len().unwrap(), 25);
    assert!(!ledger.store().is_empty().unwrap());

    // Stored rows carry the right hashes and chain, and read back identically.
    let stored = all_stored(ledger.store());
    assert_eq!(stored.len(), 25);
    let mut chain = [0u8; 32];
    for (i, s) in stored.iter().enumerate() {
        assert_eq!(s.event.seq, i as u64 + 1);
        assert_eq!(s.event.recorded_time, NOW);
        assert_eq!(s.leaf_hash, s.event.leaf_hash().unwrap());
        chain = chain_hash(&chain, &s.leaf_hash);
        assert_eq!(s.chain_hash, chain);
        assert_eq!(ledger.store().event(s.event.seq).unwrap().as_ref(), Some(s));
    }
    assert_eq!(out.last().unwrap().chain_hash, chain);
    assert_eq!(stored[5].event.body, events("batch", 1)[0]);
    assert!(ledger.store().event(26).unwrap().is_none());
    assert!(ledger.store().event(0).unwrap().is_none());
    let leaves = ledger.store().leaf_hashes(3, 7).unwrap();
    assert_eq!(leaves, stored[2..7].iter().map(|s| s.leaf_hash).collect::<Vec<_>>());
    assert!(ledger.store().leaf_hashes(26, 30).unwrap().is_empty());
    let mut partial = Vec::new();
    ledger
        .store()
        .scan(10, 12, &mut |s| {
            partial.push(s.event.seq);
            Ok(())
        })
        .unwrap();
    assert_eq!(partial, vec![10, 11, 12]);
    assert!(ledger.verify().unwrap().ok());

    // A reopened store continues the same chain.
    drop(ledger);
    let ledger = b.ledger();
    let out = ledger.append_at(events("after-reopen", 2), NOW + 1).unwrap();
    assert_eq!(out.iter().map(|a| a.event.seq).collect::<Vec<_>>(), vec![26, 27]);
    let v = ledger.verify().unwrap();
    assert!(v.ok(), "{v:?}");
    assert_eq!(v.events, 27);
}

fn idempotent_retry_returns_original(b: &Backend) {
    let ledger = b.ledger();
    let first = ledger.append_at(vec![ev(7, JOBS, "k1")], NOW).unwrap().remove(0);
    assert!(!first.duplicate);
    // A retry of the same request, later, returns the original.
    let again = ledger.append_at(vec![ev(7, JOBS, "k1")], NOW + 50).unwrap().remove(0);
    assert!(again.duplicate);
    assert_eq!(again.event, first.event);
    assert_eq!(again.chain_hash, first.chain_hash);
    assert_eq!(ledger.store().len().unwrap(), 1);
    // The key reused for another request (another member, purpose, action) is a conflict naming the key,
    // never a silent duplicate; nothing of the batch is written.
    let mut changed = ev(8, FEED, "k1");
    changed.action = Action::Withdraw;
    for other in [changed, ev(7, FEED, "k1"), ev(8, JOBS, "k1")] {
        let err = ledger.append_at(vec![ev(5, JOBS, "fresh"), other], NOW + 50).unwrap_err();
        assert!(matches!(&err, LedgerError::IdempotencyConflict { key, seq: 1, .. } if key == "k1"), "{err:?}");
        assert!(err.to_string().contains("`k1`"), "{err}");
        assert!(err.is_bad_input());
        assert_eq!(ledger.store().len().unwrap(), 1);
    }

    // Within one batch, and mixed with a key already in the log.
    let out = ledger
        .append_at(vec![ev(1, JOBS, "k2"), ev(7, JOBS, "k1"), ev(3, FEED, "k3"), ev(1, JOBS, "k2")], NOW + 60)
        .unwrap();
    assert_eq!(out.len(), 4);
    assert!(!out[0].duplicate && out[1].duplicate && !out[2].duplicate && out[3].duplicate);
    assert_eq!(out[0].event.seq, 2);
    assert_eq!(out[1].event, first.event);
    assert_eq!(out[2].event.seq, 3);
    assert_eq!(out[3].event, out[0].event);
    assert_eq!(out[3].chain_hash, out[0].chain_hash);
    assert_eq!(out[3].event.body.member_id, 1);
    assert_eq!(ledger.store().len().unwrap(), 3);
    // A conflict within one batch, too.
    let err = ledger.append_at(vec![ev(1, JOBS, "k9"), ev(2, JOBS, "k9")], NOW + 65).unwrap_err();
    assert!(matches!(&err, LedgerError::IdempotencyConflict { key, .. } if key == "k9"), "{err:?}");
    assert_eq!(ledger.store().len().unwrap(), 3);

    // A batch made only of duplicates writes nothing.
    let out = ledger.append_at(vec![ev(3, FEED, "k3"), ev(7, JOBS, "k1")], NOW + 70).unwrap();
    assert!(out.iter().all(|a| a.duplicate));
    assert_eq!(out[0].event.seq, 3);
    assert_eq!(ledger.store().len().unwrap(), 3);
    assert!(ledger.verify().unwrap().ok());
}

fn rejected_batches_write_nothing(b: &Backend) {
    let ledger = b.ledger();
    ledger.append_at(events("ok", 3), NOW).unwrap();
    let mut unknown_purpose = ev(1, JOBS, "bad-1");
    unknown_purpose.purpose = "train_ai_system.mind_reading".into();
    let mut unknown_notice = ev(1, JOBS, "bad-2");
    unknown_notice.notice_version = 9;
    let mut future = ev(1, JOBS, "bad-3");
    future.event_time = NOW + 3600;
    let mut no_key = ev(1, JOBS, "");
    no_key.idempotency_key.clear();
    let mut too_long = ev(1, JOBS, "bad-5");
    too_long.actor = "x".repeat(70_000);
    for (bad, what) in [
        (unknown_purpose, "unknown purpose"),
        (unknown_notice, "notice version"),
        (future, "future"),
        (no_key, "idempotency key"),
        (too_long, "actor"),
    ] {
        let batch = vec![ev(2, JOBS, "good-a"), ev(3, FEED, "good-b"), bad];
        match ledger.append_at(batch, NOW) {
            Err(LedgerError::Rejected { index, reason }) => {
                assert_eq!(index, 2, "{what}: {reason}");
                assert!(reason.contains(what), "{what}: {reason}");
            }
            other => panic!("{what}: expected a rejection, got {other:?}"),
        }
        assert_eq!(ledger.store().len().unwrap(), 3, "{what}: something was written");
    }
    // Nothing of the refused batches is in the log: their good keys are still fresh.
    let out = ledger.append_at(vec![ev(2, JOBS, "good-a")], NOW).unwrap();
    assert!(!out[0].duplicate);
    assert_eq!(out[0].event.seq, 4);
    // Within the allowed clock skew is fine.
    let mut skewed = ev(1, JOBS, "skew");
    skewed.event_time = NOW + 60;
    assert!(ledger.append_at(vec![skewed], NOW).is_ok());
    assert!(ledger.verify().unwrap().ok());
}

fn concurrent_appends_form_one_chain(b: &Backend) {
    let ledger = Arc::new(b.ledger_with(16));
    const THREADS: u64 = 8;
    const ROUNDS: u64 = 25;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let ledger = Arc::clone(&ledger);
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for r in 0..ROUNDS {
                    let n = if r % 5 == 0 { 4 } else { 1 };
                    let batch = events(&format!("t{t}-r{r}"), n);
                    for a in ledger.append_at(batch, NOW).unwrap() {
                        assert!(!a.duplicate);
                        acked.push((a.event.seq, a.event.body.idempotency_key));
                    }
                }
                acked
            })
        })
        .collect();
    let acked: Vec<(u64, String)> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let total = THREADS * (ROUNDS + 3 * ROUNDS.div_ceil(5));
    assert_eq!(acked.len() as u64, total);
    let seqs: BTreeSet<u64> = acked.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (1..=total).collect::<BTreeSet<u64>>(), "sequence numbers are not gap-free and unique");
    let stored = all_stored(ledger.store());
    for (seq, key) in &acked {
        assert_eq!(&stored[*seq as usize - 1].event.body.idempotency_key, key);
    }
    let v = ledger.verify().unwrap();
    assert!(v.ok(), "{v:?}");
    assert_eq!(v.events, total);
    assert!(v.checkpoints >= 1);
}

/// Many threads appending one event at a time (what a service's clients do, and what group commit folds into
/// shared transactions): none lost, none written twice, a retry is the original's duplicate and a conflicting
/// request fails alone while the requests committed beside it succeed.
fn group_commits_lose_and_duplicate_nothing(b: &Backend) {
    let ledger = Arc::new(b.ledger_with(64));
    const THREADS: u64 = 32;
    const ROUNDS: u64 = 30;
    let start = Arc::new(std::sync::Barrier::new(THREADS as usize));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (ledger, start) = (Arc::clone(&ledger), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                let mut acked: Vec<(u64, String)> = Vec::new();
                for r in 0..ROUNDS {
                    let key = format!("t{t}-r{r}");
                    let a = ledger.append_at(vec![ev(t + 1, JOBS, &key)], NOW).unwrap().remove(0);
                    assert!(!a.duplicate, "{key} is new");
                    acked.push((a.event.seq, key.clone()));
                    if r % 3 == 0 {
                        // The client retries: the original comes back.
                        let again = ledger.append_at(vec![ev(t + 1, JOBS, &key)], NOW).unwrap().remove(0);
                        assert!(again.duplicate && again.event == a.event, "{key}: {again:?}");
                    }
                    if r % 7 == 0 {
                        // The key reused for another member: refused, nothing written.
                        let err = ledger.append_at(vec![ev(t + 100, JOBS, &key)], NOW).unwrap_err();
                        assert!(matches!(err, LedgerError::IdempotencyConflict { .. }), "{err:?}");
                    }
                }
                acked
            })
        })
        .collect();
    let acked: Vec<(u64, String)> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let total = THREADS * ROUNDS;
    assert_eq!(acked.len() as u64, total);
    let seqs: BTreeSet<u64> = acked.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (1..=total).collect::<BTreeSet<u64>>(), "sequence numbers are not gap-free and unique");
    let stored = all_stored(ledger.store());
    assert_eq!(stored.len() as u64, total);
    for (seq, key) in &acked {
        assert_eq!(&stored[*seq as usize - 1].event.body.idempotency_key, key);
    }
    let v = ledger.verify().unwrap();
    assert!(v.ok(), "{v:?}");
    assert_eq!(v.events, total);
}

/// A member's events read through the member index are exactly the log's events about them, up to a position.
fn member_events_match_a_scan(b: &Backend) {
    let ledger = b.ledger();
    ledger.append_at(events("m", 300), NOW).unwrap();
    ledger.record_members(&[], "import", NOW).unwrap();
    let stored = all_stored(ledger.store());
    for member in [1, 5, 17, 99] {
        for upto in [0, 1, 150, 300, u64::MAX] {
            let expect: Vec<Event> = stored
                .iter()
                .filter(|s| s.event.body.member_id == member && s.event.seq <= upto)
                .map(|s| s.event.clone())
                .collect();
            assert_eq!(ledger.store().member_events(member, upto).unwrap(), expect, "member {member} upto {upto}");
        }
    }
    assert_eq!(ledger.store().member_events(5, 300).unwrap().len(), 18);
}

fn checkpoints_and_proofs_verify(b: &Backend) {
    let ledger = b.ledger_with(7);
    let public = ledger.public_key();
    for chunk in 0..6 {
        ledger.append_at(events(&format!("c{chunk}"), 5), NOW + chunk).unwrap();
    }
    let cps: Vec<SignedTreeHead> = ledger.store().checkpoints().unwrap();
    let sizes: Vec<u64> = cps.iter().map(|c| c.head.tree_size).collect();
    // A checkpoint whenever a multiple of 7 is crossed (batches of 5 land on 10, 15, 20, 25, 30).
    assert_eq!(sizes, vec![10, 15, 25, 30]);
    let on_demand = ledger.checkpoint().unwrap();
    assert_eq!(on_demand.head.tree_size, 30);
    ledger.store().put_checkpoint(&on_demand).unwrap();
    assert_eq!(ledger.store().checkpoints().unwrap().len(), 4, "checkpoints are unique per tree size");
    assert_eq!(ledger.latest_checkpoint().unwrap().unwrap().head.tree_size, 30);
    let leaves: Vec<Hash> = all_stored(ledger.store()).iter().map(|s| s.event.leaf_hash().unwrap()).collect();
    for c in &cps {
        assert!(public.verify(c));
        let size = c.head.tree_size;
        assert_eq!(ledger.root(size).unwrap(), c.head.root_hash);
        assert_eq!(ledger.store().event(size).unwrap().unwrap().chain_hash, c.head.chain_hash);
        for seq in 1..=size {
            let proof = ledger.inclusion_proof(seq, size).unwrap();
            assert!(verify_inclusion(seq - 1, size, &leaves[seq as usize - 1], &proof, &c.head.root_hash));
            let other = if seq == 1 { leaves[1] } else { leaves[0] };
            assert!(!verify_inclusion(seq - 1, size, &other, &proof, &c.head.root_hash));
        }
        for d in &cps {
            if d.head.tree_size >= size {
                let proof = ledger.consistency_proof(size, d.head.tree_size).unwrap();
                assert!(verify_consistency(size, d.head.tree_size, &c.head.root_hash, &d.head.root_hash, &proof));
            }
        }
    }
    assert!(ledger.inclusion_proof(31, 30).is_err());
    assert!(ledger.inclusion_proof(0, 30).is_err());
    assert!(ledger.consistency_proof(20, 40).is_err());
    let v = ledger.verify().unwrap();
    assert!(v.ok(), "{v:?}");
    assert_eq!((v.events, v.checkpoints), (30, 4));
}

/// Alters one character of the JSON string value of `field` (the first occurrence).
fn alter_value(json: &str, field: &str) -> String {
    let pat = format!("\"{field}\":");
    let at = json.find(&pat).unwrap_or_else(|| panic!("no field {field} in {json}")) + pat.len();
    let bytes = json.as_bytes();
    // First character of the value that is a letter or digit (within this value: no comma before it).
    let i = (at..bytes.len()).find(|&i| bytes[i].is_ascii_alphanumeric()).unwrap();
    assert!(!json[at..i].contains(','), "{field} has an empty value");
    let mut out = bytes.to_vec();
    out[i] = match out[i] {
        c @ b'0'..=b'8' => c + 1,
        b'9' => b'8',
        c @ b'a'..=b'e' => c + 1,
        c if c.is_ascii_lowercase() => c - 1,
        c => c ^ 0x20,
    };
    String::from_utf8(out).unwrap()
}

fn receipts_verify_and_detect_one_byte(b: &Backend) {
    let ledger = b.ledger_with(0);
    ledger
        .store()
        .put_members(&[MemberRecord {
            member_id: 3,
            jurisdiction: "DE".into(),
            birth_date: chrono::NaiveDate::from_ymd_opt(1990, 4, 1).unwrap(),
        }])
        .unwrap();
    // Seq 1 is member 3's facts entry; member 3's first event is the third of the batch.
    ledger.append_at(events("r", 12), NOW).unwrap();
    let public = ledger.public_key();
    assert!(matches!(ledger.receipt(1), Err(LedgerError::NotFound(_))));
    // Seq 1 gets a facts receipt instead: the member's jurisdiction and birth date, proven in the signed tree.
    let facts = ledger.facts_receipt(1).unwrap();
    facts.verify(&public).unwrap();
    assert_eq!((facts.facts.member_id, facts.facts.jurisdiction.as_str()), (3, "DE"));
    assert!(matches!(ledger.any_receipt(1), Ok(consentry_ledger::receipt::AnyReceipt::Facts(_))));
    assert!(matches!(ledger.facts_receipt(4), Err(LedgerError::NotFound(_))));
    let text = serde_json::to_string_pretty(&facts).unwrap();
    consentry_ledger::receipt::AnyReceipt::verify_json(&text, &public).unwrap();
    // An altered birth date no longer leads to the signed root; an extra field is not the canonical text.
    let older = text.replace("1990-04-01", "1960-04-01");
    assert_ne!(older, text);
    assert!(consentry_ledger::receipt::AnyReceipt::verify_json(&older, &public).is_err());
    let extra = text.replacen("\"facts\": {", "\"facts\": {\"note\": 1, ", 1);
    assert!(consentry_ledger::receipt::AnyReceipt::verify_json(&extra, &public).is_err());
    let receipt = ledger.receipt(4).unwrap();
    receipt.verify(&public).unwrap();
    assert_eq!(receipt.event.seq, 4);
    assert_eq!(receipt.event.body.member_id, 3);
    assert_eq!(receipt.record.jurisdiction, "DE");
    // A receipt for a later event after more appends, against a newer head.
    ledger.append_at(events("r2", 5), NOW).unwrap();
    let later = ledger.receipt(15).unwrap();
    later.verify(&public).unwrap();
    assert!(later.tree_head.head.tree_size >= 15);
    assert!(matches!(ledger.receipt(99), Err(LedgerError::NotFound(_))));

    let json = serde_json::to_string(&receipt).unwrap();
    let back: Receipt = serde_json::from_str(&json).unwrap();
    back.verify(&public).unwrap();
    // Another log's key does not accept it.
    assert!(back.verify(&LogKey::from_seed([2; 32]).public()).is_err());
    for field in [
        "pii_principal_id",
        "pii_controller",
        "purpose_name",
        "jurisdiction",
        "event_type",
        "member_id",
        "actor",
        "event_time",
        "recorded_time",
        "idempotency_key",
        "root_hash",
        "chain_hash",
        "signature",
        "record_signature",
        "inclusion_proof",
        "tree_size",
        "seq",
    ] {
        let altered = alter_value(&json, field);
        assert_ne!(altered, json);
        assert_eq!(altered.len(), json.len(), "exactly one byte changed");
        // Still a well-formed receipt (digits stay digits, hex stays hex), so verification itself must refuse it.
        let r: Receipt = serde_json::from_str(&altered).unwrap_or_else(|e| panic!("{field}: {e}"));
        assert!(r.verify(&public).is_err(), "altering {field} went unnoticed");
    }

    // Only the canonical text verifies: an extra field inside the signed record, or upper-case hex, is refused.
    let pretty = serde_json::to_string_pretty(&receipt).unwrap();
    Receipt::verify_json(&pretty, &public).unwrap();
    let extra = json.replacen("\"pii_controller\":", "\"note\":\"x\",\"pii_controller\":", 1);
    assert!(serde_json::from_str::<Receipt>(&extra).is_err(), "an unknown field in the record");
    let e = Receipt::verify_json(&extra, &public).unwrap_err();
    assert!(e.reason().contains("note"), "{e}");
    // Inside the event (flattened fields cannot deny unknown ones): the canonical-form check refuses it.
    let in_event = json.replacen("\"idempotency_key\":", "\"note\":1,\"idempotency_key\":", 1);
    assert!(serde_json::from_str::<Receipt>(&in_event).unwrap().verify(&public).is_ok(), "serde ignores it");
    let e = Receipt::verify_json(&in_event, &public).unwrap_err();
    assert!(e.reason().contains("canonical") && e.reason().contains("/event/note"), "{e}");
    let sig = hex::encode(receipt.record_signature);
    let upper = json.replace(&sig, &sig.to_uppercase());
    assert_ne!(upper, json);
    assert!(Receipt::verify_json(&upper, &public).is_err());
    assert!(serde_json::from_str::<Receipt>(&upper).is_err(), "upper-case hex is not a receipt field");

    // No receipt for an event that fails verification (a withdrawal turned into a grant in the database).
    let mut raw = b.raw();
    raw.exec("UPDATE events SET action = 3 - action WHERE seq = 5");
    let fresh = b.ledger_with(0);
    let err = fresh.receipt(5).unwrap_err();
    assert!(matches!(err, LedgerError::BadEntry { seq: 5, .. }), "{err:?}");
}

fn members_are_required(b: &Backend) {
    let opts = LedgerOptions { checkpoint_every: 0, ..LedgerOptions::default() };
    let ledger = Ledger::new(b.store(), Policy::default_policy(), LogKey::from_seed([1; 32]), opts);
    let refused = |batch: Vec<NewEvent>, needle: &str| {
        let err = ledger.append_at(batch, NOW).unwrap_err();
        assert!(matches!(err, LedgerError::Rejected { .. }), "{err:?}");
        assert!(err.to_string().contains(needle), "{err}");
    };
    refused(vec![ev(1, JOBS, "a")], "not in the member directory");
    let birth = chrono::NaiveDate::from_ymd_opt(1990, 4, 1).unwrap();
    let m = |id| MemberRecord { member_id: id, jurisdiction: "DE".into(), birth_date: birth };
    assert_eq!(ledger.record_members(&[m(1), m(2)], "import", NOW).unwrap(), 2);
    ledger.append_at(vec![ev(1, JOBS, "a")], NOW).unwrap();
    refused(vec![ev(2, JOBS, "b"), ev(3, JOBS, "c")], "member 3 is not in the member directory");
    refused(vec![ev(u64::MAX, JOBS, "d")], "beyond the largest id");
    let mut bell = ev(2, JOBS, "e");
    bell.actor = "operator:\u{7}eve\n".into();
    refused(vec![bell], "control character");
    let mut key = ev(2, JOBS, "f\u{1b}[2J");
    key.actor = "ok".into();
    refused(vec![key], "control character");
    // Facts are refused the same way, and nothing is written.
    assert!(ledger.record_members(&[m(u64::MAX)], "import", NOW).is_err());
    assert!(ledger.record_members(&[m(4)], "op\u{0}", NOW).is_err());
    let mut bad = m(5);
    bad.jurisdiction = "D\tE".into();
    assert!(ledger.record_members(&[bad], "import", NOW).is_err());
    assert_eq!(ledger.store().len().unwrap(), 3);
    // Large batches load the directory's ids at once; the rule is the same.
    let many: Vec<MemberRecord> = (10..110).map(m).collect();
    assert_eq!(ledger.record_members(&many, "import", NOW).unwrap(), 100);
    let mut batch: Vec<NewEvent> = (10..90).map(|i| ev(i, JOBS, &format!("many-{i}"))).collect();
    batch.push(ev(500, JOBS, "stranger"));
    refused(batch.clone(), "member 500 is not in the member directory");
    batch.pop();
    assert_eq!(ledger.append_at(batch, NOW).unwrap().len(), 80);
}

fn member_facts_are_log_entries(b: &Backend) {
    let ledger = b.ledger_with(0);
    let adult = chrono::NaiveDate::from_ymd_opt(1990, 4, 1).unwrap();
    let minor = chrono::NaiveDate::from_ymd_opt(2015, 4, 1).unwrap();
    let m = |id, birth_date| MemberRecord { member_id: id, jurisdiction: "DE".into(), birth_date };
    assert_eq!(ledger.record_members(&[m(1, adult), m(2, minor)], "import", NOW).unwrap(), 2);
    // Re-recording the same facts adds nothing; a changed birth date is a new entry.
    assert_eq!(ledger.record_members(&[m(2, minor), m(1, adult)], "import", NOW).unwrap(), 0);
    ledger.append_at(vec![ev(1, JOBS, "g1"), ev(2, JOBS, "g2")], NOW).unwrap();
    let pid = ledger.policy().purpose_id(JOBS).unwrap();
    let before = ledger.snapshot(pid, 4, NOW).unwrap();
    assert!(before.is_allowed(1) && !before.is_allowed(2));
    assert_eq!(ledger.record_members(&[m(2, adult)], "operator:alice", NOW + 1).unwrap(), 1);
    assert_eq!(ledger.store().len().unwrap(), 5);
    let e = ledger.store().entry(5).unwrap().unwrap();
    assert!(matches!(&e.entry, consentry_ledger::Entry::Facts(f) if f.member_id == 2 && f.actor == "operator:alice"));
    assert_eq!(ledger.store().member(2).unwrap(), Some(m(2, adult)));
    // The member's history holds both records, oldest first; another member's holds only theirs.
    let history = ledger.store().member_history(2).unwrap();
    assert_eq!(history.iter().map(|f| (f.seq, f.birth_date)).collect::<Vec<_>>(), vec![(2, minor), (5, adult)]);
    assert_eq!(ledger.store().member_history(1).unwrap().len(), 1);
    assert!(ledger.store().member_history(99).unwrap().is_empty());
    // The directory as of a position: the old facts before the change, the new ones after.
    assert!(!ledger.snapshot(pid, 4, NOW).unwrap().is_allowed(2));
    let after = ledger.snapshot(pid, 5, NOW).unwrap();
    assert!(after.is_allowed(2));
    let mut refreshed = before.clone();
    refreshed.refresh(ledger.store(), ledger.policy(), 5, NOW, ledger.root(5).unwrap()).unwrap();
    assert_eq!(refreshed.allowed(), after.allowed());
    let v = ledger.verify().unwrap();
    assert!(v.ok(), "{v:?}");
    assert_eq!(v.events, 5);
    ledger.checkpoint().unwrap();

    // Editing a birth date behind the ledger's back is tampering: verify names the entry, and nothing
    // reads, signs over or appends to the altered log.
    b.raw().exec("UPDATE facts SET birth_date = birth_date - 3650 WHERE seq = 1");
    let fresh = b.ledger_with(0);
    let v = fresh.verify().unwrap();
    assert_eq!(v.first_bad_seq, Some(1), "{v:?}");
    assert!(v.problems[0].contains("member-facts entry 1"), "{v:?}");
    for err in [
        fresh.snapshot(pid, 5, NOW).map(|_| ()).unwrap_err(),
        fresh.checkpoint().map(|_| ()).unwrap_err(),
        fresh.append_at(vec![ev(1, FEED, "g3")], NOW).map(|_| ()).unwrap_err(),
        fresh.record_members(&[m(3, adult)], "import", NOW).map(|_| ()).unwrap_err(),
    ] {
        assert!(matches!(err, LedgerError::BadEntry { seq: 1, .. }), "{err:?}");
    }
    assert_eq!(fresh.store().len().unwrap(), 5);
}

fn tampered_events_are_not_used(b: &Backend) {
    let ledger = b.ledger_with(0);
    let mut batch = events("t", 12);
    batch[6].action = Action::Withdraw;
    ledger.append_at(batch, NOW).unwrap();
    ledger.checkpoint().unwrap();
    ledger.append_at(events("u", 3), NOW).unwrap();
    // The withdrawal at seq 7 turned into a grant; the stored hashes are left alone.
    b.raw().exec("UPDATE events SET action = 1 WHERE seq = 7");
    let fresh = b.ledger_with(0);
    let pid = fresh.policy().purpose_id(JOBS).unwrap();
    for err in [
        fresh.snapshot(pid, 15, NOW).map(|_| ()).unwrap_err(),
        fresh.checkpoint().map(|_| ()).unwrap_err(),
        fresh.append_at(events("v", 1), NOW).map(|_| ()).unwrap_err(),
        fresh.receipt(2).map(|_| ()).unwrap_err(),
    ] {
        assert!(matches!(err, LedgerError::BadEntry { seq: 7, .. }), "{err:?}");
        assert!(err.to_string().contains("entry 7"), "{err}");
    }
    assert_eq!(fresh.store().len().unwrap(), 15);
    assert_eq!(fresh.store().checkpoints().unwrap().len(), 1);
    // Hashes recomputed too (no key needed for them): the signed checkpoint still catches it.
    let e = fresh.store().event(7).unwrap().unwrap();
    let leaf = e.event.leaf_hash().unwrap();
    let prev = fresh.store().event(6).unwrap().unwrap().chain_hash;
    let mut raw = b.raw();
    let mut chain = chain_hash(&prev, &leaf);
    raw.set_hashes(7, &leaf, &chain);
    for seq in 8..=15 {
        let s = fresh.store().event(seq).unwrap().unwrap();
        chain = chain_hash(&chain, &s.leaf_hash);
        raw.set_hashes(seq, &s.leaf_hash, &chain);
    }
    let again = b.ledger_with(0);
    let err = again.snapshot(pid, 15, NOW).map(|_| ()).unwrap_err();
    assert!(matches!(err, LedgerError::BadEntry { seq: 1, .. }), "{err:?}");
    assert!(again.checkpoint().is_err());
    // The common path is incremental: a verified ledger checks only what is new.
    let clean = Backend::sqlite();
    let l = clean.ledger_with(0);
    l.append_at(events("w", 20), NOW).unwrap();
    assert_eq!(l.verify_through().unwrap(), 20);
    l.append_at(events("x", 5), NOW).unwrap();
    assert_eq!(l.verify_through().unwrap(), 25);
}

fn member_directory_round_trips(b: &Backend) {
    let store = b.store();
    let d = |y, m, dd| chrono::NaiveDate::from_ymd_opt(y, m, dd).unwrap();
    let m = |id: u64, j: &str, date| MemberRecord { member_id: id, jurisdiction: j.into(), birth_date: date };
    assert!(store.member(1).unwrap().is_none());
    store
        .put_members(&[m(3, "US-CA", d(2001, 2, 28)), m(1, "DE", d(1960, 12, 31)), m(2, "GB", d(2008, 1, 1))])
        .unwrap();
    // Replacing, and a repeated id within one call: the last record wins.
    store.put_members(&[m(2, "FR", d(2000, 6, 15)), m(4, "BR", d(1999, 9, 9)), m(4, "AR", d(1998, 8, 8))]).unwrap();
    store.put_members(&[]).unwrap();
    assert_eq!(store.member(1).unwrap(), Some(m(1, "DE", d(1960, 12, 31))));
    assert_eq!(store.member(2).unwrap(), Some(m(2, "FR", d(2000, 6, 15))));
    assert_eq!(store.member(4).unwrap(), Some(m(4, "AR", d(1998, 8, 8))));
    assert!(store.member(5).unwrap().is_none());
    let mut all = Vec::new();
    store.scan_members(&mut |r| all.push(r)).unwrap();
    assert_eq!(
        all,
        vec![
            m(1, "DE", d(1960, 12, 31)),
            m(2, "FR", d(2000, 6, 15)),
            m(3, "US-CA", d(2001, 2, 28)),
            m(4, "AR", d(1998, 8, 8))
        ]
    );
    // Many members in one call.
    let many: Vec<MemberRecord> =
        (10..25_010).map(|i| m(i, "US", d(1980 + (i % 20) as i32, 1 + (i % 12) as u32, 1))).collect();
    store.put_members(&many).unwrap();
    let mut n = 0;
    store.scan_members(&mut |_| n += 1).unwrap();
    assert_eq!(n, 4 + 25_000);
    assert_eq!(store.member(25_009).unwrap(), Some(many[24_999].clone()));

    // Small settings.
    assert_eq!(store.get_meta("controller").unwrap(), None);
    store.set_meta("controller", "Example Network").unwrap();
    store.set_meta("controller", "Example Network Ltd").unwrap();
    store.set_meta("cursor", "17").unwrap();
    assert_eq!(store.get_meta("controller").unwrap().as_deref(), Some("Example Network Ltd"));
    assert_eq!(store.get_meta("cursor").unwrap().as_deref(), Some("17"));
    drop(store);
    assert_eq!(b.store().member(3).unwrap(), Some(m(3, "US-CA", d(2001, 2, 28))));
}

fn scan_consent_returns_what_was_appended(b: &Backend) {
    let ledger = b.ledger();
    let mut appended = events("s", 40);
    ledger.append_at(appended.clone(), NOW).unwrap();
    // A large batch too: several insert statements, several reads of the stream.
    let big = events("big", 25_003);
    ledger.append_at(big.clone(), NOW).unwrap();
    appended.extend(big);
    let expect: Vec<(u64, String, ConsentEvent)> = appended
        .iter()
        .map(|e| {
            let c =
                ConsentEvent { at: e.event_time, action: e.action, notice_version: e.notice_version, source: e.source };
            (e.member_id, e.purpose.clone(), c)
        })
        .collect();
    let scan = |from: u64, to: u64| {
        let mut got = Vec::new();
        ledger.store().scan_consent(from, to, &mut |m, p, c| got.push((m, p.to_string(), c))).unwrap();
        got
    };
    assert_eq!(scan(1, u64::MAX), expect);
    assert_eq!(scan(5, 9), expect[4..9].to_vec());
    assert_eq!(scan(40, 41), expect[39..41].to_vec());
    assert!(scan(30_000, 40_000).is_empty());
    assert!(scan(9, 5).is_empty());
    let n = expect.len() as u64;
    assert_eq!(scan(n, n), expect[expect.len() - 1..].to_vec());
}

// ---------------------------------------------------------------------------
// Tamper evidence.

/// The victim event of every tamper test.
const VICTIM: u64 = 13;

/// Builds a 30-event log with checkpoints at 10, 20 and 30; returns the signed
/// head at 20, the one an auditor kept before the log was tampered with.
fn tamper_setup(b: &Backend) -> SignedTreeHead {
    let ledger = b.ledger_with(10);
    for i in 0..6 {
        ledger.append_at(events(&format!("tp{i}"), 5), NOW + i).unwrap();
    }
    let cps = ledger.store().checkpoints().unwrap();
    assert_eq!(cps.iter().map(|c| c.head.tree_size).collect::<Vec<_>>(), vec![10, 20, 30]);
    assert!(ledger.verify().unwrap().ok());
    cps[1].clone()
}

/// Verification reports the tampering no later than `VICTIM`, and the kept head
/// is not consistent with the log as an auditor recomputes it from the rows —
/// nor, when `stored_view_too`, with the ledger's own tree of stored leaf hashes.
fn assert_tamper_detected(b: &Backend, kept: &SignedTreeHead, what: &str, stored_view_too: bool) {
    let ledger = b.ledger_with(0);
    let v = ledger.verify().unwrap();
    assert!(!v.ok(), "{what}: verify did not notice: {v:?}");
    let first = v.first_bad_seq.unwrap_or_else(|| panic!("{what}: no first bad seq: {v:?}"));
    assert!(first <= VICTIM, "{what}: first bad seq {first} is after the tampered event {VICTIM}: {v:?}");

    // The auditor's view: leaves recomputed from the rows as they are now.
    let mut tree = Tree::new();
    for s in all_stored(ledger.store()) {
        tree.push(s.event.leaf_hash().unwrap());
    }
    let (old, n) = (kept.head.tree_size, tree.len());
    assert!(n >= old, "{what}: the log shrank below a signed head");
    let proof = tree.consistency_proof(old, n).unwrap();
    assert!(
        !verify_consistency(old, n, &kept.head.root_hash, &tree.root(n).unwrap(), &proof),
        "{what}: the rewritten log still looks like an extension of the kept head"
    );
    if stored_view_too {
        // The ledger verifies before it proves: it refuses, or its proof does not verify.
        let n = ledger.store().len().unwrap();
        if let (Ok(proof), Ok(root)) = (ledger.consistency_proof(old, n), ledger.root(n)) {
            assert!(
                !verify_consistency(old, n, &kept.head.root_hash, &root, &proof),
                "{what}: the ledger's proof from the kept head still verifies"
            );
        }
    }
}

fn tamper_change_field(b: &Backend) {
    let kept = tamper_setup(b);
    b.raw().exec(&format!("UPDATE events SET member_id = member_id + 1000 WHERE seq = {VICTIM}"));
    // The stored leaf hash was left alone, so only recomputation shows the change.
    assert_tamper_detected(b, &kept, "changed member id", false);

    let b2 = match b {
        Backend::Sqlite(_) => Backend::sqlite(),
        Backend::Postgres(_) => Backend::postgres().unwrap(),
    };
    let kept = tamper_setup(&b2);
    b2.raw().exec(&format!("UPDATE events SET action = 3 - action, actor = actor || 'x' WHERE seq = {VICTIM}"));
    assert_tamper_detected(&b2, &kept, "changed action and actor", false);
}

fn tamper_delete_row(b: &Backend) {
    let kept = tamper_setup(b);
    b.raw().exec(&format!("DELETE FROM events WHERE seq = {VICTIM}"));
    let v = b.ledger().verify().unwrap();
    assert!(v.first_bad_seq.is_some_and(|s| s <= VICTIM), "{v:?}");
    assert!(v.problems.iter().any(|p| p.contains("missing")), "{v:?}");
    // Close the gap too, as a careful forger would.
    b.raw().exec(&format!(
        "UPDATE events SET seq = -seq WHERE seq > {VICTIM}; UPDATE events SET seq = -seq - 1 WHERE seq < 0;"
    ));
    assert_tamper_detected(b, &kept, "deleted row", true);
}

fn tamper_swap_rows(b: &Backend) {
    let kept = tamper_setup(b);
    let (x, y) = (VICTIM, VICTIM + 1);
    b.raw().exec(&format!(
        "UPDATE events SET seq = -1 WHERE seq = {x}; UPDATE events SET seq = {x} WHERE seq = {y};
         UPDATE events SET seq = {y} WHERE seq = -1;"
    ));
    let v = b.ledger().verify().unwrap();
    assert!(v.problems.iter().any(|p| p.contains(&format!("event {x} was changed"))), "{v:?}");
    assert_tamper_detected(b, &kept, "swapped rows", true);
}

fn tamper_insert_row(b: &Backend) {
    let kept = tamper_setup(b);
    let store = b.store();
    let prev = store.event(VICTIM - 1).unwrap().unwrap();
    drop(store);
    // A forged event at VICTIM with hashes that are right for it and chain from its predecessor.
    let mut forged = prev.event.clone();
    forged.seq = VICTIM;
    forged.body.member_id = 4242;
    forged.body.idempotency_key = "forged".into();
    let leaf = forged.leaf_hash().unwrap();
    let chain = chain_hash(&prev.chain_hash, &leaf);
    let mut raw = b.raw();
    raw.exec(&format!(
        "UPDATE events SET seq = -seq WHERE seq >= {VICTIM}; UPDATE events SET seq = -seq + 1 WHERE seq < 0;"
    ));
    raw.insert(&forged, VICTIM - 1, &leaf, &chain);
    drop(raw);
    assert_eq!(b.store().len().unwrap(), 31);
    assert_tamper_detected(b, &kept, "inserted row", true);
}

fn tamper_full_rewrite(b: &Backend) {
    let kept = tamper_setup(b);
    let mut raw = b.raw();
    raw.exec(&format!("UPDATE events SET member_id = 999 WHERE seq = {VICTIM}"));
    // Recompute every leaf and link from the victim on, so the chain is whole again.
    let store = b.store();
    let stored = all_stored(store.as_ref());
    drop(store);
    let mut chain = stored[VICTIM as usize - 2].chain_hash;
    for s in &stored[VICTIM as usize - 1..] {
        let leaf = leaf_hash(&s.event.encode().unwrap());
        chain = chain_hash(&chain, &leaf);
        raw.set_hashes(s.event.seq, &leaf, &chain);
    }
    drop(raw);
    // The chain alone no longer shows it; the checkpoints and the kept head do.
    let v = b.ledger().verify().unwrap();
    assert!(v.problems.iter().all(|p| !p.contains("chain breaks") && !p.contains("was changed")), "{v:?}");
    assert!(v.problems.iter().any(|p| p.contains("checkpoint at 20")), "{v:?}");
    assert_tamper_detected(b, &kept, "rewritten log", true);

    // Even with the stored checkpoints removed as well, the head the auditor kept exposes it.
    b.raw().exec("DELETE FROM checkpoints");
    let ledger = b.ledger();
    let n = ledger.store().len().unwrap();
    let proof = ledger.consistency_proof(kept.head.tree_size, n).unwrap();
    assert!(!verify_consistency(kept.head.tree_size, n, &kept.head.root_hash, &ledger.root(n).unwrap(), &proof));
}

/// A key rotation: receipts issued before and after it verify with only the genesis public key, the whole log
/// verifies, the retired key can no longer sign, a head it signs past its hand-over and an altered hand-over are
/// caught.
fn keys_rotate_and_everything_still_verifies(b: &Backend) {
    let (k1, k2) = (LogKey::from_seed([1; 32]), LogKey::from_seed([2; 32]));
    let genesis = k1.public();
    let old = b.ledger();
    old.append_at(events("a", 3), NOW).unwrap();
    let before = old.receipt(1).unwrap();
    let handover = old.rotate_key(&k2).unwrap();
    assert_eq!(handover.tree_size, 3);
    // The retired key signs nothing more.
    let e = old.checkpoint().unwrap_err();
    assert!(e.to_string().contains("retired"), "{e}");
    assert!(old.rotate_key(&LogKey::from_seed([3; 32])).is_err());
    drop(old);
    let opts = LedgerOptions { checkpoint_every: 0, require_known_members: false, ..LedgerOptions::default() };
    let new = Ledger::new(b.store(), Policy::default_policy(), k2, opts);
    assert_eq!(new.public_key(), genesis, "the log keeps its genesis key as its public key");
    new.append_at(events("b", 3), NOW).unwrap();
    let after = new.receipt(5).unwrap();
    assert_eq!(after.tree_head.key_id, new.key_chain().unwrap().current().key_id);
    assert_eq!(after.tree_head.log_id, genesis.log_id());
    for r in [&before, &after] {
        let text = serde_json::to_string(r).unwrap();
        Receipt::verify_json(&text, &genesis).unwrap();
    }
    assert!(new.verify().unwrap().ok(), "{:?}", new.verify().unwrap());
    assert!(consentry_ledger::verify_store(new.store(), &genesis).unwrap().ok());
    assert_eq!(new.store().key_handovers().unwrap(), vec![handover]);
    // A head signed by the retired key past its hand-over is refused.
    new.append_at(events("c", 1), NOW).unwrap();
    let root = new.root(7).unwrap();
    let chain = new.store().entry(7).unwrap().unwrap().chain_hash;
    let head = consentry_ledger::TreeHead { tree_size: 7, root_hash: root, chain_hash: chain, timestamp: NOW };
    new.store().put_checkpoint(&LogKey::from_seed([1; 32]).sign(head)).unwrap();
    let v = consentry_ledger::verify_store(new.store(), &genesis).unwrap();
    assert!(v.problems.iter().any(|p| p.contains("retired key")), "{:?}", v.problems);
    // An altered hand-over is refused.
    b.raw().exec("UPDATE key_handovers SET handover = replace(handover, '\"timestamp\":', '\"timestamp\":1')");
    let v = consentry_ledger::verify_store(new.store(), &genesis).unwrap();
    assert!(v.problems.iter().any(|p| p.contains("key hand-over 1")), "{:?}", v.problems);
    let fresh = Ledger::new(b.store(), Policy::default_policy(), LogKey::from_seed([2; 32]), LedgerOptions::default());
    assert!(matches!(fresh.verify_through(), Err(LedgerError::Tampered(_))));
}

/// A store from before key rotation (no key tables): read-only it reads as never rotated and its heads verify; the
/// first writable open adds the tables.
#[test]
fn sqlite_store_from_before_key_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let opts = LedgerOptions { require_known_members: false, ..LedgerOptions::default() };
    let key = || LogKey::from_seed([1; 32]);
    let ledger =
        Ledger::new(Box::new(SqliteStore::open(&path).unwrap()), Policy::default_policy(), key(), opts.clone());
    ledger.append_at(events("a", 3), NOW).unwrap();
    ledger.checkpoint().unwrap();
    drop(ledger);
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(
        "DROP TABLE key_handovers; DROP TABLE checkpoint_keys; DELETE FROM consentry_schema WHERE component = 'keys'",
    )
    .unwrap();
    drop(c);
    let ro = SqliteStore::open_read_only(&path).unwrap();
    assert!(ro.key_handovers().unwrap().is_empty());
    assert!(consentry_ledger::verify_store(&ro, &key().public()).unwrap().ok());
    drop(ro);
    let ledger = Ledger::new(Box::new(SqliteStore::open(&path).unwrap()), Policy::default_policy(), key(), opts);
    ledger.rotate_key(&LogKey::from_seed([2; 32])).unwrap();
    assert_eq!(ledger.store().key_handovers().unwrap().len(), 1);
}

/// Witness cosignatures are stored by either backend, checked before they are stored, and carried by receipts
/// against the cosigned checkpoint; a witness given the log's note and proofs refuses a fork of it.
fn cosignatures_are_stored_and_carried_by_receipts(b: &Backend) {
    use consentry_ledger::receipt::AnyReceipt;
    use consentry_ledger::witness::{Witness, WitnessKey, WitnessPolicy};
    let ledger = b.ledger_with(0);
    ledger.append_at(events("w", 6), NOW).unwrap();
    let sth = ledger.checkpoint().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut w = Witness::init_with(dir.path(), WitnessKey::from_seed("w.example/1", [6; 32]).unwrap()).unwrap();
    let origin = ledger.origin().unwrap();
    w.add_log(&origin, &ledger.public_key()).unwrap();
    let a = w.accept(&ledger.checkpoint_note(&sth).unwrap(), &[], &[], 10).unwrap();
    let vkey = w.key().verifier_key().unwrap();
    // A cosignature of another size, or by another key, is refused before it is stored.
    assert!(ledger.add_cosignature(sth.head.tree_size + 1, &vkey, &a.cosignature.line()).is_err());
    let other = WitnessKey::from_seed("w.example/1", [7; 32]).unwrap().verifier_key().unwrap();
    assert!(ledger.add_cosignature(sth.head.tree_size, &other, &a.cosignature.line()).is_err());
    assert!(ledger.cosignatures(sth.head.tree_size).unwrap().is_empty());
    let names = ledger.add_cosignature(sth.head.tree_size, &vkey, &a.cosignature.line()).unwrap();
    assert_eq!(names, vec!["w.example/1".to_string()]);
    // A later checkpoint no witness saw: receipts still use the cosigned one that covers the event.
    ledger.append_at(events("x", 3), NOW).unwrap();
    ledger.checkpoint().unwrap();
    let r = ledger.receipt(2).unwrap();
    assert_eq!(r.tree_head.head.tree_size, sth.head.tree_size);
    let policy = WitnessPolicy { keys: vec![vkey], required: 1 };
    let text = serde_json::to_string_pretty(&r).unwrap();
    AnyReceipt::verify_json_witnessed(&text, &ledger.public_key(), &policy).unwrap();
    // The note carries the stored cosignature; the witness, shown the grown log with its proof, cosigns again.
    assert!(ledger.checkpoint_note(&sth).unwrap().contains("w.example/1"));
    let newest = ledger.latest_checkpoint().unwrap().unwrap();
    let proof = ledger.consistency_proof(sth.head.tree_size, newest.head.tree_size).unwrap();
    w.accept(&ledger.checkpoint_note(&newest).unwrap(), &proof, &[], 11).unwrap();
}

/// Witnesses storing their cosignatures of one checkpoint at the same moment, each through its own connection:
/// every one is kept (the lists are read and rewritten as one step, not read-modify-write across writers).
fn concurrent_cosignatures_are_all_kept(b: &Backend) {
    use consentry_ledger::witness::{WitnessKey, checkpoint_of};
    let ledger = b.ledger();
    ledger.append_at(events("c", 4), NOW).unwrap();
    let sth = ledger.checkpoint().unwrap();
    let body = checkpoint_of(&ledger.origin().unwrap(), &sth).body();
    const N: u8 = 8;
    std::thread::scope(|scope| {
        for i in 0..N {
            let (b, body) = (&b, &body);
            scope.spawn(move || {
                let key = WitnessKey::from_seed(&format!("w{i}.example"), [i + 10; 32]).unwrap();
                let line = key.cosign(body, 100).line();
                let mine = b.ledger();
                mine.add_cosignature(sth.head.tree_size, &key.verifier_key().unwrap(), &line).unwrap();
            });
        }
    });
    let mut names: Vec<String> = ledger.cosignatures(sth.head.tree_size).unwrap().into_iter().map(|c| c.name).collect();
    names.sort();
    assert_eq!(names, (0..N).map(|i| format!("w{i}.example")).collect::<Vec<_>>());
    assert_eq!(ledger.cosigned_sizes().unwrap(), vec![sth.head.tree_size]);
}

// ---------------------------------------------------------------------------
// The tree as tiles (C2SP tlog-tiles' layout): proofs read from the store after a restart equal the in-memory
// reference's, a store from before tiles is converted without a change to its rows, and an edited tile is named.

/// Entries past one level-1 tile (65 536 leaves), so proofs cross every kind of tile edge.
const TILED: u64 = 65_536 + 4_567;

/// A log of [`TILED`] events with a checkpoint every 10 000, and the reference tree of its stored leaves.
fn tiled_log(b: &Backend) -> Tree {
    let ledger = b.ledger_with(10_000);
    let mut done = 0;
    while done < TILED {
        let n = (TILED - done).min(8_000);
        ledger.append_at(events(&format!("tile{done}"), n), NOW).unwrap();
        done += n;
    }
    let mut tree = Tree::new();
    for s in all_stored(ledger.store()) {
        tree.push(s.leaf_hash);
    }
    assert_eq!(tree.len(), TILED);
    tree
}

/// Every root, and a spread of inclusion and consistency proofs on both sides of tile edges, from `ledger`
/// (which reads full tiles from its store) equal the reference's.
fn assert_proofs_match(ledger: &Ledger, reference: &Tree) {
    let n = reference.len();
    let mut sizes: Vec<u64> = vec![1, 2, 255, 256, 257, 511, 512, 513, 65_535, 65_536, 65_537, n - 1, n];
    sizes.extend((1..n).step_by(977));
    sizes.extend(ledger.store().checkpoints().unwrap().iter().map(|c| c.head.tree_size));
    for &size in &sizes {
        assert_eq!(ledger.root(size).unwrap(), reference.root(size).unwrap(), "root of {size}");
    }
    for &size in &[256, 65_536, 65_537, n] {
        for index in (0..size).step_by(613).chain([0, 255, 256, size - 1]).filter(|i| *i < size) {
            let got = ledger.inclusion_proof(index + 1, size).unwrap();
            assert_eq!(Some(got), reference.inclusion_proof(index, size), "inclusion of {index} in {size}");
        }
    }
    for &second in &[257, 65_536, 65_537, n] {
        for first in sizes.iter().copied().filter(|f| *f <= second).step_by(3) {
            let got = ledger.consistency_proof(first, second).unwrap();
            assert_eq!(Some(got), reference.consistency_proof(first, second), "consistency {first}→{second}");
        }
    }
}

/// How many full tiles the store holds at `level`.
fn stored_tiles(store: &dyn Store, level: u32) -> usize {
    store.tiles(level, 0, u64::MAX >> 1).unwrap().len()
}

fn tiles_prove_like_the_reference_after_restart(b: &Backend) {
    let reference = tiled_log(b);
    // A new process: the tree's right edge is rebuilt from the entries, its full tiles read from the store.
    let ledger = b.ledger();
    assert_eq!(ledger.verify_through().unwrap(), TILED);
    assert_eq!(stored_tiles(ledger.store(), 0) as u64, TILED / 256);
    assert_eq!(stored_tiles(ledger.store(), 1), 1);
    assert_eq!(stored_tiles(ledger.store(), 2), 0);
    assert_proofs_match(&ledger, &reference);
    let sth = ledger.checkpoint().unwrap();
    assert_eq!(Some(sth.head.root_hash), reference.root(TILED));
    assert!(ledger.verify().unwrap().ok());
}

/// Everything a store holds that tiles must never change: each entry's hashes, each head's root and signature.
fn rows_and_heads(store: &dyn Store) -> (Vec<(u64, Hash, Hash)>, Vec<SignedTreeHead>) {
    let rows = all_stored(store).into_iter().map(|s| (s.event.seq, s.leaf_hash, s.chain_hash)).collect();
    (rows, store.checkpoints().unwrap())
}

fn a_store_from_before_tiles_is_converted(b: &Backend) {
    let reference = tiled_log(b);
    // Back to the format from before tiles: no table, no version row.
    b.raw().exec("DROP TABLE merkle_tiles; DELETE FROM consentry_schema WHERE component = 'tiles'");
    let before = rows_and_heads(b.store().as_ref());
    if let Backend::Sqlite(dir) = b {
        // Opened read-only, it is verified and proves from tiles held in memory, writing nothing.
        let ro = SqliteStore::open_read_only(&dir.path().join("ledger.db")).unwrap();
        let ledger = Ledger::verifier(
            Box::new(ro),
            Policy::default_policy(),
            LogKey::from_seed([1; 32]).public(),
            LedgerOptions::default(),
        );
        assert_eq!(ledger.verify_through().unwrap(), TILED);
        assert_eq!(ledger.root(70_000).unwrap(), reference.root(70_000).unwrap());
        assert!(ledger.verify().unwrap().ok());
    }
    let ledger = b.ledger();
    assert_eq!(ledger.verify_through().unwrap(), TILED);
    assert_eq!(stored_tiles(ledger.store(), 0) as u64, TILED / 256, "converted on first use");
    assert_eq!(rows_and_heads(ledger.store()), before, "no entry, root or signature changed");
    assert_proofs_match(&ledger, &reference);
    assert!(ledger.verify().unwrap().ok());
}

fn an_edited_tile_is_tampering(b: &Backend) {
    let reference = tiled_log(b);
    // A deleted tile is a lost cache entry: the next process writes it again from the entries.
    b.raw().exec("DELETE FROM merkle_tiles WHERE level = 0 AND idx = 7");
    let ledger = b.ledger();
    assert!(ledger.verify().unwrap().ok(), "a missing tile is not tampering");
    assert_eq!(ledger.verify_through().unwrap(), TILED);
    assert_eq!(stored_tiles(ledger.store(), 0) as u64, TILED / 256);
    drop(ledger);
    // Two tiles swapped: proofs built from them would not verify; the ledger names the first and stops.
    b.raw().exec(
        "UPDATE merkle_tiles SET idx = -1 WHERE level = 0 AND idx = 3;
         UPDATE merkle_tiles SET idx = 3 WHERE level = 0 AND idx = 4;
         UPDATE merkle_tiles SET idx = 4 WHERE level = 0 AND idx = -1;",
    );
    let ledger = b.ledger();
    let v = ledger.verify().unwrap();
    assert_eq!(v.first_bad_seq, Some(3 * 256 + 1), "{v:?}");
    assert!(v.problems.iter().any(|p| p.contains("tile/0/003") && p.contains("edited")), "{v:?}");
    assert!(v.problems.iter().any(|p| p.contains("tile/0/004")), "{v:?}");
    match ledger.verify_through() {
        Err(LedgerError::Tampered(why)) => assert!(why.contains("tile/0/003"), "{why}"),
        other => panic!("an edited tile was accepted: {other:?}"),
    }
    assert!(ledger.checkpoint().is_err(), "nothing is signed over a tampered store");
    let _ = reference;
}

// ---------------------------------------------------------------------------

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    super::$name(&super::Backend::sqlite());
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    if let Some(b) = super::Backend::postgres() {
                        super::$name(&b);
                    }
                }
            )*
        }
    };
}

suite!(
    appends_assign_gap_free_seqs,
    idempotent_retry_returns_original,
    rejected_batches_write_nothing,
    concurrent_appends_form_one_chain,
    group_commits_lose_and_duplicate_nothing,
    member_events_match_a_scan,
    checkpoints_and_proofs_verify,
    receipts_verify_and_detect_one_byte,
    members_are_required,
    member_facts_are_log_entries,
    tampered_events_are_not_used,
    member_directory_round_trips,
    scan_consent_returns_what_was_appended,
    tamper_change_field,
    tamper_delete_row,
    tamper_swap_rows,
    tamper_insert_row,
    tamper_full_rewrite,
    keys_rotate_and_everything_still_verifies,
    cosignatures_are_stored_and_carried_by_receipts,
    concurrent_cosignatures_are_all_kept,
    tiles_prove_like_the_reference_after_restart,
    a_store_from_before_tiles_is_converted,
    an_edited_tile_is_tampering,
);

/// Several processes appending to one PostgreSQL ledger at once produce one gap-free chain.
#[test]
fn postgres_several_processes_one_chain() {
    let Some(Backend::Postgres(db)) = Backend::postgres() else { return };
    // Create the schema first so the children do not all race to (they would cope, but slower).
    drop(PgStore::connect(&db.url).unwrap());
    const PER_CHILD: u64 = 150;
    let children: Vec<_> = (0..3)
        .map(|i| {
            std::process::Command::new(env!("CARGO_BIN_EXE_consentry-ledger-crashtest"))
                .args(["--postgres", &db.url, "--run-id", &format!("p{i}"), "--count", &PER_CHILD.to_string()])
                .args(["--threads", "3", "--checkpoint-every", "50"])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut acked: Vec<(u64, String)> = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "child failed: {out:?}");
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            let mut w = line.split(' ');
            assert_eq!(w.next(), Some("ack"));
            acked.push((w.next().unwrap().parse().unwrap(), w.next().unwrap().to_string()));
        }
    }
    assert_eq!(acked.len() as u64, 3 * PER_CHILD);
    let seqs: BTreeSet<u64> = acked.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (1..=3 * PER_CHILD).collect::<BTreeSet<u64>>());
    let keys: HashSet<&str> = acked.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(keys.len() as u64, 3 * PER_CHILD);
    let b = Backend::Postgres(db);
    let ledger = b.ledger();
    for (seq, key) in &acked {
        assert_eq!(&ledger.store().event(*seq).unwrap().unwrap().event.body.idempotency_key, key);
    }
    let v = ledger.verify().unwrap();
    assert!(v.ok(), "{v:?}");
    assert_eq!(v.events, 3 * PER_CHILD);
    assert!(v.checkpoints >= 3, "{v:?}");
}

/// PostgreSQL group commit under load from two sessions at once (two stores on one database, as two processes
/// of a service would be), each with many appending threads: callers of one store share transactions, every
/// acknowledged event is in the log at its acknowledged position with leaf and chain hashes that recompute, the
/// outbox holds one row per event, and the whole log verifies against its checkpoints.
#[test]
fn postgres_group_commits_share_transactions_and_verify() {
    let Some(Backend::Postgres(db)) = Backend::postgres() else { return };
    const THREADS: u64 = 12;
    const ROUNDS: u64 = 20;
    let b = Backend::Postgres(db);
    let ledgers = [Arc::new(b.ledger_with(32)), Arc::new(b.ledger_with(32))];
    let start = Arc::new(std::sync::Barrier::new(2 * THREADS as usize));
    let handles: Vec<_> = (0..2 * THREADS)
        .map(|t| {
            let (ledger, start) = (Arc::clone(&ledgers[(t % 2) as usize]), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                (0..ROUNDS)
                    .flat_map(|r| {
                        // Mostly single events, sometimes a small batch: requests of different sizes in one group.
                        let batch = if r % 4 == 0 {
                            events(&format!("t{t}-r{r}"), 3)
                        } else {
                            vec![ev(t + 1, [JOBS, FEED, REPLY][(r % 3) as usize], &format!("t{t}-r{r}"))]
                        };
                        let n = batch.len();
                        let out = ledger.append_at(batch, NOW).unwrap();
                        assert_eq!(out.len(), n);
                        out.into_iter().map(|a| {
                            assert!(!a.duplicate);
                            (a.event.seq, a.event.body.idempotency_key, a.chain_hash)
                        })
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let acked: Vec<(u64, String, Hash)> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let total = 2 * THREADS * (ROUNDS + 2 * ROUNDS.div_ceil(4));
    assert_eq!(acked.len() as u64, total);
    let seqs: BTreeSet<u64> = acked.iter().map(|(s, _, _)| *s).collect();
    assert_eq!(seqs, (1..=total).collect::<BTreeSet<u64>>(), "sequence numbers are not gap-free and unique");

    // Every event as acknowledged, its leaf hash recomputed from its bytes and the chain recomputed from the start.
    let ledger = b.ledger();
    let stored = all_stored(ledger.store());
    assert_eq!(stored.len() as u64, total);
    let mut chain: Hash = [0; 32];
    for s in &stored {
        assert_eq!(s.leaf_hash, leaf_hash(&s.event.encode().unwrap()), "leaf hash of event {}", s.event.seq);
        chain = chain_hash(&chain, &s.leaf_hash);
        assert_eq!(s.chain_hash, chain, "chain hash at event {}", s.event.seq);
    }
    for (seq, key, chain) in &acked {
        let s = &stored[*seq as usize - 1];
        assert_eq!(&s.event.body.idempotency_key, key);
        assert_eq!(&s.chain_hash, chain, "the acknowledged chain hash of event {seq}");
    }
    let outbox = ledger.store().outbox_after(0, 1_000_000).unwrap();
    assert_eq!(outbox.len() as u64, total, "one outbox row per event");
    let v = ledger.verify().unwrap();
    assert!(v.ok(), "{v:?}");
    assert_eq!(v.events, total);
    assert!(v.checkpoints >= 1, "{v:?}");

    // Grouping happened: fewer transactions than requests (each row's xmin is the transaction that wrote it).
    let Backend::Postgres(db) = &b else { unreachable!() };
    let transactions: i64 = db.client().query_one("SELECT COUNT(DISTINCT xmin::text) FROM events", &[]).unwrap().get(0);
    let requests = (2 * THREADS * ROUNDS) as i64;
    eprintln!("{requests} append requests committed in {transactions} transactions");
    assert!(transactions < requests, "{transactions} transactions for {requests} requests: nothing was grouped");
}
