//! The service's configuration file (`consentry serve --config FILE`, TOML): what the service does beyond the data
//! directory — the platform's member tokens it accepts and the webhooks it delivers the outbox to. Each part of the
//! service adds its own section here; unknown keys are refused, so a typo is an error, never a check silently off.

use crate::error::{AppError, Context as _, ErrorKind, Result};
use crate::platform::MemberTokenConfig;
use consentry_ledger::outbox::{CONSENT_CHANGED, UNLEARNING_COMPLETED};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The whole configuration file; every section is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Accept the platform's own signed member tokens (JWTs) as well as Consentry's.
    #[serde(default)]
    pub member_tokens: Option<MemberTokenConfig>,
    /// Where the outbox is delivered (`[[webhooks]]` tables).
    #[serde(default)]
    pub webhooks: Vec<WebhookConfig>,
}

/// One receiver of the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// A name of its own (letters, digits, `-`, `_`): its delivery cursor is kept under it, so renaming a webhook
    /// starts it afresh.
    pub name: String,
    /// Where deliveries are POSTed (`http://host:port/path`).
    pub url: String,
    /// A file holding the signing secret (relative to the configuration file); or
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// the name of an environment variable holding it. Exactly one of the two.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// Event types to deliver (`consent.changed`, `unlearning.completed`); all when absent.
    #[serde(default)]
    pub events: Option<Vec<String>>,
    /// The first retry waits about this long (milliseconds); each further one twice as long.
    #[serde(default = "default_retry_initial_ms")]
    pub retry_initial_ms: u64,
    /// No retry waits longer than this (milliseconds).
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
    /// A delivery attempt that takes longer than this fails (milliseconds).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_retry_initial_ms() -> u64 {
    500
}

fn default_retry_max_ms() -> u64 {
    60_000
}

fn default_timeout_ms() -> u64 {
    10_000
}

/// The event types an outbox carries, for checking `events` filters.
pub const EVENT_TYPES: [&str; 2] = [CONSENT_CHANGED, UNLEARNING_COMPLETED];

impl ServiceConfig {
    /// Reads and checks the configuration file at `path`; files it names by a relative path are relative to the
    /// file's own directory.
    pub fn load(path: &Path) -> Result<ServiceConfig> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| AppError::wrap(ErrorKind::BadInput, e))
            .with_context(|| format!("reading the service configuration {}", path.display()))?;
        ServiceConfig::parse(&text, path.parent().unwrap_or(Path::new(".")))
            .with_context(|| format!("in {}", path.display()))
    }

    /// Parses and checks configuration text; relative paths in it are made relative to `base`.
    pub fn parse(text: &str, base: &Path) -> Result<ServiceConfig> {
        let mut config: ServiceConfig = toml::from_str(text)
            .map_err(|e| AppError::bad_input(format!("the service configuration is not valid: {e}")))?;
        if let Some(t) = config.member_tokens.as_mut() {
            t.resolve_paths(base);
        }
        let mut names = std::collections::HashSet::new();
        for w in &mut config.webhooks {
            w.check()?;
            if !names.insert(w.name.clone()) {
                return Err(AppError::bad_input(format!(
                    "two webhooks are named `{}`: give each its own name",
                    w.name
                )));
            }
            if let Some(f) = &mut w.secret_file
                && f.is_relative()
            {
                *f = base.join(&*f);
            }
        }
        Ok(config)
    }
}

impl WebhookConfig {
    fn check(&self) -> Result<()> {
        let bad = |m: String| Err(AppError::bad_input(format!("webhook `{}`: {m}", self.name)));
        if self.name.is_empty()
            || self.name.len() > 64
            || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return bad("the name must be 1 to 64 letters, digits, `-` or `_`".into());
        }
        if !self.url.starts_with("http://") {
            return bad(format!(
                "the url `{}` is not http://…: deliveries are plain HTTP (put a TLS proxy on the receiver's side for \
                 https)",
                self.url
            ));
        }
        if self.secret_file.is_some() == self.secret_env.is_some() {
            return bad("give exactly one of `secret_file` and `secret_env`".into());
        }
        for e in self.events.iter().flatten() {
            if !EVENT_TYPES.contains(&e.as_str()) {
                return bad(format!("unknown event type `{e}` (known: {})", EVENT_TYPES.join(", ")));
            }
        }
        if self.retry_initial_ms == 0 || self.retry_max_ms < self.retry_initial_ms || self.timeout_ms == 0 {
            return bad(
                "retry_initial_ms and timeout_ms must be positive, retry_max_ms at least retry_initial_ms".into()
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_tokens_section_parses_with_defaults_and_relative_paths() {
        let cfg = ServiceConfig::parse(
            "[member_tokens]\nissuer = \"https://p\"\naudience = \"consentry\"\njwks_file = \"jwks.json\"\n",
            Path::new("/etc/consentry"),
        )
        .unwrap();
        let t = cfg.member_tokens.unwrap();
        assert_eq!(t.jwks_file.as_deref(), Some(Path::new("/etc/consentry/jwks.json")));
        assert_eq!((t.member_claim.as_str(), t.clock_skew_secs), ("sub", 60));
        assert_eq!(ServiceConfig::parse("", Path::new(".")).unwrap(), ServiceConfig::default());
        for bad in ["[member_tokens]\nissuer = \"x\"\n", "[member_tokens]\nissuer=\"a\"\naudience=\"b\"\nisuer=\"c\"\n"]
        {
            assert!(ServiceConfig::parse(bad, Path::new(".")).is_err(), "{bad}");
        }
    }

    #[test]
    fn webhooks_are_read_and_checked() {
        let c = ServiceConfig::parse(
            "[[webhooks]]\nname = \"crm\"\nurl = \"http://127.0.0.1:9/hook\"\nsecret_env = \"CRM_SECRET\"\n\
             events = [\"consent.changed\"]\n",
            Path::new("."),
        )
        .unwrap();
        assert_eq!(c.webhooks[0].retry_initial_ms, 500);
        assert_eq!(ServiceConfig::parse("", Path::new(".")).unwrap(), ServiceConfig::default());
        for (bad, says) in [
            ("[[webhooks]]\nname = \"a\"\nurl = \"http://x/\"\nsecret_env = \"S\"\ncolour = 1\n", "unknown field"),
            ("[[webhooks]]\nname = \"a\"\nurl = \"https://x/\"\nsecret_env = \"S\"\n", "not http"),
            ("[[webhooks]]\nname = \"a\"\nurl = \"http://x/\"\n", "exactly one"),
            ("[[webhooks]]\nname = \"a b\"\nurl = \"http://x/\"\nsecret_env = \"S\"\n", "letters"),
            (
                "[[webhooks]]\nname = \"a\"\nurl = \"http://x/\"\nsecret_env = \"S\"\nevents = [\"x\"]\n",
                "unknown event",
            ),
            (
                "[[webhooks]]\nname = \"a\"\nurl = \"http://x/\"\nsecret_env = \"S\"\n\
                 [[webhooks]]\nname = \"a\"\nurl = \"http://y/\"\nsecret_env = \"S\"\n",
                "two webhooks",
            ),
        ] {
            let e = ServiceConfig::parse(bad, Path::new(".")).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
