//! Running the Python MCP test scripts in `tests/mcp/` against the real binary: finding an
//! interpreter with the official `mcp` SDK, the backfilled fixture data they check, and a
//! runner that fails with the script's output. Used by `mcp_python.rs` and `mcp_http.rs`.
//!
//! The interpreter is `$BLUEPLANE_TEST_PYTHON`, else `<repo>/.venv/bin/python`;
//! `tools/test.sh` creates that venv with the pinned `mcp`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{BIN, Env, fixtures};

pub const MISSING: &str = "Python mcp client missing: run tools/test.sh (it creates .venv)";
/// What test_stdio.py exits with when `import mcp` (or jsonschema, anyio) fails.
const EXIT_CLIENT_MISSING: i32 = 3;
/// The scripts time themselves out well before this; it only guards against a wedged run.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(300);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The interpreter with `mcp` and `jsonschema` importable, or a failure that says how to get it.
pub fn python() -> PathBuf {
    let candidate = match std::env::var_os("BLUEPLANE_TEST_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => repo().join(".venv/bin/python"),
    };
    assert!(
        candidate.exists(),
        "{MISSING} (no interpreter at {})",
        candidate.display()
    );
    // `import mcp` alone takes seconds; finding the modules is enough here. A module that is
    // found but fails to import makes test_stdio.py exit with EXIT_CLIENT_MISSING.
    let probe = "import importlib.util as u, sys; \
                 missing = [m for m in ('mcp', 'jsonschema', 'anyio') if u.find_spec(m) is None]; \
                 sys.exit('cannot import ' + ', '.join(missing) if missing else 0)";
    let out = Command::new(&candidate)
        .args(["-c", probe])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{MISSING} (cannot run {}: {e})", candidate.display()));
    assert!(
        out.status.success(),
        "{MISSING} ({}: {})",
        candidate.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    candidate
}

/// A private Redis and home holding the backfilled fixture trees.
pub fn backfilled() -> Env {
    let fx = fixtures();
    let started = Instant::now();
    let env = Env::new(&[fx.join("spotter"), fx.join("ccusage")]);
    let summary = env.json(&["backfill", "--json"]);
    eprintln!(
        "redis + backfill of spotter + ccusage: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        summary["sessions"], 6,
        "backfill of spotter + ccusage: {summary}"
    );
    assert_eq!(summary["bad_lines"], 0, "backfill: {summary}");
    env
}

/// Runs `tests/mcp/<script> --bin <blueplane> <args>` with the environment `env.cmd` would give
/// the binary plus `extra_env`, prints its output, and fails unless it exits 0.
pub fn run_script(env: &Env, script: &str, args: &[&str], extra_env: &[(&str, &str)]) {
    let python = python();
    let path = repo().join("tests/mcp").join(script);
    let mut cmd = Command::new(&python);
    cmd.arg(&path)
        .arg("--bin")
        .arg(BIN)
        .args(args)
        .env("BLUEPLANE_BIN", BIN);
    let like_bin = env.cmd(&[]);
    for (k, v) in like_bin.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(repo())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());

    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{MISSING} (cannot run {}: {e})", python.display()));
    let drain = |mut r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for python") {
            break Some(s);
        }
        if started.elapsed() > SCRIPT_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(50));
    };
    let (out, err) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    eprintln!(
        "--- {script} ({:.1} s) stdout ---\n{out}--- {script} stderr ---\n{err}",
        started.elapsed().as_secs_f64()
    );
    match status {
        Some(s) if s.success() => {}
        Some(s) if s.code() == Some(EXIT_CLIENT_MISSING) => panic!("{MISSING} ({})", err.trim()),
        Some(s) => panic!("{script} failed ({s}):\n{out}\n--- stderr ---\n{err}"),
        None => panic!(
            "{script} did not finish within {} s:\n{out}\n--- stderr ---\n{err}",
            SCRIPT_DEADLINE.as_secs()
        ),
    }
}
