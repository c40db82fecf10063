//! `get_metrics` and `get_tool_stats` from the rollups (`metrics::rollup`): whole UTC days
//! from the daily rollups, whole quarter hours from the quarter-hour rollups, and the exact
//! rows of the partial quarter hours at the edges of a date-time range from the tables, all
//! in one statement, so distinct sessions are counted once across the three.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use rusqlite::{Connection, Row};

use super::time::{GroupBy, Tz, day_key};
use super::{Filter, QueryError, Result};
use crate::metrics::rollup::{BUCKETS_PER_DAY, COUNTERS, rows_sql, tool_rows_sql};
use crate::metrics::{BUCKET_MS, Counters};

/// The parts of a date-time range and what answers each one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Split {
    /// Partial buckets at the edges, `[from, to)` epoch ms, computed from the tables.
    raw: [(i64, i64); 2],
    /// Whole buckets `[lo, hi)` read from the quarter-hour rollups.
    q: [(i64, i64); 2],
    /// Whole UTC days `[lo, hi)` read from the daily rollups.
    d: (i64, i64),
}

const MIN_BUCKET: i64 = i64::MIN / BUCKET_MS + 1;
const MAX_BUCKET: i64 = i64::MAX / BUCKET_MS - 1;

/// Cuts `[since, until)` into partial edge buckets, whole buckets and (with `days`) whole
/// UTC days.
fn split(f: &Filter, days: bool) -> Split {
    let lo = f.since.map_or(MIN_BUCKET, |s| {
        s.div_euclid(BUCKET_MS) + i64::from(s.rem_euclid(BUCKET_MS) != 0)
    });
    let hi = f.until.map_or(MAX_BUCKET, |u| u.div_euclid(BUCKET_MS));
    let mut out = Split::default();
    if lo >= hi {
        // No whole bucket inside: the range is one partial bucket or two.
        out.raw[0] = (f.since.unwrap_or(i64::MIN), f.until.unwrap_or(i64::MAX));
        return out;
    }
    if let Some(s) = f.since {
        out.raw[0] = (s, lo * BUCKET_MS);
    }
    if let Some(u) = f.until {
        out.raw[1] = (hi * BUCKET_MS, u);
    }
    let dlo = lo.div_euclid(BUCKETS_PER_DAY) + i64::from(lo.rem_euclid(BUCKETS_PER_DAY) != 0);
    let dhi = hi.div_euclid(BUCKETS_PER_DAY);
    if days && dlo < dhi {
        out.q = [(lo, dlo * BUCKETS_PER_DAY), (dhi * BUCKETS_PER_DAY, hi)];
        out.d = (dlo, dhi);
    } else {
        out.q[0] = (lo, hi);
    }
    out
}

impl Split {
    fn params(&self) -> [(&'static str, i64); 10] {
        [
            (":d_lo", self.d.0),
            (":d_hi", self.d.1),
            (":q1_lo", self.q[0].0),
            (":q1_hi", self.q[0].1),
            (":q2_lo", self.q[1].0),
            (":q2_hi", self.q[1].1),
            (":r1_lo", self.raw[0].0),
            (":r1_hi", self.raw[0].1),
            (":r2_lo", self.raw[1].0),
            (":r2_hi", self.raw[1].1),
        ]
    }
}

/// Every usage row of a split range, shaped like `rollup_q` with `b` the bucket.
fn source_sql() -> String {
    format!(
        "SELECT day * 96 AS b, sk, model, project, platform, {COUNTERS}
           FROM rollup_d WHERE day >= :d_lo AND day < :d_hi
         UNION ALL
         SELECT bucket, sk, model, project, platform, {COUNTERS}
           FROM rollup_q WHERE bucket >= :q1_lo AND bucket < :q1_hi
         UNION ALL
         SELECT bucket, sk, model, project, platform, {COUNTERS}
           FROM rollup_q WHERE bucket >= :q2_lo AND bucket < :q2_hi
         UNION ALL SELECT * FROM ({})
         UNION ALL SELECT * FROM ({})",
        rows_sql(":r1_lo", ":r1_hi"),
        rows_sql(":r2_lo", ":r2_hi"),
    )
}

const FILTER: &str = "(:platform IS NULL OR platform = :platform)
    AND (:project IS NULL OR instr(project, :project) > 0)";

/// The counter columns in [`counters_at`] order.
const PLAIN: &str = "input, output, cache_creation, cache_read, cost_pusd, responses, unpriced,
    tool_calls, tool_errors, est_input, est_output, est_cost_pusd";

/// The counters of [`PLAIN`] from column `first` on, times `sign`.
fn counters_at(r: &Row<'_>, first: usize, sign: i64) -> rusqlite::Result<Counters> {
    let v = |i: usize| -> rusqlite::Result<i64> { Ok(r.get::<_, i64>(first + i)? * sign) };
    Ok(Counters {
        input: v(0)?,
        output: v(1)?,
        cache_creation: v(2)?,
        cache_read: v(3)?,
        cost_pusd: v(4)?,
        responses: v(5)?,
        unpriced: v(6)?,
        tool_calls: v(7)?,
        tool_errors: v(8)?,
        est_input: v(9)?,
        est_output: v(10)?,
        est_cost_pusd: v(11)?,
    })
}

/// Per key: the counters and the sessions active there; and the same for everything.
pub type Grouped = (BTreeMap<String, (Counters, i64)>, (Counters, i64));

/// Where a row's figures go: a key's index in [`Fold::names`], or the totals only.
const TOTALS_ONLY: usize = usize::MAX;

/// The figures of rows of (key, sign, session key, active rows, counters...) folded per key
/// index as they come: no `String` or set per row. A row's sign is 1, or -1 for a row that a
/// plan subtracts again (see [`plan_days`]), so a session is active for a key when its rows
/// there add up to more than zero.
struct Fold {
    names: Vec<String>,
    index: HashMap<String, usize>,
    /// The key of the row before (rows come in runs of one key).
    last: usize,
    counters: Vec<Counters>,
    /// (key, session key, signed active rows) of every row with active rows.
    active: Vec<(usize, i64, i64)>,
    /// The session keys active anywhere (filled by [`Fold::finish`]).
    on: Vec<i64>,
    all: Counters,
}

/// Scratch buffers of [`Fold`] kept between calls: (`active`, sessions).
type Scratch = (Vec<(usize, i64, i64)>, Vec<i64>);

/// Buffers grown anew on every call take fresh allocator pages, which the kernel zeroes on
/// first touch (measured: half the time of `get_metrics` by day on a 1M-event store), so the
/// folds reuse them, like the reader reuses connections.
static SCRATCH: Mutex<Vec<Scratch>> = Mutex::new(Vec::new());

/// Entries of a scratch buffer kept for the next call at most (24 MB), and buffers kept.
const SCRATCH_KEEP: usize = 1 << 20;
const SCRATCH_POOL: usize = 4;

fn take_scratch() -> Scratch {
    SCRATCH
        .lock()
        .ok()
        .and_then(|mut pool| pool.pop())
        .unwrap_or_default()
}

fn keep_scratch(mut s: Scratch) {
    if s.0.capacity() <= SCRATCH_KEEP && s.1.capacity() <= SCRATCH_KEEP {
        s.0.clear();
        s.1.clear();
        if let Ok(mut pool) = SCRATCH.lock()
            && pool.len() < SCRATCH_POOL
        {
            pool.push(s);
        }
    }
}

impl Fold {
    fn new() -> Fold {
        let (active, on) = take_scratch();
        Fold {
            names: Vec::new(),
            index: HashMap::new(),
            last: 0,
            counters: Vec::new(),
            active,
            on,
            all: Counters::default(),
        }
    }

    /// The index of key `name`, added on first sight.
    fn key(&mut self, name: &str) -> usize {
        if self.names.get(self.last).is_some_and(|n| n == name) {
            return self.last;
        }
        let i = match self.index.get(name) {
            Some(i) => *i,
            None => self.insert(name),
        };
        self.last = i;
        i
    }

    fn insert(&mut self, name: &str) -> usize {
        let i = self.names.len();
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), i);
        self.counters.push(Counters::default());
        i
    }

    /// Adds one row (columns: key, sign, sk, rows, [`PLAIN`]) under key index `key`.
    fn add(&mut self, r: &Row<'_>, key: usize, no_tools: bool) -> rusqlite::Result<()> {
        let sign: i64 = r.get(1)?;
        let sk: i64 = r.get(2)?;
        let rows: i64 = r.get(3)?;
        let c = counters_at(r, 4, sign)?;
        self.all.add(&c);
        if rows != 0 {
            self.active.push((key, sk, rows * sign));
        }
        if let Some(e) = self.counters.get_mut(key) {
            if no_tools {
                let own = Counters {
                    tool_calls: 0,
                    tool_errors: 0,
                    ..c
                };
                e.add(&own);
            } else {
                e.add(&c);
            }
        }
        Ok(())
    }

    /// Distinct active sessions per key and in all; keys with no figures left out.
    fn finish(mut self) -> Grouped {
        self.active.sort_unstable_by_key(|&(k, sk, _)| (k, sk));
        let mut sessions = vec![0i64; self.names.len()];
        let on = &mut self.on;
        for run in self.active.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
            if run.iter().map(|x| x.2).sum::<i64>() > 0 {
                if let Some(s) = sessions.get_mut(run[0].0) {
                    *s += 1;
                }
                on.push(run[0].1);
            }
        }
        on.sort_unstable();
        on.dedup();
        let all = (self.all, on.len() as i64);
        keep_scratch((self.active, self.on));
        let per = self
            .names
            .into_iter()
            .zip(self.counters)
            .zip(sessions)
            .filter(|((_, c), s)| !c.is_empty() || *s > 0)
            .map(|((k, c), s)| (k, (c, s)))
            .collect();
        (per, all)
    }
}

fn bind_all<'a>(
    split: &Split,
    f: &'a Filter,
    extra: &'a [(&'static str, &'a dyn rusqlite::ToSql)],
) -> Vec<(&'static str, Box<dyn rusqlite::ToSql + 'a>)> {
    let mut out: Vec<(&'static str, Box<dyn rusqlite::ToSql + 'a>)> = split
        .params()
        .into_iter()
        .map(|(k, v)| (k, Box::new(v) as Box<dyn rusqlite::ToSql>))
        .collect();
    out.push((":platform", Box::new(f.platform.as_deref())));
    out.push((":project", Box::new(f.project.as_deref())));
    for (k, v) in extra {
        out.push((k, Box::new(*v)));
    }
    out
}

fn as_params<'a>(
    v: &'a [(&'static str, Box<dyn rusqlite::ToSql + 'a>)],
) -> Vec<(&'a str, &'a dyn rusqlite::ToSql)> {
    v.iter().map(|(k, b)| (*k, b.as_ref())).collect()
}

/// The statement of [`by_dimension`]: per key and session, the counters and whether the
/// session is active there (also checked by the query-plan test).
pub(super) fn dimension_sql(group_by: GroupBy) -> Result<String> {
    let key = match group_by {
        GroupBy::Model => "model",
        GroupBy::Project => "CASE WHEN project = '' THEN '(unknown)' ELSE project END",
        GroupBy::Platform => "platform",
        GroupBy::Session => "(SELECT session_id FROM session_keys k WHERE k.sk = src.sk)",
        _ => return Err(QueryError::Invalid("internal: time grouping".into())),
    };
    // Not grouped here: SQLite's GROUP BY sorts every row through a temporary B-tree, which
    // costs more than folding the rows as they come (measured: 16 ms against 3 ms for the
    // 5,400 daily rows of a 1M-event store).
    Ok(format!(
        "WITH src AS ({src})
         SELECT {key} AS k, 1 AS sign, sk, rows, {PLAIN} FROM src WHERE {FILTER}",
        src = source_sql(),
    ))
}

/// A text key column read in place (no `String` per row).
fn text_at<'r>(r: &'r Row<'_>, i: usize) -> rusqlite::Result<&'r str> {
    r.get_ref(i)?.as_str().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Metrics grouped by model, project, platform or session. By model, tool calls (which have
/// no model) count in the totals only.
///
/// # Errors
/// SQLite errors.
pub fn by_dimension(conn: &Connection, f: &Filter, group_by: GroupBy) -> Result<Grouped> {
    let sql = dimension_sql(group_by)?;
    let split = split(f, true);
    let bound = bind_all(&split, f, &[]);
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(as_params(&bound).as_slice())?;
    let no_tools = group_by == GroupBy::Model;
    let mut fold = Fold::new();
    while let Some(r) = rows.next()? {
        let name = text_at(r, 0)?;
        let key = if no_tools && name.is_empty() {
            // A row of tool calls only: in the totals, under no model.
            TOTALS_ONLY
        } else {
            fold.key(name)
        };
        fold.add(r, key, no_tools)?;
    }
    Ok(fold.finish())
}

/// The statement of [`by_period`]: per local day and session, from quarter-hour ranges
/// (`:qranges`), hour ranges (`:hranges`) and UTC-day ranges (`:dranges`), each `[lo, hi,
/// offset, sign]`, and the partial edges.
pub(super) fn period_sql() -> String {
    let ranges = |name: &str, param: &str| {
        format!(
            "{name} AS MATERIALIZED (SELECT value ->> 0 AS lo, value ->> 1 AS hi,
                                            value ->> 2 AS off, value ->> 3 AS sign
                                     FROM json_each({param}))"
        )
    };
    format!(
        "WITH {qr}, {hr}, {dr},
              src AS (
                SELECT (r.bucket + qr.off) / 96 AS day, qr.sign AS sign, r.sk, r.platform,
                       r.project, {r_counters}
                FROM qr CROSS JOIN rollup_q r ON r.bucket >= qr.lo AND r.bucket < qr.hi
                UNION ALL
                SELECT (r.hour * 4 + hr.off) / 96, hr.sign, r.sk, r.platform, r.project,
                       {r_counters}
                FROM hr CROSS JOIN rollup_h r ON r.hour >= hr.lo AND r.hour < hr.hi
                UNION ALL
                SELECT (r.day * 96 + dr.off) / 96, dr.sign, r.sk, r.platform, r.project,
                       {r_counters}
                FROM dr CROSS JOIN rollup_d r ON r.day >= dr.lo AND r.day < dr.hi
                UNION ALL
                SELECT (b + :r1_off) / 96, 1, sk, platform, project, {COUNTERS} FROM ({r1})
                UNION ALL
                SELECT (b + :r2_off) / 96, 1, sk, platform, project, {COUNTERS} FROM ({r2}))
         SELECT day, sign, sk, rows, {PLAIN} FROM src WHERE {FILTER}",
        qr = ranges("qr", ":qranges"),
        hr = ranges("hr", ":hranges"),
        dr = ranges("dr", ":dranges"),
        r_counters = COUNTERS
            .split(',')
            .map(|c| format!("r.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", "),
        r1 = rows_sql(":r1_lo", ":r1_hi"),
        r2 = rows_sql(":r2_lo", ":r2_hi"),
    )
}

/// What [`by_period`] reads: ranges `[lo, hi, offset, sign]` of `rollup_q` buckets, of
/// `rollup_h` hours and of `rollup_d` days; a row of a range counts `sign` times (1, or -1
/// to take it back out of a day it was read with) in local day `(bucket + offset) / 96`.
#[derive(Debug, Default)]
struct Plan {
    q: Vec<[i64; 4]>,
    h: Vec<[i64; 4]>,
    d: Vec<[i64; 4]>,
}

/// The widest UTC offset, in quarter hours either way, for which [`plan_days`] reads UTC days
/// and moves the hours that belong to the neighbouring local day (2 × 3 hours of hour rows a
/// day against 24): beyond it hours are fewer rows.
const DAY_SHIFT_MAX: i64 = 12;

/// Plans the whole buckets `[a, z)` at UTC offset `off` (quarter hours): the UTC days inside
/// from `rollup_d` when the offset is small, each counted in the local day that holds most of
/// it, with the `|off|` buckets at one end that belong to the neighbouring local day taken
/// out of it (sign -1) and put in theirs; everything else from [`plan_segment`].
fn plan_days(a: i64, z: i64, off: i64, p: &mut Plan) {
    let da = a.div_euclid(BUCKETS_PER_DAY) + i64::from(a.rem_euclid(BUCKETS_PER_DAY) != 0);
    let dz = z.div_euclid(BUCKETS_PER_DAY);
    if da >= dz || off.abs() > DAY_SHIFT_MAX {
        plan_segment(a, z, off, 1, p);
        return;
    }
    if a < da * BUCKETS_PER_DAY {
        plan_segment(a, da * BUCKETS_PER_DAY, off, 1, p);
    }
    if dz * BUCKETS_PER_DAY < z {
        plan_segment(dz * BUCKETS_PER_DAY, z, off, 1, p);
    }
    // UTC day d counts in local day d: (96 d + 0) / 96.
    p.d.push([da, dz, 0, 1]);
    if off == 0 {
        return;
    }
    for d in da..dz {
        // East of UTC the day's last `off` buckets are the next local day's; west of it the
        // first `-off` buckets are the previous one's.
        let start = d * BUCKETS_PER_DAY;
        let (x, y) = if off > 0 {
            (start + BUCKETS_PER_DAY - off, start + BUCKETS_PER_DAY)
        } else {
            (start, start - off)
        };
        plan_segment(x, y, 0, -1, p);
        plan_segment(x, y, off, 1, p);
    }
}

/// Bucket ranges to read from `rollup_q` and hour ranges to read from `rollup_h` for the
/// whole buckets `[a, z)`, all at UTC offset `off` (quarter hours) and with `sign`: hours
/// wherever no local midnight falls inside one, quarter hours elsewhere.
fn plan_segment(a: i64, z: i64, off: i64, sign: i64, p: &mut Plan) {
    const PER_HOUR: i64 = crate::metrics::rollup::BUCKETS_PER_HOUR;
    let (q, h) = (&mut p.q, &mut p.h);
    let h0 = a.div_euclid(PER_HOUR) + i64::from(a.rem_euclid(PER_HOUR) != 0);
    let h1 = z.div_euclid(PER_HOUR);
    if h0 >= h1 {
        q.push([a, z, off, sign]);
        return;
    }
    if a < h0 * PER_HOUR {
        q.push([a, h0 * PER_HOUR, off, sign]);
    }
    if h1 * PER_HOUR < z {
        q.push([h1 * PER_HOUR, z, off, sign]);
    }
    if off.rem_euclid(PER_HOUR) == 0 {
        h.push([h0, h1, off, sign]);
        return;
    }
    // The hour holding a local midnight: its bucket m has (m + off) % 96 == 0 and m is not the
    // hour's first bucket, i.e. (4 h + off) % 96 is 93, 94 or 95. It comes back every 24 hours.
    let midnight_hour = |x: i64| (x * PER_HOUR + off).rem_euclid(BUCKETS_PER_DAY) >= 93;
    let Some(first) = (h0..h0 + 24).find(|x| midnight_hour(*x)) else {
        h.push([h0, h1, off, sign]);
        return;
    };
    let mut at = h0;
    let mut m = first;
    while m < h1 {
        if at < m {
            h.push([at, m, off, sign]);
        }
        q.push([m * PER_HOUR, (m + 1) * PER_HOUR, off, sign]);
        at = m + 1;
        m += 24;
    }
    if at < h1 {
        h.push([at, h1, off, sign]);
    }
}

/// Metrics grouped by day, week or month in `tz`: the rollups give per local day and session
/// figures (a bucket's local day is `(bucket + offset) / 96`, with the zone's offset in
/// quarter hours per run of equal offsets), folded here into periods.
///
/// # Errors
/// SQLite errors.
pub fn by_period(conn: &Connection, f: &Filter, group_by: GroupBy, tz: &Tz) -> Result<Grouped> {
    let split = split(f, false);
    let Some((lo, hi)) = bucket_extent(conn, &split)? else {
        return Ok(Default::default());
    };
    let (qa, qz) = (split.q[0].0.max(lo), split.q[0].1.min(hi.saturating_add(1)));
    let mut plan = Plan::default();
    for (a, z, off) in tz.offset_segments(lo, hi) {
        let (a, z) = (a.max(qa), z.min(qz));
        if a < z {
            plan_days(a, z, off, &mut plan);
        }
    }
    let json = |v: &Vec<[i64; 4]>| {
        serde_json::to_string(v).map_err(|e| QueryError::Invalid(format!("internal: {e}")))
    };
    let (qranges, hranges, dranges) = (json(&plan.q)?, json(&plan.h)?, json(&plan.d)?);
    let edge_off = |(a, z): (i64, i64)| {
        if a < z {
            tz.offset_buckets(a.div_euclid(BUCKET_MS))
        } else {
            0
        }
    };
    let (r1_off, r2_off) = (edge_off(split.raw[0]), edge_off(split.raw[1]));
    let params: [(&str, &dyn rusqlite::ToSql); 11] = [
        (":qranges", &qranges),
        (":hranges", &hranges),
        (":dranges", &dranges),
        (":r1_lo", &split.raw[0].0),
        (":r1_hi", &split.raw[0].1),
        (":r2_lo", &split.raw[1].0),
        (":r2_hi", &split.raw[1].1),
        (":r1_off", &r1_off),
        (":r2_off", &r2_off),
        (":platform", &f.platform),
        (":project", &f.project),
    ];
    let mut stmt = conn.prepare_cached(&period_sql())?;
    let mut rows = stmt.query(params.as_slice())?;
    let mut fold = Fold::new();
    // Rows come day by day within each range: the last day's key index, then every day's.
    let mut last: Option<(i64, usize)> = None;
    let mut days: HashMap<i64, usize> = HashMap::new();
    while let Some(r) = rows.next()? {
        let day: i64 = r.get(0)?;
        let key = match last {
            Some((d, k)) if d == day => k,
            _ => {
                let k = match days.get(&day) {
                    Some(k) => *k,
                    None => {
                        let k = fold.key(&day_key(day, group_by));
                        days.insert(day, k);
                        k
                    }
                };
                last = Some((day, k));
                k
            }
        };
        fold.add(r, key, false)?;
    }
    Ok(fold.finish())
}

/// The first and last bucket holding rows of the split range, if any.
fn bucket_extent(conn: &Connection, s: &Split) -> Result<Option<(i64, i64)>> {
    let (lo, hi): (Option<i64>, Option<i64>) = conn
        .prepare_cached(
            "SELECT min(b), max(b) FROM (
               SELECT min(bucket) AS b FROM rollup_q WHERE bucket >= ?1 AND bucket < ?2
               UNION ALL SELECT max(bucket) FROM rollup_q WHERE bucket >= ?1 AND bucket < ?2)",
        )?
        .query_row([s.q[0].0, s.q[0].1], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let mut ext = lo.zip(hi);
    // The partial edges lie in the buckets just outside the whole ones.
    for (a, z) in s.raw {
        if a < z {
            let (ba, bz) = (a.div_euclid(BUCKET_MS), (z - 1).div_euclid(BUCKET_MS));
            ext = Some(match ext {
                Some((l, h)) => (l.min(ba), h.max(bz)),
                None => (ba, bz),
            });
        }
    }
    Ok(ext)
}

/// One tool's figures.
pub struct ToolRow {
    pub name: String,
    pub calls: i64,
    pub errors: i64,
    pub total_ms: Option<i64>,
    pub max_ms: Option<i64>,
}

impl ToolRow {
    /// A row of (name, calls, errors, total ms, longest ms).
    pub fn from_row(r: &Row<'_>) -> rusqlite::Result<ToolRow> {
        Ok(ToolRow {
            name: r.get(0)?,
            calls: r.get(1)?,
            errors: r.get(2)?,
            total_ms: r.get(3)?,
            max_ms: r.get(4)?,
        })
    }
}

/// The statement of [`tool_stats`].
pub(super) fn tool_sql() -> String {
    const COLS: &str = "name, platform, project, calls, errors, took_n, took_sum, took_max";
    format!(
        "WITH src AS (
           SELECT {COLS} FROM rollup_tools_d WHERE day >= :d_lo AND day < :d_hi
           UNION ALL SELECT {COLS} FROM rollup_tools_q WHERE bucket >= :q1_lo AND bucket < :q1_hi
           UNION ALL SELECT {COLS} FROM rollup_tools_q WHERE bucket >= :q2_lo AND bucket < :q2_hi
           UNION ALL SELECT {COLS} FROM ({})
           UNION ALL SELECT {COLS} FROM ({}))
         SELECT name, sum(calls), sum(errors), CASE WHEN sum(took_n) > 0 THEN sum(took_sum) END,
                max(took_max)
         FROM src WHERE {FILTER}
         GROUP BY name ORDER BY 2 DESC, name",
        tool_rows_sql(":r1_lo", ":r1_hi"),
        tool_rows_sql(":r2_lo", ":r2_hi"),
    )
}

/// Calls, errors and durations per tool over a filter, most used first.
///
/// # Errors
/// SQLite errors.
pub fn tool_stats(conn: &Connection, f: &Filter) -> Result<Vec<ToolRow>> {
    let split = split(f, true);
    let bound = bind_all(&split, f, &[]);
    let mut stmt = conn.prepare_cached(&tool_sql())?;
    let rows = stmt
        .query_map(as_params(&bound).as_slice(), ToolRow::from_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(since: Option<i64>, until: Option<i64>) -> Filter {
        Filter {
            since,
            until,
            ..Filter::default()
        }
    }

    /// Every bucket of a segment is read once, from an hour only when no local midnight is
    /// inside that hour.
    #[test]
    fn segments_read_hours_except_where_a_midnight_cuts_one() {
        for off in [0, 8, 22, 23, -10, -14, 3] {
            for (a, z) in [(0, 96 * 9), (5, 96 * 3 + 7), (1, 3), (94, 98), (400, 404)] {
                let mut p = Plan::default();
                plan_segment(a, z, off, 1, &mut p);
                assert!(p.d.is_empty());
                let mut seen = vec![0; (z - a) as usize];
                for [x, y, o, sign] in &p.q {
                    assert_eq!((*o, *sign), (off, 1));
                    (*x..*y).for_each(|b| seen[(b - a) as usize] += 1);
                }
                for [x, y, o, sign] in &p.h {
                    assert_eq!((*o, *sign), (off, 1));
                    for hour in *x..*y {
                        // No local midnight strictly inside an hour read whole.
                        for b in hour * 4 + 1..hour * 4 + 4 {
                            assert_ne!((b + off).rem_euclid(96), 0, "off {off} hour {hour}");
                        }
                        (hour * 4..hour * 4 + 4).for_each(|b| seen[(b - a) as usize] += 1);
                    }
                }
                assert!(seen.iter().all(|n| *n == 1), "off {off} [{a}, {z}): {p:?}");
            }
        }
    }

    /// With UTC days and the buckets moved between local days, every bucket of a segment
    /// still counts exactly once, in its own local day `(bucket + off) / 96`, for every
    /// offset (whole, half and quarter hours, east and west), and days are read where the
    /// offset is small.
    #[test]
    fn day_plans_count_every_bucket_once_in_its_local_day() {
        for off in -DAY_SHIFT_MAX - 2..=DAY_SHIFT_MAX + 2 {
            for (a, z) in [
                (96 * 10, 96 * 19),
                (96 * 10 + 5, 96 * 13 + 7),
                (96 * 10 + 90, 96 * 12 + 3),
                (96 * 10 + 1, 96 * 10 + 9),
            ] {
                let mut p = Plan::default();
                plan_days(a, z, off, &mut p);
                let whole_day = a.div_euclid(96) + i64::from(a % 96 != 0) < z.div_euclid(96);
                assert_eq!(
                    !p.d.is_empty(),
                    whole_day && off.abs() <= DAY_SHIFT_MAX,
                    "off {off} [{a}, {z}): {p:?}"
                );
                // Net count per (bucket, local day).
                let mut net: BTreeMap<(i64, i64), i64> = BTreeMap::new();
                let mut count = |b: i64, o: i64, sign: i64| {
                    *net.entry((b, (b + o).div_euclid(96))).or_default() += sign;
                };
                for [x, y, o, sign] in &p.q {
                    (*x..*y).for_each(|b| count(b, *o, *sign));
                }
                for [x, y, o, sign] in &p.h {
                    for b in *x * 4..*y * 4 {
                        // An hour row counts in the local day of the hour's first bucket.
                        *net.entry((b, (b / 4 * 4 + o).div_euclid(96))).or_default() += sign;
                    }
                }
                for [x, y, o, sign] in &p.d {
                    for b in *x * 96..*y * 96 {
                        *net.entry((b, (b / 96 * 96 + o).div_euclid(96)))
                            .or_default() += sign;
                    }
                }
                net.retain(|_, n| *n != 0);
                let want: BTreeMap<(i64, i64), i64> =
                    (a..z).map(|b| ((b, (b + off).div_euclid(96)), 1)).collect();
                assert_eq!(net, want, "off {off} [{a}, {z}): {p:?}");
            }
        }
    }

    #[test]
    fn splits_cover_the_range_exactly_once() {
        const B: i64 = BUCKET_MS;
        const D: i64 = B * 96;
        // Unbounded: whole buckets only.
        let s = split(&f(None, None), true);
        assert_eq!(s.raw, [(0, 0), (0, 0)]);
        assert!(s.d.0 < s.d.1);
        // Inside one bucket: raw only.
        let s = split(&f(Some(10 * B + 5), Some(10 * B + 99)), true);
        assert_eq!(s.raw[0], (10 * B + 5, 10 * B + 99));
        assert_eq!(s.q, [(0, 0), (0, 0)]);
        // Two days and a bit, with ragged edges: raw, buckets, days, buckets, raw.
        let (a, z) = (3 * D - 2 * B - 7, 6 * D + 3 * B + 11);
        let s = split(&f(Some(a), Some(z)), true);
        assert_eq!(s.raw, [(a, 3 * D - 2 * B), (6 * D + 3 * B, z)]);
        assert_eq!(s.q, [(3 * 96 - 2, 3 * 96), (6 * 96, 6 * 96 + 3)]);
        assert_eq!(s.d, (3, 6));
        // Every ms of [a, z) is in exactly one part.
        for t in [
            a,
            a + 1,
            3 * D - 2 * B,
            3 * D - 1,
            3 * D,
            6 * D - 1,
            6 * D,
            z - 1,
        ] {
            let b = t.div_euclid(B);
            let n = s.raw.iter().filter(|(x, y)| *x <= t && t < *y).count()
                + s.q.iter().filter(|(x, y)| *x <= b && b < *y).count()
                + usize::from(s.d.0 <= b.div_euclid(96) && b.div_euclid(96) < s.d.1);
            assert_eq!(n, 1, "t = {t}");
        }
        // Without days (time grouping) the whole buckets are one run.
        let s = split(&f(Some(a), Some(z)), false);
        assert_eq!(s.q[0], (3 * 96 - 2, 6 * 96 + 3));
        assert_eq!(s.d, (0, 0));
    }
}
