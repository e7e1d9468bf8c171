//! Who may call the service, and what each caller may do. Members prove themselves with a bearer token
//! ([`crate::auth`]); operators and auditors with an API key made by `consentry keys create`. A key is shown once;
//! the data directory keeps only its id, role, name and a hash, so a copy of the directory lets nobody in.
//!
//! The authorisation rule lives here, not in a front end: [`Principal::require`] says whether a caller may use a
//! [`Capability`], and a front end asks it before every use case.

use crate::auth::unauthenticated;
use crate::error::{AppError, ErrorKind, Result};
use crate::filecache::{FileCache, FileStamp};
use crate::session::Session;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use consentry_files::OutputOptions;

/// Every API key starts with this, so a secret scanner (and the service) tells one from a member token at a glance.
pub const KEY_PREFIX: &str = "csk_";
/// Hex digits of a key's public id.
const ID_HEX: usize = 12;
/// Bytes of secret in a key.
const SECRET_BYTES: usize = 32;
/// The context a key's stored hash is derived under.
const HASH_CONTEXT: &str = "consentry api key v1";
/// The longest name a key may carry.
const MAX_NAME: usize = 100;

/// The role an API key acts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs the service: purposes and notices, jobs, aggregates, models, the unlearning queue, events.
    Operator,
    /// Reads evidence only: tree heads, proofs, receipts, evidence bundles.
    Auditor,
}

impl Role {
    /// The role's name as the CLI and the JSON spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Auditor => "auditor",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = AppError;

    fn from_str(s: &str) -> Result<Role> {
        match s {
            "operator" => Ok(Role::Operator),
            "auditor" => Ok(Role::Auditor),
            other => Err(AppError::bad_input(format!("`{other}` is not a role: use operator or auditor"))),
        }
    }
}

/// What a caller wants to do; each endpoint needs one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// Read and change one's own consent, history, receipts, lineage, export and erasure (a member, for themself).
    OwnData,
    /// Manage purposes and notices, run jobs, read aggregates, models, the unlearning queue and events.
    Operate,
    /// Read the evidence an offline audit needs.
    ReadEvidence,
}

/// An API key's public facts (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ApiKeyRecord {
    /// The public id (`k` and hex digits), shown in lists and logs and used to revoke.
    pub id: String,
    /// Its role.
    pub role: Role,
    /// What the operator called it (who holds it).
    pub name: String,
    /// Made at (Unix seconds).
    pub created: i64,
    /// Revoked at (Unix seconds); a revoked key lets nobody in.
    pub revoked: Option<i64>,
    /// BLAKE3 (derive-key mode) of the whole key, hex.
    pub hash: String,
}

/// A key just made: the only time its secret exists outside the holder's hands.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CreatedKey {
    /// The key to send as `Authorization: Bearer …`.
    pub secret: String,
    /// Its record.
    pub record: ApiKeyRecord,
}

/// The file's shape.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    keys: Vec<ApiKeyRecord>,
}

/// Who is calling, once their credential checked out.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Principal {
    /// A member, acting for themself.
    Member {
        /// Their member id.
        member: u64,
    },
    /// An operator or auditor, by API key.
    Key {
        /// The key's id.
        id: String,
        /// The key's role.
        role: Role,
    },
}

impl Principal {
    /// Whether this caller may use `cap`: [`ErrorKind::Forbidden`] (saying who may) when not.
    pub fn require(&self, cap: Capability) -> Result<()> {
        let allowed = matches!(
            (self, cap),
            (Principal::Member { .. }, Capability::OwnData)
                | (Principal::Key { role: Role::Operator, .. }, Capability::Operate | Capability::ReadEvidence)
                | (Principal::Key { role: Role::Auditor, .. }, Capability::ReadEvidence)
        );
        if allowed {
            return Ok(());
        }
        let who = match cap {
            Capability::OwnData => "a member's own token (an API key acts for no member)",
            Capability::Operate => "an operator API key",
            Capability::ReadEvidence => "an auditor or operator API key",
        };
        Err(AppError::new(ErrorKind::Forbidden, format!("{} may not do this: it needs {who}", self.describe())))
    }

    /// The member this caller acts for, when it is a member.
    pub fn member(&self) -> Option<u64> {
        match self {
            Principal::Member { member } => Some(*member),
            Principal::Key { .. } => None,
        }
    }

    /// How logs and messages name the caller (never a secret).
    pub fn describe(&self) -> String {
        match self {
            Principal::Member { member } => format!("member {member}"),
            Principal::Key { id, role } => format!("{} key {id}", role.as_str()),
        }
    }
}

/// The key file as last read, re-read when the file changes (a revocation by `consentry keys revoke` takes effect at
/// the next request, in every process on the data directory).
pub(crate) type KeyCache = FileCache<Vec<ApiKeyRecord>>;

fn hash_key(secret: &str) -> String {
    blake3::Hasher::new_derive_key(HASH_CONTEXT).update(secret.as_bytes()).finalize().to_hex().to_string()
}

impl Session {
    fn read_keys(&self) -> Result<(Option<FileStamp>, KeyFile)> {
        let path = self.dir().api_keys_file();
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((None, KeyFile::default())),
            Err(e) => {
                return Err(AppError::wrap(ErrorKind::Unavailable, e).context(format!("reading {}", path.display())));
            }
        };
        if !meta.is_file() {
            return Err(AppError::new(
                ErrorKind::Integrity,
                format!("{} is not a regular file: remove it and create the keys again", path.display()),
            ));
        }
        let stamp = FileStamp::of(&meta);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| AppError::wrap(ErrorKind::Unavailable, e).context(format!("reading {}", path.display())))?;
        let file: KeyFile = serde_json::from_str(&text).map_err(|e| {
            AppError::new(
                ErrorKind::Integrity,
                format!("{} is not a key file ({e}): restore it from a backup or remove it", path.display()),
            )
        })?;
        Ok((Some(stamp), file))
    }

    /// Reads, changes and rewrites the key file under an exclusive lock on the data directory, so two `keys`
    /// commands at once never lose a key.
    fn update_keys<T>(&self, f: impl FnOnce(&mut KeyFile) -> Result<T>) -> Result<T> {
        if self.is_read_only() {
            return Err(AppError::bad_input("this session is read-only: API keys cannot be changed"));
        }
        let _lock = self.dir().lock()?;
        let (_, mut file) = self.read_keys()?;
        let out = f(&mut file)?;
        let json =
            serde_json::to_vec_pretty(&file).map_err(|e| AppError::internal(format!("encoding the key file: {e}")))?;
        let path = self.dir().api_keys_file();
        consentry_files::write(&path, &json, OutputOptions::SECRET.no_follow())
            .map_err(AppError::from)
            .map_err(|e| e.context(format!("writing {}", path.display())))?;
        Ok(out)
    }

    /// Makes an API key for `role`; its secret is in the result and nowhere else.
    pub fn create_api_key(&self, role: Role, name: &str, now: i64) -> Result<CreatedKey> {
        let name = name.trim();
        if name.is_empty() || name.len() > MAX_NAME || name.chars().any(char::is_control) {
            return Err(AppError::bad_input(format!(
                "a key's name is 1 to {MAX_NAME} printable characters saying who holds it"
            )));
        }
        let mut random = [0u8; ID_HEX / 2 + SECRET_BYTES];
        getrandom::fill(&mut random).map_err(|e| AppError::internal(format!("no randomness available: {e}")))?;
        let id = format!("k{}", hex::encode(&random[..ID_HEX / 2]));
        let secret = format!("{KEY_PREFIX}{id}_{}", B64.encode(&random[ID_HEX / 2..]));
        let record =
            ApiKeyRecord { id, role, name: name.to_string(), created: now, revoked: None, hash: hash_key(&secret) };
        let stored = record.clone();
        self.update_keys(move |file| {
            file.keys.push(stored);
            Ok(())
        })?;
        Ok(CreatedKey { secret, record })
    }

    /// Revokes a key by id; revoking a revoked key again changes nothing.
    pub fn revoke_api_key(&self, id: &str, now: i64) -> Result<ApiKeyRecord> {
        self.update_keys(|file| {
            let key = file.keys.iter_mut().find(|k| k.id == id).ok_or_else(|| {
                AppError::new(ErrorKind::NotFound, format!("no API key `{id}` (see `consentry keys list`)"))
            })?;
            key.revoked.get_or_insert(now);
            Ok(key.clone())
        })
    }

    /// Every key ever made, revoked ones included.
    pub fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>> {
        Ok(self.read_keys()?.1.keys)
    }

    /// The operator or auditor an API key belongs to; an unknown, malformed or revoked key is
    /// [`ErrorKind::Unauthenticated`].
    pub fn verify_api_key(&self, secret: &str) -> Result<Principal> {
        let id = secret
            .strip_prefix(KEY_PREFIX)
            .and_then(|rest| rest.split_once('_'))
            .map(|(id, _)| id)
            .ok_or_else(|| unauthenticated("the API key is malformed: keys look like csk_k…_…"))?;
        let keys = self.current_keys()?;
        let key = keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| unauthenticated(format!("no API key `{id}`: create one with `consentry keys create`")))?;
        // Compared as BLAKE3 hashes of the whole key: equal-length hex strings of unguessable digests.
        if !constant_time_eq(key.hash.as_bytes(), hash_key(secret).as_bytes()) {
            return Err(unauthenticated(format!("the API key `{id}` does not match its record")));
        }
        if let Some(at) = key.revoked {
            return Err(unauthenticated(format!("the API key `{id}` was revoked at {at}")));
        }
        Ok(Principal::Key { id: key.id.clone(), role: key.role })
    }

    /// The key records, from the cache while the file is unchanged.
    fn current_keys(&self) -> Result<std::sync::Arc<Vec<ApiKeyRecord>>> {
        self.api_keys.get(&self.dir().api_keys_file(), || self.read_keys().map(|(stamp, file)| (stamp, file.keys)))
    }

    /// Who a bearer credential speaks for: an API key (`csk_…`), a platform member token (a JWT, when configured)
    /// or Consentry's own member token.
    pub fn authenticate(&self, bearer: &str, now: i64) -> Result<Principal> {
        if bearer.starts_with(KEY_PREFIX) {
            self.verify_api_key(bearer)
        } else if self.accepts_platform_tokens() && bearer.split('.').count() == 3 {
            // A JWT (header.claims.signature); Consentry's own tokens have two parts.
            Ok(Principal::Member { member: self.verify_platform_token(bearer, now)? })
        } else {
            Ok(Principal::Member { member: self.verify_member_token(bearer, now)? })
        }
    }
}

/// Whether two byte strings are equal, in time that depends on their length only.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DataDir;

    fn session() -> (tempfile::TempDir, Session) {
        let tmp = tempfile::tempdir().unwrap();
        let s = Session::open(DataDir::new(tmp.path()), None).unwrap();
        (tmp, s)
    }

    #[test]
    fn a_key_verifies_until_revoked_and_only_its_hash_is_stored() {
        let (tmp, s) = session();
        let made = s.create_api_key(Role::Auditor, "external auditor", 100).unwrap();
        assert_eq!(
            s.verify_api_key(&made.secret).unwrap(),
            Principal::Key { id: made.record.id.clone(), role: Role::Auditor }
        );
        let stored = std::fs::read_to_string(tmp.path().join("api-keys.json")).unwrap();
        assert!(!stored.contains(&made.secret[KEY_PREFIX.len() + ID_HEX + 2..]), "the secret is stored");
        s.revoke_api_key(&made.record.id, 200).unwrap();
        let e = s.verify_api_key(&made.secret).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthenticated);
        assert!(e.to_string().contains("revoked"), "{e}");
    }

    #[test]
    fn forged_and_malformed_keys_are_refused() {
        let (_tmp, s) = session();
        let made = s.create_api_key(Role::Operator, "ops", 1).unwrap();
        let mut forged = made.secret.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == 'A' { 'B' } else { 'A' });
        for bad in [forged.as_str(), "csk_", "csk_nounderscore", "csk_kffffffffffff_x", "nope"] {
            assert_eq!(s.verify_api_key(bad).unwrap_err().kind(), ErrorKind::Unauthenticated, "{bad}");
        }
    }

    #[test]
    fn a_revocation_by_another_process_takes_effect_at_once() {
        let (tmp, s) = session();
        let made = s.create_api_key(Role::Operator, "ops", 1).unwrap();
        s.verify_api_key(&made.secret).unwrap();
        let other = Session::open(DataDir::new(tmp.path()), None).unwrap();
        other.revoke_api_key(&made.record.id, 2).unwrap();
        assert!(s.verify_api_key(&made.secret).is_err());
        assert_eq!(s.revoke_api_key("k000000000000", 3).unwrap_err().kind(), ErrorKind::NotFound);
    }

    #[test]
    fn roles_grant_exactly_their_capabilities() {
        let member = Principal::Member { member: 7 };
        let op = Principal::Key { id: "k1".into(), role: Role::Operator };
        let aud = Principal::Key { id: "k2".into(), role: Role::Auditor };
        let table = [(&member, [true, false, false]), (&op, [false, true, true]), (&aud, [false, false, true])];
        for (who, allowed) in table {
            for (cap, ok) in
                [Capability::OwnData, Capability::Operate, Capability::ReadEvidence].into_iter().zip(allowed)
            {
                let r = who.require(cap);
                assert_eq!(r.is_ok(), ok, "{who:?} {cap:?}");
                if let Err(e) = r {
                    assert_eq!(e.kind(), ErrorKind::Forbidden);
                }
            }
        }
    }

    #[test]
    fn a_mangled_key_file_is_an_integrity_error_not_an_open_door() {
        let (tmp, s) = session();
        let made = s.create_api_key(Role::Operator, "ops", 1).unwrap();
        std::fs::write(tmp.path().join("api-keys.json"), "{not json").unwrap();
        assert_eq!(s.verify_api_key(&made.secret).unwrap_err().kind(), ErrorKind::Integrity);
        assert_eq!(s.create_api_key(Role::Operator, "", 1).unwrap_err().kind(), ErrorKind::BadInput);
    }
}
