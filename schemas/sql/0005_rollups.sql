-- 0005: rollups (issue 9). Pre-aggregated figures of api_responses, token_estimates and
-- tool_calls, rewritten for the quarter-hour buckets a slow-path round changed, in that
-- round's transaction, so they always equal the conversation tables. `get_metrics` and
-- `get_tool_stats` read hundreds or thousands of these rows instead of every response and
-- tool call. Quarter-hour buckets (`ts / 900000`) add up exactly to days, weeks and months in
-- every time zone; UTC hours (`bucket / 4`) and days (`bucket / 96`) hold the same figures
-- with fewer rows. The rows are filled by the binary (metrics::rollup) right after this
-- migration, from the tables as they are.

-- A small integer per (platform, session id), so distinct sessions count fast.
CREATE TABLE session_keys (
    sk         INTEGER PRIMARY KEY,
    platform   TEXT NOT NULL,
    session_id TEXT NOT NULL,
    UNIQUE (platform, session_id)
) STRICT;

-- Usage, estimates and tool-call counts per bucket, session, model and project.
-- model: coalesce(nullif(model, ''), '(unknown)'), or '' for a row that only carries tool
-- calls (they have no model); project: coalesce(project_path, ''). `rows` counts the
-- api_responses and token_estimates rows (a session is active where it has one).
CREATE TABLE rollup_q (
    bucket         INTEGER NOT NULL,
    sk             INTEGER NOT NULL,
    model          TEXT    NOT NULL,
    project        TEXT    NOT NULL,
    platform       TEXT    NOT NULL,
    input          INTEGER NOT NULL,
    output         INTEGER NOT NULL,
    cache_creation INTEGER NOT NULL,
    cache_read     INTEGER NOT NULL,
    cost_pusd      INTEGER NOT NULL,
    responses      INTEGER NOT NULL,
    unpriced       INTEGER NOT NULL,
    est_input      INTEGER NOT NULL,
    est_output     INTEGER NOT NULL,
    est_cost_pusd  INTEGER NOT NULL,
    rows           INTEGER NOT NULL,
    tool_calls     INTEGER NOT NULL,
    tool_errors    INTEGER NOT NULL,
    PRIMARY KEY (bucket, sk, model, project)
) STRICT, WITHOUT ROWID;

-- The same per UTC day (day = bucket / 96).
CREATE TABLE rollup_d (
    day            INTEGER NOT NULL,
    sk             INTEGER NOT NULL,
    model          TEXT    NOT NULL,
    project        TEXT    NOT NULL,
    platform       TEXT    NOT NULL,
    input          INTEGER NOT NULL,
    output         INTEGER NOT NULL,
    cache_creation INTEGER NOT NULL,
    cache_read     INTEGER NOT NULL,
    cost_pusd      INTEGER NOT NULL,
    responses      INTEGER NOT NULL,
    unpriced       INTEGER NOT NULL,
    est_input      INTEGER NOT NULL,
    est_output     INTEGER NOT NULL,
    est_cost_pusd  INTEGER NOT NULL,
    rows           INTEGER NOT NULL,
    tool_calls     INTEGER NOT NULL,
    tool_errors    INTEGER NOT NULL,
    PRIMARY KEY (day, sk, model, project)
) STRICT, WITHOUT ROWID;

-- The same per UTC hour (hour = bucket / 4): local days of zones whose offset is a whole
-- number of hours are whole hours, and other zones need quarter hours only for the hour that
-- holds their midnight.
CREATE TABLE rollup_h (
    hour           INTEGER NOT NULL,
    sk             INTEGER NOT NULL,
    model          TEXT    NOT NULL,
    project        TEXT    NOT NULL,
    platform       TEXT    NOT NULL,
    input          INTEGER NOT NULL,
    output         INTEGER NOT NULL,
    cache_creation INTEGER NOT NULL,
    cache_read     INTEGER NOT NULL,
    cost_pusd      INTEGER NOT NULL,
    responses      INTEGER NOT NULL,
    unpriced       INTEGER NOT NULL,
    est_input      INTEGER NOT NULL,
    est_output     INTEGER NOT NULL,
    est_cost_pusd  INTEGER NOT NULL,
    rows           INTEGER NOT NULL,
    tool_calls     INTEGER NOT NULL,
    tool_errors    INTEGER NOT NULL,
    PRIMARY KEY (hour, sk, model, project)
) STRICT, WITHOUT ROWID;

-- Named tool calls per bucket (of coalesce(started_at, finished_at)), platform, project and
-- tool: what get_tool_stats sums. took_n counts the calls with a took_ms.
CREATE TABLE rollup_tools_q (
    bucket   INTEGER NOT NULL,
    platform TEXT    NOT NULL,
    project  TEXT    NOT NULL,
    name     TEXT    NOT NULL,
    calls    INTEGER NOT NULL,
    errors   INTEGER NOT NULL,
    took_n   INTEGER NOT NULL,
    took_sum INTEGER NOT NULL,
    took_max INTEGER,
    PRIMARY KEY (bucket, platform, project, name)
) STRICT, WITHOUT ROWID;

CREATE TABLE rollup_tools_d (
    day      INTEGER NOT NULL,
    platform TEXT    NOT NULL,
    project  TEXT    NOT NULL,
    name     TEXT    NOT NULL,
    calls    INTEGER NOT NULL,
    errors   INTEGER NOT NULL,
    took_n   INTEGER NOT NULL,
    took_sum INTEGER NOT NULL,
    took_max INTEGER,
    PRIMARY KEY (day, platform, project, name)
) STRICT, WITHOUT ROWID;

-- A tool call's time is coalesce(started_at, finished_at) everywhere (metrics, tool stats,
-- rollups): index it, so a bucket range is a search, not a scan of every call.
CREATE INDEX tool_calls_at ON tool_calls (coalesce(started_at, finished_at));
