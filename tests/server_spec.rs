//! lmwb's OpenAI responses against the OpenAPI description in
//! `tests/fixtures/specs/lmwb-openai-subset.json` (required fields, types, enums, through
//! `$ref` / `anyOf` / `allOf`), and every request field the spec defines either served or
//! refused by name — never "unrecognized".

#[path = "common/embed_fake.rs"]
mod embed_fake;
#[path = "common/server.rs"]
mod server;

use lmwb::client::fake::Script;
use serde_json::{json, Value};
use server::*;
use std::sync::OnceLock;

fn spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/specs/lmwb-openai-subset.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    })
}

fn schema(name: &str) -> &'static Value {
    &spec()["components"]["schemas"][name]
}

/// Every way `value` breaks `schema` (empty: it conforms).
fn violations(schema: &Value, value: &Value, at: &str) -> Vec<String> {
    if value.is_null() && schema["nullable"] == true {
        return vec![];
    }
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap();
        return violations(self::schema(name), value, at);
    }
    let mut out = Vec::new();
    for key in ["anyOf", "oneOf"] {
        if let Some(options) = schema[key].as_array() {
            if options.iter().all(|s| !violations(s, value, at).is_empty()) {
                out.push(format!("{at}: matches no branch of {key}: {value}"));
            }
        }
    }
    for s in schema["allOf"].as_array().into_iter().flatten() {
        out.extend(violations(s, value, at));
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let is = |t: &str| match t {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        "null" => value.is_null(),
        _ => true,
    };
    if !types.is_empty() && !types.iter().any(|t| is(t)) {
        out.push(format!("{at}: {value} is not {types:?}"));
        return out;
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            out.push(format!("{at}: {value} is not one of {allowed:?}"));
        }
    }
    if let Some(obj) = value.as_object() {
        for key in schema["required"].as_array().into_iter().flatten() {
            if !obj.contains_key(key.as_str().unwrap()) {
                out.push(format!(
                    "{at}: required `{}` missing",
                    key.as_str().unwrap()
                ));
            }
        }
        if let Some(props) = schema["properties"].as_object() {
            for (k, v) in obj {
                if let Some(s) = props.get(k) {
                    out.extend(violations(s, v, &format!("{at}.{k}")));
                }
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), value.as_array()) {
        for (i, v) in arr.iter().enumerate() {
            out.extend(violations(items, v, &format!("{at}[{i}]")));
        }
    }
    out
}

fn assert_conforms(name: &str, value: &Value) {
    let v = violations(schema(name), value, name);
    assert!(v.is_empty(), "{}\nin {value}", v.join("\n"));
}

#[tokio::test]
async fn responses_conform_to_the_openai_schemas() {
    let think = "<think>hmm</think>Paris.";
    let app = app(fake(vec![Script::text(think)]));
    assert_conforms(
        "ListModelsResponse",
        &send(&app, get("/v1/models")).await.json(),
    );
    assert_conforms(
        "Model",
        &send(&app, get("/v1/models/org/fake-1")).await.json(),
    );
    let chat = send(
        &app,
        post("/v1/chat/completions", &chat_body(json!({"n": 2}))),
    )
    .await;
    assert_conforms("CreateChatCompletionResponse", &chat.json());
    let body = chat_body(json!({"stream": true, "stream_options": {"include_usage": true}}));
    for chunk in send(&app, post("/v1/chat/completions", &body))
        .await
        .chunks()
    {
        assert_conforms("CreateChatCompletionStreamResponse", &chunk);
    }
    let body = json!({"model": MODEL, "prompt": "The capital", "max_tokens": 3});
    let completion = send(&app, post("/v1/completions", &body)).await;
    assert_conforms("CreateCompletionResponse", &completion.json());
    let body = json!({"model": MODEL, "prompt": "The capital", "stream": true});
    // The spec reuses CreateCompletionResponse for streamed chunks without marking
    // finish_reason nullable; OpenAI sends null until the last chunk, and so does lmwb.
    let chunks = send(&app, post("/v1/completions", &body)).await.chunks();
    for mut chunk in chunks {
        let choice = &mut chunk["choices"][0];
        if choice["finish_reason"].is_null() {
            choice["finish_reason"] = json!("stop");
        }
        assert_conforms("CreateCompletionResponse", &chunk);
    }
    // Tool calls, whole and streamed.
    let call = "Sure.<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": 1}}\n</tool_call>";
    let tools =
        json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]);
    let tool_app = server::app(fake(vec![Script::text(call)]));
    let chat = send(
        &tool_app,
        post("/v1/chat/completions", &chat_body(json!({"tools": tools}))),
    )
    .await;
    assert!(chat.json()["choices"][0]["message"]["tool_calls"].is_array());
    assert_conforms("CreateChatCompletionResponse", &chat.json());
    let body = chat_body(json!({"tools": tools, "stream": true}));
    let chunks = send(&tool_app, post("/v1/chat/completions", &body))
        .await
        .chunks();
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["delta"]["tool_calls"].is_array()));
    for chunk in chunks {
        assert_conforms("CreateChatCompletionStreamResponse", &chunk);
    }
    for (path, body) in [
        ("/v1/chat/completions", json!({"model": MODEL})),
        ("/v1/chat/completions", chat_body(json!({"model": "nope"}))),
        ("/v1/embeddings", json!({})),
    ] {
        assert_conforms("ErrorResponse", &send(&app, post(path, &body)).await.json());
    }
}

#[tokio::test]
async fn logprobs_conform_to_the_openai_schemas() {
    let app = app(fake(vec![Script::text("The answer is Paris.")]));
    let body = chat_body(json!({"logprobs": true, "top_logprobs": 3, "n": 2}));
    let v = send(&app, post("/v1/chat/completions", &body)).await.json();
    assert!(
        v["choices"][1]["logprobs"]["content"][0]["top_logprobs"][2].is_object(),
        "{v}"
    );
    assert_conforms("CreateChatCompletionResponse", &v);
    let body = chat_body(json!({"logprobs": true, "top_logprobs": 1, "stream": true}));
    let chunks = send(&app, post("/v1/chat/completions", &body))
        .await
        .chunks();
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["logprobs"]["content"].is_array()));
    for chunk in chunks {
        assert_conforms("CreateChatCompletionStreamResponse", &chunk);
    }
    let body = json!({"model": MODEL, "prompt": "The capital", "logprobs": 2});
    let v = send(&app, post("/v1/completions", &body)).await.json();
    assert!(v["choices"][0]["logprobs"]["tokens"].is_array(), "{v}");
    assert_conforms("CreateCompletionResponse", &v);
    let body = chat_body(json!({"response_format": {"type": "json_object"}}));
    let v = send(&app, post("/v1/chat/completions", &body)).await.json();
    assert_conforms("CreateChatCompletionResponse", &v);
}

/// The request fields the spec defines for a schema (through `allOf`).
fn request_fields(name: &str) -> Vec<String> {
    let s = schema(name);
    let mut parts = s["allOf"].as_array().cloned().unwrap_or_default();
    parts.push(s.clone());
    let mut out = Vec::new();
    for p in parts {
        let p = match p["$ref"].as_str() {
            Some(r) => schema(r.rsplit('/').next().unwrap()).clone(),
            None => p,
        };
        out.extend(
            p["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k.clone()),
        );
    }
    out
}

/// Each endpoint's request schema, path, and a valid request to vary.
fn endpoints() -> [(&'static str, &'static str, Value); 2] {
    [
        (
            "CreateChatCompletionRequest",
            "/v1/chat/completions",
            chat_body(json!({})),
        ),
        (
            "CreateCompletionRequest",
            "/v1/completions",
            json!({"model": MODEL, "prompt": "x", "max_tokens": 2}),
        ),
    ]
}

#[tokio::test]
async fn every_request_field_of_the_spec_is_served_or_refused_by_name() {
    let app = app(fake(vec![Script::text("ok")]));
    for (name, path, base) in endpoints() {
        let fields = request_fields(name);
        assert!(fields.len() > 10, "{name}: {fields:?}");
        for field in fields
            .iter()
            .filter(|f| !["model", "messages", "prompt"].contains(&f.as_str()))
        {
            let mut body = base.clone();
            body[field.as_str()] = Value::Null;
            let r = send(&app, post(path, &body)).await;
            if r.status.is_success() {
                continue;
            }
            let e = &r.json()["error"];
            assert_eq!(r.status, 400, "{path} {field}: {e}");
            assert_eq!(e["code"], "unsupported_parameter", "{path} {field}: {e}");
            assert_eq!(e["param"], field.as_str(), "{path} {field}: {e}");
        }
    }
}

/// Values of every JSON type, odd ones included.
fn odd_values() -> Vec<Value> {
    vec![
        Value::Null,
        json!(true),
        json!(0),
        json!(-1),
        json!(1.5),
        json!(1e300),
        json!(u64::MAX),
        json!(""),
        json!("x"),
        json!([]),
        json!([1, "a"]),
        json!({}),
        json!({"type": "text"}),
    ]
}

#[tokio::test]
async fn any_value_in_any_field_gets_a_json_answer_and_never_a_500() {
    let app = app(fake(vec![Script::text("ok")]));
    let mut tried = 0;
    for (name, path, base) in endpoints() {
        for field in request_fields(name) {
            for value in odd_values() {
                let mut body = base.clone();
                body[field.as_str()] = value.clone();
                let r = send(&app, post(path, &body)).await;
                tried += 1;
                assert!(
                    r.status.is_success() || r.status.is_client_error(),
                    "{path} {field} = {value}: {}",
                    r.status
                );
                if r.status.is_client_error() {
                    let e = &r.json()["error"];
                    assert!(e["message"].is_string(), "{path} {field} = {value}: {e}");
                } else if body.get("stream") != Some(&json!(true)) {
                    assert!(r.json()["choices"].is_array(), "{path} {field} = {value}");
                }
            }
        }
    }
    for field in ["role", "content", "name", "tool_calls", "tool_call_id"] {
        for value in odd_values() {
            let mut body = chat_body(json!({}));
            body["messages"][0][field] = value.clone();
            let r = send(&app, post("/v1/chat/completions", &body)).await;
            tried += 1;
            assert!(
                r.status.is_success() || r.status.is_client_error(),
                "messages[0].{field} = {value}: {}",
                r.status
            );
        }
    }
    assert!(tried > 500, "{tried}");
}

#[tokio::test]
async fn embeddings_conform_and_every_field_of_the_spec_is_served() {
    let app = embed_fake::embed_app();
    let base = json!({"model": embed_fake::EMBED_MODEL, "input": "a man eats"});
    let r = send(&app, post("/v1/embeddings", &base)).await;
    assert_conforms("CreateEmbeddingResponse", &r.json());
    let mut many = base.clone();
    many["input"] = json!([[1, 12, 2], [1, 2]]);
    assert_conforms(
        "CreateEmbeddingResponse",
        &send(&app, post("/v1/embeddings", &many)).await.json(),
    );
    assert_conforms(
        "ListModelsResponse",
        &send(&app, get("/v1/models")).await.json(),
    );
    let fields = request_fields("CreateEmbeddingRequest");
    assert_eq!(fields.len(), 5, "{fields:?}");
    for field in &fields {
        // Every field of the spec is served: null (left out) is accepted.
        let mut body = base.clone();
        if !["model", "input"].contains(&field.as_str()) {
            body[field.as_str()] = Value::Null;
            let r = send(&app, post("/v1/embeddings", &body)).await;
            assert_eq!(r.status, 200, "{field}: {:?}", r.body);
        }
        for value in odd_values() {
            let mut body = base.clone();
            body[field.as_str()] = value.clone();
            let r = send(&app, post("/v1/embeddings", &body)).await;
            if r.status.is_success() {
                assert_conforms("CreateEmbeddingResponse", &r.json());
            } else {
                // A model name this server lacks is a 404; anything else wrong a 400.
                let unknown = field == "model" && value.as_str().is_some_and(|s| !s.is_empty());
                let want = if unknown { 404 } else { 400 };
                assert_eq!(r.status, want, "{field} = {value}: {:?}", r.body);
                let e = r.json();
                assert_conforms("ErrorResponse", &e);
                assert_eq!(
                    e["error"]["param"],
                    field.as_str(),
                    "{field} = {value}: {e}"
                );
            }
        }
    }
}
