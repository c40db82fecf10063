#!/usr/bin/env python3
"""Copy a corpus without the record types Claude Code 2.1 added (gen_corpus.py --shape 2.1).

What is left is the same conversation (user, assistant, system, file-history-snapshot,
queue-operation lines), so every token count and cost derived from it must equal the
one derived from the full corpus: the new types carry no tokens of their own.

Usage: strip_corpus.py SRC DST [TYPE,TYPE…]   (SRC and DST hold projects/; DST is replaced;
       TYPEs: drop only these, e.g. api-request,api-request-blob,api-request-shape)
"""

import json
import os
import shutil
import sys

NEW = {"atis-latch", "api-request-shape", "api-request-blob", "api-request", "tools-used", "worktree-state",
       "attachment", "cost-state", "last-prompt", "mode", "permission-mode"}


def main():
    src, dst = sys.argv[1], sys.argv[2]
    drop = set(sys.argv[3].split(",")) if len(sys.argv) > 3 else NEW
    if os.path.exists(dst):
        shutil.rmtree(dst)
    kept = dropped = 0
    for root, _, files in os.walk(os.path.join(src, "projects")):
        out = os.path.join(dst, os.path.relpath(root, src))
        os.makedirs(out, exist_ok=True)
        for name in sorted(files):
            if not name.endswith(".jsonl"):
                continue
            lines = []
            for line in open(os.path.join(root, name), encoding="utf-8"):
                if json.loads(line).get("type") in drop:
                    dropped += 1
                else:
                    lines.append(line)
                    kept += 1
            with open(os.path.join(out, name), "w", encoding="utf-8") as f:
                f.writelines(lines)
    print(json.dumps({"kept": kept, "dropped": dropped}))


if __name__ == "__main__":
    main()
