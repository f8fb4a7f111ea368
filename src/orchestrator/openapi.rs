//! The `OpenAPI` 3.1 document served at `/openapi.json`. Component schemas are the wire types'
//! schemars output (JSON Schema 2020-12, which `OpenAPI` 3.1 uses as is); paths reference them.

use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Value, json};

use crate::wire::{
    ADMIN_KEY_HEADER, ApiErrorBody, ENROLLMENT_KEY_HEADER, Health, OnboardingStatus,
    RegisterRequest, WorkerList, WorkerRecord,
};

/// A `$ref` to `T`'s component schema (added to the generator's definitions).
fn schema_ref<T: JsonSchema>(generator: &mut SchemaGenerator) -> Value {
    generator.subschema_for::<T>().to_value()
}

fn json_content(schema: &Value) -> Value {
    json!({ "application/json": { "schema": schema } })
}

/// Builds the document. Deterministic, so it can be snapshotted.
pub fn document() -> Value {
    let settings = SchemaSettings::draft2020_12().with(|s| {
        s.definitions_path = "/components/schemas".into();
        s.meta_schema = None;
    });
    let mut g = settings.into_generator();
    let health = schema_ref::<Health>(&mut g);
    let onboarding = schema_ref::<OnboardingStatus>(&mut g);
    let register = schema_ref::<RegisterRequest>(&mut g);
    let record = schema_ref::<WorkerRecord>(&mut g);
    let list = schema_ref::<WorkerList>(&mut g);
    let error = schema_ref::<ApiErrorBody>(&mut g);
    let schemas = g.take_definitions(true);

    let err =
        |description: &str| json!({ "description": description, "content": json_content(&error) });
    let ok = |description: &str, schema: &Value| json!({ "description": description, "content": json_content(schema) });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "basis orchestrator",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Worker registry of a basis compute network. Errors are {\"error\":{code,message,fix}} with stable codes.",
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
            }},
            "/api/workers/register": { "post": {
                "operationId": "registerWorker",
                "summary": "Register a worker (sends token_sha256, never the token)",
                "description": "Re-registering the same inputs is idempotent (200). Changing them, or rotating the token, needs `Authorization: Bearer <current token>` or the admin key; otherwise 409 WORKER_ID_TAKEN.",
                "security": [ {}, { "workerToken": [] }, { "enrollmentKey": [] }, { "adminKey": [] } ],
                "requestBody": { "required": true, "content": json_content(&register) },
                "responses": {
                    "201": ok("Registered", &record),
                    "200": ok("Already registered (unchanged or updated)", &record),
                    "400": err("Invalid input (wallet, worker id, runtime, a secret in a field, malformed JSON)"),
                    "401": err("Registration is gated and no enrollment key was sent"),
                    "403": err("Wrong enrollment key, or registration closed"),
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
                "responses": { "200": ok("A page of workers", &list), "400": err("Bad query") }
            }},
            "/api/workers/{id}": { "get": {
                "operationId": "getWorker",
                "summary": "One worker's record",
                "parameters": [ { "name": "id", "in": "path", "required": true,
                    "schema": { "type": "string", "pattern": crate::domain::WorkerId::PATTERN } } ],
                "responses": { "200": ok("The worker", &record), "400": err("Invalid worker id"),
                    "404": err("No such worker") }
            }}
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "workerToken": { "type": "http", "scheme": "bearer",
                    "description": "The worker token (proof of possession for re-registration)" },
                "enrollmentKey": { "type": "apiKey", "in": "header", "name": ENROLLMENT_KEY_HEADER },
                "adminKey": { "type": "apiKey", "in": "header", "name": ADMIN_KEY_HEADER }
            }
        }
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
