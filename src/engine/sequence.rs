//! One request's life on the engine thread: validate → prompt ids → a cache from the pool
//! (its prefix reused) → prefill chunks → sample, detokenize, match stops, stream → done.
//!
//! The [`super::scheduler`] drives many of these at once: each step it asks every sequence
//! what it wants to feed ([`Sequence::want`]), runs them together through the model and
//! hands each its logits ([`Sequence::advance`]). A sequence never touches another's state,
//! so what one request does (an error, a cancel, a stop) ends that request only.

use super::constrain::Recognizer;
use super::detok::Detokenizer;
use super::error::EngineError;
use super::kv::KvCache;
use super::logprobs;
use super::model::llama::SeqStep;
use super::model::LoadedModel;
use super::pool::CachePool;
use super::prompt::PromptBuilder;
use super::request::{CancelToken, Event, FinishReason, GenerateRequest, Stats};
use super::sampler::Sampler;
use super::stop::StopMatcher;
use super::tokenizer::TokenBytes;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn per_s(n: usize, ms: f64) -> f64 {
    if ms > 0.0 {
        n as f64 * 1000.0 / ms
    } else {
        0.0
    }
}

/// What a sequence feeds the model in the next step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Want {
    /// The next prompt chunk of this many tokens.
    Prefill(usize),
    /// The last sampled token.
    Decode,
}

/// A request the engine has taken, with everything it needs between steps.
pub(crate) struct Sequence {
    req: Box<GenerateRequest>,
    events: Sender<Event>,
    cancel: CancelToken,
    /// When the engine took the request (TTFT and total time count from here).
    t0: Instant,
    prompt: Vec<u32>,
    /// Prompt tokens in the cache.
    pos: usize,
    cache: KvCache,
    /// Every token the cache holds, in order (given back to the pool with the cache).
    fed: Vec<u32>,
    /// The last sampled token, fed in the next decode step.
    last: u32,
    sampler: Sampler,
    /// Prompt and generated tokens (penalties look at them).
    history: Vec<u32>,
    detok: Detokenizer,
    stop: StopMatcher,
    stats: Stats,
    max_tokens: usize,
    decode_steps: usize,
    decode_time: Duration,
    /// Every token's bytes, when logprobs or a constraint need them.
    bytes: Option<Arc<TokenBytes>>,
    /// Where the constrained output stands.
    constraint: Option<Recognizer>,
    /// The step's raw logits, kept for logprobs (the sampler changes its copy).
    raw: Vec<f32>,
}

impl Sequence {
    /// Check the request, tokenize its prompt, take a cache and announce `Started`. An
    /// error here belongs to this request alone.
    pub(crate) fn start(
        req: Box<GenerateRequest>,
        events: Sender<Event>,
        cancel: CancelToken,
        m: &LoadedModel,
        prompts: &mut PromptBuilder,
        pool: &mut CachePool,
        bytes: impl FnOnce() -> Arc<TokenBytes>,
    ) -> Result<Sequence, (EngineError, Sender<Event>)> {
        let t0 = Instant::now();
        let prompt = match Self::prompt(&req, m, prompts) {
            Ok(p) => p,
            Err(e) => return Err((e, events)),
        };
        let (cache, cached) = pool.take(&prompt, req.max_kv_size);
        let _ = events.send(Event::Started {
            prompt_tokens: prompt.len(),
            cached_tokens: cached,
        });
        let sampler = Sampler::new(req.sampling.clone());
        let tail = prompt.len().saturating_sub(4);
        let stats = Stats {
            prompt_tokens: prompt.len(),
            cached_tokens: cached,
            generated_tokens: 0,
            ttft_ms: 0.0,
            prefill_ms: 0.0,
            prefill_tok_s: 0.0,
            decode_ms: 0.0,
            decode_tok_s: 0.0,
            total_ms: 0.0,
            finish_reason: FinishReason::Length,
            stop_string: None,
            kv_used: 0,
            kv_peak: 0,
            max_kv_size: req.max_kv_size,
            seed: sampler.seed(),
        };
        let bytes = (req.logprobs.is_some() || req.constraint.is_some()).then(bytes);
        let constraint = req.constraint.as_ref().map(|c| c.recognizer());
        Ok(Sequence {
            detok: Detokenizer::new(&prompt[tail..]),
            stop: StopMatcher::new(req.stop.clone()),
            max_tokens: req.max_tokens.unwrap_or(usize::MAX),
            history: prompt.clone(),
            fed: prompt[..cached].to_vec(),
            pos: cached,
            last: 0,
            prompt,
            cache,
            sampler,
            stats,
            req,
            events,
            cancel,
            t0,
            decode_steps: 0,
            decode_time: Duration::ZERO,
            bytes,
            constraint,
            raw: Vec::new(),
        })
    }

    fn prompt(
        req: &GenerateRequest,
        m: &LoadedModel,
        prompts: &mut PromptBuilder,
    ) -> Result<Vec<u32>, EngineError> {
        req.sampling.validate()?;
        let ctx = m.model.cfg.context_length;
        match req.max_kv_size {
            Some(max) if max > ctx => {
                return Err(EngineError::WindowTooLarge { max, context: ctx })
            }
            Some(m) if m < 8 => return Err(EngineError::WindowTooSmall(m)),
            _ => {}
        }
        let prompt = prompts.ids(m, &req.prompt)?;
        if prompt.is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        if req.max_kv_size.is_none() && prompt.len() >= ctx {
            return Err(EngineError::PromptTooLong {
                prompt: prompt.len(),
                context: ctx,
            });
        }
        Ok(prompt)
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// The next step's input: the next prompt chunk (at most `prefill_chunk` tokens, and
    /// what the window allows), or the last sampled token. A sequence's chunks are the same
    /// whether it runs alone or in a batch.
    pub(crate) fn want(&self, prefill_chunk: usize) -> Want {
        if self.pos < self.prompt.len() {
            let rest = self.prompt.len() - self.pos;
            Want::Prefill(self.cache.max_chunk(prefill_chunk.max(1).min(rest)))
        } else {
            Want::Decode
        }
    }

    /// This sequence's part of a batched step, for a [`Self::want`] answer.
    pub(crate) fn input(&mut self, want: Want) -> SeqStep<'_> {
        let tokens = match want {
            Want::Prefill(n) => &self.prompt[self.pos..self.pos + n],
            Want::Decode => std::slice::from_ref(&self.last),
        };
        SeqStep {
            tokens,
            cache: &mut self.cache,
        }
    }

    /// Take the logits of a step this sequence fed `want` to, which took `dt` of wall time.
    /// Returns why the sequence ends, if it does.
    pub(crate) fn advance(
        &mut self,
        want: Want,
        logits: &mut [f32],
        dt: Duration,
        m: &LoadedModel,
    ) -> Result<Option<FinishReason>, EngineError> {
        match want {
            Want::Prefill(n) => {
                self.fed
                    .extend_from_slice(&self.prompt[self.pos..self.pos + n]);
                self.pos += n;
                if self.pos < self.prompt.len() {
                    return Ok(None);
                }
                // Prefill counts from the start: the steps it took and those it waited.
                self.stats.prefill_ms = ms(self.t0.elapsed());
                self.stats.prefill_tok_s = per_s(
                    self.prompt.len() - self.stats.cached_tokens,
                    self.stats.prefill_ms,
                );
            }
            Want::Decode => {
                self.fed.push(self.last);
                self.decode_time += dt;
                self.decode_steps += 1;
            }
        }
        self.sample(logits, m)
    }

    fn sample(
        &mut self,
        logits: &mut [f32],
        m: &LoadedModel,
    ) -> Result<Option<FinishReason>, EngineError> {
        if self.max_tokens == 0 {
            return Ok(Some(FinishReason::Length));
        }
        let tok = &m.tokenizer;
        if self.req.logprobs.is_some() {
            self.raw.clear();
            self.raw.extend_from_slice(logits);
        }
        let id = match (&mut self.constraint, &self.bytes) {
            (Some(c), Some(bytes)) => {
                let Some(id) = pick_allowed(
                    &mut self.sampler,
                    logits,
                    &self.history,
                    c,
                    bytes,
                    tok.eos_ids(),
                ) else {
                    return Err(EngineError::Backend(
                        "no token of the model's vocabulary can continue the constrained output; \
                         loosen the schema or raise max_tokens"
                            .into(),
                    ));
                };
                id
            }
            _ => self.sampler.sample(logits, &self.history),
        };
        if self.stats.generated_tokens == 0 {
            self.stats.ttft_ms = ms(self.t0.elapsed());
        }
        if !self.req.ignore_eos && tok.eos_ids().contains(&id) {
            return Ok(Some(FinishReason::Stop));
        }
        self.stats.generated_tokens += 1;
        self.history.push(id);
        let piece = self.detok.push(tok, id)?;
        let step = self.stop.push(&piece);
        let logprobs = match (self.req.logprobs, &self.bytes) {
            (Some(n), Some(bytes)) => Some(Box::new(logprobs::compute(&self.raw, id, n, bytes))),
            _ => None,
        };
        let sent = self.events.send(Event::Token {
            id,
            text: step.emit,
            logprobs,
        });
        if sent.is_err() {
            return Ok(Some(FinishReason::Cancelled)); // nobody listens any more
        }
        if step.stopped {
            self.stats.stop_string = step.matched;
            return Ok(Some(FinishReason::Stop));
        }
        if let (Some(c), Some(bytes)) = (&mut self.constraint, &self.bytes) {
            c.feed(bytes.get(id));
            if c.is_done() {
                return Ok(Some(FinishReason::Stop)); // the value is complete
            }
        }
        let ctx = m.model.cfg.context_length;
        if self.stats.generated_tokens >= self.max_tokens
            || (self.req.max_kv_size.is_none() && self.cache.next_pos() + 1 >= ctx)
        {
            return Ok(Some(FinishReason::Length));
        }
        self.last = id;
        Ok(None)
    }

    /// End normally: release held-back text, send `Done`, give the cache back.
    pub(crate) fn finish(mut self, reason: FinishReason, m: &LoadedModel, pool: &mut CachePool) {
        if self.stats.stop_string.is_none() {
            // Release what was held back for a possible stop string or an incomplete char.
            let rest = self.detok.flush(&m.tokenizer);
            let step = self.stop.push(&rest);
            let mut text = step.emit;
            if step.stopped {
                self.stats.stop_string = step.matched;
            } else {
                text.push_str(&self.stop.finish());
            }
            if !text.is_empty() {
                let _ = self.events.send(Event::Text(text));
            }
        }
        let mut stats = self.stats;
        stats.decode_ms = ms(self.decode_time);
        stats.decode_tok_s = per_s(self.decode_steps, stats.decode_ms);
        stats.finish_reason = reason;
        stats.total_ms = ms(self.t0.elapsed());
        stats.kv_used = self.cache.len();
        stats.kv_peak = self.cache.peak();
        let _ = self.events.send(Event::Done(stats));
        pool.put(self.fed, self.cache);
    }

    /// End with an error; the cache may hold half a step, so it is cleared.
    pub(crate) fn fail(mut self, e: EngineError, pool: &mut CachePool) {
        self.cache.clear();
        pool.put(vec![], self.cache);
        let _ = self.events.send(Event::Error(e));
    }
}

/// A token that keeps the constrained output valid: EOS only once the value is complete,
/// no special token, otherwise one whose bytes the recognizer accepts.
fn pick_allowed(
    sampler: &mut Sampler,
    logits: &mut [f32],
    history: &[u32],
    c: &Recognizer,
    bytes: &TokenBytes,
    eos: &[u32],
) -> Option<u32> {
    let complete = c.is_complete();
    sampler.sample_allowed(logits, history, |id| {
        if eos.contains(&id) {
            complete
        } else {
            !bytes.is_special(id) && !bytes.get(id).is_empty() && c.accepts(bytes.get(id))
        }
    })
}
