//! `blueplane hook claude` through the real binary, with a real redis-server: one payload
//! fixture for every hook event of Claude Code 2.1.328 (`tests/data/hooks/claude-2.1.328`,
//! written from the field lists of claude-code-2.1.md §2, session and tool ids matching the
//! `tests/data/claude-2.1` transcript), merged with that transcript:
//!
//! - every payload is stored once, exit 0, nothing on stdout; tool calls join the
//!   transcript's on `tool_use_id` (no double counting, tokens unchanged), with Claude Code's
//!   durations, failures and MCP servers; the session's start source and end reason;
//! - with Redis stopped: spooled, exit 0, then drained by `backfill`, nothing lost; a payload
//!   that reached Redis *and* the spool is stored once; 20 concurrent hook processes into one
//!   spool lose nothing;
//! - garbage on stdin: exit 0, counted, kept in the dead-letter stream (never its content);
//! - tool inputs and outputs never reach the store.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use support::redis::Resp;
use support::{Env, count};

const SESSION: &str = "7f3c9a2e-5b1d-4e8a-9c6f-2d4b8e1a0c53";
/// Distinct events among the fixtures (every one of claude-code-2.1.md §2).
const EVENTS: usize = 33;

fn hook_fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/hooks/claude-2.1.328");
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("fixture dir")
        .flatten()
        .map(|e| {
            let p = e.path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn claude_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/claude-2.1")
}

/// Runs `blueplane hook claude` with `payload` on stdin; asserts exit 0 and empty stdout.
fn hook(env: &Env, payload: &[u8]) {
    let mut c = env.cmd(&["hook", "claude"]);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn hook");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(payload)
        .expect("write stdin");
    let out = child.wait_with_output().expect("hook");
    assert!(out.status.success(), "hook exited {:?}", out.status);
    assert!(
        out.stdout.is_empty(),
        "hook printed on stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

fn spool_lines(env: &Env) -> usize {
    let dir = env.home.path().join("spool");
    std::fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    std::fs::read_to_string(e.path())
                        .unwrap_or_default()
                        .lines()
                        .count()
                })
                .sum()
        })
        .unwrap_or(0)
}

fn hook_rows(db: &Path) -> Vec<(String, i64)> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut s = c
        .prepare("SELECT event, count(*) FROM hook_events GROUP BY event ORDER BY event")
        .unwrap();
    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn expected_rows() -> Vec<(String, i64)> {
    let mut m = std::collections::BTreeMap::<String, i64>::new();
    for (_, raw) in hook_fixtures() {
        let v: Value = serde_json::from_slice(&raw).unwrap();
        *m.entry(v["hook_event_name"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    m.into_iter().collect()
}

#[test]
fn every_event_is_stored_once_and_merged_with_the_transcript() {
    let fixtures = hook_fixtures();
    assert_eq!(expected_rows().len(), EVENTS);
    let env = Env::new(&[claude_dir()]);
    for (_, raw) in &fixtures {
        hook(&env, raw);
    }
    assert_eq!(spool_lines(&env), 0, "Redis was up: nothing spooled");
    env.run(&["backfill", "--json"]);
    // Again: neither the transcript nor the hooks are derived twice.
    env.run(&["backfill", "--json"]);
    let db = env.db();
    assert_eq!(hook_rows(&db), expected_rows());
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM raw_traces_text WHERE source_kind = 'hook'"
        ),
        fixtures.len() as i64
    );

    // Tool calls: the transcript's 4, plus three only hooks saw (a failure, a sub-agent
    // Read, an auto-mode denial); one row per tool_use_id.
    assert_eq!(count(&db, "SELECT count(*) FROM tool_calls"), 7);
    assert_eq!(
        count(
            &db,
            "SELECT hook_duration_ms FROM tool_calls WHERE tool_use_id = 'toolu_01CdxQyezqD7SBnmvXKSa1ro'"
        ),
        2412
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM tool_calls WHERE tool_use_id = 'toolu_01DKY0x0gfJ7tEOnAa8wp7Vw'
               AND mcp_server = 'blueplane' AND hook_duration_ms = 38 AND failed = 0"
        ),
        1
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM tool_calls WHERE tool_use_id = 'toolu_01FAILhookOnly000000001'
               AND failed = 1 AND is_interrupt = 0 AND took_ms = 118 AND name = 'Bash'"
        ),
        1
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM tool_calls WHERE tool_use_id = 'toolu_01DENIEDhook000000000001' AND permission = 'denied'"
        ),
        1
    );
    // Tokens come from the transcript alone (hooks carry none): the fixture README's figures.
    assert_eq!(
        count(
            &db,
            "SELECT sum(input_tokens + output_tokens + cache_creation_tokens + cache_read_tokens) FROM api_responses"
        ),
        143_345
    );
    // One session: how it started and ended.
    let c = rusqlite::Connection::open(&db).unwrap();
    let (n, start, end): (i64, Option<String>, Option<String>) = c
        .query_row(
            "SELECT count(*), max(start_source), max(end_reason) FROM sessions",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (n, start.as_deref(), end.as_deref()),
        (1, Some("startup"), Some("other"))
    );
    let agents: i64 = c
        .query_row(
            "SELECT count(*) FROM subagents WHERE session_id = ?1 AND agent_type = 'Explore'",
            [SESSION],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        agents, 1,
        "the hooks' agent_id is the transcript's sub-agent"
    );

    // Contents and output of tools, prompts and secrets are stored nowhere.
    for needle in [
        "12 passed",
        "hunter2",
        "cargo test -p retry",
        "pub fn budget",
        "Review the retry budget",
        "budget exceeded",
    ] {
        assert_eq!(
            count(
                &db,
                &format!(
                    "SELECT count(*) FROM hook_events WHERE detail LIKE '%{needle}%' OR tool_name LIKE '%{needle}%'"
                )
            ),
            0,
            "{needle} in hook_events"
        );
    }
    let dump = support::raw_payloads(&db);
    for needle in [
        "12 passed",
        "hunter2",
        "cargo test -p retry",
        "pub fn budget",
    ] {
        assert!(!dump.contains(needle), "{needle} stored in raw_traces");
    }
    let st = env.json(&["status", "--json"]);
    assert_eq!(st["dlq_size"].as_i64().unwrap_or(-1), 0, "{st}");
}

/// The field maps of an XRANGE reply.
fn stream_entries(r: Resp) -> Vec<std::collections::HashMap<String, String>> {
    let text = |r: &Resp| match r {
        Resp::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
        other => panic!("not a bulk string: {other:?}"),
    };
    let Resp::Array(Some(entries)) = r else {
        panic!("not an array: {r:?}")
    };
    entries
        .iter()
        .map(|e| {
            let Resp::Array(Some(parts)) = e else {
                panic!("bad entry {e:?}")
            };
            let Resp::Array(Some(kv)) = &parts[1] else {
                panic!("bad fields {e:?}")
            };
            kv.chunks(2).map(|p| (text(&p[0]), text(&p[1]))).collect()
        })
        .collect()
}

#[test]
fn redis_down_spools_and_a_drain_loses_nothing() {
    let fixtures = hook_fixtures();
    let mut env = Env::new(&[claude_dir()]);
    env.redis.kill();
    for (_, raw) in &fixtures {
        hook(&env, raw);
    }
    // Garbage too: exit 0, spooled as a bad payload.
    hook(&env, b"{not json at all");
    assert_eq!(spool_lines(&env), fixtures.len() + 1);
    env.redis.restart();
    env.run(&["backfill", "--json"]);
    assert_eq!(spool_lines(&env), 0, "the spool was drained");
    assert_eq!(hook_rows(&env.db()), expected_rows());
    let dl = env.json(&["dlq", "list", "--json"]);
    let text = dl.to_string();
    assert!(text.contains("not JSON"), "{text}");
    assert!(!text.contains("{not json at all"), "content in the DLQ");
}

#[test]
fn a_payload_in_redis_and_in_the_spool_is_stored_once() {
    let env = Env::new(&[]);
    let (_, raw) = &hook_fixtures()[0];
    hook(&env, raw);
    // As if the reply had timed out after Redis took it: the same record also in the spool.
    let entries = support::redis::command(&env.redis.socket, &["XRANGE", "bp:events", "-", "+"])
        .expect("xrange");
    let fields = stream_entries(entries);
    assert_eq!(fields.len(), 1);
    let f = &fields[0];
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let rec = serde_json::json!({
        "id": get("id"), "p": get("p"), "k": get("k"), "s": get("s"),
        "t": get("t").parse::<i64>().unwrap(), "src": get("src"), "d": get("d"),
    });
    let spool = env.home.path().join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    std::fs::write(spool.join("hooks.jsonl"), format!("{rec}\n")).unwrap();
    env.run(&["backfill", "--json"]);
    assert_eq!(count(&env.db(), "SELECT count(*) FROM hook_events"), 1);
    assert_eq!(spool_lines(&env), 0);
}

#[test]
fn twenty_concurrent_hooks_into_one_spool() {
    let mut env = Env::new(&[]);
    env.redis.kill();
    let children: Vec<_> = (0..20)
        .map(|i| {
            let mut c = env.cmd(&["hook", "claude"]);
            c.stdin(Stdio::piped()).stdout(Stdio::null());
            let mut ch = c.spawn().unwrap();
            let payload = format!(
                r#"{{"session_id":"s-{i}","hook_event_name":"Notification","notification_type":"idle_prompt","cwd":"/p"}}"#
            );
            ch.stdin.take().unwrap().write_all(payload.as_bytes()).unwrap();
            ch
        })
        .collect();
    for mut ch in children {
        assert!(ch.wait().unwrap().success());
    }
    assert_eq!(spool_lines(&env), 20);
    env.redis.restart();
    env.run(&["backfill", "--json"]);
    assert_eq!(
        count(
            &env.db(),
            "SELECT count(DISTINCT session_id) FROM hook_events"
        ),
        20
    );
}

#[test]
fn garbage_with_redis_up_is_a_counted_dead_letter() {
    let env = Env::new(&[]);
    for junk in [&b"\x00\xffgarbage"[..], b"[1,2,3]", b""] {
        hook(&env, junk);
    }
    let dl = env.json(&["dlq", "list", "--json"]);
    assert_eq!(
        dl.as_array()
            .or_else(|| dl["letters"].as_array())
            .map(Vec::len),
        Some(3),
        "{dl}"
    );
    let stats = support::redis::command(
        &env.redis.socket,
        &["HGET", "bp:stats", "bad_hook_payloads"],
    )
    .expect("hget");
    assert_eq!(stats, Resp::Bulk(Some(b"3".to_vec())));
}

/// Hook processes must not depend on anything but stdin: no home at all is still exit 0.
#[test]
fn no_home_is_still_exit_zero() {
    let mut c = Command::new(support::BIN);
    c.args(["hook", "claude"])
        .env_remove("BLUEPLANE_HOME")
        .env_remove("HOME")
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut ch = c.spawn().unwrap();
    ch.stdin.take().unwrap().write_all(b"{}").unwrap();
    let out = ch.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        let dest = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// A compaction's API call appears in no assistant line, only in Claude Code's `cost-state`
/// (claude-code-2.1.md §3): it is reported beside our figure, as unattributed cost, while
/// tokens and `cost_usd` stay ccusage's.
#[test]
fn compaction_cost_is_reported_and_unattributed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("claude");
    copy_dir(&claude_dir(), &dir);
    let transcript = dir
        .join("projects/-home-dev-app")
        .join(format!("{SESSION}.jsonl"));
    // The session after a `/compact`: its running total grew by $0.125 with no new
    // assistant line.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&transcript)
        .unwrap();
    writeln!(
        f,
        r#"{{"type":"cost-state","sessionId":"{SESSION}","timestamp":"2026-12-03T09:20:00.000Z","totalCostUSD":0.2967068,"totalAPIDuration":40120,"hasUnknownModelCost":false,"modelUsage":{{"claude-sonnet-4-5-20250929":{{"inputTokens":20,"outputTokens":1400,"costUSD":0.2967068}}}}}}"#
    )
    .unwrap();
    drop(f);
    let env = Env::new(&[dir]);
    for (name, raw) in hook_fixtures() {
        if name.contains("Compact") || name.contains("SessionStart") {
            hook(&env, &raw);
        }
    }
    env.run(&["backfill", "--json"]);
    let sessions = env.json(&["sessions", "--json"]);
    let s = &sessions["sessions"][0];
    let close = |v: &Value, want: f64| (v.as_f64().unwrap_or(f64::NAN) - want).abs() < 1e-9;
    assert!(close(&s["cost_usd"], 0.171_706_8), "{s}");
    assert!(close(&s["reported_cost_usd"], 0.296_706_8), "{s}");
    assert!(close(&s["unattributed_cost_usd"], 0.125), "{s}");
    let report = env.json(&["report", "daily", "--json"]);
    assert!(
        close(&report["totals"]["reported_cost_usd"], 0.296_706_8),
        "{report}"
    );
    assert!(
        close(&report["rows"][0]["unattributed_cost_usd"], 0.125),
        "{report}"
    );
    // Tokens are still the transcript's alone.
    assert_eq!(report["totals"]["tokens"]["total"], 143_345);
}

/// `blueplane statusline`: one line on stdout, the figures captured once per change.
#[test]
fn statusline_prints_one_line_and_captures_changed_figures_once() {
    let env = Env::new(&[claude_dir()]);
    env.run(&["backfill", "--json"]);
    let status = |cost: f64| {
        format!(
            r#"{{"session_id":"{SESSION}","transcript_path":"/t.jsonl","cwd":"/home/dev/app",
               "model":{{"id":"claude-sonnet-4-5-20250929","display_name":"Sonnet 4.5"}},
               "cost":{{"total_cost_usd":{cost},"total_duration_ms":1000}},
               "rate_limits":{{"five_hour":{{"used_percentage":23.5,"resets_at":4102444800}},
                              "seven_day":{{"used_percentage":41,"resets_at":4102444800}}}}}}"#
        )
    };
    let run = |payload: &str| -> String {
        let mut c = env.cmd(&["statusline"]);
        c.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut ch = c.spawn().unwrap();
        ch.stdin
            .take()
            .unwrap()
            .write_all(payload.as_bytes())
            .unwrap();
        let out = ch.wait_with_output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let line = run(&status(0.5));
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.contains("5h 23%") || line.contains("5h 24%"), "{line}");
    assert!(line.contains("7d 41%"), "{line}");
    assert!(line.contains("$0.50"), "{line}");
    run(&status(0.5));
    run(&status(0.75));
    env.run(&["backfill", "--json"]);
    let db = env.db();
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM raw_traces_text WHERE kind = 'statusline'"
        ),
        2,
        "an unchanged refresh is not captured again"
    );
    assert_eq!(count(&db, "SELECT count(*) FROM usage_samples"), 2);
    assert_eq!(
        count(
            &db,
            "SELECT max(total_pusd) FROM cost_states WHERE origin = 'statusline'"
        ),
        750_000_000_000
    );
    // Garbage: exit 0 and still one line.
    let line = run("not json");
    assert_eq!(line.lines().count(), 1);
}

/// A hook's `transcript_path` makes the lease holder capture that file at once, even where
/// nothing watches (a transcript outside the configured directories).
#[test]
fn transcript_path_in_a_hook_triggers_its_capture() {
    let tmp = tempfile::tempdir().unwrap();
    let elsewhere = tmp.path().join("elsewhere");
    copy_dir(&claude_dir(), &elsewhere);
    let transcript = elsewhere
        .join("projects/-home-dev-app")
        .join(format!("{SESSION}.jsonl"));
    let watched = tmp.path().join("watched");
    std::fs::create_dir_all(watched.join("projects")).unwrap();
    let env = Env::new(&[watched]);
    let mut ingest = env
        .cmd(&["ingest"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let payload = format!(
        r#"{{"session_id":"{SESSION}","transcript_path":"{}","cwd":"/home/dev/app","hook_event_name":"Stop"}}"#,
        transcript.display()
    );
    let t0 = std::time::Instant::now();
    let mut seen = 0;
    while t0.elapsed() < std::time::Duration::from_secs(20) {
        // Until ingest holds the lease, nudges wait in Redis; one hook is enough after that.
        if seen == 0 {
            hook(&env, payload.as_bytes());
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        seen = if env.db().exists() {
            let c = rusqlite::Connection::open(env.db()).unwrap();
            c.query_row("SELECT count(*) FROM api_responses", [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap_or(0)
        } else {
            0
        };
        if seen == 5 {
            break;
        }
    }
    let _ = Command::new("kill").arg(ingest.id().to_string()).status();
    let _ = ingest.wait();
    assert_eq!(
        seen, 5,
        "the main transcript's 5 responses were not captured"
    );
}

/// Claude Code blocks the prompt when a hook exits 2 (clap's usage error): arguments this
/// binary does not know still exit 0, silently on stdout.
#[test]
fn unknown_hook_arguments_still_exit_zero() {
    for args in [
        &["hook", "someday-client"][..],
        &["hook"],
        &["statusline", "--bogus"],
    ] {
        let mut c = Command::new(support::BIN);
        c.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut ch = c.spawn().unwrap();
        ch.stdin.take().unwrap().write_all(b"{}").unwrap();
        let out = ch.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

/// `claude mcp list` fires a SessionEnd for a session that never ran: it is in the timeline
/// but is no session; a SessionEnd that comes before its session's transcript still settles it.
#[test]
fn lifecycle_events_alone_make_no_session() {
    let env = Env::new(&[claude_dir()]);
    hook(
        &env,
        br#"{"session_id":"ghost-1","transcript_path":"/nowhere/ghost-1.jsonl","cwd":"/p","hook_event_name":"SessionEnd","reason":"other"}"#,
    );
    let end = format!(
        r#"{{"session_id":"{SESSION}","cwd":"/home/dev/app","hook_event_name":"SessionEnd","reason":"prompt_input_exit"}}"#
    );
    hook(&env, end.as_bytes());
    env.run(&["backfill", "--json"]);
    let db = env.db();
    assert_eq!(count(&db, "SELECT count(*) FROM hook_events"), 2);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM sessions WHERE session_id = 'ghost-1'"
        ),
        0
    );
    assert_eq!(
        count(
            &db,
            &format!(
                "SELECT count(*) FROM sessions WHERE session_id = '{SESSION}' AND end_reason = 'prompt_input_exit'"
            )
        ),
        1
    );
}
