//! TOML policy text → validated [`Policy`], collecting every problem at once.

use crate::diagnostic::{Code, Diagnostic, PolicyError, Severity};
use crate::evaluate::{DefaultRule, MIN_AGE_FLOOR, Timestamp};
use crate::{
    Category, Jurisdiction, JurisdictionId, MEMBER_ID, Notice, PRIVATE_CONTENT, Policy, Purpose, TRAIN_AI_SYSTEM,
    iso3166,
};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    policy: Spanned<RawMeta>,
    #[serde(default)]
    categories: BTreeMap<Spanned<String>, RawCategory>,
    #[serde(default)]
    purposes: BTreeMap<Spanned<String>, Spanned<RawPurpose>>,
    #[serde(default)]
    groups: BTreeMap<Spanned<String>, Vec<Spanned<String>>>,
    #[serde(default)]
    jurisdictions: BTreeMap<Spanned<String>, Spanned<RawJurisdiction>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMeta {
    version: Spanned<String>,
    controller: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCategory {
    #[serde(default)]
    description: String,
    #[serde(default)]
    sensitive: bool,
    #[serde(default = "personal_by_default")]
    personal: bool,
}

/// Every category is about members unless the policy says otherwise.
fn personal_by_default() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPurpose {
    name: String,
    #[serde(default)]
    summary: Option<String>,
    categories: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    gpc_withdraws: bool,
    #[serde(default)]
    notices: Vec<RawNotice>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotice {
    version: Spanned<i64>,
    effective: Spanned<toml::value::Datetime>,
    #[serde(default)]
    material: bool,
    #[serde(default = "english")]
    language: String,
    text: Spanned<String>,
}

fn english() -> String {
    "en".to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJurisdiction {
    default: Option<Spanned<DefaultRule>>,
    min_age: Option<Spanned<i64>>,
    #[serde(default)]
    purposes: BTreeMap<Spanned<String>, Spanned<DefaultRule>>,
}

/// Collects diagnostics against one text.
struct Sink<'a> {
    text: &'a str,
    out: Vec<Diagnostic>,
}

impl Sink<'_> {
    fn push(&mut self, sev: Severity, code: Code, span: Range<usize>, msg: String, hint: Option<String>) {
        self.out.push(Diagnostic::new(sev, code.as_str(), self.text, Some(span), msg, hint));
    }

    fn error(&mut self, code: Code, span: Range<usize>, msg: String, hint: impl Into<Option<String>>) {
        self.push(Severity::Error, code, span, msg, hint.into());
    }

    fn warning(&mut self, code: Code, span: Range<usize>, msg: String, hint: impl Into<Option<String>>) {
        self.push(Severity::Warning, code, span, msg, hint.into());
    }

    fn has_errors(&self) -> bool {
        self.out.iter().any(|d| d.severity == Severity::Error)
    }
}

/// The closest candidate, when it is close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(wanted, c), c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .min()
        .map(|(_, c)| format!("did you mean `{c}`?"))
}

pub(crate) fn is_dotted_key(key: &str) -> bool {
    !key.is_empty()
        && key.split('.').all(|part| {
            !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

fn datetime_to_timestamp(dt: &toml::value::Datetime) -> Result<Timestamp, &'static str> {
    use toml::value::Offset;
    let date = dt.date.ok_or("a notice's `effective` needs a date")?;
    let day = chrono::NaiveDate::from_ymd_opt(i32::from(date.year), u32::from(date.month), u32::from(date.day))
        .ok_or("not a calendar date")?;
    let (time, offset_minutes) = match (dt.time, dt.offset) {
        (None, _) => (chrono::NaiveTime::MIN, 0),
        (Some(_), None) => return Err("a time of day needs a UTC offset (`Z` or `+01:00`), or give a date alone"),
        (Some(t), Some(off)) => {
            let minutes = match off {
                Offset::Z => 0,
                Offset::Custom { minutes } => i64::from(minutes),
            };
            let time = chrono::NaiveTime::from_hms_opt(
                u32::from(t.hour),
                u32::from(t.minute),
                u32::from(t.second.unwrap_or(0)),
            )
            .ok_or("not a time of day")?;
            (time, minutes)
        }
    };
    Ok(day.and_time(time).and_utc().timestamp() - offset_minutes * 60)
}

/// Parses, validates and compiles; `Ok` carries the warnings.
pub(crate) fn compile(name: &str, text: &str) -> Result<(Policy, Vec<Diagnostic>), PolicyError> {
    let raw: RawPolicy = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let hint = Some(
            "the policy is TOML: check quoting, brackets and that every key appears once; see policy/default.toml"
                .to_string(),
        );
        PolicyError::new(
            name,
            text,
            vec![Diagnostic::new(
                Severity::Error,
                Code::Syntax.as_str(),
                text,
                Some(span),
                e.message().trim().to_string(),
                hint,
            )],
        )
    })?;
    let mut sink = Sink { text, out: Vec::new() };
    let policy = build(&raw, &mut sink, text);
    if sink.has_errors() {
        return Err(PolicyError::new(name, text, sink.out));
    }
    Ok((policy, sink.out))
}

fn build(raw: &RawPolicy, sink: &mut Sink<'_>, text: &str) -> Policy {
    let meta = raw.policy.get_ref();
    if meta.version.get_ref().trim().is_empty() {
        sink.error(
            Code::Version,
            meta.version.span(),
            "the policy version is empty".into(),
            Some("give it a version such as \"2026.11.1\"; it is recorded in every manifest".into()),
        );
    }

    // Categories.
    let mut categories = Vec::new();
    for (key, c) in &raw.categories {
        let k = key.get_ref();
        let top_ok = ["user", "account", "system"].iter().any(|t| k == t || k.starts_with(&format!("{t}.")));
        if !is_dotted_key(k) || !top_ok {
            sink.error(
                Code::CategoryKey,
                key.span(),
                format!("`{k}` is not a fideslang data-category key"),
                Some("use a lowercase dotted key under `user.`, `account.` or `system.`, e.g. `user.professional.skills`".into()),
            );
        }
        if (k == PRIVATE_CONTENT || k.starts_with(&format!("{PRIVATE_CONTENT}."))) && !c.sensitive {
            sink.error(
                Code::PrivateNotSensitive,
                key.span(),
                format!("`{k}` holds private messages and must be marked `sensitive = true`"),
                Some(
                    "messages are opt-in in every jurisdiction; sensitive categories can never default to opt-out"
                        .into(),
                ),
            );
        }
        if c.sensitive && !c.personal {
            sink.error(
                Code::SensitiveNotPersonal,
                key.span(),
                format!("`{k}` is marked sensitive but not personal"),
                Some("sensitive data is always about members: remove `personal = false`".into()),
            );
        }
        if !c.personal && (k == MEMBER_ID || k.starts_with(&format!("{MEMBER_ID}."))) {
            sink.error(
                Code::MemberIdNotPersonal,
                key.span(),
                format!("`{k}` identifies members and cannot be `personal = false`"),
                Some("remove `personal = false`".into()),
            );
        }
        categories.push(Category {
            key: k.clone(),
            description: c.description.clone(),
            sensitive: c.sensitive,
            personal: c.personal,
        });
    }
    let category_keys: Vec<&str> = categories.iter().map(|c| c.key.as_str()).collect();
    let sensitive: HashMap<&str, bool> = categories.iter().map(|c| (c.key.as_str(), c.sensitive)).collect();

    // Purposes.
    let mut purposes = Vec::new();
    let mut purpose_sensitive = Vec::new();
    for (key, p) in &raw.purposes {
        let k = key.get_ref();
        let p_span = p.span();
        let p = p.get_ref();
        if !is_dotted_key(k) || !k.starts_with(&format!("{TRAIN_AI_SYSTEM}.")) {
            sink.error(
                Code::PurposeKey,
                key.span(),
                format!("purpose `{k}` is not under `{TRAIN_AI_SYSTEM}`"),
                Some(format!(
                    "Consentry governs AI training: name purposes `{TRAIN_AI_SYSTEM}.<feature>`, lowercase and dotted"
                )),
            );
        }
        if p.categories.get_ref().is_empty() {
            sink.error(
                Code::NoCategories,
                p.categories.span(),
                format!("purpose `{k}` declares no categories"),
                Some("list the data categories its datasets may carry".into()),
            );
        }
        let mut cats: Vec<String> = Vec::new();
        let mut uses_sensitive = false;
        for c in p.categories.get_ref() {
            let ck = c.get_ref();
            match sensitive.get(ck.as_str()) {
                Some(s) => uses_sensitive |= *s,
                None => sink.error(
                    Code::UnknownCategory,
                    c.span(),
                    format!("purpose `{k}` uses category `{ck}`, which is not declared"),
                    Some(
                        did_you_mean(ck, category_keys.iter().copied())
                            .unwrap_or_else(|| format!("declare it as [categories.\"{ck}\"]")),
                    ),
                ),
            }
            if cats.contains(ck) {
                sink.warning(Code::DuplicateCategory, c.span(), format!("category `{ck}` is listed twice"), None);
            } else {
                cats.push(ck.clone());
            }
        }
        let notices = compile_notices(k, p_span, &p.notices, sink);
        let lapses_at = lapse_times(&notices);
        purposes.push(Purpose {
            key: k.clone(),
            name: p.name.clone(),
            summary: p.summary.clone(),
            categories: cats,
            gpc_withdraws: p.gpc_withdraws,
            notices,
            lapses_at,
        });
        purpose_sensitive.push(uses_sensitive);
    }
    if purposes.is_empty() {
        sink.error(
            Code::NoPurposes,
            raw.policy.span(),
            "the policy declares no purposes".into(),
            Some(format!("add at least one [purposes.\"{TRAIN_AI_SYSTEM}.<feature>\"] table")),
        );
    }
    if purposes.len() > usize::from(u16::MAX) {
        sink.error(Code::TooManyPurposes, raw.policy.span(), "more than 65535 purposes".into(), None);
    }

    // Groups.
    let mut groups = Vec::new();
    for (gname, members) in &raw.groups {
        let g = gname.get_ref();
        if !(g.len() > 2 && g.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')) {
            sink.error(
                Code::GroupKey,
                gname.span(),
                format!("group name `{g}` must be three or more capital letters"),
                Some("two-letter names are country codes; pick a name such as `EEA`".into()),
            );
        }
        let mut codes = Vec::new();
        for m in members {
            if !iso3166::is_country(m.get_ref()) {
                sink.error(
                    Code::GroupMember,
                    m.span(),
                    format!("`{}` in group `{g}` is not an ISO 3166-1 alpha-2 country code", m.get_ref()),
                    did_you_mean(m.get_ref(), iso3166::COUNTRIES.iter().copied())
                        .or_else(|| Some("use two capital letters, e.g. `DE`; the United Kingdom is `GB`".into())),
                );
            }
            codes.push(m.get_ref().clone());
        }
        groups.push((g.clone(), codes));
    }

    // Jurisdictions.
    let mut jurisdictions = vec![Jurisdiction {
        key: "default".into(),
        min_age: MIN_AGE_FLOOR,
        default: DefaultRule::OptIn,
        purpose_defaults: vec![DefaultRule::OptIn; purposes.len()],
    }];
    let mut code_index: HashMap<String, JurisdictionId> = HashMap::new();
    let mut group_rules = Vec::new();
    if !raw.jurisdictions.keys().any(|k| k.get_ref() == "default") && !raw.jurisdictions.is_empty() {
        sink.warning(
            Code::NoDefaultJurisdiction,
            raw.policy.span(),
            "no [jurisdictions.default] rule: members elsewhere fall back to opt-in with a minimum age of 18".into(),
            Some("add [jurisdictions.default] to state the fallback explicitly".into()),
        );
    }
    for (jkey, j) in &raw.jurisdictions {
        let code = jkey.get_ref();
        let group = groups.iter().find(|(g, _)| g == code);
        let is_default = code == "default";
        if !is_default && group.is_none() && !iso3166::is_country(code) && !iso3166::is_subdivision(code) {
            let hint = did_you_mean(code, iso3166::COUNTRIES.iter().copied().chain(groups.iter().map(|(g, _)| g.as_str())))
                .unwrap_or_else(|| "use an ISO 3166-1 country (`GB`), an ISO 3166-2 subdivision (`US-CA`), a group declared under [groups], or `default`".into());
            sink.error(
                Code::JurisdictionKey,
                jkey.span(),
                format!("`{code}` is not a country, subdivision, group or `default`"),
                Some(hint),
            );
        }
        let rule = compile_jurisdiction(code, j.get_ref(), &raw.purposes, &purposes, &purpose_sensitive, sink);
        if is_default {
            jurisdictions[0] = rule;
            continue;
        }
        let id = JurisdictionId(jurisdictions.len() as u16);
        jurisdictions.push(rule);
        match group {
            Some((_, members)) => group_rules.push((jkey, id, members)),
            None => {
                code_index.insert(code.clone(), id);
            }
        }
    }
    let mut claimed_by: HashMap<&str, &str> = HashMap::new();
    for (gkey, id, members) in group_rules {
        for m in members {
            if code_index.contains_key(m) && !claimed_by.contains_key(m.as_str()) {
                continue; // The country's own rule is more specific and wins.
            }
            if let Some(other) = claimed_by.get(m.as_str()) {
                sink.error(
                    Code::GroupOverlap,
                    gkey.span(),
                    format!("`{m}` is in both `{other}` and `{}`, and both have rules", gkey.get_ref()),
                    Some(format!("give `{m}` a rule of its own, or remove it from one of the groups")),
                );
                continue;
            }
            claimed_by.insert(m.as_str(), gkey.get_ref().as_str());
            code_index.insert(m.clone(), id);
        }
    }
    if jurisdictions.len() > usize::from(u16::MAX) {
        sink.error(Code::TooManyJurisdictions, raw.policy.span(), "more than 65535 jurisdiction rules".into(), None);
    }

    Policy {
        version: meta.version.get_ref().clone(),
        controller: meta.controller.get_ref().clone(),
        hash: blake3::hash(text.as_bytes()).to_hex().to_string(),
        categories,
        purposes,
        jurisdictions,
        groups,
        code_index,
    }
}

fn compile_notices(purpose: &str, purpose_span: Range<usize>, raw: &[RawNotice], sink: &mut Sink<'_>) -> Vec<Notice> {
    if raw.is_empty() {
        sink.error(
            Code::NoNotices,
            purpose_span,
            format!("purpose `{purpose}` has no notice"),
            Some(format!("add [[purposes.\"{purpose}\".notices]] with version, effective, material and text: a member can only grant under a notice")),
        );
    }
    let mut notices: Vec<Notice> = Vec::new();
    for n in raw {
        let version = *n.version.get_ref();
        let Ok(version) = u32::try_from(version).map_err(|_| ()).and_then(|v| if v == 0 { Err(()) } else { Ok(v) })
        else {
            sink.error(
                Code::NoticeVersion,
                n.version.span(),
                format!("notice version {version} is not a positive whole number"),
                Some("number notices 1, 2, 3, … in the order they were published".into()),
            );
            continue;
        };
        let effective = match datetime_to_timestamp(n.effective.get_ref()) {
            Ok(t) => t,
            Err(why) => {
                sink.error(
                    Code::NoticeEffective,
                    n.effective.span(),
                    format!("notice {version} of `{purpose}`: {why}"),
                    Some("write e.g. `effective = 2026-01-15T00:00:00Z`".into()),
                );
                continue;
            }
        };
        if let Some(prev) = notices.last() {
            if version <= prev.version {
                sink.error(
                    Code::NoticeOrder,
                    n.version.span(),
                    format!("notice versions of `{purpose}` are out of order: {version} comes after {}", prev.version),
                    Some("list notices oldest first with strictly increasing versions".into()),
                );
            } else if effective < prev.effective {
                sink.error(
                    Code::NoticeOrder,
                    n.effective.span(),
                    format!("notice {version} of `{purpose}` takes effect before notice {}", prev.version),
                    Some("a later version cannot take effect earlier than the one it replaces".into()),
                );
            }
        }
        if n.text.get_ref().trim().is_empty() {
            sink.error(
                Code::NoticeText,
                n.text.span(),
                format!("notice {version} of `{purpose}` has no text"),
                Some("members must see plain-language text to give valid consent".into()),
            );
        }
        notices.push(Notice {
            version,
            effective,
            material: n.material,
            language: n.language.clone(),
            text: n.text.get_ref().trim().to_string(),
        });
    }
    notices
}

/// For each notice, the effective time of the first later material notice.
fn lapse_times(notices: &[Notice]) -> Vec<Timestamp> {
    let mut out = vec![Timestamp::MAX; notices.len()];
    let mut next_material = Timestamp::MAX;
    for i in (0..notices.len()).rev() {
        out[i] = next_material;
        if notices[i].material {
            next_material = next_material.min(notices[i].effective);
        }
    }
    out
}

fn compile_jurisdiction(
    code: &str,
    raw: &RawJurisdiction,
    raw_purposes: &BTreeMap<Spanned<String>, Spanned<RawPurpose>>,
    purposes: &[Purpose],
    purpose_sensitive: &[bool],
    sink: &mut Sink<'_>,
) -> Jurisdiction {
    let default = raw.default.as_ref().map_or(DefaultRule::OptIn, |d| *d.get_ref());
    let mut min_age = MIN_AGE_FLOOR;
    if let Some(age) = &raw.min_age {
        let a = *age.get_ref();
        if a < i64::from(MIN_AGE_FLOOR) || a > 120 {
            sink.error(
                Code::MinAge,
                age.span(),
                format!("minimum age {a} for `{code}` is outside 18..=120"),
                Some("members under 18 are never included in training; a jurisdiction may only raise the floor".into()),
            );
        } else {
            min_age = a as u8;
        }
    }
    let mut purpose_defaults = vec![default; purposes.len()];
    let mut spans: Vec<Option<Range<usize>>> = vec![raw.default.as_ref().map(|d| d.span()); purposes.len()];
    for (pkey, rule) in &raw.purposes {
        match purposes.iter().position(|p| &p.key == pkey.get_ref()) {
            Some(i) => {
                purpose_defaults[i] = *rule.get_ref();
                spans[i] = Some(rule.span());
            }
            None => sink.error(
                Code::UnknownPurpose,
                pkey.span(),
                format!(
                    "jurisdiction `{code}` sets a default for `{}`, which is not a declared purpose",
                    pkey.get_ref()
                ),
                did_you_mean(pkey.get_ref(), raw_purposes.keys().map(|k| k.get_ref().as_str())),
            ),
        }
    }
    for (i, p) in purposes.iter().enumerate() {
        if purpose_defaults[i] == DefaultRule::OptOut && purpose_sensitive[i] {
            let span = spans[i].clone().unwrap_or(0..0);
            sink.error(
                Code::SensitiveOptOut,
                span,
                format!("`{code}` defaults `{}` to opt-out, but that purpose uses a sensitive category", p.key),
                Some(format!("sensitive data (e.g. {PRIVATE_CONTENT}) is opt-in everywhere: set `purposes.\"{}\" = \"opt_in\"` for `{code}`", p.key)),
            );
        }
    }
    Jurisdiction { key: code.to_string(), min_age, default, purpose_defaults }
}

#[cfg(test)]
mod tests {
    /// Every code the parser emits goes through [`crate::Code`], so `Code::ALL` (and the corpus test
    /// that asserts a case for each) cannot miss one spelled as a bare string here.
    #[test]
    fn codes_are_never_spelled_as_strings() {
        let source = include_str!("parse.rs");
        let needle = concat!("\"pol", "icy::");
        assert!(!source.contains(needle), "parse.rs spells a diagnostic code as a string: use `Code`");
    }
}
