//! Activation quantization (Q8_0 / Q8_1 blocks) with AVX2, as llama.cpp's x86
//! `quantize_row_q8_0` / `quantize_row_q8_1` compute it: the same scale, the same
//! round-half-to-even and the same block sum, so the same bytes as the scalar code in
//! [`super::blocks`].

use super::blocks::{BlockQ8_0, BlockQ8_1, QK};
use half::f16;
use std::arch::x86_64::*;

/// One block: `(d, Σq)`, the 32 rounded values stored in `qs`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn block(x: &[f32], qs: &mut [i8; 32]) -> (f32, i32) {
    debug_assert!(x.len() >= QK);
    let p = x.as_ptr();
    let v = [0, 8, 16, 24].map(|i| _mm256_loadu_ps(p.add(i)));
    let sign = _mm256_set1_ps(-0.0);
    let mut amax = _mm256_andnot_ps(sign, v[0]);
    for w in &v[1..] {
        amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, *w));
    }
    let mut m4 = _mm_max_ps(_mm256_extractf128_ps(amax, 1), _mm256_castps256_ps128(amax));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    let amax = _mm_cvtss_f32(m4);
    let d = amax / 127.0;
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    let mul = _mm256_set1_ps(id);
    let i = v.map(|w| {
        _mm256_cvtps_epi32(_mm256_round_ps::<
            { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
        >(_mm256_mul_ps(w, mul)))
    });
    let s = _mm256_add_epi32(_mm256_add_epi32(i[0], i[1]), _mm256_add_epi32(i[2], i[3]));
    let s4 = _mm_add_epi32(_mm256_extracti128_si256(s, 1), _mm256_castsi256_si128(s));
    let s4 = _mm_add_epi32(s4, _mm_unpackhi_epi64(s4, s4));
    let s4 = _mm_add_epi32(s4, _mm_shuffle_epi32::<0b01>(s4));
    let sum = _mm_cvtsi128_si32(s4);
    let a = _mm256_packs_epi32(i[0], i[1]);
    let b = _mm256_packs_epi32(i[2], i[3]);
    let q = _mm256_packs_epi16(a, b);
    let q = _mm256_permutevar8x32_epi32(q, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(qs.as_mut_ptr() as *mut __m256i, q);
    (d, sum)
}

/// # Safety
/// The CPU must have AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn quantize_row_q8_0(x: &[f32], out: &mut [BlockQ8_0]) {
    for (b, chunk) in out.iter_mut().zip(x.chunks_exact(QK)) {
        let (d, _) = block(chunk, &mut b.qs);
        b.d = f16::from_f32(d);
    }
}

/// # Safety
/// The CPU must have AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn quantize_row_q8_1(x: &[f32], out: &mut [BlockQ8_1]) {
    for (b, chunk) in out.iter_mut().zip(x.chunks_exact(QK)) {
        let (d, sum) = block(chunk, &mut b.qs);
        b.d = f16::from_f32(d);
        b.s = f16::from_f32(d * sum as f32);
    }
}
