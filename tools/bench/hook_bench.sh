#!/usr/bin/env bash
# Benchmarks of the hook hot path (issue 6; brief §7: ≤ 5 ms p95, process start included):
#   1. `blueplane hook claude` with Redis up, with Redis down (spool), `statusline`, and
#      `true` as the floor: hyperfine, side by side in one run;
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
S=$WORK/status.json
cat > "$S" <<'JSON'
{"session_id":"bench","transcript_path":"/t.jsonl","cwd":"/p","model":{"id":"claude-sonnet-4-5-20250929"},
 "cost":{"total_cost_usd":0.5},"rate_limits":{"five_hour":{"used_percentage":23,"resets_at":4102444800}}}
JSON
hyperfine -N --warmup 20 --runs 300 --export-json "$OUT/hyperfine.json" \
    --input "$P" -n 'true (floor)' 'true' \
    --input "$P" -n 'hook, redis up' "env REDIS_URL=$UP $BIN hook claude" \
    --input "$P" -n 'hook, redis down (spool)' "env REDIS_URL=$DOWN $BIN hook claude" \
    --input "$S" -n 'statusline, redis up' "env REDIS_URL=$UP $BIN statusline"
rm -rf "$BLUEPLANE_HOME"
REDIS_URL=$UP "$BIN" ingest 2>/dev/null &
python3 tools/bench/hook_latency.py "$BIN" "$UP" "$BLUEPLANE_HOME/telemetry.db" | tee "$OUT/latency.txt"
