//! What `-m` names: a model on disk, or `BACKEND/MODEL` on a configured remote backend;
//! and the [`GenerationClient`] that runs it. Every front end opens models here, so local
//! and remote runs share everything past the transport.

use super::backend::BackendConfig;
use super::{GenerationClient, HttpClient, LocalClient};
use crate::config::Config;
use crate::engine::{EngineError, EngineHandle, EngineOptions};
use std::path::PathBuf;

/// A resolved `-m` value.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    Local {
        /// The registry's name for it (the file stem in a configured folder, the Ollama or
        /// HF name otherwise; a path outside every source: its stem).
        name: String,
        path: PathBuf,
    },
    Remote {
        backend: BackendConfig,
        /// The model's id on the backend (empty: its only model).
        model: String,
    },
}

/// The backend `spec` names, and the model after its `/`.
pub fn split_remote<'a>(
    spec: &'a str,
    backends: &'a [BackendConfig],
) -> Option<(&'a BackendConfig, &'a str)> {
    let (head, model) = spec.split_once('/')?;
    backends.iter().find(|b| b.name == head).map(|b| (b, model))
}

/// The registry's name for a model path outside every source: the file stem, or the
/// folder name, lower-case.
pub use crate::models::path_name as local_name;

impl Target {
    /// `spec` as `-m` takes it: an existing path, then `BACKEND/MODEL` for a configured
    /// backend, then a registry name.
    pub fn resolve(spec: &str, cfg: &Config) -> Result<Target, crate::models::ResolveError> {
        let as_path = crate::config::expand_home(spec);
        if !as_path.exists() {
            if let Some((b, model)) = split_remote(spec, &cfg.backends) {
                return Ok(Target::Remote {
                    backend: b.clone(),
                    model: model.to_string(),
                });
            }
        }
        let found = crate::models::lookup(spec, &crate::models::Sources::from_config(cfg))?;
        Ok(Target::Local {
            name: found.name,
            path: found.path,
        })
    }

    /// The name shown and used in file names: the registry name, or `BACKEND/MODEL`.
    pub fn name(&self) -> String {
        match self {
            Target::Local { name, .. } => name.clone(),
            Target::Remote { backend, model } => format!("{}/{model}", backend.name),
        }
    }

    /// Where it is: the model's path, or the backend's URL and model.
    pub fn location(&self) -> String {
        match self {
            Target::Local { path, .. } => path.display().to_string(),
            Target::Remote { backend, model } => format!("{} ({model})", backend.base()),
        }
    }

    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            Target::Local { path, .. } => Some(path),
            Target::Remote { .. } => None,
        }
    }

    /// How requests reach it: `in-process`, or `http <base url>`.
    pub fn transport(&self) -> String {
        match self {
            Target::Local { .. } => "in-process".into(),
            Target::Remote { backend, .. } => format!("http {}", backend.base()),
        }
    }

    /// Load the model (local) or connect to it (remote: the backend must answer and list it).
    pub fn open(&self, opts: EngineOptions) -> Result<Box<dyn GenerationClient>, EngineError> {
        Ok(match self {
            Target::Local { name, path } => Box::new(LocalClient::new(
                name.clone(),
                EngineHandle::load(path, opts)?,
            )),
            Target::Remote { backend, model } => Box::new(HttpClient::connect(backend, model)?),
        })
    }
}
