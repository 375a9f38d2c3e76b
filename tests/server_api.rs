//! The server's router driven through `tower::ServiceExt::oneshot` on a scripted
//! [`FakeClient`]: response shapes (plain and SSE), `n`, reasoning, queue limits,
//! cancellation on disconnect, health and metrics. Errors: `tests/server_errors.rs`.

#[path = "common/server.rs"]
mod server;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use futures_util::StreamExt;
use lmwb::client::fake::{FakeClient, Script};
use lmwb::engine::template::Role;
use lmwb::engine::Prompt;
use lmwb::server::ServerConfig;
use serde_json::json;
use server::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

#[tokio::test]
async fn models_are_listed_and_found_by_ids_with_slashes() {
    let app = app(fake(vec![]));
    let list = send(&app, get("/v1/models")).await.json();
    assert_eq!(list["object"], "list");
    assert_eq!(list["data"][0]["id"], MODEL);
    assert_eq!(list["data"][0]["object"], "model");
    let one = send(&app, get("/v1/models/org/fake-1")).await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.json()["id"], MODEL);
    let e = assert_error(
        &send(&app, get("/v1/models/org/none")).await,
        StatusCode::NOT_FOUND,
    );
    assert_eq!(e["code"], "model_not_found");
}

#[tokio::test]
async fn chat_completion_has_openai_shape_and_passes_the_settings_on() {
    let f = fake(vec![Script::text("Hello there!")]);
    let app = app(f.clone());
    let body = chat_body(json!({
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
        ],
        "temperature": 0.5, "top_p": 0.9, "presence_penalty": 0.5,
        "frequency_penalty": -0.5, "seed": 7, "max_completion_tokens": 50, "stop": "END",
        "user": "u1", "response_format": {"type": "text"}, "logprobs": false,
    }));
    let r = send(&app, post("/v1/chat/completions", &body)).await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["model"], MODEL);
    assert!(v["system_fingerprint"].as_str().unwrap().starts_with("fp_"));
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(v["choices"][0]["message"]["content"], "Hello there!");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let u = &v["usage"];
    let n = pieces("Hello there!");
    assert_eq!(u["completion_tokens"], n);
    assert_eq!(
        u["total_tokens"].as_u64(),
        Some(u["prompt_tokens"].as_u64().unwrap() + n as u64)
    );
    let req = &f.requests()[0];
    let Prompt::Chat { messages, .. } = &req.prompt else {
        panic!("{:?}", req.prompt)
    };
    assert_eq!(messages[0].role, Role::System);
    assert_eq!(
        (messages[1].role, messages[1].content.as_str()),
        (Role::User, "Hi")
    );
    let s = &req.sampling;
    assert_eq!((s.temperature, s.top_p, s.seed), (0.5, 0.9, Some(7)));
    assert_eq!((s.presence_penalty, s.frequency_penalty), (0.5, -0.5));
    assert_eq!(req.max_tokens, Some(50));
    assert_eq!(req.stop, vec!["END".to_string()]);
}

#[tokio::test]
async fn stop_list_max_tokens_and_length_finish() {
    let f = fake(vec![Script::text("one two three four")]);
    let app = app(f.clone());
    let body = chat_body(json!({"stop": ["a", "b"], "max_tokens": 2}));
    let v = send(&app, post("/v1/chat/completions", &body)).await.json();
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["choices"][0]["message"]["content"], "one two");
    assert_eq!(f.requests()[0].stop, vec!["a".to_string(), "b".into()]);
}

#[tokio::test]
async fn chat_stream_chunks_share_an_id_start_with_the_role_and_end_with_usage() {
    let app = app(fake(vec![Script::text("Hello streaming world")]));
    let body = chat_body(json!({"stream": true, "stream_options": {"include_usage": true}}));
    let r = send(&app, post("/v1/chat/completions", &body)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers[header::CONTENT_TYPE], "text/event-stream");
    let chunks = r.chunks();
    let id = chunks[0]["id"].clone();
    assert!(chunks
        .iter()
        .all(|c| c["id"] == id && c["object"] == "chat.completion.chunk"));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello streaming world");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(
        last["usage"]["completion_tokens"],
        pieces("Hello streaming world")
    );
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    assert!(chunks[..chunks.len() - 1]
        .iter()
        .all(|c| c["usage"].is_null()));
}

#[tokio::test]
async fn stream_without_include_usage_has_no_usage_chunk() {
    let app = app(fake(vec![Script::text("ok")]));
    let r = send(
        &app,
        post("/v1/chat/completions", &chat_body(json!({"stream": true}))),
    )
    .await;
    let chunks = r.chunks();
    assert!(chunks
        .iter()
        .all(|c| !c.as_object().unwrap().contains_key("usage")));
    assert!(chunks
        .iter()
        .all(|c| c["choices"].as_array().unwrap().len() == 1));
}

#[tokio::test]
async fn reasoning_is_returned_apart_from_content() {
    let think = "<think>Let me ponder.</think>The answer is 4.";
    let app = app(fake(vec![Script::text(think), Script::text(think)]));
    let v = send(&app, post("/v1/chat/completions", &chat_body(json!({}))))
        .await
        .json();
    let m = &v["choices"][0]["message"];
    assert_eq!(m["content"], "The answer is 4.");
    assert_eq!(m["reasoning_content"], "Let me ponder.");
    let r = send(
        &app,
        post("/v1/chat/completions", &chat_body(json!({"stream": true}))),
    )
    .await;
    let chunks = r.chunks();
    let field = |name: &str| -> String {
        chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"][name].as_str())
            .collect()
    };
    assert_eq!(field("content"), "The answer is 4.");
    assert_eq!(field("reasoning_content"), "Let me ponder.");
}

#[tokio::test]
async fn n_choices_are_generated_one_after_another_with_their_own_seeds() {
    let f = fake(vec![Script::text("first"), Script::text("second")]);
    let app = app(f.clone());
    let v = send(
        &app,
        post(
            "/v1/chat/completions",
            &chat_body(json!({"n": 2, "seed": 1})),
        ),
    )
    .await
    .json();
    let texts: Vec<&str> = v["choices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["message"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["first", "second"]);
    assert_eq!(v["choices"][1]["index"], 1);
    let seeds: Vec<_> = f.requests().iter().map(|r| r.sampling.seed).collect();
    assert_eq!(seeds, [Some(1), Some(2)]);
    let f = fake(vec![Script::text("a"), Script::text("b")]);
    let r = send(
        &app_with(f, ServerConfig::default()),
        post(
            "/v1/chat/completions",
            &chat_body(json!({"n": 2, "stream": true})),
        ),
    )
    .await;
    let chunks = r.chunks();
    let finishes: Vec<_> = chunks
        .iter()
        .filter(|c| !c["choices"][0]["finish_reason"].is_null())
        .map(|c| c["choices"][0]["index"].clone())
        .collect();
    assert_eq!(finishes, [json!(0), json!(1)]);
}

#[tokio::test]
async fn completions_plain_stream_and_token_prompts() {
    let f = fake(vec![Script::text("continued text")]);
    let app = app(f.clone());
    let v = send(
        &app,
        post(
            "/v1/completions",
            &json!({"model": MODEL, "prompt": ["Once"], "max_tokens": 5}),
        ),
    )
    .await
    .json();
    assert_eq!(v["object"], "text_completion");
    assert!(v["id"].as_str().unwrap().starts_with("cmpl-"));
    assert_eq!(v["choices"][0]["text"], "continued text");
    assert_eq!(f.requests()[0].prompt, Prompt::Raw("Once".into()));
    let r = send(
        &app,
        post(
            "/v1/completions",
            &json!({"model": MODEL, "prompt": [1, 2, 3], "stream": true}),
        ),
    )
    .await;
    let chunks = r.chunks();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["text"].as_str())
        .collect();
    assert_eq!(text, "continued text");
    assert!(chunks.iter().all(|c| c["object"] == "text_completion"));
    assert_eq!(f.requests()[1].prompt, Prompt::Tokens(vec![1, 2, 3]));
}

async fn open_stream(app: &Router) -> Body {
    let body = chat_body(json!({"stream": true}));
    let res = app
        .clone()
        .oneshot(post("/v1/chat/completions", &body))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.into_body()
}

fn slow(pieces: usize) -> Arc<FakeClient> {
    let script = Script::Reply(vec!["tok ".to_string(); pieces]);
    Arc::new(FakeClient::new("fake", vec![script]).with_delay(Duration::from_millis(20)))
}

#[tokio::test]
async fn past_the_queue_the_server_answers_429_with_retry_after() {
    let config = ServerConfig {
        concurrency: 1,
        queue: 0,
        ..ServerConfig::default()
    };
    let app = app_with(slow(200), config);
    let held = open_stream(&app).await;
    let r = send(&app, post("/v1/chat/completions", &chat_body(json!({})))).await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers[header::RETRY_AFTER], "1");
    drop(held);
}

#[tokio::test]
async fn dropping_a_stream_midway_cancels_its_generation() {
    let f = slow(500);
    let app = app(f.clone());
    let mut frames = open_stream(&app).await.into_data_stream();
    let first = frames.next().await.unwrap().unwrap();
    assert!(first.starts_with(b"data: "));
    frames.next().await.unwrap().unwrap();
    drop(frames);
    let t = Instant::now();
    while f.cancelled() == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "the generation was not cancelled"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn an_abandoned_plain_request_cancels_its_generation() {
    let f = slow(500);
    let app = app(f.clone());
    let task = tokio::spawn(send_owned(
        app,
        post("/v1/chat/completions", &chat_body(json!({}))),
    ));
    let t = Instant::now();
    while f.calls() == 0 {
        assert!(t.elapsed() < Duration::from_secs(2));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    task.abort();
    while f.cancelled() == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "the generation was not cancelled"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn send_owned(app: Router, req: Request<Body>) -> StatusCode {
    app.oneshot(req).await.unwrap().status()
}

#[tokio::test]
async fn health_and_metrics_report_the_state() {
    let app = app(fake(vec![Script::text("a b c")]));
    let h = send(&app, get("/health")).await.json();
    assert_eq!(h["status"], "ready");
    assert_eq!(h["models"], json!([MODEL]));
    send(&app, post("/v1/chat/completions", &chat_body(json!({})))).await;
    send(&app, post("/v1/chat/completions", &json!({}))).await;
    let m = String::from_utf8(send(&app, get("/metrics")).await.body.to_vec()).unwrap();
    for line in [
        "lmwb_requests_total{route=\"/v1/chat/completions\",status=\"200\"} 1",
        "lmwb_requests_total{route=\"/v1/chat/completions\",status=\"400\"} 1",
        "lmwb_generated_tokens_total 3",
        "lmwb_requests_in_flight 0",
        "lmwb_ttft_seconds_count 1",
        "lmwb_ttft_seconds_bucket{le=\"+Inf\"} 1",
        "lmwb_inter_token_seconds_count 2",
        "lmwb_queue_depth 0",
    ] {
        assert!(m.lines().any(|l| l == line), "{line} missing in\n{m}");
    }
}

#[tokio::test]
async fn until_its_model_loads_the_server_says_loading() {
    let state = Arc::new(lmwb::server::ServerState::new(
        &ServerConfig::default(),
        vec![],
    ));
    let app = lmwb::server::router(state.clone());
    let r = send(&app, get("/health")).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json()["status"], "loading");
    let r = send(&app, post("/v1/chat/completions", &chat_body(json!({})))).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json()["error"]["code"], "model_loading");
    assert_eq!(r.headers[header::RETRY_AFTER], "1");
    assert_eq!(
        send(&app, get("/v1/models")).await.json()["data"],
        json!([])
    );
    state.add_model(lmwb::server::ServedModel {
        id: MODEL.into(),
        client: fake(vec![Script::text("ok")]),
        created: 0,
        info: None,
    });
    assert_eq!(send(&app, get("/health")).await.json()["status"], "ready");
    let r = send(&app, post("/v1/chat/completions", &chat_body(json!({})))).await;
    assert_eq!(r.status, StatusCode::OK);
}
