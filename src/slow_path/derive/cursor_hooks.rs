//! Derivation of Cursor hook payloads (kind `hook`, `Platform::Cursor`, session =
//! `conversation_id`): the `hook_events` timeline, tool-call enrichment, session activity
//! and lifecycle, and the `stop` hook's token fields.
//!
//! Every payload becomes one `hook_events` row keyed by its event id. Tool events that name
//! a `tool_use_id` (`preToolUse`, `postToolUse`, `postToolUseFailure`, and
//! `afterShellExecution` / `afterMCPExecution` when they carry one) enrich that tool call in
//! the hook columns only (start = the earliest of both accounts, Cursor's duration, failure),
//! so the merge with the bubble's account does not depend on which comes first. Events
//! without a `tool_use_id` stay in the timeline only (counting them as tool calls would count
//! the bubble's call twice). `sessionStart`/`sessionEnd` only settle a session's start
//! source and end reason (`cursor::finish`); every other event means the session ran. A
//! `stop` payload's token fields are kept in `cursor_stop_tokens` (validated: out-of-range
//! counts reject the record) and become an `api_responses` row with `token_source = 'hook'`
//! when the round's Cursor rows are recomputed. Called by `cursor::derive`.

use rusqlite::{Transaction, params};
use serde_json::{Map, Value};

use super::claude::Round;
use super::cursor::{str_at, token_field};
use super::{DeriveError, Record};
use crate::metrics::bucket_of;

/// Facts of an event kept in `hook_events.detail` (already privacy-filtered at capture).
const DETAIL_KEYS: &[&str] = &[
    "model",
    "status",
    "loop_count",
    "duration",
    "duration_ms",
    "reason",
    "final_status",
    "composer_mode",
    "is_background_agent",
    "source",
    "trigger",
    "context_usage_percent",
    "context_tokens",
    "context_window_size",
    "message_count",
    "subagent_type",
    "file_path",
    "error_summary",
    "command",
    "cursor_version",
    "generation_id",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "bpSizes",
];

/// Events that only describe the session's lifecycle (they do not make a session).
const LIFECYCLE: &[&str] = &["sessionStart", "sessionEnd"];

/// Derives one Cursor hook payload.
///
/// # Errors
/// [`DeriveError::Reject`] for out-of-range token fields of a `stop` payload (nothing
/// written); SQLite errors.
pub fn derive(
    tx: &Transaction<'_>,
    rec: &Record<'_>,
    round: &mut Round,
) -> Result<(), DeriveError> {
    let v = rec.value;
    let (Some(session_id), Some(ts)) = (
        rec.session_id.or_else(|| str_at(v, "conversation_id")),
        rec.ts,
    ) else {
        return Ok(());
    };
    let event = str_at(v, "hook_event_name").unwrap_or("unknown");
    // Validated before anything is written.
    let stop = if event == "stop" {
        let input = token_field(v, "input_tokens", "stop")?;
        let output = token_field(v, "output_tokens", "stop")?;
        let read = token_field(v, "cache_read_tokens", "stop")?;
        let write = token_field(v, "cache_write_tokens", "stop")?;
        (input + output + read + write > 0).then_some((input, output, read, write))
    } else {
        None
    };
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
         VALUES (?1, ?2, ?3, NULL, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (event_id) DO NOTHING",
    )?
    .execute(params![
        rec.event_id,
        session_id,
        rec.platform,
        ts,
        event,
        str_at(v, "generation_id"),
        tool_use_id,
        tool_name,
        detail
    ])?;
    let cwd = str_at(v, "cwd").or_else(|| {
        v.get("workspace_roots")
            .and_then(Value::as_array)
            .and_then(|r| r.iter().find_map(Value::as_str))
            .filter(|s| !s.is_empty())
    });
    round.touch_hooked(rec, session_id, cwd, !LIFECYCLE.contains(&event));
    round.cursor.insert(session_id.to_string());
    if let Some(id) = tool_use_id {
        enrich_tool_call(tx, rec, session_id, id, event, ts, cwd, round)?;
    }
    if let Some((input, output, read, write)) = stop {
        let generation = str_at(v, "generation_id").unwrap_or(rec.event_id);
        tx.prepare_cached(
            "INSERT OR REPLACE INTO cursor_stop_tokens
               (key, session_id, event_id, ts, model, input_tokens, output_tokens,
                cache_read_tokens, cache_write_tokens)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            format!("cu:{session_id}:{generation}"),
            session_id,
            rec.event_id,
            ts,
            str_at(v, "model"),
            input as i64,
            output as i64,
            read as i64,
            write as i64
        ])?;
    }
    Ok(())
}

/// What a Cursor tool event adds to its tool call (hook columns only).
#[allow(clippy::too_many_arguments)]
fn enrich_tool_call(
    tx: &Transaction<'_>,
    rec: &Record<'_>,
    session_id: &str,
    tool_use_id: &str,
    event: &str,
    ts: i64,
    cwd: Option<&str>,
    round: &mut Round,
) -> rusqlite::Result<()> {
    let v = rec.value;
    let duration = v
        .get("duration_ms")
        .or_else(|| v.get("duration"))
        .and_then(Value::as_f64)
        .filter(|d| d.is_finite() && *d >= 0.0 && *d < 1e12)
        .map(|d| d as i64);
    let (started, failed) = match event {
        "preToolUse" => (Some(ts), None),
        "postToolUse" | "afterShellExecution" | "afterMCPExecution" => (None, Some(0)),
        "postToolUseFailure" => (None, Some(1)),
        _ => (None, None),
    };
    let row: Option<i64> = tx
        .prepare_cached(
            "INSERT INTO tool_calls (tool_use_id, session_id, agent_id, platform, project_path, name,
                                     started_at, hook_duration_ms, hook_failed)
             VALUES (?1, ?2, NULL, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (tool_use_id) DO UPDATE SET
               name = coalesce(name, excluded.name),
               project_path = coalesce(project_path, excluded.project_path),
               started_at = CASE WHEN excluded.started_at IS NULL THEN started_at
                                 ELSE min(coalesce(started_at, excluded.started_at), excluded.started_at) END,
               hook_duration_ms = coalesce(max(hook_duration_ms, excluded.hook_duration_ms),
                                           hook_duration_ms, excluded.hook_duration_ms),
               hook_failed = coalesce(max(hook_failed, excluded.hook_failed), hook_failed, excluded.hook_failed)
             RETURNING coalesce(started_at, finished_at)",
        )?
        .query_row(
            params![
                tool_use_id,
                session_id,
                rec.platform,
                cwd,
                str_at(v, "tool_name"),
                started,
                duration,
                failed
            ],
            |r| r.get(0),
        )?;
    round.dirty.extend(row.map(bucket_of));
    round.dirty.insert(bucket_of(ts));
    Ok(())
}
