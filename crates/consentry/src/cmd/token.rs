//! `consentry token`: mint a member bearer token for the embedded service.

use crate::ui::{Ctx, OK};
use consentry_app::auth::parse_ttl;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The member the token speaks for (must be in the ledger).
    #[arg(long, value_name = "ID")]
    member: u64,
    /// How long the token works: seconds, or 30m, 1h, 7d (at most 30 days).
    #[arg(long, default_value = "1h", value_name = "DURATION")]
    ttl: String,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let ttl = parse_ttl(&args.ttl)?;
    let minted = ctx.session()?.mint_member_token(args.member, ttl, consentry_ledger::now())?;
    if ctx.json {
        ctx.print_json(&minted)?;
    } else {
        // The token alone, so `$(consentry token --member 7)` is the header's value.
        println!("{}", minted.token);
    }
    Ok(OK)
}
