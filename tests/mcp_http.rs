//! `blueplane serve --http` as clients on the machine see it: the official Python `mcp` SDK
//! with two concurrent clients (`tests/mcp/test_http.py`), raw HTTP requests for every
//! security rule of a local port (Host, Origin, bearer token, size limits, no CORS), the
//! refusal of a non-loopback bind, HTTP and stdio in one process, and a SIGTERM that drains
//! the embedded pipeline.
//!
//! Every server is the real binary on a free loopback port with a private redis-server and a
//! temp `BLUEPLANE_HOME`.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::http::{Server, free_port};
use support::python::{backfilled, run_script};
use support::{Env, write_corpus};

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#;
const TOKEN: &str = "test-token-5b1f0c9e";
/// The body limit of src/mcp/http.rs.
const MAX_BODY: usize = 1 << 20;

/// An HTTP/1.1 response: status, lowercase header lines, and the body when it has a length.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One request on a fresh connection. `headers` come after `Host` (unless they set it);
/// `body` is sent with its Content-Length unless a header says otherwise.
fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head += &format!("Host: 127.0.0.1:{port}\r\n");
    }
    for (k, v) in headers {
        head += &format!("{k}: {v}\r\n");
    }
    let custom_length = headers.iter().any(|(k, _)| {
        k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding")
    });
    if !custom_length {
        head += &format!("Content-Length: {}\r\n", body.len());
    }
    head += "Connection: close\r\n\r\n";
    s.write_all(head.as_bytes()).expect("write head");
    // The server may answer (and stop reading) before the whole body is sent.
    let _ = s.write_all(body);
    read_reply(&mut s)
}

fn read_reply(s: &mut TcpStream) -> Reply {
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status line: {line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).expect("header line");
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let mut body = String::new();
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    if let Some(n) = len {
        let mut buf = vec![0; n];
        r.read_exact(&mut buf).expect("body");
        body = String::from_utf8_lossy(&buf).into_owned();
    } else {
        // An SSE reply: the first event carries the JSON-RPC response.
        for _ in 0..20 {
            let mut l = String::new();
            if r.read_line(&mut l).unwrap_or(0) == 0 {
                break;
            }
            body += &l;
            if l.starts_with("data: {") {
                break;
            }
        }
    }
    Reply {
        status,
        headers,
        body,
    }
}

const MCP_POST: [(&str, &str); 2] = [
    ("Content-Type", "application/json"),
    ("Accept", "application/json, text/event-stream"),
];

fn init(port: u16, extra: &[(&str, &str)]) -> Reply {
    let mut h: Vec<(&str, &str)> = MCP_POST.to_vec();
    h.extend_from_slice(extra);
    request(port, "POST", "/mcp", &h, INIT.as_bytes())
}

fn assert_initialized(r: &Reply, what: &str) {
    assert_eq!(r.status, 200, "{what}: {r:?}");
    assert!(
        r.header("mcp-session-id").is_some(),
        "{what}: no session id: {r:?}"
    );
    assert!(
        r.body.contains(r#""serverInfo":{"name":"blueplane""#),
        "{what}: no initialize result: {r:?}"
    );
}

#[test]
fn python_sdk_two_concurrent_clients_with_a_token() {
    let env = backfilled();
    let server = Server::start(&env, &[], &[("BLUEPLANE_TOKEN", TOKEN)]);
    // The SDK without the token is refused; with it, both clients pass every check.
    assert_eq!(init(server.port, &[]).status, 401);
    let url = server.url();
    run_script(
        &env,
        "test_http.py",
        &["--url", &url],
        &[("BLUEPLANE_TOKEN", TOKEN)],
    );
}

#[test]
fn host_origin_size_and_cors_rules_without_a_token() {
    let env = Env::new(&[]);
    let server = Server::start(&env, &[], &[]);
    let port = server.port;
    let host = server.host();

    assert_initialized(&init(port, &[]), "plain initialize");
    let localhost = format!("localhost:{port}");
    let v6 = format!("[::1]:{port}");
    for h in [localhost.as_str(), v6.as_str()] {
        assert_initialized(&init(port, &[("Host", h)]), h);
    }
    for o in [
        "http://localhost:6274",
        "http://127.0.0.1",
        &format!("http://{host}"),
        "http://[::1]:3000",
    ] {
        assert_initialized(&init(port, &[("Origin", o)]), o);
    }

    // DNS rebinding: a name that is not this server, or the wrong port.
    let wrong_port = format!("127.0.0.1:{}", port.wrapping_add(1));
    for h in ["evil.example", &format!("evil.example:{port}"), &wrong_port] {
        let r = init(port, &[("Host", h)]);
        assert_eq!(r.status, 421, "Host {h}: {r:?}");
    }
    // A browser page from elsewhere.
    for o in [
        "http://evil.example",
        "https://localhost.evil.example",
        "null",
    ] {
        let r = init(port, &[("Origin", o)]);
        assert_eq!(r.status, 403, "Origin {o}: {r:?}");
    }
    // The rules hold on every route, not only /mcp.
    let r = request(port, "GET", "/other", &[("Host", "evil.example")], b"");
    assert_eq!(r.status, 421, "{r:?}");
    let r = request(port, "GET", "/other", &[], b"");
    assert_eq!(r.status, 404, "{r:?}");

    // Bodies over 1 MiB: declared up front, and streamed without a length.
    let big = vec![b' '; MAX_BODY + 1];
    let r = request(port, "POST", "/mcp", &MCP_POST, &big);
    assert_eq!(r.status, 413, "declared oversized body: {r:?}");
    let mut chunked = format!("{:x}\r\n", big.len()).into_bytes();
    chunked.extend_from_slice(&big);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let mut h = MCP_POST.to_vec();
    h.push(("Transfer-Encoding", "chunked"));
    let r = request(port, "POST", "/mcp", &h, &chunked);
    assert_eq!(r.status, 413, "chunked oversized body: {r:?}");
    // A body at the limit is not refused for its size (it is not JSON-RPC: 4xx, not 413).
    let mut h = MCP_POST.to_vec();
    h.push(("Content-Length", "1048576"));
    let r = request(port, "POST", "/mcp", &h, &vec![b' '; MAX_BODY]);
    assert_ne!(r.status, 413, "{r:?}");
    assert!(r.status >= 400 && r.status < 500, "{r:?}");
    // Headers over 16 KiB.
    let huge = "x".repeat(20 * 1024);
    let r = init(port, &[("X-Padding", &huge)]);
    assert_eq!(r.status, 431, "{r:?}");

    // No CORS: neither a preflight nor an allowed request gets Access-Control-* headers.
    let r = request(
        port,
        "OPTIONS",
        "/mcp",
        &[
            ("Origin", "http://localhost:6274"),
            ("Access-Control-Request-Method", "POST"),
        ],
        b"",
    );
    let ok = init(port, &[("Origin", "http://localhost:6274")]);
    for reply in [&r, &ok] {
        assert!(
            !reply
                .headers
                .iter()
                .any(|(k, _)| k.starts_with("access-control-")),
            "CORS headers: {reply:?}"
        );
    }
    // Still serving after the refusals.
    assert_initialized(&init(port, &[]), "initialize after the refusals");
}

#[test]
fn with_a_token_every_request_needs_the_bearer_token() {
    let env = Env::new(&[]);
    let server = Server::start(&env, &[], &[("BLUEPLANE_TOKEN", TOKEN)]);
    let port = server.port;
    let right = format!("Bearer {TOKEN}");
    let wrong = format!("Bearer {TOKEN}x");
    let short = format!("Bearer {}", &TOKEN[..TOKEN.len() - 1]);

    let r = init(port, &[]);
    assert_eq!(r.status, 401, "no token: {r:?}");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{r:?}");
    for a in [
        wrong.as_str(),
        short.as_str(),
        TOKEN,
        "Basic dGVzdA==",
        "Bearer",
    ] {
        let r = init(port, &[("Authorization", a)]);
        assert_eq!(r.status, 401, "Authorization {a:?}: {r:?}");
    }
    assert_initialized(&init(port, &[("Authorization", &right)]), "right token");
    // Every route: no token → 401 before anything else answers.
    assert_eq!(request(port, "GET", "/other", &[], b"").status, 401);
    assert_eq!(
        request(port, "GET", "/other", &[("Authorization", &right)], b"").status,
        404
    );
    // The token does not excuse a foreign Host or Origin.
    let r = init(
        port,
        &[("Authorization", &right), ("Origin", "http://evil.example")],
    );
    assert_eq!(r.status, 403, "{r:?}");
    let r = init(
        port,
        &[("Authorization", &right), ("Host", "evil.example:80")],
    );
    assert_eq!(r.status, 421, "{r:?}");
}

#[test]
fn a_non_loopback_address_needs_allow_remote_and_a_token() {
    let env = Env::new(&[]);
    let port = free_port();
    let any = format!("0.0.0.0:{port}");
    for (args, token) in [
        (vec![], None),
        (vec!["--allow-remote"], None),
        (vec![], Some(TOKEN)),
        (vec!["--allow-remote"], Some("  ")),
    ] {
        let mut cmd = env.cmd(&["serve", "--http", &any]);
        cmd.args(&args).env_remove("BLUEPLANE_TOKEN");
        if let Some(t) = token {
            cmd.env("BLUEPLANE_TOKEN", t);
        }
        let t0 = Instant::now();
        let out = cmd.stdin(Stdio::null()).output().expect("run serve");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{args:?} token {token:?}: started: {err}"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{args:?}: slow refusal"
        );
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{args:?}: one sentence: {err}");
        for want in ["0.0.0.0", "--allow-remote", "BLUEPLANE_TOKEN"] {
            assert!(lines[0].contains(want), "{args:?}: {err}");
        }
        assert!(out.stdout.is_empty(), "{args:?}: stdout {:?}", out.stdout);
        assert!(
            !env.home.path().join("telemetry.db").exists(),
            "{args:?}: nothing starts before the refusal"
        );
    }

    // With both it serves, and still requires the token. Any name with the bound port is
    // accepted as Host (the token does the work); the listed origin is allowed, others not.
    let mut cmd = env.cmd(&[
        "serve",
        "--http",
        &any,
        "--allow-remote=https://app.example,http://tools.example:8080",
    ]);
    cmd.env("BLUEPLANE_TOKEN", TOKEN)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let mut server = Server {
        child: cmd.spawn().expect("spawn"),
        port,
    };
    server.wait_listening();
    let right = format!("Bearer {TOKEN}");
    assert_eq!(init(port, &[]).status, 401);
    assert_initialized(
        &init(port, &[("Authorization", &right)]),
        "0.0.0.0 with token",
    );
    let lan_host = format!("box.lan:{port}");
    let other_port = format!("box.lan:{}", port.wrapping_add(1));
    let auth = ("Authorization", right.as_str());
    assert_initialized(&init(port, &[auth, ("Host", &lan_host)]), "Host box.lan");
    assert_eq!(init(port, &[auth, ("Host", &other_port)]).status, 421);
    for o in [
        "https://app.example",
        "https://app.example:443",
        "http://tools.example:8080",
        "http://localhost:6274",
    ] {
        assert_initialized(&init(port, &[auth, ("Origin", o)]), o);
    }
    for o in [
        "http://app.example",
        "https://app.example:8443",
        "http://tools.example",
        "https://evil.example",
    ] {
        let r = init(port, &[auth, ("Origin", o)]);
        assert_eq!(r.status, 403, "Origin {o}: {r:?}");
    }
    let st = server.signal("INT", Duration::from_secs(15));
    assert!(st.success(), "exit after SIGINT: {st}");
}

fn wait_drained(env: &Env, sessions: i64, timeout: Duration) -> Value {
    let start = Instant::now();
    loop {
        let out = env.cmd(&["status", "--json"]).output().expect("status");
        let st: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if st["sessions"].as_i64() == Some(sessions)
            && st["slow_path_backlog"] == 0
            && st["pending"] == 0
            && st["consumer_lag"] == 0
        {
            return st;
        }
        assert!(start.elapsed() < timeout, "pipeline did not drain: {st}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_pipeline_runs_under_http_serve_and_sigterm_drains_it() {
    let dir = tempfile::tempdir().expect("dir");
    write_corpus(dir.path(), 2, 3);
    let env = Env::new(&[dir.path().to_path_buf()]);
    let mut server = Server::start(&env, &[], &[]);
    wait_drained(&env, 2, Duration::from_secs(30));
    // Activity while serving is captured by this process.
    support::write_corpus_from(dir.path(), 10, 1, 50);
    assert_initialized(&init(server.port, &[]), "initialize while capturing");
    let t0 = Instant::now();
    while support::count(&env.db(), "SELECT count(*) FROM raw_traces") == 4 * 2 * 3 {
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "the new session was never captured"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let st = server.signal("TERM", Duration::from_secs(15));
    assert!(st.success(), "exit after SIGTERM: {st}");
    // Nothing read from the stream was left unacknowledged by the stop.
    let st = env.json(&["status", "--json"]);
    assert_eq!(st["pending"], 0, "{st}");
    assert_eq!(st["dlq_size"], 0, "{st}");
    // Another process finishes what was captured but not yet stored; counts are exact.
    env.run(&["backfill"]);
    assert_eq!(
        support::count(&env.db(), "SELECT count(*) FROM raw_traces"),
        4 * (2 * 3 + 50)
    );
    assert_eq!(
        support::count(&env.db(), "SELECT count(*) FROM sessions"),
        3
    );
}

#[test]
fn http_and_stdio_in_one_process() {
    let env = Env::new(&[]);
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut cmd = env.cmd(&["serve", "--http", &addr, "--stdio"]);
    cmd.env_remove("BLUEPLANE_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut server = Server {
        child: cmd.spawn().expect("spawn"),
        port,
    };
    server.wait_listening();
    let mut stdin = server.child.stdin.take().expect("stdin");
    let stdout = server.child.stdout.take().expect("stdout");
    writeln!(stdin, "{INIT}").expect("write initialize");
    stdin.flush().expect("flush");
    let mut lines = BufReader::new(stdout).lines();
    let line = lines
        .next()
        .expect("a reply on stdout")
        .expect("read stdout");
    let reply: Value = serde_json::from_str(&line).expect("JSON-RPC on stdout");
    assert_eq!(
        reply["result"]["serverInfo"]["name"], "blueplane",
        "{reply}"
    );
    // HTTP at the same time, from two sessions.
    assert_initialized(&init(port, &[]), "http next to stdio");
    assert_initialized(&init(port, &[]), "a second http session");
    // Closing stdin ends the process (the stdio client went away), HTTP with it.
    drop(stdin);
    let t0 = Instant::now();
    let st = loop {
        if let Some(st) = server.child.try_wait().expect("try_wait") {
            break st;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "serve --http --stdio did not exit after stdin closed"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(st.success(), "{st}");
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    // Everything after the reply on stdout is JSON-RPC too (here: nothing).
    for l in lines {
        let l = l.expect("read");
        assert!(serde_json::from_str::<Value>(&l).is_ok(), "stdout: {l:?}");
    }
}

/// A POST in the session `id` (the protocol version header of 2025-11-25).
fn post_in(port: u16, id: &str, body: &[u8]) -> Reply {
    let mut h: Vec<(&str, &str)> = MCP_POST.to_vec();
    h.push(("Mcp-Session-Id", id));
    h.push(("MCP-Protocol-Version", "2025-11-25"));
    request(port, "POST", "/mcp", &h, body)
}

/// The JSON-RPC message of a reply: the JSON body, or the first `data: {` of an SSE reply.
fn message(r: &Reply) -> Value {
    let text = r
        .body
        .lines()
        .find_map(|l| l.strip_prefix("data: ").filter(|d| d.starts_with('{')))
        .unwrap_or(r.body.as_str());
    serde_json::from_str(text).unwrap_or_else(|e| panic!("no JSON-RPC message ({e}): {r:?}"))
}

/// The answers of stdio (`mcp::jsonrpc`) over Streamable HTTP, where rmcp alone answers 415
/// with a text body or -32601: -32700 for malformed JSON, -32600 with the id when it has one
/// (a batch too), -32602 for bad `tools/call` params and a bogus `tools/list` cursor; each a
/// JSON-RPC error object, and the session still works after them.
#[test]
fn malformed_and_invalid_bodies_get_the_json_rpc_error_codes_of_stdio() {
    let env = Env::new(&[]);
    let server = Server::start(&env, &[], &[]);
    let port = server.port;
    let r = init(port, &[]);
    assert_initialized(&r, "initialize");
    let id = r.header("mcp-session-id").expect("session").to_string();
    let done = post_in(
        port,
        &id,
        br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    );
    assert_eq!(done.status, 202, "{done:?}");

    let cases: &[(&[u8], u16, i64, Value)] = &[
        (b"not json {", 400, -32700, Value::Null),
        (b"\xff\xfe{}", 400, -32700, Value::Null),
        (b"42", 400, -32600, Value::Null),
        (br#"{"jsonrpc":"2.0","id":7,"method":42}"#, 400, -32600, 7.into()),
        (br#"{"jsonrpc":"2.0","id":"a"}"#, 400, -32600, "a".into()),
        (
            br#"{"jsonrpc":"1.0","id":3,"method":"ping"}"#,
            400,
            -32600,
            3.into(),
        ),
        (br#"{"jsonrpc":"2.0","method":7}"#, 400, -32600, Value::Null),
        (
            br#"[{"jsonrpc":"2.0","id":5,"method":"ping"}]"#,
            400,
            -32600,
            Value::Null,
        ),
        (
            br#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"arguments":{}}}"#,
            200,
            -32602,
            8.into(),
        ),
        (
            br#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"list_sessions","arguments":[1]}}"#,
            200,
            -32602,
            9.into(),
        ),
        (
            br#"{"jsonrpc":"2.0","id":10,"method":"tools/list","params":{"cursor":"bogus"}}"#,
            200,
            -32602,
            10.into(),
        ),
    ];
    for (body, status, code, want_id) in cases {
        let what = String::from_utf8_lossy(body);
        let r = post_in(port, &id, body);
        assert_eq!(r.status, *status, "{what}: {r:?}");
        assert_eq!(
            r.header("content-type"),
            Some("application/json"),
            "{what}: {r:?}"
        );
        let m = message(&r);
        assert_eq!(m["jsonrpc"], "2.0", "{what}: {m}");
        assert_eq!(m["error"]["code"], *code, "{what}: {m}");
        assert_eq!(m["id"], *want_id, "{what}: {m}");
        assert!(
            m["error"]["message"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        );
    }
    // Malformed JSON is -32700 without a session too.
    let r = request(port, "POST", "/mcp", &MCP_POST, b"{oops");
    assert_eq!(
        (r.status, message(&r)["error"]["code"].clone()),
        (400, (-32700).into())
    );
    // Well-formed requests still reach the server, in the same session.
    let r = post_in(
        port,
        &id,
        br#"{"jsonrpc":"2.0","id":11,"method":"tools/list"}"#,
    );
    assert_eq!(r.status, 200, "{r:?}");
    let m = message(&r);
    assert_eq!(m["id"], 11, "{m}");
    assert_eq!(
        m["result"]["tools"].as_array().map(Vec::len),
        Some(7),
        "{m}"
    );
}

/// `DELETE /mcp` ends a session with 204 (not rmcp's 202, which the TypeScript SDK does not
/// read as terminated); the session is gone afterwards (404), and an unknown session is 404.
#[test]
fn delete_ends_a_session_with_204_and_an_unknown_session_is_404() {
    let env = Env::new(&[]);
    let server = Server::start(&env, &[], &[]);
    let port = server.port;
    let r = init(port, &[]);
    assert_initialized(&r, "initialize");
    let id = r.header("mcp-session-id").expect("session").to_string();
    let delete = |sid: &str| {
        request(
            port,
            "DELETE",
            "/mcp",
            &[
                ("Mcp-Session-Id", sid),
                ("MCP-Protocol-Version", "2025-11-25"),
            ],
            b"",
        )
    };
    let r = delete("no-such-session");
    assert_eq!(r.status, 404, "{r:?}");
    let r = delete(&id);
    assert_eq!(r.status, 204, "{r:?}");
    assert!(r.body.is_empty(), "{r:?}");
    let r = post_in(port, &id, br#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#);
    assert_eq!(r.status, 404, "the session is gone: {r:?}");
    assert_eq!(delete(&id).status, 404);
    // A new session works as before.
    assert_initialized(&init(port, &[]), "initialize after the delete");
}
