#!/usr/bin/env python3
"""End-to-end test of `blueplane serve --http` with the official Python MCP SDK (mcp 2.x).

Driven by `tests/mcp_http.rs`, or by hand against a running server:

    BLUEPLANE_HOME=... [BLUEPLANE_TOKEN=...] .venv/bin/python tests/mcp/test_http.py \
        --url http://127.0.0.1:7532/mcp

The server's BLUEPLANE_HOME must hold the backfill of the `spotter` and `ccusage` fixture
trees (the script reads and writes `telemetry.db` there, like test_stdio.py). With
BLUEPLANE_TOKEN set, both clients send `Authorization: Bearer <token>`.

Two clients run at the same time over Streamable HTTP:
  * a handshake-era client (`ClientSession.initialize()`, a session with `Mcp-Session-Id`)
    runs every check of test_stdio.py: tools/list with valid input and output schemas, every
    tool called with `structuredContent` validated against its `outputSchema` (jsonschema),
    the fixture values, pagination, refusals and protocol errors;
  * a second client (`mcp.Client`, mode "auto": `server/discover`, the stateless 2026-07-28
    protocol when the server offers it) lists the tools and calls every one of them for
    several rounds, validating each result the same way.

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
    from mcp import Client, ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client
except ImportError as _e:
    print(f"{sys.executable} cannot import the MCP HTTP client: {_e}", file=sys.stderr)
    sys.exit(base.EXIT_CLIENT_MISSING)

TOTAL_TIMEOUT_S = 240.0
ROUNDS = 5

EVERY_TOOL = base.EVERY_TOOL


def http_client(token: str | None):
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return create_mcp_http_client(headers=headers)


async def full_suite(url: str, token: str | None, ck: base.Checker) -> base.Client:
    """The handshake-era session: every check of test_stdio.py."""
    async with http_client(token) as hc:
        async with streamable_http_client(url, http_client=hc) as (read, write):
            async with ClientSession(read, write, read_timeout_seconds=base.CALL_TIMEOUT_S) as session:
                init = await session.initialize()
                ck.eq(init.server_info.name, "blueplane", "legacy client: serverInfo.name")
                ck.check(init.capabilities.tools is not None, "legacy client: server declares the tools capability")
                c = base.Client(session, ck)
                await base.check_tool_list(c)
                await base.check_metrics(c)
                await base.check_sessions(c)
                await base.check_search(c)
                await base.check_tools_and_status(c)
                await base.check_usage_window(c)
                await base.check_errors(c)
                return c


async def every_tool(url: str, token: str | None, ck: base.Checker) -> tuple[base.Client, str]:
    """The second client: tools/list, then every tool, ROUNDS times."""
    async with http_client(token) as hc:
        async with Client(streamable_http_client(url, http_client=hc), read_timeout_seconds=base.CALL_TIMEOUT_S) as client:
            version = client.protocol_version
            ck.eq(client.server_info.name if client.server_info else None, "blueplane", "second client: serverInfo.name")
            c = base.Client(client.session, ck)
            await base.check_tool_list(c)
            ck.eq(set(EVERY_TOOL), base.TOOLS, "the second client calls every tool")
            for _ in range(ROUNDS):
                for name, args in EVERY_TOOL.items():
                    sc = await c.ok(name, args)
                    if name == "get_session_summary":
                        ck.eq(sc.get("session_id"), base.SESSION_ID, "second client: summary of the fixture session")
                    if name == "get_pipeline_status":
                        ck.eq(sc.get("sessions"), base.N_SESSIONS, "second client: pipeline status sessions")
            return c, version


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True, help="the MCP endpoint, e.g. http://127.0.0.1:7532/mcp")
    ap.add_argument("--bin", help="ignored: the server is already running (tests/mcp_http.rs passes it)")
    args = ap.parse_args()
    if "BLUEPLANE_HOME" not in os.environ:
        print("FAIL: BLUEPLANE_HOME is not set (the server's home: the script edits its database)", file=sys.stderr)
        return 2
    token = os.environ.get("BLUEPLANE_TOKEN") or None
    start = time.monotonic()
    ck = base.Checker()
    done: dict[str, object] = {}
    spans: dict[str, tuple[float, float]] = {}

    async def run_one(key: str, fn) -> None:
        t0 = time.monotonic()
        try:
            done[key] = await fn(args.url, token, ck)
        except BaseException as e:  # a crash of the client or the server: report it as a failure
            ck.check(False, f"{key} session aborted: {type(e).__name__}: {e}")
        spans[key] = (t0, time.monotonic())

    async def top() -> None:
        with anyio.fail_after(TOTAL_TIMEOUT_S):
            async with anyio.create_task_group() as tg:
                tg.start_soon(run_one, "legacy", full_suite)
                tg.start_soon(run_one, "second", every_tool)

    try:
        anyio.run(top)
    except BaseException as e:
        ck.check(False, f"run aborted: {type(e).__name__}: {e}")
    if len(spans) == 2:
        (a0, a1), (b0, b1) = spans["legacy"], spans["second"]
        ck.check(a0 < b1 and b0 < a1, f"the two sessions overlapped in time: {spans}")
    legacy = done.get("legacy")
    second = done.get("second")
    calls = (legacy.calls if isinstance(legacy, base.Client) else 0) + (
        second[0].calls if isinstance(second, tuple) else 0
    )
    version = second[1] if isinstance(second, tuple) else "?"
    elapsed_ms = (time.monotonic() - start) * 1000
    status = "OK" if not ck.failures else f"FAILED ({len(ck.failures)} failures)"
    print(
        f"mcp http: {status}; 2 concurrent clients (second at protocol {version}), tools {len(base.TOOLS)}, "
        f"tool calls {calls}, checks {ck.checks}, token {'yes' if token else 'no'}, elapsed {elapsed_ms:.0f} ms",
        flush=True,
    )
    return 1 if ck.failures else 0


if __name__ == "__main__":
    sys.exit(main())
