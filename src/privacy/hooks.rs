//! The allow-list for Claude Code's hook and status-line payloads (Cursor's: `cursor_hooks`).
//!
//! Hook payloads are reviewed field by field, like transcript records, but arrive from a
//! process we do not control and gain fields with every release, so outside `full` mode the
//! rule is an allow-list: identifiers, paths, names, enums, numbers and flags are kept; tool
//! inputs and responses keep only metadata (tool name, paths, sizes, exit status, error flag,
//! duration — never contents or output); every other string (prompts, assistant messages,
//! compaction summaries, task descriptions, fields of newer versions) is replaced by its
//! size in [`SIZES_FIELD`]. The transcript, not the hook, is where prompts and prose are
//! kept (and redacted), so nothing is stored twice.
//!
//! Invariant: whatever the mode, every string left passes through the secret redactor last.

use serde_json::{Map, Value, json};

use super::{PrivacyMode, line_count, redact_strings, size_summary, summarize_tool_input};

/// Sizes (in bytes) of the string fields that were dropped: `{"prompt": 120, ...}`.
pub const SIZES_FIELD: &str = "bpSizes";

/// String fields kept verbatim: identifiers, paths, names and enums.
const KEEP_STRINGS: &[&str] = &[
    "session_id",
    "transcript_path",
    "cwd",
    "hook_event_name",
    "permission_mode",
    "prompt_id",
    "agent_id",
    "agent_type",
    "agent_transcript_path",
    "tool_name",
    "tool_use_id",
    "source",
    "reason",
    "trigger",
    "notification_type",
    "from_model",
    "to_model",
    "requested_model",
    "model",
    "cache_ttl",
    "task_id",
    "memory_type",
    "load_reason",
    "file_path",
    "old_cwd",
    "new_cwd",
    "event",
    "directory",
    "name",
    "worktree_path",
    "expansion_type",
    "command_name",
    "command_source",
    "turn_id",
    "message_id",
    "level",
    "id",
    "display_name",
    "current_dir",
    "project_dir",
    "version",
    "output_style",
    "mcp_server_name",
    "server_name",
    "conversation_id",
    "generation_id",
    "status",
];

/// Key endings that mark identifiers and names in fields of newer versions.
const KEEP_SUFFIXES: &[&str] = &["_id", "_path", "_name", "_type", "_model", "_mode"];

/// Keys of a `tool_response` object kept (Bash and MCP responses; file tools report paths).
const RESPONSE_KEYS: &[&str] = &[
    "filePath",
    "file_path",
    "interrupted",
    "isImage",
    "noOutputExpected",
    "exitCode",
    "exit_code",
    "success",
    "is_error",
    "isError",
    "type",
    "numLines",
    "totalLines",
    "numFiles",
    "durationMs",
    "truncated",
    "status",
    "agentId",
    "totalDurationMs",
    "totalTokens",
    "totalToolUseCount",
];

/// Filters one hook or status-line payload in place.
pub fn filter_hook_payload(v: &mut Value, mode: PrivacyMode) {
    if mode != PrivacyMode::Full
        && let Some(obj) = v.as_object_mut()
    {
        let mut sizes = Map::new();
        filter_object(obj, mode, &mut sizes, "");
        if !sizes.is_empty() {
            obj.insert(SIZES_FIELD.into(), Value::Object(sizes));
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
            "tool_input" => *v = summarize_tool_input(v),
            "tool_response" => *v = summarize_response(v),
            "tool_calls" => {
                if let Value::Array(calls) = v {
                    for c in calls.iter_mut() {
                        if let Some(o) = c.as_object_mut() {
                            filter_object(o, mode, sizes, &path);
                        }
                    }
                }
            }
            "error" if v.is_string() => {
                let s = v.as_str().unwrap_or_default();
                let summary = error_summary(s, mode);
                sizes.insert(path, json!(s.len()));
                obj.remove(&k);
                if let Some(o) = obj.get_mut("error_summary") {
                    *o = summary;
                } else {
                    obj.insert("error_summary".into(), summary);
                }
                continue;
            }
            "message" if v.is_string() && mode == PrivacyMode::Standard => {
                // Notification text is Claude Code's own UI wording ("Claude needs your
                // permission to use Bash"); kept, but as prose.
                if let Value::String(s) = v {
                    *s = super::prose(s, mode);
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

/// A tool response reduced to metadata: an object keeps [`RESPONSE_KEYS`] and the sizes of its
/// strings; anything else (MCP tools answer with a JSON string) becomes its size.
fn summarize_response(v: &Value) -> Value {
    let Some(obj) = v.as_object() else {
        return size_summary(v);
    };
    let mut out = Map::new();
    for (k, x) in obj {
        if RESPONSE_KEYS.contains(&k.as_str()) && !x.is_object() && !x.is_array() {
            out.insert(k.clone(), x.clone());
        } else if let Some(s) = x.as_str() {
            out.insert(format!("{k}_chars"), json!(s.len()));
            out.insert(format!("{k}_lines"), json!(line_count(s)));
        } else if let Some(a) = x.as_array() {
            out.insert(format!("{k}_items"), json!(a.len()));
        }
    }
    Value::Object(out)
}

/// What an error says without its output: the exit code of a failed command and, outside
/// `metadata` mode, the first line when it is short (`Exit code 3`, `Request timed out`).
pub(super) fn error_summary(s: &str, mode: PrivacyMode) -> Value {
    let first = s.lines().next().unwrap_or("").trim();
    let exit_code = first
        .strip_prefix("Exit code ")
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse::<i64>().ok());
    let mut out = Map::new();
    if let Some(c) = exit_code {
        out.insert("exit_code".into(), json!(c));
    }
    if mode != PrivacyMode::Metadata && !first.is_empty() && first.len() <= 120 {
        out.insert("first_line".into(), json!(first));
    }
    out.insert("lines".into(), json!(line_count(s)));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filtered(v: Value, mode: PrivacyMode) -> Value {
        let mut v = v;
        filter_hook_payload(&mut v, mode);
        v
    }

    #[test]
    fn tool_contents_and_output_never_survive() {
        let v = filtered(
            json!({
                "session_id": "s1", "hook_event_name": "PostToolUse", "tool_name": "Write",
                "tool_use_id": "toolu_1", "duration_ms": 12,
                "tool_input": {"file_path": "/p/x.txt", "content": "SECRET FILE BODY\nline2"},
                "tool_response": {"filePath": "/p/x.txt", "success": true, "stdout": "OUTPUT"},
            }),
            PrivacyMode::Standard,
        );
        let s = v.to_string();
        assert!(
            !s.contains("SECRET FILE BODY") && !s.contains("OUTPUT"),
            "{s}"
        );
        assert_eq!(v["tool_input"]["file_path"], "/p/x.txt");
        assert_eq!(v["tool_input"]["content_chars"], 22);
        assert_eq!(v["tool_response"]["success"], true);
        assert_eq!(v["tool_response"]["stdout_chars"], 6);
        assert_eq!(v["duration_ms"], 12);
        assert_eq!(v["tool_use_id"], "toolu_1");
    }

    #[test]
    fn mcp_string_responses_and_batches_become_sizes() {
        let v = filtered(
            json!({
                "hook_event_name": "PostToolBatch",
                "tool_calls": [{"tool_name": "mcp__bp__get_metrics", "tool_use_id": "t1",
                                "tool_input": {"group_by": "day"},
                                "tool_response": "{\"rows\":[1,2,3]}"}],
            }),
            PrivacyMode::Standard,
        );
        assert_eq!(v["tool_calls"][0]["tool_name"], "mcp__bp__get_metrics");
        assert_eq!(v["tool_calls"][0]["tool_response"]["chars"], 16);
        assert!(!v.to_string().contains("rows"));
    }

    #[test]
    fn prose_fields_keep_only_their_size() {
        let v = filtered(
            json!({
                "hook_event_name": "UserPromptSubmit", "prompt_id": "p1",
                "prompt": "please deploy with password hunter2",
                "last_assistant_message": "Done.", "brand_new_field": "who knows",
                "new_thing_id": "x-1", "count": 3, "flags": [true, false],
            }),
            PrivacyMode::Standard,
        );
        assert!(v.get("prompt").is_none() && v.get("brand_new_field").is_none());
        assert_eq!(v[SIZES_FIELD]["prompt"], 35);
        assert_eq!(v[SIZES_FIELD]["last_assistant_message"], 5);
        assert_eq!(v["new_thing_id"], "x-1");
        assert_eq!(v["count"], 3);
        assert_eq!(v["prompt_id"], "p1");
    }

    #[test]
    fn errors_keep_exit_code_not_output() {
        let v = filtered(
            json!({"hook_event_name": "PostToolUseFailure", "error": "Exit code 3\nstderr: db password=abc",
                   "is_interrupt": false}),
            PrivacyMode::Standard,
        );
        assert_eq!(v["error_summary"]["exit_code"], 3);
        assert_eq!(v["error_summary"]["first_line"], "Exit code 3");
        assert!(!v.to_string().contains("password"));
        let m = filtered(
            json!({"error": "Request failed: quota"}),
            PrivacyMode::Metadata,
        );
        assert!(m["error_summary"].get("first_line").is_none());
    }

    #[test]
    fn status_line_figures_are_kept() {
        let v = filtered(
            json!({
                "session_id": "s", "model": {"id": "claude-sonnet-4-5", "display_name": "Sonnet"},
                "cost": {"total_cost_usd": 0.5, "total_duration_ms": 10},
                "rate_limits": {"five_hour": {"used_percentage": 23.5, "resets_at": 1767952800}},
                "workspace": {"current_dir": "/p", "project_dir": "/p"},
            }),
            PrivacyMode::Metadata,
        );
        assert_eq!(v["rate_limits"]["five_hour"]["used_percentage"], 23.5);
        assert_eq!(v["cost"]["total_cost_usd"], 0.5);
        assert_eq!(v["model"]["id"], "claude-sonnet-4-5");
        assert_eq!(v["workspace"]["project_dir"], "/p");
    }

    #[test]
    fn full_mode_keeps_text_but_redacts_secrets() {
        let v = filtered(
            json!({"prompt": "key AKIAIOSFODNN7EXAMPLE here", "tool_input": {"command": "ls"}}),
            PrivacyMode::Full,
        );
        assert_eq!(v["tool_input"]["command"], "ls");
        assert!(
            !v["prompt"]
                .as_str()
                .unwrap_or("")
                .contains("AKIAIOSFODNN7EXAMPLE")
        );
    }
}
