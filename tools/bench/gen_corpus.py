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

Usage: gen_corpus.py --out DIR --mb 200 [--seed 42] [--days 60] [--events N]
"""

import argparse
import datetime as dt
import glob
import json
import os
import random
import shutil
import sys
import uuid

FIXTURES = "/work/shared/fixtures-external/spotter"

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
        self.usage = []
        for recs in lines_by_file.values():
            for r in recs:
                if r.get("type") == "assistant" and not r.get("isSidechain"):
                    self.usage.append(r["message"]["usage"])


class Gen:
    def __init__(self, seed, days, start):
        self.rng = random.Random(seed)
        self.days = days
        self.start = start
        self.t = Templates(FIXTURES)

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
        self.lines.append(compact(r))

    # ---- line builders -----------------------------------------------------------------
    def session_start(self):
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
        self.emit(r)

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
            self.emit(r)
            self.tick(200, 4000)
        return out_tools

    def tool_round(self, tools):
        g = self.g
        rng = g.rng
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
        for i in range(rounds):
            last = i == rounds - 1
            n_tools = 0 if last else rng.choice([1, 1, 1, 2, 2, 3, 4])
            tools = self.assistant_message(n_tools, want_text=rng.random() < 0.5, want_thinking=rng.random() < 0.3)
            if tools:
                self.tool_round(tools)
            if not last and rng.random() < 0.05:
                self.queue_ops()
            self.tick(1000, 15000)
        if rng.random() < 0.04:
            self.interrupted()

    def body(self, n_turns):
        rng = self.g.rng
        if self.sidechain is None:
            self.session_start()
        for i in range(n_turns):
            if self.sidechain is None and rng.random() < 0.04:
                self.meta_turn()
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
    ap.add_argument("--force", action="store_true", help="regenerate even if a matching corpus exists")
    a = ap.parse_args()

    params = {"seed": a.seed, "mb": a.mb, "events": a.events, "days": a.days, "end": a.end, "generator": 3}
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
    g = Gen(a.seed, a.days, start_ms)
    rng = g.rng
    target_bytes = int(a.mb * 1e6)
    proj_weights = [1.0 / (i + 1) for i in range(len(PROJECTS))]
    models = [m for m, _ in MODELS]
    model_w = [w for _, w in MODELS]

    total_bytes = total_lines = files = sessions = subagents = 0
    while (total_lines < a.events) if a.events else (total_bytes < target_bytes):
        project = rng.choices(PROJECTS, proj_weights)[0]
        pdir = os.path.join(a.out, "projects", "-home-dev-projects-" + project)
        sid = g.uuid()
        model = rng.choices(models, model_w)[0]
        t0 = start_ms + rng.randrange(window_ms)
        s = Session(g, project, sid, model, t0)
        n_turns = min(int(rng.lognormvariate(1.6, 0.9)) + 1, 80)
        s.body(n_turns)
        b, n = s.write(os.path.join(pdir, sid + ".jsonl"))
        total_bytes += b
        total_lines += n
        files += 1
        sessions += 1
        # Sub-agents (Task tool, compaction) in ~20% of sessions.
        if rng.random() < 0.2:
            for _ in range(rng.randint(1, 3)):
                agent = ("acompact-" + g.hexid(6)) if rng.random() < 0.3 else ("a" + g.hexid(6))
                sub = Session(g, project, sid, rng.choice(models[:3]), t0 + rng.randrange(60_000, 1_800_000), sidechain=agent)
                sub.branch, sub.slug, sub.version = s.branch, s.slug, s.version
                sub.body(rng.randint(1, 3))
                b, n = sub.write(os.path.join(pdir, sid, "subagents", f"agent-{agent}.jsonl"))
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
    }
    with open(manifest, "w") as f:
        json.dump(m, f)
    print(json.dumps(m))


if __name__ == "__main__":
    main()
