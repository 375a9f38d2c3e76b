//! A deterministic [`GenerationClient`] for tests and demos: it streams scripted replies
//! token by token, honours cancellation and `max_tokens`, and reports plausible stats.
//! When a request asks for log probabilities, each piece carries made-up but well-formed
//! ones (see [`fake_logprobs`]).

use super::GenerationClient;
use crate::engine::logprobs::{TokenLogprobs, TopLogprob};
use crate::engine::{
    CancelToken, EngineError, Event, FinishReason, GenerateRequest, Generation, Prompt, Stats,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// What the fake does with the next request.
#[derive(Clone, Debug)]
pub enum Script {
    /// Stream these pieces, one per token, then finish with `Stop`.
    Reply(Vec<String>),
    /// Fail with this message before any token.
    Fail(String),
}

impl Script {
    /// Split `text` into token-sized pieces (runs of at most 4 bytes on char boundaries).
    pub fn text(text: &str) -> Script {
        let mut pieces = Vec::new();
        let mut cur = String::new();
        for c in text.chars() {
            if cur.len() + c.len_utf8() > 4 || (c == ' ' && !cur.is_empty()) {
                pieces.push(std::mem::take(&mut cur));
            }
            cur.push(c);
        }
        if !cur.is_empty() {
            pieces.push(cur);
        }
        Script::Reply(pieces)
    }
}

/// A client that replays scripts in order (the last one repeats).
pub struct FakeClient {
    name: String,
    scripts: Mutex<Vec<Script>>,
    /// Pause between tokens, so a test can cancel mid-stream.
    pub delay: Duration,
    context: usize,
    template: Option<String>,
    calls: Arc<AtomicUsize>,
    cancels: Arc<AtomicUsize>,
    requests: Mutex<Vec<GenerateRequest>>,
}

impl FakeClient {
    pub fn new(name: &str, scripts: Vec<Script>) -> FakeClient {
        FakeClient {
            name: name.to_string(),
            scripts: Mutex::new(scripts),
            delay: Duration::ZERO,
            context: 2048,
            template: None,
            calls: Arc::new(AtomicUsize::new(0)),
            cancels: Arc::new(AtomicUsize::new(0)),
            requests: Mutex::new(Vec::new()),
        }
    }

    pub fn with_delay(mut self, delay: Duration) -> FakeClient {
        self.delay = delay;
        self
    }

    pub fn with_context(mut self, context: usize) -> FakeClient {
        self.context = context;
        self
    }

    /// Report `source` as the chat template (the server reads the tool-call format from it).
    pub fn with_template(mut self, source: &str) -> FakeClient {
        self.template = Some(source.to_string());
        self
    }

    /// How many generations were started.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// How many generations saw their cancel token before their end.
    pub fn cancelled(&self) -> usize {
        self.cancels.load(Ordering::SeqCst)
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<GenerateRequest> {
        self.requests.lock().unwrap().clone()
    }

    fn next_script(&self) -> Script {
        let mut s = self.scripts.lock().unwrap();
        if s.len() > 1 {
            s.remove(0)
        } else {
            s.first()
                .cloned()
                .unwrap_or(Script::Reply(vec!["ok".into()]))
        }
    }
}

fn prompt_len(p: &Prompt) -> usize {
    let chars: usize = match p {
        Prompt::Tokens(ids) => return ids.len(),
        Prompt::Raw(s) => s.len(),
        Prompt::Chat { messages, .. } => messages.iter().map(|m| m.content.len() + 4).sum(),
    };
    chars.div_ceil(4)
}

impl GenerationClient for FakeClient {
    fn model_name(&self) -> &str {
        &self.name
    }

    fn context_length(&self) -> Option<usize> {
        Some(self.context)
    }

    fn vocab_size(&self) -> Option<usize> {
        Some(256)
    }

    fn chat_template(&self) -> Option<&str> {
        self.template.as_deref()
    }

    fn generate(&self, req: GenerateRequest) -> Generation {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.requests.lock().unwrap().push(req.clone());
        let script = self.next_script();
        let (tx, rx) = mpsc::channel();
        let cancel = CancelToken::default();
        let stop = cancel.clone();
        let delay = self.delay;
        let cancels = self.cancels.clone();
        std::thread::spawn(move || {
            if run(script, req, tx, stop, delay) == FinishReason::Cancelled {
                cancels.fetch_add(1, Ordering::SeqCst);
            }
        });
        Generation { events: rx, cancel }
    }
}

/// The log probabilities the fake reports for piece `i`: the piece itself is the most likely
/// token (logprob `-0.1 × (i + 1)`), then `n - 1` alternatives `alt1`, `alt2`, … each one
/// nat less likely.
pub fn fake_logprobs(i: usize, piece: &str, n: usize) -> TokenLogprobs {
    let logprob = -0.1 * (i + 1) as f32;
    let top = (0..n)
        .map(|k| TopLogprob {
            id: if k == 0 { i as u32 } else { 1000 + k as u32 },
            bytes: if k == 0 {
                piece.as_bytes().to_vec()
            } else {
                format!("alt{k}").into_bytes()
            },
            logprob: logprob - k as f32,
        })
        .collect();
    TokenLogprobs {
        logprob,
        bytes: piece.as_bytes().to_vec(),
        top,
    }
}

fn run(
    script: Script,
    req: GenerateRequest,
    tx: mpsc::Sender<Event>,
    cancel: CancelToken,
    delay: Duration,
) -> FinishReason {
    let prompt_tokens = prompt_len(&req.prompt);
    let pieces = match script {
        Script::Fail(msg) => {
            let _ = tx.send(Event::Error(EngineError::Backend(msg)));
            return FinishReason::Error;
        }
        Script::Reply(p) => p,
    };
    let _ = tx.send(Event::Started {
        prompt_tokens,
        cached_tokens: 0,
    });
    let mut finish = FinishReason::Stop;
    let mut generated = 0;
    for (i, piece) in pieces.into_iter().enumerate() {
        if req.max_tokens.is_some_and(|m| generated >= m) {
            finish = FinishReason::Length;
            break;
        }
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        if cancel.is_cancelled() {
            finish = FinishReason::Cancelled;
            break;
        }
        generated += 1;
        let logprobs = req.logprobs.map(|n| Box::new(fake_logprobs(i, &piece, n)));
        if tx
            .send(Event::Token {
                id: i as u32,
                text: piece,
                logprobs,
            })
            .is_err()
        {
            return finish;
        }
    }
    let ms = |tokens: usize| tokens as f64 * 10.0;
    let _ = tx.send(Event::Done(Stats {
        prompt_tokens,
        cached_tokens: 0,
        generated_tokens: generated,
        ttft_ms: 20.0,
        prefill_ms: 20.0,
        prefill_tok_s: prompt_tokens as f64 / 0.02,
        decode_ms: ms(generated),
        decode_tok_s: 100.0,
        total_ms: 20.0 + ms(generated),
        finish_reason: finish,
        stop_string: None,
        kv_used: prompt_tokens + generated,
        kv_peak: prompt_tokens + generated,
        max_kv_size: req.max_kv_size,
        seed: req.sampling.seed.unwrap_or(0),
    }));
    finish
}
