//! Reply suggestions (purpose `train_ai_system.reply_suggestions`).
//!
//! Three pieces, all pure (no I/O, no clock, no global randomness):
//!
//! - [`Inventory`]: the only texts that can ever be suggested. Redacted replies are cleaned
//!   (vocatives naming a `<PERSON>` stripped, sentences with any other placeholder dropped),
//!   normalised (case, whitespace, typographic quotes, trailing punctuation) and kept only if at
//!   least k distinct repliers used them (k-anonymity, [`DEFAULT_K`] = 20). Kept responses are
//!   grouped into intents by deterministic leader–centroid clustering of their text.
//! - [`ReplyModel`]: a softmax over intents on hashed word unigram and bigram features of the
//!   incoming message — plus, when the incoming message is itself an inventory response (a reply
//!   to a reply), one strong feature naming its intent — trained by seeded SGD or, with [`DpSgd`],
//!   member-level DP-SGD (examples grouped by replier; only the [`DP_TRAINED_INTENTS`] most-used
//!   intents are trained, the rest keep their prior). Suggestions take the top intents and show
//!   each one's most popular response, so there is at most one suggestion per intent.
//! - The model file ([`ReplyModel::to_bytes`]): safetensors with one metadata key holding the
//!   inventory and provenance; see the `format` module docs for the exact bytes.
//!
//! Determinism: input rows are sorted canonically by (replier, at_ms, incoming, reply) before
//! anything order-dependent, all maps are ordered, training is single-threaded and every random
//! draw comes from a ChaCha20 stream derived from the seed, so the same rows, hyper-parameters and
//! seed give byte-identical model files.

mod format;
mod inventory;
mod model;
mod text;

pub use format::{FORMAT, METADATA_KEY};
pub use inventory::{DEFAULT_K, INTENT_SIMILARITY, Intent, Inventory, Response};
pub use model::{
    DEFAULT_SUGGESTIONS, DP_TRAINED_INTENTS, DpAccounting, DpSgd, Hyper, Metrics, ReplyModel, Suggestion, TrainingInfo,
    training_members,
};
pub use text::reply_key;

/// One message–reply pair from the gated dataset; the replier is the member whose consent and privacy unit it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pair {
    /// Member id of the reply's sender (the unit of k-anonymity and of DP).
    pub replier: u64,
    /// Redacted text of the message being answered.
    pub incoming: String,
    /// Redacted text of the reply.
    pub reply: String,
    /// When the reply was sent (ms since the Unix epoch); only a sort key here.
    pub at_ms: i64,
}

/// Everything that can go wrong, each with a message that says what to fix.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum ReplyError {
    /// No pairs were given.
    #[error("no message–reply pairs given")]
    EmptyInput,
    /// k must be at least 1.
    #[error("k must be at least 1 (k-anonymity threshold on distinct members)")]
    InvalidK,
    /// No response was used by k distinct members, so nothing may be suggested.
    #[error("empty inventory: none of {candidates} distinct normalised responses was used by at least k = {k} members")]
    EmptyInventory {
        /// The threshold.
        k: usize,
        /// Distinct normalised responses seen.
        candidates: usize,
    },
    /// No pair's reply is an inventory response.
    #[error("no training examples: no pair's reply is an inventory response")]
    NoTrainingExamples,
    /// A hyper-parameter or DP setting is NaN, infinite or out of range.
    #[error("invalid parameter {name} = {value}: must be finite and in range")]
    InvalidParameter {
        /// Parameter name.
        name: &'static str,
        /// Offending value.
        value: String,
    },
    /// Training produced non-finite parameters.
    #[error("training diverged (non-finite parameters); lower the learning rate or the DP noise")]
    Diverged,
    /// Model bytes are malformed or inconsistent.
    #[error("invalid model file: {0}")]
    InvalidModel(String),
}
