//! `consentry ledger …`: the consent ledger from the command line.

use super::{init_data_dir, load_policy};
use crate::ui::{self, Ctx, OK, bad_input};
use anyhow::Context;
use clap::Subcommand;
use consentry_files::OutputOptions;
use consentry_ledger::position::{At, Resolved};
use consentry_ledger::receipt::AnyReceipt;
use consentry_ledger::snapshot::{Snapshot, export_parquet};
use consentry_ledger::sqlite::SqliteStore;
use consentry_ledger::{Ledger, LedgerError, LedgerOptions, LogKey, MemberRecord, NewEvent, PublicKey, Store};
use consentry_policy::{Action, Source};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The secret signing key inside the data directory.
pub const KEY_FILE: &str = "ledger.key";
/// The public key inside the data directory, for verifiers.
pub const PUBLIC_KEY_FILE: &str = "ledger.pub";
/// The SQLite ledger inside the data directory.
pub const DB_FILE: &str = "ledger.db";

#[derive(Subcommand)]
pub enum Command {
    /// Create the ledger store and its Ed25519 signing key (idempotent; never replaces a key).
    Init,
    /// Bulk-load members and their consent choices from the synthetic network's Parquet files.
    ///
    /// Every event is validated first; if any is refused nothing is written.
    /// Member facts are recorded as signed log entries, one per member whose facts changed.
    /// Re-running the same import appends nothing (idempotency keys derive from each row's content).
    Import {
        /// The consent choices (the schema of `consent_choices.parquet` from `consentry synth`; any file name).
        #[arg(long, value_name = "FILE")]
        choices: PathBuf,
        /// The members table (the schema of `members.parquet`) [default: members.parquet beside the choices file].
        #[arg(long, value_name = "FILE")]
        members: Option<PathBuf>,
        /// Events per transaction.
        #[arg(long, default_value_t = 50_000)]
        batch: usize,
    },
    /// Append one consent event.
    Append {
        /// Member id.
        #[arg(long)]
        member: u64,
        /// Purpose key, e.g. train_ai_system.job_recommendations.
        #[arg(long)]
        purpose: String,
        /// grant or withdraw.
        #[arg(long, value_parser = ["grant", "withdraw"])]
        action: String,
        /// Notice version shown [default: the newest].
        #[arg(long)]
        notice_version: Option<u32>,
        /// ui, api, gpc, import or erasure.
        #[arg(long, default_value = "api", value_parser = ["ui", "api", "gpc", "import", "erasure"])]
        source: String,
        /// Who records the event [default: member:<id>].
        #[arg(long)]
        actor: Option<String>,
        /// When the member acted: RFC 3339, YYYY-MM-DD or Unix seconds [default: now].
        #[arg(long)]
        event_time: Option<String>,
        /// A retry with the same key returns the original event [default: a random key].
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Sign a checkpoint (tree head) of the whole log now.
    Checkpoint,
    /// Rebuild chain, Merkle tree and checkpoints from the stored events; exit 1 if anything is wrong.
    Verify,
    /// Write a member's receipt for one event: ISO/IEC TS 27560 record, inclusion proof, signed tree head.
    Receipt {
        /// Sequence number of the event.
        #[arg(long = "event", value_name = "SEQ")]
        seq: u64,
        /// Output file [default: standard output].
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Verify a receipt offline, with no database: exit 0 valid, 1 invalid.
    VerifyReceipt {
        /// The receipt JSON.
        file: PathBuf,
        /// The ledger's public key file (ledger.pub).
        #[arg(long, value_name = "FILE")]
        public_key: PathBuf,
    },
    /// Print the ledger's public key (hex), for auditors and receipt holders.
    PublicKey,
    /// Effective consent of every member for a purpose: counts allowed and denied by reason.
    Snapshot {
        /// Purpose key.
        #[arg(long)]
        purpose: String,
        /// A sequence number, or a time (RFC 3339 or YYYY-MM-DD) [default: now, the whole log].
        #[arg(long, value_name = "SEQ|TIME")]
        at: Option<String>,
    },
    /// Write a snapshot as Parquet (member_id, allowed, reason) for other engines to join against.
    ExportSnapshot {
        /// Purpose key.
        #[arg(long)]
        purpose: String,
        /// A sequence number, or a time (RFC 3339 or YYYY-MM-DD) [default: now].
        #[arg(long, value_name = "SEQ|TIME")]
        at: Option<String>,
        /// Output Parquet file.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

pub fn run(ctx: &Ctx, cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Init => init(ctx),
        Command::Import { choices, members, batch } => {
            let ledger = open(ctx)?;
            let members = members.unwrap_or_else(|| choices.with_file_name("members.parquet"));
            let report = import(ctx, &ledger, &members, &choices, batch)?;
            if ctx.json {
                ctx.print_json(&report)?;
            }
            Ok(OK)
        }
        Command::Append { member, purpose, action, notice_version, source, actor, event_time, idempotency_key } => {
            let ledger = open(ctx)?;
            let pid = ledger.policy().purpose_id(&purpose).ok_or_else(|| {
                bad_input(format!("unknown purpose `{purpose}`; see `consentry policy show` for the declared ones"))
            })?;
            let event = NewEvent {
                member_id: member,
                purpose,
                action: Action::parse(&action).ok_or_else(|| bad_input("--action is grant or withdraw"))?,
                notice_version: notice_version.unwrap_or_else(|| ledger.policy().purpose(pid).latest_notice().version),
                source: Source::parse(&source).ok_or_else(|| bad_input("unknown --source"))?,
                actor: actor.unwrap_or_else(|| format!("member:{member}")),
                event_time: match event_time {
                    Some(t) => parse_time(&t)?,
                    None => chrono::Utc::now().timestamp(),
                },
                idempotency_key: match idempotency_key {
                    Some(k) => k,
                    None => random_key()?,
                },
            };
            let out = ledger.append(vec![event]).map_err(ledger_err)?;
            let a = out.into_iter().next().context("the ledger returned no result")?;
            if ctx.json {
                ctx.print_json(
                    &serde_json::json!({"event": a.event, "duplicate": a.duplicate, "chain_hash": hex(&a.chain_hash)}),
                )?;
            } else {
                ctx.say(format!(
                    "{} event {}: member {} {} {} (notice v{})",
                    if a.duplicate { "already recorded as" } else { "appended" },
                    a.event.seq,
                    a.event.body.member_id,
                    a.event.body.action.as_str(),
                    a.event.body.purpose,
                    a.event.body.notice_version
                ));
            }
            Ok(OK)
        }
        Command::Checkpoint => {
            let ledger = open(ctx)?;
            let sth = ledger.checkpoint().map_err(ledger_err)?;
            if ctx.json {
                ctx.print_json(&sth)?;
            } else {
                ctx.say(format!(
                    "checkpoint: {} events, root {}, signed by {}",
                    ui::thousands(sth.head.tree_size),
                    hex(&sth.head.root_hash),
                    hex(&sth.log_id[..8])
                ));
            }
            Ok(OK)
        }
        Command::Verify => verify(ctx),
        Command::Receipt { seq, out } => {
            let ledger = open(ctx)?;
            // A consent event's receipt, or a member-facts entry's (the facts decide consent too).
            let receipt = ledger.any_receipt(seq).map_err(ledger_err)?;
            let json = serde_json::to_string_pretty(&receipt)?;
            match out {
                Some(path) => {
                    ctx.write_output(&path, json.as_bytes(), OutputOptions::MEMBER_DATA)?;
                    ctx.say(format!("receipt for event {seq} written to {}", path.display()));
                }
                None => println!("{json}"),
            }
            Ok(OK)
        }
        Command::VerifyReceipt { file, public_key } => verify_receipt(ctx, &file, &public_key),
        Command::PublicKey => {
            let ledger = open(ctx)?;
            println!("{}", ledger.public_key().to_hex());
            Ok(OK)
        }
        Command::Snapshot { purpose, at } => {
            let ledger = open(ctx)?;
            let snap = snapshot(&ledger, &purpose, at.as_deref())?;
            print_snapshot(ctx, &snap)?;
            Ok(OK)
        }
        Command::ExportSnapshot { purpose, at, out } => {
            let ledger = open(ctx)?;
            let snap = snapshot(&ledger, &purpose, at.as_deref())?;
            let mut file = ctx.create_output(&out, OutputOptions::MEMBER_DATA)?;
            let rows = export_parquet(&snap, &mut file).with_context(|| format!("writing {}", out.display()))?;
            file.commit().map_err(ui::output_err)?;
            if ctx.json {
                ctx.print_json(&serde_json::json!({"out": out, "rows": rows, "counts": snap.counts()}))?;
            } else {
                ctx.say(format!(
                    "{} members ({} allowed) at position {} → {}",
                    ui::thousands(rows),
                    ui::thousands(snap.allowed().len()),
                    snap.position(),
                    out.display()
                ));
            }
            Ok(OK)
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Maps ledger errors to exit codes: the caller's fault is bad input (2).
pub fn ledger_err(e: LedgerError) -> anyhow::Error {
    if e.is_bad_input() { bad_input(e.to_string()) } else { anyhow::Error::new(e) }
}

fn random_key() -> anyhow::Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
    Ok(format!("cli:{}", hex(&b)))
}

/// RFC 3339, a bare date (midnight UTC) or Unix seconds.
pub fn parse_time(s: &str) -> anyhow::Result<i64> {
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(t.and_utc().timestamp());
    }
    Err(bad_input(format!("`{s}` is not a time: use RFC 3339 (2026-11-01T12:00:00Z), YYYY-MM-DD or Unix seconds")))
}

/// Where the ledger's store is: the one reading of `--database` that the ledger and the lineage registry share.
pub enum StoreAt {
    /// A PostgreSQL database (`--database postgres://…`).
    Postgres(String),
    /// The SQLite file in the data directory (no `--database`).
    Sqlite(PathBuf),
}

/// What to say when a connection to PostgreSQL fails.
pub const PG_CONTEXT: &str = "connecting to PostgreSQL (check --database and that the server is up)";

/// Reads `--database`: a PostgreSQL URL, or (without it) the SQLite file in the data directory.
pub fn store_at(ctx: &Ctx) -> anyhow::Result<StoreAt> {
    match &ctx.database {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(StoreAt::Postgres(url.clone()))
        }
        Some(other) => Err(bad_input(format!("--database must be a postgres:// URL, got `{other}`"))),
        None => Ok(StoreAt::Sqlite(ctx.data_path(DB_FILE))),
    }
}

/// The error for a command that needs a ledger the data directory does not have yet.
pub fn no_ledger(ctx: &Ctx) -> anyhow::Error {
    if let Some(e) = super::data_not_a_directory(ctx) {
        return e;
    }
    let shown = std::path::absolute(&ctx.data).unwrap_or_else(|_| ctx.data.clone());
    bad_input(format!(
        "no ledger in {}: run `consentry --data {} ledger init` (or `demo`) first",
        shown.display(),
        ctx.data.display()
    ))
}

/// Opens the store named by `--database`, or the SQLite file in the data directory.
pub fn open_store(ctx: &Ctx) -> anyhow::Result<Box<dyn Store>> {
    match store_at(ctx)? {
        StoreAt::Postgres(url) => Ok(Box::new(consentry_ledger::postgres::PgStore::connect(&url).context(PG_CONTEXT)?)),
        StoreAt::Sqlite(path) => {
            Ok(Box::new(SqliteStore::open(&path).with_context(|| format!("opening {}", path.display()))?))
        }
    }
}

/// Opens the ledger of the data directory for reading only (SQLite: `SqliteStore::open_read_only`), for commands
/// that never append: they then work on a read-only copy of a data directory.
pub fn open_read_only(ctx: &Ctx) -> anyhow::Result<Ledger> {
    open_with(ctx, |ctx| {
        Ok(match store_at(ctx)? {
            StoreAt::Sqlite(path) => Box::new(
                SqliteStore::open_read_only(&path).with_context(|| format!("opening {} read-only", path.display()))?,
            ),
            StoreAt::Postgres(_) => open_store(ctx)?,
        })
    })
}

/// Opens the ledger of the data directory (after `ledger init`).
pub fn open(ctx: &Ctx) -> anyhow::Result<Ledger> {
    open_with(ctx, open_store)
}

/// The ledger of the data directory over the store `store` opens, once its key and the policy have loaded (the
/// writable and the read-only opener differ only in the store).
fn open_with(ctx: &Ctx, store: impl FnOnce(&Ctx) -> anyhow::Result<Box<dyn Store>>) -> anyhow::Result<Ledger> {
    let key_path = ctx.data_path(KEY_FILE);
    if !key_path.exists() {
        return Err(no_ledger(ctx));
    }
    let key = LogKey::load(&key_path).map_err(ledger_err)?;
    let policy = load_policy(ctx, None)?;
    let store = store(ctx)?;
    Ok(Ledger::new(store, policy, key, LedgerOptions::default()))
}

fn init(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    init_ledger(ctx)?;
    let ledger = open(ctx)?;
    let len = ledger.store().len().map_err(ledger_err)?;
    if ctx.json {
        ctx.print_json(&serde_json::json!({
            "data": ctx.data, "backend": ledger.store().backend(), "events": len,
            "public_key": ledger.public_key().to_hex(),
        }))?;
    } else {
        ctx.say(format!(
            "ledger ready in {} ({}, {} events)\npublic key {} ({})",
            ctx.data.display(),
            ledger.store().backend(),
            ui::thousands(len),
            ledger.public_key().to_hex(),
            ctx.data_path(PUBLIC_KEY_FILE).display()
        ));
    }
    Ok(OK)
}

/// Creates the data directory, policy, key pair and store if missing.
pub fn init_ledger(ctx: &Ctx) -> anyhow::Result<()> {
    init_data_dir(ctx)?;
    let key_path = ctx.data_path(KEY_FILE);
    if !key_path.exists() {
        let key = LogKey::generate().map_err(ledger_err)?;
        key.save(&key_path).with_context(|| format!("writing {}", key_path.display()))?;
    }
    let key = LogKey::load(&key_path).map_err(ledger_err)?;
    let pub_path = ctx.data_path(PUBLIC_KEY_FILE);
    std::fs::write(&pub_path, format!("{}\n", key.public().to_hex()))
        .with_context(|| format!("writing {}", pub_path.display()))?;
    open_store(ctx)?;
    Ok(())
}

/// What an import did.
#[derive(serde::Serialize)]
pub struct ImportReport {
    pub members: u64,
    /// Member-facts entries appended (members new to the ledger or whose facts changed).
    pub member_facts_recorded: u64,
    pub events: u64,
    pub appended: u64,
    pub duplicates: u64,
    pub seconds: f64,
}

/// Loads members and consent choices; validates every event before writing any.
pub fn import(
    ctx: &Ctx,
    ledger: &Ledger,
    members: &Path,
    choices: &Path,
    batch: usize,
) -> anyhow::Result<ImportReport> {
    let start = std::time::Instant::now();
    for (p, what) in [(members, "members"), (choices, "consent choices")] {
        if !p.exists() {
            return Err(bad_input(format!("{what} file {} does not exist", p.display())));
        }
    }
    let read_err = |e: consentry_synth::SynthError| bad_input(e.to_string());
    // Any file name: the columns say what a table is (errors name the file and the column).
    let member_rows = consentry_synth::read_members_file(members).map_err(read_err)?;
    let choice_rows = consentry_synth::read_consent_choices_file(choices).map_err(read_err)?;
    let records: Vec<MemberRecord> = member_rows
        .iter()
        .map(|m| MemberRecord {
            member_id: m.member_id,
            jurisdiction: m.jurisdiction.clone(),
            birth_date: m.birth_date,
        })
        .collect();
    let mut events: Vec<NewEvent> = Vec::with_capacity(choice_rows.len());
    for c in choice_rows {
        let mut e = NewEvent {
            member_id: c.member_id,
            purpose: c.purpose,
            action: c.action,
            notice_version: c.notice_version,
            source: c.source,
            actor: c.actor,
            event_time: c.event_time,
            idempotency_key: String::new(),
        };
        // From the row's content, not its place in a file: re-encoded files and repeated rows add nothing.
        e.idempotency_key = e.content_key("import").map_err(|e| bad_input(format!("{}: {e}", choices.display())))?;
        events.push(e);
    }
    let now = chrono::Utc::now().timestamp();
    let refused = |file: &Path| {
        let file = file.display().to_string();
        move |e: LedgerError| match e {
            LedgerError::Rejected { index, reason } => {
                bad_input(format!("{file}: row {index} refused, nothing imported: {reason}"))
            }
            other => ledger_err(other),
        }
    };
    ledger.validate_members(&records, "import").map_err(refused(members))?;
    ledger.validate_with(&events, now, &records).map_err(refused(choices))?;
    let recorded = ledger.record_members(&records, "import", now).map_err(refused(members))?;
    let bars = ctx.progress();
    consentry_synth::Progress::stage(&bars, "ledger import", events.len() as u64);
    let total = events.len() as u64;
    let (mut appended, mut duplicates) = (0u64, 0u64);
    let mut rest = events.into_iter();
    loop {
        let chunk: Vec<NewEvent> = rest.by_ref().take(batch.max(1)).collect();
        if chunk.is_empty() {
            break;
        }
        let n = chunk.len() as u64;
        for a in ledger.append_at(chunk, now).map_err(ledger_err)? {
            if a.duplicate { duplicates += 1 } else { appended += 1 }
        }
        consentry_synth::Progress::advance(&bars, "ledger import", n);
    }
    bars.finish();
    let report = ImportReport {
        members: records.len() as u64,
        member_facts_recorded: recorded,
        events: total,
        appended,
        duplicates,
        seconds: start.elapsed().as_secs_f64(),
    };
    ctx.say(format!(
        "imported {} members ({} with new or changed facts) and {} events ({} new, {} already present) in {:.1} s",
        ui::thousands(report.members),
        ui::thousands(report.member_facts_recorded),
        ui::thousands(report.events),
        ui::thousands(report.appended),
        ui::thousands(report.duplicates),
        report.seconds
    ));
    Ok(report)
}

fn verify(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let ledger = open_read_only(ctx)?;
    let v = ledger.verify().map_err(ledger_err)?;
    // A rolled-back log is a consistent prefix, invisible to its own checks; the registry beside it is a witness.
    let beyond = super::lineage::positions_beyond_log(ctx)?;
    let ok = v.ok() && beyond.is_empty();
    if ctx.json {
        let mut j = serde_json::to_value(&v)?;
        j["registry_beyond_log"] = serde_json::json!(beyond);
        ctx.print_json(&j)?;
    } else if !beyond.is_empty() {
        eprintln!("FAILED: the store cites positions beyond the log's end (the log was rolled back or replaced):");
        for b in &beyond {
            eprintln!("  - {b}");
        }
    } else if v.ok() {
        ctx.say(format!(
            "ok: {} events, {} checkpoints; hash chain, Merkle tree and signatures all check out",
            ui::thousands(v.events),
            v.checkpoints
        ));
    } else {
        eprintln!("FAILED: the ledger does not verify; first bad event: {}", v.first_bad_seq.unwrap_or(0));
        for p in &v.problems {
            eprintln!("  - {p}");
        }
    }
    Ok(if ok { OK } else { ExitCode::from(1) })
}

fn verify_receipt(ctx: &Ctx, file: &Path, public_key: &Path) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(file).map_err(|e| bad_input(format!("cannot read {}: {e}", file.display())))?;
    let _: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| bad_input(format!("{} is not a Consentry receipt: {e}", file.display())))?;
    let key = PublicKey::load(public_key).map_err(ledger_err)?;
    match AnyReceipt::verify_json(&text, &key) {
        Ok(AnyReceipt::Consent(receipt)) => {
            if ctx.json {
                ctx.print_json(&serde_json::json!({"valid": true, "record": receipt.record}))?;
            } else {
                ctx.say(format!(
                    "valid: event {} ({} {} for member {}) is in the ledger signed by {}, checkpoint of {} entries",
                    receipt.event.seq,
                    receipt.record.event.event_type,
                    receipt.record.purpose,
                    receipt.record.pii_principal_id,
                    &key.to_hex()[..16],
                    ui::thousands(receipt.tree_head.head.tree_size)
                ));
            }
            Ok(OK)
        }
        Ok(AnyReceipt::Facts(receipt)) => {
            let f = &receipt.facts;
            if ctx.json {
                ctx.print_json(&serde_json::json!({"valid": true, "facts": f}))?;
            } else {
                ctx.say(format!(
                    "valid: entry {} (member {}: jurisdiction {}, born {}, recorded by {}) is in the ledger signed by \
                     {}, checkpoint of {} entries",
                    f.seq,
                    f.member_id,
                    f.jurisdiction,
                    f.birth_date,
                    f.actor,
                    &key.to_hex()[..16],
                    ui::thousands(receipt.tree_head.head.tree_size)
                ));
            }
            Ok(OK)
        }
        Err(e) => {
            if ctx.json {
                ctx.print_json(&serde_json::json!({"valid": false, "error": e.reason(), "check": e.check()}))?;
            }
            eprintln!("INVALID: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// Builds the snapshot asked for: `at` is a sequence number or a time.
pub fn snapshot(ledger: &Ledger, purpose: &str, at: Option<&str>) -> anyhow::Result<Snapshot> {
    let pid = ledger.policy().purpose_id(purpose).ok_or_else(|| {
        bad_input(format!("unknown purpose `{purpose}`; see `consentry policy show` for the declared ones"))
    })?;
    let at = match at {
        None => At::Now,
        Some(s) => match s.parse::<u64>() {
            Ok(seq) => At::Seq(seq),
            Err(_) => At::Time(parse_time(s)?),
        },
    };
    let Resolved { position, time } =
        consentry_ledger::position::resolve(ledger.store(), at, consentry_ledger::now()).map_err(ledger_err)?;
    ledger.snapshot(pid, position, time).map_err(ledger_err)
}

/// Prints a snapshot's counts as a table (or JSON).
pub fn print_snapshot(ctx: &Ctx, snap: &Snapshot) -> anyhow::Result<()> {
    let c = snap.counts();
    if ctx.json {
        return ctx.print_json(&c);
    }
    let when = chrono::DateTime::from_timestamp(c.at, 0).map_or_else(|| c.at.to_string(), |d| d.to_rfc3339());
    ctx.say(format!("{} at position {} ({when}), root {}", c.purpose, c.position, &hex(&snap.tree_root)[..16]));
    let mut t = ui::table(&["", "members", "share"]);
    t.add_row(vec!["allowed".to_string(), ui::thousands(c.allowed), ui::percent(c.allowed, c.members)]);
    for (r, n) in &c.denied {
        t.add_row(vec![format!("denied: {r}"), ui::thousands(*n), ui::percent(*n, c.members)]);
    }
    ui::align_numbers(&mut t);
    ctx.say(t.to_string());
    Ok(())
}
