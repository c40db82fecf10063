//! The legacy HTTP+SSE transport of MCP (protocol 2024-11-05) for older clients: `GET /sse`
//! and `POST /messages?sessionId=<id>`, next to Streamable HTTP on the router of [`super::http`].
//!
//! Owns the session table and a per-session channel pair that is an rmcp [`Transport`], so the
//! same [`Telemetry`] handler runs through `serve_server` as over stdio. `GET /sse` opens a
//! session: its stream first sends `event: endpoint` (the URL to POST to), then one
//! `event: message` per JSON-RPC message from the server, and a keep-alive comment every
//! [`Limits::keep_alive`]. `POST /messages` hands one JSON-RPC message to the session and
//! answers 202; the reply goes out on the stream. Bodies pass the JSON-RPC guard of
//! [`super::jsonrpc`] first: its errors for a request go out on the stream too, those without
//! an id (malformed JSON, a batch) are the body of a 400. Invariants: at most [`Limits::max_sessions`]
//! streams (more → 503); each session's outgoing queue is bounded, and a reader too slow to
//! drain it loses its session (logged) rather than growing memory; a session is gone (POST →
//! 404) as soon as its stream is dropped, and its handler task ends with it; shutdown ends
//! every stream. The security middleware of [`super::http`] runs in front of both routes.
//! Called by `http::router`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use rmcp::RoleServer;
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage, serve_server_with_ct};
use rmcp::transport::Transport;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::CancellationToken;

use super::Telemetry;
use super::jsonrpc::{self, Verdict};

/// The event stream of a legacy client.
pub const SSE_PATH: &str = "/sse";
/// Where a legacy client POSTs its messages (`?sessionId=<id>`).
pub const MESSAGES_PATH: &str = "/messages";

/// Bounds of the legacy transport.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Open streams at most; one more gets 503.
    pub max_sessions: usize,
    /// Messages queued per session in each direction.
    pub queue: usize,
    /// Interval of the keep-alive comments on a stream.
    pub keep_alive: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_sessions: 64,
            queue: 64,
            keep_alive: Duration::from_secs(15),
        }
    }
}

/// Why a message for a legacy client was not queued.
#[derive(Debug, thiserror::Error)]
pub enum SseError {
    #[error("the SSE client reads too slowly: its queue is full and its session was dropped")]
    Full,
}

/// What the table keeps of a session: how to reach its handler, and how to stop it.
struct Entry {
    inbound: mpsc::Sender<RxJsonRpcMessage<RoleServer>>,
    /// The stream's queue, for the errors `POST /messages` answers itself.
    outbound: mpsc::Sender<TxJsonRpcMessage<RoleServer>>,
    cancel: CancellationToken,
}

/// The open sessions and what a new one needs.
struct Sessions {
    table: Mutex<HashMap<String, Entry>>,
    telemetry: Telemetry,
    shutdown: CancellationToken,
    limits: Limits,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ends a session: POSTs to it get 404 from now on and its handler stops.
    fn remove(&self, id: &str) {
        if let Some(e) = self.lock().remove(id) {
            e.cancel.cancel();
            tracing::debug!(session = id, "SSE session closed");
        }
    }

    /// The queues to the session's handler and to its stream.
    #[allow(clippy::type_complexity)]
    fn queues(
        &self,
        id: &str,
    ) -> Option<(
        mpsc::Sender<RxJsonRpcMessage<RoleServer>>,
        mpsc::Sender<TxJsonRpcMessage<RoleServer>>,
    )> {
        self.lock()
            .get(id)
            .map(|e| (e.inbound.clone(), e.outbound.clone()))
    }

    /// How many sessions are open.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is open.
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One session's side of the channels, as rmcp sees it.
struct SessionTransport {
    id: String,
    inbound: mpsc::Receiver<RxJsonRpcMessage<RoleServer>>,
    outbound: mpsc::Sender<TxJsonRpcMessage<RoleServer>>,
    cancel: CancellationToken,
    sessions: Arc<Sessions>,
}

impl Transport<RoleServer> for SessionTransport {
    type Error = SseError;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), SseError>> + Send + 'static {
        let result = match self.outbound.try_send(item) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                tracing::warn!(
                    session = %self.id,
                    queue = self.sessions.limits.queue,
                    "Dropped an SSE session: the client does not read its stream"
                );
                self.sessions.remove(&self.id);
                Err(SseError::Full)
            }
            // The stream is gone (the client left); its session ends with it.
            Err(TrySendError::Closed(_)) => {
                tracing::debug!(session = %self.id, "A message for a closed SSE stream was dropped");
                Ok(())
            }
        };
        std::future::ready(result)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        tokio::select! {
            biased;
            () = self.cancel.cancelled() => None,
            m = self.inbound.recv() => m,
        }
    }

    async fn close(&mut self) -> Result<(), SseError> {
        self.cancel.cancel();
        Ok(())
    }
}

/// The body of `GET /sse`: the endpoint event, then the session's messages. Dropping it (the
/// client went away) ends the session.
struct Events {
    endpoint: Option<String>,
    outbound: mpsc::Receiver<TxJsonRpcMessage<RoleServer>>,
    id: String,
    sessions: Arc<Sessions>,
}

impl Drop for Events {
    fn drop(&mut self) {
        self.sessions.remove(&self.id);
    }
}

impl futures_core::Stream for Events {
    type Item = Result<Event, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(url) = this.endpoint.take() {
            return Poll::Ready(Some(Ok(Event::default().event("endpoint").data(url))));
        }
        loop {
            match this.outbound.poll_recv(cx) {
                Poll::Ready(Some(m)) => match serde_json::to_string(&m) {
                    Ok(json) => {
                        return Poll::Ready(Some(Ok(Event::default().event("message").data(json))));
                    }
                    Err(e) => {
                        tracing::error!(session = %this.id, error = %e, "Cannot encode an MCP message");
                    }
                },
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// `GET /sse` and `POST /messages`, for [`super::http`] to merge (its middleware in front).
pub fn router(telemetry: Telemetry, shutdown: &CancellationToken, limits: Limits) -> axum::Router {
    router_with(sessions(telemetry, shutdown, limits))
}

fn sessions(telemetry: Telemetry, shutdown: &CancellationToken, limits: Limits) -> Arc<Sessions> {
    Arc::new(Sessions {
        table: Mutex::new(HashMap::new()),
        telemetry,
        shutdown: shutdown.clone(),
        limits,
    })
}

fn router_with(sessions: Arc<Sessions>) -> axum::Router {
    axum::Router::new()
        .route(SSE_PATH, axum::routing::get(open))
        .route(MESSAGES_PATH, axum::routing::post(message))
        .with_state(sessions)
}

fn text(status: StatusCode, body: &'static str) -> Response {
    (status, body).into_response()
}

async fn open(State(sessions): State<Arc<Sessions>>) -> Response {
    let limits = sessions.limits;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (in_tx, in_rx) = mpsc::channel(limits.queue);
    let (out_tx, out_rx) = mpsc::channel(limits.queue);
    let cancel = sessions.shutdown.child_token();
    {
        let mut table = sessions.lock();
        if table.len() >= limits.max_sessions {
            tracing::warn!(
                max = limits.max_sessions,
                "Refused an SSE session: too many open"
            );
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many open SSE sessions; close one, or use Streamable HTTP at /mcp\n",
            );
        }
        table.insert(
            id.clone(),
            Entry {
                inbound: in_tx,
                outbound: out_tx.clone(),
                cancel: cancel.clone(),
            },
        );
    }
    tracing::debug!(session = %id, "SSE session opened");
    let transport = SessionTransport {
        id: id.clone(),
        inbound: in_rx,
        outbound: out_tx,
        cancel: cancel.clone(),
        sessions: sessions.clone(),
    };
    tokio::spawn(run(
        sessions.telemetry.clone(),
        transport,
        cancel,
        id.clone(),
        sessions.clone(),
    ));
    let events = Events {
        endpoint: Some(format!("{MESSAGES_PATH}?sessionId={id}")),
        outbound: out_rx,
        id,
        sessions,
    };
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(limits.keep_alive))
        .into_response()
}

/// The handler of one session, until its stream or the server goes away.
async fn run(
    telemetry: Telemetry,
    transport: SessionTransport,
    cancel: CancellationToken,
    id: String,
    sessions: Arc<Sessions>,
) {
    match serve_server_with_ct(telemetry, transport, cancel).await {
        Ok(running) => {
            if let Err(e) = running.waiting().await {
                tracing::error!(session = %id, error = %e, "An SSE session's handler failed");
            }
        }
        Err(e) => {
            tracing::debug!(session = %id, error = %e, "An SSE session ended before initializing")
        }
    }
    sessions.remove(&id);
}

/// The `sessionId` of a query string.
fn session_param(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("sessionId="))
        .filter(|v| !v.is_empty())
}

async fn message(State(sessions): State<Arc<Sessions>>, uri: Uri, body: Bytes) -> Response {
    let Some(id) = session_param(uri.query()) else {
        return text(
            StatusCode::BAD_REQUEST,
            "missing ?sessionId= (from the endpoint event of GET /sse)\n",
        );
    };
    let Some((inbound, outbound)) = sessions.queues(id) else {
        return text(
            StatusCode::NOT_FOUND,
            "no such SSE session (closed or never opened); open GET /sse again\n",
        );
    };
    // The JSON-RPC guard first, as on stdio: an error that answers a request goes out on the
    // stream like any response; one without an id is the 400's body.
    let msg: RxJsonRpcMessage<RoleServer> = match jsonrpc::verdict_body(&body) {
        Verdict::Forward => match serde_json::from_slice(&body) {
            Ok(m) => m,
            Err(e) => {
                let id = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("id").cloned())
                    .unwrap_or_default();
                return answer(
                    &outbound,
                    serde_json::json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32600,
                        "message": format!("Invalid request: not a JSON-RPC message this server reads ({e})")}}),
                );
            }
        },
        Verdict::Reply(r) | Verdict::Drop(r) => return answer(&outbound, r),
    };
    match inbound.try_send(msg) {
        Ok(()) => text(StatusCode::ACCEPTED, "Accepted\n"),
        Err(TrySendError::Full(_)) => text(
            StatusCode::TOO_MANY_REQUESTS,
            "this SSE session has too many unanswered messages; retry later\n",
        ),
        Err(TrySendError::Closed(_)) => text(
            StatusCode::NOT_FOUND,
            "no such SSE session (closed or never opened); open GET /sse again\n",
        ),
    }
}

/// Delivers a JSON-RPC error the guard made: on the stream when it answers a request (202,
/// as for every message), else as the body of a 400.
fn answer(
    outbound: &mpsc::Sender<TxJsonRpcMessage<RoleServer>>,
    reply: serde_json::Value,
) -> Response {
    tracing::debug!(reply = %reply, "JSON-RPC error answered by the SSE guard");
    if jsonrpc::reply_id(&reply).is_some()
        && let Ok(m) = serde_json::from_value::<TxJsonRpcMessage<RoleServer>>(reply.clone())
    {
        return match outbound.try_send(m) {
            Ok(()) => text(StatusCode::ACCEPTED, "Accepted\n"),
            Err(TrySendError::Full(_)) => text(
                StatusCode::TOO_MANY_REQUESTS,
                "this SSE session has too many unanswered messages; retry later\n",
            ),
            Err(TrySendError::Closed(_)) => text(
                StatusCode::NOT_FOUND,
                "no such SSE session (closed or never opened); open GET /sse again\n",
            ),
        };
    }
    (
        StatusCode::BAD_REQUEST,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        reply.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::{JsonRpcMessage, JsonRpcNotification, ServerNotification};

    fn telemetry(dir: &std::path::Path) -> Telemetry {
        let db = dir.join("telemetry.db");
        Telemetry::new(super::super::State {
            db: db.clone(),
            reader: crate::query::reader::Reader::new(&db),
            queue: None,
            privacy: Default::default(),
        })
    }

    fn notification() -> TxJsonRpcMessage<RoleServer> {
        JsonRpcMessage::Notification(JsonRpcNotification {
            jsonrpc: Default::default(),
            notification: ServerNotification::ToolListChangedNotification(Default::default()),
        })
    }

    #[test]
    fn session_param_reads_the_session_id() {
        assert_eq!(session_param(Some("sessionId=abc")), Some("abc"));
        assert_eq!(session_param(Some("x=1&sessionId=abc")), Some("abc"));
        assert_eq!(session_param(Some("sessionId=")), None);
        assert_eq!(session_param(Some("session=abc")), None);
        assert_eq!(session_param(None), None);
    }

    #[tokio::test]
    async fn a_full_queue_drops_the_session() {
        let dir = tempfile::tempdir().unwrap();
        let stop = CancellationToken::new();
        let limits = Limits {
            max_sessions: 4,
            queue: 2,
            keep_alive: Duration::from_secs(15),
        };
        let s = sessions(telemetry(dir.path()), &stop, limits);
        let (in_tx, in_rx) = mpsc::channel(limits.queue);
        let (out_tx, mut out_rx) = mpsc::channel(limits.queue);
        let cancel = stop.child_token();
        s.lock().insert(
            "a".into(),
            Entry {
                inbound: in_tx,
                outbound: out_tx.clone(),
                cancel: cancel.clone(),
            },
        );
        let mut t = SessionTransport {
            id: "a".into(),
            inbound: in_rx,
            outbound: out_tx,
            cancel: cancel.clone(),
            sessions: s.clone(),
        };
        // The reader keeps up: any number of messages pass.
        for _ in 0..5 {
            t.send(notification()).await.unwrap();
            assert!(out_rx.recv().await.is_some());
        }
        // The reader stops: the queue fills, the next message drops the session.
        for _ in 0..limits.queue {
            t.send(notification()).await.unwrap();
        }
        assert_eq!(s.len(), 1);
        assert!(matches!(t.send(notification()).await, Err(SseError::Full)));
        assert!(s.is_empty(), "the session is gone from the table");
        assert!(cancel.is_cancelled());
        assert!(t.receive().await.is_none(), "the handler's input ends");
        // The queue held no more than its bound.
        let mut queued = 0;
        while out_rx.try_recv().is_ok() {
            queued += 1;
        }
        assert_eq!(queued, limits.queue);
    }

    /// Reads lines from `r` until one satisfies `want`; the lines read.
    fn read_until(r: &mut impl std::io::BufRead, want: impl Fn(&str) -> bool) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let mut l = String::new();
            assert!(r.read_line(&mut l).unwrap() > 0, "stream ended: {lines:?}");
            let done = want(l.trim_end());
            lines.push(l.trim_end().to_string());
            if done {
                return lines;
            }
        }
    }

    fn get_sse(port: u16) -> std::io::BufReader<std::net::TcpStream> {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(s, "GET /sse HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").unwrap();
        std::io::BufReader::new(s)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keep_alive_comments_cap_and_cleanup_over_a_socket() {
        let dir = tempfile::tempdir().unwrap();
        let stop = CancellationToken::new();
        let limits = Limits {
            max_sessions: 1,
            queue: 4,
            keep_alive: Duration::from_millis(100),
        };
        let s = sessions(telemetry(dir.path()), &stop, limits);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(
            axum::serve(listener, router_with(s.clone()))
                .with_graceful_shutdown(stop.clone().cancelled_owned())
                .into_future(),
        );
        let table = s.clone();
        let _open = tokio::task::spawn_blocking(move || {
            let mut first = get_sse(port);
            let head = read_until(&mut first, |l| l.starts_with("data: "));
            assert!(head[0].contains(" 200 "), "{head:?}");
            let endpoint = head.last().unwrap().clone();
            assert!(
                endpoint.starts_with("data: /messages?sessionId="),
                "{head:?}"
            );
            // Nothing to say: keep-alive comments, several of them within a second.
            let t0 = std::time::Instant::now();
            for _ in 0..3 {
                read_until(&mut first, |l| l == ":");
            }
            assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
            assert_eq!(table.len(), 1);
            // The cap: a second stream is refused while the first is open.
            let mut second = get_sse(port);
            let refused = read_until(&mut second, str::is_empty);
            assert!(refused[0].contains(" 503 "), "{refused:?}");
            // The client leaves; the next keep-alive write notices and the session goes.
            drop(first);
            let t0 = std::time::Instant::now();
            while !table.is_empty() {
                assert!(t0.elapsed() < Duration::from_secs(5), "session not removed");
                std::thread::sleep(Duration::from_millis(20));
            }
            // And its place is free again.
            let mut third = get_sse(port);
            let head = read_until(&mut third, |l| l.starts_with("data: "));
            assert!(head[0].contains(" 200 "), "{head:?}");
            third
        })
        .await
        .unwrap();
        // Shutdown ends the open stream, so the server stops.
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("the server stops with a stream open")
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn shutdown_ends_the_handlers_input() {
        let dir = tempfile::tempdir().unwrap();
        let stop = CancellationToken::new();
        let s = sessions(telemetry(dir.path()), &stop, Limits::default());
        let (_in_tx, in_rx) = mpsc::channel(1);
        let (out_tx, _out_rx) = mpsc::channel(1);
        let mut t = SessionTransport {
            id: "b".into(),
            inbound: in_rx,
            outbound: out_tx,
            cancel: stop.child_token(),
            sessions: s,
        };
        stop.cancel();
        let got = tokio::time::timeout(Duration::from_secs(5), t.receive()).await;
        assert!(matches!(got, Ok(None)), "receive ends on shutdown");
    }
}
