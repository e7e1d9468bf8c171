//! `consentry serve`: the HTTP service on the data directory (member endpoints under `/v1/me/`).

use crate::ui::{Ctx, OK};
use anyhow::Context as _;
use consentry_app::webhooks::Webhook;
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on; port 0 picks a free port. The bound address is the first line on standard output.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "HOST:PORT")]
    addr: String,
    /// Worker threads of the asynchronous runtime (use cases run on a separate blocking pool).
    #[arg(long, default_value_t = 2, value_name = "N")]
    workers: usize,
    /// The service configuration (TOML): `[member_tokens]` to accept the platform's own member tokens,
    /// `[[webhooks]]` to deliver the outbox to. Without it, neither.
    #[arg(long, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(path) => consentry_app::config::ServiceConfig::load(path)?,
        None => consentry_app::config::ServiceConfig::default(),
    };
    // Keys and secrets are read before anything starts, so a missing one stops `serve` at once.
    let webhooks = config.webhooks.iter().map(Webhook::load).collect::<Result<Vec<_>, _>>()?;
    let mut session = ctx.session()?;
    if let Some(tokens) = config.member_tokens {
        let shown = args.config.as_deref().map(|p| p.display().to_string()).unwrap_or_default();
        session = session.with_member_tokens(tokens).with_context(|| format!("in {shown}"))?;
    }
    let session = Arc::new(session);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers.max(1))
        .enable_all()
        .build()
        .context("starting the asynchronous runtime")?;
    runtime.block_on(async {
        consentry_server::webhooks::start_webhooks(Arc::clone(&session), webhooks).await?;
        let listener = tokio::net::TcpListener::bind(&args.addr)
            .await
            .with_context(|| format!("cannot listen on {} (is the port in use?)", args.addr))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        // The first line is the address alone, so a script (or a test) can read the port chosen for port 0.
        let mut out = std::io::stdout().lock();
        writeln!(out, "http://{addr}").and_then(|()| out.flush()).context("writing to standard output")?;
        drop(out);
        if !ctx.quiet {
            eprintln!("consentry serving {} on http://{addr} (Ctrl-C or SIGTERM stops it)", ctx.dir.root().display());
        }
        consentry_server::serve(listener, session, consentry_server::shutdown_signal()).await.context("serving HTTP")
    })?;
    if !ctx.quiet {
        eprintln!("consentry serve stopped");
    }
    Ok(OK)
}
