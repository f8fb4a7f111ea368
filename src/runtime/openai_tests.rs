//! The `ollama`/`vllm` backend against an in-test OpenAI-compatible server. The server stands
//! in for Ollama and vLLM, which cannot run here: it speaks their streaming
//! `/v1/chat/completions` (SSE `data:` events ending in `[DONE]`), `/api/version`,
//! `/api/tags` and `/v1/models`, and misbehaves on purpose depending on the model asked for.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use url::Url;

use super::{Backend, Flavor, OpenAiBackend, RuntimeError};
use crate::domain::Usage;
use crate::wire::JobErrorCode;

#[derive(Default)]
struct Upstream {
    /// `gated` streams wait on this between their first and second piece.
    release: Notify,
}

fn chunk(delta: &str) -> Bytes {
    let event = json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": delta}}]});
    Bytes::from(format!("data: {event}\n\n"))
}

fn sse(rx: futures::channel::mpsc::UnboundedReceiver<Bytes>) -> Response {
    use futures::StreamExt as _;
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(rx.map(Ok::<_, Infallible>)))
        .unwrap()
}

async fn chat(State(up): State<Arc<Upstream>>, Json(body): Json<Value>) -> Response {
    assert_eq!(body["stream"], true, "the backend always asks for a stream");
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    let (tx, rx) = futures::channel::mpsc::unbounded::<Bytes>();
    match model.as_str() {
        "missing" => {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({"error": {"message": "model \"missing\" not found, try pulling it first"}})),
            )
                .into_response();
        }
        "boom" => return (StatusCode::INTERNAL_SERVER_ERROR, "kaboom").into_response(),
        "refused" => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"message": "max_tokens too large"})),
            )
                .into_response();
        }
        "gated" => {
            tokio::spawn(async move {
                tx.unbounded_send(chunk("first")).unwrap();
                up.release.notified().await;
                tx.unbounded_send(chunk(" second")).unwrap();
                tx.unbounded_send(Bytes::from("data: [DONE]\n\n")).unwrap();
            });
        }
        "usage" => {
            tx.unbounded_send(chunk("a")).unwrap();
            // Split one event across two writes, with CRLF line ends.
            tx.unbounded_send(Bytes::from("data: {\"choices\":[{\"delta\":{\"con"))
                .unwrap();
            tx.unbounded_send(Bytes::from("tent\":\"b\"}}]}\r\n\r\n: keep-alive\n\n"))
                .unwrap();
            let usage =
                json!({"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 2}});
            tx.unbounded_send(Bytes::from(format!("data: {usage}\n\ndata: [DONE]\n\n")))
                .unwrap();
        }
        "malformed" => {
            tx.unbounded_send(chunk("ok")).unwrap();
            tx.unbounded_send(Bytes::from("data: {not json\n\n"))
                .unwrap();
        }
        "cut" => tx.unbounded_send(chunk("partial")).unwrap(),
        "hang" => {
            tx.unbounded_send(chunk("one")).unwrap();
            // Never sends another piece, never closes.
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_mins(1)).await;
                drop(tx);
            });
            return sse(rx);
        }
        _ => {
            tx.unbounded_send(chunk("hello")).unwrap();
            tx.unbounded_send(chunk(" world")).unwrap();
            tx.unbounded_send(Bytes::from("data: [DONE]\n\n")).unwrap();
        }
    }
    sse(rx)
}

async fn serve(up: Arc<Upstream>) -> Url {
    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .route(
            "/api/version",
            get(|| async { Json(json!({"version": "0.6.2"})) }),
        )
        .route(
            "/api/tags",
            get(|| async {
                Json(json!({"models": [{"name": "llama3.2:latest"}, {"name": "qwen3:8b"}]}))
            }),
        )
        .route(
            "/v1/models",
            get(|| async {
                Json(json!({"object": "list", "data": [{"id": "meta-llama/Llama-3.1-8B"}]}))
            }),
        )
        .with_state(up);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Url::parse(&format!("http://{addr}")).unwrap()
}

fn backend(flavor: Flavor, base: &Url, idle: Duration) -> OpenAiBackend {
    OpenAiBackend::new(flavor, base, idle)
        .unwrap()
        .with_probe_timeout(Duration::from_secs(2))
}

fn request() -> Value {
    json!({"messages": [{"role": "user", "content": "say hello please"}], "stream": false})
}

async fn run(
    b: &OpenAiBackend,
    model: &str,
) -> (Result<super::Completion, RuntimeError>, Vec<String>) {
    let (tx, mut rx) = mpsc::channel(64);
    let req = request();
    let result = b.chat(model, &req, tx, CancellationToken::new()).await;
    let mut pieces = Vec::new();
    while let Ok(p) = rx.try_recv() {
        pieces.push(p);
    }
    (result, pieces)
}

#[tokio::test]
async fn streams_pieces_as_they_arrive() {
    let up = Arc::new(Upstream::default());
    let b = backend(
        Flavor::Vllm,
        &serve(up.clone()).await,
        Duration::from_secs(10),
    );
    let (tx, mut rx) = mpsc::channel(64);
    let req = request();
    let job = tokio::spawn({
        let b = b.clone();
        async move { b.chat("gated", &req, tx, CancellationToken::new()).await }
    });
    // The first piece arrives while the server still holds back the second: nothing is
    // buffered until the end of the answer.
    let first = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap();
    assert_eq!(first.as_deref(), Some("first"));
    assert!(!job.is_finished());
    up.release.notify_one();
    let done = job.await.unwrap().unwrap();
    assert_eq!(rx.recv().await.as_deref(), Some(" second"));
    assert_eq!(done.output, "first second");
    assert!(!done.simulated);
    // No usage reported: estimated from the prompt's words and the pieces.
    assert_eq!(
        done.usage,
        Usage {
            prompt_tokens: 3,
            completion_tokens: 2
        }
    );
}

#[tokio::test]
async fn reported_usage_split_events_and_comments() {
    let b = backend(
        Flavor::Ollama,
        &serve(Arc::default()).await,
        Duration::from_secs(10),
    );
    let (done, pieces) = run(&b, "usage").await;
    let done = done.unwrap();
    assert_eq!(pieces, ["a", "b"]);
    assert_eq!(done.output, "ab");
    assert_eq!(
        done.usage,
        Usage {
            prompt_tokens: 11,
            completion_tokens: 2
        }
    );
    let (plain, _) = run(&b, "any").await;
    assert_eq!(plain.unwrap().output, "hello world");
}

#[tokio::test]
async fn failures_map_to_job_error_codes() {
    let b = backend(
        Flavor::Ollama,
        &serve(Arc::default()).await,
        Duration::from_millis(300),
    );
    let code = |r: Result<super::Completion, RuntimeError>| r.unwrap_err().code();
    assert_eq!(
        code(run(&b, "missing").await.0),
        JobErrorCode::ModelNotFound
    );
    let boom = run(&b, "boom").await.0.unwrap_err();
    assert_eq!(boom.code(), JobErrorCode::BadResponse);
    assert!(boom.to_string().contains("500"), "{boom}");
    assert_eq!(code(run(&b, "refused").await.0), JobErrorCode::BadRequest);
    let (malformed, pieces) = run(&b, "malformed").await;
    assert_eq!(code(malformed), JobErrorCode::BadResponse);
    assert_eq!(
        pieces,
        ["ok"],
        "what came before the bad chunk was forwarded"
    );
    assert_eq!(code(run(&b, "cut").await.0), JobErrorCode::BadResponse);
    let started = std::time::Instant::now();
    assert_eq!(code(run(&b, "hang").await.0), JobErrorCode::Timeout);
    assert!(started.elapsed() < Duration::from_secs(5));
    // Not a chat request at all.
    let (tx, _rx) = mpsc::channel(1);
    let err = b
        .chat("m", &json!({"x": 1}), tx, CancellationToken::new())
        .await;
    assert_eq!(code(err), JobErrorCode::BadRequest);
}

#[tokio::test]
async fn connection_refused_is_runtime_down_and_unhealthy() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let base = Url::parse(&format!("http://{addr}")).unwrap();
    for flavor in [Flavor::Ollama, Flavor::Vllm] {
        let b = backend(flavor, &base, Duration::from_secs(5));
        let (err, _) = run(&b, "any").await;
        assert_eq!(err.unwrap_err().code(), JobErrorCode::RuntimeDown);
        let health = b.health().await;
        assert!(!health.healthy, "{health:?}");
        assert_eq!(
            b.models().await.unwrap_err().code(),
            JobErrorCode::RuntimeDown
        );
    }
}

#[tokio::test]
async fn health_and_models_per_flavor() {
    let base = serve(Arc::default()).await;
    let ollama = backend(Flavor::Ollama, &base, Duration::from_secs(5));
    let health = ollama.health().await;
    assert!(health.healthy);
    assert_eq!(health.detail, "ollama 0.6.2");
    assert_eq!(
        ollama.models().await.unwrap(),
        ["llama3.2:latest", "qwen3:8b"]
    );
    let vllm = backend(Flavor::Vllm, &base, Duration::from_secs(5));
    assert!(vllm.health().await.healthy);
    assert_eq!(vllm.models().await.unwrap(), ["meta-llama/Llama-3.1-8B"]);
}

#[tokio::test]
async fn cancel_drops_the_stream() {
    let up = Arc::new(Upstream::default());
    let b = backend(Flavor::Vllm, &serve(up).await, Duration::from_secs(10));
    let (tx, mut rx) = mpsc::channel(64);
    let cancel = CancellationToken::new();
    let req = request();
    let job = tokio::spawn({
        let (b, cancel) = (b.clone(), cancel.clone());
        async move { b.chat("gated", &req, tx, cancel).await }
    });
    assert_eq!(rx.recv().await.as_deref(), Some("first"));
    cancel.cancel();
    let err = tokio::time::timeout(Duration::from_secs(2), job)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(err.unwrap_err(), RuntimeError::Cancelled);
}
