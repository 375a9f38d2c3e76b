//! Tool calling through the router on a scripted [`FakeClient`]: the OpenAI and Ollama
//! shapes of calls (plain and streamed), forced calls, tool messages, and every
//! validation error. The model's format comes from the chat template the fake reports.

#[path = "common/ollama.rs"]
mod ollama;
#[path = "common/server.rs"]
mod server;

use axum::http::StatusCode;
use lmwb::client::fake::{FakeClient, Script};
use lmwb::engine::template::Role;
use lmwb::engine::Prompt;
use serde_json::{json, Value};
use server::*;
use std::sync::Arc;

const CALL: &str =
    "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";

fn weather() -> Value {
    json!([{"type": "function", "function": {
        "name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }}, {"type": "function", "function": {"name": "get_time"}}])
}

fn fake_says(text: &str) -> Arc<FakeClient> {
    fake(vec![Script::text(text)])
}

async fn chat(app: &axum::Router, extra: Value) -> Reply {
    send(app, post("/v1/chat/completions", &chat_body(extra))).await
}

#[tokio::test]
async fn a_call_comes_back_as_tool_calls_with_null_content() {
    let f = fake_says(CALL);
    let app = app(f.clone());
    let r = chat(&app, json!({"tools": weather()})).await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    let choice = &v["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    let msg = &choice["message"];
    assert!(msg["content"].is_null(), "{msg}");
    let call = &msg["tool_calls"][0];
    assert!(call["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Paris"}));
    // The tools went to the prompt; nothing was forced.
    let Prompt::Chat { options, .. } = &f.requests()[0].prompt else {
        panic!("a chat prompt")
    };
    assert_eq!(options.tools, weather().as_array().unwrap().clone());
    assert_eq!(options.prefill, "");
}

#[tokio::test]
async fn text_around_calls_and_plain_answers() {
    let app = app(fake_says(&format!("Checking.\n{CALL}")));
    let v = chat(&app, json!({"tools": weather()})).await.json();
    assert_eq!(v["choices"][0]["message"]["content"], "Checking.");
    assert_eq!(
        v["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    // No call: an ordinary answer, no tool_calls key.
    let app = app_fake_plain();
    let v = chat(&app, json!({"tools": weather()})).await.json();
    assert_eq!(v["choices"][0]["message"]["content"], "It is sunny.");
    assert!(v["choices"][0]["message"].get("tool_calls").is_none());
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    // tool_choice none: not offered, not parsed.
    let f = fake_says(CALL);
    let app = server::app(f.clone());
    let v = chat(&app, json!({"tools": weather(), "tool_choice": "none"}))
        .await
        .json();
    assert_eq!(v["choices"][0]["message"]["content"], CALL);
    let Prompt::Chat { options, .. } = &f.requests()[0].prompt else {
        panic!("a chat prompt")
    };
    assert!(options.tools.is_empty());
}

fn app_fake_plain() -> axum::Router {
    app(fake_says("It is sunny."))
}

#[tokio::test]
async fn malformed_calls_are_returned_as_text() {
    let bad = "<tool_call>\n{\"name\": get_weather}\n</tool_call>";
    let app = app(fake_says(bad));
    let v = chat(&app, json!({"tools": weather()})).await.json();
    assert_eq!(v["choices"][0]["message"]["content"], bad);
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn a_streamed_call_is_one_tool_calls_delta() {
    let app = app(fake_says(&format!(
        "Hm. {CALL}<tool_call>{{\"name\": \"get_time\"}}</tool_call>"
    )));
    let r = chat(&app, json!({"tools": weather(), "stream": true})).await;
    assert_eq!(r.status, StatusCode::OK);
    let chunks = r.chunks();
    let deltas: Vec<&Value> = chunks.iter().map(|c| &c["choices"][0]["delta"]).collect();
    let content: String = deltas
        .iter()
        .filter_map(|d| d["content"].as_str())
        .collect();
    assert_eq!(content, "Hm.", "whitespace right before a call is dropped");
    let calls: Vec<&Value> = deltas
        .iter()
        .filter_map(|d| d.get("tool_calls"))
        .map(|c| &c[0])
        .collect();
    assert_eq!(calls.len(), 4, "{calls:?}");
    assert_eq!(calls[0]["index"], 0);
    assert!(calls[0]["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(
        calls[0]["function"],
        json!({"name": "get_weather", "arguments": ""})
    );
    assert_eq!(calls[1]["index"], 0);
    assert!(calls[1].get("id").is_none());
    let args: Value =
        serde_json::from_str(calls[1]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Paris"}));
    assert_eq!(calls[2]["index"], 1);
    assert_eq!(calls[2]["function"]["name"], "get_time");
    assert_eq!(calls[3]["function"]["arguments"], "{}");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn parallel_off_keeps_the_first_call() {
    let two = format!("{CALL}\n<tool_call>{{\"name\": \"get_time\"}}</tool_call>");
    let app = app(fake_says(&two));
    let v = chat(
        &app,
        json!({"tools": weather(), "parallel_tool_calls": false}),
    )
    .await
    .json();
    let calls = v["choices"][0]["message"]["tool_calls"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(calls.len(), 1);
    let v = chat(
        &app,
        json!({"tools": weather(), "parallel_tool_calls": true}),
    )
    .await
    .json();
    assert_eq!(
        v["choices"][0]["message"]["tool_calls"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn a_named_choice_forces_the_call_in_the_prompt() {
    // The model continues after the forced opening: arguments, then the stop string.
    let f = fake_says("{\"city\": \"Oslo\"}}\n");
    let app = app(f.clone());
    let choice = json!({"type": "function", "function": {"name": "get_weather"}});
    let v = chat(&app, json!({"tools": weather(), "tool_choice": choice}))
        .await
        .json();
    let call = &v["choices"][0]["message"]["tool_calls"][0]["function"];
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["arguments"], "{\"city\":\"Oslo\"}");
    let req = &f.requests()[0];
    let Prompt::Chat { options, .. } = &req.prompt else {
        panic!("a chat prompt")
    };
    assert_eq!(
        options.prefill,
        "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
    );
    assert_eq!(req.stop, ["</tool_call>"]);
    // required: the name is the model's.
    let f = fake_says("get_time\", \"arguments\": {}}\n</tool_call>");
    let app = server::app(f.clone());
    let v = chat(
        &app,
        json!({"tools": weather(), "tool_choice": "required", "stream": true}),
    )
    .await;
    let chunks = v.chunks();
    let names: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"].get("name"))
        .collect();
    assert_eq!(names, [&json!("get_time")]);
    let Prompt::Chat { options, .. } = &f.requests()[0].prompt else {
        panic!("a chat prompt")
    };
    assert_eq!(options.prefill, "<tool_call>\n{\"name\": \"");
    // A forced call the model botches comes back as text (the prefill included).
    let app = server::app(fake_says("oops"));
    let v = chat(&app, json!({"tools": weather(), "tool_choice": "required"}))
        .await
        .json();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "<tool_call>\n{\"name\": \"oops"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn the_format_follows_the_template() {
    let llama = "<|start_header_id|>{% if tools %}{{ tools | tojson }}{% endif %}<|python_tag|>";
    let f = Arc::new(
        FakeClient::new(
            "fake",
            vec![Script::text("{\"name\": \"get_time\", \"parameters\": {}}")],
        )
        .with_template(llama),
    );
    let v = chat(&app(f), json!({"tools": weather()})).await.json();
    assert_eq!(
        v["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "get_time"
    );
    let mistral = "[AVAILABLE_TOOLS]{{ tools }}[TOOL_CALLS]";
    let f = Arc::new(
        FakeClient::new(
            "fake",
            vec![Script::text(
                "[TOOL_CALLS] [{\"name\": \"get_time\", \"arguments\": {}}]",
            )],
        )
        .with_template(mistral),
    );
    let v = chat(&app(f), json!({"tools": weather(), "stream": true})).await;
    let last = v.chunks().last().unwrap().clone();
    assert_eq!(last["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn assistant_tool_calls_and_tool_messages_reach_the_template() {
    let f = fake_says("It is 18C.");
    let app = app(f.clone());
    let messages = json!([
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_9", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_9", "content": "18C"},
    ]);
    let r = chat(&app, json!({"messages": messages, "tools": weather()})).await;
    assert_eq!(r.json()["choices"][0]["message"]["content"], "It is 18C.");
    let Prompt::Chat { messages, .. } = &f.requests()[0].prompt else {
        panic!("a chat prompt")
    };
    assert_eq!(messages[1].role, Role::Assistant);
    assert_eq!(messages[1].tool_calls[0].id, "call_9");
    assert_eq!(messages[1].tool_calls[0].name, "get_weather");
    assert_eq!(
        messages[1].tool_calls[0].arguments,
        json!({"city": "Paris"})
    );
    assert_eq!(messages[2].role, Role::Tool);
    assert_eq!(messages[2].tool_call_id.as_deref(), Some("call_9"));
    assert_eq!(
        messages[2].name.as_deref(),
        Some("get_weather"),
        "named after its call"
    );
}

#[tokio::test]
async fn every_bad_tool_field_is_a_400_naming_it() {
    let app = app(fake(vec![]));
    let f = |name: &str| json!({"type": "function", "function": {"name": name}});
    let asst = |calls: Value| json!([{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": calls}]);
    let cases: Vec<(Value, &str)> = vec![
        (json!({"tools": {"a": 1}}), "tools"),
        (json!({"tools": [f("ok"), 3]}), "tools[1]"),
        (
            json!({"tools": [f("ok"), f("bad name!")]}),
            "tools[1].function.name",
        ),
        (
            json!({"tools": [f(&"x".repeat(65))]}),
            "tools[0].function.name",
        ),
        (json!({"tools": [f("a"), f("a")]}), "tools[1].function.name"),
        (
            json!({"tools": [{"type": "function"}]}),
            "tools[0].function",
        ),
        (
            json!({"tools": [{"type": "function", "function": {}}]}),
            "tools[0].function.name",
        ),
        (
            json!({"tools": [{"function": {"name": "a"}}]}),
            "tools[0].type",
        ),
        (
            json!({"tools": [{"type": "code_interpreter"}]}),
            "tools[0].type",
        ),
        (
            json!({"tools": [{"type": "function", "function": {"name": "a", "parameters": []}}]}),
            "tools[0].function.parameters",
        ),
        (
            json!({"tools": [{"type": "function", "function": {"name": "a", "description": 1}}]}),
            "tools[0].function.description",
        ),
        (
            json!({"tools": [{"type": "function", "function": {"name": "a", "colour": 1}}]}),
            "tools[0].function.colour",
        ),
        (
            json!({"tools": [f("a")], "tool_choice": "sometimes"}),
            "tool_choice",
        ),
        (json!({"tools": [f("a")], "tool_choice": 3}), "tool_choice"),
        (
            json!({"tools": [f("a")], "tool_choice": {"type": "function", "function": {"name": "b"}}}),
            "tool_choice.function.name",
        ),
        (
            json!({"tools": [f("a")], "tool_choice": {"type": "function"}}),
            "tool_choice.function.name",
        ),
        (
            json!({"tools": [f("a")], "tool_choice": {"type": "allowed_tools"}}),
            "tool_choice.type",
        ),
        (
            json!({"tool_choice": {"type": "function", "function": {"name": "a"}}}),
            "tool_choice",
        ),
        (
            json!({"tools": [f("a")], "parallel_tool_calls": "yes"}),
            "parallel_tool_calls",
        ),
        (json!({"function_call": "auto"}), "function_call"),
        (
            json!({"messages": asst(json!([{"id": "c", "type": "function", "function": {"name": "a", "arguments": "{not json"}}]))}),
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            json!({"messages": asst(json!([{"id": "c", "function": {"name": "a", "arguments": "[1]"}}]))}),
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            json!({"messages": asst(json!([{"id": "c", "function": {"arguments": "{}"}}]))}),
            "messages[1].tool_calls[0].function.name",
        ),
        (
            json!({"messages": [{"role": "tool", "content": "18C"}]}),
            "messages[0].tool_call_id",
        ),
        (
            json!({"messages": [{"role": "user", "content": "q", "tool_calls": [{"function": {"name": "a"}}]}]}),
            "messages[0].tool_calls",
        ),
    ];
    for (extra, param) in cases {
        let r = chat(&app, extra.clone()).await;
        let e = assert_error(&r, StatusCode::BAD_REQUEST);
        assert_eq!(e["param"].as_str(), Some(param), "{extra}: {e}");
        assert!(
            e["message"].as_str().unwrap().contains(param),
            "{extra}: {e}"
        );
    }
}

mod ollama_api {
    use super::*;
    use crate::ollama::{self, chat as ollama_chat, lines};

    #[tokio::test]
    async fn ollama_chat_returns_tool_calls_with_object_arguments() {
        let f = fake_says(&format!("Sure. {CALL}"));
        let app = app(f.clone());
        let body = ollama_chat(json!({"tools": weather(), "stream": false}));
        let r = send(&app, post("/api/chat", &body)).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let v = r.json();
        assert_eq!(v["message"]["content"], "Sure.");
        assert_eq!(
            v["message"]["tool_calls"],
            json!([{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}])
        );
        assert_eq!(v["done"], true);
        ollama::assert_in_spec(&v, "ChatResponse");
        let Prompt::Chat { options, .. } = &f.requests()[0].prompt else {
            panic!("a chat prompt")
        };
        assert_eq!(options.tools.len(), 2);
    }

    #[tokio::test]
    async fn ollama_streams_a_call_in_one_line() {
        let app = app(fake_says(&format!("Hm, {CALL}")));
        let body = ollama_chat(json!({"tools": weather()}));
        let r = send(&app, post("/api/chat", &body)).await;
        let lines = lines(&r);
        let content: String = lines
            .iter()
            .filter_map(|l| l["message"]["content"].as_str())
            .collect();
        assert_eq!(content, "Hm,");
        let calls: Vec<&Value> = lines
            .iter()
            .filter_map(|l| l["message"].get("tool_calls"))
            .collect();
        assert_eq!(
            calls,
            [&json!([{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}])]
        );
        assert_eq!(lines.last().unwrap()["done"], true);
        for l in &lines[..lines.len() - 1] {
            ollama::assert_in_spec(l, "ChatStreamEvent");
        }
    }

    #[tokio::test]
    async fn ollama_tool_messages_reach_the_template() {
        let f = fake_says("18C.");
        let app = app(f.clone());
        let messages = json!([
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
            {"role": "tool", "content": "18C", "tool_name": "get_weather"},
        ]);
        let body =
            json!({"model": MODEL, "messages": messages, "tools": weather(), "stream": false});
        let r = send(&app, post("/api/chat", &body)).await;
        assert_eq!(r.json()["message"]["content"], "18C.");
        let Prompt::Chat { messages, .. } = &f.requests()[0].prompt else {
            panic!("a chat prompt")
        };
        assert_eq!(messages[1].tool_calls[0].name, "get_weather");
        assert_eq!(
            messages[1].tool_calls[0].arguments,
            json!({"city": "Paris"})
        );
        assert!(messages[1].tool_calls[0].id.starts_with("call_"));
        assert_eq!(messages[2].role, Role::Tool);
        assert_eq!(messages[2].name.as_deref(), Some("get_weather"));
    }
}
