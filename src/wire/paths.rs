//! The orchestrator's routes and auth headers, named once so the server and the client agree.

use crate::domain::WorkerId;

/// `GET`: liveness and version.
pub const HEALTH: &str = "/health";
/// `GET`: Prometheus text exposition.
pub const METRICS: &str = "/metrics";
/// `GET`: the `OpenAPI` 3.1 document.
pub const OPENAPI: &str = "/openapi.json";
/// `GET`: the registration and routing posture.
pub const ONBOARDING_STATUS: &str = "/api/workers/onboarding/status";
/// `POST`: register (or re-register) a worker.
pub const REGISTER: &str = "/api/workers/register";
/// `GET`: the registered workers, paged by `?after=ID&limit=N`.
pub const WORKERS: &str = "/api/workers";
/// `GET`: the worker channel's WebSocket upgrade (docs/PROTOCOL.md, "Connecting"),
/// `Authorization: Bearer <token>`.
pub const WORKER_CONNECT: &str = "/api/workers/connect";

/// The operator's enrollment key when registration is gated.
pub const ENROLLMENT_KEY_HEADER: &str = "x-basis-enrollment-key";
/// The operator's admin key (re-register any worker id without its token).
pub const ADMIN_KEY_HEADER: &str = "x-basis-admin-key";

/// `GET /api/workers/{id}`.
pub fn worker_path(id: &WorkerId) -> String {
    // A WorkerId is `[a-z0-9-]` only, so it needs no percent-encoding.
    format!("{WORKERS}/{id}")
}

/// `POST /api/workers/{id}/revoke` (admin).
pub fn worker_revoke_path(id: &WorkerId) -> String {
    format!("{WORKERS}/{id}/revoke")
}
