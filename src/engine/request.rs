//! What a generation request carries, the events it streams back, and its statistics.

use crate::engine::constrain::Constraint;
use crate::engine::error::EngineError;
use crate::engine::logprobs::TokenLogprobs;
use crate::engine::sampler::SamplingParams;
use crate::engine::template::ChatMessage;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The text to continue.
#[derive(Clone, Debug, PartialEq)]
pub enum Prompt {
    /// Plain text, tokenized as is (BOS added when the model asks for it).
    Raw(String),
    /// Messages rendered through the model's chat template, or a named built-in one.
    Chat {
        messages: Vec<ChatMessage>,
        template: Option<String>,
        options: ChatOptions,
    },
    /// Token ids fed as they are (no BOS added, no template): benchmarks use these to get
    /// prompts of an exact length. Every id must be below the model's vocabulary size.
    Tokens(Vec<u32>),
}

impl Prompt {
    /// `messages` through the model's own chat template, with no tools.
    pub fn chat(messages: Vec<ChatMessage>) -> Prompt {
        Prompt::Chat {
            messages,
            template: None,
            options: ChatOptions::default(),
        }
    }
}

/// What a chat prompt carries beside its messages.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChatOptions {
    /// Tool definitions, OpenAI-style `{"type": "function", "function": {name, description,
    /// parameters}}`: rendered by a template that reads `tools`, otherwise written into the
    /// system prompt (see [`crate::engine::tool_prompt`]).
    pub tools: Vec<serde_json::Value>,
    /// Text the assistant's answer starts with: appended after the rendered prompt, so the
    /// model continues from it (a forced tool call opens its call here). Not part of the
    /// output.
    pub prefill: String,
}

/// One generation.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateRequest {
    pub prompt: Prompt,
    pub sampling: SamplingParams,
    /// Stop after this many generated tokens (`None`: until EOS or the context is full).
    pub max_tokens: Option<usize>,
    /// Strings that end the generation; never part of the output.
    pub stop: Vec<String>,
    /// Keep at most this many KV entries (first tokens kept, the rest rotating).
    pub max_kv_size: Option<usize>,
    /// Keep generating past EOS (benchmarks: exactly `max_tokens` tokens, as llama-bench
    /// and vLLM's `ignore_eos` do). Stop strings, `max_tokens` and the context still end it.
    pub ignore_eos: bool,
    /// Log probabilities: `None` off; `Some(n)`: the chosen token's plus the `n` most likely
    /// (at most [`crate::engine::logprobs::MAX_TOP_LOGPROBS`]) on every `Event::Token`.
    pub logprobs: Option<usize>,
    /// Only generate text this grammar accepts (JSON, a JSON Schema); ends when it is complete.
    pub constraint: Option<Constraint>,
}

impl GenerateRequest {
    pub fn new(prompt: Prompt) -> GenerateRequest {
        GenerateRequest {
            prompt,
            sampling: SamplingParams::default(),
            max_tokens: None,
            stop: vec![],
            max_kv_size: None,
            ignore_eos: false,
            logprobs: None,
            constraint: None,
        }
    }
}

/// Why a generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FinishReason {
    /// EOS or a stop string.
    Stop,
    /// max_tokens or the context limit.
    Length,
    Cancelled,
    Error,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::Cancelled => "cancelled",
            FinishReason::Error => "error",
        }
    }
}

/// Per-request statistics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub prompt_tokens: usize,
    /// Prompt tokens whose KV entries were reused from the previous request.
    pub cached_tokens: usize,
    pub generated_tokens: usize,
    /// Time to first token, from the engine taking the request.
    pub ttft_ms: f64,
    pub prefill_ms: f64,
    /// New (not cached) prompt tokens per second of prefill.
    pub prefill_tok_s: f64,
    pub decode_ms: f64,
    /// Decode forward passes per second, after the first token.
    pub decode_tok_s: f64,
    pub total_ms: f64,
    pub finish_reason: FinishReason,
    /// The stop string that ended the generation, if one did.
    pub stop_string: Option<String>,
    /// KV entries held at the end, and the most held at any time.
    pub kv_used: usize,
    pub kv_peak: usize,
    pub max_kv_size: Option<usize>,
    /// The seed the sampler used (reported so a run can be repeated).
    pub seed: u64,
}

/// What the engine streams back for one request, in order: `Started`, any number of
/// `Token`s, then `Done` — or `Error` at any point.
#[derive(Debug)]
pub enum Event {
    Started {
        prompt_tokens: usize,
        cached_tokens: usize,
    },
    /// A sampled token and the text it completes (may be empty while UTF-8 or a possible
    /// stop string is held back).
    Token {
        id: u32,
        text: String,
        /// When the request asked for them ([`GenerateRequest::logprobs`]).
        logprobs: Option<Box<TokenLogprobs>>,
    },
    /// Text released at the end that belongs to no single token (held-back bytes).
    Text(String),
    Done(Stats),
    Error(EngineError),
}

/// Cancels a generation; cheap to clone and share with a Ctrl-C handler.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
