//! The K-quant dot products lane by lane, in the float order of llama.cpp's AVX2 code.
//!
//! Each super-block yields eight i32 lane sums exactly as the AVX2 code's `sumi`:
//! lane l holds, for every 32-value chunk, the products of bytes 4l..4l+4 (paired by
//! `maddubs`, saturated to i16 like it; no real input saturates) times their sub-block
//! scale. Then `acc[l] = fma(d, f32(sumi[l]), acc[l])` and llama.cpp's `hsum_float_8`.

use super::{BlockQ4K, BlockQ5K, BlockQ6K, BlockQ8K, K_SCALE_SIZE};

/// llama.cpp's `hsum_float_8`.
#[inline]
pub(super) fn hsum8(a: [f32; 8]) -> f32 {
    let r = [a[0] + a[4], a[1] + a[5], a[2] + a[6], a[3] + a[7]];
    (r[0] + r[2]) + (r[1] + r[3])
}

/// llama.cpp's `utmp` unpacking of the packed 6-bit scales and mins of Q4_K / Q5_K:
/// as bytes, the 8 scales then the 8 mins (the values `get_scale_min_k4` gives).
#[inline]
pub(super) fn unpack_scales(scales: &[u8; K_SCALE_SIZE]) -> [u32; 4] {
    const KMASK1: u32 = 0x3f3f3f3f;
    const KMASK2: u32 = 0x0f0f0f0f;
    const KMASK3: u32 = 0x03030303;
    let w = |i: usize| u32::from_le_bytes(scales[4 * i..4 * i + 4].try_into().unwrap());
    let mut u = [w(0), w(1), w(2), 0];
    u[3] = ((u[2] >> 4) & KMASK2) | (((u[1] >> 6) & KMASK3) << 4);
    let uaux = u[1] & KMASK1;
    u[1] = (u[2] & KMASK2) | (((u[0] >> 6) & KMASK3) << 4);
    u[2] = uaux;
    u[0] &= KMASK1;
    u
}

/// The 8 scales and the 8 mins.
#[inline]
pub(super) fn scales_mins(scales: &[u8; K_SCALE_SIZE]) -> ([u8; 8], [u8; 8]) {
    let u = unpack_scales(scales);
    let b = |i: usize| u[i / 4].to_le_bytes()[i % 4];
    (std::array::from_fn(b), std::array::from_fn(|i| b(i + 8)))
}

/// `_mm256_maddubs_epi16` on one pair: u8·i8 + u8·i8, saturated to i16.
#[inline]
fn maddubs(a0: u8, b0: i8, a1: u8, b1: i8) -> i32 {
    (a0 as i32 * b0 as i32 + a1 as i32 * b1 as i32).clamp(i16::MIN as i32, i16::MAX as i32)
}

/// `sumi += madd_epi16(scale, maddubs_epi16(q, y))` for one 32-byte chunk; `scale(l)` is
/// the scale of lane l (of both its i16 halves).
#[inline]
fn madd_chunk(q: &[u8; 32], y: &[i8], scale: impl Fn(usize) -> i32, sumi: &mut [i32; 8]) {
    for (l, s) in sumi.iter_mut().enumerate() {
        let b = 4 * l;
        let p0 = maddubs(q[b], y[b], q[b + 1], y[b + 1]);
        let p1 = maddubs(q[b + 2], y[b + 2], q[b + 3], y[b + 3]);
        let sc = scale(l);
        *s = s.wrapping_add((sc * p0).wrapping_add(sc * p1));
    }
}

/// `_mm_hadd_epi16` of the bsums: sums of 32-value sub-blocks, wrapping like i16.
#[inline]
fn q8_subblock_sums(by: &BlockQ8K) -> [i32; 8] {
    std::array::from_fn(|k| by.bsums[2 * k].wrapping_add(by.bsums[2 * k + 1]) as i32)
}

/// `_mm_madd_epi16(mins, q8s)`: four lanes of two sub-blocks each.
#[inline]
fn mins_prod(mins: &[u8; 8], q8s: &[i32; 8]) -> [i32; 4] {
    std::array::from_fn(|l| {
        (mins[2 * l] as i32 * q8s[2 * l]).wrapping_add(mins[2 * l + 1] as i32 * q8s[2 * l + 1])
    })
}

pub fn dot_q4_k_q8_k_scalar(x: &[BlockQ4K], y: &[BlockQ8K]) -> f32 {
    let mut acc = [0f32; 8];
    let mut acc_m = [0f32; 4];
    for (bx, by) in x.iter().zip(y) {
        let d = by.d * bx.d.to_f32();
        let dmin = -by.d * bx.dmin.to_f32();
        let (sc, mins) = scales_mins(&bx.scales);

        let prod = mins_prod(&mins, &q8_subblock_sums(by));
        for (a, p) in acc_m.iter_mut().zip(prod) {
            *a = dmin.mul_add(p as f32, *a);
        }

        let mut sumi = [0i32; 8];
        for j in 0..4 {
            let q: &[u8; 32] = bx.qs[32 * j..32 * j + 32].try_into().unwrap();
            let lo = q.map(|b| b & 0x0f);
            let hi = q.map(|b| b >> 4);
            madd_chunk(&lo, &by.qs[64 * j..], |_| sc[2 * j] as i32, &mut sumi);
            madd_chunk(
                &hi,
                &by.qs[64 * j + 32..],
                |_| sc[2 * j + 1] as i32,
                &mut sumi,
            );
        }
        for (a, s) in acc.iter_mut().zip(sumi) {
            *a = d.mul_add(s as f32, *a);
        }
    }
    // _mm_movehl_ps + _mm_add_ps, then _mm_movehdup_ps + _mm_add_ss.
    let m = (acc_m[0] + acc_m[2]) + (acc_m[1] + acc_m[3]);
    hsum8(acc) + m
}

pub fn dot_q5_k_q8_k_scalar(x: &[BlockQ5K], y: &[BlockQ8K]) -> f32 {
    let mut acc = [0f32; 8];
    let mut summs = 0f32;
    for (bx, by) in x.iter().zip(y) {
        let d = by.d * bx.d.to_f32();
        let dmin = -by.d * bx.dmin.to_f32();
        let (sc, mins) = scales_mins(&bx.scales);

        // Two _mm_hadd_epi32: an integer total, so the order does not matter.
        let total = mins_prod(&mins, &q8_subblock_sums(by))
            .into_iter()
            .fold(0i32, i32::wrapping_add);
        // `summs += dmin * total` in C; GCC (gnu11, -ffp-contract=fast, FMA enabled by
        // -march) compiles it to one fused multiply-add.
        summs = dmin.mul_add(total as f32, summs);

        let mut sumi = [0i32; 8];
        for j in 0..4 {
            let q: &[u8; 32] = bx.qs[32 * j..32 * j + 32].try_into().unwrap();
            let lo: [u8; 32] =
                std::array::from_fn(|b| (q[b] & 0x0f) + (((bx.qh[b] >> (2 * j)) & 1) << 4));
            let hi: [u8; 32] =
                std::array::from_fn(|b| (q[b] >> 4) + (((bx.qh[b] >> (2 * j + 1)) & 1) << 4));
            madd_chunk(&lo, &by.qs[64 * j..], |_| sc[2 * j] as i32, &mut sumi);
            madd_chunk(
                &hi,
                &by.qs[64 * j + 32..],
                |_| sc[2 * j + 1] as i32,
                &mut sumi,
            );
        }
        for (a, s) in acc.iter_mut().zip(sumi) {
            *a = d.mul_add(s as f32, *a);
        }
    }
    hsum8(acc) + summs
}

pub fn dot_q6_k_q8_k_scalar(x: &[BlockQ6K], y: &[BlockQ8K]) -> f32 {
    let mut acc = [0f32; 8];
    for (bx, by) in x.iter().zip(y) {
        let d = by.d * bx.d.to_f32();
        let sc = |i: usize| bx.scales[i] as i32;

        // The −32 offset, through the bsums: lane l covers 16-value groups 2l and 2l+1.
        let sub: [i32; 8] = std::array::from_fn(|l| {
            let p = (by.bsums[2 * l] as i32 * sc(2 * l))
                .wrapping_add(by.bsums[2 * l + 1] as i32 * sc(2 * l + 1));
            p.wrapping_shl(5)
        });

        let mut sumi = [0i32; 8];
        for j in 0..2 {
            let ql = &bx.ql[64 * j..64 * j + 64];
            let qh = &bx.qh[32 * j..32 * j + 32];
            // The four 32-value chunks of this half: low nibbles of ql[0..32], ql[32..64],
            // then the high nibbles, with qh bits 0-1, 2-3, 4-5, 6-7 on top.
            let mut q = [[0u8; 32]; 4];
            for b in 0..32 {
                let h = qh[b];
                q[0][b] = (ql[b] & 0x0f) | ((h & 3) << 4);
                q[1][b] = (ql[b + 32] & 0x0f) | (((h >> 2) & 3) << 4);
                q[2][b] = (ql[b] >> 4) | (((h >> 4) & 3) << 4);
                q[3][b] = (ql[b + 32] >> 4) | ((h >> 6) << 4);
            }
            for (k, q) in q.iter().enumerate() {
                // 16-value group 8j + 2k for bytes 0..16 (lanes 0..4), the next after.
                let (s0, s1) = (sc(8 * j + 2 * k), sc(8 * j + 2 * k + 1));
                let y = &by.qs[128 * j + 32 * k..];
                madd_chunk(q, y, |l| if l < 4 { s0 } else { s1 }, &mut sumi);
            }
        }
        for ((a, s), m) in acc.iter_mut().zip(sumi).zip(sub) {
            *a = d.mul_add(s.wrapping_sub(m) as f32, *a);
        }
    }
    hsum8(acc)
}
