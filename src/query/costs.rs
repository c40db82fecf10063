//! Claude Code's own cost figures beside ours: `reported_cost_usd` (its running total from
//! `cost-state` records, or the status line where no `cost-state` exists) and
//! `unattributed_cost_usd` (what it counted that no assistant line records: compaction and
//! cache-warm calls).
//!
//! A running total only grows while one Claude Code process runs a session; a resumed
//! session may start counting again from zero. So a session's reported cost is the sum of
//! its total's increases, a drop starting a new count: order-independent, and it splits over
//! any time range (each increase belongs to the time of the figure that shows it).

use std::collections::BTreeMap;

use rusqlite::{Connection, params_from_iter, types::Value as SqlValue};

use super::time::{GroupBy, Tz};
use super::{Filter, MetricsRow, MetricsTotals, Result};
use crate::pricing::pusd_to_usd;

/// One increase of a session's reported total (or one response's cost, for `our_costs`).
struct Increase {
    session_id: String,
    platform: String,
    project: Option<String>,
    ts: i64,
    pusd: i64,
}

/// Increases in `[from, to)`, of the sessions `f` keeps (platform, project), or of `only`.
fn increases(
    conn: &Connection,
    from: i64,
    to: i64,
    f: &Filter,
    only: Option<&[&str]>,
) -> Result<Vec<Increase>> {
    let mut sql = String::from(
        "WITH origin AS (
           SELECT session_id, CASE WHEN max(origin = 'cost-state') THEN 'cost-state' ELSE 'statusline' END AS o
           FROM cost_states GROUP BY session_id),
         c AS (
           SELECT c.session_id, c.ts, c.total_pusd,
                  lag(c.total_pusd) OVER (PARTITION BY c.session_id ORDER BY c.ts) AS prev
           FROM cost_states c JOIN origin USING (session_id) WHERE c.origin = origin.o)
         SELECT c.session_id, s.platform, s.project_path, c.ts,
                CASE WHEN prev IS NULL OR total_pusd < prev THEN total_pusd ELSE total_pusd - prev END
         FROM c JOIN sessions s USING (session_id)
         WHERE c.ts >= ? AND c.ts < ?",
    );
    let mut args: Vec<SqlValue> = vec![from.into(), to.into()];
    push_scope(&mut sql, &mut args, f, "s");
    if let Some(ids) = only {
        sql.push_str(&format!(
            " AND c.session_id IN ({})",
            vec!["?"; ids.len()].join(",")
        ));
        args.extend(ids.iter().map(|s| SqlValue::from((*s).to_string())));
    }
    read_rows(conn, &sql, args)
}

/// Our cost (pico-USD) of each response in `[from, to)` of a session that has a reported
/// figure.
fn our_costs(conn: &Connection, from: i64, to: i64, f: &Filter) -> Result<Vec<Increase>> {
    let mut sql = String::from(
        "SELECT r.session_id, r.platform, r.project_path, r.ts, r.cost_pusd FROM api_responses r
         WHERE r.ts >= ? AND r.ts < ? AND r.session_id IN (SELECT DISTINCT session_id FROM cost_states)",
    );
    let mut args: Vec<SqlValue> = vec![from.into(), to.into()];
    push_scope(&mut sql, &mut args, f, "r");
    read_rows(conn, &sql, args)
}

/// ` AND` clauses for the filter's platform and project, on the table aliased `t`.
fn push_scope(sql: &mut String, args: &mut Vec<SqlValue>, f: &Filter, t: &str) {
    if let Some(p) = &f.platform {
        sql.push_str(&format!(" AND {t}.platform = ?"));
        args.push(p.clone().into());
    }
    if let Some(p) = &f.project {
        sql.push_str(&format!(
            " AND instr(coalesce({t}.project_path, ''), ?) > 0"
        ));
        args.push(p.clone().into());
    }
}

/// Rows of (session, platform, project, ts, pico-USD).
fn read_rows(conn: &Connection, sql: &str, args: Vec<SqlValue>) -> Result<Vec<Increase>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(params_from_iter(args), |r| {
        Ok(Increase {
            session_id: r.get(0)?,
            platform: r.get(1)?,
            project: r.get(2)?,
            ts: r.get(3)?,
            pusd: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Reported and unattributed cost (pico-USD) per session.
///
/// # Errors
/// SQLite failures.
pub fn by_session(conn: &Connection, ids: &[&str]) -> Result<BTreeMap<String, (i64, i64)>> {
    let mut out: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    for inc in increases(conn, i64::MIN, i64::MAX, &Filter::default(), Some(ids))? {
        out.entry(inc.session_id).or_default().0 += inc.pusd;
    }
    let ours: BTreeMap<String, i64> = {
        let mut stmt = conn.prepare(&format!(
            "SELECT session_id, coalesce(sum(cost_pusd), 0) FROM api_responses
             WHERE session_id IN ({}) GROUP BY session_id",
            vec!["?"; ids.len()].join(",")
        ))?;
        let rows = stmt.query_map(params_from_iter(ids.iter()), |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for (s, (reported, unattributed)) in out.iter_mut() {
        *unattributed = (*reported - ours.get(s).copied().unwrap_or(0)).max(0);
    }
    Ok(out)
}

/// Adds `reported_cost_usd` and `unattributed_cost_usd` to metric rows and totals, for the
/// groupings a session's figure can be split by (time, session, project, platform; by model
/// only in the totals, since Claude Code's total is per session).
///
/// # Errors
/// SQLite failures.
pub fn annotate(
    conn: &Connection,
    f: &Filter,
    group_by: GroupBy,
    tz: &Tz,
    rows: &mut [MetricsRow],
    totals: &mut MetricsTotals,
) -> Result<()> {
    let (from, to) = (f.since.unwrap_or(i64::MIN), f.until.unwrap_or(i64::MAX));
    let incs = increases(conn, from, to, f, None)?;
    if incs.is_empty() {
        return Ok(());
    }
    let key = |session: &str, platform: &str, project: Option<&str>, ts: i64| -> Option<String> {
        match group_by {
            GroupBy::Day | GroupBy::Week | GroupBy::Month => Some(tz.key(ts, group_by)),
            GroupBy::Session => Some(session.to_string()),
            GroupBy::Project => Some(project.unwrap_or("(unknown)").to_string()),
            GroupBy::Platform => Some(platform.to_string()),
            GroupBy::Model => None,
        }
    };
    // (reported, ours for the same sessions) per key, and in all.
    let mut per: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let mut all = (0i64, 0i64);
    for i in &incs {
        all.0 += i.pusd;
        if let Some(k) = key(&i.session_id, &i.platform, i.project.as_deref(), i.ts) {
            per.entry(k).or_default().0 += i.pusd;
        }
    }
    for c in our_costs(conn, from, to, f)? {
        all.1 += c.pusd;
        if let Some(k) = key(&c.session_id, &c.platform, c.project.as_deref(), c.ts) {
            per.entry(k).or_default().1 += c.pusd;
        }
    }
    for r in rows.iter_mut() {
        if let Some((reported, ours)) = per.get(&r.key)
            && *reported > 0
        {
            r.reported_cost_usd = Some(pusd_to_usd(*reported));
            r.unattributed_cost_usd = Some(pusd_to_usd((reported - ours).max(0)));
        }
    }
    totals.reported_cost_usd = Some(pusd_to_usd(all.0));
    totals.unattributed_cost_usd = Some(pusd_to_usd((all.0 - all.1).max(0)));
    Ok(())
}
