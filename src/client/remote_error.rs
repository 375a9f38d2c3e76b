//! What can go wrong talking to a remote backend; each message names the backend and its
//! URL, and says what to do.

/// A remote backend's failure (wrapped in [`crate::engine::EngineError::Remote`]).
#[derive(thiserror::Error, Debug)]
pub enum RemoteError {
    #[error("cannot reach backend `{backend}` at {url}: {why}; is the server running there? (check base_url in its [[backends]] table)")]
    Unreachable {
        backend: String,
        url: String,
        why: String,
    },
    #[error("backend `{backend}` answered {status} to {url}: {message}{}", hint(*.status))]
    Status {
        backend: String,
        url: String,
        status: u16,
        message: String,
    },
    #[error("backend `{backend}` ({url}) did not answer like an {kind} API: {why}; check its base_url and kind in [[backends]]")]
    Garbage {
        backend: String,
        url: String,
        kind: &'static str,
        why: String,
    },
    #[error("backend `{backend}` reported an error during the generation: {message}")]
    Stream { backend: String, message: String },
    #[error("backend `{backend}`: the connection closed before the answer was complete ({why})")]
    Cut { backend: String, why: String },
    #[error("backend `{backend}` serves no model `{model}`; it serves: {available}")]
    NoModel {
        backend: String,
        model: String,
        available: String,
    },
    #[error("backend `{backend}`: {why}")]
    Refused { backend: String, why: String },
}

fn hint(status: u16) -> &'static str {
    match status {
        401 | 403 => " (the server wants an API key: set api_key_env in the backend's [[backends]] table and export that variable)",
        404 => " (is base_url right? OpenAI-compatible servers answer under /v1)",
        429 | 503 => " (the server is busy; try again, or lower the concurrency)",
        _ => "",
    }
}
