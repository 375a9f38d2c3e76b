//! AVX-512 VNNI tiles: four weight rows against up to four activation rows per call, for
//! Q4_0, Q4_1 and Q8_0 weights in their GGML layout (read in place, nothing repacked).
//!
//! A 512-bit register holds two weight rows side by side, each in the lane order of the
//! AVX2 kernels ([`super::avx2`]): lane l of a row is the integer sum of products 4l..4l+4,
//! computed here by `vpdpbusd` (exact, like `maddubs`+`madd` — no sums can saturate),
//! then fused-multiply-added with the same block scale. Every row keeps its own chain of
//! FMAs over the blocks and the same horizontal sum, so each result has exactly the bits
//! of the AVX2 and scalar dot products; only the work per instruction grows, and one
//! unpacked weight block serves several activation rows (prefill).
//!
//! `vpdpbusd` multiplies unsigned by signed bytes. Q4_1 nibbles are unsigned already; Q4_0
//! nibbles (value + 8) and Q8_0 bytes xor 0x80 (value + 128) are too, and the excess is
//! removed by starting each lane's sum at −8 or −128 times the lane's activation sum
//! ([`lane_offsets`], computed once per activation block).

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::blocks::{BlockQ4_0, BlockQ4_1, BlockQ8_0, BlockQ8_1};

/// Whether this CPU can run these kernels.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx512vnni")
            && super::avx2::available()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

crate::engine::fast::fast_fn! {
    /// Per activation block: −8·(lane sums) for Q4_0 and −128·(lane sums) for Q8_0
    /// weights, where lane l sums activation bytes 4l..4l+4.
    pub fn lane_offsets(y: &BlockQ8_0) -> ([i32; 8], [i32; 8]) {
        let mut s = [0i32; 8];
        for (l, v) in s.iter_mut().enumerate() {
            *v = y.qs[4 * l..4 * l + 4].iter().map(|&q| q as i32).sum();
        }
        (s.map(|v| -8 * v), s.map(|v| -128 * v))
    }
}

/// llama.cpp's `hsum_float_8` of lanes `l[0..8]`.
#[cfg(target_arch = "x86_64")]
#[inline]
fn hsum8(l: &[f32]) -> f32 {
    let r = [l[0] + l[4], l[1] + l[5], l[2] + l[6], l[3] + l[7]];
    (r[0] + r[2]) + (r[1] + r[3])
}

/// The weight types, as block slices of the whole matrix.
#[derive(Clone, Copy)]
pub enum W<'a> {
    Q4_0(&'a [BlockQ4_0]),
    Q4_1(&'a [BlockQ4_1]),
    Q8_0(&'a [BlockQ8_0]),
}

impl W<'_> {
    /// Bytes per block.
    pub fn block_bytes(&self) -> usize {
        match self {
            W::Q4_0(_) => std::mem::size_of::<BlockQ4_0>(),
            W::Q4_1(_) => std::mem::size_of::<BlockQ4_1>(),
            W::Q8_0(_) => std::mem::size_of::<BlockQ8_0>(),
        }
    }
}

/// Activation rows for a tile: Q8_1 blocks (Q4_1 weights) or Q8_0 blocks with their lane
/// offsets (Q4_0: `.0`, Q8_0: `.1`), each row `nb` blocks long.
#[derive(Clone, Copy)]
pub enum A<'a> {
    Q8_1(&'a [BlockQ8_1]),
    Q8_0(&'a [BlockQ8_0], &'a [([i32; 8], [i32; 8])]),
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn u32_at<T>(p: &T) -> i32 {
    std::ptr::read_unaligned(p as *const T as *const i32)
}

/// Rows `r0..r0+4` × activation rows `c0..c0+CT` into `out[c][r]`.
///
/// # Safety
/// The CPU must have AVX-512 F/BW/VL/VNNI, AVX2, FMA and F16C ([`available`]); rows and
/// columns must exist; `w` and `a` must be of matching kinds (Q4_1 with Q8_1).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub unsafe fn tile<const CT: usize>(
    w: W<'_>,
    a: A<'_>,
    nb: usize,
    r0: usize,
    c0: usize,
    out: &mut [[f32; 4]; CT],
) {
    let m4 = _mm256_set1_epi8(0x0f);
    let flip = _mm512_set1_epi8(-128);
    // [lo(r), hi(r), lo(r+1), hi(r+1)] from lo = [lo(r), lo(r+1)], hi = [hi(r), hi(r+1)].
    let lohi = _mm512_set_epi64(11, 10, 3, 2, 9, 8, 1, 0);
    // Scale lanes: [d(r)·d ×8, d(r+1)·d ×8] for rows 0,1 and rows 2,3.
    let pick01 = _mm512_set_epi32(2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0);
    let pick23 = _mm512_set_epi32(6, 6, 6, 6, 6, 6, 6, 6, 4, 4, 4, 4, 4, 4, 4, 4);
    let mut acc01 = [_mm512_setzero_ps(); CT];
    let mut acc23 = [_mm512_setzero_ps(); CT];
    let mut summs = [_mm256_setzero_ps(); CT];
    let row = |r: usize, b: usize| (r0 + r) * nb + b;
    // The hardware prefetchers lose track of four short interleaved row streams, so the
    // rows `PF` ahead are fetched by hand while these are computed (a hint: never faults).
    const PF: usize = 8;
    let (base, block_bytes) = match w {
        W::Q4_0(x) => (x.as_ptr() as *const i8, std::mem::size_of::<BlockQ4_0>()),
        W::Q4_1(x) => (x.as_ptr() as *const i8, std::mem::size_of::<BlockQ4_1>()),
        W::Q8_0(x) => (x.as_ptr() as *const i8, std::mem::size_of::<BlockQ8_0>()),
    };
    let ahead = base.wrapping_add(row(PF, 0) * block_bytes);
    let lines = (4 * nb * block_bytes).div_ceil(64);
    let per = lines.div_ceil(nb);
    for b in 0..nb {
        for i in 0..per {
            _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add((b * per + i) * 64));
        }
        // The four rows' scales (and Q4_1 mins) as f32: [d0, m0, d1, m1, d2, m2, d3, m3]
        // (the odd lanes are unused for Q4_0 and Q8_0).
        let (wsc, z01, z23) = match w {
            W::Q4_1(x) => {
                let dm = _mm_setr_epi32(
                    u32_at(&x[row(0, b)]),
                    u32_at(&x[row(1, b)]),
                    u32_at(&x[row(2, b)]),
                    u32_at(&x[row(3, b)]),
                );
                let nib = |p: usize, q: usize| {
                    let v = _mm256_loadu2_m128i(
                        x[row(q, b)].qs.as_ptr() as *const __m128i,
                        x[row(p, b)].qs.as_ptr() as *const __m128i,
                    );
                    let lo = _mm256_and_si256(v, m4);
                    let hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
                    _mm512_permutex2var_epi64(
                        _mm512_castsi256_si512(lo),
                        lohi,
                        _mm512_castsi256_si512(hi),
                    )
                };
                (_mm256_cvtph_ps(dm), nib(0, 1), nib(2, 3))
            }
            W::Q4_0(x) => {
                let dm = _mm_setr_epi32(
                    u32_at(&x[row(0, b)]),
                    u32_at(&x[row(1, b)]),
                    u32_at(&x[row(2, b)]),
                    u32_at(&x[row(3, b)]),
                );
                let nib = |p: usize, q: usize| {
                    let v = _mm256_loadu2_m128i(
                        x[row(q, b)].qs.as_ptr() as *const __m128i,
                        x[row(p, b)].qs.as_ptr() as *const __m128i,
                    );
                    let lo = _mm256_and_si256(v, m4);
                    let hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
                    _mm512_permutex2var_epi64(
                        _mm512_castsi256_si512(lo),
                        lohi,
                        _mm512_castsi256_si512(hi),
                    )
                };
                (_mm256_cvtph_ps(dm), nib(0, 1), nib(2, 3))
            }
            W::Q8_0(x) => {
                let dm = _mm_setr_epi32(
                    u32_at(&x[row(0, b)]),
                    u32_at(&x[row(1, b)]),
                    u32_at(&x[row(2, b)]),
                    u32_at(&x[row(3, b)]),
                );
                let pair = |p: usize, q: usize| {
                    let lo = _mm256_loadu_si256(x[row(p, b)].qs.as_ptr() as *const __m256i);
                    let hi = _mm256_loadu_si256(x[row(q, b)].qs.as_ptr() as *const __m256i);
                    _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1), flip)
                };
                (_mm256_cvtph_ps(dm), pair(0, 1), pair(2, 3))
            }
        };
        for c in 0..CT {
            let (yq, ysc, start) = match a {
                A::Q8_1(y) => {
                    let y = &y[(c0 + c) * nb + b];
                    let ds = _mm_cvtph_ps(_mm_cvtsi32_si128(u32_at(y)));
                    let ds = _mm256_castpd_ps(_mm256_broadcastsd_pd(_mm_castps_pd(ds)));
                    (y.qs.as_ptr(), ds, _mm512_setzero_si512())
                }
                A::Q8_0(y, offs) => {
                    let i = (c0 + c) * nb + b;
                    let d = _mm_cvtph_ps(_mm_cvtsi32_si128(u32_at(&y[i])));
                    let off = match w {
                        W::Q4_0(_) => &offs[i].0,
                        _ => &offs[i].1,
                    };
                    let off =
                        _mm512_broadcast_i64x4(_mm256_loadu_si256(off.as_ptr() as *const __m256i));
                    (y[i].qs.as_ptr(), _mm256_broadcastss_ps(d), off)
                }
            };
            let yv = _mm512_broadcast_i64x4(_mm256_loadu_si256(yq as *const __m256i));
            let prod = _mm256_mul_ps(wsc, ysc);
            if let W::Q4_1(_) = w {
                summs[c] = _mm256_add_ps(summs[c], prod);
            }
            let p = _mm512_castps256_ps512(prod);
            let s01 = _mm512_permutexvar_ps(pick01, p);
            let s23 = _mm512_permutexvar_ps(pick23, p);
            let d01 = _mm512_dpbusd_epi32(start, z01, yv);
            let d23 = _mm512_dpbusd_epi32(start, z23, yv);
            acc01[c] = _mm512_fmadd_ps(s01, _mm512_cvtepi32_ps(d01), acc01[c]);
            acc23[c] = _mm512_fmadd_ps(s23, _mm512_cvtepi32_ps(d23), acc23[c]);
        }
    }
    for c in 0..CT {
        let mut l01 = [0f32; 16];
        let mut l23 = [0f32; 16];
        let mut sm = [0f32; 8];
        _mm512_storeu_ps(l01.as_mut_ptr(), acc01[c]);
        _mm512_storeu_ps(l23.as_mut_ptr(), acc23[c]);
        _mm256_storeu_ps(sm.as_mut_ptr(), summs[c]);
        out[c] = [
            hsum8(&l01[..8]),
            hsum8(&l01[8..]),
            hsum8(&l23[..8]),
            hsum8(&l23[8..]),
        ];
        if let W::Q4_1(_) = w {
            for (r, o) in out[c].iter_mut().enumerate() {
                *o += sm[2 * r + 1];
            }
        }
    }
}
