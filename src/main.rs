//! The `blueplane` binary: parse arguments, set up logging, run the command, and print any
//! failure as one sentence on stderr.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::prelude::*;

use blueplane::cli::{Cli, Command, StdoutClosed};
use blueplane::config::Config;

/// mimalloc rather than glibc's malloc: glibc keeps a heap arena per thread that has
/// allocated (the async workers and the blocking pool that reads Cursor's databases and
/// SQLite), and their freed memory stays resident: a 2 GB Cursor backfill peaked at 344–365 MiB
/// with glibc and 181 MiB with `MALLOC_ARENA_MAX=2` (docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // The hook and status-line hot path: no runtime, no logging set-up, no managed Redis, and
    // exit 0 whatever happens — even for arguments this binary does not know (a newer
    // `install` with an older binary): Claude Code treats exit 2, clap's usage error, as
    // "block this prompt".
    let hot = std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == "hook" || a == "statusline");
    let cli = if hot {
        match Cli::try_parse() {
            Ok(cli) => {
                blueplane::cli::run_fast(&cli.command, Config::load());
                return ExitCode::SUCCESS;
            }
            Err(e) => {
                let _ = e.print();
                let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
                // Cursor still reads its JSON object (`hook cursor --some-newer-flag`).
                if std::env::args_os().nth(2).is_some_and(|a| a == "cursor") {
                    use std::io::Write;
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{}", blueplane::cli::CURSOR_HOOK_OUTPUT)
                        .and_then(|()| out.flush());
                }
                return ExitCode::SUCCESS;
            }
        }
    } else {
        Cli::parse()
    };
    let cfg = match Config::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("blueplane: {e}");
            return ExitCode::FAILURE;
        }
    };
    let _guard = init_logging(
        &cfg,
        matches!(cli.command, Command::Serve(_) | Command::Ingest),
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("blueplane: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(blueplane::cli::run(cli, cfg));
    // A pending stdin read (MCP stdio) cannot be cancelled; do not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`blueplane sessions | head -1`): stop quietly, like `cat`.
        Err(e) if e.is::<StdoutClosed>() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("blueplane: {}", one_sentence(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error chain as one line: outermost context first, causes after a colon.
fn one_sentence(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in e.chain() {
        let s = c.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

/// Logs go to stderr (never stdout: it belongs to MCP in `serve`) and, for the long-running
/// modes, to a daily-rotated file in `$BLUEPLANE_HOME/logs`.
fn init_logging(
    cfg: &Config,
    to_file: bool,
) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let stderr_filter = EnvFilter::try_from_env("BLUEPLANE_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("warn"));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_filter(stderr_filter);
    let (file, guard) = if to_file {
        // Without the directory the appender's log pruning prints an error on a fresh home.
        let _ = std::fs::create_dir_all(cfg.log_dir());
        let appender = tracing_appender::rolling::Builder::new()
            .rotation(tracing_appender::rolling::Rotation::DAILY)
            .filename_prefix("blueplane")
            .filename_suffix("log")
            .max_log_files(7)
            .build(cfg.log_dir())
            .ok();
        match appender {
            Some(a) => {
                let (w, g) = tracing_appender::non_blocking(a);
                let layer = tracing_subscriber::fmt::layer()
                    .with_writer(w)
                    .with_ansi(false)
                    .with_filter(EnvFilter::new("info"));
                (Some(layer), Some(g))
            }
            None => (None, None),
        }
    } else {
        (None, None)
    };
    tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .init();
    guard
}
