//! Who may talk to the server: the optional API key (`Authorization: Bearer KEY` or
//! `x-api-key: KEY`) on every route but `/health`, and, on a loopback address, only
//! loopback Host names (a web page cannot reach it through DNS rebinding).

use super::error::ApiError;
use super::ServerState;
use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;

/// The key a request presents, if any.
fn presented(req: &Request) -> Option<&str> {
    let h = req.headers();
    h.get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| h.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim)
}

/// Constant-time comparison, so the key cannot be guessed byte by byte from timings.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

pub async fn require_key(State(s): State<Arc<ServerState>>, req: Request, next: Next) -> Response {
    let open = req.uri().path() == "/health" || req.method() == Method::OPTIONS;
    match &s.api_key {
        Some(key) if !open && !presented(&req).is_some_and(|p| same(p, key)) => {
            super::shaped(req.uri().path(), ApiError::unauthorized())
        }
        _ => next.run(req).await,
    }
}

/// Whether `host` (a Host header, port included or not) names this machine's loopback.
pub fn is_loopback_host(host: &str) -> bool {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return ip.is_loopback();
    }
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub async fn loopback_host(
    State(s): State<Arc<ServerState>>,
    req: Request,
    next: Next,
) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .map(|h| h.to_str().unwrap_or("?").to_string());
    match host {
        Some(h) if s.loopback && !is_loopback_host(&h) => {
            super::shaped(req.uri().path(), ApiError::forbidden_host(&h))
        }
        _ => next.run(req).await,
    }
}
