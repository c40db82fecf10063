//! `blueplane install claude [--project DIR] [--http [URL|ADDR]] [--dry-run] [--uninstall]
//! [--statusline]` and `blueplane install cursor [--project DIR] [--http [URL|ADDR]]
//! [--dry-run] [--uninstall]`: the command-line glue over `install` — which binary and
//! environment to register, the record, and what is printed (one line per file and what to do
//! next; `--json` for programs).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use serde::Serialize;

use super::output;
use crate::config::Config;
use crate::install::claude::{self, Installer, McpForm, Scope, Target};
use crate::install::cursor;
use crate::install::record::{self, Record};
use crate::install::{self, Action, FileReport};

#[derive(Debug, Subcommand)]
pub enum InstallClient {
    /// Claude Code: the MCP server (user scope, or DIR/.mcp.json), a hook for every event and
    /// the status line (settings.json); merges with what is there, keeps a backup of each file.
    Claude(ClaudeArgs),
    /// Cursor: the MCP server (~/.cursor/mcp.json, or DIR/.cursor/mcp.json) and a hook for
    /// every event (hooks.json beside it); merges with what is there, keeps a backup of each
    /// file. CURSOR_HOME overrides ~/.cursor.
    Cursor(CursorArgs),
}

#[derive(Debug, Args)]
pub struct CursorArgs {
    /// Install into this project (DIR/.cursor/mcp.json, DIR/.cursor/hooks.json) instead of
    /// for the user.
    #[arg(long, value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// Print the diff of every file that would change, and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Remove what install added.
    #[arg(long)]
    pub uninstall: bool,
    /// Register the MCP server by URL (a running 'blueplane serve --http': a URL, or the
    /// ADDR given to serve; default http://127.0.0.1:7532/mcp) instead of as a command; with
    /// BLUEPLANE_TOKEN set, Cursor sends it as a bearer token (the file names the variable,
    /// never the value). The hooks stay commands.
    #[arg(
        long,
        value_name = "URL|ADDR",
        num_args = 0..=1,
        default_missing_value = claude::DEFAULT_HTTP_URL
    )]
    pub http: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ClaudeArgs {
    /// Install into this project (DIR/.mcp.json, DIR/.claude/settings.json) instead of for
    /// the user.
    #[arg(long, value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// Print the diff of every file that would change, and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Remove what install added (and put back a status line it replaced).
    #[arg(long)]
    pub uninstall: bool,
    /// Replace an existing status line (uninstall puts it back).
    #[arg(long)]
    pub statusline: bool,
    /// Register the MCP server by URL (a running 'blueplane serve --http': a URL, or the
    /// ADDR given to serve; default http://127.0.0.1:7532/mcp) instead of as a command; with
    /// BLUEPLANE_TOKEN set, Claude Code sends it as a bearer token (the file names the
    /// variable, never the value). The hooks and status line stay commands.
    #[arg(
        long,
        value_name = "URL|ADDR",
        num_args = 0..=1,
        default_missing_value = claude::DEFAULT_HTTP_URL
    )]
    pub http: Option<String>,
    #[arg(long)]
    pub json: bool,
}

/// The canonical path of the running binary: what the config files will run.
///
/// # Errors
/// When the OS cannot say.
pub fn current_exe() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("finding the path of this blueplane binary")?;
    Ok(std::fs::canonicalize(&exe).unwrap_or(exe))
}

/// Where Claude Code's files are for `project` (None = the user scope).
///
/// # Errors
/// Several `CLAUDE_CONFIG_DIR`s, or no home.
pub fn claude_target(project: Option<&Path>) -> anyhow::Result<Target> {
    Ok(match project {
        Some(dir) if !dir.is_dir() => {
            anyhow::bail!(
                "{} is not a directory: give --project the root of an existing project",
                dir.display()
            )
        }
        Some(dir) => Target::project(dir),
        None => Target::user(
            std::env::var("CLAUDE_CONFIG_DIR").ok().as_deref(),
            std::env::var_os("HOME").map(PathBuf::from).as_deref(),
        )?,
    })
}

/// [`claude::PASSED_ENV`] as set now (`BLUEPLANE_HOME` made absolute).
fn passed_env() -> Vec<(String, String)> {
    claude::PASSED_ENV
        .iter()
        .filter_map(|k| {
            let v = std::env::var(k).ok().filter(|v| !v.trim().is_empty())?;
            let v = if *k == "BLUEPLANE_HOME" {
                std::path::absolute(&v)
                    .map(|p| p.display().to_string())
                    .unwrap_or(v)
            } else {
                v
            };
            Some(((*k).to_string(), v))
        })
        .collect()
}

/// Where Cursor's files are for `project` (None = the user scope).
///
/// # Errors
/// A `project` that is not a directory, or no home.
pub fn cursor_target(project: Option<&Path>) -> anyhow::Result<cursor::Target> {
    Ok(match project {
        Some(dir) if !dir.is_dir() => {
            anyhow::bail!(
                "{} is not a directory: give --project the root of an existing project",
                dir.display()
            )
        }
        Some(dir) => cursor::Target::project(dir),
        None => cursor::Target::user(
            std::env::var(cursor::HOME_VAR).ok().as_deref(),
            std::env::var_os("HOME").map(PathBuf::from).as_deref(),
        )?,
    })
}

#[derive(Serialize)]
struct Summary<'a> {
    client: &'static str,
    scope: Scope,
    dry_run: bool,
    uninstall: bool,
    /// Whether any file changed (or would change, in a dry run).
    changed: bool,
    files: &'a [FileReport],
    next: Vec<String>,
}

pub fn run(client: InstallClient, cfg: &Config) -> anyhow::Result<()> {
    match client {
        InstallClient::Claude(a) => run_claude(a, cfg),
        InstallClient::Cursor(a) => run_cursor(a, cfg),
    }
}

fn run_claude(a: ClaudeArgs, cfg: &Config) -> anyhow::Result<()> {
    let exe = current_exe()?;
    let target = claude_target(a.project.as_deref())?;
    let rec_path = record::path(&cfg.home, "claude");
    let mut rec = Record::load(&rec_path)?;
    let key = |p: &Path| p.display().to_string();
    let (mcp_key, settings_key) = (key(&target.mcp_file), key(&target.settings_file));
    // Both changes are computed before either is applied: a bad file stops everything.
    let changes = if a.uninstall {
        vec![
            claude::uninstall_mcp(&target, &exe, rec.files.get(&mcp_key))?,
            claude::uninstall_settings(&target, &exe, rec.files.get(&settings_key))?,
        ]
    } else {
        let inst = Installer {
            exe: exe.clone(),
            env: passed_env(),
            replace_status_line: a.statusline,
            mcp: mcp_form(a.http.as_deref(), "'claude mcp add --transport http'")?,
        };
        let mut mcp_rec = rec.files.get(&mcp_key).cloned().unwrap_or_default();
        let mut settings_rec = rec.files.get(&settings_key).cloned().unwrap_or_default();
        let c = vec![
            claude::install_mcp(&target, &inst, &mut mcp_rec)?,
            claude::install_settings(&target, &inst, &mut settings_rec)?,
        ];
        rec.files.insert(mcp_key.clone(), mcp_rec);
        rec.files.insert(settings_key.clone(), settings_rec);
        c
    };
    let reports = install::apply(&changes, a.dry_run)?;
    if !a.dry_run {
        if a.uninstall {
            rec.files.remove(&mcp_key);
            rec.files.remove(&settings_key);
        }
        rec.save(&rec_path)?;
    }
    let changed = reports.iter().any(|r| r.action != Action::Unchanged);
    let mut next = next_steps(
        &Client::Claude(target.scope),
        a.uninstall,
        a.dry_run,
        changed,
    );
    if let (Some(url), false, false) = (&a.http, a.dry_run, a.uninstall) {
        next.push(serve_hint(url, "Claude Code"));
    }
    print(
        &Summary {
            client: "claude",
            scope: target.scope,
            dry_run: a.dry_run,
            uninstall: a.uninstall,
            changed,
            files: &reports,
            next,
        },
        a.json,
    )
}

fn run_cursor(a: CursorArgs, cfg: &Config) -> anyhow::Result<()> {
    let exe = current_exe()?;
    let target = cursor_target(a.project.as_deref())?;
    let rec_path = record::path(&cfg.home, "cursor");
    let mut rec = Record::load(&rec_path)?;
    let key = |p: &Path| p.display().to_string();
    let (mcp_key, hooks_key) = (key(&target.mcp_file), key(&target.hooks_file));
    // Both changes are computed before either is applied: a bad file stops everything.
    let changes = if a.uninstall {
        vec![
            cursor::uninstall_mcp(&target, &exe, rec.files.get(&mcp_key))?,
            cursor::uninstall_hooks(&target, &exe, rec.files.get(&hooks_key))?,
        ]
    } else {
        let inst = cursor::Installer {
            exe: exe.clone(),
            env: passed_env(),
            mcp: mcp_form(a.http.as_deref(), "Cursor Settings > MCP")?,
        };
        let mut mcp_rec = rec.files.get(&mcp_key).cloned().unwrap_or_default();
        let mut hooks_rec = rec.files.get(&hooks_key).cloned().unwrap_or_default();
        let c = vec![
            cursor::install_mcp(&target, &inst, &mut mcp_rec)?,
            cursor::install_hooks(&target, &inst, &mut hooks_rec)?,
        ];
        rec.files.insert(mcp_key.clone(), mcp_rec);
        rec.files.insert(hooks_key.clone(), hooks_rec);
        c
    };
    let reports = install::apply(&changes, a.dry_run)?;
    if !a.dry_run {
        if a.uninstall {
            rec.files.remove(&mcp_key);
            rec.files.remove(&hooks_key);
        }
        rec.save(&rec_path)?;
    }
    let changed = reports.iter().any(|r| r.action != Action::Unchanged);
    let mut next = next_steps(&Client::Cursor, a.uninstall, a.dry_run, changed);
    if let (Some(url), false, false) = (&a.http, a.dry_run, a.uninstall) {
        next.push(serve_hint(url, "Cursor"));
    }
    print(
        &Summary {
            client: "cursor",
            scope: target.scope,
            dry_run: a.dry_run,
            uninstall: a.uninstall,
            changed,
            files: &reports,
            next,
        },
        a.json,
    )
}

/// One line per file (after the diffs of a dry run) and the next steps; or the summary as
/// JSON.
fn print(s: &Summary<'_>, json: bool) -> anyhow::Result<()> {
    if json {
        return output::json(s);
    }
    let a = s;
    output::emit(|out| {
        for r in s.files {
            if let Some(d) = &r.diff {
                write!(out, "{d}")?;
            }
        }
        for r in s.files {
            let what = match (r.action, a.dry_run) {
                (Action::Unchanged, _) if a.uninstall => "nothing of blueplane's here".to_string(),
                (Action::Unchanged, _) => "unchanged (already installed)".to_string(),
                (Action::Created, true) => "would be created".to_string(),
                (Action::Removed, true) => "would be removed".to_string(),
                (_, true) => "would change".to_string(),
                (Action::Created, false) => "created".to_string(),
                (Action::Removed, false) => "removed (install had created it)".to_string(),
                (Action::Changed, false) => "changed".to_string(),
            };
            let mut line = format!("{}: {what}", r.path.display());
            if !r.notes.is_empty() {
                line.push_str(&format!(": {}", r.notes.join("; ")));
            }
            if let Some(b) = &r.backup {
                line.push_str(&format!(" (backup: {})", b.display()));
            }
            writeln!(out, "{line}")?;
        }
        for n in &s.next {
            writeln!(out, "{n}")?;
        }
        Ok(())
    })
}

/// The URL `--http` names: a URL as it is, or the ADDR of `serve --http ADDR` (`:PORT`,
/// `PORT`, `localhost:PORT`, `HOST:PORT`) as `http://ADDR/mcp`.
fn http_url(arg: &str) -> String {
    let arg = arg.trim();
    if arg.contains("://") {
        return arg.to_string();
    }
    match crate::mcp::http::parse_addr(arg) {
        Ok(addr) => format!("http://{addr}{}", crate::mcp::http::PATH),
        Err(_) => arg.to_string(),
    }
}

/// The MCP form `--http` asks for (`None` = the command form); `elsewhere` is how to
/// register any other server.
///
/// # Errors
/// A URL that is not a loopback `http://host[:port]/mcp`.
fn mcp_form(http: Option<&str>, elsewhere: &str) -> anyhow::Result<McpForm> {
    let Some(arg) = http else {
        return Ok(McpForm::Command);
    };
    let url = http_url(arg);
    if !claude::is_loopback_mcp_url(&url) {
        anyhow::bail!(
            "--http {}: give the URL of a local 'blueplane serve --http', like {} (http://<loopback address>:<port>/mcp), or its address (127.0.0.1:7532, :7532); for another server use {elsewhere}",
            arg.trim(),
            claude::DEFAULT_HTTP_URL
        );
    }
    let bearer = std::env::var(claude::TOKEN_VAR).is_ok_and(|v| !v.trim().is_empty());
    Ok(McpForm::Http { url, bearer })
}

/// What to run so that the URL answers (`client` sends the token).
fn serve_hint(arg: &str, client: &str) -> String {
    let addr =
        claude::loopback_mcp_addr(&http_url(arg)).map_or_else(String::new, |a| format!(" {a}"));
    let token = if std::env::var(claude::TOKEN_VAR).is_ok_and(|v| !v.trim().is_empty()) {
        format!(
            "; {client} sends ${} as the bearer token, so start both with the same {} set",
            claude::TOKEN_VAR,
            claude::TOKEN_VAR
        )
    } else {
        String::new()
    };
    format!(
        "the MCP server is registered by URL: keep 'blueplane serve --http{addr}' running{token}"
    )
}

/// Which client an install was for, and its scope.
enum Client {
    Claude(Scope),
    Cursor,
}

fn next_steps(client: &Client, uninstall: bool, dry_run: bool, changed: bool) -> Vec<String> {
    if dry_run {
        return vec![if changed {
            "dry run: nothing was written; run again without --dry-run to apply".into()
        } else {
            "dry run: nothing would change".into()
        }];
    }
    if !changed {
        return vec![if uninstall {
            "nothing to remove: blueplane is not installed here".into()
        } else {
            "nothing to do: blueplane is already installed".into()
        }];
    }
    match client {
        Client::Claude(scope) => {
            let mut v = vec![if uninstall {
                "next: restart Claude Code so it stops running blueplane".to_string()
            } else {
                "next: restart Claude Code (or start a new session) to load the hooks and the MCP server; 'blueplane doctor' checks the install".to_string()
            }];
            if *scope == Scope::Project && !uninstall {
                v.push(
                    "Claude Code asks once before it starts a server from .mcp.json: approve 'blueplane' (or set enableAllProjectMcpServers)".into(),
                );
            }
            v
        }
        Client::Cursor if uninstall => {
            vec!["next: restart Cursor so it stops running blueplane".to_string()]
        }
        Client::Cursor => vec![
            "next: restart Cursor, then enable 'blueplane' under Cursor Settings > MCP (Cursor asks before it starts a new server); the hooks apply from the next agent turn; 'blueplane doctor' checks the install".to_string(),
        ],
    }
}
