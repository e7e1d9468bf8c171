//! The ledger proper: validation against the policy, appends, the Merkle
//! tree kept in step with the store, checkpoints, proofs and verification.

use crate::checkpoint::{LogKey, PublicKey, SignedTreeHead, TreeHead};
use crate::event::{NewEvent, StoredEntry, chain_hash};
use crate::keys::{GENESIS_META, KeyChain, KeyHandover};
use crate::merkle::Frontier;
use crate::snapshot::Snapshot;
use crate::store::{Appended, MemberRecord, Store};
use crate::tiles::{Flush, TiledTree};
use crate::{Hash, LedgerError};
use consentry_policy::{Policy, PurposeId, Timestamp};
use roaring::RoaringTreemap;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// Tunables of a ledger.
#[derive(Debug, Clone)]
pub struct LedgerOptions {
    /// A checkpoint is signed whenever the log crosses a multiple of this many events (0: only on demand).
    pub checkpoint_every: u64,
    /// How far in the future (seconds) an event time may be, to allow for clock skew.
    pub max_clock_skew: i64,
    /// The organisation named as controller in receipts.
    pub controller: String,
    /// Refuse events about members not in the member directory (on by default; only test suites that
    /// exercise the log alone turn it off).
    pub require_known_members: bool,
}

impl Default for LedgerOptions {
    fn default() -> LedgerOptions {
        LedgerOptions {
            checkpoint_every: 10_000,
            max_clock_skew: 300,
            controller: String::new(),
            require_known_members: true,
        }
    }
}

/// The outcome of [`Ledger::verify`].
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Verification {
    /// Events read.
    pub events: u64,
    /// Checkpoints checked.
    pub checkpoints: usize,
    /// The first sequence number that is wrong, if any.
    pub first_bad_seq: Option<u64>,
    /// Every problem found, in log order.
    pub problems: Vec<String>,
}

impl Verification {
    /// True when nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// A consent ledger over some store.
pub struct Ledger {
    store: Box<dyn Store>,
    policy: PolicyLink,
    /// The signing key; `None` for a ledger opened only to read and verify ([`Ledger::verifier`]).
    key: Option<LogKey>,
    /// The log's genesis public key: the key itself for a log that never rotated, else what the store records.
    genesis: PublicKey,
    opts: LedgerOptions,
    /// How far this process has checked the stored entries against their hashes and the signed heads.
    verified: Mutex<Verified>,
    /// Member ids seen in the directory (members are never removed, so this only grows).
    known_members: Mutex<RoaringTreemap>,
}

/// The policies a ledger has validated against, oldest first: publishing a notice appends a link and replaces
/// nothing, so a `&Policy` handed out earlier stays valid for the ledger's life (publications are rare).
struct PolicyLink {
    policy: Policy,
    next: OnceLock<Box<PolicyLink>>,
}

impl PolicyLink {
    fn new(policy: Policy) -> PolicyLink {
        PolicyLink { policy, next: OnceLock::new() }
    }

    fn last(&self) -> &PolicyLink {
        let mut at = self;
        while let Some(next) = at.next.get() {
            at = next;
        }
        at
    }
}

/// The prefix of the log this process has verified: entries `1..=tree.len()` were re-encoded and hashed
/// (or written by this process, from events it encoded itself) and the chain recomputed; every checkpoint
/// of at most `checkpoints_upto` entries was checked against the recomputed tree and the key. The tree is
/// tiled: its right edge is here, its full tiles in the store (compared with the entries when first read).
#[derive(Default)]
struct Verified {
    tree: TiledTree,
    chain: Hash,
    checkpoints_upto: u64,
    /// Entries this process wrote past the prefix, not yet contiguous with it (concurrent appends answered out of
    /// order): seq → (leaf hash, chain hash). They join the prefix once the entries before them do.
    written: BTreeMap<u64, (Hash, Hash)>,
}

/// Most out-of-order written entries remembered (beyond, the prefix is extended by reading the store back).
const MAX_WRITTEN: usize = 1 << 16;

/// Characters refused in free-text fields (actor, idempotency key, jurisdiction): control characters would
/// be stored and later printed raw.
fn control_char(s: &str) -> Option<char> {
    s.chars().find(|c| c.is_control())
}

/// Current Unix time in seconds: the one clock the ledger and the lineage registry read.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Ledger {
    /// A ledger over `store`, validating against `policy` and signing with `key`.
    pub fn new(store: Box<dyn Store>, policy: Policy, key: LogKey, opts: LedgerOptions) -> Ledger {
        let mut opts = opts;
        if opts.controller.is_empty() {
            opts.controller = policy.controller.clone();
        }
        // A store that failed to say is read again by every verification, which then names the problem.
        let genesis = store
            .get_meta(GENESIS_META)
            .ok()
            .flatten()
            .and_then(|hex| PublicKey::from_hex(&hex).ok())
            .unwrap_or_else(|| key.public());
        Ledger {
            store,
            policy: PolicyLink::new(policy),
            key: Some(key),
            genesis,
            opts,
            verified: Mutex::new(Verified::default()),
            known_members: Mutex::new(RoaringTreemap::new()),
        }
    }

    /// The storage backend.
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// The policy events are validated against (the newest one put in force).
    pub fn policy(&self) -> &Policy {
        &self.policy.last().policy
    }

    /// Puts `policy` in force for every later call (a published notice version), if its hash differs from the one
    /// in force; returns whether it changed. The policy is the caller's to have checked (the application layer
    /// reads it from the data directory and its signed record of operator actions).
    pub fn set_policy(&self, policy: Policy) -> bool {
        let mut link = Box::new(PolicyLink::new(policy));
        loop {
            let last = self.policy.last();
            if link.policy.hash == last.policy.hash {
                return false;
            }
            // Another thread may append first: then look again at the newest link.
            match last.next.set(link) {
                Ok(()) => return true,
                Err(back) => link = back,
            }
        }
    }

    /// The options in force.
    pub fn options(&self) -> &LedgerOptions {
        &self.opts
    }

    /// The public key verifiers need: the log's genesis key (`ledger.pub`), the same across key rotations
    /// (heads signed by later keys verify through the hand-overs, [`Ledger::key_chain`]).
    pub fn public_key(&self) -> PublicKey {
        self.genesis
    }

    /// A ledger without its signing key, anchored at the log's genesis public key: it reads, verifies and
    /// snapshots, and refuses everything that signs (a read-only copy audited where the secret key is not).
    pub fn verifier(store: Box<dyn Store>, policy: Policy, genesis: PublicKey, opts: LedgerOptions) -> Ledger {
        let mut ledger = Ledger::new(store, policy, LogKey::from_seed([0; 32]), opts);
        ledger.key = None;
        ledger.genesis = genesis;
        ledger
    }

    /// The signing key, or the refusal of a ledger opened without it.
    pub(crate) fn key(&self) -> Result<&LogKey, LedgerError> {
        self.key.as_ref().ok_or_else(|| {
            LedgerError::Key(
                "this ledger was opened without its signing key (to read and verify only): signing needs the key \
                 (--signing-key FILE, or DATA/ledger.key with mode 0600)"
                    .into(),
            )
        })
    }

    /// Anchors the log at `genesis` (the data directory's `ledger.pub`) instead of what the store records, so a
    /// store whose recorded genesis key was replaced, or a signing key swapped for another, is refused.
    pub fn with_genesis(mut self, genesis: PublicKey) -> Ledger {
        self.genesis = genesis;
        self
    }

    /// The log's keys: the genesis key and every stored hand-over, verified.
    pub fn key_chain(&self) -> Result<KeyChain, LedgerError> {
        load_chain(self.store.as_ref(), &self.genesis)
    }

    /// The key chain, refusing to go on when this process's key is not the log's current key (a retired key must
    /// never sign again; a foreign key never could).
    pub fn signing_chain(&self) -> Result<KeyChain, LedgerError> {
        let chain = self.key_chain()?;
        let own = self.key()?.public().key_id();
        if chain.current().key_id == own {
            return Ok(chain);
        }
        let current = hex::encode(&chain.current().key_id[..8]);
        Err(LedgerError::Key(match chain.key(&own) {
            Some(k) => format!(
                "this signing key ({}…) was retired at tree size {} by a hand-over to key {current}…: sign with the new \
                 key (--signing-key FILE, or DATA/ledger.key) and move the old key away",
                hex::encode(&own[..8]),
                k.until_size.unwrap_or_default()
            ),
            None => format!(
                "the signing key {}… is not one of this log's keys ({}): use the log's current key {current}…",
                hex::encode(&own[..8]),
                chain.describe()
            ),
        }))
    }

    /// Rotates the signing key: signs a checkpoint of the whole log with the current key, then a hand-over to
    /// `new` at that tree size with both keys, and stores it. From then on this ledger refuses to sign (its key is
    /// retired): open the log again with `new`. Returns the hand-over.
    pub fn rotate_key(&self, new: &LogKey) -> Result<KeyHandover, LedgerError> {
        let chain = self.signing_chain()?;
        if chain.key(&new.public().key_id()).is_some() {
            return Err(LedgerError::Key(
                "the new key is already one of this log's keys: a rotation needs a key never used before".into(),
            ));
        }
        let sth = self.checkpoint()?;
        let handover = KeyHandover::sign(chain.log_id(), self.key()?, new, sth.head.tree_size, sth.head.timestamp);
        // Checked as every verifier will check it before it is stored.
        chain.clone().push(handover.clone())?;
        self.store.set_meta(GENESIS_META, &chain.genesis().to_hex())?;
        self.store.put_key_handover(chain.handovers().len(), &handover)?;
        Ok(handover)
    }

    /// Refuses a batch that names an unknown purpose or notice version, a member id
    /// beyond `i64::MAX` or not in the member directory, has an event time in the
    /// future, control characters in a free-text field, or fields too long to encode.
    pub fn validate(&self, batch: &[NewEvent], now: i64) -> Result<(), LedgerError> {
        self.validate_with(batch, now, &[])
    }

    /// [`Ledger::validate`] for an import that also records `members` (validated by
    /// [`Ledger::validate_members`]): their ids count as known, so the whole import is checked before
    /// anything is written.
    pub fn validate_with(&self, batch: &[NewEvent], now: i64, members: &[MemberRecord]) -> Result<(), LedgerError> {
        let pending: RoaringTreemap = members.iter().map(|m| m.member_id).collect();
        let mut known =
            self.known_members.lock().map_err(|_| LedgerError::WriterGone("member cache poisoned".into()))?;
        if self.opts.require_known_members {
            // Members not seen yet: a few are looked up, many load the whole directory's ids once.
            let unseen: RoaringTreemap = batch
                .iter()
                .map(|e| e.member_id)
                .filter(|&id| i64::try_from(id).is_ok() && !known.contains(id) && !pending.contains(id))
                .collect();
            if unseen.len() > 64 {
                self.store.scan_member_facts(u64::MAX, &mut |id, _, _| {
                    known.insert(id);
                })?;
            } else {
                for id in &unseen {
                    if self.store.member(id)?.is_some() {
                        known.insert(id);
                    }
                }
            }
        }
        for (index, e) in batch.iter().enumerate() {
            let reject = |reason: String| LedgerError::Rejected { index, reason };
            if let Some(why) = id_beyond_storage(e.member_id) {
                return Err(reject(why));
            }
            if self.opts.require_known_members && !known.contains(e.member_id) && !pending.contains(e.member_id) {
                return Err(reject(format!(
                    "member {} is not in the member directory; import the member's facts first",
                    e.member_id
                )));
            }
            for (field, s) in [("actor", &e.actor), ("idempotency key", &e.idempotency_key)] {
                if let Some(c) = control_char(s) {
                    return Err(reject(format!("the {field} contains the control character {c:?}; use plain text")));
                }
            }
            let Some(pid) = self.policy().purpose_id(&e.purpose) else {
                let known: Vec<&str> = self.policy().purposes.iter().map(|p| p.key.as_str()).collect();
                return Err(reject(format!(
                    "unknown purpose `{}`; the policy declares {}",
                    e.purpose,
                    known.join(", ")
                )));
            };
            let p = self.policy().purpose(pid);
            if p.notice_lapses_at(e.notice_version).is_none() {
                let versions: Vec<String> = p.notices.iter().map(|n| n.version.to_string()).collect();
                return Err(reject(format!(
                    "purpose `{}` has no notice version {}; it has {}",
                    e.purpose,
                    e.notice_version,
                    versions.join(", ")
                )));
            }
            if e.action == consentry_policy::Action::Grant
                && let Some(n) = p.notices.iter().find(|n| n.version == e.notice_version)
                && e.event_time < n.effective
            {
                return Err(reject(format!(
                    "a grant at {} under notice version {} of `{}`, which only takes effect at {}",
                    e.event_time, n.version, e.purpose, n.effective
                )));
            }
            if e.event_time > now + self.opts.max_clock_skew {
                return Err(reject(format!(
                    "event time {} is in the future (now is {now}); record events when they happen",
                    e.event_time
                )));
            }
            if e.idempotency_key.is_empty() {
                return Err(reject("the idempotency key is empty".into()));
            }
            e.check_encodable().map_err(|err| reject(err.to_string()))?;
        }
        Ok(())
    }

    /// Validates and appends a batch atomically; returns one result per event.
    pub fn append(&self, batch: Vec<NewEvent>) -> Result<Vec<Appended>, LedgerError> {
        self.append_at(batch, now())
    }

    /// [`Ledger::append`] with an explicit clock, for imports and tests.
    ///
    /// When the append crosses a multiple of `checkpoint_every`, a checkpoint
    /// is signed. The events are committed before that: a failed checkpoint
    /// does not fail the append (the next crossing, or `checkpoint`, makes it).
    pub fn append_at(&self, batch: Vec<NewEvent>, now: i64) -> Result<Vec<Appended>, LedgerError> {
        self.validate(&batch, now)?;
        // Never extend a log that no longer matches its hashes and signatures.
        self.verify_through()?;
        let out = self.store.append(batch, now)?;
        self.note_appended(&out);
        let fresh = out.iter().filter(|a| !a.duplicate).map(|a| a.event.seq);
        self.checkpoint_if_crossed(fresh, now);
        Ok(out)
    }

    /// Extends the verified prefix over events this process just wrote, once they follow it directly (events
    /// answered out of order wait in `written` for those before them), so the next [`Ledger::verify_through`]
    /// need not read them back. Checkpoints past the old prefix are still checked then (`checkpoints_upto` does
    /// not move).
    fn note_appended(&self, out: &[Appended]) {
        let Ok(mut guard) = self.verified.lock() else { return };
        let v = &mut *guard;
        let len = v.tree.len();
        for a in out.iter().filter(|a| !a.duplicate && a.event.seq > len) {
            let Ok(leaf) = a.event.leaf_hash() else { return };
            v.written.insert(a.event.seq, (leaf, a.chain_hash));
        }
        v.written.retain(|&seq, _| seq > len);
        while let Some(entry) = v.written.first_entry() {
            if *entry.key() != v.tree.len() + 1 {
                break;
            }
            let (leaf, stored_chain) = entry.remove();
            let chain = chain_hash(&v.chain, &leaf);
            if chain != stored_chain {
                v.written.clear();
                return;
            }
            v.chain = chain;
            v.tree.push(leaf);
        }
        if v.written.len() > MAX_WRITTEN {
            v.written.clear();
        }
        // The tiles these entries completed are this process's own: stored as they are (a failure keeps them).
        let _ = v.tree.flush(self.store.as_ref(), Flush::Write);
    }

    /// Signs a checkpoint when the fresh sequence numbers cross a multiple of `checkpoint_every`.
    fn checkpoint_if_crossed(&self, fresh: impl Iterator<Item = u64> + Clone, now: i64) {
        if let (Some(first), Some(last)) = (fresh.clone().min(), fresh.max()) {
            let every = self.opts.checkpoint_every;
            if every > 0 && last / every > (first - 1) / every {
                let _ = self.checkpoint_at(now);
            }
        }
    }

    /// Records member facts (membership, jurisdiction, birth date) as entries of the log, at `now`: one entry
    /// per member whose facts differ from the latest recorded ones, so re-importing the same directory adds
    /// nothing and a changed birth date is a new, signed, visible entry. Refuses ids beyond `i64::MAX`,
    /// empty or control-character jurisdictions and actors, and fields too long to encode; nothing is
    /// written then. Returns the number of entries appended.
    pub fn record_members(&self, members: &[MemberRecord], actor: &str, now: i64) -> Result<u64, LedgerError> {
        self.validate_members(members, actor)?;
        self.verify_through()?;
        let out = self.store.append_facts(members.to_vec(), actor, now)?;
        self.checkpoint_if_crossed(out.iter().map(|s| s.facts.seq), now);
        Ok(out.len() as u64)
    }

    /// Refuses member facts [`Ledger::record_members`] would not record, writing nothing.
    pub fn validate_members(&self, members: &[MemberRecord], actor: &str) -> Result<(), LedgerError> {
        for (index, m) in members.iter().enumerate() {
            let reject = |reason: String| LedgerError::Rejected { index, reason };
            if let Some(why) = id_beyond_storage(m.member_id) {
                return Err(reject(why));
            }
            if m.jurisdiction.is_empty() || m.jurisdiction.len() > 64 {
                return Err(reject(format!(
                    "member {}: the jurisdiction must be an ISO 3166 code, not {:?}",
                    m.member_id, m.jurisdiction
                )));
            }
            for (field, s) in [("jurisdiction", m.jurisdiction.as_str()), ("actor", actor)] {
                if let Some(c) = control_char(s) {
                    return Err(reject(format!("the {field} contains the control character {c:?}; use plain text")));
                }
            }
        }
        if u16::try_from(actor.len()).is_err() || actor.is_empty() {
            return Err(LedgerError::Invalid(format!("the actor must be 1 to 65535 bytes, not {}", actor.len())));
        }
        Ok(())
    }

    /// Checks the stored entries this process has not checked yet against their hashes, the chain and every
    /// signed checkpoint, and returns the log length verified. Cheap in the common path: only entries added
    /// since the last call are read and hashed (the first call in a process reads the whole log). Fails with
    /// [`LedgerError::BadEntry`] naming the first entry that does not verify; snapshots, receipts,
    /// checkpoints and appends go through here, so nothing is read from, signed over or appended to a log
    /// that fails verification.
    pub fn verify_through(&self) -> Result<u64, LedgerError> {
        self.verified().map(|(_, len)| len)
    }

    /// [`Ledger::verify_through`], holding the verified prefix (and its tree) for the caller.
    fn verified(&self) -> Result<(MutexGuard<'_, Verified>, u64), LedgerError> {
        let mut v = self.verified.lock().map_err(|_| LedgerError::WriterGone("verification lock poisoned".into()))?;
        let from = v.tree.len();
        let len = self.store.len()?;
        if len < from {
            return Err(LedgerError::BadEntry {
                seq: len + 1,
                reason: format!("the log shrank from {from} to {len} entries: entries were removed"),
            });
        }
        match check_entries(self.store.as_ref(), &self.genesis, &mut v, len) {
            Ok(()) => Ok((v, len)),
            Err(e) => {
                // Start over next time: nothing past a failure counts as verified.
                *v = Verified::default();
                Err(e)
            }
        }
    }

    /// Snapshots of several purposes at `position` and time `at`, built only from entries verified against
    /// the signed log ([`Ledger::verify_through`]); the member directory is the facts as of `position`.
    pub fn snapshots(
        &self,
        purposes: &[PurposeId],
        position: u64,
        at: Timestamp,
    ) -> Result<Vec<Snapshot>, LedgerError> {
        let len = self.verify_through()?;
        if position > len {
            return Err(LedgerError::NotFound(format!(
                "position {position} is past the end of the log ({len} entries)"
            )));
        }
        let root = self.root(position)?;
        Snapshot::build_many(self.store.as_ref(), self.policy(), purposes, position, at, root)
    }

    /// [`Ledger::snapshots`] for one purpose.
    pub fn snapshot(&self, purpose: PurposeId, position: u64, at: Timestamp) -> Result<Snapshot, LedgerError> {
        let mut v = self.snapshots(&[purpose], position, at)?;
        v.pop().ok_or_else(|| LedgerError::Corrupt("no snapshot built".into()))
    }

    /// Signs and stores a checkpoint of the whole log now.
    pub fn checkpoint(&self) -> Result<SignedTreeHead, LedgerError> {
        self.checkpoint_at(now())
    }

    fn checkpoint_at(&self, timestamp: i64) -> Result<SignedTreeHead, LedgerError> {
        // Never sign over entries that do not match their hashes: the root is the verified tree's right edge.
        let (mut v, size) = self.verified()?;
        let root = v.tree.edge_root();
        // Never sign a history that does not extend what was signed before.
        if let Some(last) = self.store.checkpoints()?.pop()
            && v.tree.root(self.store.as_ref(), last.head.tree_size)? != Some(last.head.root_hash)
        {
            return Err(LedgerError::Tampered(format!(
                "the log no longer extends the checkpoint of {} events; run `ledger verify`",
                last.head.tree_size
            )));
        }
        drop(v);
        let chain = match size {
            0 => [0; 32],
            s => self.store.entry(s)?.ok_or_else(|| LedgerError::Corrupt(format!("entry {s} vanished")))?.chain_hash,
        };
        let log_id = self.signing_chain()?.log_id();
        let sth =
            self.key()?.sign_for(log_id, TreeHead { tree_size: size, root_hash: root, chain_hash: chain, timestamp });
        self.store.put_checkpoint(&sth)?;
        Ok(sth)
    }

    /// The newest stored checkpoint.
    pub fn latest_checkpoint(&self) -> Result<Option<SignedTreeHead>, LedgerError> {
        Ok(self.store.checkpoints()?.pop())
    }

    /// The first (oldest) checkpoint that covers `seq`, so receipts stay stable; makes one if none does yet.
    pub fn checkpoint_covering(&self, seq: u64) -> Result<SignedTreeHead, LedgerError> {
        match self.store.checkpoints()?.into_iter().find(|c| c.head.tree_size >= seq) {
            Some(c) => Ok(c),
            None => self.checkpoint(),
        }
    }

    /// Inclusion proof of event `seq` in the tree of `tree_size` events.
    pub fn inclusion_proof(&self, seq: u64, tree_size: u64) -> Result<Vec<Hash>, LedgerError> {
        if seq == 0 {
            return Err(LedgerError::Invalid("sequence numbers start at 1".into()));
        }
        let (mut v, _) = self.verified()?;
        v.tree
            .inclusion_proof(self.store.as_ref(), seq - 1, tree_size)?
            .ok_or_else(|| LedgerError::NotFound(format!("event {seq} is not in a tree of {tree_size} events")))
    }

    /// Consistency proof between two tree sizes.
    pub fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash>, LedgerError> {
        let (mut v, _) = self.verified()?;
        v.tree
            .consistency_proof(self.store.as_ref(), first, second)?
            .ok_or_else(|| LedgerError::NotFound(format!("no consistency proof from {first} to {second} events")))
    }

    /// The Merkle root of the first `size` events.
    pub fn root(&self, size: u64) -> Result<Hash, LedgerError> {
        let (mut v, _) = self.verified()?;
        v.tree
            .root(self.store.as_ref(), size)?
            .ok_or_else(|| LedgerError::NotFound(format!("the log has fewer than {size} events")))
    }

    /// The first `width` hashes of the tile at `level` and `index` as C2SP tlog-tiles serves them (`width` 256 for
    /// a full tile), so an auditor or witness recomputes any root or proof itself; `None` when the log has not
    /// grown that far.
    pub fn tile(&self, level: u32, index: u64, width: usize) -> Result<Option<Vec<u8>>, LedgerError> {
        let (mut v, _) = self.verified()?;
        let full = v.tree.full_tiles(level);
        let tile;
        let hashes: &[Hash] = if index < full {
            tile = v.tree.full_tile(self.store.as_ref(), level, index)?;
            &tile
        } else if index == full {
            v.tree.partial(level)
        } else {
            return Ok(None);
        };
        Ok(hashes.get(..width).map(crate::tiles::encode))
    }

    /// The stored tiles that differ from the tree of the stored leaf hashes, read in chunks in bounded memory: what
    /// an online audit adds to its bundle's checks (a bundle carries entries, not tiles).
    pub fn tile_mismatches(&self) -> Result<Vec<crate::tiles::TileMismatch>, LedgerError> {
        let len = self.store.len()?;
        let mut tree = TiledTree::new();
        let mut out = Vec::new();
        let mut lo = 1;
        while lo <= len {
            let hi = lo.saturating_add(SCAN_CHUNK - 1).min(len);
            self.store.leaf_hashes(lo, hi)?.into_iter().for_each(|h| tree.push(h));
            out.extend(tree.flush(self.store.as_ref(), Flush::CheckOnly)?);
            lo = hi + 1;
        }
        Ok(out)
    }

    /// Rebuilds everything from the stored events: sequence, leaf hashes, chain,
    /// tree, and every checkpoint's root, chain head and signature.
    pub fn verify(&self) -> Result<Verification, LedgerError> {
        verify_store(self.store.as_ref(), &self.genesis)
    }
}

/// The chain of `store`'s hand-overs from `genesis`, verified; hand-overs that do not verify mean the store was
/// tampered with (or `genesis` is not this log's key).
fn load_chain(store: &dyn Store, genesis: &PublicKey) -> Result<KeyChain, LedgerError> {
    KeyChain::from_handovers(*genesis, store.key_handovers()?).map_err(|e| {
        LedgerError::Tampered(format!("{e} (the stored key hand-overs do not lead from the log's public key)"))
    })
}

/// Entries a verification reads per chunk: the tiles a chunk completes are checked and stored before the next,
/// so a scan holds about 256 tiles (2 MiB) whatever the log's length.
const SCAN_CHUNK: u64 = 1 << 16;

/// Extends `v` over entries `v.tree.len() + 1..=len`, checking each against its stored leaf and chain hash and
/// each tile it completes against the stored one, then every checkpoint past the old verified length against the
/// recomputed tree, chain and the key.
fn check_entries(store: &dyn Store, genesis: &PublicKey, v: &mut Verified, len: u64) -> Result<(), LedgerError> {
    let from = v.tree.len();
    if from == len && v.checkpoints_upto == len {
        // Nothing new: every checkpoint a later call would check covers more than `len` entries.
        return Ok(());
    }
    let checkpoints = store.checkpoints()?;
    // Roots of the heads this scan passes, from the right edge of the entries just verified.
    let ahead: BTreeSet<u64> =
        checkpoints.iter().map(|c| c.head.tree_size).filter(|s| (from + 1..=len).contains(s)).collect();
    let mut roots: BTreeMap<u64, Hash> = BTreeMap::new();
    let mut expected = from + 1;
    let mut lo = from + 1;
    while lo <= len {
        let hi = lo.saturating_add(SCAN_CHUNK - 1).min(len);
        store.scan_entries(lo, hi, &mut |s: StoredEntry| {
            let seq = s.entry.seq();
            let bad = |reason: String| Err(LedgerError::BadEntry { seq, reason });
            if seq != expected {
                return Err(LedgerError::BadEntry {
                    seq: expected,
                    reason: format!("entry {expected} is missing or out of place (found {seq} there)"),
                });
            }
            let leaf = s.entry.leaf_hash()?;
            if leaf != s.leaf_hash {
                return bad(format!("entry {seq} was changed after it was written (its leaf hash does not match)"));
            }
            let chain = chain_hash(&v.chain, &leaf);
            if chain != s.chain_hash {
                return bad(format!("the hash chain breaks at entry {seq}"));
            }
            v.chain = chain;
            v.tree.push(leaf);
            if ahead.contains(&seq) {
                roots.insert(seq, v.tree.edge_root());
            }
            expected += 1;
            Ok(())
        })?;
        if let Some(m) = v.tree.flush(store, Flush::CheckAndWrite)?.first() {
            return Err(LedgerError::Tampered(format!("{m}; run `ledger verify`")));
        }
        if expected != hi + 1 {
            break;
        }
        lo = hi + 1;
    }
    if v.tree.len() != len {
        let seq = v.tree.len() + 1;
        return Err(LedgerError::BadEntry { seq, reason: format!("entry {seq} is missing") });
    }
    let mut previous = 0;
    let chain = load_chain(store, genesis)?;
    for c in checkpoints {
        let size = c.head.tree_size;
        if size > v.checkpoints_upto {
            if size > len {
                // Another writer may have appended and signed since `len` was read: checked next time.
                if store.len()? >= size {
                    continue;
                }
                return Err(LedgerError::BadEntry {
                    seq: len + 1,
                    reason: format!("a checkpoint covers {size} entries but only {len} remain: entries were removed"),
                });
            }
            let chain_ok = match size {
                0 => c.head.chain_hash == [0; 32],
                s if s == len => c.head.chain_hash == v.chain,
                s => store.entry(s)?.is_some_and(|e| e.chain_hash == c.head.chain_hash),
            };
            // Heads inside the part this process wrote itself are read from its tiles.
            let root = match roots.get(&size) {
                Some(r) => Some(*r),
                None => v.tree.root(store, size)?,
            };
            if !chain.verify(&c) || root != Some(c.head.root_hash) || !chain_ok {
                return Err(LedgerError::BadEntry {
                    seq: previous + 1,
                    reason: format!(
                        "the checkpoint of {size} entries does not match the log or its signature fails: \
                         entries {}..={size} were rewritten",
                        previous + 1
                    ),
                });
            }
        }
        previous = size;
    }
    v.checkpoints_upto = len;
    Ok(())
}

/// [`Ledger::verify`] with only the public key, so an auditor can check any store (an exported bundle
/// loaded into memory, a copy of the database) without the signing key.
///
/// `public` is the log's genesis key (`ledger.pub`); heads signed by later keys verify through the store's
/// hand-overs, which must lead from it.
pub fn verify_store(store: &dyn Store, public: &PublicKey) -> Result<Verification, LedgerError> {
    let mut problems: Vec<(u64, String)> = Vec::new();
    let chain = KeyChain::from_handovers(*public, store.key_handovers()?).unwrap_or_else(|e| {
        problems.push((1, format!("{e}: the stored key hand-overs do not lead from the given public key")));
        KeyChain::new(*public)
    });
    verify_entries(store, &chain, problems)
}

/// [`verify_store`] against a chain of keys the caller already holds and has checked (an audit bundle's).
pub fn verify_store_with(store: &dyn Store, chain: &KeyChain) -> Result<Verification, LedgerError> {
    verify_entries(store, chain, Vec::new())
}

fn verify_entries(
    store: &dyn Store,
    chain: &KeyChain,
    mut problems: Vec<(u64, String)>,
) -> Result<Verification, LedgerError> {
    let checkpoints = store.checkpoints()?;
    let sizes: BTreeSet<u64> = checkpoints.iter().map(|c| c.head.tree_size).collect();
    // Root and chain head at each signed size, taken as the stream passes it: the tree itself is never held
    // (tiles are compared with the store's and forgotten), so memory does not grow with the log.
    let mut at_size: BTreeMap<u64, (Hash, Hash)> = BTreeMap::new();
    if sizes.contains(&0) {
        at_size.insert(0, (crate::merkle::empty_root(), [0; 32]));
    }
    // Roots from the re-encoded entries; tiles compared with the tree of the stored leaf hashes (what proofs are
    // served from), so an edited entry is named as itself, not as the tile that holds its honest hash.
    let mut tree = Frontier::new();
    let mut stored = TiledTree::new();
    let mut expected = 1u64;
    let keys = chain;
    let mut chain = [0u8; 32];
    let len = store.len()?;
    let mut lo = 1u64;
    loop {
        // The last chunk reaches past the length the store reports, so entries beyond it are still seen.
        let hi = if lo.saturating_add(SCAN_CHUNK) > len { u64::MAX } else { lo + SCAN_CHUNK - 1 };
        store.scan_entries(lo, hi, &mut |s| {
            let seq = s.entry.seq();
            if seq != expected {
                problems.push((expected, format!("event {expected} is missing or out of place (found {seq} there)")));
                expected = seq;
            }
            let leaf = s.entry.leaf_hash()?;
            if leaf != s.leaf_hash {
                // A row whose fields hash as they did one position earlier was pushed
                // down by an event inserted before it.
                let shifted = s.entry.with_seq(seq.wrapping_sub(1));
                let what = match s.entry {
                    crate::event::Entry::Consent(_) => "event",
                    crate::event::Entry::Facts(_) => "member-facts entry",
                };
                if seq > 1 && shifted.leaf_hash()? == s.leaf_hash {
                    let at = seq - 1;
                    problems.push((
                        at,
                        format!("an event was inserted at or before {at}: {what} {seq} was written as {at}"),
                    ));
                } else {
                    problems.push((
                        seq,
                        format!("{what} {seq} was changed after it was written (its leaf hash does not match)"),
                    ));
                }
            }
            chain = chain_hash(&chain, &leaf);
            if chain != s.chain_hash {
                problems.push((seq, format!("the hash chain breaks at event {seq}")));
                chain = s.chain_hash;
            }
            tree.push(leaf);
            stored.push(s.leaf_hash);
            if sizes.contains(&tree.len()) {
                at_size.insert(tree.len(), (tree.root(), chain));
            }
            expected += 1;
            Ok(())
        })?;
        for m in stored.flush(store, Flush::CheckOnly)? {
            problems.push((m.first_seq, m.to_string()));
        }
        if hi == u64::MAX {
            break;
        }
        lo = hi + 1;
    }
    let events = tree.len();
    let mut previous_size = 0;
    for c in &checkpoints {
        let size = c.head.tree_size;
        if let Err(e) = keys.check(c) {
            problems.push((previous_size + 1, format!("checkpoint at {size} events has a bad signature: {e}")));
        }
        match at_size.get(&size) {
            None => problems.push((
                events + 1,
                format!("checkpoint at {size} events, but only {events} remain: events were removed"),
            )),
            Some((root, chain)) if *root != c.head.root_hash || *chain != c.head.chain_hash => {
                // Point at the first event the per-event checks caught in this range, if any.
                let first = problems
                    .iter()
                    .map(|(s, _)| *s)
                    .filter(|s| (previous_size + 1..=size).contains(s))
                    .min()
                    .unwrap_or(previous_size + 1);
                problems.push((
                    first,
                    format!(
                        "checkpoint at {size} events does not match the log: events {}..={size} were rewritten",
                        previous_size + 1
                    ),
                ));
            }
            Some(_) => {}
        }
        previous_size = size;
    }
    problems.sort_by_key(|(s, _)| *s);
    Ok(Verification {
        events,
        checkpoints: checkpoints.len(),
        first_bad_seq: problems.first().map(|(s, _)| *s),
        problems: problems.into_iter().map(|(_, p)| p).collect(),
    })
}

/// Why `member_id` cannot be recorded, if it cannot: the stores keep ids as signed 64-bit integers, so events and
/// member facts refuse the same ids with the same words.
fn id_beyond_storage(member_id: u64) -> Option<String> {
    i64::try_from(member_id)
        .is_err()
        .then(|| format!("member id {member_id} is beyond the largest id the ledger stores ({})", i64::MAX))
}
