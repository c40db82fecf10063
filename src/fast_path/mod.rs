//! Layer 2, fast path: `bp:events` -> `raw_traces`, nothing else.
//!
//! Reads batches (at most [`BATCH`] events or [`BATCH_WAIT`]) through the `fastpath` consumer
//! group, compresses each payload with zlib and inserts the batch in one transaction with
//! `INSERT OR IGNORE` on the event id. Only after the commit does it acknowledge the batch,
//! atomically with a change-feed entry for the slow path. Entries that stay unacknowledged
//! (their consumer died, or the store failed) are claimed again after [`CLAIM_IDLE`]; after
//! [`MAX_DELIVERIES`] deliveries an entry goes to the dead-letter stream instead of being
//! retried forever.

use std::time::Duration;

use rusqlite::{Connection, params};
use tokio_util::sync::CancellationToken;

use crate::event::Event;
use crate::queue::{self, DeadLetter, Entry, Queue, QueueError};
use crate::store::StoreError;
use crate::store::codec::Compressor;

pub const BATCH: usize = 100;
pub const BATCH_WAIT: Duration = Duration::from_millis(100);
/// How long an idle read blocks. XREADGROUP returns as soon as any entry arrives, so this
/// adds no latency; it only bounds idle wake-ups and the time shutdown waits for a step.
pub const IDLE_BLOCK: Duration = Duration::from_millis(500);
pub const CLAIM_IDLE: Duration = Duration::from_secs(5);
pub const MAX_DELIVERIES: usize = 5;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FastPathError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl From<rusqlite::Error> for FastPathError {
    fn from(e: rusqlite::Error) -> Self {
        FastPathError::Store(StoreError::Sqlite(e))
    }
}

/// Inserts a batch in one transaction. Returns (rows inserted, highest `seq` in the table).
///
/// # Errors
/// On SQLite errors; nothing is committed then.
pub fn insert_batch(
    conn: &mut Connection,
    zlib: &mut Compressor,
    events: &[Event],
) -> Result<(usize, i64), rusqlite::Error> {
    let now = chrono::Utc::now().timestamp_millis();
    let compressed: Vec<Vec<u8>> = events
        .iter()
        .map(|e| zlib.compress(e.payload.as_bytes()))
        .collect();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut inserted = 0;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT OR IGNORE INTO raw_traces
               (id, platform, kind, session_id, ts, source, source_offset, payload, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for (e, z) in events.iter().zip(&compressed) {
            inserted += stmt.execute(params![
                e.id,
                e.platform.as_str(),
                e.kind,
                e.session_id,
                e.timestamp_ms,
                e.source,
                e.offset as i64,
                z,
                now
            ])?;
        }
    }
    let max_seq: i64 = tx.query_row("SELECT coalesce(max(seq), 0) FROM raw_traces", [], |r| {
        r.get(0)
    })?;
    if inserted > 0 {
        tx.execute(
            "INSERT INTO pipeline_state (key, value) VALUES ('fast_path_seq', ?1)
             ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
            [max_seq],
        )?;
    }
    tx.commit()?;
    Ok((inserted, max_seq))
}

/// One fast-path consumer.
pub struct FastPath {
    queue: Queue,
    reader: Queue,
    conn: Connection,
    zlib: Compressor,
    consumer: String,
}

impl FastPath {
    /// # Errors
    /// When Redis or the database cannot be opened.
    pub async fn new(
        queue: Queue,
        db: &std::path::Path,
        consumer: String,
    ) -> Result<FastPath, FastPathError> {
        let reader = queue.blocking(IDLE_BLOCK).await?;
        let conn = crate::store::open_writer(db)?;
        crate::store::no_autocheckpoint(&conn)?;
        Ok(FastPath {
            queue,
            reader,
            conn,
            zlib: Compressor::default(),
            consumer,
        })
    }

    /// Runs until `shutdown`, retrying Redis and store failures with backoff.
    ///
    /// A step is never cancelled half-way (that would leave a read batch unacknowledged until
    /// it is reclaimed); shutdown is checked between steps, which block at most
    /// [`IDLE_BLOCK`].
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut last_claim: Option<std::time::Instant> = None;
        let mut backoff = Duration::from_millis(100);
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let step = if last_claim.is_none_or(|t| t.elapsed() >= Duration::from_secs(2)) {
                last_claim = Some(std::time::Instant::now());
                self.reclaim().await.map(|_| 0)
            } else {
                self.step().await
            };
            match step {
                Ok(_) => backoff = Duration::from_millis(100),
                Err(e) => {
                    tracing::warn!(error = %e, "Fast path step failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Reads and stores one batch; returns the number of entries handled.
    ///
    /// # Errors
    /// Redis or store failures; unacknowledged entries are claimed again later.
    pub async fn step(&mut self) -> Result<usize, FastPathError> {
        let entries = self
            .reader
            .read_group(
                queue::EVENTS,
                queue::FAST_GROUP,
                &self.consumer,
                BATCH,
                IDLE_BLOCK,
            )
            .await?;
        let n = entries.len();
        self.store(entries.into_iter().map(|e| (e, 1)).collect())
            .await?;
        Ok(n)
    }

    /// Claims entries other (dead) consumers left unacknowledged.
    ///
    /// # Errors
    /// Redis or store failures.
    pub async fn reclaim(&mut self) -> Result<(), FastPathError> {
        loop {
            let claimed = self
                .queue
                .autoclaim(
                    queue::EVENTS,
                    queue::FAST_GROUP,
                    &self.consumer,
                    CLAIM_IDLE,
                    BATCH,
                )
                .await?;
            if claimed.is_empty() {
                return Ok(());
            }
            tracing::info!(count = claimed.len(), "Reclaimed unacknowledged events");
            self.store(claimed).await?;
        }
    }

    async fn store(&mut self, entries: Vec<(Entry, usize)>) -> Result<(), FastPathError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut events = Vec::with_capacity(entries.len());
        let mut ids = Vec::with_capacity(entries.len());
        for (entry, delivered) in entries {
            if delivered > MAX_DELIVERIES {
                let letter = DeadLetter {
                    stage: "fast_path",
                    reason: format!("not stored after {} deliveries", delivered - 1),
                    source: entry.get_str("src").unwrap_or("").to_string(),
                    offset: entry
                        .get_str("off")
                        .and_then(|o| o.parse().ok())
                        .unwrap_or(0),
                };
                tracing::warn!(stream_id = %entry.stream_id, reason = %letter.reason, "Dead-lettering event");
                self.queue
                    .dead_letter_entry(queue::EVENTS, queue::FAST_GROUP, &entry, &letter)
                    .await?;
                continue;
            }
            match entry.to_event() {
                Ok(e) => {
                    events.push(e);
                    ids.push(entry.stream_id);
                }
                Err(reason) => {
                    tracing::warn!(stream_id = %entry.stream_id, %reason, "Malformed queue entry");
                    let letter = DeadLetter {
                        stage: "fast_path",
                        reason,
                        source: entry.get_str("src").unwrap_or("").to_string(),
                        offset: 0,
                    };
                    self.queue
                        .dead_letter_entry(queue::EVENTS, queue::FAST_GROUP, &entry, &letter)
                        .await?;
                }
            }
        }
        if events.is_empty() {
            return Ok(());
        }
        let (conn, zlib) = (&mut self.conn, &mut self.zlib);
        let (inserted, max_seq) =
            tokio::task::block_in_place(|| insert_batch(conn, zlib, &events))?;
        tracing::trace!(inserted, batch = events.len(), "Stored batch");
        self.queue
            .ack(
                queue::EVENTS,
                queue::FAST_GROUP,
                &ids,
                (inserted > 0).then_some(max_seq),
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Platform;

    fn ev(id: &str) -> Event {
        Event {
            id: id.into(),
            platform: Platform::ClaudeCode,
            kind: "user".into(),
            session_id: Some("s".into()),
            timestamp_ms: Some(1),
            source: "/f".into(),
            offset: 0,
            payload: "{\"type\":\"user\"}".into(),
        }
    }

    #[test]
    fn inserts_are_idempotent() {
        let d = tempfile::tempdir().unwrap();
        let mut c = crate::store::open_writer(&d.path().join("t.db")).unwrap();
        let z = &mut Compressor::default();
        let (n, seq) = insert_batch(&mut c, z, &[ev("a"), ev("b")]).unwrap();
        assert_eq!((n, seq), (2, 2));
        // A redelivery of the same batch (the reference design's duplicate-row defect).
        let (n, seq) = insert_batch(&mut c, z, &[ev("b"), ev("a"), ev("c")]).unwrap();
        assert_eq!((n, seq), (1, 3));
        let rows: i64 = c
            .query_row("SELECT count(*) FROM raw_traces", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 3);
    }
}
