//! `-m NAME`: a path, or a registry name (exact, then a unique prefix, then a unique
//! substring; a location's own name — the file stem in a configured folder, the Ollama name —
//! counts at each step after the entry names).

use super::registry::Entry;
use super::sources::Sources;
use std::path::PathBuf;

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

/// What `-m` named: the registry's name for it, where it loads from, and its entry.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub name: String,
    pub path: PathBuf,
    /// The registry entry (none: a path outside every source).
    pub entry: Option<Entry>,
}

/// A path's name when no source holds it: the file stem or folder name, lower-case.
pub fn path_name(path: &std::path::Path) -> String {
    if path.is_dir() {
        path.file_name()
    } else {
        path.file_stem()
    }
    .map(|s| s.to_string_lossy().to_lowercase())
    .unwrap_or_else(|| path.display().to_string())
}

/// A path, or a model name, to what it names.
pub fn lookup(spec: &str, sources: &Sources) -> Result<Resolved, ResolveError> {
    let as_path = crate::config::expand_home(spec);
    let entries = super::scan(sources);
    if as_path.exists() {
        let real = std::fs::canonicalize(&as_path).ok();
        let same = |p: &PathBuf| p == &as_path || std::fs::canonicalize(p).ok() == real;
        let entry = entries
            .into_iter()
            .find(|e| e.locations.iter().any(|l| same(&l.path)));
        return Ok(Resolved {
            name: entry
                .as_ref()
                .map(|e| e.name.clone())
                .unwrap_or_else(|| path_name(&as_path)),
            path: as_path,
            entry,
        });
    }
    let want = spec.to_lowercase();
    // Ollama's convention: a name without a tag means `:latest`.
    let tagged = (!want.contains(':')).then(|| format!("{want}:latest"));
    let exact = |n: &str| n == want || tagged.as_deref() == Some(n);
    let steps: [&dyn Fn(&str) -> bool; 3] =
        [&exact, &|n: &str| n.starts_with(&want), &|n: &str| {
            n.contains(&want)
        }];
    for step in steps {
        let by_name: Vec<&Entry> = entries.iter().filter(|e| step(&e.name)).collect();
        let matches = if by_name.is_empty() {
            entries.iter().filter(|e| e.aliases().any(step)).collect()
        } else {
            by_name
        };
        match matches.len() {
            0 => continue,
            1 => {
                let e = matches[0].clone();
                return Ok(Resolved {
                    name: e.name.clone(),
                    path: e.path.clone(),
                    entry: Some(e),
                });
            }
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
    if let Some(path) = super::offline::cached_model(spec) {
        let entry = entries
            .into_iter()
            .find(|e| e.locations.iter().any(|l| l.path == path));
        return Ok(Resolved {
            name: entry
                .as_ref()
                .map(|e| e.name.clone())
                .unwrap_or_else(|| spec.to_lowercase()),
            path,
            entry,
        });
    }
    // No name matched: an absolute or relative path, or a model file name, was meant as a
    // path (`org/repo` is a name: the HF cache's names hold slashes).
    let looks_like_path = as_path.is_absolute()
        || spec.starts_with('.')
        || spec.starts_with('~')
        || spec.contains('\\')
        || as_path.extension().is_some_and(|e| {
            e.eq_ignore_ascii_case("gguf") || e.eq_ignore_ascii_case("safetensors")
        });
    if looks_like_path {
        return Err(ResolveError::MissingFile(as_path));
    }
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
        dirs: sources.describe(),
        hint,
    })
}

/// A path, or a model name, to the path it loads from.
pub fn resolve(spec: &str, sources: &Sources) -> Result<PathBuf, ResolveError> {
    lookup(spec, sources).map(|r| r.path)
}
