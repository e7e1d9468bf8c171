//! Ledger use cases: import, append (with the Global Privacy Control rule), checkpoints, verification, receipts,
//! snapshots at a position or a time.

use crate::error::{AppError, Context as _, ErrorKind, Result};
use crate::progress::Progress;
use crate::session::Session;
use consentry_files::OutputOptions;
use consentry_ledger::position::{At, Resolved};
use consentry_ledger::receipt::AnyReceipt;
use consentry_ledger::snapshot::Snapshot;
use consentry_ledger::{Appended, LedgerError, MemberRecord, NewEvent, PublicKey, SignedTreeHead, Verification};
use consentry_policy::{Action, PurposeId, Source};
use consentry_synth::{ChoiceRow, MemberRow};
use std::path::Path;

/// One consent event as a front end received it; what is left out gets the ledger's defaults.
#[derive(Debug, Clone)]
pub struct AppendRequest {
    /// The member.
    pub member: u64,
    /// Purpose key, e.g. `train_ai_system.job_recommendations`.
    pub purpose: String,
    /// Grant or withdraw.
    pub action: Action,
    /// The notice version shown [default: the newest].
    pub notice_version: Option<u32>,
    /// Where the event came from.
    pub source: Source,
    /// Who records it [default: `member:<id>`].
    pub actor: Option<String>,
    /// When the member acted, Unix seconds [default: now].
    pub event_time: Option<i64>,
    /// A retry with the same key returns the original event [default: a random key with `key_prefix`].
    pub idempotency_key: Option<String>,
    /// The prefix of a generated idempotency key, naming the front end (`cli`, `api`).
    pub key_prefix: &'static str,
}

/// The ledger's member records and events for imported rows, as `Session::import` validates and writes them
/// (the fuzz target `ledger_import` validates the same). Each event's idempotency key comes from its content, not its
/// place in a file: re-encoded files and repeated rows add nothing.
///
/// # Errors
/// An event the ledger cannot encode (no content key).
pub fn import_records(
    members: &[MemberRow],
    choices: Vec<ChoiceRow>,
) -> std::result::Result<(Vec<MemberRecord>, Vec<NewEvent>), LedgerError> {
    let records: Vec<MemberRecord> = members
        .iter()
        .map(|m| MemberRecord {
            member_id: m.member_id,
            jurisdiction: m.jurisdiction.clone(),
            birth_date: m.birth_date,
        })
        .collect();
    let mut events: Vec<NewEvent> = Vec::with_capacity(choices.len());
    for c in choices {
        let mut e = NewEvent {
            member_id: c.member_id,
            purpose: c.purpose,
            action: c.action,
            notice_version: c.notice_version,
            source: c.source,
            actor: c.actor,
            event_time: c.event_time,
            idempotency_key: String::new(),
        };
        e.idempotency_key = e.content_key("import")?;
        events.push(e);
    }
    Ok((records, events))
}

/// What an import did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportReport {
    /// Members read.
    pub members: u64,
    /// Member-facts entries appended (members new to the ledger or whose facts changed).
    pub member_facts_recorded: u64,
    /// Events read.
    pub events: u64,
    /// Events appended.
    pub appended: u64,
    /// Events already in the ledger (same content key).
    pub duplicates: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// What `ledger verify` found: the ledger's own checks, and positions the registry beside it cites beyond the log.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    /// Chain, Merkle tree and signatures.
    pub ledger: Verification,
    /// One line per registry citation beyond the log's end (a rolled-back or replaced log).
    pub registry_beyond_log: Vec<String>,
}

impl VerifyReport {
    /// True when nothing is wrong.
    pub fn ok(&self) -> bool {
        self.ledger.ok() && self.registry_beyond_log.is_empty()
    }
}

/// A receipt checked against a public key: the key (for the front end to name) and the verdict.
#[derive(Debug)]
pub struct ReceiptCheck {
    /// The ledger's public key the receipt was checked against.
    pub key: PublicKey,
    /// The receipt, or which check failed (the `ReceiptError` is reachable by `downcast_ref`).
    pub verdict: std::result::Result<AnyReceipt, AppError>,
}

/// A written Parquet snapshot.
#[derive(Debug)]
pub struct ExportedSnapshot {
    /// The snapshot written.
    pub snapshot: Snapshot,
    /// Rows written (one per member).
    pub rows: u64,
}

/// RFC 3339, a bare date (midnight UTC) or Unix seconds.
pub fn parse_time(s: &str) -> Result<i64> {
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(t.and_utc().timestamp());
    }
    Err(AppError::bad_input(format!(
        "`{s}` is not a time: use RFC 3339 (2026-11-01T12:00:00Z), YYYY-MM-DD or Unix seconds"
    )))
}

/// `--at SEQ|TIME`: a sequence number, or a time; none is now, the whole log.
pub fn parse_at(at: Option<&str>) -> Result<At> {
    Ok(match at {
        None => At::Now,
        Some(s) => match s.parse::<u64>() {
            Ok(seq) => At::Seq(seq),
            Err(_) => At::Time(parse_time(s)?),
        },
    })
}

/// A fresh random idempotency key, so a retried request without one of its own is still one event.
pub(crate) fn random_key(prefix: &str) -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| AppError::internal(format!("no randomness available: {e}")))?;
    Ok(format!("{prefix}:{}", hex::encode(b)))
}

/// A withdrawal of `purpose` under its newest notice, keyed `<key_base>/<purpose>`: what a GPC signal and an erasure
/// append for each purpose they withdraw.
pub(crate) fn withdrawal(
    member: u64,
    purpose: &consentry_policy::Purpose,
    source: Source,
    actor: &str,
    event_time: i64,
    key_base: &str,
) -> NewEvent {
    NewEvent {
        member_id: member,
        purpose: purpose.key.clone(),
        action: Action::Withdraw,
        notice_version: purpose.latest_notice().version,
        source,
        actor: actor.to_string(),
        event_time,
        idempotency_key: format!("{key_base}/{}", purpose.key),
    }
}

/// Verifies a receipt offline against the ledger's public key file. The outer error is a file that cannot be read;
/// the verdict says which check failed.
pub fn verify_receipt(file: &Path, public_key: &Path) -> Result<ReceiptCheck> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| AppError::bad_input(format!("cannot read {}: {e}", file.display())))?;
    let key = PublicKey::load(public_key)?;
    verify_receipt_text(&text, &file.display().to_string(), key)
}

/// [`verify_receipt`] over a receipt's text already in memory (`name` says where it came from, for messages), for
/// front ends handed bytes rather than files.
pub fn verify_receipt_text(text: &str, name: &str, key: PublicKey) -> Result<ReceiptCheck> {
    let _: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| AppError::bad_input(format!("{name} is not a Consentry receipt: {e}")))?;
    let verdict = AnyReceipt::verify_json(text, &key).map_err(|e| AppError::wrap(ErrorKind::Integrity, e));
    Ok(ReceiptCheck { key, verdict })
}

impl Session {
    /// The purpose id of a key, or an error naming where the declared ones are.
    pub fn purpose_id(&self, purpose: &str) -> Result<PurposeId> {
        self.ledger()?.policy().purpose_id(purpose).ok_or_else(|| {
            AppError::bad_input(format!(
                "unknown purpose `{purpose}`; see `consentry policy show` for the declared ones"
            ))
        })
    }

    /// Appends one consent event; a retry with the same idempotency key returns the original.
    pub fn append(&self, req: AppendRequest) -> Result<Appended> {
        let ledger = self.ledger()?;
        let pid = self.purpose_id(&req.purpose)?;
        let defaulted_time = req.event_time.is_none();
        let event = NewEvent {
            member_id: req.member,
            notice_version: req.notice_version.unwrap_or_else(|| ledger.policy().purpose(pid).latest_notice().version),
            purpose: req.purpose,
            action: req.action,
            source: req.source,
            actor: req.actor.unwrap_or_else(|| format!("member:{}", req.member)),
            event_time: req.event_time.unwrap_or_else(consentry_ledger::now),
            idempotency_key: match req.idempotency_key {
                Some(k) => k,
                None => random_key(req.key_prefix)?,
            },
        };
        match ledger.append(vec![event]) {
            Ok(out) => {
                self.appends.count(&out);
                out.into_iter().next().ok_or_else(|| AppError::internal("the ledger returned no result"))
            }
            // A retry of a request that named no event time gets "now" again, a second later perhaps: the first
            // attempt's time stands, and the retry is the duplicate it is.
            Err(LedgerError::IdempotencyConflict { seq, fields, .. }) if defaulted_time && fields == "event time" => {
                self.duplicate_of(seq)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The first attempt of a retried request, as a retry answers it: the stored event at `seq`, marked duplicate.
    pub(crate) fn duplicate_of(&self, seq: u64) -> Result<Appended> {
        let stored = self.keyed_event(seq)?;
        Ok(Appended { event: stored.event, chain_hash: stored.chain_hash, duplicate: true })
    }

    /// Appends a batch of events (none: nothing), counting them for the metrics.
    pub(crate) fn append_counted(&self, events: Vec<NewEvent>) -> Result<Vec<Appended>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let out = self.ledger()?.append(events)?;
        self.appends.count(&out);
        Ok(out)
    }

    /// The stored event an idempotency conflict names (the first attempt of a retried request).
    pub(crate) fn keyed_event(&self, seq: u64) -> Result<consentry_ledger::StoredEvent> {
        self.ledger()?
            .store()
            .event(seq)?
            .ok_or_else(|| AppError::internal(format!("event {seq} named by an idempotency key is missing")))
    }

    /// A Global Privacy Control signal (`Sec-GPC: 1`) from a member: a withdrawal, with source `gpc`, of every
    /// purpose whose policy says GPC withdraws it (and of no other); retries with the same key add nothing.
    pub fn gpc_signal(&self, member: u64, event_time: i64, idempotency_key: &str) -> Result<Vec<Appended>> {
        let ledger = self.ledger()?;
        let policy = ledger.policy();
        let events: Vec<NewEvent> = policy
            .purposes
            .iter()
            .filter(|p| p.gpc_withdraws)
            .map(|p| withdrawal(member, p, Source::Gpc, "gpc-signal", event_time, idempotency_key))
            .collect();
        self.append_counted(events)
    }

    /// Loads members and consent choices from Parquet; validates every row before writing any.
    pub fn import(
        &self,
        members: &Path,
        choices: &Path,
        batch: usize,
        progress: &dyn Progress,
    ) -> Result<ImportReport> {
        let ledger = self.ledger()?;
        let start = std::time::Instant::now();
        for (p, what) in [(members, "members"), (choices, "consent choices")] {
            if !p.exists() {
                return Err(AppError::bad_input(format!("{what} file {} does not exist", p.display())));
            }
        }
        // Any file name: the columns say what a table is (errors name the file and the column).
        let member_rows =
            consentry_synth::read_members_file(members).map_err(|e| AppError::bad_input(e.to_string()))?;
        let choice_rows =
            consentry_synth::read_consent_choices_file(choices).map_err(|e| AppError::bad_input(e.to_string()))?;
        let (records, events) = import_records(&member_rows, choice_rows)
            .map_err(|e| AppError::bad_input(format!("{}: {e}", choices.display())))?;
        let now = consentry_ledger::now();
        let refused = |file: &Path| {
            let file = file.display().to_string();
            move |e: LedgerError| match e {
                LedgerError::Rejected { index, reason } => {
                    AppError::bad_input(format!("{file}: row {index} refused, nothing imported: {reason}"))
                }
                other => AppError::from(other),
            }
        };
        ledger.validate_members(&records, "import").map_err(refused(members))?;
        ledger.validate_with(&events, now, &records).map_err(refused(choices))?;
        let recorded = ledger.record_members(&records, "import", now).map_err(refused(members))?;
        progress.stage("ledger import", events.len() as u64);
        let total = events.len() as u64;
        let (mut appended, mut duplicates) = (0u64, 0u64);
        let mut rest = events.into_iter();
        loop {
            let chunk: Vec<NewEvent> = rest.by_ref().take(batch.max(1)).collect();
            if chunk.is_empty() {
                break;
            }
            let n = chunk.len() as u64;
            for a in ledger.append_at(chunk, now)? {
                if a.duplicate { duplicates += 1 } else { appended += 1 }
            }
            progress.advance("ledger import", n);
        }
        Ok(ImportReport {
            members: records.len() as u64,
            member_facts_recorded: recorded,
            events: total,
            appended,
            duplicates,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// Signs a checkpoint (tree head) of the whole log now.
    pub fn checkpoint(&self) -> Result<SignedTreeHead> {
        Ok(self.ledger()?.checkpoint()?)
    }

    /// Rebuilds chain, Merkle tree and checkpoints from the stored entries, and asks the registry beside the log
    /// whether it cites positions beyond the log's end (a rolled-back log is a consistent prefix, invisible to its
    /// own checks).
    pub fn verify_ledger(&self) -> Result<VerifyReport> {
        let ledger = self.ledger()?.verify()?;
        Ok(VerifyReport { ledger, registry_beyond_log: self.positions_beyond_log()? })
    }

    /// What the registry cites beyond the log's end, one line each; empty without a ledger.
    pub fn positions_beyond_log(&self) -> Result<Vec<String>> {
        if !self.has_ledger() {
            return Ok(Vec::new());
        }
        let (len, beyond) = self.registry()?.positions_beyond()?;
        Ok(beyond
            .iter()
            .map(|c| format!("{} cites position {}, but the log has {len} events", c.what, c.position))
            .collect())
    }

    /// A member's receipt for one entry: a consent event's, or a member-facts entry's (the facts decide consent too).
    pub fn receipt(&self, seq: u64) -> Result<AnyReceipt> {
        Ok(self.ledger()?.any_receipt(seq)?)
    }

    /// The ledger's public key, for auditors and receipt holders.
    pub fn public_key(&self) -> Result<PublicKey> {
        Ok(self.ledger()?.public_key())
    }

    /// Effective consent of every member for a purpose at a position or time (`At::Now`: the whole log).
    pub fn snapshot(&self, purpose: &str, at: At) -> Result<Snapshot> {
        let ledger = self.ledger()?;
        let pid = self.purpose_id(purpose)?;
        let Resolved { position, time } =
            consentry_ledger::position::resolve(ledger.store(), at, consentry_ledger::now())?;
        Ok(ledger.snapshot(pid, position, time)?)
    }

    /// Writes a snapshot as Parquet (member_id, allowed, reason) for other engines to join against.
    pub fn export_snapshot(&self, purpose: &str, at: At, out: &Path, mode: OutputOptions) -> Result<ExportedSnapshot> {
        let snapshot = self.snapshot(purpose, at)?;
        let mut file = consentry_files::Output::create(out, mode)?;
        let rows = consentry_ledger::snapshot::export_parquet(&snapshot, &mut file)
            .map_err(|e| AppError::wrap(ErrorKind::Internal, e))
            .with_context(|| format!("writing {}", out.display()))?;
        file.commit()?;
        Ok(ExportedSnapshot { snapshot, rows })
    }
}
