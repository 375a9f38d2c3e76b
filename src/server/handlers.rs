//! The OpenAI routes: models, chat completions, completions; and what answers the rest.

use super::error::{ApiError, ApiJson};
use super::openai::{self, Valid};
use super::queue::Running;
use super::sse::{bump_seed, completion_body, Api, Choice, Meta, Stream, Usage};
use super::{ServedModel, ServerState};
use crate::chat::reasoning::ChannelParser;
use crate::engine::{Event, Stats};
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;

type Shared = State<Arc<ServerState>>;

fn model_json(m: &ServedModel) -> Value {
    json!({"id": m.id, "object": "model", "created": m.created, "owned_by": "lmwb"})
}

pub async fn list_models(State(s): Shared) -> Json<Value> {
    let data: Vec<Value> = s.models().iter().map(model_json).collect();
    Json(json!({"object": "list", "data": data}))
}

pub async fn get_model(State(s): Shared, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    s.find(&id).map(|m| Json(model_json(&m)))
}

/// 200 `ready` once a model is served, 503 `loading` before.
pub async fn health(State(s): Shared) -> (StatusCode, Json<Value>) {
    let ids: Vec<String> = s.models().into_iter().map(|m| m.id).collect();
    let (code, status) = if ids.is_empty() {
        (StatusCode::SERVICE_UNAVAILABLE, "loading")
    } else {
        (StatusCode::OK, "ready")
    };
    let body = json!({
        "status": status,
        "models": ids,
        "in_flight": s.limiter.in_flight(),
        "queued": s.limiter.queued(),
    });
    (code, Json(body))
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
    generate(s, Api::Chat, valid).await
}

pub async fn completions(
    State(s): Shared,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let valid = openai::completion_request(&body, &s.defaults)?;
    generate(s, Api::Completion, valid).await
}

async fn generate(s: Arc<ServerState>, api: Api, v: Valid) -> Result<Response, ApiError> {
    let model = s.find(&v.model)?;
    let (id, client) = (model.id.clone(), model.client.clone());
    let slot = s.limiter.admit().await?;
    let meta = Meta::new(api, &id, &super::fingerprint(&id), v.include_usage);
    if v.stream {
        // Wait for the first event so a request the engine refuses gets its status code.
        let mut running = Running::start(client.as_ref(), v.request.clone(), &s.metrics);
        let pending = match running.next().await {
            Some(Event::Error(e)) => return Err(e.into()),
            None => return Err(ApiError::server("the engine stopped before starting")),
            Some(ev) => Some(ev),
        };
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
            usage: Usage::default(),
            done: false,
            _slot: slot,
            logprobs: Default::default(),
            text_offset: 0,
        };
        return Ok(super::sse::response(stream));
    }
    let mut req = v.request;
    let mut usage = Usage::default();
    let mut choices = Vec::with_capacity(v.n);
    for _ in 0..v.n {
        let running = Running::start(client.as_ref(), req.clone(), &s.metrics);
        let (text, stats, logprobs) =
            super::structured::collect(running, api == Api::Chat).await?;
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
