//! The allow-list for Cursor hook payloads (`blueplane hook cursor`, formats.md §C7).
//!
//! Like [`super::hooks`] for Claude Code, outside `full` mode the rule is an allow-list:
//! identifiers, the model, the event name, Cursor's version, `workspace_roots`, paths, enums,
//! numbers and flags (token counts of `stop`, durations, loop counts, `context_*` gauges) are
//! kept; prose and contents (`prompt`, `text`, `output`, `content`, `result_json`,
//! `tool_output`, `result` and every string field nobody reviewed) are replaced by their size
//! in [`SIZES_FIELD`]; a shell `command` keeps only its program name (never its arguments,
//! nor `VAR=value` prefixes); `edits` become a count and line counts; `attachments` keep their
//! type and path; `tool_input` (a JSON string or an object) keeps the metadata of the Claude
//! tool-input allow-list; `error_message` keeps its exit code and a short first line; an MCP
//! `url` keeps its scheme and host. `user_email` is personal data and is dropped in every
//! mode, `full` included.
//!
//! Invariant: whatever the mode, every string left passes through the secret redactor last.
//! Called by `hook::prepare` for `Platform::Cursor`.

use serde_json::{Map, Value, json};

use super::hooks::{SIZES_FIELD, error_summary};
use super::{PrivacyMode, line_count, redact_strings, summarize_tool_input};

/// String fields kept verbatim: identifiers, paths, names and enums.
const KEEP_STRINGS: &[&str] = &[
    "conversation_id",
    "generation_id",
    "tool_use_id",
    "session_id",
    "model",
    "hook_event_name",
    "cursor_version",
    "file_path",
    "filePath",
    "cwd",
    "transcript_path",
    "agent_transcript_path",
    "status",
    "reason",
    "final_status",
    "trigger",
    "composer_mode",
    "subagent_type",
    "tool_name",
    "type",
    "source",
];

/// Key endings that mark identifiers, paths and names in fields of newer versions.
const KEEP_SUFFIXES: &[&str] = &[
    "_id", "_path", "_name", "_type", "_model", "_mode", "_status",
];

/// Personal data, dropped whatever the mode.
const NEVER: &[&str] = &["user_email"];

/// Filters one Cursor hook payload in place.
pub fn filter_cursor_hook_payload(v: &mut Value, mode: PrivacyMode) {
    if let Some(obj) = v.as_object_mut() {
        for k in NEVER {
            obj.remove(*k);
        }
        if mode != PrivacyMode::Full {
            let mut sizes = Map::new();
            filter_object(obj, mode, &mut sizes, "");
            if !sizes.is_empty() {
                obj.insert(SIZES_FIELD.into(), Value::Object(sizes));
            }
        }
    }
    redact_strings(v);
}

fn filter_object(
    obj: &mut Map<String, Value>,
    mode: PrivacyMode,
    sizes: &mut Map<String, Value>,
    prefix: &str,
) {
    let keys: Vec<String> = obj.keys().cloned().collect();
    for k in keys {
        let Some(v) = obj.get_mut(&k) else { continue };
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match k.as_str() {
            "tool_input" => *v = tool_input(v),
            "command" if v.is_string() => {
                let s = v.as_str().unwrap_or_default();
                sizes.insert(path, json!(s.len()));
                match program(s) {
                    Some(p) => *v = json!({ "program": p, "lines": line_count(s) }),
                    None => *v = json!({ "lines": line_count(s) }),
                }
            }
            "edits" if v.is_array() => *v = edits(v),
            "error_message" if v.is_string() => {
                let s = v.as_str().unwrap_or_default();
                let summary = error_summary(s, mode);
                sizes.insert(path, json!(s.len()));
                obj.remove(&k);
                obj.insert("error_summary".into(), summary);
            }
            "url" if v.is_string() => {
                let s = v.as_str().unwrap_or_default();
                sizes.insert(path, json!(s.len()));
                match origin(s) {
                    Some(o) => *v = Value::String(o),
                    None => {
                        obj.remove(&k);
                    }
                }
            }
            "workspace_roots" if v.is_array() => {
                // Paths: kept. Anything that is not a string is dropped.
                if let Value::Array(a) = v {
                    a.retain(Value::is_string);
                }
            }
            _ => match v {
                Value::String(s) => {
                    let keep = KEEP_STRINGS.contains(&k.as_str())
                        || KEEP_SUFFIXES.iter().any(|x| k.ends_with(x));
                    if !keep {
                        sizes.insert(path, json!(s.len()));
                        obj.remove(&k);
                    }
                }
                Value::Object(o) => filter_object(o, mode, sizes, &path),
                Value::Array(a) => {
                    if a.iter().all(|x| x.is_number() || x.is_boolean()) {
                        // Numbers and flags are metadata.
                    } else if a.iter().all(Value::is_object) {
                        for x in a.iter_mut() {
                            if let Some(o) = x.as_object_mut() {
                                filter_object(o, mode, sizes, &path);
                            }
                        }
                    } else {
                        sizes.insert(path, json!(a.len()));
                        obj.remove(&k);
                    }
                }
                Value::Number(_) | Value::Bool(_) | Value::Null => {}
            },
        }
    }
}

/// A tool input reduced to metadata: Cursor sends an object or the same object as a JSON
/// string; a string that is not a JSON object becomes its size.
fn tool_input(v: &Value) -> Value {
    let parsed = match v {
        Value::String(s) => serde_json::from_str::<Value>(s)
            .ok()
            .filter(Value::is_object),
        _ => None,
    };
    let input = parsed.as_ref().unwrap_or(v);
    let mut out = summarize_tool_input(input);
    // A shell tool's command: its program, as for `command` itself.
    if let (Some(p), Some(o)) = (
        input
            .get("command")
            .and_then(Value::as_str)
            .and_then(program),
        out.as_object_mut(),
    ) {
        o.insert("command_program".into(), Value::String(p));
    }
    out
}

/// The program a shell command runs: the first word after `VAR=value` assignments, its
/// directory dropped, only when it looks like a program name (never an argument, a quote or
/// a secret in an assignment).
fn program(cmd: &str) -> Option<String> {
    let word = cmd
        .split_whitespace()
        .find(|w| !is_assignment(w))?
        .rsplit('/')
        .next()?;
    let ok = (1..=64).contains(&word.len())
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+'));
    ok.then(|| word.to_string())
}

fn is_assignment(w: &str) -> bool {
    w.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    })
}

/// `edits[{old_string,new_string}]` as a count and sizes, never their text.
fn edits(v: &Value) -> Value {
    let items = v.as_array().map(Vec::as_slice).unwrap_or_default();
    let (mut old_lines, mut new_lines, mut old_chars, mut new_chars) = (0, 0, 0, 0);
    for e in items {
        if let Some(s) = e.get("old_string").and_then(Value::as_str) {
            old_lines += line_count(s);
            old_chars += s.len();
        }
        if let Some(s) = e.get("new_string").and_then(Value::as_str) {
            new_lines += line_count(s);
            new_chars += s.len();
        }
    }
    json!({
        "count": items.len(),
        "old_lines": old_lines,
        "new_lines": new_lines,
        "old_chars": old_chars,
        "new_chars": new_chars,
    })
}

/// `scheme://host[:port]` of a URL: no user info, path, query or fragment (tokens live there).
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    (!scheme.is_empty() && !host.is_empty()).then(|| format!("{scheme}://{host}"))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn filtered(v: Value, mode: PrivacyMode) -> Value {
        let mut v = v;
        filter_cursor_hook_payload(&mut v, mode);
        v
    }

    #[test]
    fn common_fields_are_kept_and_the_email_never() {
        let base = json!({
            "conversation_id": "c1", "generation_id": "g1", "model": "claude-4.5-sonnet",
            "hook_event_name": "stop", "cursor_version": "2.1.42",
            "workspace_roots": ["/home/u/proj", "/home/u/lib"], "user_email": "dev@example.com",
            "transcript_path": "/home/u/.cursor/projects/p/agent-transcripts/c1/c1.jsonl",
            "status": "completed", "loop_count": 2, "input_tokens": 1200, "output_tokens": 340,
            "cache_read_tokens": 9000, "cache_write_tokens": 0,
        });
        for mode in [
            PrivacyMode::Metadata,
            PrivacyMode::Standard,
            PrivacyMode::Full,
        ] {
            let v = filtered(base.clone(), mode);
            assert!(v.get("user_email").is_none(), "{mode:?}");
            assert!(!v.to_string().contains("dev@example.com"));
            for k in [
                "conversation_id",
                "generation_id",
                "model",
                "cursor_version",
                "transcript_path",
                "status",
                "loop_count",
                "input_tokens",
                "output_tokens",
                "cache_read_tokens",
                "cache_write_tokens",
                "workspace_roots",
            ] {
                assert_eq!(v[k], base[k], "{k} in {mode:?}");
            }
        }
    }

    #[test]
    fn commands_keep_the_program_only() {
        let v = filtered(
            json!({"hook_event_name": "beforeShellExecution", "cwd": "/p",
                   "command": "AWS_SECRET_ACCESS_KEY=hunter2 /usr/bin/aws s3 cp s3://bucket/x ."}),
            PrivacyMode::Standard,
        );
        assert_eq!(v["command"]["program"], "aws");
        assert_eq!(v["cwd"], "/p");
        let s = v.to_string();
        assert!(!s.contains("hunter2") && !s.contains("bucket"), "{s}");
        assert_eq!(v[SIZES_FIELD]["command"], 64);
        assert_eq!(program("\"quoted thing\" x"), None);
        assert_eq!(program("   "), None);
        assert_eq!(program("cargo test -p retry"), Some("cargo".into()));
    }

    #[test]
    fn outputs_prompts_and_contents_become_sizes() {
        let v = filtered(
            json!({"hook_event_name": "afterShellExecution", "command": "ls", "duration": 12,
                   "output": "total 0\nsecret.txt", "prompt": "deploy with hunter2",
                   "text": "Done.", "content": "file body", "result_json": "{\"rows\":[1]}",
                   "tool_output": "{\"ok\":true}", "result": "sub-agent answer"}),
            PrivacyMode::Standard,
        );
        for k in [
            "output",
            "prompt",
            "text",
            "content",
            "result_json",
            "tool_output",
            "result",
        ] {
            assert!(v.get(k).is_none(), "{k} kept");
            assert!(v[SIZES_FIELD][k].is_number(), "{k} size");
        }
        assert_eq!(v["duration"], 12);
        assert_eq!(v[SIZES_FIELD]["output"], 18);
    }

    #[test]
    fn edits_become_counts() {
        let v = filtered(
            json!({"hook_event_name": "afterFileEdit", "file_path": "/p/src/lib.rs",
                   "edits": [{"old_string": "fn a() {}\n", "new_string": "fn hidden_b() {}\nfn c() {}\n"},
                             {"old_string": "", "new_string": "x"}]}),
            PrivacyMode::Standard,
        );
        assert_eq!(
            v["edits"],
            json!({"count": 2, "old_lines": 1, "new_lines": 3, "old_chars": 10, "new_chars": 28})
        );
        assert_eq!(v["file_path"], "/p/src/lib.rs");
        assert!(!v.to_string().contains("hidden_b"));
    }

    #[test]
    fn tool_input_as_string_or_object_keeps_metadata() {
        for input in [
            json!({"file_path": "/p/a.rs", "contents": "fn hidden() {}"}),
            Value::String(r#"{"file_path":"/p/a.rs","contents":"fn hidden() {}"}"#.into()),
        ] {
            let v = filtered(
                json!({"hook_event_name": "preToolUse", "tool_name": "Write", "tool_use_id": "t1",
                       "tool_input": input}),
                PrivacyMode::Standard,
            );
            assert_eq!(v["tool_input"]["file_path"], "/p/a.rs");
            assert_eq!(v["tool_input"]["contents_chars"], 14);
            assert!(!v.to_string().contains("hidden"), "{v}");
            assert_eq!(v["tool_use_id"], "t1");
        }
        let v = filtered(
            json!({"tool_input": {"command": "rm -rf /secret/dir"}}),
            PrivacyMode::Standard,
        );
        assert_eq!(v["tool_input"]["command_program"], "rm");
        assert!(!v.to_string().contains("secret"));
        let v = filtered(
            json!({"tool_input": "not json: rm -rf /secret"}),
            PrivacyMode::Standard,
        );
        assert_eq!(v["tool_input"]["chars"], 24);
    }

    #[test]
    fn attachments_keep_type_and_path() {
        let v = filtered(
            json!({"hook_event_name": "beforeSubmitPrompt", "prompt": "x",
                   "attachments": [{"type": "file", "filePath": "/p/a.rs", "content": "BODY"},
                                   {"type": "rule", "file_path": "/p/.cursor/rules/r.mdc"}]}),
            PrivacyMode::Standard,
        );
        assert_eq!(v["attachments"][0]["filePath"], "/p/a.rs");
        assert_eq!(v["attachments"][1]["file_path"], "/p/.cursor/rules/r.mdc");
        assert!(!v.to_string().contains("BODY"));
    }

    #[test]
    fn errors_keep_exit_code_and_urls_their_origin() {
        let v = filtered(
            json!({"hook_event_name": "postToolUseFailure",
                   "error_message": "Exit code 2\npassword=abc in output",
                   "url": "https://user:tok@mcp.example.com:8443/mcp?key=sekrit"}),
            PrivacyMode::Standard,
        );
        assert_eq!(v["error_summary"]["exit_code"], 2);
        assert_eq!(v["url"], "https://mcp.example.com:8443");
        let s = v.to_string();
        assert!(
            !s.contains("password") && !s.contains("sekrit") && !s.contains("tok@"),
            "{s}"
        );
        assert!(v.get("error_message").is_none());
    }

    #[test]
    fn full_mode_keeps_text_but_redacts_secrets() {
        let v = filtered(
            json!({"prompt": "key AKIAIOSFODNN7EXAMPLE here", "command": "ls -la",
                   "user_email": "a@b.c"}),
            PrivacyMode::Full,
        );
        assert_eq!(v["command"], "ls -la");
        assert!(!v.to_string().contains("AKIAIOSFODNN7EXAMPLE"));
        assert!(v.get("user_email").is_none());
    }

    #[test]
    fn unknown_fields_keep_only_ids_and_sizes() {
        let v = filtered(
            json!({"hook_event_name": "brandNewEvent", "new_thing_id": "x1",
                   "free_text": "who knows", "nested": {"detail": "secret", "count": 3}}),
            PrivacyMode::Metadata,
        );
        assert_eq!(v["new_thing_id"], "x1");
        assert_eq!(v["nested"]["count"], 3);
        assert!(v.get("free_text").is_none() && v["nested"].get("detail").is_none());
        assert_eq!(v[SIZES_FIELD]["nested.detail"], 6);
    }

    /// Every fixture of `tests/data/cursor-hooks`, filtered in each mode: the snapshot is
    /// what reaches Redis and `raw_traces` (update with `UPDATE_EXPECT=1`).
    #[test]
    fn fixture_snapshots() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cursor-hooks");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        assert!(files.len() >= 20, "{} fixtures", files.len());
        for (mode, snapshot) in [
            (
                PrivacyMode::Standard,
                expect_test::expect_file!["../../tests/data/cursor-hooks/filtered.standard.txt"],
            ),
            (
                PrivacyMode::Metadata,
                expect_test::expect_file!["../../tests/data/cursor-hooks/filtered.metadata.txt"],
            ),
        ] {
            let mut out = String::new();
            for f in &files {
                let mut v: Value = serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap();
                filter_cursor_hook_payload(&mut v, mode);
                out.push_str(&format!(
                    "{}\n{}\n\n",
                    f.file_name().unwrap().to_string_lossy(),
                    serde_json::to_string_pretty(&v).unwrap()
                ));
            }
            snapshot.assert_eq(&out);
        }
    }
}
