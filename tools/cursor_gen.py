#!/usr/bin/env python3
"""Generates a Cursor data dir (the one holding `User/`) of real SQLite `state.vscdb` files.

    python3 tools/cursor_gen.py OUT_DIR [--composers N] [--bubbles-per-composer M]
                                [--target-mb X] [--seed S] [--expected FILE]

Writes OUT_DIR/User/globalStorage/state.vscdb and OUT_DIR/User/workspaceStorage/<hash>/
{state.vscdb,workspace.json} with Cursor's schema (`ItemTable` and `cursorDiskKV`, both
`key TEXT UNIQUE ON CONFLICT REPLACE, value BLOB`) in WAL mode, in the shapes of several Cursor
versions (../shared/docs/formats.md §C2-C5): legacy `_v` 3 composers with their bubbles inline
in `conversation`; `fullConversationHeadersOnly` composers with `_v` 3, 10 and 18 (18 with
`workspaceIdentifier`); sub-composers (`subComposerIds`, some with `parentComposerId`);
bubbles with and without `tokenCount`, `0/0` counts, ISO, epoch and no `createdAt`; tool
bubbles (`toolFormerData`, status completed/error); thinking bubbles; `usageData` with and
without token numbers; `agentKv:blob:*` rows; values as TEXT and as BLOB; a single-root and a
multi-root workspace (with its `.code-workspace` file); credential rows and composer
encryption keys with planted values; and planted secrets, code, command output and thoughts
in bubbles where Blueplane's privacy filter must drop them.

`--target-mb X` sizes the global database to about X MB of values (2-6 KB each, as in real
databases, which carry `richText` and code blocks beside the text): the number of composers
follows from it. Rows are written with executemany in one transaction, then checkpointed.

`--expected FILE` writes, as JSON, what Blueplane must derive from the directory (mirroring
src/slow_path/derive/cursor.rs in the default `standard` privacy mode): sessions (composers
and sub-composers, with project, title and time span), messages (user prompts and assistant
text, with their text), tool calls and tool errors, sub-composer links, measured token rows
(`api_responses`, token_source `cursor`: a bubble's non-zero `tokenCount`, the largest total
per `cu:<cid>:<requestId or bubbleId>`; a composer's `usageData` token numbers only when no
bubble of it has counts), estimated turns (`token_estimates`), the number of capture events,
and the planted values that must appear nowhere. It keeps every expected message text in
memory: meant for test-sized corpora (tests/cursor_gen.rs), not for `--target-mb 2048`.
"""
import argparse
import datetime
import json
import pathlib
import random
import sqlite3
import sys

T0 = 1_766_691_308_486  # 2025-12-25, epoch ms
DAY = 86_400_000

# Planted values: none may leave Cursor's database (credentials) or pass the privacy filter.
PLANTED_ACCESS_TOKEN = "PLANTEDgenACCESStokenEyJhbGciOiJIUzI1NiJ9q7"
PLANTED_REFRESH_TOKEN = "PLANTEDgenREFRESHtoken0123456789zz"
PLANTED_BLOB_KEY = "PLANTEDgenBLOBencryptionKEY0123456789abcdef"
PLANTED_SPEC_KEY = "PLANTEDgenSPECULATIVEkey0123456789abcdef"
PLANTED_SECRET = "sk-ant-api03-PLANTEDgenSECRETvalue0123456789abcdefghijk"
PLANTED_AWS = "AKIAPLANTEDGEN01234Z"
PLANTED_CODE = "fn planted_gen_snippet_q9"
PLANTED_OUTPUT = "PLANTED_GEN_COMMAND_OUTPUT_51"
PLANTED_THOUGHT = "PLANTED_GEN_THOUGHT_88"
PLANTED_RICH = "PLANTED_GEN_RICHTEXT_13"
PLANTED_AGENT = "PLANTED_GEN_AGENT_CONTENT_27"
PLANTED = [
    PLANTED_ACCESS_TOKEN,
    PLANTED_REFRESH_TOKEN,
    PLANTED_BLOB_KEY,
    PLANTED_SPEC_KEY,
    PLANTED_SECRET,
    PLANTED_AWS,
    PLANTED_CODE,
    PLANTED_OUTPUT,
    PLANTED_THOUGHT,
    PLANTED_RICH,
    PLANTED_AGENT,
]

# Prose only: no word the secret rules or the code/output filters react to.
WORDS = (
    "the retry loop backs off after each failed request and the queue drains in order "
    "while a worker picks the next batch from the stream then writes rows into the store "
    "why does this handler block when the cache is cold could we split the parser into "
    "smaller steps so each step can be tested alone refactor module layout naming tests "
    "migrate schema index latency budget window bucket session project branch commit "
    "review merge deploy rollback metric dashboard alert owner sprint fixture sample"
).split()
SINGLE_ROOT = "/home/dev/my shop"  # a space: percent-encoded in workspace.json
MULTI_FOLDERS = ["svc-api", "svc-web"]
TOOLS = ["run_terminal_cmd", "read_file", "edit_file", "codebase_search", "grep_search"]
MODELS = ["claude-4.5-sonnet", "claude-4.5-opus-high-thinking", "gpt-5", "composer-1", "default"]


def iso(ms: int) -> str:
    d = datetime.datetime.fromtimestamp(ms // 1000, tz=datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def uri_encode(path: str) -> str:
    out = []
    for b in path.encode():
        c = chr(b)
        if c.isascii() and (c.isalnum() or c in "/-_.~"):
            out.append(c)
        else:
            out.append(f"%{b:02X}")
    return "".join(out)


def dumps(v) -> str:
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


class Gen:
    def __init__(self, args):
        self.rng = random.Random(args.seed)
        self.args = args
        self.m = args.bubbles_per_composer
        self.big = args.target_mb is not None
        self.want_expected = args.expected is not None
        # A pool of paragraphs (drawing words per bubble would dominate the run time at scale).
        self.pool = [self.sentence(self.rng.randint(8, 40)) for _ in range(400)]
        self.kv_rows = []
        self.kv_bytes = 0
        self.n_bubbles = 0
        self.exp = {
            "sessions": {},
            "messages": {},
            "tool_calls": {},
            "subagents": [],
            "api_responses": {},
            "token_estimates": {},
        }
        self.events = 0
        self.workspace_lists = {"single": [], "multi": []}

    def sentence(self, n: int) -> str:
        return " ".join(self.rng.choice(WORDS) for _ in range(n)).capitalize() + "."

    def prose(self, tag: str) -> str:
        """Unique prose (the tag), padded at scale to make values of 2-6 KB."""
        parts = [tag]
        n = self.rng.randint(1, 3)
        if self.big:
            n = self.rng.randint(6, 16)
        parts.extend(self.rng.choice(self.pool) for _ in range(n))
        return " ".join(parts)

    def padding(self, text: str) -> dict:
        """What real bubbles carry beside the text: lexical `richText` and code blocks."""
        extra = {"richText": dumps({"root": {"children": [{"text": text, "type": "text"}]}})}
        if self.big:
            code = "\n".join(f"    let v{i} = step_{i}(input)?;" for i in range(self.rng.randint(10, 60)))
            extra["codeBlocks"] = [{"content": code, "languageId": "rust"}]
        return extra

    # -- writing -------------------------------------------------------------------------

    def put(self, key: str, value: dict):
        text = dumps(value)
        # Cursor stores values as TEXT in most rows and as BLOB in some.
        v = text.encode() if self.rng.random() < 0.3 else text
        self.kv_rows.append((key, v))
        self.kv_bytes += len(text)

    def flush(self, con):
        if self.kv_rows:
            con.executemany("INSERT INTO cursorDiskKV (key, value) VALUES (?, ?)", self.kv_rows)
            self.kv_rows.clear()

    # -- one composer --------------------------------------------------------------------

    def composer(self, i: int, cid: str, kind: str, parent: str | None = None, link_parent=False,
                 subs=()):
        rng = self.rng
        created = T0 - (i % 365) * DAY + rng.randint(0, DAY // 2)
        nb = max(2, self.m + rng.randint(-2, 2)) if not parent else max(2, self.m // 2)
        bubbles = []  # (bubble value, facts)
        t = created
        rid = None
        for k in range(nb):
            bid = f"{cid[:8]}-b{k:04d}-{rng.randrange(16**8):08x}"
            t += rng.randint(1_000, 60_000)
            user = k == 0 or rng.random() < 0.2
            if user:
                rid = f"req-{cid[:8]}-{k}"
            b, facts = self.bubble(cid, bid, user, t, k, rid, kind)
            bubbles.append((b, facts))
        name = f"Chat {i}: " + self.sentence(rng.randint(2, 5))[:-1]
        model = rng.choice(MODELS)
        v = {"_v": 3, "composerId": cid, "name": name, "createdAt": created,
             "lastUpdatedAt": t + rng.randint(0, 5_000), "status": "completed",
             "richText": "", "blobEncryptionKey": PLANTED_BLOB_KEY}
        headers = [{"bubbleId": b["bubbleId"], "type": b["type"]} for b, _ in bubbles]
        if kind == "legacy":
            v["conversation"] = [b for b, _ in bubbles]
        else:
            v["_v"] = {"v3": 3, "v10": 10, "v18": 18}[kind]
            v.update({"unifiedMode": "agent", "forceMode": "edit", "isAgentic": True,
                      "modelConfig": {"modelName": model, "maxMode": rng.random() < 0.5},
                      "fullConversationHeadersOnly": [
                          dict(h, **({"serverBubbleId": "srv-" + h["bubbleId"]} if h["type"] == 2 else {}))
                          for h in headers],
                      "conversationMap": {}, "usageData": {}, "contextUsagePercent": 41.2,
                      "totalLinesAdded": rng.randint(0, 300), "totalLinesRemoved": rng.randint(0, 50),
                      "filesChangedCount": rng.randint(0, 9), "subComposerIds": list(subs),
                      "createdOnBranch": "main",
                      "speculativeSummarizationEncryptionKey": PLANTED_SPEC_KEY})
            if kind == "v18":
                v["workspaceIdentifier"] = {"id": f"ws-{i % 3}",
                                            "uri": {"fsPath": f"/home/dev/proj-{i % 3}",
                                                    "path": f"/home/dev/proj-{i % 3}"}}
            if link_parent and parent:
                v["parentComposerId"] = parent
                v["isSubagent"] = True
            # A stray credential a composer might carry: removed inside SQLite (json_remove).
            if i % 7 == 0:
                v["accessToken"] = PLANTED_ACCESS_TOKEN
        # usageData: `{}` mostly; cost counters (no tokens) sometimes; token numbers rarely
        # (counted only when no bubble of the composer has counts).
        u = rng.random()
        if kind != "legacy" and u < 0.15:
            v["usageData"] = {model: {"costInCents": rng.randint(1, 90), "amount": rng.randint(1, 5)}}
        elif u < 0.30:
            v["usageData"] = {"inputTokens": rng.randint(100, 90_000),
                              "outputTokens": rng.randint(10, 9_000)}
            if rng.random() < 0.6:
                # No bubble counts: the composer-level numbers are the measured count.
                for _, f in bubbles:
                    f["in"] = f["out"] = 0
                for b, _ in bubbles:
                    if "tokenCount" in b:
                        b["tokenCount"] = {"inputTokens": 0, "outputTokens": 0}
        self.put(f"composerData:{cid}", v)
        self.events += 1
        if kind != "legacy":
            for b, _ in bubbles:
                self.put(f"bubbleId:{cid}:{b['bubbleId']}", b)
        self.events += len(bubbles)
        self.n_bubbles += len(bubbles)
        if self.want_expected:
            self.expect(cid, v, bubbles, parent if link_parent else None)
        return v

    def bubble(self, cid, bid, user, t, k, rid, kind):
        """One bubble value and the facts the deriver keeps of it."""
        rng = self.rng
        plant = rng.random() < 0.04
        facts = {"bid": bid, "type": 1 if user else 2, "text_bytes": 0, "thinking": 0,
                 "args": 0, "result": 0, "in": 0, "out": 0, "rid": rid}
        b = {"_v": 3, "type": facts["type"], "bubbleId": bid}
        # Time: ISO (modern), epoch ms (some builds), or none (older bubbles, tool bubbles
        # timed by timingInfo, thinking bubbles timed by nothing: the composer's createdAt).
        r = rng.random()
        if kind == "legacy":
            r = 0.9 if r < 0.5 else 0.0
        ts_kind = "iso" if r < 0.55 else "epoch" if r < 0.75 else "none"
        if ts_kind == "iso":
            b["createdAt"] = iso(t)
        elif ts_kind == "epoch":
            b["createdAt"] = t
        facts["expected_text"] = None
        facts["contains"] = []
        if user:
            text = f"prompt {bid}: " + self.prose(self.sentence(3))
            if plant:
                text += f" my key is {PLANTED_SECRET} and {PLANTED_AWS} ok"
                facts["contains"] = [f"prompt {bid}:", "[REDACTED:"]
            else:
                facts["expected_text"] = text
            b.update({"text": text, "requestId": rid,
                      "modelInfo": {"modelName": rng.choice(MODELS)},
                      "attachedCodeChunks": [{"text": PLANTED_CODE + "() {}"}],
                      "workspaceUris": ["file:///home/dev/proj"]})
            b.update(self.padding(text))
            if rng.random() < 0.8:
                b["tokenCount"] = {"inputTokens": 0, "outputTokens": 0}
            facts["text_bytes"] = len(text.encode())
            facts["message"] = True
        else:
            what = rng.random()
            b["requestId"] = rid if rng.random() < 0.7 else None
            if b["requestId"] is None:
                del b["requestId"]
                facts["rid"] = None
            if what < 0.3:
                # A tool call.
                name = rng.choice(TOOLS)
                status = "error" if rng.random() < 0.2 else "completed"
                args = {"command": f"cargo test -p crate{k} {PLANTED_SECRET if plant else ''}".strip()}
                if name != "run_terminal_cmd":
                    args = {"target_file": f"src/mod{k}.rs", "explanation": "look"}
                raw_args = dumps(args)
                output = f"{PLANTED_OUTPUT} line {k}"
                if self.big:
                    # Tool results hold file contents and command output: the bulk of a value.
                    output += "".join(f"\n{j:4} | " + self.rng.choice(self.pool) for j in range(self.rng.randint(5, 30)))
                result = dumps({"output": output, "exitCode": 1 if status == "error" else 0})
                tf = {"name": name, "status": status, "rawArgs": raw_args, "result": result}
                tool_id = f"call-{bid}" if rng.random() < 0.7 else None
                if tool_id:
                    tf["toolCallId"] = tool_id
                err = status == "error"
                if status == "error":
                    # The first line of an error message is kept (standard mode): no planted value in it.
                    tf["error"] = {"message": f"exit status 1 in step {k}"}
                elif rng.random() < 0.05:
                    # Completed yet with an error string: an error all the same.
                    tf["error"] = "tool failed"
                    err = True
                b.update({"text": "", "toolFormerData": tf, "capabilityType": 15,
                          "timingInfo": {"clientRpcSendTime": t, "clientEndTime": t + 1500}})
                facts["args"] = len(raw_args.encode())
                facts["result"] = len(result.encode())
                facts["tool"] = {"id": tool_id or f"cu:{cid}:{bid}", "name": name, "is_error": err}
                facts["message"] = False
                if rng.random() < 0.5:
                    b["tokenCount"] = {"inputTokens": 0, "outputTokens": 0}
            elif what < 0.45:
                # A thinking bubble: no text, no time of its own at all.
                thought = f"{PLANTED_THOUGHT} " + self.sentence(rng.randint(3, 30))
                b.pop("createdAt", None)
                ts_kind = "none"
                b.update({"text": "", "thinking": {"text": thought, "signature": "sig"}})
                facts["thinking"] = len(thought.encode())
                facts["message"] = False
                if rng.random() < 0.5:
                    b["tokenCount"] = {"inputTokens": 0, "outputTokens": 0}
            else:
                text = f"answer {bid}: " + self.prose(self.sentence(4))
                if plant:
                    text += f"\n```rust\n{PLANTED_CODE}() {{}}\n```\n<bash-stdout>{PLANTED_OUTPUT}</bash-stdout> done"
                    facts["contains"] = [f"answer {bid}:", "[code: 1 lines]"]
                else:
                    facts["expected_text"] = text
                b.update({"text": text, "serverBubbleId": f"srv-{bid}", "usageUuid": f"usage-{bid}",
                          "modelInfo": {"modelName": rng.choice(MODELS)},
                          "timingInfo": {"clientStartTime": 4745281.3, "clientRpcSendTime": t - 5000,
                                         "clientSettleTime": t, "clientEndTime": t},
                          "isAgentic": True, "unifiedMode": 2})
                b.update(self.padding(text))
                if plant:
                    b["richText"] = dumps({"root": PLANTED_RICH})
                facts["text_bytes"] = len(text.encode())
                facts["message"] = True
                c = rng.random()
                if c < 0.35:
                    facts["in"], facts["out"] = rng.randint(50, 40_000), rng.randint(1, 4_000)
                    b["tokenCount"] = {"inputTokens": facts["in"], "outputTokens": facts["out"]}
                elif c < 0.8:
                    b["tokenCount"] = {"inputTokens": 0, "outputTokens": 0}
                # else: no tokenCount at all
        facts["ts_kind"] = ts_kind
        facts["t"] = t
        return b, facts

    # -- the expectation (derive/cursor.rs, standard mode) -------------------------------

    def expect(self, cid, v, bubbles, parent):
        e = self.exp
        created = v["createdAt"]
        last = v["lastUpdatedAt"]
        times = [created, last]
        facts = []
        for b, f in bubbles:
            if f["ts_kind"] in ("iso", "epoch"):
                ts = f["t"]
            elif "timingInfo" in b:
                ts = next(x for x in (b["timingInfo"].get(k) for k in
                                      ("clientRpcSendTime", "clientSettleTime", "clientEndTime"))
                          if x is not None and x > 1e12)
            else:
                ts = created
            f["ts"] = ts
            times.append(ts)
            facts.append(f)
            if f["message"]:
                e["messages"][f"cu:msg:{cid}:{f['bid']}"] = {
                    "session": cid,
                    "role": "user" if f["type"] == 1 else "assistant",
                    "is_prompt": f["type"] == 1,
                    "ts": ts,
                    "text": f["expected_text"],
                    "contains": f["contains"],
                }
            if "tool" in f:
                t = f["tool"]
                e["tool_calls"][t["id"]] = {"session": cid, "name": t["name"], "is_error": t["is_error"]}
        e["sessions"][cid] = {
            "title": v["name"],
            "started_at": min(times),
            "ended_at": max(times),
            "own_project": (v.get("workspaceIdentifier") or {}).get("uri", {}).get("fsPath"),
            "parent": parent,
            "subs": list(v.get("subComposerIds", [])),
        }
        # Measured rows: the largest total per key (ties: the larger event id).
        best = {}
        for f in facts:
            if f["in"] == 0 and f["out"] == 0:
                continue
            key = f"cu:{cid}:{f['rid'] or f['bid']}"
            rank = (f["in"] + f["out"], "cursor", f"cu:msg:{cid}:{f['bid']}")
            if key not in best or best[key][0] < rank:
                best[key] = (rank, f["in"], f["out"])
        ud = v.get("usageData") or {}
        composer_level = (not best and isinstance(ud.get("inputTokens"), int)
                          and isinstance(ud.get("outputTokens"), int)
                          and ud["inputTokens"] + ud["outputTokens"] > 0)
        if composer_level:
            e["api_responses"][f"cu:{cid}:usage"] = [ud["inputTokens"], ud["outputTokens"]]
        for key, (_, i, o) in best.items():
            e["api_responses"][key] = [i, o]
        if composer_level:
            return
        # Estimates: turns (a user bubble and what follows it) in header order with an
        # assistant bubble and no measured count; ceil(bytes / 4) each side.
        turns = []
        for f in facts:
            if turns and f["type"] != 1:
                turns[-1].append(f)
            else:
                turns.append([f])
        for turn in turns:
            if not any(f["type"] == 2 for f in turn):
                continue
            if any(f["in"] or f["out"] or f"cu:{cid}:{f['rid'] or f['bid']}" in best for f in turn):
                continue
            inp = sum(f["text_bytes"] if f["type"] == 1 else f["result"] for f in turn)
            out = sum(f["text_bytes"] + f["thinking"] + f["args"] for f in turn if f["type"] == 2)
            ei, eo = -(-inp // 4), -(-out // 4)
            if ei == 0 and eo == 0:
                continue
            e["token_estimates"][f"cu:{cid}:est:{turn[0]['bid']}"] = [ei, eo]

    def finish_expected(self, multi_base: pathlib.Path):
        e = self.exp
        listed = {}
        for cid in self.workspace_lists["single"]:
            listed[cid] = SINGLE_ROOT
        for cid in self.workspace_lists["multi"]:
            listed[cid] = str(multi_base / MULTI_FOLDERS[0])
        sessions = e["sessions"]

        def own(cid):
            s = sessions[cid]
            return s["own_project"] or listed.get(cid)

        out_sessions = {}
        for cid, s in sessions.items():
            p = own(cid)
            if p is None and s["parent"]:
                p = own(s["parent"])
            out_sessions[cid] = {"project": p, "title": s["title"],
                                 "started_at": s["started_at"], "ended_at": s["ended_at"]}
            for child in s["subs"]:
                e["subagents"].append([cid, child])
            if s["parent"] and [s["parent"], cid] not in e["subagents"]:
                e["subagents"].append([s["parent"], cid])
        e["subagents"] = sorted({tuple(x) for x in e["subagents"]})
        e["sessions"] = out_sessions
        msgs = e["messages"]
        tools = e["tool_calls"]
        api = e["api_responses"]
        est = e["token_estimates"]
        e["counts"] = {
            "events": self.events,
            "bubbles": self.n_bubbles,
            "sessions": len(out_sessions),
            "messages": len(msgs),
            "prompts": sum(1 for m in msgs.values() if m["is_prompt"]),
            "tool_calls": len(tools),
            "tool_errors": sum(1 for t in tools.values() if t["is_error"]),
            "subagents": len(e["subagents"]),
            "api_responses": len(api),
            "input_tokens": sum(x[0] for x in api.values()),
            "output_tokens": sum(x[1] for x in api.values()),
            "token_estimates": len(est),
            "estimated_input_tokens": sum(x[0] for x in est.values()),
            "estimated_output_tokens": sum(x[1] for x in est.values()),
        }
        e["planted"] = PLANTED
        return e


def open_db(path: pathlib.Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        pathlib.Path(str(path) + suffix).unlink(missing_ok=True)
    con = sqlite3.connect(path, isolation_level=None)
    mode = con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    assert mode == "wal", mode
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-65536")
    for table in ("ItemTable", "cursorDiskKV"):
        con.execute(f"CREATE TABLE {table} (key TEXT UNIQUE ON CONFLICT REPLACE, value BLOB)")
    return con


def workspace(root: pathlib.Path, hash_: str, ws_json: dict, composers: list, g: Gen):
    d = root / "User" / "workspaceStorage" / hash_
    con = open_db(d / "state.vscdb")
    (d / "workspace.json").write_text(json.dumps(ws_json) + "\n")
    all_ = [{"composerId": cid, "name": f"listed {cid[:8]}", "createdAt": T0, "lastUpdatedAt": T0 + 1,
             "unifiedMode": "agent", "type": "head"} for cid in composers]
    con.execute("BEGIN")
    con.execute("INSERT INTO ItemTable (key, value) VALUES (?, ?)",
                ("composer.composerData", dumps({"allComposers": all_, "selectedComposerIds": composers[:1]})))
    con.execute("INSERT INTO ItemTable (key, value) VALUES (?, ?)",
                ("aiService.prompts", dumps([{"text": "an old prompt", "commandType": 4}])))
    con.execute("INSERT INTO ItemTable (key, value) VALUES (?, ?)",
                ("cursorAuth/accessToken", PLANTED_ACCESS_TOKEN))
    con.execute("COMMIT")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    g.events += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--composers", type=int, default=30)
    ap.add_argument("--bubbles-per-composer", type=int, default=8)
    ap.add_argument("--target-mb", type=float)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--expected")
    args = ap.parse_args()
    if args.bubbles_per_composer < 2 or args.composers < 1:
        sys.exit("cursor_gen.py: --composers >= 1 and --bubbles-per-composer >= 2")
    root = pathlib.Path(args.out).resolve()
    g = Gen(args)
    con = open_db(root / "User" / "globalStorage" / "state.vscdb")
    con.execute("BEGIN")
    # Credentials Cursor keeps in the global database (never read by Blueplane).
    for k, val in [("cursorAuth/accessToken", PLANTED_ACCESS_TOKEN),
                   ("cursorAuth/refreshToken", PLANTED_REFRESH_TOKEN),
                   ("cursorAuth/cachedEmail", "dev@example.com"),
                   ("cursorAuth/cachedSignUpType", dumps({"token": PLANTED_ACCESS_TOKEN}))]:
        con.execute("INSERT INTO ItemTable (key, value) VALUES (?, ?)", (k, val))
    g.put("cursorAuth/accessToken", {"accessToken": PLANTED_ACCESS_TOKEN})
    g.put("blobEncryptionKey", {"blobEncryptionKey": PLANTED_BLOB_KEY})
    g.put("checkpointId:x:y", {"files": [PLANTED_CODE]})
    kinds = ["legacy", "v3", "v10", "v18", "v18", "v10"]
    target = args.target_mb * 1024 * 1024 if args.target_mb else None
    i = 0
    while (g.kv_bytes < target) if target else (i < args.composers):
        kind = kinds[i % len(kinds)]
        cid = f"{i:08x}-{g.rng.randrange(16**4):04x}-4000-8000-{g.rng.randrange(16**12):012x}"
        subs = []
        if kind == "v18" and i % 4 == 3:
            subs = [f"{cid[:8]}-sub{s}-4000-8000-{g.rng.randrange(16**12):012x}" for s in range(2)]
        g.composer(i, cid, kind, subs=subs)
        for s, sub in enumerate(subs):
            # The first sub-composer names its parent; the second is linked only by the parent.
            g.composer(i, sub, "v10", parent=cid, link_parent=(s == 0))
        if kind in ("legacy", "v3") and i % 2 == 0:
            g.workspace_lists["single"].append(cid)
        elif kind == "v10" and i % 3 == 0:
            g.workspace_lists["multi"].append(cid)
        elif kind == "v18" and i % 5 == 0:
            # Listed by a workspace of another folder: the composer's own path wins.
            g.workspace_lists["single"].append(cid)
        if len(g.kv_rows) >= 5_000:
            g.flush(con)
        i += 1
    # Agent blobs (content-addressed; no composer, no time: nothing derived but the capture).
    for j in range(max(3, i // 10)):
        sha = f"{(j * 2654435761) % (1 << 64):064x}"
        g.put(f"agentKv:blob:{sha}", {"role": ["system", "user", "assistant"][j % 3],
                                      "content": f"{PLANTED_AGENT} agent message {j}"})
        g.events += 1
    g.flush(con)
    con.execute("COMMIT")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    multi_file = root / "multi.code-workspace"
    multi_file.write_text(json.dumps({"folders": [{"path": f} for f in MULTI_FOLDERS], "settings": {}}))
    workspace(root, "a1b2c3d4e5f60718293a4b5c6d7e8f90", {"folder": "file://" + uri_encode(SINGLE_ROOT)},
              g.workspace_lists["single"], g)
    workspace(root, "0f1e2d3c4b5a69788796a5b4c3d2e1f0", {"workspace": "file://" + uri_encode(str(multi_file))},
              g.workspace_lists["multi"], g)
    summary = {"composers": i, "bubbles": g.n_bubbles, "value_mb": round(g.kv_bytes / 2**20, 1),
               "global_db": str(root / "User" / "globalStorage" / "state.vscdb")}
    if args.expected:
        e = g.finish_expected(root)
        pathlib.Path(args.expected).write_text(json.dumps(e, indent=1, sort_keys=True))
        summary["sessions"] = e["counts"]["sessions"]
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
