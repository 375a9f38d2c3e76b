//! NEON (aarch64) versions of the dot products in [`super::dot`] and of the activation
//! quantization in [`super::blocks`], with the `sdot` instruction (FEAT_DotProd: Apple M1
//! and later, Graviton 2 and later, Cortex-A76 and later) detected at run time.
//!
//! They keep the x86 kernels' float order, so an aarch64 machine computes the same bits as
//! an x86 one: each of the eight lanes is the integer sum of four consecutive products
//! (`sdot` sums exactly those four), fused-multiply-added with the block scale, and the
//! lanes are summed as llama.cpp's `hsum_float_8` does. (llama.cpp's own NEON kernels sum
//! eight products per lane, so its results on ARM differ from its results on x86; ours
//! do not.)

use super::blocks::{BlockQ4_0, BlockQ4_1, BlockQ8_0, BlockQ8_1, QK};
use half::f16;
use std::arch::aarch64::*;

/// Whether this CPU has the dot-product instructions these kernels use.
pub fn available() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::arch::is_aarch64_feature_detected!("dotprod"))
}

/// `acc + Σ a·b` over each group of four bytes (`sdot`; stable Rust has no intrinsic yet).
#[inline(always)]
unsafe fn sdot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    std::arch::asm!(
        "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
        acc = inout(vreg) acc,
        a = in(vreg) a,
        b = in(vreg) b,
        options(pure, nomem, nostack, preserves_flags)
    );
    acc
}

/// llama.cpp's `hsum_float_8` of lanes `lo` (0..4) and `hi` (4..8).
#[inline(always)]
unsafe fn hsum8(lo: float32x4_t, hi: float32x4_t) -> f32 {
    let r = vaddq_f32(lo, hi);
    (vgetq_lane_f32::<0>(r) + vgetq_lane_f32::<2>(r))
        + (vgetq_lane_f32::<1>(r) + vgetq_lane_f32::<3>(r))
}

/// One block's eight lane sums: `x` (32 signed values as two halves) × `y`.
#[inline(always)]
unsafe fn lanes(x: [int8x16_t; 2], y: &[i8; 32]) -> [float32x4_t; 2] {
    let z = vdupq_n_s32(0);
    let lo = sdot(z, x[0], vld1q_s8(y.as_ptr()));
    let hi = sdot(z, x[1], vld1q_s8(y.as_ptr().add(16)));
    [vcvtq_f32_s32(lo), vcvtq_f32_s32(hi)]
}

/// 32 nibbles as bytes: low nibbles (elements 0..16), then high nibbles (16..32).
#[inline(always)]
unsafe fn nibbles(qs: &[u8; 16]) -> [uint8x16_t; 2] {
    let v = vld1q_u8(qs.as_ptr());
    [vandq_u8(v, vdupq_n_u8(0x0f)), vshrq_n_u8::<4>(v)]
}

/// # Safety
/// The CPU must have FEAT_DotProd ([`available`]).
#[target_feature(enable = "neon,dotprod")]
pub unsafe fn dot_q8_0_q8_0(x: &[BlockQ8_0], y: &[BlockQ8_0]) -> f32 {
    let (mut a0, mut a1) = (vdupq_n_f32(0.0), vdupq_n_f32(0.0));
    for (bx, by) in x.iter().zip(y) {
        let d = bx.d.to_f32() * by.d.to_f32();
        let q = [vld1q_s8(bx.qs.as_ptr()), vld1q_s8(bx.qs.as_ptr().add(16))];
        let [lo, hi] = lanes(q, &by.qs);
        a0 = vfmaq_n_f32(a0, lo, d);
        a1 = vfmaq_n_f32(a1, hi, d);
    }
    hsum8(a0, a1)
}

/// # Safety
/// The CPU must have FEAT_DotProd ([`available`]).
#[target_feature(enable = "neon,dotprod")]
pub unsafe fn dot_q4_0_q8_0(x: &[BlockQ4_0], y: &[BlockQ8_0]) -> f32 {
    let (mut a0, mut a1) = (vdupq_n_f32(0.0), vdupq_n_f32(0.0));
    let eight = vdupq_n_s8(8);
    for (bx, by) in x.iter().zip(y) {
        let d = bx.d.to_f32() * by.d.to_f32();
        let [lo, hi] = nibbles(&bx.qs);
        let q = [
            vsubq_s8(vreinterpretq_s8_u8(lo), eight),
            vsubq_s8(vreinterpretq_s8_u8(hi), eight),
        ];
        let [lo, hi] = lanes(q, &by.qs);
        a0 = vfmaq_n_f32(a0, lo, d);
        a1 = vfmaq_n_f32(a1, hi, d);
    }
    hsum8(a0, a1)
}

/// # Safety
/// The CPU must have FEAT_DotProd ([`available`]).
#[target_feature(enable = "neon,dotprod")]
pub unsafe fn dot_q4_1_q8_1(x: &[BlockQ4_1], y: &[BlockQ8_1]) -> f32 {
    let (mut a0, mut a1) = (vdupq_n_f32(0.0), vdupq_n_f32(0.0));
    let mut summs = 0f32;
    for (bx, by) in x.iter().zip(y) {
        let d = bx.d.to_f32() * by.d.to_f32();
        summs += bx.m.to_f32() * by.s.to_f32();
        let [lo, hi] = nibbles(&bx.qs);
        let [lo, hi] = lanes([vreinterpretq_s8_u8(lo), vreinterpretq_s8_u8(hi)], &by.qs);
        a0 = vfmaq_n_f32(a0, lo, d);
        a1 = vfmaq_n_f32(a1, hi, d);
    }
    hsum8(a0, a1) + summs
}

/// One block's scale and rounded values, as [`super::blocks`] computes them.
#[inline(always)]
unsafe fn quantize_block(x: &[f32], qs: &mut [i8; 32]) -> (f32, i32) {
    let v: [float32x4_t; 8] = std::array::from_fn(|i| vld1q_f32(x.as_ptr().add(4 * i)));
    let mut m = vabsq_f32(v[0]);
    for w in &v[1..] {
        m = vmaxq_f32(m, vabsq_f32(*w));
    }
    let amax = vmaxvq_f32(m);
    let d = amax / 127.0;
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    let mut sum = vdupq_n_s32(0);
    let mut q = [0i32; 32];
    for (i, w) in v.iter().enumerate() {
        // Round to nearest, ties to even, as `round_ties_even` and `_mm256_round_ps` do.
        let r = vcvtnq_s32_f32(vmulq_n_f32(*w, id));
        sum = vaddq_s32(sum, r);
        vst1q_s32(q.as_mut_ptr().add(4 * i), r);
    }
    for (o, r) in qs.iter_mut().zip(q) {
        *o = r as i8;
    }
    (d, vaddvq_s32(sum))
}

/// # Safety
/// NEON is part of every aarch64 CPU; `x` holds `QK · out.len()` values.
#[target_feature(enable = "neon")]
pub unsafe fn quantize_row_q8_0(x: &[f32], out: &mut [BlockQ8_0]) {
    for (b, chunk) in out.iter_mut().zip(x.chunks_exact(QK)) {
        let (d, _) = quantize_block(chunk, &mut b.qs);
        b.d = f16::from_f32(d);
    }
}

/// # Safety
/// As [`quantize_row_q8_0`].
#[target_feature(enable = "neon")]
pub unsafe fn quantize_row_q8_1(x: &[f32], out: &mut [BlockQ8_1]) {
    for (b, chunk) in out.iter_mut().zip(x.chunks_exact(QK)) {
        let (d, sum) = quantize_block(chunk, &mut b.qs);
        b.d = f16::from_f32(d);
        b.s = f16::from_f32(d * sum as f32);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{blocks, dot};
    use super::*;
    use candle_core::quantized::{GgmlDType, QTensor};
    use candle_core::{Device, Tensor};
    use rand::{Rng, SeedableRng};

    fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..n)
            .map(|_| rng.random_range(-1.0f32..1.0) * if rng.random_bool(0.05) { 8.0 } else { 1.0 })
            .collect()
    }

    fn weight(dtype: GgmlDType, k: usize, seed: u64) -> QTensor {
        let w = Tensor::from_vec(random(k, seed), (1, k), &Device::Cpu).unwrap();
        QTensor::quantize(&w, dtype).unwrap()
    }

    /// The NEON quantizer writes the scalar one's bytes; the NEON dots return the scalar
    /// dots' bits (and so the x86 kernels' bits).
    #[test]
    fn neon_equals_scalar() {
        if !available() {
            eprintln!("no FEAT_DotProd on this CPU: nothing to compare");
            return;
        }
        let k = 32 * 37;
        for seed in 0..20 {
            let mut xs = random(k, 100 + seed);
            xs[..32].iter_mut().for_each(|v| *v = 0.0); // an all-zero block
            xs[40] = 127.0; // .5 ties after scaling
            xs[41] = 2.5;
            let nb = k / QK;
            let (mut a0, mut b0) = (
                vec![BlockQ8_0::default(); nb],
                vec![BlockQ8_0::default(); nb],
            );
            let (mut a1, mut b1) = (
                vec![BlockQ8_1::default(); nb],
                vec![BlockQ8_1::default(); nb],
            );
            unsafe {
                quantize_row_q8_0(&xs, &mut a0);
                quantize_row_q8_1(&xs, &mut a1);
            }
            blocks::quantize_row_q8_0_scalar(&xs, &mut b0);
            blocks::quantize_row_q8_1_scalar(&xs, &mut b1);
            for i in 0..nb {
                assert_eq!(
                    (a0[i].d.to_bits(), a0[i].qs),
                    (b0[i].d.to_bits(), b0[i].qs),
                    "q8_0 block {i}"
                );
                assert_eq!(
                    (a1[i].d.to_bits(), a1[i].s.to_bits(), a1[i].qs),
                    (b1[i].d.to_bits(), b1[i].s.to_bits(), b1[i].qs),
                    "q8_1 block {i}"
                );
            }
            let (q40, q41, q80) = (
                weight(GgmlDType::Q4_0, k, seed),
                weight(GgmlDType::Q4_1, k, seed),
                weight(GgmlDType::Q8_0, k, seed),
            );
            let (w40, w41, w80) = (
                q40.data().unwrap(),
                q41.data().unwrap(),
                q80.data().unwrap(),
            );
            let (x40, x41, x80) = (
                blocks::as_blocks::<BlockQ4_0>(&w40),
                blocks::as_blocks::<BlockQ4_1>(&w41),
                blocks::as_blocks::<BlockQ8_0>(&w80),
            );
            unsafe {
                assert_eq!(
                    dot_q4_0_q8_0(x40, &b0).to_bits(),
                    dot::dot_q4_0_q8_0_scalar(x40, &b0).to_bits()
                );
                assert_eq!(
                    dot_q4_1_q8_1(x41, &b1).to_bits(),
                    dot::dot_q4_1_q8_1_scalar(x41, &b1).to_bits()
                );
                assert_eq!(
                    dot_q8_0_q8_0(x80, &b0).to_bits(),
                    dot::dot_q8_0_q8_0_scalar(x80, &b0).to_bits()
                );
            }
        }
    }
}
