//! Store footprint (issue 9 item 3): a store written before the preset dictionary and
//! migration 0006, upgraded and filled further by this version, derives exactly what a store
//! written by this version alone derives, and every payload in it decodes to the record as
//! captured.

mod support;

use blueplane::capture::claude_code::{FileContext, Parsed, parse_line};
use blueplane::capture::tailer;
use blueplane::event::Event;
use blueplane::privacy::PrivacyMode;
use blueplane::store::codec::{Compressor, DICTIONARIES, Decompressor, adler32};
use rusqlite::Connection;

/// Every fixture record, privacy rules applied, in file order, once per event id.
fn fixture_events() -> Vec<Event> {
    let root = support::fixtures();
    let mut files = Vec::new();
    support::jsonl_files(&root, &mut files);
    let mut events = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for f in &files {
        let ctx = FileContext::for_path(f);
        let chunk = tailer::read_new(f, None).expect("read");
        for (off, line) in chunk.lines() {
            if let Parsed::Event(e) = parse_line(&ctx, off, line, PrivacyMode::Standard)
                && seen.insert(e.id.clone())
            {
                events.push(*e);
            }
        }
    }
    assert!(events.len() > 100, "{} fixture events", events.len());
    events
}

fn derive_all(conn: &mut Connection) {
    while blueplane::slow_path::process_round(conn, 1000)
        .expect("derive")
        .0
        > 0
    {}
}

/// The derived tables as text (every column, every row, in key order).
fn dump(conn: &Connection) -> String {
    let mut out = String::new();
    for (table, order) in [
        ("sessions", "session_id"),
        ("subagents", "session_id, agent_id"),
        ("messages", "event_id"),
        ("api_responses", "dedup_key"),
        ("tool_calls", "tool_use_id"),
        ("hook_events", "event_id"),
        ("projects", "path"),
        ("cost_states", "session_id, ts, origin"),
    ] {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table} ORDER BY {order}"))
            .expect("prepare");
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                (0..n)
                    .map(|i| {
                        r.get::<_, rusqlite::types::Value>(i)
                            .map(|v| format!("{v:?}"))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .expect("query");
        for row in rows {
            out.push_str(table);
            out.push(' ');
            out.push_str(&row.expect("row").join("|"));
            out.push('\n');
        }
    }
    let fts: i64 = conn
        .query_row(
            "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'the'",
            [],
            |r| r.get(0),
        )
        .expect("fts");
    out.push_str(&format!("fts 'the' {fts}\n"));
    out
}

/// Every payload decoded, by `seq`; and how many carry a preset dictionary.
fn payloads(conn: &Connection) -> (Vec<String>, usize) {
    let mut d = Decompressor::default();
    let mut buf = Vec::new();
    let mut with_dict = 0;
    let rows: Vec<Vec<u8>> = conn
        .prepare("SELECT payload FROM raw_traces ORDER BY seq")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    let texts = rows
        .iter()
        .map(|p| {
            if p[1] & 0x20 != 0 {
                with_dict += 1;
                let id = u32::from_be_bytes(p[2..6].try_into().expect("id"));
                assert!(DICTIONARIES.iter().any(|x| adler32(x) == id));
            }
            d.decompress_str(p, &mut buf)
                .expect("every payload decodes")
                .to_string()
        })
        .collect();
    (texts, with_dict)
}

#[test]
fn an_upgraded_store_derives_what_a_new_one_does() {
    let events = fixture_events();
    let half = events.len() / 2;
    let dir = tempfile::tempdir().expect("dir");

    // This version alone.
    let mut fresh = blueplane::store::open_writer(&dir.path().join("new.db")).expect("db");
    let mut zlib = Compressor::default();
    blueplane::fast_path::insert_batch(&mut fresh, &mut zlib, &events).expect("insert");
    derive_all(&mut fresh);

    // The first half written by a blueplane before 0006 (schema and encoding), the rest by
    // this one after the upgrade.
    let old_path = dir.path().join("old.db");
    let version = blueplane::store::SCHEMA_VERSION - 1;
    let mut old = blueplane::store::create_at_version(&old_path, version).expect("old db");
    let mut old_zlib = Compressor::with_dictionary(None, 1);
    blueplane::fast_path::insert_batch(&mut old, &mut old_zlib, &events[..half]).expect("insert");
    drop(old);
    let mut upgraded = blueplane::store::open_writer(&old_path).expect("upgrade");
    blueplane::fast_path::insert_batch(&mut upgraded, &mut zlib, &events[half..]).expect("insert");
    derive_all(&mut upgraded);

    let (new_texts, new_dict) = payloads(&fresh);
    let (up_texts, up_dict) = payloads(&upgraded);
    let captured: Vec<&str> = events.iter().map(|e| e.payload.as_str()).collect();
    assert_eq!(
        new_texts, captured,
        "payloads decode to the records as captured"
    );
    assert_eq!(up_texts, captured);
    assert_eq!(new_dict, events.len());
    assert_eq!(up_dict, events.len() - half, "old rows stay as written");

    let a = dump(&fresh);
    assert!(
        a.lines().filter(|l| l.starts_with("messages ")).count() > 20,
        "{a}"
    );
    assert_eq!(a, dump(&upgraded));

    // The dictionary is what makes them small: the new encoding of the same records takes
    // well under the old one's bytes.
    let bytes = |c: &Connection, from: i64| -> i64 {
        c.query_row(
            "SELECT sum(length(payload)) FROM raw_traces WHERE seq > ?1",
            [from],
            |r| r.get(0),
        )
        .expect("sum")
    };
    let old_bytes: i64 = upgraded
        .query_row(
            "SELECT sum(length(payload)) FROM raw_traces WHERE seq <= ?1",
            [half as i64],
            |r| r.get(0),
        )
        .expect("sum");
    let new_bytes_same_rows: i64 = fresh
        .query_row(
            "SELECT sum(length(payload)) FROM raw_traces WHERE seq <= ?1",
            [half as i64],
            |r| r.get(0),
        )
        .expect("sum");
    assert!(
        new_bytes_same_rows * 10 < old_bytes * 8,
        "{new_bytes_same_rows} vs {old_bytes}"
    );
    assert_eq!(bytes(&fresh, half as i64), bytes(&upgraded, half as i64));
}
