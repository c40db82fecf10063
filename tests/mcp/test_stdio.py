#!/usr/bin/env python3
"""End-to-end test of `blueplane serve` over stdio with the official Python MCP SDK (mcp 2.x).

Driven by `tests/mcp_python.rs`, or by hand:

    BLUEPLANE_HOME=... REDIS_URL=... CLAUDE_CONFIG_DIR=... TZ=UTC \
        .venv/bin/python tests/mcp/test_stdio.py --bin target/debug/blueplane [--backfill]

The environment variables BLUEPLANE_HOME, REDIS_URL, CLAUDE_CONFIG_DIR, TZ (and BLUEPLANE_LOG,
BLUEPLANE_PRIVACY_MODE when set) are passed on to the server. The data in BLUEPLANE_HOME must
be the backfill of the `spotter` and `ccusage` fixture trees (`--backfill` runs
`blueplane backfill --json` first). The concrete values checked below come from those trees.

What it checks (BRIEF §2 invariants 2 and 10, §5 tool contract):
  * tools/list: exactly the tools of TOOLS, each `readOnlyHint: true`, with an input and an output
    schema that are valid JSON Schemas;
  * every tool is called with valid arguments; each result has `structuredContent` that
    validates against the tool's `outputSchema` (checked here with `jsonschema`, on top of the
    SDK's own check), and a text block carrying the same JSON;
  * fixture values: daily tokens/cost, one session's summary, search hits, tool stats,
    totals that agree across tools and groupings;
  * get_usage_window: estimates from tokens (the fixtures are older than both windows), then
    the official figures of status-line samples inserted into `usage_samples` with sqlite3
    (the latest sample whose reset time is ahead counts, per window), with their age;
  * pagination of list_sessions and search_conversations (`limit` + `next_cursor`);
  * refusals (`isError: true`, a non-empty message, no `structuredContent`) for an unknown
    session, bad search syntax, an unknown time zone, a bad group_by, bad dates and limits;
  * an unknown tool and wrongly typed arguments give an error and the server keeps serving;
  * the tool contract: an unknown argument, a wrong type, an out-of-range limit, a bad enum
    value and a 200,000-word query are each an isError result naming the argument and what it
    takes; serverInfo has the crate version and a title, every tool a title; input schemas
    describe every argument, with enums, limit bounds, the query's maxLength, no `$defs` and
    no nullable arrays on optional fields; session_id (get_tool_stats), role
    (search_conversations) and timezone (list_sessions, search, tool stats) work; default
    pages; over raw JSON-RPC: the tools/list budget, every default call under 8 KB, and the
    error codes -32700, -32600 with the id, -32602 (tools/call params, unknown tool, tools/list
    cursor), -32601.

Prints one summary line and exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import sqlite3
import queue
import subprocess
import sys
import threading
import time
from typing import Any

EXIT_CLIENT_MISSING = 3  # tests/mcp_python.rs turns this into "Python mcp client missing: ..."
try:
    import anyio
    import jsonschema
    from jsonschema import Draft202012Validator

    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client
    from mcp.shared.exceptions import MCPError
except ImportError as _e:
    print(f"{sys.executable} cannot import the MCP client: {_e}", file=sys.stderr)
    sys.exit(EXIT_CLIENT_MISSING)

TOOLS = {
    "list_sessions",
    "get_session_summary",
    "get_metrics",
    "search_conversations",
    "get_tool_stats",
    "get_pipeline_status",
    "get_usage_window",
}
PASS_ENV = ("BLUEPLANE_HOME", "REDIS_URL", "CLAUDE_CONFIG_DIR", "TZ", "BLUEPLANE_LOG", "BLUEPLANE_PRIVACY_MODE")
CALL_TIMEOUT_S = 30.0
TOTAL_TIMEOUT_S = 180.0

# Fixture facts (spotter + ccusage trees, TZ=UTC).
SESSION_ID = "d6e0bada-1959-4eec-a9d2-0bfade768d8f"
N_SESSIONS = 6
GRAND_TOTAL_TOKENS = 356824
GRAND_TOTAL_TOOL_CALLS = 20
GRAND_TOTAL_TOOL_ERRORS = 2

# One valid call per tool: the HTTP and SSE clients call each of these every round.
EVERY_TOOL = {
    "list_sessions": {"limit": 3},
    "get_session_summary": {"session_id": SESSION_ID},
    "get_metrics": {"group_by": "model", "timezone": "UTC"},
    "search_conversations": {"query": "phoenix"},
    "get_tool_stats": {},
    "get_pipeline_status": {},
    "get_usage_window": {},
}

# The tool contract (src/mcp/mod.rs, src/mcp/schema.rs, src/query/mod.rs).
SESSIONS_PAGE = 5  # list_sessions' default page
SEARCH_PAGE = 8  # search_conversations' default page
MAX_LIMIT = 500
MAX_QUERY_CHARS = 1000
# Bytes of the tools/list result as the server writes it (compact JSON): 20,341 before the
# contract work, 19,037 after it, 19,461 with nullable result fields as anyOf branches
# (docs/BENCHMARKS.md). A change that needs more than this
# budget says why, here and in BENCHMARKS.
TOOLS_LIST_BUDGET = 19_500
DEFAULT_CALL_BUDGET = 8_192  # bytes of a tool's default call result on the fixtures

# Checks that fail because of a bug already reported to the maintainers. They are printed as
# "KNOWN BUG" instead of failing the run; when one starts to pass the run says so, and the
# entry should be deleted. Set BLUEPLANE_TEST_STRICT=1 to fail on them anyway.
KNOWN_BUGS: set[str] = set()


class Checker:
    def __init__(self) -> None:
        self.failures: list[str] = []
        self.known: list[str] = []
        self.fixed: list[str] = []
        self.checks = 0
        self.strict = os.environ.get("BLUEPLANE_TEST_STRICT") == "1"

    def check(self, cond: bool, what: str, known_bug: str | None = None) -> bool:
        self.checks += 1
        if known_bug is not None and known_bug in KNOWN_BUGS and not self.strict:
            if cond:
                self.fixed.append(f"{known_bug}: {what}")
                print(f"KNOWN BUG FIXED (delete it from KNOWN_BUGS): {known_bug}: {what}", flush=True)
            else:
                self.known.append(f"{known_bug}: {what}")
                print(f"KNOWN BUG (not failing the run): {known_bug}: {what}", flush=True)
            return cond
        if not cond:
            self.failures.append(what)
            print(f"FAIL: {what}", flush=True)
        return cond

    def eq(self, got: Any, want: Any, what: str, known_bug: str | None = None) -> bool:
        return self.check(got == want, f"{what}: got {got!r}, want {want!r}", known_bug)

    def close(self, got: Any, want: float, what: str, tol: float = 1e-6) -> bool:
        ok = isinstance(got, (int, float)) and math.isclose(got, want, rel_tol=0, abs_tol=tol)
        return self.check(ok, f"{what}: got {got!r}, want {want} (±{tol})")


def short(v: Any, n: int = 400) -> str:
    s = json.dumps(v, default=str) if not isinstance(v, str) else v
    return s if len(s) <= n else s[:n] + "…"


class Client:
    """A `ClientSession` plus the schemas from tools/list and the explicit validation."""

    def __init__(self, session: ClientSession, ck: Checker) -> None:
        self.s = session
        self.ck = ck
        self.calls = 0
        self.output_validators: dict[str, Draft202012Validator] = {}
        self.input_validators: dict[str, Draft202012Validator] = {}

    async def raw(self, name: str, args: dict[str, Any] | None):
        """tools/call; returns the result, or the MCPError for a protocol error."""
        self.calls += 1
        try:
            return await self.s.call_tool(name, args, read_timeout_seconds=CALL_TIMEOUT_S)
        except MCPError as e:
            return e

    async def ok(self, name: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        """A call that must succeed; returns its validated structuredContent ({} on failure)."""
        what = f"{name}({short(args or {}, 200)})"
        if name in self.input_validators:
            errs = list(self.input_validators[name].iter_errors(args or {}))
            self.ck.check(not errs, f"{what}: test arguments do not match the inputSchema: {errs[:1]}")
        try:
            res = await self.raw(name, args)
        except RuntimeError as e:  # the SDK's own outputSchema check
            self.ck.check(False, f"{what}: the MCP SDK rejected the result: {e}")
            return {}
        if isinstance(res, MCPError):
            self.ck.check(False, f"{what}: protocol error {res.code}: {res.message}")
            return {}
        if not self.ck.check(not res.is_error, f"{what}: isError result: {short([c.model_dump() for c in res.content])}"):
            return {}
        sc = res.structured_content
        if not self.ck.check(isinstance(sc, dict), f"{what}: no structuredContent object (got {short(sc)})"):
            return {}
        v = self.output_validators.get(name)
        if self.ck.check(v is not None, f"{what}: no outputSchema to validate against"):
            errs = sorted(v.iter_errors(sc), key=lambda e: list(e.absolute_path))
            self.ck.check(
                not errs,
                f"{what}: structuredContent does not match outputSchema: "
                + "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errs[:3]),
            )
        texts = [c.text for c in res.content if getattr(c, "type", None) == "text"]
        if self.ck.check(bool(texts), f"{what}: no text content block next to structuredContent"):
            try:
                self.ck.check(json.loads(texts[0]) == sc, f"{what}: text block differs from structuredContent")
            except ValueError:
                self.ck.check(False, f"{what}: text block is not the JSON of structuredContent: {short(texts[0])}")
        return sc

    async def refused(self, name: str, args: dict[str, Any], expect_in_message: str = "") -> str:
        """A call that must be a tool error: isError true, a message, no structuredContent."""
        what = f"{name}({short(args, 200)})"
        res = await self.raw(name, args)
        if isinstance(res, MCPError):
            self.ck.check(False, f"{what}: want an isError tool result, got protocol error {res.code}: {res.message}")
            return ""
        if not self.ck.check(res.is_error is True, f"{what}: want isError true, got {short(res.structured_content)}"):
            return ""
        self.ck.check(
            res.structured_content is None,
            f"{what}: an isError result must not carry structuredContent, got {short(res.structured_content)}",
        )
        msg = " ".join(c.text for c in res.content if getattr(c, "type", None) == "text").strip()
        self.ck.check(bool(msg), f"{what}: isError result without a message")
        if expect_in_message:
            self.ck.check(
                expect_in_message.lower() in msg.lower(), f"{what}: message {msg!r} does not mention {expect_in_message!r}"
            )
        self.ck.check("panicked" not in msg and "stack backtrace" not in msg, f"{what}: message looks like a crash: {msg!r}")
        return msg

    async def errors(self, name: str, args: Any) -> str:
        """A call that must fail somehow: protocol error or isError (never a success)."""
        what = f"{name}({short(args, 200)})"
        res = await self.raw(name, args)
        if isinstance(res, MCPError):
            self.ck.check(bool(res.message), f"{what}: protocol error without a message")
            return f"protocol error {res.code}: {res.message}"
        self.ck.check(res.is_error is True, f"{what}: want an error, got success {short(res.structured_content)}")
        if res.is_error:
            self.ck.check(res.structured_content is None, f"{what}: isError result with structuredContent")
        msg = " ".join(c.text for c in res.content if getattr(c, "type", None) == "text").strip()
        self.ck.check(bool(msg), f"{what}: error without a message")
        return f"isError: {msg}"


async def check_tool_list(c: Client) -> None:
    ck = c.ck
    listed = await c.s.list_tools()
    names = [t.name for t in listed.tools]
    ck.eq(sorted(names), sorted(TOOLS), "tools/list names")
    ck.eq(len(names), len(set(names)), "tools/list has no duplicates")
    ck.check(listed.next_cursor is None, "tools/list fits in one page")
    for t in listed.tools:
        ck.check(t.annotations is not None and t.annotations.read_only_hint is True, f"{t.name}: annotations.readOnlyHint is true")
        if t.annotations is not None:
            ck.check(t.annotations.destructive_hint is not True, f"{t.name}: not destructive")
        ck.check(bool(t.description), f"{t.name}: has a description")
        for kind, schema in (("inputSchema", t.input_schema), ("outputSchema", t.output_schema)):
            if not ck.check(isinstance(schema, dict) and schema.get("type") == "object", f"{t.name}: {kind} is an object schema"):
                continue
            try:
                Draft202012Validator.check_schema(schema)
            except jsonschema.SchemaError as e:
                ck.check(False, f"{t.name}: {kind} is not a valid JSON Schema: {e.message}")
                continue
            v = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
            (c.input_validators if kind == "inputSchema" else c.output_validators)[t.name] = v
    # The input schemas really describe the arguments: wrong types are refused by them too.
    if "list_sessions" in c.input_validators:
        ck.check(not c.input_validators["list_sessions"].is_valid({"limit": "ten"}), "list_sessions inputSchema types limit")
    if "get_session_summary" in c.input_validators:
        ck.check(not c.input_validators["get_session_summary"].is_valid({}), "get_session_summary inputSchema requires session_id")


def row_by_key(metrics: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r.get("key"): r for r in metrics.get("rows", [])}


async def check_metrics(c: Client) -> None:
    ck = c.ck
    day = await c.ok("get_metrics", {"group_by": "day", "timezone": "UTC"})
    ck.eq(day.get("group_by"), "day", "get_metrics(day).group_by")
    ck.eq(day.get("timezone"), "UTC", "get_metrics(day).timezone")
    ck.check(day.get("source") in ("redis", "sqlite"), f"get_metrics(day).source is redis|sqlite: {day.get('source')!r}")
    rows = row_by_key(day)
    r = rows.get("2026-02-10")
    if ck.check(r is not None, f"get_metrics(day) has a row 2026-02-10 (keys {sorted(rows)})"):
        ck.eq(r["tokens"]["total"], 131559, "2026-02-10 tokens.total")
        ck.close(r["cost_usd"], 0.371093, "2026-02-10 cost_usd")
        ck.eq(r["sessions"], 2, "2026-02-10 sessions")
        ck.eq(r["responses"], 5, "2026-02-10 responses")
        ck.eq((r["tool_calls"], r["tool_errors"]), (8, 2), "2026-02-10 tool_calls/tool_errors")
    r = rows.get("2026-01-09")
    if ck.check(r is not None, "get_metrics(day) has a row 2026-01-09"):
        ck.eq(r["tokens"]["total"], 530, "2026-01-09 tokens.total")
        ck.close(r["cost_usd"], 0.46, "2026-01-09 cost_usd")
    ck.check(all(len(k) == 10 and k[4] == "-" and k[7] == "-" for k in rows), f"day keys are YYYY-MM-DD: {sorted(rows)}")
    totals = day.get("totals", {})
    ck.eq(totals.get("tokens", {}).get("total"), GRAND_TOTAL_TOKENS, "get_metrics(day) totals.tokens.total")
    ck.eq(totals.get("sessions"), N_SESSIONS, "get_metrics(day) totals.sessions")
    ck.eq(sum(r["tokens"]["total"] for r in day.get("rows", [])), GRAND_TOTAL_TOKENS, "sum of day rows = totals")
    for r in day.get("rows", []):
        t = r["tokens"]
        ck.eq(t["input"] + t["output"] + t["cache_creation"] + t["cache_read"], t["total"], f"day {r['key']}: tokens add up")

    # The same totals whatever the grouping; per-grouping key formats.
    for g in ("week", "month", "model", "project", "platform", "session"):
        m = await c.ok("get_metrics", {"group_by": g, "timezone": "UTC"})
        if not m:
            continue
        ck.eq(m.get("group_by"), g, f"get_metrics({g}).group_by")
        t = m.get("totals", {})
        for field in ("sessions", "responses"):
            ck.eq(t.get(field), totals.get(field), f"get_metrics({g}) totals.{field} = day totals")
        ck.eq(t.get("tokens"), totals.get("tokens"), f"get_metrics({g}) totals.tokens = day totals")
        ck.close(t.get("cost_usd"), totals.get("cost_usd", -1), f"get_metrics({g}) totals.cost_usd = day totals")
        bug = "metrics-model-totals-tool-calls" if g == "model" else None
        ck.eq(
            (t.get("tool_calls"), t.get("tool_errors")),
            (GRAND_TOTAL_TOOL_CALLS, GRAND_TOTAL_TOOL_ERRORS),
            f"get_metrics({g}) totals.tool_calls/tool_errors",
            known_bug=bug,
        )
        ck.eq(sum(r["tokens"]["total"] for r in m.get("rows", [])), GRAND_TOTAL_TOKENS, f"get_metrics({g}) rows sum to totals")
        keys = [r["key"] for r in m.get("rows", [])]
        ck.eq(len(keys), len(set(keys)), f"get_metrics({g}) keys are unique")
        if g == "week":
            ck.check(all(dt.date.fromisoformat(k).weekday() == 0 for k in keys), f"week keys are Mondays: {keys}")
            ck.check("2026-02-09" in keys, f"week 2026-02-09 present: {keys}")
        elif g == "month":
            ck.eq(sorted(keys), ["2026-01", "2026-02"], "month keys")
        elif g == "platform":
            ck.eq(keys, ["claude_code"], "platform keys")
        elif g == "session":
            r = {x["key"]: x for x in m["rows"]}.get(SESSION_ID)
            if ck.check(r is not None, f"get_metrics(session) has {SESSION_ID}"):
                ck.eq(r["tokens"]["total"], 106193, "get_metrics(session) row tokens.total")
        elif g == "model":
            ck.check("claude-opus-4-6" in keys, f"model claude-opus-4-6 present: {keys}")
        elif g == "project":
            ck.check("/home/marco/projects/spotter" in keys, f"project /home/marco/projects/spotter present: {keys}")

    # Day boundaries follow the time zone: +05:45 moves 2026-02-10 22:57Z to 2026-02-11.
    ktm = await c.ok("get_metrics", {"group_by": "day", "timezone": "Asia/Kathmandu"})
    krows = row_by_key(ktm)
    ck.eq(ktm.get("timezone"), "Asia/Kathmandu", "get_metrics(Kathmandu).timezone")
    ck.check("2026-02-11" in krows and "2026-02-10" not in krows, f"Kathmandu day keys: {sorted(krows)}")
    ck.eq(ktm.get("totals", {}).get("tokens"), totals.get("tokens"), "Kathmandu totals = UTC totals")

    # Filters.
    one = await c.ok("get_metrics", {"since": "2026-02-10", "until": "2026-02-10", "timezone": "UTC"})
    ck.eq(sorted(row_by_key(one)), ["2026-02-10"], "get_metrics(since=until=2026-02-10) rows")
    ck.eq(one.get("totals", {}).get("tokens", {}).get("total"), 131559, "get_metrics(since=until=2026-02-10) totals")
    cur = await c.ok("get_metrics", {"group_by": "day", "timezone": "UTC", "platform": "cursor"})
    ck.eq(cur.get("rows"), [], "get_metrics(platform=cursor) rows")
    proj = await c.ok("get_metrics", {"group_by": "project", "timezone": "UTC", "project": "spotter-worktrees"})
    ck.check(
        bool(proj.get("rows")) and all("spotter-worktrees" in r["key"] for r in proj.get("rows", [])),
        f"get_metrics(project=spotter-worktrees) keys: {[r['key'] for r in proj.get('rows', [])]}",
    )
    # Default group_by is day; default timezone is the machine's (TZ=UTC here).
    dflt = await c.ok("get_metrics", {})
    ck.eq(dflt.get("group_by"), "day", "get_metrics({}) default group_by")
    ck.eq(dflt.get("totals", {}).get("tokens"), totals.get("tokens"), "get_metrics({}) totals")


async def check_sessions(c: Client) -> None:
    ck = c.ck
    full = await c.ok("list_sessions", {"limit": 500})
    sessions = full.get("sessions", [])
    ids = [s["session_id"] for s in sessions]
    ck.eq(len(ids), N_SESSIONS, "list_sessions count")
    ck.eq(len(set(ids)), len(ids), "list_sessions ids are unique")
    ck.check(full.get("next_cursor") is None, f"list_sessions(limit=500) is one page: next_cursor {full.get('next_cursor')!r}")
    ck.check(SESSION_ID in ids, f"list_sessions contains {SESSION_ID}")
    ck.eq(sum(s["tokens"]["total"] for s in sessions), GRAND_TOTAL_TOKENS, "list_sessions tokens sum = metrics totals")
    starts = [s["started_at"] for s in sessions]
    ck.check(
        starts == sorted(starts, reverse=True) or [s["ended_at"] for s in sessions] == sorted([s["ended_at"] for s in sessions], reverse=True),
        f"list_sessions is most recent first: {starts}",
    )
    dflt = await c.ok("list_sessions", {})
    ck.eq(dflt.get("sessions"), sessions[:SESSIONS_PAGE], f"list_sessions({{}}) = the first {SESSIONS_PAGE} (default page)")
    ck.eq(dflt.get("next_cursor"), f"o:{SESSIONS_PAGE}", "list_sessions({}) says there is more")

    # Pagination: limit=2, follow next_cursor until it is null.
    pages: list[list[str]] = []
    cursor: str | None = None
    for _ in range(50):
        args: dict[str, Any] = {"limit": 2}
        if cursor is not None:
            args["cursor"] = cursor
        page = await c.ok("list_sessions", args)
        if not page:
            break
        pids = [s["session_id"] for s in page.get("sessions", [])]
        ck.check(1 <= len(pids) <= 2, f"list_sessions page size {len(pids)} in 1..2")
        ck.check(not any(set(pids) & set(p) for p in pages), f"list_sessions page {len(pages) + 1} repeats a session: {pids}")
        pages.append(pids)
        cursor = page.get("next_cursor")
        if cursor is None:
            break
        ck.check(isinstance(cursor, str) and cursor != "", f"next_cursor is a non-empty string: {cursor!r}")
    else:
        ck.check(False, "list_sessions pagination did not end within 50 pages")
    ck.check(len(pages) >= 2, f"list_sessions(limit=2) gives several pages: {pages}")
    ck.eq([i for p in pages for i in p], ids, "union of list_sessions pages = unpaged list (same order)")
    ck.eq(len(pages), math.ceil(N_SESSIONS / 2), "list_sessions(limit=2) page count")

    # Filters.
    day = await c.ok("list_sessions", {"since": "2026-02-10", "until": "2026-02-10"})
    ck.check(SESSION_ID in [s["session_id"] for s in day.get("sessions", [])], "list_sessions(since=until=2026-02-10) has the session")
    ck.check(
        all(s["started_at"][:10] <= "2026-02-10" <= s["ended_at"][:10] for s in day.get("sessions", [])),
        f"list_sessions(2026-02-10) sessions were active that day: {[(s['started_at'], s['ended_at']) for s in day.get('sessions', [])]}",
    )
    ck.eq(len(day.get("sessions", [])), 2, "list_sessions(2026-02-10) count")
    ck.eq((await c.ok("list_sessions", {"platform": "cursor"})).get("sessions"), [], "list_sessions(platform=cursor)")
    cc = await c.ok("list_sessions", {"platform": "claude_code", "limit": 500})
    ck.eq(len(cc.get("sessions", [])), N_SESSIONS, "list_sessions(platform=claude_code) count")
    proj = await c.ok("list_sessions", {"project": "spotter-worktrees"})
    ck.check(
        bool(proj.get("sessions")) and all("spotter-worktrees" in (s["project_path"] or "") for s in proj.get("sessions", [])),
        "list_sessions(project=spotter-worktrees) only matching projects",
    )

    # get_session_summary: the fixture session, and every listed session agrees with the list.
    summ = await c.ok("get_session_summary", {"session_id": SESSION_ID})
    if summ:
        ck.eq(summ.get("session_id"), SESSION_ID, "summary session_id")
        ck.eq(summ.get("tokens", {}).get("total"), 106193, "summary tokens.total")
        tools = {t["name"]: t for t in summ.get("tools", [])}
        ck.check(len(tools) > 0, "summary has tools[]")
        ck.eq(sorted(tools), ["Bash", "Glob", "Read", "WebFetch", "WebSearch"], "summary tool names")
        ck.eq(sum(t["calls"] for t in tools.values()), summ.get("tool_calls"), "summary tools[].calls sum = tool_calls")
        ck.eq(summ.get("platform"), "claude_code", "summary platform")
        ck.eq(summ.get("project_path"), "/home/marco/projects/spotter", "summary project_path")
        ck.check("phoenix" in (summ.get("first_prompt") or ""), f"summary first_prompt: {summ.get('first_prompt')!r}")
        ck.eq(summ.get("models"), ["claude-opus-4-6"], "summary models")
    for s in sessions:
        if s["session_id"] == SESSION_ID:
            continue
        one = await c.ok("get_session_summary", {"session_id": s["session_id"]})
        for field in ("tokens", "responses", "tool_calls", "tool_errors", "started_at", "project_path", "user_prompts"):
            ck.eq(one.get(field), s[field], f"summary({s['session_id']}).{field} = list_sessions")


async def check_search(c: Client) -> None:
    ck = c.ck
    res = await c.ok("search_conversations", {"query": "phoenix"})
    hits = res.get("hits", [])
    ck.check(len(hits) >= 1, "search_conversations(phoenix) has hits")
    ck.check(SESSION_ID in [h["session_id"] for h in hits], "search_conversations(phoenix) finds the fixture session")
    ck.check(all("phoenix" in h["snippet"].lower() for h in hits), "every phoenix snippet mentions phoenix")
    ck.check(all(h["role"] in ("user", "assistant") for h in hits), f"hit roles: {[h['role'] for h in hits]}")
    phrase = await c.ok("search_conversations", {"query": '"start phoenix"'})
    ck.eq([h["session_id"] for h in phrase.get("hits", [])], [SESSION_ID], "quoted phrase search")
    none = await c.ok("search_conversations", {"query": "zzqxnotthereqq"})
    ck.eq(none.get("hits"), [], "search with no match")
    scoped = await c.ok("search_conversations", {"query": "phoenix", "project": "spotter-worktrees"})
    ck.check(
        all("spotter-worktrees" in (h["project_path"] or "") for h in scoped.get("hits", [])),
        "search project filter",
    )
    # Pagination with limit=1 gives the same hits as one big page.
    big = await c.ok("search_conversations", {"query": "phoenix", "limit": 500})
    want = [(h["session_id"], h["timestamp"], h["role"], h["snippet"]) for h in big.get("hits", [])]
    got: list[tuple[str, str, str, str]] = []
    cursor: str | None = None
    for _ in range(100):
        args: dict[str, Any] = {"query": "phoenix", "limit": 1}
        if cursor is not None:
            args["cursor"] = cursor
        page = await c.ok("search_conversations", args)
        if not page:
            break
        ck.check(len(page.get("hits", [])) <= 1, "search page size <= 1")
        got += [(h["session_id"], h["timestamp"], h["role"], h["snippet"]) for h in page.get("hits", [])]
        cursor = page.get("next_cursor")
        if cursor is None:
            break
    ck.check(len(want) >= 2, f"search phoenix has several hits to page through ({len(want)})")
    ck.eq(got, want, "union of search pages (limit=1) = unpaged hits")


async def check_tools_and_status(c: Client) -> None:
    ck = c.ck
    ts = await c.ok("get_tool_stats", {})
    tools = ts.get("tools", [])
    ck.eq(sum(t["calls"] for t in tools), GRAND_TOTAL_TOOL_CALLS, "get_tool_stats calls sum")
    ck.eq(sum(t["errors"] for t in tools), GRAND_TOTAL_TOOL_ERRORS, "get_tool_stats errors sum")
    for t in tools:
        ck.close(t["error_rate"], (t["errors"] / t["calls"]) if t["calls"] else 0.0, f"{t['name']} error_rate")
    calls = [t["calls"] for t in tools]
    ck.eq(calls, sorted(calls, reverse=True), "get_tool_stats most used first")
    bash = {t["name"]: t for t in tools}.get("Bash")
    if ck.check(bash is not None, "get_tool_stats has Bash"):
        ck.eq((bash["calls"], bash["errors"]), (3, 1), "Bash calls/errors")
    scoped = await c.ok("get_tool_stats", {"project": "spotter-worktrees", "since": "2026-01-01", "until": "2026-12-31"})
    ck.check(sum(t["calls"] for t in scoped.get("tools", [])) < GRAND_TOTAL_TOOL_CALLS, "get_tool_stats project filter narrows")

    st = await c.ok("get_pipeline_status", {})
    ck.eq(st.get("redis"), "ok", "get_pipeline_status.redis")
    ck.eq(st.get("sessions"), N_SESSIONS, "get_pipeline_status.sessions")
    ck.eq(st.get("dlq_size"), 0, "get_pipeline_status.dlq_size")
    ck.check("claude_code" in (st.get("last_event_at") or {}), f"last_event_at has claude_code: {st.get('last_event_at')}")
    # No arguments at all (arguments omitted) works too for a tool without parameters.
    await c.ok("get_pipeline_status", None)


def iso_ms(v: Any) -> int | None:
    """Epoch ms of an RFC 3339 string, None for anything else."""
    if not isinstance(v, str):
        return None
    try:
        return int(dt.datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


async def check_usage_window(c: Client) -> None:
    ck = c.ck
    hour, day = 3_600_000, 86_400_000
    now = int(time.time() * 1000)
    # The fixtures end on 2026-02-12: no active block, nothing in the last 7 days.
    est = await c.ok("get_usage_window", {})
    ck.eq(est.get("source"), "estimate", "get_usage_window without samples: source")
    for name in ("five_hour", "seven_day"):
        w = est.get(name, {})
        ck.eq(
            (w.get("source"), w.get("tokens"), w.get("cost_usd"), w.get("used_pct"), w.get("sample_age_s")),
            ("estimate", 0, 0.0, None, None),
            f"get_usage_window {name} estimate (source, tokens, cost_usd, used_pct, sample_age_s)",
        )
        ck.eq((w.get("burn_rate"), w.get("projection")), (None, None), f"get_usage_window {name}: no burn rate")
    ck.eq((est.get("five_hour", {}).get("start"), est.get("five_hour", {}).get("resets_at")), (None, None), "no active 5-hour block")
    start7 = iso_ms(est.get("seven_day", {}).get("start"))
    ck.check(start7 is not None and abs(start7 - (now - 7 * day)) < 60_000, f"seven_day.start is now - 7 days: {est.get('seven_day', {}).get('start')!r}")
    ck.eq(est.get("seven_day", {}).get("resets_at"), None, "the rolling 7-day estimate has no reset time")

    # Status-line samples, written the way the status-line capture writes them. Sample b is
    # newer, but its 5-hour reset is past: the 5-hour window comes from a, the 7-day from b.
    db = os.path.join(os.environ["BLUEPLANE_HOME"], "telemetry.db")
    rows = [
        ("test-usage-a", SESSION_ID, now - 60_000, 23.5, now + 2 * hour, 41.0, now + 3 * day),
        ("test-usage-b", SESSION_ID, now - 5_000, 90.0, now - 1_000, 50.0, now + 3 * day),
    ]
    con = sqlite3.connect(db, timeout=10)
    try:
        with con:
            con.executemany(
                "INSERT INTO usage_samples (event_id, session_id, ts, five_hour_pct, five_hour_resets_at,"
                " seven_day_pct, seven_day_resets_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        off = await c.ok("get_usage_window", {})
        ck.eq(off.get("source"), "official", "get_usage_window with samples: source")
        f, s = off.get("five_hour", {}), off.get("seven_day", {})
        ck.eq((f.get("source"), f.get("used_pct")), ("official", 23.5), "five_hour from the latest sample whose reset is ahead")
        ck.eq(iso_ms(f.get("resets_at")), now + 2 * hour, "five_hour.resets_at = the sample's")
        ck.eq(iso_ms(f.get("start")), now - 3 * hour, "five_hour.start = reset - 5 h")
        age = f.get("sample_age_s")
        ck.check(isinstance(age, int) and 60 <= age < 600, f"five_hour.sample_age_s is the sample's age: {age!r}")
        ck.eq((s.get("source"), s.get("used_pct")), ("official", 50.0), "seven_day from the newest sample")
        ck.eq(iso_ms(s.get("resets_at")), now + 3 * day, "seven_day.resets_at = the sample's")
        age = s.get("sample_age_s")
        ck.check(isinstance(age, int) and 5 <= age < 600, f"seven_day.sample_age_s is the sample's age: {age!r}")
        ck.eq((f.get("tokens"), s.get("tokens")), (0, 0), "no fixture response lies in the official windows")
    finally:
        with con:
            con.execute("DELETE FROM usage_samples WHERE event_id IN ('test-usage-a', 'test-usage-b')")
        con.close()
    again = await c.ok("get_usage_window", {})
    ck.eq(again.get("source"), "estimate", "get_usage_window after the samples are gone: source")


async def check_errors(c: Client) -> None:
    ck = c.ck
    await c.refused("get_session_summary", {"session_id": "no-such-session-0000"}, "no-such-session-0000")
    await c.refused("search_conversations", {"query": '"unbalanced'}, "quote")
    await c.refused("get_metrics", {"group_by": "day", "timezone": "Mars/Base"}, "Mars/Base")
    await c.refused("get_metrics", {"group_by": "fortnight", "timezone": "UTC"}, "fortnight")
    await c.refused("search_conversations", {"query": ""})
    await c.refused("list_sessions", {"since": "not-a-date"}, "not-a-date")
    await c.refused("list_sessions", {"limit": 0})
    await c.refused("list_sessions", {"limit": 100000})
    await c.refused("list_sessions", {"cursor": "not-a-cursor"})
    await c.refused("list_sessions", {"platform": "emacs"}, "emacs")

    # Protocol-level mistakes: an error of either kind, and the server keeps serving.
    msgs = {
        "unknown tool": await c.errors("no_such_tool", {}),
        "limit: 'ten'": await c.errors("list_sessions", {"limit": "ten"}),
        "session_id: 5": await c.errors("get_session_summary", {"session_id": 5}),
        "missing session_id": await c.errors("get_session_summary", {}),
        "query: ['x']": await c.errors("search_conversations", {"query": ["x"]}),
    }
    for k, m in msgs.items():
        print(f"  {k} -> {short(m, 160)}", flush=True)
    after = await c.ok("list_sessions", {"limit": 1})
    ck.eq(len(after.get("sessions", [])), 1, "server still serves after the bad calls")
    ping = await c.s.send_ping()
    ck.check(ping is not None, "ping after the bad calls")


def compact_bytes(v: Any) -> int:
    """Bytes of `v` as compact JSON (how the server writes it)."""
    return len(json.dumps(v, separators=(",", ":"), ensure_ascii=False).encode())


async def check_contract_schemas(c: Client, bin_path: str, init: Any) -> None:
    """serverInfo, titles, and what the input schemas promise."""
    ck = c.ck
    version = subprocess.run([bin_path, "--version"], capture_output=True, text=True, timeout=30).stdout.split()[-1]
    ck.eq(init.server_info.version, version, "serverInfo.version is the crate version")
    ck.check(bool(init.server_info.title), f"serverInfo.title: {init.server_info.title!r}")
    listed = await c.s.list_tools()
    by_name = {t.name: t for t in listed.tools}
    for t in listed.tools:
        ck.check(bool(t.title), f"{t.name}: has a title")
        schema = t.input_schema
        ck.check("$defs" not in schema and "$ref" not in json.dumps(schema), f"{t.name}: inputSchema has no shared definitions")
        ck.eq(schema.get("additionalProperties"), False, f"{t.name}: inputSchema refuses unknown properties")
        required = set(schema.get("required", []))
        for name, p in schema.get("properties", {}).items():
            ck.check(bool(p.get("description")), f"{t.name}.{name}: has a description")
            if name not in required:
                ck.check(not isinstance(p.get("type"), list), f"{t.name}.{name}: optional, so not a nullable type array: {p.get('type')}")
            if name == "platform":
                ck.eq(p.get("enum"), ["claude_code", "cursor"], f"{t.name}.platform enum")
            if name == "limit":
                ck.eq((p.get("type"), p.get("minimum"), p.get("maximum")), ("integer", 1, MAX_LIMIT), f"{t.name}.limit bounds")
        for kind in ("inputSchema", "outputSchema"):
            sch = schema if kind == "inputSchema" else (t.output_schema or {})
            ck.check("$schema" not in sch, f"{t.name}: {kind} has no $schema (MCP's default dialect is 2020-12)")
    props = lambda n: by_name[n].input_schema.get("properties", {}) if n in by_name else {}  # noqa: E731
    ck.eq(
        props("get_metrics").get("group_by", {}).get("enum"),
        ["day", "week", "month", "model", "project", "platform", "session"],
        "get_metrics.group_by enum",
    )
    ck.eq(props("search_conversations").get("role", {}).get("enum"), ["user", "assistant"], "search_conversations.role enum")
    ck.eq(props("search_conversations").get("query", {}).get("maxLength"), MAX_QUERY_CHARS, "search query maxLength")
    for tool, arg in (("get_tool_stats", "session_id"), ("list_sessions", "timezone"), ("search_conversations", "timezone")):
        ck.check(arg in props(tool), f"{tool} takes {arg}")
    tokens = json.dumps(by_name["list_sessions"].output_schema) if "list_sessions" in by_name else ""
    ck.check("cache_read" in tokens and "ccusage" in tokens, "tokens.total is described (cache reads included)")


async def check_contract_calls(c: Client) -> None:
    """Refusals that name the argument, and the new arguments doing what they say."""
    ck = c.ck
    # Unknown arguments: refused by name, with the arguments the tool takes.
    m = await c.refused("get_pipeline_status", {"verbose": True}, "verbose")
    ck.check("takes no arguments" in m, f"get_pipeline_status(verbose) says it takes none: {m!r}")
    m = await c.refused("list_sessions", {"sessionId": "x"}, "sessionId")
    ck.check(all(a in m for a in ("since", "until", "timezone", "limit", "cursor")), f"unknown-argument message lists the arguments: {m!r}")
    await c.refused("get_metrics", {"group_by": "day", "tz": "UTC"}, "'tz'")
    # Wrong types, enums, bounds, lengths.
    m = await c.refused("get_session_summary", {"session_id": 5}, "session_id")
    ck.check("string" in m, f"wrong type names the type: {m!r}")
    m = await c.refused("list_sessions", {"limit": "ten"}, "limit")
    ck.check("whole number" in m, f"limit: 'ten' says what it takes: {m!r}")
    for tool, extra in (("list_sessions", {}), ("search_conversations", {"query": "phoenix"})):
        for bad in (0, -3, MAX_LIMIT + 1):
            m = await c.refused(tool, {**extra, "limit": bad}, "limit")
            ck.check(f"1 to {MAX_LIMIT}" in m, f"{tool}(limit={bad}) gives the range: {m!r}")
    m = await c.refused("get_metrics", {"group_by": "fortnight"}, "fortnight")
    ck.check("day, week, month" in m, f"bad group_by lists the values: {m!r}")
    m = await c.refused("get_tool_stats", {"platform": "emacs"}, "emacs")
    ck.check("claude_code, cursor" in m, f"bad platform lists the values: {m!r}")
    await c.refused("search_conversations", {"query": "phoenix", "role": "system"}, "role")
    huge = " ".join(["word"] * 200_000)
    started = time.monotonic()
    m = await c.refused("search_conversations", {"query": huge}, "query")
    ck.check(str(MAX_QUERY_CHARS) in m, f"a 200,000-word query is refused with the cap: {m[:200]!r}")
    ck.check(len(m) < 400, f"the refusal does not echo the query ({len(m)} chars)")
    ck.check(time.monotonic() - started < 10, "the huge query is refused quickly")
    # Leniency beyond the schema, for clients that send what a model wrote: null (and "" for
    # an enum) mean "not given", and a numeric string is a number.
    async def lenient(args: dict[str, Any]) -> list[Any]:
        res = await c.raw("list_sessions", args)
        ok = not isinstance(res, MCPError) and not res.is_error and isinstance(res.structured_content, dict)
        ck.check(ok, f"list_sessions({args}) is accepted: {short(res if isinstance(res, MCPError) else res.content)}")
        return res.structured_content.get("sessions", []) if ok else []

    dflt = (await c.ok("list_sessions", {})).get("sessions")
    ck.eq(await lenient({"limit": None, "platform": None, "since": None}), dflt, "null optional arguments are ignored")
    ck.eq(len(await lenient({"platform": "", "limit": 500})), N_SESSIONS, "platform '' means any")
    ck.eq(len(await lenient({"limit": "2"})), 2, "limit '2' is 2")
    ck.eq(len(await lenient({"limit": 3.0})), 3, "limit 3.0 is 3")
    await c.refused("list_sessions", {"limit": 2.5}, "whole number")

    page = await c.ok("search_conversations", {"query": "the"})
    ck.eq(len(page.get("hits", [])), SEARCH_PAGE, "search_conversations default page size")
    ck.check(page.get("next_cursor") is not None, "search_conversations(the) has a next page")

    # get_tool_stats(session_id): that session's tools, with durations, as in its summary.
    summ = await c.ok("get_session_summary", {"session_id": SESSION_ID})
    one = await c.ok("get_tool_stats", {"session_id": SESSION_ID})
    want = {t["name"]: (t["calls"], t["errors"], t.get("total_ms"), t.get("max_ms")) for t in summ.get("tools", [])}
    got = {t["name"]: (t["calls"], t["errors"], t.get("total_ms"), t.get("max_ms")) for t in one.get("tools", [])}
    ck.eq(got, want, "get_tool_stats(session_id) = the session summary's tools (calls, errors, total_ms, max_ms)")
    ck.check(sum(v[0] for v in got.values()) < GRAND_TOTAL_TOOL_CALLS, "get_tool_stats(session_id) is not the global figure")
    ck.check(any(v[2] is not None for v in got.values()), f"get_tool_stats exposes durations: {got}")
    await c.refused("get_tool_stats", {"session_id": "no-such-session-0000"}, "no-such-session-0000")
    ck.eq((await c.ok("get_tool_stats", {"session_id": SESSION_ID, "since": "2027-01-01"})).get("tools"), [], "session_id and since combine")

    # search_conversations(role): each role's hits, which together are all hits.
    every = (await c.ok("search_conversations", {"query": "phoenix", "limit": MAX_LIMIT})).get("hits", [])
    by_role: dict[str, list[Any]] = {}
    for role in ("user", "assistant"):
        hits = (await c.ok("search_conversations", {"query": "phoenix", "role": role, "limit": MAX_LIMIT})).get("hits", [])
        ck.check(bool(hits) and all(h["role"] == role for h in hits), f"search role={role}: only {role} hits ({[h['role'] for h in hits]})")
        by_role[role] = hits
    ck.eq(len(by_role["user"]) + len(by_role["assistant"]), len(every), "user hits + assistant hits = all hits")

    # timezone moves the day boundary of since/until; timestamps stay UTC.
    # The fixture sessions of 2026-02-10 run 21:11-21:16Z and 22:57-22:59Z: on 2026-02-11 in
    # Kathmandu (+05:45), not in UTC.
    utc = await c.ok("list_sessions", {"since": "2026-02-11", "until": "2026-02-11", "timezone": "UTC"})
    ktm = await c.ok("list_sessions", {"since": "2026-02-11", "until": "2026-02-11", "timezone": "Asia/Kathmandu"})
    ck.eq(utc.get("sessions"), [], "list_sessions(2026-02-11, UTC) is empty")
    kids = [s["session_id"] for s in ktm.get("sessions", [])]
    ck.check(SESSION_ID in kids and len(kids) == 2, f"list_sessions(2026-02-11, Asia/Kathmandu) has the two sessions of 2026-02-10Z: {kids}")
    ck.check(all(s["started_at"].endswith("Z") for s in ktm.get("sessions", [])), "timestamps stay RFC 3339 UTC")
    await c.refused("list_sessions", {"timezone": "Mars/Base"}, "Mars/Base")
    k_hits = (await c.ok("search_conversations", {"query": "phoenix", "since": "2026-02-11", "timezone": "Asia/Kathmandu", "limit": MAX_LIMIT})).get("hits", [])
    u_hits = (await c.ok("search_conversations", {"query": "phoenix", "since": "2026-02-11", "timezone": "UTC", "limit": MAX_LIMIT})).get("hits", [])
    ck.check(len(k_hits) > len(u_hits), f"search since=2026-02-11 follows timezone: {len(k_hits)} (Kathmandu) vs {len(u_hits)} (UTC)")
    k_tools = await c.ok("get_tool_stats", {"since": "2026-02-11", "until": "2026-02-11", "timezone": "Asia/Kathmandu"})
    ck.check(sum(t["calls"] for t in k_tools.get("tools", [])) > 0, "get_tool_stats follows timezone")


class RawServer:
    """`blueplane serve` driven with raw JSON-RPC lines (no SDK), for wire-level checks."""

    def __init__(self, bin_path: str, env: dict[str, str]) -> None:
        self.p = subprocess.Popen(
            [bin_path, "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
        )
        self.lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.unmatched: list[dict[str, Any]] = []

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            self.lines.put(line)

    def send(self, line: str | dict[str, Any]) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write((line if isinstance(line, str) else json.dumps(line)).encode() + b"\n")
        self.p.stdin.flush()

    def next(self, timeout: float = CALL_TIMEOUT_S) -> dict[str, Any] | None:
        try:
            return json.loads(self.lines.get(timeout=timeout))
        except queue.Empty:
            return None

    def call(self, msg: str | dict[str, Any], timeout: float = CALL_TIMEOUT_S) -> dict[str, Any] | None:
        """Sends one message; returns its response: the one with its id, or an error without
        an id (what a server that lost the id sends). None when nothing comes within `timeout`."""
        self.send(msg)
        want = msg.get("id") if isinstance(msg, dict) else None
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            r = self.next(left)
            if r is None:
                return None
            if "id" not in r or r.get("id") is None or r.get("id") == want:
                return r
        return None

    def close(self) -> None:
        assert self.p.stdin is not None
        self.p.stdin.close()
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()


def check_raw_json_rpc(bin_path: str, env: dict[str, str], ck: Checker) -> None:
    """tools/list and default-call sizes on the wire, and JSON-RPC error codes."""
    srv = RawServer(bin_path, env)
    try:
        init = srv.call(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
            }
        )
        if not ck.check(init is not None and "result" in init, f"raw initialize: {short(init)}"):
            return
        srv.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        listed = srv.call({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}) or {}
        size = compact_bytes(listed.get("result"))
        print(f"  tools/list result: {size} bytes (budget {TOOLS_LIST_BUDGET})", flush=True)
        ck.check(size <= TOOLS_LIST_BUDGET, f"tools/list result is {size} bytes, over the budget of {TOOLS_LIST_BUDGET}")
        defaults = {
            "list_sessions": {},
            "get_session_summary": {"session_id": SESSION_ID},
            "get_metrics": {},
            "search_conversations": {"query": "the"},
            "get_tool_stats": {},
            "get_pipeline_status": {},
            "get_usage_window": {},
        }
        for i, (name, args) in enumerate(defaults.items()):
            r = srv.call({"jsonrpc": "2.0", "id": 100 + i, "method": "tools/call", "params": {"name": name, "arguments": args}}) or {}
            n = compact_bytes(r.get("result"))
            print(f"  {name} default call: {n} bytes", flush=True)
            ck.check(r.get("result", {}).get("isError") is not True, f"raw {name}({args}) succeeds: {short(r)}")
            ck.check(n <= DEFAULT_CALL_BUDGET, f"{name} default call is {n} bytes, over {DEFAULT_CALL_BUDGET}")

        def code(r: dict[str, Any] | None) -> Any:
            return (r or {}).get("error", {}).get("code")

        # rmcp 3.11 alone gets the first three wrong (no answer, -32600 without the id,
        # -32601) and ignores the cursor; src/mcp/jsonrpc.rs answers them.
        r = srv.call("this is not JSON {{{", timeout=5)
        ck.eq(code(r), -32700, "malformed JSON -> -32700")
        ck.check(r is not None and "id" in r and r["id"] is None, f"a parse error has id null: {short(r)}")
        r = srv.call({"jsonrpc": "2.0", "id": 7, "method": 42})
        ck.check(code(r) == -32600, f"invalid request -> -32600: {short(r)}")
        ck.eq((r or {}).get("id"), 7, "invalid request: the error carries the request's id")
        r = srv.call({"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {"arguments": {}}})
        ck.eq(code(r), -32602, "tools/call without a name -> -32602")
        r = srv.call({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "no_such_tool", "arguments": {}}})
        ck.eq(code(r), -32602, "tools/call of an unknown tool -> -32602")
        msg = (r or {}).get("error", {}).get("message", "")
        ck.check("no_such_tool" in msg and "list_sessions" in msg, f"the unknown-tool error names it and the tools: {msg!r}")
        r = srv.call({"jsonrpc": "2.0", "id": 10, "method": "tools/list", "params": {"cursor": "bogus"}})
        ck.eq(code(r), -32602, "tools/list with a bogus cursor -> -32602")
        r = srv.call({"jsonrpc": "2.0", "id": 11, "method": "no/such/method"})
        ck.eq(code(r), -32601, "unknown method -> -32601")
        r = srv.call({"jsonrpc": "2.0", "id": 12, "method": "ping"})
        ck.eq((r or {}).get("id"), 12, "raw server still answers after the bad requests")
    finally:
        srv.close()


async def run(args: argparse.Namespace, ck: Checker) -> Client:
    env = {k: os.environ[k] for k in PASS_ENV if k in os.environ}
    params = StdioServerParameters(command=args.bin, args=["serve"], env=env)
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, read_timeout_seconds=CALL_TIMEOUT_S) as session:
            init = await session.initialize()
            ck.eq(init.server_info.name, "blueplane", "serverInfo.name")
            ck.check(init.capabilities.tools is not None, "server declares the tools capability")
            c = Client(session, ck)
            await check_tool_list(c)
            await check_metrics(c)
            await check_sessions(c)
            await check_search(c)
            await check_tools_and_status(c)
            await check_usage_window(c)
            await check_errors(c)
            await check_contract_schemas(c, args.bin, init)
            await check_contract_calls(c)
            return c


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=os.environ.get("BLUEPLANE_BIN"), help="path to the blueplane binary (or $BLUEPLANE_BIN)")
    ap.add_argument("--backfill", action="store_true", help="run `blueplane backfill --json` first")
    args = ap.parse_args()
    if not args.bin:
        print("FAIL: no binary: pass --bin or set BLUEPLANE_BIN", file=sys.stderr)
        return 2
    for k in ("BLUEPLANE_HOME", "REDIS_URL"):
        if k not in os.environ:
            print(f"FAIL: {k} is not set (use a temp home and a private redis-server)", file=sys.stderr)
            return 2
    start = time.monotonic()
    if args.backfill:
        subprocess.run([args.bin, "backfill", "--json"], check=True, stdout=subprocess.DEVNULL, timeout=120)
    ck = Checker()
    calls = 0

    async def top() -> Client:
        with anyio.fail_after(TOTAL_TIMEOUT_S):
            return await run(args, ck)

    try:
        client = anyio.run(top)
        calls = client.calls
        env = {k: os.environ[k] for k in PASS_ENV if k in os.environ}
        env["PATH"] = os.environ.get("PATH", "")
        check_raw_json_rpc(args.bin, env, ck)
    except BaseException as e:  # a crash of the client or the server: report it as a failure
        ck.check(False, f"session aborted: {type(e).__name__}: {e}")
    elapsed_ms = (time.monotonic() - start) * 1000
    status = "OK" if not ck.failures else f"FAILED ({len(ck.failures)} failures)"
    print(
        f"mcp stdio: {status}; tools checked {len(TOOLS)}, tool calls {calls}, checks {ck.checks}, "
        f"known bugs {len(ck.known)}, elapsed {elapsed_ms:.0f} ms",
        flush=True,
    )
    return 1 if ck.failures else 0


if __name__ == "__main__":
    sys.exit(main())
