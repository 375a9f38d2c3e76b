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

use super::attention_tiled::{flash_tiled_row, tiled};
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

/// ggml's `ggml_vec_dot_f16` as its AVX-512 build computes it: per 64-value step four
/// 16-lane running sums of fused products, those combined pairwise and reduced as
/// `_mm512_reduce_add_ps` does, then the leftover values added in f64. Inputs are F16
/// values.
#[inline]
pub(super) fn dot_f16(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let np = n / 64 * 64;
    let mut sum = [[0f32; 16]; 4];
    for st in (0..np).step_by(64) {
        for (j, sj) in sum.iter_mut().enumerate() {
            for (l, s) in sj.iter_mut().enumerate() {
                let i = st + 16 * j + l;
                *s = a[i].mul_add(b[i], *s);
            }
        }
    }
    let mut s = [0f32; 16];
    for l in 0..16 {
        s[l] = (sum[0][l] + sum[2][l]) + (sum[1][l] + sum[3][l]);
    }
    let mut h = [0f32; 8];
    for l in 0..8 {
        h[l] = s[l] + s[l + 8];
    }
    let q = [h[0] + h[4], h[1] + h[5], h[2] + h[6], h[3] + h[7]];
    let mut r = ((q[0] + q[2]) + (q[1] + q[3])) as f64;
    for i in np..n {
        r += (a[i] * b[i]) as f64;
    }
    r as f32
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

#[cfg(target_arch = "x86_64")]
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

/// One query row as ggml's `flash_attn_ext_f16_one_chunk` computes it with an F16 cache
/// (`q` is rounded to F16 here, as ggml converts it to the cache's type); a row that sees
/// more than [`TILE`](super::attention_tiled::TILE) cache rows goes the tiled way
/// instead ([`flash_tiled_row`]).
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
    if tiled(len) {
        let key = |j: usize, r: &mut [f32]| r.copy_from_slice(k.row(kvh, j, dim));
        let val = |j: usize, r: &mut [f32]| r.copy_from_slice(v.row(kvh, j, dim));
        return flash_tiled_row(q, len, scale, key, val, out);
    }
    let q = &round_f16_row(q)[..dim];
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

/// A query row rounded to F16 precision (up to 256 values).
fn round_f16_row(q: &[f32]) -> [f32; 256] {
    let mut r = [0f32; 256];
    for (r, &x) in r.iter_mut().zip(q) {
        *r = f16::from_f32(x).to_f32();
    }
    r
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
    let q = &round_f16_row(q)[..dim];
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

/// The heads of one KV head (`q` and `out` hold `rep` rows of `dim` values, head after
/// head) over its first `len` cache rows: each head's output is [`flash_row_f16`]'s, bit
/// for bit. With AVX-512 the cache rows are converted once for up to four heads at a time
/// ([`super::attention_x86`]); `acc` is scratch for the other paths (`dim` values).
pub fn flash_group_f16(
    q: &[f32],
    k: &F16Rows,
    v: &F16Rows,
    (len, dim): (usize, usize),
    scale: f32,
    acc: &mut [f32],
    out: &mut [f32],
) {
    let tiles = tiled(len);
    #[cfg(target_arch = "x86_64")]
    if crate::engine::kernels::use_avx512() && super::attention_x86::supports(dim) {
        let rep = q.len() / dim;
        let mut h = 0;
        while h < rep {
            let g = (rep - h).min(4);
            let (qs, os) = (&q[h * dim..(h + g) * dim], &mut out[h * dim..(h + g) * dim]);
            // SAFETY: AVX-512 was detected at run time; rows hold `dim` = 16·NV values.
            unsafe { group_avx512(g, dim, tiles, qs, k, v, len, scale, os) };
            h += g;
        }
        return;
    }
    for (qh, oh) in q.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
        if tiles {
            let rows = |r: &F16Rows<'_>, j: usize, o: &mut [f32]| r.row_into(j, o);
            flash_tiled_row(
                qh,
                len,
                scale,
                |j, o| rows(k, j, o),
                |j, o| rows(v, j, o),
                oh,
            );
        } else {
            flash_row_f16(qh, k, v, len, scale, acc, oh);
        }
    }
}

/// [`super::attention_x86::attend_group`] for `g` heads (1–4) of size `dim` (64 or 128).
///
/// # Safety
/// As `attend_group`.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
unsafe fn group_avx512(
    g: usize,
    dim: usize,
    tiles: bool,
    q: &[f32],
    k: &F16Rows,
    v: &F16Rows,
    len: usize,
    scale: f32,
    out: &mut [f32],
) {
    use super::attention_x86::{attend_group, attend_tiled};
    macro_rules! run {
        ($g:literal, $nv:literal) => {{
            let qs: [&[f32]; $g] = std::array::from_fn(|i| &q[i * dim..(i + 1) * dim]);
            let mut it = out.chunks_exact_mut(dim);
            let os: [&mut [f32]; $g] = std::array::from_fn(|_| it.next().expect("g heads"));
            if tiles {
                attend_tiled::<$g, $nv>(qs, k, v, len, scale, os)
            } else {
                attend_group::<$g, $nv>(qs, k, v, len, scale, os)
            }
        }};
    }
    match (g, dim) {
        (1, 64) => run!(1, 4),
        (2, 64) => run!(2, 4),
        (3, 64) => run!(3, 4),
        (4, 64) => run!(4, 4),
        (1, _) => run!(1, 8),
        (2, _) => run!(2, 8),
        (3, _) => run!(3, 8),
        _ => run!(4, 8),
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn f16s(n: usize, rng: &mut rand::rngs::StdRng, amp: f32) -> Vec<f16> {
        (0..n)
            .map(|_| f16::from_f32(rng.random_range(-amp..amp)))
            .collect()
    }

    /// The grouped kernel (AVX-512 where the CPU has it) gives every head the bits of the
    /// portable reference — the one-row path up to 64 cache rows, the tiled one past
    /// that — for head sizes 64 and 128 (the kernel's), 96 (the fallback), 1 to 7 heads
    /// per KV head and cache lengths from 1 to 300 (tile edges included).
    #[test]
    fn grouped_attention_equals_the_one_row_reference() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for dim in [64, 96, 128] {
            for rep in 1..=7 {
                let nkv = 2;
                let stride = nkv * dim;
                let total = 300;
                // Large keys give peaked softmaxes (many new maxima), small ones flat ones.
                let amp = if rep % 2 == 0 { 4.0 } else { 0.5 };
                let kc = f16s(total * stride, &mut rng, amp);
                let vc = f16s(total * stride, &mut rng, 1.0);
                let q: Vec<f32> = (0..rep * dim)
                    .map(|_| rng.random_range(-1.0f32..1.0))
                    .collect();
                for len in [1, 7, 64, 65, 128, 129, 300] {
                    let g = 1;
                    let rows = |data| F16Rows {
                        data,
                        stride,
                        offset: g * dim,
                    };
                    let scale = 1.0 / (dim as f32).sqrt();
                    let mut acc = vec![0f32; dim];
                    let mut got = vec![0f32; rep * dim];
                    flash_group_f16(
                        &q,
                        &rows(&kc),
                        &rows(&vc),
                        (len, dim),
                        scale,
                        &mut acc,
                        &mut got,
                    );
                    for h in 0..rep {
                        let mut want = vec![0f32; dim];
                        let qh = &q[h * dim..(h + 1) * dim];
                        let (kr, vr) = (rows(&kc), rows(&vc));
                        if tiled(len) {
                            flash_tiled_row(
                                qh,
                                len,
                                scale,
                                |j, o| kr.row_into(j, o),
                                |j, o| vr.row_into(j, o),
                                &mut want,
                            );
                        } else {
                            flash_row_f16(qh, &kr, &vr, len, scale, &mut acc, &mut want);
                        }
                        let gh = &got[h * dim..(h + 1) * dim];
                        for (d, (a, b)) in gh.iter().zip(&want).enumerate() {
                            assert_eq!(
                                a.to_bits(),
                                b.to_bits(),
                                "dim {dim} rep {rep} len {len} head {h} [{d}]: {a} vs {b}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// ggml's F16 dot product: for 64 values the four partial products are single
    /// roundings, and the result never depends on anything but the inputs' order.
    #[test]
    fn f16_dot_follows_ggml_steps() {
        let a: Vec<f32> = (0..64).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..64).map(|i| (i as f32 * 0.11).cos()).collect();
        let exact: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        assert!((dot_f16(&a, &b) as f64 - exact).abs() < 1e-5);
        // 80 values: one 64-value step, then 16 leftovers summed in f64.
        let a: Vec<f32> = (0..80).map(|i| i as f32).collect();
        let ones = vec![1f32; 80];
        assert_eq!(dot_f16(&a, &ones), (0..80).sum::<i32>() as f32);
    }
}
