//! Will a model fit in memory? Weights plus the KV cache at a context length, against the
//! memory free now. `lmwb models show` prints it; the TUI shows the same before a load.
//!
//! Weights in memory: a GGUF runs its tensors as stored (the file's size); a safetensors
//! model is computed in F32 (4 bytes per parameter, whatever the file's dtype). The KV cache
//! holds keys and values for every layer and token of the context: F16 on the CPU (lmwb's own
//! forward stores them so), F32 on a GPU ([`KvDtype`]). On top, a fixed allowance for
//! activations, logits and the runtime ([`RUNTIME_BYTES`]).

use crate::engine::model::ModelInfo;
use serde::Serialize;

/// Activations, logits and the process itself, beyond weights and KV cache.
pub const RUNTIME_BYTES: u64 = 64 << 20;

/// Above this share of the free memory a fit is tight.
const TIGHT_SHARE: f64 = 0.8;

/// How the KV cache stores each value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KvDtype {
    F16,
    F32,
}

impl KvDtype {
    /// What the engine uses on `device` (a config / `--device` value: cpu, cuda:N, metal).
    pub fn for_device(device: &str) -> KvDtype {
        if device.trim().eq_ignore_ascii_case("cpu") {
            KvDtype::F16
        } else {
            KvDtype::F32
        }
    }

    pub fn bytes(self) -> u64 {
        match self {
            KvDtype::F16 => 2,
            KvDtype::F32 => 4,
        }
    }
}

/// What a load would take and what is free.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FitEstimate {
    /// Context length the KV cache is sized for.
    pub context: usize,
    pub kv_dtype: KvDtype,
    pub weights_bytes: u64,
    pub kv_bytes_per_token: u64,
    pub kv_bytes: u64,
    pub runtime_bytes: u64,
    /// weights + KV cache + runtime.
    pub total_bytes: u64,
    /// Memory free now (none: it could not be read).
    pub available_bytes: Option<u64>,
    pub verdict: Verdict,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Under 80% of the free memory.
    Fits,
    /// Between 80% and 100% of it: other programs may push it into swap.
    Tight,
    DoesNotFit,
    /// The free memory could not be read.
    Unknown,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Fits => "fits",
            Verdict::Tight => "tight",
            Verdict::DoesNotFit => "does not fit",
            Verdict::Unknown => "unknown (free memory not readable)",
        }
    }
}

/// Bytes of weights a loaded model holds.
pub fn weights_bytes(info: &ModelInfo) -> u64 {
    if info.format == "gguf" {
        info.size_bytes
    } else {
        info.params.saturating_mul(4)
    }
}

/// The context the estimate uses by default: the KV window (`max_kv_size`) when one is set
/// and smaller than the model's context, else the model's context.
pub fn default_context(info: &ModelInfo, max_kv_size: usize) -> usize {
    match (info.context_length, max_kv_size) {
        (0, w) => w,
        (c, 0) => c,
        (c, w) => c.min(w),
    }
}

/// Bytes of KV cache per token: keys and values of every layer.
pub fn kv_bytes_per_token(info: &ModelInfo, kv: KvDtype) -> u64 {
    info.config
        .as_ref()
        .map(|c| 2 * (c.n_layers * c.n_kv_heads * c.head_dim) as u64 * kv.bytes())
        .unwrap_or(0)
}

/// The estimate for `info` at `context` tokens, its KV cache in `kv`, against `available`
/// bytes.
pub fn estimate(
    info: &ModelInfo,
    context: usize,
    kv: KvDtype,
    available: Option<u64>,
) -> FitEstimate {
    let per_token = kv_bytes_per_token(info, kv);
    let weights = weights_bytes(info);
    let kv_bytes = per_token.saturating_mul(context as u64);
    let total = weights
        .saturating_add(kv_bytes)
        .saturating_add(RUNTIME_BYTES);
    let verdict = match available {
        None | Some(0) => Verdict::Unknown,
        Some(a) if (total as f64) <= a as f64 * TIGHT_SHARE => Verdict::Fits,
        Some(a) if total <= a => Verdict::Tight,
        Some(_) => Verdict::DoesNotFit,
    };
    FitEstimate {
        context,
        kv_dtype: kv,
        weights_bytes: weights,
        kv_bytes_per_token: per_token,
        kv_bytes,
        runtime_bytes: RUNTIME_BYTES,
        total_bytes: total,
        available_bytes: available.filter(|&a| a > 0),
        verdict,
    }
}

/// Memory free for a new load now (sysinfo's available memory), if it can be read.
pub fn available_memory() -> Option<u64> {
    let mut sys = sysinfo::System::new().ok()?;
    sys.refresh_memory();
    Some(sys.available_memory()).filter(|&b| b > 0)
}

/// [`estimate`] against the memory free now.
pub fn estimate_now(info: &ModelInfo, context: usize, kv: KvDtype) -> FitEstimate {
    estimate(info, context, kv, available_memory())
}

/// Bytes as `98 MB`, `1.2 GB`, `512 KB`.
pub fn human_size(bytes: u64) -> String {
    let mb = bytes as f64 / 1e6;
    if mb < 1.0 {
        format!("{:.0} KB", bytes as f64 / 1e3)
    } else if mb >= 1000.0 {
        format!("{:.1} GB", mb / 1000.0)
    } else {
        format!("{mb:.0} MB")
    }
}

impl FitEstimate {
    /// `memory:` line: weights + KV cache + runtime against the free memory, and the verdict.
    pub fn line(&self) -> String {
        let f = self;
        let free = match f.available_bytes {
            Some(a) => format!("{} free", human_size(a)),
            None => "free memory unknown".into(),
        };
        // An embedding model keeps no KV cache.
        let kv = if f.kv_bytes_per_token == 0 {
            String::new()
        } else {
            format!(
                " + {} KV cache ({:?}) at {} tokens",
                human_size(f.kv_bytes),
                f.kv_dtype,
                f.context
            )
        };
        format!(
            "{} weights{kv} + {} runtime = {}; {free}: {}",
            human_size(f.weights_bytes),
            human_size(f.runtime_bytes),
            human_size(f.total_bytes),
            f.verdict.label()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::config::ModelConfig;

    fn info(size: u64, context: usize) -> ModelInfo {
        let cfg = ModelConfig::from_hf_json(
            r#"{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":64,
            "intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,
            "num_key_value_heads":2,"rms_norm_eps":1e-5,"vocab_size":100,
            "max_position_embeddings":4096}"#,
        )
        .unwrap();
        ModelInfo {
            path: "m.gguf".into(),
            kind: Default::default(),
            format: "gguf",
            arch: "llama".into(),
            quant: "Q4_0".into(),
            params: 1000,
            size_bytes: size,
            context_length: context,
            has_chat_template: true,
            notes: vec![],
            config: Some(cfg),
        }
    }

    #[test]
    fn weights_plus_kv_against_free_memory() {
        let i = info(1 << 30, 4096);
        // 2 (K and V) × 2 layers × 2 KV heads × 16 head dim × 2 bytes (F16).
        let per = 2 * 2 * 2 * 16 * 2;
        let e = estimate(&i, 1000, KvDtype::F16, Some(8 << 30));
        assert_eq!(e.kv_bytes_per_token, per);
        assert_eq!(e.kv_bytes, per * 1000);
        assert_eq!(e.total_bytes, (1 << 30) + per * 1000 + RUNTIME_BYTES);
        assert_eq!(e.verdict, Verdict::Fits);
        let f32 = estimate(&i, 1000, KvDtype::F32, None);
        assert_eq!(f32.kv_bytes, 2 * e.kv_bytes, "F32 takes twice F16");
        let total = e.total_bytes;
        let at = |free| estimate(&i, 1000, KvDtype::F16, free).verdict;
        assert_eq!(at(Some(total + 1)), Verdict::Tight);
        assert_eq!(at(Some(total - 1)), Verdict::DoesNotFit);
        assert_eq!(at(None), Verdict::Unknown);
        assert_eq!(KvDtype::for_device("cpu"), KvDtype::F16);
        assert_eq!(KvDtype::for_device("cuda:0"), KvDtype::F32);
    }

    #[test]
    fn context_defaults_to_the_window_when_smaller() {
        let i = info(1, 4096);
        assert_eq!(default_context(&i, 0), 4096);
        assert_eq!(default_context(&i, 512), 512);
        assert_eq!(default_context(&i, 100_000), 4096);
        assert_eq!(default_context(&info(1, 0), 512), 512);
    }
}
