//! Command-line interface: clap definitions and the glue that runs each command.
//! The only module that writes to stdout (tables for people, `--json` for programs);
//! in `serve` mode stdout belongs to MCP and nothing here prints.

mod dlq;
mod doctor;
mod install;
mod output;

pub use output::StdoutClosed;

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use rmcp::ServiceExt;

use crate::capture::Capture;
use crate::config::Config;
use crate::mcp::{State, Telemetry, http};
use crate::pipeline;
use crate::query::reader::Reader;
use crate::query::time::{GroupBy, Tz};
use crate::query::{self, Filter};
use crate::queue::Queue;
use crate::queue::managed::ManagedRedis;

#[derive(Debug, Parser)]
#[command(
    name = "blueplane",
    version,
    about = "Local, privacy-first telemetry for Claude Code and Cursor"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// MCP server over stdio (or Streamable HTTP with --http), with the ingestion pipeline
    /// running in the same process.
    Serve(ServeArgs),
    /// Background ingestion without MCP: capture, fast path, slow path, until stopped.
    Ingest,
    /// One-shot import of all transcript history; exits when it is in SQLite and metrics are current.
    Backfill {
        /// Print a JSON summary instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Usage reports (tokens and cost) by day, week, month, session, or 5-hour billing block.
    Report {
        #[arg(value_enum)]
        period: Period,
        #[command(flatten)]
        filter: FilterArgs,
        /// IANA time zone for period boundaries (default: the machine's zone).
        #[arg(long, short = 'z')]
        timezone: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Sessions, most recent first.
    Sessions {
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Full-text search over prompts and assistant prose.
    Search {
        query: String,
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Pipeline health: queue depth, lag, dead letters, freshness, lease holder.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Derived metrics in Redis.
    Metrics {
        #[command(subcommand)]
        action: MetricsAction,
    },
    /// The managed redis-server under $BLUEPLANE_HOME/redis.
    Redis {
        #[command(subcommand)]
        action: RedisAction,
    },
    /// Dead letters (bad lines, poison messages, underivable records): list, show, replay, purge.
    Dlq {
        #[command(subcommand)]
        action: dlq::DlqAction,
    },
    /// Register blueplane in a coding client (MCP server, hooks, status line), or remove it.
    Install {
        #[command(subcommand)]
        client: install::InstallClient,
    },
    /// Check the install and the pipeline: one line per check, each problem with its fix.
    Doctor(doctor::DoctorArgs),
    /// Hook command for an assistant (registered by `install`): reads the hook payload on
    /// stdin, appends it to the stream (or the spool when Redis is down) and exits 0.
    Hook {
        #[arg(value_enum)]
        client: HookClient,
    },
    /// Status-line command for Claude Code (registered by `install claude`): reads the
    /// status JSON on stdin, prints one line (today's cost, this session's, the 5-hour and
    /// 7-day windows) and captures the cost and `rate_limits` like a hook.
    Statusline,
}

/// How `serve` talks MCP.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// Serve MCP over Streamable HTTP at http://ADDR/mcp instead of stdio (ADDR defaults to
    /// 127.0.0.1:7532; HOST:PORT, localhost:PORT, :PORT or PORT). With BLUEPLANE_TOKEN set,
    /// every request needs 'Authorization: Bearer <token>'.
    #[arg(
        long,
        value_name = "ADDR",
        num_args = 0..=1,
        default_missing_value = crate::mcp::http::DEFAULT_ADDR,
        value_parser = crate::mcp::http::parse_addr
    )]
    pub http: Option<std::net::SocketAddr>,
    /// With --http: serve stdio too, in the same process (it exits when stdin closes).
    #[arg(long, requires = "http")]
    pub stdio: bool,
    /// With --http: allow a non-loopback ADDR (BLUEPLANE_TOKEN must be set) and accept
    /// browser requests from these extra origins (comma-separated, e.g. https://app.example).
    #[arg(
        long,
        value_name = "ORIGIN",
        num_args = 0..,
        value_delimiter = ',',
        requires = "http"
    )]
    pub allow_remote: Option<Vec<String>>,
}

/// The assistants whose hooks `blueplane hook` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HookClient {
    Claude,
    Cursor,
}

impl HookClient {
    /// The platform of its events and the name of the command (for dead letters).
    pub fn origin(self) -> (crate::event::Platform, &'static str) {
        match self {
            HookClient::Claude => (crate::event::Platform::ClaudeCode, "hook:claude"),
            HookClient::Cursor => (crate::event::Platform::Cursor, "hook:cursor"),
        }
    }

    /// What the hook prints on stdout, whatever happened to the payload. Claude Code reads
    /// the stdout of some events as context for the model: nothing. Cursor reads a JSON object
    /// from several events (a permission, `continue`, a follow-up message) and some versions
    /// want one from every event: `{}`, which expresses no opinion. Never `permission: allow`
    /// (it would auto-approve a command the user asked Cursor to confirm), never deny, ask
    /// or `continue: false`. `beforeSubmitPrompt` gets `{}` too rather than
    /// `{"continue":true}`: `continue` defaults to true, and an explicit true could override
    /// another hook's `false` wherever Cursor merges the outputs of several hooks.
    pub fn stdout(self) -> &'static str {
        match self {
            HookClient::Claude => "",
            HookClient::Cursor => CURSOR_HOOK_OUTPUT,
        }
    }
}

/// The one JSON object `blueplane hook cursor` prints, for every event (see
/// [`HookClient::stdout`]).
pub const CURSOR_HOOK_OUTPUT: &str = "{}";

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Period {
    Daily,
    Weekly,
    Monthly,
    Session,
    /// ccusage's 5-hour billing blocks, gaps and the active block included.
    Blocks,
}

#[derive(Debug, Subcommand)]
pub enum MetricsAction {
    /// Recompute every metric in Redis from SQLite.
    Rebuild {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RedisAction {
    Status {
        #[arg(long)]
        json: bool,
    },
    Stop,
}

#[derive(Debug, Clone, Default, Args)]
pub struct FilterArgs {
    /// From this date (YYYY-MM-DD or YYYYMMDD) or ISO date-time.
    #[arg(long, short = 's')]
    pub since: Option<String>,
    /// Up to and including this date, or before this ISO date-time.
    #[arg(long, short = 'u')]
    pub until: Option<String>,
    /// claude_code or cursor.
    #[arg(long)]
    pub platform: Option<String>,
    /// Substring of the project path.
    #[arg(long)]
    pub project: Option<String>,
}

impl FilterArgs {
    fn to_filter(&self, tz: &Tz) -> anyhow::Result<Filter> {
        Ok(Filter::parse(
            tz,
            self.since.as_deref(),
            self.until.as_deref(),
            self.platform.clone(),
            self.project.clone(),
        )?)
    }
}

/// Runs a parsed command.
///
/// The commands on an assistant's hot path (`hook`), run synchronously before any async
/// runtime, logging or managed Redis exists. Returns false for every other command. They
/// never fail: whatever happens, the assistant sees exit 0 and on stdout nothing (Claude
/// Code) or `{}` (Cursor, see [`HookClient::stdout`]).
pub fn run_fast(command: &Command, cfg: Result<Config, crate::config::ConfigError>) -> bool {
    match command {
        Command::Hook { client } => {
            let target = crate::hook::Target::from_config(cfg);
            let (platform, origin) = client.origin();
            let d =
                crate::hook::run_hook(target.as_ref(), platform, origin, std::io::stdin().lock());
            if d == crate::hook::Delivery::Lost {
                // Shown by Claude Code only in verbose mode (exit 0).
                let _ = writeln!(
                    std::io::stderr(),
                    "blueplane: the hook payload could not be stored (no writable BLUEPLANE_HOME and no Redis)"
                );
            }
            let out = client.stdout();
            if !out.is_empty() {
                let mut stdout = std::io::stdout().lock();
                let _ = writeln!(stdout, "{out}").and_then(|()| stdout.flush());
            }
            true
        }
        Command::Statusline => {
            let target = crate::hook::Target::from_config(cfg);
            let status = crate::hook::run_statusline(target.as_ref(), std::io::stdin().lock())
                .unwrap_or(serde_json::Value::Null);
            let conn = target
                .as_ref()
                .and_then(|t| crate::store::open_reader(&t.db_path).ok());
            let line = crate::query::usage::statusline_text(
                conn.as_ref(),
                &status,
                chrono::Utc::now().timestamp_millis(),
                &Tz::local(),
            );
            let _ = writeln!(std::io::stdout(), "{line}");
            true
        }
        _ => false,
    }
}

/// # Errors
/// Anything that stops the command; main prints it as one sentence.
pub async fn run(cli: Cli, cfg: Config) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(cfg, args).await,
        Command::Ingest => ingest(cfg).await,
        Command::Backfill { json } => backfill(cfg, json).await,
        Command::Report {
            period,
            filter,
            timezone,
            json,
        } => {
            let tz = Tz::parse(timezone.as_deref())?;
            let f = filter.to_filter(&tz)?;
            let group_by = match period {
                Period::Daily => GroupBy::Day,
                Period::Weekly => GroupBy::Week,
                Period::Monthly => GroupBy::Month,
                Period::Session => GroupBy::Session,
                Period::Blocks => {
                    let now = chrono::Utc::now().timestamp_millis();
                    let b = Reader::new(&cfg.db_path())
                        .with(|c| query::blocks::blocks(c, &f, &tz, now))?;
                    return output::blocks(&b, &tz, json);
                }
            };
            let queue = connect_quiet(&cfg).await;
            let buckets = match &queue {
                Some(q) => query::metric_buckets(&mut q.conn(), &f, group_by)
                    .await
                    .ok()
                    .flatten(),
                None => None,
            };
            let reader = Reader::new(&cfg.db_path());
            let m = reader.with(|c| query::get_metrics(c, buckets, &f, group_by, &tz))?;
            output::metrics(&m, json)
        }
        Command::Sessions {
            filter,
            limit,
            json,
        } => {
            let f = filter.to_filter(&Tz::local())?;
            let list = Reader::new(&cfg.db_path())
                .with(|c| query::list_sessions(c, &f, Some(limit), None))?;
            output::sessions(&list, json)
        }
        Command::Search {
            query: q,
            filter,
            limit,
            json,
        } => {
            let f = filter.to_filter(&Tz::local())?;
            let r = Reader::new(&cfg.db_path())
                .with(|c| query::search(c, &q, &f, Some(limit), None, cfg.privacy))?;
            output::search(&r, json)
        }
        Command::Status { json } => {
            let queue = connect_quiet(&cfg).await;
            let st = query::status::pipeline_status(&cfg.db_path(), queue.as_ref()).await?;
            output::status(&st, json)?;
            if st.redis != "ok" {
                bail!("redis is not reachable: {}", st.redis);
            }
            Ok(())
        }
        Command::Metrics {
            action: MetricsAction::Rebuild { json },
        } => {
            let queue = pipeline::connect(&cfg).await?;
            let mut db = crate::store::open_writer(&cfg.db_path())?;
            let mut redis = queue.conn();
            let started = Instant::now();
            let n = crate::slow_path::flush::rebuild(&mut db, &mut redis)
                .await?
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "another blueplane process is rebuilding the metrics right now; try again in a minute"
                    )
                })?;
            output::rebuilt(n, started.elapsed(), json)
        }
        Command::Dlq { action } => dlq::run(action, cfg).await,
        Command::Hook { .. } | Command::Statusline => {
            run_fast(&cli.command, Ok(cfg));
            Ok(())
        }
        Command::Install { client } => install::run(client, &cfg),
        Command::Doctor(args) => doctor::run(args, &cfg).await,
        Command::Redis { action } => {
            let m = ManagedRedis::new(&cfg.home);
            match action {
                RedisAction::Status { json } => {
                    let st = m.status()?;
                    output::redis_status(&st, cfg.redis_url.as_deref(), json)
                }
                RedisAction::Stop => {
                    let stopped = m.stop()?;
                    output::line(if stopped {
                        "managed redis-server stopped"
                    } else {
                        "managed redis-server was not running"
                    })
                }
            }
        }
    }
}

/// Redis for read-only commands: use it when it is there, never fail without it.
async fn connect_quiet(cfg: &Config) -> Option<Queue> {
    match tokio::time::timeout(Duration::from_secs(5), pipeline::connect(cfg)).await {
        Ok(Ok(q)) => Some(q),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "Redis unavailable; answering from SQLite");
            None
        }
        Err(_) => None,
    }
}

async fn serve(cfg: Config, args: ServeArgs) -> anyhow::Result<()> {
    // Refuse an unsafe address and a taken port before anything starts.
    let http = match args.http {
        Some(addr) => {
            let token = std::env::var("BLUEPLANE_TOKEN").ok();
            let security =
                http::Security::new(addr, args.allow_remote.as_deref(), token.as_deref())?;
            Some((http::bind(addr).await?, security))
        }
        None => None,
    };
    let stdio = args.stdio || http.is_none();
    std::fs::create_dir_all(&cfg.home)
        .with_context(|| format!("creating {}", cfg.home.display()))?;
    // Make sure the schema exists before the first tool call opens a reader.
    drop(crate::store::open_writer(&cfg.db_path())?);
    let (queue, running) = match pipeline::connect(&cfg).await {
        Ok(q) => {
            let r = pipeline::start(&cfg, &q, true).await?;
            (Some(q), Some(r))
        }
        Err(e) => {
            tracing::error!(error = %e, "Ingestion is off; serving what is already stored");
            (None, None)
        }
    };
    let server = Telemetry::new(State {
        db: cfg.db_path(),
        reader: crate::query::reader::Reader::new(&cfg.db_path()),
        queue,
        privacy: cfg.privacy,
    });
    let http_stop = tokio_util::sync::CancellationToken::new();
    let mut http_task = http.map(|(listener, security)| {
        tokio::spawn(http::serve(
            listener,
            server.clone(),
            security,
            http_stop.clone(),
        ))
    });
    let result = tokio::select! {
        r = serve_stdio(server), if stdio => r,
        r = async {
            match http_task.as_mut() {
                Some(t) => t.await,
                None => std::future::pending().await,
            }
        } => {
            http_task = None;
            match r {
                Ok(r) => r.map_err(anyhow::Error::new),
                Err(e) => Err(anyhow::Error::new(e).context("the MCP HTTP server stopped")),
            }
        }
        _ = shutdown_signal() => Ok(()),
    };
    if let Some(t) = http_task {
        http_stop.cancel();
        match tokio::time::timeout(Duration::from_secs(5), t).await {
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "MCP HTTP server stopped with an error"),
            Ok(_) => {}
            Err(_) => tracing::warn!("Open MCP HTTP requests did not finish in time"),
        }
    }
    if let Some(r) = running {
        r.stop(Duration::from_secs(5)).await;
    }
    result
}

/// One MCP session over stdio, until stdin closes.
async fn serve_stdio(server: Telemetry) -> anyhow::Result<()> {
    // Stdin may close before (or during) the handshake: the caller stops cleanly either way.
    // Lines are checked first (`mcp::jsonrpc`: the JSON-RPC error codes rmcp gets wrong).
    let (transport, flushed) = crate::mcp::jsonrpc::stdio();
    let service = server
        .serve(transport)
        .await
        .context("starting the MCP stdio transport")?;
    if let Err(e) = service.waiting().await {
        tracing::warn!(error = %e, "MCP session ended with an error");
    }
    // The last responses reach stdout before the process exits.
    let _ = tokio::time::timeout(Duration::from_secs(2), flushed).await;
    Ok(())
}

async fn ingest(cfg: Config) -> anyhow::Result<()> {
    let queue = pipeline::connect(&cfg).await?;
    let running = pipeline::start(&cfg, &queue, true).await?;
    tracing::info!(dirs = ?cfg.claude_projects, "Ingesting");
    shutdown_signal().await;
    running.stop(Duration::from_secs(10)).await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// One full scan under the capture lease, so that counts stay exact while a `serve` or
/// `ingest` runs: take the lease when it is free and scan (fenced); otherwise file a scan
/// request and wait for the holder to serve it — or take over if the holder goes away.
async fn scan_under_lease(
    queue: &Queue,
    capture: &mut Capture,
    holder: &str,
    mut progress: impl FnMut(u64) + Send,
) -> anyhow::Result<crate::capture::CaptureStats> {
    use crate::capture::{CaptureError, CaptureStats};
    use crate::queue::lease::HeldLease;
    let stop = tokio_util::sync::CancellationToken::new();
    let mut total = CaptureStats::default();
    let mut request: Option<u64> = None;
    loop {
        if let Some(lease) = HeldLease::try_take(queue, holder).await? {
            capture.attach(&lease, &stop).await?;
            let mut files = 0;
            let mut part = CaptureStats::default();
            let mut result = Ok(());
            let paths = capture.files();
            for (i, (path, _)) in paths.iter().enumerate() {
                // The next file is read and parsed while this one is published.
                if let Some((next, _)) = paths.get(i + 1) {
                    capture.read_ahead(next);
                }
                match capture.capture_file(path, &mut progress).await {
                    Ok(s) => {
                        files += 1;
                        part += s;
                    }
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            lease.release().await;
            total.events += part.events;
            total.bad_lines += part.bad_lines;
            total.bytes += part.bytes;
            match result {
                Ok(()) => {
                    total.files = files;
                    return Ok(total);
                }
                Err(CaptureError::LeaseLost | CaptureError::Stopped) => {
                    tracing::warn!("Lost the capture lease during backfill; resuming");
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let n = match request {
            Some(n) => n,
            None => {
                let n = queue.request_scan().await?;
                tracing::info!(
                    holder = ?queue.lease_holder().await.ok().flatten(),
                    "Another process captures; asked it for a full scan"
                );
                request = Some(n);
                n
            }
        };
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if let Some(figures) = queue.take_scan_result(n).await? {
                let s: CaptureStats = serde_json::from_str(&figures).unwrap_or_default();
                progress(s.bytes);
                total += s;
                return Ok(total);
            }
            if queue.lease_holder().await?.is_none() {
                break;
            }
        }
    }
}

/// Summary of a backfill.
#[derive(Debug, serde::Serialize)]
pub struct BackfillSummary {
    pub files: u64,
    pub bytes: u64,
    pub events: u64,
    pub bad_lines: u64,
    pub sessions: i64,
    pub seconds: f64,
    /// When the last event was on the queue (the rest is storing and deriving).
    pub capture_seconds: f64,
    pub mb_per_s: f64,
    pub events_per_s: f64,
    pub dirs: Vec<String>,
}

async fn backfill(cfg: Config, json: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let queue = pipeline::connect(&cfg).await?;
    let running = pipeline::start(&cfg, &queue, false).await?;
    let mut capture = Capture::new(
        queue.clone(),
        cfg.spool_dir(),
        cfg.claude_projects.clone(),
        cfg.cursor_dirs(),
        cfg.privacy,
    )
    .await?;
    let files = capture.files();
    let backlog = capture.backlog_bytes(&files);
    let bar = (std::io::stderr().is_terminal() && !json).then(|| {
        let b = indicatif::ProgressBar::new(backlog);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} {wide_bar} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let holder = pipeline::consumer_name();
    let stats = scan_under_lease(&queue, &mut capture, &holder, |n| {
        if let Some(b) = &bar {
            b.inc(n);
        }
    })
    .await?;
    let captured_after = started.elapsed().as_secs_f64();
    tracing::info!(seconds = captured_after, "Capture scan finished");
    if let Some(b) = &bar {
        b.set_message("storing");
    }
    loop {
        if pipeline::drained(&cfg, &queue).await? {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    running.stop(Duration::from_secs(10)).await;
    let conn = crate::store::open_reader(&cfg.db_path())?;
    let sessions: i64 = conn.query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))?;
    let secs = started.elapsed().as_secs_f64();
    let summary = BackfillSummary {
        files: stats.files,
        bytes: stats.bytes,
        events: stats.events,
        bad_lines: stats.bad_lines,
        sessions,
        seconds: secs,
        capture_seconds: captured_after,
        mb_per_s: stats.bytes as f64 / 1e6 / secs.max(1e-9),
        events_per_s: stats.events as f64 / secs.max(1e-9),
        dirs: cfg
            .claude_projects
            .iter()
            .map(|d| d.display().to_string())
            .collect(),
    };
    output::backfill(&summary, json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve_args(argv: &[&str]) -> ServeArgs {
        let cli = Cli::try_parse_from(argv).unwrap();
        match cli.command {
            Command::Serve(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn serve_http_address_defaults_and_flags() {
        let plain = serve_args(&["blueplane", "serve"]);
        assert_eq!((plain.http, plain.stdio), (None, false));
        let default = serve_args(&["blueplane", "serve", "--http", "--stdio"]);
        assert_eq!(default.http, Some("127.0.0.1:7532".parse().unwrap()));
        assert!(default.stdio);
        assert_eq!(default.allow_remote, None);
        let remote = serve_args(&[
            "blueplane",
            "serve",
            "--http",
            "0.0.0.0:9000",
            "--allow-remote",
            "https://a.example,http://b.example:8080",
        ]);
        assert_eq!(remote.http, Some("0.0.0.0:9000".parse().unwrap()));
        assert_eq!(
            remote.allow_remote,
            Some(vec![
                "https://a.example".to_string(),
                "http://b.example:8080".to_string()
            ])
        );
        let bare = serve_args(&["blueplane", "serve", "--http", "[::1]:1", "--allow-remote"]);
        assert_eq!(bare.allow_remote, Some(vec![]));
        assert!(Cli::try_parse_from(["blueplane", "serve", "--stdio"]).is_err());
        assert!(Cli::try_parse_from(["blueplane", "serve", "--allow-remote"]).is_err());
        // HOST:PORT, localhost:PORT, :PORT and PORT; loopback unless HOST says otherwise.
        for (arg, want) in [
            ("localhost:1", "127.0.0.1:1"),
            ("LocalHost:7600", "127.0.0.1:7600"),
            (":7533", "127.0.0.1:7533"),
            ("7534", "127.0.0.1:7534"),
            ("127.0.0.2:9", "127.0.0.2:9"),
            ("[::1]:8080", "[::1]:8080"),
        ] {
            let a = serve_args(&["blueplane", "serve", "--http", arg]);
            assert_eq!(a.http, Some(want.parse().unwrap()), "{arg}");
        }
        for bad in [
            "example.com:80",
            "localhost",
            ":",
            "70000",
            "127.0.0.1",
            "::1:80",
            "localhost:x",
        ] {
            let e = Cli::try_parse_from(["blueplane", "serve", "--http", bad]).unwrap_err();
            assert!(e.to_string().contains("HOST:PORT"), "{bad}: {e}");
        }
    }
}
