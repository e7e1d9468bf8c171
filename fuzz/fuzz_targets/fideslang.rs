//! `consentry policy import --from fideslang FILE` and `policy export --format fideslang`: arbitrary bytes as a Fides
//! manifest, imported over the shipped default policy: no panic, every error renders, and an accepted manifest gives
//! policy text that passes `Policy::check` with the same content. The same bytes as a policy TOML (the seeds hold the
//! default policy, so this is the default policy as the fuzzer edits it): a policy that compiles exports to a
//! manifest that imports back to the same content — unchanged, with the exact text, and, without the stored text,
//! rendered in Consentry's own layout, which renders to itself.
#![no_main]

use consentry_policy::fideslang::{META_KEY, export, import, render_policy, same_content};
use consentry_policy::{DEFAULT_POLICY, Policy};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static BASE: LazyLock<Policy> =
    LazyLock::new(|| Policy::from_toml("policy/default.toml", DEFAULT_POLICY).expect("the default policy"));

/// Export → import of `policy` (whose text is `text`) gives it back.
fn round_trip(policy: &Policy, text: &str) {
    let manifest = export(policy, text);
    let json = serde_json::to_string_pretty(&manifest).expect("a manifest serialises");
    let back = match import("export.json", &json, None, &BASE) {
        Ok(b) => b,
        Err(e) => panic!("an exported policy does not import back: {e}\n--- policy\n{text}"),
    };
    assert!(same_content(&back.policy, policy), "export → import changed the policy\n--- policy\n{text}");
    assert!(back.unchanged, "an unchanged export is not recognised as unchanged: {:?}", back.notes);
    assert_eq!(back.toml, text, "an unchanged export does not give its exact text back");
    // Without the stored text: the policy rendered in Consentry's layout says the same, and renders to itself.
    let mut manifest = manifest;
    manifest["system"][0]["meta"][META_KEY]["policy_toml"] = serde_json::Value::Null;
    let json = serde_json::to_string(&manifest).expect("a manifest serialises");
    let rendered = match import("export.json", &json, None, &BASE) {
        Ok(b) => b,
        Err(e) => panic!("an export without its text does not import back: {e}\n--- policy\n{text}"),
    };
    assert!(!rendered.unchanged);
    assert!(
        same_content(&rendered.policy, policy),
        "export → import (rendered) changed the policy\n--- policy\n{text}\n--- rendered\n{}",
        rendered.toml
    );
    assert_eq!(render_policy(&rendered.policy), rendered.toml, "rendering is not stable");
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match import("fuzz.json", text, None, &BASE) {
        Err(e) => {
            let _ = e.to_string();
        }
        Ok(imported) => {
            let (policy, _) = match Policy::check("imported.toml", &imported.toml) {
                Ok(p) => p,
                Err(e) => panic!("an imported policy fails `policy check`: {e}\n--- policy\n{}", imported.toml),
            };
            assert!(same_content(&policy, &imported.policy), "the imported text says something else");
            // The system chosen by its key gives the same policy.
            let again =
                import("fuzz.json", text, Some(imported.system.as_str()), &BASE).expect("the same system, by its key");
            assert_eq!(again.toml, imported.toml);
            round_trip(&imported.policy, &imported.toml);
        }
    }
    if let Ok((policy, _)) = Policy::check("fuzz.toml", text) {
        round_trip(&policy, text);
    }
});
