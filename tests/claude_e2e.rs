//! The real Claude Code CLI, end to end (issue 6): the pinned `claude` binary
//! (`$BLUEPLANE_TEST_CLAUDE`, installed by `tools/test.sh`) runs `claude -p` sessions against
//! a scripted stub of the Messages API (`tests/claude/stub_api.py`) with Blueplane registered
//! by `blueplane install claude` in a temporary `CLAUDE_CONFIG_DIR`, and the test checks that Blueplane captured exactly what
//! the stub sent.
//!
//! The sessions: a built-in tool that succeeds and one that fails (Bash `echo hi`, `exit 3`), a
//! foreground sub-agent that runs Bash itself, `/compact` on the first session
//! (`--resume`), and — from another project after a backfill — `mcp__blueplane__get_metrics`
//! grouped by session for the first project, whose answer the stub records from the next
//! request. Checks: `claude mcp list` shows blueplane connected; every response in
//! `api_responses` equals the stub's ledger (id, session, sub-agent, four token counts) and
//! nothing else is there — the compaction response is in no assistant line (claude-code-2.1.md
//! §3); per-session tokens and counts in `sessions --json` and `report session --json`; the MCP
//! answer equals the ledger of the sessions before it; our cost equals Claude Code's
//! `cost-state` for sessions without compaction and falls short by the compaction call for the
//! one with it; 0 bad lines, 0 dead letters; every hook Blueplane registered that fired is stored
//! once (a logging hook beside each of Blueplane's knows which fired); `reported_cost_usd`
//! equals the last `cost-state`.
//!
//! Offline only: the stub binds 127.0.0.1, Claude Code gets the quiet variables of
//! claude-code-2.1.md §1, and where `unshare -n` works (root) the stub runs in a fresh network
//! namespace with only loopback up and every `claude` command joins it with `nsenter -n`, so
//! nothing can leave the machine even if a variable stopped working. Redis is reached on a unix
//! socket, which crosses network namespaces.
//!
//! Skip-safe: without `BLUEPLANE_TEST_CLAUDE` the test prints a note and passes, unless `CI` or
//! `BLUEPLANE_REQUIRE_CLAUDE=1` is set, then it fails. `BLUEPLANE_E2E_KEEP=1` keeps the temp
//! dir (stub request log, ledger, transcripts, hook log) and prints where it is.

mod support;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Env, count};

const CLAUDE_VERSION: &str = "2.1.328";
/// Priced in the embedded table (the CLI's default model is not).
const MODEL: &str = "claude-sonnet-4-5-20250929";
const API_KEY: &str = "sk-ant-e2e-offline-test-key-0000000000";
/// One `claude` command never takes this long against the stub; it guards a wedged run.
const CLAUDE_DEADLINE: Duration = Duration::from_secs(90);

/// The claude binary, or `None` (after a note) when the test is not required.
fn claude_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BLUEPLANE_TEST_CLAUDE").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    let required = std::env::var("BLUEPLANE_REQUIRE_CLAUDE").is_ok_and(|v| v == "1");
    assert!(
        !(ci || required),
        "BLUEPLANE_TEST_CLAUDE is not set but CI or BLUEPLANE_REQUIRE_CLAUDE=1 requires the \
         Claude Code end-to-end test: run tools/test.sh, which installs @anthropic-ai/claude-code@{CLAUDE_VERSION} \
         and sets it"
    );
    eprintln!(
        "note: claude_e2e skipped: BLUEPLANE_TEST_CLAUDE is not set (tools/test.sh installs \
         Claude Code {CLAUDE_VERSION} and sets it)"
    );
    None
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn stub_script() -> PathBuf {
    repo().join("tests/claude/stub_api.py")
}

/// `'…'` for a POSIX shell.
fn sh_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// Runs `cmd` to completion within `limit`, stdout and stderr captured; kills it and panics
/// with what it printed when it takes longer.
fn run_within(mut cmd: Command, what: &str, limit: Duration) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let drain = |mut r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut b = Vec::new();
            let _ = r.read_to_end(&mut b);
            b
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout piped")));
    let err = drain(Box::new(child.stderr.take().expect("stderr piped")));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what}: still running after {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&err.join().unwrap_or_default())
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// One `claude -p` run as `--output-format json` reports it.
struct Run {
    session_id: String,
    total_cost_usd: f64,
}

/// Everything one test run owns: temp dirs, Redis and Blueplane's home (`env`), the stub.
struct World {
    root: tempfile::TempDir,
    env: Env,
    claude: PathBuf,
    home: PathBuf,
    config: PathBuf,
    tmp: PathBuf,
    alpha: PathBuf,
    beta: PathBuf,
    ledger: PathBuf,
    requests: PathBuf,
    hook_log: PathBuf,
    stub: Child,
    port: u16,
    /// `unshare -n` fences the stub and every `claude` command in one loopback-only namespace.
    netns: bool,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.stub.kill();
        let _ = self.stub.wait();
        if std::env::var("BLUEPLANE_E2E_KEEP").is_ok_and(|v| v == "1") {
            self.root.disable_cleanup(true);
            eprintln!("claude_e2e: kept {}", self.root.path().display());
        }
    }
}

/// Root, `unshare`, `nsenter` and `ip` all work: a namespace with only loopback can be made.
fn netns_available() -> bool {
    Command::new("unshare")
        .args(["-n", "sh", "-c", "ip link set lo up"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
        && Command::new("nsenter")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

impl World {
    fn start(claude: PathBuf) -> World {
        let root = tempfile::Builder::new()
            .prefix("bp-claude-e2e-")
            .tempdir()
            .expect("tempdir");
        let dir = |p: &str| {
            let d = root.path().join(p);
            std::fs::create_dir_all(&d).expect("mkdir");
            d
        };
        let (home, config, tmp) = (dir("home"), dir("claude-config"), dir("tmp"));
        let (alpha, beta, stub_dir) = (dir("work/proj-alpha"), dir("work/proj-beta"), dir("stub"));
        let env = Env::new(std::slice::from_ref(&config));
        let ledger = stub_dir.join("ledger.json");
        let requests = stub_dir.join("requests.jsonl");
        let port_file = stub_dir.join("port");
        let netns = netns_available();
        let mut cmd = if netns {
            let mut c = Command::new("unshare");
            c.args(["-n", "sh", "-c", r#"ip link set lo up && exec "$0" "$@""#]);
            c.arg("python3");
            c
        } else {
            Command::new("python3")
        };
        let stub = cmd
            .arg(stub_script())
            .arg("serve")
            .arg("--port-file")
            .arg(&port_file)
            .arg("--ledger")
            .arg(&ledger)
            .arg("--requests")
            .arg(&requests)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(stub_dir.join("stub.log")).expect("stub log"),
            ))
            .spawn()
            .expect("start the Messages API stub (python3)");
        let mut world = World {
            hook_log: root.path().join("hooks.jsonl"),
            root,
            env,
            claude,
            home,
            config,
            tmp,
            alpha,
            beta,
            ledger,
            requests,
            stub,
            port: 0,
            netns,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        world.port = loop {
            if let Some(p) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                break p;
            }
            if let Ok(Some(status)) = world.stub.try_wait() {
                panic!(
                    "the stub exited with {status}: {}",
                    std::fs::read_to_string(stub_dir.join("stub.log")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the stub did not listen within 10 s"
            );
            thread::sleep(Duration::from_millis(20));
        };
        world
    }

    /// A `claude` command in `cwd`, inside the stub's network namespace when there is one, with
    /// nothing of the caller's environment but `PATH`.
    fn claude_cmd(&self, cwd: &Path, args: &[&str]) -> Command {
        let mut c = if self.netns {
            let mut c = Command::new("nsenter");
            c.arg("-t")
                .arg(self.stub.id().to_string())
                .arg("-n")
                .arg("--")
                .arg(&self.claude);
            c
        } else {
            Command::new(&self.claude)
        };
        c.args(args)
            .current_dir(cwd)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("CLAUDE_CONFIG_DIR", &self.config)
            .env("TMPDIR", &self.tmp)
            .env("CLAUDE_CODE_TMPDIR", &self.tmp)
            .env(
                "ANTHROPIC_BASE_URL",
                format!("http://127.0.0.1:{}", self.port),
            )
            .env("ANTHROPIC_API_KEY", API_KEY)
            .env("DISABLE_TELEMETRY", "1")
            .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
            .env("DISABLE_AUTOUPDATER", "1")
            .env("DISABLE_ERROR_REPORTING", "1")
            // Root may bypass permissions only in a declared sandbox (claude-code-2.1.md §1).
            .env("IS_SANDBOX", "1")
            // Inherited by the MCP server and the hooks Claude Code starts.
            .env("BLUEPLANE_HOME", self.env.home.path())
            .env("REDIS_URL", self.env.redis.url())
            .env("BLUEPLANE_LOG", "warn")
            .env("TZ", "UTC");
        c
    }

    fn claude_ok(&self, cwd: &Path, args: &[&str]) -> Output {
        let what = format!("claude {args:?}");
        let out = run_within(self.claude_cmd(cwd, args), &what, CLAUDE_DEADLINE);
        assert!(
            out.status.success(),
            "{what} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        out
    }

    /// `claude -p PROMPT` (plus `extra`) in `cwd`, non-interactive, JSON result.
    fn prompt(&self, cwd: &Path, prompt: &str, extra: &[&str]) -> Run {
        let mut args = vec!["-p"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[
            prompt,
            "--output-format",
            "json",
            "--model",
            MODEL,
            "--dangerously-skip-permissions",
        ]);
        let out = self.claude_ok(cwd, &args);
        let result: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "claude {args:?} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        assert_eq!(result["is_error"], false, "claude {args:?}: {result}");
        Run {
            session_id: result["session_id"]
                .as_str()
                .expect("session_id in the result")
                .to_string(),
            total_cost_usd: result["total_cost_usd"].as_f64().expect("total_cost_usd"),
        }
    }

    fn blueplane(&self, args: &[&str]) -> Command {
        let mut c = self.env.cmd(args);
        c.env("HOME", &self.home);
        c
    }

    /// Registers Blueplane with Claude Code (MCP server, hooks, status line) and a logging
    /// hook beside each of its hooks.
    fn register(&self) {
        let out = self
            .blueplane(&["install", "claude"])
            .output()
            .expect("run blueplane install claude");
        assert!(
            out.status.success(),
            "blueplane install claude failed: {}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            self.add_logging_hooks(),
            "install claude registered no hooks"
        );
    }

    /// Puts the stub's logging hook beside every Blueplane hook in `settings.json` (same event,
    /// same matcher group), so the log names exactly the hook runs Blueplane was given.
    /// Returns whether Blueplane hooks were found.
    fn add_logging_hooks(&self) -> bool {
        let path = self.config.join("settings.json");
        let mut settings: Value = match std::fs::read_to_string(&path) {
            Ok(s) => serde_json::from_str(&s).expect("settings.json is JSON"),
            Err(_) => json!({}),
        };
        let logger = json!({
            "type": "command",
            "command": format!(
                "python3 {} log-hook {}",
                sh_quote(&stub_script()),
                sh_quote(&self.hook_log)
            ),
        });
        let mut found = false;
        if let Some(hooks) = settings.get_mut("hooks").and_then(Value::as_object_mut) {
            for groups in hooks.values_mut().filter_map(Value::as_array_mut) {
                for group in groups.iter_mut() {
                    let Some(list) = group.get_mut("hooks").and_then(Value::as_array_mut) else {
                        continue;
                    };
                    if list.iter().any(is_blueplane_hook) {
                        list.push(logger.clone());
                        found = true;
                    }
                }
            }
        }
        std::fs::write(
            &path,
            serde_json::to_vec_pretty(&settings).expect("serialise settings"),
        )
        .expect("write settings.json");
        found
    }

    fn ledger(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(&self.ledger).expect("read the ledger"))
            .expect("the ledger is JSON")
    }

    /// The hook payloads the logging hook saw, in order.
    fn hook_log(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.hook_log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("hook log line is JSON"))
            .collect()
    }

    /// Claude Code's main transcript of a session.
    fn transcript(&self, session_id: &str) -> PathBuf {
        let projects = self.config.join("projects");
        std::fs::read_dir(&projects)
            .expect("projects dir")
            .flatten()
            .map(|d| d.path().join(format!("{session_id}.jsonl")))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("no transcript of {session_id} under {}", projects.display()))
    }

    /// `totalCostUSD` of every `cost-state` line of a session's transcript, in order.
    fn cost_states(&self, session_id: &str) -> Vec<f64> {
        std::fs::read_to_string(self.transcript(session_id))
            .expect("read transcript")
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["type"] == "cost-state")
            .map(|v| v["totalCostUSD"].as_f64().expect("totalCostUSD"))
            .collect()
    }
}

/// A hook handler that runs this blueplane binary's `hook claude`.
fn is_blueplane_hook(handler: &Value) -> bool {
    handler["command"]
        .as_str()
        .is_some_and(|c| c.contains(support::BIN) && c.contains("hook claude"))
}

/// Stops a background `blueplane ingest` with SIGTERM, as a user would.
fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            assert!(status.success(), "blueplane ingest exited with {status}");
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("blueplane ingest did not stop within 15 s of SIGTERM");
}

/// Token sums of ledger responses: (input, output, cache_creation, cache_read, responses).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tokens {
    input: i64,
    output: i64,
    cache_creation: i64,
    cache_read: i64,
    responses: i64,
}

impl Tokens {
    fn add(&mut self, usage: &Value) {
        let n = |k: &str| usage[k].as_i64().expect("usage count");
        self.input += n("input_tokens");
        self.output += n("output_tokens");
        self.cache_creation += n("cache_creation_input_tokens");
        self.cache_read += n("cache_read_input_tokens");
        self.responses += 1;
    }

    /// The same figures from a Blueplane `tokens` object and its `responses`.
    fn of_row(row: &Value) -> Tokens {
        let t = &row["tokens"];
        let n = |v: &Value| v.as_i64().unwrap_or_else(|| panic!("a count in {row}"));
        Tokens {
            input: n(&t["input"]),
            output: n(&t["output"]),
            cache_creation: n(&t["cache_creation"]),
            cache_read: n(&t["cache_read"]),
            responses: n(&row["responses"]),
        }
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn real_claude_code_sessions_are_captured_exactly() {
    let Some(claude) = claude_binary() else {
        return;
    };
    let started = Instant::now();
    let w = World::start(claude);
    eprintln!(
        "claude_e2e: stub on 127.0.0.1:{} ({})",
        w.port,
        if w.netns {
            "unshare -n: loopback-only network namespace"
        } else {
            "no network namespace (not root or unshare unavailable): environment only"
        }
    );

    let version = w.claude_ok(&w.alpha, &["--version"]);
    assert!(
        String::from_utf8_lossy(&version.stdout).starts_with(CLAUDE_VERSION),
        "BLUEPLANE_TEST_CLAUDE is not Claude Code {CLAUDE_VERSION}: {}",
        String::from_utf8_lossy(&version.stdout)
    );

    w.register();
    let list = w.claude_ok(&w.alpha, &["mcp", "list"]);
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.lines()
            .any(|l| l.starts_with("blueplane:") && l.contains("✔ Connected")),
        "claude mcp list does not show blueplane connected:\n{list}"
    );

    let ingest = w
        .blueplane(&["ingest"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start blueplane ingest");

    // The sessions (the stub's scripts are named by the E2E-* markers).
    let s1 = w.prompt(&w.alpha, "E2E-TOOLS run echo hi, then exit 3", &[]);
    let s2 = w.prompt(&w.alpha, "E2E-AGENT let a sub-agent echo", &[]);
    let s1c = w.prompt(&w.alpha, "/compact", &["--resume", &s1.session_id]);
    assert_eq!(
        s1c.session_id, s1.session_id,
        "--resume keeps the session id"
    );
    // Everything so far is in SQLite before the MCP question is asked.
    w.env.json(&["backfill", "--json"]);
    let s3 = w.prompt(&w.beta, "E2E-MCP proj-alpha", &[]);
    stop(ingest);
    let backfill = w.env.json(&["backfill", "--json"]);
    assert_eq!(backfill["bad_lines"], 0, "backfill: {backfill}");
    let sessions_of = |sid: &str| {
        if sid == s1.session_id {
            "s1"
        } else if sid == s2.session_id {
            "s2"
        } else if sid == s3.session_id {
            "s3"
        } else {
            "unknown"
        }
    };

    // The stub answered exactly the scripted turns, each in the session it belongs to.
    let ledger = w.ledger();
    let responses = ledger["responses"].as_array().expect("ledger responses");
    let seen: Vec<(&str, String, i64, bool)> = responses
        .iter()
        .map(|r| {
            let sid = r["session_header"].as_str().unwrap_or("");
            assert_eq!(
                r["session_metadata"], r["session_header"],
                "metadata.user_id and the session header name the same session: {r}"
            );
            (
                sessions_of(sid),
                r["script"].as_str().map_or_else(
                    || r["kind"].as_str().unwrap_or("").to_string(),
                    String::from,
                ),
                r["step"].as_i64().unwrap_or(-1),
                r["agent_header"].is_string(),
            )
        })
        .collect();
    let want: Vec<(&str, String, i64, bool)> = [
        ("s1", "E2E-TOOLS", 0, false),
        ("s1", "E2E-TOOLS", 1, false),
        ("s1", "E2E-TOOLS", 2, false),
        ("s2", "E2E-AGENT", 0, false),
        ("s2", "E2E-SUB", 0, true),
        ("s2", "E2E-SUB", 1, true),
        ("s2", "E2E-AGENT", 1, false),
        ("s1", "compaction", 0, false),
        ("s3", "E2E-MCP", 0, false),
        ("s3", "E2E-MCP", 1, false),
    ]
    .into_iter()
    .map(|(s, k, n, a)| (s, k.to_string(), n, a))
    .collect();
    assert_eq!(
        seen,
        want,
        "the stub's turns (request log: {})",
        w.requests.display()
    );
    assert_eq!(ledger["unparsed_requests"], 0);

    // Every response an assistant line records is in api_responses exactly once, with the
    // ledger's figures; the compaction response is in none (claude-code-2.1.md §3).
    let recorded: Vec<&Value> = responses
        .iter()
        .filter(|r| r["kind"] != "compaction")
        .collect();
    let mut want_rows: Vec<String> = recorded
        .iter()
        .map(|r| {
            let u = &r["usage"];
            format!(
                "{} {} {} {} {} {} {} {}",
                r["id"].as_str().unwrap_or(""),
                r["session_header"].as_str().unwrap_or(""),
                r["agent_header"].as_str().unwrap_or("-"),
                r["model"].as_str().unwrap_or(""),
                u["input_tokens"],
                u["output_tokens"],
                u["cache_creation_input_tokens"],
                u["cache_read_input_tokens"]
            )
        })
        .collect();
    want_rows.sort();
    let db = w.env.db();
    let conn = rusqlite::Connection::open(&db).expect("open telemetry.db");
    let mut stmt = conn
        .prepare(
            "SELECT coalesce(message_id, '?') || ' ' || session_id || ' ' || coalesce(agent_id, '-')
                 || ' ' || coalesce(model, '?') || ' ' || input_tokens || ' ' || output_tokens
                 || ' ' || cache_creation_tokens || ' ' || cache_read_tokens
             FROM api_responses ORDER BY 1",
        )
        .expect("prepare");
    let got_rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(
        got_rows, want_rows,
        "api_responses against the stub's ledger"
    );
    let sub_agent = responses[4]["agent_header"].as_str().expect("agent id");
    assert_eq!(
        count(
            &db,
            &format!(
                "SELECT count(*) FROM subagents WHERE session_id = '{}' AND agent_id = '{sub_agent}'",
                s2.session_id
            )
        ),
        1,
        "the sub-agent is recorded"
    );

    // Per-session figures, through the CLI.
    let mut per_session: BTreeMap<String, Tokens> = BTreeMap::new();
    for r in &recorded {
        per_session
            .entry(r["session_header"].as_str().unwrap_or("").to_string())
            .or_default()
            .add(&r["usage"]);
    }
    let sessions = w.env.json(&["sessions", "--json"]);
    let sessions = sessions["sessions"].as_array().expect("sessions");
    // Three sessions with activity. `claude mcp list` also fires a SessionEnd hook under a
    // session id of its own with no transcript: such a session may be listed, empty.
    for s in sessions {
        let sid = s["session_id"].as_str().expect("session_id");
        if sessions_of(sid) == "unknown" {
            assert!(
                s["responses"] == 0 && s["user_prompts"] == 0 && s["tokens"]["total"] == 0,
                "a session the stub never saw has activity: {s}"
            );
        }
    }
    let session = |sid: &str| {
        sessions
            .iter()
            .find(|s| s["session_id"] == sid)
            .unwrap_or_else(|| panic!("session {sid} missing from `sessions --json`"))
    };
    for (run, tools, errors) in [(&s1, 2, 1), (&s2, 2, 0), (&s3, 1, 0)] {
        let s = session(&run.session_id);
        assert_eq!(
            Tokens::of_row(s),
            per_session[&run.session_id],
            "tokens of {}",
            sessions_of(&run.session_id)
        );
        assert_eq!(s["tool_calls"], tools, "tool calls of {s}");
        assert_eq!(s["tool_errors"], errors, "tool errors of {s}");
        assert_eq!(s["unpriced_responses"], 0, "{s}");
        assert_eq!(s["platform"], "claude_code");
    }
    let report = w
        .env
        .json(&["report", "session", "--json", "--timezone", "UTC"]);
    let rows = report["rows"].as_array().expect("report rows");
    assert_eq!(rows.len(), 3, "{report}");
    for row in rows {
        let sid = row["key"].as_str().expect("key");
        assert_eq!(
            Tokens::of_row(row),
            per_session[sid],
            "report session {sid}"
        );
    }

    // What the MCP tool answered, as the model saw it in the next request, equals the ledger
    // of the sessions it was asked about (all before it).
    let mcp = ledger["mcp_results"].as_array().expect("mcp_results");
    assert_eq!(mcp.len(), 1, "one MCP result: {mcp:?}");
    assert_eq!(mcp[0]["is_error"], false, "{}", mcp[0]);
    let text = mcp[0]["text"].as_str().expect("text");
    // Claude Code appends a <system-reminder> to tool results.
    let answer = text.split("<system-reminder>").next().unwrap_or("").trim();
    let answer: Value = serde_json::from_str(answer)
        .unwrap_or_else(|e| panic!("get_metrics answered no JSON ({e}): {text}"));
    let asked_at = mcp[0]["after_response"].as_i64().expect("after_response");
    let mut so_far: BTreeMap<String, Tokens> = BTreeMap::new();
    let mut total = Tokens::default();
    for r in recorded.iter().filter(|r| {
        r["n"].as_i64().is_some_and(|n| n < asked_at)
            && r["session_header"] != s3.session_id.as_str()
    }) {
        so_far
            .entry(r["session_header"].as_str().unwrap_or("").to_string())
            .or_default()
            .add(&r["usage"]);
        total.add(&r["usage"]);
    }
    let mcp_rows: BTreeMap<String, Tokens> = answer["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap_or("").to_string(),
                Tokens::of_row(r),
            )
        })
        .collect();
    assert_eq!(mcp_rows, so_far, "get_metrics by session: {answer}");
    assert_eq!(
        Tokens::of_row(&answer["totals"]),
        total,
        "get_metrics totals"
    );
    assert_eq!(answer["totals"]["sessions"], 2);
    assert_eq!(answer["totals"]["tool_calls"], 4);
    assert_eq!(answer["totals"]["tool_errors"], 1);

    // Cost: ours (from assistant lines) equals Claude Code's running total where every call is
    // in an assistant line; for the compacted session it falls short by the compaction call.
    for run in [&s2, &s3] {
        let states = w.cost_states(&run.session_id);
        let last = *states.last().expect("a cost-state line");
        assert!(close(last, run.total_cost_usd), "cost-state vs -p result");
        let ours = session(&run.session_id)["cost_usd"].as_f64().expect("cost");
        assert!(
            close(ours, last),
            "cost_usd {ours} != cost-state {last} ({})",
            sessions_of(&run.session_id)
        );
    }
    let s1_states = w.cost_states(&s1.session_id);
    let s1_ours = session(&s1.session_id)["cost_usd"].as_f64().expect("cost");
    let s1_last = *s1_states.last().expect("cost-state");
    assert!(close(s1_states[0], s1.total_cost_usd) && close(s1_ours, s1.total_cost_usd));
    assert!(
        close(s1_last, s1c.total_cost_usd) && s1_last > s1_ours + 1e-6,
        "compaction costs: ours {s1_ours}, Claude Code {s1_last}"
    );
    // Claude Code's own figure beside ours; the difference is the compaction call.
    for run in [&s1, &s2, &s3] {
        let s = session(&run.session_id);
        let last = *w.cost_states(&run.session_id).last().expect("cost-state");
        let r = s["reported_cost_usd"]
            .as_f64()
            .unwrap_or_else(|| panic!("reported_cost_usd of {s}"));
        assert!(close(r, last), "reported_cost_usd {r} != cost-state {last}");
        let u = s["unattributed_cost_usd"]
            .as_f64()
            .unwrap_or_else(|| panic!("unattributed_cost_usd of {s}"));
        let ours = s["cost_usd"].as_f64().expect("cost");
        assert!(
            close(u, (last - ours).max(0.0)),
            "unattributed_cost_usd of {s}"
        );
    }
    let s1u = session(&s1.session_id)["unattributed_cost_usd"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(s1u > 1e-6, "the compacted session has unattributed cost");

    // Pipeline health.
    let status = w.env.json(&["status", "--json"]);
    assert_eq!(status["dlq_size"], 0, "{status}");
    for counter in ["bad_input", "dead_lettered"] {
        assert!(
            status["counters"][counter].as_i64().unwrap_or(0) == 0,
            "{counter}: {status}"
        );
    }
    let dlq = w.env.json(&["dlq", "list", "--json"]);
    assert_eq!(dlq["total"], 0, "{dlq}");

    // Hooks: every run of a Blueplane hook is stored once.
    let log = w.hook_log();
    let mut fired: BTreeMap<(String, String), i64> = BTreeMap::new();
    for p in &log {
        let key = (
            p["session_id"].as_str().unwrap_or("").to_string(),
            p["hook_event_name"].as_str().unwrap_or("").to_string(),
        );
        *fired.entry(key).or_default() += 1;
    }
    assert!(
        fired.contains_key(&(s1.session_id.clone(), "PostToolUseFailure".into()))
            && fired.contains_key(&(s1.session_id.clone(), "PreCompact".into()))
            && fired.contains_key(&(s2.session_id.clone(), "SubagentStart".into())),
        "the logging hook saw the sessions' hooks: {fired:?}"
    );
    {
        let mut stmt = conn
            .prepare("SELECT session_id, event, count(*) FROM hook_events GROUP BY 1, 2")
            .expect("prepare");
        let stored: BTreeMap<(String, String), i64> = stmt
            .query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(stored, fired, "hook_events against the hooks that fired");
    }

    eprintln!(
        "claude_e2e: {} responses, {} hook runs, wall time {:.1} s",
        responses.len(),
        log.len(),
        started.elapsed().as_secs_f64()
    );
}
