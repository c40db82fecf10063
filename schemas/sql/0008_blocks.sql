-- 0008: payload blocks (issue 9: store footprint and backfill CPU).
--
-- A zlib stream per record pays, for every record, a stream reset and the hashing of the
-- preset dictionary (most of the fast path's compression time, docs/BENCHMARKS.md), and it
-- cannot see what consecutive lines of one transcript repeat (session id, cwd, version,
-- branch, the previous line's uuid). The fast path now compresses the consecutive records of
-- one source in a batch together: one zlib stream (src/store/codec.rs, same format, same
-- dictionaries) per block, at most `store::codec::BLOCK_BYTES` of payload each.
CREATE TABLE raw_blocks (
    id   INTEGER PRIMARY KEY,
    -- One zlib stream: the payloads of its records, concatenated in seq order.
    data BLOB    NOT NULL
) STRICT;

-- A record in a block has an empty `payload` and its bytes at [block_start, block_start +
-- block_len) of the block's decoded stream; a record alone keeps its own stream in `payload`
-- and NULLs here. Rows written before this version are records alone.
ALTER TABLE raw_traces ADD COLUMN block       INTEGER REFERENCES raw_blocks (id);
ALTER TABLE raw_traces ADD COLUMN block_start INTEGER;
ALTER TABLE raw_traces ADD COLUMN block_len   INTEGER;

-- Two tool_calls indexes no query uses since the rollups (0005): tool statistics over all
-- sessions read `rollup_tools_*`, a session's read `tool_calls_session`, time ranges read
-- `tool_calls_at`. Two B-tree inserts less per tool call.
DROP INDEX IF EXISTS tool_calls_started;
DROP INDEX IF EXISTS tool_calls_name;

-- The view of 0007 with the block columns (a view lists its columns when it is created).
DROP VIEW raw_traces_text;
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
       r.received_at AS received_at,
       r.block AS block,
       r.block_start AS block_start,
       r.block_len AS block_len
FROM raw_traces r
JOIN raw_kinds k ON k.ref = r.kind_ref
JOIN raw_sources src ON src.ref = r.source_ref
LEFT JOIN raw_sessions s ON s.ref = r.session_ref;
