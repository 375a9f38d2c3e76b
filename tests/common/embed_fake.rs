//! A deterministic fake embedding model behind the server's `EmbeddingClient` seam, and
//! the router serving it next to the fake chat model of `common/server.rs`.
//!
//! Include it after `server` with `#[path = "common/embed_fake.rs"] mod embed_fake;`.
#![allow(dead_code)]

use lmwb::engine::embed::{EmbedError, EmbedInput, EmbeddingClient, Embeddings};
use lmwb::server::{router, ServedEmbedder, ServedModel, ServerConfig, ServerState};
use std::sync::Arc;

pub const EMBED_MODEL: &str = "fake-embed";
pub const DIMS: usize = 4;
/// Tokens per input, `[CLS]` and `[SEP]` included.
pub const MAX_TOKENS: usize = 8;

/// Text becomes `[CLS] word… [SEP]` (ids 1, 10 + word length, 2); a vector is a function
/// of the ids, so equal inputs give equal vectors and different ones differ.
pub struct FakeEmbedder;

fn ids(input: &EmbedInput) -> Vec<u32> {
    match input {
        EmbedInput::Text(s) => std::iter::once(1)
            .chain(s.split_whitespace().map(|w| 10 + w.len() as u32))
            .chain(std::iter::once(2))
            .collect(),
        EmbedInput::Tokens(t) => t.clone(),
    }
}

pub fn vector_of(ids: &[u32]) -> Vec<f32> {
    (0..DIMS)
        .map(|d| {
            ids.iter()
                .enumerate()
                .map(|(i, &id)| ((id as usize * (d + 1) + i) % 7) as f32 - 3.0)
                .sum::<f32>()
                / 8.0
                + 0.125
        })
        .collect()
}

impl EmbeddingClient for FakeEmbedder {
    fn model_name(&self) -> &str {
        EMBED_MODEL
    }
    fn dims(&self) -> usize {
        DIMS
    }
    fn max_tokens(&self) -> usize {
        MAX_TOKENS
    }
    fn embed(&self, inputs: &[EmbedInput], truncate: bool) -> Result<Embeddings, EmbedError> {
        if inputs.is_empty() {
            return Err(EmbedError::NoInput);
        }
        let mut out = Embeddings {
            vectors: vec![],
            prompt_tokens: 0,
        };
        for (index, input) in inputs.iter().enumerate() {
            let mut t = ids(input);
            if t.len() > MAX_TOKENS {
                if !truncate {
                    return Err(EmbedError::TooLong {
                        index,
                        tokens: t.len(),
                        limit: MAX_TOKENS,
                    });
                }
                t.truncate(MAX_TOKENS);
            }
            if let Some(&id) = t.iter().find(|&&id| id >= 1000) {
                return Err(EmbedError::TokenOutOfRange {
                    index,
                    id,
                    vocab: 1000,
                });
            }
            out.prompt_tokens += t.len();
            out.vectors.push(vector_of(&t));
        }
        Ok(out)
    }
}

/// The server state with the fake chat model `chat` (id [`super::server::MODEL`]) and,
/// when `embedder`, the fake embedding model.
pub fn state_with(chat: Option<ServedModel>, embedder: bool) -> Arc<ServerState> {
    let state = ServerState::new(&ServerConfig::default(), chat.into_iter().collect());
    if embedder {
        state.add_embedder(ServedEmbedder {
            id: EMBED_MODEL.into(),
            embedder: Arc::new(FakeEmbedder),
            created: 1_700_000_000,
            info: None,
        });
    }
    Arc::new(state)
}

pub fn chat_model() -> ServedModel {
    ServedModel {
        id: super::server::MODEL.into(),
        client: super::server::fake(vec![]),
        created: 0,
        info: None,
    }
}

/// The router with the fake chat model and the fake embedder.
pub fn embed_app() -> axum::Router {
    router(state_with(Some(chat_model()), true))
}
