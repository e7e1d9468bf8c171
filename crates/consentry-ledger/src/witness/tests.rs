use super::*;
use crate::event::leaf_hash;
use crate::merkle::Tree;
use crate::{LogKey, TreeHead};
use proptest::prelude::*;

const ORIGIN: &str = "example.com/log";

fn log_key() -> LogKey {
    LogKey::from_seed([3; 32])
}

/// A tree of the given leaves (leaf `i` hashed from its bytes).
fn tree(leaves: &[u64]) -> Tree {
    let mut t = Tree::new();
    for l in leaves {
        t.push(leaf_hash(&l.to_be_bytes()));
    }
    t
}

/// The log's signed note of the first `size` leaves of `t`.
fn note(key: &LogKey, t: &Tree, size: u64) -> String {
    let root = t.root(size).unwrap();
    let sth = key.sign(TreeHead { tree_size: size, root_hash: root, chain_hash: [0; 32], timestamp: 1 });
    sign_checkpoint(key, &checkpoint_of(ORIGIN, &sth)).unwrap().encode()
}

fn witness(dir: &Path) -> Witness {
    let mut w = Witness::init_with(dir, WitnessKey::from_seed("witness.example/w1", [5; 32]).unwrap()).unwrap();
    w.add_log(ORIGIN, &log_key().public()).unwrap();
    w
}

#[test]
fn honest_growth_is_cosigned_and_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = witness(dir.path());
    let k = log_key();
    let t = tree(&(0..20).collect::<Vec<_>>());
    let a = w.accept(&note(&k, &t, 5), &[], &[], 100).unwrap();
    assert_eq!((a.previous_size, a.tree_size), (0, 5));
    let vkey = w.key().verifier_key().unwrap();
    let cp = Checkpoint::parse(Note::parse(&a.note).unwrap().text()).unwrap();
    assert!(a.cosignature.verify(&vkey, &cp.body()));
    let a = w.accept(&note(&k, &t, 20), &t.consistency_proof(5, 20).unwrap(), &[], 101).unwrap();
    assert_eq!((a.previous_size, a.tree_size), (5, 20));
    // Same checkpoint again: cosigned again (idempotent).
    w.accept(&note(&k, &t, 20), &[], &[], 102).unwrap();
    // The state survives a reopen.
    let w2 = Witness::open(dir.path()).unwrap();
    assert_eq!(w2.head(ORIGIN), Some((20, t.root(20).unwrap())));
}

#[test]
fn each_refusal_is_named_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = witness(dir.path());
    let k = log_key();
    let t = tree(&(0..10).collect::<Vec<_>>());
    w.accept(&note(&k, &t, 6), &[], &[], 100).unwrap();
    let before = w.state().clone();
    // Rollback.
    let e = w.accept(&note(&k, &t, 4), &[], &[], 101).unwrap_err();
    assert_eq!(e.check(), "rollback", "{e}");
    // Fork: same size, another root.
    let forked = tree(&[0, 1, 2, 3, 4, 99, 6, 7]);
    let e = w.accept(&note(&k, &forked, 6), &[], &[], 101).unwrap_err();
    assert_eq!(e.check(), "fork", "{e}");
    let msg = e.to_string();
    assert!(msg.contains(&hex::encode(t.root(6).unwrap())) && msg.contains(&hex::encode(forked.root(6).unwrap())));
    // A longer fork: no proof from the stored head leads to it.
    let e = w.accept(&note(&k, &forked, 8), &forked.consistency_proof(6, 8).unwrap(), &[], 101).unwrap_err();
    assert_eq!(e.check(), "bad_proof", "{e}");
    assert!(e.to_string().contains("forked"), "{e}");
    // Honest growth with a wrong proof.
    let e = w.accept(&note(&k, &t, 10), &t.consistency_proof(5, 10).unwrap(), &[], 101).unwrap_err();
    assert_eq!(e.check(), "bad_proof");
    // Signed by another key.
    let e = w
        .accept(&note(&LogKey::from_seed([4; 32]), &t, 10), &t.consistency_proof(6, 10).unwrap(), &[], 101)
        .unwrap_err();
    assert_eq!(e.check(), "bad_signature", "{e}");
    // A tampered note: the body changed after signing.
    let n = note(&k, &t, 10).replacen("\n10\n", "\n11\n", 1);
    let e = w.accept(&n, &t.consistency_proof(6, 10).unwrap(), &[], 101).unwrap_err();
    assert_eq!(e.check(), "bad_signature", "{e}");
    // Unknown log.
    let n = note(&k, &t, 10).replace(ORIGIN, "other.example/log");
    assert_eq!(w.accept(&n, &[], &[], 101).unwrap_err().check(), "unknown_log");
    // Garbage.
    assert_eq!(w.accept("not a note", &[], &[], 101).unwrap_err().check(), "malformed");
    assert_eq!(w.state(), &before);
    assert_eq!(Witness::open(dir.path()).unwrap().state(), &before);
}

#[test]
fn witness_key_file_is_private_and_checked() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let w = Witness::init(dir.path(), "w.example/1").unwrap();
    let key_path = dir.path().join(KEY_FILE);
    assert_eq!(std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777, 0o600);
    let vkey = VerifierKey::parse(&std::fs::read_to_string(dir.path().join(VKEY_FILE)).unwrap()).unwrap();
    assert_eq!(vkey, w.key().verifier_key().unwrap());
    assert!(Witness::init(dir.path(), "w.example/1").is_err(), "never overwrites a witness");
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let Err(e) = Witness::open(dir.path()) else { panic!("a group-readable key must be refused") };
    assert!(e.to_string().contains("chmod 600"), "{e}");
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    Witness::open(dir.path()).unwrap();
    assert!(WitnessKey::generate("bad name").is_err());
}

#[test]
fn policy_counts_only_valid_cosignatures_by_trusted_witnesses() {
    let k = log_key();
    let sth = k.sign(TreeHead { tree_size: 3, root_hash: [1; 32], chain_hash: [0; 32], timestamp: 1 });
    let body = checkpoint_of(ORIGIN, &sth).body();
    let w1 = WitnessKey::from_seed("w1", [1; 32]).unwrap();
    let w2 = WitnessKey::from_seed("w2", [2; 32]).unwrap();
    let stranger = WitnessKey::from_seed("w3", [3; 32]).unwrap();
    let line = |w: &WitnessKey, b: &str| w.cosign(b, 7).line().trim_end().to_string();
    let policy = WitnessPolicy { keys: vec![w1.verifier_key().unwrap(), w2.verifier_key().unwrap()], required: 1 };
    let wit = |lines: Vec<String>| Witnessed { origin: ORIGIN.into(), cosignatures: lines };
    let t = policy.check(&sth, Some(&wit(vec![line(&w1, &body)]))).unwrap();
    assert_eq!((t.cosigned, t.missing), (vec!["w1".to_string()], vec!["w2".to_string()]));
    let e = policy.check(&sth, None).unwrap_err();
    assert!(e.to_string().contains("not cosigned: w1, w2"), "{e}");
    let e = policy.check(&sth, Some(&wit(vec![line(&stranger, &body)]))).unwrap_err();
    assert_eq!(e.tally.unknown, vec!["w3".to_string()]);
    // A cosignature of another checkpoint (another size) does not count.
    let other = body.replace("\n3\n", "\n4\n");
    let e = policy.check(&sth, Some(&wit(vec![line(&w1, &other)]))).unwrap_err();
    assert_eq!(e.tally.invalid, vec!["w1".to_string()]);
    // Two required.
    let p2 = WitnessPolicy { required: 2, ..policy.clone() };
    assert!(p2.check(&sth, Some(&wit(vec![line(&w1, &body)]))).is_err());
    p2.check(&sth, Some(&wit(vec![line(&w1, &body), line(&w2, &body)]))).unwrap();
    // A log's note key is not a witness key.
    let logv = log_verifier_key(ORIGIN, &k.public()).unwrap();
    assert!(WitnessPolicy::parse_keys(&logv.encode()).is_err());
    assert_eq!(WitnessPolicy::parse_keys(&w1.verifier_key().unwrap().encode()).unwrap().len(), 1);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Two logs sharing a prefix and then differing: a witness that accepted one beyond the fork point never
    /// cosigns the other beyond it, whatever proof is offered; honest growth of the one it follows is always
    /// accepted.
    #[test]
    fn a_witness_never_cosigns_both_sides_of_a_fork(
        prefix in 0u64..12, a_extra in 1u64..12, b_extra in 1u64..12,
        seen in 0u64..24, offered_b in 0u64..24, grow in 0u64..8,
    ) {
        let a: Vec<u64> = (0..prefix + a_extra + grow).collect();
        let mut b: Vec<u64> = (0..prefix).collect();
        b.extend((0..b_extra).map(|i| 1000 + i));
        let (ta, tb) = (tree(&a), tree(&b));
        let k = log_key();
        let dir = tempfile::tempdir().unwrap();
        let mut w = witness(dir.path());
        // The witness follows log A up to `seen` (beyond the fork point).
        let seen = prefix + 1 + seen % a_extra;
        w.accept(&note(&k, &ta, seen), &[], &[], 1).unwrap();
        // Log B beyond the fork point, with every proof B could produce, and with A's proofs.
        let nb = prefix + 1 + offered_b % b_extra;
        let mut proofs = vec![Vec::new()];
        for from in 0..=nb {
            proofs.extend(tb.consistency_proof(from, nb));
        }
        if nb >= seen {
            proofs.extend(ta.consistency_proof(seen, nb.min(ta.len())));
        }
        for p in &proofs {
            prop_assert!(w.accept(&note(&k, &tb, nb), p, &[], 2).is_err());
        }
        // Honest growth of A is accepted.
        let next = seen + grow.min(a.len() as u64 - seen);
        prop_assert!(w.accept(&note(&k, &ta, next), &ta.consistency_proof(seen, next).unwrap(), &[], 3).is_ok());
    }
}

/// A witness follows a key rotation through the hand-over the log offers, keeps it, and then refuses a note by the
/// retired key past its term, a forged hand-over and a second, conflicting rotation (a leaked retired key).
#[test]
fn a_witness_follows_a_rotation_and_refuses_forged_or_conflicting_ones() {
    use crate::keys::KeyHandover;
    let dir = tempfile::tempdir().unwrap();
    let mut w = witness(dir.path());
    let (k1, k2, k3) = (log_key(), LogKey::from_seed([8; 32]), LogKey::from_seed([9; 32]));
    let log_id = k1.public().log_id();
    let t = tree(&(0..20).collect::<Vec<_>>());
    w.accept(&note(&k1, &t, 5), &[], &[], 100).unwrap();
    let handover = KeyHandover::sign(log_id, &k1, &k2, 8, 1);
    // The new key's note without its hand-over: the witness does not know that key.
    let e = w.accept(&note(&k2, &t, 10), &t.consistency_proof(5, 10).unwrap(), &[], 101).unwrap_err();
    assert_eq!(e.check(), "bad_signature", "{e}");
    assert!(e.to_string().contains("no signature by a key this witness trusts"), "{e}");
    // A hand-over the retiring key did not sign (someone holding only a new key) is refused.
    let forged = KeyHandover::sign(log_id, &k3, &k2, 8, 1);
    let forged = KeyHandover { old_key_id: k1.public().key_id(), ..forged };
    let e = w.accept(&note(&k2, &t, 10), &t.consistency_proof(5, 10).unwrap(), &[forged], 101).unwrap_err();
    assert_eq!(e.check(), "bad_handover", "{e}");
    assert_eq!(w.head(ORIGIN).unwrap().0, 5, "a refusal changes nothing");
    // With it, the new key's note is cosigned, and the hand-over is kept across a reopen.
    w.accept(&note(&k2, &t, 10), &t.consistency_proof(5, 10).unwrap(), std::slice::from_ref(&handover), 102).unwrap();
    let mut w = Witness::open(dir.path()).unwrap();
    assert_eq!(w.state().logs[ORIGIN].key_handovers, vec![handover.clone()]);
    w.accept(&note(&k2, &t, 12), &t.consistency_proof(10, 12).unwrap(), &[], 103).unwrap();
    // The retired key signs past its hand-over: refused, naming the retirement.
    let e = w.accept(&note(&k1, &t, 14), &t.consistency_proof(12, 14).unwrap(), &[], 104).unwrap_err();
    assert_eq!(e.check(), "bad_signature", "{e}");
    assert!(e.to_string().contains("retired at tree size 8"), "{e}");
    // A second rotation from the same retired key (a leaked key handing the log to its thief) is refused.
    let rival = KeyHandover::sign(log_id, &k1, &k3, 8, 2);
    let e = w.accept(&note(&k3, &t, 14), &t.consistency_proof(12, 14).unwrap(), &[rival], 104).unwrap_err();
    assert_eq!(e.check(), "bad_handover", "{e}");
    assert!(e.to_string().contains("conflicting rotations"), "{e}");
    assert_eq!(w.head(ORIGIN).unwrap().0, 12);
}
