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
//! and each lane's sum starts at `−128 · Σ q_w` of its four weights (one `vpdpbusd` per
//! weight block, shared by the four activation rows), which removes the excess exactly.
//! Compared with offsets on the activation side this keeps the activations at 32 bytes
//! a block, which is what the tiles stream.

use super::blocks::BlockQ8_0;
use std::arch::x86_64::*;

/// Q8_0 activation values as unsigned bytes: `q + 128`.
pub fn flip(b: &BlockQ8_0) -> [u8; 32] {
    b.qs.map(|q| (q as u8) ^ 0x80)
}

/// The activation rows of a tile, block by block.
#[derive(Clone, Copy)]
pub struct Acts<'a> {
    /// [`flip`]ped values: block `b` of row `c` at `c·nb + b`.
    pub qu: &'a [[u8; 32]],
    /// Block scales `d` as f32, block-major: block `b` of row `c` at `b·m + c`.
    pub d: &'a [f32],
    pub m: usize,
}

/// Lane `4c + r` ← lane `idx(c, r)` of the source.
const fn pattern(of_row: bool, pick: [i32; 4]) -> [i32; 16] {
    let mut out = [0i32; 16];
    let mut i = 0;
    while i < 16 {
        out[i] = if of_row { pick[i % 4] } else { pick[i / 4] };
        i += 1;
    }
    out
}

const D_OF_ROW: [i32; 16] = pattern(true, [0, 2, 4, 6]);
const OF_COL: [i32; 16] = pattern(false, [0, 1, 2, 3]);

#[inline]
#[target_feature(enable = "avx512f,avx512vl,avx2,fma,f16c")]
unsafe fn idx(p: &[i32; 16]) -> __m512i {
    _mm512_loadu_si512(p.as_ptr() as *const __m512i)
}

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

/// Weight rows `r0..r0+4` × activation rows `c0..c0+C` into `out[c][r]`.
///
/// # Safety
/// The CPU must have AVX-512 F/BW/VL/VNNI, AVX2, FMA and F16C; `w` holds the rows' `nb`
/// blocks each, `a` the activation rows (`c0 + C <= a.m`).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub unsafe fn tile<const C: usize>(
    w: &[BlockQ8_0],
    a: Acts<'_>,
    nb: usize,
    r0: usize,
    c0: usize,
    out: &mut [[f32; 4]; C],
) {
    debug_assert!(w.len() >= (r0 + 4) * nb && c0 + C <= a.m);
    let (pd, pc) = (idx(&D_OF_ROW), idx(&OF_COL));
    let cols = (1u8 << C) - 1;
    let mut acc = [[_mm256_setzero_ps(); 4]; C];
    // The scale products of SPAN blocks, lane 4c + r of each 16: a separate pass, so the
    // dot products below read each as a broadcast from memory.
    let mut scales = std::mem::MaybeUninit::<[f32; 16 * SPAN]>::uninit();
    let scales = scales.as_mut_ptr() as *mut f32; // each block's 16 are written before read
    let wp = w.as_ptr();
    let rows = [0, 1, 2, 3].map(|r| wp.add((r0 + r) * nb));
    let qu = a.qu.as_ptr();
    // The rows PF ahead are fetched by hand while these are computed (the hardware
    // prefetchers lose track of four short interleaved row streams; a hint, never faults).
    const PF: usize = 8;
    let size = std::mem::size_of::<BlockQ8_0>();
    let ahead = (wp as *const i8).wrapping_add((r0 + PF) * nb * size);
    let per = (4 * nb * size).div_ceil(64).div_ceil(nb);
    let mut b0 = 0;
    while b0 < nb {
        let span = SPAN.min(nb - b0);
        for j in 0..span {
            let b = b0 + j;
            // [d0, _, d1, _, d2, _, d3, _] (the odd lanes are the blocks' next bytes).
            let head = |r: usize| std::ptr::read_unaligned(rows[r].add(b) as *const i32);
            let dm = _mm512_castps256_ps512(_mm256_cvtph_ps(_mm_setr_epi32(head(0), head(1), head(2), head(3))));
            let da = _mm_maskz_loadu_ps(cols, a.d.as_ptr().add(b * a.m + c0));
            let da = _mm512_permutexvar_ps(pc, _mm512_castps128_ps512(da));
            let prod = _mm512_mul_ps(_mm512_permutexvar_ps(pd, dm), da);
            _mm512_storeu_ps(scales.add(16 * j), prod);
        }
        for j in 0..span {
            let b = b0 + j;
            if c0 == 0 {
                for i in 0..per {
                    _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add((b * per + i) * 64));
                }
            }
            // Each weight block, and its lanes' −128·Σq_w to start the sums at.
            let mut wv = [_mm256_setzero_si256(); 4];
            let mut start = [_mm256_setzero_si256(); 4];
            for ((v, st), row) in wv.iter_mut().zip(&mut start).zip(&rows) {
                *v = _mm256_loadu_si256((*row.add(b)).qs.as_ptr() as *const __m256i);
                let excess = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(-128), *v);
                *st = _mm256_sub_epi32(_mm256_setzero_si256(), excess);
            }
            let sc = scales.add(16 * j) as *const f32;
            for (c, acc) in acc.iter_mut().enumerate() {
                let y = _mm256_loadu_si256(qu.add((c0 + c) * nb + b) as *const __m256i);
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
