//! Attention on the CPU, one query row at a time in a fixed order, so a token's result
//! does not depend on how many tokens were computed with it. That makes prefix reuse
//! exact: a prompt prefilled in one chunk or in several gives the same bits, and the same
//! seed gives the same text on a warm engine as on a cold one.
//!
//! The arithmetic is that of llama.cpp's CPU flash attention over its default F16 KV
//! cache (`ggml_compute_forward_flash_attn_ext_f16_one_chunk`): Q rounded to F16, K·Q in
//! f32, an online softmax with `expf`, and the weighted sum of V accumulated in F16. With
//! it (and the other ggml-compatible pieces: kernels, norm, SwiGLU, RoPE) greedy outputs
//! equal llama.cpp's on the reference prompts.

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

/// ggml's `ggml_vec_dot_f16` on AVX-512 for 64-wide rows: four 16-lane partial sums,
/// combined pairwise, then a 16-lane tree reduction. Inputs are F16 values.
fn dot_f16(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != 64 {
        return dot(a, b);
    }
    let mut x = [[0f32; 16]; 4];
    for (j, xj) in x.iter_mut().enumerate() {
        for (l, v) in xj.iter_mut().enumerate() {
            *v = a[16 * j + l] * b[16 * j + l];
        }
    }
    let mut s = [0f32; 16];
    for l in 0..16 {
        s[l] = (x[0][l] + x[2][l]) + (x[1][l] + x[3][l]);
    }
    let mut h = [0f32; 8];
    for l in 0..8 {
        h[l] = s[l] + s[l + 8];
    }
    let q = [h[0] + h[4], h[1] + h[5], h[2] + h[6], h[3] + h[7]];
    (q[0] + q[2]) + (q[1] + q[3])
}

/// The F16 accumulator of the V sum, kept as f32 values that are exactly F16 numbers.
/// `mad`: acc = f16(fma(v, w, acc)); `scale`: acc = f16(acc · w) — ggml_vec_mad_f16 and
/// ggml_vec_scale_f16.
struct F16Acc;

impl F16Acc {
    #[inline]
    fn mad(acc: &mut [f32], v: &[f32], w: f32) {
        #[cfg(target_arch = "x86_64")]
        if fast() {
            // SAFETY: AVX2, FMA and F16C were detected at run time.
            return unsafe { x86::mad(acc, v, w) };
        }
        for (a, &x) in acc.iter_mut().zip(v) {
            *a = f16::from_f32(x.mul_add(w, *a)).to_f32();
        }
    }

    #[inline]
    fn scale(acc: &mut [f32], w: f32) {
        #[cfg(target_arch = "x86_64")]
        if fast() {
            // SAFETY: AVX2, FMA and F16C were detected at run time.
            return unsafe { x86::scale(acc, w) };
        }
        for a in acc.iter_mut() {
            *a = f16::from_f32(*a * w).to_f32();
        }
    }
}

fn fast() -> bool {
    crate::engine::kernels::avx2::available()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Round 8 lanes to F16 (nearest even) and back.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn round8(x: __m256) -> __m256 {
        _mm256_cvtph_ps(_mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(x))
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn widen(src: &[half::f16], out: &mut [f32]) {
        let n8 = out.len().min(src.len()) / 8 * 8;
        for i in (0..n8).step_by(8) {
            let h = _mm_loadu_si128(src.as_ptr().add(i) as *const __m128i);
            _mm256_storeu_ps(out.as_mut_ptr().add(i), _mm256_cvtph_ps(h));
        }
        for i in n8..out.len().min(src.len()) {
            out[i] = src[i].to_f32();
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn mad(acc: &mut [f32], v: &[f32], w: f32) {
        let wv = _mm256_set1_ps(w);
        let n8 = acc.len() / 8 * 8;
        for i in (0..n8).step_by(8) {
            let a = _mm256_loadu_ps(acc.as_ptr().add(i));
            let x = _mm256_loadu_ps(v.as_ptr().add(i));
            _mm256_storeu_ps(acc.as_mut_ptr().add(i), round8(_mm256_fmadd_ps(x, wv, a)));
        }
        for i in n8..acc.len() {
            acc[i] = half::f16::from_f32(v[i].mul_add(w, acc[i])).to_f32();
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn scale(acc: &mut [f32], w: f32) {
        let wv = _mm256_set1_ps(w);
        let n8 = acc.len() / 8 * 8;
        for i in (0..n8).step_by(8) {
            let a = _mm256_loadu_ps(acc.as_ptr().add(i));
            _mm256_storeu_ps(acc.as_mut_ptr().add(i), round8(_mm256_mul_ps(a, wv)));
        }
        for a in acc[n8..].iter_mut() {
            *a = half::f16::from_f32(*a * w).to_f32();
        }
    }
}

/// One query row as ggml's `flash_attn_ext_f16_one_chunk` computes it with an F16 cache.
#[allow(clippy::too_many_arguments)]
fn flash_row(
    q: &[f32],
    k: &View,
    v: &View,
    kvh: usize,
    len: usize,
    dim: usize,
    scale: f32,
    out: &mut [f32],
) {
    let mut acc = vec![0f32; dim];
    let (mut m, mut s_sum) = (f32::NEG_INFINITY, 0f32);
    for j in 0..len {
        let s = dot_f16(q, k.row(kvh, j, dim)) * scale;
        let (mut ms, mut vs) = (1f32, 1f32);
        if s > m {
            let old = m;
            m = s;
            ms = (old - m).exp();
            F16Acc::scale(&mut acc, ms);
        } else {
            vs = (s - m).exp();
        }
        F16Acc::mad(&mut acc, v.row(kvh, j, dim), vs);
        // ggml's C++ is compiled with FP contraction: S*ms + vs is one FMA.
        s_sum = s_sum.mul_add(ms, vs);
    }
    let inv = if s_sum == 0.0 { 0.0 } else { 1.0 / s_sum };
    for (o, a) in out.iter_mut().zip(&acc) {
        *o = a * inv;
    }
}

/// Where one KV head's rows sit in the CPU forward's F16 cache: row `j` starts at
/// `j * stride + offset`.
pub struct F16Rows<'a> {
    pub data: &'a [f16],
    pub stride: usize,
    pub offset: usize,
}

impl F16Rows<'_> {
    #[inline]
    fn row_into(&self, j: usize, out: &mut [f32]) {
        let at = j * self.stride + self.offset;
        f16_to_f32(&self.data[at..at + out.len()], out);
    }
}

/// F16 → f32 (exact), eight at a time with F16C where the CPU has it.
#[inline]
fn f16_to_f32(src: &[f16], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if fast() {
        // SAFETY: F16C was detected at run time.
        return unsafe { x86::widen(src, out) };
    }
    for (o, &h) in out.iter_mut().zip(src) {
        *o = h.to_f32();
    }
}

/// [`flash_row`] over the CPU forward's F16 cache (token-major rows): the same
/// arithmetic on the same F16 values, so the same bits.
#[allow(clippy::too_many_arguments)]
pub fn flash_row_f16(
    q: &[f32],
    k: &F16Rows,
    v: &F16Rows,
    len: usize,
    scale: f32,
    acc: &mut [f32],
    out: &mut [f32],
) {
    let dim = q.len();
    let mut kr = [0f32; 256];
    let mut vr = [0f32; 256];
    let (kr, vr) = (&mut kr[..dim], &mut vr[..dim]);
    acc.fill(0.0);
    let (mut m, mut s_sum) = (f32::NEG_INFINITY, 0f32);
    for j in 0..len {
        k.row_into(j, kr);
        let s = dot_f16(q, kr) * scale;
        let (mut ms, mut vs) = (1f32, 1f32);
        if s > m {
            let old = m;
            m = s;
            ms = (old - m).exp();
            F16Acc::scale(acc, ms);
        } else {
            vs = (s - m).exp();
        }
        v.row_into(j, vr);
        F16Acc::mad(acc, vr, vs);
        s_sum = s_sum.mul_add(ms, vs);
    }
    let inv = if s_sum == 0.0 { 0.0 } else { 1.0 / s_sum };
    for (o, a) in out.iter_mut().zip(acc.iter()) {
        *o = a * inv;
    }
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
        flash_row(qrow, &kview, &vview, kvh, len, dim, scale, o);
    });
    Tensor::from_vec(out, (n, nh * dim), q.device())
}
