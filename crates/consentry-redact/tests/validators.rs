//! The Luhn, IBAN and SSN validators exist twice, on purpose: `consentry_synth::pii` checks what the
//! generator plants, `consentry_redact` (`checks.rs`) decides what the detector reports, and neither
//! crate depends on the other. These properties hold them to one another so they cannot drift: every
//! value synth generates passes redact's checks, and on any string both give the same verdict where
//! their rules coincide.
//!
//! Where they differ by design: synth's `iban_valid` knows the lengths of the 17 countries it generates
//! and accepts any other two-letter country at 15–34 characters, while redact's requires a country of
//! the SWIFT registry at its registered length. So redact's "valid" implies synth's everywhere, and the
//! two agree exactly on strings of a country synth generates.

use consentry_redact as redact;
use consentry_synth::pii as synth;
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// `s` with one character replaced by `with`: the `at`-th (modulo their number) of those from index `from`
/// on that `eligible` accepts.
fn replace_char(s: &str, from: usize, eligible: fn(&char) -> bool, at: usize, with: char) -> String {
    let chars: Vec<char> = s.chars().collect();
    let positions: Vec<usize> = (from..chars.len()).filter(|i| eligible(&chars[*i])).collect();
    let Some(&i) = positions.get(at % positions.len().max(1)) else { return s.to_string() };
    chars.iter().enumerate().map(|(j, c)| if j == i { with } else { *c }).collect()
}

/// Digit strings with the separators both Luhn checks skip, and near-misses.
fn digitish() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{0,20}",
        "[0-9 -]{0,24}",
        "[0-9]{4}[ -][0-9]{4}[ -][0-9]{4}[ -][0-9]{4}",
        "[0-9a-z ,.+٣]{0,12}",
        any::<String>(),
    ]
}

/// SSN-shaped strings across the issuable and non-issuable ranges, and arbitrary text.
fn ssnish() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{3}-[0-9]{2}-[0-9]{4}",
        "[0-9]{3} [0-9]{2} [0-9]{4}",
        "[0-9]{9}",
        "(000|666|9[0-9]{2}|[0-8][0-9]{2})[- ](00|[0-9]{2})[- ](0000|[0-9]{4})",
        // Around each range edge: areas 000, 665–667, 899–901; groups 00–01, 99; serials 0000–0001.
        "(00[0-1]|66[5-7]|899|90[0-1])-(0[0-1]|99)-(000[0-1]|9999)",
        "[0-9 -]{8,12}",
        "[0-9]{3}-[0-9]{2}-[0-9é]{3}",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn generated_cards_pass_both_luhn_checks(seed in any::<u64>()) {
        let card = synth::credit_card(&mut ChaCha8Rng::seed_from_u64(seed));
        prop_assert!(synth::luhn_valid(&card), "{card}");
        prop_assert!(redact::luhn_valid(&card), "{card}");
    }

    #[test]
    fn a_card_with_one_digit_changed_fails_both(seed in any::<u64>(), at in any::<usize>(), d in 0u32..10) {
        let card = synth::credit_card(&mut ChaCha8Rng::seed_from_u64(seed));
        let changed = replace_char(&card, 0, char::is_ascii_digit, at, char::from_digit(d, 10).unwrap());
        prop_assert_eq!(synth::luhn_valid(&changed), redact::luhn_valid(&changed), "{}", changed);
        // Luhn catches every single-digit substitution.
        prop_assert_eq!(redact::luhn_valid(&changed), changed == card, "{} → {}", card, changed);
    }

    #[test]
    fn luhn_verdicts_agree(s in digitish()) {
        prop_assert_eq!(synth::luhn_valid(&s), redact::luhn_valid(&s), "{:?}", s);
    }

    #[test]
    fn generated_ibans_pass_both_checks(seed in any::<u64>()) {
        let iban = synth::iban(&mut ChaCha8Rng::seed_from_u64(seed));
        prop_assert!(synth::iban_valid(&iban), "{iban}");
        // Also: every country synth generates has its registered length in redact's table.
        prop_assert!(redact::iban_valid(&iban), "{iban}");
        prop_assert!(redact::iban_valid(&iban.to_lowercase()) && synth::iban_valid(&iban.to_lowercase()), "{iban}");
    }

    #[test]
    fn iban_verdicts_agree_on_a_country_synth_generates(
        seed in any::<u64>(),
        at in any::<usize>(),
        with in "[0-9A-Za-z ,-]",
    ) {
        let iban = synth::iban(&mut ChaCha8Rng::seed_from_u64(seed));
        // Check digits or BBAN changed, the country kept.
        let changed = replace_char(&iban, 2, |c| *c != ' ', at, with.chars().next().unwrap());
        prop_assert_eq!(synth::iban_valid(&changed), redact::iban_valid(&changed), "{} → {}", iban, changed);
        let truncated: String = iban.chars().take(iban.len() - 1).collect();
        prop_assert!(!synth::iban_valid(&truncated) && !redact::iban_valid(&truncated), "{truncated}");
    }

    #[test]
    fn redact_accepts_no_iban_synth_rejects(s in prop_oneof![
        "[A-Z]{2}[0-9]{2}[0-9A-Z]{11,30}",
        "[A-Za-z]{2}[0-9]{2}( ?[0-9A-Za-z]{4}){2,7}",
        any::<String>(),
    ]) {
        prop_assert!(!redact::iban_valid(&s) || synth::iban_valid(&s), "{:?}", s);
    }

    #[test]
    fn generated_ssns_pass_both_checks(seed in any::<u64>()) {
        let ssn = synth::ssn(&mut ChaCha8Rng::seed_from_u64(seed));
        prop_assert!(synth::ssn_valid(&ssn), "{ssn}");
        prop_assert!(redact::ssn_valid(&ssn), "{ssn}");
        let bare: String = ssn.chars().filter(char::is_ascii_digit).collect();
        prop_assert!(synth::ssn_valid(&bare) && redact::ssn_valid(&bare), "{bare}");
    }

    #[test]
    fn ssn_verdicts_agree(s in ssnish()) {
        prop_assert_eq!(synth::ssn_valid(&s), redact::ssn_valid(&s), "{:?}", s);
    }
}

/// The edges each range check turns on, spelled out.
#[test]
fn ssn_range_edges_agree() {
    for s in [
        "001-01-0001",
        "899-99-9999",
        "000-12-3456",
        "666-12-3456",
        "665-12-3456",
        "667-12-3456",
        "900-12-3456",
        "123-00-3456",
        "123-45-0000",
        "123-45 6789",
        "123456789",
        "12345678",
        "1234567890",
    ] {
        assert_eq!(synth::ssn_valid(s), redact::ssn_valid(s), "{s}");
    }
}
