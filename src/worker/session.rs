//! One welcomed connection: resend unacknowledged results, then heartbeat (with a ping whose
//! pong proves the orchestrator still reads us), forward job chunks and results in order, and
//! act on `job`, `cancel`, `job_ack`, `drain` and `error` until the connection ends, the
//! drained worker may exit, or the drain timeout stops everything.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::connection::{ChannelError, Welcome, Ws, send};
use super::jobs::{Admission, JobRequest, Outgoing, admit};
use super::shared::Shared;
use super::status::WorkerState;
use crate::wire::{OrchestratorMessage, WorkerMessage};

/// How long cancelled jobs get to report before a stopped worker closes the connection.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// How a session ended.
#[derive(Debug)]
pub(super) enum Ended {
    /// Draining and idle, or stopped at the drain timeout: the process exits.
    Exit,
    /// The connection failed; reconnect.
    Lost(ChannelError),
}

struct Session<'a> {
    shared: &'a Arc<Shared>,
    id: u64,
    sink: SplitSink<Ws, Message>,
    /// The orchestrator sent `drain`: refuse new jobs on this connection.
    refusing: bool,
    last_frame: Instant,
}

/// Runs connection `id` until it ends.
pub(super) async fn run(
    shared: &Arc<Shared>,
    ws: Ws,
    welcome: Welcome,
    id: u64,
    out: &mut mpsc::Receiver<Outgoing>,
    stop: &CancellationToken,
) -> Ended {
    let (sink, mut stream) = ws.split();
    let mut s = Session {
        shared,
        id,
        sink,
        refusing: false,
        last_frame: Instant::now(),
    };
    // Queued items belong to earlier connections; their results are resent below.
    while out.try_recv().is_ok() {}
    let result = s.lifecycle(welcome, &mut stream, out, stop).await;
    let _ = s.sink.close().await;
    match result {
        Ok(()) => Ended::Exit,
        Err(e) => Ended::Lost(e),
    }
}

impl Session<'_> {
    async fn lifecycle(
        &mut self,
        welcome: Welcome,
        stream: &mut SplitStream<Ws>,
        out: &mut mpsc::Receiver<Outgoing>,
        stop: &CancellationToken,
    ) -> Result<(), ChannelError> {
        let unsent = self.shared.table().unsent(self.id);
        for message in &unsent {
            send(&mut self.sink, message).await?;
        }
        let mut beat = tokio::time::interval(welcome.heartbeat_interval());
        beat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut healthy = self.shared.healthy.clone();
        let mut draining = self.shared.draining.subscribe();
        loop {
            if self.shared.drained() {
                return Ok(());
            }
            tokio::select! {
                () = stop.cancelled() => return self.stop(out).await,
                frame = stream.next() => {
                    self.last_frame = Instant::now();
                    self.shared.status.alive();
                    match frame {
                        Some(Ok(Message::Text(text))) => self.on_text(&text).await?,
                        Some(Ok(Message::Close(frame))) => {
                            let why = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                            return Err(ChannelError::Lost(format!("closed by the orchestrator {why}")));
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(ChannelError::Lost(e.to_string())),
                        None => return Err(ChannelError::Lost("closed by the orchestrator".into())),
                    }
                }
                Some(item) = out.recv() => self.forward(item).await?,
                _ = beat.tick() => {
                    if self.last_frame.elapsed() > welcome.silence_limit() {
                        return Err(ChannelError::Lost(format!(
                            "nothing from the orchestrator for {} s",
                            welcome.silence_limit().as_secs()
                        )));
                    }
                    self.heartbeat().await?;
                    self.sink
                        .send(Message::Ping(Vec::new().into()))
                        .await
                        .map_err(|e| ChannelError::Lost(e.to_string()))?;
                }
                Ok(()) = healthy.changed() => self.heartbeat().await?,
                Ok(()) = draining.changed() => {
                    self.shared.status.update(|s| s.state = WorkerState::Draining);
                    self.heartbeat().await?;
                }
            }
        }
    }

    async fn heartbeat(&mut self) -> Result<(), ChannelError> {
        let beat = self.shared.heartbeat(self.refusing);
        send(&mut self.sink, &beat).await
    }

    async fn forward(&mut self, item: Outgoing) -> Result<(), ChannelError> {
        match item {
            Outgoing::Chunk {
                session,
                job_id,
                delta,
            } => {
                // A job started on an earlier connection streams to nobody now.
                if session == self.id {
                    send(&mut self.sink, &WorkerMessage::JobChunk { job_id, delta }).await?;
                }
            }
            Outgoing::Finished { job_id } => {
                let result = self.shared.table().take_unsent(&job_id, self.id);
                if let Some(message) = result {
                    send(&mut self.sink, &message).await?;
                }
            }
        }
        Ok(())
    }

    async fn on_text(&mut self, text: &str) -> Result<(), ChannelError> {
        let message = match serde_json::from_str::<OrchestratorMessage>(text) {
            Ok(m) => m,
            Err(e) => {
                // A newer orchestrator may send frames this build does not know.
                tracing::warn!(error = %e, "ignoring an unreadable frame from the orchestrator");
                return Ok(());
            }
        };
        match message {
            // Only the handshake (`connection`) expects these.
            OrchestratorMessage::Welcome { .. } | OrchestratorMessage::Challenge { .. } => {}
            OrchestratorMessage::Job {
                job_id,
                model,
                request,
                deadline_ms,
            } => {
                let job = JobRequest {
                    job_id,
                    model,
                    request,
                    deadline_ms,
                };
                match admit(self.shared, self.id, self.refusing, job) {
                    Admission::Started | Admission::Duplicate => {}
                    Admission::Reply(reply) => send(&mut self.sink, &reply).await?,
                }
            }
            OrchestratorMessage::Cancel { job_id } => self.shared.table().cancel(&job_id),
            OrchestratorMessage::JobAck { job_id } => self.shared.table().ack(&job_id),
            OrchestratorMessage::Drain => {
                tracing::info!("the orchestrator asked this worker to drain");
                self.refusing = true;
                self.shared
                    .status
                    .update(|s| s.state = WorkerState::Draining);
                self.heartbeat().await?;
            }
            OrchestratorMessage::Error { code, message } => {
                return Err(ChannelError::Rejected { code, message });
            }
        }
        Ok(())
    }

    /// The drain timeout passed: cancel what still runs, give it a moment to report, close.
    async fn stop(&mut self, out: &mut mpsc::Receiver<Outgoing>) -> Result<(), ChannelError> {
        self.shared.table().cancel_all();
        let grace = tokio::time::sleep(STOP_GRACE);
        tokio::pin!(grace);
        while self.shared.table().has_running() {
            tokio::select! {
                () = &mut grace => break,
                Some(item) = out.recv() => self.forward(item).await?,
            }
        }
        while let Ok(item) = out.try_recv() {
            self.forward(item).await?;
        }
        Ok(())
    }
}
