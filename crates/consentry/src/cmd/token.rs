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
    /// Print a sign-in link to the privacy centre of the service at URL (e.g. http://127.0.0.1:8080) instead of the
    /// bare token; the token rides in the link's fragment, which the browser never sends to a server.
    #[arg(long, value_name = "URL")]
    link: Option<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let ttl = parse_ttl(&args.ttl)?;
    let minted = ctx.session()?.mint_member_token(args.member, ttl, consentry_ledger::now())?;
    if ctx.json {
        ctx.print_json(&minted)?;
    } else if let Some(base) = &args.link {
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(crate::ui::bad_input(format!(
                "--link takes the service's address with its scheme, e.g. http://127.0.0.1:8080, not {base:?}"
            )));
        }
        println!("{}/privacy#token={}", base.trim_end_matches('/'), minted.token);
    } else {
        // The token alone, so `$(consentry token --member 7)` is the header's value.
        println!("{}", minted.token);
    }
    Ok(OK)
}
