//! HTTP security for `basis mcp --http` (docs/SECURITY.md, "MCP over HTTP"), as pure checks on
//! request headers:
//!
//! - `Host` must name an allowed host (by default `localhost`, `127.0.0.1`, `[::1]`, any port):
//!   a DNS-rebinding page cannot reach the server under its own name. 403 otherwise.
//! - `Origin`, when present, must be a loopback origin (any port) or one allowed explicitly. 403.
//! - With a bearer token configured (`BASIS_MCP_TOKEN` or a 0600 file), every request carries
//!   `Authorization: Bearer <token>`, compared in constant time. 401. A non-loopback bind is
//!   refused at startup without one.
//! - A `Content-Length` over the limit is refused before the body is read. 413. (rmcp enforces
//!   the same limit while streaming a body without one.)

use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::{ErrorCode, Problem};

/// The environment variable holding the bearer token.
pub const TOKEN_ENV: &str = "BASIS_MCP_TOKEN";

/// Largest request body accepted (tool arguments are small).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Shortest bearer token accepted.
const MIN_TOKEN_LEN: usize = 16;

/// Host names accepted by default (any port).
const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The bearer token clients must present. Debug shows nothing of it.
#[derive(Debug, Clone)]
pub struct BearerToken(SecretString);

impl BearerToken {
    /// The token from `file` when given (it must be mode 0600 or stricter), else from
    /// `BASIS_MCP_TOKEN`, else none.
    pub fn load(file: Option<&Path>, env: Option<String>) -> Result<Option<Self>, Problem> {
        if let Some(path) = file {
            return Self::from_file(path).map(Some);
        }
        match env {
            Some(value) if !value.trim().is_empty() => Self::new(value.trim(), TOKEN_ENV).map(Some),
            _ => Ok(None),
        }
    }

    fn from_file(path: &Path) -> Result<Self, Problem> {
        let shown = path.display();
        let io = |e: std::io::Error| {
            Problem::new(
                ErrorCode::IoError,
                format!("cannot read the token file {shown}: {e}"),
            )
            .with_fix("give --token-file a readable file holding the bearer token")
        };
        let meta = fs::metadata(path).map_err(io)?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Problem::new(
                ErrorCode::ConfigInvalid,
                format!("the token file {shown} is readable by other users (mode {mode:o})"),
            )
            .with_fix(format!("run `chmod 600 {shown}`")));
        }
        let text = fs::read_to_string(path).map_err(io)?;
        Self::new(text.trim(), &format!("the token file {shown}"))
    }

    fn new(token: &str, origin: &str) -> Result<Self, Problem> {
        if token.len() < MIN_TOKEN_LEN || token.chars().any(char::is_whitespace) {
            return Err(Problem::new(
                ErrorCode::ConfigInvalid,
                format!("the bearer token in {origin} must be at least {MIN_TOKEN_LEN} characters without spaces"),
            )
            .with_fix("generate one with `openssl rand -hex 32`"));
        }
        Ok(Self(SecretString::from(token.to_owned())))
    }

    /// Constant-time check of an `Authorization` header value.
    pub fn accepts(&self, authorization: Option<&str>) -> bool {
        let Some(given) = authorization.and_then(|v| v.strip_prefix("Bearer ")) else {
            return false;
        };
        let want = Sha256::digest(self.0.expose_secret().as_bytes());
        let got = Sha256::digest(given.trim().as_bytes());
        want.ct_eq(&got).into()
    }
}

/// Why a request was refused: the HTTP status and a message that quotes no header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: &'static str,
}

/// The request checks of one server.
#[derive(Debug, Clone)]
pub struct Gate {
    /// Allowed `Host` names, lowercase, without brackets or port; empty means any.
    hosts: Vec<String>,
    /// Extra allowed origins, `scheme://host[:port]`, lowercase.
    origins: Vec<String>,
    token: Option<BearerToken>,
    max_body_bytes: usize,
}

impl Gate {
    /// The gate for a server bound to `bind`. Refuses a non-loopback bind without a token.
    pub fn new(
        bind: SocketAddr,
        token: Option<BearerToken>,
        extra_hosts: &[String],
        extra_origins: &[String],
        max_body_bytes: usize,
    ) -> Result<Self, Problem> {
        let loopback = bind.ip().is_loopback();
        if !loopback && token.is_none() {
            return Err(Problem::new(
                ErrorCode::ConfigInvalid,
                format!("refusing to serve MCP on the non-loopback address {bind} without a bearer token"),
            )
            .with_fix(format!(
                "bind 127.0.0.1, or set {TOKEN_ENV} (or --token-file with a 0600 file) so every request must carry it"
            )));
        }
        let mut hosts: Vec<String> = if bind.ip().is_unspecified() {
            Vec::new() // any name may reach 0.0.0.0; the token guards it
        } else {
            LOOPBACK_HOSTS.iter().map(|h| (*h).to_owned()).collect()
        };
        if !hosts.is_empty() && !loopback {
            hosts.push(bind.ip().to_string());
        }
        if !hosts.is_empty() {
            hosts.extend(extra_hosts.iter().map(|h| normalize_host(h)));
        }
        Ok(Self {
            hosts,
            origins: extra_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
            token,
            max_body_bytes,
        })
    }

    /// Checks one request's headers, in the order 403 (Host, Origin), 401, 413.
    pub fn check(
        &self,
        host: Option<&str>,
        origin: Option<&str>,
        authorization: Option<&str>,
        content_length: Option<&str>,
    ) -> Result<(), Refusal> {
        let forbidden = |message| Refusal {
            status: 403,
            message,
        };
        if !self.hosts.is_empty() {
            let name = host
                .map(host_name)
                .ok_or(forbidden("Forbidden: missing Host header"))?;
            if !self.hosts.contains(&name) {
                return Err(forbidden("Forbidden: Host header is not allowed"));
            }
        }
        if let Some(origin) = origin
            && !self.origin_allowed(origin)
        {
            return Err(forbidden("Forbidden: Origin header is not allowed"));
        }
        if let Some(token) = &self.token
            && !token.accepts(authorization)
        {
            return Err(Refusal {
                status: 401,
                message: "Unauthorized: a valid Authorization: Bearer token is required",
            });
        }
        if content_length
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|len| len > self.max_body_bytes as u64)
        {
            return Err(Refusal {
                status: 413,
                message: "Payload Too Large: the request body exceeds the server's limit",
            });
        }
        Ok(())
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
        if self.origins.contains(&origin) {
            return true;
        }
        let Ok(url) = url::Url::parse(&origin) else {
            return false;
        };
        matches!(url.scheme(), "http" | "https")
            && url.host_str().is_some_and(|h| {
                let h = normalize_host(h);
                LOOPBACK_HOSTS.contains(&h.as_str())
            })
    }
}

/// The host name of a `Host` header value, lowercase, without port or IPv6 brackets.
fn host_name(value: &str) -> String {
    let value = value.trim();
    if let Some(rest) = value.strip_prefix('[') {
        return rest
            .split(']')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
    }
    normalize_host(value.rsplit_once(':').map_or(value, |(name, _port)| name))
}

fn normalize_host(host: &str) -> String {
    host.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(bind: &str, token: Option<&str>) -> Result<Gate, Problem> {
        let token = token.map(|t| BearerToken::new(t, "test").unwrap());
        Gate::new(
            bind.parse().unwrap(),
            token,
            &[],
            &["https://app.example".into()],
            100,
        )
    }

    #[test]
    fn loopback_hosts_and_origins_pass_on_any_port() {
        let g = gate("127.0.0.1:8765", None).unwrap();
        for host in ["localhost:1234", "127.0.0.1", "[::1]:9", "LOCALHOST:80"] {
            assert_eq!(g.check(Some(host), None, None, None), Ok(()), "{host}");
        }
        for origin in [
            "http://localhost:3000",
            "https://127.0.0.1",
            "http://[::1]:5",
            "https://app.example",
        ] {
            assert_eq!(
                g.check(Some("localhost"), Some(origin), None, None),
                Ok(()),
                "{origin}"
            );
        }
    }

    #[test]
    fn foreign_hosts_and_origins_are_forbidden() {
        let g = gate("127.0.0.1:8765", None).unwrap();
        assert_eq!(
            g.check(Some("evil.example.com"), None, None, None)
                .unwrap_err()
                .status,
            403
        );
        assert_eq!(g.check(None, None, None, None).unwrap_err().status, 403);
        for origin in [
            "http://evil.example.com",
            "null",
            "http://localhost.evil.com",
            "file://",
        ] {
            let r = g.check(Some("localhost"), Some(origin), None, None);
            assert_eq!(r.unwrap_err().status, 403, "{origin}");
        }
    }

    #[test]
    fn non_loopback_needs_a_token_then_every_request_carries_it() {
        assert_eq!(
            gate("0.0.0.0:8765", None).unwrap_err().code,
            ErrorCode::ConfigInvalid
        );
        let g = gate("0.0.0.0:8765", Some("0123456789abcdef-token")).unwrap();
        assert_eq!(
            g.check(Some("box.lan"), None, None, None)
                .unwrap_err()
                .status,
            401
        );
        let wrong = g.check(Some("box.lan"), None, Some("Bearer nope"), None);
        assert_eq!(wrong.unwrap_err().status, 401);
        let right = g.check(
            Some("box.lan"),
            None,
            Some("Bearer 0123456789abcdef-token"),
            None,
        );
        assert_eq!(right, Ok(()));
    }

    #[test]
    fn oversized_bodies_are_refused() {
        let g = gate("127.0.0.1:1", None).unwrap();
        assert_eq!(
            g.check(Some("localhost"), None, None, Some("101"))
                .unwrap_err()
                .status,
            413
        );
        assert_eq!(g.check(Some("localhost"), None, None, Some("100")), Ok(()));
    }

    #[test]
    fn short_tokens_and_open_token_files_are_refused() {
        assert!(BearerToken::new("short", "test").is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        fs::write(&path, "0123456789abcdef0123").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            BearerToken::load(Some(&path), None).unwrap_err().code,
            ErrorCode::ConfigInvalid
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(BearerToken::load(Some(&path), None).unwrap().is_some());
    }
}
