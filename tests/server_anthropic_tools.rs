//! Tool use through Anthropic's Messages API on a scripted [`FakeClient`]: `tool_use`
//! blocks and `stop_reason: "tool_use"` (plain and streamed), `tool_result` blocks in,
//! `tool_choice`, and the validation errors.

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

fn body(extra: Value) -> Value {
    let mut b = json!({"model": MODEL, "max_tokens": 64,
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": [{"name": "get_weather", "description": "Weather in a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]});
    b.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    b
}

fn says(text: &str) -> Arc<FakeClient> {
    fake(vec![Script::text(text)])
}

fn events(r: &Reply) -> Vec<(String, Value)> {
    let text = std::str::from_utf8(&r.body).unwrap();
    text.split("\n\n")
        .filter(|f| !f.is_empty())
        .map(|f| {
            let (name, data) = f.split_once('\n').unwrap();
            let name = name.strip_prefix("event: ").unwrap().to_string();
            let data = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            (name, data)
        })
        .collect()
}

#[tokio::test]
async fn a_call_is_a_tool_use_block() {
    let f = says(&format!("Let me look.\n{CALL}"));
    let app = app(f.clone());
    let r = send(&app, post("/v1/messages", &body(json!({})))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let v = r.json();
    assert_eq!(v["stop_reason"], "tool_use");
    assert_eq!(
        v["content"][0],
        json!({"type": "text", "text": "Let me look."})
    );
    let block = &v["content"][1];
    assert_eq!(block["type"], "tool_use");
    assert!(block["id"].as_str().unwrap().starts_with("toolu_"));
    assert_eq!(block["name"], "get_weather");
    assert_eq!(block["input"], json!({"city": "Paris"}));
    let Prompt::Chat { options, .. } = &f.requests()[0].prompt else {
        panic!("a chat prompt")
    };
    let def = &options.tools[0]["function"];
    assert_eq!(def["name"], "get_weather");
    assert_eq!(def["parameters"]["properties"]["city"]["type"], "string");
}

#[tokio::test]
async fn a_streamed_call_is_a_tool_use_block_with_input_json_delta() {
    let app = app(says(&format!("Hm.{CALL}")));
    let r = send(&app, post("/v1/messages", &body(json!({"stream": true})))).await;
    let ev = events(&r);
    let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    let starts: Vec<&Value> = ev
        .iter()
        .filter(|(n, _)| n == "content_block_start")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(starts[0]["content_block"]["type"], "text");
    let tool = &starts[1];
    assert_eq!(tool["index"], 1);
    assert_eq!(tool["content_block"]["type"], "tool_use");
    assert_eq!(tool["content_block"]["name"], "get_weather");
    assert_eq!(tool["content_block"]["input"], json!({}));
    let json_delta: String = ev
        .iter()
        .filter(|(_, d)| d["index"] == 1 && d["delta"]["type"] == "input_json_delta")
        .map(|(_, d)| d["delta"]["partial_json"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&json_delta).unwrap(),
        json!({"city": "Paris"})
    );
    let stops = ev.iter().filter(|(n, _)| n == "content_block_stop").count();
    assert_eq!(stops, 2);
    let delta = ev.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert_eq!(delta.1["delta"]["stop_reason"], "tool_use");
}

#[tokio::test]
async fn tool_choice_any_and_tool_force_a_call() {
    let f = says("{\"city\": \"Oslo\"}}");
    let app = app(f.clone());
    let choice = json!({"tool_choice": {"type": "tool", "name": "get_weather"}});
    let v = send(&app, post("/v1/messages", &body(choice))).await.json();
    assert_eq!(v["content"][0]["input"], json!({"city": "Oslo"}));
    assert_eq!(v["stop_reason"], "tool_use");
    let Prompt::Chat { options, .. } = &f.requests()[0].prompt else {
        panic!("a chat prompt")
    };
    assert!(options
        .prefill
        .ends_with("\"get_weather\", \"arguments\": "));
    let app = server::app(says("x"));
    let none = json!({"tool_choice": {"type": "none"}});
    let v = send(&app, post("/v1/messages", &body(none))).await.json();
    assert_eq!(v["content"], json!([{"type": "text", "text": "x"}]));
    assert_eq!(v["stop_reason"], "end_turn");
}

#[tokio::test]
async fn tool_use_and_tool_result_blocks_reach_the_template() {
    let f = says("It is 18C.");
    let app = app(f.clone());
    let messages = json!([
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [{"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
            "content": [{"type": "text", "text": "18C"}]}, {"type": "text", "text": "Thanks"}]},
    ]);
    let r = send(
        &app,
        post("/v1/messages", &body(json!({"messages": messages}))),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let Prompt::Chat { messages, .. } = &f.requests()[0].prompt else {
        panic!("a chat prompt")
    };
    assert_eq!(messages[1].content, "Checking.");
    assert_eq!(messages[1].tool_calls[0].id, "toolu_1");
    assert_eq!(
        messages[1].tool_calls[0].arguments,
        json!({"city": "Paris"})
    );
    assert_eq!(messages[2].role, Role::Tool);
    assert_eq!(messages[2].content, "18C");
    assert_eq!(messages[2].tool_call_id.as_deref(), Some("toolu_1"));
    assert_eq!(
        (messages[3].role, messages[3].content.as_str()),
        (Role::User, "Thanks")
    );
}

#[tokio::test]
async fn bad_tools_are_400s_naming_the_field() {
    let app = app(fake(vec![]));
    let cases = [
        (json!({"tools": [{"name": "f"}]}), "tools.0.input_schema"),
        (
            json!({"tools": [{"name": "bad name", "input_schema": {}}]}),
            "tools.0.name",
        ),
        (
            json!({"tools": [{"type": "bash_20250124", "name": "bash"}]}),
            "tools.0.type",
        ),
        (json!({"tools": 3}), "tools"),
        (
            json!({"tool_choice": {"type": "tool", "name": "nope"}}),
            "tool_choice.name",
        ),
        (
            json!({"tool_choice": {"type": "sometimes"}}),
            "tool_choice.type",
        ),
        (json!({"tool_choice": "auto"}), "tool_choice"),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "tool_result"}]}]}),
            "messages.0.content.0.tool_use_id",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "tool_use", "name": "f"}]}]}),
            "messages.0.content.0.type",
        ),
        (
            json!({"messages": [{"role": "assistant", "content": [{"type": "tool_use", "name": "f", "input": 1}]}]}),
            "messages.0.content.0.input",
        ),
    ];
    for (extra, field) in cases {
        let r = send(&app, post("/v1/messages", &body(extra.clone()))).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{extra}");
        let v = r.json();
        assert_eq!(v["error"]["type"], "invalid_request_error", "{extra}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(field), "{extra}: {msg}");
    }
}
