//! Benchmarks with the metrics people already know, written against [`GenerationClient`]
//! so `lmwb bench`, the TUI's Bench tab and remote backends share one runner.
//!
//! - [`standard`]: llama-bench's `pp N` / `tg N` (tokens/s, mean ± sample sd over
//!   repetitions, after a warmup), optionally on top of `d` cached tokens.
//! - [`latency`]: vLLM's benchmark — TTFT, TPOT, ITL and E2E latency (mean, p50, p90, p99).
//! - [`concurrency`]: N streams at once (continuous batching): aggregate and per-stream
//!   tok/s, and the speedup over one stream.
//! - [`long`]: one long generation per `--max-kv-size`, tok/s and RSS per block of tokens,
//!   and four PASS/FAIL checks against an unwindowed run measured beside it.
//!
//! Every time is taken here, on the client side, when an event arrives.

pub mod concurrency;
pub mod latency;
pub mod long;
pub mod plots;
pub mod provenance;
pub mod report;
pub mod session;
pub mod standard;
pub mod stats;

use crate::client::GenerationClient;
use crate::engine::{CancelToken, EngineError, Event, GenerateRequest, Prompt, Stats};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

/// Why a benchmark could not run.
#[derive(thiserror::Error, Debug)]
pub enum BenchError {
    #[error("{model}: {source}")]
    Engine {
        model: String,
        #[source]
        source: EngineError,
    },
    #[error("{model}: this backend takes no token-id prompts, which exact-length benchmarks need; benchmark a local model, or a backend with kind = \"openai\" (Ollama serves one at /v1)")]
    NoTokenPrompts { model: String },
    #[error("{model}: --max-kv-size {max} is larger than the model's context of {context} tokens; use at most {context}")]
    WindowTooLarge {
        model: String,
        max: usize,
        context: usize,
    },
    #[error("{model}: {what} needs {need} tokens but the model's context is {context}; use smaller sizes")]
    TooLong {
        model: String,
        what: String,
        need: usize,
        context: usize,
    },
    #[error("{model}: the backend reused {got} cached tokens where {want} were expected; the measurement would be wrong")]
    Cache {
        model: String,
        got: usize,
        want: usize,
    },
    #[error("{model}: the generation ended before its first token ({why})")]
    NoTokens { model: String, why: String },
    #[error("cannot write {path}: {why}")]
    Write { path: String, why: String },
    #[error("cannot draw {path}: {why}")]
    Plot { path: String, why: String },
    #[error("cannot create {path}: {why}")]
    CreateDir { path: String, why: String },
    /// Loading or connecting to a model failed (`why` names the model).
    #[error("{why}")]
    Open { model: String, why: String },
    #[error("no model to benchmark: choose at least one")]
    NoModels,
    /// The cancel token fired; nothing of the report was written.
    #[error("the benchmark was cancelled; no report was written")]
    Cancelled,
}

/// What to measure (the CLI fills it from flags; the TUI from its form).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchConfig {
    /// Run the llama-bench tests (`pp`/`tg`).
    pub standard: bool,
    /// Prompt sizes for `pp` (and latency's input length: the first one); 0 skips `pp`.
    pub prompt_tokens: Vec<usize>,
    /// Generation sizes for `tg` (and latency's output length: the first one); 0 skips `tg`.
    pub gen_tokens: Vec<usize>,
    /// Timed repetitions of each test, after one warmup.
    pub repetitions: usize,
    /// Cached tokens under each test (`pp512 @ d512`).
    pub depths: Vec<usize>,
    /// Latency mode: this many requests (`None`: not run).
    pub latency_requests: Option<usize>,
    /// Long mode: one run per window (`None` = no window); empty: not run.
    pub windows: Vec<Option<usize>>,
    /// Tokens each long run generates.
    pub long_gen_tokens: usize,
    /// Tokens per tok/s and RSS sample in long runs.
    pub block: usize,
    /// Prompt tokens before a long run.
    pub long_prompt_tokens: usize,
    /// Seeds the random prompt tokens (sampling is greedy).
    pub seed: u64,
    /// Concurrency mode: one run per number of streams; empty: not run.
    #[serde(default)]
    pub concurrency: Vec<usize>,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            standard: true,
            prompt_tokens: vec![512],
            gen_tokens: vec![128],
            repetitions: 5,
            depths: vec![0],
            latency_requests: None,
            windows: vec![],
            long_gen_tokens: 4096,
            block: 128,
            long_prompt_tokens: long::PROMPT_TOKENS,
            seed: 42,
            concurrency: vec![],
        }
    }
}

/// Where a benchmark is, for a progress line or a live view. Per model, in this order:
/// `Model`, then `Message`s around each step, `Test` per pp/tg test, `Latency`,
/// `Concurrency` per level, `Block`s and a `Long` per long run, and `Checks` last.
#[derive(Debug)]
pub enum Progress<'a> {
    /// A step starts or ends (one line for stderr).
    Message(String),
    /// A model is about to be loaded or connected to ([`session::BenchModel::name`]).
    Model(&'a str),
    /// A pp/tg test finished.
    Test(&'a standard::TestResult),
    /// The latency requests finished.
    Latency(&'a latency::LatencyResult),
    /// One level of concurrent streams finished.
    Concurrency(&'a concurrency::ConcurrencyResult),
    /// A long run finished a block.
    Block {
        window: Option<usize>,
        block: &'a long::Block,
    },
    /// A long run finished.
    Long(&'a long::LongRun),
    /// The PASS/FAIL checks of the model's long runs (empty without long runs).
    Checks(&'a [long::Check]),
}

/// Everything measured on one model.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelResults {
    pub model: provenance::ModelMeta,
    pub standard: Vec<standard::TestResult>,
    pub latency: Option<latency::LatencyResult>,
    /// Concurrent streams, one entry per level (absent in results written before it).
    #[serde(default)]
    pub concurrency: Vec<concurrency::ConcurrencyResult>,
    pub long: Vec<long::LongRun>,
    pub checks: Vec<long::Check>,
}

/// Run every mode the config asks for on one model; `cancel` stops it between steps and
/// mid-generation ([`BenchError::Cancelled`]).
pub fn run_model(
    client: &dyn GenerationClient,
    meta: provenance::ModelMeta,
    cfg: &BenchConfig,
    progress: &mut dyn FnMut(Progress),
    cancel: &CancelToken,
) -> Result<ModelResults, BenchError> {
    let mut ctx = Ctx::new(client, cfg.seed)?.cancellable(cancel.clone());
    long::validate(&ctx, cfg)?;
    let standard = if cfg.standard {
        standard::run(&mut ctx, cfg, progress)?
    } else {
        vec![]
    };
    let latency = match cfg.latency_requests {
        Some(r) => Some(latency::run(&mut ctx, cfg, r, progress)?),
        None => None,
    };
    let concurrency = concurrency::run(&mut ctx, cfg, progress)?;
    let long = long::run(&mut ctx, cfg, progress)?;
    let checks = long::checks(&long, ctx.context);
    progress(Progress::Checks(&checks));
    Ok(ModelResults {
        model: meta,
        standard,
        latency,
        concurrency,
        long,
        checks,
    })
}

/// One model's client with what the modes share: its limits and the prompt RNG.
pub struct Ctx<'a> {
    pub client: &'a dyn GenerationClient,
    pub name: String,
    pub vocab: usize,
    pub context: usize,
    /// Checked before every generation and while one runs.
    pub cancel: CancelToken,
    rng: StdRng,
    recent_firsts: Vec<u32>,
}

/// How often a running generation looks at the cancel token between events.
const CANCEL_POLL: Duration = Duration::from_millis(20);

/// Prompts whose first token a new random prompt avoids (more than the engine keeps idle
/// KV caches by default).
pub const RECENT_FIRSTS: usize = 32;

impl<'a> Ctx<'a> {
    pub fn new(client: &'a dyn GenerationClient, seed: u64) -> Result<Ctx<'a>, BenchError> {
        let name = client.model_name().to_string();
        let vocab = client
            .vocab_size()
            .ok_or_else(|| BenchError::NoTokenPrompts {
                model: name.clone(),
            })?;
        Ok(Ctx {
            client,
            vocab,
            context: client.context_length().unwrap_or(usize::MAX),
            cancel: CancelToken::default(),
            rng: StdRng::seed_from_u64(seed),
            recent_firsts: Vec::new(),
            name,
        })
    }

    /// Stop with [`BenchError::Cancelled`] when `cancel` fires.
    pub fn cancellable(mut self, cancel: CancelToken) -> Ctx<'a> {
        self.cancel = cancel;
        self
    }

    /// [`BenchError::Cancelled`] once the cancel token fired.
    pub fn check_cancel(&self) -> Result<(), BenchError> {
        if self.cancel.is_cancelled() {
            Err(BenchError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// `n` random token ids (as llama-bench's prompts), the first one unlike `avoid` and
    /// unlike the first token of the last [`RECENT_FIRSTS`] prompts made here, so nothing
    /// of an earlier prompt is reused from the engine's idle KV caches by accident.
    pub fn random_tokens(&mut self, n: usize, avoid: Option<u32>) -> Vec<u32> {
        let vocab = self.vocab.max(2) as u32;
        let mut v: Vec<u32> = (0..n).map(|_| self.rng.random_range(0..vocab)).collect();
        if let Some(first) = v.first_mut() {
            let taken = |t: u32| avoid == Some(t) || self.recent_firsts.contains(&t);
            // At most RECENT_FIRSTS + 1 values are taken; a tiny vocabulary may have no other.
            for _ in 0..vocab.min(RECENT_FIRSTS as u32 + 2) {
                if !taken(*first) {
                    break;
                }
                *first = (*first + 1) % vocab;
            }
            if self.recent_firsts.len() == RECENT_FIRSTS {
                self.recent_firsts.remove(0);
            }
            self.recent_firsts.push(*first);
        }
        v
    }

    pub fn engine_err(&self, source: EngineError) -> BenchError {
        BenchError::Engine {
            model: self.name.clone(),
            source,
        }
    }

    /// Fail unless `need` tokens fit the context.
    pub fn fits(&self, what: impl Into<String>, need: usize) -> Result<(), BenchError> {
        if need >= self.context {
            return Err(BenchError::TooLong {
                model: self.name.clone(),
                what: what.into(),
                need,
                context: self.context,
            });
        }
        Ok(())
    }

    /// Send `tokens` and time every event as it arrives. A cancel (checked before sending
    /// and between events) cancels the generation and waits for its end.
    pub fn timed(
        &self,
        tokens: Vec<u32>,
        max_tokens: usize,
        max_kv_size: Option<usize>,
        on_token: &mut dyn FnMut(usize, f64),
    ) -> Result<Timed, BenchError> {
        let mut req = GenerateRequest::new(Prompt::Tokens(tokens));
        req.sampling = crate::engine::sampler::SamplingParams::greedy();
        req.max_tokens = Some(max_tokens);
        req.max_kv_size = max_kv_size;
        req.ignore_eos = true;
        self.check_cancel()?;
        let t0 = Instant::now();
        let gen = self.client.generate(req);
        let mut t = Timed {
            cached_tokens: 0,
            token_ms: Vec::with_capacity(max_tokens),
            done_ms: 0.0,
            stats: None,
        };
        loop {
            let ev = match gen.events.recv_timeout(CANCEL_POLL) {
                Ok(ev) => ev,
                Err(RecvTimeoutError::Timeout) => {
                    self.stop_if_cancelled(&gen)?;
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let now = t0.elapsed().as_secs_f64() * 1000.0;
            match ev {
                Event::Started { cached_tokens, .. } => t.cached_tokens = cached_tokens,
                Event::Token { .. } => {
                    t.token_ms.push(now);
                    on_token(t.token_ms.len(), now);
                }
                Event::Text(_) => {}
                Event::Done(stats) => {
                    t.done_ms = now;
                    t.stats = Some(stats);
                    break;
                }
                Event::Error(e) => return Err(self.engine_err(e)),
            }
            self.stop_if_cancelled(&gen)?;
        }
        let Some(stats) = &t.stats else {
            return Err(self.engine_err(EngineError::Gone));
        };
        if t.token_ms.is_empty() {
            return Err(BenchError::NoTokens {
                model: self.name.clone(),
                why: format!("finish reason {}", stats.finish_reason.as_str()),
            });
        }
        Ok(t)
    }

    /// When the cancel token fired: cancel `gen`, wait for its end, and say so.
    fn stop_if_cancelled(&self, gen: &crate::engine::Generation) -> Result<(), BenchError> {
        if !self.cancel.is_cancelled() {
            return Ok(());
        }
        gen.cancel.cancel();
        for ev in gen.events.iter() {
            if matches!(ev, Event::Done(_) | Event::Error(_)) {
                break;
            }
        }
        Err(BenchError::Cancelled)
    }

    /// [`Self::timed`] that must find exactly `want` tokens cached.
    pub fn timed_cached(
        &self,
        tokens: Vec<u32>,
        max_tokens: usize,
        want: usize,
    ) -> Result<Timed, BenchError> {
        let t = self.timed(tokens, max_tokens, None, &mut |_, _| {})?;
        if t.cached_tokens != want {
            return Err(BenchError::Cache {
                model: self.name.clone(),
                got: t.cached_tokens,
                want,
            });
        }
        Ok(t)
    }
}

/// One generation as the client saw it; times in ms from sending the request.
#[derive(Clone, Debug)]
pub struct Timed {
    pub cached_tokens: usize,
    /// Arrival of each token.
    pub token_ms: Vec<f64>,
    /// Arrival of the final `Done`.
    pub done_ms: f64,
    pub stats: Option<Stats>,
}

impl Timed {
    pub fn ttft_ms(&self) -> f64 {
        self.token_ms[0]
    }

    pub fn last_ms(&self) -> f64 {
        *self
            .token_ms
            .last()
            .expect("timed() returns at least one token")
    }
}

#[cfg(test)]
mod tests;
