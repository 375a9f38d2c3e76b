//! OpenAI request bodies, checked at the edge and turned into engine requests: every field
//! lmwb does not support is refused with a 400 naming it, never silently ignored.

use super::error::{typed, ApiError};
use super::structured;
use crate::engine::sampler::SamplingParams;
use crate::engine::template::{ChatMessage, Role};
use crate::engine::{GenerateRequest, Prompt};
use serde::Deserialize;
use serde_json::{Map, Value};

/// What a request gets for the fields it leaves out.
#[derive(Clone, Debug)]
pub struct Defaults {
    pub sampling: SamplingParams,
    /// `None`: until EOS or the context is full.
    pub max_tokens: Option<usize>,
    /// The largest `n` accepted (choices are generated one after another).
    pub max_n: usize,
}

impl Default for Defaults {
    fn default() -> Defaults {
        Defaults {
            sampling: SamplingParams::default(),
            max_tokens: None,
            max_n: 4,
        }
    }
}

/// Fields both endpoints share: sampling, limits, streaming.
#[derive(Deserialize, Debug, Default)]
struct Knobs {
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    stop: Option<StopSpec>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    top_k: Option<usize>,
    min_p: Option<f32>,
    repeat_penalty: Option<f32>,
    presence_penalty: Option<f32>,
    frequency_penalty: Option<f32>,
    seed: Option<i64>,
    n: Option<u64>,
    ignore_eos: Option<bool>,
}

#[derive(Deserialize, Debug, Default)]
struct StreamOptions {
    include_usage: Option<bool>,
}

#[derive(Deserialize, Debug)]
#[serde(untagged)]
enum StopSpec {
    One(String),
    Many(Vec<String>),
}

/// A checked request: the engine request, how many choices, and how to answer.
#[derive(Clone, Debug)]
pub struct Valid {
    pub model: String,
    pub request: GenerateRequest,
    pub n: usize,
    pub stream: bool,
    pub include_usage: bool,
    /// `tools` / `tool_choice` (chat only); applied once the model, and so its tool-call
    /// format, is known.
    pub tools: super::tools::ToolSpec,
}

const COMMON: &[&str] = &[
    "model",
    "stream",
    "stream_options",
    "stop",
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "repeat_penalty",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "n",
    "user",
    "logit_bias",
    "logprobs",
    "metadata",
    "store",
    "service_tier",
    // Caching hints: lmwb always reuses the cached prefix of the previous request.
    "prompt_cache_key",
    "prompt_cache_retention",
    "prompt_cache_options",
    "safety_identifier",
    // LM Studio's: seconds an on-demand model stays loaded after this request.
    "ttl",
    // vLLM's: keep generating past EOS (benchmark clients send it).
    "ignore_eos",
];
const CHAT: &[&str] = &[
    "messages",
    "max_completion_tokens",
    "top_logprobs",
    "tools",
    "tool_choice",
    "response_format",
    "parallel_tool_calls",
    "modalities",
];
const COMPLETION: &[&str] = &["prompt", "suffix", "echo", "best_of"];

/// Fields lmwb knows but does not support yet, with the reason given back.
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "functions",
        "the legacy `functions` field is not supported; send `tools` instead",
    ),
    (
        "function_call",
        "the legacy `function_call` field is not supported; send `tool_choice` instead",
    ),
    ("audio", "lmwb generates text only"),
    ("prediction", "predicted outputs are not supported"),
    ("web_search_options", "lmwb has no web search"),
    (
        "reasoning_effort",
        "the model's reasoning length cannot be set",
    ),
    ("verbosity", "the answer length cannot be set"),
    ("moderation", "lmwb does not moderate content"),
];

pub(super) fn object(body: &Value) -> Result<&Map<String, Value>, ApiError> {
    body.as_object()
        .ok_or_else(|| ApiError::bad_request("the request body must be a JSON object"))
}

/// Refuse any key outside `allowed`, and any allowed key set to something unsupported.
fn check_fields(map: &Map<String, Value>, allowed: &[&[&str]]) -> Result<(), ApiError> {
    for (key, value) in map {
        if !allowed.iter().any(|set| set.contains(&key.as_str())) {
            return Err(match UNSUPPORTED.iter().find(|(k, _)| k == key) {
                Some((k, why)) => ApiError::unsupported(k, why),
                None => ApiError::invalid(
                    key.clone(),
                    format!("Unrecognized request argument supplied: {key}"),
                ),
            });
        }
        let off = value.is_null();
        let refused = match key.as_str() {
            "logit_bias" => !off && value.as_object().is_none_or(|m| !m.is_empty()),
            "modalities" => !off && value != &serde_json::json!(["text"]),
            "suffix" => !off && value != "",
            "echo" => !off && value != &Value::Bool(false),
            "best_of" => !off && value != 1,
            _ => false,
        };
        if refused {
            return Err(ApiError::unsupported(key, reason(key)));
        }
    }
    Ok(())
}

fn reason(key: &str) -> &'static str {
    match key {
        "logit_bias" => "logit bias is not applied yet",
        "modalities" => "lmwb generates text only",
        "suffix" => "fill-in-the-middle is not built yet",
        "echo" => "echoing the prompt is not built yet",
        "best_of" => "best_of is not built yet; use n",
        _ => "not built yet",
    }
}

pub(super) fn model_of(map: &Map<String, Value>) -> Result<String, ApiError> {
    match map.get("model") {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(ApiError::invalid("model", "`model` is empty")),
        None | Some(Value::Null) => Err(ApiError::invalid("model", "`model` is required")),
        Some(_) => Err(ApiError::invalid("model", "`model` must be a string")),
    }
}

fn in_range(name: &str, v: Option<f32>, lo: f32, hi: f32) -> Result<(), ApiError> {
    match v {
        Some(x) if !(x.is_finite() && (lo..=hi).contains(&x)) => Err(ApiError::invalid(
            name,
            format!("`{name}` = {x} is out of range: it must be between {lo} and {hi}"),
        )),
        _ => Ok(()),
    }
}

fn build(map: &Map<String, Value>, prompt: Prompt, defaults: &Defaults) -> Result<Valid, ApiError> {
    let k: Knobs = typed(&Value::Object(map.clone()))?;
    in_range("temperature", k.temperature, 0.0, 2.0)?;
    in_range("top_p", k.top_p, 0.0, 1.0)?;
    in_range("presence_penalty", k.presence_penalty, -2.0, 2.0)?;
    in_range("frequency_penalty", k.frequency_penalty, -2.0, 2.0)?;
    let d = &defaults.sampling;
    let sampling = SamplingParams {
        temperature: k.temperature.unwrap_or(d.temperature),
        top_p: k.top_p.unwrap_or(d.top_p),
        top_k: k.top_k.unwrap_or(d.top_k),
        min_p: k.min_p.unwrap_or(d.min_p),
        repeat_penalty: k.repeat_penalty.unwrap_or(d.repeat_penalty),
        repeat_last_n: d.repeat_last_n,
        presence_penalty: k.presence_penalty.unwrap_or(d.presence_penalty),
        frequency_penalty: k.frequency_penalty.unwrap_or(d.frequency_penalty),
        seed: k.seed.map(|s| s as u64).or(d.seed),
    };
    sampling
        .validate()
        .map_err(|e| ApiError::invalid(e.name, e.to_string()))?;
    let (limit_name, limit) = match (k.max_completion_tokens, k.max_tokens) {
        (Some(m), _) => ("max_completion_tokens", Some(m)),
        (None, m) => ("max_tokens", m),
    };
    let max_tokens = match limit {
        Some(0) => {
            return Err(ApiError::invalid(
                limit_name,
                format!("`{limit_name}` must be at least 1"),
            ))
        }
        Some(m) => Some(usize::try_from(m).unwrap_or(usize::MAX)),
        None => defaults.max_tokens,
    };
    let stop = match k.stop {
        None => vec![],
        Some(StopSpec::One(s)) => vec![s],
        Some(StopSpec::Many(v)) => v,
    };
    if stop.len() > 16 || stop.iter().any(String::is_empty) {
        return Err(ApiError::invalid(
            "stop",
            "`stop` takes at most 16 non-empty strings",
        ));
    }
    let n = k.n.unwrap_or(1);
    if n == 0 || n > defaults.max_n as u64 {
        return Err(ApiError::invalid(
            "n",
            format!("`n` must be between 1 and {}", defaults.max_n),
        ));
    }
    let stream = k.stream.unwrap_or(false);
    if k.stream_options.is_some() && !stream {
        return Err(ApiError::invalid(
            "stream_options",
            "`stream_options` is only allowed when `stream` is true",
        ));
    }
    let mut request = GenerateRequest::new(prompt);
    request.sampling = sampling;
    request.max_tokens = max_tokens;
    request.stop = stop;
    request.ignore_eos = k.ignore_eos.unwrap_or(false);
    Ok(Valid {
        model: model_of(map)?,
        request,
        n: n as usize,
        stream,
        include_usage: k.stream_options.and_then(|o| o.include_usage) == Some(true),
        tools: Default::default(),
    })
}

#[derive(Deserialize, Debug)]
struct InMessage {
    role: String,
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    tool_calls: Option<Vec<Value>>,
    #[serde(default)]
    tool_call_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize, Debug)]
struct Part {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

fn message(i: usize, m: InMessage) -> Result<ChatMessage, ApiError> {
    let role = match m.role.as_str() {
        "system" | "developer" => Role::System,
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "tool" => Role::Tool,
        other => {
            return Err(ApiError::invalid(
                format!("messages[{i}].role"),
                format!("unknown role `{other}`: use system, developer, user, assistant or tool"),
            ))
        }
    };
    let calls = m.tool_calls.unwrap_or_default();
    if !calls.is_empty() && role != Role::Assistant {
        return Err(ApiError::invalid(
            format!("messages[{i}].tool_calls"),
            format!("`messages[{i}].tool_calls` is only allowed on assistant messages"),
        ));
    }
    let tool_calls = super::tools::message_calls(&calls, &format!("messages[{i}].tool_calls"))?;
    if role == Role::Tool && m.tool_call_id.as_deref().is_none_or(str::is_empty) {
        return Err(ApiError::invalid(
            format!("messages[{i}].tool_call_id"),
            format!("`messages[{i}].tool_call_id` is required on a tool message: the id of the call it answers"),
        ));
    }
    let content = match m.content {
        Some(Content::Text(s)) => s,
        None if role == Role::Assistant => String::new(),
        None => {
            return Err(ApiError::invalid(
                format!("messages[{i}].content"),
                format!("`messages[{i}].content` is required"),
            ))
        }
        Some(Content::Parts(parts)) => {
            let mut text = String::new();
            for (j, p) in parts.into_iter().enumerate() {
                match (p.kind.as_str(), p.text) {
                    ("text", Some(t)) => text.push_str(&t),
                    (kind, _) => {
                        return Err(ApiError::unsupported(
                            &format!("messages[{i}].content[{j}].type"),
                            &format!("content parts of type `{kind}` are not accepted; lmwb reads text parts only"),
                        ))
                    }
                }
            }
            text
        }
    };
    let mut msg = ChatMessage::new(role, content);
    msg.tool_calls = tool_calls;
    if role == Role::Tool {
        msg.tool_call_id = m.tool_call_id;
        msg.name = m.name;
    }
    Ok(msg)
}

/// A tool message without a `name` gets the name of the call it answers.
fn name_tool_results(messages: &mut [ChatMessage]) {
    let mut names = std::collections::HashMap::new();
    for m in messages.iter_mut() {
        for c in &m.tool_calls {
            names.insert(c.id.clone(), c.name.clone());
        }
        if m.role == Role::Tool && m.name.is_none() {
            m.name = m
                .tool_call_id
                .as_ref()
                .and_then(|id| names.get(id))
                .cloned();
        }
    }
}

/// `POST /v1/chat/completions`.
pub fn chat_request(body: &Value, defaults: &Defaults) -> Result<Valid, ApiError> {
    let map = object(body)?;
    check_fields(map, &[COMMON, CHAT])?;
    model_of(map)?;
    let raw: Vec<InMessage> = match map.get("messages") {
        None | Some(Value::Null) => {
            return Err(ApiError::invalid("messages", "`messages` is required"))
        }
        Some(v) => {
            typed(&serde_json::json!({ "messages": v })).map(|w: MessagesOnly| w.messages)?
        }
    };
    if raw.is_empty() {
        return Err(ApiError::invalid(
            "messages",
            "`messages` is empty: send at least one message",
        ));
    }
    let mut messages = raw
        .into_iter()
        .enumerate()
        .map(|(i, m)| message(i, m))
        .collect::<Result<Vec<_>, _>>()?;
    name_tool_results(&mut messages);
    let tools = super::tools::openai(map)?;
    let prompt = Prompt::chat(messages);
    let mut valid = build(map, prompt, defaults)?;
    valid.tools = tools;
    valid.request.logprobs = structured::chat_logprobs(map)?;
    valid.request.constraint = structured::response_format(map)?;
    Ok(valid)
}

#[derive(Deserialize)]
struct MessagesOnly {
    messages: Vec<InMessage>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PromptSpec {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<u32>),
    TokenLists(Vec<Vec<u32>>),
}

#[derive(Deserialize)]
struct PromptOnly {
    prompt: PromptSpec,
}

/// `POST /v1/completions`.
pub fn completion_request(body: &Value, defaults: &Defaults) -> Result<Valid, ApiError> {
    let map = object(body)?;
    check_fields(map, &[COMMON, COMPLETION])?;
    model_of(map)?;
    let spec = match map.get("prompt") {
        None | Some(Value::Null) => {
            return Err(ApiError::invalid("prompt", "`prompt` is required"))
        }
        Some(v) => {
            typed::<PromptOnly>(&serde_json::json!({ "prompt": v }))
                .map_err(|_| {
                    ApiError::invalid(
                        "prompt",
                        "`prompt` must be a string, a list of one string, or a list of token ids",
                    )
                })?
                .prompt
        }
    };
    let prompt = match spec {
        PromptSpec::Text(s) => Prompt::Raw(s),
        PromptSpec::Texts(v) => Prompt::Raw(one(v)?),
        PromptSpec::Tokens(ids) => Prompt::Tokens(ids),
        PromptSpec::TokenLists(v) => Prompt::Tokens(one(v)?),
    };
    let empty = match &prompt {
        Prompt::Raw(s) => s.is_empty(),
        Prompt::Tokens(ids) => ids.is_empty(),
        Prompt::Chat { .. } => false,
    };
    if empty {
        return Err(ApiError::invalid("prompt", "`prompt` is empty"));
    }
    let mut valid = build(map, prompt, defaults)?;
    valid.request.logprobs = structured::completion_logprobs(map)?;
    Ok(valid)
}

/// The single prompt of a list (several prompts per request are not built yet).
fn one<T>(mut v: Vec<T>) -> Result<T, ApiError> {
    if v.len() == 1 {
        Ok(v.remove(0))
    } else {
        Err(ApiError::unsupported(
            "prompt",
            "several prompts in one request are not built yet; send one per request",
        ))
    }
}
