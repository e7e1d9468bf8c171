//! The checks, run on a loaded [`Bundle`] — identically offline and online.
//!
//! Nothing derived is trusted: leaf hashes, roots and the chain are rebuilt from event fields
//! ([`consentry_ledger::verify_store`]); every signature is checked with the public key; consent is
//! re-evaluated from the events, the member facts and the policy text ([`Snapshot::build`], i.e.
//! `Policy::evaluate`), never read from a manifest's snapshot; bitmaps are hashed and compared with
//! their commitments; ε is recomputed from each DP record's mechanism (`DpClaim::verify`).

use crate::bundle::{Bundle, DatasetEvidence, ExportInput, ModelEvidence, export};
use crate::models::ModelStatus;
use crate::report::{DatasetSummary, Finding, LedgerSummary, ModelSummary, Report, ViolationKind};
use crate::{AuditError, safe_relative};
use consentry_gate::Manifest;
use consentry_learn::dp::PrivacyClaim;
use consentry_ledger::merkle::Frontier;
use consentry_ledger::witness::WitnessPolicy;
use consentry_ledger::{Hash, KeyChain, LedgerError, PublicKey, SignedTreeHead, Store, verify_store_with};
use consentry_policy::{Action, ConsentEvent, Decision, DenyReason, MemberFacts, Policy, PurposeId};
use roaring::RoaringTreemap;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

/// At most this many findings of one kind per dataset or model are itemised; the rest are counted.
const ITEMISED: usize = 20;
/// Up to this many signed heads, every pair is reported consistent or not; beyond, each consecutive pair and
/// each head with the newest (equivalent, since consistency is transitive).
const ALL_PAIRS_UP_TO: usize = 64;

/// How to audit.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// The time to judge deadlines against (Unix seconds).
    pub now: i64,
    /// The withdrawal deadline; `None`: the one recorded in the bundle.
    pub deadline_seconds: Option<i64>,
    /// Seconds past the deadline still accepted (0: the promise itself). A member removed, or still present,
    /// more than `deadline + tolerance` after withdrawing is a violation.
    pub tolerance_seconds: i64,
    /// Audit only this model (and its dataset); `None`: every model.
    pub model: Option<String>,
    /// The public key the auditor obtained independently; `None`: trust the bundle's.
    pub public_key: Option<PublicKey>,
    /// Signed tree heads the auditor saw earlier (published, or from older bundles).
    pub known_heads: Vec<SignedTreeHead>,
    /// The witnesses whose cosignatures the newest signed tree head needs (none required by default).
    pub witnesses: WitnessPolicy,
}

impl AuditOptions {
    /// Every model, the bundle's deadline and key, judged at `now`.
    pub fn at(now: i64) -> AuditOptions {
        AuditOptions {
            now,
            deadline_seconds: None,
            tolerance_seconds: 0,
            model: None,
            public_key: None,
            known_heads: Vec::new(),
            witnesses: WitnessPolicy::default(),
        }
    }
}

/// The witnesses' verdict on the newest signed tree head: a `witnesses` violation when fewer than
/// `policy.required` trusted witnesses cosigned it, naming who did and did not (nothing when none is required).
fn check_witnesses(bundle: &Bundle, policy: &WitnessPolicy) -> Result<Option<Finding>, AuditError> {
    if policy.required == 0 {
        return Ok(None);
    }
    let Some(sth) = bundle.store.checkpoints()?.pop() else {
        return Ok(Some(Finding::violation(
            ViolationKind::Witnesses,
            "the log has no signed tree head for witnesses to cosign",
            format!("{} cosignature(s)", policy.required),
            "no tree head",
        )));
    };
    let witnessed = bundle.cosignatures.iter().find(|c| c.tree_size == sth.head.tree_size).map(|c| &c.witnessed);
    Ok(policy.check(&sth, witnessed).err().map(|short| {
        let cosigned =
            if short.tally.cosigned.is_empty() { "none".to_string() } else { short.tally.cosigned.join(", ") };
        Finding::violation(
            ViolationKind::Witnesses,
            short.to_string(),
            format!("{} cosignature(s) by trusted witnesses", policy.required),
            format!("{} (cosigned: {cosigned})", short.tally.cosigned.len()),
        )
        .seq(sth.head.tree_size)
    }))
}

/// Opens the bundle at `dir` and checks it.
pub fn audit_bundle(dir: &Path, opts: &AuditOptions) -> Result<Report, AuditError> {
    check_bundle(&Bundle::open(dir)?, opts)
}

/// Exports the live state to a temporary bundle, checks it like an offline auditor would, then checks
/// what only the live files show: dataset files against their manifests, shard files against `model.json`.
pub fn audit_online(input: &ExportInput<'_>, opts: &AuditOptions) -> Result<Report, AuditError> {
    let tmp = tempfile::tempdir().map_err(|e| AuditError::io(&std::env::temp_dir(), e))?;
    let summary = export(input, &tmp.path().join("bundle"))?;
    let bundle = Bundle::open(&summary.dir)?;
    let mut report = check_bundle(&bundle, opts)?;
    report.mode = "online".into();
    let audited: Vec<String> = report.datasets.iter().map(|d| d.name.clone()).collect();
    for name in &audited {
        let Some(dir) = summary.datasets.get(name) else { continue };
        match consentry_gate::verify_files(dir) {
            Ok((_, diffs)) => {
                let n = diffs.len();
                for d in diffs.into_iter().take(ITEMISED) {
                    report.findings.push(
                        Finding::violation(
                            ViolationKind::DatasetFiles,
                            format!("{} differs from the manifest", d.what),
                            d.expected,
                            d.found,
                        )
                        .dataset(name),
                    );
                }
                if n > ITEMISED {
                    report.findings.push(more(ViolationKind::DatasetFiles, n - ITEMISED).dataset(name));
                }
            }
            Err(e) => report.findings.push(
                Finding::violation(ViolationKind::DatasetFiles, "the dataset cannot be read", "a readable dataset", e)
                    .dataset(name),
            ),
        }
    }
    let ids: Vec<String> = report.models.iter().map(|m| m.id.clone()).collect();
    for id in &ids {
        let (Some(dir), Some(entry)) = (summary.models.get(id), bundle.models.iter().find(|m| &m.id == id)) else {
            continue;
        };
        let Some(meta) = entry.meta.as_ref() else { continue };
        // A superseded version has its weights deleted on purpose (see the worker); an absent file is fine there,
        // an altered one never, and a present one is reported (it still holds the removed members' data).
        let may_be_deleted = entry.status != ModelStatus::Live;
        let mut weights_left = Vec::new();
        for s in &meta.shards {
            // The registered hash when there is one (the bundle check already compared model.json with the registry).
            let registered = entry
                .registered
                .as_ref()
                .and_then(|r| r.shards.iter().find(|r| r.index == s.index))
                .map(|r| r.file_blake3.as_str());
            let f = |found: String| {
                Finding::violation(
                    ViolationKind::ShardFileAltered,
                    format!("shard {} file {} differs from model.json", s.index, s.file),
                    format!("BLAKE3 {} ({} bytes)", s.blake3, s.bytes),
                    found,
                )
                .model(id)
            };
            if !safe_relative(&s.file) {
                report.findings.push(f(format!("a path outside the model directory: {}", s.file)));
                continue;
            }
            let path = dir.join(&s.file);
            if may_be_deleted && std::fs::symlink_metadata(&path).is_err() {
                continue;
            }
            if entry.status == ModelStatus::Superseded {
                weights_left.push(s.file.clone());
            }
            match consentry_gate::fsguard::hash_inside(dir, &s.file) {
                Ok((h, bytes)) if h == s.blake3 && bytes == s.bytes && registered.is_none_or(|r| r == h) => {}
                Ok((h, bytes)) if h == s.blake3 && bytes == s.bytes => report.findings.push(
                    Finding::violation(
                        ViolationKind::RegistryMismatch,
                        format!("shard {} file {} is not the file registered for model {id}", s.index, s.file),
                        format!("BLAKE3 {} (registry)", registered.unwrap_or_default()),
                        format!("BLAKE3 {h}"),
                    )
                    .model(id)
                    .file(&s.file),
                ),
                Ok((h, bytes)) => report.findings.push(f(format!("BLAKE3 {h} ({bytes} bytes)"))),
                Err(e) => report.findings.push(f(e.to_string())),
            }
        }
        if !weights_left.is_empty() {
            report.findings.push(
                Finding::violation(
                    ViolationKind::SupersededWeights,
                    format!(
                        "superseded version {id} still holds {} shard weight file(s) ({}): they carry the data of \
                         the members unlearning removed; run `consentry unlearn` to finish the deletion",
                        weights_left.len(),
                        weights_left.join(", ")
                    ),
                    "no shard weights (deleted after the swap)",
                    format!("{} file(s) present", weights_left.len()),
                )
                .model(id),
            );
        }
    }
    report.finish();
    Ok(report)
}

fn more(kind: ViolationKind, n: usize) -> Finding {
    Finding::violation(kind, format!("{n} more findings of this kind (not itemised)"), "none", format!("{n} more"))
}

/// The ledger, rebuilt once by streaming it and shared by the checks: a root per size a check asks about and
/// per-member facts, nothing per event, so the audit's memory does not grow with the log.
struct LedgerState {
    /// Entries streamed, consent events and member facts alike: the rebuilt tree's size.
    len: u64,
    /// The rebuilt tree's root at every size a check asks about (signed heads, held heads, dataset positions).
    roots: BTreeMap<u64, Hash>,
    /// The recorded time of the entry after each dataset's position (the log had moved on from then).
    recorded: BTreeMap<u64, i64>,
    /// The member directory's facts resolved under the bundle's policy (empty without a policy).
    facts: BTreeMap<u64, MemberFacts>,
}

impl LedgerState {
    /// The rebuilt tree's root at `size`; `None` beyond the log.
    fn root(&self, size: u64) -> Option<Hash> {
        if size > self.len { None } else { self.roots.get(&size).copied() }
    }
}

/// Runs every check on a loaded bundle.
pub fn check_bundle(bundle: &Bundle, opts: &AuditOptions) -> Result<Report, AuditError> {
    let deadline = opts.deadline_seconds.unwrap_or(bundle.deadline_seconds);
    let mut findings = bundle.findings.clone();
    let selected: Vec<&ModelEvidence> = match &opts.model {
        None => bundle.models.iter().collect(),
        Some(id) => match bundle.models.iter().find(|m| &m.id == id) {
            Some(m) => vec![m],
            None => {
                return Err(AuditError::UnknownModel {
                    id: id.clone(),
                    known: bundle.models.iter().map(|m| m.id.as_str()).collect::<Vec<_>>().join(", "),
                });
            }
        },
    };

    let key = match (opts.public_key, bundle.public_key) {
        (Some(pinned), Some(bundled)) if pinned != bundled => {
            findings.push(Finding::violation(
                ViolationKind::PublicKeyMismatch,
                "the bundle's public key is not the one you pinned; checking with yours",
                pinned.to_hex(),
                bundled.to_hex(),
            ));
            Some(pinned)
        }
        (Some(k), _) | (None, Some(k)) => Some(k),
        (None, None) => None,
    };
    // Heads and records signed after a key rotation verify through the bundle's hand-overs from the genesis key.
    let key: Option<KeyChain> = match key {
        None => None,
        Some(k) => match KeyChain::from_handovers(k, bundle.store.key_handovers()?) {
            Ok(chain) => Some(chain),
            Err(e) => {
                findings.push(Finding::violation(
                    ViolationKind::LedgerTampered,
                    format!("{e}: the bundle's key hand-overs do not lead from the public key"),
                    "hand-overs each signed by the key in force and the key taking over",
                    "a hand-over that does not verify",
                ));
                Some(KeyChain::new(k))
            }
        },
    };
    let (ledger_summary, mut state) = check_ledger(bundle, key.as_ref(), &opts.known_heads, &mut findings)?;
    findings.extend(check_witnesses(bundle, &opts.witnesses)?);

    let policy = match &bundle.policy_text {
        Some(text) => match Policy::from_toml(crate::bundle::POLICY_FILE, text) {
            Ok(p) => Some(p),
            Err(e) => {
                findings.push(
                    Finding::violation(
                        ViolationKind::UnreadableFile,
                        "the policy does not compile, so consent cannot be recomputed",
                        "a valid policy",
                        e,
                    )
                    .file(crate::bundle::POLICY_FILE),
                );
                None
            }
        },
        None => None,
    };
    // Earlier policies that do not compile are left out: a dataset naming one is then a policy mismatch.
    let earlier: Vec<Policy> = bundle
        .earlier_policies
        .iter()
        .filter_map(|t| Policy::from_toml(crate::bundle::EARLIER_POLICIES_FILE, t).ok())
        .collect();
    if let Some(policy) = &policy {
        state.facts = bundle
            .store
            .members()?
            .into_iter()
            .map(|m| {
                let jurisdiction = policy.resolve_jurisdiction(&m.jurisdiction);
                (m.member_id, MemberFacts { jurisdiction, birth_date: m.birth_date })
            })
            .collect();
    }

    // Datasets: every one when auditing everything, else those the selected models use.
    let wanted: Vec<&DatasetEvidence> = if opts.model.is_none() {
        bundle.datasets.iter().collect()
    } else {
        bundle
            .datasets
            .iter()
            .filter(|d| {
                selected
                    .iter()
                    .any(|m| m.meta.as_ref().is_some_and(|meta| meta.dataset.manifest_blake3 == d.manifest_blake3))
            })
            .collect()
    };
    let mut datasets = Vec::new();
    for d in wanted {
        // A dataset cut before a notice was published names an earlier policy: its consent is recomputed under
        // that one (found by the hash the manifest records, so the text is the one the gate used).
        let own = d.manifest.as_ref().and_then(|m| {
            earlier
                .iter()
                .find(|p| policy.as_ref().is_some_and(|cur| cur.hash != m.policy.hash) && p.hash == m.policy.hash)
        });
        if let Some(summary) = check_dataset(bundle, d, &state, key.as_ref(), own.or(policy.as_ref()), &mut findings)? {
            datasets.push(summary);
        }
    }

    for m in &selected {
        findings.extend(registry_signature(bundle, m, key.as_ref()).into_iter().map(|f| f.model(&m.id)));
    }
    let tolerance = opts.tolerance_seconds.max(0);
    let allowed = deadline.saturating_add(tolerance);
    let mut models = Vec::new();
    for m in &selected {
        if let Some(s) = check_model(bundle, m, &state, policy.as_ref(), opts.now, allowed, &mut findings)? {
            models.push(s);
        }
    }
    if let Some(policy) = &policy {
        let window = Window { deadline, tolerance };
        check_late_removals(bundle, &state, policy, &selected, window, key.as_ref(), &mut findings)?;
    }

    if opts.model.is_none() {
        check_registry_records(bundle, &state, key.as_ref(), &mut findings);
    }

    let mut report = Report {
        mode: "bundle".into(),
        now: opts.now,
        deadline_seconds: deadline,
        tolerance_seconds: tolerance,
        ok: true,
        violations: 0,
        ledger: ledger_summary,
        datasets,
        models,
        findings,
    };
    report.finish();
    Ok(report)
}

/// (f) What the registry records beside the models: model directories it does not know, and ledger positions it
/// cites beyond the end of the log (a rolled-back log would let the unlearning cursor skip withdrawals).
fn check_registry_records(bundle: &Bundle, state: &LedgerState, key: Option<&KeyChain>, findings: &mut Vec<Finding>) {
    for d in &bundle.registered_datasets {
        let problem = match key {
            None => Some("no public key to check it with".to_string()),
            Some(k) => consentry_lineage::signing::dataset_problem(k, d),
        };
        if let Some(problem) = problem {
            let name = bundle
                .datasets
                .iter()
                .find(|e| e.manifest_blake3 == d.id)
                .map_or_else(|| d.dir.clone(), |e| e.name.clone());
            findings.push(
                Finding::violation(
                    ViolationKind::RegistrySignature,
                    format!(
                        "the registry's record of dataset {} is not signed by the ledger's key: the registry row was \
                         altered or made without the signing key",
                        d.id
                    ),
                    "a registration signed by the ledger's key",
                    problem,
                )
                .dataset(&name),
            );
        }
    }
    for dir in &bundle.unregistered {
        findings.push(Finding::violation(
            ViolationKind::UnregisteredModel,
            format!(
                "model directory {dir} is not in the lineage registry: no withdrawal reaches it; register it \
                     (`consentry lineage register-model`) or remove it"
            ),
            "every model directory registered",
            format!("{dir} unregistered"),
        ));
    }
    // Positions count entries of both kinds (consent events and member facts).
    let len = state.len;
    for c in &bundle.cited_positions {
        if c.position > len {
            findings.push(
                Finding::violation(
                    ViolationKind::PositionBeyondLog,
                    format!(
                        "{} cites ledger position {}, but the log has only {len} entries: the log was rolled back \
                     or replaced",
                        c.what, c.position
                    ),
                    format!("a position ≤ {len}"),
                    c.position,
                )
                .seq(c.position),
            );
        }
    }
}

/// (a) The log: chain, leaves, tree, every signature, consistency of every head with every earlier one,
/// and with the heads the auditor holds. One stream of the log rebuilds the tree's right edge ([`Frontier`]) and
/// keeps its root at each size asked about: every signed head whose root is the stream's root at its size is
/// consistent with every other such head, so no tree is held.
fn check_ledger(
    bundle: &Bundle,
    key: Option<&KeyChain>,
    known: &[SignedTreeHead],
    findings: &mut Vec<Finding>,
) -> Result<(LedgerSummary, LedgerState), AuditError> {
    let store = &bundle.store;
    let checkpoints = store.checkpoints()?;
    let mut summary = LedgerSummary {
        checkpoints: checkpoints.len(),
        members: store.members()?.len() as u64,
        known_heads: known.len(),
        ..LedgerSummary::default()
    };
    match key {
        Some(k) => {
            // A bundle can hold an event the encoding refuses (a field over 65535 bytes): a finding, not an error.
            let v = verify_store_with(store, k).unwrap_or_else(|e| consentry_ledger::Verification {
                events: 0,
                checkpoints: checkpoints.len(),
                first_bad_seq: None,
                problems: vec![format!("the log cannot be rebuilt: {e}")],
            });
            summary.events = v.events;
            for (i, p) in v.problems.iter().enumerate() {
                let mut f = Finding::violation(
                    ViolationKind::LedgerTampered,
                    p.clone(),
                    "stored fields that hash to the stored leaves, chain and signed tree heads",
                    p,
                );
                if i == 0
                    && let Some(s) = v.first_bad_seq
                {
                    f = f.seq(s);
                }
                findings.push(f);
            }
        }
        None => findings.push(Finding::violation(
            ViolationKind::UnreadableFile,
            "no public key: no signature can be checked",
            "the ledger's Ed25519 public key",
            "none",
        )),
    }

    // The sizes whose roots the checks compare, and the entries whose recorded time a dataset's time check reads.
    let manifests = bundle.datasets.iter().filter_map(|d| d.manifest.as_ref());
    let mut sizes: BTreeSet<u64> = checkpoints.iter().chain(known).map(|h| h.head.tree_size).collect();
    let mut next: BTreeSet<u64> = BTreeSet::new();
    for m in manifests {
        sizes.insert(m.ledger.position);
        sizes.extend(m.ledger.checkpoint.as_ref().map(|h| h.head.tree_size));
        next.extend(m.ledger.position.checked_add(1));
    }
    // The tree over every entry (consent events and member facts), from the re-encoded fields, streamed.
    let mut frontier = Frontier::new();
    let mut roots: BTreeMap<u64, Hash> = BTreeMap::new();
    if sizes.contains(&0) {
        roots.insert(0, frontier.root());
    }
    // Per position: its recorded time, and whether a consent event gave it (one wins over member facts, as
    // `Store::entry` looks for an event first).
    let mut recorded: BTreeMap<u64, (i64, bool)> = BTreeMap::new();
    store.scan_entries(1, u64::MAX, &mut |s| {
        let seq = s.entry.seq();
        if next.contains(&seq) {
            let is_event = matches!(s.entry, consentry_ledger::Entry::Consent(_));
            let slot = recorded.entry(seq).or_insert((s.entry.recorded_time(), is_event));
            if is_event && !slot.1 {
                *slot = (s.entry.recorded_time(), true);
            }
        }
        match s.entry.leaf_hash() {
            Ok(h) => frontier.push(h),
            Err(err) => {
                findings.push(
                    Finding::violation(
                        ViolationKind::LedgerTampered,
                        "an entry cannot be encoded",
                        "an encodable entry",
                        err,
                    )
                    .seq(seq),
                );
                frontier.push(s.leaf_hash);
            }
        }
        if sizes.contains(&frontier.len()) {
            roots.insert(frontier.len(), frontier.root());
        }
        Ok(())
    })?;
    let state = LedgerState {
        len: frontier.len(),
        roots,
        recorded: recorded.into_iter().map(|(seq, (t, _))| (seq, t)).collect(),
        facts: BTreeMap::new(),
    };
    summary.events = summary.events.max(state.len);

    // Consistency of the signed heads with each other: a pair is consistent when both roots are the rebuilt log's
    // at their sizes (what an RFC 9162 proof from the rebuilt tree would show), or, of one size, when they agree.
    let n = checkpoints.len();
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    if n <= ALL_PAIRS_UP_TO {
        for j in 0..n {
            for i in 0..j {
                pairs.push((i, j));
            }
        }
    } else {
        for j in 1..n {
            pairs.push((j - 1, j));
            if j + 1 < n {
                pairs.push((j - 1, n - 1));
            }
        }
    }
    let logs = |h: &consentry_ledger::TreeHead| state.root(h.tree_size) == Some(h.root_hash);
    for (i, j) in pairs {
        let (a, b) = (&checkpoints[i].head, &checkpoints[j].head);
        if a.tree_size == 0 {
            continue;
        }
        summary.consistency_proofs += 1;
        let ok = match a.tree_size.cmp(&b.tree_size) {
            std::cmp::Ordering::Equal => b.tree_size <= state.len && a.root_hash == b.root_hash,
            std::cmp::Ordering::Less => logs(a) && logs(b),
            std::cmp::Ordering::Greater => false,
        };
        if !ok {
            findings.push(
                Finding::violation(
                    ViolationKind::InconsistentHeads,
                    format!(
                        "the signed head of {} events is not consistent with the signed head of {} events",
                        a.tree_size, b.tree_size
                    ),
                    "a verifying RFC 9162 consistency proof from the log",
                    "no proof verifies: the log was rewritten between them",
                )
                .seq(a.tree_size + 1),
            );
        }
    }
    for h in known {
        let size = h.head.tree_size;
        let Some(problem) = head_problem(h, &state, key) else { continue };
        findings.push(match problem {
            HeadProblem::BadSignature => Finding::violation(
                ViolationKind::InconsistentHeads,
                format!("a head you hold ({size} events) is not signed by this ledger's key"),
                "a valid signature",
                "a bad signature or another log",
            ),
            HeadProblem::RootDiffers(r) => Finding::violation(
                ViolationKind::InconsistentHeads,
                format!("the log no longer has the history of the head you hold ({size} events)"),
                hex::encode(h.head.root_hash),
                hex::encode(r),
            )
            .seq(size),
            HeadProblem::BeyondLog => Finding::violation(
                ViolationKind::InconsistentHeads,
                format!("you hold a head of {size} events but the log has only {}: events were removed", state.len),
                format!("at least {size} events"),
                state.len,
            ),
        });
    }
    let signed = checkpoints.last().map_or(0, |c| c.head.tree_size);
    if signed < state.len {
        findings.push(Finding::note(format!(
            "events {}..={} are not covered by a signed tree head yet; only their stored hashes vouch for them",
            signed + 1,
            state.len
        )));
    }
    Ok((summary, state))
}

/// Why a signed tree head does not vouch for the rebuilt log.
enum HeadProblem {
    /// Not signed by the ledger's key.
    BadSignature,
    /// The log's root at the head's size is this one, not the head's.
    RootDiffers(consentry_ledger::Hash),
    /// The log is shorter than the head.
    BeyondLog,
}

/// A signed head against the rebuilt log: its signature (when there is a key), then the log's root at its size.
fn head_problem(sth: &SignedTreeHead, state: &LedgerState, key: Option<&KeyChain>) -> Option<HeadProblem> {
    if key.is_some_and(|k| !k.verify(sth)) {
        return Some(HeadProblem::BadSignature);
    }
    match state.root(sth.head.tree_size) {
        Some(r) if r == sth.head.root_hash => None,
        Some(r) => Some(HeadProblem::RootDiffers(r)),
        None => Some(HeadProblem::BeyondLog),
    }
}

/// A bitmap against the commitment that names it (BLAKE3 of its bytes and member count); `message` says which.
fn commitment_mismatch(
    message: String,
    commitment: &str,
    count: u64,
    bitmap: &RoaringTreemap,
    hash: &str,
) -> Option<Finding> {
    (hash != commitment || bitmap.len() != count).then(|| {
        Finding::violation(
            ViolationKind::CommitmentMismatch,
            message,
            format!("BLAKE3 {commitment} ({count} members)"),
            format!("BLAKE3 {hash} ({} members)", bitmap.len()),
        )
    })
}

/// `current` and `next` (later in the log) folded by the policy's own rule ([`Policy::deciding_event`]): which of
/// them decides consent at `at`. The rule looks at one event against the one deciding so far, so folding a
/// member's events in log order gives the event that decides over their whole history.
fn fold_deciding<T: Copy>(
    policy: &Policy,
    pid: PurposeId,
    at: i64,
    current: Option<(ConsentEvent, T)>,
    next: (ConsentEvent, T),
) -> Option<(ConsentEvent, T)> {
    match current {
        None => policy.deciding_event(pid, &[next.0], at).map(|_| next),
        Some(c) => match policy.deciding_event(pid, &[c.0, next.0], at) {
            Some(1) => Some(next),
            _ => Some(c),
        },
    }
}

/// The latest event of a member for a purpose: its sequence number, action and event time.
type LastEvent = (u64, Action, i64);

/// One member's consent for a dataset's purpose at its position and time: the deciding event and the latest one.
#[derive(Debug, Clone, Copy, Default)]
struct AtPosition {
    deciding: Option<(ConsentEvent, ())>,
    last: Option<LastEvent>,
}

/// What `Snapshot::build` recomputes for a dataset, streamed from the log with per-member state (the member
/// directory at the position and each member's deciding and latest event), never a member's whole history.
struct Recomputed {
    /// The members allowed at the position and time.
    allowed: RoaringTreemap,
    /// The member directory at the position.
    directory: BTreeMap<u64, MemberFacts>,
    /// Per member with events for the purpose: the deciding and the latest one.
    members: HashMap<u64, AtPosition>,
}

impl Recomputed {
    /// Every member's consent for `pid` at `position` and `at`, from the bundle's events and member facts.
    fn build(store: &dyn Store, policy: &Policy, pid: PurposeId, position: u64, at: i64) -> Result<Self, LedgerError> {
        let key = policy.purpose(pid).key.as_str();
        let mut directory = BTreeMap::new();
        store.scan_member_facts(position, &mut |id, code, birth_date| {
            directory.insert(id, MemberFacts { jurisdiction: policy.resolve_jurisdiction(code), birth_date });
        })?;
        let mut members: HashMap<u64, AtPosition> = HashMap::new();
        store.scan(1, position, &mut |e| {
            let b = &e.event.body;
            if b.purpose == key {
                let slot = members.entry(b.member_id).or_default();
                slot.deciding = fold_deciding(policy, pid, at, slot.deciding, (b.consent(), ()));
                slot.last = Some((e.event.seq, b.action, b.event_time));
            }
            Ok(())
        })?;
        let mut allowed = RoaringTreemap::new();
        for (id, facts) in &directory {
            let deciding = members.get(id).and_then(|s| s.deciding).map(|(c, ())| c);
            if policy.evaluate(pid, facts, deciding.as_slice(), at).is_allowed() {
                allowed.insert(*id);
            }
        }
        Ok(Recomputed { allowed, directory, members })
    }

    /// Why `member` is denied (`None`: allowed, or not in the member directory).
    fn reason(&self, policy: &Policy, pid: PurposeId, member: u64, at: i64) -> Option<DenyReason> {
        let facts = self.directory.get(&member)?;
        let deciding = self.members.get(&member).and_then(|s| s.deciding).map(|(c, ())| c);
        match policy.evaluate(pid, facts, deciding.as_slice(), at) {
            Decision::Allowed(_) => None,
            Decision::Denied(r) => Some(r),
        }
    }

    /// BLAKE3 of the allowed bitmap's portable serialisation, as `Snapshot::allowed_bytes` hashes it.
    fn allowed_hash(&self) -> Option<String> {
        let mut h = blake3::Hasher::new();
        self.allowed.serialize_into(&mut h).ok()?;
        Some(h.finalize().to_hex().to_string())
    }
}

/// (b, d) One dataset: its bitmap against its commitment, its ledger reference against the log, and
/// every member's consent recomputed at its position.
fn check_dataset(
    bundle: &Bundle,
    d: &DatasetEvidence,
    state: &LedgerState,
    key: Option<&KeyChain>,
    policy: Option<&Policy>,
    findings: &mut Vec<Finding>,
) -> Result<Option<DatasetSummary>, AuditError> {
    let Some(m) = &d.manifest else { return Ok(None) };
    let name = d.name.as_str();
    let v = |kind, msg: String, e: String, f: String| Finding::violation(kind, msg, e, f).dataset(name);
    for t in time_findings(state, m) {
        findings.push(t.dataset(name));
    }
    let mut summary = DatasetSummary {
        name: name.to_string(),
        purpose: m.purpose.clone(),
        position: m.ledger.position,
        members: 0,
        allowed_recomputed: 0,
    };
    let Some((members, hash)) = &d.members else { return Ok(Some(summary)) };
    summary.members = members.len();
    findings.extend(
        commitment_mismatch(
            "members.roaring does not match the manifest's member-set commitment".into(),
            &m.members.commitment,
            m.members.count,
            members,
            hash,
        )
        .map(|f| f.dataset(name)),
    );
    let position = m.ledger.position;
    let Some(root) = state.root(position) else {
        findings.push(v(
            ViolationKind::LedgerPositionMismatch,
            format!("the manifest claims ledger position {position}, beyond the log"),
            format!("at least {position} events"),
            state.len.to_string(),
        ));
        return Ok(Some(summary));
    };
    if hex::encode(root) != m.ledger.tree_root {
        findings.push(
            v(
                ViolationKind::LedgerPositionMismatch,
                format!("the manifest's Merkle root at position {position} is not the log's"),
                m.ledger.tree_root.clone(),
                hex::encode(root),
            )
            .seq(position),
        );
    }
    if let Some(sth) = &m.ledger.checkpoint {
        check_manifest_head(name, sth, position, state, key, findings);
    }
    let Some(policy) = policy else { return Ok(Some(summary)) };
    if m.policy.hash != policy.hash {
        findings.push(v(
            ViolationKind::PolicyMismatch,
            "the dataset was cut under another policy than the bundle's; its consent cannot be recomputed".into(),
            format!("policy {} (BLAKE3 {})", m.policy.version, m.policy.hash),
            format!("policy {} (BLAKE3 {})", policy.version, policy.hash),
        ));
        return Ok(Some(summary));
    }
    let Some(pid) = policy.purpose_id(&m.purpose) else {
        findings.push(v(
            ViolationKind::PolicyMismatch,
            format!("the policy has no purpose `{}`", m.purpose),
            "a declared purpose".into(),
            m.purpose.clone(),
        ));
        return Ok(Some(summary));
    };
    let snap = Recomputed::build(&bundle.store, policy, pid, position, m.ledger.at)?;
    let allowed = &snap.allowed;
    let refused = members - allowed;
    summary.allowed_recomputed = members.len() - refused.len();
    for member in refused.iter().take(ITEMISED) {
        let reason =
            snap.reason(policy, pid, member, m.ledger.at).map_or("not in the member directory", DenyReason::as_str);
        let last = snap.members.get(&member).and_then(|s| s.last);
        let found = match last {
            Some((seq, action, at)) => format!("denied ({reason}); latest event: seq {seq}, {action:?} at {at}"),
            None => format!("denied ({reason}); no event for this purpose"),
        };
        let mut f = v(
            ViolationKind::MemberNotAllowed,
            format!("member {member} is in the dataset but was not allowed for {} at its ledger position", m.purpose),
            format!("allowed at position {position}, time {}", m.ledger.at),
            found,
        )
        .member(member);
        if let Some((seq, _, _)) = last {
            f = f.seq(seq);
        }
        findings.push(f);
    }
    if refused.len() as usize > ITEMISED {
        findings.push(more(ViolationKind::MemberNotAllowed, refused.len() as usize - ITEMISED).dataset(name));
    }
    if let Some(h) = snap.allowed_hash()
        && h != m.snapshot.hash
    {
        findings.push(
            Finding::note(format!(
                "the recomputed snapshot ({} allowed) differs from the one the manifest records ({} allowed); \
                 the member directory may have changed since",
                allowed.len(),
                m.snapshot.allowed
            ))
            .dataset(name),
        );
    }
    Ok(Some(summary))
}

/// A dataset's evaluation time against its creation, the present and the log (what
/// [`consentry_gate::verify_times`] checks, with the next entry's recorded time taken from the one stream of the
/// log): consent evaluated in the future counts today's minors as adults. The present is this machine's clock, not
/// `--now` (which judges deadlines): a time in the future is one whatever moment the auditor judges.
fn time_findings(state: &LedgerState, m: &Manifest) -> Vec<Finding> {
    let next = m.ledger.position.checked_add(1).and_then(|seq| state.recorded.get(&seq).copied());
    m.time_differences(consentry_ledger::now(), next)
        .into_iter()
        .map(|d| {
            Finding::violation(
                ViolationKind::EvaluationTime,
                format!("the dataset's {} is not trustworthy: consent may have been judged in the future", d.what),
                d.expected,
                d.found,
            )
            .seq(m.ledger.position)
        })
        .collect()
}

/// The signed head a manifest carries: signed by the key, covering the position, and the log's.
fn check_manifest_head(
    name: &str,
    sth: &SignedTreeHead,
    position: u64,
    state: &LedgerState,
    key: Option<&KeyChain>,
    findings: &mut Vec<Finding>,
) {
    let size = sth.head.tree_size;
    let problem = match head_problem(sth, state, key) {
        Some(HeadProblem::BadSignature) => {
            Some(("a valid signature by the ledger's key".to_string(), "a bad signature".to_string()))
        }
        _ if size < position => {
            Some((format!("a head covering position {position}"), format!("a head of {size} events")))
        }
        Some(HeadProblem::RootDiffers(r)) => Some((hex::encode(sth.head.root_hash), hex::encode(r))),
        Some(HeadProblem::BeyondLog) => Some((format!("{size} events in the log"), state.len.to_string())),
        None => None,
    };
    if let Some((expected, found)) = problem {
        findings.push(
            Finding::violation(
                ViolationKind::InconsistentHeads,
                format!("the signed head in the manifest ({size} events) does not vouch for this log"),
                expected,
                found,
            )
            .dataset(name),
        );
    }
}

/// The dataset a model names, by the BLAKE3 of its manifest.
fn dataset_of<'a>(bundle: &'a Bundle, blake3: &str) -> Option<&'a DatasetEvidence> {
    bundle.datasets.iter().find(|d| d.manifest_blake3 == blake3)
}

/// (b, c, d, e) One model: its dataset reference, shard bitmaps inside the dataset minus the excluded,
/// the shard function, withdrawals past the deadline (live models) and its DP record.
fn check_model(
    bundle: &Bundle,
    m: &ModelEvidence,
    state: &LedgerState,
    policy: Option<&Policy>,
    now: i64,
    deadline: i64,
    findings: &mut Vec<Finding>,
) -> Result<Option<ModelSummary>, AuditError> {
    let Some(meta) = m.meta.as_ref() else { return Ok(None) };
    let id = m.id.as_str();
    let v = |kind, msg: String, e: String, f: String| Finding::violation(kind, msg, e, f).model(id);
    let mut summary = ModelSummary {
        id: id.to_string(),
        status: m.status.as_str().to_string(),
        purpose: meta.purpose.clone(),
        dataset: None,
        members: 0,
        excluded: 0,
        pending_withdrawals: 0,
    };
    let dataset = dataset_of(bundle, &meta.dataset.manifest_blake3);
    let manifest: Option<&Manifest> = dataset.and_then(|d| d.manifest.as_ref());
    let dataset_members = dataset.and_then(|d| d.members.as_ref()).map(|(b, _)| b);
    match (dataset, manifest) {
        (None, _) => findings.push(v(
            ViolationKind::DatasetMismatch,
            "the model's dataset is not in the bundle: nothing shows its members consented".into(),
            format!("a dataset whose manifest has BLAKE3 {}", meta.dataset.manifest_blake3),
            "none".into(),
        )),
        (Some(d), Some(man)) => {
            summary.dataset = Some(d.name.clone());
            for t in time_findings(state, man) {
                findings.push(t.model(id).dataset(&d.name));
            }
            let checks = [
                ("purpose", man.purpose.clone(), meta.purpose.clone()),
                ("member-set commitment", man.members.commitment.clone(), meta.dataset.members_commitment.clone()),
                ("ledger position", man.ledger.position.to_string(), meta.dataset.ledger_position.to_string()),
                ("shard function", format!("{:?}", man.shard), format!("{:?}", meta.shard_function)),
            ];
            for (what, expected, found) in checks {
                if expected != found {
                    findings.push(
                        v(
                            ViolationKind::DatasetMismatch,
                            format!("model.json's {what} differs from its dataset's manifest"),
                            expected,
                            found,
                        )
                        .dataset(&d.name),
                    );
                }
            }
        }
        (Some(d), None) => summary.dataset = Some(d.name.clone()),
    }

    // Excluded members (unlearning), checked against their commitment.
    let mut excluded = RoaringTreemap::new();
    if let Some(u) = &meta.unlearning {
        match m.bitmaps.get(&u.file) {
            Some((b, h)) => {
                findings.extend(
                    commitment_mismatch(
                        format!("{} does not match model.json's commitment", u.file),
                        &u.commitment,
                        u.excluded,
                        b,
                        h,
                    )
                    .map(|f| f.model(id)),
                );
                excluded = b.clone();
            }
            None => findings.push(v(
                ViolationKind::BundleFileMissing,
                format!("the excluded-member bitmap {} is not in the bundle", u.file),
                "present".into(),
                "absent".into(),
            )),
        }
    }
    summary.excluded = excluded.len();

    // Shards: bitmap commitments, inside dataset minus excluded, on the right shard.
    let mut union = RoaringTreemap::new();
    let mut in_shard: Vec<(u32, &RoaringTreemap)> = Vec::new();
    let mut membership = 0usize;
    for s in &meta.shards {
        let Some((b, h)) = m.bitmaps.get(&s.members_file) else {
            findings.push(v(
                ViolationKind::BundleFileMissing,
                format!("shard {}'s member bitmap {} is not in the bundle", s.index, s.members_file),
                "present".into(),
                "absent".into(),
            ));
            continue;
        };
        findings.extend(
            commitment_mismatch(
                format!("shard {}'s member bitmap does not match model.json", s.index),
                &s.members_commitment,
                s.members,
                b,
                h,
            )
            .map(|f| f.model(id)),
        );
        let mut push = |member: u64, msg: String, expected: String, found: String| {
            membership += 1;
            if membership <= ITEMISED {
                findings.push(v(ViolationKind::ShardMembership, msg, expected, found).member(member));
            }
        };
        if let Some(dm) = dataset_members {
            for member in (b - dm).iter() {
                push(
                    member,
                    format!("shard {} holds member {member}, who is not in the model's dataset", s.index),
                    "a member of the dataset".into(),
                    "absent from members.roaring".into(),
                );
            }
        }
        for member in (b & &excluded).iter() {
            push(
                member,
                format!("shard {} holds member {member}, whom unlearning excluded", s.index),
                "not in excluded.roaring".into(),
                "in excluded.roaring".into(),
            );
        }
        for member in b.iter() {
            match meta.shard_function.shard_of(member) {
                Some(i) if i == s.index => {}
                other => push(
                    member,
                    format!("member {member} is in shard {} but the shard function puts them elsewhere", s.index),
                    format!("shard {}", s.index),
                    format!("{other:?}"),
                ),
            }
        }
        union |= b;
        in_shard.push((s.index, b));
    }
    if membership > ITEMISED {
        findings.push(more(ViolationKind::ShardMembership, membership - ITEMISED).model(id));
    }
    summary.members = union.len();

    if m.status == ModelStatus::Live
        && let (Some(policy), Some(man)) = (policy, manifest)
        && let Some(pid) = policy.purpose_id(&meta.purpose)
    {
        let (missed, pending) =
            check_withdrawals(&bundle.store, state, policy, pid, man, &in_shard, now, deadline, id, findings)?;
        summary.pending_withdrawals = pending;
        if missed > ITEMISED {
            findings.push(more(ViolationKind::WithdrawalDeadlineMissed, missed - ITEMISED).model(id));
        }
        if pending > 0 {
            findings.push(
                Finding::note(format!(
                    "{pending} withdrawn member(s) still in the model within the {deadline} s deadline"
                ))
                .model(id),
            );
        }
    }

    findings.extend(registry_binding(m).into_iter().map(|f| f.model(id)));

    // The DP record, checked by the code that wrote it (`DpClaim::verify`, as `consentry dp model` does).
    let dp_problem = match meta.privacy_claim() {
        Err(e) => Some(("the DP record cannot be read", "a DP record as `consentry train` writes it", e)),
        Ok(PrivacyClaim::None) => None,
        Ok(PrivacyClaim::Dp(c)) => c.verify().err().map(|e| {
            ("the model claims more privacy than its DP record proves", "an ε its recorded mechanism gives", e)
        }),
    };
    if let Some((message, expected, found)) = dp_problem {
        findings.push(Finding::violation(ViolationKind::DpRecord, message, expected, found).model(id));
    }
    Ok(Some(summary))
}

/// (b'') A registered model's record against its signature by the ledger's key ([`consentry_lineage::signing`],
/// checked with the public key only): the id and shard hashes that (b') compares the files with are the ones the
/// key signed; the dataset the signed record names is the one `model.json` names; and a live version is not one
/// that another signed record names as the version it replaced (a superseded version revived in the registry).
fn registry_signature(bundle: &Bundle, m: &ModelEvidence, key: Option<&KeyChain>) -> Vec<Finding> {
    let Some(reg) = &m.registered else { return Vec::new() };
    let mut out = Vec::new();
    let problem = match key {
        None => Some("no public key to check it with".to_string()),
        Some(k) => consentry_lineage::signing::model_problem(k, reg),
    };
    if let Some(problem) = problem {
        out.push(Finding::violation(
            ViolationKind::RegistrySignature,
            format!(
                "the registry's record of model {} (its id and shard hashes) is not signed by the ledger's key: the \
                 registry row was altered or made without the signing key",
                reg.id
            ),
            "a registration signed by the ledger's key",
            problem,
        ));
    }
    if let Some(meta) = &m.meta
        && meta.dataset.manifest_blake3 != reg.dataset
    {
        out.push(Finding::violation(
            ViolationKind::RegistryMismatch,
            format!("model.json names another dataset than the registered record of model {}", reg.id),
            format!("dataset {} (registry)", reg.dataset),
            format!("dataset {}", meta.dataset.manifest_blake3),
        ));
    }
    if m.status == ModelStatus::Live
        && let Some(next) = bundle.models.iter().filter_map(|o| o.registered.as_ref()).find(|o| {
            o.supersedes.as_deref() == Some(reg.id.as_str())
                && key.is_some_and(|k| consentry_lineage::signing::model_problem(k, o).is_none())
        })
    {
        out.push(Finding::violation(
            ViolationKind::RegistrySignature,
            format!(
                "model {} is live in the registry, but the signed record of version {} ({}) says it replaced it: its \
                 status was altered",
                reg.id, next.version, next.id
            ),
            "superseded",
            "live",
        ));
    }
    out
}

/// (b') A registered model's evidence against what the registry recorded: `model.json`'s BLAKE3 against the id
/// (so an edited `dp` record, metrics or shard hash is caught), each shard's file hash in `model.json` and each
/// member bitmap's BLAKE3 against the registered hashes. The shard files themselves are checked online.
fn registry_binding(m: &ModelEvidence) -> Vec<Finding> {
    let Some(reg) = &m.registered else { return Vec::new() };
    let mismatch = |file: &str, expected: &str, found: &str| {
        Finding::violation(
            ViolationKind::RegistryMismatch,
            format!("{file} is not the file registered for model {}", reg.id),
            format!("BLAKE3 {expected} (registry)"),
            format!("BLAKE3 {found}"),
        )
        .file(file)
    };
    let mut out = Vec::new();
    match &m.model_json_blake3 {
        Some(h) if h == &reg.id => {}
        Some(h) => {
            out.push(mismatch(consentry_learn::model::MODEL_FILE, &reg.id, h));
            return out;
        }
        None => return out, // reported as missing by loading
    }
    let Some(meta) = &m.meta else { return out };
    for r in &reg.shards {
        let Some(s) = meta.shards.iter().find(|s| s.index == r.index) else {
            out.push(mismatch(&format!("shard {}", r.index), &r.file_blake3, "absent from model.json"));
            continue;
        };
        if s.blake3 != r.file_blake3 {
            out.push(mismatch(&s.file, &r.file_blake3, &s.blake3));
        }
        if let Some((_, h)) = m.bitmaps.get(&s.members_file)
            && h != &r.members_blake3
        {
            out.push(mismatch(&s.members_file, &r.members_blake3, h));
        }
    }
    out
}

/// (c) Members of a live model who are withdrawn now, by a withdrawal the dataset did not already
/// account for, made more than `deadline` seconds before `now`. The deadline runs from the
/// withdrawal's event time (when the member withdrew), as the lineage worker's requests do; a
/// withdrawal superseded by a later grant no longer counts. Returns (missed, pending within the deadline).
#[allow(clippy::too_many_arguments)]
fn check_withdrawals(
    store: &dyn Store,
    state: &LedgerState,
    policy: &Policy,
    pid: PurposeId,
    man: &Manifest,
    shards: &[(u32, &RoaringTreemap)],
    now: i64,
    deadline: i64,
    id: &str,
    findings: &mut Vec<Finding>,
) -> Result<(usize, u64), AuditError> {
    let mut wanted = RoaringTreemap::new();
    for (_, members) in shards {
        wanted |= *members;
    }
    let deciding = deciding_at(store, policy, pid, &wanted, now)?;
    // A withdrawal the dataset already saw (in its log prefix, not in its future) is not a new one.
    let unseen_by_dataset = |w: &Deciding| w.seq > man.ledger.position || w.consent.at > man.ledger.at;
    let (mut missed, mut pending) = (0usize, 0u64);
    for (shard, members) in shards {
        for member in members.iter() {
            let (Some(w), Some(f)) = (deciding.get(&member), state.facts.get(&member)) else { continue };
            let withdrawn_now = matches!(
                policy.evaluate(pid, f, &[w.consent], now),
                Decision::Denied(DenyReason::Withdrawn | DenyReason::Gpc)
            );
            // The withdrawal that decides the denial, by the policy's own rule.
            if !(withdrawn_now && w.consent.action == Action::Withdraw && unseen_by_dataset(w)) {
                continue;
            }
            let due = w.consent.at.saturating_add(deadline);
            if due > now {
                pending += 1;
                continue;
            }
            missed += 1;
            if missed <= ITEMISED {
                findings.push(
                    Finding::violation(
                        ViolationKind::WithdrawalDeadlineMissed,
                        format!(
                            "member {member} withdrew (seq {}, source {:?}) and is still in shard {shard} past the deadline",
                            w.seq, w.consent.source
                        ),
                        format!(
                            "out of every live model by {due} (withdrew at {} + {deadline} s; recorded at {})",
                            w.consent.at, w.recorded_time
                        ),
                        format!("still in shard {shard} at {now}"),
                    )
                    .model(id)
                    .member(member)
                    .seq(w.seq),
                );
            }
        }
    }
    Ok((missed, pending))
}

/// The event deciding a member's consent at some time, with where and when the log recorded it.
#[derive(Debug, Clone, Copy)]
struct Deciding {
    consent: ConsentEvent,
    seq: u64,
    recorded_time: i64,
}

/// For each member of `wanted` with an event deciding their consent for `pid` at `at`, that event: one stream of
/// the log, one event kept per member.
fn deciding_at(
    store: &dyn Store,
    policy: &Policy,
    pid: PurposeId,
    wanted: &RoaringTreemap,
    at: i64,
) -> Result<HashMap<u64, Deciding>, LedgerError> {
    let key = policy.purpose(pid).key.as_str();
    let mut out: HashMap<u64, Deciding> = HashMap::new();
    store.scan(1, u64::MAX, &mut |e| {
        let b = &e.event.body;
        if b.purpose == key && wanted.contains(b.member_id) {
            let current = out.get(&b.member_id).map(|d| (d.consent, (d.seq, d.recorded_time)));
            let next = (b.consent(), (e.event.seq, e.event.recorded_time));
            if let Some((consent, (seq, recorded_time))) = fold_deciding(policy, pid, at, current, next) {
                out.insert(b.member_id, Deciding { consent, seq, recorded_time });
            }
        }
        Ok(())
    })?;
    Ok(out)
}

/// One event of a member's history for a purpose: its sequence number and what consent reads of it.
#[derive(Debug, Clone, Copy)]
struct HistoryEvent {
    seq: u64,
    consent: ConsentEvent,
}

/// The whole history for `pid` of each member of `wanted`, in log order: what the late-removal check needs, since
/// it judges consent at a time that depends on each withdrawal. Read for the members a model line removed only,
/// so it grows with them and their events, not with the log.
fn histories(
    store: &dyn Store,
    policy: &Policy,
    pid: PurposeId,
    wanted: &RoaringTreemap,
) -> Result<HashMap<u64, Vec<HistoryEvent>>, LedgerError> {
    let key = policy.purpose(pid).key.as_str();
    let mut out: HashMap<u64, Vec<HistoryEvent>> = HashMap::new();
    store.scan(1, u64::MAX, &mut |e| {
        let b = &e.event.body;
        if b.purpose == key && wanted.contains(b.member_id) {
            out.entry(b.member_id).or_default().push(HistoryEvent { seq: e.event.seq, consent: b.consent() });
        }
        Ok(())
    })?;
    Ok(out)
}

/// The time a withdrawn member may stay in a live model: the deadline, plus what the run tolerates past it.
#[derive(Debug, Clone, Copy)]
struct Window {
    deadline: i64,
    tolerance: i64,
}

impl Window {
    /// When a withdrawal at `withdrew` must be out of every live model, tolerance included.
    fn due(self, withdrew: i64) -> i64 {
        withdrew.saturating_add(self.deadline).saturating_add(self.tolerance)
    }
}

/// The rule of a late removal: a member withdrawn at `withdrew` and taken out of the live model at `removed` was
/// removed late when `removed` is past the deadline (plus the tolerance), unless consent no longer denied them at
/// that point (`withdrawn_at_due`: a re-grant before it ended the obligation).
fn removed_late(window: Window, withdrew: i64, removed: i64, withdrawn_at_due: impl FnOnce(i64) -> bool) -> bool {
    let due = window.due(withdrew);
    removed > due && withdrawn_at_due(due)
}

/// (c') Members a model line removed after their deadline. For each registered version that replaced another
/// (the signed `supersedes`), the members the older version's shards held and the newer one's do not were removed
/// when the newer version went live: the time its signed going-live record states (never earlier than its
/// `model.json`'s creation, which its id covers; that creation time alone, a lower bound, for a version registered
/// before the record existed). A removed member whose withdrawal — one the older version's dataset did not already
/// account for, by event time as the deadline runs — still denied them at its deadline was in a live model longer
/// than promised: `withdrawal_removed_late`, with the versions, the withdrawal, the removal and the delay.
fn check_late_removals(
    bundle: &Bundle,
    state: &LedgerState,
    policy: &Policy,
    selected: &[&ModelEvidence],
    window: Window,
    key: Option<&KeyChain>,
    findings: &mut Vec<Finding>,
) -> Result<(), AuditError> {
    let members_of = |m: &ModelEvidence| -> Option<RoaringTreemap> {
        let meta = m.meta.as_ref()?;
        let mut all = RoaringTreemap::new();
        for s in &meta.shards {
            all |= &m.bitmaps.get(&s.members_file)?.0;
        }
        Some(all)
    };
    for next in &bundle.models {
        let Some(reg) = &next.registered else { continue };
        let Some(prev_id) = &reg.supersedes else { continue };
        let Some(prev) = bundle.models.iter().find(|m| m.registered.as_ref().is_some_and(|r| &r.id == prev_id)) else {
            continue;
        };
        if !selected.iter().any(|s| s.id == next.id || s.id == prev.id) {
            continue;
        }
        let (Some(prev_meta), Some(next_meta)) = (&prev.meta, &next.meta) else { continue };
        // Missing or unreadable bitmaps are findings of their own (check_model): nothing to compare here.
        let (Some(before), Some(after)) = (members_of(prev), members_of(next)) else { continue };
        let removed = before - after;
        if removed.is_empty() {
            continue;
        }
        let Some(pid) = policy.purpose_id(&prev_meta.purpose) else { continue };
        let signed = match key.map(|k| consentry_lineage::signing::live_since(k, reg)) {
            Some(Ok(at)) => at,
            Some(Err(why)) => {
                findings.push(
                    Finding::violation(
                        ViolationKind::RegistrySignature,
                        format!(
                            "the record of when version {} ({}) went live is not signed by the ledger's key",
                            reg.version, reg.id
                        ),
                        "a going-live record signed by the ledger's key",
                        why,
                    )
                    .model(&next.id),
                );
                None
            }
            None => None,
        };
        let (removed_at, how) = match signed {
            Some(at) => (at.max(next_meta.created), "by its signed going-live record"),
            None => (next_meta.created, "at the earliest: its model.json's creation time, no signed going-live record"),
        };
        let manifest = dataset_of(bundle, &prev_meta.dataset.manifest_blake3).and_then(|d| d.manifest.as_ref());
        let unseen =
            |e: &HistoryEvent| manifest.is_none_or(|man| e.seq > man.ledger.position || e.consent.at > man.ledger.at);
        let history = histories(&bundle.store, policy, pid, &removed)?;
        let mut late = 0usize;
        for member in removed.iter() {
            let (Some(evs), Some(f)) = (history.get(&member), state.facts.get(&member)) else { continue };
            let consent: Vec<ConsentEvent> = evs.iter().map(|e| e.consent).collect();
            let withdrawn_at = |t: i64| {
                matches!(
                    policy.evaluate(pid, f, &consent, t),
                    Decision::Denied(DenyReason::Withdrawn | DenyReason::Gpc)
                )
            };
            // The earliest withdrawal still in force at its deadline that the removal came after.
            let Some(w) = evs
                .iter()
                .filter(|e| e.consent.action == Action::Withdraw && unseen(e))
                .find(|w| removed_late(window, w.consent.at, removed_at, withdrawn_at))
            else {
                continue;
            };
            late += 1;
            if late > ITEMISED {
                continue;
            }
            let withdrew = w.consent.at;
            let due = window.due(withdrew);
            let tolerance =
                if window.tolerance == 0 { String::new() } else { format!(" + {} s tolerance", window.tolerance) };
            findings.push(
                Finding::violation(
                    ViolationKind::WithdrawalRemovedLate,
                    format!(
                        "member {member} withdrew (seq {}, source {:?}) at {withdrew} and stayed in model {} version {} \
                         ({}) until version {} ({}) went live at {removed_at}: removed {} s after withdrawing, {} s \
                         past the deadline",
                        w.seq,
                        w.consent.source,
                        prev.id,
                        prev.registered.as_ref().map_or(0, |r| r.version),
                        prev_id,
                        reg.version,
                        reg.id,
                        removed_at.saturating_sub(withdrew),
                        removed_at.saturating_sub(due),
                    ),
                    format!(
                        "out of every live model by {due} (withdrew at {withdrew} + {} s deadline{tolerance})",
                        window.deadline
                    ),
                    format!("removed at {removed_at} ({how}), {} s after the withdrawal", removed_at.saturating_sub(withdrew)),
                )
                .model(&prev.id)
                .member(member)
                .seq(w.seq),
            );
        }
        if late > ITEMISED {
            findings.push(more(ViolationKind::WithdrawalRemovedLate, late - ITEMISED).model(&prev.id));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use consentry_policy::{DEFAULT_POLICY, Source};
    use proptest::prelude::*;

    const JOBS: &str = "train_ai_system.job_recommendations";

    fn event(at: i64, action: Action, notice_version: u32) -> ConsentEvent {
        ConsentEvent { at, action, notice_version, source: Source::Ui }
    }

    proptest! {
        /// A removal is late iff it came after withdrawal + deadline + tolerance while the withdrawal still denied
        /// the member then: a re-grant at or before that point ends the obligation, one after it does not.
        #[test]
        fn late_iff_removed_past_the_deadline_while_still_withdrawn(
            withdrew in 1_800_000_000i64..1_800_100_000,
            deadline in 0i64..100_000,
            tolerance in 0i64..1_000,
            removed_after in 0i64..300_000,
            regrant_after in proptest::option::of(1i64..300_000),
        ) {
            let policy = Policy::from_toml("default.toml", DEFAULT_POLICY).unwrap();
            let pid = policy.purpose_id(JOBS).unwrap();
            let notice = policy.purpose(pid).latest_notice().version;
            let facts = MemberFacts {
                jurisdiction: policy.resolve_jurisdiction("DE"),
                birth_date: chrono::NaiveDate::from_ymd_opt(1980, 1, 1).unwrap(),
            };
            let mut events = vec![event(withdrew - 10_000, Action::Grant, notice), event(withdrew, Action::Withdraw, notice)];
            if let Some(r) = regrant_after {
                events.push(event(withdrew + r, Action::Grant, notice));
            }
            let withdrawn_at = |t: i64| {
                matches!(policy.evaluate(pid, &facts, &events, t), Decision::Denied(DenyReason::Withdrawn | DenyReason::Gpc))
            };
            let due = withdrew + deadline + tolerance;
            let expected = withdrew + removed_after > due && regrant_after.is_none_or(|r| withdrew + r > due);
            let window = Window { deadline, tolerance };
            prop_assert_eq!(window.due(withdrew), due);
            prop_assert_eq!(removed_late(window, withdrew, withdrew + removed_after, withdrawn_at), expected);
        }
    }

    proptest! {
        /// Folding a member's events in log order, one against the deciding one so far, decides as the policy does
        /// over the whole history: the same event, and the same answer from it alone.
        #[test]
        fn folding_decides_as_the_whole_history(
            raw in proptest::collection::vec((0i64..20, any::<bool>(), 1u32..3, 0usize..3), 0..12),
            at in 0i64..22,
            purpose in 0usize..3,
            opt_out in any::<bool>(),
        ) {
            let policy = Policy::from_toml("default.toml", DEFAULT_POLICY).unwrap();
            let key = ["train_ai_system.job_recommendations", "train_ai_system.content_suggestions",
                "train_ai_system.reply_suggestions"][purpose];
            let pid = policy.purpose_id(key).unwrap();
            let facts = MemberFacts {
                jurisdiction: policy.resolve_jurisdiction(if opt_out { "US-CA" } else { "DE" }),
                birth_date: chrono::NaiveDate::from_ymd_opt(1980, 1, 1).unwrap(),
            };
            let sources = [Source::Ui, Source::Gpc, Source::Api];
            let events: Vec<ConsentEvent> = raw
                .iter()
                .map(|&(t, grant, notice, s)| ConsentEvent {
                    at: t,
                    action: if grant { Action::Grant } else { Action::Withdraw },
                    notice_version: notice,
                    source: sources[s],
                })
                .collect();
            let mut folded: Option<(ConsentEvent, usize)> = None;
            for (i, e) in events.iter().enumerate() {
                folded = fold_deciding(&policy, pid, at, folded, (*e, i));
            }
            prop_assert_eq!(folded.map(|(_, i)| i), policy.deciding_event(pid, &events, at));
            let alone: Vec<ConsentEvent> = folded.map(|(e, _)| e).into_iter().collect();
            prop_assert_eq!(policy.evaluate(pid, &facts, &alone, at), policy.evaluate(pid, &facts, &events, at));
        }
    }

    #[test]
    fn the_edges_of_the_rule() {
        let w = Window { deadline: 60, tolerance: 0 };
        // At the deadline is on time; a second later is late; a tolerance moves the edge.
        assert!(!removed_late(w, 1000, 1060, |_| true));
        assert!(removed_late(w, 1000, 1061, |_| true));
        assert!(!removed_late(Window { tolerance: 5, ..w }, 1000, 1065, |_| true));
        assert!(removed_late(Window { tolerance: 5, ..w }, 1000, 1066, |_| true));
        // Consent back by the deadline: nothing was owed.
        assert!(!removed_late(w, 1000, 5000, |_| false));
        // Hostile times saturate instead of overflowing.
        assert!(!removed_late(Window { deadline: i64::MAX, tolerance: i64::MAX }, i64::MAX, i64::MAX, |_| true));
    }
}
