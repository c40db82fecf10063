//! Derivation does not depend on the order raw traces arrive in.
//!
//! Transcript lines (the shared fixtures, and generated sessions with streamed copies of one
//! response, tool results before their calls and sidechain replays) are parsed with
//! `parse_line` and stored with `insert_batch`, then derived
//!
//! - (a) in file order, in one slow-path round, and
//! - (b) shuffled, some lines delivered twice, in random batches with rounds of small random
//!   limits between them (lines of one file arriving across files and rounds).
//!
//! Both stores must hold the same conversation rows: sorted dumps of sessions, messages,
//! api_responses, tool_calls, subagents, projects and derive_rejects (no rowids or
//! insertion-order columns), and the same totals.
//!
//! What this found (fixed in derive version 3) is pinned by
//! `the_order_dependences_found_stay_fixed`; the one order dependence left is shown by the
//! ignored `a_summary_filed_under_another_session_id_waits_for_its_leaf`.

mod support;

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use blueplane::capture::claude_code::{FileContext, Parsed, parse_line};
use blueplane::capture::tailer;
use blueplane::event::Event;
use blueplane::privacy::PrivacyMode;
use blueplane::store::codec::Compressor;
use proptest::prelude::*;
use proptest::sample::Index;
use rusqlite::Connection;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------
// Lines -> events

fn parse_lines(path: &Path, lines: &[String]) -> Vec<Event> {
    let ctx = FileContext::for_path(path);
    let mut offset = 0u64;
    let mut out = Vec::new();
    for line in lines {
        if let Parsed::Event(e) = parse_line(&ctx, offset, line.as_bytes(), PrivacyMode::Standard) {
            out.push(*e);
        }
        offset += line.len() as u64 + 1;
    }
    out
}

/// Every line of the shared fixtures, as events in file order (including the summary filed
/// under another session id than its leaf in `representative_messages.jsonl`).
static FIXTURE_EVENTS: LazyLock<Vec<Event>> = LazyLock::new(|| {
    let root = support::fixtures();
    let mut files = Vec::new();
    for sub in ["ccusage", "spotter", "claude-code-log"] {
        support::jsonl_files(&root.join(sub), &mut files);
    }
    assert!(files.len() >= 10, "fixtures missing: {files:?}");
    file_events(&files)
});

/// Every event of `files`, in file order.
fn file_events(files: &[PathBuf]) -> Vec<Event> {
    let mut events = Vec::new();
    for f in files {
        let ctx = FileContext::for_path(f);
        let chunk = tailer::read_new(f, None).expect("read");
        events.extend(chunk.lines().filter_map(|(off, line)| {
            match parse_line(&ctx, off, line, PrivacyMode::Standard) {
                Parsed::Event(e) => Some(*e),
                _ => None,
            }
        }));
    }
    events
}

// ---------------------------------------------------------------------------------------
// Generated transcripts

/// One user prompt and the (streamed) response to it.
#[derive(Debug, Clone)]
struct Turn {
    /// Milliseconds since the previous turn.
    gap: i64,
    /// Output tokens each further copy of the response adds (0: an identical copy).
    growth: Vec<u32>,
    /// Which copies carry `usage.speed` (bit k: copy k).
    speed: u8,
    /// The response's last copy calls a tool: (result written before the call, is_error,
    /// milliseconds until the result).
    tool: Option<(bool, bool, i64)>,
}

/// A sidechain copy of one main-chain response in the session's sub-agent file.
#[derive(Debug, Clone)]
struct Replay {
    /// Which turn (modulo the number of turns).
    turn: usize,
    /// Same `requestId` as the main-chain copy (else a replay under another request).
    same_request: bool,
    /// Extra output tokens of the copy.
    extra: u32,
}

#[derive(Debug, Clone)]
struct SessionSpec {
    turns: Vec<Turn>,
    replays: Vec<Replay>,
    /// The session is resumed with a newer Claude Code on another branch after this turn
    /// (modulo the number of turns).
    resumed_after: Option<usize>,
    /// Records without a timestamp that name the session, each written after the line
    /// given (modulo the number of lines; 0: first in the file).
    names: Vec<(Name, usize)>,
}

/// A record that names a session.
#[derive(Debug, Clone, Copy)]
enum Name {
    /// `summary` of the conversation up to one of the session's lines (modulo their number).
    Summary(usize),
    AiTitle,
    CustomTitle,
}

fn name() -> impl Strategy<Value = Name> {
    prop_oneof![
        any::<usize>().prop_map(Name::Summary),
        Just(Name::AiTitle),
        Just(Name::CustomTitle),
    ]
}

fn turn() -> impl Strategy<Value = Turn> {
    (
        1i64..=120_000,
        prop::collection::vec(0u32..=40, 0..=3),
        prop_oneof![3 => Just(0u8), 1 => any::<u8>()],
        prop::option::of((any::<bool>(), any::<bool>(), 1i64..=30_000)),
    )
        .prop_map(|(gap, growth, speed, tool)| Turn {
            gap,
            growth,
            speed,
            tool,
        })
}

fn session() -> impl Strategy<Value = SessionSpec> {
    (
        prop::collection::vec(turn(), 1..=4),
        prop::collection::vec(
            (0usize..4, any::<bool>(), 0u32..=30).prop_map(|(turn, same_request, extra)| Replay {
                turn,
                same_request,
                extra,
            }),
            0..=2,
        ),
        prop::option::of(0usize..4),
        // At most one record of each kind: several `ai-title`s name the session by arrival
        // (they carry no timestamp), and so do several summaries.
        prop::collection::vec((name(), any::<usize>()), 0..=3).prop_map(|mut v| {
            let kind = |n: &Name| match n {
                Name::Summary(_) => 0,
                Name::AiTitle => 1,
                Name::CustomTitle => 2,
            };
            v.sort_by_key(|(n, _)| kind(n));
            v.dedup_by_key(|(n, _)| kind(n));
            v
        }),
    )
        .prop_map(|(turns, replays, resumed_after, names)| SessionSpec {
            turns,
            replays,
            resumed_after,
            names,
        })
}

const T0: i64 = 1_769_904_000_000; // 2026-02-01T00:00:00Z

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("time")
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The transcript files of the generated sessions: (path, lines in file order).
fn render(sessions: &[SessionSpec]) -> Vec<(PathBuf, Vec<String>)> {
    let mut files = Vec::new();
    for (i, spec) in sessions.iter().enumerate() {
        let sid = format!("gen-{i}");
        let cwd = format!("/gen/p{}", i % 2);
        let agent = format!("side{i}");
        let resumed = spec.resumed_after.map(|x| x % spec.turns.len());
        let mut main = Vec::new();
        let mut side = Vec::new();
        let mut t = T0 + i as i64 * 3_600_000;
        let mut parent = Value::Null;
        // The last copy of each turn's response and its tool result (for replays).
        let mut finals: Vec<(Value, i64, Option<Value>)> = Vec::new();
        for (j, turn) in spec.turns.iter().enumerate() {
            t += turn.gap;
            let (version, branch) = match resumed {
                Some(r) if j > r => ("2.1.40", "feature"),
                _ => ("2.1.39", "main"),
            };
            let base = |uuid: &str, parent: &Value, ts: i64| {
                json!({
                    "parentUuid": parent, "isSidechain": false, "userType": "external",
                    "cwd": cwd, "sessionId": sid, "version": version, "gitBranch": branch,
                    "uuid": uuid, "timestamp": rfc3339(ts),
                })
            };
            let uuid = format!("u-{i}-{j}");
            let mut prompt = base(&uuid, &parent, t);
            prompt["type"] = json!("user");
            prompt["message"] = json!({"role": "user", "content": format!("prompt {i}.{j}")});
            main.push(prompt);
            parent = json!(uuid);
            let mut output = 5u64;
            let copies = turn.growth.len() + 1;
            let mut result_line = None;
            for k in 0..copies {
                if k > 0 {
                    output += u64::from(turn.growth[k - 1]);
                }
                let ts = t + 1_000 + k as i64 * 50;
                let uuid = format!("a-{i}-{j}-{k}");
                let mut content =
                    vec![json!({"type": "text", "text": format!("answer {i}.{j}.{k}")})];
                if k + 1 == copies
                    && let Some((_, is_error, after)) = turn.tool
                {
                    let id = format!("toolu-{i}-{j}");
                    content.push(json!({"type": "tool_use", "id": id, "name": "Bash",
                                        "input": {"command": format!("ls {j}")}}));
                    let ruuid = format!("r-{i}-{j}");
                    let mut r = base(&ruuid, &json!(uuid), ts + after);
                    r["type"] = json!("user");
                    r["message"] = json!({"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": id, "content": "out\nput", "is_error": is_error}
                    ]});
                    result_line = Some(r);
                }
                let mut a = base(&uuid, &parent, ts);
                a["type"] = json!("assistant");
                a["requestId"] = json!(format!("req-{i}-{j}"));
                a["message"] = json!({
                    "id": format!("msg-{i}-{j}"), "type": "message", "role": "assistant",
                    "model": "claude-sonnet-4-5-20250929", "content": content,
                    "usage": {"input_tokens": 10 + j, "output_tokens": output,
                              "cache_creation_input_tokens": 20, "cache_read_input_tokens": 300},
                });
                if turn.speed & (1 << k.min(7)) != 0 {
                    a["message"]["usage"]["speed"] = json!("standard");
                }
                main.push(a.clone());
                parent = json!(uuid);
                if k + 1 == copies {
                    finals.push((a, ts, result_line.clone()));
                }
            }
            if let Some(r) = result_line {
                // The result may be written before the call (another file, a late flush).
                if turn.tool.is_some_and(|(first, ..)| first) {
                    let at = main.len() - copies;
                    main.insert(at, r);
                } else {
                    main.push(r);
                }
                parent = json!(format!("r-{i}-{j}"));
            }
            t += 40_000;
        }
        for (n, replay) in spec.replays.iter().enumerate() {
            let (orig, ts, result) = &finals[replay.turn % finals.len()];
            let mut a = orig.clone();
            a["isSidechain"] = json!(true);
            a["agentId"] = json!(agent);
            a["uuid"] = json!(format!("s-{i}-{n}"));
            a["parentUuid"] = json!(format!("sp-{i}-{n}"));
            a["timestamp"] = json!(rfc3339(ts + 5_000 + n as i64));
            if !replay.same_request {
                a["requestId"] = json!(format!("req-side-{i}-{n}"));
            }
            let out = a["message"]["usage"]["output_tokens"]
                .as_u64()
                .expect("tokens");
            a["message"]["usage"]["output_tokens"] = json!(out + u64::from(replay.extra));
            let mut p = a.clone();
            p["type"] = json!("user");
            p["uuid"] = json!(format!("sp-{i}-{n}"));
            p["parentUuid"] = Value::Null;
            p["timestamp"] = json!(rfc3339(ts + 4_000 + n as i64));
            p["message"] = json!({"role": "user", "content": format!("replay {i}.{n}")});
            p.as_object_mut().expect("object").remove("requestId");
            side.push(p);
            side.push(a);
            if let Some(r) = result {
                let mut r = r.clone();
                r["isSidechain"] = json!(true);
                r["agentId"] = json!(agent);
                r["uuid"] = json!(format!("sr-{i}-{n}"));
                r["parentUuid"] = json!(format!("s-{i}-{n}"));
                r["timestamp"] = json!(rfc3339(ts + 40_000 + n as i64));
                side.push(r);
            }
        }
        let uuids: Vec<String> = main
            .iter()
            .filter_map(|l| l["uuid"].as_str().map(str::to_string))
            .collect();
        for (n, (name, after)) in spec.names.iter().enumerate() {
            let line = match name {
                Name::Summary(leaf) => json!({"type": "summary", "summary": format!("summary {i}"),
                                              "leafUuid": uuids[leaf % uuids.len()]}),
                Name::AiTitle => json!({"type": "ai-title", "sessionId": sid,
                                         "aiTitle": format!("ai title {i}")}),
                Name::CustomTitle => json!({"type": "custom-title", "sessionId": sid,
                                             "customTitle": format!("custom title {i}.{n}")}),
            };
            let at = after % (main.len() + 1);
            main.insert(at, line);
        }
        let dir = PathBuf::from("/gen/projects/-gen");
        files.push((
            dir.join(format!("{sid}.jsonl")),
            main.iter().map(Value::to_string).collect(),
        ));
        if !side.is_empty() {
            files.push((
                dir.join(&sid)
                    .join("subagents")
                    .join(format!("agent-{agent}.jsonl")),
                side.iter().map(Value::to_string).collect(),
            ));
        }
    }
    files
}

fn generated_events(sessions: &[SessionSpec]) -> Vec<Event> {
    render(sessions)
        .iter()
        .flat_map(|(path, lines)| parse_lines(path, lines))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Arrival plans

/// How events arrive in (b).
#[derive(Debug, Clone)]
struct Plan {
    /// Arrival order (a permutation of the events).
    order: Vec<usize>,
    /// Events delivered a second time: (which, at which position).
    dups: Vec<(Index, Index)>,
    /// Per batch: (events in it, slow-path rounds after it, limit of those rounds); cycled.
    batches: Vec<(usize, usize, usize)>,
    /// Limit of the rounds that derive what is left at the end.
    drain: usize,
}

fn plan(n: usize) -> impl Strategy<Value = Plan> {
    (
        Just((0..n).collect::<Vec<_>>()).prop_shuffle(),
        prop::collection::vec((any::<Index>(), any::<Index>()), 0..=n / 4 + 1),
        prop::collection::vec((1usize..=16, 0usize..=2, 1usize..=8), 1..=24),
        1usize..=8,
    )
        .prop_map(|(order, dups, batches, drain)| Plan {
            order,
            dups,
            batches,
            drain,
        })
}

// ---------------------------------------------------------------------------------------
// Deriving and dumping

fn store() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().expect("dir");
    let conn = blueplane::store::open_writer(&dir.path().join("t.db")).expect("db");
    // Throwaway stores: no fsyncs (derivation does not depend on them).
    conn.execute_batch("PRAGMA synchronous=OFF")
        .expect("pragma");
    (dir, conn)
}

/// (a): every event in file order, derived in one round.
fn derive_in_order(events: &[Event]) -> Dump {
    let (_dir, mut conn) = store();
    let mut zlib = Compressor::default();
    blueplane::fast_path::insert_batch(&mut conn, &mut zlib, events).expect("insert");
    let (n, _) = blueplane::slow_path::process_round(&mut conn, events.len() + 1).expect("derive");
    assert_eq!(n, events.len());
    dump(&conn)
}

/// (b): the events as `plan` delivers them.
fn derive_as_planned(events: &[Event], plan: &Plan) -> Dump {
    let (_dir, mut conn) = store();
    let mut zlib = Compressor::default();
    let mut arrival: Vec<&Event> = plan.order.iter().map(|&i| &events[i]).collect();
    if !events.is_empty() {
        for (which, at) in &plan.dups {
            let e = &events[which.index(events.len())];
            arrival.insert(at.index(arrival.len() + 1), e);
        }
    }
    let mut rest = &arrival[..];
    let mut step = plan.batches.iter().cycle();
    while !rest.is_empty() {
        let &(size, rounds, limit) = step.next().expect("batches");
        let (batch, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        blueplane::fast_path::insert_batch(&mut conn, &mut zlib, batch).expect("insert");
        for _ in 0..rounds {
            blueplane::slow_path::process_round(&mut conn, limit).expect("derive");
        }
    }
    while blueplane::slow_path::process_round(&mut conn, plan.drain)
        .expect("derive")
        .0
        > 0
    {}
    dump(&conn)
}

/// Sorted rows of every derived table, one string per row, and the totals.
#[derive(Debug, PartialEq, Eq)]
struct Dump {
    tables: Vec<(&'static str, Vec<String>)>,
    totals: String,
}

const TABLES: &[(&str, &str)] = &[
    (
        "sessions",
        "SELECT session_id, platform, project_path, title, title_rank, first_prompt,
                first_prompt_at, started_at, ended_at, version, git_branch, start_source,
                end_reason FROM sessions",
    ),
    (
        "messages",
        "SELECT event_id, session_id, agent_id, platform, role, is_prompt, ts, model, text
         FROM messages",
    ),
    (
        "api_responses",
        "SELECT dedup_key, message_id, event_id, session_id, agent_id, project_path, ts, model,
                is_sidechain, has_speed, input_tokens, output_tokens, cache_creation_tokens,
                cache_read_tokens, cost_pusd, priced FROM api_responses",
    ),
    (
        "tool_calls",
        "SELECT tool_use_id, session_id, agent_id, name, is_error, started_at, finished_at,
                duration_ms, project_path, input_meta, result_meta, hook_duration_ms, mcp_server,
                permission, hook_failed, is_interrupt FROM tool_calls",
    ),
    (
        "hook_events",
        "SELECT event_id, session_id, platform, agent_id, ts, event, prompt_id, tool_use_id,
                tool_name, detail FROM hook_events",
    ),
    (
        "cost_states",
        "SELECT session_id, ts, total_pusd, origin, has_unknown_model_cost, model_usage
         FROM cost_states",
    ),
    (
        "subagents",
        "SELECT session_id, agent_id, agent_type, started_at, ended_at FROM subagents",
    ),
    (
        "projects",
        "SELECT path, first_seen, last_seen FROM projects",
    ),
    (
        "derive_rejects",
        "SELECT event_id, reason, source, source_offset FROM derive_rejects",
    ),
];

const TOTALS: &str = "SELECT
    (SELECT count(*) FROM sessions),
    (SELECT count(*) FROM messages),
    (SELECT count(*) FROM messages WHERE is_prompt = 1),
    (SELECT count(*) FROM messages WHERE text IS NOT NULL),
    (SELECT count(*) FROM api_responses),
    (SELECT coalesce(sum(input_tokens), 0) FROM api_responses),
    (SELECT coalesce(sum(output_tokens), 0) FROM api_responses),
    (SELECT coalesce(sum(cache_creation_tokens), 0) FROM api_responses),
    (SELECT coalesce(sum(cache_read_tokens), 0) FROM api_responses),
    (SELECT coalesce(sum(cost_pusd), 0) FROM api_responses),
    (SELECT count(*) FROM tool_calls),
    (SELECT coalesce(sum(is_error), 0) FROM tool_calls),
    (SELECT coalesce(sum(duration_ms), 0) FROM tool_calls),
    (SELECT count(*) FROM subagents),
    (SELECT count(*) FROM projects)";

fn render_value(v: rusqlite::types::Value) -> String {
    use rusqlite::types::Value as V;
    match v {
        V::Null => "NULL".into(),
        V::Integer(i) => i.to_string(),
        V::Real(f) => f.to_string(),
        V::Text(t) => format!("{t:?}"),
        V::Blob(b) => format!("{b:?}"),
    }
}

fn rows(conn: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn.prepare(sql).expect("prepare");
    let cols = stmt.column_count();
    let mut out: Vec<String> = stmt
        .query_map([], |r| {
            (0..cols)
                .map(|i| r.get::<_, rusqlite::types::Value>(i).map(render_value))
                .collect::<rusqlite::Result<Vec<_>>>()
                .map(|v| v.join(" | "))
        })
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("rows");
    out.sort();
    out
}

fn dump(conn: &Connection) -> Dump {
    conn.execute(
        "INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')",
        [],
    )
    .expect("messages_fts is consistent");
    let (texts, docs, matching): (i64, i64, i64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM messages WHERE text IS NOT NULL),
                    (SELECT count(*) FROM messages_fts_docsize),
                    (SELECT count(*) FROM messages_fts_docsize d JOIN messages m ON m.rowid = d.id
                       WHERE m.text IS NOT NULL)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("fts");
    assert_eq!(
        (docs, matching),
        (texts, texts),
        "every text is indexed once"
    );
    Dump {
        tables: TABLES
            .iter()
            .map(|(name, sql)| (*name, rows(conn, sql)))
            .collect(),
        totals: rows(conn, TOTALS).join(""),
    }
}

/// Fails with the first rows that differ, table by table.
fn same(want: &Dump, got: &Dump) -> Result<(), TestCaseError> {
    for ((name, w), (_, g)) in want.tables.iter().zip(&got.tables) {
        if w != g {
            let only_w: Vec<_> = w.iter().filter(|r| !g.contains(r)).collect();
            let only_g: Vec<_> = g.iter().filter(|r| !w.contains(r)).collect();
            return Err(TestCaseError::fail(format!(
                "{name} differs\n  in file order only: {only_w:#?}\n  shuffled only: {only_g:#?}"
            )));
        }
    }
    prop_assert_eq!(&want.totals, &got.totals, "totals differ");
    Ok(())
}

static FIXTURES_IN_ORDER: LazyLock<Dump> = LazyLock::new(|| derive_in_order(&FIXTURE_EVENTS));

/// The Claude Code 2.1.328 transcript (`tests/data/claude-2.1`) and one payload for every
/// hook event (`tests/data/hooks/claude-2.1.328`, the same session and tool ids), received a
/// second apart, as the hook hot path makes them.
static HOOKED_EVENTS: LazyLock<Vec<Event>> = LazyLock::new(|| {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut files = Vec::new();
    support::jsonl_files(&root.join("claude-2.1"), &mut files);
    let mut events = file_events(&files);
    let mut hooks: Vec<PathBuf> = std::fs::read_dir(root.join("hooks/claude-2.1.328"))
        .expect("hook fixtures")
        .flatten()
        .map(|e| e.path())
        .collect();
    hooks.sort();
    for (i, h) in hooks.iter().enumerate() {
        let raw = std::fs::read(h).expect("read hook fixture");
        let p = blueplane::hook::prepare(
            &raw,
            blueplane::event::Platform::ClaudeCode,
            "hook",
            "hook:claude",
            PrivacyMode::Standard,
            1_796_000_000_000 + i as i64 * 1000,
        );
        events.push(p.record.to_event().expect("a hook fixture is an event"));
    }
    events
});

static HOOKED_IN_ORDER: LazyLock<Dump> = LazyLock::new(|| derive_in_order(&HOOKED_EVENTS));

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// The real transcripts derive to the same rows in any arrival order.
    #[test]
    fn fixture_lines_derive_the_same_in_any_order(plan in plan(FIXTURE_EVENTS.len())) {
        same(&FIXTURES_IN_ORDER, &derive_as_planned(&FIXTURE_EVENTS, &plan))?;
    }

    /// Hook payloads merge with the transcript the same way whichever arrives first.
    #[test]
    fn hooks_and_transcript_derive_the_same_in_any_order(plan in plan(HOOKED_EVENTS.len())) {
        same(&HOOKED_IN_ORDER, &derive_as_planned(&HOOKED_EVENTS, &plan))?;
    }

    /// Generated sessions (streamed copies with growing usage, results before calls,
    /// sidechain replays, resumed sessions) derive to the same rows in any arrival order.
    #[test]
    fn generated_lines_derive_the_same_in_any_order(
        (sessions, plan) in prop::collection::vec(session(), 1..=3).prop_flat_map(|s| {
            let n = generated_events(&s).len();
            (Just(s), plan(n))
        })
    ) {
        let events = generated_events(&sessions);
        same(&derive_in_order(&events), &derive_as_planned(&events, &plan))?;
    }
}

/// Derives `lines` (of one file each: (path, line)) in file order in one round, and in reverse
/// order one line per round.
fn both_ways(lines: &[(&str, Value)]) -> (Dump, Dump) {
    let events: Vec<Event> = lines
        .iter()
        .flat_map(|(path, line)| parse_lines(Path::new(path), &[line.to_string()]))
        .collect();
    assert_eq!(events.len(), lines.len());
    let reverse = Plan {
        order: (0..events.len()).rev().collect(),
        dups: Vec::new(),
        batches: vec![(1, 1, 1)],
        drain: 1,
    };
    (
        derive_in_order(&events),
        derive_as_planned(&events, &reverse),
    )
}

/// `v` with the top-level fields of `extra` set.
fn with(mut v: Value, extra: Value) -> Value {
    for (k, x) in extra.as_object().expect("object") {
        v[k] = x.clone();
    }
    v
}

/// A line of session `s` at `T0 + ms`.
fn line(kind: &str, uuid: &str, ms: i64, extra: Value) -> Value {
    let v = json!({"type": kind, "uuid": uuid, "sessionId": "s", "cwd": "/p",
                   "version": "2.1.39", "gitBranch": "main", "isSidechain": false,
                   "timestamp": rfc3339(T0 + ms)});
    with(v, extra)
}

fn prompt(uuid: &str, ms: i64, extra: Value) -> Value {
    let v = line(
        "user",
        uuid,
        ms,
        json!({"message": {"role": "user", "content": "hi"}}),
    );
    with(v, extra)
}

/// A copy of response `m1` calling tool `t1`.
fn response(uuid: &str, ms: i64, request: &str, output: u64, speed: bool, extra: Value) -> Value {
    let mut usage = json!({"input_tokens": 1, "output_tokens": output,
                           "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0});
    if speed {
        usage["speed"] = json!("standard");
    }
    let v = line(
        "assistant",
        uuid,
        ms,
        json!({"requestId": request, "message": {
            "id": "m1", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
            "content": [{"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls"}}],
            "usage": usage}}),
    );
    with(v, extra)
}

/// A copy of the result of tool `t1`.
fn result(uuid: &str, ms: i64, extra: Value) -> Value {
    let v = line(
        "user",
        uuid,
        ms,
        json!({"message": {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": "x", "is_error": false}]}}),
    );
    with(v, extra)
}

/// The order dependences the property found, each as its smallest case (each failed before
/// derive version 3): (a) in file order, (b) the reverse, one line per round.
#[test]
fn the_order_dependences_found_stay_fixed() {
    const MAIN: &str = "/p/s.jsonl";
    const SIDE: &str = "/p/s/subagents/agent-a1.jsonl";
    let side = json!({"isSidechain": true, "agentId": "a1"});
    let cases: Vec<(&str, Vec<(&str, Value)>)> = vec![
        (
            // The branch was the first-derived record's, not the earliest.
            "git branch of a resumed session",
            vec![
                (MAIN, prompt("u1", 0, json!({}))),
                (MAIN, prompt("u2", 1_000, json!({"gitBranch": "feature"}))),
            ],
        ),
        (
            // A summary derived before its leaf message was dropped.
            "summary before its leaf",
            vec![
                (MAIN, prompt("u1", 0, json!({}))),
                (
                    MAIN,
                    json!({"type": "summary", "summary": "sum", "leafUuid": "u1"}),
                ),
            ],
        ),
        (
            // A title derived before its session existed was dropped.
            "title before its session",
            vec![
                (MAIN, prompt("u1", 0, json!({}))),
                (
                    MAIN,
                    json!({"type": "custom-title", "sessionId": "s", "customTitle": "mine"}),
                ),
            ],
        ),
        (
            // A larger sidechain copy of a response (same message.id + requestId) replaced the
            // main-chain copy when it came later, and was replaced by it when it came first.
            "larger sidechain copy of a response",
            vec![
                (MAIN, response("a1", 0, "r1", 5, false, json!({}))),
                (SIDE, response("a2", 9_000, "r1", 50, false, side.clone())),
            ],
        ),
        (
            // A replay of a tool call and its result: the row took the first-derived copy's
            // agent and the last-derived result's time.
            "replayed tool call and result",
            vec![
                (MAIN, response("a1", 0, "r1", 5, false, json!({}))),
                (MAIN, result("u1", 2_000, json!({}))),
                (SIDE, response("a2", 9_000, "r2", 5, false, side.clone())),
                (SIDE, result("u2", 9_500, side.clone())),
            ],
        ),
        (
            // A copy with `speed` replaced a larger one, a larger one replaced a copy with
            // `speed`: not one order.
            "copies with and without speed",
            vec![
                (MAIN, response("a1", 0, "r1", 50, false, json!({}))),
                (MAIN, response("a2", 100, "r1", 5, true, json!({}))),
            ],
        ),
    ];
    for (name, lines) in cases {
        let (a, b) = both_ways(&lines);
        if let Err(e) = same(&a, &b) {
            panic!("{name}: {e}");
        }
    }
}

/// A summary stored under another session id than its leaf (its file is not named after the
/// records' `sessionId`, or it is one of the summaries Claude Code wrote into other sessions'
/// files) titles the leaf's session whether the leaf is derived before or after it: it waits
/// in the `summaries` table.
#[test]
fn a_summary_filed_under_another_session_id_waits_for_its_leaf() {
    let lines = [
        ("/p/other-name.jsonl", prompt("u1", 0, json!({}))),
        (
            "/p/other-name.jsonl",
            json!({"type": "summary", "summary": "sum", "leafUuid": "u1"}),
        ),
    ];
    let (a, b) = both_ways(&lines);
    same(&a, &b).expect("same rows");
}

/// The generated lines are what the property is about: every kind of record it promises.
#[test]
fn generated_sessions_cover_the_cases() {
    let spec = SessionSpec {
        turns: vec![
            Turn {
                gap: 1,
                growth: vec![0, 12],
                speed: 0b001,
                tool: Some((true, true, 5)),
            },
            Turn {
                gap: 10,
                growth: vec![],
                speed: 0,
                tool: Some((false, false, 5)),
            },
        ],
        replays: vec![
            Replay {
                turn: 0,
                same_request: true,
                extra: 0,
            },
            Replay {
                turn: 1,
                same_request: false,
                extra: 3,
            },
        ],
        resumed_after: Some(0),
        names: vec![(Name::Summary(2), 0), (Name::AiTitle, 9)],
    };
    let files = render(std::slice::from_ref(&spec));
    assert_eq!(files.len(), 2);
    let events = generated_events(&[spec]);
    // A summary, 2 prompts, 3 + 1 response copies, 2 results, a title; 2 sidechain prompts,
    // 2 replays and their results.
    assert_eq!(events.len(), 16);
    let main: Vec<&str> = events[..10].iter().map(|e| e.kind.as_str()).collect();
    // The first result is written before its call.
    assert_eq!(
        main,
        [
            "summary",
            "user",
            "user",
            "assistant",
            "assistant",
            "assistant",
            "user",
            "assistant",
            "user",
            "ai-title"
        ]
    );
    let d = derive_in_order(&events);
    let t = |name: &str| &d.tables.iter().find(|(n, _)| *n == name).expect(name).1;
    assert_eq!(t("tool_calls").len(), 2);
    // The replay under another request is dropped, the same-request copy is the main one.
    assert_eq!(t("api_responses").len(), 2, "{:#?}", t("api_responses"));
    assert_eq!(t("subagents").len(), 1);
}
