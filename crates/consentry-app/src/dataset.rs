//! Opening a gated dataset for reading outside `learn` (the Python package hands it to pandas, Polars, PyTorch): the
//! same check `learn` makes before training, and what consent says about its members today — how many have withdrawn
//! for its purpose since it was cut, and how many of those withdrawals are past the unlearning deadline.

use crate::error::{AppError, ErrorKind, Result};
use crate::session::Session;
use crate::unlearn::UnlearnOptions;
use consentry_learn::LearnError;
use consentry_learn::data::Dataset;
use consentry_ledger::position::At;
use consentry_policy::Action;
use std::collections::HashMap;
use std::path::Path;

/// A dataset whose files were checked against its manifest, with the withdrawals since it was cut.
#[derive(Debug, Clone)]
pub struct DatasetCheck {
    /// The checked dataset (directory, manifest, manifest hash).
    pub dataset: Dataset,
    /// Members in the dataset (its member bitmap).
    pub members: u64,
    /// Members of the dataset who withdrew for its purpose after its ledger position and are not allowed now.
    pub withdrawn: u64,
    /// Of those, members whose first withdrawal since is older than the unlearning deadline: data nobody may still
    /// use (models trained on it must have forgotten them by now).
    pub past_deadline: u64,
    /// The unlearning deadline applied (seconds from a withdrawal), the service's.
    pub deadline_secs: i64,
    /// The ledger position the withdrawals were counted through (the whole log when opened).
    pub position: u64,
}

impl Session {
    /// Opens a gated dataset after `learn`'s check (files, rows, row commitments and member bitmap against the
    /// manifest; evaluation time), refuses one cut from another ledger, and counts the members who withdrew for its
    /// purpose since. An altered dataset is an `Integrity` error naming what differs.
    pub fn open_dataset(&self, dir: &Path) -> Result<DatasetCheck> {
        let dataset = Dataset::open(dir).map_err(dataset_error)?;
        let bitmap = dataset.members().map_err(dataset_error)?;
        let m = &dataset.manifest;
        let snap = self.snapshot(&m.purpose, At::Now)?;
        let ledger = self.ledger()?;
        let other_ledger = |why: String| {
            AppError::new(
                ErrorKind::Integrity,
                format!(
                    "dataset {}: {why}; it was not cut from the ledger in {}",
                    dir.display(),
                    self.dir().root().display()
                ),
            )
        };
        if m.ledger.position > snap.position() {
            return Err(other_ledger(format!(
                "its manifest names ledger position {}, but this log has only {} entries",
                m.ledger.position,
                snap.position()
            )));
        }
        let root = if m.ledger.position == 0 { None } else { Some(hex::encode(ledger.root(m.ledger.position)?)) };
        if let Some(root) = root
            && root != m.ledger.tree_root
        {
            return Err(other_ledger(format!(
                "its manifest's tree root at position {} is {}, this log's is {root}",
                m.ledger.position, m.ledger.tree_root
            )));
        }
        // The first withdrawal since the cut of every member of the dataset who is not allowed now: intake gives it
        // the deadline the unlearning worker applies.
        let mut first: HashMap<u64, i64> = HashMap::new();
        ledger.store().scan(m.ledger.position + 1, snap.position(), &mut |s| {
            let e = &s.event.body;
            if e.action == Action::Withdraw
                && e.purpose == m.purpose
                && bitmap.contains(e.member_id)
                && !snap.is_allowed(e.member_id)
            {
                first.entry(e.member_id).or_insert(e.event_time);
            }
            Ok(())
        })?;
        let deadline_secs = UnlearnOptions::service().deadline_secs;
        let now = consentry_ledger::now();
        let past_deadline = first.values().filter(|&&at| at.saturating_add(deadline_secs.max(0)) < now).count() as u64;
        Ok(DatasetCheck {
            members: bitmap.len(),
            withdrawn: first.len() as u64,
            past_deadline,
            deadline_secs,
            position: snap.position(),
            dataset,
        })
    }
}

/// `learn`'s check alone, for a front end without a ledger at hand: the dataset and its member count (consent since
/// the cut is not counted; [`Session::open_dataset`] does that).
pub fn check_dataset_files(dir: &Path) -> Result<(Dataset, u64)> {
    let dataset = Dataset::open(dir).map_err(dataset_error)?;
    let members = dataset.members().map_err(dataset_error)?.len();
    Ok((dataset, members))
}

/// `learn`'s refusal as an app error: an altered dataset is failed evidence, the rest as the CLI reports them.
fn dataset_error(e: LearnError) -> AppError {
    match e {
        e @ LearnError::Altered { .. } => AppError::from(e).with_kind(ErrorKind::Integrity),
        e => AppError::from(e),
    }
}
