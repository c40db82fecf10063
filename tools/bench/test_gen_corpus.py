#!/usr/bin/env python3
"""Checks of gen_corpus.py (stdlib only, about 5 s): python3 tools/bench/test_gen_corpus.py

- same seed and size -> same bytes, for both shapes;
- --shape 2.0 writes none of the 2.1 record types and keeps generator 3;
- --shape 2.1 writes every record type of claude-code-2.1.md §3, no progress lines, the 2.1 line
  keys, `<synthetic>` lines with zero usage, and corpus.json's per-type counts add up;
- each session's last cost-state is >= the cost of its de-duplicated responses (message.id +
  requestId, largest total wins; sub-agent files included), and equal up to rounding when the
  session was not compacted.
"""

import glob
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
import gen_corpus  # noqa: E402

NEW = {"atis-latch", "api-request-shape", "api-request-blob", "api-request", "tools-used", "worktree-state",
       "attachment", "cost-state", "last-prompt", "mode", "permission-mode"}


def gen(out, *args):
    subprocess.run([sys.executable, os.path.join(HERE, "gen_corpus.py"), "--out", out, "--seed", "3", *args],
                   check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(out, "corpus.json")) as f:
        return json.load(f)


def tree(out):
    def read(f):
        with open(f, "rb") as fh:
            return fh.read()
    return {os.path.relpath(f, out): read(f)
            for f in sorted(glob.glob(os.path.join(out, "projects", "**", "*"), recursive=True)) if os.path.isfile(f)}


def records(out):
    for f in sorted(glob.glob(os.path.join(out, "projects", "**", "*.jsonl"), recursive=True)):
        with open(f, encoding="utf-8") as fh:
            lines = fh.readlines()
        for line in lines:
            yield f, json.loads(line)


class GenCorpus(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        t = cls.tmp.name
        cls.m20 = gen(t + "/a20", "--mb", "2")
        gen(t + "/b20", "--mb", "2")
        cls.m21 = gen(t + "/a21", "--mb", "12", "--shape", "2.1")
        gen(t + "/b21", "--mb", "12", "--shape", "2.1")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_deterministic(self):
        t = self.tmp.name
        self.assertEqual(tree(t + "/a20"), tree(t + "/b20"))
        self.assertEqual(tree(t + "/a21"), tree(t + "/b21"))

    def test_shape_20_unchanged(self):
        self.assertEqual(self.m20["params"]["generator"], 3)
        self.assertNotIn("shape", self.m20["params"])
        types = {r.get("type") for _, r in records(self.tmp.name + "/a20")}
        self.assertFalse(types & NEW, types & NEW)
        self.assertIn("progress", types)

    def test_shape_21_records(self):
        self.assertEqual(self.m21["params"]["generator"], 4)
        types = {}
        for _, r in records(self.tmp.name + "/a21"):
            t = r.get("type")
            types[t] = types.get(t, 0) + 1
            if t == "assistant":
                m = r["message"]
                if m["model"] == "<synthetic>":
                    self.assertTrue(r["isApiErrorMessage"])
                    self.assertNotIn("requestId", r)
                    u = m["usage"]
                    self.assertEqual(u["input_tokens"] + u["output_tokens"] + u["cache_creation_input_tokens"]
                                     + u["cache_read_input_tokens"], 0)
                else:
                    self.assertIn("apiBlockIndex", r)
                    self.assertIn("entrypoint", r)
                    self.assertIn("speed", m["usage"])
            elif t == "user" and isinstance(r["message"]["content"], str) and not r.get("isSidechain") \
                    and not r.get("isMeta") and not r.get("isCompactSummary") \
                    and not r["message"]["content"].startswith("<"):
                self.assertIn("promptId", r)
                self.assertIn("turnPosition", r)
        for t in NEW | {"user", "assistant", "system", "file-history-snapshot"}:
            self.assertIn(t, types)
        self.assertNotIn("progress", types)
        self.assertEqual(sum(v["lines"] for v in self.m21["types"].values()), self.m21["lines"])
        self.assertEqual(sum(v["bytes"] for v in self.m21["types"].values()), self.m21["bytes"])
        self.assertIn("assistant/<synthetic>", self.m21["types"])
        self.assertIn("attachment/hook_success", self.m21["types"])
        self.assertIn("system/stop_hook_summary", self.m21["types"])

    def test_cost_state_covers_responses(self):
        prices = gen_corpus.Prices(gen_corpus.PRICES)
        best, last_cs, compacted = {}, {}, set()
        for _, r in records(self.tmp.name + "/a21"):
            sid = r.get("sessionId")
            if r.get("type") == "assistant" and r["message"]["model"] != "<synthetic>":
                m = r["message"]
                u = m["usage"]
                total = (u["input_tokens"] + u["output_tokens"] + u["cache_creation_input_tokens"]
                         + u["cache_read_input_tokens"])
                k = (m["id"], r["requestId"])
                if k not in best or total > best[k][0]:
                    best[k] = (total, sid, m["model"], u)
            elif r.get("type") == "cost-state":
                last_cs[sid] = r["totalCostUSD"]
            elif r.get("subtype") == "compact_boundary":
                compacted.add(sid)
        lines = {}
        for _, sid, model, u in best.values():
            lines[sid] = lines.get(sid, 0.0) + prices.cost(model, u)
        self.assertEqual(set(lines), set(last_cs))
        for sid, c in lines.items():
            self.assertGreaterEqual(last_cs[sid] + 1e-9, c, sid)
            if sid in compacted:
                self.assertGreater(last_cs[sid], c + 1e-4, sid)
            else:
                self.assertLess(last_cs[sid] - c, 2e-7, sid)
        self.assertTrue(compacted)


if __name__ == "__main__":
    unittest.main()
