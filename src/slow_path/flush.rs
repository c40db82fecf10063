//! Writing the Redis metrics: dirty buckets flushed without holding the SQLite write lock
//! across a Redis round trip, and rebuilds when Redis no longer matches this store.
//!
//! A flush reads the dirty buckets and their figures in one read snapshot (at generation
//! `G`), writes them to Redis at generation `G` (a versioned script: an older snapshot never
//! replaces newer figures), then, in a short write transaction, clears the dirty marks of
//! generation `<= G` and records `G` as flushed. A round that changes a bucket meanwhile
//! marks it with a newer generation, so its mark survives and it is flushed again.

use std::collections::BTreeMap;

use redis::aio::ConnectionManager;
use rusqlite::{Connection, params};

use super::SlowPathError;
use crate::metrics::{self, BucketAgg, SqlFilter};
use crate::queue::{self, QueueError};

/// Buckets per flush.
const FLUSH: i64 = 2_000;
/// Who rebuilds (one process at a time).
const REBUILD_LOCK: &str = "bp:m:rebuilding";

/// Rewrites the dirty buckets in Redis. Returns how many buckets were written.
///
/// # Errors
/// SQLite or Redis failures; the buckets stay dirty and are retried.
pub async fn flush_dirty(
    db: &mut Connection,
    redis: &mut ConnectionManager,
) -> Result<usize, SlowPathError> {
    let mut total = 0;
    loop {
        let (generation, buckets, aggs, failed) = tokio::task::block_in_place(|| snapshot(db))?;
        if buckets.is_empty() {
            return Ok(total);
        }
        if !failed.is_empty() {
            let letters: Vec<queue::DeadLetter> = failed
                .iter()
                .map(|(b, e)| queue::DeadLetter {
                    stage: "metrics",
                    reason: format!("bucket {b} cannot be computed: {e}"),
                    source: "telemetry.db".into(),
                    offset: u64::try_from(*b).unwrap_or(0),
                })
                .collect();
            queue::dead_letters_on(redis, &letters).await?;
        }
        metrics::write_buckets(redis, &buckets, &aggs, generation).await?;
        tokio::task::block_in_place(|| {
            let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            {
                let mut del = tx.prepare_cached(
                    "DELETE FROM dirty_buckets WHERE bucket = ?1 AND version <= ?2",
                )?;
                for b in &buckets {
                    del.execute(params![b, generation])?;
                }
            }
            tx.execute(
                "INSERT INTO pipeline_state (key, value) VALUES ('metrics_flushed', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
                [generation],
            )?;
            tx.commit()
        })?;
        total += buckets.len();
    }
}

type Snapshot = (i64, Vec<i64>, BTreeMap<i64, BucketAgg>, Vec<(i64, String)>);

/// The generation, up to [`FLUSH`] dirty buckets and their figures, from one read snapshot.
/// A bucket whose figures cannot be computed is isolated: reported in the last element (and
/// written empty) so it never blocks the others.
fn snapshot(db: &mut Connection) -> rusqlite::Result<Snapshot> {
    let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Deferred)?;
    let generation: i64 = tx.query_row(
        "SELECT coalesce((SELECT value FROM pipeline_state WHERE key = 'metrics_gen'), 0)",
        [],
        |r| r.get(0),
    )?;
    let buckets: Vec<i64> = tx
        .prepare_cached("SELECT bucket FROM dirty_buckets ORDER BY bucket LIMIT ?1")?
        .query_map([FLUSH], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut aggs = BTreeMap::new();
    let mut failed = Vec::new();
    // Contiguous runs share one grouped query; a failing run is retried bucket by bucket.
    let mut i = 0;
    while i < buckets.len() {
        let mut j = i;
        while j + 1 < buckets.len() && buckets[j + 1] - buckets[i] < 96 {
            j += 1;
        }
        let (from, to) = metrics::bucket_span(buckets[i], buckets[j]);
        match metrics::compute_range(&tx, from, to, &SqlFilter::default()) {
            Ok(part) => aggs.extend(part),
            Err(_) => {
                for &b in &buckets[i..=j] {
                    let (from, to) = metrics::bucket_span(b, b);
                    match metrics::compute_range(&tx, from, to, &SqlFilter::default()) {
                        Ok(part) => aggs.extend(part),
                        Err(e) => {
                            tracing::error!(bucket = b, error = %e, "Metric bucket cannot be computed; skipping it");
                            failed.push((b, e.to_string()));
                        }
                    }
                }
            }
        }
        i = j + 1;
    }
    tx.commit()?;
    Ok((generation, buckets, aggs, failed))
}

/// Rebuilds the Redis metrics when they do not match this store (Redis flushed, replaced,
/// restarted without its AOF, or another store's): returns true when it rebuilt.
///
/// # Errors
/// SQLite or Redis failures.
pub async fn ensure_complete(
    db: &mut Connection,
    redis: &mut ConnectionManager,
) -> Result<bool, SlowPathError> {
    let expected = tokio::task::block_in_place(|| metrics::expected(db))?;
    let stamp = metrics::stamp(redis).await?;
    if stamp.trusted(&expected) {
        return Ok(false);
    }
    tracing::warn!(
        ?stamp,
        store_id = expected.store_id,
        flushed = expected.flushed,
        "Redis metrics do not match this store; rebuilding them from SQLite"
    );
    Ok(rebuild(db, redis).await?.is_some())
}

/// Recomputes every bucket from SQLite and replaces all metric keys in Redis; the epoch is
/// written last, so readers answer from SQLite until the rebuild is complete. Returns the
/// buckets written, or None when another process is rebuilding.
///
/// # Errors
/// SQLite or Redis failures.
pub async fn rebuild(
    db: &mut Connection,
    redis: &mut ConnectionManager,
) -> Result<Option<usize>, SlowPathError> {
    let token = crate::queue::lease::holder_name();
    let locked: Option<String> = redis::cmd("SET")
        .arg(REBUILD_LOCK)
        .arg(&token)
        .arg("NX")
        .arg("PX")
        .arg(120_000)
        .query_async(redis)
        .await
        .map_err(QueueError::from)?;
    if locked.is_none() {
        return Ok(None);
    }
    let r = rebuild_locked(db, redis).await;
    let _: redis::RedisResult<i64> = redis::cmd("EVAL")
        .arg("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end")
        .arg(1)
        .arg(REBUILD_LOCK)
        .arg(&token)
        .query_async(redis)
        .await;
    r.map(Some)
}

async fn rebuild_locked(
    db: &mut Connection,
    redis: &mut ConnectionManager,
) -> Result<usize, SlowPathError> {
    let _: () = redis::cmd("DEL")
        .arg(metrics::EPOCH)
        .query_async(redis)
        .await
        .map_err(QueueError::from)?;
    let old: Vec<i64> = redis::cmd("ZRANGE")
        .arg(metrics::IDX)
        .arg(0)
        .arg(-1)
        .query_async(redis)
        .await
        .map_err(QueueError::from)?;
    for chunk in old.chunks(1000) {
        let mut p = redis::pipe();
        for &b in chunk {
            p.del(&[format!("bp:m:q:{b}"), format!("bp:m:qs:{b}")])
                .ignore();
            p.zrem(metrics::IDX, b).ignore();
        }
        p.query_async::<()>(redis).await.map_err(QueueError::from)?;
    }
    let _: () = redis::cmd("DEL")
        .arg(metrics::VER)
        .arg(metrics::GEN)
        .query_async(redis)
        .await
        .map_err(QueueError::from)?;
    tokio::task::block_in_place(|| {
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        mark_all_dirty(&tx)?;
        tx.commit()
    })?;
    let n = flush_dirty(db, redis).await?;
    let store_id = tokio::task::block_in_place(|| metrics::expected(db))?.store_id;
    let _: () = redis::cmd("SET")
        .arg(metrics::EPOCH)
        .arg(store_id)
        .query_async(redis)
        .await
        .map_err(QueueError::from)?;
    Ok(n)
}

/// Marks every bucket that holds data dirty, at a new generation (a rebuild, or a reset
/// before re-derivation: the buckets that hold data now must be rewritten).
///
/// # Errors
/// SQLite errors.
pub fn mark_all_dirty(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    let generation = bump_generation(tx)?;
    tx.execute(
        "INSERT INTO dirty_buckets (bucket, version)
               SELECT DISTINCT ts / 900000, ?1 FROM api_responses
             UNION SELECT DISTINCT ts / 900000, ?1 FROM token_estimates
             UNION SELECT DISTINCT coalesce(started_at, finished_at) / 900000, ?1 FROM tool_calls
               WHERE coalesce(started_at, finished_at) IS NOT NULL
             ON CONFLICT (bucket) DO UPDATE SET version = excluded.version",
        [generation],
    )?;
    Ok(())
}

/// The next metrics generation, recorded in `tx`.
///
/// # Errors
/// SQLite errors.
pub fn bump_generation(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<i64> {
    tx.query_row(
        "INSERT INTO pipeline_state (key, value) VALUES ('metrics_gen', 1)
         ON CONFLICT (key) DO UPDATE SET value = value + 1 RETURNING value",
        [],
        |r| r.get(0),
    )
}
