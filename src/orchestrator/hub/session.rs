//! One worker connection after the upgrade: `hello` (first frame, protocol 1, the worker id
//! the token belongs to) → `welcome`, then heartbeats, job chunks and results until the worker
//! closes, its heartbeats lapse for `online_window_s`, or the orchestrator closes it. When it
//! ends, every job still running on it fails with `WORKER_LOST` at once.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::live::{Hello, Live, Outbound};
use super::settle;
use crate::domain::{Runtime, TokenSha256, WorkerId};
use crate::orchestrator::state::{AppState, unix_now};
use crate::orchestrator::store::WorkerRow;
use crate::wire::{
    MAX_MODEL_LEN, MAX_MODELS, MAX_VERSION_LEN, OrchestratorMessage, PROTOCOL_VERSION,
    WorkerMessage,
};

/// The first frame must arrive within this long.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// The most jobs one worker may declare it runs at once.
pub const MAX_CAPACITY: u32 = 1024;

/// `error` codes of the channel (the connection closes after each).
pub mod codes {
    pub const HELLO_REQUIRED: &str = "HELLO_REQUIRED";
    pub const PROTOCOL_UNSUPPORTED: &str = "PROTOCOL_UNSUPPORTED";
    pub const WORKER_ID_MISMATCH: &str = "WORKER_ID_MISMATCH";
    pub const INVALID_HELLO: &str = "INVALID_HELLO";
    /// The hello announced a runtime or a model the worker's registration does not list.
    pub const NOT_REGISTERED: &str = "HELLO_NOT_REGISTERED";
    pub const REPLACED: &str = "REPLACED";
    pub const HEARTBEAT_LAPSED: &str = "HEARTBEAT_LAPSED";
    pub const SHUTTING_DOWN: &str = "SHUTTING_DOWN";
    /// An admin revoked the worker (`POST /api/workers/{id}/revoke`).
    pub const REVOKED: &str = "WORKER_REVOKED";
    /// The worker registered another key (or moved from its token to a key): a channel opened
    /// with the old credential closes.
    pub const KEY_CHANGED: &str = "WORKER_KEY_CHANGED";
    /// The hello's proof is missing or is not the worker's key over this challenge and origin.
    pub const PROOF_INVALID: &str = "WORKER_SIGNATURE_INVALID";
}

/// How a welcomed connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The worker closed it or the transport failed.
    Gone,
    /// No heartbeat for the online window.
    Lapsed,
    /// The orchestrator closed it (replaced or shutting down).
    Closed,
}

/// How a connection proves which worker it is (docs/PROTOCOL.md, "Connecting").
#[derive(Debug)]
pub enum ChannelAuth {
    /// A legacy worker's bearer token matched these workers (none of them has a device key).
    Token(Vec<WorkerRow>),
    /// No bearer token: the orchestrator sends a `challenge`, and the `hello` carries the
    /// worker's signature over it and one of these origins.
    Challenge {
        origins: Vec<String>,
        /// The client address, charged with a failed proof (the lockout).
        ip: std::net::IpAddr,
    },
}

/// Serves one upgraded connection, authenticated by `auth`.
pub async fn serve(state: AppState, mut socket: WebSocket, auth: ChannelAuth) {
    let (hello, credential) = match handshake(&state, &mut socket, auth).await {
        Ok(proven) => proven,
        Err((code, message)) => {
            tracing::warn!(code, %message, "worker connection refused after upgrade");
            refuse(&mut socket, code, message).await;
            return;
        }
    };
    let c = &state.config;
    let welcome = OrchestratorMessage::Welcome {
        heartbeat_interval_s: u32::try_from(c.heartbeat_interval_s).unwrap_or(u32::MAX),
        online_window_s: u32::try_from(c.online_window_s).unwrap_or(u32::MAX),
    };
    // Attached before the welcome leaves, so a worker that has read its welcome is routable at
    // once; a job routed meanwhile waits in `rx` and goes out after the welcome.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let now = unix_now();
    let live = Arc::new(Live::new(
        hello,
        state.hub.next_conn(),
        now,
        state.hub.now_ms(),
        tx,
    ));
    let id = live.worker_id().clone();
    if let Some(old) = state.hub.attach(Arc::clone(&live)) {
        old.close(
            codes::REPLACED,
            "a newer connection of this worker replaced this one",
        );
    }
    // A revocation or a key change that landed between the handshake's read and the attach
    // found no channel to close: read the registration again now that it is attached.
    match state.store.worker(id.clone()).await {
        Ok(Some(row)) if row.revoked_at.is_some() => {
            live.close(
                codes::REVOKED,
                "the orchestrator's operator revoked this worker",
            );
        }
        Ok(Some(row)) if row.token_sha256.ct_eq(&credential) => {}
        Ok(_) => live.close(
            codes::KEY_CHANGED,
            "this worker's key was replaced meanwhile",
        ),
        Err(e) => {
            tracing::warn!(worker_id = %id, error = %e, "cannot re-read the registration");
            live.close(
                codes::HELLO_REQUIRED,
                "the registry is unavailable; reconnect",
            );
        }
    }
    state.metrics.worker_connected(1);
    state.presence.connected(id.clone(), now);
    tracing::info!(worker_id = %id, conn = live.conn, models = ?live.hello.models,
        capacity = live.hello.capacity, "worker connected");

    // Requests waiting for its models get it first (their jobs go out after the welcome).
    state.hub.freed(&live);
    let end = if send(&mut socket, &welcome).await.is_ok() {
        run(&state, &live, &mut socket, &mut rx).await
    } else {
        End::Gone
    };

    state.hub.detach(&live);
    rx.close();
    state.metrics.worker_connected(-1);
    let lost = live.finish_all();
    if !lost.is_empty() {
        settle::lost(
            &state,
            &live,
            lost,
            end == End::Closed && state.hub.is_draining(),
        );
    }
    let last_seen = state.hub.unix_s(live.last_beat_ms());
    state.presence.disconnected(id.clone(), last_seen, now);
    tracing::info!(worker_id = %id, conn = live.conn, ?end, "worker disconnected");
}

async fn run(
    state: &AppState,
    live: &Arc<Live>,
    socket: &mut WebSocket,
    rx: &mut mpsc::UnboundedReceiver<Outbound>,
) -> End {
    let window = Duration::from_secs(state.config.online_window_s);
    let lapse = tokio::time::sleep(window);
    tokio::pin!(lapse);
    loop {
        tokio::select! {
            frame = socket.recv() => match frame {
                Some(Ok(Message::Text(text))) => {
                    if on_text(state, live, text.as_str()) {
                        lapse.as_mut().reset(Instant::now() + window);
                    }
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => return End::Gone,
                Some(Ok(_)) => {}
            },
            out = rx.recv() => match out {
                Some(Outbound::Frame(message)) => {
                    if send(socket, &message).await.is_err() {
                        return End::Gone;
                    }
                }
                Some(Outbound::Close { code, message }) => {
                    refuse(socket, code, message).await;
                    return End::Closed;
                }
                None => return End::Closed,
            },
            () = &mut lapse => {
                tracing::warn!(worker_id = %live.worker_id(), "no heartbeat within the online window; closing");
                let message = format!("no heartbeat for {} s", window.as_secs());
                refuse(socket, codes::HEARTBEAT_LAPSED, message).await;
                return End::Lapsed;
            }
        }
    }
}

/// Handles one text frame; true when it was a heartbeat.
fn on_text(state: &AppState, live: &Arc<Live>, text: &str) -> bool {
    let message = match serde_json::from_str::<WorkerMessage>(text) {
        Ok(m) => m,
        Err(e) => {
            // A newer worker may send frames this build does not know.
            tracing::debug!(worker_id = %live.worker_id(), error = %e, "ignoring an unreadable frame");
            return false;
        }
    };
    match message {
        WorkerMessage::Heartbeat {
            in_flight, ready, ..
        } => {
            state.hub.heartbeat(live, ready, in_flight);
            state.metrics.heartbeat();
            settle::sweep_expired(state, live);
            return true;
        }
        WorkerMessage::JobChunk { job_id, delta } => {
            if let Some(entry) = live.jobs().get_mut(&job_id) {
                entry.chunks = entry.chunks.saturating_add(1);
                if !delta.is_empty() {
                    entry
                        .first_chunk
                        .get_or_insert_with(std::time::Instant::now);
                }
                if entry.stream && entry.cancelled.is_none() {
                    if !delta.is_empty() {
                        entry.text_chunks = entry.text_chunks.saturating_add(1);
                    }
                    let _ = entry.sink.send(super::JobEvent::Chunk(delta.clone()));
                }
                entry.text.push_str(&delta);
            }
        }
        WorkerMessage::JobDone {
            job_id,
            output,
            usage,
            simulated,
            ..
        } => match live.finish(&job_id) {
            Some(entry) => {
                state.hub.freed(live);
                settle::done(state, live, job_id, entry, output, usage, simulated);
            }
            None => settle::unknown(state, live, job_id),
        },
        WorkerMessage::JobError {
            job_id,
            code,
            message,
        } => match live.finish(&job_id) {
            Some(entry) => {
                state.hub.freed(live);
                settle::failed(state, live, job_id, entry, code, &message);
            }
            None => settle::unknown(state, live, job_id),
        },
        WorkerMessage::Hello { .. } => {
            tracing::debug!(worker_id = %live.worker_id(), "ignoring a second hello");
        }
    }
    false
}

/// Waits for `hello` and checks who sent it: one of the token's workers, or the worker whose
/// registered device key signed this connection's challenge.
async fn handshake(
    state: &AppState,
    socket: &mut WebSocket,
    auth: ChannelAuth,
) -> Result<(Hello, TokenSha256), (&'static str, String)> {
    let challenge = match &auth {
        ChannelAuth::Challenge { .. } => {
            let challenge = crate::wire::signature::nonce();
            let frame = OrchestratorMessage::Challenge {
                challenge: challenge.clone(),
            };
            send(socket, &frame)
                .await
                .map_err(|()| (codes::HELLO_REQUIRED, "the connection closed".to_owned()))?;
            Some(challenge)
        }
        ChannelAuth::Token(_) => None,
    };
    let first = tokio::time::timeout(HELLO_TIMEOUT, async {
        loop {
            match socket.recv().await {
                Some(Ok(Message::Text(text))) => return Some(text),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                _ => return None,
            }
        }
    })
    .await
    .ok()
    .flatten()
    .ok_or((
        codes::HELLO_REQUIRED,
        "the first frame must be hello".to_owned(),
    ))?;
    let Ok(WorkerMessage::Hello {
        protocol,
        worker_id,
        version,
        runtime,
        models,
        capacity,
        proof,
    }) = serde_json::from_str::<WorkerMessage>(first.as_str())
    else {
        return Err((
            codes::HELLO_REQUIRED,
            "the first frame must be hello".into(),
        ));
    };
    if protocol != PROTOCOL_VERSION {
        return Err((
            codes::PROTOCOL_UNSUPPORTED,
            format!("this orchestrator speaks protocol {PROTOCOL_VERSION}, not {protocol}"),
        ));
    }
    let row = match (auth, challenge) {
        (ChannelAuth::Token(candidates), _) => candidates
            .into_iter()
            .find(|r| r.worker_id == worker_id)
            .ok_or_else(|| {
                (
                    codes::WORKER_ID_MISMATCH,
                    format!("the token does not belong to worker `{worker_id}`"),
                )
            })?,
        (ChannelAuth::Challenge { origins, ip }, Some(challenge)) => {
            match proven_by_key(state, &worker_id, &origins, &challenge, proof.as_deref()).await {
                Ok(row) => row,
                Err(refusal) => {
                    if refusal.0 == codes::PROOF_INVALID {
                        state.auth_failed(ip, None);
                    }
                    return Err(refusal);
                }
            }
        }
        (ChannelAuth::Challenge { .. }, None) => {
            return Err((codes::PROOF_INVALID, "no challenge was sent".to_owned()));
        }
    };
    check_hello(&worker_id, runtime, &models, capacity, &version)?;
    check_registered(&row, runtime, &models)?;
    let hello = Hello {
        worker_id,
        wallet: row.wallet,
        runtime,
        models,
        capacity,
        version,
        labels: row.labels,
    };
    Ok((hello, row.token_sha256))
}

/// The row of worker `id`, whose registered device key signed `challenge` for one of
/// `origins` (`wire::signature::channel_message`).
async fn proven_by_key(
    state: &AppState,
    id: &WorkerId,
    origins: &[String],
    challenge: &str,
    proof: Option<&str>,
) -> Result<WorkerRow, (&'static str, String)> {
    let invalid = |m: String| (codes::PROOF_INVALID, m);
    let row = state
        .store
        .worker(id.clone())
        .await
        .map_err(|e| {
            (
                codes::HELLO_REQUIRED,
                format!("cannot read the registry: {e}"),
            )
        })?
        .ok_or_else(|| invalid(format!("no worker `{id}` is registered here")))?;
    if row.revoked_at.is_some() {
        return Err((
            codes::REVOKED,
            format!("worker `{id}` was revoked by the orchestrator's operator"),
        ));
    }
    let Some(key) = row.public_key else {
        return Err(invalid(format!(
            "worker `{id}` has no device key yet: register it with basis (`basis register`) first"
        )));
    };
    let proof = proof.ok_or_else(|| invalid("the hello carries no proof".to_owned()))?;
    let ok = origins.iter().any(|origin| {
        crate::wire::signature::channel_proof_verifies(&key, origin, challenge, id, proof)
    });
    if ok {
        Ok(row)
    } else {
        Err(invalid(format!(
            "the hello's proof is not worker `{id}`'s device key over this challenge for this \
             orchestrator's origin"
        )))
    }
}

fn check_hello(
    id: &WorkerId,
    _runtime: Runtime,
    models: &[String],
    capacity: u32,
    version: &str,
) -> Result<(), (&'static str, String)> {
    let bad = |m: String| Err((codes::INVALID_HELLO, m));
    if !(1..=MAX_CAPACITY).contains(&capacity) {
        return bad(format!("capacity must be between 1 and {MAX_CAPACITY}"));
    }
    if models.is_empty() || models.len() > MAX_MODELS {
        return bad(format!("models must list 1 to {MAX_MODELS} names"));
    }
    if models
        .iter()
        .any(|m| m.is_empty() || m.chars().count() > MAX_MODEL_LEN)
    {
        return bad(format!(
            "each model name must be 1 to {MAX_MODEL_LEN} characters"
        ));
    }
    if version.chars().count() > MAX_VERSION_LEN {
        return bad(format!(
            "version must be at most {MAX_VERSION_LEN} characters"
        ));
    }
    tracing::debug!(worker_id = %id, "hello accepted");
    Ok(())
}

/// A worker serves only what its registration says: the registered runtime and a subset of
/// the registered models (serving fewer is harmless; announcing another one would let a
/// worker take prompts for a model nobody vetted). Changing them is a re-registration.
fn check_registered(
    row: &WorkerRow,
    runtime: Runtime,
    models: &[String],
) -> Result<(), (&'static str, String)> {
    let fix = "re-register to change them (`basis register`, or the register_worker tool), then restart the worker";
    if runtime != row.runtime {
        return Err((
            codes::NOT_REGISTERED,
            format!(
                "worker `{}` is registered with runtime {}, not {runtime}; {fix}",
                row.worker_id, row.runtime
            ),
        ));
    }
    let unregistered: Vec<&str> = models
        .iter()
        .filter(|m| !row.models.contains(m))
        .map(String::as_str)
        .collect();
    if !unregistered.is_empty() {
        return Err((
            codes::NOT_REGISTERED,
            format!(
                "worker `{}` is not registered to serve {} (registered: {}); {fix}",
                row.worker_id,
                unregistered.join(", "),
                row.models.join(", ")
            ),
        ));
    }
    Ok(())
}

async fn send(socket: &mut WebSocket, message: &OrchestratorMessage) -> Result<(), ()> {
    let text = serde_json::to_string(message).map_err(|_| ())?;
    socket.send(Message::text(text)).await.map_err(|_| ())
}

/// Sends `error {code, message}` and closes.
async fn refuse(socket: &mut WebSocket, code: &'static str, message: String) {
    let frame = OrchestratorMessage::Error {
        code: code.to_owned(),
        message,
    };
    let _ = send(socket, &frame).await;
    let close = CloseFrame {
        code: axum::extract::ws::close_code::POLICY,
        reason: code.into(),
    };
    let _ = socket.send(Message::Close(Some(close))).await;
}
