//! Tool calls in model output, in the format the model's chat template teaches it:
//!
//! - Hermes / Qwen: `<tool_call>\n{"name": …, "arguments": {…}}\n</tool_call>`, one or
//!   several. Also what lmwb asks for when a template has no tool support (see
//!   [`crate::engine::tool_prompt`]).
//! - Llama 3.x: a JSON object `{"name": …, "parameters": {…}}` (or `"arguments"`) as the
//!   whole answer, optionally after `<|python_tag|>`; several separated by `;`.
//! - Mistral: `[TOOL_CALLS] [{"name": …, "arguments": {…}}, …]` (the list alone as the
//!   whole answer too, since `[TOOL_CALLS]` is a control token the detokenizer drops), or
//!   the newer `[TOOL_CALLS]name[ARGS]{…}`.
//!
//! [`ToolCallParser`] works on a stream cut anywhere: text before a call streams as text,
//! text that may open a call is held back until the next push tells, and a complete call
//! comes out whole. A call whose JSON does not parse comes back as text (and is logged);
//! nothing here fails.

use serde_json::Value;

/// How a model writes tool calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolFormat {
    Hermes,
    Llama3Json,
    Mistral,
}

const HERMES_OPEN: &str = "<tool_call>";
const HERMES_CLOSE: &str = "</tool_call>";
const PYTHON_TAG: &str = "<|python_tag|>";
const MISTRAL_OPEN: &str = "[TOOL_CALLS]";
const MISTRAL_ARGS: &str = "[ARGS]";

impl ToolFormat {
    /// The format a chat template's source teaches; Hermes when it shows none (lmwb then
    /// describes the tools in the system prompt in the Hermes format).
    pub fn detect(template: Option<&str>) -> ToolFormat {
        let src = template.unwrap_or_default();
        if src.contains(MISTRAL_OPEN) {
            ToolFormat::Mistral
        } else if src.contains(HERMES_OPEN) {
            ToolFormat::Hermes
        } else if src.contains(PYTHON_TAG)
            || (src.contains("<|start_header_id|>") && src.contains("tools"))
        {
            ToolFormat::Llama3Json
        } else {
            ToolFormat::Hermes
        }
    }

    /// The text that opens a call, up to the function name's opening quote; with `name`,
    /// through the name to where the arguments object starts. Appended to the prompt, it
    /// makes the model's answer a call.
    pub fn forced_opening(self, name: Option<&str>) -> String {
        let (open, args_key) = match self {
            ToolFormat::Hermes => ("<tool_call>\n{\"name\": \"", "arguments"),
            ToolFormat::Llama3Json => ("{\"name\": \"", "parameters"),
            ToolFormat::Mistral => ("[TOOL_CALLS] [{\"name\": \"", "arguments"),
        };
        match name {
            Some(n) => format!("{open}{n}\", \"{args_key}\": "),
            None => open.to_string(),
        }
    }

    /// The text that ends one call, when the format has one (a stop string for a request
    /// that wants exactly one call).
    pub fn close(self) -> Option<&'static str> {
        match self {
            ToolFormat::Hermes => Some(HERMES_CLOSE),
            ToolFormat::Llama3Json | ToolFormat::Mistral => None,
        }
    }

    /// What opens a call written as the whole answer without its marker: Llama's JSON
    /// object (`<|python_tag|>` is optional), Mistral's list (its `[TOOL_CALLS]` is a
    /// control token the detokenizer drops).
    fn bare_opening(self) -> Option<&'static str> {
        match self {
            ToolFormat::Hermes => None,
            ToolFormat::Llama3Json => Some("{"),
            ToolFormat::Mistral => Some("[{"),
        }
    }

    fn markers(self) -> &'static [&'static str] {
        match self {
            ToolFormat::Hermes => &[HERMES_OPEN],
            ToolFormat::Llama3Json => &[PYTHON_TAG],
            ToolFormat::Mistral => &[MISTRAL_OPEN],
        }
    }
}

/// One call the model made.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedCall {
    pub name: String,
    /// Always a JSON object.
    pub arguments: Value,
}

/// What the parser gives back, in output order.
#[derive(Clone, Debug, PartialEq)]
pub enum ToolEvent {
    Text(String),
    Call(ParsedCall),
}

#[derive(Debug, PartialEq)]
enum State {
    /// Plain text; `start` while nothing but whitespace has gone out (a Llama answer that
    /// opens with `{`, a Mistral one that opens with `[{`, is a call).
    Text { start: bool },
    /// Inside a call: the marker that opened it (given back as text if the call is bad)
    /// and what followed it.
    Call { marker: String, body: String },
}

/// Splits a stream of answer text into text and tool calls.
#[derive(Debug)]
pub struct ToolCallParser {
    format: ToolFormat,
    buf: String,
    state: State,
    calls: usize,
}

impl ToolCallParser {
    pub fn new(format: ToolFormat) -> ToolCallParser {
        ToolCallParser {
            format,
            buf: String::new(),
            state: State::Text { start: true },
            calls: 0,
        }
    }

    /// How many calls have come out so far.
    pub fn calls(&self) -> usize {
        self.calls
    }

    /// Feed more output; returns what is now certain.
    pub fn push(&mut self, text: &str) -> Vec<ToolEvent> {
        self.buf.push_str(text);
        let mut out = Vec::new();
        while self.step(&mut out) {}
        merge(out)
    }

    /// The output ended: a call left open is parsed as far as it goes, held text released.
    pub fn finish(&mut self) -> Vec<ToolEvent> {
        let mut out = Vec::new();
        while self.step(&mut out) {}
        let rest = std::mem::take(&mut self.buf);
        match std::mem::replace(&mut self.state, State::Text { start: false }) {
            State::Text { .. } => out.push(ToolEvent::Text(rest)),
            State::Call { marker, mut body } => {
                body.push_str(&rest);
                let calls = match self.format {
                    ToolFormat::Hermes => lenient_call(&body).map(|c| vec![c]),
                    _ => self.json_calls(&body, true),
                };
                self.emit(calls, &marker, &body, &mut out);
            }
        }
        merge(out)
    }

    /// One move of the state machine; false when it needs more input.
    fn step(&mut self, out: &mut Vec<ToolEvent>) -> bool {
        match &mut self.state {
            State::Text { start } => {
                let start = *start;
                if let Some(opener) = self.format.bare_opening().filter(|_| start) {
                    let after_call = self.calls > 0;
                    let trimmed = self.buf.trim_start_matches(|c: char| {
                        c.is_whitespace() || (after_call && c == ';')
                    });
                    if opener.starts_with(trimmed) && trimmed.len() < opener.len() {
                        return false;
                    }
                    if trimmed.starts_with(opener) {
                        let lead = self.buf.len() - trimmed.len();
                        let gap: String = self.buf.drain(..lead).collect();
                        if !after_call {
                            out.push(ToolEvent::Text(gap));
                        }
                        self.state = State::Call {
                            marker: String::new(),
                            body: String::new(),
                        };
                        return true;
                    }
                }
                let markers = self.format.markers();
                if let Some((at, m)) = earliest(&self.buf, markers) {
                    let before: String = self.buf.drain(..at).collect();
                    self.buf.drain(..m.len());
                    out.push(ToolEvent::Text(before));
                    self.state = State::Call {
                        marker: m.to_string(),
                        body: String::new(),
                    };
                    return true;
                }
                let keep = held_back(&self.buf, markers);
                let sure: String = self.buf.drain(..self.buf.len() - keep).collect();
                if !sure.trim().is_empty() {
                    self.state = State::Text { start: false };
                }
                out.push(ToolEvent::Text(sure));
                false
            }
            State::Call { body, .. } => {
                body.push_str(&self.buf);
                self.buf.clear();
                self.close_call(out)
            }
        }
    }

    /// Whether the call in progress is complete; if so emit it and go back to text.
    fn close_call(&mut self, out: &mut Vec<ToolEvent>) -> bool {
        let State::Call { marker, body } = &self.state else {
            return false;
        };
        let (end, inner_end) = match self.format {
            ToolFormat::Hermes => match body.find(HERMES_CLOSE) {
                Some(at) => (at + HERMES_CLOSE.len(), at),
                None => return false,
            },
            ToolFormat::Llama3Json | ToolFormat::Mistral => {
                match json_calls_end(self.format, body) {
                    Some(e) => (e, e),
                    None => return false,
                }
            }
        };
        let (marker, body) = (marker.clone(), body.clone());
        let inner = &body[..inner_end];
        let calls = match self.format {
            ToolFormat::Hermes => lenient_call(inner).map(|c| vec![c]),
            _ => self.json_calls(inner, false),
        };
        let llama = self.format == ToolFormat::Llama3Json;
        self.state = State::Text { start: llama };
        self.buf.insert_str(0, &body[end..]);
        self.emit(calls, &marker, &body[..end], out);
        true
    }

    /// The calls in a Llama / Mistral JSON body (`lenient`: the output ended inside it).
    fn json_calls(&self, body: &str, lenient: bool) -> Option<Vec<ParsedCall>> {
        let t = body.trim();
        if self.format == ToolFormat::Mistral && !t.starts_with(['[', '{']) {
            let (name, args) = t.split_once(MISTRAL_ARGS)?;
            let arguments = first_value(args, lenient)?;
            let name = name.trim();
            return (!name.is_empty() && arguments.is_object()).then(|| {
                vec![ParsedCall {
                    name: name.to_string(),
                    arguments,
                }]
            });
        }
        match first_value(t, lenient)? {
            Value::Array(items) if !items.is_empty() => {
                items.into_iter().map(to_call).collect::<Option<Vec<_>>>()
            }
            v @ Value::Object(_) => to_call(v).map(|c| vec![c]),
            _ => None,
        }
    }

    /// The calls, or (when they do not parse) the text they were written as.
    fn emit(
        &mut self,
        calls: Option<Vec<ParsedCall>>,
        marker: &str,
        body: &str,
        out: &mut Vec<ToolEvent>,
    ) {
        match calls {
            Some(calls) => {
                self.calls += calls.len();
                out.extend(calls.into_iter().map(ToolEvent::Call));
            }
            None => {
                if !marker.is_empty() {
                    tracing::warn!(call = %body, "a tool call does not parse; returned as text");
                }
                out.push(ToolEvent::Text(format!("{marker}{body}")));
            }
        }
    }
}

/// Where a JSON call body ends (byte offset), when it is complete. Mistral's `name[ARGS]{…}`
/// ends with its arguments object.
fn json_calls_end(format: ToolFormat, body: &str) -> Option<usize> {
    let lead = body.len() - body.trim_start().len();
    let t = &body[lead..];
    if t.is_empty() {
        return None;
    }
    if format == ToolFormat::Mistral && !t.starts_with(['[', '{']) {
        let at = t.find(MISTRAL_ARGS)? + MISTRAL_ARGS.len();
        let args = &t[at..];
        let pad = args.len() - args.trim_start().len();
        return json_end(&args[pad..]).map(|e| lead + at + pad + e);
    }
    match json_end(t) {
        Some(e) => Some(lead + e),
        // Not JSON at all: give it back at once rather than waiting for the end.
        None if !t.starts_with(['[', '{']) => Some(lead),
        None => None,
    }
}

/// The byte length of the JSON object or array `s` starts with, once it is complete.
fn json_end(s: &str) -> Option<usize> {
    let (mut depth, mut in_str, mut esc) = (0usize, false, false);
    for (i, b) in s.bytes().enumerate() {
        if in_str {
            match (esc, b) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ if depth == 0 => return None,
            _ => {}
        }
    }
    None
}

/// The first JSON value in `s`; `lenient` also closes up to two objects (and a list of
/// them) left open.
fn first_value(s: &str, lenient: bool) -> Option<Value> {
    let s = s.trim();
    let first = |t: &str| {
        serde_json::Deserializer::from_str(t)
            .into_iter::<Value>()
            .next()
            .and_then(Result::ok)
    };
    if let Some(v) = first(s) {
        return Some(v);
    }
    if !lenient {
        return None;
    }
    ["}", "}}", "]", "}]", "}}]"]
        .iter()
        .find_map(|close| first(&format!("{s}{close}")))
}

/// A Hermes call body: one JSON object, tolerating trailing text and a missing `}`.
fn lenient_call(body: &str) -> Option<ParsedCall> {
    to_call(first_value(body, true)?)
}

/// `{"name": …, "arguments" | "parameters": {…} | "<JSON object>"}` as a call.
fn to_call(v: Value) -> Option<ParsedCall> {
    let Value::Object(mut m) = v else {
        return None;
    };
    let name = match m.remove("name")? {
        Value::String(s) if !s.trim().is_empty() => s.trim().to_string(),
        _ => return None,
    };
    let args = m
        .remove("arguments")
        .or_else(|| m.remove("parameters"))
        .unwrap_or_else(|| Value::Object(Default::default()));
    let arguments = match args {
        Value::Object(_) => args,
        Value::String(s) => match serde_json::from_str::<Value>(&s) {
            Ok(v @ Value::Object(_)) => v,
            _ => return None,
        },
        Value::Null => Value::Object(Default::default()),
        _ => return None,
    };
    Some(ParsedCall { name, arguments })
}

/// The first marker found in `s`, and where.
fn earliest<'a>(s: &str, markers: &[&'a str]) -> Option<(usize, &'a str)> {
    markers
        .iter()
        .filter_map(|m| s.find(m).map(|at| (at, *m)))
        .min_by_key(|(at, _)| *at)
}

/// How many bytes at the end of `s` could be the start of a marker.
fn held_back(s: &str, markers: &[&str]) -> usize {
    markers
        .iter()
        .flat_map(|m| (1..m.len()).rev().map(move |k| &m[..k]))
        .filter(|p| s.ends_with(p))
        .map(str::len)
        .max()
        .unwrap_or(0)
}

/// Join neighbouring text and drop empty text.
fn merge(events: Vec<ToolEvent>) -> Vec<ToolEvent> {
    let mut out: Vec<ToolEvent> = Vec::with_capacity(events.len());
    for e in events {
        match (out.last_mut(), e) {
            (_, ToolEvent::Text(t)) if t.is_empty() => {}
            (Some(ToolEvent::Text(prev)), ToolEvent::Text(t)) => prev.push_str(&t),
            (_, e) => out.push(e),
        }
    }
    out
}

/// Parse a whole answer at once.
pub fn parse(format: ToolFormat, text: &str) -> Vec<ToolEvent> {
    let mut p = ToolCallParser::new(format);
    let mut out = p.push(text);
    out.extend(p.finish());
    merge(out)
}

#[cfg(test)]
#[path = "tools_tests.rs"]
mod tests;
