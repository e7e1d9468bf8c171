//! C2SP signed notes (<https://c2sp.org/signed-note>), tlog checkpoints (<https://c2sp.org/tlog-checkpoint>)
//! and Ed25519 `cosignature/v1` witness cosignatures (<https://c2sp.org/tlog-cosignature>).
//!
//! These are the formats the Go checksum database, Sigsum and the transparency-dev witnesses speak, so a
//! Consentry log can be watched by witnesses that know nothing of Consentry. Everything here parses text that
//! comes from the network or a file: parsing is strict (one spelling per value, bounded sizes) and returns
//! [`NoteError`] on anything else; it never panics.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use sha2::{Digest as _, Sha256};

use crate::Hash;

/// Signature type of a plain Ed25519 note signature (the log's own signature on its checkpoint).
pub const TYPE_ED25519: u8 = 0x01;
/// Signature type of a timestamped Ed25519 `cosignature/v1` (a witness's).
pub const TYPE_COSIGNATURE: u8 = 0x04;
/// Largest note accepted, in bytes: a checkpoint with a few dozen signatures fits many times over.
pub const MAX_NOTE_BYTES: usize = 64 * 1024;
/// Most signature lines accepted in one note (the spec asks verifiers to accept at least 16).
pub const MAX_SIGNATURES: usize = 100;
/// Most extension lines accepted in a checkpoint.
pub const MAX_EXTENSIONS: usize = 16;
/// Longest key name or origin line accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 256;

const EM_DASH_PREFIX: &str = "\u{2014} ";

/// Why a note, checkpoint, key or cosignature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// The text is not a well-formed signed note or checkpoint.
    #[error("malformed note: {0}")]
    Malformed(String),
    /// A verifier key (`name+keyid+base64`) is malformed or of the wrong type.
    #[error("malformed verifier key: {0}")]
    BadKey(String),
}

fn malformed<T>(what: impl Into<String>) -> Result<T, NoteError> {
    Err(NoteError::Malformed(what.into()))
}

/// The C2SP key id: the first four bytes of SHA-256(name || 0x0A || type || public key).
pub fn key_id(name: &str, key_type: u8, public_key: &[u8]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([0x0a, key_type]);
    h.update(public_key);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// Checks a key name: non-empty, no Unicode space, no `+`, bounded (the signed-note rules).
pub fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() {
        return malformed("a key name is empty");
    }
    if name.len() > MAX_NAME_BYTES {
        return malformed(format!("a key name is longer than {MAX_NAME_BYTES} bytes"));
    }
    if name.chars().any(|c| c.is_whitespace() || c == '+' || c.is_control()) {
        return malformed(format!("key name {name:?} contains a space, a control character or `+`"));
    }
    Ok(())
}

/// Strict standard base64 (padding required, no whitespace, canonical trailing bits).
fn b64_decode(s: &str, what: &str) -> Result<Vec<u8>, NoteError> {
    let bytes = B64.decode(s).map_err(|e| NoteError::Malformed(format!("{what} is not standard base64: {e}")))?;
    // The engine refuses non-canonical trailing bits, but check the round trip anyway: one value, one spelling.
    if B64.encode(&bytes) != s {
        return malformed(format!("{what} is not canonical base64"));
    }
    Ok(bytes)
}

/// Standard padded base64, as the note formats write it.
pub fn b64_encode(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// One signature line of a note: `— <name> base64(key id || signature)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The signer's key name.
    pub name: String,
    /// The signer's key id (see [`key_id`]).
    pub key_id: [u8; 4],
    /// The signature bytes after the key id (64 for Ed25519, 72 for a cosignature).
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// Parses one line without its final newline.
    pub fn parse_line(line: &str) -> Result<NoteSignature, NoteError> {
        let Some(rest) = line.strip_prefix(EM_DASH_PREFIX) else {
            return malformed("a signature line does not start with an em dash and a space");
        };
        let Some((name, sig)) = rest.split_once(' ') else {
            return malformed("a signature line has no space between the key name and the signature");
        };
        check_name(name)?;
        let raw = b64_decode(sig, "a signature")?;
        if raw.len() < 5 {
            return malformed("a signature is shorter than its key id");
        }
        let (id, signature) = raw.split_at(4);
        let key_id = [id[0], id[1], id[2], id[3]];
        Ok(NoteSignature { name: name.to_string(), key_id, signature: signature.to_vec() })
    }

    /// The line, with its final newline.
    pub fn line(&self) -> String {
        let mut raw = Vec::with_capacity(4 + self.signature.len());
        raw.extend_from_slice(&self.key_id);
        raw.extend_from_slice(&self.signature);
        format!("{EM_DASH_PREFIX}{} {}\n", self.name, B64.encode(raw))
    }
}

/// A signed note: a text and the signature lines over it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    text: String,
    signatures: Vec<NoteSignature>,
}

/// Checks what every note text must be: non-empty, ending in a newline, no control character but newline.
fn check_text(text: &str) -> Result<(), NoteError> {
    if text.is_empty() || !text.ends_with('\n') {
        return malformed("the note text must be non-empty and end with a newline");
    }
    if let Some(c) = text.chars().find(|c| (*c as u32) < 0x20 && *c != '\n') {
        return malformed(format!("the note contains the control character U+{:04X}", c as u32));
    }
    Ok(())
}

impl Note {
    /// A note with no signatures yet (the text must end with a newline and hold no control character).
    pub fn new(text: &str) -> Result<Note, NoteError> {
        if text.len() > MAX_NOTE_BYTES {
            return malformed(format!("the note is longer than {MAX_NOTE_BYTES} bytes"));
        }
        check_text(text)?;
        Ok(Note { text: text.to_string(), signatures: Vec::new() })
    }

    /// Parses a signed note: the text, a blank line, one or more signature lines (the last blank line splits).
    pub fn parse(note: &str) -> Result<Note, NoteError> {
        if note.len() > MAX_NOTE_BYTES {
            return malformed(format!("the note is longer than {MAX_NOTE_BYTES} bytes"));
        }
        if let Some(c) = note.chars().find(|c| (*c as u32) < 0x20 && *c != '\n') {
            return malformed(format!("the note contains the control character U+{:04X}", c as u32));
        }
        let Some(split) = note.rfind("\n\n") else {
            return malformed("no blank line separates the text from the signatures");
        };
        let (text, sigs) = (&note[..=split], &note[split + 2..]);
        check_text(text)?;
        if sigs.is_empty() {
            return malformed("the note has no signature lines");
        }
        let Some(sigs) = sigs.strip_suffix('\n') else {
            return malformed("the last signature line does not end with a newline");
        };
        let mut signatures = Vec::new();
        for line in sigs.split('\n') {
            if signatures.len() == MAX_SIGNATURES {
                return malformed(format!("the note has more than {MAX_SIGNATURES} signatures"));
            }
            signatures.push(NoteSignature::parse_line(line)?);
        }
        Ok(Note { text: text.to_string(), signatures })
    }

    /// The signed text (with its final newline).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The signature lines, in order.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Adds a signature, replacing one by the same key (name and id).
    pub fn add_signature(&mut self, sig: NoteSignature) {
        self.signatures.retain(|s| !(s.name == sig.name && s.key_id == sig.key_id));
        self.signatures.push(sig);
    }

    /// The note as text: the text, a blank line, the signature lines.
    pub fn encode(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for s in &self.signatures {
            out.push_str(&s.line());
        }
        out
    }

    /// The signatures whose name and key id match `key` (a note may carry others; they are ignored).
    pub fn signatures_by<'a>(&'a self, key: &'a VerifierKey) -> impl Iterator<Item = &'a NoteSignature> + 'a {
        self.signatures.iter().filter(|s| s.name == key.name && s.key_id == key.key_id)
    }

    /// True when an Ed25519 note signature by `key` (type 0x01) is present and every one by it verifies.
    pub fn verify_ed25519(&self, key: &VerifierKey) -> bool {
        if key.key_type != TYPE_ED25519 {
            return false;
        }
        let mut any = false;
        for s in self.signatures_by(key) {
            let Ok(sig) = <[u8; 64]>::try_from(s.signature.as_slice()) else { return false };
            if key.key.verify(self.text.as_bytes(), &Signature::from_bytes(&sig)).is_err() {
                return false;
            }
            any = true;
        }
        any
    }
}

/// A verifier key: a name, a signature type and an Ed25519 public key (`name+keyid+base64(type||key)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    key_type: u8,
    key_id: [u8; 4],
    key: VerifyingKey,
}

impl VerifierKey {
    /// A key from its parts (`key_type` is [`TYPE_ED25519`] or [`TYPE_COSIGNATURE`]).
    pub fn new(name: &str, key_type: u8, public_key: [u8; 32]) -> Result<VerifierKey, NoteError> {
        check_name(name).map_err(|e| NoteError::BadKey(e.to_string()))?;
        if key_type != TYPE_ED25519 && key_type != TYPE_COSIGNATURE {
            return Err(NoteError::BadKey(format!(
                "signature type 0x{key_type:02x} is not supported (0x01 Ed25519, 0x04 Ed25519 cosignature)"
            )));
        }
        let key = VerifyingKey::from_bytes(&public_key)
            .map_err(|e| NoteError::BadKey(format!("not an Ed25519 public key: {e}")))?;
        Ok(VerifierKey { name: name.to_string(), key_type, key_id: key_id(name, key_type, &public_key), key })
    }

    /// Parses `name+keyid+base64(type || public key)`; the key id must match the name and key.
    pub fn parse(text: &str) -> Result<VerifierKey, NoteError> {
        let text = text.trim_end_matches(['\n', '\r']);
        let bad = |m: String| NoteError::BadKey(m);
        // The base64 part may itself hold `+`: only the first two split.
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected three parts `name+keyid+base64key`".into()));
        };
        if id.len() != 8 || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad(format!("key id `{id}` is not 8 lowercase hex digits")));
        }
        let raw = b64_decode(key, "the key").map_err(|e| bad(e.to_string()))?;
        let Some((&key_type, public)) = raw.split_first() else { return Err(bad("the key is empty".into())) };
        let public: [u8; 32] =
            public.try_into().map_err(|_| bad("the key material is not 32 bytes (an Ed25519 key)".into()))?;
        let vkey = VerifierKey::new(name, key_type, public)?;
        if hex::encode(vkey.key_id) != id {
            return Err(bad(format!(
                "key id {id} does not match the name and key (expected {})",
                hex::encode(vkey.key_id)
            )));
        }
        Ok(vkey)
    }

    /// The `name+keyid+base64` form.
    pub fn encode(&self) -> String {
        let mut raw = Vec::with_capacity(33);
        raw.push(self.key_type);
        raw.extend_from_slice(self.key.as_bytes());
        format!("{}+{}+{}", self.name, hex::encode(self.key_id), B64.encode(raw))
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    /// The signature type byte.
    pub fn key_type(&self) -> u8 {
        self.key_type
    }

    /// The raw Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }
}

/// The body of a tlog checkpoint: origin, tree size, root hash, optional extension lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's name (`consentry/<first 16 hex of log id>` unless the operator names it).
    pub origin: String,
    /// Number of entries in the tree.
    pub tree_size: u64,
    /// The tree's root hash.
    pub root_hash: Hash,
    /// Extension lines (each non-empty, without its newline).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// Parses a checkpoint body (a note's text).
    pub fn parse(body: &str) -> Result<Checkpoint, NoteError> {
        if body.len() > MAX_NOTE_BYTES {
            return malformed(format!("the checkpoint is longer than {MAX_NOTE_BYTES} bytes"));
        }
        check_text(body)?;
        let Some(body) = body.strip_suffix('\n') else { return malformed("the checkpoint must end with a newline") };
        let mut lines = body.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next()) else {
            return malformed("a checkpoint has at least three lines: origin, tree size, root hash");
        };
        check_origin(origin)?;
        let tree_size = parse_decimal(size)?;
        let root: Hash = b64_decode(root, "the root hash")?
            .try_into()
            .map_err(|_| NoteError::Malformed("the root hash is not 32 bytes".into()))?;
        let mut extensions = Vec::new();
        for line in lines {
            if line.is_empty() {
                return malformed("a checkpoint extension line is empty");
            }
            if extensions.len() == MAX_EXTENSIONS {
                return malformed(format!("the checkpoint has more than {MAX_EXTENSIONS} extension lines"));
            }
            extensions.push(line.to_string());
        }
        Ok(Checkpoint { origin: origin.to_string(), tree_size, root_hash: root, extensions })
    }

    /// The body text, exactly as signed.
    pub fn body(&self) -> String {
        let mut out = format!("{}\n{}\n{}\n", self.origin, self.tree_size, B64.encode(self.root_hash));
        for e in &self.extensions {
            out.push_str(e);
            out.push('\n');
        }
        out
    }
}

/// An origin line: non-empty, bounded, no control characters (the note text rules cover the rest).
fn check_origin(origin: &str) -> Result<(), NoteError> {
    if origin.is_empty() || origin.len() > MAX_NAME_BYTES {
        return malformed(format!("the origin line must be 1 to {MAX_NAME_BYTES} bytes"));
    }
    Ok(())
}

/// A decimal with no sign, no leading zero (except `0` itself), fitting in u64.
fn parse_decimal(s: &str) -> Result<u64, NoteError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
        return malformed(format!("`{}` is not a decimal number without leading zeros", truncate(s)));
    }
    s.parse().map_err(|_| NoteError::Malformed(format!("`{}` does not fit in 64 bits", truncate(s))))
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// A witness's timestamped Ed25519 `cosignature/v1` over a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosignature {
    /// The witness's key name.
    pub name: String,
    /// The witness's key id (type 0x04).
    pub key_id: [u8; 4],
    /// When the witness signed (POSIX seconds, at most 2^63 - 1).
    pub timestamp: u64,
    /// Ed25519 signature over [`Cosignature::signed_message`].
    pub signature: [u8; 64],
}

impl Cosignature {
    /// The message a witness signs: `cosignature/v1\ntime <t>\n` followed by the checkpoint body.
    pub fn signed_message(timestamp: u64, body: &str) -> Vec<u8> {
        format!("cosignature/v1\ntime {timestamp}\n{body}").into_bytes()
    }

    /// Reads a cosignature from a note signature line (72 bytes after the key id; timestamp < 2^63).
    pub fn from_signature(sig: &NoteSignature) -> Result<Cosignature, NoteError> {
        if sig.signature.len() != 72 {
            return malformed(format!(
                "a cosignature is 8 + 64 bytes after the key id, this one is {}",
                sig.signature.len()
            ));
        }
        let (ts, s) = sig.signature.split_at(8);
        let timestamp = u64::from_be_bytes(ts.try_into().map_err(|_| NoteError::Malformed("timestamp".into()))?);
        if timestamp > i64::MAX as u64 {
            return malformed("a cosignature's timestamp exceeds 2^63 - 1");
        }
        let signature: [u8; 64] = s.try_into().map_err(|_| NoteError::Malformed("signature".into()))?;
        Ok(Cosignature { name: sig.name.clone(), key_id: sig.key_id, timestamp, signature })
    }

    /// Parses one signature line (`— name base64`, with or without its final newline).
    pub fn parse_line(line: &str) -> Result<Cosignature, NoteError> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        if line.contains('\n') {
            return malformed("a cosignature is one line");
        }
        Cosignature::from_signature(&NoteSignature::parse_line(line)?)
    }

    /// As a note signature.
    pub fn to_signature(&self) -> NoteSignature {
        let mut signature = Vec::with_capacity(72);
        signature.extend_from_slice(&self.timestamp.to_be_bytes());
        signature.extend_from_slice(&self.signature);
        NoteSignature { name: self.name.clone(), key_id: self.key_id, signature }
    }

    /// The signature line, with its final newline.
    pub fn line(&self) -> String {
        self.to_signature().line()
    }

    /// True when this is `key`'s (name and id match) and it verifies over `body`.
    pub fn verify(&self, key: &VerifierKey, body: &str) -> bool {
        key.key_type == TYPE_COSIGNATURE
            && self.name == key.name
            && self.key_id == key.key_id
            && self.timestamp <= i64::MAX as u64
            && key
                .key
                .verify(&Cosignature::signed_message(self.timestamp, body), &Signature::from_bytes(&self.signature))
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer as _, SigningKey};
    use proptest::prelude::*;

    // The Go checksum database's note example (golang.org/x/mod/sumdb/note): key, text and signed note.
    const GO_SKEY: &str = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const GO_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const GO_TEXT: &str =
        "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const GO_SIG: &str = "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=";

    fn go_note() -> String {
        format!("{GO_TEXT}\n\u{2014} PeterNeumann {GO_SIG}\n")
    }

    #[test]
    fn go_sumdb_known_answer_verifies_and_signs_byte_for_byte() {
        let vkey = VerifierKey::parse(GO_VKEY).unwrap();
        assert_eq!(vkey.name(), "PeterNeumann");
        assert_eq!(hex::encode(vkey.key_id()), "c74f20a3");
        assert_eq!(vkey.encode(), GO_VKEY);
        let note = Note::parse(&go_note()).unwrap();
        assert_eq!(note.text(), GO_TEXT);
        assert!(note.verify_ed25519(&vkey));
        assert_eq!(note.encode(), go_note());
        // Signing the same text with the same seed gives the same bytes (Ed25519 is deterministic).
        let seed = B64.decode(GO_SKEY).unwrap();
        assert_eq!(seed[0], TYPE_ED25519);
        let sk = SigningKey::from_bytes(&seed[1..].try_into().unwrap());
        assert_eq!(sk.verifying_key().to_bytes(), vkey.public_key());
        let sig = sk.sign(GO_TEXT.as_bytes()).to_bytes().to_vec();
        let mut fresh = Note::new(GO_TEXT).unwrap();
        fresh.add_signature(NoteSignature { name: "PeterNeumann".into(), key_id: vkey.key_id(), signature: sig });
        assert_eq!(fresh.encode(), go_note());
        // One flipped byte of text and it no longer verifies.
        let bad = Note::parse(&go_note().replacen("cryptography", "cryptographY", 1)).unwrap();
        assert!(!bad.verify_ed25519(&vkey));
    }

    #[test]
    fn spec_example_vkey_and_note_verify() {
        let vkey = VerifierKey::parse("example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k").unwrap();
        let note = "This is an example message.\n\n\u{2014} example.com/foo \
                    Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
        assert!(Note::parse(note).unwrap().verify_ed25519(&vkey));
    }

    #[test]
    fn checkpoint_round_trips_and_refuses_other_spellings() {
        let cp = Checkpoint {
            origin: "example.com/log".into(),
            tree_size: 20852163,
            root_hash: [7; 32],
            extensions: vec!["chain abc".into()],
        };
        assert_eq!(Checkpoint::parse(&cp.body()).unwrap(), cp);
        let root = B64.encode([7u8; 32]);
        for bad in [
            format!("o\n012\n{root}\n"),
            format!("o\n-1\n{root}\n"),
            format!("o\n+1\n{root}\n"),
            format!("o\n1\n{root}"),
            format!("\n1\n{root}\n"),
            format!("o\n1\n{root}\n\n"),
            format!("o\n1\n{}\n", B64.encode([7u8; 31])),
            format!("o\n1\n{}\n", root.trim_end_matches('=')),
            format!("o\n99999999999999999999\n{root}\n"),
            "o\n1\n".to_string(),
            format!("o\r\n1\n{root}\n"),
        ] {
            assert!(Checkpoint::parse(&bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn cosignature_signs_the_spec_message_and_binds_every_part() {
        let sk = SigningKey::from_bytes(&[9; 32]);
        let vkey = VerifierKey::new("witness.example/w1", TYPE_COSIGNATURE, sk.verifying_key().to_bytes()).unwrap();
        let body = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
        assert_eq!(
            Cosignature::signed_message(1679315147, body),
            b"cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\n\
              CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
                .to_vec()
        );
        let c = Cosignature {
            name: vkey.name().into(),
            key_id: vkey.key_id(),
            timestamp: 1679315147,
            signature: sk.sign(&Cosignature::signed_message(1679315147, body)).to_bytes(),
        };
        let back = Cosignature::parse_line(&c.line()).unwrap();
        assert_eq!(back, c);
        assert!(back.verify(&vkey, body));
        assert!(!back.verify(&vkey, &body.replace("20852163", "20852164")));
        let mut t = back.clone();
        t.timestamp += 1;
        assert!(!t.verify(&vkey, body));
        // The same key as a plain Ed25519 note key has another id: the cosignature is not its.
        let plain = VerifierKey::new("witness.example/w1", TYPE_ED25519, sk.verifying_key().to_bytes()).unwrap();
        assert!(!back.verify(&plain, body));
        // The vkey round-trips with type 0x04.
        assert_eq!(VerifierKey::parse(&vkey.encode()).unwrap(), vkey);
    }

    #[test]
    fn hostile_notes_are_refused_not_panicked_on() {
        for bad in [
            "",
            "\n",
            "text\n",
            "text\n\n",
            "text\n\n\u{2014} name\n",
            "text\n\n\u{2014} name AAAA\n",
            "text\n\n\u{2014} na+me AAAAAAAA\n",
            "text\n\n\u{2014}  AAAAAAAA\n",
            "text\n\n- name AAAAAAAA\n",
            "text\n\n\u{2014} name AAAAAAAA",
            "text\n\n\u{2014} name AAAAAAAA\n\n",
            "te\txt\n\n\u{2014} name AAAAAAAA\n",
        ] {
            assert!(Note::parse(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(Note::parse("text\n\n\u{2014} name AAAAAAAA\n").is_ok());
        for bad in
            ["", "a+b", "a+c74f20a3+", "a+C74F20A3+ARpc", "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"]
        {
            assert!(VerifierKey::parse(bad).is_err(), "{bad:?} must be refused");
        }
        // A key id that does not match the name is refused.
        assert!(VerifierKey::parse("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW").is_err());
        assert!(VerifierKey::parse("PeterNeumanm+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW").is_err());
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC{0,300}", t in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = Note::parse(&s);
            let _ = Checkpoint::parse(&s);
            let _ = VerifierKey::parse(&s);
            let _ = Cosignature::parse_line(&s);
            let lossy = String::from_utf8_lossy(&t);
            let _ = Note::parse(&lossy);
            let _ = Checkpoint::parse(&lossy);
        }

        #[test]
        fn encoded_notes_parse_back(lines in prop::collection::vec("[a-z0-9 /.]{1,20}", 1..5), n in 1usize..4) {
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            let mut note = Note::new(&text).unwrap();
            for i in 0..n {
                note.add_signature(NoteSignature { name: format!("k{i}"), key_id: [i as u8; 4], signature: vec![1; 64] });
            }
            prop_assert_eq!(Note::parse(&note.encode()).unwrap(), note);
        }
    }
}
