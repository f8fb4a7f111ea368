//! The task market's paths in the `OpenAPI` document (docs/TASK_MARKET.md): tasks,
//! claims, submissions, evaluations, disputes, resolutions and the reward ledger, with their
//! credentials and error answers.

use schemars::generate::SchemaGenerator;
use serde_json::{Value, json};

use super::{json_content, schema_ref};
use crate::domain::{Evaluation, TaskId};
use crate::wire::{
    Claim, ClaimRequest, DisputeRequest, PostTaskRequest, ResolveRequest, Submission,
    SubmitRequest, Task, TaskList,
};

fn id_param(description: &str, pattern: &str) -> Value {
    json!([{ "name": "id", "in": "path", "required": true, "description": description,
        "schema": { "type": "string", "pattern": pattern } }])
}

/// The market's paths; schemas are added to `g`.
pub fn paths(g: &mut SchemaGenerator, err: &dyn Fn(&str) -> Value) -> Value {
    let mut out = task_paths(g, err);
    if let (Value::Object(out), Value::Object(more)) = (&mut out, submission_paths(g, err)) {
        out.extend(more);
    }
    out
}

fn ok(description: &str, schema: &Value) -> Value {
    json!({ "description": description, "content": json_content(schema) })
}

fn body(schema: &Value) -> Value {
    json!({ "required": true, "content": json_content(schema) })
}

const WORKER: &str =
    "401 WORKER_TOKEN_INVALID (missing or wrong token for worker_id), 404 WORKER_NOT_FOUND";

fn query(name: &str, schema: &Value, description: &str) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description,
        "schema": schema })
}

/// Posting, listing, reading, claiming and releasing tasks.
fn task_paths(g: &mut SchemaGenerator, err: &dyn Fn(&str) -> Value) -> Value {
    let post_task = schema_ref::<PostTaskRequest>(g);
    let task = schema_ref::<Task>(g);
    let list = schema_ref::<TaskList>(g);
    let claim_req = schema_ref::<ClaimRequest>(g);
    let claim = schema_ref::<Claim>(g);
    let task_id = id_param("task- + 32 hex", TaskId::PATTERN);
    let q = query;
    json!({
        "/api/tasks": {
            "get": {
                "operationId": "listTasks",
                "summary": "Tasks, highest reward first (then task id), filtered, paged by an opaque cursor",
                "parameters": [
                    q("status", &json!({ "type": "string" }), "Default open"),
                    q("capabilities", &json!({ "type": "string" }), "Comma-separated: only tasks whose required capabilities are all among these"),
                    q("fits", &json!({ "type": "string" }), "A worker id: only tasks that worker can claim (its registered capabilities and VRAM); not with capabilities"),
                    q("min_reward", &json!({ "type": "string", "pattern": crate::domain::Amount::PATTERN }), "Atomic units, decimal string"),
                    q("deadline_buffer_s", &json!({ "type": "integer", "minimum": 0 }), "Only tasks whose deadline is at least this far away"),
                    q("cursor", &json!({ "type": "string" }), "next_cursor of the previous page"),
                    q("limit", &json!({ "type": "integer", "minimum": 1, "maximum": 50, "default": 20 }), "Page size")
                ],
                "responses": { "200": ok("A page of tasks", &list), "400": err("Bad query or cursor (INVALID_ARGUMENT)") }
            },
            "post": {
                "operationId": "postTask",
                "summary": "Post a task (client key; none with --open)",
                "security": [ { "clientKey": [] } ],
                "requestBody": body(&post_task),
                "responses": {
                    "201": ok("The open task", &task),
                    "400": err("INVALID_ARGUMENT (criteria, deadline, reward, asset, claim_ttl_s, pass_threshold), INVALID_JSON (e.g. a float or negative reward), SECRET_REFUSED"),
                    "401": err("CLIENT_KEY_REQUIRED or CLIENT_KEY_INVALID"),
                    "413": err("Body too large"), "429": err("Too many failed authentications")
                }
            }
        },
        "/api/tasks/{id}": { "get": {
            "operationId": "getTask", "summary": "One task", "parameters": task_id,
            "responses": { "200": ok("The task", &task), "400": err("Malformed id"), "404": err("TASK_NOT_FOUND") }
        }},
        "/api/tasks/{id}/claim": { "post": {
            "operationId": "claimTask",
            "summary": "Claim an open task: an exclusive lease until claim_expiry (worker token)",
            "description": "Claiming a task this worker already holds returns its current claim.",
            "security": [ { "workerSignature": [] }, { "workerToken": [] } ], "parameters": task_id, "requestBody": body(&claim_req),
            "responses": { "200": ok("The claim", &claim), "401": err(WORKER), "404": err("TASK_NOT_FOUND or WORKER_NOT_FOUND"),
                "409": err("TASK_NOT_OPEN, ALREADY_CLAIMED, ACTIVE_CLAIM_EXISTS"), "429": err("Too many failed authentications") }
        }},
        "/api/tasks/{id}/release": { "post": {
            "operationId": "releaseTask",
            "summary": "Give a held claim back (attempt + 1; the third abandons the task)",
            "security": [ { "workerSignature": [] }, { "workerToken": [] } ], "parameters": task_id, "requestBody": body(&claim_req),
            "responses": { "200": ok("The task", &task), "401": err(WORKER), "404": err("TASK_NOT_FOUND or WORKER_NOT_FOUND"),
                "409": err("NOT_CLAIM_HOLDER") }
        }}
    })
}

/// Submitting, reading, evaluating, disputing and resolving submissions; the reward ledger.
fn submission_paths(g: &mut SchemaGenerator, err: &dyn Fn(&str) -> Value) -> Value {
    let task_id = id_param("task- + 32 hex", TaskId::PATTERN);
    let submit = schema_ref::<SubmitRequest>(g);
    let submission = schema_ref::<Submission>(g);
    let evaluation = schema_ref::<Evaluation>(g);
    let dispute = schema_ref::<DisputeRequest>(g);
    let resolve = schema_ref::<ResolveRequest>(g);
    let sub_id = id_param("sub- + 32 hex", crate::domain::SubmissionId::PATTERN);
    json!({
        "/api/tasks/{id}/submit": { "post": {
            "operationId": "submitOutput",
            "summary": "Submit the output and its keccak256 (worker token); idempotent on (task_id, output_hash)",
            "security": [ { "workerSignature": [] }, { "workerToken": [] } ], "parameters": task_id, "requestBody": body(&submit),
            "responses": { "201": ok("Recorded", &submission), "200": ok("The same output again: the first submission", &submission),
                "400": err("SECRET_REFUSED, INVALID_ARGUMENT, INVALID_JSON"), "401": err(WORKER),
                "404": err("TASK_NOT_FOUND or WORKER_NOT_FOUND"),
                "409": err("NOT_CLAIM_HOLDER, CLAIM_EXPIRED, ALREADY_SUBMITTED"),
                "413": err("Output past tasks.max_output_bytes"),
                "422": err("HASH_MISMATCH, OUTPUT_FORMAT_INVALID, SECRET_REFUSED (a secret in what the output decodes to: base64, hex, gzip, zlib, zip; or data the guard cannot open)") }
        }},
        "/api/submissions/{id}": { "get": {
            "operationId": "getSubmission",
            "summary": "A submission with its output: status, evaluation, attestation hash, credit, receipt. Only for the task's poster (the key it was posted with), an evaluator key, the submitting worker (its token) or the admin key",
            "security": [ { "clientKey": [] }, { "evaluatorKey": [] }, { "workerSignature": [] }, { "workerToken": [] }, { "adminKey": [] } ],
            "parameters": sub_id,
            "responses": { "200": ok("The submission", &submission), "400": err("Malformed id"),
                "401": err("SUBMISSION_CREDENTIAL_REQUIRED (no credential sent)"),
                "404": err("SUBMISSION_NOT_FOUND: no such submission, or the credential sent may not read it (the same answer)"),
                "429": err("RATE_LIMITED after too many failed authentications") }
        }},
        "/api/submissions/{id}/evaluate": { "post": {
            "operationId": "evaluateSubmission",
            "summary": "Evaluate (evaluator key): pass → credit (after anti-cheat), reject → dispute window; a task_settlement receipt either way",
            "security": [ { "evaluatorKey": [] } ], "parameters": sub_id, "requestBody": body(&evaluation),
            "responses": { "200": ok("Settled", &submission), "400": err("INVALID_ARGUMENT (score > 100, a rejection without a reason), SECRET_REFUSED"),
                "401": err("EVALUATOR_KEY_REQUIRED or EVALUATOR_KEY_INVALID"), "404": err("SUBMISSION_NOT_FOUND"),
                "409": err("ALREADY_EVALUATED") }
        }},
        "/api/submissions/{id}/dispute": { "post": {
            "operationId": "disputeSubmission", "summary": "Dispute a rejection within the dispute window (worker token)",
            "security": [ { "workerSignature": [] }, { "workerToken": [] } ], "parameters": sub_id, "requestBody": body(&dispute),
            "responses": { "200": ok("Disputed", &submission), "401": err(WORKER), "404": err("SUBMISSION_NOT_FOUND"),
                "409": err("NOT_DISPUTABLE, DISPUTE_WINDOW_CLOSED") }
        }},
        "/api/submissions/{id}/resolve": { "post": {
            "operationId": "resolveDispute", "summary": "The operator resolves a dispute (admin key): completed credits the worker",
            "security": [ { "adminKey": [] } ], "parameters": sub_id, "requestBody": body(&resolve),
            "responses": { "200": ok("Resolved", &submission), "400": err("INVALID_ARGUMENT"),
                "401": err("ADMIN_KEY_REQUIRED"), "404": err("SUBMISSION_NOT_FOUND"), "409": err("NOT_DISPUTED") }
        }}
    })
}
