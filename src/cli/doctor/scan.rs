//! `blueplane doctor --privacy`: an audit of what is stored, against the privacy rules.
//!
//! Reads every text the store keeps — conversation tables, hook details, every
//! `raw_traces` payload decompressed (blocks included), and every entry of the Redis streams — and reports
//! (counts and places: table and row id, stream and entry id; never the text itself):
//! - secrets the redactor would have replaced (`privacy::redact::secret_kinds`, run on each
//!   string, the unit capture redacts);
//! - content the configured mode excludes: in `standard` and `metadata`, tool-input contents
//!   (`content`, `new_string`, `old_string`, ...), tool output (`stdout`, file contents),
//!   tool results, thinking, MCP structured content and the prose fields of hook payloads;
//!   in `metadata`, any message text; in `standard`, fenced code in prose.
//!
//! The judgement here is written independently of the capture filter (`privacy`), so that a
//! mistake in one is caught by the other. This is the one reader of `raw_traces` outside
//! layer 2: it opens its own read-only connection, not the query layer's.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};
use serde::Serialize;
use serde_json::Value;

use crate::privacy::PrivacyMode;
use crate::privacy::redact::secret_kinds;

/// Places listed in the report (the counts cover everything).
const MAX_PLACES: usize = 20;

#[derive(Debug, Default, Serialize)]
pub struct Scan {
    pub mode: &'static str,
    /// Rows or entries read, per table or stream.
    pub scanned: BTreeMap<String, u64>,
    /// Secrets found, per kind.
    pub secrets: BTreeMap<String, u64>,
    /// Content the mode excludes, per what it is.
    pub excluded: BTreeMap<String, u64>,
    /// The first places with findings.
    pub places: Vec<Place>,
    /// Places with findings in all.
    pub places_total: u64,
}

#[derive(Debug, Serialize)]
pub struct Place {
    /// `raw_traces seq 12`, `messages rowid 3`, `redis bp:events 1700000000000-0`.
    pub at: String,
    pub found: Vec<String>,
}

impl Scan {
    pub fn new(mode: PrivacyMode) -> Scan {
        Scan {
            mode: mode.as_str(),
            ..Scan::default()
        }
    }

    pub fn clean(&self) -> bool {
        self.places_total == 0
    }

    fn record(&mut self, at: impl FnOnce() -> String, secrets: Vec<&str>, excluded: Vec<String>) {
        if secrets.is_empty() && excluded.is_empty() {
            return;
        }
        for k in &secrets {
            *self.secrets.entry((*k).to_string()).or_default() += 1;
        }
        for e in &excluded {
            *self.excluded.entry(e.clone()).or_default() += 1;
        }
        self.places_total += 1;
        if self.places.len() < MAX_PLACES {
            let mut found: Vec<String> = secrets.iter().map(|k| format!("secret {k}")).collect();
            found.extend(excluded);
            self.places.push(Place { at: at(), found });
        }
    }

    fn scanned(&mut self, what: &str) {
        *self.scanned.entry(what.to_string()).or_default() += 1;
    }
}

/// Secret kinds in every string (keys included) of `v`.
fn json_secrets(v: &Value, out: &mut Vec<&'static str>) {
    let mut add = |s: &str| {
        for k in secret_kinds(s) {
            if !out.contains(&k) {
                out.push(k);
            }
        }
    };
    fn walk(v: &Value, add: &mut dyn FnMut(&str)) {
        match v {
            Value::String(s) => add(s),
            Value::Array(a) => a.iter().for_each(|x| walk(x, add)),
            Value::Object(o) => {
                for (k, x) in o {
                    add(k);
                    walk(x, add);
                }
            }
            _ => {}
        }
    }
    walk(v, &mut add);
}

/// Tool-input keys whose values are contents (files, diffs, command lines, sub-agent
/// prompts), never kept outside `full` mode.
const INPUT_CONTENT_KEYS: &[&str] = &[
    "content",
    "new_string",
    "old_string",
    "new_source",
    "edits",
    "command",
    "prompt",
];
/// Tool-output keys whose values are output or contents.
const OUTPUT_KEYS: &[&str] = &[
    "stdout",
    "stderr",
    "content",
    "originalFile",
    "structuredPatch",
    "output",
    "result",
];
/// Prose fields of hook payloads, which keep only their size outside `full` mode.
const HOOK_PROSE_KEYS: &[&str] = &[
    "prompt",
    "last_assistant_message",
    "compact_summary",
    "custom_instructions",
    "task_description",
];

fn non_empty(v: &Value) -> bool {
    match v {
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    }
}

fn push(out: &mut Vec<String>, what: String) {
    if !out.contains(&what) {
        out.push(what);
    }
}

/// What `v` (a stored record or payload) holds that `mode` excludes.
pub fn excluded(v: &Value, mode: PrivacyMode) -> Vec<String> {
    let mut out = Vec::new();
    if mode != PrivacyMode::Full {
        walk_excluded(v, mode, &mut out);
    }
    out
}

fn walk_excluded(v: &Value, mode: PrivacyMode, out: &mut Vec<String>) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| walk_excluded(x, mode, out)),
        Value::Object(o) => {
            let ty = o.get("type").and_then(Value::as_str);
            for (k, x) in o {
                match k.as_str() {
                    "input" | "tool_input" => {
                        if let Value::Object(inp) = x {
                            for ck in INPUT_CONTENT_KEYS {
                                if inp.get(*ck).is_some_and(non_empty) {
                                    push(out, format!("tool input {ck}"));
                                }
                            }
                        }
                    }
                    "toolUseResult" | "tool_response" => match x {
                        Value::Object(r) => {
                            for ok in OUTPUT_KEYS {
                                if r.get(*ok).is_some_and(non_empty) {
                                    push(out, format!("tool output {ok}"));
                                }
                            }
                            if r.get("file")
                                .and_then(|f| f.get("content"))
                                .is_some_and(non_empty)
                            {
                                push(out, "tool output file content".into());
                            }
                        }
                        Value::String(s) if !s.is_empty() => push(out, "tool output".into()),
                        _ => {}
                    },
                    "mcpMeta" if x.get("structuredContent").is_some() => {
                        push(out, "MCP structured content".into());
                    }
                    "thinking" if ty == Some("thinking") && non_empty(x) => {
                        push(out, "thinking".into());
                    }
                    "content" if ty == Some("tool_result") && non_empty(x) => {
                        push(out, "tool result content".into());
                    }
                    _ => {}
                }
                walk_excluded(x, mode, out);
            }
            if o.contains_key("hook_event_name") {
                for pk in HOOK_PROSE_KEYS {
                    if o.get(*pk).is_some_and(non_empty) {
                        push(out, format!("hook {pk}"));
                    }
                }
            }
            if mode == PrivacyMode::Metadata {
                let text_block = ty == Some("text") && o.get("text").is_some_and(non_empty);
                let user_text = o.get("role").and_then(Value::as_str).is_some()
                    && o.get("content").is_some_and(Value::is_string)
                    && o.get("content").is_some_and(non_empty);
                if text_block || user_text {
                    push(out, "message text".into());
                }
            }
        }
        _ => {}
    }
}

/// What prose (message text, titles, summaries) holds that `mode` excludes.
fn prose_excluded(text: &str, mode: PrivacyMode) -> Vec<String> {
    match mode {
        PrivacyMode::Full => Vec::new(),
        PrivacyMode::Metadata if !text.is_empty() => vec!["text (metadata mode keeps none)".into()],
        PrivacyMode::Metadata => Vec::new(),
        PrivacyMode::Standard if text.contains("```") => vec!["fenced code in prose".into()],
        PrivacyMode::Standard => Vec::new(),
    }
}

fn text_secrets(text: &str) -> Vec<&'static str> {
    secret_kinds(text)
}

/// Opens `telemetry.db` read-only, without the query layer's `raw_traces` guard.
fn open(db: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch("PRAGMA query_only=1")?;
    Ok(conn)
}

/// How a column is judged.
#[derive(Clone, Copy)]
enum Role {
    Prose,
    /// A tool input (`tool_calls.input_meta`).
    ToolInput,
    /// JSON facts (result meta, hook detail).
    Json,
}

/// Scans the conversation tables and the decompressed raw payloads.
///
/// # Errors
/// SQLite errors.
pub fn scan_sqlite(db: &Path, mode: PrivacyMode, scan: &mut Scan) -> rusqlite::Result<()> {
    let conn = open(db)?;
    let columns: &[(&str, &str, &str, Role)] = &[
        ("messages", "rowid", "text", Role::Prose),
        ("sessions", "session_id", "title", Role::Prose),
        ("sessions", "session_id", "first_prompt", Role::Prose),
        ("session_titles", "session_id", "title", Role::Prose),
        ("summaries", "leaf_uuid", "summary", Role::Prose),
        ("tool_calls", "tool_use_id", "input_meta", Role::ToolInput),
        ("tool_calls", "tool_use_id", "result_meta", Role::Json),
        ("hook_events", "event_id", "detail", Role::Json),
    ];
    for (table, id, col, role) in columns {
        let exists: bool = conn.query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get(0),
        )?;
        if !exists {
            continue;
        }
        let mut stmt = conn.prepare(&format!(
            "SELECT CAST({id} AS TEXT), {col} FROM {table} WHERE {col} IS NOT NULL"
        ))?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let key: String = r.get(0)?;
            let text: String = r.get(1)?;
            scan.scanned(table);
            let (secrets, excl) = match role {
                Role::Prose => (text_secrets(&text), prose_excluded(&text, mode)),
                Role::ToolInput | Role::Json => match serde_json::from_str::<Value>(&text) {
                    Ok(v) => {
                        let mut s = Vec::new();
                        json_secrets(&v, &mut s);
                        let e = match role {
                            Role::ToolInput => excluded(&serde_json::json!({ "input": v }), mode),
                            _ => excluded(&v, mode),
                        };
                        (s, e)
                    }
                    Err(_) => (text_secrets(&text), Vec::new()),
                },
            };
            scan.record(|| format!("{table} {id} {key} ({col})"), secrets, excl);
        }
    }
    crate::store::blocks::each_text(&conn, |seq, text| {
        scan.scanned("raw_traces");
        match text {
            Some(text) => {
                let (s, e) = judge_payload(text, mode);
                scan.record(|| format!("raw_traces seq {seq}"), s, e);
            }
            None => scan.record(
                || format!("raw_traces seq {seq}"),
                Vec::new(),
                vec!["payload that is not zlib-compressed UTF-8".into()],
            ),
        }
        Ok::<(), rusqlite::Error>(())
    })?;
    Ok(())
}

/// A payload (JSON, or text when it is not JSON): its secrets and excluded content.
fn judge_payload(text: &str, mode: PrivacyMode) -> (Vec<&'static str>, Vec<String>) {
    match serde_json::from_str::<Value>(text) {
        Ok(v) => {
            let mut s = Vec::new();
            json_secrets(&v, &mut s);
            (s, excluded(&v, mode))
        }
        Err(_) => (text_secrets(text), Vec::new()),
    }
}

/// Scans every entry of the event stream and the dead-letter stream.
///
/// # Errors
/// Redis errors.
pub async fn scan_redis(
    conn: &mut redis::aio::ConnectionManager,
    mode: PrivacyMode,
    scan: &mut Scan,
) -> redis::RedisResult<()> {
    type Entries = Vec<(String, Vec<Vec<u8>>)>;
    for stream in [crate::queue::EVENTS, crate::queue::DLQ] {
        let mut start = "-".to_string();
        loop {
            let page: Entries = redis::cmd("XRANGE")
                .arg(stream)
                .arg(&start)
                .arg("+")
                .arg("COUNT")
                .arg(500)
                .query_async(conn)
                .await?;
            let Some((last, _)) = page.last() else { break };
            start = format!("({last}");
            for (id, fields) in &page {
                scan.scanned(&format!("redis {stream}"));
                let mut secrets = Vec::new();
                let mut excl = Vec::new();
                for pair in fields.chunks(2) {
                    let [name, value] = pair else { continue };
                    let text = String::from_utf8_lossy(value);
                    // `d` (and a dead letter's `orig_d`) is the event's JSON payload.
                    let (s, e) = if name.as_slice() == b"d" || name.as_slice() == b"orig_d" {
                        judge_payload(&text, mode)
                    } else {
                        (text_secrets(&text), Vec::new())
                    };
                    for k in s {
                        if !secrets.contains(&k) {
                            secrets.push(k);
                        }
                    }
                    for x in e {
                        push(&mut excl, x);
                    }
                }
                scan.record(|| format!("redis {stream} {id}"), secrets, excl);
            }
            if page.len() < 500 {
                break;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn standard_mode_flags_contents_and_output_but_not_summaries() {
        let kept = json!({"type": "assistant", "message": {"content": [
            {"type": "tool_use", "name": "Write", "input": {"file_path": "/x", "content_chars": 10}},
            {"type": "tool_result", "content": {"chars": 3, "lines": 1}},
            {"type": "text", "text": "fine"}]},
            "toolUseResult": {"filePath": "/x", "stdout_chars": 4}});
        assert!(excluded(&kept, PrivacyMode::Standard).is_empty());
        let leaked = json!({"type": "assistant", "message": {"content": [
            {"type": "tool_use", "name": "Edit", "input": {"file_path": "/x", "old_string": "a", "new_string": "b"}},
            {"type": "tool_result", "content": "total 0"},
            {"type": "thinking", "thinking": "hmm"}]},
            "toolUseResult": {"stdout": "total 0", "file": {"content": "x"}}});
        let e = excluded(&leaked, PrivacyMode::Standard);
        for what in [
            "tool input old_string",
            "tool input new_string",
            "tool result content",
            "thinking",
            "tool output stdout",
            "tool output file content",
        ] {
            assert!(e.iter().any(|x| x == what), "{what} not in {e:?}");
        }
        assert!(excluded(&leaked, PrivacyMode::Full).is_empty());
    }

    #[test]
    fn hook_payloads_and_metadata_mode() {
        let hook = json!({"hook_event_name": "UserPromptSubmit", "prompt": "hello",
                          "tool_input": {"content": "x"}});
        let e = excluded(&hook, PrivacyMode::Standard);
        assert!(e.contains(&"hook prompt".to_string()), "{e:?}");
        assert!(e.contains(&"tool input content".to_string()), "{e:?}");
        let user = json!({"type": "user", "message": {"role": "user", "content": "hi"}});
        assert!(excluded(&user, PrivacyMode::Standard).is_empty());
        assert_eq!(excluded(&user, PrivacyMode::Metadata), vec!["message text"]);
        assert_eq!(
            prose_excluded("see ```rm```", PrivacyMode::Standard).len(),
            1
        );
        assert!(prose_excluded("", PrivacyMode::Metadata).is_empty());
    }

    #[test]
    fn secrets_are_found_per_string_and_never_quoted() {
        let key = format!("AKIA{}", "IOSFODNN7EXAMPLE");
        let v = json!({"message": {"content": format!("my key is {key}")}});
        let mut s = Vec::new();
        json_secrets(&v, &mut s);
        assert_eq!(s, vec!["aws_access_key_id"]);
        let mut scan = Scan::new(PrivacyMode::Standard);
        scan.record(|| "messages rowid 1".into(), s, Vec::new());
        let text = serde_json::to_string(&scan).unwrap();
        assert!(!text.contains(&key), "{text}");
        assert_eq!(scan.secrets["aws_access_key_id"], 1);
    }
}
