//! `consentry policy check|show`.

use crate::ui::{self, Ctx, OK};
use chrono::DateTime;
use clap::Subcommand;
use consentry_app::AppError;
use consentry_policy::{DefaultRule, Policy, Severity};
use std::path::PathBuf;
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
}

pub fn run(ctx: &Ctx, cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Check { file } => check(ctx, file),
        Command::Show { file } => show(ctx, file),
    }
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
