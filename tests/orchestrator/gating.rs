//! Who may register: gated by an enrollment key, closed, rate limits on attempts and on failed authentications.

use super::*;

fn gated(env_key: &str) -> Options {
    Options {
        toml: format!("registration = \"gated\"\n{RELAXED_LIMITS}"),
        env: vec![("BASIS_ENROLLMENT_KEY".into(), env_key.into())],
        ..Options::default()
    }
}

#[tokio::test]
async fn gated_registration_needs_the_right_enrollment_key() -> TestResult {
    let orch = Orchestrator::with(gated("open-sesame"));
    let client = orch.client();
    let status = client.onboarding_status().await?;
    assert_eq!(status.registration, RegistrationMode::Gated);
    let token = WorkerToken::generate();
    let req = request("gpu-1", &token);
    let e = client.register(&req, None, None).await.unwrap_err();
    assert_eq!(
        (code(&e), e.status()),
        (ErrorCode::RegistrationGated, Some(401))
    );
    assert!(
        Problem::from(e)
            .fix
            .unwrap()
            .contains("BASIS_ENROLLMENT_KEY")
    );
    let e = client
        .register(&req, None, Some("wrong-key"))
        .await
        .unwrap_err();
    assert_eq!(
        (code(&e), e.status()),
        (ErrorCode::EnrollmentKeyInvalid, Some(403))
    );
    assert!(
        client
            .register(&req, None, Some("open-sesame"))
            .await?
            .created
    );
    // The registered worker re-registers with its token alone.
    let mut update = req.clone();
    update.version = "0.2.0".into();
    client.register(&update, Some(&token), None).await?;
    assert!(!orch.logs().contains("open-sesame"));
    Ok(())
}

#[tokio::test]
async fn the_enrollment_key_hash_can_come_from_the_config_file() -> TestResult {
    let hash = std::process::Command::new(common::orchestrator::bin())
        .args(["orchestrator", "keys", "hash"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"from-file-key\n")?;
            child.wait_with_output()
        })?;
    let hash = String::from_utf8(hash.stdout)?.trim().to_owned();
    assert!(hash.starts_with("0x") && hash.len() == 66, "{hash}");
    let orch = Orchestrator::with(Options {
        toml: format!(
            "registration = \"gated\"\nenrollment_key_sha256 = \"{hash}\"\n{RELAXED_LIMITS}"
        ),
        ..Options::default()
    });
    let req = request("gpu-1", &WorkerToken::generate());
    assert!(
        orch.client()
            .register(&req, None, Some("from-file-key"))
            .await?
            .created
    );
    Ok(())
}

#[tokio::test]
async fn closed_registration_is_refused() -> TestResult {
    let orch = Orchestrator::with(Options {
        args: vec!["--registration".into(), "closed".into()],
        ..Options::default()
    });
    let client = orch.client();
    assert_eq!(
        client.onboarding_status().await?.registration,
        RegistrationMode::Closed
    );
    let e = client
        .register(&request("gpu-1", &WorkerToken::generate()), None, None)
        .await
        .unwrap_err();
    assert_eq!(
        (code(&e), e.status()),
        (ErrorCode::RegistrationClosed, Some(403))
    );
    Ok(())
}

#[tokio::test]
async fn registration_is_rate_limited_per_address() -> TestResult {
    let orch = Orchestrator::with(Options {
        toml: "[rate_limit]\nregister_per_minute = 1\nregister_burst = 3\n".into(),
        ..Options::default()
    });
    let http = orch.http();
    let body = raw_body("gpu-1", WALLET_LOWER, &WorkerToken::generate());
    for _ in 0..3 {
        let (status, _, _) = post_raw(&orch, &body).await;
        assert!(status == 201 || status == 200);
    }
    let resp = http
        .post(orch.at("/api/workers/register"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await?;
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers()["retry-after"].to_str()?.parse()?;
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(resp.json::<Value>().await?["error"]["code"], "RATE_LIMITED");
    // Reads are not limited.
    assert!(orch.client().health().await.is_ok());
    let e = orch
        .client()
        .register(&request("gpu-2", &WorkerToken::generate()), None, None)
        .await;
    assert_eq!(code(&e.unwrap_err()), ErrorCode::RateLimited);
    Ok(())
}

#[tokio::test]
async fn repeated_auth_failures_are_rate_limited() -> TestResult {
    let orch = Orchestrator::with(Options {
        toml: "registration = \"gated\"\n[rate_limit]\nregister_burst = 100\nauth_failures_per_minute = 1\nauth_failure_burst = 2\n".into(),
        env: vec![("BASIS_ENROLLMENT_KEY".into(), "right".into())],
        ..Options::default()
    });
    let client = orch.client();
    let req = request("gpu-1", &WorkerToken::generate());
    for _ in 0..2 {
        let e = client
            .register(&req, None, Some("wrong"))
            .await
            .unwrap_err();
        assert_eq!(code(&e), ErrorCode::EnrollmentKeyInvalid);
    }
    // Even the right key is refused now, until the bucket refills.
    let e = client
        .register(&req, None, Some("right"))
        .await
        .unwrap_err();
    assert_eq!((code(&e), e.status()), (ErrorCode::RateLimited, Some(429)));
    Ok(())
}

/// A registration request with `headers`, as a reverse proxy or a client would send it.
async fn register_raw(
    orch: &Orchestrator,
    body: &Value,
    headers: &[(&str, &str)],
) -> Result<u16, Box<dyn std::error::Error>> {
    let mut rb = orch
        .http()
        .post(orch.at("/api/workers/register"))
        .header("content-type", "application/json")
        .body(body.to_string());
    for (name, value) in headers {
        rb = rb.header(*name, *value);
    }
    Ok(rb.send().await?.status().as_u16())
}

#[tokio::test]
async fn a_proven_credential_outlives_its_addresss_lockout() -> TestResult {
    let orch = Orchestrator::with(Options {
        toml: "[rate_limit]\nregister_burst = 100\nauth_failures_per_minute = 1\nauth_failure_burst = 3\n".into(),
        ..Options::default()
    });
    let client = orch.client();
    let token = WorkerToken::generate();
    let req = request("gpu-1", &token);
    client.register(&req, None, None).await?;
    // A changed re-registration proves the token: it has passed.
    let mut changed = req.clone();
    changed.version = "0.1.1".into();
    client.register(&changed, Some(&token), None).await?;
    // Someone at the same address guesses tokens for the worker until the address is spent.
    changed.version = "0.1.2".into();
    for _ in 0..3 {
        let e = client
            .register(&changed, Some(&WorkerToken::generate()), None)
            .await
            .unwrap_err();
        assert_eq!(code(&e), ErrorCode::WorkerIdTaken);
    }
    let e = client
        .register(&changed, Some(&WorkerToken::generate()), None)
        .await
        .unwrap_err();
    assert_eq!((code(&e), e.status()), (ErrorCode::RateLimited, Some(429)));
    // The worker's own token still works from there...
    client.register(&changed, Some(&token), None).await?;
    // ...and a credential that has not passed lately is refused, unchecked.
    let other = WorkerToken::generate();
    let e = client
        .register(&request("gpu-2", &other), Some(&other), None)
        .await
        .unwrap_err();
    assert_eq!((code(&e), e.status()), (ErrorCode::RateLimited, Some(429)));
    Ok(())
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_lockout_is_per_client_and_per_credential() -> TestResult {
    let toml = "registration = \"gated\"\n[rate_limit]\nregister_burst = 100\n\
                auth_failures_per_minute = 1\nauth_failure_burst = 2\n\
                [http]\ntrusted_proxies = [\"127.0.0.1\", \"::1\"]\n";
    let orch = Orchestrator::with(Options {
        toml: toml.into(),
        env: vec![("BASIS_ENROLLMENT_KEY".into(), "right".into())],
        ..Options::default()
    });
    let body = raw_body("gpu-1", WALLET_LOWER, &WorkerToken::generate());
    let via = |client: &'static str, key: &'static str| {
        [("x-forwarded-for", client), ("x-basis-enrollment-key", key)]
    };
    // One client behind the proxy spends its bucket...
    assert_eq!(
        register_raw(&orch, &body, &via("203.0.113.1", "wrong-1")).await?,
        403
    );
    assert_eq!(
        register_raw(&orch, &body, &via("203.0.113.1", "wrong-2")).await?,
        403
    );
    assert_eq!(
        register_raw(&orch, &body, &via("203.0.113.1", "right")).await?,
        429
    );
    // ...and another client behind the same proxy is not locked out with it.
    assert_eq!(
        register_raw(&orch, &body, &via("203.0.113.2", "right")).await?,
        201
    );
    // A credential that keeps failing is locked out whichever address it comes from.
    let body = raw_body("gpu-2", WALLET_LOWER, &WorkerToken::generate());
    assert_eq!(
        register_raw(&orch, &body, &via("203.0.113.3", "stale")).await?,
        403
    );
    assert_eq!(
        register_raw(&orch, &body, &via("203.0.113.4", "stale")).await?,
        403
    );
    assert_eq!(
        register_raw(&orch, &body, &via("203.0.113.5", "stale")).await?,
        429
    );

    // Without trusted_proxies, the header is the client's word and is ignored.
    let orch_strict = Orchestrator::with(Options {
        toml: "registration = \"gated\"\n[rate_limit]\nregister_burst = 100\n\
               auth_failures_per_minute = 1\nauth_failure_burst = 2\n"
            .into(),
        env: vec![("BASIS_ENROLLMENT_KEY".into(), "right".into())],
        ..Options::default()
    });
    assert_eq!(
        register_raw(&orch_strict, &body, &via("203.0.113.1", "wrong-1")).await?,
        403
    );
    assert_eq!(
        register_raw(&orch_strict, &body, &via("203.0.113.2", "wrong-2")).await?,
        403
    );
    assert_eq!(
        register_raw(&orch_strict, &body, &via("203.0.113.3", "right")).await?,
        429
    );
    Ok(())
}
