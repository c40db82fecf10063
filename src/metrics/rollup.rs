//! SQLite rollups: the figures of `api_responses`, `token_estimates` and `tool_calls`,
//! pre-aggregated per quarter-hour bucket (`rollup_q`, `rollup_tools_q`), per UTC hour
//! (`rollup_h`) and per UTC day (`rollup_d`, `rollup_tools_d`); the schema is `schemas/sql/0005_rollups.sql`.
//!
//! Written by the slow path in the transaction of the round that changed the rows: every
//! bucket the round marked dirty is recomputed whole from the conversation tables, and its days
//! from their buckets, so the rollups always equal the tables (a reader never sees them
//! behind). Read by the query layer, which adds the exact rows of the partial buckets at the
//! edges of a date-time range with [`rows_sql`], the same SQL that fills `rollup_q`.

use std::collections::BTreeSet;

use rusqlite::{Connection, params};

use super::BUCKET_MS;

/// Quarter-hour buckets per UTC day.
pub const BUCKETS_PER_DAY: i64 = 96;
/// Quarter-hour buckets per UTC hour.
pub const BUCKETS_PER_HOUR: i64 = 4;

/// The counter columns of `rollup_q` / `rollup_d`, in table order.
pub const COUNTERS: &str =
    "input, output, cache_creation, cache_read, cost_pusd, responses, unpriced,
    est_input, est_output, est_cost_pusd, rows, tool_calls, tool_errors";

/// Rows shaped like `rollup_q` (`b`, `sk`, `model`, `project`, `platform`, then
/// [`COUNTERS`]) computed from the conversation tables for `from <= time < to`, where `from`
/// and `to` are SQL expressions (parameters). With bucket-aligned bounds these are exactly the
/// rows of the buckets in between; with other bounds, the exact figures of a partial bucket.
///
/// A tool call carries no model: its counts go to the row of the same bucket, session and
/// project with the smallest model, or to a row of model `''` when there is none (fewer rows
/// to read; by model, tool calls count in the totals only).
pub fn rows_sql(from: &str, to: &str) -> String {
    format!(
        "SELECT b, sk, model, project, platform,
                sum(input) AS input, sum(output) AS output, sum(cache_creation) AS cache_creation,
                sum(cache_read) AS cache_read, sum(cost_pusd) AS cost_pusd,
                sum(responses) AS responses, sum(unpriced) AS unpriced,
                sum(est_input) AS est_input, sum(est_output) AS est_output,
                sum(est_cost_pusd) AS est_cost_pusd, sum(rows) AS rows,
                sum(tool_calls) AS tool_calls, sum(tool_errors) AS tool_errors
         FROM (
           SELECT b, sk, project, platform,
                  CASE WHEN model = '' THEN coalesce(min(nullif(model, '')) OVER w, '') ELSE model END AS model,
                  input, output, cache_creation, cache_read, cost_pusd, responses, unpriced,
                  est_input, est_output, est_cost_pusd, rows, tool_calls, tool_errors
           FROM (
             SELECT b, sk, model, project, platform,
                    sum(input) AS input, sum(output) AS output, sum(cache_creation) AS cache_creation,
                    sum(cache_read) AS cache_read, sum(cost_pusd) AS cost_pusd,
                    sum(responses) AS responses, sum(unpriced) AS unpriced,
                    sum(est_input) AS est_input, sum(est_output) AS est_output,
                    sum(est_cost_pusd) AS est_cost_pusd, sum(rows) AS rows,
                    sum(tool_calls) AS tool_calls, sum(tool_errors) AS tool_errors
             FROM (
               SELECT a.ts / 900000 AS b, k.sk, coalesce(nullif(a.model, ''), '(unknown)') AS model,
                      coalesce(a.project_path, '') AS project, a.platform,
                      a.input_tokens AS input, a.output_tokens AS output,
                      a.cache_creation_tokens AS cache_creation, a.cache_read_tokens AS cache_read,
                      a.cost_pusd, a.model IS NOT '<synthetic>' AS responses, 1 - a.priced AS unpriced,
                      0 AS est_input, 0 AS est_output, 0 AS est_cost_pusd, 1 AS rows,
                      0 AS tool_calls, 0 AS tool_errors
               FROM api_responses a
               JOIN session_keys k ON k.platform = a.platform AND k.session_id = a.session_id
               WHERE a.ts >= {from} AND a.ts < {to}
               UNION ALL
               SELECT e.ts / 900000, k.sk, coalesce(nullif(e.model, ''), '(unknown)'),
                      coalesce(e.project_path, ''), e.platform, 0, 0, 0, 0, 0, 0, 0,
                      e.input_tokens, e.output_tokens, e.cost_pusd, 1, 0, 0
               FROM token_estimates e
               JOIN session_keys k ON k.platform = e.platform AND k.session_id = e.session_id
               WHERE e.ts >= {from} AND e.ts < {to}
               UNION ALL
               SELECT coalesce(t.started_at, t.finished_at) / 900000, k.sk, '',
                      coalesce(t.project_path, ''), t.platform, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                      1, coalesce(t.failed, 0)
               FROM tool_calls t
               JOIN session_keys k ON k.platform = t.platform AND k.session_id = t.session_id
               WHERE t.name IS NOT NULL
                 AND coalesce(t.started_at, t.finished_at) >= {from}
                 AND coalesce(t.started_at, t.finished_at) < {to}
             )
             GROUP BY b, sk, model, project
           )
           WINDOW w AS (PARTITION BY b, sk, project)
         )
         GROUP BY b, sk, model, project"
    )
}

/// Rows shaped like `rollup_tools_q` (`b`, `platform`, `project`, `name`, `calls`, `errors`,
/// `took_n`, `took_sum`, `took_max`) for `from <= time < to` (SQL expressions).
pub fn tool_rows_sql(from: &str, to: &str) -> String {
    format!(
        "SELECT coalesce(started_at, finished_at) / 900000 AS b, platform,
                coalesce(project_path, '') AS project, name, count(*) AS calls,
                coalesce(sum(failed), 0) AS errors, count(took_ms) AS took_n,
                coalesce(sum(took_ms), 0) AS took_sum, max(took_ms) AS took_max
         FROM tool_calls
         WHERE name IS NOT NULL
           AND coalesce(started_at, finished_at) >= {from}
           AND coalesce(started_at, finished_at) < {to}
         GROUP BY 1, 2, 3, 4"
    )
}

/// Dirty buckets closer than this are recomputed as one run (the buckets in between are
/// recomputed too, which is harmless).
const RUN_GAP: i64 = 8;

/// Recomputes the rollups of `buckets` (and of the days that hold them) from the
/// conversation tables, in the caller's transaction.
///
/// # Errors
/// SQLite errors.
pub fn refresh(conn: &Connection, buckets: &BTreeSet<i64>) -> rusqlite::Result<()> {
    let mut it = buckets.iter().copied();
    let Some(first) = it.next() else {
        return Ok(());
    };
    let (mut lo, mut hi) = (first, first);
    for b in it {
        if b - hi <= RUN_GAP {
            hi = b;
        } else {
            refresh_run(conn, lo, hi)?;
            (lo, hi) = (b, b);
        }
    }
    refresh_run(conn, lo, hi)
}

/// Recomputes buckets `lo..=hi` and their days.
fn refresh_run(conn: &Connection, lo: i64, hi: i64) -> rusqlite::Result<()> {
    let from = lo.saturating_mul(BUCKET_MS);
    let to = hi.saturating_add(1).saturating_mul(BUCKET_MS);
    let (day_lo, day_hi) = (lo / BUCKETS_PER_DAY, hi / BUCKETS_PER_DAY);
    conn.prepare_cached(KEYS_SQL)?.execute(params![from, to])?;
    conn.prepare_cached("DELETE FROM rollup_q WHERE bucket BETWEEN ?1 AND ?2")?
        .execute(params![lo, hi])?;
    conn.prepare_cached(&insert_q_sql())?
        .execute(params![from, to])?;
    conn.prepare_cached("DELETE FROM rollup_tools_q WHERE bucket BETWEEN ?1 AND ?2")?
        .execute(params![lo, hi])?;
    conn.prepare_cached(&insert_tools_q_sql())?
        .execute(params![from, to])?;
    conn.prepare_cached("DELETE FROM rollup_h WHERE hour BETWEEN ?1 AND ?2")?
        .execute(params![lo / BUCKETS_PER_HOUR, hi / BUCKETS_PER_HOUR])?;
    conn.prepare_cached(&insert_h_sql())?
        .execute(params![lo / BUCKETS_PER_HOUR, hi / BUCKETS_PER_HOUR])?;
    conn.prepare_cached("DELETE FROM rollup_d WHERE day BETWEEN ?1 AND ?2")?
        .execute(params![day_lo, day_hi])?;
    conn.prepare_cached(&insert_d_sql())?
        .execute(params![day_lo, day_hi])?;
    conn.prepare_cached("DELETE FROM rollup_tools_d WHERE day BETWEEN ?1 AND ?2")?
        .execute(params![day_lo, day_hi])?;
    conn.prepare_cached(INSERT_TOOLS_D_SQL)?
        .execute(params![day_lo, day_hi])?;
    Ok(())
}

/// Session keys for every session with a row in `[?1, ?2)`.
const KEYS_SQL: &str = "INSERT OR IGNORE INTO session_keys (platform, session_id)
    SELECT platform, session_id FROM api_responses WHERE ts >= ?1 AND ts < ?2
    UNION SELECT platform, session_id FROM token_estimates WHERE ts >= ?1 AND ts < ?2
    UNION SELECT platform, session_id FROM tool_calls
      WHERE coalesce(started_at, finished_at) >= ?1 AND coalesce(started_at, finished_at) < ?2";

fn insert_q_sql() -> String {
    format!(
        "INSERT INTO rollup_q (bucket, sk, model, project, platform, {COUNTERS}) {}",
        rows_sql("?1", "?2")
    )
}

fn insert_tools_q_sql() -> String {
    format!(
        "INSERT INTO rollup_tools_q (bucket, platform, project, name, calls, errors, took_n, took_sum, took_max) {}",
        tool_rows_sql("?1", "?2")
    )
}

/// Fills `table` (`rollup_h` keyed by `hour`, or `rollup_d` keyed by `day`) for periods
/// `?1..=?2` from the quarter-hour rows, `per` buckets to a period.
fn insert_coarser_sql(table: &str, period: &str, per: i64) -> String {
    format!(
        "INSERT INTO {table} ({period}, sk, model, project, platform, {COUNTERS})
         SELECT bucket / {per}, sk, model, project, platform, sum(input), sum(output),
                sum(cache_creation), sum(cache_read), sum(cost_pusd), sum(responses),
                sum(unpriced), sum(est_input), sum(est_output), sum(est_cost_pusd), sum(rows),
                sum(tool_calls), sum(tool_errors)
         FROM rollup_q WHERE bucket >= ?1 * {per} AND bucket < (?2 + 1) * {per}
         GROUP BY bucket / {per}, sk, model, project"
    )
}

fn insert_h_sql() -> String {
    insert_coarser_sql("rollup_h", "hour", BUCKETS_PER_HOUR)
}

fn insert_d_sql() -> String {
    insert_coarser_sql("rollup_d", "day", BUCKETS_PER_DAY)
}

const INSERT_TOOLS_D_SQL: &str = "INSERT INTO rollup_tools_d (day, platform, project, name, calls,
      errors, took_n, took_sum, took_max)
    SELECT bucket / 96, platform, project, name, sum(calls), sum(errors), sum(took_n),
           sum(took_sum), max(took_max)
    FROM rollup_tools_q WHERE bucket >= ?1 * 96 AND bucket < (?2 + 1) * 96
    GROUP BY bucket / 96, platform, project, name";

/// Empties every rollup (before a re-derivation, which writes them again).
///
/// # Errors
/// SQLite errors.
pub fn clear(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "DELETE FROM rollup_q; DELETE FROM rollup_h; DELETE FROM rollup_d; DELETE FROM rollup_tools_q;
         DELETE FROM rollup_tools_d; DELETE FROM session_keys;",
    )
}

/// Recomputes every rollup from the conversation tables (after the migration that adds them).
///
/// # Errors
/// SQLite errors.
pub fn rebuild_all(conn: &Connection) -> rusqlite::Result<()> {
    clear(conn)?;
    let (from, to) = (i64::MIN, i64::MAX);
    conn.execute(KEYS_SQL, params![from, to])?;
    conn.execute(&insert_q_sql(), params![from, to])?;
    conn.execute(&insert_tools_q_sql(), params![from, to])?;
    let (lo, hi): (Option<i64>, Option<i64>) = conn.query_row(
        "SELECT min(b), max(b) FROM (SELECT bucket AS b FROM rollup_q
                                     UNION ALL SELECT bucket FROM rollup_tools_q)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if let (Some(lo), Some(hi)) = (lo, hi) {
        conn.execute(
            &insert_h_sql(),
            params![lo / BUCKETS_PER_HOUR, hi / BUCKETS_PER_HOUR],
        )?;
        let days = params![lo / BUCKETS_PER_DAY, hi / BUCKETS_PER_DAY];
        conn.execute(&insert_d_sql(), days)?;
        conn.execute(INSERT_TOOLS_D_SQL, days)?;
    }
    Ok(())
}
