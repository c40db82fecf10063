#!/usr/bin/env bash
# Backfill corpora of the two generator shapes side by side, alternating runs (A B A B …), each
# into a fresh BLUEPLANE_HOME with its own managed Redis (stopped and deleted afterwards).
# Prints one JSON line per run: corpus, run, backfill figures, store bytes (telemetry.db + WAL),
# and, with REPORT=1, the `report daily --json` totals.
#
# Usage: tools/bench/shape_compare.sh RUNS CORPUS... (BIN=path/to/blueplane, default target/release)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${BIN:-$ROOT/target/release/blueplane}
RUNS=$1; shift
for run in $(seq 1 "$RUNS"); do
  for corpus in "$@"; do
    h=$(mktemp -d /tmp/bpshape.XXXXXX)
    bf=$(BLUEPLANE_HOME=$h CLAUDE_CONFIG_DIR=$corpus TZ=UTC "$BIN" backfill --json 2>"$h.err")
    store=$(cat "$h"/telemetry.db "$h"/telemetry.db-wal 2>/dev/null | wc -c)
    rep=null
    if [ "${REPORT:-0}" = 1 ]; then
      rep=$(BLUEPLANE_HOME=$h TZ=UTC "$BIN" report daily --json 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(json.dumps(d.get("totals", d) if isinstance(d, dict) else d))')
    fi
    BLUEPLANE_HOME=$h "$BIN" redis stop >/dev/null 2>&1 || true
    rm -rf "$h" "$h.err"
    python3 -c '
import json, sys
bf = json.loads(sys.argv[3])
print(json.dumps({"corpus": sys.argv[1], "run": int(sys.argv[2]), "bytes": bf["bytes"], "events": bf["events"],
                  "bad_lines": bf["bad_lines"], "seconds": round(bf["seconds"], 3), "mb_per_s": round(bf["mb_per_s"], 2),
                  "events_per_s": round(bf["events_per_s"]), "store_bytes": int(sys.argv[4]),
                  "store_ratio": round(int(sys.argv[4]) / bf["bytes"], 3), "load": open("/proc/loadavg").read().split()[0],
                  "report_totals": json.loads(sys.argv[5])}))' "$corpus" "$run" "$bf" "$store" "$rep"
  done
done
