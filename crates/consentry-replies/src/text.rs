//! Text handling: cleaning redacted replies into displayable surface forms, normalised keys, and
//! hashed n-gram features of incoming messages.

/// Longest surface form (in chars) kept as a response: suggestions are short by design.
pub(crate) const MAX_RESPONSE_CHARS: usize = 160;

/// Tokens of an incoming message that contribute features (bounded work per message).
const MAX_TOKENS: usize = 256;

/// Domain separation for feature hashing; changing it changes every model (bump the format version).
const FEATURE_DOMAIN: &[u8] = b"consentry.replies.feature.v1\0";

/// Greetings that, followed by a `<PERSON>` placeholder, form a vocative that is stripped from replies.
const GREETINGS: &[&str] = &["hi", "hey", "hello", "dear", "hiya"];

/// Interjections stripped from the start of a reply when more text follows ("Hi! thanks" → "thanks").
const INTERJECTIONS: &[&str] = &["hi", "hello", "hey", "ah", "oh", "hmm"];

/// If `s[i..]` starts with a redaction placeholder (`<KIND>` or `<KIND_n>`), returns its byte length and kind.
pub(crate) fn placeholder_at(s: &str, i: usize) -> Option<(usize, &str)> {
    let rest = s.get(i..)?;
    let body = rest.strip_prefix('<')?;
    let close = body.find('>')?;
    let inner = body.get(..close)?;
    let kind = match inner.rfind('_') {
        Some(u) if u + 1 < inner.len() && inner[u + 1..].bytes().all(|b| b.is_ascii_digit()) => &inner[..u],
        _ => inner,
    };
    let valid = !kind.is_empty()
        && kind.bytes().next().is_some_and(|b| b.is_ascii_uppercase())
        && kind.bytes().all(|b| b.is_ascii_uppercase() || b == b'_');
    valid.then_some((close + 2, kind))
}

/// True if the text contains any redaction placeholder.
pub(crate) fn has_placeholder(s: &str) -> bool {
    s.match_indices('<').any(|(i, _)| placeholder_at(s, i).is_some())
}

/// Collapses every whitespace run to one space and trims.
fn collapse_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn is_terminal(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '…' | '。' | '！' | '？')
}

/// Splits text (already whitespace-collapsed) into sentences, each keeping its terminal punctuation.
fn sentences(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut prev_terminal = false;
    for (i, c) in s.char_indices() {
        if c == ' ' && prev_terminal {
            out.push(&s[start..i]);
            start = i + 1;
        }
        prev_terminal = is_terminal(c);
    }
    out.push(&s[start..]);
    out.into_iter().map(str::trim).filter(|x| !x.is_empty()).collect()
}

/// Strips a leading `[greeting] <PERSON>[,!:–-]` vocative, if any.
fn strip_leading_vocative(s: &str) -> &str {
    let lower = s.to_lowercase();
    let mut at = 0;
    if lower.len() == s.len() {
        for g in GREETINGS {
            if lower.starts_with(g) && s[g.len()..].starts_with(' ') {
                at = g.len() + 1;
                break;
            }
        }
    }
    let Some((len, "PERSON")) = placeholder_at(s, at) else {
        return s;
    };
    s[at + len..].trim_start_matches([',', '!', ':', '–', '—', '-', ' ', '.'])
}

/// Strips a trailing `, <PERSON>` vocative, keeping the sentence's terminal punctuation.
fn strip_trailing_vocative(s: &str) -> String {
    let core = s.trim_end_matches(is_terminal);
    let punct = &s[core.len()..];
    let Some(comma) = core.rfind(", <") else {
        return s.to_owned();
    };
    match placeholder_at(core, comma + 2) {
        Some((len, "PERSON")) if comma + 2 + len == core.len() => format!("{}{}", &core[..comma], punct),
        _ => s.to_owned(),
    }
}

/// Strips one leading interjection ("Hi! ", "Oh, ") when more text follows.
fn strip_interjection(s: &str) -> &str {
    for w in INTERJECTIONS {
        let Some(head) = s.get(..w.len()) else { continue };
        if !head.eq_ignore_ascii_case(w) {
            continue;
        }
        let rest = &s[w.len()..];
        for sep in ["! ", ", ", ". ", " – ", " - "] {
            if let Some(tail) = rest.strip_prefix(sep)
                && !tail.trim().is_empty()
            {
                return tail.trim_start();
            }
        }
    }
    s
}

/// Turns a redacted reply into a displayable surface form that carries no member data, or `None`.
///
/// Vocatives naming the addressee (`Hi <PERSON>, …`, `…, <PERSON>!`, `<PERSON> – …`) are stripped;
/// any sentence still holding a placeholder (shared phone, email, …) is dropped; a leading
/// interjection is dropped. What remains must be non-empty, placeholder-free and short.
pub(crate) fn clean_reply(raw: &str) -> Option<String> {
    let text = collapse_ws(raw);
    let mut kept = Vec::new();
    for s in sentences(&text) {
        let s = strip_leading_vocative(s);
        let s = strip_trailing_vocative(s);
        let s = s.trim();
        if s.is_empty() || has_placeholder(s) || s.contains('<') && s.contains('>') {
            continue;
        }
        kept.push(s.to_owned());
    }
    let joined = kept.join(" ");
    let mut out = joined.trim();
    loop {
        let next = strip_interjection(out).trim();
        if next.len() == out.len() {
            break;
        }
        out = next;
    }
    let out = out.to_owned();
    let ok = !out.is_empty()
        && out.chars().count() <= MAX_RESPONSE_CHARS
        && out.chars().any(char::is_alphanumeric)
        && !out.chars().any(char::is_control);
    ok.then_some(out)
}

/// Normalised counting key of a cleaned reply: lower case, typographic quotes folded, no trailing punctuation.
pub(crate) fn response_key(clean: &str) -> Option<String> {
    let folded: String = clean
        .chars()
        .map(|c| match c {
            '’' | '‘' | '`' | '´' => '\'',
            '“' | '”' => '"',
            _ => c,
        })
        .collect();
    let lower = collapse_ws(&folded.to_lowercase());
    let key = lower.trim_end_matches(|c: char| is_terminal(c) || c == ' ' || c == '~').trim();
    (!key.is_empty()).then(|| key.to_owned())
}

/// Normalised key of a raw (redacted) reply, `None` if nothing displayable remains; what the inventory counts.
pub fn reply_key(raw: &str) -> Option<String> {
    clean_reply(raw).and_then(|c| response_key(&c))
}

/// Lower-cased word tokens; placeholders become `<kind>` tokens, apostrophes inside words are kept.
pub(crate) fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut i = 0;
    let bytes_len = text.len();
    while i < bytes_len {
        if let Some((len, kind)) = placeholder_at(text, i) {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            out.push(format!("<{}>", kind.to_ascii_lowercase()));
            i += len;
            continue;
        }
        let Some(c) = text[i..].chars().next() else { break };
        let apostrophe = matches!(c, '\'' | '’') && !cur.is_empty();
        if c.is_alphanumeric() || apostrophe {
            cur.extend(c.to_lowercase().map(|c| if c == '’' { '\'' } else { c }));
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        i += c.len_utf8();
        if out.len() >= MAX_TOKENS {
            break;
        }
    }
    if !cur.is_empty() && out.len() < MAX_TOKENS {
        out.push(cur);
    }
    for t in &mut out {
        while t.ends_with('\'') {
            t.pop();
        }
    }
    out.retain(|t| !t.is_empty());
    out
}

/// Bucket of one feature string.
fn bucket(feature: &str, buckets: u32) -> u32 {
    let mut h = blake3::Hasher::new();
    h.update(FEATURE_DOMAIN);
    h.update(feature.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d.as_bytes()[..8]);
    (u64::from_le_bytes(b) % u64::from(buckets.max(1))) as u32
}

/// Sparse, L2-normalised hashed features (word unigrams and bigrams) of an incoming message, sorted by bucket.
#[cfg(test)]
pub(crate) fn features(text: &str, buckets: u32) -> Vec<(u32, f32)> {
    features_with(text, buckets, None)
}

/// [`features`] plus, when the incoming message is itself an inventory response, one feature of weight 1 naming
/// its intent (the vector then has norm √2): a reply to a reply depends mostly on what that reply said, and one
/// strong feature is what member-level DP noise leaves readable where dozens of weak n-grams drown.
pub(crate) fn features_with(text: &str, buckets: u32, incoming_intent: Option<u32>) -> Vec<(u32, f32)> {
    let mut out = ngram_features(text, buckets);
    if let Some(i) = incoming_intent {
        let b = bucket(&format!("i\0{i}"), buckets);
        match out.binary_search_by_key(&b, |&(j, _)| j) {
            Ok(at) => out[at].1 += 1.0,
            Err(at) => out.insert(at, (b, 1.0)),
        }
    }
    out
}

fn ngram_features(text: &str, buckets: u32) -> Vec<(u32, f32)> {
    let toks = tokens(text);
    let mut feats: Vec<String> = Vec::with_capacity(toks.len() * 2);
    for (i, t) in toks.iter().enumerate() {
        feats.push(format!("u\0{t}"));
        if let Some(next) = toks.get(i + 1) {
            feats.push(format!("b\0{t}\0{next}"));
        }
    }
    feats.sort_unstable();
    feats.dedup();
    let mut ids: Vec<u32> = feats.iter().map(|f| bucket(f, buckets)).collect();
    ids.sort_unstable();
    let mut out: Vec<(u32, f32)> = Vec::with_capacity(ids.len());
    for id in ids {
        match out.last_mut() {
            Some((last, v)) if *last == id => *v += 1.0,
            _ => out.push((id, 1.0)),
        }
    }
    let norm = out.iter().map(|(_, v)| f64::from(*v) * f64::from(*v)).sum::<f64>().sqrt();
    if norm > 0.0 {
        for (_, v) in &mut out {
            *v = (f64::from(*v) / norm) as f32;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_recognised() {
        assert_eq!(placeholder_at("<PERSON>", 0), Some((8, "PERSON")));
        assert_eq!(placeholder_at("x <PERSON_12>!", 2), Some((11, "PERSON")));
        assert_eq!(placeholder_at("<CREDIT_CARD>", 0), Some((13, "CREDIT_CARD")));
        assert_eq!(placeholder_at("<3 you>", 0), None);
        assert_eq!(placeholder_at("<b>", 0), None);
    }

    #[test]
    fn vocatives_and_contact_details_are_stripped() {
        let c = |s: &str| clean_reply(s);
        assert_eq!(c("Hi <PERSON>, thanks a lot!").as_deref(), Some("thanks a lot!"));
        assert_eq!(c("Hey <PERSON_2>! Sounds good.").as_deref(), Some("Sounds good."));
        assert_eq!(c("Sounds good, <PERSON>!").as_deref(), Some("Sounds good!"));
        assert_eq!(c("<PERSON> – Yes, that works.").as_deref(), Some("Yes, that works."));
        assert_eq!(c("No thanks. Drop me a line at <EMAIL>.").as_deref(), Some("No thanks."));
        assert_eq!(c("Call me on <PHONE>."), None);
        assert_eq!(c("Thanks to <PERSON> for this."), None);
        assert_eq!(c("Hi! thanks!").as_deref(), Some("thanks!"));
        assert_eq!(c("  \n "), None);
        assert_eq!(c("!!!"), None);
    }

    #[test]
    fn keys_fold_case_whitespace_and_trailing_punctuation() {
        let k = |s: &str| reply_key(s);
        assert_eq!(k("Sounds  good!!"), k("sounds good"));
        assert_eq!(k("I’ll take a look."), k("i'll take a look"));
        assert_eq!(k("Thanks!").as_deref(), Some("thanks"));
        assert_ne!(k("Thanks!"), k("Thanks a lot!"));
    }

    #[test]
    fn features_are_normalised_and_sorted() {
        let f = features("Hi <PERSON_3>, would you be open to a chat?", 1 << 10);
        assert!(!f.is_empty());
        assert!(f.windows(2).all(|w| w[0].0 < w[1].0));
        let n: f32 = f.iter().map(|(_, v)| v * v).sum();
        assert!((n - 1.0).abs() < 1e-5);
        assert!(features("", 16).is_empty());
        assert_eq!(tokens("Hi <PERSON_3>, I'm here"), vec!["hi", "<person>", "i'm", "here"]);
    }
}
