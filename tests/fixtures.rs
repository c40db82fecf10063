//! Parser and derivation over every file in `../shared/fixtures-external/`, rendered as
//! stable text and compared with `tests/data/fixtures.expected` by `expect-test` (refresh
//! with `UPDATE_EXPECT=1 cargo test --test fixtures` and review the diff).

mod support;

use std::collections::BTreeMap;
use std::fmt::Write;

use blueplane::capture::claude_code::{FileContext, Parsed, parse_line};
use blueplane::capture::tailer;
use blueplane::privacy::PrivacyMode;
use expect_test::expect_file;

fn render() -> String {
    let root = support::fixtures();
    let mut files = Vec::new();
    support::jsonl_files(&root, &mut files);
    assert!(files.len() >= 10, "fixtures missing: {files:?}");
    let home = tempfile::tempdir().expect("dir");
    let mut conn = blueplane::store::open_writer(&home.path().join("t.db")).expect("db");
    let mut zlib = blueplane::store::codec::Compressor::default();
    let mut out = String::new();
    for f in &files {
        let rel = f.strip_prefix(&root).expect("rel").display().to_string();
        let ctx = FileContext::for_path(f);
        let chunk = tailer::read_new(f, None).expect("read");
        let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
        let mut bad = Vec::new();
        let mut events = Vec::new();
        for (off, line) in chunk.lines() {
            match parse_line(&ctx, off, line, PrivacyMode::Standard) {
                Parsed::Event(e) => {
                    *kinds.entry(e.kind.clone()).or_default() += 1;
                    events.push(*e);
                }
                Parsed::Skip => {}
                Parsed::Bad(r) => bad.push(format!("offset {off}: {r}")),
            }
        }
        let _ = writeln!(out, "== {rel}");
        let _ = writeln!(
            out,
            "   bytes {} events {} kinds {kinds:?}",
            chunk.data.len(),
            events.len()
        );
        for b in bad {
            let _ = writeln!(out, "   bad {b}");
        }
        blueplane::fast_path::insert_batch(&mut conn, &mut zlib, &events).expect("insert");
    }
    while blueplane::slow_path::process_round(&mut conn, 1000)
        .expect("derive")
        .0
        > 0
    {}
    let _ = writeln!(out, "== sessions (after de-duplication across all files)");
    let mut stmt = conn
        .prepare(
            "SELECT s.session_id, coalesce(s.project_path, '-'),
                    (SELECT count(*) FROM messages m WHERE m.session_id = s.session_id AND m.is_prompt = 1),
                    (SELECT count(*) FROM messages m WHERE m.session_id = s.session_id),
                    (SELECT count(*) FROM api_responses a WHERE a.session_id = s.session_id),
                    (SELECT coalesce(sum(input_tokens), 0) || '/' || coalesce(sum(output_tokens), 0) || '/' ||
                            coalesce(sum(cache_creation_tokens), 0) || '/' || coalesce(sum(cache_read_tokens), 0)
                       FROM api_responses a WHERE a.session_id = s.session_id),
                    (SELECT coalesce(sum(cost_pusd), 0) FROM api_responses a WHERE a.session_id = s.session_id),
                    (SELECT count(*) || ' calls, ' || coalesce(sum(is_error), 0) || ' errors, ' ||
                            count(finished_at) || ' with result'
                       FROM tool_calls t WHERE t.session_id = s.session_id),
                    (SELECT count(*) FROM subagents g WHERE g.session_id = s.session_id),
                    coalesce(s.title, '-')
             FROM sessions s ORDER BY s.session_id",
        )
        .expect("prepare");
    let mut rows = stmt.query([]).expect("query");
    while let Some(r) = rows.next().expect("row") {
        let g = |i| r.get::<_, rusqlite::types::Value>(i).expect("col");
        let s = |v: rusqlite::types::Value| match v {
            rusqlite::types::Value::Text(t) => t,
            rusqlite::types::Value::Integer(i) => i.to_string(),
            other => format!("{other:?}"),
        };
        let _ = writeln!(
            out,
            "{} project={} prompts={} messages={} responses={} tokens(in/out/cw/cr)={} cost_pusd={} tools=[{}] subagents={} title={}",
            s(g(0)),
            s(g(1)),
            s(g(2)),
            s(g(3)),
            s(g(4)),
            s(g(5)),
            s(g(6)),
            s(g(7)),
            s(g(8)),
            s(g(9)).chars().take(60).collect::<String>()
        );
    }
    out
}

#[test]
fn every_fixture_parses_to_the_checked_in_expectation() {
    let got = render();
    // Absolute: expect-test resolves a relative path from the outermost directory above
    // the crate that holds a Cargo.toml, which depends on where the checkout is.
    expect_file![concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/fixtures.expected"
    )]
    .assert_eq(&got);
    // SOURCES.md's de-duplicated totals, stated independently of the snapshot.
    for (session, tokens) in [
        ("55604662-cf2a-4331-851a-ec234028f8ca", "3/13/13835/11515"),
        ("d6e0bada-1959-4eec-a9d2-0bfade768d8f", "54/212/17696/88231"),
        ("ae4a77f8-aedd-4bc1-888f-c94edc91af04", "2408/7/18814/29274"),
        ("4d5611e5-241a-462a-8d15-5122611a9569", "3/8/8681/164830"),
    ] {
        let line = got.lines().find(|l| l.starts_with(session)).expect(session);
        assert!(
            line.contains(&format!("tokens(in/out/cw/cr)={tokens} ")),
            "{line}"
        );
    }
}

#[test]
fn tool_calls_are_paired_with_their_results_and_timed() {
    let f = support::fixtures().join("spotter/tool_heavy.jsonl");
    let home = tempfile::tempdir().expect("dir");
    let mut conn = blueplane::store::open_writer(&home.path().join("t.db")).expect("db");
    let ctx = FileContext::for_path(&f);
    let chunk = tailer::read_new(&f, None).expect("read");
    let events: Vec<_> = chunk
        .lines()
        .filter_map(
            |(off, line)| match parse_line(&ctx, off, line, PrivacyMode::Standard) {
                Parsed::Event(e) => Some(*e),
                _ => None,
            },
        )
        .collect();
    let mut zlib = blueplane::store::codec::Compressor::default();
    blueplane::fast_path::insert_batch(&mut conn, &mut zlib, &events).expect("insert");
    while blueplane::slow_path::process_round(&mut conn, 1000)
        .expect("derive")
        .0
        > 0
    {}
    let (calls, paired, min_ms, max_ms): (i64, i64, i64, i64) = conn
        .query_row(
            "SELECT count(*), count(duration_ms), min(duration_ms), max(duration_ms) FROM tool_calls",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .expect("tool calls");
    assert_eq!((calls, paired), (6, 6));
    assert!(min_ms >= 0 && max_ms < 600_000, "{min_ms}..{max_ms}");
}
