//! Outbound HTTP: the one place reqwest clients are built, so TLS (rustls on ring) is set up
//! once and every client has a connect timeout and a `basis/<version>` user agent.

use std::time::Duration;

/// Installs ring as the process-wide rustls provider. Idempotent; a provider installed
/// earlier (by us or a test) is kept.
pub fn install_tls_provider() {
    // `install_default` only fails when a provider is already installed, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client builder with basis defaults: rustls, `basis/<version>` user agent, connect timeout.
pub fn client_builder(connect_timeout: Duration) -> reqwest::ClientBuilder {
    install_tls_provider();
    reqwest::Client::builder()
        .user_agent(concat!("basis/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(connect_timeout)
}
