//! `consentry report`: the privacy officer's report — one self-contained HTML file (`consentry_app`'s
//! `Session::report` gathers the figures, `consentry_server::report::render` draws them), or the figures as JSON.

use crate::ui::{self, Ctx, OK};
use consentry_app::report::AuditChoice;
use consentry_files::OutputOptions;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The HTML file to write [default: DATA/report.html; with --json, none unless given].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Leave the audit out (faster; the report then says it was not run).
    #[arg(long)]
    pub no_audit: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    if !ctx.dir.root().is_dir() {
        return Err(ui::bad_input(format!(
            "the data directory {} does not exist: pass --data DIR of an existing one, or make one with `consentry \
             demo` or `consentry ledger init`",
            ctx.dir.root().display()
        )));
    }
    let session = ctx.read_only_session()?;
    let audit = if args.no_audit { AuditChoice::Skip } else { AuditChoice::Run };
    let report = session.report(consentry_ledger::now(), audit)?;
    let out = match (&args.out, ctx.json) {
        (Some(p), _) => Some(p.clone()),
        (None, false) => Some(ctx.dir.report_file()),
        (None, true) => None,
    };
    if let Some(path) = &out {
        let html = consentry_server::report::render(&report);
        ctx.write_output(path, html.as_bytes(), OutputOptions::MEMBER_DATA)?;
        ctx.say(written(path, html.len()));
    }
    if ctx.json {
        ctx.print_json(&report)?;
    }
    Ok(OK)
}

/// `Report: consentry-data/report.html (123 KB) — open it in a browser`.
pub fn written(path: &Path, bytes: usize) -> String {
    format!("Report: {} ({} KB) — open it in a browser", path.display(), bytes.div_ceil(1024))
}
