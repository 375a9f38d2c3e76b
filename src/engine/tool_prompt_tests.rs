use crate::engine::template::{ChatMessage as M, ChatTemplate, Role, ToolCall};
use serde_json::json;

/// Qwen 2.5's template, tool parts as shipped (the default system text shortened).
const QWEN25: &str = r#"{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"#;

/// SmolLM2-135M-Instruct's template as shipped in its GGUF (plain ChatML, no tools).
const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

fn weather_tool() -> serde_json::Value {
    json!({"type": "function", "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }})
}

/// user → assistant call → tool result (two results, to see them merged).
fn exchange() -> Vec<M> {
    let mut call = M::assistant("");
    call.tool_calls = vec![
        ToolCall {
            id: "call_1".into(),
            name: "get_weather".into(),
            arguments: json!({"city": "Paris"}),
        },
        ToolCall {
            id: "call_2".into(),
            name: "get_weather".into(),
            arguments: json!({"city": "Oslo"}),
        },
    ];
    vec![
        M::system("Be brief."),
        M::user("Weather in Paris and Oslo?"),
        call,
        M::tool_result("18C", Some("call_1".into())),
        M::tool_result("3C", Some("call_2".into())),
    ]
}

const TOOL_JSON: &str = r#"{"function": {"description": "Weather in a city", "name": "get_weather", "parameters": {"properties": {"city": {"type": "string"}}, "required": ["city"], "type": "object"}}, "type": "function"}"#;
/// The same tool as lmwb's own Hermes block writes it: in the request's key order.
const TOOL_JSON_ORDERED: &str = r#"{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}"#;

#[test]
fn a_template_with_tools_gets_them_as_hf_passes_them() {
    let t = ChatTemplate::new(QWEN25, None, None).unwrap();
    assert!(t.supports_tools());
    let out = t
        .render_with_tools(&exchange(), &[weather_tool()], true)
        .unwrap();
    let want = format!("<|im_start|>system\nBe brief.\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{TOOL_JSON}\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{{\"name\": <function-name>, \"arguments\": <args-json-object>}}\n</tool_call><|im_end|>\n<|im_start|>user\nWeather in Paris and Oslo?<|im_end|>\n<|im_start|>assistant\n<tool_call>\n{{\"name\": \"get_weather\", \"arguments\": {{\"city\": \"Paris\"}}}}\n</tool_call>\n<tool_call>\n{{\"name\": \"get_weather\", \"arguments\": {{\"city\": \"Oslo\"}}}}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n18C\n</tool_response>\n<tool_response>\n3C\n</tool_response><|im_end|>\n<|im_start|>assistant\n");
    assert_eq!(out, want);
    // Without tools the same template takes its plain branch.
    let plain = t.render(&[M::user("hi")], true).unwrap();
    assert_eq!(plain, "<|im_start|>system\nYou are Qwen.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
}

#[test]
fn message_keys_appear_only_when_set() {
    let t = ChatTemplate::new(
        "{# reads tools #}{% for m in messages %}{{ m | tojson }}|{{ 'tool_calls' in m }};{% endfor %}",
        None,
        None,
    )
    .unwrap();
    let mut tool = M::tool_result("r", Some("c1".into()));
    tool.name = Some("f".into());
    let out = t.render(&[M::user("u"), tool], false).unwrap();
    assert_eq!(
        out,
        r#"{"role": "user", "content": "u"}|False;{"role": "tool", "content": "r", "tool_call_id": "c1", "name": "f"}|False;"#
    );
    let call = &exchange()[2];
    let out = t.render(std::slice::from_ref(call), false).unwrap();
    assert!(out.starts_with(r#"{"role": "assistant", "content": "", "tool_calls": [{"function": {"arguments": {"city": "Paris"}, "name": "get_weather"}, "id": "call_1", "type": "function"}"#), "{out}");
    assert!(out.ends_with("|True;"), "{out}");
}

#[test]
fn chatml_without_tools_gets_the_hermes_system_block() {
    let t = ChatTemplate::new(SMOLLM2, None, None).unwrap();
    assert!(!t.supports_tools());
    let out = t
        .render_with_tools(&exchange(), &[weather_tool()], true)
        .unwrap();
    let want = format!("<|im_start|>system\nBe brief.\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{TOOL_JSON_ORDERED}\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{{\"name\": <function-name>, \"arguments\": <args-json-object>}}\n</tool_call><|im_end|>\n<|im_start|>user\nWeather in Paris and Oslo?<|im_end|>\n<|im_start|>assistant\n<tool_call>\n{{\"name\": \"get_weather\", \"arguments\": {{\"city\": \"Paris\"}}}}\n</tool_call>\n<tool_call>\n{{\"name\": \"get_weather\", \"arguments\": {{\"city\": \"Oslo\"}}}}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n18C\n</tool_response>\n<tool_response>\n3C\n</tool_response><|im_end|>\n<|im_start|>assistant\n");
    assert_eq!(out, want);
    // No system message: the tools block becomes one (replacing SmolLM2's default).
    let out = t
        .render_with_tools(&[M::user("hi")], &[weather_tool()], true)
        .unwrap();
    assert!(out.starts_with("<|im_start|>system\n# Tools\n\n"), "{out}");
    assert!(!out.contains("SmolLM"), "{out}");
    // No tools, no tool turns: rendered exactly as before.
    let plain = t.render_with_tools(&[M::user("hi")], &[], true).unwrap();
    assert_eq!(plain, t.render(&[M::user("hi")], true).unwrap());
    assert!(plain.contains("SmolLM"));
}

#[test]
fn alternating_templates_still_alternate_after_inlining() {
    let t = ChatTemplate::builtin("mistral").unwrap();
    let out = t
        .render_with_tools(&exchange()[1..], &[weather_tool()], false)
        .unwrap();
    assert!(out.contains("[INST] # Tools"), "{out}");
    assert!(
        out.contains("<tool_response>\n18C\n</tool_response>\n<tool_response>\n3C"),
        "{out}"
    );
    let err = t.render(&[M::user("a"), M::new(Role::Tool, "x")], false);
    assert!(
        err.is_err(),
        "a tool turn right after a user turn still breaks alternation"
    );
}
