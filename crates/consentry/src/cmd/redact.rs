//! `consentry redact`: replace PII in free text by typed placeholders, or list
//! the spans as JSONL for tooling.

use crate::ui::{self, Ctx, OK, bad_input};
use anyhow::Context;
use consentry_files::OutputOptions;
use consentry_redact::{Detector, Kind, Numbering, RedactError, StreamRedactor, ThreadNumberings};
use consentry_synth::Progress;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Files to redact, in order (standard input when none, or `-`).
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Read JSONL lines {"id": …, "text": …} and write {"id": …, "spans": [{start, end, type, score}]} per line.
    #[arg(long)]
    pub jsonl: bool,
    /// With --jsonl, also write the redacted text as "redacted".
    #[arg(long, requires = "jsonl")]
    pub with_text: bool,
    /// Number placeholders consistently per file (or per JSONL "thread"): <PERSON_1>, <PERSON_2>, …
    /// The 4,096 most recently seen threads keep their numbering (memory stays bounded); input grouped
    /// by thread is numbered consistently whatever its length.
    #[arg(long)]
    pub number: bool,
    /// Write to FILE instead of standard output: a regular file atomically (a temporary file renamed when
    /// complete, mode 0640), a device or a named pipe directly; a symbolic link is followed.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Member directory: a text file with one full name ("Given Surname") per line.
    #[arg(long, value_name = "FILE")]
    pub members: Option<PathBuf>,
    /// Leave out the shipped Census gazetteer of given names and surnames.
    #[arg(long)]
    pub no_gazetteer: bool,
    /// Keep detections at or above this confidence (0–1); lower finds more and redacts more.
    #[arg(long, default_value_t = 0.5, value_name = "SCORE")]
    pub min_score: f32,
    /// Only these types (comma-separated: EMAIL,PHONE,URL,IP,CREDIT_CARD,IBAN,SSN,ADDRESS,PERSON).
    #[arg(long, value_delimiter = ',', value_name = "TYPES")]
    pub types: Vec<String>,
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

#[derive(Serialize, Default)]
struct Summary {
    inputs: usize,
    bytes: u64,
    lines: u64,
    spans_by_type: BTreeMap<String, u64>,
    seconds: f64,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let detector = build_detector(&args)?;
    let start = std::time::Instant::now();
    let inputs: Vec<Option<PathBuf>> = if args.files.is_empty() {
        vec![None]
    } else {
        args.files.iter().map(|f| (f.as_os_str() != "-").then(|| f.clone())).collect()
    };
    // Files are checked for UTF-8 before anything is written, so a bad file leaves no partial output.
    for path in inputs.iter().flatten() {
        check_utf8(path)?;
    }
    let mut summary = Summary { inputs: inputs.len(), ..Summary::default() };
    match &args.output {
        Some(out) => {
            // A regular file is written under a temporary name and renamed when complete (no partial
            // output); a device or a pipe is written straight through; a link is followed.
            let file = ctx.create_output(out, OutputOptions::MEMBER_DATA)?;
            let mut w = BufWriter::new(file);
            process(ctx, &args, &detector, &inputs, &mut w, &mut summary)?;
            let file =
                w.into_inner().map_err(|e| e.into_error()).with_context(|| format!("writing {}", out.display()))?;
            file.commit().map_err(ui::output_err)?;
        }
        None => {
            let stdout = std::io::stdout();
            let mut w = BufWriter::new(stdout.lock());
            process(ctx, &args, &detector, &inputs, &mut w, &mut summary)?;
            w.flush().context("writing standard output")?;
        }
    }
    summary.seconds = start.elapsed().as_secs_f64();
    if ctx.json && args.output.is_some() {
        ctx.print_json(&summary)?;
    } else if !ctx.quiet && !ctx.json {
        let found: Vec<String> = summary.spans_by_type.iter().map(|(k, v)| format!("{k} {v}")).collect();
        eprintln!(
            "redacted {} input(s), {:.1} MB in {:.2} s{}",
            summary.inputs,
            summary.bytes as f64 / 1e6,
            summary.seconds,
            if found.is_empty() { String::new() } else { format!(": {}", found.join(", ")) }
        );
    }
    Ok(OK)
}

fn build_detector(args: &Args) -> anyhow::Result<Detector> {
    let mut b = Detector::builder().gazetteer(!args.no_gazetteer).min_score(args.min_score);
    if !args.types.is_empty() {
        let kinds = args
            .types
            .iter()
            .map(|t| t.parse::<Kind>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad_input(e.to_string()))?;
        b = b.kinds(&kinds);
    }
    if let Some(path) = &args.members {
        let text = std::fs::read_to_string(path).map_err(|e| {
            bad_input(format!(
                "cannot read member directory {}: {e}; pass a UTF-8 file with one name per line",
                path.display()
            ))
        })?;
        b = b.member_names(text.lines().map(str::trim).filter(|l| !l.is_empty()));
    }
    b.build().map_err(|e| match e {
        RedactError::Config(_) | RedactError::UnknownKind(_) => bad_input(e.to_string()),
        other => anyhow::Error::new(other).context("building the detector"),
    })
}

/// Fails with the line and byte of the first invalid UTF-8 sequence in `path`, reading in bounded memory.
fn check_utf8(path: &Path) -> anyhow::Result<()> {
    let file = File::open(path).map_err(|e| bad_input(format!("cannot read {}: {e}", path.display())))?;
    let mut r = BufReader::with_capacity(1 << 16, file);
    let mut pending: Vec<u8> = Vec::new();
    let (mut line, mut column) = (1u64, 0u64);
    loop {
        let chunk = r.fill_buf().with_context(|| format!("reading {}", path.display()))?;
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
                return Err(bad_input(format!(
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
        return Err(bad_input(format!(
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

fn open(input: &Option<PathBuf>) -> anyhow::Result<Box<dyn Read>> {
    Ok(match input {
        Some(p) => Box::new(File::open(p).map_err(|e| bad_input(format!("cannot read {}: {e}", p.display())))?),
        None => Box::new(std::io::stdin().lock()),
    })
}

fn name(input: &Option<PathBuf>) -> String {
    input.as_ref().map_or_else(|| "standard input".to_string(), |p| p.display().to_string())
}

fn process(
    ctx: &Ctx,
    args: &Args,
    det: &Detector,
    inputs: &[Option<PathBuf>],
    out: &mut dyn Write,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let bars = ctx.progress();
    let total: u64 = inputs.iter().flatten().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
    bars.stage("redact", total);
    for input in inputs {
        if args.jsonl {
            jsonl(args, det, input, out, summary, &bars)?;
        } else {
            text(args, det, input, out, summary, &bars)?;
        }
    }
    bars.finish();
    Ok(())
}

/// Counts spans by type the same way the stream saw them (re-detecting would double the work, so text mode counts
/// placeholders in the output instead).
fn count_placeholders(out: &str, summary: &mut Summary) {
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
    summary: &'a mut Summary,
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

fn text(
    args: &Args,
    det: &Detector,
    input: &Option<PathBuf>,
    out: &mut dyn Write,
    summary: &mut Summary,
    bars: &crate::ui::Bars,
) -> anyhow::Result<()> {
    let mut reader = open(input)?;
    let mut sink = Counting { inner: out, summary };
    // From standard input (which cannot be checked first) whole lines are written only once complete and valid,
    // up to 8 MiB per line; longer lines are cut at blank space.
    let mut red = StreamRedactor::new(det, &mut sink).window(8 << 20);
    if args.number {
        red = red.numbered();
    }
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {}", name(input))),
        };
        bytes += n as u64;
        bars.advance("redact", n as u64);
        red.write_bytes(&buf[..n]).map_err(|e| stream_error(input, e))?;
    }
    red.finish().map_err(|e| stream_error(input, e))?;
    summary.bytes += bytes;
    Ok(())
}

fn stream_error(input: &Option<PathBuf>, e: RedactError) -> anyhow::Error {
    match e {
        RedactError::InvalidUtf8 { .. } => bad_input(format!("{}: {e}", name(input))),
        other => anyhow::Error::new(other).context(format!("redacting {}", name(input))),
    }
}

fn jsonl(
    args: &Args,
    det: &Detector,
    input: &Option<PathBuf>,
    out: &mut dyn Write,
    summary: &mut Summary,
    bars: &crate::ui::Bars,
) -> anyhow::Result<()> {
    let mut reader = BufReader::with_capacity(1 << 16, open(input)?);
    let mut line = Vec::new();
    // Lines without a thread number on their own; threads keep their numbering in bounded memory.
    let mut threads = ThreadNumberings::new(ThreadNumberings::DEFAULT_CAPACITY);
    let mut lineno = 0u64;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).with_context(|| format!("reading {}", name(input)))?;
        if n == 0 {
            break;
        }
        lineno += 1;
        bars.advance("redact", n as u64);
        summary.bytes += n as u64;
        summary.lines += 1;
        let s = std::str::from_utf8(&line).map_err(|e| {
            bad_input(format!("{}: line {lineno}, byte {}: not valid UTF-8", name(input), e.valid_up_to() + 1))
        })?;
        if s.trim().is_empty() {
            continue;
        }
        let row: InLine = serde_json::from_str(s).map_err(|e| {
            bad_input(format!(
                "{}: line {lineno}: {e}; expected an object like {{\"id\": 1, \"text\": \"…\"}}",
                name(input)
            ))
        })?;
        let spans = det.detect(&row.text);
        for sp in &spans {
            *summary.spans_by_type.entry(sp.kind.as_str().to_string()).or_default() += 1;
        }
        let redacted = args.with_text.then(|| {
            if args.number {
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
        let mut buf = serde_json::to_vec(&o).context("encoding JSON")?;
        buf.push(b'\n');
        out.write_all(&buf).context("writing output")?;
    }
    Ok(())
}
