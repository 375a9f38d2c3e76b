//! Models served by name and loaded on demand: first use loads, the count limit and the
//! memory budget evict the least recently used idle model, a model answering a request is
//! never evicted, the idle TTL and a request's `keep_alive` / `ttl` unload, a failed load
//! answers in shape and shows in /health — on a fake registry whose loads are counted.

#[path = "common/server.rs"]
mod server;

use axum::http::StatusCode;
use lmwb::client::fake::{FakeClient, Script};
use lmwb::client::GenerationClient;
use lmwb::server::keep::Keep;
use lmwb::server::pool::{ModelPool, PoolConfig};
use lmwb::server::{router, ServerConfig, ServerState};
use lmwb::tui::loader::{FakeLoader, ModelRow};
use serde_json::{json, Value};
use server::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A registry of `names` (each `size` bytes as the pool counts them; a name starting
/// with `broken` fails to load); loads are counted per name.
struct Registry {
    pool: ModelPool,
    app: axum::Router,
    loads: Arc<Mutex<HashMap<String, usize>>>,
    delay: Duration,
}

fn registry(names: &[&str], size: u64, config: PoolConfig, delay: Duration) -> Registry {
    let rows: Vec<ModelRow> = names
        .iter()
        .map(|n| {
            let mut row = ModelRow::fake(n, "Q8_0", 1_000_000, 2048);
            if let Ok(info) = row.info.as_mut() {
                info.size_bytes = size;
            }
            row
        })
        .collect();
    let loads: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let counted = loads.clone();
    let loader = FakeLoader {
        rows,
        make: Box::new(move |row: &ModelRow| {
            *counted.lock().unwrap().entry(row.name.clone()).or_default() += 1;
            if row.name.starts_with("broken") {
                return Err(format!(
                    "{}: not a GGUF file (bad magic)",
                    row.path.display()
                ));
            }
            // A load takes a moment, so concurrent first requests overlap.
            std::thread::sleep(Duration::from_millis(50));
            let fake =
                FakeClient::new(&row.name, vec![Script::text("hello there")]).with_delay(delay);
            Ok(Arc::new(fake) as Arc<dyn GenerationClient>)
        }),
    };
    let pool = ModelPool::new(Some(Arc::new(loader)), config);
    let state = Arc::new(ServerState::with_pool(
        &ServerConfig::default(),
        pool.clone(),
    ));
    Registry {
        pool,
        app: router(state),
        loads,
        delay,
    }
}

/// Send `req` and hand back the response before reading its body (a stream keeps going
/// until it is dropped).
async fn send_streaming(
    app: &axum::Router,
    req: axum::http::Request<axum::body::Body>,
) -> axum::response::Response {
    use tower::ServiceExt;
    app.clone().oneshot(req).await.unwrap()
}

fn limits(max_loaded: usize, budget: Option<u64>, ttl: Keep) -> PoolConfig {
    PoolConfig {
        max_loaded,
        memory_budget: budget,
        ttl,
    }
}

const LONG: Keep = Keep::For(Duration::from_secs(600));

/// The `key` of every object in the JSON list `list`.
fn names(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|m| m[key].as_str().unwrap().to_string())
        .collect()
}

fn chat_for(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "Hi"}]})
}

impl Registry {
    async fn chat(&self, model: &str) -> Reply {
        send(&self.app, post("/v1/chat/completions", &chat_for(model))).await
    }

    async fn ps(&self) -> Vec<String> {
        let r = send(&self.app, get("/api/ps")).await;
        assert_eq!(r.status, StatusCode::OK);
        names(&r.json()["models"], "name")
    }

    fn loads(&self, name: &str) -> usize {
        self.loads.lock().unwrap().get(name).copied().unwrap_or(0)
    }
}

#[tokio::test]
async fn a_model_loads_on_its_first_request_and_stays_for_the_next() {
    let r = registry(
        &["alpha", "beta"],
        1000,
        limits(3, None, LONG),
        Duration::ZERO,
    );
    let listed = send(&r.app, get("/v1/models")).await.json();
    let ids = names(&listed["data"], "id");
    assert_eq!(
        ids,
        ["alpha", "beta"],
        "everything servable is listed before it loads"
    );
    assert!(r.ps().await.is_empty(), "nothing is loaded yet");

    let first = r.chat("alpha").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.json());
    assert_eq!(
        first.json()["choices"][0]["message"]["content"],
        "hello there"
    );
    let ms: f64 = first.headers["x-lmwb-load-ms"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        ms >= 40.0,
        "the load took the loader's 50 ms, reported {ms}"
    );
    let second = r.chat("alpha").await;
    assert_eq!(second.status, StatusCode::OK);
    assert!(
        second.headers.get("x-lmwb-load-ms").is_none(),
        "no load the second time"
    );
    assert_eq!(r.loads("alpha"), 1);
    assert_eq!(r.ps().await, ["alpha"]);

    // Ollama's spelling with a tag reaches the same model; the load time is in its stats.
    let body = json!({"model": "beta:latest", "prompt": "Hi", "stream": false});
    let o = send(&r.app, post("/api/generate", &body)).await;
    assert_eq!(o.status, StatusCode::OK, "{}", o.json());
    assert!(o.json()["load_duration"].as_u64().unwrap() >= 40_000_000);
    let again = send(&r.app, post("/api/generate", &body)).await.json();
    assert_eq!(again["load_duration"], 0);
    assert_eq!(r.ps().await, ["alpha", "beta"]);
}

#[tokio::test]
async fn an_unknown_model_is_404_naming_what_can_be_served() {
    let r = registry(&["alpha"], 1000, limits(3, None, LONG), Duration::ZERO);
    let e = r.chat("gamma").await;
    let err = assert_error(&e, StatusCode::NOT_FOUND);
    assert_eq!(err["code"], "model_not_found");
    assert!(err["message"].as_str().unwrap().contains("alpha"), "{err}");
    assert_eq!(r.loads("gamma"), 0);
}

#[tokio::test]
async fn the_count_limit_evicts_the_least_recently_used_idle_model() {
    let r = registry(
        &["a", "b", "c"],
        1000,
        limits(2, None, LONG),
        Duration::ZERO,
    );
    for m in ["a", "b", "a", "c"] {
        assert_eq!(r.chat(m).await.status, StatusCode::OK);
    }
    // `b` was used least recently when `c` needed room.
    let mut loaded = r.ps().await;
    loaded.sort();
    assert_eq!(loaded, ["a", "c"]);
    assert_eq!(r.chat("b").await.status, StatusCode::OK);
    assert_eq!(
        r.loads("b"),
        2,
        "an evicted model loads again when asked for"
    );
}

#[tokio::test]
async fn the_memory_budget_evicts_and_refuses_a_model_larger_than_itself() {
    let r = registry(
        &["a", "b"],
        600,
        limits(5, Some(1000), LONG),
        Duration::ZERO,
    );
    assert_eq!(r.chat("a").await.status, StatusCode::OK);
    assert_eq!(r.chat("b").await.status, StatusCode::OK);
    assert_eq!(r.ps().await, ["b"], "600 + 600 bytes do not fit in 1000");

    let small = registry(&["big"], 5000, limits(5, Some(1000), LONG), Duration::ZERO);
    let e = small.chat("big").await;
    let err = assert_error(&e, StatusCode::BAD_REQUEST);
    assert_eq!(err["code"], "model_too_large");
    assert!(err["message"].as_str().unwrap().contains("--memory-budget"));
    assert_eq!(small.loads("big"), 0, "refused before loading");
}

#[tokio::test]
async fn a_model_answering_a_request_is_never_evicted() {
    let r = registry(
        &["a", "b"],
        1000,
        limits(1, None, LONG),
        Duration::from_millis(100),
    );
    let mut body = chat_for("a");
    body["stream"] = json!(true);
    // The stream's response is returned once the first event arrives; its body (and the
    // generation) runs on while we hold it.
    let streaming = send_streaming(&r.app, post("/v1/chat/completions", &body)).await;
    assert_eq!(streaming.status(), StatusCode::OK);
    let e = r.chat("b").await;
    let err = assert_error(&e, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(err["code"], "models_busy");
    assert!(e.headers.get("retry-after").is_some());
    assert_eq!(r.ps().await, ["a"]);
    drop(streaming); // the client goes away: its generation is cancelled, `a` is idle
    for _ in 0..50 {
        if r.chat("b").await.status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(r.ps().await, ["b"]);
    let _ = r.delay;
}

#[tokio::test]
async fn idle_models_unload_after_the_ttl_and_keep_alive_overrides_it() {
    let short = Keep::For(Duration::from_secs(1));
    let r = registry(
        &["a", "b", "c"],
        1000,
        limits(5, None, short),
        Duration::ZERO,
    );
    assert_eq!(r.chat("a").await.status, StatusCode::OK);
    // Ollama's keep_alive: -1 keeps `b` for good, 0 unloads `c` as soon as it answered.
    for (m, keep) in [("b", json!(-1)), ("c", json!(0))] {
        let body = json!({"model": m, "prompt": "Hi", "stream": false, "keep_alive": keep});
        assert_eq!(
            send(&r.app, post("/api/generate", &body)).await.status,
            StatusCode::OK
        );
    }
    let ps = send(&r.app, get("/api/ps")).await.json();
    assert_eq!(names(&ps["models"], "name"), ["a", "b"], "`c` went at once");
    let year = |m: &Value| {
        m["expires_at"].as_str().unwrap()[..4]
            .parse::<u32>()
            .unwrap()
    };
    assert!(
        year(&ps["models"][1]) > 2200,
        "kept for good: {}",
        ps["models"][1]
    );
    assert!(year(&ps["models"][0]) < 2200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    r.pool.reap();
    assert_eq!(r.ps().await, ["b"], "`a` idled past its 1 s");

    // LM Studio's `ttl` on an OpenAI request does the same.
    let mut body = chat_for("a");
    body["ttl"] = json!(-1);
    assert_eq!(
        send(&r.app, post("/v1/chat/completions", &body))
            .await
            .status,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    r.pool.reap();
    let mut loaded = r.ps().await;
    loaded.sort();
    assert_eq!(loaded, ["a", "b"]);
    body["ttl"] = json!("soon");
    let e = send(&r.app, post("/v1/chat/completions", &body)).await;
    assert_eq!(assert_error(&e, StatusCode::BAD_REQUEST)["param"], "ttl");
    let bad = json!({"model": "a", "prompt": "Hi", "keep_alive": "5 minutes"});
    let e = send(&r.app, post("/api/generate", &bad)).await;
    assert_eq!(e.status, StatusCode::BAD_REQUEST);
    assert!(e.json()["error"].as_str().unwrap().contains("keep_alive"));
}

#[tokio::test]
async fn an_empty_ollama_prompt_loads_and_keep_alive_zero_unloads() {
    let r = registry(&["a"], 1000, limits(3, None, LONG), Duration::ZERO);
    let load = send(&r.app, post("/api/generate", &json!({"model": "a"}))).await;
    assert_eq!(load.status, StatusCode::OK, "{}", load.json());
    assert_eq!(load.json()["done_reason"], "load");
    assert_eq!(r.ps().await, ["a"]);
    let body = json!({"model": "a", "messages": [], "keep_alive": 0});
    let unload = send(&r.app, post("/api/chat", &body)).await.json();
    assert_eq!(unload["done_reason"], "unload");
    assert!(r.ps().await.is_empty());
}

#[tokio::test]
async fn concurrent_first_requests_load_the_model_once() {
    let r = registry(&["a"], 1000, limits(3, None, LONG), Duration::ZERO);
    let replies = futures_util::future::join_all((0..6).map(|_| r.chat("a"))).await;
    for reply in replies {
        assert_eq!(reply.status, StatusCode::OK);
    }
    assert_eq!(r.loads("a"), 1);
}

#[tokio::test]
async fn a_model_that_fails_to_load_answers_in_shape_and_health_says_degraded() {
    let r = registry(
        &["broken", "good"],
        1000,
        limits(3, None, LONG),
        Duration::ZERO,
    );
    let e = r.chat("broken").await;
    let err = assert_error(&e, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(err["code"], "model_load_failed");
    assert!(
        err["message"].as_str().unwrap().contains("bad magic"),
        "{err}"
    );
    let o = send(&r.app, post("/api/chat", &chat_for("broken"))).await;
    assert!(o.json()["error"].as_str().unwrap().contains("bad magic"));
    let h = send(&r.app, get("/health")).await;
    assert_eq!(h.status, StatusCode::OK);
    assert_eq!(h.json()["status"], "degraded");
    assert!(h.json()["last_load_error"]
        .as_str()
        .unwrap()
        .contains("broken"));
    assert_eq!(r.chat("good").await.status, StatusCode::OK);
    assert_eq!(send(&r.app, get("/health")).await.json()["status"], "ready");
}
