//! Settlement's paths in the `OpenAPI` document: the operator's batch routes (admin key) and
//! the rewards views of a worker and of a wallet.

use schemars::generate::SchemaGenerator;
use serde_json::{Value, json};

use super::{json_content, schema_ref};
use crate::wire::{
    BatchLeaves, BatchList, CloseBatchRequest, CloseBatchResult, MarkPaidRequest, Rewards,
    SettlementBatchInfo, WalletRewards,
};

/// The settlement paths; schemas are added to `g`.
pub fn paths(g: &mut SchemaGenerator, err: &dyn Fn(&str) -> Value) -> Value {
    let close = schema_ref::<CloseBatchRequest>(g);
    let closed = schema_ref::<CloseBatchResult>(g);
    let list = schema_ref::<BatchList>(g);
    let batch = schema_ref::<SettlementBatchInfo>(g);
    let leaves = schema_ref::<BatchLeaves>(g);
    let paid = schema_ref::<MarkPaidRequest>(g);
    let rewards = schema_ref::<Rewards>(g);
    let wallet_rewards = schema_ref::<WalletRewards>(g);
    let ok = |d: &str, s: &Value| json!({ "description": d, "content": json_content(s) });
    let id = json!([{ "name": "id", "in": "path", "required": true,
        "description": "The batch id", "schema": { "type": "integer", "minimum": 1 } }]);
    let admin = json!([ { "adminKey": [] } ]);
    json!({
        "/api/settlement/batches": {
            "post": {
                "operationId": "closeBatch",
                "summary": "Close a settlement batch: every pending credit made before `until` (default now) moves into one new batch, one leaf per wallet under a Merkle root (admin key)",
                "security": admin, "requestBody": { "required": false, "content": json_content(&close) },
                "responses": { "201": ok("A new batch", &closed),
                    "200": ok("The batch this watermark already closed, unchanged", &closed),
                    "400": err("INVALID_ARGUMENT (until in the future)"), "401": err("ADMIN_KEY_REQUIRED"),
                    "409": err("NOTHING_TO_SETTLE, SETTLEMENT_CONFLICT (a watermark earlier than the newest batch's) or SETTLEMENT_NOT_CONFIGURED") }
            },
            "get": {
                "operationId": "listBatches", "summary": "Settlement batches, newest first (admin key)",
                "security": admin,
                "parameters": [
                    { "name": "before", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 1 },
                      "description": "Only batches with a lower id (the previous page's next_before)" },
                    { "name": "limit", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 1, "maximum": 500 } }
                ],
                "responses": { "200": ok("Batches", &list), "400": err("INVALID_ARGUMENT"), "401": err("ADMIN_KEY_REQUIRED") }
            }
        },
        "/api/settlement/batches/{id}": { "get": {
            "operationId": "getBatch", "summary": "One batch: period, total, root, the EIP-712 digest to sign, its payment (admin key)",
            "security": admin, "parameters": id,
            "responses": { "200": ok("The batch", &batch), "400": err("INVALID_ARGUMENT"),
                "401": err("ADMIN_KEY_REQUIRED"), "404": err("BATCH_NOT_FOUND") }
        }},
        "/api/settlement/batches/{id}/leaves": { "get": {
            "operationId": "batchLeaves", "summary": "The batch's leaves (wallet, amount) in position order, a page at a time; `settle export` rebuilds the tree and the batch file from them (admin key)",
            "security": admin,
            "parameters": [
                { "name": "id", "in": "path", "required": true, "description": "The batch id", "schema": { "type": "integer", "minimum": 1 } },
                { "name": "after", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 0 },
                  "description": "Only leaves past this position (the previous page's next_after)" },
                { "name": "limit", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 1, "maximum": 50000 } }
            ],
            "responses": { "200": ok("A page of leaves", &leaves), "400": err("INVALID_ARGUMENT"),
                "401": err("ADMIN_KEY_REQUIRED"), "404": err("BATCH_NOT_FOUND") }
        }},
        "/api/settlement/batches/{id}/paid": { "post": {
            "operationId": "markBatchPaid", "summary": "Record the batch's payment transaction; its credits become paid (admin key; basis never pays)",
            "security": admin, "parameters": id,
            "requestBody": { "required": true, "content": json_content(&paid) },
            "responses": { "200": ok("The paid batch", &batch), "400": err("INVALID_ARGUMENT (not 0x + 64 hex digits)"),
                "401": err("ADMIN_KEY_REQUIRED"), "404": err("BATCH_NOT_FOUND"),
                "409": err("SETTLEMENT_CONFLICT (already paid, or the hash is another batch's)") }
        }},
        "/api/workers/{id}/rewards": { "get": {
            "operationId": "workerRewards",
            "summary": "A worker's credits by state (accrued, pending, batched, paid), its newest batches with its wallet's leaf, Merkle proof and root, and its newest credits",
            "parameters": [{ "name": "id", "in": "path", "required": true, "description": "worker id",
                "schema": { "type": "string", "pattern": crate::domain::WorkerId::PATTERN } }],
            "responses": { "200": ok("Rewards", &rewards), "400": err("INVALID_WORKER_ID"), "404": err("WORKER_NOT_FOUND") }
        }},
        "/api/wallets/{address}/rewards": { "get": {
            "operationId": "walletRewards",
            "summary": "Every worker's credits to one wallet, added up by state, with the wallet's newest leaves and proofs",
            "parameters": [{ "name": "address", "in": "path", "required": true, "description": "the public reward address",
                "schema": { "type": "string", "pattern": "^0x[0-9a-fA-F]{40}$" } }],
            "responses": { "200": ok("Rewards", &wallet_rewards), "400": err("INVALID_WALLET") }
        }}
    })
}
