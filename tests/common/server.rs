//! The server's router on a scripted [`FakeClient`], driven through
//! `tower::ServiceExt::oneshot`, for `tests/server_api.rs` and `tests/server_errors.rs`.
//!
//! Include it with `#[path = "common/server.rs"] mod server;`.
#![allow(dead_code)]

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use lmwb::client::fake::{FakeClient, Script};
use lmwb::server::{router, ServedModel, ServerConfig, ServerState};
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt;

/// A model id with a slash, as hub names have.
pub const MODEL: &str = "org/fake-1";

pub fn app_with(fake: Arc<FakeClient>, config: ServerConfig) -> Router {
    let model = ServedModel {
        id: MODEL.into(),
        client: fake,
        created: 0,
        info: None,
    };
    router(Arc::new(ServerState::new(&config, vec![model])))
}

pub fn app(fake: Arc<FakeClient>) -> Router {
    app_with(fake, ServerConfig::default())
}

pub fn fake(scripts: Vec<Script>) -> Arc<FakeClient> {
    Arc::new(FakeClient::new("fake", scripts))
}

pub fn request(method: Method, path: &str, body: impl Into<Body>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .unwrap()
}

pub fn post(path: &str, body: &Value) -> Request<Body> {
    request(Method::POST, path, body.to_string())
}

pub fn get(path: &str) -> Request<Body> {
    request(Method::GET, path, Body::empty())
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// The `data:` payloads of an SSE body, `[DONE]` included as a string.
    pub fn events(&self) -> Vec<String> {
        let text = std::str::from_utf8(&self.body).unwrap();
        assert!(text.ends_with("\n\n"), "{text:?}");
        text.split("\n\n")
            .filter(|f| !f.is_empty())
            .map(|f| f.strip_prefix("data: ").expect("a data frame").to_string())
            .collect()
    }

    pub fn chunks(&self) -> Vec<Value> {
        let events = self.events();
        assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
        events[..events.len() - 1]
            .iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect()
    }
}

pub async fn send(app: &Router, req: Request<Body>) -> Reply {
    let res = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: axum::body::to_bytes(body, usize::MAX).await.unwrap(),
    }
}

pub fn chat_body(extra: Value) -> Value {
    let mut body = json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

/// An error in OpenAI's shape with this status; returns its `error` object.
pub fn assert_error(r: &Reply, status: StatusCode) -> Value {
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
pub fn pieces(text: &str) -> usize {
    match Script::text(text) {
        Script::Reply(p) => p.len(),
        Script::Fail(_) => 0,
    }
}
