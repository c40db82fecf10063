//! The MCP server: read-only tools, a thin adapter over `query`.
//!
//! Transport-agnostic: [`Telemetry`] is an rmcp `ServerHandler`; `serve` runs it over stdio
//! and [`http`] serves the same handler over Streamable HTTP. Tool failures are tool results with
//! `isError: true` and a message an assistant can act on; they never carry
//! `structuredContent` of another shape (invariant 2, 10).

pub mod http;

use std::path::PathBuf;
use std::sync::Arc;

use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::privacy::PrivacyMode;
use crate::query::status::{PipelineStatus, pipeline_status};
use crate::query::time::{GroupBy, Tz};
use crate::query::usage::UsageWindow;
use crate::query::{
    self, Filter, Metrics, QueryError, SearchResult, SessionList, SessionSummary, ToolStats,
};
use crate::queue::Queue;

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

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ListSessionsArgs {
    /// Only sessions active at or after this ISO date or date-time.
    pub since: Option<String>,
    /// Only sessions active before the end of this ISO date (or before this date-time).
    pub until: Option<String>,
    /// `claude_code` or `cursor`.
    pub platform: Option<String>,
    /// Substring of the project path.
    pub project: Option<String>,
    /// Page size, 1-500 (default 50).
    #[serde(default, deserialize_with = "limit")]
    #[schemars(with = "Option<i64>")]
    pub limit: Option<i64>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SessionArgs {
    /// A session id from list_sessions.
    pub session_id: String,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct MetricsArgs {
    /// day (default), week, month, model, project, platform or session.
    pub group_by: Option<String>,
    /// IANA time zone for day/week/month boundaries (default: the machine's zone).
    pub timezone: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub platform: Option<String>,
    pub project: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct SearchArgs {
    /// Words and "quoted phrases"; OR and NOT work; word* matches a prefix.
    pub query: String,
    pub since: Option<String>,
    pub until: Option<String>,
    pub platform: Option<String>,
    pub project: Option<String>,
    /// Page size, 1-500 (default 20).
    #[serde(default, deserialize_with = "limit")]
    #[schemars(with = "Option<i64>")]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ToolStatsArgs {
    pub since: Option<String>,
    pub until: Option<String>,
    pub platform: Option<String>,
    pub project: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct NoArgs {}

/// `limit` as a number, a numeric string or null; anything else is refused with the fix.
fn limit<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) if n.is_i64() => Ok(n.as_i64()),
        Some(serde_json::Value::String(s)) if s.trim().parse::<i64>().is_ok() => {
            Ok(s.trim().parse().ok())
        }
        Some(other) => Err(serde::de::Error::custom(format!(
            "limit must be a whole number from 1 to 500, not {other}"
        ))),
    }
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

    /// Runs `f` on a pooled read-only connection, off the async worker.
    fn read<T>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> Result<T, QueryError>,
    ) -> Result<T, String> {
        tokio::task::block_in_place(|| self.state.reader.with(f).map_err(err))
    }
}

#[tool_router]
impl Telemetry {
    /// List coding-assistant sessions (most recent first) with tokens, cost, prompts, tool calls and errors.
    #[tool(annotations(
        title = "List sessions",
        read_only_hint = true,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    pub async fn list_sessions(
        &self,
        Parameters(a): Parameters<ListSessionsArgs>,
    ) -> Result<Json<SessionList>, String> {
        let tz = Tz::local();
        let f = Filter::parse(
            &tz,
            a.since.as_deref(),
            a.until.as_deref(),
            a.platform,
            a.project,
        )
        .map_err(err)?;
        self.read(|c| query::list_sessions(c, &f, a.limit, a.cursor.as_deref()))
            .map(Json)
    }

    /// One session in detail: totals, tools with error counts and durations, failed tool calls, sub-agents, first prompt, and (from hooks) how it started and ended, compactions, permissions; `reported_cost_usd` is Claude Code's own cost, `unattributed_cost_usd` what compaction and other unrecorded calls cost.
    #[tool(annotations(
        title = "Session summary",
        read_only_hint = true,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    pub async fn get_session_summary(
        &self,
        Parameters(a): Parameters<SessionArgs>,
    ) -> Result<Json<SessionSummary>, String> {
        self.read(|c| query::session_summary(c, &a.session_id))
            .map(Json)
    }

    /// Tokens, cost (USD), sessions, responses and tool calls grouped by day, week (Monday), month, model, project, platform or session; `reported_cost_usd` / `unattributed_cost_usd` where Claude Code reported its own cost.
    #[tool(annotations(
        title = "Usage metrics",
        read_only_hint = true,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    pub async fn get_metrics(
        &self,
        Parameters(a): Parameters<MetricsArgs>,
    ) -> Result<Json<Metrics>, String> {
        let tz = Tz::parse(a.timezone.as_deref()).map_err(err)?;
        let group_by = GroupBy::parse(a.group_by.as_deref().unwrap_or("day")).map_err(err)?;
        let f = Filter::parse(
            &tz,
            a.since.as_deref(),
            a.until.as_deref(),
            a.platform,
            a.project,
        )
        .map_err(err)?;
        f.check().map_err(err)?;
        let buckets = match self.state.queue.as_ref() {
            Some(q) => match query::metric_buckets(&mut q.conn(), &f, group_by).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "Redis metrics unavailable; computing from SQLite");
                    None
                }
            },
            None => None,
        };
        self.read(|c| query::get_metrics(c, buckets, &f, group_by, &tz))
            .map(Json)
    }

    /// Full-text search over prompts and assistant prose; most relevant first.
    #[tool(annotations(
        title = "Search conversations",
        read_only_hint = true,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    pub async fn search_conversations(
        &self,
        Parameters(a): Parameters<SearchArgs>,
    ) -> Result<Json<SearchResult>, String> {
        let tz = Tz::local();
        let f = Filter::parse(
            &tz,
            a.since.as_deref(),
            a.until.as_deref(),
            a.platform,
            a.project,
        )
        .map_err(err)?;
        let privacy = self.state.privacy;
        self.read(|c| query::search(c, &a.query, &f, a.limit, a.cursor.as_deref(), privacy))
            .map(Json)
    }

    /// Calls, errors and error rate per tool (Bash, Edit, MCP tools, ...), most used first.
    #[tool(annotations(
        title = "Tool statistics",
        read_only_hint = true,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    pub async fn get_tool_stats(
        &self,
        Parameters(a): Parameters<ToolStatsArgs>,
    ) -> Result<Json<ToolStats>, String> {
        let tz = Tz::local();
        let f = Filter::parse(
            &tz,
            a.since.as_deref(),
            a.until.as_deref(),
            a.platform,
            a.project,
        )
        .map_err(err)?;
        self.read(|c| query::tool_stats(c, &f)).map(Json)
    }

    /// Health of the ingestion pipeline: queue depth, consumer lag, dead letters, last event per source, capture lease holder, data freshness.
    #[tool(annotations(
        title = "Pipeline status",
        read_only_hint = true,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    pub async fn get_pipeline_status(
        &self,
        Parameters(_a): Parameters<NoArgs>,
    ) -> Result<Json<PipelineStatus>, String> {
        pipeline_status(&self.state.db, self.state.queue.as_ref())
            .await
            .map(Json)
            .map_err(err)
    }

    /// The Claude plan's usage windows now: the current 5-hour block and the 7-day window, each with tokens and cost used, the official used percentage and reset time when the status line captured them (`source: official`, with the sample's age) or an estimate from tokens (`source: estimate`), burn rate and projection to the reset.
    #[tool(annotations(
        title = "Usage windows",
        read_only_hint = true,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    pub async fn get_usage_window(
        &self,
        Parameters(_a): Parameters<NoArgs>,
    ) -> Result<Json<UsageWindow>, String> {
        let now = chrono::Utc::now().timestamp_millis();
        self.read(|c| query::usage::usage_window(c, now)).map(Json)
    }
}

#[tool_handler(
    name = "blueplane",
    version = "0.1.0",
    instructions = "Local telemetry of Claude Code and Cursor sessions on this machine: sessions, tokens, cost, tool use and errors, the 5-hour and 7-day usage windows, and full-text search over what was said. All tools are read-only."
)]
impl rmcp::ServerHandler for Telemetry {}
