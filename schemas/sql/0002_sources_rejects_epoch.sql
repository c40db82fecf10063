-- 0002: typed event sources, derivation rejects, metric versions and the store id.

-- raw_traces with a typed source: a transcript line (file + byte offset), a hook payload
-- (event name), or a database row (key + content version). Rebuilt to relax the file-only
-- NOT NULL on source_offset; seq values are kept, so the slow path's watermark stays valid.
CREATE TABLE raw_traces_v2 (
    seq            INTEGER PRIMARY KEY,
    id             TEXT    NOT NULL UNIQUE,
    platform       TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    session_id     TEXT,
    ts             INTEGER,
    source_kind    TEXT    NOT NULL DEFAULT 'file' CHECK (source_kind IN ('file', 'hook', 'db')),
    -- file: the path; hook: the event name; db: the database path
    source         TEXT    NOT NULL,
    -- file: byte offset of the line; hook: when it was received (epoch ms)
    source_offset  INTEGER,
    -- db: the row key
    source_key     TEXT,
    -- db: content version of a row rewritten in place
    source_version INTEGER,
    payload        BLOB    NOT NULL,
    received_at    INTEGER NOT NULL
) STRICT;
INSERT INTO raw_traces_v2 (seq, id, platform, kind, session_id, ts, source_kind, source,
                           source_offset, payload, received_at)
    SELECT seq, id, platform, kind, session_id, ts, 'file', source, source_offset, payload,
           received_at
    FROM raw_traces;
DROP TABLE raw_traces;
ALTER TABLE raw_traces_v2 RENAME TO raw_traces;
CREATE INDEX raw_traces_session ON raw_traces (session_id, ts);

-- Records the slow path cannot derive (out-of-range token counts, ...): written in the
-- transaction that skipped them, then sent to the dead-letter stream (`sent` = 1). Kept, so
-- a re-derivation does not dead-letter them twice.
CREATE TABLE derive_rejects (
    event_id TEXT    PRIMARY KEY,
    seq      INTEGER NOT NULL,
    reason   TEXT    NOT NULL,
    source   TEXT    NOT NULL,
    source_offset INTEGER,
    at       INTEGER NOT NULL,
    sent     INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX derive_rejects_unsent ON derive_rejects (sent) WHERE sent = 0;

-- The slow-path watermark at which a bucket was last marked dirty: a flush computed from a
-- snapshot at watermark W clears only marks with version <= W.
ALTER TABLE dirty_buckets ADD COLUMN version INTEGER NOT NULL DEFAULT 0;

-- Ties the Redis metrics to this database (see metrics::epoch).
INSERT OR IGNORE INTO pipeline_state (key, value) VALUES ('store_id', abs(random()) % 9007199254740991 + 1);

-- Which kind of record set the title: 0 none or a summary, 1 `ai-title`, 2 `custom-title`
-- (the user's own name wins over the generated one, whatever their order).
ALTER TABLE sessions ADD COLUMN title_rank INTEGER NOT NULL DEFAULT 0;

-- Every `summary` record by the uuid of the message it summarizes: a summary may be derived
-- before its leaf, and filed under another session id than the leaf's, so it waits here
-- until the leaf's session is derived. (Of two summaries of one leaf, the greater text wins,
-- so the result does not depend on their order.)
-- The best `ai-title` / `custom-title` of each session (higher rank, then the later record),
-- kept even when it is derived before any record that creates the session.
CREATE TABLE session_titles (
    session_id TEXT PRIMARY KEY,
    rank       INTEGER NOT NULL,
    title      TEXT NOT NULL,
    seq        INTEGER NOT NULL
) STRICT;

CREATE TABLE summaries (
    leaf_uuid TEXT PRIMARY KEY,
    summary   TEXT NOT NULL
) STRICT;
