//! `consentry keys`: API keys for operators and auditors of the service.

use crate::ui::{self, Ctx, OK};
use consentry_app::keys::Role;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Make a key; its secret is printed once and stored nowhere (only its hash is kept).
    Create {
        /// What the key may do: `operator` (purposes, notices, jobs, aggregates, events) or `auditor` (evidence only).
        #[arg(long, value_name = "ROLE")]
        role: Role,
        /// Who holds the key, for the list and the logs.
        #[arg(long, default_value = "unnamed")]
        name: String,
    },
    /// Revoke a key by id (see `keys list`); it stops working at the next request, in every serve process.
    Revoke {
        /// The key's id (`k…`).
        id: String,
    },
    /// List every key made, with role, holder and state.
    List,
}

fn when(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map_or_else(|| t.to_string(), |d| d.format("%Y-%m-%d %H:%M:%SZ").to_string())
}

pub fn run(ctx: &Ctx, cmd: Command) -> anyhow::Result<ExitCode> {
    let now = consentry_ledger::now();
    match cmd {
        Command::Create { role, name } => {
            let made = ctx.session()?.create_api_key(role, &name, now)?;
            if ctx.json {
                ctx.print_json(&made)?;
            } else {
                // The secret alone on stdout, so `KEY=$(consentry keys create --role auditor)` works.
                println!("{}", made.secret);
                eprintln!(
                    "{} key {} for `{}` made: keep the line above secret; it is not shown again",
                    made.record.role.as_str(),
                    made.record.id,
                    made.record.name
                );
            }
        }
        Command::Revoke { id } => {
            let key = ctx.session()?.revoke_api_key(&id, now)?;
            if ctx.json {
                ctx.print_json(&key)?;
            } else {
                ctx.say(format!("key {} ({}, `{}`) revoked", key.id, key.role.as_str(), key.name));
            }
        }
        Command::List => {
            let keys = ctx.read_only_session()?.list_api_keys()?;
            if ctx.json {
                ctx.print_json(&keys)?;
            } else if keys.is_empty() {
                ctx.say("no API keys yet: make one with `consentry keys create --role operator|auditor`");
            } else {
                let mut t = ui::table(&["key", "role", "holder", "created", "state"]);
                for k in &keys {
                    let state = k.revoked.map_or_else(|| "active".to_string(), |r| format!("revoked {}", when(r)));
                    t.add_row(vec![k.id.clone(), k.role.as_str().into(), k.name.clone(), when(k.created), state]);
                }
                println!("{t}");
            }
        }
    }
    Ok(OK)
}
