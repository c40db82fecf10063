//! SQLite storage: opening `telemetry.db`, pragmas, migrations, and the two kinds of
//! connection.
//!
//! Layer 2 (fast and slow path) uses [`open_writer`]. Layer 3 (MCP tools, CLI reports) uses
//! [`open_reader`], which is read-only and carries an authorizer that denies every read of
//! `raw_traces` and `raw_blocks`: the rule "interfaces never see raw traces" holds at runtime, not by
//! convention (invariant 1).

pub mod blocks;
pub mod checkpoint;
pub mod codec;
pub mod raw;

use std::path::Path;
use std::time::Duration;

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::{Connection, OpenFlags};

/// `PRAGMA application_id` of a Blueplane database ("BPLN").
pub const APPLICATION_ID: i32 = 0x4250_4c4e;

/// Migrations, applied in order; the index + 1 is the schema version (`user_version`).
/// Append only: a released migration is never edited.
const MIGRATIONS: &[&str] = &[
    include_str!("../../schemas/sql/0001_init.sql"),
    include_str!("../../schemas/sql/0002_sources_rejects_epoch.sql"),
    include_str!("../../schemas/sql/0003_hooks_costs_usage.sql"),
    include_str!("../../schemas/sql/0004_cursor.sql"),
    include_str!("../../schemas/sql/0005_rollups.sql"),
    include_str!("../../schemas/sql/0006_store.sql"),
    include_str!("../../schemas/sql/0007_compact_raw_traces.sql"),
    include_str!("../../schemas/sql/0008_blocks.sql"),
];

/// The schema version that adds the rollup tables; a store migrated past it gets its rollups
/// computed from the tables it already holds, in the migration's transaction.
const ROLLUPS_VERSION: i64 = 5;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "{path} is not a Blueplane database (application_id {found:#x}); point BLUEPLANE_HOME elsewhere"
    )]
    Foreign { path: String, found: i32 },
    #[error(
        "{path} has schema version {found}, newer than this blueplane ({supported}); upgrade blueplane"
    )]
    TooNew {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error("no database at {0} yet: run 'blueplane backfill' or 'blueplane ingest' first")]
    Missing(String),
}

/// What a caller does about a failed write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The store is unavailable (busy, locked, full, I/O error, read-only, cannot open):
    /// keep the data and try again later. Nothing about the data is wrong.
    Retry,
    /// This data cannot be stored (too big, rejected by a constraint or trigger, wrong
    /// type): retrying will not help; give up on it (dead-letter it).
    Entry,
}

/// Classifies a SQLite error. Anything not known to be about the data is [`Failure::Retry`]:
/// an unknown error must never condemn data.
pub fn classify(e: &rusqlite::Error) -> Failure {
    use rusqlite::ErrorCode;
    match e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            ErrorCode::TooBig | ErrorCode::ConstraintViolation | ErrorCode::TypeMismatch => {
                Failure::Entry
            }
            _ => Failure::Retry,
        },
        rusqlite::Error::ToSqlConversionFailure(_) => Failure::Entry,
        _ => Failure::Retry,
    }
}

/// Waits for another writer in short naps (SQLite's default handler backs off to 100 ms
/// sleeps, which throttles the fast and slow path when they take turns), up to ~30 s.
fn busy_wait(attempt: i32) -> bool {
    std::thread::sleep(Duration::from_micros(if attempt < 100 {
        200
    } else {
        2_000
    }));
    attempt < 15_000
}

/// Prepared statements kept per connection (the slow path alone uses ~20).
const STATEMENT_CACHE: usize = 64;

fn pragmas(conn: &mut Connection) -> Result<(), StoreError> {
    conn.busy_handler(Some(busy_wait))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    debug_assert_eq!(mode, "wal");
    conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")?;
    Ok(())
}

/// Opens (creating if needed) the database for writing and brings the schema up to date.
///
/// # Errors
/// Fails on I/O errors, on a file that is not ours, or on a schema newer than this binary.
pub fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let mut conn = Connection::open(path)?;
    pragmas(&mut conn)?;
    migrate(&conn, path)?;
    Ok(conn)
}

/// The schema version this binary writes (`user_version` after [`open_writer`]).
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// A new database with only the first `version` migrations applied, as an older blueplane
/// left it: for upgrade tests. [`open_writer`] brings it up to date.
///
/// # Errors
/// SQLite errors; `version` above [`SCHEMA_VERSION`] is an error too.
#[doc(hidden)]
pub fn create_at_version(path: &Path, version: usize) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    if version > MIGRATIONS.len() {
        return Err(StoreError::TooNew {
            path: path.display().to_string(),
            found: version as i64,
            supported: MIGRATIONS.len() as i64,
        });
    }
    conn.execute_batch("PRAGMA journal_mode=WAL")?;
    raw::register_functions(&conn)?;
    for (i, sql) in MIGRATIONS.iter().take(version).enumerate() {
        conn.execute_batch(sql)?;
        conn.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
    }
    conn.execute_batch(&format!("PRAGMA application_id = {APPLICATION_ID}"))?;
    Ok(conn)
}

fn migrate(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let app_id: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let supported = MIGRATIONS.len() as i64;
    if app_id != APPLICATION_ID && !(app_id == 0 && version == 0) {
        return Err(StoreError::Foreign {
            path: path.display().to_string(),
            found: app_id,
        });
    }
    if version > supported {
        return Err(StoreError::TooNew {
            path: path.display().to_string(),
            found: version,
            supported,
        });
    }
    if version == supported {
        return Ok(());
    }
    // 0007 rewrites raw_traces with the Rust id encoder.
    raw::register_functions(conn)?;
    // Two processes may start at once: take the write lock first, then re-check.
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            conn.execute_batch(sql)?;
            conn.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
        }
        if version < ROLLUPS_VERSION {
            crate::metrics::rollup::rebuild_all(conn)?;
        }
        conn.execute_batch(&format!("PRAGMA application_id = {APPLICATION_ID}"))?;
        Ok::<(), rusqlite::Error>(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT")?,
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e.into());
        }
    }
    Ok(())
}

/// Stops this connection from checkpointing the WAL on commit, so a commit never pays for a
/// checkpoint (the dominant part of the fast path's p95). In the pipeline both writers leave
/// checkpoints to [`checkpoint::Checkpointer`], a thread of its own that keeps the WAL small;
/// a writer without one (a slow path alone) keeps SQLite's automatic checkpoints.
///
/// # Errors
/// SQLite errors.
pub fn no_autocheckpoint(conn: &Connection) -> Result<(), StoreError> {
    conn.query_row("PRAGMA wal_autocheckpoint=0", [], |_| Ok(()))?;
    Ok(())
}

/// Opens the database for layer 3: read-only, `query_only`, and an authorizer that denies
/// any access to `raw_traces`, its lookup tables and its payload blocks ([`RAW_TABLES`]; the
/// `raw_traces_text` view reads them, so it is denied too).
///
/// # Errors
/// [`StoreError::Missing`] when there is no database yet.
pub fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    if !path.exists() {
        return Err(StoreError::Missing(path.display().to_string()));
    }
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.authorizer(Some(deny_raw_traces))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.execute_batch("PRAGMA query_only=1")?;
    Ok(conn)
}

/// The tables layer 3 may not read: the raw traces and the strings they intern (transcript
/// paths, session ids of every record; nothing a tool needs, all of it layer 2's).
pub const RAW_TABLES: &[&str] = &[
    "raw_traces",
    "raw_sources",
    "raw_kinds",
    "raw_sessions",
    "raw_blocks",
];

fn deny_raw_traces(ctx: AuthContext<'_>) -> Authorization {
    match ctx.action {
        AuthAction::Read { table_name, .. }
            if RAW_TABLES
                .iter()
                .any(|t| table_name.eq_ignore_ascii_case(t)) =>
        {
            Authorization::Deny
        }
        _ => Authorization::Allow,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_empty_db_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let conn = open_writer(&path).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
        drop(conn);
        open_writer(&path).unwrap();
    }

    /// A store from before the rollups gets them filled from the rows it holds, in the
    /// migration: the figures a reader sums from them equal the tables'.
    #[test]
    fn a_version_4_store_gets_rollups_of_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let c = Connection::open(&path).unwrap();
        for m in &MIGRATIONS[..4] {
            c.execute_batch(m).unwrap();
        }
        c.execute_batch(&format!(
            "PRAGMA user_version = 4; PRAGMA application_id = {APPLICATION_ID};
             INSERT INTO api_responses (dedup_key, event_id, session_id, platform, project_path, ts,
                 model, is_sidechain, has_speed, input_tokens, output_tokens,
                 cache_creation_tokens, cache_read_tokens, cost_pusd, priced)
               VALUES ('k1', 'e1', 's1', 'claude_code', '/p', 1000, 'm', 0, 0, 10, 20, 30, 40, 5, 1),
                      ('k2', 'e2', 's1', 'claude_code', '/p', 90000000, NULL, 0, 0, 1, 2, 3, 4, 0, 0),
                      ('k3', 'e3', 's2', 'claude_code', NULL, 90000001, 'm', 0, 0, 7, 0, 0, 0, 9, 1);
             INSERT INTO tool_calls (tool_use_id, session_id, platform, name, started_at, finished_at, is_error)
               VALUES ('t1', 's1', 'claude_code', 'Bash', 1000, 1500, 1),
                      ('t2', 's2', 'claude_code', 'Read', NULL, 90000002, 0),
                      ('t3', 's2', 'claude_code', NULL, 5, 6, 0);"
        ))
        .unwrap();
        drop(c);
        let c = open_writer(&path).unwrap();
        let q = |sql: &str| -> Vec<i64> {
            c.query_row(sql, [], |r| {
                (0..r.as_ref().column_count())
                    .map(|i| r.get::<_, Option<i64>>(i).map(|v| v.unwrap_or(-1)))
                    .collect()
            })
            .unwrap()
        };
        assert_eq!(
            q("SELECT sum(input), sum(output), sum(cache_creation), sum(cache_read), sum(cost_pusd),
                      sum(responses), sum(unpriced), sum(rows), sum(tool_calls), sum(tool_errors),
                      count(DISTINCT sk) FROM rollup_q"),
            [18, 22, 33, 44, 14, 3, 1, 3, 2, 1, 2]
        );
        assert_eq!(
            q("SELECT sum(input), sum(rows), sum(tool_calls), count(*) FROM rollup_h"),
            [18, 3, 2, 4]
        );
        // The same per UTC day, and the tool rollups (the unnamed call is not a tool).
        assert_eq!(
            q("SELECT sum(input), sum(rows), sum(tool_calls), count(*) FROM rollup_d"),
            [18, 3, 2, 4]
        );
        assert_eq!(
            q(
                "SELECT sum(calls), sum(errors), sum(took_n), sum(took_sum), max(took_max)
               FROM rollup_tools_d"
            ),
            [2, 1, 1, 500, 500]
        );
        // Tool calls ride on a usage row of their bucket, session and project when there is
        // one (t2 on k3's row), else on a row of their own (t1: no response of s1 in its
        // bucket has its project, none).
        assert_eq!(q("SELECT count(*) FROM rollup_q WHERE model = ''"), [1]);
    }

    use crate::event::{Event, Platform, Source};

    /// An event as the fast path stores it.
    fn event(id: &str, session: Option<&str>, source: Source, payload: &str) -> Event {
        Event {
            id: id.into(),
            platform: Platform::ClaudeCode,
            kind: "user".into(),
            session_id: session.map(str::to_string),
            timestamp_ms: Some(5),
            source,
            payload: payload.into(),
        }
    }

    fn file(path: &str, offset: u64) -> Source {
        Source::FileLine {
            path: path.into(),
            offset,
        }
    }

    /// Stores `events` with the fast path's insert: (inserted, max seq).
    fn put(c: &mut Connection, events: &[Event]) -> (usize, i64) {
        crate::fast_path::insert_batch(c, &mut codec::Compressor::default(), events).unwrap()
    }

    /// Every pre-0007 column of `from` (the v6 table, or the `raw_traces_text` view), by seq,
    /// as debug text.
    fn raw_rows_of(c: &Connection, from: &str) -> Vec<String> {
        let mut stmt = c
            .prepare(&format!(
                "SELECT seq, id, platform, kind, session_id, ts, source_kind, source,
                        source_offset, source_key, source_version, payload, received_at
                 FROM {from} ORDER BY seq"
            ))
            .unwrap();
        stmt.query_map([], |r| {
            (0..13)
                .map(|i| {
                    r.get::<_, rusqlite::types::Value>(i)
                        .map(|v| format!("{v:?}"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|v| v.join("|"))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    #[test]
    fn a_version_1_store_is_upgraded_with_its_rows_and_watermarks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let c = Connection::open(&path).unwrap();
        c.execute_batch(MIGRATIONS[0]).unwrap();
        c.execute_batch(&format!(
            "PRAGMA user_version = 1; PRAGMA application_id = {APPLICATION_ID};
             INSERT INTO raw_traces (seq, id, platform, kind, source, source_offset, payload, received_at)
               VALUES (7, 'a', 'claude_code', 'user', '/f.jsonl', 42, x'00', 1);
             INSERT INTO pipeline_state VALUES ('slow_path_seq', 7);
             INSERT INTO dirty_buckets VALUES (3);"
        ))
        .unwrap();
        drop(c);
        let mut w = open_writer(&path).unwrap();
        let row: (i64, String, String, Option<i64>) = w
            .query_row(
                "SELECT seq, source_kind, source, source_offset FROM raw_traces_text WHERE id = 'a'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(row, (7, "file".into(), "/f.jsonl".into(), Some(42)));
        let (seq, store_id, dirty): (i64, i64, i64) = w
            .query_row(
                "SELECT (SELECT value FROM pipeline_state WHERE key = 'slow_path_seq'),
                        (SELECT value FROM pipeline_state WHERE key = 'store_id'),
                        (SELECT version FROM dirty_buckets WHERE bucket = 3)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!((seq, dirty), (7, 0));
        assert!(store_id > 0);
        // The next insert continues the sequence; the old row's id still deduplicates.
        let hook = Source::Hook {
            event: "PreToolUse".into(),
            received_at: 2,
        };
        assert_eq!(put(&mut w, &[event("b", None, hook.clone(), "{}")]), (1, 8));
        assert_eq!(put(&mut w, &[event("a", None, hook, "{}")]), (0, 8));
    }

    fn index_names(c: &Connection, table: &str) -> Vec<String> {
        c.prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = ?1 ORDER BY name",
        )
        .unwrap()
        .query_map([table], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    fn columns(c: &Connection, table: &str) -> Vec<String> {
        c.prepare("SELECT name FROM pragma_table_info(?1)")
            .unwrap()
            .query_map([table], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// The schema version before `prefix`'s migration.
    fn before(prefix: &str) -> usize {
        MIGRATIONS
            .iter()
            .position(|m| m.starts_with(prefix))
            .expect("migration registered")
    }

    #[test]
    fn the_store_migration_upgrades_a_previous_version_store() {
        // The store as the schema version before 0006 left it.
        let prev = before("-- 0006: store footprint");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let c = create_at_version(&path, prev).unwrap();
        assert!(index_names(&c, "raw_traces").contains(&"raw_traces_session".to_string()));
        // A payload as every blueplane before 0006 wrote it: plain zlib, level 1.
        let old = codec::Compressor::with_dictionary(None, 1).compress(b"{\"type\":\"user\"}");
        c.execute(
            "INSERT INTO raw_traces (id, platform, kind, session_id, ts, source, source_offset, payload, received_at)
             VALUES ('a', 'claude_code', 'user', 's', 5, '/f.jsonl', 0, ?1, 1)",
            [&old],
        )
        .unwrap();
        drop(c);
        let mut w = open_writer(&path).unwrap();
        let v: i64 = w
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION as i64);
        // Only the dedup key is indexed, and it stays unique.
        assert_eq!(index_names(&w, "raw_traces"), ["raw_traces_id"]);
        let again = event("a", Some("s"), file("/f.jsonl", 0), "{}");
        assert_eq!(put(&mut w, &[again]).0, 0);
        // The old row decodes, and a new one (with the dictionary) sits beside it.
        let b = event(
            "b",
            Some("s"),
            file("/f.jsonl", 20),
            "{\"type\":\"assistant\"}",
        );
        assert_eq!(put(&mut w, &[b]), (1, 2));
        let mut d = codec::Decompressor::default();
        let mut buf = Vec::new();
        let rows: Vec<(String, Vec<u8>)> = w
            .prepare("SELECT id, payload FROM raw_traces_text ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let texts: Vec<(String, String)> = rows
            .iter()
            .map(|(id, p)| {
                (
                    id.clone(),
                    d.decompress_str(p, &mut buf).unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            texts,
            [
                ("a".to_string(), "{\"type\":\"user\"}".to_string()),
                ("b".to_string(), "{\"type\":\"assistant\"}".to_string())
            ]
        );
        drop(w);
        // Opening again is a no-op.
        open_writer(&path).unwrap();
    }

    /// Ids of every form the capture writes, for the round-trip tests.
    fn id_cases() -> Vec<Event> {
        let s = "0b4c6a5e-3f5c-4e1b-9a0e-2d7c1f8e9a10";
        let u = "7d1f0c2a-1b2c-4d3e-8f90-a1b2c3d4e5f6";
        let db = |key: &str, version: i64| Source::DbRow {
            db: "/state.vscdb".into(),
            key: key.into(),
            version,
        };
        let mut cursor = event("cu:bubbleId:c:b@3", Some("c"), db("bubbleId:c:b", 3), "{}");
        cursor.platform = Platform::Cursor;
        cursor.kind = "bubble".into();
        vec![
            event(
                &format!("cc:{s}:{u}"),
                Some(s),
                file("/p/a.jsonl", 0),
                "{\"n\":1}",
            ),
            event(
                &format!("cc:{s}:{}", u.to_uppercase()),
                Some(s),
                file("/p/a.jsonl", 9),
                "{}",
            ),
            event("cc:other:x", Some(s), file("/p/a.jsonl", 19), "{}"),
            event(&format!("cc:{s}:"), Some(s), file("/p/a.jsonl", 29), "{}"),
            event("cc:-:u1", None, file("/p/b.jsonl", 0), "{}"),
            event(
                "cc:h:0123456789abcdef0123456789abcdef",
                Some(s),
                file("/p/b.jsonl", 5),
                "{}",
            ),
            event(
                "cc:h:0123456789ABCDEF0123456789ABCDEF",
                None,
                file("/p/b.jsonl", 6),
                "{}",
            ),
            event(
                "hk:fedcba9876543210fedcba9876543210",
                Some("h1"),
                Source::Hook {
                    event: "PreToolUse".into(),
                    received_at: 1_700_000_000_000,
                },
                "{}",
            ),
            cursor,
            event("ca:c/s1:7", Some("c"), file("/c/t.jsonl", 7), "{}"),
            event("é:ü", Some("é"), file("/p/é.jsonl", 0), "{}"),
        ]
    }

    /// `raw_traces_text` as the events would have been stored before 0007.
    fn expected_rows(events: &[Event], first_seq: i64) -> Vec<String> {
        use rusqlite::types::Value;
        events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let opt_i = |v: Option<i64>| v.map_or(Value::Null, Value::Integer);
                let opt_t = |v: Option<&str>| v.map_or(Value::Null, |s| Value::Text(s.into()));
                [
                    Value::Integer(first_seq + i as i64),
                    Value::Text(e.id.clone()),
                    Value::Text(e.platform.as_str().into()),
                    Value::Text(e.kind.clone()),
                    opt_t(e.session_id.as_deref()),
                    opt_i(e.timestamp_ms),
                    Value::Text(e.source.kind().into()),
                    Value::Text(e.source.location().into()),
                    opt_i(match &e.source {
                        Source::DbRow { .. } => None,
                        s => Some(s.position()),
                    }),
                    opt_t(e.source.key()),
                    opt_i(match &e.source {
                        Source::DbRow { version, .. } => Some(*version),
                        _ => None,
                    }),
                ]
                .iter()
                .map(|v| format!("{v:?}"))
                .collect::<Vec<_>>()
                .join("|")
            })
            .collect()
    }

    /// Drops the payload and received_at columns of `raw_rows` (checked apart).
    fn without_payload(rows: Vec<String>) -> Vec<String> {
        rows.into_iter()
            .map(|r| r.split('|').take(11).collect::<Vec<_>>().join("|"))
            .collect()
    }

    #[test]
    fn the_view_rebuilds_every_id_and_column_the_fast_path_stored() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = open_writer(&dir.path().join("t.db")).unwrap();
        let events = id_cases();
        assert_eq!(put(&mut w, &events), (events.len(), events.len() as i64));
        assert_eq!(
            without_payload(raw_rows_of(&w, "raw_traces_text")),
            expected_rows(&events, 1)
        );
        // The compact forms are used (the uuid and the hashes as bytes), and every row's
        // key is the hash of its rebuilt id.
        let forms: Vec<(i64, String)> = w
            .prepare("SELECT id_form, typeof(id_tail) FROM raw_traces ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            forms.iter().map(|f| f.0).collect::<Vec<_>>(),
            [1, 2, 0, 2, 0, 3, 0, 4, 0, 0, 0]
        );
        let keys: Vec<(String, Vec<u8>)> = w
            .prepare("SELECT id, id_key FROM raw_traces_text ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for (id, key) in keys {
            assert_eq!(key, raw::id_key(&id), "{id}");
        }
        // Each string is interned once.
        let n = |sql: &str| -> i64 { w.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(n("SELECT count(*) FROM raw_sources"), 6);
        assert_eq!(n("SELECT count(*) FROM raw_kinds"), 2);
        assert_eq!(n("SELECT count(*) FROM raw_sessions"), 4);
        // A redelivery inserts nothing.
        assert_eq!(put(&mut w, &events), (0, events.len() as i64));
    }

    /// A v6 store with rows of every id form is rewritten in place by 0007: the same rows,
    /// seq values and payload bytes, read through `raw_traces_text`; the watermark still
    /// points at them; the old ids deduplicate new inserts; new rows continue the sequence.
    #[test]
    fn the_compact_migration_rewrites_a_version_6_store_in_place() {
        let prev = before("-- 0007: compact raw_traces");
        assert_eq!(prev, 6);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let c = create_at_version(&path, prev).unwrap();
        let events = id_cases();
        let mut z = codec::Compressor::default();
        // Rows as the v6 fast path wrote them, with gaps in seq (ignored duplicates).
        for (i, e) in events.iter().enumerate() {
            c.execute(
                "INSERT INTO raw_traces
                   (seq, id, platform, kind, session_id, ts, source_kind, source, source_offset,
                    source_key, source_version, payload, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                rusqlite::params![
                    10 + 3 * i as i64,
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
                        Source::DbRow { version, .. } => Some(version),
                        _ => None,
                    },
                    z.compress(e.payload.as_bytes()),
                    100 + i as i64,
                ],
            )
            .unwrap();
        }
        c.execute_batch("INSERT INTO pipeline_state VALUES ('slow_path_seq', 13)")
            .unwrap();
        let before_rows = raw_rows_of(&c, "raw_traces");
        drop(c);
        let mut w = open_writer(&path).unwrap();
        assert_eq!(
            raw_rows_of(&w, "raw_traces_text"),
            before_rows,
            "every row, byte for byte"
        );
        let cols = columns(&w, "raw_traces");
        for gone in [
            "id",
            "platform",
            "kind",
            "session_id",
            "source",
            "source_kind",
        ] {
            assert!(!cols.contains(&gone.to_string()), "{cols:?}");
        }
        assert_eq!(index_names(&w, "raw_traces"), ["raw_traces_id"]);
        let (wm, last): (i64, i64) = w
            .query_row(
                "SELECT (SELECT value FROM pipeline_state WHERE key = 'slow_path_seq'),
                        (SELECT max(seq) FROM raw_traces)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((wm, last), (13, 10 + 3 * (events.len() as i64 - 1)));
        // The old rows' ids deduplicate; a new event continues the sequence.
        assert_eq!(put(&mut w, &events), (0, last));
        let new = event("cc:new:1", Some("new"), file("/p/a.jsonl", 99), "{}");
        assert_eq!(put(&mut w, &[new]), (1, last + 1));
        assert_eq!(
            w.query_row("SELECT count(*) FROM raw_sources", [], |r| r
                .get::<_, i64>(0))
                .unwrap(),
            6,
            "the path of the new row was interned by the migration"
        );
        drop(w);
        open_writer(&path).unwrap();
    }

    #[test]
    fn reader_cannot_read_raw_traces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut w = open_writer(&path).unwrap();
        put(&mut w, &id_cases());
        let r = open_reader(&path).unwrap();
        let denied = |sql: &str| {
            let e = r
                .query_row(sql, [], |r| r.get::<_, rusqlite::types::Value>(0))
                .unwrap_err();
            let s = e.to_string();
            assert!(
                s.contains("not authorized") || s.contains("prohibited"),
                "{sql}: {s}"
            );
        };
        denied("SELECT count(*) FROM raw_traces");
        denied("SELECT payload FROM main.RAW_TRACES LIMIT 1");
        // The view that rebuilds the rows, and every table of raw strings.
        denied("SELECT id FROM raw_traces_text LIMIT 1");
        denied("SELECT count(*) FROM raw_traces_text");
        // The payload blocks are raw traces too, whatever the case of the name.
        denied("SELECT count(*) FROM Raw_Blocks");
        for t in RAW_TABLES {
            denied(&format!("SELECT count(*) FROM {t}"));
        }
        // Every raw_* table of the schema is one of them.
        let raw: Vec<String> = w
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE 'raw\\_%' ESCAPE '\\'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(raw.len(), RAW_TABLES.len(), "{raw:?}");
        for t in &raw {
            assert!(RAW_TABLES.contains(&t.as_str()), "{t} is not denied");
        }
        let n: i64 = r
            .query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
        assert!(r.execute("DELETE FROM sessions", []).is_err());
    }

    #[test]
    fn refuses_foreign_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let c = Connection::open(&path).unwrap();
        c.execute_batch("PRAGMA application_id = 7; CREATE TABLE x(a);")
            .unwrap();
        drop(c);
        assert!(matches!(
            open_writer(&path),
            Err(StoreError::Foreign { .. })
        ));
    }
}
