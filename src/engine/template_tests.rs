use super::*;

const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
const LLAMA3_REAL: &str = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";
const MISTRAL_V01: &str = "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";
const QWEN_STYLE: &str = r#"{%- if messages[0].role == 'system' %}
    {{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
{%- else %}
    {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
{%- endif %}
{%- for message in messages %}
    {%- if message.role == "user" or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {%- set content = message.content %}
        {%- if content.startswith('<think>') %}
            {%- set content = content.split('</think>')[-1].lstrip('\n') %}
        {%- endif %}
        {{- '<|im_start|>assistant\n' + content + '<|im_end|>\n' }}
    {%- endif %}
{%- endfor %}
{%- if tools %}{{- tools | tojson }}{%- endif %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"#;

use ChatMessage as M;

fn tmpl(source: &str) -> ChatTemplate {
    ChatTemplate::new(source, None, None).unwrap()
}

fn convo() -> Vec<ChatMessage> {
    vec![
        M::system("S"),
        M::user("U1"),
        M::assistant("A1"),
        M::user("U2"),
    ]
}

#[test]
fn smollm2_default_system_prompt() {
    let t = tmpl(SMOLLM2);
    let out = t.render(&[M::user("What is the capital of France?")], true);
    assert_eq!(out.unwrap(), "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n");
    let msgs = [
        M::system("You are a helpful assistant."),
        M::user("Write a haiku about the sea."),
    ];
    assert_eq!(t.render(&msgs, true).unwrap(), "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWrite a haiku about the sea.<|im_end|>\n<|im_start|>assistant\n");
    assert!(!t.render(&msgs, false).unwrap().ends_with("assistant\n"));
}

#[test]
fn llama3_bos_and_trim() {
    let t = ChatTemplate::new(LLAMA3_REAL, Some("<|begin_of_text|>".into()), None).unwrap();
    let out = t.render(&[M::system("You are a bot."), M::user("  Hi \n")], true);
    assert_eq!(out.unwrap(), "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a bot.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
}

#[test]
fn raise_exception_surfaces_message() {
    let t = ChatTemplate::new(MISTRAL_V01, Some("<s>".into()), Some("</s>".into())).unwrap();
    let ok = t.render(&[M::user("a"), M::assistant("b"), M::user("c")], false);
    assert_eq!(ok.unwrap(), "<s>[INST] a [/INST]b</s> [INST] c [/INST]");
    let err = t.render(&[M::user("a"), M::user("b")], false).unwrap_err();
    let alternate = "Conversation roles must alternate user/assistant/user/assistant/...";
    assert!(matches!(&err, TemplateError::Raised { message } if message == alternate));
    assert!(err.to_string().contains(alternate), "{err}");
    let err = t.render(&[M::user("a"), M::system("s")], false);
    let only = "Only user and assistant roles are supported!";
    assert!(matches!(err, Err(TemplateError::Raised { message }) if message == only));
    // A tool turn reaches a template without tool support as a user turn.
    let err = t.render(&[M::user("a"), M::new(Role::Tool, "42")], false);
    assert!(matches!(err, Err(TemplateError::Raised { message }) if message == alternate));
}

#[test]
fn qwen_style_python_methods() {
    let msgs = [
        M::user("Hi"),
        M::assistant("<think>\nhmm\n</think>\n\nHello!"),
        M::user("Bye"),
    ];
    let out = tmpl(QWEN_STYLE).render(&msgs, true).unwrap();
    assert_eq!(out, "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n");
}

#[test]
fn tojson_and_items_match_python() {
    let t = tmpl("{{ messages[0] | tojson }}|{{ {'k': [1, 'x']} | tojson(indent=2) }}");
    let out = t.render(&[M::user("say \"<b>\" & é")], false).unwrap();
    let want = "{\"role\": \"user\", \"content\": \"say \\\"<b>\\\" & é\"}|{\n  \"k\": [\n    1,\n    \"x\"\n  ]\n}";
    assert_eq!(out, want);
    let t = tmpl("{% for k, v in messages[0].items() %}{{ k }}={{ v }};{% endfor %}");
    assert_eq!(
        t.render(&[M::user("u")], false).unwrap(),
        "role=user;content=u;"
    );
}

#[test]
fn whitespace_control_like_hf() {
    let t = tmpl("  {% if true %}\nyes\n  {% endif %}\nend\n");
    assert_eq!(t.render(&[], false).unwrap(), "yes\nend");
    let t = tmpl("[{{ bos_token }}][{{ tools }}]");
    assert_eq!(t.render(&[], false).unwrap(), "[][None]");
}

#[test]
fn builtins_render() {
    // In the order of `builtin_names()`: chatml, llama2, llama3, mistral, zephyr, gemma.
    let expected = [
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nU2<|im_end|>\n<|im_start|>assistant\n",
        "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nU1 [/INST] A1 </s><s>[INST] U2 [/INST]",
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nU1<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nA1<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nU2<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
        "<s>[INST] S\n\nU1 [/INST]A1</s>[INST] U2 [/INST]",
        "<|system|>\nS</s>\n<|user|>\nU1</s>\n<|assistant|>\nA1</s>\n<|user|>\nU2</s>\n<|assistant|>\n",
        "<bos><start_of_turn>user\nS\n\nU1<end_of_turn>\n<start_of_turn>model\nA1<end_of_turn>\n<start_of_turn>user\nU2<end_of_turn>\n<start_of_turn>model\n",
    ];
    let names = ChatTemplate::builtin_names();
    assert_eq!(
        names,
        ["chatml", "llama2", "llama3", "mistral", "zephyr", "gemma"]
    );
    for (name, want) in names.iter().zip(expected) {
        let t = ChatTemplate::builtin(name).unwrap();
        assert_eq!(t.render(&convo(), true).unwrap(), want, "built-in {name}");
        let bad = t.render(&[M::user("a"), M::user("b")], true);
        let alternates = ["llama2", "mistral", "gemma"].contains(name);
        assert_eq!(
            matches!(bad, Err(TemplateError::Raised { .. })),
            alternates,
            "{name}"
        );
    }
}

#[test]
fn errors_explain_themselves() {
    let err = ChatTemplate::new("{% for m in messages %}", None, None).unwrap_err();
    assert!(matches!(err, TemplateError::Syntax(_)));
    assert!(err.to_string().contains("does not compile"), "{err}");
    let err = ChatTemplate::builtin("vicuna").unwrap_err().to_string();
    let names = "chatml, llama2, llama3, mistral, zephyr, gemma";
    assert!(err.contains("vicuna") && err.contains(names), "{err}");
    let model = "gpt2".to_string();
    let err = TemplateError::Missing { model }.to_string();
    for part in ["gpt2", "--template NAME", names, "--chat"] {
        assert!(err.contains(part), "{err}");
    }
    let err = tmpl("{{ 1 + messages }}").render(&[], false).unwrap_err();
    assert!(matches!(err, TemplateError::Render(_)), "{err:?}");
}

#[test]
fn strftime() {
    let fmt = "%d %b %Y %H:%M:%S %a %A %B %y %j %I%p %% %q";
    let want = "14 Nov 2023 22:13:20 Tue Tuesday November 23 318 10PM % %q";
    assert_eq!(format_unix_time(1_700_000_000, fmt), want);
    let leap_day = format_unix_time(1_709_164_800, "%Y-%m-%d %j %e");
    assert_eq!(leap_day, "2024-02-29 060 29");
    assert_eq!(format_unix_time(0, "%Y-%m-%d %A"), "1970-01-01 Thursday");
    let year = tmpl("{{ strftime_now('%Y') }}").render(&[], false).unwrap();
    assert!(year.parse::<i32>().unwrap() >= 2024);
}
