//! The redaction use case: free text in files or standard input, to redacted text (typed placeholders) or to JSONL
//! spans for tooling — the same for every front end, with UTF-8 checked before anything is written.

use crate::error::{AppError, Context as _, ErrorKind, Result};
use crate::progress::Progress;
use consentry_redact::{Detector, Kind, Numbering, RedactError, StreamRedactor, ThreadNumberings};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// What to detect and how to write it.
#[derive(Debug, Clone, Default)]
pub struct RedactRequest {
    /// Read JSONL `{"id", "text"[, "thread"]}` and write `{"id", "spans"[, "redacted"]}` per line.
    pub jsonl: bool,
    /// With `jsonl`, also write the redacted text.
    pub with_text: bool,
    /// Number placeholders consistently per input (or per JSONL thread).
    pub number: bool,
    /// A member directory: one full name per line.
    pub members: Option<PathBuf>,
    /// Leave out the shipped gazetteer of names.
    pub no_gazetteer: bool,
    /// Keep detections at or above this confidence.
    pub min_score: f32,
    /// Only these types (`EMAIL`, `PERSON`, …); all when empty.
    pub types: Vec<String>,
}

/// What a redaction run saw.
#[derive(Debug, Serialize, Default)]
pub struct RedactSummary {
    /// Inputs read.
    pub inputs: usize,
    /// Bytes read.
    pub bytes: u64,
    /// JSONL lines read.
    pub lines: u64,
    /// Spans found, by type.
    pub spans_by_type: BTreeMap<String, u64>,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// A configured redactor over a list of inputs (`None` is standard input).
pub struct Redaction {
    req: RedactRequest,
    det: Detector,
}

impl Redaction {
    /// Builds the detector the request describes.
    pub fn new(req: RedactRequest) -> Result<Redaction> {
        let mut b = Detector::builder().gazetteer(!req.no_gazetteer).min_score(req.min_score);
        if !req.types.is_empty() {
            let kinds = req
                .types
                .iter()
                .map(|t| t.parse::<Kind>())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| AppError::bad_input(e.to_string()))?;
            b = b.kinds(&kinds);
        }
        if let Some(path) = &req.members {
            let text = std::fs::read_to_string(path).map_err(|e| {
                AppError::bad_input(format!(
                    "cannot read member directory {}: {e}; pass a UTF-8 file with one name per line",
                    path.display()
                ))
            })?;
            b = b.member_names(text.lines().map(str::trim).filter(|l| !l.is_empty()));
        }
        let det = b.build().map_err(|e| match e {
            RedactError::Config(_) | RedactError::UnknownKind(_) => AppError::bad_input(e.to_string()),
            other => AppError::wrap(ErrorKind::Internal, other).context("building the detector"),
        })?;
        Ok(Redaction { req, det })
    }

    /// Checks that every named file is UTF-8, so a bad file fails the run before any output is written.
    pub fn check_inputs(&self, inputs: &[Option<PathBuf>]) -> Result<()> {
        for path in inputs.iter().flatten() {
            check_utf8(path)?;
        }
        Ok(())
    }

    /// Redacts every input in order into `out`; `progress` hears bytes read (stage `redact`).
    pub fn run(
        &self,
        inputs: &[Option<PathBuf>],
        out: &mut dyn Write,
        progress: &dyn Progress,
    ) -> Result<RedactSummary> {
        let start = std::time::Instant::now();
        let mut summary = RedactSummary { inputs: inputs.len(), ..RedactSummary::default() };
        let total: u64 = inputs.iter().flatten().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
        progress.stage("redact", total);
        for input in inputs {
            if self.req.jsonl {
                self.jsonl(input, out, &mut summary, progress)?;
            } else {
                self.text(input, out, &mut summary, progress)?;
            }
        }
        summary.seconds = start.elapsed().as_secs_f64();
        Ok(summary)
    }

    fn text(
        &self,
        input: &Option<PathBuf>,
        out: &mut dyn Write,
        summary: &mut RedactSummary,
        bars: &dyn Progress,
    ) -> Result<()> {
        let mut reader = open(input)?;
        let mut sink = Counting { inner: out, summary };
        // From standard input (which cannot be checked first) whole lines are written only once complete and valid,
        // up to 8 MiB per line; longer lines are cut at blank space.
        let mut red = StreamRedactor::new(&self.det, &mut sink).window(8 << 20);
        if self.req.number {
            red = red.numbered();
        }
        let mut buf = vec![0u8; 1 << 16];
        let mut bytes = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(AppError::wrap(ErrorKind::Unavailable, e))
                        .with_context(|| format!("reading {}", name(input)));
                }
            };
            bytes += n as u64;
            bars.advance("redact", n as u64);
            red.write_bytes(&buf[..n]).map_err(|e| stream_error(input, e))?;
        }
        red.finish().map_err(|e| stream_error(input, e))?;
        summary.bytes += bytes;
        Ok(())
    }

    fn jsonl(
        &self,
        input: &Option<PathBuf>,
        out: &mut dyn Write,
        summary: &mut RedactSummary,
        bars: &dyn Progress,
    ) -> Result<()> {
        let mut reader = BufReader::with_capacity(1 << 16, open(input)?);
        let mut line = Vec::new();
        // Lines without a thread number on their own; threads keep their numbering in bounded memory.
        let mut threads = ThreadNumberings::new(ThreadNumberings::DEFAULT_CAPACITY);
        let mut lineno = 0u64;
        loop {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| AppError::wrap(ErrorKind::Unavailable, e))
                .with_context(|| format!("reading {}", name(input)))?;
            if n == 0 {
                break;
            }
            lineno += 1;
            bars.advance("redact", n as u64);
            summary.bytes += n as u64;
            summary.lines += 1;
            let s = std::str::from_utf8(&line).map_err(|e| {
                AppError::bad_input(format!(
                    "{}: line {lineno}, byte {}: not valid UTF-8",
                    name(input),
                    e.valid_up_to() + 1
                ))
            })?;
            if s.trim().is_empty() {
                continue;
            }
            let row: InLine = serde_json::from_str(s).map_err(|e| {
                AppError::bad_input(format!(
                    "{}: line {lineno}: {e}; expected an object like {{\"id\": 1, \"text\": \"…\"}}",
                    name(input)
                ))
            })?;
            let spans = self.det.detect(&row.text);
            for sp in &spans {
                *summary.spans_by_type.entry(sp.kind.as_str().to_string()).or_default() += 1;
            }
            let redacted = self.req.with_text.then(|| {
                if self.req.number {
                    let mut own = Numbering::new();
                    let numbering = match &row.thread {
                        Some(t) => threads.get(&t.to_string()),
                        None => &mut own,
                    };
                    consentry_redact::redact_with(&row.text, &spans, numbering)
                } else {
                    consentry_redact::redact(&row.text, &spans)
                }
            });
            let o = OutLine {
                id: &row.id,
                spans: spans
                    .iter()
                    .map(|s| OutSpan {
                        start: s.start,
                        end: s.end,
                        kind: s.kind,
                        score: (f64::from(s.score) * 100.0).round() / 100.0,
                    })
                    .collect(),
                redacted,
            };
            let mut buf = serde_json::to_vec(&o).map_err(|e| AppError::internal(format!("encoding JSON: {e}")))?;
            buf.push(b'\n');
            out.write_all(&buf).map_err(|e| AppError::wrap(ErrorKind::Unavailable, e)).context("writing output")?;
        }
        Ok(())
    }
}

/// One JSONL input line.
#[derive(Deserialize)]
struct InLine {
    id: serde_json::Value,
    text: String,
    #[serde(default)]
    thread: Option<serde_json::Value>,
}

/// One JSONL output line.
#[derive(Serialize)]
struct OutLine<'a> {
    id: &'a serde_json::Value,
    spans: Vec<OutSpan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redacted: Option<String>,
}

#[derive(Serialize)]
struct OutSpan {
    start: usize,
    end: usize,
    #[serde(rename = "type")]
    kind: Kind,
    score: f64,
}

/// Fails with the line and byte of the first invalid UTF-8 sequence in `path`, reading in bounded memory.
fn check_utf8(path: &Path) -> Result<()> {
    let file = File::open(path).map_err(|e| AppError::bad_input(format!("cannot read {}: {e}", path.display())))?;
    let mut r = BufReader::with_capacity(1 << 16, file);
    let mut pending: Vec<u8> = Vec::new();
    let (mut line, mut column) = (1u64, 0u64);
    loop {
        let chunk = r
            .fill_buf()
            .map_err(|e| AppError::wrap(ErrorKind::Unavailable, e))
            .with_context(|| format!("reading {}", path.display()))?;
        if chunk.is_empty() {
            break;
        }
        let n = chunk.len();
        let mut data = std::mem::take(&mut pending);
        data.extend_from_slice(chunk);
        r.consume(n);
        let valid = match std::str::from_utf8(&data) {
            Ok(_) => data.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(e) => {
                advance(&data[..e.valid_up_to()], &mut line, &mut column);
                return Err(AppError::bad_input(format!(
                    "{}: line {line}, byte {} of the line: not valid UTF-8; nothing was written (convert the file to UTF-8, e.g. with iconv)",
                    path.display(),
                    column + 1
                )));
            }
        };
        advance(&data[..valid], &mut line, &mut column);
        pending = data[valid..].to_vec();
    }
    if !pending.is_empty() {
        return Err(AppError::bad_input(format!(
            "{}: line {line}, byte {}: the file ends inside a UTF-8 character; nothing was written",
            path.display(),
            column + 1
        )));
    }
    Ok(())
}

fn advance(bytes: &[u8], line: &mut u64, column: &mut u64) {
    match bytes.iter().rposition(|b| *b == b'\n') {
        Some(last) => {
            *line += bytes.iter().filter(|b| **b == b'\n').count() as u64;
            *column = (bytes.len() - last - 1) as u64;
        }
        None => *column += bytes.len() as u64,
    }
}

fn open(input: &Option<PathBuf>) -> Result<Box<dyn Read>> {
    Ok(match input {
        Some(p) => {
            Box::new(File::open(p).map_err(|e| AppError::bad_input(format!("cannot read {}: {e}", p.display())))?)
        }
        None => Box::new(std::io::stdin().lock()),
    })
}

fn name(input: &Option<PathBuf>) -> String {
    input.as_ref().map_or_else(|| "standard input".to_string(), |p| p.display().to_string())
}

/// Counts spans by type the same way the stream saw them (re-detecting would double the work, so text mode counts
/// placeholders in the output instead).
fn count_placeholders(out: &str, summary: &mut RedactSummary) {
    for k in Kind::ALL {
        let plain = format!("<{}>", k.as_str());
        let numbered = format!("<{}_", k.as_str());
        let n = out.matches(&plain).count() + out.matches(&numbered).count();
        if n > 0 {
            *summary.spans_by_type.entry(k.as_str().to_string()).or_default() += n as u64;
        }
    }
}

/// A writer that counts placeholders in what passes through, per chunk (placeholders are never split across the
/// redactor's writes).
struct Counting<'a> {
    inner: &'a mut dyn Write,
    summary: &'a mut RedactSummary,
}

impl Write for Counting<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write_all(buf)?;
        count_placeholders(&String::from_utf8_lossy(buf), self.summary);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn stream_error(input: &Option<PathBuf>, e: RedactError) -> AppError {
    match e {
        RedactError::InvalidUtf8 { .. } => AppError::bad_input(format!("{}: {e}", name(input))),
        other => AppError::wrap(ErrorKind::Internal, other).context(format!("redacting {}", name(input))),
    }
}

/// The detector the gate redacts free text with (default settings: the shipped gazetteer, the default confidence,
/// every type), over `member_names`: what a front end redacting "as the gate would" builds, so it never drifts.
pub fn gate_detector<I, S>(member_names: I) -> Result<Detector>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut names: Vec<String> = member_names.into_iter().map(Into::into).collect();
    names.sort_unstable();
    names.dedup();
    Detector::builder().member_names(names).build().map_err(|e| match e {
        RedactError::Config(_) | RedactError::UnknownKind(_) => AppError::bad_input(e.to_string()),
        other => AppError::wrap(ErrorKind::Internal, other).context("building the detector"),
    })
}
