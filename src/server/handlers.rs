//! The OpenAI routes: models, chat completions, completions; and what answers the rest.

use super::error::{ApiError, ApiJson};
use super::keep::Keep;
use super::openai::{self, Valid};
use super::pool::{Lease, Listing};
use super::queue::Running;
use super::sse::{bump_seed, completion_body, Api, Choice, Meta, Stream, Usage};
use super::tools::ToolStream;
use super::ServerState;
use crate::chat::reasoning::ChannelParser;
use crate::chat::tools::ToolFormat;
use crate::engine::{Event, Stats};
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;

type Shared = State<Arc<ServerState>>;

/// An OpenAI model object, with the context length and vocabulary size as extensions (as
/// vLLM adds `max_model_len`): lmwb's own HTTP client reads them, so `lmwb bench` can
/// build exact-length token prompts for a model served here.
fn model_json(m: &Listing) -> Value {
    let mut v = json!({"id": m.id, "object": "model", "created": m.created, "owned_by": "lmwb"});
    if let Some(info) = &m.info {
        v["context_length"] = json!(info.context_length);
        if let Some(c) = &info.config {
            v["vocab_size"] = json!(c.vocab_size);
        }
    }
    v
}

/// Every model this server can answer with, loaded or not (the first request for one
/// loads it).
pub async fn list_models(State(s): Shared) -> Json<Value> {
    let mut data: Vec<Value> = s.pool.available().iter().map(model_json).collect();
    data.extend(s.embedders().iter().map(super::embeddings::openai_model));
    Json(json!({"object": "list", "data": data}))
}

pub async fn get_model(State(s): Shared, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    if let Some(e) = s.embedders().iter().find(|e| e.id == id) {
        return Ok(Json(super::embeddings::openai_model(e)));
    }
    s.find(&id).map(|m| Json(model_json(&m)))
}

/// 503 `loading` while the first model loads and none is served; 200 `degraded` after a
/// model failed to load or while the queue is full (requests get 429); 200 `ready` else.
pub async fn health(State(s): Shared) -> (StatusCode, Json<Value>) {
    let loaded: Vec<String> = s.pool.loaded().into_iter().map(|m| m.listing.id).collect();
    let (loading, error) = s.pool.load_state();
    let full = s.limiter.is_full();
    let (code, status) = if s.pool.is_starting() {
        (StatusCode::SERVICE_UNAVAILABLE, "loading")
    } else if error.is_some() || full {
        (StatusCode::OK, "degraded")
    } else {
        (StatusCode::OK, "ready")
    };
    let mut body = json!({
        "status": status,
        "models": loaded,
        "loading": loading,
        "embedding_models": s.embedders().into_iter().map(|e| e.id).collect::<Vec<_>>(),
        "in_flight": s.limiter.in_flight(),
        "queued": s.limiter.queued(),
    });
    if let Some(e) = error {
        body["last_load_error"] = json!(e);
    }
    if full {
        body["reason"] = json!("the request queue is full");
    }
    (code, Json(body))
}

/// LM Studio's `ttl` (seconds an on-demand model stays after this request).
fn ttl(body: &Value) -> Result<Option<Keep>, ApiError> {
    match body.get("ttl") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(Some(Keep::from_secs(n.as_f64().unwrap_or(0.0)))),
        Some(_) => Err(ApiError::invalid(
            "ttl",
            "`ttl` must be a number of seconds (how long the model stays loaded after this request; -1: for good)",
        )),
    }
}

/// The `x-lmwb-load-ms` header: how long this request waited for its model to load.
pub fn with_load_time(mut res: Response, lease: &Lease) -> Response {
    if let Some(ms) = lease.load_ms {
        if let Ok(v) = axum::http::HeaderValue::from_str(&format!("{ms:.0}")) {
            res.headers_mut().insert("x-lmwb-load-ms", v);
        }
    }
    res
}

pub async fn metrics(State(s): Shared) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(&s.limiter),
    )
        .into_response()
}

pub async fn chat(State(s): Shared, ApiJson(body): ApiJson<Value>) -> Result<Response, ApiError> {
    let valid = openai::chat_request(&body, &s.defaults)?;
    generate(s, Api::Chat, valid, ttl(&body)?).await
}

pub async fn completions(
    State(s): Shared,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let valid = openai::completion_request(&body, &s.defaults)?;
    generate(s, Api::Completion, valid, ttl(&body)?).await
}

async fn generate(
    s: Arc<ServerState>,
    api: Api,
    v: Valid,
    keep: Option<Keep>,
) -> Result<Response, ApiError> {
    let lease = s.acquire(&v.model, keep).await?;
    let res = answer(s, api, v, &lease).await?;
    Ok(with_load_time(res, &lease))
}

async fn answer(
    s: Arc<ServerState>,
    api: Api,
    mut v: Valid,
    lease: &Lease,
) -> Result<Response, ApiError> {
    let (id, client) = (lease.model.id.clone(), lease.model.client.clone());
    let slot = s.limiter.admit().await?;
    let mut meta = Meta::new(api, &id, &super::fingerprint(&id), v.include_usage);
    let format = ToolFormat::detect(client.chat_template());
    meta.tools = v.tools.apply(&mut v.request, format);
    if v.stream {
        // Wait for the first event so a request the engine refuses gets its status code.
        let mut running = Running::start(client.as_ref(), v.request.clone(), &s.metrics);
        let pending = match running.next().await {
            Some(Event::Error(e)) => return Err(e.into()),
            None => return Err(ApiError::server("the engine stopped before starting")),
            Some(ev) => Some(ev),
        };
        let tools = meta.tools.as_ref().map(ToolStream::new);
        let trace = running.trace();
        let stream = Stream {
            meta,
            metrics: s.metrics.clone(),
            client,
            request: v.request,
            n: v.n,
            index: 0,
            running: Some(running),
            pending,
            parser: ChannelParser::new(),
            tools,
            calls_sent: 0,
            usage: Usage::default(),
            done: false,
            _slot: slot,
            logprobs: Default::default(),
            text_offset: 0,
            trace,
        };
        return Ok(super::sse::response(stream));
    }
    let mut req = v.request;
    let mut usage = Usage::default();
    let mut choices = Vec::with_capacity(v.n);
    for _ in 0..v.n {
        let running = Running::start(client.as_ref(), req.clone(), &s.metrics);
        let (text, stats, logprobs) = super::structured::collect(running, api == Api::Chat).await?;
        usage.add(&stats);
        choices.push(Choice {
            text,
            finish: stats.finish_reason,
            logprobs: req.logprobs.map(|_| logprobs),
        });
        bump_seed(&mut req);
    }
    drop(slot);
    Ok(Json(completion_body(&meta, &choices, usage)).into_response())
}

/// Run one generation to its end (cancelled if this future is dropped).
pub async fn collect(mut running: Running) -> Result<(String, Stats), ApiError> {
    let mut text = String::new();
    while let Some(ev) = running.next().await {
        match ev {
            Event::Started { .. } => {}
            Event::Token { text: t, .. } | Event::Text(t) => text.push_str(&t),
            Event::Done(stats) => return Ok((text, stats)),
            Event::Error(e) => return Err(e.into()),
        }
    }
    Err(ApiError::server("the engine stopped mid-generation"))
}

/// OpenAI routes lmwb does not serve.
pub async fn not_implemented(uri: Uri) -> ApiError {
    ApiError::not_implemented(uri.path())
}

pub async fn unknown_route(method: Method, uri: Uri) -> Response {
    let err = ApiError::not_found(format!(
        "Invalid URL ({method} {}): no such route on this server",
        uri.path()
    ));
    if uri.path().starts_with("/api/") {
        super::ollama::error_response(err)
    } else {
        err.into_response()
    }
}
