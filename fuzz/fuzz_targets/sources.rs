//! Arbitrary text as a source declaration (`consentry gate --sources FILE`): parsing and checking against the
//! shipped policy never panic, and a declaration that parses is the same when parsed again.
#![no_main]

use consentry_gate::Sources;
use consentry_policy::Policy;
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::LazyLock;

static POLICY: LazyLock<Policy> = LazyLock::new(Policy::default_policy);

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Sources::parse("fuzz.toml", text, Path::new("/fuzz/base")) {
        Err(e) => {
            let _ = e.to_string();
        }
        Ok(s) => {
            let again = Sources::parse("fuzz.toml", text, Path::new("/fuzz/base")).expect("parses twice");
            assert_eq!(s, again, "parsing is deterministic");
            for t in &s.tables {
                assert!(t.path.starts_with("/fuzz/base") || Path::new(&t.path).is_absolute());
            }
            if let Err(e) = s.check_policy(&POLICY) {
                let _ = e.to_string();
            }
        }
    }
});
