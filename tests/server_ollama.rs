//! Ollama's API (`/api/chat`, `/api/generate`, `/api/tags`, `/api/show`, `/api/ps`,
//! `/api/version`) through `tower::ServiceExt::oneshot` on a scripted [`FakeClient`]:
//! NDJSON streams and their final stats, options, thinking, and errors in Ollama's shape.

#[path = "common/server.rs"]
mod server;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use lmwb::client::fake::Script;
use lmwb::engine::template::Role;
use lmwb::engine::Prompt;
use lmwb::server::ServerConfig;
use serde_json::{json, Value};
use server::*;

const SPEC: &str = include_str!("fixtures/specs/ollama-openapi.yaml");

fn chat(extra: Value) -> Value {
    let mut b = json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]});
    b.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    b
}

fn gen(extra: Value) -> Value {
    let mut b = json!({"model": MODEL, "prompt": "Hi"});
    b.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    b
}

/// The objects of an NDJSON body, one per line.
fn lines(r: &Reply) -> Vec<Value> {
    let text = std::str::from_utf8(&r.body).unwrap();
    assert!(text.ends_with('\n'), "{text:?}");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// An error in Ollama's shape; returns its message.
fn ollama_error(r: &Reply, status: StatusCode) -> String {
    assert_eq!(r.status, status, "{:?}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
    let m = v["error"].as_str().expect("error is a string").to_string();
    assert!(!m.is_empty());
    m
}

/// The property names the spec's schema `name` defines (its own, and its `message`'s).
fn spec_fields(name: &str) -> Vec<String> {
    let start = SPEC
        .find(&format!("\n    {name}:\n"))
        .unwrap_or_else(|| panic!("{name} in the spec"));
    SPEC[start + 1..]
        .lines()
        .skip(1)
        .take_while(|l| {
            !(l.starts_with("    ") && l[4..].starts_with(|c: char| c.is_ascii_alphabetic()))
        })
        .filter_map(|l| {
            let t = l.trim_start();
            let indent = l.len() - t.len();
            (matches!(indent, 8 | 12) && t.ends_with(':') && !t.contains(' '))
                .then(|| t.trim_end_matches(':').to_string())
        })
        .collect()
}

fn assert_in_spec(v: &Value, schema: &str) {
    let fields = spec_fields(schema);
    for k in v.as_object().unwrap().keys() {
        assert!(
            fields.contains(k),
            "`{k}` is not in the spec's {schema}: {fields:?}"
        );
    }
}

const STATS: [&str; 7] = [
    "done_reason",
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
];

#[tokio::test]
async fn chat_streams_ndjson_by_default_and_ends_with_stats() {
    let app = app(fake(vec![Script::text("Hello streaming world")]));
    let r = send(&app, post("/api/chat", &chat(json!({})))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/x-ndjson");
    let ls = lines(&r);
    assert!(ls.len() >= 3, "{ls:?}");
    let (last, body) = ls.split_last().unwrap();
    let text: String = body
        .iter()
        .map(|l| {
            assert_eq!(l["done"], false);
            assert_eq!(l["model"], MODEL);
            assert_eq!(l["message"]["role"], "assistant");
            assert_in_spec(l, "ChatStreamEvent");
            l["message"]["content"].as_str().unwrap()
        })
        .collect();
    assert_eq!(text, "Hello streaming world");
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "stop");
    assert_eq!(last["message"]["content"], "");
    for k in STATS {
        assert!(!last[k].is_null(), "{k} in {last}");
    }
    assert!(last["prompt_eval_count"].as_u64().unwrap() > 0);
    assert_eq!(
        last["eval_count"].as_u64().unwrap() as usize,
        pieces("Hello streaming world")
    );
    assert_in_spec(last, "ChatResponse");
    assert!(last["created_at"].as_str().unwrap().contains('T'));
}

#[tokio::test]
async fn generate_streams_and_answers_whole_without_stream() {
    let f = fake(vec![Script::text("one two"), Script::text("one two")]);
    let app = app(f.clone());
    let ls = lines(&send(&app, post("/api/generate", &gen(json!({})))).await);
    let text: String = ls.iter().filter_map(|l| l["response"].as_str()).collect();
    assert_eq!(text, "one two");
    assert_in_spec(ls.last().unwrap(), "GenerateStreamEvent");
    let r = send(&app, post("/api/generate", &gen(json!({"stream": false})))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let v = r.json();
    assert_eq!(
        (v["response"].clone(), v["done"].clone()),
        (json!("one two"), json!(true))
    );
    for k in STATS {
        assert!(!v[k].is_null(), "{k} in {v}");
    }
    assert_in_spec(&v, "GenerateResponse");
    // Not raw: the prompt goes through the chat template as a user message.
    let Prompt::Chat { messages, .. } = &f.requests()[0].prompt else {
        panic!()
    };
    assert_eq!(
        (messages[0].role, messages[0].content.as_str()),
        (Role::User, "Hi")
    );
}

#[tokio::test]
async fn generate_raw_and_system() {
    let f = fake(vec![Script::text("a"), Script::text("b")]);
    let app = app(f.clone());
    let b = gen(json!({"stream": false, "raw": true}));
    assert_eq!(
        send(&app, post("/api/generate", &b)).await.status,
        StatusCode::OK
    );
    let b = gen(json!({"stream": false, "system": "Be brief."}));
    assert_eq!(
        send(&app, post("/api/generate", &b)).await.status,
        StatusCode::OK
    );
    let reqs = f.requests();
    assert_eq!(reqs[0].prompt, Prompt::Raw("Hi".into()));
    let Prompt::Chat { messages, .. } = &reqs[1].prompt else {
        panic!()
    };
    assert_eq!(
        (messages[0].role, messages[0].content.as_str()),
        (Role::System, "Be brief.")
    );
    let r = send(
        &app,
        post("/api/generate", &gen(json!({"raw": true, "system": "x"}))),
    )
    .await;
    ollama_error(&r, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn options_reach_the_engine() {
    let f = fake(vec![Script::text("ok"), Script::text("ok")]);
    let app = app(f.clone());
    let opts = json!({"temperature": 0.3, "top_p": 0.9, "top_k": 7, "min_p": 0.05,
        "repeat_penalty": 1.2, "repeat_last_n": 32, "presence_penalty": 0.5,
        "frequency_penalty": 0.25, "seed": 42, "num_predict": 9, "stop": ["END", "STOP"]});
    let b = chat(json!({"stream": false, "options": opts, "keep_alive": "5m"}));
    let r = send(&app, post("/api/chat", &b)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let req = &f.requests()[0];
    let s = &req.sampling;
    assert_eq!(
        (s.temperature, s.top_p, s.top_k, s.min_p),
        (0.3, 0.9, 7, 0.05)
    );
    assert_eq!((s.repeat_penalty, s.repeat_last_n), (1.2, 32));
    assert_eq!((s.presence_penalty, s.frequency_penalty), (0.5, 0.25));
    assert_eq!(s.seed, Some(42));
    assert_eq!(req.max_tokens, Some(9));
    assert_eq!(req.stop, ["END", "STOP"]);
    // num_predict -1: no limit; a single stop string.
    let b = chat(json!({"stream": false, "options": {"num_predict": -1, "stop": "X"}}));
    send(&app, post("/api/chat", &b)).await;
    let req = &f.requests()[1];
    assert_eq!(
        (req.max_tokens, req.stop.clone()),
        (None, vec!["X".to_string()])
    );
}

#[tokio::test]
async fn num_predict_ends_with_done_reason_length() {
    let app = app(fake(vec![Script::text("one two three four")]));
    let b = chat(json!({"stream": false, "options": {"num_predict": 2}}));
    let v = send(&app, post("/api/chat", &b)).await.json();
    assert_eq!(
        (v["done_reason"].clone(), v["eval_count"].clone()),
        (json!("length"), json!(2))
    );
}

#[tokio::test]
async fn thinking_is_split_from_the_content() {
    let think = "<think>Let me ponder.</think>The answer is 4.";
    let f = fake(vec![
        Script::text(think),
        Script::text(think),
        Script::text(think),
        Script::text(think),
    ]);
    let app = app(f);
    let v = send(&app, post("/api/chat", &chat(json!({"stream": false}))))
        .await
        .json();
    assert_eq!(v["message"]["thinking"], "Let me ponder.");
    assert_eq!(v["message"]["content"], "The answer is 4.");
    let ls = lines(&send(&app, post("/api/chat", &chat(json!({"think": true})))).await);
    let field = |name: &str| -> String {
        ls.iter()
            .filter_map(|l| l["message"][name].as_str())
            .collect()
    };
    assert_eq!(field("thinking"), "Let me ponder.");
    assert_eq!(field("content"), "The answer is 4.");
    let v = send(&app, post("/api/generate", &gen(json!({"stream": false}))))
        .await
        .json();
    assert_eq!(
        (v["thinking"].clone(), v["response"].clone()),
        (json!("Let me ponder."), json!("The answer is 4."))
    );
    // think: false drops the reasoning; it never leaks into the content.
    let v = send(
        &app,
        post(
            "/api/generate",
            &gen(json!({"stream": false, "think": false})),
        ),
    )
    .await
    .json();
    assert!(v["thinking"].is_null(), "{v}");
    assert_eq!(v["response"], "The answer is 4.");
}

#[tokio::test]
async fn an_empty_prompt_only_loads_the_model() {
    let f = fake(vec![]);
    let app = app(f.clone());
    let v = send(&app, post("/api/generate", &json!({"model": MODEL})))
        .await
        .json();
    assert_eq!(
        (v["done"].clone(), v["done_reason"].clone()),
        (json!(true), json!("load"))
    );
    let v = send(
        &app,
        post("/api/chat", &json!({"model": MODEL, "messages": []})),
    )
    .await
    .json();
    assert_eq!(v["done_reason"], "load");
    assert!(f.requests().is_empty());
}

#[tokio::test]
async fn a_body_without_content_type_is_accepted() {
    let app = app(fake(vec![Script::text("ok")]));
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/chat")
        .body(Body::from(chat(json!({"stream": false})).to_string()))
        .unwrap();
    let r = send(&app, req).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["message"]["content"], "ok");
}

#[tokio::test]
async fn unsupported_fields_are_refused_by_name() {
    let app = app(fake(vec![]));
    for (path, body, name) in [
        (
            "/api/chat",
            chat(
                json!({"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}),
            ),
            "tools",
        ),
        ("/api/chat", chat(json!({"format": "json"})), "format"),
        (
            "/api/chat",
            chat(json!({"format": {"type": "object"}})),
            "format",
        ),
        ("/api/chat", chat(json!({"think": "high"})), "think"),
        ("/api/chat", chat(json!({"logprobs": true})), "logprobs"),
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
            json!({"model": MODEL, "messages": [{"role": "tool", "content": "x"}]}),
            "tool",
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
async fn tags_show_ps_and_version_have_the_spec_shape() {
    let app = app(fake(vec![]));
    let v = send(&app, get("/api/tags")).await.json();
    let m = &v["models"][0];
    assert_eq!(
        (m["name"].clone(), m["model"].clone()),
        (json!(MODEL), json!(MODEL))
    );
    assert!(m["modified_at"].as_str().unwrap().contains('T'));
    assert!(m["size"].is_u64());
    for k in ["format", "family", "parameter_size", "quantization_level"] {
        assert!(m["details"][k].is_string(), "{k} in {m}");
    }
    assert_in_spec(m, "ModelSummary");

    let v = send(&app, post("/api/show", &json!({"model": MODEL})))
        .await
        .json();
    assert!(v["parameters"].as_str().unwrap().contains("temperature"));
    assert!(v["details"].is_object() && v["model_info"].is_object());
    assert!(v["capabilities"]
        .as_array()
        .unwrap()
        .contains(&json!("completion")));
    assert_in_spec(&v, "ShowResponse");

    let v = send(&app, get("/api/ps")).await.json();
    let m = &v["models"][0];
    assert_eq!(m["name"], MODEL);
    assert!(m["expires_at"].as_str().unwrap().contains('T'));
    assert!(m["size"].is_u64());
    assert_in_spec(m, "Ps");

    let r = send(&app, get("/")).await;
    assert_eq!(
        (r.status, &r.body[..]),
        (StatusCode::OK, &b"Ollama is running"[..])
    );
    let r = send(&app, request(Method::HEAD, "/", Body::empty())).await;
    assert_eq!(r.status, StatusCode::OK);
    let v = send(&app, get("/api/version")).await.json();
    assert!(v["version"].as_str().unwrap().split('.').count() == 3);
}

#[tokio::test]
async fn tags_and_show_report_what_the_model_file_says() {
    let info = lmwb::engine::model::ModelInfo {
        path: "/models/smollm2-135m-instruct.Q4_1.gguf".into(),
        format: "gguf",
        arch: "llama".into(),
        quant: "Q4_1".into(),
        params: 134_515_008,
        size_bytes: 92_000_000,
        context_length: 8192,
        has_chat_template: true,
        notes: vec![],
        config: None,
    };
    let model = lmwb::server::ServedModel {
        id: "smollm2".into(),
        client: fake(vec![]),
        created: 1_700_000_000,
        info: Some(info),
    };
    let state = lmwb::server::ServerState::new(&ServerConfig::default(), vec![model]);
    let app = lmwb::server::router(std::sync::Arc::new(state));
    let v = send(&app, get("/api/tags")).await.json();
    let m = &v["models"][0];
    assert_eq!(m["size"], 92_000_000);
    assert_eq!(m["modified_at"], "2023-11-14T22:13:20Z");
    assert_eq!(
        m["details"],
        json!({"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
            "parameter_size": "134.5M", "quantization_level": "Q4_1"})
    );
    let v = send(&app, post("/api/show", &json!({"model": "smollm2"})))
        .await
        .json();
    assert_eq!(v["model_info"]["general.architecture"], "llama");
    assert_eq!(v["model_info"]["general.parameter_count"], 134_515_008);
    assert_eq!(v["model_info"]["lmwb.has_chat_template"], true);
    assert_eq!(v["details"]["quantization_level"], "Q4_1");
}

/// Every JSON type in every request field (top level, `options`, a message) gets a 2xx or
/// a 4xx in Ollama's shape, never a 5xx.
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
async fn num_ctx_below_the_model_context_is_a_kv_window() {
    let f = std::sync::Arc::new(
        lmwb::client::fake::FakeClient::new("fake", vec![Script::text("a"), Script::text("b")])
            .with_context(2048),
    );
    let app = app(f.clone());
    for n in [1024, 8192] {
        let b = chat(json!({"stream": false, "options": {"num_ctx": n}}));
        assert_eq!(
            send(&app, post("/api/chat", &b)).await.status,
            StatusCode::OK
        );
    }
    let reqs = f.requests();
    assert_eq!(
        (reqs[0].max_kv_size, reqs[1].max_kv_size),
        (Some(1024), None)
    );
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
