//! `consentry policy check|show|export|import`.

use crate::ui::{self, Ctx, OK};
use chrono::DateTime;
use clap::Subcommand;
use consentry_app::AppError;
use consentry_files::OutputOptions;
use consentry_policy::{DefaultRule, Policy, Severity};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum Command {
    /// Validate a policy file; every problem is reported with line, column and a hint.
    ///
    /// Without FILE, checks the policy in force in the data directory (or the
    /// built-in default). Exit code 2 when the policy has errors.
    Check {
        /// The TOML policy file.
        file: Option<PathBuf>,
    },
    /// Show a policy's purposes, notices and jurisdiction rules.
    Show {
        /// The TOML policy file.
        file: Option<PathBuf>,
    },
    /// Write a policy as a Fides resource manifest (one system, its privacy declarations, taxonomy extensions).
    ///
    /// The manifest is JSON, which is YAML: `fides push` reads it under a `.yml` name. What Fides has no field
    /// for (notices, jurisdictions, GPC, sensitivity) is kept in the system's `meta.consentry`.
    Export {
        /// The manifest format.
        #[arg(long, value_enum)]
        format: Format,
        /// The TOML policy file (default: the policy in force).
        file: Option<PathBuf>,
        /// Where to write the manifest (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Make a policy TOML from a Fides manifest (JSON; convert YAML first, e.g. `yq -o json`).
    ///
    /// Purposes are the system's privacy declarations under `train_ai_system`; what Fides does not carry comes
    /// from the manifest's `meta.consentry` (written by `policy export`), else from --base. The new policy is
    /// validated before it is written, never over the policy in force.
    Import {
        /// The manifest format.
        #[arg(long, value_enum)]
        from: Format,
        /// The Fides manifest.
        file: PathBuf,
        /// The policy that supplies what the manifest does not carry (default: the policy in force).
        #[arg(long)]
        base: Option<PathBuf>,
        /// The Fides system to import (required when the manifest has several).
        #[arg(long)]
        system: Option<String>,
        /// Where to write the new policy TOML.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Policy interchange formats.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// Fides' fideslang resource manifest.
    Fideslang,
}

pub fn run(ctx: &Ctx, cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Check { file } => check(ctx, file),
        Command::Show { file } => show(ctx, file),
        Command::Export { format: Format::Fideslang, file, out } => export(ctx, file, out),
        Command::Import { from: Format::Fideslang, file, base, system, out } => {
            import(ctx, &file, base.as_deref(), system.as_deref(), &out)
        }
    }
}

fn export(ctx: &Ctx, file: Option<PathBuf>, out: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let json = consentry_app::fides::export_fideslang(&ctx.dir, file.as_deref())?;
    match out {
        Some(path) => {
            ctx.write_output(&path, json.as_bytes(), OutputOptions::PUBLIC)?;
            ctx.say(format!("Fides manifest written to {}", path.display()));
        }
        None => print!("{json}"),
    }
    Ok(OK)
}

fn import(ctx: &Ctx, file: &Path, base: Option<&Path>, system: Option<&str>, out: &Path) -> anyhow::Result<ExitCode> {
    let opts = ctx.output_options(OutputOptions::PUBLIC);
    let r = consentry_app::fides::import_fideslang(&ctx.dir, file, base, system, out, opts)?;
    if ctx.json {
        ctx.print_json(&r)?;
        return Ok(OK);
    }
    if !ctx.quiet {
        for n in &r.notes {
            eprintln!("note: {n}");
        }
    }
    ctx.say(format!(
        "policy {} ({} purposes, {} categories) from Fides system `{}` written to {}{}\n    blake3 {}\n    \
         review it (`consentry policy show {}`), then put it in force",
        r.version,
        r.purposes,
        r.categories,
        r.system,
        r.out.display(),
        if r.unchanged { " — the exact policy it was exported from" } else { "" },
        r.hash,
        r.out.display()
    ));
    Ok(OK)
}

fn check(ctx: &Ctx, file: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let src = ctx.dir.policy_text(file.as_deref())?;
    match Policy::check(&src.name, &src.text) {
        Ok((p, warnings)) => {
            if ctx.json {
                ctx.print_json(&serde_json::json!({
                    "ok": true, "file": src.name, "version": p.version, "hash": p.hash,
                    "purposes": p.purposes.len(), "categories": p.categories.len(),
                    "jurisdictions": p.jurisdictions.len(), "diagnostics": warnings,
                }))?;
            } else {
                if !warnings.is_empty() && !ctx.quiet {
                    eprint!("{}", consentry_policy::render_diagnostics(&src.name, &src.text, &warnings, ctx.color));
                }
                ctx.say(format!(
                    "ok: {} — policy {} ({} categories, {} purposes, {} jurisdiction rules, {} warning{})\n    blake3 {}",
                    src.name,
                    p.version,
                    p.categories.len(),
                    p.purposes.len(),
                    p.jurisdictions.len(),
                    warnings.len(),
                    if warnings.len() == 1 { "" } else { "s" },
                    p.hash
                ));
            }
            Ok(OK)
        }
        Err(e) => {
            if ctx.json {
                ctx.print_json(&serde_json::json!({"ok": false, "file": src.name, "diagnostics": e.diagnostics}))?;
            }
            let errors = e.diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
            Err(AppError::from(e)
                .context(format!("{errors} error(s); fix them and run `consentry policy check` again"))
                .into())
        }
    }
}

fn date(t: i64) -> String {
    DateTime::from_timestamp(t, 0).map_or_else(|| t.to_string(), |d| d.format("%Y-%m-%d %H:%M UTC").to_string())
}

fn rule(r: DefaultRule) -> &'static str {
    match r {
        DefaultRule::OptIn => "opt-in",
        DefaultRule::OptOut => "opt-out",
        DefaultRule::Prohibited => "prohibited",
    }
}

fn show(ctx: &Ctx, file: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let src = ctx.dir.policy_text(file.as_deref())?;
    let p = Policy::from_toml(&src.name, &src.text).map_err(AppError::from)?;
    if ctx.json {
        ctx.print_json(&p)?;
        return Ok(OK);
    }
    ctx.say(format!("Policy {} of {} ({})\nblake3 {}\n", p.version, p.controller, src.name, p.hash));
    let mut t = ui::table(&["purpose", "categories", "GPC withdraws", "notices"]);
    for pu in &p.purposes {
        let notices: Vec<String> = pu
            .notices
            .iter()
            .map(|n| {
                format!("v{} from {}{}", n.version, date(n.effective), if n.material { " (material)" } else { "" })
            })
            .collect();
        t.add_row(vec![
            format!("{}\n{}", pu.key, pu.name),
            pu.categories
                .iter()
                .map(
                    |c| {
                        if p.category(c).is_some_and(|c| c.sensitive) { format!("{c} (sensitive)") } else { c.clone() }
                    },
                )
                .collect::<Vec<_>>()
                .join("\n"),
            if pu.gpc_withdraws { "yes".into() } else { "no".into() },
            notices.join("\n"),
        ]);
    }
    ctx.say(t.to_string());
    let mut header = vec!["jurisdiction", "min age"];
    header.extend(p.purposes.iter().map(|pu| pu.key.trim_start_matches("train_ai_system.")));
    let mut t = ui::table(&header);
    for j in &p.jurisdictions {
        let mut row = vec![j.key.clone(), j.min_age.max(consentry_policy::MIN_AGE_FLOOR).to_string()];
        row.extend(p.purpose_ids().map(|id| rule(j.default_for(id)).to_string()));
        t.add_row(row);
    }
    ctx.say(t.to_string());
    for (g, members) in &p.groups {
        ctx.say(format!("group {g}: {}", members.join(" ")));
    }
    Ok(OK)
}
