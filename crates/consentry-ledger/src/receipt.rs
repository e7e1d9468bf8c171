//! Receipts: what a member keeps to prove their consent event is in the log.
//!
//! A receipt holds the fields of an ISO/IEC TS 27560 consent record, the
//! event's canonical fields, its inclusion proof and a signed tree head. It
//! verifies offline with only the ledger's public key: the event's leaf hash
//! must lead through the proof to the signed root, and the record (fields the
//! log does not hash, such as the controller and the data categories) carries
//! its own signature, so no byte can change unnoticed.
//!
//! After the ledger's key rotated, a receipt also carries the key hand-overs from the genesis key to the key
//! that signed it ([`crate::keys`]), so the genesis public key (`ledger.pub`) is still all a verifier needs.
//!
//! A member-facts entry (jurisdiction and birth date, which decide consent as
//! much as events do) gets a [`FactsReceipt`]: the entry, its inclusion proof
//! and a signed tree head; the entry is itself the signed content.

use crate::checkpoint::{PublicKey, SignedTreeHead};
use crate::event::{Entry, Event, FactsEntry};
use crate::keys::{KeyChain, KeyChainError, KeyHandover};
use crate::merkle::verify_inclusion;
use crate::witness::{WitnessPolicy, WitnessShortfall, WitnessTally, Witnessed};
use crate::{Hash, Ledger, LedgerError};
use consentry_policy::Action;
use serde::{Deserialize, Serialize};

/// Version tag of the receipt format.
pub const RECEIPT_VERSION: &str = "consentry-receipt-v1";

const RECORD_LABEL: &str = "consentry-receipt-record-v1";

/// Version tag of the member-facts receipt format.
pub const FACTS_RECEIPT_VERSION: &str = "consentry-facts-receipt-v1";

/// The notice the member saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticeRef {
    /// Notice version.
    pub version: u32,
    /// BCP 47 language tag.
    pub language: String,
}

/// The consent event as ISO/IEC TS 27560 describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventRecord {
    /// `consent_given` or `consent_withdrawn`.
    pub event_type: String,
    /// `active` after a grant, `withdrawn` after a withdrawal.
    pub state: String,
    /// RFC 3339 time of the member's action.
    pub event_time: String,
    /// Where the event came from (`ui`, `api`, `gpc`, `import`, `erasure`).
    pub source: String,
}

/// An ISO/IEC TS 27560 consent record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentRecord {
    /// Unique id of this record: `<log id>:<seq>`.
    pub record_id: String,
    /// The member (PII principal).
    pub pii_principal_id: String,
    /// The organisation deciding on the processing.
    pub pii_controller: String,
    /// Purpose key and name.
    pub purpose: String,
    /// Human name of the purpose.
    pub purpose_name: String,
    /// Categories of data the purpose uses.
    pub pii_categories: Vec<String>,
    /// The notice shown.
    pub notice: NoticeRef,
    /// The member's jurisdiction.
    pub jurisdiction: String,
    /// What happened.
    pub event: EventRecord,
    /// How to withdraw, as easy as giving consent (GDPR Art. 7(3)).
    pub withdrawal_method: String,
}

/// A receipt: record, event, proof, signed head and the record's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// [`RECEIPT_VERSION`].
    pub version: String,
    /// The consent record.
    pub record: ConsentRecord,
    /// The event as the log hashes it.
    pub event: Event,
    /// Inclusion proof of the event (leaf index `seq - 1`) in the signed tree.
    #[serde(with = "crate::hexbytes::list")]
    pub inclusion_proof: Vec<Hash>,
    /// The signed tree head the proof leads to.
    pub tree_head: SignedTreeHead,
    /// Signature over the record and the event, by the last key of `key_handovers` (the genesis key if none).
    #[serde(with = "crate::hexbytes")]
    pub record_signature: [u8; 64],
    /// The key hand-overs from the log's genesis key to the key that signed (absent for a log that never rotated).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_handovers: Vec<KeyHandover>,
    /// Witnesses' cosignatures of the tree head, when any cosigned it (absent otherwise, so receipts issued
    /// before witnesses existed keep their exact bytes). Outside the record signature: cosignatures are added
    /// after the head is signed, and each verifies on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witnessed: Option<Witnessed>,
}

fn signed_payload(record: &ConsentRecord, event: &Event) -> Result<Vec<u8>, LedgerError> {
    serde_json::to_vec(&(record, event)).map_err(|e| LedgerError::Invalid(format!("cannot encode receipt: {e}")))
}

fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map_or_else(|| t.to_string(), |d| d.to_rfc3339())
}

impl Ledger {
    /// Issues a receipt for event `seq`, against the oldest checkpoint covering it
    /// (signing a new checkpoint if none does yet).
    ///
    /// Refuses when the stored log does not verify ([`Ledger::verify_through`]): a receipt never vouches for
    /// an altered event.
    pub fn receipt(&self, seq: u64) -> Result<Receipt, LedgerError> {
        self.verify_through()?;
        let stored =
            self.store().event(seq)?.ok_or_else(|| LedgerError::NotFound(format!("no event {seq} in the log")))?;
        let event = stored.event;
        let chain = self.signing_chain()?;
        let sth = self.receipt_checkpoint(seq)?;
        let proof = self.inclusion_proof(seq, sth.head.tree_size)?;
        let policy = self.policy();
        let purpose = policy.purpose_id(&event.body.purpose).map(|p| policy.purpose(p));
        let language = purpose
            .and_then(|p| p.notices.iter().find(|n| n.version == event.body.notice_version))
            .map_or_else(|| "und".to_string(), |n| n.language.clone());
        let jurisdiction =
            self.store().member(event.body.member_id)?.map_or_else(|| "unknown".to_string(), |m| m.jurisdiction);
        let (event_type, state) = match event.body.action {
            Action::Grant => ("consent_given", "active"),
            Action::Withdraw => ("consent_withdrawn", "withdrawn"),
        };
        let record = ConsentRecord {
            record_id: format!("{}:{}", hex::encode(&sth.log_id[..8]), event.seq),
            pii_principal_id: event.body.member_id.to_string(),
            pii_controller: self.options().controller.clone(),
            purpose: event.body.purpose.clone(),
            purpose_name: purpose.map_or_else(String::new, |p| p.name.clone()),
            pii_categories: purpose.map_or_else(Vec::new, |p| p.categories.clone()),
            notice: NoticeRef { version: event.body.notice_version, language },
            jurisdiction,
            event: EventRecord {
                event_type: event_type.into(),
                state: state.into(),
                event_time: rfc3339(event.body.event_time),
                source: event.body.source.as_str().into(),
            },
            withdrawal_method: format!(
                "In the privacy centre (Settings › Data for AI), or DELETE /v1/members/{}/consents/{}; \
                 withdrawing is as easy as granting and reaches models already trained.",
                event.body.member_id, event.body.purpose
            ),
        };
        let record_signature = self.key()?.sign_labelled(RECORD_LABEL, &signed_payload(&record, &event)?);
        let witnessed = self.witnessed(&sth)?;
        Ok(Receipt {
            version: RECEIPT_VERSION.into(),
            record,
            event,
            inclusion_proof: proof,
            tree_head: sth,
            record_signature,
            key_handovers: chain.handovers().to_vec(),
            witnessed,
        })
    }
}

impl Ledger {
    /// The checkpoint a receipt for entry `seq` is issued against: the oldest one witnesses cosigned that covers
    /// it, else the oldest covering it (signing one if none does yet), so receipts stay stable.
    fn receipt_checkpoint(&self, seq: u64) -> Result<SignedTreeHead, LedgerError> {
        match self.cosigned_checkpoint_covering(seq)? {
            Some(sth) => Ok(sth),
            None => self.checkpoint_covering(seq),
        }
    }

    /// Issues a receipt for the member-facts entry `seq` (see [`Ledger::receipt`] for consent events).
    pub fn facts_receipt(&self, seq: u64) -> Result<FactsReceipt, LedgerError> {
        self.verify_through()?;
        let stored =
            self.store().entry(seq)?.ok_or_else(|| LedgerError::NotFound(format!("no entry {seq} in the log")))?;
        let Entry::Facts(facts) = stored.entry else {
            return Err(LedgerError::NotFound(format!("entry {seq} is a consent event, not a member's facts")));
        };
        let chain = self.signing_chain()?;
        let sth = self.receipt_checkpoint(seq)?;
        let inclusion_proof = self.inclusion_proof(seq, sth.head.tree_size)?;
        let witnessed = self.witnessed(&sth)?;
        Ok(FactsReceipt {
            version: FACTS_RECEIPT_VERSION.into(),
            facts,
            inclusion_proof,
            tree_head: sth,
            key_handovers: chain.handovers().to_vec(),
            witnessed,
        })
    }

    /// The receipt of entry `seq`, whichever kind it is: what `ledger receipt --event SEQ` hands a member.
    pub fn any_receipt(&self, seq: u64) -> Result<AnyReceipt, LedgerError> {
        match self.store().entry(seq)? {
            Some(StoredEntryKind { entry: Entry::Facts(_), .. }) => self.facts_receipt(seq).map(AnyReceipt::Facts),
            _ => self.receipt(seq).map(AnyReceipt::Consent),
        }
    }
}

use crate::event::StoredEntry as StoredEntryKind;

/// A receipt for a member-facts entry: the jurisdiction and birth date the log recorded for a member at a position,
/// with the proof that the entry is in the signed tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FactsReceipt {
    /// [`FACTS_RECEIPT_VERSION`].
    pub version: String,
    /// The entry as the log hashes it.
    pub facts: FactsEntry,
    /// Inclusion proof of the entry (leaf index `seq - 1`) in the signed tree.
    #[serde(with = "crate::hexbytes::list")]
    pub inclusion_proof: Vec<Hash>,
    /// The signed tree head the proof leads to.
    pub tree_head: SignedTreeHead,
    /// The key hand-overs from the log's genesis key to the key that signed (absent for a log that never rotated).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_handovers: Vec<KeyHandover>,
    /// Witnesses' cosignatures of the tree head (see [`Receipt::witnessed`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witnessed: Option<Witnessed>,
}

impl FactsReceipt {
    /// Parses and verifies a facts receipt, refusing any text that is not its canonical form.
    pub fn verify_json(text: &str, key: &PublicKey) -> Result<FactsReceipt, ReceiptError> {
        let receipt: FactsReceipt = canonical(text)?;
        receipt.verify(key)?;
        Ok(receipt)
    }

    /// Verifies offline with the log's genesis public key: the carried hand-overs, the tree head's signature and
    /// the entry's inclusion in it.
    pub fn verify(&self, key: &PublicKey) -> Result<(), ReceiptError> {
        self.verify_with(&KeyChain::new(*key))
    }

    /// [`FactsReceipt::verify`] against a chain of keys the verifier already trusts (the receipt's hand-overs
    /// must extend it).
    pub fn verify_with(&self, trusted: &KeyChain) -> Result<(), ReceiptError> {
        if self.version != FACTS_RECEIPT_VERSION {
            return Err(ReceiptError::Malformed(format!("unknown facts receipt version {:?}", self.version)));
        }
        let chain = carried_chain(trusted, &self.key_handovers)?;
        verify_included(&chain, &self.tree_head, self.facts.seq, self.facts.leaf_hash(), &self.inclusion_proof)
    }

    /// [`FactsReceipt::verify`], then requires the witnesses' cosignatures `policy` asks for.
    pub fn verify_witnessed(&self, key: &PublicKey, policy: &WitnessPolicy) -> Result<WitnessTally, ReceiptError> {
        self.verify(key)?;
        policy.check(&self.tree_head, self.witnessed.as_ref()).map_err(ReceiptError::Witnesses)
    }
}

/// A receipt of either kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
#[allow(clippy::large_enum_variant)] // one receipt at a time: its size never matters, boxing would only add noise
pub enum AnyReceipt {
    /// A consent event's.
    Consent(Receipt),
    /// A member-facts entry's.
    Facts(FactsReceipt),
}

impl AnyReceipt {
    /// Parses and verifies either kind (a facts receipt is told by its `facts` field).
    pub fn verify_json(text: &str, key: &PublicKey) -> Result<AnyReceipt, ReceiptError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ReceiptError::Malformed(format!("not a receipt: {e}")))?;
        if value.get("facts").is_some() {
            FactsReceipt::verify_json(text, key).map(AnyReceipt::Facts)
        } else {
            Receipt::verify_json(text, key).map(AnyReceipt::Consent)
        }
    }

    /// [`AnyReceipt::verify_json`], then requires the witnesses' cosignatures `policy` asks for.
    pub fn verify_json_witnessed(
        text: &str,
        key: &PublicKey,
        policy: &WitnessPolicy,
    ) -> Result<(AnyReceipt, WitnessTally), ReceiptError> {
        let receipt = AnyReceipt::verify_json(text, key)?;
        let (sth, witnessed) = match &receipt {
            AnyReceipt::Consent(r) => (&r.tree_head, r.witnessed.as_ref()),
            AnyReceipt::Facts(r) => (&r.tree_head, r.witnessed.as_ref()),
        };
        let tally = policy.check(sth, witnessed).map_err(ReceiptError::Witnesses)?;
        Ok((receipt, tally))
    }
}

/// Parses `text` as `T` and refuses it unless it is the canonical form of what it parses to: an extra field
/// anywhere, upper-case hex or a number written another way would let two different texts carry one signature.
fn canonical<T: Serialize + serde::de::DeserializeOwned>(text: &str) -> Result<T, ReceiptError> {
    let malformed = |e: serde_json::Error| ReceiptError::Malformed(format!("not a receipt: {e}"));
    let value: serde_json::Value = serde_json::from_str(text).map_err(malformed)?;
    let parsed: T = serde_json::from_value(value.clone()).map_err(malformed)?;
    let canonical = serde_json::to_value(&parsed).map_err(malformed)?;
    if let Some(path) = first_difference(&value, &canonical, "") {
        return Err(ReceiptError::Malformed(format!(
            "the receipt is not in canonical form at `{path}` (an extra field, upper-case hex or a re-encoded \
             value): only the bytes the ledger signed are accepted"
        )));
    }
    Ok(parsed)
}

/// The trusted chain extended by a receipt's hand-overs, each verified.
fn carried_chain(trusted: &KeyChain, carried: &[KeyHandover]) -> Result<KeyChain, ReceiptError> {
    if let Some(h) = carried.first()
        && h.log_id != trusted.log_id()
    {
        return Err(ReceiptError::WrongKey { log_id: h.log_id, key_log_id: trusted.log_id() });
    }
    trusted.extended(carried).map_err(|e| ReceiptError::KeyChain(e.to_string()))
}

/// Checks a tree head's signature against the chain and that the leaf of entry `seq` is in it.
fn verify_included(
    chain: &KeyChain,
    sth: &SignedTreeHead,
    seq: u64,
    leaf: Result<Hash, LedgerError>,
    proof: &[Hash],
) -> Result<(), ReceiptError> {
    match chain.check(sth) {
        Ok(()) => {}
        Err(KeyChainError::WrongLog { found, expected }) => {
            return Err(ReceiptError::WrongKey { log_id: found, key_log_id: expected });
        }
        Err(KeyChainError::BadSignature { .. }) => return Err(ReceiptError::TreeHeadSignature),
        Err(e) => return Err(ReceiptError::KeyChain(e.to_string())),
    }
    let leaf = leaf.map_err(|e| ReceiptError::Malformed(e.to_string()))?;
    if seq == 0 || !verify_inclusion(seq - 1, sth.head.tree_size, &leaf, proof, &sth.head.root_hash) {
        return Err(ReceiptError::InclusionProof);
    }
    Ok(())
}

/// Why a receipt did not verify: which check failed, so a caller can branch on it (a member's app telling
/// "wrong ledger key" from "altered record").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("receipt does not verify: {}", self.reason())]
#[non_exhaustive]
pub enum ReceiptError {
    /// The text is not a receipt of a known version in its canonical form (unparsable, an extra field, upper-case
    /// hex, a re-encoded value, an unencodable entry).
    Malformed(String),
    /// The tree head names another log: the public key given is not this ledger's.
    WrongKey {
        /// The log id the tree head names.
        log_id: Hash,
        /// The log id of the key given (BLAKE3 of its bytes).
        key_log_id: Hash,
    },
    /// The tree head names this key's log but its signature fails: the head was altered.
    TreeHeadSignature,
    /// The key hand-overs the receipt carries do not verify, or the head is signed by a key they do not vouch
    /// for (an unknown key, or a retired key after its hand-over).
    KeyChain(String),
    /// The entry's inclusion proof does not lead to the signed root: the entry or the proof was altered.
    InclusionProof,
    /// The consent record's own signature fails: a field the log does not hash was altered.
    RecordSignature,
    /// The consent record is signed but does not describe the logged event.
    RecordMismatch,
    /// Too few of the witnesses the verifier trusts cosigned the tree head (who did and did not is named).
    Witnesses(WitnessShortfall),
}

impl ReceiptError {
    /// The failed check's name in snake_case (`malformed`, `wrong_key`, `tree_head_signature`,
    /// `inclusion_proof`, `record_signature`, `record_mismatch`), stable for JSON output.
    pub fn check(&self) -> &'static str {
        match self {
            ReceiptError::Malformed(_) => "malformed",
            ReceiptError::WrongKey { .. } => "wrong_key",
            ReceiptError::TreeHeadSignature => "tree_head_signature",
            ReceiptError::KeyChain(_) => "key_chain",
            ReceiptError::InclusionProof => "inclusion_proof",
            ReceiptError::RecordSignature => "record_signature",
            ReceiptError::RecordMismatch => "record_mismatch",
            ReceiptError::Witnesses(_) => "witnesses",
        }
    }

    /// What failed, in words, without the "receipt does not verify" prefix.
    pub fn reason(&self) -> String {
        match self {
            ReceiptError::Malformed(m) => m.clone(),
            ReceiptError::WrongKey { log_id, key_log_id } => format!(
                "the tree head is not signed by this ledger's key (it names log {}…, the key is log {}…): check the --public-key file",
                hex::encode(&log_id[..8]),
                hex::encode(&key_log_id[..8])
            ),
            ReceiptError::TreeHeadSignature => {
                "the tree head is not signed by this ledger's key (its signature fails)".into()
            }
            ReceiptError::KeyChain(m) => m.clone(),
            ReceiptError::InclusionProof => "the entry is not in the signed tree (inclusion proof fails)".into(),
            ReceiptError::RecordSignature => "the consent record was altered (its signature fails)".into(),
            ReceiptError::RecordMismatch => "the consent record does not describe the logged event".into(),
            ReceiptError::Witnesses(w) => w.to_string(),
        }
    }
}

impl Receipt {
    /// Parses a receipt's JSON text and verifies it ([`Receipt::verify`]), refusing any text that is not the
    /// canonical form of the receipt it parses to: an extra field anywhere, upper-case hex or a number written
    /// another way would let two different texts carry one signature.
    pub fn verify_json(text: &str, key: &PublicKey) -> Result<Receipt, ReceiptError> {
        let receipt: Receipt = canonical(text)?;
        receipt.verify(key)?;
        Ok(receipt)
    }

    /// Verifies offline with the log's genesis public key: the carried hand-overs, signature of the tree head,
    /// inclusion of the event, the record's signature, and that record and event agree.
    pub fn verify(&self, key: &PublicKey) -> Result<(), ReceiptError> {
        self.verify_with(&KeyChain::new(*key))
    }

    /// [`Receipt::verify`] against a chain of keys the verifier already trusts (the receipt's hand-overs must
    /// extend it).
    pub fn verify_with(&self, trusted: &KeyChain) -> Result<(), ReceiptError> {
        if self.version != RECEIPT_VERSION {
            return Err(ReceiptError::Malformed(format!("unknown receipt version {:?}", self.version)));
        }
        let chain = carried_chain(trusted, &self.key_handovers)?;
        verify_included(&chain, &self.tree_head, self.event.seq, self.event.leaf_hash(), &self.inclusion_proof)?;
        let payload = signed_payload(&self.record, &self.event).map_err(|e| ReceiptError::Malformed(e.to_string()))?;
        // The record is signed by the key the receipt's hand-overs end at: the key in force when it was issued.
        let signer = chain.keys().get(self.key_handovers.len()).map(|k| k.key);
        if !signer.is_some_and(|k| k.verify_labelled(RECORD_LABEL, &payload, &self.record_signature)) {
            return Err(ReceiptError::RecordSignature);
        }
        let b = &self.event.body;
        let expected_type = match b.action {
            Action::Grant => "consent_given",
            Action::Withdraw => "consent_withdrawn",
        };
        if self.record.pii_principal_id != b.member_id.to_string()
            || self.record.purpose != b.purpose
            || self.record.notice.version != b.notice_version
            || self.record.event.event_type != expected_type
            || self.record.event.event_time != rfc3339(b.event_time)
        {
            return Err(ReceiptError::RecordMismatch);
        }
        Ok(())
    }

    /// [`Receipt::verify`], then requires the witnesses' cosignatures `policy` asks for.
    pub fn verify_witnessed(&self, key: &PublicKey, policy: &WitnessPolicy) -> Result<WitnessTally, ReceiptError> {
        self.verify(key)?;
        policy.check(&self.tree_head, self.witnessed.as_ref()).map_err(ReceiptError::Witnesses)
    }
}

/// The first JSON path at which `a` and `b` differ, if any.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, path: &str) -> Option<String> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                let p = format!("{path}/{k}");
                match y.get(k) {
                    Some(w) => {
                        if let Some(d) = first_difference(v, w, &p) {
                            return Some(d);
                        }
                    }
                    None => return Some(p),
                }
            }
            y.keys().find(|k| !x.contains_key(*k)).map(|k| format!("{path}/{k}"))
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Some(path.to_string());
            }
            x.iter().zip(y).enumerate().find_map(|(i, (v, w))| first_difference(v, w, &format!("{path}/{i}")))
        }
        _ => (a != b).then(|| path.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{LogKey, TreeHead};
    use crate::event::NewEvent;
    use crate::merkle::Tree;
    use consentry_policy::Source;

    fn event(seq: u64, member_id: u64) -> Event {
        Event {
            seq,
            recorded_time: 1_700_000_100,
            body: NewEvent {
                member_id,
                purpose: "train_ai_system.job_recommendations".into(),
                action: Action::Grant,
                notice_version: 1,
                source: Source::Ui,
                actor: "member".into(),
                event_time: 1_700_000_000,
                idempotency_key: format!("k{seq}"),
            },
        }
    }

    /// A receipt for event 1 of a two-event log signed by `key`, built without a store.
    fn issue(key: &LogKey) -> Receipt {
        let (first, second) = (event(1, 42), event(2, 43));
        let mut tree = Tree::new();
        tree.push(first.leaf_hash().unwrap());
        tree.push(second.leaf_hash().unwrap());
        let head = TreeHead { tree_size: 2, root_hash: tree.root(2).unwrap(), chain_hash: [7; 32], timestamp: 1 };
        let record = ConsentRecord {
            record_id: "log:1".into(),
            pii_principal_id: "42".into(),
            pii_controller: "Example".into(),
            purpose: first.body.purpose.clone(),
            purpose_name: "Job recommendations".into(),
            pii_categories: vec!["profile.skills".into()],
            notice: NoticeRef { version: 1, language: "en".into() },
            jurisdiction: "DE".into(),
            event: EventRecord {
                event_type: "consent_given".into(),
                state: "active".into(),
                event_time: rfc3339(first.body.event_time),
                source: "ui".into(),
            },
            withdrawal_method: "privacy centre".into(),
        };
        let record_signature = key.sign_labelled(RECORD_LABEL, &signed_payload(&record, &first).unwrap());
        Receipt {
            version: RECEIPT_VERSION.into(),
            record,
            event: first,
            inclusion_proof: tree.inclusion_proof(0, 2).unwrap(),
            tree_head: key.sign(head),
            record_signature,
            key_handovers: Vec::new(),
            witnessed: None,
        }
    }

    fn verify(r: &Receipt, key: &LogKey) -> Result<Receipt, ReceiptError> {
        Receipt::verify_json(&serde_json::to_string(r).unwrap(), &key.public())
    }

    #[test]
    fn an_honest_receipt_verifies() {
        let key = LogKey::from_seed([1; 32]);
        assert_eq!(verify(&issue(&key), &key).unwrap(), issue(&key));
    }

    #[test]
    fn another_ledgers_key_is_wrong_key() {
        let key = LogKey::from_seed([1; 32]);
        let e = verify(&issue(&key), &LogKey::from_seed([2; 32])).unwrap_err();
        assert!(matches!(e, ReceiptError::WrongKey { .. }), "{e}");
        assert_eq!(e.check(), "wrong_key");
        assert!(e.to_string().contains("not signed by this ledger's key"), "{e}");
    }

    #[test]
    fn an_altered_tree_head_fails_its_signature() {
        let key = LogKey::from_seed([1; 32]);
        let mut r = issue(&key);
        r.tree_head.head.timestamp += 1;
        let e = verify(&r, &key).unwrap_err();
        assert_eq!((e.clone(), e.check()), (ReceiptError::TreeHeadSignature, "tree_head_signature"));
    }

    #[test]
    fn an_altered_event_fails_the_inclusion_proof() {
        let key = LogKey::from_seed([1; 32]);
        let mut r = issue(&key);
        r.event.recorded_time += 1;
        let e = verify(&r, &key).unwrap_err();
        assert_eq!((e.clone(), e.check()), (ReceiptError::InclusionProof, "inclusion_proof"));
        let mut r = issue(&key);
        r.inclusion_proof.clear();
        assert_eq!(verify(&r, &key).unwrap_err(), ReceiptError::InclusionProof);
    }

    #[test]
    fn an_altered_record_fails_its_signature() {
        let key = LogKey::from_seed([1; 32]);
        let mut r = issue(&key);
        r.record.pii_controller = "Someone else".into();
        let e = verify(&r, &key).unwrap_err();
        assert_eq!((e.clone(), e.check()), (ReceiptError::RecordSignature, "record_signature"));
    }

    #[test]
    fn a_signed_record_of_another_event_is_a_mismatch() {
        let key = LogKey::from_seed([1; 32]);
        let mut r = issue(&key);
        r.record.pii_principal_id = "43".into();
        r.record_signature = key.sign_labelled(RECORD_LABEL, &signed_payload(&r.record, &r.event).unwrap());
        let e = verify(&r, &key).unwrap_err();
        assert_eq!((e.clone(), e.check()), (ReceiptError::RecordMismatch, "record_mismatch"));
    }

    #[test]
    fn non_canonical_or_unknown_text_is_malformed() {
        let key = LogKey::from_seed([1; 32]);
        let text = serde_json::to_string(&issue(&key)).unwrap();
        let extra = text.replacen("\"idempotency_key\":", "\"note\":1,\"idempotency_key\":", 1);
        let mut older = issue(&key);
        older.version = "consentry-receipt-v0".into();
        for bad in [extra, "{".to_string(), serde_json::to_string(&older).unwrap()] {
            let e = AnyReceipt::verify_json(&bad, &key.public()).unwrap_err();
            assert!(matches!(e, ReceiptError::Malformed(_)), "{e}");
            assert_eq!(e.check(), "malformed");
        }
    }

    /// A receipt signed after a rotation carries the hand-over and verifies with the genesis key alone; without
    /// the hand-over, or with one signed only by the new key, it is refused.
    #[test]
    fn a_receipt_after_a_rotation_verifies_with_the_genesis_key() {
        let (old, new) = (LogKey::from_seed([1; 32]), LogKey::from_seed([2; 32]));
        let log_id = old.public().key_id();
        let handover = crate::keys::KeyHandover::sign(log_id, &old, &new, 1, 5);
        let mut r = issue(&new);
        r.tree_head = new.sign_for(log_id, r.tree_head.head);
        r.key_handovers = vec![handover.clone()];
        assert!(verify(&r, &old).is_ok(), "{:?}", verify(&r, &old));
        // Stripped of its hand-over: an unknown key, with the fix in the message.
        let mut stripped = r.clone();
        stripped.key_handovers.clear();
        let e = verify(&stripped, &old).unwrap_err();
        assert_eq!(e.check(), "key_chain");
        assert!(e.to_string().contains("unknown key"), "{e}");
        // A hand-over the old key did not sign.
        let mut forged = r.clone();
        forged.key_handovers[0].old_signature =
            new.sign_labelled("consentry-key-handover-v1", &handover.signed_bytes());
        assert_eq!(verify(&forged, &old).unwrap_err().check(), "key_chain");
        // The record signed by the retired key instead of the one the chain ends at.
        let mut by_old = r.clone();
        by_old.record_signature = old.sign_labelled(RECORD_LABEL, &signed_payload(&r.record, &r.event).unwrap());
        assert_eq!(verify(&by_old, &old).unwrap_err(), ReceiptError::RecordSignature);
        // Another log's genesis key: the wrong key.
        assert_eq!(verify(&r, &LogKey::from_seed([3; 32])).unwrap_err().check(), "wrong_key");
    }

    #[test]
    fn a_facts_receipt_names_its_check_too() {
        let key = LogKey::from_seed([1; 32]);
        let r = issue(&key);
        let facts = FactsReceipt {
            version: FACTS_RECEIPT_VERSION.into(),
            facts: FactsEntry {
                seq: 1,
                recorded_time: 1,
                member_id: 42,
                jurisdiction: "DE".into(),
                birth_date: chrono::NaiveDate::from_ymd_opt(1980, 1, 1).unwrap(),
                actor: "import".into(),
            },
            inclusion_proof: r.inclusion_proof.clone(),
            tree_head: r.tree_head.clone(),
            key_handovers: Vec::new(),
            witnessed: None,
        };
        assert_eq!(facts.verify(&key.public()).unwrap_err(), ReceiptError::InclusionProof);
        assert!(matches!(facts.verify(&LogKey::from_seed([3; 32]).public()), Err(ReceiptError::WrongKey { .. })));
    }
}
