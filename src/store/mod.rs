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
/// any access to `raw_traces` and its payload blocks (`raw_blocks`).
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

fn deny_raw_traces(ctx: AuthContext<'_>) -> Authorization {
    match ctx.action {
        AuthAction::Read { table_name, .. }
            if table_name.eq_ignore_ascii_case("raw_traces")
                || table_name.eq_ignore_ascii_case("raw_blocks") =>
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
        let w = open_writer(&path).unwrap();
        let row: (i64, String, String, Option<i64>) = w
            .query_row(
                "SELECT seq, source_kind, source, source_offset FROM raw_traces WHERE id = 'a'",
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
        // The next insert continues the sequence.
        w.execute(
            "INSERT INTO raw_traces (id, platform, kind, source, payload, received_at)
             VALUES ('b', 'claude_code', 'hook', 'PreToolUse', x'00', 2)",
            [],
        )
        .unwrap();
        let seq_b: i64 = w
            .query_row("SELECT seq FROM raw_traces WHERE id = 'b'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(seq_b, 8);
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

    #[test]
    fn the_store_migration_upgrades_a_previous_version_store() {
        // The store as the schema version before 0006 left it.
        let prev = MIGRATIONS
            .iter()
            .position(|m| m.starts_with("-- 0006: store footprint"))
            .expect("0006 registered");
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
        let w = open_writer(&path).unwrap();
        let v: i64 = w
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION as i64);
        // Only the index nothing read is gone; the dedup key stays unique.
        let idx = index_names(&w, "raw_traces");
        assert!(!idx.contains(&"raw_traces_session".to_string()), "{idx:?}");
        assert!(
            idx.contains(&"sqlite_autoindex_raw_traces_1".to_string()),
            "{idx:?}"
        );
        assert!(
            w.execute(
                "INSERT INTO raw_traces (id, platform, kind, source, payload, received_at)
                 VALUES ('a', 'claude_code', 'user', 'f', x'00', 2)",
                [],
            )
            .is_err()
        );
        // The old row decodes, and a new one (with the dictionary) sits beside it.
        let new = codec::Compressor::default().compress(b"{\"type\":\"assistant\"}");
        w.execute(
            "INSERT INTO raw_traces (id, platform, kind, source, source_offset, payload, received_at)
             VALUES ('b', 'claude_code', 'assistant', '/f.jsonl', 20, ?1, 3)",
            [&new],
        )
        .unwrap();
        let mut d = codec::Decompressor::default();
        let mut buf = Vec::new();
        let rows: Vec<(String, Vec<u8>)> = w
            .prepare("SELECT id, payload FROM raw_traces ORDER BY seq")
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

    #[test]
    fn reader_cannot_read_raw_traces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let w = open_writer(&path).unwrap();
        w.execute(
            "INSERT INTO raw_traces (id, platform, kind, source, source_offset, payload, received_at)
             VALUES ('a', 'claude_code', 'user', 'f', 0, x'00', 0)",
            [],
        )
        .unwrap();
        let r = open_reader(&path).unwrap();
        let denied = |e: rusqlite::Error| {
            let s = e.to_string();
            assert!(
                s.contains("not authorized") || s.contains("prohibited"),
                "{s}"
            );
        };
        denied(
            r.query_row("SELECT count(*) FROM raw_traces", [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap_err(),
        );
        denied(
            r.query_row("SELECT payload FROM main.RAW_TRACES LIMIT 1", [], |r| {
                r.get::<_, Vec<u8>>(0)
            })
            .unwrap_err(),
        );
        // The payload blocks are raw traces too.
        denied(
            r.query_row("SELECT count(*) FROM Raw_Blocks", [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap_err(),
        );
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
