//! Our llama-family forward pass (llama, qwen2 with QKV bias, qwen3 with QK norm) over
//! candle tensors. The KV cache is ours ([`KvCache`]), so windowing and reuse are too.

use super::attention::attend_cpu;
use super::config::{Arch, ModelConfig};
use super::cpu::{CpuModel, Parts};
use super::names::W;
use super::norm::{rms_norm_ggml, swiglu_ggml};
use super::rope::Rope;
use super::weights::{Linear, Matrix, WeightSource};
use crate::engine::error::LoadError;
use crate::engine::kv::{causal_mask, KvCache};
use candle_core::{Device, Result, Tensor};
use candle_nn::ops::{silu, softmax_last_dim};

/// Round to F16 precision and back. The cache holds F16 values, as llama.cpp's default KV
/// cache does (stored as f32 for now); off the CPU, Q and the softmax weights are rounded
/// too, as ggml converts them to the cache's type.
fn round_f16(t: &Tensor) -> Result<Tensor> {
    t.to_dtype(candle_core::DType::F16)?
        .to_dtype(candle_core::DType::F32)
}

/// `silu(gate) · up`; on the CPU computed as ggml does (see [`swiglu_ggml`]).
fn swiglu(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    if !gate.device().is_cpu() {
        return silu(gate)? * up;
    }
    let g = gate.flatten_all()?.to_vec1::<f32>()?;
    let u = up.flatten_all()?.to_vec1::<f32>()?;
    let mut out = vec![0f32; g.len()];
    swiglu_ggml(&g, &u, &mut out);
    Tensor::from_vec(out, gate.shape(), gate.device())
}

/// RMS norm; on the CPU computed as ggml does (see [`rms_norm_ggml`]).
fn rms_norm(x: &Tensor, w: &Tensor, eps: f32) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return candle_nn::ops::rms_norm(x, w, eps);
    }
    let xs = x.flatten_all()?.to_vec1::<f32>()?;
    let ws = w.to_vec1::<f32>()?;
    let mut out = vec![0f32; xs.len()];
    rms_norm_ggml(&xs, &ws, eps, &mut out);
    Tensor::from_vec(out, x.shape(), x.device())
}

/// One sequence's part of a batched step (see [`Llama::forward_batch`]).
pub struct SeqStep<'a> {
    pub tokens: &'a [u32],
    pub cache: &'a mut KvCache,
}

struct Block {
    attn_norm: Tensor,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    q_norm: Option<Tensor>,
    k_norm: Option<Tensor>,
    ffn_norm: Tensor,
    gate: Linear,
    up: Linear,
    down: Linear,
}

/// The weights of a loaded model and its forward pass.
pub struct Llama {
    pub cfg: ModelConfig,
    embed: Matrix,
    blocks: Vec<Block>,
    norm: Tensor,
    lm_head: Linear,
    rope: Rope,
    device: Device,
    /// The plain-buffer CPU forward, when every matrix is on lmwb's kernels.
    cpu: Option<CpuModel>,
}

impl Llama {
    /// Build the model from a weight source; `name` maps a logical weight to a tensor name.
    pub fn load(
        cfg: ModelConfig,
        src: &mut dyn WeightSource,
        name: fn(W) -> String,
        rope: Rope,
        device: &Device,
    ) -> std::result::Result<Llama, LoadError> {
        let embed = src.matrix(&name(W::Embed))?;
        let mut blocks = Vec::with_capacity(cfg.n_layers);
        for i in 0..cfg.n_layers {
            let qk_norm = cfg.arch == Arch::Qwen3;
            blocks.push(Block {
                attn_norm: src.vector(&name(W::AttnNorm(i)))?,
                q: src.linear(&name(W::Q(i)))?,
                k: src.linear(&name(W::K(i)))?,
                v: src.linear(&name(W::V(i)))?,
                o: src.linear(&name(W::O(i)))?,
                q_norm: if qk_norm {
                    Some(src.vector(&name(W::QNorm(i)))?)
                } else {
                    None
                },
                k_norm: if qk_norm {
                    Some(src.vector(&name(W::KNorm(i)))?)
                } else {
                    None
                },
                ffn_norm: src.vector(&name(W::FfnNorm(i)))?,
                gate: src.linear(&name(W::Gate(i)))?,
                up: src.linear(&name(W::Up(i)))?,
                down: src.linear(&name(W::Down(i)))?,
            });
        }
        let norm = src.vector(&name(W::OutNorm))?;
        let lm_head = if src.has(&name(W::Output)) {
            src.linear(&name(W::Output))?
        } else if cfg.tie_word_embeddings {
            Linear {
                w: embed.clone(),
                b: None,
            } // tied embeddings
        } else {
            return Err(src.missing(&name(W::Output))); // config says untied
        };
        let cpu = if device.is_cpu() {
            let parts = Parts {
                blocks: blocks
                    .iter()
                    .map(|b| [&b.q, &b.k, &b.v, &b.o, &b.gate, &b.up, &b.down])
                    .collect(),
                norms: blocks
                    .iter()
                    .map(|b| {
                        (
                            &b.attn_norm,
                            &b.ffn_norm,
                            b.q_norm.as_ref(),
                            b.k_norm.as_ref(),
                        )
                    })
                    .collect(),
                norm: &norm,
                lm_head: &lm_head,
            };
            let dims = (
                cfg.n_heads,
                cfg.n_kv_heads,
                cfg.head_dim,
                cfg.hidden_size,
                cfg.rms_eps as f32,
            );
            CpuModel::build(parts, dims)
        } else {
            None
        };
        Ok(Llama {
            cfg,
            embed,
            blocks,
            norm,
            lm_head,
            rope,
            device: device.clone(),
            cpu,
        })
    }

    /// Whether steps run on the plain-buffer CPU forward (else on candle tensors).
    pub fn uses_cpu_path(&self) -> bool {
        self.cpu.is_some()
    }

    /// Run every later step on candle tensors instead (the two paths compute the same
    /// bits; tests compare them).
    pub fn drop_cpu_path(&mut self) {
        self.cpu = None;
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// One step for several sequences at once, each with its own cache: `steps[i].tokens`
    /// are appended to `steps[i].cache`; returns each sequence's last-token logits
    /// (`vocab` f32 values). Every sequence's result is bit-identical to running it alone
    /// with [`Self::forward`] (rows are computed independently, in a fixed order).
    pub fn forward_batch(&self, steps: &mut [SeqStep<'_>]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::new();
        self.forward_batch_into(steps, &mut out)?;
        let vocab = out.len() / steps.len().max(1);
        Ok(out.chunks_exact(vocab.max(1)).map(|l| l.to_vec()).collect())
    }

    /// [`Self::forward_batch`] into `logits` (`vocab` values per sequence, in order), a
    /// buffer the caller keeps: on the CPU path a decode step then allocates nothing.
    pub fn forward_batch_into(
        &self,
        steps: &mut [SeqStep<'_>],
        logits: &mut Vec<f32>,
    ) -> Result<()> {
        if steps.iter().any(|s| s.tokens.is_empty()) {
            candle_core::bail!("a forward step needs at least one token per sequence");
        }
        if let Some(cpu) = &self.cpu {
            let embed = |id: u32, row: &mut [f32]| -> Result<()> {
                match &self.embed {
                    Matrix::Ggml(w) => {
                        if id as usize >= w.dims().0 {
                            candle_core::bail!(
                                "token id {id} is outside the vocabulary of {}",
                                w.dims().0
                            );
                        }
                        w.dequantize_row(id as usize, row);
                    }
                    Matrix::Candle(_) => {
                        let t = self.embed.embedding(&Tensor::new(&[id], &self.device)?)?;
                        row.copy_from_slice(&t.flatten_all()?.to_vec1::<f32>()?);
                    }
                }
                Ok(())
            };
            return cpu.forward(steps, embed, &self.rope, logits);
        }
        logits.clear();
        for s in steps.iter_mut() {
            logits.extend(self.forward(s.tokens, s.cache)?.to_vec1::<f32>()?);
        }
        Ok(())
    }

    /// Run `tokens` through the model, appending to `cache`; returns the logits of the last
    /// token as a `(vocab,)` f32 tensor.
    pub fn forward(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Tensor> {
        if self.cpu.is_some() {
            let logits = self.forward_batch(&mut [SeqStep { tokens, cache }])?;
            let l = logits.into_iter().next().expect("one sequence, one result");
            let n = l.len();
            return Tensor::from_vec(l, n, &self.device);
        }
        let n = tokens.len();
        let view = cache.begin(n)?;
        let ids = Tensor::new(tokens, &self.device)?;
        let mut x = self.embed.embedding(&ids)?; // (n, hidden)
        let (cos, sin) = self.rope.cos_sin(cache.next_pos(), n, &self.device)?;
        let mask = if n > 1 {
            Some(causal_mask(view, &self.device)?)
        } else {
            None
        };
        for (i, block) in self.blocks.iter().enumerate() {
            x = self.block_forward(block, i, &x, &cos, &sin, mask.as_ref(), cache)?;
        }
        cache.commit(tokens);
        let last = x.narrow(0, n - 1, 1)?;
        let last = rms_norm(&last, &self.norm, self.cfg.rms_eps as f32)?;
        self.lm_head.forward(&last)?.squeeze(0)
    }

    #[allow(clippy::too_many_arguments)]
    fn block_forward(
        &self,
        b: &Block,
        layer: usize,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: Option<&Tensor>,
        cache: &mut KvCache,
    ) -> Result<Tensor> {
        let cfg = &self.cfg;
        let (n, _) = x.dims2()?;
        let (nh, nkv, hd) = (cfg.n_heads, cfg.n_kv_heads, cfg.head_dim);
        let eps = cfg.rms_eps as f32;

        let h = rms_norm(x, &b.attn_norm, eps)?;
        let q = b.q.forward(&h)?.reshape((n, nh, hd))?;
        let k = b.k.forward(&h)?.reshape((n, nkv, hd))?;
        let v = b.v.forward(&h)?.reshape((n, nkv, hd))?;
        let (q, k) = match (&b.q_norm, &b.k_norm) {
            (Some(qn), Some(kn)) => (
                rms_norm(&q.contiguous()?, qn, eps)?,
                rms_norm(&k.contiguous()?, kn, eps)?,
            ),
            _ => (q, k),
        };
        let q = self
            .rope
            .apply(&q.transpose(0, 1)?.contiguous()?.unsqueeze(0)?, cos, sin)?
            .squeeze(0)?;
        let k = self
            .rope
            .apply(&k.transpose(0, 1)?.contiguous()?.unsqueeze(0)?, cos, sin)?
            .squeeze(0)?;
        let v = v.transpose(0, 1)?.contiguous()?;
        // The cache holds F16 values as llama.cpp's default cache does (see `round_f16`).
        let (k, v) = (round_f16(&k)?, round_f16(&v)?);
        let (k_all, v_all) = cache.append(layer, &k, &v)?; // (nkv, total, hd)
        let total = k_all.dim(1)?;

        let scale = 1.0 / (hd as f64).sqrt();
        let y = if x.device().is_cpu() {
            // Row by row, batch-invariant (see attention.rs); row i sees the cached
            // entries before it and the new rows up to itself.
            attend_cpu(&q, &k_all, &v_all, scale as f32, |i| total - n + i + 1)?
        } else {
            // Grouped-query attention without copying K/V: the heads sharing a KV head
            // are stacked along the rows of one matmul.
            let rep = nh / nkv;
            let q = round_f16(&q.reshape((nkv, rep * n, hd))?)?;
            let att = (q.matmul(&k_all.t()?)? * scale)?;
            let att = match mask {
                Some(m) => att
                    .reshape((nkv, rep, n, total))?
                    .broadcast_add(m)?
                    .reshape((nkv, rep * n, total))?,
                None => att,
            };
            let att = round_f16(&softmax_last_dim(&att)?)?;
            att.matmul(&v_all)? // (nkv, rep*n, hd)
                .reshape((nh, n, hd))?
                .transpose(0, 1)?
                .reshape((n, nh * hd))?
        };
        let x = (x + b.o.forward(&y)?)?;

        let h = rms_norm(&x, &b.ffn_norm, eps)?;
        let y = b
            .down
            .forward(&swiglu(&b.gate.forward(&h)?, &b.up.forward(&h)?)?)?;
        x + y
    }

    pub fn vocab_size(&self) -> usize {
        self.cfg.vocab_size
    }
}
