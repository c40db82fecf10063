//! Claude Code: the MCP server registration, the hooks and the status line.
//!
//! Where (formats.md §B1, §B5; claude-code-2.1.md §1):
//! - user scope: the MCP server in `.claude.json` (top-level `mcpServers`, as `claude mcp add
//!   --scope user` writes it) and the hooks and status line in `settings.json`, both in
//!   `$CLAUDE_CONFIG_DIR` when it is set, else `~/.claude.json` and `~/.claude/settings.json`;
//! - project scope (`--project DIR`): `DIR/.mcp.json` and `DIR/.claude/settings.json`.
//!
//! The server is registered in one of two forms: the command form (`{"type":"stdio",
//! "command":<exe>,"args":["serve"],...}`, the default) or the URL form of `install --http`
//! (`{"type":"http","url":...}`, as `claude mcp add --transport http` writes it, for a
//! `blueplane serve --http` the user keeps running); a second install in the other form
//! replaces the first. A token is never written: with `BLUEPLANE_TOKEN` set the URL form says
//! `"Authorization":"Bearer ${BLUEPLANE_TOKEN}"`, which Claude Code expands when it connects.
//!
//! What is ours: the `blueplane` server whose command is a blueplane binary, or whose URL is
//! a loopback `/mcp` URL the install record says we wrote; every hook
//! handler whose command runs a blueplane binary with `hook claude`, and the status line
//! that runs one with `statusline` (an optional `env NAME=value ...` prefix allowed). Install
//! adds what is missing, points stale entries (an older binary's path) at this binary, and
//! touches nothing else; uninstall removes what is ours, the containers it created once they
//! are empty, and puts back a status line it replaced.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::json_text::{self as jt, Node};
use super::record::FileRecord;
use super::{FileChange, InstallError, read_text, shell};
use crate::hook::events::{CLAUDE_EVENTS, CLAUDE_EVENTS_NOT_INSTALLED};

/// The MCP server's name, so its tools are `mcp__blueplane__*`.
pub const SERVER_NAME: &str = "blueplane";
/// Seconds Claude Code gives the hook command (it takes milliseconds).
pub const HOOK_TIMEOUT_S: u64 = 5;
/// Variables passed on to the server and the hooks when set at install time, so they use the
/// same data directory, Redis and privacy mode as the installer.
pub const PASSED_ENV: &[&str] = &["BLUEPLANE_HOME", "REDIS_URL", "BLUEPLANE_PRIVACY_MODE"];

const HOOK_ARGS: &[&str] = &["hook", "claude"];
const STATUSLINE_ARGS: &[&str] = &["statusline"];

/// The URL `install --http` registers without one: `blueplane serve --http`'s default.
pub const DEFAULT_HTTP_URL: &str = "http://127.0.0.1:7532/mcp";
/// The variable whose value the URL form sends as a bearer token (by reference, never by
/// value).
pub const TOKEN_VAR: &str = "BLUEPLANE_TOKEN";

/// The address a `blueplane serve --http` must listen on to answer `url`, when `url` is
/// `http://<loopback host>[:port]/mcp` (`localhost` is 127.0.0.1; no port is 80): the only
/// URLs `install --http` writes, so the only ones it recognises as its own.
pub fn loopback_mcp_addr(url: &str) -> Option<std::net::SocketAddr> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = rest.split_once('/')?;
    if path != "mcp" || authority.contains('@') {
        return None;
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once(']')?,
        // The port keeps its colon, as after `]`.
        None => authority.split_at(authority.find(':').unwrap_or(authority.len())),
    };
    let port = match port.strip_prefix(':') {
        Some(p) => p.parse::<u16>().ok()?,
        None if port.is_empty() => 80,
        None => return None,
    };
    let ip = if host.eq_ignore_ascii_case("localhost") {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        host.parse::<std::net::IpAddr>().ok()?
    };
    ip.is_loopback()
        .then_some(std::net::SocketAddr::new(ip, port))
}

/// Whether `url` is one [`loopback_mcp_addr`] accepts.
pub fn is_loopback_mcp_url(url: &str) -> bool {
    loopback_mcp_addr(url).is_some()
}

/// The events `install` registers: every known one but those whose hook output would change
/// what Claude Code does.
pub fn installed_events() -> impl Iterator<Item = &'static str> {
    CLAUDE_EVENTS
        .iter()
        .copied()
        .filter(|e| !CLAUDE_EVENTS_NOT_INSTALLED.contains(e))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    User,
    Project,
}

/// The two files an install edits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub scope: Scope,
    /// `.claude.json` (user) or `.mcp.json` (project).
    pub mcp_file: PathBuf,
    /// `settings.json`.
    pub settings_file: PathBuf,
}

impl Target {
    /// The user scope for `CLAUDE_CONFIG_DIR` (`claude_config_dir`) and `HOME` (`home`).
    ///
    /// # Errors
    /// Several config dirs in `CLAUDE_CONFIG_DIR` (which one Claude Code runs with is not
    /// known), or no home directory.
    pub fn user(
        claude_config_dir: Option<&str>,
        home: Option<&Path>,
    ) -> Result<Target, InstallError> {
        match claude_config_dir.map(str::trim).filter(|s| !s.is_empty()) {
            Some(d) if d.contains(',') => Err(InstallError::SeveralConfigDirs(d.to_string())),
            Some(d) => {
                let dir = match (d.strip_prefix("~/"), home) {
                    (Some(rest), Some(h)) => h.join(rest),
                    _ => PathBuf::from(d),
                };
                let dir = std::path::absolute(&dir).unwrap_or(dir);
                Ok(Target {
                    scope: Scope::User,
                    mcp_file: dir.join(".claude.json"),
                    settings_file: dir.join("settings.json"),
                })
            }
            None => {
                let h = home.ok_or(InstallError::NoHome)?;
                Ok(Target {
                    scope: Scope::User,
                    mcp_file: h.join(".claude.json"),
                    settings_file: h.join(".claude").join("settings.json"),
                })
            }
        }
    }

    /// The project scope of `dir`.
    pub fn project(dir: &Path) -> Target {
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        Target {
            scope: Scope::Project,
            mcp_file: dir.join(".mcp.json"),
            settings_file: dir.join(".claude").join("settings.json"),
        }
    }
}

/// What an install writes.
#[derive(Debug, Clone)]
pub struct Installer {
    /// The absolute, canonical path of the running binary.
    pub exe: PathBuf,
    /// [`PASSED_ENV`] variables set at install time, in that order.
    pub env: Vec<(String, String)>,
    /// Replace a status line that is not ours (`--statusline`).
    pub replace_status_line: bool,
    /// How the MCP server is registered.
    pub mcp: McpForm,
}

/// The form of the MCP server's entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McpForm {
    /// Claude Code starts `<exe> serve` (stdio).
    Command,
    /// Claude Code connects to a running `blueplane serve --http` at `url`; `bearer` adds the
    /// `Authorization` header that names [`TOKEN_VAR`].
    Http { url: String, bearer: bool },
}

#[derive(Serialize)]
#[serde(untagged)]
enum McpEntry {
    Command {
        #[serde(rename = "type")]
        kind: &'static str,
        command: String,
        args: Vec<&'static str>,
        env: BTreeMap<String, String>,
    },
    Http {
        #[serde(rename = "type")]
        kind: &'static str,
        url: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        headers: Option<BTreeMap<&'static str, String>>,
    },
}

#[derive(Serialize)]
struct HookGroup {
    hooks: Vec<HookHandler>,
}

#[derive(Serialize)]
struct HookHandler {
    #[serde(rename = "type")]
    kind: &'static str,
    command: String,
    timeout: u64,
}

#[derive(Serialize)]
struct StatusLine {
    #[serde(rename = "type")]
    kind: &'static str,
    command: String,
}

#[derive(Serialize)]
struct Empty {}

impl Installer {
    fn command(&self, args: &[&str]) -> String {
        command_line(&self.exe, &self.env, args)
    }

    /// The hook command: `[env NAME=value...] <exe> hook claude`.
    pub fn hook_command(&self) -> String {
        self.command(HOOK_ARGS)
    }

    /// The status-line command: `[env NAME=value...] <exe> statusline`.
    pub fn statusline_command(&self) -> String {
        self.command(STATUSLINE_ARGS)
    }

    fn mcp_entry(&self) -> McpEntry {
        match &self.mcp {
            McpForm::Command => McpEntry::Command {
                kind: "stdio",
                command: self.exe.to_string_lossy().into_owned(),
                args: vec!["serve"],
                env: self.env.iter().cloned().collect(),
            },
            McpForm::Http { url, bearer } => McpEntry::Http {
                kind: "http",
                url: url.clone(),
                headers: bearer.then(|| {
                    [("Authorization", format!("Bearer ${{{TOKEN_VAR}}}"))]
                        .into_iter()
                        .collect()
                }),
            },
        }
    }
}

/// `[env NAME=value...] <exe> args...`, each word quoted for `sh`.
pub(super) fn command_line(exe: &Path, env: &[(String, String)], args: &[&str]) -> String {
    let mut words = Vec::new();
    if !env.is_empty() {
        words.push("env".to_string());
        words.extend(env.iter().map(|(k, v)| shell::assignment(k, v)));
    }
    words.push(shell::quote(&exe.to_string_lossy()));
    words.extend(args.iter().map(|a| (*a).to_string()));
    words.join(" ")
}

pub(super) fn is_blueplane_program(program: &str, exe: &Path) -> bool {
    let p = Path::new(program);
    p == exe || p.file_name().is_some_and(|n| n == "blueplane")
}

/// The command read back when it runs a blueplane binary with exactly `args`.
pub(super) fn ours(cmd: &str, args: &[&str], exe: &Path) -> Option<shell::Command> {
    let c = shell::parse(cmd)?;
    (c.args == args && is_blueplane_program(&c.program, exe)).then_some(c)
}

/// What [`merge_hook`] did to one event's list.
pub(super) enum HookMerge {
    /// The command of a stale entry of ours (another path to a blueplane binary) now is `want`.
    Updated,
    /// `entry` was appended.
    Added,
}

/// Merges our hook command `want` into one event's `list` in `text`, whose entries' command
/// nodes are `commands`: `None` when `want` is already there; else the new text, with the first
/// stale entry of ours repointed, or `entry` appended. Foreign entries are never touched.
pub(super) fn merge_hook<'a, T: Serialize + ?Sized>(
    text: &str,
    list: &Node,
    commands: impl IntoIterator<Item = &'a Node>,
    want: &str,
    args: &[&str],
    exe: &Path,
    entry: &T,
) -> Option<(String, HookMerge)> {
    let mut stale: Option<&Node> = None;
    for node in commands {
        let Some(cmd) = node.as_str() else {
            continue;
        };
        if cmd == want {
            return None;
        }
        if stale.is_none() && ours(cmd, args, exe).is_some() {
            stale = Some(node);
        }
    }
    Some(match stale {
        Some(node) => (jt::replace_value(text, node, want), HookMerge::Updated),
        None => (jt::append_item(text, list, entry), HookMerge::Added),
    })
}

pub(super) fn invalid(path: &Path, message: impl Into<String>) -> InstallError {
    InstallError::Invalid {
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// Parses `text` (the contents of `path`) and checks that it is an object.
pub(super) fn parse_root(path: &Path, text: &str) -> Result<Node, InstallError> {
    let root = jt::parse(text).map_err(|e| invalid(path, e.to_string()))?;
    if root.members().is_none() {
        return Err(invalid(path, "not a JSON object"));
    }
    Ok(root)
}

/// The text an edit starts from: the file, or `{}` for a missing or blank one.
pub(super) fn start_text(before: &Option<String>) -> String {
    match before {
        Some(t) if !t.trim().is_empty() => t.clone(),
        _ => "{}".to_string(),
    }
}

pub(super) fn finish(
    path: &Path,
    before: Option<String>,
    mut text: String,
    notes: Vec<String>,
    mode: u32,
) -> FileChange {
    if before.is_none() && !text.ends_with('\n') {
        text.push('\n');
    }
    FileChange {
        path: path.to_path_buf(),
        before,
        after: Some(text),
        notes,
        new_mode: mode,
    }
}

/// Mode of a file the install creates: `.claude.json` holds account state, so owner only.
fn mode_for(t: &Target, path: &Path) -> u32 {
    if t.scope == Scope::User && path == t.mcp_file {
        0o600
    } else {
        0o644
    }
}

/// The change that registers the MCP server in `t.mcp_file`; `rec` learns what it created.
///
/// # Errors
/// An unreadable or invalid file, or a `blueplane` server that is not a blueplane binary.
pub fn install_mcp(
    t: &Target,
    inst: &Installer,
    rec: &mut FileRecord,
) -> Result<FileChange, InstallError> {
    let path = &t.mcp_file;
    add_server(
        path,
        &inst.exe,
        &inst.mcp_entry(),
        rec,
        mode_for(t, path),
        &format!("'claude mcp remove {SERVER_NAME}'"),
    )
}

/// The change that puts `entry` as the `blueplane` server of the `mcpServers` map of `path`
/// (Claude Code's and Cursor's files share the shape); `remove_hint` says how to remove a
/// foreign server of that name.
///
/// # Errors
/// An unreadable or invalid file, or a `blueplane` server that is not blueplane's.
pub(super) fn add_server<E: Serialize>(
    path: &Path,
    exe: &Path,
    entry: &E,
    rec: &mut FileRecord,
    mode: u32,
    remove_hint: &str,
) -> Result<FileChange, InstallError> {
    let before = read_text(path)?;
    let mut text = start_text(&before);
    let root = parse_root(path, &text)?;
    let want = serde_json::to_value(entry).unwrap_or_default();
    let mut notes = Vec::new();
    match root.get("mcpServers") {
        None => {
            let one: BTreeMap<&str, &E> = [(SERVER_NAME, entry)].into_iter().collect();
            text = jt::insert_member(&text, &root, "mcpServers", &one);
            rec.add_created("/mcpServers".into());
            notes.push(format!("added MCP server {SERVER_NAME}"));
        }
        Some(servers) if servers.members().is_none() => {
            return Err(invalid(path, "a file whose mcpServers is not an object"));
        }
        Some(servers) => match servers.get(SERVER_NAME) {
            None => {
                text = jt::insert_member(&text, servers, SERVER_NAME, entry);
                notes.push(format!("added MCP server {SERVER_NAME}"));
            }
            Some(cur) => {
                let have = jt::value(&text, cur);
                if have != want {
                    let was = match ours_mcp(&have, exe, rec, want_url(&want)) {
                        Some(was) => was,
                        None => {
                            return Err(InstallError::Conflict {
                                path: path.display().to_string(),
                                message: format!(
                                    "an MCP server named {SERVER_NAME} {}, not blueplane's; remove or rename it ({remove_hint}) and install again",
                                    describe_mcp(&have)
                                ),
                            });
                        }
                    };
                    text = jt::replace_value(&text, cur, entry);
                    notes.push(format!("updated MCP server {SERVER_NAME} (it {was})"));
                }
            }
        },
    }
    rec.mcp_url = want_url(&want).map(str::to_string);
    if before.is_none() {
        rec.created_file = true;
    }
    Ok(finish(path, before, text, notes, mode))
}

pub(super) fn want_url(entry: &serde_json::Value) -> Option<&str> {
    entry.get("url").and_then(serde_json::Value::as_str)
}

/// What a server entry does, for messages: "runs 'cmd'" or "points at 'url'".
pub(super) fn describe_mcp(entry: &serde_json::Value) -> String {
    match entry.get("url").and_then(serde_json::Value::as_str) {
        Some(url) => format!("points at '{url}'"),
        None => format!(
            "runs '{}'",
            entry
                .get("command")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("")
        ),
    }
}

/// Whether the server entry `entry` is ours (then what it did, for the note): a command
/// that is a blueplane binary, or a loopback `/mcp` URL that the record says we wrote or that
/// is the one about to be written (`want_url`).
pub(super) fn ours_mcp(
    entry: &serde_json::Value,
    exe: &Path,
    rec: &FileRecord,
    want_url: Option<&str>,
) -> Option<String> {
    if let Some(url) = entry.get("url").and_then(serde_json::Value::as_str) {
        let known = rec.mcp_url.as_deref() == Some(url) || want_url == Some(url);
        return (known && is_loopback_mcp_url(url)).then(|| describe_mcp(entry));
    }
    let command = entry.get("command")?.as_str()?;
    is_blueplane_program(command, exe).then(|| describe_mcp(entry))
}

/// The change that adds the hooks and the status line to `t.settings_file`.
///
/// # Errors
/// An unreadable or invalid file (or `hooks` of the wrong shape).
pub fn install_settings(
    t: &Target,
    inst: &Installer,
    rec: &mut FileRecord,
) -> Result<FileChange, InstallError> {
    let path = &t.settings_file;
    let before = read_text(path)?;
    let mut text = start_text(&before);
    let root = parse_root(path, &text)?;
    let mut notes = Vec::new();
    let want = inst.hook_command();
    if root.get("hooks").is_none() {
        text = jt::insert_member(&text, &root, "hooks", &Empty {});
        rec.add_created("/hooks".into());
    }
    let (mut added, mut updated) = (0, 0);
    for event in installed_events() {
        let root = parse_root(path, &text)?;
        let Some(hooks) = root.get("hooks").filter(|h| h.members().is_some()) else {
            return Err(invalid(path, "a file whose hooks is not an object"));
        };
        let group = HookGroup {
            hooks: vec![HookHandler {
                kind: "command",
                command: want.clone(),
                timeout: HOOK_TIMEOUT_S,
            }],
        };
        match hooks.get(event) {
            None => {
                text = jt::insert_member(&text, hooks, event, &[group]);
                rec.add_created(format!("/hooks/{event}"));
                added += 1;
            }
            Some(list) => {
                let Some(groups) = list.items() else {
                    return Err(invalid(
                        path,
                        format!("a file whose hooks.{event} is not a list"),
                    ));
                };
                let commands = groups
                    .iter()
                    .filter_map(|g| g.get("hooks")?.items())
                    .flatten()
                    .filter_map(|h| h.get("command"));
                match merge_hook(&text, list, commands, &want, HOOK_ARGS, &inst.exe, &group) {
                    None => {}
                    Some((t, HookMerge::Updated)) => (text, updated) = (t, updated + 1),
                    Some((t, HookMerge::Added)) => (text, added) = (t, added + 1),
                }
            }
        }
    }
    if added > 0 {
        notes.push(format!("added hooks for {added} events"));
    }
    if updated > 0 {
        notes.push(format!("pointed {updated} hooks at this binary"));
    }
    let root = parse_root(path, &text)?;
    let want_sl = inst.statusline_command();
    let ours_sl = StatusLine {
        kind: "command",
        command: want_sl.clone(),
    };
    match root.get("statusLine") {
        None => {
            text = jt::insert_member(&text, &root, "statusLine", &ours_sl);
            notes.push("added status line".into());
        }
        Some(sl) => {
            let cmd_node = sl.get("command");
            let cmd = cmd_node.and_then(Node::as_str).unwrap_or("");
            if cmd == want_sl {
            } else if let (Some(node), Some(_)) = (cmd_node, ours(cmd, STATUSLINE_ARGS, &inst.exe))
            {
                text = jt::replace_value(&text, node, &want_sl);
                notes.push("pointed the status line at this binary".into());
            } else if inst.replace_status_line {
                rec.previous_status_line = Some(jt::raw(&text, sl).to_string());
                text = jt::replace_value(&text, sl, &ours_sl);
                notes.push("replaced the status line (uninstall puts it back)".into());
            } else {
                notes.push("kept your status line (--statusline replaces it)".into());
            }
        }
    }
    if before.is_none() {
        rec.created_file = true;
    }
    Ok(finish(path, before, text, notes, mode_for(t, path)))
}

/// Whether a container at `key_path` may go once empty: the install created it, or there is
/// no record to say (then the uninstall's own removals emptied it).
pub(super) fn may_remove(rec: Option<&FileRecord>, key_path: &str) -> bool {
    rec.is_none_or(|r| r.created(key_path))
}

/// The end of an uninstall: a file the install created and that is empty again goes.
pub(super) fn finish_uninstall(
    path: &Path,
    before: Option<String>,
    text: String,
    notes: Vec<String>,
    rec: Option<&FileRecord>,
) -> Result<FileChange, InstallError> {
    let root = parse_root(path, &text)?;
    let gone = rec.is_some_and(|r| r.created_file) && jt::is_empty_container(&root);
    Ok(FileChange {
        path: path.to_path_buf(),
        after: if gone { None } else { Some(text) },
        before,
        notes,
        new_mode: 0o644,
    })
}

pub(super) fn unchanged(path: &Path) -> FileChange {
    FileChange {
        path: path.to_path_buf(),
        before: None,
        after: None,
        notes: Vec::new(),
        new_mode: 0o644,
    }
}

/// The change that removes the MCP server from `t.mcp_file`.
///
/// # Errors
/// An unreadable or invalid file.
pub fn uninstall_mcp(
    t: &Target,
    exe: &Path,
    rec: Option<&FileRecord>,
) -> Result<FileChange, InstallError> {
    remove_server(&t.mcp_file, exe, rec)
}

/// The change that removes our `blueplane` server from the `mcpServers` map of `path`, and
/// the map when the install created it and it is empty again.
///
/// # Errors
/// An unreadable or invalid file.
pub(super) fn remove_server(
    path: &Path,
    exe: &Path,
    rec: Option<&FileRecord>,
) -> Result<FileChange, InstallError> {
    let Some(before) = read_text(path)? else {
        return Ok(unchanged(path));
    };
    let mut text = start_text(&Some(before.clone()));
    let root = parse_root(path, &text)?;
    let mut notes = Vec::new();
    let empty = FileRecord::default();
    if let Some(servers) = root.get("mcpServers")
        && let Some(i) = servers.index_of(SERVER_NAME)
        && let Some(entry) = servers.members().map(|m| jt::value(&text, &m[i].value))
        && ours_mcp(&entry, exe, rec.unwrap_or(&empty), None).is_some()
    {
        text = jt::remove_member(&text, servers, i);
        notes.push(format!("removed MCP server {SERVER_NAME}"));
        let root = parse_root(path, &text)?;
        if let Some(servers) = root.get("mcpServers")
            && jt::is_empty_container(servers)
            && may_remove(rec, "/mcpServers")
            && let Some(i) = root.index_of("mcpServers")
        {
            text = jt::remove_member(&text, &root, i);
        }
    }
    finish_uninstall(path, Some(before), text, notes, rec)
}

/// Where our next hook handler is: (event, group index, handler index, whether the group is
/// left with nothing but it).
fn find_our_handler(root: &Node, exe: &Path) -> Option<(String, usize, usize, bool)> {
    for m in root.get("hooks")?.members()? {
        for (gi, g) in m.value.items().into_iter().flatten().enumerate() {
            let Some(handlers) = g.get("hooks").and_then(Node::items) else {
                continue;
            };
            for (hi, h) in handlers.iter().enumerate() {
                if h.get("command")
                    .and_then(Node::as_str)
                    .and_then(|c| ours(c, HOOK_ARGS, exe))
                    .is_some()
                {
                    let only = handlers.len() == 1
                        && g.members().is_some_and(|ms| {
                            ms.iter().all(|m| m.key == "hooks" || m.key == "matcher")
                        });
                    return Some((m.key.clone(), gi, hi, only));
                }
            }
        }
    }
    None
}

/// The change that removes the hooks and the status line from `t.settings_file`.
///
/// # Errors
/// An unreadable or invalid file.
pub fn uninstall_settings(
    t: &Target,
    exe: &Path,
    rec: Option<&FileRecord>,
) -> Result<FileChange, InstallError> {
    let path = &t.settings_file;
    let Some(before) = read_text(path)? else {
        return Ok(unchanged(path));
    };
    let mut text = start_text(&Some(before.clone()));
    let mut notes = Vec::new();
    let mut emptied: Vec<String> = Vec::new();
    let mut removed = 0;
    loop {
        let root = parse_root(path, &text)?;
        let Some((event, gi, hi, only)) = find_our_handler(&root, exe) else {
            break;
        };
        let Some(list) = root.path(&["hooks", &event]) else {
            break;
        };
        let Some(group) = list.items().and_then(|g| g.get(gi)) else {
            break;
        };
        text = if only {
            jt::remove_item(&text, list, gi)
        } else {
            match group.get("hooks") {
                Some(handlers) => jt::remove_item(&text, handlers, hi),
                None => break,
            }
        };
        removed += 1;
        if !emptied.contains(&event) {
            emptied.push(event);
        }
    }
    for event in &emptied {
        let root = parse_root(path, &text)?;
        if let Some(hooks) = root.get("hooks")
            && let Some(i) = hooks.index_of(event)
            && hooks.get(event).is_some_and(jt::is_empty_container)
            && may_remove(rec, &format!("/hooks/{event}"))
        {
            text = jt::remove_member(&text, hooks, i);
        }
    }
    if removed > 0 {
        notes.push(format!("removed {removed} hooks"));
        let root = parse_root(path, &text)?;
        if root.get("hooks").is_some_and(jt::is_empty_container)
            && may_remove(rec, "/hooks")
            && let Some(i) = root.index_of("hooks")
        {
            text = jt::remove_member(&text, &root, i);
        }
    }
    let root = parse_root(path, &text)?;
    if let Some(sl) = root.get("statusLine")
        && sl
            .get("command")
            .and_then(Node::as_str)
            .and_then(|c| ours(c, STATUSLINE_ARGS, exe))
            .is_some()
    {
        match rec.and_then(|r| r.previous_status_line.as_deref()) {
            Some(previous) => {
                text = jt::replace_raw(&text, sl, previous);
                notes.push("put your status line back".into());
            }
            None => {
                if let Some(i) = root.index_of("statusLine") {
                    text = jt::remove_member(&text, &root, i);
                    notes.push("removed status line".into());
                }
            }
        }
    }
    finish_uninstall(path, Some(before), text, notes, rec)
}

/// Where an entry of ours points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum Registration {
    /// Not there.
    Missing,
    /// Runs this binary.
    Current { env: BTreeMap<String, String> },
    /// Runs another blueplane binary.
    Stale { program: String },
    /// The URL form (`install --http`): a loopback `/mcp` URL, served by `serve --http`;
    /// `bearer` when it sends `Authorization: Bearer ${BLUEPLANE_TOKEN}`.
    Http { url: String, bearer: bool },
    /// Something else sits where ours would (another status line, a foreign `blueplane`).
    Other { command: String },
}

/// What `doctor` sees of an install.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    pub settings_file: PathBuf,
    pub mcp_file: PathBuf,
    /// A file that cannot be read or parsed.
    pub errors: Vec<String>,
    pub mcp: Registration,
    /// Events with a hook that runs this binary.
    pub hooks_current: Vec<String>,
    /// Events whose only hook of ours runs another blueplane binary, with that binary.
    pub hooks_stale: Vec<(String, String)>,
    /// Events of [`installed_events`] without any hook of ours.
    pub hooks_missing: Vec<String>,
    /// The environment our current hooks set (`env NAME=value`), from the first one.
    pub hook_env: BTreeMap<String, String>,
    pub status_line: Registration,
}

pub(super) fn read_root(path: &Path, errors: &mut Vec<String>) -> Option<(String, Node)> {
    match read_text(path) {
        Ok(Some(text)) => match parse_root(path, &text) {
            Ok(root) => Some((text, root)),
            Err(e) => {
                errors.push(e.to_string());
                None
            }
        },
        Ok(None) => None,
        Err(e) => {
            errors.push(e.to_string());
            None
        }
    }
}

/// What the server entry `entry` is: ours (current, stale, by URL) or another's; `bearer` is
/// the `Authorization` header the URL form sends when it names the token variable.
pub(super) fn registration(entry: &Node, exe: &Path, bearer: &str) -> Registration {
    let cmd = entry
        .get("command")
        .and_then(Node::as_str)
        .unwrap_or("")
        .to_string();
    let url = entry.get("url").and_then(Node::as_str);
    if let Some(url) = url {
        if is_loopback_mcp_url(url) {
            let bearer = entry
                .path(&["headers", "Authorization"])
                .and_then(Node::as_str)
                .is_some_and(|h| h == bearer);
            Registration::Http {
                url: url.to_string(),
                bearer,
            }
        } else {
            Registration::Other {
                command: url.to_string(),
            }
        }
    } else if Path::new(&cmd) == exe {
        let env = entry
            .get("env")
            .and_then(Node::members)
            .into_iter()
            .flatten()
            .filter_map(|m| Some((m.key.clone(), m.value.as_str()?.to_string())))
            .collect();
        Registration::Current { env }
    } else if is_blueplane_program(&cmd, exe) {
        Registration::Stale { program: cmd }
    } else {
        Registration::Other { command: cmd }
    }
}

/// Reads what is registered in `t` and whether it points at `exe`.
pub fn inspect(t: &Target, exe: &Path) -> Inspection {
    let mut errors = Vec::new();
    let mut mcp = Registration::Missing;
    if let Some((_, root)) = read_root(&t.mcp_file, &mut errors)
        && let Some(entry) = root.path(&["mcpServers", SERVER_NAME])
    {
        mcp = registration(entry, exe, &format!("Bearer ${{{TOKEN_VAR}}}"));
    }
    let mut out = Inspection {
        settings_file: t.settings_file.clone(),
        mcp_file: t.mcp_file.clone(),
        errors: Vec::new(),
        mcp,
        hooks_current: Vec::new(),
        hooks_stale: Vec::new(),
        hooks_missing: Vec::new(),
        hook_env: BTreeMap::new(),
        status_line: Registration::Missing,
    };
    let settings = read_root(&t.settings_file, &mut errors);
    for event in installed_events() {
        let mut found: Option<shell::Command> = None;
        let mut stale: Option<String> = None;
        if let Some((_, root)) = &settings {
            let groups = root
                .path(&["hooks", event])
                .and_then(Node::items)
                .unwrap_or(&[]);
            for h in groups
                .iter()
                .filter_map(|g| g.get("hooks")?.items())
                .flatten()
            {
                if let Some(c) = h
                    .get("command")
                    .and_then(Node::as_str)
                    .and_then(|c| ours(c, HOOK_ARGS, exe))
                {
                    if Path::new(&c.program) == exe {
                        found = Some(c);
                        break;
                    }
                    stale.get_or_insert(c.program);
                }
            }
        }
        match (found, stale) {
            (Some(c), _) => {
                if out.hooks_current.is_empty() {
                    out.hook_env = c.env.into_iter().collect();
                }
                out.hooks_current.push(event.to_string());
            }
            (None, Some(p)) => out.hooks_stale.push((event.to_string(), p)),
            (None, None) => out.hooks_missing.push(event.to_string()),
        }
    }
    if let Some((_, root)) = &settings
        && let Some(sl) = root.get("statusLine")
    {
        let cmd = sl.get("command").and_then(Node::as_str).unwrap_or("");
        out.status_line = match ours(cmd, STATUSLINE_ARGS, exe) {
            Some(c) if Path::new(&c.program) == exe => Registration::Current {
                env: c.env.into_iter().collect(),
            },
            Some(c) => Registration::Stale { program: c.program },
            None => Registration::Other {
                command: cmd.to_string(),
            },
        };
    }
    out.errors = errors;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(exe: &str) -> Installer {
        Installer {
            exe: PathBuf::from(exe),
            env: vec![("BLUEPLANE_HOME".into(), "/tmp/a b".into())],
            replace_status_line: false,
            mcp: McpForm::Command,
        }
    }

    #[test]
    fn commands_are_quoted_and_recognised() {
        let i = inst("/opt/x y/blueplane");
        assert_eq!(
            i.hook_command(),
            "env BLUEPLANE_HOME='/tmp/a b' '/opt/x y/blueplane' hook claude"
        );
        assert!(ours(&i.hook_command(), HOOK_ARGS, &i.exe).is_some());
        assert!(ours(&i.statusline_command(), STATUSLINE_ARGS, &i.exe).is_some());
        assert!(ours("/usr/bin/blueplane hook claude", HOOK_ARGS, &i.exe).is_some());
        assert!(ours("other-tool hook claude", HOOK_ARGS, &i.exe).is_none());
        assert!(ours("/usr/bin/blueplane hook cursor", HOOK_ARGS, &i.exe).is_none());
        assert!(ours("/usr/bin/blueplane hook claude && x", HOOK_ARGS, &i.exe).is_none());
    }

    #[test]
    fn loopback_mcp_urls_and_their_serve_address() {
        let addr = |u: &str| loopback_mcp_addr(u).map(|a| a.to_string());
        assert_eq!(addr(DEFAULT_HTTP_URL).as_deref(), Some("127.0.0.1:7532"));
        assert_eq!(
            addr("http://localhost:9/mcp").as_deref(),
            Some("127.0.0.1:9")
        );
        assert_eq!(addr("http://[::1]:8080/mcp").as_deref(), Some("[::1]:8080"));
        assert_eq!(
            addr("http://127.0.0.2/mcp").as_deref(),
            Some("127.0.0.2:80")
        );
        for bad in [
            "https://127.0.0.1:7532/mcp",
            "http://127.0.0.1:7532/",
            "http://127.0.0.1:7532/mcp/",
            "http://127.0.0.1:7532/mcp?x=1",
            "http://example.com:7532/mcp",
            "http://10.0.0.1:7532/mcp",
            "http://u@127.0.0.1:7532/mcp",
            "http://127.0.0.1:99999/mcp",
            "http://127.0.0.1:/mcp",
            "http://[::1/mcp",
            "127.0.0.1:7532/mcp",
        ] {
            assert_eq!(addr(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_url_form_is_written_as_claude_mcp_add_writes_it_and_replaces_the_command_form() {
        let dir = tempfile::tempdir().unwrap();
        let t = Target::user(Some(&dir.path().display().to_string()), None).unwrap();
        let mut i = inst("/opt/bp/blueplane");
        let mut rec = FileRecord::default();
        let c = install_mcp(&t, &i, &mut rec).unwrap();
        crate::install::apply(&[c], false).unwrap();
        i.mcp = McpForm::Http {
            url: DEFAULT_HTTP_URL.into(),
            bearer: true,
        };
        let c = install_mcp(&t, &i, &mut rec).unwrap();
        assert_eq!(
            c.after.as_deref(),
            Some(
                "{\n  \"mcpServers\": {\n    \"blueplane\": {\n      \"type\": \"http\",\n      \"url\": \"http://127.0.0.1:7532/mcp\",\n      \"headers\": {\n        \"Authorization\": \"Bearer ${BLUEPLANE_TOKEN}\"\n      }\n    }\n  }\n}\n"
            )
        );
        assert_eq!(rec.mcp_url.as_deref(), Some(DEFAULT_HTTP_URL));
        crate::install::apply(&[c], false).unwrap();
        assert_eq!(
            inspect(&t, &i.exe).mcp,
            Registration::Http {
                url: DEFAULT_HTTP_URL.into(),
                bearer: true
            }
        );
        // Without the record, a loopback URL other than the one asked for is not ours.
        i.mcp = McpForm::Http {
            url: "http://127.0.0.1:9/mcp".into(),
            bearer: false,
        };
        assert!(install_mcp(&t, &i, &mut FileRecord::default()).is_err());
        let kept = uninstall_mcp(&t, &i.exe, None).unwrap();
        assert!(kept.is_noop());
        // With it, the entry is ours: replaced, or removed.
        assert!(!install_mcp(&t, &i, &mut rec.clone()).unwrap().is_noop());
        let gone = uninstall_mcp(&t, &i.exe, Some(&rec)).unwrap();
        assert_eq!(gone.after, None, "the install had created the file");
    }

    #[test]
    fn user_target_follows_claude_config_dir() {
        let t = Target::user(Some("/c"), Some(Path::new("/h"))).unwrap();
        assert_eq!(t.mcp_file, Path::new("/c/.claude.json"));
        assert_eq!(t.settings_file, Path::new("/c/settings.json"));
        let t = Target::user(None, Some(Path::new("/h"))).unwrap();
        assert_eq!(t.mcp_file, Path::new("/h/.claude.json"));
        assert_eq!(t.settings_file, Path::new("/h/.claude/settings.json"));
        assert!(Target::user(Some("/a,/b"), None).is_err());
        let t = Target::project(Path::new("/p"));
        assert_eq!(t.mcp_file, Path::new("/p/.mcp.json"));
        assert_eq!(t.settings_file, Path::new("/p/.claude/settings.json"));
    }

    #[test]
    fn every_installed_event_is_known_and_worktree_create_is_left_out() {
        let v: Vec<_> = installed_events().collect();
        assert_eq!(
            v.len(),
            CLAUDE_EVENTS.len() - CLAUDE_EVENTS_NOT_INSTALLED.len()
        );
        assert!(!v.contains(&"WorktreeCreate"));
        assert!(v.contains(&"PreToolUse"));
    }

    /// Install then uninstall gives back the bytes, whatever the layout of the file.
    #[test]
    fn round_trips_keep_every_layout() {
        let layouts = [
            "{}",
            "{}\n",
            "{\"hooks\":{\"Stop\":[{\"hooks\":[{\"type\":\"command\",\"command\":\"x\"}]}]},\"statusLine\":{\"type\":\"command\",\"command\":\"s\"}}",
            "{\n\t\"hooks\": {\n\t\t\"PreToolUse\": []\n\t},\n\t\"n\": 1.0e3\n}",
            "{\n    \"mcpServers\": {},\n    \"hooks\": {\"Stop\": [{\"matcher\": \"\", \"hooks\": []}]}\n}\n",
        ];
        for (n, text) in layouts.iter().enumerate() {
            for replace in [false, true] {
                let dir = tempfile::tempdir().unwrap();
                let t = Target::user(Some(&dir.path().display().to_string()), None).unwrap();
                std::fs::write(&t.settings_file, text).unwrap();
                std::fs::write(&t.mcp_file, text).unwrap();
                let i = Installer {
                    exe: PathBuf::from("/opt/bp/blueplane"),
                    env: vec![],
                    replace_status_line: replace,
                    mcp: McpForm::Command,
                };
                let mut sr = FileRecord::default();
                let mut mr = FileRecord::default();
                let changes = vec![
                    install_settings(&t, &i, &mut sr).unwrap(),
                    install_mcp(&t, &i, &mut mr).unwrap(),
                ];
                crate::install::apply(&changes, false).unwrap();
                let installed = std::fs::read_to_string(&t.settings_file).unwrap();
                let seen = inspect(&t, &i.exe);
                assert!(seen.hooks_missing.is_empty(), "layout {n}: {installed}");
                assert!(
                    matches!(seen.mcp, Registration::Current { .. }),
                    "layout {n}"
                );
                // Installing again changes nothing.
                let again = install_settings(&t, &i, &mut sr.clone()).unwrap();
                assert!(again.is_noop(), "layout {n}: {:?}", again.after);
                let changes = vec![
                    uninstall_settings(&t, &i.exe, Some(&sr)).unwrap(),
                    uninstall_mcp(&t, &i.exe, Some(&mr)).unwrap(),
                ];
                crate::install::apply(&changes, false).unwrap();
                assert_eq!(
                    std::fs::read_to_string(&t.settings_file).unwrap(),
                    *text,
                    "layout {n}, replace {replace}, installed:\n{installed}"
                );
                assert_eq!(
                    std::fs::read_to_string(&t.mcp_file).unwrap(),
                    *text,
                    "layout {n}"
                );
            }
        }
    }
}
