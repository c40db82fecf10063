//! End-to-end tests of the pipeline: the real binary, a real redis-server, real SQLite files.
#![allow(clippy::print_stdout)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Env, count, fixtures, table_counts, write_corpus};

/// (date, input, output, cache_creation, cache_read, total, cost) rows of a ccusage daily report.
fn ccusage_daily(file: &str) -> Vec<(String, i64, i64, i64, i64, i64, f64)> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/ccusage-oracle")
        .join(file);
    let v: Value =
        serde_json::from_slice(&std::fs::read(&p).expect("oracle file")).expect("oracle json");
    v["daily"]
        .as_array()
        .expect("daily")
        .iter()
        .map(|r| {
            (
                r["date"].as_str().expect("date").to_string(),
                r["inputTokens"].as_i64().expect("in"),
                r["outputTokens"].as_i64().expect("out"),
                r["cacheCreationTokens"].as_i64().expect("cc"),
                r["cacheReadTokens"].as_i64().expect("cr"),
                r["totalTokens"].as_i64().expect("total"),
                r["totalCost"].as_f64().expect("cost"),
            )
        })
        .collect()
}

fn our_daily(env: &Env, tz: &str) -> Vec<(String, i64, i64, i64, i64, i64, f64)> {
    let v = env.json(&["report", "daily", "--json", "-z", tz]);
    v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            let t = &r["tokens"];
            (
                r["key"].as_str().expect("key").to_string(),
                t["input"].as_i64().expect("in"),
                t["output"].as_i64().expect("out"),
                t["cache_creation"].as_i64().expect("cc"),
                t["cache_read"].as_i64().expect("cr"),
                t["total"].as_i64().expect("total"),
                r["cost_usd"].as_f64().expect("cost"),
            )
        })
        .collect()
}

fn assert_same_daily(
    ours: &[(String, i64, i64, i64, i64, i64, f64)],
    theirs: &[(String, i64, i64, i64, i64, i64, f64)],
) {
    assert_eq!(
        ours.len(),
        theirs.len(),
        "ours {ours:?}\nccusage {theirs:?}"
    );
    for (a, b) in ours.iter().zip(theirs) {
        assert_eq!(
            (&a.0, a.1, a.2, a.3, a.4, a.5),
            (&b.0, b.1, b.2, b.3, b.4, b.5),
            "tokens differ"
        );
        assert!(
            (a.6 - b.6).abs() < 1e-9,
            "cost differs on {}: ours {} ccusage {}",
            a.0,
            a.6,
            b.6
        );
    }
}

/// Expected values: ccusage 20.0.24 `ccusage claude daily --json --offline -z <tz>` on the same
/// trees (tests/data/ccusage-oracle/README.md says how they were produced).
#[test]
fn daily_metrics_match_ccusage_in_utc_and_kathmandu() {
    let f = fixtures();
    let env = Env::new(&[f.join("ccusage"), f.join("spotter")]);
    let summary = env.json(&["backfill", "--json"]);
    assert_eq!(summary["bad_lines"], 0, "{summary}");
    for tz in ["UTC", "Asia/Kathmandu"] {
        let mut theirs = ccusage_daily(&format!("ccusage-daily-{}.json", tz.replace('/', "-")));
        theirs.extend(ccusage_daily(&format!(
            "spotter-daily-{}.json",
            tz.replace('/', "-")
        )));
        theirs.sort_by(|a, b| a.0.cmp(&b.0));
        let ours = our_daily(&env, tz);
        assert_same_daily(&ours, &theirs);
    }
    // Metrics are derived data: a rebuild from SQLite gives identical figures.
    let before = env.json(&["report", "monthly", "--json", "-z", "Asia/Kathmandu"]);
    let rebuilt = env.json(&["metrics", "rebuild", "--json"]);
    assert!(rebuilt["buckets"].as_i64().expect("buckets") > 0);
    let after = env.json(&["report", "monthly", "--json", "-z", "Asia/Kathmandu"]);
    assert_eq!(before, after);
    assert_eq!(after["source"], "redis");
    println!(
        "figure: {} daily rows match ccusage in UTC and Asia/Kathmandu",
        our_daily(&env, "UTC").len()
    );
}

/// The de-duplicated usage of each spotter file, as SOURCES.md states it.
#[test]
fn spotter_sessions_have_the_documented_deduplicated_usage() {
    let f = fixtures();
    let env = Env::new(&[f.join("spotter")]);
    env.run(&["backfill"]);
    let expected = [
        // session, input, output, cache creation, cache read
        ("55604662-cf2a-4331-851a-ec234028f8ca", 3, 13, 13835, 11515), // short.jsonl: 5 lines -> 1
        (
            "d6e0bada-1959-4eec-a9d2-0bfade768d8f",
            54,
            212,
            17696,
            88231,
        ), // tool_heavy.jsonl: 9 -> 4
        (
            "ae4a77f8-aedd-4bc1-888f-c94edc91af04",
            2408,
            7,
            18814,
            29274,
        ), // agent-aac57f5: 15 -> 3
        ("4d5611e5-241a-462a-8d15-5122611a9569", 3, 8, 8681, 164830),  // agent-acompact: 1 -> 1
    ];
    let c = rusqlite::Connection::open(env.db()).expect("db");
    for (s, i, o, cc, cr) in expected {
        let got: (i64, i64, i64, i64) = c
            .query_row(
                "SELECT sum(input_tokens), sum(output_tokens), sum(cache_creation_tokens), sum(cache_read_tokens)
                 FROM api_responses WHERE session_id = ?1",
                [s],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .expect(s);
        assert_eq!(got, (i, o, cc, cr), "session {s}");
    }
    let responses: Vec<(String, i64)> = c
        .prepare("SELECT session_id, count(*) FROM api_responses GROUP BY 1 ORDER BY 1")
        .expect("prep")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("q")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(
        responses,
        vec![
            ("4d5611e5-241a-462a-8d15-5122611a9569".to_string(), 1),
            ("55604662-cf2a-4331-851a-ec234028f8ca".to_string(), 1),
            ("ae4a77f8-aedd-4bc1-888f-c94edc91af04".to_string(), 3),
            ("d6e0bada-1959-4eec-a9d2-0bfade768d8f".to_string(), 4),
        ]
    );
    // The sub-agent files are linked to their parent session.
    assert_eq!(count(&env.db(), "SELECT count(*) FROM subagents"), 2);
}

fn redis_cmd(env: &Env, args: &[&str]) -> support::redis::Resp {
    support::redis::command(&env.redis.socket, args).expect("redis command")
}

fn xlen(env: &Env, key: &str) -> i64 {
    match redis_cmd(env, &["XLEN", key]) {
        support::redis::Resp::Integer(n) => n,
        other => panic!("XLEN {key}: {other:?}"),
    }
}

#[test]
fn bad_lines_are_counted_dead_lettered_and_do_not_stop_the_pipeline() {
    let dir = tempfile::tempdir().expect("dir");
    let proj = dir.path().join("projects/-p");
    std::fs::create_dir_all(&proj).expect("mkdir");
    let good = |uuid: &str, text: &str| {
        format!(
            r#"{{"type":"user","sessionId":"s-bad","uuid":"{uuid}","timestamp":"2026-03-01T10:00:00.000Z","cwd":"/p","message":{{"role":"user","content":"{text}"}}}}"#
        )
    };
    let mut body = String::new();
    body.push_str(&good("u1", "first"));
    body.push('\n');
    body.push_str("{this is not json\n");
    body.push_str("{\"type\":\"brand-new-type\",\"uuid\":\"x\"}\n");
    body.push_str("\u{0}\u{1}binary\u{7f}\n");
    body.push_str(&good("u2", "second"));
    body.push('\n');
    // A partial last line (the writer has not finished it yet).
    let partial = good("u3", "third");
    body.push_str(&partial[..20]);
    std::fs::write(proj.join("s-bad.jsonl"), &body).expect("write");
    let env = Env::new(&[dir.path().to_path_buf()]);
    let s = env.json(&["backfill", "--json"]);
    // A record type the parser does not know is a normal event (counted per type), not a bad line.
    assert_eq!(s["bad_lines"], 2, "{s}");
    assert_eq!(s["events"], 3, "{s}");
    assert_eq!(xlen(&env, "bp:dlq"), 2);
    assert_eq!(
        count(
            &env.db(),
            "SELECT count(*) FROM messages WHERE session_id = 's-bad'"
        ),
        2
    );
    let status = env.json(&["status", "--json"]);
    assert_eq!(status["counters"]["bad_input"], 2, "{status}");
    assert_eq!(status["dlq_size"], 2);
    assert_eq!(status["record_types"]["brand-new-type"], 1, "{status}");
    // The writer finishes the line: it is picked up, the bad lines are not re-counted.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(proj.join("s-bad.jsonl"))
        .expect("open");
    std::io::Write::write_all(&mut f, format!("{}\n", &partial[20..]).as_bytes()).expect("append");
    let s = env.json(&["backfill", "--json"]);
    assert_eq!(
        (s["events"].as_i64(), s["bad_lines"].as_i64()),
        (Some(1), Some(0)),
        "{s}"
    );
    assert_eq!(
        count(
            &env.db(),
            "SELECT count(*) FROM messages WHERE session_id = 's-bad'"
        ),
        3
    );
    assert_eq!(xlen(&env, "bp:dlq"), 2);
    println!("figure: 2 bad lines dead-lettered, 3 good lines stored, 1 new record type counted");
}

#[test]
fn kill_9_during_backfill_then_restart_gives_the_same_counts() {
    let dir = tempfile::tempdir().expect("dir");
    let lines = write_corpus(dir.path(), 20, 250);
    // Reference: an uninterrupted run.
    let reference = Env::new(&[dir.path().to_path_buf()]);
    let s = reference.json(&["backfill", "--json"]);
    assert_eq!(s["events"].as_u64(), Some(lines as u64));
    let want = table_counts(&reference.db());

    let env = Env::new(&[dir.path().to_path_buf()]);
    let mut child = env.cmd(&["backfill"]).spawn().expect("spawn");
    // Wait until some, but not all, rows are in, then kill -9.
    let start = Instant::now();
    let mut seen = 0;
    while start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
        if env.db().exists() {
            seen = rusqlite::Connection::open(env.db())
                .and_then(|c| {
                    c.query_row("SELECT count(*) FROM raw_traces", [], |r| {
                        r.get::<_, i64>(0)
                    })
                })
                .unwrap_or(0);
            if seen > 0 {
                break;
            }
        }
    }
    child.kill().expect("kill -9");
    let _ = child.wait();
    assert!(
        seen > 0 && (seen as usize) < lines,
        "killed at {seen} of {lines} rows"
    );
    let s = env.json(&["backfill", "--json"]);
    assert_eq!(s["bad_lines"], 0);
    assert_eq!(table_counts(&env.db()), want);
    assert_eq!(
        env.json(&["report", "daily", "--json"])["rows"],
        reference.json(&["report", "daily", "--json"])["rows"]
    );
    println!(
        "figure: killed at {seen}/{lines} raw rows; after restart counts equal the uninterrupted run: {want:?}"
    );
}

#[test]
fn recapturing_everything_creates_no_duplicates() {
    // Reference-design defect: random event ids duplicated rows on every restart.
    let dir = tempfile::tempdir().expect("dir");
    write_corpus(dir.path(), 3, 20);
    let env = Env::new(&[dir.path().to_path_buf()]);
    env.run(&["backfill"]);
    let want = table_counts(&env.db());
    // Forget every capture cursor: all lines are read and sent again.
    redis_cmd(&env, &["DEL", "bp:capture:cursors"]);
    let s = env.json(&["backfill", "--json"]);
    assert_eq!(
        s["events"].as_i64(),
        Some(240),
        "everything was re-sent: {s}"
    );
    assert_eq!(table_counts(&env.db()), want);
}

fn spawn_serve(env: &Env) -> std::process::Child {
    env.cmd(&["serve"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("spawn serve")
}

fn wait_drained(env: &Env, sessions: i64, timeout: Duration) -> Value {
    let start = Instant::now();
    loop {
        // `serve` may still be creating the database.
        let out = env.cmd(&["status", "--json"]).output().expect("status");
        let st: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if st["sessions"].as_i64() == Some(sessions)
            && st["slow_path_backlog"] == 0
            && st["pending"] == 0
            && st["consumer_lag"] == 0
        {
            return st;
        }
        assert!(start.elapsed() < timeout, "pipeline did not drain: {st}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn two_serve_processes_share_one_pipeline_without_duplicates() {
    let dir = tempfile::tempdir().expect("dir");
    write_corpus(dir.path(), 12, 100);
    let reference = Env::new(&[dir.path().to_path_buf()]);
    reference.run(&["backfill"]);
    let want = table_counts(&reference.db());

    let env = Env::new(&[dir.path().to_path_buf()]);
    let mut a = spawn_serve(&env);
    let mut b = spawn_serve(&env);
    let st = wait_drained(&env, 12, Duration::from_secs(60));
    let holder = st["capture_lease_holder"]
        .as_str()
        .expect("a lease holder")
        .to_string();
    let pids = [a.id().to_string(), b.id().to_string()];
    assert!(
        pids.iter().any(|p| holder.contains(&format!(":{p}:"))),
        "holder {holder} is one of {pids:?}"
    );
    // New activity while both run is captured once.
    support::write_corpus_from(dir.path(), 100, 1, 5);
    let mut want_plus: BTreeMap<String, i64> = want.into_iter().collect();
    // One more session with 5 turns of 4 lines (2 of them with text).
    for (k, d) in [
        ("raw_traces", 20),
        ("sessions", 1),
        ("messages", 10),
        ("messages_fts", 10),
        ("api_responses", 5),
        ("tool_calls", 5),
    ] {
        *want_plus.get_mut(k).expect("table") += d;
    }
    // The file may be captured in more than one piece: wait for the counts to settle.
    let t0 = Instant::now();
    let got = loop {
        let got: BTreeMap<String, i64> = table_counts(&env.db()).into_iter().collect();
        if got == want_plus || t0.elapsed() > Duration::from_secs(30) {
            break got;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // Still equal after both had time to (wrongly) write a second copy.
    std::thread::sleep(Duration::from_secs(1));
    let again: BTreeMap<String, i64> = table_counts(&env.db()).into_iter().collect();
    let _ = a.kill();
    let _ = b.kill();
    let _ = a.wait();
    let _ = b.wait();
    assert_eq!(got, want_plus);
    assert_eq!(again, want_plus);
    println!(
        "figure: 2 serve processes, 13 sessions, counts equal a single run plus the late session"
    );
}

#[test]
fn a_new_line_is_visible_while_serving() {
    let dir = tempfile::tempdir().expect("dir");
    write_corpus(dir.path(), 1, 2);
    let env = Env::new(&[dir.path().to_path_buf()]);
    let mut serve = spawn_serve(&env);
    wait_drained(&env, 1, Duration::from_secs(30));
    let file = dir
        .path()
        .join("projects/-proj-0/00000000-0000-4000-8000-000000000000.jsonl");
    let line = r#"{"type":"user","sessionId":"fresh-session","uuid":"f1","timestamp":"2026-05-01T10:00:00.000Z","cwd":"/p","message":{"role":"user","content":"fresh"}}"#;
    let t0 = Instant::now();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .expect("open");
    std::io::Write::write_all(&mut f, format!("{line}\n").as_bytes()).expect("append");
    let visible = loop {
        let s = env.json(&["sessions", "--json"]);
        if s["sessions"]
            .as_array()
            .expect("sessions")
            .iter()
            .any(|x| x["session_id"] == "fresh-session")
        {
            break t0.elapsed();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "appended line never became visible"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = serve.kill();
    let _ = serve.wait();
    println!(
        "figure: appended line visible in list_sessions after {} ms",
        visible.as_millis()
    );
}

#[test]
fn a_killed_managed_redis_is_restarted_and_capture_goes_on() {
    let dir = tempfile::tempdir().expect("dir");
    write_corpus(dir.path(), 1, 2);
    let env = Env::new(&[dir.path().to_path_buf()]);
    let managed = |args: &[&str]| {
        let mut c = env.cmd(args);
        c.env_remove("REDIS_URL");
        c
    };
    let mut ingest = managed(&["ingest"]).spawn().expect("ingest");
    let pidfile = env.home.path().join("redis/redis.pid");
    let t0 = Instant::now();
    while !pidfile.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "managed redis-server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let pid = std::fs::read_to_string(&pidfile)
        .expect("pid")
        .trim()
        .to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-9", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let file = dir
        .path()
        .join("projects/-proj-0/00000000-0000-4000-8000-000000000000.jsonl");
    let line = r#"{"type":"user","sessionId":"after-crash","uuid":"c1","timestamp":"2026-05-01T10:00:00.000Z","cwd":"/p","message":{"role":"user","content":"after"}}"#;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .expect("open");
    std::io::Write::write_all(&mut f, format!("{line}\n").as_bytes()).expect("append");
    let t1 = Instant::now();
    let recovered = loop {
        let out = managed(&["sessions", "--json"]).output().expect("sessions");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if v["sessions"]
            .as_array()
            .is_some_and(|s| s.iter().any(|x| x["session_id"] == "after-crash"))
        {
            break t1.elapsed();
        }
        assert!(
            t1.elapsed() < Duration::from_secs(30),
            "capture did not resume after the redis-server was killed"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let new_pid = std::fs::read_to_string(&pidfile)
        .expect("pid")
        .trim()
        .to_string();
    assert_ne!(pid, new_pid);
    let _ = ingest.kill();
    let _ = ingest.wait();
    let _ = managed(&["redis", "stop"]).output();
    println!(
        "figure: redis-server killed; restarted and the new line was visible after {} ms",
        recovered.as_millis()
    );
}
