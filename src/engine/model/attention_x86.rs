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
    let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(x)));
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

/// ggml_vec_dot_f16 of one query and one key row (`16 · NV` values): four running sums
/// over the 64-value steps, combined pairwise, then the 16-lane tree.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
unsafe fn dot16<const NV: usize>(q: &[__m512; NV], k: &[__m512; NV]) -> f32 {
    let mut sum = [_mm512_setzero_ps(); 4];
    for st in 0..NV / 4 {
        for (a, s) in sum.iter_mut().enumerate() {
            let i = 4 * st + a;
            *s = _mm512_fmadd_ps(q[i], k[i], *s);
        }
    }
    reduce16(_mm512_add_ps(
        _mm512_add_ps(sum[0], sum[2]),
        _mm512_add_ps(sum[1], sum[3]),
    ))
}

/// Cache row `j` of `rows` (`16 · NV` F16 values) as f32 vectors.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
unsafe fn load_row<const NV: usize>(rows: &F16Rows, j: usize, out: &mut [__m512; NV]) {
    let p = rows.data.as_ptr().add(j * rows.stride + rows.offset);
    for (i, r) in out.iter_mut().enumerate() {
        *r = load16(p.add(16 * i));
    }
}

/// The scores of keys `j0..j0 + n` for every head: `out[g][j] = dot(q[g], k_{j0+j}) · scale`.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
unsafe fn scores<const G: usize, const NV: usize, const B: usize>(
    q: &[[__m512; NV]; G],
    k: &F16Rows,
    (j0, n): (usize, usize),
    scale: f32,
    out: &mut [[f32; B]; G],
) {
    let mut row = [_mm512_setzero_ps(); NV];
    for j in 0..n {
        load_row(k, j0 + j, &mut row);
        for g in 0..G {
            out[g][j] = dot16::<NV>(&q[g], &row) * scale;
        }
    }
}

/// Each head's output: its accumulator divided by its softmax sum (0 for an empty sum).
#[inline]
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
unsafe fn finish<const G: usize, const NV: usize>(
    acc: &[[__m512; NV]; G],
    sums: [f32; G],
    out: [&mut [f32]; G],
) {
    for ((o, a), s) in out.into_iter().zip(acc).zip(sums) {
        let w = _mm512_set1_ps(if s == 0.0 { 0.0 } else { 1.0 / s });
        for (i, a) in a.iter().enumerate() {
            _mm512_storeu_ps(o.as_mut_ptr().add(16 * i), _mm512_mul_ps(*a, w));
        }
    }
}

/// Whether [`attend_group`] runs here and handles this head size (`NV = dim / 16`).
pub fn supports(dim: usize) -> bool {
    (dim == 64 || dim == 128) && super::expf_x86::available()
}

/// `G` query heads against one KV head's first `len` cache rows. `q[g]` are the heads'
/// query rows (rounded to F16 here, as ggml rounds them), `out[g]` their outputs; the head size is
/// `16 · NV`. Each output has the bits of [`super::attention::flash_row_f16`] for that head.
///
/// # Safety
/// The CPU must have AVX-512 F and DQ, AVX2, FMA and F16C; every `q[g]` and `out[g]` must hold
/// `16 · NV` values (a multiple of 64), and `k`, `v` `len` rows of them.
#[target_feature(enable = "avx512f,avx512dq,avx2,fma,f16c")]
pub unsafe fn attend_group<const G: usize, const NV: usize>(
    q: [&[f32]; G],
    k: &F16Rows,
    v: &F16Rows,
    len: usize,
    scale: f32,
    out: [&mut [f32]; G],
) {
    debug_assert!(NV % 4 == 0 && q.iter().all(|q| q.len() == 16 * NV));
    // Keys go in blocks of 16: their scores first, then the running maximum (a scalar
    // scan), then the sixteen `expf` of the online softmax in one vector, then the F16
    // accumulation key by key — the same operations as one key at a time.
    const B: usize = 16;
    let mut acc = [[_mm512_setzero_ps(); NV]; G];
    let mut m = [f32::NEG_INFINITY; G];
    let mut s_sum = [0f32; G];
    let mut row = [_mm512_setzero_ps(); NV];
    let mut score = [[0f32; B]; G];
    let mut args = [[0f32; B]; G];
    let mut new_max = [0u16; G];
    let mut e = [[0f32; B]; G];
    // The queries rounded to F16, as ggml converts them to the cache's type.
    let mut qr = [[_mm512_setzero_ps(); NV]; G];
    for (r, q) in qr.iter_mut().zip(&q) {
        for (i, r) in r.iter_mut().enumerate() {
            *r = round16(_mm512_loadu_ps(q.as_ptr().add(16 * i)));
        }
    }
    let mut j0 = 0;
    while j0 < len {
        let nb = B.min(len - j0);
        scores::<G, NV, B>(&qr, k, (j0, nb), scale, &mut score);
        for g in 0..G {
            let mut bits = 0u16;
            for jj in 0..nb {
                let s = score[g][jj];
                if s > m[g] {
                    args[g][jj] = m[g] - s;
                    m[g] = s;
                    bits |= 1 << jj;
                } else {
                    args[g][jj] = s - m[g];
                }
            }
            new_max[g] = bits;
            let x = _mm512_loadu_ps(args[g].as_ptr());
            _mm512_storeu_ps(e[g].as_mut_ptr(), super::expf_x86::expf16(x));
        }
        for jj in 0..nb {
            load_row(v, j0 + jj, &mut row);
            for g in 0..G {
                let (mut ms, mut vs) = (1f32, e[g][jj]);
                if new_max[g] & (1 << jj) != 0 {
                    (ms, vs) = (vs, 1.0);
                    let w = _mm512_set1_ps(ms);
                    for a in acc[g].iter_mut() {
                        *a = round16(_mm512_mul_ps(*a, w));
                    }
                }
                let w = _mm512_set1_ps(vs);
                for (a, x) in acc[g].iter_mut().zip(&row) {
                    *a = round16(_mm512_fmadd_ps(*x, w, *a));
                }
                s_sum[g] = s_sum[g].mul_add(ms, vs);
            }
        }
        j0 += nb;
    }
    finish(&acc, s_sum, out);
}

/// `G` query heads (unrounded f32 queries) against one KV head's first `len` cache rows,
/// on the tiled path: each output has the bits of
/// [`super::attention_tiled::flash_tiled_row`] for that head.
///
/// # Safety
/// As [`attend_group`].
#[target_feature(enable = "avx512f,avx512dq,avx2,fma,f16c")]
pub unsafe fn attend_tiled<const G: usize, const NV: usize>(
    q: [&[f32]; G],
    k: &F16Rows,
    v: &F16Rows,
    len: usize,
    scale: f32,
    out: [&mut [f32]; G],
) {
    use super::attention_tiled::TILE;
    debug_assert!(NV % 4 == 0 && q.iter().all(|q| q.len() == 16 * NV));
    let mut qv = [[_mm512_setzero_ps(); NV]; G];
    for (r, q) in qv.iter_mut().zip(&q) {
        for (i, r) in r.iter_mut().enumerate() {
            *r = _mm512_loadu_ps(q.as_ptr().add(16 * i));
        }
    }
    let mut acc = [[_mm512_setzero_ps(); NV]; G];
    let mut m = [f32::NEG_INFINITY; G];
    let mut s = [0f32; G];
    let mut kq = [[f32::NEG_INFINITY; TILE]; G];
    let mut row = [_mm512_setzero_ps(); NV];
    let mut t = 0;
    while t < len {
        let n = TILE.min(len - t);
        scores::<G, NV, TILE>(&qv, k, (t, n), scale, &mut kq);
        for g in 0..G {
            kq[g][n..].fill(f32::NEG_INFINITY);
            let p = kq[g].as_mut_ptr();
            let x = [0, 16, 32, 48].map(|o| _mm512_loadu_ps(p.add(o)));
            let mx = _mm512_max_ps(_mm512_max_ps(x[0], x[1]), _mm512_max_ps(x[2], x[3]));
            let tile_max = _mm512_reduce_max_ps(mx);
            let new = m[g].max(tile_max);
            if new > m[g] {
                let ms = (m[g] - new).exp();
                let w = _mm512_set1_ps(ms);
                for a in acc[g].iter_mut() {
                    *a = _mm512_mul_ps(*a, w);
                }
                s[g] *= ms;
            }
            m[g] = new;
            let nv = _mm512_set1_ps(new);
            let mut sum = 0f64;
            for (o, x) in [0, 16, 32, 48].into_iter().zip(x) {
                let e = super::norm::x86::v_expf(_mm512_sub_ps(x, nv));
                _mm512_storeu_ps(p.add(o), e);
                sum += reduce16(e) as f64;
            }
            s[g] = (s[g] as f64 + sum) as f32;
        }
        for j in 0..n {
            load_row(v, t + j, &mut row);
            for g in 0..G {
                let w = _mm512_set1_ps(kq[g][j]);
                for (a, x) in acc[g].iter_mut().zip(&row) {
                    *a = _mm512_fmadd_ps(*x, w, *a);
                }
            }
        }
        t += n;
    }
    finish(&acc, s, out);
}
