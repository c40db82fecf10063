//! The legacy HTTP+SSE transport of `blueplane serve --http` (`GET /sse`, `POST /messages`) as
//! clients on the machine see it: the official Python SDK's `sse_client` with two concurrent
//! sessions and a token (`tests/mcp/test_sse.py`), and raw HTTP for the protocol (endpoint
//! event, 202 then the reply on the stream), the security middleware on both routes, unknown
//! sessions, the session cap, the removal of a disconnected client's session, and a SIGTERM
//! with streams open.
//!
//! Every server is the real binary on a free loopback port with a private redis-server and a
//! temp `BLUEPLANE_HOME`.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::Env;
use support::http::Server;
use support::python::{backfilled, run_script};

const TOKEN: &str = "test-token-sse-7d2a";
/// `Limits::default().max_sessions` of src/mcp/sse.rs.
const MAX_SESSIONS: usize = 64;

/// Status line and body (with a Content-Length) of one request on a fresh connection.
fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
    for (k, v) in headers {
        head += &format!("{k}: {v}\r\n");
    }
    head += &format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("write");
    let mut r = BufReader::new(s);
    let (status, headers) = read_head(&mut r);
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut buf = vec![0; len];
    r.read_exact(&mut buf).expect("body");
    (status, String::from_utf8_lossy(&buf).into_owned())
}

fn read_head(r: &mut impl BufRead) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    let status = line
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
            return (status, headers);
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
}

/// An open `GET /sse` stream.
struct Stream {
    r: BufReader<TcpStream>,
    port: u16,
    /// `/messages?sessionId=<id>` from the endpoint event.
    endpoint: String,
}

/// Opens `/sse`; `Err((status, headers))` when it is refused.
fn open(port: u16, headers: &[(&str, &str)]) -> Result<Stream, (u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut head =
        format!("GET /sse HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n");
    for (k, v) in headers {
        head += &format!("{k}: {v}\r\n");
    }
    head += "\r\n";
    s.write_all(head.as_bytes()).expect("write");
    let mut r = BufReader::new(s);
    let (status, hs) = read_head(&mut r);
    if status != 200 {
        let len = hs
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0);
        let mut buf = vec![0; len];
        r.read_exact(&mut buf).expect("body");
        return Err((status, String::from_utf8_lossy(&buf).into_owned()));
    }
    let ct = hs
        .iter()
        .find(|(k, _)| k == "content-type")
        .map(|(_, v)| v.as_str());
    assert_eq!(ct, Some("text/event-stream"), "{hs:?}");
    let mut st = Stream {
        r,
        port,
        endpoint: String::new(),
    };
    let (event, data) = st.next_event();
    assert_eq!(event, "endpoint", "the first event: {data}");
    assert!(data.starts_with("/messages?sessionId="), "{data}");
    assert!(data.len() > "/messages?sessionId=".len() + 16, "{data}");
    st.endpoint = data;
    Ok(st)
}

impl Stream {
    /// The next `event:` with its `data:` (chunk framing and comments skipped).
    fn next_event(&mut self) -> (String, String) {
        let mut event = None;
        loop {
            let mut l = String::new();
            let n = self.r.read_line(&mut l).expect("read the event stream");
            assert!(n > 0, "the event stream ended");
            let l = l.trim_end();
            if let Some(e) = l.strip_prefix("event: ") {
                event = Some(e.to_string());
            } else if let (Some(d), Some(e)) = (l.strip_prefix("data: "), &event) {
                return (e.clone(), d.to_string());
            }
        }
    }

    /// The next JSON-RPC message on the stream.
    fn next_message(&mut self) -> Value {
        let (event, data) = self.next_event();
        assert_eq!(event, "message", "{data}");
        serde_json::from_str(&data).expect("a JSON message")
    }

    fn post(&self, body: &str) -> (u16, String) {
        request(self.port, "POST", &self.endpoint, &[], body)
    }

    /// initialize at protocol 2024-11-05, then notifications/initialized.
    fn initialize(&mut self) -> Value {
        let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"raw-sse","version":"0"}}}"#;
        assert_eq!(self.post(init).0, 202);
        let reply = self.next_message();
        let done = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        assert_eq!(self.post(done).0, 202);
        reply
    }
}

const PING: &str = r#"{"jsonrpc":"2.0","id":9,"method":"ping"}"#;

#[test]
fn python_sdk_sse_client_calls_every_tool_with_a_token() {
    let env = backfilled();
    let server = Server::start(&env, &[], &[("BLUEPLANE_TOKEN", TOKEN)]);
    // Without the token neither route answers.
    let Err((status, _)) = open(server.port, &[]) else {
        panic!("/sse opened without the token");
    };
    assert_eq!(status, 401);
    assert_eq!(
        request(server.port, "POST", "/messages?sessionId=x", &[], PING).0,
        401
    );
    let url = format!("http://127.0.0.1:{}/sse", server.port);
    run_script(
        &env,
        "test_sse.py",
        &["--url", &url],
        &[("BLUEPLANE_TOKEN", TOKEN)],
    );
}

#[test]
fn raw_protocol_security_cap_disconnect_and_shutdown() {
    let env = Env::new(&[]);
    let mut server = Server::start(&env, &[], &[]);
    let port = server.port;

    // The protocol: 202 for each POST, the replies on the stream.
    let mut s = open(port, &[]).expect("open /sse");
    let reply = s.initialize();
    assert_eq!(reply["id"], 1, "{reply}");
    assert_eq!(
        reply["result"]["serverInfo"]["name"], "blueplane",
        "{reply}"
    );
    assert_eq!(reply["result"]["protocolVersion"], "2024-11-05", "{reply}");
    let (status, _) = s.post(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#);
    assert_eq!(status, 202);
    let tools = s.next_message();
    assert_eq!(tools["id"], 2, "{tools}");
    assert_eq!(
        tools["result"]["tools"].as_array().map(Vec::len),
        Some(7),
        "{tools}"
    );
    let call = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"get_pipeline_status","arguments":{}}}"#;
    assert_eq!(s.post(call).0, 202);
    let result = s.next_message();
    assert_eq!(result["id"], 3, "{result}");
    assert!(
        result["result"]["structuredContent"].is_object(),
        "{result}"
    );
    let (status, body) = s.post("not json");
    assert_eq!(status, 400, "{body}");
    // A body over 1 MiB streamed without a length is refused too (413), the session kept.
    {
        let big = vec![b' '; (1 << 20) + 1];
        let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n",
            s.endpoint,
            big.len()
        );
        c.write_all(head.as_bytes()).expect("write");
        let _ = c.write_all(&big);
        let _ = c.write_all(b"\r\n0\r\n\r\n");
        let (status, _) = read_head(&mut BufReader::new(c));
        assert_eq!(status, 413);
    }

    // Unknown or missing sessions.
    let (status, body) = request(port, "POST", "/messages?sessionId=nope", &[], PING);
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("/sse"), "{body}");
    assert_eq!(request(port, "POST", "/messages", &[], PING).0, 400);

    // The security middleware in front of both routes.
    let evil = [("Origin", "http://evil.example")];
    let Err((status, _)) = open(port, &evil) else {
        panic!("/sse opened from a foreign Origin");
    };
    assert_eq!(status, 403);
    assert_eq!(request(port, "POST", &s.endpoint, &evil, PING).0, 403);
    let Err((status, _)) = open(port, &[("Host", "evil.example")]) else {
        panic!("/sse opened for a foreign Host");
    };
    assert_eq!(status, 421);
    assert_eq!(
        request(port, "POST", &s.endpoint, &[("Host", "evil.example")], PING).0,
        421
    );
    assert_eq!(
        s.post(PING).0,
        202,
        "the refusals did not touch the session"
    );
    assert_eq!(s.next_message()["id"], 9);

    // A disconnected client's session is removed: POSTs to it soon get 404.
    let gone = s.endpoint.clone();
    drop(s);
    let t0 = Instant::now();
    loop {
        let (status, body) = request(port, "POST", &gone, &[], PING);
        if status == 404 {
            break;
        }
        assert_eq!(status, 202, "{body}");
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the session of a closed stream still accepts messages"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The session cap: MAX_SESSIONS streams are served, one more is refused with 503.
    let mut open_streams: Vec<Stream> = (0..MAX_SESSIONS)
        .map(|i| open(port, &[]).unwrap_or_else(|e| panic!("stream {i}: {e:?}")))
        .collect();
    let Err((status, body)) = open(port, &[]) else {
        panic!("stream {} opened past the cap", MAX_SESSIONS + 1);
    };
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("too many"), "{body}");
    // The other transport is not capped by it.
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#;
    let (status, _) = request(
        port,
        "POST",
        "/mcp",
        &[("Accept", "application/json, text/event-stream")],
        init,
    );
    assert_eq!(status, 200);
    // Closing one frees a place.
    let closed = open_streams.pop().expect("a stream");
    let closed_endpoint = closed.endpoint.clone();
    drop(closed);
    let t0 = Instant::now();
    while request(port, "POST", &closed_endpoint, &[], PING).0 != 404 {
        assert!(t0.elapsed() < Duration::from_secs(20), "slot not freed");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut again = open(port, &[]).expect("a place after one closed");
    let reply = again.initialize();
    assert_eq!(
        reply["result"]["serverInfo"]["name"], "blueplane",
        "{reply}"
    );

    // SIGTERM with every stream open: the server ends them and exits.
    let st = server.signal("TERM", Duration::from_secs(15));
    assert!(st.success(), "exit after SIGTERM: {st}");
    // The stream ended rather than hanging.
    let mut rest = String::new();
    let _ = again.r.read_to_string(&mut rest);
    assert!(!rest.contains("event: message"), "{rest}");
}

/// The JSON-RPC guard of stdio on `POST /messages` too: an error that answers a request
/// (-32600 with its id, -32602 for bad `tools/call` params or a `tools/list` cursor) comes on
/// the stream after a 202 like any reply; one without an id (malformed JSON, a batch, an
/// invalid notification) is the JSON body of a 400. The session keeps working.
#[test]
fn json_rpc_errors_on_messages_have_the_codes_of_stdio() {
    let env = Env::new(&[]);
    let server = Server::start(&env, &[], &[]);
    let mut s = open(server.port, &[]).expect("open /sse");
    s.initialize();
    for (body, code) in [
        ("not json {", -32700),
        ("42", -32600),
        (r#"[{"jsonrpc":"2.0","id":5,"method":"ping"}]"#, -32600),
        (r#"{"jsonrpc":"2.0","method":7}"#, -32600),
    ] {
        let (status, reply) = s.post(body);
        assert_eq!(status, 400, "{body}: {reply}");
        let v: Value =
            serde_json::from_str(&reply).unwrap_or_else(|e| panic!("{body}: {e}: {reply}"));
        assert_eq!(v["error"]["code"], code, "{body}: {v}");
        assert!(v["id"].is_null(), "{body}: {v}");
    }
    for (body, id, code) in [
        (r#"{"jsonrpc":"2.0","id":7,"method":42}"#, 7, -32600),
        (r#"{"jsonrpc":"1.0","id":3,"method":"ping"}"#, 3, -32600),
        (
            r#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"arguments":{}}}"#,
            8,
            -32602,
        ),
        (
            r#"{"jsonrpc":"2.0","id":10,"method":"tools/list","params":{"cursor":"bogus"}}"#,
            10,
            -32602,
        ),
    ] {
        let (status, reply) = s.post(body);
        assert_eq!(status, 202, "{body}: {reply}");
        let m = s.next_message();
        assert_eq!(m["id"], id, "{body}: {m}");
        assert_eq!(m["error"]["code"], code, "{body}: {m}");
    }
    assert_eq!(s.post(PING).0, 202);
    let pong = s.next_message();
    assert_eq!(pong["id"], 9, "{pong}");
    assert!(pong["result"].is_object(), "{pong}");
}
