#!/usr/bin/env bash
# Side-by-side backfill of one Claude Code history by two binaries, alternating:
#
#   bash tools/bench/backfill_ab.sh OLD_BIN NEW_BIN CONFIG_DIR [RUNS]
#
# CONFIG_DIR holds `projects/` (a `gen_corpus.py --out` directory). Each run backfills into a
# fresh home (`backfill --json`, the managed redis-server, stopped and removed afterwards) and
# prints one line: binary, seconds, capture_seconds, MB/s, events/s, wall, user, system, peak
# RSS. Then the medians, and a check that both binaries derived the same store: row counts of
# the conversation tables and `report daily --json` (UTC) from each one's last run.
set -euo pipefail

OLD=${1:?old binary}
NEW=${2:?new binary}
CORPUS=${3:?config dir with projects/}
RUNS=${4:-3}
WORK=$(mktemp -d /tmp/bp-ab.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

run() { # run LABEL BIN KEEP_AS
    local label=$1 bin=$2 keep=$3 h
    h=$(mktemp -d "$WORK/home.XXXX")
    HOME=$h BLUEPLANE_HOME=$h CLAUDE_CONFIG_DIR=$CORPUS \
        /usr/bin/time -f '%e %U %S %M' -o "$h/time" "$bin" backfill --json >"$h/out.json" 2>"$h/err"
    python3 - "$label" "$h/out.json" "$h/time" <<'EOF' | tee -a "$WORK/runs"
import json, sys
label, out, tm = sys.argv[1:]
d = json.load(open(out))
wall, user, sys_, rss = open(tm).read().split()
print(f"{label} {d['seconds']:.3f} {d['capture_seconds']:.3f} {d['mb_per_s']:.1f} {d['events_per_s']:.0f} "
      f"{wall} {user} {sys_} {int(rss) // 1024}")
EOF
    if [ -n "$keep" ]; then
        {
            for t in raw_traces sessions messages messages_fts api_responses tool_calls hook_events projects subagents; do
                printf '%s ' "$t"
                sqlite3 "$h/telemetry.db" "SELECT count(*) FROM $t"
            done
            sqlite3 "$h/telemetry.db" "SELECT sum(input_tokens), sum(output_tokens), sum(cache_creation_tokens), sum(cache_read_tokens), sum(cost_pusd) FROM api_responses"
            # `source` says where the figures came from (Redis or the rollups), not what they are.
            HOME=$h BLUEPLANE_HOME=$h "$bin" report daily --json --timezone UTC | grep -v '^  "source": '
        } >"$WORK/derived.$keep"
    fi
    HOME=$h BLUEPLANE_HOME=$h "$bin" redis stop >/dev/null 2>&1 || true
    rm -rf "$h"
}

echo "label seconds capture_s MB/s events/s wall user sys rss_MiB"
for i in $(seq 1 "$RUNS"); do
    last=""
    [ "$i" -eq "$RUNS" ] && last=1
    run old "$OLD" "${last:+old}"
    run new "$NEW" "${last:+new}"
done
python3 - "$WORK/runs" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
for label in ("old", "new"):
    r = [x for x in rows if x[0] == label]
    med = lambda i: statistics.median(float(x[i]) for x in r)
    print(f"median {label}: {med(1):.3f} s, capture {med(2):.3f} s, {med(3):.1f} MB/s, "
          f"{med(4):.0f} events/s, user {med(6):.2f} s, sys {med(7):.2f} s, rss {med(8):.0f} MiB")
EOF
if cmp -s "$WORK/derived.old" "$WORK/derived.new"; then
    echo "derived store: identical ($(head -1 "$WORK/derived.new"), ...)"
else
    echo "derived store: DIFFERENT"
    diff "$WORK/derived.old" "$WORK/derived.new" | head -20
fi
