//! Derivation of conversation rows from one Claude Code record.
//!
//! Every operation here is an upsert keyed by something in the record (line id, tool-use id,
//! `message.id` + `requestId`), so the result does not depend on the order records arrive in:
//! a tool result may come before its tool call, and a later copy of an API response with
//! larger usage replaces an earlier one (ccusage's rule, invariant 4).

use std::collections::{BTreeSet, HashMap};

use rusqlite::{OptionalExtension, Transaction, params};
use serde_json::Value;

use super::{DeriveError, Deriver, Record, hooks};
use crate::event::Platform;
use crate::metrics::bucket_of;
use crate::pricing::{PriceTable, TokenUsage};
use crate::privacy::{COMMAND_FLAG, NOT_PROMPT_PREFIXES};

/// The Claude Code deriver: transcript records -> sessions, messages, responses, tool calls.
pub struct Claude;

impl Deriver for Claude {
    fn platform(&self) -> Platform {
        Platform::ClaudeCode
    }

    /// 1: first release. 2: `<synthetic>` API errors are no responses, titles without
    /// timestamps, out-of-range usage rejected. 3: one total order picks the copy of a
    /// response (a sidechain copy never replaces a main-chain one), a tool call keeps its
    /// earliest copies and its main-chain agent, the git branch is the earliest record's,
    /// summaries and titles derived before their leaf or session are applied when it comes.
    /// 4: summaries wait for their leaf in `summaries`, whatever session id they were filed
    /// under. 5: hook and status-line payloads, `cost-state` records.
    fn derive_version(&self) -> i64 {
        5
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

/// Derives one record.
///
/// # Errors
/// [`DeriveError::Reject`] for a record that cannot be derived (nothing of it was written);
/// SQLite errors.
pub fn derive(
    tx: &Transaction<'_>,
    rec: &Record<'_>,
    round: &mut Round,
) -> Result<(), DeriveError> {
    let v = rec.value;
    let Some(session_id) = rec.session_id else {
        return Ok(());
    };
    let agent_id = v.get("agentId").and_then(Value::as_str);
    let sidechain = v
        .get("isSidechain")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let cwd = v
        .get("cwd")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    match (rec.kind, rec.ts) {
        ("hook", Some(ts)) => return Ok(hooks::derive_hook(tx, rec, session_id, ts, round)?),
        ("statusline", Some(ts)) => {
            return Ok(hooks::derive_statusline(
                tx,
                rec,
                Some(session_id),
                ts,
                round,
            )?);
        }
        ("hook" | "statusline", None) => return Ok(()),
        ("cost-state", ts) => {
            // Real `cost-state` lines carry no `timestamp`: the figure is as of the
            // process's `startTime` plus its `totalDuration`.
            if let (Some(figure), Some(ts)) = (
                hooks::cost_state_of(v),
                ts.or_else(|| hooks::cost_state_time(v)),
            ) {
                hooks::record_cost(tx, session_id, ts, "cost-state", figure, round)?;
            }
            return Ok(());
        }
        _ => {}
    }
    match rec.kind {
        "summary" => {
            // Summary records carry no sessionId: they belong to the session of their
            // `leafUuid` (one whose leaf is unknown is ignored, formats.md §A10). Applied at
            // the end of the round, when the leaf's message may have arrived; one whose leaf
            // comes in a later round is applied then (see `Round::finish`).
            if let Some((leaf, s)) = summary_of(v) {
                tx.prepare_cached(
                    "INSERT INTO summaries (leaf_uuid, summary) VALUES (?1, ?2)
                     ON CONFLICT (leaf_uuid) DO UPDATE SET summary = max(summary, excluded.summary)",
                )?
                .execute(params![leaf, s])?;
                round
                    .summaries
                    .push((leaf.to_string(), s.to_string(), session_id.to_string()));
            }
            return Ok(());
        }
        "custom-title" | "ai-title" => {
            // Title records carry no timestamp; they name the session whenever they come.
            // The higher rank wins; within a rank, the later record.
            if let Some((rank, t)) = title_of(rec.kind, v) {
                tx.prepare_cached(
                    "INSERT INTO session_titles (session_id, rank, title, seq) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (session_id) DO UPDATE SET
                       rank = excluded.rank, title = excluded.title, seq = excluded.seq
                     WHERE excluded.rank > rank OR (excluded.rank = rank AND excluded.seq > seq)",
                )?
                .execute(params![session_id, rank, t, rec.seq])?;
                round.titled.insert(session_id.to_string());
            }
            return Ok(());
        }
        _ => {}
    }
    let Some(ts) = rec.ts else {
        return Ok(());
    };
    // Bookkeeping records without their own sessionId (file-history snapshots, queue
    // operations) must not create a session named after the file.
    if v.get("sessionId").is_none() && rec.kind != "assistant" {
        return Ok(());
    }
    // Validated before anything is written: a rejected record leaves no rows at all.
    let usage = if rec.kind == "assistant" {
        validated_usage(v)?
    } else {
        None
    };
    round.touch_session(rec, session_id, cwd, v);
    if let Some(a) = agent_id {
        widen(
            round
                .subagents
                .entry((session_id.to_string(), a.to_string()))
                .or_insert((ts, ts)),
            ts,
        );
    }
    if let Some(p) = cwd {
        widen(round.projects.entry(p.to_string()).or_insert((ts, ts)), ts);
    }
    let ctx = Ctx {
        rec,
        session_id,
        agent_id,
        sidechain,
        project: cwd,
        ts,
    };
    match rec.kind {
        "user" => Ok(derive_user(tx, &ctx, round)?),
        "assistant" => derive_assistant(tx, &ctx, usage, round),
        _ => Ok(()),
    }
}

/// (leaf uuid, text) of a `summary` record.
fn summary_of(v: &Value) -> Option<(&str, &str)> {
    let text = v
        .get("summary")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())?;
    let leaf = v
        .get("leafUuid")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())?;
    Some((leaf, text))
}

/// (rank, title) of a `custom-title` (2) or `ai-title` (1) record.
fn title_of<'v>(kind: &str, v: &'v Value) -> Option<(i64, &'v str)> {
    let t = v
        .get("customTitle")
        .or_else(|| v.get("aiTitle"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())?;
    Some((if kind == "custom-title" { 2 } else { 1 }, t))
}

fn widen(range: &mut (i64, i64), ts: i64) {
    range.0 = range.0.min(ts);
    range.1 = range.1.max(ts);
}

/// Session facts gathered during one round, written once per session at its end.
#[derive(Debug, Default)]
pub struct SessionAcc {
    platform: String,
    project: Option<String>,
    started: i64,
    ended: i64,
    version: Option<String>,
    branch: Option<String>,
    first_prompt: Option<(i64, String)>,
}

/// What one slow-path round accumulates besides the rows it writes directly: upserts that
/// would otherwise run once per record, and the metric buckets it changed.
#[derive(Debug, Default)]
pub struct Round {
    pub dirty: BTreeSet<i64>,
    sessions: HashMap<String, SessionAcc>,
    subagents: HashMap<(String, String), (i64, i64)>,
    projects: HashMap<String, (i64, i64)>,
    /// (leaf uuid, summary, file's session id)
    summaries: Vec<(String, String, String)>,
    /// Sessions named by `ai-title` / `custom-title` records this round.
    titled: BTreeSet<String>,
    /// Sessions that got hook events this round (their start source and end reason).
    hooked: BTreeSet<String>,
    /// Cursor sessions (composer ids) whose derived rows must be recomputed at the end of the
    /// round (see `cursor::finish`).
    pub(super) cursor: BTreeSet<String>,
    /// Full-text rows of the messages inserted this round, (messages rowid, text), written
    /// last. An FTS5 table that is part of the transaction flushes its pending terms to disk
    /// at every statement savepoint (each upsert of a later record opens one): indexed per
    /// record, a backfill wrote one FTS segment per message and spent its time merging them.
    fts: Vec<(i64, String)>,
}

impl Round {
    /// A hook payload of `session_id` at the record's time, in `cwd`.
    /// `active`: the event means the session ran (it creates or widens the session);
    /// otherwise the session is only settled (start source, end reason) if it exists.
    pub(super) fn touch_hooked(
        &mut self,
        rec: &Record<'_>,
        session_id: &str,
        cwd: Option<&str>,
        active: bool,
    ) {
        if active {
            self.touch_session(rec, session_id, cwd, &Value::Null);
            if let (Some(p), Some(ts)) = (cwd, rec.ts) {
                widen(self.projects.entry(p.to_string()).or_insert((ts, ts)), ts);
            }
        }
        self.hooked.insert(session_id.to_string());
    }

    /// A sub-agent of `session_id` active at `ts`.
    pub(super) fn touch_subagent(&mut self, session_id: &str, agent_id: &str, ts: i64) {
        widen(
            self.subagents
                .entry((session_id.to_string(), agent_id.to_string()))
                .or_insert((ts, ts)),
            ts,
        );
    }

    fn touch_session(
        &mut self,
        rec: &Record<'_>,
        session_id: &str,
        cwd: Option<&str>,
        v: &Value,
    ) -> Option<&mut SessionAcc> {
        let ts = rec.ts?;
        let acc = self
            .sessions
            .entry(session_id.to_string())
            .or_insert_with(|| SessionAcc {
                platform: rec.platform.to_string(),
                started: ts,
                ended: ts,
                ..SessionAcc::default()
            });
        if (acc.project.is_none() || ts < acc.started)
            && let Some(c) = cwd
        {
            acc.project = Some(c.to_string());
        }
        if (ts >= acc.ended || acc.version.is_none())
            && let Some(ver) = v.get("version").and_then(Value::as_str)
        {
            acc.version = Some(ver.to_string());
        }
        // Like the project: the branch the session started on, whatever order records
        // come in.
        if (acc.branch.is_none() || ts < acc.started)
            && let Some(b) = v
                .get("gitBranch")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        {
            acc.branch = Some(b.to_string());
        }
        acc.started = acc.started.min(ts);
        acc.ended = acc.ended.max(ts);
        Some(acc)
    }

    /// Writes the accumulated upserts; returns the changed metric buckets.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn finish(self, tx: &Transaction<'_>) -> rusqlite::Result<BTreeSet<i64>> {
        let mut up = tx.prepare_cached(
            "INSERT INTO sessions (session_id, platform, project_path, started_at, ended_at, version,
                                   git_branch, first_prompt, first_prompt_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (session_id) DO UPDATE SET
               project_path = CASE WHEN excluded.started_at < started_at
                                   THEN coalesce(excluded.project_path, project_path)
                                   ELSE coalesce(project_path, excluded.project_path) END,
               version = CASE WHEN excluded.ended_at >= ended_at
                              THEN coalesce(excluded.version, version)
                              ELSE coalesce(version, excluded.version) END,
               started_at = min(started_at, excluded.started_at),
               ended_at = max(ended_at, excluded.ended_at),
               git_branch = CASE WHEN excluded.started_at < started_at
                                 THEN coalesce(excluded.git_branch, git_branch)
                                 ELSE coalesce(git_branch, excluded.git_branch) END,
               first_prompt = CASE WHEN excluded.first_prompt_at IS NOT NULL
                                    AND (first_prompt_at IS NULL OR excluded.first_prompt_at < first_prompt_at)
                                   THEN excluded.first_prompt ELSE first_prompt END,
               first_prompt_at = CASE WHEN excluded.first_prompt_at IS NOT NULL
                                       AND (first_prompt_at IS NULL OR excluded.first_prompt_at < first_prompt_at)
                                      THEN excluded.first_prompt_at ELSE first_prompt_at END",
        )?;
        for (id, a) in &self.sessions {
            let (fp_at, fp) = match &a.first_prompt {
                Some((t, p)) => (Some(*t), Some(p.as_str())),
                None => (None, None),
            };
            up.execute(params![
                id, a.platform, a.project, a.started, a.ended, a.version, a.branch, fp, fp_at
            ])?;
        }
        let mut sub = tx.prepare_cached(
            "INSERT INTO subagents (session_id, agent_id, started_at, ended_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (session_id, agent_id) DO UPDATE SET
               started_at = min(started_at, excluded.started_at),
               ended_at = max(ended_at, excluded.ended_at)",
        )?;
        for ((s, a), (lo, hi)) in &self.subagents {
            sub.execute(params![s, a, lo, hi])?;
        }
        let mut proj = tx.prepare_cached(
            "INSERT INTO projects (path, first_seen, last_seen) VALUES (?1, ?2, ?3)
             ON CONFLICT (path) DO UPDATE SET
               first_seen = min(first_seen, excluded.first_seen),
               last_seen = max(last_seen, excluded.last_seen)",
        )?;
        for (p, (lo, hi)) in &self.projects {
            proj.execute(params![p, lo, hi])?;
        }
        let mut title = tx.prepare_cached(
            "UPDATE sessions SET title = ?2 WHERE title IS NULL AND session_id IN
               (SELECT session_id FROM messages WHERE event_id = 'cc:' || ?3 || ':' || ?1
                UNION SELECT session_id FROM messages WHERE event_id GLOB '*:' || ?1 LIMIT 1)",
        )?;
        for (leaf, summary, file_session) in &self.summaries {
            title.execute(params![leaf, summary, file_session])?;
        }
        // Titles and summaries have no timestamp and may be derived before their session or
        // leaf: they wait in `session_titles` and `summaries`, and every session this round
        // touched or named takes its best title from there.
        let mut named = tx.prepare_cached(
            "UPDATE sessions SET title = t.title, title_rank = t.rank FROM session_titles t
             WHERE t.session_id = sessions.session_id AND sessions.session_id = ?1",
        )?;
        let mut from_summaries = tx.prepare_cached(
            "UPDATE sessions SET title = (
                 SELECT s.summary FROM messages m JOIN summaries s
                   ON s.leaf_uuid = substr(m.event_id, length(m.session_id) + 5)
                 WHERE m.session_id = ?1 AND m.event_id = 'cc:' || m.session_id || ':' || s.leaf_uuid
                 ORDER BY m.ts, m.event_id LIMIT 1)
             WHERE session_id = ?1 AND title IS NULL AND title_rank = 0",
        )?;
        for session in self.sessions.keys().chain(self.titled.iter()) {
            named.execute([session])?;
            from_summaries.execute([session])?;
        }
        // Whichever came first, the session row or its SessionStart/SessionEnd events.
        let settle: BTreeSet<&String> = self.hooked.iter().chain(self.sessions.keys()).collect();
        for session in settle {
            hooks::settle_session(tx, session)?;
        }
        // Last: Cursor's rows are recomputed from their facts, after every session upsert.
        let mut dirty = self.dirty;
        super::cursor::finish(tx, &self.cursor, &mut dirty)?;
        // The round's full-text rows in one go (the rowids are the round's own messages).
        let mut fts =
            tx.prepare_cached("INSERT INTO messages_fts (rowid, text) VALUES (?1, ?2)")?;
        for (rowid, text) in &self.fts {
            fts.execute(params![rowid, text])?;
        }
        Ok(dirty)
    }
}

struct Ctx<'a> {
    rec: &'a Record<'a>,
    session_id: &'a str,
    agent_id: Option<&'a str>,
    sidechain: bool,
    project: Option<&'a str>,
    ts: i64,
}

/// Text of a `content` value: the string itself, or the `text` blocks joined.
fn content_text(content: &Value) -> Option<String> {
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(blocks) => {
            let parts: Vec<&str> = blocks
                .iter()
                .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect();
            if parts.is_empty() {
                None
            } else {
                Some(parts.join("\n"))
            }
        }
        _ => None,
    }
}

fn insert_message(
    tx: &Transaction<'_>,
    c: &Ctx<'_>,
    fts: &mut Vec<(i64, String)>,
    role: &str,
    is_prompt: bool,
    model: Option<&str>,
    text: &str,
) -> rusqlite::Result<()> {
    let text = (!text.trim().is_empty()).then_some(text);
    let n = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO messages (event_id, session_id, agent_id, platform, role, is_prompt, ts, model, text)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            c.rec.event_id,
            c.session_id,
            c.agent_id,
            c.rec.platform,
            role,
            is_prompt,
            c.ts,
            model,
            text
        ])?;
    if n == 1
        && let Some(t) = text
    {
        fts.push((tx.last_insert_rowid(), t.to_string()));
    }
    Ok(())
}

fn derive_user(tx: &Transaction<'_>, c: &Ctx<'_>, round: &mut Round) -> rusqlite::Result<()> {
    let dirty = &mut round.dirty;
    let v = c.rec.value;
    let Some(content) = v.get("message").and_then(|m| m.get("content")) else {
        return Ok(());
    };
    if let Value::Array(blocks) = content {
        for b in blocks {
            if b.get("type").and_then(Value::as_str) != Some("tool_result") {
                continue;
            }
            let Some(id) = b.get("tool_use_id").and_then(Value::as_str) else {
                continue;
            };
            let is_error = b.get("is_error").and_then(Value::as_bool).unwrap_or(false);
            let meta = b.get("content").map(size_meta);
            // A call has one result; more copies of it (sidechain replays) are later. The
            // earliest is kept, and the row belongs to the main-chain copies' agent, so the
            // row does not depend on the order copies arrive in.
            let before: Option<i64> = tx
                .prepare_cached("SELECT finished_at FROM tool_calls WHERE tool_use_id = ?1")?
                .query_row([id], |r| r.get(0))
                .optional()?
                .flatten();
            let (started, finished): (Option<i64>, Option<i64>) = tx
                .prepare_cached(
                    "INSERT INTO tool_calls (tool_use_id, session_id, agent_id, platform, project_path, finished_at, is_error, result_meta)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT (tool_use_id) DO UPDATE SET
                       finished_at = min(coalesce(finished_at, excluded.finished_at), excluded.finished_at),
                       is_error = CASE WHEN finished_at IS NULL OR excluded.finished_at < finished_at
                                       THEN excluded.is_error ELSE is_error END,
                       result_meta = CASE WHEN finished_at IS NULL OR excluded.finished_at < finished_at
                                          THEN excluded.result_meta ELSE result_meta END,
                       agent_id = CASE WHEN ?9 THEN agent_id ELSE excluded.agent_id END,
                       project_path = coalesce(project_path, excluded.project_path)
                     RETURNING started_at, finished_at",
                )?
                .query_row(
                    params![id, c.session_id, c.agent_id, c.rec.platform, c.project, c.ts, is_error, meta, c.sidechain],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
            // The row's bucket is its start, or its finish (which may have moved) while the
            // call is unknown.
            dirty.extend(
                started
                    .into_iter()
                    .chain(finished)
                    .chain(before)
                    .map(bucket_of),
            );
        }
    }
    let Some(text) = content_text(content) else {
        return Ok(());
    };
    let meta = v.get("isMeta").and_then(Value::as_bool).unwrap_or(false)
        || v.get("isCompactSummary")
            .and_then(Value::as_bool)
            .unwrap_or(false)
        || v.get("isVisibleInTranscriptOnly")
            .and_then(Value::as_bool)
            .unwrap_or(false);
    let trimmed = text.trim_start();
    let is_command = v
        .get(COMMAND_FLAG)
        .and_then(Value::as_bool)
        .unwrap_or(false)
        || NOT_PROMPT_PREFIXES.iter().any(|p| trimmed.starts_with(p));
    let is_prompt = !meta && !c.sidechain && !is_command;
    // Prompts count even when the privacy mode left no text (metadata mode).
    let has_content = !text.trim().is_empty() || matches!(content, Value::String(_));
    if !has_content {
        return Ok(());
    }
    insert_message(tx, c, &mut round.fts, "user", is_prompt, None, &text)?;
    if is_prompt
        && !text.trim().is_empty()
        && let Some(acc) = round.sessions.get_mut(c.session_id)
        && acc.first_prompt.as_ref().is_none_or(|(t, _)| c.ts < *t)
    {
        acc.first_prompt = Some((c.ts, text.chars().take(500).collect()));
    }
    Ok(())
}

fn size_meta(content: &Value) -> String {
    match content {
        // Already a {chars, lines} summary (standard/metadata mode).
        Value::Object(_) => content.to_string(),
        Value::String(s) => {
            serde_json::json!({"chars": s.len(), "lines": s.lines().count()}).to_string()
        }
        other => serde_json::json!({"chars": other.to_string().len()}).to_string(),
    }
}

/// The usage of an assistant record and its price, validated: an error rejects the record.
type PricedUsage<'a> = Option<(UsageEntry<'a>, (i64, bool))>;

fn validated_usage(v: &Value) -> Result<PricedUsage<'_>, DeriveError> {
    let usage = usage_entry(v)
        .map_err(DeriveError::Reject)?
        // API errors (`<synthetic>`, zero usage) are no responses at all. A `<synthetic>`
        // line with tokens keeps them, as in ccusage's totals, but never counts as a
        // response (see `USAGE_SUMS`).
        .filter(|u| !(u.model == Some(crate::pricing::SYNTHETIC_MODEL) && u.usage.is_zero()));
    match usage {
        Some(u) => {
            let p = price(&u).map_err(DeriveError::Reject)?;
            Ok(Some((u, p)))
        }
        None => Ok(None),
    }
}

fn derive_assistant(
    tx: &Transaction<'_>,
    c: &Ctx<'_>,
    usage: PricedUsage<'_>,
    round: &mut Round,
) -> Result<(), DeriveError> {
    let dirty = &mut round.dirty;
    let v = c.rec.value;
    let msg = v.get("message");
    let model = msg.and_then(|m| m.get("model")).and_then(Value::as_str);
    if let Some(content) = msg.and_then(|m| m.get("content")) {
        if let Some(text) = content_text(content) {
            insert_message(tx, c, &mut round.fts, "assistant", false, model, &text)?;
        }
        if let Value::Array(blocks) = content {
            for b in blocks {
                if b.get("type").and_then(Value::as_str) != Some("tool_use") {
                    continue;
                }
                let Some(id) = b.get("id").and_then(Value::as_str) else {
                    continue;
                };
                let name = b.get("name").and_then(Value::as_str);
                let input = b.get("input").map(Value::to_string);
                // Copies of the call (streamed lines, sidechain replays): the earliest names
                // it, and the main-chain copies' agent owns it, whatever the order.
                let (started, finished): (Option<i64>, Option<i64>) = tx
                    .prepare_cached(
                        "INSERT INTO tool_calls (tool_use_id, session_id, agent_id, platform, project_path, name, started_at, input_meta)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                         ON CONFLICT (tool_use_id) DO UPDATE SET
                           name = CASE WHEN started_at IS NULL OR excluded.started_at < started_at
                                       THEN coalesce(excluded.name, name) ELSE coalesce(name, excluded.name) END,
                           input_meta = CASE WHEN started_at IS NULL OR excluded.started_at < started_at
                                             THEN coalesce(excluded.input_meta, input_meta)
                                             ELSE coalesce(input_meta, excluded.input_meta) END,
                           started_at = min(coalesce(started_at, excluded.started_at), excluded.started_at),
                           agent_id = CASE WHEN ?9 THEN agent_id ELSE excluded.agent_id END,
                           project_path = coalesce(project_path, excluded.project_path)
                         RETURNING started_at, finished_at",
                    )?
                    .query_row(
                        params![id, c.session_id, c.agent_id, c.rec.platform, c.project, name, c.ts, input, c.sidechain],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )?;
                // The row's bucket is its start, or its finish while the call is unknown.
                dirty.extend(started.into_iter().chain(finished).map(bucket_of));
            }
        }
    }
    if let Some((u, p)) = usage {
        upsert_response(tx, c, &u, p, dirty)?;
    }
    Ok(())
}

/// (cost in pico-USD, priced) of a response: its own `costUSD` when it has one (ccusage's
/// default "auto" mode), else from the price table; unknown models are unpriced (0).
fn price(u: &UsageEntry<'_>) -> Result<(i64, bool), String> {
    let max = (MAX_COST_USD_PER_RESPONSE * 1e12) as i64;
    let (cost, priced) = match u.cost_usd {
        Some(usd) => ((usd * 1e12).round() as i64, true),
        None => match u
            .model
            .and_then(|m| PriceTable::embedded().cost_pusd(m, &u.usage))
        {
            Some(p) => (p, true),
            None => (0, false),
        },
    };
    if cost > max {
        return Err(format!(
            "the response costs {} USD, above the bound of {MAX_COST_USD_PER_RESPONSE} USD",
            crate::pricing::pusd_to_usd(cost)
        ));
    }
    Ok((cost, priced))
}

/// The usage facts of an assistant record, when ccusage would count it.
struct UsageEntry<'a> {
    message_id: Option<&'a str>,
    request_id: Option<&'a str>,
    model: Option<&'a str>,
    usage: TokenUsage,
    cache_creation: i64,
    has_speed: bool,
    cost_usd: Option<f64>,
}

/// Largest token count one response may report in any field: 5× the largest context window
/// (2M). Bigger is corrupt input; bounded counts also keep every SQL `sum()` far from i64.
pub const MAX_TOKENS_PER_RESPONSE: u64 = 10_000_000;
/// Largest cost one response may carry or come to, in USD.
pub const MAX_COST_USD_PER_RESPONSE: f64 = 1_000.0;

/// A token count: `Ok(None)` when absent or not a number (ccusage skips such lines), an
/// error when it is a number no response can have.
fn token_count(usage: &serde_json::Map<String, Value>, k: &str) -> Result<Option<u64>, String> {
    match usage.get(k) {
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if v <= MAX_TOKENS_PER_RESPONSE => Ok(Some(v)),
            Some(v) => Err(format!(
                "usage.{k} = {v} is above the bound of {MAX_TOKENS_PER_RESPONSE} tokens per response"
            )),
            None if n.as_f64().is_some_and(|f| f < 0.0) => {
                Err(format!("usage.{k} = {n} is negative"))
            }
            None => Err(format!("usage.{k} = {n} is not a whole number")),
        },
        _ => Ok(None),
    }
}

/// The usage facts of an assistant record when ccusage would count it; an error names an
/// out-of-range figure (the record is then not derived but dead-lettered).
fn usage_entry(v: &Value) -> Result<Option<UsageEntry<'_>>, String> {
    let Some(msg) = v.get("message") else {
        return Ok(None);
    };
    let Some(usage) = msg.get("usage").and_then(Value::as_object) else {
        return Ok(None);
    };
    let input = token_count(usage, "input_tokens")?;
    let output = token_count(usage, "output_tokens")?;
    let cache_creation = token_count(usage, "cache_creation_input_tokens")?;
    let cache_read = token_count(usage, "cache_read_input_tokens")?;
    let split = usage.get("cache_creation").and_then(Value::as_object);
    let (c5, c1) = match split {
        Some(cc) => (
            token_count(cc, "ephemeral_5m_input_tokens")?.unwrap_or(0),
            token_count(cc, "ephemeral_1h_input_tokens")?.unwrap_or(0),
        ),
        None => (cache_creation.unwrap_or(0), 0),
    };
    let cost_usd = match v.get("costUSD") {
        Some(Value::Number(n)) => match n.as_f64() {
            Some(c) if (0.0..=MAX_COST_USD_PER_RESPONSE).contains(&c) => Some(c),
            _ => {
                return Err(format!(
                    "costUSD = {n} is outside 0..{MAX_COST_USD_PER_RESPONSE} USD per response"
                ));
            }
        },
        _ => None,
    };
    // ccusage requires these two numbers.
    let (Some(input), Some(output)) = (input, output) else {
        return Ok(None);
    };
    // ccusage skips records where these are explicitly null.
    let null = |o: Option<&Value>| o.is_some_and(Value::is_null);
    if null(msg.get("id"))
        || null(msg.get("model"))
        || null(v.get("requestId"))
        || null(v.get("sessionId"))
        || null(v.get("version"))
        || null(v.get("costUSD"))
        || null(v.get("cwd"))
        || null(usage.get("speed"))
        || null(usage.get("cache_creation_input_tokens"))
        || null(usage.get("cache_read_input_tokens"))
        || null(v.get("isApiErrorMessage"))
    {
        return Ok(None);
    }
    if let Some(ver) = v.get("version").and_then(Value::as_str)
        && !looks_like_semver(ver)
    {
        return Ok(None);
    }
    let speed = usage.get("speed").and_then(Value::as_str);
    Ok(Some(UsageEntry {
        message_id: non_empty(msg.get("id")),
        request_id: non_empty(v.get("requestId")),
        model: msg.get("model").and_then(Value::as_str),
        usage: TokenUsage {
            input,
            output,
            cache_creation_5m: c5,
            cache_creation_1h: c1,
            cache_read: cache_read.unwrap_or(0),
            fast: speed == Some("fast"),
        },
        cache_creation: cache_creation.unwrap_or(0) as i64,
        has_speed: speed.is_some(),
        cost_usd,
    }))
}

fn non_empty(o: Option<&Value>) -> Option<&str> {
    o.and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn looks_like_semver(s: &str) -> bool {
    let core = s.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn upsert_response(
    tx: &Transaction<'_>,
    c: &Ctx<'_>,
    u: &UsageEntry<'_>,
    (cost, priced): (i64, bool),
    dirty: &mut BTreeSet<i64>,
) -> rusqlite::Result<()> {
    let key = match (u.message_id, u.request_id) {
        (Some(m), Some(r)) => format!("{m}:{r}"),
        (Some(m), None) => m.to_string(),
        (None, _) => format!("line:{}", c.rec.event_id),
    };
    let total = (u.usage.input + u.usage.output + u.usage.cache_read) as i64 + u.cache_creation;
    // Sidechain replays (same message.id, another requestId) of a main-chain response are
    // dropped; a main-chain copy pushes such replays out.
    if let Some(mid) = u.message_id {
        if c.sidechain {
            let main: Option<i64> = tx
                .prepare_cached(
                    "SELECT 1 FROM api_responses WHERE message_id = ?1 AND is_sidechain = 0 AND dedup_key <> ?2 LIMIT 1",
                )?
                .query_row(params![mid, key], |r| r.get(0))
                .optional()?;
            if main.is_some() {
                return Ok(());
            }
        } else {
            let mut stmt = tx.prepare_cached(
                "DELETE FROM api_responses WHERE message_id = ?1 AND is_sidechain = 1 AND dedup_key <> ?2 RETURNING ts",
            )?;
            let gone: Vec<i64> = stmt
                .query_map(params![mid, key], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            dirty.extend(gone.into_iter().map(bucket_of));
        }
    }
    let existing: Option<(i64, i64, i64, i64, String)> = tx
        .prepare_cached(
            "SELECT is_sidechain, input_tokens + output_tokens + cache_creation_tokens + cache_read_tokens,
                    has_speed, ts, event_id
             FROM api_responses WHERE dedup_key = ?1",
        )?
        .query_row([&key], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?;
    if let Some((old_side, old_total, old_speed, old_ts, old_event)) = existing {
        // The copy kept is the greatest under one total order, so it does not depend on the
        // order copies arrive in: a main-chain copy over a sidechain one, then the larger
        // token total, then one with a `speed` field (ccusage's preferences, which it applies
        // pairwise in file order), then the earliest (as ccusage keeps the first of equal
        // copies), then the smaller event id.
        use std::cmp::Reverse;
        let new = (
            !c.sidechain,
            total,
            u.has_speed,
            Reverse(c.ts),
            Reverse(c.rec.event_id),
        );
        let old = (
            old_side == 0,
            old_total,
            old_speed == 1,
            Reverse(old_ts),
            Reverse(old_event.as_str()),
        );
        if new <= old {
            return Ok(());
        }
        dirty.insert(bucket_of(old_ts));
    }
    tx.prepare_cached(
        "INSERT OR REPLACE INTO api_responses
           (dedup_key, message_id, event_id, session_id, agent_id, platform, project_path, ts, model,
            is_sidechain, has_speed, input_tokens, output_tokens, cache_creation_tokens,
            cache_read_tokens, cost_pusd, priced)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    )?
    .execute(params![
        key,
        u.message_id,
        c.rec.event_id,
        c.session_id,
        c.agent_id,
        c.rec.platform,
        c.project,
        c.ts,
        u.model,
        c.sidechain,
        u.has_speed,
        u.usage.input as i64,
        u.usage.output as i64,
        u.cache_creation,
        u.usage.cache_read as i64,
        cost,
        priced
    ])?;
    dirty.insert(bucket_of(c.ts));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_and_negative_token_counts_are_rejected() {
        let line = |usage: &str| -> Value {
            serde_json::from_str(&format!(
                r#"{{"type":"assistant","requestId":"r","message":{{"id":"m","model":"claude-sonnet-4-5","usage":{usage}}}}}"#
            ))
            .unwrap()
        };
        let ok = line(r#"{"input_tokens":10,"output_tokens":5,"cache_read_input_tokens":3}"#);
        assert_eq!(usage_entry(&ok).unwrap().unwrap().usage.cache_read, 3);
        for bad in [
            r#"{"input_tokens":5000000000000000000,"output_tokens":1}"#,
            r#"{"input_tokens":-4,"output_tokens":1}"#,
            r#"{"input_tokens":1,"output_tokens":2.5}"#,
            r#"{"input_tokens":1,"output_tokens":1,"cache_creation":{"ephemeral_5m_input_tokens":99999999999}}"#,
        ] {
            let err = usage_entry(&line(bad)).err();
            assert!(err.is_some(), "{bad} accepted");
        }
        let mut costly = ok.clone();
        costly["costUSD"] = serde_json::json!(1e9);
        assert!(usage_entry(&costly).is_err());
        // Not numbers at all: skipped like ccusage does, not rejected.
        assert!(
            usage_entry(&line(r#"{"input_tokens":"x","output_tokens":1}"#))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn semver_check() {
        assert!(looks_like_semver("2.1.39"));
        assert!(looks_like_semver("1.0.0-beta.1"));
        assert!(!looks_like_semver("2.1"));
        assert!(!looks_like_semver("x.y.z"));
    }
}
