//! PII detection and redaction in free text (promise 3 of the design:
//! free text is redacted of contact details, identifiers and people's names).
//!
//! A [`Detector`] is built once — it holds the name automaton over the
//! member directory and the shipped gazetteer — and is then shared by
//! reference across threads (`Send + Sync`). [`Detector::detect`] returns
//! non-overlapping [`Span`]s (type, UTF-8 byte range, confidence) sorted by
//! position; [`redact`] replaces them by typed placeholders (`<EMAIL>`,
//! `<PERSON_1>`, …); [`StreamRedactor`] does both over input of any size in
//! bounded memory.
//!
//! Detectors are hand-written scanners over bytes, dispatched from a few
//! `memchr` searches and one byte-class loop, rather than a set of regular
//! expressions: one pass over the text with cheap triggers is what keeps
//! throughput above 50 MB/s, and the checks that follow a trigger (Luhn,
//! mod-97, SSN ranges, IPv6 parsing by `std`) are exact. Names use an
//! Aho–Corasick automaton (the `aho-corasick` crate) searched only at
//! capitalised word starts.
//!
//! Data: `data/given_names.txt` and `data/surnames.txt` come from the US
//! Census Bureau's 1990 name lists (public domain); `data/common_words.txt`
//! marks which of them are also ordinary English words (SCOWL);
//! `data/intl_given_names.txt` holds international given names from the
//! PyPI package `nomquamgender` (MIT); `data/english_words.txt` is SCOWL's
//! ordinary words, so capitalised ordinary words are not taken for names.
//! See `data/SOURCE.md`.
//!
//! One byte scan in [`Detector::candidates`] dispatches the digit-led and
//! word-led detectors and collects the capitalised word starts once, which
//! the person detector then visits instead of scanning the text again.
//!
//! Text written (nearly) without capitals — a short text with at most two
//! capitalised words, or one where capitalised words are under 1 in 16 —
//! gets two more passes: names among lower-case words (a given name that is
//! not an ordinary English word, with a surname, a cue, a vocative comma or
//! a speaker's colon: `hey anna,`, not `will` or `mark`), and the number-led
//! address grammar over a copy whose words are capitalised. IBANs are found
//! in either case (the mod-97 check decides). Ordinary text never pays for
//! the lower-case passes; the decision is per call, so a stream window that
//! mixes both kinds of text is judged as a whole.

mod address;
mod checks;
mod detector;
mod email;
mod iban;
mod ip;
mod numbers;
mod person;
mod redact;
mod resolve;
mod scan;
mod stream;
mod url;

pub use checks::{iban_valid, luhn_valid, ssn_valid};
pub use detector::{Detector, DetectorBuilder};
pub use redact::{Numbering, ThreadNumberings, redact, redact_with};
pub use resolve::resolve;
pub use stream::StreamRedactor;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The kinds of personal data the detector finds; their names are the labels of the synthetic ground truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Kind {
    /// E-mail address.
    Email,
    /// Telephone number, national or international, with extension.
    Phone,
    /// URL or bare domain.
    Url,
    /// IPv4 or IPv6 address.
    Ip,
    /// Luhn-valid payment card number of a known scheme.
    CreditCard,
    /// IBAN with a valid length and mod-97 check.
    Iban,
    /// US Social Security number in the issuable ranges.
    Ssn,
    /// Postal street address (house number, street, unit, postcode, city).
    Address,
    /// A person's name.
    Person,
}

impl Kind {
    /// Every kind, in label order, so reports and options can iterate over them.
    pub const ALL: [Kind; 9] = [
        Kind::Email,
        Kind::Phone,
        Kind::Url,
        Kind::Ip,
        Kind::CreditCard,
        Kind::Iban,
        Kind::Ssn,
        Kind::Address,
        Kind::Person,
    ];

    /// Upper-case label (`CREDIT_CARD`), used in JSON and placeholders.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Email => "EMAIL",
            Kind::Phone => "PHONE",
            Kind::Url => "URL",
            Kind::Ip => "IP",
            Kind::CreditCard => "CREDIT_CARD",
            Kind::Iban => "IBAN",
            Kind::Ssn => "SSN",
            Kind::Address => "ADDRESS",
            Kind::Person => "PERSON",
        }
    }

    /// Position in [`Kind::ALL`], for per-kind arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = RedactError;

    fn from_str(s: &str) -> Result<Kind, RedactError> {
        let up = s.trim().to_ascii_uppercase().replace('-', "_");
        Kind::ALL.into_iter().find(|k| k.as_str() == up).ok_or_else(|| RedactError::UnknownKind(s.to_string()))
    }
}

/// One detection: what it is, where it is (UTF-8 byte offsets, end exclusive) and how sure the detector is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Span {
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
    /// What was found.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// Confidence in `0.0..=1.0`.
    pub score: f32,
}

impl Span {
    /// Shorthand constructor used by every detector.
    pub(crate) fn new(start: usize, end: usize, kind: Kind, score: f32) -> Span {
        Span { start, end, kind, score: score.clamp(0.0, 1.0) }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    /// True for an empty span (never returned by the detector).
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// True when the two spans share at least one byte.
    pub fn overlaps(&self, other: &Span) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// What can go wrong while building a detector or redacting a stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedactError {
    /// The name automaton could not be built (too many or too long names).
    #[error("cannot build the name automaton over {names} names: {message}")]
    Automaton {
        /// How many distinct names were given.
        names: usize,
        /// The automaton builder's explanation.
        message: String,
    },
    /// A kind name given in options is not one of the nine labels.
    #[error("unknown PII type `{0}`; use one of EMAIL, PHONE, URL, IP, CREDIT_CARD, IBAN, SSN, ADDRESS, PERSON")]
    UnknownKind(String),
    /// An option value is out of range.
    #[error("invalid option: {0}")]
    Config(String),
    /// Streamed input is not UTF-8.
    #[error("input is not valid UTF-8 at line {line}, byte {column} of that line; convert it to UTF-8 first")]
    InvalidUtf8 {
        /// 1-based line number.
        line: u64,
        /// 1-based byte offset within the line.
        column: u64,
    },
    /// Writing the redacted output failed.
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
}
