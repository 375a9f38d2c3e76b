//! Ollama's API errors through `tower::ServiceExt::oneshot` on a scripted [`FakeClient`]:
//! unsupported fields refused by name, statuses and Ollama's `{"error": …}` shape, and
//! no value in any field ever a 5xx.

#[path = "common/ollama.rs"]
mod ollama;
#[path = "common/server.rs"]
mod server;

use axum::http::{header, Method, StatusCode};
use lmwb::client::fake::Script;
use lmwb::server::ServerConfig;
use ollama::*;
use serde_json::json;
use server::*;

#[tokio::test]
async fn unsupported_fields_are_refused_by_name() {
    let app = app(fake(vec![]));
    for (path, body, name) in [
        (
            "/api/chat",
            chat(
                json!({"tools": [{"type": "function", "function": {"name": "f g", "parameters": {}}}]}),
            ),
            "tools[0].function.name",
        ),
        ("/api/chat", chat(json!({"format": "yaml"})), "format"),
        (
            "/api/chat",
            chat(
                json!({"format": {"type": "object", "properties": {"a": {"type": "string", "pattern": "x"}}}}),
            ),
            "format.properties.a.pattern",
        ),
        ("/api/generate", gen(json!({"format": 3})), "format"),
        ("/api/chat", chat(json!({"think": "high"})), "think"),
        ("/api/chat", chat(json!({"logprobs": "yes"})), "logprobs"),
        (
            "/api/chat",
            chat(json!({"top_logprobs": 2})),
            "top_logprobs",
        ),
        (
            "/api/generate",
            gen(json!({"logprobs": true, "top_logprobs": 21})),
            "top_logprobs",
        ),
        (
            "/api/chat",
            chat(json!({"options": {"num_ctx": -5}})),
            "num_ctx",
        ),
        (
            "/api/chat",
            chat(json!({"options": {"num_gpu": 1}})),
            "num_gpu",
        ),
        (
            "/api/chat",
            chat(json!({"options": {"temperature": "hot"}})),
            "temperature",
        ),
        (
            "/api/chat",
            chat(json!({"options": {"num_predict": 0}})),
            "num_predict",
        ),
        ("/api/chat", chat(json!({"bogus": 1})), "bogus"),
        (
            "/api/chat",
            json!({"model": MODEL, "messages": [{"role": "user", "content": "x", "images": ["aGk="]}]}),
            "images",
        ),
        (
            "/api/chat",
            json!({"model": MODEL, "messages": [{"role": "user", "content": "x", "tool_calls": [{"function": {"name": "f"}}]}]}),
            "messages[0].tool_calls",
        ),
        (
            "/api/chat",
            json!({"model": MODEL, "messages": [{"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": [1]}}]}]}),
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            "/api/chat",
            json!({"model": MODEL, "messages": [{"role": "assistant", "content": "", "tool_calls": "f"}]}),
            "messages[0].tool_calls",
        ),
        (
            "/api/chat",
            json!({"model": MODEL, "messages": [{"role": "robot", "content": "x"}]}),
            "robot",
        ),
        ("/api/generate", gen(json!({"images": ["aGk="]})), "images"),
        ("/api/generate", gen(json!({"suffix": "end"})), "suffix"),
        (
            "/api/generate",
            gen(json!({"template": "{{ .Prompt }}"})),
            "template",
        ),
        ("/api/generate", gen(json!({"context": [1, 2]})), "context"),
        ("/api/generate", gen(json!({"stream": "yes"})), "stream"),
        ("/api/generate", json!({"prompt": "x"}), "model"),
    ] {
        let r = send(&app, post(path, &body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        let m = ollama_error(&r, StatusCode::BAD_REQUEST);
        assert!(m.contains(name), "{body}: {m}");
    }
}

#[tokio::test]
async fn errors_have_ollama_shape_and_status() {
    let app = app(fake(vec![]));
    let r = send(
        &app,
        post(
            "/api/chat",
            &json!({"model": "nope", "messages": [{"role": "user", "content": "x"}]}),
        ),
    )
    .await;
    assert!(ollama_error(&r, StatusCode::NOT_FOUND).contains("nope"));
    let r = send(&app, post("/api/show", &json!({"model": "nope"}))).await;
    ollama_error(&r, StatusCode::NOT_FOUND);
    let r = send(&app, get("/api/chat")).await;
    ollama_error(&r, StatusCode::METHOD_NOT_ALLOWED);
    let r = send(&app, post("/api/tags", &json!({}))).await;
    ollama_error(&r, StatusCode::METHOD_NOT_ALLOWED);
    let r = send(&app, request(Method::POST, "/api/chat", "{not json")).await;
    ollama_error(&r, StatusCode::BAD_REQUEST);
    let r = send(&app, request(Method::POST, "/api/chat", "")).await;
    ollama_error(&r, StatusCode::BAD_REQUEST);
    let r = send(&app, post("/api/pull", &json!({"model": "x"}))).await;
    ollama_error(&r, StatusCode::NOT_IMPLEMENTED);
    let r = send(&app, get("/api/nothing")).await;
    ollama_error(&r, StatusCode::NOT_FOUND);
    let small = ServerConfig {
        body_limit: 64,
        ..ServerConfig::default()
    };
    let app = app_with(fake(vec![]), small);
    let b = chat(json!({"messages": [{"role": "user", "content": "x".repeat(200)}]}));
    ollama_error(
        &send(&app, post("/api/chat", &b)).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    );
}

#[tokio::test]
async fn a_full_queue_is_429_with_retry_after_and_loading_is_503() {
    let config = ServerConfig {
        concurrency: 1,
        queue: 0,
        ..ServerConfig::default()
    };
    let slow = std::sync::Arc::new(
        lmwb::client::fake::FakeClient::new("fake", vec![Script::Reply(vec!["t ".into(); 50])])
            .with_delay(std::time::Duration::from_millis(20)),
    );
    let app = app_with(slow, config);
    let first = tokio::spawn({
        let app = app.clone();
        async move { send(&app, post("/api/chat", &chat(json!({"stream": false})))).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let r = send(&app, post("/api/chat", &chat(json!({"stream": false})))).await;
    ollama_error(&r, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers[header::RETRY_AFTER], "1");
    assert_eq!(first.await.unwrap().status, StatusCode::OK);

    let state = std::sync::Arc::new(lmwb::server::ServerState::new(
        &ServerConfig::default(),
        vec![],
    ));
    let app = lmwb::server::router(state);
    let r = send(&app, post("/api/generate", &gen(json!({})))).await;
    ollama_error(&r, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers[header::RETRY_AFTER], "1");
}

#[tokio::test]
async fn any_value_in_any_field_is_never_a_server_error() {
    let values = [
        json!(null),
        json!(true),
        json!(0),
        json!(-1),
        json!(1.5),
        json!(1e300),
        json!(""),
        json!("x"),
        json!([]),
        json!(["a", 1]),
        json!({}),
        json!({"a": 1}),
    ];
    let chat_fields = [
        "model",
        "messages",
        "options",
        "stream",
        "think",
        "keep_alive",
        "tools",
        "format",
        "logprobs",
        "top_logprobs",
    ];
    let gen_fields = [
        "model",
        "prompt",
        "system",
        "raw",
        "options",
        "stream",
        "think",
        "keep_alive",
        "suffix",
        "images",
        "format",
        "template",
        "context",
        "logprobs",
        "top_logprobs",
    ];
    let option_fields = [
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "repeat_penalty",
        "repeat_last_n",
        "presence_penalty",
        "frequency_penalty",
        "seed",
        "num_predict",
        "stop",
        "num_ctx",
    ];
    let message_fields = [
        "role",
        "content",
        "thinking",
        "images",
        "tool_calls",
        "tool_name",
    ];
    let mut cases = Vec::new();
    for v in &values {
        for f in chat_fields {
            let mut b = chat(json!({"stream": false}));
            b[f] = v.clone();
            cases.push(("/api/chat", b));
        }
        for f in gen_fields {
            let mut b = gen(json!({"stream": false}));
            b[f] = v.clone();
            cases.push(("/api/generate", b));
        }
        for f in option_fields {
            let mut b = gen(json!({"stream": false, "options": {}}));
            b["options"][f] = v.clone();
            cases.push(("/api/generate", b));
        }
        for f in message_fields {
            let mut b = chat(json!({"stream": false}));
            b["messages"][0][f] = v.clone();
            cases.push(("/api/chat", b));
        }
        for f in ["model", "verbose"] {
            cases.push(("/api/show", json!({"model": MODEL, f: v})));
        }
        cases.push(("/api/chat", v.clone()));
    }
    let scripts = (0..cases.len()).map(|_| Script::text("ok")).collect();
    let app = app(fake(scripts));
    for (path, body) in cases {
        let r = send(&app, post(path, &body)).await;
        let s = r.status.as_u16();
        assert!((200..500).contains(&s), "{path} {body}: {s}");
        if s >= 400 {
            ollama_error(&r, r.status);
        }
    }
}

#[tokio::test]
async fn auth_and_host_errors_have_ollama_shape() {
    let config = ServerConfig {
        api_key: Some("k".into()),
        ..ServerConfig::default()
    };
    let app = app_with(fake(vec![Script::text("ok")]), config);
    let r = send(&app, get("/api/tags")).await;
    ollama_error(&r, StatusCode::UNAUTHORIZED);
    let mut req = get("/api/tags");
    req.headers_mut()
        .insert(header::AUTHORIZATION, "Bearer k".parse().unwrap());
    assert_eq!(send(&app, req).await.status, StatusCode::OK);
    let app = server::app(fake(vec![]));
    let mut req = get("/api/version");
    req.headers_mut()
        .insert(header::HOST, "evil.example".parse().unwrap());
    ollama_error(&send(&app, req).await, StatusCode::FORBIDDEN);
    for (path, body, name) in [
        ("/api/chat", chat(json!({"keep_alive": {}})), "keep_alive"),
        (
            "/api/show",
            json!({"model": MODEL, "verbose": "yes"}),
            "verbose",
        ),
    ] {
        let m = ollama_error(
            &send(&app, post(path, &body)).await,
            StatusCode::BAD_REQUEST,
        );
        assert!(m.contains(name), "{m}");
    }
}

/// Streams one token, then fails.
struct FailsMidway;

impl lmwb::client::GenerationClient for FailsMidway {
    fn model_name(&self) -> &str {
        "fails"
    }
    fn context_length(&self) -> Option<usize> {
        None
    }
    fn generate(&self, _: lmwb::engine::GenerateRequest) -> lmwb::engine::Generation {
        use lmwb::engine::{EngineError, Event};
        let (tx, rx) = std::sync::mpsc::channel();
        for ev in [
            Event::Started {
                prompt_tokens: 1,
                cached_tokens: 0,
            },
            Event::Token {
                id: 1,
                text: "half".into(),
                logprobs: None,
            },
            Event::Error(EngineError::Backend("the device fell over".into())),
        ] {
            tx.send(ev).unwrap();
        }
        lmwb::engine::Generation {
            events: rx,
            cancel: Default::default(),
        }
    }
}

#[tokio::test]
async fn a_failure_mid_stream_ends_it_with_an_error_line() {
    let model = lmwb::server::ServedModel {
        id: MODEL.into(),
        client: std::sync::Arc::new(FailsMidway),
        created: 0,
        info: None,
    };
    let state = lmwb::server::ServerState::new(&ServerConfig::default(), vec![model]);
    let app = lmwb::server::router(std::sync::Arc::new(state));
    let r = send(&app, post("/api/chat", &chat(json!({})))).await;
    assert_eq!(r.status, StatusCode::OK);
    let ls = lines(&r);
    assert_eq!(ls[0]["message"]["content"], "half");
    assert_eq!(ls.len(), 2, "{ls:?}");
    assert!(ls[1]["error"]
        .as_str()
        .unwrap()
        .contains("the device fell over"));
    let r = send(&app, post("/api/generate", &gen(json!({"stream": false})))).await;
    assert!(ollama_error(&r, StatusCode::INTERNAL_SERVER_ERROR).contains("fell over"));
}
