//! The official MCP Inspector's CLI mode against the real binary, as a second independent
//! client besides the Python SDK: over stdio (`blueplane serve`), Streamable HTTP
//! (`serve --http`, `/mcp`) and legacy SSE (`/sse`). `tools/list --strict` must list the seven
//! tools with no schema finding at all (nullable result fields are `anyOf` branches, so not
//! even a `type-union` warning), and
//! `tools/call` of every tool must return a non-error result with structured content; an
//! unknown session id must come back as a tool error, so the success checks can fail.
//!
//! The Inspector is `$BLUEPLANE_TEST_INSPECTOR` (its `mcp-inspector` bin), run by
//! `$BLUEPLANE_TEST_NODE` when set (it declares Node.js 22), else by the `node` on PATH;
//! `tools/test.sh` installs the pinned `@modelcontextprotocol/inspector` and Node.js 22. Skip-safe like `claude_e2e.rs`:
//! without it the tests print a note and pass, unless `CI` or `BLUEPLANE_REQUIRE_INSPECTOR=1`
//! is set, then they fail. Each Inspector run gets a temp `HOME` (it keeps a catalog and
//! secrets under `~/.mcp-inspector`).

mod support;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::http::Server;
use support::python::backfilled;
use support::{BIN, Env};

const INSPECTOR_VERSION: &str = "2.12.0";
/// One Inspector run (node start, connect, one request) takes about a second; this guards a
/// wedged run.
const RUN_DEADLINE: Duration = Duration::from_secs(60);
const TOOLS: [&str; 7] = [
    "get_metrics",
    "get_pipeline_status",
    "get_session_summary",
    "get_tool_stats",
    "get_usage_window",
    "list_sessions",
    "search_conversations",
];
/// The `--strict` warning rules accepted: none. (`type-union`, a nullable field written as
/// `"type": [T, "null"]`, was accepted until the output schemas spelled those as `anyOf`.)
/// Any finding fails the test.
const ACCEPTED_WARNING_RULES: [&str; 0] = [];
/// The Inspector CLI's exit code when a tool result has `isError: true`.
const EXIT_TOOL_IS_ERROR: i32 = 5;

/// The Inspector bin, or `None` (after a note) when the test is not required.
fn inspector() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BLUEPLANE_TEST_INSPECTOR").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    let required = std::env::var("BLUEPLANE_REQUIRE_INSPECTOR").is_ok_and(|v| v == "1");
    assert!(
        !(ci || required),
        "BLUEPLANE_TEST_INSPECTOR is not set but CI or BLUEPLANE_REQUIRE_INSPECTOR=1 requires \
         the MCP Inspector test: run tools/test.sh, which installs \
         @modelcontextprotocol/inspector@{INSPECTOR_VERSION} and sets it"
    );
    eprintln!(
        "note: mcp_inspector skipped: BLUEPLANE_TEST_INSPECTOR is not set (tools/test.sh \
         installs @modelcontextprotocol/inspector@{INSPECTOR_VERSION} and sets it)"
    );
    None
}

/// What one `mcp-inspector --cli ... --format json` run gave.
struct Outcome {
    code: Option<i32>,
    json: Value,
    stderr: String,
}

/// How the Inspector reaches the server: the arguments before `--method`.
struct Target {
    what: String,
    args: Vec<String>,
}

impl Target {
    /// `blueplane serve` as a stdio child. The Inspector gives a stdio server only a minimal
    /// environment, so the test environment is passed with `-e`.
    fn stdio(env: &Env) -> Target {
        let dirs = env
            .claude_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(",");
        let vars = [
            ("BLUEPLANE_HOME", env.home.path().display().to_string()),
            ("REDIS_URL", env.redis.url()),
            ("CLAUDE_CONFIG_DIR", dirs),
            ("TZ", "UTC".to_owned()),
            ("BLUEPLANE_LOG", "warn".to_owned()),
        ];
        let mut args = Vec::new();
        for (k, v) in vars {
            args.push("-e".to_owned());
            args.push(format!("{k}={v}"));
        }
        args.push(BIN.to_owned());
        args.push("serve".to_owned());
        Target {
            what: "stdio".to_owned(),
            args,
        }
    }

    fn url(url: String, transport: &str) -> Target {
        Target {
            what: format!("{transport} {url}"),
            args: vec![url, "--transport".to_owned(), transport.to_owned()],
        }
    }
}

struct Inspector {
    node: Option<PathBuf>,
    bin: PathBuf,
    home: tempfile::TempDir,
}

impl Inspector {
    fn new(bin: PathBuf) -> Inspector {
        Inspector {
            node: std::env::var_os("BLUEPLANE_TEST_NODE")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
            bin,
            home: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// Runs `mcp-inspector --cli <target> <method args> --format json` to completion.
    fn run(&self, target: &Target, method: &[&str]) -> Outcome {
        let what = format!("mcp-inspector {} {method:?}", target.what);
        let mut cmd = match &self.node {
            Some(node) => {
                let mut c = Command::new(node);
                c.arg(&self.bin);
                c
            }
            None => Command::new(&self.bin),
        };
        cmd.arg("--cli")
            .args(&target.args)
            .args(method)
            .args(["--format", "json"])
            .env("HOME", self.home.path())
            .env_remove("MCP_CATALOG_PATH")
            .env_remove("MCP_CLIENT_CONFIG_PATH")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{what}: cannot start {}: {e}", self.bin.display()));
        let drain = |mut r: Box<dyn Read + Send>| {
            thread::spawn(move || {
                let mut b = Vec::new();
                let _ = r.read_to_end(&mut b);
                b
            })
        };
        let out = drain(Box::new(child.stdout.take().expect("stdout piped")));
        let err = drain(Box::new(child.stderr.take().expect("stderr piped")));
        let status = loop {
            if let Some(s) = child.try_wait().expect("try_wait") {
                break s;
            }
            if started.elapsed() >= RUN_DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{what}: still running after {RUN_DEADLINE:?}; stderr:\n{}",
                    String::from_utf8_lossy(&err.join().unwrap_or_default())
                );
            }
            thread::sleep(Duration::from_millis(20));
        };
        let stdout = String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned();
        let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
        eprintln!("{what}: {:.2} s", started.elapsed().as_secs_f64());
        let json = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!("{what} printed no JSON ({e}) [{status}]:\n{stdout}\nstderr:\n{stderr}")
        });
        Outcome {
            code: status.code(),
            json,
            stderr,
        }
    }

    /// `tools/list --strict`: the seven tools, no error-severity schema finding.
    fn check_tools_list(&self, target: &Target) {
        let o = self.run(target, &["--method", "tools/list", "--strict"]);
        assert_eq!(
            o.code,
            Some(0),
            "{}: tools/list --strict failed: {}\nstderr:\n{}",
            target.what,
            o.json,
            o.stderr
        );
        let mut names: Vec<&str> = o.json["result"]["tools"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: tools/list has no tools: {}", target.what, o.json))
            .iter()
            .map(|t| t["name"].as_str().unwrap_or("<no name>"))
            .collect();
        names.sort_unstable();
        assert_eq!(names, TOOLS, "{}: tools/list names", target.what);
        let mut warnings = Vec::new();
        for tool in o.json["schemaFindings"].as_array().into_iter().flatten() {
            for f in tool["findings"].as_array().into_iter().flatten() {
                let line = format!(
                    "{} {}.{}: {} ({})",
                    tool["toolName"].as_str().unwrap_or("?"),
                    f["schema"].as_str().unwrap_or("?"),
                    f["path"].as_str().unwrap_or("?"),
                    f["rule"].as_str().unwrap_or("?"),
                    f["severity"].as_str().unwrap_or("?"),
                );
                assert_ne!(
                    f["severity"], "error",
                    "{}: --strict error finding {line}: {f}",
                    target.what
                );
                assert!(
                    f["rule"]
                        .as_str()
                        .is_some_and(|r| ACCEPTED_WARNING_RULES.contains(&r)),
                    "{}: --strict finding of a rule not accepted here: {line}: {f}",
                    target.what
                );
                warnings.push(line);
            }
        }
        eprintln!(
            "{}: tools/list --strict: 0 errors, {} warnings{}",
            target.what,
            warnings.len(),
            warnings
                .iter()
                .map(|w| format!("\n  {w}"))
                .collect::<String>()
        );
    }

    /// `tools/call name args`: the result, asserted to be a non-error with structured content.
    fn call_ok(&self, target: &Target, name: &str, args: &Value) -> Value {
        let o = self.call(target, name, args);
        let result = &o.json["result"];
        assert!(
            o.code == Some(0) && result["isError"] == false,
            "{}: tools/call {name} {args} did not succeed [exit {:?}]: {}\nstderr:\n{}",
            target.what,
            o.code,
            o.json,
            o.stderr
        );
        let text = result["content"][0]["text"].as_str().unwrap_or_default();
        let parsed: Value = serde_json::from_str(text).unwrap_or_else(|e| {
            panic!(
                "{}: tools/call {name}: text content is not JSON ({e}): {text}",
                target.what
            )
        });
        assert!(
            result["structuredContent"].is_object(),
            "{}: tools/call {name}: no structuredContent: {result}",
            target.what
        );
        assert_eq!(
            as_f64(&parsed),
            as_f64(&result["structuredContent"]),
            "{}: tools/call {name}: text and structuredContent differ",
            target.what
        );
        result["structuredContent"].clone()
    }

    fn call(&self, target: &Target, name: &str, args: &Value) -> Outcome {
        let args_json = args.to_string();
        self.run(
            target,
            &[
                "--method",
                "tools/call",
                "--tool-name",
                name,
                "--tool-args-json",
                &args_json,
            ],
        )
    }

    /// Every tool once, `get_session_summary` and `get_tool_stats` with a session id that
    /// `list_sessions` returned; an unknown id is a tool error.
    fn check_every_tool(&self, target: &Target) {
        let listed = self.call_ok(target, "list_sessions", &json!({"limit": 3}));
        let sessions = listed["sessions"].as_array().cloned().unwrap_or_default();
        assert_eq!(
            sessions.len(),
            3,
            "{}: list_sessions(limit 3): {listed}",
            target.what
        );
        let id = sessions[0]["session_id"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: session without id: {listed}", target.what))
            .to_owned();
        let summary = self.call_ok(target, "get_session_summary", &json!({"session_id": id}));
        assert_eq!(
            summary["session_id"], id,
            "{}: get_session_summary",
            target.what
        );
        let metrics = self.call_ok(
            target,
            "get_metrics",
            &json!({"group_by": "model", "timezone": "UTC"}),
        );
        assert!(
            metrics["rows"].as_array().is_some_and(|r| !r.is_empty()),
            "{}: get_metrics(group_by model) has no rows: {metrics}",
            target.what
        );
        let hits = self.call_ok(target, "search_conversations", &json!({"query": "phoenix"}));
        assert!(
            hits["hits"].as_array().is_some_and(|h| !h.is_empty()),
            "{}: search_conversations(phoenix) has no hits: {hits}",
            target.what
        );
        self.call_ok(target, "get_tool_stats", &json!({"session_id": id}));
        self.call_ok(target, "get_tool_stats", &json!({}));
        self.call_ok(target, "get_pipeline_status", &json!({}));
        self.call_ok(target, "get_usage_window", &json!({}));

        let bad = self.call(
            target,
            "get_session_summary",
            &json!({"session_id": "no-such-session"}),
        );
        assert_eq!(
            (bad.code, &bad.json["result"]["isError"]),
            (Some(EXIT_TOOL_IS_ERROR), &Value::Bool(true)),
            "{}: get_session_summary(unknown id) must be a tool error: {}",
            target.what,
            bad.json
        );
    }
}

/// `v` with every number as an f64: the Inspector re-prints results from JavaScript, where
/// `0.0` and `0` are the same number.
fn as_f64(v: &Value) -> Value {
    match v {
        Value::Number(n) => n.as_f64().map_or(Value::Null, |f| json!(f)),
        Value::Array(a) => Value::Array(a.iter().map(as_f64).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), as_f64(v))).collect()),
        other => other.clone(),
    }
}

#[test]
fn inspector_cli_over_stdio() {
    let Some(bin) = inspector() else { return };
    let started = Instant::now();
    let env = backfilled();
    let insp = Inspector::new(bin);
    let target = Target::stdio(&env);
    insp.check_tools_list(&target);
    insp.check_every_tool(&target);
    eprintln!(
        "inspector over stdio: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn inspector_cli_over_http_and_sse() {
    let Some(bin) = inspector() else { return };
    let started = Instant::now();
    let env = backfilled();
    let server = Server::start(&env, &[], &[]);
    let insp = Inspector::new(bin);
    let http = Target::url(server.url(), "http");
    insp.check_tools_list(&http);
    insp.check_every_tool(&http);
    let sse = Target::url(format!("http://{}/sse", server.host()), "sse");
    insp.check_tools_list(&sse);
    insp.call_ok(&sse, "list_sessions", &json!({"limit": 1}));
    eprintln!(
        "inspector over HTTP and SSE: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
