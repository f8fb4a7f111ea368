//! Who a request comes from ([`ClientIp`]): the peer address or, when the peer is a trusted
//! reverse proxy (`[http] trusted_proxies`), the client address the proxy names in its header
//! (`client_ip_header`, default `X-Forwarded-For`; how it is read:
//! [`TrustedProxies`](super::trusted_proxies::TrustedProxies)). The registration limit and the
//! failed-authentication lockout key on it, so behind a proxy one client's failures do not
//! lock out everyone.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use super::state::AppState;

/// The client address of a request (unspecified when served without connect info, as in
/// in-process tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    /// From a request's parts, under `state`'s trusted proxies.
    pub fn of(state: &AppState, extensions: &axum::http::Extensions, headers: &HeaderMap) -> Self {
        let peer = extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ci| ci.0.ip());
        Self(state.config.trusted_proxies.client_ip(peer, headers))
    }
}

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        Ok(Self::of(state, &parts.extensions, &parts.headers))
    }
}
