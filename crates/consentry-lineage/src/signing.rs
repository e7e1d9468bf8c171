//! Signatures over registry records: every dataset and model version the registry records carries an Ed25519
//! signature by the ledger's signing key ([`LogKey`], `DATA/ledger.key`), so someone who can write the database
//! but does not hold the key cannot make the registry vouch for other files (a row's id or hashes changed to
//! match planted files) without the signature failing.
//!
//! # Canonical encoding (version 1)
//!
//! A signature covers `LABEL || 0x00 || fields` ([`LogKey::sign_labelled`]), where `LABEL` names the record
//! kind and `fields` is the concatenation below. `str(s)` is the UTF-8 length as 8 bytes big-endian followed by
//! the bytes; `u64(n)`/`i64(n)`/`u32(n)` are big-endian (two's complement for `i64`); `opt(s)` is `0x00` for
//! none and `0x01 || str(s)` for some. Hashes are lower-case hex as the registry stores them.
//!
//! - dataset, label [`DATASET_LABEL`] (`consentry registry dataset v1`):
//!   `str(id) str(purpose) u64(ledger_position) i64(ledger_at) u64(members) str(members_commitment) i64(created)`
//!   — `id` is the BLAKE3 of `manifest.json`, `members_commitment` the BLAKE3 of the member bitmap.
//! - model version, label [`MODEL_LABEL`] (`consentry registry model v1`):
//!   `str(id) str(kind) str(purpose) str(dataset) u64(version) opt(supersedes) u64(shard count)` then per shard,
//!   by index, `u32(index) str(file_blake3) str(members_blake3)` — `id` is the BLAKE3 of `model.json`, `dataset`
//!   the id of the dataset it was trained on, `supersedes` the version it replaced.
//! - a version going live in place of the one it replaced, label [`LIVE_LABEL`] (`consentry registry live v1`):
//!   `str(id) str(supersedes) i64(at)` — `at` is when the registry swapped it in (Unix seconds): the moment the
//!   members it excludes stopped being in a live model of its line. Only versions that replace another carry one
//!   (stored in the version's `cause_json`, read back as [`RegisteredFiles::live_since`]); versions registered
//!   before this record existed have none.
//!
//! The signature is stored as 128 lower-case hex digits. Mutable state (a model's status, directories, unlearning
//! requests) is not signed (the time a version went live is, once, by the record above); a live version that a
//! signed record names as superseded is refused by serving.

use crate::integrity::RegisteredFiles;
use crate::registry::DatasetRecord;
use consentry_ledger::{LabelledVerifier, LogKey};

/// The domain label of a dataset registration's signature.
pub const DATASET_LABEL: &str = "consentry registry dataset v1";
/// The domain label of a model version registration's signature.
pub const MODEL_LABEL: &str = "consentry registry model v1";
/// The domain label of the signature over when a version went live in place of the one it replaced.
pub const LIVE_LABEL: &str = "consentry registry live v1";

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The bytes a dataset registration's signature covers (see the module documentation).
pub fn dataset_bytes(d: &DatasetRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    put_str(&mut out, &d.id);
    put_str(&mut out, &d.purpose);
    out.extend_from_slice(&d.ledger_position.to_be_bytes());
    out.extend_from_slice(&d.ledger_at.to_be_bytes());
    out.extend_from_slice(&d.members.to_be_bytes());
    put_str(&mut out, &d.members_commitment);
    out.extend_from_slice(&d.created.to_be_bytes());
    out
}

/// The bytes a model version registration's signature covers (see the module documentation); shards in index
/// order whatever order `f` lists them in.
pub fn model_bytes(f: &RegisteredFiles) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + 160 * f.shards.len());
    put_str(&mut out, &f.id);
    put_str(&mut out, &f.kind);
    put_str(&mut out, &f.purpose);
    put_str(&mut out, &f.dataset);
    out.extend_from_slice(&f.version.to_be_bytes());
    match &f.supersedes {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_str(&mut out, s);
        }
    }
    let mut shards: Vec<_> = f.shards.iter().collect();
    shards.sort_by_key(|s| s.index);
    out.extend_from_slice(&(shards.len() as u64).to_be_bytes());
    for s in shards {
        out.extend_from_slice(&s.index.to_be_bytes());
        put_str(&mut out, &s.file_blake3);
        put_str(&mut out, &s.members_blake3);
    }
    out
}

/// The bytes a version's going-live record covers (see the module documentation).
pub fn live_bytes(id: &str, supersedes: &str, at: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(160);
    put_str(&mut out, id);
    put_str(&mut out, supersedes);
    out.extend_from_slice(&at.to_be_bytes());
    out
}

/// Signs that version `id` went live in place of `supersedes` at `at` (hex signature).
pub fn sign_live(key: &LogKey, id: &str, supersedes: &str, at: i64) -> String {
    hex::encode(key.sign_labelled(LIVE_LABEL, &live_bytes(id, supersedes, at)))
}

/// When a registered version went live in place of the version it names as replaced, if that record exists and
/// its signature verifies: `Ok(Some(at))`; `Ok(None)` for a version without the record (a first version, or one
/// registered before the record existed); `Err(why)` for a record that does not verify (or one on a version that
/// replaced nothing).
pub fn live_since(key: &dyn LabelledVerifier, f: &RegisteredFiles) -> Result<Option<i64>, String> {
    let Some(live) = &f.live_since else { return Ok(None) };
    let Some(prev) = &f.supersedes else {
        return Err("the record says it went live in place of another version, but it replaced none".into());
    };
    match check(key, LIVE_LABEL, &live_bytes(&f.id, prev, live.at), Some(&live.signature)) {
        None => Ok(Some(live.at)),
        Some(p) => Err(p.replace("registry row", "going-live record")),
    }
}

/// Signs a dataset registration (hex signature).
pub fn sign_dataset(key: &LogKey, d: &DatasetRecord) -> String {
    hex::encode(key.sign_labelled(DATASET_LABEL, &dataset_bytes(d)))
}

/// Signs a model version registration (hex signature).
pub fn sign_model(key: &LogKey, f: &RegisteredFiles) -> String {
    hex::encode(key.sign_labelled(MODEL_LABEL, &model_bytes(f)))
}

/// Why a signature does not verify, for people; `None` when it does.
fn check(key: &dyn LabelledVerifier, label: &str, bytes: &[u8], signature: Option<&str>) -> Option<String> {
    let Some(sig) = signature else {
        return Some("the registry row carries no signature".into());
    };
    let raw: Option<[u8; 64]> = hex::decode(sig).ok().and_then(|b| b.try_into().ok());
    match raw {
        None => Some("the registry row's signature is not 128 hex digits".into()),
        Some(raw) if key.verify_labelled(label, bytes, &raw) && sig == sig.to_ascii_lowercase() => None,
        Some(_) => Some("the registry row's signature does not verify with the ledger's public key".into()),
    }
}

/// Checks a dataset registration's signature: `None` when it verifies, else why not.
pub fn dataset_problem(key: &dyn LabelledVerifier, d: &DatasetRecord) -> Option<String> {
    check(key, DATASET_LABEL, &dataset_bytes(d), d.signature.as_deref())
}

/// Checks a model version registration's signature: `None` when it verifies, else why not.
pub fn model_problem(key: &dyn LabelledVerifier, f: &RegisteredFiles) -> Option<String> {
    check(key, MODEL_LABEL, &model_bytes(f), f.signature.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::RegisteredShard;

    fn dataset() -> DatasetRecord {
        DatasetRecord {
            id: "aa".repeat(32),
            purpose: "train_ai_system.job_recommendations".into(),
            dir: "sets/jobs".into(),
            ledger_position: 42,
            ledger_at: 1_790_000_000,
            members: 3,
            members_commitment: "bb".repeat(32),
            created: 1_790_000_100,
            signature: None,
        }
    }

    fn model() -> RegisteredFiles {
        RegisteredFiles {
            id: "cc".repeat(32),
            kind: "job-recs".into(),
            purpose: "train_ai_system.job_recommendations".into(),
            dataset: "aa".repeat(32),
            version: 2,
            supersedes: Some("dd".repeat(32)),
            shards: vec![
                RegisteredShard { index: 1, file_blake3: "11".repeat(32), members_blake3: "12".repeat(32) },
                RegisteredShard { index: 0, file_blake3: "01".repeat(32), members_blake3: "02".repeat(32) },
            ],
            signature: None,
            live_since: None,
        }
    }

    /// One alteration of a record.
    type Edit<T> = Box<dyn Fn(&mut T)>;

    fn key() -> LogKey {
        LogKey::from_seed([7; 32])
    }

    #[test]
    fn signatures_round_trip() {
        let k = key();
        let mut d = dataset();
        assert!(dataset_problem(&k.public(), &d).unwrap().contains("no signature"));
        d.signature = Some(sign_dataset(&k, &d));
        assert_eq!(dataset_problem(&k.public(), &d), None);
        let mut m = model();
        m.signature = Some(sign_model(&k, &m));
        assert_eq!(model_problem(&k.public(), &m), None);
        // Another key's signature is refused.
        let other = LogKey::from_seed([8; 32]);
        assert!(model_problem(&other.public(), &m).unwrap().contains("does not verify"));
        // Upper-case hex is not the canonical form.
        let mut upper = m.clone();
        upper.signature = upper.signature.map(|s| s.to_ascii_uppercase());
        assert!(model_problem(&k.public(), &upper).is_some());
        let mut short = m.clone();
        short.signature = Some("ab".into());
        assert!(model_problem(&k.public(), &short).unwrap().contains("128 hex"));
    }

    #[test]
    fn every_signed_field_is_bound() {
        let k = key();
        let mut d = dataset();
        d.signature = Some(sign_dataset(&k, &d));
        let altered: Vec<Edit<DatasetRecord>> = vec![
            Box::new(|d| d.id = "ab".repeat(32)),
            Box::new(|d| d.purpose.push('x')),
            Box::new(|d| d.ledger_position += 1),
            Box::new(|d| d.ledger_at += 1),
            Box::new(|d| d.members += 1),
            Box::new(|d| d.members_commitment = "bc".repeat(32)),
            Box::new(|d| d.created -= 1),
        ];
        for f in altered {
            let mut x = d.clone();
            f(&mut x);
            assert!(dataset_problem(&k.public(), &x).is_some(), "{x:?}");
        }
        let mut m = model();
        m.signature = Some(sign_model(&k, &m));
        let altered: Vec<Edit<RegisteredFiles>> = vec![
            Box::new(|m| m.id = "ce".repeat(32)),
            Box::new(|m| m.kind = "content".into()),
            Box::new(|m| m.purpose.push('x')),
            Box::new(|m| m.dataset = "ab".repeat(32)),
            Box::new(|m| m.version = 1),
            Box::new(|m| m.supersedes = None),
            Box::new(|m| m.shards[0].file_blake3 = "99".repeat(32)),
            Box::new(|m| m.shards[1].members_blake3 = "98".repeat(32)),
            Box::new(|m| m.shards[1].index = 2),
            Box::new(|m| {
                m.shards.pop();
            }),
        ];
        for f in altered {
            let mut x = m.clone();
            f(&mut x);
            assert!(model_problem(&k.public(), &x).is_some(), "{x:?}");
        }
        // The order shards are listed in does not matter: they are signed by index.
        let mut reordered = m.clone();
        reordered.shards.reverse();
        assert_eq!(model_problem(&k.public(), &reordered), None);
    }

    #[test]
    fn going_live_records_bind_the_version_its_predecessor_and_the_time() {
        let k = key();
        let mut m = model();
        assert_eq!(live_since(&k.public(), &m), Ok(None));
        let prev = m.supersedes.clone().unwrap();
        m.live_since =
            Some(crate::LiveSince { at: 1_790_000_500, signature: sign_live(&k, &m.id, &prev, 1_790_000_500) });
        assert_eq!(live_since(&k.public(), &m), Ok(Some(1_790_000_500)));
        let altered: Vec<Edit<RegisteredFiles>> = vec![
            Box::new(|m| m.id = "ce".repeat(32)),
            Box::new(|m| m.supersedes = Some("de".repeat(32))),
            Box::new(|m| m.supersedes = None),
            Box::new(|m| m.live_since.as_mut().unwrap().at -= 3600),
            Box::new(|m| m.live_since.as_mut().unwrap().signature = "ab".repeat(64)),
        ];
        for f in altered {
            let mut x = m.clone();
            f(&mut x);
            assert!(live_since(&k.public(), &x).is_err(), "{x:?}");
        }
        // Another label's signature over the same bytes is not a going-live record.
        let mut wrong = m.clone();
        wrong.live_since.as_mut().unwrap().signature =
            hex::encode(k.sign_labelled(MODEL_LABEL, &live_bytes(&m.id, &prev, 1_790_000_500)));
        assert!(live_since(&k.public(), &wrong).is_err());
    }

    #[test]
    fn fields_are_length_prefixed() {
        // "ab" + "c" and "a" + "bc" must not encode alike.
        let mut a = dataset();
        a.id = "ab".into();
        a.purpose = "c".into();
        let mut b = dataset();
        b.id = "a".into();
        b.purpose = "bc".into();
        assert_ne!(dataset_bytes(&a), dataset_bytes(&b));
    }

    /// Fixed test vectors: the encoding and the signature by the key with seed `[7; 32]`. A change here is a
    /// format change: bump the labels' version and the documentation with it.
    #[test]
    fn test_vectors() {
        let k = key();
        let d = dataset();
        // str(id): 64 as 8 bytes big-endian, then the hex digits.
        assert_eq!(dataset_bytes(&d)[..10], [0, 0, 0, 0, 0, 0, 0, 64, b'a', b'a']);
        assert_eq!(
            blake3::hash(&dataset_bytes(&d)).to_hex().to_string(),
            "7497b1818245273d04f2d3a8595166c15b2fa57ef42a72c29a11420ddae45fc2"
        );
        assert_eq!(
            sign_dataset(&k, &d),
            "451819a6bfbd6f7dee5060579841fe271ee2df30de411e4310a5b97ab5106a6a\
             4b84c14160f861f973bfd09728dc199e3ddeadba60b80b5a19fba9ba5f322507"
        );
        let m = model();
        assert_eq!(
            blake3::hash(&model_bytes(&m)).to_hex().to_string(),
            "70a44c8c48e4dc047aa741bc25b72e99f1b91ac04b7d131d27527f44baad483d"
        );
        assert_eq!(
            sign_model(&k, &m),
            "7d5867904607af80236a13b4f5396b4fe1c7af953a4a731ef2f253cc8ad27cac\
             78bf0f0667e1d37375f230e46b06eb735bf815830f425113b7571ab864542a0b"
        );
    }
}
