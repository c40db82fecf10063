//! Derivation of Cursor agent CLI transcript lines (kinds `transcript:user`,
//! `transcript:assistant`, `transcript:turn_ended`, `transcript:other`; session = the
//! conversation id directory name, sub-agent files under their parent's id).
//!
//! Each user or assistant line is one message keyed by its event id (`ca:<cid>:<line>`,
//! stable: the files are append-only), inserted once with its FTS entry. Tools named by an
//! assistant line are tool calls (`tool_use_id` = the tool's id, else `<event id>:<index>`,
//! started at the line's time); tools named by a user line are their results (finished at
//! the line's time, error flag when given), merged by id whatever their order. Transcripts
//! carry no usage (formats.md C5): no tokens and no estimates come from them. Every line
//! widens its session (which merges with the database and hook records of the same id).
//! Called by `cursor::derive`.

use rusqlite::{Transaction, params};
use serde_json::Value;

use super::claude::Round;
use super::cursor::{Msg, str_at, upsert_message};
use super::{DeriveError, Record};
use crate::metrics::bucket_of;

/// Derives one transcript line.
///
/// # Errors
/// SQLite errors.
pub fn derive(
    tx: &Transaction<'_>,
    rec: &Record<'_>,
    round: &mut Round,
) -> Result<(), DeriveError> {
    let v = rec.value;
    let (Some(session_id), Some(ts)) = (rec.session_id, rec.ts) else {
        return Ok(());
    };
    let role = rec.kind.strip_prefix("transcript:").unwrap_or("other");
    round.touch_hooked(rec, session_id, None, true);
    round.cursor.insert(session_id.to_string());
    if role != "user" && role != "assistant" {
        return Ok(());
    }
    let text = str_at(v, "text").filter(|t| !t.trim().is_empty());
    let tools: &[Value] = v
        .get("tools")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    // A user line that only returns tool results is no prompt.
    let keep = text.is_some() || (role == "user" && tools.is_empty());
    upsert_message(
        tx,
        &Msg {
            event_id: rec.event_id,
            session_id,
            platform: rec.platform,
            role,
            is_prompt: role == "user",
            ts,
            model: str_at(v, "model"),
            text,
        },
        keep,
    )?;
    for (i, t) in tools.iter().enumerate() {
        let id = str_at(t, "id").map_or_else(|| format!("{}:{i}", rec.event_id), str::to_string);
        let bytes = t
            .get("inputBytes")
            .or_else(|| t.get("bytes"))
            .filter(|b| b.is_number())
            .map(|b| serde_json::json!({ "bytes": b }).to_string());
        let row: Option<i64> = if role == "assistant" {
            tx.prepare_cached(
                "INSERT INTO tool_calls (tool_use_id, session_id, platform, name, started_at, input_meta)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (tool_use_id) DO UPDATE SET
                   name = coalesce(name, excluded.name),
                   started_at = min(coalesce(started_at, excluded.started_at), excluded.started_at),
                   input_meta = coalesce(input_meta, excluded.input_meta)
                 RETURNING coalesce(started_at, finished_at)",
            )?
            .query_row(
                params![id, session_id, rec.platform, str_at(t, "name"), ts, bytes],
                |r| r.get(0),
            )?
        } else {
            let is_error = t
                .get("isError")
                .or_else(|| t.get("is_error"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            tx.prepare_cached(
                "INSERT INTO tool_calls (tool_use_id, session_id, platform, finished_at, is_error, result_meta)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (tool_use_id) DO UPDATE SET
                   finished_at = min(coalesce(finished_at, excluded.finished_at), excluded.finished_at),
                   is_error = max(coalesce(is_error, 0), excluded.is_error),
                   result_meta = coalesce(result_meta, excluded.result_meta)
                 RETURNING coalesce(started_at, finished_at)",
            )?
            .query_row(
                params![id, session_id, rec.platform, ts, is_error, bytes],
                |r| r.get(0),
            )?
        };
        round.dirty.extend(row.map(bucket_of));
        round.dirty.insert(bucket_of(ts));
    }
    Ok(())
}
