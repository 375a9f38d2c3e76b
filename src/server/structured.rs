//! The request fields for log probabilities and structured output, on the OpenAI and
//! Ollama routes, and the JSON they answer with.
//!
//! Which tokens' log probabilities a response carries: those of the answer text. A token
//! held back (half a UTF-8 character, a possible stop string) goes with the text it later
//! releases, in the same chunk; tokens whose text turns out to be reasoning (`<think>…`,
//! Harmony analysis) are left out, and so are tokens whose text is never released (the
//! ones that only spell a stop string).

use super::error::ApiError;
use super::queue::Running;
use crate::chat::reasoning::{Channel, ChannelParser, Piece};
use crate::engine::constrain::{compile, Constraint};
use crate::engine::logprobs::{bytes_text, TokenLogprobs, TopLogprob, MAX_TOP_LOGPROBS};
use crate::engine::{Event, Stats};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// The most alternatives the legacy `/v1/completions` `logprobs` takes (OpenAI's limit).
pub const MAX_COMPLETION_LOGPROBS: u64 = 5;

fn int_in(map: &Map<String, Value>, key: &str, max: u64) -> Result<Option<usize>, ApiError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64().filter(|&n| n <= max) {
            Some(n) => Ok(Some(n as usize)),
            None => Err(ApiError::invalid(
                key,
                format!("`{key}` must be an integer between 0 and {max}"),
            )),
        },
    }
}

fn bool_in(map: &Map<String, Value>, key: &str) -> Result<bool, ApiError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ApiError::invalid(key, format!("`{key}` must be a boolean"))),
    }
}

/// Chat-style `logprobs: bool` + `top_logprobs: 0..=20` (OpenAI chat, Ollama).
pub fn chat_logprobs(map: &Map<String, Value>) -> Result<Option<usize>, ApiError> {
    let on = bool_in(map, "logprobs")?;
    let top = int_in(map, "top_logprobs", MAX_TOP_LOGPROBS as u64)?;
    match (on, top) {
        (true, top) => Ok(Some(top.unwrap_or(0))),
        (false, Some(n)) if n > 0 => Err(ApiError::invalid(
            "top_logprobs",
            "`top_logprobs` needs `logprobs: true`; set both, or leave `top_logprobs` out",
        )),
        (false, _) => Ok(None),
    }
}

/// Legacy `/v1/completions` `logprobs: 0..=5`.
pub fn completion_logprobs(map: &Map<String, Value>) -> Result<Option<usize>, ApiError> {
    int_in(map, "logprobs", MAX_COMPLETION_LOGPROBS)
}

fn schema_constraint(schema: &Value, base: &str) -> Result<Constraint, ApiError> {
    compile(schema, base)
        .map(|g| Constraint::Schema(Arc::new(g)))
        .map_err(|e| ApiError::invalid(e.path, e.message))
}

fn only_keys(obj: &Map<String, Value>, at: &str, keys: &[&str]) -> Result<(), ApiError> {
    match obj.keys().find(|k| !keys.contains(&k.as_str())) {
        Some(k) => Err(ApiError::invalid(
            format!("{at}.{k}"),
            format!(
                "unknown field `{k}` in `{at}` (it takes {})",
                keys.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

/// OpenAI `response_format`: `text`, `json_object`, or `json_schema` with `name`, `schema`,
/// `strict`, `description`.
pub fn response_format(map: &Map<String, Value>) -> Result<Option<Constraint>, ApiError> {
    const AT: &str = "response_format";
    let rf = match map.get(AT) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(o)) => o,
        Some(_) => {
            return Err(ApiError::invalid(
                AT,
                "`response_format` must be an object such as {\"type\": \"json_object\"}",
            ))
        }
    };
    let kind = rf.get("type").and_then(Value::as_str);
    match kind {
        Some("text") => only_keys(rf, AT, &["type"]).map(|_| None),
        Some("json_object") => only_keys(rf, AT, &["type"]).map(|_| Some(Constraint::Json)),
        Some("json_schema") => {
            only_keys(rf, AT, &["type", "json_schema"])?;
            const JS: &str = "response_format.json_schema";
            let js = rf.get("json_schema").and_then(Value::as_object).ok_or_else(|| {
                ApiError::invalid(JS, "`response_format.json_schema` is required: an object with `name` and `schema`")
            })?;
            only_keys(js, JS, &["name", "schema", "strict", "description"])?;
            if !js.get("name").is_some_and(Value::is_string) {
                return Err(ApiError::invalid(
                    format!("{JS}.name"),
                    "`response_format.json_schema.name` is required: a string",
                ));
            }
            if js
                .get("strict")
                .is_some_and(|s| !s.is_boolean() && !s.is_null())
            {
                return Err(ApiError::invalid(
                    format!("{JS}.strict"),
                    "`response_format.json_schema.strict` must be a boolean",
                ));
            }
            let schema = js.get("schema").filter(|s| !s.is_null()).ok_or_else(|| {
                ApiError::invalid(
                    format!("{JS}.schema"),
                    "`response_format.json_schema.schema` is required: a JSON Schema object",
                )
            })?;
            schema_constraint(schema, &format!("{JS}.schema")).map(Some)
        }
        _ => Err(ApiError::invalid(
            "response_format.type",
            "`response_format.type` must be `text`, `json_object` or `json_schema`",
        )),
    }
}

/// Ollama `format`: `"json"` or a JSON Schema object.
pub fn ollama_format(map: &Map<String, Value>) -> Result<Option<Constraint>, ApiError> {
    match map.get("format") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s == "json" => Ok(Some(Constraint::Json)),
        Some(v @ Value::Object(_)) => schema_constraint(v, "format").map(Some),
        Some(_) => Err(ApiError::invalid(
            "format",
            "`format` must be \"json\" or a JSON Schema object",
        )),
    }
}

/// Log-probability entries waiting for the answer text they belong to.
#[derive(Default)]
pub struct Pending(Vec<TokenLogprobs>);

impl Pending {
    pub fn push(&mut self, lp: Option<Box<TokenLogprobs>>) {
        self.0.extend(lp.map(|b| *b));
    }

    /// Everything pending (text without a reasoning parser: completions).
    pub fn take(&mut self) -> Vec<TokenLogprobs> {
        std::mem::take(&mut self.0)
    }

    /// Feed `text` to `parser`: its pieces, and the entries that go with their answer part —
    /// all pending ones when there is answer text; none (dropped) when the text was
    /// reasoning or the markup around it; none (kept) while the text is held back.
    pub fn push_text(
        &mut self,
        parser: &mut ChannelParser,
        text: &str,
    ) -> (Vec<Piece>, Vec<TokenLogprobs>) {
        let was_reasoning = parser.channel().is_reasoning();
        let pieces = parser.push(text);
        let entries = self.for_pieces(&pieces, was_reasoning);
        (pieces, entries)
    }

    /// [`Self::push_text`] for what the parser still holds at the end; the rest is dropped.
    pub fn finish(&mut self, parser: &mut ChannelParser) -> (Vec<Piece>, Vec<TokenLogprobs>) {
        let pieces = parser.finish();
        let entries = self.for_pieces(&pieces, false);
        self.0.clear();
        (pieces, entries)
    }

    fn for_pieces(&mut self, pieces: &[Piece], was_reasoning: bool) -> Vec<TokenLogprobs> {
        let text = |p: &&Piece| !p.text.is_empty();
        if pieces
            .iter()
            .filter(text)
            .any(|p| p.channel == Channel::Final)
        {
            self.take()
        } else {
            if was_reasoning || pieces.iter().any(|p| !p.text.is_empty()) {
                self.0.clear();
            }
            vec![]
        }
    }
}

/// Run one generation to its end, keeping the answer's log-probability entries.
pub async fn collect(
    mut running: Running,
    reasoning: bool,
) -> Result<(String, Stats, Vec<TokenLogprobs>), ApiError> {
    let mut text = String::new();
    let mut parser = ChannelParser::new();
    let (mut pending, mut kept) = (Pending::default(), Vec::new());
    let route = |t: &str, pending: &mut Pending, parser: &mut ChannelParser, kept: &mut Vec<_>| {
        if reasoning {
            kept.extend(pending.push_text(parser, t).1);
        } else if !t.is_empty() {
            kept.extend(pending.take());
        }
    };
    while let Some(ev) = running.next().await {
        match ev {
            Event::Started { .. } => {}
            Event::Token {
                text: t, logprobs, ..
            } => {
                pending.push(logprobs);
                route(&t, &mut pending, &mut parser, &mut kept);
                text.push_str(&t);
            }
            Event::Text(t) => {
                route(&t, &mut pending, &mut parser, &mut kept);
                text.push_str(&t);
            }
            Event::Done(stats) => {
                if reasoning {
                    kept.extend(pending.finish(&mut parser).1);
                }
                return Ok((text, stats, kept));
            }
            Event::Error(e) => return Err(e.into()),
        }
    }
    Err(ApiError::server("the engine stopped mid-generation"))
}

fn top_json(t: &TopLogprob) -> Value {
    json!({"token": bytes_text(&t.bytes), "logprob": t.logprob, "bytes": t.bytes})
}

/// One token in the shape of OpenAI chat and Ollama: `token`, `logprob`, `bytes`, `top_logprobs`.
pub fn token_json(lp: &TokenLogprobs) -> Value {
    json!({
        "token": lp.text(),
        "logprob": lp.logprob,
        "bytes": lp.bytes,
        "top_logprobs": lp.top.iter().map(top_json).collect::<Vec<_>>(),
    })
}

/// OpenAI chat `choices[i].logprobs`.
pub fn chat_json(entries: &[TokenLogprobs]) -> Value {
    json!({"content": entries.iter().map(token_json).collect::<Vec<_>>(), "refusal": null})
}

/// Ollama's `logprobs` list.
pub fn ollama_json(entries: &[TokenLogprobs]) -> Value {
    Value::Array(entries.iter().map(token_json).collect())
}

/// Legacy `/v1/completions` `choices[i].logprobs`; `offset` is where the first token starts
/// in the choice's text (bytes), advanced past these tokens.
pub fn completion_json(entries: &[TokenLogprobs], offset: &mut usize) -> Value {
    let mut offsets = Vec::with_capacity(entries.len());
    for e in entries {
        offsets.push(*offset);
        *offset += e.bytes.len();
    }
    let top: Vec<Value> = entries
        .iter()
        .map(|e| {
            let m: Map<String, Value> = e
                .top
                .iter()
                .map(|t| (bytes_text(&t.bytes), json!(t.logprob)))
                .collect();
            Value::Object(m)
        })
        .collect();
    json!({
        "tokens": entries.iter().map(TokenLogprobs::text).collect::<Vec<_>>(),
        "token_logprobs": entries.iter().map(|e| e.logprob).collect::<Vec<_>>(),
        "top_logprobs": top,
        "text_offset": offsets,
    })
}
