//! The optional API key: `Authorization: Bearer KEY` (or `x-api-key: KEY`) on every route
//! but `/health`.

use super::error::ApiError;
use super::ServerState;
use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
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
            ApiError::unauthorized().into_response()
        }
        _ => next.run(req).await,
    }
}
