//! Claude Code transcripts: where they are and how one JSONL line becomes an [`Event`].
//!
//! Discovery follows ccusage: `CLAUDE_CONFIG_DIR` (one path or a comma list) replaces the
//! defaults `~/.config/claude` and `~/.claude`; each entry may be a config dir (with
//! `projects/`) or the projects dir itself. Every `*.jsonl` below it counts, including
//! `<session>/subagents/agent-*.jsonl`.
//!
//! Parsing never fails the pipeline: a line is an event, something to skip (blank), or a bad
//! line with a reason that goes to the dead-letter stream.
//!
//! No I/O beyond directory listing: tailing and cursors belong to the capture source
//! (`claude_transcripts`), and `blueplane dlq replay` parses a dead-lettered line again with
//! [`parse_line`].

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::event::{Event, Platform, parse_timestamp_ms, transcript_line_id};
use crate::privacy::{PrivacyMode, filter_claude_record, is_known_type};

/// The projects directories to scan.
pub fn projects_dirs(claude_config_dir: Option<&str>, home: Option<&Path>) -> Vec<PathBuf> {
    let expand = |s: &str| -> PathBuf {
        match (s.strip_prefix("~/"), home) {
            (Some(rest), Some(h)) => h.join(rest),
            _ if s == "~" => home
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(s)),
            _ => PathBuf::from(s),
        }
    };
    let candidates: Vec<PathBuf> = match claude_config_dir {
        Some(list) if !list.trim().is_empty() => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(expand)
            .collect(),
        _ => {
            let mut v = Vec::new();
            if let Some(h) = home {
                let xdg = std::env::var_os("XDG_CONFIG_HOME")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| h.join(".config"));
                v.push(xdg.join("claude"));
                v.push(h.join(".claude"));
            }
            v
        }
    };
    let mut out: Vec<PathBuf> = Vec::new();
    for c in candidates {
        let projects = c.join("projects");
        let dir = if projects.is_dir() { projects } else { c };
        if !out.contains(&dir) {
            out.push(dir);
        }
    }
    out
}

/// Every transcript file below `dir`, sorted.
pub fn transcript_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in rd.flatten() {
            let path = entry.path();
            let Ok(ft) = entry.file_type() else { continue };
            if ft.is_dir() {
                stack.push(path);
            } else if is_transcript(&path) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// A record type as Claude Code spells them (`api-request`, `file-history-snapshot`): short,
/// lowercase ASCII letters, digits, `-` and `_`. Anything else is not a record type.
fn is_type_name(t: &str) -> bool {
    (1..=64).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

pub fn is_transcript(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "jsonl")
}

/// What the file's location says about its session: `<session>.jsonl`, or
/// `<session>/subagents/agent-<id>.jsonl`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileContext {
    pub source: String,
    pub session_id: Option<String>,
    pub agent_id: Option<String>,
}

impl FileContext {
    pub fn for_path(path: &Path) -> FileContext {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .map(str::to_string);
        let parent = path.parent();
        let in_subagents = parent
            .and_then(|p| p.file_name())
            .is_some_and(|n| n == "subagents");
        let (session_id, agent_id) = if in_subagents {
            let session = parent
                .and_then(Path::parent)
                .and_then(|p| p.file_name())
                .and_then(|s| s.to_str())
                .map(str::to_string);
            let agent = stem
                .as_deref()
                .map(|s| s.strip_prefix("agent-").unwrap_or(s).to_string());
            (session, agent)
        } else if let Some(s) = stem.as_deref().and_then(|s| s.strip_prefix("agent-")) {
            (None, Some(s.to_string()))
        } else {
            (stem, None)
        };
        FileContext {
            source: path.display().to_string(),
            session_id,
            agent_id,
        }
    }
}

/// What one line turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Event(Box<Event>),
    /// Blank line.
    Skip,
    /// Malformed or unknown; the reason is logged and dead-lettered.
    Bad(String),
}

/// Parses and filters one transcript line (without its trailing newline).
pub fn parse_line(ctx: &FileContext, offset: u64, line: &[u8], mode: PrivacyMode) -> Parsed {
    let trimmed = line.trim_ascii();
    if trimmed.is_empty() {
        return Parsed::Skip;
    }
    let mut v: Value = match serde_json::from_slice(trimmed) {
        Ok(v) => v,
        Err(e) => {
            let what = if e.is_eof() {
                "truncated JSON"
            } else {
                "malformed JSON"
            };
            return Parsed::Bad(format!("{what}: {e}"));
        }
    };
    let Some(obj) = v.as_object() else {
        return Parsed::Bad("not a JSON object".into());
    };
    let kind = match obj.get("type").and_then(Value::as_str) {
        Some(t) if is_known_type(t) => t.to_string(),
        Some(t) if is_type_name(t) => t.to_string(),
        Some(t) => {
            let t: String = t.chars().take(64).collect();
            return Parsed::Bad(format!("record type {t:?} is not a type name"));
        }
        // ccusage-style usage-only lines have no `type`.
        None if obj
            .get("message")
            .and_then(|m| m.get("usage"))
            .is_some_and(Value::is_object) =>
        {
            "assistant".to_string()
        }
        None => return Parsed::Bad("record without 'type'".into()),
    };
    // Interactive sessions also write snake_case `session_id` beside `sessionId`.
    let session_id = ["sessionId", "session_id"]
        .iter()
        .find_map(|k| {
            obj.get(*k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        })
        .map(str::to_string)
        .or_else(|| ctx.session_id.clone());
    let uuid = obj.get("uuid").and_then(Value::as_str);
    let id = transcript_line_id(session_id.as_deref(), uuid, &ctx.source, offset, trimmed);
    let timestamp_ms = obj
        .get("timestamp")
        .and_then(Value::as_str)
        .or_else(|| {
            obj.get("snapshot")
                .and_then(|s| s.get("timestamp"))
                .and_then(Value::as_str)
        })
        .and_then(parse_timestamp_ms);
    if matches!(kind.as_str(), "user" | "assistant") && timestamp_ms.is_none() {
        return Parsed::Bad(format!("{kind} record without a valid timestamp"));
    }
    if ctx.agent_id.is_some()
        && obj.get("agentId").is_none()
        && let Some(o) = v.as_object_mut()
        && let Some(a) = &ctx.agent_id
    {
        o.insert("agentId".into(), Value::String(a.clone()));
    }
    filter_claude_record(&mut v, mode, trimmed.len());
    Parsed::Event(Box::new(Event {
        id,
        platform: Platform::ClaudeCode,
        kind,
        session_id,
        timestamp_ms,
        source: crate::event::Source::FileLine {
            path: ctx.source.clone(),
            offset,
        },
        payload: v.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_context_from_layout() {
        let c = FileContext::for_path(Path::new("/p/-home-u/abc.jsonl"));
        assert_eq!(c.session_id.as_deref(), Some("abc"));
        assert_eq!(c.agent_id, None);
        let c = FileContext::for_path(Path::new("/p/-home-u/abc/subagents/agent-a12.jsonl"));
        assert_eq!(c.session_id.as_deref(), Some("abc"));
        assert_eq!(c.agent_id.as_deref(), Some("a12"));
    }

    #[test]
    fn projects_dirs_follow_ccusage() {
        let d = tempfile::tempdir().unwrap();
        let with = d.path().join("cfg");
        std::fs::create_dir_all(with.join("projects")).unwrap();
        let bare = d.path().join("bare");
        std::fs::create_dir_all(&bare).unwrap();
        let list = format!("{}, {}", with.display(), bare.display());
        let dirs = projects_dirs(Some(&list), None);
        assert_eq!(dirs, vec![with.join("projects"), bare]);
        let dirs = projects_dirs(None, Some(d.path()));
        assert_eq!(dirs.len(), 2);
        assert!(dirs[1].ends_with(".claude"));
    }

    #[test]
    fn bad_lines_have_reasons() {
        let ctx = FileContext::for_path(Path::new("/x/s.jsonl"));
        let m = PrivacyMode::Standard;
        assert_eq!(parse_line(&ctx, 0, b"   ", m), Parsed::Skip);
        assert!(
            matches!(parse_line(&ctx, 0, b"{\"type\":\"us", m), Parsed::Bad(r) if r.starts_with("truncated"))
        );
        assert!(
            matches!(parse_line(&ctx, 0, b"{oops}", m), Parsed::Bad(r) if r.starts_with("malformed"))
        );
        assert!(matches!(parse_line(&ctx, 0, b"[1]", m), Parsed::Bad(_)));
        assert!(
            matches!(parse_line(&ctx, 0, b"{\"type\":\"Weird Type!\"}", m), Parsed::Bad(r) if r.contains("Weird"))
        );
        // A type Claude Code added after this parser was written is a normal event.
        assert!(matches!(
            parse_line(&ctx, 0, b"{\"type\":\"brand-new-type\"}", m),
            Parsed::Event(e) if e.kind == "brand-new-type"
        ));
        assert!(matches!(
            parse_line(&ctx, 0, b"\xff\xfe", m),
            Parsed::Bad(_)
        ));
    }

    #[test]
    fn usage_only_lines_are_assistant_records() {
        let ctx = FileContext::for_path(Path::new("/x/session-a/chat.jsonl"));
        let line = br#"{"timestamp":"2026-01-09T10:00:00.000Z","sessionId":"session-alpha","message":{"id":"m","usage":{"input_tokens":1,"output_tokens":2}},"requestId":"r"}"#;
        let Parsed::Event(e) = parse_line(&ctx, 7, line, PrivacyMode::Standard) else {
            panic!("not an event")
        };
        assert_eq!(e.kind, "assistant");
        assert_eq!(e.session_id.as_deref(), Some("session-alpha"));
        assert_eq!(e.timestamp_ms, Some(1_767_952_800_000));
        assert!(e.id.starts_with("cc:h:"));
    }
}
