//! Anthropic's Messages API: `POST /v1/messages`, plain and streamed (`event:` lines), with
//! errors in Anthropic's shape (`{"type":"error","error":{"type","message"}}`).

use super::anthropic_tools;
use super::error::{body_rejection, parse_json, typed, ApiError};
use super::handlers::collect;
use super::metrics::Metrics;
use super::openai::Defaults;
use super::queue::{Running, Slot};
use super::tools::{ToolSpec, ToolStream};
use super::{ServedModel, ServerState};
use crate::chat::reasoning::{Channel, ChannelParser};
use crate::chat::tools::{ToolEvent, ToolFormat};
use crate::engine::template::{ChatMessage, Role};
use crate::engine::{Event, FinishReason, GenerateRequest, Prompt, Stats};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// `err` in Anthropic's shape.
pub fn error_response(err: ApiError) -> Response {
    let kind = match err.status {
        StatusCode::BAD_REQUEST | StatusCode::METHOD_NOT_ALLOWED => "invalid_request_error",
        StatusCode::UNAUTHORIZED => "authentication_error",
        StatusCode::FORBIDDEN => "permission_error",
        StatusCode::NOT_FOUND => "not_found_error",
        StatusCode::PAYLOAD_TOO_LARGE => "request_too_large",
        StatusCode::TOO_MANY_REQUESTS => "rate_limit_error",
        StatusCode::SERVICE_UNAVAILABLE => "overloaded_error",
        _ => "api_error",
    };
    let body = json!({"type": "error", "error": {"type": kind, "message": err.message}});
    let mut res = (err.status, Json(body)).into_response();
    if let Some(secs) = err.retry_after {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    res
}

const ALLOWED: &[&str] = &[
    "model",
    "max_tokens",
    "messages",
    "system",
    "stop_sequences",
    "temperature",
    "top_p",
    "top_k",
    "stream",
    "metadata",
    "tools",
    "tool_choice",
];

#[derive(Deserialize)]
struct MessagesRequest {
    model: String,
    max_tokens: u64,
    messages: Vec<InMessage>,
    #[serde(default)]
    system: Option<Blocks>,
    #[serde(default)]
    stop_sequences: Vec<String>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    top_k: Option<usize>,
    #[serde(default)]
    stream: bool,
}

#[derive(Deserialize)]
struct InMessage {
    role: String,
    content: Value,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Blocks {
    Text(String),
    Blocks(Vec<Block>),
}

#[derive(Deserialize)]
struct Block {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

fn text_of(blocks: Blocks, at: &str) -> Result<String, ApiError> {
    match blocks {
        Blocks::Text(s) => Ok(s),
        Blocks::Blocks(v) => {
            let mut out = String::new();
            for (j, b) in v.into_iter().enumerate() {
                match (b.kind.as_str(), b.text) {
                    ("text", Some(t)) => out.push_str(&t),
                    (kind, _) => {
                        return Err(ApiError::invalid(
                            format!("{at}[{j}].type"),
                            format!("{at}[{j}]: content blocks of type `{kind}` are not supported by lmwb yet; send text blocks"),
                        ))
                    }
                }
            }
            Ok(out)
        }
    }
}

struct Valid {
    model: String,
    request: GenerateRequest,
    stream: bool,
    tools: ToolSpec,
}

fn validate(body: &Value, defaults: &Defaults) -> Result<Valid, ApiError> {
    let map = body
        .as_object()
        .ok_or_else(|| ApiError::bad_request("the request body must be a JSON object"))?;
    if let Some(key) = map.keys().find(|k| !ALLOWED.contains(&k.as_str())) {
        let why = match key.as_str() {
            "thinking" => "the model's thinking budget cannot be set",
            _ => "extra inputs are not permitted",
        };
        return Err(ApiError::invalid(key.clone(), format!("{key}: {why}")));
    }
    let r: MessagesRequest = typed(body)?;
    if r.max_tokens == 0 {
        return Err(ApiError::invalid(
            "max_tokens",
            "max_tokens must be at least 1",
        ));
    }
    if r.messages.is_empty() {
        return Err(ApiError::invalid(
            "messages",
            "messages: at least one message is required",
        ));
    }
    let mut messages = Vec::with_capacity(r.messages.len() + 1);
    if let Some(system) = r.system {
        messages.push(ChatMessage::system(text_of(system, "system")?));
    }
    for (i, m) in r.messages.into_iter().enumerate() {
        let role = match m.role.as_str() {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => {
                return Err(ApiError::invalid(
                    format!("messages.{i}.role"),
                    format!("messages.{i}.role: `{other}` is not one of user, assistant (the system prompt goes in `system`)"),
                ))
            }
        };
        let at = format!("messages.{i}.content");
        messages.extend(anthropic_tools::messages(role, &m.content, &at)?);
    }
    let tools = anthropic_tools::spec(map)?;
    if r.stop_sequences.iter().any(String::is_empty) || r.stop_sequences.len() > 16 {
        return Err(ApiError::invalid(
            "stop_sequences",
            "stop_sequences takes at most 16 non-empty strings",
        ));
    }
    for (name, v, lo, hi) in [
        ("temperature", r.temperature, 0.0, 1.0),
        ("top_p", r.top_p, 0.0, 1.0),
    ] {
        if v.is_some_and(|x| !(x.is_finite() && (lo..=hi).contains(&x))) {
            return Err(ApiError::invalid(
                name,
                format!("{name} must be between {lo} and {hi}"),
            ));
        }
    }
    let mut request = GenerateRequest::new(Prompt::Chat {
        messages,
        template: None,
        options: Default::default(),
    });
    let d = &defaults.sampling;
    request.sampling = d.clone();
    request.sampling.temperature = r.temperature.unwrap_or(d.temperature);
    request.sampling.top_p = r.top_p.unwrap_or(d.top_p);
    request.sampling.top_k = r.top_k.unwrap_or(d.top_k);
    request
        .sampling
        .validate()
        .map_err(|e| ApiError::invalid(e.name, e.to_string()))?;
    request.max_tokens = Some(usize::try_from(r.max_tokens).unwrap_or(usize::MAX));
    request.stop = r.stop_sequences;
    Ok(Valid {
        model: r.model,
        request,
        stream: r.stream,
        tools,
    })
}

fn stop_reason(s: &Stats, calls: usize) -> (&'static str, Value) {
    if calls > 0 {
        return ("tool_use", Value::Null);
    }
    match (&s.stop_string, s.finish_reason) {
        (Some(stop), _) => ("stop_sequence", json!(stop)),
        (None, FinishReason::Length) => ("max_tokens", Value::Null),
        _ => ("end_turn", Value::Null),
    }
}

fn message_id() -> String {
    format!("msg_{:016x}", rand::random::<u64>())
}

/// `POST /v1/messages`.
pub async fn messages(
    State(s): State<Arc<ServerState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match run(s, body).await {
        Ok(res) => res,
        Err(e) => error_response(e),
    }
}

async fn run(
    s: Arc<ServerState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(body_rejection)?;
    let v = validate(&parse_json(&body)?, &s.defaults)?;
    let lease = s.acquire(&v.model, None).await?;
    let res = reply(s, v, &lease.model).await?;
    Ok(super::handlers::with_load_time(res, &lease))
}

async fn reply(
    s: Arc<ServerState>,
    mut v: Valid,
    model: &ServedModel,
) -> Result<Response, ApiError> {
    let format = ToolFormat::detect(model.client.chat_template());
    let active = v.tools.apply(&mut v.request, format);
    let slot = s.limiter.admit().await?;
    let mut running = Running::start(model.client.as_ref(), v.request, &s.metrics);
    if !v.stream {
        let (text, stats) = collect(running).await?;
        drop(slot);
        let split = crate::chat::reasoning::split(&text);
        let mut content = Vec::new();
        let reasoning = split.reasoning_text();
        if !reasoning.is_empty() {
            content.push(json!({"type": "thinking", "thinking": reasoning, "signature": ""}));
        }
        let answer = match &active {
            Some(a) => super::tools::read(a, &split.answer),
            None => super::tools::Answer {
                text: split.answer,
                calls: vec![],
            },
        };
        if let Some(text) = answer.content() {
            content.push(json!({"type": "text", "text": text}));
        }
        content.extend(answer.calls.iter().map(anthropic_tools::tool_use));
        let (reason, sequence) = stop_reason(&stats, answer.calls.len());
        return Ok(Json(json!({
            "id": message_id(),
            "type": "message",
            "role": "assistant",
            "model": model.id,
            "content": content,
            "stop_reason": reason,
            "stop_sequence": sequence,
            "usage": {"input_tokens": stats.prompt_tokens, "output_tokens": stats.generated_tokens},
        }))
        .into_response());
    }
    let first = match running.next().await {
        Some(Event::Error(e)) => return Err(e.into()),
        None => return Err(ApiError::server("the engine stopped before starting")),
        Some(ev) => ev,
    };
    let stream = MessageStream {
        id: message_id(),
        model: model.id.clone(),
        running,
        pending: Some(first),
        parser: ChannelParser::new(),
        tools: active.as_ref().map(ToolStream::new),
        calls: 0,
        block: None,
        index: 0,
        done: false,
        _metrics: s.metrics.clone(),
        _slot: slot,
    };
    Ok(super::sse::response(stream))
}

/// A streamed message: `message_start`, content blocks (thinking, then text), `message_delta`
/// with the stop reason and usage, `message_stop`.
struct MessageStream {
    id: String,
    model: String,
    running: Running,
    pending: Option<Event>,
    parser: ChannelParser,
    /// Reads the answer for tool calls (when the request has tools), and how many came.
    tools: Option<ToolStream>,
    calls: usize,
    /// The open content block: `true` for thinking, `false` for text.
    block: Option<bool>,
    index: usize,
    done: bool,
    _metrics: Arc<Metrics>,
    _slot: Slot,
}

fn event(name: &str, data: Value) -> Vec<u8> {
    format!("event: {name}\ndata: {data}\n\n").into_bytes()
}

impl MessageStream {
    async fn step(&mut self) -> Option<Bytes> {
        while !self.done {
            let ev = match self.pending.take() {
                Some(ev) => Some(ev),
                None => self.running.next().await,
            };
            let out = match ev {
                Some(Event::Started { prompt_tokens, .. }) => event(
                    "message_start",
                    json!({"type": "message_start", "message": {
                        "id": self.id, "type": "message", "role": "assistant",
                        "model": self.model, "content": [], "stop_reason": null,
                        "stop_sequence": null,
                        "usage": {"input_tokens": prompt_tokens, "output_tokens": 0},
                    }}),
                ),
                Some(Event::Token { text, .. } | Event::Text(text)) => {
                    let pieces = self.parser.push(&text);
                    self.pieces(pieces)
                }
                Some(Event::Done(stats)) => self.finish(&stats),
                Some(Event::Error(e)) => self.fail(e.into()),
                None => self.fail(ApiError::server("the engine stopped mid-generation")),
            };
            if !out.is_empty() {
                return Some(Bytes::from(out));
            }
        }
        None
    }

    fn pieces(&mut self, pieces: Vec<crate::chat::reasoning::Piece>) -> Vec<u8> {
        let mut out = Vec::new();
        for p in pieces.into_iter().filter(|p| !p.text.is_empty()) {
            match (&mut self.tools, p.channel) {
                (Some(t), Channel::Final) => {
                    let events = t.push(&p.text);
                    out.extend(self.tool_events(events));
                }
                _ => out.extend(self.block_text(p.channel != Channel::Final, p.text)),
            }
        }
        out
    }

    fn tool_events(&mut self, events: Vec<ToolEvent>) -> Vec<u8> {
        let mut out = Vec::new();
        for e in events {
            match e {
                ToolEvent::Text(t) => out.extend(self.block_text(false, t)),
                ToolEvent::Call(c) => {
                    out.extend(self.close_block());
                    let mut block = anthropic_tools::tool_use(&c);
                    block["input"] = json!({});
                    let i = self.index;
                    out.extend(event(
                        "content_block_start",
                        json!({"type": "content_block_start", "index": i, "content_block": block}),
                    ));
                    let delta = json!({"type": "input_json_delta", "partial_json": c.arguments.to_string()});
                    out.extend(event(
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": i, "delta": delta}),
                    ));
                    self.block = Some(false);
                    out.extend(self.close_block());
                    self.calls += 1;
                }
            }
        }
        out
    }

    /// Text for a thinking (`true`) or text block, opening it first when needed.
    fn block_text(&mut self, thinking: bool, text: String) -> Vec<u8> {
        let mut out = Vec::new();
        if self.block != Some(thinking) {
            out.extend(self.close_block());
            let block = if thinking {
                json!({"type": "thinking", "thinking": ""})
            } else {
                json!({"type": "text", "text": ""})
            };
            out.extend(event(
                "content_block_start",
                json!({"type": "content_block_start", "index": self.index, "content_block": block}),
            ));
            self.block = Some(thinking);
        }
        let delta = if thinking {
            json!({"type": "thinking_delta", "thinking": text})
        } else {
            json!({"type": "text_delta", "text": text})
        };
        out.extend(event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": self.index, "delta": delta}),
        ));
        out
    }

    fn close_block(&mut self) -> Vec<u8> {
        if self.block.take().is_none() {
            return Vec::new();
        }
        let out = event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": self.index}),
        );
        self.index += 1;
        out
    }

    fn finish(&mut self, stats: &Stats) -> Vec<u8> {
        let rest = self.parser.finish();
        let mut out = self.pieces(rest);
        if let Some(events) = self.tools.as_mut().map(ToolStream::finish) {
            out.extend(self.tool_events(events));
        }
        if self.block.is_none() && self.index == 0 {
            // An empty answer still has its (empty) text block.
            out.extend(event(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ));
            self.block = Some(false);
        }
        out.extend(self.close_block());
        let (reason, sequence) = stop_reason(stats, self.calls);
        out.extend(event(
            "message_delta",
            json!({"type": "message_delta",
                "delta": {"stop_reason": reason, "stop_sequence": sequence},
                "usage": {"output_tokens": stats.generated_tokens}}),
        ));
        out.extend(event("message_stop", json!({"type": "message_stop"})));
        self.done = true;
        out
    }

    fn fail(&mut self, e: ApiError) -> Vec<u8> {
        self.done = true;
        let kind = if e.status.is_client_error() {
            "invalid_request_error"
        } else {
            "api_error"
        };
        event(
            "error",
            json!({"type": "error", "error": {"type": kind, "message": e.message}}),
        )
    }
}

impl super::sse::Frames for MessageStream {
    fn next_frames(&mut self) -> impl std::future::Future<Output = Option<Bytes>> + Send {
        self.step()
    }
}
