//! Metrics that know when they are complete: Redis flushed or replaced, date-time bounds that
//! do not fall on bucket edges, unpriced models, and absurd token counts.
#![allow(clippy::print_stdout)]

mod support;

use std::path::Path;

use serde_json::Value;
use support::{Env, count, fixtures, write_corpus};

fn redis(env: &Env, args: &[&str]) -> support::redis::Resp {
    support::redis::command(&env.redis.socket, args).expect("redis command")
}

/// Every bulk string of a reply, space-separated.
fn text(r: &support::redis::Resp) -> String {
    fn walk(r: &support::redis::Resp, out: &mut String) {
        match r {
            support::redis::Resp::Bulk(Some(b)) => {
                out.push_str(&String::from_utf8_lossy(b));
                out.push(' ');
            }
            support::redis::Resp::Array(Some(items)) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = String::new();
    walk(r, &mut out);
    out
}

/// Rows and totals of a report, without `source`.
fn figures(v: &Value) -> (Value, Value) {
    (v["rows"].clone(), v["totals"].clone())
}

#[test]
fn reports_stay_right_after_flushall_and_with_a_second_redis() {
    let f = fixtures();
    let env = Env::new(&[f.join("ccusage"), f.join("spotter")]);
    env.run(&["backfill"]);
    let reports = ["daily", "weekly", "monthly"];
    let before: Vec<Value> = reports
        .iter()
        .map(|r| env.json(&["report", r, "--json", "-z", "Asia/Kathmandu"]))
        .collect();
    for b in &before {
        assert_eq!(b["source"], "redis", "{b}");
        assert!(!b["rows"].as_array().expect("rows").is_empty());
    }

    // Redis loses everything: the next reports are still right, from SQLite.
    assert_eq!(
        redis(&env, &["FLUSHALL"]),
        support::redis::Resp::Simple("OK".into())
    );
    for (r, b) in reports.iter().zip(&before) {
        let now = env.json(&["report", r, "--json", "-z", "Asia/Kathmandu"]);
        assert_eq!(now["source"], "sqlite", "{now}");
        assert_eq!(figures(&now), figures(b), "report {r} after FLUSHALL");
    }
    // Any pipeline run rebuilds Redis; then reports come from it again, unchanged.
    env.run(&["backfill"]);
    for (r, b) in reports.iter().zip(&before) {
        let now = env.json(&["report", r, "--json", "-z", "Asia/Kathmandu"]);
        assert_eq!(now["source"], "redis", "{now}");
        assert_eq!(figures(&now), figures(b), "report {r} after the rebuild");
    }

    // A second, empty Redis (a new REDIS_URL): not this store's metrics, so SQLite answers.
    let other = support::redis::TestRedis::start();
    for (r, b) in reports.iter().zip(&before) {
        let out = env
            .cmd(&["report", r, "--json", "-z", "Asia/Kathmandu"])
            .env("REDIS_URL", other.url())
            .output()
            .expect("report");
        assert!(out.status.success());
        let now: Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(now["source"], "sqlite", "{now}");
        assert_eq!(figures(&now), figures(b), "report {r} with another Redis");
    }
    // Redis rolled back (a restart without the last second of its AOF): buckets written
    // since are missing; the generation check catches it.
    redis(&env, &["SET", "bp:m:gen", "0"]);
    let now = env.json(&["report", "daily", "--json", "-z", "Asia/Kathmandu"]);
    assert_eq!(now["source"], "sqlite", "{now}");
    assert_eq!(figures(&now), figures(&before[0]));
    println!(
        "figure: daily/weekly/monthly identical after FLUSHALL, rebuild, a second Redis and a rolled-back generation"
    );
}

/// One session with a response every minute from 10:00 UTC.
fn minute_corpus(dir: &Path) -> usize {
    write_corpus(dir, 1, 40)
}

#[test]
fn date_time_bounds_are_exact_not_rounded_to_buckets() {
    let dir = tempfile::tempdir().expect("dir");
    minute_corpus(dir.path());
    let env = Env::new(&[dir.path().to_path_buf()]);
    env.run(&["backfill"]);
    // write_corpus: session 0 starts at 2026-01-01T00:00:00Z, turn t at minute t, one
    // de-duplicated response per turn. 00:05:30 .. 00:15:30 holds turns 6..=15: 10 responses;
    // rounded to quarter hours it would be 00:00 .. 00:30 (30).
    let q = |extra: &[&str]| {
        let mut args = vec![
            "report",
            "daily",
            "--json",
            "-z",
            "UTC",
            "--since",
            "2026-01-01T00:05:30Z",
            "--until",
            "2026-01-01T00:35:30Z",
        ];
        args.extend_from_slice(extra);
        env.json(&args)
    };
    let from_redis = q(&[]);
    assert_eq!(from_redis["source"], "redis");
    assert_eq!(from_redis["totals"]["responses"], 30, "{from_redis}");
    assert_eq!(from_redis["totals"]["tool_calls"], 30, "{from_redis}");
    let from_sqlite = q(&["--project", "proj"]);
    assert_eq!(from_sqlite["source"], "sqlite");
    assert_eq!(from_sqlite["totals"], from_redis["totals"]);
    // Both bounds inside one bucket.
    let narrow = env.json(&[
        "report",
        "daily",
        "--json",
        "-z",
        "UTC",
        "--since",
        "2026-01-01T00:01:30Z",
        "--until",
        "2026-01-01T00:03:30Z",
    ]);
    assert_eq!(narrow["totals"]["responses"], 2, "{narrow}");
    println!("figure: 30 responses counted for a 30-minute range (40 if rounded to buckets)");
}

#[test]
fn unpriced_models_are_counted_in_metric_rows() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ccusage-oracle/synthetic");
    let env = Env::new(&[dir]);
    env.run(&["backfill"]);
    for source in ["redis", "sqlite"] {
        if source == "sqlite" {
            redis(&env, &["FLUSHALL"]);
        }
        let r = env.json(&["report", "daily", "--json", "-z", "UTC"]);
        assert_eq!(r["source"], source);
        assert_eq!(r["totals"]["unpriced_responses"], 1, "{r}");
        assert_eq!(r["rows"][0]["unpriced_responses"], 1, "{r}");
        // <synthetic> lines are never responses (the zero one is not even stored).
        assert_eq!(r["totals"]["responses"], 1, "{r}");
    }
    let out = env.run(&["report", "daily", "-z", "UTC"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("without a known price"), "{text}");
}

#[test]
fn absurd_and_negative_token_counts_are_dead_lettered_and_the_pipeline_goes_on() {
    let dir = tempfile::tempdir().expect("dir");
    let lines = write_corpus(dir.path(), 2, 5);
    let proj = dir.path().join("projects/-bad");
    std::fs::create_dir_all(&proj).expect("mkdir");
    let line = |uuid: &str, usage: &str| {
        format!(
            r#"{{"type":"assistant","sessionId":"s-absurd","uuid":"{uuid}","timestamp":"2026-01-01T03:00:00.000Z","cwd":"/p","version":"2.1.39","requestId":"r-{uuid}","message":{{"id":"m-{uuid}","model":"claude-sonnet-4-20250514","role":"assistant","content":[{{"type":"text","text":"x"}}],"usage":{usage}}}}}"#
        )
    };
    let body = [
        line(
            "a1",
            r#"{"input_tokens":5000000000000000000,"output_tokens":1}"#,
        ),
        line(
            "a2",
            r#"{"input_tokens":5000000000000000000,"output_tokens":1}"#,
        ),
        line("a3", r#"{"input_tokens":-40,"output_tokens":1}"#),
        line("a4", r#"{"input_tokens":3,"output_tokens":4}"#),
    ]
    .join("\n");
    std::fs::write(proj.join("s-absurd.jsonl"), body + "\n").expect("write");
    // A session whose only record is rejected leaves no trace in the derived tables.
    let only = line("b1", r#"{"input_tokens":1,"output_tokens":99000000000}"#)
        .replace("s-absurd", "s-only-absurd");
    std::fs::write(proj.join("s-only-absurd.jsonl"), only + "\n").expect("write");
    let env = Env::new(&[dir.path().to_path_buf()]);
    let s = env.json(&["backfill", "--json"]);
    assert_eq!(s["events"].as_i64(), Some(lines as i64 + 5), "{s}");
    assert_eq!(s["bad_lines"], 0, "{s}");
    // The three out-of-range records are dead-lettered with their reason.
    let dlq = redis(&env, &["XRANGE", "bp:dlq", "-", "+"]);
    let letters = text(&dlq);
    assert_eq!(letters.matches("slow_path").count(), 4, "{letters}");
    assert!(
        letters.contains("above the bound") && letters.contains("negative"),
        "{letters}"
    );
    // Everything else is derived; reports and sessions work.
    assert_eq!(
        count(
            &env.db(),
            "SELECT count(*) FROM api_responses WHERE session_id = 's-absurd'"
        ),
        1
    );
    let sessions = env.json(&["sessions", "--json"]);
    assert_eq!(sessions["sessions"].as_array().expect("sessions").len(), 3);
    let r = env.json(&["report", "daily", "--json", "-z", "UTC"]);
    assert_eq!(r["totals"]["tokens"]["input"], 2 * 5 * 10 + 3, "{r}");
    // A second backfill does not dead-letter them again.
    env.run(&["backfill"]);
    let again = text(&redis(&env, &["XRANGE", "bp:dlq", "-", "+"]));
    assert_eq!(again.matches("slow_path").count(), 4);
    assert_eq!(
        count(
            &env.db(),
            "SELECT count(*) FROM sessions WHERE session_id = 's-only-absurd'"
        ),
        0
    );
}

/// Derivation changed (a store derived by an older binary): everything is derived again
/// from raw_traces, with identical figures.
#[test]
fn a_derive_version_bump_re_derives_the_store_with_identical_figures() {
    let f = fixtures();
    let env = Env::new(&[f.join("ccusage"), f.join("spotter")]);
    env.run(&["backfill"]);
    let tables = support::table_counts(&env.db());
    let reports: Vec<Value> = ["daily", "session"]
        .iter()
        .map(|r| env.json(&["report", r, "--json", "-z", "UTC"]))
        .collect();
    let sessions = env.json(&["sessions", "--json"]);
    {
        let c = rusqlite::Connection::open(env.db()).expect("db");
        c.execute(
            "UPDATE pipeline_state SET value = value - 1 WHERE key = 'derive_version:claude_code'",
            [],
        )
        .expect("older version");
        // Make the old derivation visibly different, so a no-op cannot pass.
        c.execute(
            "DELETE FROM api_responses WHERE rowid IN (SELECT rowid FROM api_responses LIMIT 3)",
            [],
        )
        .expect("damage");
    }
    env.run(&["backfill"]);
    assert_eq!(support::table_counts(&env.db()), tables);
    for (r, before) in ["daily", "session"].iter().zip(&reports) {
        let now = env.json(&["report", r, "--json", "-z", "UTC"]);
        assert_eq!(figures(&now), figures(before), "report {r}");
    }
    assert_eq!(env.json(&["sessions", "--json"]), sessions);
    let v: i64 = count(
        &env.db(),
        "SELECT value FROM pipeline_state WHERE key = 'derive_version:claude_code'",
    );
    assert!(v >= 2);
}

/// Cursor rows written straight into raw_traces as the capture would (a composer, a turn
/// with counts, a turn without: an estimate), then derived by `backfill`.
fn cursor_events() -> Vec<blueplane::event::Event> {
    use blueplane::event::{Event, Platform, Source, db_row_id};
    use serde_json::json;
    let t = 1_766_691_308_486_i64; // 2025-12-25T19:35:08.486Z
    let ev = |kind: &str, key: String, ts: i64, v: Value| Event {
        id: db_row_id("cu", &key, 1),
        platform: Platform::Cursor,
        kind: kind.into(),
        session_id: Some("cm".into()),
        timestamp_ms: Some(ts),
        source: Source::DbRow {
            db: "/c/globalStorage/state.vscdb".into(),
            key,
            version: 1,
        },
        payload: v.to_string(),
    };
    let bubble = |bid: &str, ts: i64, v: Value| {
        let mut v = v;
        v["composerId"] = json!("cm");
        v["bubbleId"] = json!(bid);
        ev("bubble", format!("bubbleId:cm:{bid}"), ts, v)
    };
    vec![
        ev(
            "composer",
            "composerData:cm".into(),
            t,
            json!({"composerId":"cm","name":"Metrics","createdAt":t,"lastUpdatedAt":t + 60_000,
                   "modelConfig":{"modelName":"claude-4.5-sonnet"},"workspacePath":"/c/proj",
                   "headers":[{"bubbleId":"u1"},{"bubbleId":"a1"},{"bubbleId":"u2"},{"bubbleId":"a2"}]}),
        ),
        bubble(
            "u1",
            t + 1_000,
            json!({"type":1,"text":"first question","textBytes":14}),
        ),
        bubble(
            "a1",
            t + 2_000,
            json!({"type":2,"text":"measured answer","textBytes":15,"requestId":"r1",
                   "tokenCount":{"inputTokens":1000,"outputTokens":100}}),
        ),
        bubble(
            "u2",
            t + 30_000,
            json!({"type":1,"text":"second question","textBytes":15}),
        ),
        bubble(
            "a2",
            t + 31_000,
            json!({"type":2,"text":"an answer Cursor counted nothing for","textBytes":400,
                   "requestId":"r2","tokenCount":{"inputTokens":0,"outputTokens":0}}),
        ),
    ]
}

#[test]
fn cursor_estimates_reach_redis_apart_from_measured_tokens_and_are_labelled() {
    let f = fixtures();
    let env = Env::new(&[f.join("ccusage")]);
    env.run(&["backfill"]);
    let claude_only = env.json(&["report", "daily", "--json", "-z", "UTC"]);
    assert!(claude_only["totals"].get("estimated_tokens").is_none());
    {
        let mut c = blueplane::store::open_writer(&env.db()).expect("db");
        let mut z = blueplane::store::codec::Compressor::default();
        blueplane::fast_path::insert_batch(&mut c, &mut z, &cursor_events()).expect("insert");
    }
    env.run(&["backfill"]);
    // The estimate's bucket (a2 at t + 31 s) holds it in its own fields.
    let bucket = (1_766_691_308_486_i64 + 31_000) / 900_000;
    let fields = text(&redis(&env, &["HGETALL", &format!("bp:m:q:{bucket}")]));
    assert!(
        fields.contains("cursor|ein 4 ") && fields.contains("cursor|eout 100 "),
        "{fields}"
    );
    let tokens = |r: &Value| r["totals"]["tokens"]["total"].as_i64().expect("total");
    for source in ["redis", "sqlite"] {
        if source == "sqlite" {
            redis(&env, &["FLUSHALL"]);
        }
        let r = env.json(&["report", "daily", "--json", "-z", "UTC"]);
        assert_eq!(r["source"], source, "{r}");
        // Measured: Claude's figures plus the one counted Cursor turn; the estimate
        // (ceil(15 / 4) in, ceil(400 / 4) out) is beside them, never inside.
        assert_eq!(tokens(&r), tokens(&claude_only) + 1_100, "{source}");
        assert_eq!(r["totals"]["estimated_tokens"], 4 + 100, "{r}");
        let day = r["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .find(|row| row["key"] == "2025-12-25")
            .expect("the Cursor day");
        assert_eq!(day["estimated_tokens"], 104, "{day}");
        assert_eq!(day["tokens"]["total"], 1_100, "{day}");
        assert!(day["estimated_cost_usd"].as_f64().is_some_and(|c| c > 0.0));
    }
    let out = env.run(&["report", "daily", "-z", "UTC"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("est. tokens*") && text.contains("~104"),
        "{text}"
    );
    assert!(text.contains("not in the totals above"), "{text}");
    let sessions = env.json(&["sessions", "--json"]);
    let cm = sessions["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .find(|s| s["session_id"] == "cm")
        .cloned()
        .expect("the Cursor session");
    assert_eq!(cm["platform"], "cursor");
    assert_eq!(cm["token_source"], "mixed");
    assert_eq!(cm["tokens_estimated"]["total"], 104);
    assert_eq!(cm["tokens"]["total"], 1_100);
}
