//! One error type for every use case, so each front end maps failures in one place: exit codes in the CLI, HTTP
//! status codes in the service, exception classes in Python.

use std::error::Error as StdError;
use std::fmt;

/// What kind of failure an [`AppError`] is: the single thing a front end branches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller's input is wrong (a flag, a file, a request body): fix it and retry.
    BadInput,
    /// The caller did not prove who they are (no bearer token, or an expired, forged or foreign one).
    Unauthenticated,
    /// The caller is known but their role may not do this (a member writing another's data, an auditor writing).
    Forbidden,
    /// What was asked for does not exist (a member, a model id, a ledger not yet created).
    NotFound,
    /// The request contradicts what is recorded (an idempotency key reused for another event, an occupied output).
    Conflict,
    /// Evidence does not check out: a signature, a hash, a chain, a registry record.
    Integrity,
    /// A dependency is down or unreachable (PostgreSQL, the file system's space).
    Unavailable,
    /// A bug or an unexpected failure inside Consentry.
    Internal,
}

impl ErrorKind {
    /// The CLI's exit code for this kind: 2 when the caller can fix the input, 1 otherwise.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::BadInput
            | ErrorKind::Unauthenticated
            | ErrorKind::Forbidden
            | ErrorKind::NotFound
            | ErrorKind::Conflict => 2,
            ErrorKind::Integrity | ErrorKind::Unavailable | ErrorKind::Internal => 1,
        }
    }

    /// The HTTP status code a service answers with for this kind.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::BadInput => 400,
            ErrorKind::Unauthenticated => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::Integrity => 422,
            ErrorKind::Unavailable => 503,
            ErrorKind::Internal => 500,
        }
    }

    /// Stable snake_case name, for JSON error bodies and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadInput => "bad_input",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Integrity => "integrity",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }
}

/// How an [`AppError`] shows itself: its own message, or a wrapped library error shown as that error is (its
/// message first, then its causes), so wrapping loses nothing a user would read.
#[derive(Debug)]
enum Repr {
    Message(String),
    Wrapped(Box<dyn StdError + Send + Sync + 'static>),
}

/// A failed use case: a kind to branch on, a message that says what went wrong and what to do, and the typed
/// library error underneath (reachable with [`AppError::downcast_ref`] and through `source()`).
#[derive(Debug)]
pub struct AppError {
    kind: ErrorKind,
    repr: Repr,
    /// The error this one adds context to (`AppError::context`).
    cause: Option<Box<AppError>>,
}

/// The result of every use case.
pub type Result<T, E = AppError> = std::result::Result<T, E>;

impl AppError {
    /// An error with a message of its own.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> AppError {
        AppError { kind, repr: Repr::Message(message.into()), cause: None }
    }

    /// The caller's input is wrong; `message` says what to do.
    pub fn bad_input(message: impl Into<String>) -> AppError {
        AppError::new(ErrorKind::BadInput, message)
    }

    /// An unexpected failure.
    pub fn internal(message: impl Into<String>) -> AppError {
        AppError::new(ErrorKind::Internal, message)
    }

    /// Wraps a library error of a known kind, keeping it whole (message, causes, type).
    pub fn wrap(kind: ErrorKind, e: impl StdError + Send + Sync + 'static) -> AppError {
        AppError { kind, repr: Repr::Wrapped(Box::new(e)), cause: None }
    }

    /// A library error whose text is the whole story (its causes are not shown), with the kind given: how the CLI
    /// always reported the caller's mistakes.
    pub fn flat(kind: ErrorKind, e: impl StdError + Send + Sync + 'static) -> AppError {
        let message = e.to_string();
        AppError { kind, repr: Repr::Wrapped(Box::new(Flat { message, inner: Box::new(e) })), cause: None }
    }

    /// Adds what was being done when `self` happened; the kind stays.
    pub fn context(self, message: impl Into<String>) -> AppError {
        AppError { kind: self.kind, repr: Repr::Message(message.into()), cause: Some(Box::new(self)) }
    }

    /// The kind to branch on.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The same error with another kind (a use case knows better than the library what a failure means to it).
    pub fn with_kind(mut self, kind: ErrorKind) -> AppError {
        self.kind = kind;
        self
    }

    /// The typed library error of type `T` this error wraps, at any depth of context.
    pub fn downcast_ref<T: StdError + 'static>(&self) -> Option<&T> {
        let mut at = Some(self);
        while let Some(e) = at {
            if let Repr::Wrapped(inner) = &e.repr {
                if let Some(t) = inner.downcast_ref::<T>() {
                    return Some(t);
                }
                if let Some(f) = inner.downcast_ref::<Flat>()
                    && let Some(t) = f.inner.downcast_ref::<T>()
                {
                    return Some(t);
                }
            }
            at = e.cause.as_deref();
        }
        None
    }
}

/// A library error shown by its message alone (no causes), still reachable by type.
#[derive(Debug)]
struct Flat {
    message: String,
    inner: Box<dyn StdError + Send + Sync + 'static>,
}

impl fmt::Display for Flat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for Flat {}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Message(m) => f.write_str(m),
            Repr::Wrapped(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl StdError for AppError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        if let Some(c) = &self.cause {
            return Some(c.as_ref());
        }
        match &self.repr {
            Repr::Message(_) => None,
            Repr::Wrapped(e) => e.source(),
        }
    }
}

/// Adds context to a fallible use-case step, as `anyhow::Context` does for binaries.
pub trait Context<T> {
    /// Says what was being done when the error happened.
    fn context(self, message: impl Into<String>) -> Result<T>;
    /// As [`Context::context`], with the message built only on failure.
    fn with_context<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T>;
}

impl<T, E: Into<AppError>> Context<T> for std::result::Result<T, E> {
    fn context(self, message: impl Into<String>) -> Result<T> {
        self.map_err(|e| e.into().context(message))
    }
    fn with_context<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| e.into().context(f()))
    }
}

/// The kind of a library error that reports only whether the caller is at fault.
fn by_fault(bad_input: bool) -> ErrorKind {
    if bad_input { ErrorKind::BadInput } else { ErrorKind::Internal }
}

/// Library errors the caller caused are reported by their message alone; others whole, with their causes.
fn classify(kind: ErrorKind, e: impl StdError + Send + Sync + 'static) -> AppError {
    if kind.exit_code() == 2 { AppError::flat(kind, e) } else { AppError::wrap(kind, e) }
}

/// The kind of a ledger error (also when the registry reports one).
fn ledger_kind(e: &consentry_ledger::LedgerError) -> ErrorKind {
    use consentry_ledger::LedgerError as E;
    match e {
        // Pointing consentry at a store a newer (or older) release wrote: upgrade, or pass the right store.
        E::SchemaTooNew { .. } | E::SchemaTooOld { .. } => ErrorKind::BadInput,
        E::NotFound(_) => ErrorKind::NotFound,
        E::IdempotencyConflict { .. } => ErrorKind::Conflict,
        // A log that no longer matches its hashes or signed heads: nothing was read from it (exit 1, as before).
        E::BadEntry { .. } | E::Tampered(_) => ErrorKind::Integrity,
        other if other.is_bad_input() => ErrorKind::BadInput,
        E::Sqlite(_) | E::Postgres(_) => ErrorKind::Unavailable,
        _ => ErrorKind::Internal,
    }
}

impl From<consentry_ledger::LedgerError> for AppError {
    fn from(e: consentry_ledger::LedgerError) -> AppError {
        classify(ledger_kind(&e), e)
    }
}

impl From<consentry_lineage::LineageError> for AppError {
    fn from(e: consentry_lineage::LineageError) -> AppError {
        use consentry_lineage::LineageError as E;
        let kind = match &e {
            E::Ledger(inner) => ledger_kind(inner),
            // Another worker is building the same version or moved the cursor: 409 and "run again", not a 500
            // (the service's two concurrent `POST /v1/jobs/unlearn`, found by the soak).
            E::Conflict(_) => ErrorKind::Conflict,
            E::NotFound { .. } | E::UnknownMember(_) if e.is_bad_input() => ErrorKind::NotFound,
            other if other.is_bad_input() => ErrorKind::BadInput,
            E::Signature { .. } | E::ModelFiles { .. } | E::Dataset { .. } => ErrorKind::Integrity,
            _ => ErrorKind::Internal,
        };
        classify(kind, e)
    }
}

impl From<consentry_gate::GateError> for AppError {
    fn from(e: consentry_gate::GateError) -> AppError {
        let kind = by_fault(e.is_bad_input());
        classify(kind, e)
    }
}

impl From<consentry_learn::LearnError> for AppError {
    fn from(e: consentry_learn::LearnError) -> AppError {
        let kind = match &e {
            consentry_learn::LearnError::Exists(_) => ErrorKind::Conflict,
            other => by_fault(other.is_bad_input()),
        };
        classify(kind, e)
    }
}

impl From<consentry_audit::AuditError> for AppError {
    fn from(e: consentry_audit::AuditError) -> AppError {
        let kind = by_fault(e.is_bad_input());
        classify(kind, e)
    }
}

impl From<consentry_synth::SynthError> for AppError {
    fn from(e: consentry_synth::SynthError) -> AppError {
        let kind = by_fault(e.is_bad_input());
        classify(kind, e)
    }
}

impl From<consentry_files::OutputError> for AppError {
    fn from(e: consentry_files::OutputError) -> AppError {
        let kind = by_fault(e.is_bad_input());
        classify(kind, e)
    }
}

impl From<consentry_policy::PolicyError> for AppError {
    fn from(e: consentry_policy::PolicyError) -> AppError {
        AppError::flat(ErrorKind::BadInput, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(e: &AppError) -> Vec<String> {
        let mut out = vec![e.to_string()];
        let mut at = e.source();
        while let Some(s) = at {
            out.push(s.to_string());
            at = s.source();
        }
        out
    }

    #[test]
    fn context_keeps_kind_and_cause() {
        let e = AppError::bad_input("no such file").context("reading the policy");
        assert_eq!(e.kind(), ErrorKind::BadInput);
        assert_eq!(chain(&e), ["reading the policy", "no such file"]);
    }

    #[test]
    fn wrapped_errors_show_their_own_chain_and_stay_typed() {
        let io = std::io::Error::other("disk full");
        let e = AppError::wrap(ErrorKind::Unavailable, io).context("writing the bundle");
        assert_eq!(chain(&e), ["writing the bundle", "disk full"]);
        assert!(e.downcast_ref::<std::io::Error>().is_some());
    }

    #[test]
    fn flat_errors_hide_causes_but_stay_typed() {
        let e = AppError::flat(ErrorKind::BadInput, std::io::Error::other("bad flag"));
        assert_eq!(chain(&e), ["bad flag"]);
        assert!(e.downcast_ref::<std::io::Error>().is_some());
    }

    #[test]
    fn a_concurrent_unlearning_worker_is_a_conflict_not_an_internal_error() {
        let e = AppError::from(consentry_lineage::LineageError::Conflict("another unlearning worker".into()));
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert_eq!(e.kind().http_status(), 409);
    }

    #[test]
    fn exit_codes_and_statuses() {
        assert_eq!(ErrorKind::BadInput.exit_code(), 2);
        assert_eq!(ErrorKind::Conflict.exit_code(), 2);
        assert_eq!(ErrorKind::Integrity.exit_code(), 1);
        assert_eq!(ErrorKind::NotFound.http_status(), 404);
        assert_eq!(ErrorKind::Unavailable.http_status(), 503);
    }
}
