//! Derivation of Cursor records (`Platform::Cursor`): composers, bubbles and workspace
//! listings from Cursor's `state.vscdb`, plus the dispatch of hook payloads
//! ([`super::cursor_hooks`]) and agent CLI transcript lines ([`super::cursor_agent`]).
//!
//! Cursor rewrites a bubble in place while it streams, so one bubble arrives as several
//! records (content versions). Invariant: the rows derived from a database key are those of
//! its newest version by `raw_traces.seq` (`cursor_versions`), whatever order the versions
//! and the other records come in — an older version arriving later is ignored, a newer one
//! replaces what the older one wrote (message text and its FTS entry, tool call, facts).
//! Per record, [`derive`] writes messages and tool calls (upserts) and keeps the facts of the
//! newest version (`cursor_composers`, `cursor_bubbles`, `cursor_workspaces`,
//! `cursor_stop_tokens`); at the end of the round, [`finish`] recomputes, for every composer
//! touched, the rows that depend on several records — the session (times, title, project,
//! branch, first prompt, hook lifecycle), sub-composer links, measured token rows
//! (`api_responses` with `token_source` `cursor` or `hook`) and estimates
//! (`token_estimates`) — from those facts alone, so they cannot depend on record order.
//!
//! Tokens: a bubble's `tokenCount` with a non-zero count is a measured response keyed
//! `cu:<cid>:<requestId or bid>` (copies under one key: the largest total wins); a `stop`
//! hook's token fields are keyed `cu:<conversation_id>:<generation_id>` and merge with a
//! bubble row of the same key (largest total); a composer's `usageData` counts only when it
//! holds token numbers (`inputTokens`/`outputTokens`) and no bubble of the composer has
//! counts. An assistant turn (a user bubble and the assistant bubbles up to the next user
//! bubble, in `headers` order) with no measured count gets an estimate ([`estimate_tokens`]).
//!
//! Other choices: a workspace listing never creates a session (it only gives the project of
//! the composers it lists, whichever comes first); a sub-composer is a session of its own
//! (its own composer and bubbles) plus a `subagents` row `(parent, child)` under its parent,
//! and takes the parent's project when it has none; `agent_blob` records derive nothing (no
//! composer, time or usage); a bubble without any time writes its facts but no message.
//! Called by the slow path through [`super::DERIVERS`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rusqlite::{OptionalExtension, Transaction, params};
use serde_json::Value;

use super::claude::{MAX_TOKENS_PER_RESPONSE, Round};
use super::{DeriveError, Deriver, Record, cursor_agent, cursor_hooks};
use crate::event::Platform;
use crate::metrics::bucket_of;
use crate::pricing::{TokenUsage, cursor as prices};

/// The Cursor deriver.
pub struct Cursor;

impl Deriver for Cursor {
    fn platform(&self) -> Platform {
        Platform::Cursor
    }

    /// 1: first release (composers, bubbles, workspaces, hooks, agent transcripts).
    fn derive_version(&self) -> i64 {
        1
    }

    fn derive(
        &self,
        tx: &Transaction<'_>,
        rec: &Record<'_>,
        round: &mut Round,
    ) -> Result<(), DeriveError> {
        derive(tx, rec, round)
    }
}

/// Characters (bytes of UTF-8 text) per estimated token.
pub const BYTES_PER_TOKEN: u64 = 4;

/// Largest byte size taken from a payload (1 TiB): larger is corrupt, and clamped.
const MAX_BYTES: u64 = 1 << 40;

/// Derives one Cursor record.
///
/// # Errors
/// [`DeriveError::Reject`] for out-of-range token counts (nothing of the record written);
/// SQLite errors.
pub fn derive(
    tx: &Transaction<'_>,
    rec: &Record<'_>,
    round: &mut Round,
) -> Result<(), DeriveError> {
    match rec.kind {
        "composer" => derive_composer(tx, rec, round),
        "bubble" => derive_bubble(tx, rec, round),
        "workspace" => Ok(derive_workspace(tx, rec, round)?),
        "hook" => cursor_hooks::derive(tx, rec, round),
        k if k.starts_with("transcript:") => cursor_agent::derive(tx, rec, round),
        // `agent_blob`: content-addressed agent messages with no composer, time or usage
        // (formats.md C5): kept in raw_traces, nothing to derive.
        _ => Ok(()),
    }
}

pub(super) fn str_at<'v>(v: &'v Value, k: &str) -> Option<&'v str> {
    v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Epoch ms of a number or an ISO string.
fn time_at(v: &Value, k: &str) -> Option<i64> {
    match v.get(k)? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => crate::event::parse_timestamp_ms(s),
        _ => None,
    }
    .filter(|t| *t > 0)
}

/// A byte size, clamped to `0..=MAX_BYTES`.
fn bytes_at(v: Option<&Value>, k: &str) -> i64 {
    let n = v
        .and_then(|v| v.get(k))
        .and_then(Value::as_u64)
        .unwrap_or(0)
        .min(MAX_BYTES);
    n as i64
}

/// A token count: absent or not a number -> 0; out of range -> an error naming it.
pub(super) fn token_field(v: &Value, k: &str, what: &str) -> Result<u64, DeriveError> {
    match v.get(k) {
        Some(Value::Number(n)) => match n.as_u64() {
            Some(x) if x <= MAX_TOKENS_PER_RESPONSE => Ok(x),
            Some(x) => Err(DeriveError::Reject(format!(
                "{what}.{k} = {x} is above the bound of {MAX_TOKENS_PER_RESPONSE} tokens per response"
            ))),
            None if n.as_f64().is_some_and(|f| f < 0.0) => {
                Err(DeriveError::Reject(format!("{what}.{k} = {n} is negative")))
            }
            None => Err(DeriveError::Reject(format!(
                "{what}.{k} = {n} is not a whole number"
            ))),
        },
        _ => Ok(0),
    }
}

/// Records `seq` as the newest version of `key` unless a newer (or the same) one was
/// derived already; returns whether this version is to be derived.
fn newest(tx: &Transaction<'_>, key: &str, seq: i64) -> rusqlite::Result<bool> {
    let n = tx
        .prepare_cached(
            "INSERT INTO cursor_versions (key, seq) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET seq = excluded.seq WHERE excluded.seq > seq",
        )?
        .execute(params![key, seq])?;
    Ok(n == 1)
}

/// Token numbers of a composer's `usageData`, only when Cursor wrote real ones: top-level
/// `inputTokens`/`outputTokens` (or `input_tokens`/`output_tokens`) with a non-zero total.
/// Anything else (`{}` on almost every composer, cost or request counters) is not a count.
fn usage_data_tokens(v: &Value) -> Result<Option<(u64, u64)>, DeriveError> {
    let Some(u) = v.get("usageData").filter(|u| u.is_object()) else {
        return Ok(None);
    };
    let has = |a: &str, b: &str| u.get(a).or_else(|| u.get(b)).is_some_and(Value::is_number);
    if !has("inputTokens", "input_tokens") || !has("outputTokens", "output_tokens") {
        return Ok(None);
    }
    let i = token_field(u, "inputTokens", "usageData")?.max(token_field(
        u,
        "input_tokens",
        "usageData",
    )?);
    let o = token_field(u, "outputTokens", "usageData")?.max(token_field(
        u,
        "output_tokens",
        "usageData",
    )?);
    Ok((i + o > 0).then_some((i, o)))
}

fn derive_composer(
    tx: &Transaction<'_>,
    rec: &Record<'_>,
    round: &mut Round,
) -> Result<(), DeriveError> {
    let v = rec.value;
    let Some(cid) = str_at(v, "composerId").or(rec.session_id) else {
        return Ok(());
    };
    let usage = usage_data_tokens(v)?;
    if !newest(tx, &format!("composerData:{cid}"), rec.seq)? {
        return Ok(());
    }
    let ids = |k: &str| -> Option<String> {
        let list: Vec<&str> = v
            .get(k)?
            .as_array()?
            .iter()
            .filter_map(|h| {
                h.as_str()
                    .or_else(|| h.get("bubbleId").and_then(Value::as_str))
            })
            .collect();
        (!list.is_empty()).then(|| Value::from(list).to_string())
    };
    let model = v
        .get("modelConfig")
        .and_then(|m| str_at(m, "modelName"))
        .or_else(|| str_at(v, "modelName"));
    tx.prepare_cached(
        "INSERT OR REPLACE INTO cursor_composers
           (composer_id, seq, created_at, last_updated_at, name, model, project_path, git_branch,
            headers, sub_composers, parent_id, usage_input, usage_output)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        cid,
        rec.seq,
        time_at(v, "createdAt"),
        time_at(v, "lastUpdatedAt"),
        str_at(v, "name"),
        model,
        str_at(v, "workspacePath"),
        str_at(v, "createdOnBranch"),
        ids("headers"),
        ids("subComposerIds"),
        str_at(v, "parentComposerId"),
        usage.map(|u| u.0 as i64),
        usage.map(|u| u.1 as i64),
    ])?;
    round.cursor.insert(cid.to_string());
    Ok(())
}

fn derive_bubble(
    tx: &Transaction<'_>,
    rec: &Record<'_>,
    round: &mut Round,
) -> Result<(), DeriveError> {
    let v = rec.value;
    let (Some(cid), Some(bid)) = (
        str_at(v, "composerId").or(rec.session_id),
        str_at(v, "bubbleId"),
    ) else {
        return Ok(());
    };
    let typ = v.get("type").and_then(Value::as_i64).unwrap_or(0);
    if typ != 1 && typ != 2 {
        return Ok(());
    }
    // Validated before anything is written: a rejected record leaves no rows.
    let (input, output) = match v.get("tokenCount") {
        Some(t) => (
            token_field(t, "inputTokens", "tokenCount")?,
            token_field(t, "outputTokens", "tokenCount")?,
        ),
        None => (0, 0),
    };
    if !newest(tx, &format!("bubbleId:{cid}:{bid}"), rec.seq)? {
        return Ok(());
    }
    let text = str_at(v, "text").filter(|t| !t.trim().is_empty());
    let text_bytes = match v.get("textBytes").and_then(Value::as_u64) {
        Some(_) => bytes_at(Some(v), "textBytes"),
        None => text.map_or(0, |t| t.len() as i64),
    };
    let tool = v.get("tool").filter(|t| t.is_object());
    let model =
        str_at(v, "modelName").or_else(|| v.get("modelInfo").and_then(|m| str_at(m, "modelName")));
    let msg_id = format!("cu:msg:{cid}:{bid}");
    tx.prepare_cached(
        "INSERT OR REPLACE INTO cursor_bubbles
           (composer_id, bubble_id, seq, event_id, type, ts, request_id, model, text_bytes,
            thinking_bytes, args_bytes, result_bytes, input_tokens, output_tokens)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(params![
        cid,
        bid,
        rec.seq,
        msg_id,
        typ,
        rec.ts,
        str_at(v, "requestId"),
        model,
        text_bytes,
        bytes_at(Some(v), "thinkingBytes"),
        bytes_at(tool, "argsBytes"),
        bytes_at(tool, "resultBytes"),
        input as i64,
        output as i64,
    ])?;
    round.cursor.insert(cid.to_string());
    let Some(ts) = rec.ts else {
        return Ok(());
    };
    // A user bubble is a prompt even when the privacy mode kept no text; an assistant bubble
    // is a message when it says something (tool and thinking bubbles are not).
    let keep = typ == 1 || text.is_some() || text_bytes > 0;
    let role = if typ == 1 { "user" } else { "assistant" };
    upsert_message(
        tx,
        &Msg {
            event_id: &msg_id,
            session_id: cid,
            agent_id: None,
            platform: rec.platform,
            role,
            is_prompt: typ == 1,
            ts,
            model,
            text,
        },
        keep,
    )?;
    if let Some(t) = tool {
        upsert_tool(tx, rec, cid, bid, ts, t, &mut round.dirty)?;
    }
    Ok(())
}

/// A message row.
pub(super) struct Msg<'a> {
    pub event_id: &'a str,
    pub session_id: &'a str,
    pub agent_id: Option<&'a str>,
    pub platform: &'a str,
    pub role: &'a str,
    pub is_prompt: bool,
    pub ts: i64,
    pub model: Option<&'a str>,
    pub text: Option<&'a str>,
}

/// Writes (or, `keep` false, removes) the message `m.event_id`, replacing an earlier
/// version's text and its FTS entry (the old text is deleted from the index first).
///
/// # Errors
/// SQLite errors.
pub(super) fn upsert_message(
    tx: &Transaction<'_>,
    m: &Msg<'_>,
    keep: bool,
) -> rusqlite::Result<()> {
    let old: Option<(i64, Option<String>)> = tx
        .prepare_cached("SELECT rowid, text FROM messages WHERE event_id = ?1")?
        .query_row([m.event_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((rowid, Some(t))) = &old {
        tx.prepare_cached(
            "INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', ?1, ?2)",
        )?
        .execute(params![rowid, t])?;
    }
    let rowid = match (old, keep) {
        (Some((rowid, _)), false) => {
            tx.prepare_cached("DELETE FROM messages WHERE rowid = ?1")?
                .execute([rowid])?;
            return Ok(());
        }
        (None, false) => return Ok(()),
        (Some((rowid, _)), true) => {
            tx.prepare_cached(
                "UPDATE messages SET session_id = ?2, role = ?3, is_prompt = ?4, ts = ?5,
                                     model = ?6, text = ?7, agent_id = ?8
                 WHERE rowid = ?1",
            )?
            .execute(params![
                rowid,
                m.session_id,
                m.role,
                m.is_prompt,
                m.ts,
                m.model,
                m.text,
                m.agent_id
            ])?;
            rowid
        }
        (None, true) => {
            tx.prepare_cached(
                "INSERT INTO messages (event_id, session_id, agent_id, platform, role, is_prompt, ts, model, text)
                 VALUES (?1, ?2, ?9, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                m.event_id,
                m.session_id,
                m.platform,
                m.role,
                m.is_prompt,
                m.ts,
                m.model,
                m.text,
                m.agent_id
            ])?;
            tx.last_insert_rowid()
        }
    };
    if let Some(t) = m.text {
        tx.prepare_cached("INSERT INTO messages_fts (rowid, text) VALUES (?1, ?2)")?
            .execute(params![rowid, t])?;
    }
    Ok(())
}

/// Epoch ms from `timingInfo` (client times other than `clientStartTime` are epoch ms;
/// only values above 1e12 are taken as such).
fn timing(v: &Value, k: &str) -> Option<i64> {
    v.get("timingInfo")
        .and_then(|t| t.get(k))
        .and_then(Value::as_f64)
        .filter(|t| *t > 1e12 && *t < 1e14)
        .map(|t| t as i64)
}

/// The tool call of a bubble (newest version wins: name, status, metadata, finish).
fn upsert_tool(
    tx: &Transaction<'_>,
    rec: &Record<'_>,
    cid: &str,
    bid: &str,
    ts: i64,
    t: &Value,
    dirty: &mut BTreeSet<i64>,
) -> rusqlite::Result<()> {
    let v = rec.value;
    let id = str_at(t, "toolCallId").map_or_else(|| format!("cu:{cid}:{bid}"), str::to_string);
    let status = str_at(t, "status");
    let is_error = t.get("error").and_then(Value::as_bool).unwrap_or(false)
        || matches!(status, Some("error" | "failed"));
    let done = matches!(
        status,
        Some("completed" | "error" | "failed" | "cancelled" | "rejected" | "aborted")
    );
    let started = timing(v, "clientRpcSendTime").unwrap_or(ts);
    let finished = done
        .then(|| timing(v, "clientEndTime").or_else(|| timing(v, "clientSettleTime")))
        .flatten();
    let mut input = serde_json::Map::new();
    if let Some(a) = t.get("args").filter(|a| a.is_object()) {
        input.insert("args".into(), a.clone());
    }
    if let Some(b) = t.get("argsBytes").filter(|b| b.is_number()) {
        input.insert("bytes".into(), b.clone());
    }
    let input = (!input.is_empty()).then(|| Value::Object(input).to_string());
    let mut result = serde_json::Map::new();
    if let Some(b) = t.get("resultBytes").filter(|b| b.is_number()) {
        result.insert("bytes".into(), b.clone());
    }
    if let Some(s) = status {
        result.insert("status".into(), Value::from(s));
    }
    if let Some(e) = str_at(t, "errorMessage") {
        result.insert("error".into(), Value::from(e));
    }
    let result = (!result.is_empty()).then(|| Value::Object(result).to_string());
    let before: Option<i64> = tx
        .prepare_cached(
            "SELECT coalesce(started_at, finished_at) FROM tool_calls WHERE tool_use_id = ?1",
        )?
        .query_row([&id], |r| r.get(0))
        .optional()?
        .flatten();
    let after: Option<i64> = tx
        .prepare_cached(
            "INSERT INTO tool_calls (tool_use_id, session_id, agent_id, platform, project_path, name,
                                     started_at, finished_at, is_error, input_meta, result_meta)
             VALUES (?1, ?2, NULL, ?3, NULL, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (tool_use_id) DO UPDATE SET
               name = coalesce(excluded.name, name),
               started_at = min(coalesce(started_at, excluded.started_at), excluded.started_at),
               finished_at = excluded.finished_at,
               is_error = excluded.is_error,
               input_meta = excluded.input_meta,
               result_meta = excluded.result_meta
             RETURNING coalesce(started_at, finished_at)",
        )?
        .query_row(
            params![
                id,
                cid,
                rec.platform,
                str_at(t, "name"),
                started,
                finished,
                is_error,
                input,
                result
            ],
            |r| r.get(0),
        )?;
    dirty.extend(before.into_iter().chain(after).map(bucket_of));
    Ok(())
}

fn derive_workspace(
    tx: &Transaction<'_>,
    rec: &Record<'_>,
    round: &mut Round,
) -> rusqlite::Result<()> {
    let v = rec.value;
    let Some(ws) = str_at(v, "workspace") else {
        return Ok(());
    };
    if !newest(tx, &format!("{ws}/composer.composerData"), rec.seq)? {
        return Ok(());
    }
    let folder = str_at(v, "folder").or_else(|| {
        v.get("folders")
            .and_then(Value::as_array)
            .and_then(|f| f.iter().find_map(Value::as_str))
            .filter(|s| !s.is_empty())
    });
    let Some(composers) = v.get("composers").and_then(Value::as_array) else {
        return Ok(());
    };
    let mut up = tx.prepare_cached(
        "INSERT INTO cursor_workspaces (composer_id, project_path, workspace, seq)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (composer_id) DO UPDATE SET
           project_path = excluded.project_path, workspace = excluded.workspace, seq = excluded.seq
         WHERE excluded.seq > seq",
    )?;
    for c in composers {
        if let Some(cid) = str_at(c, "composerId") {
            up.execute(params![cid, folder, ws, rec.seq])?;
            round.cursor.insert(cid.to_string());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// End of round: rows recomputed from the facts

/// The newest facts of one bubble.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BubbleFacts {
    pub bubble_id: String,
    pub event_id: String,
    pub typ: i64,
    pub ts: Option<i64>,
    pub request_id: Option<String>,
    pub model: Option<String>,
    pub text_bytes: i64,
    pub thinking_bytes: i64,
    pub args_bytes: i64,
    pub result_bytes: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
}

impl BubbleFacts {
    fn measured(&self) -> bool {
        self.input_tokens > 0 || self.output_tokens > 0
    }
}

/// An estimate of one turn's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Estimate {
    pub input: i64,
    pub output: i64,
}

fn tokens_of_bytes(bytes: i64) -> i64 {
    let b = u64::try_from(bytes).unwrap_or(0);
    (b.div_ceil(BYTES_PER_TOKEN)).min(MAX_TOKENS_PER_RESPONSE) as i64
}

/// The estimate rule for one turn without measured counts (≈ 4 bytes of text per token,
/// rounded up, each side at most [`MAX_TOKENS_PER_RESPONSE`]):
/// - output: the assistant bubbles' text, thinking and tool-argument bytes (what the model
///   wrote);
/// - input: the turn's user prompt bytes plus the tool-result bytes (what was sent to the
///   model besides the context it already had — a lower bound of the real input).
pub fn estimate_tokens(turn: &[&BubbleFacts]) -> Estimate {
    let mut input: i64 = 0;
    let mut output: i64 = 0;
    for b in turn {
        if b.typ == 1 {
            input = input.saturating_add(b.text_bytes);
        } else {
            output = output
                .saturating_add(b.text_bytes)
                .saturating_add(b.thinking_bytes)
                .saturating_add(b.args_bytes);
            input = input.saturating_add(b.result_bytes);
        }
    }
    Estimate {
        input: tokens_of_bytes(input),
        output: tokens_of_bytes(output),
    }
}

/// Splits bubbles (in conversation order) into turns: each user bubble starts one.
pub fn turns<'b>(ordered: &[&'b BubbleFacts]) -> Vec<Vec<&'b BubbleFacts>> {
    let mut out: Vec<Vec<&BubbleFacts>> = Vec::new();
    for b in ordered {
        match out.last_mut() {
            Some(t) if b.typ != 1 => t.push(b),
            _ => out.push(vec![b]),
        }
    }
    out
}

/// A composer's newest facts.
struct ComposerFacts {
    created: Option<i64>,
    last: Option<i64>,
    name: Option<String>,
    model: Option<String>,
    project: Option<String>,
    branch: Option<String>,
    headers: Vec<String>,
    subs: Vec<String>,
    parent: Option<String>,
    usage: Option<(i64, i64)>,
}

fn json_ids(s: Option<String>) -> Vec<String> {
    s.and_then(|s| serde_json::from_str::<Vec<String>>(&s).ok())
        .unwrap_or_default()
}

fn load_composer(tx: &Transaction<'_>, cid: &str) -> rusqlite::Result<Option<ComposerFacts>> {
    tx.prepare_cached(
        "SELECT created_at, last_updated_at, name, model, project_path, git_branch, headers,
                sub_composers, parent_id, usage_input, usage_output
         FROM cursor_composers WHERE composer_id = ?1",
    )?
    .query_row([cid], |r| {
        let ui: Option<i64> = r.get(9)?;
        let uo: Option<i64> = r.get(10)?;
        Ok(ComposerFacts {
            created: r.get(0)?,
            last: r.get(1)?,
            name: r.get(2)?,
            model: r.get(3)?,
            project: r.get(4)?,
            branch: r.get(5)?,
            headers: json_ids(r.get(6)?),
            subs: json_ids(r.get(7)?),
            parent: r.get(8)?,
            usage: ui.zip(uo),
        })
    })
    .optional()
}

fn load_bubbles(tx: &Transaction<'_>, cid: &str) -> rusqlite::Result<Vec<BubbleFacts>> {
    tx.prepare_cached(
        "SELECT bubble_id, event_id, type, ts, request_id, model, text_bytes, thinking_bytes,
                args_bytes, result_bytes, input_tokens, output_tokens
         FROM cursor_bubbles WHERE composer_id = ?1",
    )?
    .query_map([cid], |r| {
        Ok(BubbleFacts {
            bubble_id: r.get(0)?,
            event_id: r.get(1)?,
            typ: r.get(2)?,
            ts: r.get(3)?,
            request_id: r.get(4)?,
            model: r.get(5)?,
            text_bytes: r.get(6)?,
            thinking_bytes: r.get(7)?,
            args_bytes: r.get(8)?,
            result_bytes: r.get(9)?,
            input_tokens: r.get(10)?,
            output_tokens: r.get(11)?,
        })
    })?
    .collect()
}

/// Bubbles in conversation order: the composer's `headers` first, then the others by time
/// and id (a deterministic order of the same set, whatever order they came in).
pub fn conversation_order<'b>(
    headers: &[String],
    bubbles: &'b [BubbleFacts],
) -> Vec<&'b BubbleFacts> {
    let at: HashMap<&str, usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| (h.as_str(), i))
        .collect();
    let mut out: Vec<&BubbleFacts> = bubbles.iter().collect();
    out.sort_by(|a, b| {
        let ka = (
            at.get(a.bubble_id.as_str()).copied().unwrap_or(usize::MAX),
            a.ts,
            &a.bubble_id,
        );
        let kb = (
            at.get(b.bubble_id.as_str()).copied().unwrap_or(usize::MAX),
            b.ts,
            &b.bubble_id,
        );
        ka.cmp(&kb)
    });
    out
}

/// A measured token row.
#[derive(Debug, Clone)]
struct Measured {
    source: &'static str,
    event_id: String,
    ts: i64,
    model: Option<String>,
    input: i64,
    output: i64,
    cache_read: i64,
    cache_write: i64,
}

impl Measured {
    fn rank(&self) -> (i64, &'static str, &str) {
        (
            self.input + self.output + self.cache_read + self.cache_write,
            self.source,
            &self.event_id,
        )
    }
}

/// A model name worth recording (`default` says nothing about the model).
fn real_model(m: Option<&String>) -> Option<&String> {
    m.filter(|m| !m.is_empty() && m.as_str() != "default")
}

fn priced(model: Option<&str>, usage: &TokenUsage) -> (i64, bool) {
    match model.and_then(|m| prices::cost_pusd(m, usage)) {
        Some(c) => (c, true),
        None => (0, false),
    }
}

/// Recomputes the rows of every Cursor session touched this round from their facts.
///
/// # Errors
/// SQLite errors.
pub fn finish(
    tx: &Transaction<'_>,
    touched: &BTreeSet<String>,
    dirty: &mut BTreeSet<i64>,
) -> rusqlite::Result<()> {
    // A sub-composer without a project of its own takes its parent's: the children of a
    // touched composer are recomputed with it.
    let mut all = touched.clone();
    let mut children = tx.prepare_cached(
        "SELECT composer_id FROM cursor_composers WHERE parent_id = ?1
         UNION SELECT j.value FROM cursor_composers c, json_each(c.sub_composers) j
               WHERE c.composer_id = ?1",
    )?;
    for cid in touched {
        let ids: Vec<String> = children
            .query_map([cid], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        all.extend(ids);
    }
    for cid in &all {
        finish_one(tx, cid, dirty)?;
    }
    Ok(())
}

fn finish_one(tx: &Transaction<'_>, cid: &str, dirty: &mut BTreeSet<i64>) -> rusqlite::Result<()> {
    let comp = load_composer(tx, cid)?;
    let bubbles = load_bubbles(tx, cid)?;
    let own = own_project(tx, cid, comp.as_ref())?;
    let project = match own.clone() {
        Some(p) => Some(p),
        None => match comp.as_ref().and_then(|c| c.parent.as_deref()) {
            Some(parent) => {
                let pc = load_composer(tx, parent)?;
                own_project(tx, parent, pc.as_ref())?
            }
            None => None,
        },
    };
    // The session: from the composer and its bubbles (hooks and transcripts upsert it too).
    let times = comp
        .iter()
        .flat_map(|c| [c.created, c.last])
        .chain(bubbles.iter().map(|b| b.ts))
        .flatten();
    let (lo, hi) = times.fold((None, None), |(lo, hi): (Option<i64>, Option<i64>), t| {
        (
            Some(lo.map_or(t, |l| l.min(t))),
            Some(hi.map_or(t, |h| h.max(t))),
        )
    });
    if let (Some(lo), Some(hi)) = (lo, hi) {
        tx.prepare_cached(
            "INSERT INTO sessions (session_id, platform, project_path, title, started_at, ended_at, git_branch)
             VALUES (?1, 'cursor', ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (session_id) DO UPDATE SET
               started_at = min(started_at, excluded.started_at),
               ended_at = max(ended_at, excluded.ended_at)",
        )?
        .execute(params![
            cid,
            project,
            comp.as_ref().and_then(|c| c.name.clone()),
            lo,
            hi,
            comp.as_ref().and_then(|c| c.branch.clone())
        ])?;
    }
    // What the composer and workspace say wins over what hooks guessed (workspace roots).
    tx.prepare_cached(
        "UPDATE sessions SET project_path = coalesce(?2, project_path),
                             title = coalesce(?3, title),
                             git_branch = coalesce(?4, git_branch)
         WHERE session_id = ?1",
    )?
    .execute(params![
        cid,
        project,
        comp.as_ref().and_then(|c| c.name.clone()),
        comp.as_ref().and_then(|c| c.branch.clone())
    ])?;
    // The project as the composer and workspace say (not a hook's guess) is a project, once
    // the composer is known (before that a workspace listing may name another folder than
    // the composer's own `workspacePath`, and min/max upserts cannot take a row back).
    if let (Some(p), Some(lo), Some(hi), true) = (&own, lo, hi, comp.is_some()) {
        tx.prepare_cached(
            "INSERT INTO projects (path, first_seen, last_seen) VALUES (?1, ?2, ?3)
             ON CONFLICT (path) DO UPDATE SET
               first_seen = min(first_seen, excluded.first_seen),
               last_seen = max(last_seen, excluded.last_seen)",
        )?
        .execute(params![p, lo, hi])?;
    }
    // Rows carry the session's project, whoever gave it.
    let project: Option<String> = tx
        .prepare_cached("SELECT project_path FROM sessions WHERE session_id = ?1")?
        .query_row([cid], |r| r.get(0))
        .optional()?
        .flatten();
    if project.is_some() {
        let mut moved = tx.prepare_cached(
            "UPDATE tool_calls SET project_path = ?2
             WHERE session_id = ?1 AND platform = 'cursor' AND project_path IS NOT ?2
             RETURNING coalesce(started_at, finished_at)",
        )?;
        let b: Vec<Option<i64>> = moved
            .query_map(params![cid, project], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        dirty.extend(b.into_iter().flatten().map(bucket_of));
    }
    // Sub-composers: (parent, child) links, spanning the times each side knows.
    if let Some(c) = &comp {
        let span = c.created.or(c.last).zip(c.last.or(c.created));
        let mut sub = tx.prepare_cached(
            "INSERT INTO subagents (session_id, agent_id, agent_type, started_at, ended_at)
             VALUES (?1, ?2, 'subcomposer', ?3, ?4)
             ON CONFLICT (session_id, agent_id) DO UPDATE SET
               started_at = min(started_at, excluded.started_at),
               ended_at = max(ended_at, excluded.ended_at)",
        )?;
        if let Some((lo, hi)) = span {
            for child in &c.subs {
                sub.execute(params![cid, child, lo, hi])?;
            }
            if let Some(p) = &c.parent {
                sub.execute(params![p, cid, lo, hi])?;
            }
        }
    }
    tokens(tx, cid, comp.as_ref(), &bubbles, project.as_deref(), dirty)?;
    // Lifecycle from Cursor's hooks, and the first prompt from the messages.
    tx.prepare_cached(
        "UPDATE sessions SET
           start_source = coalesce(
             (SELECT coalesce(detail ->> '$.source', detail ->> '$.composer_mode') FROM hook_events
              WHERE session_id = ?1 AND event = 'sessionStart' ORDER BY ts, event_id LIMIT 1),
             start_source),
           end_reason = coalesce(
             (SELECT coalesce(detail ->> '$.reason', detail ->> '$.final_status') FROM hook_events
              WHERE session_id = ?1 AND event = 'sessionEnd' ORDER BY ts DESC, event_id DESC LIMIT 1),
             (SELECT detail ->> '$.status' FROM hook_events
              WHERE session_id = ?1 AND event = 'stop' ORDER BY ts DESC, event_id DESC LIMIT 1),
             end_reason),
           (first_prompt, first_prompt_at) = (
             SELECT substr(text, 1, 500), ts FROM messages
             WHERE session_id = ?1 AND is_prompt = 1 AND text IS NOT NULL
             ORDER BY ts, event_id LIMIT 1)
         WHERE session_id = ?1",
    )?
    .execute([cid])?;
    Ok(())
}

/// A composer's project: its `workspacePath`, else what a workspace listing says.
fn own_project(
    tx: &Transaction<'_>,
    cid: &str,
    comp: Option<&ComposerFacts>,
) -> rusqlite::Result<Option<String>> {
    if let Some(p) = comp.and_then(|c| c.project.clone()) {
        return Ok(Some(p));
    }
    Ok(tx
        .prepare_cached("SELECT project_path FROM cursor_workspaces WHERE composer_id = ?1")?
        .query_row([cid], |r| r.get(0))
        .optional()?
        .flatten())
}

/// Measured rows and estimates of one Cursor session, recomputed.
fn tokens(
    tx: &Transaction<'_>,
    cid: &str,
    comp: Option<&ComposerFacts>,
    bubbles: &[BubbleFacts],
    project: Option<&str>,
    dirty: &mut BTreeSet<i64>,
) -> rusqlite::Result<()> {
    let comp_model = comp.and_then(|c| real_model(c.model.as_ref()));
    let mut gone = tx.prepare_cached(
        "DELETE FROM api_responses WHERE session_id = ?1 AND token_source IN ('cursor', 'hook')
         RETURNING ts",
    )?;
    let old: Vec<i64> = gone
        .query_map([cid], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    dirty.extend(old.into_iter().map(bucket_of));
    let mut gone =
        tx.prepare_cached("DELETE FROM token_estimates WHERE session_id = ?1 RETURNING ts")?;
    let old: Vec<i64> = gone
        .query_map([cid], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    dirty.extend(old.into_iter().map(bucket_of));

    let fallback_ts = comp.and_then(|c| c.created.or(c.last));
    let turn_key = |b: &BubbleFacts| {
        format!(
            "cu:{cid}:{}",
            b.request_id.as_deref().unwrap_or(&b.bubble_id)
        )
    };
    let mut best: BTreeMap<String, Measured> = BTreeMap::new();
    let mut offer = |key: String, m: Measured| match best.get(&key) {
        Some(have) if have.rank() >= m.rank() => {}
        _ => {
            best.insert(key, m);
        }
    };
    for b in bubbles.iter().filter(|b| b.measured()) {
        let Some(ts) = b.ts.or(fallback_ts) else {
            continue;
        };
        offer(
            turn_key(b),
            Measured {
                source: "cursor",
                event_id: b.event_id.clone(),
                ts,
                model: real_model(b.model.as_ref()).or(comp_model).cloned(),
                input: b.input_tokens,
                output: b.output_tokens,
                cache_read: 0,
                cache_write: 0,
            },
        );
    }
    let stops: Vec<(String, Measured)> = tx
        .prepare_cached(
            "SELECT key, event_id, ts, model, input_tokens, output_tokens, cache_read_tokens,
                    cache_write_tokens
             FROM cursor_stop_tokens WHERE session_id = ?1",
        )?
        .query_map([cid], |r| {
            Ok((
                r.get(0)?,
                Measured {
                    source: "hook",
                    event_id: r.get(1)?,
                    ts: r.get(2)?,
                    model: r.get(3)?,
                    input: r.get(4)?,
                    output: r.get(5)?,
                    cache_read: r.get(6)?,
                    cache_write: r.get(7)?,
                },
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    for (k, mut m) in stops {
        if real_model(m.model.as_ref()).is_none() {
            m.model = comp_model.cloned();
        }
        offer(k, m);
    }
    // A composer-level `usageData` count only when no bubble says more.
    let composer_level = if bubbles.iter().all(|b| !b.measured())
        && let Some(c) = comp
        && let (Some((i, o)), Some(ts)) = (c.usage, c.last.or(c.created))
    {
        best.insert(
            format!("cu:{cid}:usage"),
            Measured {
                source: "cursor",
                event_id: format!("cu:composer:{cid}"),
                ts,
                model: comp_model.cloned(),
                input: i,
                output: o,
                cache_read: 0,
                cache_write: 0,
            },
        );
        true
    } else {
        false
    };
    let mut ins = tx.prepare_cached(
        "INSERT INTO api_responses
           (dedup_key, message_id, event_id, session_id, agent_id, platform, project_path, ts, model,
            is_sidechain, has_speed, input_tokens, output_tokens, cache_creation_tokens,
            cache_read_tokens, cost_pusd, priced, token_source)
         VALUES (?1, NULL, ?2, ?3, NULL, 'cursor', ?4, ?5, ?6, 0, 0, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (dedup_key) DO NOTHING",
    )?;
    for (key, m) in &best {
        let usage = TokenUsage {
            input: m.input as u64,
            output: m.output as u64,
            cache_creation_5m: m.cache_write as u64,
            cache_read: m.cache_read as u64,
            ..TokenUsage::default()
        };
        let (cost, ok) = priced(m.model.as_deref(), &usage);
        ins.execute(params![
            key,
            m.event_id,
            cid,
            project,
            m.ts,
            m.model,
            m.input,
            m.output,
            m.cache_write,
            m.cache_read,
            cost,
            ok,
            m.source
        ])?;
        dirty.insert(bucket_of(m.ts));
    }
    if composer_level {
        return Ok(());
    }
    // Estimates of the turns without a measured count.
    let headers = comp.map(|c| c.headers.as_slice()).unwrap_or(&[]);
    let ordered = conversation_order(headers, bubbles);
    let mut est = tx.prepare_cached(
        "INSERT OR REPLACE INTO token_estimates
           (key, session_id, platform, project_path, ts, model, input_tokens, output_tokens,
            cost_pusd, priced)
         VALUES (?1, ?2, 'cursor', ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for turn in turns(&ordered) {
        let assistants: Vec<&&BubbleFacts> = turn.iter().filter(|b| b.typ == 2).collect();
        if assistants.is_empty()
            || turn
                .iter()
                .any(|b| b.measured() || best.contains_key(&turn_key(b)))
        {
            continue;
        }
        let e = estimate_tokens(&turn);
        if e.input == 0 && e.output == 0 {
            continue;
        }
        let Some(ts) = assistants
            .iter()
            .find_map(|b| b.ts)
            .or_else(|| turn.iter().find_map(|b| b.ts))
            .or(fallback_ts)
        else {
            continue;
        };
        let model = assistants
            .iter()
            .rev()
            .find_map(|b| real_model(b.model.as_ref()))
            .or_else(|| turn.iter().find_map(|b| real_model(b.model.as_ref())))
            .or(comp_model);
        let usage = TokenUsage {
            input: e.input as u64,
            output: e.output as u64,
            ..TokenUsage::default()
        };
        let (cost, ok) = priced(model.map(String::as_str), &usage);
        est.execute(params![
            format!("cu:{cid}:est:{}", turn[0].bubble_id),
            cid,
            project,
            ts,
            model,
            e.input,
            e.output,
            cost,
            ok
        ])?;
        dirty.insert(bucket_of(ts));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bubble(id: &str, typ: i64, ts: i64, text: i64) -> BubbleFacts {
        BubbleFacts {
            bubble_id: id.into(),
            event_id: format!("cu:msg:c:{id}"),
            typ,
            ts: Some(ts),
            request_id: None,
            model: None,
            text_bytes: text,
            thinking_bytes: 0,
            args_bytes: 0,
            result_bytes: 0,
            input_tokens: 0,
            output_tokens: 0,
        }
    }

    #[test]
    fn the_estimate_rule_counts_four_bytes_per_token_each_side() {
        let user = bubble("u", 1, 1, 41);
        let mut a = bubble("a", 2, 2, 100);
        a.thinking_bytes = 20;
        let mut t = bubble("t", 2, 3, 0);
        t.args_bytes = 7;
        t.result_bytes = 4_000;
        // input: ceil((41 + 4000) / 4); output: ceil((100 + 20 + 7) / 4).
        assert_eq!(
            estimate_tokens(&[&user, &a, &t]),
            Estimate {
                input: 1011,
                output: 32
            }
        );
        let mut huge = bubble("h", 2, 4, i64::MAX);
        huge.thinking_bytes = i64::MAX;
        let e = estimate_tokens(&[&huge]);
        assert_eq!(e.output, MAX_TOKENS_PER_RESPONSE as i64);
    }

    #[test]
    fn turns_follow_the_headers_whatever_the_times() {
        let bs = vec![
            bubble("a2", 2, 50, 1),
            bubble("u1", 1, 10, 1),
            bubble("a1", 2, 20, 1),
            bubble("u2", 1, 40, 1),
            bubble("x", 2, 5, 1),
        ];
        let headers: Vec<String> = ["u1", "a1", "u2", "a2"].map(String::from).to_vec();
        let order = conversation_order(&headers, &bs);
        let ids: Vec<&str> = order.iter().map(|b| b.bubble_id.as_str()).collect();
        assert_eq!(ids, ["u1", "a1", "u2", "a2", "x"]);
        let t = turns(&order);
        assert_eq!(t.len(), 2);
        assert_eq!(t[1].len(), 3);
        // Without headers: by time.
        let order = conversation_order(&[], &bs);
        let ids: Vec<&str> = order.iter().map(|b| b.bubble_id.as_str()).collect();
        assert_eq!(ids, ["x", "u1", "a1", "u2", "a2"]);
        assert_eq!(turns(&order).len(), 3);
    }

    #[test]
    fn token_fields_are_bounded() {
        let v = serde_json::json!({"a": 5, "b": 20_000_000, "c": -1, "d": 1.5, "e": "x"});
        assert_eq!(token_field(&v, "a", "t").ok(), Some(5));
        assert_eq!(token_field(&v, "e", "t").ok(), Some(0));
        assert_eq!(token_field(&v, "missing", "t").ok(), Some(0));
        for k in ["b", "c", "d"] {
            assert!(matches!(
                token_field(&v, k, "t"),
                Err(DeriveError::Reject(_))
            ));
        }
        let u = serde_json::json!({"usageData": {}});
        assert!(usage_data_tokens(&u).unwrap().is_none());
        let u = serde_json::json!({"usageData": {"costInCents": 12}});
        assert!(usage_data_tokens(&u).unwrap().is_none());
        let u = serde_json::json!({"usageData": {"inputTokens": 10, "outputTokens": 3}});
        assert_eq!(usage_data_tokens(&u).unwrap(), Some((10, 3)));
    }
}
