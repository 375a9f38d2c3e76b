//! Hyper-parameters of a llama-family model, read from GGUF metadata or an HF config.json.

use super::names::W;
use candle_core::quantized::gguf_file::{Content, Value};
use serde::Deserialize;

/// The architectures our forward pass implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// Llama 2/3, Mistral (no sliding window), SmolLM, TinyLlama.
    Llama,
    /// Qwen2 / Qwen2.5: biases on q, k and v.
    Qwen2,
    /// Qwen3: RMS norm on q and k per head, no biases.
    Qwen3,
}

impl Arch {
    /// Parse an architecture name as GGUF (`general.architecture`) or HF (`model_type`) spell it.
    pub fn parse(name: &str) -> Option<Arch> {
        match name.to_ascii_lowercase().as_str() {
            "llama" | "mistral" => Some(Arch::Llama),
            "qwen2" => Some(Arch::Qwen2),
            "qwen3" => Some(Arch::Qwen3),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
        }
    }
}

/// Llama-3 style RoPE frequency scaling (`rope_scaling.rope_type = "llama3"`).
#[derive(Clone, Debug, PartialEq, Deserialize, serde::Serialize)]
pub struct Llama3RopeScaling {
    pub factor: f32,
    pub low_freq_factor: f32,
    pub high_freq_factor: f32,
    pub original_max_position_embeddings: usize,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ModelConfig {
    pub arch: Arch,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub rope_theta: f32,
    pub rms_eps: f64,
    pub context_length: usize,
    pub llama3_rope: Option<Llama3RopeScaling>,
    /// Whether the output layer reuses the token embeddings when the checkpoint has no
    /// separate one. HF: config.json's `tie_word_embeddings` (absent counts as true). GGUF
    /// has no such key: a file ties exactly when it has no `output.weight`, as in llama.cpp.
    pub tie_word_embeddings: bool,
}

/// What was wrong with the hyper-parameters; the loader adds the file name.
#[derive(thiserror::Error, Debug)]
pub enum ConfigError {
    #[error("unknown architecture `{0}`: lmwb runs llama, mistral, qwen2 and qwen3 models")]
    UnknownArch(String),
    #[error("missing metadata key `{0}`")]
    Missing(String),
    #[error("metadata key `{key}` has a bad value: {why}")]
    Bad { key: String, why: String },
}

fn gguf_usize(ct: &Content, key: &str) -> Result<usize, ConfigError> {
    let v = ct
        .metadata
        .get(key)
        .ok_or_else(|| ConfigError::Missing(key.into()))?;
    let n = match v {
        Value::U8(x) => *x as u64,
        Value::U16(x) => *x as u64,
        Value::U32(x) => *x as u64,
        Value::U64(x) => *x,
        Value::I8(x) if *x >= 0 => *x as u64,
        Value::I16(x) if *x >= 0 => *x as u64,
        Value::I32(x) if *x >= 0 => *x as u64,
        Value::I64(x) if *x >= 0 => *x as u64,
        other => {
            return Err(ConfigError::Bad {
                key: key.into(),
                why: format!("expected a count, found {other:?}"),
            })
        }
    };
    Ok(n as usize)
}

fn gguf_f32(ct: &Content, key: &str) -> Option<f32> {
    ct.metadata.get(key).and_then(|v| v.to_f32().ok())
}

impl ModelConfig {
    /// Read the hyper-parameters from GGUF metadata (`{arch}.block_count` and friends).
    pub fn from_gguf(ct: &Content) -> Result<ModelConfig, ConfigError> {
        let arch_name = ct
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .ok_or_else(|| ConfigError::Missing("general.architecture".into()))?
            .clone();
        let arch = Arch::parse(&arch_name).ok_or(ConfigError::UnknownArch(arch_name.clone()))?;
        let key = |k: &str| format!("{arch_name}.{k}");
        let hidden_size = gguf_usize(ct, &key("embedding_length"))?;
        let n_heads = gguf_usize(ct, &key("attention.head_count"))?;
        let n_kv_heads = gguf_usize(ct, &key("attention.head_count_kv")).unwrap_or(n_heads);
        let head_dim = gguf_usize(ct, &key("attention.key_length"))
            .or_else(|_| gguf_usize(ct, &key("rope.dimension_count")))
            .unwrap_or(hidden_size / n_heads.max(1));
        let vocab_size = match gguf_usize(ct, &key("vocab_size")) {
            Ok(v) => v,
            Err(_) => ct
                .metadata
                .get("tokenizer.ggml.tokens")
                .and_then(|v| v.to_vec().ok())
                .map(|v| v.len())
                .ok_or_else(|| ConfigError::Missing(key("vocab_size")))?,
        };
        let cfg = ModelConfig {
            arch,
            vocab_size,
            hidden_size,
            intermediate_size: gguf_usize(ct, &key("feed_forward_length"))?,
            n_layers: gguf_usize(ct, &key("block_count"))?,
            n_heads,
            n_kv_heads,
            head_dim,
            rope_theta: gguf_f32(ct, &key("rope.freq_base")).unwrap_or(10_000.0),
            rms_eps: gguf_f32(ct, &key("attention.layer_norm_rms_epsilon")).unwrap_or(1e-5) as f64,
            context_length: gguf_usize(ct, &key("context_length")).unwrap_or(4096),
            llama3_rope: None,
            tie_word_embeddings: !ct.tensor_infos.contains_key(&W::Output.gguf()),
        };
        cfg.check()
    }

    /// Read the hyper-parameters from an HF `config.json`.
    pub fn from_hf_json(text: &str) -> Result<ModelConfig, ConfigError> {
        #[derive(Deserialize)]
        struct Hf {
            model_type: Option<String>,
            architectures: Option<Vec<String>>,
            vocab_size: usize,
            hidden_size: usize,
            intermediate_size: usize,
            num_hidden_layers: usize,
            num_attention_heads: usize,
            num_key_value_heads: Option<usize>,
            head_dim: Option<usize>,
            rope_theta: Option<f32>,
            rms_norm_eps: Option<f64>,
            max_position_embeddings: Option<usize>,
            rope_scaling: Option<serde_json::Value>,
            sliding_window: Option<serde_json::Value>,
            use_sliding_window: Option<bool>,
            tie_word_embeddings: Option<bool>,
        }
        let hf: Hf = serde_json::from_str(text).map_err(|e| ConfigError::Bad {
            key: "config.json".into(),
            why: e.to_string(),
        })?;
        let arch_name = hf
            .model_type
            .clone()
            .or_else(|| hf.architectures.as_ref().and_then(|a| a.first().cloned()))
            .ok_or_else(|| ConfigError::Missing("model_type".into()))?;
        let arch = Arch::parse(&arch_name)
            .or_else(|| {
                let a = arch_name.to_ascii_lowercase();
                ["qwen3", "qwen2", "llama", "mistral"]
                    .iter()
                    .find(|p| a.starts_with(*p))
                    .and_then(|p| Arch::parse(p))
            })
            .ok_or(ConfigError::UnknownArch(arch_name.clone()))?;
        if hf.use_sliding_window == Some(true) {
            return Err(ConfigError::Bad {
                key: "use_sliding_window".into(),
                why: "sliding-window attention is not supported yet".into(),
            });
        }
        let _ = hf.sliding_window;
        let llama3_rope = match &hf.rope_scaling {
            Some(v) if v.get("rope_type").and_then(|t| t.as_str()) == Some("llama3") => Some(
                serde_json::from_value::<Llama3RopeScaling>(v.clone()).map_err(|e| {
                    ConfigError::Bad {
                        key: "rope_scaling".into(),
                        why: e.to_string(),
                    }
                })?,
            ),
            Some(serde_json::Value::Null) | None => None,
            Some(v) => {
                return Err(ConfigError::Bad {
                    key: "rope_scaling".into(),
                    why: format!("unsupported RoPE scaling {v}; only `llama3` is implemented"),
                })
            }
        };
        let cfg = ModelConfig {
            arch,
            vocab_size: hf.vocab_size,
            hidden_size: hf.hidden_size,
            intermediate_size: hf.intermediate_size,
            n_layers: hf.num_hidden_layers,
            n_heads: hf.num_attention_heads,
            n_kv_heads: hf.num_key_value_heads.unwrap_or(hf.num_attention_heads),
            head_dim: hf
                .head_dim
                .unwrap_or(hf.hidden_size / hf.num_attention_heads.max(1)),
            rope_theta: hf.rope_theta.unwrap_or(10_000.0),
            rms_eps: hf.rms_norm_eps.unwrap_or(1e-6),
            context_length: hf.max_position_embeddings.unwrap_or(4096),
            llama3_rope,
            tie_word_embeddings: hf.tie_word_embeddings.unwrap_or(true),
        };
        cfg.check()
    }

    fn check(self) -> Result<ModelConfig, ConfigError> {
        let bad = |key: &str, why: &str| {
            Err(ConfigError::Bad {
                key: key.into(),
                why: why.into(),
            })
        };
        if self.n_heads == 0
            || self.n_kv_heads == 0
            || !self.n_heads.is_multiple_of(self.n_kv_heads)
        {
            return bad(
                "head_count_kv",
                "the number of heads must be a positive multiple of the KV heads",
            );
        }
        if self.head_dim == 0 || !self.head_dim.is_multiple_of(2) {
            return bad("head_dim", "the head dimension must be even and positive");
        }
        if self.n_layers == 0 || self.hidden_size == 0 || self.vocab_size == 0 {
            return bad(
                "block_count",
                "layers, hidden size and vocabulary must be positive",
            );
        }
        Ok(self)
    }
}
