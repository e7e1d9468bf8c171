//! The synthetic network use case (demos, tests, benchmarks).

use crate::datadir::DataDir;
use crate::error::{AppError, Result};
use crate::progress::Progress;
use consentry_synth::{SynthConfig, SynthSummary};
use std::path::Path;
use std::time::Instant;

/// A generated network and how long it took.
#[derive(Debug, Clone)]
pub struct Generated {
    /// What was written.
    pub summary: SynthSummary,
    /// Wall-clock seconds.
    pub seconds: f64,
}

impl DataDir {
    /// Generates a synthetic network into `out` whose consent choices cover the purposes of `policy` (a file, or
    /// the policy in force).
    pub fn generate_network(
        &self,
        cfg: &SynthConfig,
        policy: Option<&Path>,
        out: &Path,
        progress: &dyn Progress,
    ) -> Result<Generated> {
        if cfg.members == 0 {
            return Err(AppError::bad_input("--members must be at least 1"));
        }
        let policy = self.load_policy(policy)?;
        let start = Instant::now();
        let summary = consentry_synth::generate(cfg, &policy, out, progress).map_err(|e| {
            let bad = e.is_bad_input();
            let e = AppError::from(e);
            if bad { e } else { e.context(format!("generating the network into {}", out.display())) }
        })?;
        Ok(Generated { summary, seconds: start.elapsed().as_secs_f64() })
    }
}
