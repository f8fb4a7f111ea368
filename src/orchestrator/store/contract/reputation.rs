//! Contract cases of [`ReputationStore`](crate::orchestrator::store::ReputationStore): what
//! the leaderboard and the registration files read, identical on every backend.

use std::sync::Arc;

use super::tasks::{NOW, claim, evaluate, policy, submission, task, verdict, worker};
use super::workers::jobs::receipt;
use crate::domain::{JobId, MetricGoal, MetricSpec, MetricValue, Runtime, Usage, WorkerId};
use crate::orchestrator::market::engine::{self, DisputeArgs, ResolveArgs};
use crate::orchestrator::store::{AgentLink, JobOutcome, JobRecord, Presence, Store, WorkerStats};

const S: u64 = NOW / 1000;

async fn stats_of(store: &dyn Store, since: u64, now: u64, id: &WorkerId) -> WorkerStats {
    let all = store
        .worker_stats(since, now, now - 30, None)
        .await
        .unwrap();
    let one = store
        .worker_stats(since, now, now - 30, Some(id.clone()))
        .await
        .unwrap();
    assert_eq!(one.len(), 1, "only the worker asked for");
    let found = all.into_iter().find(|s| &s.worker_id == id).unwrap();
    assert_eq!(
        found, one[0],
        "one worker's figures equal its row among all"
    );
    found
}

/// One task through the engine: claimed, submitted (with `metric`) and evaluated at
/// `at_ms`; `pass` or a rejection the worker disputes and loses.
async fn judged(store: &dyn Store, w: &WorkerId, pass: bool, metric: Option<&str>, at_ms: u64) {
    let mut t = task(1_000, &[]);
    if metric.is_some() {
        t.family = Some("nanogpt/val-loss".into());
        t.metric = Some(MetricSpec {
            name: "val_loss".into(),
            goal: MetricGoal::Minimize,
        });
    }
    store.insert_task(t.clone()).await.unwrap();
    engine::claim(store, claim(&t.task_id, w, at_ms - 3_000))
        .await
        .unwrap();
    let mut s = submission(&t.task_id, w, "out", at_ms - 2_000);
    s.metric = metric.map(|m| MetricValue::parse(m).unwrap());
    let id = engine::submit(store, s)
        .await
        .unwrap()
        .submission
        .submission_id;
    let mut v = verdict(if pass { 90 } else { 10 }, pass);
    v.metric = metric.map(|m| MetricValue::parse(m).unwrap());
    let sub = engine::evaluate(store, evaluate(&id, v, at_ms))
        .await
        .unwrap();
    assert_eq!(sub.metric.as_ref().map(MetricValue::as_str), metric);
    if !pass {
        let dispute = DisputeArgs {
            submission_id: id.clone(),
            worker_id: w.clone(),
            reason: "it meets the criteria".into(),
            now_ms: at_ms + 1,
        };
        engine::dispute(store, dispute).await.unwrap();
        let resolve = ResolveArgs {
            submission_id: id,
            for_worker: false,
            note: "it does not".into(),
            now_ms: at_ms + 2,
            policy: policy(),
        };
        engine::resolve(store, resolve).await.unwrap();
    }
}

fn completed(w: &str, n: u32, tokens: u64, ttft_ms: u64, at: u64) -> JobRecord {
    let job_id = JobId::generate();
    let mut r = receipt(w, &job_id);
    r.receipt.simulated = false;
    r.receipt.usage = Usage {
        prompt_tokens: tokens / 2,
        completion_tokens: tokens - tokens / 2,
    };
    let r = r.receipt.seal().unwrap();
    JobRecord {
        job_id,
        worker_id: WorkerId::parse(w).unwrap(),
        model: format!("echo-{n}"),
        outcome: JobOutcome::Completed(Box::new(r)),
        started_at: at,
        finished_at: at,
        client_key: None,
        partial_usage: None,
        ttft_ms: Some(ttft_ms),
    }
}

/// Tasks passed and failed, disputes lost, connected time, tokens and the median time to
/// first token are counted per worker within the window, and nothing from before it.
pub async fn worker_stats_count_what_happened_in_the_window(store: Arc<dyn Store>) {
    let w = worker(&*store, "gpu-1", Runtime::Vllm).await;
    // Before the window: one pass, one job, one connection.
    judged(&*store, &w, true, None, NOW - 100_000_000).await;
    store
        .record_job(completed("gpu-1", 0, 1_000, 5, S - 100_000))
        .await
        .unwrap();
    let presence = |p| store.set_presence(vec![(w.clone(), p)]);
    presence(Presence::Connected(S - 100_100)).await.unwrap();
    presence(Presence::Disconnected {
        last_seen: S - 100_000,
        connected_at: S - 100_100,
    })
    .await
    .unwrap();
    // In the window: two passes, one lost dispute, three jobs, 600 s connected.
    judged(&*store, &w, true, None, NOW).await;
    judged(&*store, &w, true, None, NOW + 1_000).await;
    judged(&*store, &w, false, None, NOW + 2_000).await;
    for (n, ttft) in [(1, 300), (2, 100), (3, 200)] {
        store
            .record_job(completed("gpu-1", n, 10, ttft, S + 5))
            .await
            .unwrap();
    }
    presence(Presence::Connected(S)).await.unwrap();
    presence(Presence::Disconnected {
        last_seen: S + 600,
        connected_at: S,
    })
    .await
    .unwrap();
    // A span still open when the next connection opens (a crash, or a replaced connection
    // whose closing is not written yet) is closed at the last heartbeat stored.
    presence(Presence::Connected(S + 1_000)).await.unwrap();
    store
        .touch_workers(vec![(w.clone(), S + 1_050)])
        .await
        .unwrap();
    presence(Presence::Connected(S + 2_000)).await.unwrap();
    // The replaced connection's own closing arrives late: it corrects its span (last heard
    // at S + 1 100) and leaves the new connection open.
    presence(Presence::Disconnected {
        last_seen: S + 1_100,
        connected_at: S + 1_000,
    })
    .await
    .unwrap();
    store
        .touch_workers(vec![(w.clone(), S + 2_030)])
        .await
        .unwrap();

    let s = stats_of(&*store, S - 10, S + 3_000, &w).await;
    assert_eq!((s.tasks_passed, s.tasks_failed, s.disputes_lost), (2, 1, 1));
    assert_eq!((s.jobs_completed, s.tokens_served), (3, 30));
    assert_eq!(s.ttft_p50_ms, Some(200));
    assert_eq!(
        s.online_s,
        600 + 100 + 30,
        "closed spans, a replaced one closed late, the open one"
    );
    let all_time = stats_of(&*store, 0, S + 3_000, &w).await;
    assert_eq!((all_time.tasks_passed, all_time.jobs_completed), (3, 4));
    assert_eq!(all_time.online_s, 100 + 730);
    // A worker with nothing observed is listed with zeros.
    let idle = worker(&*store, "gpu-2", Runtime::Echo).await;
    let z = stats_of(&*store, S - 10, S + 3_000, &idle).await;
    assert_eq!(
        (z.tasks_passed, z.online_s, z.tokens_served, z.ttft_p50_ms),
        (0, 0, 0, None)
    );
}

/// Confirmed metrics of a family are those of passed submissions in the window, with the
/// family's goal; agent links are kept per registry and replaced on a new id.
pub async fn confirmed_metrics_and_agent_links(store: Arc<dyn Store>) {
    let w = worker(&*store, "gpu-1", Runtime::Vllm).await;
    judged(&*store, &w, true, Some("0.31"), NOW - 100_000_000).await;
    judged(&*store, &w, true, Some("0.27"), NOW).await;
    judged(&*store, &w, false, Some("0.20"), NOW + 1_000).await;
    let got = store
        .confirmed_metrics("nanogpt/val-loss".into(), S - 10)
        .await
        .unwrap();
    assert_eq!(
        got.len(),
        1,
        "the old one is outside the window, the rejected one unconfirmed"
    );
    assert_eq!(got[0].value.as_str(), "0.27");
    assert_eq!(got[0].goal, MetricGoal::Minimize);
    assert!(
        store
            .confirmed_metrics("other".into(), 0)
            .await
            .unwrap()
            .is_empty()
    );

    let link = |id| AgentLink {
        agent_registry: "eip155:8453:0x8004A169FB4a3325136EB29fA0ceB6D2e539a432".into(),
        agent_id: id,
        linked_at: 7,
    };
    assert!(store.link_agent(w.clone(), link(41)).await.unwrap());
    assert!(store.link_agent(w.clone(), link(42)).await.unwrap());
    let unknown = WorkerId::parse("nobody").unwrap();
    assert!(!store.link_agent(unknown.clone(), link(1)).await.unwrap());
    assert_eq!(store.agent_links(w).await.unwrap(), vec![link(42)]);
    assert!(store.agent_links(unknown).await.unwrap().is_empty());
}
