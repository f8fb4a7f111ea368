//! The task lifecycle (docs/TASK_MARKET.md, "Lifecycle") as one pure function, [`transition`]:
//! every allowed move between [`TaskStatus`] values, and a refusal for every other. The store
//! applies the result inside its transaction; nothing else decides a task's next status.
//!
//! ```text
//! open ──claim──▶ claimed ──submit──▶ submitted ──pass──▶ completed
//!  ▲                │                     └──reject──▶ rejected ──dispute──▶ disputed
//!  └─release/lapse──┘ (attempt + 1; the 3rd → abandoned)      resolve ▶ completed | rejected
//! open | claimed ──deadline──▶ expired
//! ```

use super::task::TaskStatus;

/// Claims that may lapse or be released before a task is abandoned.
pub const MAX_ATTEMPTS: u32 = 3;

/// Something that happens to a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskEvent {
    /// A worker claims it.
    Claim,
    /// The claim holder gives it back.
    Release,
    /// The claim's lease ran out (the sweeper).
    LeaseLapsed,
    /// The claim holder submits output.
    Submit,
    /// The evaluation passes (or the evaluator timed out under the auto-complete policy).
    Pass,
    /// The evaluation fails (or the evaluator timed out under the reject policy).
    Reject,
    /// The deadline passed (the sweeper).
    Deadline,
    /// The worker disputes a rejection.
    Dispute,
    /// The operator resolves a dispute for the worker.
    ResolveForWorker,
    /// The operator upholds the rejection.
    ResolveAgainstWorker,
}

impl TaskEvent {
    pub const ALL: [Self; 10] = [
        Self::Claim,
        Self::Release,
        Self::LeaseLapsed,
        Self::Submit,
        Self::Pass,
        Self::Reject,
        Self::Deadline,
        Self::Dispute,
        Self::ResolveForWorker,
        Self::ResolveAgainstWorker,
    ];
}

/// The result of an allowed move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moved {
    pub to: TaskStatus,
    /// Failed attempts so far (a release or a lapsed lease each count one).
    pub attempts: u32,
}

/// A move the lifecycle forbids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a task that is {from} cannot take the event {event:?}")]
pub struct Forbidden {
    pub from: TaskStatus,
    pub event: TaskEvent,
}

/// The next status of a task that is `from` with `attempts` failed attempts, on `event`.
pub fn transition(from: TaskStatus, attempts: u32, event: TaskEvent) -> Result<Moved, Forbidden> {
    use TaskEvent as E;
    use TaskStatus as S;
    let stay = |to| Moved { to, attempts };
    let moved = match (from, event) {
        (S::Open, E::Claim) => stay(S::Claimed),
        (S::Claimed, E::Release | E::LeaseLapsed) => {
            let attempts = attempts.saturating_add(1);
            let to = if attempts >= MAX_ATTEMPTS {
                S::Abandoned
            } else {
                S::Open
            };
            Moved { to, attempts }
        }
        (S::Claimed, E::Submit) => stay(S::Submitted),
        (S::Submitted, E::Pass) | (S::Disputed, E::ResolveForWorker) => stay(S::Completed),
        (S::Submitted, E::Reject) | (S::Disputed, E::ResolveAgainstWorker) => stay(S::Rejected),
        (S::Open | S::Claimed, E::Deadline) => stay(S::Expired),
        (S::Rejected, E::Dispute) => stay(S::Disputed),
        _ => return Err(Forbidden { from, event }),
    };
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use TaskEvent as E;
    use TaskStatus as S;

    /// Every allowed move, written out once; everything not here must be refused.
    const ALLOWED: &[(TaskStatus, TaskEvent, TaskStatus)] = &[
        (S::Open, E::Claim, S::Claimed),
        (S::Open, E::Deadline, S::Expired),
        (S::Claimed, E::Release, S::Open),
        (S::Claimed, E::LeaseLapsed, S::Open),
        (S::Claimed, E::Submit, S::Submitted),
        (S::Claimed, E::Deadline, S::Expired),
        (S::Submitted, E::Pass, S::Completed),
        (S::Submitted, E::Reject, S::Rejected),
        (S::Rejected, E::Dispute, S::Disputed),
        (S::Disputed, E::ResolveForWorker, S::Completed),
        (S::Disputed, E::ResolveAgainstWorker, S::Rejected),
    ];

    #[test]
    fn every_pair_of_status_and_event_is_allowed_or_refused_as_the_table_says() {
        let mut allowed = 0;
        for from in S::ALL {
            for event in E::ALL {
                let expected = ALLOWED
                    .iter()
                    .find(|(f, e, _)| *f == from && *e == event)
                    .map(|(_, _, to)| *to);
                match (transition(from, 0, event), expected) {
                    (Ok(m), Some(to)) => {
                        assert_eq!(m.to, to, "{from} + {event:?}");
                        allowed += 1;
                    }
                    (Err(f), None) => assert_eq!(f, Forbidden { from, event }),
                    (got, want) => panic!("{from} + {event:?}: got {got:?}, want {want:?}"),
                }
            }
        }
        assert_eq!(allowed, ALLOWED.len());
        assert_eq!(S::ALL.len() * E::ALL.len(), 80);
    }

    #[test]
    fn final_statuses_take_no_event() {
        for from in S::ALL.into_iter().filter(|s| s.is_final()) {
            for event in E::ALL {
                assert!(transition(from, 0, event).is_err(), "{from} + {event:?}");
            }
        }
    }

    #[test]
    fn third_failed_attempt_abandons() {
        for event in [E::Release, E::LeaseLapsed] {
            let first = transition(S::Claimed, 0, event).unwrap();
            assert_eq!((first.to, first.attempts), (S::Open, 1));
            let second = transition(S::Claimed, 1, event).unwrap();
            assert_eq!((second.to, second.attempts), (S::Open, 2));
            let third = transition(S::Claimed, 2, event).unwrap();
            assert_eq!((third.to, third.attempts), (S::Abandoned, 3));
        }
        // Other moves keep the count.
        assert_eq!(transition(S::Open, 2, E::Claim).unwrap().attempts, 2);
        assert_eq!(transition(S::Claimed, 2, E::Submit).unwrap().attempts, 2);
    }
}
