//! The privacy officer's report: one value with every figure a regulator asks about — consent coverage over time
//! (by purpose, by jurisdiction, notice versions and Global Privacy Control), rows each dataset excluded, each
//! model's quality against its baseline and the oracle, the ε/utility curve of DP training, the distribution of
//! members' privacy loss, unlearning against its deadlines, the audit and the signed tree head with the commands
//! that check it. Everything is read from the data directory, its ledger and its registry; nothing is written.
//! Front ends render it (`consentry_server::report::render` as one HTML file, `--json` as it is).
//!
//! Cost is bounded for a million members: coverage is [`COVERAGE_INSTANTS`] instants (one snapshot build, then
//! incremental refreshes), and privacy loss is composed once per combination of model lines a member is in, found by
//! intersecting the lines' member bitmaps — never once per member.

use crate::dashboard::{CoverageSeries, DatasetOverview, ManifestState, SeriesPoint, UnlearningSummary};
use crate::error::{AppError, Result};
use crate::operator::{CoverageCell, QueuedRequest};
use crate::session::Session;
use consentry_learn::dp::PrivacyClaim;
use consentry_learn::model::MODEL_FILE;
use consentry_lineage::{ModelRecord, ModelStatus};
use consentry_policy::{Action, DenyReason, Source};
use roaring::RoaringTreemap;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Instants the coverage section evaluates, spread evenly from the log's first to its last event time.
pub const COVERAGE_INSTANTS: usize = 16;
/// Upper edges of the privacy-loss histogram's bins (ε); a last bin takes everything above.
pub const LOSS_BIN_EDGES: [f64; 8] = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0];
/// The most violation messages kept per kind (the count is always complete).
pub const MAX_MESSAGES_PER_KIND: usize = 20;

/// Whether the report runs the audit, takes one the caller already has, or leaves it out.
#[derive(Debug, Clone)]
pub enum AuditChoice {
    /// Run [`Session::audit`] at the report's instant with the deadline in force.
    Run,
    /// Use this report (the demo passes its own).
    Given(Box<consentry_audit::Report>),
    /// No audit section (`--no-audit`).
    Skip,
}

/// Everything the privacy officer's report shows.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// When, from where, by which version, under which policy.
    pub generated: Generated,
    /// The figures a reader with five minutes needs.
    pub summary: Summary,
    /// Consent coverage over time.
    pub coverage: Coverage,
    /// Every registered dataset with its rows excluded by reason.
    pub exclusions: Vec<DatasetOverview>,
    /// Every registered model version's quality.
    pub models: Vec<ModelQuality>,
    /// Utility against ε where models were trained with differential privacy.
    pub dp: DpCurve,
    /// The distribution of members' composed privacy loss.
    pub privacy_loss: PrivacyLossDistribution,
    /// Withdrawals and their removal from models against the deadline.
    pub unlearning: Unlearning,
    /// The audit's result; none with `--no-audit`.
    pub audit: Option<AuditResult>,
    /// The latest signed tree head and how to check everything yourself; none before the first checkpoint.
    pub verify: Option<Verification>,
}

/// Generation metadata.
#[derive(Debug, Clone, Serialize)]
pub struct Generated {
    /// When the report was made (Unix seconds).
    pub at: i64,
    /// The data directory it was made from.
    pub data_dir: String,
    /// The consentry version that made it.
    pub consentry_version: String,
    /// The policy in force: its version.
    pub policy_version: String,
    /// BLAKE3 of the policy's canonical form.
    pub policy_hash: String,
    /// The ledger's backend (`sqlite`, `postgres`).
    pub backend: String,
}

/// One purpose's allowed members now.
#[derive(Debug, Clone, Serialize)]
pub struct PurposeAllowed {
    /// Purpose key.
    pub purpose: String,
    /// Its human name.
    pub name: String,
    /// Members in the directory.
    pub members: u64,
    /// Of those, allowed.
    pub allowed: u64,
    /// `allowed / members` (0 without members).
    pub share: f64,
}

/// The plain-words summary at the top.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Members in the directory at the last instant.
    pub members: u64,
    /// Per purpose, at the last instant.
    pub allowed: Vec<PurposeAllowed>,
    /// Live model versions.
    pub live_models: usize,
    /// Model versions ever registered.
    pub model_versions: usize,
    /// Registered datasets.
    pub datasets: usize,
    /// Unlearning requests (a withdrawal that hit a model version).
    pub withdrawals: u64,
    /// Of those, removed by the deadline.
    pub honoured_on_time: u64,
    /// Removed after it.
    pub honoured_late: u64,
    /// Not yet removed.
    pub open: u64,
    /// Whether the audit passed; none without an audit.
    pub audit_passed: Option<bool>,
    /// Model versions whose `model.json` on disk is not the registered one (their figures are unverified).
    pub unverified_models: usize,
}

/// A notice version, as a marker on the coverage chart's time axis.
#[derive(Debug, Clone, Serialize)]
pub struct NoticeMarker {
    /// Purpose key.
    pub purpose: String,
    /// Purpose name.
    pub name: String,
    /// Notice version.
    pub version: u32,
    /// When it takes effect (Unix seconds).
    pub effective: i64,
    /// A material change: grants under earlier versions lapse.
    pub material: bool,
}

/// Members denied one purpose because of Global Privacy Control at one instant.
#[derive(Debug, Clone, Serialize)]
pub struct GpcPoint {
    /// The instant.
    pub at: i64,
    /// Members denied by GPC, per purpose key.
    pub denied: BTreeMap<String, u64>,
}

/// One jurisdiction's coverage over time: allowed member–purpose pairs over all purposes.
#[derive(Debug, Clone, Serialize)]
pub struct JurisdictionSeries {
    /// The jurisdiction rule key (`EEA`, `US-CA`, `default`).
    pub jurisdiction: String,
    /// Per instant: members × purposes, allowed pairs, share.
    pub points: Vec<SeriesPoint>,
}

/// Consent coverage over time.
#[derive(Debug, Clone, Serialize)]
pub struct Coverage {
    /// How the figures were computed, in one sentence.
    pub method: String,
    /// The ledger position every instant is evaluated at (the whole log as the report found it).
    pub position: u64,
    /// The log's first and last event times; none for a log without events.
    pub span: Option<(i64, i64)>,
    /// The instants, oldest first.
    pub instants: Vec<i64>,
    /// One series per purpose.
    pub by_purpose: Vec<CoverageSeries>,
    /// One series per jurisdiction rule.
    pub by_jurisdiction: Vec<JurisdictionSeries>,
    /// Purpose × jurisdiction at the last instant.
    pub latest: Vec<CoverageCell>,
    /// Every notice version of every purpose.
    pub notices: Vec<NoticeMarker>,
    /// Per instant, members denied because of Global Privacy Control (the snapshot's `gpc` denial bitmap).
    pub gpc: Vec<GpcPoint>,
    /// Withdrawals recorded from a GPC signal, over the whole log.
    pub gpc_withdrawals: u64,
    /// Purposes that honour GPC (the policy's `gpc` flag).
    pub gpc_purposes: Vec<String>,
}

/// One figure with its 95 % interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figure {
    /// The metric key (`recall_at_20`, `ndcg_at_10`, `top3`).
    pub metric: String,
    /// Its name for people (`Recall@20`).
    pub label: String,
    /// The value; none when the model did not record it.
    pub value: Option<f64>,
    /// Lower end of its 95 % interval.
    pub lo: Option<f64>,
    /// Upper end.
    pub hi: Option<f64>,
}

/// One row of a model's quality table: the model, its baseline or the oracle.
#[derive(Debug, Clone, Serialize)]
pub struct QualityRow {
    /// `model`, `baseline` or `oracle`.
    pub row: String,
    /// Its name for people (`popularity`, `most frequent intent`).
    pub label: String,
    /// The figures.
    pub figures: Vec<Figure>,
}

/// One model version's quality.
#[derive(Debug, Clone, Serialize)]
pub struct ModelQuality {
    /// Model version id.
    pub id: String,
    /// `job-recs`, `content`, `replies` or `items`.
    pub kind: String,
    /// Purpose key.
    pub purpose: String,
    /// Version in its line.
    pub version: u64,
    /// `live`, `superseded`, `retired`, `training`.
    pub status: String,
    /// When it was written (Unix seconds).
    pub trained: i64,
    /// Its files against the registry.
    pub files: ManifestState,
    /// Why the files are not verified.
    pub files_problem: Option<String>,
    /// ε when trained with differential privacy.
    pub dp_epsilon: Option<f64>,
    /// The headline metric's key (`recall_at_20` or `top3`).
    pub headline: String,
    /// Model, baseline and oracle rows.
    pub rows: Vec<QualityRow>,
    /// Why there is no oracle row, when there is none.
    pub oracle_note: Option<String>,
}

/// One point of the ε/utility curve.
#[derive(Debug, Clone, Serialize)]
pub struct DpPoint {
    /// The model version.
    pub model: String,
    /// Its kind.
    pub kind: String,
    /// ε; none for the non-DP reference (ε = ∞).
    pub epsilon: Option<f64>,
    /// The headline metric with its interval.
    pub figure: Figure,
    /// Whether the model's files are the registered ones.
    pub verified: bool,
}

/// Utility against ε.
#[derive(Debug, Clone, Serialize)]
pub struct DpCurve {
    /// Every DP model version's point, by kind then ε.
    pub points: Vec<DpPoint>,
    /// Per kind with DP points, the non-DP model of that kind (live first): the ε = ∞ reference.
    pub references: Vec<DpPoint>,
    /// What to do when no model used DP.
    pub how_to: Option<String>,
}

/// One bin of the privacy-loss histogram.
#[derive(Debug, Clone, Serialize)]
pub struct LossBin {
    /// Lower edge (exclusive, except 0).
    pub lo: f64,
    /// Upper edge (inclusive); none for the open last bin.
    pub hi: Option<f64>,
    /// Members whose composed ε falls in it.
    pub members: u64,
}

/// Members sharing one combination of DP model lines, and their composed loss.
#[derive(Debug, Clone, Serialize)]
pub struct LossGroup {
    /// The lines (first version ids) they are in.
    pub lines: Vec<String>,
    /// Composed ε.
    pub epsilon: f64,
    /// Composed δ.
    pub delta: f64,
    /// How many members.
    pub members: u64,
}

/// One model line, as the privacy-loss section lists it.
#[derive(Debug, Clone, Serialize)]
pub struct LossLineInfo {
    /// The line (its first version's id).
    pub line: String,
    /// Kind.
    pub kind: String,
    /// Purpose key.
    pub purpose: String,
    /// ε of its newest version; none without a formal bound.
    pub epsilon: Option<f64>,
    /// δ of its newest version.
    pub delta: Option<f64>,
    /// Members in any of its versions.
    pub members: u64,
}

/// The distribution of members' privacy loss over every member whose data is in a live model.
#[derive(Debug, Clone, Serialize)]
pub struct PrivacyLossDistribution {
    /// Members in at least one live model version.
    pub members: u64,
    /// Of those, members with a formal bound (in at least one DP line).
    pub bounded: u64,
    /// Members only in lines without a formal bound.
    pub only_unbounded: u64,
    /// Bounded members who are also in a line without a bound (their ε does not cover everything).
    pub also_unbounded: u64,
    /// Histogram of the bounded members' composed ε.
    pub bins: Vec<LossBin>,
    /// Each combination of DP lines and its members.
    pub groups: Vec<LossGroup>,
    /// Every model line.
    pub lines: Vec<LossLineInfo>,
    /// One sentence on how ε was composed.
    pub method: String,
}

/// Unlearning requests and their compliance.
#[derive(Debug, Clone, Serialize)]
pub struct Unlearning {
    /// Every request with its status at the report's instant.
    pub requests: Vec<QueuedRequest>,
    /// Compliance overall and per model version.
    pub summary: UnlearningSummary,
}

/// Violations of one kind.
#[derive(Debug, Clone, Serialize)]
pub struct ViolationGroup {
    /// The kind (`withdrawal_deadline_missed`, …).
    pub kind: String,
    /// How many.
    pub count: usize,
    /// Their messages (at most [`MAX_MESSAGES_PER_KIND`]).
    pub messages: Vec<String>,
}

/// The audit, as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AuditResult {
    /// No violation found.
    pub ok: bool,
    /// Violations in all.
    pub violations: usize,
    /// The time judged against.
    pub now: i64,
    /// Deadline applied (seconds).
    pub deadline_seconds: i64,
    /// Log entries rebuilt.
    pub ledger_entries: u64,
    /// Signed tree heads checked.
    pub checkpoints: usize,
    /// Consistency proofs verified.
    pub consistency_proofs: usize,
    /// Members in the directory.
    pub members: u64,
    /// Datasets checked.
    pub datasets: usize,
    /// Model versions checked.
    pub models: usize,
    /// Violations grouped by kind.
    pub by_kind: Vec<ViolationGroup>,
    /// Notes (findings that do not fail the audit).
    pub notes: Vec<String>,
}

/// One command that checks the report's claims.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyStep {
    /// What it checks.
    pub what: String,
    /// The command line.
    pub command: String,
}

/// The latest signed tree head and how to verify it.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    /// Entries it covers.
    pub tree_size: u64,
    /// Its Merkle root (hex).
    pub root: String,
    /// The log's id (BLAKE3 of the genesis key, hex).
    pub log_id: String,
    /// The signing key's id (hex).
    pub key_id: String,
    /// When it was signed (Unix seconds).
    pub signed_at: i64,
    /// The log's public key (`ledger.pub`), hex.
    pub public_key: String,
    /// Its fingerprint: the first 16 hex digits of its BLAKE3 (the log id's).
    pub fingerprint: String,
    /// Where the public key is.
    pub public_key_file: String,
    /// The commands, in order.
    pub steps: Vec<VerifyStep>,
}

impl Session {
    /// The privacy officer's report at `now`, with the audit as `audit` says.
    pub fn report(&self, now: i64, audit: AuditChoice) -> Result<Report> {
        let ledger = self.ledger()?;
        let policy = ledger.policy();
        let registry = self.registry()?;
        let generated = Generated {
            at: now,
            data_dir: self.dir().root().display().to_string(),
            consentry_version: env!("CARGO_PKG_VERSION").to_string(),
            policy_version: policy.version.clone(),
            policy_hash: policy.hash.clone(),
            backend: self.database().backend().to_string(),
        };
        let coverage = self.report_coverage(now)?;
        let exclusions = self.datasets_overview()?;
        let records = registry.models(None, None)?;
        let models = self.model_quality(&records)?;
        let dp = dp_curve(&models);
        let privacy_loss = self.privacy_loss(&records)?;
        let requests = self.unlearning_queue(true, now)?;
        let summary = self.unlearning_summary_of(&requests, &records, now)?;
        let audit = match audit {
            AuditChoice::Run => Some(self.audit(&consentry_audit::AuditOptions::at(now))?),
            AuditChoice::Given(r) => Some(*r),
            AuditChoice::Skip => None,
        }
        .map(|r| audit_result(&r));
        let verify = self.verification()?;
        let last = coverage.by_purpose.iter().filter_map(|s| s.points.last().map(|p| (s, p)));
        let allowed: Vec<PurposeAllowed> = last
            .map(|(s, p)| PurposeAllowed {
                purpose: s.purpose.clone(),
                name: s.name.clone(),
                members: p.members,
                allowed: p.allowed,
                share: p.share,
            })
            .collect();
        let c = &summary.compliance;
        let summary_block = Summary {
            members: allowed.iter().map(|a| a.members).max().unwrap_or(0),
            allowed,
            live_models: records.iter().filter(|m| m.status == ModelStatus::Live).count(),
            model_versions: records.len(),
            datasets: exclusions.len(),
            withdrawals: requests.len() as u64,
            honoured_on_time: c.completed_on_time,
            honoured_late: c.completed_late,
            open: c.open,
            audit_passed: audit.as_ref().map(|a| a.ok),
            unverified_models: models.iter().filter(|m| m.files == ManifestState::Altered).count(),
        };
        Ok(Report {
            generated,
            summary: summary_block,
            coverage,
            exclusions,
            models,
            dp,
            privacy_loss,
            unlearning: Unlearning { requests, summary },
            audit,
            verify,
        })
    }

    /// Coverage at [`COVERAGE_INSTANTS`] instants over the log's event-time span, evaluated at the whole log: one
    /// snapshot build per purpose, then refreshes forward in time (only members whose answer time can change are
    /// re-evaluated).
    fn report_coverage(&self, now: i64) -> Result<Coverage> {
        let ledger = self.ledger()?;
        let policy = ledger.policy();
        let store = ledger.store();
        let position = store.len()?;
        let (mut first, mut last, mut gpc_withdrawals) = (i64::MAX, i64::MIN, 0u64);
        store.scan_consent(1, position, &mut |_, _, ev| {
            first = first.min(ev.at);
            last = last.max(ev.at);
            if ev.source == Source::Gpc && ev.action == Action::Withdraw {
                gpc_withdrawals += 1;
            }
        })?;
        let notices: Vec<NoticeMarker> = policy
            .purposes
            .iter()
            .flat_map(|p| {
                p.notices.iter().map(move |n| NoticeMarker {
                    purpose: p.key.clone(),
                    name: p.name.clone(),
                    version: n.version,
                    effective: n.effective,
                    material: n.material,
                })
            })
            .collect();
        let gpc_purposes: Vec<String> =
            policy.purposes.iter().filter(|p| p.gpc_withdraws).map(|p| p.key.clone()).collect();
        let by_purpose_empty = || -> Vec<CoverageSeries> {
            policy
                .purposes
                .iter()
                .map(|p| CoverageSeries { purpose: p.key.clone(), name: p.name.clone(), points: Vec::new() })
                .collect()
        };
        let method = "Each instant evaluates every member's consent at that time over the whole log as it stands \
                      now (events count from their event time), exactly as a dataset cut then would; GPC shows the \
                      members a Global Privacy Control signal denied at each instant."
            .to_string();
        let mut out = Coverage {
            method,
            position,
            span: None,
            instants: Vec::new(),
            by_purpose: by_purpose_empty(),
            by_jurisdiction: Vec::new(),
            latest: Vec::new(),
            notices,
            gpc: Vec::new(),
            gpc_withdrawals,
            gpc_purposes,
        };
        if first > last {
            return Ok(out);
        }
        let last = last.min(now);
        let first = first.min(last);
        out.span = Some((first, last));
        let instants = instants(first, last, COVERAGE_INSTANTS);
        let purposes: Vec<_> = policy.purpose_ids().collect();
        let mut snaps = ledger.snapshots(&purposes, position, first)?;
        let mut by_j: BTreeMap<String, Vec<SeriesPoint>> = BTreeMap::new();
        for (i, &at) in instants.iter().enumerate() {
            if i > 0 {
                for snap in &mut snaps {
                    let root = snap.tree_root;
                    snap.refresh(store, policy, position, at, root)?;
                }
            }
            let mut cells: Vec<CoverageCell> = Vec::new();
            let mut gpc = BTreeMap::new();
            for snap in &snaps {
                cells.extend(crate::operator::cells_of(policy, snap, None));
                gpc.insert(snap.purpose_key().to_string(), snap.denied(DenyReason::Gpc).map_or(0, |b| b.len()));
            }
            for s in &mut out.by_purpose {
                let (members, allowed) = cells
                    .iter()
                    .filter(|c| c.purpose == s.purpose)
                    .fold((0u64, 0u64), |(m, a), c| (m + c.members, a + c.allowed));
                if members > 0 {
                    s.points.push(SeriesPoint { at, members, allowed, share: allowed as f64 / members as f64 });
                }
            }
            let mut pairs: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
            for c in &cells {
                let e = pairs.entry(c.jurisdiction.as_str()).or_default();
                e.0 += c.members;
                e.1 += c.allowed;
            }
            for (j, (members, allowed)) in pairs {
                let share = if members == 0 { 0.0 } else { allowed as f64 / members as f64 };
                by_j.entry(j.to_string()).or_default().push(SeriesPoint { at, members, allowed, share });
            }
            out.gpc.push(GpcPoint { at, denied: gpc });
            if i + 1 == instants.len() {
                out.latest = cells;
            }
        }
        out.by_jurisdiction =
            by_j.into_iter().map(|(jurisdiction, points)| JurisdictionSeries { jurisdiction, points }).collect();
        out.instants = instants;
        Ok(out)
    }

    /// Every registered model version's quality, newest first within each purpose: the registry's figures (copied
    /// from `model.json` when it was registered), marked unverified when `model.json` on disk is not the registered
    /// one; the replies oracle computed for live versions on a synthetic network.
    fn model_quality(&self, records: &[ModelRecord]) -> Result<Vec<ModelQuality>> {
        let registry = self.registry()?;
        let mut out = Vec::with_capacity(records.len());
        for m in records {
            let dir = registry.resolve(&m.dir);
            let (files, files_problem) = match consentry_gate::fsguard::read_inside(&dir, MODEL_FILE) {
                Err(e) => (ManifestState::Missing, Some(format!("{e}"))),
                Ok(bytes) => {
                    let hash = blake3::hash(&bytes).to_hex().to_string();
                    if hash == m.id {
                        (ManifestState::Verified, None)
                    } else {
                        (
                            ManifestState::Altered,
                            Some(format!(
                                "{} has BLAKE3 {}, not the registered {}: it was changed after registration; the \
                                 figures shown are the registry's and unverified — run `consentry audit`",
                                dir.join(MODEL_FILE).display(),
                                crate::dashboard::short(&hash),
                                crate::dashboard::short(&m.id)
                            )),
                        )
                    }
                }
            };
            let mut metrics = m.metrics.clone();
            let mut oracle_note = None;
            if m.kind == "replies" && metrics.get("oracle").is_none_or(|v| v.is_null()) {
                if m.status != ModelStatus::Live {
                    oracle_note = Some("no oracle: computed for live versions only".to_string());
                } else if files != ManifestState::Verified {
                    oracle_note = Some("no oracle: the model's files are not the registered ones".to_string());
                } else {
                    let dataset = registry.dataset(&m.dataset).map(|d| registry.resolve(&d.dir));
                    let joined = dataset
                        .ok()
                        .and_then(|d| crate::replies_oracle::evaluate(&dir, &d, &self.dir().network_dir()).ok());
                    match (joined, metrics.as_object_mut()) {
                        (Some(serde_json::Value::Object(j)), Some(obj)) => obj.extend(j),
                        _ => {
                            oracle_note = Some(
                                "no oracle: the data directory's network is not a synthetic one (the oracle exists \
                                 only for synthetic data)"
                                    .to_string(),
                            )
                        }
                    }
                }
            }
            let rows = quality_rows(&m.kind, &metrics);
            if oracle_note.is_none() && !rows.iter().any(|r| r.row == "oracle") {
                oracle_note = Some("no oracle: this model was not trained beside the synthetic oracle".to_string());
            }
            let dp_epsilon = PrivacyClaim::of_record(m.dp.as_ref()).ok().and_then(|c| match c {
                PrivacyClaim::Dp(d) => Some(d.epsilon),
                PrivacyClaim::None => None,
            });
            out.push(ModelQuality {
                id: m.id.clone(),
                kind: m.kind.clone(),
                purpose: m.purpose.clone(),
                version: m.version,
                status: m.status.as_str().to_string(),
                trained: m.created,
                files,
                files_problem,
                dp_epsilon,
                headline: headline(&m.kind).0.to_string(),
                rows,
                oracle_note,
            });
        }
        out.sort_by(|a, b| (&a.purpose, b.version, &a.id).cmp(&(&b.purpose, a.version, &b.id)));
        Ok(out)
    }

    /// Privacy loss over every member in a live model: per model line the union of its versions' member bitmaps,
    /// members partitioned by the DP lines they are in (bitmap intersections), ε composed once per part.
    fn privacy_loss(&self, records: &[ModelRecord]) -> Result<PrivacyLossDistribution> {
        let registry = self.registry()?;
        let by_id: HashMap<&str, &ModelRecord> = records.iter().map(|m| (m.id.as_str(), m)).collect();
        // Per line: its versions (oldest first) and the union of their members.
        let mut lines: BTreeMap<String, (Vec<&ModelRecord>, RoaringTreemap)> = BTreeMap::new();
        let mut live = RoaringTreemap::new();
        for m in records {
            let mut members = RoaringTreemap::new();
            for shard in registry.shard_members(&m.id)? {
                members |= shard;
            }
            if m.status == ModelStatus::Live {
                live |= &members;
            }
            let e = lines.entry(consentry_lineage::registry::line_root(&by_id, m).id.clone()).or_default();
            e.0.push(m);
            e.1 |= members;
        }
        let mut infos = Vec::new();
        let mut dp_lines: Vec<(String, consentry_dp::ModelLoss, &RoaringTreemap)> = Vec::new();
        let mut unbounded = RoaringTreemap::new();
        for (root, (versions, members)) in &lines {
            // The newest version's record, as a member's lineage counts a line.
            let newest = versions.iter().max_by_key(|m| (m.version, m.created)).copied();
            let Some(newest) = newest else { continue };
            let claim = PrivacyClaim::of_record(newest.dp.as_ref()).map_err(|e| {
                AppError::new(
                    crate::error::ErrorKind::Integrity,
                    format!(
                        "model {}: its dp record cannot be read ({e}); run `consentry audit`",
                        crate::dashboard::short(&newest.id)
                    ),
                )
            })?;
            let loss = claim.loss(root)?;
            infos.push(LossLineInfo {
                line: root.clone(),
                kind: newest.kind.clone(),
                purpose: newest.purpose.clone(),
                epsilon: loss.as_ref().map(|l| l.epsilon).filter(|e| e.is_finite()),
                delta: loss.as_ref().map(|l| l.delta),
                members: members.len(),
            });
            match loss {
                Some(l) => dp_lines.push((root.clone(), l, members)),
                None => unbounded |= members,
            }
        }
        // Partition the live members by the DP lines they are in.
        let mut parts: Vec<(RoaringTreemap, Vec<usize>)> = vec![(live.clone(), Vec::new())];
        for (i, (_, _, members)) in dp_lines.iter().enumerate() {
            let mut next = Vec::with_capacity(parts.len() * 2);
            for (set, idx) in parts {
                let inside = &set & *members;
                let outside = &set - *members;
                if !inside.is_empty() {
                    let mut with = idx.clone();
                    with.push(i);
                    next.push((inside, with));
                }
                if !outside.is_empty() {
                    next.push((outside, idx));
                }
            }
            parts = next;
        }
        let mut bins: Vec<LossBin> = std::iter::once(0.0)
            .chain(LOSS_BIN_EDGES)
            .zip(LOSS_BIN_EDGES.map(Some).into_iter().chain(std::iter::once(None)))
            .map(|(lo, hi)| LossBin { lo, hi, members: 0 })
            .collect();
        let (mut bounded, mut only_unbounded, mut also_unbounded) = (0u64, 0u64, 0u64);
        let mut groups = Vec::new();
        for (set, idx) in &parts {
            let n = set.len();
            if idx.is_empty() {
                only_unbounded += n;
                continue;
            }
            bounded += n;
            also_unbounded += (set & &unbounded).len();
            let losses: Vec<&consentry_dp::ModelLoss> = idx.iter().map(|&i| &dp_lines[i].1).collect();
            let c = consentry_dp::cumulative_loss(losses, consentry_dp::Conversion::Improved).map_err(|e| {
                AppError::new(crate::error::ErrorKind::Integrity, format!("composing privacy loss: {e}"))
            })?;
            let bin = LOSS_BIN_EDGES.iter().position(|&edge| c.epsilon <= edge).unwrap_or(LOSS_BIN_EDGES.len());
            if let Some(b) = bins.get_mut(bin) {
                b.members += n;
            }
            groups.push(LossGroup {
                lines: idx.iter().map(|&i| dp_lines[i].0.clone()).collect(),
                epsilon: c.epsilon,
                delta: c.delta,
                members: n,
            });
        }
        groups.sort_by(|a, b| a.epsilon.total_cmp(&b.epsilon).then(a.lines.cmp(&b.lines)));
        Ok(PrivacyLossDistribution {
            members: live.len(),
            bounded,
            only_unbounded,
            also_unbounded,
            bins,
            groups,
            lines: infos,
            method: "Per member, ε composed over every model line their data entered (the tighter of basic and RDP \
                     composition, as the privacy centre composes it), counting each line once at its newest \
                     version's parameters; over members in at least one live model version."
                .to_string(),
        })
    }

    /// The latest signed tree head and the commands that check it, with this data directory's paths.
    fn verification(&self) -> Result<Option<Verification>> {
        let ledger = self.ledger()?;
        let Some(sth) = ledger.store().checkpoints()?.pop() else { return Ok(None) };
        let public = ledger.public_key().to_hex();
        let root = self.dir().root().display().to_string();
        let data = if root == "consentry-data" { String::new() } else { format!(" --data {}", shell_word(&root)) };
        let pub_file = self.dir().public_key_file().display().to_string();
        let bundle = format!("{}-bundle", root.trim_end_matches('/'));
        let receipt_seq = self.unlearning_requests(true)?.first().map_or(1, |r| r.event_seq);
        let steps = vec![
            VerifyStep {
                what: "Rebuild the hash chain, Merkle tree and every signed tree head from the stored events"
                    .to_string(),
                command: format!("consentry{data} ledger verify"),
            },
            VerifyStep {
                what: "Sign a fresh tree head and compare its root with the one above (equal while nothing was \
                       appended since)"
                    .to_string(),
                command: format!("consentry{data} ledger checkpoint"),
            },
            VerifyStep {
                what: "Export the evidence and audit it without the database, against the public key you hold"
                    .to_string(),
                command: format!(
                    "consentry{data} audit export --out {b} && consentry audit --offline {b} --public-key {p}",
                    b = shell_word(&bundle),
                    p = shell_word(&pub_file)
                ),
            },
            VerifyStep {
                what: "Check one event's receipt (inclusion proof and signatures) offline".to_string(),
                command: format!(
                    "consentry{data} ledger receipt --event {receipt_seq} --out receipt.json && consentry ledger \
                     verify-receipt receipt.json --public-key {}",
                    shell_word(&pub_file)
                ),
            },
        ];
        Ok(Some(Verification {
            tree_size: sth.head.tree_size,
            root: hex::encode(sth.head.root_hash),
            log_id: hex::encode(sth.log_id),
            key_id: hex::encode(sth.key_id),
            signed_at: sth.head.timestamp,
            fingerprint: hex::encode(&sth.log_id[..8]),
            public_key: public,
            public_key_file: pub_file,
            steps,
        }))
    }
}

/// A path as one shell word: quoted when it holds anything but safe characters.
fn shell_word(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `n` instants from `first` to `last` inclusive, evenly spread (fewer when the span has fewer seconds).
fn instants(first: i64, last: i64, n: usize) -> Vec<i64> {
    let span = i128::from(last) - i128::from(first);
    if span <= 0 || n < 2 {
        return vec![last];
    }
    let n = (n as i128).min(span + 1);
    let mut out: Vec<i64> = (0..n).map(|i| (i128::from(first) + span * i / (n - 1)) as i64).collect();
    out.dedup();
    out
}

/// A kind's headline metric key and label, and its baseline row's key and label.
fn headline(kind: &str) -> (&'static str, &'static str, &'static str, &'static str) {
    if kind == "replies" {
        ("top3", "Top-3 intent accuracy", "most_frequent", "most frequent intent")
    } else {
        ("recall_at_20", "Recall@20", "popularity", "popularity")
    }
}

/// The model, baseline and oracle rows of a `metrics` object.
fn quality_rows(kind: &str, m: &serde_json::Value) -> Vec<QualityRow> {
    let (_, _, baseline, baseline_label) = headline(kind);
    let metrics: &[(&str, &str)] = if kind == "replies" {
        &[("top3", "Top-3 intent accuracy"), ("top1", "Top-1 intent accuracy")]
    } else {
        &[("recall_at_20", "Recall@20"), ("ndcg_at_10", "NDCG@10")]
    };
    let mut rows = Vec::new();
    for (row, key, label) in
        [("model", "model", "model"), ("baseline", baseline, baseline_label), ("oracle", "oracle", "oracle")]
    {
        let r = &m[key];
        if !r.is_object() {
            continue;
        }
        let figures = metrics.iter().map(|(metric, label)| figure(kind, r, metric, label)).collect();
        rows.push(QualityRow { row: row.to_string(), label: label.to_string(), figures });
    }
    rows
}

/// One metric of one row, with its interval where the model recorded one.
fn figure(kind: &str, r: &serde_json::Value, metric: &str, label: &str) -> Figure {
    let ci = if kind == "replies" { &r[format!("{metric}_ci")] } else { &r["ci"][metric] };
    Figure {
        metric: metric.to_string(),
        label: label.to_string(),
        value: r[metric].as_f64().filter(|v| v.is_finite()),
        lo: ci["lo"].as_f64().filter(|v| v.is_finite()),
        hi: ci["hi"].as_f64().filter(|v| v.is_finite()),
    }
}

/// The ε/utility curve: every DP model's headline figure, and per kind the non-DP reference.
fn dp_curve(models: &[ModelQuality]) -> DpCurve {
    let point = |m: &ModelQuality| -> Option<DpPoint> {
        let row = m.rows.iter().find(|r| r.row == "model")?;
        let figure = row.figures.iter().find(|f| f.metric == m.headline)?.clone();
        Some(DpPoint {
            model: m.id.clone(),
            kind: m.kind.clone(),
            epsilon: m.dp_epsilon,
            figure,
            verified: m.files == ManifestState::Verified,
        })
    };
    let mut points: Vec<DpPoint> = models.iter().filter(|m| m.dp_epsilon.is_some()).filter_map(point).collect();
    points.sort_by(|a, b| {
        (&a.kind, a.epsilon.unwrap_or(f64::INFINITY), &a.model)
            .partial_cmp(&(&b.kind, b.epsilon.unwrap_or(f64::INFINITY), &b.model))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut kinds: Vec<&str> = points.iter().map(|p| p.kind.as_str()).collect();
    kinds.dedup();
    let references = kinds
        .iter()
        .filter_map(|k| {
            let plain = models.iter().filter(|m| m.kind == *k && m.dp_epsilon.is_none());
            let mut plain: Vec<&ModelQuality> = plain.collect();
            plain.sort_by_key(|m| (m.status != "live", std::cmp::Reverse(m.trained)));
            plain.first().and_then(|m| point(m))
        })
        .collect();
    let how_to = points.is_empty().then(|| {
        "No model was trained with differential privacy. Train one to see utility against ε, e.g. `consentry train \
         --model job-recs --dp-epsilon 1` (then `--dp-epsilon 4`, `--dp-epsilon 8` for more points)."
            .to_string()
    });
    DpCurve { points, references, how_to }
}

/// The audit's report as the report shows it.
fn audit_result(r: &consentry_audit::Report) -> AuditResult {
    let mut by_kind: BTreeMap<&str, ViolationGroup> = BTreeMap::new();
    let mut notes = Vec::new();
    for f in &r.findings {
        if f.severity == consentry_audit::Severity::Violation {
            let g = by_kind.entry(f.kind.as_str()).or_insert_with(|| ViolationGroup {
                kind: f.kind.as_str().to_string(),
                count: 0,
                messages: Vec::new(),
            });
            g.count += 1;
            if g.messages.len() < MAX_MESSAGES_PER_KIND {
                g.messages.push(f.message.clone());
            }
        } else {
            notes.push(f.message.clone());
        }
    }
    AuditResult {
        ok: r.ok,
        violations: r.violations,
        now: r.now,
        deadline_seconds: r.deadline_seconds,
        ledger_entries: r.ledger.events,
        checkpoints: r.ledger.checkpoints,
        consistency_proofs: r.ledger.consistency_proofs,
        members: r.ledger.members,
        datasets: r.datasets.len(),
        models: r.models.len(),
        by_kind: by_kind.into_values().collect(),
        notes,
    }
}

/// Whether a dataset's counts are the gate's (shown), for front ends.
pub fn dataset_verified(d: &DatasetOverview) -> bool {
    d.manifest == ManifestState::Verified
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_span_first_to_last_evenly() {
        assert_eq!(instants(0, 150, 4), vec![0, 50, 100, 150]);
        assert_eq!(instants(10, 10, 16), vec![10]);
        assert_eq!(instants(0, 2, 16), vec![0, 1, 2]);
        let v = instants(i64::MIN, i64::MAX, 16);
        assert_eq!((v.len(), v[0], v[15]), (16, i64::MIN, i64::MAX));
    }

    #[test]
    fn recommender_and_reply_metrics_become_rows_with_intervals() {
        let m = serde_json::json!({
            "model": {"recall_at_20": 0.3, "ndcg_at_10": 0.2, "ci": {"recall_at_20": {"lo": 0.28, "hi": 0.32}}},
            "popularity": {"recall_at_20": 0.1, "ndcg_at_10": 0.05},
        });
        let rows = quality_rows("job-recs", &m);
        assert_eq!(rows.iter().map(|r| r.row.as_str()).collect::<Vec<_>>(), ["model", "baseline"]);
        assert_eq!(rows[0].figures[0].value, Some(0.3));
        assert_eq!((rows[0].figures[0].lo, rows[0].figures[0].hi), (Some(0.28), Some(0.32)));
        assert_eq!(rows[0].figures[1].lo, None);
        let r = serde_json::json!({
            "model": {"top3": 0.4, "top1": 0.2, "top3_ci": {"lo": 0.38, "hi": 0.42}},
            "most_frequent": {"top3": 0.2, "top1": 0.1},
            "oracle": {"top3": 0.5, "top1": 0.3},
        });
        let rows = quality_rows("replies", &r);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].label, "most frequent intent");
        assert_eq!(rows[0].figures[0].hi, Some(0.42));
    }

    #[test]
    fn shell_words_quote_what_a_shell_would_split() {
        assert_eq!(shell_word("consentry-data/ledger.pub"), "consentry-data/ledger.pub");
        assert_eq!(shell_word("my data/x"), "'my data/x'");
        assert_eq!(shell_word("a'b"), r"'a'\''b'");
    }
}
