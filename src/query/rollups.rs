//! `get_metrics` and `get_tool_stats` from the rollups (`metrics::rollup`): whole UTC days
//! from the daily rollups, whole quarter hours from the quarter-hour rollups, and the exact
//! rows of the partial quarter hours at the edges of a date-time range from the tables, all
//! in one statement, so distinct sessions are counted once across the three.

use std::collections::{BTreeMap, HashSet};

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

fn counters_at(r: &Row<'_>, first: usize) -> rusqlite::Result<Counters> {
    Ok(Counters {
        tool_calls: r.get(first + 7)?,
        tool_errors: r.get(first + 8)?,
        est_input: r.get(first + 9)?,
        est_output: r.get(first + 10)?,
        est_cost_pusd: r.get(first + 11)?,
        ..Counters::usage_at(r, first)?
    })
}

/// Per key: the counters and the sessions active there; and the same for everything.
pub type Grouped = (BTreeMap<String, (Counters, i64)>, (Counters, i64));

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
         SELECT {key} AS k, sk, rows, {PLAIN} FROM src WHERE {FILTER}",
        src = source_sql(),
    ))
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
    let rows = stmt.query(as_params(&bound).as_slice())?;
    fold(
        rows,
        |r| {
            let k: String = r.get(0)?;
            Ok(match group_by {
                // A row of tool calls only: in the totals, under no model.
                GroupBy::Model if k.is_empty() => None,
                _ => Some(k),
            })
        },
        group_by == GroupBy::Model,
    )
}

/// Folds rows of (key, session key, active rows, counters...) into per-key and overall
/// figures with distinct sessions; `key` None counts in the totals only. With `no_tools`, the
/// per-key figures leave tool calls out.
fn fold(
    mut rows: rusqlite::Rows<'_>,
    mut key: impl FnMut(&Row<'_>) -> rusqlite::Result<Option<String>>,
    no_tools: bool,
) -> Result<Grouped> {
    let mut per: BTreeMap<String, (Counters, HashSet<i64>)> = BTreeMap::new();
    let mut all: (Counters, HashSet<i64>) = Default::default();
    while let Some(r) = rows.next()? {
        let sk: i64 = r.get(1)?;
        let active = r.get::<_, i64>(2)? > 0;
        let c = counters_at(r, 3)?;
        all.0.add(&c);
        if active {
            all.1.insert(sk);
        }
        if let Some(k) = key(r)? {
            let e = per.entry(k).or_default();
            let mut own = c;
            if no_tools {
                (own.tool_calls, own.tool_errors) = (0, 0);
            }
            e.0.add(&own);
            if active {
                e.1.insert(sk);
            }
        }
    }
    let per = per
        .into_iter()
        .filter(|(_, (c, s))| !c.is_empty() || !s.is_empty())
        .map(|(k, (c, s))| (k, (c, s.len() as i64)))
        .collect();
    Ok((per, (all.0, all.1.len() as i64)))
}

/// The statement of [`by_period`]: per local day and session, from quarter-hour ranges
/// (`:qranges`), hour ranges (`:hranges`), each `[lo, hi, offset]`, and the partial edges.
pub(super) fn period_sql() -> String {
    format!(
        "WITH qr AS MATERIALIZED (SELECT value ->> 0 AS lo, value ->> 1 AS hi, value ->> 2 AS off
                                 FROM json_each(:qranges)),
              hr AS MATERIALIZED (SELECT value ->> 0 AS lo, value ->> 1 AS hi, value ->> 2 AS off
                                 FROM json_each(:hranges)),
              src AS (
                SELECT (r.bucket + qr.off) / 96 AS day, r.sk, r.platform, r.project, {r_counters}
                FROM qr CROSS JOIN rollup_q r ON r.bucket >= qr.lo AND r.bucket < qr.hi
                UNION ALL
                SELECT (r.hour * 4 + hr.off) / 96, r.sk, r.platform, r.project, {r_counters}
                FROM hr CROSS JOIN rollup_h r ON r.hour >= hr.lo AND r.hour < hr.hi
                UNION ALL
                SELECT (b + :r1_off) / 96, sk, platform, project, {COUNTERS} FROM ({r1})
                UNION ALL
                SELECT (b + :r2_off) / 96, sk, platform, project, {COUNTERS} FROM ({r2}))
         SELECT day, sk, rows, {PLAIN} FROM src WHERE {FILTER}",
        r_counters = COUNTERS
            .split(',')
            .map(|c| format!("r.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", "),
        r1 = rows_sql(":r1_lo", ":r1_hi"),
        r2 = rows_sql(":r2_lo", ":r2_hi"),
    )
}

/// Bucket ranges `(lo, hi, offset)` to read from `rollup_q` and hour ranges to read from
/// `rollup_h` for the whole buckets `[a, z)`, all at UTC offset `off` (quarter hours): hours
/// wherever no local midnight falls inside one, quarter hours elsewhere.
fn plan_segment(a: i64, z: i64, off: i64, q: &mut Vec<[i64; 3]>, h: &mut Vec<[i64; 3]>) {
    const PER_HOUR: i64 = crate::metrics::rollup::BUCKETS_PER_HOUR;
    let h0 = a.div_euclid(PER_HOUR) + i64::from(a.rem_euclid(PER_HOUR) != 0);
    let h1 = z.div_euclid(PER_HOUR);
    if h0 >= h1 {
        q.push([a, z, off]);
        return;
    }
    if a < h0 * PER_HOUR {
        q.push([a, h0 * PER_HOUR, off]);
    }
    if h1 * PER_HOUR < z {
        q.push([h1 * PER_HOUR, z, off]);
    }
    if off.rem_euclid(PER_HOUR) == 0 {
        h.push([h0, h1, off]);
        return;
    }
    // The hour holding a local midnight: its bucket m has (m + off) % 96 == 0 and m is not the
    // hour's first bucket, i.e. (4 h + off) % 96 is 93, 94 or 95. It comes back every 24 hours.
    let midnight_hour = |x: i64| (x * PER_HOUR + off).rem_euclid(BUCKETS_PER_DAY) >= 93;
    let Some(first) = (h0..h0 + 24).find(|x| midnight_hour(*x)) else {
        h.push([h0, h1, off]);
        return;
    };
    let mut at = h0;
    let mut m = first;
    while m < h1 {
        if at < m {
            h.push([at, m, off]);
        }
        q.push([m * PER_HOUR, (m + 1) * PER_HOUR, off]);
        at = m + 1;
        m += 24;
    }
    if at < h1 {
        h.push([at, h1, off]);
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
    let (mut q, mut h) = (Vec::new(), Vec::new());
    for (a, z, off) in tz.offset_segments(lo, hi) {
        let (a, z) = (a.max(qa), z.min(qz));
        if a < z {
            plan_segment(a, z, off, &mut q, &mut h);
        }
    }
    let json = |v: &Vec<[i64; 3]>| {
        serde_json::to_string(v).map_err(|e| QueryError::Invalid(format!("internal: {e}")))
    };
    let (qranges, hranges) = (json(&q)?, json(&h)?);
    let edge_off = |(a, z): (i64, i64)| {
        if a < z {
            tz.offset_buckets(a.div_euclid(BUCKET_MS))
        } else {
            0
        }
    };
    let (r1_off, r2_off) = (edge_off(split.raw[0]), edge_off(split.raw[1]));
    let params: [(&str, &dyn rusqlite::ToSql); 10] = [
        (":qranges", &qranges),
        (":hranges", &hranges),
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
    let rows = stmt.query(params.as_slice())?;
    let mut last: Option<(i64, String)> = None;
    fold(
        rows,
        |r| {
            let day: i64 = r.get(0)?;
            Ok(Some(match &last {
                Some((d, k)) if *d == day => k.clone(),
                _ => {
                    let k = day_key(day, group_by);
                    last = Some((day, k.clone()));
                    k
                }
            }))
        },
        false,
    )
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
                let (mut q, mut h) = (Vec::new(), Vec::new());
                plan_segment(a, z, off, &mut q, &mut h);
                let mut seen = vec![0; (z - a) as usize];
                for [x, y, o] in &q {
                    assert_eq!(*o, off);
                    (*x..*y).for_each(|b| seen[(b - a) as usize] += 1);
                }
                for [x, y, o] in &h {
                    assert_eq!(*o, off);
                    for hour in *x..*y {
                        // No local midnight strictly inside an hour read whole.
                        for b in hour * 4 + 1..hour * 4 + 4 {
                            assert_ne!((b + off).rem_euclid(96), 0, "off {off} hour {hour}");
                        }
                        (hour * 4..hour * 4 + 4).for_each(|b| seen[(b - a) as usize] += 1);
                    }
                }
                assert!(
                    seen.iter().all(|n| *n == 1),
                    "off {off} [{a}, {z}): {q:?} {h:?}"
                );
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
