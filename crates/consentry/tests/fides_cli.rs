//! `consentry policy export --format fideslang` and `policy import --from fideslang`, run for real: the round trip,
//! and malformed manifests refused with where and what, writing nothing.

mod common;

use common::{consentry, text};
use serde_json::{Value, json};
use std::path::Path;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The default policy's manifest, parsed.
fn manifest(data: &Path) -> Value {
    let out = consentry(data, &["policy", "export", "--format", "fideslang"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Imports `m` into `dir/new.toml`; the exit code and standard error.
fn import(dir: &Path, m: &Value, extra: &[&str]) -> (Option<i32>, String) {
    let file = dir.join("m.json");
    std::fs::write(&file, serde_json::to_vec_pretty(m).unwrap()).unwrap();
    import_file(dir, &file, extra)
}

fn import_file(dir: &Path, file: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let out_path = dir.join("new.toml");
    let mut args = vec!["policy", "import", "--from", "fideslang", s(file), "--out", s(&out_path)];
    args.extend_from_slice(extra);
    let out = consentry(&dir.join("data"), &args);
    (out.status.code(), text(&out.stderr))
}

/// Asserts a refusal: exit 2, the message holds every needle, and nothing was written.
fn refused(dir: &Path, m: &Value, extra: &[&str], needles: &[&str]) {
    let (code, err) = import(dir, m, extra);
    assert_eq!(code, Some(2), "{err}");
    for n in needles {
        assert!(err.contains(n), "`{n}` missing from: {err}");
    }
    assert!(!dir.join("new.toml").exists(), "nothing is written on error");
}

#[test]
fn export_then_import_gives_back_the_policy_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let yml = dir.path().join("consentry.yml");
    let out = consentry(&data, &["policy", "export", "--format", "fideslang", "--out", s(&yml)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let (code, err) = import_file(dir.path(), &yml, &[]);
    assert_eq!(code, Some(0), "{err}");
    let back = std::fs::read_to_string(dir.path().join("new.toml")).unwrap();
    assert_eq!(back, consentry_policy::DEFAULT_POLICY);
    let check = consentry(&data, &["--json", "policy", "check", s(&dir.path().join("new.toml"))]);
    let v: Value = serde_json::from_slice(&check.stdout).unwrap();
    assert_eq!(v["hash"].as_str().unwrap(), consentry_policy::Policy::default_policy().hash);
}

#[test]
fn an_edited_declaration_arrives_in_a_policy_that_checks() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut m = manifest(&data);
    let decl = m["system"][0]["privacy_declarations"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|d| d["data_use"] == "train_ai_system.content_suggestions")
        .unwrap();
    decl["name"] = json!("Feed suggestions");
    decl["data_categories"].as_array_mut().unwrap().retain(|c| c != "user.location.imprecise");
    let out = consentry(
        &data,
        &[
            "--json",
            "policy",
            "import",
            "--from",
            "fideslang",
            s(&write(dir.path(), &m)),
            "--out",
            s(&dir.path().join("new.toml")),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["unchanged"], false);
    assert_eq!(r["purposes"], 3);
    let shown = consentry(&data, &["--json", "policy", "show", s(&dir.path().join("new.toml"))]);
    let p: Value = serde_json::from_slice(&shown.stdout).unwrap();
    let feed =
        p["purposes"].as_array().unwrap().iter().find(|p| p["key"] == "train_ai_system.content_suggestions").unwrap();
    assert_eq!(feed["name"], "Feed suggestions");
    assert!(!feed["categories"].as_array().unwrap().contains(&json!("user.location.imprecise")));
    assert_eq!(feed["notices"][0]["version"], 1, "the notice came back from meta.consentry");
}

fn write(dir: &Path, m: &Value) -> std::path::PathBuf {
    let file = dir.join("edited.json");
    std::fs::write(&file, serde_json::to_vec(m).unwrap()).unwrap();
    file
}

#[test]
fn malformed_manifests_are_refused_naming_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(&dir.path().join("data"));

    let mut none = m.clone();
    none["system"] = json!([]);
    refused(dir.path(), &none, &[], &["system: the manifest declares no system"]);

    let mut two = m.clone();
    let mut other = m["system"][0].clone();
    other["fides_key"] = json!("other_system");
    two["system"].as_array_mut().unwrap().push(other);
    refused(dir.path(), &two, &[], &["2 systems", "other_system", "--system KEY"]);
    refused(dir.path(), &two, &["--system", "nope"], &["no system has fides_key `nope`"]);
    let (code, err) = import(dir.path(), &two, &["--system", "other_system"]);
    assert_eq!(code, Some(0), "{err}");
    std::fs::remove_file(dir.path().join("new.toml")).unwrap();

    let mut unknown = m.clone();
    unknown["system"][0]["privacy_declarations"][0]["data_categories"][1] = json!("user.profesional.industry");
    refused(
        dir.path(),
        &unknown,
        &[],
        &[
            "system[0].privacy_declarations[0] (`",
            ".data_categories[1]: `user.profesional.industry`",
            "did you mean `user.professional.industry`?",
        ],
    );

    let mut bare = m.clone();
    bare["system"][0]["privacy_declarations"][0]["data_use"] = json!("train_ai_system");
    refused(dir.path(), &bare, &[], &[".data_use: `train_ai_system` itself names no feature"]);

    // A data use outside AI training is skipped with a note, not an error.
    let mut ads = m.clone();
    ads["system"][0]["privacy_declarations"].as_array_mut().unwrap().push(json!(
        {"name": "Ads", "data_use": "marketing.advertising", "data_categories": ["user.name"], "data_subjects": ["customer"]}
    ));
    let (code, err) = import(dir.path(), &ads, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("note: skipped system[0].privacy_declarations[3] (`Ads`): data use `marketing.advertising`"),
        "{err}"
    );
    std::fs::remove_file(dir.path().join("new.toml")).unwrap();

    // A broken meta.consentry names its field; an opt-out over private messages fails the policy check.
    let mut meta = m.clone();
    meta["system"][0]["meta"]["consentry"]["jurisdictions"]["GB"]["purposes"] =
        json!({"train_ai_system.reply_suggestions": "opt_out"});
    refused(dir.path(), &meta, &[], &["fails `consentry policy check`", "policy::sensitive-opt-out"]);
    let mut meta = m.clone();
    meta["system"][0]["meta"]["consentry"]["purposes"]["train_ai_system.reply_suggestions"]["notices"][0]["effective"] =
        json!("yesterday");
    refused(
        dir.path(),
        &meta,
        &[],
        &["meta.consentry.purposes.\"train_ai_system.reply_suggestions\".notices[0].effective"],
    );
}

#[test]
fn invalid_json_and_yaml_name_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\n  \"system\": [\n    {\"fides_key\": \"a\",}\n  ]\n}\n").unwrap();
    let (code, err) = import_file(dir.path(), &bad, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("bad.json:3:23: not a JSON manifest"), "{err}");
    let yml = dir.path().join("fides.yml");
    std::fs::write(&yml, "system:\n- fides_key: consentry\n  privacy_declarations: []\n").unwrap();
    let (code, err) = import_file(dir.path(), &yml, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("fides.yml:1:1") && err.contains("yq -o json"), "{err}");
    assert!(!dir.path().join("new.toml").exists());
    let (code, err) = import_file(dir.path(), &dir.path().join("missing.json"), &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot read the Fides manifest"), "{err}");
}

#[test]
fn a_manifest_without_consentry_facts_takes_them_from_the_base() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = manifest(&dir.path().join("data"));
    m["system"][0].as_object_mut().unwrap().remove("meta");
    let (code, err) =
        import(dir.path(), &m, &["--base", concat!(env!("CARGO_MANIFEST_DIR"), "/../../policy/default.toml")]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("come from the base policy"), "{err}");
    std::fs::remove_file(dir.path().join("new.toml")).unwrap();
    // A purpose the base does not know has no notice: the error says how to supply one.
    m["system"][0]["privacy_declarations"][0]["data_use"] = json!("train_ai_system.talent_search");
    m["data_use"]
        .as_array_mut()
        .unwrap()
        .push(json!({"fides_key": "train_ai_system.talent_search", "parent_key": "train_ai_system"}));
    refused(dir.path(), &m, &[], &["purpose `train_ai_system.talent_search` has no notice", "--base"]);
}
