//! A limit on the generations running at once, a bounded queue behind it, and the bridge from the
//! engine's event channel to async code with a guard that cancels on drop.

use super::error::ApiError;
use super::metrics::Metrics;
use super::request_log::Trace;
use crate::client::GenerationClient;
use crate::engine::{CancelToken, Event, GenerateRequest};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

/// Admits `concurrency` requests at once and lets `queue` more wait; past that, 429.
pub struct Limiter {
    sem: Arc<Semaphore>,
    admitted: Arc<AtomicUsize>,
    concurrency: usize,
    queue: usize,
}

/// A request's place: it holds a permit while it runs; dropping it frees the place.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    _count: Admitted,
}

struct Admitted(Arc<AtomicUsize>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Limiter {
    pub fn new(concurrency: usize, queue: usize) -> Limiter {
        let concurrency = concurrency.max(1);
        Limiter {
            sem: Arc::new(Semaphore::new(concurrency)),
            admitted: Arc::new(AtomicUsize::new(0)),
            concurrency,
            queue,
        }
    }

    /// Wait for a permit, or fail at once with 429 when the queue is full.
    pub async fn admit(&self) -> Result<Slot, ApiError> {
        let before = self.admitted.fetch_add(1, Ordering::SeqCst);
        let count = Admitted(self.admitted.clone());
        if before >= self.concurrency + self.queue {
            return Err(ApiError::busy(self.concurrency, self.queue));
        }
        let permit = self
            .sem
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::server("the server is shutting down"))?;
        Ok(Slot {
            _permit: permit,
            _count: count,
        })
    }

    /// Requests running or waiting.
    pub fn in_flight(&self) -> usize {
        self.admitted.load(Ordering::SeqCst)
    }

    /// No more requests can wait: the next one gets 429.
    pub fn is_full(&self) -> bool {
        self.in_flight() >= self.concurrency + self.queue
    }

    /// Requests waiting for a permit.
    pub fn queued(&self) -> usize {
        let running = self.concurrency - self.sem.available_permits();
        self.in_flight().saturating_sub(running)
    }
}

/// A generation whose events arrive asynchronously; dropping it before its end cancels it
/// (a client that disconnects drops its response, and with it this). Its tokens and
/// timings go to the metrics.
pub struct Running {
    rx: mpsc::UnboundedReceiver<Event>,
    /// The client's hold on its model (on-demand loading), let go once the generation ends.
    hold: Option<Arc<dyn std::any::Any + Send + Sync>>,
    cancel: CancelToken,
    finished: bool,
    metrics: Arc<Metrics>,
    last_token: Option<Instant>,
    /// The request's log trace: the model and tokens go there too.
    trace: Option<Arc<Trace>>,
}

impl Running {
    /// Start `req` for the request being handled (its trace is this task's).
    pub fn start(
        client: &dyn GenerationClient,
        req: GenerateRequest,
        metrics: &Arc<Metrics>,
    ) -> Running {
        Running::traced(client, req, metrics, Trace::current())
    }

    /// Start `req` for the request `trace` logs (a response body's stream runs outside the
    /// handler's task scope, so it passes the trace on).
    pub fn traced(
        client: &dyn GenerationClient,
        req: GenerateRequest,
        metrics: &Arc<Metrics>,
        trace: Option<Arc<Trace>>,
    ) -> Running {
        if let Some(t) = &trace {
            t.default_model(client.model_name());
        }
        let generation = client.generate(req);
        let hold = client.hold();
        let (tx, rx) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("lmwb-server-events".into())
            .spawn(move || {
                while let Ok(ev) = generation.events.recv() {
                    if tx.send(ev).is_err() {
                        break;
                    }
                }
            })
            .expect("spawn a thread");
        Running {
            rx,
            hold,
            cancel: generation.cancel,
            finished: false,
            metrics: metrics.clone(),
            last_token: None,
            trace,
        }
    }

    /// The trace of the request this generation serves.
    pub fn trace(&self) -> Option<Arc<Trace>> {
        self.trace.clone()
    }

    /// The next event; `None` once the engine dropped its sender.
    pub async fn next(&mut self) -> Option<Event> {
        let ev = self.rx.recv().await;
        match &ev {
            Some(Event::Token { .. }) => {
                let now = Instant::now();
                if let Some(last) = self.last_token.replace(now) {
                    self.metrics.inter_token.observe((now - last).as_secs_f64());
                }
            }
            Some(Event::Done(stats)) => {
                self.finished = true;
                self.metrics.add_tokens(stats);
                if let Some(t) = &self.trace {
                    t.add(stats);
                }
                self.metrics.ttft.observe(stats.ttft_ms / 1000.0);
            }
            None | Some(Event::Error(_)) => self.finished = true,
            Some(Event::Started { .. } | Event::Text(_)) => {}
        }
        if self.finished {
            self.hold = None;
        }
        ev
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.finished {
            tracing::debug!("response dropped before the generation ended: cancelling");
            self.cancel.cancel();
        }
    }
}
