//! One module per verb; shared loading helpers here.

pub mod audit;
pub mod demo;
pub mod dp;
pub mod gate;
pub mod ledger;
pub mod lineage;
pub mod policy;
pub mod redact;
pub mod synth;
pub mod train;
pub mod unlearn;

use crate::ui::{Ctx, bad_input};
use anyhow::Context;
use consentry_policy::{DEFAULT_POLICY, Policy, PolicyError};
use std::path::{Path, PathBuf};

/// The file name of the policy in force inside the data directory.
pub const POLICY_FILE: &str = "policy.toml";

/// Where a policy's text came from.
pub struct PolicyText {
    pub name: String,
    pub text: String,
}

/// Reads `file`, or the data directory's policy in force, or the shipped default.
pub fn policy_text(ctx: &Ctx, file: Option<&Path>) -> anyhow::Result<PolicyText> {
    let in_force = ctx.data_path(POLICY_FILE);
    let path: Option<PathBuf> = match file {
        Some(f) => Some(f.to_path_buf()),
        None if in_force.exists() => Some(in_force),
        None => None,
    };
    match path {
        Some(p) => {
            let text = std::fs::read_to_string(&p).map_err(|e| {
                bad_input(format!("cannot read policy file {}: {e}; pass an existing TOML file", p.display()))
            })?;
            Ok(PolicyText { name: p.display().to_string(), text })
        }
        None => Ok(PolicyText { name: "policy/default.toml (built in)".into(), text: DEFAULT_POLICY.to_string() }),
    }
}

/// Prints a policy's diagnostics to stderr and turns them into a bad-input error.
pub fn policy_failed(ctx: &Ctx, e: &PolicyError) -> anyhow::Error {
    if !ctx.json {
        eprint!("{}", e.render(ctx.color));
    }
    bad_input(e.to_string())
}

/// Loads and validates the policy in force (or `file`).
pub fn load_policy(ctx: &Ctx, file: Option<&Path>) -> anyhow::Result<Policy> {
    let src = policy_text(ctx, file)?;
    Policy::from_toml(&src.name, &src.text).map_err(|e| policy_failed(ctx, &e))
}

/// Makes the data directory and puts the default policy in force if none is.
pub fn init_data_dir(ctx: &Ctx) -> anyhow::Result<()> {
    if let Some(e) = data_not_a_directory(ctx) {
        return Err(e);
    }
    std::fs::create_dir_all(&ctx.data)
        .with_context(|| format!("cannot create data directory {}", ctx.data.display()))?;
    let path = ctx.data_path(POLICY_FILE);
    if !path.exists() {
        std::fs::write(&path, DEFAULT_POLICY).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// The error when `--data` names something other than a directory (a regular file, say): no ledger can live there,
/// and `ledger init` could not create one.
pub fn data_not_a_directory(ctx: &Ctx) -> Option<anyhow::Error> {
    let meta = std::fs::metadata(&ctx.data).ok()?;
    (!meta.is_dir()).then(|| {
        crate::ui::bad_input(format!(
            "--data {} is a file, not a data directory: pass a directory (it is created when missing)",
            ctx.data.display()
        ))
    })
}
