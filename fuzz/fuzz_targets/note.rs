//! Arbitrary text as a C2SP signed note, what a witness (`consentry witness cosign`, `POST
//! /v1/log/cosignatures`) and a note verifier read from a log they do not trust: parsing never panics; a note,
//! a checkpoint, a verifier key or a cosignature line that parses is written back to text that parses to the
//! same value; and the witness's one door (`Witness::accept`, with and without a proof and key hand-overs)
//! refuses or accepts without panicking, changing its state only on acceptance.
#![no_main]

use consentry_ledger::note::{Checkpoint, Cosignature, Note, NoteSignature, VerifierKey};
use consentry_ledger::witness::{Witness, WitnessKey, default_origin, log_verifier_key};
use consentry_ledger::{KeyHandover, PublicKey};
use libfuzzer_sys::fuzz_target;
use std::sync::{LazyLock, Mutex};

static LOG_KEY: LazyLock<PublicKey> = LazyLock::new(|| {
    PublicKey::from_hex(include_str!("../../crates/consentry/tests/fixtures/datadir-v1/ledger.pub").trim())
        .expect("the fixture's public key")
});

/// The fixture ledger's default origin (what `consentry witness checkpoint` on it prints first).
static ORIGIN: LazyLock<String> = LazyLock::new(|| default_origin(&LOG_KEY.log_id()));

/// A fresh witness in a temporary directory that watches the fixture log and has cosigned nothing yet.
fn fresh_witness() -> (tempfile::TempDir, Witness) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let key = WitnessKey::from_seed("fuzz.example/w", [7; 32]).expect("a witness key");
    let mut w = Witness::init_with(dir.path(), key).expect("a witness");
    w.add_log(&ORIGIN, &LOG_KEY).expect("the log is watched");
    (dir, w)
}

/// The witness every input meets: back to fresh after an input it accepted, so each input sees the same state.
static WITNESS: LazyLock<Mutex<(tempfile::TempDir, Witness)>> = LazyLock::new(|| Mutex::new(fresh_witness()));

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(note) = Note::parse(text) {
        let again = Note::parse(&note.encode()).expect("a parsed note, written back, parses");
        assert_eq!(again, note);
        let vkey = log_verifier_key(&ORIGIN, &LOG_KEY).expect("the log's verifier key");
        let _ = note.verify_ed25519(&vkey);
        if let Ok(cp) = Checkpoint::parse(note.text()) {
            assert_eq!(Checkpoint::parse(&cp.body()).expect("a checkpoint's body parses"), cp);
        }
        for sig in note.signatures() {
            assert_eq!(&NoteSignature::parse_line(sig.line().trim_end_matches('\n')).expect("its own line"), sig);
            if let Ok(c) = Cosignature::from_signature(sig) {
                let _ = c.verify(&vkey, note.text());
            }
        }
    }
    for line in text.lines().take(16) {
        if let Ok(k) = VerifierKey::parse(line) {
            assert_eq!(VerifierKey::parse(&k.encode()).expect("a verifier key, written back, parses"), k);
        }
        if let Ok(c) = Cosignature::parse_line(line) {
            assert_eq!(Cosignature::parse_line(c.line().trim_end_matches('\n')).expect("its own line"), c);
        }
    }
    // The witness's door: the text (up to a line `=====`) as a note, what follows as the log's key hand-overs
    // (JSON), and the first 128 bytes as a consistency proof.
    let (note, handovers) = match text.split_once("\n=====\n") {
        Some((n, h)) => (format!("{n}\n"), serde_json::from_str::<Vec<KeyHandover>>(h).unwrap_or_default()),
        None => (text.to_string(), Vec::new()),
    };
    let proof: Vec<[u8; 32]> = data.chunks_exact(32).take(4).map(|c| c.try_into().expect("32 bytes")).collect();
    let Ok(mut guard) = WITNESS.lock() else { return };
    let before = guard.1.state().clone();
    match guard.1.accept(&note, &proof, &handovers, 1) {
        Ok(a) => {
            assert!(a.tree_size >= before.logs[ORIGIN.as_str()].tree_size);
            *guard = fresh_witness();
        }
        Err(e) => {
            let _ = (e.check(), e.is_refusal(), e.to_string());
            assert_eq!(guard.1.state(), &before, "a refusal changes nothing");
        }
    }
});
