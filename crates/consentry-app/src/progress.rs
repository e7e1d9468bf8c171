//! Progress of long work, reported to whichever front end draws it (bars in the CLI, events in the service).

pub use consentry_progress::{NoProgress, Progress};
