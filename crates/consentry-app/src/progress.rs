//! Progress of long work, reported to whichever front end draws it (bars in the CLI, events in the service).

pub use consentry_synth::{NoProgress, Progress};

/// Hands a front end's progress to the gate.
pub(crate) struct GateProgress<'a>(pub &'a dyn Progress);

impl consentry_gate::Progress for GateProgress<'_> {
    fn stage(&self, name: &'static str, total: u64) {
        self.0.stage(name, total);
    }
    fn advance(&self, name: &'static str, n: u64) {
        self.0.advance(name, n);
    }
}
