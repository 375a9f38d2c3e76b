//! The request log and the `/metrics` highlights over a real socket on a [`FakeClient`]:
//! every request gets one entry (method, path, model, status, the tokens its `usage`
//! reports, its duration to the end of its body, the client's address), subscribers hear
//! of it, and the typed highlights agree with what `/metrics` renders.

#[path = "common/embed_fake.rs"]
mod embed_fake;
#[path = "common/http.rs"]
mod http;
#[path = "common/server.rs"]
#[allow(dead_code)]
mod server;

use lmwb::client::fake::{FakeClient, Script};
use lmwb::config::Config;
use lmwb::server::metrics::Highlights;
use lmwb::server::request_log::RequestEntry;
use lmwb::server::{self as srv, ServedEmbedder, ServedModel, ServerConfig, ServerHandle};
use serde_json::{json, Value};
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MODEL: &str = "fake";

fn start_with(fake: Arc<FakeClient>, config: ServerConfig) -> (ServerHandle, String) {
    http::serve_fake(fake, config)
}

fn start(fake: Arc<FakeClient>) -> (ServerHandle, String) {
    start_with(fake, ServerConfig::default())
}

fn fake(pieces: usize, delay_ms: u64) -> Arc<FakeClient> {
    let script = Script::Reply(vec!["tok ".to_string(); pieces]);
    Arc::new(FakeClient::new(MODEL, vec![script]).with_delay(Duration::from_millis(delay_ms)))
}

/// Wait (up to 5 s) until the log holds `n` entries; return them.
fn entries(handle: &ServerHandle, n: usize) -> Vec<RequestEntry> {
    let t = Instant::now();
    while handle.state().requests.total() < n as u64 {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "only {} of {n} entries: {:?}",
            handle.state().requests.total(),
            handle.state().requests.recent(n)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    handle.state().requests.recent(usize::MAX)
}

fn chat(stream: bool, n: usize) -> Value {
    json!({
        "model": MODEL, "stream": stream, "n": n,
        "stream_options": if stream { json!({"include_usage": true}) } else { Value::Null },
        "messages": [{"role": "user", "content": "hello there"}],
    })
}

fn assert_local(e: &RequestEntry) {
    let c = e.client.expect("the client's address");
    assert_eq!(c.ip().to_string(), "127.0.0.1", "{e:?}");
    assert_ne!(c.port(), 0);
}

#[test]
fn a_chat_completion_gets_one_entry_with_its_usage() {
    let (handle, addr) = start(fake(3, 0));
    let (status, body) =
        http::request(&addr, "POST", "/v1/chat/completions", Some(&chat(false, 1)));
    assert_eq!(status, 200, "{body}");
    let usage = serde_json::from_str::<Value>(&body).unwrap()["usage"].clone();
    let e = entries(&handle, 1).remove(0);
    assert_eq!(e.method, "POST");
    assert_eq!(e.path, "/v1/chat/completions");
    assert_eq!(e.model.as_deref(), Some(MODEL));
    assert_eq!(e.status, 200);
    http::assert_usage(&e, &usage);
    assert_eq!(e.generated_tokens, 3);
    assert!(e.duration_ms > 0.0);
    assert_eq!(e.time.len(), 8, "HH:MM:SS: {}", e.time);
    assert_local(&e);
    handle.shutdown().unwrap();
}

/// The usage object of a streamed body's last chunk that has one.
fn stream_usage(body: &str) -> Value {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter(|v| v["usage"].is_object())
        .last()
        .expect("a usage chunk")["usage"]
        .clone()
}

#[test]
fn a_stream_is_timed_to_its_end() {
    let (handle, addr) = start(fake(10, 20));
    let mut s = http::send(&addr, "POST", "/v1/chat/completions", Some(&chat(true, 1)));
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let mut first_token = None;
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if first_token.is_none() && String::from_utf8_lossy(&raw).contains("tok") {
            first_token = Some(Instant::now());
        }
    }
    let streamed = first_token.expect("a token").elapsed().as_secs_f64() * 1000.0;
    let (status, body) = http::parse(&String::from_utf8(raw).unwrap());
    assert_eq!(status, 200);
    let usage = stream_usage(&body);
    let e = entries(&handle, 1).remove(0);
    assert_eq!((e.status, e.path.as_str()), (200, "/v1/chat/completions"));
    assert_eq!(e.model.as_deref(), Some(MODEL));
    http::assert_usage(&e, &usage);
    assert_eq!(e.generated_tokens, 10);
    // Ten tokens 20 ms apart: the entry covers the whole stream, not just its first event.
    assert!(e.duration_ms >= 190.0, "{e:?}");
    assert!(e.duration_ms >= streamed, "{} < {streamed}", e.duration_ms);
    assert_local(&e);
    handle.shutdown().unwrap();
}

#[test]
fn every_choice_of_a_streamed_n_counts() {
    let (handle, addr) = start(fake(4, 0));
    let (status, body) = http::request(&addr, "POST", "/v1/chat/completions", Some(&chat(true, 3)));
    assert_eq!(status, 200);
    let usage = stream_usage(&body);
    assert_eq!(usage["completion_tokens"], 12, "{body}");
    let e = entries(&handle, 1).remove(0);
    assert_eq!(e.generated_tokens, 12);
    assert_eq!(
        e.prompt_tokens as u64,
        usage["prompt_tokens"].as_u64().unwrap()
    );
    handle.shutdown().unwrap();
}

#[test]
fn the_other_apis_name_their_model_and_tokens() {
    let (handle, addr) = start(fake(2, 0));
    let ollama =
        json!({"model": MODEL, "stream": false, "messages": [{"role": "user", "content": "hi"}]});
    let (status, body) = http::request(&addr, "POST", "/api/chat", Some(&ollama));
    assert_eq!(status, 200, "{body}");
    let o: Value = serde_json::from_str(&body).unwrap();
    let anthropic = json!({"model": MODEL, "max_tokens": 10, "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let (status, _) = http::request(&addr, "POST", "/v1/messages", Some(&anthropic));
    assert_eq!(status, 200);
    let all = entries(&handle, 2);
    assert_eq!(all[0].path, "/api/chat");
    assert_eq!(all[0].model.as_deref(), Some(MODEL));
    assert_eq!(
        all[0].prompt_tokens as u64,
        o["prompt_eval_count"].as_u64().unwrap()
    );
    assert_eq!(
        all[0].generated_tokens as u64,
        o["eval_count"].as_u64().unwrap()
    );
    assert_eq!(all[1].path, "/v1/messages");
    assert_eq!(all[1].generated_tokens, 2);
    handle.shutdown().unwrap();
}

#[test]
fn embeddings_name_their_model_and_prompt_tokens() {
    let (handle, addr) = start(fake(1, 0));
    handle.state().add_embedder(ServedEmbedder {
        id: embed_fake::EMBED_MODEL.into(),
        embedder: Arc::new(embed_fake::FakeEmbedder),
        created: 0,
        info: None,
    });
    let req = json!({"model": embed_fake::EMBED_MODEL, "input": ["one two", "three"]});
    let (status, body) = http::request(&addr, "POST", "/v1/embeddings", Some(&req));
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let e = entries(&handle, 1).remove(0);
    assert_eq!(e.model.as_deref(), Some(embed_fake::EMBED_MODEL));
    assert_eq!(
        e.prompt_tokens as u64,
        v["usage"]["prompt_tokens"].as_u64().unwrap()
    );
    assert!(e.prompt_tokens > 0);
    assert_eq!(e.generated_tokens, 0);
    handle.shutdown().unwrap();
}

#[test]
fn errors_get_entries_with_their_status() {
    let config = ServerConfig {
        api_key: Some("sekret".into()),
        ..ServerConfig::default()
    };
    let (handle, addr) = start_with(fake(1, 0), config);
    let key = [("Authorization", "Bearer sekret")];
    let (s404, _) = http::request_with(&addr, "GET", "/nope", None, &key);
    let bad = json!({"model": MODEL, "messages": "not a list"});
    let (s400, _) = http::request_with(&addr, "POST", "/v1/chat/completions", Some(&bad), &key);
    let (s401, _) = http::request(&addr, "GET", "/v1/models", None);
    assert_eq!((s404, s400, s401), (404, 400, 401));
    let all = entries(&handle, 3);
    let got: Vec<(u16, &str, &str)> = all
        .iter()
        .map(|e| (e.status, e.method.as_str(), e.path.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (404, "GET", "/nope"),
            (400, "POST", "/v1/chat/completions"),
            (401, "GET", "/v1/models"),
        ]
    );
    assert!(all
        .iter()
        .all(|e| e.model.is_none() && e.generated_tokens == 0));
    all.iter().for_each(assert_local);
    assert_eq!(handle.state().highlights().errors, 3);
    handle.shutdown().unwrap();
}

#[test]
fn a_client_that_hangs_up_still_gets_an_entry() {
    let (handle, addr) = start(fake(1000, 10));
    let mut s = http::send(&addr, "POST", "/v1/chat/completions", Some(&chat(true, 1)));
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&buf).contains("tok") {
        s.read(&mut buf).unwrap();
    }
    drop(s);
    let e = entries(&handle, 1).remove(0);
    assert_eq!(e.status, 200);
    assert!(e.generated_tokens < 1000, "{e:?}");
    handle.shutdown().unwrap();
}

#[test]
fn subscribers_get_each_entry_pushed() {
    let (handle, addr) = start(fake(2, 0));
    let seen = Arc::new(Mutex::new(Vec::<RequestEntry>::new()));
    let s = seen.clone();
    handle
        .state()
        .requests
        .subscribe(Box::new(move |e| s.lock().unwrap().push(e.clone())));
    http::request(&addr, "GET", "/health", None);
    http::request(&addr, "POST", "/v1/chat/completions", Some(&chat(false, 1)));
    let kept = entries(&handle, 2);
    assert_eq!(*seen.lock().unwrap(), kept);
    assert_eq!(kept[0].path, "/health");
    handle.shutdown().unwrap();
}

/// The numbers of a `/metrics` text, summed as [`Highlights`] sums them.
fn parse_metrics(text: &str) -> Highlights {
    let mut h = Highlights::default();
    let (mut ttft_sum, mut itl_sum, mut itl_count) = (0.0, 0.0, 0u64);
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (name, value) = line.rsplit_once(' ').unwrap();
        let v: f64 = value.parse().unwrap();
        if let Some(labels) = name.strip_prefix("lmwb_requests_total") {
            h.requests += v as u64;
            let status: u16 = labels.split("status=\"").nth(1).unwrap()[..3]
                .parse()
                .unwrap();
            if status >= 400 {
                h.errors += v as u64;
            }
        }
        match name {
            "lmwb_prompt_tokens_total" => h.prompt_tokens = v as u64,
            "lmwb_generated_tokens_total" => h.generated_tokens = v as u64,
            "lmwb_requests_in_flight" => h.in_flight = v as usize,
            "lmwb_queue_depth" => h.queued = v as usize,
            "lmwb_ttft_seconds_sum" => ttft_sum = v,
            "lmwb_ttft_seconds_count" => h.ttft_count = v as u64,
            "lmwb_inter_token_seconds_sum" => itl_sum = v,
            "lmwb_inter_token_seconds_count" => itl_count = v as u64,
            _ => {}
        }
    }
    h.ttft_mean_s = (h.ttft_count > 0).then(|| ttft_sum / h.ttft_count as f64);
    h.itl_mean_s = (itl_count > 0).then(|| itl_sum / itl_count as f64);
    h
}

#[test]
fn the_highlights_agree_with_metrics() {
    let (handle, addr) = start(fake(5, 2));
    let state = handle.state().clone();
    assert_eq!(
        state.highlights(),
        parse_metrics(&state.metrics.render(&state.limiter))
    );
    for stream in [false, true] {
        let (status, _) = http::request(
            &addr,
            "POST",
            "/v1/chat/completions",
            Some(&chat(stream, 1)),
        );
        assert_eq!(status, 200);
    }
    http::request(&addr, "GET", "/nope", None);
    entries(&handle, 3);
    let (status, text) = http::request(&addr, "GET", "/metrics", None);
    assert_eq!(status, 200);
    entries(&handle, 4);
    let h = state.highlights();
    let mut rendered = parse_metrics(&text);
    // `/metrics` counts itself only after it has answered.
    rendered.requests += 1;
    assert_eq!(h, rendered);
    assert_eq!((h.requests, h.errors), (4, 1));
    assert_eq!((h.generated_tokens, h.ttft_count), (10, 2));
    assert!(h.ttft_mean_s.unwrap() > 0.0 && h.itl_mean_s.unwrap() > 0.0);
    assert_eq!(h, parse_metrics(&state.metrics.render(&state.limiter)));
}

#[test]
fn the_config_sets_the_defaults_lmwb_serve_uses() {
    let mut cfg = Config::defaults();
    cfg.max_batch = 3;
    cfg.sampling.max_tokens = 77;
    cfg.sampling.params.temperature = 0.25;
    let c = ServerConfig::from_config(&cfg);
    assert_eq!(c.concurrency, 3);
    assert_eq!(c.defaults.max_tokens, Some(77));
    assert_eq!(c.defaults.sampling.temperature, 0.25);
    assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 8080));
    cfg.sampling.max_tokens = 0;
    assert_eq!(ServerConfig::from_config(&cfg).defaults.max_tokens, None);
}

#[tokio::test]
async fn without_a_socket_the_client_is_unknown() {
    use tower::ServiceExt;
    let model = ServedModel {
        id: MODEL.into(),
        client: fake(1, 0),
        created: 0,
        info: None,
    };
    let state = Arc::new(srv::ServerState::new(&ServerConfig::default(), vec![model]));
    let req = axum::http::Request::get("/health")
        .body(axum::body::Body::empty())
        .unwrap();
    let res = srv::router(state.clone()).oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);
    axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    let e = state.requests.recent(1).remove(0);
    assert_eq!(
        (e.path.as_str(), e.status, e.client),
        ("/health", 200, None)
    );
}
