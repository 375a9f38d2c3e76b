//! The Ollama API: `/api/chat` and `/api/generate` (NDJSON streams by default, one object
//! with `stream: false`), `/api/tags`, `/api/show`, `/api/ps`, `/api/version`; errors in
//! Ollama's shape (`{"error": "…"}`).

use super::error::{body_rejection, parse_json, ApiError};
use super::keep::Keep;
use super::ollama_request::{self, Valid};
use super::pool::Listing;
use super::queue::{Running, Slot};
use super::sse::Frames;
use super::structured::{self, Pending};
use super::tools::{self, ToolStream};
use super::ServerState;
use crate::chat::reasoning::{Channel, ChannelParser, Piece};
use crate::chat::tools::{ParsedCall, ToolEvent, ToolFormat};
use crate::engine::logprobs::TokenLogprobs;
use crate::engine::{Event, FinishReason, Stats};
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;

type Shared = State<Arc<ServerState>>;
type RawBody = Result<Bytes, BytesRejection>;

/// The Ollama version reported by `/api/version` (clients check for a recent one).
pub const OLLAMA_VERSION: &str = "0.12.0";

/// `err` in Ollama's shape.
pub fn error_response(err: ApiError) -> Response {
    let mut res = (err.status, Json(json!({"error": err.message}))).into_response();
    if let Some(secs) = err.retry_after {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    res
}

fn answer(r: Result<Response, ApiError>) -> Response {
    r.unwrap_or_else(error_response)
}

fn now() -> String {
    rfc3339(time::OffsetDateTime::now_utc())
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Chat,
    Generate,
}

/// One NDJSON object (or the whole answer): the text and reasoning in the route's shape.
fn object(kind: Kind, model: &str, content: &str, thinking: &str, done: bool) -> Value {
    let mut v = json!({"model": model, "created_at": now()});
    match kind {
        Kind::Chat => {
            let mut m = json!({"role": "assistant", "content": content});
            if !thinking.is_empty() {
                m["thinking"] = json!(thinking);
            }
            v["message"] = m;
        }
        Kind::Generate => {
            v["response"] = json!(content);
            if !thinking.is_empty() {
                v["thinking"] = json!(thinking);
            }
        }
    }
    v["done"] = json!(done);
    v
}

fn ns(ms: f64) -> u64 {
    (ms.max(0.0) * 1e6) as u64
}

/// The final object's fields: why it ended and the timings in nanoseconds.
fn add_stats(v: &mut Value, s: &Stats, load_ms: f64) {
    let reason = match s.finish_reason {
        FinishReason::Length => "length",
        _ => "stop",
    };
    let o = v.as_object_mut().expect("an object");
    for (k, x) in [
        ("done_reason", json!(reason)),
        ("total_duration", json!(ns(s.total_ms + load_ms))),
        ("load_duration", json!(ns(load_ms))),
        ("prompt_eval_count", json!(s.prompt_tokens)),
        ("prompt_eval_duration", json!(ns(s.prefill_ms))),
        ("eval_count", json!(s.generated_tokens)),
        ("eval_duration", json!(ns(s.decode_ms))),
    ] {
        o.insert(k.into(), x);
    }
}

/// An empty prompt only loads the model (`done_reason: "load"`), or with `keep_alive: 0`
/// unloads it (`"unload"`), as in Ollama.
fn loaded(kind: Kind, model: &str, reason: &str, load_ms: f64) -> Response {
    let mut v = object(kind, model, "", "", true);
    v["done_reason"] = json!(reason);
    v["load_duration"] = json!(ns(load_ms));
    v["total_duration"] = json!(ns(load_ms));
    Json(v).into_response()
}

/// `POST /api/chat`.
pub async fn chat(State(s): Shared, body: RawBody) -> Response {
    answer(run(s, body, Kind::Chat).await)
}

/// `POST /api/generate`.
pub async fn generate(State(s): Shared, body: RawBody) -> Response {
    answer(run(s, body, Kind::Generate).await)
}

async fn run(s: Arc<ServerState>, body: RawBody, kind: Kind) -> Result<Response, ApiError> {
    let body = parse_json(&body.map_err(body_rejection)?)?;
    let v: Valid = match kind {
        Kind::Chat => ollama_request::chat(&body, &s.defaults)?,
        Kind::Generate => ollama_request::generate(&body, &s.defaults)?,
    };
    let keep = Keep::from_json(body.get("keep_alive").unwrap_or(&Value::Null))
        .map_err(|e| ApiError::invalid("keep_alive", format!("`keep_alive` {e}")))?;
    if v.request.is_none() && keep == Some(Keep::For(std::time::Duration::ZERO)) {
        let listing = s.find(&v.model)?;
        s.pool.unload(&listing.id);
        return Ok(loaded(kind, &listing.id, "unload", 0.0));
    }
    let lease = s.acquire(&v.model, keep).await?;
    let load_ms = lease.load_ms.unwrap_or(0.0);
    let model = lease.model;
    let Some(mut request) = v.request else {
        return Ok(loaded(kind, &model.id, "load", load_ms));
    };
    if let (Some(w), Some(ctx)) = (request.max_kv_size, model.client.context_length()) {
        if w >= ctx {
            request.max_kv_size = None;
        }
    }
    let format = ToolFormat::detect(model.client.chat_template());
    let active = v.tools.apply(&mut request, format);
    let slot = s.limiter.admit().await?;
    let want_logprobs = request.logprobs.is_some();
    let mut running = Running::start(model.client.as_ref(), request, &s.metrics);
    if !v.stream {
        let (text, stats, logprobs) = structured::collect(running, true).await?;
        drop(slot);
        let split = crate::chat::reasoning::split(&text);
        let thinking = if v.think {
            split.reasoning_text()
        } else {
            String::new()
        };
        let Some(active) = &active else {
            let mut out = object(kind, &model.id, &split.answer, &thinking, true);
            if want_logprobs {
                out["logprobs"] = structured::ollama_json(&logprobs);
            }
            add_stats(&mut out, &stats, load_ms);
            return Ok(Json(out).into_response());
        };
        let answer = tools::read(active, &split.answer);
        let content = answer.content().unwrap_or_default();
        let mut out = object(kind, &model.id, content, &thinking, true);
        if !answer.calls.is_empty() {
            out["message"]["tool_calls"] = calls_json(&answer.calls);
        }
        if want_logprobs {
            out["logprobs"] = structured::ollama_json(&logprobs);
        }
        add_stats(&mut out, &stats, load_ms);
        return Ok(Json(out).into_response());
    }
    // Wait for the first event so a request the engine refuses gets its status code.
    let first = match running.next().await {
        Some(Event::Error(e)) => return Err(e.into()),
        None => return Err(ApiError::server("the engine stopped before starting")),
        Some(ev) => ev,
    };
    let lines = Lines {
        kind,
        model: model.id.clone(),
        think: v.think,
        running,
        pending: Some(first),
        parser: ChannelParser::new(),
        tools: active.as_ref().map(ToolStream::new),
        done: false,
        load_ms,
        _slot: slot,
        want_logprobs,
        logprobs: Pending::default(),
    };
    Ok(ndjson(lines))
}

/// A streamed answer: one JSON object per line, the last with `done: true` and the stats.
struct Lines {
    kind: Kind,
    model: String,
    think: bool,
    running: Running,
    pending: Option<Event>,
    parser: ChannelParser,
    tools: Option<ToolStream>,
    done: bool,
    load_ms: f64,
    _slot: Slot,
    /// Whether the request asked for log probabilities, and the entries not yet sent.
    want_logprobs: bool,
    logprobs: Pending,
}

/// Calls in Ollama's shape: arguments as an object.
fn calls_json(calls: &[ParsedCall]) -> Value {
    let calls: Vec<Value> = calls
        .iter()
        .map(|c| json!({"function": {"name": c.name, "arguments": c.arguments}}))
        .collect();
    json!(calls)
}

impl Lines {
    async fn step(&mut self) -> Option<Bytes> {
        while !self.done {
            let ev = match self.pending.take() {
                Some(ev) => Some(ev),
                None => self.running.next().await,
            };
            let out = match ev {
                Some(Event::Started { .. }) => vec![],
                Some(Event::Token { text, logprobs, .. }) => {
                    self.logprobs.push(logprobs);
                    let (pieces, entries) = self.logprobs.push_text(&mut self.parser, &text);
                    self.pieces(pieces, entries)
                }
                Some(Event::Text(text)) => {
                    let (pieces, entries) = self.logprobs.push_text(&mut self.parser, &text);
                    self.pieces(pieces, entries)
                }
                Some(Event::Done(stats)) => {
                    self.done = true;
                    let (rest, entries) = self.logprobs.finish(&mut self.parser);
                    let mut out = self.pieces(rest, entries);
                    if let Some(events) = self.tools.as_mut().map(ToolStream::finish) {
                        out.extend(self.tool_lines(events));
                    }
                    let mut last = object(self.kind, &self.model, "", "", true);
                    add_stats(&mut last, &stats, self.load_ms);
                    out.extend(line(&last));
                    out
                }
                Some(Event::Error(e)) => self.fail(e.into()),
                None => self.fail(ApiError::server("the engine stopped mid-generation")),
            };
            if !out.is_empty() {
                return Some(Bytes::from(out));
            }
        }
        None
    }

    fn pieces(&mut self, pieces: Vec<Piece>, entries: Vec<TokenLogprobs>) -> Vec<u8> {
        let (mut content, mut thinking) = (String::new(), String::new());
        let mut calls = Vec::new();
        for p in pieces {
            if p.channel != Channel::Final {
                if self.think {
                    thinking.push_str(&p.text);
                }
                continue;
            }
            let Some(t) = self.tools.as_mut() else {
                content.push_str(&p.text);
                continue;
            };
            for e in t.push(&p.text) {
                match e {
                    ToolEvent::Text(text) => content.push_str(&text),
                    ToolEvent::Call(c) => calls.push(c),
                }
            }
        }
        if content.is_empty() && thinking.is_empty() && calls.is_empty() {
            return vec![];
        }
        let mut v = object(self.kind, &self.model, &content, &thinking, false);
        if !calls.is_empty() {
            v["message"]["tool_calls"] = calls_json(&calls);
        }
        if self.want_logprobs {
            v["logprobs"] = structured::ollama_json(&entries);
        }
        line(&v)
    }

    /// Lines for what the tool-call reader gave back at the end.
    fn tool_lines(&self, events: Vec<ToolEvent>) -> Vec<u8> {
        let mut out = Vec::new();
        for e in events {
            let v = match e {
                ToolEvent::Text(t) => object(self.kind, &self.model, &t, "", false),
                ToolEvent::Call(c) => {
                    let mut v = object(self.kind, &self.model, "", "", false);
                    v["message"]["tool_calls"] = calls_json(std::slice::from_ref(&c));
                    v
                }
            };
            out.extend(line(&v));
        }
        out
    }

    /// Ollama ends a failed stream with an `{"error": …}` line.
    fn fail(&mut self, e: ApiError) -> Vec<u8> {
        self.done = true;
        line(&json!({"error": e.message}))
    }
}

impl Frames for Lines {
    fn next_frames(&mut self) -> impl std::future::Future<Output = Option<Bytes>> + Send {
        self.step()
    }
}

fn line(v: &Value) -> Vec<u8> {
    let mut out = v.to_string().into_bytes();
    out.push(b'\n');
    out
}

/// An `application/x-ndjson` response; dropping it (the client left) cancels the generation.
fn ndjson<F: Frames>(frames: F) -> Response {
    let body = futures_util::stream::unfold(frames, |mut f| async move {
        f.next_frames()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), f))
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(body),
    )
        .into_response()
}

/// `135M`, `1.5B`: a parameter count as Ollama writes it.
fn parameter_size(n: u64) -> String {
    let (v, unit) = match n {
        0 => return String::new(),
        n if n >= 1_000_000_000 => (n as f64 / 1e9, "B"),
        n if n >= 1_000_000 => (n as f64 / 1e6, "M"),
        n => (n as f64 / 1e3, "K"),
    };
    let s = format!("{v:.1}");
    format!("{}{unit}", s.trim_end_matches(".0"))
}

/// What the model file says about itself (empty strings where lmwb does not know).
fn details(m: &Listing) -> Value {
    details_of(m.info.as_ref())
}

fn details_of(info: Option<&crate::engine::model::ModelInfo>) -> Value {
    let (format, family, params, quant) = match info {
        Some(i) => (
            i.format.to_string(),
            i.arch.clone(),
            parameter_size(i.params),
            i.quant.clone(),
        ),
        None => Default::default(),
    };
    json!({
        "parent_model": "",
        "format": format,
        "family": family,
        "families": [family],
        "parameter_size": params,
        "quantization_level": quant,
    })
}

fn size(m: &Listing) -> u64 {
    m.size
}

fn modified(m: &Listing) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(m.created as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    rfc3339(t)
}

/// A model as `/api/tags` lists it. `digest` is left out: hashing a multi-GB file per
/// listing is not cheap.
fn summary(m: &Listing) -> Value {
    json!({
        "name": m.id,
        "model": m.id,
        "modified_at": modified(m),
        "size": size(m),
        "details": details(m),
    })
}

/// An embedding model as `/api/tags` lists it.
fn embedder_summary(e: &super::ServedEmbedder) -> Value {
    let t = time::OffsetDateTime::from_unix_timestamp(e.created as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    json!({
        "name": e.id,
        "model": e.id,
        "modified_at": rfc3339(t),
        "size": e.info.as_ref().map_or(0, |i| i.size_bytes),
        "details": details_of(e.info.as_ref()),
    })
}

/// `/api/show` of an embedding model: its vectors' length, its input limit, `embedding`.
fn embedder_show(e: &super::ServedEmbedder) -> Value {
    let mut v = embedder_summary(e);
    let arch = v["details"]["family"].as_str().unwrap_or("").to_string();
    let arch = if arch.is_empty() {
        "general".into()
    } else {
        arch
    };
    v["model_info"] = json!({
        "general.name": e.id,
        "general.basename": e.embedder.model_name(),
        "general.architecture": arch,
        format!("{arch}.embedding_length"): e.embedder.dims(),
        format!("{arch}.context_length"): e.embedder.max_tokens(),
    });
    v["parameters"] = json!("");
    v["capabilities"] = json!(["embedding"]);
    for k in ["name", "model", "size"] {
        v.as_object_mut().map(|o| o.remove(k));
    }
    v
}

/// `GET /api/tags`: every model this server can serve (loaded on first use).
pub async fn tags(State(s): Shared) -> Response {
    let mut models: Vec<Value> = s.pool.available().iter().map(summary).collect();
    models.extend(s.embedders().iter().map(embedder_summary));
    Json(json!({"models": models})).into_response()
}

/// `GET /api/ps`: the models loaded now, with their size and when they unload.
pub async fn ps(State(s): Shared) -> Response {
    let models: Vec<Value> = s
        .pool
        .loaded()
        .iter()
        .map(|m| {
            let mut v = summary(&m.listing);
            v.as_object_mut().map(|o| o.remove("modified_at"));
            // Ollama writes a date far ahead for a model kept for good.
            let expires = match m.expires {
                Some(t) => time::OffsetDateTime::from(t),
                None => time::OffsetDateTime::from_unix_timestamp(11_000_000_000)
                    .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
            };
            v["expires_at"] = json!(rfc3339(expires));
            v["size_vram"] = json!(0);
            if let Some(n) = m.client.context_length() {
                v["context_length"] = json!(n);
            }
            v
        })
        .collect();
    Json(json!({"models": models})).into_response()
}

/// `GET /` (and `HEAD /`): what Ollama answers, so clients that probe it find a server.
pub async fn root() -> &'static str {
    "Ollama is running"
}

/// `GET /api/version`.
pub async fn version() -> Response {
    Json(json!({"version": OLLAMA_VERSION, "lmwb": env!("CARGO_PKG_VERSION")})).into_response()
}

/// `POST /api/show`.
pub async fn show(State(s): Shared, body: RawBody) -> Response {
    answer(show_model(&s, body))
}

fn show_model(s: &ServerState, body: RawBody) -> Result<Response, ApiError> {
    let body = parse_json(&body.map_err(body_rejection)?)?;
    let map = body
        .as_object()
        .ok_or_else(|| ApiError::bad_request("the request body must be a JSON object"))?;
    if let Some(k) = map
        .keys()
        .find(|k| !["model", "name", "verbose"].contains(&k.as_str()))
    {
        return Err(ApiError::invalid(k.clone(), format!("unknown field `{k}`")));
    }
    if map
        .get("verbose")
        .is_some_and(|v| !(v.is_null() || v.is_boolean()))
    {
        return Err(ApiError::invalid("verbose", "`verbose` must be a boolean"));
    }
    let name = match map.get("model").or_else(|| map.get("name")) {
        Some(Value::String(n)) if !n.is_empty() => n.clone(),
        _ => return Err(ApiError::invalid("model", "`model` is required")),
    };
    if let Some(e) = s.embedders().iter().find(|e| e.id == name) {
        return Ok(Json(embedder_show(e)).into_response());
    }
    let m = s.find(&name)?;
    let d = &s.defaults.sampling;
    let mut parameters = format!(
        "temperature {}\ntop_p {}\ntop_k {}\nmin_p {}\nrepeat_penalty {}\nrepeat_last_n {}",
        d.temperature, d.top_p, d.top_k, d.min_p, d.repeat_penalty, d.repeat_last_n
    );
    if let Some(n) = s.defaults.max_tokens {
        parameters.push_str(&format!("\nnum_predict {n}"));
    }
    let details = details(&m);
    let arch = details["family"].as_str().unwrap_or("").to_string();
    let mut info = json!({
        "general.name": m.id,
        "general.basename": m.id,
        "general.architecture": arch,
    });
    if let Some(n) = m.info.as_ref().map(|i| i.context_length).filter(|&n| n > 0) {
        info[format!(
            "{}.context_length",
            if arch.is_empty() { "general" } else { &arch }
        )] = json!(n);
    }
    if let Some(i) = &m.info {
        info["general.parameter_count"] = json!(i.params);
        info["general.file_type"] = json!(i.quant);
        info["lmwb.has_chat_template"] = json!(i.has_chat_template);
    }
    let mut capabilities = vec!["completion", "thinking"];
    if m.info.as_ref().is_some_and(|i| !i.has_chat_template) {
        // No template of its own: chat falls back to a generic one.
        capabilities.retain(|c| *c != "thinking");
    }
    Ok(Json(json!({
        "parameters": parameters,
        "details": details,
        "model_info": info,
        "capabilities": capabilities,
        "modified_at": modified(&m),
    }))
    .into_response())
}

/// Ollama routes lmwb does not serve.
pub async fn not_implemented(uri: axum::http::Uri) -> Response {
    let mut e = ApiError::not_implemented(uri.path());
    e.message = format!(
        "{} is not implemented by lmwb; of Ollama's API it serves /api/chat, /api/generate, /api/embed, /api/embeddings, /api/tags, /api/show, /api/ps and /api/version",
        uri.path()
    );
    error_response(e)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parameter_sizes_read_as_ollama_writes_them() {
        for (n, s) in [
            (134_515_008, "134.5M"),
            (1_500_000_000, "1.5B"),
            (8_000_000_000, "8B"),
            (0, ""),
        ] {
            assert_eq!(super::parameter_size(n), s);
        }
    }
}
