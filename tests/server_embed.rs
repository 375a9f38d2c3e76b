//! The embedding routes through the router (`tower::ServiceExt::oneshot`) on a fake
//! embedder: every success shape and every refusal, in OpenAI's and Ollama's shapes.

#[path = "common/embed_fake.rs"]
mod embed_fake;
#[path = "common/server.rs"]
mod server;

use axum::http::StatusCode;
use base64::Engine as _;
use embed_fake::{embed_app, state_with, vector_of, DIMS, EMBED_MODEL, MAX_TOKENS};
use serde_json::{json, Value};
use server::*;

fn body(extra: Value) -> Value {
    let mut b = json!({"model": EMBED_MODEL, "input": "a man eats"});
    b.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    b
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// `[CLS] word… [SEP]` as the fake tokenizes it.
fn fake_ids(s: &str) -> Vec<u32> {
    std::iter::once(1)
        .chain(s.split_whitespace().map(|w| 10 + w.len() as u32))
        .chain(std::iter::once(2))
        .collect()
}

#[tokio::test]
async fn openai_one_string_in_openai_shape() {
    let app = embed_app();
    let r = send(&app, post("/v1/embeddings", &body(json!({"user": "u1"})))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let v = r.json();
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], EMBED_MODEL);
    assert_eq!(v["usage"], json!({"prompt_tokens": 5, "total_tokens": 5}));
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["object"], "embedding");
    assert_eq!(data[0]["index"], 0);
    assert_eq!(
        floats(&data[0]["embedding"]),
        vector_of(&fake_ids("a man eats"))
    );
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 4, "{v}");
}

#[tokio::test]
async fn openai_lists_of_strings_tokens_and_token_lists() {
    let app = embed_app();
    let r = send(
        &app,
        post(
            "/v1/embeddings",
            &body(json!({"input": ["one", "two words"]})),
        ),
    )
    .await;
    let v = r.json();
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["index"], 1);
    assert_eq!(
        floats(&data[1]["embedding"]),
        vector_of(&fake_ids("two words"))
    );
    assert_eq!(v["usage"]["prompt_tokens"], 3 + 4);

    let r = send(
        &app,
        post("/v1/embeddings", &body(json!({"input": [1, 13, 2]}))),
    )
    .await;
    let v = r.json();
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert_eq!(floats(&v["data"][0]["embedding"]), vector_of(&[1, 13, 2]));
    assert_eq!(v["usage"]["prompt_tokens"], 3);

    let r = send(
        &app,
        post(
            "/v1/embeddings",
            &body(json!({"input": [[1, 2], [5, 6, 7]]})),
        ),
    )
    .await;
    let v = r.json();
    assert_eq!(floats(&v["data"][1]["embedding"]), vector_of(&[5, 6, 7]));
    assert_eq!(v["usage"]["total_tokens"], 5);
}

#[tokio::test]
async fn base64_decodes_to_the_float_vectors() {
    let app = embed_app();
    let input = json!({"input": ["one", "two words", "three more words"]});
    let plain = send(&app, post("/v1/embeddings", &body(input.clone())))
        .await
        .json();
    let mut b = body(input);
    b["encoding_format"] = json!("base64");
    let coded = send(&app, post("/v1/embeddings", &b)).await.json();
    for i in 0..3 {
        let s = coded["data"][i]["embedding"]
            .as_str()
            .expect("a base64 string");
        let bytes = base64::engine::general_purpose::STANDARD.decode(s).unwrap();
        assert_eq!(bytes.len(), DIMS * 4);
        let back: Vec<f32> = bytes
            .chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(back, floats(&plain["data"][i]["embedding"]));
    }
    let mut b = body(json!({}));
    b["encoding_format"] = json!("float");
    assert!(send(&app, post("/v1/embeddings", &b)).await.json()["data"][0]["embedding"].is_array());
}

#[tokio::test]
async fn dimensions_equal_to_the_model_are_accepted_others_refused_by_name() {
    let app = embed_app();
    let r = send(
        &app,
        post("/v1/embeddings", &body(json!({"dimensions": DIMS}))),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(
        &app,
        post("/v1/embeddings", &body(json!({"dimensions": 2}))),
    )
    .await;
    let e = assert_error(&r, StatusCode::BAD_REQUEST);
    assert_eq!(e["param"], "dimensions");
    assert_eq!(e["code"], "unsupported_parameter");
    assert!(
        e["message"].as_str().unwrap().contains("4-dimensional"),
        "{e}"
    );
}

#[tokio::test]
async fn openai_bad_input_is_a_400_naming_the_field() {
    let app = embed_app();
    let long = "w ".repeat(MAX_TOKENS);
    let cases = [
        (json!({"input": ""}), "input"),
        (json!({"input": []}), "input"),
        (json!({"input": ["ok", ""]}), "input[1]"),
        (json!({"input": [[]]}), "input[0]"),
        (json!({"input": 3}), "input"),
        (json!({"input": {"text": "x"}}), "input"),
        (json!({"input": ["ok", 3]}), "input[1]"),
        (json!({"input": [1, "a"]}), "input"),
        (json!({"input": [1, -1]}), "input"),
        (json!({"input": [1, 5000]}), "input"),
        (json!({"input": null}), "input"),
        (json!({"encoding_format": "hex"}), "encoding_format"),
        (json!({"encoding_format": 1}), "encoding_format"),
        (json!({"dimensions": "4"}), "dimensions"),
        (json!({"user": 5}), "user"),
        (json!({"model": 5}), "model"),
        (json!({"model": ""}), "model"),
        (json!({"temperature": 0}), "temperature"),
        (json!({"input": long}), "input"),
        (json!({"input": ["ok", long]}), "input[1]"),
    ];
    for (extra, param) in cases {
        let r = send(&app, post("/v1/embeddings", &body(extra.clone()))).await;
        let e = assert_error(&r, StatusCode::BAD_REQUEST);
        assert_eq!(e["param"], param, "{extra}: {e}");
        assert_eq!(e["type"], "invalid_request_error", "{extra}: {e}");
    }
    let r = send(&app, post("/v1/embeddings", &body(json!({"input": long})))).await;
    let e = assert_error(&r, StatusCode::BAD_REQUEST);
    assert_eq!(e["code"], "context_length_exceeded");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains(&MAX_TOKENS.to_string()),
        "{e}"
    );
    let r = send(
        &app,
        request(axum::http::Method::POST, "/v1/embeddings", "{"),
    )
    .await;
    assert_error(&r, StatusCode::BAD_REQUEST);
    let r = send(&app, post("/v1/embeddings", &json!({"input": "x"}))).await;
    assert_eq!(assert_error(&r, StatusCode::BAD_REQUEST)["param"], "model");
}

#[tokio::test]
async fn unknown_and_chat_models_are_refused_in_openai_shape() {
    let app = embed_app();
    let r = send(
        &app,
        post("/v1/embeddings", &body(json!({"model": "nope"}))),
    )
    .await;
    let e = assert_error(&r, StatusCode::NOT_FOUND);
    assert_eq!(
        (e["param"].as_str(), e["code"].as_str()),
        (Some("model"), Some("model_not_found"))
    );
    assert!(e["message"].as_str().unwrap().contains(EMBED_MODEL), "{e}");
    let r = send(&app, post("/v1/embeddings", &body(json!({"model": MODEL})))).await;
    let e = assert_error(&r, StatusCode::BAD_REQUEST);
    assert_eq!(e["param"], "model");
    assert!(e["message"].as_str().unwrap().contains("chat model"), "{e}");
    // ... and the other way round: chat with the embedding model says where it belongs.
    let chat = json!({"model": EMBED_MODEL, "messages": [{"role": "user", "content": "Hi"}]});
    let r = send(&app, post("/v1/chat/completions", &chat)).await;
    let e = assert_error(&r, StatusCode::BAD_REQUEST);
    assert_eq!(e["code"], "model_not_supported");
    assert!(
        e["message"].as_str().unwrap().contains("/v1/embeddings"),
        "{e}"
    );
    // A server without an embedding model says how to get one.
    let app = lmwb::server::router(state_with(Some(embed_fake::chat_model()), false));
    let r = send(&app, post("/v1/embeddings", &body(json!({"model": "x"})))).await;
    let e = assert_error(&r, StatusCode::NOT_FOUND);
    assert!(
        e["message"].as_str().unwrap().contains("--embedding-model"),
        "{e}"
    );
}

#[tokio::test]
async fn the_embedding_model_is_listed_and_counted() {
    let app = embed_app();
    let v = send(&app, get("/v1/models")).await.json();
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![MODEL, EMBED_MODEL]);
    let m = send(&app, get(&format!("/v1/models/{EMBED_MODEL}")))
        .await
        .json();
    assert_eq!(
        (m["id"].as_str(), m["object"].as_str()),
        (Some(EMBED_MODEL), Some("model"))
    );
    let tags = send(&app, get("/api/tags")).await.json();
    assert!(
        tags["models"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == EMBED_MODEL),
        "{tags}"
    );
    let h = send(&app, get("/health")).await.json();
    assert_eq!(h["embedding_models"], json!([EMBED_MODEL]));

    send(&app, post("/v1/embeddings", &body(json!({})))).await;
    send(&app, post("/api/embed", &body(json!({})))).await;
    send(&app, post("/v1/embeddings", &body(json!({"input": ""})))).await;
    let text = String::from_utf8(send(&app, get("/metrics")).await.body.to_vec()).unwrap();
    for line in [
        "lmwb_requests_total{route=\"/v1/embeddings\",status=\"200\"} 1",
        "lmwb_requests_total{route=\"/v1/embeddings\",status=\"400\"} 1",
        "lmwb_requests_total{route=\"/api/embed\",status=\"200\"} 1",
        "lmwb_prompt_tokens_total 10",
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
}

fn ollama_error(r: &Reply, status: StatusCode) -> String {
    assert_eq!(r.status, status, "{:?}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
    v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_string()
}

#[tokio::test]
async fn ollama_embed_shapes() {
    let app = embed_app();
    let r = send(
        &app,
        post(
            "/api/embed",
            &body(json!({"keep_alive": "5m", "options": {"temperature": 0}})),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["model"], EMBED_MODEL);
    assert_eq!(v["embeddings"].as_array().unwrap().len(), 1);
    assert_eq!(
        floats(&v["embeddings"][0]),
        vector_of(&fake_ids("a man eats"))
    );
    assert_eq!(v["prompt_eval_count"], 5);
    assert_eq!(v["load_duration"], 0);
    assert!(v["total_duration"].as_u64().is_some_and(|n| n > 0), "{v}");

    let v = send(
        &app,
        post(
            "/api/embed",
            &body(json!({"input": ["x", "y z"], "dimensions": DIMS})),
        ),
    )
    .await
    .json();
    assert_eq!(v["embeddings"].as_array().unwrap().len(), 2);
    assert_eq!(floats(&v["embeddings"][1]), vector_of(&fake_ids("y z")));

    // No input only loads the model, as in Ollama.
    for b in [
        json!({"model": EMBED_MODEL}),
        body(json!({"input": ""})),
        body(json!({"input": []})),
    ] {
        let v = send(&app, post("/api/embed", &b)).await.json();
        assert_eq!(v["embeddings"], json!([]), "{b}");
        assert_eq!(v["prompt_eval_count"], 0);
    }
}

#[tokio::test]
async fn ollama_truncates_by_default_and_refuses_with_truncate_false() {
    let app = embed_app();
    let long = "word ".repeat(20);
    let v = send(&app, post("/api/embed", &body(json!({"input": long}))))
        .await
        .json();
    assert_eq!(v["prompt_eval_count"], MAX_TOKENS);
    let cut: Vec<u32> = fake_ids(&long)[..MAX_TOKENS].to_vec();
    assert_eq!(floats(&v["embeddings"][0]), vector_of(&cut));
    let r = send(
        &app,
        post(
            "/api/embed",
            &body(json!({"input": long, "truncate": false})),
        ),
    )
    .await;
    let msg = ollama_error(&r, StatusCode::BAD_REQUEST);
    assert!(msg.contains(&MAX_TOKENS.to_string()), "{msg}");
}

#[tokio::test]
async fn ollama_refusals_in_ollama_shape() {
    let app = embed_app();
    let cases = [
        (json!({"input": 3}), "input"),
        (json!({"input": ["a", ""]}), "input[1]"),
        (json!({"input": ["a", 1]}), "input[1]"),
        (json!({"truncate": "yes"}), "truncate"),
        (json!({"dimensions": 3}), "dimensions"),
        (json!({"options": {"num_ctx": 2}}), "num_ctx"),
        (json!({"options": {"bogus": 1}}), "bogus"),
        (json!({"options": []}), "options"),
        (json!({"keep_alive": {}}), "keep_alive"),
        (json!({"prompt": "x"}), "prompt"),
        (json!({"model": 3}), "model"),
    ];
    for (extra, field) in cases {
        let r = send(&app, post("/api/embed", &body(extra.clone()))).await;
        let msg = ollama_error(&r, StatusCode::BAD_REQUEST);
        assert!(msg.contains(field), "{extra}: {msg}");
    }
    let r = send(&app, post("/api/embed", &body(json!({"model": "nope"})))).await;
    assert!(ollama_error(&r, StatusCode::NOT_FOUND).contains("nope"));
    let r = send(
        &app,
        request(axum::http::Method::POST, "/api/embed", "not json"),
    )
    .await;
    ollama_error(&r, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn ollama_legacy_embeddings_route() {
    let app = embed_app();
    let v = send(
        &app,
        post(
            "/api/embeddings",
            &json!({"model": EMBED_MODEL, "prompt": "a man eats"}),
        ),
    )
    .await
    .json();
    assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
    assert_eq!(floats(&v["embedding"]), vector_of(&fake_ids("a man eats")));
    let v = send(
        &app,
        post(
            "/api/embeddings",
            &json!({"model": EMBED_MODEL, "prompt": ""}),
        ),
    )
    .await
    .json();
    assert_eq!(v, json!({"embedding": []}));
    let r = send(
        &app,
        post(
            "/api/embeddings",
            &json!({"model": EMBED_MODEL, "input": "x"}),
        ),
    )
    .await;
    assert!(ollama_error(&r, StatusCode::BAD_REQUEST).contains("input"));
    let r = send(
        &app,
        post(
            "/api/embeddings",
            &json!({"model": EMBED_MODEL, "prompt": 1}),
        ),
    )
    .await;
    assert!(ollama_error(&r, StatusCode::BAD_REQUEST).contains("prompt"));
}

#[tokio::test]
async fn ollama_show_describes_the_embedding_model() {
    let app = embed_app();
    let v = send(&app, post("/api/show", &json!({"model": EMBED_MODEL})))
        .await
        .json();
    assert_eq!(v["capabilities"], json!(["embedding"]), "{v}");
    assert_eq!(v["model_info"]["general.embedding_length"], DIMS, "{v}");
    assert_eq!(v["model_info"]["general.context_length"], MAX_TOKENS, "{v}");
    assert!(
        v["details"].is_object() && v["modified_at"].is_string(),
        "{v}"
    );
}
