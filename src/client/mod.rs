//! The seam every front end talks to: a [`GenerationClient`] streams [`Event`]s for a
//! [`GenerateRequest`], whether the model runs in-process ([`LocalClient`]) or behind HTTP
//! ([`HttpClient`], any OpenAI-compatible server or Ollama). Tests use
//! [`fake::FakeClient`] for deterministic streams.

pub mod backend;
pub mod fake;
mod http;
mod http_stream;
mod local;
mod remote_error;
pub mod target;
pub mod wire;

pub use crate::engine::{Event, GenerateRequest, Generation};
pub use http::{Connection, HttpClient, RemoteModel, FALLBACK_VOCAB};
pub use local::LocalClient;
pub use remote_error::RemoteError;
pub use target::Target;

/// Something that generates text for requests.
pub trait GenerationClient: Send + Sync {
    /// The model's display name (what `-m` resolved to).
    fn model_name(&self) -> &str;
    /// The model's context length in tokens, when known.
    fn context_length(&self) -> Option<usize>;
    /// The vocabulary size, when token-id prompts ([`crate::engine::Prompt::Tokens`]) are
    /// accepted (benchmarks build exact-length prompts from random ids); `None` otherwise.
    fn vocab_size(&self) -> Option<usize> {
        None
    }
    /// Whether [`Self::vocab_size`] is the model's own (false: a server that does not list
    /// it, whose token ids are drawn below [`FALLBACK_VOCAB`]).
    fn vocab_listed(&self) -> bool {
        true
    }
    /// The source of the chat template chat prompts are rendered with, when known (the
    /// server reads the model's tool-call format from it).
    fn chat_template(&self) -> Option<&str> {
        None
    }
    /// What loading the model noted (requantized weights, a missing template …).
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
    /// Start a generation; events arrive on the returned receiver.
    fn generate(&self, req: GenerateRequest) -> Generation;
    /// Something to keep alive while a generation started through this client runs (the
    /// server's hold on a model loaded on demand, so it does not unload mid-answer).
    fn hold(&self) -> Option<std::sync::Arc<dyn std::any::Any + Send + Sync>> {
        None
    }
}

/// A client shared by several front ends (the workbench's chat, a batch run, a benchmark
/// and the server all on the one loaded model).
impl<T: GenerationClient + ?Sized> GenerationClient for std::sync::Arc<T> {
    fn model_name(&self) -> &str {
        (**self).model_name()
    }
    fn context_length(&self) -> Option<usize> {
        (**self).context_length()
    }
    fn vocab_size(&self) -> Option<usize> {
        (**self).vocab_size()
    }
    fn vocab_listed(&self) -> bool {
        (**self).vocab_listed()
    }
    fn chat_template(&self) -> Option<&str> {
        (**self).chat_template()
    }
    fn notes(&self) -> Vec<String> {
        (**self).notes()
    }
    fn generate(&self, req: GenerateRequest) -> Generation {
        (**self).generate(req)
    }
    fn hold(&self) -> Option<std::sync::Arc<dyn std::any::Any + Send + Sync>> {
        (**self).hold()
    }
}
