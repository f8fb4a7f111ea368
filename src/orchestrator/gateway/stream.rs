//! A streamed chat completion (`"stream": true`): server-sent `chat.completion.chunk`s, one per
//! `job_chunk` as it arrives (nothing is buffered), then a last chunk with `finish_reason`,
//! `usage`, `basis_receipt_id` and `basis_receipt_hash`, then `data: [DONE]`.
//!
//! The headers wait for the job's first event, so a job that fails before its first token
//! still gets a plain HTTP error (and a busy worker's refusal is routed to another worker).
//! A failure after that is one `data: {"error":{code,message}}` event, and the stream closes
//! without `[DONE]`. Dropping the stream (the client went away) cancels the job.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tokio::time::{Instant, Sleep};

use super::complete::usage;
use super::{
    ChatRequest, Reach, completion_id, job_error_response, job_headers, may_reroute, route,
};
use crate::domain::Problem;
use crate::orchestrator::hub::{CancelReason, Finished, JobEvent, JobFailure, JobHandle, Lane};
use crate::orchestrator::state::AppState;
use crate::wire::{ApiErrorBody, ChatCompletionChunk, ChunkChoice, ChunkDelta};

/// A comment line this often keeps proxies from timing out and notices a vanished client.
const KEEP_ALIVE: Duration = Duration::from_secs(5);

pub async fn respond(state: AppState, req: ChatRequest, reach: Reach, lane: Lane) -> Response {
    let deadline = Instant::now() + Duration::from_secs(state.config.job_timeout_s);
    let mut attempt = 0;
    let (job, first) = loop {
        let mut job = match route(&state, &req, reach, lane).await {
            Ok(job) => job,
            Err(answer) => return answer,
        };
        let first = next_or_deadline(&mut job, deadline).await;
        match first {
            JobEvent::Failed(f) if may_reroute(&f, attempt) => attempt += 1,
            JobEvent::Failed(f) => return job_error_response(&job, &f),
            other => break (job, other),
        }
    };
    let headers = job_headers(&job);
    let mut stream = Stream {
        id: completion_id(&job),
        job,
        deadline: Box::pin(tokio::time::sleep_until(deadline)),
        pending: VecDeque::new(),
        role_sent: false,
        done: false,
    };
    stream.push(first);
    let events = futures::stream::unfold(stream, |mut s| async move {
        loop {
            if let Some(event) = s.pending.pop_front() {
                return Some((Ok::<Event, Infallible>(event), s));
            }
            if s.done {
                return None;
            }
            let next = tokio::select! {
                event = s.job.next() => Some(event),
                () = s.deadline.as_mut() => None,
            };
            let event = next.unwrap_or_else(|| {
                s.job.cancel(CancelReason::Deadline);
                JobEvent::Failed(JobFailure::timeout())
            });
            s.push(event);
        }
    });
    let sse = Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE));
    let no_buffering = (
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    (headers, [no_buffering], sse).into_response()
}

async fn next_or_deadline(job: &mut JobHandle, deadline: Instant) -> JobEvent {
    let next = tokio::select! {
        event = job.next() => Some(event),
        () = tokio::time::sleep_until(deadline) => None,
    };
    next.unwrap_or_else(|| {
        job.cancel(CancelReason::Deadline);
        JobEvent::Failed(JobFailure::timeout())
    })
}

/// The stream's state between events.
struct Stream {
    id: String,
    job: JobHandle,
    deadline: Pin<Box<Sleep>>,
    pending: VecDeque<Event>,
    role_sent: bool,
    done: bool,
}

impl Stream {
    fn push(&mut self, event: JobEvent) {
        match event {
            JobEvent::Chunk(delta) => {
                let chunk = self.chunk(Some(delta), None);
                self.emit(&chunk);
            }
            JobEvent::Done(finished) => self.finish(&finished),
            JobEvent::Failed(f) => {
                let body = ApiErrorBody::from(Problem::new(f.code, f.message));
                self.pending.push_back(json_event(&body));
                self.done = true;
            }
        }
    }

    fn finish(&mut self, f: &Finished) {
        if !f.streamed && !f.text.is_empty() {
            let chunk = self.chunk(Some(f.text.clone()), None);
            self.emit(&chunk);
        }
        let mut last = self.chunk(None, Some("stop"));
        last.usage = Some(usage(f));
        last.basis_receipt_id = Some(f.receipt.receipt.receipt_id.clone());
        last.basis_receipt_hash = Some(f.receipt.receipt_hash);
        self.emit(&last);
        self.pending.push_back(Event::default().data("[DONE]"));
        self.done = true;
    }

    fn chunk(&mut self, content: Option<String>, finish: Option<&str>) -> ChatCompletionChunk {
        let role = (!self.role_sent).then(|| "assistant".to_owned());
        self.role_sent = true;
        ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.job.created_unix,
            model: self.job.model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta: ChunkDelta { role, content },
                finish_reason: finish.map(str::to_owned),
            }],
            usage: None,
            basis_receipt_id: None,
            basis_receipt_hash: None,
        }
    }

    fn emit(&mut self, chunk: &ChatCompletionChunk) {
        self.pending.push_back(json_event(chunk));
    }
}

fn json_event<T: serde::Serialize>(value: &T) -> Event {
    match serde_json::to_string(value) {
        Ok(text) => Event::default().data(text),
        Err(e) => {
            tracing::error!(error = %e, "cannot serialise a stream event");
            Event::default().comment("unserialisable event dropped")
        }
    }
}
