//! Unit tests of the client without an orchestrator: URL rules, error mapping, secret hygiene.

use std::time::{Duration, Instant};

use super::*;
use crate::domain::{ErrorCode, Problem};

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

#[test]
fn base_urls_are_checked_and_normalised() {
    let c = OrchestratorClient::new(url("http://127.0.0.1:8787/prefix"), DEFAULT_TIMEOUT).unwrap();
    assert_eq!(c.base().as_str(), "http://127.0.0.1:8787/prefix/");
    let rb = c.request(Method::GET, "/health").unwrap().build().unwrap();
    assert_eq!(rb.url().as_str(), "http://127.0.0.1:8787/prefix/health");
    for bad in [
        "ftp://host/",
        "http://user:pw@host/",
        "http://host/?q=1",
        "unix:/tmp/x",
    ] {
        let e = OrchestratorClient::new(url(bad), DEFAULT_TIMEOUT).unwrap_err();
        assert_eq!(e.code(), ErrorCode::ConfigInvalid, "{bad}");
        assert!(!e.to_string().contains("pw"));
    }
}

#[test]
fn error_answers_map_to_codes() {
    let u = "http://o/";
    let body = br#"{"error":{"code":"WORKER_ID_TAKEN","message":"taken","fix":"prove it"}}"#;
    let e = error_answer(u, StatusCode::CONFLICT, body, &[]);
    assert_eq!(e.code(), ErrorCode::WorkerIdTaken);
    let p = Problem::from(e);
    assert_eq!(p.fix.as_deref(), Some("prove it"));

    let body = br#"{"error":{"code":"SOMETHING_NEW","message":"hm"}}"#;
    let e = error_answer(u, StatusCode::BAD_REQUEST, body, &[]);
    assert_eq!(e.code(), ErrorCode::OrchestratorError);
    assert!(e.to_string().contains("SOMETHING_NEW"));

    let body = br#"{"error":{"code":"INTERNAL","message":"boom"}}"#;
    let e = error_answer(u, StatusCode::INTERNAL_SERVER_ERROR, body, &[]);
    assert_eq!(e.code(), ErrorCode::OrchestratorError);
    assert_eq!(e.status(), Some(500));

    let e = error_answer(u, StatusCode::BAD_GATEWAY, b"<html>", &[]);
    assert_eq!(e.code(), ErrorCode::OrchestratorError);
    let e = error_answer(u, StatusCode::NOT_FOUND, b"<html>", &[]);
    assert_eq!(e.code(), ErrorCode::BadResponse);
}

#[test]
fn remote_messages_never_carry_secrets() {
    let token = "ab".repeat(32);
    let body =
        format!(r#"{{"error":{{"code":"WORKER_ID_TAKEN","message":"your token {token}"}}}}"#);
    let e = error_answer(
        "http://o/",
        StatusCode::CONFLICT,
        body.as_bytes(),
        &[&token],
    );
    assert!(!format!("{e} {e:?}").contains(&token));
    let body =
        r#"{"error":{"code":"WORKER_ID_TAKEN","message":"key sk-ant-api03-AbCdEf0123456789"}}"#;
    let e = error_answer("http://o/", StatusCode::CONFLICT, body.as_bytes(), &[]);
    assert!(!e.to_string().contains("AbCdEf0123456789"));
    let long = "x".repeat(5000);
    assert!(clean_text(&long, &[]).chars().count() <= MAX_MESSAGE_CHARS + 1);
    assert_eq!(printable_code("bad code\n"), "(unreadable)");
}

#[tokio::test]
async fn a_closed_port_is_unreachable_quickly() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c =
        OrchestratorClient::new(url(&format!("http://127.0.0.1:{port}")), DEFAULT_TIMEOUT).unwrap();
    let started = Instant::now();
    let e = c.health().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(e.code(), ErrorCode::OrchestratorUnreachable, "{e:?}");
    let p = Problem::from(e);
    assert!(p.fix.unwrap().contains("BASIS_ORCHESTRATOR_URL"));
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (sock, _) = listener.accept().await.unwrap();
            held.push(sock);
        }
    });
    let c = OrchestratorClient::new(url(&format!("http://{addr}")), Duration::from_millis(500))
        .unwrap();
    let started = Instant::now();
    let e = c.onboarding_status().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::OrchestratorTimeout, "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    hold.abort();
}
