//! The policy in force and the operator's one change to it: publishing a new notice version of a purpose.
//!
//! The policy in force is the data directory's policy file, nowhere else. Publishing appends the new notice to that
//! file (checked by the policy compiler first, written atomically under the data directory's lock) and puts it in
//! force in this process's ledger at once; every other process on the data directory sees the file change at its
//! next ledger call ([`Session::ledger`]) and puts it in force too. The publication is recorded first in the
//! operator-actions record: one JSON line per action, signed with the ledger's key and chained to the line before,
//! carrying the policy text it put in force, so the record proves who changed the policy, when, from which text to
//! which, and [`Session::verify_operator_actions`] detects an altered, forged, reordered or removed line and a
//! policy file changed without a record.
//!
//! Limits: the record lives in the data directory, so `serve` processes on one PostgreSQL database must share that
//! directory (as they already do for the keys and the policy); a truncated record whose policy file was rolled
//! back with it is consistent and not detected (nothing outside the directory anchors the record yet).

use crate::error::{AppError, Context as _, ErrorKind, Result};
use crate::filecache::FileStamp;
use crate::session::Session;
use consentry_ledger::{LabelledVerifier, Ledger, LogKey};
use consentry_policy::{Notice, Policy, Purpose};

/// The domain label of an operator action's signature.
pub const ACTION_LABEL: &str = "consentry operator action v1";
/// The longest notice text accepted (characters).
pub const MAX_NOTICE_TEXT: usize = 20_000;

/// The policy in force, as operators and platforms read it.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicyInForce {
    /// The compiled policy: version, controller, BLAKE3 of its text, categories, purposes with every notice
    /// version, jurisdiction rules (per-purpose defaults indexed like `purposes`) and groups.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub policy: Policy,
    /// The deadline from a withdrawal to "no live model contains the member" the service's unlearning applies.
    pub unlearning_deadline_secs: i64,
}

/// A new notice version of a purpose, as an operator sends it.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewNotice {
    /// The words shown to members.
    pub text: String,
    /// A material change makes every grant under earlier versions lapse now: members must agree again.
    pub material: bool,
    /// BCP 47 language tag of `text` [default: `en`].
    #[serde(default)]
    pub language: Option<String>,
}

/// One signed line of the operator-actions record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OperatorAction {
    /// 1-based position in the record.
    pub seq: u64,
    /// When it was done (Unix seconds).
    pub at: i64,
    /// Who did it (`operator key k…`).
    pub actor: String,
    /// What was done: `adopt_policy` (the first line: the policy in force before the first change) or
    /// `publish_notice`.
    pub action: String,
    /// The purpose whose notice was published.
    pub purpose: String,
    /// The new notice version.
    pub notice_version: u32,
    /// Whether it is material.
    pub material: bool,
    /// BLAKE3 of the policy text in force before (empty on the `adopt_policy` line).
    pub policy_before: String,
    /// BLAKE3 of the policy text put in force.
    pub policy_after: String,
    /// The policy text put in force, byte for byte (so every policy ever in force can be recovered).
    pub policy_text: String,
    /// BLAKE3 of the previous line's signed bytes and signature (64 zeros for the first line).
    pub prev: String,
    /// Ed25519 signature by the ledger's key over the line's fields (hex).
    pub signature: String,
}

/// What a publication did.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Published {
    /// The purpose.
    pub purpose: String,
    /// The notice now in force for it: every choice must name this version.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub notice: Notice,
    /// The signed record of the publication.
    pub action: OperatorAction,
}

/// The operator-actions record and what checking it found.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OperatorActions {
    /// Every action, oldest first.
    pub actions: Vec<OperatorAction>,
    /// One line per problem (bad signature, broken chain, policy file not the one last recorded); empty when the
    /// record verifies.
    pub problems: Vec<String>,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl OperatorAction {
    /// The bytes the signature covers: every field but the signature, each length-prefixed or fixed-width.
    fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.policy_text.len());
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.at.to_be_bytes());
        put_str(&mut out, &self.actor);
        put_str(&mut out, &self.action);
        put_str(&mut out, &self.purpose);
        out.extend_from_slice(&self.notice_version.to_be_bytes());
        out.push(u8::from(self.material));
        put_str(&mut out, &self.policy_before);
        put_str(&mut out, &self.policy_after);
        put_str(&mut out, &self.policy_text);
        put_str(&mut out, &self.prev);
        out
    }

    /// The action with its signature by `key`.
    fn signed(mut self, key: &LogKey) -> OperatorAction {
        self.signature = hex::encode(key.sign_labelled(ACTION_LABEL, &self.signed_bytes()));
        self
    }

    /// What the next line's `prev` names.
    fn link_hash(&self) -> String {
        let mut h = blake3::Hasher::new();
        h.update(&self.signed_bytes());
        h.update(self.signature.as_bytes());
        h.finalize().to_hex().to_string()
    }

    /// Why the signature does not verify with `key`; `None` when it does.
    fn signature_problem(&self, key: &dyn LabelledVerifier) -> Option<String> {
        let raw: Option<[u8; 64]> = hex::decode(&self.signature).ok().and_then(|b| b.try_into().ok());
        match raw {
            Some(raw) if key.verify_labelled(ACTION_LABEL, &self.signed_bytes(), &raw) => None,
            _ => Some(format!(
                "operator action {}: the signature does not verify with the ledger's public key",
                self.seq
            )),
        }
    }
}

/// The first line's `prev`.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn text_hash(text: &str) -> String {
    blake3::hash(text.as_bytes()).to_hex().to_string()
}

/// Checks a record line by line against `key` and the policy text in force; one line per problem.
pub fn verify_actions(actions: &[OperatorAction], key: &dyn LabelledVerifier, policy_text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut prev = GENESIS.to_string();
    let mut before: Option<&str> = None;
    for (i, a) in actions.iter().enumerate() {
        if a.seq != i as u64 + 1 {
            problems.push(format!(
                "operator action at line {} says seq {}: lines were removed or reordered",
                i + 1,
                a.seq
            ));
        }
        if let Some(p) = a.signature_problem(key) {
            problems.push(p);
        }
        if a.prev != prev {
            problems.push(format!("operator action {}: its link to the line before is broken", a.seq));
        }
        if text_hash(&a.policy_text) != a.policy_after {
            problems.push(format!("operator action {}: the policy text is not the one its hash names", a.seq));
        }
        if let Some(b) = before
            && b != a.policy_before
        {
            problems.push(format!(
                "operator action {}: the policy before it is not the one the line before put in force",
                a.seq
            ));
        }
        prev = a.link_hash();
        before = Some(&a.policy_after);
    }
    if let Some(last) = actions.last()
        && last.policy_after != text_hash(policy_text)
    {
        problems.push(format!(
            "the policy file in force (BLAKE3 {}) is not the one operator action {} put in force: it was changed \
             without a record",
            text_hash(policy_text),
            last.seq
        ));
    }
    problems
}

impl Session {
    /// Puts the policy file in force in `ledger` when it changed since this process last read it.
    pub(crate) fn refresh_policy(&self, ledger: &Ledger) -> Result<()> {
        let path = self.dir().policy_file();
        let now = FileStamp::read(&path);
        let mut stamp =
            self.policy_stamp.lock().map_err(|_| AppError::internal("the policy stamp lock is poisoned"))?;
        if *stamp == now {
            return Ok(());
        }
        let policy = self.dir().load_policy(None).context("reading the policy in force again, after it changed")?;
        ledger.set_policy(policy);
        *stamp = now;
        Ok(())
    }

    /// The policy in force, with the unlearning deadline the service applies.
    pub fn policy_in_force(&self) -> Result<PolicyInForce> {
        Ok(PolicyInForce {
            policy: self.ledger()?.policy().clone(),
            unlearning_deadline_secs: crate::unlearn::UnlearnOptions::service().deadline_secs,
        })
    }

    /// Every purpose the policy in force declares, with its notices.
    pub fn purposes(&self) -> Result<Vec<Purpose>> {
        Ok(self.ledger()?.policy().purposes.clone())
    }

    /// One declared purpose ([`ErrorKind::NotFound`] when the policy has none of that key).
    pub fn purpose(&self, key: &str) -> Result<Purpose> {
        let pid = self.declared_purpose(key)?;
        Ok(self.ledger()?.policy().purpose(pid).clone())
    }

    /// The operator-actions record and what checking it against the ledger's public key and the policy file found.
    pub fn operator_actions(&self) -> Result<OperatorActions> {
        let actions = self.read_actions()?;
        let key = self.key_chain()?;
        let text = self.dir().policy_text(None)?.text;
        let problems = verify_actions(&actions, &key, &text);
        Ok(OperatorActions { actions, problems })
    }

    /// Checks the operator-actions record: [`ErrorKind::Integrity`] naming every problem when it does not verify.
    pub fn verify_operator_actions(&self) -> Result<usize> {
        let out = self.operator_actions()?;
        if out.problems.is_empty() {
            Ok(out.actions.len())
        } else {
            Err(AppError::new(ErrorKind::Integrity, out.problems.join("; ")))
        }
    }

    /// Every policy text the operator-actions record shows in force before `current` (oldest first, each once),
    /// for the audit to recompute a dataset cut under one of them. The audit matches them by the hash a manifest
    /// records, so a text here vouches for nothing by itself.
    pub(crate) fn earlier_policies(&self, current: &str) -> Result<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        for a in self.read_actions()? {
            if a.policy_text != current && !out.contains(&a.policy_text) {
                out.push(a.policy_text);
            }
        }
        Ok(out)
    }

    fn read_actions(&self) -> Result<Vec<OperatorAction>> {
        let path = self.dir().operator_actions_file();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(AppError::wrap(ErrorKind::Unavailable, e).context(format!("reading {}", path.display())));
            }
        };
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l).map_err(|e| {
                    AppError::new(
                        ErrorKind::Integrity,
                        format!(
                            "{} line {} is not an operator action ({e}): restore it from a backup",
                            path.display(),
                            i + 1
                        ),
                    )
                })
            })
            .collect()
    }

    /// Publishes a new notice version of `purpose` (the next number, effective now) on behalf of `actor`: checked
    /// by the policy compiler, recorded signed in the operator-actions record, then put in force. From then on a
    /// member's choice must name the new version (an older one is a stale notice, 409).
    pub fn publish_notice(&self, purpose: &str, notice: NewNotice, actor: &str, now: i64) -> Result<Published> {
        if self.is_read_only() {
            return Err(AppError::bad_input("this session is read-only: no notice can be published"));
        }
        let text = notice.text.trim();
        if text.is_empty() || text.chars().count() > MAX_NOTICE_TEXT {
            return Err(AppError::bad_input(format!(
                "a notice's text is 1 to {MAX_NOTICE_TEXT} characters of the words members are shown"
            )));
        }
        let language = notice.language.unwrap_or_else(|| "en".to_string());
        if language.is_empty()
            || language.len() > 35
            || !language.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(AppError::bad_input(format!("`{language}` is not a BCP 47 language tag (e.g. en, fr-CA)")));
        }
        let ledger = self.ledger()?;
        let _lock = self.dir().lock()?;
        // Under the lock, the file as it is now (another process may have published since this one last read it).
        self.refresh_policy(ledger)?;
        let pid = self.declared_purpose(purpose)?;
        let current = ledger.policy().purpose(pid);
        let version = current.latest_notice().version + 1;
        // Never before the notice it follows takes effect (the compiler refuses that), never in the past.
        let effective = now.max(current.latest_notice().effective);
        let before = self.dir().policy_text(None)?;
        let stamp = chrono::DateTime::from_timestamp(effective, 0)
            .ok_or_else(|| AppError::internal(format!("time {effective} cannot be written as a date")))?
            .format("%Y-%m-%dT%H:%M:%SZ");
        let appended = format!(
            "\n# Published by {actor} at {stamp}.\n[[purposes.{}.notices]]\nversion = {version}\neffective = {stamp}\n\
             material = {}\nlanguage = {}\ntext = {}\n",
            toml::Value::String(purpose.to_string()),
            notice.material,
            toml::Value::String(language),
            toml::Value::String(text.to_string()),
        );
        let after = format!("{}{appended}", before.text);
        let (policy, _warnings) = Policy::check(&before.name, &after)
            .map_err(|e| AppError::bad_input(format!("the notice does not make a valid policy: {e}")))?;
        let key = self.dir().load_signing_key()?;
        let mut actions = self.read_actions()?;
        let problems = verify_actions(&actions, &self.key_chain()?, &before.text);
        if !problems.is_empty() {
            return Err(AppError::new(
                ErrorKind::Integrity,
                format!(
                    "the operator-actions record does not verify, so nothing is published: {}",
                    problems.join("; ")
                ),
            ));
        }
        if actions.is_empty() {
            // The first change also records the text it changes, so every policy ever in force (and so the one any
            // dataset was cut under) can be recovered from the record.
            let adopted = OperatorAction {
                seq: 1,
                at: now,
                actor: actor.to_string(),
                action: "adopt_policy".into(),
                purpose: String::new(),
                notice_version: 0,
                material: false,
                policy_before: String::new(),
                policy_after: text_hash(&before.text),
                policy_text: before.text.clone(),
                prev: GENESIS.to_string(),
                signature: String::new(),
            };
            actions.push(adopted.signed(&key));
        }
        let action = OperatorAction {
            seq: actions.len() as u64 + 1,
            at: now,
            actor: actor.to_string(),
            action: "publish_notice".into(),
            purpose: purpose.to_string(),
            notice_version: version,
            material: notice.material,
            policy_before: text_hash(&before.text),
            policy_after: policy.hash.clone(),
            policy_text: after.clone(),
            prev: actions.last().map_or_else(|| GENESIS.to_string(), OperatorAction::link_hash),
            signature: String::new(),
        }
        .signed(&key);
        actions.push(action.clone());
        // The record first: a crash before the policy file is written leaves a record naming a policy not in force,
        // which verification reports, never a policy change without a record.
        let mut lines = String::new();
        for a in &actions {
            let line = serde_json::to_string(a).map_err(|e| AppError::internal(format!("encoding an action: {e}")))?;
            lines.push_str(&line);
            lines.push('\n');
        }
        let opts = consentry_files::OutputOptions::PUBLIC.no_follow();
        let record = self.dir().operator_actions_file();
        consentry_files::write(&record, lines.as_bytes(), opts)
            .map_err(AppError::from)
            .with_context(|| format!("writing {}", record.display()))?;
        let file = self.dir().policy_file();
        consentry_files::write(&file, after.as_bytes(), opts)
            .map_err(AppError::from)
            .with_context(|| format!("writing {}", file.display()))?;
        let notice = policy.purpose(pid).latest_notice().clone();
        // In force here at once; the stamp moves so this process does not read its own write again.
        ledger.set_policy(policy);
        if let Ok(mut s) = self.policy_stamp.lock() {
            *s = FileStamp::read(&file);
        }
        Ok(Published { purpose: purpose.to_string(), notice, action })
    }
}
