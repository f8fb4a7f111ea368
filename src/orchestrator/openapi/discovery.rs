//! Discovery paths in the `OpenAPI` document (docs/DISCOVERY.md): the ERC-8004 registration
//! files of the network and of each worker, the agent link (worker token), the leaderboard.

use schemars::generate::SchemaGenerator;
use serde_json::{Value, json};

use super::{json_content, schema_ref};
use crate::wire::{AgentLinkRequest, AgentRegistration, Leaderboard};

/// The discovery paths; schemas are added to `g`.
pub fn paths(g: &mut SchemaGenerator, err: &dyn Fn(&str) -> Value) -> Value {
    let file = schema_ref::<AgentRegistration>(g);
    let link = schema_ref::<AgentLinkRequest>(g);
    let board = schema_ref::<Leaderboard>(g);
    let ok = |d: &str, s: &Value| json!({ "description": d, "content": json_content(s) });
    let id = json!([{ "name": "id", "in": "path", "required": true,
        "schema": { "type": "string", "pattern": crate::domain::WorkerId::PATTERN } }]);
    let query = |name: &str, schema: Value, description: &str| json!({ "name": name, "in": "query", "required": false, "description": description, "schema": schema });
    json!({
        "/.well-known/agent-registration.json": { "get": {
            "operationId": "networkRegistration",
            "summary": "The network's ERC-8004 registration file (registration-v1): its gateway, task market and OpenAPI as services",
            "responses": { "200": ok("The registration file", &file) }
        }},
        "/.well-known/basis.svg": { "get": {
            "operationId": "networkImage",
            "summary": "The image registration files name when none is configured",
            "responses": { "200": { "description": "SVG",
                "content": { "image/svg+xml": { "schema": { "type": "string" } } } } }
        }},
        "/api/workers/{id}/agent-registration.json": { "get": {
            "operationId": "workerRegistration",
            "summary": "A worker's ERC-8004 registration file: reward address as agentWallet, hardware, models, counters; active only while it is online. Holds nothing derived from its token.",
            "parameters": id,
            "responses": { "200": ok("The registration file", &file), "400": err("Invalid worker id"),
                "404": err("WORKER_NOT_FOUND") }
        }},
        "/api/workers/{id}/agent-link": { "post": {
            "operationId": "linkAgent",
            "summary": "Record the ERC-8004 agent id the owner's register(agentURI) transaction returned (worker token)",
            "security": [ { "workerSignature": [] }, { "workerToken": [] } ], "parameters": id,
            "requestBody": { "required": true, "content": json_content(&link) },
            "responses": { "200": ok("The registration file, listing it", &file),
                "400": err("INVALID_ARGUMENT (registry not eip155:<chain>:<address>, agent id too large, ids differ)"),
                "401": err("WORKER_TOKEN_INVALID"), "404": err("WORKER_NOT_FOUND") }
        }},
        "/api/leaderboard": { "get": {
            "operationId": "leaderboard",
            "summary": "Workers ranked by what the orchestrator observed in a window (docs/DISCOVERY.md, the score); figures cached briefly",
            "parameters": [
                query("window", json!({ "enum": ["24h", "7d", "all"], "default": "24h" }), "The window counted over"),
                query("by", json!({ "enum": ["score", "tasks_passed", "pass_rate", "online", "tokens", "ttft", "metric"], "default": "score" }), "What to rank by"),
                query("family", json!({ "type": "string" }), "With by=metric: the task family"),
                query("worker", json!({ "type": "string" }), "Also return this worker's entry as `you`"),
                query("limit", json!({ "type": "integer", "minimum": 1, "maximum": 1000, "default": 100 }), "Entries to return")
            ],
            "responses": { "200": ok("The leaderboard", &board),
                "400": err("INVALID_ARGUMENT (an unknown window or by, by=metric without family)") }
        }}
    })
}
