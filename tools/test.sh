#!/usr/bin/env bash
# The project's test command:  bash tools/test.sh [extra arguments for `cargo test`]
#
# On a fresh Debian machine it installs what the tests need, then runs formatting, lints and
# every test:
#   1. redis-server (apt-get) when it is not on PATH; the tests start private servers on unix
#      sockets and never use a system Redis;
#   2. .venv with the pinned Python test client (tools/requirements-test.txt: the official
#      `mcp` SDK and jsonschema), skipped when already satisfied;
#   3. the real Claude Code CLI, pinned (npm @anthropic-ai/claude-code into
#      ${XDG_CACHE_HOME:-~/.cache}/blueplane-test/claude, nodejs/npm with apt-get when missing),
#      skipped when the cached one already prints that version;
#   4. Node.js 22 for the MCP tools below (npm package `node`, pinned, into
#      ${XDG_CACHE_HOME:-~/.cache}/blueplane-test/node22; Debian's nodejs is older than they
#      declare), then the MCP Inspector CLI (npm @modelcontextprotocol/inspector into
#      .../blueplane-test/inspector) and the MCP conformance suite (npm
#      @modelcontextprotocol/conformance into .../blueplane-test/conformance), both pinned,
#      each skipped when the cached one already prints its version;
#   5. cargo fmt --check, cargo clippy --all-targets --locked -D warnings, cargo test --locked
#      (with BLUEPLANE_TEST_PYTHON = the venv's python, for tests/mcp_python.rs, mcp_http.rs and
#      mcp_sse.rs; BLUEPLANE_TEST_CLAUDE = that CLI with BLUEPLANE_REQUIRE_CLAUDE=1, for
#      tests/claude_e2e.rs; BLUEPLANE_TEST_NODE = that node, BLUEPLANE_TEST_INSPECTOR and
#      BLUEPLANE_TEST_CONFORMANCE = the two bins, with BLUEPLANE_REQUIRE_INSPECTOR=1 and
#      BLUEPLANE_REQUIRE_CONFORMANCE=1, for tests/mcp_inspector.rs and mcp_conformance.rs).
#   6. the benchmark corpus generator's own test (tools/bench/test_gen_corpus.py, stdlib, ~3 s).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
REQS="$ROOT/tools/requirements-test.txt"

step() { printf '==> %s\n' "$*" >&2; }
die() { printf 'tools/test.sh: %s\n' "$*" >&2; exit 1; }

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run '$*' and sudo is not installed; install it or run as root"
    fi
}

APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 ||
        die "cannot install $* automatically (no apt-get); install it with your package manager"
    local log
    log=$(mktemp)
    step "installing $* (apt-get)"
    if [ "$APT_UPDATED" -eq 0 ]; then
        if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$log" 2>&1; then
            cat "$log" >&2
            rm -f "$log"
            die "apt-get update failed"
        fi
        APT_UPDATED=1
    fi
    if ! as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$@" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        die "apt-get install $* failed"
    fi
    rm -f "$log"
}

# --- 1. redis-server -------------------------------------------------------------------------
if ! command -v redis-server >/dev/null 2>&1; then
    apt_install redis-server
    command -v redis-server >/dev/null 2>&1 || die "redis-server is still not on PATH after installing it"
fi

# --- 2. Python venv with the pinned MCP client -------------------------------------------------
command -v python3 >/dev/null 2>&1 || apt_install python3
python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' ||
    die "python3 is $(python3 -V 2>&1); the mcp test client needs Python 3.10 or newer"

# A venv whose interpreter no longer runs (moved or upgraded Python) is rebuilt.
if [ -e "$VENV" ] && ! "$VENV/bin/python" -c 'pass' >/dev/null 2>&1; then
    step "removing broken $VENV"
    rm -rf "$VENV"
fi
if [ ! -e "$VENV/bin/python" ]; then
    # Debian ships venv/ensurepip separately (python3-venv, python3.X-venv).
    if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
        apt_install python3-venv
    fi
    step "creating $VENV"
    if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
        rm -rf "$VENV"
        pyver=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
        apt_install "python${pyver}-venv"
        python3 -m venv "$VENV" || die "python3 -m venv $VENV failed"
    fi
fi

# Fast path: every `name==version` line of the requirements is already installed.
requirements_satisfied() {
    "$VENV/bin/python" - "$REQS" <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version

for line in open(sys.argv[1], encoding="utf-8"):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    name, _, want = line.partition("==")
    try:
        if version(name.strip()) != want.strip():
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
}
if ! requirements_satisfied; then
    step "installing the Python test client into $VENV ($(grep -E '^mcp==' "$REQS"))"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQS" ||
        die "pip install -r $REQS failed (is PyPI reachable?)"
    requirements_satisfied || die "$VENV does not satisfy $REQS after pip install"
fi
export BLUEPLANE_TEST_PYTHON="$VENV/bin/python"

# --- 3. The real Claude Code CLI, pinned, for tests/claude_e2e.rs ---------------------------
CLAUDE_PIN=2.1.328
CLAUDE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/blueplane-test/claude"
CLAUDE_BIN="$CLAUDE_DIR/node_modules/.bin/claude"
claude_pinned() { case "$("$CLAUDE_BIN" --version 2>/dev/null)" in "$CLAUDE_PIN "*) ;; *) return 1 ;; esac; }
if ! claude_pinned; then
    command -v npm >/dev/null 2>&1 || apt_install nodejs npm
    step "installing @anthropic-ai/claude-code@$CLAUDE_PIN into $CLAUDE_DIR (npm)"
    mkdir -p "$CLAUDE_DIR"
    npm install --prefix "$CLAUDE_DIR" --no-audit --no-fund --loglevel=error \
        "@anthropic-ai/claude-code@$CLAUDE_PIN" >&2 ||
        die "npm install @anthropic-ai/claude-code@$CLAUDE_PIN failed (is the npm registry reachable?)"
    claude_pinned || die "$CLAUDE_BIN --version does not print $CLAUDE_PIN after npm install"
fi
export BLUEPLANE_TEST_CLAUDE="$CLAUDE_BIN" BLUEPLANE_REQUIRE_CLAUDE=1

# --- 4. Node.js 22, the MCP Inspector CLI and the conformance suite, pinned ------------------
NODE22_PIN=22.23.3
INSPECTOR_PIN=2.12.0
CONFORMANCE_PIN=0.1.16
NPM_CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/blueplane-test"
NODE22_BIN="$NPM_CACHE_DIR/node22/node_modules/.bin/node"
INSPECTOR_BIN="$NPM_CACHE_DIR/inspector/node_modules/.bin/mcp-inspector"
CONFORMANCE_BIN="$NPM_CACHE_DIR/conformance/node_modules/.bin/conformance"
# npm_pinned <want> <command...>: the command prints exactly <want>.
npm_pinned() { local want=$1; shift; [ "$("$@" 2>/dev/null)" = "$want" ]; }
# npm_pin <dir> <package> <version> <want> <command...>: installs package@version into
# $NPM_CACHE_DIR/<dir> unless the command already prints <want>.
npm_pin() {
    local dir=$NPM_CACHE_DIR/$1 pkg=$2 ver=$3 want=$4
    shift 4
    npm_pinned "$want" "$@" && return 0
    command -v npm >/dev/null 2>&1 || apt_install nodejs npm
    step "installing $pkg@$ver into $dir (npm)"
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "$pkg@$ver" >&2 ||
        die "npm install $pkg@$ver failed (is the npm registry reachable?)"
    npm_pinned "$want" "$@" || die "'$*' does not print $want after npm install $pkg@$ver"
}
npm_pin node22 node "$NODE22_PIN" "v$NODE22_PIN" "$NODE22_BIN" --version
npm_pin inspector @modelcontextprotocol/inspector "$INSPECTOR_PIN" "$INSPECTOR_PIN" \
    "$NODE22_BIN" "$INSPECTOR_BIN" --version
npm_pin conformance @modelcontextprotocol/conformance "$CONFORMANCE_PIN" "$CONFORMANCE_PIN" \
    "$NODE22_BIN" "$CONFORMANCE_BIN" --version
export BLUEPLANE_TEST_NODE="$NODE22_BIN" BLUEPLANE_TEST_INSPECTOR="$INSPECTOR_BIN" \
    BLUEPLANE_TEST_CONFORMANCE="$CONFORMANCE_BIN" BLUEPLANE_REQUIRE_INSPECTOR=1 \
    BLUEPLANE_REQUIRE_CONFORMANCE=1

# --- 5. Rust: format, lints, tests -------------------------------------------------------------
command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust with rustup (https://rustup.rs)"
for component in rustfmt clippy; do
    sub=${component/rustfmt/fmt}
    if ! cargo "$sub" --version >/dev/null 2>&1; then
        command -v rustup >/dev/null 2>&1 || die "cargo $sub is missing: install the $component component"
        step "adding the $component component"
        rustup component add "$component" >/dev/null 2>&1 || die "rustup component add $component failed"
    fi
done

step "cargo fmt --check"
cargo fmt --check
step "cargo clippy --all-targets --locked -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings
step "cargo test --locked $*"
cargo test --locked "$@"
step "tools/bench/test_gen_corpus.py (the benchmark corpus generator)"
python3 "$ROOT/tools/bench/test_gen_corpus.py"
step "all checks passed"
