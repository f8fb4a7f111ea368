//! The `OpenAI`-compatible gateway (docs/PROTOCOL.md, "Gateway"): `GET /v1/models` and
//! `POST /v1/chat/completions` answers, and the `x-basis-*` response headers that tie an answer
//! to its worker, job and receipt.
//!
//! The request body is the client's `OpenAI` chat body, forwarded to the worker as it is; only
//! `model`, `messages` and `stream` are read here. Answers are the `OpenAI` shapes plus two
//! optional `basis_receipt_id` / `basis_receipt_hash` fields: on a non-streamed
//! `chat.completion` (besides the headers) and on the last `chat.completion.chunk` of a stream
//! (the one with a `finish_reason`), because a stream's headers leave before the receipt
//! exists.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::{ReceiptHash, ReceiptId};

/// `GET`: the models of the online workers.
pub const MODELS: &str = "/v1/models";
/// `POST`: a chat completion, streamed (`"stream": true`, server-sent events) or not.
pub const CHAT_COMPLETIONS: &str = "/v1/chat/completions";

/// The worker that served the job.
pub const WORKER_ID_HEADER: &str = "x-basis-worker-id";
/// The job's id (`job-` + 32 hex).
pub const JOB_ID_HEADER: &str = "x-basis-job-id";
/// The receipt's id, for `GET /api/receipts/{id}` (non-streamed answers only).
pub const RECEIPT_ID_HEADER: &str = "x-basis-receipt-id";
/// The receipt's hash (non-streamed answers only; a stream carries it in its last chunk).
pub const RECEIPT_HASH_HEADER: &str = "x-basis-receipt-hash";
/// On an answer another replica served (its worker was connected there): that replica's id.
pub const REPLICA_ID_HEADER: &str = "x-basis-replica-id";
/// `POST`, between replicas only (signed, see docs/DEPLOY.md): a chat completion served by a
/// worker connected to the receiving replica, never forwarded again.
/// Request header: serve this request only on a worker registered with this label (e.g.
/// `region=eu`); 503 `NO_WORKER_AVAILABLE` when none is online.
pub const WORKER_LABEL_HEADER: &str = "x-basis-worker-label";
pub const REPLICA_CHAT_COMPLETIONS: &str = "/internal/v1/chat/completions";
/// `POST`, between replicas only (signed): a client key was revoked or its quotas changed,
/// so the receiving replica forgets what it remembered of it. Body: `{"sha256": "0x…"}`.
pub const REPLICA_KEY_CHANGED: &str = "/internal/v1/keys/changed";
/// `POST`, between replicas only (signed): a worker was revoked, so the replica holding its
/// channel closes it. Body: `{"worker_id": "…"}`.
pub const REPLICA_WORKER_REVOKED: &str = "/internal/v1/workers/revoked";

/// `GET /v1/models`: `{"object":"list","data":[…]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ModelList {
    /// Always `list`.
    pub object: String,
    pub data: Vec<ModelEntry>,
}

/// One model some online worker serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ModelEntry {
    pub id: String,
    /// Always `model`.
    pub object: String,
    /// Unix seconds (when the first worker serving it connected).
    pub created: u64,
    /// Always `basis`.
    pub owned_by: String,
}

/// Token counts of a completion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CompletionUsage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

/// The assistant's message in a non-streamed answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AssistantMessage {
    /// Always `assistant`.
    pub role: String,
    pub content: String,
}

/// One choice of a non-streamed answer (the gateway always returns exactly one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChatChoice {
    pub index: u32,
    pub message: AssistantMessage,
    pub finish_reason: String,
}

/// A non-streamed answer (`object: chat.completion`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChatCompletion {
    /// `chatcmpl-` + the job's 32 hex.
    pub id: String,
    pub object: String,
    /// Unix seconds.
    pub created: u64,
    pub model: String,
    pub choices: Vec<ChatChoice>,
    pub usage: CompletionUsage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis_receipt_id: Option<ReceiptId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis_receipt_hash: Option<ReceiptHash>,
}

/// The new text of one streamed chunk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChunkDelta {
    /// `assistant` on the first chunk only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// One choice of a streamed chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChunkChoice {
    pub index: u32,
    pub delta: ChunkDelta,
    /// `stop` on the last chunk, `null` before.
    pub finish_reason: Option<String>,
}

/// One server-sent event of a streamed answer (`object: chat.completion.chunk`). The last one
/// (with `finish_reason`) also carries `usage` and the receipt; `data: [DONE]` follows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChatCompletionChunk {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub model: String,
    pub choices: Vec<ChunkChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<CompletionUsage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis_receipt_id: Option<ReceiptId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis_receipt_hash: Option<ReceiptHash>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipt_fields_are_optional_on_the_wire() {
        let chunk = ChatCompletionChunk {
            id: "chatcmpl-1".into(),
            object: "chat.completion.chunk".into(),
            created: 1,
            model: "m".into(),
            choices: vec![ChunkChoice {
                index: 0,
                delta: ChunkDelta {
                    role: None,
                    content: Some("hi".into()),
                },
                finish_reason: None,
            }],
            usage: None,
            basis_receipt_id: None,
            basis_receipt_hash: None,
        };
        let json = serde_json::to_value(&chunk).unwrap();
        assert!(json.get("basis_receipt_hash").is_none());
        assert!(json["choices"][0]["finish_reason"].is_null());
        assert!(json["choices"][0]["delta"].get("role").is_none());
    }
}
