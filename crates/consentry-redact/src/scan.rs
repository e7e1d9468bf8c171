//! Byte- and char-level helpers every detector shares. All offsets are byte
//! offsets into a `&str`; helpers never slice off a char boundary.

/// The char that ends just before byte `i` (None at the start or off a boundary).
#[inline]
pub fn prev_char(text: &str, i: usize) -> Option<char> {
    text.get(..i)?.chars().next_back()
}

/// The char that starts at byte `i` (None at the end or off a boundary).
#[inline]
pub fn next_char(text: &str, i: usize) -> Option<char> {
    text.get(i..)?.chars().next()
}

/// True for letters and digits of any script: what makes a word. CJK characters are
/// excluded because those scripts do not separate words, so a Latin name glued to
/// them (`Sarahさん`) still ends at the script change.
#[inline]
pub fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() && !is_cjk(c)
}

/// Han, kana, Hangul and full-width forms.
#[inline]
pub fn is_cjk(c: char) -> bool {
    matches!(c, '\u{2E80}'..='\u{9FFF}' | '\u{AC00}'..='\u{D7AF}' | '\u{F900}'..='\u{FAFF}' | '\u{FF00}'..='\u{FFEF}')
}

/// True when bytes `i-2..i` are an escaped line break or tab (`\n`, `\r`, `\t` written out, as in
/// text copied from JSON or logs): the word at `i` starts there, it is not glued to an `n`.
#[inline]
pub fn escaped_break_before(b: &[u8], i: usize) -> bool {
    i >= 2 && b[i - 2] == b'\\' && matches!(b[i - 1], b'n' | b'r' | b't')
}

/// True when no word char precedes byte `i`.
#[inline]
pub fn boundary_before(text: &str, i: usize) -> bool {
    match text.as_bytes().get(i.wrapping_sub(1)) {
        None => true,
        Some(b) if b.is_ascii() => !b.is_ascii_alphanumeric() || escaped_break_before(text.as_bytes(), i),
        Some(_) => !prev_char(text, i).is_some_and(is_word_char),
    }
}

/// True when no word char starts at byte `i`.
#[inline]
pub fn boundary_after(text: &str, i: usize) -> bool {
    match text.as_bytes().get(i) {
        None => true,
        Some(b) if b.is_ascii() => !b.is_ascii_alphanumeric(),
        Some(_) => !next_char(text, i).is_some_and(is_word_char),
    }
}

/// End of the word starting at `i`: letters, digits, and inner apostrophes or hyphens followed by a letter.
pub fn word_end(text: &str, i: usize) -> usize {
    let b = text.as_bytes();
    let mut j = i;
    while j < b.len() {
        let c = b[j];
        if c.is_ascii_alphanumeric() {
            j += 1;
        } else if c >= 0x80 {
            match next_char(text, j) {
                Some(ch) if is_word_char(ch) => j += ch.len_utf8(),
                Some('\u{2019}') if next_char(text, j + 3).is_some_and(char::is_alphabetic) && j > i => j += 3,
                _ => break,
            }
        } else if (c == b'\'' || c == b'-') && j > i && next_char(text, j + 1).is_some_and(char::is_alphabetic) {
            j += 1;
        } else {
            break;
        }
    }
    j
}

/// Start of the word that ends at `i` (the inverse of [`word_end`] for plain words).
pub fn word_start(text: &str, i: usize) -> usize {
    let mut j = i;
    while let Some(c) = prev_char(text, j) {
        if is_word_char(c) && !escaped_break_before(text.as_bytes(), j) {
            j -= c.len_utf8();
        } else {
            break;
        }
    }
    j
}

/// Skips ASCII spaces and tabs (not newlines) from `i`.
#[inline]
pub fn skip_blanks(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    i
}

/// Count of consecutive ASCII digits starting at `i`.
#[inline]
pub fn digits_at(b: &[u8], i: usize) -> usize {
    b.get(i..).map_or(0, |s| s.iter().take_while(|c| c.is_ascii_digit()).count())
}

/// True when the word starting at `i` begins with an upper-case letter.
#[inline]
pub fn is_capitalised_at(text: &str, i: usize) -> bool {
    match text.as_bytes().get(i) {
        Some(b) if b.is_ascii() => b.is_ascii_uppercase(),
        Some(_) => next_char(text, i).is_some_and(char::is_uppercase),
        None => false,
    }
}

/// True when byte `i` starts a sentence: only blanks since a line start or a `.`, `!`, `?` (or the text start).
pub fn sentence_start(text: &str, i: usize) -> bool {
    let b = text.as_bytes();
    let mut j = i;
    while j > 0 && (b[j - 1] == b' ' || b[j - 1] == b'\t' || b[j - 1] == b'"' || b[j - 1] == b'(') {
        j -= 1;
    }
    if j == 0 || escaped_break_before(b, j) {
        return true;
    }
    matches!(b[j - 1], b'\n' | b'\r' | b'.' | b'!' | b'?' | b':' | b'>' | b'*' | b'-')
        || prev_char(text, j).is_some_and(|c| matches!(c, '。' | '！' | '？' | '¡' | '¿' | '–' | '—' | '•'))
}

/// Lower-cased ASCII window of up to `n` bytes before `i`, for context cues.
pub fn before_lower(text: &str, i: usize, n: usize) -> String {
    let mut s = i.saturating_sub(n);
    while s < i && !text.is_char_boundary(s) {
        s += 1;
    }
    text.get(s..i).unwrap_or("").to_ascii_lowercase()
}

/// Rounds `i` down to a char boundary of `text`.
pub fn floor_boundary(text: &str, mut i: usize) -> usize {
    if i >= text.len() {
        return text.len();
    }
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// FNV-1a, for the small static word sets looked up once per capitalised word: several times faster than
/// SipHash on short keys, and these keys are compile-time constants, not attacker-chosen, so hash flooding is
/// not a concern (hand-written to avoid a dependency for ten lines).
#[derive(Default, Clone, Copy)]
pub struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// A set of static words hashed with [`Fnv`].
pub type WordSet = std::collections::HashSet<&'static str, std::hash::BuildHasherDefault<Fnv>>;

/// Builds a [`WordSet`] from lists.
pub fn word_set(lists: &[&[&'static str]]) -> WordSet {
    lists.iter().flat_map(|l| l.iter().copied()).collect()
}
