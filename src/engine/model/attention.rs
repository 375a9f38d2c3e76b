//! Attention on the CPU, one query row at a time in a fixed order, so a token's result
//! does not depend on how many tokens were computed with it. That makes prefix reuse
//! exact: a prompt prefilled in one chunk or in several gives the same bits, and the same
//! seed gives the same text on a warm engine as on a cold one.
//!
//! Values are those of an F16 cache (see `round_f16` in llama.rs): the softmax weights
//! are rounded to F16 before they multiply V, as ggml does with an F16 cache.

use candle_core::{Result, Storage, Tensor};
use half::f16;
use rayon::prelude::*;

/// A `(heads, rows, dim)` f32 tensor's data without copying.
struct View<'a> {
    data: &'a [f32],
    offset: usize,
    s0: usize,
    s1: usize,
}

impl View<'_> {
    fn row(&self, h: usize, j: usize, dim: usize) -> &[f32] {
        let at = self.offset + h * self.s0 + j * self.s1;
        &self.data[at..at + dim]
    }
}

/// Dot product with eight accumulators in a fixed order.
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = a.len() / 8;
    for c in 0..chunks {
        for l in 0..8 {
            acc[l] += a[c * 8 + l] * b[c * 8 + l];
        }
    }
    let mut tail = 0f32;
    for i in chunks * 8..a.len() {
        tail += a[i] * b[i];
    }
    ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7])) + tail
}

/// `q (heads, n, dim)` contiguous; `k`, `v (kv_heads, total, dim)` (views of the cache).
/// New row i sees cache entries `0..visible(i)`. Returns `(n, heads * dim)`.
pub fn attend_cpu(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f32,
    visible: impl Fn(usize) -> usize + Sync,
) -> Result<Tensor> {
    let (nh, n, dim) = q.dims3()?;
    let (nkv, _total, _) = k.dims3()?;
    let rep = nh / nkv;
    let qs = q.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
    let (ks, kl) = k.storage_and_layout();
    let (vs, vl) = v.storage_and_layout();
    let (Storage::Cpu(kc), Storage::Cpu(vc)) = (&*ks, &*vs) else {
        candle_core::bail!("attend_cpu needs CPU tensors");
    };
    let kview = View {
        data: kc.as_slice::<f32>()?,
        offset: kl.start_offset(),
        s0: kl.stride()[0],
        s1: kl.stride()[1],
    };
    let vview = View {
        data: vc.as_slice::<f32>()?,
        offset: vl.start_offset(),
        s0: vl.stride()[0],
        s1: vl.stride()[1],
    };
    if kl.stride()[2] != 1 || vl.stride()[2] != 1 {
        candle_core::bail!("attend_cpu needs rows with unit stride");
    }
    let mut out = vec![0f32; n * nh * dim];
    out.par_chunks_mut(dim).enumerate().for_each(|(idx, o)| {
        let (i, h) = (idx / nh, idx % nh);
        let kvh = h / rep;
        let qrow = &qs[(h * n + i) * dim..(h * n + i + 1) * dim];
        let len = visible(i);
        let mut scores: Vec<f32> = (0..len)
            .map(|j| dot(qrow, kview.row(kvh, j, dim)) * scale)
            .collect();
        let max = scores.iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
        let mut sum = 0f32;
        for s in scores.iter_mut() {
            *s = (*s - max).exp();
            sum += *s;
        }
        let inv = 1.0 / sum;
        for (j, p) in scores.iter().enumerate() {
            let p = f16::from_f32(p * inv).to_f32();
            for (o, &x) in o.iter_mut().zip(vview.row(kvh, j, dim)) {
                *o += p * x;
            }
        }
    });
    Tensor::from_vec(out, (n, nh * dim), q.device())
}
