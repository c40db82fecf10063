#!/usr/bin/env python3
"""A scripted stub of the Anthropic Messages API for driving the real Claude Code CLI offline.

Used by tests/claude_e2e.rs. Python 3 standard library only.

    stub_api.py serve --port-file F --ledger L --requests R
        Listens on 127.0.0.1:<ephemeral port> (written to F once listening). Answers
        `POST /v1/messages` with a streamed (SSE) response, `HEAD /api/hello` with 200 and
        anything else with 404. Every response has a unique `msg_` id and known usage that is
        distinct per response; the ledger L (JSON, rewritten atomically after each response)
        lists them with the session they were sent to, plus the text of every MCP tool result
        the stub saw. Every request (headers and body) is appended to R (JSON lines) for
        debugging.

    stub_api.py log-hook FILE
        A plain Claude Code hook command: appends the payload on stdin as one JSON line to FILE,
        so a test knows which hooks fired.

What to answer is decided from the request alone, so retries and concurrent sessions need no
shared state:
  * a compaction request (its last user message asks for a summary of the conversation) gets a
    summary;
  * otherwise the first user message names a script by a marker (`E2E-TOOLS`, `E2E-AGENT`,
    `E2E-SUB`, `E2E-MCP <project filter>`) and the number of assistant messages already in the
    request is the step of that script;
  * anything else (Claude Code's own side requests) gets a short text.
A script's tool-calling steps end with `stop_reason: tool_use`; its last step is text.

Claude Code 2.1.328 names the session in every request twice: the `X-Claude-Code-Session-Id`
header and `metadata.user_id` (a JSON string with `session_id`); a sub-agent's requests add
`X-Claude-Code-Agent-Id` (its 17-hex-digit id). The ledger keeps all three. A compaction answer
must hold `<summary>…</summary>`, else Claude Code asks a second time.
"""

import argparse
import json
import os
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MARKERS = ("E2E-TOOLS", "E2E-AGENT", "E2E-SUB", "E2E-MCP")
COMPACT_SUMMARY = ("<analysis>Two shell commands ran.</analysis>\n"
                   "<summary>E2E compaction summary: echo hi printed hi; exit 3 failed.</summary>")


def bash(command, description):
    return {"type": "tool_use", "name": "Bash",
            "input": {"command": command, "description": description}}


def text(t):
    return {"type": "text", "text": t}


def script_blocks(script, step, arg):
    """The content blocks of step `step` of `script`, or None past its end."""
    steps = {
        "E2E-TOOLS": [
            [text("Running two commands."), bash("echo hi", "Say hi")],
            [bash("exit 3", "Fail on purpose")],
            [text("Both ran; the second failed with exit code 3.")],
        ],
        "E2E-AGENT": [
            [{"type": "tool_use", "name": "Agent",
              "input": {"description": "Echo from a sub-agent",
                        "prompt": "E2E-SUB: run echo sub and report",
                        "subagent_type": "general-purpose",
                        "run_in_background": False}}],
            [text("The sub-agent finished.")],
        ],
        "E2E-SUB": [
            [bash("echo sub", "Echo from the sub-agent")],
            [text("sub done")],
        ],
        "E2E-MCP": [
            [{"type": "tool_use", "name": "mcp__blueplane__get_metrics",
              "input": {"group_by": "session", "project": arg, "timezone": "UTC"}}],
            [text("Recorded the metrics.")],
        ],
    }[script]
    return steps[step] if step < len(steps) else None


def texts(content):
    """Plain text of a message's content (a string or a list of blocks), without reminders."""
    if isinstance(content, str):
        parts = [content]
    else:
        parts = [b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"]
    return [p for p in parts if not p.lstrip().startswith("<system-reminder>")]


def tool_results(content):
    if not isinstance(content, list):
        return []
    return [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]


def result_text(block):
    c = block.get("content")
    if isinstance(c, str):
        return c
    if isinstance(c, list):
        return "".join(b.get("text", "") for b in c if isinstance(b, dict) and b.get("type") == "text")
    return ""


def is_compaction(messages):
    if not messages or messages[-1].get("role") != "user":
        return False
    last = " ".join(texts(messages[-1].get("content", "")))
    return bool(re.search(r"summary of the conversation|create a detailed summary", last, re.I))


def classify(req):
    """(kind, script, step, arg) for a request body."""
    messages = req.get("messages") or []
    if is_compaction(messages):
        return "compaction", None, 0, None
    users = [m for m in messages if m.get("role") == "user"]
    if users:
        first = " ".join(texts(users[0].get("content", "")))
        for marker in MARKERS:
            idx = first.find(marker)
            if idx >= 0:
                rest = first[idx + len(marker):].split()
                arg = rest[0] if rest else ""
                step = sum(1 for m in messages if m.get("role") == "assistant")
                return "script", marker, step, arg
    return "other", None, 0, None


class Stub:
    def __init__(self, ledger_path, requests_path):
        self.lock = threading.Lock()
        self.ledger_path = ledger_path
        self.requests = open(requests_path, "a", encoding="utf-8")
        self.n = 0
        self.ledger = {"responses": [], "mcp_results": [], "unparsed_requests": 0}

    def log_request(self, method, path, headers, body):
        with self.lock:
            self.requests.write(json.dumps({"method": method, "path": path,
                                            "headers": headers, "body": body}) + "\n")
            self.requests.flush()

    def save(self):
        tmp = self.ledger_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.ledger, f, indent=1)
        os.replace(tmp, self.ledger_path)

    def answer(self, req, headers):
        """The SSE body for one request; records it in the ledger."""
        kind, script, step, arg = classify(req)
        blocks = None
        if kind == "compaction":
            blocks = [text(COMPACT_SUMMARY)]
        elif kind == "script":
            blocks = script_blocks(script, step, arg)
        if blocks is None:
            kind, blocks = "other", [text("ok")]
        with self.lock:
            self.n += 1
            k = self.n
            if kind == "script" and script == "E2E-MCP" and step >= 1:
                for m in req["messages"][-1:]:
                    for b in tool_results(m.get("content")):
                        self.ledger["mcp_results"].append({
                            "after_response": k - 1,
                            "tool_use_id": b.get("tool_use_id"),
                            "is_error": bool(b.get("is_error")),
                            "text": result_text(b),
                        })
            msg_id = "msg_e2e%05d" % k
            usage = {"input_tokens": 100 + k, "output_tokens": 20 + 3 * k,
                     "cache_creation_input_tokens": 1000 + 7 * k,
                     "cache_read_input_tokens": 5000 + 11 * k,
                     "cache_creation": {"ephemeral_5m_input_tokens": 900 + 5 * k,
                                        "ephemeral_1h_input_tokens": 100 + 2 * k}}
            meta = req.get("metadata") or {}
            try:
                user = json.loads(meta.get("user_id") or "{}")
            except ValueError:
                user = {}
            self.ledger["responses"].append({
                "n": k,
                "id": msg_id,
                "model": req.get("model"),
                "session_header": headers.get("x-claude-code-session-id"),
                "session_metadata": user.get("session_id") if isinstance(user, dict) else None,
                "agent_header": headers.get("x-claude-code-agent-id"),
                "kind": kind,
                "script": script,
                "step": step,
                "usage": usage,
                "tools": [b["name"] for b in blocks if b["type"] == "tool_use"],
            })
            self.save()
        return msg_id, sse(msg_id, req.get("model"), blocks, usage, k)


def sse(msg_id, model, blocks, usage, k):
    start_usage = dict(usage, output_tokens=1)
    events = [("message_start", {"type": "message_start", "message": {
        "id": msg_id, "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": start_usage}})]
    stop_reason = "end_turn"
    for i, b in enumerate(blocks):
        if b["type"] == "text":
            events.append(("content_block_start", {"type": "content_block_start", "index": i,
                                                   "content_block": {"type": "text", "text": ""}}))
            events.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                                   "delta": {"type": "text_delta", "text": b["text"]}}))
        else:
            stop_reason = "tool_use"
            tool_id = "toolu_e2e%05d_%d" % (k, i)
            events.append(("content_block_start", {"type": "content_block_start", "index": i,
                                                   "content_block": {"type": "tool_use", "id": tool_id,
                                                                     "name": b["name"], "input": {}}}))
            events.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                                   "delta": {"type": "input_json_delta",
                                                             "partial_json": json.dumps(b["input"])}}))
        events.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
    events.append(("message_delta", {"type": "message_delta",
                                     "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                                     "usage": usage}))
    events.append(("message_stop", {"type": "message_stop"}))
    return "".join("event: %s\ndata: %s\n\n" % (e, json.dumps(d)) for e, d in events).encode()


def handler(stub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, status, body=b"", ctype="application/json"):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self):
            stub.log_request("HEAD", self.path, dict(self.headers), None)
            self.reply(200 if self.path.split("?")[0] == "/api/hello" else 404)

        def do_GET(self):
            stub.log_request("GET", self.path, dict(self.headers), None)
            self.reply(404, b'{"type":"error","error":{"type":"not_found_error","message":"stub"}}')

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                req = json.loads(raw or b"{}")
            except ValueError:
                req = None
            stub.log_request("POST", self.path, dict(self.headers), req)
            if self.path.split("?")[0] != "/v1/messages" or not isinstance(req, dict):
                if isinstance(req, dict) or req is None:
                    with stub.lock:
                        stub.ledger["unparsed_requests"] += 1
                        stub.save()
                self.reply(404, b'{"type":"error","error":{"type":"not_found_error","message":"stub"}}')
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            _, body = stub.answer(req, headers)
            self.reply(200, body, "text/event-stream")

    return Handler


def serve(args):
    stub = Stub(args.ledger, args.requests)
    stub.save()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler(stub))
    server.daemon_threads = True
    tmp = args.port_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(str(server.server_address[1]))
    os.replace(tmp, args.port_file)
    server.serve_forever()


def log_hook(args):
    payload = sys.stdin.read()
    try:
        line = json.dumps(json.loads(payload))
    except ValueError:
        line = json.dumps({"unparsed": payload})
    with open(args.file, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--port-file", required=True)
    s.add_argument("--ledger", required=True)
    s.add_argument("--requests", required=True)
    h = sub.add_parser("log-hook")
    h.add_argument("file")
    args = p.parse_args()
    {"serve": serve, "log-hook": log_hook}[args.cmd](args)


if __name__ == "__main__":
    main()
