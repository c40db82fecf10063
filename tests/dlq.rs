//! `blueplane dlq list|show|replay|purge` end to end: the real binary, a real redis-server,
//! real SQLite files. Dead letters are made the real way where the pipeline can make them
//! (bad transcript lines, underivable records) and injected in the fast path's shape
//! otherwise (a store rejection cannot be provoked from outside).

mod support;

use std::process::Stdio;

use serde_json::Value;
use support::redis::Resp;
use support::{Env, count};

fn redis(env: &Env, args: &[&str]) -> Resp {
    support::redis::command(&env.redis.socket, args).expect("redis command")
}

fn xlen(env: &Env, key: &str) -> i64 {
    match redis(env, &["XLEN", key]) {
        Resp::Integer(n) => n,
        other => panic!("XLEN {key}: {other:?}"),
    }
}

/// XADDs a letter to `bp:dlq` and returns its id.
fn add_letter(env: &Env, fields: &[(&str, &str)]) -> String {
    let mut args = vec!["XADD", "bp:dlq", "*"];
    for (k, v) in fields {
        args.push(k);
        args.push(v);
    }
    match redis(env, &args) {
        Resp::Bulk(Some(id)) => String::from_utf8(id).expect("utf8 id"),
        other => panic!("XADD: {other:?}"),
    }
}

fn stat(env: &Env, name: &str) -> i64 {
    match redis(env, &["HGET", "bp:stats", name]) {
        Resp::Bulk(Some(v)) => String::from_utf8_lossy(&v).parse().expect("number"),
        Resp::Bulk(None) => 0,
        other => panic!("HGET {name}: {other:?}"),
    }
}

fn user_line(session: &str, uuid: &str, ts: &str, text: &str) -> String {
    format!(
        r#"{{"type":"user","sessionId":"{session}","uuid":"{uuid}","timestamp":"{ts}","cwd":"/p","message":{{"role":"user","content":"{text}"}}}}"#
    )
}

const TS: &str = "2026-03-01T10:00:00.000Z";

fn ids_of(v: &Value, list: &str) -> Vec<String> {
    v[list]
        .as_array()
        .unwrap_or_else(|| panic!("no '{list}' in {v}"))
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_string())
        .collect()
}

fn empty_env() -> (tempfile::TempDir, Env) {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir_all(dir.path().join("projects")).expect("mkdir");
    let env = Env::new(&[dir.path().to_path_buf()]);
    // Creates the database (and the streams' groups).
    env.json(&["backfill", "--json"]);
    (dir, env)
}

#[test]
fn bad_lines_are_listed_and_a_repaired_line_is_replayed_from_the_file() {
    let dir = tempfile::tempdir().expect("dir");
    let proj = dir.path().join("projects/-p");
    std::fs::create_dir_all(&proj).expect("mkdir");
    let file = proj.join("s-dlq.jsonl");
    let first = user_line("s-dlq", "u1", TS, "first");
    let fixed = user_line("s-dlq", "u2", TS, "second");
    // The same line with its timestamp garbled (same length): a bad line today.
    let garbled = fixed.replace(TS, "not-a-time-at-all-000000");
    assert_eq!(garbled.len(), fixed.len());
    let broken = "{this is not json";
    let last = user_line("s-dlq", "u3", TS, "third");
    let body = |second: &str| format!("{first}\n{second}\n{broken}\n{last}\n");
    std::fs::write(&file, body(&garbled)).expect("write");
    let garbled_at = (first.len() + 1) as u64;
    let broken_at = garbled_at + garbled.len() as u64 + 1;

    let env = Env::new(&[dir.path().to_path_buf()]);
    let s = env.json(&["backfill", "--json"]);
    assert_eq!(
        (s["events"].as_i64(), s["bad_lines"].as_i64()),
        (Some(2), Some(2)),
        "{s}"
    );
    let session_messages = "SELECT count(*) FROM messages WHERE session_id = 's-dlq'";
    assert_eq!(count(&env.db(), session_messages), 2);

    // list: newest first, with reasons and places, no content.
    let l = env.json(&["dlq", "list", "--json"]);
    assert_eq!(l["order"], "newest first", "{l}");
    assert_eq!(l["total"], 2, "{l}");
    let letters = l["letters"].as_array().expect("letters");
    assert_eq!(letters.len(), 2, "{l}");
    let src = file.display().to_string();
    for (letter, offset, reason) in [
        (&letters[0], broken_at, "malformed JSON"),
        (
            &letters[1],
            garbled_at,
            "user record without a valid timestamp",
        ),
    ] {
        assert_eq!(letter["stage"], "capture", "{letter}");
        assert_eq!(letter["source"], src.as_str(), "{letter}");
        assert_eq!(letter["offset"], offset, "{letter}");
        let r = letter["reason"].as_str().expect("reason");
        assert!(r.contains(reason), "reason {r:?} lacks {reason:?}");
        assert!(letter["age_s"].as_i64().is_some_and(|a| a >= 0), "{letter}");
    }
    let garbled_id = letters[1]["id"].as_str().expect("id").to_string();
    let broken_id = letters[0]["id"].as_str().expect("id").to_string();
    let one = env.json(&["dlq", "list", "--json", "--limit", "1"]);
    assert_eq!(ids_of(&one, "letters"), std::slice::from_ref(&broken_id));
    let none = env.json(&["dlq", "list", "--json", "--stage", "fast_path"]);
    assert_eq!(ids_of(&none, "letters"), Vec::<String>::new());
    // The table names both.
    let table = String::from_utf8(env.run(&["dlq", "list"]).stdout).expect("utf8");
    assert!(table.starts_with("id "), "{table}");
    assert!(table.contains(&format!("{src}:{garbled_at}")), "{table}");
    assert!(table.contains("2 of 2 dead letters"), "{table}");

    // show: every field, and no line content (capture keeps only the place).
    let shown = env.json(&["dlq", "show", &garbled_id, "--json"]);
    assert_eq!(shown["id"], garbled_id.as_str());
    let fields = shown["fields"].as_object().expect("fields");
    let mut names: Vec<&str> = fields.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["at", "offset", "reason", "source", "stage"],
        "{shown}"
    );
    assert!(
        !shown.to_string().contains("second"),
        "content leaked: {shown}"
    );

    // A letter whose file has gone away.
    let gone = add_letter(
        &env,
        &[
            ("stage", "capture"),
            ("reason", "malformed JSON: key must be a string"),
            ("source", "/nonexistent/gone.jsonl"),
            ("offset", "0"),
            ("at", "1767225600000"),
        ],
    );

    // Nothing changed yet: a replay keeps all three, with the reasons.
    let r = env.json(&["dlq", "replay", "--all", "--json"]);
    assert_eq!(ids_of(&r, "replayed"), Vec::<String>::new(), "{r}");
    assert_eq!(
        ids_of(&r, "kept"),
        [garbled_id.clone(), broken_id.clone(), gone.clone()]
    );
    let reason = |v: &Value, i: usize| v["kept"][i]["reason"].as_str().expect("reason").to_string();
    assert!(
        reason(&r, 0).starts_with("still bad: user record without a valid timestamp"),
        "{r}"
    );
    assert!(
        reason(&r, 1).starts_with("still bad: malformed JSON"),
        "{r}"
    );
    assert_eq!(reason(&r, 2), "the file is gone", "{r}");
    assert_eq!(xlen(&env, "bp:dlq"), 3);

    // The line is repaired in place (same length, so the capture cursor stays valid and
    // capture itself does not read the file again).
    std::fs::write(&file, body(&fixed)).expect("rewrite");
    let r = env.json(&["dlq", "replay", "--stage", "capture", "--json"]);
    assert_eq!(
        ids_of(&r, "replayed"),
        std::slice::from_ref(&garbled_id),
        "{r}"
    );
    assert_eq!(r["replayed"][0]["event_id"], "cc:s-dlq:u2", "{r}");
    assert_eq!(ids_of(&r, "kept"), [broken_id.clone(), gone.clone()], "{r}");
    assert_eq!(xlen(&env, "bp:dlq"), 2);
    assert_eq!(stat(&env, "replayed"), 1);

    // The next run stores it (capture finds nothing new: the event came from the replay).
    let s = env.json(&["backfill", "--json"]);
    assert_eq!(
        (s["events"].as_i64(), s["bad_lines"].as_i64()),
        (Some(0), Some(0)),
        "{s}"
    );
    assert_eq!(
        count(
            &env.db(),
            "SELECT count(*) FROM raw_traces_text WHERE id = 'cc:s-dlq:u2'"
        ),
        1
    );
    assert_eq!(count(&env.db(), session_messages), 3);

    // Replaying the replayed letter again finds nothing; the rest stays as it was.
    let r = env.json(&["dlq", "replay", &garbled_id, "--json"]);
    assert_eq!(r["not_found"], serde_json::json!([garbled_id]), "{r}");
    assert_eq!(ids_of(&r, "replayed"), Vec::<String>::new(), "{r}");
    let l = env.json(&["dlq", "list", "--json"]);
    assert_eq!(ids_of(&l, "letters"), [gone, broken_id]);
    // Counters count what happened: the bad lines stay counted.
    let st = env.json(&["status", "--json"]);
    assert_eq!(st["counters"]["bad_input"], 2, "{st}");
    assert_eq!(st["counters"]["replayed"], 1, "{st}");
    assert_eq!(st["dlq_size"], 2, "{st}");
}

/// A queue entry the fast path dead-lettered, in the shape `dead_letter_entry` writes.
fn add_fast_path_letter(env: &Env, session: &str, uuid: &str, text: &str) -> String {
    let payload = user_line(session, uuid, TS, text);
    let id = format!("cc:{session}:{uuid}");
    let src = format!("/home/u/.claude/projects/-p/{session}.jsonl");
    add_letter(
        env,
        &[
            ("stage", "fast_path"),
            (
                "reason",
                "poison: delivered 6 times and a consumer died storing it",
            ),
            ("source", &src),
            ("offset", "0"),
            ("at", "1767225600000"),
            ("stream_id", "1767225600000-0"),
            ("orig_id", &id),
            ("orig_p", "claude_code"),
            ("orig_k", "user"),
            ("orig_s", session),
            ("orig_t", "1772359200000"),
            ("orig_src", &src),
            ("orig_off", "0"),
            ("orig_d", &payload),
        ],
    )
}

#[test]
fn fast_path_letters_are_replayed_and_stored_once() {
    let (_dir, env) = empty_env();
    let raw = "SELECT count(*) FROM raw_traces_text WHERE id = 'cc:s-fp:u1'";
    let first = add_fast_path_letter(&env, "s-fp", "u1", "from the dlq");
    let shown = env.json(&["dlq", "show", &first, "--json"]);
    assert_eq!(shown["fields"]["orig_id"], "cc:s-fp:u1", "{shown}");
    assert!(
        shown["fields"]["orig_d"]
            .as_str()
            .is_some_and(|d| d.contains("from the dlq")),
        "{shown}"
    );
    let text = String::from_utf8(env.run(&["dlq", "show", &first]).stdout).expect("utf8");
    assert!(
        text.contains("orig_d") && text.contains("1767225600000 (2026-01-01T00:00:00.000Z"),
        "{text}"
    );

    let r = env.json(&["dlq", "replay", &first, "--json"]);
    assert_eq!(ids_of(&r, "replayed"), std::slice::from_ref(&first), "{r}");
    assert_eq!(r["replayed"][0]["event_id"], "cc:s-fp:u1", "{r}");
    assert_eq!(xlen(&env, "bp:dlq"), 0, "the letter is gone");
    env.json(&["backfill", "--json"]);
    assert_eq!(count(&env.db(), raw), 1);

    // Replayed again: nothing left to replay.
    let r = env.json(&["dlq", "replay", &first, "--json"]);
    assert_eq!(r["not_found"], serde_json::json!([first]), "{r}");
    assert_eq!(ids_of(&r, "replayed"), Vec::<String>::new(), "{r}");

    // The same entry dead-lettered twice (e.g. two consumers): both replay, one row.
    let second = add_fast_path_letter(&env, "s-fp", "u1", "from the dlq");
    let third = add_fast_path_letter(&env, "s-fp", "u1", "from the dlq");
    let r = env.json(&["dlq", "replay", "--all", "--json"]);
    assert_eq!(ids_of(&r, "replayed"), [second, third], "{r}");
    env.json(&["backfill", "--json"]);
    assert_eq!(count(&env.db(), raw), 1, "stored once");
    assert_eq!(
        count(
            &env.db(),
            "SELECT count(*) FROM messages WHERE session_id = 's-fp'"
        ),
        1
    );
    assert_eq!(xlen(&env, "bp:dlq"), 0);
    assert_eq!(stat(&env, "replayed"), 3);

    // A letter whose original entry is incomplete stays, with the reason.
    let broken = add_letter(
        &env,
        &[
            ("stage", "fast_path"),
            (
                "reason",
                "undecodable entry: missing or non-UTF-8 field 'd'",
            ),
            ("source", ""),
            ("offset", "0"),
            ("at", "1767225600000"),
            ("stream_id", "1767225600000-1"),
            ("orig_id", "cc:s-fp:u9"),
            ("orig_p", "claude_code"),
        ],
    );
    let r = env.json(&["dlq", "replay", "--all", "--json"]);
    assert_eq!(ids_of(&r, "kept"), [broken], "{r}");
    let reason = r["kept"][0]["reason"].as_str().expect("reason");
    assert!(reason.contains("cannot be decoded"), "{reason}");
    assert_eq!(xlen(&env, "bp:dlq"), 1);
}

#[test]
fn purge_asks_and_refuses_without_a_terminal() {
    let (_dir, env) = empty_env();
    let a = add_fast_path_letter(&env, "s-p", "u1", "one");
    let b = add_fast_path_letter(&env, "s-p", "u2", "two");
    add_letter(
        &env,
        &[
            ("stage", "slow_path"),
            (
                "reason",
                "usage.input_tokens = 1e12 is not a whole number (event cc:s-p:u3)",
            ),
            ("source", "/p/s-p.jsonl"),
            ("offset", "10"),
            ("at", "1767225600000"),
        ],
    );
    for args in [
        &["dlq", "purge", "--all"][..],
        &["dlq", "purge", &a],
        &["dlq", "purge", "--stage", "slow_path", "--json"],
    ] {
        let out = env.cmd(args).stdin(Stdio::null()).output().expect("run");
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("stdin is not a terminal") && err.contains("pass --yes"),
            "{args:?}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "one sentence: {err}");
        assert!(out.stdout.is_empty(), "{args:?} printed {:?}", out.stdout);
        assert_eq!(xlen(&env, "bp:dlq"), 3, "nothing deleted by {args:?}");
    }
    // Not ids: an error before anything happens.
    let out = env
        .cmd(&["dlq", "purge", "--yes", "bogus"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a dead-letter id"));

    let p = env.json(&["dlq", "purge", "--stage", "slow_path", "--yes", "--json"]);
    assert_eq!(p["purged"], 1, "{p}");
    let l = env.json(&["dlq", "list", "--json"]);
    assert_eq!(ids_of(&l, "letters"), [b.clone(), a.clone()]);
    let p = env.json(&["dlq", "purge", &a, "--yes", "--json"]);
    assert_eq!(
        (p["purged"].as_i64(), p["not_found"].clone()),
        (Some(1), serde_json::json!([]))
    );
    let out = env.run(&["dlq", "purge", "--all", "--yes"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "purged 1 dead letter"
    );
    assert_eq!(xlen(&env, "bp:dlq"), 0);
    let l = env.json(&["dlq", "list", "--json"]);
    assert_eq!(
        (l["total"].as_i64(), ids_of(&l, "letters")),
        (Some(0), vec![])
    );
    assert_eq!(stat(&env, "purged"), 3);
    // Nothing to purge: no question, no error.
    let out = env
        .cmd(&["dlq", "purge", "--all"])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The purged events never reached the store.
    env.json(&["backfill", "--json"]);
    assert_eq!(count(&env.db(), "SELECT count(*) FROM raw_traces"), 0);
}

#[test]
fn slow_path_letters_are_kept_by_replay_with_the_reason() {
    let dir = tempfile::tempdir().expect("dir");
    let proj = dir.path().join("projects/-p");
    std::fs::create_dir_all(&proj).expect("mkdir");
    // An assistant line with a token count no response can have: stored raw, not derived.
    let line = format!(
        r#"{{"type":"assistant","sessionId":"s-slow","uuid":"a1","timestamp":"{TS}","requestId":"r1","message":{{"id":"m1","model":"claude-sonnet-4-20250514","role":"assistant","content":[{{"type":"text","text":"hi"}}],"usage":{{"input_tokens":20000000,"output_tokens":1}}}}}}"#
    );
    std::fs::write(proj.join("s-slow.jsonl"), format!("{line}\n")).expect("write");
    let env = Env::new(&[dir.path().to_path_buf()]);
    // The slow path sends its rejects right after deriving; a backfill may end just before.
    for _ in 0..5 {
        env.json(&["backfill", "--json"]);
        if xlen(&env, "bp:dlq") > 0 {
            break;
        }
    }
    let l = env.json(&["dlq", "list", "--json", "--stage", "slow_path"]);
    let letters = l["letters"].as_array().expect("letters");
    assert_eq!(letters.len(), 1, "{l}");
    let id = letters[0]["id"].as_str().expect("id").to_string();
    let reason = letters[0]["reason"].as_str().expect("reason");
    assert!(reason.contains("usage.input_tokens = 20000000"), "{reason}");

    for args in [
        &["dlq", "replay", "--all", "--json"][..],
        &["dlq", "replay", &id, "--json"],
        &["dlq", "replay", "--stage", "slow_path", "--json"],
    ] {
        let r = env.json(args);
        assert_eq!(ids_of(&r, "replayed"), Vec::<String>::new(), "{r}");
        assert_eq!(ids_of(&r, "kept"), std::slice::from_ref(&id), "{r}");
        assert_eq!(r["kept"][0]["stage"], "slow_path", "{r}");
        let why = r["kept"][0]["reason"].as_str().expect("reason");
        assert!(
            why.contains("not replayed") && why.contains("derived again"),
            "{why}"
        );
    }
    let text = String::from_utf8(env.run(&["dlq", "replay", "--all"]).stdout).expect("utf8");
    assert!(text.starts_with("replayed 0 dead letters"), "{text}");
    assert!(text.contains("kept 1:") && text.contains(&id), "{text}");
    assert_eq!(xlen(&env, "bp:dlq"), 1);
    // The raw row is still there for a future derivation.
    assert_eq!(
        count(
            &env.db(),
            "SELECT count(*) FROM raw_traces_text WHERE id = 'cc:s-slow:a1'"
        ),
        1
    );
    assert_eq!(stat(&env, "replayed"), 0);
}

#[test]
fn a_closed_stdout_ends_dlq_list_quietly() {
    let (_dir, env) = empty_env();
    for i in 0..300 {
        add_fast_path_letter(&env, "s-c", &format!("u{i}"), "x");
    }
    let mut child = env
        .cmd(&["dlq", "list", "--limit", "300"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
