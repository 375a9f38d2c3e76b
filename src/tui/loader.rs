//! How the workbench finds and loads models, behind a trait so tests drive the App with
//! fake models and the binary with the real registry and engine.

use crate::client::backend::BackendConfig;
use crate::client::{Connection, GenerationClient, HttpClient, LocalClient, Target};
use crate::config::Config;
use crate::engine::model::{LoadOptions, ModelInfo};
use crate::engine::{parse_device, EngineHandle, EngineOptions};
use crate::models::fit::{self, FitEstimate, KvDtype};
use std::path::PathBuf;
use std::sync::Arc;

/// A model the registry found, with what its headers say.
#[derive(Clone, Debug)]
pub struct ModelRow {
    pub name: String,
    pub path: PathBuf,
    pub info: Result<ModelInfo, String>,
    /// Metadata lines for the detail panel.
    pub metadata: Vec<(String, String)>,
    /// A model on a remote backend (`name` is `BACKEND/MODEL`), loaded by connecting.
    pub remote: Option<Target>,
    /// Whether it fits in memory, estimated at scan time (as `lmwb models show` does).
    pub fit: Option<FitEstimate>,
}

pub trait ModelLoader: Send + Sync {
    /// Every model the registry finds (called off the UI thread).
    fn scan(&self) -> Vec<ModelRow>;
    /// Load one (called off the UI thread).
    fn load(&self, row: &ModelRow) -> Result<Arc<dyn GenerationClient>, String>;
    /// Open what `-m` resolved to: load a model on disk, or connect to a remote one (the
    /// Batch and Bench tabs; called off the UI thread).
    fn open(&self, target: &Target) -> Result<Arc<dyn GenerationClient>, String>;
}

impl ModelRow {
    /// What runs this row's model.
    pub fn target(&self) -> Target {
        self.remote.clone().unwrap_or_else(|| Target::Local {
            name: self.name.clone(),
            path: self.path.clone(),
        })
    }
}

/// The real registry and the in-process engine, and the configured remote backends.
pub struct EngineLoader {
    pub sources: crate::models::Sources,
    pub options: Result<EngineOptions, String>,
    pub backends: Vec<BackendConfig>,
    /// The context the memory estimate counts KV entries for (the configured KV window,
    /// else the model's context), and how the KV cache stores them.
    pub max_kv_size: usize,
    pub kv_dtype: KvDtype,
}

impl EngineLoader {
    pub fn from_config(cfg: &Config) -> EngineLoader {
        let options = parse_device(&cfg.device)
            .map(|device| EngineOptions {
                load: LoadOptions {
                    device,
                    requantize: cfg.requantize,
                    own_kernels: true,
                },
                prefill_chunk: cfg.prefill_chunk.max(1),
                max_batch: cfg.max_batch.max(1),
            })
            .map_err(|e| e.to_string());
        EngineLoader {
            sources: crate::models::Sources::from_config(cfg),
            options,
            backends: cfg.backends.clone(),
            max_kv_size: cfg.sampling.max_kv_size,
            kv_dtype: KvDtype::for_device(&cfg.device),
        }
    }
}

impl ModelLoader for EngineLoader {
    fn scan(&self) -> Vec<ModelRow> {
        let free = fit::available_memory();
        crate::models::scan(&self.sources)
            .into_iter()
            .map(|e| {
                let info = crate::models::describe(&e);
                let fit = info.as_ref().ok().map(|i| {
                    fit::estimate(
                        i,
                        fit::default_context(i, self.max_kv_size),
                        self.kv_dtype,
                        free,
                    )
                });
                ModelRow {
                    info,
                    metadata: crate::models::metadata(&e.path).unwrap_or_default(),
                    name: e.name,
                    path: e.path,
                    remote: None,
                    fit,
                }
            })
            .chain(self.backends.iter().flat_map(remote_rows))
            .collect()
    }

    fn load(&self, row: &ModelRow) -> Result<Arc<dyn GenerationClient>, String> {
        self.open(&row.target())
    }

    fn open(&self, target: &Target) -> Result<Arc<dyn GenerationClient>, String> {
        match target {
            Target::Remote { backend, model } => {
                let client = HttpClient::connect(backend, model).map_err(|e| e.to_string())?;
                Ok(Arc::new(client))
            }
            Target::Local { name, path } => {
                let opts = self.options.clone()?;
                let handle = EngineHandle::load(path, opts).map_err(|e| format!("{e:#}"))?;
                Ok(Arc::new(LocalClient::new(name.clone(), handle)))
            }
        }
    }
}

/// A backend's models as rows (`BACKEND/MODEL`), or one row saying why it cannot be listed.
fn remote_rows(b: &BackendConfig) -> Vec<ModelRow> {
    let url = PathBuf::from(b.base());
    let row = |name: String, info: Result<ModelInfo, String>, model: &str| ModelRow {
        name,
        path: url.clone(),
        info,
        metadata: vec![
            ("backend".into(), b.name.clone()),
            ("base_url".into(), b.base()),
            ("kind".into(), b.kind.as_str().into()),
        ],
        remote: Some(Target::Remote {
            backend: b.clone(),
            model: model.into(),
        }),
        fit: None,
    };
    match Connection::new(b).and_then(|c| c.models()) {
        Ok(models) => models
            .into_iter()
            .map(|m| {
                let info = ModelInfo {
                    path: url.clone(),
                    kind: Default::default(),
                    format: "remote",
                    arch: b.kind.as_str().into(),
                    quant: "?".into(),
                    params: 0,
                    size_bytes: 0,
                    context_length: m.context_length.unwrap_or(0),
                    has_chat_template: true,
                    notes: vec![format!("served by {}", b.base())],
                    config: None,
                };
                row(format!("{}/{}", b.name, m.id), Ok(info), &m.id)
            })
            .collect(),
        Err(e) => vec![row(format!("{}/", b.name), Err(e.to_string()), "")],
    }
}

/// Models that exist only in memory, for tests, benchmarks and demos: each row loads with
/// `make` (a fake client, or an error).
pub struct FakeLoader {
    pub rows: Vec<ModelRow>,
    #[allow(clippy::type_complexity)]
    pub make: Box<dyn Fn(&ModelRow) -> Result<Arc<dyn GenerationClient>, String> + Send + Sync>,
}

impl ModelRow {
    /// A row describing a made-up GGUF model.
    pub fn fake(name: &str, quant: &str, params: u64, context: usize) -> ModelRow {
        let path = PathBuf::from(format!("/models/{name}.gguf"));
        ModelRow {
            name: name.to_string(),
            path: path.clone(),
            info: Ok(ModelInfo {
                path,
                kind: Default::default(),
                format: "gguf",
                arch: "llama".into(),
                quant: quant.into(),
                params,
                size_bytes: params * 5 / 8,
                context_length: context,
                has_chat_template: true,
                notes: vec![],
                config: None,
            }),
            metadata: vec![
                ("general.architecture".into(), "\"llama\"".into()),
                ("llama.context_length".into(), context.to_string()),
            ],
            remote: None,
            fit: None,
        }
    }
}

impl ModelLoader for FakeLoader {
    fn scan(&self) -> Vec<ModelRow> {
        self.rows.clone()
    }

    fn load(&self, row: &ModelRow) -> Result<Arc<dyn GenerationClient>, String> {
        (self.make)(row)
    }

    /// The row of that name (or path), else a made-up row of that name.
    fn open(&self, target: &Target) -> Result<Arc<dyn GenerationClient>, String> {
        let name = target.name();
        let row = self
            .rows
            .iter()
            .find(|r| r.name == name || Some(r.path.as_path()) == target.path())
            .cloned()
            .unwrap_or_else(|| ModelRow::fake(&name, "Q4_0", 1_000_000, 2048));
        (self.make)(&row)
    }
}
