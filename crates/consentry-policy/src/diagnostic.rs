//! Policy diagnostics: every problem with file, line, column and a hint,
//! rendered the way `miette` renders compiler-style reports.

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceCode};
use serde::Serialize;
use std::fmt;
use std::ops::Range;

/// Whether a problem stops the policy from being used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The policy is rejected.
    Error,
    /// The policy is used, but probably not as its author meant.
    Warning,
}

/// Declares [`Code`] from one list, so [`Code::ALL`] cannot miss a code the parser can emit.
macro_rules! codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $code:literal,)*) => {
        /// Every diagnostic code the policy parser emits: the one list tests and tools enumerate (each has
        /// a case in `tests/invalid/`), so a new code cannot go untested.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Code {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Code {
            /// All codes, in declaration order.
            pub const ALL: &[Code] = &[$(Code::$variant,)*];

            /// The stable string in [`Diagnostic::code`], e.g. `policy::unknown-category`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $code,)*
                }
            }
        }
    };
}

codes! {
    /// The text is not TOML, or a key is unknown, repeated or of the wrong type.
    Syntax = "policy::syntax",
    /// The policy version is empty.
    Version = "policy::version",
    /// A category key is not a lowercase dotted key under `user.`, `account.` or `system.`.
    CategoryKey = "policy::category-key",
    /// Private messages are not marked sensitive.
    PrivateNotSensitive = "policy::private-not-sensitive",
    /// A sensitive category says `personal = false`.
    SensitiveNotPersonal = "policy::sensitive-not-personal",
    /// The member-id category says `personal = false`.
    MemberIdNotPersonal = "policy::member-id-not-personal",
    /// A purpose is not under `train_ai_system`.
    PurposeKey = "policy::purpose-key",
    /// A purpose lists no categories.
    NoCategories = "policy::no-categories",
    /// A purpose uses a category the policy does not declare.
    UnknownCategory = "policy::unknown-category",
    /// A purpose lists a category twice (a warning).
    DuplicateCategory = "policy::duplicate-category",
    /// The policy declares no purpose.
    NoPurposes = "policy::no-purposes",
    /// More purposes than a `PurposeId` can number.
    TooManyPurposes = "policy::too-many-purposes",
    /// A group name is not three or more capital letters.
    GroupKey = "policy::group-key",
    /// A group member is not an ISO 3166-1 alpha-2 country.
    GroupMember = "policy::group-member",
    /// Jurisdictions are given but no `default` rule (a warning).
    NoDefaultJurisdiction = "policy::no-default-jurisdiction",
    /// A jurisdiction is not a country, subdivision, group or `default`.
    JurisdictionKey = "policy::jurisdiction-key",
    /// A country is in two groups that both have rules.
    GroupOverlap = "policy::group-overlap",
    /// More jurisdiction rules than a `JurisdictionId` can number.
    TooManyJurisdictions = "policy::too-many-jurisdictions",
    /// A purpose has no notice.
    NoNotices = "policy::no-notices",
    /// A notice version is not a positive whole number.
    NoticeVersion = "policy::notice-version",
    /// A notice's `effective` is not a date or an offset date-time.
    NoticeEffective = "policy::notice-effective",
    /// Notice versions or effective times of a purpose go backwards.
    NoticeOrder = "policy::notice-order",
    /// A notice has no text.
    NoticeText = "policy::notice-text",
    /// A jurisdiction's minimum age is outside 18..=120.
    MinAge = "policy::min-age",
    /// A jurisdiction sets a default for an undeclared purpose.
    UnknownPurpose = "policy::unknown-purpose",
    /// A purpose using a sensitive category defaults to opt-out somewhere.
    SensitiveOptOut = "policy::sensitive-opt-out",
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem found in a policy file, located precisely enough to jump to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Stable machine-readable code, e.g. `policy::unknown-category` (one of [`Code::ALL`]).
    pub code: &'static str,
    /// What is wrong, in one sentence.
    pub message: String,
    /// Byte range in the policy text, when the problem has a place.
    pub span: Option<Range<usize>>,
    /// 1-based line of the span start (0 when there is no span).
    pub line: usize,
    /// 1-based column, in characters, of the span start (0 when there is no span).
    pub column: usize,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Diagnostic {
    pub(crate) fn new(
        severity: Severity,
        code: &'static str,
        text: &str,
        span: Option<Range<usize>>,
        message: String,
        hint: Option<String>,
    ) -> Diagnostic {
        let (line, column) = span.as_ref().map_or((0, 0), |s| line_col(text, s.start));
        Diagnostic { severity, code, message, span, line, column, hint }
    }
}

/// 1-based line and character column of byte `offset` in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.bytes().filter(|b| *b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// A policy that cannot be used, with every problem found in it.
#[derive(Debug, Clone, thiserror::Error)]
pub struct PolicyError {
    /// The file name (or other label) the text came from.
    pub file: String,
    /// Errors first, then warnings, each in file order.
    pub diagnostics: Vec<Diagnostic>,
    text: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors = self.errors().count();
        write!(f, "{}: {} error{} in policy", self.file, errors, if errors == 1 { "" } else { "s" })?;
        if let Some(d) = self.errors().next() {
            write!(f, "; first at line {}, column {}: {}", d.line, d.column, d.message)?;
        }
        Ok(())
    }
}

impl PolicyError {
    pub(crate) fn new(file: &str, text: &str, mut diagnostics: Vec<Diagnostic>) -> PolicyError {
        diagnostics.sort_by_key(|d| (d.severity != Severity::Error, d.span.as_ref().map(|s| s.start)));
        PolicyError { file: file.to_string(), diagnostics, text: text.to_string() }
    }

    /// The diagnostics that are errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Error)
    }

    /// Renders every diagnostic with the offending source lines underlined.
    pub fn render(&self, color: bool) -> String {
        render(&self.file, &self.text, &self.diagnostics, color)
    }
}

/// Renders diagnostics against the policy text, compiler style (`╭─[file:line:col]`).
pub fn render(file: &str, text: &str, diagnostics: &[Diagnostic], color: bool) -> String {
    let theme = if color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
    let source = NamedSource::new(file, text.to_string());
    let mut out = String::new();
    for d in diagnostics {
        // A huge line is not echoed whole: the report names the place, an excerpt shows the text around it.
        let excerpt = d.span.as_ref().filter(|s| long_line_near(text, s.start)).map(|s| excerpt(text, s));
        let report = Report { d, source: &source, file, with_source: excerpt.is_none() };
        if handler.render_report(&mut out, &report).is_err() {
            out.push_str(&report.to_string());
            out.push('\n');
        }
        if let Some(e) = excerpt {
            out.push_str(&e);
        }
    }
    out
}

/// Lines longer than this many characters are shown as an excerpt around the problem, never whole.
pub const MAX_ECHOED_LINE: usize = 200;
/// Characters shown on each side of the problem in an excerpt.
const EXCERPT_SIDE: usize = 60;

/// The byte range of the line holding byte `offset` (without its newline).
fn line_at(text: &str, offset: usize) -> Range<usize> {
    let offset = offset.min(text.len());
    let start = text.as_bytes()[..offset].iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let end = text.as_bytes()[offset..].iter().position(|b| *b == b'\n').map_or(text.len(), |i| offset + i);
    start..end
}

/// True when the line at `offset`, or one next to it (shown as context), is longer than [`MAX_ECHOED_LINE`].
fn long_line_near(text: &str, offset: usize) -> bool {
    let line = line_at(text, offset);
    let mut near = vec![line.clone()];
    if line.start > 0 {
        near.push(line_at(text, line.start - 1));
    }
    if line.end < text.len() {
        near.push(line_at(text, line.end + 1));
    }
    near.into_iter()
        .any(|r| text.get(r).is_some_and(|l| l.len() > MAX_ECHOED_LINE && l.chars().nth(MAX_ECHOED_LINE).is_some()))
}

/// At most [`EXCERPT_SIDE`] characters on each side of the span's start, with a caret under it.
fn excerpt(text: &str, span: &Range<usize>) -> String {
    let line = line_at(text, span.start);
    let Some(l) = text.get(line.clone()) else { return String::new() };
    let mut at = span.start.clamp(line.start, line.end) - line.start;
    while !l.is_char_boundary(at) {
        at -= 1;
    }
    let (before, after) = l.split_at(at);
    let skipped = before.chars().count().saturating_sub(EXCERPT_SIDE);
    let head: String = before.chars().skip(skipped).collect();
    let tail: String = after.chars().take(EXCERPT_SIDE).collect();
    let (lead, trail) =
        (if skipped > 0 { "…" } else { "" }, if after.chars().nth(EXCERPT_SIDE).is_some() { "…" } else { "" });
    let pad = lead.chars().count() + head.chars().count();
    format!(
        "    │ {lead}{head}{tail}{trail}\n    │ {}^ here (the line is {} characters long; shown in part)\n",
        " ".repeat(pad),
        l.chars().count()
    )
}

/// Adapter that lets `miette` draw one of our diagnostics.
struct Report<'a> {
    d: &'a Diagnostic,
    source: &'a NamedSource<String>,
    file: &'a str,
    /// False when the source line is too long to echo (an excerpt follows instead).
    with_source: bool,
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.d, f)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.d.span.is_some() {
            write!(f, "{}:{}:{}: {}", self.file, self.d.line, self.d.column, self.d.message)
        } else {
            write!(f, "{}: {}", self.file, self.d.message)
        }
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(self.d.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.d.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.d.hint.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.d.span.as_ref().filter(|_| self.with_source).map(|_| self.source as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.d.span.clone().filter(|_| self.with_source)?;
        let len = span.end.saturating_sub(span.start).max(1);
        Some(Box::new(std::iter::once(LabeledSpan::new(Some("here".into()), span.start, len))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_characters() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        // 'é' is two bytes; the '=' after it is the 4th character.
        assert_eq!(line_col(text, 10), (2, 4));
        assert_eq!(line_col(text, 999), (3, 1));
    }

    #[test]
    fn a_huge_line_is_shown_in_part_around_the_problem() {
        // A 200 KB line with the problem in its middle.
        let text = format!("[policy]\nversion = \"{}X{}\"\n", "a".repeat(100_000), "b".repeat(100_000));
        let at = text.find('X').unwrap();
        let d = Diagnostic::new(Severity::Error, "policy::test", &text, Some(at..at + 1), "bad".into(), None);
        let out = render("p.toml", &text, std::slice::from_ref(&d), false);
        assert!(out.len() < 2_000, "{} bytes echoed", out.len());
        assert!(
            out.contains("p.toml:2:") && out.contains("bad") && out.contains("aX") && out.contains("^ here"),
            "{out}"
        );
        // Short lines render as before, with the source.
        let d = Diagnostic::new(Severity::Error, "policy::test", "a = 1\n", Some(0..1), "bad".into(), None);
        let out = render("p.toml", "a = 1\n", &[d], false);
        assert!(out.contains("a = 1") && !out.contains("shown in part"), "{out}");
    }
}
