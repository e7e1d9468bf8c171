//! Audit use cases: the online audit of a data directory, the evidence bundle export, the offline audit of a
//! bundle (which needs no session: an auditor runs it anywhere).

use crate::error::{AppError, Result};
use crate::session::Session;
use consentry_audit::{AuditOptions, ExportInput, ExportSummary, RegistryModels, Report};
use consentry_ledger::SignedTreeHead;
use std::path::Path;

/// Audits an exported evidence bundle, without the database or the service.
pub fn audit_bundle(dir: &Path, opts: &AuditOptions) -> Result<Report> {
    check_options(opts)?;
    Ok(consentry_audit::audit_bundle(dir, opts)?)
}

/// Refuses options no audit can honour.
fn check_options(opts: &AuditOptions) -> Result<()> {
    if opts.deadline_seconds.is_some_and(|d| d < 0) {
        return Err(AppError::bad_input("--deadline is a number of seconds ≥ 0"));
    }
    if opts.tolerance_seconds < 0 {
        return Err(AppError::bad_input("--tolerance is a number of seconds ≥ 0"));
    }
    Ok(())
}

/// Reads `--heads`: one signed tree head or an array of them, as JSON.
pub fn read_heads(path: &Path) -> Result<Vec<SignedTreeHead>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| AppError::bad_input(format!("cannot read --heads {}: {e}", path.display())))?;
    if let Ok(v) = serde_json::from_str::<Vec<SignedTreeHead>>(&text) {
        return Ok(v);
    }
    serde_json::from_str::<SignedTreeHead>(&text).map(|h| vec![h]).map_err(|e| {
        AppError::bad_input(format!("--heads {}: not a signed tree head or an array of them: {e}", path.display()))
    })
}

impl Session {
    /// Runs `f` on what the audit reads of the data directory: its ledger, the policy in force and the models.
    fn with_audit_input<T>(
        &self,
        now: i64,
        f: impl FnOnce(&ExportInput<'_>) -> std::result::Result<T, consentry_audit::AuditError>,
    ) -> Result<T> {
        let ledger = self.ledger()?;
        let policy = self.dir().policy_text(None)?;
        let earlier = self.earlier_policies(&policy.text)?;
        let models = RegistryModels::load(self.registry()?, self.dir().root(), &self.dir().models_dir())?;
        let datasets_dir = self.dir().datasets_dir();
        let mut cosignatures = Vec::new();
        for sth in ledger.store().checkpoints()? {
            if let Some(witnessed) = ledger.witnessed(&sth)? {
                cosignatures.push(consentry_audit::bundle::CosignedHead { tree_size: sth.head.tree_size, witnessed });
            }
        }
        let input = ExportInput {
            datasets_dir: &datasets_dir,
            store: ledger.store(),
            public_key: ledger.public_key(),
            policy_text: &policy.text,
            earlier_policies: &earlier,
            models: &models,
            now,
            cosignatures,
        };
        Ok(f(&input)?)
    }

    /// Audits the data directory's ledger, datasets and models as they are now.
    pub fn audit(&self, opts: &AuditOptions) -> Result<Report> {
        check_options(opts)?;
        let mut report = self.with_audit_input(opts.now, |input| consentry_audit::audit_online(input, opts))?;
        // The bundle carries entries, not the tiles proofs are served from: those are checked in the store itself.
        for m in self.ledger()?.tile_mismatches()? {
            report.findings.push(
                consentry_audit::Finding::violation(
                    consentry_audit::ViolationKind::LedgerTampered,
                    m.to_string(),
                    "Merkle tiles that match the log's entries",
                    "a tile that proofs would be built from, edited in the database",
                )
                .seq(m.first_seq),
            );
        }
        report.finish();
        Ok(report)
    }

    /// Writes an evidence bundle for `audit --offline` into `out` (which must not exist).
    pub fn export_bundle(&self, out: &Path) -> Result<ExportSummary> {
        consentry_audit::check_export_target(out)?;
        self.with_audit_input(consentry_ledger::now(), |input| consentry_audit::export(input, out))
    }
}
