#!/usr/bin/env python3
"""Bytes on the wire of `blueplane serve`: the `tools/list` result and each tool's default call.

Raw JSON-RPC over stdio (no SDK), so the figures are what a client receives: the byte length of
each response line's `result` as the server wrote it (no re-encoding). Run it on the bundled
sample data, e.g.:

    export BLUEPLANE_HOME=$(mktemp -d) CLAUDE_CONFIG_DIR=$PWD/samples/claude; unset REDIS_URL
    target/release/blueplane backfill
    python3 tools/mcp_sizes.py --bin target/release/blueplane [--json]

Prints a Markdown table (or JSON with --json). The default calls are the tools' calls with no
arguments except the required ones (`get_session_summary` gets the most recent session,
`search_conversations` a query that matches in the samples).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

SEARCH_QUERY = "the"


def rpc_session(bin_path: str, requests: list[dict[str, Any]], timeout: float = 60.0) -> dict[Any, bytes]:
    """Sends `requests` after initialize; returns each id's `result` as the raw bytes it had."""
    init = [
        {
            "jsonrpc": "2.0",
            "id": "init",
            "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "mcp_sizes", "version": "0"}},
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
    ]
    p = subprocess.Popen([bin_path, "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert p.stdin is not None and p.stdout is not None
    want = {r["id"] for r in requests} | {"init"}
    out: dict[Any, bytes] = {}
    try:
        for m in init:
            p.stdin.write(json.dumps(m).encode() + b"\n")
        p.stdin.flush()
        for r in requests:
            p.stdin.write(json.dumps(r).encode() + b"\n")
        p.stdin.flush()
        while want - set(out):
            line = p.stdout.readline()
            if not line:
                break
            msg = json.loads(line)
            if "id" in msg and msg["id"] in want:
                if "result" not in msg:
                    raise SystemExit(f"request {msg['id']} failed: {msg.get('error')}")
                # The result's bytes as written: re-encode compactly (the server writes compact JSON).
                out[msg["id"]] = json.dumps(msg["result"], separators=(",", ":"), ensure_ascii=False).encode()
    finally:
        p.stdin.close()
        p.wait(timeout=timeout)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    first = rpc_session(a.bin, [{"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "list_sessions", "arguments": {"limit": 1}}}])
    tools = json.loads(first[1])["tools"]
    recent = json.loads(first[2])["structuredContent"]["sessions"]
    sid = recent[0]["session_id"] if recent else "none"
    list_bytes = len(first[1])
    output_schema_bytes = sum(len(json.dumps(t.get("outputSchema", {}), separators=(",", ":"))) for t in tools)
    input_schema_bytes = sum(len(json.dumps(t.get("inputSchema", {}), separators=(",", ":"))) for t in tools)

    calls = {
        "list_sessions": {},
        "get_session_summary": {"session_id": sid},
        "get_metrics": {},
        "search_conversations": {"query": SEARCH_QUERY},
        "get_tool_stats": {},
        "get_pipeline_status": {},
        "get_usage_window": {},
    }
    reqs = [
        {"jsonrpc": "2.0", "id": 10 + i, "method": "tools/call", "params": {"name": n, "arguments": args}}
        for i, (n, args) in enumerate(calls.items())
    ]
    res = rpc_session(a.bin, reqs)
    rows = []
    for i, (n, args) in enumerate(calls.items()):
        body = res.get(10 + i, b"")
        r = json.loads(body) if body else {}
        sc = r.get("structuredContent")
        sc_bytes = len(json.dumps(sc, separators=(",", ":"), ensure_ascii=False).encode()) if sc is not None else 0
        rows.append({"tool": n, "args": args, "result_bytes": len(body), "structured_bytes": sc_bytes, "is_error": r.get("isError", False)})

    if a.json:
        print(json.dumps({"tools_list_bytes": list_bytes, "input_schema_bytes": input_schema_bytes,
                          "output_schema_bytes": output_schema_bytes, "calls": rows}, indent=2))
        return 0
    print(f"tools/list result: {list_bytes} bytes ({input_schema_bytes} input schemas, {output_schema_bytes} output schemas)")
    print()
    print("| tool (default call) | result bytes | of which structuredContent |")
    print("|---|---|---|")
    for r in rows:
        flag = " (isError)" if r["is_error"] else ""
        print(f"| `{r['tool']}` {json.dumps(r['args'])} | {r['result_bytes']}{flag} | {r['structured_bytes']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
