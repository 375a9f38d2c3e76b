//! Our quantized matrix multiplication for the CPU: GGML Q4_0, Q4_1 and Q8_0 weights
//! times activations quantized on the fly (Q8_0 / Q8_1), computed as llama.cpp computes
//! them so greedy outputs agree with it, split across threads by output rows.

pub mod avx2;
pub mod blocks;
pub mod dot;
pub mod kquants;

use blocks::{
    as_blocks, quantize_row_q8_0, quantize_row_q8_1, BlockQ4_0, BlockQ4_1, BlockQ8_0, BlockQ8_1, QK,
};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::utils::barrier_pool;
use candle_core::{Result, Tensor};
use std::sync::Arc;

/// Weight types this module computes.
pub fn supported(dtype: GgmlDType) -> bool {
    matches!(dtype, GgmlDType::Q4_0 | GgmlDType::Q4_1 | GgmlDType::Q8_0)
}

/// A quantized weight matrix `(n, k)` stored as GGML blocks.
#[derive(Clone, Debug)]
pub struct QWeight {
    q: Arc<QTensor>,
    n: usize,
    k: usize,
}

/// Rows of activations quantized to the weight type's partner format.
fn quantize<B: Default + Clone>(xs: &[f32], k: usize, row: fn(&[f32], &mut [B])) -> Vec<B> {
    let mut a = vec![B::default(); xs.len() / QK];
    a.chunks_mut(k / QK)
        .zip(xs.chunks(k))
        .for_each(|(o, r)| row(r, o));
    a
}

/// `out (m, n) = acts (m, k) · weightsᵀ (n, k)`, both as blocks (`nb` per row).
struct MatMul {
    m: usize,
    n: usize,
    nb: usize,
}

impl MatMul {
    /// Work items are blocks of weight rows, each against every activation row, on
    /// candle's low-latency barrier pool (the same threads candle's own ops use). Four rows
    /// at a time share the activation loads; every row's result equals `dot1` of it.
    fn run<W: Sync, A: Sync>(
        &self,
        w: &[W],
        acts: &[A],
        dot1: fn(&[W], &[A]) -> f32,
        dot4: impl Fn([&[W]; 4], &[A]) -> [f32; 4] + Sync,
        out: &mut [f32],
    ) {
        const ROWS: usize = 8;
        let MatMul { m, n, nb } = *self;
        let dst = SyncPtr(out.as_mut_ptr());
        let row = |r: usize| &w[r * nb..(r + 1) * nb];
        barrier_pool().execute_chunked(n.div_ceil(ROWS), |items| {
            let dst = &dst;
            // SAFETY: each (col, row) cell is written by exactly one work item, and `out`
            // outlives the pool call.
            let put = |col: usize, r: usize, v: f32| unsafe { *dst.0.add(col * n + r) = v };
            for item in items {
                let (start, end) = (item * ROWS, n.min(item * ROWS + ROWS));
                for col in 0..m {
                    let a = &acts[col * nb..(col + 1) * nb];
                    let mut r = start;
                    while r + 4 <= end {
                        let vals = dot4([0, 1, 2, 3].map(|i| row(r + i)), a);
                        vals.into_iter()
                            .enumerate()
                            .for_each(|(i, v)| put(col, r + i, v));
                        r += 4;
                    }
                    for r in r..end {
                        put(col, r, dot1(row(r), a));
                    }
                }
            }
        });
    }
}

/// A raw pointer the pool's workers may share; each writes disjoint cells.
struct SyncPtr(*mut f32);
unsafe impl Sync for SyncPtr {}

fn use_avx2() -> bool {
    static AVX2: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVX2.get_or_init(avx2::available)
}

macro_rules! dispatch {
    ($name:ident, $x:ty, $y:ty) => {
        /// Dot product of one weight row with one quantized activation row.
        pub fn $name(x: &[$x], y: &[$y]) -> f32 {
            #[cfg(target_arch = "x86_64")]
            if use_avx2() {
                // SAFETY: AVX2, FMA and F16C were detected at run time.
                return unsafe { avx2::$name(x, y) };
            }
            paste_scalar!($name)(x, y)
        }
    };
}

macro_rules! paste_scalar {
    (dot_q4_1_q8_1) => {
        dot::dot_q4_1_q8_1_scalar
    };
    (dot_q4_0_q8_0) => {
        dot::dot_q4_0_q8_0_scalar
    };
    (dot_q8_0_q8_0) => {
        dot::dot_q8_0_q8_0_scalar
    };
}

dispatch!(dot_q4_1_q8_1, BlockQ4_1, BlockQ8_1);

/// Four rows at once; each result equals [`dot_q4_1_q8_1`] of that row.
pub fn dot4_q4_1_q8_1(x: [&[BlockQ4_1]; 4], y: &[BlockQ8_1]) -> [f32; 4] {
    #[cfg(target_arch = "x86_64")]
    if use_avx2() {
        // SAFETY: AVX2, FMA and F16C were detected at run time.
        return unsafe { avx2::dot4_q4_1_q8_1(x, y) };
    }
    x.map(|r| dot::dot_q4_1_q8_1_scalar(r, y))
}

/// Four rows at once; each result equals [`dot_q8_0_q8_0`] of that row.
pub fn dot4_q8_0_q8_0(x: [&[BlockQ8_0]; 4], y: &[BlockQ8_0]) -> [f32; 4] {
    #[cfg(target_arch = "x86_64")]
    if use_avx2() {
        // SAFETY: AVX2, FMA and F16C were detected at run time.
        return unsafe { avx2::dot4_q8_0_q8_0(x, y) };
    }
    x.map(|r| dot::dot_q8_0_q8_0_scalar(r, y))
}
dispatch!(dot_q4_0_q8_0, BlockQ4_0, BlockQ8_0);
dispatch!(dot_q8_0_q8_0, BlockQ8_0, BlockQ8_0);

impl QWeight {
    pub fn new(q: Arc<QTensor>) -> Result<QWeight> {
        let (n, k) = q.shape().dims2()?;
        if !supported(q.dtype()) || k % QK != 0 {
            candle_core::bail!(
                "kernels: unsupported weight {:?} {:?}",
                q.dtype(),
                q.shape()
            );
        }
        Ok(QWeight { q, n, k })
    }

    pub fn qtensor(&self) -> &Arc<QTensor> {
        &self.q
    }

    /// `x (m, k)` f32 → `(m, n)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let k = *dims.last().unwrap_or(&0);
        if k != self.k {
            candle_core::bail!(
                "kernels: activation width {k} does not match weight {}x{}",
                self.n,
                self.k
            );
        }
        let m = x.elem_count() / k;
        let xs = x.flatten_all()?.to_vec1::<f32>()?;
        let data = self.q.data()?;
        let mut out = vec![0f32; m * self.n];
        let mm = MatMul {
            m,
            n: self.n,
            nb: k / QK,
        };
        match self.q.dtype() {
            GgmlDType::Q4_1 => mm.run(
                as_blocks::<BlockQ4_1>(&data),
                &quantize(&xs, k, quantize_row_q8_1),
                dot_q4_1_q8_1,
                dot4_q4_1_q8_1,
                &mut out,
            ),
            GgmlDType::Q8_0 => mm.run(
                as_blocks::<BlockQ8_0>(&data),
                &quantize(&xs, k, quantize_row_q8_0),
                dot_q8_0_q8_0,
                dot4_q8_0_q8_0,
                &mut out,
            ),
            _ => mm.run(
                as_blocks::<BlockQ4_0>(&data),
                &quantize(&xs, k, quantize_row_q8_0),
                dot_q4_0_q8_0,
                |w, a| w.map(|r| dot_q4_0_q8_0(r, a)),
                &mut out,
            ),
        }
        let mut shape = dims;
        *shape.last_mut().expect("rank >= 1") = self.n;
        Tensor::from_vec(out, shape, x.device())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use rand::{Rng, SeedableRng};

    fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..n)
            .map(|_| rng.random_range(-1.0f32..1.0) * if rng.random_bool(0.05) { 8.0 } else { 1.0 })
            .collect()
    }

    fn weight(dtype: GgmlDType, n: usize, k: usize, seed: u64) -> (QWeight, Tensor) {
        let w = Tensor::from_vec(random(n * k, seed), (n, k), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&w, dtype).unwrap();
        let deq = q.dequantize(&Device::Cpu).unwrap();
        (QWeight::new(Arc::new(q)).unwrap(), deq)
    }

    /// Our matmul against the dequantized weights times unquantized activations, in f64.
    #[test]
    fn matmul_matches_a_dequantized_reference() {
        for dtype in [GgmlDType::Q4_0, GgmlDType::Q4_1, GgmlDType::Q8_0] {
            let (n, k, m) = (70, 256, 3);
            let (w, deq) = weight(dtype, n, k, 7);
            let x = Tensor::from_vec(random(m * k, 11), (m, k), &Device::Cpu).unwrap();
            let got = w.forward(&x).unwrap().to_vec2::<f32>().unwrap();
            let wv = deq.to_vec2::<f32>().unwrap();
            let xv = x.to_vec2::<f32>().unwrap();
            for (r, row) in got.iter().enumerate() {
                for (c, &g) in row.iter().enumerate() {
                    let exact: f64 = wv[c]
                        .iter()
                        .zip(&xv[r])
                        .map(|(a, b)| *a as f64 * *b as f64)
                        .sum();
                    let scale: f64 = wv[c]
                        .iter()
                        .zip(&xv[r])
                        .map(|(a, b)| (*a as f64 * *b as f64).abs())
                        .sum();
                    // Activations are quantized to 8 bits: relative error ~1/127 of the terms.
                    assert!(
                        (g as f64 - exact).abs() <= 0.01 * scale + 1e-4,
                        "{dtype:?} [{r},{c}]: {g} vs {exact}"
                    );
                }
            }
        }
    }

    /// The SIMD and scalar dot products return the same bits.
    #[test]
    fn simd_and_scalar_dots_are_bit_identical() {
        if !avx2::available() {
            return; // nothing to compare on this CPU: the scalar path is the only one
        }
        let k = 32 * 37;
        let xs = random(k, 3);
        let mut a8_0 = vec![BlockQ8_0::default(); k / QK];
        let mut a8_1 = vec![BlockQ8_1::default(); k / QK];
        quantize_row_q8_0(&xs, &mut a8_0);
        quantize_row_q8_1(&xs, &mut a8_1);
        for seed in 0..20 {
            for dtype in [GgmlDType::Q4_0, GgmlDType::Q4_1, GgmlDType::Q8_0] {
                let (w, _) = weight(dtype, 1, k, seed);
                let data = w.q.data().unwrap();
                #[cfg(target_arch = "x86_64")]
                let (simd, scalar) = unsafe {
                    match dtype {
                        GgmlDType::Q4_0 => {
                            let b = as_blocks::<BlockQ4_0>(&data);
                            (
                                avx2::dot_q4_0_q8_0(b, &a8_0),
                                dot::dot_q4_0_q8_0_scalar(b, &a8_0),
                            )
                        }
                        GgmlDType::Q4_1 => {
                            let b = as_blocks::<BlockQ4_1>(&data);
                            (
                                avx2::dot_q4_1_q8_1(b, &a8_1),
                                dot::dot_q4_1_q8_1_scalar(b, &a8_1),
                            )
                        }
                        _ => {
                            let b = as_blocks::<BlockQ8_0>(&data);
                            (
                                avx2::dot_q8_0_q8_0(b, &a8_0),
                                dot::dot_q8_0_q8_0_scalar(b, &a8_0),
                            )
                        }
                    }
                };
                assert_eq!(
                    simd.to_bits(),
                    scalar.to_bits(),
                    "{dtype:?} seed {seed}: {simd} vs {scalar}"
                );
            }
        }
    }

    /// Four rows at once give each row's single-row result, bit for bit.
    #[test]
    fn four_row_dots_equal_single_row_dots() {
        let k = 32 * 18;
        let xs = random(k, 4);
        let mut a8_0 = vec![BlockQ8_0::default(); k / QK];
        let mut a8_1 = vec![BlockQ8_1::default(); k / QK];
        quantize_row_q8_0(&xs, &mut a8_0);
        quantize_row_q8_1(&xs, &mut a8_1);
        let (w41, _) = weight(GgmlDType::Q4_1, 4, k, 1);
        let (w80, _) = weight(GgmlDType::Q8_0, 4, k, 2);
        let (d41, d80) = (w41.q.data().unwrap(), w80.q.data().unwrap());
        let (b41, b80) = (as_blocks::<BlockQ4_1>(&d41), as_blocks::<BlockQ8_0>(&d80));
        let nb = k / QK;
        let four = dot4_q4_1_q8_1([0, 1, 2, 3].map(|r| &b41[r * nb..(r + 1) * nb]), &a8_1);
        let four8 = dot4_q8_0_q8_0([0, 1, 2, 3].map(|r| &b80[r * nb..(r + 1) * nb]), &a8_0);
        for r in 0..4 {
            let one = dot_q4_1_q8_1(&b41[r * nb..(r + 1) * nb], &a8_1);
            assert_eq!(four[r].to_bits(), one.to_bits());
            let one = dot_q8_0_q8_0(&b80[r * nb..(r + 1) * nb], &a8_0);
            assert_eq!(four8[r].to_bits(), one.to_bits());
        }
    }

    /// A row's result does not depend on the other rows computed with it.
    #[test]
    fn rows_are_batch_invariant() {
        let (w, _) = weight(GgmlDType::Q4_1, 40, 128, 5);
        let x = Tensor::from_vec(random(5 * 128, 9), (5, 128), &Device::Cpu).unwrap();
        let all = w.forward(&x).unwrap().to_vec2::<f32>().unwrap();
        for (r, row) in all.iter().enumerate() {
            let one = w
                .forward(&x.narrow(0, r, 1).unwrap())
                .unwrap()
                .to_vec2::<f32>()
                .unwrap();
            assert_eq!(&one[0], row);
        }
    }

    #[test]
    fn q8_1_rounds_like_llama_cpp() {
        // 0.5 steps round half to even; s is f16(d * Σq).
        let mut x = vec![0f32; 32];
        x[0] = 127.0;
        x[1] = 2.5;
        x[2] = 3.5;
        x[3] = -2.5;
        let mut b = [BlockQ8_1::default()];
        quantize_row_q8_1(&x, &mut b);
        assert_eq!(&b[0].qs[..4], &[127, 2, 4, -2]);
        assert_eq!(b[0].d.to_f32(), 1.0);
        assert_eq!(b[0].s.to_f32(), 131.0);
    }
}
