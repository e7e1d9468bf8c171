//! The mapping file of `ledger import --from csv|json|fides --mapping MAP.toml`: which source column (CSV header) or
//! field (JSON key) holds each event field, how the platform's values translate to Consentry's, and how times are
//! written. Parsed strictly (unknown keys are errors with the TOML's line and column), checked against the policy in
//! force (every purpose a table names must be declared), then compiled into [`Compiled`], what the reader applies to
//! each row.
//!
//! A complete mapping for a CSV or JSON file:
//!
//! ```toml
//! [columns]                        # event field = source column (CSV header) or key (JSON)
//! member_id = "user_id"            # required: the platform's numeric member id
//! purpose = "consent_type"         # required
//! action = "status"                # required
//! event_time = "updated_at"        # required
//! notice_version = "notice"        # optional: default the purpose's notice in force at the event time
//! source = "channel"               # optional: default `import`
//! actor = "changed_by"             # optional: default `import`
//! jurisdiction = "country"         # optional member facts, both or neither: a row that carries them records
//! birth_date = "dob"               #   the member's facts (ISO 3166 code; date as [time] birth_date_format says)
//!
//! [time]
//! format = "%Y-%m-%d %H:%M:%S"     # rfc3339 (default) | iso8601 | unix_seconds | unix_millis | a strftime pattern
//!                                  #   (read as UTC unless the pattern has %z)
//! birth_date_format = "%Y-%m-%d"   # the default
//!
//! [values.action]                  # platform value = grant | withdraw | skip (the row is skipped and counted)
//! opted_in = "grant"
//! opted_out = "withdraw"
//!
//! [values.purpose]                 # platform value = a purpose the policy declares | skip
//! jobs_ai = "train_ai_system.job_recommendations"
//! newsletter = "skip"
//!
//! [values.source]                  # platform value = ui | api | gpc | import | erasure | skip
//! web = "ui"
//! ```
//!
//! A value not in its table is taken as Consentry's own name (`grant`, a purpose key, `ui`); anything else is an
//! error naming the row. For `--from fides` the columns are Fides' own (see [`super::fides`]); the mapping holds
//! only:
//!
//! ```toml
//! [fides]
//! member_id_field = "external_id"              # the identity field holding the numeric member id (the default)
//! notice_field = "privacy_notice_history_id"   # the default
//!
//! [fides.notices]                              # notice history id = purpose and (optionally) notice version
//! "pri_notice-history-jobs-1" = { purpose = "train_ai_system.job_recommendations", notice_version = 1 }
//! "pri_notice-history-feed-1" = { purpose = "train_ai_system.content_suggestions" }
//! "pri_notice-history-marketing-1" = { skip = true }
//! ```

use consentry_policy::{Action, Policy, Source};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use toml::Spanned;

/// An event field a source column can hold: the names the mapping's `[columns]` table uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// The platform's numeric member id.
    MemberId,
    /// The purpose key.
    Purpose,
    /// Grant or withdraw.
    Action,
    /// When the member acted.
    EventTime,
    /// The notice version shown.
    NoticeVersion,
    /// Where the event came from.
    Source,
    /// Who recorded it.
    Actor,
    /// The member's jurisdiction (a member fact).
    Jurisdiction,
    /// The member's birth date (a member fact).
    BirthDate,
}

impl Field {
    /// The name in the mapping file and in error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::MemberId => "member_id",
            Field::Purpose => "purpose",
            Field::Action => "action",
            Field::EventTime => "event_time",
            Field::NoticeVersion => "notice_version",
            Field::Source => "source",
            Field::Actor => "actor",
            Field::Jurisdiction => "jurisdiction",
            Field::BirthDate => "birth_date",
        }
    }
}

/// The source format `--from` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CSV with a header row.
    Csv,
    /// JSON Lines or one JSON array of objects.
    Json,
    /// A Fides consent-reporting export (CSV or JSON).
    Fides,
}

impl Format {
    /// Parses `csv`, `json` or `fides`.
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            "fides" => Some(Format::Fides),
            _ => None,
        }
    }
}

/// How event times are written in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeFormat {
    /// RFC 3339 (`2026-03-01T09:30:00Z`, any offset, fractional seconds dropped).
    Rfc3339,
    /// ISO 8601 as Python writes it: RFC 3339, or a space for the `T`, or no offset (UTC).
    Iso8601,
    /// Unix seconds.
    UnixSeconds,
    /// Unix milliseconds (truncated to seconds).
    UnixMillis,
    /// A chrono strftime pattern; UTC unless it has `%z`.
    Pattern(String),
}

impl TimeFormat {
    fn parse(s: &str) -> Result<TimeFormat, String> {
        Ok(match s {
            "rfc3339" => TimeFormat::Rfc3339,
            "iso8601" => TimeFormat::Iso8601,
            "unix_seconds" => TimeFormat::UnixSeconds,
            "unix_millis" => TimeFormat::UnixMillis,
            p if p.contains('%') => {
                check_pattern(p)?;
                TimeFormat::Pattern(p.to_string())
            }
            other => {
                return Err(format!(
                    "`{other}` is not a time format: use rfc3339, iso8601, unix_seconds, unix_millis or a strftime \
                     pattern such as \"%Y-%m-%d %H:%M:%S\""
                ));
            }
        })
    }

    /// Unix seconds of `s`, or what to write instead.
    pub fn read(&self, s: &str) -> Result<i64, String> {
        let s = s.trim();
        let parsed = match self {
            TimeFormat::Rfc3339 => chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp()),
            TimeFormat::Iso8601 => iso8601(s),
            TimeFormat::UnixSeconds => s.parse::<i64>().ok(),
            TimeFormat::UnixMillis => s.parse::<i64>().ok().map(|ms| ms.div_euclid(1000)),
            TimeFormat::Pattern(p) => pattern_time(s, p),
        };
        parsed.ok_or_else(|| format!("`{s}` is not a time in the format {}", self.describe()))
    }

    fn describe(&self) -> String {
        match self {
            TimeFormat::Rfc3339 => "rfc3339 (2026-03-01T09:30:00Z)".into(),
            TimeFormat::Iso8601 => "iso8601 (2026-03-01T09:30:00.123456+00:00)".into(),
            TimeFormat::UnixSeconds => "unix_seconds".into(),
            TimeFormat::UnixMillis => "unix_millis".into(),
            TimeFormat::Pattern(p) => format!("\"{p}\""),
        }
    }
}

/// A strftime pattern chrono understands, or why not.
fn check_pattern(p: &str) -> Result<(), String> {
    use chrono::format::{Item, StrftimeItems};
    if StrftimeItems::new(p).any(|i| matches!(i, Item::Error)) {
        return Err(format!("`{p}` is not a valid strftime pattern (see chrono's format::strftime)"));
    }
    Ok(())
}

fn pattern_time(s: &str, p: &str) -> Option<i64> {
    if p.contains("%z") || p.contains("%:z") || p.contains("%#z") {
        return chrono::DateTime::parse_from_str(s, p).ok().map(|t| t.timestamp());
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, p) {
        return Some(t.and_utc().timestamp());
    }
    chrono::NaiveDate::parse_from_str(s, p).ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc().timestamp())
}

/// ISO 8601 as Fides (Python's `datetime.isoformat`, or `str` of one) writes it.
pub(crate) fn iso8601(s: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp());
    }
    // `2026-03-01 09:30:00+00:00`: a space instead of the T.
    let t_form: String = if s.len() > 10 && s.as_bytes()[10] == b' ' && s.is_char_boundary(10) {
        format!("{}T{}", &s[..10], &s[11..])
    } else {
        s.to_string()
    };
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&t_form) {
        return Some(t.timestamp());
    }
    for p in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%.f%:z"] {
        if let Ok(t) = chrono::DateTime::parse_from_str(&t_form, p) {
            return Some(t.timestamp());
        }
    }
    chrono::NaiveDateTime::parse_from_str(&t_form, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|t| t.and_utc().timestamp())
}

/// A problem in the mapping file, at a line and column of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingError {
    /// 1-based line in the mapping file.
    pub line: usize,
    /// 1-based column (characters).
    pub column: usize,
    /// What is wrong and what to write instead.
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMapping {
    columns: Option<Spanned<RawColumns>>,
    time: Option<RawTime>,
    values: Option<RawValues>,
    fides: Option<Spanned<RawFides>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumns {
    member_id: Spanned<String>,
    purpose: Spanned<String>,
    action: Spanned<String>,
    event_time: Spanned<String>,
    notice_version: Option<Spanned<String>>,
    source: Option<Spanned<String>>,
    actor: Option<Spanned<String>>,
    jurisdiction: Option<Spanned<String>>,
    birth_date: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTime {
    format: Option<Spanned<String>>,
    birth_date_format: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawValues {
    #[serde(default)]
    action: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    purpose: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    source: BTreeMap<String, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFides {
    member_id_field: Option<Spanned<String>>,
    notice_field: Option<Spanned<String>>,
    #[serde(default)]
    notices: BTreeMap<String, Spanned<RawNotice>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotice {
    purpose: Option<String>,
    notice_version: Option<u32>,
    #[serde(default)]
    skip: bool,
}

/// What a value table turns a platform's value into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target<T> {
    /// This value.
    To(T),
    /// Skip the row, counted under this reason.
    Skip(String),
}

/// Where a row's purpose (and maybe notice version) comes from.
#[derive(Debug, Clone)]
pub enum PurposeRule {
    /// A column holding the purpose, through a value table.
    Column(usize, HashMap<String, Target<String>>),
    /// A column holding a notice id (Fides' `privacy_notice_history_id`), through the notice table.
    Notice(usize, HashMap<String, Target<(String, Option<u32>)>>),
}

/// One column the reader must find: its name and the event field it feeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The source column (CSV header) or key (JSON).
    pub name: String,
    /// The event field it maps to.
    pub field: Field,
    /// Whether a row must have a value for it.
    pub required: bool,
}

/// A mapping ready to apply: the columns to read (indices below point into `columns`) and the rules.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// Every source column the mapping reads, each once.
    pub columns: Vec<Column>,
    /// The member id column.
    pub member: usize,
    /// Where the purpose comes from.
    pub purpose: PurposeRule,
    /// The action column and its table.
    pub action: (usize, HashMap<String, Target<Action>>),
    /// The event time column and its format.
    pub time: (usize, TimeFormat),
    /// The notice version column, if any.
    pub notice_version: Option<usize>,
    /// The source column and its table, if any; `source_fallback` is what a value outside the table becomes
    /// (Fides: `import`), none when it is an error.
    pub source: Option<(usize, HashMap<String, Target<Source>>)>,
    /// What a value outside the source table becomes, when not an error.
    pub source_fallback: Option<Source>,
    /// The actor column, if any.
    pub actor: Option<usize>,
    /// The actor of rows without an actor column.
    pub default_actor: String,
    /// Jurisdiction and birth-date columns, if the file carries member facts.
    pub facts: Option<(usize, usize)>,
    /// How birth dates are written.
    pub birth_date_format: String,
    /// A row with no member id is skipped under this reason (Fides: anonymous visitors) instead of refused.
    pub skip_without_member: Option<String>,
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

struct Errors<'a> {
    text: &'a str,
    out: Vec<MappingError>,
}

impl Errors<'_> {
    fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, column) = line_col(self.text, span.start);
        self.out.push(MappingError { line, column, message: message.into() });
    }
}

/// Parses and checks a mapping for `format` against `policy`; every problem is reported, each at its place.
pub fn compile(text: &str, format: Format, policy: &Policy) -> Result<Compiled, Vec<MappingError>> {
    let raw: RawMapping = toml::from_str(text).map_err(|e| {
        let (line, column) = line_col(text, e.span().map_or(0, |s| s.start));
        let mut message = e.message().trim().to_string();
        if message.contains("duplicate key") {
            message.push_str(": each event field is mapped to one column, each value translated once");
        }
        vec![MappingError { line, column, message }]
    })?;
    let mut errs = Errors { text, out: Vec::new() };
    let compiled = match format {
        Format::Fides => compile_fides(raw, policy, &mut errs),
        Format::Csv | Format::Json => compile_columns(raw, policy, &mut errs),
    };
    match compiled {
        Some(c) if errs.out.is_empty() => Ok(c),
        _ => Err(errs.out),
    }
}

struct ColumnSet {
    columns: Vec<Column>,
    spans: Vec<Range<usize>>,
}

impl ColumnSet {
    /// Adds `name` for `field`; a column already feeding another field is refused (each field its own column).
    fn add(&mut self, name: &Spanned<String>, field: Field, required: bool, errs: &mut Errors<'_>) -> usize {
        if name.get_ref().trim().is_empty() {
            errs.at(name.span(), format!("the column for `{}` is empty; name the source column", field.as_str()));
        }
        if let Some(i) = self.columns.iter().position(|c| &c.name == name.get_ref()) {
            let other = self.columns[i].field.as_str();
            let (line, _) = line_col(errs.text, self.spans[i].start);
            errs.at(
                name.span(),
                format!(
                    "column `{}` is mapped to both `{other}` (line {line}) and `{}`; each event field needs its own \
                     column",
                    name.get_ref(),
                    field.as_str()
                ),
            );
            return i;
        }
        self.columns.push(Column { name: name.get_ref().clone(), field, required });
        self.spans.push(name.span());
        self.columns.len() - 1
    }
}

fn compile_time(raw: &Option<RawTime>, errs: &mut Errors<'_>) -> (TimeFormat, String) {
    let mut format = TimeFormat::Rfc3339;
    let mut birth = "%Y-%m-%d".to_string();
    if let Some(t) = raw {
        if let Some(f) = &t.format {
            match TimeFormat::parse(f.get_ref()) {
                Ok(tf) => format = tf,
                Err(m) => errs.at(f.span(), m),
            }
        }
        if let Some(b) = &t.birth_date_format {
            match check_pattern(b.get_ref()) {
                Ok(()) if b.get_ref().contains('%') => birth = b.get_ref().clone(),
                Ok(()) => errs.at(b.span(), "birth_date_format is a strftime pattern such as \"%Y-%m-%d\""),
                Err(m) => errs.at(b.span(), m),
            }
        }
    }
    (format, birth)
}

fn skip_reason(field: Field, value: &str) -> String {
    format!("{} `{value}` mapped to skip", field.as_str())
}

fn compile_columns(raw: RawMapping, policy: &Policy, errs: &mut Errors<'_>) -> Option<Compiled> {
    if let Some(f) = &raw.fides {
        errs.at(f.span(), "a [fides] section belongs to `--from fides`; for CSV or JSON map columns under [columns]");
    }
    let Some(cols) = raw.columns else {
        errs.at(
            0..0,
            "the mapping has no [columns] table: name the source column of member_id, purpose, action and event_time",
        );
        return None;
    };
    let cols_span = cols.span();
    let cols = cols.into_inner();
    let mut set = ColumnSet { columns: Vec::new(), spans: Vec::new() };
    let member = set.add(&cols.member_id, Field::MemberId, true, errs);
    let purpose = set.add(&cols.purpose, Field::Purpose, true, errs);
    let action = set.add(&cols.action, Field::Action, true, errs);
    let time_col = set.add(&cols.event_time, Field::EventTime, true, errs);
    let notice_version = cols.notice_version.as_ref().map(|c| set.add(c, Field::NoticeVersion, false, errs));
    let source = cols.source.as_ref().map(|c| set.add(c, Field::Source, false, errs));
    let actor = cols.actor.as_ref().map(|c| set.add(c, Field::Actor, false, errs));
    let facts = match (&cols.jurisdiction, &cols.birth_date) {
        (Some(j), Some(b)) => {
            Some((set.add(j, Field::Jurisdiction, false, errs), set.add(b, Field::BirthDate, false, errs)))
        }
        (None, None) => None,
        _ => {
            errs.at(cols_span.clone(), "member facts need both `jurisdiction` and `birth_date` columns (or neither)");
            None
        }
    };
    let (time, birth_date_format) = compile_time(&raw.time, errs);
    let values = raw.values.unwrap_or_default();
    let mut actions = HashMap::new();
    for (k, v) in &values.action {
        match v.get_ref().as_str() {
            "skip" => actions.insert(k.clone(), Target::Skip(skip_reason(Field::Action, k))),
            other => match Action::parse(other) {
                Some(a) => actions.insert(k.clone(), Target::To(a)),
                None => {
                    errs.at(v.span(), format!("`{other}` is not an action: use grant, withdraw or skip"));
                    None
                }
            },
        };
    }
    let mut purposes = HashMap::new();
    for (k, v) in &values.purpose {
        match v.get_ref().as_str() {
            "skip" => {
                purposes.insert(k.clone(), Target::Skip(skip_reason(Field::Purpose, k)));
            }
            p if policy.purpose_id(p).is_some() => {
                purposes.insert(k.clone(), Target::To(p.to_string()));
            }
            p => errs.at(v.span(), unknown_purpose(p, policy)),
        }
    }
    let mut sources = HashMap::new();
    for (k, v) in &values.source {
        match v.get_ref().as_str() {
            "skip" => {
                sources.insert(k.clone(), Target::Skip(skip_reason(Field::Source, k)));
            }
            s => match Source::parse(s) {
                Some(src) => {
                    sources.insert(k.clone(), Target::To(src));
                }
                None => errs.at(v.span(), format!("`{s}` is not a source: use ui, api, gpc, import, erasure or skip")),
            },
        }
    }
    if !values.source.is_empty() && source.is_none() {
        errs.at(cols_span, "[values.source] translates a column [columns] does not name: add `source = \"COLUMN\"`");
    }
    Some(Compiled {
        columns: set.columns,
        member,
        purpose: PurposeRule::Column(purpose, purposes),
        action: (action, actions),
        time: (time_col, time),
        notice_version,
        source: source.map(|s| (s, sources)),
        source_fallback: None,
        actor,
        default_actor: "import".into(),
        facts,
        birth_date_format,
        skip_without_member: None,
    })
}

fn unknown_purpose(p: &str, policy: &Policy) -> String {
    let known: Vec<&str> = policy.purposes.iter().map(|p| p.key.as_str()).collect();
    format!("`{p}` is not a purpose of the policy in force; use one of {} or skip", known.join(", "))
}

fn compile_fides(raw: RawMapping, policy: &Policy, errs: &mut Errors<'_>) -> Option<Compiled> {
    if let Some(c) = &raw.columns {
        errs.at(
            c.span(),
            "`--from fides` reads Fides' own columns: remove [columns] and map notices under [fides.notices]",
        );
    }
    if raw.values.is_some() {
        errs.at(0..0, "`--from fides` translates Fides' values itself: remove [values.*]");
    }
    if raw.time.is_some() {
        errs.at(0..0, "`--from fides` reads request_timestamp as ISO 8601: remove [time]");
    }
    let Some(fides) = raw.fides else {
        errs.at(0..0, "the mapping has no [fides] section: map each privacy_notice_history_id under [fides.notices]");
        return None;
    };
    let fides_span = fides.span();
    let fides = fides.into_inner();
    let spanned = |s: &Option<Spanned<String>>, default: &str| {
        s.clone().unwrap_or_else(|| Spanned::new(fides_span.clone(), default.to_string()))
    };
    let mut set = ColumnSet { columns: Vec::new(), spans: Vec::new() };
    let member = set.add(&spanned(&fides.member_id_field, "external_id"), Field::MemberId, false, errs);
    let notice = set.add(&spanned(&fides.notice_field, "privacy_notice_history_id"), Field::Purpose, true, errs);
    let action = set.add(&Spanned::new(fides_span.clone(), "preference".into()), Field::Action, true, errs);
    let time = set.add(&Spanned::new(fides_span.clone(), "request_timestamp".into()), Field::EventTime, true, errs);
    let source = set.add(&Spanned::new(fides_span.clone(), "method".into()), Field::Source, false, errs);
    if fides.notices.is_empty() {
        errs.at(fides_span.clone(), "[fides.notices] is empty: map each privacy_notice_history_id to a purpose");
    }
    let mut notices = HashMap::new();
    for (k, v) in &fides.notices {
        let n = v.get_ref();
        match (&n.purpose, n.skip) {
            (None, true) if n.notice_version.is_none() => {
                notices.insert(k.clone(), Target::Skip(format!("notice `{k}` mapped to skip")));
            }
            (Some(p), false) => {
                let Some(pid) = policy.purpose_id(p) else {
                    errs.at(v.span(), unknown_purpose(p, policy));
                    continue;
                };
                if let Some(ver) = n.notice_version
                    && policy.purpose(pid).notice_lapses_at(ver).is_none()
                {
                    let have: Vec<String> =
                        policy.purpose(pid).notices.iter().map(|n| n.version.to_string()).collect();
                    errs.at(v.span(), format!("purpose `{p}` has no notice version {ver}; it has {}", have.join(", ")));
                    continue;
                }
                notices.insert(k.clone(), Target::To((p.clone(), n.notice_version)));
            }
            _ => errs.at(
                v.span(),
                format!("notice `{k}`: write {{ purpose = \"…\", notice_version = N }} (version optional) or {{ skip = true }}"),
            ),
        }
    }
    let actions = HashMap::from([
        ("opt_in".to_string(), Target::To(Action::Grant)),
        ("opt_out".to_string(), Target::To(Action::Withdraw)),
        ("acknowledge".to_string(), Target::Skip("preference acknowledge: a notice acknowledged, not consent".into())),
        (
            "tcf".to_string(),
            Target::Skip("preference tcf: IAB TCF advertising consent, not consent to training".into()),
        ),
    ]);
    let sources = HashMap::from([("gpc".to_string(), Target::To(Source::Gpc))]);
    let member_field = set.columns[member].name.clone();
    Some(Compiled {
        columns: set.columns,
        member,
        purpose: PurposeRule::Notice(notice, notices),
        action: (action, actions),
        time: (time, TimeFormat::Iso8601),
        notice_version: None,
        source: Some((source, sources)),
        source_fallback: Some(Source::Import),
        actor: None,
        default_actor: "fides".into(),
        facts: None,
        birth_date_format: "%Y-%m-%d".into(),
        skip_without_member: Some(format!("no {member_field}: a visitor the platform has no member id for")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy::default_policy()
    }

    const FULL: &str = r#"
[columns]
member_id = "user_id"
purpose = "consent_type"
action = "status"
event_time = "updated_at"
source = "channel"
jurisdiction = "country"
birth_date = "dob"

[time]
format = "%Y-%m-%d %H:%M:%S"

[values.action]
opted_in = "grant"
opted_out = "withdraw"
pending = "skip"

[values.purpose]
jobs_ai = "train_ai_system.job_recommendations"

[values.source]
web = "ui"
"#;

    #[test]
    fn a_complete_mapping_compiles() {
        let c = compile(FULL, Format::Csv, &policy()).unwrap();
        let names: Vec<&str> = c.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["user_id", "consent_type", "status", "updated_at", "channel", "country", "dob"]);
        assert_eq!(c.action.1.get("pending"), Some(&Target::Skip("action `pending` mapped to skip".into())));
        assert_eq!(c.time.1, TimeFormat::Pattern("%Y-%m-%d %H:%M:%S".into()));
        assert_eq!(c.time.1.read("2026-03-01 09:30:00"), Ok(1_772_357_400));
        assert!(c.facts.is_some());
    }

    fn first_error(text: &str, format: Format) -> MappingError {
        compile(text, format, &policy()).err().unwrap().remove(0)
    }

    #[test]
    fn unknown_keys_are_errors_at_their_line_and_column() {
        let e = first_error(&FULL.replace("source = \"channel\"", "sauce = \"channel\""), Format::Csv);
        assert_eq!((e.line, e.column), (7, 1), "{e:?}");
        assert!(e.message.contains("sauce"), "{e:?}");
        let e = first_error(&format!("{FULL}\n[extra]\nx = 1\n"), Format::Csv);
        assert!(e.message.contains("extra"), "{e:?}");
    }

    #[test]
    fn two_columns_for_one_field_or_one_column_for_two_fields_are_refused() {
        let e = first_error(&FULL.replace("source = \"channel\"", "member_id = \"other\""), Format::Csv);
        assert_eq!(e.line, 7, "{e:?}");
        assert!(e.message.contains("duplicate key") && e.message.contains("one column"), "{e:?}");
        let e = first_error(&FULL.replace("source = \"channel\"", "actor = \"user_id\""), Format::Csv);
        assert_eq!(e.line, 7, "{e:?}");
        assert!(e.message.contains("mapped to both `member_id`"), "{e:?}");
    }

    #[test]
    fn targets_are_checked_against_the_policy_and_the_vocabulary() {
        let e = first_error(
            &FULL.replace("\"train_ai_system.job_recommendations\"", "\"train_ai_system.nope\""),
            Format::Csv,
        );
        assert_eq!((e.line, e.column), (20, 11), "{e:?}");
        assert!(e.message.contains("train_ai_system.nope") && e.message.contains("job_recommendations"), "{e:?}");
        let e = first_error(&FULL.replace("opted_in = \"grant\"", "opted_in = \"yes\""), Format::Csv);
        assert_eq!((e.line, e.column), (15, 12), "{e:?}");
        let e = first_error(&FULL.replace("web = \"ui\"", "web = \"browser\""), Format::Csv);
        assert!(e.message.contains("not a source"), "{e:?}");
        let e = first_error(&FULL.replace("%Y-%m-%d %H:%M:%S", "%Q"), Format::Csv);
        assert!(e.message.contains("strftime"), "{e:?}");
        let e = first_error(&FULL.replace("%Y-%m-%d %H:%M:%S", "epoch"), Format::Csv);
        assert!(e.message.contains("unix_seconds"), "{e:?}");
    }

    #[test]
    fn required_columns_and_fact_pairs() {
        let e = first_error(&FULL.replace("action = \"status\"\n", ""), Format::Csv);
        assert!(e.message.contains("action"), "{e:?}");
        let e = first_error(&FULL.replace("birth_date = \"dob\"\n", ""), Format::Csv);
        assert!(e.message.contains("both"), "{e:?}");
        let e = first_error("", Format::Csv);
        assert!(e.message.contains("[columns]"), "{e:?}");
    }

    #[test]
    fn fides_mappings() {
        let text = r#"
[fides]
member_id_field = "email"
[fides.notices]
"pri_1" = { purpose = "train_ai_system.job_recommendations", notice_version = 1 }
"pri_2" = { purpose = "train_ai_system.content_suggestions" }
"pri_3" = { skip = true }
"#;
        let c = compile(text, Format::Fides, &policy()).unwrap();
        assert_eq!(c.columns[c.member].name, "email");
        let PurposeRule::Notice(_, table) = &c.purpose else { panic!("a notice table") };
        assert_eq!(table.get("pri_2"), Some(&Target::To(("train_ai_system.content_suggestions".into(), None))));
        assert!(matches!(table.get("pri_3"), Some(Target::Skip(_))));
        let e = first_error(&text.replace("notice_version = 1", "notice_version = 7"), Format::Fides);
        assert_eq!(e.line, 5, "{e:?}");
        assert!(e.message.contains("no notice version 7"), "{e:?}");
        let e = first_error(&text.replace("{ skip = true }", "{ skip = true, purpose = \"x\" }"), Format::Fides);
        assert_eq!(e.line, 7, "{e:?}");
        let e = first_error(
            &format!("{text}\n[columns]\nmember_id = \"a\"\npurpose = \"b\"\naction = \"c\"\nevent_time = \"d\"\n"),
            Format::Fides,
        );
        assert!(e.message.contains("remove [columns]"), "{e:?}");
        let e = first_error(FULL, Format::Fides);
        assert!(e.message.contains("Fides"), "{e:?}");
    }

    #[test]
    fn time_formats() {
        assert_eq!(TimeFormat::Rfc3339.read("2026-03-01T09:30:00Z"), Ok(1_772_357_400));
        assert_eq!(TimeFormat::Iso8601.read("2026-03-01 09:30:00.123456+00:00"), Ok(1_772_357_400));
        assert_eq!(TimeFormat::Iso8601.read("2026-03-01T10:30:00.5+01:00"), Ok(1_772_357_400));
        assert_eq!(TimeFormat::Iso8601.read("2026-03-01T09:30:00"), Ok(1_772_357_400));
        assert_eq!(TimeFormat::UnixMillis.read("1772357400999"), Ok(1_772_357_400));
        assert_eq!(TimeFormat::UnixSeconds.read(" 1772357400 "), Ok(1_772_357_400));
        assert!(TimeFormat::Rfc3339.read("yesterday").unwrap_err().contains("rfc3339"));
        assert_eq!(TimeFormat::Pattern("%d/%m/%Y".into()).read("01/03/2026"), Ok(1_772_323_200));
    }
}
