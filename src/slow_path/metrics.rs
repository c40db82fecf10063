//! Metrics in Redis: derived data, recomputed from SQLite per quarter-hour bucket.
//!
//! Every IANA zone's offset is a multiple of 15 minutes (+05:30, +05:45, +12:45 included), so
//! quarter-hour buckets in UTC add up exactly to days, weeks and months in any zone.
//!
//! Layout: `bp:m:q:<bucket>` hash with fields `<platform>|<counter>`, `bp:m:qs:<bucket>` set of
//! `<platform>|<session_id>` active in the bucket, and `bp:m:idx` zset of non-empty buckets
//! (score = bucket number = epoch ms / 900 000).
//!
//! A bucket's figures are always written whole (never incremented), from the same SQL that
//! `blueplane metrics rebuild` and the project-filtered `get_metrics` use, so Redis and SQLite
//! cannot drift apart: the slow path marks buckets dirty in the transaction that changes
//! them and [`flush_dirty`] rewrites them while holding the SQLite write lock.

use std::collections::{BTreeMap, BTreeSet};

use redis::aio::ConnectionManager;
use rusqlite::{Connection, params};
use serde::Serialize;

use crate::queue::QueueError;

pub const BUCKET_MS: i64 = 900_000;
pub const IDX: &str = "bp:m:idx";

pub fn bucket_of(ts_ms: i64) -> i64 {
    ts_ms.div_euclid(BUCKET_MS)
}

/// Additive counters of one platform in one bucket.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub input: i64,
    pub output: i64,
    pub cache_creation: i64,
    pub cache_read: i64,
    pub cost_pusd: i64,
    pub responses: i64,
    pub unpriced: i64,
    pub tool_calls: i64,
    pub tool_errors: i64,
}

const FIELDS: &[&str] = &[
    "in", "out", "cc", "cr", "cost", "resp", "unpriced", "tc", "te",
];

impl Counters {
    fn values(&self) -> [i64; 9] {
        [
            self.input,
            self.output,
            self.cache_creation,
            self.cache_read,
            self.cost_pusd,
            self.responses,
            self.unpriced,
            self.tool_calls,
            self.tool_errors,
        ]
    }

    fn set(&mut self, field: &str, v: i64) {
        match field {
            "in" => self.input = v,
            "out" => self.output = v,
            "cc" => self.cache_creation = v,
            "cr" => self.cache_read = v,
            "cost" => self.cost_pusd = v,
            "resp" => self.responses = v,
            "unpriced" => self.unpriced = v,
            "tc" => self.tool_calls = v,
            "te" => self.tool_errors = v,
            _ => {}
        }
    }

    pub fn add(&mut self, o: &Counters) {
        self.input += o.input;
        self.output += o.output;
        self.cache_creation += o.cache_creation;
        self.cache_read += o.cache_read;
        self.cost_pusd += o.cost_pusd;
        self.responses += o.responses;
        self.unpriced += o.unpriced;
        self.tool_calls += o.tool_calls;
        self.tool_errors += o.tool_errors;
    }

    pub fn is_empty(&self) -> bool {
        self.values().iter().all(|v| *v == 0)
    }
}

/// The usage aggregate over `api_responses` rows, in the column order [`Counters::usage_at`]
/// reads (an empty group reads as zeros). `<synthetic>` rows (API errors Claude Code writes
/// itself) count their tokens, as ccusage does, but are not responses.
pub const USAGE_SUMS: &str = "coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0),
    coalesce(sum(cache_creation_tokens), 0), coalesce(sum(cache_read_tokens), 0),
    coalesce(sum(cost_pusd), 0), coalesce(sum(model IS NOT '<synthetic>'), 0),
    coalesce(sum(1 - priced), 0)";

impl Counters {
    /// The usage counters selected with [`USAGE_SUMS`] starting at column `first`.
    ///
    /// # Errors
    /// When a column is missing or not an integer.
    pub fn usage_at(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Counters> {
        Ok(Counters {
            input: r.get(first)?,
            output: r.get(first + 1)?,
            cache_creation: r.get(first + 2)?,
            cache_read: r.get(first + 3)?,
            cost_pusd: r.get(first + 4)?,
            responses: r.get(first + 5)?,
            unpriced: r.get(first + 6)?,
            ..Counters::default()
        })
    }
}

/// Everything known about one quarter hour.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BucketAgg {
    pub bucket: i64,
    pub platforms: BTreeMap<String, Counters>,
    /// (platform, session id) with at least one API response in the bucket.
    pub sessions: BTreeSet<(String, String)>,
}

/// Optional filters applied when computing from SQLite.
#[derive(Debug, Default, Clone)]
pub struct SqlFilter {
    pub platform: Option<String>,
    pub project: Option<String>,
}

/// Computes buckets in `[lo, hi]` from the conversation tables.
///
/// # Errors
/// SQLite errors.
pub fn compute_range(
    conn: &Connection,
    lo: i64,
    hi: i64,
    filter: &SqlFilter,
) -> rusqlite::Result<BTreeMap<i64, BucketAgg>> {
    let mut out: BTreeMap<i64, BucketAgg> = BTreeMap::new();
    let (from, to) = (
        lo.saturating_mul(BUCKET_MS),
        hi.saturating_add(1).saturating_mul(BUCKET_MS),
    );
    let platform = filter.platform.as_deref();
    let project = filter.project.as_deref();
    {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT ts / 900000, platform, {USAGE_SUMS}
             FROM api_responses
             WHERE ts >= ?1 AND ts < ?2 AND (?3 IS NULL OR platform = ?3)
               AND (?4 IS NULL OR instr(coalesce(project_path, ''), ?4) > 0)
             GROUP BY 1, 2"
        ))?;
        let mut rows = stmt.query(params![from, to, platform, project])?;
        while let Some(r) = rows.next()? {
            let b: i64 = r.get(0)?;
            let agg = out.entry(b).or_insert_with(|| BucketAgg {
                bucket: b,
                ..BucketAgg::default()
            });
            let usage = Counters::usage_at(r, 2)?;
            agg.platforms.entry(r.get(1)?).or_default().add(&usage);
        }
    }
    {
        let mut stmt = conn.prepare_cached(
            "SELECT coalesce(started_at, finished_at) / 900000 AS b, platform, count(*),
                    coalesce(sum(is_error), 0)
             FROM tool_calls
             WHERE coalesce(started_at, finished_at) >= ?1 AND coalesce(started_at, finished_at) < ?2
               AND (?3 IS NULL OR platform = ?3)
               AND (?4 IS NULL OR instr(coalesce(project_path, ''), ?4) > 0)
             GROUP BY 1, 2",
        )?;
        let mut rows = stmt.query(params![from, to, platform, project])?;
        while let Some(r) = rows.next()? {
            let b: i64 = r.get(0)?;
            let agg = out.entry(b).or_insert_with(|| BucketAgg {
                bucket: b,
                ..BucketAgg::default()
            });
            let c = agg.platforms.entry(r.get(1)?).or_default();
            c.tool_calls = r.get(2)?;
            c.tool_errors = r.get(3)?;
        }
    }
    {
        let mut stmt = conn.prepare_cached(
            "SELECT DISTINCT ts / 900000, platform, session_id FROM api_responses
             WHERE ts >= ?1 AND ts < ?2 AND (?3 IS NULL OR platform = ?3)
               AND (?4 IS NULL OR instr(coalesce(project_path, ''), ?4) > 0)",
        )?;
        let mut rows = stmt.query(params![from, to, platform, project])?;
        while let Some(r) = rows.next()? {
            let b: i64 = r.get(0)?;
            if let Some(agg) = out.get_mut(&b) {
                agg.sessions.insert((r.get(1)?, r.get(2)?));
            }
        }
    }
    Ok(out)
}

fn q_key(b: i64) -> String {
    format!("bp:m:q:{b}")
}

fn qs_key(b: i64) -> String {
    format!("bp:m:qs:{b}")
}

/// Writes whole buckets to Redis in one `MULTI/EXEC` (an empty bucket is removed).
///
/// # Errors
/// When Redis fails; nothing was changed then.
pub async fn write_buckets(
    conn: &mut ConnectionManager,
    buckets: &[i64],
    aggs: &BTreeMap<i64, BucketAgg>,
) -> Result<(), QueueError> {
    let mut p = redis::pipe();
    p.atomic();
    for &b in buckets {
        p.del(&[q_key(b), qs_key(b)]).ignore();
        match aggs.get(&b) {
            Some(agg) if !agg.platforms.is_empty() => {
                let mut fields: Vec<(String, i64)> = Vec::new();
                for (platform, c) in &agg.platforms {
                    for (name, v) in FIELDS.iter().zip(c.values()) {
                        if v != 0 {
                            fields.push((format!("{platform}|{name}"), v));
                        }
                    }
                }
                if !fields.is_empty() {
                    p.hset_multiple(q_key(b), &fields).ignore();
                }
                let members: Vec<String> = agg
                    .sessions
                    .iter()
                    .map(|(pl, s)| format!("{pl}|{s}"))
                    .collect();
                if !members.is_empty() {
                    p.sadd(qs_key(b), members).ignore();
                }
                p.zadd(IDX, b, b).ignore();
            }
            _ => {
                p.zrem(IDX, b).ignore();
            }
        }
    }
    p.query_async::<()>(conn).await?;
    Ok(())
}

/// Reads buckets in `[lo, hi]` from Redis.
///
/// # Errors
/// When Redis fails.
pub async fn read_buckets(
    conn: &mut ConnectionManager,
    lo: i64,
    hi: i64,
) -> Result<BTreeMap<i64, BucketAgg>, QueueError> {
    let ids: Vec<i64> = redis::cmd("ZRANGEBYSCORE")
        .arg(IDX)
        .arg(lo)
        .arg(hi)
        .query_async(conn)
        .await?;
    let mut out = BTreeMap::new();
    for chunk in ids.chunks(500) {
        let mut p = redis::pipe();
        for &b in chunk {
            p.hgetall(q_key(b)).smembers(qs_key(b));
        }
        let replies: Vec<redis::Value> = p.query_async(conn).await?;
        let mut replies = replies.into_iter();
        for &b in chunk {
            // Two replies per bucket, taken by value (no copies of large replies).
            let (Some(fields), Some(members)) = (replies.next(), replies.next()) else {
                break;
            };
            let fields: Vec<(String, i64)> = redis::from_redis_value(fields).unwrap_or_default();
            let members: Vec<String> = redis::from_redis_value(members).unwrap_or_default();
            let mut agg = BucketAgg {
                bucket: b,
                ..BucketAgg::default()
            };
            for (k, v) in fields {
                if let Some((platform, name)) = k.split_once('|') {
                    agg.platforms
                        .entry(platform.to_string())
                        .or_default()
                        .set(name, v);
                }
            }
            for m in members {
                if let Some((platform, s)) = m.split_once('|') {
                    agg.sessions.insert((platform.to_string(), s.to_string()));
                }
            }
            out.insert(b, agg);
        }
    }
    Ok(out)
}

/// Rewrites the dirty buckets in Redis, holding the SQLite write lock so no other process
/// can change them in between. Returns how many buckets were written.
///
/// # Errors
/// SQLite or Redis failures; the buckets stay dirty and are retried.
pub async fn flush_dirty(
    db: &mut Connection,
    redis: &mut ConnectionManager,
) -> Result<usize, crate::slow_path::SlowPathError> {
    let mut total = 0;
    loop {
        tokio::task::block_in_place(|| db.execute_batch("BEGIN IMMEDIATE"))?;
        let r = flush_some(db, redis).await;
        match r {
            Ok(0) => {
                tokio::task::block_in_place(|| db.execute_batch("ROLLBACK"))?;
                return Ok(total);
            }
            Ok(n) => {
                tokio::task::block_in_place(|| db.execute_batch("COMMIT"))?;
                total += n;
            }
            Err(e) => {
                let _ = tokio::task::block_in_place(|| db.execute_batch("ROLLBACK"));
                return Err(e);
            }
        }
    }
}

async fn flush_some(
    db: &mut Connection,
    redis: &mut ConnectionManager,
) -> Result<usize, crate::slow_path::SlowPathError> {
    let (buckets, aggs) = tokio::task::block_in_place(|| {
        let db = &*db;
        let buckets: Vec<i64> = db
            .prepare_cached("SELECT bucket FROM dirty_buckets ORDER BY bucket LIMIT 2000")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut aggs = BTreeMap::new();
        // Contiguous runs share one grouped query.
        let mut i = 0;
        while i < buckets.len() {
            let mut j = i;
            while j + 1 < buckets.len() && buckets[j + 1] - buckets[i] < 96 {
                j += 1;
            }
            let part = compute_range(db, buckets[i], buckets[j], &SqlFilter::default())?;
            aggs.extend(part);
            i = j + 1;
        }
        Ok::<_, rusqlite::Error>((buckets, aggs))
    })?;
    if buckets.is_empty() {
        return Ok(0);
    }
    write_buckets(redis, &buckets, &aggs).await?;
    let db = &mut *db;
    tokio::task::block_in_place(|| {
        let mut del = db.prepare_cached("DELETE FROM dirty_buckets WHERE bucket = ?1")?;
        for b in &buckets {
            del.execute([b])?;
        }
        Ok::<_, rusqlite::Error>(())
    })?;
    Ok(buckets.len())
}

/// Recomputes every bucket from SQLite and replaces all metric keys in Redis.
///
/// # Errors
/// SQLite or Redis failures.
pub async fn rebuild(
    db: &mut Connection,
    redis: &mut ConnectionManager,
) -> Result<usize, crate::slow_path::SlowPathError> {
    // Drop what Redis has, then mark every bucket with data dirty and flush.
    let old: Vec<i64> = redis::cmd("ZRANGE")
        .arg(IDX)
        .arg(0)
        .arg(-1)
        .query_async(redis)
        .await
        .map_err(QueueError::from)?;
    for chunk in old.chunks(1000) {
        let mut p = redis::pipe();
        for &b in chunk {
            p.del(&[q_key(b), qs_key(b)]).ignore();
            p.zrem(IDX, b).ignore();
        }
        p.query_async::<()>(redis).await.map_err(QueueError::from)?;
    }
    tokio::task::block_in_place(|| {
        db.execute_batch(
            "INSERT OR IGNORE INTO dirty_buckets (bucket)
               SELECT DISTINCT ts / 900000 FROM api_responses
             UNION SELECT DISTINCT coalesce(started_at, finished_at) / 900000 FROM tool_calls
               WHERE coalesce(started_at, finished_at) IS NOT NULL",
        )
    })?;
    flush_dirty(db, redis).await
}
