#!/usr/bin/env bash
# Blueplane benchmark suite (BRIEF §7), every figure measured in one run, side by side with
# ccusage where a peer exists. Results go to $BENCH_DIR/results/<UTC timestamp>/ and a summary
# table is printed at the end (tools/bench/summarize.py).
#
# Usage: tools/bench/run.sh [options]
#   --quick          only the 20 MB corpus (backfill, ccusage vs report, serve, MCP latency)
#   --big            also build a ~1,000,000-event store and measure backfill + MCP latency on it
#   --skip-build     use the existing target/release/blueplane
#   --skip-fastpath  do not run `cargo bench --bench fast_path`
#   --runs N         backfill repetitions per corpus (default 3; 1 for the big store)
#
# Environment: BENCH_DIR (default /tmp/bpbench), CCUSAGE_VERSION (default 20.0.24: the newest
# v20 whose linux-x64 native binary exists on npm), CORPUS_MB (default 200), CORPUS_SHAPE (default
# 2.0: gen_corpus.py --shape; 2.1 writes Claude Code 2.1 transcripts into $BENCH_DIR/corpus-NAME-2.1).
#
# Requires: cargo, python3, node/npm, redis-server, hyperfine and /usr/bin/time (Debian
# packages `hyperfine` and `time`; installed with apt-get when missing and running as root).
# Never touches the system Redis: every run starts its own redis-server on a unix socket.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/tools/bench
B=${BENCH_DIR:-/tmp/bpbench}
CCUSAGE_VERSION=${CCUSAGE_VERSION:-20.0.24}
CORPUS_MB=${CORPUS_MB:-200}
CORPUS_SHAPE=${CORPUS_SHAPE:-2.0}
case $CORPUS_SHAPE in
  2.0) CSFX= ;;
  2.1) CSFX=-2.1 ;;
  *) echo "CORPUS_SHAPE must be 2.0 or 2.1" >&2; exit 2 ;;
esac
QUICK=0 BIG=0 BUILD=1 FASTPATH=1 RUNS=3
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 ;;
    --big) BIG=1 ;;
    --skip-build) BUILD=0 ;;
    --skip-fastpath) FASTPATH=0 ;;
    --runs) RUNS=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$B/results/$STAMP
mkdir -p "$OUT"
BIN=$ROOT/target/release/blueplane
VENV=$B/venv
CC_PREFIX=$B/ccusage-$CCUSAGE_VERSION
CC=$CC_PREFIX/node_modules/.bin/ccusage
CCHOME=$B/cchome
PIDS=()

log() { echo "[$(date -u +%T)] $*" | tee -a "$OUT/log.txt" >&2; }

cleanup() {
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null || true
  done
  for d in "$B"/run-*/redis; do
    [ -S "$d/r.sock" ] && redis-cli -s "$d/r.sock" shutdown nosave >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT

# ---- machine ----------------------------------------------------------------------------
{
  echo "date_utc: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "nproc: $(nproc)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "mem_total: $(grep MemTotal /proc/meminfo | awk '{printf "%.1f GiB", $2/1048576}')"
  echo "kernel: $(uname -r)"
  echo "load_at_start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "corpus_shape: $CORPUS_SHAPE"
  echo "rustc: $(rustc --version 2>/dev/null)"
  echo "redis: $(redis-server --version | awk '{print $3}')"
  echo "node: $(node --version)"
  echo "python: $(python3 --version | awk '{print $2}')"
} > "$OUT/machine.txt"
cat "$OUT/machine.txt" >&2

# ---- tools -------------------------------------------------------------------------------
if ! command -v hyperfine >/dev/null || [ ! -x /usr/bin/time ]; then
  log "installing hyperfine and time (apt)"
  apt-get install -y hyperfine time >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y hyperfine time >/dev/null; }
fi
if [ ! -x "$CC" ]; then
  log "installing ccusage@$CCUSAGE_VERSION into $CC_PREFIX"
  npm install --prefix "$CC_PREFIX" "ccusage@$CCUSAGE_VERSION" >/dev/null 2>&1
fi
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import mcp' 2>/dev/null; then
  log "creating $VENV with the mcp SDK"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q mcp
fi
mkdir -p "$CCHOME"
{
  echo "ccusage: $("$CC" --version 2>&1 | head -1)"
  echo "hyperfine: $(hyperfine --version)"
  echo "mcp_sdk: $("$VENV/bin/pip" show mcp 2>/dev/null | awk '/^Version/{print $2}')"
} >> "$OUT/machine.txt"

# ---- build -------------------------------------------------------------------------------
if [ $BUILD = 1 ]; then
  for attempt in 1 2 3 4 5; do
    log "cargo build --release (attempt $attempt)"
    if (cd "$ROOT" && cargo build --release 2>"$OUT/build.log"); then break; fi
    [ $attempt = 5 ] && { log "build failed, see $OUT/build.log"; exit 1; }
    sleep 60
  done
fi
"$BIN" --version > "$OUT/version.txt" 2>&1 || true
sha256sum "$BIN" | cut -c1-16 >> "$OUT/version.txt"

# ---- fast path micro-benchmark -------------------------------------------------------------
if [ $FASTPATH = 1 ]; then
  log "cargo bench --bench fast_path"
  (cd "$ROOT" && cargo bench --bench fast_path 2>"$OUT/fast_path.build.log") | tee "$OUT/fast_path.txt" >&2 || log "fast_path bench failed"
fi

# ---- helpers -------------------------------------------------------------------------------
start_redis() { # dir
  local d=$1
  stop_redis "$d"
  rm -rf "$d"; mkdir -p "$d"
  redis-server --port 0 --unixsocket "$d/r.sock" --save '' --appendonly yes --dir "$d" \
    --daemonize yes --pidfile "$d/redis.pid" --logfile "$d/redis.log"
  for _ in $(seq 50); do [ -S "$d/r.sock" ] && redis-cli -s "$d/r.sock" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "redis did not start in $d" >&2; return 1
}
stop_redis() { [ -S "$1/r.sock" ] || return 0; redis-cli -s "$1/r.sock" shutdown nosave >/dev/null 2>&1 || true; }

warm_cache() { find "$1" -name '*.jsonl' -print0 | xargs -0 cat > /dev/null; }

# backfill NAME CORPUS RUN -> $OUT/NAME.backfill.RUN.{json,time,redis}; leaves store in $B/run-NAME
backfill() {
  local name=$1 corpus=$2 run=$3 w=$B/run-$1
  rm -rf "$w/home"; mkdir -p "$w"
  start_redis "$w/redis"
  local rpid; rpid=$(cat "$w/redis/redis.pid")
  log "backfill $name run $run (load $(cut -d' ' -f1 /proc/loadavg))"
  local rcpu0; rcpu0=$(awk '{print $14+$15}' /proc/$rpid/stat)
  BLUEPLANE_HOME=$w/home REDIS_URL=redis+unix://$w/redis/r.sock CLAUDE_CONFIG_DIR=$corpus TZ=UTC \
    /usr/bin/time -v -o "$OUT/$name.backfill.$run.time" "$BIN" backfill --json \
    > "$OUT/$name.backfill.$run.json" 2> "$OUT/$name.backfill.$run.stderr"
  {
    echo "redis_cpu_s: $(awk -v a="$rcpu0" '{printf "%.2f", ($14+$15-a)/100}' /proc/$rpid/stat)"
    grep VmHWM /proc/$rpid/status
    redis-cli -s "$w/redis/r.sock" info memory | grep -E '^used_memory_peak:'
  } > "$OUT/$name.backfill.$run.redis"
  grep -E 'Elapsed|Maximum resident' "$OUT/$name.backfill.$run.time" | sed 's/^\s*/  /' >&2
}

# compare NAME CORPUS RUNS: ccusage daily vs blueplane report daily, one hyperfine run
compare() {
  local name=$1 corpus=$2 runs=$3 w=$B/run-$1
  log "ccusage daily vs blueplane report daily on $name ($runs runs each)"
  warm_cache "$corpus"
  env -i PATH="$PATH" HOME="$CCHOME" LOG_LEVEL=0 NO_COLOR=1 TZ=UTC CLAUDE_CONFIG_DIR="$corpus" \
    BLUEPLANE_HOME="$w/home" REDIS_URL="redis+unix://$w/redis/r.sock" \
    hyperfine -N --style basic --warmup 1 --runs "$runs" --export-json "$OUT/$name.compare.json" \
      -n "ccusage claude daily --json --offline" "$CC claude daily --json --offline" \
      -n "ccusage claude daily --json --offline --single-thread" "$CC claude daily --json --offline --single-thread" \
      -n "blueplane report daily --json" "$BIN report daily --json" \
      -n "blueplane report monthly --json" "$BIN report monthly --json" \
      -n "blueplane report session --json" "$BIN report session --json" \
      > "$OUT/$name.compare.txt" 2>&1
  grep -E '^Benchmark|Time \(mean' "$OUT/$name.compare.txt" >&2 || true
  # Same numbers? (tokens and cost totals)
  env -i PATH="$PATH" HOME="$CCHOME" LOG_LEVEL=0 NO_COLOR=1 TZ=UTC CLAUDE_CONFIG_DIR="$corpus" \
    "$CC" claude daily --json --offline > "$OUT/$name.ccusage-daily.json" 2>/dev/null
  BLUEPLANE_HOME=$w/home REDIS_URL=redis+unix://$w/redis/r.sock TZ=UTC \
    "$BIN" report daily --json > "$OUT/$name.report-daily.json" 2>/dev/null
}

# serve_idle NAME CORPUS: RSS of an idle `blueplane serve` (stdin held open by a fifo)
serve_idle() {
  local name=$1 corpus=$2 w=$B/run-$1
  log "serve idle RSS on $name"
  rm -f "$w/serve.in"; mkfifo "$w/serve.in"
  exec 3<>"$w/serve.in"
  BLUEPLANE_HOME=$w/home REDIS_URL=redis+unix://$w/redis/r.sock CLAUDE_CONFIG_DIR=$corpus TZ=UTC \
    "$BIN" serve < "$w/serve.in" > "$w/serve.out" 2> "$w/serve.err" &
  local pid=$!
  PIDS+=("$pid")
  sleep 5
  { grep -E 'VmRSS|VmHWM' /proc/$pid/status; echo "cpu_ticks: $(awk '{print $14+$15}' /proc/$pid/stat)"; } > "$OUT/$name.serve-idle.txt"
  sleep 5
  echo "cpu_ticks_after_5s_more: $(awk '{print $14+$15}' /proc/$pid/stat)" >> "$OUT/$name.serve-idle.txt"
  grep VmRSS "$OUT/$name.serve-idle.txt" >&2
  kill "$pid"; wait "$pid" 2>/dev/null || true
  exec 3>&-
  rm -f "$w/serve.in"
}

# mcp NAME CORPUS [fresh]: tool latency (and freshness) through the Python MCP SDK
mcp() {
  local name=$1 corpus=$2 fresh=${3:-} w=$B/run-$1 dirs=$2 extra=()
  if [ -n "$fresh" ]; then
    rm -rf "$w/fresh"; mkdir -p "$w/fresh/projects"
    dirs="$corpus,$w/fresh"
    extra=(--fresh-dir "$w/fresh" --fresh-n 20 --poll-ms 20)
  fi
  log "MCP tool latency (raw JSON-RPC client) on $name"
  BLUEPLANE_HOME=$w/home REDIS_URL=redis+unix://$w/redis/r.sock CLAUDE_CONFIG_DIR=$corpus TZ=UTC \
    "$VENV/bin/python" "$HERE/mcp_bench.py" --client raw --bin "$BIN" --calls 50 --warmup 5 \
    --server-log "$OUT/$name.mcp-raw.serve.log" > "$OUT/$name.mcp-raw.json"
  # Diagnostic: the same calls with no transcript dirs to watch (capture idle), so the figures
  # show the queries alone, without capture work competing for the 2 cores.
  mkdir -p "$w/empty-config"
  log "MCP tool latency (raw JSON-RPC client, capture dirs empty) on $name"
  BLUEPLANE_HOME=$w/home REDIS_URL=redis+unix://$w/redis/r.sock CLAUDE_CONFIG_DIR=$w/empty-config TZ=UTC \
    "$VENV/bin/python" "$HERE/mcp_bench.py" --client raw --bin "$BIN" --calls 50 --warmup 5 \
    --server-log "$OUT/$name.mcp-nocapture.serve.log" > "$OUT/$name.mcp-nocapture.json"
  log "MCP tool latency (mcp SDK client)${fresh:+ and freshness} on $name"
  BLUEPLANE_HOME=$w/home REDIS_URL=redis+unix://$w/redis/r.sock CLAUDE_CONFIG_DIR=$dirs TZ=UTC \
    "$VENV/bin/python" "$HERE/mcp_bench.py" --client sdk --bin "$BIN" --calls 50 --warmup 5 "${extra[@]}" \
    --server-log "$OUT/$name.mcp.serve.log" > "$OUT/$name.mcp.json"
}

store_size() { # NAME
  local w=$B/run-$1
  {
    du -sb "$w/home" | awk '{print "home_bytes:", $1}'
    python3 - "$w/home/telemetry.db" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
for t in ("raw_traces", "sessions", "messages", "api_responses", "tool_calls"):
    try:
        print(f"{t}:", c.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
    except sqlite3.Error as e:
        print(f"{t}: ?")
EOF
  } > "$OUT/$1.store.txt" 2>&1
}

# ---- corpora -------------------------------------------------------------------------------
gen() { # NAME ARGS...
  local name=$1; shift
  log "corpus $name: gen_corpus.py $*"
  local t0; t0=$(date +%s%N)
  python3 "$HERE/gen_corpus.py" --out "$B/corpus-$name$CSFX" --shape "$CORPUS_SHAPE" "$@" > "$OUT/$name.corpus.json"
  echo "{\"gen_ms\": $(( ($(date +%s%N) - t0) / 1000000 ))}" > "$OUT/$name.corpus-time.json"
}

gen 20mb --mb 20 --seed 7
[ $QUICK = 0 ] && gen "${CORPUS_MB}mb" --mb "$CORPUS_MB" --seed 42
[ $BIG = 1 ] && gen 1m --events 1000000 --seed 1000

# ---- measurements --------------------------------------------------------------------------
names=(20mb)
[ $QUICK = 0 ] && names+=("${CORPUS_MB}mb")
for name in "${names[@]}"; do
  corpus=$B/corpus-$name$CSFX
  warm_cache "$corpus"
  for run in $(seq "$RUNS"); do
    [ "$run" -gt 1 ] && stop_redis "$B/run-$name/redis"
    backfill "$name" "$corpus" "$run"
  done
  store_size "$name"
  if [ "$name" = 20mb ]; then compare "$name" "$corpus" 20; else compare "$name" "$corpus" 10; fi
  serve_idle "$name" "$corpus"
  # MCP latency + freshness on the largest corpus of this run (20 MB only with --quick).
  if [ "$name" != 20mb ] || [ $QUICK = 1 ]; then
    mcp "$name" "$corpus" fresh
  fi
  stop_redis "$B/run-$name/redis"
done

if [ $BIG = 1 ]; then
  corpus=$B/corpus-1m$CSFX
  warm_cache "$corpus"
  backfill 1m "$corpus" 1
  store_size 1m
  compare 1m "$corpus" 5
  serve_idle 1m "$corpus"
  mcp 1m "$corpus"
  stop_redis "$B/run-1m/redis"
fi

echo "load_at_end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/machine.txt"
log "results in $OUT"
python3 "$HERE/summarize.py" "$OUT" | tee "$OUT/summary.md"
