-- 0001: raw traces (layer 2 only) and the conversation tables (layer 2 writes, layer 3 reads).
-- Times are milliseconds since the Unix epoch, UTC. Costs are integer pico-USD (1e-12 USD).

-- Every event as received (privacy rules already applied), zlib-compressed.
-- `seq` is the insertion order; the slow path's watermark points into it.
CREATE TABLE raw_traces (
    seq         INTEGER PRIMARY KEY,
    id          TEXT    NOT NULL UNIQUE,
    platform    TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    session_id  TEXT,
    ts          INTEGER,
    source      TEXT    NOT NULL,
    source_offset INTEGER NOT NULL,
    payload     BLOB    NOT NULL,
    received_at INTEGER NOT NULL
) STRICT;
CREATE INDEX raw_traces_session ON raw_traces (session_id, ts);

-- Slow-path progress: every raw_traces row with seq <= value has been derived.
CREATE TABLE pipeline_state (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;

CREATE TABLE projects (
    path       TEXT PRIMARY KEY,
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL
) STRICT;

CREATE TABLE sessions (
    session_id   TEXT PRIMARY KEY,
    platform     TEXT NOT NULL,
    project_path TEXT,
    title        TEXT,
    first_prompt TEXT,
    first_prompt_at INTEGER,
    started_at   INTEGER NOT NULL,
    ended_at     INTEGER NOT NULL,
    version      TEXT,
    git_branch   TEXT
) STRICT;
CREATE INDEX sessions_started ON sessions (started_at);

-- Sub-agents (Task/Agent tool, auto-compaction helpers) belong to their parent session.
CREATE TABLE subagents (
    session_id TEXT NOT NULL,
    agent_id   TEXT NOT NULL,
    agent_type TEXT,
    started_at INTEGER NOT NULL,
    ended_at   INTEGER NOT NULL,
    PRIMARY KEY (session_id, agent_id)
) STRICT;

-- Messages in the conversation, text after privacy rules (NULL when there is none).
CREATE TABLE messages (
    rowid      INTEGER PRIMARY KEY,
    event_id   TEXT    NOT NULL UNIQUE,
    session_id TEXT    NOT NULL,
    agent_id   TEXT,
    platform   TEXT    NOT NULL,
    role       TEXT    NOT NULL,
    is_prompt  INTEGER NOT NULL,
    ts         INTEGER NOT NULL,
    model      TEXT,
    text       TEXT
) STRICT;
CREATE INDEX messages_session ON messages (session_id, ts);

CREATE VIRTUAL TABLE messages_fts USING fts5 (
    text,
    content = 'messages',
    content_rowid = 'rowid',
    tokenize = 'porter unicode61'
);

-- One row per de-duplicated API response (key: message.id + requestId), ccusage's rules.
CREATE TABLE api_responses (
    dedup_key      TEXT PRIMARY KEY,
    message_id     TEXT,
    event_id       TEXT    NOT NULL,
    session_id     TEXT    NOT NULL,
    agent_id       TEXT,
    platform       TEXT    NOT NULL,
    project_path   TEXT,
    ts             INTEGER NOT NULL,
    model          TEXT,
    is_sidechain   INTEGER NOT NULL,
    has_speed      INTEGER NOT NULL,
    input_tokens   INTEGER NOT NULL,
    output_tokens  INTEGER NOT NULL,
    cache_creation_tokens INTEGER NOT NULL,
    cache_read_tokens     INTEGER NOT NULL,
    cost_pusd      INTEGER NOT NULL,
    priced         INTEGER NOT NULL
) STRICT;
CREATE INDEX api_responses_ts ON api_responses (ts);
CREATE INDEX api_responses_session ON api_responses (session_id);
CREATE INDEX api_responses_message ON api_responses (message_id);

-- Tool calls paired with their results (either may arrive first).
CREATE TABLE tool_calls (
    tool_use_id  TEXT PRIMARY KEY,
    session_id   TEXT    NOT NULL,
    agent_id     TEXT,
    platform     TEXT    NOT NULL,
    project_path TEXT,
    name         TEXT,
    started_at   INTEGER,
    finished_at  INTEGER,
    is_error     INTEGER,
    input_meta   TEXT,
    result_meta  TEXT,
    -- Wall time from the tool_use record to its tool_result record.
    duration_ms  INTEGER GENERATED ALWAYS AS (finished_at - started_at) VIRTUAL
) STRICT;
CREATE INDEX tool_calls_session ON tool_calls (session_id);
CREATE INDEX tool_calls_started ON tool_calls (started_at);
CREATE INDEX tool_calls_name ON tool_calls (name, is_error);

-- Quarter-hour buckets whose Redis metrics must be recomputed (written in the same
-- transaction as the rows that changed them, cleared once Redis has the new figures).
CREATE TABLE dirty_buckets (
    bucket INTEGER PRIMARY KEY
) STRICT;
