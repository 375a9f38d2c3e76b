//! Constrained decoding: the output must stay a valid prefix of a JSON value (any object for
//! `json_object`, or one a JSON Schema describes), checked byte by byte as tokens are picked.
//!
//! - [`grammar`]: what may be generated, as a small graph of [`Node`]s;
//! - [`json`]: a [`Recognizer`] fed bytes, cheap to clone, saying whether the bytes so far
//!   are a valid prefix, a complete value, or a dead end;
//! - [`schema`]: compiles the supported JSON Schema subset to a [`Grammar`], refusing any
//!   other keyword with its path.
//!
//! Whitespace between tokens of the JSON is bounded (a run is at most one newline then at
//! most [`json::MAX_WS_RUN`] spaces or tabs, and none before the top-level value), so a model
//! cannot loop on whitespace.

pub mod grammar;
pub mod json;
mod scan;
pub mod schema;
#[cfg(test)]
mod tests;

pub use grammar::{Grammar, Node, NodeId};
pub use json::Recognizer;
pub use schema::{compile, SchemaError};
use std::sync::Arc;

/// What a request's output must be.
#[derive(Clone, Debug, PartialEq)]
pub enum Constraint {
    /// Any JSON object (OpenAI's `json_object`, Ollama's `format: "json"`).
    Json,
    /// A value the compiled JSON Schema describes.
    Schema(Arc<Grammar>),
}

impl Constraint {
    /// A recognizer at the start of the output.
    pub fn recognizer(&self) -> Recognizer {
        match self {
            Constraint::Json => Recognizer::new(Arc::new(Grammar::json_object())),
            Constraint::Schema(g) => Recognizer::new(g.clone()),
        }
    }
}
