//! Fides (fideslang) interoperability: a policy as a Fides resource manifest, and back.
//!
//! [`export`] turns a policy into one Fides `system` whose privacy declarations are the purposes, plus the
//! taxonomy entries (`data_use`, `data_category`) that fideslang's default taxonomy lacks. What Fides has no field
//! for (notices, jurisdictions, GPC, sensitivity, minimum ages) rides in the system's free-form `meta.consentry`,
//! with the exact policy text, so [`import`] restores it. Import reads what a Fides user may have changed (the
//! declarations, the taxonomy entries' descriptions) over what export stored, or over a base policy when the
//! manifest carries nothing, and validates the result as `consentry policy check` does. Pure: text in, text out.

use crate::diagnostic::PolicyError;
use crate::fideslang_taxonomy::{DATA_CATEGORIES, DATA_USES};
use crate::parse::{did_you_mean, is_dotted_key};
use crate::{DefaultRule, Policy, TRAIN_AI_SYSTEM, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The fideslang data subject for members of the platform (the default taxonomy has no `user` subject).
pub const DATA_SUBJECT: &str = "customer";

/// The key under the system's `meta` where Consentry keeps what Fides has no field for.
pub const META_KEY: &str = "consentry";

/// The layout version of `meta.consentry`; import refuses others.
pub const META_FORMAT: u32 = 1;

/// Fides' organisation every exported resource belongs to (its default).
const ORGANIZATION: &str = "default_organization";

/// What Consentry keeps in `system.meta.consentry`: every fact of the policy Fides does not carry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Extras {
    /// [`META_FORMAT`].
    pub format: u32,
    /// The policy's version string.
    pub version: String,
    /// The controller.
    pub controller: String,
    /// BLAKE3 of the exported policy text, for the reader's reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_hash: Option<String>,
    /// Every declared category's Consentry facts, by key.
    #[serde(default)]
    pub categories: BTreeMap<String, CategoryExtras>,
    /// Every purpose's Consentry facts, by key (its name and categories are the declaration's).
    #[serde(default)]
    pub purposes: BTreeMap<String, PurposeExtras>,
    /// Named groups of countries.
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<String>>,
    /// Jurisdiction rules, by key (`default`, `GB`, `EEA`, …).
    #[serde(default)]
    pub jurisdictions: BTreeMap<String, JurisdictionExtras>,
    /// The exact policy text exported: written back unchanged when the manifest still says the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_toml: Option<String>,
}

/// A category's facts besides its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryExtras {
    /// Consentry's description (a taxonomy entry's description in the manifest wins over it).
    #[serde(default)]
    pub description: String,
    /// Never defaults to opt-out.
    pub sensitive: bool,
    /// About members.
    #[serde(default = "yes")]
    pub personal: bool,
}

fn yes() -> bool {
    true
}

/// A purpose's facts besides its key, name and categories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurposeExtras {
    /// One sentence for the privacy centre.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Whether GPC withdraws it.
    #[serde(default)]
    pub gpc_withdraws: bool,
    /// Notice versions, oldest first.
    pub notices: Vec<NoticeExtras>,
}

/// One notice version; `effective` is RFC 3339 (`2026-01-15T00:00:00Z`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticeExtras {
    /// Version number.
    pub version: u32,
    /// When it takes effect, RFC 3339.
    pub effective: String,
    /// Whether it makes earlier grants lapse.
    #[serde(default)]
    pub material: bool,
    /// BCP 47 tag.
    #[serde(default = "english")]
    pub language: String,
    /// The words shown.
    pub text: String,
}

fn english() -> String {
    "en".into()
}

/// A jurisdiction rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JurisdictionExtras {
    /// Default for purposes without an override.
    pub default: DefaultRule,
    /// Minimum age.
    pub min_age: u8,
    /// Per-purpose overrides.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub purposes: BTreeMap<String, DefaultRule>,
}

/// True when fideslang's default taxonomy has this data category.
pub fn is_default_category(key: &str) -> bool {
    DATA_CATEGORIES.binary_search_by_key(&key, |(k, _)| k).is_ok()
}

/// True when fideslang's default taxonomy has this data use.
pub fn is_default_use(key: &str) -> bool {
    DATA_USES.binary_search_by_key(&key, |(k, _)| k).is_ok()
}

fn default_category_description(key: &str) -> Option<&'static str> {
    DATA_CATEGORIES.binary_search_by_key(&key, |(k, _)| k).ok().map(|i| DATA_CATEGORIES[i].1)
}

/// The system's `fides_key`: the controller's name, lowercased, with `_ai_training` (Fides keys allow
/// letters, digits, `_`, `.`, `-`, `<`, `>`).
pub fn system_key(controller: &str) -> String {
    let mut slug = String::new();
    for ch in controller.chars() {
        if ch.is_ascii_alphanumeric() {
            slug.push(ch.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('_') {
            slug.push('_');
        }
    }
    let slug = slug.trim_end_matches('_');
    if slug.is_empty() { "consentry_ai_training".into() } else { format!("{slug}_ai_training") }
}

fn rfc3339(t: Timestamp) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map_or_else(|| t.to_string(), |d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// A readable name for a taxonomy key: its last part, capitalised, underscores as spaces.
fn key_name(key: &str) -> String {
    let last = key.rsplit('.').next().unwrap_or(key).replace('_', " ");
    let mut chars = last.chars();
    chars.next().map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

/// What `meta.consentry` holds for a policy (and what a base policy supplies on import).
pub fn extras(policy: &Policy) -> Extras {
    let categories = policy
        .categories
        .iter()
        .map(|c| {
            (
                c.key.clone(),
                CategoryExtras { description: c.description.clone(), sensitive: c.sensitive, personal: c.personal },
            )
        })
        .collect();
    let purposes = policy
        .purposes
        .iter()
        .map(|p| {
            let notices = p
                .notices
                .iter()
                .map(|n| NoticeExtras {
                    version: n.version,
                    effective: rfc3339(n.effective),
                    material: n.material,
                    language: n.language.clone(),
                    text: n.text.clone(),
                })
                .collect();
            (p.key.clone(), PurposeExtras { summary: p.summary.clone(), gpc_withdraws: p.gpc_withdraws, notices })
        })
        .collect();
    let jurisdictions = policy
        .jurisdictions
        .iter()
        .map(|j| {
            let purposes = policy
                .purpose_ids()
                .filter(|id| j.default_for(*id) != j.default)
                .map(|id| (policy.purpose(id).key.clone(), j.default_for(id)))
                .collect();
            (j.key.clone(), JurisdictionExtras { default: j.default, min_age: j.min_age, purposes })
        })
        .collect();
    Extras {
        format: META_FORMAT,
        version: policy.version.clone(),
        controller: policy.controller.clone(),
        policy_hash: Some(policy.hash.clone()),
        categories,
        purposes,
        groups: policy.groups.iter().cloned().collect(),
        jurisdictions,
        policy_toml: None,
    }
}

/// The Fides manifest for `policy`, whose exact text is `text` (kept so an unchanged round trip gives it back).
pub fn export(policy: &Policy, text: &str) -> Value {
    let declarations: Vec<Value> = policy
        .purposes
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "data_use": p.key,
                "data_categories": p.categories,
                "data_subjects": [DATA_SUBJECT],
                "legal_basis_for_processing": "Consent",
                "flexible_legal_basis_for_processing": false,
            })
        })
        .collect();
    let mut meta = extras(policy);
    meta.policy_toml = Some(text.to_string());
    let system = json!({
        "fides_key": system_key(&policy.controller),
        "organization_fides_key": ORGANIZATION,
        "name": format!("AI training ({})", policy.controller),
        "description": format!(
            "AI features trained only on the data of members who consented, under Consentry policy {} (blake3 {}).",
            policy.version, policy.hash
        ),
        "system_type": "Service",
        "legal_name": policy.controller,
        "responsibility": ["Controller"],
        "processes_personal_data": policy.categories.iter().any(|c| c.personal),
        "privacy_declarations": declarations,
        "meta": { META_KEY: meta },
    });

    // Taxonomy extensions: every purpose key (and `train_ai_system`) and every category (and its ancestors)
    // that fideslang's default taxonomy lacks, parents first.
    let mut uses = Vec::new();
    if !is_default_use(TRAIN_AI_SYSTEM) {
        uses.push(json!({
            "fides_key": TRAIN_AI_SYSTEM, "organization_fides_key": ORGANIZATION, "name": "Train AI system",
            "description": "Training an AI system on personal data.", "parent_key": null,
        }));
    }
    for p in policy.purposes.iter().filter(|p| !is_default_use(&p.key)) {
        let parent = p.key.rsplit_once('.').map(|(parent, _)| parent);
        uses.push(json!({
            "fides_key": p.key, "organization_fides_key": ORGANIZATION, "name": p.name,
            "description": p.summary.clone().unwrap_or_else(|| p.name.clone()), "parent_key": parent,
        }));
    }
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    for c in policy.categories.iter().filter(|c| !is_default_category(&c.key)) {
        let mut key = c.key.as_str();
        while !is_default_category(key) {
            wanted.insert(key.to_string());
            match key.rsplit_once('.') {
                Some((parent, _)) => key = parent,
                None => break,
            }
        }
    }
    // BTreeSet order puts a parent before its children ("a.b" < "a.b.c").
    let categories: Vec<Value> = wanted
        .iter()
        .map(|key| {
            let description = policy.category(key).map_or_else(
                || format!("Consentry's grouping of the categories under `{key}`."),
                |c| c.description.clone(),
            );
            json!({
                "fides_key": key, "organization_fides_key": ORGANIZATION, "name": key_name(key),
                "description": description, "parent_key": key.rsplit_once('.').map(|(parent, _)| parent),
            })
        })
        .collect();
    json!({ "system": [system], "data_use": uses, "data_category": categories })
}

/// One problem found in a manifest: where (a path such as `system[0].privacy_declarations[1].data_use`), what,
/// and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where in the manifest.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " ({h})")?;
        }
        Ok(())
    }
}

fn policy_problems(error: &PolicyError) -> String {
    let lines: Vec<String> = error
        .errors()
        .map(|d| match &d.hint {
            Some(h) => format!("  {}: {} ({h})", d.code, d.message),
            None => format!("  {}: {}", d.code, d.message),
        })
        .collect();
    lines.join("\n")
}

fn yaml_hint(yaml: &bool) -> &'static str {
    if *yaml {
        "; it looks like YAML, which Consentry does not read: convert it to JSON first, e.g. `yq -o json FILE > FILE.json` \
         or `python3 -c 'import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)' < FILE > FILE.json` \
         (JSON is YAML, so Fides reads what `consentry policy export` writes)"
    } else {
        ""
    }
}

/// Why a Fides manifest could not become a policy.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FidesError {
    /// The text is not JSON.
    #[error("{file}:{line}:{column}: not a JSON manifest: {message}{}", yaml_hint(.yaml))]
    Syntax {
        /// The manifest's name.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
        /// Whether the text looks like YAML rather than broken JSON.
        yaml: bool,
    },
    /// The manifest is JSON but does not describe a policy.
    #[error("{file}: {} problem(s):\n{}", problems.len(), problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Manifest {
        /// The manifest's name.
        file: String,
        /// Every problem found.
        problems: Vec<Problem>,
    },
    /// The policy made from the manifest fails `consentry policy check`.
    #[error(
        "the policy made from {file} fails `consentry policy check`:\n{}\n(purposes, their names and categories come \
         from the system's privacy_declarations; notices, jurisdictions, groups and category facts from its \
         meta.consentry, else from the base policy)",
        policy_problems(.error)
    )]
    Policy {
        /// The manifest's name.
        file: String,
        /// The diagnostics, against the generated TOML.
        error: PolicyError,
    },
}

/// A policy made from a Fides manifest.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The policy text to write.
    pub toml: String,
    /// It, compiled and validated.
    pub policy: Policy,
    /// The system it came from.
    pub system: String,
    /// What the user should know: skipped declarations, defaults taken.
    pub notes: Vec<String>,
    /// True when the manifest says what the policy it was exported from says, whose exact text is `toml`.
    pub unchanged: bool,
}

struct Sink {
    problems: Vec<Problem>,
}

impl Sink {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>, hint: impl Into<Option<String>>) {
        self.problems.push(Problem { path: path.into(), message: message.into(), hint: hint.into() });
    }

    /// `obj[field]` as a string when present: `None` when missing or null; a problem when of another type.
    fn opt_str<'a>(&mut self, obj: &'a Map<String, Value>, path: &str, field: &str) -> Option<&'a str> {
        match obj.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                self.push(format!("{path}.{field}"), format!("must be a string, not {}", kind(other)), None);
                None
            }
        }
    }

    /// `value[field]` as a list of objects (missing: empty).
    fn objects<'a>(
        &mut self,
        obj: &'a Map<String, Value>,
        path: &str,
        field: &str,
    ) -> Vec<(String, &'a Map<String, Value>)> {
        let here = if path.is_empty() { field.to_string() } else { format!("{path}.{field}") };
        match obj.get(field) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| match v {
                    Value::Object(o) => Some((format!("{here}[{i}]"), o)),
                    other => {
                        self.push(format!("{here}[{i}]"), format!("must be a mapping, not {}", kind(other)), None);
                        None
                    }
                })
                .collect(),
            Some(other) => {
                self.push(here, format!("must be a list, not {}", kind(other)), None);
                Vec::new()
            }
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Whether text that failed to parse as JSON looks like YAML (a Fides manifest as `fides pull` writes it).
fn looks_like_yaml(text: &str) -> bool {
    let first = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#'));
    match first {
        Some(l) => !l.starts_with('{') && !l.starts_with('[') && (l.contains(':') || l.starts_with("---")),
        None => false,
    }
}

/// One declaration of the system, as a purpose.
struct Declared {
    path: String,
    key: String,
    name: String,
    categories: Vec<String>,
}

/// Reads a Fides manifest (JSON) named `file` and makes the policy of its system `system` (or its only system),
/// taking what the manifest does not carry from its `meta.consentry`, else from `base`. The result passes
/// `consentry policy check`; every problem found is reported at once, by its path in the manifest.
pub fn import(file: &str, text: &str, system: Option<&str>, base: &Policy) -> Result<Imported, FidesError> {
    let root: Value = serde_json::from_str(text).map_err(|e| FidesError::Syntax {
        file: file.to_string(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
        yaml: looks_like_yaml(text),
    })?;
    let mut sink = Sink { problems: Vec::new() };
    let fail = |sink: Sink| FidesError::Manifest { file: file.to_string(), problems: sink.problems };
    let Value::Object(root) = &root else {
        sink.push(
            "(top level)",
            format!("is {}, not a mapping of resource lists", kind(&root)),
            Some("a Fides manifest maps `system`, `data_category`, `data_use`, … to lists".into()),
        );
        return Err(fail(sink));
    };

    // The system.
    let systems = sink.objects(root, "", "system");
    let keyed: Vec<(String, &Map<String, Value>, String)> = systems
        .into_iter()
        .filter_map(|(path, o)| match sink.opt_str(o, &path, "fides_key") {
            Some(k) => Some((path, o, k.to_string())),
            None => {
                sink.push(format!("{path}.fides_key"), "is missing", Some("every Fides system has a fides_key".into()));
                None
            }
        })
        .collect();
    if !sink.problems.is_empty() {
        return Err(fail(sink));
    }
    let all_keys = || keyed.iter().map(|(_, _, k)| format!("`{k}`")).collect::<Vec<_>>().join(", ");
    let chosen = match (system, keyed.len()) {
        (_, 0) => {
            sink.push(
                "system",
                "the manifest declares no system",
                Some("export one with `consentry policy export --format fideslang`, or `fides pull` a system".into()),
            );
            None
        }
        (None, 1) => keyed.first(),
        (None, n) => {
            sink.push(
                "system",
                format!("the manifest declares {n} systems ({})", all_keys()),
                Some("pick one with --system KEY".into()),
            );
            None
        }
        (Some(want), _) => {
            let found = keyed.iter().find(|(_, _, k)| k == want);
            if found.is_none() {
                sink.push(
                    "system",
                    format!("no system has fides_key `{want}`"),
                    Some(format!("the manifest's systems: {}", all_keys())),
                );
            }
            found
        }
    };
    let Some((spath, sys, skey)) = chosen else {
        return Err(fail(sink));
    };

    // The taxonomy entries the manifest adds.
    let mut manifest_categories: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (path, o) in sink.objects(root, "", "data_category") {
        if let Some(k) = sink.opt_str(o, &path, "fides_key") {
            let d = sink.opt_str(o, &path, "description").map(str::to_string);
            manifest_categories.insert(k.to_string(), d);
        }
    }
    let mut manifest_uses: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (path, o) in sink.objects(root, "", "data_use") {
        if let Some(k) = sink.opt_str(o, &path, "fides_key") {
            let n = sink.opt_str(o, &path, "name").map(str::to_string);
            manifest_uses.insert(k.to_string(), n);
        }
    }

    // What export stored.
    let meta_path = format!("{spath}.meta.{META_KEY}");
    let stored: Option<Extras> = match sys.get("meta") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => match m.get(META_KEY) {
            None | Some(Value::Null) => None,
            Some(v) => match Extras::deserialize(v) {
                Ok(x) if x.format == META_FORMAT => Some(x),
                Ok(x) => {
                    sink.push(
                        format!("{meta_path}.format"),
                        format!("format {} is not {META_FORMAT}", x.format),
                        Some("export the manifest again with this Consentry".into()),
                    );
                    None
                }
                Err(e) => {
                    sink.push(meta_path.clone(), e.to_string(), Some("it is what `consentry policy export` stored; restore it from the export, or remove it to take everything from --base".into()));
                    None
                }
            },
        },
        Some(other) => {
            sink.push(format!("{spath}.meta"), format!("must be a mapping, not {}", kind(other)), None);
            None
        }
    };
    let from_base = extras(base);
    let extra = stored.as_ref().unwrap_or(&from_base);

    // The declarations: purposes.
    let mut notes = Vec::new();
    let mut declared: Vec<Declared> = Vec::new();
    if sys.get("privacy_declarations").is_none() {
        sink.push(
            format!("{spath}.privacy_declarations"),
            "is missing",
            Some("a Fides system lists its privacy declarations".into()),
        );
    }
    let known_categories =
        || DATA_CATEGORIES.iter().map(|(k, _)| *k).chain(manifest_categories.keys().map(String::as_str));
    for (path, d) in sink.objects(sys, spath, "privacy_declarations") {
        let name = sink.opt_str(d, &path, "name").map(str::to_string);
        let label = name.as_deref().map_or_else(|| path.clone(), |n| format!("{path} (`{n}`)"));
        let Some(data_use) = sink.opt_str(d, &path, "data_use") else {
            sink.push(
                format!("{label}.data_use"),
                "is missing",
                Some("a privacy declaration names its data use".into()),
            );
            continue;
        };
        if !data_use.starts_with(&format!("{TRAIN_AI_SYSTEM}.")) {
            if data_use == TRAIN_AI_SYSTEM {
                sink.push(
                    format!("{label}.data_use"),
                    format!("`{TRAIN_AI_SYSTEM}` itself names no feature"),
                    Some(format!(
                        "use a data use under it, e.g. `{TRAIN_AI_SYSTEM}.job_recommendations`, declared under data_use"
                    )),
                );
            } else {
                notes.push(format!("skipped {label}: data use `{data_use}` is not under `{TRAIN_AI_SYSTEM}`, and Consentry governs only AI training"));
            }
            continue;
        }
        if !is_dotted_key(data_use) {
            sink.push(
                format!("{label}.data_use"),
                format!("`{data_use}` is not a lowercase dotted key"),
                Some("use lowercase letters, digits and `_` between the dots".into()),
            );
        }
        if !is_default_use(data_use) && !manifest_uses.contains_key(data_use) {
            sink.push(
                format!("{label}.data_use"),
                format!("`{data_use}` is neither in fideslang's default taxonomy nor a data_use of this manifest"),
                Some(format!(
                    "declare it under data_use with parent_key `{}`",
                    data_use.rsplit_once('.').map_or(TRAIN_AI_SYSTEM, |(p, _)| p)
                )),
            );
        }
        if let Some(prev) = declared.iter().find(|p| p.key == data_use) {
            sink.push(
                format!("{label}.data_use"),
                format!("`{data_use}` is declared twice (also by {})", prev.path),
                Some("a purpose is one declaration: merge their data categories".into()),
            );
            continue;
        }
        let mut categories: Vec<String> = Vec::new();
        match d.get("data_categories") {
            Some(Value::Array(items)) => {
                for (i, c) in items.iter().enumerate() {
                    let here = format!("{label}.data_categories[{i}]");
                    match c {
                        Value::String(c) if is_default_category(c) || manifest_categories.contains_key(c) => {
                            if !categories.contains(c) {
                                categories.push(c.clone());
                            }
                        }
                        Value::String(c) => sink.push(
                            here,
                            format!(
                                "`{c}` is neither in fideslang's default taxonomy nor a data_category of this manifest"
                            ),
                            Some(did_you_mean(c, known_categories()).unwrap_or_else(|| {
                                format!(
                                    "declare it under data_category with parent_key `{}`",
                                    c.rsplit_once('.').map_or("user", |(p, _)| p)
                                )
                            })),
                        ),
                        other => sink.push(here, format!("must be a string, not {}", kind(other)), None),
                    }
                }
                if items.is_empty() {
                    sink.push(
                        format!("{label}.data_categories"),
                        "is empty",
                        Some("list the data categories the purpose's datasets may carry".into()),
                    );
                }
            }
            None | Some(Value::Null) => sink.push(
                format!("{label}.data_categories"),
                "is missing",
                Some("list the data categories the purpose's datasets may carry".into()),
            ),
            Some(other) => {
                sink.push(format!("{label}.data_categories"), format!("must be a list, not {}", kind(other)), None)
            }
        }
        let name = name
            .or_else(|| base.purpose_id(data_use).map(|id| base.purpose(id).name.clone()))
            .or_else(|| manifest_uses.get(data_use).cloned().flatten());
        let Some(name) = name else {
            sink.push(
                format!("{label}.name"),
                "is missing, and no other source names the purpose",
                Some("give the declaration a name".into()),
            );
            continue;
        };
        if !extra.purposes.contains_key(data_use) && !from_base.purposes.contains_key(data_use) {
            sink.push(
                label.clone(),
                format!("purpose `{data_use}` has no notice: neither {meta_path} nor the base policy describes it"),
                Some(format!("add it, with its notice, to a policy TOML and pass it as --base, or add `purposes.\"{data_use}\"` with `notices` to {meta_path}")),
            );
        }
        declared.push(Declared { path: label, key: data_use.to_string(), name, categories });
    }
    if declared.is_empty() && sink.problems.is_empty() {
        sink.push(
            format!("{spath}.privacy_declarations"),
            format!("no declaration has a data use under `{TRAIN_AI_SYSTEM}`"),
            Some(format!(
                "declare each AI-training purpose as a privacy declaration with data_use `{TRAIN_AI_SYSTEM}.<feature>`"
            )),
        );
    }

    // Notices must be real times.
    let mut purposes = BTreeMap::new();
    for d in &declared {
        let Some(x) = extra.purposes.get(&d.key).or_else(|| from_base.purposes.get(&d.key)) else { continue };
        let mut notices = Vec::new();
        for (i, n) in x.notices.iter().enumerate() {
            match n.effective.parse::<toml::value::Datetime>() {
                Ok(t) if t.date.is_some() && t.time.is_some() && t.offset.is_some() => notices.push(TomlNotice {
                    version: n.version,
                    effective: t,
                    material: n.material,
                    language: n.language.clone(),
                    text: n.text.clone(),
                }),
                _ => sink.push(
                    format!("{meta_path}.purposes.\"{}\".notices[{i}].effective", d.key),
                    format!("`{}` is not an RFC 3339 time", n.effective),
                    Some("write e.g. `2026-01-15T00:00:00Z`".into()),
                ),
            }
        }
        purposes.insert(
            d.key.clone(),
            TomlPurpose {
                name: d.name.clone(),
                summary: x.summary.clone(),
                categories: d.categories.clone(),
                gpc_withdraws: x.gpc_withdraws,
                notices,
            },
        );
    }
    if !sink.problems.is_empty() {
        return Err(fail(sink));
    }

    // Categories: the ones described by what export stored (else the base), and the ones declarations use.
    let mut keys: BTreeSet<&str> = extra.categories.keys().map(String::as_str).collect();
    keys.extend(declared.iter().flat_map(|d| d.categories.iter().map(String::as_str)));
    let mut categories = BTreeMap::new();
    for key in keys {
        let facts = extra.categories.get(key).or_else(|| from_base.categories.get(key));
        let description = manifest_categories
            .get(key)
            .cloned()
            .flatten()
            .filter(|d| !d.trim().is_empty())
            .or_else(|| facts.map(|f| f.description.clone()))
            .or_else(|| default_category_description(key).map(str::to_string))
            .unwrap_or_default();
        let (sensitive, personal) = match facts {
            Some(f) => (f.sensitive, f.personal),
            None => {
                notes.push(format!("category `{key}` is new to Consentry: taken as personal and sensitive (never opt-out); say otherwise in the new policy if it is not"));
                (true, true)
            }
        };
        categories.insert(key.to_string(), TomlCategory { description, sensitive, personal });
    }

    // Jurisdictions: overrides of purposes no longer declared are dropped.
    let mut jurisdictions = BTreeMap::new();
    for (jkey, j) in &extra.jurisdictions {
        let mut overrides = BTreeMap::new();
        for (p, rule) in &j.purposes {
            if purposes.contains_key(p) {
                overrides.insert(p.clone(), *rule);
            } else {
                notes.push(format!(
                    "dropped jurisdiction `{jkey}`'s rule for `{p}`: the manifest no longer declares that purpose"
                ));
            }
        }
        jurisdictions
            .insert(jkey.clone(), TomlJurisdiction { default: j.default, min_age: j.min_age, purposes: overrides });
    }
    let doc = TomlPolicy {
        policy: TomlMeta { version: extra.version.clone(), controller: extra.controller.clone() },
        categories,
        purposes,
        groups: extra.groups.clone(),
        jurisdictions,
    };
    let rendered = render(&doc);
    let out_name = format!("the policy made from {file}");
    let policy = Policy::from_toml(&out_name, &rendered)
        .map_err(|error| FidesError::Policy { file: file.to_string(), error })?;

    // The exact text exported, when the manifest still says what it says.
    if let Some(original) = stored.as_ref().and_then(|s| s.policy_toml.as_deref()) {
        match Policy::from_toml(&out_name, original) {
            Ok(p) if same_content(&p, &policy) => {
                return Ok(Imported { toml: original.to_string(), policy: p, system: skey.clone(), notes, unchanged: true });
            }
            _ => notes.push(format!(
                "the manifest differs from the policy it was exported from: the new policy is written in Consentry's own layout (comments dropped) and keeps version `{}`; give it a new version before putting it in force",
                policy.version
            )),
        }
    } else if stored.is_none() {
        notes.push("the manifest carries no Consentry facts (system.meta.consentry): notices, jurisdictions and category facts come from the base policy".into());
    }
    Ok(Imported { toml: rendered, policy, system: skey.clone(), notes, unchanged: false })
}

/// Whether two policies say the same (their text, and so their hashes, may differ).
pub fn same_content(a: &Policy, b: &Policy) -> bool {
    a.version == b.version
        && a.controller == b.controller
        && a.categories == b.categories
        && a.purposes == b.purposes
        && a.jurisdictions == b.jurisdictions
        && a.groups == b.groups
}

#[derive(Serialize)]
struct TomlPolicy {
    policy: TomlMeta,
    categories: BTreeMap<String, TomlCategory>,
    purposes: BTreeMap<String, TomlPurpose>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    groups: BTreeMap<String, Vec<String>>,
    jurisdictions: BTreeMap<String, TomlJurisdiction>,
}

#[derive(Serialize)]
struct TomlMeta {
    version: String,
    controller: String,
}

#[derive(Serialize)]
struct TomlCategory {
    description: String,
    sensitive: bool,
    #[serde(skip_serializing_if = "is_true")]
    personal: bool,
}

fn is_true(b: &bool) -> bool {
    *b
}

#[derive(Serialize)]
struct TomlPurpose {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<String>,
    categories: Vec<String>,
    gpc_withdraws: bool,
    notices: Vec<TomlNotice>,
}

#[derive(Serialize)]
struct TomlNotice {
    version: u32,
    effective: toml::value::Datetime,
    material: bool,
    language: String,
    text: String,
}

#[derive(Serialize)]
struct TomlJurisdiction {
    default: DefaultRule,
    min_age: u8,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    purposes: BTreeMap<String, DefaultRule>,
}

/// Consentry's own layout of a policy (what import writes when the manifest changed it).
fn render(doc: &TomlPolicy) -> String {
    let body = match toml::to_string_pretty(doc) {
        Ok(t) => t,
        // Every field is a string, number, boolean, date or table of them: serialising cannot fail.
        Err(e) => format!("# cannot render the policy: {e}\n"),
    };
    format!(
        "# Made by `consentry policy import --from fideslang`: review it, then check it with\n#   consentry policy check FILE\n\n{body}"
    )
}

/// Renders `policy` in Consentry's own layout (what import writes when a manifest changed it).
pub fn render_policy(policy: &Policy) -> String {
    let x = extras(policy);
    let doc = TomlPolicy {
        policy: TomlMeta { version: x.version, controller: x.controller },
        categories: x
            .categories
            .into_iter()
            .map(|(k, c)| {
                (k, TomlCategory { description: c.description, sensitive: c.sensitive, personal: c.personal })
            })
            .collect(),
        purposes: policy
            .purposes
            .iter()
            .map(|p| {
                let notices = p
                    .notices
                    .iter()
                    .filter_map(|n| {
                        rfc3339(n.effective).parse().ok().map(|effective| TomlNotice {
                            version: n.version,
                            effective,
                            material: n.material,
                            language: n.language.clone(),
                            text: n.text.clone(),
                        })
                    })
                    .collect();
                let purpose = TomlPurpose {
                    name: p.name.clone(),
                    summary: p.summary.clone(),
                    categories: p.categories.clone(),
                    gpc_withdraws: p.gpc_withdraws,
                    notices,
                };
                (p.key.clone(), purpose)
            })
            .collect(),
        groups: x.groups,
        jurisdictions: x
            .jurisdictions
            .into_iter()
            .map(|(k, j)| (k, TomlJurisdiction { default: j.default, min_age: j.min_age, purposes: j.purposes }))
            .collect(),
    };
    render(&doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DEFAULT_POLICY;
    use proptest::prelude::*;

    fn default_manifest() -> (Policy, Value) {
        let p = Policy::default_policy();
        let m = export(&p, DEFAULT_POLICY);
        (p, m)
    }

    fn import_value(m: &Value, base: &Policy) -> Result<Imported, FidesError> {
        import("m.json", &serde_json::to_string_pretty(m).unwrap(), None, base)
    }

    #[test]
    fn the_default_policy_round_trips_to_the_same_text_and_hash() {
        let (p, m) = default_manifest();
        let back = import_value(&m, &p).unwrap();
        assert!(back.unchanged);
        assert_eq!(back.toml, DEFAULT_POLICY);
        assert_eq!(back.policy.hash, p.hash);
        assert!(back.notes.is_empty(), "{:?}", back.notes);
    }

    #[test]
    fn without_the_exported_text_the_rendering_says_the_same() {
        let (p, mut m) = default_manifest();
        m["system"][0]["meta"][META_KEY]["policy_toml"] = Value::Null;
        let back = import_value(&m, &p).unwrap();
        assert!(!back.unchanged);
        assert!(same_content(&back.policy, &p));
        assert_ne!(back.policy.hash, p.hash, "the rendering drops the default policy's comments");
        // Rendering is stable: a rendered policy renders to itself.
        assert_eq!(render_policy(&back.policy), back.toml);
    }

    #[test]
    fn the_manifest_declares_what_fideslang_lacks() {
        let (_, m) = default_manifest();
        let uses: Vec<&str> =
            m["data_use"].as_array().unwrap().iter().map(|u| u["fides_key"].as_str().unwrap()).collect();
        assert!(is_default_use(TRAIN_AI_SYSTEM));
        assert!(!uses.contains(&TRAIN_AI_SYSTEM));
        assert!(uses.contains(&"train_ai_system.job_recommendations"));
        let cats: Vec<&str> =
            m["data_category"].as_array().unwrap().iter().map(|c| c["fides_key"].as_str().unwrap()).collect();
        // `user.professional` is the missing parent of the skills category; parents come first.
        let parent = cats.iter().position(|c| *c == "user.professional").unwrap();
        let child = cats.iter().position(|c| *c == "user.professional.skills").unwrap();
        assert!(parent < child);
        assert!(!cats.contains(&"user.name"), "default categories are not redeclared");
        let d = &m["system"][0]["privacy_declarations"][0];
        assert_eq!(d["data_subjects"], json!([DATA_SUBJECT]));
        assert_eq!(m["system"][0]["fides_key"], "example_professional_network_inc_ai_training");
    }

    #[test]
    fn a_fides_edit_arrives_and_drops_the_exported_text() {
        let (p, mut m) = default_manifest();
        let d = m["system"][0]["privacy_declarations"].as_array_mut().unwrap();
        let job = d.iter_mut().find(|d| d["data_use"] == "train_ai_system.job_recommendations").unwrap();
        job["data_categories"].as_array_mut().unwrap().push(json!("user.contact.address"));
        let back = import_value(&m, &p).unwrap();
        assert!(!back.unchanged);
        let id = back.policy.purpose_id("train_ai_system.job_recommendations").unwrap();
        assert!(back.policy.purpose(id).categories.contains(&"user.contact.address".to_string()));
        let c = back.policy.category("user.contact.address").unwrap();
        assert!(c.sensitive && c.personal, "a category new to Consentry is taken as sensitive");
        assert!(c.description.starts_with("Contact address"), "fideslang's description: {}", c.description);
        assert!(back.notes.iter().any(|n| n.contains("user.contact.address")));
    }

    #[test]
    fn problems_name_the_declaration_and_field() {
        let (p, mut m) = default_manifest();
        m["system"][0]["privacy_declarations"][1]["data_categories"][0] = json!("user.professional.skils");
        m["system"][0]["privacy_declarations"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "Ads", "data_use": "marketing.advertising", "data_categories": ["user.name"]}));
        let Err(FidesError::Manifest { problems, .. }) = import_value(&m, &p) else { panic!("accepted") };
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].path.starts_with("system[0].privacy_declarations[1]"), "{}", problems[0].path);
        assert!(problems[0].path.ends_with(".data_categories[0]"));
        assert_eq!(problems[0].hint.as_deref(), Some("did you mean `user.professional.skills`?"));
    }

    #[test]
    fn a_declaration_outside_ai_training_is_skipped_with_a_note() {
        let (p, mut m) = default_manifest();
        m["system"][0]["privacy_declarations"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "Ads", "data_use": "marketing.advertising", "data_categories": ["user.name"]}));
        let back = import_value(&m, &p).unwrap();
        assert!(back.unchanged, "nothing Consentry governs changed");
        assert!(back.notes.iter().any(|n| n.contains("marketing.advertising")));
    }

    #[test]
    fn without_stored_facts_the_base_supplies_them_or_the_error_says_how() {
        let (p, mut m) = default_manifest();
        m["system"][0]["meta"] = Value::Null;
        let back = import_value(&m, &p).unwrap();
        assert!(same_content(&back.policy, &p));
        // A purpose neither the manifest nor the base describes has no notice.
        m["system"][0]["privacy_declarations"][0]["data_use"] = json!("train_ai_system.new_feature");
        m["data_use"]
            .as_array_mut()
            .unwrap()
            .push(json!({"fides_key": "train_ai_system.new_feature", "parent_key": "train_ai_system"}));
        let Err(FidesError::Manifest { problems, .. }) = import_value(&m, &p) else { panic!("accepted") };
        assert!(problems[0].message.contains("has no notice"), "{problems:?}");
        assert!(problems[0].hint.as_deref().unwrap().contains("--base"));
    }

    #[test]
    fn yaml_and_broken_json_say_where_and_what_to_do() {
        let p = Policy::default_policy();
        let Err(e @ FidesError::Syntax { line: 1, yaml: true, .. }) =
            import("m.yml", "system:\n  - fides_key: x\n", None, &p)
        else {
            panic!("accepted")
        };
        assert!(e.to_string().contains("yq -o json"));
        let Err(FidesError::Syntax { line: 2, yaml: false, .. }) =
            import("m.json", "{\n  \"system\": [,]\n}", None, &p)
        else {
            panic!("accepted")
        };
    }

    fn policy_text(cats: &[bool], purposes: &[(Vec<usize>, bool, bool)], gb_opt_out: bool) -> String {
        const CATS: [&str; 4] = ["user.name", "user.professional.skills", "user.content.private", "system.catalog"];
        let mut t = String::from("[policy]\nversion = \"1\"\ncontroller = \"A, B & C\"\n");
        for (i, c) in CATS.iter().enumerate() {
            let extra = if *c == "system.catalog" { "personal = false\n" } else { "" };
            t += &format!(
                "[categories.\"{c}\"]\ndescription = \"d{i} \\\"q\\\"\"\nsensitive = {}\n{extra}",
                (cats[i] || *c == "user.content.private") && *c != "system.catalog"
            );
        }
        for (i, (use_cats, gpc, summary)) in purposes.iter().enumerate() {
            let list: Vec<String> = use_cats.iter().map(|c| format!("\"{}\"", CATS[*c])).collect();
            t += &format!(
                "[purposes.\"train_ai_system.f{i}\"]\nname = \"F {i}\"\ncategories = [{}]\ngpc_withdraws = {gpc}\n",
                list.join(", ")
            );
            if *summary {
                t += "summary = \"Does things.\"\n";
            }
            t += &format!(
                "[[purposes.\"train_ai_system.f{i}\".notices]]\nversion = 1\neffective = 2026-01-15T00:00:00Z\nmaterial = true\ntext = \"\"\"\nLine one\nline two.\"\"\"\n"
            );
        }
        t += "[groups]\nNORDIC = [\"SE\", \"NO\"]\n[jurisdictions.default]\ndefault = \"opt_in\"\nmin_age = 18\n[jurisdictions.NORDIC]\ndefault = \"prohibited\"\nmin_age = 20\n";
        if gb_opt_out {
            t += "[jurisdictions.GB]\ndefault = \"opt_in\"\n[jurisdictions.GB.purposes]\n\"train_ai_system.f0\" = \"opt_out\"\n";
        }
        t
    }

    /// Every JSON pointer into `v`.
    fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => m
                .iter()
                .for_each(|(k, v)| pointers(v, format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out)),
            Value::Array(a) => a.iter().enumerate().for_each(|(i, v)| pointers(v, format!("{at}/{i}"), out)),
            _ => {}
        }
        out.push(at);
    }

    fn any_json() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[a-z_.]{0,12}".prop_map(Value::from),
            Just(json!("train_ai_system")),
            Just(json!("user.content.private")),
            Just(json!([])),
            Just(json!({})),
            Just(json!(["user.name", 3])),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// A manifest with any one value replaced (a careless edit in Fides) is imported or refused, never a panic;
        /// what is accepted passes the policy check and says what the text written says.
        #[test]
        fn careless_edits_never_panic(pick in any::<prop::sample::Index>(), value in any_json()) {
            let (p, mut m) = default_manifest();
            let mut all = Vec::new();
            pointers(&m, String::new(), &mut all);
            let at = pick.get(&all).clone();
            match m.pointer_mut(&at) {
                Some(slot) => *slot = value,
                None => return Ok(()),
            }
            if let Ok(back) = import_value(&m, &p) {
                let again = Policy::from_toml("again.toml", &back.toml).unwrap();
                prop_assert!(same_content(&again, &back.policy), "{}", at);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Any small valid policy survives export and import, with and without the exported text.
        #[test]
        fn small_policies_round_trip(
            cats in proptest::collection::vec(any::<bool>(), 4),
            purposes in proptest::collection::vec((proptest::collection::vec(0usize..4, 1..4), any::<bool>(), any::<bool>()), 1..4),
            gb_opt_out in any::<bool>(),
        ) {
            let text = policy_text(&cats, &purposes, gb_opt_out);
            let p = Policy::from_toml("gen.toml", &text);
            if !gb_opt_out { prop_assert!(p.is_ok(), "{}\n{:?}", text, p.as_ref().err()); }
            let Ok(p) = p else {
                // Only an opt-out over a sensitive category is invalid here.
                prop_assert!(gb_opt_out);
                return Ok(());
            };
            let mut m = export(&p, &text);
            let back = import_value(&m, &p).unwrap();
            prop_assert!(back.unchanged);
            prop_assert_eq!(&back.policy.hash, &p.hash);
            m["system"][0]["meta"][META_KEY]["policy_toml"] = Value::Null;
            let back = import_value(&m, &Policy::default_policy()).unwrap();
            prop_assert!(same_content(&back.policy, &p));
        }
    }
}
