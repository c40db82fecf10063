#!/usr/bin/env bash
# Benchmarks of the hook hot path (issue 6; brief §7: ≤ 5 ms p95, process start included):
#   1. `blueplane hook claude` with Redis up, with Redis down (spool), `statusline`, and
#      `true` as the floor: hyperfine, side by side in one run; `hook cursor` (Redis up and
#      down) beside `hook claude` on the same Cursor payload in another;
#   2. hook → visible: a running `blueplane ingest`, one PostToolUse hook per sample, the time
#      until its row is in `hook_events` (what get_session_summary reads).
# Usage: bash tools/bench/hook_bench.sh [OUT_DIR]   (needs hyperfine: cargo install hyperfine)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${1:-target/bench/hooks}
mkdir -p "$OUT"
command -v hyperfine >/dev/null || { echo "hyperfine not found: cargo install hyperfine" >&2; exit 1; }
cargo build --release --locked -q
BIN=$PWD/target/release/blueplane
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
redis-server --port 0 --unixsocket "$WORK/redis.sock" --save "" --appendonly no --dir "$WORK" >/dev/null &
for _ in $(seq 100); do [ -S "$WORK/redis.sock" ] && break; sleep 0.05; done
export BLUEPLANE_HOME=$WORK/home BLUEPLANE_LOG=error
UP="redis+unix://$WORK/redis.sock"
DOWN="redis+unix://$WORK/nothing.sock"
P=tests/data/hooks/claude-2.1.328/11-PostToolUse.json
# A Cursor payload with a command and its output (the heaviest rules of the allow-list).
C=tests/data/cursor-hooks/05-afterShellExecution.json
S=$WORK/status.json
cat > "$S" <<'JSON'
{"session_id":"bench","transcript_path":"/t.jsonl","cwd":"/p","model":{"id":"claude-sonnet-4-5-20250929"},
 "cost":{"total_cost_usd":0.5},"rate_limits":{"five_hour":{"used_percentage":23,"resets_at":4102444800}}}
JSON
hyperfine -N --warmup 20 --runs 300 --export-json "$OUT/hooks.json" --input "$P" \
    -n 'true (floor)' 'true' \
    -n 'hook, redis up' "env REDIS_URL=$UP $BIN hook claude" \
    -n 'hook, redis down (spool)' "env REDIS_URL=$DOWN $BIN hook claude"
# The status line reads the store the hooks above filled (an empty one: the ingest below
# has not run yet); each run captures only when the figures changed, like a real refresh.
hyperfine -N --warmup 20 --runs 300 --export-json "$OUT/statusline.json" --input "$S" \
    -n 'true (floor)' 'true' \
    -n 'statusline, redis up' "env REDIS_URL=$UP $BIN statusline"
# Both hooks on the same Cursor payload (`hook claude` takes it as an unknown event).
hyperfine -N --warmup 20 --runs 300 --export-json "$OUT/cursor.json" --input "$C" \
    -n 'true (floor)' 'true' \
    -n 'hook claude, redis up (cursor payload)' "env REDIS_URL=$UP $BIN hook claude" \
    -n 'hook cursor, redis up' "env REDIS_URL=$UP $BIN hook cursor" \
    -n 'hook cursor, redis down (spool)' "env REDIS_URL=$DOWN $BIN hook cursor"
python3 - "$OUT" <<'PY'
import json, sys
for f in ("hooks.json", "statusline.json", "cursor.json"):
    for r in json.load(open(f"{sys.argv[1]}/{f}"))["results"]:
        t = sorted(r["times"])
        p95 = t[int(0.95 * (len(t) - 1))]
        print(f"{r['command']:<40} mean {r['mean']*1e3:6.2f} ms  median {r['median']*1e3:6.2f} ms  p95 {p95*1e3:6.2f} ms")
PY
rm -rf "$BLUEPLANE_HOME"
REDIS_URL=$UP "$BIN" ingest 2>/dev/null &
python3 tools/bench/hook_latency.py "$BIN" "$UP" "$BLUEPLANE_HOME/telemetry.db" | tee "$OUT/latency.txt"
