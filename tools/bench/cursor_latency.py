"""Cursor change -> visible: with `blueplane ingest` running on a home that already holds a
Cursor data dir, act as Cursor does and time until Blueplane's derived tables show the change.

    python3 tools/bench/cursor_latency.py GLOBAL_STATE_VSCDB TELEMETRY_DB [SAMPLES]

Each sample is one write transaction on Cursor's global database, like Cursor's own: even
samples add a new assistant bubble (`bubbleId:<cid>:<bid>`, ~4 KB) and rewrite the composer
(`composerData:<cid>` with the header appended and a new `lastUpdatedAt`); odd samples rewrite
the previous bubble in place with a longer text (streaming). The clock starts when the commit
returns; the change is visible when `messages` holds the bubble with its new text (the
session row is updated in the same derive transaction, so `list_sessions`/`blueplane
sessions` shows it at the same moment). Read-only polls of telemetry.db every 5 ms.
Prints one JSON line: samples (ms), p50, p95, max, and the writer's slowest commit (ms).
"""
import datetime
import json
import random
import sqlite3
import sys
import time

db, telemetry = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 30
rng = random.Random(5)

w = sqlite3.connect(db, isolation_level=None, timeout=5)
assert w.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
# A modern composer to write to (one with ordered headers, like every new Cursor chat).
key, value = w.execute(
    "SELECT key, CAST(value AS TEXT) FROM cursorDiskKV WHERE key >= 'composerData:' AND key < 'composerData;' "
    "AND json_extract(CAST(value AS TEXT), '$._v') = 18 LIMIT 1").fetchone()
composer = json.loads(value)
cid = key.split(":", 1)[1]
WORDS = "the worker drains the queue in order then writes rows into the store and reports back".split()


def now_iso():
    d = datetime.datetime.now(datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


def text_of(i):
    body = " ".join(rng.choice(WORDS) for _ in range(600))
    return f"bench answer {i}: {body}"


def visible(event_id, text, deadline):
    while time.perf_counter() < deadline:
        try:
            c = sqlite3.connect(f"file:{telemetry}?mode=ro", uri=True, timeout=1)
            try:
                row = c.execute("SELECT text FROM messages WHERE event_id = ?", (event_id,)).fetchone()
            finally:
                c.close()
        except sqlite3.Error:
            row = None
        if row and row[0] == text:
            return True
        time.sleep(0.005)
    return False


samples, commits = [], []
bid = None
for i in range(n + 1):  # sample 0 is a warm-up (not counted)
    text = text_of(i)
    t_commit = time.perf_counter()
    w.execute("BEGIN IMMEDIATE")
    if i % 2 == 0:
        bid = f"bench-{i:04d}-{rng.randrange(16**8):08x}"
        composer["fullConversationHeadersOnly"].append({"bubbleId": bid, "type": 2})
        composer["lastUpdatedAt"] = int(time.time() * 1000)
        w.execute("INSERT INTO cursorDiskKV (key, value) VALUES (?, ?)",
                  (key, json.dumps(composer, separators=(",", ":"))))
    bubble = {"_v": 3, "type": 2, "bubbleId": bid, "text": text, "createdAt": now_iso(),
              "richText": json.dumps({"root": {"children": [{"text": text}]}}),
              "tokenCount": {"inputTokens": 0, "outputTokens": 0},
              "modelInfo": {"modelName": "claude-4.5-sonnet"}}
    w.execute("INSERT INTO cursorDiskKV (key, value) VALUES (?, ?)",
              (f"bubbleId:{cid}:{bid}", json.dumps(bubble, separators=(",", ":"))))
    w.execute("COMMIT")
    t0 = time.perf_counter()
    commits.append((t0 - t_commit) * 1000)
    if not visible(f"cu:msg:{cid}:{bid}", text, t0 + 30):
        sys.exit(f"sample {i} not visible after 30 s")
    if i > 0:
        samples.append((time.perf_counter() - t0) * 1000)
    # Not in step with Blueplane's polling.
    time.sleep(rng.uniform(0.2, 0.6))

s = sorted(samples)
q = lambda p: s[min(len(s) - 1, int(round(p * (len(s) - 1))))]
print(json.dumps({"samples": len(s), "p50_ms": round(q(0.5), 1), "p95_ms": round(q(0.95), 1),
                  "max_ms": round(s[-1], 1), "writer_commit_max_ms": round(max(commits), 2),
                  "all_ms": [round(x, 1) for x in samples]}))
