//! Derivation of Cursor agent CLI transcript lines (kinds `transcript:user`,
//! `transcript:assistant`, `transcript:turn_ended`, `transcript:other`; session = the
//! conversation id directory name; lines of a sub-agent's file carry `subagent` and belong
//! to the parent's session under that agent id).
//!
//! Each user or assistant line that says something (text, or `textBytes` > 0 when the
//! privacy mode kept no text) is one message keyed by its event id (`ca:<cid>:<line>`,
//! stable: the files are append-only), with its FTS entry; a user line is a prompt. Entries
//! of `tools` (tool_use blocks: name, id, input metadata and size) are tool calls started at
//! the line's time; entries of `results` with an id finish them (error flag when given),
//! merged by id whatever their order. Transcripts carry no usage (formats.md C5): no tokens
//! and no estimates come from them. Every line widens its session (which merges with the
//! database and hook records of the same id). Called by `cursor::derive`.

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
    let agent = str_at(v, "subagent");
    round.touch_hooked(rec, session_id, None, true);
    round.cursor.insert(session_id.to_string());
    if let Some(a) = agent {
        round.touch_subagent(session_id, a, ts);
    }
    if role != "user" && role != "assistant" {
        return Ok(());
    }
    let text = str_at(v, "text").filter(|t| !t.trim().is_empty());
    let text_bytes = v.get("textBytes").and_then(Value::as_u64).unwrap_or(0);
    let keep = text.is_some() || text_bytes > 0;
    upsert_message(
        tx,
        &Msg {
            event_id: rec.event_id,
            session_id,
            agent_id: agent,
            platform: rec.platform,
            role,
            is_prompt: role == "user" && agent.is_none(),
            ts,
            model: str_at(v, "model"),
            text,
        },
        keep,
    )?;
    let list = |k: &str| -> &[Value] {
        v.get(k)
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    };
    for (i, t) in list("tools").iter().enumerate() {
        let id = str_at(t, "id").map_or_else(|| format!("{}:{i}", rec.event_id), str::to_string);
        let mut meta = serde_json::Map::new();
        if let Some(x) = t.get("input").filter(|x| x.is_object()) {
            meta.insert("input".into(), x.clone());
        }
        if let Some(b) = t.get("inputBytes").filter(|b| b.is_number()) {
            meta.insert("bytes".into(), b.clone());
        }
        let meta = (!meta.is_empty()).then(|| Value::Object(meta).to_string());
        let row: Option<i64> = tx
            .prepare_cached(
                "INSERT INTO tool_calls (tool_use_id, session_id, agent_id, platform, name, started_at, input_meta)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (tool_use_id) DO UPDATE SET
                   name = coalesce(name, excluded.name),
                   agent_id = coalesce(agent_id, excluded.agent_id),
                   started_at = min(coalesce(started_at, excluded.started_at), excluded.started_at),
                   input_meta = coalesce(input_meta, excluded.input_meta)
                 RETURNING coalesce(started_at, finished_at)",
            )?
            .query_row(
                params![id, session_id, agent, rec.platform, str_at(t, "name"), ts, meta],
                |r| r.get(0),
            )?;
        round.dirty.extend(row.map(bucket_of));
        round.dirty.insert(bucket_of(ts));
    }
    for t in list("results") {
        // A result without an id (legacy `.txt` transcripts) pairs with nothing.
        let Some(id) = str_at(t, "id") else {
            continue;
        };
        let is_error = t.get("isError").and_then(Value::as_bool).unwrap_or(false);
        let meta = t
            .get("bytes")
            .filter(|b| b.is_number())
            .map(|b| serde_json::json!({ "bytes": b }).to_string());
        let before: Option<i64> = tx
            .prepare_cached(
                "SELECT coalesce(started_at, finished_at) FROM tool_calls WHERE tool_use_id = ?1",
            )?
            .query_row([id], |r| r.get(0))
            .ok()
            .flatten();
        let row: Option<i64> = tx
            .prepare_cached(
                "INSERT INTO tool_calls (tool_use_id, session_id, agent_id, platform, finished_at, is_error, result_meta)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (tool_use_id) DO UPDATE SET
                   finished_at = min(coalesce(finished_at, excluded.finished_at), excluded.finished_at),
                   is_error = max(coalesce(is_error, 0), excluded.is_error),
                   result_meta = coalesce(result_meta, excluded.result_meta)
                 RETURNING coalesce(started_at, finished_at)",
            )?
            .query_row(
                params![id, session_id, agent, rec.platform, ts, is_error, meta],
                |r| r.get(0),
            )?;
        round
            .dirty
            .extend(row.into_iter().chain(before).map(bucket_of));
        round.dirty.insert(bucket_of(ts));
    }
    Ok(())
}
