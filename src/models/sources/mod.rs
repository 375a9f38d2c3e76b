//! Where models are on disk: the configured folders and the stores of other tools (the
//! Hugging Face cache, LM Studio, Ollama). Each source lists what it holds as [`Location`]s,
//! read in place; the registry ([`super::scan`]) merges them into entries.

pub mod folders;
pub mod hf_cache;
pub mod lmstudio;
pub mod ollama;

use crate::config::Config;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Which store a model was found in. The order is the registry's priority: a model in
/// several stores is named after the first one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Source {
    /// `models_dir` and `extra_model_dirs` of the config.
    #[serde(rename = "folder")]
    Folder,
    /// The Hugging Face hub cache (`models--ORG--NAME/snapshots/…`).
    #[serde(rename = "hf")]
    HuggingFace,
    /// LM Studio's models folders (`publisher/repo/file.gguf`).
    #[serde(rename = "lmstudio")]
    LmStudio,
    /// Ollama's store (manifests naming GGUF blobs).
    #[serde(rename = "ollama")]
    Ollama,
}

impl Source {
    /// The short name `models list` shows and `--json` writes.
    pub fn label(self) -> &'static str {
        match self {
            Source::Folder => "folder",
            Source::HuggingFace => "hf",
            Source::LmStudio => "lmstudio",
            Source::Ollama => "ollama",
        }
    }
}

/// One place a model is on disk, as its source found it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Location {
    pub source: Source,
    /// The name this source gives it (what `-m` takes for this location).
    pub name: String,
    /// What loads: a GGUF file (any file name), or a safetensors folder.
    pub path: PathBuf,
    /// The file the path leads to after symlinks (an HF blob), when that is another path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blob: Option<PathBuf>,
    /// Bytes of the weights (a folder: its `.safetensors` files together).
    pub size: u64,
    /// The sha256 the store names the file by (an HF LFS blob name, an Ollama digest):
    /// what its content must hash to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_sha256: Option<String>,
    /// The size the store recorded for the file (an Ollama manifest layer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_size: Option<u64>,
    /// Where in the store it comes from: `org/repo@commit` (HF), the manifest (Ollama).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// What the store holds beside it that lmwb does not use (an Ollama template layer …).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Location {
    /// A location at `path` with no store metadata; the size is read from disk.
    pub fn at(source: Source, name: String, path: PathBuf) -> Location {
        let size = weights_size(&path);
        let expected_sha256 = sha256_in_name(&path);
        Location {
            source,
            name,
            path,
            blob: None,
            size,
            expected_sha256,
            expected_size: None,
            origin: None,
            notes: vec![],
        }
    }

    /// True when this is a single file (GGUF), not a folder.
    pub fn is_file(&self) -> bool {
        self.path.is_file()
    }
}

/// Every place the registry looks, resolved from the config and the environment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sources {
    /// Configured folders, the main one first.
    pub folders: Vec<PathBuf>,
    /// Hugging Face hub caches (empty: the source is off).
    pub hf_hubs: Vec<PathBuf>,
    /// LM Studio models folders.
    pub lmstudio: Vec<PathBuf>,
    /// Ollama stores (each holding `manifests/` and `blobs/`).
    pub ollama: Vec<PathBuf>,
    /// Where computed sha256 sums are kept between runs (none: nothing is kept).
    pub hash_cache: Option<PathBuf>,
}

impl Sources {
    /// Only these folders, no other store, no hash cache (tests, tools).
    pub fn folders(dirs: impl IntoIterator<Item = PathBuf>) -> Sources {
        Sources {
            folders: dirs.into_iter().collect(),
            ..Sources::default()
        }
    }

    /// The config's folders and `[registry]` switches, the stores found through the
    /// process environment (`HOME`, `HF_HUB_CACHE`, `HF_HOME`, `OLLAMA_MODELS` …).
    pub fn from_config(cfg: &Config) -> Sources {
        Self::from_env(cfg, |k| std::env::var_os(k).filter(|v| !v.is_empty()))
    }

    /// [`Sources::from_config`] with the environment given as a lookup.
    pub fn from_env(cfg: &Config, env: impl Fn(&str) -> Option<std::ffi::OsString>) -> Sources {
        let home = env("HOME").map(PathBuf::from).or_else(dirs::home_dir);
        let home_join = |rel: &str| home.as_ref().map(|h| h.join(rel));
        let reg = &cfg.registry;
        let var = |k: &str| env(k).map(|v| v.to_string_lossy().into_owned());
        let hf_hubs = if !reg.huggingface {
            vec![]
        } else {
            // Where `lmwb models pull` writes (one rule, in hf_cache.rs); with the defaults,
            // also ~/.cache: huggingface_hub (Python) honours XDG_CACHE_HOME, hf-hub (Rust)
            // does not.
            let mut v: Vec<PathBuf> = Vec::new();
            if !super::hf_cache::cache_is_set(&var) {
                v.extend(home_join(".cache/huggingface/hub"));
            }
            v.push(super::hf_cache::hub_cache_dir(&var));
            v.dedup();
            v
        };
        let lmstudio = if reg.lmstudio {
            [".lmstudio/models", ".cache/lm-studio/models"]
                .iter()
                .filter_map(|r| home_join(r))
                .collect()
        } else {
            vec![]
        };
        let ollama = if !reg.ollama {
            vec![]
        } else if let Some(d) = env("OLLAMA_MODELS") {
            vec![PathBuf::from(d)]
        } else {
            home_join(".ollama/models").into_iter().collect()
        };
        let cache = env("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| home_join(".cache"));
        Sources {
            folders: cfg.model_dirs(),
            hf_hubs,
            lmstudio,
            ollama,
            hash_cache: cache.map(|c| c.join("lmwb").join("sha256.tsv")),
        }
    }

    /// The places looked in, for messages: `folders A, B; HF cache C; …`.
    pub fn describe(&self) -> String {
        let list = |v: &[PathBuf]| {
            v.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut parts = vec![];
        for (what, v) in [
            ("folders", &self.folders),
            ("Hugging Face cache", &self.hf_hubs),
            ("LM Studio", &self.lmstudio),
            ("Ollama", &self.ollama),
        ] {
            if !v.is_empty() {
                parts.push(format!("{what} {}", list(v)));
            }
        }
        if parts.is_empty() {
            "no folders (none configured)".into()
        } else {
            parts.join("; ")
        }
    }

    /// Every location of every source, in priority order (folders, HF, LM Studio, Ollama),
    /// each source's in a fixed order.
    pub fn locations(&self) -> Vec<Location> {
        let mut out = folders::scan(&self.folders);
        out.extend(hf_cache::scan(&self.hf_hubs));
        out.extend(lmstudio::scan(&self.lmstudio));
        out.extend(ollama::scan(&self.ollama));
        out
    }
}

/// A folder holding `config.json` and at least one `.safetensors` file.
pub fn is_safetensors_dir(dir: &Path) -> bool {
    dir.join("config.json").is_file() && !safetensors_in(dir).is_empty()
}

/// The `.safetensors` files of a folder, sorted.
pub fn safetensors_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors") && p.is_file())
        .collect();
    v.sort();
    v
}

/// Bytes of a GGUF file, or of a folder's `.safetensors` files.
pub fn weights_size(path: &Path) -> u64 {
    if path.is_dir() {
        safetensors_in(path)
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum()
    } else {
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }
}

/// True for a `.gguf` file name (any case).
pub fn is_gguf_name(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
}

/// 64 lower-case hex digits.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The sha256 a content-addressed file is named by: an HF LFS blob (`blobs/<64 hex>`) or an
/// Ollama blob (`blobs/sha256-<64 hex>`), seen as the file's own name, the name its link
/// points at, or the name at the end of its links.
pub fn sha256_in_name(path: &Path) -> Option<String> {
    if path.is_dir() {
        return None;
    }
    let hex_of = |p: &Path| -> Option<String> {
        let name = p.file_name()?.to_str()?;
        let hex = name.strip_prefix("sha256-").unwrap_or(name);
        is_sha256_hex(hex).then(|| hex.to_string())
    };
    hex_of(path)
        .or_else(|| std::fs::read_link(path).ok().and_then(|t| hex_of(&t)))
        .or_else(|| std::fs::canonicalize(path).ok().and_then(|r| hex_of(&r)))
}

/// Entries of a folder, sorted by name, hidden ones (`.x`) left out.
pub(crate) fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
        })
        .collect();
    v.sort();
    v
}

/// A path's file stem, lower-cased.
pub(crate) fn lower_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn environment_picks_the_stores() {
        let cfg = Config::defaults();
        let s = Sources::from_env(&cfg, env(&[("HOME", "/h")]));
        assert_eq!(s.hf_hubs, [PathBuf::from("/h/.cache/huggingface/hub")]);
        assert_eq!(
            s.lmstudio,
            [
                PathBuf::from("/h/.lmstudio/models"),
                PathBuf::from("/h/.cache/lm-studio/models")
            ]
        );
        assert_eq!(s.ollama, [PathBuf::from("/h/.ollama/models")]);
        assert_eq!(
            s.hash_cache,
            Some(PathBuf::from("/h/.cache/lmwb/sha256.tsv"))
        );

        let s = Sources::from_env(
            &cfg,
            env(&[("HOME", "/h"), ("HF_HOME", "/hf"), ("OLLAMA_MODELS", "/o")]),
        );
        assert_eq!(s.hf_hubs, [PathBuf::from("/hf/hub")]);
        assert_eq!(s.ollama, [PathBuf::from("/o")]);
        let s = Sources::from_env(
            &cfg,
            env(&[("HOME", "/h"), ("HF_HOME", "/hf"), ("HF_HUB_CACHE", "/c")]),
        );
        assert_eq!(s.hf_hubs, [PathBuf::from("/c")]);
    }

    #[test]
    fn registry_switches_turn_stores_off() {
        let mut cfg = Config::defaults();
        cfg.registry.huggingface = false;
        cfg.registry.lmstudio = false;
        cfg.registry.ollama = false;
        let s = Sources::from_env(&cfg, env(&[("HOME", "/h"), ("HF_HOME", "/hf")]));
        assert!(s.hf_hubs.is_empty() && s.lmstudio.is_empty() && s.ollama.is_empty());
        assert_eq!(s.folders, cfg.model_dirs());
    }

    #[test]
    fn hashes_in_names() {
        let d = tempfile::tempdir().unwrap();
        let hex = "ab".repeat(32);
        let a = d.path().join(&hex);
        let b = d.path().join(format!("sha256-{hex}"));
        let c = d.path().join("model.gguf");
        for p in [&a, &b, &c] {
            std::fs::write(p, b"x").unwrap();
        }
        assert_eq!(sha256_in_name(&a).as_deref(), Some(hex.as_str()));
        assert_eq!(sha256_in_name(&b).as_deref(), Some(hex.as_str()));
        assert_eq!(sha256_in_name(&c), None);
        assert!(!is_sha256_hex(&"AB".repeat(32)));
    }
}
