//! A scripted HTTP server standing in for a remote backend (an OpenAI-compatible server or
//! Ollama, or one that misbehaves): each request is answered by a handler returning the
//! steps to write. It records every request, and whether a client hung up mid-answer.
//!
//! Include it with `#[path = "common/fake_backend.rs"] mod fake_backend;`.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request as the fake saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Seen {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What to write back.
pub enum Step {
    Write(Vec<u8>),
    Sleep(Duration),
}

pub type Handler = dyn Fn(&Seen) -> Vec<Step> + Send + Sync;

pub struct FakeBackend {
    pub addr: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// Answers cut short because the client closed the connection.
    pub hangups: Arc<AtomicUsize>,
}

impl FakeBackend {
    pub fn start(handler: impl Fn(&Seen) -> Vec<Step> + Send + Sync + 'static) -> FakeBackend {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let hangups = Arc::new(AtomicUsize::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        let (s, h) = (seen.clone(), hangups.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().map_while(Result::ok) {
                let (handler, s, h) = (handler.clone(), s.clone(), h.clone());
                std::thread::spawn(move || serve(conn, &*handler, &s, &h));
            }
        });
        FakeBackend {
            addr,
            seen,
            hangups,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn hangups(&self) -> usize {
        self.hangups.load(Ordering::SeqCst)
    }
}

fn serve(conn: TcpStream, handler: &Handler, seen: &Mutex<Vec<Seen>>, hangups: &AtomicUsize) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut writer = conn;
    // One request per connection: every answer closes it (`Connection: close`).
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let req = Seen {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    seen.lock().unwrap().push(req.clone());
    for step in handler(&req) {
        match step {
            Step::Write(b) => {
                if writer.write_all(&b).and_then(|_| writer.flush()).is_err() {
                    hangups.fetch_add(1, Ordering::SeqCst);
                    return;
                }
            }
            Step::Sleep(d) => std::thread::sleep(d),
        }
    }
}

/// A whole response with a body.
pub fn response(status: u16, content_type: &str, body: &str) -> Vec<Step> {
    vec![Step::Write(
        format!(
            "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )]
}

pub fn json(status: u16, v: &Value) -> Vec<Step> {
    response(status, "application/json", &v.to_string())
}

/// The head of a streamed response (no length: the body ends when the connection closes).
pub fn stream_head(content_type: &str) -> Step {
    Step::Write(
        format!("HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nConnection: close\r\n\r\n")
            .into_bytes(),
    )
}

/// One server-sent event.
pub fn sse(data: &str) -> Step {
    Step::Write(format!("data: {data}\n\n").into_bytes())
}

/// An OpenAI chat chunk with this delta.
pub fn chat_chunk(delta: Value, finish: Option<&str>) -> Step {
    sse(&serde_json::json!({
        "id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    })
    .to_string())
}

/// A complete OpenAI chat stream of `pieces`, with usage and `[DONE]`.
pub fn chat_stream(pieces: &[&str], prompt_tokens: usize) -> Vec<Step> {
    let mut steps = vec![stream_head("text/event-stream")];
    steps.push(chat_chunk(
        serde_json::json!({"role": "assistant", "content": ""}),
        None,
    ));
    for p in pieces {
        steps.push(chat_chunk(serde_json::json!({ "content": p }), None));
    }
    steps.push(chat_chunk(serde_json::json!({}), Some("stop")));
    steps.push(sse(&serde_json::json!({
        "id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m", "choices": [],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": pieces.len(),
                  "total_tokens": prompt_tokens + pieces.len()},
    })
    .to_string()));
    steps.push(sse("[DONE]"));
    steps
}

/// `/v1/models` listing these ids.
pub fn model_list(ids: &[&str]) -> Vec<Step> {
    let data: Vec<Value> = ids
        .iter()
        .map(|id| serde_json::json!({"id": id, "object": "model", "created": 0, "owned_by": "x", "context_length": 4096}))
        .collect();
    json(200, &serde_json::json!({"object": "list", "data": data}))
}

/// A fake OpenAI-compatible server with one model, `m`, answering every chat request with
/// `pieces`.
pub fn openai_server(pieces: &'static [&'static str]) -> FakeBackend {
    FakeBackend::start(move |r| match r.path.as_str() {
        "/v1/models" => model_list(&["m"]),
        "/v1/chat/completions" | "/v1/completions" => chat_stream(pieces, 7),
        _ => json(404, &serde_json::json!({"error": {"message": "no route"}})),
    })
}
