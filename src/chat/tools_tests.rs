use super::*;
use serde_json::json;
use ToolEvent::{Call, Text};

fn call(name: &str, arguments: Value) -> ToolEvent {
    Call(ParsedCall {
        name: name.into(),
        arguments,
    })
}

fn text(s: &str) -> ToolEvent {
    Text(s.into())
}

/// Feed `input` in the given pieces and collect everything, neighbouring text joined.
fn run(format: ToolFormat, pieces: &[&str]) -> Vec<ToolEvent> {
    let mut p = ToolCallParser::new(format);
    let mut out = Vec::new();
    for piece in pieces {
        out.extend(p.push(piece));
    }
    out.extend(p.finish());
    merge(out)
}

/// The same events whole, in two pieces cut at every byte offset (on char boundaries),
/// and one char at a time.
fn check(format: ToolFormat, input: &str, want: &[ToolEvent]) {
    assert_eq!(run(format, &[input]), want, "whole: {input:?}");
    for cut in (0..=input.len()).filter(|&i| input.is_char_boundary(i)) {
        let got = run(format, &[&input[..cut], &input[cut..]]);
        assert_eq!(got, want, "cut at {cut}: {input:?}");
    }
    let chars: Vec<String> = input.chars().map(String::from).collect();
    let refs: Vec<&str> = chars.iter().map(String::as_str).collect();
    assert_eq!(run(format, &refs), want, "char by char: {input:?}");
}

#[test]
fn detects_the_format_from_the_template() {
    use ToolFormat::*;
    assert_eq!(ToolFormat::detect(None), Hermes);
    assert_eq!(ToolFormat::detect(Some("{{ messages }}")), Hermes);
    let qwen = "{% if tools %}<tool_call>\n{\"name\": <function-name>}</tool_call>{% endif %}";
    assert_eq!(ToolFormat::detect(Some(qwen)), Hermes);
    let llama = "<|start_header_id|>{% if tools is not none %}{{ '<|python_tag|>' }}{% endif %}";
    assert_eq!(ToolFormat::detect(Some(llama)), Llama3Json);
    let llama32 = "{{ '<|start_header_id|>' }}{% for t in tools %}{{ t | tojson }}{% endfor %}";
    assert_eq!(ToolFormat::detect(Some(llama32)), Llama3Json);
    let mistral = "{% if tools %}[AVAILABLE_TOOLS]{% endif %}[TOOL_CALLS]";
    assert_eq!(ToolFormat::detect(Some(mistral)), Mistral);
    // Llama 3.0 without tools: nothing teaches a format, so lmwb's Hermes prompt applies.
    assert_eq!(ToolFormat::detect(Some("<|start_header_id|>")), Hermes);
}

#[test]
fn hermes_one_call_after_text() {
    let input = "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";
    let want = [
        text("Let me check.\n"),
        call("get_weather", json!({"city": "Paris"})),
    ];
    check(ToolFormat::Hermes, input, &want);
}

#[test]
fn hermes_several_calls_and_trailing_text() {
    let input = "<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n</tool_call>\n<tool_call>\n{\"name\": \"b\", \"arguments\": {\"x\": \"</tool\"}}\n</tool_call> done <tool";
    let want = [
        call("a", json!({})),
        text("\n"),
        call("b", json!({"x": "</tool"})),
        text(" done <tool"),
    ];
    check(ToolFormat::Hermes, input, &want);
}

#[test]
fn hermes_text_that_only_looks_like_a_marker_streams() {
    check(
        ToolFormat::Hermes,
        "a < b <tool c",
        &[text("a < b <tool c")],
    );
    let mut p = ToolCallParser::new(ToolFormat::Hermes);
    assert_eq!(p.push("x <tool_"), vec![text("x ")]);
    assert_eq!(p.push("cal"), vec![]);
    assert_eq!(p.push("x"), vec![text("<tool_calx")]);
}

#[test]
fn hermes_malformed_json_is_text() {
    let input = "<tool_call>\n{\"name\": oops}\n</tool_call> after";
    check(ToolFormat::Hermes, input, &[text(input)]);
    let no_name = "<tool_call>{\"arguments\": {}}</tool_call>";
    check(ToolFormat::Hermes, no_name, &[text(no_name)]);
    let bad_args = "<tool_call>{\"name\": \"f\", \"arguments\": 3}</tool_call>";
    check(ToolFormat::Hermes, bad_args, &[text(bad_args)]);
}

#[test]
fn hermes_unclosed_call_at_the_end() {
    // Stopped at `</tool_call>` (a stop string) or at EOS before it.
    let input = "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"q\": 1}}\n";
    check(ToolFormat::Hermes, input, &[call("f", json!({"q": 1}))]);
    // The outer object left open: closed up.
    let open = "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"q\": 1}";
    check(ToolFormat::Hermes, open, &[call("f", json!({"q": 1}))]);
    let cut = "<tool_call>\n{\"name\": \"f\", \"argu";
    check(ToolFormat::Hermes, cut, &[text(cut)]);
}

#[test]
fn arguments_given_as_a_json_string() {
    let input = r#"<tool_call>{"name": "f", "arguments": "{\"a\": [1, 2]}"}</tool_call>"#;
    check(
        ToolFormat::Hermes,
        input,
        &[call("f", json!({"a": [1, 2]}))],
    );
}

#[test]
fn llama_json_answer_is_a_call() {
    let input = "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris {x}\"}}";
    check(
        ToolFormat::Llama3Json,
        input,
        &[call("get_weather", json!({"city": "Paris {x}"}))],
    );
    let tagged = "<|python_tag|>{\"name\": \"f\", \"arguments\": {}}; {\"name\": \"g\", \"parameters\": {\"n\": 2}}";
    check(
        ToolFormat::Llama3Json,
        tagged,
        &[call("f", json!({})), call("g", json!({"n": 2}))],
    );
    let lead = "\n {\"name\": \"f\", \"parameters\": {}}";
    check(
        ToolFormat::Llama3Json,
        lead,
        &[text("\n "), call("f", json!({}))],
    );
}

#[test]
fn llama_plain_text_and_json_content_stay_text() {
    let prose = "The answer is {\"name\": \"f\"} maybe";
    check(ToolFormat::Llama3Json, prose, &[text(prose)]);
    let json_content = "{\"city\": \"Paris\"} is the object";
    check(ToolFormat::Llama3Json, json_content, &[text(json_content)]);
    let code = "<|python_tag|>brave_search.call(query=\"x\")";
    check(ToolFormat::Llama3Json, code, &[text(code)]);
}

#[test]
fn mistral_array_and_args_forms() {
    let input = "[TOOL_CALLS] [{\"name\": \"a\", \"arguments\": {\"x\": 1}}, {\"name\": \"b\", \"arguments\": {}}]";
    let want = [call("a", json!({"x": 1})), call("b", json!({}))];
    check(ToolFormat::Mistral, input, &want);
    let v11 = "Sure.[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Oslo\"}";
    let want = [text("Sure."), call("get_weather", json!({"city": "Oslo"}))];
    check(ToolFormat::Mistral, v11, &want);
    // `[TOOL_CALLS]` is a control token the detokenizer drops: the bare list is a call.
    let bare = " [{\"name\": \"a\", \"arguments\": {}}]";
    check(
        ToolFormat::Mistral,
        bare,
        &[text(" "), call("a", json!({}))],
    );
    let prose = "[1] is a footnote, [{x}] too";
    check(ToolFormat::Mistral, prose, &[text(prose)]);
    let bad = "[TOOL_CALLS] [{\"nom\": 1}] tail";
    check(ToolFormat::Mistral, bad, &[text(bad)]);
}

#[test]
fn forced_openings_parse_with_what_follows() {
    for format in [
        ToolFormat::Hermes,
        ToolFormat::Llama3Json,
        ToolFormat::Mistral,
    ] {
        let named = format.forced_opening(Some("lookup"));
        let tail = match format {
            ToolFormat::Mistral => "{\"id\": 7}}]",
            _ => "{\"id\": 7}}",
        };
        let got = parse(format, &format!("{named}{tail}"));
        assert_eq!(got, [call("lookup", json!({"id": 7}))], "{format:?}");
        let open = format.forced_opening(None);
        let got = parse(format, &format!("{open}other\", \"arguments\": {{}}}}"));
        assert_eq!(got.last(), Some(&call("other", json!({}))), "{format:?}");
    }
    assert_eq!(ToolFormat::Hermes.close(), Some("</tool_call>"));
}

#[test]
fn counts_calls() {
    let mut p = ToolCallParser::new(ToolFormat::Hermes);
    p.push("<tool_call>{\"name\": \"a\"}</tool_call><tool_call>{\"name\": \"b\"}");
    p.finish();
    assert_eq!(p.calls(), 2);
}
