//! What every command shares: the data directory, output mode, progress
//! bars, tables, and the mapping from errors to exit codes.

use comfy_table::{CellAlignment, Table, presets};
use consentry_app::{AppError, DataDir, Session};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

/// Exit code for success.
pub const OK: ExitCode = ExitCode::SUCCESS;

/// The input (a file, a flag value) is wrong: exit code 2, with what to do about it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// Builds a [`BadInput`] error.
pub fn bad_input(msg: impl Into<String>) -> anyhow::Error {
    BadInput(msg.into()).into()
}

/// Maps an output error to an exit code: naming a wrong output is bad input (2).
pub fn output_err(e: consentry_files::OutputError) -> anyhow::Error {
    if e.is_bad_input() { bad_input(e.to_string()) } else { anyhow::Error::new(e) }
}

/// Prints an error with its causes (a policy's diagnostics first, rendered) and picks the exit code: the
/// application layer's error kind decides it.
pub fn report_error(e: &anyhow::Error, color: bool, json: bool) -> ExitCode {
    let app = e.downcast_ref::<AppError>();
    if !json && let Some(p) = app.and_then(|a| a.downcast_ref::<consentry_policy::PolicyError>()) {
        eprint!("{}", p.render(color));
    }
    let code = match app {
        Some(a) => a.kind().exit_code(),
        None if e.downcast_ref::<BadInput>().is_some() => 2,
        None => 1,
    };
    eprintln!("error: {e}");
    for cause in e.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
    ExitCode::from(code)
}

/// Options every command sees.
pub struct Ctx {
    /// The data directory (`--data`).
    pub dir: DataDir,
    pub database: Option<String>,
    pub quiet: bool,
    pub json: bool,
    pub color: bool,
    /// Write through a symbolic link named as an output (`--no-follow` refuses it instead).
    pub follow_links: bool,
}

impl Ctx {
    pub fn new(data: PathBuf, database: Option<String>, quiet: bool, json: bool) -> Ctx {
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Ctx { dir: DataDir::new(data), database, quiet, json, color, follow_links: true }
    }

    /// A session on the data directory and `--database` that may write.
    pub fn session(&self) -> Result<Session, AppError> {
        Session::open(self.dir.clone(), self.database.as_deref())
    }

    /// A writing session that emits OpenLineage run events as `--openlineage` (`flag`) and the environment say
    /// (the rules live in `consentry_app::openlineage`); lineage warnings go to stderr.
    pub fn lineage_session(&self, flag: Option<&str>) -> Result<Session, AppError> {
        self.session()?.with_openlineage(
            flag,
            &|k: &str| std::env::var(k).ok(),
            consentry_app::openlineage::stderr_warnings(),
        )
    }

    /// A session that never writes (works on a read-only copy of a data directory).
    pub fn read_only_session(&self) -> Result<Session, AppError> {
        Session::open_read_only(self.dir.clone(), self.database.as_deref())
    }

    /// Human output goes to stdout unless --quiet or --json.
    pub fn human(&self) -> bool {
        !self.quiet && !self.json
    }

    /// Prints a line of human output.
    pub fn say(&self, line: impl AsRef<str>) {
        if self.human() {
            println!("{}", line.as_ref());
        }
    }

    /// Prints a value as pretty JSON on stdout.
    pub fn print_json(&self, value: &impl serde::Serialize) -> anyhow::Result<()> {
        println!("{}", serde_json::to_string_pretty(value)?);
        Ok(())
    }

    /// Progress bars on stderr, drawn only for a person watching a terminal.
    pub fn progress(&self) -> Bars {
        let target = if self.quiet || !std::io::stderr().is_terminal() {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        Bars { multi: MultiProgress::with_draw_target(target), bars: Mutex::new(HashMap::new()) }
    }

    /// Opens an output file the user named (see `consentry_files`): atomic for a regular file,
    /// straight through for a device or a pipe, a link followed unless `--no-follow`.
    pub fn create_output(
        &self,
        path: &Path,
        mode: consentry_files::OutputOptions,
    ) -> anyhow::Result<consentry_files::Output> {
        consentry_files::Output::create(path, self.output_options(mode)).map_err(output_err)
    }

    /// Writes `bytes` to an output file the user named, as [`Ctx::create_output`] opens it.
    pub fn write_output(&self, path: &Path, bytes: &[u8], mode: consentry_files::OutputOptions) -> anyhow::Result<()> {
        consentry_files::write(path, bytes, self.output_options(mode)).map(|_| ()).map_err(output_err)
    }

    /// `mode` with `--no-follow` applied.
    pub fn output_options(&self, mode: consentry_files::OutputOptions) -> consentry_files::OutputOptions {
        if self.follow_links { mode } else { mode.no_follow() }
    }
}

/// One bar per stage, for the synthetic generator and other long work.
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<&'static str, ProgressBar>>,
}

impl Bars {
    fn style() -> ProgressStyle {
        ProgressStyle::with_template(
            "{prefix:>16} [{bar:30.cyan/blue}] {percent:>3}% {human_pos}/{human_len} ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
    }

    /// Marks every bar finished.
    pub fn finish(&self) {
        if let Ok(bars) = self.bars.lock() {
            for b in bars.values() {
                b.finish();
            }
        }
    }
}

impl consentry_synth::Progress for Bars {
    fn stage(&self, name: &'static str, total: u64) {
        if let Ok(mut bars) = self.bars.lock() {
            let bar = self.multi.add(ProgressBar::new(total).with_style(Self::style()).with_prefix(name));
            bars.insert(name, bar);
        }
    }

    fn advance(&self, name: &'static str, n: u64) {
        if let Ok(bars) = self.bars.lock()
            && let Some(b) = bars.get(name)
        {
            b.inc(n);
        }
    }
}

/// A table with a header row; columns after the first are right-aligned numbers.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED).set_header(header.to_vec());
    t
}

/// Right-aligns every column but the first.
pub fn align_numbers(t: &mut Table) {
    let n = t.column_count();
    for i in 1..n {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
}

pub use consentry_app::dashboard::thousands;

/// `part / whole` as a percentage with one decimal.
pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 { "–".into() } else { format!("{:.1}%", 100.0 * part as f64 / whole as f64) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formatting() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(percent(1, 3), "33.3%");
        assert_eq!(percent(1, 0), "–");
    }
}
