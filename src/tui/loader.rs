//! How the workbench finds and loads models, behind a trait so tests drive the App with
//! fake models and the binary with the real registry and engine.

use crate::client::{GenerationClient, LocalClient};
use crate::config::Config;
use crate::engine::model::{LoadOptions, ModelInfo};
use crate::engine::{parse_device, EngineHandle, EngineOptions};
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
}

pub trait ModelLoader: Send + Sync {
    /// Every model the registry finds (called off the UI thread).
    fn scan(&self) -> Vec<ModelRow>;
    /// Load one (called off the UI thread).
    fn load(&self, row: &ModelRow) -> Result<Arc<dyn GenerationClient>, String>;
}

/// The real registry and the in-process engine.
pub struct EngineLoader {
    pub sources: crate::models::Sources,
    pub options: Result<EngineOptions, String>,
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
        }
    }
}

impl ModelLoader for EngineLoader {
    fn scan(&self) -> Vec<ModelRow> {
        crate::models::scan(&self.sources)
            .into_iter()
            .map(|e| ModelRow {
                info: crate::models::describe(&e),
                metadata: crate::models::metadata(&e.path).unwrap_or_default(),
                name: e.name,
                path: e.path,
            })
            .collect()
    }

    fn load(&self, row: &ModelRow) -> Result<Arc<dyn GenerationClient>, String> {
        let opts = self.options.clone()?;
        let handle = EngineHandle::load(&row.path, opts).map_err(|e| format!("{e:#}"))?;
        Ok(Arc::new(LocalClient::new(row.name.clone(), handle)))
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
}
