//! `logprobs` and `response_format` / Ollama `format` through the router on the scripted
//! [`FakeClient`] (which makes up well-formed log probabilities: each piece is its own top
//! token with logprob -0.1 × (i + 1), then `alt1`, `alt2`, … one nat apart). Errors are in
//! `tests/server_errors.rs` and `tests/server_ollama_errors.rs`; the real model is in
//! `tests/engine_structured.rs` and `tests/server_real.rs`.

#[path = "common/ollama.rs"]
mod ollama;
#[path = "common/server.rs"]
mod server;

use lmwb::client::fake::Script;
use lmwb::engine::constrain::Constraint;
use serde_json::{json, Value};
use server::*;

fn close(a: &Value, b: f64) -> bool {
    (a.as_f64().unwrap() - b).abs() < 1e-6
}

/// Checks one OpenAI-chat/Ollama-shaped token entry for piece `i` with `n` alternatives.
fn check_entry(e: &Value, i: usize, piece: &str, n: usize) {
    assert_eq!(e["token"], piece);
    assert_eq!(e["bytes"], json!(piece.as_bytes()));
    assert!(close(&e["logprob"], -0.1 * (i + 1) as f64), "{e}");
    let top = e["top_logprobs"].as_array().unwrap();
    assert_eq!(top.len(), n);
    if n > 0 {
        assert_eq!(top[0]["token"], piece);
        assert_eq!(top[0]["logprob"], e["logprob"]);
    }
    if n > 1 {
        assert_eq!(top[1]["token"], "alt1");
        assert_eq!(top[1]["bytes"], json!(b"alt1"));
    }
}

#[tokio::test]
async fn chat_logprobs_plain_cover_every_token_of_the_answer() {
    let f = fake(vec![Script::text("Hello there!")]);
    let app = app(f.clone());
    let body = chat_body(json!({"logprobs": true, "top_logprobs": 3}));
    let v = send(&app, post("/v1/chat/completions", &body)).await.json();
    assert_eq!(f.requests()[0].logprobs, Some(3));
    let lp = &v["choices"][0]["logprobs"];
    assert_eq!(lp["refusal"], Value::Null);
    let content = lp["content"].as_array().unwrap();
    let pieces = ["Hell", "o", " the", "re!"];
    assert_eq!(content.len(), pieces.len(), "{lp}");
    for (i, (e, p)) in content.iter().zip(pieces).enumerate() {
        check_entry(e, i, p, 3);
    }
    // logprobs: true alone gives the chosen tokens with no alternatives.
    let body = chat_body(json!({"logprobs": true}));
    let v = send(&app, post("/v1/chat/completions", &body)).await.json();
    assert_eq!(f.requests()[1].logprobs, Some(0));
    check_entry(&v["choices"][0]["logprobs"]["content"][0], 0, "Hell", 0);
    // Off: null, and the engine is not asked.
    let v = send(
        &app,
        post(
            "/v1/chat/completions",
            &chat_body(json!({"logprobs": false})),
        ),
    )
    .await
    .json();
    assert_eq!(v["choices"][0]["logprobs"], Value::Null);
    assert_eq!(f.requests()[2].logprobs, None);
}

#[tokio::test]
async fn chat_logprobs_stream_with_the_chunks_that_carry_their_text() {
    let app = app(fake(vec![Script::text("Hello there!")]));
    let body = chat_body(json!({"logprobs": true, "top_logprobs": 2, "stream": true}));
    let chunks = send(&app, post("/v1/chat/completions", &body))
        .await
        .chunks();
    let mut text = String::new();
    let mut entries = Vec::new();
    for c in &chunks {
        let choice = &c["choices"][0];
        match choice["delta"]["content"].as_str() {
            Some(t) if !t.is_empty() => {
                let got = choice["logprobs"]["content"].as_array().unwrap();
                let joined: String = got.iter().map(|e| e["token"].as_str().unwrap()).collect();
                assert_eq!(joined, t, "a chunk's logprobs are its text's tokens");
                text.push_str(t);
                entries.extend(got.clone());
            }
            _ => assert_eq!(choice["logprobs"], Value::Null, "{c}"),
        }
    }
    assert_eq!(text, "Hello there!");
    assert_eq!(entries.len(), 4);
    check_entry(&entries[3], 3, "re!", 2);
}

#[tokio::test]
async fn reasoning_tokens_are_left_out_of_the_logprobs() {
    let script = Script::Reply(vec![
        "<think>".into(),
        "hmm".into(),
        "</think>".into(),
        "Yes".into(),
    ]);
    let app = app(fake(vec![script]));
    let body = chat_body(json!({"logprobs": true}));
    let v = send(&app, post("/v1/chat/completions", &body)).await.json();
    assert_eq!(v["choices"][0]["message"]["content"], "Yes");
    let content = v["choices"][0]["logprobs"]["content"]
        .as_array()
        .unwrap()
        .clone();
    let tokens: Vec<&str> = content
        .iter()
        .map(|e| e["token"].as_str().unwrap())
        .collect();
    assert_eq!(tokens, ["Yes"], "{content:?}");
}

#[tokio::test]
async fn completion_logprobs_have_the_legacy_shape_plain_and_streamed() {
    let f = fake(vec![Script::text("Hello there!")]);
    let app = app(f.clone());
    let body = json!({"model": MODEL, "prompt": "Say", "logprobs": 2});
    let v = send(&app, post("/v1/completions", &body)).await.json();
    assert_eq!(f.requests()[0].logprobs, Some(2));
    let lp = &v["choices"][0]["logprobs"];
    assert_eq!(lp["tokens"], json!(["Hell", "o", " the", "re!"]));
    assert_eq!(lp["text_offset"], json!([0, 4, 5, 9]));
    assert!(close(&lp["token_logprobs"][1], -0.2));
    assert!(close(&lp["top_logprobs"][1]["o"], -0.2));
    assert!(close(&lp["top_logprobs"][1]["alt1"], -1.2));
    assert_eq!(lp["top_logprobs"][0].as_object().unwrap().len(), 2);
    let body = json!({"model": MODEL, "prompt": "Say", "logprobs": 0, "stream": true});
    let chunks = send(&app, post("/v1/completions", &body)).await.chunks();
    let with: Vec<&Value> = chunks
        .iter()
        .filter(|c| !c["choices"][0]["logprobs"].is_null())
        .collect();
    assert_eq!(with.len(), 4);
    assert_eq!(with[3]["choices"][0]["logprobs"]["text_offset"], json!([9]));
    assert_eq!(with[3]["choices"][0]["logprobs"]["tokens"], json!(["re!"]));
    let v = send(
        &app,
        post("/v1/completions", &json!({"model": MODEL, "prompt": "Say"})),
    )
    .await
    .json();
    assert_eq!(v["choices"][0]["logprobs"], Value::Null);
}

#[tokio::test]
async fn response_format_becomes_the_engine_constraint() {
    let f = fake(vec![Script::text("{}")]);
    let app = app(f.clone());
    let schema =
        json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]});
    for (rf, want_json, want_schema) in [
        (json!({"type": "text"}), false, false),
        (json!({"type": "json_object"}), true, false),
        (
            json!({"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": true}}),
            false,
            true,
        ),
        (Value::Null, false, false),
    ] {
        let r = send(
            &app,
            post(
                "/v1/chat/completions",
                &chat_body(json!({"response_format": rf})),
            ),
        )
        .await;
        assert_eq!(r.status, axum::http::StatusCode::OK, "{rf}");
        let c = f.requests().last().unwrap().constraint.clone();
        assert_eq!(matches!(c, Some(Constraint::Json)), want_json, "{rf}");
        assert_eq!(
            matches!(c, Some(Constraint::Schema(_))),
            want_schema,
            "{rf}"
        );
    }
}

#[tokio::test]
async fn ollama_format_and_logprobs_plain_and_streamed() {
    let f = fake(vec![Script::text("Hello there!")]);
    let app = app(f.clone());
    for (path, body) in [
        (
            "/api/chat",
            ollama::chat(
                json!({"format": "json", "stream": false, "logprobs": true, "top_logprobs": 2}),
            ),
        ),
        (
            "/api/generate",
            ollama::gen(
                json!({"format": {"type": "object"}, "stream": false, "logprobs": true, "top_logprobs": 2}),
            ),
        ),
    ] {
        let v = send(&app, post(path, &body)).await.json();
        let req = f.requests().last().unwrap().clone();
        assert!(
            req.constraint.is_some() && req.logprobs == Some(2),
            "{path}"
        );
        let lp = v["logprobs"].as_array().unwrap_or_else(|| panic!("{v}"));
        assert_eq!(lp.len(), 4);
        check_entry(&lp[2], 2, " the", 2);
    }
    let body = ollama::gen(json!({"logprobs": true}));
    let lines = ollama::lines(&send(&app, post("/api/generate", &body)).await);
    let mut n = 0;
    for l in &lines[..lines.len() - 1] {
        let entries = l["logprobs"].as_array().unwrap();
        let joined: String = entries
            .iter()
            .map(|e| e["token"].as_str().unwrap())
            .collect();
        assert_eq!(joined, l["response"].as_str().unwrap());
        n += entries.len();
    }
    assert_eq!(n, 4);
    let plain = send(
        &app,
        post("/api/chat", &ollama::chat(json!({"stream": false}))),
    )
    .await
    .json();
    assert!(plain.get("logprobs").is_none());
    assert!(f.requests().last().unwrap().constraint.is_none());
}
