//! The MCP server: read-only tools, a thin adapter over `query`.
//!
//! Transport-agnostic: [`Telemetry`] is an rmcp `ServerHandler`; `serve` runs it over stdio
//! behind [`jsonrpc::guard`], and [`http`] serves the same handler over Streamable HTTP. Tool
//! failures are tool results with `isError: true` and a message an assistant can act on; they
//! never carry `structuredContent` of another shape (invariant 2, 10). Arguments are checked
//! against the published input schema first ([`schema`]), so a wrong argument is such a result
//! too, naming the argument and what the tool takes.

pub mod http;
pub mod sse;

use std::path::PathBuf;
use std::sync::Arc;

use rmcp::{Json, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::privacy::PrivacyMode;
use crate::query::status::{PipelineStatus, pipeline_status};
use crate::query::time::{GroupBy, Tz};
use crate::query::usage::UsageWindow;
use crate::query::{
    self, Filter, Metrics, QueryError, Role, SearchResult, SessionList, SessionSummary, ToolStats,
};
use crate::queue::Queue;

pub mod jsonrpc;
pub mod schema;

use schema::Parameters;

/// What the tools need: where the database is, Redis for metrics and status, the privacy mode.
pub struct State {
    pub db: PathBuf,
    /// The pool of read-only connections.
    pub reader: crate::query::reader::Reader,
    pub queue: Option<Queue>,
    pub privacy: PrivacyMode,
}

#[derive(Clone)]
pub struct Telemetry {
    state: Arc<State>,
}

/// A platform argument.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlatformArg {
    ClaudeCode,
    Cursor,
}

impl PlatformArg {
    fn name(p: Option<PlatformArg>) -> Option<String> {
        p.map(|p| match p {
            PlatformArg::ClaudeCode => "claude_code".to_string(),
            PlatformArg::Cursor => "cursor".to_string(),
        })
    }
}

// The argument structs: every field documented (the doc is the schema's description), no
// unknown field accepted (`schema::parse` refuses it by name first).

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListSessionsArgs {
    /// Active from this date (YYYY-MM-DD) or RFC 3339 time.
    pub since: Option<String>,
    /// Active through this date, or before this time.
    pub until: Option<String>,
    /// IANA zone of the dates (default: local); results are UTC.
    pub timezone: Option<String>,
    /// Only this assistant.
    pub platform: Option<PlatformArg>,
    /// Substring of the project path.
    pub project: Option<String>,
    /// Page size (default 5).
    #[serde(default, deserialize_with = "limit")]
    #[schemars(with = "Option<i64>", range(min = 1, max = query::MAX_LIMIT))]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionArgs {
    /// A session id from list_sessions.
    pub session_id: String,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricsArgs {
    /// Rows per period (weeks start Monday) or key (default day).
    pub group_by: Option<GroupBy>,
    /// IANA zone of the dates and periods (default: local).
    pub timezone: Option<String>,
    /// From this date (YYYY-MM-DD) or RFC 3339 time.
    pub since: Option<String>,
    /// Through this date, or before this time.
    pub until: Option<String>,
    /// Only this assistant.
    pub platform: Option<PlatformArg>,
    /// Substring of the project path.
    pub project: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    /// Words and "quoted phrases"; OR, NOT; word* for a prefix.
    #[schemars(length(max = query::MAX_QUERY_CHARS))]
    pub query: String,
    /// Only user text (prompts) or only assistant prose.
    pub role: Option<Role>,
    /// From this date (YYYY-MM-DD) or RFC 3339 time.
    pub since: Option<String>,
    /// Through this date, or before this time.
    pub until: Option<String>,
    /// IANA zone of the dates (default: local).
    pub timezone: Option<String>,
    /// Only this assistant.
    pub platform: Option<PlatformArg>,
    /// Substring of the project path.
    pub project: Option<String>,
    /// Page size (default 8).
    #[serde(default, deserialize_with = "limit")]
    #[schemars(with = "Option<i64>", range(min = 1, max = query::MAX_LIMIT))]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolStatsArgs {
    /// Only this session (an id from list_sessions).
    pub session_id: Option<String>,
    /// From this date (YYYY-MM-DD) or RFC 3339 time.
    pub since: Option<String>,
    /// Through this date, or before this time.
    pub until: Option<String>,
    /// IANA zone of the dates (default: local).
    pub timezone: Option<String>,
    /// Only this assistant.
    pub platform: Option<PlatformArg>,
    /// Substring of the project path.
    pub project: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// `limit` as a number, a numeric string or null (`schema::parse` has checked it).
fn limit<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => schema::as_integer(&v).map(Some).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "limit must be a whole number from 1 to {}, not {v}",
                query::MAX_LIMIT
            ))
        }),
    }
}

/// The time zone and filter of a tool's `timezone`, `since`, `until`, `platform`, `project`.
fn filter(
    timezone: Option<&str>,
    since: Option<&str>,
    until: Option<&str>,
    platform: Option<PlatformArg>,
    project: Option<String>,
) -> Result<(Tz, Filter), String> {
    let tz = Tz::parse(timezone).map_err(err)?;
    let f = Filter::parse(&tz, since, until, PlatformArg::name(platform), project).map_err(err)?;
    Ok((tz, f))
}

fn err(e: QueryError) -> String {
    match e {
        QueryError::Sqlite(s) => {
            format!("the telemetry database could not answer ({s}); check 'blueplane status'")
        }
        other => other.to_string(),
    }
}

impl Telemetry {
    pub fn new(state: State) -> Telemetry {
        Telemetry {
            state: Arc::new(state),
        }
    }

    /// Runs `f` on a pooled read-only connection, off the async worker, and stops the query
    /// when `ct` is cancelled: rmcp (3.11) cancels a call's token on `notifications/cancelled`
    /// and when an HTTP client goes away, but neither drops nor aborts the handler, so without
    /// this the query would run to its end and its answer be thrown away. Every tool reads
    /// through here.
    fn read<T>(
        &self,
        ct: &CancellationToken,
        f: impl FnOnce(&rusqlite::Connection) -> Result<T, QueryError>,
    ) -> Result<T, String> {
        if ct.is_cancelled() {
            return Err(CANCELLED.into());
        }
        let ct = ct.clone();
        tokio::task::block_in_place(|| {
            self.state
                .reader
                .with_cancel(move || ct.is_cancelled(), f)
                .map_err(err)
        })
    }
}

#[tool_router]
impl Telemetry {
    /// Sessions, most recent first, with tokens, cost, prompts, tool calls and errors. `tokens_estimated`: Cursor estimates, not in `tokens`.
    #[tool(
        title = "List sessions",
        input_schema = schema::input::<ListSessionsArgs>(),
        output_schema = schema::output::<SessionList>(),
        annotations(
            title = "List sessions",
            read_only_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn list_sessions(
        &self,
        ct: CancellationToken,
        Parameters(a): Parameters<ListSessionsArgs>,
    ) -> Result<Json<SessionList>, String> {
        let a = a?;
        let (_, f) = filter(
            a.timezone.as_deref(),
            a.since.as_deref(),
            a.until.as_deref(),
            a.platform,
            a.project,
        )?;
        self.read(&ct, |c| {
            query::list_sessions(c, &f, a.limit, a.cursor.as_deref())
        })
        .map(Json)
    }
    /// One session in detail: totals, tools with errors and durations, failed calls, sub-agents, first prompt, and from hooks how it started and ended, compactions, permissions, Claude Code's own cost.
    #[tool(
        title = "Session summary",
        input_schema = schema::input::<SessionArgs>(),
        output_schema = schema::output::<SessionSummary>(),
        annotations(
            title = "Session summary",
            read_only_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn get_session_summary(
        &self,
        ct: CancellationToken,
        Parameters(a): Parameters<SessionArgs>,
    ) -> Result<Json<SessionSummary>, String> {
        let a = a?;
        self.read(&ct, |c| query::session_summary(c, &a.session_id))
            .map(Json)
    }

    /// Tokens, cost (USD), sessions, responses and tool calls by day, week, month, model, project, platform or session; `reported_cost_usd`: Claude Code's own figure; `estimated_*`: Cursor estimates, not in the totals.
    #[tool(
        title = "Usage metrics",
        input_schema = schema::input::<MetricsArgs>(),
        output_schema = schema::output::<Metrics>(),
        annotations(
            title = "Usage metrics",
            read_only_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn get_metrics(
        &self,
        ct: CancellationToken,
        Parameters(a): Parameters<MetricsArgs>,
    ) -> Result<Json<Metrics>, String> {
        let a = a?;
        let group_by = a.group_by.unwrap_or(GroupBy::Day);
        let (tz, f) = filter(
            a.timezone.as_deref(),
            a.since.as_deref(),
            a.until.as_deref(),
            a.platform,
            a.project,
        )?;
        f.check().map_err(err)?;
        let buckets = match self.state.queue.as_ref() {
            Some(q) => {
                let mut conn = q.conn();
                tokio::select! {
                biased;
                        () = ct.cancelled() => return Err(CANCELLED.into()),
                        r = query::metric_buckets(&mut conn, &f, group_by) => match r {
                            Ok(b) => b,
                            Err(e) => {
                                tracing::warn!(error = %e, "Redis metrics unavailable; computing from SQLite");
                                None
                            }
                        },
                    }
            }
            None => None,
        };
        self.read(&ct, |c| query::get_metrics(c, buckets, &f, group_by, &tz))
            .map(Json)
    }

    /// Full-text search over prompts and assistant prose, most relevant first.
    #[tool(
        title = "Search conversations",
        input_schema = schema::input::<SearchArgs>(),
        output_schema = schema::output::<SearchResult>(),
        annotations(
            title = "Search conversations",
            read_only_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn search_conversations(
        &self,
        ct: CancellationToken,
        Parameters(a): Parameters<SearchArgs>,
    ) -> Result<Json<SearchResult>, String> {
        let a = a?;
        let (_, f) = filter(
            a.timezone.as_deref(),
            a.since.as_deref(),
            a.until.as_deref(),
            a.platform,
            a.project,
        )?;
        let privacy = self.state.privacy;
        self.read(&ct, |c| {
            query::search_as(
                c,
                &a.query,
                &f,
                a.role,
                a.limit,
                a.cursor.as_deref(),
                privacy,
            )
        })
        .map(Json)
    }

    /// Calls, errors, error rate and durations per tool (Bash, Edit, MCP tools, ...), most used first; of one session with `session_id`.
    #[tool(
        title = "Tool statistics",
        input_schema = schema::input::<ToolStatsArgs>(),
        output_schema = schema::output::<ToolStats>(),
        annotations(
            title = "Tool statistics",
            read_only_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn get_tool_stats(
        &self,
        ct: CancellationToken,
        Parameters(a): Parameters<ToolStatsArgs>,
    ) -> Result<Json<ToolStats>, String> {
        let a = a?;
        let (_, f) = filter(
            a.timezone.as_deref(),
            a.since.as_deref(),
            a.until.as_deref(),
            a.platform,
            a.project,
        )?;
        self.read(&ct, |c| query::tool_stats(c, &f, a.session_id.as_deref()))
            .map(Json)
    }

    /// Health of the ingestion pipeline: queue depth, consumer lag, dead letters, last event per source, capture lease holder, data freshness.
    #[tool(
        title = "Pipeline status",
        input_schema = schema::input::<NoArgs>(),
        output_schema = schema::output::<PipelineStatus>(),
        annotations(
            title = "Pipeline status",
            read_only_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn get_pipeline_status(
        &self,
        ct: CancellationToken,
        Parameters(a): Parameters<NoArgs>,
    ) -> Result<Json<PipelineStatus>, String> {
        a?;
        // A handful of Redis round trips and indexed counts: abandoned (the future dropped)
        // rather than interrupted.
        tokio::select! {
            biased;
            () = ct.cancelled() => Err(CANCELLED.into()),
            r = pipeline_status(&self.state.db, self.state.queue.as_ref()) => r.map(Json).map_err(err),
        }
    }

    /// The Claude plan's 5-hour and 7-day windows now: tokens, cost, used percentage and reset time (`official` from the status line, else `estimate`), burn rate, projection.
    #[tool(
        title = "Usage windows",
        input_schema = schema::input::<NoArgs>(),
        output_schema = schema::output::<UsageWindow>(),
        annotations(
            title = "Usage windows",
            read_only_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn get_usage_window(
        &self,
        ct: CancellationToken,
        Parameters(a): Parameters<NoArgs>,
    ) -> Result<Json<UsageWindow>, String> {
        a?;
        let now = chrono::Utc::now().timestamp_millis();
        self.read(&ct, |c| query::usage::usage_window(c, now))
            .map(Json)
    }
}

/// The error of a call its client cancelled (nobody reads it: the client has moved on).
const CANCELLED: &str = "cancelled by the client";

/// Shown to clients that display a server's name (`serverInfo.title`).
pub const TITLE: &str = "Blueplane telemetry";

#[tool_handler]
impl rmcp::ServerHandler for Telemetry {
    /// rmcp's router, with an unknown tool refused (-32602) by a message naming the tools.
    async fn call_tool(
        &self,
        request: rmcp::model::CallToolRequestParams,
        context: rmcp::service::RequestContext<rmcp::RoleServer>,
    ) -> Result<rmcp::model::CallToolResponse, rmcp::ErrorData> {
        let router = Self::tool_router();
        if !router.has_route(&request.name) {
            let mut names: Vec<String> = router
                .list_all()
                .into_iter()
                .map(|t| t.name.to_string())
                .collect();
            names.sort();
            return Err(rmcp::ErrorData::invalid_params(
                format!(
                    "unknown tool '{}': the tools are {}",
                    request.name,
                    names.join(", ")
                ),
                None,
            ));
        }
        let cx = rmcp::handler::server::tool::ToolCallContext::new(self, request, context);
        router.call(cx).await
    }

    fn get_info(&self) -> rmcp::model::ServerConfig {
        rmcp::model::ServerConfig::new(
            rmcp::model::ServerCapabilities::builder()
                .enable_tools()
                .build(),
        )
        .with_server_info(
            rmcp::model::Implementation::new("blueplane", env!("CARGO_PKG_VERSION"))
                .with_title(TITLE),
        )
        .with_instructions(
            "Local telemetry of Claude Code and Cursor sessions on this machine: sessions, tokens, cost, tool use and errors, the 5-hour and 7-day usage windows, and full-text search over what was said. All tools are read-only.",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store with 20,000 tool calls: more SQLite steps than one progress interval.
    fn telemetry(dir: &std::path::Path) -> Telemetry {
        let db = dir.join("telemetry.db");
        let w = crate::store::open_writer(&db).unwrap();
        w.execute_batch(
            "INSERT INTO sessions (session_id, platform, started_at, ended_at)
                 VALUES ('s', 'claude_code', 1, 20001);
             INSERT INTO tool_calls (tool_use_id, session_id, platform, name, started_at, finished_at)
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
                 SELECT 't' || i, 's', 'claude_code', 'Bash' || (i % 7), i, i + 1 FROM n;",
        )
        .unwrap();
        crate::metrics::rollup::rebuild_all(&w).unwrap();
        drop(w);
        Telemetry::new(State {
            db: db.clone(),
            reader: crate::query::reader::Reader::new(&db),
            queue: None,
            privacy: PrivacyMode::default(),
        })
    }

    /// The token reaches SQLite: cancelled while a tool's query runs, the query stops with
    /// SQLITE_INTERRUPT instead of running to its end (the same `read` serves every tool).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_query_cancelled_while_it_runs_is_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let t = telemetry(dir.path());
        let f = Filter::default();
        let done = t.read(&CancellationToken::new(), |c| {
            query::tool_stats(c, &f, None)
        });
        assert_eq!(
            done.unwrap().tools.iter().map(|s| s.calls).sum::<i64>(),
            20_000
        );
        let ct = CancellationToken::new();
        let during = ct.clone();
        // One session's stats read its 20,000 calls (the overall stats read the rollups).
        let r = t.read(&ct, |c| {
            during.cancel();
            query::tool_stats(c, &f, Some("s"))
        });
        let e = r.err().unwrap_or_default();
        assert!(e.contains("interrupt"), "{e}");
    }

    /// Every tool takes the call's token: cancelled, none of them answers with data.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_tool_stops_when_its_call_is_cancelled() {
        let dir = tempfile::tempdir().unwrap();
        let t = telemetry(dir.path());
        let live = CancellationToken::new();
        let gone = CancellationToken::new();
        gone.cancel();
        let stats = || Parameters(Ok(ToolStatsArgs::default()));
        assert!(t.get_tool_stats(live.clone(), stats()).await.is_ok());
        let results: Vec<(&str, Result<(), String>)> = vec![
            (
                "list_sessions",
                t.list_sessions(
                    gone.clone(),
                    Parameters(schema::parse("t", Default::default())),
                )
                .await
                .map(|_| ()),
            ),
            (
                "get_session_summary",
                t.get_session_summary(
                    gone.clone(),
                    Parameters(Ok(SessionArgs {
                        session_id: "s".into(),
                    })),
                )
                .await
                .map(|_| ()),
            ),
            (
                "get_metrics",
                t.get_metrics(
                    gone.clone(),
                    Parameters(schema::parse("t", Default::default())),
                )
                .await
                .map(|_| ()),
            ),
            (
                "get_tool_stats",
                t.get_tool_stats(gone.clone(), stats()).await.map(|_| ()),
            ),
            (
                "get_pipeline_status",
                t.get_pipeline_status(gone.clone(), Parameters(Ok(NoArgs {})))
                    .await
                    .map(|_| ()),
            ),
            (
                "get_usage_window",
                t.get_usage_window(gone.clone(), Parameters(Ok(NoArgs {})))
                    .await
                    .map(|_| ()),
            ),
            (
                "search_conversations",
                t.search_conversations(
                    gone.clone(),
                    Parameters(schema::parse(
                        "t",
                        serde_json::json!({"query": "bash"})
                            .as_object()
                            .cloned()
                            .unwrap_or_default(),
                    )),
                )
                .await
                .map(|_| ()),
            ),
        ];
        for (tool, r) in results {
            assert_eq!(r, Err(CANCELLED.to_string()), "{tool}");
        }
    }
}
