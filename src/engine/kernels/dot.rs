//! Dot products of quantized weight rows with quantized activations, in the exact float
//! order of llama.cpp's AVX2 kernels: eight lanes, each the integer sum of four
//! consecutive products, fused-multiply-added with the block scale, then the same
//! horizontal sum. The scalar and SIMD versions give identical bits.

use super::blocks::{BlockQ4_0, BlockQ4_1, BlockQ8_0, BlockQ8_1};

/// llama.cpp's `hsum_float_8`.
#[inline]
pub fn hsum8(a: [f32; 8]) -> f32 {
    let r = [a[0] + a[4], a[1] + a[5], a[2] + a[6], a[3] + a[7]];
    let (s0, s1) = (r[0] + r[2], r[1] + r[3]);
    s0 + s1
}

/// Lane sums of 32 unsigned/signed byte products: lane l = Σ_{i in 4l..4l+4} x_i·y_i.
#[inline]
fn lane_sums(x: &[i32; 32], y: &[i8; 32]) -> [f32; 8] {
    let mut out = [0f32; 8];
    for (l, o) in out.iter_mut().enumerate() {
        let mut s = 0i32;
        for i in 4 * l..4 * l + 4 {
            s += x[i] * y[i] as i32;
        }
        *o = s as f32;
    }
    out
}

#[inline]
fn nibbles(qs: &[u8; 16], offset: i32) -> [i32; 32] {
    let mut x = [0i32; 32];
    for j in 0..16 {
        x[j] = (qs[j] & 0x0f) as i32 - offset;
        x[j + 16] = (qs[j] >> 4) as i32 - offset;
    }
    x
}

pub fn dot_q4_1_q8_1_scalar(x: &[BlockQ4_1], y: &[BlockQ8_1]) -> f32 {
    let mut acc = [0f32; 8];
    let mut summs = 0f32;
    for (bx, by) in x.iter().zip(y) {
        let d0 = bx.d.to_f32();
        let d1 = by.d.to_f32();
        summs += bx.m.to_f32() * by.s.to_f32();
        let d0d1 = d0 * d1;
        let xy = lane_sums(&nibbles(&bx.qs, 0), &by.qs);
        for l in 0..8 {
            acc[l] = d0d1.mul_add(xy[l], acc[l]);
        }
    }
    hsum8(acc) + summs
}

pub fn dot_q4_0_q8_0_scalar(x: &[BlockQ4_0], y: &[BlockQ8_0]) -> f32 {
    let mut acc = [0f32; 8];
    for (bx, by) in x.iter().zip(y) {
        let d = bx.d.to_f32() * by.d.to_f32();
        let xy = lane_sums(&nibbles(&bx.qs, 8), &by.qs);
        for l in 0..8 {
            acc[l] = d.mul_add(xy[l], acc[l]);
        }
    }
    hsum8(acc)
}

pub fn dot_q8_0_q8_0_scalar(x: &[BlockQ8_0], y: &[BlockQ8_0]) -> f32 {
    let mut acc = [0f32; 8];
    for (bx, by) in x.iter().zip(y) {
        let d = bx.d.to_f32() * by.d.to_f32();
        let xi: [i32; 32] = std::array::from_fn(|i| bx.qs[i] as i32);
        let xy = lane_sums(&xi, &by.qs);
        for l in 0..8 {
            acc[l] = d.mul_add(xy[l], acc[l]);
        }
    }
    hsum8(acc)
}
