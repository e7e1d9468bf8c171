//! The data directory: the only place in the workspace that knows its layout. Every other crate and front end asks
//! a [`DataDir`] for a path; none spells a file name of the layout.

use crate::error::{AppError, Context as _, ErrorKind, Result};
use consentry_ledger::LogKey;
use consentry_policy::{DEFAULT_POLICY, Policy};
use std::path::{Path, PathBuf};

/// The policy in force.
const POLICY_FILE: &str = "policy.toml";
/// The SQLite ledger (and the lineage registry beside it).
const DB_FILE: &str = "ledger.db";
/// The ledger's secret Ed25519 signing key.
const KEY_FILE: &str = "ledger.key";
/// The ledger's public key, for verifiers.
const PUBLIC_KEY_FILE: &str = "ledger.pub";
/// The synthetic network's Parquet tables.
const NETWORK_DIR: &str = "network";
/// Gated datasets, one directory per purpose.
const DATASETS_DIR: &str = "datasets";
/// Trained models, one directory per model version.
const MODELS_DIR: &str = "models";
/// Audit evidence bundles written by the service.
const BUNDLES_DIR: &str = "bundles";
/// Recorded audit runs, inside the bundles directory.
const AUDIT_RUNS_DIR: &str = "audit-runs";
/// Marks a data directory made by `demo`, so a rerun may replace its ledger.
const DEMO_MARKER: &str = ".consentry-demo";
/// The secret key every differential-privacy noise draw is keyed by.
const DP_KEY_FILE: &str = "dp-noise.key";
/// The secret Ed25519 key member bearer tokens are signed with (not the ledger's key: rotating one leaves the other).
const TOKEN_KEY_FILE: &str = "token.key";
/// Operator and auditor API keys: their ids, roles and hashes (never a secret).
const API_KEYS_FILE: &str = "api-keys.json";
/// The signed, hash-chained record of operator actions that change the policy in force (notice publications).
const OPERATOR_ACTIONS_FILE: &str = "operator-actions.jsonl";
/// Web sessions signed out before their expiry (their ids, until they would have expired).
const SIGNED_OUT_FILE: &str = "web-sessions-signed-out.json";
/// The data directory's own format version.
const FORMAT_FILE: &str = "consentry-data.toml";
/// The privacy officer's report (`consentry report`, the demo's last stage).
const REPORT_FILE: &str = "report.html";

/// The data-directory format this release writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// A data directory, and where each part of it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
    /// The ledger's secret key when it lives outside the directory (`--signing-key`).
    signing_key: Option<PathBuf>,
}

/// Where a policy's text came from.
#[derive(Debug, Clone)]
pub struct PolicyText {
    /// The file it was read from, or a label for the built-in default.
    pub name: String,
    /// The TOML.
    pub text: String,
}

/// What the data directory's format file says.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FormatStamp {
    /// The layout version ([`FORMAT_VERSION`] when written by this release).
    pub format: u32,
    /// The release that last wrote the stamp.
    pub written_by: String,
}

impl DataDir {
    /// The data directory at `root` (nothing is read or created yet).
    pub fn new(root: impl AsRef<Path>) -> DataDir {
        DataDir { root: root.as_ref().to_path_buf(), signing_key: None }
    }

    /// The same directory with the ledger's secret key at `path` (`--signing-key FILE`, `CONSENTRY_SIGNING_KEY`),
    /// so the key can live outside the data directory (another disk, a secrets mount); `None` keeps
    /// `DATA/ledger.key`.
    pub fn with_signing_key(mut self, path: Option<PathBuf>) -> DataDir {
        self.signing_key = path;
        self
    }

    /// Whether the signing key was placed outside the directory (`--signing-key`).
    pub fn signing_key_given(&self) -> bool {
        self.signing_key.is_some()
    }

    /// Reads the ledger's secret signing key: the one door every use case signing with the ledger's key goes
    /// through. Refuses a key file that group or others may read (Unix), with the fix; a missing key says where it
    /// was looked for and how to point elsewhere.
    pub fn load_signing_key(&self) -> Result<LogKey> {
        let path = self.key_file();
        if !path.exists() {
            if self.signing_key.is_none() && self.public_key_file().exists() {
                return Err(AppError::new(
                    ErrorKind::NotFound,
                    format!(
                        "no signing key at {}: where the ledger's key lives outside the data directory, \
                         pass --signing-key FILE (or set CONSENTRY_SIGNING_KEY)",
                        path.display()
                    ),
                ));
            }
            if self.signing_key.is_some() {
                return Err(AppError::bad_input(format!(
                    "--signing-key {}: no such key file (`ledger init --signing-key FILE` creates one)",
                    path.display()
                )));
            }
            return Err(self.no_ledger());
        }
        check_key_permissions(&path)?;
        Ok(LogKey::load(&path)?)
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The policy in force.
    pub fn policy_file(&self) -> PathBuf {
        self.root.join(POLICY_FILE)
    }

    /// The SQLite ledger file (also holds the lineage registry).
    pub fn ledger_db(&self) -> PathBuf {
        self.root.join(DB_FILE)
    }

    /// The SQLite ledger file and its write-ahead log and shared-memory sidecars.
    pub fn ledger_db_files(&self) -> [PathBuf; 3] {
        ["", "-wal", "-shm"].map(|suffix| self.root.join(format!("{DB_FILE}{suffix}")))
    }

    /// The ledger's secret signing key: `--signing-key FILE` when given, else `DATA/ledger.key`. Read it through
    /// [`DataDir::load_signing_key`].
    pub fn key_file(&self) -> PathBuf {
        self.signing_key.clone().unwrap_or_else(|| self.root.join(KEY_FILE))
    }

    /// The ledger's public key, handed to auditors and receipt holders.
    pub fn public_key_file(&self) -> PathBuf {
        self.root.join(PUBLIC_KEY_FILE)
    }

    /// The synthetic network's tables.
    pub fn network_dir(&self) -> PathBuf {
        self.root.join(NETWORK_DIR)
    }

    /// Where gated datasets go.
    pub fn datasets_dir(&self) -> PathBuf {
        self.root.join(DATASETS_DIR)
    }

    /// The default dataset directory of a purpose (`train_ai_system.job_recommendations` → `datasets/job_recommendations`).
    pub fn dataset_dir(&self, purpose: &str) -> PathBuf {
        self.datasets_dir().join(purpose.rsplit('.').next().unwrap_or(purpose))
    }

    /// Where trained models go.
    pub fn models_dir(&self) -> PathBuf {
        self.root.join(MODELS_DIR)
    }

    /// The default model directory of a model kind (`job-recs`, `content`, `replies`).
    pub fn model_dir(&self, kind: &str) -> PathBuf {
        self.models_dir().join(kind)
    }

    /// Where `consentry report` and the demo write the privacy officer's HTML report by default.
    pub fn report_file(&self) -> PathBuf {
        self.root.join(REPORT_FILE)
    }

    /// Where the service keeps evidence bundles it exports.
    pub fn bundles_dir(&self) -> PathBuf {
        self.root.join(BUNDLES_DIR)
    }

    /// Where the service records audit runs (`POST /v1/audits`): `<id>.json` and its signature `<id>.sig`.
    pub fn audit_runs_dir(&self) -> PathBuf {
        self.bundles_dir().join(AUDIT_RUNS_DIR)
    }

    /// The secret key every differential-privacy noise draw is keyed by.
    pub fn dp_key_file(&self) -> PathBuf {
        self.root.join(DP_KEY_FILE)
    }

    /// The secret key member bearer tokens are signed with (made on first `consentry token`).
    pub fn token_key_file(&self) -> PathBuf {
        self.root.join(TOKEN_KEY_FILE)
    }

    /// The operator and auditor API keys (hashes only).
    pub fn api_keys_file(&self) -> PathBuf {
        self.root.join(API_KEYS_FILE)
    }

    /// The signed record of operator actions (each line signed by the ledger's key, chained to the one before).
    pub fn operator_actions_file(&self) -> PathBuf {
        self.root.join(OPERATOR_ACTIONS_FILE)
    }

    /// Holds an exclusive lock on the data directory while the returned file is open, so two processes changing
    /// one of its files (the API keys, the policy in force) never lose each other's change.
    pub fn lock(&self) -> Result<std::fs::File> {
        let root = &self.root;
        let lock = std::fs::File::open(root)
            .map_err(|e| AppError::wrap(ErrorKind::Unavailable, e).context(format!("opening {}", root.display())))?;
        lock.lock()
            .map_err(|e| AppError::wrap(ErrorKind::Unavailable, e).context(format!("locking {}", root.display())))?;
        Ok(lock)
    }

    /// The web sessions signed out before their expiry.
    pub fn signed_out_file(&self) -> PathBuf {
        self.root.join(SIGNED_OUT_FILE)
    }

    /// The marker of a data directory the demo made.
    pub fn demo_marker(&self) -> PathBuf {
        self.root.join(DEMO_MARKER)
    }

    /// The data directory's format stamp.
    pub fn format_file(&self) -> PathBuf {
        self.root.join(FORMAT_FILE)
    }

    /// `path` relative to the data directory when inside it (so a data directory can move), else absolute.
    pub fn relative_name(&self, path: &Path) -> String {
        let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let (file, data) = (abs(path), abs(&self.root));
        match file.strip_prefix(&data) {
            Ok(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
            _ => file.display().to_string(),
        }
    }

    /// Reverses [`DataDir::relative_name`]: a relative name is inside the data directory.
    pub fn resolve_name(&self, name: &str) -> PathBuf {
        let p = PathBuf::from(name);
        if p.is_relative() { self.root.join(p) } else { p }
    }

    /// The error when the data directory is something other than a directory (a regular file, say).
    pub fn not_a_directory(&self) -> Option<AppError> {
        let meta = std::fs::metadata(&self.root).ok()?;
        (!meta.is_dir()).then(|| {
            AppError::bad_input(format!(
                "--data {} is a file, not a data directory: pass a directory (it is created when missing)",
                self.root.display()
            ))
        })
    }

    /// The error for a use case that needs a ledger this data directory does not have yet.
    pub fn no_ledger(&self) -> AppError {
        if let Some(e) = self.not_a_directory() {
            return e;
        }
        let shown = std::path::absolute(&self.root).unwrap_or_else(|_| self.root.clone());
        AppError::new(
            ErrorKind::NotFound,
            format!(
                "no ledger in {}: run `consentry --data {} ledger init` (or `demo`) first",
                shown.display(),
                self.root.display()
            ),
        )
    }

    /// Makes the directory, puts the default policy in force if none is, and stamps the format.
    pub fn init(&self) -> Result<()> {
        if let Some(e) = self.not_a_directory() {
            return Err(e);
        }
        std::fs::create_dir_all(&self.root)
            .map_err(|e| AppError::wrap(ErrorKind::Unavailable, e))
            .with_context(|| format!("cannot create data directory {}", self.root.display()))?;
        let path = self.policy_file();
        if !path.exists() {
            std::fs::write(&path, DEFAULT_POLICY)
                .map_err(|e| AppError::wrap(ErrorKind::Unavailable, e))
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        self.check_format(true)?;
        Ok(())
    }

    /// Reads the format stamp: `None` for a directory made before stamps existed (format 1).
    pub fn format(&self) -> Result<Option<FormatStamp>> {
        // No directory yet (or a file in its place, which the use case will name): nothing to stamp or refuse.
        if !self.root.is_dir() {
            return Ok(None);
        }
        let path = self.format_file();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(AppError::wrap(ErrorKind::Unavailable, e).context(format!("reading {}", path.display())));
            }
        };
        toml::from_str(&text).map(Some).map_err(|e| {
            AppError::new(
                ErrorKind::Integrity,
                format!("{} is not a Consentry format stamp ({e}); restore it from a backup", path.display()),
            )
        })
    }

    /// Refuses a data directory written by a newer release; stamps an unstamped (older) one when `write` is set.
    /// Returns the format version in force.
    pub fn check_format(&self, write: bool) -> Result<u32> {
        match self.format()? {
            Some(s) if s.format > FORMAT_VERSION => Err(AppError::new(
                ErrorKind::BadInput,
                format!(
                    "{} has data-directory format {} (written by {}), but this consentry understands up to format \
                     {FORMAT_VERSION}: upgrade consentry",
                    self.root.display(),
                    s.format,
                    s.written_by
                ),
            )),
            // No release wrote a format below 1: an edited stamp, not an old directory.
            Some(s) if s.format < 1 => Err(AppError::new(
                ErrorKind::Integrity,
                format!(
                    "{} says format {}, which no consentry release wrote: the stamp was edited; restore it (format = \
                     {FORMAT_VERSION}) or remove it to have it written again",
                    self.format_file().display(),
                    s.format
                ),
            )),
            Some(s) => Ok(s.format),
            None if write && self.root.is_dir() => {
                self.stamp()?;
                Ok(FORMAT_VERSION)
            }
            None => Ok(FORMAT_VERSION),
        }
    }

    /// Writes the format stamp (atomically). The ledger and registry tables record their own schema versions in
    /// the store (`consentry_schema`), migrated when a writable session opens them.
    pub fn stamp(&self) -> Result<()> {
        let stamp = FormatStamp {
            format: FORMAT_VERSION,
            written_by: concat!("consentry ", env!("CARGO_PKG_VERSION")).to_string(),
        };
        let text =
            toml::to_string(&stamp).map_err(|e| AppError::internal(format!("encoding the format stamp: {e}")))?;
        let text = format!("# The format of this Consentry data directory; do not edit.\n{text}");
        // Never through a link: a link planted in the data directory must not make consentry write elsewhere.
        consentry_files::write(
            &self.format_file(),
            text.as_bytes(),
            consentry_files::OutputOptions::PUBLIC.no_follow(),
        )
        .map_err(AppError::from)
        .with_context(|| format!("writing {}", self.format_file().display()))?;
        Ok(())
    }

    /// Reads `file`, or the policy in force, or the shipped default.
    pub fn policy_text(&self, file: Option<&Path>) -> Result<PolicyText> {
        let in_force = self.policy_file();
        let path: Option<PathBuf> = match file {
            Some(f) => Some(f.to_path_buf()),
            None if in_force.exists() => Some(in_force),
            None => None,
        };
        match path {
            Some(p) => {
                let text = std::fs::read_to_string(&p).map_err(|e| {
                    AppError::bad_input(format!(
                        "cannot read policy file {}: {e}; pass an existing TOML file",
                        p.display()
                    ))
                })?;
                Ok(PolicyText { name: p.display().to_string(), text })
            }
            None => Ok(PolicyText { name: "policy/default.toml (built in)".into(), text: DEFAULT_POLICY.to_string() }),
        }
    }

    /// Loads and validates `file`, or the policy in force (the error keeps the `PolicyError` with its diagnostics).
    pub fn load_policy(&self, file: Option<&Path>) -> Result<Policy> {
        let src = self.policy_text(file)?;
        Ok(Policy::from_toml(&src.name, &src.text)?)
    }
}

/// Refuses a secret key file that group or others may read or write (Unix): a signing key readable by every
/// account on the host is a leaked key. Only the permission bits of the file the path resolves to are checked.
pub fn check_key_permissions(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path)
            .map_err(|e| AppError::bad_input(format!("cannot read key file {}: {e}", path.display())))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(AppError::bad_input(format!(
                "the signing key {} may be read by other accounts (mode {mode:04o}); refusing to use it: run `chmod \
                 600 {}` (and consider the key leaked if others could read it: rotate it with `consentry ledger \
                 rotate-key`)",
                path.display(),
                path.display()
            )));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[cfg(unix)]
    #[test]
    fn key_files_readable_by_others_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, "x").unwrap();
        for mode in [0o640, 0o644, 0o660, 0o602] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = super::check_key_permissions(&path).unwrap_err();
            assert!(e.to_string().contains(&format!("chmod 600 {}", path.display())), "{e}");
        }
        for mode in [0o600, 0o400] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            super::check_key_permissions(&path).unwrap();
        }
    }

    use super::*;

    #[test]
    fn init_stamps_and_a_newer_format_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path().join("d"));
        dir.init().unwrap();
        assert_eq!(dir.format().unwrap().unwrap().format, FORMAT_VERSION);
        assert!(dir.policy_file().exists());
        std::fs::write(dir.format_file(), "format = 99\nwritten_by = \"consentry 9.0\"\n").unwrap();
        let e = dir.check_format(false).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BadInput);
        assert!(e.to_string().contains("format 99"), "{e}");
        assert!(e.to_string().contains("upgrade consentry"), "{e}");
        assert!(dir.init().is_err());
    }

    #[test]
    fn an_unstamped_directory_is_stamped_only_when_writing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path());
        assert_eq!(dir.check_format(false).unwrap(), FORMAT_VERSION);
        assert!(!dir.format_file().exists());
        assert_eq!(dir.check_format(true).unwrap(), FORMAT_VERSION);
        assert!(dir.format_file().exists());
    }

    #[test]
    fn a_garbled_stamp_is_an_integrity_error() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path());
        std::fs::write(dir.format_file(), "format = \"one\"").unwrap();
        assert_eq!(dir.check_format(false).unwrap_err().kind(), ErrorKind::Integrity);
    }

    #[test]
    fn names_inside_the_directory_are_relative() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path());
        let inside = dir.root().join("sources.toml");
        assert_eq!(dir.relative_name(&inside), "sources.toml");
        assert_eq!(dir.resolve_name("sources.toml"), inside);
        assert_eq!(
            dir.dataset_dir("train_ai_system.job_recommendations"),
            dir.datasets_dir().join("job_recommendations")
        );
    }
}
