-- 0003: hook events in the session timeline, Claude Code's own cost figures, and the
-- status line's official usage windows.

-- One row per hook payload (Claude Code or Cursor), privacy rules already applied. The
-- session timeline: prompts, tool calls, permissions, notifications, stops, compactions,
-- model switches, sub-agents, session start and end.
CREATE TABLE hook_events (
    event_id    TEXT    PRIMARY KEY,
    session_id  TEXT    NOT NULL,
    platform    TEXT    NOT NULL,
    agent_id    TEXT,
    ts          INTEGER NOT NULL,
    -- `hook_event_name` as the client sent it (PreToolUse, SessionStart, ...)
    event       TEXT    NOT NULL,
    prompt_id   TEXT,
    tool_use_id TEXT,
    tool_name   TEXT,
    -- Small JSON object of the event's own facts (source, reason, trigger, notification
    -- type, from/to model, error flag, duration, ...); never content.
    detail      TEXT
) STRICT;
CREATE INDEX hook_events_session ON hook_events (session_id, ts);
CREATE INDEX hook_events_event ON hook_events (event, ts);

-- What hooks add to a tool call: Claude Code's own duration (PostToolUse / Failure
-- `duration_ms`), the MCP server of an `mcp__` tool, whether a permission was requested or
-- denied, whether the hook saw it fail (PostToolUseFailure) and whether that was an
-- interrupt. Hooks never write the transcript's columns (started_at aside, the earliest of
-- both), so merging does not depend on which arrives first.
ALTER TABLE tool_calls ADD COLUMN hook_duration_ms INTEGER;
ALTER TABLE tool_calls ADD COLUMN mcp_server TEXT;
ALTER TABLE tool_calls ADD COLUMN permission TEXT;
ALTER TABLE tool_calls ADD COLUMN hook_failed INTEGER;
ALTER TABLE tool_calls ADD COLUMN is_interrupt INTEGER;
-- Failed by either account; how long it took by Claude Code's clock, else the records'.
ALTER TABLE tool_calls ADD COLUMN failed INTEGER
    GENERATED ALWAYS AS (max(coalesce(is_error, 0), coalesce(hook_failed, 0))) VIRTUAL;
ALTER TABLE tool_calls ADD COLUMN took_ms INTEGER
    GENERATED ALWAYS AS (coalesce(hook_duration_ms, finished_at - started_at)) VIRTUAL;

-- How a session started (startup, resume, compact, clear, fork) and why it ended.
ALTER TABLE sessions ADD COLUMN start_source TEXT;
ALTER TABLE sessions ADD COLUMN end_reason TEXT;

-- Claude Code's running cost total per session (`cost-state` records, and the status
-- line's `cost.total_cost_usd`): one row per figure seen, so any time range can take the
-- increase inside it. Totals only grow within a session; the largest figure before a time
-- is the session's cost up to then.
CREATE TABLE cost_states (
    session_id  TEXT    NOT NULL,
    ts          INTEGER NOT NULL,
    total_pusd  INTEGER NOT NULL,
    -- `cost-state` or `statusline`
    origin      TEXT    NOT NULL,
    has_unknown_model_cost INTEGER NOT NULL DEFAULT 0,
    -- `modelUsage` as Claude Code wrote it (token counts and costUSD per model), or NULL
    model_usage TEXT,
    PRIMARY KEY (session_id, ts, origin)
) STRICT, WITHOUT ROWID;

-- The status line's official plan-limit figures (`rate_limits.five_hour` / `seven_day`).
CREATE TABLE usage_samples (
    event_id    TEXT    PRIMARY KEY,
    session_id  TEXT,
    ts          INTEGER NOT NULL,
    five_hour_pct       REAL,
    five_hour_resets_at INTEGER,
    seven_day_pct       REAL,
    seven_day_resets_at INTEGER
) STRICT;
CREATE INDEX usage_samples_ts ON usage_samples (ts);
