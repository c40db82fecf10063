//! The MCP server as an independent client sees it: the official Python `mcp` SDK drives
//! `blueplane serve` over stdio (`tests/mcp/test_stdio.py`), and a raw-JSON-RPC script checks
//! that stdout carries nothing but JSON-RPC and that the server exits when stdin closes
//! (`tests/mcp/test_stdout_pure.py`). BRIEF §2 invariants 2, 5 and 10, §5.
//!
//! Both run on a backfill of the `spotter` and `ccusage` fixture trees, with a private
//! redis-server and a temp `BLUEPLANE_HOME`. The interpreter is `$BLUEPLANE_TEST_PYTHON`, else
//! `<repo>/.venv/bin/python`; `tools/test.sh` creates that venv with the pinned `mcp`.

mod support;

use support::python::{backfilled, run_script};

#[test]
fn python_sdk_drives_the_six_tools_over_stdio() {
    let env = backfilled();
    run_script(&env, "test_stdio.py", &[], &[]);
}

#[test]
fn stdout_is_json_rpc_only_and_serve_exits_on_stdin_eof() {
    let env = backfilled();
    run_script(&env, "test_stdout_pure.py", &[], &[]);
}
