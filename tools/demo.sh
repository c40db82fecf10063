#!/usr/bin/env bash
# The main job on a fresh machine: build, start (managed Redis), ingest the bundled sample
# data, print a report, and answer an MCP query over stdio.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
  echo "installing redis-server" >&2
  if [ "$(id -u)" -eq 0 ]; then apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq redis-server >/dev/null; fi
fi

cargo build --release --locked
bin=target/release/blueplane
export BLUEPLANE_HOME="${BLUEPLANE_HOME:-$PWD/target/demo-home}"
export CLAUDE_CONFIG_DIR="$PWD/samples/claude"
# A Cursor data dir with real state.vscdb files, built from samples/cursor/ (and no agent
# transcripts: the demo never reads the machine's own ~/.cursor).
export CURSOR_DATA_DIR="$PWD/target/demo-cursor"
export CURSOR_HOME="$PWD/target/demo-cursor-home"
python3 tools/cursor_sample.py "$CURSOR_DATA_DIR"
unset REDIS_URL

echo "== backfill (BLUEPLANE_HOME=$BLUEPLANE_HOME)"
"$bin" backfill
echo "== blueplane report daily -z UTC"
"$bin" report daily -z UTC
echo "== blueplane sessions --platform cursor"
"$bin" sessions --platform cursor
echo "== MCP over stdio: tools/call get_metrics {group_by: day, timezone: UTC}"
{
  printf '%s\n' \
    '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"demo","version":"1"}}}' \
    '{"jsonrpc":"2.0","method":"notifications/initialized"}' \
    '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_metrics","arguments":{"group_by":"day","timezone":"UTC"}}}'
  sleep 2
} | "$bin" serve | python3 -c '
import json, sys
for line in sys.stdin:
    msg = json.loads(line)
    if msg.get("id") == 2:
        print(json.dumps(msg["result"]["structuredContent"], indent=2))
'
echo "== the managed redis-server keeps running; stop it with: BLUEPLANE_HOME=$BLUEPLANE_HOME $bin redis stop"
