//! Lineage use cases: where a member's data went and their privacy loss, what a model rests on, registration,
//! retirement, unlearning requests.

use crate::error::Result;
use crate::session::Session;
use consentry_lineage::{DatasetRecord, MemberLineage, ModelLineage, ModelRecord, ModelStatus, UnlearningRequest};
use std::path::Path;

/// A model registered by hand, and how many members already wait to be unlearned from it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RegisteredModel {
    /// The registry record.
    pub model: ModelRecord,
    /// Members who withdrew after its dataset was gated: open unlearning requests on it.
    pub unlearning_requests_opened: usize,
}

impl Session {
    /// Every dataset, model version and shard a member's data went into, under which consent event, the status
    /// now, their facts entries and their privacy loss.
    pub fn member_lineage(&self, member: u64) -> Result<MemberLineage> {
        Ok(self.registry()?.member(member)?)
    }

    /// One model version (id or a 6+ digit prefix): dataset, members per shard, the events it rests on, runs.
    pub fn model_lineage(&self, id: &str) -> Result<ModelLineage> {
        Ok(self.registry()?.model_lineage(id)?)
    }

    /// Registered model versions, optionally of one purpose and one status.
    pub fn models(&self, purpose: Option<&str>, status: Option<ModelStatus>) -> Result<Vec<ModelRecord>> {
        Ok(self.registry()?.models(purpose, status)?)
    }

    /// Registers a gated dataset from its directory (idempotent: the id is its manifest's BLAKE3).
    pub fn register_dataset(&self, dir: &Path) -> Result<DatasetRecord> {
        Ok(self.registry()?.register_dataset_dir(dir)?)
    }

    /// Registers a trained model from its directory with an unlearning deadline in seconds.
    pub fn register_model(&self, dir: &Path, deadline_secs: i64) -> Result<RegisteredModel> {
        let reg = self.registry()?;
        let model = reg.register_model_dir_with_deadline(dir, deadline_secs)?;
        let waiting = reg.open_requests()?.iter().filter(|r| r.model == model.id).count();
        Ok(RegisteredModel { model, unlearning_requests_opened: waiting })
    }

    /// Takes a model version out of service for good (closes its unlearning requests).
    pub fn retire(&self, id: &str) -> Result<ModelRecord> {
        Ok(self.registry()?.set_status(id, ModelStatus::Retired, consentry_lineage::now())?)
    }

    /// Unlearning requests still open (pending or overdue), or every one.
    pub fn unlearning_requests(&self, all: bool) -> Result<Vec<UnlearningRequest>> {
        let reg = self.registry()?;
        Ok(if all { reg.requests() } else { reg.open_requests() }?)
    }
}
