//! Rotary position embeddings: cos/sin tables computed for the positions a step needs.

use super::config::ModelConfig;
use candle_core::{Device, Result, Tensor};

/// How pairs of dimensions are rotated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeStyle {
    /// Adjacent pairs (x0,x1),(x2,x3)… — GGUF llama files, whose q/k rows were permuted
    /// by the converter.
    Interleaved,
    /// First half against second half (GPT-NeoX) — HF checkpoints, GGUF qwen2/qwen3.
    Halves,
}

pub struct Rope {
    inv_freq: Vec<f32>,
    pub style: RopeStyle,
}

impl Rope {
    /// Frequencies from the config, optionally divided by per-dimension factors
    /// (GGUF `rope_freqs.weight`).
    pub fn new(cfg: &ModelConfig, style: RopeStyle, freq_factors: Option<Vec<f32>>) -> Rope {
        let half = cfg.head_dim / 2;
        let mut inv_freq: Vec<f32> = (0..half)
            .map(|i| 1.0 / cfg.rope_theta.powf(2.0 * i as f32 / cfg.head_dim as f32))
            .collect();
        if let Some(f) = freq_factors.filter(|f| f.len() == half) {
            inv_freq.iter_mut().zip(f).for_each(|(x, f)| *x /= f);
        } else if let Some(s) = &cfg.llama3_rope {
            let low_wavelen = s.original_max_position_embeddings as f32 / s.low_freq_factor;
            let high_wavelen = s.original_max_position_embeddings as f32 / s.high_freq_factor;
            for x in inv_freq.iter_mut() {
                let wavelen = 2.0 * std::f32::consts::PI / *x;
                *x = if wavelen < high_wavelen {
                    *x
                } else if wavelen > low_wavelen {
                    *x / s.factor
                } else {
                    let smooth = (s.original_max_position_embeddings as f32 / wavelen
                        - s.low_freq_factor)
                        / (s.high_freq_factor - s.low_freq_factor);
                    (1.0 - smooth) * *x / s.factor + smooth * *x
                };
            }
        }
        Rope { inv_freq, style }
    }

    /// `(cos, sin)`, each `(n, head_dim / 2)`, for positions `start..start + n`.
    pub fn cos_sin(&self, start: usize, n: usize, device: &Device) -> Result<(Tensor, Tensor)> {
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(n * half);
        let mut sin = Vec::with_capacity(n * half);
        for p in start..start + n {
            for f in &self.inv_freq {
                let a = p as f32 * f;
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }
        Ok((
            Tensor::from_vec(cos, (n, half), device)?,
            Tensor::from_vec(sin, (n, half), device)?,
        ))
    }

    /// Rotate `x` of shape `(1, heads, n, head_dim)`.
    pub fn apply(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        match self.style {
            RopeStyle::Interleaved => candle_nn::rotary_emb::rope_i(x, cos, sin),
            RopeStyle::Halves => candle_nn::rotary_emb::rope(x, cos, sin),
        }
    }
}
