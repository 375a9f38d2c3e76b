//! What goes over the wire to a remote backend: request bodies built from a
//! [`GenerateRequest`], and the stream's lines read back as [`Piece`]s. OpenAI servers
//! stream server-sent events (`data: {chunk}`), Ollama one JSON object per line.

use super::backend::BackendKind;
use crate::engine::template::{ChatMessage, Role};
use crate::engine::{FinishReason, GenerateRequest, Prompt};
use serde_json::{json, Map, Value};

/// One thing a stream said.
#[derive(Clone, Debug, PartialEq)]
pub enum Piece {
    /// Answer text.
    Text(String),
    /// Reasoning text (`reasoning_content`, `reasoning`, Ollama's `thinking`).
    Reasoning(String),
    /// Token counts the server reported.
    Usage {
        prompt: usize,
        completion: usize,
    },
    Finish(FinishReason),
    /// The server reported an error inside the stream.
    Error(String),
    /// The stream's end marker (`[DONE]`, Ollama's `done: true`).
    End,
}

/// Where a request goes, relative to the backend's base URL, and its JSON body.
#[derive(Debug)]
pub struct WireRequest {
    pub path: &'static str,
    pub body: Value,
}

fn role(r: Role) -> &'static str {
    r.as_str()
}

fn openai_message(m: &ChatMessage) -> Value {
    let mut v = json!({"role": role(m.role), "content": m.content});
    if !m.tool_calls.is_empty() {
        v["tool_calls"] = m
            .tool_calls
            .iter()
            .map(|c| {
                json!({"id": c.id, "type": "function", "function": {
                    "name": c.name, "arguments": c.arguments.to_string()}})
            })
            .collect();
    }
    if let Some(id) = &m.tool_call_id {
        v["tool_call_id"] = json!(id);
    }
    v
}

fn ollama_message(m: &ChatMessage) -> Value {
    let mut v = json!({"role": role(m.role), "content": m.content});
    if !m.tool_calls.is_empty() {
        v["tool_calls"] = m
            .tool_calls
            .iter()
            .map(|c| json!({"function": {"name": c.name, "arguments": c.arguments}}))
            .collect();
    }
    v
}

/// Why a request cannot be sent to this kind of backend.
fn refuse(req: &GenerateRequest, kind: BackendKind) -> Result<(), String> {
    if let Prompt::Chat {
        template, options, ..
    } = &req.prompt
    {
        if let Some(t) = template {
            return Err(format!("--template {t}: a remote backend renders chat prompts with its own template; drop --template, or run the model in-process"));
        }
        if !options.prefill.is_empty() {
            return Err("an answer prefill cannot be sent to a remote backend".into());
        }
    }
    if kind == BackendKind::Ollama && matches!(req.prompt, Prompt::Tokens(_)) {
        return Err("token-id prompts (benchmarks) need an OpenAI-compatible backend: Ollama's API takes text only; use kind = \"openai\" with Ollama's /v1 or another server".into());
    }
    if kind == BackendKind::Openai && req.max_kv_size.is_some() {
        return Err("--max-kv-size: the KV window of a remote OpenAI-compatible server is set on the server, not per request; drop it for this backend".into());
    }
    if req.constraint.is_some() {
        return Err("constrained (JSON) output is not sent to remote backends yet".into());
    }
    Ok(())
}

/// The body for `req` on a backend of `kind`; `extensions`: send the samplers OpenAI
/// itself lacks.
pub fn request(
    req: &GenerateRequest,
    model: &str,
    kind: BackendKind,
    extensions: bool,
) -> Result<WireRequest, String> {
    refuse(req, kind)?;
    match kind {
        BackendKind::Openai => Ok(openai_request(req, model, extensions)),
        BackendKind::Ollama => Ok(ollama_request(req, model)),
    }
}

fn openai_request(req: &GenerateRequest, model: &str, extensions: bool) -> WireRequest {
    let s = &req.sampling;
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("stream".into(), json!(true));
    body.insert("stream_options".into(), json!({"include_usage": true}));
    body.insert("temperature".into(), json!(s.temperature));
    body.insert("top_p".into(), json!(s.top_p));
    if s.presence_penalty != 0.0 {
        body.insert("presence_penalty".into(), json!(s.presence_penalty));
    }
    if s.frequency_penalty != 0.0 {
        body.insert("frequency_penalty".into(), json!(s.frequency_penalty));
    }
    if let Some(seed) = s.seed {
        body.insert("seed".into(), json!(seed));
    }
    if let Some(n) = req.max_tokens {
        body.insert("max_tokens".into(), json!(n));
    }
    if !req.stop.is_empty() {
        body.insert("stop".into(), json!(req.stop));
    }
    // Greedy decoding ignores the other samplers; only send them when they matter.
    if extensions && s.temperature > 0.0 {
        if s.top_k > 0 {
            body.insert("top_k".into(), json!(s.top_k));
        }
        if s.min_p > 0.0 {
            body.insert("min_p".into(), json!(s.min_p));
        }
        if s.repeat_penalty != 1.0 {
            body.insert("repeat_penalty".into(), json!(s.repeat_penalty));
        }
    }
    if req.ignore_eos {
        body.insert("ignore_eos".into(), json!(true));
    }
    if let Some(n) = req.logprobs {
        body.insert("logprobs".into(), json!(true));
        body.insert("top_logprobs".into(), json!(n));
    }
    let path = match &req.prompt {
        Prompt::Chat {
            messages, options, ..
        } => {
            body.insert(
                "messages".into(),
                messages.iter().map(openai_message).collect(),
            );
            if !options.tools.is_empty() {
                body.insert("tools".into(), json!(options.tools));
            }
            "/chat/completions"
        }
        Prompt::Raw(text) => {
            body.insert("prompt".into(), json!(text));
            body.remove("top_logprobs");
            if let Some(n) = req.logprobs {
                body.insert("logprobs".into(), json!(n));
            }
            "/completions"
        }
        Prompt::Tokens(ids) => {
            body.insert("prompt".into(), json!(ids));
            body.remove("top_logprobs");
            "/completions"
        }
    };
    WireRequest {
        path,
        body: Value::Object(body),
    }
}

fn ollama_request(req: &GenerateRequest, model: &str) -> WireRequest {
    let s = &req.sampling;
    let mut options = json!({
        "temperature": s.temperature,
        "top_p": s.top_p,
        "top_k": s.top_k,
        "min_p": s.min_p,
        "repeat_penalty": s.repeat_penalty,
        "repeat_last_n": s.repeat_last_n,
        "presence_penalty": s.presence_penalty,
        "frequency_penalty": s.frequency_penalty,
    });
    if let Some(seed) = s.seed {
        options["seed"] = json!(seed);
    }
    // -1: until EOS (Ollama's default is a limit of its own).
    options["num_predict"] = json!(req.max_tokens.map(|n| n as i64).unwrap_or(-1));
    if !req.stop.is_empty() {
        options["stop"] = json!(req.stop);
    }
    if let Some(n) = req.max_kv_size {
        options["num_ctx"] = json!(n);
    }
    let mut body = json!({"model": model, "stream": true, "options": options});
    if let Some(n) = req.logprobs {
        body["logprobs"] = json!(true);
        body["top_logprobs"] = json!(n);
    }
    let path = match &req.prompt {
        Prompt::Chat {
            messages, options, ..
        } => {
            body["messages"] = messages.iter().map(ollama_message).collect();
            if !options.tools.is_empty() {
                body["tools"] = json!(options.tools);
            }
            "/api/chat"
        }
        Prompt::Raw(text) => {
            body["prompt"] = json!(text);
            body["raw"] = json!(true);
            "/api/generate"
        }
        Prompt::Tokens(_) => unreachable!("refused above"),
    };
    WireRequest { path, body }
}

pub(super) fn finish(reason: &str) -> FinishReason {
    match reason {
        "length" | "max_tokens" => FinishReason::Length,
        _ => FinishReason::Stop,
    }
}

fn error_text(e: &Value) -> String {
    e.get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| e.as_str().map(str::to_string))
        .unwrap_or_else(|| e.to_string())
}

pub(super) fn usize_of(v: Option<&Value>) -> usize {
    v.and_then(Value::as_u64).unwrap_or(0) as usize
}

/// A message's or delta's reasoning: `reasoning_content` (lmwb, vLLM, DeepSeek), else
/// `reasoning` (OpenRouter, newer vLLM).
pub(super) fn reasoning_of(m: &Value) -> Option<&str> {
    m.get("reasoning_content")
        .or_else(|| m.get("reasoning"))
        .and_then(Value::as_str)
}

/// Push the reasoning, then the answer text, leaving out empty ones.
pub(super) fn texts(out: &mut Vec<Piece>, reasoning: Option<&str>, text: Option<&str>) {
    if let Some(t) = reasoning.filter(|t| !t.is_empty()) {
        out.push(Piece::Reasoning(t.into()));
    }
    if let Some(t) = text.filter(|t| !t.is_empty()) {
        out.push(Piece::Text(t.into()));
    }
}

/// The pieces of one server-sent event's data (OpenAI chat or completions chunks).
pub fn openai_event(data: &str) -> Result<Vec<Piece>, String> {
    let data = data.trim();
    if data == "[DONE]" {
        return Ok(vec![Piece::End]);
    }
    let v: Value = serde_json::from_str(data)
        .map_err(|e| format!("a stream event is not JSON ({e}): {}", clip(data)))?;
    if let Some(e) = v.get("error") {
        return Ok(vec![Piece::Error(error_text(e))]);
    }
    let mut out = Vec::new();
    let choices = v.get("choices").and_then(Value::as_array);
    if choices.is_none() && v.get("usage").is_none() {
        return Err(format!(
            "a stream event has neither `choices` nor `usage`: {}",
            clip(data)
        ));
    }
    for c in choices.into_iter().flatten() {
        // Several choices are never asked for; read the first.
        if c.get("index").and_then(Value::as_u64).unwrap_or(0) != 0 {
            continue;
        }
        let delta = c.get("delta");
        let text = delta
            .and_then(|d| d.get("content"))
            .or_else(|| c.get("text"))
            .and_then(Value::as_str);
        texts(&mut out, delta.and_then(reasoning_of), text);
        if let Some(r) = c.get("finish_reason").and_then(Value::as_str) {
            out.push(Piece::Finish(finish(r)));
        }
    }
    if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
        out.push(Piece::Usage {
            prompt: usize_of(u.get("prompt_tokens")),
            completion: usize_of(u.get("completion_tokens")),
        });
    }
    Ok(out)
}

/// The pieces of one line of an Ollama stream (`/api/chat` or `/api/generate`).
pub fn ollama_line(line: &str) -> Result<Vec<Piece>, String> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(vec![]);
    }
    let v: Value = serde_json::from_str(line)
        .map_err(|e| format!("a stream line is not JSON ({e}): {}", clip(line)))?;
    if let Some(e) = v.get("error") {
        return Ok(vec![Piece::Error(error_text(e))]);
    }
    let Some(done) = v.get("done").and_then(Value::as_bool) else {
        return Err(format!("a stream line has no `done` field: {}", clip(line)));
    };
    let mut out = Vec::new();
    let msg = v.get("message");
    let thinking = msg
        .and_then(|m| m.get("thinking"))
        .or_else(|| v.get("thinking"))
        .and_then(Value::as_str);
    let text = msg
        .and_then(|m| m.get("content"))
        .or_else(|| v.get("response"))
        .and_then(Value::as_str);
    texts(&mut out, thinking, text);
    if done {
        out.push(Piece::Usage {
            prompt: usize_of(v.get("prompt_eval_count")),
            completion: usize_of(v.get("eval_count")),
        });
        let reason = v
            .get("done_reason")
            .and_then(Value::as_str)
            .unwrap_or("stop");
        out.push(Piece::Finish(finish(reason)));
        out.push(Piece::End);
    }
    Ok(out)
}

/// At most 200 characters of `s`, for messages.
pub fn clip(s: &str) -> String {
    let t: String = s.chars().take(200).collect();
    if t.len() < s.len() {
        format!("{t}…")
    } else {
        t
    }
}

/// The message of an error body, in any of the shapes servers use (OpenAI's
/// `{"error": {"message"}}`, Ollama's `{"error": "…"}`, TGI's `{"error": "…"}`,
/// FastAPI's `{"detail": …}`), else the body itself, clipped.
pub fn error_body(body: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(v) => v
            .get("error")
            .map(error_text)
            .or_else(|| v.get("detail").map(error_text))
            .or_else(|| v.get("message").map(error_text))
            .unwrap_or_else(|| clip(body)),
        Err(_) => clip(body.trim()),
    }
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
