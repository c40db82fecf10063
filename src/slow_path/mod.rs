//! Layer 2, slow path: raw traces -> sessions, messages, API responses, tool calls, FTS, and
//! metrics in Redis.
//!
//! A watermark job: each round takes the SQLite write lock, reads the raw rows after the
//! watermark (`pipeline_state.slow_path_seq`), derives the conversation rows, and moves the
//! watermark in the same transaction, so every raw row is derived exactly once even with
//! several processes and crashes at any point. The `bp:cdc` change feed (consumer group
//! `slowpath`) wakes it when the fast path commits; a timer covers a lost wake-up.
//!
//! Invariant: everything here can be rebuilt from `raw_traces`.

pub mod derive;
pub mod flush;

use std::time::Duration;

use redis::aio::ConnectionManager;
use rusqlite::{Connection, params};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::queue::{self, Queue, QueueError};
use crate::store::StoreError;
use crate::store::blocks::{self, PayloadReader, Stored};

/// Raw rows per transaction.
pub const ROUND: usize = 2_000;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SlowPathError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl From<rusqlite::Error> for SlowPathError {
    fn from(e: rusqlite::Error) -> Self {
        SlowPathError::Store(StoreError::Sqlite(e))
    }
}

/// Why one record was not derived.
#[derive(Debug, thiserror::Error)]
pub enum DeriveError {
    /// The record cannot be derived (out-of-range figures, ...): it is dead-lettered with
    /// this reason and the slow path moves on.
    #[error("{0}")]
    Reject(String),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// seq, id, platform, kind, session id, timestamp, stored payload, source, offset.
type RawRow = (
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<i64>,
    Stored,
    String,
    Option<i64>,
);

/// Derives up to `limit` raw rows after the watermark in one transaction.
/// Returns (rows derived, watermark after).
///
/// # Errors
/// SQLite errors; nothing is committed then.
pub fn process_round(conn: &mut Connection, limit: usize) -> rusqlite::Result<(usize, i64)> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let watermark: i64 = tx.query_row(
        "SELECT coalesce((SELECT value FROM pipeline_state WHERE key = 'slow_path_seq'), 0)",
        [],
        |r| r.get(0),
    )?;
    let rows: Vec<RawRow> = tx
        .prepare_cached(&format!(
            "SELECT seq, id, platform, kind, session_id, ts, source, source_offset, {}
             FROM raw_traces_text WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            blocks::COLUMNS
        ))?
        .query_map(params![watermark, limit as i64], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                Stored::from_row(r, 8)?,
                r.get(6)?,
                r.get(7)?,
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let Some(last) = rows.last().map(|r| r.0) else {
        return Ok((0, watermark));
    };
    let mut round = derive::Round::default();
    let mut payloads = PayloadReader::default();
    for (seq, id, platform, kind, session_id, ts, payload, source, offset) in &rows {
        let value: Value = match payloads
            .text(&tx, payload)?
            .and_then(|s| serde_json::from_str(s).ok())
        {
            Some(v) => v,
            None => {
                tracing::error!(seq, id = %id, "Stored payload does not decode; skipping it");
                continue;
            }
        };
        if let Some(deriver) = derive::deriver_for(platform) {
            let rec = derive::Record {
                seq: *seq,
                event_id: id,
                platform,
                kind,
                session_id: session_id.as_deref(),
                ts: *ts,
                value: &value,
            };
            match deriver.derive(&tx, &rec, &mut round) {
                Ok(()) => {}
                Err(DeriveError::Reject(reason)) => {
                    tracing::warn!(seq, id = %id, source = %source, offset, %reason, "Record not derived; dead-lettering it");
                    tx.prepare_cached(
                        "INSERT OR IGNORE INTO derive_rejects (event_id, seq, reason, source, source_offset, at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )?
                    .execute(params![
                        id,
                        seq,
                        reason,
                        source,
                        offset,
                        chrono::Utc::now().timestamp_millis()
                    ])?;
                }
                Err(DeriveError::Sqlite(e)) => return Err(e),
            }
        }
    }
    let dirty = round.finish(&tx)?;
    crate::metrics::rollup::refresh(&tx, &dirty)?;
    if !dirty.is_empty() {
        let generation = flush::bump_generation(&tx)?;
        let mut mark = tx.prepare_cached(
            "INSERT INTO dirty_buckets (bucket, version) VALUES (?1, ?2)
             ON CONFLICT (bucket) DO UPDATE SET version = excluded.version",
        )?;
        for b in &dirty {
            mark.execute(params![b, generation])?;
        }
    }
    tx.execute(
        "INSERT INTO pipeline_state (key, value) VALUES ('slow_path_seq', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [last],
    )?;
    tx.commit()?;
    Ok((rows.len(), last))
}

/// Derives everything pending, then brings the Redis metrics up to date.
///
/// # Errors
/// SQLite or Redis failures.
pub async fn catch_up(
    conn: &mut Connection,
    redis: &mut ConnectionManager,
) -> Result<usize, SlowPathError> {
    let mut total = 0;
    loop {
        let (n, _) = tokio::task::block_in_place(|| process_round(conn, ROUND))?;
        total += n;
        if n == 0 {
            break;
        }
    }
    send_rejects(conn, redis).await?;
    flush::ensure_complete(conn, redis).await?;
    flush::flush_dirty(conn, redis).await?;
    Ok(total)
}

/// Sends the records the slow path could not derive to the dead-letter stream (the
/// `derive_rejects` outbox, written in the transaction that skipped them).
///
/// # Errors
/// SQLite or Redis failures; unsent rejects are sent next time.
pub async fn send_rejects(
    conn: &mut Connection,
    redis: &mut ConnectionManager,
) -> Result<usize, SlowPathError> {
    let rows: Vec<(String, String, String, Option<i64>)> = tokio::task::block_in_place(|| {
        conn.prepare_cached(
            "SELECT event_id, reason, source, source_offset FROM derive_rejects WHERE sent = 0 LIMIT 500",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()
    })?;
    if rows.is_empty() {
        return Ok(0);
    }
    let letters: Vec<queue::DeadLetter> = rows
        .iter()
        .map(|(id, reason, source, offset)| queue::DeadLetter {
            stage: "slow_path",
            reason: format!("{reason} (event {id})"),
            source: source.clone(),
            offset: offset.and_then(|o| u64::try_from(o).ok()).unwrap_or(0),
        })
        .collect();
    queue::dead_letters_on(redis, &letters).await?;
    tokio::task::block_in_place(|| {
        let mut up =
            conn.prepare_cached("UPDATE derive_rejects SET sent = 1 WHERE event_id = ?1")?;
        for (id, ..) in &rows {
            up.execute([id])?;
        }
        Ok::<_, rusqlite::Error>(())
    })?;
    Ok(rows.len())
}

/// One slow-path consumer.
pub struct SlowPath {
    queue: Queue,
    reader: Queue,
    conn: Connection,
    consumer: String,
}

impl SlowPath {
    /// # Errors
    /// When Redis or the database cannot be opened.
    pub async fn new(
        queue: Queue,
        db: &std::path::Path,
        consumer: String,
    ) -> Result<SlowPath, SlowPathError> {
        let reader = queue.blocking(Duration::from_secs(1)).await?;
        let mut conn = crate::store::open_writer(db)?;
        if tokio::task::block_in_place(|| derive::ensure_versions(&mut conn))? {
            tracing::info!("Re-deriving the store with the current derivation rules");
        }
        Ok(SlowPath {
            queue,
            reader,
            conn,
            consumer,
        })
    }

    /// Leaves this connection's WAL checkpoints to `c` (see [`crate::store::checkpoint`]);
    /// without it the connection keeps SQLite's automatic checkpoints.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn checkpoint_with(
        &mut self,
        c: &crate::store::checkpoint::Checkpointer,
    ) -> Result<(), SlowPathError> {
        Ok(c.attach(&mut self.conn)?)
    }

    /// Runs until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut redis = self.queue.conn();
        let mut backoff = Duration::from_millis(100);
        // A lost wake-up (the fast path died between commit and CDC) is caught by a round
        // every few seconds; otherwise an idle slow path does not touch the database.
        let mut last_round = std::time::Instant::now();
        let mut first = true;
        loop {
            let woke = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = self.reader.read_group(queue::CDC, queue::SLOW_GROUP, &self.consumer, 1000, Duration::from_secs(1)) => r,
            };
            let ids: Vec<String> = match woke {
                Ok(entries) => entries.into_iter().map(|e| e.stream_id).collect(),
                Err(e) => {
                    tracing::debug!(error = %e, "Change feed unavailable; polling");
                    Vec::new()
                }
            };
            if ids.is_empty() && !first && last_round.elapsed() < Duration::from_secs(5) {
                continue;
            }
            first = false;
            last_round = std::time::Instant::now();
            match catch_up(&mut self.conn, &mut redis).await {
                Ok(n) => {
                    if n > 0 {
                        tracing::trace!(rows = n, "Derived");
                    }
                    backoff = Duration::from_millis(100);
                    if let Err(e) = self
                        .queue
                        .ack(queue::CDC, queue::SLOW_GROUP, &ids, None)
                        .await
                    {
                        tracing::debug!(error = %e, "Cannot acknowledge change feed");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Slow path round failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}
