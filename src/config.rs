//! Layered configuration: built-in defaults (`config.toml` at the crate root, compiled in)
//! < user file < `LMWB_*` environment < command-line flags (applied by the caller).

use crate::engine::sampler::SamplingParams;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use toml::{Table, Value};

const DEFAULTS: &str = include_str!("../config.toml");

/// The `[sampling]` table: sampling parameters plus the request limits.
/// (Unknown keys are caught by `check_keys` against the built-in file, with the file name.)
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct SamplingDefaults {
    #[serde(flatten)]
    pub params: SamplingParams,
    pub max_tokens: usize,
    pub max_kv_size: usize,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub models_dir: String,
    pub extra_model_dirs: Vec<String>,
    pub default_model: String,
    /// The embedding model `lmwb serve` loads (`none`: no embeddings).
    pub embedding_model: String,
    pub device: String,
    pub requantize: bool,
    pub runs_dir: String,
    pub log_level: String,
    pub prefill_chunk: usize,
    /// Most requests the engine decodes together (continuous batching).
    pub max_batch: usize,
    pub sampling: SamplingDefaults,
    /// `[server]`: how `lmwb serve` loads models on demand.
    pub server: ServerSettings,
    /// `[[backends]]`: remote servers `-m NAME/MODEL` reaches.
    pub backends: Vec<crate::client::backend::BackendConfig>,
    /// `[registry]`: which other tools' model stores the registry reads.
    pub registry: RegistrySettings,
    /// Action name → key names (see `[keymap]` in config.toml).
    pub keymap: std::collections::BTreeMap<String, KeyList>,
}

/// The `[server]` table.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub max_models: usize,
    pub memory_budget: String,
    pub ttl: String,
}

/// The `[registry]` table: each other tool's model store on (read in place) or off.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RegistrySettings {
    pub huggingface: bool,
    pub lmstudio: bool,
    pub ollama: bool,
}

/// One key name or several.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum KeyList {
    One(String),
    Many(Vec<String>),
}

impl KeyList {
    pub fn keys(&self) -> Vec<&str> {
        match self {
            KeyList::One(k) => vec![k.as_str()],
            KeyList::Many(ks) => ks.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(thiserror::Error, Debug)]
pub enum ConfigError {
    #[error("config file {path}: {why}")]
    File { path: PathBuf, why: String },
    #[error("environment variable {var}={value:?}: {why}")]
    Env {
        var: String,
        value: String,
        why: String,
    },
}

/// Expand a leading `~` to the home folder.
pub fn expand_home(p: &str) -> PathBuf {
    match p.strip_prefix("~") {
        Some(rest) => dirs::home_dir()
            .unwrap_or_default()
            .join(rest.trim_start_matches('/')),
        None => PathBuf::from(p),
    }
}

/// The default user config file, `~/.config/lmwb/config.toml`.
pub fn user_config_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("lmwb").join("config.toml"))
}

fn merge(base: &mut Table, over: Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Check a user table against the defaults: every key must exist there with the same shape.
fn check_keys(defaults: &Table, user: &Table, prefix: &str) -> Result<(), String> {
    for (k, v) in user {
        let full = format!("{prefix}{k}");
        match (defaults.get(k), v) {
            (None, _) => {
                let known: Vec<&str> = defaults.keys().map(String::as_str).collect();
                return Err(format!(
                    "unknown key `{full}`; known keys here: {}",
                    known.join(", ")
                ));
            }
            (Some(Value::Table(d)), Value::Table(u)) => check_keys(d, u, &format!("{full}."))?,
            _ => {}
        }
    }
    Ok(())
}

/// Parse an environment value as the type the default has.
fn env_value(default: &Value, raw: &str) -> Result<Value, String> {
    let bad = |what: &str| format!("expected {what}");
    Ok(match default {
        Value::String(_) => Value::String(raw.to_string()),
        Value::Integer(_) => Value::Integer(raw.trim().parse().map_err(|_| bad("a whole number"))?),
        Value::Float(_) => Value::Float(raw.trim().parse().map_err(|_| bad("a number"))?),
        Value::Boolean(_) => Value::Boolean(match raw.trim() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            _ => return Err(bad("true or false")),
        }),
        Value::Array(_) => Value::Array(
            raw.split(':')
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.into()))
                .collect(),
        ),
        other => {
            return Err(format!(
                "cannot be set from the environment ({})",
                other.type_str()
            ))
        }
    })
}

/// `LMWB_*` variables that name a config key, as a table to merge.
fn env_table(
    defaults: &Table,
    vars: impl Iterator<Item = (String, String)>,
) -> Result<Table, ConfigError> {
    let mut out = Table::new();
    for (var, raw) in vars {
        let Some(key) = var.strip_prefix("LMWB_").map(str::to_ascii_lowercase) else {
            continue;
        };
        if key == "backends" {
            return Err(ConfigError::Env {
                var,
                value: raw,
                why: "backends are tables: write them as [[backends]] in the config file".into(),
            });
        }
        let (table, field, default) = if let Some(d) = defaults.get(&key).filter(|v| !v.is_table())
        {
            (None, key.clone(), d)
        } else if let Some((sec, field)) = key.split_once('_') {
            match defaults
                .get(sec)
                .and_then(|s| s.as_table())
                .and_then(|t| t.get(field))
            {
                Some(d) => (Some(sec.to_string()), field.to_string(), d),
                None => continue,
            }
        } else {
            continue;
        };
        let value = env_value(default, &raw).map_err(|why| ConfigError::Env {
            var: var.clone(),
            value: raw.clone(),
            why,
        })?;
        match table {
            None => {
                out.insert(field, value);
            }
            Some(sec) => {
                out.entry(sec)
                    .or_insert_with(|| Value::Table(Table::new()))
                    .as_table_mut()
                    .expect("table")
                    .insert(field, value);
            }
        }
    }
    Ok(out)
}

impl Config {
    /// The built-in defaults alone.
    pub fn defaults() -> Config {
        toml::from_str(DEFAULTS).expect("the built-in config.toml is valid")
    }

    /// Defaults < `file` (or the user config file when it exists) < environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    pub fn load_from(
        file: Option<&Path>,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table: Table = DEFAULTS.parse().expect("the built-in config.toml is valid");
        let defaults = table.clone();
        let path = match file {
            Some(p) => Some(p.to_path_buf()),
            None => user_config_path().filter(|p| p.exists()),
        };
        if let Some(path) = path {
            let ferr = |why: String| ConfigError::File {
                path: path.clone(),
                why,
            };
            let text =
                std::fs::read_to_string(&path).map_err(|e| ferr(format!("cannot read it: {e}")))?;
            let user: Table = text
                .parse()
                .map_err(|e: toml::de::Error| ferr(e.to_string()))?;
            check_keys(&defaults, &user, "").map_err(ferr)?;
            merge(&mut table, user);
            // Types are checked here so the message names this file.
            let c = Config::deserialize(Value::Table(table.clone()))
                .map_err(|e| ferr(e.to_string()))?;
            crate::client::backend::check(&c.backends).map_err(ferr)?;
        }
        merge(&mut table, env_table(&defaults, env)?);
        Config::deserialize(Value::Table(table)).map_err(|e| ConfigError::Env {
            var: "LMWB_*".into(),
            value: String::new(),
            why: e.to_string(),
        })
    }

    /// The folder lmwb keeps its models in.
    pub fn models_dir(&self) -> PathBuf {
        if self.models_dir.is_empty() {
            dirs::cache_dir()
                .unwrap_or_else(|| PathBuf::from(".cache"))
                .join("lmwb")
                .join("models")
        } else {
            expand_home(&self.models_dir)
        }
    }

    /// Every folder scanned for models, the main one first.
    pub fn model_dirs(&self) -> Vec<PathBuf> {
        std::iter::once(self.models_dir())
            .chain(self.extra_model_dirs.iter().map(|d| expand_home(d)))
            .collect()
    }

    pub fn runs_dir(&self) -> PathBuf {
        expand_home(&self.runs_dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "device = \"cuda\"\n[sampling]\ntemperature = 0.1\ntop_k = 7\n",
        )
        .unwrap();
        let c = Config::load_from(
            Some(&f),
            env(&[("LMWB_SAMPLING_TOP_K", "3"), ("LMWB_UNRELATED", "x")]),
        )
        .unwrap();
        assert_eq!(c.device, "cuda");
        assert_eq!(c.sampling.params.temperature, 0.1);
        assert_eq!(c.sampling.params.top_k, 3);
        assert_eq!(
            c.sampling.params.top_p,
            Config::defaults().sampling.params.top_p
        );
    }

    #[test]
    fn unknown_key_names_key_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "[sampling]\ntemprature = 0.1\n").unwrap();
        let e = Config::load_from(Some(&f), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sampling.temprature") && e.contains("c.toml"),
            "{e}"
        );
    }

    #[test]
    fn wrong_type_and_bad_env_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "prefill_chunk = \"big\"\n").unwrap();
        let e = Config::load_from(Some(&f), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("c.toml") && e.contains("prefill_chunk"), "{e}");
        let e = Config::load_from(None, env(&[("LMWB_PREFILL_CHUNK", "lots")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("LMWB_PREFILL_CHUNK"), "{e}");
    }

    #[test]
    fn env_lists_split_on_colons() {
        let c = Config::load_from(None, env(&[("LMWB_EXTRA_MODEL_DIRS", "/a:/b")])).unwrap();
        assert_eq!(c.extra_model_dirs, ["/a", "/b"]);
    }
}
