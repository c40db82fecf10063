//! The metrics contract between the slow path (writer) and the query layer (readers): the
//! Redis key layout, the counters, and the SQL that computes them from the conversation
//! tables. Redis metrics are derived data, recomputed per quarter-hour bucket from SQLite.
//!
//! Every IANA zone's offset is a multiple of 15 minutes (+05:30, +05:45, +12:45 included), so
//! quarter-hour buckets in UTC add up exactly to days, weeks and months in any zone.
//!
//! Layout: `bp:m:q:<bucket>` hash with fields `<platform>|<counter>`, `bp:m:qs:<bucket>` set of
//! `<platform>|<session_id>` active in the bucket, `bp:m:idx` zset of non-empty buckets
//! (score = bucket number = epoch ms / 900 000), `bp:m:ver` hash bucket -> generation of its
//! figures, `bp:m:gen` the newest generation written, and `bp:m:epoch` the id of the SQLite
//! store these metrics were rebuilt from.
//!
//! Completeness: a bucket's figures are always written whole, by a script that refuses to
//! replace newer figures with older ones (generations come from `pipeline_state.metrics_gen`,
//! bumped by every slow-path round that changes a bucket, which marks it dirty with that
//! generation). Readers trust Redis only when its epoch is this store's `store_id` and its
//! generation is at least the newest one SQLite recorded as flushed (a flushed, replaced or
//! rolled-back Redis fails this); buckets still dirty, and the partial buckets at the edges
//! of a date-time range, are computed from SQLite. Otherwise they answer from SQLite and the
//! slow path rebuilds Redis.

pub mod rollup;

use std::collections::{BTreeMap, BTreeSet};

use redis::aio::ConnectionManager;
use rusqlite::{Connection, params};
use serde::Serialize;

use crate::queue::QueueError;

pub const BUCKET_MS: i64 = 900_000;
pub const IDX: &str = "bp:m:idx";
pub const VER: &str = "bp:m:ver";
pub const GEN: &str = "bp:m:gen";
pub const EPOCH: &str = "bp:m:epoch";

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
    /// Estimated tokens and their estimated cost (`token_estimates`: Cursor turns without a
    /// measured count). Never part of the measured figures above.
    pub est_input: i64,
    pub est_output: i64,
    pub est_cost_pusd: i64,
}

const FIELDS: &[&str] = &[
    "in", "out", "cc", "cr", "cost", "resp", "unpriced", "tc", "te", "ein", "eout", "ecost",
];

impl Counters {
    fn values(&self) -> [i64; 12] {
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
            self.est_input,
            self.est_output,
            self.est_cost_pusd,
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
            "ein" => self.est_input = v,
            "eout" => self.est_output = v,
            "ecost" => self.est_cost_pusd = v,
            _ => {}
        }
    }

    /// Adds `o` (saturating: a corrupt figure can never wrap a total around).
    pub fn add(&mut self, o: &Counters) {
        self.input = self.input.saturating_add(o.input);
        self.output = self.output.saturating_add(o.output);
        self.cache_creation = self.cache_creation.saturating_add(o.cache_creation);
        self.cache_read = self.cache_read.saturating_add(o.cache_read);
        self.cost_pusd = self.cost_pusd.saturating_add(o.cost_pusd);
        self.responses = self.responses.saturating_add(o.responses);
        self.unpriced = self.unpriced.saturating_add(o.unpriced);
        self.tool_calls = self.tool_calls.saturating_add(o.tool_calls);
        self.tool_errors = self.tool_errors.saturating_add(o.tool_errors);
        self.est_input = self.est_input.saturating_add(o.est_input);
        self.est_output = self.est_output.saturating_add(o.est_output);
        self.est_cost_pusd = self.est_cost_pusd.saturating_add(o.est_cost_pusd);
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

/// The estimate aggregate over `token_estimates` rows, in the column order
/// [`Counters::estimates_at`] reads.
pub const ESTIMATE_SUMS: &str = "coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0),
    coalesce(sum(cost_pusd), 0)";

impl Counters {
    /// The estimate counters selected with [`ESTIMATE_SUMS`] starting at column `first`.
    ///
    /// # Errors
    /// When a column is missing or not an integer.
    pub fn estimates_at(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Counters> {
        Ok(Counters {
            est_input: r.get(first)?,
            est_output: r.get(first + 1)?,
            est_cost_pusd: r.get(first + 2)?,
            ..Counters::default()
        })
    }
}

/// Everything known about one quarter hour.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BucketAgg {
    pub bucket: i64,
    pub platforms: BTreeMap<String, Counters>,
    /// (platform, session id) with at least one API response (or estimate) in the bucket.
    pub sessions: BTreeSet<(String, String)>,
}

/// Optional filters applied when computing from SQLite.
#[derive(Debug, Default, Clone)]
pub struct SqlFilter {
    pub platform: Option<String>,
    pub project: Option<String>,
}

/// Computes the buckets of the rows with `from <= ts < to` (epoch ms) from the conversation
/// tables: whole buckets for bucket-aligned bounds, exact partial ones at other edges.
///
/// # Errors
/// SQLite errors.
pub fn compute_range(
    conn: &Connection,
    from: i64,
    to: i64,
    filter: &SqlFilter,
) -> rusqlite::Result<BTreeMap<i64, BucketAgg>> {
    let mut out: BTreeMap<i64, BucketAgg> = BTreeMap::new();
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
                    coalesce(sum(failed), 0)
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
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT ts / 900000, platform, {ESTIMATE_SUMS}
             FROM token_estimates
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
            let est = Counters::estimates_at(r, 2)?;
            agg.platforms.entry(r.get(1)?).or_default().add(&est);
        }
    }
    {
        let mut stmt = conn.prepare_cached(
            "SELECT ts / 900000, platform, session_id FROM api_responses
             WHERE ts >= ?1 AND ts < ?2 AND (?3 IS NULL OR platform = ?3)
               AND (?4 IS NULL OR instr(coalesce(project_path, ''), ?4) > 0)
             UNION
             SELECT ts / 900000, platform, session_id FROM token_estimates
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

/// The first bucket of `[lo, hi]` (bucket numbers) as a range of epoch ms.
pub fn bucket_span(lo: i64, hi: i64) -> (i64, i64) {
    (
        lo.saturating_mul(BUCKET_MS),
        hi.saturating_add(1).saturating_mul(BUCKET_MS),
    )
}

/// KEYS: idx, ver, gen. ARGV: generation, #buckets, then per bucket: number, #fields,
/// field/value pairs, #members, members. A bucket whose stored generation is newer is left
/// alone (a slower writer with an older snapshot cannot undo a newer one).
static WRITE_SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
local g = tonumber(ARGV[1])
local i = 3
for _ = 1, tonumber(ARGV[2]) do
  local b = ARGV[i]
  local nf = tonumber(ARGV[i + 1])
  i = i + 2
  local apply = tonumber(redis.call('HGET', KEYS[2], b) or '-1') <= g
  local q, qs = 'bp:m:q:' .. b, 'bp:m:qs:' .. b
  if apply then
    redis.call('DEL', q, qs)
    for j = i, i + 2 * nf - 1, 2 do redis.call('HSET', q, ARGV[j], ARGV[j + 1]) end
  end
  i = i + 2 * nf
  local nm = tonumber(ARGV[i])
  i = i + 1
  if apply then
    for j = i, i + nm - 1 do redis.call('SADD', qs, ARGV[j]) end
    if nf > 0 or nm > 0 then redis.call('ZADD', KEYS[1], b, b) else redis.call('ZREM', KEYS[1], b) end
    redis.call('HSET', KEYS[2], b, g)
  end
  i = i + nm
end
if g > tonumber(redis.call('GET', KEYS[3]) or '0') then redis.call('SET', KEYS[3], g) end
return 1
",
    )
});

/// Writes whole buckets to Redis at generation `generation` in one script (an empty bucket is
/// removed).
///
/// # Errors
/// When Redis fails; nothing was changed then.
pub async fn write_buckets(
    conn: &mut ConnectionManager,
    buckets: &[i64],
    aggs: &BTreeMap<i64, BucketAgg>,
    generation: i64,
) -> Result<(), QueueError> {
    let mut inv = WRITE_SCRIPT.prepare_invoke();
    inv.key(IDX)
        .key(VER)
        .key(GEN)
        .arg(generation)
        .arg(buckets.len());
    for &b in buckets {
        inv.arg(b);
        let mut fields: Vec<(String, i64)> = Vec::new();
        let mut members: Vec<String> = Vec::new();
        if let Some(agg) = aggs.get(&b) {
            for (platform, c) in &agg.platforms {
                for (name, v) in FIELDS.iter().zip(c.values()) {
                    if v != 0 {
                        fields.push((format!("{platform}|{name}"), v));
                    }
                }
            }
            members = agg
                .sessions
                .iter()
                .map(|(pl, s)| format!("{pl}|{s}"))
                .collect();
        }
        inv.arg(fields.len());
        for (k, v) in &fields {
            inv.arg(k).arg(*v);
        }
        inv.arg(members.len());
        for m in &members {
            inv.arg(m);
        }
    }
    let _: i64 = inv.invoke_async(conn).await?;
    Ok(())
}

/// What SQLite says the Redis metrics must show: this store's id and the newest generation
/// whose buckets were written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    pub store_id: i64,
    pub flushed: i64,
}

/// Reads [`Expected`] (works on a read-only connection).
///
/// # Errors
/// SQLite errors.
pub fn expected(conn: &Connection) -> rusqlite::Result<Expected> {
    conn.query_row(
        "SELECT coalesce((SELECT value FROM pipeline_state WHERE key = 'store_id'), 0),
                coalesce((SELECT value FROM pipeline_state WHERE key = 'metrics_flushed'), 0)",
        [],
        |r| {
            Ok(Expected {
                store_id: r.get(0)?,
                flushed: r.get(1)?,
            })
        },
    )
}

/// Redis's epoch and generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stamp {
    pub epoch: Option<i64>,
    pub generation: i64,
}

impl Stamp {
    /// Whether metrics with this stamp are complete for a store expecting `e`.
    pub fn trusted(&self, e: &Expected) -> bool {
        self.epoch == Some(e.store_id) && self.generation >= e.flushed
    }
}

/// Reads Redis's [`Stamp`].
///
/// # Errors
/// When Redis fails.
pub async fn stamp(conn: &mut ConnectionManager) -> Result<Stamp, QueueError> {
    let (epoch, generation): (Option<i64>, Option<i64>) =
        redis::pipe().get(EPOCH).get(GEN).query_async(conn).await?;
    Ok(Stamp {
        epoch,
        generation: generation.unwrap_or(0),
    })
}

/// Buckets still marked dirty in `[lo, hi]` (their Redis figures may be stale).
///
/// # Errors
/// SQLite errors.
pub fn dirty_in(conn: &Connection, lo: i64, hi: i64) -> rusqlite::Result<Vec<i64>> {
    conn.prepare_cached("SELECT bucket FROM dirty_buckets WHERE bucket BETWEEN ?1 AND ?2")?
        .query_map(params![lo, hi], |r| r.get(0))?
        .collect()
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
