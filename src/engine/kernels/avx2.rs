//! AVX2 + FMA versions of the dot products in [`super::dot`]: the same lanes, the same
//! fused multiply-adds and the same horizontal sum as llama.cpp's x86 code, so they return
//! exactly what the scalar versions return, only faster.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

#[cfg(target_arch = "x86_64")]
use super::blocks::{BlockQ4_0, BlockQ4_1, BlockQ8_0, BlockQ8_1};

/// Whether this CPU can run these kernels.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn hsum_float_8(x: __m256) -> f32 {
    let mut res = _mm256_extractf128_ps(x, 1);
    res = _mm_add_ps(res, _mm256_castps256_ps128(x));
    res = _mm_add_ps(res, _mm_movehl_ps(res, res));
    res = _mm_add_ss(res, _mm_movehdup_ps(res));
    _mm_cvtss_f32(res)
}

/// f16 → f32 with the F16C instruction (exact, like any correct conversion).
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn h2f(x: half::f16) -> f32 {
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(x.to_bits() as i32)))
}

/// 32 nibbles → 32 bytes: low nibbles first, then high nibbles.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn bytes_from_nibbles_32(qs: &[u8; 16]) -> __m256i {
    let tmp = _mm_loadu_si128(qs.as_ptr() as *const __m128i);
    let bytes = _mm256_insertf128_si256(_mm256_castsi128_si256(tmp), _mm_srli_epi16(tmp, 4), 1);
    _mm256_and_si256(_mm256_set1_epi8(0x0f), bytes)
}

/// Unsigned × signed bytes, summed in groups of four into eight f32 lanes.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn mul_sum_us8_pairs_float(ax: __m256i, sy: __m256i) -> __m256 {
    let dot = _mm256_maddubs_epi16(ax, sy);
    _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_set1_epi16(1), dot))
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn mul_sum_i8_pairs_float(x: __m256i, y: __m256i) -> __m256 {
    let ax = _mm256_sign_epi8(x, x);
    let sy = _mm256_sign_epi8(y, x);
    mul_sum_us8_pairs_float(ax, sy)
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C ([`available`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_q4_1_q8_1(x: &[BlockQ4_1], y: &[BlockQ8_1]) -> f32 {
    let mut acc = _mm256_setzero_ps();
    let mut summs = 0f32;
    for (bx, by) in x.iter().zip(y) {
        let d0 = h2f(bx.d);
        let d1 = h2f(by.d);
        summs += h2f(bx.m) * h2f(by.s);
        let d0d1 = _mm256_mul_ps(_mm256_set1_ps(d0), _mm256_set1_ps(d1));
        let qx = bytes_from_nibbles_32(&bx.qs);
        let qy = _mm256_loadu_si256(by.qs.as_ptr() as *const __m256i);
        acc = _mm256_fmadd_ps(d0d1, mul_sum_us8_pairs_float(qx, qy), acc);
    }
    hsum_float_8(acc) + summs
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C ([`available`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_q4_0_q8_0(x: &[BlockQ4_0], y: &[BlockQ8_0]) -> f32 {
    let mut acc = _mm256_setzero_ps();
    let off = _mm256_set1_epi8(8);
    for (bx, by) in x.iter().zip(y) {
        let d = _mm256_set1_ps(h2f(bx.d) * h2f(by.d));
        let qx = _mm256_sub_epi8(bytes_from_nibbles_32(&bx.qs), off);
        let qy = _mm256_loadu_si256(by.qs.as_ptr() as *const __m256i);
        acc = _mm256_fmadd_ps(d, mul_sum_i8_pairs_float(qx, qy), acc);
    }
    hsum_float_8(acc)
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C ([`available`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_q8_0_q8_0(x: &[BlockQ8_0], y: &[BlockQ8_0]) -> f32 {
    let mut acc = _mm256_setzero_ps();
    for (bx, by) in x.iter().zip(y) {
        let d = _mm256_set1_ps(h2f(bx.d) * h2f(by.d));
        let qx = _mm256_loadu_si256(bx.qs.as_ptr() as *const __m256i);
        let qy = _mm256_loadu_si256(by.qs.as_ptr() as *const __m256i);
        acc = _mm256_fmadd_ps(d, mul_sum_i8_pairs_float(qx, qy), acc);
    }
    hsum_float_8(acc)
}

/// Four weight rows against one activation row: each row's arithmetic is exactly that of
/// [`dot_q4_1_q8_1`]; the rows only share the activation loads and interleave for ILP.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C ([`available`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot4_q4_1_q8_1(x: [&[BlockQ4_1]; 4], y: &[BlockQ8_1]) -> [f32; 4] {
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut summs = [0f32; 4];
    for (b, by) in y.iter().enumerate() {
        let d1 = h2f(by.d);
        let s1 = h2f(by.s);
        let qy = _mm256_loadu_si256(by.qs.as_ptr() as *const __m256i);
        for r in 0..4 {
            let bx = &x[r][b];
            summs[r] += h2f(bx.m) * s1;
            let d0d1 = _mm256_mul_ps(_mm256_set1_ps(h2f(bx.d)), _mm256_set1_ps(d1));
            let qx = bytes_from_nibbles_32(&bx.qs);
            acc[r] = _mm256_fmadd_ps(d0d1, mul_sum_us8_pairs_float(qx, qy), acc[r]);
        }
    }
    [
        hsum_float_8(acc[0]) + summs[0],
        hsum_float_8(acc[1]) + summs[1],
        hsum_float_8(acc[2]) + summs[2],
        hsum_float_8(acc[3]) + summs[3],
    ]
}

/// Four Q8_0 weight rows against one activation row (see [`dot4_q4_1_q8_1`]).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C ([`available`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot4_q8_0_q8_0(x: [&[BlockQ8_0]; 4], y: &[BlockQ8_0]) -> [f32; 4] {
    let mut acc = [_mm256_setzero_ps(); 4];
    for (b, by) in y.iter().enumerate() {
        let d1 = h2f(by.d);
        let qy = _mm256_loadu_si256(by.qs.as_ptr() as *const __m256i);
        for r in 0..4 {
            let bx = &x[r][b];
            let d = _mm256_set1_ps(h2f(bx.d) * d1);
            let qx = _mm256_loadu_si256(bx.qs.as_ptr() as *const __m256i);
            acc[r] = _mm256_fmadd_ps(d, mul_sum_i8_pairs_float(qx, qy), acc[r]);
        }
    }
    [
        hsum_float_8(acc[0]),
        hsum_float_8(acc[1]),
        hsum_float_8(acc[2]),
        hsum_float_8(acc[3]),
    ]
}
