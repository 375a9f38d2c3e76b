//! The one-row flash attention of [`super::attention::flash_row_f16`] with AVX-512, for
//! head sizes that are multiples of 64: the same operations in the same order (so the
//! same bits), with each cache row converted once for all the query heads that share it.
//!
//! Per key, for each of the `G` query heads of one KV head: `s = dot_f16(q, k) · scale`
//! (ggml's `ggml_vec_dot_f16` on AVX-512: four 16-lane products per 64 values, fused into
//! four running sums across 64-value steps, those summed pairwise, then the 16-lane tree
//! reduction, the leftovers in f64), the online softmax with `expf`, and the V sum kept in
//! F16 (`acc = f16(fma(v, w, acc))`, rescaled by `f16(acc · ms)` on a new maximum).

use super::attention::F16Rows;
use std::arch::x86_64::*;


/// `_mm512_reduce_add_ps` as GCC expands it: halves, then quarters, then pairs.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
unsafe fn reduce16(x: __m512) -> f32 {
    let hi = _mm512_extractf32x8_ps::<1>(x);
    let lo = _mm512_castps512_ps256(x);
    let t3 = _mm256_add_ps(hi, lo);
    let t6 = _mm_add_ps(_mm256_extractf128_ps::<1>(t3), _mm256_castps256_ps128(t3));
    let t8 = _mm_add_ps(t6, _mm_movehl_ps(t6, t6));
    let t10 = _mm_add_ss(t8, _mm_movehdup_ps(t8));
    _mm_cvtss_f32(t10)
}

#[inline]
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
unsafe fn round16(x: __m512) -> __m512 {
    _mm512_cvtph_ps(_mm512_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(x))
}

#[inline]
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
unsafe fn load16(p: *const half::f16) -> __m512 {
    _mm512_cvtph_ps(_mm256_loadu_si256(p as *const __m256i))
}

/// Whether [`attend_group`] handles this head size (`NV = dim / 16`).
pub fn supports(dim: usize) -> bool {
    dim == 64 || dim == 128
}

/// `G` query heads against one KV head's first `len` cache rows. `q[g]` are the heads'
/// query rows (values already rounded to F16), `out[g]` their outputs; the head size is
/// `16 · NV`. Each output has the bits of [`super::attention::flash_row_f16`] for that head.
///
/// # Safety
/// The CPU must have AVX-512 F, AVX2, FMA and F16C; every `q[g]` and `out[g]` must hold
/// `16 · NV` values (a multiple of 64), and `k`, `v` `len` rows of them.
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
pub unsafe fn attend_group<const G: usize, const NV: usize>(
    q: [&[f32]; G],
    k: &F16Rows,
    v: &F16Rows,
    len: usize,
    scale: f32,
    out: [&mut [f32]; G],
) {
    debug_assert!(NV % 4 == 0 && q.iter().all(|q| q.len() == 16 * NV));
    let steps = NV / 4;
    let mut acc = [[_mm512_setzero_ps(); NV]; G];
    let mut m = [f32::NEG_INFINITY; G];
    let mut s_sum = [0f32; G];
    let mut kr = [_mm512_setzero_ps(); NV];
    let mut vr = [_mm512_setzero_ps(); NV];
    for j in 0..len {
        let kp = k.data.as_ptr().add(j * k.stride + k.offset);
        for (i, r) in kr.iter_mut().enumerate() {
            *r = load16(kp.add(16 * i));
        }
        let vp = v.data.as_ptr().add(j * v.stride + v.offset);
        for (i, r) in vr.iter_mut().enumerate() {
            *r = load16(vp.add(16 * i));
        }
        for g in 0..G {
            let qp = q[g].as_ptr();
            // ggml_vec_dot_f16: four running sums over the 64-value steps.
            let mut sum = [_mm512_setzero_ps(); 4];
            for st in 0..steps {
                for (a, s) in sum.iter_mut().enumerate() {
                    let i = 4 * st + a;
                    *s = _mm512_fmadd_ps(_mm512_loadu_ps(qp.add(16 * i)), kr[i], *s);
                }
            }
            let s01 = _mm512_add_ps(_mm512_add_ps(sum[0], sum[2]), _mm512_add_ps(sum[1], sum[3]));
            let s = reduce16(s01) * scale;
            let (mut ms, mut vs) = (1f32, 1f32);
            if s > m[g] {
                let old = m[g];
                m[g] = s;
                ms = (old - s).exp();
                let w = _mm512_set1_ps(ms);
                for a in acc[g].iter_mut() {
                    *a = round16(_mm512_mul_ps(*a, w));
                }
            } else {
                vs = (s - m[g]).exp();
            }
            let w = _mm512_set1_ps(vs);
            for (a, x) in acc[g].iter_mut().zip(&vr) {
                *a = round16(_mm512_fmadd_ps(*x, w, *a));
            }
            s_sum[g] = s_sum[g].mul_add(ms, vs);
        }
    }
    for (g, o) in out.into_iter().enumerate() {
        let inv = if s_sum[g] == 0.0 { 0.0 } else { 1.0 / s_sum[g] };
        let w = _mm512_set1_ps(inv);
        for (i, a) in acc[g].iter().enumerate() {
            _mm512_storeu_ps(o.as_mut_ptr().add(16 * i), _mm512_mul_ps(*a, w));
        }
    }
}
