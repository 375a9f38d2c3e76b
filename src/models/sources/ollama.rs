//! Ollama's store (`$OLLAMA_MODELS`, else `~/.ollama/models`): a manifest at
//! `manifests/<host>/<namespace>/<model>/<tag>` lists layers; the one of media type
//! `application/vnd.ollama.image.model` is a GGUF at `blobs/sha256-<hex>`, loaded from there.
//!
//! Named as Ollama names it: `model:tag` for the default registry's `library` namespace
//! (`llama3.2:1b`), `namespace/model:tag` for other namespaces, `host/namespace/model:tag`
//! for other hosts; lower-case. The digest is the blob's sha256.

use super::{is_sha256_hex, sorted_entries, Location, Source};
use serde::Deserialize;
use std::path::{Path, PathBuf};

const DEFAULT_HOST: &str = "registry.ollama.ai";
const MODEL_LAYER: &str = "application/vnd.ollama.image.model";

#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    layers: Vec<Layer>,
}

#[derive(Deserialize)]
struct Layer {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: Option<u64>,
}

/// The name Ollama shows for the manifest at `host/namespace/model/tag`.
pub fn display_name(host: &str, namespace: &str, model: &str, tag: &str) -> String {
    let name = if host == DEFAULT_HOST && namespace == "library" {
        format!("{model}:{tag}")
    } else if host == DEFAULT_HOST {
        format!("{namespace}/{model}:{tag}")
    } else {
        format!("{host}/{namespace}/{model}:{tag}")
    };
    name.to_lowercase()
}

/// The blob of a digest (`sha256:<hex>`), as Ollama stores it (`sha256-<hex>`; old stores
/// used `sha256:<hex>`).
fn blob_path(root: &Path, digest: &str) -> Option<(PathBuf, String)> {
    let hex = digest.strip_prefix("sha256:")?.to_ascii_lowercase();
    if !is_sha256_hex(&hex) {
        return None;
    }
    let blobs = root.join("blobs");
    [format!("sha256-{hex}"), format!("sha256:{hex}")]
        .into_iter()
        .map(|n| blobs.join(n))
        .find(|p| p.is_file())
        .map(|p| (p, hex))
}

/// What lmwb leaves aside of a layer it does not load.
fn layer_note(media_type: &str) -> Option<String> {
    let what = media_type.strip_prefix("application/vnd.ollama.image.")?;
    Some(match what {
        "model" => return None,
        "template" => {
            "Ollama's template layer (a Go template) is not used; the GGUF's own chat template is"
                .into()
        }
        "params" => "Ollama's parameters layer is not applied; pass sampling flags instead".into(),
        "system" => "Ollama's system prompt layer is not applied; pass --system instead".into(),
        "license" => return None,
        other => format!("Ollama's {other} layer is not used"),
    })
}

fn read_manifest(root: &Path, file: &Path, name: String, rel: String) -> Option<Location> {
    let text = std::fs::read_to_string(file).ok()?;
    let m: Manifest = match serde_json::from_str(&text) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(manifest = %file.display(), %e, "unreadable Ollama manifest skipped");
            return None;
        }
    };
    let layer = m.layers.iter().find(|l| l.media_type == MODEL_LAYER)?;
    let Some((blob, hex)) = blob_path(root, &layer.digest) else {
        tracing::warn!(manifest = %file.display(), digest = %layer.digest, "Ollama model blob missing");
        return None;
    };
    let mut loc = Location::at(Source::Ollama, name, blob);
    loc.expected_sha256 = Some(hex);
    loc.expected_size = layer.size;
    loc.origin = Some(rel);
    loc.notes = m
        .layers
        .iter()
        .filter_map(|l| layer_note(&l.media_type))
        .collect();
    Some(loc)
}

/// Every model of the Ollama stores `roots` (stores that do not exist are skipped).
pub fn scan(roots: &[PathBuf]) -> Vec<Location> {
    let mut out = Vec::new();
    let name_of = |p: &Path| {
        p.file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string()
    };
    for root in roots {
        let manifests = root.join("manifests");
        for host in sorted_entries(&manifests) {
            for ns in sorted_entries(&host) {
                for model in sorted_entries(&ns) {
                    for tag in sorted_entries(&model).into_iter().filter(|p| p.is_file()) {
                        let (h, n, m, t) =
                            (name_of(&host), name_of(&ns), name_of(&model), name_of(&tag));
                        let rel = format!("manifests/{h}/{n}/{m}/{t}");
                        let name = display_name(&h, &n, &m, &t);
                        if let Some(loc) = read_manifest(root, &tag, name, rel) {
                            out.push(loc);
                        }
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_drop_the_default_host_and_library() {
        assert_eq!(
            display_name(DEFAULT_HOST, "library", "llama3.2", "1b"),
            "llama3.2:1b"
        );
        assert_eq!(
            display_name(DEFAULT_HOST, "huihui_ai", "qwen3", "8b"),
            "huihui_ai/qwen3:8b"
        );
        assert_eq!(
            display_name("hf.co", "bartowski", "Llama-3.2-1B-GGUF", "Q4_K_M"),
            "hf.co/bartowski/llama-3.2-1b-gguf:q4_k_m"
        );
    }
}
