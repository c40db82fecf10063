#!/usr/bin/env python3
"""Generate a realistic synthetic Claude Code transcript corpus for benchmarks.

Every line is a real line shape sampled from the spotter fixtures
(/work/shared/fixtures-external/spotter/*.jsonl and their sub-agent files):
file-history-snapshot, SessionStart/PreToolUse/PostToolUse hook_progress lines,
user prompts, assistant lines split per content block (thinking, text, tool_use)
that share message.id + requestId and carry usage, tool_use/tool_result pairs
(with their toolUseResult), queue-operation lines, slash-command meta lines with
their system lines, interrupted requests, and sub-agent files
(<session>/subagents/agent-*.jsonl, isSidechain true, agentId).

All identifiers are rewritten deterministically from the seed: uuid/parentUuid,
sessionId, message ids, request ids, tool ids (tool_use.id, tool_use_id,
toolUseID, parentToolUseID), sourceToolAssistantUUID, snapshot messageIds,
agentIds. Timestamps are spread over --days days (sessions start uniformly over
the window, lines inside a session advance by realistic gaps). Prompts and
assistant prose are regenerated from a vocabulary so full-text search has
something to find. Lines are compact JSON (what Claude Code writes, and what
ccusage's `"usage":{` line filter expects).

Output: <out>/projects/<project>/<session>.jsonl (+ <session>/subagents/agent-<id>.jsonl)
and <out>/corpus.json (parameters and counts). Same seed and size -> same bytes.

--shape 2.1 (generator 4) writes what Claude Code 2.1.3xx writes instead
(/work/shared/docs/claude-code-2.1.md §3, tests/data/claude-2.1/): no progress
lines (hook runs are attachment/hook_success and system/stop_hook_summary lines),
the 2.1 line keys (apiBlockIndex, requestRef, requestedModel, effort,
thinkingDurationMs, promptId, promptSource, turnPosition, permissionDecision,
entrypoint, snake_case session_id on interactive sessions, usage
output_tokens_details/speed/iterations/fallback_credit), `<synthetic>` API-error
assistant lines with zero usage, and the record types mode, permission-mode,
attachment (hook_success, deferred_tools_delta, opened_file_in_ide, …),
api-request-shape / api-request-blob / api-request (one logged request per prompt:
the system prompt blobs once per session, the turn's new messages inline, large
tool output in blobs, earlier messages as blob references), tools-used,
cost-state (running per-session totals over the de-duplicated responses of the
session and its sub-agents, plus the invisible cost of compaction), last-prompt,
worktree-state and atis-latch. Compaction in 2.1 writes a system/compact_boundary
line and no sub-agent file. Bodies the doc does not give are made up but
plausible. The default (--shape 2.0, generator 3) is the older generator,
byte for byte.

Usage: gen_corpus.py --out DIR --mb 200 [--seed 42] [--days 60] [--events N] [--shape 2.1]
"""

import argparse
import datetime as dt
import glob
import hashlib
import json
import math
import os
import random
import shutil
import sys
import uuid
from collections import Counter

FIXTURES = "/work/shared/fixtures-external/spotter"
PRICES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "schemas", "pricing", "models.json")

MODELS = [
    ("claude-opus-4-6", 70),
    ("claude-sonnet-4-5-20250929", 15),
    ("claude-haiku-4-5-20251001", 10),
    ("claude-opus-4-5-20251101", 5),
]

PROJECTS = [
    "spotter", "blueplane", "billing-api", "web-frontend", "infra", "data-pipeline",
    "mobile-app", "auth-service", "docs-site", "ml-experiments", "cli-tools", "search-engine",
    "payments", "notifications", "analytics", "design-system",
]

WORDS = (
    "phoenix server migration database schema query index cache redis stream consumer group "
    "backfill transcript session token cost pricing model latency throughput benchmark profile "
    "flamegraph allocation memory leak deadlock mutex async await tokio future runtime "
    "websocket socket channel liveview component template render layout tailwind css "
    "button modal form validation changeset ecto repo transaction rollback commit "
    "test fixture mock integration unit coverage flaky retry timeout backoff error "
    "panic stacktrace log tracing span metric histogram percentile dashboard alert "
    "deploy docker compose kubernetes helm chart ingress certificate tls proxy nginx "
    "terminal xterm tmux scroll pane window keyboard shortcut clipboard unicode "
    "parser lexer tokenizer grammar ast visitor compiler warning lint clippy format "
    "refactor rename extract module function struct enum trait impl generic lifetime "
    "borrow checker ownership clone serialize deserialize json yaml toml config "
    "environment variable secret api key oauth login session cookie header request "
    "response status code endpoint route handler middleware router controller view "
    "sqlite postgres wal vacuum pragma fts search snippet ranking bm25 tokenizer "
    "compression zlib gzip batch queue worker scheduler cron job pipeline stage "
    "upload download file path directory watcher notify inotify rotate truncate offset "
    "frontend backend typescript javascript elixir rust python golang react svelte "
    "otel opentelemetry exporter collector trace sampler attribute resource "
    "hex mix cargo npm pip package dependency version constraint upgrade lockfile"
).split()

PROMPT_OPENERS = [
    "can you", "please", "why does", "how do I", "fix the", "let's", "I think the",
    "investigate why", "add a", "refactor the", "write a test for", "explain the",
    "the build fails with", "make the", "check if the", "run the", "update the",
]

B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def compact(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


class Templates:
    """Line shapes from the fixtures, stored as compact JSON strings (cheap to copy)."""

    def __init__(self, root):
        files = sorted(glob.glob(os.path.join(root, "**", "*.jsonl"), recursive=True))
        if not files:
            sys.exit(f"no fixture transcripts under {root}")
        self.snapshot = []
        self.session_start = []
        self.prompt = []
        self.asst = {"text": [], "thinking": []}
        self.tool_pairs = []  # (tool_use line, [pre-progress], tool_result line, [post-progress])
        self.queue_ops = []
        self.meta_turn = []  # [(user meta lines..., system lines...)]
        self.interrupted = []
        self.sub_prompt = []
        lines_by_file = {}
        seen_start = set()
        for f in files:
            recs = [json.loads(l) for l in open(f, encoding="utf-8") if l.strip()]
            lines_by_file[f] = recs
        for f, recs in lines_by_file.items():
            tool_use = {}
            progress_by_tool = {}
            results = {}
            meta = []
            for r in recs:
                t = r.get("type")
                if t == "file-history-snapshot":
                    self.snapshot.append(compact(r))
                elif t == "queue-operation":
                    self.queue_ops.append(compact(r))
                elif t == "progress":
                    d = r.get("data", {})
                    if d.get("hookEvent") == "SessionStart":
                        if d.get("command") not in seen_start:
                            seen_start.add(d.get("command"))
                            self.session_start.append(compact(r))
                    else:
                        progress_by_tool.setdefault(r.get("toolUseID"), []).append(r)
                elif t == "system":
                    meta.append(r)
                elif t == "user":
                    c = r["message"]["content"]
                    if isinstance(c, str):
                        if r.get("isSidechain"):
                            self.sub_prompt.append(compact(r))
                        elif r.get("isMeta") or c.startswith("<"):
                            meta.append(r)
                        else:
                            self.prompt.append(compact(r))
                    else:
                        for b in c:
                            if b.get("type") == "tool_result":
                                results[b["tool_use_id"]] = r
                            elif b.get("type") == "text" and "interrupted" in b.get("text", ""):
                                self.interrupted.append(compact(r))
                elif t == "assistant":
                    blocks = r["message"]["content"]
                    if len(blocks) != 1:
                        continue
                    bt = blocks[0]["type"]
                    if bt == "tool_use":
                        tool_use[blocks[0]["id"]] = r
                    elif bt in self.asst and not r.get("isSidechain"):
                        self.asst[bt].append(compact(r))
            for tid, use in tool_use.items():
                if tid not in results:
                    continue
                progs = progress_by_tool.get(tid, [])
                pre = [compact(p) for p in progs if p["data"].get("hookEvent") == "PreToolUse"]
                post = [compact(p) for p in progs if p["data"].get("hookEvent") != "PreToolUse"]
                self.tool_pairs.append((compact(use), pre, compact(results[tid]), post))
            if meta:
                self.meta_turn.append([compact(m) for m in meta])
        for name in ("snapshot", "session_start", "prompt", "tool_pairs", "sub_prompt"):
            if not getattr(self, name):
                sys.exit(f"fixtures have no '{name}' lines")
        self.session_hooks = []  # (hookName, command) of the SessionStart progress lines
        for s in self.session_start:
            d = json.loads(s)["data"]
            self.session_hooks.append((d.get("hookName", "SessionStart:startup"), d.get("command", "")))
        self.usage = []
        for recs in lines_by_file.values():
            for r in recs:
                if r.get("type") == "assistant" and not r.get("isSidechain"):
                    self.usage.append(r["message"]["usage"])


class Prices:
    """Per-token prices of schemas/pricing/models.json (the binary's embedded table), priced
    like ccusage v20: each field of one response tiered at 200k tokens separately."""

    TIER = 200_000

    def __init__(self, path):
        self.m = json.load(open(path, encoding="utf-8"))["models"]

    def cost(self, model, u):
        p = self.m[model]
        inp = p["input_cost_per_token"]
        inp_hi = p.get("input_cost_per_token_above_200k_tokens", inp)
        w5 = p.get("cache_creation_input_token_cost", 1.25 * inp)
        w5_hi = p.get("cache_creation_input_token_cost_above_200k_tokens", 1.25 * inp_hi)
        w1 = p.get("cache_creation_input_token_cost_above_1hr", 2 * inp)
        w1_hi = 2 * inp_hi if "input_cost_per_token_above_200k_tokens" in p else w1
        rd = p.get("cache_read_input_token_cost", 0.1 * inp)
        rd_hi = p.get("cache_read_input_token_cost_above_200k_tokens", 0.1 * inp_hi)
        out = p["output_cost_per_token"]
        out_hi = p.get("output_cost_per_token_above_200k_tokens", out)

        def tier(n, lo, hi):
            return min(n, self.TIER) * lo + max(0, n - self.TIER) * hi

        cc = u.get("cache_creation") or {}
        total_cc = u.get("cache_creation_input_tokens", 0)
        n1 = cc.get("ephemeral_1h_input_tokens", 0) if cc else 0
        n5 = total_cc - n1
        return (tier(u.get("input_tokens", 0), inp, inp_hi) + tier(n5, w5, w5_hi) + tier(n1, w1, w1_hi)
                + tier(u.get("cache_read_input_tokens", 0), rd, rd_hi)
                + tier(u.get("output_tokens", 0), out, out_hi))


class Gen:
    def __init__(self, seed, days, start, shape="2.0"):
        self.rng = random.Random(seed)
        self.days = days
        self.start = start
        self.t = Templates(FIXTURES)
        self.shape = shape
        if shape == "2.1":
            self.prices = Prices(PRICES)
            # Claude Code's system prompt (with the tool descriptions) is nearly the same in every
            # session of a version: a few variants, each logged once per session as a blob.
            srng = random.Random(seed * 7919 + 21)
            saved, self.rng = self.rng, srng
            self.system_prompts = [self.prose(srng.randint(95_000, 125_000)) for _ in range(3)]
            self.identity = "You are Claude Code, Anthropic's official CLI for Claude."
            # The tool definitions (names, descriptions, JSON schemas): about as large again.
            self.tool_defs = [compact([{"name": n, "description": self.prose(srng.randint(5000, 9000)),
                                        "input_schema": {"type": "object", "properties": {
                                            w: {"type": "string", "description": self.words(12)}
                                            for w in srng.sample(WORDS, 4)}}}
                                       for n in Session.TOOLS]) for _ in range(2)]
            self.rng = saved

    # ---- identifiers -------------------------------------------------------------------
    def uuid(self):
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def b62(self, n):
        r = self.rng
        return "".join(r.choice(B62) for _ in range(n))

    def msg_id(self):
        return "msg_01" + self.b62(22)

    def req_id(self):
        return "req_011C" + self.b62(18)

    def tool_id(self):
        return "toolu_01" + self.b62(22)

    def hexid(self, n):
        return "%0*x" % (n, self.rng.getrandbits(4 * n))

    # ---- text --------------------------------------------------------------------------
    def words(self, n):
        r = self.rng
        return " ".join(r.choice(WORDS) for _ in range(n))

    def prompt_text(self):
        r = self.rng
        n = int(r.lognormvariate(2.6, 0.7)) + 3
        return f"{r.choice(PROMPT_OPENERS)} {self.words(n)}"

    def prose(self, length):
        r = self.rng
        out = []
        size = 0
        while size < length:
            s = self.words(r.randint(6, 18)).capitalize() + "."
            out.append(s)
            size += len(s) + 1
            if r.random() < 0.15:
                out.append("\n\n")
        return " ".join(out)

    # ---- time --------------------------------------------------------------------------
    @staticmethod
    def iso(ms):
        d = dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
        return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


class Session:
    """Writes one session file (and its sub-agent files)."""

    def __init__(self, g, project, sid, model, ts_ms, sidechain=None):
        self.g = g
        self.project = project
        self.sid = sid
        self.model = model
        self.ts = ts_ms
        self.last_uuid = None
        self.lines = []
        self.sidechain = sidechain  # agent id when this is a sub-agent file
        self.branch = g.rng.choice(["main", "master", "feature/" + g.rng.choice(WORDS)])
        self.slug = "-".join(g.rng.choice(WORDS) for _ in range(3))
        self.version = g.rng.choice(["2.1.38", "2.1.39", "2.1.42"])
        self.counts = Counter()
        self.nbytes = Counter()
        self.v21 = g.shape == "2.1"
        if self.v21:
            rng = g.rng
            self.version = rng.choice(["2.1.320", "2.1.324", "2.1.328"])
            self.entry = "cli" if rng.random() < 0.85 else "sdk-cli"
            if rng.random() < 0.1:
                self.branch = "HEAD"  # outside a git repository
            self.mcp = rng.random() < 0.5
            self.perm = rng.choice(["default", "default", "default", "acceptEdits", "plan"])
            self.prompt_id = None
            self.turn_no = 0
            self.responses = []  # (model, final usage) per API response, for cost-state
            self.extra = []  # compaction calls: in cost-state only
            self.api_hist = []  # [role, content blocks, logged, ref hash]
            self.blobs = set()
            self.system = rng.randrange(len(g.system_prompts))
            self.req_ref = None
            self.api_ms = 0
            self.added = self.removed = 0
            self.t0 = ts_ms
            self.last_prompt = ""
            self.tool_counts = Counter()
            self.queued = False

    def tick(self, lo_ms, hi_ms):
        self.ts += self.g.rng.randint(lo_ms, hi_ms)

    def common(self, r):
        """Session-level fields every conversation line carries."""
        if "sessionId" in r:
            r["sessionId"] = self.sid
        if "cwd" in r:
            r["cwd"] = "/home/dev/projects/" + self.project
        if "gitBranch" in r:
            r["gitBranch"] = self.branch
        if "version" in r:
            r["version"] = self.version
        if "slug" in r:
            r["slug"] = self.slug
        if "isSidechain" in r:
            r["isSidechain"] = self.sidechain is not None
        if self.sidechain is not None:
            if "uuid" in r:
                r["agentId"] = self.sidechain
        else:
            r.pop("agentId", None)
        if "timestamp" in r:
            r["timestamp"] = Gen.iso(self.ts)
        if self.v21 and "uuid" in r:
            t = r.get("type")
            if t == "user" and self.prompt_id:
                r["promptId"] = self.prompt_id
            if self.entry == "cli" and self.sidechain is None and (
                    t in ("assistant", "attachment") or (t == "user" and not isinstance(r["message"]["content"], str))):
                r["session_id"] = self.sid
            r["entrypoint"] = self.entry

    def chain(self, r, parent=None):
        """Fresh uuid, linked to the previous line (or `parent`)."""
        u = self.g.uuid()
        if "uuid" in r:
            r["uuid"] = u
        if "parentUuid" in r:
            r["parentUuid"] = parent if parent is not None else self.last_uuid
        self.last_uuid = u
        return u

    def emit(self, r):
        line = compact(r)
        self.lines.append(line)
        t = r.get("type", "?")
        if t == "system":
            t += "/" + str(r.get("subtype"))
        elif t == "attachment":
            t += "/" + str(r["attachment"].get("type"))
        elif t == "assistant" and r["message"].get("model") == "<synthetic>":
            t += "/<synthetic>"
        self.counts[t] += 1
        self.nbytes[t] += len(line.encode("utf-8")) + 1

    # ---- 2.1 records -------------------------------------------------------------------
    def meta(self, r):
        """A metadata line without uuid or timestamp (mode, permission-mode, last-prompt, …)."""
        r["sessionId"] = self.sid
        self.emit(r)

    def stamped(self, r):
        """A 2.1 record with sessionId and timestamp but no place in the message graph."""
        r["sessionId"] = self.sid
        r["timestamp"] = Gen.iso(self.ts)
        self.emit(r)

    def envelope(self, r):
        r.update({"isSidechain": self.sidechain is not None, "uuid": "", "timestamp": "", "userType": "external",
                  "cwd": "", "sessionId": "", "version": "", "gitBranch": ""})
        self.common(r)
        self.chain(r)
        self.emit(r)

    def attachment(self, att):
        self.envelope({"parentUuid": None, "attachment": att, "type": "attachment"})
        self.tick(5, 60)

    def hook_success(self, event, name, command, tool_id, stdout=""):
        g = self.g
        self.attachment({"type": "hook_success", "content": "", "hookName": name, "toolUseID": tool_id,
                         "hookEvent": event, "stdout": stdout, "stderr": "", "exitCode": 0,
                         "command": command, "durationMs": g.rng.randint(8, 120)})

    def file_path(self):
        r = self.g.rng
        ext = r.choice([".rs", ".ex", ".ts", ".py", ".go", ".md", ".toml"])
        return "/home/dev/projects/%s/%s/%s%s" % (self.project, r.choice(["src", "lib", "test", "docs"]),
                                                  r.choice(WORDS), ext)

    def prompt_attachment(self):
        g = self.g
        r = g.rng
        x = r.random()
        if x < 0.25:
            self.attachment({"type": "opened_file_in_ide", "filename": self.file_path()})
        elif x < 0.32:
            f = self.file_path()
            a = r.randint(1, 400)
            self.attachment({"type": "selected_lines_in_ide", "ideName": "Visual Studio Code", "lineStart": a,
                             "lineEnd": a + r.randint(1, 40), "filename": f, "content": g.prose(r.randint(80, 1200))})
        elif x < 0.37:
            p = "/home/dev/projects/%s/CLAUDE.md" % self.project
            self.attachment({"type": "nested_memory", "path": p,
                             "content": {"path": p, "type": "Project", "content": g.prose(r.randint(300, 3000))}})
        elif x < 0.42:
            self.attachment({"type": "todo_reminder", "content": [], "itemCount": 0})
        elif x < 0.45:
            self.attachment({"type": "critical_system_reminder", "content": g.prose(r.randint(60, 300))})

    def synthetic_error(self):
        g = self.g
        status = g.rng.choice([529, 529, 500, 429])
        kind = {529: "overloaded_error", 500: "api_error", 429: "rate_limit_error"}[status]
        r = {"parentUuid": None, "isSidechain": False, "type": "assistant", "uuid": "", "timestamp": "",
             "message": {"id": g.uuid(), "container": None, "model": "<synthetic>", "role": "assistant",
                         "stop_reason": "stop_sequence", "stop_sequence": "", "type": "message",
                         "usage": {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0,
                                   "cache_read_input_tokens": 0,
                                   "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
                                   "service_tier": None,
                                   "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 0}},
                         "content": [{"type": "text", "text": "API Error: %d %s" % (status, compact(
                             {"type": "error", "error": {"type": kind, "message": kind.split("_")[0].capitalize()}}))}]},
             "error": "unknown", "isApiErrorMessage": True, "apiErrorStatus": status}
        self.envelope(r)
        self.tick(2000, 20000)

    def blob(self, text, out):
        h = "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
        if h not in self.blobs:
            self.blobs.add(h)
            out.append({"type": "api-request-blob", "hash": h, "bytes": len(text.encode("utf-8")), "content": text})
        return h

    TOOLS = ["Agent", "Bash", "Edit", "Glob", "Grep", "NotebookEdit", "Read", "Skill", "TodoWrite", "ToolSearch",
             "WebFetch", "WebSearch", "Write"]
    DEFERRED = ["mcp__blueplane__get_metrics", "mcp__blueplane__list_sessions", "mcp__blueplane__search"]

    def log_request(self):
        """api-request-shape, new api-request-blobs, api-request: the request of this round in full,
        earlier messages by reference, large content and the system prompt de-duplicated into blobs."""
        g = self.g
        blobs = []
        system = [{"blob": self.blob(g.identity, blobs)}, {"blob": self.blob(g.system_prompts[self.system], blobs)},
                  {"type": "text", "text": "<env>Working directory: /home/dev/projects/%s\nGit branch: %s\n"
                                           "Platform: linux\nToday: %s</env>" % (self.project, self.branch,
                                                                                    Gen.iso(self.t0)[:10])}]
        messages = []
        shape_msgs = []
        for m in self.api_hist:
            role, content = m[0], m[1]
            shape_msgs.append({"role": role, "blocks": [b["type"] for b in content]})
            if m[2]:
                messages.append({"role": role, "blob": m[3]})
                continue
            out = []
            for b in content:
                text = b.get("text", b.get("content"))
                if isinstance(text, str) and len(text) > 2000:
                    b = dict(b)
                    b.pop("text", None)
                    b.pop("content", None)
                    b["blob"] = self.blob(text, blobs)
                out.append(b)
            m[2] = True
            m[3] = "sha256:" + hashlib.sha256(compact(out).encode("utf-8")).hexdigest()
            messages.append({"role": role, "content": out})
        tools = [{"blob": self.blob(g.tool_defs[self.system % len(g.tool_defs)], blobs)}]
        shape_id = "shape_01" + g.b62(22)
        shape = {"system": system[:2], "tools": self.TOOLS, "messages": shape_msgs}
        if self.mcp:
            shape["deferredTools"] = self.DEFERRED
        self.stamped({"type": "api-request-shape", "id": shape_id, "shape": shape})
        for b in blobs:
            r = {"type": "api-request-blob", "hash": b["hash"], "sessionId": self.sid, "timestamp": Gen.iso(self.ts),
                 "bytes": b["bytes"], "content": b["content"]}
            self.emit(r)
        self.req_ref = "areq_01" + g.b62(22)
        self.stamped({"type": "api-request", "id": self.req_ref, "promptId": self.prompt_id,
                      "querySource": "repl_main_thread" if self.entry == "cli" else "sdk", "shapeRef": shape_id,
                      "params": {"model": self.model,
                                 "betas": ["claude-code-20250219", "interleaved-thinking-2025-05-14",
                                           "context-management-2025-06-27"],
                                 "max_tokens": 128000, "thinking": {"type": "adaptive"}, "effort": "high"},
                      "system": system, "tools": tools, "messages": messages})
        # The envelope order of the real record: sessionId and timestamp come right after id.
        self.tick(1, 5)

    def cost_state(self, subs=()):
        g = self.g
        mu = {}
        total = 0.0
        resp = list(self.responses)
        for s in subs:
            resp.extend(s.responses)
        for model, u in resp + self.extra:
            d = mu.setdefault(model, {"inputTokens": 0, "outputTokens": 0, "thinkingTokens": 0,
                                      "cacheReadInputTokens": 0, "cacheCreationInputTokens": 0,
                                      "cacheCreationEphemeral5mInputTokens": 0,
                                      "cacheCreationEphemeral1hInputTokens": 0, "webSearchRequests": 0,
                                      "costUSD": 0.0})
            cc = u.get("cache_creation") or {}
            n1 = cc.get("ephemeral_1h_input_tokens", 0)
            d["inputTokens"] += u.get("input_tokens", 0)
            d["outputTokens"] += u.get("output_tokens", 0)
            d["thinkingTokens"] += (u.get("output_tokens_details") or {}).get("thinking_tokens", 0)
            d["cacheReadInputTokens"] += u.get("cache_read_input_tokens", 0)
            d["cacheCreationInputTokens"] += u.get("cache_creation_input_tokens", 0)
            d["cacheCreationEphemeral5mInputTokens"] += u.get("cache_creation_input_tokens", 0) - n1
            d["cacheCreationEphemeral1hInputTokens"] += n1
            c = g.prices.cost(model, u)
            d["costUSD"] += c
            total += c
        for d in mu.values():
            d["costUSD"] = math.ceil(d["costUSD"] * 1e7) / 1e7
        self.stamped({"type": "cost-state", "totalCostUSD": math.ceil(total * 1e7) / 1e7,
                      "totalAPIDuration": self.api_ms, "totalAPIDurationWithoutRetries": self.api_ms,
                      "totalDuration": self.ts - self.t0, "totalLinesAdded": self.added,
                      "totalLinesRemoved": self.removed, "hasUnknownModelCost": False, "modelUsage": mu})

    def tools_used(self):
        self.stamped({"type": "tools-used", "promptId": self.prompt_id,
                      "tools": [{"name": n, "count": c} for n, c in sorted(self.tool_counts.items())],
                      "summary": self.g.prose(self.g.rng.randint(40, 200))})

    def stop_hooks(self):
        g = self.g
        cmds = [c for _, c in g.t.session_hooks][:2] or ["blueplane hook stop"]
        r = {"parentUuid": None, "type": "system", "subtype": "stop_hook_summary", "hookCount": len(cmds),
             "hookInfos": [{"command": c, "durationMs": g.rng.randint(10, 200)} for c in cmds], "hookErrors": [],
             "preventedContinuation": False, "stopReason": "", "hasOutput": False, "level": "suggestion",
             "timestamp": "", "uuid": "", "toolUseID": g.uuid(), "isMeta": False, "isSidechain": False,
             "userType": "external", "cwd": "", "sessionId": "", "version": "", "gitBranch": ""}
        self.common(r)
        self.chain(r)
        self.emit(r)

    def compaction(self):
        """/compact (or auto-compaction): a boundary line, the summary, the SessionStart:compact hook;
        its API calls appear in cost-state only."""
        g = self.g
        r = g.rng
        pre = r.randint(90_000, 175_000)
        b = {"type": "system", "subtype": "compact_boundary", "parentUuid": None, "logicalParentUuid": self.last_uuid,
             "content": "Conversation compacted", "level": "info", "isMeta": False,
             "compactMetadata": {"trigger": r.choice(["auto", "manual"]), "preTokens": pre},
             "uuid": "", "timestamp": "", "isSidechain": False, "userType": "external", "cwd": "", "sessionId": "",
             "version": "", "gitBranch": ""}
        self.common(b)
        self.last_uuid = None
        self.chain(b)
        self.emit(b)
        self.tick(50, 500)
        u = {"parentUuid": None, "isSidechain": False, "type": "user", "uuid": "", "timestamp": "",
             "message": {"role": "user", "content": "This session is being continued from a previous conversation "
                                                    "that ran out of context. Summary: " + g.prose(r.randint(1500, 6000))},
             "isCompactSummary": True, "isVisibleInTranscriptOnly": True, "userType": "external", "cwd": "",
             "sessionId": "", "version": "", "gitBranch": ""}
        self.envelope(u)
        for name, cmd in g.t.session_hooks:
            self.hook_success("SessionStart", "SessionStart:compact", cmd, g.uuid())
        out = r.randint(1500, 6000)
        self.extra.append((self.model, {"input_tokens": r.randint(3, 12), "cache_read_input_tokens": pre,
                                        "cache_creation_input_tokens": r.randint(2000, 12000),
                                        "output_tokens": out, "output_tokens_details": {"thinking_tokens": 0}}))
        self.api_ms += r.randint(20_000, 90_000)
        self.api_hist = [["user", [{"type": "text", "text": u["message"]["content"]}], False, None]]

    def finish(self, subs):
        """The records 2.1 appends when a session ends (cost-state covers the sub-agents too)."""
        if not self.v21 or self.sidechain is not None:
            return
        r = self.g.rng
        self.tick(200, 3000)
        if r.random() < 0.1:
            name = "-".join(r.choice(WORDS) for _ in range(2))
            cwd = "/home/dev/projects/" + self.project
            self.meta({"type": "worktree-state", "worktreeSession": {
                "originalCwd": cwd, "worktreePath": cwd + "/.claude/worktrees/" + name, "worktreeName": name,
                "worktreeBranch": "worktree-" + name, "originalBranch": self.branch, "sessionId": self.sid}})
        if self.tool_counts:
            self.tools_used()
        self.cost_state(subs)
        self.meta({"type": "last-prompt", "lastPrompt": self.last_prompt, "leafUuid": self.last_uuid})
        if r.random() < 0.6:
            self.meta({"type": "atis-latch", "atis": ""})
        self.meta({"type": "mode", "mode": "normal"})
        self.meta({"type": "permission-mode", "permissionMode": self.perm})

    # ---- line builders -----------------------------------------------------------------
    def session_start(self):
        if self.v21:
            g = self.g
            self.meta({"type": "mode", "mode": "normal"})
            self.meta({"type": "permission-mode", "permissionMode": self.perm})
            tool = g.uuid()
            for name, cmd in g.t.session_hooks:
                self.hook_success("SessionStart", name, cmd, tool,
                                  stdout="blueplane: capture is running\n" if "blueplane" in cmd else "")
            if self.mcp:
                self.attachment({"type": "deferred_tools_delta", "addedNames": self.DEFERRED,
                                 "addedLines": self.DEFERRED, "removedNames": []})
            return
        tool = self.g.uuid()
        for s in self.g.t.session_start:
            r = json.loads(s)
            self.common(r)
            self.chain(r)
            r["toolUseID"] = r["parentToolUseID"] = tool
            self.emit(r)
            self.tick(20, 60)

    def snapshot(self, prompt_uuid):
        r = json.loads(self.g.rng.choice(self.g.t.snapshot))
        r["messageId"] = prompt_uuid
        r["snapshot"]["messageId"] = prompt_uuid
        r["snapshot"]["timestamp"] = Gen.iso(self.ts)
        self.emit(r)

    def prompt(self):
        g = self.g
        pool = g.t.sub_prompt if self.sidechain else g.t.prompt
        r = json.loads(g.rng.choice(pool))
        self.common(r)
        u = g.uuid()
        if self.sidechain is None:
            self.snapshot(u)
        r["uuid"] = u
        r["parentUuid"] = self.last_uuid
        self.last_uuid = u
        r["message"]["content"] = g.prompt_text()
        if self.v21:
            self.turn_no += 1
            self.prompt_id = g.uuid()
            r["promptId"] = self.prompt_id
            r["entrypoint"] = self.entry
            if self.sidechain is None:
                r["permissionMode"] = self.perm
                r["promptSource"] = "queued" if self.queued else "typed"
                r["turnPosition"] = self.turn_no
                self.queued = False
                self.last_prompt = r["message"]["content"]
            self.api_hist.append(["user", [{"type": "text", "text": r["message"]["content"]}], False, None])
        self.emit(r)
        if self.v21 and self.sidechain is None:
            self.prompt_attachment()

    def usage(self, final):
        g = self.g
        u = json.loads(json.dumps(g.rng.choice(g.t.usage)))
        f = g.rng.uniform(0.3, 4.0)
        for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"):
            if k in u:
                u[k] = int(u[k] * f)
        cc = u.get("cache_creation")
        if isinstance(cc, dict):
            w5 = cc.get("ephemeral_5m_input_tokens", 0)
            total = u.get("cache_creation_input_tokens", 0)
            if w5 and not cc.get("ephemeral_1h_input_tokens"):
                cc["ephemeral_5m_input_tokens"] = total
            else:
                cc["ephemeral_5m_input_tokens"] = 0
                cc["ephemeral_1h_input_tokens"] = total
        u["output_tokens"] = final
        if self.v21:
            u["output_tokens_details"] = {"thinking_tokens": 0}
            u["server_tool_use"] = {"web_search_requests": 0, "web_fetch_requests": 0}
            u["service_tier"] = "standard"
            u["inference_geo"] = ""
            u["speed"] = "standard"
            u["iterations"] = []
            u["fallback_credit"] = 0
        return u

    def assistant_message(self, n_tools, want_text, want_thinking):
        """One API response split per content block; returns tool (id, pair) list."""
        g = self.g
        rng = g.rng
        mid, rid = g.msg_id(), g.req_id()
        blocks = []
        if want_thinking and g.t.asst["thinking"]:
            blocks.append(("thinking", json.loads(rng.choice(g.t.asst["thinking"]))))
        if want_text or n_tools == 0:
            blocks.append(("text", json.loads(rng.choice(g.t.asst["text"]))))
        tools = []
        for _ in range(n_tools):
            pair = rng.choice(g.t.tool_pairs)
            blocks.append(("tool_use", json.loads(pair[0])))
            tools.append(pair)
        # Streamed blocks carry a partial output count, the last one the full count.
        final_out = int(rng.lognormvariate(5.0, 1.2)) + 1
        partial = rng.randint(1, 30)
        usage_final = self.usage(final_out)
        if self.v21:
            if blocks and blocks[0][0] == "thinking":
                usage_final["output_tokens_details"] = {"thinking_tokens": rng.randint(1, final_out)}
            self.responses.append((self.model, usage_final))
            self.api_ms += rng.randint(1500, 30000)
            api_content = []
        usage_partial = dict(usage_final, output_tokens=min(partial, final_out))
        out_tools = []
        for i, (kind, r) in enumerate(blocks):
            self.common(r)
            self.chain(r)
            m = r["message"]
            m["id"] = mid
            m["model"] = self.model
            m["usage"] = usage_final if i == len(blocks) - 1 else usage_partial
            r["requestId"] = rid
            b = m["content"][0]
            if kind == "text":
                b["text"] = g.prose(min(max(len(b.get("text", "")), 40), 4000) if rng.random() < 0.9 else 2)
            elif kind == "tool_use":
                b["id"] = g.tool_id()
                out_tools.append((b["id"], r["uuid"], tools[len(out_tools)]))
            if self.v21:
                r["apiBlockIndex"] = i
                r["requestedModel"] = self.model
                r["effort"] = "high"
                if self.req_ref:
                    r["requestRef"] = self.req_ref
                if kind == "thinking":
                    r["thinkingDurationMs"] = rng.randint(300, 20000)
                elif kind == "text":
                    api_content.append({"type": "text", "text": b["text"]})
                else:
                    name = b.get("name", "")
                    self.tool_counts[name] += 1
                    if name.startswith("mcp__"):
                        parts = name.split("__")
                        r["attributionMcpServer"] = parts[1]
                        r["attributionMcpTool"] = parts[-1]
                    api_content.append({"type": "tool_use", "id": b["id"], "name": name, "input": b.get("input", {})})
            self.emit(r)
            self.tick(200, 4000)
        if self.v21:
            self.api_hist.append(["assistant", api_content, False, None])
            self.req_ref = None
        return out_tools

    def tool_round(self, tools):
        g = self.g
        rng = g.rng
        if self.v21:
            return self.tool_round_21(tools)
        for tid, asst_uuid, pair in tools:
            for p in pair[1]:
                r = json.loads(p)
                self.common(r)
                self.chain(r)
                r["toolUseID"] = r["parentToolUseID"] = tid
                self.emit(r)
                self.tick(1, 5)
        for tid, asst_uuid, pair in tools:
            self.tick(50, 30000)
            r = json.loads(pair[2])
            self.common(r)
            self.chain(r, parent=asst_uuid)
            for b in r["message"]["content"]:
                if b.get("type") == "tool_result":
                    b["tool_use_id"] = tid
                    if rng.random() < 0.04:
                        b["is_error"] = True
                        b["content"] = "Error: " + g.words(rng.randint(4, 20))
            if "sourceToolAssistantUUID" in r:
                r["sourceToolAssistantUUID"] = asst_uuid
            self.emit(r)
            for p in pair[3]:
                r = json.loads(p)
                self.common(r)
                self.chain(r)
                r["toolUseID"] = r["parentToolUseID"] = tid
                self.emit(r)
                self.tick(1, 5)

    def tool_round_21(self, tools):
        """2.1: no progress lines; a PostToolUse hook run is a hook_success attachment (the fixture
        has no PreToolUse one)."""
        g = self.g
        rng = g.rng
        results = []
        for tid, asst_uuid, pair in tools:
            self.tick(50, 30000)
            name = json.loads(pair[0])["message"]["content"][0].get("name", "")
            r = json.loads(pair[2])
            self.common(r)
            self.chain(r, parent=asst_uuid)
            for b in r["message"]["content"]:
                if b.get("type") == "tool_result":
                    b["tool_use_id"] = tid
                    if rng.random() < 0.04:
                        b["is_error"] = True
                        b["content"] = "Error: " + g.words(rng.randint(4, 20))
                    c = b.get("content")
                    if isinstance(c, list):
                        c = "\n".join(x.get("text", "") for x in c if isinstance(x, dict))
                    results.append({"type": "tool_result", "tool_use_id": tid, "content": c or ""})
            if "sourceToolAssistantUUID" in r:
                r["sourceToolAssistantUUID"] = asst_uuid
            r["permissionDecision"] = "allow"
            if name in ("Edit", "Write", "MultiEdit"):
                self.added += rng.randint(1, 80)
                self.removed += rng.randint(0, 40)
            self.emit(r)
            if pair[3] and self.sidechain is None:
                self.hook_success("PostToolUse", "PostToolUse:" + name, "blueplane hook post-tool-use", tid)
        self.api_hist.append(["user", results, False, None])

    def queue_ops(self):
        for q in self.g.t.queue_ops:
            r = json.loads(q)
            self.common(r)
            if "content" in r:
                r["content"] = self.g.prompt_text()
            self.emit(r)
            self.tick(100, 1500)

    def meta_turn(self):
        g = self.g
        if not g.t.meta_turn:
            return
        first = True
        for s in g.rng.choice(g.t.meta_turn):
            r = json.loads(s)
            self.common(r)
            u = self.chain(r)
            if first and r.get("type") == "user":
                self.snapshot(u)
                first = False
            self.emit(r)
            self.tick(1, 3000)

    def interrupted(self):
        if self.g.t.interrupted:
            r = json.loads(self.g.rng.choice(self.g.t.interrupted))
            self.common(r)
            self.chain(r)
            self.emit(r)

    def turn(self):
        rng = self.g.rng
        self.prompt()
        self.tick(1500, 8000)
        rounds = min(int(rng.expovariate(1 / 3.5)) + 1, 25)
        if self.v21 and self.sidechain is None and rng.random() < 0.03:
            self.synthetic_error()
        for i in range(rounds):
            last = i == rounds - 1
            if last and self.v21 and self.sidechain is None:
                self.log_request()
            n_tools = 0 if last else rng.choice([1, 1, 1, 2, 2, 3, 4])
            tools = self.assistant_message(n_tools, want_text=rng.random() < 0.5, want_thinking=rng.random() < 0.3)
            if tools:
                self.tool_round(tools)
            if not last and rng.random() < 0.05:
                self.queue_ops()
                if self.v21:
                    self.queued = True
            self.tick(1000, 15000)
        if rng.random() < 0.04:
            self.interrupted()
        if self.v21 and self.sidechain is None:
            self.stop_hooks()
            self.tick(20, 300)
            self.cost_state()
            if self.tool_counts and rng.random() < 0.3:
                self.tools_used()

    def body(self, n_turns):
        rng = self.g.rng
        if self.sidechain is None:
            self.session_start()
        for i in range(n_turns):
            if self.sidechain is None and rng.random() < 0.04:
                self.meta_turn()
            if self.v21 and self.sidechain is None and i >= 3 and rng.random() < 0.08:
                self.compaction()
            self.turn()
            self.tick(10_000, 600_000)

    def write(self, path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        data = "\n".join(self.lines) + "\n"
        with open(path, "w", encoding="utf-8") as f:
            f.write(data)
        return len(data.encode("utf-8")), len(self.lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--mb", type=float, default=200.0, help="target size in MB (1e6 bytes)")
    ap.add_argument("--events", type=int, default=0, help="target line count instead of --mb")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--end", default="2026-10-31", help="last day of the window (UTC)")
    ap.add_argument("--shape", choices=["2.0", "2.1"], default="2.0",
                    help="Claude Code version whose transcripts to write (default 2.0: generator 3)")
    ap.add_argument("--force", action="store_true", help="regenerate even if a matching corpus exists")
    a = ap.parse_args()

    params = {"seed": a.seed, "mb": a.mb, "events": a.events, "days": a.days, "end": a.end, "generator": 3}
    if a.shape == "2.1":
        params.update(generator=4, shape="2.1")
    manifest = os.path.join(a.out, "corpus.json")
    if not a.force and os.path.exists(manifest):
        try:
            m = json.load(open(manifest))
            if m.get("params") == params:
                print(json.dumps(m))
                return
        except ValueError:
            pass
    if os.path.exists(os.path.join(a.out, "projects")):
        shutil.rmtree(os.path.join(a.out, "projects"))
    if os.path.exists(manifest):
        os.remove(manifest)

    end = dt.datetime.fromisoformat(a.end).replace(tzinfo=dt.timezone.utc) + dt.timedelta(days=1)
    start_ms = int((end - dt.timedelta(days=a.days)).timestamp() * 1000)
    window_ms = a.days * 86_400_000 - 6 * 3_600_000
    g = Gen(a.seed, a.days, start_ms, a.shape)
    rng = g.rng
    target_bytes = int(a.mb * 1e6)
    proj_weights = [1.0 / (i + 1) for i in range(len(PROJECTS))]
    models = [m for m, _ in MODELS]
    model_w = [w for _, w in MODELS]

    total_bytes = total_lines = files = sessions = subagents = 0
    counts, nbytes = Counter(), Counter()

    def write(sess, path):
        b, n = sess.write(path)
        counts.update(sess.counts)
        nbytes.update(sess.nbytes)
        return b, n

    while (total_lines < a.events) if a.events else (total_bytes < target_bytes):
        project = rng.choices(PROJECTS, proj_weights)[0]
        pdir = os.path.join(a.out, "projects", "-home-dev-projects-" + project)
        sid = g.uuid()
        model = rng.choices(models, model_w)[0]
        t0 = start_ms + rng.randrange(window_ms)
        s = Session(g, project, sid, model, t0)
        n_turns = min(int(rng.lognormvariate(1.6, 0.9)) + 1, 80)
        s.body(n_turns)
        subs = []
        # Sub-agents (Task tool, compaction) in ~20% of sessions.
        if rng.random() < 0.2:
            for _ in range(rng.randint(1, 3)):
                if a.shape == "2.1":
                    agent = "a" + g.hexid(16)  # 2.1: 17 hex chars; compaction writes no sub-agent file
                else:
                    agent = ("acompact-" + g.hexid(6)) if rng.random() < 0.3 else ("a" + g.hexid(6))
                sub = Session(g, project, sid, rng.choice(models[:3]), t0 + rng.randrange(60_000, 1_800_000), sidechain=agent)
                sub.branch, sub.slug, sub.version = s.branch, s.slug, s.version
                if a.shape == "2.1":
                    sub.entry = s.entry
                sub.body(rng.randint(1, 3))
                subs.append(sub)
        s.finish(subs)
        b, n = write(s, os.path.join(pdir, sid + ".jsonl"))
        total_bytes += b
        total_lines += n
        files += 1
        sessions += 1
        for sub in subs:
            agent = sub.sidechain
            b, n = write(sub, os.path.join(pdir, sid, "subagents", f"agent-{agent}.jsonl"))
            if a.shape == "2.1":
                meta = {"agentType": rng.choice(["Explore", "general-purpose", "Plan"]),
                        "description": g.words(rng.randint(3, 6)).capitalize(), "toolUseId": g.tool_id(),
                        "spawnDepth": 1, "model": sub.model, "isBuiltIn": True, "finished": True}
                with open(os.path.join(pdir, sid, "subagents", f"agent-{agent}.meta.json"), "w") as f:
                    f.write(compact(meta))
            total_bytes += b
            total_lines += n
            files += 1
            subagents += 1
    m = {
        "params": params,
        "files": files,
        "sessions": sessions,
        "subagent_files": subagents,
        "bytes": total_bytes,
        "lines": total_lines,
        "window": [Gen.iso(start_ms)[:10], a.end],
        "types": {t: {"lines": counts[t], "bytes": nbytes[t]} for t in sorted(counts)},
    }
    with open(manifest, "w") as f:
        json.dump(m, f)
    print(json.dumps(m))


if __name__ == "__main__":
    main()
