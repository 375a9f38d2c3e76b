//! GGML K-quants: Q4_K, Q5_K and Q6_K weights times Q8_K activations, computed as
//! llama.cpp computes them.
//!
//! The blocks are GGML's super-blocks of `QK_K = 256` values, laid out byte for byte as in
//! `ggml-common.h`, so GGUF tensor bytes reinterpret as them. The activation quantization
//! is llama.cpp's `quantize_row_q8_K_ref` (what ggml-cpu uses on x86), and the dot products
//! follow the AVX2 branches of `ggml_vec_dot_q{4,5,6}_K_q8_K` in
//! `ggml-cpu/arch/x86/quants.c`: eight i32 lanes per super-block, converted and
//! fused-multiply-added with the super-block scale, the same handling of the mins and the
//! same horizontal sums. [`scalar`] does that arithmetic lane by lane and [`avx2`] with the
//! intrinsics; the two return identical bits.
//!
//! Checked once against llama.cpp's own C (from the llama-cpp-python 0.3.36 sdist; the dots
//! built with GCC 12 `-O3 -march=native -std=gnu11` as ggml-cpu is, `quantize_row_q8_K_ref`
//! without `-march` as ggml-base is): 900 rows of 1 to 13 super-blocks, candle-quantized and
//! random raw blocks, gave identical Q8_K bytes and identical dot-product bits. GCC
//! contracts Q5_K's `summs += dmin * total` into an FMA; so do we (unfused, 41 of 200 Q5_K
//! results differ in the last bit).

pub mod avx2;
pub mod scalar;
#[cfg(test)]
mod tests;

use super::blocks::as_blocks;
use candle_core::quantized::GgmlDType;
use half::f16;

/// Values per super-block.
pub const QK_K: usize = 256;
/// Bytes of packed 6-bit scales and mins in Q4_K / Q5_K.
pub const K_SCALE_SIZE: usize = 12;

/// 8 sub-blocks of 32 4-bit values: `x = d·sc·q − dmin·m`, with the 6-bit `sc`, `m` packed
/// in `scales`. Sub-blocks 2j and 2j+1 are the low and high nibbles of `qs[32j..32j+32]`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct BlockQ4K {
    pub d: f16,
    pub dmin: f16,
    pub scales: [u8; K_SCALE_SIZE],
    pub qs: [u8; QK_K / 2],
}

/// Like [`BlockQ4K`] with a fifth bit per value: bit j of `qh[l]` belongs to element
/// 32j + l.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct BlockQ5K {
    pub d: f16,
    pub dmin: f16,
    pub scales: [u8; K_SCALE_SIZE],
    pub qh: [u8; QK_K / 8],
    pub qs: [u8; QK_K / 2],
}

/// 16 sub-blocks of 16 6-bit values offset by 32, each with an i8 scale:
/// `x = d·scale·(q − 32)`. Low 4 bits in `ql`, high 2 bits in `qh`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct BlockQ6K {
    pub ql: [u8; QK_K / 2],
    pub qh: [u8; QK_K / 4],
    pub scales: [i8; QK_K / 16],
    pub d: f16,
}

/// Activations: `x ≈ d·q`, with the sums of each 16 consecutive `qs`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct BlockQ8K {
    pub d: f32,
    pub qs: [i8; QK_K],
    pub bsums: [i16; QK_K / 16],
}

impl Default for BlockQ8K {
    fn default() -> Self {
        BlockQ8K {
            d: 0.0,
            qs: [0; QK_K],
            bsums: [0; QK_K / 16],
        }
    }
}

const _: () = assert!(std::mem::size_of::<BlockQ4K>() == 144);
const _: () = assert!(std::mem::size_of::<BlockQ5K>() == 176);
const _: () = assert!(std::mem::size_of::<BlockQ6K>() == 210);
const _: () = assert!(std::mem::size_of::<BlockQ8K>() == 292);
// The weight blocks need only 2-byte alignment, which GGUF data and candle's block vectors
// have; BlockQ8K (f32) is only ever built by us in a Vec.
const _: () = assert!(std::mem::align_of::<BlockQ4K>() == 2);
const _: () = assert!(std::mem::align_of::<BlockQ5K>() == 2);
const _: () = assert!(std::mem::align_of::<BlockQ6K>() == 2);

/// llama.cpp's `nearest_int`: adding 1.5·2²³ rounds to the nearest integer, ties to even.
#[inline]
fn nearest_int(v: f32) -> i32 {
    let bits = (v + 12582912.0f32).to_bits() as i32;
    (bits & 0x007f_ffff) - 0x0040_0000
}

/// llama.cpp's `quantize_row_q8_K_ref`, bit for bit: the value of largest magnitude (the
/// first one on ties) keeps its sign, `iscale = −127/max`, `q = min(127, nearest(iscale·x))`,
/// `d = 1/iscale`, and `bsums` the sums of 16 consecutive `q`.
pub fn quantize_row_q8_k(x: &[f32], out: &mut [BlockQ8K]) {
    assert_eq!(
        x.len(),
        out.len() * QK_K,
        "quantize_row_q8_k: length mismatch"
    );
    for (b, x) in out.iter_mut().zip(x.chunks_exact(QK_K)) {
        let (mut max, mut amax) = (0f32, 0f32);
        for &v in x {
            if v.abs() > amax {
                amax = v.abs();
                max = v;
            }
        }
        if amax == 0.0 {
            *b = BlockQ8K::default();
            continue;
        }
        let iscale = -127.0f32 / max;
        for (q, &v) in b.qs.iter_mut().zip(x) {
            *q = nearest_int(iscale * v).min(127) as i8;
        }
        for (s, q) in b.bsums.iter_mut().zip(b.qs.chunks_exact(16)) {
            *s = q.iter().map(|&v| v as i32).sum::<i32>() as i16;
        }
        b.d = 1.0 / iscale;
    }
}

/// Activations of `x.len() / QK_K` super-blocks.
pub fn quantize_q8_k(x: &[f32]) -> Vec<BlockQ8K> {
    let mut out = vec![BlockQ8K::default(); x.len() / QK_K];
    quantize_row_q8_k(x, &mut out);
    out
}

#[cfg(target_arch = "x86_64")]
fn use_avx2() -> bool {
    static AVX2: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVX2.get_or_init(avx2::available)
}

macro_rules! dispatch {
    ($name:ident, $scalar:ident, $x:ty) => {
        /// Dot product of one weight row with one quantized activation row.
        pub fn $name(x: &[$x], y: &[BlockQ8K]) -> f32 {
            assert_eq!(
                x.len(),
                y.len(),
                "weight and activation rows differ in length"
            );
            #[cfg(target_arch = "x86_64")]
            if use_avx2() {
                // SAFETY: AVX2, FMA and F16C were detected at run time.
                return unsafe { avx2::$name(x, y) };
            }
            scalar::$scalar(x, y)
        }
    };
}

dispatch!(dot_q4_k_q8_k, dot_q4_k_q8_k_scalar, BlockQ4K);
dispatch!(dot_q5_k_q8_k, dot_q5_k_q8_k_scalar, BlockQ5K);
dispatch!(dot_q6_k_q8_k, dot_q6_k_q8_k_scalar, BlockQ6K);

/// Weight types this module computes.
pub fn supported(dtype: GgmlDType) -> bool {
    matches!(dtype, GgmlDType::Q4K | GgmlDType::Q5K | GgmlDType::Q6K)
}

/// Dot product of one weight row, given as its raw GGML bytes, with one activation row.
///
/// # Panics
/// When `dtype` is not [`supported`], or the bytes are not `acts.len()` aligned blocks.
pub fn dot_row(dtype: GgmlDType, weight_row_bytes: &[u8], acts: &[BlockQ8K]) -> f32 {
    match dtype {
        GgmlDType::Q4K => dot_q4_k_q8_k(as_blocks(weight_row_bytes), acts),
        GgmlDType::Q5K => dot_q5_k_q8_k(as_blocks(weight_row_bytes), acts),
        GgmlDType::Q6K => dot_q6_k_q8_k(as_blocks(weight_row_bytes), acts),
        other => panic!("kquants: unsupported weight type {other:?}"),
    }
}

/// One row's raw blocks dequantized to `out`, by candle's K-quant dequantizers (the same
/// values llama.cpp's give; checked in the tests).
///
/// # Panics
/// When `dtype` is not [`supported`] or `out` is not the row's length.
pub fn dequantize_row(dtype: GgmlDType, bytes: &[u8], out: &mut [f32]) {
    use candle_core::quantized::k_quants::{self as ck, GgmlType};
    /// # Safety
    /// `T` must be a `repr(C)` block type with the layout of the bytes.
    unsafe fn cast<T>(bytes: &[u8]) -> &[T] {
        let size = std::mem::size_of::<T>();
        assert_eq!(bytes.len() % size, 0, "not a whole number of blocks");
        assert_eq!(
            bytes.as_ptr() as usize % std::mem::align_of::<T>(),
            0,
            "misaligned blocks"
        );
        std::slice::from_raw_parts(bytes.as_ptr() as *const T, bytes.len() / size)
    }
    // SAFETY: candle's K-quant blocks are repr(C) with GGML's layout, as ours are (sizes
    // asserted above); f16 fields need alignment 2, checked by `cast`.
    unsafe {
        match dtype {
            GgmlDType::Q4K => ck::BlockQ4K::to_float(cast(bytes), out),
            GgmlDType::Q5K => ck::BlockQ5K::to_float(cast(bytes), out),
            GgmlDType::Q6K => ck::BlockQ6K::to_float(cast(bytes), out),
            other => panic!("kquants: unsupported weight type {other:?}"),
        }
    }
}
