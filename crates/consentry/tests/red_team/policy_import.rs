//! A careless or hostile operator bringing a Fides manifest back: the policy in force is never overwritten (by
//! its path, a link to it or a detour through `..`), a link elsewhere is followed or refused as every `--out` is,
//! and the exact text export keeps in the manifest cannot smuggle in a policy the manifest does not say.

use crate::common::{consentry, text};
use consentry_app::DataDir;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// A data directory with the default policy in force, and the exported manifest beside it.
fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(DataDir::new(&data).policy_file(), consentry_policy::DEFAULT_POLICY).unwrap();
    let manifest = dir.path().join("fides.json");
    let out = consentry(&data, &["policy", "export", "--format", "fideslang", "--out", manifest.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    (dir, data, manifest)
}

fn import(data: &Path, manifest: &Path, out: &Path, global: &[&str]) -> std::process::Output {
    let mut args: Vec<&str> = global.to_vec();
    args.extend([
        "policy",
        "import",
        "--from",
        "fideslang",
        manifest.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    consentry(data, &args)
}

#[test]
fn the_policy_in_force_is_never_the_output() {
    let (dir, data, manifest) = setup();
    let in_force = DataDir::new(&data).policy_file();
    // An edit, so the import would write something different from what is in force.
    let mut m: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    m["system"][0]["privacy_declarations"][0]["name"] = json!("Renamed");
    std::fs::write(&manifest, serde_json::to_vec(&m).unwrap()).unwrap();
    let link = dir.path().join("new.toml");
    std::os::unix::fs::symlink(&in_force, &link).unwrap();
    let detour = data.join("..").join("data").join(in_force.file_name().unwrap());
    for out in [in_force.clone(), link.clone(), detour] {
        let o = import(&data, &manifest, &out, &[]);
        assert_eq!(o.status.code(), Some(2), "{}: {}", out.display(), text(&o.stderr));
        assert!(text(&o.stderr).contains("is the policy in force"), "{}", text(&o.stderr));
        assert_eq!(std::fs::read_to_string(&in_force).unwrap(), consentry_policy::DEFAULT_POLICY);
    }
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link is left alone");
}

#[test]
fn a_link_elsewhere_is_followed_or_refused_as_every_output() {
    let (dir, data, manifest) = setup();
    let target = dir.path().join("target.toml");
    let link = dir.path().join("link.toml");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let o = import(&data, &manifest, &link, &["--no-follow"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("symbolic link"), "{}", text(&o.stderr));
    assert!(!target.exists());
    let o = import(&data, &manifest, &link, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), consentry_policy::DEFAULT_POLICY);
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
}

#[test]
fn the_kept_text_cannot_smuggle_in_another_policy() {
    let (dir, data, manifest) = setup();
    let mut m: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    // The kept text says opt-out for job recommendations in the US; the manifest's facts still say opt-in.
    let smuggled = consentry_policy::DEFAULT_POLICY.replace(
        "[jurisdictions.US]\ndefault = \"opt_in\"",
        "[jurisdictions.US]\ndefault = \"opt_in\"\npurposes = { \"train_ai_system.job_recommendations\" = \"opt_out\" }",
    );
    let default = consentry_policy::Policy::default_policy();
    let sp = consentry_policy::Policy::from_toml("smuggled.toml", &smuggled).unwrap();
    assert!(!consentry_policy::fideslang::same_content(&sp, &default), "the smuggled text says something else");
    m["system"][0]["meta"]["consentry"]["policy_toml"] = json!(smuggled);
    std::fs::write(&manifest, serde_json::to_vec(&m).unwrap()).unwrap();
    let out = dir.path().join("new.toml");
    let o = import(&data, &manifest, &out, &["--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["unchanged"], false);
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(!written.contains("opt_out"), "{written}");
    let p = consentry_policy::Policy::from_toml("new.toml", &written).unwrap();
    assert!(consentry_policy::fideslang::same_content(&p, &default));
}
