"""Hook -> visible latency: send one PostToolUse hook at a time to a running `blueplane ingest`
and time until its row is in hook_events. Prints p50/p95/max over 40 samples."""
import json, os, sqlite3, subprocess, sys, time

binary, url, db = sys.argv[1:4]
env = dict(os.environ, REDIS_URL=url)
# Wait for the store to exist (ingest creates it).
deadline = time.time() + 30
while not os.path.exists(db) and time.time() < deadline:
    time.sleep(0.05)
samples = []
for i in range(40):
    payload = json.dumps({"session_id": f"lat-{i}", "hook_event_name": "PostToolUse", "cwd": "/p",
                          "tool_name": "Bash", "tool_use_id": f"toolu_lat_{i}", "duration_ms": 5})
    t0 = time.perf_counter()
    subprocess.run([binary, "hook", "claude"], input=payload.encode(), env=env, check=True)
    while True:
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
                n = c.execute("SELECT count(*) FROM hook_events WHERE session_id = ?", (f"lat-{i}",)).fetchone()[0]
        except sqlite3.Error:
            n = 0
        if n:
            break
        if time.perf_counter() - t0 > 10:
            sys.exit(f"sample {i} not visible after 10 s")
        time.sleep(0.002)
    samples.append((time.perf_counter() - t0) * 1000)
    time.sleep(0.05)
samples.sort()
q = lambda p: samples[min(len(samples) - 1, int(round(p * (len(samples) - 1))))]
print(f"hook -> hook_events: n={len(samples)} p50={q(0.5):.0f} ms p95={q(0.95):.0f} ms max={samples[-1]:.0f} ms")
