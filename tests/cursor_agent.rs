//! Cursor agent CLI transcripts (`tests/data/cursor-agent`, hand-written, see its README)
//! captured by the real binary with a real redis-server, from a Cursor home set by
//! `CURSOR_HOME`:
//!
//! - every line of every transcript (sub-agent included) lands in `raw_traces` once, platform
//!   `cursor`, kind `transcript:<role>`, session the `<cid>` directory; a re-backfill adds
//!   nothing; a torn last line is not captured until it is finished, then once;
//! - lines appended while `ingest` runs are picked up;
//! - planted secrets, fenced code, command arguments and tool inputs reach neither SQLite nor
//!   Redis.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::redis::Resp;
use support::{Env, count};

const CID: &str = "0b6c1a52-9f1e-4c39-8d7e-3a2f5e6d7c81";
const TORN: &str = "7c1d9e3a-2b4f-4a68-9d0e-5f6a7b8c9d01";
/// Complete lines in the fixtures: 8 in the main transcript, 3 in its sub-agent, 1 before
/// the torn line, and the 3 blocks of the legacy `.txt` transcript.
const LINES: i64 = 15;
const PLANTED: &[&str] = &[
    "AKIAIOSFODNN7EXAMPLE",
    "planted_secret_fn",
    "--force-with-lease",
    "PLANTED-SUBAGENT-PROMPT",
    "PLANTED-TXT-OUTPUT",
    "publickey",
    "<user_query>",
];

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cursor-agent")
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

/// An environment whose Cursor home holds a copy of the fixtures' `projects`.
struct CursorEnv {
    env: Env,
    cursor_home: tempfile::TempDir,
}

impl CursorEnv {
    fn new() -> CursorEnv {
        let cursor_home = tempfile::tempdir().unwrap();
        let projects = cursor_home.path().join("projects");
        copy_dir(&fixture_dir().join("projects"), &projects);
        // A legacy transcript nobody writes any more: its last block is complete.
        let txt = projects
            .join("home-dev-app/agent-transcripts")
            .join("4d5e6f70-8a9b-4c0d-9e1f-2a3b4c5d6e7f.txt");
        std::fs::File::options()
            .append(true)
            .open(&txt)
            .unwrap()
            .set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
        CursorEnv {
            env: Env::new(&[]),
            cursor_home,
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.env.cmd(args);
        c.env("CURSOR_HOME", self.cursor_home.path());
        c
    }

    fn backfill(&self) {
        let out = self.cmd(&["backfill", "--json"]).output().unwrap();
        assert!(
            out.status.success(),
            "backfill: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn transcript(&self, cid: &str) -> PathBuf {
        self.cursor_home
            .path()
            .join("projects/home-dev-app/agent-transcripts")
            .join(cid)
            .join(format!("{cid}.jsonl"))
    }

    fn rows(&self) -> i64 {
        if !self.env.db().exists() {
            return 0;
        }
        let c = rusqlite::Connection::open(self.env.db()).unwrap();
        c.query_row(
            "SELECT count(*) FROM raw_traces_text WHERE platform = 'cursor' AND kind LIKE 'transcript:%'",
            [],
            |r| r.get(0),
        )
        .unwrap_or(0)
    }
}

fn finish_torn_line(env: &CursorEnv) {
    let rest = std::fs::read_to_string(fixture_dir().join("torn-line-rest.txt")).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(env.transcript(TORN))
        .unwrap();
    f.write_all(rest.as_bytes()).unwrap();
}

fn resp_text(r: &Resp) -> String {
    match r {
        Resp::Simple(s) | Resp::Error(s) => s.clone(),
        Resp::Integer(i) => i.to_string(),
        Resp::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
        Resp::Bulk(None) | Resp::Array(None) => String::new(),
        Resp::Array(Some(a)) => a.iter().map(resp_text).collect::<Vec<_>>().join(" "),
    }
}

/// Fails without the source (nothing captured), with ids that change between scans or
/// cursors that do not hold (a re-backfill adds rows), when a torn line is captured before
/// its end (a dead letter and a row too many), or without the privacy rules.
#[test]
fn every_line_is_captured_once_and_a_torn_line_when_it_is_finished() {
    let env = CursorEnv::new();
    env.backfill();
    let db = env.env.db();
    assert_eq!(env.rows(), LINES);
    assert_eq!(
        count(&db, "SELECT count(DISTINCT id) FROM raw_traces_text"),
        LINES
    );
    assert_eq!(
        count(
            &db,
            &format!(
                "SELECT count(*) FROM raw_traces_text WHERE session_id = '{CID}' AND source LIKE '%/subagents/%'"
            )
        ),
        3,
        "a sub-agent's session is its parent's"
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM raw_traces_text WHERE kind = 'transcript:turn_ended'"
        ),
        3
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM raw_traces_text WHERE kind = 'transcript:user'"
        ),
        6
    );
    env.backfill();
    assert_eq!(env.rows(), LINES, "a re-backfill adds nothing");

    finish_torn_line(&env);
    env.backfill();
    assert_eq!(env.rows(), LINES + 1);
    assert_eq!(
        count(
            &db,
            &format!(
                "SELECT count(*) FROM raw_traces_text WHERE session_id = '{TORN}' AND kind = 'transcript:assistant'"
            )
        ),
        1
    );
    env.backfill();
    assert_eq!(env.rows(), LINES + 1);
    let st = env.env.json(&["status", "--json"]);
    assert_eq!(st["dlq_size"].as_i64().unwrap_or(-1), 0, "{st}");

    let dump = support::raw_payloads(&db);
    let redis = resp_text(
        &support::redis::command(&env.env.redis.socket, &["XRANGE", "bp:events", "-", "+"])
            .unwrap(),
    );
    for p in PLANTED {
        assert!(!dump.contains(p), "{p} in raw_traces");
        assert!(!redis.contains(p), "{p} in Redis");
    }
    assert!(dump.contains("Clippy is clean."), "assistant prose is kept");
    assert!(dump.contains("\"name\":\"Shell\""), "tool names are kept");
    assert!(
        dump.contains("Let me run it to see.") && dump.contains("\"name\":\"run_terminal_cmd\""),
        "the legacy transcript's prose and tools are kept"
    );
}

/// Fails without the watcher or rescan for this source (appended lines never captured while
/// `ingest` runs) or when a running capture and a later backfill disagree on ids.
#[test]
fn lines_appended_while_ingest_runs_are_captured_once() {
    let env = CursorEnv::new();
    let mut ingest = env
        .cmd(&["ingest"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let wait_for = |n: i64| {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(30) && env.rows() < n {
            std::thread::sleep(Duration::from_millis(200));
        }
        env.rows()
    };
    let first = wait_for(LINES);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(env.transcript(CID))
        .unwrap();
    writeln!(
        f,
        r#"{{"role":"user","message":{{"content":[{{"type":"text","text":"<user_query>\none more thing\n</user_query>"}}]}}}}"#
    )
    .unwrap();
    writeln!(
        f,
        r#"{{"role":"assistant","message":{{"content":[{{"type":"text","text":"Sure."}}]}}}}"#
    )
    .unwrap();
    drop(f);
    finish_torn_line(&env);
    let after = wait_for(LINES + 3);
    let _ = Command::new("kill").arg(ingest.id().to_string()).status();
    let _ = ingest.wait();
    assert_eq!(first, LINES);
    assert_eq!(after, LINES + 3, "appended lines were not captured");
    env.backfill();
    assert_eq!(env.rows(), LINES + 3, "captured once");
    assert_eq!(
        count(
            &env.env.db(),
            "SELECT count(*) FROM raw_traces_text WHERE kind = 'transcript:user'"
        ),
        7
    );
}
