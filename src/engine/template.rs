//! Chat templates: turn a list of [`ChatMessage`]s into the prompt text a model expects.
//!
//! Templates are Jinja sources (as shipped in `tokenizer_config.json` / `chat_template.jinja`)
//! rendered with minijinja, set up the way HF transformers' `apply_chat_template` sets up
//! jinja2: `trim_blocks` and `lstrip_blocks` on, trailing newline dropped, loop controls,
//! python string/dict methods (`.strip()`, `.startswith()`, `.items()`, ...), a python-style
//! `tojson`, and the globals `raise_exception(msg)` and `strftime_now(fmt)`. The context holds
//! `messages`, `add_generation_prompt`, `tools` (the tool definitions, none when the
//! request has none), and `bos_token` / `eos_token` when known.
//!
//! The rendered text already contains any BOS the template writes, so encode it without
//! letting the tokenizer add special tokens again.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use minijinja::value::{Enumerator, Kwargs, Object, ObjectRepr};
use minijinja::{Environment, Error, ErrorKind, Value};

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

impl Role {
    /// The lowercase name templates compare against (`"user"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// One turn of a conversation.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
    /// The calls an assistant turn made (empty for every other turn).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// A `tool` turn: the id of the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// A `tool` turn: the name of the function that produced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A function call an assistant made: templates see it as
/// `{"id", "type": "function", "function": {"name", "arguments": <object>}}`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as JSON (an object for every call a model makes).
    pub arguments: serde_json::Value,
}

impl ToolCall {
    /// The OpenAI / Hugging Face shape templates read.
    pub fn template_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        })
    }
}

impl ChatMessage {
    /// A message with the given role.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
            name: None,
        }
    }
    /// A `tool` message: the result of the call `tool_call_id`.
    pub fn tool_result(content: impl Into<String>, tool_call_id: Option<String>) -> Self {
        Self {
            tool_call_id,
            ..Self::new(Role::Tool, content)
        }
    }
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }
    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }
    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }
}

/// Everything that can go wrong compiling or rendering a chat template.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    /// The template source does not parse.
    #[error("the chat template does not compile: {0}; fix the template source or pass `--template NAME` to use a built-in ({list})", list = builtin_list())]
    Syntax(String),
    /// Rendering failed for a reason other than `raise_exception`.
    #[error("rendering the chat template failed: {0}; the template may use a feature not supported here, try `--template NAME` with a built-in ({list})", list = builtin_list())]
    Render(String),
    /// The template itself rejected the conversation via `raise_exception(msg)`.
    #[error("the chat template rejected the conversation: {message} (adjust the messages, e.g. alternate user/assistant turns, or choose another `--template`)")]
    Raised { message: String },
    /// `ChatTemplate::builtin` was given a name it does not know.
    #[error("unknown built-in chat template `{name}`; known templates: {list}", list = builtin_list())]
    UnknownBuiltin { name: String },
    /// The model ships no chat template.
    #[error("model `{model}` has no chat template; pass `--template NAME` with one of the built-in names ({list}) or run without `--chat`", list = builtin_list())]
    Missing { model: String },
}

fn builtin_list() -> String {
    ChatTemplate::builtin_names().join(", ")
}

/// Built-ins: (name, source, default BOS, default EOS).
const BUILTINS: &[(&str, &str, Option<&str>, Option<&str>)] = &[
    ("chatml", CHATML, None, Some("<|im_end|>")),
    ("llama2", LLAMA2, Some("<s>"), Some("</s>")),
    (
        "llama3",
        LLAMA3,
        Some("<|begin_of_text|>"),
        Some("<|eot_id|>"),
    ),
    ("mistral", MISTRAL, Some("<s>"), Some("</s>")),
    ("zephyr", ZEPHYR, None, Some("</s>")),
    ("gemma", GEMMA, Some("<bos>"), Some("<eos>")),
];
const BUILTIN_NAMES: &[&str] = &["chatml", "llama2", "llama3", "mistral", "zephyr", "gemma"];

const CHATML: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/// Meta's Llama-2-chat template (system folded into the first user turn).
const LLAMA2: &str = "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' ' + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

/// Meta-Llama-3-8B-Instruct's template.
const LLAMA3: &str = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

/// Mistral-Instruct v0.2 style; a leading system message is prepended to the first user turn.
const MISTRAL: &str = "{% if messages[0]['role'] == 'system' %}{% set system_message = messages[0]['content'] + '\\n\\n' %}{% set loop_messages = messages[1:] %}{% else %}{% set system_message = '' %}{% set loop_messages = messages %}{% endif %}{{ bos_token }}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + (system_message if loop.first else '') + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";

/// HuggingFaceH4/zephyr-7b-beta's template (relies on `trim_blocks`).
const ZEPHYR: &str = "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}";

/// Gemma-style turns; a leading system message is prepended to the first user turn (as Gemma 3).
const GEMMA: &str = "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set first_user_prefix = messages[0]['content'] + '\\n\\n' %}{% set loop_messages = messages[1:] %}{% else %}{% set first_user_prefix = '' %}{% set loop_messages = messages %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'assistant' %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else '') + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}";

/// A compiled chat template plus the special tokens it may reference.
pub struct ChatTemplate {
    env: Environment<'static>,
    source: String,
    bos_token: Option<String>,
    eos_token: Option<String>,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("source", &self.source)
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .finish()
    }
}

impl ChatTemplate {
    const NAME: &'static str = "chat_template";

    /// Compile `source` once. `bos_token`/`eos_token` are exposed to the template when given
    /// (and left undefined otherwise, as HF does for tokens a tokenizer lacks).
    pub fn new(
        source: &str,
        bos_token: Option<String>,
        eos_token: Option<String>,
    ) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_keep_trailing_newline(false);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_filter("tojson", tojson);
        env.add_template_owned(Self::NAME, source.to_owned())
            .map_err(|e| TemplateError::Syntax(e.to_string()))?;
        Ok(Self {
            env,
            source: source.to_owned(),
            bos_token,
            eos_token,
        })
    }

    /// A named built-in template (see [`ChatTemplate::builtin_names`]) with its usual special tokens.
    pub fn builtin(name: &str) -> Result<Self, TemplateError> {
        let (_, source, bos, eos) = BUILTINS
            .iter()
            .find(|(n, ..)| n.eq_ignore_ascii_case(name))
            .ok_or_else(|| TemplateError::UnknownBuiltin {
                name: name.to_owned(),
            })?;
        Self::new(source, bos.map(str::to_owned), eos.map(str::to_owned))
    }

    /// Names accepted by [`ChatTemplate::builtin`].
    pub fn builtin_names() -> &'static [&'static str] {
        BUILTIN_NAMES
    }

    /// The Jinja source this template was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the template renders tool definitions itself (its source reads `tools`);
    /// when it does not, [`ChatTemplate::render_with_tools`] writes them into the system
    /// prompt in the Hermes format instead.
    pub fn supports_tools(&self) -> bool {
        self.source.contains("tools")
    }

    /// Render `messages`; with `add_generation_prompt` the text ends with the opening of an
    /// assistant turn so the model continues as the assistant.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, TemplateError> {
        self.render_with_tools(messages, &[], add_generation_prompt)
    }

    /// Render `messages` offering `tools` (OpenAI-style `{"type": "function", "function":
    /// {...}}` definitions). A template that reads `tools` gets them, and the messages'
    /// tool calls and results, as Hugging Face passes them; any other template gets them
    /// as text (see [`super::tool_prompt`]).
    pub fn render_with_tools(
        &self,
        messages: &[ChatMessage],
        tools: &[serde_json::Value],
        add_generation_prompt: bool,
    ) -> Result<String, TemplateError> {
        let inlined;
        let (messages, tools) =
            if self.supports_tools() || !super::tool_prompt::needed(messages, tools) {
                (messages, tools)
            } else {
                inlined = super::tool_prompt::inline(messages, tools);
                (inlined.as_slice(), &[][..])
            };
        let mut ctx: BTreeMap<&str, Value> = BTreeMap::new();
        let msgs: Vec<Value> = messages
            .iter()
            .map(|m| Value::from_object(MessageObject(m.clone())))
            .collect();
        ctx.insert("messages", Value::from(msgs));
        ctx.insert("add_generation_prompt", Value::from(add_generation_prompt));
        let tools = match tools {
            [] => Value::from(()),
            t => Value::from_serialize(t),
        };
        ctx.insert("tools", tools);
        if let Some(bos) = &self.bos_token {
            ctx.insert("bos_token", Value::from(bos.as_str()));
        }
        if let Some(eos) = &self.eos_token {
            ctx.insert("eos_token", Value::from(eos.as_str()));
        }
        let tmpl = self
            .env
            .get_template(Self::NAME)
            .map_err(|e| TemplateError::Render(e.to_string()))?;
        tmpl.render(ctx).map_err(convert_render_error)
    }
}

/// A message as the template sees it: a map with keys in HF order (`role`, `content`, then
/// `tool_calls`, `tool_call_id`, `name` when the message has them).
#[derive(Debug)]
struct MessageObject(ChatMessage);

impl MessageObject {
    fn keys(&self) -> Vec<&'static str> {
        let m = &self.0;
        let mut keys = vec!["role", "content"];
        if !m.tool_calls.is_empty() {
            keys.push("tool_calls");
        }
        if m.tool_call_id.is_some() {
            keys.push("tool_call_id");
        }
        if m.name.is_some() {
            keys.push("name");
        }
        keys
    }
}

impl Object for MessageObject {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let m = &self.0;
        match key.as_str()? {
            "role" => Some(Value::from(m.role.as_str())),
            "content" => Some(Value::from(m.content.as_str())),
            "tool_calls" if !m.tool_calls.is_empty() => {
                let calls: Vec<_> = m.tool_calls.iter().map(|c| c.template_json()).collect();
                Some(Value::from_serialize(calls))
            }
            "tool_call_id" => m.tool_call_id.as_deref().map(Value::from),
            "name" => m.name.as_deref().map(Value::from),
            _ => None,
        }
    }
    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.keys().into_iter().map(Value::from).collect())
    }
}

/// Carried as the source of the minijinja error so `render` can tell it apart.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct RaisedException(String);

fn raise_exception(msg: String) -> Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, msg.clone()).with_source(RaisedException(msg)))
}

fn convert_render_error(err: Error) -> TemplateError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(e) = source {
        if let Some(raised) = e.downcast_ref::<RaisedException>() {
            return TemplateError::Raised {
                message: raised.0.clone(),
            };
        }
        source = e.source();
    }
    TemplateError::Render(err.to_string())
}

/// `tojson` as HF defines it: python `json.dumps(x, ensure_ascii=False, indent=indent)`,
/// i.e. `", "` / `": "` separators when compact, and no HTML escaping.
fn tojson(value: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    kwargs.assert_all_used()?;
    let pad = vec![b' '; indent.unwrap_or(0)];
    let json = match indent {
        Some(_) => write_json(value, serde_json::ser::PrettyFormatter::with_indent(&pad)),
        None => write_json(value, PyCompact),
    };
    let json = json.map_err(|e| {
        let msg = "value cannot be converted to JSON";
        Error::new(ErrorKind::InvalidOperation, msg).with_source(e)
    })?;
    Ok(Value::from_safe_string(json))
}

fn write_json<F: serde_json::ser::Formatter>(value: &Value, f: F) -> serde_json::Result<String> {
    let mut out = Vec::new();
    serde::Serialize::serialize(
        value,
        &mut serde_json::Serializer::with_formatter(&mut out, f),
    )?;
    // serde_json only ever writes UTF-8.
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// `value` as python's `json.dumps(value, ensure_ascii=False)` writes it.
pub(crate) fn py_json(value: &serde_json::Value) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PyCompact);
    // Serializing a JSON value into memory cannot fail.
    let _ = serde::Serialize::serialize(value, &mut ser);
    String::from_utf8_lossy(&out).into_owned()
}

/// serde_json formatter producing python's default compact `json.dumps` layout.
struct PyCompact;

impl serde_json::ser::Formatter for PyCompact {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        w.write_all(if first { b"" } else { b", " })
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        w.write_all(if first { b"" } else { b", " })
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
}

/// `strftime_now(fmt)`: the current time (UTC; no timezone database is bundled) formatted with
/// the common C `strftime` directives (`%Y %y %m %d %e %H %I %M %S %p %j %b %B %a %A %%`).
fn strftime_now(fmt: String) -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    format_unix_time(secs, &fmt)
}

/// Format a Unix time (UTC) with the `strftime` directives [`strftime_now`] knows.
pub(crate) fn format_unix_time(secs: i64, fmt: &str) -> String {
    const MONTHS: &str =
        "January February March April May June July August September October November December";
    const DAYS: &str = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday";
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (hour, minute, second) = (sod / 3600, sod % 3600 / 60, sod % 60);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy_mar = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy_mar + 2) / 153;
    let day = doy_mar - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    const CUM: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let yday = CUM[(month - 1) as usize] + day + i64::from(leap && month > 2);
    let weekday = (days + 3).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
    let month_name = MONTHS
        .split(' ')
        .nth((month - 1) as usize)
        .unwrap_or_default();
    let day_name = DAYS.split(' ').nth(weekday).unwrap_or_default();

    let mut out = String::with_capacity(fmt.len() + 16);
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        // Writing to a String cannot fail.
        let _ = match chars.next() {
            Some('Y') => write!(out, "{year}"),
            Some('y') => write!(out, "{:02}", year.rem_euclid(100)),
            Some('m') => write!(out, "{month:02}"),
            Some('d') => write!(out, "{day:02}"),
            Some('e') => write!(out, "{day:>2}"),
            Some('H') => write!(out, "{hour:02}"),
            Some('I') => write!(out, "{:02}", (hour + 11) % 12 + 1),
            Some('M') => write!(out, "{minute:02}"),
            Some('S') => write!(out, "{second:02}"),
            Some('p') => out.write_str(if hour < 12 { "AM" } else { "PM" }),
            Some('j') => write!(out, "{yday:03}"),
            Some('B') => out.write_str(month_name),
            Some('b') => out.write_str(&month_name[..3]),
            Some('A') => out.write_str(day_name),
            Some('a') => out.write_str(&day_name[..3]),
            Some(other) if other != '%' => write!(out, "%{other}"),
            _ => out.write_str("%"),
        };
    }
    out
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
