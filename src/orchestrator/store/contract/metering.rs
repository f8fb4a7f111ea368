//! Metered inference's contract case (docs/SETTLEMENT.md, "Metered inference"): a completed
//! gateway job whose receipt pays writes, in the job's transaction and once however often it
//! is recorded, its credit (keyed by `job_id`), its worker's `rewards_pending` and its client
//! key's charged amount; a job that pays nothing writes no credit; a job's credit is batched
//! like a task's.

use std::sync::Arc;

use super::settlement::{A, config};
use super::workers::jobs::receipt;
use super::workers::request;
use crate::domain::{Amount, JobId, Metering, Price, Usage, WalletAddress, WorkerId, WorkerToken};
use crate::orchestrator::settlement;
use crate::orchestrator::store::{
    JobOutcome, JobRecord, KeyRole, KeySha256, Recorded, Store, utc_day,
};
use crate::wire::KeyLimits;

/// A completed job of `gpu-1` for `key`, metered at 1 unit per prompt token and 1,000 per
/// completion token with a 2.5 % fee; `pays: false` makes it simulated.
fn metered(key: KeySha256, credited: Usage, pays: bool) -> JobRecord {
    metered_at(key, credited, pays, 1_000_000_000)
}

/// [`metered`] at `completion` atomic units per million completion tokens.
fn metered_at(key: KeySha256, credited: Usage, pays: bool, completion: u128) -> JobRecord {
    let id = JobId::generate();
    let mut r = receipt("gpu-1", &id).receipt;
    let price = Price {
        prompt_per_million: Amount::from_atomic(1_000_000),
        completion_per_million: Amount::from_atomic(completion),
    };
    let unpaid = (!pays).then_some(crate::domain::Unpaid::Simulated);
    let m = Metering::new(price, credited, credited, 250, unpaid);
    r.simulated = !pays;
    r.wallet = Some(WalletAddress::parse(A).unwrap());
    r.usage = credited;
    r.reward = m.net();
    r.metering = Some(m);
    JobRecord {
        job_id: id,
        worker_id: WorkerId::parse("gpu-1").unwrap(),
        model: "llama3.2:1b".into(),
        outcome: JobOutcome::Completed(Box::new(r.seal().unwrap())),
        started_at: 1,
        finished_at: 2,
        client_key: Some(key),
        partial_usage: None,
        ttft_ms: None,
    }
}

pub async fn a_paying_job_credits_its_worker_and_charges_its_key_once(store: Arc<dyn Store>) {
    let s = store.as_ref();
    s.insert_worker(request("gpu-1", &WorkerToken::generate()), 1)
        .await
        .unwrap();
    let key = KeySha256::of("client-key");
    s.insert_key(KeyRole::Client, key, None, KeyLimits::default(), 1)
        .await
        .unwrap();
    let used = Usage {
        prompt_tokens: 10,
        completion_tokens: 3,
    };
    // Gross 10 + 3,000 = 3,010; fee 75; net 2,935. Each recorded twice: counted once.
    let mut jobs = Vec::new();
    for _ in 0..2 {
        let job = metered(key, used, true);
        assert_eq!(s.record_job(job.clone()).await.unwrap(), Recorded::New);
        assert!(matches!(
            s.record_job(job.clone()).await.unwrap(),
            Recorded::Already(_)
        ));
        jobs.push(job.job_id);
    }
    // Simulated work pays nothing: no credit, nothing charged, the request still counted.
    s.record_job(metered(key, used, false)).await.unwrap();

    let worker = WorkerId::parse("gpu-1").unwrap();
    let credits = s.credits(worker.clone(), 100).await.unwrap();
    assert_eq!(credits.len(), 2, "{credits:?}");
    for c in &credits {
        assert!(jobs.contains(c.job_id.as_ref().unwrap()));
        assert_eq!((c.submission_id.as_ref(), c.task_id.as_ref()), (None, None));
        assert_eq!(
            (c.gross.atomic(), c.fee.atomic(), c.net.atomic()),
            (3010, 75, 2935)
        );
        assert_eq!(c.status, "pending");
        assert_eq!(c.created_at, 2);
    }
    let row = s.worker(worker.clone()).await.unwrap().unwrap();
    assert_eq!(row.rewards_pending.atomic(), 2 * 2935);
    let usage = s.key_grant(key, utc_day(2)).await.unwrap().unwrap().usage;
    assert_eq!(usage.requests, 3);
    assert_eq!(usage.amount.atomic(), 2 * 3010);
    assert_eq!(
        (usage.prompt_tokens, usage.completion_tokens),
        (30, 9),
        "credited tokens are billed, simulated ones too"
    );

    // Amounts past 10^18 (an 18-decimal asset) add up exactly too: 3 tokens at 10^24 per
    // million is 3 × 10^18 gross, then a small job on top of it.
    let big = metered_at(
        key,
        Usage {
            prompt_tokens: 0,
            completion_tokens: 3,
        },
        true,
        10u128.pow(24),
    );
    s.record_job(big).await.unwrap();
    s.record_job(metered(key, used, true)).await.unwrap();
    let big_gross = 3 * 10u128.pow(18);
    let big_net = big_gross - big_gross / 10_000 * 250;
    let row = s.worker(worker.clone()).await.unwrap().unwrap();
    assert_eq!(row.rewards_pending.atomic(), 3 * 2935 + big_net);
    assert_eq!(row.jobs_completed, 5);
    let usage = s.key_grant(key, utc_day(2)).await.unwrap().unwrap().usage;
    assert_eq!(usage.amount.atomic(), 3 * 3010 + big_gross);
    assert_eq!(usage.requests, 5);

    // The jobs' credits settle like tasks'.
    let closed = settlement::close(s, Some(&config()), "USDC", 10_000, 10_001)
        .await
        .unwrap();
    assert_eq!(closed.batch.total.atomic(), 3 * 2935 + big_net);
    let credits = s.credits(worker, 100).await.unwrap();
    assert!(credits.iter().all(|c| c.status == "batched"), "{credits:?}");
}
