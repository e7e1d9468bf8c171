//! The audit report: findings with their evidence, as JSON or as text for a person.

use serde::Serialize;
use std::fmt::Write as _;

/// What a finding is about; the JSON name is the snake_case form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    /// A bundle file's BLAKE3 or size differs from the bundle index.
    BundleFileAltered,
    /// A file the index lists is missing, or a file is present that the index does not list.
    BundleFileMissing,
    /// A file is present but cannot be parsed (JSON, JSONL, roaring bitmap, policy).
    UnreadableFile,
    /// The public key in the bundle differs from the one the auditor pinned.
    PublicKeyMismatch,
    /// The rebuilt log disagrees with itself or its checkpoints (`Ledger::verify`: chain, leaves, roots, signatures).
    LedgerTampered,
    /// Two signed tree heads (or a head the auditor holds) are not consistent: history was rewritten.
    InconsistentHeads,
    /// A dataset claims a ledger position or Merkle root the log does not have.
    LedgerPositionMismatch,
    /// The policy the dataset was cut under is not the policy in the bundle, so consent cannot be recomputed.
    PolicyMismatch,
    /// A dataset member was not allowed at the dataset's ledger position (recomputed from the events).
    MemberNotAllowed,
    /// A model's dataset is not among the exported datasets, or its reference disagrees with the manifest.
    DatasetMismatch,
    /// A member bitmap's BLAKE3 differs from its commitment, or its count from the recorded count.
    CommitmentMismatch,
    /// A model shard holds a member outside its dataset, an excluded member, or a member of another shard.
    ShardMembership,
    /// A member whose withdrawal is older than the deadline is still in a live model.
    WithdrawalDeadlineMissed,
    /// A member was removed from a model line (the version without them went live, by its signed going-live
    /// record) after their withdrawal's deadline: they were in a live model longer than promised.
    WithdrawalRemovedLate,
    /// A dataset's files differ from its manifest (online: `gate verify`).
    DatasetFiles,
    /// A shard weight file differs from `model.json` (online).
    ShardFileAltered,
    /// A DP record is incomplete or claims a smaller ε than its own parameters give.
    DpRecord,
    /// A registered model's files are not the ones the lineage registry recorded: `model.json`'s BLAKE3 differs
    /// from the model's id, or a shard file or member bitmap from the registered hash.
    RegistryMismatch,
    /// A registered dataset's or model's record is not signed by the ledger's key over the fields it holds (the
    /// registry row was altered, or made without the signing key), or a live version is one a signed record says
    /// was replaced: the registry's hashes vouch for nothing.
    RegistrySignature,
    /// A model directory in the data directory that the lineage registry does not know: no withdrawal reaches it.
    UnregisteredModel,
    /// The registry cites a ledger position beyond the log's end: the log was rolled back or replaced.
    PositionBeyondLog,
    /// A superseded version still holds shard weights, which carry the data of the members unlearning removed.
    SupersededWeights,
    /// A dataset's consent was evaluated after its creation, after the present or after the log had moved on past
    /// its position (a future time counts today's minors as adults); flagged on the dataset and every model on it.
    EvaluationTime,
    /// Too few of the witnesses the auditor trusts cosigned the newest signed tree head (`--witnesses N`): nobody
    /// independent vouches that others were shown the same history.
    Witnesses,
    /// Informational: something the audit could not vouch for (no violation).
    Note,
}

impl ViolationKind {
    /// The snake_case name used in JSON and text.
    pub fn as_str(self) -> &'static str {
        match self {
            ViolationKind::BundleFileAltered => "bundle_file_altered",
            ViolationKind::BundleFileMissing => "bundle_file_missing",
            ViolationKind::UnreadableFile => "unreadable_file",
            ViolationKind::PublicKeyMismatch => "public_key_mismatch",
            ViolationKind::LedgerTampered => "ledger_tampered",
            ViolationKind::InconsistentHeads => "inconsistent_heads",
            ViolationKind::Witnesses => "witnesses",
            ViolationKind::LedgerPositionMismatch => "ledger_position_mismatch",
            ViolationKind::PolicyMismatch => "policy_mismatch",
            ViolationKind::MemberNotAllowed => "member_not_allowed",
            ViolationKind::DatasetMismatch => "dataset_mismatch",
            ViolationKind::CommitmentMismatch => "commitment_mismatch",
            ViolationKind::ShardMembership => "shard_membership",
            ViolationKind::WithdrawalDeadlineMissed => "withdrawal_deadline_missed",
            ViolationKind::WithdrawalRemovedLate => "withdrawal_removed_late",
            ViolationKind::DatasetFiles => "dataset_files",
            ViolationKind::ShardFileAltered => "shard_file_altered",
            ViolationKind::DpRecord => "dp_record",
            ViolationKind::RegistryMismatch => "registry_mismatch",
            ViolationKind::RegistrySignature => "registry_signature",
            ViolationKind::UnregisteredModel => "unregistered_model",
            ViolationKind::PositionBeyondLog => "position_beyond_log",
            ViolationKind::SupersededWeights => "superseded_weights",
            ViolationKind::EvaluationTime => "evaluation_time",
            ViolationKind::Note => "note",
        }
    }
}

/// Whether a finding fails the audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// A broken promise or unverifiable evidence: the audit fails.
    Violation,
    /// Worth knowing, not a failure (a withdrawal still within its deadline, an unsigned tail).
    Note,
}

/// One thing the audit found, with enough evidence to check it by hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What kind of problem.
    pub kind: ViolationKind,
    /// Violation or note.
    pub severity: Severity,
    /// The model involved, by id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The dataset involved, by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// The member involved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<u64>,
    /// The ledger sequence number involved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The bundle file involved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// One sentence saying what is wrong.
    pub message: String,
    /// What the evidence should show.
    pub expected: String,
    /// What it shows.
    pub found: String,
}

impl Finding {
    /// A violation of `kind` with its message and evidence.
    pub fn violation(
        kind: ViolationKind,
        message: impl Into<String>,
        expected: impl ToString,
        found: impl ToString,
    ) -> Finding {
        Finding {
            kind,
            severity: Severity::Violation,
            model: None,
            dataset: None,
            member: None,
            seq: None,
            file: None,
            message: message.into(),
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }

    /// A note (does not fail the audit).
    pub fn note(message: impl Into<String>) -> Finding {
        Finding { severity: Severity::Note, ..Finding::violation(ViolationKind::Note, message, "", "") }
    }

    /// Names the model.
    pub fn model(mut self, id: &str) -> Finding {
        self.model = Some(id.to_string());
        self
    }

    /// Names the dataset.
    pub fn dataset(mut self, name: &str) -> Finding {
        self.dataset = Some(name.to_string());
        self
    }

    /// Names the member.
    pub fn member(mut self, m: u64) -> Finding {
        self.member = Some(m);
        self
    }

    /// Names the sequence number.
    pub fn seq(mut self, s: u64) -> Finding {
        self.seq = Some(s);
        self
    }

    /// Names the bundle file.
    pub fn file(mut self, f: &str) -> Finding {
        self.file = Some(f.to_string());
        self
    }
}

/// What the ledger check covered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LedgerSummary {
    /// Log entries rebuilt (consent events and member-facts entries).
    pub events: u64,
    /// Signed tree heads checked.
    pub checkpoints: usize,
    /// Pairs of heads whose consistency proof was verified.
    pub consistency_proofs: usize,
    /// Heads held by the auditor that were checked against the log.
    pub known_heads: usize,
    /// Members in the member directory.
    pub members: u64,
}

/// What was checked for one dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DatasetSummary {
    /// Dataset name (its directory).
    pub name: String,
    /// Purpose key.
    pub purpose: String,
    /// Ledger position it claims.
    pub position: u64,
    /// Members in its bitmap.
    pub members: u64,
    /// Of those, members the recomputed snapshot allows.
    pub allowed_recomputed: u64,
}

/// What was checked for one model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelSummary {
    /// Model id.
    pub id: String,
    /// `live`, `superseded` or `retired`.
    pub status: String,
    /// Purpose key.
    pub purpose: String,
    /// The dataset it was matched to (by manifest BLAKE3), if any.
    pub dataset: Option<String>,
    /// Members over all shards.
    pub members: u64,
    /// Members excluded by unlearning.
    pub excluded: u64,
    /// Withdrawn members still inside, within the deadline (not yet violations).
    pub pending_withdrawals: u64,
}

/// The outcome of an audit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// `bundle` (offline) or `online`.
    pub mode: String,
    /// The time the audit judged against (Unix seconds).
    pub now: i64,
    /// Withdrawal deadline applied (seconds).
    pub deadline_seconds: i64,
    /// Seconds past the deadline the run tolerated (`--tolerance`; 0, the promise itself, is not shown).
    #[serde(skip_serializing_if = "is_zero")]
    pub tolerance_seconds: i64,
    /// True when no violation was found.
    pub ok: bool,
    /// Violations found.
    pub violations: usize,
    /// The ledger check.
    pub ledger: LedgerSummary,
    /// The datasets checked.
    pub datasets: Vec<DatasetSummary>,
    /// The models checked.
    pub models: Vec<ModelSummary>,
    /// Every finding, violations first.
    pub findings: Vec<Finding>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl Report {
    /// Sorts findings (violations first, then by kind) and fills the totals.
    pub fn finish(&mut self) {
        self.findings.sort_by_key(|f| (f.severity != Severity::Violation, f.kind));
        self.violations = self.findings.iter().filter(|f| f.severity == Severity::Violation).count();
        self.ok = self.violations == 0;
    }

    /// The violations only.
    pub fn violations(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.severity == Severity::Violation)
    }

    /// A plain-text rendering for a person: a summary, then each finding with its evidence.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let l = &self.ledger;
        let _ = writeln!(
            s,
            "audit ({}) at {} with a withdrawal deadline of {} s{}",
            self.mode,
            chrono::DateTime::from_timestamp(self.now, 0)
                .map_or_else(|| self.now.to_string(), |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            self.deadline_seconds,
            if self.tolerance_seconds == 0 {
                String::new()
            } else {
                format!(" (tolerating {} s more)", self.tolerance_seconds)
            }
        );
        let _ = writeln!(
            s,
            "ledger: {} entries (consent events and member facts), {} signed tree heads, {} consistency proofs, {} heads held by the auditor, {} members",
            l.events, l.checkpoints, l.consistency_proofs, l.known_heads, l.members
        );
        for d in &self.datasets {
            let _ = writeln!(
                s,
                "dataset {}: {} at position {}, {} members, {} allowed when recomputed from the ledger",
                d.name, d.purpose, d.position, d.members, d.allowed_recomputed
            );
        }
        for m in &self.models {
            let _ = writeln!(
                s,
                "model {} ({}): {}, dataset {}, {} members, {} excluded, {} withdrawals pending within the deadline",
                m.id,
                m.status,
                m.purpose,
                m.dataset.as_deref().unwrap_or("(not found)"),
                m.members,
                m.excluded,
                m.pending_withdrawals
            );
        }
        for f in &self.findings {
            let tag = match f.severity {
                Severity::Violation => "VIOLATION",
                Severity::Note => "note",
            };
            let mut about = Vec::new();
            if let Some(m) = &f.model {
                about.push(format!("model {m}"));
            }
            if let Some(d) = &f.dataset {
                about.push(format!("dataset {d}"));
            }
            if let Some(m) = f.member {
                about.push(format!("member {m}"));
            }
            if let Some(q) = f.seq {
                about.push(format!("seq {q}"));
            }
            if let Some(p) = &f.file {
                about.push(format!("file {p}"));
            }
            let about = if about.is_empty() { String::new() } else { format!(" [{}]", about.join(", ")) };
            let kind = if f.kind == ViolationKind::Note { String::new() } else { format!(" {}", f.kind.as_str()) };
            let _ = writeln!(s, "{tag}{kind}{about}: {}", f.message);
            if f.severity == Severity::Violation {
                let _ = writeln!(s, "    expected: {}", f.expected);
                let _ = writeln!(s, "    found:    {}", f.found);
            }
        }
        let _ = if self.ok {
            writeln!(s, "audit passed: no violation")
        } else {
            writeln!(s, "audit FAILED: {} violation(s)", self.violations)
        };
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_fail_and_render_with_evidence() {
        let mut r = Report {
            mode: "bundle".into(),
            now: 10,
            deadline_seconds: 5,
            tolerance_seconds: 0,
            ok: true,
            violations: 0,
            ledger: LedgerSummary::default(),
            datasets: vec![],
            models: vec![],
            findings: vec![
                Finding::note("tail unsigned"),
                Finding::violation(ViolationKind::MemberNotAllowed, "not allowed", "allowed", "no_grant")
                    .member(7)
                    .dataset("d"),
            ],
        };
        r.finish();
        assert!(!r.ok);
        assert_eq!(r.violations, 1);
        assert_eq!(r.findings[0].kind, ViolationKind::MemberNotAllowed);
        let text = r.render();
        assert!(text.contains("VIOLATION member_not_allowed [dataset d, member 7]"), "{text}");
        assert!(text.contains("expected: allowed"), "{text}");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["findings"][0]["kind"], "member_not_allowed");
        assert_eq!(json["ok"], false);
    }
}
