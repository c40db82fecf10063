//! Privacy rules applied at capture, before anything reaches Redis (invariant 9).
//!
//! - `standard` (default): prompts and assistant prose are kept with secrets redacted and fenced
//!   code blocks and command output removed; tool inputs and results keep only the tool name,
//!   file path, sizes, line counts, exit status and error flag; thinking is dropped.
//! - `metadata`: no text at all (prose becomes empty, with its size kept).
//! - `full`: everything, secret-redacted.
//!
//! Whatever the mode, every string that is left is passed through [`redact`] last, so a secret
//! in a field these rules do not know about is still caught.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

pub mod cursor;
pub mod cursor_agent;
pub mod cursor_hooks;
pub mod hooks;
pub mod redact;

use redact::redact;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrivacyMode {
    Metadata,
    #[default]
    Standard,
    Full,
}

impl PrivacyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PrivacyMode::Metadata => "metadata",
            PrivacyMode::Standard => "standard",
            PrivacyMode::Full => "full",
        }
    }
}

/// Record types this crate has rules for (formats.md §A4): the privacy filter knows their
/// fields and the slow path derives from them. Claude Code adds types all the time
/// (2.1.328 writes `api-request`, `tools-used`, `worktree-state`, ...): any other type is a
/// normal event, counted per type and kept as metadata only (see
/// [`filter_claude_record`]), never a bad line.
pub const KNOWN_TYPES: &[&str] = &[
    "user",
    "assistant",
    "system",
    "progress",
    "summary",
    "file-history-snapshot",
    "file-history-delta",
    "queue-operation",
    "attachment",
    "custom-title",
    "ai-title",
    "last-prompt",
    "agent-name",
    "permission-mode",
    "mode",
    "pr-link",
    "cost-state",
];

/// Whether the privacy rules (and the slow path) know this Claude Code record type; others
/// are counted per type and kept as metadata.
pub fn is_known_type(t: &str) -> bool {
    KNOWN_TYPES.contains(&t)
}

/// Tool-input keys that are metadata (paths, flags, small enums), kept in `standard` mode.
const TOOL_INPUT_KEYS: &[&str] = &[
    "file_path",
    "path",
    "notebook_path",
    "subagent_type",
    "run_in_background",
    "replace_all",
    "offset",
    "limit",
    "timeout",
    "output_mode",
    "url",
];

/// `toolUseResult` keys kept in `standard` mode.
const TOOL_RESULT_KEYS: &[&str] = &[
    "filePath",
    "numLines",
    "startLine",
    "totalLines",
    "numFiles",
    "interrupted",
    "isImage",
    "noOutputExpected",
    "agentId",
    "status",
    "totalDurationMs",
    "totalTokens",
    "totalToolUseCount",
    "usage",
    "durationMs",
    "exitCode",
    "success",
    "type",
    "mode",
    "userModified",
    "replaceAll",
    "truncated",
    "code",
];

/// Starts of user text that is a command, its output or a caveat, not a typed prompt.
pub const NOT_PROMPT_PREFIXES: &[&str] = &[
    "<command-name>",
    "<command-message>",
    "<local-command-stdout>",
    "<local-command-stderr>",
    "<local-command-caveat>",
    "<bash-input>",
    "<bash-stdout>",
    "<bash-stderr>",
    "[Request interrupted",
];

/// Set on user records whose text is a command (see [`NOT_PROMPT_PREFIXES`]): the slow path
/// must tell prompts from commands even when the privacy mode removed the text.
pub const COMMAND_FLAG: &str = "bpCommand";

/// Envelope keys an unknown record type keeps outside `full` mode: its type, time, ids and
/// place in the session — never its content. `api-request`, `api-request-blob` and
/// `api-request-shape` log whole prompts (file contents, command output): an allow-list is
/// the only safe rule for records whose fields nobody has reviewed.
const UNKNOWN_TYPE_KEYS: &[&str] = &[
    "type",
    "subtype",
    "uuid",
    "parentUuid",
    "id",
    "requestId",
    "promptId",
    "sessionId",
    "session_id",
    "agentId",
    "timestamp",
    "version",
    "isSidechain",
    "userType",
    "entrypoint",
    "cwd",
    "gitBranch",
];

/// Size of the original line, kept on metadata-only records.
pub const SIZE_FIELD: &str = "bpBytes";

/// Filters one parsed Claude Code transcript record in place. `raw_len` is the size of the
/// line it came from.
pub fn filter_claude_record(v: &mut Value, mode: PrivacyMode, raw_len: usize) {
    // (Lines without a type are usage-only assistant records, see `parse_line`.)
    let kind = v.get("type").and_then(Value::as_str);
    if mode != PrivacyMode::Full && kind.is_some_and(|k| !is_known_type(k)) {
        if let Some(obj) = v.as_object_mut() {
            obj.retain(|k, v| {
                UNKNOWN_TYPE_KEYS.contains(&k.as_str()) && !v.is_object() && !v.is_array()
            });
            obj.insert(SIZE_FIELD.into(), json!(raw_len));
        }
        redact_strings(v);
        return;
    }
    if v.get("type").and_then(Value::as_str) == Some("user") {
        let text = v
            .get("message")
            .and_then(|m| m.get("content"))
            .and_then(Value::as_str)
            .map(str::trim_start);
        if text.is_some_and(|t| NOT_PROMPT_PREFIXES.iter().any(|p| t.starts_with(p)))
            && let Some(o) = v.as_object_mut()
        {
            o.insert(COMMAND_FLAG.into(), Value::Bool(true));
        }
    }
    if mode != PrivacyMode::Full {
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if let Some(obj) = v.as_object_mut() {
            match kind.as_str() {
                "progress" => {
                    if let Some(data) = obj.get_mut("data") {
                        keep_keys(data, &["type", "hookEvent", "hookName", "agentId"]);
                    }
                }
                "file-history-snapshot" | "file-history-delta" => {
                    obj.remove("snapshot");
                    obj.remove("delta");
                }
                "system" => {
                    if let Some(c) = obj.get_mut("content") {
                        prose_value(c, mode);
                    }
                    obj.remove("hookInfos");
                    obj.remove("hookErrors");
                }
                "summary" => {
                    if let Some(c) = obj.get_mut("summary") {
                        prose_value(c, mode);
                    }
                }
                "queue-operation" => {
                    if let Some(c) = obj.get_mut("content") {
                        prose_value(c, mode);
                    }
                }
                "attachment" => {
                    if let Some(a) = obj.get_mut("attachment") {
                        keep_keys(a, &["type"]);
                    }
                }
                "custom-title" | "ai-title" => {
                    for k in ["customTitle", "aiTitle"] {
                        if let Some(c) = obj.get_mut(k) {
                            prose_value(c, mode);
                        }
                    }
                }
                "last-prompt" => {
                    if let Some(c) = obj.get_mut("lastPrompt") {
                        prose_value(c, mode);
                    }
                }
                _ => {}
            }
            if let Some(message) = obj.get_mut("message").and_then(Value::as_object_mut)
                && let Some(content) = message.get_mut("content")
            {
                filter_content(content, mode);
            }
            if let Some(r) = obj.get_mut("toolUseResult") {
                summarize_tool_result(r);
            }
            // MCP tool results: `mcpMeta.structuredContent` is the tool's whole answer.
            if let Some(m) = obj.get_mut("mcpMeta") {
                *m = size_summary(m);
            }
            if mode == PrivacyMode::Metadata {
                obj.remove("todos");
            }
        }
    } else if let Some(content) = v.get_mut("message").and_then(|m| m.get_mut("content")) {
        // Images are never useful telemetry, whatever the mode.
        drop_image_data(content);
    }
    redact_strings(v);
}

fn filter_content(content: &mut Value, mode: PrivacyMode) {
    match content {
        Value::String(_) => prose_value(content, mode),
        Value::Array(blocks) => {
            for b in blocks.iter_mut() {
                filter_block(b, mode);
            }
        }
        _ => {}
    }
}

fn filter_block(b: &mut Value, mode: PrivacyMode) {
    let ty = b
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let Some(obj) = b.as_object_mut() else {
        return;
    };
    match ty.as_str() {
        "text" => {
            if let Some(t) = obj.get_mut("text") {
                prose_value(t, mode);
            }
            obj.remove("citations");
        }
        "thinking" => {
            let n = obj
                .get("thinking")
                .and_then(Value::as_str)
                .map_or(0, str::len);
            obj.insert("thinking".into(), Value::String(String::new()));
            obj.insert("chars".into(), json!(n));
            obj.remove("signature");
        }
        "redacted_thinking" => {
            obj.remove("data");
        }
        "tool_use" | "server_tool_use" => {
            if let Some(input) = obj.get_mut("input") {
                *input = summarize_tool_input(input);
            }
        }
        "tool_result" => {
            if let Some(c) = obj.get_mut("content") {
                *c = size_summary(c);
            }
        }
        "image" | "document" => {
            if let Some(src) = obj.get_mut("source") {
                keep_keys(src, &["type", "media_type"]);
            }
        }
        _ => {
            obj.retain(|k, _| k == "type" || k == "id" || k == "tool_use_id" || k == "is_error");
        }
    }
}

fn drop_image_data(content: &mut Value) {
    if let Value::Array(blocks) = content {
        for b in blocks {
            if b.get("type").and_then(Value::as_str) == Some("image")
                && let Some(src) = b.get_mut("source")
            {
                keep_keys(src, &["type", "media_type"]);
            }
        }
    }
}

/// Tool input reduced to metadata: allow-listed keys, plus the size and line count of every
/// string field that is dropped (content, old/new strings, commands, patterns, prompts).
fn summarize_tool_input(input: &Value) -> Value {
    let Some(obj) = input.as_object() else {
        return size_summary(input);
    };
    let mut out = Map::new();
    for (k, v) in obj {
        if TOOL_INPUT_KEYS.contains(&k.as_str()) && !v.is_object() && !v.is_array() {
            out.insert(k.clone(), v.clone());
        } else if let Some(s) = v.as_str() {
            out.insert(format!("{k}_chars"), json!(s.len()));
            out.insert(format!("{k}_lines"), json!(line_count(s)));
        } else if let Some(a) = v.as_array() {
            out.insert(format!("{k}_items"), json!(a.len()));
        }
    }
    Value::Object(out)
}

fn summarize_tool_result(r: &mut Value) {
    match r {
        Value::Object(obj) => {
            let mut out = Map::new();
            for (k, v) in obj.iter() {
                if TOOL_RESULT_KEYS.contains(&k.as_str()) {
                    out.insert(k.clone(), v.clone());
                } else if k == "file" {
                    let mut f = v.clone();
                    keep_keys(&mut f, &["filePath", "numLines", "startLine", "totalLines"]);
                    out.insert(k.clone(), f);
                } else if let Some(s) = v.as_str() {
                    out.insert(format!("{k}_chars"), json!(s.len()));
                }
            }
            *r = Value::Object(out);
        }
        other => *other = size_summary(other),
    }
}

/// `{"chars": n, "lines": m}` for a string or a list of text blocks.
fn size_summary(v: &Value) -> Value {
    let mut chars = 0usize;
    let mut lines = 0usize;
    let mut add = |s: &str| {
        chars += s.len();
        lines += line_count(s);
    };
    match v {
        Value::String(s) => add(s),
        Value::Array(items) => {
            for it in items {
                if let Some(s) = it.get("text").and_then(Value::as_str) {
                    add(s);
                } else if let Some(s) = it.as_str() {
                    add(s);
                }
            }
        }
        other => add(&other.to_string()),
    }
    json!({ "chars": chars, "lines": lines })
}

fn line_count(s: &str) -> usize {
    if s.is_empty() { 0 } else { s.lines().count() }
}

fn keep_keys(v: &mut Value, keys: &[&str]) {
    if let Some(obj) = v.as_object_mut() {
        obj.retain(|k, _| keys.contains(&k.as_str()));
    }
}

fn prose_value(v: &mut Value, mode: PrivacyMode) {
    if let Value::String(s) = v {
        let new = prose(s, mode);
        *s = new;
    }
}

/// Prose kept under `mode`: empty in `metadata`; in `standard`, fenced code blocks and
/// command output removed. (Secret redaction happens later, over every string.)
pub fn prose(s: &str, mode: PrivacyMode) -> String {
    match mode {
        PrivacyMode::Metadata => String::new(),
        PrivacyMode::Full => s.to_string(),
        PrivacyMode::Standard => strip_output_tags(&strip_code_fences(s)),
    }
}

/// Replaces every fenced code block (``` or ~~~, closed or not) by `[code: N lines]`.
pub fn strip_code_fences(s: &str) -> String {
    if !s.contains("```") && !s.contains("~~~") {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut fence: Option<(&str, usize)> = None;
    for line in s.split_inclusive('\n') {
        let trimmed = line.trim_start();
        match fence {
            None => {
                if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
                    fence = Some((&trimmed[..3], 0));
                } else {
                    out.push_str(line);
                }
            }
            Some((marker, n)) => {
                let t = trimmed.trim_end();
                let fence_char = marker.as_bytes()[0];
                if t.len() >= 3 && t.bytes().all(|c| c == fence_char) {
                    out.push_str(&format!("[code: {n} lines]\n"));
                    fence = None;
                } else {
                    fence = Some((marker, n + 1));
                }
            }
        }
    }
    if let Some((_, n)) = fence {
        out.push_str(&format!("[code: {n} lines]"));
    }
    out
}

/// Tags Claude Code wraps around command output and shell input in user records.
const OUTPUT_TAGS: &[&str] = &[
    "local-command-stdout",
    "local-command-stderr",
    "bash-stdout",
    "bash-stderr",
    "bash-input",
];

fn strip_output_tags(s: &str) -> String {
    if !s.contains('<') {
        return s.to_string();
    }
    let mut out = s.to_string();
    for tag in OUTPUT_TAGS {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        let mut from = 0;
        while let Some(i) = out[from..].find(&open) {
            let body = from + i + open.len();
            let end = out[body..].find(&close).map_or(out.len(), |j| body + j);
            out.replace_range(body..end, "[output removed]");
            from = body + "[output removed]".len();
        }
    }
    out
}

/// Keys whose values Claude Code generates itself (ids, times, enums): never user text, so
/// they are not scanned for secrets. Everything else is.
const GENERATED_KEYS: &[&str] = &[
    "uuid",
    "parentUuid",
    "logicalParentUuid",
    "leafUuid",
    "sessionId",
    "timestamp",
    "requestId",
    "type",
    "version",
    "userType",
    "messageId",
    "id",
    "tool_use_id",
    "toolUseID",
    "parentToolUseID",
    "sourceToolAssistantUUID",
    "agentId",
    "role",
    "model",
    "stop_reason",
    "service_tier",
    "permissionMode",
    "level",
    "subtype",
];

fn redact_strings(v: &mut Value) {
    match v {
        Value::String(s) => {
            if let std::borrow::Cow::Owned(r) = redact(s) {
                *s = r;
            }
        }
        Value::Array(a) => a.iter_mut().for_each(redact_strings),
        Value::Object(o) => {
            for (k, v) in o.iter_mut() {
                if !(v.is_string() && GENERATED_KEYS.contains(&k.as_str())) {
                    redact_strings(v);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_fences_are_removed() {
        let s = "Here:\n```rust\nfn secret_sauce() {}\nlet x = 1;\n```\nDone.";
        let out = strip_code_fences(s);
        assert!(!out.contains("secret_sauce"));
        assert!(out.contains("[code: 2 lines]"));
        assert!(out.contains("Done."));
        let open = strip_code_fences("a\n```\nunclosed code\n");
        assert!(!open.contains("unclosed"));
    }

    #[test]
    fn command_output_is_removed() {
        let s = "<command-name>/cost</command-name><local-command-stdout>Total: $3</local-command-stdout> and <bash-stdout>x</bash-stdout>";
        let out = prose(s, PrivacyMode::Standard);
        assert!(!out.contains("Total: $3"), "{out}");
        assert!(!out.contains(">x<"), "{out}");
        assert!(out.contains("/cost"));
    }

    #[test]
    fn unknown_record_types_keep_metadata_only() {
        let line = r#"{"type":"api-request","uuid":"u1","sessionId":"s","timestamp":"2026-12-01T10:00:00.000Z",
            "params":{"model":"m"},"messages":[{"role":"user","content":"fn planted() {} sk-ant-api03-XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"}],"note":"PLANTED"}"#;
        let mut v: Value = serde_json::from_str(line).unwrap();
        filter_claude_record(&mut v, PrivacyMode::Standard, line.len());
        let s = v.to_string();
        assert!(
            !s.contains("planted") && !s.contains("PLANTED") && !s.contains("sk-ant"),
            "{s}"
        );
        assert_eq!(v["uuid"], "u1");
        assert_eq!(v["timestamp"], "2026-12-01T10:00:00.000Z");
        assert_eq!(v[SIZE_FIELD], line.len());
        let mut full: Value = serde_json::from_str(line).unwrap();
        filter_claude_record(&mut full, PrivacyMode::Full, line.len());
        assert!(full.to_string().contains("PLANTED"));
        assert!(!full.to_string().contains("sk-ant-api03-XXXX"));
    }

    #[test]
    fn mcp_structured_content_is_dropped() {
        let mut v = json!({"type":"user","toolUseResult":"the text answer",
            "mcpMeta":{"structuredContent":{"rows":[{"key":"PLANTED"}]}},
            "message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"PLANTED"}]}});
        filter_claude_record(&mut v, PrivacyMode::Standard, 10);
        assert!(!v.to_string().contains("PLANTED"), "{v}");
    }

    #[test]
    fn tool_use_keeps_metadata_only() {
        let mut v = json!({"type":"assistant","message":{"role":"assistant","content":[
            {"type":"tool_use","id":"t1","name":"Write","input":{"file_path":"/p/a.rs","content":"fn hidden() {}\n"}},
            {"type":"tool_use","id":"t2","name":"Bash","input":{"command":"cat /etc/shadow","description":"x"}}]}});
        filter_claude_record(&mut v, PrivacyMode::Standard, 0);
        let s = v.to_string();
        assert!(!s.contains("hidden"), "{s}");
        assert!(!s.contains("shadow"), "{s}");
        assert!(s.contains("/p/a.rs"));
        assert!(s.contains("content_chars"));
    }

    #[test]
    fn tool_results_lose_content_but_keep_flags() {
        let mut v = json!({"type":"user","message":{"role":"user","content":[
            {"type":"tool_result","tool_use_id":"t1","is_error":true,"content":"line1\nline2 PRIVATE"}]},
            "toolUseResult":{"stdout":"PRIVATE","stderr":"","interrupted":false,
                "file":{"filePath":"/a","content":"PRIVATE","numLines":2}}});
        filter_claude_record(&mut v, PrivacyMode::Standard, 0);
        let s = v.to_string();
        assert!(!s.contains("PRIVATE"), "{s}");
        assert!(s.contains("\"is_error\":true"));
        assert!(s.contains("\"numLines\":2"));
    }

    #[test]
    fn secrets_in_any_user_field_are_redacted() {
        let key = format!("sk-ant-api03-{}", "B".repeat(40));
        let mut v = json!({"type":"user","cwd": format!("/home/{key}"),"gitBranch": key.clone(),
            "todos":[{"content": key.clone()}],"message":{"role":"user","content":"x"}});
        filter_claude_record(&mut v, PrivacyMode::Standard, 0);
        assert!(!v.to_string().contains(&key), "{v}");
    }

    #[test]
    fn metadata_mode_drops_prose() {
        let mut v =
            json!({"type":"user","message":{"role":"user","content":"where is the retry budget"}});
        filter_claude_record(&mut v, PrivacyMode::Metadata, 0);
        assert_eq!(v["message"]["content"], "");
    }

    #[test]
    fn full_mode_keeps_text_but_redacts_secrets() {
        let key = format!("sk-ant-api03-{}", "A".repeat(40));
        let mut v = json!({"type":"user","message":{"role":"user","content":format!("```\ncode\n``` {key}")}});
        filter_claude_record(&mut v, PrivacyMode::Full, 0);
        let s = v.to_string();
        assert!(s.contains("code"));
        assert!(!s.contains(&key));
    }
}
