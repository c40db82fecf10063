//! Cursor end to end, in a mixed history: the bundled Claude Code samples and the sample Cursor data dir (`samples/cursor`, built into real
//! `state.vscdb` files by `tools/cursor_sample.py`), Cursor hook payloads through `blueplane
//! hook cursor` and an agent CLI transcript, backfilled together, then asked with the official
//! Python MCP client (`tests/mcp/test_cursor.py`) over stdio.
//!
//! Proves issue 8's user story: Cursor chats show up as `platform: cursor` sessions with their
//! project, title, prompts and tool calls; Cursor's own token counts are measured, the turns
//! without counts are estimates kept apart (`tokens_estimated`, `token_source`); the `stop`
//! hook's counts for the same generation as a bubble's are counted once; a hook's tool duration
//! joins the bubble's tool call; search finds Cursor prompts; and no credential of the
//! database reaches SQLite, Redis or any answer.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use support::{Env, count, raw_payloads};

const MODERN: &str = "3f2a9c1e-5b7d-4e21-9a0c-1d2e3f4a5b6c";
const LEGACY: &str = "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9";
const AGENT: &str = "7c6b5a49-3827-4615-a4b3-c2d1e0f9a8b7";
/// Planted in samples/cursor/global.json; none may leave Cursor's database.
const CREDENTIALS: &[&str] = &[
    "eyJhbGciOiJIUzI1NiJ9",
    "refresh-token-do-not-store",
    "c2VjcmV0LWJsb2Ita2V5LWRvLW5vdC1zdG9yZQ",
];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

struct Cursor {
    env: Env,
    data_dir: PathBuf,
    home: PathBuf,
}

impl Cursor {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.env.cmd(args);
        c.env("CURSOR_DATA_DIR", &self.data_dir)
            .env("CURSOR_HOME", &self.home);
        c
    }

    fn hook(&self, payload: &Value) {
        let mut child = self
            .cmd(&["hook", "cursor"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run hook cursor");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(payload.to_string().as_bytes())
            .expect("write payload");
        let out = child.wait_with_output().expect("hook cursor");
        assert!(out.status.success(), "hook cursor exit {}", out.status);
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "{}");
    }
}

fn setup() -> Cursor {
    let env = Env::new(&[repo().join("samples/claude")]);
    let data_dir = env.home.path().join("cursor-data");
    let home = env.home.path().join("cursor-home");
    let python = support::python::python();
    let st = Command::new(&python)
        .arg(repo().join("tools/cursor_sample.py"))
        .arg(&data_dir)
        .status()
        .expect("run tools/cursor_sample.py");
    assert!(st.success(), "tools/cursor_sample.py failed");
    let transcript = home
        .join("projects/home-dev-shop/agent-transcripts")
        .join(AGENT)
        .join(format!("{AGENT}.jsonl"));
    std::fs::create_dir_all(transcript.parent().expect("parent")).expect("mkdir");
    let lines = [
        r#"{"role":"user","message":{"content":[{"type":"text","text":"<user_query>\nWhy is the checkout page slow?\n</user_query>"}]}}"#,
        r#"{"role":"assistant","message":{"content":[{"type":"text","text":"The checkout page loads the whole catalogue; I will paginate it."}]}}"#,
    ];
    std::fs::write(&transcript, lines.join("\n") + "\n").expect("write transcript");
    Cursor {
        env,
        data_dir,
        home,
    }
}

fn ask(c: &Cursor) -> Value {
    let python = support::python::python();
    let mut cmd = Command::new(&python);
    cmd.arg(repo().join("tests/mcp/test_cursor.py"))
        .arg("--bin")
        .arg(support::BIN);
    for (k, v) in c.cmd(&[]).get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let out = cmd.output().expect("run test_cursor.py");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "test_cursor.py failed ({}):\n{stderr}",
        out.status
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "test_cursor.py printed no JSON ({e}): {}\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn session<'a>(answer: &'a Value, id: &str) -> &'a Value {
    answer["sessions"]["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .find(|s| s["session_id"] == id)
        .unwrap_or_else(|| panic!("no session {id} in {}", answer["sessions"]))
}

#[test]
fn cursor_chats_hooks_and_agent_transcripts_answer_over_mcp() {
    let c = setup();
    // The `stop` hook of the modern composer's generation `r-1` repeats the counts Cursor
    // wrote on that turn's final bubble: one response, not two.
    c.hook(&serde_json::json!({
        "hook_event_name": "stop", "conversation_id": MODERN, "generation_id": "r-1",
        "model": "claude-4.5-sonnet", "status": "completed", "loop_count": 3,
        "input_tokens": 18250, "output_tokens": 920, "cursor_version": "2.3.1",
        "workspace_roots": ["/home/dev/shop"], "user_email": "dev@example.com"
    }));
    c.hook(&serde_json::json!({
        "hook_event_name": "postToolUse", "conversation_id": MODERN, "generation_id": "r-1",
        "tool_name": "Shell", "tool_use_id": "toolu_cur_01", "duration": 1840,
        "tool_input": {"command": "npm test -- checkout"}, "tool_output": "FAIL checkout.spec.ts",
        "cursor_version": "2.3.1", "workspace_roots": ["/home/dev/shop"]
    }));
    let out = c.cmd(&["backfill", "--json"]).output().expect("backfill");
    assert!(
        out.status.success(),
        "backfill: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).expect("backfill json");
    assert_eq!(summary["bad_lines"], 0, "{summary}");

    let a = ask(&c);
    let sessions = a["sessions"]["sessions"].as_array().expect("sessions");
    assert_eq!(
        sessions.len(),
        3,
        "two composers and one agent transcript: {sessions:?}"
    );
    assert!(sessions.iter().all(|s| s["platform"] == "cursor"));

    let m = session(&a, MODERN);
    assert_eq!(m["title"], "Fix flaky checkout test");
    assert_eq!(m["project_path"], "/home/dev/shop");
    assert_eq!(m["user_prompts"], 2, "{m}");
    assert_eq!(m["tool_calls"], 2, "{m}");
    assert_eq!(
        m["tokens"]["input"], 18250,
        "bubble and stop hook counted once: {m}"
    );
    assert_eq!(m["tokens"]["output"], 920, "{m}");

    // The legacy composer has no workspace link of its own: its project comes from the
    // workspace's composer index; it has no counts, so only an estimate, labelled.
    let l = session(&a, LEGACY);
    assert_eq!(l["project_path"], "/home/dev/shop", "{l}");
    assert_eq!(l["tokens"]["total"], 0, "{l}");
    assert_eq!(l["token_source"], "estimate", "{l}");
    assert!(
        l["tokens_estimated"]["output"].as_i64().unwrap_or(0) > 0,
        "an estimate from the answer's length: {l}"
    );

    let t = session(&a, AGENT);
    assert_eq!(t["user_prompts"], 1, "{t}");

    // The hook's duration joins the bubble's tool call.
    let db = c.env.db();
    assert_eq!(
        count(
            &db,
            "SELECT hook_duration_ms FROM tool_calls WHERE tool_use_id = 'toolu_cur_01'"
        ),
        1840
    );
    let tools = a["tools"].to_string();
    assert!(
        tools.contains("run_terminal_cmd") && tools.contains("edit_file"),
        "{tools}"
    );

    let hits = a["search"]["hits"].as_array().expect("hits");
    assert!(
        hits.iter().any(|h| h["session_id"] == MODERN),
        "search finds the Cursor prompt: {hits:?}"
    );
    assert!(
        hits.iter().any(|h| h["session_id"] == AGENT),
        "and the agent transcript: {hits:?}"
    );

    // A mixed history: both platforms in one answer, each in its own place.
    let all = a["all_sessions"]["sessions"]
        .as_array()
        .expect("all sessions");
    let claude = all
        .iter()
        .filter(|s| s["platform"] == "claude_code")
        .count();
    assert!(claude > 0, "the Claude Code samples are there too: {all:?}");
    assert_eq!(all.len(), claude + 3, "{all:?}");
    let platforms: std::collections::BTreeSet<&str> = a["search_all"]["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .filter_map(|h| h["platform"].as_str())
        .collect();
    assert_eq!(
        platforms.into_iter().collect::<Vec<_>>(),
        ["claude_code", "cursor"],
        "search across both"
    );
    let claude_row = a["metrics"]["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["key"] == "claude_code")
        .unwrap_or_else(|| panic!("no claude_code row: {}", a["metrics"]))
        .clone();
    assert!(claude_row["tokens"]["total"].as_i64().unwrap_or(0) > 0);
    assert!(
        claude_row
            .get("estimated_tokens")
            .is_none_or(|v| v.is_null() || v == 0),
        "no estimates for Claude Code: {claude_row}"
    );
    let metrics = a["metrics"].to_string();
    let row = a["metrics"]["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["key"] == "cursor")
        .unwrap_or_else(|| panic!("no cursor row: {metrics}"))
        .clone();
    assert_eq!(row["tokens"]["total"], 18250 + 920, "measured only: {row}");
    assert!(
        row["estimated_tokens"].as_i64().unwrap_or(0) > 0,
        "estimates beside, not in: {row}"
    );

    // Nothing secret anywhere: raw traces (decompressed), the database files, Redis, answers.
    let mut everything = raw_payloads(&db);
    for suffix in ["", "-wal"] {
        let p = PathBuf::from(format!("{}{suffix}", db.display()));
        if let Ok(b) = std::fs::read(&p) {
            everything.push_str(&String::from_utf8_lossy(&b));
        }
    }
    everything.push_str(&a.to_string());
    everything.push_str(&support::redis_dump(&c.env));
    for secret in CREDENTIALS.iter().chain(&["dev@example.com"]) {
        assert!(!everything.contains(secret), "{secret} leaked");
    }
}
