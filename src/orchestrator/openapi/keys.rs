//! The operator's key paths in the `OpenAPI` document: listing keys with their quotas and
//! usage, a key's usage per day, revoking a key, and setting a client key's quotas (admin key).

use schemars::generate::SchemaGenerator;
use serde_json::{Value, json};

use super::{json_content, schema_ref};
use crate::wire::{ApiKey, KeyList, KeyUsageReport, SetLimitsRequest, USAGE_DAYS_MAX};

/// The key paths; schemas are added to `g`.
pub fn paths(g: &mut SchemaGenerator, err: &dyn Fn(&str) -> Value) -> Value {
    let list = schema_ref::<KeyList>(g);
    let key = schema_ref::<ApiKey>(g);
    let limits = schema_ref::<SetLimitsRequest>(g);
    let usage = schema_ref::<KeyUsageReport>(g);
    let ok = |d: &str, s: &Value| json!({ "description": d, "content": json_content(s) });
    let id = json!([{ "name": "id", "in": "path", "required": true,
        "description": "key: + at least 8 hex digits of the key's sha256 (as GET /api/keys shows)",
        "schema": { "type": "string" } }]);
    json!({
        "/api/keys": { "get": {
            "operationId": "listKeys",
            "summary": "Every API key (never the key: its id and sha256), its role, quotas and today's usage (admin key)",
            "security": [ { "adminKey": [] } ],
            "responses": { "200": ok("The keys", &list), "401": err("ADMIN_KEY_REQUIRED") }
        }},
        "/api/keys/{id}/usage": { "get": {
            "operationId": "keyUsage",
            "summary": "A key's usage per UTC day: requests, credited tokens and the amount charged (admin key)",
            "security": [ { "adminKey": [] } ],
            "parameters": [id[0].clone(), { "name": "days", "in": "query", "required": false,
                "description": format!("Days back, today included (1 to {USAGE_DAYS_MAX}; default 31)"),
                "schema": { "type": "integer", "minimum": 1, "maximum": USAGE_DAYS_MAX } }],
            "responses": { "200": ok("The key's usage", &usage), "400": err("INVALID_ARGUMENT (days out of range, a malformed id)"),
                "401": err("ADMIN_KEY_REQUIRED"), "404": err("KEY_NOT_FOUND") }
        }},
        "/api/keys/{id}/revoke": { "post": {
            "operationId": "revokeKey",
            "summary": "Revoke a key: it stops working at once on every route and replica (admin key)",
            "security": [ { "adminKey": [] } ], "parameters": id,
            "responses": { "200": ok("The revoked key", &key), "400": err("INVALID_ARGUMENT (a malformed or ambiguous id)"),
                "401": err("ADMIN_KEY_REQUIRED"), "404": err("KEY_NOT_FOUND") }
        }},
        "/api/keys/{id}/limits": { "put": {
            "operationId": "setKeyLimits",
            "summary": "Replace a client key's quotas; a limit left out is removed (admin key)",
            "security": [ { "adminKey": [] } ], "parameters": id,
            "requestBody": { "required": true, "content": json_content(&limits) },
            "responses": { "200": ok("The key", &key), "400": err("INVALID_ARGUMENT (not a client key, a limit of 0)"),
                "401": err("ADMIN_KEY_REQUIRED"), "404": err("KEY_NOT_FOUND") }
        }}
    })
}
