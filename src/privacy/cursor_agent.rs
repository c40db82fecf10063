//! The rules for Cursor agent CLI transcript lines (`~/.cursor/projects/*/agent-transcripts`,
//! formats.md §C6): what of a `{role, message: {content}}` or `turn_ended` line is kept.
//!
//! A line is rebuilt, never filtered in place: the payload holds only what these rules name.
//! User and assistant text is joined from its text blocks (Cursor's `<user_query>` wrapper
//! removed) and goes through the same prose filter as Claude Code text ([`super::prose`]:
//! nothing in `metadata`, fenced code and command output removed in `standard`); thinking
//! keeps its size; `tool_use` blocks keep name, id, input size and the Claude tool-input
//! metadata (paths, flags), `tool_result` blocks their id, size and error flag; `turn_ended`
//! keeps its status and, outside `metadata`, the first line of its error (≤ 200 chars); any
//! other line keeps its `type`/`role` names and its size. Legacy `.txt` transcripts
//! (`user:` / `assistant:` blocks with `[Thinking]`, `[Tool call] Name` + indented `arg: value`
//! lines and `[Tool result] Name` sections) get the same payload from
//! [`filter_cursor_txt_block`]: a tool result runs to the next marker or the block's end and
//! keeps only its size.
//!
//! Invariant: whatever the mode, every string left passes through the secret redactor last.
//! Called by `capture::cursor_agent` for every line.

use serde_json::{Map, Value, json};

use super::{PrivacyMode, SIZE_FIELD, prose, redact_strings, summarize_tool_input};

/// Longest `turn_ended` error kept (first line only).
const ERROR_CHARS: usize = 200;

/// The event kind (`transcript:user`, `transcript:assistant`, `transcript:turn_ended`,
/// `transcript:other`) and the payload of one parsed line. `line` is the line's index among
/// the file's non-blank lines; `raw_len` its size.
pub fn filter_cursor_transcript_line(
    v: &Value,
    mode: PrivacyMode,
    line: u64,
    raw_len: usize,
) -> (String, Value) {
    let role = v
        .get("role")
        .or_else(|| v.get("message").and_then(|m| m.get("role")))
        .and_then(Value::as_str);
    let ty = v.get("type").and_then(Value::as_str);
    let mut out = Map::new();
    let kind = match (role, ty) {
        (Some(r @ ("user" | "assistant")), _) => {
            out.insert("role".into(), json!(r));
            message(v.get("message"), r, mode, &mut out);
            r.to_string()
        }
        (_, Some("turn_ended")) => {
            out.insert("type".into(), json!("turn_ended"));
            if let Some(s) = v.get("status").and_then(Value::as_str) {
                out.insert("status".into(), json!(s));
            }
            if let Some(e) = v.get("error").and_then(Value::as_str) {
                out.insert("errorBytes".into(), json!(e.len()));
                if mode != PrivacyMode::Metadata {
                    let first: String = e
                        .lines()
                        .next()
                        .unwrap_or("")
                        .trim()
                        .chars()
                        .take(ERROR_CHARS)
                        .collect();
                    out.insert("error".into(), json!(prose(&first, mode)));
                }
            }
            "turn_ended".to_string()
        }
        _ => {
            for (k, x) in [("role", role), ("type", ty)] {
                if let Some(s) = x.filter(|s| is_name(s)) {
                    out.insert(k.into(), json!(s));
                }
            }
            out.insert(SIZE_FIELD.into(), json!(raw_len));
            "other".to_string()
        }
    };
    out.insert("line".into(), json!(line));
    let mut payload = Value::Object(out);
    redact_strings(&mut payload);
    (format!("transcript:{kind}"), payload)
}

/// The kind and payload of one block of a legacy `.txt` transcript: `role` is `user` or
/// `assistant` (the header line), `body` the lines after it, `index` the block's number.
pub fn filter_cursor_txt_block(
    role: &str,
    body: &str,
    mode: PrivacyMode,
    index: u64,
) -> (String, Value) {
    enum State {
        Prose,
        Call(usize),
        Result(usize),
    }
    let mut prose_lines: Vec<&str> = Vec::new();
    let mut calls: Vec<(String, Map<String, Value>, usize)> = Vec::new();
    let mut results: Vec<(String, usize)> = Vec::new();
    let mut thinking = 0usize;
    let mut state = State::Prose;
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("[Tool call]") {
            calls.push((rest.trim().to_string(), Map::new(), 0));
            state = State::Call(calls.len() - 1);
        } else if let Some(rest) = line.strip_prefix("[Tool result]") {
            results.push((rest.trim().to_string(), 0));
            state = State::Result(results.len() - 1);
        } else if let Some(rest) = line.strip_prefix("[Thinking]") {
            thinking += rest.trim().len();
            state = State::Prose;
        } else {
            match state {
                State::Call(i) if line.starts_with([' ', '\t']) => {
                    let (k, v) = line.trim().split_once(':').unwrap_or((line.trim(), ""));
                    calls[i].1.insert(k.trim().to_string(), json!(v.trim()));
                    calls[i].2 += line.len() + 1;
                }
                State::Result(i) => results[i].1 += line.len() + 1,
                State::Call(_) | State::Prose => {
                    state = State::Prose;
                    prose_lines.push(line);
                }
            }
        }
    }
    let joined = prose_lines.join("\n");
    let text = if role == "user" {
        strip_user_query(&joined)
    } else {
        joined.as_str()
    };
    let mut out = Map::new();
    out.insert("role".into(), json!(role));
    out.insert("text".into(), json!(prose(text.trim(), mode)));
    out.insert("textBytes".into(), json!(text.trim().len()));
    if thinking > 0 {
        out.insert("thinkingBytes".into(), json!(thinking));
    }
    if !calls.is_empty() {
        let tools = calls
            .into_iter()
            .map(|(name, args, bytes)| {
                json!({"name": name, "inputBytes": bytes,
                       "input": summarize_tool_input(&Value::Object(args))})
            })
            .collect();
        out.insert("tools".into(), Value::Array(tools));
    }
    if !results.is_empty() {
        let r = results
            .into_iter()
            .map(|(name, bytes)| json!({"name": name, "bytes": bytes}))
            .collect();
        out.insert("results".into(), Value::Array(r));
    }
    out.insert("format".into(), json!("txt"));
    out.insert("line".into(), json!(index));
    let mut payload = Value::Object(out);
    redact_strings(&mut payload);
    (format!("transcript:{role}"), payload)
}

/// A short identifier-like name (`turn_ended`, `system`), never free text.
fn is_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn message(m: Option<&Value>, role: &str, mode: PrivacyMode, out: &mut Map<String, Value>) {
    let content = m.and_then(|m| m.get("content"));
    let mut texts: Vec<&str> = Vec::new();
    let mut tools = Vec::new();
    let mut results = Vec::new();
    let mut thinking = 0usize;
    match content {
        Some(Value::String(s)) => texts.push(s),
        Some(Value::Array(blocks)) => {
            for b in blocks {
                match b.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        if let Some(t) = b.get("text").and_then(Value::as_str) {
                            texts.push(t);
                        }
                    }
                    Some("thinking" | "reasoning") => {
                        thinking += ["thinking", "text"]
                            .iter()
                            .find_map(|k| b.get(*k).and_then(Value::as_str))
                            .map_or(0, str::len);
                    }
                    Some("tool_use" | "tool_call") => tools.push(tool_use(b)),
                    Some("tool_result") => results.push(tool_result(b)),
                    _ => {}
                }
            }
        }
        _ => {}
    }
    let joined = texts.join("\n");
    let text = if role == "user" {
        strip_user_query(&joined)
    } else {
        joined.as_str()
    };
    out.insert("text".into(), json!(prose(text.trim(), mode)));
    out.insert("textBytes".into(), json!(text.trim().len()));
    if thinking > 0 {
        out.insert("thinkingBytes".into(), json!(thinking));
    }
    if !tools.is_empty() {
        out.insert("tools".into(), Value::Array(tools));
    }
    if !results.is_empty() {
        out.insert("results".into(), Value::Array(results));
    }
}

/// The prompt inside Cursor's `<user_query>…</user_query>` wrapper (all of it when there is
/// no wrapper).
fn strip_user_query(s: &str) -> &str {
    const OPEN: &str = "<user_query>";
    const CLOSE: &str = "</user_query>";
    match s.find(OPEN) {
        Some(i) => {
            let body = &s[i + OPEN.len()..];
            body.find(CLOSE).map_or(body, |j| &body[..j])
        }
        None => s,
    }
}

fn tool_use(b: &Value) -> Value {
    let mut t = Map::new();
    if let Some(n) = b.get("name").and_then(Value::as_str) {
        t.insert("name".into(), json!(n));
    }
    if let Some(id) = b.get("id").and_then(Value::as_str) {
        t.insert("id".into(), json!(id));
    }
    if let Some(input) = b.get("input").or_else(|| b.get("arguments")) {
        let bytes = match input {
            Value::String(s) => s.len(),
            other => other.to_string().len(),
        };
        t.insert("inputBytes".into(), json!(bytes));
        let parsed = match input {
            Value::String(s) => serde_json::from_str::<Value>(s)
                .ok()
                .filter(Value::is_object),
            _ => None,
        };
        t.insert(
            "input".into(),
            summarize_tool_input(parsed.as_ref().unwrap_or(input)),
        );
    }
    Value::Object(t)
}

fn tool_result(b: &Value) -> Value {
    let mut t = Map::new();
    if let Some(id) = b.get("tool_use_id").and_then(Value::as_str) {
        t.insert("id".into(), json!(id));
    }
    let bytes = match b.get("content") {
        Some(Value::String(s)) => s.len(),
        Some(other) => other.to_string().len(),
        None => 0,
    };
    t.insert("bytes".into(), json!(bytes));
    if let Some(e) = b.get("is_error").and_then(Value::as_bool) {
        t.insert("isError".into(), json!(e));
    }
    Value::Object(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(line: &str, mode: PrivacyMode) -> (String, Value) {
        let v: Value = serde_json::from_str(line).unwrap();
        filter_cursor_transcript_line(&v, mode, 3, line.len())
    }

    #[test]
    fn user_text_loses_its_wrapper_and_its_secrets() {
        let key = format!("sk-ant-api03-{}", "Q".repeat(40));
        let line = format!(
            r#"{{"role":"user","message":{{"content":[{{"type":"text","text":"<user_query>\nfix the retry budget, key {key}\n</user_query>"}}]}}}}"#
        );
        let (kind, v) = run(&line, PrivacyMode::Standard);
        assert_eq!(kind, "transcript:user");
        let text = v["text"].as_str().unwrap();
        assert!(text.starts_with("fix the retry budget"), "{text}");
        assert!(
            !text.contains("user_query") && !text.contains(&key),
            "{text}"
        );
        assert_eq!(v["line"], 3);
        let (_, m) = run(&line, PrivacyMode::Metadata);
        assert_eq!(m["text"], "");
        assert!(m["textBytes"].as_u64().unwrap() > 20);
    }

    #[test]
    fn assistant_code_is_removed_and_tools_become_metadata() {
        let line = r#"{"role":"assistant","message":{"content":[
            {"type":"text","text":"Here:\n```rust\nfn hidden_sauce() {}\n```\nDone."},
            {"type":"thinking","thinking":"private musings"},
            {"type":"tool_use","id":"tu1","name":"Write","input":{"file_path":"/p/a.rs","contents":"fn hidden() {}"}},
            {"type":"tool_use","name":"Shell","input":"{\"command\":\"cat /etc/shadow\"}"},
            {"type":"tool_result","tool_use_id":"tu1","content":"wrote PRIVATE","is_error":false}]}}"#;
        let (kind, v) = run(line, PrivacyMode::Standard);
        assert_eq!(kind, "transcript:assistant");
        let s = v.to_string();
        for needle in ["hidden", "musings", "shadow", "PRIVATE"] {
            assert!(!s.contains(needle), "{needle} in {s}");
        }
        assert!(v["text"].as_str().unwrap().contains("[code: 1 lines]"));
        assert_eq!(v["thinkingBytes"], 15);
        assert_eq!(v["tools"][0]["name"], "Write");
        assert_eq!(v["tools"][0]["id"], "tu1");
        assert_eq!(v["tools"][0]["input"]["file_path"], "/p/a.rs");
        assert_eq!(v["tools"][1]["name"], "Shell");
        assert_eq!(v["tools"][1]["input"]["command_chars"], 15);
        assert_eq!(v["results"][0]["isError"], false);
        assert_eq!(v["results"][0]["bytes"], 13);
    }

    #[test]
    fn turn_ended_keeps_status_and_a_short_error() {
        let (kind, v) = run(
            r#"{"type":"turn_ended","status":"error","error":"User aborted request\nstack with password=abc"}"#,
            PrivacyMode::Standard,
        );
        assert_eq!(kind, "transcript:turn_ended");
        assert_eq!(v["status"], "error");
        assert_eq!(v["error"], "User aborted request");
        assert!(!v.to_string().contains("password"));
        let (_, m) = run(
            r#"{"type":"turn_ended","status":"error","error":"x"}"#,
            PrivacyMode::Metadata,
        );
        assert!(m.get("error").is_none());
    }

    #[test]
    fn other_lines_keep_names_and_size_only() {
        let line = r#"{"type":"summary","summary":"PLANTED prose","role":"a role with spaces"}"#;
        let (kind, v) = run(line, PrivacyMode::Standard);
        assert_eq!(kind, "transcript:other");
        assert_eq!(v["type"], "summary");
        assert!(v.get("role").is_none());
        assert_eq!(v[SIZE_FIELD], line.len());
        assert!(!v.to_string().contains("PLANTED"));
    }

    #[test]
    fn string_content_is_text() {
        let (_, v) = run(
            r#"{"role":"assistant","message":{"role":"assistant","content":"plain answer"}}"#,
            PrivacyMode::Full,
        );
        assert_eq!(v["text"], "plain answer");
    }

    #[test]
    fn txt_blocks_keep_prose_and_tool_metadata() {
        let (kind, v) = filter_cursor_txt_block(
            "user",
            "<user_query>\nfix the retry budget\n</user_query>\n",
            PrivacyMode::Standard,
            0,
        );
        assert_eq!(kind, "transcript:user");
        assert_eq!(v["text"], "fix the retry budget");
        let body = "[Thinking] private musings\nLooking at it.\n[Tool call] run_terminal_cmd\n  command: cat /etc/shadow\n  is_background: false\n\n[Tool result] run_terminal_cmd\nPRIVATE OUTPUT\n\nmore PRIVATE output\n[Tool call] read_file\n  target_file: /p/a.rs\nDone.";
        let (kind, v) = filter_cursor_txt_block("assistant", body, PrivacyMode::Standard, 1);
        assert_eq!(kind, "transcript:assistant");
        let s = v.to_string();
        for needle in ["musings", "shadow", "PRIVATE"] {
            assert!(!s.contains(needle), "{needle} in {s}");
        }
        assert_eq!(v["text"], "Looking at it.\n\nDone.");
        assert_eq!(v["thinkingBytes"], 15);
        assert_eq!(v["tools"][0]["name"], "run_terminal_cmd");
        assert_eq!(v["tools"][0]["input"]["command_chars"], 15);
        assert_eq!(v["tools"][1]["input"]["target_file_chars"], 7);
        assert_eq!(v["results"][0]["name"], "run_terminal_cmd");
        assert_eq!(v["results"][0]["bytes"], 36);
        assert_eq!(v["format"], "txt");
    }
}
