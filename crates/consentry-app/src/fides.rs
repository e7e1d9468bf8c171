//! Fides interoperability: `policy export --format fideslang` and `policy import --from fideslang`.
//!
//! The conversion rules are `consentry_policy::fideslang`'s; this module picks the files (the policy in force by
//! default), refuses to write over the policy in force, and writes nothing unless the new policy validates.

use crate::{AppError, DataDir, Result};
use consentry_files::OutputOptions;
use consentry_policy::Policy;
use consentry_policy::fideslang::{self, FidesError};
use std::path::{Path, PathBuf};

/// The Fides manifest of `file` (default: the policy in force), as pretty JSON with a final newline. JSON is
/// YAML, so `fides push` reads it under a `.yml` name.
pub fn export_fideslang(dir: &DataDir, file: Option<&Path>) -> Result<String> {
    let src = dir.policy_text(file)?;
    let policy = Policy::from_toml(&src.name, &src.text)?;
    let manifest = fideslang::export(&policy, &src.text);
    let mut json = serde_json::to_string_pretty(&manifest)
        .map_err(|e| AppError::internal(format!("cannot encode the Fides manifest: {e}")))?;
    json.push('\n');
    Ok(json)
}

/// What `import_fideslang` wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FidesImport {
    /// The file written.
    pub out: PathBuf,
    /// The Fides system the policy came from.
    pub system: String,
    /// The new policy's version string.
    pub version: String,
    /// BLAKE3 of the text written.
    pub hash: String,
    /// How many purposes it declares.
    pub purposes: usize,
    /// How many categories it declares.
    pub categories: usize,
    /// True when the text written is exactly the policy the manifest was exported from.
    pub unchanged: bool,
    /// Skipped declarations, defaults taken, rules dropped.
    pub notes: Vec<String>,
}

/// Makes a policy from the Fides manifest `manifest` (JSON), its system `system` (or its only one), taking what
/// Fides does not carry from the manifest's `meta.consentry`, else from `base` (default: the policy in force),
/// validates it, and writes it to `out`, which must not be the policy in force. Nothing is written on error.
pub fn import_fideslang(
    dir: &DataDir,
    manifest: &Path,
    base: Option<&Path>,
    system: Option<&str>,
    out: &Path,
    opts: OutputOptions,
) -> Result<FidesImport> {
    let in_force = dir.policy_file();
    if lands_on(out, &in_force) {
        return Err(AppError::bad_input(format!(
            "--out {} is the policy in force ({}): write the new policy to another file, review it with \
             `consentry policy show FILE`, then put it in force yourself",
            out.display(),
            in_force.display()
        )));
    }
    let text = std::fs::read_to_string(manifest).map_err(|e| {
        AppError::bad_input(format!(
            "cannot read the Fides manifest {}: {e}; pass an existing JSON manifest",
            manifest.display()
        ))
    })?;
    let base_policy = dir.load_policy(base).map_err(|e| e.context("reading the base policy (--base)"))?;
    let imported = fideslang::import(&manifest.display().to_string(), &text, system, &base_policy)
        .map_err(|e: FidesError| AppError::bad_input(e.to_string()))?;
    consentry_files::write(out, imported.toml.as_bytes(), opts)?;
    Ok(FidesImport {
        out: out.to_path_buf(),
        system: imported.system,
        version: imported.policy.version.clone(),
        hash: imported.policy.hash.clone(),
        purposes: imported.policy.purposes.len(),
        categories: imported.policy.categories.len(),
        unchanged: imported.unchanged,
        notes: imported.notes,
    })
}

/// Whether writing `out` (following symbolic links, as outputs do) would replace `target`.
fn lands_on(out: &Path, target: &Path) -> bool {
    let mut p = out.to_path_buf();
    for _ in 0..40 {
        match std::fs::read_link(&p) {
            Ok(next) => {
                p = match p.parent() {
                    Some(dir) if next.is_relative() => dir.join(next),
                    _ => next,
                }
            }
            Err(_) => break,
        }
    }
    match (where_is(&p), where_is(target)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// A path's canonical place: the file itself when it exists, else its canonical directory and its name.
fn where_is(p: &Path) -> Option<PathBuf> {
    if let Ok(c) = p.canonicalize() {
        return Some(c);
    }
    let name = p.file_name()?;
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    dir.canonicalize().ok().map(|d| d.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_to_the_policy_in_force_lands_on_it() {
        let tmp = tempfile::tempdir().unwrap();
        let policy = tmp.path().join("policy.toml");
        std::fs::write(&policy, "x").unwrap();
        let link = tmp.path().join("new.toml");
        std::os::unix::fs::symlink("policy.toml", &link).unwrap();
        assert!(lands_on(&link, &policy));
        assert!(lands_on(&tmp.path().join(".").join("policy.toml"), &policy));
        assert!(!lands_on(&tmp.path().join("other.toml"), &policy));
        // The place of a policy in force not written yet is refused too.
        let missing = tmp.path().join("sub");
        std::fs::create_dir(&missing).unwrap();
        assert!(lands_on(&missing.join("..").join("policy2.toml"), &tmp.path().join("policy2.toml")));
    }
}
