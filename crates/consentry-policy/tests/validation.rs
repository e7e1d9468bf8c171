//! Every validation rule reports file, line, column and a hint.

use consentry_policy::{DEFAULT_POLICY, Policy, Severity};

/// Errors of `text`, as (code, line) pairs.
fn errors(text: &str) -> Vec<(&'static str, usize)> {
    match Policy::from_toml("p.toml", text) {
        Ok(_) => vec![],
        Err(e) => {
            for d in &e.diagnostics {
                assert!(d.hint.is_some() || d.code == "policy::too-many-purposes", "{} has no hint", d.code);
            }
            e.errors().map(|d| (d.code, d.line)).collect()
        }
    }
}

const HEAD: &str = "[policy]\nversion = \"1\"\ncontroller = \"C\"\n";

fn purpose(cats: &str) -> String {
    format!(
        "[purposes.\"train_ai_system.x\"]\nname = \"X\"\ncategories = [{cats}]\n\
         [[purposes.\"train_ai_system.x\".notices]]\nversion = 1\neffective = 2026-01-01\nmaterial = true\ntext = \"t\"\n"
    )
}

#[test]
fn syntax_error_names_line_and_column() {
    let text = format!("{HEAD}[categories.\"user.name\"\nsensitive = false\n");
    let e = Policy::from_toml("broken.toml", &text).unwrap_err();
    let d = &e.diagnostics[0];
    assert_eq!(d.code, "policy::syntax");
    assert_eq!(d.line, 4);
    assert!(d.column > 1);
    let rendered = e.render(false);
    assert!(rendered.contains("broken.toml:4:"), "{rendered}");
    assert!(e.to_string().contains("line 4"), "{e}");
}

#[test]
fn duplicate_keys_are_reported() {
    let text = format!("{HEAD}[categories.\"user.name\"]\nsensitive = false\nsensitive = true\n");
    assert_eq!(errors(&text), vec![("policy::syntax", 6)]);
}

#[test]
fn unknown_category_suggests_the_near_one() {
    let text = format!("{HEAD}[categories.\"user.name\"]\n{}", purpose("\"user.nmae\""));
    let e = Policy::from_toml("p.toml", &text).unwrap_err();
    let d = e.errors().next().unwrap();
    assert_eq!((d.code, d.line), ("policy::unknown-category", 7));
    assert_eq!(d.hint.as_deref(), Some("did you mean `user.name`?"));
}

#[test]
fn notice_versions_must_increase() {
    let text = format!(
        "{HEAD}[categories.\"user.name\"]\n{}[[purposes.\"train_ai_system.x\".notices]]\nversion = 1\neffective = 2026-02-01\ntext = \"again\"\n",
        purpose("\"user.name\"")
    );
    assert_eq!(errors(&text), vec![("policy::notice-order", 14)]);
}

#[test]
fn notice_effective_dates_must_not_go_back() {
    let text = format!(
        "{HEAD}[categories.\"user.name\"]\n{}[[purposes.\"train_ai_system.x\".notices]]\nversion = 2\neffective = 2025-02-01\ntext = \"older\"\n",
        purpose("\"user.name\"")
    );
    assert_eq!(errors(&text), vec![("policy::notice-order", 15)]);
}

#[test]
fn local_times_need_an_offset() {
    let text = format!("{HEAD}[categories.\"user.name\"]\n{}", purpose("\"user.name\""))
        .replace("2026-01-01", "2026-01-01T10:00:00");
    assert_eq!(errors(&text), vec![("policy::notice-effective", 10)]);
}

#[test]
fn sensitive_category_cannot_default_to_opt_out() {
    let text = format!(
        "{HEAD}[categories.\"user.content.private\"]\nsensitive = true\n{}[jurisdictions.US]\ndefault = \"opt_out\"\n",
        purpose("\"user.content.private\"")
    );
    assert_eq!(errors(&text), vec![("policy::sensitive-opt-out", 15)]);
}

#[test]
fn private_messages_must_be_sensitive() {
    let text = format!(
        "{HEAD}[categories.\"user.content.private\"]\nsensitive = false\n{}",
        purpose("\"user.content.private\"")
    );
    assert_eq!(errors(&text), vec![("policy::private-not-sensitive", 4)]);
}

#[test]
fn purposes_live_under_train_ai_system() {
    let text = format!("{HEAD}[categories.\"user.name\"]\n{}", purpose("\"user.name\""))
        .replace("train_ai_system.x", "marketing.x");
    assert_eq!(errors(&text), vec![("policy::purpose-key", 5)]);
}

#[test]
fn jurisdiction_codes_are_checked() {
    let text =
        format!("{HEAD}[categories.\"user.name\"]\n{}[jurisdictions.UK]\nmin_age = 16\n", purpose("\"user.name\""));
    let e = Policy::from_toml("p.toml", &text).unwrap_err();
    let codes: Vec<_> = e.errors().map(|d| (d.code, d.line)).collect();
    assert_eq!(codes, vec![("policy::jurisdiction-key", 13), ("policy::min-age", 14)]);
}

#[test]
fn groups_must_not_overlap_with_rules_on_both() {
    let text = format!(
        "{HEAD}[categories.\"user.name\"]\n{}[groups]\nDACH = [\"DE\", \"AT\", \"CH\"]\nEEA = [\"DE\", \"AT\", \"FR\"]\n\
         [jurisdictions.DACH]\ndefault = \"opt_in\"\n[jurisdictions.EEA]\ndefault = \"opt_in\"\n",
        purpose("\"user.name\"")
    );
    let got = errors(&text);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.iter().all(|(c, _)| *c == "policy::group-overlap"));
}

#[test]
fn unknown_purpose_in_jurisdiction() {
    let text = format!(
        "{HEAD}[categories.\"user.name\"]\n{}[jurisdictions.FR]\npurposes = {{ \"train_ai_system.y\" = \"opt_in\" }}\n",
        purpose("\"user.name\"")
    );
    assert_eq!(errors(&text), vec![("policy::unknown-purpose", 14)]);
}

#[test]
fn unknown_fields_are_rejected() {
    let text = format!("{HEAD}[categories.\"user.name\"]\nsensitiv = true\n");
    assert_eq!(errors(&text), vec![("policy::syntax", 5)]);
}

#[test]
fn several_errors_are_all_reported() {
    let text = format!("{HEAD}[categories.\"User.Name\"]\n{}[jurisdictions.XX]\n", purpose("\"user.a\", \"user.b\""));
    let got = errors(&text);
    assert_eq!(got.len(), 4, "{got:?}");
}

#[test]
fn missing_default_jurisdiction_is_a_warning() {
    let text = format!("{HEAD}[categories.\"user.name\"]\n{}[jurisdictions.FR]\n", purpose("\"user.name\""));
    let (_, warnings) = Policy::check("p.toml", &text).unwrap();
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].severity, Severity::Warning);
}

#[test]
fn the_hash_changes_with_any_byte() {
    let a = Policy::from_toml("a", DEFAULT_POLICY).unwrap();
    let b = Policy::from_toml("b", &format!("{DEFAULT_POLICY}\n# a comment\n")).unwrap();
    assert_ne!(a.hash, b.hash);
}

#[test]
fn categories_are_personal_unless_the_policy_says_otherwise() {
    let p = Policy::from_toml("p.toml", DEFAULT_POLICY).unwrap();
    assert!(p.category("user.professional.skills").unwrap().personal);
    assert!(!p.category("system.catalog").unwrap().personal);
    let text = format!(
        "{HEAD}[categories.\"user.content.private\"]\nsensitive = true\npersonal = false\n{}",
        purpose("\"user.content.private\"")
    );
    assert_eq!(errors(&text), vec![("policy::sensitive-not-personal", 4)]);
    let text = format!("{HEAD}[categories.\"user.unique_id\"]\npersonal = false\n{}", purpose("\"user.unique_id\""));
    assert_eq!(errors(&text), vec![("policy::member-id-not-personal", 4)]);
}
