//! The registry's contract cases: registration round trips, conflicts, the token
//! compare-and-swap, paging, key hashes and roles, concurrent inserts, jobs with their
//! receipts and counters, token lookup and presence.

use std::sync::Arc;

use crate::domain::{Runtime, TokenSha256, WalletAddress, WorkerId, WorkerToken};
use crate::orchestrator::store::{KeyRole, KeySha256, Store, StoreError, WorkerRow};
use crate::wire::{GpuSummary, HardwareSummary, KeyLimits, KeyUsage, RegisterRequest};

pub fn request(id: &str, token: &WorkerToken) -> RegisterRequest {
    RegisterRequest {
        worker_id: WorkerId::parse(id).unwrap(),
        wallet: WalletAddress::parse("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed").unwrap(),
        runtime: Runtime::Echo,
        models: vec!["echo".into(), "llama3.2:1b".into()],
        token_sha256: token.sha256(),
        public_key: None,
        hardware: Some(HardwareSummary {
            gpus: vec![GpuSummary {
                vendor: "nvidia".into(),
                name: Some("H100".into()),
                vram_total_mib: Some(81_559),
                compute_capability: Some("9.0".into()),
            }],
            cpu_threads: Some(16),
            ..HardwareSummary::default()
        }),
        version: "0.1.0".into(),
        multi_task: false,
        labels: Vec::new(),
    }
}

pub async fn insert_get_and_conflict(store: Arc<dyn Store>) {
    let token = WorkerToken::generate();
    let req = request("gpu-1", &token);
    let row = store.insert_worker(req.clone(), 100).await.unwrap();
    assert!(row.same_registration(&req));
    assert_eq!((row.registered_at, row.updated_at), (100, 100));
    assert_eq!(row.jobs_completed, 0);
    assert!(row.rewards_pending.is_zero());
    let got = store.worker(req.worker_id.clone()).await.unwrap().unwrap();
    assert_eq!(got, row);
    let again = store
        .insert_worker(request("gpu-1", &WorkerToken::generate()), 101)
        .await;
    assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");
    assert!(
        store
            .worker(WorkerId::parse("nope").unwrap())
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn update_is_a_compare_and_swap_on_the_token_hash(store: Arc<dyn Store>) {
    let old = WorkerToken::generate();
    store
        .insert_worker(request("gpu-1", &old), 100)
        .await
        .unwrap();
    let new = WorkerToken::generate();
    let mut req = request("gpu-1", &new);
    req.version = "0.2.0".into();
    let stale = TokenSha256::from_bytes([7; 32]);
    assert!(
        store
            .update_registration(req.clone(), stale, 110, false)
            .await
            .unwrap()
            .is_none()
    );
    let row = store
        .update_registration(req.clone(), old.sha256(), 120, false)
        .await
        .unwrap()
        .unwrap();
    assert!(row.token_sha256.ct_eq(&new.sha256()));
    assert_eq!((row.registered_at, row.updated_at), (100, 120));
    assert_eq!(row.version, "0.2.0");
    // The old token no longer matches: a second swap from it loses.
    assert!(
        store
            .update_registration(req, old.sha256(), 130, false)
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn workers_are_paged_by_id(store: Arc<dyn Store>) {
    for id in ["c-3", "a-1", "b-2"] {
        store
            .insert_worker(request(id, &WorkerToken::generate()), 1)
            .await
            .unwrap();
    }
    let ids = |rows: Vec<WorkerRow>| -> Vec<String> {
        rows.into_iter().map(|r| r.worker_id.to_string()).collect()
    };
    assert_eq!(ids(store.workers(None, 2).await.unwrap()), ["a-1", "b-2"]);
    let after = Some(WorkerId::parse("b-2").unwrap());
    assert_eq!(ids(store.workers(after, 2).await.unwrap()), ["c-3"]);
}

pub async fn keys_store_only_hashes_and_roles(store: Arc<dyn Store>) {
    let hash = KeySha256::of("basis-admin-secret");
    store
        .insert_key(
            KeyRole::Admin,
            hash,
            Some("ops".into()),
            KeyLimits::default(),
            1,
        )
        .await
        .unwrap();
    assert_eq!(store.key_role(hash).await.unwrap(), Some(KeyRole::Admin));
    assert_eq!(store.key_role(KeySha256::of("other")).await.unwrap(), None);
    let dup = store
        .insert_key(KeyRole::Client, hash, None, KeyLimits::default(), 2)
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict)));
}

pub async fn keys_carry_quotas_and_are_listed_limited_and_revoked(store: Arc<dyn Store>) {
    let client = KeySha256::of("client-key");
    let limits = KeyLimits {
        requests_per_minute: Some(30),
        tokens_per_day: Some(1000),
    };
    store
        .insert_key(KeyRole::Client, client, Some("app".into()), limits, 10)
        .await
        .unwrap();
    store
        .insert_key(
            KeyRole::Evaluator,
            KeySha256::of("eval"),
            None,
            KeyLimits::default(),
            20,
        )
        .await
        .unwrap();
    let grant = store.key_grant(client, 7).await.unwrap().unwrap();
    assert_eq!(grant.role, KeyRole::Client);
    assert_eq!(grant.limits, limits);
    assert_eq!(grant.usage, KeyUsage::default());

    let listed = store.keys(7).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].sha256, client, "oldest first");
    assert_eq!(listed[0].label.as_deref(), Some("app"));
    assert_eq!(listed[0].created_at, 10);
    assert_eq!(listed[1].role, KeyRole::Evaluator);
    assert_eq!(listed[1].limits, KeyLimits::default());

    let fewer = KeyLimits {
        requests_per_minute: None,
        tokens_per_day: Some(5),
    };
    assert!(store.set_key_limits(client, fewer).await.unwrap());
    assert!(
        !store
            .set_key_limits(KeySha256::of("nobody"), fewer)
            .await
            .unwrap()
    );
    assert_eq!(
        store.key_grant(client, 7).await.unwrap().unwrap().limits,
        fewer
    );

    assert!(store.revoke_key(client, 100).await.unwrap());
    assert!(
        store.revoke_key(client, 200).await.unwrap(),
        "again: still there"
    );
    assert!(
        !store
            .revoke_key(KeySha256::of("nobody"), 100)
            .await
            .unwrap()
    );
    assert_eq!(store.key_grant(client, 7).await.unwrap(), None);
    assert_eq!(store.key_role(client).await.unwrap(), None);
    let listed = store.keys(7).await.unwrap();
    assert_eq!(
        listed[0].revoked_at,
        Some(100),
        "the first revocation stands"
    );
}

pub async fn concurrent_inserts_of_one_id_have_one_winner(store: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .insert_worker(request("race", &WorkerToken::generate()), 1)
                    .await
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => wins += 1,
            Err(StoreError::Conflict) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(wins, 1);
}

pub async fn ping_answers(store: Arc<dyn Store>) {
    store.ping().await.unwrap();
}

pub mod jobs {
    use super::*;
    use crate::domain::{
        Amount, ErrorCode, JobId, OutputHash, RECEIPT_VERSION, Receipt, ReceiptId, ReceiptKind,
        Usage,
    };
    use crate::orchestrator::store::{JobOutcome, JobRecord, JobStatus, Presence, Recorded};

    pub(in crate::orchestrator::store::contract) fn receipt(
        worker: &str,
        job: &JobId,
    ) -> crate::domain::HashedReceipt {
        Receipt {
            receipt_version: RECEIPT_VERSION,
            receipt_id: ReceiptId::generate(),
            kind: ReceiptKind::GatewayJob,
            issued_at: 5,
            worker_id: WorkerId::parse(worker).unwrap(),
            wallet: None,
            model: Some("echo".into()),
            job_id: Some(job.clone()),
            task_id: None,
            submission_id: None,
            output_hash: OutputHash::of(b"out"),
            usage: Usage::default(),
            duration_ms: 1,
            simulated: true,
            reward: Amount::ZERO,
            asset: "USDC".into(),
            attestation_hash: None,
            metering: None,
        }
        .seal()
        .unwrap()
    }

    fn job(id: &JobId, outcome: JobOutcome) -> JobRecord {
        JobRecord {
            job_id: id.clone(),
            worker_id: WorkerId::parse("gpu-1").unwrap(),
            model: "echo".into(),
            outcome,
            started_at: 1,
            finished_at: 2,
            client_key: None,
            partial_usage: None,
            ttft_ms: None,
        }
    }

    pub async fn a_completed_job_adds_to_its_client_keys_usage_of_the_day(store: Arc<dyn Store>) {
        store
            .insert_worker(request("gpu-1", &WorkerToken::generate()), 1)
            .await
            .unwrap();
        let key = KeySha256::of("client-key");
        store
            .insert_key(KeyRole::Client, key, None, KeyLimits::default(), 1)
            .await
            .unwrap();
        let day = crate::orchestrator::store::utc_day(2);
        for (prompt, completion) in [(10, 5), (3, 4)] {
            let id = JobId::generate();
            let mut sealed = receipt("gpu-1", &id).receipt;
            sealed.usage = Usage {
                prompt_tokens: prompt,
                completion_tokens: completion,
            };
            let mut done = job(&id, JobOutcome::Completed(Box::new(sealed.seal().unwrap())));
            done.client_key = Some(key);
            assert_eq!(store.record_job(done.clone()).await.unwrap(), Recorded::New);
            // Recorded again (a re-sent result): counted once.
            store.record_job(done).await.unwrap();
        }
        let mut failed = job(
            &JobId::generate(),
            JobOutcome::Failed(ErrorCode::WorkerLost),
        );
        failed.client_key = Some(key);
        store.record_job(failed).await.unwrap();
        // Cancelled after streaming 4 chunks to the client: those count.
        let mut cut = job(&JobId::generate(), JobOutcome::Cancelled);
        cut.client_key = Some(key);
        cut.partial_usage = Some(Usage {
            prompt_tokens: 0,
            completion_tokens: 4,
        });
        store.record_job(cut).await.unwrap();
        let usage = store.key_grant(key, day).await.unwrap().unwrap().usage;
        assert_eq!(
            usage,
            KeyUsage {
                requests: 3,
                prompt_tokens: 13,
                completion_tokens: 13,
                amount: Amount::ZERO,
            }
        );
        let other_day = store.key_grant(key, day + 1).await.unwrap().unwrap();
        assert_eq!(other_day.usage, KeyUsage::default());
    }

    pub async fn a_job_is_recorded_once_with_its_receipt_and_counter(store: Arc<dyn Store>) {
        store
            .insert_worker(request("gpu-1", &WorkerToken::generate()), 1)
            .await
            .unwrap();
        let id = JobId::generate();
        let sealed = receipt("gpu-1", &id);
        let done = job(&id, JobOutcome::Completed(Box::new(sealed.clone())));
        assert_eq!(store.record_job(done.clone()).await.unwrap(), Recorded::New);
        assert_eq!(
            store.record_job(done).await.unwrap(),
            Recorded::Already(JobStatus::Completed)
        );
        let failed_again = job(&id, JobOutcome::Failed(ErrorCode::WorkerLost));
        assert_eq!(
            store.record_job(failed_again).await.unwrap(),
            Recorded::Already(JobStatus::Completed)
        );
        let by_id = store
            .receipt(sealed.receipt.receipt_id.clone())
            .await
            .unwrap();
        let by_hash = store.receipt_by_hash(sealed.receipt_hash).await.unwrap();
        assert_eq!(by_id, by_hash);
        let back: crate::domain::HashedReceipt = serde_json::from_str(&by_id.unwrap()).unwrap();
        assert_eq!(back, sealed);
        let failed = JobId::generate();
        store
            .record_job(job(&failed, JobOutcome::Failed(ErrorCode::WorkerLost)))
            .await
            .unwrap();
        store
            .record_job(job(&JobId::generate(), JobOutcome::Cancelled))
            .await
            .unwrap();
        let row = store
            .worker(WorkerId::parse("gpu-1").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((row.jobs_completed, row.jobs_failed), (1, 1));
        assert_eq!(
            store.job_status(failed).await.unwrap(),
            Some(JobStatus::Failed)
        );
    }

    pub async fn workers_are_found_by_token_and_presence_is_written(store: Arc<dyn Store>) {
        let token = WorkerToken::generate();
        store
            .insert_worker(request("gpu-1", &token), 1)
            .await
            .unwrap();
        let found = store.workers_by_token(token.sha256()).await.unwrap();
        assert_eq!(found.len(), 1);
        let other = TokenSha256::from_bytes([7; 32]);
        assert!(store.workers_by_token(other).await.unwrap().is_empty());
        let id = WorkerId::parse("gpu-1").unwrap();
        store
            .set_presence(vec![(id.clone(), Presence::Connected(50))])
            .await
            .unwrap();
        store.touch_workers(vec![(id.clone(), 60)]).await.unwrap();
        let row = store.worker(id.clone()).await.unwrap().unwrap();
        assert_eq!((row.connected_since, row.last_seen), (Some(50), Some(60)));
        store
            .set_presence(vec![(
                id.clone(),
                Presence::Disconnected {
                    last_seen: 70,
                    connected_at: 50,
                },
            )])
            .await
            .unwrap();
        let row = store.worker(id).await.unwrap().unwrap();
        assert_eq!((row.connected_since, row.last_seen), (None, Some(70)));
    }
}
