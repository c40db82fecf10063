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
