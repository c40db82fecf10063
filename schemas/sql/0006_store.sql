-- 0006: store footprint (issue 9 item 3).
--
-- `raw_traces_session` (session_id, ts) served no query: the slow path reads raw_traces by
-- `seq`, the fast path deduplicates on `id`, and layer 3 may not read raw_traces at all. It was
-- 4 % of a backfilled store and one more B-tree insert per event on the fast path.
DROP INDEX IF EXISTS raw_traces_session;

-- Payloads written from this version on are zlib streams with a preset dictionary
-- (src/store/codec.rs, schemas/zdict/): the stream header names the dictionary, so rows
-- written before stay as they are and stay readable; nothing to rewrite here.
