//! The Ollama API: `/api/chat` and `/api/generate` (NDJSON streams by default, one object
//! with `stream: false`), `/api/tags`, `/api/show`, `/api/ps`, `/api/version`; errors in
//! Ollama's shape (`{"error": "…"}`).

use super::error::{body_rejection, parse_json, ApiError};
use super::ollama_request::{self, Valid};
use super::queue::{Running, Slot};
use super::sse::Frames;
use super::structured::{self, Pending};
use super::{ServedModel, ServerState};
use crate::chat::reasoning::{Channel, ChannelParser, Piece};
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
fn add_stats(v: &mut Value, s: &Stats) {
    let reason = match s.finish_reason {
        FinishReason::Length => "length",
        _ => "stop",
    };
    let o = v.as_object_mut().expect("an object");
    for (k, x) in [
        ("done_reason", json!(reason)),
        ("total_duration", json!(ns(s.total_ms))),
        ("load_duration", json!(0)),
        ("prompt_eval_count", json!(s.prompt_tokens)),
        ("prompt_eval_duration", json!(ns(s.prefill_ms))),
        ("eval_count", json!(s.generated_tokens)),
        ("eval_duration", json!(ns(s.decode_ms))),
    ] {
        o.insert(k.into(), x);
    }
}

/// An empty prompt only loads the model (already loaded here): Ollama answers `load`.
fn loaded(kind: Kind, model: &str) -> Response {
    let mut v = object(kind, model, "", "", true);
    v["done_reason"] = json!("load");
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
    let model = s.find(&v.model)?;
    let Some(mut request) = v.request else {
        return Ok(loaded(kind, &model.id));
    };
    if let (Some(w), Some(ctx)) = (request.max_kv_size, model.client.context_length()) {
        if w >= ctx {
            request.max_kv_size = None;
        }
    }
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
        let mut out = object(kind, &model.id, &split.answer, &thinking, true);
        if want_logprobs {
            out["logprobs"] = structured::ollama_json(&logprobs);
        }
        add_stats(&mut out, &stats);
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
        done: false,
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
    done: bool,
    _slot: Slot,
    /// Whether the request asked for log probabilities, and the entries not yet sent.
    want_logprobs: bool,
    logprobs: Pending,
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
                    let mut last = object(self.kind, &self.model, "", "", true);
                    add_stats(&mut last, &stats);
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

    fn pieces(&self, pieces: Vec<Piece>, entries: Vec<TokenLogprobs>) -> Vec<u8> {
        let (mut content, mut thinking) = (String::new(), String::new());
        for p in pieces {
            if p.channel == Channel::Final {
                content.push_str(&p.text);
            } else if self.think {
                thinking.push_str(&p.text);
            }
        }
        if content.is_empty() && thinking.is_empty() {
            return vec![];
        }
        let mut v = object(self.kind, &self.model, &content, &thinking, false);
        if self.want_logprobs {
            v["logprobs"] = structured::ollama_json(&entries);
        }
        line(&v)
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
fn details(m: &ServedModel) -> Value {
    let (format, family, params, quant) = match &m.info {
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

fn size(m: &ServedModel) -> u64 {
    m.info.as_ref().map_or(0, |i| i.size_bytes)
}

fn modified(m: &ServedModel) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(m.created as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    rfc3339(t)
}

/// A model as `/api/tags` lists it. `digest` is left out: hashing a multi-GB file per
/// listing is not cheap.
fn summary(m: &ServedModel) -> Value {
    json!({
        "name": m.id,
        "model": m.id,
        "modified_at": modified(m),
        "size": size(m),
        "details": details(m),
    })
}

/// `GET /api/tags`.
pub async fn tags(State(s): Shared) -> Response {
    let models: Vec<Value> = s.models().iter().map(summary).collect();
    Json(json!({"models": models})).into_response()
}

/// `GET /api/ps`: the models loaded; lmwb keeps them loaded while it serves.
pub async fn ps(State(s): Shared) -> Response {
    let models: Vec<Value> = s
        .models()
        .iter()
        .map(|m| {
            let mut v = summary(m);
            v.as_object_mut().map(|o| o.remove("modified_at"));
            v["expires_at"] = json!("9999-12-31T23:59:59Z");
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
        "general.basename": m.client.model_name(),
        "general.architecture": arch,
    });
    if let Some(n) = m.client.context_length() {
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
        "{} is not implemented by lmwb; of Ollama's API it serves /api/chat, /api/generate, /api/tags, /api/show, /api/ps and /api/version",
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
