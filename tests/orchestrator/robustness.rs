//! Bad bodies, kill -9, concurrent registrations, SIGTERM, and an unreachable orchestrator.

use super::*;

#[tokio::test]
async fn oversized_and_malformed_bodies_get_json_errors() -> TestResult {
    let orch = Orchestrator::start();
    let http = orch.http();
    let mut big = raw_body("gpu-1", WALLET_LOWER, &WorkerToken::generate());
    big["models"] = json!(vec!["m".repeat(100); 1000]);
    let resp = http
        .post(orch.at("/api/workers/register"))
        .header("content-type", "application/json")
        .body(big.to_string())
        .send()
        .await?;
    assert_eq!(resp.status(), 413);
    let body: Value = resp.json().await?;
    assert_eq!(body["error"]["code"], "PAYLOAD_TOO_LARGE");

    for bad in ["{\"worker_id\": ", "not json", "{\"a\":1,}"] {
        let resp = http
            .post(orch.at("/api/workers/register"))
            .header("content-type", "application/json")
            .body(bad)
            .send()
            .await?;
        assert_eq!(resp.status(), 400, "{bad}");
        let body: Value = resp.json().await?;
        assert_eq!(body["error"]["code"], "INVALID_JSON");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("line 1"),
            "{body}"
        );
    }
    let (status, body, _) = post_raw(&orch, &json!({"worker_id": "gpu-1"})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("INVALID_JSON"))
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("wallet")
    );

    let resp = http
        .post(orch.at("/api/workers/register"))
        .body("{}")
        .send()
        .await?;
    assert_eq!(resp.status(), 415);
    assert_eq!(resp.json::<Value>().await?["error"]["code"], "INVALID_JSON");
    let resp = http.get(orch.at("/no/such/route")).send().await?;
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.json::<Value>().await?["error"]["code"], "NOT_FOUND");
    Ok(())
}

#[tokio::test]
async fn an_acknowledged_registration_survives_kill_9() -> TestResult {
    let mut orch = Orchestrator::start();
    let token = WorkerToken::generate();
    let out = orch
        .client()
        .register(&request("gpu-1", &token), None, None)
        .await?;
    assert!(out.created);
    orch.kill(); // SIGKILL right after the 201
    orch.restart();
    let got = orch.client().worker(&WorkerId::parse("gpu-1")?).await?;
    assert_eq!(got, out.record);
    // And the token still proves ownership after the restart.
    let mut update = request("gpu-1", &token);
    update.version = "0.2.0".into();
    orch.client().register(&update, Some(&token), None).await?;
    Ok(())
}

#[tokio::test]
async fn concurrent_registrations_of_one_id_have_exactly_one_winner() -> TestResult {
    let orch = Orchestrator::start();
    let client = orch.client();
    let calls = (0..20).map(|_| {
        let client = client.clone();
        async move {
            let token = WorkerToken::generate();
            client
                .register(&request("contested", &token), None, None)
                .await
        }
    });
    let results = futures::future::join_all(calls).await;
    let created = results
        .iter()
        .filter(|r| matches!(r, Ok(o) if o.created))
        .count();
    let taken = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.code() == ErrorCode::WorkerIdTaken))
        .count();
    assert_eq!((created, taken), (1, 19), "{results:?}");
    Ok(())
}

#[tokio::test]
async fn sigterm_shuts_down_cleanly_and_data_stays() -> TestResult {
    let mut orch = Orchestrator::start();
    orch.client()
        .register(&request("gpu-1", &WorkerToken::generate()), None, None)
        .await?;
    let status = orch.terminate();
    assert!(status.success(), "{status:?}");
    assert!(orch.logs().contains("orchestrator stopped"));
    orch.restart();
    assert_eq!(orch.client().workers().await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn an_unreachable_orchestrator_fails_fast_with_a_clear_code() -> TestResult {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let url = url::Url::parse(&format!("http://127.0.0.1:{port}"))?;
    let client = OrchestratorClient::new(url, Duration::from_secs(30))?;
    let started = Instant::now();
    let e = client
        .register(&request("gpu-1", &WorkerToken::generate()), None, None)
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(code(&e), ErrorCode::OrchestratorUnreachable, "{e:?}");
    let p = Problem::from(e);
    assert!(p.message.contains(&port.to_string()));
    assert!(p.fix.unwrap().contains("basis orchestrator"));
    Ok(())
}

/// An orchestrator with `[http]` set to `http`, and its `host:port` for raw sockets.
fn with_http(http: &str) -> (Orchestrator, String) {
    let orch = Orchestrator::with(Options {
        toml: format!("{RELAXED_LIMITS}\n[http]\n{http}"),
        ..Options::default()
    });
    let addr = format!(
        "{}:{}",
        orch.url.host_str().unwrap_or("127.0.0.1"),
        orch.url.port().unwrap_or(80)
    );
    (orch, addr)
}

/// The cap on open connections per address. The timeouts here are long, so no held
/// connection can time out and free a slot while a slow machine gets to the next step: the
/// only thing that frees one is the client closing it.
#[tokio::test]
async fn a_connection_over_the_cap_is_closed_and_a_freed_slot_is_usable() -> TestResult {
    use tokio::io::AsyncWriteExt as _;
    let (orch, addr) = with_http(
        "header_read_timeout_s = 60\nbody_read_timeout_s = 60\nmax_connections_per_ip = 6\n",
    );
    let open = || tokio::net::TcpStream::connect(addr.clone());
    // Six held connections, each proven accepted (it answered a request and stays open).
    let mut held = Vec::new();
    for _ in 0..6 {
        let mut stream = open().await?;
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await?;
        let answer = read_head(&mut stream, Duration::from_secs(10)).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "held: {answer}");
        held.push(stream);
    }
    // The seventh is closed without an answer, however long the server takes to get to it.
    let mut extra = open().await?;
    let _ = extra
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let (got, closed) = until_closed(&mut extra, Duration::from_secs(10)).await;
    assert!(closed.is_some(), "a connection over the cap was kept open");
    assert!(
        got.is_empty(),
        "a connection over the cap was served: {}",
        String::from_utf8_lossy(&got)
    );
    // Closing one held connection frees its slot (the server notices the close on its own
    // schedule, so the next request may take a few tries).
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answered = match orch.http().get(orch.at("/health")).send().await {
            Ok(resp) => resp.status() == 200,
            Err(_) => false,
        };
        if answered {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a freed slot never became usable"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Reads one response head (up to the blank line) or whatever came before `limit`.
async fn read_head(stream: &mut tokio::net::TcpStream, limit: Duration) -> String {
    use tokio::io::AsyncReadExt as _;
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let Some(left) = limit.checked_sub(start.elapsed()) else {
            break;
        };
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Reads until the server closes the connection (or `limit` passes); returns what arrived
/// and how long it took.
async fn until_closed(
    stream: &mut tokio::net::TcpStream,
    limit: Duration,
) -> (Vec<u8>, Option<Duration>) {
    use tokio::io::AsyncReadExt as _;
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Some(left) = limit.checked_sub(start.elapsed()) {
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return (got, Some(start.elapsed())),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    (got, None)
}

#[tokio::test]
async fn slow_and_silent_connections_are_closed() -> TestResult {
    use tokio::io::AsyncWriteExt as _;
    let (_orch, addr) = with_http("header_read_timeout_s = 1\nbody_read_timeout_s = 1\n");
    let open = || tokio::net::TcpStream::connect(addr.clone());
    let patience = Duration::from_secs(5);

    // Silent: connected, never a byte.
    let mut silent = open().await?;
    // Half-sent headers.
    let mut half_head = open().await?;
    half_head
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await?;
    // Half-sent body: 100 bytes announced, 10 sent.
    let mut half_body = open().await?;
    half_body
        .write_all(b"POST /api/workers/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"worker_")
        .await?;
    // Idle keep-alive after one whole request.
    let mut idle = open().await?;
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await?;

    for (name, stream) in [
        ("silent", &mut silent),
        ("half-sent headers", &mut half_head),
        ("half-sent body", &mut half_body),
        ("idle keep-alive", &mut idle),
    ] {
        let (got, closed) = until_closed(stream, patience).await;
        let closed = closed.ok_or(format!("{name}: still open after {patience:?}"))?;
        if name == "silent" {
            // Checked first: the others time out meanwhile.
            assert!(
                closed >= Duration::from_millis(500),
                "{name}: closed too early ({closed:?})"
            );
        }
        let text = String::from_utf8_lossy(&got);
        if name == "idle keep-alive" {
            assert!(text.starts_with("HTTP/1.1 200"), "{name}: {text}");
        }
    }

    Ok(())
}
