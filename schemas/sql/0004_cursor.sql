-- 0004: Cursor (issue 8): where a token count comes from, estimates kept apart from
-- measured counts, and the facts the Cursor deriver keeps so that its rows are a function of
-- the newest version of every record, whatever order the records come in.

-- Where an `api_responses` row's counts come from: `transcript` (Claude Code transcripts,
-- every row before 0004), `cursor` (a Cursor bubble's `tokenCount`, or a composer's
-- `usageData` when it carries token numbers), `hook` (the Cursor `stop` hook's token fields).
-- Every row is a measured count; estimates never go here.
ALTER TABLE api_responses ADD COLUMN token_source TEXT NOT NULL DEFAULT 'transcript';

-- Estimated tokens (about 4 characters per token of the text sizes a Cursor payload carries)
-- of the assistant turns that have no measured count. Never summed into the measured token
-- totals; reported beside them, labelled. A turn's estimate disappears once a measured count
-- for it is known.
CREATE TABLE token_estimates (
    key           TEXT    PRIMARY KEY,
    session_id    TEXT    NOT NULL,
    platform      TEXT    NOT NULL,
    project_path  TEXT,
    ts            INTEGER NOT NULL,
    model         TEXT,
    input_tokens  INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    -- Estimated cost of the estimated tokens (pico-USD), 0 when unpriced.
    cost_pusd     INTEGER NOT NULL,
    priced        INTEGER NOT NULL
) STRICT;
CREATE INDEX token_estimates_ts ON token_estimates (ts);
CREATE INDEX token_estimates_session ON token_estimates (session_id);

-- The project of a composer as a workspace database lists it (workspace.json folder, or
-- the first folder of a multi-root workspace). The composer's own `workspacePath` wins.
CREATE TABLE cursor_workspaces (
    composer_id  TEXT    PRIMARY KEY,
    project_path TEXT,
    workspace    TEXT,
    seq          INTEGER NOT NULL
) STRICT;

-- The newest version (by raw_traces.seq) derived of every Cursor database row key
-- (`composerData:<cid>`, `bubbleId:<cid>:<bid>`, `<hash>/composer.composerData`): an older
-- version arriving later is ignored, a newer one replaces what the older one wrote.
CREATE TABLE cursor_versions (
    key TEXT    PRIMARY KEY,
    seq INTEGER NOT NULL
) STRICT;

-- The facts of the newest version of each composer.
CREATE TABLE cursor_composers (
    composer_id     TEXT    PRIMARY KEY,
    seq             INTEGER NOT NULL,
    created_at      INTEGER,
    last_updated_at INTEGER,
    name            TEXT,
    model           TEXT,
    project_path    TEXT,
    git_branch      TEXT,
    -- JSON array of bubble ids in conversation order (`headers`)
    headers         TEXT,
    -- JSON array of sub-composer ids; the parent when this is a sub-composer
    sub_composers   TEXT,
    parent_id       TEXT,
    -- `usageData` token numbers, only when Cursor wrote real ones
    usage_input     INTEGER,
    usage_output    INTEGER
) STRICT;
CREATE INDEX cursor_composers_parent ON cursor_composers (parent_id) WHERE parent_id IS NOT NULL;

-- The facts of the newest version of each bubble that tokens and estimates need.
CREATE TABLE cursor_bubbles (
    composer_id    TEXT    NOT NULL,
    bubble_id      TEXT    NOT NULL,
    seq            INTEGER NOT NULL,
    event_id       TEXT    NOT NULL,
    type           INTEGER NOT NULL,
    ts             INTEGER,
    request_id     TEXT,
    model          TEXT,
    text_bytes     INTEGER NOT NULL,
    thinking_bytes INTEGER NOT NULL,
    args_bytes     INTEGER NOT NULL,
    result_bytes   INTEGER NOT NULL,
    input_tokens   INTEGER NOT NULL,
    output_tokens  INTEGER NOT NULL,
    PRIMARY KEY (composer_id, bubble_id)
) STRICT, WITHOUT ROWID;

-- Token fields of Cursor `stop` hook payloads (key `cu:<conversation_id>:<generation_id>`).
CREATE TABLE cursor_stop_tokens (
    key                TEXT    PRIMARY KEY,
    session_id         TEXT    NOT NULL,
    event_id           TEXT    NOT NULL,
    ts                 INTEGER NOT NULL,
    model              TEXT,
    input_tokens       INTEGER NOT NULL,
    output_tokens      INTEGER NOT NULL,
    cache_read_tokens  INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL
) STRICT;
CREATE INDEX cursor_stop_tokens_session ON cursor_stop_tokens (session_id);
