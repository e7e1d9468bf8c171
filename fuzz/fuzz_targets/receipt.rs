//! Arbitrary text as a member's receipt (`consentry ledger verify-receipt`, the Python package, a member's app):
//! `AnyReceipt::verify_json` with the fixture ledger's key never panics; a receipt that verifies, written
//! back out, verifies again to the same receipt; and any receipt that parses round-trips through its writer.
#![no_main]

use consentry_ledger::PublicKey;
use consentry_ledger::receipt::{AnyReceipt, FactsReceipt, Receipt};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static KEY: LazyLock<PublicKey> = LazyLock::new(|| {
    PublicKey::from_hex(include_str!("../../crates/consentry/tests/fixtures/datadir-v1/ledger.pub").trim())
        .expect("the fixture's public key")
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match AnyReceipt::verify_json(text, &KEY) {
        Ok(r) => {
            let again = serde_json::to_string(&r).expect("a receipt serialises");
            let r2 = AnyReceipt::verify_json(&again, &KEY).expect("a verified receipt, written back, verifies");
            assert_eq!(r, r2);
        }
        Err(e) => {
            let _ = (e.check(), e.reason(), e.to_string());
        }
    }
    // Parse → write → parse, without the canonical-form check or the signatures.
    if let Ok(r) = serde_json::from_str::<Receipt>(text) {
        let out = serde_json::to_string(&r).expect("serialises");
        assert_eq!(r, serde_json::from_str::<Receipt>(&out).expect("its own output parses"));
        let _ = r.verify(&KEY);
        let _ = r.event.leaf_hash();
    }
    if let Ok(r) = serde_json::from_str::<FactsReceipt>(text) {
        let out = serde_json::to_string(&r).expect("serialises");
        assert_eq!(r, serde_json::from_str::<FactsReceipt>(&out).expect("its own output parses"));
        let _ = r.verify(&KEY);
        let _ = r.facts.leaf_hash();
    }
});
