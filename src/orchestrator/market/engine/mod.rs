//! The market engine: every decision of the task market's lifecycle (docs/TASK_MARKET.md):
//! claim, release and submit (`lifecycle`); evaluate, dispute, resolve and the sweeper
//! (`settling`); what they share (`common`). Each runs in one store transaction
//! (`TaskStore::transact`) and reads and writes rows only through `store::MarketTx`, so every
//! backend gets the same rules without holding any: a backend maps rows, the engine decides.
//!
//! Invariants: a task moves only through `domain::transition` (`common::apply`); what time has
//! already decided (a passed deadline, a lapsed lease) is applied first (`catch_up`) and kept even
//! when the change itself is refused; a refusal is an answer, not a failure, and commits what
//! was caught up; a `StoreError` rolls the whole transaction back.

mod common;
mod lifecycle;
mod settling;

pub use common::{
    ClaimArgs, Claimed, DisputeArgs, EvaluateArgs, NewSubmission, Outcome, Refusal, ResolveArgs,
    Submitted, SweepReport, TaskError,
};
pub use lifecycle::{claim, release, submit};
pub use settling::{dispute, evaluate, resolve, sweep};
