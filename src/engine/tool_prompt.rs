//! Tools for a chat template that knows nothing of them (its source never reads `tools`,
//! e.g. SmolLM2's plain ChatML): the definitions go into the system prompt in the Hermes
//! format Qwen 2.5 uses, assistant calls become `<tool_call>` text and tool results become
//! a user turn of `<tool_response>` blocks, so the model reads the whole exchange as text
//! and is asked to answer with `<tool_call>{"name": …, "arguments": …}</tool_call>`.

use super::template::{py_json, ChatMessage, Role};
use serde_json::Value;

/// Whether a template without tool support needs the conversation rewritten.
pub(crate) fn needed(messages: &[ChatMessage], tools: &[Value]) -> bool {
    !tools.is_empty()
        || messages
            .iter()
            .any(|m| m.role == Role::Tool || !m.tool_calls.is_empty())
}

/// The system-prompt block offering `tools` (empty when there are none).
pub fn system_block(tools: &[Value]) -> String {
    if tools.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n\
         You are provided with function signatures within <tools></tools> XML tags:\n<tools>",
    );
    for t in tools {
        s.push('\n');
        s.push_str(&py_json(t));
    }
    s.push_str(
        "\n</tools>\n\nFor each function call, return a json object with function name and \
         arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n\
         {\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>",
    );
    s
}

/// One call as the Hermes format writes it.
pub fn call_text(name: &str, arguments: &Value) -> String {
    let name = py_json(&Value::from(name));
    format!(
        "<tool_call>\n{{\"name\": {name}, \"arguments\": {}}}\n</tool_call>",
        py_json(arguments)
    )
}

/// `messages` with `tools` in the system prompt and every tool call and result as text.
pub(crate) fn inline(messages: &[ChatMessage], tools: &[Value]) -> Vec<ChatMessage> {
    let mut out: Vec<ChatMessage> = Vec::with_capacity(messages.len() + 1);
    let block = system_block(tools);
    let mut rest = messages;
    if !block.is_empty() {
        match messages.first() {
            Some(m) if m.role == Role::System => {
                let text = if m.content.is_empty() {
                    block
                } else {
                    format!("{}\n\n{block}", m.content)
                };
                out.push(ChatMessage::system(text));
                rest = &messages[1..];
            }
            _ => out.push(ChatMessage::system(block)),
        }
    }
    for m in rest {
        match m.role {
            Role::Tool => {
                let text = format!("<tool_response>\n{}\n</tool_response>", m.content);
                match out.last_mut() {
                    Some(prev)
                        if prev.role == Role::User
                            && prev.content.ends_with("</tool_response>") =>
                    {
                        prev.content.push('\n');
                        prev.content.push_str(&text);
                    }
                    _ => out.push(ChatMessage::user(text)),
                }
            }
            Role::Assistant if !m.tool_calls.is_empty() => {
                let mut parts: Vec<String> = Vec::new();
                if !m.content.is_empty() {
                    parts.push(m.content.clone());
                }
                parts.extend(
                    m.tool_calls
                        .iter()
                        .map(|c| call_text(&c.name, &c.arguments)),
                );
                out.push(ChatMessage::assistant(parts.join("\n")));
            }
            _ => out.push(ChatMessage::new(m.role, m.content.clone())),
        }
    }
    out
}

#[cfg(test)]
#[path = "tool_prompt_tests.rs"]
mod tests;
