//! `blueplane doctor [--json] [--privacy] [--project DIR]`: one line per check, ok or
//! problem, each problem with its fix; exit status 1 when there is any problem.
//!
//! Checks, in the order data flows: `redis-server` on PATH, Redis reachable (`REDIS_URL`, or
//! the managed server — reported, never started), capture directories, the Claude Code
//! registration (MCP server, hooks, status line: present, pointing at this binary and this
//! `BLUEPLANE_HOME`), the Cursor registration (MCP server, hooks) and Cursor's data directory
//! (notes only, one line, when Cursor is not installed at all), the hook spool, the database, queue lag and pending entries, the slow
//! path's backlog, dead letters (and their growth in the last hour), the last event per
//! source, and whether the Redis metrics are valid for this store (epoch and generation).
//! `--privacy` adds the stored-data audit of [`scan`].
//!
//! Reads only: it opens no writer, starts no server, and changes no file.

pub mod scan;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use super::output;
use crate::config::Config;
use crate::install::claude::{self, Inspection, Registration};
use crate::install::cursor;
use crate::queue::Queue;
use crate::queue::managed::{ManagedRedis, find_redis_server};

#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[arg(long)]
    pub json: bool,
    /// Also scan SQLite (raw traces decompressed) and Redis for secrets and for content the
    /// privacy mode excludes.
    #[arg(long)]
    pub privacy: bool,
    /// Check the project install of DIR (DIR/.mcp.json, DIR/.claude/settings.json,
    /// DIR/.cursor/) instead of the user's.
    #[arg(long, value_name = "DIR")]
    pub project: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    /// Worth knowing, nothing to fix.
    Note,
    Problem,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub level: Level,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn ok(name: &'static str, message: impl Into<String>) -> Check {
    Check {
        name,
        level: Level::Ok,
        message: message.into(),
        fix: None,
    }
}

fn note(name: &'static str, message: impl Into<String>) -> Check {
    Check {
        name,
        level: Level::Note,
        message: message.into(),
        fix: None,
    }
}

fn problem(name: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        name,
        level: Level::Problem,
        message: message.into(),
        fix: Some(fix.into()),
    }
}

#[derive(Serialize)]
struct Report<'a> {
    healthy: bool,
    problems: usize,
    checks: &'a [Check],
    #[serde(skip_serializing_if = "Option::is_none")]
    privacy: Option<&'a scan::Scan>,
}

/// Stored data is what capture produced back then: the way to apply today's rules to it is to
/// capture again from the transcripts.
const RECAPTURE_FIX: &str = "capture again under the current rules: stop every blueplane process and 'blueplane redis stop', move $BLUEPLANE_HOME aside (with REDIS_URL, also delete its bp:* keys), then run 'blueplane backfill'";

const INSTALL_FIX: &str = "run 'blueplane install claude' (with the BLUEPLANE_HOME and REDIS_URL you use), then restart Claude Code";

const CURSOR_FIX: &str = "run 'blueplane install cursor' (with the BLUEPLANE_HOME and REDIS_URL you use), then restart Cursor";

pub async fn run(args: DoctorArgs, cfg: &Config) -> anyhow::Result<()> {
    let mut checks = Vec::new();
    checks.push(redis_server(cfg));
    let (check, queue) = redis(cfg).await;
    checks.push(check);
    checks.push(capture_dirs(cfg));
    let exe = super::install::current_exe()?;
    match super::install::claude_target(args.project.as_deref()) {
        Ok(t) => install_checks(&claude::inspect(&t, &exe), cfg, &mut checks),
        Err(e) => checks.push(problem(
            "claude install",
            e.to_string(),
            "set CLAUDE_CONFIG_DIR to the one directory Claude Code uses",
        )),
    }
    match super::install::cursor_target(args.project.as_deref()) {
        Ok(t) => cursor_checks(&cursor::inspect(&t, &exe), cfg, &mut checks),
        Err(e) => checks.push(problem(
            "cursor install",
            e.to_string(),
            "set HOME, or CURSOR_HOME to the directory that holds Cursor's mcp.json",
        )),
    }
    checks.push(spool(cfg));
    pipeline_checks(cfg, queue.as_ref(), &mut checks).await;
    let privacy = if args.privacy {
        Some(privacy_scan(cfg, queue.as_ref(), &mut checks).await)
    } else {
        None
    };
    let problems = checks.iter().filter(|c| c.level == Level::Problem).count();
    if args.json {
        output::json(&Report {
            healthy: problems == 0,
            problems,
            checks: &checks,
            privacy: privacy.as_ref(),
        })?;
    } else {
        output::emit(|out| {
            for c in &checks {
                let level = match c.level {
                    Level::Ok => "ok",
                    Level::Note => "note",
                    Level::Problem => "PROBLEM",
                };
                match &c.fix {
                    Some(f) => writeln!(out, "{level:<8} {}: {} — fix: {f}", c.name, c.message)?,
                    None => writeln!(out, "{level:<8} {}: {}", c.name, c.message)?,
                }
            }
            if let Some(s) = &privacy {
                for p in &s.places {
                    writeln!(out, "         found at {}: {}", p.at, p.found.join(", "))?;
                }
                if s.places_total > s.places.len() as u64 {
                    writeln!(
                        out,
                        "         ... and {} more places (--json lists the first {})",
                        s.places_total - s.places.len() as u64,
                        s.places.len()
                    )?;
                }
            }
            if problems == 0 {
                writeln!(out, "healthy")?;
            }
            Ok(())
        })?;
    }
    if problems > 0 {
        anyhow::bail!(
            "doctor found {problems} problem{}",
            if problems == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

fn redis_server(cfg: &Config) -> Check {
    match find_redis_server(std::env::var_os("PATH").as_deref()) {
        Ok(p) => ok("redis-server", format!("found at {}", p.display())),
        Err(_) if cfg.redis_url.is_some() => ok(
            "redis-server",
            "not on PATH, and not needed: REDIS_URL is set",
        ),
        Err(e) => problem(
            "redis-server",
            "not found on PATH",
            e.to_string()
                .split_once(": ")
                .map_or("install redis-server".to_string(), |(_, fix)| {
                    fix.to_string()
                }),
        ),
    }
}

/// `redis://user:secret@host` → `redis://user:***@host`.
fn safe_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s + 3 => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => format!("{}***{}", &url[..s + 3], &url[at..]),
            }
        }
        _ => url.to_string(),
    }
}

async fn connect(url: &str) -> Result<Queue, String> {
    match tokio::time::timeout(Duration::from_secs(3), Queue::connect(url)).await {
        Ok(Ok(q)) => Ok(q),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 3 s".into()),
    }
}

async fn redis(cfg: &Config) -> (Check, Option<Queue>) {
    if let Some(url) = &cfg.redis_url {
        return match connect(url).await {
            Ok(q) => (ok("redis", format!("{} answers", safe_url(url))), Some(q)),
            Err(e) => (
                problem(
                    "redis",
                    format!("{} does not answer ({e})", safe_url(url)),
                    "start that Redis, or unset REDIS_URL to use the managed redis-server",
                ),
                None,
            ),
        };
    }
    let m = ManagedRedis::new(&cfg.home);
    let status = tokio::task::spawn_blocking({
        let m = m.clone();
        move || m.status()
    })
    .await;
    match status {
        Ok(Ok(s)) if s.running => match connect(&m.url()).await {
            Ok(q) => (
                ok(
                    "redis",
                    format!("managed redis-server answers on {}", m.socket.display()),
                ),
                Some(q),
            ),
            Err(e) => (
                problem(
                    "redis",
                    format!("managed redis-server runs but does not answer ({e})"),
                    "see $BLUEPLANE_HOME/redis/redis.log; 'blueplane redis stop' and let the next blueplane start it again",
                ),
                None,
            ),
        },
        Ok(Ok(_)) => (
            problem(
                "redis",
                format!(
                    "the managed redis-server is not running (socket {})",
                    m.socket.display()
                ),
                "it starts with the first 'blueplane serve' (Claude Code starts one) or 'blueplane ingest'; hooks spool their events meanwhile",
            ),
            None,
        ),
        Ok(Err(e)) => (problem("redis", e.to_string(), "see the message"), None),
        Err(e) => (problem("redis", e.to_string(), "run doctor again"), None),
    }
}

fn capture_dirs(cfg: &Config) -> Check {
    let (found, missing): (Vec<&PathBuf>, Vec<&PathBuf>) =
        cfg.claude_projects.iter().partition(|d| d.is_dir());
    let list = |v: &[&PathBuf]| {
        v.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if found.is_empty() {
        problem(
            "capture dirs",
            format!(
                "no Claude Code transcript directory found (looked at {})",
                list(&missing)
            ),
            "set CLAUDE_CONFIG_DIR to Claude Code's config directory (the one holding projects/), or run Claude Code once",
        )
    } else {
        ok("capture dirs", list(&found))
    }
}

/// The `BLUEPLANE_HOME` a process started with `env` uses.
fn home_of(env: &std::collections::BTreeMap<String, String>) -> Option<PathBuf> {
    match env.get("BLUEPLANE_HOME") {
        Some(h) => Some(PathBuf::from(h)),
        None => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".blueplane")),
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    let canon = |p: &Path| {
        std::fs::canonicalize(p).unwrap_or_else(|_| std::path::absolute(p).unwrap_or(p.into()))
    };
    canon(a) == canon(b)
}

fn install_checks(i: &Inspection, cfg: &Config, checks: &mut Vec<Check>) {
    for e in &i.errors {
        checks.push(problem(
            "claude config",
            e.clone(),
            "fix the file by hand so that it is valid JSON",
        ));
    }
    let mcp_file = i.mcp_file.display();
    checks.push(match &i.mcp {
        Registration::Current { env } => match home_of(env) {
            Some(h) if !same_dir(&h, &cfg.home) => problem(
                "mcp server",
                format!(
                    "registered in {mcp_file}, but it uses BLUEPLANE_HOME {} and this doctor {}",
                    h.display(),
                    cfg.home.display()
                ),
                INSTALL_FIX,
            ),
            _ => ok(
                "mcp server",
                format!("registered in {mcp_file}, runs this binary"),
            ),
        },
        Registration::Http { url, bearer } => ok(
            "mcp server",
            format!(
                "registered in {mcp_file} by URL {url}{}; 'blueplane serve --http' must be running there",
                if *bearer {
                    " (bearer token from $BLUEPLANE_TOKEN)"
                } else {
                    ""
                }
            ),
        ),
        Registration::Stale { program } => problem(
            "mcp server",
            format!("registered in {mcp_file}, but it runs {program}, not this binary"),
            INSTALL_FIX,
        ),
        Registration::Other { command } => problem(
            "mcp server",
            format!("the server named blueplane in {mcp_file} runs '{command}'"),
            "remove it ('claude mcp remove blueplane') and run 'blueplane install claude'",
        ),
        Registration::Missing => problem(
            "mcp server",
            format!("not registered in {mcp_file}"),
            INSTALL_FIX,
        ),
    });
    let settings = i.settings_file.display();
    let total = i.hooks_current.len() + i.hooks_stale.len() + i.hooks_missing.len();
    checks.push(if !i.hooks_stale.is_empty() {
        let mut programs: Vec<&str> = i.hooks_stale.iter().map(|(_, p)| p.as_str()).collect();
        programs.dedup();
        problem(
            "hooks",
            format!(
                "{} of {total} hooks in {settings} run another binary ({})",
                i.hooks_stale.len(),
                programs.join(", ")
            ),
            INSTALL_FIX,
        )
    } else if !i.hooks_missing.is_empty() {
        let shown: Vec<&str> = i.hooks_missing.iter().take(4).map(String::as_str).collect();
        problem(
            "hooks",
            format!(
                "{} of {total} events have no blueplane hook in {settings} ({}{})",
                i.hooks_missing.len(),
                shown.join(", "),
                if i.hooks_missing.len() > shown.len() {
                    ", ..."
                } else {
                    ""
                }
            ),
            INSTALL_FIX,
        )
    } else {
        match home_of(&i.hook_env) {
            Some(h) if !same_dir(&h, &cfg.home) => problem(
                "hooks",
                format!(
                    "the hooks write to BLUEPLANE_HOME {} but this doctor reads {}",
                    h.display(),
                    cfg.home.display()
                ),
                INSTALL_FIX,
            ),
            _ => ok(
                "hooks",
                format!("all {total} events in {settings} run this binary"),
            ),
        }
    });
    checks.push(match &i.status_line {
        Registration::Current { .. } => ok("status line", "runs this binary"),
        Registration::Stale { program } => problem(
            "status line",
            format!("runs {program}, not this binary"),
            INSTALL_FIX,
        ),
        Registration::Other { command } | Registration::Http { url: command, .. } => note(
            "status line",
            format!(
                "yours ('{command}') is kept; 'blueplane install claude --statusline' replaces it"
            ),
        ),
        Registration::Missing => note(
            "status line",
            "none; 'blueplane install claude' adds blueplane's",
        ),
    });
}

/// Cursor's application data directory (the one holding `User/`): `CURSOR_DATA_DIR`, else
/// where Cursor keeps it on this OS.
fn cursor_data_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("CURSOR_DATA_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    if cfg!(windows) {
        return std::env::var_os("APPDATA").map(|a| PathBuf::from(a).join("Cursor"));
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    if cfg!(target_os = "macos") {
        return home.map(|h| h.join("Library/Application Support/Cursor"));
    }
    match std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        Some(x) => Some(PathBuf::from(x).join("Cursor")),
        None => home.map(|h| h.join(".config/Cursor")),
    }
}

/// The Cursor checks: one note when Cursor is not on this machine and nothing of ours is
/// registered for it; else the MCP server, the hooks and the data directory. Not installing
/// blueplane for an installed Cursor is a choice (notes); half an install is a problem.
fn cursor_checks(i: &cursor::Inspection, cfg: &Config, checks: &mut Vec<Check>) {
    let home = cursor::cursor_home_dir(
        std::env::var(cursor::HOME_VAR).ok().as_deref(),
        std::env::var_os("HOME").map(PathBuf::from).as_deref(),
    );
    let data = cursor_data_dir();
    let shown = |p: &Option<PathBuf>| {
        p.as_ref()
            .map_or_else(|| "(no HOME)".to_string(), |p| p.display().to_string())
    };
    let data_found = data.as_ref().is_some_and(|d| d.is_dir());
    let home_found = home.as_ref().is_some_and(|d| d.is_dir());
    let none = i.nothing_installed();
    if !data_found && !home_found && none && i.errors.is_empty() {
        checks.push(note(
            "cursor",
            format!(
                "Cursor not found (no {}, no {}): nothing to check",
                shown(&home),
                shown(&data)
            ),
        ));
        return;
    }
    for e in &i.errors {
        checks.push(problem(
            "cursor config",
            e.clone(),
            "fix the file by hand so that it is valid JSON",
        ));
    }
    let mcp_file = i.mcp_file.display();
    checks.push(match &i.mcp {
        Registration::Current { env } => match home_of(env) {
            Some(h) if !same_dir(&h, &cfg.home) => problem(
                "cursor mcp server",
                format!(
                    "registered in {mcp_file}, but it uses BLUEPLANE_HOME {} and this doctor {}",
                    h.display(),
                    cfg.home.display()
                ),
                CURSOR_FIX,
            ),
            _ => ok(
                "cursor mcp server",
                format!("registered in {mcp_file}, runs this binary"),
            ),
        },
        Registration::Http { url, bearer } => ok(
            "cursor mcp server",
            format!(
                "registered in {mcp_file} by URL {url}{}; 'blueplane serve --http' must be running there",
                if *bearer {
                    " (bearer token from $BLUEPLANE_TOKEN)"
                } else {
                    ""
                }
            ),
        ),
        Registration::Stale { program } => problem(
            "cursor mcp server",
            format!("registered in {mcp_file}, but it runs {program}, not this binary"),
            CURSOR_FIX,
        ),
        Registration::Other { command } => problem(
            "cursor mcp server",
            format!("the server named blueplane in {mcp_file} runs '{command}'"),
            "remove it (Cursor Settings > MCP, or from the file) and run 'blueplane install cursor'",
        ),
        Registration::Missing if none => note(
            "cursor mcp server",
            format!("not registered in {mcp_file}; 'blueplane install cursor' registers it"),
        ),
        Registration::Missing => problem(
            "cursor mcp server",
            format!("not registered in {mcp_file}, though blueplane's hooks are there"),
            CURSOR_FIX,
        ),
    });
    let hooks_file = i.hooks_file.display();
    let total = i.hooks_current.len() + i.hooks_stale.len() + i.hooks_missing.len();
    checks.push(if !i.hooks_stale.is_empty() {
        let mut programs: Vec<&str> = i.hooks_stale.iter().map(|(_, p)| p.as_str()).collect();
        programs.dedup();
        problem(
            "cursor hooks",
            format!(
                "{} of {total} hooks in {hooks_file} run another binary ({})",
                i.hooks_stale.len(),
                programs.join(", ")
            ),
            CURSOR_FIX,
        )
    } else if i.hooks_current.is_empty() && none {
        note(
            "cursor hooks",
            format!("none in {hooks_file}; 'blueplane install cursor' adds them"),
        )
    } else if !i.hooks_missing.is_empty() {
        let shown: Vec<&str> = i.hooks_missing.iter().take(4).map(String::as_str).collect();
        problem(
            "cursor hooks",
            format!(
                "{} of {total} events have no blueplane hook in {hooks_file} ({}{})",
                i.hooks_missing.len(),
                shown.join(", "),
                if i.hooks_missing.len() > shown.len() {
                    ", ..."
                } else {
                    ""
                }
            ),
            CURSOR_FIX,
        )
    } else {
        match home_of(&i.hook_env) {
            Some(h) if !same_dir(&h, &cfg.home) => problem(
                "cursor hooks",
                format!(
                    "the hooks write to BLUEPLANE_HOME {} but this doctor reads {}",
                    h.display(),
                    cfg.home.display()
                ),
                CURSOR_FIX,
            ),
            _ => ok(
                "cursor hooks",
                format!("all {total} events in {hooks_file} run this binary"),
            ),
        }
    });
    let db = data
        .as_ref()
        .map(|d| d.join("User").join("globalStorage").join("state.vscdb"));
    checks.push(match (&data, db) {
        (Some(_), Some(db)) if db.is_file() => ok(
            "cursor data",
            format!("Cursor's chats are in {}", db.display()),
        ),
        (Some(d), _) if d.is_dir() => note(
            "cursor data",
            format!(
                "{} has no User/globalStorage/state.vscdb yet: Cursor has not been used here",
                d.display()
            ),
        ),
        _ if none => note(
            "cursor data",
            format!("no Cursor data directory at {}", shown(&data)),
        ),
        _ => problem(
            "cursor data",
            format!(
                "Cursor's data directory (its chats) is not at {}",
                shown(&data)
            ),
            "set CURSOR_DATA_DIR to Cursor's application data directory, the one that holds User/ (~/.config/Cursor on Linux, ~/Library/Application Support/Cursor on macOS)",
        ),
    });
}

fn spool(cfg: &Config) -> Check {
    let dir = cfg.spool_dir();
    let mut files = 0u64;
    let mut bytes = 0u64;
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "jsonl")
                && let Ok(m) = e.metadata()
                && m.len() > 0
            {
                files += 1;
                bytes += m.len();
            }
        }
    }
    if files == 0 {
        ok("spool", format!("empty ({})", dir.display()))
    } else {
        problem(
            "spool",
            format!(
                "{files} spool files ({bytes} bytes) in {} hold hook events not yet in Redis",
                dir.display()
            ),
            "make Redis reachable and start 'blueplane ingest' (or 'blueplane serve'): the capture lease holder drains the spool",
        )
    }
}

async fn pipeline_checks(cfg: &Config, queue: Option<&Queue>, checks: &mut Vec<Check>) {
    let db = cfg.db_path();
    if !db.exists() {
        checks.push(problem(
            "database",
            format!("no database at {} yet", db.display()),
            "run 'blueplane backfill' (or 'blueplane ingest')",
        ));
        return;
    }
    let st = match crate::query::status::pipeline_status(&db, queue).await {
        Ok(s) => s,
        Err(e) => {
            checks.push(problem(
                "database",
                e.to_string(),
                "see the message; 'blueplane status' shows the same figures",
            ));
            return;
        }
    };
    checks.push(ok(
        "database",
        format!("{} ({} sessions)", db.display(), st.sessions),
    ));
    let Some(queue) = queue else {
        checks.push(note(
            "pipeline",
            "queue, dead letters and metrics not checked: Redis is not reachable",
        ));
        return;
    };
    let holder = st.capture_lease_holder.clone();
    let waiting = st.consumer_lag.unwrap_or(0) + st.pending.unwrap_or(0);
    checks.push(match (waiting, &holder) {
        (0, _) => ok("queue", "no events waiting (lag 0, pending 0)"),
        (n, Some(h)) => note(
            "queue",
            format!("{n} events waiting (lag {}, pending {}); {h} is processing", st.consumer_lag.unwrap_or(0), st.pending.unwrap_or(0)),
        ),
        (n, None) => problem(
            "queue",
            format!(
                "{n} events waiting in the stream (lag {}, pending {}) and no blueplane process is running",
                st.consumer_lag.unwrap_or(0),
                st.pending.unwrap_or(0)
            ),
            "start 'blueplane ingest' (or open Claude Code, which starts 'blueplane serve')",
        ),
    });
    checks.push(match (st.slow_path_backlog, &holder) {
        (0, _) => ok("slow path", "every stored event is derived"),
        (n, Some(_)) => note(
            "slow path",
            format!("{n} stored events not derived yet (in progress)"),
        ),
        (n, None) => problem(
            "slow path",
            format!("{n} stored events are not derived and no blueplane process is running"),
            "start 'blueplane ingest' (or 'blueplane backfill')",
        ),
    });
    let dlq = st.dlq_size.unwrap_or(0);
    let recent = st.dlq_last_hour.unwrap_or(0);
    checks.push(if dlq == 0 {
        ok("dead letters", "none")
    } else if recent > 0 {
        problem(
            "dead letters",
            format!("{dlq} dead letters, {recent} of them in the last hour"),
            "see 'blueplane dlq list' and 'blueplane dlq show ID'; after fixing the cause, 'blueplane dlq replay --all' (or 'purge')",
        )
    } else {
        note(
            "dead letters",
            format!("{dlq} dead letters, none in the last hour ('blueplane dlq list')"),
        )
    });
    checks.push(if st.last_event_at.is_empty() {
        note("last event", "nothing captured yet")
    } else {
        ok(
            "last event",
            st.last_event_at
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", "),
        )
    });
    let expected = crate::store::open_reader(&db)
        .map_err(|e| e.to_string())
        .and_then(|c| crate::metrics::expected(&c).map_err(|e| e.to_string()));
    let stamp = crate::metrics::stamp(&mut queue.conn()).await;
    checks.push(match (expected, stamp) {
        (Ok(e), Ok(s)) if s.trusted(&e) => ok(
            "metrics",
            format!("Redis metrics are valid for this store (generation {})", s.generation),
        ),
        (Ok(e), Ok(s)) if st.sessions == 0 && e.flushed == 0 => note(
            "metrics",
            format!("no metrics yet (epoch {:?})", s.epoch),
        ),
        (Ok(e), Ok(s)) => problem(
            "metrics",
            match s.epoch {
                Some(ep) if ep != e.store_id => format!(
                    "Redis metrics belong to another store (epoch {ep}, this store is {}); reports answer from SQLite",
                    e.store_id
                ),
                None => "Redis holds no metrics epoch; reports answer from SQLite".to_string(),
                Some(_) => format!(
                    "Redis metrics are older than SQLite says (generation {} < {}); reports answer from SQLite",
                    s.generation, e.flushed
                ),
            },
            "run 'blueplane metrics rebuild' (a running serve or ingest also rebuilds them)",
        ),
        (Err(e), _) => problem("metrics", e, "see the message"),
        (_, Err(e)) => problem("metrics", e.to_string(), "see the message"),
    });
}

async fn privacy_scan(cfg: &Config, queue: Option<&Queue>, checks: &mut Vec<Check>) -> scan::Scan {
    let mut s = scan::Scan::new(cfg.privacy);
    let db = cfg.db_path();
    if db.exists() {
        let mode = cfg.privacy;
        let db2 = db.clone();
        let result = tokio::task::spawn_blocking(move || {
            let mut part = scan::Scan::new(mode);
            scan::scan_sqlite(&db2, mode, &mut part).map(|()| part)
        })
        .await;
        match result {
            Ok(Ok(part)) => s = part,
            Ok(Err(e)) => checks.push(problem(
                "privacy",
                format!("could not scan {}: {e}", db.display()),
                "run doctor again when no backfill holds the database",
            )),
            Err(e) => checks.push(problem("privacy", e.to_string(), "run doctor again")),
        }
    }
    let redis_scanned = match queue {
        Some(q) => match scan::scan_redis(&mut q.conn(), cfg.privacy, &mut s).await {
            Ok(()) => true,
            Err(e) => {
                checks.push(problem(
                    "privacy",
                    format!("could not scan Redis: {e}"),
                    "run doctor again",
                ));
                false
            }
        },
        None => false,
    };
    let scanned: u64 = s.scanned.values().sum();
    let where_ = if redis_scanned {
        "SQLite and Redis"
    } else {
        "SQLite (Redis not reachable)"
    };
    let count = |m: &std::collections::BTreeMap<String, u64>| {
        m.iter()
            .map(|(k, v)| format!("{k} ×{v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !s.secrets.is_empty() {
        checks.push(problem(
            "privacy secrets",
            format!(
                "secrets stored in {where_}: {} (places below)",
                count(&s.secrets)
            ),
            RECAPTURE_FIX,
        ));
    }
    if !s.excluded.is_empty() {
        checks.push(problem(
            "privacy mode",
            format!(
                "content that the '{}' mode excludes is stored in {where_}: {} (places below)",
                s.mode,
                count(&s.excluded)
            ),
            RECAPTURE_FIX,
        ));
    }
    if s.clean() {
        checks.push(ok(
            "privacy",
            format!(
                "{scanned} rows and entries in {where_}: no secrets, nothing the '{}' mode excludes",
                s.mode
            ),
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_passwords() {
        assert_eq!(safe_url("redis://u:pw@h:1/0"), "redis://u:***@h:1/0");
        assert_eq!(safe_url("redis://pw@h"), "redis://***@h");
        assert_eq!(
            safe_url("redis+unix:///tmp/x.sock"),
            "redis+unix:///tmp/x.sock"
        );
    }
}
