"""A Cursor-like writer beside Blueplane's reads: one write transaction (a new ~4 KB bubble)
every 20 ms on Cursor's global database until STOP_FILE exists; prints the commit times.

    python3 tools/bench/cursor_writer.py GLOBAL_STATE_VSCDB STOP_FILE

Prints one JSON line: writes, p50/p99/max of BEGIN IMMEDIATE .. COMMIT (ms), and the largest
time spent taking the write lock (BEGIN IMMEDIATE) and in COMMIT (the WAL fsync) apart. What Cursor would
feel of Blueplane's read transactions (a WAL reader never blocks a writer; a lock or a
checkpoint waiting on a reader would show here).
"""
import json, os, sqlite3, sys, time

db, stop = sys.argv[1], sys.argv[2]
w = sqlite3.connect(db, isolation_level=None, timeout=5)
assert w.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
times, locks, commits = [], [], []
i = 0
text = "the writer keeps streaming while the reader scans " * 80
while not os.path.exists(stop):
    t = time.perf_counter()
    w.execute("BEGIN IMMEDIATE")
    locks.append((time.perf_counter() - t) * 1000)
    w.execute("INSERT INTO cursorDiskKV (key, value) VALUES (?, ?)",
              (f"bubbleId:bench-writer:w{i:06d}",
               json.dumps({"_v": 3, "type": 1, "bubbleId": f"w{i:06d}", "text": f"{i} {text}",
                           "createdAt": "2026-12-01T12:00:00.000Z"})))
    c = time.perf_counter()
    w.execute("COMMIT")
    commits.append((time.perf_counter() - c) * 1000)
    times.append((time.perf_counter() - t) * 1000)
    i += 1
    time.sleep(0.02)
s = sorted(times) or [0.0]
q = lambda p: s[min(len(s) - 1, int(round(p * (len(s) - 1))))]
print(json.dumps({"writes": len(times), "p50_ms": round(q(0.5), 2), "p99_ms": round(q(0.99), 2),
                  "max_ms": round(s[-1], 2), "lock_max_ms": round(max(locks or [0]), 2),
                  "commit_max_ms": round(max(commits or [0]), 2)}))
