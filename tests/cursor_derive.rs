//! Cursor derivation (`slow_path::derive::cursor`, `cursor_hooks`, `cursor_agent`) on
//! records built exactly as the capture contract describes them (`composer`, `bubble`,
//! `workspace`, `agent_blob`, `hook`, `transcript:*` events), stored with the fast path's
//! `insert_batch` and derived by `process_round` — no Redis.
//!
//! Proves: a composer with bubbles, a workspace listing, a sub-composer, hooks and an agent
//! transcript give the expected rows (snapshot); a bubble rewritten three times is one
//! message with its last text (FTS finds only that) and its tokens count once; any arrival
//! order and batching (versions of one key keep their relative order: the later by seq wins)
//! gives identical rows; an estimate disappears when measured counts for its turn arrive;
//! unpriced Cursor models are flagged; out-of-range counts are rejected; a `derive_version`
//! bump re-derives identically; the query layer labels estimates apart from measured tokens.

use blueplane::event::{Event, Platform, Source};
use blueplane::query::time::{GroupBy, Tz};
use blueplane::query::{self, Filter};
use blueplane::store::codec::Compressor;
use expect_test::expect;
use proptest::prelude::*;
use rusqlite::Connection;
use serde_json::{Value, json};

const DB: &str = "/home/u/.config/Cursor/User/globalStorage/state.vscdb";
const T0: i64 = 1_766_691_308_486; // 2025-12-25T19:35:08.486Z

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("time")
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn version_of(payload: &str) -> i64 {
    // Any deterministic content version will do here (capture uses xxh3).
    let mut h: i64 = 17;
    for b in payload.bytes() {
        h = h.wrapping_mul(31).wrapping_add(i64::from(b)) & 0x7FFF_FFFF_FFFF_FFFF;
    }
    h
}

fn db_event(kind: &str, key: &str, session: Option<&str>, ts: Option<i64>, v: &Value) -> Event {
    let payload = v.to_string();
    let version = version_of(&payload);
    Event {
        id: blueplane::event::db_row_id("cu", key, version),
        platform: Platform::Cursor,
        kind: kind.into(),
        session_id: session.map(String::from),
        timestamp_ms: ts,
        source: Source::DbRow {
            db: DB.into(),
            key: key.into(),
            version,
        },
        payload,
    }
}

fn composer(cid: &str, v: Value) -> Event {
    let ts = v["lastUpdatedAt"].as_i64().or(v["createdAt"].as_i64());
    db_event(
        "composer",
        &format!("composerData:{cid}"),
        Some(cid),
        ts,
        &v,
    )
}

fn bubble(cid: &str, bid: &str, ts: i64, mut v: Value) -> Event {
    v["composerId"] = json!(cid);
    v["bubbleId"] = json!(bid);
    v["_v"] = json!(3);
    v["createdAt"] = json!(iso(ts));
    db_event(
        "bubble",
        &format!("bubbleId:{cid}:{bid}"),
        Some(cid),
        Some(ts),
        &v,
    )
}

fn workspace(hash: &str, v: Value) -> Event {
    let payload = v.to_string();
    let version = version_of(&payload);
    Event {
        id: blueplane::event::db_row_id("cu", &format!("{hash}/composer.composerData"), version),
        platform: Platform::Cursor,
        kind: "workspace".into(),
        session_id: None,
        timestamp_ms: None,
        source: Source::DbRow {
            db: format!("/home/u/.config/Cursor/User/workspaceStorage/{hash}/state.vscdb"),
            key: "composer.composerData".into(),
            version,
        },
        payload,
    }
}

fn hook(cid: &str, event: &str, at: i64, mut v: Value) -> Event {
    v["hook_event_name"] = json!(event);
    v["conversation_id"] = json!(cid);
    v["cursor_version"] = json!("2.3.1");
    v["workspace_roots"] = json!(["/home/u/hooked"]);
    Event {
        id: format!("hk:{cid}:{event}:{at}"),
        platform: Platform::Cursor,
        kind: "hook".into(),
        session_id: Some(cid.into()),
        timestamp_ms: Some(at),
        source: Source::Hook {
            event: event.into(),
            received_at: at,
        },
        payload: v.to_string(),
    }
}

fn transcript(cid: &str, role: &str, line: u64, at: i64, v: Value) -> Event {
    let mut v = v;
    v["role"] = json!(role);
    v["line"] = json!(line);
    Event {
        id: format!("ca:{cid}:{line}"),
        platform: Platform::Cursor,
        kind: format!("transcript:{role}"),
        session_id: Some(cid.into()),
        timestamp_ms: Some(at),
        source: Source::FileLine {
            path: format!(
                "/home/u/.cursor/projects/home-u-cli/agent-transcripts/{cid}/{cid}.jsonl"
            ),
            offset: line * 100,
        },
        payload: v.to_string(),
    }
}

/// The main scenario, in capture order.
fn scenario() -> Vec<Event> {
    let s = T0;
    vec![
        composer(
            "c1",
            json!({"_v":10,"composerId":"c1","name":"Fix the flaky test","createdAt":s,
                   "lastUpdatedAt":s + 90_000,"status":"completed","unifiedMode":"agent",
                   "isAgentic":true,
                   "modelConfig":{"modelName":"claude-4.5-opus-high-thinking","maxMode":true},
                   "headers":[{"bubbleId":"u1","type":1},{"bubbleId":"a1","type":2},
                              {"bubbleId":"t1","type":2},{"bubbleId":"a2","type":2},
                              {"bubbleId":"u2","type":1},{"bubbleId":"a3","type":2}],
                   "usageData":{},"contextUsagePercent":41.2,"workspacePath":"/home/u/proj",
                   "subComposerIds":["c2"],"createdOnBranch":"main","bubbleCount":6,"legacy":false}),
        ),
        bubble(
            "c1",
            "u1",
            s + 1_000,
            json!({"type":1,"text":"please fix the flaky quokka test","textBytes":32,
                   "modelName":"claude-4.5-opus-high-thinking","requestId":"r1"}),
        ),
        bubble(
            "c1",
            "a1",
            s + 5_000,
            json!({"type":2,"text":"Looking at the test now.","textBytes":24,"requestId":"r1",
                   "modelName":"claude-4.5-sonnet","tokenCount":{"inputTokens":0,"outputTokens":0}}),
        ),
        bubble(
            "c1",
            "t1",
            s + 6_000,
            json!({"type":2,"requestId":"r1","tokenCount":{"inputTokens":0,"outputTokens":0},
                   "timingInfo":{"clientStartTime":4745281.3,"clientRpcSendTime":s + 6_000,
                                 "clientSettleTime":s + 8_000,"clientEndTime":s + 8_500},
                   "tool":{"name":"run_terminal_cmd","status":"completed","toolCallId":"tc1",
                           "args":{"command":{"chars":14}},"argsBytes":40,"resultBytes":400,
                           "error":false}}),
        ),
        bubble(
            "c1",
            "a2",
            s + 9_000,
            json!({"type":2,"text":"Fixed: the test raced the clock.","textBytes":32,
                   "requestId":"r1","modelName":"claude-4.5-sonnet",
                   "tokenCount":{"inputTokens":1200,"outputTokens":300}}),
        ),
        bubble(
            "c1",
            "u2",
            s + 60_000,
            json!({"type":1,"text":"thanks, now update the docs","textBytes":27,"requestId":"r2"}),
        ),
        bubble(
            "c1",
            "a3",
            s + 70_000,
            json!({"type":2,"text":"Docs updated.","textBytes":13,"thinkingBytes":80,
                   "requestId":"r2","modelName":"default",
                   "tokenCount":{"inputTokens":0,"outputTokens":0}}),
        ),
        // A failed tool call in the second turn.
        bubble(
            "c1",
            "t2",
            s + 71_000,
            json!({"type":2,"requestId":"r2",
                   "tool":{"name":"edit_file","status":"error","toolCallId":"tc2","argsBytes":12,
                           "error":true,"errorMessage":"file not found"}}),
        ),
        workspace(
            "ws1",
            json!({"workspace":"ws1","folder":"/home/u/elsewhere",
                   "composers":[{"composerId":"c1","name":"Fix the flaky test","createdAt":s},
                                {"composerId":"c3","name":"Old chat","createdAt":s - 1_000}]}),
        ),
        // A sub-composer on Cursor's own model (unpriced), measured.
        composer(
            "c2",
            json!({"_v":10,"composerId":"c2","name":"Search the repo","createdAt":s + 10_000,
                   "lastUpdatedAt":s + 20_000,"modelConfig":{"modelName":"composer-1"},
                   "parentComposerId":"c1","isSubagent":true,
                   "headers":[{"bubbleId":"su","type":1},{"bubbleId":"sa","type":2}]}),
        ),
        bubble(
            "c2",
            "su",
            s + 11_000,
            json!({"type":1,"text":"find the clock helper","textBytes":21}),
        ),
        bubble(
            "c2",
            "sa",
            s + 15_000,
            json!({"type":2,"text":"It is in tests/support.","textBytes":23,
                   "tokenCount":{"inputTokens":50,"outputTokens":20}}),
        ),
        // A composer whose project comes from its workspace listing only (legacy, no
        // workspacePath), and whose only bubble has no counts: an estimate.
        bubble(
            "c3",
            "x1",
            s - 500,
            json!({"type":1,"text":"hello","textBytes":5}),
        ),
        bubble(
            "c3",
            "x2",
            s - 400,
            json!({"type":2,"text":"Hi! How can I help?","textBytes":19,
                   "modelName":"gpt-5"}),
        ),
        db_event(
            "agent_blob",
            "agentKv:blob:5e1f",
            None,
            None,
            &json!({"role":"assistant","bytes":1234}),
        ),
        // Hooks of c1: lifecycle, the tool call, and a stop with token fields.
        hook(
            "c1",
            "sessionStart",
            s + 500,
            json!({"session_id":"c1","composer_mode":"agent","is_background_agent":false}),
        ),
        hook(
            "c1",
            "preToolUse",
            s + 5_900,
            json!({"tool_name":"Shell","tool_use_id":"tc1","generation_id":"r1"}),
        ),
        hook(
            "c1",
            "postToolUse",
            s + 8_400,
            json!({"tool_name":"Shell","tool_use_id":"tc1","duration":2100,"generation_id":"r1"}),
        ),
        hook(
            "c1",
            "stop",
            s + 80_000,
            json!({"status":"completed","loop_count":1,"generation_id":"g9",
                   "model":"claude-4.5-sonnet","input_tokens":500,"output_tokens":100,
                   "cache_read_tokens":1000,"cache_write_tokens":0}),
        ),
        hook(
            "c1",
            "sessionEnd",
            s + 95_000,
            json!({"session_id":"c1","reason":"user_closed","duration_ms":94_500}),
        ),
        // An agent CLI conversation.
        transcript(
            "c4",
            "user",
            0,
            s + 200_000,
            json!({"text":"list the files in src","textBytes":21}),
        ),
        transcript(
            "c4",
            "assistant",
            1,
            s + 201_000,
            json!({"text":"Listing them.","textBytes":13,
                   "tools":[{"name":"list_dir","id":"lt1","inputBytes":30,
                             "input":{"target_directory":"src"}}]}),
        ),
        // A user line that only returns a tool result is no prompt.
        transcript(
            "c4",
            "user",
            2,
            s + 202_000,
            json!({"text":"","textBytes":0,"results":[{"id":"lt1","bytes":120,"isError":true}]}),
        ),
        transcript(
            "c4",
            "turn_ended",
            3,
            s + 203_000,
            json!({"type":"turn_ended"}),
        ),
        // A sub-agent's line (its file under `subagents/`), in the parent's session.
        transcript(
            "c4",
            "assistant",
            10,
            s + 202_500,
            json!({"text":"Sub-agent reporting.","textBytes":20,"subagent":"s1"}),
        ),
    ]
}

/// Three streamed versions of one assistant bubble (c5), then its composer.
fn rewritten() -> Vec<Event> {
    let s = T0 + 1_000_000;
    let v = |text: &str, out: u64| {
        bubble(
            "c5",
            "b",
            s + 1_000,
            json!({"type":2,"text":text,"textBytes":text.len(),"requestId":"r",
                   "modelName":"claude-4.5-sonnet",
                   "tokenCount":{"inputTokens":if out > 0 { 40 } else { 0 },"outputTokens":out}}),
        )
    };
    vec![
        bubble(
            "c5",
            "u",
            s,
            json!({"type":1,"text":"tell me about wombats","textBytes":21}),
        ),
        v("Draft one", 0),
        v("Draft two about", 5),
        v("Final answer about quokkas", 20),
        composer(
            "c5",
            json!({"composerId":"c5","name":"Animals","createdAt":s,"lastUpdatedAt":s + 2_000,
                   "headers":[{"bubbleId":"u","type":1},{"bubbleId":"b","type":2}]}),
        ),
    ]
}

fn store() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().expect("dir");
    let conn = blueplane::store::open_writer(&dir.path().join("t.db")).expect("db");
    conn.execute_batch("PRAGMA synchronous=OFF")
        .expect("pragma");
    (dir, conn)
}

fn derive_all(conn: &mut Connection, events: &[&Event]) {
    let mut zlib = Compressor::default();
    blueplane::fast_path::insert_batch(conn, &mut zlib, events).expect("insert");
    while blueplane::slow_path::process_round(conn, 1_000)
        .expect("derive")
        .0
        > 0
    {}
}

const TABLES: &[(&str, &str)] = &[
    (
        "sessions",
        "SELECT session_id, platform, project_path, title, first_prompt, first_prompt_at,
                started_at, ended_at, git_branch, start_source, end_reason FROM sessions",
    ),
    (
        "messages",
        "SELECT event_id, session_id, agent_id, platform, role, is_prompt, ts, model, text
         FROM messages",
    ),
    (
        "api_responses",
        "SELECT dedup_key, event_id, session_id, project_path, ts, model, input_tokens,
                output_tokens, cache_creation_tokens, cache_read_tokens, cost_pusd, priced,
                token_source FROM api_responses",
    ),
    (
        "token_estimates",
        "SELECT key, session_id, platform, project_path, ts, model, input_tokens,
                output_tokens, cost_pusd, priced FROM token_estimates",
    ),
    (
        "tool_calls",
        "SELECT tool_use_id, session_id, platform, project_path, name, started_at, finished_at,
                is_error, input_meta, result_meta, hook_duration_ms, hook_failed FROM tool_calls",
    ),
    (
        "subagents",
        "SELECT session_id, agent_id, agent_type, started_at, ended_at FROM subagents",
    ),
    (
        "hook_events",
        "SELECT event_id, session_id, platform, ts, event, prompt_id, tool_use_id, tool_name,
                detail FROM hook_events",
    ),
    (
        "projects",
        "SELECT path, first_seen, last_seen FROM projects",
    ),
    (
        "derive_rejects",
        "SELECT event_id, reason FROM derive_rejects",
    ),
];

fn render(v: rusqlite::types::Value) -> String {
    use rusqlite::types::Value as V;
    match v {
        V::Null => "NULL".into(),
        V::Integer(i) => i.to_string(),
        V::Real(f) => f.to_string(),
        V::Text(t) => format!("{t:?}"),
        V::Blob(b) => format!("{b:?}"),
    }
}

/// Sorted rows of the derived tables, one line per row; FTS checked consistent.
fn dump(conn: &Connection) -> String {
    conn.execute(
        "INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')",
        [],
    )
    .expect("messages_fts is consistent");
    let (texts, docs): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM messages WHERE text IS NOT NULL),
                    (SELECT count(*) FROM messages_fts_docsize)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("fts");
    assert_eq!(docs, texts, "every text is indexed once");
    let mut out = String::new();
    for (name, sql) in TABLES {
        let mut stmt = conn.prepare(sql).expect("prepare");
        let n = stmt.column_count();
        let mut rows: Vec<String> = stmt
            .query_map([], |r| {
                (0..n)
                    .map(|i| r.get::<_, rusqlite::types::Value>(i).map(render))
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map(|v| v.join(" | "))
            })
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("rows");
        rows.sort();
        out.push_str(&format!("{name}:\n"));
        for r in rows {
            out.push_str(&format!("  {r}\n"));
        }
    }
    out
}

fn fts(conn: &Connection, q: &str) -> Vec<String> {
    conn.prepare(
        "SELECT m.event_id FROM messages_fts f JOIN messages m ON m.rowid = f.rowid
         WHERE messages_fts MATCH ?1 ORDER BY m.event_id",
    )
    .expect("prepare")
    .query_map([q], |r| r.get(0))
    .expect("query")
    .collect::<rusqlite::Result<_>>()
    .expect("rows")
}

#[test]
fn a_composer_with_bubbles_hooks_and_a_transcript_derives_these_rows() {
    let (_dir, mut conn) = store();
    let events = scenario();
    derive_all(&mut conn, &events.iter().collect::<Vec<_>>());
    expect![[r#"
        sessions:
          "c1" | "cursor" | "/home/u/proj" | "Fix the flaky test" | "please fix the flaky quokka test" | 1766691309486 | 1766691308486 | 1766691398486 | "main" | "agent" | "user_closed"
          "c2" | "cursor" | "/home/u/proj" | "Search the repo" | "find the clock helper" | 1766691319486 | 1766691318486 | 1766691328486 | NULL | NULL | NULL
          "c3" | "cursor" | "/home/u/elsewhere" | NULL | "hello" | 1766691307986 | 1766691307986 | 1766691308086 | NULL | NULL | NULL
          "c4" | "cursor" | NULL | NULL | "list the files in src" | 1766691508486 | 1766691508486 | 1766691511486 | NULL | NULL | NULL
        messages:
          "ca:c4:0" | "c4" | NULL | "cursor" | "user" | 1 | 1766691508486 | NULL | "list the files in src"
          "ca:c4:1" | "c4" | NULL | "cursor" | "assistant" | 0 | 1766691509486 | NULL | "Listing them."
          "ca:c4:10" | "c4" | "s1" | "cursor" | "assistant" | 0 | 1766691510986 | NULL | "Sub-agent reporting."
          "cu:msg:c1:a1" | "c1" | NULL | "cursor" | "assistant" | 0 | 1766691313486 | "claude-4.5-sonnet" | "Looking at the test now."
          "cu:msg:c1:a2" | "c1" | NULL | "cursor" | "assistant" | 0 | 1766691317486 | "claude-4.5-sonnet" | "Fixed: the test raced the clock."
          "cu:msg:c1:a3" | "c1" | NULL | "cursor" | "assistant" | 0 | 1766691378486 | "default" | "Docs updated."
          "cu:msg:c1:u1" | "c1" | NULL | "cursor" | "user" | 1 | 1766691309486 | "claude-4.5-opus-high-thinking" | "please fix the flaky quokka test"
          "cu:msg:c1:u2" | "c1" | NULL | "cursor" | "user" | 1 | 1766691368486 | NULL | "thanks, now update the docs"
          "cu:msg:c2:sa" | "c2" | NULL | "cursor" | "assistant" | 0 | 1766691323486 | NULL | "It is in tests/support."
          "cu:msg:c2:su" | "c2" | NULL | "cursor" | "user" | 1 | 1766691319486 | NULL | "find the clock helper"
          "cu:msg:c3:x1" | "c3" | NULL | "cursor" | "user" | 1 | 1766691307986 | NULL | "hello"
          "cu:msg:c3:x2" | "c3" | NULL | "cursor" | "assistant" | 0 | 1766691308086 | "gpt-5" | "Hi! How can I help?"
        api_responses:
          "cu:c1:g9" | "hk:c1:stop:1766691388486" | "c1" | "/home/u/proj" | 1766691388486 | "claude-4.5-sonnet" | 500 | 100 | 0 | 1000 | 3300000000 | 1 | "hook"
          "cu:c1:r1" | "cu:msg:c1:a2" | "c1" | "/home/u/proj" | 1766691317486 | "claude-4.5-sonnet" | 1200 | 300 | 0 | 0 | 8100000000 | 1 | "cursor"
          "cu:c2:sa" | "cu:msg:c2:sa" | "c2" | "/home/u/proj" | 1766691323486 | "composer-1" | 50 | 20 | 0 | 0 | 0 | 0 | "cursor"
        token_estimates:
          "cu:c1:est:u2" | "c1" | "cursor" | "/home/u/proj" | 1766691378486 | "claude-4.5-opus-high-thinking" | 7 | 27 | 710000000 | 1
          "cu:c3:est:x1" | "c3" | "cursor" | "/home/u/elsewhere" | 1766691308086 | "gpt-5" | 2 | 5 | 52500000 | 1
        tool_calls:
          "lt1" | "c4" | "cursor" | NULL | "list_dir" | 1766691509486 | 1766691510486 | 1 | "{\"bytes\":30,\"input\":{\"target_directory\":\"src\"}}" | "{\"bytes\":120}" | NULL | NULL
          "tc1" | "c1" | "cursor" | "/home/u/proj" | "run_terminal_cmd" | 1766691314386 | 1766691316986 | 0 | "{\"args\":{\"command\":{\"chars\":14}},\"bytes\":40}" | "{\"bytes\":400,\"status\":\"completed\"}" | 2100 | 0
          "tc2" | "c1" | "cursor" | "/home/u/proj" | "edit_file" | 1766691379486 | NULL | 1 | "{\"bytes\":12}" | "{\"error\":\"file not found\",\"status\":\"error\"}" | NULL | NULL
        subagents:
          "c1" | "c2" | "subcomposer" | 1766691308486 | 1766691398486
          "c4" | "s1" | NULL | 1766691510986 | 1766691510986
        hook_events:
          "hk:c1:postToolUse:1766691316886" | "c1" | "cursor" | 1766691316886 | "postToolUse" | "r1" | "tc1" | "Shell" | "{\"cursor_version\":\"2.3.1\",\"duration\":2100,\"generation_id\":\"r1\"}"
          "hk:c1:preToolUse:1766691314386" | "c1" | "cursor" | 1766691314386 | "preToolUse" | "r1" | "tc1" | "Shell" | "{\"cursor_version\":\"2.3.1\",\"generation_id\":\"r1\"}"
          "hk:c1:sessionEnd:1766691403486" | "c1" | "cursor" | 1766691403486 | "sessionEnd" | NULL | NULL | NULL | "{\"cursor_version\":\"2.3.1\",\"duration_ms\":94500,\"reason\":\"user_closed\"}"
          "hk:c1:sessionStart:1766691308986" | "c1" | "cursor" | 1766691308986 | "sessionStart" | NULL | NULL | NULL | "{\"composer_mode\":\"agent\",\"cursor_version\":\"2.3.1\",\"is_background_agent\":false}"
          "hk:c1:stop:1766691388486" | "c1" | "cursor" | 1766691388486 | "stop" | "g9" | NULL | NULL | "{\"cache_read_tokens\":1000,\"cache_write_tokens\":0,\"cursor_version\":\"2.3.1\",\"generation_id\":\"g9\",\"input_tokens\":500,\"loop_count\":1,\"model\":\"claude-4.5-sonnet\",\"output_tokens\":100,\"status\":\"completed\"}"
        projects:
          "/home/u/hooked" | 1766691314386 | 1766691388486
          "/home/u/proj" | 1766691308486 | 1766691398486
        derive_rejects:
    "#]].assert_eq(&dump(&conn));
}

#[test]
fn a_bubble_rewritten_three_times_is_one_message_with_its_last_text_counted_once() {
    let (_dir, mut conn) = store();
    let events = rewritten();
    // Each version in its own round, as streaming delivers them.
    for e in &events {
        derive_all(&mut conn, &[e]);
    }
    let (messages, responses, output, estimates): (i64, i64, i64, i64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM messages WHERE session_id = 'c5' AND role = 'assistant'),
                    (SELECT count(*) FROM api_responses WHERE session_id = 'c5'),
                    (SELECT sum(output_tokens) FROM api_responses WHERE session_id = 'c5'),
                    (SELECT count(*) FROM token_estimates WHERE session_id = 'c5')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .expect("counts");
    assert_eq!((messages, responses, output, estimates), (1, 1, 20, 0));
    let text: String = conn
        .query_row(
            "SELECT text FROM messages WHERE event_id = 'cu:msg:c5:b'",
            [],
            |r| r.get(0),
        )
        .expect("text");
    assert_eq!(text, "Final answer about quokkas");
    assert_eq!(fts(&conn, "quokkas"), ["cu:msg:c5:b"]);
    assert!(fts(&conn, "draft").is_empty(), "old versions left in FTS");
    // An older version delivered again later (a re-scan, a copy of the database: same
    // content, same id) is not stored again and changes nothing.
    let before = dump(&conn);
    let mut zlib = Compressor::default();
    let stale = events[1].clone();
    blueplane::fast_path::insert_batch(&mut conn, &mut zlib, &[&stale]).expect("insert");
    blueplane::slow_path::process_round(&mut conn, 10).expect("derive");
    assert_eq!(dump(&conn), before);
    assert_eq!(fts(&conn, "quokkas"), ["cu:msg:c5:b"]);
}

#[test]
fn an_estimate_disappears_when_measured_counts_for_its_turn_arrive() {
    let (_dir, mut conn) = store();
    let s = T0 + 2_000_000;
    let user = bubble(
        "c6",
        "u",
        s,
        json!({"type":1,"text":"hi there","textBytes":8}),
    );
    let unmeasured = bubble(
        "c6",
        "a",
        s + 1_000,
        json!({"type":2,"text":"Hello, what shall we build?","textBytes":27,"requestId":"q1",
               "modelName":"claude-4.5-sonnet","tokenCount":{"inputTokens":0,"outputTokens":0}}),
    );
    derive_all(&mut conn, &[&user, &unmeasured]);
    let est: (i64, i64, i64) = conn
        .query_row(
            "SELECT input_tokens, output_tokens, priced FROM token_estimates WHERE session_id = 'c6'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("an estimate");
    // ceil(8 / 4) in, ceil(27 / 4) out, priced as Sonnet 4.5.
    assert_eq!(est, (2, 7, 1));
    let listed = query::list_sessions(&conn, &Filter::default(), None, None).expect("list");
    let c6 = listed
        .sessions
        .iter()
        .find(|x| x.session_id == "c6")
        .expect("c6");
    assert_eq!(c6.token_source.as_deref(), Some("estimate"));
    assert_eq!(c6.tokens.total, 0, "estimates are not measured tokens");
    assert_eq!(c6.tokens_estimated.as_ref().map(|t| t.total), Some(9));
    // The stop hook of that generation measures the turn: the estimate goes.
    let stop = hook(
        "c6",
        "stop",
        s + 2_000,
        json!({"status":"completed","generation_id":"q1","model":"claude-4.5-sonnet",
               "input_tokens":900,"output_tokens":12}),
    );
    derive_all(&mut conn, &[&stop]);
    let n: i64 = conn
        .query_row("SELECT count(*) FROM token_estimates", [], |r| r.get(0))
        .expect("count");
    assert_eq!(n, 0);
    let src: String = conn
        .query_row(
            "SELECT token_source FROM api_responses WHERE dedup_key = 'cu:c6:q1'",
            [],
            |r| r.get(0),
        )
        .expect("hook row");
    assert_eq!(src, "hook");
    // The bubble's own counts arrive later (a newer version), smaller than the hook's: one
    // row for the turn, the larger account.
    let measured = bubble(
        "c6",
        "a",
        s + 1_000,
        json!({"type":2,"text":"Hello, what shall we build?","textBytes":27,"requestId":"q1",
               "modelName":"claude-4.5-sonnet","tokenCount":{"inputTokens":800,"outputTokens":12}}),
    );
    derive_all(&mut conn, &[&measured]);
    let rows: Vec<(String, i64, String)> = conn
        .prepare("SELECT dedup_key, input_tokens, token_source FROM api_responses WHERE session_id = 'c6'")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("rows");
    assert_eq!(rows, [("cu:c6:q1".to_string(), 900, "hook".to_string())]);
    let listed = query::list_sessions(&conn, &Filter::default(), None, None).expect("list");
    let c6 = listed
        .sessions
        .iter()
        .find(|x| x.session_id == "c6")
        .expect("c6");
    assert_eq!(c6.token_source.as_deref(), Some("hook"));
    assert_eq!(c6.tokens_estimated, None);
    assert_eq!(c6.tokens.total, 912);
}

#[test]
fn unpriced_cursor_models_are_flagged_and_estimates_stay_apart_in_metrics() {
    let (_dir, mut conn) = store();
    let events = scenario();
    derive_all(&mut conn, &events.iter().collect::<Vec<_>>());
    let listed = query::list_sessions(&conn, &Filter::default(), Some(50), None).expect("list");
    let by = |id: &str| {
        listed
            .sessions
            .iter()
            .find(|s| s.session_id == id)
            .unwrap_or_else(|| panic!("{id} listed"))
            .clone()
    };
    let c2 = by("c2");
    assert_eq!((c2.responses, c2.unpriced_responses), (1, 1));
    assert_eq!(c2.models, ["composer-1"]);
    assert_eq!(c2.cost_usd, 0.0);
    let c1 = by("c1");
    assert_eq!(c1.token_source.as_deref(), Some("mixed"));
    assert_eq!(c1.platform, "cursor");
    assert_eq!(c1.project_path.as_deref(), Some("/home/u/proj"));
    assert_eq!(c1.title.as_deref(), Some("Fix the flaky test"));
    assert_eq!(c1.tokens.input, 1200 + 500);
    assert!(c1.tokens_estimated.as_ref().is_some_and(|t| t.total > 0));
    assert_eq!((c1.tool_calls, c1.tool_errors), (2, 1));
    let c3 = by("c3");
    assert_eq!(c3.project_path.as_deref(), Some("/home/u/elsewhere"));
    assert_eq!(c3.token_source.as_deref(), Some("estimate"));
    let summary = query::session_summary(&conn, "c1").expect("summary");
    assert_eq!(summary.subagents, 1);
    assert_eq!(
        summary.first_prompt.as_deref(),
        Some("please fix the flaky quokka test")
    );
    // Metrics: estimates beside, never inside, the measured figures.
    let tz = Tz::parse(Some("UTC")).expect("tz");
    let f = Filter {
        platform: Some("cursor".into()),
        ..Filter::default()
    };
    for g in [GroupBy::Day, GroupBy::Session, GroupBy::Model] {
        let m = query::get_metrics(&conn, None, &f, g, &tz).expect("metrics");
        let measured: i64 = conn
            .query_row(
                "SELECT sum(input_tokens + output_tokens + cache_creation_tokens + cache_read_tokens)
                 FROM api_responses WHERE platform = 'cursor'",
                [],
                |r| r.get(0),
            )
            .expect("sum");
        let estimated: i64 = conn
            .query_row(
                "SELECT sum(input_tokens + output_tokens) FROM token_estimates",
                [],
                |r| r.get(0),
            )
            .expect("sum");
        assert_eq!(m.totals.tokens.total, measured, "{g:?}");
        assert_eq!(m.totals.estimated_tokens, Some(estimated), "{g:?}");
        assert_eq!(
            m.rows
                .iter()
                .filter_map(|r| r.estimated_tokens)
                .sum::<i64>(),
            estimated,
            "{g:?}"
        );
        assert_eq!(m.totals.unpriced_responses, 1, "{g:?}");
        // c1, c2 and c3 (c4, the agent transcript, has no tokens at all).
        assert_eq!(m.totals.sessions, 3, "{g:?}");
    }
}

#[test]
fn out_of_range_token_counts_are_rejected_and_nothing_of_the_bubble_is_written() {
    let (_dir, mut conn) = store();
    let bad = bubble(
        "c7",
        "a",
        T0,
        json!({"type":2,"text":"absurd","tokenCount":{"inputTokens":5_000_000_000_u64,"outputTokens":1}}),
    );
    let negative = hook(
        "c7",
        "stop",
        T0 + 1,
        json!({"generation_id":"g","input_tokens":-3,"output_tokens":1}),
    );
    derive_all(&mut conn, &[&bad, &negative]);
    let (rejects, messages, facts, responses): (i64, i64, i64, i64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM derive_rejects), (SELECT count(*) FROM messages),
                    (SELECT count(*) FROM cursor_bubbles), (SELECT count(*) FROM api_responses)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .expect("counts");
    assert_eq!((rejects, messages, facts, responses), (2, 0, 0, 0));
}

#[test]
fn a_derive_version_bump_re_derives_identically() {
    let (_dir, mut conn) = store();
    let mut events = scenario();
    events.extend(rewritten());
    derive_all(&mut conn, &events.iter().collect::<Vec<_>>());
    let before = dump(&conn);
    conn.execute(
        "UPDATE pipeline_state SET value = 0 WHERE key = 'derive_version:cursor'",
        [],
    )
    .expect("bump");
    assert!(blueplane::slow_path::derive::ensure_versions(&mut conn).expect("ensure"));
    let empty: i64 = conn
        .query_row(
            "SELECT (SELECT count(*) FROM token_estimates) + (SELECT count(*) FROM cursor_versions)
                    + (SELECT count(*) FROM cursor_bubbles) + (SELECT count(*) FROM messages)",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(empty, 0, "derived tables cleared");
    while blueplane::slow_path::process_round(&mut conn, 7)
        .expect("derive")
        .0
        > 0
    {}
    assert_eq!(dump(&conn), before);
}

/// An arrival order of `events` that keeps the versions of one database key in order.
fn arrival(events: &[Event], keys: &[u64]) -> Vec<usize> {
    let key_of = |e: &Event| match &e.source {
        Source::DbRow { key, .. } => key.clone(),
        _ => e.id.clone(),
    };
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by_key(|&i| keys[i % keys.len()]);
    // Re-impose the original order among the events of each key.
    let mut by_key: std::collections::BTreeMap<String, Vec<usize>> = Default::default();
    for (i, e) in events.iter().enumerate() {
        by_key.entry(key_of(e)).or_default().push(i);
    }
    let mut next: std::collections::BTreeMap<String, usize> = Default::default();
    order
        .iter()
        .map(|&i| {
            let k = key_of(&events[i]);
            let n = next.entry(k.clone()).or_default();
            let pick = by_key[&k][*n];
            *n += 1;
            pick
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn cursor_records_derive_the_same_in_any_order(
        keys in prop::collection::vec(any::<u64>(), 8..40),
        batches in prop::collection::vec((1usize..6, 1usize..5), 1..8),
        dups in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
    ) {
        let mut events = scenario();
        events.extend(rewritten());
        let want = {
            let (_dir, mut conn) = store();
            derive_all(&mut conn, &events.iter().collect::<Vec<_>>());
            dump(&conn)
        };
        let order = arrival(&events, &keys);
        let mut seq: Vec<&Event> = order.iter().map(|&i| &events[i]).collect();
        // The same event delivered twice is stored once (same id).
        for d in &dups {
            let e = seq[d.index(seq.len())];
            seq.push(e);
        }
        let (_dir, mut conn) = store();
        let mut zlib = Compressor::default();
        let mut rest = &seq[..];
        let mut step = batches.iter().cycle();
        while !rest.is_empty() {
            let &(size, limit) = step.next().expect("batches");
            let (batch, tail) = rest.split_at(size.min(rest.len()));
            rest = tail;
            blueplane::fast_path::insert_batch(&mut conn, &mut zlib, batch).expect("insert");
            blueplane::slow_path::process_round(&mut conn, limit).expect("derive");
        }
        while blueplane::slow_path::process_round(&mut conn, 50).expect("derive").0 > 0 {}
        let got = dump(&conn);
        let diff: Vec<String> = want
            .lines()
            .filter(|l| !got.lines().any(|g| g == *l))
            .map(|l| format!("- {l}"))
            .chain(got.lines().filter(|l| !want.lines().any(|w| w == *l)).map(|l| format!("+ {l}")))
            .collect();
        prop_assert!(got == want, "order {:?}: {:#?}", order, diff);
    }
}
