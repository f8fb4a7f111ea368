//! Registering, re-registering, rotating the token, the admin key, bad wallets.

use super::*;

#[tokio::test]
async fn register_then_get_shows_the_record_without_the_token() -> TestResult {
    let orch = Orchestrator::start();
    let client = orch.client();
    let token = WorkerToken::generate();
    let out = client
        .register(&request("gpu-1", &token), None, None)
        .await?;
    assert!(out.created);
    assert_eq!(out.record.wallet.checksummed(), WALLET_CHECKSUMMED);
    assert_eq!(out.record.token_fingerprint, token.fingerprint().as_str());

    let raw = orch
        .http()
        .get(orch.at("/api/workers/gpu-1"))
        .send()
        .await?;
    assert_eq!(raw.status(), 200);
    let text = raw.text().await?;
    let got: Value = serde_json::from_str(&text)?;
    assert_eq!(got["wallet"], WALLET_CHECKSUMMED);
    assert_eq!(got["token_fingerprint"], token.fingerprint().as_str());
    assert_eq!(got["online"], false);
    assert_eq!(got["rewards_pending"], "0");
    let list = client.workers().await?;
    assert_eq!(list.len(), 1);
    assert_eq!(client.worker(&WorkerId::parse("gpu-1")?).await?, out.record);

    let secret = token.expose_secret();
    let full_hash = token.sha256().to_string();
    let list_text = orch
        .http()
        .get(orch.at("/api/workers"))
        .send()
        .await?
        .text()
        .await?;
    for shown in [&text, &list_text, &format!("{out:?}"), &orch.logs()] {
        assert!(!shown.contains(secret), "the token leaked");
        assert!(
            !shown.contains(&full_hash[2..]),
            "the full token hash leaked"
        );
    }
    let missing = client.worker(&WorkerId::parse("gpu-2")?).await.unwrap_err();
    assert_eq!(code(&missing), ErrorCode::WorkerNotFound);
    assert_eq!(client.find_worker(&WorkerId::parse("gpu-2")?).await?, None);
    Ok(())
}

#[tokio::test]
async fn re_registering_is_idempotent_and_changes_need_proof() -> TestResult {
    let orch = Orchestrator::start();
    let client = orch.client();
    let token = WorkerToken::generate();
    let req = request("gpu-1", &token);
    assert!(client.register(&req, None, None).await?.created);

    let again = client.register(&req, None, None).await?;
    assert!(!again.created, "same inputs: 200, not 201");

    let mut changed = req.clone();
    changed.models.push("llama3.2:1b".into());
    let e = client.register(&changed, None, None).await.unwrap_err();
    assert_eq!(
        (code(&e), e.status()),
        (ErrorCode::WorkerIdTaken, Some(409))
    );
    let stranger = WorkerToken::generate();
    let e = client
        .register(&changed, Some(&stranger), None)
        .await
        .unwrap_err();
    assert_eq!(
        code(&e),
        ErrorCode::WorkerIdTaken,
        "a wrong token is no proof"
    );
    let takeover = request("gpu-1", &stranger);
    let e = client.register(&takeover, None, None).await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::WorkerIdTaken);
    let p = Problem::from(e);
    assert!(p.fix.is_some());

    let updated = client.register(&changed, Some(&token), None).await?;
    assert!(!updated.created);
    assert_eq!(updated.record.models, ["echo", "llama3.2:1b"]);
    Ok(())
}

#[tokio::test]
async fn rotating_the_token_needs_the_current_one() -> TestResult {
    let orch = Orchestrator::start();
    let client = orch.client();
    let old = WorkerToken::generate();
    client.register(&request("gpu-1", &old), None, None).await?;
    let new = WorkerToken::generate();
    let rotated = client
        .register(&request("gpu-1", &new), Some(&old), None)
        .await?;
    assert_eq!(rotated.record.token_fingerprint, new.fingerprint().as_str());
    // The old token no longer proves anything.
    let newer = WorkerToken::generate();
    let e = client
        .register(&request("gpu-1", &newer), Some(&old), None)
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::WorkerIdTaken);
    client
        .register(&request("gpu-1", &newer), Some(&new), None)
        .await?;
    assert!(!orch.logs().contains(old.expose_secret()));
    assert!(!orch.logs().contains(new.expose_secret()));
    Ok(())
}

#[tokio::test]
async fn the_admin_key_is_printed_once_stored_hashed_and_accepted() -> TestResult {
    let orch = Orchestrator::start();
    let (stdout, stderr) = orch.create_key("admin");
    let key = stdout.trim().to_owned();
    assert_eq!(stdout.lines().count(), 1, "only the key on stdout");
    assert!(key.starts_with("basis_admin_"), "{key}");
    assert!(stderr.contains("only this once"), "{stderr}");
    assert!(!stderr.contains(&key));
    let (second, _) = orch.create_key("admin");
    assert_ne!(second.trim(), key, "every call makes a new key");

    let client = orch.client();
    client
        .register(&request("gpu-1", &WorkerToken::generate()), None, None)
        .await?;
    let operator_token = WorkerToken::generate();
    let req = request("gpu-1", &operator_token);
    let wrong = SecretString::from("basis_admin_nope".to_owned());
    let auth = RegisterAuth {
        admin_key: Some(&wrong),
        ..RegisterAuth::default()
    };
    let e = client.register_with(&req, auth).await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::WorkerIdTaken);
    let admin = SecretString::from(key.clone());
    let auth = RegisterAuth {
        admin_key: Some(&admin),
        ..RegisterAuth::default()
    };
    let out = client.register_with(&req, auth).await?;
    assert_eq!(
        out.record.token_fingerprint,
        operator_token.fingerprint().as_str()
    );

    let mut stored = std::fs::read(&orch.db)?;
    stored.extend(std::fs::read(orch.db.with_extension("db-wal")).unwrap_or_default());
    assert!(
        !stored.windows(key.len()).any(|w| w == key.as_bytes()),
        "key stored in clear"
    );
    assert!(!orch.logs().contains(&key));
    Ok(())
}

#[tokio::test]
async fn bad_wallets_get_codes_and_private_keys_are_not_echoed() -> TestResult {
    let orch = Orchestrator::start();
    let token = WorkerToken::generate();
    let broken = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD";
    let (status, body, _) = post_raw(&orch, &raw_body("gpu-1", broken, &token)).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "WALLET_CHECKSUM_MISMATCH");
    let fix = body["error"]["fix"].as_str().unwrap();
    assert!(
        fix.contains(WALLET_CHECKSUMMED),
        "suggests the checksummed form: {fix}"
    );

    for key in [PRIVATE_KEY.to_owned(), format!("0x{PRIVATE_KEY}")] {
        let (status, body, text) = post_raw(&orch, &raw_body("gpu-1", &key, &token)).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"]["code"], "PRIVATE_KEY_REFUSED");
        assert!(!text.contains(PRIVATE_KEY), "the key was echoed");
    }
    let mut with_mnemonic = raw_body("gpu-1", WALLET_LOWER, &token);
    with_mnemonic["version"] = json!(
        "abandon ability able about above absent absorb abstract absurd abuse access accident"
    );
    let (status, body, text) = post_raw(&orch, &with_mnemonic).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("SECRET_REFUSED"))
    );
    assert!(!text.contains("absorb abstract"));
    assert!(!orch.logs().contains(PRIVATE_KEY));
    assert!(
        orch.client().workers().await?.is_empty(),
        "nothing was stored"
    );
    Ok(())
}

#[tokio::test]
async fn racing_first_registrations_of_one_worker_all_succeed() -> TestResult {
    let orch = Orchestrator::with(Options::default());
    let token = WorkerToken::generate();
    let req = request("race-1", &token);
    // The same request from several hosts' racing `basis register`: one creates, the rest
    // find it created and are answered unchanged, not WORKER_ID_TAKEN.
    let attempts = (0..8).map(|_| {
        let (client, req) = (orch.client(), req.clone());
        async move { client.register(&req, None, None).await }
    });
    let outcomes = futures::future::join_all(attempts).await;
    let created = outcomes
        .iter()
        .filter(|o| o.as_ref().is_ok_and(|o| o.created))
        .count();
    for o in &outcomes {
        assert!(o.is_ok(), "{o:?}");
    }
    assert_eq!(created, 1);
    // Another token for the same id is still refused without the proof.
    let e = orch
        .client()
        .register(&request("race-1", &WorkerToken::generate()), None, None)
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::WorkerIdTaken);
    Ok(())
}
