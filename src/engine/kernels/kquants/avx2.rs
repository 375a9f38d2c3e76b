//! AVX2 + FMA versions of the K-quant dot products, transcribed from the `__AVX2__`
//! branches of `ggml_vec_dot_q{4,5,6}_K_q8_K` (llama.cpp `ggml-cpu/arch/x86/quants.c`):
//! same integer lanes, same fused multiply-adds, same horizontal sums. Those branches have
//! no AVX-512 / VNNI variants inside, so a `-march=native` build on an AVX-512 CPU runs
//! exactly this code.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

#[cfg(target_arch = "x86_64")]
use super::{scalar::unpack_scales, BlockQ4K, BlockQ5K, BlockQ6K, BlockQ8K};

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

/// llama.cpp's `get_scale_shuffle_k4` table: row i broadcasts the 16-bit scale i.
#[cfg(target_arch = "x86_64")]
const SHUFFLE_K4: [[u8; 32]; 8] = {
    let mut t = [[0u8; 32]; 8];
    let mut i = 0;
    while i < 8 {
        let mut b = 0;
        while b < 32 {
            t[i][b] = (2 * i + b % 2) as u8;
            b += 1;
        }
        i += 1;
    }
    t
};

/// llama.cpp's `get_scale_shuffle` table: row i is byte 2i eight times, then byte 2i+1.
#[cfg(target_arch = "x86_64")]
const SHUFFLE: [[u8; 16]; 8] = {
    let mut t = [[0u8; 16]; 8];
    let mut i = 0;
    while i < 8 {
        let mut b = 0;
        while b < 16 {
            t[i][b] = (2 * i + b / 8) as u8;
            b += 1;
        }
        i += 1;
    }
    t
};

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn scale_shuffle_k4(i: usize) -> __m256i {
    _mm256_loadu_si256(SHUFFLE_K4[i].as_ptr() as *const __m256i)
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn scale_shuffle(i: usize) -> __m128i {
    _mm_loadu_si128(SHUFFLE[i].as_ptr() as *const __m128i)
}

/// f16 → f32 with the F16C instruction (exact, like any correct conversion; `half`'s
/// own conversion would test for F16C on every call).
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn h2f(x: half::f16) -> f32 {
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(x.to_bits() as i32)))
}

/// The scales (low 128 bits) and mins (high 128 bits) of Q4_K / Q5_K as 16 i16.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn mins_and_scales(scales: &[u8; super::K_SCALE_SIZE]) -> __m256i {
    let u = unpack_scales(scales);
    _mm256_cvtepu8_epi16(_mm_set_epi32(
        u[3] as i32,
        u[2] as i32,
        u[1] as i32,
        u[0] as i32,
    ))
}

/// `_mm_madd_epi16(mins, hadd_epi16(bsums lo, bsums hi))`: four i32 lanes.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn mins_prod(mins_and_scales: __m256i, by: &BlockQ8K) -> __m128i {
    let q8sums = _mm256_loadu_si256(by.bsums.as_ptr() as *const __m256i);
    let q8s = _mm_hadd_epi16(
        _mm256_extracti128_si256::<0>(q8sums),
        _mm256_extracti128_si256::<1>(q8sums),
    );
    _mm_madd_epi16(_mm256_extracti128_si256::<1>(mins_and_scales), q8s)
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C ([`available`]); `y` at least as long as `x`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_q4_k_q8_k(x: &[BlockQ4K], y: &[BlockQ8K]) -> f32 {
    let m4 = _mm256_set1_epi8(0xf);
    let mut acc = _mm256_setzero_ps();
    let mut acc_m = _mm_setzero_ps();
    for (bx, by) in x.iter().zip(y) {
        let d = by.d * h2f(bx.d);
        let dmin = -by.d * h2f(bx.dmin);

        let ms = mins_and_scales(&bx.scales);
        let prod = mins_prod(ms, by);
        acc_m = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(prod), acc_m);

        let sc128 = _mm256_extracti128_si256::<0>(ms);
        let scales = _mm256_set_m128i(sc128, sc128);

        let mut sumi = _mm256_setzero_si256();
        let q4 = bx.qs.as_ptr();
        let q8 = by.qs.as_ptr();
        for j in 0..4 {
            let scale_l = _mm256_shuffle_epi8(scales, scale_shuffle_k4(2 * j));
            let scale_h = _mm256_shuffle_epi8(scales, scale_shuffle_k4(2 * j + 1));

            let q4bits = _mm256_loadu_si256(q4.add(32 * j) as *const __m256i);
            let q4l = _mm256_and_si256(q4bits, m4);
            let q4h = _mm256_and_si256(_mm256_srli_epi16::<4>(q4bits), m4);

            let q8l = _mm256_loadu_si256(q8.add(64 * j) as *const __m256i);
            let p16l = _mm256_madd_epi16(scale_l, _mm256_maddubs_epi16(q4l, q8l));
            let q8h = _mm256_loadu_si256(q8.add(64 * j + 32) as *const __m256i);
            let p16h = _mm256_madd_epi16(scale_h, _mm256_maddubs_epi16(q4h, q8h));

            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p16l, p16h));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    acc_m = _mm_add_ps(acc_m, _mm_movehl_ps(acc_m, acc_m));
    acc_m = _mm_add_ss(acc_m, _mm_movehdup_ps(acc_m));
    hsum_float_8(acc) + _mm_cvtss_f32(acc_m)
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C ([`available`]); `y` at least as long as `x`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_q5_k_q8_k(x: &[BlockQ5K], y: &[BlockQ8K]) -> f32 {
    let m4 = _mm256_set1_epi8(0xf);
    let mzero = _mm_setzero_si128();
    let mone = _mm256_set1_epi8(1);
    let mut acc = _mm256_setzero_ps();
    let mut summs = 0f32;
    for (bx, by) in x.iter().zip(y) {
        let d = by.d * h2f(bx.d);
        let dmin = -by.d * h2f(bx.dmin);

        let ms = mins_and_scales(&bx.scales);
        let prod = mins_prod(ms, by);
        let hsum = _mm_hadd_epi32(_mm_hadd_epi32(prod, mzero), mzero);
        // GCC contracts `summs += dmin * total` into one FMA (see the scalar version).
        summs = dmin.mul_add(_mm_extract_epi32::<0>(hsum) as f32, summs);

        let sc128 = _mm256_extracti128_si256::<0>(ms);
        let scales = _mm256_set_m128i(sc128, sc128);

        let hbits = _mm256_loadu_si256(bx.qh.as_ptr() as *const __m256i);
        let mut hmask = mone;
        let mut sumi = _mm256_setzero_si256();
        let q5 = bx.qs.as_ptr();
        let q8 = by.qs.as_ptr();
        for j in 0..4 {
            let scale_0 = _mm256_shuffle_epi8(scales, scale_shuffle_k4(2 * j));
            let scale_1 = _mm256_shuffle_epi8(scales, scale_shuffle_k4(2 * j + 1));

            let q5bits = _mm256_loadu_si256(q5.add(32 * j) as *const __m256i);
            let bit0 = _mm_cvtsi32_si128(2 * j as i32);
            let bit1 = _mm_cvtsi32_si128(2 * j as i32 + 1);

            let q5l_0 = _mm256_and_si256(q5bits, m4);
            let q5h_0 =
                _mm256_slli_epi16::<4>(_mm256_srl_epi16(_mm256_and_si256(hbits, hmask), bit0));
            let q5_0 = _mm256_add_epi8(q5l_0, q5h_0);
            hmask = _mm256_slli_epi16::<1>(hmask);

            let q5l_1 = _mm256_and_si256(_mm256_srli_epi16::<4>(q5bits), m4);
            let q5h_1 =
                _mm256_slli_epi16::<4>(_mm256_srl_epi16(_mm256_and_si256(hbits, hmask), bit1));
            let q5_1 = _mm256_add_epi8(q5l_1, q5h_1);
            hmask = _mm256_slli_epi16::<1>(hmask);

            let q8_0 = _mm256_loadu_si256(q8.add(64 * j) as *const __m256i);
            let q8_1 = _mm256_loadu_si256(q8.add(64 * j + 32) as *const __m256i);

            let p16_0 = _mm256_madd_epi16(scale_0, _mm256_maddubs_epi16(q5_0, q8_0));
            let p16_1 = _mm256_madd_epi16(scale_1, _mm256_maddubs_epi16(q5_1, q8_1));

            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p16_0, p16_1));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum_float_8(acc) + summs
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C ([`available`]); `y` at least as long as `x`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_q6_k_q8_k(x: &[BlockQ6K], y: &[BlockQ8K]) -> f32 {
    let m3 = _mm256_set1_epi8(3);
    let m15 = _mm256_set1_epi8(15);
    let mut acc = _mm256_setzero_ps();
    for (bx, by) in x.iter().zip(y) {
        let d = by.d * h2f(bx.d);

        let q8sums = _mm256_loadu_si256(by.bsums.as_ptr() as *const __m256i);
        let scales = _mm_loadu_si128(bx.scales.as_ptr() as *const __m128i);
        let scales_16 = _mm256_cvtepi8_epi16(scales);
        let q8sclsub = _mm256_slli_epi32::<5>(_mm256_madd_epi16(q8sums, scales_16));

        let mut sumi = _mm256_setzero_si256();
        for j in 0..2 {
            let q4 = bx.ql.as_ptr().add(64 * j);
            let q8 = by.qs.as_ptr().add(128 * j);
            let q4bits1 = _mm256_loadu_si256(q4 as *const __m256i);
            let q4bits2 = _mm256_loadu_si256(q4.add(32) as *const __m256i);
            let q4bits_h = _mm256_loadu_si256(bx.qh.as_ptr().add(32 * j) as *const __m256i);

            let q4h_0 = _mm256_slli_epi16::<4>(_mm256_and_si256(q4bits_h, m3));
            let q4h_1 = _mm256_slli_epi16::<2>(_mm256_and_si256(q4bits_h, _mm256_set1_epi8(12)));
            let q4h_2 = _mm256_and_si256(q4bits_h, _mm256_set1_epi8(48));
            let q4h_3 = _mm256_srli_epi16::<2>(_mm256_and_si256(q4bits_h, _mm256_set1_epi8(-64)));

            let q4_0 = _mm256_or_si256(_mm256_and_si256(q4bits1, m15), q4h_0);
            let q4_1 = _mm256_or_si256(_mm256_and_si256(q4bits2, m15), q4h_1);
            let q4_2 = _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16::<4>(q4bits1), m15),
                q4h_2,
            );
            let q4_3 = _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16::<4>(q4bits2), m15),
                q4h_3,
            );

            let q8_0 = _mm256_loadu_si256(q8 as *const __m256i);
            let q8_1 = _mm256_loadu_si256(q8.add(32) as *const __m256i);
            let q8_2 = _mm256_loadu_si256(q8.add(64) as *const __m256i);
            let q8_3 = _mm256_loadu_si256(q8.add(96) as *const __m256i);

            let mut p16_0 = _mm256_maddubs_epi16(q4_0, q8_0);
            let mut p16_1 = _mm256_maddubs_epi16(q4_1, q8_1);
            let mut p16_2 = _mm256_maddubs_epi16(q4_2, q8_2);
            let mut p16_3 = _mm256_maddubs_epi16(q4_3, q8_3);

            let is = 4 * j;
            let scale_0 = _mm_shuffle_epi8(scales, scale_shuffle(is));
            let scale_1 = _mm_shuffle_epi8(scales, scale_shuffle(is + 1));
            let scale_2 = _mm_shuffle_epi8(scales, scale_shuffle(is + 2));
            let scale_3 = _mm_shuffle_epi8(scales, scale_shuffle(is + 3));

            p16_0 = _mm256_madd_epi16(_mm256_cvtepi8_epi16(scale_0), p16_0);
            p16_1 = _mm256_madd_epi16(_mm256_cvtepi8_epi16(scale_1), p16_1);
            p16_2 = _mm256_madd_epi16(_mm256_cvtepi8_epi16(scale_2), p16_2);
            p16_3 = _mm256_madd_epi16(_mm256_cvtepi8_epi16(scale_3), p16_3);

            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p16_0, p16_1));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p16_2, p16_3));
        }
        sumi = _mm256_sub_epi32(sumi, q8sclsub);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum_float_8(acc)
}
