//! Model loading: GGUF files and safetensors folders become a [`Llama`] plus its tokenizer,
//! chat template and a description ([`ModelInfo`]).

pub mod attention;
pub mod attention_tiled;
#[cfg(target_arch = "x86_64")]
mod attention_x86;
pub mod config;
mod cpu;
#[cfg(target_arch = "x86_64")]
mod expf_x86;
pub mod llama;
pub mod names;
pub mod norm;
pub mod quantize;
pub mod rope;
pub mod weights;

use crate::engine::error::{candle_msg, LoadError};
use crate::engine::tokenizer::Tokenizer;
use candle_core::quantized::gguf_file;
use candle_core::Device;
use config::ModelConfig;
pub use llama::{Llama, SeqStep};
use names::W;
use rope::{Rope, RopeStyle};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use weights::{GgufWeights, SafetensorsWeights, WeightSource};

/// How to load.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub device: Device,
    /// Requantize quant types that are slow on the CPU (Q4_1, Q5_x) to Q8_0.
    pub requantize: bool,
    /// Run Q4_0/Q4_1/Q8_0 weights on lmwb's own CPU kernels (else candle's).
    pub own_kernels: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            device: Device::Cpu,
            requantize: true,
            own_kernels: true,
        }
    }
}

/// What a model is for: generating text, or embedding it (`/v1/embeddings`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    #[default]
    Chat,
    Embedding,
}

/// What a model is, as `models list/show` and the stats report it.
#[derive(Clone, Debug, Serialize)]
pub struct ModelInfo {
    pub path: PathBuf,
    pub kind: ModelKind,
    pub format: &'static str,
    pub arch: String,
    /// Weight type as stored (e.g. `Q4_1`, `BF16`).
    pub quant: String,
    pub params: u64,
    pub size_bytes: u64,
    pub context_length: usize,
    pub has_chat_template: bool,
    /// What loading does beyond reading (requantization, dtype conversion).
    pub notes: Vec<String>,
    pub config: Option<ModelConfig>,
}

/// A model ready to run.
pub struct LoadedModel {
    pub model: Llama,
    pub tokenizer: Tokenizer,
    pub chat_template: Option<String>,
    pub info: ModelInfo,
}

enum Layout {
    Gguf(PathBuf),
    Safetensors { dir: PathBuf, files: Vec<PathBuf> },
}

fn layout(path: &Path) -> Result<Layout, LoadError> {
    if !path.exists() {
        return Err(LoadError::NotFound(path.into()));
    }
    let dir = if path.is_dir() {
        path.to_path_buf()
    } else if path.extension().is_some_and(|e| e == "safetensors") {
        path.parent().unwrap_or(Path::new(".")).to_path_buf()
    } else {
        return Ok(Layout::Gguf(path.into()));
    };
    let files = safetensors_files(&dir)?;
    Ok(Layout::Safetensors { dir, files })
}

/// The `.safetensors` files of a folder, sorted; none is an error.
pub(crate) fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| LoadError::Io {
            path: dir.into(),
            why: e.to_string(),
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(LoadError::Format {
            path: dir.into(),
            why: "the folder has no .safetensors files".into(),
        });
    }
    Ok(files)
}

fn read_text(path: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(path).map_err(|e| LoadError::Io {
        path: path.into(),
        why: e.to_string(),
    })
}

fn gguf_string(ct: &gguf_file::Content, key: &str) -> Option<String> {
    ct.metadata
        .get(key)
        .and_then(|v| v.to_string().ok())
        .cloned()
}

/// The weight type most of the 2-D tensors have.
fn main_quant(ct: &gguf_file::Content) -> String {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for t in ct.tensor_infos.values().filter(|t| t.shape.rank() == 2) {
        *counts.entry(format!("{:?}", t.ggml_dtype)).or_default() += t.shape.elem_count() as u64;
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(q, _)| q)
        .unwrap_or_else(|| "?".into())
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn gguf_info(path: &Path, ct: &gguf_file::Content, requantize: bool) -> ModelInfo {
    let quant = main_quant(ct);
    // What loading with the default options will do on the CPU, per weight type.
    let mut counts = BTreeMap::new();
    for t in ct.tensor_infos.values().filter(|t| t.shape.rank() == 2) {
        let plan = weights::cpu_path(t.ggml_dtype, requantize, true);
        *counts
            .entry((format!("{:?}", t.ggml_dtype), plan))
            .or_default() += 1;
    }
    let notes = weights::cpu_notes(&counts);
    let config = ModelConfig::from_gguf(ct).ok();
    ModelInfo {
        path: path.into(),
        kind: ModelKind::Chat,
        format: "gguf",
        arch: gguf_string(ct, "general.architecture").unwrap_or_else(|| "?".into()),
        quant,
        params: ct
            .tensor_infos
            .values()
            .map(|t| t.shape.elem_count() as u64)
            .sum(),
        size_bytes: file_size(path),
        context_length: config.as_ref().map(|c| c.context_length).unwrap_or(0),
        has_chat_template: ct.metadata.contains_key("tokenizer.chat_template"),
        notes,
        config,
    }
}

/// Describe a model from its headers only (no weights read).
pub fn inspect(path: &Path) -> Result<ModelInfo, LoadError> {
    match layout(path)? {
        Layout::Gguf(p) => {
            let mut f = std::fs::File::open(&p).map_err(|e| LoadError::Io {
                path: p.clone(),
                why: e.to_string(),
            })?;
            let ct = gguf_file::Content::read(&mut f).map_err(|e| weights::classify(&p, e))?;
            // Only a file lmwb can run is a model: an unknown architecture (or missing
            // hyper-parameters) fails here with the message loading it would give.
            ModelConfig::from_gguf(&ct).map_err(|e| LoadError::Config {
                path: p.clone(),
                why: e.to_string(),
            })?;
            Ok(gguf_info(&p, &ct, true))
        }
        Layout::Safetensors { dir, files } if crate::engine::embed::is_embedding_dir(&dir) => {
            embedding_info(&dir, &files)
        }
        Layout::Safetensors { dir, files } => {
            let cfg =
                ModelConfig::from_hf_json(&read_text(&dir.join("config.json"))?).map_err(|e| {
                    LoadError::Config {
                        path: dir.join("config.json"),
                        why: e.to_string(),
                    }
                })?;
            let st = SafetensorsWeights::open(&dir, &files, &Device::Cpu)?;
            let has_template = hf_chat_template(&dir)?.is_some();
            Ok(safetensors_info(&dir, &files, cfg, &st, has_template))
        }
    }
}

fn safetensors_info(
    dir: &Path,
    files: &[PathBuf],
    cfg: ModelConfig,
    st: &SafetensorsWeights,
    has_chat_template: bool,
) -> ModelInfo {
    let (params, dtype) = st.summary();
    ModelInfo {
        path: dir.into(),
        kind: ModelKind::Chat,
        format: "safetensors",
        arch: cfg.arch.name().into(),
        quant: dtype,
        params,
        size_bytes: files.iter().map(|f| file_size(f)).sum(),
        context_length: cfg.context_length,
        has_chat_template,
        notes: st.notes(),
        config: Some(cfg),
    }
}

/// An embedding model's description: its own `config.json` is a BERT one.
fn embedding_info(dir: &Path, files: &[PathBuf]) -> Result<ModelInfo, LoadError> {
    let spec = crate::engine::embed::EmbedSpec::read(dir)?;
    let (params, quant) = SafetensorsWeights::open(dir, files, &Device::Cpu)?.summary();
    Ok(ModelInfo {
        path: dir.into(),
        kind: ModelKind::Embedding,
        format: "safetensors",
        arch: "bert".into(),
        quant,
        params,
        size_bytes: files.iter().map(|f| file_size(f)).sum(),
        context_length: spec.max_tokens,
        has_chat_template: false,
        notes: vec![spec.summary()],
        config: None,
    })
}

/// Load a model with its tokenizer and chat template.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<LoadedModel, LoadError> {
    match layout(path)? {
        Layout::Gguf(p) => load_gguf(&p, opts),
        Layout::Safetensors { dir, files } => load_safetensors(&dir, &files, opts),
    }
}

fn load_gguf(path: &Path, opts: &LoadOptions) -> Result<LoadedModel, LoadError> {
    let mut src = GgufWeights::open(path, &opts.device, opts.requantize, opts.own_kernels)?;
    let cfg = ModelConfig::from_gguf(&src.content).map_err(|e| LoadError::Config {
        path: path.into(),
        why: e.to_string(),
    })?;
    let tokenizer = Tokenizer::from_gguf(&src.content).map_err(|e| LoadError::Tokenizer {
        path: path.into(),
        why: e.to_string(),
    })?;
    let chat_template = gguf_string(&src.content, "tokenizer.chat_template");
    // llama.cpp's converter permutes llama q/k rows for interleaved RoPE; qwen files keep halves.
    let style = if cfg.arch == config::Arch::Llama {
        RopeStyle::Interleaved
    } else {
        RopeStyle::Halves
    };
    let factors = if src.has("rope_freqs.weight") {
        Some(
            src.vector("rope_freqs.weight")?
                .to_vec1::<f32>()
                .map_err(|e| LoadError::Tensor {
                    path: path.into(),
                    why: format!("rope_freqs.weight: {}", candle_msg(&e)),
                })?,
        )
    } else {
        None
    };
    let rope = Rope::new(&cfg, style, factors);
    let model = Llama::load(cfg, &mut src, W::gguf, rope, &opts.device)?;
    let mut info = gguf_info(path, &src.content, false);
    info.notes = src.notes();
    Ok(LoadedModel {
        model,
        tokenizer,
        chat_template,
        info,
    })
}

/// The chat template of an HF folder: tokenizer_config.json or chat_template.jinja.
fn hf_chat_template(dir: &Path) -> Result<Option<String>, LoadError> {
    let jinja = dir.join("chat_template.jinja");
    if jinja.exists() {
        return Ok(Some(read_text(&jinja)?));
    }
    let tc = dir.join("tokenizer_config.json");
    if !tc.exists() {
        return Ok(None);
    }
    let v: serde_json::Value =
        serde_json::from_str(&read_text(&tc)?).map_err(|e| LoadError::Format {
            path: tc.clone(),
            why: e.to_string(),
        })?;
    Ok(match v.get("chat_template") {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Array(list)) => list
            .iter()
            .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
            .or(list.first())
            .and_then(|t| t.get("template"))
            .and_then(|t| t.as_str())
            .map(str::to_string),
        _ => None,
    })
}

/// EOS ids listed in generation_config.json (an id or a list of ids).
fn generation_eos(dir: &Path) -> Vec<u32> {
    let Ok(text) = std::fs::read_to_string(dir.join("generation_config.json")) else {
        return vec![];
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
        return vec![];
    };
    match v.get("eos_token_id") {
        Some(serde_json::Value::Number(n)) => {
            n.as_u64().map(|n| vec![n as u32]).unwrap_or_default()
        }
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|n| n.as_u64())
            .map(|n| n as u32)
            .collect(),
        _ => vec![],
    }
}

fn load_safetensors(
    dir: &Path,
    files: &[PathBuf],
    opts: &LoadOptions,
) -> Result<LoadedModel, LoadError> {
    if crate::engine::embed::is_embedding_dir(dir) {
        return Err(LoadError::EmbeddingModel(dir.into()));
    }
    let cfg_path = dir.join("config.json");
    if !cfg_path.exists() {
        return Err(LoadError::Format {
            path: dir.into(),
            why: "config.json is missing next to the safetensors".into(),
        });
    }
    let cfg = ModelConfig::from_hf_json(&read_text(&cfg_path)?).map_err(|e| LoadError::Config {
        path: cfg_path.clone(),
        why: e.to_string(),
    })?;
    let tok_path = dir.join("tokenizer.json");
    if !tok_path.exists() {
        return Err(LoadError::Tokenizer {
            path: dir.into(),
            why: "tokenizer.json is missing; put the model's tokenizer.json in the folder".into(),
        });
    }
    let tc = dir.join("tokenizer_config.json");
    let mut tokenizer = Tokenizer::from_files(&tok_path, tc.exists().then_some(tc.as_path()))
        .map_err(|e| LoadError::Tokenizer {
            path: tok_path.clone(),
            why: e.to_string(),
        })?;
    tokenizer.add_eos_ids(generation_eos(dir));
    let chat_template = hf_chat_template(dir)?;
    let mut src = SafetensorsWeights::open(dir, files, &opts.device)?;
    let rope = Rope::new(&cfg, RopeStyle::Halves, None);
    let model = Llama::load(cfg.clone(), &mut src, W::hf, rope, &opts.device)?;
    let info = safetensors_info(dir, files, cfg, &src, chat_template.is_some());
    Ok(LoadedModel {
        model,
        tokenizer,
        chat_template,
        info,
    })
}
