//! The library on a small hand-built data directory: a real SQLite ledger with two signed heads, one
//! dataset and one model written in the gate's and training's formats. Each test plants one violation.

use chrono::NaiveDate;
use consentry_audit::{
    AuditOptions, DirectoryModels, ExportInput, Report, ViolationKind, audit_bundle, audit_online, export,
};
use consentry_gate::manifest::*;
use consentry_learn::model::{DatasetRef, ModelMeta, ShardMeta, UnlearningRef};
use consentry_ledger::sqlite::SqliteStore;
use consentry_ledger::{Ledger, LedgerOptions, LogKey, MemberRecord, NewEvent, SignedTreeHead};
use consentry_policy::{Action, DEFAULT_POLICY, Policy, Source};
use roaring::RoaringTreemap;
use std::path::Path;

const JOBS: &str = "train_ai_system.job_recommendations";
/// Grants happen at T0; the dataset is cut at T0 + 100; audits judge at T0 + 1000.
const T0: i64 = 1_790_000_000;

fn event(member: u64, action: Action, at: i64, key: &str) -> NewEvent {
    NewEvent {
        member_id: member,
        purpose: JOBS.into(),
        action,
        notice_version: 1,
        source: Source::Ui,
        actor: format!("member:{member}"),
        event_time: at,
        idempotency_key: key.into(),
    }
}

fn ledger(dir: &Path, seed: u8, withdraw_first: bool) -> Ledger {
    std::fs::create_dir_all(dir).unwrap();
    let store = SqliteStore::open(&dir.join("ledger.db")).unwrap();
    let policy = Policy::from_toml("default", DEFAULT_POLICY).unwrap();
    let l = Ledger::new(
        Box::new(store),
        policy,
        LogKey::from_seed([seed; 32]),
        LedgerOptions { checkpoint_every: 0, ..LedgerOptions::default() },
    );
    let birth = NaiveDate::from_ymd_opt(1980, 1, 1).unwrap();
    let members: Vec<MemberRecord> =
        (1..=20).map(|m| MemberRecord { member_id: m, jurisdiction: "DE".into(), birth_date: birth }).collect();
    l.store().put_members(&members).unwrap();
    let first: Vec<NewEvent> = (1..=10)
        .map(|m| {
            let a = if withdraw_first && m == 1 { Action::Withdraw } else { Action::Grant };
            event(m, a, T0, &format!("g{m}"))
        })
        .collect();
    l.append_at(first, T0 + 10).unwrap();
    l.checkpoint().unwrap();
    l.append_at((11..=12).map(|m| event(m, Action::Grant, T0, &format!("g{m}"))).collect(), T0 + 20).unwrap();
    l.checkpoint().unwrap();
    l
}

fn bitmap_bytes(b: &RoaringTreemap) -> (Vec<u8>, String) {
    let mut v = Vec::new();
    b.serialize_into(&mut v).unwrap();
    let h = blake3::hash(&v).to_hex().to_string();
    (v, h)
}

/// Writes a dataset of `members` cut at the whole log and a two-shard model of `in_model` (minus `excluded`).
fn write_data(data: &Path, l: &Ledger, members: &[u64], in_model: &[u64], excluded: &[u64]) {
    let position = l.store().len().unwrap();
    let sth = l.latest_checkpoint().unwrap().unwrap();
    let members: RoaringTreemap = members.iter().copied().collect();
    let (mbytes, mhash) = bitmap_bytes(&members);
    let ds = data.join("datasets/jobs");
    std::fs::create_dir_all(&ds).unwrap();
    std::fs::write(ds.join(MEMBERS_FILE), &mbytes).unwrap();
    let shard = ShardFunction::for_purpose(JOBS, 2);
    let manifest = Manifest {
        format: FORMAT,
        purpose: JOBS.into(),
        policy: PolicyRef { version: l.policy().version.clone(), hash: l.policy().hash.clone() },
        ledger: LedgerRef {
            position,
            at: T0 + 100,
            tree_root: hex::encode(l.root(position).unwrap()),
            checkpoint: Some(sth),
        },
        snapshot: SnapshotRef { hash: String::new(), allowed: 0, members: 20 },
        sources: SourcesRef { declaration: "test".into(), declaration_hash: String::new(), files: vec![] },
        partition: None,
        tables: Default::default(),
        rows_in: 0,
        rows_out: 0,
        excluded: Default::default(),
        redactions: Default::default(),
        redaction: RedactionRef { enabled: true, member_names: 0 },
        members: MemberSet { count: members.len(), commitment: mhash.clone(), file: MEMBERS_FILE.into() },
        shard: shard.clone(),
        files: vec![],
        tool: "test".into(),
        created: T0,
    };
    let text = serde_json::to_vec_pretty(&manifest).unwrap();
    std::fs::write(ds.join(MANIFEST_FILE), &text).unwrap();

    let model = data.join("models/m1");
    std::fs::create_dir_all(&model).unwrap();
    let excluded: RoaringTreemap = excluded.iter().copied().collect();
    let mut shards = Vec::new();
    for i in 0..2u32 {
        let b: RoaringTreemap = in_model.iter().copied().filter(|m| shard.shard_of(*m) == Some(i)).collect();
        let (bytes, h) = bitmap_bytes(&b);
        let members_file = format!("shard-{i:03}.members.roaring");
        std::fs::write(model.join(&members_file), &bytes).unwrap();
        let weights = format!("weights of shard {i}");
        let file = format!("shard-{i:03}.safetensors");
        std::fs::write(model.join(&file), &weights).unwrap();
        shards.push(ShardMeta {
            index: i,
            file,
            blake3: blake3::hash(weights.as_bytes()).to_hex().to_string(),
            bytes: weights.len() as u64,
            members: b.len(),
            rows: 0,
            members_file,
            members_commitment: h,
        });
    }
    let unlearning = (!excluded.is_empty()).then(|| {
        let (bytes, h) = bitmap_bytes(&excluded);
        std::fs::write(model.join("excluded.roaring"), &bytes).unwrap();
        UnlearningRef {
            excluded: excluded.len(),
            file: "excluded.roaring".into(),
            commitment: h,
            previous: String::new(),
            retrained_shards: vec![],
        }
    });
    let meta = ModelMeta {
        format: 1,
        kind: "job-recs".into(),
        purpose: JOBS.into(),
        dataset: DatasetRef {
            path: ds.display().to_string(),
            manifest_blake3: blake3::hash(&text).to_hex().to_string(),
            members_commitment: mhash,
            members: members.len(),
            ledger_position: position,
        },
        shard_function: shard,
        seed: 1,
        hyper: serde_json::Value::Null,
        metrics: serde_json::Value::Null,
        dp: None,
        shards,
        shard_inputs: Vec::new(),
        unlearning,
        train_seconds: 0.0,
        tool: "test".into(),
        created: T0,
    };
    std::fs::write(model.join("model.json"), serde_json::to_vec_pretty(&meta).unwrap()).unwrap();
}

/// Exports to a fresh bundle beside `data` and audits it offline.
fn offline(data: &Path, l: &Ledger, opts: &AuditOptions) -> Report {
    let out = data.with_file_name(format!("bundle-{}", COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
    exported(data, l, &out);
    audit_bundle(&out, opts).unwrap()
}

static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Runs `f` on the export input of `data` (its models directory, the default policy) at `now`.
fn with_input<T>(data: &Path, l: &Ledger, now: i64, f: impl FnOnce(&ExportInput<'_>) -> T) -> T {
    let models = DirectoryModels::new(&data.join("models"));
    f(&ExportInput {
        datasets_dir: &data.join("datasets"),
        store: l.store(),
        public_key: l.public_key(),
        policy_text: DEFAULT_POLICY,
        earlier_policies: &[],
        models: &models,
        now,
        cosignatures: Vec::new(),
    })
}

fn online(data: &Path, l: &Ledger, opts: &AuditOptions) -> Report {
    with_input(data, l, T0 + 1000, |input| audit_online(input, opts).unwrap())
}

fn exported(data: &Path, l: &Ledger, out: &Path) {
    with_input(data, l, T0 + 1000, |input| export(input, out).unwrap());
}

fn kinds(r: &Report) -> Vec<ViolationKind> {
    r.violations().map(|f| f.kind).collect()
}

const ALL: [u64; 12] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

#[test]
fn clean_directory_passes_with_every_pair_of_heads_proven() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let l = ledger(&data, 1, false);
    write_data(&data, &l, &ALL, &ALL, &[]);
    let opts = AuditOptions::at(T0 + 1000);
    let r = offline(&data, &l, &opts);
    assert!(r.ok, "{}", r.render());
    assert_eq!(r.ledger.checkpoints, 2);
    assert_eq!(r.ledger.consistency_proofs, 1);
    assert_eq!(r.datasets[0].allowed_recomputed, 12);
    assert_eq!(r.models[0].members, 12);

    assert_eq!(r.mode, "bundle");

    // Online adds the files: this hand-made dataset has no Parquet files holding its members (the only
    // complaint), and the shard weight files match model.json until one byte changes.
    let r = online(&data, &l, &opts);
    assert_eq!(r.mode, "online");
    assert_eq!(kinds(&r), vec![ViolationKind::DatasetFiles], "{}", r.render());
    std::fs::write(data.join("models/m1/shard-001.safetensors"), "weights of shard 9").unwrap();
    let r = online(&data, &l, &opts);
    assert_eq!(kinds(&r), vec![ViolationKind::DatasetFiles, ViolationKind::ShardFileAltered], "{}", r.render());

    let bundle = dir.path().join("bundle");
    exported(&data, &l, &bundle);
    // Never overwrites a bundle.
    let err = with_input(&data, &l, T0, |input| export(input, &bundle).unwrap_err());
    assert!(err.is_bad_input());
}

#[test]
fn member_without_consent_in_the_dataset_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let l = ledger(&data, 1, false);
    // Member 15 is in the directory but never granted.
    let mut members = ALL.to_vec();
    members.push(15);
    write_data(&data, &l, &members, &members, &[]);
    let r = offline(&data, &l, &AuditOptions::at(T0 + 1000));
    let f: Vec<_> = r.violations().filter(|f| f.kind == ViolationKind::MemberNotAllowed).collect();
    assert_eq!(f.len(), 1, "{}", r.render());
    assert_eq!(f[0].member, Some(15));
    assert!(f[0].found.contains("no_grant"), "{:?}", f[0]);
}

#[test]
fn shard_members_outside_the_dataset_or_excluded_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let l = ledger(&data, 1, false);
    let mut in_model = ALL.to_vec();
    in_model.push(15);
    write_data(&data, &l, &ALL, &in_model, &[3]);
    let r = offline(&data, &l, &AuditOptions::at(T0 + 1000));
    let members: Vec<Option<u64>> =
        r.violations().filter(|f| f.kind == ViolationKind::ShardMembership).map(|f| f.member).collect();
    assert!(members.contains(&Some(15)) && members.contains(&Some(3)), "{}", r.render());
    assert_eq!(members.len(), 2, "{}", r.render());
}

#[test]
fn rewritten_and_resigned_history_is_caught_by_a_held_head() {
    let dir = tempfile::tempdir().unwrap();
    let honest = ledger(&dir.path().join("honest"), 1, false);
    let held: Vec<SignedTreeHead> = honest.store().checkpoints().unwrap();
    // Same key, different history (member 1 withdrew instead of granting), every head re-signed:
    // internally consistent, so only the heads the auditor held before can tell.
    let data = dir.path().join("data");
    let forged = ledger(&data, 1, true);
    write_data(&data, &forged, &ALL[1..], &ALL[1..], &[]);
    let bundle = dir.path().join("bundle");
    exported(&data, &forged, &bundle);
    let r = audit_bundle(&bundle, &AuditOptions::at(T0 + 1000)).unwrap();
    assert!(r.ok, "{}", r.render());
    let opts = AuditOptions { known_heads: held, ..AuditOptions::at(T0 + 1000) };
    let r = audit_bundle(&bundle, &opts).unwrap();
    assert_eq!(kinds(&r), vec![ViolationKind::InconsistentHeads; 2], "{}", r.render());

    // A bundle signed by another key than the one the auditor pinned.
    let other = LogKey::from_seed([9; 32]).public();
    let opts = AuditOptions { public_key: Some(other), ..AuditOptions::at(T0 + 1000) };
    let r = audit_bundle(&bundle, &opts).unwrap();
    assert!(kinds(&r).contains(&ViolationKind::PublicKeyMismatch), "{}", r.render());
    assert!(kinds(&r).contains(&ViolationKind::LedgerTampered), "bad signatures: {}", r.render());
}

#[test]
fn withdrawal_deadline_runs_from_the_withdrawal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let l = ledger(&data, 1, false);
    write_data(&data, &l, &ALL, &ALL, &[]);
    // Member 4 withdraws at T0 + 500, after the dataset was cut (seq 33: the 20 members' fact entries come first).
    l.append_at(vec![event(4, Action::Withdraw, T0 + 500, "w4")], T0 + 500).unwrap();
    let at = |now: i64, deadline: i64| AuditOptions { deadline_seconds: Some(deadline), ..AuditOptions::at(now) };
    let r = offline(&data, &l, &at(T0 + 1000, 3600));
    assert!(r.ok, "{}", r.render());
    assert_eq!(r.models[0].pending_withdrawals, 1);
    let r = offline(&data, &l, &at(T0 + 500 + 3600, 3600));
    let f: Vec<_> = r.violations().collect();
    assert_eq!(f.len(), 1, "{}", r.render());
    assert_eq!((f[0].kind, f[0].member, f[0].seq), (ViolationKind::WithdrawalDeadlineMissed, Some(4), Some(33)));

    // Member 6 withdrew at T0 + 200 but the ledger only learned of it at T0 + 5000: the member's
    // deadline has passed anyway. Member 5's withdrawal is dated before their grant, so the grant
    // decides; member 7 granted again after withdrawing.
    l.append_at(
        vec![
            event(6, Action::Withdraw, T0 + 200, "w6"),
            event(5, Action::Withdraw, T0 - 50, "w5"),
            event(7, Action::Withdraw, T0 + 200, "w7"),
            event(7, Action::Grant, T0 + 300, "g7-again"),
        ],
        T0 + 5000,
    )
    .unwrap();
    let r = offline(&data, &l, &at(T0 + 5000, 3600));
    let members: Vec<Option<u64>> = r.violations().map(|f| f.member).collect();
    assert_eq!(members, vec![Some(4), Some(6)], "{}", r.render());
}

/// A model source as the registry would give it: the entries with what the registry recorded, the model
/// directories it does not know and the positions it cites.
struct RegistrySource {
    entries: Vec<consentry_audit::ModelEntry>,
    unregistered: Vec<String>,
    cited: Vec<consentry_lineage::CitedPosition>,
}

impl consentry_audit::ModelSource for RegistrySource {
    fn models(&self) -> Result<Vec<consentry_audit::ModelEntry>, consentry_audit::AuditError> {
        Ok(self.entries.clone())
    }
    fn unregistered(&self) -> Result<Vec<String>, consentry_audit::AuditError> {
        Ok(self.unregistered.clone())
    }
    fn cited_positions(&self) -> Result<Vec<consentry_lineage::CitedPosition>, consentry_audit::AuditError> {
        Ok(self.cited.clone())
    }
}

/// What the registry records for the model in `dir` as it is now, signed by the ledger's key (seed 1, as `ledger`
/// makes it).
fn registered(dir: &Path) -> consentry_lineage::RegisteredFiles {
    let bytes = std::fs::read(dir.join("model.json")).unwrap();
    let meta: ModelMeta = serde_json::from_slice(&bytes).unwrap();
    let mut files = consentry_lineage::RegisteredFiles {
        id: blake3::hash(&bytes).to_hex().to_string(),
        kind: meta.kind.clone(),
        purpose: meta.purpose.clone(),
        dataset: meta.dataset.manifest_blake3.clone(),
        version: 1,
        supersedes: None,
        signature: None,
        live_since: None,
        shards: meta
            .shards
            .iter()
            .map(|s| consentry_lineage::RegisteredShard {
                index: s.index,
                file_blake3: s.blake3.clone(),
                members_blake3: s.members_commitment.clone(),
            })
            .collect(),
    };
    files.signature = Some(consentry_lineage::signing::sign_model(&LogKey::from_seed([1; 32]), &files));
    files
}

fn audit_with(data: &Path, l: &Ledger, source: &RegistrySource, online_too: bool) -> Vec<Report> {
    let input = ExportInput {
        datasets_dir: &data.join("datasets"),
        store: l.store(),
        public_key: l.public_key(),
        policy_text: DEFAULT_POLICY,
        earlier_policies: &[],
        models: source,
        now: T0 + 1000,
        cosignatures: Vec::new(),
    };
    let opts = AuditOptions::at(T0 + 1000);
    let out = data.with_file_name(format!("bundle-{}", COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
    export(&input, &out).unwrap();
    let mut reports = vec![audit_bundle(&out, &opts).unwrap()];
    if online_too {
        reports.push(audit_online(&input, &opts).unwrap());
    }
    reports
}

#[test]
fn model_files_unregistered_models_and_positions_are_checked_against_the_registry() {
    use consentry_audit::{ModelEntry, ModelStatus};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let l = ledger(&data, 1, false);
    write_data(&data, &l, &ALL, &ALL, &[]);
    let m1 = data.join("models/m1");
    let entry = |status| ModelEntry { id: "m1".into(), dir: m1.clone(), status, registered: Some(registered(&m1)) };
    let mut source = RegistrySource { entries: vec![entry(ModelStatus::Live)], unregistered: vec![], cited: vec![] };
    let r = &audit_with(&data, &l, &source, false)[0];
    assert!(r.ok, "{}", r.render());

    // The registry's record rewritten to match other files (a shard hash changed) without the signing key: the
    // signature no longer covers it, online and offline.
    let honest = source.entries[0].registered.clone();
    if let Some(r) = source.entries[0].registered.as_mut() {
        r.shards[1].file_blake3 = "ab".repeat(32);
    }
    for r in audit_with(&data, &l, &source, true) {
        let f: Vec<_> = r.violations().filter(|f| f.kind == ViolationKind::RegistrySignature).collect();
        assert_eq!(f.len(), 1, "{}", r.render());
        assert!(f[0].message.contains("signing key") && f[0].found.contains("does not verify"), "{:?}", f[0]);
    }
    // Unsigned, or signed by another key: the same.
    for sig in
        [None, Some(consentry_lineage::signing::sign_model(&LogKey::from_seed([9; 32]), honest.as_ref().unwrap()))]
    {
        source.entries[0].registered =
            honest.clone().map(|r| consentry_lineage::RegisteredFiles { signature: sig.clone(), ..r });
        let r = &audit_with(&data, &l, &source, false)[0];
        assert!(kinds(r).contains(&ViolationKind::RegistrySignature), "{}", r.render());
    }
    source.entries[0].registered = honest;
    let r = &audit_with(&data, &l, &source, false)[0];
    assert!(r.ok, "{}", r.render());

    // model.json rewritten with "fixed" shard hashes (a shard file swapped in): not the registered file.
    let meta_path = m1.join("model.json");
    let original = std::fs::read(&meta_path).unwrap();
    let mut meta: ModelMeta = serde_json::from_slice(&original).unwrap();
    std::fs::write(m1.join("shard-001.safetensors"), "older weights").unwrap();
    meta.shards[1].blake3 = blake3::hash(b"older weights").to_hex().to_string();
    meta.shards[1].bytes = 13;
    std::fs::write(&meta_path, serde_json::to_vec_pretty(&meta).unwrap()).unwrap();
    for r in audit_with(&data, &l, &source, true) {
        let f: Vec<_> = r.violations().filter(|f| f.kind == ViolationKind::RegistryMismatch).collect();
        assert!(!f.is_empty(), "{}", r.render());
        assert_eq!(f[0].file.as_deref(), Some("model.json"), "{}", r.render());
        assert!(f[0].expected.contains(&source.entries[0].registered.as_ref().unwrap().id), "{:?}", f[0]);
    }

    // model.json as registered, the shard file still swapped: online names the file and both hashes.
    std::fs::write(&meta_path, &original).unwrap();
    let r = &audit_with(&data, &l, &source, true)[1];
    let f: Vec<_> = r.violations().filter(|f| f.kind == ViolationKind::ShardFileAltered).collect();
    assert_eq!(f.len(), 1, "{}", r.render());
    std::fs::write(m1.join("shard-001.safetensors"), "weights of shard 1").unwrap();

    // A superseded version still holding its weights; a model directory the registry does not know; a cursor
    // beyond the log's end.
    source.entries = vec![entry(ModelStatus::Superseded)];
    source.unregistered = vec!["models/stray".into()];
    let len = l.store().len().unwrap();
    source.cited = vec![
        consentry_lineage::CitedPosition { what: "unlearning cursor `unlearning`".into(), position: len + 5 },
        consentry_lineage::CitedPosition { what: "registered dataset abc".into(), position: len },
    ];
    let reports = audit_with(&data, &l, &source, true);
    for r in &reports {
        let k = kinds(r);
        assert!(
            k.contains(&ViolationKind::UnregisteredModel) && k.contains(&ViolationKind::PositionBeyondLog),
            "{k:?}"
        );
        let beyond: Vec<_> = r.violations().filter(|f| f.kind == ViolationKind::PositionBeyondLog).collect();
        assert_eq!(beyond.len(), 1, "{}", r.render());
        assert!(beyond[0].message.contains("unlearning cursor"), "{:?}", beyond[0]);
    }
    assert!(kinds(&reports[1]).contains(&ViolationKind::SupersededWeights), "{}", reports[1].render());
    std::fs::remove_file(m1.join("shard-000.safetensors")).unwrap();
    std::fs::remove_file(m1.join("shard-001.safetensors")).unwrap();
    source.unregistered.clear();
    source.cited.clear();
    // Deleted weights of a superseded version are what unlearning leaves (the hand-made dataset's missing Parquet
    // files are the only complaint left).
    let reports = audit_with(&data, &l, &source, true);
    assert!(reports[0].ok, "{}", reports[0].render());
    assert_eq!(kinds(&reports[1]), vec![ViolationKind::DatasetFiles], "{}", reports[1].render());
}

#[test]
fn a_link_inside_a_bundle_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let l = ledger(&data, 1, false);
    write_data(&data, &l, &ALL, &ALL, &[]);
    let bundle = dir.path().join("bundle");
    exported(&data, &l, &bundle);
    std::os::unix::fs::symlink(bundle.join("b"), bundle.join("models/a")).unwrap();
    std::os::unix::fs::symlink(bundle.join("models/a"), bundle.join("b")).unwrap();
    let e = audit_bundle(&bundle, &AuditOptions::at(T0 + 1000)).unwrap_err();
    assert!(e.is_bad_input() && e.to_string().contains("symbolic link"), "{e}");
}

/// Rewrites the dataset's manifest with `edit` and points the model at the new manifest.
fn edit_manifest(data: &Path, edit: impl FnOnce(&mut Manifest)) {
    let ds = data.join("datasets/jobs");
    let mut m = Manifest::read(&ds).unwrap();
    edit(&mut m);
    let text = serde_json::to_vec_pretty(&m).unwrap();
    std::fs::write(ds.join(MANIFEST_FILE), &text).unwrap();
    let mpath = data.join("models/m1/model.json");
    let mut meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
    meta["dataset"]["manifest_blake3"] = blake3::hash(&text).to_hex().to_string().into();
    std::fs::write(&mpath, serde_json::to_vec_pretty(&meta).unwrap()).unwrap();
}

#[test]
fn consent_evaluated_in_the_future_is_reported_on_the_dataset_and_its_models() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let l = ledger(&data, 1, false);
    write_data(&data, &l, &ALL, &ALL, &[]);
    // 2100-01-01: everyone alive today is an adult by then.
    edit_manifest(&data, |m| m.ledger.at = 4_102_444_800);
    let r = offline(&data, &l, &AuditOptions::at(T0 + 1000));
    assert!(!r.ok);
    let f: Vec<_> = r.violations().filter(|f| f.kind == ViolationKind::EvaluationTime).collect();
    assert!(f.iter().any(|f| f.dataset.as_deref() == Some("jobs") && f.model.is_none()), "{}", r.render());
    assert!(f.iter().any(|f| f.model.is_some() && f.found.contains("2100-01-01")), "{}", r.render());
    // A creation time moved along is after the audit's present.
    edit_manifest(&data, |m| m.created = 4_102_444_800);
    let r = offline(&data, &l, &AuditOptions::at(T0 + 1000));
    assert!(r.violations().any(|f| f.kind == ViolationKind::EvaluationTime && f.message.contains("creation time")));

    // Evaluated well after the log moved on past the dataset's position (entries 1–20 are the members' facts; events 31 and 32 came at T0 + 20).
    write_data(&data, &l, &ALL[..10], &ALL[..10], &[]);
    edit_manifest(&data, |m| {
        m.ledger.position = 30;
        m.ledger.tree_root = hex::encode(l.root(30).unwrap());
        m.ledger.at = T0 + 900;
        m.created = T0 + 900;
    });
    let r = offline(&data, &l, &AuditOptions::at(T0 + 1000));
    let f: Vec<_> = r.violations().filter(|f| f.kind == ViolationKind::EvaluationTime).collect();
    assert!(f.iter().any(|f| f.expected.contains("before event 31")), "{}", r.render());
    // Within the clock-skew tolerance nothing is reported.
    edit_manifest(&data, |m| {
        m.ledger.at = T0 + 20 + 60;
        m.created = T0 + 20 + 60;
    });
    let r = offline(&data, &l, &AuditOptions::at(T0 + 1000));
    assert!(r.violations().all(|f| f.kind != ViolationKind::EvaluationTime), "{}", r.render());
}
