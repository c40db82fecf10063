//! A thin JSON-RPC guard in front of rmcp's line transport: the error codes the spec asks for
//! where rmcp 3.11 gets them wrong.
//!
//! rmcp does not answer a line that is not JSON (upstream chose silence, rust-sdk #938; the
//! spec says -32700 with `id: null`), answers an invalid request with -32600 but without its
//! `id`, answers `tools/call` without a tool name with -32601, and ignores a `tools/list`
//! cursor. [`guard`] sits between the client's
//! byte streams and rmcp: every line is looked at once ([`verdict`]); well-formed messages pass
//! through unchanged, the others are answered here, and rmcp's output and these answers are
//! written whole lines at a time to the one output.
//!
//! Invariant: a line that is forwarded is forwarded byte for byte; the output carries only
//! complete JSON-RPC lines. Callers: `blueplane serve` (stdio); the HTTP transports judge each
//! POST body with [`verdict_body`] (`http` for `/mcp`, `sse` for `/messages`), where rmcp
//! answers malformed bodies with a bare 415.

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, DuplexStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// What to do with one input line.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Pass it to rmcp.
    Forward,
    /// Answer it with this error response instead.
    Reply(Value),
    /// Drop it (an invalid notification: nothing may answer it on a line transport; over
    /// HTTP this error, without an id, is the body of the 400).
    Drop(Value),
}

const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const INVALID_PARAMS: i64 = -32602;

fn error_value(id: Value, code: i64, message: String) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

fn error(id: Value, code: i64, message: String) -> Verdict {
    Verdict::Reply(error_value(id, code, message))
}

/// The `id` of an error reply, when it answers a request (not `null`).
pub fn reply_id(reply: &Value) -> Option<&Value> {
    reply.get("id").filter(|i| !i.is_null())
}

/// Whether an error reply is -32602: a well-formed request with bad params.
pub fn is_invalid_params(reply: &Value) -> bool {
    reply.pointer("/error/code").and_then(Value::as_i64) == Some(INVALID_PARAMS)
}

/// Judges one HTTP POST body: [`verdict`], plus what only bodies have — bytes that are not
/// UTF-8 (-32700) and batches (-32600: rmcp 3.11 has no batch support, and protocol
/// 2025-06-18 removed JSON-RPC batching; one message per request works at every version).
pub fn verdict_body(body: &[u8]) -> Verdict {
    let Ok(text) = std::str::from_utf8(body) else {
        return error(
            Value::Null,
            PARSE_ERROR,
            "Parse error: the body is not UTF-8 JSON".into(),
        );
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
        return error(
            Value::Null,
            PARSE_ERROR,
            format!("Parse error: {e}; the body must be one JSON-RPC message"),
        );
    }
    if text.trim_start().starts_with('[') && serde_json::from_str::<Value>(text).is_ok() {
        return error(
            Value::Null,
            INVALID_REQUEST,
            "Invalid request: JSON-RPC batches are not supported; send one message per request"
                .into(),
        );
    }
    verdict(text)
}

/// Judges one line of input.
pub fn verdict(line: &str) -> Verdict {
    let v: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => {
            return error(
                Value::Null,
                PARSE_ERROR,
                format!("Parse error: {e}; send one JSON-RPC message per line"),
            );
        }
    };
    let Value::Object(o) = &v else {
        if v.is_array() {
            // Batches are rmcp's to accept or refuse.
            return Verdict::Forward;
        }
        return error(
            Value::Null,
            INVALID_REQUEST,
            "Invalid request: a JSON-RPC message is an object".into(),
        );
    };
    let id = match o.get("id") {
        None => None,
        Some(i @ (Value::String(_) | Value::Number(_))) => Some(i.clone()),
        Some(Value::Null) => Some(Value::Null),
        Some(_) => {
            return error(
                Value::Null,
                INVALID_REQUEST,
                "Invalid request: id must be a string or a number".into(),
            );
        }
    };
    let invalid = |why: &str| match &id {
        Some(id) => error(
            id.clone(),
            INVALID_REQUEST,
            format!("Invalid request: {why}"),
        ),
        None => Verdict::Drop(error_value(
            Value::Null,
            INVALID_REQUEST,
            format!("Invalid request: {why}"),
        )),
    };
    if o.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return invalid("jsonrpc must be \"2.0\"");
    }
    let method = match o.get("method") {
        Some(Value::String(m)) => m.as_str(),
        Some(_) => return invalid("method must be a string"),
        // A response from the client (to a server request) goes through.
        None if o.contains_key("result") || o.contains_key("error") => return Verdict::Forward,
        None => return invalid("no method"),
    };
    let params = o.get("params");
    if params.is_some_and(|p| !(p.is_object() || p.is_array() || p.is_null())) {
        return invalid("params must be an object or an array");
    }
    let Some(id) = id else {
        return Verdict::Forward;
    };
    let param = |k: &str| params.and_then(|p| p.get(k));
    match method {
        "tools/call" => {
            if !param("name").is_some_and(Value::is_string) {
                return error(
                    id,
                    INVALID_PARAMS,
                    "Invalid params: tools/call needs params.name, a tool name from tools/list"
                        .into(),
                );
            }
            if param("arguments").is_some_and(|a| !(a.is_object() || a.is_null())) {
                return error(
                    id,
                    INVALID_PARAMS,
                    "Invalid params: tools/call params.arguments must be an object".into(),
                );
            }
        }
        "tools/list" => {
            if let Some(c) = param("cursor").filter(|c| !c.is_null()) {
                return error(
                    id,
                    INVALID_PARAMS,
                    format!(
                        "Invalid params: unknown cursor {c}: tools/list has one page; omit the cursor"
                    ),
                );
            }
        }
        _ => {}
    }
    Verdict::Forward
}

async fn write_line<W: AsyncWrite + Unpin>(output: &mut W, line: String) -> std::io::Result<()> {
    let mut bytes = line.into_bytes();
    bytes.push(b'\n');
    output.write_all(&bytes).await?;
    output.flush().await
}

/// [`guard`] over the process's stdin and stdout.
pub fn stdio() -> ((DuplexStream, DuplexStream), JoinHandle<()>) {
    guard(tokio::io::stdin(), tokio::io::stdout())
}

/// Puts the guard between `input`/`output` and rmcp: returns the pair of streams to give
/// `serve`, and a task that ends once everything rmcp and the guard wrote is on `output`
/// (await it before the process exits).
pub fn guard<R, W>(input: R, output: W) -> ((DuplexStream, DuplexStream), JoinHandle<()>)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    const BUF: usize = 64 * 1024;
    let (mut to_rmcp, rmcp_in) = tokio::io::duplex(BUF);
    let (rmcp_out, from_rmcp) = tokio::io::duplex(BUF);
    let (replies, mut replies_rx) = mpsc::unbounded_channel::<Value>();

    tokio::spawn(async move {
        let mut lines = BufReader::new(input).lines();
        loop {
            let line = match lines.next_line().await {
                Ok(Some(l)) => l,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "MCP input unreadable; closing the session");
                    break;
                }
            };
            // A UTF-8 byte order mark (Windows tools write one) is not part of the message.
            let line = match line.strip_prefix('\u{feff}') {
                Some(rest) => rest.to_string(),
                None => line,
            };
            if line.trim().is_empty() {
                continue;
            }
            match verdict(&line) {
                Verdict::Forward => {
                    let mut bytes = line.into_bytes();
                    bytes.push(b'\n');
                    if to_rmcp.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                Verdict::Reply(r) => {
                    tracing::debug!(reply = %r, "JSON-RPC error answered by the guard");
                    if replies.send(r).is_err() {
                        break;
                    }
                }
                Verdict::Drop(_) => tracing::debug!("invalid notification dropped"),
            }
        }
        // EOF for rmcp: the session ends as if the client had closed stdin.
        let _ = to_rmcp.shutdown().await;
    });

    let flushed = tokio::spawn(async move {
        let mut output = output;
        let mut rmcp_lines = BufReader::new(from_rmcp).lines();
        let mut replies_open = true;
        loop {
            let line = tokio::select! {
                l = rmcp_lines.next_line() => match l {
                    Ok(Some(l)) => l,
                    // rmcp is done: what the guard answered before that still goes out.
                    _ => {
                        while let Ok(r) = replies_rx.try_recv() {
                            if write_line(&mut output, r.to_string()).await.is_err() {
                                break;
                            }
                        }
                        break;
                    }
                },
                r = replies_rx.recv(), if replies_open => match r {
                    Some(r) => r.to_string(),
                    None => { replies_open = false; continue; }
                },
            };
            if write_line(&mut output, line).await.is_err() {
                break;
            }
        }
    });
    ((rmcp_in, rmcp_out), flushed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(v: Verdict) -> (Value, i64) {
        match v {
            Verdict::Reply(r) => (r["id"].clone(), r["error"]["code"].as_i64().unwrap_or(0)),
            other => panic!("want a reply, got {other:?}"),
        }
    }

    #[test]
    fn codes() {
        assert_eq!(code(verdict("not json {")), (Value::Null, PARSE_ERROR));
        assert_eq!(code(verdict("42")), (Value::Null, INVALID_REQUEST));
        assert_eq!(
            code(verdict(r#"{"jsonrpc":"2.0","id":7,"method":42}"#)),
            (json!(7), INVALID_REQUEST)
        );
        assert_eq!(
            code(verdict(r#"{"jsonrpc":"2.0","id":"a"}"#)),
            (json!("a"), INVALID_REQUEST)
        );
        assert_eq!(
            code(verdict(r#"{"jsonrpc":"1.0","id":3,"method":"ping"}"#)),
            (json!(3), INVALID_REQUEST)
        );
        assert_eq!(
            code(verdict(
                r#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"arguments":{}}}"#
            )),
            (json!(8), INVALID_PARAMS)
        );
        assert_eq!(
            code(verdict(
                r#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"x","arguments":[1]}}"#
            )),
            (json!(8), INVALID_PARAMS)
        );
        assert_eq!(
            code(verdict(
                r#"{"jsonrpc":"2.0","id":9,"method":"tools/list","params":{"cursor":"bogus"}}"#
            )),
            (json!(9), INVALID_PARAMS)
        );
    }

    #[test]
    fn well_formed_messages_pass() {
        for l in [
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"cursor":null}}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"x"}}"#,
            r#"{"jsonrpc":"2.0","id":4,"result":{}}"#,
            r#"[{"jsonrpc":"2.0","id":5,"method":"ping"}]"#,
        ] {
            assert_eq!(verdict(l), Verdict::Forward, "{l}");
        }
        assert!(matches!(
            verdict(r#"{"jsonrpc":"2.0","method":7}"#),
            Verdict::Drop(e) if e["error"]["code"] == INVALID_REQUEST && e["id"].is_null()
        ));
    }

    #[test]
    fn bodies() {
        assert_eq!(code(verdict_body(b"\xff\xfe{")), (Value::Null, PARSE_ERROR));
        assert_eq!(code(verdict_body(b"{")), (Value::Null, PARSE_ERROR));
        for batch in [
            &br#"[{"jsonrpc":"2.0","id":5,"method":"ping"}]"#[..],
            b"[]",
            b" [1] ",
        ] {
            assert_eq!(code(verdict_body(batch)), (Value::Null, INVALID_REQUEST));
        }
        assert_eq!(
            verdict_body(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n"),
            Verdict::Forward
        );
        let Verdict::Reply(r) = verdict_body(
            br#"{"jsonrpc":"2.0","id":"x","method":"tools/list","params":{"cursor":"c"}}"#,
        ) else {
            panic!("want a reply");
        };
        assert!(is_invalid_params(&r));
        assert_eq!(reply_id(&r), Some(&json!("x")));
        let Verdict::Reply(r) = verdict_body(b"nope") else {
            panic!("want a reply");
        };
        assert_eq!(reply_id(&r), None);
        assert!(!is_invalid_params(&r));
    }

    #[tokio::test]
    async fn guard_forwards_and_answers_in_whole_lines() {
        let (client, server_in) = tokio::io::duplex(4096);
        let (server_out, mut client_out) = tokio::io::duplex(4096);
        let ((mut rmcp_in, mut rmcp_out), flushed) = guard(server_in, server_out);
        let mut client = client;
        client
            .write_all(
                "garbage\n\u{feff}{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n".as_bytes(),
            )
            .await
            .unwrap();
        drop(client);
        let mut forwarded = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut rmcp_in, &mut forwarded)
            .await
            .unwrap();
        assert_eq!(
            forwarded,
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n"
        );
        rmcp_out
            .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n")
            .await
            .unwrap();
        drop(rmcp_out);
        drop(rmcp_in);
        flushed.await.unwrap();
        let mut out = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut client_out, &mut out)
            .await
            .unwrap();
        let lines: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(
            lines
                .iter()
                .any(|l| l["error"]["code"] == PARSE_ERROR && l["id"].is_null())
        );
        assert!(
            lines
                .iter()
                .any(|l| l["id"] == 1 && l["result"].is_object())
        );
    }
}
