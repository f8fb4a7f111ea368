//! The `OpenAPI` 3.1 document served at `/openapi.json`. Component schemas are the wire types'
//! schemars output (JSON Schema 2020-12, which `OpenAPI` 3.1 uses as is); paths reference them.
//! The task market's paths are in [`tasks`], the keys' in [`keys`], discovery's in
//! [`discovery`], settlement's in [`settlement`].

mod discovery;
mod keys;
mod settlement;
mod tasks;

use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Value, json};

use crate::domain::HashedReceipt;
use crate::wire::schema::StandardFormats;
use crate::wire::{
    ADMIN_KEY_HEADER, ApiErrorBody, ChatCompletion, ChatCompletionChunk, ENROLLMENT_KEY_HEADER,
    Health, ModelList, OnboardingStatus, RegisterRequest, WorkerList, WorkerRecord,
};

/// A `$ref` to `T`'s component schema (added to the generator's definitions).
fn schema_ref<T: JsonSchema>(generator: &mut SchemaGenerator) -> Value {
    generator.subschema_for::<T>().to_value()
}

fn json_content(schema: &Value) -> Value {
    json!({ "application/json": { "schema": schema } })
}

/// JSON Schema 2020-12 with components under `/components/schemas` and JSON Schema's own
/// formats only.
fn settings() -> SchemaSettings {
    SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .with_transform(StandardFormats)
}

/// Builds the document. Deterministic, so it can be snapshotted.
pub fn document() -> Value {
    let mut g = settings().into_generator();
    let health = schema_ref::<Health>(&mut g);
    let onboarding = schema_ref::<OnboardingStatus>(&mut g);
    let register = schema_ref::<RegisterRequest>(&mut g);
    let record = schema_ref::<WorkerRecord>(&mut g);
    let list = schema_ref::<WorkerList>(&mut g);
    let error = schema_ref::<ApiErrorBody>(&mut g);
    let models = schema_ref::<ModelList>(&mut g);
    let completion = schema_ref::<ChatCompletion>(&mut g);
    let chunk = schema_ref::<ChatCompletionChunk>(&mut g);
    let receipt = schema_ref::<HashedReceipt>(&mut g);
    let err =
        |description: &str| json!({ "description": description, "content": json_content(&error) });
    let market = tasks::paths(&mut g, &err);
    let keys = keys::paths(&mut g, &err);
    let found = discovery::paths(&mut g, &err);
    let settled = settlement::paths(&mut g, &err);
    let schemas = g.take_definitions(true);

    let ok = |description: &str, schema: &Value| json!({ "description": description, "content": json_content(schema) });
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "basis orchestrator",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Worker registry, OpenAI-compatible gateway and task market of a basis compute network. Errors are {\"error\":{code,message,fix}} with stable codes.",
            "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" }
        },
        "paths": {
            "/health": { "get": {
                "operationId": "health",
                "summary": "Liveness, version, and whether the store answers",
                "responses": { "200": ok("Healthy", &health), "503": ok("Store unavailable", &health) }
            }},
            "/metrics": { "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics (OpenMetrics text)",
                "responses": { "200": { "description": "Metrics",
                    "content": { "application/openmetrics-text": { "schema": { "type": "string" } } } } }
            }},
            "/openapi.json": { "get": {
                "operationId": "openapi",
                "summary": "This document",
                "responses": { "200": { "description": "OpenAPI 3.1 document",
                    "content": { "application/json": { "schema": { "type": "object" } } } } }
            }},
            "/api/workers/onboarding/status": { "get": {
                "operationId": "onboardingStatus",
                "summary": "Registration mode, job routing, settlement, heartbeat timings",
                "responses": { "200": ok("Posture", &onboarding) }
            }}
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": security_schemes()
        }
    });
    let gateway = gateway_paths(&err, &models, &completion, &chunk, &receipt);
    let workers = worker_paths(&err, &register, &record, &list);
    for more in [workers, gateway, market, keys, found, settled] {
        if let (Some(paths), Value::Object(more)) = (doc["paths"].as_object_mut(), more) {
            paths.extend(more);
        }
    }
    doc
}

fn security_schemes() -> Value {
    json!({
        "workerSignature": { "type": "apiKey", "in": "header", "name": "Signature",
            "description": "An HTTP Message Signature (RFC 9421) by the worker's Ed25519 device key, with Signature-Input and Content-Digest: covers (\"@method\" \"@target-uri\" \"content-digest\"), created, nonce, keyid (the worker id), alg=\"ed25519\", tag=\"basis\" (docs/SECURITY.md, \"Signed requests\"). The key itself never travels." },
        "workerToken": { "type": "http", "scheme": "bearer",
            "description": "Legacy: the token of a worker registered before device keys; refused once it registers a key" },
        "enrollmentKey": { "type": "apiKey", "in": "header", "name": ENROLLMENT_KEY_HEADER },
        "adminKey": { "type": "apiKey", "in": "header", "name": ADMIN_KEY_HEADER },
        "clientKey": { "type": "http", "scheme": "bearer",
            "description": "A client key (basis orchestrator keys create --role client); not needed with --open" },
        "evaluatorKey": { "type": "http", "scheme": "bearer",
            "description": "An evaluator key (basis orchestrator keys create --role evaluator)" }
    })
}

/// Registration, the registry and revocation.
fn worker_paths(
    err: &dyn Fn(&str) -> Value,
    register: &Value,
    record: &Value,
    list: &Value,
) -> Value {
    let ok = |description: &str, schema: &Value| json!({ "description": description, "content": json_content(schema) });
    json!({
            "/api/workers/register": { "post": {
                "operationId": "registerWorker",
                "summary": "Register a worker with its device public key, signed by that key (no secret travels)",
                "description": "The request carries an RFC 9421 signature (label `basis`) by the device key in `public_key`. Re-registering the same inputs is idempotent (200). Another key needs a second signature (label `previous`) by the registered key, or the admin key; a legacy token worker moves to a key once with `Authorization: Bearer <its token>`; otherwise 409 WORKER_ID_TAKEN. A revoked worker: 403 WORKER_REVOKED unless the admin key re-registers it.",
                "security": [ { "workerSignature": [] }, { "workerToken": [] }, { "enrollmentKey": [] }, { "adminKey": [] } ],
                "requestBody": { "required": true, "content": json_content(register) },
                "responses": {
                    "201": ok("Registered", record),
                    "200": ok("Already registered (unchanged or updated)", record),
                    "400": err("Invalid input (wallet, worker id, runtime, a secret in a field, malformed JSON)"),
                    "401": err("Registration is gated and no enrollment key was sent, or the signature is missing or invalid (WORKER_SIGNATURE_INVALID)"),
                    "403": err("Wrong enrollment key, registration closed, or the worker was revoked"),
                    "409": err("The worker id is taken"),
                    "413": err("Body too large"),
                    "415": err("Not JSON"),
                    "429": err("Rate limited; see Retry-After")
                }
            }},
            "/api/workers": { "get": {
                "operationId": "listWorkers",
                "summary": "Registered workers, ordered by id, paged",
                "parameters": [
                    { "name": "after", "in": "query", "required": false, "schema": { "type": "string" } },
                    { "name": "limit", "in": "query", "required": false,
                      "schema": { "type": "integer", "minimum": 1, "maximum": 1000, "default": 100 } }
                ],
                "responses": { "200": ok("A page of workers", list), "400": err("Bad query") }
            }},
            "/api/workers/{id}": { "get": {
                "operationId": "getWorker",
                "summary": "One worker's record",
                "parameters": [ { "name": "id", "in": "path", "required": true,
                    "schema": { "type": "string", "pattern": crate::domain::WorkerId::PATTERN } } ],
                "responses": { "200": ok("The worker", record), "400": err("Invalid worker id"),
                    "404": err("No such worker") }
            }},
            "/api/workers/{id}/revoke": { "post": {
                "operationId": "revokeWorker",
                "summary": "Revoke a worker: its key stops working at once on every route, and its channel closes",
                "security": [ { "adminKey": [] } ],
                "parameters": [ { "name": "id", "in": "path", "required": true,
                    "schema": { "type": "string", "pattern": crate::domain::WorkerId::PATTERN } } ],
                "responses": { "200": ok("The revoked worker", record), "400": err("Invalid worker id"),
                    "401": err("No admin key"), "403": err("Wrong admin key"),
                    "404": err("No such worker") }
            }}
    })
}

/// The worker channel, the gateway and receipts.
fn gateway_paths(
    err: &dyn Fn(&str) -> Value,
    models: &Value,
    completion: &Value,
    chunk: &Value,
    receipt: &Value,
) -> Value {
    let ok = |description: &str, schema: &Value| json!({ "description": description, "content": json_content(schema) });
    json!({
            "/api/workers/connect": { "get": {
                "operationId": "connectWorker",
                "summary": "The worker channel: WebSocket upgrade (JSON text frames, protocol 1); the worker signs the challenge frame with its device key",
                "security": [ {}, { "workerToken": [] } ],
                "responses": { "101": { "description": "Switching protocols: hello, welcome, heartbeats, jobs" },
                    "401": err("A legacy worker token that is wrong or no longer accepted"), "426": err("Not a WebSocket upgrade"),
                    "429": err("Too many failed authentications"), "503": err("Shutting down") }
            }},
            "/v1/models": { "get": {
                "operationId": "listModels",
                "summary": "Models served by online workers (OpenAI list shape)",
                "security": [ { "clientKey": [] } ],
                "responses": { "200": ok("Models", models), "401": err("Missing or wrong client key") }
            }},
            "/v1/chat/completions": { "post": {
                "operationId": "chatCompletions",
                "summary": "OpenAI-compatible chat completion, routed to the least busy online worker",
                "description": "Headers x-basis-worker-id and x-basis-job-id on every routed answer; x-basis-receipt-id and x-basis-receipt-hash on non-streamed answers. With stream true the answer is text/event-stream of chat.completion.chunk; the last chunk (with finish_reason) carries usage, basis_receipt_id and basis_receipt_hash, then data: [DONE]. A failure mid-stream is one data: {error} event, then the stream closes.",
                "security": [ { "clientKey": [] } ],
                "parameters": [ { "name": "x-basis-worker-label", "in": "header", "required": false,
                    "description": "Serve this request only on a worker registered with this label (e.g. region=eu); 503 NO_WORKER_AVAILABLE when none is online",
                    "schema": { "type": "string", "pattern": "^[a-z0-9][a-z0-9._=:/-]{0,63}$" } } ],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object",
                    "required": ["model", "messages"] } } } },
                "responses": {
                    "200": { "description": "The completion (or the event stream)", "content": {
                        "application/json": { "schema": completion },
                        "text/event-stream": { "schema": chunk } } },
                    "400": err("Invalid body"), "401": err("Missing or wrong client key"),
                    "413": err("Body too large"),
                    "429": err("QUOTA_EXCEEDED: the client key's requests per minute or tokens per UTC day; see Retry-After"),
                    "502": err("The worker failed or was lost (WORKER_LOST, MODEL_NOT_FOUND, RUNTIME_DOWN, ...)"),
                    "503": err("No worker serves the model now, or shutting down; see Retry-After"),
                    "504": err("The job missed its deadline")
                }
            }},
            "/api/receipts": { "get": {
                "operationId": "listReceipts",
                "summary": "Receipts in issue order (issued_at, then receipt_id), each exactly as sealed; paged",
                "parameters": [
                    { "name": "since", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 0 } },
                    { "name": "worker", "in": "query", "required": false, "schema": { "type": "string" } },
                    { "name": "after", "in": "query", "required": false, "description": "next_after of the previous page", "schema": { "type": "string" } },
                    { "name": "limit", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 1, "maximum": 1000, "default": 100 } }
                ],
                "responses": { "200": { "description": "A page: {receipts: [HashedReceipt], next_after?}",
                    "content": { "application/json": { "schema": { "type": "object" } } } },
                    "400": err("Bad query") }
            }},
            "/api/receipts/{id}": { "get": {
                "operationId": "getReceipt",
                "summary": "A receipt as sealed (verify offline: keccak256 of the JCS of all fields but receipt_hash)",
                "parameters": [ { "name": "id", "in": "path", "required": true,
                    "description": "rcpt- + 32 hex, or the receipt hash 0x + 64 hex",
                    "schema": { "type": "string" } } ],
                "responses": { "200": ok("The receipt", receipt), "400": err("Malformed id"),
                    "404": err("No such receipt") }
            }}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ref_resolves_to_a_component() {
        let doc = document();
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for name in [
            "RegisterRequest",
            "WorkerRecord",
            "OnboardingStatus",
            "Health",
            "ApiErrorBody",
            "WorkerList",
            "PostTaskRequest",
            "Task",
            "TaskList",
            "Submission",
            "Rewards",
        ] {
            assert!(schemas.contains_key(name), "{name}");
        }
        for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = &part[..part.find('"').unwrap()];
            assert!(schemas.contains_key(name), "dangling $ref {name}");
        }
        assert!(!text.contains("$defs"));
    }
}
