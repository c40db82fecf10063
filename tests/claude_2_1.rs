//! Claude Code 2.1.328 transcripts (`tests/data/claude-2.1`, see its README for what each
//! line exercises and where the expected figures come from), captured in the default
//! `standard` privacy mode:
//!
//! - every record type is captured, none is bad input or a dead letter (Claude Code adds
//!   types all the time: claude-code-2.1.md §3);
//! - the logged API requests (`api-request`, `api-request-blob`), MCP structured results and
//!   free text in unknown record types are stored nowhere and shown by no command;
//! - the session's figures are the README's: the `<synthetic>` API error is no response, the
//!   title comes from the `custom-title` line, the 17-hex sub-agent is linked;
//! - `status --json` counts, per record type, the lines of types nothing is derived from.

mod support;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::{Env, count};

const SESSION: &str = "7f3c9a2e-5b1d-4e8a-9c6f-2d4b8e1a0c53";
const AGENT: &str = "a71cb583f126d169d";
const MODEL: &str = "claude-sonnet-4-5-20250929";

/// README "Expected figures".
const FILES: i64 = 2;
const LINES: i64 = 46;
const RESPONSES: i64 = 7;
const INPUT: i64 = 14;
const OUTPUT: i64 = 901;
const CACHE_CREATION: i64 = 25_564;
const CACHE_READ: i64 = 116_866;
const USER_PROMPTS: i64 = 3;
const TOOL_CALLS: i64 = 4;
/// `cost-state.totalCostUSD` of the last `cost-state` line (no compaction: equals the sum
/// over the de-duplicated responses at the embedded prices).
const COST_USD: f64 = 0.171_706_8;
const TITLE: &str = "Retry budget metrics review";

/// Planted in the fixture where no stored or printed data may carry them.
const PLANTED: &[&str] = &[
    // api-request and api-request-blob: the logged prompt (file contents).
    "sk-ant-api03-PLANTEDsecretXYZ0123456789abcdefghij",
    "PLANTEDsecretXYZ",
    "fn planted_snippet_api_request()",
    "planted_snippet_api_request",
    // user tool_result line: mcpMeta.structuredContent.
    "PLANTED_STRUCTURED_CONTENT_42",
    // tools-used line: a free-text field of a record type the filter has no rule for.
    "PLANTED_UNKNOWN_FIELD_77",
];

/// Record types of the fixture that nothing is derived from, with their line counts.
const UNDERIVED_TYPES: &[(&str, i64)] = &[
    ("atis-latch", 1),
    ("api-request-shape", 1),
    ("api-request-blob", 1),
    ("api-request", 1),
    ("tools-used", 1),
    ("worktree-state", 1),
];

fn fixture() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/claude-2.1");
    assert!(
        p.join("projects").is_dir(),
        "fixture missing: {}",
        p.display()
    );
    p
}

/// A fresh environment with the fixture backfilled; returns the backfill summary.
fn backfilled() -> (Env, Value) {
    let env = Env::new(&[fixture()]);
    let summary = env.json(&["backfill", "--json"]);
    (env, summary)
}

fn xlen(env: &Env, key: &str) -> i64 {
    match support::redis::command(&env.redis.socket, &["XLEN", key]).expect("XLEN") {
        support::redis::Resp::Integer(n) => n,
        other => panic!("XLEN {key}: {other:?}"),
    }
}

fn session_of(list: &Value) -> &Value {
    list["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .find(|s| s["session_id"] == SESSION)
        .unwrap_or_else(|| panic!("session {SESSION} not listed: {list}"))
}

fn tokens() -> Value {
    json!({
        "input": INPUT,
        "output": OUTPUT,
        "cache_creation": CACHE_CREATION,
        "cache_read": CACHE_READ,
        "total": INPUT + OUTPUT + CACHE_CREATION + CACHE_READ,
    })
}

#[test]
fn every_record_type_is_captured_and_nothing_is_dead_lettered() {
    let (env, s) = backfilled();
    // memory/, .session-aliases and the .meta.json sidecar are not transcripts.
    assert_eq!(s["files"], FILES, "{s}");
    assert_eq!(
        s["bad_lines"], 0,
        "unknown record types are normal input, not bad lines: {s}"
    );
    assert_eq!(s["events"], LINES, "{s}");
    assert_eq!(xlen(&env, "bp:dlq"), 0, "dead letters in bp:dlq");
    let status = env.json(&["status", "--json"]);
    assert_eq!(status["dlq_size"], 0, "{status}");
    assert_eq!(
        status["counters"]["bad_input"].as_i64().unwrap_or(0),
        0,
        "{status}"
    );
}

fn assert_clean(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for p in PLANTED {
        assert!(!text.contains(p), "{what} contains '{p}'");
    }
}

/// Every raw payload (decompressed), every text or blob value of every other table, and
/// the database files themselves. Returns the number of values scanned.
fn scan_sqlite(db: &Path) -> usize {
    let c = rusqlite::Connection::open(db).expect("db");
    let mut scanned = 0;
    let kinds: Vec<String> = c
        .prepare("SELECT kind FROM raw_traces_text ORDER BY seq")
        .expect("prep")
        .query_map([], |r| r.get(0))
        .expect("q")
        .collect::<Result<_, _>>()
        .expect("rows");
    let payloads = blueplane::store::blocks::all_texts(&c).expect("payloads");
    assert!(!payloads.is_empty(), "no raw_traces rows");
    assert_eq!(kinds.len(), payloads.len());
    for (kind, (_, p)) in kinds.into_iter().zip(payloads) {
        let s = p.expect("zlib");
        assert_clean(
            &format!("raw_traces payload of a '{kind}' record"),
            s.as_bytes(),
        );
        scanned += 1;
    }
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .expect("prep")
        .query_map([], |r| r.get(0))
        .expect("q")
        .collect::<Result<_, _>>()
        .expect("rows");
    for t in tables {
        if t == "raw_traces" || t.starts_with("sqlite_") {
            continue;
        }
        let mut stmt = c
            .prepare(&format!("SELECT * FROM \"{t}\""))
            .expect("select");
        let cols = stmt.column_count();
        let mut rows = stmt.query([]).expect("query");
        while let Some(r) = rows.next().expect("row") {
            for i in 0..cols {
                let bytes = match r.get::<_, rusqlite::types::Value>(i).expect("col") {
                    rusqlite::types::Value::Text(s) => s.into_bytes(),
                    rusqlite::types::Value::Blob(b) => b,
                    _ => continue,
                };
                assert_clean(&format!("table {t}"), &bytes);
                scanned += 1;
            }
        }
    }
    for suffix in ["", "-wal"] {
        let f = PathBuf::from(format!("{}{suffix}", db.display()));
        if let Ok(b) = std::fs::read(&f) {
            assert_clean(&format!("file {}", f.display()), &b);
        }
    }
    scanned
}

/// Everything Redis was asked to store is in its append-only file.
fn scan_redis_aof(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir.join("appendonlydir"))
        .expect("aof dir")
        .flatten()
    {
        let b = std::fs::read(e.path()).expect("read aof");
        assert_clean(&format!("redis {}", e.path().display()), &b);
        n += b.len();
    }
    n
}

#[test]
fn request_logs_structured_results_and_unknown_fields_are_stored_nowhere() {
    let (env, s) = backfilled();
    let values = scan_sqlite(&env.db());
    let aof_bytes = scan_redis_aof(env.redis.dir.path());
    assert!(values > 0 && aof_bytes > 0);
    for args in [
        vec!["sessions", "--json"],
        vec!["search", "planted", "--json"],
        vec!["search", "planted_snippet_api_request", "--json"],
        vec!["search", "PLANTED_STRUCTURED_CONTENT_42", "--json"],
        vec!["report", "session", "--json"],
        vec!["report", "daily", "--json", "-z", "UTC"],
        vec!["status", "--json"],
    ] {
        let out = env.run(&args);
        assert_clean(&format!("output of {args:?}"), &out.stdout);
    }
    // The scans above only mean something if the planted lines were captured at all.
    assert_eq!(
        (s["events"].as_i64(), s["bad_lines"].as_i64()),
        (Some(LINES), Some(0)),
        "every line (the request logs included) must be captured, filtered: {s}"
    );
}

#[test]
fn session_figures_are_the_readmes() {
    let (env, _) = backfilled();
    let db = env.db();
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM api_responses WHERE model = '<synthetic>'"
        ),
        0,
        "the <synthetic> API-error line (isApiErrorMessage, apiErrorStatus 529) is not an API response"
    );
    let list = env.json(&["sessions", "--json"]);
    assert_eq!(
        list["sessions"].as_array().map(Vec::len),
        Some(1),
        "one session (the sub-agent belongs to it): {list}"
    );
    let s = session_of(&list);
    let got = json!({
        "project_path": s["project_path"],
        "models": s["models"],
        "responses": s["responses"],
        "tokens": s["tokens"],
        "user_prompts": s["user_prompts"],
        "tool_calls": s["tool_calls"],
        "tool_errors": s["tool_errors"],
        "unpriced_responses": s["unpriced_responses"],
    });
    let want = json!({
        "project_path": "/home/dev/app",
        "models": [MODEL],
        "responses": RESPONSES,
        "tokens": tokens(),
        "user_prompts": USER_PROMPTS,
        "tool_calls": TOOL_CALLS,
        "tool_errors": 0,
        "unpriced_responses": 0,
    });
    assert_eq!(got, want, "sessions --json");
    let cost = s["cost_usd"].as_f64().expect("cost_usd");
    assert!(
        (cost - COST_USD).abs() < 1e-9,
        "cost {cost} != cost-state.totalCostUSD {COST_USD}"
    );
    // The sub-agent's share (README: 2 responses, 5 / 170 / 8330 / 6120).
    let c = rusqlite::Connection::open(&db).expect("db");
    let sub: (i64, i64, i64, i64, i64) = c
        .query_row(
            "SELECT count(*), sum(input_tokens), sum(output_tokens), sum(cache_creation_tokens),
                    sum(cache_read_tokens)
             FROM api_responses WHERE session_id = ?1 AND agent_id = ?2",
            [SESSION, AGENT],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .expect("sub-agent responses");
    assert_eq!(sub, (2, 5, 170, 8330, 6120), "sub-agent responses");
    // The same figures by day (UTC) and by session.
    let daily = env.json(&["report", "daily", "--json", "-z", "UTC"]);
    let rows: Vec<Value> = daily["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| json!([r["key"], r["responses"], r["tokens"], r["tool_calls"]]))
        .collect();
    assert_eq!(
        rows,
        vec![json!(["2026-12-03", RESPONSES, tokens(), TOOL_CALLS])],
        "report daily: {daily}"
    );
    let by_session = env.json(&["report", "session", "--json"]);
    let row = by_session["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["key"] == SESSION)
        .unwrap_or_else(|| panic!("no row for {SESSION}: {by_session}"));
    assert_eq!(
        json!([row["responses"], row["tokens"], row["tool_calls"]]),
        json!([RESPONSES, tokens(), TOOL_CALLS]),
        "report session: {row}"
    );
}

#[test]
fn session_title_comes_from_the_title_records() {
    let (env, _) = backfilled();
    let list = env.json(&["sessions", "--json"]);
    assert_eq!(
        session_of(&list)["title"],
        TITLE,
        "title from the custom-title line (the ai-title line says 'Check token usage and retry tests')"
    );
}

#[test]
fn the_17_hex_sub_agent_is_linked_to_its_session() {
    let (env, _) = backfilled();
    assert_eq!(
        count(
            &env.db(),
            &format!(
                "SELECT count(*) FROM subagents WHERE session_id = '{SESSION}' AND agent_id = '{AGENT}'"
            )
        ),
        1
    );
    assert_eq!(count(&env.db(), "SELECT count(*) FROM subagents"), 1);
}

#[test]
fn status_counts_the_record_types_nothing_is_derived_from() {
    let (env, _) = backfilled();
    let status = env.json(&["status", "--json"]);
    let types = status["record_types"]
        .as_object()
        .unwrap_or_else(|| panic!("status --json has no 'record_types' object: {status}"));
    for (t, n) in UNDERIVED_TYPES {
        assert_eq!(
            types.get(*t).and_then(Value::as_i64),
            Some(*n),
            "record_types[{t}]: {status}"
        );
    }
}
