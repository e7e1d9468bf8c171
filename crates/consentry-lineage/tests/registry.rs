//! One registry suite, run against both stores (a SQLite file and a throwaway PostgreSQL database): dataset
//! and model registration with their checks and idempotency, the consent events a model rests on (read from a
//! real ledger in the same store), lineage queries, status transitions, unlearning requests opened at
//! registration and by the worker's intake, and the errors for unknown ids, members, altered or missing
//! directories and a cursor ahead of the ledger.

use consentry_test_support::pg as support;

use chrono::NaiveDate;
use consentry_gate::manifest::{
    LedgerRef, Manifest, MemberSet, PolicyRef, RedactionRef, ShardFunction, SnapshotRef, SourcesRef,
};
use consentry_learn::model::write_model_dir;
use consentry_ledger::{Ledger, LedgerOptions, LogKey, MemberRecord, NewEvent, Store};
use consentry_lineage::worker::{WorkerOptions, run_once};
use consentry_lineage::{LineageError, ModelRecord, ModelStatus, Registry, RequestStatus};
use consentry_policy::{Action, Policy, Source};
use roaring::RoaringTreemap;
use std::path::{Path, PathBuf};

const JOBS: &str = "train_ai_system.job_recommendations";
/// After the default policy's notices took effect.
const T0: i64 = 1_790_000_000;
const SHARDS: u32 = 4;

enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres(support::PgDb),
}

impl Backend {
    fn registry(&self) -> Registry {
        let reg = match self {
            Backend::Sqlite(d) => Registry::open_sqlite(&d.path().join("ledger.db")).unwrap(),
            Backend::Postgres(db) => Registry::connect_postgres(&db.url).unwrap(),
        };
        // The ledger's key signs every registration.
        reg.with_key(LogKey::from_seed([7; 32]))
    }

    fn ledger(&self) -> Ledger {
        let store: Box<dyn Store> = match self {
            Backend::Sqlite(d) => {
                Box::new(consentry_ledger::sqlite::SqliteStore::open(&d.path().join("ledger.db")).unwrap())
            }
            Backend::Postgres(db) => Box::new(consentry_ledger::postgres::PgStore::connect(&db.url).unwrap()),
        };
        // The directory is recorded after the events (see `ledger_setup`).
        let opts = LedgerOptions { require_known_members: false, ..LedgerOptions::default() };
        Ledger::new(store, Policy::default_policy(), LogKey::from_seed([7; 32]), opts)
    }

    /// Moves the unlearning cursor behind the registry's back.
    fn set_cursor(&self, seq: i64) {
        match self {
            Backend::Sqlite(d) => {
                let c = rusqlite::Connection::open(d.path().join("ledger.db")).unwrap();
                c.execute(
                    "INSERT INTO registry_cursors (name, seq) VALUES ('unlearning', ?1) \
                     ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
                    [seq],
                )
                .unwrap();
            }
            Backend::Postgres(db) => {
                db.client()
                    .execute(
                        "INSERT INTO registry_cursors (name, seq) VALUES ('unlearning', $1) \
                         ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
                        &[&seq],
                    )
                    .unwrap();
            }
        }
    }
}

fn event(member: u64, action: Action, source: Source, at: i64, key: &str) -> NewEvent {
    NewEvent {
        member_id: member,
        purpose: JOBS.into(),
        action,
        notice_version: 1,
        source,
        actor: format!("member:{member}"),
        event_time: at,
        idempotency_key: key.into(),
    }
}

fn bitmap_bytes(b: &RoaringTreemap) -> Vec<u8> {
    let mut v = Vec::new();
    b.serialize_into(&mut v).unwrap();
    v
}

/// A dataset directory with a manifest and member bitmap (no tables: the registry reads only those two).
fn dataset_dir(root: &Path, name: &str, members: &RoaringTreemap, position: u64) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let bytes = bitmap_bytes(members);
    std::fs::write(dir.join("members.roaring"), &bytes).unwrap();
    let m = Manifest {
        format: 1,
        purpose: JOBS.into(),
        policy: PolicyRef { version: "test".into(), hash: "00".into() },
        ledger: LedgerRef { position, at: T0, tree_root: "00".into(), checkpoint: None },
        snapshot: SnapshotRef { hash: "00".into(), allowed: members.len(), members: members.len() },
        sources: SourcesRef { declaration: "test".into(), declaration_hash: "00".into(), files: Vec::new() },
        partition: None,
        tables: Default::default(),
        rows_in: 0,
        rows_out: 0,
        excluded: Default::default(),
        redactions: Default::default(),
        redaction: RedactionRef { enabled: false, member_names: 0 },
        members: MemberSet {
            count: members.len(),
            commitment: blake3::hash(&bytes).to_hex().to_string(),
            file: "members.roaring".into(),
        },
        shard: ShardFunction::for_purpose(JOBS, SHARDS),
        files: Vec::new(),
        tool: "test".into(),
        created: T0 + 10,
    };
    m.write(&dir).unwrap();
    dir
}

/// A model directory over `members`, split by the purpose's shard function; shard files are stand-ins.
fn model_dir(root: &Path, name: &str, dataset: &Path, members: &RoaringTreemap, seed: u64) -> PathBuf {
    model_dir_after(root, name, dataset, members, seed, None)
}

/// [`model_dir`] for a version made by unlearning `excluded` from model `previous`.
fn model_dir_after(
    root: &Path,
    name: &str,
    dataset: &Path,
    members: &RoaringTreemap,
    seed: u64,
    unlearned: Option<(&str, &RoaringTreemap)>,
) -> PathBuf {
    let out = root.join(name);
    let (manifest_blake3, _) = consentry_gate::hash_file(&dataset.join("manifest.json")).unwrap();
    let manifest = Manifest::read(dataset).unwrap();
    let sf = ShardFunction::for_purpose(JOBS, SHARDS);
    let meta = serde_json::from_value(serde_json::json!({
        "format": 1, "kind": "job-recs", "purpose": JOBS,
        "dataset": { "path": dataset.display().to_string(), "manifest_blake3": manifest_blake3,
                     "members_commitment": manifest.members.commitment, "members": manifest.members.count,
                     "ledger_position": manifest.ledger.position },
        "shard_function": sf, "seed": seed, "hyper": {}, "metrics": { "recall_at_20": 0.25 },
        "shards": [], "train_seconds": 1.5, "tool": "test", "created": T0 + 20,
    }))
    .unwrap();
    let mut meta: consentry_learn::model::ModelMeta = meta;
    let mut extra = Vec::new();
    if let Some((previous, excluded)) = unlearned {
        let bytes = bitmap_bytes(excluded);
        meta.unlearning = Some(consentry_learn::model::UnlearningRef {
            excluded: excluded.len(),
            file: consentry_learn::model::EXCLUDED_FILE.into(),
            commitment: blake3::hash(&bytes).to_hex().to_string(),
            previous: previous.into(),
            retrained_shards: vec![0],
        });
        extra.push((consentry_learn::model::EXCLUDED_FILE, bytes));
    }
    let shards = (0..SHARDS)
        .map(|i| {
            let mut b = RoaringTreemap::new();
            for m in members.iter().filter(|m| sf.shard_of(*m) == Some(i)) {
                b.insert(m);
            }
            (format!("shard {i} seed {seed}").into_bytes(), b, 10 * u64::from(i + 1))
        })
        .collect();
    write_model_dir(&out, meta, shards, &extra).unwrap();
    out
}

fn range(lo: u64, hi: u64) -> RoaringTreemap {
    (lo..=hi).collect()
}

fn suite(b: &Backend) {
    let root = tempfile::tempdir().unwrap();
    let ledger = ledger_setup(b);
    let reg = b.registry();

    // Datasets: checked, idempotent by manifest hash.
    let ds_dir = dataset_dir(root.path(), "ds", &range(1, 30), 40);
    let ds = reg.register_dataset_dir(&ds_dir).unwrap();
    assert_eq!(reg.register_dataset_dir(&ds_dir).unwrap(), ds);
    assert_eq!(reg.datasets().unwrap().len(), 1);
    assert_eq!((ds.members, ds.ledger_position, ds.purpose.as_str()), (30, 40, JOBS));
    assert_eq!(reg.dataset(&ds.id[..8]).unwrap(), ds);

    // Training looks a dataset up by its manifest's bytes: an edited manifest is not the registered one.
    assert_eq!(reg.registered_dataset(&ds_dir).unwrap(), ds);
    let edited = dataset_dir(root.path(), "edited", &range(1, 30), 40);
    let text =
        std::fs::read_to_string(edited.join("manifest.json")).unwrap().replace("\"rows_out\": 0", "\"rows_out\": 1");
    std::fs::write(edited.join("manifest.json"), text).unwrap();
    let e = reg.registered_dataset(&edited).unwrap_err();
    assert!(matches!(e, LineageError::Dataset { .. }) && e.to_string().contains("not one the registry holds"), "{e}");

    // So is one whose consent was evaluated in the future (2100-01-01).
    let future = dataset_dir(root.path(), "future", &range(1, 30), 40);
    let text = std::fs::read_to_string(future.join("manifest.json")).unwrap();
    let text = text.replace(&format!("\"at\": {T0}"), "\"at\": 4102444800");
    std::fs::write(future.join("manifest.json"), text).unwrap();
    let e = reg.register_dataset_dir(&future).unwrap_err();
    assert!(e.to_string().contains("2100-01-01"), "{e}");

    // A dataset whose bitmap does not match its commitment is refused.
    let bad_ds = dataset_dir(root.path(), "bad-ds", &range(1, 10), 40);
    std::fs::write(bad_ds.join("members.roaring"), bitmap_bytes(&range(1, 11))).unwrap();
    let e = reg.register_dataset_dir(&bad_ds).unwrap_err();
    assert!(matches!(e, LineageError::Dataset { .. }), "{e}");
    assert!(e.to_string().contains("altered"), "{e}");

    // Models: live, idempotent, events read from the ledger.
    let m_dir = model_dir(root.path(), "m1", &ds_dir, &range(1, 30), 1);
    let m = reg.register_model_dir(&m_dir).unwrap();
    assert_eq!((m.status, m.version, m.supersedes.as_deref()), (ModelStatus::Live, 1, None));
    assert_eq!(m.dataset, ds.id);
    assert_eq!(reg.register_model_dir(&m_dir).unwrap(), m);
    assert_eq!(reg.models(Some(JOBS), Some(ModelStatus::Live)).unwrap().len(), 1);
    assert!(reg.models(Some("train_ai_system.reply_suggestions"), None).unwrap().is_empty());

    let ml = reg.model_lineage(&m.id[..10]).unwrap();
    assert_eq!(ml.members, 30);
    assert_eq!(ml.shards.len(), SHARDS as usize);
    assert_eq!(ml.shards.iter().map(|s| s.members).sum::<u64>(), 30);
    assert_eq!(ml.dataset, ds);
    // Members 1..=30 granted at seqs 1..=30; member 7 withdrew (seq 35) and re-granted (seq 36) before the
    // dataset's position 40, so their inclusion rests on seq 36. Members 31..=34 granted too but are not in
    // the dataset.
    let mut expect: Vec<u64> = (1..=30).filter(|&s| s != 7).collect();
    expect.push(36);
    expect.sort_unstable();
    assert_eq!(ml.events, expect);
    assert_eq!(ml.members_without_event, 0);
    assert_eq!(ml.runs.len(), 1);
    assert_eq!(ml.runs[0].shards_trained, vec![0, 1, 2, 3]);
    assert_eq!(ml.superseded_by, None);

    // Member 5 withdrew via GPC after the dataset's position (seq 41): registration opened a request.
    let open = reg.open_requests().unwrap();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!((open[0].member, open[0].event_seq, open[0].model.as_str()), (5, 41, m.id.as_str()));
    assert_eq!(open[0].status, RequestStatus::Pending);
    assert_eq!(open[0].deadline, T0 + 500 + 86_400);

    // Member lineage: dataset, model, shard, consent event with its time, status.
    let l3 = reg.member(3).unwrap();
    assert_eq!(l3.datasets.len(), 1);
    assert_eq!(l3.models.len(), 1);
    let mm = &l3.models[0];
    assert_eq!(mm.consent_event, Some(3));
    assert_eq!(mm.consent_time, Some(T0 + 3));
    assert_eq!(Some(mm.shard), ShardFunction::for_purpose(JOBS, SHARDS).shard_of(3));
    assert_eq!(mm.state, "live");
    assert_eq!(reg.member(7).unwrap().models[0].consent_event, Some(36));
    let l5 = reg.member(5).unwrap();
    assert!(l5.models[0].state.contains("unlearning pending"), "{}", l5.models[0].state);
    assert_eq!(l5.requests.len(), 1);
    // Known to the ledger but in nothing: an empty answer. Unknown everywhere: an error.
    let l44 = reg.member(44).unwrap();
    assert!(l44.datasets.is_empty() && l44.models.is_empty());
    assert!(matches!(reg.member(999).unwrap_err(), LineageError::UnknownMember(999)));

    // Unknown and malformed ids.
    assert!(matches!(reg.model("not-hex!").unwrap_err(), LineageError::Invalid(_)));
    assert!(matches!(reg.model("abc").unwrap_err(), LineageError::Invalid(_)));
    let e = reg.model("0123456789abcdef").unwrap_err();
    assert!(matches!(e, LineageError::NotFound { what: "model", .. }), "{e}");
    assert!(matches!(reg.dataset("fedcba987654").unwrap_err(), LineageError::NotFound { what: "dataset", .. }));
    assert!(reg.model_lineage("0123456789abcdef").unwrap_err().is_bad_input());

    // Altered and missing model directories.
    let altered = model_dir(root.path(), "m-altered", &ds_dir, &range(1, 30), 2);
    std::fs::write(altered.join("shard-001.safetensors"), b"tampered").unwrap();
    let e = reg.register_model_dir(&altered).unwrap_err();
    assert!(matches!(e, LineageError::ModelFiles { .. }) && e.to_string().contains("altered"), "{e}");
    let e = reg.register_model_dir(&root.path().join("nope")).unwrap_err();
    assert!(matches!(e, LineageError::ModelFiles { .. }), "{e}");
    // A shard bitmap with a member outside the dataset.
    let outside = model_dir(root.path(), "m-outside", &ds_dir, &range(1, 31), 3);
    let e = reg.register_model_dir(&outside).unwrap_err();
    assert!(e.to_string().contains("not in its dataset"), "{e}");
    // A model whose dataset is neither registered nor on disk.
    let ds2 = dataset_dir(root.path(), "ds2", &range(1, 20), 40);
    let orphan = model_dir(root.path(), "m-orphan", &ds2, &range(1, 20), 4);
    std::fs::remove_dir_all(&ds2).unwrap();
    let e = reg.register_model_dir(&orphan).unwrap_err();
    assert!(matches!(e, LineageError::NotFound { what: "dataset", .. }), "{e}");

    // Status transitions.
    let m2 = reg.register_model_dir(&model_dir(root.path(), "m2", &ds_dir, &range(1, 30), 5)).unwrap();
    assert_ne!(m2.id, m.id);
    let s = reg.set_status(&m2.id, ModelStatus::Superseded, T0 + 600).unwrap();
    assert_eq!((s.status, s.status_changed), (ModelStatus::Superseded, Some(T0 + 600)));
    assert_eq!(reg.set_status(&m2.id, ModelStatus::Superseded, T0 + 700).unwrap().status_changed, Some(T0 + 600));
    assert_eq!(reg.set_status(&m2.id, ModelStatus::Retired, T0 + 800).unwrap().status, ModelStatus::Retired);
    let e = reg.set_status(&m2.id, ModelStatus::Live, T0 + 900).unwrap_err();
    assert!(matches!(e, LineageError::Transition { from: ModelStatus::Retired, to: ModelStatus::Live, .. }), "{e}");
    // Retiring m2 closed its request for member 5 (opened at its registration).
    assert!(reg.requests().unwrap().iter().any(|r| r.model == m2.id && r.completed_at == Some(T0 + 800)));
    assert_eq!(reg.open_requests().unwrap().len(), 1);

    // The worker's intake: a withdrawal by erasure of member 9 (in m1) opens a request; the cursor advances.
    let batch_window = WorkerOptions { batch_window_secs: 1_000_000, now: Some(T0 + 1000), ..WorkerOptions::default() };
    ledger.append_at(vec![event(9, Action::Withdraw, Source::Erasure, T0 + 900, "w9")], T0 + 901).unwrap();
    let len = ledger.store().len().unwrap();
    let r = run_once(&reg, &ledger, &batch_window).unwrap();
    assert_eq!((r.cursor_from, r.cursor_to), (0, len));
    assert!(r.retrains.is_empty(), "the batch window holds the retrain back");
    // Member 7's withdrawal (seq 35) predates the dataset: the gate applied it. Member 5's (seq 41) was opened
    // at registration already. Only member 9's is new.
    assert_eq!(r.requests_opened, 1, "{r:?}");
    // Member 7's is not even read: the scan starts after the earliest live model's dataset position.
    assert_eq!(r.withdrawals, 2);
    assert_eq!(reg.cursor("unlearning").unwrap(), len);
    let open: Vec<(u64, u64)> = reg.open_requests().unwrap().iter().map(|q| (q.member, q.event_seq)).collect();
    assert_eq!(open, vec![(5, 41), (9, len)]);
    assert_eq!(r.figures.open, 2);
    // A second pass reads nothing new.
    let again = run_once(&reg, &ledger, &batch_window).unwrap();
    assert_eq!((again.cursor_from, again.requests_opened), (len, 0));

    // Past the deadline the requests are marked missed (still open, still to be processed) — and the retrain
    // is due, but m1's directory is gone: a clear error, nothing changes.
    let late = WorkerOptions { now: Some(T0 + 500 + 86_401), ..batch_window.clone() };
    std::fs::remove_dir_all(&m_dir).unwrap();
    let e = run_once(&reg, &ledger, &late).unwrap_err();
    assert!(matches!(e, LineageError::ModelFiles { .. }), "{e}");
    assert!(e.to_string().contains("retire"), "{e}");
    let missed = reg.missed_requests().unwrap();
    assert_eq!(missed.iter().map(|q| q.member).collect::<Vec<_>>(), vec![5], "{missed:?}");
    assert_eq!(reg.model(&m.id).unwrap().status, ModelStatus::Live);

    // A successor registered by hand (made by unlearning member 5 from m1): it supersedes m1, completes the
    // request for member 5 (late: missed) and inherits the one for member 9, who is still in it.
    let mut without5 = range(1, 30);
    without5.remove(5);
    let v2_dir = model_dir_after(root.path(), "m1.v2", &ds_dir, &without5, 1, Some((&m.id, &range(5, 5))));
    let v2 = reg.register_model_dir(&v2_dir).unwrap();
    assert_eq!((v2.version, v2.supersedes.as_deref(), v2.status), (2, Some(m.id.as_str()), ModelStatus::Live));
    assert_eq!(reg.model(&m.id).unwrap().status, ModelStatus::Superseded);
    assert_eq!(reg.model_lineage(&m.id).unwrap().superseded_by.as_deref(), Some(v2.id.as_str()));
    let v2l = reg.model_lineage(&v2.id).unwrap();
    assert_eq!((v2l.members, v2l.events.len()), (29, 29));
    assert!(!v2l.events.contains(&5));
    let open = reg.open_requests().unwrap();
    assert_eq!(open.iter().map(|q| (q.member, q.model.as_str())).collect::<Vec<_>>(), vec![(9, v2.id.as_str())]);
    let l5 = reg.member(5).unwrap();
    assert_eq!(l5.models.iter().filter(|x| x.model == m.id).count(), 1);
    assert!(l5.models.iter().all(|x| x.model != v2.id), "v2 never held member 5");
    let e5 = l5.models.iter().find(|x| x.model == m.id).unwrap();
    assert!(e5.state.starts_with("removed by unlearning at") && e5.state.contains("deadline missed"), "{}", e5.state);
    assert_eq!(e5.removed_by.as_deref(), Some(v2.id.as_str()));
    // Member 9: in m1 (superseded, still in v2) and in v2 (live, unlearning pending/missed).
    let l9 = reg.member(9).unwrap();
    assert_eq!(l9.models.len(), 3, "m1, m2 (retired) and v2");
    let state = |id: &str| l9.models.iter().find(|x| x.model == id).unwrap().state.clone();
    assert!(state(&m.id).starts_with("superseded"), "{}", state(&m.id));
    assert!(state(&v2.id).starts_with("live; unlearning"), "{}", state(&v2.id));
    assert!(state(&m2.id).starts_with("retired at"), "{}", state(&m2.id));

    // Retiring v2 settles the rest; lineage says so.
    reg.set_status(&v2.id, ModelStatus::Retired, T0 + 90_000).unwrap();
    assert!(reg.open_requests().unwrap().is_empty());
    let l9 = reg.member(9).unwrap();
    let entry = l9.models.iter().find(|x| x.model == v2.id).unwrap();
    assert!(entry.state.contains("retired") && entry.state.contains("deadline missed"), "{}", entry.state);
    let r = run_once(&reg, &ledger, &late).unwrap();
    assert!(r.retrains.is_empty());
    assert_eq!(r.figures.open, 0);
    assert_eq!(r.figures.completed, 3, "member 5 in m2 and m1, member 9 (moved from m1 to v2): {:?}", r.figures);
    assert!(r.figures.missed >= 2, "{:?}", r.figures);

    // A version superseded by hand with no successor: the worker closes its requests without a retrain (no
    // live model holds the members any more).
    let m3 = reg.register_model_dir(&model_dir(root.path(), "m3", &ds_dir, &range(1, 30), 6)).unwrap();
    assert_eq!(reg.open_requests().unwrap().len(), 2, "members 5 and 9 withdrew after the dataset was gated");
    reg.set_status(&m3.id, ModelStatus::Superseded, T0 + 95_000).unwrap();
    let r = run_once(&reg, &ledger, &late).unwrap();
    assert_eq!((r.retrains.len(), r.closed_without_retrain), (0, 2), "{r:?}");
    assert!(reg.open_requests().unwrap().is_empty());

    // A request marked missed stays missed when its model is retired, even at a time before its deadline.
    let m4_dir = model_dir(root.path(), "m4", &ds_dir, &range(1, 30), 7);
    let m4 = reg.register_model_dir(&m4_dir).unwrap();
    std::fs::remove_dir_all(&m4_dir).unwrap();
    assert!(matches!(run_once(&reg, &ledger, &late).unwrap_err(), LineageError::ModelFiles { .. }));
    let status = |member: u64| {
        let all = reg.requests().unwrap();
        all.iter().find(|q| q.model == m4.id && q.member == member).map(|q| (q.status, q.completed_at)).unwrap()
    };
    assert_eq!(status(5), (RequestStatus::Missed, None));
    reg.set_status(&m4.id, ModelStatus::Retired, T0 + 1000).unwrap();
    assert_eq!(status(5), (RequestStatus::Missed, Some(T0 + 1000)));
    assert_eq!(status(9), (RequestStatus::Done, Some(T0 + 1000)));

    // A cursor ahead of the ledger (the ledger was swapped or truncated).
    b.set_cursor(len as i64 + 5);
    let e = run_once(&reg, &ledger, &late).unwrap_err();
    assert!(matches!(e, LineageError::CursorAhead { cursor, ledger, .. } if cursor == len + 5 && ledger == len), "{e}");
}

/// Members 1..=45 in the directory; grants for 1..=34 at seqs 1..=34; member 7 withdraws (35) and re-grants
/// (36); filler grants up to position 40; member 5 withdraws via GPC at seq 41.
fn ledger_setup(b: &Backend) -> Ledger {
    let ledger = b.ledger();
    let birth = NaiveDate::from_ymd_opt(1980, 1, 1).unwrap();
    let members: Vec<MemberRecord> =
        (1..=45).map(|m| MemberRecord { member_id: m, jurisdiction: "DE".into(), birth_date: birth }).collect();
    let mut batch: Vec<NewEvent> =
        (1..=34).map(|m| event(m, Action::Grant, Source::Ui, T0 + m as i64, &format!("g{m}"))).collect();
    batch.push(event(7, Action::Withdraw, Source::Ui, T0 + 35, "w7"));
    batch.push(event(7, Action::Grant, Source::Ui, T0 + 36, "g7b"));
    for (i, m) in (40..=43).enumerate() {
        batch.push(event(m, Action::Grant, Source::Api, T0 + 37 + i as i64, &format!("f{m}")));
    }
    ledger.append_at(batch, T0 + 100).unwrap();
    assert_eq!(ledger.store().len().unwrap(), 40);
    ledger.append_at(vec![event(5, Action::Withdraw, Source::Gpc, T0 + 500, "w5")], T0 + 501).unwrap();
    // The directory's fact entries (seqs 42..=86) come after the events, so the seqs above stay readable.
    ledger.store().put_members(&members).unwrap();
    ledger
}

#[test]
fn registry_on_sqlite() {
    suite(&Backend::Sqlite(tempfile::tempdir().unwrap()));
}

#[test]
fn registry_on_postgres() {
    let Some(db) = support::pg() else { return };
    suite(&Backend::Postgres(db));
}

/// A SQLite ledger with members and events, a data directory holding dataset `ds` (members 1–30) and model `m1`
/// trained on it, registered: where the file and signature tests start.
struct Registered {
    b: Backend,
    ledger: Ledger,
    _tmp: tempfile::TempDir,
    data: PathBuf,
    models: PathBuf,
    reg: Registry,
    ds_dir: PathBuf,
    m_dir: PathBuf,
    m: ModelRecord,
}

fn registered_m1() -> Registered {
    let b = Backend::Sqlite(tempfile::tempdir().unwrap());
    let ledger = ledger_setup(&b);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().canonicalize().unwrap().join("data");
    let models = data.join("models");
    let reg = b.registry().with_base(&data);
    let ds_dir = dataset_dir(&data, "ds", &range(1, 30), 40);
    let m_dir = model_dir(&models, "m1", &ds_dir, &range(1, 30), 1);
    let m = reg.register_model_dir(&m_dir).unwrap();
    Registered { b, ledger, _tmp: tmp, data, models, reg, ds_dir, m_dir, m }
}

/// Model files are bound to the registry (serving checks `model.json` against the id and every shard file and
/// bitmap against the registered hashes), unregistered model directories are found, positions beyond the log's
/// end are reported, and what a worker killed after its swap left is finished.
#[test]
fn files_unregistered_models_and_positions_are_checked_against_the_registry() {
    use consentry_lineage::Servable;
    let Registered { b, ledger, _tmp, data, models, reg, ds_dir, m_dir, m } = registered_m1();
    assert!(matches!(reg.servable(&m_dir, false).unwrap(), Servable::Registered(r) if r.id == m.id));
    assert!(reg.check_model_files(&m).unwrap().is_empty());

    // A shard file replaced and model.json left alone: the file, the registered and the found hash are named.
    let shard = m_dir.join("shard-001.safetensors");
    let original = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, b"older weights").unwrap();
    let found = blake3::hash(b"older weights").to_hex().to_string();
    let bad = reg.check_model_files(&m).unwrap();
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert_eq!((bad[0].file.as_str(), bad[0].found.as_str()), ("shard-001.safetensors", found.as_str()));
    let e = reg.servable(&m_dir, false).unwrap_err();
    assert!(matches!(e, LineageError::NotServed { .. }) && e.to_string().contains(&found), "{e}");
    std::fs::write(&shard, &original).unwrap();

    // model.json rewritten (its hashes "fixed", or its metrics edited): no longer the registered id.
    let meta_path = m_dir.join("model.json");
    let meta_bytes = std::fs::read(&meta_path).unwrap();
    let mut meta: serde_json::Value = serde_json::from_slice(&meta_bytes).unwrap();
    meta["metrics"]["recall_at_20"] = 0.99.into();
    std::fs::write(&meta_path, serde_json::to_vec(&meta).unwrap()).unwrap();
    let e = reg.servable(&m_dir, true).unwrap_err();
    assert!(e.to_string().contains("model.json") && e.to_string().contains(&m.id), "{e}");
    assert_eq!(reg.check_model_files(&m).unwrap()[0].file, "model.json");
    assert!(reg.verify_registered_dir(&m_dir).is_err());
    std::fs::write(&meta_path, &meta_bytes).unwrap();

    // An unregistered model in the data directory: listed, never served; outside it, only on request.
    let stray = model_dir(&models, "stray", &ds_dir, &range(1, 30), 2);
    assert_eq!(reg.unregistered_model_dirs(&data).unwrap(), vec![stray.clone()]);
    // Anywhere in the data directory, not only under models/.
    let deeper = model_dir(&data.join("experiments/a"), "deep", &ds_dir, &range(1, 30), 4);
    assert_eq!(reg.unregistered_model_dirs(&data).unwrap(), vec![deeper.clone(), stray.clone()]);
    std::fs::remove_dir_all(data.join("experiments")).unwrap();
    assert!(matches!(reg.servable(&stray, true), Err(LineageError::NotServed { .. })));
    let e = reg.check_train_target(&stray).unwrap_err();
    assert!(e.to_string().contains("interrupted") && e.to_string().contains("register-model"), "{e}");
    assert!(reg.check_train_target(&m_dir).unwrap_err().to_string().contains("holds registered model version 1"));
    let elsewhere = tempfile::tempdir().unwrap();
    let exp = model_dir(elsewhere.path(), "exp", &ds_dir, &range(1, 30), 3);
    assert!(matches!(reg.servable(&exp, false), Err(LineageError::NotServed { .. })));
    assert_eq!(reg.servable(&exp, true).unwrap(), Servable::Unregistered);
    std::fs::remove_dir_all(&stray).unwrap();

    // A superseded version left with its weights and a dead worker's lock (a crash after the swap): finished.
    let v2 = model_dir_after(&models, "m1.v2", &ds_dir, &range(6, 30), 1, Some((&m.id, &range(5, 5))));
    reg.register_model_dir(&v2).unwrap();
    assert!(m_dir.join("shard-000.safetensors").exists());
    std::fs::write(models.join(".m1.v2.lock"), "4294967295").unwrap();
    let e = reg.servable(&m_dir, false).unwrap_err();
    assert!(e.to_string().contains("superseded") && e.to_string().contains("m1.v2"), "{e}");
    let removed = reg.finish_interrupted().unwrap();
    assert_eq!(removed.len(), SHARDS as usize + 1, "{removed:?}");
    assert!(!m_dir.join("shard-000.safetensors").exists() && !models.join(".m1.v2.lock").exists());
    let superseded = reg.model(&m.id).unwrap();
    assert!(
        reg.check_model_files(&superseded).unwrap().is_empty(),
        "deleted weights of a superseded version are expected"
    );
    // A lock whose holder lives stays.
    std::fs::write(models.join(".m1.v2.lock"), "1").unwrap();
    assert!(reg.finish_interrupted().unwrap().is_empty());
    std::fs::remove_file(models.join(".m1.v2.lock")).unwrap();

    // Positions: nothing beyond the log; then a cursor and a request beyond it (a rolled-back log).
    let len = ledger.store().len().unwrap();
    assert!(reg.positions_beyond().unwrap().1.is_empty());
    reg.require_positions_within_log().unwrap();
    b.set_cursor(len as i64 + 2);
    let (l, beyond) = reg.positions_beyond().unwrap();
    assert_eq!(l, len);
    assert_eq!(beyond.len(), 1, "{beyond:?}");
    assert!(beyond[0].what.contains("unlearning cursor") && beyond[0].position == len + 2);
    let e = reg.require_positions_within_log().unwrap_err();
    assert!(matches!(e, LineageError::CursorAhead { ledger, .. } if ledger == len), "{e}");
    b.set_cursor(len as i64);
    let Backend::Sqlite(d) = &b else { unreachable!() };
    let c = rusqlite::Connection::open(d.path().join("ledger.db")).unwrap();
    c.execute("UPDATE registry_unlearning SET event_seq = ?1", [len as i64 + 9]).unwrap();
    let e = reg.require_positions_within_log().unwrap_err();
    assert!(matches!(&e, LineageError::BeyondLog { position, ledger, .. } if *position == len + 9 && *ledger == len));
    assert!(e.to_string().contains("unlearning request"), "{e}");
    let e = run_once(&reg, &ledger, &WorkerOptions { now: Some(T0 + 600), ..WorkerOptions::default() }).unwrap_err();
    assert!(matches!(e, LineageError::BeyondLog { .. }), "{e}");
}

/// Every registration is signed with the ledger's key: a registry row altered behind the registry's back (hashes,
/// ids, counts, the signature itself) or made without the key is refused by serving, the file check and training's
/// dataset check; and registering without the key is refused.
#[test]
fn registry_rows_are_signed_and_altered_rows_are_refused() {
    use consentry_lineage::Servable;
    let Registered { b, ledger: _ledger, _tmp, data, models, reg, ds_dir, m_dir, m } = registered_m1();
    let v2_dir = model_dir_after(&models, "m1.v2", &ds_dir, &range(6, 30), 1, Some((&m.id, &range(5, 5))));
    let v2 = reg.register_model_dir(&v2_dir).unwrap();
    assert!(matches!(reg.servable(&v2_dir, false).unwrap(), Servable::Registered(r) if r.id == v2.id));
    let ds = reg.registered_dataset(&ds_dir).unwrap();
    assert!(ds.signature.as_ref().is_some_and(|s| s.len() == 128));
    reg.verify_model_signature(&v2.id).unwrap();

    // Without the key nothing is registered; with only another key's public half nothing is vouched for.
    let Backend::Sqlite(d) = &b else { unreachable!() };
    let db = d.path().join("ledger.db");
    let keyless = Registry::open_sqlite(&db).unwrap().with_base(&data);
    let other_ds = dataset_dir(&data, "other", &range(1, 10), 40);
    let e = keyless.register_dataset_dir(&other_ds).unwrap_err();
    assert!(matches!(e, LineageError::NoSigningKey { .. }) && e.to_string().contains("ledger.key"), "{e}");
    let stranger =
        Registry::open_sqlite(&db).unwrap().with_base(&data).with_public_key(LogKey::from_seed([9; 32]).public());
    let e = stranger.servable(&v2_dir, false).unwrap_err();
    assert!(e.to_string().contains("does not verify") && e.to_string().contains("signing key"), "{e}");
    assert!(matches!(stranger.registered_dataset(&ds_dir), Err(LineageError::Signature { what: "dataset", .. })));

    let c = rusqlite::Connection::open(&db).unwrap();
    let sql = |q: &str| {
        c.execute(q, []).unwrap();
    };
    // A shard hash changed to match planted files.
    let shard0: String = c
        .query_row("SELECT file_blake3 FROM registry_shards WHERE model_id = ?1 AND idx = 0", [&v2.id], |r| r.get(0))
        .unwrap();
    sql(&format!(
        "UPDATE registry_shards SET file_blake3 = '{}' WHERE model_id = '{}' AND idx = 0",
        "ab".repeat(32),
        v2.id
    ));
    let e = reg.servable(&v2_dir, false).unwrap_err();
    assert!(matches!(e, LineageError::NotServed { .. }) && e.to_string().contains("signing key"), "{e}");
    assert!(e.to_string().contains(&v2.id), "{e}");
    assert!(matches!(reg.check_model_files(&v2), Err(LineageError::Signature { what: "model", .. })));
    sql(&format!("UPDATE registry_shards SET file_blake3 = '{shard0}' WHERE model_id = '{}' AND idx = 0", v2.id));
    reg.servable(&v2_dir, false).unwrap();
    // A stored member bitmap swapped (its hash is what the signature covers).
    sql(&format!("UPDATE registry_shards SET members_bitmap = X'00' WHERE model_id = '{}' AND idx = 1", v2.id));
    assert!(reg.servable(&v2_dir, false).is_err());
    assert!(reg.check_model_files(&v2).is_err());
    // The signature removed.
    sql(&format!("UPDATE registry_models SET signature = NULL WHERE id = '{}'", v2.id));
    let e = reg.verify_model_signature(&v2.id).unwrap_err();
    assert!(e.to_string().contains("no signature"), "{e}");

    // The superseded version revived (status is not signed, but its successor's `supersedes` is).
    sql(&format!("UPDATE registry_models SET status = 'live', status_changed = NULL WHERE id = '{}'", m.id));
    let e = reg.servable(&m_dir, false).unwrap_err();
    assert!(e.to_string().contains("status was altered"), "{e}");

    // A dataset row altered (a count, or its commitment and bitmap): training's dataset check refuses it.
    sql(&format!("UPDATE registry_datasets SET members = members + 1 WHERE id = '{}'", ds.id));
    let e = reg.registered_dataset(&ds_dir).unwrap_err();
    assert!(matches!(e, LineageError::Signature { what: "dataset", .. }) && e.to_string().contains(&ds.id), "{e}");
    sql(&format!("UPDATE registry_datasets SET members = members - 1, members_bitmap = X'00' WHERE id = '{}'", ds.id));
    let e = reg.registered_dataset(&ds_dir).unwrap_err();
    assert!(e.to_string().contains("member bitmap"), "{e}");
}
