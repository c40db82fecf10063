//! The read facade: a small pool of read-only connections (`store::open_reader`: read-only,
//! `query_only`, `raw_traces` denied), shared by the MCP tools, the CLI and the coming HTTP
//! server. Connections are kept, so prepared statements are reused across calls, and several
//! calls can read at once (WAL readers do not block each other or the writers).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::Connection;

use super::{QueryError, Result};

/// Connections kept open for reuse.
pub const POOL: usize = 4;

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
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let conn = match pooled {
            Some(c) => c,
            None => crate::store::open_reader(&self.db).map_err(QueryError::Store)?,
        };
        let r = f(&conn);
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
}
