//! MCP over Streamable HTTP: the `/mcp` endpoint of `serve --http` and the security of a local
//! port.
//!
//! Owns binding, the axum router around rmcp's `StreamableHttpService` (one [`Telemetry`]
//! handler per session, all sharing one read pool), and [`Security`]: a middleware layer in
//! front of every route. Invariant: no request reaches rmcp, or the 404 fallback, unless its
//! headers are small, its `Host` names this server (DNS rebinding), its `Origin` (when present)
//! is loopback or listed, it carries the bearer token (when one is configured), and its
//! declared body fits [`MAX_BODY_BYTES`]. A non-loopback bind is refused unless the operator
//! asked for it (`--allow-remote`) and set a token. Behind that, a thin layer on `/mcp`
//! (`mcp_guard`) gives malformed and invalid POST bodies the JSON-RPC errors of the stdio
//! guard ([`super::jsonrpc`]) and `DELETE` the spec's answers (204, unknown session 404).
//! [`parse_addr`] reads the ADDR of `serve --http`. Called by `cli::serve`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::SessionManager as _;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::Telemetry;
use super::jsonrpc::{self, Verdict};

/// Where `serve --http` listens when no address is given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7532";
/// The MCP endpoint.
pub const PATH: &str = "/mcp";
/// Largest request body (a JSON-RPC request is a few hundred bytes).
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Largest sum of header names and values.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Most header fields in one request.
pub const MAX_HEADERS: usize = 64;
/// A session with no request for this long is closed; its client re-initializes (404).
pub const SESSION_IDLE: Duration = Duration::from_secs(15 * 60);

/// Why the HTTP server does not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(
        "refusing to listen on {0}: a non-loopback address needs --allow-remote and BLUEPLANE_TOKEN set"
    )]
    RemoteRefused(SocketAddr),
    #[error("--allow-remote {0:?} is not an origin such as https://host or http://host:8080")]
    BadOrigin(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the MCP HTTP server failed: {0}")]
    Serve(std::io::Error),
    #[error(
        "{0:?} is not an address to listen on: give HOST:PORT with an IP address or localhost (127.0.0.1:7532, [::1]:7532, localhost:7532), :PORT or PORT (on 127.0.0.1)"
    )]
    BadAddr(String),
}

/// The address of `serve --http ADDR`: `HOST:PORT` (an IP address, IPv6 in brackets),
/// `localhost:PORT`, `:PORT` or `PORT` (the last three on 127.0.0.1). Host names other than
/// `localhost` are refused rather than resolved: what a name resolves to can change, the
/// loopback rule must not.
///
/// # Errors
/// [`HttpError::BadAddr`] for anything else.
pub fn parse_addr(s: &str) -> Result<SocketAddr, HttpError> {
    let t = s.trim();
    let bad = || HttpError::BadAddr(s.to_string());
    let loopback = |port: &str| {
        port.parse::<u16>()
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
            .map_err(|_| bad())
    };
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return loopback(t);
    }
    if let Some(port) = t.strip_prefix(':') {
        return loopback(port);
    }
    if let Some((host, port)) = t.rsplit_once(':')
        && host.eq_ignore_ascii_case("localhost")
    {
        return loopback(port);
    }
    t.parse::<SocketAddr>().map_err(|_| bad())
}

/// A request refused before it reaches MCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// 431: too many or too large headers.
    HeadersTooLarge,
    /// 421: the `Host` is not this server (DNS rebinding).
    ForeignHost,
    /// 403: a browser page from a foreign origin.
    ForeignOrigin,
    /// 401: missing or wrong bearer token.
    Unauthorized,
    /// 413: the declared body is larger than [`MAX_BODY_BYTES`].
    BodyTooLarge,
}

impl Rejection {
    pub fn status(self) -> StatusCode {
        match self {
            Rejection::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Rejection::ForeignHost => StatusCode::MISDIRECTED_REQUEST,
            Rejection::ForeignOrigin => StatusCode::FORBIDDEN,
            Rejection::Unauthorized => StatusCode::UNAUTHORIZED,
            Rejection::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    fn message(self) -> &'static str {
        match self {
            Rejection::HeadersTooLarge => "request headers are too large\n",
            Rejection::ForeignHost => "the Host header does not name this server\n",
            Rejection::ForeignOrigin => "requests from this Origin are not allowed\n",
            Rejection::Unauthorized => {
                "a valid 'Authorization: Bearer <BLUEPLANE_TOKEN>' is required\n"
            }
            Rejection::BodyTooLarge => "the request body is larger than 1 MiB\n",
        }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let mut r = (self.status(), self.message()).into_response();
        if self == Rejection::Unauthorized {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

/// `scheme://host:port`, lowercase, brackets stripped from IPv6 hosts, the port explicit.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// Parses an `Origin` header value or an `--allow-remote` entry (no path, no userinfo).
    fn parse(s: &str) -> Option<Origin> {
        let (scheme, rest) = s.trim().split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let default = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = split_authority(rest, default)?;
        Some(Origin { scheme, host, port })
    }

    fn is_loopback(&self) -> bool {
        is_loopback_name(&self.host)
    }
}

/// `host[:port]` → lowercase host without IPv6 brackets, and the port (`default` if absent).
/// None for anything that is not a plain authority (paths, userinfo, bad ports, empty hosts).
fn split_authority(s: &str, default: u16) -> Option<(String, u16)> {
    if s.is_empty() || s.contains(['/', '@', '?', '#', ' ']) {
        return None;
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        h.parse::<std::net::Ipv6Addr>().ok()?;
        match after {
            "" => (h, None),
            p => (h, Some(p.strip_prefix(':')?)),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => return None,
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        None => default,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok()?,
        Some(_) => return None,
    };
    Some((host.to_ascii_lowercase(), port))
}

fn is_loopback_name(host: &str) -> bool {
    host == "localhost"
        || host.parse::<IpAddr>().is_ok_and(|ip| {
            ip == IpAddr::from([127, 0, 0, 1]) || ip == IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])
        })
}

/// Which `Host` values name this server.
#[derive(Debug, Clone)]
enum Hosts {
    /// Bound to one address: it, or localhost / 127.0.0.1 / ::1, with the bound port.
    Named { names: Vec<String>, port: u16 },
    /// Bound to every interface (`--allow-remote`, token required): any name, the bound port.
    AnyName { port: u16 },
}

/// The checks in front of every route.
#[derive(Clone)]
pub struct Security {
    token: Option<Vec<u8>>,
    hosts: Hosts,
    /// Extra origins `--allow-remote` listed.
    origins: Vec<Origin>,
}

/// Never prints the token.
impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security")
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("hosts", &self.hosts)
            .field("origins", &self.origins)
            .finish()
    }
}

impl Security {
    /// The rules for a server bound to `addr`. `allow_remote` is `Some` (perhaps empty) when
    /// `--allow-remote` was given, with the extra browser origins it lists; `token` is
    /// `BLUEPLANE_TOKEN` (an empty one counts as unset).
    ///
    /// # Errors
    /// A non-loopback `addr` without both `--allow-remote` and a token; a listed origin that
    /// does not parse.
    pub fn new(
        addr: SocketAddr,
        allow_remote: Option<&[String]>,
        token: Option<&str>,
    ) -> Result<Security, HttpError> {
        let token = token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| t.as_bytes().to_vec());
        if !addr.ip().is_loopback() && (allow_remote.is_none() || token.is_none()) {
            return Err(HttpError::RemoteRefused(addr));
        }
        let origins = allow_remote
            .unwrap_or_default()
            .iter()
            .filter(|o| !o.trim().is_empty())
            .map(|o| Origin::parse(o).ok_or_else(|| HttpError::BadOrigin(o.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        let port = addr.port();
        let hosts = if addr.ip().is_unspecified() {
            Hosts::AnyName { port }
        } else {
            let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            let bound = addr.ip().to_string();
            if !names.contains(&bound) {
                names.push(bound);
            }
            Hosts::Named { names, port }
        };
        Ok(Security {
            token,
            hosts,
            origins,
        })
    }

    /// Whether a token is required.
    pub fn requires_token(&self) -> bool {
        self.token.is_some()
    }

    /// Checks a request's headers, cheapest and most general first.
    ///
    /// # Errors
    /// The first rule the request breaks.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Rejection> {
        let size: usize = headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len())
            .sum();
        if headers.len() > MAX_HEADERS || size > MAX_HEADER_BYTES {
            return Err(Rejection::HeadersTooLarge);
        }
        if !self.host_allowed(headers) {
            return Err(Rejection::ForeignHost);
        }
        if !self.origin_allowed(headers) {
            return Err(Rejection::ForeignOrigin);
        }
        if let Some(want) = &self.token {
            let given = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| bearer(v.as_bytes()));
            if !given.is_some_and(|g| constant_time_eq(g, want)) {
                return Err(Rejection::Unauthorized);
            }
        }
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
            return Err(Rejection::BodyTooLarge);
        }
        Ok(())
    }

    fn host_allowed(&self, headers: &HeaderMap) -> bool {
        let mut all = headers.get_all(header::HOST).iter();
        let (Some(value), None) = (all.next(), all.next()) else {
            return false;
        };
        let Some((host, port)) = value.to_str().ok().and_then(|v| split_authority(v, 80)) else {
            return false;
        };
        match &self.hosts {
            Hosts::Named { names, port: p } => port == *p && names.contains(&host),
            Hosts::AnyName { port: p } => port == *p,
        }
    }

    fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        let mut all = headers.get_all(header::ORIGIN).iter();
        let value = match (all.next(), all.next()) {
            (None, _) => return true,
            (Some(v), None) => v,
            (Some(_), Some(_)) => return false,
        };
        match value.to_str().ok().and_then(Origin::parse) {
            Some(o) => o.is_loopback() || self.origins.contains(&o),
            None => false,
        }
    }

    /// The same rules in rmcp's own terms, as a second line behind the middleware.
    fn rmcp_config(&self, shutdown: &CancellationToken) -> StreamableHttpServerConfig {
        let mut origins: Vec<String> = ["http", "https"]
            .iter()
            .flat_map(|s| {
                ["localhost", "127.0.0.1", "[::1]"]
                    .iter()
                    .map(move |h| format!("{s}://{h}:*"))
            })
            .collect();
        origins.extend(
            self.origins
                .iter()
                .map(|o| format!("{}://{}:{}", o.scheme, bracket(&o.host), o.port)),
        );
        let config = StreamableHttpServerConfig::default()
            .with_allowed_origins(origins)
            .with_max_request_body_bytes(MAX_BODY_BYTES)
            .with_cancellation_token(shutdown.child_token());
        match &self.hosts {
            Hosts::Named { names, port } => config.with_allowed_hosts(
                names
                    .iter()
                    .map(|n| format!("{}:{port}", bracket(n)))
                    .collect::<Vec<_>>(),
            ),
            Hosts::AnyName { .. } => config.disable_allowed_hosts(),
        }
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// The token of `Bearer <token>` (scheme case-insensitive).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let start = rest.iter().position(|b| *b != b' ')?;
    let token = &rest[start..];
    let end = token.iter().rposition(|b| *b != b' ').map_or(0, |i| i + 1);
    Some(&token[..end])
}

/// Compares `given` with `want` in time that depends only on `want`'s length.
fn constant_time_eq(given: &[u8], want: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != want.len());
    for (i, w) in want.iter().enumerate() {
        let g = given.get(i).copied().unwrap_or(!*w);
        diff |= std::hint::black_box(g ^ w);
    }
    diff == 0
}

async fn guard(State(security): State<Arc<Security>>, req: Request, next: Next) -> Response {
    match security.check(req.headers()) {
        Ok(()) => next.run(req).await,
        Err(r) => {
            tracing::warn!(
                status = r.status().as_u16(),
                method = %req.method(),
                path = req.uri().path(),
                "Refused an HTTP request"
            );
            r.into_response()
        }
    }
}

/// The `Mcp-Session-Id` of a request.
fn session_header(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

async fn session_known(sessions: &LocalSessionManager, id: &str) -> bool {
    sessions
        .has_session(&Arc::<str>::from(id))
        .await
        .unwrap_or(false)
}

fn json_reply(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The thin layer over rmcp's `/mcp` service where rmcp 3.11 answers against the spec:
/// - a POST body is judged by [`jsonrpc::verdict_body`] first: malformed JSON → 400 with
///   -32700, an invalid request → 400 with -32600 (and its id when it has one), a batch →
///   400 with -32600; bad `tools/call` params or a `tools/list` cursor → -32602 as the
///   response to the request (200, `application/json`) when it comes in a live session
///   (otherwise rmcp answers what is wrong with the session). rmcp answers 415 to the first
///   three and -32601 to the fourth; the same fixes as the stdio guard;
/// - `DELETE` of a live session → 204 (rmcp: 202, which the TypeScript SDK does not take for
///   a terminated session), of an unknown one → 404 (rmcp: 202).
///
/// Everything else, and every body that passes, reaches rmcp unchanged.
async fn mcp_guard(
    State(sessions): State<Arc<LocalSessionManager>>,
    req: Request,
    next: Next,
) -> Response {
    if req.method() == Method::DELETE {
        if let Some(id) = session_header(req.headers())
            && !session_known(&sessions, id).await
        {
            return (
                StatusCode::NOT_FOUND,
                "no such session (ended, expired or never opened); initialize again\n",
            )
                .into_response();
        }
        let resp = next.run(req).await;
        if resp.status() == StatusCode::ACCEPTED {
            return StatusCode::NO_CONTENT.into_response();
        }
        return resp;
    }
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if req.method() != Method::POST || !json {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        // Over the limit (a body without a declared length); a client that went away
        // mid-body reads no answer.
        Err(_) => return Rejection::BodyTooLarge.into_response(),
    };
    match jsonrpc::verdict_body(&bytes) {
        Verdict::Forward => {
            next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
                .await
        }
        Verdict::Reply(r) if jsonrpc::is_invalid_params(&r) => {
            let live = match session_header(&parts.headers) {
                Some(id) => session_known(&sessions, id).await,
                None => false,
            };
            if live {
                tracing::debug!(reply = %r, "JSON-RPC error answered by the HTTP guard");
                json_reply(StatusCode::OK, &r)
            } else {
                next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
                    .await
            }
        }
        Verdict::Reply(r) | Verdict::Drop(r) => {
            tracing::debug!(reply = %r, "Invalid JSON-RPC body refused by the HTTP guard");
            json_reply(StatusCode::BAD_REQUEST, &r)
        }
    }
}

/// Binds the listener (before anything else starts, so a taken port fails fast).
///
/// # Errors
/// The address cannot be bound.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, HttpError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })
}

/// The router: `/mcp`, the legacy `/sse` + `/messages` ([`super::sse`]) and a 404 fallback,
/// every route behind [`Security`].
pub fn router(
    telemetry: Telemetry,
    security: Security,
    shutdown: &CancellationToken,
) -> axum::Router {
    app(telemetry, security, shutdown, SESSION_IDLE)
}

fn app(
    telemetry: Telemetry,
    security: Security,
    shutdown: &CancellationToken,
    session_idle: Duration,
) -> axum::Router {
    let mut sessions = LocalSessionManager::default();
    sessions.session_config.keep_alive = Some(session_idle);
    let sessions = Arc::new(sessions);
    let config = security.rmcp_config(shutdown);
    let telemetry_sse = telemetry.clone();
    let mcp = StreamableHttpService::new(move || Ok(telemetry.clone()), sessions.clone(), config);
    let mcp = axum::Router::new()
        .route_service(PATH, mcp)
        .layer(axum::middleware::from_fn_with_state(sessions, mcp_guard));
    axum::Router::new()
        .merge(mcp)
        .merge(super::sse::router(
            telemetry_sse,
            shutdown,
            super::sse::Limits::default(),
        ))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                "not found; MCP is at /mcp (and /sse for 2024-11-05 clients)\n",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(security),
            guard,
        ))
}

/// Serves until `shutdown` is cancelled, then lets open requests finish (SSE streams end
/// with their sessions).
///
/// # Errors
/// The accept loop failed.
pub async fn serve(
    listener: TcpListener,
    telemetry: Telemetry,
    security: Security,
    shutdown: CancellationToken,
) -> Result<(), HttpError> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(
            url = %format!("http://{addr}{PATH}"),
            sse = %format!("http://{addr}{}", super::sse::SSE_PATH),
            token = security.requires_token(),
            "MCP over HTTP"
        );
    }
    let app = router(telemetry, security, &shutdown);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .map_err(HttpError::Serve)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn local(port: u16) -> Security {
        Security::new(SocketAddr::from(([127, 0, 0, 1], port)), None, None).unwrap()
    }

    #[test]
    fn non_loopback_needs_allow_remote_and_token() {
        let any = SocketAddr::from(([0, 0, 0, 0], 7532));
        let lan = SocketAddr::from(([192, 168, 1, 5], 7532));
        for addr in [any, lan] {
            for (allow, token) in [(None, None), (Some(&[][..]), None), (None, Some("t"))] {
                let e = Security::new(addr, allow, token).unwrap_err();
                assert!(matches!(e, HttpError::RemoteRefused(_)), "{e}");
            }
            assert!(matches!(
                Security::new(addr, Some(&[]), Some("   ")),
                Err(HttpError::RemoteRefused(_))
            ));
            assert!(Security::new(addr, Some(&[]), Some("t")).is_ok());
        }
        let v6 = "[::1]:7532".parse().unwrap();
        assert!(Security::new(v6, None, None).is_ok());
        let e = Security::new(any, Some(&["ftp://x".into()]), Some("t")).unwrap_err();
        assert!(matches!(e, HttpError::BadOrigin(_)), "{e}");
    }

    #[test]
    fn host_must_name_this_server_with_its_port() {
        let s = local(7532);
        for ok in [
            "127.0.0.1:7532",
            "localhost:7532",
            "LOCALHOST:7532",
            "[::1]:7532",
        ] {
            assert_eq!(s.check(&headers(&[("host", ok)])), Ok(()), "{ok}");
        }
        for bad in [
            "evil.example:7532",
            "127.0.0.1:80",
            "127.0.0.1",
            "localhost:7533",
            "127.0.0.2:7532",
            "localhost:7532/x",
            "user@localhost:7532",
            "[::1",
            "",
        ] {
            assert_eq!(
                s.check(&headers(&[("host", bad)])),
                Err(Rejection::ForeignHost),
                "{bad}"
            );
        }
        assert_eq!(s.check(&headers(&[])), Err(Rejection::ForeignHost));
        assert_eq!(
            s.check(&headers(&[
                ("host", "localhost:7532"),
                ("host", "evil:7532")
            ])),
            Err(Rejection::ForeignHost)
        );
        assert_eq!(local(80).check(&headers(&[("host", "localhost")])), Ok(()));
        let lan = Security::new(
            SocketAddr::from(([192, 168, 1, 5], 9000)),
            Some(&[]),
            Some("t"),
        )
        .unwrap();
        let auth = ("authorization", "Bearer t");
        assert_eq!(
            lan.check(&headers(&[("host", "192.168.1.5:9000"), auth])),
            Ok(())
        );
        assert_eq!(
            lan.check(&headers(&[("host", "box.lan:9000"), auth])),
            Err(Rejection::ForeignHost)
        );
        let any =
            Security::new(SocketAddr::from(([0, 0, 0, 0], 9000)), Some(&[]), Some("t")).unwrap();
        assert_eq!(
            any.check(&headers(&[("host", "box.lan:9000"), auth])),
            Ok(())
        );
        assert_eq!(
            any.check(&headers(&[("host", "box.lan:9001"), auth])),
            Err(Rejection::ForeignHost)
        );
    }

    #[test]
    fn origin_when_present_must_be_loopback_or_listed() {
        let s = local(7532);
        let h = ("host", "127.0.0.1:7532");
        for ok in [
            "http://127.0.0.1:7532",
            "http://localhost",
            "http://localhost:6274",
            "http://[::1]:3000",
            "HTTP://LocalHost:1",
            "https://localhost",
        ] {
            assert_eq!(s.check(&headers(&[h, ("origin", ok)])), Ok(()), "{ok}");
        }
        for bad in [
            "http://evil.example",
            "http://localhost.evil.example",
            "http://127.0.0.1.nip.io",
            "null",
            "file://",
            "http://user@localhost",
            "",
        ] {
            assert_eq!(
                s.check(&headers(&[h, ("origin", bad)])),
                Err(Rejection::ForeignOrigin),
                "{bad}"
            );
        }
        let listed = Security::new(
            SocketAddr::from(([127, 0, 0, 1], 7532)),
            Some(&["https://App.Example".into()]),
            None,
        )
        .unwrap();
        assert_eq!(
            listed.check(&headers(&[h, ("origin", "https://app.example:443")])),
            Ok(())
        );
        assert_eq!(
            listed.check(&headers(&[h, ("origin", "http://app.example")])),
            Err(Rejection::ForeignOrigin)
        );
    }

    #[test]
    fn token_is_required_on_every_request_when_set() {
        let s = Security::new(SocketAddr::from(([127, 0, 0, 1], 1)), None, Some("s3cret")).unwrap();
        let h = ("host", "localhost:1");
        assert_eq!(s.check(&headers(&[h])), Err(Rejection::Unauthorized));
        for bad in [
            "Bearer s3cre",
            "Bearer s3cret2",
            "Bearer S3CRET",
            "Basic s3cret",
            "s3cret",
            "Bearer",
            "Bearer ",
        ] {
            assert_eq!(
                s.check(&headers(&[h, ("authorization", bad)])),
                Err(Rejection::Unauthorized),
                "{bad}"
            );
        }
        for ok in ["Bearer s3cret", "bearer s3cret", "BEARER  s3cret "] {
            assert_eq!(
                s.check(&headers(&[h, ("authorization", ok)])),
                Ok(()),
                "{ok}"
            );
        }
    }

    /// One POST to `/mcp` on a fresh connection: the status and the `mcp-session-id`.
    fn post(port: u16, session: Option<&str>, body: &str) -> (u16, Option<String>) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut req = format!(
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        if let Some(id) = session {
            req += &format!("Mcp-Session-Id: {id}\r\nMCP-Protocol-Version: 2025-11-25\r\n");
        }
        req += "\r\n";
        req += body;
        s.write_all(req.as_bytes()).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "connection closed before the headers ended");
            got.extend_from_slice(&buf[..n]);
        }
        let head = String::from_utf8_lossy(&got).to_ascii_lowercase();
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        let id = head
            .lines()
            .find_map(|l| l.strip_prefix("mcp-session-id:"))
            .map(|v| v.trim().to_string());
        (status, id)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_sessions_expire() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("telemetry.db");
        let telemetry = Telemetry::new(super::super::State {
            db: db.clone(),
            reader: crate::query::reader::Reader::new(&db),
            queue: None,
            privacy: Default::default(),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let security = Security::new(SocketAddr::from(([127, 0, 0, 1], port)), None, None).unwrap();
        let stop = CancellationToken::new();
        let idle = Duration::from_millis(400);
        let server = tokio::spawn(
            axum::serve(listener, app(telemetry, security, &stop, idle))
                .with_graceful_shutdown(stop.clone().cancelled_owned())
                .into_future(),
        );
        let ping = r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#;
        let results = tokio::task::spawn_blocking(move || {
            let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;
            let (status, id) = post(port, None, init);
            assert_eq!(status, 200);
            let id = id.expect("a session id");
            let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
            let notified = post(port, Some(&id), initialized).0;
            // Activity keeps the session: requests spaced below the idle time.
            let mut active = Vec::new();
            for _ in 0..3 {
                std::thread::sleep(Duration::from_millis(200));
                active.push(post(port, Some(&id), ping).0);
            }
            std::thread::sleep(Duration::from_millis(1200));
            let expired = post(port, Some(&id), ping).0;
            (notified, active, expired)
        })
        .await
        .unwrap();
        assert_eq!(results, (202, vec![200, 200, 200], 404));
        stop.cancel();
        server.await.unwrap().unwrap();
    }

    #[test]
    fn debug_output_hides_the_token() {
        let s = Security::new(SocketAddr::from(([127, 0, 0, 1], 1)), None, Some("s3cret")).unwrap();
        let d = format!("{s:?}");
        assert!(!d.contains("s3cret") && d.contains("<set>"), "{d}");
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abd", b"abc"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(!constant_time_eq(b"abcd", b"abc"));
        assert!(!constant_time_eq(b"", b"abc"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn header_and_body_limits() {
        let s = local(7532);
        let h = ("host", "127.0.0.1:7532");
        let big = "x".repeat(MAX_HEADER_BYTES);
        assert_eq!(
            s.check(&headers(&[h, ("x-big", &big)])),
            Err(Rejection::HeadersTooLarge)
        );
        let many: Vec<(String, &str)> = (0..MAX_HEADERS).map(|i| (format!("x-{i}"), "1")).collect();
        let mut hm = headers(&[h]);
        for (k, v) in &many {
            hm.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_static(v),
            );
        }
        assert_eq!(s.check(&hm), Err(Rejection::HeadersTooLarge));
        let max = MAX_BODY_BYTES.to_string();
        let over = (MAX_BODY_BYTES + 1).to_string();
        assert_eq!(s.check(&headers(&[h, ("content-length", &max)])), Ok(()));
        assert_eq!(
            s.check(&headers(&[h, ("content-length", &over)])),
            Err(Rejection::BodyTooLarge)
        );
    }
}
