//! Helpers for the Ollama API tests (`tests/server_ollama*.rs`), on top of `server.rs`.
//!
//! Include it after `server.rs` with `#[path = "common/ollama.rs"] mod ollama;`.
#![allow(dead_code)]

use super::server::{Reply, MODEL};
use axum::http::StatusCode;
use serde_json::{json, Value};

pub const SPEC: &str = include_str!("../fixtures/specs/ollama-openapi.yaml");

pub fn chat(extra: Value) -> Value {
    let mut b = json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]});
    b.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    b
}

pub fn gen(extra: Value) -> Value {
    let mut b = json!({"model": MODEL, "prompt": "Hi"});
    b.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    b
}

/// The objects of an NDJSON body, one per line.
pub fn lines(r: &Reply) -> Vec<Value> {
    let text = std::str::from_utf8(&r.body).unwrap();
    assert!(text.ends_with('\n'), "{text:?}");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// An error in Ollama's shape; returns its message.
pub fn ollama_error(r: &Reply, status: StatusCode) -> String {
    assert_eq!(r.status, status, "{:?}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
    let m = v["error"].as_str().expect("error is a string").to_string();
    assert!(!m.is_empty());
    m
}

/// The property names the spec's schema `name` defines (its own, and its `message`'s).
pub fn spec_fields(name: &str) -> Vec<String> {
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

pub fn assert_in_spec(v: &Value, schema: &str) {
    let fields = spec_fields(schema);
    for k in v.as_object().unwrap().keys() {
        assert!(
            fields.contains(k),
            "`{k}` is not in the spec's {schema}: {fields:?}"
        );
    }
}

pub const STATS: [&str; 7] = [
    "done_reason",
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
];
