//! A short concurrency soak of `blueplane serve --http` for CI: `tools/bench/http_soak.py`
//! (the official Python `mcp` SDK) with 10 Streamable HTTP sessions for 2 s calling a mix of
//! tools on the backfilled fixture store, while an eleventh session keeps starting a
//! 1,000-character search and cancelling it (`notifications/cancelled`). The script exits
//! non-zero on any failed call or when a client completed fewer than 3 calls.
//!
//! A second test gives the slow search real work (a 20 MB `tools/bench/gen_corpus.py` corpus,
//! backfilled) and lets the script check, on the idle server, that the search abandoned by
//! `notifications/cancelled` and the one abandoned by a disconnect stop using CPU (the
//! script fails when the server spends over half of the uncancelled call's CPU time after
//! the cancel). The long run (50 clients, 30 s, 200 MB) is in docs/BENCHMARKS.md.
//!
//! The two run one after the other ([`ONE_AT_A_TIME`]): the second's corpus generation and
//! backfill took the soak's server the CPU it needs to answer 3 calls per client in 2 s.

mod support;

use std::process::{Command, Stdio};

use support::Env;
use support::python::{backfilled, python, run_script};

/// Held by each test for its whole run.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn ten_clients_for_two_seconds_with_a_cancelled_slow_search() {
    let _one = one_at_a_time();
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

#[test]
fn a_cancelled_or_disconnected_slow_search_stops_on_the_server() {
    let _one = one_at_a_time();
    let corpus = tempfile::tempdir().expect("tempdir");
    let made = Command::new(python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tools/bench/gen_corpus.py"
        ))
        .args(["--mb", "20", "--out"])
        .arg(corpus.path())
        .stdin(Stdio::null())
        .output()
        .expect("run gen_corpus.py");
    assert!(
        made.status.success(),
        "gen_corpus.py: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let env = Env::new(&[corpus.path().to_path_buf()]);
    let summary = env.json(&["backfill", "--json"]);
    assert_eq!(summary["bad_lines"], 0, "backfill: {summary}");
    assert!(
        summary["sessions"].as_i64().unwrap_or(0) > 50,
        "backfill: {summary}"
    );
    run_script(
        &env,
        "../../tools/bench/http_soak.py",
        &[
            "--clients",
            "2",
            "--seconds",
            "1",
            "--calibrate",
            "1",
            "--cancel-after",
            "0.05",
        ],
        &[],
    );
}
