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
    /// `freq_base^(-2/head_dim)`: each pair's angle is the previous pair's times this.
    theta_scale: f32,
    /// Per-pair divisors of the angle (GGUF `rope_freqs.weight`, or Llama-3 scaling).
    factors: Vec<f32>,
    pub style: RopeStyle,
}

impl Rope {
    /// Frequencies from the config, optionally divided by per-pair factors
    /// (GGUF `rope_freqs.weight`).
    pub fn new(cfg: &ModelConfig, style: RopeStyle, freq_factors: Option<Vec<f32>>) -> Rope {
        let half = cfg.head_dim / 2;
        let theta_scale = cfg.rope_theta.powf(-2.0 / cfg.head_dim as f32);
        let factors = match (freq_factors.filter(|f| f.len() == half), &cfg.llama3_rope) {
            (Some(f), _) => f,
            (None, Some(s)) => {
                let low_wavelen = s.original_max_position_embeddings as f32 / s.low_freq_factor;
                let high_wavelen = s.original_max_position_embeddings as f32 / s.high_freq_factor;
                (0..half)
                    .map(|i| {
                        let f = theta_scale.powi(i as i32);
                        let wavelen = 2.0 * std::f32::consts::PI / f;
                        if wavelen < high_wavelen {
                            1.0
                        } else if wavelen > low_wavelen {
                            s.factor
                        } else {
                            let smooth = (s.original_max_position_embeddings as f32 / wavelen
                                - s.low_freq_factor)
                                / (s.high_freq_factor - s.low_freq_factor);
                            1.0 / ((1.0 - smooth) / s.factor + smooth)
                        }
                    })
                    .collect()
            }
            (None, None) => vec![1.0; half],
        };
        Rope {
            theta_scale,
            factors,
            style,
        }
    }

    /// `(cos, sin)`, each `(n, head_dim / 2)`, for positions `start..start + n`, computed
    /// as llama.cpp's rope cache does (angle multiplied pair by pair, in f32).
    pub fn cos_sin(&self, start: usize, n: usize, device: &Device) -> Result<(Tensor, Tensor)> {
        let half = self.factors.len();
        let mut cos = vec![0f32; n * half];
        let mut sin = vec![0f32; n * half];
        for (i, p) in (start..start + n).enumerate() {
            let r = i * half..(i + 1) * half;
            self.row(p, &mut cos[r.clone()], &mut sin[r]);
        }
        Ok((
            Tensor::from_vec(cos, (n, half), device)?,
            Tensor::from_vec(sin, (n, half), device)?,
        ))
    }

    /// Pairs per head (`head_dim / 2`).
    pub fn half(&self) -> usize {
        self.factors.len()
    }

    /// The cos and sin of position `pos`, one per pair.
    pub fn row(&self, pos: usize, cos: &mut [f32], sin: &mut [f32]) {
        let mut theta = pos as f32;
        for ((ff, c), s) in self.factors.iter().zip(cos).zip(sin) {
            let a = theta / ff;
            *c = a.cos();
            *s = a.sin();
            theta *= self.theta_scale;
        }
    }

    /// Rotate one head's vector in place (see [`Self::apply_cpu`] for the arithmetic).
    #[inline]
    pub fn rotate(&self, x: &mut [f32], cos: &[f32], sin: &[f32]) {
        rotate_pairs(x, cos, sin, self.style == RopeStyle::Interleaved);
    }

    /// Rotate `x` of shape `(1, heads, n, head_dim)`.
    pub fn apply(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        if x.device().is_cpu() {
            return self.apply_cpu(x, cos, sin);
        }
        match self.style {
            RopeStyle::Interleaved => candle_nn::rotary_emb::rope_i(x, cos, sin),
            RopeStyle::Halves => candle_nn::rotary_emb::rope(x, cos, sin),
        }
    }

    /// The rotation as llama.cpp's compiled `rotate_pairs` performs it (the compiler fuses
    /// each product pair into one FMA): `x0·cos − x1·sin` and `x0·sin + x1·cos`.
    fn apply_cpu(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        let (b, heads, n, dim) = x.dims4()?;
        let half = dim / 2;
        let xs = x.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        let (cs, ss) = (
            cos.flatten_all()?.to_vec1::<f32>()?,
            sin.flatten_all()?.to_vec1::<f32>()?,
        );
        let mut out = xs;
        for (row, x) in out.chunks_exact_mut(dim).enumerate() {
            let r = (row % n) * half..(row % n + 1) * half;
            self.rotate(x, &cs[r.clone()], &ss[r]);
        }
        Tensor::from_vec(out, (b, heads, n, dim), x.device())
    }
}

crate::engine::fast::fast_fn! {
    /// Rotate each pair (`2i, 2i+1` interleaved, else `i, i + half`) by its angle.
    fn rotate_pairs(x: &mut [f32], cos: &[f32], sin: &[f32], interleaved: bool) {
        let half = cos.len();
        for i in 0..half {
            let (c, s) = (cos[i], sin[i]);
            let (a, b) = if interleaved { (2 * i, 2 * i + 1) } else { (i, i + half) };
            let (x0, x1) = (x[a], x[b]);
            x[a] = x0.mul_add(c, -(x1 * s));
            x[b] = x0.mul_add(s, x1 * c);
        }
    }
}
