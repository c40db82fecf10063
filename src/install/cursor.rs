//! Cursor: the MCP server registration and the hooks.
//!
//! Where (formats.md §C7, §C8): the Cursor home is `$CURSOR_HOME` when it is set, else
//! `~/.cursor` (the directory that holds `mcp.json`, `hooks.json` and `projects/`); user scope
//! writes `mcp.json` and `hooks.json` there, project scope (`--project DIR`) writes
//! `DIR/.cursor/mcp.json` and `DIR/.cursor/hooks.json`. Cursor runs every hooks.json it finds,
//! so a project install beside a user install would capture that project's events twice.
//!
//! The server is registered as a command (`{"command":<exe>,"args":["serve"],"env":...}`,
//! the default) or by URL (`{"url":"http://127.0.0.1:7532/mcp"}`, `install cursor --http`, for
//! a `blueplane serve --http` the user keeps running); a token is never written: with
//! `BLUEPLANE_TOKEN` set the URL form sends `"Authorization":"Bearer ${env:BLUEPLANE_TOKEN}"`,
//! which Cursor expands when it connects. The hook is one entry `{"command": "<exe> hook
//! cursor", "timeout": 5}` (seconds; the hook takes milliseconds) in the list of every event
//! of [`CURSOR_EVENTS`]; never `failClosed`, so a failing hook can never block Cursor. A
//! hooks.json without `version` gets `"version": 1` (uninstall removes it again).
//!
//! What is ours, what install and uninstall touch: as for Claude Code (`claude.rs`), with
//! `hook cursor` as the hook's arguments.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::claude::{
    HookMerge, McpForm, Registration, SERVER_NAME, Scope, TOKEN_VAR, add_server, command_line,
    finish, finish_uninstall, invalid, may_remove, merge_hook, ours, parse_root, read_root,
    registration, remove_server, start_text, unchanged,
};
use super::json_text::{self as jt, Node};
use super::record::FileRecord;
use super::{FileChange, InstallError, read_text, shell};
use crate::hook::events::CURSOR_EVENTS;

/// Seconds Cursor gives the hook command.
pub const HOOK_TIMEOUT_S: u64 = 5;
/// The variable that names the Cursor home (default `~/.cursor`).
pub const HOME_VAR: &str = "CURSOR_HOME";
/// The `hooks.json` version this install writes.
pub const HOOKS_VERSION: u64 = 1;

const HOOK_ARGS: &[&str] = &["hook", "cursor"];

/// The `Authorization` header of the URL form: Cursor's `${env:NAME}` interpolation.
pub fn bearer_header() -> String {
    format!("Bearer ${{env:{TOKEN_VAR}}}")
}

/// The two files an install edits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub scope: Scope,
    pub mcp_file: PathBuf,
    pub hooks_file: PathBuf,
}

impl Target {
    /// The user scope for `CURSOR_HOME` (`cursor_home`) and `HOME` (`home`).
    ///
    /// # Errors
    /// Neither is set.
    pub fn user(cursor_home: Option<&str>, home: Option<&Path>) -> Result<Target, InstallError> {
        let dir = cursor_home_dir(cursor_home, home).ok_or(InstallError::NoCursorHome)?;
        Ok(Target {
            scope: Scope::User,
            mcp_file: dir.join("mcp.json"),
            hooks_file: dir.join("hooks.json"),
        })
    }

    /// The project scope of `dir`.
    pub fn project(dir: &Path) -> Target {
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let cursor = dir.join(".cursor");
        Target {
            scope: Scope::Project,
            mcp_file: cursor.join("mcp.json"),
            hooks_file: cursor.join("hooks.json"),
        }
    }
}

/// The Cursor home: `cursor_home` (`~/` expanded, made absolute) when set, else
/// `<home>/.cursor`.
pub fn cursor_home_dir(cursor_home: Option<&str>, home: Option<&Path>) -> Option<PathBuf> {
    match cursor_home.map(str::trim).filter(|s| !s.is_empty()) {
        Some(d) => {
            let dir = match (d.strip_prefix("~/"), home) {
                (Some(rest), Some(h)) => h.join(rest),
                _ => PathBuf::from(d),
            };
            Some(std::path::absolute(&dir).unwrap_or(dir))
        }
        None => home.map(|h| h.join(".cursor")),
    }
}

/// What an install writes.
#[derive(Debug, Clone)]
pub struct Installer {
    /// The absolute, canonical path of the running binary.
    pub exe: PathBuf,
    /// `claude::PASSED_ENV` variables set at install time, in that order.
    pub env: Vec<(String, String)>,
    /// How the MCP server is registered.
    pub mcp: McpForm,
}

#[derive(Serialize)]
#[serde(untagged)]
enum McpEntry {
    Command {
        command: String,
        args: Vec<&'static str>,
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        env: BTreeMap<String, String>,
    },
    Http {
        url: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        headers: Option<BTreeMap<&'static str, String>>,
    },
}

#[derive(Serialize)]
struct HookEntry {
    command: String,
    timeout: u64,
}

#[derive(Serialize)]
struct Empty {}

impl Installer {
    /// The hook command: `[env NAME=value...] <exe> hook cursor`.
    pub fn hook_command(&self) -> String {
        command_line(&self.exe, &self.env, HOOK_ARGS)
    }

    fn mcp_entry(&self) -> McpEntry {
        match &self.mcp {
            McpForm::Command => McpEntry::Command {
                command: self.exe.to_string_lossy().into_owned(),
                args: vec!["serve"],
                env: self.env.iter().cloned().collect(),
            },
            McpForm::Http { url, bearer } => McpEntry::Http {
                url: url.clone(),
                headers: bearer.then(|| [("Authorization", bearer_header())].into_iter().collect()),
            },
        }
    }
}

/// Mode of a file the install creates: `mcp.json` often holds other servers' tokens, so
/// owner only.
fn mode_for(t: &Target, path: &Path) -> u32 {
    if path == t.mcp_file { 0o600 } else { 0o644 }
}

/// The change that registers the MCP server in `t.mcp_file`; `rec` learns what it created.
///
/// # Errors
/// An unreadable or invalid file, or a `blueplane` server that is not blueplane's.
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
        "in Cursor Settings > MCP, or in the file",
    )
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

/// The change that adds the hook to every event of `t.hooks_file`.
///
/// # Errors
/// An unreadable or invalid file (or `hooks` of the wrong shape).
pub fn install_hooks(
    t: &Target,
    inst: &Installer,
    rec: &mut FileRecord,
) -> Result<FileChange, InstallError> {
    let path = &t.hooks_file;
    let before = read_text(path)?;
    let mut text = start_text(&before);
    let root = parse_root(path, &text)?;
    let mut notes = Vec::new();
    if root.get("version").is_none() {
        text = jt::insert_member(&text, &root, "version", &HOOKS_VERSION);
        rec.add_created("/version".into());
        notes.push(format!("added \"version\": {HOOKS_VERSION}"));
    }
    let root = parse_root(path, &text)?;
    if root.get("hooks").is_none() {
        text = jt::insert_member(&text, &root, "hooks", &Empty {});
        rec.add_created("/hooks".into());
    }
    let want = inst.hook_command();
    let (mut added, mut updated) = (0, 0);
    for event in CURSOR_EVENTS {
        let root = parse_root(path, &text)?;
        let Some(hooks) = root.get("hooks").filter(|h| h.members().is_some()) else {
            return Err(invalid(path, "a file whose hooks is not an object"));
        };
        let entry = HookEntry {
            command: want.clone(),
            timeout: HOOK_TIMEOUT_S,
        };
        match hooks.get(event) {
            None => {
                text = jt::insert_member(&text, hooks, event, &[entry]);
                rec.add_created(format!("/hooks/{event}"));
                added += 1;
            }
            Some(list) => {
                let Some(entries) = list.items() else {
                    return Err(invalid(
                        path,
                        format!("a file whose hooks.{event} is not a list"),
                    ));
                };
                let commands = entries.iter().filter_map(|e| e.get("command"));
                match merge_hook(&text, list, commands, &want, HOOK_ARGS, &inst.exe, &entry) {
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
    if before.is_none() {
        rec.created_file = true;
    }
    Ok(finish(path, before, text, notes, mode_for(t, path)))
}

/// Where our next hook entry is: (event, entry index).
fn find_our_entry(root: &Node, exe: &Path) -> Option<(String, usize)> {
    for m in root.get("hooks")?.members()? {
        for (i, e) in m.value.items().into_iter().flatten().enumerate() {
            if e.get("command")
                .and_then(Node::as_str)
                .and_then(|c| ours(c, HOOK_ARGS, exe))
                .is_some()
            {
                return Some((m.key.clone(), i));
            }
        }
    }
    None
}

/// The change that removes our hooks from `t.hooks_file`, with the lists, the `hooks`
/// object and the `version` the install created.
///
/// # Errors
/// An unreadable or invalid file.
pub fn uninstall_hooks(
    t: &Target,
    exe: &Path,
    rec: Option<&FileRecord>,
) -> Result<FileChange, InstallError> {
    let path = &t.hooks_file;
    let Some(before) = read_text(path)? else {
        return Ok(unchanged(path));
    };
    let mut text = start_text(&Some(before.clone()));
    let mut notes = Vec::new();
    let mut emptied: Vec<String> = Vec::new();
    let mut removed = 0;
    loop {
        let root = parse_root(path, &text)?;
        let Some((event, i)) = find_our_entry(&root, exe) else {
            break;
        };
        let Some(list) = root.path(&["hooks", &event]) else {
            break;
        };
        text = jt::remove_item(&text, list, i);
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
        // Only a record can say the version was ours.
        let root = parse_root(path, &text)?;
        if rec.is_some_and(|r| r.created("/version"))
            && let Some(i) = root.index_of("version")
        {
            text = jt::remove_member(&text, &root, i);
        }
    }
    finish_uninstall(path, Some(before), text, notes, rec)
}

/// What `doctor` sees of a Cursor install.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    pub mcp_file: PathBuf,
    pub hooks_file: PathBuf,
    /// A file that cannot be read or parsed.
    pub errors: Vec<String>,
    pub mcp: Registration,
    /// Events with a hook that runs this binary.
    pub hooks_current: Vec<String>,
    /// Events whose only hook of ours runs another blueplane binary, with that binary.
    pub hooks_stale: Vec<(String, String)>,
    /// Events of [`CURSOR_EVENTS`] without any hook of ours.
    pub hooks_missing: Vec<String>,
    /// The environment our current hooks set (`env NAME=value`), from the first one.
    pub hook_env: BTreeMap<String, String>,
}

impl Inspection {
    /// Nothing of blueplane's in either file.
    pub fn nothing_installed(&self) -> bool {
        self.mcp == Registration::Missing
            && self.hooks_current.is_empty()
            && self.hooks_stale.is_empty()
    }
}

/// Reads what is registered in `t` and whether it points at `exe`.
pub fn inspect(t: &Target, exe: &Path) -> Inspection {
    let mut errors = Vec::new();
    let mut mcp = Registration::Missing;
    if let Some((_, root)) = read_root(&t.mcp_file, &mut errors)
        && let Some(entry) = root.path(&["mcpServers", SERVER_NAME])
    {
        mcp = registration(entry, exe, &bearer_header());
    }
    let mut out = Inspection {
        mcp_file: t.mcp_file.clone(),
        hooks_file: t.hooks_file.clone(),
        errors: Vec::new(),
        mcp,
        hooks_current: Vec::new(),
        hooks_stale: Vec::new(),
        hooks_missing: Vec::new(),
        hook_env: BTreeMap::new(),
    };
    let hooks = read_root(&t.hooks_file, &mut errors);
    for event in CURSOR_EVENTS {
        let mut found: Option<shell::Command> = None;
        let mut stale: Option<String> = None;
        if let Some((_, root)) = &hooks {
            let entries = root
                .path(&["hooks", event])
                .and_then(Node::items)
                .unwrap_or(&[]);
            for c in entries.iter().filter_map(|e| {
                e.get("command")
                    .and_then(Node::as_str)
                    .and_then(|c| ours(c, HOOK_ARGS, exe))
            }) {
                if Path::new(&c.program) == exe {
                    found = Some(c);
                    break;
                }
                stale.get_or_insert(c.program);
            }
        }
        match (found, stale) {
            (Some(c), _) => {
                if out.hooks_current.is_empty() {
                    out.hook_env = c.env.into_iter().collect();
                }
                out.hooks_current.push((*event).to_string());
            }
            (None, Some(p)) => out.hooks_stale.push(((*event).to_string(), p)),
            (None, None) => out.hooks_missing.push((*event).to_string()),
        }
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
            env: vec![],
            mcp: McpForm::Command,
        }
    }

    fn target(dir: &Path) -> Target {
        Target::user(Some(&dir.display().to_string()), None).unwrap()
    }

    #[test]
    fn targets() {
        let t = Target::user(None, Some(Path::new("/h"))).unwrap();
        assert_eq!(t.mcp_file, Path::new("/h/.cursor/mcp.json"));
        assert_eq!(t.hooks_file, Path::new("/h/.cursor/hooks.json"));
        let t = Target::user(Some("~/c"), Some(Path::new("/h"))).unwrap();
        assert_eq!(t.hooks_file, Path::new("/h/c/hooks.json"));
        assert!(Target::user(None, None).is_err());
        let t = Target::project(Path::new("/p"));
        assert_eq!(t.mcp_file, Path::new("/p/.cursor/mcp.json"));
        assert_eq!(t.hooks_file, Path::new("/p/.cursor/hooks.json"));
    }

    #[test]
    fn a_fresh_install_writes_version_1_and_one_entry_per_event() {
        let dir = tempfile::tempdir().unwrap();
        let t = target(dir.path());
        let i = inst("/opt/bp/blueplane");
        let mut rec = FileRecord::default();
        let c = install_hooks(&t, &i, &mut rec).unwrap();
        let text = c.after.clone().unwrap();
        assert!(
            text.starts_with(
                "{\n  \"version\": 1,\n  \"hooks\": {\n    \"beforeSubmitPrompt\": [\n      {\n        \"command\": \"/opt/bp/blueplane hook cursor\",\n        \"timeout\": 5\n      }\n    ],\n"
            ),
            "{text}"
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let hooks = v["hooks"].as_object().unwrap();
        assert_eq!(hooks.len(), CURSOR_EVENTS.len());
        assert!(!text.contains("failClosed"));
        assert!(rec.created_file && rec.created("/version") && rec.created("/hooks"));
        crate::install::apply(&[c], false).unwrap();
        let seen = inspect(&t, &i.exe);
        assert_eq!(seen.hooks_current.len(), CURSOR_EVENTS.len());
        assert!(seen.hooks_missing.is_empty() && seen.errors.is_empty());
        assert!(install_hooks(&t, &i, &mut rec.clone()).unwrap().is_noop());
        let gone = uninstall_hooks(&t, &i.exe, Some(&rec)).unwrap();
        assert_eq!(gone.after, None, "the install had created the file");
    }

    #[test]
    fn the_url_form_names_the_token_the_cursor_way() {
        let dir = tempfile::tempdir().unwrap();
        let t = target(dir.path());
        let mut i = inst("/opt/bp/blueplane");
        i.mcp = McpForm::Http {
            url: "http://127.0.0.1:7532/mcp".into(),
            bearer: true,
        };
        let c = install_mcp(&t, &i, &mut FileRecord::default()).unwrap();
        assert_eq!(
            c.after.as_deref(),
            Some(
                "{\n  \"mcpServers\": {\n    \"blueplane\": {\n      \"url\": \"http://127.0.0.1:7532/mcp\",\n      \"headers\": {\n        \"Authorization\": \"Bearer ${env:BLUEPLANE_TOKEN}\"\n      }\n    }\n  }\n}\n"
            )
        );
        assert_eq!(c.new_mode, 0o600);
        crate::install::apply(&[c], false).unwrap();
        assert_eq!(
            inspect(&t, &i.exe).mcp,
            Registration::Http {
                url: "http://127.0.0.1:7532/mcp".into(),
                bearer: true
            }
        );
    }

    /// Install then uninstall gives back the bytes, whatever the layout of the file, and
    /// another tool's hooks on the same events stay where they are.
    #[test]
    fn round_trips_keep_every_layout() {
        let layouts = [
            "{}",
            "{}\n",
            "{\"version\":1,\"hooks\":{\"stop\":[{\"command\":\"./audit.sh\"}]}}",
            "{\n\t\"hooks\": {\n\t\t\"preToolUse\": [{\"matcher\": \"Shell\", \"command\": \"guard\", \"failClosed\": true}]\n\t}\n}",
            "{\n    \"version\": 1,\n    \"hooks\": {\"afterFileEdit\": []}\n}\n",
        ];
        for (n, text) in layouts.iter().enumerate() {
            let dir = tempfile::tempdir().unwrap();
            let t = target(dir.path());
            std::fs::write(&t.hooks_file, text).unwrap();
            std::fs::write(&t.mcp_file, text).unwrap();
            let i = inst("/opt/bp/blueplane");
            let (mut hr, mut mr) = (FileRecord::default(), FileRecord::default());
            let changes = vec![
                install_hooks(&t, &i, &mut hr).unwrap(),
                install_mcp(&t, &i, &mut mr).unwrap(),
            ];
            crate::install::apply(&changes, false).unwrap();
            let installed = std::fs::read_to_string(&t.hooks_file).unwrap();
            let v: serde_json::Value = serde_json::from_str(&installed).unwrap();
            assert_eq!(v["version"], 1, "layout {n}: {installed}");
            let seen = inspect(&t, &i.exe);
            assert!(seen.hooks_missing.is_empty(), "layout {n}: {installed}");
            assert!(
                matches!(seen.mcp, Registration::Current { .. }),
                "layout {n}"
            );
            assert!(install_hooks(&t, &i, &mut hr.clone()).unwrap().is_noop());
            assert!(install_mcp(&t, &i, &mut mr.clone()).unwrap().is_noop());
            let changes = vec![
                uninstall_hooks(&t, &i.exe, Some(&hr)).unwrap(),
                uninstall_mcp(&t, &i.exe, Some(&mr)).unwrap(),
            ];
            crate::install::apply(&changes, false).unwrap();
            assert_eq!(
                std::fs::read_to_string(&t.hooks_file).unwrap(),
                *text,
                "layout {n}, installed:\n{installed}"
            );
            assert_eq!(std::fs::read_to_string(&t.mcp_file).unwrap(), *text);
        }
    }

    #[test]
    fn stale_hooks_are_repointed_and_other_commands_are_not_ours() {
        let dir = tempfile::tempdir().unwrap();
        let t = target(dir.path());
        std::fs::write(
            &t.hooks_file,
            "{\"version\":1,\"hooks\":{\"stop\":[{\"command\":\"/old/blueplane hook cursor\",\"timeout\":5},{\"command\":\"blueplane hook claude\"}]}}",
        )
        .unwrap();
        let i = inst("/opt/bp/blueplane");
        let seen = inspect(&t, &i.exe);
        assert_eq!(
            seen.hooks_stale,
            vec![("stop".to_string(), "/old/blueplane".to_string())]
        );
        let c = install_hooks(&t, &i, &mut FileRecord::default()).unwrap();
        let after = c.after.clone().unwrap();
        assert!(
            after.contains("{\"command\":\"/opt/bp/blueplane hook cursor\",\"timeout\":5},{\"command\":\"blueplane hook claude\"}"),
            "{after}"
        );
        assert!(c.notes.iter().any(|n| n.contains("pointed 1 hooks")));
    }
}
