#!/usr/bin/env python3
"""End-to-end test of the legacy HTTP+SSE transport of `blueplane serve --http` (`/sse`) with
the official Python MCP SDK's `mcp.client.sse.sse_client`.

Driven by `tests/mcp_sse.rs`, or by hand against a running server:

    BLUEPLANE_HOME=... [BLUEPLANE_TOKEN=...] .venv/bin/python tests/mcp/test_sse.py \
        --url http://127.0.0.1:7532/sse

The server's BLUEPLANE_HOME must hold the backfill of the `spotter` and `ccusage` fixture
trees (like test_stdio.py). With BLUEPLANE_TOKEN set, the client sends
`Authorization: Bearer <token>` on the stream and on every POST.

Two SSE clients run at the same time: each initializes, lists the tools (valid input and
output schemas) and calls every tool for several rounds, validating `structuredContent`
against the tool's `outputSchema` with jsonschema (test_stdio.py's `Client.ok`); the first
also runs the fixture-value checks of test_stdio.py, its refusals and protocol errors, and
the argument-contract refusals.

Prints one summary line and exits 1 on any failure (3 when the client cannot be imported).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_stdio as base  # noqa: E402  (exits 3 itself when mcp cannot be imported)

try:
    import anyio
    from mcp import ClientSession
    from mcp.client.sse import sse_client
except ImportError as _e:
    print(f"{sys.executable} cannot import the MCP SSE client: {_e}", file=sys.stderr)
    sys.exit(base.EXIT_CLIENT_MISSING)

TOTAL_TIMEOUT_S = 240.0
ROUNDS = 3

EVERY_TOOL = base.EVERY_TOOL


async def session_run(url: str, token: str | None, ck: base.Checker, full: bool) -> base.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    created: list[str] = []
    async with sse_client(url, headers=headers, on_session_created=created.append) as (read, write):
        async with ClientSession(read, write, read_timeout_seconds=base.CALL_TIMEOUT_S) as session:
            init = await session.initialize()
            tag = "sse client" + (" 1" if full else " 2")
            ck.eq(init.server_info.name, "blueplane", f"{tag}: serverInfo.name")
            ck.check(init.capabilities.tools is not None, f"{tag}: server declares the tools capability")
            ck.check(len(created) == 1 and len(created[0]) >= 16, f"{tag}: endpoint event carries a sessionId: {created}")
            c = base.Client(session, ck)
            await base.check_tool_list(c)
            ck.eq(set(EVERY_TOOL), base.TOOLS, f"{tag}: calls every tool")
            for _ in range(ROUNDS):
                for name, args in EVERY_TOOL.items():
                    sc = await c.ok(name, args)
                    if name == "get_session_summary":
                        ck.eq(sc.get("session_id"), base.SESSION_ID, f"{tag}: summary of the fixture session")
                    if name == "get_pipeline_status":
                        ck.eq(sc.get("sessions"), base.N_SESSIONS, f"{tag}: pipeline status sessions")
            if full:
                await base.check_metrics(c)
                await base.check_sessions(c)
                await base.check_search(c)
                await base.check_tools_and_status(c)
                await base.check_errors(c)
                await base.check_contract_calls(c)
            return c


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True, help="the SSE endpoint, e.g. http://127.0.0.1:7532/sse")
    ap.add_argument("--bin", help="ignored: the server is already running (tests/mcp_sse.rs passes it)")
    args = ap.parse_args()
    if "BLUEPLANE_HOME" not in os.environ:
        print("FAIL: BLUEPLANE_HOME is not set (the server's home)", file=sys.stderr)
        return 2
    token = os.environ.get("BLUEPLANE_TOKEN") or None
    start = time.monotonic()
    ck = base.Checker()
    done: dict[str, base.Client] = {}

    async def run_one(key: str, full: bool) -> None:
        try:
            done[key] = await session_run(args.url, token, ck, full)
        except BaseException as e:  # a crash of the client or the server: report it as a failure
            ck.check(False, f"{key} session aborted: {type(e).__name__}: {e}")

    async def top() -> None:
        with anyio.fail_after(TOTAL_TIMEOUT_S):
            async with anyio.create_task_group() as tg:
                tg.start_soon(run_one, "first", True)
                tg.start_soon(run_one, "second", False)

    try:
        anyio.run(top)
    except BaseException as e:
        ck.check(False, f"run aborted: {type(e).__name__}: {e}")
    ck.eq(sorted(done), ["first", "second"], "both SSE sessions finished")
    calls = sum(c.calls for c in done.values())
    elapsed_ms = (time.monotonic() - start) * 1000
    status = "OK" if not ck.failures else f"FAILED ({len(ck.failures)} failures)"
    print(
        f"mcp sse: {status}; 2 concurrent SSE clients, tools {len(base.TOOLS)}, tool calls {calls}, "
        f"checks {ck.checks}, token {'yes' if token else 'no'}, elapsed {elapsed_ms:.0f} ms",
        flush=True,
    )
    return 1 if ck.failures else 0


if __name__ == "__main__":
    sys.exit(main())
