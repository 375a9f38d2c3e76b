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
    /// Time to first token as the engine measured it.
    pub ttft: Histogram,
    /// Gaps between tokens as the server received them.
    pub inter_token: Histogram,
}

/// Seconds, in Prometheus' cumulative buckets.
pub struct Histogram {
    bounds: &'static [f64],
    /// Count per bucket (the last one is +Inf), sum, count.
    state: Mutex<(Vec<u64>, f64, u64)>,
}

const BOUNDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            bounds: BOUNDS,
            state: Mutex::new((vec![0; BOUNDS.len() + 1], 0.0, 0)),
        }
    }
}

impl Histogram {
    pub fn observe(&self, secs: f64) {
        let i = self
            .bounds
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(self.bounds.len());
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.0[i] += 1;
        st.1 += secs;
        st.2 += 1;
    }

    /// The sum of the observations and their count.
    pub fn sum_count(&self) -> (f64, u64) {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        (st.1, st.2)
    }

    /// The mean observation, `None` before the first.
    pub fn mean(&self) -> Option<f64> {
        let (sum, n) = self.sum_count();
        (n > 0).then(|| sum / n as f64)
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, n) in st.0.iter().enumerate() {
            cumulative += n;
            let le = self
                .bounds
                .get(i)
                .map_or("+Inf".to_string(), f64::to_string);
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_sum {}\n{name}_count {}", st.1, st.2);
    }
}

/// What `/metrics` says, typed, summed over routes (the workbench's Server tab shows it).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Highlights {
    /// `lmwb_requests_total`, every route and status.
    pub requests: u64,
    /// Of those, the ones answered with a status of 400 or more.
    pub errors: u64,
    pub prompt_tokens: u64,
    pub generated_tokens: u64,
    /// Generation requests running or queued, and those queued.
    pub in_flight: usize,
    pub queued: usize,
    /// `lmwb_ttft_seconds`: its mean (`None` before the first generation) and count.
    pub ttft_mean_s: Option<f64>,
    pub ttft_count: u64,
    /// `lmwb_inter_token_seconds`' mean.
    pub itl_mean_s: Option<f64>,
}

/// The route label of a path: the route's pattern, so ids do not multiply the series.
pub fn route_label(path: &str) -> &'static str {
    const ROUTES: [&str; 15] = [
        "/api/chat",
        "/api/generate",
        "/api/tags",
        "/api/show",
        "/api/ps",
        "/api/version",
        "/v1/chat/completions",
        "/v1/messages",
        "/v1/completions",
        "/v1/models",
        "/health",
        "/metrics",
        "/v1/embeddings",
        "/api/embed",
        "/api/embeddings",
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

    /// Tokens read by an embedding request.
    pub fn add_prompt_tokens(&self, n: usize) {
        self.prompt_tokens.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// The counters [`Metrics::render`] writes, as numbers.
    pub fn highlights(&self, limiter: &Limiter) -> Highlights {
        let (requests, errors) = {
            let m = self.requests.lock().unwrap_or_else(|e| e.into_inner());
            m.iter().fold((0, 0), |(all, bad), ((_, status), n)| {
                (all + n, bad + if *status >= 400 { *n } else { 0 })
            })
        };
        Highlights {
            requests,
            errors,
            prompt_tokens: self.prompt_tokens.load(Ordering::Relaxed),
            generated_tokens: self.generated_tokens.load(Ordering::Relaxed),
            in_flight: limiter.in_flight(),
            queued: limiter.queued(),
            ttft_mean_s: self.ttft.mean(),
            ttft_count: self.ttft.sum_count().1,
            itl_mean_s: self.inter_token.mean(),
        }
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
        self.ttft
            .render(&mut out, "lmwb_ttft_seconds", "Time to first token.");
        self.inter_token.render(
            &mut out,
            "lmwb_inter_token_seconds",
            "Time between two tokens of a generation.",
        );
        out
    }
}
