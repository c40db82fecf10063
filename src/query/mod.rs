//! Layer 3's read API: the one place where SQL for reads lives. MCP tools and CLI reports
//! are thin adapters over these functions and share their output types.
//!
//! Invariant: everything here runs on a connection from [`reader::Reader`] (read-only,
//! `raw_traces` denied) plus Redis metrics.

pub mod blocks;
pub mod costs;
pub mod reader;
pub mod rollups;
pub mod status;
pub mod time;
pub mod usage;

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{Connection, params_from_iter, types::Value as SqlValue};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::metrics::{self, BucketAgg, Counters, ESTIMATE_SUMS, SqlFilter, Stamp, USAGE_SUMS};
use crate::pricing::pusd_to_usd;
use time::{GroupBy, Tz};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The caller asked for something invalid; the message says how to fix it.
    #[error("{0}")]
    Invalid(String),
    #[error("unknown session '{0}': call list_sessions to see valid session ids")]
    UnknownSession(String),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Queue(#[from] crate::queue::QueueError),
    #[error(transparent)]
    Store(crate::store::StoreError),
}

pub type Result<T> = std::result::Result<T, QueryError>;

/// Filters shared by the tools.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// Inclusive lower bound, epoch ms.
    pub since: Option<i64>,
    /// Exclusive upper bound, epoch ms.
    pub until: Option<i64>,
    pub platform: Option<String>,
    pub project: Option<String>,
}

impl Filter {
    /// A filter from user input: dates or date-times in `tz` (an `until` date includes its
    /// whole day); empty strings mean "no filter".
    ///
    /// # Errors
    /// [`QueryError::Invalid`] for a bound that is not a date or time.
    pub fn parse(
        tz: &Tz,
        since: Option<&str>,
        until: Option<&str>,
        platform: Option<String>,
        project: Option<String>,
    ) -> Result<Filter> {
        Ok(Filter {
            since: since.map(|s| tz.parse_bound(s, false)).transpose()?,
            until: until.map(|s| tz.parse_bound(s, true)).transpose()?,
            platform: platform.filter(|p| !p.is_empty()),
            project: project.filter(|p| !p.is_empty()),
        })
    }

    /// Validates `platform`.
    ///
    /// # Errors
    /// [`QueryError::Invalid`] for an unknown platform.
    pub fn check(&self) -> Result<()> {
        if let Some(p) = &self.platform
            && crate::event::Platform::parse(p).is_none()
        {
            return Err(QueryError::Invalid(format!(
                "unknown platform '{p}': use 'claude_code' or 'cursor'"
            )));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Tokens {
    pub input: i64,
    pub output: i64,
    pub cache_creation: i64,
    pub cache_read: i64,
    /// input + output + cache_creation + cache_read (as ccusage counts).
    pub total: i64,
}

impl Tokens {
    fn from_counters(c: &Counters) -> Tokens {
        Tokens {
            input: c.input,
            output: c.output,
            cache_creation: c.cache_creation,
            cache_read: c.cache_read,
            total: c.input + c.output + c.cache_creation + c.cache_read,
        }
    }
}

impl Tokens {
    /// The estimated tokens of `c` (input and output only), None when there are none.
    fn estimated(c: &Counters) -> Option<Tokens> {
        (c.est_input != 0 || c.est_output != 0).then(|| Tokens {
            input: c.est_input,
            output: c.est_output,
            cache_creation: 0,
            cache_read: 0,
            total: c.est_input.saturating_add(c.est_output),
        })
    }
}

// One session, as `list_sessions` returns it (no doc comment: it would be repeated in the
// published schema).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Session {
    pub session_id: String,
    pub platform: String,
    pub project_path: Option<String>,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub ended_at: String,
    pub duration_s: i64,
    pub models: Vec<String>,
    pub user_prompts: i64,
    pub responses: i64,
    pub tool_calls: i64,
    pub tool_errors: i64,
    pub tokens: Tokens,
    pub cost_usd: f64,
    /// API responses whose model has no known price (their cost counts as 0).
    pub unpriced_responses: i64,
    /// Claude Code's own figure for the session (`cost-state`), where captured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_cost_usd: Option<f64>,
    /// `reported_cost_usd` minus `cost_usd` when positive (compaction, warm-up calls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unattributed_cost_usd: Option<f64>,
    pub title: Option<String>,
    // Estimated tokens (Cursor turns without counts, ~4 chars/token), null when none; never
    // in `tokens`. Documented once in the tools' descriptions (the tools/list budget).
    pub tokens_estimated: Option<Tokens>,
    // transcript | cursor | hook | estimate | mixed; null without tokens.
    pub token_source: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SessionList {
    pub sessions: Vec<Session>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ToolCount {
    pub name: String,
    pub calls: i64,
    pub errors: i64,
    /// Sum and maximum of the known durations (hook `duration_ms`, else tool use to result).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ms: Option<i64>,
}

/// A tool call that failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FailedTool {
    pub name: String,
    pub tool_use_id: String,
    /// RFC 3339, UTC, when known.
    pub at: Option<String>,
    pub took_ms: Option<i64>,
    /// The first line of the error (`Exit code 3`), where hooks captured it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

/// What the hooks saw of a session (absent when no hook fired for it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SessionHooks {
    /// How the session started (startup, resume, compact, clear, fork) and why it ended.
    pub start_source: Option<String>,
    pub end_reason: Option<String>,
    /// Compactions (PreCompact events) with their trigger (manual, auto).
    pub compactions: Vec<Compaction>,
    pub permission_requests: i64,
    pub permission_denials: i64,
    pub notifications: i64,
    pub stop_failures: i64,
    /// Model switches as `from -> to`.
    pub model_switches: Vec<String>,
    /// Hook events per event name.
    pub events: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Compaction {
    pub at: String,
    pub trigger: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SessionSummary {
    #[serde(flatten)]
    pub session: Session,
    pub tools: Vec<ToolCount>,
    /// Failed tool calls, most recent first (at most 20).
    pub failed_tools: Vec<FailedTool>,
    pub subagents: i64,
    pub first_prompt: Option<String>,
    pub last_activity: String,
    /// Whether the session compacted (what that cost is in `unattributed_cost_usd`).
    pub compacted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<SessionHooks>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MetricsRow {
    pub key: String,
    pub tokens: Tokens,
    pub cost_usd: f64,
    pub sessions: i64,
    pub responses: i64,
    /// Responses whose model has no known price (their cost counts as 0).
    pub unpriced_responses: i64,
    pub tool_calls: i64,
    pub tool_errors: i64,
    /// Claude Code's own cost figure (`cost-state`) for the sessions that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_cost_usd: Option<f64>,
    /// `reported_cost_usd` minus our cost of the same sessions, when positive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unattributed_cost_usd: Option<f64>,
    // Estimated tokens and their cost, where there are any; never in `tokens`/`cost_usd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_tokens: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_cost_usd: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MetricsTotals {
    pub tokens: Tokens,
    pub cost_usd: f64,
    pub sessions: i64,
    pub responses: i64,
    /// Responses whose model has no known price (their cost counts as 0).
    pub unpriced_responses: i64,
    pub tool_calls: i64,
    pub tool_errors: i64,
    /// Claude Code's own cost figure (`cost-state`) for the sessions that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_cost_usd: Option<f64>,
    /// `reported_cost_usd` minus our cost of the same sessions, when positive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unattributed_cost_usd: Option<f64>,
    // Estimated tokens and their cost, where there are any; never in `tokens`/`cost_usd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_tokens: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_cost_usd: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Metrics {
    pub group_by: String,
    pub timezone: String,
    pub rows: Vec<MetricsRow>,
    pub totals: MetricsTotals,
    /// `redis` (derived metrics) or `sqlite` (Redis unavailable or rebuilding).
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SearchHit {
    pub session_id: String,
    pub platform: String,
    pub project_path: Option<String>,
    pub timestamp: String,
    pub role: String,
    pub snippet: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SearchResult {
    pub hits: Vec<SearchHit>,
    pub next_cursor: Option<String>,
    /// Why there are no hits, when it is not the query (e.g. privacy mode `metadata`).
    pub notice: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ToolStat {
    pub name: String,
    pub calls: i64,
    pub errors: i64,
    /// errors / calls, 0 when there are no calls.
    pub error_rate: f64,
    /// Total and slowest duration of the calls with a known duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ToolStats {
    pub tools: Vec<ToolStat>,
}

pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// The largest page any paged query returns.
pub const MAX_LIMIT: i64 = 500;
/// Default page of `list_sessions` for MCP: a session is about 0.5 KB of JSON, sent twice
/// (structured and as text), so five keep a default call near 5 KB (docs/BENCHMARKS.md). The
/// CLI passes its own limit.
pub const SESSIONS_PAGE: i64 = 5;
/// Default page of `search`: a hit is about 0.3 KB of JSON, sent twice; eight stay near 5 KB.
pub const SEARCH_PAGE: i64 = 8;
/// The longest search query, in characters: more is not a search but a paste, and FTS5's
/// cost grows with the number of terms.
pub const MAX_QUERY_CHARS: usize = 1000;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

fn limit_of(limit: Option<i64>, default: i64) -> Result<i64> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(QueryError::Invalid(format!(
            "limit {n} is out of range: use 1 to {MAX_LIMIT}"
        ))),
    }
}

fn offset_cursor(cursor: Option<&str>) -> Result<i64> {
    match cursor {
        None | Some("") => Ok(0),
        Some(c) => c
            .strip_prefix("o:")
            .and_then(|n| n.parse::<i64>().ok())
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                QueryError::Invalid(format!(
                    "invalid cursor '{c}': pass the next_cursor value of the previous page unchanged"
                ))
            }),
    }
}

/// Sessions, most recent first. `cursor` is the `next_cursor` of the previous page.
///
/// # Errors
/// Invalid arguments or SQLite errors.
pub fn list_sessions(
    conn: &Connection,
    f: &Filter,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<SessionList> {
    f.check()?;
    let limit = limit_of(limit, SESSIONS_PAGE)?;
    let offset = offset_cursor(cursor)?;
    let mut sql = String::from(
        "SELECT session_id, platform, project_path, started_at, ended_at, title, first_prompt
         FROM sessions WHERE 1=1",
    );
    let mut args: Vec<SqlValue> = Vec::new();
    push_filter(&mut sql, &mut args, f, &SESSION_COLS);
    sql.push_str(" ORDER BY started_at DESC, session_id LIMIT ? OFFSET ?");
    args.push((limit + 1).into());
    args.push(offset.into());
    let mut base: Vec<BaseSession> = conn
        .prepare_cached(&sql)?
        .query_map(params_from_iter(args), BaseSession::from_row)?
        .collect::<rusqlite::Result<_>>()?;
    let next_cursor = (base.len() as i64 > limit).then(|| format!("o:{}", offset + limit));
    base.truncate(limit as usize);
    let sessions = fill_sessions(conn, base)?;
    Ok(SessionList {
        sessions,
        next_cursor,
    })
}

/// The columns a [`Filter`] applies to. Rows span `start`..`end` (the same column for
/// rows that are an instant); `since` keeps rows that end at or after it, `until` rows that
/// start before it.
struct Cols<'a> {
    start: &'a str,
    end: &'a str,
    platform: &'a str,
    project: &'a str,
}

const SESSION_COLS: Cols<'static> = Cols {
    start: "started_at",
    end: "ended_at",
    platform: "platform",
    project: "project_path",
};

const TOOL_COLS: Cols<'static> = Cols {
    start: "coalesce(started_at, finished_at)",
    end: "coalesce(started_at, finished_at)",
    platform: "platform",
    project: "project_path",
};

/// Appends ` AND ...` clauses for `f` and their arguments.
fn push_filter(sql: &mut String, args: &mut Vec<SqlValue>, f: &Filter, c: &Cols<'_>) {
    if let Some(s) = f.since {
        sql.push_str(&format!(" AND {} >= ?", c.end));
        args.push(s.into());
    }
    if let Some(u) = f.until {
        sql.push_str(&format!(" AND {} < ?", c.start));
        args.push(u.into());
    }
    if let Some(p) = &f.platform {
        sql.push_str(&format!(" AND {} = ?", c.platform));
        args.push(p.clone().into());
    }
    if let Some(p) = &f.project {
        sql.push_str(&format!(" AND instr(coalesce({}, ''), ?) > 0", c.project));
        args.push(p.clone().into());
    }
}

struct BaseSession {
    session_id: String,
    platform: String,
    project_path: Option<String>,
    started_at: i64,
    ended_at: i64,
    title: Option<String>,
    first_prompt: Option<String>,
}

impl BaseSession {
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BaseSession> {
        Ok(BaseSession {
            session_id: r.get(0)?,
            platform: r.get(1)?,
            project_path: r.get(2)?,
            started_at: r.get(3)?,
            ended_at: r.get(4)?,
            title: r.get(5)?,
            first_prompt: r.get(6)?,
        })
    }
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(",")
}

fn fill_sessions(conn: &Connection, base: Vec<BaseSession>) -> Result<Vec<Session>> {
    if base.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = base.iter().map(|b| b.session_id.as_str()).collect();
    let ph = placeholders(ids.len());
    let mut usage: BTreeMap<String, (Counters, BTreeSet<String>)> = BTreeMap::new();
    let mut sources: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    {
        let mut stmt = conn.prepare(&format!(
            "SELECT session_id, model, token_source, {USAGE_SUMS}
             FROM api_responses WHERE session_id IN ({ph}) GROUP BY session_id, model, token_source
             UNION ALL
             SELECT session_id, model, 'estimate', 0, 0, 0, 0, 0, 0, 0
             FROM token_estimates WHERE session_id IN ({ph}) GROUP BY session_id, model"
        ))?;
        let mut rows = stmt.query(params_from_iter(ids.iter().chain(ids.iter())))?;
        while let Some(r) = rows.next()? {
            let session: String = r.get(0)?;
            let e = usage.entry(session.clone()).or_default();
            let model: Option<String> = r.get(1)?;
            if let Some(m) = model.filter(|m| m != "<synthetic>") {
                e.1.insert(m);
            }
            e.0.add(&Counters::usage_at(r, 3)?);
            sources.entry(session).or_default().insert(r.get(2)?);
        }
    }
    {
        let mut stmt = conn.prepare(&format!(
            "SELECT session_id, {ESTIMATE_SUMS}
             FROM token_estimates WHERE session_id IN ({ph}) GROUP BY session_id"
        ))?;
        let mut rows = stmt.query(params_from_iter(ids.iter()))?;
        while let Some(r) = rows.next()? {
            let e = usage.entry(r.get(0)?).or_default();
            e.0.add(&Counters::estimates_at(r, 1)?);
        }
    }
    let mut tools: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    {
        let mut stmt = conn.prepare(&format!(
            "SELECT session_id, count(*), coalesce(sum(failed), 0) FROM tool_calls
             WHERE session_id IN ({ph}) AND name IS NOT NULL GROUP BY session_id"
        ))?;
        let mut rows = stmt.query(params_from_iter(ids.iter()))?;
        while let Some(r) = rows.next()? {
            tools.insert(r.get(0)?, (r.get(1)?, r.get(2)?));
        }
    }
    let mut prompts: BTreeMap<String, i64> = BTreeMap::new();
    {
        let mut stmt = conn.prepare(&format!(
            "SELECT session_id, count(*) FROM messages WHERE session_id IN ({ph}) AND is_prompt = 1 GROUP BY session_id"
        ))?;
        let mut rows = stmt.query(params_from_iter(ids.iter()))?;
        while let Some(r) = rows.next()? {
            prompts.insert(r.get(0)?, r.get(1)?);
        }
    }
    let reported = costs::by_session(conn, &ids)?;
    Ok(base
        .into_iter()
        .map(|b| {
            let (c, models) = usage.remove(&b.session_id).unwrap_or_default();
            let rep = reported.get(&b.session_id).copied();
            let (calls, errors) = tools.get(&b.session_id).copied().unwrap_or((0, 0));
            let title = b.title.or_else(|| {
                b.first_prompt
                    .as_ref()
                    .map(|p| {
                        p.lines()
                            .next()
                            .unwrap_or("")
                            .chars()
                            .take(80)
                            .collect::<String>()
                    })
                    .filter(|t| !t.is_empty())
            });
            let token_source = sources.get(&b.session_id).and_then(|s| match s.len() {
                0 => None,
                1 => s.first().cloned(),
                _ => Some("mixed".to_string()),
            });
            Session {
                tokens_estimated: Tokens::estimated(&c),
                token_source,
                user_prompts: prompts.get(&b.session_id).copied().unwrap_or(0),
                platform: b.platform,
                project_path: b.project_path,
                started_at: rfc3339(b.started_at),
                ended_at: rfc3339(b.ended_at),
                duration_s: (b.ended_at - b.started_at) / 1000,
                models: models.into_iter().collect(),
                responses: c.responses,
                tool_calls: calls,
                tool_errors: errors,
                tokens: Tokens::from_counters(&c),
                cost_usd: pusd_to_usd(c.cost_pusd),
                unpriced_responses: c.unpriced,
                reported_cost_usd: rep.map(|r| pusd_to_usd(r.0)),
                unattributed_cost_usd: rep.map(|r| pusd_to_usd(r.1)),
                title,
                session_id: b.session_id,
            }
        })
        .collect())
}

/// One session in detail.
///
/// # Errors
/// [`QueryError::UnknownSession`] when there is no such session.
pub fn session_summary(conn: &Connection, session_id: &str) -> Result<SessionSummary> {
    let base = conn
        .prepare_cached(
            "SELECT session_id, platform, project_path, started_at, ended_at, title, first_prompt
             FROM sessions WHERE session_id = ?1",
        )?
        .query_map([session_id], BaseSession::from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let first_prompt = base.first().and_then(|b| b.first_prompt.clone());
    let ended = base.first().map(|b| b.ended_at);
    let Some(session) = fill_sessions(conn, base)?.pop() else {
        return Err(QueryError::UnknownSession(session_id.to_string()));
    };
    let tools = conn
        .prepare_cached(
            "SELECT name, count(*), coalesce(sum(failed), 0), sum(took_ms), max(took_ms) FROM tool_calls
             WHERE session_id = ?1 AND name IS NOT NULL GROUP BY name ORDER BY count(*) DESC, name",
        )?
        .query_map([session_id], |r| {
            Ok(ToolCount {
                name: r.get(0)?,
                calls: r.get(1)?,
                errors: r.get(2)?,
                total_ms: r.get(3)?,
                max_ms: r.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let failed_tools = conn
        .prepare_cached(
            "SELECT t.name, t.tool_use_id, coalesce(t.started_at, t.finished_at), t.took_ms,
                    (SELECT h.detail ->> '$.error_summary.first_line' FROM hook_events h
                     WHERE h.session_id = t.session_id AND h.tool_use_id = t.tool_use_id
                       AND h.event = 'PostToolUseFailure' LIMIT 1),
                    coalesce(t.is_interrupt, 0)
             FROM tool_calls t WHERE t.session_id = ?1 AND t.failed = 1 AND t.name IS NOT NULL
             ORDER BY coalesce(t.started_at, t.finished_at) DESC, t.tool_use_id LIMIT 20",
        )?
        .query_map([session_id], |r| {
            Ok(FailedTool {
                name: r.get(0)?,
                tool_use_id: r.get(1)?,
                at: r.get::<_, Option<i64>>(2)?.map(rfc3339),
                took_ms: r.get(3)?,
                error: r.get(4)?,
                interrupted: r.get::<_, i64>(5)? != 0,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let hooks = session_hooks(conn, session_id)?;
    let subagents: i64 = conn.query_row(
        "SELECT count(*) FROM subagents WHERE session_id = ?1",
        [session_id],
        |r| r.get(0),
    )?;
    let compacted = hooks
        .as_ref()
        .is_some_and(|h| !h.compactions.is_empty() || h.start_source.as_deref() == Some("compact"))
        || session.unattributed_cost_usd.is_some_and(|u| u > 0.0);
    Ok(SessionSummary {
        session,
        tools,
        failed_tools,
        subagents,
        first_prompt,
        last_activity: rfc3339(ended.unwrap_or(0)),
        compacted,
        hooks,
    })
}

/// The session's hook timeline, summarized; None when no hook fired for it.
fn session_hooks(conn: &Connection, session_id: &str) -> Result<Option<SessionHooks>> {
    let events: BTreeMap<String, i64> = conn
        .prepare_cached(
            "SELECT event, count(*) FROM hook_events WHERE session_id = ?1 GROUP BY event",
        )?
        .query_map([session_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    if events.is_empty() {
        return Ok(None);
    }
    let (start_source, end_reason): (Option<String>, Option<String>) = conn.query_row(
        "SELECT start_source, end_reason FROM sessions WHERE session_id = ?1",
        [session_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let compactions = conn
        .prepare_cached(
            "SELECT ts, detail ->> '$.trigger' FROM hook_events
             WHERE session_id = ?1 AND event = 'PreCompact' ORDER BY ts, event_id",
        )?
        .query_map([session_id], |r| {
            Ok(Compaction {
                at: rfc3339(r.get(0)?),
                trigger: r.get(1)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let model_switches = conn
        .prepare_cached(
            "SELECT coalesce(detail ->> '$.from_model', '?') || ' -> ' || coalesce(detail ->> '$.to_model', '?')
             FROM hook_events WHERE session_id = ?1 AND event = 'PostModelSwitch' ORDER BY ts, event_id",
        )?
        .query_map([session_id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let n = |e: &str| events.get(e).copied().unwrap_or(0);
    Ok(Some(SessionHooks {
        start_source,
        end_reason,
        compactions,
        permission_requests: n("PermissionRequest"),
        permission_denials: n("PermissionDenied"),
        notifications: n("Notification"),
        stop_failures: n("StopFailure"),
        model_switches,
        events,
    }))
}

/// Folds quarter-hour buckets into rows keyed by day, week or month in `tz`.
pub fn fold_buckets(
    buckets: &BTreeMap<i64, BucketAgg>,
    group_by: GroupBy,
    tz: &Tz,
    platform: Option<&str>,
) -> (Vec<MetricsRow>, MetricsTotals) {
    let mut rows: BTreeMap<String, (Counters, BTreeSet<(String, String)>)> = BTreeMap::new();
    let mut all: (Counters, BTreeSet<(String, String)>) = Default::default();
    for (b, agg) in buckets {
        let key = tz.key(*b * metrics::BUCKET_MS, group_by);
        let e = rows.entry(key).or_default();
        for (p, c) in &agg.platforms {
            if platform.is_none_or(|want| want == p) {
                e.0.add(c);
                all.0.add(c);
            }
        }
        for s in &agg.sessions {
            if platform.is_none_or(|want| want == s.0) {
                e.1.insert(s.clone());
                all.1.insert(s.clone());
            }
        }
    }
    let rows = rows
        .into_iter()
        .filter(|(_, (c, s))| !c.is_empty() || !s.is_empty())
        .map(|(key, (c, s))| row(key, &c, s.len() as i64))
        .collect();
    (rows, totals_of(&all.0, all.1.len() as i64))
}

fn row(key: String, c: &Counters, sessions: i64) -> MetricsRow {
    MetricsRow {
        key,
        tokens: Tokens::from_counters(c),
        cost_usd: pusd_to_usd(c.cost_pusd),
        sessions,
        responses: c.responses,
        unpriced_responses: c.unpriced,
        tool_calls: c.tool_calls,
        tool_errors: c.tool_errors,
        reported_cost_usd: None,
        unattributed_cost_usd: None,
        estimated_tokens: Tokens::estimated(c).map(|t| t.total),
        estimated_cost_usd: Tokens::estimated(c).map(|_| pusd_to_usd(c.est_cost_pusd)),
    }
}

/// The whole buckets inside the filter's time range (lo > hi when there are none).
fn inner_buckets(f: &Filter) -> (i64, i64) {
    let lo = f.since.map_or(0, |s| {
        s.div_euclid(metrics::BUCKET_MS) + i64::from(s.rem_euclid(metrics::BUCKET_MS) != 0)
    });
    let hi = f.until.map_or(i64::MAX / metrics::BUCKET_MS - 1, |u| {
        u.div_euclid(metrics::BUCKET_MS) - 1
    });
    (lo, hi)
}

/// The most non-empty buckets a time-grouped `get_metrics` reads from Redis (a day of
/// activity); longer ranges are answered from the rollups, which cost the same at a few
/// hundred buckets (p95 7.2 ms from Redis, 6.6 ms from the rollups for the ~350 buckets of
/// a 50 MB history) and far less beyond (19 against 244 ms at 5,600).
pub const REDIS_MAX_BUCKETS: i64 = 96;

/// Redis metrics read for a time-grouped query: Redis's stamp and its whole buckets inside
/// the range; [`get_metrics`] decides whether they can be trusted.
#[derive(Debug, Clone)]
pub struct RedisMetrics {
    pub stamp: Stamp,
    pub buckets: BTreeMap<i64, BucketAgg>,
}

/// The Redis metrics a time-grouped `get_metrics` needs, or None when the query must be
/// answered from SQLite (not grouped by time, or filtered by project, which Redis does not
/// break down).
///
/// # Errors
/// Redis failures.
pub async fn metric_buckets(
    redis: &mut redis::aio::ConnectionManager,
    f: &Filter,
    group_by: GroupBy,
) -> Result<Option<RedisMetrics>> {
    if !group_by.is_time() || f.project.is_some() {
        return Ok(None);
    }
    let (lo, hi) = inner_buckets(f);
    // Each Redis bucket is a hash and a set to fetch; beyond a few days of them the SQLite
    // rollups answer faster (and equally exactly).
    let held: i64 = redis::cmd("ZCOUNT")
        .arg(metrics::IDX)
        .arg(lo)
        .arg(hi)
        .query_async(redis)
        .await
        .map_err(crate::queue::QueueError::from)?;
    if held > REDIS_MAX_BUCKETS {
        return Ok(None);
    }
    let stamp = metrics::stamp(redis).await?;
    let buckets = if lo <= hi {
        metrics::read_buckets(redis, lo, hi).await?
    } else {
        BTreeMap::new()
    };
    Ok(Some(RedisMetrics { stamp, buckets }))
}

/// Metrics grouped by a time period or by model, project, platform or session.
///
/// Time periods come from the Redis buckets when they are complete for this store (epoch and
/// generation match SQLite): buckets still dirty and the partial buckets at the edges of a
/// date-time range are computed from SQLite, so the figures are exact. Otherwise, and for
/// every other grouping, everything comes from SQLite.
///
/// # Errors
/// Invalid arguments or SQLite failures.
pub fn get_metrics(
    conn: &Connection,
    redis: Option<RedisMetrics>,
    f: &Filter,
    group_by: GroupBy,
    tz: &Tz,
) -> Result<Metrics> {
    f.check()?;
    let (rows, totals, source) = if group_by.is_time() {
        let (from, to) = (f.since.unwrap_or(i64::MIN), f.until.unwrap_or(i64::MAX));
        let (lo, hi) = inner_buckets(f);
        let trusted = match &redis {
            Some(r) => r.stamp.trusted(&metrics::expected(conn)?) && lo <= hi,
            None => false,
        };
        match redis {
            Some(r) if trusted => {
                let all = SqlFilter::default();
                let mut buckets = r.buckets;
                for b in metrics::dirty_in(conn, lo, hi)? {
                    buckets.remove(&b);
                    let (a, z) = metrics::bucket_span(b, b);
                    buckets.extend(metrics::compute_range(conn, a, z, &all)?);
                }
                let (inner_from, inner_to) = metrics::bucket_span(lo, hi);
                if from < inner_from {
                    buckets.extend(metrics::compute_range(conn, from, inner_from, &all)?);
                }
                if to > inner_to {
                    buckets.extend(metrics::compute_range(conn, inner_to, to, &all)?);
                }
                let (rows, totals) = fold_buckets(&buckets, group_by, tz, f.platform.as_deref());
                (rows, totals, "redis")
            }
            _ => {
                let (per, all) = rollups::by_period(conn, f, group_by, tz)?;
                let rows = per.into_iter().map(|(k, (c, s))| row(k, &c, s)).collect();
                (rows, totals_of(&all.0, all.1), "sqlite")
            }
        }
    } else {
        let (per, all) = rollups::by_dimension(conn, f, group_by)?;
        let mut rows: Vec<MetricsRow> = per.into_iter().map(|(k, (c, s))| row(k, &c, s)).collect();
        rows.sort_by(|a, b| {
            b.cost_usd
                .total_cmp(&a.cost_usd)
                .then_with(|| a.key.cmp(&b.key))
        });
        (rows, totals_of(&all.0, all.1), "sqlite")
    };
    let (mut rows, mut totals) = (rows, totals);
    costs::annotate(conn, f, group_by, tz, &mut rows, &mut totals)?;
    Ok(Metrics {
        group_by: group_by.as_str().to_string(),
        timezone: tz.name().to_string(),
        rows,
        totals,
        source: source.to_string(),
    })
}

fn totals_of(c: &Counters, sessions: i64) -> MetricsTotals {
    let t = row(String::new(), c, sessions);
    MetricsTotals {
        tokens: t.tokens,
        cost_usd: t.cost_usd,
        sessions: t.sessions,
        responses: t.responses,
        unpriced_responses: t.unpriced_responses,
        tool_calls: t.tool_calls,
        tool_errors: t.tool_errors,
        reported_cost_usd: None,
        unattributed_cost_usd: None,
        estimated_tokens: t.estimated_tokens,
        estimated_cost_usd: t.estimated_cost_usd,
    }
}

/// Turns a user query into an FTS5 expression: quoted phrases stay phrases, other words
/// are quoted terms (so punctuation cannot break the syntax), `OR`/`NOT`/`AND` stay operators,
/// and a trailing `*` keeps prefix search.
///
/// # Errors
/// [`QueryError::Invalid`] for an empty query or an unbalanced quote.
pub fn fts_query(q: &str) -> Result<String> {
    let mut out: Vec<String> = Vec::new();
    let mut chars = q.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut phrase = String::new();
            let mut closed = false;
            for c in chars.by_ref() {
                if c == '"' {
                    closed = true;
                    break;
                }
                phrase.push(c);
            }
            if !closed {
                return Err(QueryError::Invalid(
                    "unbalanced quote in query: close the phrase with a second \"".into(),
                ));
            }
            if !phrase.trim().is_empty() {
                out.push(format!("\"{}\"", phrase.trim()));
            }
        } else {
            let mut word = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '"' {
                    break;
                }
                word.push(c);
                chars.next();
            }
            match word.as_str() {
                "OR" | "AND" | "NOT" => out.push(word),
                _ => {
                    let (w, prefix) = match word.strip_suffix('*') {
                        Some(w) => (w, true),
                        None => (word.as_str(), false),
                    };
                    let w: String = w.chars().filter(|c| *c != '"').collect();
                    if !w.is_empty() {
                        out.push(format!("\"{w}\"{}", if prefix { "*" } else { "" }));
                    }
                }
            }
        }
    }
    // Operators need terms on both sides.
    while out
        .first()
        .is_some_and(|t| matches!(t.as_str(), "OR" | "AND" | "NOT"))
    {
        out.remove(0);
    }
    while out
        .last()
        .is_some_and(|t| matches!(t.as_str(), "OR" | "AND" | "NOT"))
    {
        out.pop();
    }
    if out.is_empty() {
        return Err(QueryError::Invalid(
            "empty query: give at least one word or a quoted phrase".into(),
        ));
    }
    Ok(out.join(" "))
}

/// Full-text search over message text, most relevant first.
///
/// # Errors
/// Invalid query syntax or SQLite errors.
pub fn search(
    conn: &Connection,
    query: &str,
    f: &Filter,
    limit: Option<i64>,
    cursor: Option<&str>,
    privacy: crate::privacy::PrivacyMode,
) -> Result<SearchResult> {
    search_as(conn, query, f, None, limit, cursor, privacy)
}

/// [`search`] restricted to the messages of one role (prompts and other user text, or the
/// assistant's prose) when `role` is given.
///
/// # Errors
/// Invalid query syntax, a query over [`MAX_QUERY_CHARS`], or SQLite errors.
pub fn search_as(
    conn: &Connection,
    query: &str,
    f: &Filter,
    role: Option<Role>,
    limit: Option<i64>,
    cursor: Option<&str>,
    privacy: crate::privacy::PrivacyMode,
) -> Result<SearchResult> {
    f.check()?;
    let limit = limit_of(limit, SEARCH_PAGE)?;
    let offset = offset_cursor(cursor)?;
    let chars = query.chars().count();
    if chars > MAX_QUERY_CHARS {
        return Err(QueryError::Invalid(format!(
            "the search query has {chars} characters, more than the {MAX_QUERY_CHARS} allowed: search for a few distinctive words or a quoted phrase"
        )));
    }
    let expr = fts_query(query)?;
    let mut sql = String::from(
        "SELECT m.session_id, m.platform, s.project_path, m.ts, m.role,
                snippet(messages_fts, 0, '[', ']', '…', 16)
         FROM messages_fts JOIN messages m ON m.rowid = messages_fts.rowid
         LEFT JOIN sessions s ON s.session_id = m.session_id
         WHERE messages_fts MATCH ?",
    );
    let mut args: Vec<SqlValue> = vec![expr.into()];
    push_filter(
        &mut sql,
        &mut args,
        f,
        &Cols {
            start: "m.ts",
            end: "m.ts",
            platform: "m.platform",
            project: "s.project_path",
        },
    );
    if let Some(r) = role {
        sql.push_str(" AND m.role = ?");
        args.push(r.as_str().to_string().into());
    }
    sql.push_str(" ORDER BY rank, m.ts DESC LIMIT ? OFFSET ?");
    args.push((limit + 1).into());
    args.push(offset.into());
    let mut hits: Vec<SearchHit> = conn
        .prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map(params_from_iter(args), |r| {
                Ok(SearchHit {
                    session_id: r.get(0)?,
                    platform: r.get(1)?,
                    project_path: r.get(2)?,
                    timestamp: rfc3339(r.get(3)?),
                    role: r.get(4)?,
                    snippet: r.get(5)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(|e| match e {
            rusqlite::Error::SqliteFailure(_, Some(m)) if m.contains("fts5") => {
                QueryError::Invalid(format!(
                    "the search query is not valid ({m}): use plain words or \"quoted phrases\""
                ))
            }
            e => QueryError::Sqlite(e),
        })?;
    let next_cursor = (hits.len() as i64 > limit).then(|| format!("o:{}", offset + limit));
    hits.truncate(limit as usize);
    let notice = (hits.is_empty() && privacy == crate::privacy::PrivacyMode::Metadata).then(|| {
        "privacy mode is 'metadata': no message text is stored, so there is nothing to search. \
         Set privacy.mode = \"standard\" in $BLUEPLANE_HOME/config.toml to keep prompts and prose."
            .to_string()
    });
    Ok(SearchResult {
        hits,
        next_cursor,
        notice,
    })
}

/// Calls, errors and durations per tool, most used first; of one session when `session_id`
/// is given.
///
/// # Errors
/// Invalid arguments, [`QueryError::UnknownSession`], or SQLite errors.
pub fn tool_stats(conn: &Connection, f: &Filter, session_id: Option<&str>) -> Result<ToolStats> {
    f.check()?;
    let rows = match session_id {
        // One session: its own calls, through the session index.
        Some(id) => {
            let known: bool = conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM sessions WHERE session_id = ?1)",
                [id],
                |r| r.get(0),
            )?;
            if !known {
                return Err(QueryError::UnknownSession(id.to_string()));
            }
            let mut sql = String::from(
                "SELECT name, count(*), coalesce(sum(failed), 0), sum(took_ms), max(took_ms)
                 FROM tool_calls WHERE name IS NOT NULL AND session_id = ?",
            );
            let mut args: Vec<SqlValue> = vec![id.to_string().into()];
            push_filter(&mut sql, &mut args, f, &TOOL_COLS);
            sql.push_str(" GROUP BY name ORDER BY count(*) DESC, name");
            conn.prepare_cached(&sql)?
                .query_map(params_from_iter(args), rollups::ToolRow::from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?
        }
        None => rollups::tool_stats(conn, f)?,
    };
    let tools = rows
        .into_iter()
        .map(|t| ToolStat {
            error_rate: if t.calls > 0 {
                t.errors as f64 / t.calls as f64
            } else {
                0.0
            },
            name: t.name,
            calls: t.calls,
            errors: t.errors,
            total_ms: t.total_ms,
            max_ms: t.max_ms,
        })
        .collect();
    Ok(ToolStats { tools })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fts_query_quotes_words_and_keeps_phrases() {
        assert_eq!(fts_query("retry budget").unwrap(), "\"retry\" \"budget\"");
        assert_eq!(
            fts_query("\"retry budget\" OR x*").unwrap(),
            "\"retry budget\" OR \"x\"*"
        );
        assert_eq!(fts_query("retry-budget").unwrap(), "\"retry-budget\"");
        assert!(fts_query("\"open").is_err());
        assert!(fts_query("   ").is_err());
        assert!(fts_query("OR").is_err());
    }

    fn store() -> (tempfile::TempDir, Connection) {
        let d = tempfile::tempdir().unwrap();
        let c = crate::store::open_writer(&d.path().join("t.db")).unwrap();
        for (id, start) in [("s1", 1_000), ("s2", 2_000)] {
            c.execute(
                "INSERT INTO sessions (session_id, platform, started_at, ended_at) VALUES (?1, 'claude_code', ?2, ?2 + 500)",
                rusqlite::params![id, start],
            )
            .unwrap();
        }
        // s1: two Bash calls (one failed, 40 + 60 ms); s2: one Bash, one Read.
        for (tu, sid, name, start, took, err) in [
            ("t1", "s1", "Bash", 1_000, 40, 0),
            ("t2", "s1", "Bash", 1_100, 60, 1),
            ("t3", "s2", "Bash", 2_000, 10, 0),
            ("t4", "s2", "Read", 2_100, 5, 0),
        ] {
            c.execute(
                "INSERT INTO tool_calls (tool_use_id, session_id, platform, name, started_at, finished_at, is_error)
                 VALUES (?1, ?2, 'claude_code', ?3, ?4, ?4 + ?5, ?6)",
                rusqlite::params![tu, sid, name, start, took, err],
            )
            .unwrap();
        }
        for (i, (role, text)) in [
            ("user", "deploy the retry budget"),
            ("assistant", "the retry budget is deployed"),
        ]
        .into_iter()
        .enumerate()
        {
            c.execute(
                "INSERT INTO messages (rowid, event_id, session_id, platform, role, is_prompt, ts, text)
                 VALUES (?1, ?2, 's1', 'claude_code', ?3, 0, 1000, ?4)",
                rusqlite::params![i as i64 + 1, format!("e{i}"), role, text],
            )
            .unwrap();
            c.execute(
                "INSERT INTO messages_fts (rowid, text) VALUES (?1, ?2)",
                rusqlite::params![i as i64 + 1, text],
            )
            .unwrap();
        }
        // What the slow path does after every round.
        crate::metrics::rollup::rebuild_all(&c).unwrap();
        (d, c)
    }

    /// The plan of `sql`, one line per step.
    fn plan(c: &Connection, sql: &str, params: &[(&str, &dyn rusqlite::ToSql)]) -> Vec<String> {
        let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let mut rows = stmt.query(params).unwrap();
        let mut out = Vec::new();
        while let Some(r) = rows.next().unwrap() {
            out.push(r.get::<_, String>(3).unwrap());
        }
        out
    }

    /// Hot queries never scan a table of the history whole: every step over a conversation
    /// table or a rollup is an index or primary-key search.
    #[test]
    fn hot_queries_search_and_never_scan_the_history() {
        let (_d, c) = store();
        let big = [
            "api_responses",
            "tool_calls",
            "token_estimates",
            "messages",
            "rollup_q",
            "rollup_h",
            "rollup_d",
            "rollup_tools_q",
            "rollup_tools_d",
            "sessions",
            "session_keys",
        ];
        let range: Vec<(&str, i64)> = vec![
            (":d_lo", 1),
            (":d_hi", 9),
            (":q1_lo", 10),
            (":q1_hi", 20),
            (":q2_lo", 30),
            (":q2_hi", 40),
            (":r1_lo", 100),
            (":r1_hi", 200),
            (":r2_lo", 300),
            (":r2_hi", 400),
        ];
        let mut p: Vec<(&str, &dyn rusqlite::ToSql)> = range
            .iter()
            .map(|(k, v)| (*k, v as &dyn rusqlite::ToSql))
            .collect();
        let none: Option<&str> = None;
        p.push((":platform", &none));
        p.push((":project", &none));
        let ranges = "[[0, 100, 4, 1], [200, 300, 4, -1]]";
        let off = 4;
        let r: Vec<(&str, &dyn rusqlite::ToSql)> = vec![
            (":qranges", &ranges),
            (":hranges", &ranges),
            (":dranges", &ranges),
            (":r1_lo", &1),
            (":r1_hi", &2),
            (":r2_lo", &3),
            (":r2_hi", &4),
            (":r1_off", &off),
            (":r2_off", &off),
            (":platform", &none),
            (":project", &none),
        ];
        let mut checked = vec![
            ("period", plan(&c, &rollups::period_sql(), &r)),
            ("tools", plan(&c, &rollups::tool_sql(), &p)),
        ];
        for g in [
            GroupBy::Model,
            GroupBy::Project,
            GroupBy::Platform,
            GroupBy::Session,
        ] {
            checked.push((
                "dimension",
                plan(&c, &rollups::dimension_sql(g).unwrap(), &p),
            ));
        }
        for (name, steps) in &checked {
            for s in steps {
                eprintln!("{name}: {s}");
                for t in big {
                    assert!(
                        !(s.starts_with(&format!("SCAN {t}"))
                            || s.starts_with(&format!("SCAN {t} "))),
                        "{name} scans {t}: {steps:#?}"
                    );
                }
            }
        }
    }

    #[test]
    fn tool_stats_of_one_session_with_durations() {
        let (_d, c) = store();
        let f = Filter::default();
        let all = tool_stats(&c, &f, None).unwrap().tools;
        assert_eq!(
            all.iter()
                .map(|t| (t.name.as_str(), t.calls))
                .collect::<Vec<_>>(),
            [("Bash", 3), ("Read", 1)]
        );
        let s1 = tool_stats(&c, &f, Some("s1")).unwrap().tools;
        assert_eq!(s1.len(), 1);
        let b = &s1[0];
        assert_eq!(
            (b.name.as_str(), b.calls, b.errors, b.total_ms, b.max_ms),
            ("Bash", 2, 1, Some(100), Some(60))
        );
        assert!(matches!(
            tool_stats(&c, &f, Some("nope")),
            Err(QueryError::UnknownSession(_))
        ));
    }

    #[test]
    fn search_by_role_and_the_query_cap() {
        let (_d, c) = store();
        let f = Filter::default();
        let p = crate::privacy::PrivacyMode::Standard;
        let roles = |role| {
            search_as(&c, "retry budget", &f, role, None, None, p)
                .unwrap()
                .hits
                .into_iter()
                .map(|h| h.role)
                .collect::<Vec<_>>()
        };
        assert_eq!(roles(None).len(), 2);
        assert_eq!(roles(Some(Role::User)), ["user"]);
        assert_eq!(roles(Some(Role::Assistant)), ["assistant"]);
        let long = "word ".repeat(MAX_QUERY_CHARS / 5 + 1);
        let e = search(&c, &long, &f, None, None, p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("1000 allowed"), "{e}");
    }

    #[test]
    fn cursors_validate() {
        assert_eq!(offset_cursor(None).unwrap(), 0);
        assert_eq!(offset_cursor(Some("o:20")).unwrap(), 20);
        assert!(offset_cursor(Some("garbage")).is_err());
        assert!(limit_of(Some(0), 5).is_err());
    }
}
