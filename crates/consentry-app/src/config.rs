//! The service configuration file (`consentry serve --config FILE`, TOML): what the service needs beyond the data
//! directory. Unknown keys are refused, so a typo never silently turns a check off.

use crate::error::{AppError, Result};
use crate::platform::MemberTokenConfig;
use std::path::Path;

/// The whole configuration file; every section is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Accept the platform's own signed member tokens (JWTs) as well as Consentry's.
    #[serde(default)]
    pub member_tokens: Option<MemberTokenConfig>,
}

impl ServiceConfig {
    /// Reads and parses `path`; files it names by a relative path are relative to the file's own directory.
    pub fn load(path: &Path) -> Result<ServiceConfig> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| AppError::bad_input(format!("cannot read the configuration {}: {e}", path.display())))?;
        ServiceConfig::parse(&text, path.parent().unwrap_or(Path::new(".")))
            .map_err(|e| AppError::bad_input(format!("{}: {e}", path.display())))
    }

    /// Parses a configuration's text; relative paths in it are made relative to `base`.
    pub fn parse(text: &str, base: &Path) -> Result<ServiceConfig> {
        let mut cfg: ServiceConfig =
            toml::from_str(text).map_err(|e| AppError::bad_input(format!("not a service configuration: {e}")))?;
        if let Some(t) = cfg.member_tokens.as_mut() {
            t.resolve_paths(base);
        }
        Ok(cfg)
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
}
