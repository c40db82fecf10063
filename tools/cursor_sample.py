#!/usr/bin/env python3
"""Builds a Cursor data dir (the one holding `User/`) from samples/cursor/ for the demo.

    python3 tools/cursor_sample.py OUT_DIR

Writes real SQLite files with Cursor's schema (ItemTable and cursorDiskKV, WAL mode):
OUT_DIR/User/globalStorage/state.vscdb from samples/cursor/global.json and one workspace,
OUT_DIR/User/workspaceStorage/<hash>/{state.vscdb,workspace.json}, from
samples/cursor/workspace-state.json. The values are hand-written after the shapes in
../shared/docs/formats.md §C (no real Cursor database was available); the credential keys
in them are there to show that Blueplane never reads them.
"""
import json
import pathlib
import sqlite3
import sys

SAMPLES = pathlib.Path(__file__).resolve().parent.parent / "samples" / "cursor"
WORKSPACE_HASH = "9d8c7b6a5f4e3d2c1b0a998877665544"
FOLDER = "file:///home/dev/shop"


def build(db_path: pathlib.Path, tables: dict) -> None:
    db_path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        pathlib.Path(str(db_path) + suffix).unlink(missing_ok=True)
    con = sqlite3.connect(db_path)
    con.execute("PRAGMA journal_mode=WAL")
    for table in ("ItemTable", "cursorDiskKV"):
        con.execute(f"CREATE TABLE {table} (key TEXT UNIQUE ON CONFLICT REPLACE, value BLOB)")
        for key, value in tables.get(table, {}).items():
            text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
            con.execute(f"INSERT INTO {table} (key, value) VALUES (?, ?)", (key, text))
    con.commit()
    con.close()


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: cursor_sample.py OUT_DIR")
    out = pathlib.Path(sys.argv[1]) / "User"
    build(out / "globalStorage" / "state.vscdb", json.loads((SAMPLES / "global.json").read_text()))
    ws = out / "workspaceStorage" / WORKSPACE_HASH
    build(ws / "state.vscdb", json.loads((SAMPLES / "workspace-state.json").read_text()))
    (ws / "workspace.json").write_text(json.dumps({"folder": FOLDER}) + "\n")


if __name__ == "__main__":
    main()
