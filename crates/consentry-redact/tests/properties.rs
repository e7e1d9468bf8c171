//! Properties of the detector on arbitrary input: never panics, spans lie on char boundaries and never overlap,
//! redaction stays valid UTF-8 and keeps no detected value, streaming equals whole-text redaction.

use consentry_redact::{Detector, Numbering, StreamRedactor, redact, redact_with};
use proptest::prelude::*;
use std::sync::LazyLock;

static DETECTOR: LazyLock<Detector> = LazyLock::new(|| {
    Detector::builder()
        .member_names(["Aoife Kowalczyk", "Pieter van der Berg", "José García"])
        .build()
        .unwrap_or_else(|e| panic!("detector: {e}"))
});

/// Text that looks like messages: PII-like fragments glued with arbitrary strings.
fn messy() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        any::<String>(),
        Just("Hi Aoife, ".to_string()),
        Just("+44 (0)20 7946 0958".to_string()),
        Just("4111 1111 1111 1111".to_string()),
        Just("DE89 3704 0044 0532 0130 00".to_string()),
        Just("zoë@example.com".to_string()),
        Just("https://x.com/a(b)c".to_string()),
        Just("221B Baker Street, London NW1 6XE".to_string()),
        Just("fe80::1".to_string()),
        Just("Dr. van der Berg".to_string()),
        Just("123-45-6789".to_string()),
        Just("こんにちは、".to_string()),
        "[ \\n,.:@/()+0-9A-Za-zé]{0,40}",
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn spans_are_sound(text in messy()) {
        let spans = DETECTOR.detect(&text);
        let mut prev_end = 0;
        for s in &spans {
            prop_assert!(s.start < s.end && s.end <= text.len());
            prop_assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end));
            prop_assert!(s.start >= prev_end, "overlap or unsorted: {spans:?}");
            prop_assert!((0.0..=1.0).contains(&s.score));
            prev_end = s.end;
        }
        let out = redact(&text, &spans);
        // `out` is a String, so valid UTF-8 by construction; no detected value survives outside placeholders.
        let mut rest = out.as_str();
        let mut kept = String::new();
        while let Some(open) = rest.find('<') {
            kept.push_str(&rest[..open]);
            match rest[open..].find('>') {
                Some(close) => rest = &rest[open + close + 1..],
                None => { kept.push_str(&rest[open..]); rest = ""; }
            }
        }
        kept.push_str(rest);
        for s in &spans {
            let value = &text[s.start..s.end];
            if value.chars().count() >= 6 && !text.replacen(value, "", 1).contains(value) {
                prop_assert!(!kept.contains(value), "{value:?} survived in {out:?}");
            }
        }
        let mut n = Numbering::new();
        let numbered = redact_with(&text, &spans, &mut n);
        prop_assert_eq!(numbered.matches('<').count(), out.matches('<').count());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = DETECTOR.candidates(&text);
        let mut s = StreamRedactor::new(&DETECTOR, Vec::new());
        if s.write_bytes(&bytes).is_ok() {
            let _ = s.finish();
        }
    }

    #[test]
    fn streaming_equals_whole_text(text in messy(), cut in 1usize..64) {
        let lines = format!("{text}\n").repeat(3);
        let mut s = StreamRedactor::new(&DETECTOR, Vec::new());
        for chunk in lines.as_bytes().chunks(cut) {
            prop_assert!(s.write_bytes(chunk).is_ok());
        }
        let out = s.finish().map(|v| String::from_utf8(v).unwrap_or_default()).unwrap_or_default();
        prop_assert_eq!(out, DETECTOR.redact(&lines));
    }
}

#[test]
fn detector_is_shared_across_threads() {
    let text = "Hi Aoife, mail me at a.k@example.com or call +353 1 234 5678.";
    let expected = DETECTOR.redact(text);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| assert_eq!(DETECTOR.redact(text), expected));
        }
    });
}
