//! The task market's contract cases: each state change as one transaction through
//! `transition` (claim compare-and-swap under 100 concurrent claimers, lapses and
//! abandonment, idempotent submit, settlement with credit, pending rewards and receipt,
//! rejection, dispute and resolution, the sweeper's policies) and the listing's order,
//! filters and cursor, all through the market engine over [`Store`].

use std::sync::Arc;

use crate::domain::{
    Amount, Evaluation, OutputFormat, OutputHash, Runtime, SubmissionId, TaskId, TaskStatus, Usage,
    WalletAddress, WorkerId, WorkerToken, verify_receipt_json,
};
use crate::orchestrator::market::engine::{
    self, ClaimArgs, EvaluateArgs, NewSubmission, Refusal, ResolveArgs, TaskError,
};
use crate::orchestrator::market::settle::{AUTO_COMPLETED, SettlePolicy};
use crate::orchestrator::store::{KeySha256, Store, TaskFilter, TaskRow};
use crate::wire::{
    Capabilities, EvaluatorTimeoutPolicy, GpuSummary, HardwareSummary, RegisterRequest, Unpaid,
};

pub(super) const NOW: u64 = 1_800_000_000_000;
const WALLET: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

pub(super) fn policy() -> SettlePolicy {
    SettlePolicy {
        protocol_fee_bps: 250,
        max_tokens_per_s: 2_000,
        dispute_window_s: 60,
        evaluator_timeout_policy: EvaluatorTimeoutPolicy::AutoComplete,
    }
}

/// Registers `id` on `runtime`.
pub async fn worker(store: &dyn Store, id: &str, runtime: Runtime) -> WorkerId {
    let req = RegisterRequest {
        worker_id: WorkerId::parse(id).unwrap(),
        wallet: WalletAddress::parse(WALLET).unwrap(),
        runtime,
        models: vec!["m".into()],
        token_sha256: WorkerToken::generate().sha256(),
        public_key: None,
        hardware: None,
        version: "0.1.0".into(),
        multi_task: false,
        labels: Vec::new(),
    };
    store.insert_worker(req, 1).await.unwrap();
    WorkerId::parse(id).unwrap()
}

/// A CPU-only worker cannot claim a task needing a GPU with 24 GiB; a worker whose registered
/// hardware has it can, and the listing filtered by what each worker fits agrees.
pub async fn a_claim_needs_the_tasks_capabilities(store: Arc<dyn Store>) {
    let cpu = worker(&*store, "cpu-1", Runtime::Echo).await;
    let big = WorkerId::parse("gpu-big").unwrap();
    store
        .insert_worker(
            RegisterRequest {
                worker_id: big.clone(),
                wallet: WalletAddress::parse(WALLET).unwrap(),
                runtime: Runtime::Vllm,
                models: vec!["m".into()],
                token_sha256: WorkerToken::generate().sha256(),
                public_key: None,
                hardware: Some(HardwareSummary {
                    gpus: vec![GpuSummary {
                        vendor: "nvidia".into(),
                        name: Some("H100".into()),
                        vram_total_mib: Some(81_559),
                        compute_capability: Some("9.0".into()),
                    }],
                    ..HardwareSummary::default()
                }),
                version: "0.1.0".into(),
                multi_task: false,
                labels: vec!["region=eu".into()],
            },
            1,
        )
        .await
        .unwrap();
    let mut t = task(5, &["gpu", "label:region=eu"]);
    t.min_vram_mib = Some(24_576);
    store.insert_task(t.clone()).await.unwrap();
    let caps_of = |id: WorkerId| {
        let store = Arc::clone(&store);
        async move { store.worker(id).await.unwrap().unwrap().capabilities() }
    };
    let cpu_caps = caps_of(cpu.clone()).await;
    let r = engine::claim(
        &*store,
        ClaimArgs {
            capabilities: cpu_caps.clone(),
            ..claim(&t.task_id, &cpu, NOW)
        },
    )
    .await;
    assert_eq!(
        refusal(r),
        Refusal::CapabilityMismatch(vec![
            "gpu".into(),
            "label:region=eu".into(),
            "vram >= 24576 MiB (has no GPU VRAM)".into()
        ])
    );
    let listed = |caps: Capabilities| {
        let store = Arc::clone(&store);
        async move {
            store
                .list_tasks(TaskFilter {
                    capabilities: Some(caps.tags),
                    fits_vram_mib: Some(caps.vram_mib.unwrap_or(0)),
                    ..open_filter()
                })
                .await
                .unwrap()
                .len()
        }
    };
    assert_eq!(
        listed(cpu_caps).await,
        0,
        "not offered to the CPU-only worker"
    );
    let big_caps = caps_of(big.clone()).await;
    assert_eq!(listed(big_caps.clone()).await, 1);
    let won = engine::claim(
        &*store,
        ClaimArgs {
            capabilities: big_caps,
            ..claim(&t.task_id, &big, NOW)
        },
    )
    .await
    .unwrap();
    assert!(won.new);
}

pub fn task(reward: u128, caps: &[&str]) -> TaskRow {
    TaskRow {
        task_id: TaskId::generate(),
        client: "open".into(),
        description: "Summarise the text.".into(),
        criteria: vec!["one sentence".into()],
        required_capabilities: caps.iter().map(|c| (*c).to_owned()).collect(),
        reward: Amount::from_atomic(reward),
        asset: "USDC".into(),
        deadline_ms: NOW + 3_600_000,
        output_format: OutputFormat::Text,
        claim_ttl_s: 10,
        evaluator: "any".into(),
        pass_threshold: 70,
        input: None,
        status: TaskStatus::Open,
        attempts: 0,
        created_ms: NOW,
        claimed_by: None,
        claimed_ms: None,
        claim_expiry_ms: None,
        submission_id: None,
        client_key: Some(KeySha256::of("basis_client_test")),
        min_vram_mib: None,
        family: None,
        metric: None,
    }
}

pub(super) fn claim(t: &TaskId, w: &WorkerId, now_ms: u64) -> ClaimArgs {
    ClaimArgs {
        task_id: t.clone(),
        worker_id: w.clone(),
        multi_task: false,
        capabilities: Capabilities::default(),
        now_ms,
    }
}

pub(super) fn submission(t: &TaskId, w: &WorkerId, output: &str, now_ms: u64) -> NewSubmission {
    NewSubmission {
        submission_id: SubmissionId::generate(),
        task_id: t.clone(),
        worker_id: w.clone(),
        output: output.into(),
        output_hash: OutputHash::of(output.as_bytes()),
        usage: Some(Usage {
            prompt_tokens: 10,
            completion_tokens: 8,
        }),
        duration_ms: Some(900),
        metric: None,
        now_ms,
        evaluation_timeout_ms: 60_000,
    }
}

/// Every open task, 50 a page.
fn open_filter() -> TaskFilter {
    TaskFilter {
        status: TaskStatus::Open,
        capabilities: None,
        fits_vram_mib: None,
        min_reward: None,
        deadline_from_ms: None,
        after: None,
        limit: 50,
    }
}

fn refusal<T: std::fmt::Debug>(r: Result<T, TaskError>) -> Refusal {
    match r {
        Err(TaskError::Refused(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

pub(super) fn verdict(score: u8, passed: bool) -> Evaluation {
    Evaluation {
        score,
        passed,
        reasons: vec!["checked".into()],
        metric: None,
    }
}

pub(super) fn evaluate(id: &SubmissionId, e: Evaluation, now_ms: u64) -> EvaluateArgs {
    EvaluateArgs {
        submission_id: id.clone(),
        evaluation: e,
        auto: false,
        now_ms,
        policy: policy(),
    }
}

/// A posted task claimed and submitted by a fresh `runtime` worker, 5 s after the claim.
async fn submitted(store: &dyn Store, runtime: Runtime) -> (TaskRow, WorkerId, SubmissionId) {
    let w = worker(store, "gpu-1", runtime).await;
    let t = task(1_000_000, &[]);
    store.insert_task(t.clone()).await.unwrap();
    engine::claim(store, claim(&t.task_id, &w, NOW))
        .await
        .unwrap();
    let s = engine::submit(
        store,
        submission(&t.task_id, &w, "A fox jumps over a dog.", NOW + 5_000),
    )
    .await
    .unwrap();
    (t, w, s.submission.submission_id)
}

pub async fn of_100_concurrent_claimers_exactly_one_wins(store: Arc<dyn Store>) {
    let t = task(5, &[]);
    store.insert_task(t.clone()).await.unwrap();
    let mut workers = Vec::new();
    for i in 0..100 {
        workers.push(worker(&*store, &format!("w-{i}"), Runtime::Vllm).await);
    }
    let attempts = workers.iter().map(|w| {
        let (store, args) = (Arc::clone(&store), claim(&t.task_id, w, NOW));
        tokio::spawn(async move { engine::claim(&*store, args).await })
    });
    let results = futures::future::join_all(attempts).await;
    let won: Vec<_> = results
        .into_iter()
        .map(|r| r.unwrap())
        .filter_map(|r| match r {
            Ok(c) => Some(c),
            Err(TaskError::Refused(Refusal::AlreadyClaimed)) => None,
            Err(e) => panic!("{e:?}"),
        })
        .collect();
    assert_eq!(won.len(), 1);
    assert!(won[0].new);
    let stored = store.task(t.task_id.clone()).await.unwrap().unwrap();
    assert_eq!(stored.status, TaskStatus::Claimed);
    assert_eq!(stored.claimed_by.as_ref(), Some(&won[0].claim.worker_id));
    // The winner claiming again gets its claim back; one active claim per worker.
    let again = engine::claim(&*store, claim(&t.task_id, &won[0].claim.worker_id, NOW + 1))
        .await
        .unwrap();
    assert!(!again.new);
    let other = task(5, &[]);
    store.insert_task(other.clone()).await.unwrap();
    let r = engine::claim(
        &*store,
        claim(&other.task_id, &won[0].claim.worker_id, NOW + 2),
    )
    .await;
    assert_eq!(refusal(r), Refusal::ActiveClaimExists(t.task_id.clone()));
    let multi = ClaimArgs {
        multi_task: true,
        ..claim(&other.task_id, &won[0].claim.worker_id, NOW + 3)
    };
    assert!(engine::claim(&*store, multi).await.unwrap().new);
}

pub async fn three_lapsed_leases_abandon_the_task(store: Arc<dyn Store>) {
    let w = worker(&*store, "gpu-1", Runtime::Vllm).await;
    let t = task(5, &[]);
    store.insert_task(t.clone()).await.unwrap();
    let mut now = NOW;
    for attempt in 0..3 {
        let c = engine::claim(&*store, claim(&t.task_id, &w, now))
            .await
            .unwrap();
        assert_eq!(c.claim.attempts, attempt);
        assert_eq!(c.claim.claim_expiry, (now + 10_000) / 1000);
        // Still held just before the expiry; lapsed at it.
        let early = engine::sweep(&*store, now + 9_999, policy(), 100)
            .await
            .unwrap();
        assert_eq!(early.total(), 0);
        now += 10_000;
        let swept = engine::sweep(&*store, now, policy(), 100).await.unwrap();
        assert_eq!(swept.reopened + swept.abandoned, 1);
    }
    let stored = store.task(t.task_id.clone()).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.attempts), (TaskStatus::Abandoned, 3));
    let r = engine::claim(&*store, claim(&t.task_id, &w, now)).await;
    assert_eq!(refusal(r), Refusal::TaskNotOpen(TaskStatus::Abandoned));
}

pub async fn a_late_submit_is_claim_expired_even_before_the_sweeper_runs(store: Arc<dyn Store>) {
    let w = worker(&*store, "gpu-1", Runtime::Vllm).await;
    let t = task(5, &[]);
    store.insert_task(t.clone()).await.unwrap();
    engine::claim(&*store, claim(&t.task_id, &w, NOW))
        .await
        .unwrap();
    let r = engine::submit(&*store, submission(&t.task_id, &w, "late", NOW + 10_000)).await;
    assert_eq!(refusal(r), Refusal::ClaimExpired { deadline: false });
    // The lapse was recorded in the same transaction: the task reopened.
    let stored = store.task(t.task_id.clone()).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.attempts), (TaskStatus::Open, 1));
    // Asking again still says why.
    let r = engine::submit(&*store, submission(&t.task_id, &w, "late", NOW + 11_000)).await;
    assert_eq!(refusal(r), Refusal::ClaimExpired { deadline: false });
    // Someone who never claimed it is not the holder.
    let other = worker(&*store, "gpu-2", Runtime::Vllm).await;
    let r = engine::submit(&*store, submission(&t.task_id, &other, "x", NOW + 11_000)).await;
    assert_eq!(refusal(r), Refusal::NotClaimHolder);
}

pub async fn a_task_keeps_the_hash_of_its_posters_key(store: Arc<dyn Store>) {
    let keyed = task(5, &[]);
    let open = TaskRow {
        client_key: None,
        ..task(5, &[])
    };
    for t in [keyed, open] {
        store.insert_task(t.clone()).await.unwrap();
        let loaded = store.task(t.task_id.clone()).await.unwrap().unwrap();
        assert_eq!(loaded, t);
    }
}

pub async fn submit_is_idempotent_on_the_output_hash(store: Arc<dyn Store>) {
    let (t, w, id) = submitted(&*store, Runtime::Vllm).await;
    let again = engine::submit(
        &*store,
        submission(&t.task_id, &w, "A fox jumps over a dog.", NOW + 6_000),
    )
    .await
    .unwrap();
    assert!(!again.new);
    assert_eq!(again.submission.submission_id, id);
    let r = engine::submit(
        &*store,
        submission(&t.task_id, &w, "another output", NOW + 6_000),
    )
    .await;
    assert_eq!(refusal(r), Refusal::AlreadySubmitted(id));
}

pub async fn a_pass_credits_the_worker_with_the_fee_taken_and_seals_a_receipt(
    store: Arc<dyn Store>,
) {
    let (t, w, id) = submitted(&*store, Runtime::Vllm).await;
    let sub = engine::evaluate(&*store, evaluate(&id, verdict(90, true), NOW + 7_000))
        .await
        .unwrap();
    assert_eq!(sub.status, TaskStatus::Completed);
    let credit = sub.credit.clone().unwrap();
    assert_eq!(
        (credit.gross, credit.fee, credit.net),
        (
            Amount::from_atomic(1_000_000),
            Amount::from_atomic(25_000),
            Amount::from_atomic(975_000)
        )
    );
    assert_eq!(credit.unpaid, None);
    assert_eq!(
        sub.attestation_hash,
        Some(verdict(90, true).attestation_hash().unwrap())
    );
    let row = store.worker(w.clone()).await.unwrap().unwrap();
    assert_eq!(row.rewards_pending, Amount::from_atomic(975_000));
    let body = store
        .receipt(sub.receipt_id.clone().unwrap())
        .await
        .unwrap()
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(verify_receipt_json(&json).unwrap(), credit.receipt_hash);
    assert_eq!(json["kind"], "task_settlement");
    assert_eq!(json["reward"], "975000");
    assert_eq!(json["task_id"], t.task_id.as_str());
    assert_eq!(json["duration_ms"], 5_000);
    // Evaluating twice is refused and changes nothing.
    let r = engine::evaluate(&*store, evaluate(&id, verdict(10, false), NOW + 8_000)).await;
    assert_eq!(refusal(r), Refusal::AlreadyEvaluated);
    // Everything is there when read back.
    let again = store.submission(id).await.unwrap().unwrap();
    assert_eq!(again, sub);
    assert_eq!(store.credits(w, 10).await.unwrap(), vec![credit]);
}

pub async fn echo_work_is_credited_zero_as_simulated(store: Arc<dyn Store>) {
    let (_t, w, id) = submitted(&*store, Runtime::Echo).await;
    let sub = engine::evaluate(&*store, evaluate(&id, verdict(100, true), NOW + 7_000))
        .await
        .unwrap();
    let credit = sub.credit.unwrap();
    assert_eq!(credit.unpaid, Some(Unpaid::Simulated));
    assert!(credit.gross.is_zero() && credit.net.is_zero());
    let row = store.worker(w).await.unwrap().unwrap();
    assert!(row.rewards_pending.is_zero());
    let body = store
        .receipt(sub.receipt_id.unwrap())
        .await
        .unwrap()
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (json["simulated"].as_bool(), json["reward"].as_str()),
        (Some(true), Some("0"))
    );
}

pub async fn reject_then_dispute_then_resolve_for_the_worker(store: Arc<dyn Store>) {
    let (_t, w, id) = submitted(&*store, Runtime::Vllm).await;
    // Passed but under the threshold is a rejection.
    let sub = engine::evaluate(&*store, evaluate(&id, verdict(50, true), NOW + 7_000))
        .await
        .unwrap();
    assert_eq!(sub.status, TaskStatus::Rejected);
    assert!(sub.credit.is_none());
    assert_eq!(sub.dispute_deadline_ms, Some(NOW + 67_000));
    let rejected_receipt = sub.receipt_id.clone().unwrap();
    let body = store
        .receipt(rejected_receipt.clone())
        .await
        .unwrap()
        .unwrap();
    assert!(body.contains("\"reward\":\"0\""), "{body}");
    let args = |now_ms| engine::DisputeArgs {
        submission_id: id.clone(),
        worker_id: w.clone(),
        reason: "the summary is one sentence".into(),
        now_ms,
    };
    let sub = engine::dispute(&*store, args(NOW + 8_000)).await.unwrap();
    assert_eq!(sub.status, TaskStatus::Disputed);
    assert_eq!(
        refusal(engine::dispute(&*store, args(NOW + 9_000)).await),
        Refusal::NotDisputable("it was already disputed once")
    );
    let resolve = |for_worker| ResolveArgs {
        submission_id: id.clone(),
        for_worker,
        note: "checked by hand".into(),
        now_ms: NOW + 10_000,
        policy: policy(),
    };
    let sub = engine::resolve(&*store, resolve(true)).await.unwrap();
    assert_eq!(sub.status, TaskStatus::Completed);
    assert_eq!(sub.credit.unwrap().net, Amount::from_atomic(975_000));
    assert_ne!(sub.receipt_id.unwrap(), rejected_receipt);
    let dispute = sub.dispute.unwrap();
    assert_eq!(dispute.resolution, Some(TaskStatus::Completed));
    assert_eq!(
        refusal(engine::resolve(&*store, resolve(false)).await),
        Refusal::NotDisputed
    );
}

pub async fn the_dispute_window_closes(store: Arc<dyn Store>) {
    let (_t, w, id) = submitted(&*store, Runtime::Vllm).await;
    engine::evaluate(&*store, evaluate(&id, verdict(10, false), NOW + 7_000))
        .await
        .unwrap();
    let r = engine::dispute(
        &*store,
        engine::DisputeArgs {
            submission_id: id,
            worker_id: w,
            reason: "late".into(),
            now_ms: NOW + 67_000,
        },
    )
    .await;
    assert_eq!(refusal(r), Refusal::DisputeWindowClosed);
}

pub async fn the_sweeper_applies_the_evaluator_timeout_policy_and_deadlines(store: Arc<dyn Store>) {
    let (_t, w, id) = submitted(&*store, Runtime::Vllm).await;
    let open = task(7, &[]);
    store.insert_task(open.clone()).await.unwrap();
    // Not yet: the evaluation deadline is 60 s after the submit.
    assert_eq!(
        engine::sweep(&*store, NOW + 60_000, policy(), 100)
            .await
            .unwrap()
            .total(),
        0
    );
    let r = engine::sweep(&*store, NOW + 65_000, policy(), 100)
        .await
        .unwrap();
    assert_eq!(r.auto_completed, 1);
    let sub = store.submission(id).await.unwrap().unwrap();
    assert!(sub.auto_evaluated);
    let e = sub.evaluation.unwrap();
    assert_eq!((e.score, e.passed), (70, true));
    assert_eq!(e.reasons, [AUTO_COMPLETED]);
    assert_eq!(sub.credit.unwrap().net, Amount::from_atomic(975_000));
    assert_eq!(
        store.worker(w).await.unwrap().unwrap().rewards_pending,
        Amount::from_atomic(975_000)
    );
    let r = engine::sweep(&*store, NOW + 3_600_000, policy(), 100)
        .await
        .unwrap();
    assert_eq!(r.expired, 1);
    let t = store.task(open.task_id).await.unwrap().unwrap();
    assert_eq!(t.status, TaskStatus::Expired);
}

pub async fn the_listing_orders_filters_and_pages(store: Arc<dyn Store>) {
    let rewards = [5_u128, 1_000_000_000_000_000_000_000, 70, 70, 9, 1_000];
    let caps: [&[&str]; 6] = [
        &[],
        &["gpu:nvidia"],
        &["gpu:amd"],
        &[],
        &["gpu:nvidia", "runtime:vllm"],
        &[],
    ];
    for (r, c) in rewards.iter().zip(caps) {
        store.insert_task(task(*r, c)).await.unwrap();
    }
    let page = |f: TaskFilter| store.list_tasks(f);
    let all = open_filter();
    let got: Vec<u128> = page(all.clone())
        .await
        .unwrap()
        .iter()
        .map(|t| t.reward.atomic())
        .collect();
    assert_eq!(got, [1_000_000_000_000_000_000_000, 1_000, 70, 70, 9, 5]);
    // required ⊆ given
    let f = TaskFilter {
        capabilities: Some(vec!["gpu:nvidia".into(), "runtime:vllm".into()]),
        ..all.clone()
    };
    let got: Vec<u128> = page(f)
        .await
        .unwrap()
        .iter()
        .map(|t| t.reward.atomic())
        .collect();
    assert_eq!(got, [1_000_000_000_000_000_000_000, 1_000, 70, 9, 5]);
    let f = TaskFilter {
        min_reward: Some(Amount::from_atomic(70)),
        capabilities: Some(vec![]),
        ..all.clone()
    };
    let got: Vec<u128> = page(f)
        .await
        .unwrap()
        .iter()
        .map(|t| t.reward.atomic())
        .collect();
    assert_eq!(got, [1_000, 70]);
    // Paging by two walks the same order without gaps or repeats.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let f = TaskFilter {
            after: after.clone(),
            limit: 2,
            ..all.clone()
        };
        let rows = page(f).await.unwrap();
        if rows.is_empty() {
            break;
        }
        after = rows.last().map(|t| (t.reward, t.task_id.clone()));
        seen.extend(rows.into_iter().map(|t| t.task_id));
    }
    let full: Vec<TaskId> = page(all.clone())
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.task_id)
        .collect();
    assert_eq!(seen, full);
    let f = TaskFilter {
        deadline_from_ms: Some(NOW + 3_600_001),
        ..all
    };
    assert!(page(f).await.unwrap().is_empty());
}

pub async fn one_worker_racing_for_two_tasks_holds_one(store: Arc<dyn Store>) {
    let w = worker(&*store, "gpu-1", Runtime::Vllm).await;
    let (a, b) = (task(5, &[]), task(5, &[]));
    store.insert_task(a.clone()).await.unwrap();
    store.insert_task(b.clone()).await.unwrap();
    // Many rounds of the same worker claiming both at once: never both.
    let claims = (0..20).map(|i| {
        let store = Arc::clone(&store);
        let t = if i % 2 == 0 {
            a.task_id.clone()
        } else {
            b.task_id.clone()
        };
        let args = claim(&t, &w, NOW);
        tokio::spawn(async move { engine::claim(&*store, args).await })
    });
    let held: std::collections::BTreeSet<TaskId> = futures::future::join_all(claims)
        .await
        .into_iter()
        .filter_map(|r| r.unwrap().ok().map(|c| c.claim.task_id))
        .collect();
    assert_eq!(held.len(), 1, "{held:?}");
}
