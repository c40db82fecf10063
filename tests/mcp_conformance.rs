//! The official MCP conformance suite (`@modelcontextprotocol/conformance`) in server mode
//! against `blueplane serve --http`: the active suite must match
//! `tests/mcp/conformance-expected-failures.yml` exactly (the suite itself fails on a scenario
//! that fails without being listed and on a listed one that passes), so a regression in the
//! initialize handshake, ping, tools/list, SSE streams or DNS-rebinding protection fails here.
//!
//! The suite needs Node.js 22 or newer: `$BLUEPLANE_TEST_CONFORMANCE` is its bin and
//! `$BLUEPLANE_TEST_NODE` the node that runs it (`tools/test.sh` installs both,
//! pinned). Skip-safe like `claude_e2e.rs`: without them the test prints a note and passes,
//! unless `CI` or `BLUEPLANE_REQUIRE_CONFORMANCE=1` is set, then it fails.

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::Env;
use support::http::Server;

const CONFORMANCE_VERSION: &str = "0.1.16";
/// The active server suite takes about a second; this guards a wedged run.
const DEADLINE: Duration = Duration::from_secs(300);

/// (node, conformance bin), or `None` (after a note) when the test is not required.
fn conformance() -> Option<(PathBuf, PathBuf)> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
    };
    if let (Some(node), Some(bin)) = (
        var("BLUEPLANE_TEST_NODE"),
        var("BLUEPLANE_TEST_CONFORMANCE"),
    ) {
        return Some((node, bin));
    }
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    let required = std::env::var("BLUEPLANE_REQUIRE_CONFORMANCE").is_ok_and(|v| v == "1");
    assert!(
        !(ci || required),
        "BLUEPLANE_TEST_CONFORMANCE / BLUEPLANE_TEST_NODE are not set but CI or \
         BLUEPLANE_REQUIRE_CONFORMANCE=1 requires the MCP conformance suite: run tools/test.sh, \
         which installs @modelcontextprotocol/conformance@{CONFORMANCE_VERSION} and Node.js 22"
    );
    eprintln!(
        "note: mcp_conformance skipped: BLUEPLANE_TEST_CONFORMANCE / BLUEPLANE_TEST_NODE are not set (tools/test.sh \
         installs @modelcontextprotocol/conformance@{CONFORMANCE_VERSION} and sets it)"
    );
    None
}

fn expected_failures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/conformance-expected-failures.yml")
}

#[test]
fn conformance_suite_matches_the_expected_failures() {
    let Some((node, bin)) = conformance() else {
        return;
    };
    let started = Instant::now();
    let claude = tempfile::tempdir().expect("tempdir");
    let env = Env::new(&[claude.path().to_path_buf()]);
    let server = Server::start(&env, &[], &[]);
    let results = tempfile::tempdir().expect("tempdir");

    let mut child = Command::new(&node)
        .arg(&bin)
        .args(["server", "--url", &server.url(), "--expected-failures"])
        .arg(expected_failures())
        .arg("--output-dir")
        .arg(results.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {} {}: {e}", node.display(), bin.display()));
    let drain = |mut r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut b = Vec::new();
            let _ = r.read_to_end(&mut b);
            String::from_utf8_lossy(&b).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout piped")));
    let err = drain(Box::new(child.stderr.take().expect("stderr piped")));
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if started.elapsed() >= DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("conformance suite still running after {DEADLINE:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let (out, err) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    let summary = out
        .find("=== SUMMARY ===")
        .map_or(out.as_str(), |i| &out[i..]);
    eprintln!(
        "conformance {CONFORMANCE_VERSION} against {}: {status} in {:.1} s\n{summary}",
        server.url(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        status.success(),
        "the conformance suite does not match {} (an unlisted failure or a listed scenario \
         that now passes):\n{out}\nstderr:\n{err}",
        expected_failures().display()
    );
    for passing in [
        "server-initialize",
        "ping",
        "tools-list",
        "dns-rebinding-protection",
    ] {
        assert!(
            summary
                .lines()
                .any(|l| l.contains(&format!("{passing}: ")) && l.contains(", 0 failed")),
            "scenario {passing} did not run and pass:\n{summary}"
        );
    }
}
