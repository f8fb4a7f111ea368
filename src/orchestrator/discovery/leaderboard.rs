//! Ranking workers (docs/DISCOVERY.md, "The leaderboard"): from what the orchestrator itself
//! observed ([`WorkerStats`]) to ranked [`LeaderboardEntry`]s. Pure and integer-only: the same
//! figures rank the same way on every replica.
//!
//! The score, in thousandths of a point:
//!
//! ```text
//! pass_rate = (passed + 1) / (passed + failed + 2)            smoothed: a new worker is 0.5
//! tasks     = passed × pass_rate
//! serving   = tokens_served / 100_000 × 1 / (1 + ttft_p50 in seconds)
//! score     = (tasks + serving) × (0.5 + 0.5 × online_share) − 2 × disputes_lost
//! ```

use std::cmp::Ordering;
use std::collections::HashMap;

use crate::domain::{MetricGoal, MetricValue, WorkerId};
use crate::orchestrator::store::WorkerStats;
use crate::wire::{LeaderboardBy, LeaderboardEntry};

/// Milli-points per dispute lost.
const DISPUTE_PENALTY_MILLI: i128 = 2_000;
/// Tokens served per point.
const TOKENS_PER_POINT: i128 = 100_000;

/// The window the stats were counted over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Unix seconds; 0 for all time.
    pub since: u64,
    pub now: u64,
}

/// One worker's figures, before ranking.
pub fn entry(stats: &WorkerStats, span: Span) -> LeaderboardEntry {
    let passed = i128::from(stats.tasks_passed);
    let failed = i128::from(stats.tasks_failed);
    let pass_rate_milli = (passed + 1) * 1000 / (passed + failed + 2);
    let start = span.since.max(stats.registered_at);
    let length = span.now.saturating_sub(start).max(1);
    let online_milli = (u128::from(stats.online_s) * 1000 / u128::from(length)).min(1000);
    let tasks_milli = passed * pass_rate_milli;
    let ttft = i128::from(stats.ttft_p50_ms.unwrap_or(0));
    let serving_milli =
        i128::from(stats.tokens_served) * 1000 * 1000 / TOKENS_PER_POINT / (1000 + ttft);
    let online_factor = 500 + i128::try_from(online_milli).unwrap_or(1000) / 2;
    let score = (tasks_milli + serving_milli) * online_factor / 1000
        - DISPUTE_PENALTY_MILLI * i128::from(stats.disputes_lost);
    LeaderboardEntry {
        rank: 0,
        worker_id: stats.worker_id.clone(),
        wallet: stats.wallet,
        score_milli: i64::try_from(score).unwrap_or(if score > 0 { i64::MAX } else { i64::MIN }),
        tasks_passed: stats.tasks_passed,
        tasks_failed: stats.tasks_failed,
        pass_rate_milli: u64::try_from(pass_rate_milli).unwrap_or(0),
        disputes_lost: stats.disputes_lost,
        online_milli: u64::try_from(online_milli).unwrap_or(1000),
        tokens_served: stats.tokens_served,
        jobs_completed: stats.jobs_completed,
        ttft_p50_ms: stats.ttft_p50_ms,
        metric: None,
    }
}

/// Each worker's best confirmed value, by the goal of the family's newest task.
pub fn best_metrics(
    metrics: &[crate::orchestrator::store::ConfirmedMetric],
) -> Option<(MetricGoal, HashMap<WorkerId, MetricValue>)> {
    let goal = metrics.iter().max_by_key(|m| m.evaluated_ms)?.goal;
    let mut best: HashMap<WorkerId, MetricValue> = HashMap::new();
    for m in metrics {
        match best.get(&m.worker_id) {
            Some(held) if !goal.better(&m.value, held) => {}
            _ => {
                best.insert(m.worker_id.clone(), m.value.clone());
            }
        }
    }
    Some((goal, best))
}

/// `a` before `b` (`Less`) when `a` is better on `by`; `Equal` when tied.
fn compare(
    by: LeaderboardBy,
    goal: Option<MetricGoal>,
    a: &LeaderboardEntry,
    b: &LeaderboardEntry,
) -> Ordering {
    match by {
        LeaderboardBy::Score => b.score_milli.cmp(&a.score_milli),
        LeaderboardBy::TasksPassed => b.tasks_passed.cmp(&a.tasks_passed),
        LeaderboardBy::PassRate => b.pass_rate_milli.cmp(&a.pass_rate_milli),
        LeaderboardBy::Online => b.online_milli.cmp(&a.online_milli),
        LeaderboardBy::Tokens => b.tokens_served.cmp(&a.tokens_served),
        LeaderboardBy::Ttft => match (a.ttft_p50_ms, b.ttft_p50_ms) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        },
        LeaderboardBy::Metric => match (&a.metric, &b.metric, goal) {
            (Some(x), Some(y), Some(MetricGoal::Minimize)) => x.numeric_cmp(y),
            (Some(x), Some(y), _) => y.numeric_cmp(x),
            (Some(_), None, _) => Ordering::Less,
            (None, Some(_), _) => Ordering::Greater,
            (None, None, _) => Ordering::Equal,
        },
    }
}

/// Ranks `entries` on `by` (with `by = metric`, only those that carry a metric): best first,
/// ties broken for order by score and then worker id but sharing their rank (1, 2, 2, 4).
pub fn rank(
    mut entries: Vec<LeaderboardEntry>,
    by: LeaderboardBy,
    goal: Option<MetricGoal>,
) -> Vec<LeaderboardEntry> {
    if by == LeaderboardBy::Metric {
        entries.retain(|e| e.metric.is_some());
    }
    entries.sort_by(|a, b| {
        compare(by, goal, a, b)
            .then_with(|| b.score_milli.cmp(&a.score_milli))
            .then_with(|| a.worker_id.cmp(&b.worker_id))
    });
    let mut rank = 0;
    for i in 0..entries.len() {
        let tied = i > 0 && compare(by, goal, &entries[i - 1], &entries[i]) == Ordering::Equal;
        if !tied {
            rank = i as u64 + 1;
        }
        entries[i].rank = rank;
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::WalletAddress;

    const WALLET: &str = "0x52908400098527886E0F7030069857D2E4169EE7";

    fn stats(id: &str, passed: u64, failed: u64, lost: u64) -> WorkerStats {
        WorkerStats {
            worker_id: WorkerId::parse(id).unwrap(),
            wallet: WalletAddress::parse(WALLET).unwrap(),
            registered_at: 0,
            tasks_passed: passed,
            tasks_failed: failed,
            disputes_lost: lost,
            online_s: 0,
            tokens_served: 0,
            jobs_completed: 0,
            ttft_p50_ms: None,
        }
    }

    const SPAN: Span = Span {
        since: 1_000,
        now: 1_000 + 86_400,
    };

    fn ranked(all: &[WorkerStats], by: LeaderboardBy) -> Vec<(String, u64)> {
        rank(all.iter().map(|s| entry(s, SPAN)).collect(), by, None)
            .into_iter()
            .map(|e| (e.worker_id.to_string(), e.rank))
            .collect()
    }

    #[test]
    fn passed_tasks_outrank_disputes_lost_and_new_workers_sit_between() {
        let all = [
            stats("w-disputer", 3, 2, 2),
            stats("w-newcomer", 0, 0, 0),
            stats("w-solid", 5, 0, 0),
        ];
        assert_eq!(
            ranked(&all, LeaderboardBy::Score),
            [
                ("w-solid".to_owned(), 1),
                ("w-newcomer".to_owned(), 2),
                ("w-disputer".to_owned(), 3)
            ]
        );
        let e = entry(&all[0], SPAN);
        // 3 × 4/7 = 1.714 points, halved (never online), minus 2 × 2.
        assert_eq!(e.pass_rate_milli, 571);
        assert_eq!(e.score_milli, 3 * 571 / 2 - 4_000);
    }

    #[test]
    fn one_lucky_pass_does_not_beat_a_long_record() {
        let all = [stats("w-lucky", 1, 0, 0), stats("w-steady", 95, 5, 0)];
        assert_eq!(
            ranked(&all, LeaderboardBy::PassRate)[0],
            ("w-steady".to_owned(), 1)
        );
    }

    #[test]
    fn ties_share_a_rank_and_keep_a_stable_order() {
        let all = [
            stats("w-b", 2, 0, 0),
            stats("w-a", 2, 0, 0),
            stats("w-c", 1, 0, 0),
        ];
        assert_eq!(
            ranked(&all, LeaderboardBy::TasksPassed),
            [
                ("w-a".to_owned(), 1),
                ("w-b".to_owned(), 1),
                ("w-c".to_owned(), 3)
            ]
        );
    }

    #[test]
    fn online_share_counts_from_registration_within_the_window() {
        let mut s = stats("w-a", 0, 0, 0);
        s.registered_at = SPAN.now - 1000;
        s.online_s = 500;
        assert_eq!(entry(&s, SPAN).online_milli, 500);
        s.registered_at = 0;
        assert_eq!(entry(&s, SPAN).online_milli, 500 * 1000 / 86_400);
    }

    #[test]
    fn ttft_ranks_lowest_first_and_missing_last() {
        let mut fast = stats("w-fast", 0, 0, 0);
        fast.ttft_p50_ms = Some(80);
        let mut slow = stats("w-slow", 0, 0, 0);
        slow.ttft_p50_ms = Some(900);
        let none = stats("w-none", 0, 0, 0);
        let order: Vec<String> = ranked(&[none, slow, fast], LeaderboardBy::Ttft)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(order, ["w-fast", "w-slow", "w-none"]);
    }

    #[test]
    fn metric_ranks_by_goal_and_keeps_each_workers_best() {
        use crate::orchestrator::store::ConfirmedMetric;
        let m = |id: &str, v: &str, at: u64| ConfirmedMetric {
            worker_id: WorkerId::parse(id).unwrap(),
            value: MetricValue::parse(v).unwrap(),
            goal: MetricGoal::Minimize,
            evaluated_ms: at,
        };
        let (goal, best) = best_metrics(&[
            m("w-a", "0.30", 1),
            m("w-a", "0.25", 2),
            m("w-b", "0.27", 3),
        ])
        .unwrap();
        assert_eq!(best[&WorkerId::parse("w-a").unwrap()].as_str(), "0.25");
        let entries = ["w-a", "w-b", "w-c"]
            .into_iter()
            .map(|id| {
                let mut e = entry(&stats(id, 0, 0, 0), SPAN);
                e.metric = best.get(&e.worker_id).cloned();
                e
            })
            .collect();
        let out = rank(entries, LeaderboardBy::Metric, Some(goal));
        let order: Vec<&str> = out.iter().map(|e| e.worker_id.as_str()).collect();
        assert_eq!(
            order,
            ["w-a", "w-b"],
            "a worker without a confirmed value is not ranked"
        );
    }
}
