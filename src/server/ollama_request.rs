//! Ollama request bodies (`/api/chat`, `/api/generate`), checked at the edge and turned into
//! engine requests: every field lmwb cannot honour is refused with a 400, never ignored.

use super::error::{typed, ApiError};
use super::openai::Defaults;
use super::structured;
use crate::engine::template::{ChatMessage, Role};
use crate::engine::{GenerateRequest, Prompt};
use serde::Deserialize;
use serde_json::{Map, Value};

/// A checked Ollama request.
pub struct Valid {
    pub model: String,
    /// `None`: nothing to generate (an empty prompt only loads the model, as in Ollama).
    pub request: Option<GenerateRequest>,
    pub stream: bool,
    /// Send the model's reasoning back (`think` not `false`).
    pub think: bool,
    /// `/api/chat`'s `tools` (the model may call them; Ollama has no `tool_choice`).
    pub tools: super::tools::ToolSpec,
}

const CHAT: &[&str] = &[
    "model",
    "messages",
    "options",
    "stream",
    "think",
    "keep_alive",
    "tools",
    "format",
    "logprobs",
    "top_logprobs",
];
const GENERATE: &[&str] = &[
    "model",
    "prompt",
    "system",
    "raw",
    "options",
    "stream",
    "think",
    "keep_alive",
    "suffix",
    "images",
    "format",
    "template",
    "context",
    "logprobs",
    "top_logprobs",
];
const OPTIONS: &[&str] = &[
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "repeat_penalty",
    "repeat_last_n",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "num_predict",
    "stop",
    "num_ctx",
];

#[derive(Deserialize, Default)]
struct Options {
    temperature: Option<f32>,
    top_p: Option<f32>,
    top_k: Option<i64>,
    min_p: Option<f32>,
    repeat_penalty: Option<f32>,
    repeat_last_n: Option<i64>,
    presence_penalty: Option<f32>,
    frequency_penalty: Option<f32>,
    seed: Option<i64>,
    num_predict: Option<i64>,
    stop: Option<Stop>,
    num_ctx: Option<i64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct InMessage {
    role: String,
    #[serde(default)]
    content: Option<String>,
}

fn object(body: &Value) -> Result<&Map<String, Value>, ApiError> {
    body.as_object()
        .ok_or_else(|| ApiError::bad_request("the request body must be a JSON object"))
}

fn refuse(field: &str, why: &str) -> ApiError {
    ApiError::unsupported(field, why)
}

/// Refuse unknown keys and known ones set to something lmwb does not do.
fn check(map: &Map<String, Value>, allowed: &[&str]) -> Result<(), ApiError> {
    for (key, v) in map {
        if !allowed.contains(&key.as_str()) {
            return Err(ApiError::invalid(
                key.clone(),
                format!("unknown field `{key}` in the request"),
            ));
        }
        let on = !v.is_null();
        let empty_str = v.as_str() == Some("");
        let empty_arr = v.as_array().is_some_and(Vec::is_empty);
        let why = match key.as_str() {
            "images" if on && !empty_arr => "lmwb takes text only",
            "suffix" if on && !empty_str => "fill-in-the-middle is not built yet",
            "template" if on && !empty_str => "the model's own chat template is always used",
            "context" if on && !empty_arr => "the deprecated `context` token list is not supported; send the text again (lmwb reuses its cached prefix)",
            "keep_alive" => match super::keep::Keep::from_json(v) {
                Ok(_) => continue,
                Err(e) => return Err(ApiError::invalid(key.clone(), format!("`keep_alive` {e}"))),
            },
            "think" if !(v.is_null() || v.is_boolean()) => {
                "a reasoning level cannot be set; send true or false"
            }
            _ => continue,
        };
        return Err(refuse(key, why));
    }
    Ok(())
}

fn model_of(map: &Map<String, Value>) -> Result<String, ApiError> {
    match map.get("model") {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(ApiError::invalid("model", "`model` is empty")),
        None | Some(Value::Null) => Err(ApiError::invalid("model", "`model` is required")),
        Some(_) => Err(ApiError::invalid("model", "`model` must be a string")),
    }
}

fn bool_of(map: &Map<String, Value>, key: &str, default: bool) -> Result<bool, ApiError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ApiError::invalid(key, format!("`{key}` must be a boolean"))),
    }
}

fn str_of(map: &Map<String, Value>, key: &str) -> Result<String, ApiError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(ApiError::invalid(key, format!("`{key}` must be a string"))),
    }
}

/// `options` on top of the server's defaults.
fn apply_options(
    map: &Map<String, Value>,
    req: &mut GenerateRequest,
    defaults: &Defaults,
) -> Result<(), ApiError> {
    req.sampling = defaults.sampling.clone();
    req.max_tokens = defaults.max_tokens;
    let raw = match map.get("options") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(o)) => o,
        Some(_) => return Err(ApiError::invalid("options", "`options` must be an object")),
    };
    if let Some(key) = raw.keys().find(|k| !OPTIONS.contains(&k.as_str())) {
        return Err(refuse(
            &format!("options.{key}"),
            &format!("lmwb honours only the options {}", OPTIONS.join(", ")),
        ));
    }
    let o: Options = typed(&Value::Object(raw.clone())).map_err(|mut e| {
        e.param = e.param.map(|p| format!("options.{p}"));
        e
    })?;
    let s = &mut req.sampling;
    let nonneg = |name: &str, v: i64| {
        usize::try_from(v).map_err(|_| {
            ApiError::invalid(
                format!("options.{name}"),
                format!("`options.{name}` must not be negative"),
            )
        })
    };
    s.temperature = o.temperature.unwrap_or(s.temperature);
    s.top_p = o.top_p.unwrap_or(s.top_p);
    s.min_p = o.min_p.unwrap_or(s.min_p);
    s.repeat_penalty = o.repeat_penalty.unwrap_or(s.repeat_penalty);
    s.presence_penalty = o.presence_penalty.unwrap_or(s.presence_penalty);
    s.frequency_penalty = o.frequency_penalty.unwrap_or(s.frequency_penalty);
    if let Some(k) = o.top_k {
        s.top_k = nonneg("top_k", k)?;
    }
    match o.repeat_last_n {
        // Ollama: -1 looks back over the whole context.
        Some(-1) => s.repeat_last_n = usize::MAX,
        Some(n) => s.repeat_last_n = nonneg("repeat_last_n", n)?,
        None => {}
    }
    // Ollama's seed -1 (and no seed) is a random one.
    s.seed = match o.seed {
        Some(x) if x >= 0 => Some(x as u64),
        Some(_) => None,
        None => s.seed,
    };
    s.validate()
        .map_err(|e| ApiError::invalid(format!("options.{}", e.name), e.to_string()))?;
    match o.num_predict {
        // -1: until EOS; -2: until the context is full.
        Some(n) if n < 0 => req.max_tokens = None,
        Some(0) => {
            return Err(ApiError::invalid(
                "options.num_predict",
                "`options.num_predict` must be at least 1 (or -1 for no limit)",
            ))
        }
        Some(n) => req.max_tokens = Some(n as usize),
        None => {}
    }
    req.stop = match o.stop {
        None => vec![],
        Some(Stop::One(s)) => vec![s],
        Some(Stop::Many(v)) => v,
    };
    req.stop.retain(|s| !s.is_empty());
    // A smaller context than the model's: a window of that many KV entries (the first
    // tokens kept, the rest rotating, as Ollama shifts its context); the handler drops a
    // window as large as the model's context.
    if let Some(n) = o.num_ctx {
        req.max_kv_size = Some(nonneg("num_ctx", n)?);
    }
    Ok(())
}

/// `POST /api/chat`.
pub fn chat(body: &Value, defaults: &Defaults) -> Result<Valid, ApiError> {
    let map = object(body)?;
    check(map, CHAT)?;
    let model = model_of(map)?;
    let raw: Vec<Value> = match map.get("messages") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(a)) => a.clone(),
        Some(_) => return Err(ApiError::invalid("messages", "`messages` must be an array")),
    };
    let mut messages = Vec::with_capacity(raw.len());
    for (i, m) in raw.iter().enumerate() {
        let at = format!("messages[{i}]");
        let obj = m
            .as_object()
            .ok_or_else(|| ApiError::invalid(&at, format!("`{at}` must be an object")))?;
        for (k, v) in obj {
            let empty = v.is_null() || v.as_array().is_some_and(Vec::is_empty);
            match k.as_str() {
                "role" | "content" => {}
                // Earlier reasoning is dropped, as chat templates do.
                "thinking" => {}
                "images" if !empty => {
                    return Err(refuse(&format!("{at}.images"), "lmwb takes text only"))
                }
                "images" | "tool_calls" | "tool_name" => {}
                _ => {
                    return Err(ApiError::invalid(
                        format!("{at}.{k}"),
                        format!("unknown field `{k}` in `{at}`"),
                    ))
                }
            }
        }
        let m: InMessage = typed(m).map_err(|mut e| {
            e.param = e.param.map(|p| format!("{at}.{p}"));
            e
        })?;
        let role = match m.role.as_str() {
            "system" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "tool" => Role::Tool,
            other => {
                return Err(ApiError::invalid(
                    format!("{at}.role"),
                    format!("unknown role `{other}`: use system, user, assistant or tool"),
                ))
            }
        };
        let mut msg = ChatMessage::new(role, m.content.unwrap_or_default());
        let calls = match obj.get("tool_calls") {
            None | Some(Value::Null) => None,
            Some(Value::Array(calls)) => Some(calls),
            Some(_) => {
                return Err(ApiError::invalid(
                    format!("{at}.tool_calls"),
                    format!("`{at}.tool_calls` must be a list of calls"),
                ))
            }
        };
        if let Some(calls) = calls {
            if !calls.is_empty() && role != Role::Assistant {
                return Err(ApiError::invalid(
                    format!("{at}.tool_calls"),
                    format!("`{at}.tool_calls` is only allowed on assistant messages"),
                ));
            }
            msg.tool_calls = super::tools::message_calls(calls, &format!("{at}.tool_calls"))?;
        }
        match obj.get("tool_name") {
            None | Some(Value::Null) => {}
            Some(Value::String(n)) if role == Role::Tool => msg.name = Some(n.clone()),
            Some(_) => {
                return Err(ApiError::invalid(
                    format!("{at}.tool_name"),
                    format!("`{at}.tool_name` must be a string, on a tool message"),
                ))
            }
        }
        messages.push(msg);
    }
    let request = if messages.is_empty() {
        None
    } else {
        let mut req = GenerateRequest::new(Prompt::Chat {
            messages,
            template: None,
            options: Default::default(),
        });
        apply_options(map, &mut req, defaults)?;
        req.logprobs = structured::chat_logprobs(map)?;
        req.constraint = structured::ollama_format(map)?;
        Some(req)
    };
    Ok(Valid {
        model,
        request,
        stream: bool_of(map, "stream", true)?,
        think: bool_of(map, "think", true)?,
        tools: super::tools::ToolSpec {
            tools: super::tools::definitions(map.get("tools"))?,
            choice: super::tools::ToolChoice::Auto,
            parallel: true,
        },
    })
}

/// `POST /api/generate`.
pub fn generate(body: &Value, defaults: &Defaults) -> Result<Valid, ApiError> {
    let map = object(body)?;
    check(map, GENERATE)?;
    let model = model_of(map)?;
    let prompt = str_of(map, "prompt")?;
    let system = str_of(map, "system")?;
    let raw = bool_of(map, "raw", false)?;
    if raw && !system.is_empty() {
        return Err(ApiError::invalid(
            "system",
            "`system` cannot be used with `raw`: a raw prompt is sent as it is",
        ));
    }
    let request = if prompt.is_empty() {
        None
    } else {
        let p = if raw {
            Prompt::Raw(prompt)
        } else {
            let mut messages = Vec::new();
            if !system.is_empty() {
                messages.push(ChatMessage::system(system));
            }
            messages.push(ChatMessage::user(prompt));
            Prompt::Chat {
                messages,
                template: None,
                options: Default::default(),
            }
        };
        let mut req = GenerateRequest::new(p);
        apply_options(map, &mut req, defaults)?;
        req.logprobs = structured::chat_logprobs(map)?;
        req.constraint = structured::ollama_format(map)?;
        Some(req)
    };
    Ok(Valid {
        model,
        request,
        stream: bool_of(map, "stream", true)?,
        think: bool_of(map, "think", true)?,
        tools: Default::default(),
    })
}
