//! Anthropic's `POST /v1/messages` through `tower::ServiceExt::oneshot` on a scripted
//! [`FakeClient`]: the message and its event stream, thinking blocks, and errors in
//! Anthropic's shape.

#[path = "common/server.rs"]
mod server;

use axum::body::Body;
use axum::http::{header, Method, StatusCode};
use lmwb::client::fake::Script;
use lmwb::engine::template::Role;
use lmwb::engine::Prompt;
use lmwb::server::ServerConfig;
use serde_json::{json, Value};
use server::*;

fn body(extra: Value) -> Value {
    let mut b = json!({"model": MODEL, "max_tokens": 64,
        "messages": [{"role": "user", "content": "Hi"}]});
    b.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    b
}

/// `(event name, data)` of every SSE frame.
fn events(r: &Reply) -> Vec<(String, Value)> {
    let text = std::str::from_utf8(&r.body).unwrap();
    text.split("\n\n")
        .filter(|f| !f.is_empty())
        .map(|f| {
            let (name, data) = f.split_once('\n').expect("event and data lines");
            let name = name.strip_prefix("event: ").expect("an event line");
            let data = data.strip_prefix("data: ").expect("a data line");
            assert_eq!(
                serde_json::from_str::<Value>(data).unwrap()["type"],
                name,
                "{f}"
            );
            (name.to_string(), serde_json::from_str(data).unwrap())
        })
        .collect()
}

/// An error in Anthropic's shape; returns its `error.type`.
fn anthropic_error(r: &Reply, status: StatusCode) -> String {
    assert_eq!(r.status, status, "{:?}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["type"], "error", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    v["error"]["type"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_message_has_anthropic_shape_and_passes_system_and_settings_on() {
    let f = fake(vec![Script::text("Hello there!")]);
    let app = app(f.clone());
    let b = body(json!({"system": [{"type": "text", "text": "Be brief."}],
        "temperature": 0.5, "top_k": 20, "stop_sequences": ["END"], "metadata": {"user_id": "u"}}));
    let r = send(&app, post("/v1/messages", &b)).await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert!(v["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(
        v["content"],
        json!([{"type": "text", "text": "Hello there!"}])
    );
    assert_eq!(v["stop_reason"], "end_turn");
    assert!(v["stop_sequence"].is_null());
    assert!(v["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert!(v["usage"]["output_tokens"].as_u64().unwrap() > 0);
    let req = &f.requests()[0];
    let Prompt::Chat { messages, .. } = &req.prompt else {
        panic!()
    };
    assert_eq!(
        (messages[0].role, messages[0].content.as_str()),
        (Role::System, "Be brief.")
    );
    assert_eq!(messages[1].role, Role::User);
    assert_eq!((req.sampling.temperature, req.sampling.top_k), (0.5, 20));
    assert_eq!(
        (req.max_tokens, req.stop.clone()),
        (Some(64), vec!["END".to_string()])
    );
}

#[tokio::test]
async fn max_tokens_ends_with_stop_reason_max_tokens() {
    let app = app(fake(vec![Script::text("one two three four")]));
    let v = send(&app, post("/v1/messages", &body(json!({"max_tokens": 2}))))
        .await
        .json();
    assert_eq!(v["stop_reason"], "max_tokens");
    assert_eq!(v["usage"]["output_tokens"], 2);
}

#[tokio::test]
async fn the_stream_sends_anthropic_events_in_order() {
    let app = app(fake(vec![Script::text("Hello streaming world")]));
    let r = send(&app, post("/v1/messages", &body(json!({"stream": true})))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers[header::CONTENT_TYPE], "text/event-stream");
    let ev = events(&r);
    let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[..2], ["message_start", "content_block_start"]);
    assert_eq!(
        names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    assert!(names[2..names.len() - 3]
        .iter()
        .all(|n| *n == "content_block_delta"));
    let text: String = ev
        .iter()
        .filter_map(|(_, d)| d["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "Hello streaming world");
    assert_eq!(ev[0].1["message"]["role"], "assistant");
    let delta = &ev[ev.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert!(delta["usage"]["output_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn thinking_comes_back_as_its_own_block() {
    let think = "<think>Let me ponder.</think>The answer is 4.";
    let app = app(fake(vec![Script::text(think), Script::text(think)]));
    let v = send(&app, post("/v1/messages", &body(json!({}))))
        .await
        .json();
    assert_eq!(v["content"][0]["type"], "thinking");
    assert_eq!(v["content"][0]["thinking"], "Let me ponder.");
    assert_eq!(
        v["content"][1],
        json!({"type": "text", "text": "The answer is 4."})
    );
    let r = send(&app, post("/v1/messages", &body(json!({"stream": true})))).await;
    let ev = events(&r);
    let starts: Vec<(Value, Value)> = ev
        .iter()
        .filter(|(n, _)| n == "content_block_start")
        .map(|(_, d)| (d["index"].clone(), d["content_block"]["type"].clone()))
        .collect();
    assert_eq!(
        starts,
        [(json!(0), json!("thinking")), (json!(1), json!("text"))]
    );
    let field = |name: &str| -> String {
        ev.iter()
            .filter_map(|(_, d)| d["delta"][name].as_str())
            .collect()
    };
    assert_eq!(field("thinking"), "Let me ponder.");
    assert_eq!(field("text"), "The answer is 4.");
}

#[tokio::test]
async fn bad_requests_get_anthropic_errors() {
    let app = app(fake(vec![Script::Fail("boom".into())]));
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            json!({"model": MODEL, "messages": [{"role": "user", "content": "x"}]}),
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
        ),
        (
            body(json!({"max_tokens": 0})),
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
        ),
        (
            body(json!({"messages": []})),
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
        ),
        (
            body(json!({"messages": [{"role": "system", "content": "x"}]})),
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
        ),
        (
            body(
                json!({"messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]}),
            ),
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
        ),
        (
            body(json!({"tools": [{"name": "f"}]})),
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
        ),
        (
            body(json!({"temperature": 1.5})),
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
        ),
        (
            body(json!({"frobnicate": 1})),
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
        ),
        (
            body(json!({"model": "nope"})),
            StatusCode::NOT_FOUND,
            "not_found_error",
        ),
        (
            body(json!({})),
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
        ),
    ];
    for (b, status, kind) in cases {
        let r = send(&app, post("/v1/messages", &b)).await;
        assert_eq!(anthropic_error(&r, status), kind, "{b}");
    }
    let r = send(
        &app,
        request(Method::POST, "/v1/messages", Body::from("{oops")),
    )
    .await;
    assert_eq!(
        anthropic_error(&r, StatusCode::BAD_REQUEST),
        "invalid_request_error"
    );
    let r = send(&app, get("/v1/messages")).await;
    assert_eq!(
        anthropic_error(&r, StatusCode::METHOD_NOT_ALLOWED),
        "invalid_request_error"
    );
}

#[tokio::test]
async fn the_key_comes_as_x_api_key_and_its_absence_is_an_anthropic_401() {
    let config = ServerConfig {
        api_key: Some("sekret".into()),
        ..ServerConfig::default()
    };
    let app = app_with(fake(vec![Script::text("ok")]), config);
    let r = send(&app, post("/v1/messages", &body(json!({})))).await;
    assert_eq!(
        anthropic_error(&r, StatusCode::UNAUTHORIZED),
        "authentication_error"
    );
    let mut req = post("/v1/messages", &body(json!({})));
    req.headers_mut()
        .insert("x-api-key", "sekret".parse().unwrap());
    assert_eq!(send(&app, req).await.status, StatusCode::OK);
}
