//! Tool calling at the API edge: tool definitions and `tool_choice` checked into a
//! [`ToolSpec`], the spec applied to an engine request for the model's format, and the
//! model's answer split into text and calls (whole, or as it streams).
//!
//! `tool_choice` `required` or a named function forces a call by ending the prompt with
//! the format's call opening (the name too for a named one), so the answer continues
//! inside a call. If the model still writes something that does not parse, the text is
//! returned as content with `finish_reason` `stop` (and the server logs it). The
//! arguments are free text the model writes; constraining them by the tool's `parameters`
//! schema belongs to the request (`GenerateRequest`) once constrained decoding exists:
//! [`ToolSpec::forced`] says which schema would apply.

use super::error::ApiError;
use crate::chat::tools::{ParsedCall, ToolCallParser, ToolEvent, ToolFormat};
use crate::engine::template::ToolCall;
use crate::engine::{GenerateRequest, Prompt};
use serde_json::{json, Map, Value};

/// Which calls the model may or must make.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum ToolChoice {
    /// No calls: tools are not offered and the answer is not parsed.
    None,
    /// The model decides (the default when tools are given).
    #[default]
    Auto,
    /// At least one call.
    Required,
    /// Exactly this function.
    Function(String),
}

/// The tools of a request, checked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ToolSpec {
    /// Definitions in the OpenAI shape `{"type": "function", "function": {name,
    /// description?, parameters?}}`, which is what chat templates read.
    pub tools: Vec<Value>,
    pub choice: ToolChoice,
    /// Several calls in one answer (`parallel_tool_calls`, default true); when false only
    /// the first call is returned.
    pub parallel: bool,
}

/// How a response reads the answer of a request with tools.
#[derive(Clone, Debug)]
pub struct Active {
    pub format: ToolFormat,
    /// The call opening the prompt ends with (empty when no call is forced): the answer
    /// continues it, so it is parsed with it.
    pub prefill: String,
    pub parallel: bool,
}

impl ToolSpec {
    /// Whether the answer is to be read for calls.
    pub fn active(&self) -> bool {
        !self.tools.is_empty() && self.choice != ToolChoice::None
    }

    /// The definition of the function a call is forced to, when one is (its
    /// `parameters` is the schema constrained decoding would apply to the arguments).
    pub fn forced(&self) -> Option<&Value> {
        let ToolChoice::Function(name) = &self.choice else {
            return None;
        };
        self.tools
            .iter()
            .find(|t| t["function"]["name"].as_str() == Some(name.as_str()))
    }

    /// Offer the tools in `req`'s chat prompt in the model's `format`, force a call when
    /// asked; returns how to read the answer (`None`: no tools in play).
    pub fn apply(&self, req: &mut GenerateRequest, format: ToolFormat) -> Option<Active> {
        if !self.active() {
            return None;
        }
        let Prompt::Chat { options, .. } = &mut req.prompt else {
            return None;
        };
        options.tools = self.tools.clone();
        let prefill = match &self.choice {
            ToolChoice::Required => format.forced_opening(None),
            ToolChoice::Function(name) => format.forced_opening(Some(name)),
            ToolChoice::Auto | ToolChoice::None => String::new(),
        };
        let one_call = matches!(self.choice, ToolChoice::Function(_)) || !self.parallel;
        if let (true, Some(close)) = (one_call && !prefill.is_empty(), format.close()) {
            req.stop.push(close.to_string());
        }
        options.prefill = prefill.clone();
        Some(Active {
            format,
            prefill,
            parallel: self.parallel,
        })
    }
}

/// The name rule OpenAI applies to function names.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn invalid(field: &str, msg: impl std::fmt::Display) -> ApiError {
    ApiError::invalid(field, format!("`{field}` {msg}"))
}

/// Refuse keys of `map` (at `at`) outside `allowed`.
fn only(map: &Map<String, Value>, at: &str, allowed: &[&str]) -> Result<(), ApiError> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(invalid(
            &format!("{at}.{k}"),
            format!("is not a known field; a tool takes {}", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

/// One function definition `{name, description?, parameters?, strict?}` at `at`.
fn function(f: &Value, at: &str) -> Result<Value, ApiError> {
    let Some(map) = f.as_object() else {
        return Err(invalid(
            at,
            "must be an object with `name`, `description` and `parameters`",
        ));
    };
    only(map, at, &["name", "description", "parameters", "strict"])?;
    let name = match map.get("name") {
        Some(Value::String(n)) if valid_name(n) => n.clone(),
        Some(Value::String(n)) => {
            return Err(invalid(
                &format!("{at}.name"),
                format!(
                    "= {n:?} is not a valid function name: use 1 to 64 letters, digits, `_` or `-`"
                ),
            ))
        }
        None | Some(Value::Null) => return Err(invalid(&format!("{at}.name"), "is required")),
        Some(_) => return Err(invalid(&format!("{at}.name"), "must be a string")),
    };
    let mut out = json!({ "name": name });
    match map.get("description") {
        None | Some(Value::Null) => {}
        Some(d @ Value::String(_)) => out["description"] = d.clone(),
        Some(_) => return Err(invalid(&format!("{at}.description"), "must be a string")),
    }
    match map.get("parameters") {
        None | Some(Value::Null) => {}
        Some(p @ Value::Object(_)) => out["parameters"] = p.clone(),
        Some(_) => {
            return Err(invalid(
                &format!("{at}.parameters"),
                "must be a JSON Schema object, e.g. {\"type\": \"object\", \"properties\": {}}",
            ))
        }
    }
    if map
        .get("strict")
        .is_some_and(|s| !(s.is_boolean() || s.is_null()))
    {
        return Err(invalid(&format!("{at}.strict"), "must be true or false"));
    }
    Ok(out)
}

/// OpenAI- (and Ollama-) style `tools`: a list of `{"type": "function", "function": {...}}`.
pub fn definitions(v: Option<&Value>) -> Result<Vec<Value>, ApiError> {
    let list = match v {
        None | Some(Value::Null) => return Ok(vec![]),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(invalid("tools", "must be a list of function tools")),
    };
    let mut out: Vec<Value> = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        let at = format!("tools[{i}]");
        let Some(map) = t.as_object() else {
            return Err(invalid(
                &at,
                "must be an object {\"type\": \"function\", \"function\": {...}}",
            ));
        };
        only(map, &at, &["type", "function"])?;
        match map.get("type").and_then(Value::as_str) {
            Some("function") => {}
            Some(other) => {
                return Err(ApiError::unsupported(
                    &format!("{at}.type"),
                    &format!(
                    "tools of type `{other}` are not supported; lmwb calls `function` tools only"
                ),
                ))
            }
            None => {
                return Err(invalid(
                    &format!("{at}.type"),
                    "is required and must be \"function\"",
                ))
            }
        }
        let f = function(
            map.get("function").unwrap_or(&Value::Null),
            &format!("{at}.function"),
        )?;
        let name = f["name"].clone();
        if out.iter().any(|o| o["function"]["name"] == name) {
            return Err(invalid(
                &format!("{at}.function.name"),
                format!("= {name} repeats an earlier tool's name; names must be unique"),
            ));
        }
        out.push(json!({"type": "function", "function": f}));
    }
    Ok(out)
}

/// Whether `tools` defines a function called `name`.
pub fn defines(tools: &[Value], name: &str) -> bool {
    tools.iter().any(|t| t["function"]["name"] == name)
}

/// A name `tool_choice` refers to must be one of the tools.
pub fn known(tools: &[Value], name: &str, field: &str) -> Result<(), ApiError> {
    if defines(tools, name) {
        return Ok(());
    }
    let names: Vec<&str> = tools
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    Err(invalid(
        field,
        format!(
            "= {name:?} is not one of the tools given ({})",
            names.join(", ")
        ),
    ))
}

/// OpenAI's `tools`, `tool_choice` and `parallel_tool_calls`.
pub fn openai(map: &Map<String, Value>) -> Result<ToolSpec, ApiError> {
    let tools = definitions(map.get("tools"))?;
    let choice = match map.get("tool_choice") {
        None | Some(Value::Null) => ToolChoice::Auto,
        Some(Value::String(s)) => match s.as_str() {
            "none" => ToolChoice::None,
            "auto" => ToolChoice::Auto,
            "required" => ToolChoice::Required,
            other => {
                return Err(invalid(
                    "tool_choice",
                    format!("= {other:?} is not valid: use \"none\", \"auto\", \"required\" or {{\"type\": \"function\", \"function\": {{\"name\": ...}}}}"),
                ))
            }
        },
        Some(Value::Object(o)) => {
            if o.get("type").and_then(Value::as_str) != Some("function") {
                return Err(invalid(
                    "tool_choice.type",
                    "must be \"function\" (other kinds of tool choice are not supported)",
                ));
            }
            match o.get("function").and_then(|f| f.get("name")).and_then(Value::as_str) {
                Some(name) => ToolChoice::Function(name.to_string()),
                None => return Err(invalid("tool_choice.function.name", "is required")),
            }
        }
        Some(_) => return Err(invalid("tool_choice", "must be a string or an object")),
    };
    if tools.is_empty() && matches!(choice, ToolChoice::Required | ToolChoice::Function(_)) {
        return Err(invalid(
            "tool_choice",
            "asks for a tool call but `tools` is empty; send the tools",
        ));
    }
    if let ToolChoice::Function(name) = &choice {
        known(&tools, name, "tool_choice.function.name")?;
    }
    let parallel = match map.get("parallel_tool_calls") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid("parallel_tool_calls", "must be true or false")),
    };
    Ok(ToolSpec {
        tools,
        choice,
        parallel,
    })
}

/// An assistant message's `tool_calls` at `at` (OpenAI: arguments as a JSON string;
/// Ollama: as an object; either is read).
pub fn message_calls(calls: &[Value], at: &str) -> Result<Vec<ToolCall>, ApiError> {
    calls
        .iter()
        .enumerate()
        .map(|(j, c)| {
            let at = format!("{at}[{j}]");
            let f = c.get("function").filter(|f| f.is_object()).ok_or_else(|| {
                invalid(
                    &format!("{at}.function"),
                    "is required: {\"name\": ..., \"arguments\": ...}",
                )
            })?;
            let name = f
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty());
            let name =
                name.ok_or_else(|| invalid(&format!("{at}.function.name"), "is required"))?;
            let field = format!("{at}.function.arguments");
            let arguments = match f.get("arguments") {
                None | Some(Value::Null) => json!({}),
                Some(Value::String(s)) if s.trim().is_empty() => json!({}),
                Some(Value::String(s)) => serde_json::from_str(s).map_err(|e| {
                    invalid(
                        &field,
                        format!("must be a JSON object written as a string ({e})"),
                    )
                })?,
                Some(v) => v.clone(),
            };
            if !arguments.is_object() {
                return Err(invalid(&field, "must be a JSON object"));
            }
            let id = match c.get("id").and_then(Value::as_str) {
                Some(id) => id.to_string(),
                None => call_id(),
            };
            Ok(ToolCall {
                id,
                name: name.to_string(),
                arguments,
            })
        })
        .collect()
}

/// A fresh call id, `call_` and 24 hex digits.
pub fn call_id() -> String {
    format!(
        "call_{:016x}{:08x}",
        rand::random::<u64>(),
        rand::random::<u32>()
    )
}

/// An answer read for calls.
#[derive(Debug, Default)]
pub struct Answer {
    pub text: String,
    pub calls: Vec<ParsedCall>,
}

impl Answer {
    /// The text content, or `None` when the answer is calls and nothing else.
    pub fn content(&self) -> Option<&str> {
        match self.text.trim() {
            "" if !self.calls.is_empty() => None,
            t if !self.calls.is_empty() => Some(t),
            _ => Some(&self.text),
        }
    }
}

/// Read a whole answer (the generated text, after the prompt's prefill).
pub fn read(active: &Active, generated: &str) -> Answer {
    let mut s = ToolStream::new(active);
    let mut events = s.push(generated);
    events.extend(s.finish());
    let mut answer = Answer::default();
    for e in events {
        match e {
            ToolEvent::Text(t) => answer.text.push_str(&t),
            ToolEvent::Call(c) => answer.calls.push(c),
        }
    }
    answer
}

/// Reads an answer as it streams: the prefill goes in first; text that is only whitespace
/// is held until more text follows (and dropped when the answer turns out to be calls);
/// with `parallel` off, calls after the first are dropped.
pub struct ToolStream {
    parser: ToolCallParser,
    space: String,
    parallel: bool,
    calls: usize,
    forced: bool,
    primed: Option<String>,
}

impl ToolStream {
    pub fn new(active: &Active) -> ToolStream {
        ToolStream {
            parser: ToolCallParser::new(active.format),
            space: String::new(),
            parallel: active.parallel,
            calls: 0,
            forced: !active.prefill.is_empty(),
            primed: Some(active.prefill.clone()),
        }
    }

    /// How many calls have come out.
    pub fn calls(&self) -> usize {
        self.calls
    }

    pub fn push(&mut self, text: &str) -> Vec<ToolEvent> {
        let mut events = match self.primed.take() {
            Some(p) if !p.is_empty() => self.parser.push(&p),
            _ => vec![],
        };
        events.extend(self.parser.push(text));
        self.filter(events, false)
    }

    pub fn finish(&mut self) -> Vec<ToolEvent> {
        let mut events = match self.primed.take() {
            Some(p) if !p.is_empty() => self.parser.push(&p),
            _ => vec![],
        };
        events.extend(self.parser.finish());
        if self.forced && self.calls == 0 && !events.iter().any(|e| matches!(e, ToolEvent::Call(_)))
        {
            tracing::warn!("a forced tool call did not parse; the answer is returned as text");
        }
        self.filter(events, true)
    }

    fn filter(&mut self, events: Vec<ToolEvent>, end: bool) -> Vec<ToolEvent> {
        let mut out = Vec::new();
        for e in events {
            match e {
                ToolEvent::Text(t) if t.trim().is_empty() => self.space.push_str(&t),
                ToolEvent::Text(t) => {
                    let mut text = std::mem::take(&mut self.space);
                    text.push_str(&t);
                    out.push(ToolEvent::Text(text));
                }
                ToolEvent::Call(c) => {
                    self.space.clear();
                    self.calls += 1;
                    if self.parallel || self.calls == 1 {
                        out.push(ToolEvent::Call(c));
                    }
                }
            }
        }
        if end && self.calls == 0 && !self.space.is_empty() {
            out.push(ToolEvent::Text(std::mem::take(&mut self.space)));
        }
        out
    }
}
