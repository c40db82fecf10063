//! Layer 2, fast path: `bp:events` -> `raw_traces`, nothing else.
//!
//! Reads batches (at most [`BATCH`] events or [`BATCH_WAIT`]; [`BACKLOG_BATCH`] while a backlog
//! drains, after a read that came back full) through the `fastpath` consumer
//! group, compresses the payloads with zlib — consecutive records of one source together, in
//! blocks (`store::blocks`) — and inserts the batch in one transaction with
//! `INSERT OR IGNORE` on the event id. Only after the commit does it acknowledge the batch,
//! atomically with a change-feed entry for the slow path.
//!
//! Failure semantics (nothing is lost):
//! - the store is unavailable (busy, full, I/O, read-only — [`crate::store::Failure::Retry`]):
//!   the batch is held in memory and retried with backoff, its entries kept ours (idle time
//!   reset without counting a delivery) and no other entries claimed meanwhile — an outage
//!   never raises delivery counts, so it never dead-letters anything;
//! - the store rejects the data ([`crate::store::Failure::Entry`]): the batch is split until
//!   the entries that fail alone are found; only those are dead-lettered, with the reason;
//! - a consumer died: its entries are claimed again after [`CLAIM_IDLE`]; one delivered more
//!   than [`MAX_DELIVERIES`] times is stored alone under a marker, and dead-lettered only if
//!   the store rejects it or a consumer dies again while storing it (poison).

use std::time::Duration;

use rusqlite::{Connection, params};
use tokio_util::sync::CancellationToken;

use crate::event::{Event, Source};
use crate::queue::{self, DeadLetter, Entry, Queue, QueueError};
use crate::store::blocks::{self, Part};
use crate::store::codec::Compressor;
use crate::store::raw;
use crate::store::{Failure, StoreError, classify};

pub const BATCH: usize = 100;
/// Entries per read while a backlog is draining (a read came back full): a backfill's
/// transactions and round trips are 10x fewer, while a live batch is still at most [`BATCH`].
pub const BACKLOG_BATCH: usize = 1_000;
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
pub fn insert_batch<E: std::borrow::Borrow<Event>>(
    conn: &mut Connection,
    zlib: &mut Compressor,
    events: &[E],
) -> Result<(usize, i64), rusqlite::Error> {
    let events: Vec<&Event> = events.iter().map(|e| e.borrow()).collect();
    let now = chrono::Utc::now().timestamp_millis();
    // Compressed before the write lock is taken: the slow path may commit meanwhile.
    let plan = blocks::plan(
        zlib,
        events
            .iter()
            .map(|e| (e.source.location(), e.payload.as_bytes())),
    );
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut inserted = 0;
    {
        let mut add_block = tx.prepare_cached("INSERT INTO raw_blocks (data) VALUES (?1)")?;
        let block_ids = plan
            .blocks
            .iter()
            .map(|b| {
                add_block.execute([b])?;
                Ok(tx.last_insert_rowid())
            })
            .collect::<rusqlite::Result<Vec<i64>>>()?;
        // Blocks every record of which was already stored (a redelivered batch) are removed.
        let mut used = vec![false; block_ids.len()];
        // The compact row (migration 0007, `store::raw`): the id as its 16-byte key plus
        // form and tail, the repeated strings as refs; the payload alone or in a block (0008).
        let mut refs = raw::Refs::default();
        let mut stmt = tx.prepare_cached(
            "INSERT OR IGNORE INTO raw_traces
               (id_key, id_form, id_tail, kind_ref, session_ref, ts, source_ref, source_offset,
                source_key, source_version, payload, received_at, block, block_start, block_len)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )?;
        const EMPTY: &[u8] = &[];
        for (e, part) in events.iter().zip(&plan.parts) {
            let key = raw::id_key(&e.id);
            // None: a duplicate with a string never stored (nothing to insert).
            let Some(r) = refs.for_event(&tx, e, &key)? else {
                continue;
            };
            let (form, tail) = raw::encode_id(&e.id, e.session_id.as_deref());
            let (payload, block, start, len) = match part {
                Part::Alone(z) => (z.as_slice(), None, None, None),
                Part::InBlock { block, start, len } => (
                    EMPTY,
                    Some(block_ids[*block]),
                    Some(*start as i64),
                    Some(*len as i64),
                ),
            };
            let n = stmt.execute(params![
                key,
                form,
                tail,
                r.kind,
                r.session,
                e.timestamp_ms,
                r.source,
                match &e.source {
                    Source::FileLine { offset, .. } => Some(*offset as i64),
                    Source::Hook { received_at, .. } => Some(*received_at),
                    Source::DbRow { .. } => None,
                },
                e.source.key(),
                match &e.source {
                    Source::DbRow { version, .. } => Some(*version),
                    _ => None,
                },
                payload,
                now,
                block,
                start,
                len
            ])?;
            if let (1, Part::InBlock { block, .. }) = (n, part) {
                used[*block] = true;
            }
            inserted += n;
        }
        let mut drop_block = tx.prepare_cached("DELETE FROM raw_blocks WHERE id = ?1")?;
        for (id, used) in block_ids.iter().zip(used) {
            if !used {
                drop_block.execute([id])?;
            }
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
    /// Entries read but not stored because the store was unavailable: retried first, in
    /// memory, so an outage never raises their delivery counts.
    held: Vec<(String, Event)>,
    /// The reader connection's `CLIENT ID`, to end its blocked read at shutdown; fetched
    /// again after a failed read (the connection may have been replaced).
    reader_id: Option<i64>,
    /// The last read came back full: read [`BACKLOG_BATCH`] next.
    backlogged: bool,
}

/// Redis set of stream ids being stored alone after too many deliveries; one still there
/// when it is delivered again means a consumer died storing it: a poison entry.
pub const SUSPECTS: &str = "bp:fast:suspects";

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
            held: Vec::new(),
            reader_id: None,
            backlogged: false,
        })
    }

    /// Leaves this connection's WAL checkpoints to `c` (see [`crate::store::checkpoint`]).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn checkpoint_with(
        &mut self,
        c: &crate::store::checkpoint::Checkpointer,
    ) -> Result<(), FastPathError> {
        Ok(c.attach(&mut self.conn)?)
    }

    /// Entries held back by a store outage.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Runs until `shutdown`, retrying Redis and store failures with backoff.
    ///
    /// A step is never cancelled half-way (that would leave a read batch unacknowledged until
    /// it is reclaimed); shutdown is checked between steps, and a read blocked at shutdown is
    /// ended by Redis (`CLIENT UNBLOCK`: it returns what it has, usually nothing) and its step
    /// finished — so a stop does not wait out [`IDLE_BLOCK`].
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut last_claim: Option<std::time::Instant> = None;
        let mut backoff = Duration::from_millis(100);
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let step = if !self.held.is_empty() {
                self.retry_held().await.map(|_| 0)
            } else if last_claim.is_none_or(|t| t.elapsed() >= Duration::from_secs(2)) {
                last_claim = Some(std::time::Instant::now());
                self.reclaim().await.map(|_| 0)
            } else {
                self.step_until(&shutdown).await
            };
            match step {
                Ok(_) => backoff = Duration::from_millis(100),
                Err(e) => {
                    tracing::warn!(error = %e, held = self.held.len(), "Fast path step failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    // Short enough that held entries are touched well within CLAIM_IDLE.
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// Reads and stores one batch; returns the number of entries handled.
    ///
    /// # Errors
    /// Redis or store failures; on a store outage the entries are held and retried.
    pub async fn step(&mut self) -> Result<usize, FastPathError> {
        if !self.held.is_empty() {
            self.retry_held().await?;
            return Ok(0);
        }
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

    /// [`FastPath::step`], whose blocked read Redis ends when `shutdown` is cancelled.
    async fn step_until(&mut self, shutdown: &CancellationToken) -> Result<usize, FastPathError> {
        if self.reader_id.is_none() {
            // Without an id (an ACL refusing `CLIENT`), a stop waits out the block as before.
            self.reader_id = self.reader.client_id().await.ok();
        }
        let count = if self.backlogged {
            BACKLOG_BATCH
        } else {
            BATCH
        };
        let read = {
            let read = self.reader.read_group(
                queue::EVENTS,
                queue::FAST_GROUP,
                &self.consumer,
                count,
                IDLE_BLOCK,
            );
            tokio::pin!(read);
            tokio::select! {
                r = &mut read => r,
                () = shutdown.cancelled() => {
                    if let Some(id) = self.reader_id
                        && let Err(e) = self.queue.unblock(id).await
                    {
                        tracing::debug!(error = %e, "Cannot unblock the fast path's read");
                    }
                    // Whatever the read returns now is stored and acknowledged as usual.
                    read.await
                }
            }
        };
        let entries = match read {
            Ok(e) => e,
            Err(e) => {
                self.reader_id = None;
                self.backlogged = false;
                return Err(e.into());
            }
        };
        let n = entries.len();
        self.backlogged = n >= BATCH;
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
            if !self.held.is_empty() {
                // The store is down: claiming more would only raise delivery counts.
                return self.retry_held().await;
            }
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

    /// Stores the entries held back by an outage.
    ///
    /// # Errors
    /// The store is still unavailable (they stay held) or Redis failed.
    pub async fn retry_held(&mut self) -> Result<(), FastPathError> {
        let held = std::mem::take(&mut self.held);
        // Keep them ours: a claim with JUSTID resets their idle time without counting a
        // delivery, so no other consumer takes them over while we wait for the store.
        let ids: Vec<&str> = held.iter().map(|(id, _)| id.as_str()).collect();
        self.queue
            .touch(queue::EVENTS, queue::FAST_GROUP, &self.consumer, &ids)
            .await?;
        self.store_events(held).await
    }

    async fn store(&mut self, entries: Vec<(Entry, usize)>) -> Result<(), FastPathError> {
        let mut events = Vec::with_capacity(entries.len());
        let mut suspects = Vec::new();
        for (entry, delivered) in entries {
            match entry.to_event() {
                Ok(e) if delivered > MAX_DELIVERIES => suspects.push((entry, e, delivered)),
                Ok(e) => events.push((entry.stream_id, e)),
                Err(reason) => {
                    tracing::warn!(stream_id = %entry.stream_id, %reason, "Malformed queue entry");
                    let letter = letter_for(&entry, reason);
                    self.queue
                        .dead_letter_entry(queue::EVENTS, queue::FAST_GROUP, &entry, &letter)
                        .await?;
                }
            }
        }
        for (entry, event, delivered) in suspects {
            if let Err(e) = self.store_suspect(entry, event, delivered).await {
                // The batch's other events stay ours, retried with the held ones.
                self.held.extend(events);
                return Err(e);
            }
        }
        self.store_events(events).await
    }

    /// An entry delivered more than [`MAX_DELIVERIES`] times is stored alone, under a marker:
    /// if it stores, it was only the victim of crashes or outages; if the store rejects it,
    /// or a consumer died while storing it (the marker is still there), it is poison.
    async fn store_suspect(
        &mut self,
        entry: Entry,
        event: Event,
        delivered: usize,
    ) -> Result<(), FastPathError> {
        if !self.queue.mark_suspect(SUSPECTS, &entry.stream_id).await? {
            let letter = letter_for(
                &entry,
                format!("a consumer died storing it ({delivered} deliveries)"),
            );
            tracing::warn!(stream_id = %entry.stream_id, reason = %letter.reason, "Dead-lettering event");
            self.queue
                .dead_letter_entry(queue::EVENTS, queue::FAST_GROUP, &entry, &letter)
                .await?;
            self.queue.clear_suspect(SUSPECTS, &entry.stream_id).await?;
            return Ok(());
        }
        let r = self
            .store_events(vec![(entry.stream_id.clone(), event)])
            .await;
        self.queue.clear_suspect(SUSPECTS, &entry.stream_id).await?;
        r
    }

    /// Inserts events (stream id, event) and acknowledges them. A batch the store rejects
    /// for its data is split until the entries that fail alone are found; those are
    /// dead-lettered with the store's reason. On an outage everything not yet stored is
    /// held for [`FastPath::retry_held`].
    async fn store_events(&mut self, events: Vec<(String, Event)>) -> Result<(), FastPathError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut todo = vec![events];
        while let Some(part) = todo.pop() {
            let (conn, zlib) = (&mut self.conn, &mut self.zlib);
            let evs: Vec<&Event> = part.iter().map(|(_, e)| e).collect();
            match tokio::task::block_in_place(|| insert_batch(conn, zlib, &evs)) {
                Ok((inserted, max_seq)) => {
                    let ids: Vec<String> = part.into_iter().map(|(id, _)| id).collect();
                    tracing::trace!(inserted, batch = ids.len(), "Stored batch");
                    self.queue
                        .ack(
                            queue::EVENTS,
                            queue::FAST_GROUP,
                            &ids,
                            (inserted > 0).then_some(max_seq),
                        )
                        .await?;
                }
                Err(e) if classify(&e) == Failure::Entry && part.len() > 1 => {
                    let mut part = part;
                    let right = part.split_off(part.len() / 2);
                    todo.push(right);
                    todo.push(part);
                }
                Err(e) if classify(&e) == Failure::Entry => {
                    let Some((id, ev)) = part.into_iter().next() else {
                        continue;
                    };
                    tracing::warn!(stream_id = %id, event = %ev.id, error = %e, "The store rejects this event");
                    let letter = DeadLetter {
                        stage: "fast_path",
                        reason: format!("the store rejects it: {e}"),
                        source: ev.source.location().to_string(),
                        offset: u64::try_from(ev.source.position()).unwrap_or(0),
                    };
                    self.queue
                        .dead_letter_event(queue::EVENTS, queue::FAST_GROUP, &id, &ev, &letter)
                        .await?;
                }
                Err(e) => {
                    self.held.extend(part);
                    for rest in todo {
                        self.held.extend(rest);
                    }
                    return Err(FastPathError::Store(StoreError::Sqlite(e)));
                }
            }
        }
        Ok(())
    }
}

fn letter_for(entry: &Entry, reason: String) -> DeadLetter {
    DeadLetter {
        stage: "fast_path",
        reason,
        source: entry.get_str("src").unwrap_or("").to_string(),
        offset: entry
            .get_str("off")
            .and_then(|o| o.parse().ok())
            .unwrap_or(0),
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
            source: Source::FileLine {
                path: "/f".into(),
                offset: 0,
            },
            payload: format!("{{\"type\":\"user\",\"uuid\":\"{id}\"}}"),
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
        // Each batch's lines of one file went into one block; a batch stored already leaves
        // no block behind.
        let (n, _) = insert_batch(&mut c, z, &[ev("a"), ev("c")]).unwrap();
        assert_eq!(n, 0);
        let blocks: i64 = c
            .query_row("SELECT count(*) FROM raw_blocks", [], |r| r.get(0))
            .unwrap();
        assert_eq!(blocks, 2);
        let texts: Vec<Option<String>> = crate::store::blocks::all_texts(&c)
            .unwrap()
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        let want = ["a", "b", "c"].map(|id| Some(ev(id).payload));
        assert_eq!(texts, want);
        // A lone record keeps its own stream.
        insert_batch(&mut c, z, &[ev("d")]).unwrap();
        let (payload, block): (Vec<u8>, Option<i64>) = c
            .query_row(
                "SELECT payload, block FROM raw_traces_text WHERE id = 'd'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(
            (crate::store::codec::decode(&payload), block),
            (Some(ev("d").payload), None)
        );
        // The same event seen again in a copy of its file at another path (another source,
        // a new session string in its id's row): nothing stored, not even the new strings.
        let mut copy = ev("a");
        copy.source = Source::FileLine {
            path: "/elsewhere/f".into(),
            offset: 0,
        };
        copy.kind = "assistant".into();
        let (n, _) = insert_batch(&mut c, z, &[copy]).unwrap();
        assert_eq!(n, 0);
        let lookups: i64 = c
            .query_row(
                "SELECT (SELECT count(*) FROM raw_sources) + (SELECT count(*) FROM raw_kinds)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(lookups, 2);
    }
}
