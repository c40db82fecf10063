//! WAL checkpoints off the commit path.
//!
//! With SQLite's automatic checkpoints the connection whose commit crosses the threshold
//! copies the WAL back into the database file (and fsyncs it) before its `COMMIT` returns:
//! that writer stalls while the other one has nothing to do. The [`Checkpointer`] is one
//! thread with its own connection: the writers' commits only tell it how long the WAL is
//! (a `wal_hook`), and it runs a `PASSIVE` checkpoint — which never blocks a writer or a
//! reader — beside them once the WAL holds [`CHECKPOINT_PAGES`]. The WAL stays bounded: a
//! passive checkpoint cannot reset the log while commits keep coming, so past
//! [`RESTART_PAGES`] it runs a `RESTART` checkpoint, which waits for the writers (the busy
//! handler) and lets the next commit start the log from the beginning.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::StoreError;

/// WAL frames after which a passive checkpoint runs (SQLite's automatic default).
pub const CHECKPOINT_PAGES: i32 = 1_000;
/// WAL frames after which the checkpointer makes the log start again (`RESTART`): with
/// 4 KiB pages, 64 MiB.
pub const RESTART_PAGES: i32 = 16_384;
/// A checkpoint runs at least this often while the WAL is not empty.
const IDLE: Duration = Duration::from_secs(1);

#[derive(Default)]
struct State {
    /// WAL frames after the newest commit.
    pages: i32,
    stop: bool,
}

type Shared = Arc<(Mutex<State>, Condvar)>;

/// The checkpoint thread of one database. Stops (and joins) when dropped.
pub struct Checkpointer {
    shared: Shared,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Opens a connection to `path` and starts the thread.
    ///
    /// # Errors
    /// When the database cannot be opened.
    pub fn start(path: &Path) -> Result<Checkpointer, StoreError> {
        let conn = super::open_writer(path)?;
        super::no_autocheckpoint(&conn)?;
        // A `RESTART` waits for writers and readers only briefly: it never holds the
        // writers up for long, and what it could not do is done next time.
        conn.busy_timeout(Duration::from_millis(200))?;
        let shared: Shared = Arc::default();
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("bp-checkpoint".into())
            .spawn(move || run(&conn, &s))
            .map_err(|e| {
                StoreError::Sqlite(rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
            })?;
        Ok(Checkpointer {
            shared,
            thread: Some(thread),
        })
    }

    /// Turns off `conn`'s automatic checkpoints and has its commits wake this thread.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn attach(&self, conn: &mut Connection) -> Result<(), StoreError> {
        // The pragma installs SQLite's own hook: first turn that off, then install ours.
        super::no_autocheckpoint(conn)?;
        let shared = self.shared.clone();
        conn.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages| {
            let (lock, wake) = &*shared;
            if let Ok(mut st) = lock.lock() {
                st.pages = pages;
                if pages >= CHECKPOINT_PAGES {
                    wake.notify_one();
                }
            }
            Ok(())
        }))?;
        Ok(())
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let (lock, wake) = &*self.shared;
        if let Ok(mut st) = lock.lock() {
            st.stop = true;
        }
        wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(conn: &Connection, shared: &Shared) {
    let (lock, wake) = &**shared;
    loop {
        let pages = {
            let Ok(st) = lock.lock() else { return };
            let Ok((mut st, _)) =
                wake.wait_timeout_while(st, IDLE, |st| !st.stop && st.pages < CHECKPOINT_PAGES)
            else {
                return;
            };
            if st.stop {
                return;
            }
            std::mem::take(&mut st.pages)
        };
        if pages == 0 {
            continue;
        }
        let mode = if pages >= RESTART_PAGES {
            "RESTART"
        } else {
            "PASSIVE"
        };
        match conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
            Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        }) {
            Ok((log, done)) => tracing::trace!(mode, log, done, "Checkpointed the WAL"),
            Err(e) => tracing::debug!(mode, error = %e, "WAL checkpoint failed; retrying later"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attached_writers_commit_without_automatic_checkpoints_and_lose_nothing() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("t.db");
        let cp = Checkpointer::start(&db).unwrap();
        let mut w = super::super::open_writer(&db).unwrap();
        cp.attach(&mut w).unwrap();
        w.execute_batch("CREATE TABLE t (x BLOB)").unwrap();
        for _ in 0..50 {
            let tx = w.transaction().unwrap();
            for _ in 0..100 {
                tx.execute("INSERT INTO t VALUES (zeroblob(4000))", [])
                    .unwrap();
            }
            tx.commit().unwrap();
        }
        drop(cp);
        // Every commit is there, and every frame can be copied back.
        let n: i64 = w
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 5_000);
        let (log, done): (i64, i64) = w
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!(log, done);
    }
}
