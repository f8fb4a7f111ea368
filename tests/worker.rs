//! The worker daemon against a fake orchestrator (an in-test axum WebSocket server playing the
//! orchestrator's side of the worker channel, docs/PROTOCOL.md; the real endpoint is tested with
//! the orchestrator): the channel (`hello`/`welcome`, heartbeats, readiness, reconnects and
//! backoff), jobs (streaming, cancel, deadline, capacity, drain, resending unacknowledged results)
//! and the real `basis worker` process (SIGTERM during a job, an incomplete env file), and the real
//! worker under a real orchestrator that is killed and restarted, and real workers behind three
//! orchestrator replicas that forward gateway requests to each other.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

/// The cases, one file per concern under `tests/worker/`.
mod worker {
    mod channel;
    mod forwarding;
    mod jobs;
    mod process;
    mod restart;
    mod support;
}
