//! `consentry redact`: replace PII in free text by typed placeholders, or list
//! the spans as JSONL for tooling.

use crate::ui::{self, Ctx, OK};
use anyhow::Context;
use consentry_app::redact::{RedactRequest, Redaction};
use consentry_files::OutputOptions;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
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

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let redaction = Redaction::new(RedactRequest {
        jsonl: args.jsonl,
        with_text: args.with_text,
        number: args.number,
        members: args.members.clone(),
        no_gazetteer: args.no_gazetteer,
        min_score: args.min_score,
        types: args.types.clone(),
    })?;
    let inputs: Vec<Option<PathBuf>> = if args.files.is_empty() {
        vec![None]
    } else {
        args.files.iter().map(|f| (f.as_os_str() != "-").then(|| f.clone())).collect()
    };
    // Files are checked for UTF-8 before anything is written, so a bad file leaves no partial output.
    redaction.check_inputs(&inputs)?;
    let bars = ctx.progress();
    let summary = match &args.output {
        Some(out) => {
            // A regular file is written under a temporary name and renamed when complete (no partial
            // output); a device or a pipe is written straight through; a link is followed.
            let file = ctx.create_output(out, OutputOptions::MEMBER_DATA)?;
            let mut w = BufWriter::new(file);
            let summary = redaction.run(&inputs, &mut w, &bars)?;
            let file =
                w.into_inner().map_err(|e| e.into_error()).with_context(|| format!("writing {}", out.display()))?;
            file.commit().map_err(ui::output_err)?;
            summary
        }
        None => {
            let stdout = std::io::stdout();
            let mut w = BufWriter::new(stdout.lock());
            let summary = redaction.run(&inputs, &mut w, &bars)?;
            w.flush().context("writing standard output")?;
            summary
        }
    };
    bars.finish();
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
