//! Fills a data directory made by `consentry ledger init` with a log of `--members` members and
//! `--events-per-member` consent events each, four signed heads, one dataset of the members allowed for job
//! recommendations at the end of the log and a two-shard model over it: the input of `bench/scale/audit.sh`,
//! which audits two such logs 10x apart in events (same members) to show the audit's memory does not grow with
//! the log.
//!
//! `cargo run --release -p consentry-audit --example scale_log -- DATA MEMBERS EVENTS_PER_MEMBER`

use chrono::NaiveDate;
use consentry_gate::manifest::*;
use consentry_learn::model::{DatasetRef, ModelMeta, ShardMeta};
use consentry_ledger::snapshot::Snapshot;
use consentry_ledger::sqlite::SqliteStore;
use consentry_ledger::{Ledger, LedgerOptions, LogKey, MemberRecord, NewEvent};
use consentry_policy::{Action, Policy, Source};
use roaring::RoaringTreemap;
use std::path::{Path, PathBuf};

/// The three purposes the events rotate over.
const PURPOSES: [&str; 3] =
    ["train_ai_system.job_recommendations", "train_ai_system.content_suggestions", "train_ai_system.reply_suggestions"];
/// The first event time; round `r` happens at `T0 + r`.
const T0: i64 = 1_790_000_000;
/// Events per append transaction, at most.
const BATCH: usize = 50_000;
/// Signed heads over the log, evenly spaced, the same number at every size.
const HEADS: u64 = 4;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [data, members, per_member] = args.as_slice() else {
        return Err("usage: scale_log DATA MEMBERS EVENTS_PER_MEMBER (DATA made by `consentry ledger init`)".into());
    };
    let data = PathBuf::from(data);
    let members: u64 = members.parse()?;
    let per_member: u64 = per_member.parse()?;
    let policy = Policy::from_toml("policy.toml", &std::fs::read_to_string(data.join("policy.toml"))?)?;
    let key = LogKey::load(&data.join("ledger.key"))?;
    let store = SqliteStore::open(&data.join("ledger.db"))?;
    let l =
        Ledger::new(Box::new(store), policy, key, LedgerOptions { checkpoint_every: 0, ..LedgerOptions::default() });
    let birth = NaiveDate::from_ymd_opt(1980, 1, 1).ok_or("date")?;
    let directory: Vec<MemberRecord> =
        (1..=members).map(|m| MemberRecord { member_id: m, jurisdiction: "DE".into(), birth_date: birth }).collect();
    l.store().put_members(&directory)?;

    // Round r: every member acts on purpose (m + r) % 3; grants, with every fourth round a withdrawal, so the
    // last round (a grant when per_member % 4 != 0) leaves most members allowed for something.
    let total = members * per_member;
    let every = (total / HEADS).max(1);
    // Appends no larger than the gap between heads, so every size gets its `HEADS` heads.
    let size = BATCH.min(every as usize);
    let mut batch = Vec::with_capacity(size);
    let mut done = 0u64;
    let mut next_head = every;
    for r in 0..per_member {
        for m in 1..=members {
            let action = if r % 4 == 3 { Action::Withdraw } else { Action::Grant };
            batch.push(NewEvent {
                member_id: m,
                purpose: PURPOSES[((m + r) % 3) as usize].into(),
                action,
                notice_version: 1,
                source: Source::Ui,
                actor: format!("member:{m}"),
                event_time: T0 + r as i64,
                idempotency_key: format!("s{r}-{m}"),
            });
            if batch.len() == size {
                done += batch.len() as u64;
                l.append_at(std::mem::take(&mut batch), T0 + r as i64)?;
                if done >= next_head {
                    l.checkpoint()?;
                    next_head += every;
                }
            }
        }
    }
    if !batch.is_empty() {
        l.append_at(batch, T0 + per_member as i64)?;
    }
    let head = l.checkpoint()?;
    write_dataset(&data, &l, head)?;
    println!("{} entries, {} signed heads", l.store().len()?, l.store().checkpoints()?.len());
    Ok(())
}

fn bitmap_bytes(b: &RoaringTreemap) -> Result<(Vec<u8>, String)> {
    let mut v = Vec::new();
    b.serialize_into(&mut v)?;
    let h = blake3::hash(&v).to_hex().to_string();
    Ok((v, h))
}

/// A dataset of the members allowed for job recommendations at the end of the log, and a live two-shard model
/// over it, as the gate and training would write them (no rows: the audit never reads them offline).
fn write_dataset(data: &Path, l: &Ledger, sth: consentry_ledger::SignedTreeHead) -> Result<()> {
    let purpose = PURPOSES[0];
    let position = l.store().len()?;
    let at = T0 + 1_000_000;
    let root = l.root(position)?;
    let pid = l.policy().purpose_id(purpose).ok_or("purpose")?;
    let snap = Snapshot::build(l.store(), l.policy(), pid, position, at, root)?;
    let members = snap.allowed().clone();
    let (snap_bytes, snap_hash) = bitmap_bytes(&members)?;
    drop(snap_bytes);
    let (mbytes, mhash) = bitmap_bytes(&members)?;
    let ds = data.join("datasets/job_recommendations");
    std::fs::create_dir_all(&ds)?;
    std::fs::write(ds.join(MEMBERS_FILE), &mbytes)?;
    let shard = ShardFunction::for_purpose(purpose, 2);
    let manifest = Manifest {
        format: FORMAT,
        purpose: purpose.into(),
        policy: PolicyRef { version: l.policy().version.clone(), hash: l.policy().hash.clone() },
        ledger: LedgerRef { position, at, tree_root: hex::encode(root), checkpoint: Some(sth) },
        snapshot: SnapshotRef { hash: snap_hash, allowed: members.len(), members: snap.members().len() as u64 },
        sources: SourcesRef { declaration: "scale".into(), declaration_hash: String::new(), files: vec![] },
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
        tool: "scale_log".into(),
        created: at,
    };
    let text = serde_json::to_vec_pretty(&manifest)?;
    std::fs::write(ds.join(MANIFEST_FILE), &text)?;

    let model = data.join("models/job-recs-scale");
    std::fs::create_dir_all(&model)?;
    let mut shards = Vec::new();
    for i in 0..2u32 {
        let b: RoaringTreemap = members.iter().filter(|m| shard.shard_of(*m) == Some(i)).collect();
        let (bytes, h) = bitmap_bytes(&b)?;
        let members_file = format!("shard-{i:03}.members.roaring");
        std::fs::write(model.join(&members_file), &bytes)?;
        let weights = format!("weights of shard {i}");
        let file = format!("shard-{i:03}.safetensors");
        std::fs::write(model.join(&file), &weights)?;
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
    let meta = ModelMeta {
        format: 1,
        kind: "job-recs".into(),
        purpose: purpose.into(),
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
        unlearning: None,
        train_seconds: 0.0,
        tool: "scale_log".into(),
        created: at,
    };
    std::fs::write(model.join("model.json"), serde_json::to_vec_pretty(&meta)?)?;
    Ok(())
}
