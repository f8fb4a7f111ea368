//! `basis mcp --http`: the same tools through rmcp's streamable HTTP client, and the HTTP security
//! rules (docs/SECURITY.md, "MCP over HTTP"): Host/Origin allow-lists (403), the bearer token
//! (401), the non-loopback bind refusal, the body size limit (413). Servers bind 127.0.0.1:0 only.

use serde_json::Value;

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
async fn a_non_loopback_bind_with_a_token_serves_only_requests_that_carry_it() -> Result {
    let home = Home::new()?;
    // Bound on every interface, reached here only through loopback.
    let mut cmd = home.command(&["mcp", "--http", "0.0.0.0:0"]);
    cmd.env("BASIS_MCP_TOKEN", TOKEN);
    let server = support::spawn_prepared(cmd, false).await?;
    let url = server.url.replace("0.0.0.0", "127.0.0.1");
    let response = raw_http()?
        .post(&url)
        .header("accept", "application/json, text/event-stream")
        .json(&initialize_body())
        .send()
        .await?;
    assert_eq!(response.status(), 401);
    let client = support::http_client(&url, Some(TOKEN)).await?;
    assert!(!client.list_all_tools().await?.is_empty());
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn an_oversized_body_is_413() -> Result {
    let home = Home::new()?;
    let server = support::http(&home, &[], &[]).await?;
    let limit = basis::fronts::mcp::MAX_BODY_BYTES;
    // A Content-Length over the limit is refused before the body is read.
    let (status, body) = raw_post(
        &server.url,
        &format!("content-length: {}\r\n", limit + 1),
        &[b'{'; 1024],
    )
    .await?;
    assert_eq!(status, 413, "{body}");
    let body: Value = serde_json::from_str(body.trim())?;
    assert_eq!(body["jsonrpc"], "2.0");
    // Without one (chunked), rmcp enforces the same limit while reading.
    let chunk = vec![b' '; 64 << 10];
    let mut chunked = Vec::new();
    for _ in 0..(limit / chunk.len() + 2) {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(&chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    let (status, _) = raw_post(&server.url, "transfer-encoding: chunked\r\n", &chunked).await?;
    assert_eq!(status, 413);
    Ok(())
}

/// POSTs `body` (possibly less than announced) over a raw connection; the status and body of
/// the answer. Write errors are ignored: the server may answer and close before reading all.
async fn raw_post(url: &str, framing: &str, body: &[u8]) -> Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("http://").trim_end_matches("/mcp");
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let head = format!(
        "POST /mcp HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         accept: application/json, text/event-stream\r\n{framing}\r\n"
    );
    stream.write_all(head.as_bytes()).await?;
    let _ = stream.write_all(body).await;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status line")?;
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    Ok((status, body))
}
