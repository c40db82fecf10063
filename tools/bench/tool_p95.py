#!/usr/bin/env python3
"""Tool latency side by side: two `blueplane serve` binaries (each on its own home), raw
JSON-RPC over stdio, the calls interleaved (A, B, A, B, ...) so both see the same machine load.

For every call variant it prints p50 / p95 / max per binary, and checks that both binaries
return the same structuredContent (ignoring `source`, which says where a figure came from).

Usage:
  tool_p95.py --a BIN --a-home DIR [--b BIN --b-home DIR] [--calls 20] [--claude-dir DIR]

The homes must hold stores of the same history (e.g. one backfilled by each binary). Prints
one JSON object; exits 1 when the answers differ.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CALLS = [
    ("get_metrics", {}),
    ("get_metrics", {"group_by": "week", "timezone": "Europe/Berlin"}),
    ("get_metrics", {"group_by": "model"}),
    ("get_metrics", {"group_by": "project"}),
    ("get_metrics", {"group_by": "platform", "since": "2026-09-20T10:07:00Z", "until": "2026-10-12T03:05:10Z"}),
    ("get_metrics", {"group_by": "day", "timezone": "UTC", "project": "proj"}),
    ("get_tool_stats", {}),
    ("get_tool_stats", {"project": "proj"}),
    ("get_tool_stats", {"since": "2026-09-20T10:07:00Z", "until": "2026-10-12T03:05:10Z"}),
    ("list_sessions", {}),
    ("search_conversations", {"query": "retry budget"}),
    ("get_pipeline_status", {}),
]


class Server:
    def __init__(self, binary, home, claude_dir):
        env = dict(os.environ, BLUEPLANE_HOME=home, CLAUDE_CONFIG_DIR=claude_dir, TZ="UTC")
        self.p = subprocess.Popen(
            [binary, "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env=env, text=True, bufsize=1,
        )
        self.next_id = 0
        self.call_raw("initialize", {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "tool_p95", "version": "1"},
        })
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def send(self, msg):
        self.p.stdin.write(json.dumps(msg) + "\n")
        self.p.stdin.flush()

    def call_raw(self, method, params):
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise RuntimeError("server closed stdout")
            msg = json.loads(line)
            if msg.get("id") == self.next_id:
                return msg

    def tool(self, name, args):
        t = time.perf_counter()
        msg = self.call_raw("tools/call", {"name": name, "arguments": args})
        ms = (time.perf_counter() - t) * 1000
        res = msg.get("result") or {}
        if res.get("isError") or "structuredContent" not in res:
            raise RuntimeError(f"{name} {args}: {msg}")
        return ms, res["structuredContent"]

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=10)


def strip(v):
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items() if k not in ("source", "generated_at", "now", "uptime_s")}
    if isinstance(v, list):
        return [strip(x) for x in v]
    return v


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True)
    ap.add_argument("--a-home", required=True)
    ap.add_argument("--b", help="second binary (omit to time one binary alone)")
    ap.add_argument("--b-home")
    ap.add_argument("--claude-dir", default="/nonexistent")
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--settle", type=float, default=3.0)
    a = ap.parse_args()
    servers = {"a": Server(a.a, a.a_home, a.claude_dir)}
    if a.b:
        servers["b"] = Server(a.b, a.b_home, a.claude_dir)
    sides = list(servers)
    time.sleep(a.settle)
    out, same = [], True
    for name, args in CALLS:
        times = {side: [] for side in sides}
        answers = {}
        for side in sides:  # warm-up
            answers[side] = strip(servers[side].tool(name, args)[1])
        for _ in range(a.calls):
            for side in sides:
                ms, _ = servers[side].tool(name, args)
                times[side].append(ms)
        equal = name == "get_pipeline_status" or len(sides) == 1 or answers["a"] == answers["b"]
        same &= equal
        row = {"tool": name, "args": args, "same_answer": equal}
        for side in sides:
            xs = times[side]
            row[side] = {"p50": round(statistics.median(xs), 2), "p95": round(pct(xs, 0.95), 2), "max": round(max(xs), 2)}
        out.append(row)
        p95s = ", ".join(f"{side} p95 {row[side]['p95']} ms" for side in sides)
        print(f"{name} {json.dumps(args)}: {p95s}, same={equal}", file=sys.stderr)
    for s in servers.values():
        s.close()
    print(json.dumps({"calls": a.calls, "load": os.getloadavg(), "results": out}, indent=1))
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
