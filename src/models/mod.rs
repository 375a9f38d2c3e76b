//! The model registry: find models in the configured folders and resolve `-m NAME`.

mod meta;
pub use meta::metadata;
// `lmwb models pull` / `rm`: the Hugging Face cache, the hub, lmwb's download list.
pub mod downloaded;
pub mod hf_cache;
pub mod hub;
pub mod offline;
pub mod pick;
pub mod pull;
pub mod remove;

use crate::engine::model::{inspect, ModelInfo};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// A model found on disk.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    /// Lower-case file stem (GGUF) or folder name (safetensors): what `-m` takes.
    pub name: String,
    pub path: PathBuf,
}

#[derive(thiserror::Error, Debug)]
pub enum ResolveError {
    #[error("no model named `{name}` in {dirs}; {hint}")]
    NotFound {
        name: String,
        dirs: String,
        hint: String,
    },
    #[error("model file {0} does not exist: check the path, or run `lmwb models list` to see the models lmwb finds")]
    MissingFile(PathBuf),
    #[error("`{name}` matches several models: {matches}; give more of the name or a path")]
    Ambiguous { name: String, matches: String },
}

fn is_safetensors_dir(dir: &Path) -> bool {
    dir.join("config.json").is_file()
        && std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .any(|e| e.path().extension().is_some_and(|x| x == "safetensors"))
            })
            .unwrap_or(false)
}

fn scan_dir(dir: &Path, depth: usize, out: &mut Vec<Entry>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        let file_name = p
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if file_name.starts_with('.') {
            continue;
        }
        if p.is_file()
            && p.extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
        {
            let stem = p
                .file_stem()
                .map(|s| s.to_string_lossy().to_lowercase())
                .unwrap_or_default();
            out.push(Entry {
                name: stem,
                path: p,
            });
        } else if p.is_dir() {
            if is_safetensors_dir(&p) {
                out.push(Entry {
                    name: file_name.to_lowercase(),
                    path: p,
                });
            } else if depth > 0 {
                scan_dir(&p, depth - 1, out);
            }
        }
    }
}

/// Every model in `dirs` (folders that do not exist are skipped), names made unique.
pub fn scan(dirs: &[PathBuf]) -> Vec<Entry> {
    let mut out = Vec::new();
    for d in dirs {
        scan_dir(d, 2, &mut out);
    }
    // Same name in two places: qualify the later ones with their folder.
    let mut seen = std::collections::HashMap::<String, usize>::new();
    for e in out.iter_mut() {
        let n = seen.entry(e.name.clone()).or_default();
        *n += 1;
        if *n > 1 {
            let parent = e
                .path
                .parent()
                .and_then(|p| p.file_name())
                .map(|s| s.to_string_lossy().to_lowercase());
            e.name = format!("{}/{}", parent.unwrap_or_default(), e.name);
        }
    }
    out
}

/// A path, or a model name: exact, then a unique prefix, then a unique substring.
pub fn resolve(spec: &str, dirs: &[PathBuf]) -> Result<PathBuf, ResolveError> {
    let as_path = crate::config::expand_home(spec);
    if as_path.exists() {
        return Ok(as_path);
    }
    let entries = scan(dirs);
    let want = spec.to_lowercase();
    let pick = |pred: &dyn Fn(&Entry) -> bool| -> Vec<&Entry> {
        entries.iter().filter(|e| pred(e)).collect()
    };
    for matches in [
        pick(&|e| e.name == want),
        pick(&|e| e.name.starts_with(&want)),
        pick(&|e| e.name.contains(&want)),
    ] {
        match matches.len() {
            0 => continue,
            1 => return Ok(matches[0].path.clone()),
            _ => {
                return Err(ResolveError::Ambiguous {
                    name: spec.into(),
                    matches: matches
                        .iter()
                        .map(|e| e.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            }
        }
    }
    // `ORG/NAME[:FILE]`, as `lmwb models pull` prints it: pulled, or in the HF cache.
    if let Some(p) = offline::cached_model(spec) {
        return Ok(p);
    }
    // No name matched: a spec with a folder or a model extension was meant as a path.
    let looks_like_path = spec.contains(std::path::MAIN_SEPARATOR)
        || spec.contains('/')
        || as_path.extension().is_some_and(|e| {
            e.eq_ignore_ascii_case("gguf") || e.eq_ignore_ascii_case("safetensors")
        });
    if looks_like_path {
        return Err(ResolveError::MissingFile(as_path));
    }
    let dirs_s = dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let hint = if entries.is_empty() {
        "no models were found there: run `bash scripts/fetch-models.sh` for the default model, or give a path to a .gguf file".to_string()
    } else {
        format!(
            "models found: {}; run `lmwb models list`, or give a path",
            entries
                .iter()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Err(ResolveError::NotFound {
        name: spec.into(),
        dirs: dirs_s,
        hint,
    })
}

/// An entry with what its headers say (or why they could not be read).
pub fn describe(entry: &Entry) -> Result<ModelInfo, String> {
    inspect(&entry.path).map_err(|e| e.to_string())
}
