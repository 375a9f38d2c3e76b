//! Continuous batching on the engine thread.
//!
//! The thread sleeps on the command channel while nothing runs. While sequences run, each
//! loop turn: take every new command without blocking (FIFO queue), admit queued requests
//! while fewer than `max_batch` run, retire cancelled ones, then run **one step** of every
//! running sequence in one [`Llama::forward_batch`](super::model::Llama::forward_batch)
//! call, and let each sample, stream and possibly finish. Sequences join and leave between
//! steps; each has its own KV cache and window.
//!
//! Mixing prefill and decode ([`plan`]): every decoding sequence feeds its one token each
//! step. Prefilling sequences feed their next prompt chunk (the same chunks they would
//! have alone), oldest first, while the step's prompt tokens stay within `prefill_chunk`;
//! the oldest prefilling sequence always gets its chunk, later ones wait a step. So a long
//! prompt delays the decoding streams by at most one chunk per step, and prompts are
//! processed in arrival order.
//!
//! Errors: a bad request (template, prompt too long, bad window) fails at admission, alone;
//! a failed forward step fails the sequences that took part in it and clears their caches.

use super::error::EngineError;
use super::model::LoadedModel;
use super::pool::CachePool;
use super::prompt::PromptBuilder;
use super::request::FinishReason;
use super::sequence::{Sequence, Want};
use super::tokenizer::TokenBytes;
use super::{Command, EngineOptions};
use std::collections::VecDeque;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Instant;

/// Which sequences take part in the next step, and with what: `wants` in admission order;
/// `None` sits this step out. Decoding sequences always take part; prefilling ones while
/// the step's prompt tokens stay within `budget`, the first of them always.
pub(crate) fn plan(wants: &[Want], budget: usize) -> Vec<Option<Want>> {
    let mut used = 0;
    let mut any = false;
    wants
        .iter()
        .map(|&w| match w {
            Want::Decode => Some(w),
            Want::Prefill(n) if !any || used + n <= budget => {
                any = true;
                used += n;
                Some(w)
            }
            Want::Prefill(_) => None,
        })
        .collect()
}

/// Requests waiting for a place in the batch, first come first served.
#[derive(Default)]
pub(crate) struct Queue {
    waiting: VecDeque<Command>,
}

impl Queue {
    pub(crate) fn push(&mut self, cmd: Command) {
        self.waiting.push_back(cmd);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// The next request to admit, while `running` < `max_batch`.
    pub(crate) fn admit(&mut self, running: usize, max_batch: usize) -> Option<Command> {
        if running < max_batch.max(1) {
            self.waiting.pop_front()
        } else {
            None
        }
    }
}

/// Everything the engine thread owns.
pub(crate) struct Scheduler {
    m: LoadedModel,
    opts: EngineOptions,
    prompts: PromptBuilder,
    pool: CachePool,
    queue: Queue,
    /// Running sequences, in admission order.
    active: Vec<Sequence>,
    /// Every step's logits (`vocab` per sequence), kept so decoding allocates no buffer.
    logits: Vec<f32>,
    /// Every token's bytes, built the first time a request needs them.
    token_bytes: Option<Arc<TokenBytes>>,
}

/// How a sequence leaves after a step.
enum Exit {
    Finish(FinishReason),
    Fail(EngineError),
}

impl Scheduler {
    pub(crate) fn new(m: LoadedModel, opts: EngineOptions) -> Scheduler {
        let pool = CachePool::new(m.model.cfg.n_layers, opts.max_batch.max(1));
        Scheduler {
            m,
            opts,
            prompts: PromptBuilder::default(),
            pool,
            queue: Queue::default(),
            active: Vec::new(),
            logits: Vec::new(),
            token_bytes: None,
        }
    }

    /// Serve commands until every handle is dropped and the work in hand is done.
    pub(crate) fn run(mut self, rx: Receiver<Command>) {
        loop {
            if self.active.is_empty() && self.queue.is_empty() {
                match rx.recv() {
                    Ok(cmd) => self.queue.push(cmd),
                    Err(_) => break,
                }
            }
            while let Ok(cmd) = rx.try_recv() {
                self.queue.push(cmd);
            }
            self.admit();
            self.step();
        }
        tracing::debug!("engine thread exits: every handle dropped");
    }

    fn admit(&mut self) {
        while let Some(cmd) = self.queue.admit(self.active.len(), self.opts.max_batch) {
            let Command::Generate {
                req,
                events,
                cancel,
            } = cmd;
            let (table, tokenizer) = (&mut self.token_bytes, &self.m.tokenizer);
            let bytes = || {
                table
                    .get_or_insert_with(|| Arc::new(TokenBytes::new(tokenizer)))
                    .clone()
            };
            match Sequence::start(
                req,
                events,
                cancel,
                &self.m,
                &mut self.prompts,
                &mut self.pool,
                bytes,
            ) {
                Ok(seq) => self.active.push(seq),
                Err((e, events)) => {
                    let _ = events.send(super::Event::Error(e));
                }
            }
        }
    }

    /// Retire cancelled sequences, then run one step of the others.
    fn step(&mut self) {
        for s in self.active.extract_if(.., |s| s.is_cancelled()) {
            s.finish(FinishReason::Cancelled, &self.m, &mut self.pool);
        }
        if self.active.is_empty() {
            return;
        }
        let chunk = self.opts.prefill_chunk.max(1);
        let wants: Vec<Want> = self.active.iter().map(|s| s.want(chunk)).collect();
        let planned = plan(&wants, chunk);
        let mut inputs = Vec::with_capacity(self.active.len());
        for (s, w) in self.active.iter_mut().zip(&planned) {
            if let Some(w) = w {
                inputs.push(s.input(*w));
            }
        }
        let t = Instant::now();
        let out = self
            .m
            .model
            .forward_batch_into(&mut inputs, &mut self.logits);
        let dt = t.elapsed();
        let stepped = inputs.len();
        drop(inputs);
        let mut exits: Vec<Option<Exit>> = Vec::with_capacity(self.active.len());
        match out {
            Ok(()) => {
                let vocab = self.logits.len() / stepped.max(1);
                let mut logits = self.logits.chunks_exact_mut(vocab.max(1));
                for (s, w) in self.active.iter_mut().zip(&planned) {
                    let Some(w) = w else {
                        exits.push(None);
                        continue;
                    };
                    let Some(l) = logits.next() else {
                        let e = candle_core::Error::Msg("a batched step lost a sequence".into());
                        exits.push(Some(Exit::Fail(EngineError::Compute(e))));
                        continue;
                    };
                    exits.push(match s.advance(*w, l, dt, &self.m) {
                        Ok(None) => None,
                        Ok(Some(r)) => Some(Exit::Finish(r)),
                        Err(e) => Some(Exit::Fail(e)),
                    });
                }
            }
            Err(e) => {
                let msg = super::error::candle_msg(&e);
                let mut first = Some(e);
                for w in &planned {
                    exits.push(w.map(|_| {
                        let e = first
                            .take()
                            .unwrap_or_else(|| candle_core::Error::Msg(msg.clone()));
                        Exit::Fail(EngineError::Compute(e))
                    }));
                }
            }
        }
        let mut kept = Vec::with_capacity(self.active.len());
        for (s, exit) in std::mem::take(&mut self.active).into_iter().zip(exits) {
            match exit {
                None => kept.push(s),
                Some(Exit::Finish(r)) => s.finish(r, &self.m, &mut self.pool),
                Some(Exit::Fail(e)) => s.fail(e, &mut self.pool),
            }
        }
        self.active = kept;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{CancelToken, GenerateRequest, Prompt};
    use std::sync::mpsc;

    #[test]
    fn decoders_always_step_and_prefill_chunks_share_one_budget_oldest_first() {
        use Want::{Decode, Prefill};
        let p = plan(
            &[Decode, Prefill(200), Decode, Prefill(100), Prefill(50)],
            256,
        );
        assert_eq!(
            p,
            [
                Some(Decode),
                Some(Prefill(200)),
                Some(Decode),
                None,
                Some(Prefill(50))
            ]
        );
        // The oldest prefilling sequence runs even when its chunk alone exceeds the budget.
        let p = plan(&[Prefill(300), Prefill(1), Decode], 256);
        assert_eq!(p, [Some(Prefill(300)), None, Some(Decode)]);
        assert_eq!(plan(&[], 256), Vec::<Option<Want>>::new());
    }

    fn cmd(text: &str) -> Command {
        let (events, _) = mpsc::channel();
        Command::Generate {
            req: Box::new(GenerateRequest::new(Prompt::Raw(text.into()))),
            events,
            cancel: CancelToken::default(),
        }
    }

    fn text(c: &Command) -> String {
        let Command::Generate { req, .. } = c;
        match &req.prompt {
            Prompt::Raw(t) => t.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_queue_admits_up_to_max_batch_in_arrival_order() {
        let mut q = Queue::default();
        for t in ["a", "b", "c"] {
            q.push(cmd(t));
        }
        assert!(q.admit(2, 2).is_none(), "full batch: everyone waits");
        assert_eq!(text(&q.admit(1, 2).unwrap()), "a");
        q.push(cmd("d"));
        let order: Vec<String> = std::iter::from_fn(|| q.admit(0, 8))
            .map(|c| text(&c))
            .collect();
        assert_eq!(order, ["b", "c", "d"]);
        assert!(q.is_empty());
        // max_batch 0 is treated as 1.
        q.push(cmd("e"));
        assert!(q.admit(0, 0).is_some());
    }
}
