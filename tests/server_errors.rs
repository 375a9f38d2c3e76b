//! Every bad request to the server's router, through `tower::ServiceExt::oneshot` on a
//! scripted [`FakeClient`]: its status and OpenAI's error shape naming the field; auth,
//! CORS, the Host check, 413, 404/405/501 routes.

#[path = "common/server.rs"]
mod server;

use axum::body::Body;
use axum::http::{header, Method, StatusCode};
use lmwb::client::fake::Script;
use lmwb::server::ServerConfig;
use serde_json::{json, Value};
use server::*;

#[tokio::test]
async fn every_bad_chat_request_is_a_4xx_in_openai_shape_naming_the_field() {
    let app = app(fake(vec![]));
    let user = json!([{"role": "user", "content": "hi"}]);
    let cases: Vec<(Value, StatusCode, Option<&str>)> = vec![
        (json!([]), StatusCode::BAD_REQUEST, None),
        (
            json!({"messages": user}),
            StatusCode::BAD_REQUEST,
            Some("model"),
        ),
        (
            json!({"model": 5, "messages": user}),
            StatusCode::BAD_REQUEST,
            Some("model"),
        ),
        (
            json!({"model": "nope", "messages": user}),
            StatusCode::NOT_FOUND,
            Some("model"),
        ),
        (
            json!({"model": MODEL}),
            StatusCode::BAD_REQUEST,
            Some("messages"),
        ),
        (
            json!({"model": MODEL, "messages": []}),
            StatusCode::BAD_REQUEST,
            Some("messages"),
        ),
        (
            json!({"model": MODEL, "messages": "hi"}),
            StatusCode::BAD_REQUEST,
            Some("messages"),
        ),
        (
            json!({"model": MODEL, "messages": [{"role": "wizard", "content": "x"}]}),
            StatusCode::BAD_REQUEST,
            Some("messages[0].role"),
        ),
        (
            json!({"model": MODEL, "messages": [{"role": "user"}]}),
            StatusCode::BAD_REQUEST,
            Some("messages[0].content"),
        ),
        (
            json!({"model": MODEL, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}),
            StatusCode::BAD_REQUEST,
            Some("messages[0].content[0].type"),
        ),
        (
            chat_body(json!({"temperature": "hot"})),
            StatusCode::BAD_REQUEST,
            Some("temperature"),
        ),
        (
            chat_body(json!({"temperature": 3})),
            StatusCode::BAD_REQUEST,
            Some("temperature"),
        ),
        (
            chat_body(json!({"top_p": 0})),
            StatusCode::BAD_REQUEST,
            Some("top_p"),
        ),
        (
            chat_body(json!({"min_p": 2})),
            StatusCode::BAD_REQUEST,
            Some("min_p"),
        ),
        (
            chat_body(json!({"presence_penalty": 9})),
            StatusCode::BAD_REQUEST,
            Some("presence_penalty"),
        ),
        (
            chat_body(json!({"max_tokens": 0})),
            StatusCode::BAD_REQUEST,
            Some("max_tokens"),
        ),
        (
            chat_body(json!({"max_tokens": -1})),
            StatusCode::BAD_REQUEST,
            Some("max_tokens"),
        ),
        (
            chat_body(json!({"max_completion_tokens": 0})),
            StatusCode::BAD_REQUEST,
            Some("max_completion_tokens"),
        ),
        (
            chat_body(json!({"n": 0})),
            StatusCode::BAD_REQUEST,
            Some("n"),
        ),
        (
            chat_body(json!({"n": 100})),
            StatusCode::BAD_REQUEST,
            Some("n"),
        ),
        (
            chat_body(json!({"stop": ["ok", ""]})),
            StatusCode::BAD_REQUEST,
            Some("stop"),
        ),
        (
            chat_body(json!({"stop": 5})),
            StatusCode::BAD_REQUEST,
            Some("stop"),
        ),
        (
            chat_body(json!({"stream": "yes"})),
            StatusCode::BAD_REQUEST,
            Some("stream"),
        ),
        (
            chat_body(json!({"stream_options": {"include_usage": true}})),
            StatusCode::BAD_REQUEST,
            Some("stream_options"),
        ),
        (
            chat_body(json!({"tools": [{"type": "function", "function": {"name": "a b"}}]})),
            StatusCode::BAD_REQUEST,
            Some("tools[0].function.name"),
        ),
        (
            chat_body(json!({"tool_choice": "required"})),
            StatusCode::BAD_REQUEST,
            Some("tool_choice"),
        ),
        (
            chat_body(json!({"response_format": {"type": "json_schema", "json_schema": {}}})),
            StatusCode::BAD_REQUEST,
            Some("response_format.json_schema.name"),
        ),
        (
            chat_body(json!({"response_format": {"type": "json_schema"}})),
            StatusCode::BAD_REQUEST,
            Some("response_format.json_schema"),
        ),
        (
            chat_body(
                json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}),
            ),
            StatusCode::BAD_REQUEST,
            Some("response_format.json_schema.schema"),
        ),
        (
            chat_body(
                json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}, "strict": "yes"}}}),
            ),
            StatusCode::BAD_REQUEST,
            Some("response_format.json_schema.strict"),
        ),
        (
            chat_body(
                json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}, "extra": 1}}}),
            ),
            StatusCode::BAD_REQUEST,
            Some("response_format.json_schema.extra"),
        ),
        (
            chat_body(
                json!({"response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": {
                "type": "object", "properties": {"age": {"type": "integer", "minimum": 0}}}}}}),
            ),
            StatusCode::BAD_REQUEST,
            Some("response_format.json_schema.schema.properties.age.minimum"),
        ),
        (
            chat_body(
                json!({"response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": {
                "type": "string", "format": "date"}}}}),
            ),
            StatusCode::BAD_REQUEST,
            Some("response_format.json_schema.schema.format"),
        ),
        (
            chat_body(json!({"response_format": {"type": "xml"}})),
            StatusCode::BAD_REQUEST,
            Some("response_format.type"),
        ),
        (
            chat_body(json!({"response_format": "json"})),
            StatusCode::BAD_REQUEST,
            Some("response_format"),
        ),
        (
            chat_body(json!({"response_format": {"type": "json_object", "schema": {}}})),
            StatusCode::BAD_REQUEST,
            Some("response_format.schema"),
        ),
        (
            chat_body(json!({"logprobs": "yes"})),
            StatusCode::BAD_REQUEST,
            Some("logprobs"),
        ),
        (
            chat_body(json!({"top_logprobs": 3})),
            StatusCode::BAD_REQUEST,
            Some("top_logprobs"),
        ),
        (
            chat_body(json!({"logprobs": true, "top_logprobs": 21})),
            StatusCode::BAD_REQUEST,
            Some("top_logprobs"),
        ),
        (
            chat_body(json!({"logprobs": true, "top_logprobs": -1})),
            StatusCode::BAD_REQUEST,
            Some("top_logprobs"),
        ),
        (
            chat_body(json!({"logit_bias": {"1": 5}})),
            StatusCode::BAD_REQUEST,
            Some("logit_bias"),
        ),
        (
            chat_body(json!({"functions": []})),
            StatusCode::BAD_REQUEST,
            Some("functions"),
        ),
        (
            chat_body(json!({"frobnicate": 1})),
            StatusCode::BAD_REQUEST,
            Some("frobnicate"),
        ),
        (
            json!({"model": MODEL, "messages": [{"role": "assistant", "content": null, "tool_calls": [{"id": "1"}]}]}),
            StatusCode::BAD_REQUEST,
            Some("messages[0].tool_calls[0].function"),
        ),
    ];
    for (body, status, param) in cases {
        let r = send(&app, post("/v1/chat/completions", &body)).await;
        let e = assert_error(&r, status);
        assert_eq!(e["param"].as_str(), param, "{body}: {e}");
    }
}

#[tokio::test]
async fn bad_bodies_and_bad_completion_prompts_are_400() {
    let app = app(fake(vec![]));
    for raw in [
        &b"{not json"[..],
        b"",
        b"   ",
        b"{\"model\": \"\xff\"}",
        b"null",
    ] {
        let r = send(
            &app,
            request(Method::POST, "/v1/chat/completions", raw.to_vec()),
        )
        .await;
        assert_error(&r, StatusCode::BAD_REQUEST);
    }
    let cases = [
        json!({"model": MODEL}),
        json!({"model": MODEL, "prompt": ""}),
        json!({"model": MODEL, "prompt": ["a", "b"]}),
        json!({"model": MODEL, "prompt": {"x": 1}}),
        json!({"model": MODEL, "prompt": "x", "echo": true}),
        json!({"model": MODEL, "prompt": "x", "suffix": "y"}),
        json!({"model": MODEL, "prompt": "x", "best_of": 3}),
        json!({"model": MODEL, "prompt": "x", "logprobs": 6}),
        json!({"model": MODEL, "prompt": "x", "logprobs": true}),
        json!({"model": MODEL, "prompt": "x", "top_logprobs": 2}),
        json!({"model": MODEL, "prompt": "x", "response_format": {"type": "json_object"}}),
    ];
    for body in cases {
        let e = assert_error(
            &send(&app, post("/v1/completions", &body)).await,
            StatusCode::BAD_REQUEST,
        );
        assert!(e["param"].is_string(), "{body}: {e}");
    }
}

#[tokio::test]
async fn an_engine_failure_is_a_500_in_shape_and_a_refused_prompt_a_400() {
    let app = app(fake(vec![Script::Fail("boom".into())]));
    let e = assert_error(
        &send(&app, post("/v1/chat/completions", &chat_body(json!({})))).await,
        StatusCode::INTERNAL_SERVER_ERROR,
    );
    assert_eq!(e["type"], "server_error");
    let e = assert_error(
        &send(
            &app,
            post("/v1/chat/completions", &chat_body(json!({"stream": true}))),
        )
        .await,
        StatusCode::INTERNAL_SERVER_ERROR,
    );
    assert!(e["message"].as_str().unwrap().contains("boom"));
}

#[tokio::test]
async fn other_routes_answer_501_404_or_405_in_shape() {
    let app = app(fake(vec![]));
    for path in [
        "/v1/responses",
        "/v1/audio/speech",
        "/v1/images/generations",
        "/v1/files",
        "/v1/batches",
        "/v1/moderations",
    ] {
        let r = send(&app, post(path, &json!({}))).await;
        assert_error(&r, StatusCode::NOT_IMPLEMENTED);
    }
    assert_error(&send(&app, get("/v2/nothing")).await, StatusCode::NOT_FOUND);
    let r = send(&app, get("/v1/chat/completions")).await;
    assert_error(&r, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers[header::ALLOW], "POST");
}

#[tokio::test]
async fn the_api_key_is_required_everywhere_but_health() {
    let config = ServerConfig {
        api_key: Some("sekret".into()),
        ..ServerConfig::default()
    };
    let app = app_with(fake(vec![]), config);
    let e = assert_error(
        &send(&app, get("/v1/models")).await,
        StatusCode::UNAUTHORIZED,
    );
    assert_eq!(e["code"], "invalid_api_key");
    let with = |name: &str, value: &str| {
        let mut r = get("/v1/models");
        r.headers_mut().insert(
            header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
        r
    };
    assert_eq!(
        send(&app, with("authorization", "Bearer wrong"))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&app, with("authorization", "Bearer sekret"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, with("x-api-key", "sekret")).await.status,
        StatusCode::OK
    );
    assert_eq!(send(&app, get("/health")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn cors_answers_only_allowed_origins() {
    let config = ServerConfig {
        cors_origins: vec!["http://ok.example".into()],
        ..ServerConfig::default()
    };
    let app = app_with(fake(vec![]), config);
    let from = |origin: &str| {
        let mut r = get("/v1/models");
        r.headers_mut()
            .insert(header::ORIGIN, origin.parse().unwrap());
        r
    };
    let ok = send(&app, from("http://ok.example")).await;
    assert_eq!(
        ok.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "http://ok.example"
    );
    let evil = send(&app, from("http://evil.example")).await;
    assert!(!evil
        .headers
        .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
    let mut pre = request(Method::OPTIONS, "/v1/chat/completions", Body::empty());
    pre.headers_mut()
        .insert(header::ORIGIN, "http://ok.example".parse().unwrap());
    pre.headers_mut().insert(
        header::ACCESS_CONTROL_REQUEST_METHOD,
        "POST".parse().unwrap(),
    );
    let r = send(&app, pre).await;
    assert!(r.status.is_success(), "{:?}", r.status);
    assert_eq!(
        r.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "http://ok.example"
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let config = ServerConfig {
        body_limit: 1024,
        ..ServerConfig::default()
    };
    let app = app_with(fake(vec![]), config);
    let big = chat_body(json!({"messages": [{"role": "user", "content": "x".repeat(4096)}]}));
    assert_error(
        &send(&app, post("/v1/chat/completions", &big)).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    );
}

/// A streaming request whose body is not read yet: it holds its place in the queue.
#[tokio::test]
async fn a_loopback_server_refuses_foreign_host_names() {
    let app = app(fake(vec![]));
    let host = |h: &str| {
        let mut r = get("/v1/models");
        r.headers_mut().insert(header::HOST, h.parse().unwrap());
        r
    };
    for ok in [
        "localhost:8080",
        "127.0.0.1:1234",
        "[::1]:80",
        "localhost",
        "app.localhost",
    ] {
        assert_eq!(send(&app, host(ok)).await.status, StatusCode::OK, "{ok}");
    }
    for bad in [
        "evil.example",
        "evil.example:8080",
        "127.0.0.1.evil.example",
    ] {
        let e = assert_error(&send(&app, host(bad)).await, StatusCode::FORBIDDEN);
        assert_eq!(e["code"], "forbidden_host");
    }
    let open = ServerConfig {
        host: "0.0.0.0".into(),
        ..ServerConfig::default()
    };
    let app = app_with(fake(vec![]), open);
    assert_eq!(
        send(&app, host("my-box.lan:8080")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_body_without_json_content_type_is_accepted() {
    let app = app(fake(vec![Script::text("ok")]));
    let body = chat_body(json!({})).to_string();
    for content_type in [None, Some("application/x-www-form-urlencoded")] {
        let mut req = axum::http::Request::builder()
            .method(Method::POST)
            .uri("/v1/chat/completions");
        if let Some(t) = content_type {
            req = req.header(header::CONTENT_TYPE, t);
        }
        let r = send(&app, req.body(Body::from(body.clone())).unwrap()).await;
        assert_eq!(r.status, StatusCode::OK, "{content_type:?}");
    }
}
