//! Prometheus counters: requests by route and status, tokens, requests in flight.

use super::queue::Limiter;
use crate::engine::Stats;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    prompt_tokens: AtomicU64,
    generated_tokens: AtomicU64,
}

/// The route label of a path: the route's pattern, so ids do not multiply the series.
pub fn route_label(path: &str) -> &'static str {
    const ROUTES: [&str; 6] = [
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/models",
        "/health",
        "/metrics",
        "/v1/embeddings",
    ];
    if let Some(r) = ROUTES.iter().find(|r| **r == path) {
        return r;
    }
    if path.starts_with("/v1/models/") {
        "/v1/models/{id}"
    } else {
        "other"
    }
}

impl Metrics {
    pub fn record(&self, route: &'static str, status: u16) {
        let mut m = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry((route, status)).or_default() += 1;
    }

    pub fn add_tokens(&self, s: &Stats) {
        self.prompt_tokens
            .fetch_add(s.prompt_tokens as u64, Ordering::Relaxed);
        self.generated_tokens
            .fetch_add(s.generated_tokens as u64, Ordering::Relaxed);
    }

    pub fn render(&self, limiter: &Limiter) -> String {
        let mut out = String::new();
        out.push_str("# HELP lmwb_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE lmwb_requests_total counter\n");
        let m = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        for ((route, status), n) in m.iter() {
            let _ = writeln!(
                out,
                "lmwb_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let counters = [
            (
                "lmwb_prompt_tokens_total",
                "Prompt tokens processed.",
                &self.prompt_tokens,
            ),
            (
                "lmwb_generated_tokens_total",
                "Tokens generated.",
                &self.generated_tokens,
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
        }
        let gauges = [
            (
                "lmwb_requests_in_flight",
                "Generation requests running or queued.",
                limiter.in_flight(),
            ),
            (
                "lmwb_queue_depth",
                "Generation requests waiting for the engine.",
                limiter.queued(),
            ),
        ];
        for (name, help, v) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        out
    }
}
