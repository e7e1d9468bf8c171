//! What the member's privacy centre shows beyond their choices: the data the platform holds about them, by category,
//! with a few examples from their own rows as training would see them (`member_data`), and where their data went —
//! one item per model version it entered, with its status in plain terms, and their privacy loss
//! (`member_data_uses`). Both read only the caller's own rows and registry entries.

use crate::error::Result;
use crate::member::CategoryInfo;
use crate::session::Session;
use consentry_gate::materialize::build_detector;
use consentry_gate::own::{OwnRows, own_rows};
use consentry_lineage::{MemberModel, ModelRecord, ModelStatus, RequestStatus, UnlearningRequest};
use consentry_policy::Policy;
use consentry_redact::Detector;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The most examples shown per category (one for a sensitive category: a single redacted snippet).
pub const MAX_EXAMPLES: usize = 3;

/// A purpose, named for people.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PurposeName {
    /// Purpose key.
    pub purpose: String,
    /// Its short human name.
    pub name: String,
}

/// One category of the member's data, as the privacy centre shows it.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DataCategory {
    /// The category key, its description and whether it is sensitive.
    #[serde(flatten)]
    pub category: CategoryInfo,
    /// How many of the member's rows hold it (across the tables that do).
    pub rows: u64,
    /// Up to three short values from rows that are the member's own (one, redacted, for a sensitive category); free
    /// text redacted exactly as training would see it.
    #[cfg_attr(feature = "openapi", schema(example = json!(["Data Engineer · 3"])))]
    pub examples: Vec<String>,
    /// The source tables it was found in.
    pub tables: Vec<String>,
    /// The features that may use it (with the member's consent); empty: none does.
    pub purposes: Vec<PurposeName>,
}

/// The data the platform holds about a member, by category.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberData {
    /// The member.
    pub member: u64,
    /// The categories their rows hold, in the policy's order; only categories with rows of theirs.
    pub categories: Vec<DataCategory>,
    /// What could not be read, in plain words (empty when everything was read).
    pub notes: Vec<String>,
}

/// Where a model version holding the member's data stands, for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum UseStatus {
    /// The version serves, with the member's data in it.
    InUse,
    /// The member withdrew; a version without them is due by `deadline`.
    RemovalPending,
    /// Unlearning replaced it by a version trained without them (`replaced_by`).
    Removed,
    /// A newer version replaced it for other reasons; the member's data is in that one too (listed as well).
    Superseded,
    /// Taken out of service for good.
    Retired,
}

/// One model version the member's data entered.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DataUse {
    /// Model version id.
    pub model: String,
    /// Its purpose, and the purpose's name (the id itself when the policy no longer declares it).
    #[serde(flatten)]
    pub purpose: PurposeName,
    /// The model's kind (`job-recs`, `content`, `replies`).
    pub kind: String,
    /// The version's position in its model line (1 = the first training, +1 per unlearning).
    pub version: u64,
    /// The same for people: `v3`.
    pub version_label: String,
    /// The dataset it was trained on.
    pub dataset: String,
    /// When it was trained (Unix seconds).
    pub trained_at: i64,
    /// The shard the member's rows trained.
    pub shard: u32,
    /// Where it stands for the member.
    pub status: UseStatus,
    /// A removal's deadline (`removal_pending`), Unix seconds.
    pub deadline: Option<i64>,
    /// Whether that deadline has passed without the removal (`removal_pending`), or the removal came late (`removed`).
    pub overdue: bool,
    /// When the member's data left the model line (`removed`, or `retired` after a withdrawal), Unix seconds.
    pub removed_at: Option<i64>,
    /// The withdrawal (ledger position) the removal answers.
    pub withdrawal_seq: Option<u64>,
    /// Seconds from the withdrawal to the removal.
    pub seconds_after_withdrawal: Option<i64>,
    /// The version that replaced it (`removed`: trained without the member; `superseded`: with them).
    pub replaced_by: Option<String>,
    /// That version's label (`v4`).
    pub replaced_by_label: Option<String>,
}

/// One model line's privacy loss for the member.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LossLine {
    /// The line (its first version's id).
    pub line: String,
    /// Its purpose and name.
    #[serde(flatten)]
    pub purpose: PurposeName,
    /// The model kind.
    pub kind: String,
    /// ε; none for a line trained without differential privacy (no formal bound) or an unbounded one.
    pub epsilon: Option<f64>,
    /// δ; none without differential privacy.
    pub delta: Option<f64>,
}

/// The member's privacy loss over everything their data trained.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PrivacyLoss {
    /// Per model line trained with differential privacy.
    pub lines: Vec<LossLine>,
    /// Lines trained without differential privacy: no formal bound on what they reveal.
    pub without_bound: Vec<LossLine>,
    /// ε composed over `lines` (the tighter of basic and RDP composition); none when there are no such lines.
    pub epsilon: Option<f64>,
    /// δ composed over `lines`.
    pub delta: Option<f64>,
    /// One sentence for people on what the figures mean.
    pub explanation: String,
}

/// "Where my data went": every model version the member's data entered, and their privacy loss.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DataUses {
    /// The member.
    pub member: u64,
    /// One item per model version (and shard), oldest first.
    pub items: Vec<DataUse>,
    /// Their privacy loss.
    pub privacy: PrivacyLoss,
}

/// A purpose's key and name as the policy in force has them.
fn purpose_name(policy: &Policy, key: &str) -> PurposeName {
    let name = policy.purpose_id(key).map_or_else(|| key.to_string(), |id| policy.purpose(id).name.clone());
    PurposeName { purpose: key.to_string(), name }
}

/// The columns whose values show a category of a table: its free text when it has any (that is what training
/// reads), else its columns but ids (a bare number says nothing), else all of them.
fn example_columns(table: &consentry_gate::TableDecl, columns: &[&String]) -> Vec<String> {
    let text: Vec<String> =
        columns.iter().filter(|c| table.redact.contains(c.as_str())).map(|c| c.to_string()).collect();
    if !text.is_empty() {
        return text;
    }
    let named: Vec<String> = columns.iter().filter(|c| !c.ends_with("_id")).map(|c| c.to_string()).collect();
    if named.is_empty() { columns.iter().map(|c| c.to_string()).collect() } else { named }
}

impl Session {
    /// The redaction detector the gate would build for the built-in source declaration, built once and rebuilt when
    /// the names table changes.
    fn member_detector(&self, sources: &consentry_gate::Sources) -> Result<Arc<Detector>> {
        let path = match sources.names.as_ref().and_then(|n| sources.table(&n.table)) {
            Some(t) => t.path.clone(),
            None => self.dir().network_dir(),
        };
        self.detector.get(&path, || {
            let stamp = crate::filecache::FileStamp::read(&path);
            Ok((stamp, build_detector(sources)?.0))
        })
    }

    /// The data the platform's tables (the data directory's network, declared by the built-in source declaration
    /// the gate uses) hold about `member`, by category: their row count, a few examples from rows that are theirs
    /// (free text redacted as training sees it) and the features that may use it. A missing network or an unreadable
    /// table is a note, not an error.
    pub fn member_data(&self, member: u64) -> Result<MemberData> {
        self.known_member(member)?;
        let ledger = self.ledger()?;
        let policy = ledger.policy();
        let mut notes = Vec::new();
        let empty = |notes: Vec<String>| Ok(MemberData { member, categories: Vec::new(), notes });
        if !self.dir().network_dir().is_dir() {
            notes.push("The platform's data tables are not available here, so there is nothing to show.".into());
            return empty(notes);
        }
        let sources = self.dir().load_sources(None, None)?.sources;
        let detector = match self.member_detector(&sources) {
            Ok(d) => Some(d),
            Err(_) => {
                notes
                    .push("Free text cannot be shown just now (it could not be redacted); counts are complete.".into());
                None
            }
        };
        // Per category: rows, examples, tables.
        let mut found: BTreeMap<&str, (u64, Vec<String>, Vec<String>)> = BTreeMap::new();
        for table in sources.tables.iter().filter(|t| !t.members.is_empty()) {
            let mut by_category: BTreeMap<&str, Vec<&String>> = BTreeMap::new();
            for (column, category) in &table.columns {
                by_category.entry(category.as_str()).or_default().push(column);
            }
            let shown: BTreeMap<&str, Vec<String>> =
                by_category.iter().map(|(cat, cols)| (*cat, example_columns(table, cols))).collect();
            let mut asked: Vec<String> = shown.values().flatten().cloned().collect();
            asked.sort();
            asked.dedup();
            // Without a detector, `own_rows` never shows free text.
            let own: OwnRows = match own_rows(table, member, &asked, 2 * MAX_EXAMPLES, detector.as_deref()) {
                Ok(o) => o,
                Err(_) => {
                    notes.push(format!("Your rows in the `{}` table could not be read just now.", table.name));
                    continue;
                }
            };
            if own.rows == 0 {
                continue;
            }
            for (cat, cols) in &shown {
                let entry = found.entry(cat).or_default();
                entry.0 += own.rows;
                entry.2.push(table.name.clone());
                let limit = if policy.category(cat).is_some_and(|c| c.sensitive) { 1 } else { MAX_EXAMPLES };
                for row in &own.samples {
                    if entry.1.len() >= limit {
                        break;
                    }
                    // The category's columns in the table's order; whitespace (line breaks in messages) as spaces.
                    let parts: Vec<String> = own
                        .columns
                        .iter()
                        .zip(row)
                        .filter(|(c, _)| cols.contains(c))
                        .filter_map(|(_, v)| v.as_deref())
                        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
                        .filter(|v| !v.is_empty())
                        .collect();
                    let example = parts.join(" · ");
                    if !example.is_empty() && !entry.1.contains(&example) {
                        entry.1.push(example);
                    }
                }
            }
        }
        // In the policy's order; categories the policy does not know (validation rules them out) last.
        let order: HashMap<&str, usize> =
            policy.categories.iter().enumerate().map(|(i, c)| (c.key.as_str(), i)).collect();
        let mut categories: Vec<DataCategory> = found
            .into_iter()
            .map(|(cat, (rows, examples, tables))| DataCategory {
                category: CategoryInfo::of(policy, cat),
                rows,
                examples,
                tables,
                purposes: policy
                    .purposes
                    .iter()
                    .filter(|p| p.allows_category(cat))
                    .map(|p| PurposeName { purpose: p.key.clone(), name: p.name.clone() })
                    .collect(),
            })
            .collect();
        categories.sort_by_key(|c| order.get(c.category.key.as_str()).copied().unwrap_or(usize::MAX));
        Ok(MemberData { member, categories, notes })
    }

    /// "Where my data went": every model version `member`'s data entered (from [`Session::member_lineage`]), with
    /// its status for them — in use, removal pending (deadline), removed (when, by which version, how long after
    /// the withdrawal), superseded or retired — and their privacy loss per model line and composed.
    pub fn member_data_uses(&self, member: u64) -> Result<DataUses> {
        let ledger = self.ledger()?;
        let policy = ledger.policy();
        let lineage = self.member_lineage(member)?;
        let models: HashMap<String, ModelRecord> =
            self.models(None, None)?.into_iter().map(|m| (m.id.clone(), m)).collect();
        let awaiting = self.withdrawals_awaiting_intake(member)?;
        let now = consentry_ledger::now();
        let items = lineage
            .models
            .iter()
            .map(|m| data_use(policy, m, &lineage.requests, &models, awaiting.get(m.purpose.as_str()), now))
            .collect();
        let line = |root: &str| {
            let record = models.get(root);
            let found = lineage.models.iter().find(|m| m.model == root);
            let (purpose, kind) = match (record, found) {
                (Some(r), _) => (r.purpose.clone(), r.kind.clone()),
                (None, Some(m)) => (m.purpose.clone(), m.kind.clone()),
                (None, None) => (String::new(), String::new()),
            };
            LossLine {
                line: root.to_string(),
                purpose: purpose_name(policy, &purpose),
                kind,
                epsilon: None,
                delta: None,
            }
        };
        let p = &lineage.privacy;
        let lines: Vec<LossLine> = p
            .lines
            .iter()
            .map(|l| LossLine {
                epsilon: l.epsilon.is_finite().then_some(l.epsilon),
                delta: Some(l.delta),
                ..line(&l.model)
            })
            .collect();
        let without_bound: Vec<LossLine> = p.without_bound.iter().map(|root| line(root)).collect();
        let epsilon = p.cumulative.as_ref().and_then(|c| c.epsilon.is_finite().then_some(c.epsilon));
        let delta = p.cumulative.as_ref().map(|c| c.delta);
        let explanation = explain_loss(epsilon, without_bound.len(), lineage.models.is_empty());
        Ok(DataUses { member, items, privacy: PrivacyLoss { lines, without_bound, epsilon, delta, explanation } })
    }
}

/// A withdrawal the unlearning worker has not read yet: its position and the deadline the worker will give it.
#[derive(Debug, Clone, Copy)]
struct Awaiting {
    seq: u64,
    deadline: i64,
}

impl Session {
    /// Per purpose, the member's standing withdrawal that the unlearning worker has not taken in yet (past its
    /// cursor), with the deadline intake will set (the withdrawal's time plus the service's deadline): so a member who
    /// just withdrew reads "removal pending by …", not "in use", until the next pass opens the request.
    fn withdrawals_awaiting_intake(&self, member: u64) -> Result<HashMap<String, Awaiting>> {
        let cursor = self.registry()?.cursor(consentry_lineage::worker::DEFAULT_CURSOR)?;
        let deadline_secs = crate::unlearn::UnlearnOptions::service().deadline_secs;
        let mut latest: HashMap<String, &consentry_ledger::Event> = HashMap::new();
        let events = self.member_events(member)?;
        for e in &events {
            latest.insert(e.body.purpose.clone(), e);
        }
        Ok(latest
            .into_iter()
            .filter(|(_, e)| e.body.action == consentry_policy::Action::Withdraw && e.seq > cursor)
            .map(|(p, e)| (p, Awaiting { seq: e.seq, deadline: e.body.event_time.saturating_add(deadline_secs) }))
            .collect())
    }
}

/// One model version's item for the member.
fn data_use(
    policy: &Policy,
    m: &MemberModel,
    requests: &[UnlearningRequest],
    models: &HashMap<String, ModelRecord>,
    awaiting: Option<&Awaiting>,
    now: i64,
) -> DataUse {
    let label = |id: &str| models.get(id).map(|m| format!("v{}", m.version));
    let mut item = DataUse {
        model: m.model.clone(),
        purpose: purpose_name(policy, &m.purpose),
        kind: m.kind.clone(),
        version: m.version,
        version_label: format!("v{}", m.version),
        dataset: m.dataset.clone(),
        trained_at: m.trained,
        shard: m.shard,
        status: UseStatus::InUse,
        deadline: None,
        overdue: false,
        removed_at: None,
        withdrawal_seq: None,
        seconds_after_withdrawal: None,
        replaced_by: None,
        replaced_by_label: None,
    };
    let mine: Vec<&UnlearningRequest> = requests.iter().filter(|q| q.model == m.model).collect();
    if let Some(q) = mine.iter().find(|q| q.completed_at.is_some()) {
        item.status = if q.new_model.is_some() { UseStatus::Removed } else { UseStatus::Retired };
        item.removed_at = q.completed_at;
        item.withdrawal_seq = Some(q.event_seq);
        item.seconds_after_withdrawal = q.completed_at.map(|t| (t - q.requested_at).max(0));
        item.overdue = q.status == RequestStatus::Missed;
        item.replaced_by_label = q.new_model.as_deref().and_then(label);
        item.replaced_by = q.new_model.clone();
        return item;
    }
    if let Some(q) = mine.first() {
        item.status = UseStatus::RemovalPending;
        item.deadline = Some(q.deadline);
        item.withdrawal_seq = Some(q.event_seq);
        item.overdue = q.status == RequestStatus::Missed || q.deadline < now;
        return item;
    }
    // A live version trained before a withdrawal the worker has not read yet: pending, with the deadline intake sets.
    if m.status == ModelStatus::Live
        && let Some(w) = awaiting
    {
        item.status = UseStatus::RemovalPending;
        item.deadline = Some(w.deadline);
        item.withdrawal_seq = Some(w.seq);
        item.overdue = w.deadline < now;
        return item;
    }
    item.status = match m.status {
        ModelStatus::Live => UseStatus::InUse,
        ModelStatus::Superseded => UseStatus::Superseded,
        ModelStatus::Retired => UseStatus::Retired,
    };
    if m.status == ModelStatus::Superseded
        && let Some(next) = models.values().find(|n| n.supersedes.as_deref() == Some(m.model.as_str()))
    {
        item.replaced_by = Some(next.id.clone());
        item.replaced_by_label = Some(format!("v{}", next.version));
    }
    item
}

/// The privacy-loss sentence: what ε means, the member's figure, and lines with no formal bound.
fn explain_loss(epsilon: Option<f64>, unbounded: usize, nothing: bool) -> String {
    if nothing {
        return "Your data has not trained any model, so it has revealed nothing about you.".into();
    }
    let bound = match epsilon {
        Some(e) => format!(
            "ε (epsilon) bounds how much the models trained on your data can reveal about you — the smaller the \
             better, under 1 is strong — and yours is {e:.2} in total"
        ),
        None => "No model trained on your data carries a formal privacy bound (ε)".to_string(),
    };
    match (epsilon, unbounded) {
        (Some(_), 0) | (None, _) => format!("{bound}."),
        (Some(_), n) => format!(
            "{bound}; {n} model line{} trained without differential privacy {} no such bound.",
            if n == 1 { "" } else { "s" },
            if n == 1 { "has" } else { "have" }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loss_sentence_names_the_figure_and_the_unbounded_lines() {
        assert!(explain_loss(None, 0, true).contains("not trained any model"));
        let s = explain_loss(Some(1.234), 0, false);
        assert!(s.contains("1.23") && s.ends_with('.'), "{s}");
        let s = explain_loss(Some(0.5), 2, false);
        assert!(s.contains("2 model lines") && s.contains("have no such bound"), "{s}");
        assert!(explain_loss(None, 1, false).contains("No model"));
    }

    fn request(model: &str, completed: Option<i64>, new_model: Option<&str>) -> UnlearningRequest {
        UnlearningRequest {
            member: 5,
            purpose: "train_ai_system.job_recommendations".into(),
            event_seq: 70,
            model: model.into(),
            requested_at: 1_000,
            deadline: 1_000 + 86_400,
            status: if completed.is_some() { RequestStatus::Done } else { RequestStatus::Pending },
            new_model: new_model.map(str::to_string),
            completed_at: completed,
        }
    }

    fn model(id: &str, status: ModelStatus) -> MemberModel {
        MemberModel {
            model: id.into(),
            kind: "job-recs".into(),
            purpose: "train_ai_system.job_recommendations".into(),
            dataset: "d".into(),
            version: 3,
            shard: 1,
            consent_event: Some(1),
            consent_time: Some(1),
            trained: 500,
            status,
            status_changed: None,
            removed_at: None,
            removed_by: None,
            removed_late_by: None,
            state: String::new(),
        }
    }

    #[test]
    fn each_model_version_gets_its_status_for_the_member() {
        let policy = Policy::default_policy();
        let next = ModelRecord {
            id: "new".into(),
            kind: "job-recs".into(),
            purpose: "train_ai_system.job_recommendations".into(),
            dataset: "d".into(),
            version: 4,
            supersedes: Some("old".into()),
            status: ModelStatus::Live,
            status_changed: None,
            dir: "x".into(),
            shard_function: consentry_gate::ShardFunction::for_purpose("train_ai_system.job_recommendations", 4),
            metrics: serde_json::Value::Null,
            dp: None,
            created: 1_041,
            cause: None,
        };
        let label: HashMap<String, ModelRecord> = [("new".to_string(), next)].into_iter().collect();
        let live = model("old", ModelStatus::Live);
        let u = data_use(&policy, &live, &[], &label, None, 2_000);
        assert_eq!(
            (u.status, u.version_label.as_str(), u.purpose.name.as_str()),
            (UseStatus::InUse, "v3", "Job recommendations")
        );
        let u = data_use(&policy, &live, &[request("old", None, None)], &label, None, 2_000);
        assert_eq!((u.status, u.deadline), (UseStatus::RemovalPending, Some(87_400)));
        let gone = model("old", ModelStatus::Superseded);
        let u = data_use(&policy, &gone, &[request("old", Some(1_041), Some("new"))], &label, None, 2_000);
        assert_eq!(u.status, UseStatus::Removed);
        assert_eq!((u.removed_at, u.seconds_after_withdrawal), (Some(1_041), Some(41)));
        assert_eq!((u.replaced_by.as_deref(), u.replaced_by_label.as_deref()), (Some("new"), Some("v4")));
        // Another member's request on the same model is not the member's (requests come filtered by member).
        let u = data_use(
            &policy,
            &model("old", ModelStatus::Retired),
            &[request("other", None, None)],
            &label,
            None,
            2_000,
        );
        assert_eq!(u.status, UseStatus::Retired);
        let u = data_use(&policy, &gone, &[], &label, None, 2_000);
        assert_eq!((u.status, u.replaced_by_label.as_deref()), (UseStatus::Superseded, Some("v4")));
        assert_eq!(serde_json::to_value(UseStatus::RemovalPending).unwrap(), "removal_pending");
        // A withdrawal the worker has not read yet: a live version is already "removal pending" with the deadline
        // intake will set, overdue once past it; a version no longer live is not.
        let waiting = Awaiting { seq: 77, deadline: 3_000 };
        let u = data_use(&policy, &live, &[], &label, Some(&waiting), 2_000);
        assert_eq!(
            (u.status, u.deadline, u.withdrawal_seq, u.overdue),
            (UseStatus::RemovalPending, Some(3_000), Some(77), false)
        );
        assert!(data_use(&policy, &live, &[], &label, Some(&waiting), 3_001).overdue);
        let u = data_use(&policy, &gone, &[], &label, Some(&waiting), 2_000);
        assert_eq!(u.status, UseStatus::Superseded);
    }
}
