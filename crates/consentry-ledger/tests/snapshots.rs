//! Snapshots agree with the policy's effective-consent function for every
//! member (promise 1), and an incremental refresh equals a full rebuild.

use chrono::NaiveDate;
use consentry_ledger::snapshot::Snapshot;
use consentry_ledger::sqlite::SqliteStore;
use consentry_ledger::{Ledger, LedgerOptions, LogKey, MemberRecord, NewEvent};
use consentry_policy::{Action, ConsentEvent, MemberFacts, Policy, Source};
use proptest::prelude::*;

const JAN: i64 = 1_768_435_200; // 2026-01-15, when the default notices take effect
const DAY: i64 = 86_400;

fn ledger(dir: &std::path::Path) -> Ledger {
    let store = SqliteStore::open(&dir.join("ledger.db")).unwrap();
    Ledger::new(Box::new(store), Policy::default_policy(), LogKey::from_seed([3; 32]), LedgerOptions::default())
}

#[derive(Debug, Clone)]
struct Ev {
    member: u64,
    purpose: usize,
    grant: bool,
    version: u32,
    gpc: bool,
    day: i64,
}

fn ev(members: u64) -> impl Strategy<Value = Ev> {
    (1..=members, 0usize..3, any::<bool>(), 1u32..=1, prop::bool::weighted(0.1), 0i64..300)
        .prop_map(|(member, purpose, grant, version, gpc, day)| Ev { member, purpose, grant, version, gpc, day })
}

fn to_new(policy: &Policy, i: usize, e: &Ev) -> NewEvent {
    let p = &policy.purposes[e.purpose];
    NewEvent {
        member_id: e.member,
        purpose: p.key.clone(),
        action: if e.grant && !e.gpc { Action::Grant } else { Action::Withdraw },
        // The notice in force when the member acted (granting under a later one is refused).
        notice_version: p.notice_at(JAN + e.day * DAY).map_or(e.version, |n| n.version),
        source: if e.gpc { Source::Gpc } else { Source::Ui },
        actor: format!("member:{}", e.member),
        event_time: JAN + e.day * DAY,
        idempotency_key: format!("k{i}"),
    }
}

fn members(n: u64, births: &[i64]) -> Vec<MemberRecord> {
    let codes = ["US-CA", "US", "DE", "GB", "JP", "FR"];
    (1..=n)
        .map(|id| MemberRecord {
            member_id: id,
            jurisdiction: codes[(id as usize) % codes.len()].to_string(),
            // Some members turn 18 during the test window.
            birth_date: NaiveDate::from_ymd_opt(2008, 3, 1).unwrap()
                + chrono::Duration::days(births[(id as usize) % births.len()]),
        })
        .collect()
}

/// Every member's snapshot answer equals `Policy::evaluate` over their events.
fn check_against_policy(l: &Ledger, snap: &Snapshot, recs: &[MemberRecord], events: &[NewEvent]) {
    let policy = l.policy();
    for m in recs {
        let facts =
            MemberFacts { jurisdiction: policy.resolve_jurisdiction(&m.jurisdiction), birth_date: m.birth_date };
        let evs: Vec<ConsentEvent> = events
            .iter()
            .take(snap.position() as usize)
            .filter(|e| e.member_id == m.member_id && e.purpose == snap.purpose_key())
            .map(|e| ConsentEvent {
                at: e.event_time,
                action: e.action,
                notice_version: e.notice_version,
                source: e.source,
            })
            .collect();
        let d = policy.evaluate(snap.purpose(), &facts, &evs, snap.at());
        assert_eq!(snap.is_allowed(m.member_id), d.is_allowed(), "member {} {:?}", m.member_id, d);
        if let consentry_policy::Decision::Denied(r) = d {
            assert_eq!(snap.reason(m.member_id), Some(r));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn refresh_equals_rebuild_and_matches_policy(
        evs in prop::collection::vec(ev(40), 1..160),
        births in prop::collection::vec(-400i64..400, 1..8),
        split in 0.0f64..1.0,
        t1_day in 0i64..300,
        dt_days in 0i64..200,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let l = ledger(dir.path());
        let policy = l.policy().clone();
        let recs = members(40, &births);
        l.store().put_members(&recs).unwrap();
        let news: Vec<NewEvent> = evs.iter().enumerate().map(|(i, e)| to_new(&policy, i, e)).collect();
        let now = JAN + 400 * DAY;
        let cut = ((news.len() as f64) * split) as usize;
        l.append_at(news[..cut].to_vec(), now).unwrap();
        l.append_at(news[cut..].to_vec(), now).unwrap();
        let (t1, t2) = (JAN + t1_day * DAY, JAN + (t1_day + dt_days) * DAY);
        let ids: Vec<_> = policy.purpose_ids().collect();
        // The 40 members' fact entries come first in the log.
        let cut = cut as u64 + 40;
        let mut early = Snapshot::build_many(l.store(), &policy, &ids, cut, t1, l.root(cut).unwrap()).unwrap();
        let len = news.len() as u64 + 40;
        for s in &mut early {
            s.refresh(l.store(), &policy, len, t2, l.root(len).unwrap()).unwrap();
        }
        let full = Snapshot::build_many(l.store(), &policy, &ids, len, t2, l.root(len).unwrap()).unwrap();
        for (a, b) in early.iter().zip(&full) {
            prop_assert_eq!(a.allowed(), b.allowed());
            prop_assert_eq!(a.counts(), b.counts());
            check_against_policy(&l, b, &recs, &news);
        }
    }
}

#[test]
fn refresh_only_moves_forward() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(dir.path());
    let policy = l.policy().clone();
    let pid = policy.purpose_ids().next().unwrap();
    let mut s = Snapshot::build(l.store(), &policy, pid, 0, JAN, l.root(0).unwrap()).unwrap();
    assert!(s.refresh(l.store(), &policy, 0, JAN - 1, l.root(0).unwrap()).is_err());
}

#[test]
fn export_writes_every_member() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(dir.path());
    let policy = l.policy().clone();
    l.store().put_members(&members(10, &[-3000])).unwrap();
    let e = to_new(&policy, 0, &Ev { member: 3, purpose: 0, grant: true, version: 1, gpc: false, day: 1 });
    l.append_at(vec![e], JAN + 10 * DAY).unwrap();
    let pid = policy.purpose_ids().next().unwrap();
    // Ten fact entries, then the event.
    let s = Snapshot::build(l.store(), &policy, pid, 11, JAN + 5 * DAY, l.root(11).unwrap()).unwrap();
    assert_eq!(s.allowed().len(), 1);
    let out = dir.path().join("snap.parquet");
    let file = std::fs::File::create(&out).unwrap();
    assert_eq!(consentry_ledger::snapshot::export_parquet(&s, file).unwrap(), 10);
    // The footer reached the file: a reader sees every row.
    use parquet::file::reader::FileReader;
    let reader = parquet::file::reader::SerializedFileReader::new(std::fs::File::open(&out).unwrap()).unwrap();
    assert_eq!(reader.metadata().file_metadata().num_rows(), 10);
}
