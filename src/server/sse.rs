//! OpenAI response bodies: the `chat.completion` / `text_completion` objects, and their
//! Server-Sent Events streams (`data: {chunk}` frames, then `data: [DONE]`).

use super::error::ApiError;
use super::metrics::Metrics;
use super::queue::{Running, Slot};
use super::request_log::Trace;
use super::structured::{self, Pending};
use super::tools::{Active, ToolStream};
use crate::chat::reasoning::{Channel, ChannelParser, Piece};
use crate::chat::tools::{ParsedCall, ToolEvent};
use crate::client::GenerationClient;
use crate::engine::logprobs::TokenLogprobs;
use crate::engine::{Event, FinishReason, GenerateRequest, Stats};
use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::Arc;

/// Which OpenAI endpoint answers: the two differ only in object names and choice shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    Chat,
    Completion,
}

/// What every object of one response shares.
pub struct Meta {
    pub api: Api,
    pub id: String,
    pub created: u64,
    pub model: String,
    pub fingerprint: String,
    pub include_usage: bool,
    /// How to read answers for tool calls (chat requests with tools only).
    pub tools: Option<Active>,
}

impl Meta {
    pub fn new(api: Api, model: &str, fingerprint: &str, include_usage: bool) -> Meta {
        let prefix = match api {
            Api::Chat => "chatcmpl",
            Api::Completion => "cmpl",
        };
        Meta {
            api,
            id: format!("{prefix}-{:016x}", rand::random::<u64>()),
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            model: model.to_string(),
            fingerprint: fingerprint.to_string(),
            include_usage,
            tools: None,
        }
    }

    fn object(&self, stream: bool) -> &'static str {
        match (self.api, stream) {
            (Api::Chat, false) => "chat.completion",
            (Api::Chat, true) => "chat.completion.chunk",
            (Api::Completion, _) => "text_completion",
        }
    }

    fn envelope(&self, stream: bool, choices: Value) -> Value {
        json!({
            "id": self.id,
            "object": self.object(stream),
            "created": self.created,
            "model": self.model,
            "system_fingerprint": self.fingerprint,
            "choices": choices,
        })
    }

    /// One streamed chunk for choice `index`.
    fn chunk(&self, index: usize, delta: Delta, finish: Option<&str>) -> Bytes {
        self.chunk_lp(index, delta, finish, Value::Null)
    }

    /// One streamed chunk carrying `logprobs` (`null` when none).
    fn chunk_lp(&self, index: usize, delta: Delta, finish: Option<&str>, logprobs: Value) -> Bytes {
        let choice = match self.api {
            Api::Chat => {
                let delta = match delta {
                    Delta::Role => json!({"role": "assistant", "content": ""}),
                    Delta::Text(Channel::Final, t) => json!({ "content": t }),
                    Delta::Text(_, t) => json!({ "reasoning_content": t }),
                    Delta::Empty => json!({}),
                    Delta::Call { index, id, name } => json!({"tool_calls": [{
                        "index": index, "id": id, "type": "function",
                        "function": {"name": name, "arguments": ""},
                    }]}),
                    Delta::Args { index, arguments } => json!({"tool_calls": [{
                        "index": index, "function": {"arguments": arguments},
                    }]}),
                };
                json!({"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish})
            }
            Api::Completion => {
                let text = match delta {
                    Delta::Text(_, t) => t,
                    _ => String::new(),
                };
                json!({"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish})
            }
        };
        let mut v = self.envelope(true, json!([choice]));
        if self.include_usage {
            v["usage"] = Value::Null;
        }
        frame(&v)
    }
}

enum Delta {
    Role,
    Text(Channel, String),
    Empty,
    /// A tool call starts: its id and function name.
    Call {
        index: usize,
        id: String,
        name: String,
    },
    /// A tool call's arguments (a JSON string).
    Args {
        index: usize,
        arguments: String,
    },
}

fn frame(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

pub fn finish_reason(r: FinishReason) -> &'static str {
    match r {
        FinishReason::Length => "length",
        _ => "stop",
    }
}

/// Token counts summed over a response's choices.
#[derive(Default, Clone, Copy)]
pub struct Usage {
    pub prompt: usize,
    pub completion: usize,
}

impl Usage {
    pub fn add(&mut self, s: &Stats) {
        self.prompt = s.prompt_tokens;
        self.completion += s.generated_tokens;
    }

    pub fn json(&self) -> Value {
        json!({
            "prompt_tokens": self.prompt,
            "completion_tokens": self.completion,
            "total_tokens": self.prompt + self.completion,
        })
    }
}

/// One finished choice.
pub struct Choice {
    pub text: String,
    pub finish: FinishReason,
    /// The answer's tokens, when the request asked for log probabilities.
    pub logprobs: Option<Vec<TokenLogprobs>>,
}

/// The non-stream body: reasoning split out of the answer into `reasoning_content`.
pub fn completion_body(meta: &Meta, choices: &[Choice], usage: Usage) -> Value {
    let choices: Vec<Value> = choices
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let finish = finish_reason(c.finish);
            match meta.api {
                Api::Chat => {
                    let split = crate::chat::reasoning::split(&c.text);
                    let mut message =
                        json!({"role": "assistant", "content": split.answer, "refusal": null});
                    let mut finish = finish;
                    if let Some(active) = &meta.tools {
                        let answer = super::tools::read(active, &split.answer);
                        message["content"] = json!(answer.content());
                        if !answer.calls.is_empty() {
                            let calls: Vec<Value> = answer.calls.iter().map(call_json).collect();
                            message["tool_calls"] = json!(calls);
                            finish = "tool_calls";
                        }
                    }
                    let reasoning = split.reasoning_text();
                    if !reasoning.is_empty() {
                        message["reasoning_content"] = json!(reasoning);
                    }
                    let lp = c
                        .logprobs
                        .as_deref()
                        .map_or(Value::Null, structured::chat_json);
                    json!({"index": i, "message": message, "logprobs": lp, "finish_reason": finish})
                }
                Api::Completion => {
                    let lp = c
                        .logprobs
                        .as_deref()
                        .map_or(Value::Null, |e| structured::completion_json(e, &mut 0));
                    json!({"index": i, "text": c.text, "logprobs": lp, "finish_reason": finish})
                }
            }
        })
        .collect();
    let mut v = meta.envelope(false, json!(choices));
    v["usage"] = usage.json();
    v
}

/// A call in OpenAI's shape: arguments as a JSON string.
fn call_json(c: &ParsedCall) -> Value {
    json!({
        "id": super::tools::call_id(),
        "type": "function",
        "function": {"name": c.name, "arguments": c.arguments.to_string()},
    })
}

/// A streamed response in progress.
pub struct Stream {
    pub meta: Meta,
    pub metrics: Arc<Metrics>,
    pub client: Arc<dyn GenerationClient>,
    pub request: GenerateRequest,
    pub n: usize,
    pub index: usize,
    pub running: Option<Running>,
    /// An event already taken (the first one, checked before answering).
    pub pending: Option<Event>,
    pub parser: ChannelParser,
    /// Reads the answer for tool calls (when the request has tools).
    pub tools: Option<ToolStream>,
    /// Tool calls sent for the current choice.
    pub calls_sent: usize,
    /// Log-probability entries not yet sent, and (completions) the text offset reached.
    pub logprobs: Pending,
    pub text_offset: usize,
    pub usage: Usage,
    pub done: bool,
    pub _slot: Slot,
    /// The request's log trace, for the choices started after the first (the body's
    /// stream runs outside the handler's task, where [`Running::start`] finds it).
    pub trace: Option<Arc<Trace>>,
}

impl Stream {
    /// The next frames to send, or `None` at the end.
    async fn step(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        loop {
            let ev = match self.pending.take() {
                Some(ev) => Some(ev),
                None => match self.running.as_mut() {
                    Some(r) => r.next().await,
                    None => {
                        let mut r = Running::traced(
                            self.client.as_ref(),
                            self.request.clone(),
                            &self.metrics,
                            self.trace.clone(),
                        );
                        let ev = r.next().await;
                        self.running = Some(r);
                        ev
                    }
                },
            };
            let out = match ev {
                Some(ev) => self.on_event(ev),
                None => Some(self.fail(ApiError::server("the engine stopped mid-generation"))),
            };
            if let Some(bytes) = out {
                return Some(bytes);
            }
        }
    }

    fn on_event(&mut self, ev: Event) -> Option<Bytes> {
        let i = self.index;
        match ev {
            Event::Started { .. } => match self.meta.api {
                Api::Chat => Some(self.meta.chunk(i, Delta::Role, None)),
                Api::Completion => None,
            },
            Event::Token { text, logprobs, .. } => {
                self.logprobs.push(logprobs);
                self.text(text)
            }
            Event::Text(text) => self.text(text),
            Event::Done(stats) => Some(self.finish(&stats)),
            Event::Error(e) => Some(self.fail(e.into())),
        }
    }

    fn text(&mut self, text: String) -> Option<Bytes> {
        if text.is_empty() {
            return None;
        }
        let (pieces, entries) = match self.meta.api {
            Api::Chat => self.logprobs.push_text(&mut self.parser, &text),
            Api::Completion => {
                let lp = match self.request.logprobs {
                    Some(_) => {
                        structured::completion_json(&self.logprobs.take(), &mut self.text_offset)
                    }
                    None => Value::Null,
                };
                let delta = Delta::Text(Channel::Final, text);
                return Some(self.meta.chunk_lp(self.index, delta, None, lp));
            }
        };
        let mut out = Vec::new();
        let mut entries = Some(entries);
        self.pieces(pieces, &mut entries, &mut out);
        (!out.is_empty()).then(|| Bytes::from(out))
    }

    /// Frames for channel pieces; the answer's go through the tool-call reader first, and
    /// its first text chunk carries the pending log probabilities.
    fn pieces(
        &mut self,
        pieces: Vec<Piece>,
        entries: &mut Option<Vec<TokenLogprobs>>,
        out: &mut Vec<u8>,
    ) {
        for p in pieces.into_iter().filter(|p| !p.text.is_empty()) {
            let events = match (&mut self.tools, p.channel) {
                (Some(t), Channel::Final) => t.push(&p.text),
                _ => vec![ToolEvent::Text(p.text)],
            };
            self.tool_events(p.channel, events, entries, out);
        }
    }

    fn tool_events(
        &mut self,
        channel: Channel,
        events: Vec<ToolEvent>,
        entries: &mut Option<Vec<TokenLogprobs>>,
        out: &mut Vec<u8>,
    ) {
        let i = self.index;
        for e in events {
            match e {
                ToolEvent::Text(t) => {
                    let lp = match (channel, self.request.logprobs) {
                        (Channel::Final, Some(_)) => entries
                            .take()
                            .map_or(Value::Null, |e| structured::chat_json(&e)),
                        _ => Value::Null,
                    };
                    out.extend_from_slice(&self.meta.chunk_lp(i, Delta::Text(channel, t), None, lp))
                }
                ToolEvent::Call(c) => {
                    let index = self.calls_sent;
                    self.calls_sent += 1;
                    let id = super::tools::call_id();
                    let call = Delta::Call {
                        index,
                        id,
                        name: c.name,
                    };
                    out.extend_from_slice(&self.meta.chunk(i, call, None));
                    let arguments = c.arguments.to_string();
                    let args = Delta::Args { index, arguments };
                    out.extend_from_slice(&self.meta.chunk(i, args, None));
                }
            }
        }
    }

    fn finish(&mut self, stats: &Stats) -> Bytes {
        self.usage.add(stats);
        let mut out = Vec::new();
        if self.meta.api == Api::Chat {
            let (rest, entries) = self.logprobs.finish(&mut self.parser);
            let mut entries = Some(entries);
            self.pieces(rest, &mut entries, &mut out);
            if let Some(events) = self.tools.as_mut().map(ToolStream::finish) {
                self.tool_events(Channel::Final, events, &mut entries, &mut out);
            }
        }
        self.logprobs = Pending::default();
        self.text_offset = 0;
        let reason = match self.calls_sent {
            0 => finish_reason(stats.finish_reason),
            _ => "tool_calls",
        };
        self.calls_sent = 0;
        self.tools = self.meta.tools.as_ref().map(ToolStream::new);
        out.extend_from_slice(&self.meta.chunk(self.index, Delta::Empty, Some(reason)));
        self.running = None;
        self.parser = ChannelParser::new();
        self.index += 1;
        if self.index < self.n {
            bump_seed(&mut self.request);
            return Bytes::from(out);
        }
        if self.meta.include_usage {
            let mut v = self.meta.envelope(true, json!([]));
            v["usage"] = self.usage.json();
            out.extend_from_slice(&frame(&v));
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
        self.done = true;
        Bytes::from(out)
    }

    fn fail(&mut self, e: ApiError) -> Bytes {
        self.done = true;
        let mut out = frame(&e.body()).to_vec();
        out.extend_from_slice(b"data: [DONE]\n\n");
        Bytes::from(out)
    }
}

impl Frames for Stream {
    fn next_frames(&mut self) -> impl std::future::Future<Output = Option<Bytes>> + Send {
        self.step()
    }
}

/// A stream of Server-Sent Events frames, produced step by step.
pub trait Frames: Send + 'static {
    /// The next frames to send, or `None` at the end.
    fn next_frames(&mut self) -> impl std::future::Future<Output = Option<Bytes>> + Send;
}

/// An SSE response over `frames`; dropping it (the client left) drops `frames`.
pub fn response<F: Frames>(frames: F) -> Response {
    let body = futures_util::stream::unfold(frames, |mut f| async move {
        f.next_frames()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), f))
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// The next choice of `n` draws with the next seed, so choices differ but repeat.
pub fn bump_seed(req: &mut GenerateRequest) {
    if let Some(s) = req.sampling.seed.as_mut() {
        *s = s.wrapping_add(1);
    }
}
