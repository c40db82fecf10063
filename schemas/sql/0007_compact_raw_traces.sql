-- 0007: compact raw_traces (issue 9 item 3: the store ≤ 0.5× the JSONL it indexes).
--
-- Measured on a 200 MB Claude Code 2.0-shaped history (185,466 rows, docs/BENCHMARKS.md): of
-- 113.0 MB of raw_traces, the strings every row repeated took 41.8 MB — `source` (the
-- transcript path) 17.2 MB, `id` (`cc:<session uuid>:<line uuid>`, 74 B) 13.7 MB,
-- `session_id` 6.7 MB, `platform` + `kind` + `source_kind` 4.2 MB — and the UNIQUE index on
-- the text id another 18.5 MB. Now:
--
-- * `source_kind` + `source`, `platform` + `kind` and `session_id` are interned once, in
--   `raw_sources`, `raw_kinds` and `raw_sessions` (append-only; a row holds the integer ref).
-- * The dedup key is `id_key`, 16 bytes computed from the id text alone (src/store/raw.rs
--   `id_key`: 4 bytes of a hash of the id's session part, for index locality, then 96 bits
--   of the xxh3-128 of the whole id), UNIQUE (`raw_traces_id`), so `INSERT OR IGNORE` stays
--   idempotent (invariant 3) with an index entry of ~20 B instead of ~80 B.
-- * The id text is kept, compactly, because derivation needs it (messages.event_id,
--   hook_events, derive_rejects and the dead-letter stream quote it) and it cannot be rebuilt
--   from anything else for every source (`hk:`/`cc:h:` ids hash the raw line or hook body,
--   which privacy rules changed): `id_form` says how `id_tail` rebuilds it (see
--   `raw::form`); `cc:<session>:<uuid>` of the row's own session — 95 % of rows — keeps
--   only the uuid's 16 bytes, `cc:h:`/`hk:` hashes their 16 bytes, anything else its text.
-- * The view `raw_traces_text` rebuilds every column as text under the names raw_traces had
--   before (id, platform, kind, session_id, source_kind, source, ...): the slow path, doctor
--   and the tests read it. Layer 3 may read none of these (the authorizer denies raw_traces,
--   the view reads it, and the three raw_* tables are denied too: store::open_reader).
--
-- Existing rows are rewritten in place, seq values kept (the slow-path watermark and
-- cursor_versions point at them), payloads copied as they are; bp_id_key / bp_id_form /
-- bp_id_tail are the Rust encoder (store::raw::register_functions), so old and new rows are
-- encoded by the same code. The old table's pages go to the freelist (the file shrinks at the
-- next VACUUM; new rows reuse them first).

CREATE TABLE raw_sources (
    ref      INTEGER PRIMARY KEY,
    -- file: a transcript path; hook: the hook event name; db: a database path
    kind     TEXT NOT NULL CHECK (kind IN ('file', 'hook', 'db')),
    location TEXT NOT NULL,
    UNIQUE (kind, location)
) STRICT;

CREATE TABLE raw_kinds (
    ref      INTEGER PRIMARY KEY,
    platform TEXT NOT NULL,
    kind     TEXT NOT NULL,
    UNIQUE (platform, kind)
) STRICT;

CREATE TABLE raw_sessions (
    ref        INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL UNIQUE
) STRICT;

INSERT INTO raw_sources (kind, location)
    SELECT source_kind, source FROM raw_traces GROUP BY source_kind, source ORDER BY min(seq);
INSERT INTO raw_kinds (platform, kind)
    SELECT platform, kind FROM raw_traces GROUP BY platform, kind ORDER BY min(seq);
INSERT INTO raw_sessions (session_id)
    SELECT session_id FROM raw_traces WHERE session_id IS NOT NULL
    GROUP BY session_id ORDER BY min(seq);

CREATE TABLE raw_traces_v7 (
    seq            INTEGER PRIMARY KEY,
    -- the event id's dedup key (store::raw::id_key; unique: raw_traces_id)
    id_key         BLOB    NOT NULL CHECK (length(id_key) = 16),
    -- how id_tail rebuilds the id (store::raw::form): 0 verbatim text, 1 `cc:<session>:` +
    -- uuid bytes, 2 `cc:<session>:` + text, 3 `cc:h:` + hash bytes, 4 `hk:` + hash bytes
    id_form        INTEGER NOT NULL CHECK (id_form BETWEEN 0 AND 4),
    id_tail        ANY     NOT NULL
        CHECK (typeof(id_tail) = CASE WHEN id_form IN (1, 3, 4) THEN 'blob' ELSE 'text' END),
    kind_ref       INTEGER NOT NULL REFERENCES raw_kinds (ref),
    session_ref    INTEGER REFERENCES raw_sessions (ref),
    ts             INTEGER,
    source_ref     INTEGER NOT NULL REFERENCES raw_sources (ref),
    -- file: byte offset of the line; hook: when it was received (epoch ms)
    source_offset  INTEGER,
    -- db: the row key
    source_key     TEXT,
    -- db: content version of a row rewritten in place
    source_version INTEGER,
    payload        BLOB    NOT NULL,
    received_at    INTEGER NOT NULL
) STRICT;

INSERT INTO raw_traces_v7 (seq, id_key, id_form, id_tail, kind_ref, session_ref, ts,
                           source_ref, source_offset, source_key, source_version, payload,
                           received_at)
    SELECT r.seq, bp_id_key(r.id), bp_id_form(r.id, r.session_id),
           bp_id_tail(r.id, r.session_id), k.ref, s.ref, r.ts, src.ref, r.source_offset,
           r.source_key, r.source_version, r.payload, r.received_at
    FROM raw_traces r
    JOIN raw_kinds k ON k.platform = r.platform AND k.kind = r.kind
    JOIN raw_sources src ON src.kind = r.source_kind AND src.location = r.source
    LEFT JOIN raw_sessions s ON s.session_id = r.session_id
    ORDER BY r.seq;

DROP TABLE raw_traces;
ALTER TABLE raw_traces_v7 RENAME TO raw_traces;
-- Built after the copy: one sorted pass, full pages.
CREATE UNIQUE INDEX raw_traces_id ON raw_traces (id_key);

-- Every column of raw_traces as text, under the names it had before 0007. The inverse of
-- store::raw::encode_id (proved by store::raw's and store's tests).
CREATE VIEW raw_traces_text AS
SELECT r.seq AS seq,
       CASE r.id_form
           WHEN 0 THEN r.id_tail
           WHEN 1 THEN 'cc:' || s.session_id || ':' || lower(
               substr(hex(r.id_tail), 1, 8) || '-' || substr(hex(r.id_tail), 9, 4) || '-' ||
               substr(hex(r.id_tail), 13, 4) || '-' || substr(hex(r.id_tail), 17, 4) || '-' ||
               substr(hex(r.id_tail), 21, 12))
           WHEN 2 THEN 'cc:' || s.session_id || ':' || r.id_tail
           WHEN 3 THEN 'cc:h:' || lower(hex(r.id_tail))
           WHEN 4 THEN 'hk:' || lower(hex(r.id_tail))
       END AS id,
       r.id_key AS id_key,
       k.platform AS platform,
       k.kind AS kind,
       s.session_id AS session_id,
       r.ts AS ts,
       src.kind AS source_kind,
       src.location AS source,
       r.source_offset AS source_offset,
       r.source_key AS source_key,
       r.source_version AS source_version,
       r.payload AS payload,
       r.received_at AS received_at
FROM raw_traces r
JOIN raw_kinds k ON k.ref = r.kind_ref
JOIN raw_sources src ON src.ref = r.source_ref
LEFT JOIN raw_sessions s ON s.ref = r.session_ref;
