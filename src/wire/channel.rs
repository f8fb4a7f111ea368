//! The worker channel (docs/PROTOCOL.md, "Worker channel"): JSON text frames over the WebSocket at
//! `/api/workers/connect`, tagged by `type`, protocol version 1. `WorkerMessage` flows worker →
//! orchestrator, `OrchestratorMessage` the other way.
//!
//! `job_ack {job_id}` (docs/PROTOCOL.md, "Jobs and results"): the orchestrator sends it once
//! it has durably
//! recorded a `job_done`/`job_error`; until then the worker keeps the finished result and
//! resends it after a reconnect, so a finished result is never lost. Re-sent results are
//! idempotent on `job_id`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::{JobId, Runtime, Usage, WorkerId};

/// Frames a worker sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WorkerMessage {
    /// First frame on every connection (and after every reconnect).
    Hello {
        protocol: u32,
        worker_id: WorkerId,
        version: String,
        runtime: Runtime,
        models: Vec<String>,
        /// Jobs the worker runs at once.
        capacity: u32,
        /// A worker with a device key: base64 of its Ed25519 signature over the orchestrator's
        /// origin, the `challenge` and the worker id (`wire::signature::channel_message`).
        /// Absent on a connection authenticated by a (legacy) bearer token.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        proof: Option<String>,
    },
    /// Every `heartbeat_interval_s`. `ready` is false while the runtime is unhealthy, and then
    /// the orchestrator routes nothing to this worker.
    Heartbeat {
        seq: u64,
        in_flight: u32,
        #[serde(default = "default_true")]
        ready: bool,
    },
    /// A piece of a streamed answer, in order.
    JobChunk { job_id: JobId, delta: String },
    /// The job finished. `output` is the whole answer text (also when it was streamed).
    JobDone {
        job_id: JobId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<String>,
        usage: Usage,
        timings: JobTimings,
        /// True when the echo simulator produced the answer.
        #[serde(default)]
        simulated: bool,
    },
    /// The job failed on the runtime.
    JobError {
        job_id: JobId,
        code: JobErrorCode,
        message: String,
    },
}

fn default_true() -> bool {
    true
}

/// Frames the orchestrator sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OrchestratorMessage {
    /// First frame on a connection opened without a bearer token: the one-time value the
    /// worker's `hello` proof signs.
    Challenge { challenge: String },
    /// Answer to `hello`: the timing the worker must keep.
    Welcome {
        heartbeat_interval_s: u32,
        online_window_s: u32,
    },
    /// Run a chat completion. `request` is the OpenAI-compatible request body (with
    /// `stream` telling whether chunks are wanted).
    Job {
        job_id: JobId,
        model: String,
        request: serde_json::Value,
        /// Milliseconds the worker has before the orchestrator gives up on the job.
        deadline_ms: u64,
    },
    /// Stop working on a job (the client went away or the deadline passed).
    Cancel { job_id: JobId },
    /// Durably recorded: the worker may forget this job's result.
    JobAck { job_id: JobId },
    /// Take no new jobs; finish what is in flight.
    Drain,
    /// A protocol or auth error; the connection closes after it.
    Error { code: String, message: String },
}

/// How long a job took, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct JobTimings {
    /// From receiving the job to the first token.
    pub first_token_ms: u64,
    /// From receiving the job to its end.
    pub total_ms: u64,
}

/// Why a job failed on the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobErrorCode {
    /// The runtime does not serve the requested model.
    ModelNotFound,
    /// The runtime is not reachable.
    RuntimeDown,
    /// The runtime did not answer in time.
    Timeout,
    /// The runtime answered something that is not a valid completion.
    BadResponse,
    /// The job was cancelled.
    Cancelled,
    /// The worker is draining and takes no new jobs.
    Draining,
    /// The worker already runs `capacity` jobs.
    AtCapacity,
    /// The request itself is invalid.
    BadRequest,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_tagged_by_type() {
        let hb = WorkerMessage::Heartbeat {
            seq: 3,
            in_flight: 1,
            ready: true,
        };
        let json = serde_json::to_value(&hb).unwrap();
        assert_eq!(json["type"], "heartbeat");
        let back: WorkerMessage =
            serde_json::from_str(r#"{"type":"heartbeat","seq":3,"in_flight":1}"#).unwrap();
        assert_eq!(back, hb, "ready defaults to true");
        let ack: OrchestratorMessage = serde_json::from_str(
            r#"{"type":"job_ack","job_id":"job-0123456789abcdef0123456789abcdef"}"#,
        )
        .unwrap();
        assert!(matches!(ack, OrchestratorMessage::JobAck { .. }));
        assert_eq!(
            serde_json::to_value(JobErrorCode::ModelNotFound).unwrap(),
            "MODEL_NOT_FOUND"
        );
    }
}
