//! Arbitrary bytes through the detector and the stream redactor: no panic, spans on char boundaries, sorted and
//! disjoint, redaction is valid UTF-8 and streaming agrees with whole-text redaction.
#![no_main]

use consentry_redact::{Detector, StreamRedactor};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static DETECTOR: LazyLock<Detector> = LazyLock::new(|| {
    Detector::builder().member_names(["Aoife Kowalczyk", "Pieter van der Berg"]).build().expect("detector builds")
});

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let spans = DETECTOR.detect(&text);
    let mut prev = 0;
    for s in &spans {
        assert!(s.start < s.end && s.end <= text.len());
        assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end));
        assert!(s.start >= prev, "overlapping spans");
        prev = s.end;
    }
    let whole = DETECTOR.redact(&text);
    let mut stream = StreamRedactor::new(&DETECTOR, Vec::new());
    let split = data.len() / 2;
    match (stream.write_bytes(&data[..split]), std::str::from_utf8(data)) {
        (Ok(()), Ok(_)) => {
            stream.write_bytes(&data[split..]).expect("valid UTF-8 is accepted");
            let out = stream.finish().expect("valid UTF-8 finishes");
            let out = String::from_utf8(out).expect("output is UTF-8");
            assert_eq!(out, whole);
        }
        (_, Err(_)) => {}
        (Err(e), Ok(_)) => panic!("valid UTF-8 rejected: {e}"),
    }
});
