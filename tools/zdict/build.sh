#!/usr/bin/env bash
# Rebuilds a preset dictionary from the real fixtures (see build.py):
#   bash tools/zdict/build.sh OUT.dict [SIZE] [BLUEPLANE_BIN]
# Backfills ../shared/fixtures-external (real Claude Code transcripts: ccusage, claude-code-log,
# spotter) and tests/data/claude-2.1 (hand-written record shapes) into a temporary home in
# `standard` privacy, then trains on the stored payloads.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$1
size=${2:-8192}
bin=${3:-$root/target/release/blueplane}
ext=${FIXTURES_EXTERNAL:-$root/../shared/fixtures-external}
tmp=$(mktemp -d)
trap 'BLUEPLANE_HOME=$tmp/home "$bin" redis stop >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
mkdir -p "$tmp/config/projects" "$tmp/empty"
cp -r "$ext/ccusage/projects/project-alpha" "$tmp/config/projects/ccusage-alpha"
cp -r "$ext/ccusage/projects/project-beta" "$tmp/config/projects/ccusage-beta"
cp -r "$ext/claude-code-log" "$tmp/config/projects/claude-code-log"
cp -r "$ext/spotter" "$tmp/config/projects/spotter"
cp -r "$root/tests/data/claude-2.1/projects/-home-dev-app" "$tmp/config/projects/claude-2.1"
BLUEPLANE_HOME=$tmp/home CLAUDE_CONFIG_DIR=$tmp/config CURSOR_DATA_DIR=$tmp/empty \
  CURSOR_HOME=$tmp/empty BLUEPLANE_PRIVACY_MODE=standard "$bin" backfill --json >/dev/null
python3 "$root/tools/zdict/build.py" --size "$size" --out "$out" "$tmp/home/telemetry.db"
