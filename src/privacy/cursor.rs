//! The allow-list for Cursor's database values: builds the `composer`, `bubble`,
//! `agent_blob` and `workspace` payloads of `docs/CURSOR.md` from the parsed
//! `state.vscdb` values, in the three privacy modes.
//!
//! Every payload is built field by field from what Cursor wrote (nothing is copied wholesale),
//! so a field Cursor adds in a later version is absent until someone reviews it. Prose
//! (prompts, assistant text, titles) goes through the Claude prose filter ([`super::prose`]:
//! `standard` removes fenced code and command output, `metadata` keeps none); tool arguments
//! and results become metadata (allow-listed keys and sizes); thinking is dropped outside
//! `full`. Invariant: `richText`, `codeBlocks` and `attachedCodeChunks` contents and
//! the encryption keys never appear in any mode, and every string left passes through the
//! secret redactor last. Called by `capture::cursor_db` (and the snapshot tests).

use serde_json::{Map, Value, json};

use super::{PrivacyMode, prose, redact::redact, summarize_tool_input};

/// Keys of Cursor-generated identifiers: never user text, not scanned for secrets.
const ID_KEYS: &[&str] = &[
    "composerId",
    "bubbleId",
    "serverBubbleId",
    "requestId",
    "usageUuid",
    "toolCallId",
    "parentComposerId",
    "subComposerIds",
    "workspace",
];

/// Tool-argument keys Cursor's tools use for paths, flags and small enums (kept in
/// `standard`), beside the Claude Code ones `summarize_tool_input` knows.
const CURSOR_TOOL_ARG_KEYS: &[&str] = &[
    "target_file",
    "relative_workspace_path",
    "target_directory",
    "directory_path",
    "file_path",
    "path",
    "is_background",
    "should_read_entire_file",
    "start_line_one_indexed",
    "end_line_one_indexed_inclusive",
    "offset",
    "limit",
];

/// Longest `errorMessage` kept in `standard` mode.
const ERROR_CHARS: usize = 200;

/// The `composer` payload from a `composerData:<id>` value (encryption keys already removed
/// by the query; never copied here anyway).
pub fn composer(v: &Value, mode: PrivacyMode) -> Value {
    let mut out = Map::new();
    copy_scalars(v, &mut out, &["_v", "composerId"]);
    if let Some(name) = v.get("name").and_then(Value::as_str) {
        out.insert("name".into(), json!(title(name, mode)));
    }
    copy_numbers(v, &mut out, &["createdAt", "lastUpdatedAt"]);
    copy_scalars(
        v,
        &mut out,
        &[
            "status",
            "unifiedMode",
            "forceMode",
            "isAgentic",
            "contextUsagePercent",
            "totalLinesAdded",
            "totalLinesRemoved",
            "filesChangedCount",
            "parentComposerId",
            "isSubagent",
            "createdOnBranch",
        ],
    );
    if let Some(mc) = v.get("modelConfig").and_then(Value::as_object) {
        let mut m = Map::new();
        for k in ["modelName", "maxMode"] {
            if let Some(x) = mc.get(k).filter(|x| is_scalar(x)) {
                m.insert(k.into(), x.clone());
            }
        }
        out.insert("modelConfig".into(), Value::Object(m));
    }
    let (headers, legacy) = headers(v);
    out.insert("bubbleCount".into(), json!(headers.len()));
    out.insert("headers".into(), Value::Array(headers));
    out.insert("legacy".into(), json!(legacy));
    if let Some(u) = v.get("usageData") {
        out.insert("usageData".into(), numbers_only(u));
    }
    if let Some(p) = workspace_path(v) {
        out.insert("workspacePath".into(), json!(p));
    }
    if let Some(ids) = v.get("subComposerIds").and_then(Value::as_array) {
        let ids: Vec<Value> = ids.iter().filter(|x| x.is_string()).cloned().collect();
        out.insert("subComposerIds".into(), Value::Array(ids));
    }
    finish(out)
}

/// `fullConversationHeadersOnly` reduced to bubbleId/type, else the inline legacy
/// `conversation`'s bubbles (then `true`).
fn headers(v: &Value) -> (Vec<Value>, bool) {
    let reduce = |items: &Vec<Value>| -> Vec<Value> {
        items
            .iter()
            .filter_map(|h| {
                let id = h.get("bubbleId").and_then(Value::as_str)?;
                let mut m = Map::new();
                m.insert("bubbleId".into(), json!(id));
                if let Some(t) = h.get("type").and_then(Value::as_i64) {
                    m.insert("type".into(), json!(t));
                }
                Some(Value::Object(m))
            })
            .collect()
    };
    if let Some(items) = v
        .get("fullConversationHeadersOnly")
        .and_then(Value::as_array)
    {
        return (reduce(items), false);
    }
    match v.get("conversation").and_then(Value::as_array) {
        Some(items) => (reduce(items), true),
        None => (Vec::new(), false),
    }
}

/// `workspaceIdentifier.uri.fsPath` (or `.path`), when the composer carries it.
pub fn workspace_path(v: &Value) -> Option<String> {
    let uri = v.get("workspaceIdentifier")?.get("uri")?;
    uri.get("fsPath")
        .or_else(|| uri.get("path"))
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
}

/// The `bubble` payload from a `bubbleId:<cid>:<bid>` value (or an inline legacy bubble).
pub fn bubble(v: &Value, composer_id: &str, mode: PrivacyMode) -> Value {
    let mut out = Map::new();
    copy_scalars(v, &mut out, &["_v"]);
    out.insert("composerId".into(), json!(composer_id));
    copy_scalars(
        v,
        &mut out,
        &[
            "bubbleId",
            "type",
            "serverBubbleId",
            "requestId",
            "usageUuid",
            "capabilityType",
            "isAgentic",
        ],
    );
    if let Some(c) = v
        .get("createdAt")
        .filter(|c| c.is_string() || c.is_number())
    {
        out.insert("createdAt".into(), c.clone());
    }
    let text = v.get("text").and_then(Value::as_str).unwrap_or("");
    if v.get("text").is_some() {
        out.insert("textBytes".into(), json!(text.len()));
        out.insert("text".into(), json!(prose(text, mode)));
    }
    if let Some(tc) = v.get("tokenCount").and_then(Value::as_object) {
        let mut m = Map::new();
        for k in ["inputTokens", "outputTokens"] {
            if let Some(n) = tc.get(k).filter(|n| n.is_number()) {
                m.insert(k.into(), n.clone());
            }
        }
        out.insert("tokenCount".into(), Value::Object(m));
    }
    if let Some(m) = v
        .get("modelInfo")
        .and_then(|m| m.get("modelName"))
        .and_then(Value::as_str)
    {
        out.insert("modelName".into(), json!(m));
    }
    if let Some(t) = v.get("timingInfo").and_then(Value::as_object) {
        let mut m = Map::new();
        for k in [
            "clientStartTime",
            "clientRpcSendTime",
            "clientSettleTime",
            "clientEndTime",
        ] {
            if let Some(n) = t.get(k).filter(|n| n.is_number()) {
                m.insert(k.into(), n.clone());
            }
        }
        out.insert("timingInfo".into(), Value::Object(m));
    }
    if let Some(th) = v.get("thinking") {
        let t = th
            .get("text")
            .and_then(Value::as_str)
            .or_else(|| th.as_str())
            .unwrap_or("");
        out.insert("thinkingBytes".into(), json!(t.len()));
        if mode == PrivacyMode::Full {
            out.insert("thinking".into(), json!(t));
        }
    }
    if let Some(tf) = v.get("toolFormerData").and_then(Value::as_object) {
        out.insert("tool".into(), tool(tf, mode));
    }
    finish(out)
}

/// `toolFormerData` as tool-call metadata: name, status, id, argument metadata, sizes,
/// error flag and (outside `metadata`) a short error message.
fn tool(tf: &Map<String, Value>, mode: PrivacyMode) -> Value {
    let mut out = Map::new();
    for k in ["name", "status", "toolCallId"] {
        if let Some(s) = tf.get(k).filter(|x| is_scalar(x)) {
            out.insert(k.into(), s.clone());
        }
    }
    let raw_args = tf.get("rawArgs").or_else(|| tf.get("params"));
    if let Some(a) = raw_args {
        let (text, parsed) = as_json(a);
        out.insert("argsBytes".into(), json!(text.len()));
        if let Some(args) = parsed {
            let kept = if mode == PrivacyMode::Full {
                args
            } else {
                tool_args(&args)
            };
            out.insert("args".into(), kept);
        }
    }
    if let Some(r) = tf.get("result") {
        let (text, _) = as_json(r);
        out.insert("resultBytes".into(), json!(text.len()));
        if mode == PrivacyMode::Full {
            out.insert("result".into(), json!(text));
        }
    }
    let status = tf.get("status").and_then(Value::as_str).unwrap_or("");
    let message = tf.get("error").and_then(|e| match e {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("message").and_then(Value::as_str).map(str::to_string),
        _ => None,
    });
    let error = matches!(status, "error" | "failed")
        || tf
            .get("error")
            .is_some_and(|e| !e.is_null() && e != &json!(false) && e != &json!(""));
    out.insert("error".into(), json!(error));
    if let Some(m) = message.filter(|m| !m.is_empty()) {
        match mode {
            PrivacyMode::Metadata => {}
            PrivacyMode::Standard => {
                let first = m.lines().next().unwrap_or("");
                let short: String = first.chars().take(ERROR_CHARS).collect();
                out.insert("errorMessage".into(), json!(prose(&short, mode)));
            }
            PrivacyMode::Full => {
                out.insert("errorMessage".into(), json!(m));
            }
        }
    }
    Value::Object(out)
}

/// A value Cursor stores either as a JSON string (`rawArgs`, `result`) or inline: its text
/// and, when it is a JSON object, the object.
fn as_json(v: &Value) -> (String, Option<Value>) {
    match v {
        Value::String(s) => {
            let parsed = serde_json::from_str::<Value>(s)
                .ok()
                .filter(Value::is_object);
            (s.clone(), parsed)
        }
        other => (
            other.to_string(),
            Some(other.clone()).filter(Value::is_object),
        ),
    }
}

/// Tool arguments reduced to metadata: the Claude Code allow-list plus Cursor's own path and
/// flag keys; every other string is replaced by its size.
fn tool_args(args: &Value) -> Value {
    let mut out = summarize_tool_input(args);
    if let (Some(o), Some(src)) = (out.as_object_mut(), args.as_object()) {
        for k in CURSOR_TOOL_ARG_KEYS {
            if let Some(v) = src.get(*k).filter(|v| is_scalar(v)) {
                o.remove(&format!("{k}_chars"));
                o.remove(&format!("{k}_lines"));
                o.insert((*k).to_string(), v.clone());
            }
        }
    }
    out
}

/// The `agent_blob` payload from an `agentKv:blob:<sha>` value: role and size, the content
/// only in `full`.
pub fn agent_blob(v: &Value, mode: PrivacyMode) -> Value {
    let mut out = Map::new();
    if let Some(r) = v.get("role").and_then(Value::as_str) {
        out.insert("role".into(), json!(r));
    }
    let content = v.get("content");
    let bytes = match content {
        Some(Value::String(s)) => s.len(),
        Some(Value::Null) | None => 0,
        Some(other) => other.to_string().len(),
    };
    out.insert("bytes".into(), json!(bytes));
    if mode == PrivacyMode::Full
        && let Some(c) = content
    {
        out.insert("content".into(), c.clone());
    }
    finish(out)
}

/// The `workspace` payload: the workspace hash, its folder(s) from `workspace.json`, and the
/// composers listed in its `composer.composerData` value (`allComposers`).
pub fn workspace(
    hash: &str,
    folder: Option<&str>,
    folders: &[String],
    index: &Value,
    mode: PrivacyMode,
) -> Value {
    let mut out = Map::new();
    out.insert("workspace".into(), json!(hash));
    if let Some(f) = folder {
        out.insert("folder".into(), json!(f));
    }
    if !folders.is_empty() {
        out.insert("folders".into(), json!(folders));
    }
    let composers: Vec<Value> = index
        .get("allComposers")
        .and_then(Value::as_array)
        .map(|all| {
            all.iter()
                .filter_map(|c| {
                    let id = c.get("composerId").and_then(Value::as_str)?;
                    let mut m = Map::new();
                    m.insert("composerId".into(), json!(id));
                    if let Some(n) = c.get("name").and_then(Value::as_str) {
                        m.insert("name".into(), json!(title(n, mode)));
                    }
                    copy_numbers(c, &mut m, &["createdAt", "lastUpdatedAt"]);
                    copy_scalars(c, &mut m, &["unifiedMode"]);
                    Some(Value::Object(m))
                })
                .collect()
        })
        .unwrap_or_default();
    out.insert("composers".into(), Value::Array(composers));
    finish(out)
}

/// Newest `lastUpdatedAt` of a workspace index's composers.
pub fn workspace_updated_at(index: &Value) -> Option<i64> {
    index
        .get("allComposers")?
        .as_array()?
        .iter()
        .filter_map(|c| c.get("lastUpdatedAt").and_then(Value::as_i64))
        .max()
}

/// A title: prose rules (none in `metadata`).
fn title(s: &str, mode: PrivacyMode) -> String {
    prose(s, mode)
}

fn is_scalar(v: &Value) -> bool {
    !v.is_object() && !v.is_array() && !v.is_null()
}

fn copy_scalars(v: &Value, out: &mut Map<String, Value>, keys: &[&str]) {
    for k in keys {
        if let Some(x) = v.get(*k).filter(|x| is_scalar(x)) {
            out.insert((*k).to_string(), x.clone());
        }
    }
}

fn copy_numbers(v: &Value, out: &mut Map<String, Value>, keys: &[&str]) {
    for k in keys {
        if let Some(x) = v.get(*k).filter(|x| x.is_number()) {
            out.insert((*k).to_string(), x.clone());
        }
    }
}

/// Numbers (and objects of numbers) only: `usageData` as Cursor wrote it, minus any text.
fn numbers_only(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(_, x)| x.is_number() || x.is_object())
                .map(|(k, x)| (k.clone(), numbers_only(x)))
                .collect(),
        ),
        Value::Number(_) => v.clone(),
        _ => json!({}),
    }
}

/// Redacts every string of the payload except Cursor's own ids.
fn finish(out: Map<String, Value>) -> Value {
    let mut v = Value::Object(out);
    redact_all(&mut v, None);
    v
}

fn redact_all(v: &mut Value, key: Option<&str>) {
    match v {
        Value::String(s) => {
            if key.is_some_and(|k| ID_KEYS.contains(&k)) {
                return;
            }
            if let std::borrow::Cow::Owned(r) = redact(s) {
                *s = r;
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| redact_all(x, key)),
        Value::Object(o) => o.iter_mut().for_each(|(k, x)| redact_all(x, Some(k))),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "sk-ant-api03-PLANTEDsecretVALUE0123456789abcdefghijklmnop";
    const SNIPPET: &str = "fn planted_snippet_xyz";
    const OUTPUT: &str = "PLANTED_COMMAND_OUTPUT_42";
    const THOUGHT: &str = "PLANTED_THOUGHT_77";

    fn planted_bubble() -> Value {
        json!({"_v":3,"type":2,"bubbleId":"b1","serverBubbleId":"s1",
            "text": format!("Use {SECRET} then:\n```rust\n{SNIPPET}() {{}}\n```\n<bash-stdout>{OUTPUT}</bash-stdout> done"),
            "richText": format!("{{\"root\":\"{SNIPPET}\"}}"),
            "createdAt":"2025-12-25T19:36:35.467Z","requestId":"r1","usageUuid":"u1",
            "tokenCount":{"inputTokens":10,"outputTokens":20},
            "modelInfo":{"modelName":"claude-4.5-sonnet"},
            "timingInfo":{"clientStartTime":4745281.3,"clientRpcSendTime":1766691321759_i64,"clientEndTime":1766691395467_i64},
            "thinking":{"text": THOUGHT,"signature":""},
            "toolFormerData":{"name":"run_terminal_cmd","status":"error","toolCallId":"t1",
                "rawArgs": json!({"command": format!("cat {SNIPPET}"), "is_background": false, "target_file":"/p/a.rs"}).to_string(),
                "result": json!({"output": OUTPUT}).to_string(),
                "error": format!("command failed: {OUTPUT}\nsecond line")},
            "codeBlocks":[{"content": SNIPPET}],
            "attachedCodeChunks":[{"text": SNIPPET}],
            "capabilityType":15,"isAgentic":true})
    }

    #[test]
    fn standard_bubble_drops_code_output_thinking_and_secrets() {
        let out = bubble(&planted_bubble(), "c1", PrivacyMode::Standard);
        let s = out.to_string();
        for p in [
            SECRET,
            SNIPPET,
            "planted_snippet",
            THOUGHT,
            "richText",
            "codeBlocks",
        ] {
            assert!(!s.contains(p), "{p} survived: {s}");
        }
        // The error message keeps its first line, redacted; the output inside it is not a
        // command's output block, so it is bounded by the first-line rule only.
        assert_eq!(
            out["tool"]["errorMessage"],
            format!("command failed: {OUTPUT}")
        );
        assert!(!s.contains("second line"));
        assert_eq!(out["composerId"], "c1");
        assert_eq!(out["type"], 2);
        assert_eq!(out["modelName"], "claude-4.5-sonnet");
        assert_eq!(out["tokenCount"]["outputTokens"], 20);
        assert_eq!(out["thinkingBytes"], THOUGHT.len());
        assert_eq!(out["tool"]["name"], "run_terminal_cmd");
        assert_eq!(out["tool"]["error"], true);
        assert_eq!(out["tool"]["args"]["target_file"], "/p/a.rs");
        assert_eq!(out["tool"]["args"]["is_background"], false);
        assert!(out["tool"]["args"]["command_chars"].is_number());
        assert!(out["tool"]["resultBytes"].as_u64().unwrap() > 0);
        assert!(out["text"].as_str().unwrap().contains("[code: 1 lines]"));
        assert!(out["text"].as_str().unwrap().contains("done"));
    }

    #[test]
    fn standard_tool_output_never_survives() {
        let mut b = planted_bubble();
        b["toolFormerData"]["error"] = Value::Null;
        let s = bubble(&b, "c1", PrivacyMode::Standard).to_string();
        assert!(!s.contains(OUTPUT), "{s}");
    }

    #[test]
    fn metadata_bubble_has_no_text() {
        let out = bubble(&planted_bubble(), "c1", PrivacyMode::Metadata);
        let s = out.to_string();
        assert_eq!(out["text"], "");
        assert!(out["textBytes"].as_u64().unwrap() > 0);
        assert!(out["tool"].get("errorMessage").is_none());
        for p in [SECRET, SNIPPET, OUTPUT, THOUGHT, "Use "] {
            assert!(!s.contains(p), "{p} survived: {s}");
        }
    }

    #[test]
    fn full_bubble_keeps_text_but_redacts_secrets() {
        let out = bubble(&planted_bubble(), "c1", PrivacyMode::Full);
        let s = out.to_string();
        assert!(
            s.contains(SNIPPET) && s.contains(THOUGHT) && s.contains(OUTPUT),
            "{s}"
        );
        assert!(!s.contains(SECRET), "{s}");
        assert!(s.contains("[REDACTED:anthropic_api_key]"));
        assert!(
            !s.contains("richText")
                && !s.contains("codeBlocks")
                && !s.contains("attachedCodeChunks")
        );
    }

    #[test]
    fn composer_keeps_metadata_and_never_keys() {
        let v = json!({"_v":10,"composerId":"c1","name": format!("fix {SECRET}"),
            "createdAt":1,"lastUpdatedAt":2,"status":"completed","unifiedMode":"agent",
            "blobEncryptionKey":"PLANTED_BLOB_KEY","speculativeSummarizationEncryptionKey":"PLANTED_SPEC_KEY",
            "richText":"x","text": SNIPPET,
            "modelConfig":{"modelName":"claude-4.5-opus-high-thinking","maxMode":true},
            "fullConversationHeadersOnly":[{"bubbleId":"b1","type":1},{"bubbleId":"b2","type":2,"serverBubbleId":"s"}],
            "usageData":{"x":{"amount":3,"note":"PLANTED_NOTE"}},
            "workspaceIdentifier":{"id":"w","uri":{"fsPath":"/home/u/proj"}},
            "subComposerIds":["c2"],"createdOnBranch":"main"});
        for mode in [
            PrivacyMode::Metadata,
            PrivacyMode::Standard,
            PrivacyMode::Full,
        ] {
            let out = composer(&v, mode);
            let s = out.to_string();
            for p in [
                "PLANTED_BLOB_KEY",
                "PLANTED_SPEC_KEY",
                SECRET,
                SNIPPET,
                "PLANTED_NOTE",
            ] {
                assert!(!s.contains(p), "{p} survived in {mode:?}: {s}");
            }
            assert_eq!(out["bubbleCount"], 2);
            assert_eq!(out["legacy"], false);
            assert_eq!(out["headers"][1], json!({"bubbleId":"b2","type":2}));
            assert_eq!(out["workspacePath"], "/home/u/proj");
            assert_eq!(out["subComposerIds"], json!(["c2"]));
            assert_eq!(out["usageData"], json!({"x":{"amount":3}}));
        }
        assert_eq!(composer(&v, PrivacyMode::Metadata)["name"], "");
        assert!(
            composer(&v, PrivacyMode::Standard)["name"]
                .as_str()
                .unwrap()
                .starts_with("fix [REDACTED")
        );
    }

    #[test]
    fn legacy_composer_lists_inline_bubbles() {
        let v = json!({"_v":3,"composerId":"c1","conversation":[{"bubbleId":"b1","type":1,"text":"hi"},{"bubbleId":"b2","type":2,"text":"yo"}]});
        let out = composer(&v, PrivacyMode::Standard);
        assert_eq!(out["legacy"], true);
        assert_eq!(
            out["headers"],
            json!([{"bubbleId":"b1","type":1},{"bubbleId":"b2","type":2}])
        );
        assert!(!out.to_string().contains("yo"));
    }

    #[test]
    fn agent_blob_content_only_in_full() {
        let v = json!({"role":"assistant","content": format!("{SNIPPET} {SECRET}")});
        let std = agent_blob(&v, PrivacyMode::Standard);
        assert_eq!(
            std,
            json!({"role":"assistant","bytes": v["content"].as_str().unwrap().len()})
        );
        let full = agent_blob(&v, PrivacyMode::Full).to_string();
        assert!(full.contains(SNIPPET) && !full.contains(SECRET), "{full}");
    }

    #[test]
    fn workspace_lists_composers() {
        let idx = json!({"allComposers":[{"composerId":"c1","name":"t","createdAt":1,"lastUpdatedAt":5,"unifiedMode":"agent","text":"PLANTED"},
                                          {"composerId":"c2","lastUpdatedAt":9}],"selectedComposerIds":["c1"]});
        let out = workspace("abc", Some("/p"), &[], &idx, PrivacyMode::Metadata);
        assert_eq!(out["workspace"], "abc");
        assert_eq!(out["folder"], "/p");
        assert_eq!(out["composers"][0]["name"], "");
        assert_eq!(out["composers"].as_array().unwrap().len(), 2);
        assert!(!out.to_string().contains("PLANTED"));
        assert_eq!(workspace_updated_at(&idx), Some(9));
    }
}
