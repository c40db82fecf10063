#!/usr/bin/env python3
"""Concurrency soak of `blueplane serve --http` (MCP Streamable HTTP) with the Python `mcp` SDK.

Starts `BIN serve --http 127.0.0.1:<free port>` (environment inherited: BLUEPLANE_HOME,
REDIS_URL, CLAUDE_CONFIG_DIR, TZ; the store should hold real data, e.g. a gen_corpus.py
corpus after `blueplane backfill`), then:

  calibrate  times the slow call uncancelled (--calibrate runs): a search with a query of
             exactly 1,000 characters (the server's cap, query::MAX_QUERY_CHARS) made of
             one-letter prefix terms OR'ed together, the heaviest search the cap allows;
  soak       --clients sessions (handshake-era `ClientSession`, one `Mcp-Session-Id` each)
             call a mix of list_sessions, get_metrics, search_conversations, get_tool_stats
             and get_session_summary for --seconds, while one more client keeps starting the
             slow call and cancelling it after --cancel-after seconds (an anyio cancel scope:
             the SDK sends `notifications/cancelled`). Every mix call must succeed with
             structuredContent; anything else is an error;
  stop       with the server otherwise idle, the slow call is started and cancelled again,
             once by `notifications/cancelled` (handshake-era session) and once by
             disconnecting (`mcp.Client` mode auto: the stateless 2026-07-28 protocol, where
             the SDK aborts the request's POST), and the server's CPU time is sampled for the
             calibrated duration: a call that stopped leaves the server near idle.

Loopback only, bounded (every call has a timeout, the whole run --seconds plus a fixed
margin). Prints a JSON object on stdout; exits 1 when a mix call failed or a cancelled call
kept the server busy.

    BLUEPLANE_HOME=... REDIS_URL=... tools/bench/http_soak.py --bin target/release/blueplane
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time

try:
    import anyio
    from mcp import Client, ClientSession
    from mcp.client.streamable_http import streamable_http_client
except ImportError as _e:
    print(f"{sys.executable} cannot import the MCP client: {_e}", file=sys.stderr)
    sys.exit(3)

MIX = ["list_sessions", "get_metrics", "search_conversations", "get_tool_stats", "get_session_summary"]
WORDS = ["phoenix", "migration", "redis", "tokio", "deadlock", "schema", "benchmark", "cache", "websocket"]
CALL_TIMEOUT_S = 30.0
TICK = os.sysconf("SC_CLK_TCK")


def slow_query() -> str:
    """1,000 characters: single-letter prefix terms OR'ed (every indexed token matches)."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    terms, i = [], 0
    while True:
        t = letters[i % 26] + "*"
        q = " OR ".join(terms + [t])
        if len(q) > 1000:
            break
        terms.append(t)
        i += 1
    q = " OR ".join(terms)
    return q + " " * (1000 - len(q)) if len(q) < 1000 else q


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round((len(xs) - 1) * p)))]


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def args_for(tool: str, rng: random.Random, session_ids: list[str]) -> dict:
    if tool == "list_sessions":
        return {"limit": rng.choice([3, 5, 10])}
    if tool == "get_metrics":
        return {"group_by": rng.choice(["day", "model", "project"]), "timezone": "UTC"}
    if tool == "search_conversations":
        return {"query": rng.choice(WORDS)}
    if tool == "get_tool_stats":
        return {"session_id": rng.choice(session_ids)} if rng.random() < 0.5 else {}
    return {"session_id": rng.choice(session_ids)}


class Stats:
    def __init__(self) -> None:
        self.ms: dict[str, list[float]] = {t: [] for t in MIX}
        self.errors: list[str] = []
        self.cancels = 0
        self.cancel_ms: list[float] = []
        self.slow_finished = 0
        self.per_client: list[int] = []


async def mix_client(url: str, deadline: float, seed: int, session_ids: list[str], st: Stats) -> None:
    rng = random.Random(seed)
    done = 0
    try:
        async with streamable_http_client(url) as (r, w):
            async with ClientSession(r, w, read_timeout_seconds=CALL_TIMEOUT_S) as s:
                await s.initialize()
                while time.monotonic() < deadline:
                    tool = rng.choice(MIX)
                    a = args_for(tool, rng, session_ids)
                    t0 = time.perf_counter()
                    try:
                        res = await s.call_tool(tool, a, read_timeout_seconds=CALL_TIMEOUT_S)
                    except Exception as e:  # noqa: BLE001 - every failure is counted
                        st.errors.append(f"{tool}: {type(e).__name__}: {e}")
                        continue
                    ms = (time.perf_counter() - t0) * 1000
                    if res.is_error or not isinstance(res.structured_content, dict):
                        st.errors.append(f"{tool}({a}): {[c.model_dump() for c in res.content]}"[:300])
                    else:
                        st.ms[tool].append(ms)
                        done += 1
    except Exception as e:  # noqa: BLE001
        st.errors.append(f"client {seed}: {type(e).__name__}: {e}")
    st.per_client.append(done)


async def cancel_once(s, after: float) -> tuple[bool, float]:
    """Starts the slow call, abandons it after `after` s; (cancelled, ms until control came back)."""
    t0 = time.perf_counter()
    with anyio.move_on_after(after) as scope:
        await s.call_tool("search_conversations", {"query": slow_query(), "limit": 50},
                          read_timeout_seconds=CALL_TIMEOUT_S)
    return scope.cancelled_caught, (time.perf_counter() - t0) * 1000


async def slow_canceller(url: str, deadline: float, after: float, st: Stats) -> None:
    try:
        async with streamable_http_client(url) as (r, w):
            async with ClientSession(r, w, read_timeout_seconds=CALL_TIMEOUT_S) as s:
                await s.initialize()
                while time.monotonic() < deadline:
                    cancelled, ms = await cancel_once(s, after)
                    if cancelled:
                        st.cancels += 1
                        st.cancel_ms.append(ms)
                    else:
                        st.slow_finished += 1
    except Exception as e:  # noqa: BLE001
        st.errors.append(f"slow client: {type(e).__name__}: {e}")


SETTLE_MAX_S = [60.0]


async def settle(pid: int) -> None:
    """Waits (at most SETTLE_MAX_S) until the server uses under 2% of a core: earlier calls
    are done."""
    for _ in range(int(SETTLE_MAX_S[0] * 2)):
        c0 = cpu_s(pid)
        await anyio.sleep(0.5)
        if cpu_s(pid) - c0 < 0.011:
            return


async def busy_after_cancel(pid: int, url: str, modern: bool, after: float, window: float, slow_cpu: float) -> dict:
    """CPU seconds the server uses in `window` s after a cancel, against an idle baseline and
    the CPU seconds of the slow call run to its end."""
    await settle(pid)
    c0 = cpu_s(pid)
    await anyio.sleep(window)
    idle = cpu_s(pid) - c0
    if modern:
        async with Client(streamable_http_client(url), read_timeout_seconds=CALL_TIMEOUT_S) as client:
            cancelled, _ = await cancel_once(client.session, after)
            proto = client.protocol_version
            c1 = cpu_s(pid)
            await anyio.sleep(window)
            used = cpu_s(pid) - c1
    else:
        async with streamable_http_client(url) as (r, w):
            async with ClientSession(r, w, read_timeout_seconds=CALL_TIMEOUT_S) as s:
                init = await s.initialize()
                proto = init.protocol_version
                cancelled, _ = await cancel_once(s, after)
                c1 = cpu_s(pid)
                await anyio.sleep(window)
                used = cpu_s(pid) - c1
    return {"protocol": proto, "cancelled_on_client": cancelled, "window_s": round(window, 2),
            "server_cpu_s_after_cancel": round(used, 3), "server_cpu_s_idle": round(idle, 3),
            "stopped": cancelled and used - idle < 0.5 * slow_cpu}


async def main_async(a, url: str, pid: int) -> dict:
    async with streamable_http_client(url) as (r, w):
        async with ClientSession(r, w, read_timeout_seconds=CALL_TIMEOUT_S) as s:
            await s.initialize()
            ls = await s.call_tool("list_sessions", {"limit": 50})
            session_ids = [x["session_id"] for x in ls.structured_content["sessions"]]
            if not session_ids:
                raise SystemExit("the store holds no sessions: backfill a corpus first")
            slow, slow_cpu = [], []
            for _ in range(a.calibrate):
                await settle(pid)
                c0, t0 = cpu_s(pid), time.perf_counter()
                res = await s.call_tool("search_conversations", {"query": slow_query(), "limit": 50},
                                        read_timeout_seconds=CALL_TIMEOUT_S)
                slow.append(time.perf_counter() - t0)
                slow_cpu.append(cpu_s(pid) - c0)
                if res.is_error:
                    raise SystemExit(f"the slow call failed: {res.content}")
    slow_s, slow_cpu_s = statistics.median(slow), statistics.median(slow_cpu)
    st = Stats()
    deadline = time.monotonic() + a.seconds
    c0, t0 = cpu_s(pid), time.monotonic()
    with anyio.fail_after(a.seconds + 120):
        async with anyio.create_task_group() as tg:
            for i in range(a.clients):
                tg.start_soon(mix_client, url, deadline, a.seed + i, session_ids, st)
            if a.slow:
                tg.start_soon(slow_canceller, url, deadline, a.cancel_after, st)
    wall = time.monotonic() - t0
    soak_cpu = cpu_s(pid) - c0
    window = max(1.0, 1.5 * slow_s)
    with anyio.fail_after(4 * window + 240):
        await settle(pid)
        backlog = round(time.monotonic() - t0 - wall, 2)
        stop = {} if not a.stop_check else {
            "notifications/cancelled": await busy_after_cancel(pid, url, False, a.cancel_after, window, slow_cpu_s),
            "disconnect": await busy_after_cancel(pid, url, True, a.cancel_after, window, slow_cpu_s),
        }
    n = sum(len(v) for v in st.ms.values())
    return {
        "clients": a.clients, "seconds": a.seconds, "wall_s": round(wall, 2),
        "calls": n, "calls_per_s": round(n / wall, 1), "errors": len(st.errors),
        "fewest_calls_by_a_client": min(st.per_client, default=0),
        "error_samples": st.errors[:5],
        "server_cpu_s": round(soak_cpu, 2),
        "latency_ms": {t: {"n": len(v), "p50": round(pct(v, .5), 2), "p95": round(pct(v, .95), 2),
                           "p99": round(pct(v, .99), 2), "max": round(max(v), 2)}
                       for t, v in st.ms.items() if v},
        "slow_call": {"query_chars": len(slow_query()), "uncancelled_s": round(slow_s, 3),
                      "uncancelled_server_cpu_s": round(slow_cpu_s, 3),
                      "server_busy_after_soak_s": backlog,
                      "cancel_after_s": a.cancel_after, "cancelled_during_soak": st.cancels,
                      "finished_before_cancel": st.slow_finished,
                      "cancel_return_p50_ms": round(pct(st.cancel_ms, .5), 1) if st.cancel_ms else None},
        "stop": stop,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin", required=True)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--cancel-after", type=float, default=0.2)
    p.add_argument("--calibrate", type=int, default=3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--min-calls", type=int, default=1, help="each client must complete this many calls")
    p.add_argument("--no-slow", dest="slow", action="store_false",
                   help="no slow call during the soak (a baseline for its effect on the others)")
    p.add_argument("--no-stop-check", dest="stop_check", action="store_false",
                   help="skip the idle-server check that a cancelled call stopped")
    a = p.parse_args()
    if not (1 <= a.clients <= 500 and 0 < a.seconds <= 600):
        p.error("--clients 1..500, --seconds up to 600")
    if not a.stop_check:
        SETTLE_MAX_S[0] = 0.0
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    env = {k: v for k, v in os.environ.items() if k != "BLUEPLANE_TOKEN"}
    srv = subprocess.Popen([a.bin, "serve", "--http", f"127.0.0.1:{port}"], env=env,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        t0 = time.monotonic()
        while True:
            if srv.poll() is not None:
                raise SystemExit(f"serve --http exited with {srv.returncode}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() - t0 > 30:
                    raise SystemExit("serve --http did not listen within 30 s")
                time.sleep(0.05)
        out = anyio.run(main_async, a, url, srv.pid)
    finally:
        srv.terminate()
        try:
            srv.wait(10)
        except subprocess.TimeoutExpired:
            srv.kill()
    json.dump(out, sys.stdout, indent=2)
    print()
    ok = (out["errors"] == 0 and out["fewest_calls_by_a_client"] >= a.min_calls
          and all(v["stopped"] for v in out["stop"].values()))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
