//! Store footprint (issue 9 item 3): a store written before the preset dictionary (0006),
//! before the compact rows of 0007 or before the payload blocks of 0008, upgraded and filled
//! further by this version, derives exactly what a store written by this version alone
//! derives, and every payload in it decodes to the record as captured.

mod support;

use blueplane::capture::claude_code::{FileContext, Parsed, parse_line};
use blueplane::capture::tailer;
use blueplane::event::{Event, Source};
use blueplane::privacy::PrivacyMode;
use blueplane::store::codec::{Compressor, DICTIONARIES, adler32};
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

/// Inserts `events` as the fast path of schema versions 2 to 6 did (the text columns of
/// raw_traces before 0007).
fn old_insert(conn: &mut Connection, zlib: &mut Compressor, events: &[Event]) {
    let tx = conn.transaction().expect("tx");
    for e in events {
        tx.execute(
            "INSERT OR IGNORE INTO raw_traces
               (id, platform, kind, session_id, ts, source_kind, source, source_offset,
                source_key, source_version, payload, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            rusqlite::params![
                e.id,
                e.platform.as_str(),
                e.kind,
                e.session_id,
                e.timestamp_ms,
                e.source.kind(),
                e.source.location(),
                match &e.source {
                    Source::DbRow { .. } => None,
                    s => Some(s.position()),
                },
                e.source.key(),
                match &e.source {
                    Source::DbRow { version, .. } => Some(*version),
                    _ => None,
                },
                zlib.compress(e.payload.as_bytes()),
                1
            ],
        )
        .expect("old insert");
    }
    tx.commit().expect("commit");
}

/// Every raw row through `raw_traces_text` but its receive time and its stored payload (alone
/// or in a block: compare the decoded payloads, [`payloads`]), by seq.
fn raw_rows(conn: &Connection) -> Vec<String> {
    let mut stmt = conn
        .prepare(
            "SELECT seq, id, platform, kind, session_id, ts, source_kind, source, source_offset,
                    source_key, source_version
             FROM raw_traces_text ORDER BY seq",
        )
        .expect("prepare");
    stmt.query_map([], |r| {
        (0..11)
            .map(|i| {
                r.get::<_, rusqlite::types::Value>(i)
                    .map(|v| format!("{v:?}"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.join("|"))
    })
    .expect("query")
    .collect::<Result<_, _>>()
    .expect("rows")
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

/// Every payload decoded, by `seq`; and how many streams (rows alone and blocks) carry a
/// preset dictionary.
fn payloads(conn: &Connection) -> (Vec<String>, usize) {
    let texts = blueplane::store::blocks::all_texts(conn)
        .expect("read")
        .into_iter()
        .map(|(_, t)| t.expect("every payload decodes"))
        .collect();
    let streams: Vec<Vec<u8>> = conn
        .prepare(
            "SELECT payload FROM raw_traces WHERE block IS NULL
             UNION ALL SELECT data FROM raw_blocks",
        )
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    let mut with_dict = 0;
    for z in &streams {
        if z[1] & 0x20 != 0 {
            with_dict += 1;
            let id = u32::from_be_bytes(z[2..6].try_into().expect("id"));
            assert!(DICTIONARIES.iter().any(|x| adler32(x) == id));
        }
    }
    (texts, with_dict)
}

/// Stored bytes of every payload: rows alone plus blocks.
fn stored_bytes(c: &Connection) -> i64 {
    c.query_row(
        "SELECT (SELECT coalesce(sum(length(payload)), 0) FROM raw_traces)
              + (SELECT coalesce(sum(length(data)), 0) FROM raw_blocks)",
        [],
        |r| r.get(0),
    )
    .expect("sum")
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

    // The first half written by a blueplane before 0006's dictionary and 0008's blocks (one
    // plain stream per row), the rest by this one after the upgrade.
    let old_path = dir.path().join("old.db");
    let mut old = blueplane::store::create_at_version(&old_path, 5).expect("old db");
    let mut old_zlib = Compressor::with_dictionary(None, 1);
    old_insert(&mut old, &mut old_zlib, &events[..half]);
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
    let blocks = |c: &Connection| -> (i64, i64) {
        c.query_row(
            "SELECT (SELECT count(*) FROM raw_blocks),
                    (SELECT count(*) FROM raw_traces WHERE block IS NOT NULL)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("count")
    };
    let (fresh_blocks, fresh_in_blocks) = blocks(&fresh);
    assert!(
        fresh_blocks > 0 && fresh_in_blocks > fresh_blocks * 4,
        "{fresh_blocks} blocks hold {fresh_in_blocks} records"
    );
    let alone = events.len() as i64 - fresh_in_blocks;
    assert_eq!(
        new_dict as i64,
        fresh_blocks + alone,
        "every stream has the dictionary"
    );
    // The old rows stay as written: alone, no dictionary.
    let old_rows: (i64, i64) = upgraded
        .query_row(
            "SELECT count(*), sum(block IS NULL AND length(payload) > 0) FROM raw_traces
             WHERE seq <= ?1",
            [half as i64],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("old rows");
    assert_eq!(old_rows, (half as i64, half as i64));
    let (up_blocks, up_in_blocks) = blocks(&upgraded);
    assert!(up_blocks > 0);
    assert_eq!(
        up_dict as i64,
        up_blocks + (events.len() - half) as i64 - up_in_blocks
    );

    let a = dump(&fresh);
    assert!(
        a.lines().filter(|l| l.starts_with("messages ")).count() > 20,
        "{a}"
    );
    assert_eq!(a, dump(&upgraded));

    // Dictionary and blocks are what make them small: this version stores the records in
    // well under half the bytes of one plain stream per record.
    let mut plain = Compressor::with_dictionary(None, 1);
    let old_bytes: usize = events
        .iter()
        .map(|e| plain.compress(e.payload.as_bytes()).len())
        .sum();
    let new_bytes = stored_bytes(&fresh);
    assert!(
        new_bytes * 2 < old_bytes as i64,
        "{new_bytes} vs {old_bytes}"
    );
}

/// A store of schema version 6 (the text columns of raw_traces, written by the blueplane
/// before 0007) is rewritten in place by 0007: after the upgrade and the rest of the events
/// written by this version, its raw rows read back exactly as a new store's (ids, sources,
/// sessions, payloads, seq values), it derives the same rows, and it is smaller.
#[test]
fn a_version_6_store_is_compacted_in_place_and_derives_the_same() {
    let events = fixture_events();
    let half = events.len() / 2;
    let dir = tempfile::tempdir().expect("dir");
    let mut zlib = Compressor::default();

    let mut fresh = blueplane::store::open_writer(&dir.path().join("new.db")).expect("db");
    blueplane::fast_path::insert_batch(&mut fresh, &mut zlib, &events[..half]).expect("insert");
    blueplane::fast_path::insert_batch(&mut fresh, &mut zlib, &events[half..]).expect("insert");
    derive_all(&mut fresh);

    let old_path = dir.path().join("old.db");
    let mut old = blueplane::store::create_at_version(&old_path, 6).expect("old db");
    old_insert(&mut old, &mut zlib, &events[..half]);
    old.execute(
        "INSERT INTO pipeline_state (key, value) VALUES ('slow_path_seq', 7)",
        [],
    )
    .expect("watermark");
    let v6_bytes = raw_bytes(&old, "raw_traces") + raw_bytes(&old, "sqlite_autoindex_raw_traces_1");
    drop(old);
    let mut upgraded = blueplane::store::open_writer(&old_path).expect("upgrade");
    let v: i64 = upgraded
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(v, blueplane::store::SCHEMA_VERSION as i64);
    // The watermark is kept (it points at seq values, which are kept).
    let wm: i64 = upgraded
        .query_row(
            "SELECT value FROM pipeline_state WHERE key = 'slow_path_seq'",
            [],
            |r| r.get(0),
        )
        .expect("watermark");
    assert_eq!(wm, 7);
    upgraded
        .execute(
            "UPDATE pipeline_state SET value = 0 WHERE key = 'slow_path_seq'",
            [],
        )
        .expect("derive from the start");
    let up_compact = raw_bytes(&upgraded, "raw_traces") + raw_bytes(&upgraded, "raw_traces_id");
    // A redelivery of the first half is ignored: the old rows' ids are the dedup keys.
    let (n, _) = blueplane::fast_path::insert_batch(&mut upgraded, &mut zlib, &events[..half])
        .expect("insert");
    assert_eq!(n, 0);
    blueplane::fast_path::insert_batch(&mut upgraded, &mut zlib, &events[half..]).expect("insert");
    derive_all(&mut upgraded);

    let rows = raw_rows(&fresh);
    assert_eq!(rows.len(), events.len());
    assert_eq!(rows, raw_rows(&upgraded));
    let ids: Vec<String> = rows
        .iter()
        .map(|r| r.split('|').nth(1).expect("id").to_string())
        .collect();
    let want: Vec<String> = events
        .iter()
        .map(|e| format!("{:?}", rusqlite::types::Value::Text(e.id.clone())))
        .collect();
    assert_eq!(ids, want, "every id rebuilt as captured");
    assert_eq!(payloads(&upgraded).0, payloads(&fresh).0);
    let a = dump(&fresh);
    assert!(
        a.lines().filter(|l| l.starts_with("messages ")).count() > 20,
        "{a}"
    );
    assert_eq!(a, dump(&upgraded));
    // The same rows take fewer bytes in the compact table and its key than in the text one.
    assert!(up_compact * 10 < v6_bytes * 9, "{up_compact} vs {v6_bytes}");
}

/// Bytes of a table or index (dbstat).
fn raw_bytes(conn: &Connection, name: &str) -> i64 {
    conn.query_row(
        "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = ?1",
        [name],
        |r| r.get(0),
    )
    .expect("dbstat")
}
