//! Arbitrary text as a policy TOML (`consentry policy check`, `--policy FILE`, the data directory's policy.toml):
//! parsing and every diagnostic it renders never panic, compiling is deterministic, and a compiled policy
//! evaluates every purpose in every jurisdiction without panicking, at the extremes of time too.
#![no_main]

use chrono::NaiveDate;
use consentry_policy::{Action, ConsentEvent, MemberFacts, Policy, Source, render_diagnostics};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Policy::check("fuzz.toml", text) {
        Err(e) => {
            // What `consentry policy check` prints: miette's report with every span into the text.
            let _ = e.render(false);
            let _ = e.render(true);
            let _ = e.to_string();
        }
        Ok((policy, warnings)) => {
            let _ = render_diagnostics("fuzz.toml", text, &warnings, false);
            let json = serde_json::to_string(&policy).expect("a compiled policy serialises");
            let (again, _) = Policy::check("fuzz.toml", text).expect("the same text compiles twice");
            assert_eq!(json, serde_json::to_string(&again).expect("serialises"), "compiling is deterministic");
            exercise(&policy);
        }
    }
});

/// Evaluates every purpose for a member of every jurisdiction, with a grant under each notice version.
fn exercise(policy: &Policy) {
    let births = [NaiveDate::MIN, NaiveDate::from_ymd_opt(2000, 2, 29).expect("a date"), NaiveDate::MAX];
    let times = [i64::MIN, -1, 0, 1_800_000_000, i64::MAX];
    for (j, jur) in policy.jurisdictions.iter().enumerate() {
        let _ = policy.resolve_jurisdiction(&jur.key);
        for id in policy.purpose_ids() {
            let p = policy.purpose(id);
            let _ = p.allows_category("user.content.private");
            let events: Vec<ConsentEvent> = p
                .notices
                .iter()
                .map(|n| ConsentEvent {
                    at: n.effective,
                    action: Action::Grant,
                    notice_version: n.version,
                    source: Source::Ui,
                })
                .chain([ConsentEvent { at: 0, action: Action::Withdraw, notice_version: 0, source: Source::Gpc }])
                .collect();
            for birth_date in births {
                let member = MemberFacts { jurisdiction: consentry_policy::JurisdictionId(j as u16), birth_date };
                for at in times {
                    let _ = policy.evaluate(id, &member, &events, at);
                    let _ = policy.next_change(id, &member, &events, at);
                }
            }
        }
    }
}
