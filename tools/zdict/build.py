#!/usr/bin/env python3
"""Builds a zlib preset dictionary for `raw_traces.payload` (src/store/codec.rs).

    python3 tools/zdict/build.py --size 8192 --out schemas/zdict/records-N.dict STORE.db...

The training records are the payloads of the given Blueplane stores (`telemetry.db`), i.e.
records after the privacy rules, exactly as the fast path compresses them. `build.sh` makes
those stores from the real transcripts in ../shared/fixtures-external and the record shapes
of tests/data/claude-2.1. Never train on a generated benchmark corpus alone: the dictionary
would learn the generator and flatter the figures.

Method (a small version of zstd's COVER): count, for every 8-byte substring, how many records
contain it; cut every record into overlapping 128-byte segments; repeatedly take the segment
whose not-yet-covered substrings are shared by the most records, until the dictionary is
full. The best segments go last, nearest to the data (shorter match distances). Deterministic.
"""

import argparse
import collections
import glob
import os
import sqlite3
import zlib

K = 8
SEG = 128
STEP = 32


def adler32(b):
    return zlib.adler32(b) & 0xFFFFFFFF


def known_dictionaries():
    here = os.path.dirname(os.path.abspath(__file__))
    out = {}
    for p in sorted(glob.glob(os.path.join(here, "..", "..", "schemas", "zdict", "*.dict"))):
        d = open(p, "rb").read()
        out[adler32(d)] = d
    return out


def decode(payload, dicts):
    if len(payload) >= 6 and payload[1] & 0x20:
        d = dicts[int.from_bytes(payload[2:6], "big")]
        z = zlib.decompressobj(zdict=d)
        return z.decompress(payload) + z.flush()
    return zlib.decompress(payload)


def records(stores):
    dicts = known_dictionaries()
    out = []
    for s in stores:
        c = sqlite3.connect(f"file:{s}?mode=ro", uri=True)
        for (p,) in c.execute("SELECT payload FROM raw_traces ORDER BY seq"):
            out.append(decode(p, dicts))
    return out


def build(samples, size):
    df = collections.Counter()
    for s in samples:
        df.update({s[i : i + K] for i in range(len(s) - K + 1)})
    cands = {}
    for s in samples:
        for st in range(0, max(1, len(s) - SEG + 1), STEP):
            cands.setdefault(s[st : st + SEG], None)
    cands = list(cands)
    covered = set()
    chosen, total = [], 0
    while total < size and cands:
        best, best_score = None, 0
        for i, c in enumerate(cands):
            score = sum(df[c[j : j + K]] for j in range(len(c) - K + 1) if c[j : j + K] not in covered)
            if score > best_score:
                best, best_score = i, score
        if best is None:
            break
        c = cands.pop(best)
        chosen.append(c)
        total += len(c)
        covered.update(c[j : j + K] for j in range(len(c) - K + 1))
    return b"".join(reversed(chosen))[-size:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=8192)
    ap.add_argument("--out", required=True)
    ap.add_argument("stores", nargs="+")
    a = ap.parse_args()
    recs = records(a.stores)
    d = build(recs, a.size)
    with open(a.out, "wb") as f:
        f.write(d)
    raw = sum(len(r) for r in recs)
    plain = sum(len(zlib.compress(r, 6)) for r in recs)
    dicted = 0
    for r in recs:
        z = zlib.compressobj(6, zdict=d)
        dicted += len(z.compress(r) + z.flush())
    print(
        f"{a.out}: {len(d)} bytes, adler32 {adler32(d):#010x}; {len(recs)} training records, "
        f"{raw} bytes; zlib 6 on them: {plain / raw:.3f} plain, {dicted / raw:.3f} with it"
    )


if __name__ == "__main__":
    main()
