//! GGML block formats and the activation quantization llama.cpp uses, bit for bit.
//!
//! The rounding matches llama.cpp's x86 code (`quantize_row_q8_0/q8_1` in ggml-cpu):
//! scale `d = amax / 127`, inverse `127 / amax`, round half to even, and for Q8_1 the block
//! sum `s = f16(d * Σq)`. Matching it matters: the default model has near-ties that a
//! different rounding flips.

use half::f16;

pub const QK: usize = 32;

/// `d`, `m` (f16) and 32 4-bit values: element j is the low nibble of `qs[j]`, element
/// j + 16 the high nibble.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct BlockQ4_1 {
    pub d: f16,
    pub m: f16,
    pub qs: [u8; 16],
}

/// `d` (f16) and 32 4-bit values offset by 8.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct BlockQ4_0 {
    pub d: f16,
    pub qs: [u8; 16],
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct BlockQ8_0 {
    pub d: f16,
    pub qs: [i8; 32],
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct BlockQ8_1 {
    pub d: f16,
    pub s: f16,
    pub qs: [i8; 32],
}

impl Default for BlockQ8_0 {
    fn default() -> Self {
        BlockQ8_0 {
            d: f16::ZERO,
            qs: [0; 32],
        }
    }
}

const _: () = assert!(std::mem::size_of::<BlockQ4_1>() == 20);
const _: () = assert!(std::mem::size_of::<BlockQ4_0>() == 18);
const _: () = assert!(std::mem::size_of::<BlockQ8_0>() == 34);
const _: () = assert!(std::mem::size_of::<BlockQ8_1>() == 36);

/// Reinterpret raw GGML bytes as blocks.
///
/// # Panics
/// When the byte length is not a whole number of blocks (the loader checks shapes first).
pub fn as_blocks<T: Copy>(bytes: &[u8]) -> &[T] {
    let size = std::mem::size_of::<T>();
    assert_eq!(
        bytes.len() % size,
        0,
        "GGML data is not a whole number of blocks"
    );
    // SAFETY: every block type here is repr(C) of f16/u8/i8 fields (alignment 2); the
    // tensor data comes from a Vec<block> or an aligned GGUF read, checked below.
    assert_eq!(
        bytes.as_ptr() as usize % std::mem::align_of::<T>(),
        0,
        "GGML data is misaligned"
    );
    unsafe { std::slice::from_raw_parts(bytes.as_ptr() as *const T, bytes.len() / size) }
}

/// Scale and rounded values of one 32-value block, as llama.cpp's AVX2 code computes them.
#[inline]
fn quantize_block(x: &[f32], qs: &mut [i8; 32]) -> (f32, i32) {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    let mut sum = 0i32;
    for (q, &v) in qs.iter_mut().zip(x) {
        let r = (v * id).round_ties_even() as i32;
        *q = r as i8;
        sum += r;
    }
    (d, sum)
}

pub fn quantize_row_q8_0(x: &[f32], out: &mut [BlockQ8_0]) {
    #[cfg(target_arch = "x86_64")]
    if super::avx2::available() {
        // SAFETY: AVX2, FMA and F16C were detected at run time.
        return unsafe { super::quant_x86::quantize_row_q8_0(x, out) };
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: NEON is part of every aarch64 CPU.
    return unsafe { super::neon::quantize_row_q8_0(x, out) };
    #[allow(unreachable_code)]
    quantize_row_q8_0_scalar(x, out)
}

pub fn quantize_row_q8_1(x: &[f32], out: &mut [BlockQ8_1]) {
    #[cfg(target_arch = "x86_64")]
    if super::avx2::available() {
        // SAFETY: AVX2, FMA and F16C were detected at run time.
        return unsafe { super::quant_x86::quantize_row_q8_1(x, out) };
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: NEON is part of every aarch64 CPU.
    return unsafe { super::neon::quantize_row_q8_1(x, out) };
    #[allow(unreachable_code)]
    quantize_row_q8_1_scalar(x, out)
}

/// The portable reference of [`quantize_row_q8_0`].
pub fn quantize_row_q8_0_scalar(x: &[f32], out: &mut [BlockQ8_0]) {
    for (b, chunk) in out.iter_mut().zip(x.chunks_exact(QK)) {
        let (d, _) = quantize_block(chunk, &mut b.qs);
        b.d = f16::from_f32(d);
    }
}

/// The portable reference of [`quantize_row_q8_1`].
pub fn quantize_row_q8_1_scalar(x: &[f32], out: &mut [BlockQ8_1]) {
    for (b, chunk) in out.iter_mut().zip(x.chunks_exact(QK)) {
        let (d, sum) = quantize_block(chunk, &mut b.qs);
        b.d = f16::from_f32(d);
        b.s = f16::from_f32(d * sum as f32);
    }
}
