//! The generation loop that runs on the engine thread: template → tokenize → reuse the
//! cached prefix → prefill → sample/decode with stop strings and streaming.

use super::detok::Detokenizer;
use super::error::EngineError;
use super::kv::KvCache;
use super::model::LoadedModel;
use super::request::{CancelToken, Event, FinishReason, GenerateRequest, Prompt, Stats};
use super::sampler::Sampler;
use super::stop::StopMatcher;
use super::template::{ChatTemplate, TemplateError};
use super::EngineOptions;
use std::sync::mpsc::Sender;
use std::time::Instant;

/// Everything the engine thread owns.
pub(crate) struct EngineState {
    m: LoadedModel,
    opts: EngineOptions,
    cache: KvCache,
    template: Option<ChatTemplate>,
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn per_s(n: usize, ms: f64) -> f64 {
    if ms > 0.0 {
        n as f64 * 1000.0 / ms
    } else {
        0.0
    }
}

impl EngineState {
    pub(crate) fn new(m: LoadedModel, opts: EngineOptions) -> EngineState {
        let cache = KvCache::new(m.model.cfg.n_layers, None);
        EngineState {
            m,
            opts,
            cache,
            template: None,
        }
    }

    pub(crate) fn run(
        &mut self,
        req: &GenerateRequest,
        events: &Sender<Event>,
        cancel: &CancelToken,
    ) {
        if let Err(e) = self.try_run(req, events, cancel) {
            // A failed step leaves the cache in an unknown state.
            self.cache.clear();
            let _ = events.send(Event::Error(e));
        }
    }

    fn model_template(&mut self) -> Result<&ChatTemplate, EngineError> {
        if self.template.is_none() {
            let Some(src) = &self.m.chat_template else {
                let model = self.m.info.path.display().to_string();
                return Err(TemplateError::Missing { model }.into());
            };
            let tok = &self.m.tokenizer;
            let t = ChatTemplate::new(
                src,
                tok.bos_token().map(String::from),
                tok.eos_token().map(String::from),
            )?;
            self.template = Some(t);
        }
        Ok(self.template.as_ref().expect("just set"))
    }

    fn prompt_ids(&mut self, prompt: &Prompt) -> Result<Vec<u32>, EngineError> {
        let text = match prompt {
            Prompt::Tokens(ids) => {
                let vocab = self.m.model.vocab_size();
                if let Some(&id) = ids.iter().find(|&&id| id as usize >= vocab) {
                    return Err(EngineError::TokenOutOfRange { id, vocab });
                }
                return Ok(ids.clone());
            }
            Prompt::Raw(text) => text.clone(),
            Prompt::Chat {
                messages,
                template: Some(name),
            } => ChatTemplate::builtin(name)?.render(messages, true)?,
            Prompt::Chat {
                messages,
                template: None,
            } => self.model_template()?.render(messages, true)?,
        };
        let tok = &self.m.tokenizer;
        let mut ids = tok.encode(&text, false)?;
        if tok.add_bos_default() {
            if let Some(bos) = tok.bos_id() {
                if ids.first() != Some(&bos) {
                    ids.insert(0, bos);
                }
            }
        }
        Ok(ids)
    }

    fn try_run(
        &mut self,
        req: &GenerateRequest,
        events: &Sender<Event>,
        cancel: &CancelToken,
    ) -> Result<(), EngineError> {
        let t0 = Instant::now();
        req.sampling.validate()?;
        let ctx = self.m.model.cfg.context_length;
        match req.max_kv_size {
            Some(m) if m > ctx => {
                return Err(EngineError::WindowTooLarge {
                    max: m,
                    context: ctx,
                })
            }
            Some(m) if m < 8 => return Err(EngineError::WindowTooSmall(m)),
            _ => {}
        }
        let prompt = self.prompt_ids(&req.prompt)?;
        if prompt.is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        if req.max_kv_size.is_none() && prompt.len() >= ctx {
            return Err(EngineError::PromptTooLong {
                prompt: prompt.len(),
                context: ctx,
            });
        }
        if self.cache.max_kv_size() != req.max_kv_size {
            self.cache = KvCache::new(self.m.model.cfg.n_layers, req.max_kv_size);
        }
        let cached = self.cache.reuse_prefix(&prompt);
        self.cache.reset_peak();
        let _ = events.send(Event::Started {
            prompt_tokens: prompt.len(),
            cached_tokens: cached,
        });

        let mut stats = Stats {
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
            seed: 0,
        };

        // Prefill the part of the prompt that is not cached, in chunks the window allows.
        let t_prefill = Instant::now();
        let mut pos = cached;
        let mut logits = None;
        while pos < prompt.len() {
            if cancel.is_cancelled() {
                return self.finish(stats, FinishReason::Cancelled, t0, events);
            }
            let n = self
                .cache
                .max_chunk(self.opts.prefill_chunk.min(prompt.len() - pos));
            logits = Some(
                self.m
                    .model
                    .forward(&prompt[pos..pos + n], &mut self.cache)?,
            );
            pos += n;
        }
        let mut logits = logits.expect("at least one prompt token is always fed");
        stats.prefill_ms = ms(t_prefill.elapsed());
        stats.prefill_tok_s = per_s(prompt.len() - cached, stats.prefill_ms);

        let mut sampler = Sampler::new(req.sampling.clone());
        stats.seed = sampler.seed();
        let mut history = prompt.clone();
        let tail = prompt.len().saturating_sub(4);
        let mut detok = Detokenizer::new(&prompt[tail..]);
        let mut stop = StopMatcher::new(req.stop.clone());
        let max_tokens = req.max_tokens.unwrap_or(usize::MAX);
        let mut decode_steps = 0usize;
        let mut decode_time = std::time::Duration::ZERO;
        let tok = &self.m.tokenizer;

        let reason = loop {
            if max_tokens == 0 {
                break FinishReason::Length;
            }
            let mut l = logits.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?;
            let id = sampler.sample(&mut l, &history);
            if stats.generated_tokens == 0 {
                stats.ttft_ms = ms(t0.elapsed());
            }
            if !req.ignore_eos && tok.eos_ids().contains(&id) {
                break FinishReason::Stop;
            }
            stats.generated_tokens += 1;
            history.push(id);
            let piece = detok.push(tok, id)?;
            let step = stop.push(&piece);
            if events
                .send(Event::Token {
                    id,
                    text: step.emit,
                })
                .is_err()
            {
                break FinishReason::Cancelled; // nobody listens any more
            }
            if step.stopped {
                stats.stop_string = step.matched;
                break FinishReason::Stop;
            }
            if stats.generated_tokens >= max_tokens
                || (req.max_kv_size.is_none() && self.cache.next_pos() + 1 >= ctx)
            {
                break FinishReason::Length;
            }
            if cancel.is_cancelled() {
                break FinishReason::Cancelled;
            }
            let t = Instant::now();
            logits = self.m.model.forward(&[id], &mut self.cache)?;
            decode_time += t.elapsed();
            decode_steps += 1;
        };
        if stats.stop_string.is_none() {
            // Release what was held back for a possible stop string or an incomplete char.
            let rest = detok.flush(tok);
            let step = stop.push(&rest);
            let mut text = step.emit;
            if step.stopped {
                stats.stop_string = step.matched;
            } else {
                text.push_str(&stop.finish());
            }
            if !text.is_empty() {
                let _ = events.send(Event::Text(text));
            }
        }
        stats.decode_ms = ms(decode_time);
        stats.decode_tok_s = per_s(decode_steps, stats.decode_ms);
        self.finish(stats, reason, t0, events)
    }

    fn finish(
        &self,
        mut stats: Stats,
        reason: FinishReason,
        t0: Instant,
        events: &Sender<Event>,
    ) -> Result<(), EngineError> {
        stats.finish_reason = reason;
        stats.total_ms = ms(t0.elapsed());
        stats.kv_used = self.cache.len();
        stats.kv_peak = self.cache.peak();
        let _ = events.send(Event::Done(stats));
        Ok(())
    }
}
