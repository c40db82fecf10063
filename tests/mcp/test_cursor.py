#!/usr/bin/env python3
"""Asks `blueplane serve` (stdio) about Cursor sessions with the official Python MCP SDK.

Driven by `tests/cursor_e2e.rs`, which backfilled a Cursor data dir (samples/cursor), a Cursor
hook payload and an agent transcript beside the Claude Code samples into BLUEPLANE_HOME first and checks the figures. This
script calls the tools, validates every `structuredContent` against the tool's `outputSchema`
(jsonschema), and prints one JSON object with the results on stdout:

    {"sessions": …, "summaries": {id: …}, "search": …, "search_all": …, "all_sessions": …,
     "metrics": …, "tools": …}

Exits 1 when a call fails or a result does not match its schema; 3 when the client is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

EXIT_CLIENT_MISSING = 3
try:
    from jsonschema import Draft202012Validator
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client
except ImportError as e:  # pragma: no cover - reported by the Rust side
    print(f"cannot import the MCP client: {e}", file=sys.stderr)
    sys.exit(EXIT_CLIENT_MISSING)

PASS_ENV = ("BLUEPLANE_HOME", "REDIS_URL", "CLAUDE_CONFIG_DIR", "CURSOR_DATA_DIR", "CURSOR_HOME", "TZ", "BLUEPLANE_LOG", "PATH")


async def main(bin_path: str) -> int:
    env = {k: os.environ[k] for k in PASS_ENV if k in os.environ}
    params = StdioServerParameters(command=bin_path, args=["serve"], env=env)
    failures: list[str] = []
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as s:
            await s.initialize()
            schemas = {t.name: t.output_schema for t in (await s.list_tools()).tools}

            async def call(name: str, args: dict) -> dict:
                res = await s.call_tool(name, args)
                if res.is_error:
                    failures.append(f"{name}({args}): isError {[c.model_dump() for c in res.content]}")
                    return {}
                sc = res.structured_content or {}
                errs = list(Draft202012Validator(schemas[name]).iter_errors(sc))
                if errs:
                    failures.append(f"{name}({args}): does not match outputSchema: {errs[0].message}")
                return sc

            out: dict = {}
            out["sessions"] = await call("list_sessions", {"platform": "cursor", "limit": 50})
            out["summaries"] = {}
            for row in out["sessions"].get("sessions", []):
                sid = row["session_id"]
                out["summaries"][sid] = await call("get_session_summary", {"session_id": sid})
            out["search"] = await call("search_conversations", {"query": "checkout", "platform": "cursor"})
            out["search_all"] = await call("search_conversations", {"query": "test", "limit": 50})
            out["all_sessions"] = await call("list_sessions", {"limit": 50})
            out["metrics"] = await call("get_metrics", {"group_by": "platform", "timezone": "UTC"})
            out["tools"] = await call("get_tool_stats", {"platform": "cursor"})
    print(json.dumps(out))
    for f in failures:
        print(f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    sys.exit(asyncio.run(main(ap.parse_args().bin)))
