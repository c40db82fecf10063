//! A short concurrency soak of `blueplane serve --http` for CI: `tools/bench/http_soak.py`
//! (the official Python `mcp` SDK) with 10 Streamable HTTP sessions for 2 s calling a mix of
//! tools on the backfilled fixture store, while an eleventh session keeps starting a
//! 1,000-character search and cancelling it (`notifications/cancelled`). The script exits
//! non-zero on any failed call or when a client completed fewer than 3 calls. The long run
//! (50 clients, 30 s, with the idle-server stop check) is in docs/BENCHMARKS.md.

mod support;

use support::python::{backfilled, run_script};

#[test]
fn ten_clients_for_two_seconds_with_a_cancelled_slow_search() {
    let env = backfilled();
    run_script(
        &env,
        "../../tools/bench/http_soak.py",
        &[
            "--clients",
            "10",
            "--seconds",
            "2",
            "--calibrate",
            "1",
            "--min-calls",
            "3",
            "--no-stop-check",
        ],
        &[],
    );
}
