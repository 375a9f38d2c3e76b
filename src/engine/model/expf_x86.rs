//! `expf` sixteen at a time with the bits of glibc's scalar `expf` (the one llama.cpp's
//! flash attention calls): glibc's algorithm (ARM's optimized-routines `expf`: a 32-entry
//! table of 2^(i/32) and a cubic in double precision, one rounding to f32 at the end),
//! evaluated in f64 lanes. The double-precision steps are accurate enough that how they
//! are fused does not change the rounded result; `exhaustive_match_with_libm` checks
//! every finite input against the C library.

use std::arch::x86_64::*;

/// glibc's `__exp2f_data.tab`: `bits(2^(i/32)) - (i << 47)`.
const TAB: [u64; 32] = [
    0x3ff0000000000000,
    0x3fefd9b0d3158574,
    0x3fefb5586cf9890f,
    0x3fef9301d0125b51,
    0x3fef72b83c7d517b,
    0x3fef54873168b9aa,
    0x3fef387a6e756238,
    0x3fef1e9df51fdee1,
    0x3fef06fe0a31b715,
    0x3feef1a7373aa9cb,
    0x3feedea64c123422,
    0x3feece086061892d,
    0x3feebfdad5362a27,
    0x3feeb42b569d4f82,
    0x3feeab07dd485429,
    0x3feea47eb03a5585,
    0x3feea09e667f3bcd,
    0x3fee9f75e8ec5f74,
    0x3feea11473eb0187,
    0x3feea589994cce13,
    0x3feeace5422aa0db,
    0x3feeb737b0cdc5e5,
    0x3feec49182a3f090,
    0x3feed503b23e255d,
    0x3feee89f995ad3ad,
    0x3feeff76f2fb5e47,
    0x3fef199bdd85529c,
    0x3fef3720dcef9069,
    0x3fef5818dcfba487,
    0x3fef7c97337b9b5f,
    0x3fefa4afa2a490da,
    0x3fefd0765b6e4540,
];
const INV_LN2_N: f64 = f64::from_bits(0x3ff7_1547_652b_82fe) * 32.0;
const SHIFT: f64 = f64::from_bits(0x4338_0000_0000_0000); // 0x1.8p52
const C0: f64 = f64::from_bits(0x3fac_6af8_4b91_2394) / 32768.0; // 0x1.c6af84b912394p-5 / N³
const C1: f64 = f64::from_bits(0x3fce_bfce_50fa_c4f3) / 1024.0; // 0x1.ebfce50fac4f3p-3 / N²
const C2: f64 = f64::from_bits(0x3fe6_2e42_ff0c_52d6) / 32.0; // 0x1.62e42ff0c52d6p-1 / N
/// Below this every result is 0 (glibc returns its underflow value, +0).
const UNDER: f32 = f32::from_bits(0xc2cf_f1b4); // -0x1.9fe368p6
/// Above this every result is +inf.
const OVER: f32 = f32::from_bits(0x42b1_7217); // 0x1.62e42ep6

/// Eight lanes of the main path (no special cases).
#[inline]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
unsafe fn exp8(x: __m256) -> __m256 {
    let xd = _mm512_cvtps_pd(x);
    let kd = _mm512_fmadd_pd(_mm512_set1_pd(INV_LN2_N), xd, _mm512_set1_pd(SHIFT));
    let ki = _mm512_castpd_si512(kd);
    let kd = _mm512_sub_pd(kd, _mm512_set1_pd(SHIFT));
    let r = _mm512_fmadd_pd(
        _mm512_set1_pd(INV_LN2_N),
        xd,
        _mm512_sub_pd(_mm512_setzero_pd(), kd),
    );
    let tab = |i: usize| _mm512_loadu_pd(TAB.as_ptr().add(i) as *const f64);
    let lo = _mm512_permutex2var_pd(tab(0), ki, tab(8));
    let hi = _mm512_permutex2var_pd(tab(16), ki, tab(24));
    let upper = _mm512_test_epi64_mask(ki, _mm512_set1_epi64(16));
    let t = _mm512_castpd_si512(_mm512_mask_blend_pd(upper, lo, hi));
    let s = _mm512_castsi512_pd(_mm512_add_epi64(t, _mm512_slli_epi64::<47>(ki)));
    let z = _mm512_fmadd_pd(_mm512_set1_pd(C0), r, _mm512_set1_pd(C1));
    let r2 = _mm512_mul_pd(r, r);
    let y = _mm512_fmadd_pd(_mm512_set1_pd(C2), r, _mm512_set1_pd(1.0));
    let y = _mm512_fmadd_pd(z, r2, y);
    _mm512_cvtpd_ps(_mm512_mul_pd(y, s))
}

/// `expf` of sixteen lanes, as glibc computes each.
///
/// # Safety
/// The CPU must have AVX-512 F and DQ, AVX2 and FMA.
#[inline]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
pub unsafe fn expf16(x: __m512) -> __m512 {
    let lo = exp8(_mm512_castps512_ps256(x));
    let hi = exp8(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(
        _mm512_castps_pd(x),
    )));
    let y = _mm512_insertf64x4::<1>(
        _mm512_castpd256_pd512(_mm256_castps_pd(lo)),
        _mm256_castps_pd(hi),
    );
    let y = _mm512_castpd_ps(y);
    // Special cases: underflow (and -inf) → 0, overflow (and +inf) → inf, NaN stays NaN.
    let under = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_set1_ps(UNDER));
    let over = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(x, _mm512_set1_ps(OVER));
    let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x);
    let y = _mm512_mask_blend_ps(under, y, _mm512_setzero_ps());
    let y = _mm512_mask_blend_ps(over, y, _mm512_set1_ps(f32::INFINITY));
    _mm512_mask_blend_ps(nan, y, _mm512_add_ps(x, x))
}

/// Whether this CPU runs [`expf16`].
pub fn available() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512dq")
        && crate::engine::kernels::avx2::available()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(xs: &[f32]) -> usize {
        let mut bad = 0;
        for chunk in xs.chunks(16) {
            let mut x = [0f32; 16];
            x[..chunk.len()].copy_from_slice(chunk);
            let mut y = [0f32; 16];
            // SAFETY: the caller checked `available`.
            unsafe { _mm512_storeu_ps(y.as_mut_ptr(), expf16(_mm512_loadu_ps(x.as_ptr()))) };
            for (a, b) in x.iter().zip(&y).take(chunk.len()) {
                let want = a.exp();
                if want.to_bits() != b.to_bits() && !(want.is_nan() && b.is_nan()) {
                    bad += 1;
                    if bad < 5 {
                        eprintln!("expf({a:e}) = {want:e}, expf16 gave {b:e}");
                    }
                }
            }
        }
        bad
    }

    /// Every 257th float, every float in (-1, 1) of a sampled exponent, and the edges.
    #[test]
    fn matches_libm_on_a_sample() {
        if !available() {
            return;
        }
        let mut xs: Vec<f32> = (0..u32::MAX / 257)
            .map(|i| f32::from_bits(i * 257))
            .collect();
        xs.extend((0..1u32 << 20).map(|i| f32::from_bits(0x3f00_0000 + i)));
        xs.extend([
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            UNDER,
            OVER,
            -87.0,
            -88.5,
            -103.0,
            -103.5,
            -104.0,
            88.7,
            88.8,
        ]);
        xs.extend((0..4000).map(|i| -110.0 + i as f32 * 0.0517));
        assert_eq!(check(&xs), 0);
    }

    /// All 2^32 inputs (about a minute in release): `cargo test --release expf -- --ignored`.
    #[test]
    #[ignore]
    fn exhaustive_match_with_libm() {
        if !available() {
            return;
        }
        let mut bad = 0;
        let mut xs = Vec::with_capacity(1 << 24);
        for hi in 0..256u32 {
            xs.clear();
            xs.extend((0..1u32 << 24).map(|lo| f32::from_bits(hi << 24 | lo)));
            bad += check(&xs);
        }
        assert_eq!(bad, 0);
    }
}
