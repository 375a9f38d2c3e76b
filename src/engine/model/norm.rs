//! Normalisation computed the way llama.cpp's CPU backend computes it.

crate::engine::fast::fast_fn! {
    /// RMS norm as ggml computes it: Σx² in f64, `1/sqrt(mean + eps)` in f32, `x·scale·w`.
    pub fn rms_norm_ggml(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
        let dim = w.len();
        for (row, o) in x.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
            let sum: f64 = row.iter().map(|&v| (v * v) as f64).sum();
            let mean = (sum / dim as f64) as f32;
            let scale = 1.0 / (mean + eps).sqrt();
            for ((o, &v), &w) in o.iter_mut().zip(row).zip(w) {
                *o = (v * scale) * w;
            }
        }
    }
}

/// `exp(x)` as ggml's vectorised `ggml_v_expf` computes it (a polynomial after range
/// reduction, max error ~1.5 ulp), operation for operation, so activations match llama.cpp.
#[inline]
pub fn ggml_expf(x: f32) -> f32 {
    let f = f32::from_bits;
    let r = f(0x4b40_0000);
    let z = x.mul_add(f(0x3fb8_aa3b), r);
    let n = z - r;
    let b = (-n).mul_add(f(0x35bf_be8e), (-n).mul_add(f(0x3f31_7200), x));
    let u = b * b;
    let j = f(0x3c07_2010)
        .mul_add(b, f(0x3d2b_9f17))
        .mul_add(u, f(0x3e2a_af33).mul_add(b, f(0x3eff_fedb)))
        .mul_add(u, f(0x3f7f_fff6).mul_add(b, 1.0));
    if n.abs() > 192.0 {
        return if n <= 0.0 { 0.0 } else { f32::INFINITY };
    }
    // scalef: j · 2^n with a single rounding.
    // |n| <= 192, so 2^n is a normal f64 built from its exponent bits.
    let pow2 = f64::from_bits(((n as i64 + 1023) as u64) << 52);
    (j as f64 * pow2) as f32
}

/// SwiGLU as ggml computes it: `x / (1 + exp(-x)) · g`, sixteen at a time with AVX-512
/// as ggml's `ggml_vec_swiglu_f32` does (the same bits as [`swiglu_ggml_scalar`]).
pub fn swiglu_ggml(x: &[f32], g: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if crate::engine::kernels::use_avx512() {
        // SAFETY: AVX-512 F was detected at run time.
        return unsafe { x86::swiglu(x, g, out) };
    }
    swiglu_ggml_scalar(x, g, out)
}

crate::engine::fast::fast_fn! {
    /// The portable [`swiglu_ggml`].
    pub fn swiglu_ggml_scalar(x: &[f32], g: &[f32], out: &mut [f32]) {
        for ((o, &x), &g) in out.iter_mut().zip(x).zip(g) {
            *o = (x / (1.0 + ggml_expf(-x))) * g;
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(super) mod x86 {
    use std::arch::x86_64::*;

    #[inline]
    #[target_feature(enable = "avx512f,fma")]
    unsafe fn c(bits: u32) -> __m512 {
        _mm512_set1_ps(f32::from_bits(bits))
    }

    /// ggml's AVX-512 `ggml_v_expf`, intrinsic for intrinsic.
    #[inline]
    #[target_feature(enable = "avx512f,fma")]
    pub unsafe fn v_expf(x: __m512) -> __m512 {
        let r = c(0x4b40_0000);
        let z = _mm512_fmadd_ps(x, c(0x3fb8_aa3b), r);
        let n = _mm512_sub_ps(z, r);
        let b = _mm512_fnmadd_ps(n, c(0x35bf_be8e), _mm512_fnmadd_ps(n, c(0x3f31_7200), x));
        let d = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(_mm512_abs_ps(n), _mm512_set1_ps(192.0));
        let u = _mm512_mul_ps(b, b);
        let j = _mm512_fmadd_ps(
            _mm512_fmadd_ps(
                _mm512_fmadd_ps(c(0x3c07_2010), b, c(0x3d2b_9f17)),
                u,
                _mm512_fmadd_ps(c(0x3e2a_af33), b, c(0x3eff_fedb)),
            ),
            u,
            _mm512_fmadd_ps(c(0x3f7f_fff6), b, _mm512_set1_ps(1.0)),
        );
        let res = _mm512_scalef_ps(j, n);
        if d == 0 {
            return res;
        }
        let zero = _mm512_setzero_ps();
        let le = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(n, zero);
        let alt = _mm512_mask_blend_ps(le, _mm512_set1_ps(f32::INFINITY), zero);
        _mm512_mask_blend_ps(d, res, alt)
    }

    #[target_feature(enable = "avx512f,fma")]
    pub unsafe fn swiglu(x: &[f32], g: &[f32], out: &mut [f32]) {
        let n = x.len().min(g.len()).min(out.len());
        let n16 = n / 16 * 16;
        let one = _mm512_set1_ps(1.0);
        for i in (0..n16).step_by(16) {
            let xv = _mm512_loadu_ps(x.as_ptr().add(i));
            let e = v_expf(_mm512_sub_ps(_mm512_setzero_ps(), xv));
            let silu = _mm512_div_ps(xv, _mm512_add_ps(one, e));
            let y = _mm512_mul_ps(silu, _mm512_loadu_ps(g.as_ptr().add(i)));
            _mm512_storeu_ps(out.as_mut_ptr().add(i), y);
        }
        super::swiglu_ggml_scalar(&x[n16..n], &g[n16..n], &mut out[n16..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ggml_expf_is_close_to_exp() {
        for i in -2000..2000 {
            let x = i as f32 * 0.043;
            let (a, b) = (ggml_expf(x), x.exp());
            assert!((a - b).abs() <= b * 4e-7, "{x}: {a} vs {b}");
        }
        assert_eq!(ggml_expf(-200.0), 0.0);
    }

    /// The AVX-512 SwiGLU returns the scalar port's bits, across the whole range of
    /// activations (and past ±88, where exp over- or underflows).
    #[test]
    fn simd_swiglu_equals_scalar() {
        let x: Vec<f32> = (0..4096)
            .map(|i| (i as f32 - 2048.0) * 0.061 + 0.0007 * (i % 13) as f32)
            .collect();
        let mut x = x;
        x.extend([
            0.0, -0.0, 90.0, -90.0, 200.0, -200.0, 1e-30, -1e-30, 3.0, -3.0, 7.5, 0.5, 1.0, 2.0,
            -1.0, 8.0,
        ]);
        let g: Vec<f32> = (0..x.len())
            .map(|i| ((i * 7919) % 1000) as f32 / 250.0 - 2.0)
            .collect();
        let (mut a, mut b) = (vec![0f32; x.len()], vec![0f32; x.len()]);
        swiglu_ggml(&x, &g, &mut a);
        swiglu_ggml_scalar(&x, &g, &mut b);
        for i in 0..x.len() {
            assert_eq!(
                a[i].to_bits(),
                b[i].to_bits(),
                "x = {}: {} vs {}",
                x[i],
                a[i],
                b[i]
            );
        }
    }
}
