//! Engine errors: each says what was wrong and what to do about it.

use std::path::PathBuf;

/// Why a model could not be loaded. Every variant names the file.
#[derive(thiserror::Error, Debug)]
pub enum LoadError {
    #[error("model file {0} does not exist: check the path, or run `lmwb models list` to see the models lmwb finds")]
    NotFound(PathBuf),
    #[error("{path}: cannot read it: {why}")]
    Io { path: PathBuf, why: String },
    #[error("{path}: not a model lmwb can read ({why}); lmwb loads .gguf files and safetensors folders with config.json")]
    Format { path: PathBuf, why: String },
    #[error("{path}: the file is truncated or damaged ({why}); download it again (for the default model: bash scripts/fetch-models.sh)")]
    Truncated { path: PathBuf, why: String },
    #[error("{path}: {why}")]
    Config { path: PathBuf, why: String },
    #[error("{path}: missing tensor `{name}`; the file is incomplete or not a llama-family model")]
    MissingTensor { path: PathBuf, name: String },
    #[error("{path}: no tokenizer: {why}")]
    Tokenizer { path: PathBuf, why: String },
    #[error("device `{device}` is not available: {why}")]
    Device { device: String, why: String },
    #[error("{path}: {why}")]
    Tensor { path: PathBuf, why: String },
}

/// Why a generation could not run.
#[derive(thiserror::Error, Debug)]
pub enum EngineError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("chat template: {0}")]
    Template(#[from] crate::engine::template::TemplateError),
    #[error("tokenizer: {0}")]
    Tokenizer(#[from] crate::engine::tokenizer::TokenizerError),
    #[error("sampling: {0}")]
    Sampling(#[from] crate::engine::sampler::SamplerError),
    #[error("the prompt is {prompt} tokens but the model's context is {context}; shorten it, or pass --max-kv-size N to slide a window over it")]
    PromptTooLong { prompt: usize, context: usize },
    #[error("--max-kv-size {max} is larger than the model's context of {context} tokens; use at most {context}")]
    WindowTooLarge { max: usize, context: usize },
    #[error("--max-kv-size {0} is too small: it must be at least 8")]
    WindowTooSmall(usize),
    #[error("the prompt is empty: give some text to continue")]
    EmptyPrompt,
    #[error("model computation failed: {0}")]
    Compute(#[from] candle_core::Error),
    #[error("the engine thread has stopped; restart lmwb")]
    Gone,
}
