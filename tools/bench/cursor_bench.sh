#!/usr/bin/env bash
# Benchmarks of the Cursor database capture (issue 8), on a database built by
# tools/cursor_gen.py (real SQLite, Cursor's schema, WAL mode, ~4 KB values):
#   a. initial capture: `blueplane backfill` of the generated global database (+ two
#      workspaces) into an empty home: wall time, MB/s, bubbles/s, peak RSS (/usr/bin/time -v);
#   b. change -> visible: `blueplane ingest` running on that home, a writer adding/rewriting a
#      bubble SAMPLES times (tools/bench/cursor_latency.py): p50/p95/max until the derived
#      tables show it, and the writer's slowest commit;
#      (a writer, tools/bench/cursor_writer.py, commits a bubble every 20 ms beside it: its
#      commit times);
#   c. the longest read transaction Blueplane holds on Cursor's database: the
#      `Cursor read transaction ... held_ms=` debug lines of src/capture/cursor_db.rs
#      (BLUEPLANE_LOG=blueplane::capture::cursor_db=debug), max and p95, for the backfill
#      (2,000-row first-pass batches) and for ingest (the incremental reads of b).
# Usage: bash tools/bench/cursor_bench.sh [--mb MB] [--samples N] [--keep] [OUT_DIR]
#   --mb MB       size of the generated values (default 200; 2048 for issue 8's 2 GB / 500k
#                 bubbles figure)
#   --samples N   change -> visible samples (default 30)
#   --keep        keep the generated data dir and home (deleted by default: GBs)
# Results: OUT_DIR (default target/bench/cursor): summary.txt, backfill.json, time.txt,
# latency.json and the logs. Needs python3, redis-server, /usr/bin/time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
MB=200 SAMPLES=30 KEEP=0 OUT=target/bench/cursor
while [ $# -gt 0 ]; do
  case $1 in
    --mb) MB=$2; shift ;;
    --samples) SAMPLES=$2; shift ;;
    --keep) KEEP=1 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) OUT=$1 ;;
  esac
  shift
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cargo build --release --locked -q
BIN=$PWD/target/release/blueplane
WORK=$(mktemp -d "${BENCH_DIR:-/tmp}/bpcursor.XXXXXX")
INGEST=""
cleanup() {
  [ -n "$INGEST" ] && kill "$INGEST" 2>/dev/null && wait "$INGEST" 2>/dev/null || true
  [ -S "$WORK/redis.sock" ] && redis-cli -s "$WORK/redis.sock" shutdown nosave >/dev/null 2>&1 || true
  if [ "$KEEP" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

echo "[$(date -u +%T)] generating ${MB} MB" >&2
GEN_START=$(date +%s.%N)
python3 tools/cursor_gen.py "$WORK/Cursor" --target-mb "$MB" --bubbles-per-composer 20 --seed 1 > "$OUT/gen.json"
GEN_END=$(date +%s.%N)
GLOBAL=$WORK/Cursor/User/globalStorage/state.vscdb

redis-server --port 0 --unixsocket "$WORK/redis.sock" --save "" --appendonly no --dir "$WORK" >/dev/null &
for _ in $(seq 100); do [ -S "$WORK/redis.sock" ] && break; sleep 0.05; done
mkdir -p "$WORK/claude/projects"
export BLUEPLANE_HOME=$WORK/home REDIS_URL="redis+unix://$WORK/redis.sock"
export CLAUDE_CONFIG_DIR=$WORK/claude CURSOR_DATA_DIR=$WORK/Cursor CURSOR_HOME=$WORK/no-cursor-home
export BLUEPLANE_LOG="warn,blueplane::capture::cursor_db=debug" TZ=UTC

echo "[$(date -u +%T)] backfill (a writer beside it)" >&2
rm -f "$WORK/stop-writer"
python3 tools/bench/cursor_writer.py "$GLOBAL" "$WORK/stop-writer" > "$OUT/writer.json" &
WRITER=$!
/usr/bin/time -v -o "$OUT/time.txt" "$BIN" backfill --json > "$OUT/backfill.json" 2> "$OUT/backfill.log"
touch "$WORK/stop-writer"
wait "$WRITER"

echo "[$(date -u +%T)] ingest + change -> visible ($SAMPLES samples)" >&2
"$BIN" ingest 2> "$OUT/ingest.log" &
INGEST=$!
sleep 2
python3 tools/bench/cursor_latency.py "$GLOBAL" "$BLUEPLANE_HOME/telemetry.db" "$SAMPLES" > "$OUT/latency.json"
kill "$INGEST"; wait "$INGEST" 2>/dev/null || true
INGEST=""

python3 - "$OUT" "$GLOBAL" "$GEN_START" "$GEN_END" "$MB" <<'PY' | tee "$OUT/summary.txt"
import json, os, re, sys
out, glob, g0, g1, mb = sys.argv[1:6]
gen = json.load(open(f"{out}/gen.json"))
bf = json.load(open(f"{out}/backfill.json"))
tv = open(f"{out}/time.txt").read()
rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", tv).group(1))
wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", tv).group(1)
secs = 0.0
for part in wall.split(":"):
    secs = secs * 60 + float(part)
size = sum(os.path.getsize(p) for p in (glob, glob + "-wal") if os.path.exists(p))
lat = json.load(open(f"{out}/latency.json"))
wr = json.load(open(f"{out}/writer.json"))

def held(log):
    v = sorted(float(m.group(1)) for m in re.finditer(r"Cursor read transaction.*?held_ms=([0-9.]+)", open(log).read()))
    if not v:
        return "no read transactions logged"
    p95 = v[min(len(v) - 1, round(0.95 * (len(v) - 1)))]
    return f"{len(v)} reads, p95 {p95:.1f} ms, max {v[-1]:.1f} ms"

print(f"generated: {gen['value_mb']} MB of values, {gen['composers']} composers, {gen['bubbles']} bubbles; "
      f"global state.vscdb {size / 2**20:.0f} MiB; generator {float(g1) - float(g0):.0f} s")
print(f"backfill: {secs:.1f} s wall ({bf['seconds']:.1f} s reported, capture {bf['capture_seconds']:.1f} s), "
      f"{bf['events']} events, {size / 2**20 / secs:.1f} MiB/s of database, {gen['bubbles'] / secs:.0f} bubbles/s, "
      f"peak RSS {rss_kb / 1024:.0f} MiB (target <= 300 MB)")
print(f"change -> visible (ingest, {lat['samples']} samples): p50 {lat['p50_ms']} ms, p95 {lat['p95_ms']} ms, "
      f"max {lat['max_ms']} ms (target p95 <= 1000 ms); writer's slowest commit {lat['writer_commit_max_ms']} ms")
print(f"writer beside the backfill (one ~4 KB bubble every 20 ms): {wr['writes']} commits, "
      f"p50 {wr['p50_ms']} ms, p99 {wr['p99_ms']} ms, max {wr['max_ms']} ms "
      f"(largest lock wait {wr['lock_max_ms']} ms, largest COMMIT/fsync {wr['commit_max_ms']} ms)")
print(f"read transaction held, backfill: {held(out + '/backfill.log')}")
print(f"read transaction held, ingest: {held(out + '/ingest.log')}")
PY
