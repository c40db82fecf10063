//! Derivation of hook and status-line payloads (kinds `hook` and `statusline`) into the
//! session timeline, merged with what the transcript says.
//!
//! Every hook payload becomes one `hook_events` row (keyed by its event id). Tool events
//! also enrich the tool call they name (`tool_use_id`): Claude Code's own duration, the MCP
//! server, permission requests and denials, failures and interrupts — in columns of their
//! own, so the transcript's account of the call is never overwritten and the merge does not
//! depend on which arrives first (the start time is the earliest of both). Hooks never carry
//! token counts, so no hook ever adds to usage (invariant 4). Status-line payloads give
//! Claude Code's running session cost (`cost_states`) and the official plan-limit windows
//! (`usage_samples`).

use rusqlite::{Transaction, params};
use serde_json::{Map, Value};

use super::Record;
use super::claude::Round;
use crate::metrics::bucket_of;
use crate::pricing::usd_to_pusd;

/// Facts of an event kept in `hook_events.detail` (already privacy-filtered at capture).
const DETAIL_KEYS: &[&str] = &[
    "source",
    "reason",
    "trigger",
    "notification_type",
    "from_model",
    "to_model",
    "requested_model",
    "model",
    "context_tokens",
    "estimated_cache_write_usd",
    "prompt_cache_warm",
    "duration_ms",
    "is_interrupt",
    "error_summary",
    "stop_hook_active",
    "agent_type",
    "agent_transcript_path",
    "task_id",
    "file_path",
    "memory_type",
    "load_reason",
    "new_cwd",
    "expansion_type",
    "command_name",
    "mcp_server",
    "permission_mode",
    "message",
    "bpSizes",
];

/// Events that mean a session really ran (others, like SessionStart/End or ConfigChange,
/// only add to a session that exists).
const ACTIVITY: &[&str] = &[
    "UserPromptSubmit",
    "PreToolUse",
    "PostToolUse",
    "PostToolUseFailure",
    "Stop",
    "StopFailure",
    "SubagentStart",
    "SubagentStop",
    "PreCompact",
    "PostCompact",
    "Notification",
    "MessageDisplay",
    "PermissionRequest",
    "PermissionDenied",
    "TaskCreated",
    "TaskCompleted",
];

fn str_at<'v>(v: &'v Value, k: &str) -> Option<&'v str> {
    v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Derives one hook payload of a session.
///
/// # Errors
/// SQLite errors.
pub fn derive_hook(
    tx: &Transaction<'_>,
    rec: &Record<'_>,
    session_id: &str,
    ts: i64,
    round: &mut Round,
) -> rusqlite::Result<()> {
    let v = rec.value;
    let event = str_at(v, "hook_event_name").unwrap_or("unknown");
    let agent_id = str_at(v, "agent_id");
    let tool_use_id = str_at(v, "tool_use_id");
    let tool_name = str_at(v, "tool_name");
    let mut detail = Map::new();
    for k in DETAIL_KEYS {
        if let Some(x) = v.get(*k).filter(|x| !x.is_null()) {
            detail.insert((*k).to_string(), x.clone());
        }
    }
    let detail = (!detail.is_empty()).then(|| Value::Object(detail).to_string());
    tx.prepare_cached(
        "INSERT INTO hook_events (event_id, session_id, platform, agent_id, ts, event, prompt_id,
                                  tool_use_id, tool_name, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (event_id) DO NOTHING",
    )?
    .execute(params![
        rec.event_id,
        session_id,
        rec.platform,
        agent_id,
        ts,
        event,
        str_at(v, "prompt_id"),
        tool_use_id,
        tool_name,
        detail
    ])?;
    // Lifecycle events alone (`claude mcp list` fires a SessionEnd for a session that never
    // ran) do not make a session; activity does. Either way the event is in the timeline,
    // and a session's start source and end reason are settled whenever it is touched.
    let active =
        tool_use_id.is_some() || str_at(v, "prompt_id").is_some() || ACTIVITY.contains(&event);
    round.touch_hooked(rec, session_id, str_at(v, "cwd"), active);
    if let Some(a) = agent_id {
        round.touch_subagent(session_id, a, ts);
        // The transcript does not name a sub-agent's type; SubagentStart/Stop do.
        if let Some(t) = str_at(v, "agent_type") {
            tx.prepare_cached(
                "INSERT INTO subagents (session_id, agent_id, agent_type, started_at, ended_at)
                 VALUES (?1, ?2, ?3, ?4, ?4)
                 ON CONFLICT (session_id, agent_id) DO UPDATE SET
                   agent_type = coalesce(max(agent_type, excluded.agent_type), agent_type, excluded.agent_type)",
            )?
            .execute(params![session_id, a, t, ts])?;
        }
    }
    if let Some(id) = tool_use_id {
        enrich_tool_call(tx, rec, session_id, agent_id, id, event, ts, round)?;
    }
    Ok(())
}

/// What a tool event adds to its tool call.
#[allow(clippy::too_many_arguments)]
fn enrich_tool_call(
    tx: &Transaction<'_>,
    rec: &Record<'_>,
    session_id: &str,
    agent_id: Option<&str>,
    tool_use_id: &str,
    event: &str,
    ts: i64,
    round: &mut Round,
) -> rusqlite::Result<()> {
    let v = rec.value;
    let name = str_at(v, "tool_name");
    let mcp_server = v
        .get("mcp_server")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .or_else(|| {
            // `mcp__<server>__<tool>` when the payload has no `mcp_server`.
            name.and_then(|n| n.strip_prefix("mcp__"))
                .and_then(|r| r.split_once("__"))
                .map(|(s, _)| s)
        });
    let duration = v.get("duration_ms").and_then(Value::as_i64);
    let (started, failed, interrupt, permission) = match event {
        "PreToolUse" => (Some(ts), None, None, None),
        "PostToolUse" => (None, Some(0), None, None),
        "PostToolUseFailure" => (
            None,
            Some(1),
            Some(i64::from(
                v.get("is_interrupt")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            )),
            None,
        ),
        "PermissionRequest" => (None, None, None, Some("requested")),
        "PermissionDenied" => (None, None, None, Some("denied")),
        _ => (None, None, None, None),
    };
    let project = str_at(v, "cwd");
    let row: Option<i64> = tx
        .prepare_cached(
            "INSERT INTO tool_calls (tool_use_id, session_id, agent_id, platform, project_path, name,
                                     started_at, hook_duration_ms, mcp_server, hook_failed,
                                     is_interrupt, permission)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT (tool_use_id) DO UPDATE SET
               name = coalesce(name, excluded.name),
               project_path = coalesce(project_path, excluded.project_path),
               started_at = CASE WHEN excluded.started_at IS NULL THEN started_at
                                 ELSE min(coalesce(started_at, excluded.started_at), excluded.started_at) END,
               hook_duration_ms = coalesce(max(hook_duration_ms, excluded.hook_duration_ms),
                                           hook_duration_ms, excluded.hook_duration_ms),
               mcp_server = coalesce(mcp_server, excluded.mcp_server),
               hook_failed = coalesce(max(hook_failed, excluded.hook_failed), hook_failed, excluded.hook_failed),
               is_interrupt = coalesce(max(is_interrupt, excluded.is_interrupt), is_interrupt, excluded.is_interrupt),
               permission = CASE WHEN permission = 'denied' OR excluded.permission = 'denied' THEN 'denied'
                                 ELSE coalesce(permission, excluded.permission) END
             RETURNING coalesce(started_at, finished_at)",
        )?
        .query_row(
            params![
                tool_use_id,
                session_id,
                agent_id,
                rec.platform,
                project,
                name,
                started,
                duration,
                mcp_server,
                failed,
                interrupt,
                permission
            ],
            |r| r.get(0),
        )?;
    // Counts and failures of tool calls live in the bucket of the call's start.
    round.dirty.extend(row.map(bucket_of));
    round.dirty.insert(bucket_of(ts));
    Ok(())
}

/// One running cost figure as Claude Code reported it.
#[derive(Debug, Clone, Copy)]
pub struct CostFigure<'v> {
    pub total_usd: f64,
    pub has_unknown: bool,
    /// `modelUsage`: token counts and `costUSD` per model.
    pub model_usage: Option<&'v Value>,
}

/// Claude Code's running cost of a session (`cost-state` records and the status line).
///
/// # Errors
/// SQLite errors.
pub fn record_cost(
    tx: &Transaction<'_>,
    session_id: &str,
    ts: i64,
    origin: &str,
    figure: CostFigure<'_>,
    round: &mut Round,
) -> rusqlite::Result<()> {
    let CostFigure {
        total_usd,
        has_unknown,
        model_usage,
    } = figure;
    let Some(total) = usd_to_pusd(total_usd) else {
        return Ok(());
    };
    tx.prepare_cached(
        "INSERT INTO cost_states (session_id, ts, total_pusd, origin, has_unknown_model_cost, model_usage)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (session_id, ts, origin) DO UPDATE SET
           total_pusd = max(total_pusd, excluded.total_pusd),
           has_unknown_model_cost = max(has_unknown_model_cost, excluded.has_unknown_model_cost),
           model_usage = CASE WHEN excluded.total_pusd >= total_pusd
                              THEN coalesce(excluded.model_usage, model_usage) ELSE model_usage END",
    )?
    .execute(params![
        session_id,
        ts,
        total,
        origin,
        i64::from(has_unknown),
        model_usage.map(Value::to_string)
    ])?;
    round.dirty.insert(bucket_of(ts));
    Ok(())
}

/// Derives one status-line payload: the session's cost as Claude Code counts it, and the
/// official 5-hour and 7-day windows when the payload has them.
///
/// # Errors
/// SQLite errors.
pub fn derive_statusline(
    tx: &Transaction<'_>,
    rec: &Record<'_>,
    session_id: Option<&str>,
    ts: i64,
    round: &mut Round,
) -> rusqlite::Result<()> {
    let v = rec.value;
    if let (Some(s), Some(c)) = (
        session_id,
        v.get("cost")
            .and_then(|c| c.get("total_cost_usd"))
            .and_then(Value::as_f64),
    ) {
        let figure = CostFigure {
            total_usd: c,
            has_unknown: false,
            model_usage: None,
        };
        record_cost(tx, s, ts, "statusline", figure, round)?;
    }
    let window = |name: &str| {
        let w = v.get("rate_limits").and_then(|r| r.get(name));
        let pct = w
            .and_then(|w| w.get("used_percentage"))
            .and_then(Value::as_f64)
            .filter(|p| p.is_finite());
        // `resets_at` is in epoch seconds.
        let resets = w
            .and_then(|w| w.get("resets_at"))
            .and_then(Value::as_f64)
            .filter(|r| r.is_finite() && *r > 0.0 && *r < 1e11)
            .map(|r| (r * 1000.0) as i64);
        (pct, resets)
    };
    let (five, five_at) = window("five_hour");
    let (seven, seven_at) = window("seven_day");
    if five.is_some() || seven.is_some() {
        tx.prepare_cached(
            "INSERT INTO usage_samples (event_id, session_id, ts, five_hour_pct, five_hour_resets_at,
                                        seven_day_pct, seven_day_resets_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (event_id) DO NOTHING",
        )?
        .execute(params![
            rec.event_id,
            session_id,
            ts,
            five,
            five_at,
            seven,
            seven_at
        ])?;
    }
    Ok(())
}

/// The figures of a transcript's `cost-state` record.
pub fn cost_state_of(v: &Value) -> Option<CostFigure<'_>> {
    Some(CostFigure {
        total_usd: v.get("totalCostUSD").and_then(Value::as_f64)?,
        has_unknown: v
            .get("hasUnknownModelCost")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        model_usage: v.get("modelUsage").filter(|m| m.is_object()),
    })
}

/// When a `cost-state` figure was written, for lines without a `timestamp` (Claude Code
/// 2.1.328 writes none): `startTime` (epoch ms) + `totalDuration` (ms).
pub fn cost_state_time(v: &Value) -> Option<i64> {
    let start = v.get("startTime").and_then(Value::as_i64)?;
    let elapsed = v.get("totalDuration").and_then(Value::as_i64).unwrap_or(0);
    (start > 0 && elapsed >= 0).then(|| start.saturating_add(elapsed))
}

/// How a session started and ended, from its first `SessionStart` and last `SessionEnd`.
///
/// # Errors
/// SQLite errors.
pub fn settle_session(tx: &Transaction<'_>, session_id: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE sessions SET
           start_source = (SELECT detail ->> '$.source' FROM hook_events
                           WHERE session_id = ?1 AND event = 'SessionStart'
                           ORDER BY ts, event_id LIMIT 1),
           end_reason = (SELECT detail ->> '$.reason' FROM hook_events
                         WHERE session_id = ?1 AND event = 'SessionEnd'
                         ORDER BY ts DESC, event_id DESC LIMIT 1)
         WHERE session_id = ?1",
    )?
    .execute([session_id])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cost_state_figures() {
        let v =
            json!({"totalCostUSD": 0.17, "hasUnknownModelCost": false, "modelUsage": {"m": {}}});
        let f = cost_state_of(&v).unwrap();
        assert!((f.total_usd - 0.17).abs() < 1e-12 && !f.has_unknown && f.model_usage.is_some());
        assert!(cost_state_of(&json!({})).is_none());
        assert_eq!(
            cost_state_time(&json!({"startTime": 1_000, "totalDuration": 250})),
            Some(1_250)
        );
        assert_eq!(cost_state_time(&json!({"totalDuration": 250})), None);
    }
}
