//! Witness use cases: a witness directory (init, the logs it watches, its state), cosigning a log's newest
//! checkpoint read from a data directory or from the service, the log's side (its checkpoint note, storing
//! cosignatures), and the verifier's side (loading `--witness-key` files, receipts that must carry cosignatures).
//! The rules live in `consentry_ledger::witness`; this layer only finds the inputs and maps the errors.

use crate::error::{AppError, ErrorKind, Result};
use crate::ledger::ReceiptCheck;
use crate::session::Session;
use consentry_ledger::note::{Note, VerifierKey};
use consentry_ledger::receipt::AnyReceipt;
use consentry_ledger::witness::{Witness, WitnessError, WitnessPolicy, WitnessTally};
use consentry_ledger::{Hash, PublicKey, SignedTreeHead};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

impl From<WitnessError> for AppError {
    fn from(e: WitnessError) -> AppError {
        let kind = match &e {
            WitnessError::Malformed(_)
            | WitnessError::BadSignature { .. }
            | WitnessError::Rollback { .. }
            | WitnessError::Fork { .. }
            | WitnessError::BadProof { .. } => ErrorKind::Integrity,
            WitnessError::UnknownLog { .. } => ErrorKind::NotFound,
            WitnessError::Key(_) | WitnessError::State(_) => ErrorKind::BadInput,
            _ => ErrorKind::Internal,
        };
        AppError::wrap(kind, e)
    }
}

/// What a witness directory holds, for `witness show` and `witness init`.
#[derive(Debug, Clone, Serialize)]
pub struct WitnessSummary {
    /// The witness directory.
    pub dir: PathBuf,
    /// The witness's name.
    pub name: String,
    /// Its verifier key (`name+keyid+base64`), to give to verifiers (`--witness-key`).
    pub vkey: String,
    /// The logs it watches.
    pub logs: Vec<WatchedLog>,
}

/// One log a witness watches.
#[derive(Debug, Clone, Serialize)]
pub struct WatchedLog {
    /// The log's origin line.
    pub origin: String,
    /// The log's public key, hex.
    pub public_key: String,
    /// How many key hand-overs the witness verified and follows (0: the log never rotated).
    pub key_handovers: usize,
    /// The id of the key the witness accepts the log's newest notes from (hex; the public key's id until a
    /// rotation).
    pub current_key_id: String,
    /// The size of the latest checkpoint cosigned (0: none yet).
    pub tree_size: u64,
    /// Its root, hex.
    pub root_hash: String,
    /// When it was cosigned (Unix seconds; 0: never).
    pub cosigned_at: u64,
}

fn summary(dir: &Path, w: &Witness) -> Result<WitnessSummary> {
    let logs = w
        .state()
        .logs
        .iter()
        .map(|(origin, l)| {
            let genesis = PublicKey::from_hex(&l.public_key).map_err(|e| {
                AppError::new(ErrorKind::Integrity, format!("the witness's stored key of `{origin}` is corrupt: {e}"))
            })?;
            let chain = consentry_ledger::KeyChain::from_handovers(genesis, l.key_handovers.iter().cloned())
                .map_err(|e| AppError::wrap(ErrorKind::Integrity, e))?;
            Ok(WatchedLog {
                origin: origin.clone(),
                public_key: l.public_key.clone(),
                key_handovers: l.key_handovers.len(),
                current_key_id: hex::encode(chain.current().key_id),
                tree_size: l.tree_size,
                root_hash: l.root_hash.clone(),
                cosigned_at: l.cosigned_at,
            })
        })
        .collect::<Result<_>>()?;
    Ok(WitnessSummary {
        dir: dir.to_path_buf(),
        name: w.key().name().to_string(),
        vkey: w.key().verifier_key()?.encode(),
        logs,
    })
}

/// Creates a witness directory (key mode 0600, `witness.vkey`, empty state).
pub fn init(dir: &Path, name: &str) -> Result<WitnessSummary> {
    let w = Witness::init(dir, name)?;
    summary(dir, &w)
}

/// Starts watching a log: its origin and public key (a `ledger.pub` file obtained out of band).
pub fn add_log(dir: &Path, origin: &str, public_key: &Path) -> Result<WitnessSummary> {
    let key = PublicKey::load(public_key)?;
    let mut w = Witness::open(dir)?;
    w.add_log(origin, &key)?;
    summary(dir, &w)
}

/// What the witness directory holds.
pub fn show(dir: &Path) -> Result<WitnessSummary> {
    let w = Witness::open(dir)?;
    summary(dir, &w)
}

/// A checkpoint cosigned, and where the cosignature went.
#[derive(Debug, Clone, Serialize)]
pub struct CosignOutcome {
    /// The log's origin.
    pub origin: String,
    /// The size cosigned before (0: none).
    pub previous_size: u64,
    /// The size cosigned now.
    pub tree_size: u64,
    /// The root cosigned, hex.
    pub root_hash: String,
    /// The cosignature line.
    pub cosignature: String,
    /// The witnesses that have now cosigned this checkpoint, as the log stored them.
    pub cosigned_by: Vec<String>,
}

/// The log's newest checkpoint, signed as a C2SP note, for a witness.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckpointNote {
    /// The signed tree head it is made from.
    pub tree_size: u64,
    /// The note text (tlog-checkpoint body, the log's signature, any cosignatures).
    pub note: String,
    /// The key hand-overs from the log's genesis key to the key that signed the note (absent for a log that
    /// never rotated): how a witness that knows only the genesis key follows a rotation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub key_handovers: Vec<consentry_ledger::KeyHandover>,
}

/// A cosignature sent to the log: the witness's verifier key, the checkpoint's size and the signature line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CosignatureSubmission {
    /// The checkpoint cosigned.
    pub tree_size: u64,
    /// The witness's verifier key, `name+keyid+base64` (type 0x04).
    pub witness_key: String,
    /// The `cosignature/v1` line, `— name base64`.
    pub cosignature: String,
}

impl Session {
    /// The log's newest checkpoint as a C2SP signed note (with the cosignatures stored for it).
    pub fn checkpoint_note(&self) -> Result<CheckpointNote> {
        let ledger = self.ledger()?;
        let sth = newest(ledger.latest_checkpoint()?)?;
        Ok(CheckpointNote {
            tree_size: sth.head.tree_size,
            note: ledger.checkpoint_note(&sth)?,
            key_handovers: ledger.key_chain()?.handovers().to_vec(),
        })
    }

    /// A Merkle tile by its C2SP path (`tile/<L>/<N>[.p/<W>]`, without the `tile/`): the static view of the tree
    /// an auditor or witness verifies from without trusting the service's proofs.
    pub fn tile(&self, path: &str) -> Result<Vec<u8>> {
        let (level, index, width) = consentry_ledger::tiles::parse_tile_path(path).ok_or_else(|| {
            AppError::bad_input(format!(
                "{path:?} is not a tile path: tile/<level 0-7>/<index in three-digit groups, x001/234>[.p/<width \
                 1-255>], as C2SP tlog-tiles spells it"
            ))
        })?;
        self.ledger()?.tile(level, index, width)?.ok_or_else(|| {
            AppError::new(
                ErrorKind::NotFound,
                format!("the log has not grown to tile/{path} yet; the checkpoint says how far it has"),
            )
        })
    }

    /// The log's verifier key (`origin+keyid+base64`), for note verifiers.
    pub fn log_verifier_key(&self) -> Result<String> {
        Ok(self.ledger()?.verifier_key()?.encode())
    }

    /// Stores a witness's cosignature after checking it against the checkpoint of that size.
    pub fn add_cosignature(&self, sub: &CosignatureSubmission) -> Result<Vec<String>> {
        let key = VerifierKey::parse(&sub.witness_key).map_err(|e| AppError::bad_input(e.to_string()))?;
        Ok(self.ledger()?.add_cosignature(sub.tree_size, &key, &sub.cosignature)?)
    }

    /// The witness in `witness_dir` cosigns this log's newest checkpoint (after checking it extends what it
    /// cosigned before), and the cosignature is stored in the log.
    pub fn witness_cosign(&self, witness_dir: &Path) -> Result<CosignOutcome> {
        let mut w = Witness::open(witness_dir)?;
        let ledger = self.ledger()?;
        let origin = ledger.origin()?;
        let (stored, _) = w.head(&origin).ok_or_else(|| WitnessError::UnknownLog { origin: origin.clone() })?;
        let sth = newest(ledger.latest_checkpoint()?)?;
        let note = ledger.checkpoint_note(&sth)?;
        // A log that shrank has no proof to give: the witness then names the rollback.
        let proof = if stored <= sth.head.tree_size {
            ledger.consistency_proof(stored, sth.head.tree_size)?
        } else {
            Vec::new()
        };
        let accepted = w.accept(&note, &proof, ledger.key_chain()?.handovers(), now())?;
        let line = accepted.cosignature.line();
        let key = w.key().verifier_key()?;
        let cosigned_by = ledger.add_cosignature(accepted.tree_size, &key, &line)?;
        Ok(outcome(accepted, line, cosigned_by))
    }
}

fn outcome(a: consentry_ledger::witness::Accepted, line: String, cosigned_by: Vec<String>) -> CosignOutcome {
    CosignOutcome {
        origin: a.origin,
        previous_size: a.previous_size,
        tree_size: a.tree_size,
        root_hash: hex::encode(a.root_hash),
        cosignature: line.trim_end().to_string(),
        cosigned_by,
    }
}

fn newest(sth: Option<SignedTreeHead>) -> Result<SignedTreeHead> {
    sth.ok_or_else(|| {
        AppError::new(ErrorKind::NotFound, "the log has no signed checkpoint yet: run `consentry ledger checkpoint`")
    })
}

fn now() -> u64 {
    u64::try_from(consentry_ledger::now()).unwrap_or(0)
}

/// The witness in `witness_dir` cosigns the newest checkpoint of the service at `url` (`http://host:port`),
/// read with `GET /v1/log/checkpoint/note` and `GET /v1/log/proofs/consistency`, and sends the cosignature back
/// with `POST /v1/log/cosignatures` (an operator's API key).
pub fn cosign_remote(witness_dir: &Path, url: &str, api_key: &str) -> Result<CosignOutcome> {
    let mut w = Witness::open(witness_dir)?;
    let target = Target::parse(url)?;
    let cp: CheckpointNote = target.get_json("/v1/log/checkpoint/note", api_key)?;
    let note = Note::parse(&cp.note).map_err(|e| AppError::wrap(ErrorKind::Integrity, e))?;
    let body =
        consentry_ledger::note::Checkpoint::parse(note.text()).map_err(|e| AppError::wrap(ErrorKind::Integrity, e))?;
    let (stored, _) = w.head(&body.origin).ok_or_else(|| WitnessError::UnknownLog { origin: body.origin.clone() })?;
    let proof: Vec<Hash> = if stored < body.tree_size && stored > 0 {
        let p: crate::evidence::ConsistencyProof =
            target.get_json(&format!("/v1/log/proofs/consistency?from={stored}&to={}", body.tree_size), api_key)?;
        p.proof
            .iter()
            .map(|h| {
                hex::decode(h).ok().and_then(|v| v.try_into().ok()).ok_or_else(|| {
                    AppError::new(
                        ErrorKind::Integrity,
                        "the service's consistency proof holds a hash that is not 32 bytes of hex",
                    )
                })
            })
            .collect::<Result<_>>()?
    } else {
        Vec::new()
    };
    let accepted = w.accept(&cp.note, &proof, &cp.key_handovers, now())?;
    let line = accepted.cosignature.line();
    let sub = CosignatureSubmission {
        tree_size: accepted.tree_size,
        witness_key: w.key().verifier_key()?.encode(),
        cosignature: line.trim_end().to_string(),
    };
    let body = serde_json::to_vec(&sub).map_err(|e| AppError::internal(e.to_string()))?;
    let stored_by: StoredCosignature = target.request_json("POST", "/v1/log/cosignatures", api_key, Some(&body))?;
    Ok(outcome(accepted, line, stored_by.cosigned_by))
}

/// The service's answer to a stored cosignature.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredCosignature {
    /// The checkpoint's size.
    pub tree_size: u64,
    /// The witnesses that have now cosigned it.
    pub cosigned_by: Vec<String>,
}

/// A plain `http://host:port` service address (the witness talks to a service on its network, or through a
/// TLS-terminating proxy on localhost).
struct Target {
    host: String,
    port: u16,
}

impl Target {
    fn parse(url: &str) -> Result<Target> {
        let bad =
            || AppError::bad_input(format!("--url {url}: expected http://HOST:PORT (https: put a TLS proxy in front)"));
        let rest = url.strip_prefix("http://").ok_or_else(bad)?.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().map_err(|_| bad())?),
            None => (rest, 80),
        };
        if host.is_empty() || host.contains('/') {
            return Err(bad());
        }
        Ok(Target { host: host.trim_start_matches('[').trim_end_matches(']').to_string(), port })
    }

    fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str, api_key: &str) -> Result<T> {
        self.request_json("GET", path, api_key, None)
    }

    fn request_json<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        api_key: &str,
        body: Option<&[u8]>,
    ) -> Result<T> {
        let (status, answer) = self.request(method, path, api_key, body)?;
        if !(200..300).contains(&status) {
            let detail = serde_json::from_slice::<serde_json::Value>(&answer)
                .ok()
                .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&answer).chars().take(300).collect());
            let kind = match status {
                401 => ErrorKind::Unauthenticated,
                403 => ErrorKind::Forbidden,
                404 => ErrorKind::NotFound,
                400 => ErrorKind::BadInput,
                _ => ErrorKind::Unavailable,
            };
            return Err(AppError::new(kind, format!("{method} {path} answered HTTP {status}: {detail}")));
        }
        serde_json::from_slice(&answer).map_err(|e| {
            AppError::new(ErrorKind::Unavailable, format!("{method} {path}: the answer is not the expected JSON: {e}"))
        })
    }

    /// One request per connection (`connection: close`), the answer read to its end (at most 4 MiB).
    fn request(&self, method: &str, path: &str, api_key: &str, body: Option<&[u8]>) -> Result<(u16, Vec<u8>)> {
        use std::io::{Read, Write};
        use std::net::{TcpStream, ToSocketAddrs};
        use std::time::Duration;
        let down = |e: std::io::Error| {
            AppError::new(ErrorKind::Unavailable, format!("{method} http://{}:{}{path}: {e}", self.host, self.port))
        };
        let addr =
            (self.host.as_str(), self.port).to_socket_addrs().map_err(down)?.next().ok_or_else(|| {
                AppError::new(ErrorKind::Unavailable, format!("{} resolves to no address", self.host))
            })?;
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).map_err(down)?;
        s.set_read_timeout(Some(Duration::from_secs(60))).map_err(down)?;
        s.set_write_timeout(Some(Duration::from_secs(60))).map_err(down)?;
        let body = body.unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}:{}\r\nconnection: close\r\nuser-agent: consentry-witness/{}\r\n\
             authorization: Bearer {api_key}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            self.host,
            self.port,
            env!("CARGO_PKG_VERSION"),
            body.len()
        );
        s.write_all(head.as_bytes()).and_then(|()| s.write_all(body)).map_err(down)?;
        let mut answer = Vec::new();
        s.take(4 << 20).read_to_end(&mut answer).map_err(down)?;
        let split = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| AppError::new(ErrorKind::Unavailable, format!("{method} {path}: the answer is not HTTP")))?;
        let status = crate::openlineage::status_code(&answer)
            .ok_or_else(|| AppError::new(ErrorKind::Unavailable, format!("{method} {path}: the answer is not HTTP")))?;
        let headers = String::from_utf8_lossy(&answer[..split]).to_ascii_lowercase();
        if headers.contains("transfer-encoding: chunked") {
            return Err(AppError::new(
                ErrorKind::Unavailable,
                format!("{method} {path}: chunked answers are not read"),
            ));
        }
        Ok((status, answer[split + 4..].to_vec()))
    }
}

/// Reads `--witness-key` files (each one or more `name+keyid+base64` lines of type 0x04) and `--witnesses N`;
/// requiring more cosignatures than witnesses given is refused.
pub fn load_policy(key_files: &[PathBuf], required: usize) -> Result<WitnessPolicy> {
    let mut keys: Vec<VerifierKey> = Vec::new();
    for f in key_files {
        let text = std::fs::read_to_string(f)
            .map_err(|e| AppError::bad_input(format!("cannot read witness key {}: {e}", f.display())))?;
        let parsed =
            WitnessPolicy::parse_keys(&text).map_err(|e| AppError::bad_input(format!("{}: {e}", f.display())))?;
        if parsed.is_empty() {
            return Err(AppError::bad_input(format!("{} holds no witness key", f.display())));
        }
        for k in parsed {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    if required > keys.len() {
        return Err(AppError::bad_input(format!(
            "--witnesses {required} requires more cosignatures than the {} witness key(s) given: pass a \
             --witness-key FILE per trusted witness",
            keys.len()
        )));
    }
    Ok(WitnessPolicy { keys, required })
}

/// A receipt checked against the ledger's key and a witness policy.
pub struct WitnessedReceiptCheck {
    /// The receipt check (signature, inclusion, record).
    pub check: ReceiptCheck,
    /// Who cosigned its tree head (when the receipt itself verified).
    pub tally: Option<WitnessTally>,
}

/// Verifies a receipt file offline and requires `policy`'s cosignatures of its tree head.
pub fn verify_receipt_witnessed(
    file: &Path,
    public_key: &Path,
    policy: &WitnessPolicy,
) -> Result<WitnessedReceiptCheck> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| AppError::bad_input(format!("cannot read {}: {e}", file.display())))?;
    let key = PublicKey::load(public_key)?;
    let _: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| AppError::bad_input(format!("{} is not a Consentry receipt: {e}", file.display())))?;
    match AnyReceipt::verify_json_witnessed(&text, &key, policy) {
        Ok((receipt, tally)) => {
            Ok(WitnessedReceiptCheck { check: ReceiptCheck { key, verdict: Ok(receipt) }, tally: Some(tally) })
        }
        Err(e) => Ok(WitnessedReceiptCheck {
            check: ReceiptCheck { key, verdict: Err(AppError::wrap(ErrorKind::Integrity, e)) },
            tally: None,
        }),
    }
}
