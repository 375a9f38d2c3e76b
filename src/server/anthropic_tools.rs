//! Tool use in Anthropic's Messages API: `tools` (`name`, `description`, `input_schema`)
//! and `tool_choice` (`auto`, `any`, `tool`, `none`) read into a [`ToolSpec`]; message
//! content blocks (`text`, `tool_use` from the assistant, `tool_result` from the user)
//! turned into chat messages; calls given back as `tool_use` blocks.

use super::error::ApiError;
use super::tools::{self, ToolChoice, ToolSpec};
use crate::chat::tools::ParsedCall;
use crate::engine::template::{ChatMessage, Role, ToolCall};
use serde_json::{json, Map, Value};

fn invalid(field: &str, msg: impl std::fmt::Display) -> ApiError {
    ApiError::invalid(field, format!("{field}: {msg}"))
}

/// `tools` and `tool_choice` of a Messages request.
pub fn spec(map: &Map<String, Value>) -> Result<ToolSpec, ApiError> {
    let list = match map.get("tools") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(list)) => list.clone(),
        Some(_) => return Err(invalid("tools", "must be a list of tools")),
    };
    let mut openai = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        let at = format!("tools.{i}");
        let Some(t) = t.as_object() else {
            return Err(invalid(
                &at,
                "must be an object with `name` and `input_schema`",
            ));
        };
        match t.get("type").and_then(Value::as_str) {
            None | Some("custom") => {}
            Some(other) => {
                return Err(invalid(
                    &format!("{at}.type"),
                    format!("server tools (`{other}`) are not supported; define custom tools with `name` and `input_schema`"),
                ))
            }
        }
        if let Some(k) = t.keys().find(|k| {
            ![
                "type",
                "name",
                "description",
                "input_schema",
                "cache_control",
            ]
            .contains(&k.as_str())
        }) {
            return Err(invalid(
                &format!("{at}.{k}"),
                "extra inputs are not permitted",
            ));
        }
        let schema = match t.get("input_schema") {
            Some(s @ Value::Object(_)) => s.clone(),
            _ => {
                return Err(invalid(
                    &format!("{at}.input_schema"),
                    "is required: a JSON Schema object, e.g. {\"type\": \"object\", \"properties\": {}}",
                ))
            }
        };
        let mut f =
            json!({"name": t.get("name").cloned().unwrap_or(Value::Null), "parameters": schema});
        if let Some(d) = t.get("description") {
            f["description"] = d.clone();
        }
        openai.push(json!({"type": "function", "function": f}));
    }
    // The OpenAI checks name the field the OpenAI way; say it Anthropic's way.
    let tools = tools::definitions(Some(&Value::Array(openai))).map_err(|mut e| {
        if let Some(p) = e.param.take() {
            let field = p
                .replace(".function.parameters", ".input_schema")
                .replace(".function.", ".");
            let field = field.replacen("tools[", "tools.", 1).replacen(']', "", 1);
            e.message = e.message.replace(&format!("`{p}`"), &field);
            e.param = Some(field);
        }
        e
    })?;
    let (choice, parallel) = match map.get("tool_choice") {
        None | Some(Value::Null) => (ToolChoice::Auto, true),
        Some(Value::Object(c)) => {
            let parallel = match c.get("disable_parallel_tool_use") {
                None | Some(Value::Null) => true,
                Some(Value::Bool(b)) => !b,
                Some(_) => {
                    return Err(invalid(
                        "tool_choice.disable_parallel_tool_use",
                        "must be true or false",
                    ))
                }
            };
            let choice = match c.get("type").and_then(Value::as_str) {
                Some("auto") => ToolChoice::Auto,
                Some("any") => ToolChoice::Required,
                Some("none") => ToolChoice::None,
                Some("tool") => match c.get("name").and_then(Value::as_str) {
                    Some(n) => {
                        tools::known(&tools, n, "tool_choice.name")?;
                        ToolChoice::Function(n.to_string())
                    }
                    None => {
                        return Err(invalid(
                            "tool_choice.name",
                            "is required when type is `tool`",
                        ))
                    }
                },
                _ => {
                    return Err(invalid(
                        "tool_choice.type",
                        "must be one of auto, any, tool, none",
                    ))
                }
            };
            (choice, parallel)
        }
        Some(_) => {
            return Err(invalid(
                "tool_choice",
                "must be an object such as {\"type\": \"auto\"}",
            ))
        }
    };
    if tools.is_empty() && matches!(choice, ToolChoice::Required | ToolChoice::Function(_)) {
        return Err(invalid(
            "tool_choice",
            "asks for a tool call but `tools` is empty",
        ));
    }
    Ok(ToolSpec {
        tools,
        choice,
        parallel,
    })
}

/// The text of a `tool_result`'s `content` (a string or text blocks).
fn result_text(v: Option<&Value>, at: &str) -> Result<String, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .enumerate()
            .map(|(k, b)| match (b["type"].as_str(), b["text"].as_str()) {
                (Some("text"), Some(t)) => Ok(t.to_string()),
                _ => Err(invalid(
                    &format!("{at}.{k}"),
                    "only text blocks are supported in a tool result",
                )),
            })
            .collect(),
        Some(_) => Err(invalid(at, "must be a string or a list of text blocks")),
    }
}

/// One message's content (a string or blocks) as chat messages: text and `tool_use`
/// blocks make one assistant message; `tool_result` blocks become `tool` messages, any
/// text beside them a user message after them.
pub fn messages(role: Role, content: &Value, at: &str) -> Result<Vec<ChatMessage>, ApiError> {
    let blocks = match content {
        Value::String(s) => return Ok(vec![ChatMessage::new(role, s.clone())]),
        Value::Array(b) => b,
        _ => return Err(invalid(at, "must be a string or a list of content blocks")),
    };
    let (mut text, mut calls, mut results) = (String::new(), Vec::new(), Vec::new());
    for (j, b) in blocks.iter().enumerate() {
        let at = format!("{at}.{j}");
        match b["type"].as_str().unwrap_or_default() {
            "text" => match b["text"].as_str() {
                Some(t) => text.push_str(t),
                None => return Err(invalid(&format!("{at}.text"), "is required")),
            },
            "tool_use" if role == Role::Assistant => {
                let name = b["name"].as_str().filter(|n| !n.is_empty());
                let name = name.ok_or_else(|| invalid(&format!("{at}.name"), "is required"))?;
                let input = b.get("input").cloned().unwrap_or_else(|| json!({}));
                if !input.is_object() {
                    return Err(invalid(&format!("{at}.input"), "must be an object"));
                }
                let id = b["id"].as_str().map_or_else(tools::call_id, str::to_string);
                calls.push(ToolCall {
                    id,
                    name: name.to_string(),
                    arguments: input,
                });
            }
            "tool_result" if role == Role::User => {
                let id = b["tool_use_id"].as_str().filter(|i| !i.is_empty());
                let id = id.ok_or_else(|| invalid(&format!("{at}.tool_use_id"), "is required"))?;
                let mut out = result_text(b.get("content"), &format!("{at}.content"))?;
                if b["is_error"] == json!(true) {
                    out = format!("Error: {out}");
                }
                results.push(ChatMessage::tool_result(out, Some(id.to_string())));
            }
            kind => {
                return Err(invalid(
                    &format!("{at}.type"),
                    format!("content blocks of type `{kind}` are not supported here; send text, tool_use (assistant) or tool_result (user) blocks"),
                ))
            }
        }
    }
    if role == Role::Assistant {
        let mut m = ChatMessage::assistant(text);
        m.tool_calls = calls;
        return Ok(vec![m]);
    }
    if results.is_empty() || !text.is_empty() {
        results.push(ChatMessage::new(role, text));
    }
    Ok(results)
}

/// A call as a `tool_use` block.
pub fn tool_use(c: &ParsedCall) -> Value {
    json!({"type": "tool_use", "id": format!("toolu_{}", &tools::call_id()[5..]), "name": c.name, "input": c.arguments})
}
