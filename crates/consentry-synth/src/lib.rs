//! A synthetic professional network, realistic enough that models trained on
//! it learn something real and redaction is truly tested.
//!
//! Everything is drawn from a hidden world (skills, topic interests, activity
//! levels) with ChaCha streams from one seed: the same seed gives
//! byte-identical Parquet files. Tables (all in one output directory):
//!
//! | file | rows |
//! |---|---|
//! | `members.parquet` | one per member: names, e-mail, phone, country, region, jurisdiction, birth date (≈ 2 % minors), industry, title, seniority, skills, joined |
//! | `employment.parquet` | employment history: company, title, start and end dates |
//! | `connections.parquet` | undirected connections with homophily by industry and country |
//! | `jobs.parquet` | postings: title, company, industry, country, seniority, required skills |
//! | `job_activity.parquet` | views and applications driven by a hidden member–job affinity |
//! | `posts.parquet` | posts with a topic and free text carrying planted PII |
//! | `feed_activity.parquet` | reactions and comments driven by hidden topic interests |
//! | `messages.parquet` | message threads between connected members: openings of nine kinds, replies from a long-tailed inventory whose intent depends on the message answered |
//! | `posts_pii.parquet`, `messages_pii.parquet` | ground truth: byte span and type of every planted PII item |
//! | `messages_truth.parquet` | ground truth of the reply oracle: per message, the opening's kind or the reply's intent, which is what a reply to it is drawn conditional on |
//! | `consent_choices.parquet` | grant and withdraw events per member and purpose, with notice versions, sources and GPC signals |
//! | `synth.json` | the run: seed, as-of date, row counts, file hashes |
//!
//! Column layouts are in [`schemas`]; times are UTC timestamps (millisecond
//! unit, whole seconds), dates are calendar days.
//!
//! Replies: an opening message has a kind ([`text::MESSAGE_KINDS`]: recruiter outreach, referral request, …); a
//! reply's intent is drawn from P(intent | kind of the opening answered) or, for a reply to a reply, P(intent |
//! intent of the reply answered), mixed with a [`text::GENERIC_REPLY_SHARE`] of message-independent replies, and its
//! text from the intent's phrasings by popularity. [`text::reply_distribution`] and
//! [`text::reply_intent_distribution`] are that exact law — the reply oracle, for benchmarks — and
//! `messages_truth.parquet` ([`read_reply_conditions`]) says which condition each message sets. The ground-truth
//! tables are never named by a source declaration, so nothing gated or trained ever reads them.

mod generate;
pub mod names;
pub mod oracle;
mod out;
pub mod pii;
mod read;
pub mod schemas;
pub mod text;
mod world;

pub use out::{Col, TableInfo, hash_file};
pub use read::{
    ChoiceRow, MemberRow, read_consent_choices, read_consent_choices_file, read_members, read_members_file,
    read_reply_conditions,
};

use chrono::NaiveDate;
use consentry_policy::Policy;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What to generate.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SynthConfig {
    /// Number of members (ids `1..=members`).
    pub members: u64,
    /// Seed of every random stream.
    pub seed: u64,
    /// The day the network is observed; activity covers the year before it.
    pub as_of: NaiveDate,
}

impl SynthConfig {
    /// The default observation day: fixed, so runs replay whatever today's date is.
    pub fn default_as_of() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or_default()
    }

    /// `as_of` at midnight UTC, in Unix seconds.
    pub fn as_of_timestamp(&self) -> i64 {
        self.as_of.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc().timestamp()
    }
}

/// What went wrong while generating or reading a network.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SynthError {
    /// A file could not be created, written, renamed or read.
    #[error("{path}: {source}")]
    Io {
        /// The file at fault.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A table file could not be opened or put in place where it was asked for.
    #[error(transparent)]
    Output(#[from] consentry_files::OutputError),
    /// Parquet encoding or decoding failed.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Arrow batch assembly failed.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// A table exists but does not have the columns this version writes.
    #[error("{path}: column `{column}` is missing or not {expected}; regenerate the network with `consentry synth`")]
    Schema {
        /// The file at fault.
        path: PathBuf,
        /// The column looked for.
        column: String,
        /// The Arrow type expected.
        expected: &'static str,
    },
    /// A value in a table is not one this version understands.
    #[error("{path}: row {row}: {message}")]
    Value {
        /// The file at fault.
        path: PathBuf,
        /// 0-based row number.
        row: usize,
        /// What is wrong with it.
        message: String,
    },
    /// A Parquet file could not be read (not Parquet, truncated, or corrupt).
    #[error("{path}: cannot be read as Parquet: {source}")]
    ParquetFile {
        /// The file at fault.
        path: PathBuf,
        /// The reader's error (Parquet or Arrow).
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The configuration cannot produce a network.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A generator thread panicked (a bug; please report it).
    #[error("a generator thread panicked")]
    Panicked,
}

impl SynthError {
    /// True when the request itself cannot be met (exit code 2), not when generating failed.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, SynthError::Config(_))
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> SynthError {
        SynthError::Io { path: path.to_path_buf(), source }
    }
}

pub use consentry_progress::{NoProgress, Progress};

/// The result of a run, also written as `synth.json` beside the tables.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SynthSummary {
    /// The configuration that produced the files.
    pub config: SynthConfig,
    /// Version of the generator (the same version and seed give the same bytes).
    pub generator: String,
    /// Every table written, in name order.
    pub tables: Vec<TableInfo>,
    /// Members per jurisdiction code.
    pub members_by_jurisdiction: BTreeMap<String, u64>,
    /// Members younger than 18 on the as-of day.
    pub minors: u64,
}

/// The name of the run summary file in an output directory.
pub const SUMMARY_FILE: &str = "synth.json";

/// Generates a network into `out` (created if missing) for the purposes of `policy`.
pub fn generate(
    cfg: &SynthConfig,
    policy: &Policy,
    out: &Path,
    progress: &dyn Progress,
) -> Result<SynthSummary, SynthError> {
    if cfg.members == 0 || cfg.members > u64::from(u32::MAX) {
        return Err(SynthError::Config(format!("members must be between 1 and {}, got {}", u32::MAX, cfg.members)));
    }
    check_memory(cfg.members, available_memory())?;
    std::fs::create_dir_all(out).map_err(|e| SynthError::io(out, e))?;
    let tables = generate::run(cfg, policy, out, progress)?;
    let members = read::read_members(out)?;
    let mut members_by_jurisdiction = BTreeMap::new();
    let as_of = cfg.as_of_timestamp();
    let mut minors = 0;
    for m in &members {
        *members_by_jurisdiction.entry(m.jurisdiction.clone()).or_insert(0) += 1;
        minors += u64::from(consentry_policy::age_at(m.birth_date, as_of) < 18);
    }
    let summary = SynthSummary {
        config: cfg.clone(),
        generator: format!("consentry-synth {}", env!("CARGO_PKG_VERSION")),
        tables,
        members_by_jurisdiction,
        minors,
    };
    let path = out.join(SUMMARY_FILE);
    let json = serde_json::to_vec_pretty(&summary).map_err(|e| SynthError::io(&path, e.into()))?;
    std::fs::write(&path, json).map_err(|e| SynthError::io(&path, e))?;
    Ok(summary)
}

/// Memory the generator holds per member at its peak, rounded up from a measurement (about 390
/// bytes per member between 100,000 and 400,000 members: the world, its members and the writers).
pub const PEAK_BYTES_PER_MEMBER: u64 = 512;

/// Memory the generator holds whatever the size (catalogues, buffers, the runtime).
const PEAK_BASE_BYTES: u64 = 256 << 20;

/// About how much memory generating `members` members needs at its peak.
pub fn peak_memory(members: u64) -> u64 {
    PEAK_BASE_BYTES.saturating_add(members.saturating_mul(PEAK_BYTES_PER_MEMBER))
}

/// The memory this machine has available now (Linux's `MemAvailable`), when it can be read.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Refuses up front a network larger than the memory available could hold, naming the limit,
/// instead of aborting halfway on a failed allocation.
pub fn check_memory(members: u64, available: Option<u64>) -> Result<(), SynthError> {
    let Some(available) = available else { return Ok(()) };
    let needed = peak_memory(members);
    if needed <= available {
        return Ok(());
    }
    let most = available.saturating_sub(PEAK_BASE_BYTES) / PEAK_BYTES_PER_MEMBER;
    let gib = |b: u64| b as f64 / f64::from(1u32 << 30);
    Err(SynthError::Config(format!(
        "{members} members need about {:.1} GiB of memory and this machine has {:.1} GiB available; \
         generate at most {most} members here, or run on a larger machine",
        gib(needed),
        gib(available)
    )))
}

/// Reads `synth.json` from a generated directory.
pub fn read_summary(dir: &Path) -> Result<SynthSummary, SynthError> {
    let path = dir.join(SUMMARY_FILE);
    let bytes = std::fs::read(&path).map_err(|e| SynthError::io(&path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| SynthError::Value { path, row: 0, message: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_larger_than_memory_is_refused_with_the_limit() {
        let e = check_memory(u64::from(u32::MAX), Some(24 << 30)).unwrap_err();
        assert!(e.is_bad_input());
        let msg = e.to_string();
        assert!(msg.contains("at most") && msg.contains("GiB available"), "{msg}");
        check_memory(1_000_000, Some(24 << 30)).unwrap();
        // Without a figure to compare with, nothing is refused.
        check_memory(u64::from(u32::MAX), None).unwrap();
        assert!(peak_memory(u64::MAX) == u64::MAX, "saturates instead of overflowing");
    }
}
