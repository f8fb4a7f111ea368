//! `basis mcp --http`: the same tools through rmcp's streamable HTTP client, and the HTTP
//! security rules (§4.5): Host/Origin allow-lists (403), the bearer token (401), the
//! non-loopback bind refusal, the body size limit (413). Servers bind 127.0.0.1:0 only.

use serde_json::{Value, json};

use crate::support::{
    self, Home, Result, call, check_result, initialize_body, raw_http, sample_args,
};

const TOKEN: &str = "test-bearer-token-0123456789abcdef";

#[tokio::test]
async fn tools_work_over_http_with_valid_structured_content() -> Result {
    let home = Home::new()?;
    let server = support::http(&home, &[], &[]).await?;
    assert!(server.url.ends_with("/mcp"), "{}", server.url);
    let client = support::http_client(&server.url, None).await?;
    let tools = client.list_all_tools().await?;
    assert!(!tools.is_empty());
    for tool in &tools {
        let result = call(&client, &tool.name, Value::Object(sample_args(&tool.name))).await?;
        check_result(tool, &result)?;
    }
    client.cancel().await?;
    let token = support::token_in(&home.env_file())?;
    assert!(!server.stderr.text().contains(&token));
    Ok(())
}

#[tokio::test]
async fn a_foreign_origin_or_host_is_403_with_a_json_rpc_error() -> Result {
    let home = Home::new()?;
    let server = support::http(&home, &[], &[]).await?;
    let http = raw_http()?;
    let post = |origin: Option<&str>, host: Option<&str>| {
        let mut request = http
            .post(&server.url)
            .header("accept", "application/json, text/event-stream")
            .json(&initialize_body());
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(host) = host {
            request = request.header("host", host);
        }
        request.send()
    };
    for (origin, host) in [
        (Some("http://evil.example.com"), None),
        (Some("null"), None),
        (None, Some("evil.example.com")),
        (Some("http://evil.example.com"), Some("evil.example.com:80")),
    ] {
        let response = post(origin, host).await?;
        assert_eq!(response.status(), 403, "origin {origin:?} host {host:?}");
        let body: Value = response.json().await?;
        assert_eq!(body["jsonrpc"], "2.0");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("Forbidden")),
            "{body}"
        );
    }
    for origin in [
        None,
        Some("http://localhost:3000"),
        Some("http://127.0.0.1"),
        Some("http://[::1]:9"),
    ] {
        let response = post(origin, None).await?;
        assert!(
            response.status().is_success(),
            "origin {origin:?}: {}",
            response.status()
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_non_loopback_bind_without_a_token_is_refused_at_startup() -> Result {
    let home = Home::new()?;
    let output = home
        .command(&["mcp", "--http", "0.0.0.0:0"])
        .stdin(std::process::Stdio::null())
        .output()
        .await?;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("CONFIG_INVALID") && stderr.contains("BASIS_MCP_TOKEN"),
        "{stderr}"
    );
    assert!(!stderr.contains("listening on"), "{stderr}");
    Ok(())
}

#[tokio::test]
async fn with_a_token_every_request_needs_it() -> Result {
    let home = Home::new()?;
    let server = support::http(&home, &[], &[("BASIS_MCP_TOKEN", TOKEN)]).await?;
    let http = raw_http()?;
    for auth in [None, Some("Bearer wrong-token-0123456789"), Some(TOKEN)] {
        let mut request = http
            .post(&server.url)
            .header("accept", "application/json, text/event-stream")
            .json(&initialize_body());
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await?;
        assert_eq!(response.status(), 401, "authorization {auth:?}");
        assert!(response.headers().contains_key("www-authenticate"));
        let body = response.text().await?;
        assert!(!body.contains(TOKEN));
    }
    let client = support::http_client(&server.url, Some(TOKEN)).await?;
    assert!(!client.list_all_tools().await?.is_empty());
    client.cancel().await?;
    assert!(
        !server.stderr.text().contains(TOKEN),
        "the bearer token leaked into the log"
    );
    Ok(())
}

#[tokio::test]
async fn an_oversized_body_is_413() -> Result {
    let home = Home::new()?;
    let server = support::http(&home, &[], &[]).await?;
    let http = raw_http()?;
    let filler = "x".repeat(2 << 20);
    let body =
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"_meta": {"pad": filler}}});
    let response = http
        .post(&server.url)
        .header("accept", "application/json, text/event-stream")
        .json(&body)
        .send()
        .await?;
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await?;
    assert_eq!(body["jsonrpc"], "2.0");
    // Without a Content-Length (chunked), rmcp enforces the same limit while reading.
    let chunks =
        futures::stream::iter((0..40).map(|_| Ok::<_, std::io::Error>(vec![b' '; 64 << 10])));
    let response = http
        .post(&server.url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await?;
    assert_eq!(response.status(), 413);
    Ok(())
}
