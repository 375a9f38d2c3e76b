//! The request log: one [`RequestEntry`] per HTTP request, written when its response body
//! has been sent to its end (or dropped, when the client hung up), so a stream's duration
//! is the whole stream's. The `track` middleware fills it in; a generation's model and
//! token counts reach it through a per-request [`Trace`] (a task-local the handler's
//! [`Running`](super::queue::Running) picks up). The log keeps the last [`CAPACITY`]
//! entries, tells subscribers (the workbench's Server tab) of each new one, and writes
//! each to the log file as one `info` line.

use crate::engine::Stats;
use axum::body::{Body, Bytes, HttpBody};
use http_body::{Frame, SizeHint};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::Instant;

/// Entries kept; older ones go.
pub const CAPACITY: usize = 1000;

/// One request, as it ended.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestEntry {
    /// When it arrived, UTC `HH:MM:SS`.
    pub time: String,
    pub method: String,
    pub path: String,
    /// The model that answered (its served id), when the request reached one.
    pub model: Option<String>,
    pub status: u16,
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    /// From the request's arrival to the end of its response body.
    pub duration_ms: f64,
    /// The peer (absent when the app is driven without a socket).
    pub client: Option<SocketAddr>,
}

/// Told of each entry as it is recorded (on the server's threads: keep it quick).
pub type Subscriber = Box<dyn Fn(&RequestEntry) + Send + Sync>;

/// The last [`CAPACITY`] requests, and who wants to hear of the next ones.
#[derive(Default)]
pub struct RequestLog {
    ring: Mutex<(VecDeque<RequestEntry>, u64)>,
    subscribers: RwLock<Vec<Subscriber>>,
}

impl RequestLog {
    /// Keep `entry`, log it, and pass it to every subscriber.
    pub fn record(&self, entry: RequestEntry) {
        tracing::info!(
            method = %entry.method,
            path = %entry.path,
            status = entry.status,
            model = entry.model.as_deref().unwrap_or("-"),
            prompt_tokens = entry.prompt_tokens,
            generated_tokens = entry.generated_tokens,
            duration_ms = format_args!("{:.1}", entry.duration_ms),
            client = %entry.client.map_or("-".to_string(), |c| c.to_string()),
            "request"
        );
        {
            let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
            if ring.0.len() == CAPACITY {
                ring.0.pop_front();
            }
            ring.0.push_back(entry.clone());
            ring.1 += 1;
        }
        for s in self
            .subscribers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            s(&entry);
        }
    }

    /// The last `n` entries kept, oldest first.
    pub fn recent(&self, n: usize) -> Vec<RequestEntry> {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let skip = ring.0.len().saturating_sub(n);
        ring.0.iter().skip(skip).cloned().collect()
    }

    /// Requests recorded since the server started (kept or not).
    pub fn total(&self) -> u64 {
        self.ring.lock().unwrap_or_else(|e| e.into_inner()).1
    }

    /// Call `f` with every entry recorded from now on.
    pub fn subscribe(&self, f: Subscriber) {
        self.subscribers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(f);
    }
}

/// What a request's handlers learn about its generation: the model and the token counts,
/// counted as the response's `usage` counts them (the prompt once, every choice's tokens).
#[derive(Default, Debug)]
pub struct Trace(Mutex<Traced>);

/// A [`Trace`]'s contents.
#[derive(Clone, Default, Debug, PartialEq)]
pub struct Traced {
    pub model: Option<String>,
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
}

tokio::task_local! {
    static TRACE: Arc<Trace>;
}

impl Trace {
    /// The trace of the request this task serves (`None` outside `track`'s scope, e.g. in a
    /// response body's stream: pass the trace on from there).
    pub fn current() -> Option<Arc<Trace>> {
        TRACE.try_with(Arc::clone).ok()
    }

    /// Run `f` with `trace` as the current one.
    pub async fn scope<F: std::future::Future>(trace: Arc<Trace>, f: F) -> F::Output {
        TRACE.scope(trace, f).await
    }

    fn with(&self, f: impl FnOnce(&mut Traced)) {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// The model that answers (the served id).
    pub fn set_model(&self, id: &str) {
        self.with(|t| t.model = Some(id.to_string()));
    }

    /// Name the model unless one is named already.
    pub fn default_model(&self, id: &str) {
        self.with(|t| {
            t.model.get_or_insert_with(|| id.to_string());
        });
    }

    /// A generation ended: its prompt (the same for every choice) and its tokens.
    pub fn add(&self, stats: &Stats) {
        self.with(|t| {
            t.prompt_tokens = stats.prompt_tokens;
            t.generated_tokens += stats.generated_tokens;
        });
    }

    /// Tokens read by an embedding request.
    pub fn add_prompt_tokens(&self, n: usize) {
        self.with(|t| t.prompt_tokens += n);
    }

    pub fn get(&self) -> Traced {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Name the current request's model (no-op outside a request).
pub fn note_model(id: &str) {
    if let Some(t) = Trace::current() {
        t.set_model(id);
    }
}

/// The current request read `n` prompt tokens (embeddings).
pub fn note_prompt_tokens(n: usize) {
    if let Some(t) = Trace::current() {
        t.add_prompt_tokens(n);
    }
}

/// What `track` knows before the body is sent.
pub(super) struct Pending {
    pub state: Arc<super::ServerState>,
    pub time: String,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub client: Option<SocketAddr>,
    pub start: Instant,
    pub trace: Arc<Trace>,
}

impl Pending {
    fn finish(self) {
        let t = self.trace.get();
        self.state.requests.record(RequestEntry {
            time: self.time,
            method: self.method,
            path: self.path,
            model: t.model,
            status: self.status,
            prompt_tokens: t.prompt_tokens,
            generated_tokens: t.generated_tokens,
            duration_ms: self.start.elapsed().as_secs_f64() * 1000.0,
            client: self.client,
        });
    }
}

/// A response body that records its request once it has been sent to its end, or dropped.
/// Everything else is the inner body's (so Content-Length and streaming are unchanged).
pub(super) struct Tracked {
    inner: Body,
    pending: Option<Pending>,
}

impl Tracked {
    pub fn wrap(inner: Body, pending: Pending) -> Body {
        Body::new(Tracked {
            inner,
            pending: Some(pending),
        })
    }

    fn finish(&mut self) {
        if let Some(p) = self.pending.take() {
            p.finish();
        }
    }
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
            self.finish();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Now, UTC, as `HH:MM:SS`.
pub fn clock() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: usize) -> RequestEntry {
        RequestEntry {
            time: "00:00:00".into(),
            method: "GET".into(),
            path: format!("/{i}"),
            model: None,
            status: 200,
            prompt_tokens: 0,
            generated_tokens: 0,
            duration_ms: 1.0,
            client: None,
        }
    }

    #[test]
    fn the_ring_keeps_the_last_thousand_and_counts_all() {
        let log = RequestLog::default();
        for i in 0..CAPACITY + 5 {
            log.record(entry(i));
        }
        assert_eq!(log.total(), CAPACITY as u64 + 5);
        assert_eq!(log.recent(usize::MAX).len(), CAPACITY);
        let last = log.recent(2);
        assert_eq!(last[0].path, format!("/{}", CAPACITY + 3));
        assert_eq!(last[1].path, format!("/{}", CAPACITY + 4));
    }

    #[test]
    fn subscribers_hear_of_each_entry() {
        let log = RequestLog::default();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        log.subscribe(Box::new(move |e| s.lock().unwrap().push(e.path.clone())));
        log.record(entry(1));
        log.record(entry(2));
        assert_eq!(*seen.lock().unwrap(), vec!["/1", "/2"]);
    }

    #[test]
    fn a_trace_counts_the_prompt_once_and_every_choice() {
        let t = Trace::default();
        t.default_model("file-name");
        t.set_model("served");
        t.default_model("other");
        let stats = Stats {
            prompt_tokens: 7,
            cached_tokens: 0,
            generated_tokens: 3,
            ttft_ms: 1.0,
            prefill_ms: 1.0,
            prefill_tok_s: 1.0,
            decode_ms: 1.0,
            decode_tok_s: 1.0,
            total_ms: 2.0,
            finish_reason: crate::engine::FinishReason::Stop,
            stop_string: None,
            kv_used: 10,
            kv_peak: 10,
            max_kv_size: None,
            seed: 0,
        };
        t.add(&stats);
        t.add(&stats);
        assert_eq!(
            t.get(),
            Traced {
                model: Some("served".into()),
                prompt_tokens: 7,
                generated_tokens: 6
            }
        );
    }
}
