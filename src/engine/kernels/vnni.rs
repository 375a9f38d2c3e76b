//! AVX-512 VNNI tiles for several activation rows at once (prefill, batched decode): four
//! weight rows × up to four activation rows per call, for Q8_0 and Q4_0 weights read in
//! place (Q4_1 runs faster on the paired-row tiles of [`super::avx512`], measured).
//!
//! Each of the 16 (weight row, activation row) cells keeps its own eight-lane f32
//! accumulator in a 256-bit register, exactly as the single-row dot products of
//! [`super::avx2`] do: per block, lane l gets `fma(d_w·d_a, Σ_{4l..4l+4} q_w·q_a, acc_l)`,
//! and the result is llama.cpp's `hsum_float_8` of the lanes. So every cell has the bits
//! of the single-row dot product. What the tile saves: one unpacked weight block serves
//! four activation rows, one activation block four weight rows, and the sixteen scale
//! products of a block come from one vector multiply (llama.cpp's f32 products `d_w·d_a`),
//! computed in a pass ahead so each FMA takes its scale as a broadcast from memory.
//!
//! `vpdpbusd` multiplies unsigned by signed bytes: Q4_0 nibbles (value + 8) and Q8_0 bytes
//! xor 0x80 (value + 128) are unsigned, and the excess is removed by starting each lane's
//! sum at −8 or −128 times the lane's activation sum ([`super::avx512::lane_offsets`]).

use super::blocks::{BlockQ4_0, BlockQ8_0};
use std::arch::x86_64::*;

/// A weight block type the tiles take.
pub trait Weight: Copy {
    /// Which lane offsets the activations need: 0 for Q4_0's, 1 for Q8_0's.
    const OFFSETS: usize;
    /// The block's 32 values as unsigned bytes, in the activation's order.
    ///
    /// # Safety
    /// AVX2 must be available.
    unsafe fn unpack(&self) -> __m256i;
    /// The block's first four bytes, `d` (f16) first.
    #[inline(always)]
    fn head(&self) -> i32 {
        // SAFETY: every block starts with at least four bytes.
        unsafe { std::ptr::read_unaligned(self as *const Self as *const i32) }
    }
}

#[inline(always)]
unsafe fn nibbles(qs: &[u8; 16]) -> __m256i {
    let v = _mm_loadu_si128(qs.as_ptr() as *const __m128i);
    let both = _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(v), _mm_srli_epi16::<4>(v));
    _mm256_and_si256(both, _mm256_set1_epi8(0x0f))
}

impl Weight for BlockQ4_0 {
    const OFFSETS: usize = 0;
    #[inline(always)]
    unsafe fn unpack(&self) -> __m256i {
        nibbles(&self.qs)
    }
}

impl Weight for BlockQ8_0 {
    const OFFSETS: usize = 1;
    #[inline(always)]
    unsafe fn unpack(&self) -> __m256i {
        let v = _mm256_loadu_si256(self.qs.as_ptr() as *const __m256i);
        _mm256_xor_si256(v, _mm256_set1_epi8(-128))
    }
}

/// The activation rows of a tile, block by block.
#[derive(Clone, Copy)]
pub struct Acts<'a> {
    /// Address of row 0's block 0 quantized values; block `(c, b)` is at `c·nb + b`
    /// blocks of `block` bytes further.
    pub qs: *const i8,
    pub block: usize,
    /// Per block, −8·(lane sums) and −128·(lane sums) (row-major like the blocks).
    pub offs: &'a [([i32; 8], [i32; 8])],
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
/// blocks each, `a` the activation rows (`c0 + C <= a.m`) with their lane offsets.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub unsafe fn tile<W: Weight, const C: usize>(
    w: &[W],
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
    let offs = a.offs.as_ptr();
    // The rows PF ahead are fetched by hand while these are computed (the hardware
    // prefetchers lose track of four short interleaved row streams; a hint, never faults).
    const PF: usize = 8;
    let size = std::mem::size_of::<W>();
    let ahead = (wp as *const i8).wrapping_add((r0 + PF) * nb * size);
    let per = (4 * nb * size).div_ceil(64).div_ceil(nb);
    let mut b0 = 0;
    while b0 < nb {
        let span = SPAN.min(nb - b0);
        for j in 0..span {
            let b = b0 + j;
            // [d0, _, d1, _, d2, _, d3, _] (the odd lanes are the blocks' next bytes).
            let dm = _mm512_castps256_ps512(_mm256_cvtph_ps(_mm_setr_epi32(
                (*rows[0].add(b)).head(),
                (*rows[1].add(b)).head(),
                (*rows[2].add(b)).head(),
                (*rows[3].add(b)).head(),
            )));
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
            let mut wv = [_mm256_setzero_si256(); 4];
            for (v, row) in wv.iter_mut().zip(&rows) {
                *v = (*row.add(b)).unpack();
            }
            let sc = scales.add(16 * j) as *const f32;
            for (c, acc) in acc.iter_mut().enumerate() {
                let i = (c0 + c) * nb + b;
                let y = _mm256_loadu_si256(a.qs.add(i * a.block) as *const __m256i);
                let off = if W::OFFSETS == 0 { &(*offs.add(i)).0 } else { &(*offs.add(i)).1 };
                let start = _mm256_loadu_si256(off.as_ptr() as *const __m256i);
                for (r, acc) in acc.iter_mut().enumerate() {
                    let t = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(start, wv[r], y));
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
