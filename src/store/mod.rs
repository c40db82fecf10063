//! SQLite storage: opening `telemetry.db`, pragmas, migrations, and the two kinds of
//! connection.
//!
//! Layer 2 (fast and slow path) uses [`open_writer`]. Layer 3 (MCP tools, CLI reports) uses
//! [`open_reader`], which is read-only and carries an authorizer that denies every read of
//! `raw_traces`: the rule "interfaces never see raw traces" holds at runtime, not by
//! convention (invariant 1).

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
];

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
/// any access to `raw_traces`.
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
        AuthAction::Read { table_name, .. } if table_name.eq_ignore_ascii_case("raw_traces") => {
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
