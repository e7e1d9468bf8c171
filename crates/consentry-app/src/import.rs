//! `ledger import --from csv|json|fides`: the consent a platform already holds, in its own shape, loaded into the
//! ledger. A mapping file ([`mapping`]) says which column is which event field and translates the platform's values;
//! the file is read as a stream ([`read`]) and every row parsed, mapped and validated — the member facts it carries
//! and each event through `Ledger::validate_with` — before anything is written; the first [`MAX_PROBLEMS`] problems
//! are reported, each with its line and field, and nothing is written then. Idempotency keys come from each event's
//! content (`NewEvent::content_key("import")`), never its line, so importing a file again, or a re-export with its
//! rows reordered, appends nothing.
//!
//! Fides exports (`--from fides`) are read with a fixed preset: member id from `external_id` (or the identity field
//! `[fides] member_id_field` names), purpose and notice version from `privacy_notice_history_id` through
//! `[fides.notices]`, `preference` `opt_in` → grant, `opt_out` → withdraw, `acknowledge` and `tcf` rows skipped and
//! counted (not consent to training), `method = gpc` → source `gpc` (every other method `import`), time from
//! `request_timestamp` (ISO 8601), actor `fides`; rows without a member id (anonymous visitors) are skipped and
//! counted. The export is CSV (the admin UI's download), JSON Lines, a JSON array, or the reporting API's page
//! (`{"items": [...], "total": …}`), told apart by extension and first character.

pub mod mapping;
pub mod read;

use crate::error::{AppError, ErrorKind, Result};
use crate::progress::Progress;
use crate::session::Session;
use consentry_ledger::{LedgerError, MemberRecord, NewEvent};
use consentry_policy::{Action, Policy, Source};
use mapping::{Column, Compiled, Field, Format, PurposeRule, Target};
use read::{RawRow, ReadError, RowReader, Shape};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::Path;

/// At most this many problems are reported; reading stops there.
pub const MAX_PROBLEMS: usize = 20;

/// Events validated against the ledger at once.
const VALIDATE_CHUNK: usize = 4096;

/// One problem of one row: where (line, source column, event field) and what to do.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// 1-based physical line of the file (the CSV header is line 1); 0 for the file as a whole.
    pub line: u64,
    /// The source column (CSV header, JSON key), when one is at fault.
    pub column: Option<String>,
    /// The event field that column maps to.
    pub field: Option<Field>,
    /// What is wrong and what to do.
    pub message: String,
}

impl Problem {
    /// A problem of line `line`.
    pub fn new(line: u64, message: impl Into<String>) -> Problem {
        Problem { line, column: None, field: None, message: message.into() }
    }

    /// The same problem, naming `column` and its field.
    pub fn at(mut self, column: &Column) -> Problem {
        self.column = Some(column.name.clone());
        self.field = Some(column.field);
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "line {}: ", self.line)?;
        }
        match (&self.column, self.field) {
            (Some(c), Some(field)) => write!(f, "column `{c}` ({}): ", field.as_str())?,
            (None, Some(field)) => write!(f, "{}: ", field.as_str())?,
            _ => {}
        }
        f.write_str(&self.message)
    }
}

/// A file refused: every problem found (up to [`MAX_PROBLEMS`]); nothing was written.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportRejected {
    /// The file, as named.
    pub file: String,
    /// The problems, in file order.
    pub problems: Vec<Problem>,
    /// True when reading stopped at [`MAX_PROBLEMS`] (more may follow).
    pub truncated: bool,
}

impl fmt::Display for ImportRejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(f, "{}: {n} problem{}, nothing imported:", self.file, if n == 1 { "" } else { "s" })?;
        for p in &self.problems {
            write!(f, "\n  {}, {p}", self.file)?;
        }
        if self.truncated {
            write!(f, "\n  (stopped after {MAX_PROBLEMS} problems; fix these and check again with --dry-run)")?;
        }
        Ok(())
    }
}

impl std::error::Error for ImportRejected {}

/// What `ledger import --from …` is asked to do.
#[derive(Debug, Clone)]
pub struct FileImport<'a> {
    /// The file's format.
    pub format: Format,
    /// The mapping file (TOML).
    pub mapping: &'a Path,
    /// The file to import.
    pub file: &'a Path,
    /// Validate and count, write nothing.
    pub dry_run: bool,
    /// Events per transaction.
    pub batch: usize,
}

/// What an import of a platform's file did (or, with `dry_run`, would do).
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileImportReport {
    /// The file, as named.
    pub file: String,
    /// How it was read: csv, json_lines or json_array.
    pub shape: Shape,
    /// Nothing was written.
    pub dry_run: bool,
    /// Data rows read.
    pub rows: u64,
    /// Rows that are consent events.
    pub events: u64,
    /// Events appended (with `dry_run`: that would be).
    pub appended: u64,
    /// Events already in the ledger, or repeated in the file (same content key).
    pub already_present: u64,
    /// Rows skipped.
    pub skipped: u64,
    /// Skipped rows by reason.
    pub skipped_reasons: BTreeMap<String, u64>,
    /// Distinct members whose facts the file carries.
    pub members_in_file: u64,
    /// Member-facts entries appended (with `dry_run`: that would be): members new to the ledger or changed.
    pub member_facts_recorded: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// One mapped row.
enum Mapped {
    Skip(String),
    Row { event: NewEvent, facts: Option<MemberRecord> },
}

fn value(row: &RawRow, i: usize) -> Option<&str> {
    row.values.get(i).and_then(|v| v.as_deref())
}

/// Applies the mapping to one row.
fn map_row(c: &Compiled, policy: &Policy, row: &RawRow) -> std::result::Result<Mapped, Problem> {
    let col = |i: usize| &c.columns[i];
    let need = |i: usize| {
        value(row, i).ok_or_else(|| {
            Problem::new(row.line, "empty; every row needs a value here (or fix the mapping's column name)").at(col(i))
        })
    };
    let (ai, actions) = &c.action;
    let raw_action = need(*ai)?;
    let action = match actions.get(raw_action) {
        Some(Target::To(a)) => *a,
        Some(Target::Skip(reason)) => return Ok(Mapped::Skip(reason.clone())),
        None => Action::parse(raw_action).ok_or_else(|| {
            Problem::new(
                row.line,
                format!(
                    "`{raw_action}` is not an action: add it to the mapping's [values.action] (grant, withdraw or skip)"
                ),
            )
            .at(col(*ai))
        })?,
    };
    let Some(raw_member) = value(row, c.member) else {
        if let Some(reason) = &c.skip_without_member {
            return Ok(Mapped::Skip(reason.clone()));
        }
        return Err(need(c.member).err().unwrap_or_else(|| Problem::new(row.line, "no member id")));
    };
    let member_id: u64 = raw_member.parse().map_err(|_| {
        Problem::new(row.line, format!("`{raw_member}` is not a member id: the platform's numeric member id"))
            .at(col(c.member))
    })?;
    let (purpose, fixed_version) = match &c.purpose {
        PurposeRule::Column(i, table) => {
            let raw = need(*i)?;
            match table.get(raw) {
                Some(Target::To(p)) => (p.clone(), None),
                Some(Target::Skip(reason)) => return Ok(Mapped::Skip(reason.clone())),
                None if policy.purpose_id(raw).is_some() => (raw.to_string(), None),
                None => {
                    let known: Vec<&str> = policy.purposes.iter().map(|p| p.key.as_str()).collect();
                    return Err(Problem::new(
                        row.line,
                        format!(
                            "unknown purpose `{raw}`: map it in [values.purpose] to one of {} (or skip)",
                            known.join(", ")
                        ),
                    )
                    .at(col(*i)));
                }
            }
        }
        PurposeRule::Notice(i, table) => {
            let raw = need(*i)?;
            match table.get(raw) {
                Some(Target::To((p, v))) => (p.clone(), *v),
                Some(Target::Skip(reason)) => return Ok(Mapped::Skip(reason.clone())),
                None => {
                    return Err(Problem::new(
                        row.line,
                        format!(
                            "notice `{raw}` is not in the mapping's [fides.notices]: map it to a purpose \
                             ({{ purpose = \"…\" }}) or {{ skip = true }}"
                        ),
                    )
                    .at(col(*i)));
                }
            }
        }
    };
    let (ti, tf) = &c.time;
    let event_time = tf.read(need(*ti)?).map_err(|m| Problem::new(row.line, m).at(col(*ti)))?;
    let purpose_column = match &c.purpose {
        PurposeRule::Column(i, _) | PurposeRule::Notice(i, _) => *i,
    };
    let Some(pid) = policy.purpose_id(&purpose) else {
        return Err(Problem::new(row.line, format!("unknown purpose `{purpose}`")).at(col(purpose_column)));
    };
    let notice_version = match (c.notice_version.and_then(|i| value(row, i).map(|v| (i, v))), fixed_version) {
        (Some((i, v)), _) => v.parse::<u32>().map_err(|_| {
            Problem::new(row.line, format!("`{v}` is not a notice version (a whole number such as 1)")).at(col(i))
        })?,
        (None, Some(v)) => v,
        (None, None) => match policy.purpose(pid).notice_at(event_time) {
            Some(n) => n.version,
            None => {
                let first = policy.purpose(pid).notices.first().map_or(0, |n| n.effective);
                return Err(Problem::new(
                    row.line,
                    format!(
                        "no notice of `{purpose}` was in force at {} (its first takes effect at {}); check the time \
                         (and [time] format) or map a notice_version column",
                        rfc3339(event_time),
                        rfc3339(first)
                    ),
                )
                .at(col(*ti)));
            }
        },
    };
    let source = match &c.source {
        Some((i, table)) => match value(row, *i) {
            None => Source::Import,
            Some(raw) => match table.get(raw) {
                Some(Target::To(s)) => *s,
                Some(Target::Skip(reason)) => return Ok(Mapped::Skip(reason.clone())),
                None => match (Source::parse(raw), c.source_fallback) {
                    (Some(s), _) => s,
                    (None, Some(fallback)) => fallback,
                    (None, None) => {
                        return Err(Problem::new(
                            row.line,
                            format!(
                                "`{raw}` is not a source: add it to [values.source] (ui, api, gpc, import, erasure or \
                                 skip)"
                            ),
                        )
                        .at(col(*i)));
                    }
                },
            },
        },
        None => Source::Import,
    };
    let actor = c.actor.and_then(|i| value(row, i)).unwrap_or(&c.default_actor).to_string();
    let facts = match c.facts {
        None => None,
        Some((ji, bi)) => match (value(row, ji), value(row, bi)) {
            (None, None) => None,
            (Some(j), Some(b)) => {
                let birth_date = chrono::NaiveDate::parse_from_str(b, &c.birth_date_format).map_err(|_| {
                    Problem::new(row.line, format!("`{b}` is not a date in the format \"{}\"", c.birth_date_format))
                        .at(col(bi))
                })?;
                Some(MemberRecord { member_id, jurisdiction: j.to_string(), birth_date })
            }
            (Some(_), None) => {
                return Err(
                    Problem::new(row.line, "a jurisdiction without a birth date; give both or neither").at(col(bi))
                );
            }
            (None, Some(_)) => {
                return Err(
                    Problem::new(row.line, "a birth date without a jurisdiction; give both or neither").at(col(ji))
                );
            }
        },
    };
    let mut event = NewEvent {
        member_id,
        purpose,
        action,
        notice_version,
        source,
        actor,
        event_time,
        idempotency_key: String::new(),
    };
    event.idempotency_key =
        event.content_key("import").map_err(|e| Problem::new(row.line, format!("cannot be recorded: {e}")))?;
    Ok(Mapped::Row { event, facts })
}

fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map_or_else(|| t.to_string(), |d| d.to_rfc3339())
}

/// The event field a ledger refusal is about, from its reason (the ledger says it in words).
fn field_of_reason(reason: &str) -> Option<Field> {
    if reason.contains("member directory") || reason.contains("member id") {
        Some(Field::MemberId)
    } else if reason.contains("unknown purpose") {
        Some(Field::Purpose)
    } else if reason.contains("only takes effect") || reason.contains("event time") {
        Some(Field::EventTime)
    } else if reason.contains("notice version") {
        Some(Field::NoticeVersion)
    } else if reason.contains("actor") {
        Some(Field::Actor)
    } else {
        None
    }
}

/// Problems found so far, capped.
struct Problems {
    list: Vec<Problem>,
    truncated: bool,
}

impl Problems {
    fn push(&mut self, p: Problem) {
        if self.list.len() < MAX_PROBLEMS {
            self.list.push(p);
        } else {
            self.truncated = true;
        }
    }
    fn full(&self) -> bool {
        self.list.len() >= MAX_PROBLEMS
    }
}

/// Counts of one pass over the file.
#[derive(Default)]
struct Counts {
    rows: u64,
    events: u64,
    skipped: BTreeMap<String, u64>,
}

/// What a pass does with each event: the event, the member facts its row carries, its line, the problems so far.
type EachEvent<'a> = dyn FnMut(NewEvent, Option<MemberRecord>, u64, &mut Problems) -> Result<()> + 'a;

/// Reads the whole file, mapping each row and handing events (with their line) to `each`; row problems are collected
/// (reading stops when they are [`MAX_PROBLEMS`]), a fatal one ends the pass. Returns the digest of the bytes read.
fn scan(
    path: &Path,
    format: Format,
    c: &Compiled,
    policy: &Policy,
    problems: &mut Problems,
    counts: &mut Counts,
    each: &mut EachEvent<'_>,
) -> Result<Option<(Shape, [u8; 32])>> {
    let mut reader = match RowReader::open(path, format, &c.columns) {
        Ok(r) => r,
        Err(ReadError::Row(p) | ReadError::Fatal(p)) => {
            problems.push(p);
            return Ok(None);
        }
    };
    while let Some(next) = reader.next_row() {
        if problems.full() {
            problems.truncated = true;
            break;
        }
        match next {
            Err(ReadError::Row(p)) => problems.push(p),
            Err(ReadError::Fatal(p)) => {
                problems.push(p);
                return Ok(None);
            }
            Ok(row) => match map_row(c, policy, &row) {
                Err(p) => problems.push(p),
                Ok(Mapped::Skip(reason)) => *counts.skipped.entry(reason).or_default() += 1,
                Ok(Mapped::Row { event, facts }) => {
                    counts.events += 1;
                    each(event, facts, row.line, problems)?;
                }
            },
        }
    }
    counts.rows = reader.rows();
    if counts.rows == 0 && problems.list.is_empty() {
        let what = if reader.shape() == Shape::Csv { "a header but no rows" } else { "no rows" };
        problems.push(Problem::new(1, format!("the file has {what}: nothing to import")));
    }
    Ok(Some((reader.shape(), reader.digest())))
}

/// What identifies a file's contents cheaply, to notice it changed between the validating and the writing pass.
fn identity(path: &Path) -> Option<(u64, Option<std::time::SystemTime>)> {
    std::fs::metadata(path).ok().map(|m| (m.len(), m.modified().ok()))
}

impl Session {
    /// Imports a platform's consent file through a mapping: validates every row first (nothing is written when any
    /// is refused: the error is an [`ImportRejected`] naming line and field of each problem), then records the
    /// member facts the file carries and appends the events; with `dry_run` only validates and counts.
    pub fn import_file(&self, req: &FileImport<'_>, progress: &dyn Progress) -> Result<FileImportReport> {
        let start = std::time::Instant::now();
        let ledger = self.ledger()?;
        let policy = ledger.policy();
        let map_name = req.mapping.display().to_string();
        let file_name = req.file.display().to_string();
        let text = std::fs::read_to_string(req.mapping)
            .map_err(|e| AppError::bad_input(format!("cannot read the mapping {map_name}: {e}")))?;
        let compiled = mapping::compile(&text, req.format, policy).map_err(|errs| {
            let lines: Vec<String> =
                errs.iter().map(|e| format!("  {map_name}:{}:{}: {}", e.line, e.column, e.message)).collect();
            AppError::bad_input(format!("the mapping {map_name} is not usable:\n{}", lines.join("\n")))
        })?;
        let rejected = |mut problems: Problems| {
            problems.list.sort_by_key(|p| p.line);
            AppError::flat(
                ErrorKind::BadInput,
                ImportRejected { file: file_name.clone(), problems: problems.list, truncated: problems.truncated },
            )
        };
        let now = consentry_ledger::now();
        let before = identity(req.file);
        let mut problems = Problems { list: Vec::new(), truncated: false };

        // Pass 1, when the file carries member facts: collect them all, so an event may come before its member's
        // facts. Row problems are pass 2's to report (it finds them again); conflicting facts are this pass's.
        let mut facts: HashMap<u64, (MemberRecord, u64)> = HashMap::new();
        let mut fact_problems: Vec<Problem> = Vec::new();
        if let Some((ji, _)) = compiled.facts {
            let jcol = compiled.columns[ji].clone();
            let mut counts = Counts::default();
            let mut rows = Problems { list: Vec::new(), truncated: false };
            scan(req.file, req.format, &compiled, policy, &mut rows, &mut counts, &mut |_, f, line, _| {
                if let Some(f) = f {
                    match facts.get(&f.member_id) {
                        Some((prev, prev_line)) if prev != &f => fact_problems.push(
                            Problem::new(
                                line,
                                format!(
                                    "member {}'s facts ({}, born {}) differ from line {prev_line}'s ({}, born {}); \
                                     one file holds one set of facts per member",
                                    f.member_id, f.jurisdiction, f.birth_date, prev.jurisdiction, prev.birth_date
                                ),
                            )
                            .at(&jcol),
                        ),
                        Some(_) => {}
                        None => {
                            facts.insert(f.member_id, (f, line));
                        }
                    }
                }
                Ok(())
            })?;
        }
        let mut records: Vec<(MemberRecord, u64)> = facts.into_values().collect();
        records.sort_by_key(|(r, _)| r.member_id);
        let (records, record_lines): (Vec<MemberRecord>, Vec<u64>) = records.into_iter().unzip();
        let mut from = 0;
        while from < records.len() {
            match ledger.validate_members(&records[from..], "import") {
                Ok(()) => break,
                Err(LedgerError::Rejected { index, reason }) => {
                    let mut p = Problem::new(record_lines.get(from + index).copied().unwrap_or(0), reason);
                    if let Some((ji, _)) = compiled.facts {
                        p = p.at(&compiled.columns[ji]);
                    }
                    fact_problems.push(p);
                    from += index + 1;
                }
                Err(other) => return Err(other.into()),
            }
        }

        // Pass 2: every event validated against the ledger (and the file's member facts), in chunks.
        let column_of = |field: Field| compiled.columns.iter().find(|c| c.field == field);
        let mut counts = Counts::default();
        let mut chunk: Vec<(NewEvent, u64)> = Vec::with_capacity(VALIDATE_CHUNK);
        let mut seen: HashSet<String> = HashSet::new();
        let (mut would_append, mut present) = (0u64, 0u64);
        let mut check = |chunk: &mut Vec<(NewEvent, u64)>, problems: &mut Problems| -> Result<()> {
            let (events, lines): (Vec<NewEvent>, Vec<u64>) = std::mem::take(chunk).into_iter().unzip();
            let mut from = 0;
            while from < events.len() && !problems.full() {
                match ledger.validate_with(&events[from..], now, &records) {
                    Ok(()) => break,
                    Err(LedgerError::Rejected { index, reason }) => {
                        let line = lines.get(from + index).copied().unwrap_or(0);
                        let mut p = Problem::new(line, reason.clone());
                        if let Some(field) = field_of_reason(&reason) {
                            p.field = Some(field);
                            p.column = column_of(field).map(|c| c.name.clone());
                        }
                        problems.push(p);
                        from += index + 1;
                    }
                    Err(other) => return Err(other.into()),
                }
            }
            if req.dry_run && problems.list.is_empty() {
                // What the append would find already there: each member's events, looked up once per chunk.
                let mut stored: HashSet<String> = HashSet::new();
                let members: HashSet<u64> = events.iter().map(|e| e.member_id).collect();
                for m in members {
                    for e in ledger.store().member_events(m, u64::MAX)? {
                        stored.insert(e.body.idempotency_key);
                    }
                }
                for e in events {
                    if stored.contains(&e.idempotency_key) || !seen.insert(e.idempotency_key) {
                        present += 1;
                    } else {
                        would_append += 1;
                    }
                }
            }
            Ok(())
        };
        let scanned =
            scan(req.file, req.format, &compiled, policy, &mut problems, &mut counts, &mut |e, _, line, problems| {
                chunk.push((e, line));
                if chunk.len() >= VALIDATE_CHUNK {
                    check(&mut chunk, problems)?;
                }
                Ok(())
            })?;
        if !chunk.is_empty() {
            check(&mut chunk, &mut problems)?;
        }
        if !fact_problems.is_empty() {
            let mut all = std::mem::take(&mut problems.list);
            all.extend(fact_problems);
            all.sort_by_key(|p| p.line);
            problems.truncated |= all.len() > MAX_PROBLEMS;
            all.truncate(MAX_PROBLEMS);
            problems.list = all;
        }
        let Some((shape, digest)) = scanned.filter(|_| problems.list.is_empty()) else {
            return Err(rejected(problems));
        };
        let skipped: u64 = counts.skipped.values().sum();
        let mut report = FileImportReport {
            file: file_name.clone(),
            shape,
            dry_run: req.dry_run,
            rows: counts.rows,
            events: counts.events,
            appended: 0,
            already_present: 0,
            skipped,
            skipped_reasons: counts.skipped,
            members_in_file: records.len() as u64,
            member_facts_recorded: 0,
            seconds: 0.0,
        };
        if req.dry_run {
            let mut changed = 0;
            for r in &records {
                if ledger.store().member(r.member_id)?.as_ref() != Some(r) {
                    changed += 1;
                }
            }
            report.appended = would_append;
            report.already_present = present;
            report.member_facts_recorded = changed;
            report.seconds = start.elapsed().as_secs_f64();
            return Ok(report);
        }

        // Pass 3: write. The file must be the one validated.
        let changed = || {
            AppError::new(
                ErrorKind::Conflict,
                format!(
                    "{file_name} changed while it was imported; what was appended so far was validated and stays \
                     (the import is idempotent): run it again on a file nobody is writing"
                ),
            )
        };
        if identity(req.file) != before {
            return Err(changed());
        }
        report.member_facts_recorded = ledger.record_members(&records, "import", now)?;
        progress.stage("ledger import", report.events);
        let batch = req.batch.max(1);
        let mut pending: Vec<NewEvent> = Vec::with_capacity(batch.min(VALIDATE_CHUNK * 16));
        let (mut appended, mut present) = (0u64, 0u64);
        let mut flush = |pending: &mut Vec<NewEvent>| -> Result<()> {
            if pending.is_empty() {
                return Ok(());
            }
            let n = pending.len() as u64;
            for a in ledger.append_at(std::mem::take(pending), now)? {
                if a.duplicate { present += 1 } else { appended += 1 }
            }
            progress.advance("ledger import", n);
            Ok(())
        };
        let mut again = Problems { list: Vec::new(), truncated: false };
        let mut counts = Counts::default();
        let written = scan(req.file, req.format, &compiled, policy, &mut again, &mut counts, &mut |e, _, _, _| {
            pending.push(e);
            if pending.len() >= batch {
                flush(&mut pending)?;
            }
            Ok(())
        })?;
        if !again.list.is_empty() || written.map(|(_, d)| d) != Some(digest) {
            return Err(changed());
        }
        flush(&mut pending)?;
        report.appended = appended;
        report.already_present = present;
        report.seconds = start.elapsed().as_secs_f64();
        Ok(report)
    }
}
