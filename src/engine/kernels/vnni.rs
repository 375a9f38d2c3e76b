//! AVX-512 VNNI tiles for Q8_0 weights against several activation rows at once (prefill,
//! batched decode): four weight rows × up to four activation rows per call, the weights
//! read in place. (Q4_0 and Q4_1 run faster on the paired-row tiles of
//! [`super::avx512`], measured.)
//!
//! Each of the 16 (weight row, activation row) cells keeps its own eight-lane f32
//! accumulator in a 256-bit register, exactly as the single-row dot products of
//! [`super::avx2`] do: per block, lane l gets `fma(d_w·d_a, Σ_{4l..4l+4} q_w·q_a, acc_l)`,
//! and the result is llama.cpp's `hsum_float_8` of the lanes. So every cell has the bits
//! of the single-row dot product. What the tile saves: one weight block serves four
//! activation rows, one activation block four weight rows, and the sixteen scale products
//! of a block come from one vector multiply (llama.cpp's f32 products `d_w·d_a`), computed
//! in a pass ahead so each FMA takes its scale as a broadcast from memory.
//!
//! `vpdpbusd` multiplies unsigned by signed bytes. The activations come as unsigned bytes
//! (`q_a + 128`, made once per activation block: [`flip`]) against the signed weights,
//! and each lane's sum starts at `−128 · Σ q_w` of its four weights, which removes the
//! excess exactly. The weights of a panel of rows are [`pack`]ed once per matmul call
//! (values aligned, those starting sums, the scales as f32) and then meet every group of
//! activation rows from L1.

use super::blocks::BlockQ8_0;
use std::arch::x86_64::*;

/// Fewest activation rows for which packing a panel pays for itself (each packed weight
/// block then serves at least four tiles); fewer go to the paired-row tiles.
pub const MIN_ROWS: usize = 16;

/// 32 bytes on a 32-byte boundary (one block's values, never split across cache lines).
#[derive(Clone, Copy, Default)]
#[repr(C, align(32))]
pub struct Bytes32(pub [u8; 32]);

/// Q8_0 activation values as unsigned bytes: `q + 128`.
pub fn flip(b: &BlockQ8_0) -> Bytes32 {
    Bytes32(b.qs.map(|q| (q as u8) ^ 0x80))
}

/// The activation rows of a tile, block by block.
#[derive(Clone, Copy)]
pub struct Acts<'a> {
    /// [`flip`]ped values: block `b` of row `c` at `c·nb + b`.
    pub qu: &'a [Bytes32],
    /// Block scales `d` as f32, block-major: block `b` of row `c` at `b·m + c`.
    pub d: &'a [f32],
    pub m: usize,
}

/// One block of four weight rows, repacked for the tile: the values on 32-byte
/// boundaries, each lane's `−128 · Σ q_w` (where the unsigned-by-signed sums start) and
/// the scales as f32.
#[derive(Clone, Copy)]
#[repr(C, align(32))]
pub struct Packed {
    qs: [[i8; 32]; 4],
    start: [[i32; 8]; 4],
    d: [f32; 4],
}

impl Default for Packed {
    fn default() -> Self {
        Packed {
            qs: [[0; 32]; 4],
            start: [[0; 8]; 4],
            d: [0.0; 4],
        }
    }
}

/// Repack weight rows `r0..r0+4` (`nb` blocks each) into `out` (`nb` entries).
///
/// # Safety
/// The CPU must have AVX-512 F/BW/VL/VNNI, AVX2 and F16C; `w` must hold the rows.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub unsafe fn pack(w: &[BlockQ8_0], nb: usize, r0: usize, out: &mut [Packed]) {
    debug_assert!(w.len() >= (r0 + 4) * nb && out.len() >= nb);
    let rows = [0, 1, 2, 3].map(|r| w.as_ptr().add((r0 + r) * nb));
    let excess = _mm256_set1_epi8(-128);
    for (b, p) in out.iter_mut().enumerate().take(nb) {
        let mut d = [0u16; 4];
        for r in 0..4 {
            let blk = &*rows[r].add(b);
            let v = _mm256_loadu_si256(blk.qs.as_ptr() as *const __m256i);
            _mm256_store_si256(p.qs[r].as_mut_ptr() as *mut __m256i, v);
            let sum = _mm256_dpbusd_epi32(_mm256_setzero_si256(), excess, v);
            let start = _mm256_sub_epi32(_mm256_setzero_si256(), sum);
            _mm256_store_si256(p.start[r].as_mut_ptr() as *mut __m256i, start);
            d[r] = blk.d.to_bits();
        }
        let d = _mm_cvtph_ps(_mm_loadl_epi64(d.as_ptr() as *const __m128i));
        _mm_store_ps(p.d.as_mut_ptr(), d);
    }
}

/// Lane `4c + r` ← source lane `c`.
const OF_COL: [i32; 16] = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3];

/// llama.cpp's `hsum_float_8`.
#[inline]
#[target_feature(enable = "avx512f,avx512vl,avx2,fma,f16c")]
unsafe fn hsum8(x: __m256) -> f32 {
    let mut r = _mm256_extractf128_ps::<1>(x);
    r = _mm_add_ps(r, _mm256_castps256_ps128(x));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    _mm_cvtss_f32(r)
}

/// Blocks whose scale products one pass of [`tile`] computes ahead of the dot products.
const SPAN: usize = 32;

/// Four [`pack`]ed weight rows × activation rows `c0..c0+C` into `out[c][r]`.
///
/// # Safety
/// The CPU must have AVX-512 F/BW/VL/VNNI, AVX2, FMA and F16C; `w` holds `nb` packed
/// blocks, `a` the activation rows (`c0 + C <= a.m`).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub unsafe fn tile<const C: usize>(
    w: &[Packed],
    a: Acts<'_>,
    nb: usize,
    c0: usize,
    out: &mut [[f32; 4]; C],
) {
    debug_assert!(w.len() >= nb && c0 + C <= a.m);
    let pc = _mm512_loadu_si512(OF_COL.as_ptr() as *const __m512i);
    let cols = (1u8 << C) - 1;
    let mut acc = [[_mm256_setzero_ps(); 4]; C];
    // The scale products of SPAN blocks, lane 4c + r of each 16: a separate pass, so the
    // dot products below read each as a broadcast from memory.
    let mut scales = std::mem::MaybeUninit::<[f32; 16 * SPAN]>::uninit();
    let scales = scales.as_mut_ptr() as *mut f32; // each block's 16 are written before read
    let wp = w.as_ptr();
    let qu = a.qu.as_ptr();
    let mut b0 = 0;
    while b0 < nb {
        let span = SPAN.min(nb - b0);
        for j in 0..span {
            let b = b0 + j;
            let dw = _mm512_broadcast_f32x4(_mm_load_ps((*wp.add(b)).d.as_ptr()));
            let da = _mm_maskz_loadu_ps(cols, a.d.as_ptr().add(b * a.m + c0));
            let da = _mm512_permutexvar_ps(pc, _mm512_castps128_ps512(da));
            _mm512_storeu_ps(scales.add(16 * j), _mm512_mul_ps(dw, da));
        }
        for j in 0..span {
            let p = &*wp.add(b0 + j);
            let sc = scales.add(16 * j) as *const f32;
            let mut wv = [_mm256_setzero_si256(); 4];
            let mut start = [_mm256_setzero_si256(); 4];
            for r in 0..4 {
                wv[r] = _mm256_load_si256(p.qs[r].as_ptr() as *const __m256i);
                start[r] = _mm256_load_si256(p.start[r].as_ptr() as *const __m256i);
            }
            for (c, acc) in acc.iter_mut().enumerate() {
                let y = _mm256_load_si256(qu.add((c0 + c) * nb + b0 + j) as *const __m256i);
                for (r, acc) in acc.iter_mut().enumerate() {
                    let t = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(start[r], y, wv[r]));
                    *acc = _mm256_fmadd_ps(_mm256_broadcast_ss(&*sc.add(4 * c + r)), t, *acc);
                }
            }
        }
        b0 += span;
    }
    for (o, acc) in out.iter_mut().zip(&acc) {
        for (o, acc) in o.iter_mut().zip(acc) {
            *o = hsum8(*acc);
        }
    }
}
