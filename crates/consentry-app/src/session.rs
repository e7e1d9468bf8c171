//! A session: one data directory and its store, with the ledger and the lineage registry opened once (on first
//! use) and shared by every use case and every thread.

use crate::datadir::DataDir;
use crate::error::{AppError, Context as _, ErrorKind, Result};
use consentry_ledger::sqlite::SqliteStore;
use consentry_ledger::{KeyChain, Ledger, LedgerOptions, LogKey, PublicKey, Store};
use consentry_lineage::Registry;
use std::path::PathBuf;
use std::sync::OnceLock;

/// What to say when a connection to PostgreSQL fails.
const PG_CONTEXT: &str = "connecting to PostgreSQL (check --database and that the server is up)";

/// Where the ledger's store is: the one reading of `--database` the ledger and the registry share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// A PostgreSQL database (`postgres://…`).
    Postgres(String),
    /// The SQLite file in the data directory.
    Sqlite(PathBuf),
}

impl Database {
    /// Reads a `--database` value: a PostgreSQL URL, or (without one) the SQLite file in the data directory.
    pub fn parse(dir: &DataDir, url: Option<&str>) -> Result<Database> {
        match url {
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                Ok(Database::Postgres(u.to_string()))
            }
            Some(other) => Err(AppError::bad_input(format!("--database must be a postgres:// URL, got `{other}`"))),
            None => Ok(Database::Sqlite(dir.ledger_db())),
        }
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self {
            Database::Postgres(_) => "postgres",
            Database::Sqlite(_) => "sqlite",
        }
    }
}

/// A data directory and its store, opened for one front end; `Sync`, so a service shares one across requests.
pub struct Session {
    dir: DataDir,
    database: Database,
    read_only: bool,
    ledger: OnceLock<Ledger>,
    registry: OnceLock<Registry>,
    /// The member-token signing key, read once (`auth.rs`): verifying a token is on every request's path.
    pub(crate) token_key: OnceLock<LogKey>,
    /// The API keys as last read (`keys.rs`), re-read when their file changes.
    pub(crate) api_keys: crate::keys::KeyCache,
    /// Consent events this session appended (`stats.rs`).
    pub(crate) appends: crate::stats::AppendCounter,
    /// The policy file as last put in force in the ledger (`notices.rs`): a changed file (a notice published by
    /// this or another process on the data directory) is read again and put in force.
    pub(crate) policy_stamp: std::sync::Mutex<Option<crate::filecache::FileStamp>>,
    /// The platform's member tokens, when configured (`platform.rs`).
    pub(crate) platform: Option<crate::platform::PlatformTokens>,
    /// The signed-out web sessions as last read (`websession.rs`).
    pub(crate) signed_out: crate::websession::SignedOutCache,
    /// Member tokens this session verified (`token_cache.rs`).
    pub(crate) token_cache: crate::token_cache::TokenCache,
    /// The redaction detector the privacy centre shows free text through (`privacy.rs`), rebuilt when the member
    /// names it reads change.
    pub(crate) detector: crate::filecache::FileCache<consentry_redact::Detector>,
    /// Where OpenLineage run events of gate, train and unlearn go, when configured (`openlineage.rs`).
    pub(crate) openlineage: Option<crate::openlineage::Emitter>,
}

impl Session {
    /// A session that may write (append events, register, train). The data directory's format is checked (a newer
    /// one refused); the ledger and the registry open on first use, and opening them for writing stamps an older
    /// directory forward.
    pub fn open(dir: DataDir, database: Option<&str>) -> Result<Session> {
        Session::new(dir, database, false)
    }

    /// A session that never writes, so it works on a read-only copy of a data directory (SQLite opened read-only).
    pub fn open_read_only(dir: DataDir, database: Option<&str>) -> Result<Session> {
        Session::new(dir, database, true)
    }

    fn new(dir: DataDir, database: Option<&str>, read_only: bool) -> Result<Session> {
        let database = Database::parse(&dir, database)?;
        dir.check_format(false)?;
        Ok(Session {
            dir,
            database,
            read_only,
            ledger: OnceLock::new(),
            registry: OnceLock::new(),
            token_key: OnceLock::new(),
            api_keys: Default::default(),
            appends: Default::default(),
            policy_stamp: Default::default(),
            platform: None,
            signed_out: Default::default(),
            token_cache: Default::default(),
            detector: Default::default(),
            openlineage: None,
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &DataDir {
        &self.dir
    }

    /// Whether this session refuses every write.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Where the store is.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// Whether there is a ledger (and so a lineage registry): PostgreSQL, or the SQLite file exists.
    pub fn has_ledger(&self) -> bool {
        match &self.database {
            Database::Sqlite(path) => path.exists(),
            Database::Postgres(_) => true,
        }
    }

    /// Creates the data directory, policy, key pair and store where missing (never replaces a key). The secret key
    /// goes where [`DataDir::key_file`] says (`--signing-key FILE` puts it outside the directory).
    pub fn init_ledger(&self) -> Result<()> {
        self.dir.init()?;
        let key_path = self.dir.key_file();
        if !key_path.exists() {
            let key = LogKey::generate()?;
            key.save(&key_path).with_context(|| format!("writing {}", key_path.display()))?;
        }
        let key = self.dir.load_signing_key()?;
        let pub_path = self.dir.public_key_file();
        if pub_path.exists() {
            // A log's public key is its genesis key for life: an existing one is kept (after a rotation the
            // signing key differs from it, and that is checked when the ledger opens).
            self.open_store()?;
            return Ok(());
        }
        std::fs::write(&pub_path, format!("{}\n", key.public().to_hex()))
            .map_err(|e| AppError::wrap(ErrorKind::Unavailable, e))
            .with_context(|| format!("writing {}", pub_path.display()))?;
        self.open_store()?;
        Ok(())
    }

    /// Opens the store as the session allows (read-only SQLite for a read-only session).
    fn open_store(&self) -> Result<Box<dyn Store>> {
        match &self.database {
            Database::Postgres(url) => Ok(Box::new(
                consentry_ledger::postgres::PgStore::connect(url).map_err(unavailable).context(PG_CONTEXT)?,
            )),
            Database::Sqlite(path) if self.read_only => Ok(Box::new(
                SqliteStore::open_read_only(path).with_context(|| format!("opening {} read-only", path.display()))?,
            )),
            Database::Sqlite(path) => {
                let store = SqliteStore::open(path).with_context(|| format!("opening {}", path.display()))?;
                self.dir.check_format(true)?;
                Ok(Box::new(store))
            }
        }
    }

    /// The ledger, opened on first use (needs `ledger init`: the signing key and the policy in force).
    /// The policy in force is the data directory's policy file as it is now: a notice published since the ledger
    /// opened (by any process) is in force at the next call.
    pub fn ledger(&self) -> Result<&Ledger> {
        if let Some(l) = self.ledger.get() {
            self.refresh_policy(l)?;
            return Ok(l);
        }
        if !self.read_only {
            self.finish_interrupted_rotation()?;
        }
        let key = match self.dir.load_signing_key() {
            Ok(key) => Some(key),
            // A read-only session signs nothing: where its secret key is absent, unreadable or exposed (a read-only
            // copy handed to an auditor), it verifies with the public key alone and refuses anything that signs.
            Err(_) if self.read_only && self.genesis_key()?.is_some() => None,
            Err(e) => return Err(e),
        };
        let stamp = crate::filecache::FileStamp::read(&self.dir.policy_file());
        let policy = self.dir.load_policy(None)?;
        let ledger = match (key, self.genesis_key()?) {
            (Some(key), genesis) => {
                let mut ledger = Ledger::new(self.open_store()?, policy, key, LedgerOptions::default());
                if let Some(genesis) = genesis {
                    ledger = ledger.with_genesis(genesis);
                }
                // A retired key, or a key swapped for one that is not the log's, is refused before anything is
                // written.
                ledger
                    .signing_chain()
                    .with_context(|| format!("checking the signing key {}", self.dir.key_file().display()))?;
                ledger
            }
            (None, Some(genesis)) => Ledger::verifier(self.open_store()?, policy, genesis, LedgerOptions::default()),
            (None, None) => return Err(self.dir.no_ledger()),
        };
        let ledger = self.ledger.get_or_init(|| ledger);
        if let Ok(mut s) = self.policy_stamp.lock()
            && s.is_none()
        {
            *s = stamp;
        }
        Ok(ledger)
    }

    /// The lineage registry in the ledger's store, opened on first use, with the ledger's key to sign records (or
    /// only its public key, to check them, where the data directory holds no secret key).
    pub fn registry(&self) -> Result<&Registry> {
        if let Some(r) = self.registry.get() {
            return Ok(r);
        }
        let reg = match &self.database {
            Database::Postgres(url) => {
                Registry::connect_postgres(url).map_err(unavailable_lineage).context(PG_CONTEXT)?
            }
            Database::Sqlite(path) if !path.exists() => return Err(self.dir.no_ledger()),
            Database::Sqlite(path) if self.read_only => Registry::open_sqlite_read_only(path)
                .with_context(|| format!("opening {} read-only", path.display()))?,
            Database::Sqlite(path) => {
                let reg = Registry::open_sqlite(path).with_context(|| format!("opening {}", path.display()))?;
                // Opening for writing migrates the tables forward; the directory's stamp follows.
                self.dir.check_format(true)?;
                reg
            }
        };
        // Directories inside the data directory are recorded relative to it, so the directory can move.
        let reg = reg.with_base(self.dir.root());
        let key_path = self.dir.key_file();
        let reg = match self.key_chain_opt()? {
            Some(chain) => reg.with_key_chain(chain),
            None => reg,
        };
        let reg = match self.dir.load_signing_key() {
            Ok(key) => reg.with_key(key),
            Err(_) if self.read_only || !key_path.exists() => reg,
            Err(e) => return Err(e),
        };
        Ok(self.registry.get_or_init(|| reg))
    }

    /// The log's genesis public key (`ledger.pub`), when the directory has one.
    fn genesis_key(&self) -> Result<Option<PublicKey>> {
        let pub_path = self.dir.public_key_file();
        if !pub_path.exists() {
            return Ok(None);
        }
        Ok(Some(PublicKey::load(&pub_path)?))
    }

    /// The ledger's chain of keys (genesis key `ledger.pub` and every stored hand-over, verified): what every
    /// check of something signed with the ledger's key verifies against, so it holds across key rotations. Needs
    /// no secret key.
    pub fn key_chain(&self) -> Result<KeyChain> {
        self.key_chain_opt()?.ok_or_else(|| self.dir.no_ledger())
    }

    pub(crate) fn key_chain_opt(&self) -> Result<Option<KeyChain>> {
        if let Some(l) = self.ledger.get() {
            return Ok(Some(l.key_chain()?));
        }
        let genesis = match self.genesis_key()? {
            Some(g) => g,
            None if self.dir.key_file().exists() => self.dir.load_signing_key()?.public(),
            None => return Ok(None),
        };
        if !self.has_ledger() {
            return Ok(Some(KeyChain::new(genesis)));
        }
        let handovers = self.open_store()?.key_handovers()?;
        Ok(Some(KeyChain::from_handovers(genesis, handovers).map_err(consentry_ledger::LedgerError::from)?))
    }
}

/// A failed connection is the database's unavailability, not the caller's mistake (unless the URL is malformed).
fn unavailable(e: consentry_ledger::LedgerError) -> AppError {
    let bad = e.is_bad_input();
    let e = AppError::from(e);
    if bad { e } else { e.with_kind(ErrorKind::Unavailable) }
}

/// As [`unavailable`], for the registry's connection.
fn unavailable_lineage(e: consentry_lineage::LineageError) -> AppError {
    let bad = e.is_bad_input();
    let e = AppError::from(e);
    if bad { e } else { e.with_kind(ErrorKind::Unavailable) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_sync<T: Send + Sync>() {}

    #[test]
    fn a_session_is_shareable_across_threads() {
        assert_sync::<Session>();
    }

    #[test]
    fn database_urls_are_checked() {
        let dir = DataDir::new("/nonexistent");
        assert_eq!(Database::parse(&dir, None).unwrap(), Database::Sqlite(dir.ledger_db()));
        assert_eq!(Database::parse(&dir, Some("postgresql://x/y")).unwrap().backend(), "postgres");
        assert_eq!(Database::parse(&dir, Some("mysql://x")).unwrap_err().kind(), ErrorKind::BadInput);
    }

    #[test]
    fn without_a_ledger_the_session_says_how_to_make_one() {
        let tmp = tempfile::tempdir().unwrap();
        let s = Session::open(DataDir::new(tmp.path()), None).unwrap();
        let e = s.ledger().map(|_| ()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.to_string().contains("ledger init"), "{e}");
        assert!(s.registry().is_err());
    }
}
