//! The column layout of every table the generator writes. The crate docs
//! (and `consentry synth --help`) describe what each column means.

use crate::out::Col::{self, *};

/// One row per member: profile and contact details.
pub const MEMBERS: &[(&str, Col)] = &[
    ("member_id", U64),
    ("given_name", Str),
    ("surname", Str),
    ("email", Str),
    ("phone", Str),
    ("country", Str),
    ("region", OptStr),
    ("jurisdiction", Str),
    ("birth_date", Date),
    ("industry", Str),
    ("title", Str),
    ("seniority", U8),
    ("skills", StrList),
    ("joined_at", Time),
];

/// Past and current positions, newest first per member; `end_date` is null for the current one.
pub const EMPLOYMENT: &[(&str, Col)] =
    &[("member_id", U64), ("company", Str), ("title", Str), ("start_date", Date), ("end_date", OptDate)];

/// Undirected connections, `member_a < member_b`, each pair once.
pub const CONNECTIONS: &[(&str, Col)] = &[("member_a", U64), ("member_b", U64), ("connected_at", Time)];

/// Job postings.
pub const JOBS: &[(&str, Col)] = &[
    ("job_id", U64),
    ("title", Str),
    ("company", Str),
    ("industry", Str),
    ("country", Str),
    ("seniority", U8),
    ("skills", StrList),
    ("posted_at", Time),
];

/// Views and applications (`action` is `view` or `apply`), time-ordered per member.
pub const JOB_ACTIVITY: &[(&str, Col)] = &[("member_id", U64), ("job_id", U64), ("action", Str), ("at", Time)];

/// Posts with their topic and free text (which carries planted PII).
pub const POSTS: &[(&str, Col)] =
    &[("post_id", U64), ("author_id", U64), ("topic", Str), ("text", Str), ("created_at", Time)];

/// Reactions and comments (`action` is `react` or `comment`).
pub const FEED_ACTIVITY: &[(&str, Col)] = &[("member_id", U64), ("post_id", U64), ("action", Str), ("at", Time)];

/// Private messages in threads between connected members; `reply_to` links a reply to the message it answers.
pub const MESSAGES: &[(&str, Col)] = &[
    ("message_id", U64),
    ("thread_id", U64),
    ("sender_id", U64),
    ("recipient_id", U64),
    ("reply_to", OptU64),
    ("text", Str),
    ("sent_at", Time),
];

/// Ground truth of planted PII: UTF-8 byte span `[start, end)` in `column` of row `row_id`.
pub const PII_TRUTH: &[(&str, Col)] =
    &[("row_id", U64), ("column", Str), ("start", U32), ("end", U32), ("kind", Str), ("value", Str)];

/// Ground truth of the reply oracle: per message, what a reply to it is drawn conditional on — `kind` is `opening`
/// (then `label` is the opening's kind, one of `text::MESSAGE_KINDS`) or `reply` (then `label` is the reply's intent,
/// one of `text::INTENTS`). For benchmarks only: no source declaration names it, so the gate never reads it.
pub const MESSAGES_TRUTH: &[(&str, Col)] = &[("message_id", U64), ("kind", Str), ("label", Str)];

/// Consent events as members made them, per member in time order.
pub const CONSENT_CHOICES: &[(&str, Col)] = &[
    ("member_id", U64),
    ("purpose", Str),
    ("action", Str),
    ("notice_version", U32),
    ("source", Str),
    ("actor", Str),
    ("event_time", Time),
];
