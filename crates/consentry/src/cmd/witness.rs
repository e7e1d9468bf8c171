//! `consentry witness`: run a witness that cosigns a log's checkpoints only when they extend what it cosigned
//! before, so a log showing different histories to different people is caught (C2SP tlog-cosignature).

use crate::ui::{Ctx, OK};
use consentry_app::witness::{self, WitnessSummary};
use consentry_ledger::receipt::{AnyReceipt, ReceiptError};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Make a witness directory: an Ed25519 key (witness.key, mode 0600) and its verifier key (witness.vkey).
    Init {
        /// The witness directory to create.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// The witness's name, a schema-less URL such as `witness.example.org/w1` (no spaces, no `+`).
        #[arg(long)]
        name: String,
    },
    /// Watch a log: its origin line (see `witness checkpoint`) and its public key, obtained out of band.
    AddLog {
        /// The witness directory.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// The log's origin line (`consentry/<16 hex>` unless the operator named it).
        #[arg(long)]
        origin: String,
        /// The log's public key file (ledger.pub).
        #[arg(long, value_name = "FILE")]
        public_key: PathBuf,
    },
    /// Cosign the log's newest checkpoint if it extends the one cosigned before (else refuse, naming why), and
    /// hand the cosignature back to the log: the data directory's (--data/--database) or the service's (--url).
    Cosign {
        /// The witness directory.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// The service to witness (http://HOST:PORT) instead of the data directory.
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// An operator API key for the service (`consentry keys create --role operator`).
        #[arg(long, env = "CONSENTRY_API_KEY", value_name = "KEY", hide_env_values = true)]
        api_key: Option<String>,
    },
    /// What the witness holds: its name and verifier key, the logs it watches and their cosigned heads.
    Show {
        /// The witness directory.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
    /// Print the data directory's newest checkpoint as a C2SP signed note (its first line is the log's origin).
    Checkpoint,
}

pub fn run(ctx: &Ctx, cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Init { dir, name } => {
            let s = witness::init(&dir, &name)?;
            if ctx.json {
                ctx.print_json(&s)?;
            } else {
                ctx.say(format!(
                    "witness `{}` made in {} (key witness.key, mode 0600)\nits verifier key, for `--witness-key` \
                     files (also in {}/witness.vkey):\n{}",
                    s.name,
                    dir.display(),
                    dir.display(),
                    s.vkey
                ));
            }
        }
        Command::AddLog { dir, origin, public_key } => {
            let s = witness::add_log(&dir, &origin, &public_key)?;
            if ctx.json {
                ctx.print_json(&s)?;
            } else {
                ctx.say(format!(
                    "witness `{}` now watches `{origin}`; the first checkpoint it cosigns is trusted on first use",
                    s.name
                ));
            }
        }
        Command::Cosign { dir, url, api_key } => {
            let out = match url {
                Some(url) => {
                    let key = api_key.ok_or_else(|| {
                        crate::ui::bad_input(
                            "--url needs an operator API key: --api-key KEY or CONSENTRY_API_KEY \
                             (make one with `consentry keys create --role operator`)",
                        )
                    })?;
                    witness::cosign_remote(&dir, &url, &key)?
                }
                None => ctx.session()?.witness_cosign(&dir)?,
            };
            if ctx.json {
                ctx.print_json(&out)?;
            } else {
                let grew = if out.previous_size == out.tree_size {
                    "unchanged".to_string()
                } else {
                    format!("grew from {} entries, consistency proof checked", out.previous_size)
                };
                ctx.say(format!(
                    "cosigned `{}` at {} entries (root {}…; {grew}); the log now holds cosignatures by: {}",
                    out.origin,
                    out.tree_size,
                    out.root_hash.get(..16).unwrap_or(&out.root_hash),
                    out.cosigned_by.join(", ")
                ));
            }
        }
        Command::Show { dir } => {
            let s = witness::show(&dir)?;
            if ctx.json {
                ctx.print_json(&s)?;
            } else {
                print_summary(ctx, &s);
            }
        }
        Command::Checkpoint => {
            let cp = ctx.read_only_session()?.checkpoint_note()?;
            if ctx.json {
                ctx.print_json(&cp)?;
            } else {
                print!("{}", cp.note);
            }
        }
    }
    Ok(OK)
}

fn print_summary(ctx: &Ctx, s: &WitnessSummary) {
    ctx.say(format!("witness `{}` in {}\nverifier key: {}", s.name, s.dir.display(), s.vkey));
    if s.logs.is_empty() {
        ctx.say("watches no log yet: `consentry witness add-log --dir DIR --origin O --public-key ledger.pub`");
        return;
    }
    let mut t = crate::ui::table(&["log", "cosigned size", "root", "cosigned at", "signing key"]);
    for l in &s.logs {
        let when = if l.cosigned_at == 0 {
            "never".to_string()
        } else {
            chrono::DateTime::from_timestamp(i64::try_from(l.cosigned_at).unwrap_or(i64::MAX), 0)
                .map_or_else(|| l.cosigned_at.to_string(), |d| d.format("%Y-%m-%d %H:%M:%SZ").to_string())
        };
        t.add_row(vec![
            l.origin.clone(),
            l.tree_size.to_string(),
            format!("{}…", l.root_hash.get(..16).unwrap_or(&l.root_hash)),
            when,
            match l.key_handovers {
                0 => format!("{}… (never rotated)", l.current_key_id.get(..16).unwrap_or(&l.current_key_id)),
                n => format!("{}… (after {n} hand-over(s))", l.current_key_id.get(..16).unwrap_or(&l.current_key_id)),
            },
        ]);
    }
    ctx.say(t.to_string());
}

/// What a verifier requires of a tree head's witnesses (`ledger verify-receipt`, `audit`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct WitnessArgs {
    /// A witness you trust: a file with its verifier key `name+keyid+base64` (witness.vkey); repeatable.
    #[arg(long = "witness-key", value_name = "FILE")]
    pub witness_keys: Vec<PathBuf>,
    /// How many of those witnesses must have cosigned the tree head (0: no requirement, as before).
    #[arg(long = "witnesses", value_name = "N", default_value_t = 0)]
    pub required: usize,
}

impl WitnessArgs {
    /// True when the user asked anything of witnesses.
    pub fn requested(&self) -> bool {
        self.required > 0 || !self.witness_keys.is_empty()
    }

    /// The policy, read from the key files.
    pub fn policy(&self) -> anyhow::Result<consentry_ledger::witness::WitnessPolicy> {
        Ok(witness::load_policy(&self.witness_keys, self.required)?)
    }
}

/// `ledger verify-receipt` with `--witness-key`/`--witnesses`: the receipt, then its tree head's cosignatures.
pub fn verify_receipt(ctx: &Ctx, file: &Path, public_key: &Path, args: &WitnessArgs) -> anyhow::Result<ExitCode> {
    let policy = args.policy()?;
    let checked = witness::verify_receipt_witnessed(file, public_key, &policy)?;
    let key = checked.check.key.to_hex();
    match checked.check.verdict {
        Ok(receipt) => {
            let tally = checked.tally.unwrap_or_default();
            let (what, size) = match &receipt {
                AnyReceipt::Consent(r) => (
                    format!(
                        "event {} ({} {} for member {})",
                        r.event.seq, r.record.event.event_type, r.record.purpose, r.record.pii_principal_id
                    ),
                    r.tree_head.head.tree_size,
                ),
                AnyReceipt::Facts(r) => (
                    format!("entry {} (member {}'s facts)", r.facts.seq, r.facts.member_id),
                    r.tree_head.head.tree_size,
                ),
            };
            if ctx.json {
                ctx.print_json(&serde_json::json!({"valid": true, "receipt": receipt, "witnesses": tally}))?;
            } else {
                ctx.say(format!(
                    "valid: {what} is in the ledger signed by {}, checkpoint of {size} entries, cosigned by {} of \
                     the witnesses you trust ({}; {} required)",
                    key.get(..16).unwrap_or(&key),
                    tally.cosigned.len(),
                    if tally.cosigned.is_empty() { "none".to_string() } else { tally.cosigned.join(", ") },
                    policy.required
                ));
            }
            Ok(OK)
        }
        Err(e) => {
            if ctx.json {
                let r = e.downcast_ref::<ReceiptError>();
                let witnesses = match r {
                    Some(ReceiptError::Witnesses(w)) => Some(w.tally.clone()),
                    _ => None,
                };
                ctx.print_json(&serde_json::json!({
                    "valid": false, "error": e.to_string(), "check": r.map(|r| r.check()), "witnesses": witnesses
                }))?;
            }
            eprintln!("INVALID: {e}");
            Ok(ExitCode::from(1))
        }
    }
}
