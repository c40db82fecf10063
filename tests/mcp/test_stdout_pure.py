#!/usr/bin/env python3
"""stdout of `blueplane serve` carries JSON-RPC only, and the server exits when stdin closes.

BRIEF §2 invariant 5: in stdio mode stdout belongs to the MCP protocol; logs go to stderr.
Plain `subprocess`, no MCP SDK: raw JSON-RPC lines are written to the server's stdin
(`initialize`, `notifications/initialized`, `tools/list`, `tools/call`s, and one line of
garbage that is not JSON), then stdin is closed. Two runs:

  1. "answered": write every line, wait (stdin still open) until each request has its
     response, including the requests sent after the garbage line, then close stdin;
  2. "eof": write every line and close stdin at once (the client hangs up mid-session).

Each run asserts that every stdout line is a JSON-RPC 2.0 message, that responses match
requests, and that the process exits by itself with code 0 within EXIT_WITHIN_S of stdin
closing. Environment as for test_stdio.py (BLUEPLANE_HOME, REDIS_URL, CLAUDE_CONFIG_DIR, TZ
are inherited by the server); `--bin PATH` or $BLUEPLANE_BIN names the binary.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

EXIT_WITHIN_S = 5.0
ANSWER_WITHIN_S = 30.0

REQUESTS: list[Any] = [
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "stdout-purity-test", "version": "0"},
        },
    },
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "get_pipeline_status", "arguments": {}}},
    "this line is not JSON {{{",
    {"jsonrpc": "2.0", "id": "four", "method": "tools/call", "params": {"name": "list_sessions", "arguments": {"limit": 2}}},
    {
        "jsonrpc": "2.0",
        "id": 5,
        "method": "tools/call",
        "params": {"name": "get_session_summary", "arguments": {"session_id": "no-such-session"}},
    },
    {"jsonrpc": "2.0", "id": 6, "method": "ping"},
]
REQUEST_IDS = {m["id"] for m in REQUESTS if isinstance(m, dict) and "id" in m}


def jsonrpc_problem(line: str) -> str | None:
    """Why `line` is not a JSON-RPC 2.0 message (None when it is one)."""
    try:
        m = json.loads(line)
    except ValueError as e:
        return f"not JSON ({e})"
    if not isinstance(m, dict):
        return "not a JSON object (batches are never sent by this server)"
    if m.get("jsonrpc") != "2.0":
        return 'no "jsonrpc": "2.0"'
    if "method" in m:
        if not isinstance(m["method"], str):
            return "method is not a string"
        if "result" in m or "error" in m:
            return "a request/notification with result or error"
        return None
    if ("result" in m) == ("error" in m):
        return "a response needs exactly one of result and error"
    if "id" not in m:
        return "a response without id"
    if not (m["id"] is None or isinstance(m["id"], (str, int))):
        return "id is neither string, number nor null"
    if "error" in m:
        e = m["error"]
        if not (isinstance(e, dict) and isinstance(e.get("code"), int) and isinstance(e.get("message"), str)):
            return "error object without integer code and string message"
    return None


class Run:
    def __init__(self, binary: str, name: str) -> None:
        self.name = name
        self.failures: list[str] = []
        self.lines: list[str] = []
        self.responses: dict[Any, dict[str, Any]] = {}
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(
            [binary, "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group, so a hung server is killed whole
        )
        self.stderr = b""
        self.t_out = threading.Thread(target=self._read_stdout, daemon=True)
        self.t_err = threading.Thread(target=self._read_stderr, daemon=True)
        self.t_out.start()
        self.t_err.start()

    def fail(self, what: str) -> None:
        self.failures.append(what)
        print(f"FAIL [{self.name}]: {what}", flush=True)

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            with self.cond:
                self.lines.append(line)
                try:
                    m = json.loads(line)
                    if isinstance(m, dict) and "id" in m and "method" not in m:
                        self.responses[m["id"]] = m
                except ValueError:
                    pass
                self.cond.notify_all()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()

    def send_all(self) -> None:
        assert self.proc.stdin is not None
        for m in REQUESTS:
            text = m if isinstance(m, str) else json.dumps(m)
            self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()

    def wait_answers(self) -> None:
        deadline = time.monotonic() + ANSWER_WITHIN_S
        with self.cond:
            while not REQUEST_IDS <= self.responses.keys():
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    break
                self.cond.wait(left)
        missing = REQUEST_IDS - self.responses.keys()
        if missing:
            self.fail(f"no response within {ANSWER_WITHIN_S:.0f} s to request ids {sorted(map(str, missing))}")

    def close_and_wait(self) -> float:
        assert self.proc.stdin is not None
        closed = time.monotonic()
        self.proc.stdin.close()
        try:
            code = self.proc.wait(timeout=EXIT_WITHIN_S)
            took = time.monotonic() - closed
            if code != 0:
                self.fail(f"exit code {code} after stdin closed (want 0)")
        except subprocess.TimeoutExpired:
            took = time.monotonic() - closed
            self.fail(f"still running {EXIT_WITHIN_S:.0f} s after stdin closed; killing it")
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        self.t_out.join(5)
        self.t_err.join(5)
        return took

    def check_stdout(self, require_all_answers: bool) -> None:
        if not self.lines:
            self.fail("nothing on stdout")
        for i, line in enumerate(self.lines, 1):
            why = jsonrpc_problem(line)
            if why is not None:
                self.fail(f"stdout line {i} is not JSON-RPC 2.0 ({why}): {line[:300]!r}")
        ids = [json.loads(l).get("id") for l in self.lines if jsonrpc_problem(l) is None and "method" not in json.loads(l)]
        if len(ids) != len(set(map(json.dumps, ids))):
            self.fail(f"a request was answered twice: ids {ids}")
        unknown = [i for i in ids if i not in REQUEST_IDS and i is not None]
        if unknown:
            self.fail(f"responses to ids that were never sent: {unknown}")
        r = self.responses
        init = r.get(1)
        if init is None:
            self.fail("no initialize response")
        elif "result" not in init or init["result"].get("serverInfo", {}).get("name") != "blueplane":
            self.fail(f"bad initialize response: {json.dumps(init)[:300]}")
        if not require_all_answers:
            return
        tools = r.get(2, {}).get("result", {}).get("tools", [])
        if len(tools) != 7:
            self.fail(f"tools/list returned {len(tools)} tools, want 7")
        ok = r.get(3, {}).get("result", {})
        if ok.get("isError") or not isinstance(ok.get("structuredContent"), dict):
            self.fail(f"get_pipeline_status: no structuredContent: {json.dumps(ok)[:300]}")
        page = r.get("four", {}).get("result", {})
        if len(page.get("structuredContent", {}).get("sessions", [])) != 2:
            self.fail(f"list_sessions(limit=2) after the garbage line: {json.dumps(page)[:300]}")
        bad = r.get(5, {}).get("result", {})
        if bad.get("isError") is not True or "structuredContent" in bad or not bad.get("content"):
            self.fail(f"unknown session: want isError, a message, no structuredContent: {json.dumps(bad)[:300]}")
        if r.get(6, {}).get("result") != {}:
            self.fail(f"ping: {json.dumps(r.get(6))[:200]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=os.environ.get("BLUEPLANE_BIN"), help="path to the blueplane binary (or $BLUEPLANE_BIN)")
    args = ap.parse_args()
    if not args.bin:
        print("FAIL: no binary: pass --bin or set BLUEPLANE_BIN", file=sys.stderr)
        return 2
    start = time.monotonic()
    failures: list[str] = []
    exits: list[str] = []
    n_lines = 0
    for name in ("answered", "eof"):
        run = Run(args.bin, name)
        try:
            run.send_all()
            if name == "answered":
                run.wait_answers()
        except BrokenPipeError:
            run.fail("the server closed stdin early (broken pipe)")
        took = run.close_and_wait()
        run.check_stdout(require_all_answers=(name == "answered"))
        exits.append(f"{name} {took * 1000:.0f} ms")
        n_lines += len(run.lines)
        if run.failures:
            err = run.stderr.decode("utf-8", errors="replace")
            print(f"--- stderr of the '{name}' server ---\n{err[-4000:]}", flush=True)
        failures += run.failures
    elapsed_ms = (time.monotonic() - start) * 1000
    status = "OK" if not failures else f"FAILED ({len(failures)} failures)"
    print(
        f"mcp stdout purity: {status}; runs 2, stdout lines {n_lines}, "
        f"exit after stdin EOF: {', '.join(exits)}; elapsed {elapsed_ms:.0f} ms",
        flush=True,
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
