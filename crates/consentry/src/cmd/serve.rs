//! `consentry serve`: the HTTP service on the data directory (member endpoints under `/v1/me/`), logging one line
//! per request to standard error (`--log-format`, `--log-level` or `RUST_LOG`).

use crate::ui::{Ctx, OK};
use anyhow::Context as _;
use consentry_app::webhooks::Webhook;
use consentry_server::Options;
use consentry_server::limits::{RateLimit, RateLimits};
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
    /// Log lines on standard error as text or as one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, value_name = "FORMAT")]
    log_format: LogFormat,
    /// Log level or filter (`info`, `debug`, `consentry=debug,warn`); default `RUST_LOG`, else `info` (`warn`
    /// with --quiet).
    #[arg(long, value_name = "FILTER")]
    log_level: Option<String>,
    /// Allow browser calls (CORS) from this origin, e.g. `https://app.example.com`; repeat for more. Without
    /// it CORS is off.
    #[arg(long = "cors-origin", value_name = "URL")]
    cors_origins: Vec<String>,
    /// Requests per second each member or API key may make, sustained (0: no limit).
    #[arg(long, default_value_t = RateLimits::default().principal.per_second, value_name = "N")]
    rate_limit: f64,
    /// Requests each member or API key may make at once after resting.
    #[arg(long, default_value_t = RateLimits::default().principal.burst, value_name = "N")]
    rate_burst: f64,
    /// Requests per second per client IP without a valid credential (0: no limit); the burst is twice this.
    #[arg(long, default_value_t = RateLimits::default().anonymous.per_second, value_name = "N")]
    anonymous_rate_limit: f64,
    /// The service configuration (TOML): `[member_tokens]` to accept the platform's own member tokens,
    /// `[[webhooks]]` to deliver the outbox to. Without it, neither.
    #[arg(long, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

impl Args {
    fn options(&self) -> anyhow::Result<Options> {
        let cors_origins = self
            .cors_origins
            .iter()
            .map(|o| consentry_server::cors_origin(o).map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<Vec<_>>>()?;
        for (flag, v) in [
            ("--rate-limit", self.rate_limit),
            ("--rate-burst", self.rate_burst),
            ("--anonymous-rate-limit", self.anonymous_rate_limit),
        ] {
            anyhow::ensure!(v.is_finite() && v >= 0.0, "{flag} {v} must be a number of requests, 0 or more");
        }
        let defaults = RateLimits::default();
        let limits = RateLimits {
            principal: RateLimit { per_second: self.rate_limit, burst: self.rate_burst.max(1.0) },
            anonymous: RateLimit {
                per_second: self.anonymous_rate_limit,
                burst: (2.0 * self.anonymous_rate_limit).max(1.0),
            },
            max_tracked: defaults.max_tracked,
        };
        Ok(Options { limits, cors_origins, webhooks: Vec::new() })
    }
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let mut options = args.options()?;
    let config = match &args.config {
        Some(path) => consentry_app::config::ServiceConfig::load(path)?,
        None => consentry_app::config::ServiceConfig::default(),
    };
    // Keys and secrets are read before anything starts, so a missing one stops `serve` at once.
    let webhooks = config.webhooks.iter().map(Webhook::load).collect::<Result<Vec<_>, _>>()?;
    options.webhooks = config.webhooks.clone();
    let format = match args.log_format {
        LogFormat::Text => consentry_server::observe::LogFormat::Text,
        LogFormat::Json => consentry_server::observe::LogFormat::Json,
    };
    let default_level = if ctx.quiet { "warn" } else { "info" };
    consentry_server::observe::init_logging(format, args.log_level.as_deref(), default_level)
        .map_err(anyhow::Error::msg)?;
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
    let served = runtime.block_on(async {
        consentry_server::webhooks::start_webhooks(Arc::clone(&session), webhooks).await?;
        let listener = tokio::net::TcpListener::bind(&args.addr)
            .await
            .with_context(|| format!("cannot listen on {} (is the port in use?)", args.addr))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        // The first line is the address alone, so a script (or a test) can read the port chosen for port 0.
        let mut out = std::io::stdout().lock();
        writeln!(out, "http://{addr}").and_then(|()| out.flush()).context("writing to standard output")?;
        drop(out);
        tracing::info!(
            data = %ctx.dir.root().display(),
            addr = %addr,
            cors = !options.cors_origins.is_empty(),
            "consentry serving (Ctrl-C or SIGTERM stops it)"
        );
        let shutdown = async {
            consentry_server::shutdown_signal().await;
            tracing::info!("stop requested: finishing the requests in flight");
        };
        consentry_server::serve_with(listener, Arc::clone(&session), &options, shutdown).await.context("serving HTTP")
    });
    // The runtime's tasks (webhook deliveries, requests in flight) hold handles on the session: they are dropped
    // first, on the runtime's threads, and the last handle here. A PostgreSQL store closes its connection with a
    // blocking call, which panics on a runtime thread: during shutdown, an abort instead of exit 0 (found by the
    // soak, bench/soak).
    drop(runtime);
    drop(session);
    served?;
    tracing::info!("consentry serve stopped");
    Ok(OK)
}
