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

/// The counters in [`counters_at`] order; `tools` is the pair of tool-call columns.
fn sums(tools: &str) -> String {
    format!(
        "coalesce(sum(input), 0), coalesce(sum(output), 0), coalesce(sum(cache_creation), 0),
         coalesce(sum(cache_read), 0), coalesce(sum(cost_pusd), 0), coalesce(sum(responses), 0),
         coalesce(sum(unpriced), 0), {tools}, coalesce(sum(est_input), 0),
         coalesce(sum(est_output), 0), coalesce(sum(est_cost_pusd), 0)"
    )
}

const TOOL_SUMS: &str = "coalesce(sum(tool_calls), 0), coalesce(sum(tool_errors), 0)";

fn counters_at(r: &Row<'_>, first: usize) -> rusqlite::Result<Counters> {
    Ok(Counters {
        input: r.get(first)?,
        output: r.get(first + 1)?,
        cache_creation: r.get(first + 2)?,
        cache_read: r.get(first + 3)?,
        cost_pusd: r.get(first + 4)?,
        responses: r.get(first + 5)?,
        unpriced: r.get(first + 6)?,
        tool_calls: r.get(first + 7)?,
        tool_errors: r.get(first + 8)?,
        est_input: r.get(first + 9)?,
        est_output: r.get(first + 10)?,
        est_cost_pusd: r.get(first + 11)?,
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
    Ok(format!(
        "WITH src AS ({src})
         SELECT {key} AS k, sk, sum(rows), {sums} FROM src WHERE {FILTER} GROUP BY k, sk",
        src = source_sql(),
        sums = sums(TOOL_SUMS),
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

/// The statement of [`by_period`].
pub(super) fn period_sql() -> String {
    format!(
        "WITH seg AS MATERIALIZED (SELECT value ->> 0 AS lo, value ->> 1 AS hi, value ->> 2 AS off
                                  FROM json_each(:segments)),
              src AS ({src})
         SELECT (src.b + seg.off) / 96 AS day, src.sk, sum(rows), {sums}
         FROM src JOIN seg ON src.b >= seg.lo AND src.b < seg.hi
         WHERE {FILTER}
         GROUP BY day, src.sk",
        src = source_sql(),
        sums = sums(TOOL_SUMS),
    )
}

/// Metrics grouped by day, week or month in `tz`: the rollups give per local day and session
/// figures (the bucket's local day is `(bucket + offset) / 96`, with the zone's offset in
/// quarter hours per run of equal offsets), folded here into periods.
///
/// # Errors
/// SQLite errors.
pub fn by_period(conn: &Connection, f: &Filter, group_by: GroupBy, tz: &Tz) -> Result<Grouped> {
    let split = split(f, false);
    let Some((lo, hi)) = bucket_extent(conn, &split)? else {
        return Ok(Default::default());
    };
    let segments = serde_json::to_string(&tz.offset_segments(lo, hi))
        .map_err(|e| QueryError::Invalid(format!("internal: {e}")))?;
    let extra: [(&'static str, &dyn rusqlite::ToSql); 1] = [(":segments", &segments)];
    let bound = bind_all(&split, f, &extra);
    let mut stmt = conn.prepare_cached(&period_sql())?;
    let rows = stmt.query(as_params(&bound).as_slice())?;
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
        .query_map(as_params(&bound).as_slice(), |r| {
            Ok(ToolRow {
                name: r.get(0)?,
                calls: r.get(1)?,
                errors: r.get(2)?,
                total_ms: r.get(3)?,
                max_ms: r.get(4)?,
            })
        })?
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
