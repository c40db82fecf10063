//! `blueplane doctor`, through the real binary: on a healthy home (Redis up, hooks and MCP
//! server installed, the 2.1 fixture backfilled, no Cursor: a note) it says so and exits 0,
//! `--privacy` included; with the hooks missing, Redis stopped, events left in the spool and a secret
//! planted in the store, each problem is named with its fix and it exits 1; content captured
//! in `full` mode is reported by a `standard`-mode audit, with its places, never its text.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use support::Env;

/// A copy of the Claude Code 2.1 fixture as a CLAUDE_CONFIG_DIR of its own (install writes
/// `.claude.json` and `settings.json` there; capture reads its `projects/`).
fn config_dir() -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for e in std::fs::read_dir(from).expect("read fixture").flatten() {
            let p = e.path();
            if p.is_dir() {
                copy(&p, &to.join(e.file_name()));
            } else {
                std::fs::copy(&p, to.join(e.file_name())).expect("copy");
            }
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    copy(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/claude-2.1/projects"),
        &dir.path().join("projects"),
    );
    dir
}

struct Doctor {
    env: Env,
    cc: tempfile::TempDir,
    user_home: tempfile::TempDir,
}

impl Doctor {
    fn new() -> Doctor {
        let cc = config_dir();
        Doctor {
            env: Env::new(&[cc.path().to_path_buf()]),
            cc,
            user_home: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn cmd(&self, args: &[&str]) -> std::process::Command {
        let mut c = self.env.cmd(args);
        c.env("HOME", self.user_home.path())
            .env_remove("CURSOR_HOME")
            .env_remove("CURSOR_DATA_DIR")
            .env_remove("XDG_CONFIG_HOME");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = self.cmd(args).output().expect("run blueplane");
        assert!(
            out.status.success(),
            "blueplane {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        out
    }

    fn settings(&self) -> PathBuf {
        self.cc.path().join("settings.json")
    }

    /// `doctor --json ...` with its exit code.
    fn doctor(&self, extra: &[&str], mode: Option<&str>) -> (Option<i32>, Value) {
        let mut args = vec!["doctor", "--json"];
        args.extend_from_slice(extra);
        let mut c = self.cmd(&args);
        if let Some(m) = mode {
            c.env("BLUEPLANE_PRIVACY_MODE", m);
        }
        let out = c.output().expect("run doctor");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "doctor printed no JSON ({e}): {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code(), v)
    }
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {report:#}"))
}

fn problems(report: &Value) -> Vec<&Value> {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["level"] == "problem")
        .collect()
}

#[test]
fn a_healthy_home_is_healthy() {
    let d = Doctor::new();
    d.run(&["install", "claude"]);
    let s = d.env.json(&["backfill", "--json"]);
    assert_eq!(s["bad_lines"], 0, "{s}");
    let (code, report) = d.doctor(&["--privacy"], None);
    assert!(problems(&report).is_empty(), "{report:#}");
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["healthy"], true);
    for name in [
        "redis-server",
        "redis",
        "capture dirs",
        "mcp server",
        "hooks",
        "status line",
        "spool",
        "database",
        "queue",
        "slow path",
        "dead letters",
        "last event",
        "metrics",
        "privacy",
    ] {
        assert_eq!(check(&report, name)["level"], "ok", "{name}: {report:#}");
    }
    // No Cursor on this machine: one note, no problem.
    assert_eq!(check(&report, "cursor")["level"], "note", "{report:#}");
    assert!(
        check(&report, "privacy")["message"]
            .as_str()
            .unwrap()
            .contains("SQLite and Redis")
    );
    let scanned = &report["privacy"]["scanned"];
    assert!(scanned["raw_traces"].as_u64().unwrap() > 0, "{scanned}");
    assert!(scanned["messages"].as_u64().unwrap() > 0, "{scanned}");
    // People get one line per check and the verdict.
    let out = d.run(&["doctor"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("ok       hooks: all 32 events")),
        "{text}"
    );
    assert_eq!(text.lines().last(), Some("healthy"), "{text}");
}

#[test]
fn missing_hooks_a_stopped_redis_a_full_spool_and_a_planted_secret_are_each_named_with_their_fix() {
    let mut d = Doctor::new();
    d.env.json(&["backfill", "--json"]);
    // A secret a store could hold from an older blueplane (capture would have redacted it).
    let secret = format!("AKIA{}", "IOSFODNN7EXAMPLE");
    let db = rusqlite::Connection::open(d.env.db()).expect("open db");
    let rowid: i64 = db
        .query_row(
            "SELECT min(rowid) FROM messages WHERE text <> ''",
            [],
            |r| r.get(0),
        )
        .expect("a message");
    db.execute(
        "UPDATE messages SET text = text || ' my key is ' || ?1 WHERE rowid = ?2",
        rusqlite::params![secret, rowid],
    )
    .expect("plant");
    drop(db);
    // A hook event that never reached Redis.
    let spool = d.env.home.path().join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    std::fs::write(
        spool.join("claude-1.jsonl"),
        "{\"hook_event_name\":\"Stop\"}\n",
    )
    .unwrap();
    d.env.redis.kill();

    let (code, report) = d.doctor(&["--privacy"], None);
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(report["healthy"], false);
    let fix = |name: &str| {
        let c = check(&report, name);
        assert_eq!(c["level"], "problem", "{name}: {report:#}");
        c["fix"].as_str().unwrap_or_default().to_string()
    };
    assert!(fix("hooks").contains("blueplane install claude"));
    assert!(
        check(&report, "hooks")["message"]
            .as_str()
            .unwrap()
            .contains("32 of 32 events have no blueplane hook")
    );
    assert!(fix("mcp server").contains("blueplane install claude"));
    assert!(fix("redis").contains("REDIS_URL"), "{report:#}");
    assert!(fix("spool").contains("blueplane ingest"));
    assert!(fix("privacy secrets").contains("blueplane backfill"));
    let secrets = check(&report, "privacy secrets")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(secrets.contains("aws_access_key_id"), "{secrets}");
    let at = format!("messages rowid {rowid} (text)");
    assert!(
        report["privacy"]["places"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["at"] == at.as_str()),
        "{report:#}"
    );
    assert_eq!(report["privacy"]["secrets"]["aws_access_key_id"], 1);

    // The human form: every problem on one line with its fix; the secret never printed.
    let out = d.cmd(&["doctor", "--privacy"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let problem_lines: Vec<&str> = text.lines().filter(|l| l.starts_with("PROBLEM")).collect();
    assert_eq!(problem_lines.len(), problems(&report).len(), "{text}");
    assert!(
        problem_lines.iter().all(|l| l.contains(" — fix: ")),
        "{text}"
    );
    assert!(
        text.contains(&format!("found at {at}: secret aws_access_key_id")),
        "{text}"
    );
    for shown in [text.to_string(), report.to_string()] {
        assert!(!shown.contains(&secret), "the secret itself was printed");
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("doctor found"), "{err}");
}

#[test]
fn content_captured_in_full_mode_is_reported_by_a_standard_mode_audit() {
    let d = Doctor::new();
    let out = d
        .cmd(&["backfill", "--json"])
        .env("BLUEPLANE_PRIVACY_MODE", "full")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, report) = d.doctor(&["--privacy"], Some("standard"));
    assert_eq!(code, Some(1));
    let c = check(&report, "privacy mode");
    assert_eq!(c["level"], "problem", "{report:#}");
    let excluded = &report["privacy"]["excluded"];
    for what in [
        "tool input command",
        "tool input prompt",
        "tool output stdout",
        "tool result content",
        "thinking",
    ] {
        assert!(
            excluded[what].as_u64().unwrap_or(0) > 0,
            "{what}: {excluded}"
        );
    }
    let places = report["privacy"]["places"].as_array().unwrap();
    assert!(
        places
            .iter()
            .any(|p| p["at"].as_str().unwrap().starts_with("raw_traces seq ")),
        "{places:?}"
    );
    assert!(
        places.iter().any(
            |p| p["at"].as_str().unwrap().starts_with("redis bp:events ")
                || p["at"].as_str().unwrap().starts_with("tool_calls ")
        ),
        "{places:?}"
    );
    // The same store audited under the mode it was captured in is clean.
    let (_, report) = d.doctor(&["--privacy"], Some("full"));
    assert_eq!(check(&report, "privacy")["level"], "ok", "{report:#}");
}

#[test]
fn hooks_of_another_binary_are_stale() {
    let d = Doctor::new();
    d.run(&["install", "claude"]);
    let text = std::fs::read_to_string(d.settings()).unwrap();
    let exe = std::fs::canonicalize(support::BIN).unwrap();
    std::fs::write(
        d.settings(),
        text.replace(&exe.display().to_string(), "/old/bin/blueplane"),
    )
    .unwrap();
    let (code, report) = d.doctor(&[], None);
    assert_eq!(code, Some(1));
    let h = check(&report, "hooks");
    assert_eq!(h["level"], "problem");
    assert!(
        h["message"]
            .as_str()
            .unwrap()
            .contains("/old/bin/blueplane"),
        "{h}"
    );
    assert!(
        h["fix"]
            .as_str()
            .unwrap()
            .contains("blueplane install claude")
    );
    assert_eq!(check(&report, "status line")["level"], "problem");
    // The MCP server still runs this binary.
    assert_eq!(check(&report, "mcp server")["level"], "ok");
}

/// The installed hook commands, run the way Claude Code runs them (`sh -c`, with none of
/// the installer's environment): every payload of the 2.1.328 fixtures reaches the home and
/// Redis named in the command, and what they stored passes the standard-mode audit.
#[test]
fn installed_hooks_run_by_sh_store_into_the_installed_home_and_pass_the_audit() {
    use std::io::Write as _;
    use std::process::Stdio;
    let d = Doctor::new();
    d.run(&["install", "claude"]);
    let settings: Value =
        serde_json::from_slice(&std::fs::read(d.settings()).unwrap()).expect("settings");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/hooks/claude-2.1.328");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("hook fixtures")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    let mut ran = 0;
    for f in files {
        let payload = std::fs::read(&f).unwrap();
        let v: Value = serde_json::from_slice(&payload).expect("fixture JSON");
        let event = v["hook_event_name"].as_str().expect("event name");
        let Some(groups) = settings["hooks"][event].as_array() else {
            assert!(
                blueplane::hook::events::CLAUDE_EVENTS_NOT_INSTALLED.contains(&event),
                "no hook installed for {event}"
            );
            continue;
        };
        let command = groups[0]["hooks"][0]["command"].as_str().expect("command");
        let mut child = std::process::Command::new("sh")
            .args(["-c", command])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", d.user_home.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sh -c");
        child.stdin.take().unwrap().write_all(&payload).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{event}: {out:?}");
        assert!(out.stdout.is_empty(), "{event} printed on stdout");
        ran += 1;
    }
    assert!(ran >= 30, "only {ran} hook payloads ran");
    assert!(
        !d.env
            .home
            .path()
            .join("spool")
            .read_dir()
            .is_ok_and(|mut r| r.any(|e| e.is_ok_and(|e| e.metadata().is_ok_and(|m| m.len() > 0)))),
        "the hooks reached Redis, nothing was spooled"
    );
    d.env.json(&["backfill", "--json"]);
    assert_eq!(
        support::count(
            &d.env.db(),
            "SELECT count(*) FROM raw_traces_text WHERE source_kind = 'hook'"
        ),
        ran
    );
    let (code, report) = d.doctor(&["--privacy"], None);
    assert!(problems(&report).is_empty(), "{report:#}");
    assert_eq!(code, Some(0));
}
