//! The HTTP `GenerationClient` against scripted servers: OpenAI streams and Ollama lines
//! become the engine's events with client-side stats; reasoning comes back inside
//! `<think>` tags; cancelling closes the connection; a server that is down, refuses, cuts
//! the stream or answers garbage is a clear error naming the backend.

#[path = "common/fake_backend.rs"]
mod fake_backend;

use fake_backend::{
    chat_chunk, chat_stream, json, model_list, openai_server, response, sse, stream_head,
    FakeBackend, Step,
};
use lmwb::client::backend::{BackendConfig, BackendKind};
use lmwb::client::{GenerationClient, HttpClient};
use lmwb::engine::sampler::SamplingParams;
use lmwb::engine::template::ChatMessage;
use lmwb::engine::{EngineError, Event, FinishReason, GenerateRequest, Output, Prompt};
use serde_json::json;
use std::time::{Duration, Instant};

fn backend(url: &str, kind: BackendKind) -> BackendConfig {
    BackendConfig {
        name: "fake".into(),
        base_url: url.into(),
        api_key_env: None,
        kind,
        sampling_extensions: true,
        connect_timeout: 5.0,
    }
}

fn chat(text: &str) -> GenerateRequest {
    let mut r = GenerateRequest::new(Prompt::chat(vec![ChatMessage::user(text)]));
    r.sampling = SamplingParams::greedy();
    r.max_tokens = Some(32);
    r
}

fn collect(c: &dyn GenerationClient, req: GenerateRequest) -> Result<Output, EngineError> {
    c.generate(req).collect()
}

#[test]
fn an_openai_stream_gives_text_usage_and_client_side_stats() {
    let srv = openai_server(&["Hel", "lo", " world"]);
    let c = HttpClient::connect(&backend(&srv.url(), BackendKind::Openai), "m").unwrap();
    assert_eq!(c.model_name(), "fake/m");
    assert_eq!(c.context_length(), Some(4096));
    let out = collect(&c, chat("hi")).unwrap();
    assert_eq!(out.text, "Hello world");
    let s = &out.stats;
    assert_eq!((s.prompt_tokens, s.generated_tokens), (7, 3));
    assert_eq!(s.finish_reason, FinishReason::Stop);
    assert!(s.ttft_ms > 0.0 && s.total_ms >= s.ttft_ms, "{s:?}");
    // The request: streamed, usage asked for, the messages as sent, greedy.
    let sent = srv
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert_eq!(sent.path, "/v1/chat/completions");
    let body = sent.json();
    assert_eq!(body["model"], "m");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert_eq!(body["messages"], json!([{"role": "user", "content": "hi"}]));
    assert_eq!(body["temperature"], 0.0);
    assert_eq!(body["max_tokens"], 32);
    // A seed is drawn, sent and reported when none was given.
    assert_eq!(body["seed"].as_u64(), Some(s.seed));
}

#[test]
fn raw_prompts_go_to_completions_and_the_api_key_is_sent() {
    let srv = openai_server(&["ok"]);
    let mut b = backend(&format!("{}/v1", srv.url()), BackendKind::Openai);
    let var = "LMWB_TEST_REMOTE_KEY_RAW";
    std::env::set_var(var, "sekret");
    b.api_key_env = Some(var.into());
    let c = HttpClient::connect(&b, "m").unwrap();
    let mut req = chat("x");
    req.prompt = Prompt::Raw("Once upon".into());
    assert_eq!(collect(&c, req).unwrap().text, "ok");
    let reqs = srv.requests();
    assert!(reqs
        .iter()
        .all(|r| r.header("authorization") == Some("Bearer sekret")));
    let post = reqs.iter().find(|r| r.method == "POST").unwrap();
    assert_eq!(post.path, "/v1/completions");
    assert_eq!(post.json()["prompt"], "Once upon");
}

#[test]
fn reasoning_comes_back_inside_think_tags() {
    let srv = FakeBackend::start(|r| match r.path.as_str() {
        "/v1/models" => model_list(&["m"]),
        _ => vec![
            stream_head("text/event-stream"),
            chat_chunk(json!({"reasoning_content": "let me "}), None),
            chat_chunk(json!({"reasoning_content": "think"}), None),
            chat_chunk(json!({"content": "Paris"}), None),
            chat_chunk(json!({}), Some("length")),
            sse("[DONE]"),
        ],
    });
    let c = HttpClient::connect(&backend(&srv.url(), BackendKind::Openai), "m").unwrap();
    let out = collect(&c, chat("?")).unwrap();
    assert_eq!(out.text, "<think>let me think</think>Paris");
    assert_eq!(out.stats.finish_reason, FinishReason::Length);
    // No usage in this stream: the pieces are counted.
    assert_eq!(out.stats.generated_tokens, 3);
    let split = lmwb::chat::reasoning::split(&out.text);
    let reasoning: String = split.reasoning.iter().map(|p| p.text.as_str()).collect();
    assert_eq!(reasoning, "let me think");
    assert_eq!(split.answer, "Paris");
}

#[test]
fn an_ollama_backend_streams_lines_and_reports_its_counts() {
    let srv = FakeBackend::start(|r| match r.path.as_str() {
        "/api/tags" => json(200, &json!({"models": [{"name": "llama3.2:latest"}]})),
        "/api/show" => json(
            200,
            &json!({"model_info": {"llama.context_length": 131072, "llama.vocab_size": 128256}}),
        ),
        "/api/chat" => {
            let line = |v: serde_json::Value| Step::Write(format!("{v}\n").into_bytes());
            vec![
                stream_head("application/x-ndjson"),
                line(json!({"message": {"role": "assistant", "content": "Hi"}, "done": false})),
                line(json!({"message": {"role": "assistant", "content": " there"}, "done": false})),
                line(
                    json!({"message": {"role": "assistant", "content": ""}, "done": true,
                            "done_reason": "stop", "prompt_eval_count": 11, "eval_count": 2}),
                ),
            ]
        }
        _ => json(404, &json!({"error": "no"})),
    });
    let b = backend(&srv.url(), BackendKind::Ollama);
    // Ollama's untagged name means :latest.
    let c = HttpClient::connect(&b, "llama3.2").unwrap();
    assert_eq!(c.model_name(), "fake/llama3.2:latest");
    assert_eq!(c.context_length(), Some(131072));
    assert_eq!(c.vocab_size(), None, "Ollama takes no token-id prompts");
    let out = collect(&c, chat("hello")).unwrap();
    assert_eq!(out.text, "Hi there");
    assert_eq!(
        (out.stats.prompt_tokens, out.stats.generated_tokens),
        (11, 2)
    );
    let post = srv
        .requests()
        .into_iter()
        .find(|r| r.path == "/api/chat")
        .unwrap();
    assert_eq!(post.json()["options"]["num_predict"], 32);
    assert_eq!(post.json()["options"]["temperature"], 0.0);
}

#[test]
fn a_server_that_ignores_stream_and_answers_json_is_read() {
    let srv = FakeBackend::start(|r| match r.path.as_str() {
        "/v1/models" => model_list(&["m"]),
        _ => json(
            200,
            &json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "whole"},
            "finish_reason": "stop"}], "usage": {"prompt_tokens": 2, "completion_tokens": 1}}),
        ),
    });
    let c = HttpClient::connect(&backend(&srv.url(), BackendKind::Openai), "m").unwrap();
    let out = collect(&c, chat("x")).unwrap();
    assert_eq!(out.text, "whole");
    assert_eq!(out.stats.generated_tokens, 1);
}

#[test]
fn cancelling_closes_the_connection() {
    let srv = FakeBackend::start(|r| match r.path.as_str() {
        "/v1/models" => model_list(&["m"]),
        _ => {
            let mut steps = vec![stream_head("text/event-stream")];
            for _ in 0..400 {
                steps.push(chat_chunk(json!({"content": "tok "}), None));
                steps.push(Step::Sleep(Duration::from_millis(10)));
            }
            steps
        }
    });
    let c = HttpClient::connect(&backend(&srv.url(), BackendKind::Openai), "m").unwrap();
    let g = c.generate(chat("go"));
    let mut tokens = 0;
    let t = Instant::now();
    let stats = loop {
        match g.events.recv_timeout(Duration::from_secs(10)).unwrap() {
            Event::Token { .. } => {
                tokens += 1;
                if tokens == 3 {
                    g.cancel.cancel();
                }
            }
            Event::Done(s) => break s,
            Event::Error(e) => panic!("{e}"),
            _ => {}
        }
    };
    assert_eq!(stats.finish_reason, FinishReason::Cancelled);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    // The server notices the client is gone: its next writes fail.
    let until = Instant::now() + Duration::from_secs(5);
    while srv.hangups() == 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(srv.hangups(), 1, "the connection was closed");
}

fn error_of(c: &dyn GenerationClient) -> String {
    match collect(c, chat("x")) {
        Err(e) => e.to_string(),
        Ok(o) => panic!("expected an error, got {:?}", o.text),
    }
}

#[test]
fn a_backend_that_is_down_is_a_clear_error() {
    // Bind then drop: the port is (almost surely) closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/v1");
    let e = HttpClient::connect(&backend(&url, BackendKind::Openai), "m")
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("cannot reach backend `fake`") && e.contains(&url) && e.contains("running"),
        "{e}"
    );
}

#[test]
fn garbage_status_errors_and_cut_streams_are_named() {
    // An HTML page where the model list should be.
    let srv = FakeBackend::start(|_| response(200, "text/html", "<html>hello</html>"));
    let e = HttpClient::connect(&backend(&srv.url(), BackendKind::Openai), "m")
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("did not answer like an OpenAI-compatible API") && e.contains("<html>"),
        "{e}"
    );

    // A listing, then garbage in the stream.
    let srv = FakeBackend::start(|r| match r.path.as_str() {
        "/v1/models" => model_list(&["m"]),
        _ => vec![stream_head("text/event-stream"), sse("this is not json")],
    });
    let c = HttpClient::connect(&backend(&srv.url(), BackendKind::Openai), "m").unwrap();
    let e = error_of(&c);
    assert!(
        e.contains("not JSON") && e.contains("this is not json"),
        "{e}"
    );

    // The wrong content type.
    let srv = FakeBackend::start(|r| match r.path.as_str() {
        "/v1/models" => model_list(&["m"]),
        _ => response(200, "text/plain", "hello"),
    });
    let c = HttpClient::connect(&backend(&srv.url(), BackendKind::Openai), "m").unwrap();
    assert!(error_of(&c).contains("text/plain"));

    // Refused with an API error, and with 401.
    let srv = FakeBackend::start(|r| match r.path.as_str() {
        "/v1/models" => model_list(&["m"]),
        "/v1/chat/completions" => json(500, &json!({"error": {"message": "CUDA out of memory"}})),
        _ => json(401, &json!({"error": {"message": "invalid api key"}})),
    });
    let c = HttpClient::connect(&backend(&srv.url(), BackendKind::Openai), "m").unwrap();
    let e = error_of(&c);
    assert!(e.contains("500") && e.contains("CUDA out of memory"), "{e}");
    let mut raw = chat("x");
    raw.prompt = Prompt::Raw("x".into());
    let e = collect(&c, raw).unwrap_err().to_string();
    assert!(e.contains("401") && e.contains("api_key_env"), "{e}");

    // A stream cut before its end.
    let srv = FakeBackend::start(|r| match r.path.as_str() {
        "/v1/models" => model_list(&["m"]),
        _ => chat_stream(&["a", "b"], 1).into_iter().take(3).collect(),
    });
    let c = HttpClient::connect(&backend(&srv.url(), BackendKind::Openai), "m").unwrap();
    let e = error_of(&c);
    assert!(e.contains("closed before the answer was complete"), "{e}");
}

#[test]
fn unknown_models_and_what_a_remote_cannot_do_are_refused() {
    let srv = openai_server(&["x"]);
    let b = backend(&srv.url(), BackendKind::Openai);
    let e = HttpClient::connect(&b, "nope").err().unwrap().to_string();
    assert!(
        e.contains("no model `nope`") && e.contains("serves: m"),
        "{e}"
    );
    // An empty name picks the only model.
    let c = HttpClient::connect(&b, "").unwrap();
    assert_eq!(c.model_name(), "fake/m");
    let mut req = chat("x");
    req.max_kv_size = Some(128);
    let e = error_of_req(&c, req);
    assert!(e.contains("--max-kv-size"), "{e}");
    // Nothing was sent for the refused request.
    assert!(srv.requests().iter().all(|r| r.method == "GET"));
}

fn error_of_req(c: &dyn GenerationClient, req: GenerateRequest) -> String {
    collect(c, req).unwrap_err().to_string()
}

#[test]
fn the_workbench_lists_and_loads_remote_models() {
    use lmwb::tui::loader::{EngineLoader, ModelLoader};
    let srv = openai_server(&["from", " afar"]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut down = backend(&format!("http://127.0.0.1:{port}"), BackendKind::Openai);
    down.name = "down".into();
    let loader = EngineLoader {
        sources: lmwb::models::Sources::default(),
        options: Err("no local models here".into()),
        backends: vec![backend(&srv.url(), BackendKind::Openai), down],
        max_kv_size: 0,
        kv_dtype: lmwb::models::fit::KvDtype::F16,
    };
    let rows = loader.scan();
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["fake/m", "down/"]);
    assert_eq!(rows[0].info.as_ref().unwrap().context_length, 4096);
    // A backend that cannot be listed is one row saying why.
    let why = rows[1].info.as_ref().unwrap_err();
    assert!(why.contains("cannot reach backend `down`"), "{why}");
    let client = loader.load(&rows[0]).unwrap();
    assert_eq!(client.model_name(), "fake/m");
    assert_eq!(
        collect(client.as_ref(), chat("hi")).unwrap().text,
        "from afar"
    );
    assert!(loader.load(&rows[1]).is_err());
}
