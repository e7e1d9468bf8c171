//! Consentry's policy: which data categories exist, which purposes may use
//! them under which notices, what each jurisdiction defaults to, and the pure
//! effective-consent function built on them.
//!
//! The crate does no I/O: callers hand it the policy text and a name for
//! diagnostics, and get back either a compiled [`Policy`] or every problem
//! found, each with line, column and a hint.

mod diagnostic;
mod evaluate;
pub mod fideslang;
pub mod fideslang_taxonomy;
pub mod iso3166;
mod parse;

pub use diagnostic::{Code, Diagnostic, PolicyError, Severity, render as render_diagnostics};
pub use evaluate::{
    Action, AllowBasis, ConsentEvent, Decision, DefaultRule, DenyReason, MIN_AGE_FLOOR, MemberFacts, Source, Timestamp,
    age_at,
};

use std::collections::HashMap;

/// The policy that ships with Consentry: the three AI-training purposes, opt-in everywhere.
pub const DEFAULT_POLICY: &str = include_str!("../../../policy/default.toml");

/// The AI-training data use every purpose must sit under (fideslang).
pub const TRAIN_AI_SYSTEM: &str = "train_ai_system";

/// Private messages: opt-in in every jurisdiction, so always sensitive.
pub const PRIVATE_CONTENT: &str = "user.content.private";

/// A member's id on the platform (fideslang `user.unique_id`): it identifies whose data a row is, so a source
/// declares it as a member-id column (whose consent the gate checks), never as a data column.
pub const MEMBER_ID: &str = "user.unique_id";

/// Index of a purpose in [`Policy::purposes`]; cheap to copy into batch tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PurposeId(pub u16);

/// Index of a jurisdiction rule in [`Policy::jurisdictions`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JurisdictionId(pub u16);

impl PurposeId {
    /// The position in [`Policy::purposes`].
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

impl JurisdictionId {
    /// The position in [`Policy::jurisdictions`].
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// A kind of member data (a fideslang data-category key).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Category {
    /// Dotted key, e.g. `user.professional.skills`.
    pub key: String,
    /// What the category holds, in plain words.
    pub description: String,
    /// Sensitive categories may never default to opt-out.
    pub sensitive: bool,
    /// Data about members (the default). Only platform data, such as the job catalogue, says `personal = false`:
    /// a source table holding a personal category must name the member-id column whose consent decides its rows.
    pub personal: bool,
}

/// One version of the plain-language text a member agrees to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Notice {
    /// Strictly increasing per purpose.
    pub version: u32,
    /// When this version starts being shown (Unix seconds, UTC).
    pub effective: Timestamp,
    /// A material change makes grants under earlier versions lapse once it takes effect.
    pub material: bool,
    /// BCP 47 language tag of `text`.
    pub language: String,
    /// The words shown to the member.
    pub text: String,
}

/// Why data is processed: a fideslang data use under `train_ai_system`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Purpose {
    /// Dotted key, e.g. `train_ai_system.job_recommendations`.
    pub key: String,
    /// A short human name.
    pub name: String,
    /// One plain sentence on what the feature does, for the member's privacy centre (optional: older policies
    /// have none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The categories this purpose may use; anything else never reaches its datasets.
    pub categories: Vec<String>,
    /// Whether a GPC signal withdraws this purpose (and wins over an earlier grant).
    pub gpc_withdraws: bool,
    /// Notice versions, ascending.
    pub notices: Vec<Notice>,
    /// For each notice, when a later material notice makes its grants lapse (`i64::MAX`: never).
    #[serde(skip)]
    lapses_at: Vec<Timestamp>,
}

impl Purpose {
    /// When grants under `version` lapse; `None` if the version does not exist.
    pub fn notice_lapses_at(&self, version: u32) -> Option<Timestamp> {
        self.notices.binary_search_by_key(&version, |n| n.version).ok().map(|i| self.lapses_at[i])
    }

    /// The notice in force at `at` (the newest whose effective time has come).
    pub fn notice_at(&self, at: Timestamp) -> Option<&Notice> {
        self.notices.iter().rev().find(|n| n.effective <= at)
    }

    /// The newest notice version, shown to members asked for consent now or later.
    pub fn latest_notice(&self) -> &Notice {
        // Validation guarantees at least one notice.
        &self.notices[self.notices.len() - 1]
    }

    /// True when a column of `category` may enter this purpose's datasets
    /// (the category or one of its ancestors is declared).
    pub fn allows_category(&self, category: &str) -> bool {
        self.categories.iter().any(|c| {
            category == c
                || (category.len() > c.len()
                    && category.starts_with(c.as_str())
                    && category.as_bytes()[c.len()] == b'.')
        })
    }
}

/// The rule for one jurisdiction (a country, a subdivision, a group or the fallback).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Jurisdiction {
    /// As written in the policy: `US-CA`, `GB`, `EEA`, or `default`.
    pub key: String,
    /// Members younger than this are never included (raised to at least 18).
    pub min_age: u8,
    /// Default for purposes without an override.
    pub default: DefaultRule,
    /// Per-purpose defaults, indexed by [`PurposeId`].
    pub purpose_defaults: Vec<DefaultRule>,
}

impl Jurisdiction {
    /// The default that applies to `purpose` when the member has said nothing.
    pub fn default_for(&self, purpose: PurposeId) -> DefaultRule {
        self.purpose_defaults.get(purpose.index()).copied().unwrap_or(self.default)
    }
}

/// A validated, compiled policy: indexes resolved, ready for evaluation in bulk.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Policy {
    /// The policy's own version string, recorded in every manifest.
    pub version: String,
    /// The organisation that decides on the processing (the GDPR controller).
    pub controller: String,
    /// BLAKE3 of the exact policy text, hex; recorded in every manifest.
    pub hash: String,
    /// Declared data categories, in key order.
    pub categories: Vec<Category>,
    /// Declared purposes, in key order; [`PurposeId`] indexes this.
    pub purposes: Vec<Purpose>,
    /// Jurisdiction rules; [`JurisdictionId`] indexes this; index 0 is the fallback.
    pub jurisdictions: Vec<Jurisdiction>,
    /// Named groups of countries, e.g. `EEA`.
    pub groups: Vec<(String, Vec<String>)>,
    /// Country or subdivision code → rule, with groups expanded.
    #[serde(skip)]
    code_index: HashMap<String, JurisdictionId>,
}

impl Policy {
    /// Parses and validates policy text; `name` is used in diagnostics.
    pub fn from_toml(name: &str, text: &str) -> Result<Policy, PolicyError> {
        let (policy, warnings) = parse::compile(name, text)?;
        drop(warnings);
        Ok(policy)
    }

    /// Like [`Policy::from_toml`], but also returns warnings that do not stop the policy.
    pub fn check(name: &str, text: &str) -> Result<(Policy, Vec<Diagnostic>), PolicyError> {
        parse::compile(name, text)
    }

    /// The shipped default policy.
    pub fn default_policy() -> Policy {
        match Policy::from_toml("policy/default.toml", DEFAULT_POLICY) {
            Ok(p) => p,
            // The default policy is checked by a unit test; reaching this is a build defect.
            Err(e) => panic!("the shipped default policy is invalid: {e}"),
        }
    }

    /// Looks a purpose up by key.
    pub fn purpose_id(&self, key: &str) -> Option<PurposeId> {
        self.purposes.iter().position(|p| p.key == key).map(|i| PurposeId(i as u16))
    }

    /// The purpose behind an id from this policy.
    pub fn purpose(&self, id: PurposeId) -> &Purpose {
        &self.purposes[id.index()]
    }

    /// Ids of all purposes, in key order.
    pub fn purpose_ids(&self) -> impl Iterator<Item = PurposeId> + '_ {
        (0..self.purposes.len()).map(|i| PurposeId(i as u16))
    }

    /// Looks a category up by key.
    pub fn category(&self, key: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.key == key)
    }

    /// The rule for a member's jurisdiction (`US-CA`, `DE`, …): the subdivision's
    /// own rule, else its country's, else a group's, else the fallback. No allocation.
    pub fn resolve_jurisdiction(&self, code: &str) -> JurisdictionId {
        if let Some(id) = self.code_index.get(code) {
            return *id;
        }
        if let Some((country, _)) = code.split_once('-')
            && let Some(id) = self.code_index.get(country)
        {
            return *id;
        }
        JurisdictionId(0)
    }

    /// The rule behind an id from this policy.
    pub fn jurisdiction(&self, id: JurisdictionId) -> &Jurisdiction {
        &self.jurisdictions[id.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_is_valid_and_opt_in_everywhere() {
        let (p, warnings) = Policy::check("policy/default.toml", DEFAULT_POLICY).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(p.purposes.len(), 3);
        for j in &p.jurisdictions {
            for id in p.purpose_ids() {
                assert_eq!(j.default_for(id), DefaultRule::OptIn, "{}", j.key);
            }
            assert!(j.min_age >= MIN_AGE_FLOOR);
        }
        assert_eq!(p.hash, blake3::hash(DEFAULT_POLICY.as_bytes()).to_hex().to_string());
    }

    #[test]
    fn a_purpose_summary_is_optional() {
        let p = Policy::default_policy();
        assert!(p.purposes.iter().all(|p| p.summary.as_deref().is_some_and(|s| s.ends_with('.'))));
        // A policy written before summaries existed is still valid, and says nothing.
        let old: String =
            DEFAULT_POLICY.lines().filter(|l| !l.starts_with("summary = ")).collect::<Vec<_>>().join("\n");
        let p = Policy::from_toml("old.toml", &old).unwrap();
        assert_eq!(p.purposes.len(), 3);
        assert!(p.purposes.iter().all(|p| p.summary.is_none()));
    }

    #[test]
    fn jurisdictions_resolve_most_specific_first() {
        let p = Policy::default_policy();
        let key = |code: &str| p.jurisdiction(p.resolve_jurisdiction(code)).key.clone();
        assert_eq!(key("US-CA"), "US-CA");
        assert_eq!(key("US-NY"), "US");
        assert_eq!(key("DE"), "EEA");
        assert_eq!(key("GB"), "GB");
        assert_eq!(key("JP"), "default");
        assert_eq!(key(""), "default");
    }

    #[test]
    fn categories_allow_descendants_only() {
        let p = Policy::default_policy();
        let reply = p.purpose(p.purpose_id("train_ai_system.reply_suggestions").unwrap());
        assert!(reply.allows_category("user.content.private"));
        assert!(reply.allows_category("user.content.private.attachment"));
        assert!(!reply.allows_category("user.content.privateish"));
        assert!(!reply.allows_category("user.content"));
        assert!(!reply.allows_category("user.name"));
    }
}
