//! The server's router driven through `tower::ServiceExt::oneshot` on a scripted
//! [`FakeClient`]: response shapes (plain and SSE), every error path with its status and
//! OpenAI's error shape, auth, CORS, limits, and cancellation on disconnect.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use futures_util::StreamExt;
use lmwb::client::fake::{FakeClient, Script};
use lmwb::engine::template::Role;
use lmwb::engine::Prompt;
use lmwb::server::{router, ServedModel, ServerConfig, ServerState};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

/// A model id with a slash, as hub names have.
const MODEL: &str = "org/fake-1";

fn app_with(fake: Arc<FakeClient>, config: ServerConfig) -> Router {
    let model = ServedModel {
        id: MODEL.into(),
        client: fake,
        created: 0,
    };
    router(Arc::new(ServerState::new(&config, vec![model])))
}

fn app(fake: Arc<FakeClient>) -> Router {
    app_with(fake, ServerConfig::default())
}

fn fake(scripts: Vec<Script>) -> Arc<FakeClient> {
    Arc::new(FakeClient::new("fake", scripts))
}

fn request(method: Method, path: &str, body: impl Into<Body>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .unwrap()
}

fn post(path: &str, body: &Value) -> Request<Body> {
    request(Method::POST, path, body.to_string())
}

fn get(path: &str) -> Request<Body> {
    request(Method::GET, path, Body::empty())
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// The `data:` payloads of an SSE body, `[DONE]` included as a string.
    fn events(&self) -> Vec<String> {
        let text = std::str::from_utf8(&self.body).unwrap();
        assert!(text.ends_with("\n\n"), "{text:?}");
        text.split("\n\n")
            .filter(|f| !f.is_empty())
            .map(|f| f.strip_prefix("data: ").expect("a data frame").to_string())
            .collect()
    }

    fn chunks(&self) -> Vec<Value> {
        let events = self.events();
        assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
        events[..events.len() - 1]
            .iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect()
    }
}

async fn send(app: &Router, req: Request<Body>) -> Reply {
    let res = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: axum::body::to_bytes(body, usize::MAX).await.unwrap(),
    }
}

fn chat_body(extra: Value) -> Value {
    let mut body = json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

/// An error in OpenAI's shape with this status; returns its `error` object.
fn assert_error(r: &Reply, status: StatusCode) -> Value {
    assert_eq!(r.status, status, "{:?}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    let e = v["error"].clone();
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert!(e["type"].is_string(), "{v}");
    for k in ["param", "code"] {
        assert!(e.as_object().unwrap().contains_key(k), "{k} missing in {v}");
    }
    e
}

/// How many tokens the fake streams for `text`.
fn pieces(text: &str) -> usize {
    match Script::text(text) {
        Script::Reply(p) => p.len(),
        Script::Fail(_) => 0,
    }
}

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
            chat_body(json!({"tools": [{"type": "function", "function": {"name": "f"}}]})),
            StatusCode::BAD_REQUEST,
            Some("tools"),
        ),
        (
            chat_body(json!({"tool_choice": "required"})),
            StatusCode::BAD_REQUEST,
            Some("tool_choice"),
        ),
        (
            chat_body(json!({"response_format": {"type": "json_object"}})),
            StatusCode::BAD_REQUEST,
            Some("response_format"),
        ),
        (
            chat_body(json!({"response_format": {"type": "json_schema", "json_schema": {}}})),
            StatusCode::BAD_REQUEST,
            Some("response_format"),
        ),
        (
            chat_body(json!({"logprobs": true})),
            StatusCode::BAD_REQUEST,
            Some("logprobs"),
        ),
        (
            chat_body(json!({"top_logprobs": 3})),
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
            Some("messages[0].tool_calls"),
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
        json!({"model": MODEL, "prompt": "x", "logprobs": 2}),
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
        "/v1/embeddings",
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
    ] {
        assert!(m.lines().any(|l| l == line), "{line} missing in\n{m}");
    }
}

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
