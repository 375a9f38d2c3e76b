//! Ollama's API (`/api/chat`, `/api/generate`, `/api/tags`, `/api/show`, `/api/ps`,
//! `/api/version`) through `tower::ServiceExt::oneshot` on a scripted [`FakeClient`]:
//! NDJSON streams and their final stats, options, thinking, and the model listings.
//! Errors are in `server_ollama_errors.rs`.

#[path = "common/ollama.rs"]
mod ollama;
#[path = "common/server.rs"]
mod server;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use lmwb::client::fake::Script;
use lmwb::engine::template::Role;
use lmwb::engine::Prompt;
use lmwb::server::ServerConfig;
use ollama::*;
use serde_json::json;
use server::*;

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
        kind: Default::default(),
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
