#!/usr/bin/env python3
"""MCP latency and freshness benchmark for `blueplane serve` (stdio), with the Python `mcp` SDK.

Spawns `blueplane serve` as an MCP stdio server (environment inherited: BLUEPLANE_HOME,
REDIS_URL, CLAUDE_CONFIG_DIR, TZ), then:

  latency    calls each of the six tools --calls times (round-robin over the tools, several
             argument variants per tool), timing each call on the client (request written ->
             result parsed), after --warmup calls per tool. Every result must be a success
             with structuredContent.
  freshness  appends --fresh-n new assistant lines, each with a new sessionId, to a transcript
             under --fresh-dir (which must be one of the CLAUDE_CONFIG_DIR entries), and polls
             list_sessions every --poll-ms until the new session is listed. Two variants:
             "append" (lines appended to one existing file) and "newfile" (a new
             <session>.jsonl file per session, as Claude Code does).

Prints one JSON object on stdout.
"""

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import sys
import time
import uuid

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

TOOLS = [
    "list_sessions",
    "get_session_summary",
    "get_metrics",
    "search_conversations",
    "get_tool_stats",
    "get_pipeline_status",
]


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return None
    i = min(len(xs) - 1, max(0, round((len(xs) - 1) * p)))
    return xs[i]


def summary(ms):
    return {
        "n": len(ms),
        "p50_ms": round(pct(ms, 0.50), 3),
        "p95_ms": round(pct(ms, 0.95), 3),
        "max_ms": round(max(ms), 3),
        "mean_ms": round(statistics.fmean(ms), 3),
    }


def server_pid():
    """The spawned server is our only child process."""
    me = os.getpid()
    try:
        with open(f"/proc/{me}/task/{me}/children") as f:
            kids = [int(x) for x in f.read().split()]
        return kids[0] if kids else None
    except OSError:
        return None


def rss_kb(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    k, v = line.split(":", 1)
                    out[k] = int(v.split()[0])
    except (OSError, TypeError):
        pass
    return out


class RawClient:
    """Minimal newline-delimited JSON-RPC client over the server's stdio: no schema
    validation, no pydantic models, so the time is the server's plus the pipe's."""

    def __init__(self, argv, errlog):
        import subprocess

        # Buffered pipes: an unbuffered readline() reads one byte per syscall.
        self.p = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errlog, bufsize=1 << 20
        )
        self.next_id = 0
        self.out = self.p.stdout

    def request(self, method, params):
        self.next_id += 1
        rid = self.next_id
        msg = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}
        self.p.stdin.write((json.dumps(msg) + "\n").encode())
        self.p.stdin.flush()
        while True:
            line = self.out.readline()
            if not line:
                raise RuntimeError("server closed stdout")
            m = json.loads(line)
            if m.get("id") == rid:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m["result"]

    def notify(self, method):
        self.p.stdin.write((json.dumps({"jsonrpc": "2.0", "method": method}) + "\n").encode())
        self.p.stdin.flush()

    def initialize(self):
        self.request(
            "initialize",
            {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}},
        )
        self.notify("notifications/initialized")

    def close(self):
        try:
            self.p.stdin.close()
            self.p.wait(timeout=10)
        except Exception:
            self.p.kill()

    async def call_tool(self, name, args):
        class R:
            pass

        res = self.request("tools/call", {"name": name, "arguments": args})
        r = R()
        r.is_error = res.get("isError", False)
        r.structured_content = res.get("structuredContent")
        r.content = [type("C", (), {"text": c.get("text", "")}) for c in res.get("content", [])]
        return r


async def call(session, name, args):
    t = time.perf_counter()
    r = await session.call_tool(name, args)
    el = (time.perf_counter() - t) * 1000
    # mcp 1.x names the fields isError/structuredContent, later versions is_error/structured_content.
    is_error = getattr(r, "is_error", None)
    if is_error is None:
        is_error = getattr(r, "isError", False)
    content = getattr(r, "structured_content", None)
    if content is None:
        content = getattr(r, "structuredContent", None)
    if is_error or content is None:
        text = " ".join(getattr(c, "text", "") for c in r.content)
        raise RuntimeError(f"{name}({args}) failed: {text[:300]}")
    return el, content


async def latency(session, n_calls, warmup):
    # Session ids to summarize: the most recent page.
    _, first = await call(session, "list_sessions", {"limit": 50})
    sids = [s["session_id"] for s in first["sessions"]] or ["none"]
    projects = sorted({s.get("project_path") or "" for s in first["sessions"]} - {""})
    proj = os.path.basename(projects[0]) if projects else "dev"
    variants = {
        "list_sessions": [("default", {}), ("project", {"project": proj}), ("since", {"since": "2026-10-01"})],
        "get_session_summary": [(f"sid{i}", {"session_id": s}) for i, s in enumerate(sids[:10])],
        "get_metrics": [
            (g, {"group_by": g, "timezone": "UTC"}) for g in ("day", "week", "month", "model", "project", "session")
        ],
        "search_conversations": [
            ("word", {"query": "migration"}),
            ("two-words", {"query": "redis stream"}),
            ("phrase", {"query": '"database migration"'}),
            ("or", {"query": "tokio OR websocket"}),
            ("prefix", {"query": "deploy*"}),
        ],
        "get_tool_stats": [("default", {}), ("project", {"project": proj})],
        "get_pipeline_status": [("default", {})],
    }
    for name in TOOLS:
        for i in range(warmup):
            label, args = variants[name][i % len(variants[name])]
            await call(session, name, args)
    times = {n: [] for n in TOOLS}
    by_variant = {}
    for i in range(n_calls):
        for name in TOOLS:
            label, args = variants[name][i % len(variants[name])]
            el, _ = await call(session, name, args)
            times[name].append(el)
            by_variant.setdefault(f"{name}:{label}", []).append(el)
    return {
        "tools": {n: summary(v) for n, v in times.items()},
        "variants": {k: summary(v) for k, v in by_variant.items()},
        "all": summary([x for v in times.values() for x in v]),
    }


def assistant_line(sid, cwd):
    now = dt.datetime.now(dt.timezone.utc)
    ts = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    rec = {
        "parentUuid": None,
        "isSidechain": False,
        "userType": "external",
        "cwd": cwd,
        "sessionId": sid,
        "version": "2.1.39",
        "gitBranch": "main",
        "message": {
            "model": "claude-opus-4-6",
            "id": "msg_01" + uuid.uuid4().hex[:22],
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": "Freshness probe reply."}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": 3,
                "cache_creation_input_tokens": 120,
                "cache_read_input_tokens": 1000,
                "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 120},
                "output_tokens": 12,
                "service_tier": "standard",
            },
        },
        "requestId": "req_011C" + uuid.uuid4().hex[:18],
        "type": "assistant",
        "uuid": str(uuid.uuid4()),
        "timestamp": ts,
    }
    return json.dumps(rec, separators=(",", ":")) + "\n"


async def freshness(session, fresh_dir, n, poll_ms, timeout_s):
    proj = os.path.join(fresh_dir, "projects", "-home-dev-projects-fresh")
    os.makedirs(proj, exist_ok=True)
    tail_file = os.path.join(proj, "fresh-tail.jsonl")
    if not os.path.exists(tail_file):
        with open(tail_file, "w", encoding="utf-8") as f:
            f.write(assistant_line(str(uuid.uuid4()), "/home/dev/projects/fresh"))
        await asyncio.sleep(2)
    out = {}
    for variant in ("append", "newfile"):
        lat = []
        misses = 0
        for _ in range(n):
            sid = str(uuid.uuid4())
            path = tail_file if variant == "append" else os.path.join(proj, sid + ".jsonl")
            line = assistant_line(sid, "/home/dev/projects/fresh")
            t0 = time.perf_counter()
            with open(path, "a", encoding="utf-8") as f:
                f.write(line)
            seen = None
            while time.perf_counter() - t0 < timeout_s:
                _, res = await call(session, "list_sessions", {"limit": 5, "project": "fresh"})
                if any(s["session_id"] == sid for s in res["sessions"]):
                    seen = (time.perf_counter() - t0) * 1000
                    break
                await asyncio.sleep(poll_ms / 1000)
            if seen is None:
                misses += 1
            else:
                lat.append(seen)
            await asyncio.sleep(0.2)
        out[variant] = dict(summary(lat) if lat else {"n": 0}, timeouts=misses, timeout_s=timeout_s)
    return out


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--settle", type=float, default=3.0, help="seconds to wait after initialize")
    ap.add_argument("--fresh-dir")
    ap.add_argument("--fresh-n", type=int, default=20)
    ap.add_argument("--poll-ms", type=float, default=20)
    ap.add_argument("--fresh-timeout", type=float, default=10)
    ap.add_argument("--no-latency", action="store_true")
    ap.add_argument("--server-log", default=os.devnull)
    ap.add_argument("--client", choices=["sdk", "raw"], default="sdk",
                    help="sdk: the mcp Python SDK (validates structuredContent against the output "
                         "schema); raw: bare JSON-RPC lines over the pipe")
    a = ap.parse_args()

    if a.client == "raw":
        result = {"client": "raw"}
        with open(a.server_log, "a") as errlog:
            c = RawClient([a.bin, "serve"], errlog)
            try:
                t = time.perf_counter()
                c.initialize()
                result["initialize_ms"] = round((time.perf_counter() - t) * 1000, 3)
                await asyncio.sleep(a.settle)
                result["rss_after_start_kb"] = rss_kb(c.p.pid)
                if not a.no_latency:
                    result["latency"] = await latency(c, a.calls, a.warmup)
                    result["rss_after_latency_kb"] = rss_kb(c.p.pid)
                if a.fresh_dir:
                    result["freshness"] = await freshness(c, a.fresh_dir, a.fresh_n, a.poll_ms, a.fresh_timeout)
                    result["rss_after_freshness_kb"] = rss_kb(c.p.pid)
            finally:
                c.close()
        print(json.dumps(result))
        return

    params = StdioServerParameters(command=a.bin, args=["serve"], env=dict(os.environ))
    result = {"client": "sdk"}
    with open(a.server_log, "a") as errlog:
        async with stdio_client(params, errlog=errlog) as (r, w):
            async with ClientSession(r, w) as session:
                t = time.perf_counter()
                await session.initialize()
                result["initialize_ms"] = round((time.perf_counter() - t) * 1000, 3)
                pid = server_pid()
                await asyncio.sleep(a.settle)
                result["rss_after_start_kb"] = rss_kb(pid)
                if not a.no_latency:
                    result["latency"] = await latency(session, a.calls, a.warmup)
                    result["rss_after_latency_kb"] = rss_kb(pid)
                if a.fresh_dir:
                    result["freshness"] = await freshness(
                        session, a.fresh_dir, a.fresh_n, a.poll_ms, a.fresh_timeout
                    )
                    result["rss_after_freshness_kb"] = rss_kb(pid)
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
