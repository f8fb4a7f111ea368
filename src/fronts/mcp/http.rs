//! `basis mcp --http ADDR`: streamable HTTP at `/mcp` (rmcp's `StreamableHttpService` on axum),
//! behind the [`Gate`] of `security`. Refusals are JSON-RPC error bodies with the HTTP status
//! (403, 401, 413) and never quote a header value.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;

use super::BasisMcp;
use super::security::{BearerToken, Gate, MAX_BODY_BYTES, Refusal};
use crate::domain::{ErrorCode, Problem};

/// How to serve MCP over HTTP.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub bind: SocketAddr,
    /// Required on every request when set; required to bind a non-loopback address.
    pub token: Option<BearerToken>,
    /// Host names accepted besides the loopback ones (and the bind address).
    pub allow_hosts: Vec<String>,
    /// Origins accepted besides loopback ones, as `scheme://host[:port]`.
    pub allow_origins: Vec<String>,
    pub max_body_bytes: usize,
}

impl HttpOptions {
    /// Loopback defaults for `bind`: no token, no extra hosts or origins, the default body limit.
    pub fn new(bind: SocketAddr) -> Self {
        Self {
            bind,
            token: None,
            allow_hosts: Vec::new(),
            allow_origins: Vec::new(),
            max_body_bytes: MAX_BODY_BYTES,
        }
    }
}

/// A bound, not yet serving, MCP HTTP server.
#[derive(Debug)]
pub struct HttpServer {
    listener: TcpListener,
    gate: Gate,
    max_body_bytes: usize,
}

impl HttpServer {
    /// Checks the options (a non-loopback bind needs a token) and binds the address.
    pub async fn bind(options: HttpOptions) -> Result<Self, Problem> {
        let gate = Gate::new(
            options.bind,
            options.token,
            &options.allow_hosts,
            &options.allow_origins,
            options.max_body_bytes,
        )?;
        let listener = TcpListener::bind(options.bind).await.map_err(|e| {
            Problem::new(
                ErrorCode::IoError,
                format!("cannot listen on {}: {e}", options.bind),
            )
            .with_fix("choose another address or port with --http ADDR (port 0 picks a free one)")
        })?;
        Ok(Self {
            listener,
            gate,
            max_body_bytes: options.max_body_bytes,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, Problem> {
        self.listener.local_addr().map_err(|e| {
            Problem::new(
                ErrorCode::IoError,
                format!("cannot read the bound address: {e}"),
            )
        })
    }

    /// Serves `/mcp` until `shutdown` completes; each client session gets a
    /// [`BasisMcp::session`] of `server`.
    pub async fn serve(
        self,
        server: BasisMcp,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Problem> {
        // The gate in front already checks Host and Origin (with JSON-RPC bodies); rmcp's own
        // checks are turned off so the two lists cannot disagree.
        let config = StreamableHttpServerConfig::default()
            .disable_allowed_hosts()
            .disable_allowed_origins()
            .with_max_request_body_bytes(self.max_body_bytes);
        let cancel = config.cancellation_token.clone();
        let service = StreamableHttpService::new(
            move || Ok(server.session()),
            Arc::new(LocalSessionManager::default()),
            config,
        );
        let app = axum::Router::new()
            .nest_service("/mcp", service)
            .layer(middleware::from_fn_with_state(Arc::new(self.gate), gate));
        let result = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
        cancel.cancel();
        result.map_err(|e| {
            Problem::new(
                ErrorCode::IoError,
                format!("the MCP HTTP server failed: {e}"),
            )
        })
    }
}

/// The middleware: every request passes the gate or gets its refusal.
async fn gate(State(gate): State<Arc<Gate>>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let host = header_str(headers, &header::HOST).or_else(|| {
        request
            .uri()
            .authority()
            .map(axum::http::uri::Authority::as_str)
    });
    let checked = gate.check(
        host,
        header_str(headers, &header::ORIGIN),
        header_str(headers, &header::AUTHORIZATION),
        header_str(headers, &header::CONTENT_LENGTH),
    );
    match checked {
        Ok(()) => next.run(request).await,
        Err(refusal) => refusal_response(&refusal),
    }
}

/// A header's value; a present value that is not text reads as empty, which every check refuses.
fn header_str<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap_or_default())
}

fn refusal_response(refusal: &Refusal) -> Response {
    let status = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::FORBIDDEN);
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": { "code": -32600, "message": refusal.message },
    });
    let mut response = (status, axum::Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"basis-mcp\""),
        );
    }
    response
}
