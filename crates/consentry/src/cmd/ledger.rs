//! `consentry ledger …`: the consent ledger from the command line.

use crate::ui::{self, Ctx, OK, bad_input};
use clap::Subcommand;
use consentry_app::import::mapping::Format;
use consentry_app::import::read::Shape;
use consentry_app::import::{FileImport, ImportRejected};
use consentry_app::ledger::{AppendRequest, ImportReport, parse_at, parse_time};
use consentry_files::OutputOptions;
use consentry_ledger::receipt::AnyReceipt;
use consentry_ledger::snapshot::Snapshot;
use consentry_policy::{Action, Source};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum Command {
    /// Create the ledger store and its Ed25519 signing key (idempotent; never replaces a key).
    Init,
    /// Bulk-load consent: the synthetic network's Parquet files (--choices), or a platform's own CSV, JSON or
    /// Fides export through a mapping (--from FORMAT --mapping MAP.toml FILE).
    ///
    /// Every row is validated first; if any is refused nothing is written (exit 2, each problem with its line and
    /// field). Member facts are recorded as signed log entries, one per member whose facts changed.
    /// Re-running the same import appends nothing (idempotency keys derive from each row's content, not its line).
    Import {
        /// The consent choices (the schema of `consent_choices.parquet` from `consentry synth`; any file name).
        #[arg(long, value_name = "FILE", conflicts_with = "from", required_unless_present = "from")]
        choices: Option<PathBuf>,
        /// The members table (the schema of `members.parquet`) [default: members.parquet beside the choices file].
        #[arg(long, value_name = "FILE", requires = "choices")]
        members: Option<PathBuf>,
        /// The platform file's format: csv (header row), json (JSON Lines or one array of objects) or fides (a
        /// Fides consent-reporting export, CSV or JSON).
        #[arg(long, value_name = "FORMAT", value_parser = ["csv", "json", "fides"], requires_all = ["mapping", "file"])]
        from: Option<String>,
        /// The mapping file (TOML): which column is which event field, value tables, time format.
        #[arg(long, value_name = "MAP.toml", requires = "from")]
        mapping: Option<PathBuf>,
        /// The platform's file (with --from).
        #[arg(value_name = "FILE", requires = "from")]
        file: Option<PathBuf>,
        /// Validate every row and report what would be appended; write nothing (with --from).
        #[arg(long, requires = "from")]
        dry_run: bool,
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
        #[command(flatten)]
        witnesses: crate::cmd::witness::WitnessArgs,
    },
    /// Print the ledger's public key (hex), for auditors and receipt holders.
    PublicKey,
    /// Rotate the signing key: a checkpoint with the old key, then a hand-over to the new key signed by both.
    ///
    /// Without --new-key a fresh key takes the old one's place and the old one is renamed beside it
    /// (`ledger.key.retired-<id>`) for you to move off the host. Auditors and receipt holders need nothing new:
    /// ledger.pub stays the log's key, receipts and evidence bundles carry the hand-overs.
    RotateKey {
        /// The new secret key: used if it exists (mode 0600), else generated there; pass it as --signing-key
        /// from then on.
        #[arg(long, value_name = "FILE")]
        new_key: Option<PathBuf>,
    },
    /// List the log's signing keys and hand-overs (with --json: what a verifier needs after a rotation).
    Keys,
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
        Command::Import { choices: Some(choices), members, batch, .. } => {
            let session = ctx.session()?;
            let members = members.unwrap_or_else(|| choices.with_file_name("members.parquet"));
            let report = import(ctx, &session, &members, &choices, batch)?;
            if ctx.json {
                ctx.print_json(&report)?;
            }
            Ok(OK)
        }
        Command::Import { from, mapping: Some(mapping), file: Some(file), dry_run, batch, .. } => {
            let format =
                from.as_deref().and_then(Format::parse).ok_or_else(|| bad_input("--from is csv, json or fides"))?;
            import_file(ctx, &FileImport { format, mapping: &mapping, file: &file, dry_run, batch })
        }
        Command::Import { .. } => Err(bad_input("give --choices FILE, or --from FORMAT --mapping MAP.toml FILE")),
        Command::Append { member, purpose, action, notice_version, source, actor, event_time, idempotency_key } => {
            let a = ctx.session()?.append(AppendRequest {
                member,
                purpose,
                action: Action::parse(&action).ok_or_else(|| bad_input("--action is grant or withdraw"))?,
                notice_version,
                source: Source::parse(&source).ok_or_else(|| bad_input("unknown --source"))?,
                actor,
                event_time: event_time.as_deref().map(parse_time).transpose()?,
                idempotency_key,
                key_prefix: "cli",
            })?;
            if ctx.json {
                ctx.print_json(
                    &serde_json::json!({"event": a.event, "duplicate": a.duplicate, "chain_hash": hex::encode(a.chain_hash)}),
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
            let sth = ctx.session()?.checkpoint()?;
            if ctx.json {
                ctx.print_json(&sth)?;
            } else {
                ctx.say(format!(
                    "checkpoint: {} events, root {}, log {}, signed by key {}",
                    ui::thousands(sth.head.tree_size),
                    hex::encode(sth.head.root_hash),
                    hex::encode(&sth.log_id[..8]),
                    hex::encode(&sth.key_id[..8])
                ));
            }
            Ok(OK)
        }
        Command::Verify => verify(ctx),
        Command::Receipt { seq, out } => {
            let receipt = ctx.session()?.receipt(seq)?;
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
        Command::VerifyReceipt { file, public_key, witnesses } if witnesses.requested() => {
            crate::cmd::witness::verify_receipt(ctx, &file, &public_key, &witnesses)
        }
        Command::VerifyReceipt { file, public_key, .. } => verify_receipt(ctx, &file, &public_key),
        Command::PublicKey => {
            println!("{}", ctx.session()?.public_key()?.to_hex());
            Ok(OK)
        }
        Command::RotateKey { new_key } => rotate_key(ctx, new_key.as_deref()),
        Command::Keys => {
            let report = ctx.session()?.keys_report()?;
            if ctx.json {
                ctx.print_json(&report)?;
                return Ok(OK);
            }
            println!("log {}", report.log_id);
            for (i, k) in report.keys.iter().enumerate() {
                let term = match k.until_size {
                    Some(u) => format!("retired: signed tree sizes {}..={u}", k.from_size),
                    None => format!("current: signs from tree size {}", k.from_size),
                };
                let role = if i == 0 { "genesis key (ledger.pub)" } else { "rotated key" };
                println!(
                    "key {} {role}, {term}
    public key {}",
                    k.key_id, k.public_key
                );
            }
            Ok(OK)
        }
        Command::Snapshot { purpose, at } => {
            let snap = ctx.session()?.snapshot(&purpose, parse_at(at.as_deref())?)?;
            print_snapshot(ctx, &snap)?;
            Ok(OK)
        }
        Command::ExportSnapshot { purpose, at, out } => {
            let session = ctx.session()?;
            let x = session.export_snapshot(
                &purpose,
                parse_at(at.as_deref())?,
                &out,
                ctx.output_options(OutputOptions::MEMBER_DATA),
            )?;
            if ctx.json {
                ctx.print_json(&serde_json::json!({"out": out, "rows": x.rows, "counts": x.snapshot.counts()}))?;
            } else {
                ctx.say(format!(
                    "{} members ({} allowed) at position {} → {}",
                    ui::thousands(x.rows),
                    ui::thousands(x.snapshot.allowed().len()),
                    x.snapshot.position(),
                    out.display()
                ));
            }
            Ok(OK)
        }
    }
}

fn rotate_key(ctx: &Ctx, new_key: Option<&Path>) -> anyhow::Result<ExitCode> {
    let r = ctx.session()?.rotate_key(new_key)?;
    if ctx.json {
        ctx.print_json(&r)?;
        return Ok(OK);
    }
    let next = if r.in_place {
        format!("the new key is at {} (where the ledger reads it)", r.new_key_file.display())
    } else {
        format!(
            "the new key is {}: pass --signing-key {} (or set CONSENTRY_SIGNING_KEY) from now on, and restart \
             `consentry serve` with it",
            r.new_key_file.display(),
            r.new_key_file.display()
        )
    };
    ctx.say(format!(
        "rotated the signing key at tree size {}: key {} now signs (key {} is retired)\n{next}\n\
         now move the retired key {} off this host (or destroy it): the ledger refuses it from here on\n\
         nothing to hand out: ledger.pub stays the log's public key, and receipts and evidence bundles carry the \
         hand-over",
        ui::thousands(r.handover.tree_size),
        hex::encode(r.new_key_id),
        hex::encode(&r.old_key_id[..8]),
        r.retired_key_file.display()
    ));
    if !ctx.quiet {
        println!("{}", hex::encode(r.new_key_id));
    }
    Ok(OK)
}

fn init(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let session = ctx.session()?;
    session.init_ledger()?;
    let ledger = session.ledger()?;
    let len = ledger.store().len().map_err(consentry_app::AppError::from)?;
    if ctx.json {
        ctx.print_json(&serde_json::json!({
            "data": ctx.dir.root(), "backend": ledger.store().backend(), "events": len,
            "public_key": ledger.public_key().to_hex(),
        }))?;
    } else {
        ctx.say(format!(
            "ledger ready in {} ({}, {} events)\npublic key {} ({})\nsigning key {}",
            ctx.dir.root().display(),
            ledger.store().backend(),
            ui::thousands(len),
            ledger.public_key().to_hex(),
            ctx.dir.public_key_file().display(),
            ctx.dir.key_file().display()
        ));
    }
    Ok(OK)
}

/// Imports with a progress bar and says what it did; shared with `demo`'s rendering.
fn import(
    ctx: &Ctx,
    session: &consentry_app::Session,
    members: &Path,
    choices: &Path,
    batch: usize,
) -> anyhow::Result<ImportReport> {
    let bars = ctx.progress();
    let report = session.import(members, choices, batch, &bars)?;
    bars.finish();
    say_imported(ctx, &report);
    Ok(report)
}

/// The line that sums up an import.
pub fn say_imported(ctx: &Ctx, report: &ImportReport) {
    ctx.say(format!(
        "imported {} members ({} with new or changed facts) and {} events ({} new, {} already present) in {:.1} s",
        ui::thousands(report.members),
        ui::thousands(report.member_facts_recorded),
        ui::thousands(report.events),
        ui::thousands(report.appended),
        ui::thousands(report.duplicates),
        report.seconds
    ));
}

/// `ledger import --from …`: the import, its summary (or, with --json, its report; a refused file's problems).
fn import_file(ctx: &Ctx, req: &FileImport<'_>) -> anyhow::Result<ExitCode> {
    let session = ctx.session()?;
    let bars = ctx.progress();
    let result = session.import_file(req, &bars);
    bars.finish();
    let r = match result {
        Ok(r) => r,
        Err(e) => {
            if ctx.json
                && let Some(rejected) = e.downcast_ref::<ImportRejected>()
            {
                ctx.print_json(&serde_json::json!({"rejected": rejected}))?;
            }
            return Err(e.into());
        }
    };
    if ctx.json {
        ctx.print_json(&r)?;
        return Ok(OK);
    }
    let verb = if r.dry_run { "dry run, nothing written" } else { "imported" };
    ctx.say(format!(
        "{verb}: {} rows of {} read as {}: {} events ({} {}, {} already present), {} skipped",
        ui::thousands(r.rows),
        r.file,
        match r.shape {
            Shape::Csv => "CSV",
            Shape::JsonLines => "JSON Lines",
            Shape::JsonArray => "a JSON array",
            Shape::FidesPage => "a Fides API page",
        },
        ui::thousands(r.events),
        ui::thousands(r.appended),
        if r.dry_run { "would be appended" } else { "appended" },
        ui::thousands(r.already_present),
        ui::thousands(r.skipped)
    ));
    for (reason, n) in &r.skipped_reasons {
        ctx.say(format!("  skipped {}: {reason}", ui::thousands(*n)));
    }
    if r.members_in_file > 0 {
        ctx.say(format!(
            "member facts for {} members ({} new or changed{})",
            ui::thousands(r.members_in_file),
            ui::thousands(r.member_facts_recorded),
            if r.dry_run { ", would be recorded" } else { ", recorded" }
        ));
    }
    Ok(OK)
}

fn verify(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let r = ctx.read_only_session()?.verify_ledger()?;
    let (v, beyond) = (&r.ledger, &r.registry_beyond_log);
    if ctx.json {
        let mut j = serde_json::to_value(v)?;
        j["registry_beyond_log"] = serde_json::json!(beyond);
        ctx.print_json(&j)?;
    } else if !beyond.is_empty() {
        eprintln!("FAILED: the store cites positions beyond the log's end (the log was rolled back or replaced):");
        for b in beyond {
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
    Ok(if r.ok() { OK } else { ExitCode::from(1) })
}

fn verify_receipt(ctx: &Ctx, file: &Path, public_key: &Path) -> anyhow::Result<ExitCode> {
    let checked = consentry_app::ledger::verify_receipt(file, public_key)?;
    let key = checked.key.to_hex();
    match checked.verdict {
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
                    &key[..16],
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
                    &key[..16],
                    ui::thousands(receipt.tree_head.head.tree_size)
                ));
            }
            Ok(OK)
        }
        Err(e) => {
            if ctx.json {
                // Which check failed, in snake_case (`consentry_ledger::receipt::ReceiptError::check`).
                let check = e.downcast_ref::<consentry_ledger::receipt::ReceiptError>().map(|r| r.check());
                ctx.print_json(&serde_json::json!({"valid": false, "error": e.to_string(), "check": check}))?;
            }
            eprintln!("INVALID: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// Prints a snapshot's counts as a table (or JSON).
pub fn print_snapshot(ctx: &Ctx, snap: &Snapshot) -> anyhow::Result<()> {
    let c = snap.counts();
    if ctx.json {
        return ctx.print_json(&c);
    }
    let when = chrono::DateTime::from_timestamp(c.at, 0).map_or_else(|| c.at.to_string(), |d| d.to_rfc3339());
    ctx.say(format!("{} at position {} ({when}), root {}", c.purpose, c.position, &hex::encode(snap.tree_root)[..16]));
    let mut t = ui::table(&["", "members", "share"]);
    t.add_row(vec!["allowed".to_string(), ui::thousands(c.allowed), ui::percent(c.allowed, c.members)]);
    for (r, n) in &c.denied {
        t.add_row(vec![format!("denied: {r}"), ui::thousands(*n), ui::percent(*n, c.members)]);
    }
    ui::align_numbers(&mut t);
    ctx.say(t.to_string());
    Ok(())
}
