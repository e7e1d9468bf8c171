//! Reading a directory tree without following symbolic links: the one walker and opener every reader of
//! datasets, evidence bundles and model directories uses. A link inside such a directory could point outside it
//! (the audit would read the host's files) or back up the tree (a walk would never end), so a link anywhere
//! below the root is refused with an error naming it. The root itself is taken as given.

use crate::GateError;
use std::path::{Component, Path, PathBuf};

/// The error for a symbolic link found at `path`.
fn link(path: &Path) -> GateError {
    GateError::Link { path: path.to_path_buf() }
}

/// True when `rel` is a plain relative path (no `..`, no root, no drive, no backslash): it cannot leave its root.
pub fn is_plain_relative(rel: &str) -> bool {
    !rel.is_empty() && !rel.contains('\\') && Path::new(rel).components().all(|c| matches!(c, Component::Normal(_)))
}

/// `root/rel`, after checking that `rel` stays inside `root` and that no component below `root` is a symbolic
/// link; a component that does not exist ends the check (opening it then fails as usual, naming the path).
pub fn inside(root: &Path, rel: &str) -> Result<PathBuf, GateError> {
    if !is_plain_relative(rel) {
        return Err(GateError::Invalid(format!(
            "`{rel}` is not a path inside {}: names in manifests and model files must be plain relative paths",
            root.display()
        )));
    }
    let mut p = root.to_path_buf();
    for c in Path::new(rel).components() {
        p.push(c);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => return Err(link(&p)),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    Ok(p)
}

/// Reads `root/rel` (see [`inside`]).
pub fn read_inside(root: &Path, rel: &str) -> Result<Vec<u8>, GateError> {
    let p = inside(root, rel)?;
    std::fs::read(&p).map_err(|e| GateError::io(&p, e))
}

/// BLAKE3 (hex) and size of `root/rel`, streamed (see [`inside`]).
pub fn hash_inside(root: &Path, rel: &str) -> Result<(String, u64), GateError> {
    crate::hash_file(&inside(root, rel)?)
}

/// Every regular file under `root`, as `/`-separated paths relative to it, sorted. Never follows a link: a
/// symbolic link anywhere in the tree is an error naming it, so a walk can neither leave `root` nor loop.
pub fn walk_files(root: &Path) -> Result<Vec<String>, GateError> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(|e| GateError::io(&d, e))? {
            let e = e.map_err(|e| GateError::io(&d, e))?;
            let p = e.path();
            // `file_type` of a directory entry describes the entry itself, never a link's target.
            let t = e.file_type().map_err(|e| GateError::io(&p, e))?;
            if t.is_symlink() {
                return Err(link(&p));
            }
            if t.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(root) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_refused_and_loops_end() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/f"), b"x").unwrap();
        std::fs::write(root.join("g"), b"y").unwrap();
        assert_eq!(walk_files(&root).unwrap(), vec!["a/b/f".to_string(), "g".to_string()]);
        assert_eq!(read_inside(&root, "a/b/f").unwrap(), b"x");

        // Two links forming a loop: the walk stops at the first, naming it.
        std::os::unix::fs::symlink(root.join("l2"), root.join("a/l1")).unwrap();
        std::os::unix::fs::symlink(root.join("a/l1"), root.join("l2")).unwrap();
        let e = walk_files(&root).unwrap_err();
        assert!(matches!(&e, GateError::Link { path } if path.ends_with("l1") || path.ends_with("l2")), "{e}");
        assert!(e.to_string().contains("symbolic link"), "{e}");

        // A link to a directory outside the root, as a directory component or a file.
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("out")).unwrap();
        assert!(matches!(read_inside(&root, "out/secret"), Err(GateError::Link { .. })));
        std::os::unix::fs::symlink(outside.join("secret"), root.join("a/s")).unwrap();
        assert!(matches!(hash_inside(&root, "a/s"), Err(GateError::Link { .. })));
        assert!(matches!(inside(&root, "../outside/secret"), Err(GateError::Invalid(_))));
        assert!(matches!(inside(&root, "/etc/passwd"), Err(GateError::Invalid(_))));
    }
}
