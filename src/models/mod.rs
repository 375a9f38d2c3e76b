//! The model registry: every model already on disk — the configured folders, the Hugging
//! Face cache, LM Studio, Ollama — read in place, never copied; `-m NAME` resolution; the
//! details `models show` prints, the memory fit estimate and `models verify`'s checks.

pub mod details;
pub mod fit;
pub mod hash;
mod meta;
pub mod registry;
mod resolve;
pub mod sources;
pub mod verify;

pub use meta::metadata;
// `lmwb models pull` / `rm`: the Hugging Face cache, the hub, lmwb's download list.
pub mod downloaded;
pub mod hf_cache;
pub mod hub;
pub mod offline;
pub mod pick;
pub mod pull;
pub mod remove;
pub use registry::Entry;
pub use resolve::{lookup, path_name, resolve, ResolveError, Resolved};
pub use sources::{Location, Source, Sources};

use crate::engine::model::{inspect, ModelInfo};

/// Every model the sources hold, one entry per model (duplicates merged), names unique.
pub fn scan(sources: &Sources) -> Vec<Entry> {
    let started = std::time::Instant::now();
    let mut cache = hash::HashCache::open(sources.hash_cache.as_deref());
    let entries = registry::merge(sources.locations(), &mut cache);
    if let Err(e) = cache.save() {
        tracing::warn!(%e, "the sha256 cache could not be written");
    }
    tracing::debug!(
        models = entries.len(),
        ms = started.elapsed().as_millis() as u64,
        "registry scanned"
    );
    entries
}

/// An entry with what its headers say (or why they could not be read).
pub fn describe(entry: &Entry) -> Result<ModelInfo, String> {
    inspect(&entry.path).map_err(|e| e.to_string())
}
