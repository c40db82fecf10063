//! The read facade: a small pool of read-only connections (`store::open_reader`: read-only,
//! `query_only`, `raw_traces` denied), shared by the MCP tools, the CLI and the coming HTTP
//! server. Connections are kept, so prepared statements are reused across calls, and several
//! calls can read at once (WAL readers do not block each other or the writers).
//!
//! A read can be stopped from outside: [`Reader::with_cancel`] installs a SQLite progress
//! handler that polls a flag, so a cancelled MCP call interrupts its query (SQLITE_INTERRUPT)
//! within [`PROGRESS_OPS`] virtual-machine steps instead of running it to the end. The handler
//! is removed before the connection goes back to the pool.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::Connection;

use super::{QueryError, Result};

/// Connections kept open for reuse.
pub const POOL: usize = 4;

/// SQLite virtual-machine steps between two polls of a cancellation flag (well under a
/// millisecond of work).
pub const PROGRESS_OPS: i32 = 10_000;

pub struct Reader {
    db: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Reader {
    /// A reader of the database at `db` (opened on first use).
    pub fn new(db: &Path) -> Reader {
        Reader {
            db: db.to_path_buf(),
            idle: Mutex::new(Vec::new()),
        }
    }

    pub fn db(&self) -> &Path {
        &self.db
    }

    /// Runs `f` on a pooled read-only connection (blocking: call it off the async workers,
    /// e.g. in `block_in_place`).
    ///
    /// # Errors
    /// The database cannot be opened, or `f` fails.
    pub fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.run(None::<fn() -> bool>, f)
    }

    /// [`Reader::with`], interrupting the query as soon as `cancelled()` returns true (the
    /// error is then [`QueryError::Sqlite`] with `SQLITE_INTERRUPT`).
    ///
    /// # Errors
    /// The database cannot be opened, `f` fails, or the read was cancelled.
    pub fn with_cancel<T>(
        &self,
        cancelled: impl Fn() -> bool + Send + 'static,
        f: impl FnOnce(&Connection) -> Result<T>,
    ) -> Result<T> {
        self.run(Some(cancelled), f)
    }

    fn run<T, C: Fn() -> bool + Send + 'static>(
        &self,
        cancelled: Option<C>,
        f: impl FnOnce(&Connection) -> Result<T>,
    ) -> Result<T> {
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => crate::store::open_reader(&self.db).map_err(QueryError::Store)?,
        };
        let watched = cancelled.is_some();
        if let Some(c) = cancelled {
            conn.progress_handler(PROGRESS_OPS, Some(c))?;
        }
        let r = f(&conn);
        if watched {
            // A connection whose handler cannot be removed is not reused.
            if conn.progress_handler(0, None::<fn() -> bool>).is_err() {
                return r;
            }
        }
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < POOL {
            idle.push(conn);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_reused_and_read_only() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("t.db");
        drop(crate::store::open_writer(&db).unwrap());
        let r = Reader::new(&db);
        let n: i64 = r
            .with(|c| Ok(c.query_row("SELECT count(*) FROM sessions", [], |x| x.get(0))?))
            .unwrap();
        assert_eq!(n, 0);
        assert_eq!(r.idle.lock().unwrap().len(), 1);
        let denied = r.with(|c| Ok(c.execute("DELETE FROM sessions", [])?));
        assert!(denied.is_err());
        let raw = r.with(|c| {
            Ok(c.query_row("SELECT count(*) FROM raw_traces", [], |x| {
                x.get::<_, i64>(0)
            })?)
        });
        assert!(raw.is_err(), "raw_traces is denied");
        // Nested use opens a second connection.
        r.with(|_| r.with(|_| Ok(()))).unwrap();
        assert_eq!(r.idle.lock().unwrap().len(), 2);
        let missing = Reader::new(&d.path().join("none.db"));
        assert!(matches!(
            missing.with(|_| Ok(())),
            Err(QueryError::Store(_))
        ));
    }

    /// A query that counts to 10^8 (seconds of work) stops within a second of the flag.
    #[test]
    fn a_cancelled_read_is_interrupted_and_the_connection_reused() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::time::{Duration, Instant};
        const SLOW: &str = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n \
                            WHERE i < 100000000) SELECT count(*) FROM n";
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("t.db");
        drop(crate::store::open_writer(&db).unwrap());
        let r = Reader::new(&db);
        let flag = Arc::new(AtomicBool::new(false));
        let setter = {
            let flag = flag.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                flag.store(true, Ordering::SeqCst);
                Instant::now()
            })
        };
        let seen = flag.clone();
        let out = r.with_cancel(
            move || seen.load(Ordering::SeqCst),
            |c| Ok(c.query_row(SLOW, [], |x| x.get::<_, i64>(0))?),
        );
        let stopped = Instant::now();
        let set = setter.join().unwrap();
        match out {
            Err(QueryError::Sqlite(e)) => assert_eq!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::OperationInterrupted),
                "{e}"
            ),
            other => panic!("the slow query was not interrupted: {other:?}"),
        }
        let lag = stopped.saturating_duration_since(set);
        assert!(
            lag < Duration::from_secs(1),
            "interrupted {lag:?} after the flag"
        );
        // The handler is gone: the pooled connection runs a query to the end, flag still set.
        assert_eq!(r.idle.lock().unwrap().len(), 1);
        let n: i64 = r
            .with(|c| {
                Ok(c.query_row(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n \
                     WHERE i < 200000) SELECT count(*) FROM n",
                    [],
                    |x| x.get(0),
                )?)
            })
            .unwrap();
        assert_eq!(n, 200_000);
        // An uncancelled watched read finishes too.
        let n: i64 = r
            .with_cancel(|| false, |c| Ok(c.query_row("SELECT 7", [], |x| x.get(0))?))
            .unwrap();
        assert_eq!(n, 7);
    }
}
