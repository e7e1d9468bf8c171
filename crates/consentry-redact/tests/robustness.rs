//! Detection on text the detector was not written against: European address conventions, postcode-last lines,
//! street corners, lower-case and chat-style text, names in lists and dialogue — and the precision traps that come
//! with them (ordinary lower-case words that are also names), plus hostile inputs that must stay linear.

use consentry_redact::{Detector, Kind};
use proptest::prelude::*;
use std::sync::LazyLock;

static DET: LazyLock<Detector> = LazyLock::new(|| Detector::new().unwrap_or_else(|e| panic!("detector: {e}")));

/// The detected values of one kind.
fn found(text: &str, kind: Kind) -> Vec<String> {
    DET.detect(text).into_iter().filter(|s| s.kind == kind).map(|s| text[s.start..s.end].to_string()).collect()
}

/// Asserts that `part` lies inside a detection of `kind`.
fn covered(text: &str, part: &str, kind: Kind) {
    let at = text.find(part).unwrap_or_else(|| panic!("{part:?} not in {text:?}"));
    let spans = DET.detect(text);
    assert!(
        spans.iter().any(|s| s.kind == kind && s.start <= at && at + part.len() <= s.end),
        "{part:?} not covered by a {kind} in {text:?}: {:?}",
        spans.iter().map(|s| (s.kind, &text[s.start..s.end])).collect::<Vec<_>>()
    );
}

#[test]
fn street_name_before_the_number_in_european_countries() {
    for (country, text, street) in [
        ("DE", "Please update the billing address with Kieler Strasse 90 for this card", "Kieler Strasse 90"),
        ("DE", "Please return to Heiligengeistbrücke 77 in case of an issue.", "Heiligengeistbrücke 77"),
        ("AT", "Our office: Lahof 26, 4020 Linz", "Lahof 26"),
        ("CH", "The parcel goes to Grossmatt 31, 2502 Biel/Bienne", "Grossmatt 31"),
        ("NL", "Joshua moved to Pierre Delannoyplaats 373", "Delannoyplaats 373"),
        ("BE", "Deliver it to Brixtonlaan 380, 1930 Zaventem", "Brixtonlaan 380"),
        ("ES", "The restaurant is at 181 Ctra. Bailén-Motril 84", "Ctra. Bailén-Motril 84"),
        ("ES", "Vlasta lives at 099 C/ Arana 23, Montealegre del Castillo", "Arana 23"),
        ("IT", "The restaurant is at 12045 Via Carlo Cattaneo 88", "Via Carlo Cattaneo 88"),
        ("PT", "Send it to 49368 R Poeta João Ruiz 1, Viseu", "Poeta João Ruiz 1"),
        ("PL", "Usman lives on ul. Paderewskiego Ignacego 35 street.", "ul. Paderewskiego Ignacego 35"),
        ("SE", "How do I change the address linked to my card to Mjövattnet 1?", "Mjövattnet 1"),
        ("NO", "How do I change my address to Tom Wilhelmsens vei 83 for post mail?", "Tom Wilhelmsens vei 83"),
        ("DK", "The address of the shop is Clematisvænget 70", "Clematisvænget 70"),
        ("FI", "Not getting bank documents to my address: Siikasaarentie 19", "Siikasaarentie 19"),
        ("HU", "Ask the driver to stop at Dózsa György út 78. Thanks", "Dózsa György út 78"),
        ("HU", "My address: 443 Tas vezér u. 62.", "Tas vezér u. 62"),
        ("CZ", "I'd like to call a taxi to Nábřežní 243. Please call me.", "Nábřežní 243"),
        ("IS", "The office is at Skólastígur 52", "Skólastígur 52"),
        ("GR", "The restaurant is at 6579 Λ. Πειραιώς 213", "Πειραιώς 213"),
    ] {
        covered(text, street, Kind::Address);
        // Streets named after people (`Via Carlo Cattaneo`) are addresses, not names.
        let at = text.find(street).unwrap_or(0);
        let people: Vec<_> = DET
            .detect(text)
            .into_iter()
            .filter(|s| s.kind == Kind::Person && s.start < at + street.len() && at < s.end)
            .collect();
        assert!(people.is_empty(), "{country}: a person inside {street:?}: {people:?}");
    }
}

#[test]
fn postcode_last_lines_and_corners() {
    let block = "Gréta Halász\\n}}2431 Veslebakken 48\\n}}Apt. 690\\n}}HARSTAD\\n}}Norway 32045";
    covered(block, "Norway 32045", Kind::Address);
    covered(block, "2431 Veslebakken 48", Kind::Address);
    let greek = "Elias Jepsen\\n\\n942 Βασιλέως Αλεξάνδρου 195\\n Apt. 344\\n ΦΑΡΜΑΚΑΣ\\n Cyprus (Greek) 44762";
    covered(greek, "44762", Kind::Address);
    let czech = "439 Strojírenská 96\\n Suite 907\\n Ždár nad Sázavou 1\\n Czech Republic 82704";
    covered(czech, "82704", Kind::Address);
    let corner = "Ask the driver to stop at the corner of Gallo Creek and Masaev Place St.";
    covered(corner, "Gallo Creek", Kind::Address);
    covered(corner, "Masaev Place", Kind::Address);
    covered("these early shows on Viva Crescent Street were important", "Viva Crescent", Kind::Address);
    // A town right after an address is part of it, not a person.
    let t = "The address is 5314 Rua Bela Vista 794 Apt. 789 Jacareí São Paulo";
    assert!(found(t, Kind::Person).is_empty(), "{:?}", found(t, Kind::Person));
}

#[test]
fn address_precision_holds() {
    for t in [
        "For my take, see Guilty Pleasures: 5 Musicians Of The 70s You're Supposed To Hate",
        "I moved to Berlin 3 years ago and love it.",
        "We shipped Windows 10 and Office 2019 to 250 users.",
        "Meet me at gate 12 in terminal 2.",
        "The meeting moved to Room 4 on Friday.",
        "Katie 25 and Bertie 7 won the races.",
    ] {
        assert!(found(t, Kind::Address).is_empty(), "{t:?}: {:?}", found(t, Kind::Address));
    }
}

#[test]
fn lower_case_and_chat_style() {
    // A lower-case IBAN is an IBAN: the checksum decides, not the case.
    assert_eq!(found("pls send it to de89 3704 0044 0532 0130 00 thx", Kind::Iban), ["de89 3704 0044 0532 0130 00"]);
    assert_eq!(found("iban: gb82west12345698765432", Kind::Iban), ["gb82west12345698765432"]);
    assert!(found("code de89 3704 0044 0532 0130 01", Kind::Iban).is_empty(), "bad checksum");
    // Lower-case names with a cue, a surname, a vocative or a speaker's colon.
    for (t, name) in [
        ("hey anna, can you send me the report?", "anna"),
        ("my name is jan kowalski and i need help", "jan kowalski"),
        ("talked to sarah johnson yesterday about it", "sarah johnson"),
        ("ok so sven said he would come", "sven"),
        ("thanks olga!", "olga"),
    ] {
        assert_eq!(found(t, Kind::Person), [name], "{t:?}");
    }
    let dialogue = "anna: are you coming?\nsven: yes, at eight";
    assert_eq!(found(dialogue, Kind::Person), ["anna", "sven"]);
    // Addresses written without capitals, and a name alone on its line above one.
    let block = "thea kokshoorn\\n\\n324 helmstok 174\\n apt. 861\\n almere\\n netherlands 29952";
    covered(block, "324 helmstok 174", Kind::Address);
    covered(block, "29952", Kind::Address);
    assert_eq!(found(block, Kind::Person), ["thea kokshoorn"]);
    covered("i live at 12 main street, springfield", "12 main street", Kind::Address);
    covered("he lives on the north side of turjaška 46.", "turjaška 46", Kind::Address);
    covered("pls send it to via carlo cattaneo 88, milano", "via carlo cattaneo 88", Kind::Address);
    // Lower-case ordinary phrases with numbers are not addresses.
    for t in ["i have 3 kids and 2 dogs", "the flat 3 is nice", "meet at gate 12 in 5 min", "main street is closed"] {
        assert!(found(t, Kind::Address).is_empty(), "{t:?}: {:?}", found(t, Kind::Address));
    }
}

#[test]
fn ordinary_lower_case_words_are_not_names() {
    for t in [
        "will you mark the bill in may? i hope so, said grace.",
        "we will sue if the bill is not paid by may",
        "please mark this as done and bill the client",
        "my iban is below, ask the bank if unsure",
        "the rose and the lily grow in the park by the brook",
        "hey, can you review the draft and send it back by friday?",
        "summer is long and the dawn is early; jack up the car and chase the hunter",
    ] {
        assert!(found(t, Kind::Person).is_empty(), "{t:?}: {:?}", found(t, Kind::Person));
    }
    // In capitalised prose the same words stay words.
    let t = "Will you Mark the Bill in May? We will see.";
    assert!(found(t, Kind::Person).is_empty(), "{:?}", found(t, Kind::Person));
}

#[test]
fn names_in_lists_and_dialogue() {
    let t = "They had 6: Piusz, Sharon, Bill, Sarah, Candice and Kim.";
    for n in ["Piusz", "Sharon", "Bill", "Sarah", "Candice", "Kim"] {
        covered(t, n, Kind::Person);
    }
    let t = "The brainchild of our 3 founders: Waters, Parrish and Stevenson.";
    for n in ["Waters", "Parrish", "Stevenson"] {
        covered(t, n, Kind::Person);
    }
    let t = "Martin: \"Who are you?\"\\nGrace:\"I'm Brooke's daughter\".";
    covered(t, "Grace", Kind::Person);
    // A list of ordinary words is not a list of names.
    let t = "Monday, Tuesday and Friday are busy, and so are May, June and July.";
    assert!(found(t, Kind::Person).is_empty(), "{:?}", found(t, Kind::Person));
}

#[test]
fn hostile_inputs_stay_fast_and_sound() {
    // Each input is large and repetitive; a quadratic rule would take minutes here, not milliseconds.
    let inputs = [
        "hey anna and sven and jan kowalski said ".repeat(20_000),
        "will you mark the bill in may ".repeat(30_000),
        "1 2 3 4 5 6 7 8 9 10 ".repeat(30_000),
        "Avda. ".repeat(50_000) + "12",
        "the corner of X and Y ".repeat(20_000),
        "Anna, Bill, Mark, ".repeat(30_000),
        "a: b: c:\n".repeat(50_000),
        "Cyprus (Greek) (Greek) (".repeat(20_000),
        "12045 Via Carlo Cattaneo 88 ".repeat(20_000),
        "de89 ".repeat(100_000),
        "}}Apt. 1\\n".repeat(50_000),
    ];
    for text in &inputs {
        let t = std::time::Instant::now();
        let spans = DET.detect(text);
        let mut prev = 0;
        for s in &spans {
            assert!(
                s.start >= prev
                    && s.end <= text.len()
                    && text.is_char_boundary(s.start)
                    && text.is_char_boundary(s.end)
            );
            prev = s.end;
        }
        // Generous even for a debug build on a busy machine; quadratic behaviour on ~500 KB would be far slower.
        assert!(t.elapsed().as_secs() < 30, "{} bytes took {:?}", text.len(), t.elapsed());
    }
}

/// Lower-case chat-like text made of names, ordinary words, numbers and IBAN pieces.
fn chat() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("hey anna, ".to_string()),
        Just("will ".to_string()),
        Just("mark ".to_string()),
        Just("may ".to_string()),
        Just("bill ".to_string()),
        Just("my name is jan kowalski ".to_string()),
        Just("de89 3704 0044 0532 0130 00 ".to_string()),
        Just("gb82 west 1234 5698 7654 32".to_string()),
        Just("sven: ".to_string()),
        Just("ćwierć ".to_string()),
        Just("\n".to_string()),
        "[a-z ,.:!?'\\n0-9ł]{0,30}",
    ];
    proptest::collection::vec(piece, 0..16).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Promise 3 on chat-style text: spans are sound and redaction leaves no detected value.
    #[test]
    fn lower_case_spans_are_sound(text in chat()) {
        let spans = DET.detect(&text);
        let mut prev = 0;
        for s in &spans {
            prop_assert!(s.start < s.end && s.end <= text.len());
            prop_assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end));
            prop_assert!(s.start >= prev);
            prev = s.end;
        }
        let out = DET.redact(&text);
        for s in &spans {
            // A value that occurs once is gone after redaction (one occurring twice may be undetected elsewhere,
            // glued to other letters).
            let v = &text[s.start..s.end];
            if v.len() >= 6 && text.matches(v).count() == 1 {
                prop_assert!(!out.contains(v), "{v:?} survives in {out:?}");
            }
        }
    }

    /// Every IBAN found in lower-case text is also found, at the same place, in its upper-case form: case never
    /// decides whether a checksum-valid IBAN is redacted.
    #[test]
    fn iban_detection_ignores_case(text in chat()) {
        let upper = text.to_ascii_uppercase();
        let low: Vec<(usize, usize)> =
            DET.detect(&text).iter().filter(|s| s.kind == Kind::Iban).map(|s| (s.start, s.end)).collect();
        let up: Vec<(usize, usize)> =
            DET.detect(&upper).iter().filter(|s| s.kind == Kind::Iban).map(|s| (s.start, s.end)).collect();
        prop_assert_eq!(low, up);
    }
}
