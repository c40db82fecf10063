//! `blueplane hook cursor` through the real binary, with a real redis-server: one payload
//! fixture for every Cursor hook event of formats.md §C7 and one event this binary does not
//! know (`tests/data/cursor-hooks`, hand-written, see its README):
//!
//! - every payload lands in `raw_traces` once, platform `cursor`, kind `hook`, its session the
//!   `conversation_id`; stdout is exactly `{}` and the exit status 0, for every event, for
//!   garbage and for arguments this binary does not know;
//! - with Redis stopped: spooled, exit 0, `{}` still printed, then drained by `backfill`, and
//!   a payload that reached Redis *and* the spool is stored once;
//! - planted secrets, command arguments, outputs, contents and `user_email` are in neither
//!   SQLite (raw payloads decompressed), Redis, nor any output;
//! - a `transcript_path` naming an agent transcript makes the running `ingest` capture it at
//!   once, even outside the watched Cursor home.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use support::redis::Resp;
use support::{Env, count};

const CID: &str = "0b6c1a52-9f1e-4c39-8d7e-3a2f5e6d7c81";
/// Strings planted in the fixtures that must never be stored or shown.
const PLANTED: &[&str] = &[
    "hunter2",
    "AKIAIOSFODNN7EXAMPLE",
    "PLANTED-",
    "planted_secret_fn",
    "--force-with-lease",
    "tok3n",
    "dev@example.com",
];

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cursor-hooks");
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("fixture dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// The environment with an empty Cursor home (never the machine's `~/.cursor`).
struct CursorEnv {
    env: Env,
    cursor_home: tempfile::TempDir,
}

impl CursorEnv {
    fn new() -> CursorEnv {
        CursorEnv {
            env: Env::new(&[]),
            cursor_home: tempfile::tempdir().unwrap(),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.env.cmd(args);
        c.env("CURSOR_HOME", self.cursor_home.path());
        c
    }

    fn run(&self, args: &[&str]) -> Vec<u8> {
        let out = self.cmd(args).output().unwrap();
        assert!(
            out.status.success(),
            "blueplane {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_slice(&self.run(args)).unwrap()
    }
}

/// Runs `blueplane <args>` with `payload` on stdin; asserts exit 0 and that stdout is exactly
/// one `{}` line. Returns stdout and stderr.
fn fire_args(env: &CursorEnv, args: &[&str], payload: &[u8]) -> String {
    let mut c = env.cmd(args);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn hook");
    child.stdin.take().unwrap().write_all(payload).unwrap();
    let out = child.wait_with_output().expect("hook");
    assert_eq!(out.status.code(), Some(0), "{args:?}");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(stdout, "{}\n", "{args:?} printed {stdout:?}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v, serde_json::json!({}));
    stdout + &String::from_utf8_lossy(&out.stderr)
}

fn fire(env: &CursorEnv, payload: &[u8]) -> String {
    fire_args(env, &["hook", "cursor"], payload)
}

fn spool_lines(env: &CursorEnv) -> usize {
    let dir = env.env.home.path().join("spool");
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

/// `(event, rows)` of the Cursor hook rows in `raw_traces`.
fn hook_rows(db: &Path) -> Vec<(String, i64)> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut s = c
        .prepare(
            "SELECT source, count(*) FROM raw_traces_text
              WHERE platform = 'cursor' AND kind = 'hook' AND source_kind = 'hook'
              GROUP BY source ORDER BY source",
        )
        .unwrap();
    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn expected_rows() -> Vec<(String, i64)> {
    let mut m = std::collections::BTreeMap::<String, i64>::new();
    for (_, raw) in fixtures() {
        let v: Value = serde_json::from_slice(&raw).unwrap();
        *m.entry(v["hook_event_name"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    m.into_iter().collect()
}

/// Every string of a Redis reply, concatenated.
fn resp_text(r: &Resp) -> String {
    match r {
        Resp::Simple(s) | Resp::Error(s) => s.clone(),
        Resp::Integer(i) => i.to_string(),
        Resp::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
        Resp::Bulk(None) | Resp::Array(None) => String::new(),
        Resp::Array(Some(a)) => a.iter().map(resp_text).collect::<Vec<_>>().join(" "),
    }
}

fn assert_clean(what: &str, text: &str) {
    for p in PLANTED {
        assert!(!text.contains(p), "{p} found in {what}");
    }
}

/// Fails without `hook cursor` (clap rejects the client: nothing stored, nothing printed),
/// without the Cursor allow-list (planted values in Redis and SQLite) and without the
/// `conversation_id` session.
#[test]
fn every_event_is_stored_once_prints_an_empty_object_and_keeps_nothing_private() {
    let fixtures = fixtures();
    assert_eq!(
        expected_rows().len(),
        fixtures.len(),
        "one fixture per event"
    );
    let env = CursorEnv::new();
    let mut shown = String::new();
    for (_, raw) in &fixtures {
        shown.push_str(&fire(&env, raw));
    }
    assert_eq!(spool_lines(&env), 0, "Redis was up: nothing spooled");
    assert_clean("Redis", &support::redis_dump(&env.env));
    shown.push_str(&String::from_utf8_lossy(&env.run(&["backfill", "--json"])));
    // Again: nothing is stored twice.
    env.run(&["backfill", "--json"]);
    let db = env.env.db();
    assert_eq!(hook_rows(&db), expected_rows());
    assert_eq!(
        count(&db, "SELECT count(*) FROM raw_traces"),
        fixtures.len() as i64
    );
    assert_eq!(
        count(
            &db,
            &format!("SELECT count(*) FROM raw_traces_text WHERE session_id = '{CID}'")
        ),
        fixtures.len() as i64,
        "the session is the conversation_id"
    );
    let dump = support::raw_payloads(&db);
    assert_clean("raw_traces", &dump);
    assert_clean("output", &shown);
    // What is kept: the stop hook's token counts, the program of a command, paths.
    for kept in [
        "\"input_tokens\":18234",
        "\"cache_read_tokens\":90112",
        "\"program\":\"git\"",
        "/home/dev/app/src/retry.rs",
        "someFutureEvent",
    ] {
        assert!(dump.contains(kept), "{kept} not stored");
    }
    let st = env.json(&["status", "--json"]);
    assert_eq!(st["dlq_size"].as_i64().unwrap_or(-1), 0, "{st}");
}

/// Fails without the spool path for Cursor (payloads lost) or without ids computed once
/// (the payload in Redis and in the spool stored twice).
#[test]
fn redis_down_spools_and_a_drain_stores_each_payload_once() {
    let fixtures = fixtures();
    let mut env = CursorEnv::new();
    env.env.redis.kill();
    for (_, raw) in &fixtures {
        fire(&env, raw);
    }
    fire(&env, b"{not json at all");
    assert_eq!(spool_lines(&env), fixtures.len() + 1);
    let spooled: String = std::fs::read_dir(env.env.home.path().join("spool"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert_clean("the spool", &spooled);
    env.env.redis.restart();
    env.run(&["backfill", "--json"]);
    assert_eq!(spool_lines(&env), 0, "the spool was drained");
    env.run(&["backfill", "--json"]);
    assert_eq!(hook_rows(&env.env.db()), expected_rows());
    let dl = env.json(&["dlq", "list", "--json"]);
    let text = dl.to_string();
    assert!(text.contains("not JSON"), "{text}");
    assert!(text.contains("hook:cursor"), "{text}");
    assert!(!text.contains("{not json at all"), "content in the DLQ");

    // As if Redis took a payload and its reply timed out: the same record in the spool.
    let (_, raw) = &fixtures[9];
    fire(&env, raw);
    let entries =
        support::redis::command(&env.env.redis.socket, &["XRANGE", "bp:events", "-", "+"]).unwrap();
    let Resp::Array(Some(entries)) = entries else {
        panic!("no stream")
    };
    let Some(Resp::Array(Some(last))) = entries.last() else {
        panic!("no entry")
    };
    let Resp::Array(Some(kv)) = &last[1] else {
        panic!("no fields")
    };
    let f: std::collections::HashMap<String, String> = kv
        .chunks(2)
        .map(|p| (resp_text(&p[0]), resp_text(&p[1])))
        .collect();
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    assert_eq!(get("p"), "cursor");
    let rec = serde_json::json!({
        "id": get("id"), "p": get("p"), "k": get("k"), "s": get("s"),
        "t": get("t").parse::<i64>().unwrap(), "src": get("src"), "d": get("d"),
    });
    let spool = env.env.home.path().join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    std::fs::write(spool.join("hooks.jsonl"), format!("{rec}\n")).unwrap();
    env.run(&["backfill", "--json"]);
    assert_eq!(spool_lines(&env), 0);
    assert_eq!(
        count(
            &env.env.db(),
            &format!(
                "SELECT count(*) FROM raw_traces_text WHERE id = '{}'",
                get("id")
            )
        ),
        1,
        "stored once, from Redis or from the spool"
    );
}

/// Fails if Cursor gets anything but `{}` (or nothing) on garbage, on unknown arguments or
/// without a home, or if the Claude hook starts printing.
#[test]
fn garbage_unknown_arguments_and_no_home_still_print_the_empty_object() {
    let env = CursorEnv::new();
    for junk in [&b"\x00\xffgarbage"[..], b"[1,2,3]", b""] {
        fire(&env, junk);
    }
    fire_args(&env, &["hook", "cursor", "--some-newer-flag"], b"{}");
    let stats = support::redis::command(
        &env.env.redis.socket,
        &["HGET", "bp:stats", "bad_hook_payloads"],
    )
    .unwrap();
    assert_eq!(stats, Resp::Bulk(Some(b"3".to_vec())));
    // No home at all, no Redis: exit 0 and `{}`.
    let mut c = Command::new(support::BIN);
    c.args(["hook", "cursor"])
        .env_remove("BLUEPLANE_HOME")
        .env_remove("HOME")
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut ch = c.spawn().unwrap();
    ch.stdin
        .take()
        .unwrap()
        .write_all(&fixtures()[0].1)
        .unwrap();
    let out = ch.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, b"{}\n");
    // The Claude hook still prints nothing.
    let mut c = env.cmd(&["hook", "claude"]);
    c.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut ch = c.spawn().unwrap();
    ch.stdin.take().unwrap().write_all(b"{}").unwrap();
    assert!(ch.wait_with_output().unwrap().stdout.is_empty());
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

/// A `stop` hook's `transcript_path` makes the lease holder capture that agent transcript at
/// once, though it is outside the watched Cursor home. Fails without the nudge (or when the
/// nudged path goes to the Claude Code source: platform `claude_code`, wrong kinds).
#[test]
fn transcript_path_in_a_hook_triggers_its_capture() {
    let tmp = tempfile::tempdir().unwrap();
    let elsewhere: PathBuf = tmp.path().join("elsewhere");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cursor-agent/projects"),
        &elsewhere,
    );
    let transcript = elsewhere
        .join("home-dev-app/agent-transcripts")
        .join(CID)
        .join(format!("{CID}.jsonl"));
    let env = CursorEnv::new();
    let mut ingest = env
        .cmd(&["ingest"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let payload = serde_json::json!({
        "conversation_id": CID, "generation_id": "g-1", "hook_event_name": "stop",
        "status": "completed", "loop_count": 0, "transcript_path": transcript.display().to_string(),
    })
    .to_string();
    let t0 = std::time::Instant::now();
    let mut seen = 0;
    let query = format!(
        "SELECT count(*) FROM raw_traces_text WHERE platform = 'cursor' AND kind LIKE 'transcript:%' AND source = '{}'",
        transcript.display()
    );
    while t0.elapsed() < std::time::Duration::from_secs(20) {
        // Until ingest holds the lease, nudges wait in Redis; one hook is enough after that.
        if seen == 0 {
            fire(&env, payload.as_bytes());
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        seen = if env.env.db().exists() {
            let c = rusqlite::Connection::open(env.env.db()).unwrap();
            c.query_row(&query, [], |r| r.get::<_, i64>(0)).unwrap_or(0)
        } else {
            0
        };
        if seen == 8 {
            break;
        }
    }
    let _ = Command::new("kill").arg(ingest.id().to_string()).status();
    let _ = ingest.wait();
    assert_eq!(seen, 8, "the transcript's 8 lines were not captured");
    assert_eq!(
        count(
            &env.env.db(),
            "SELECT count(*) FROM raw_traces_text WHERE platform = 'claude_code'"
        ),
        0
    );
}
