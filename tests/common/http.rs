//! A minimal HTTP/1.1 client over `std::net` for the server's socket tests.
//!
//! Include it with `#[path = "common/http.rs"] mod http;`.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Connect and send one request (`Connection: close`); the caller reads the answer.
pub fn send(addr: &str, method: &str, path: &str, body: Option<&Value>) -> TcpStream {
    send_with(addr, method, path, body, &[])
}

/// [`send`] with extra headers.
pub fn send_with(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect to the server");
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
        body.len()
    )
    .unwrap();
    s
}

/// Split a whole response into its status and (de-chunked) body.
pub fn parse(raw: &str) -> (u16, String) {
    let (head, rest) = raw.split_once("\r\n\r\n").expect("a full response");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    (
        status,
        if chunked {
            dechunk(rest)
        } else {
            rest.to_string()
        },
    )
}

/// One request to the end: its status and body.
pub fn request(addr: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, String) {
    request_with(addr, method, path, body, &[])
}

/// [`request`] with extra headers.
pub fn request_with(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let mut s = send_with(addr, method, path, body, headers);
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    parse(&raw)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

/// `server::start` on a free port, serving `fake` as the model `"fake"`; the handle and
/// its `127.0.0.1:PORT`.
pub fn serve_fake(
    fake: std::sync::Arc<lmwb::client::fake::FakeClient>,
    config: lmwb::server::ServerConfig,
) -> (lmwb::server::ServerHandle, String) {
    let model = lmwb::server::ServedModel {
        id: "fake".into(),
        client: fake,
        created: 0,
        info: None,
    };
    let config = lmwb::server::ServerConfig { port: 0, ..config };
    let handle = lmwb::server::start(config, vec![model]).expect("the server starts");
    let addr = handle.addr().to_string();
    (handle, addr)
}

/// A request-log entry counts the tokens the response's `usage` reports.
pub fn assert_usage(e: &lmwb::server::request_log::RequestEntry, usage: &Value) {
    assert_eq!(
        (e.prompt_tokens as u64, e.generated_tokens as u64),
        (
            usage["prompt_tokens"].as_u64().unwrap(),
            usage["completion_tokens"].as_u64().unwrap()
        ),
        "{e:?} against {usage}"
    );
}
