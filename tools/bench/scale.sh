#!/usr/bin/env bash
# Scale table (issue 9 item 5): the same figures at several history sizes, one binary, one
# run: backfill wall time, MB/s, events/s, peak RSS, store / JSONL, a second (unchanged)
# backfill, and the p95 of the MCP tools on the store (tools/bench/tool_p95.py, raw JSON-RPC).
#
# Usage: tools/bench/scale.sh BIN CORPUS_DIR... (each made by tools/bench/gen_corpus.py)
# Results: one JSON line per corpus on stdout; homes under $SCALE_DIR (default /tmp/bpscale),
# each home's managed redis-server stopped at the end.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN=$1; shift
D=${SCALE_DIR:-/tmp/bpscale}
mkdir -p "$D"
for corpus in "$@"; do
  name=$(basename "$corpus")
  home=$D/$name
  rm -rf "$home"; mkdir -p "$home"
  export BLUEPLANE_HOME=$home CLAUDE_CONFIG_DIR=$corpus CURSOR_DATA_DIR=$home/no-cursor CURSOR_HOME=$home/no-cursor-home
  /usr/bin/time -v -o "$home/time.txt" "$BIN" backfill --json > "$home/backfill.json"
  "$BIN" backfill --json > "$home/again.json"
  rss=$(awk -F': ' '/Maximum resident/ {print $2}' "$home/time.txt")
  python3 "$HERE/tool_p95.py" --a "$BIN" --a-home "$home" --claude-dir "$corpus" --calls 20 \
    > "$home/tools.json" 2> "$home/tools.err"
  python3 - "$home" "$corpus" "$rss" <<'PY'
import json, os, sys
home, corpus, rss = sys.argv[1], sys.argv[2], int(sys.argv[3])
b = json.load(open(f"{home}/backfill.json")); again = json.load(open(f"{home}/again.json"))
c = json.load(open(f"{corpus}/corpus.json"))
db = os.path.getsize(f"{home}/telemetry.db") + sum(os.path.getsize(f"{home}/telemetry.db{x}") for x in ("-wal",) if os.path.exists(f"{home}/telemetry.db{x}"))
tools = json.load(open(f"{home}/tools.json"))
p95 = {f"{r['tool']} {json.dumps(r['args'], sort_keys=True)}": r["a"]["p95"] for r in tools["results"]}
print(json.dumps({"corpus": corpus, "mb": round(c["bytes"] / 1e6, 1), "lines": c["lines"],
    "backfill_s": round(b["seconds"], 2), "mb_per_s": round(b["mb_per_s"], 1),
    "events_per_s": round(b["events_per_s"]), "peak_rss_mib": round(rss / 1024),
    "store_ratio": round(db / c["bytes"], 3), "again_s": round(again["seconds"], 2),
    "tools_p95_ms": p95, "load": os.getloadavg()}))
PY
  "$BIN" redis stop > /dev/null 2>&1 || true
done
