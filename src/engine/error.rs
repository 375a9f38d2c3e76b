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
    #[error("{} is an embedding model, not a chat model; serve it with `lmwb serve` and call /v1/embeddings (or Ollama's /api/embed)", .0.display())]
    EmbeddingModel(PathBuf),
}

/// Why a generation could not run.
#[derive(thiserror::Error, Debug)]
pub enum EngineError {
    // The wrapped errors' own messages already say what failed and what to do; they are shown
    // as they are (`transparent`), so `{:#}` (message plus sources) says each cause once.
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Template(#[from] crate::engine::template::TemplateError),
    #[error(transparent)]
    Tokenizer(#[from] crate::engine::tokenizer::TokenizerError),
    #[error(transparent)]
    Sampling(#[from] crate::engine::sampler::SamplerError),
    #[error("the prompt is {prompt} tokens but the model's context is {context}; shorten it, or pass --max-kv-size N to slide a window over it")]
    PromptTooLong { prompt: usize, context: usize },
    #[error("--max-kv-size {max} is larger than the model's context of {context} tokens; use at most {context}")]
    WindowTooLarge { max: usize, context: usize },
    #[error("--max-kv-size {0} is too small: it must be at least 8")]
    WindowTooSmall(usize),
    #[error("token id {id} is outside the model's vocabulary of {vocab} tokens")]
    TokenOutOfRange { id: u32, vocab: usize },
    #[error("the prompt is empty: give some text to continue")]
    EmptyPrompt,
    /// Not a `source()`: the message already holds candle's text, without its backtrace.
    #[error("model computation failed: {}", candle_msg(.0))]
    Compute(candle_core::Error),
    #[error("the engine thread has stopped; restart lmwb")]
    Gone,
    /// A failure reported by a backend other than the in-process engine (a server, a fake).
    #[error("{0}")]
    Backend(String),
    /// A remote backend (HTTP) failed: down, refused, garbage, cut off.
    #[error(transparent)]
    Remote(#[from] crate::client::RemoteError),
}

impl From<candle_core::Error> for EngineError {
    fn from(e: candle_core::Error) -> Self {
        EngineError::Compute(e)
    }
}

/// A candle error's message on one line, without the backtrace candle attaches to its errors
/// when `RUST_BACKTRACE` is set (`WithBacktrace`, possibly inside `Context` / `WithPath`).
/// Use it wherever a candle error becomes text.
pub fn candle_msg(e: &candle_core::Error) -> String {
    use candle_core::Error as E;
    match e {
        E::WithBacktrace { inner, .. } => candle_msg(inner),
        E::Context { inner, context } => format!("{context}: {}", candle_msg(inner)),
        E::WithPath { inner, path } => format!("{}: {}", path.display(), candle_msg(inner)),
        E::WrappedContext { wrapped, context } => match wrapped.downcast_ref::<E>() {
            Some(inner) => format!("{context}: {}", candle_msg(inner)),
            None => format!("{context}: {wrapped}"),
        },
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Error as CError;
    use std::backtrace::Backtrace;

    fn with_bt(e: CError) -> CError {
        CError::WithBacktrace {
            inner: Box::new(e),
            backtrace: Box::new(Backtrace::force_capture()),
        }
    }

    fn assert_no_backtrace(msg: &str) {
        assert!(!msg.contains('\n'), "several lines: {msg}");
        assert!(!msg.contains("backtrace"), "{msg}");
        assert!(!msg.contains(".rs:"), "stack frames: {msg}");
    }

    #[test]
    fn candle_msg_drops_nested_backtraces() {
        let plain = CError::Msg("boom".into());
        assert_eq!(candle_msg(&plain), "boom");
        assert_eq!(candle_msg(&with_bt(CError::Msg("boom".into()))), "boom");

        let nested = with_bt(
            with_bt(CError::Msg("boom".into()))
                .with_path("/m/x.gguf")
                .context("reading weights"),
        );
        let msg = candle_msg(&nested);
        assert_no_backtrace(&msg);
        assert_eq!(msg, "reading weights: /m/x.gguf: boom");
        // What it replaces: candle's own text carries the frames.
        assert!(nested.to_string().contains('\n'));

        let wrapped = CError::WrappedContext {
            wrapped: Box::new(with_bt(CError::Msg("boom".into()))),
            context: "decoding".into(),
        };
        assert_eq!(candle_msg(&wrapped), "decoding: boom");
    }

    #[test]
    fn compute_error_message_has_no_backtrace() {
        let e: EngineError = with_bt(CError::Msg("shape mismatch".into()).context("matmul")).into();
        let msg = e.to_string();
        assert_no_backtrace(&msg);
        assert_eq!(msg, "model computation failed: matmul: shape mismatch");
        assert!(std::error::Error::source(&e).is_none());
    }

    /// The message and its `source()` chain, as `{:#}` on an anyhow error prints them.
    fn chain(e: &dyn std::error::Error) -> String {
        let mut parts = vec![e.to_string()];
        let mut cur = e.source();
        while let Some(s) = cur {
            parts.push(s.to_string());
            cur = s.source();
        }
        parts.join(": ")
    }

    #[test]
    fn wrapped_errors_say_their_cause_once() {
        use crate::engine::sampler::SamplerError;
        use crate::engine::template::TemplateError;
        use crate::engine::tokenizer::TokenizerError;
        let cases: Vec<(EngineError, String)> = vec![
            (
                TemplateError::UnknownBuiltin {
                    name: "nosuch".into(),
                }
                .into(),
                "unknown built-in chat template `nosuch`".into(),
            ),
            (
                TokenizerError::Encode("bad text".into()).into(),
                "bad text".into(),
            ),
            (
                SamplerError {
                    name: "top_p",
                    value: "2".into(),
                    allowed: "in (0, 1]",
                }
                .into(),
                "top_p = 2".into(),
            ),
            (
                LoadError::NotFound("/m/x.gguf".into()).into(),
                "/m/x.gguf".into(),
            ),
            (CError::Msg("boom".into()).into(), "boom".into()),
        ];
        for (e, what) in cases {
            let text = chain(&e);
            assert_eq!(text.matches(&what).count(), 1, "{e:?}: {text}");
        }
    }
}
