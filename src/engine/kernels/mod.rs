//! Our quantized matrix multiplication for the CPU: GGML Q4_0, Q4_1 and Q8_0 weights
//! times activations quantized on the fly (Q8_0 / Q8_1), computed as llama.cpp computes
//! them so greedy outputs agree with it, split across threads by output rows.

pub mod avx2;
pub mod blocks;
pub mod dot;

use blocks::{as_blocks, quantize_row_q8_0, quantize_row_q8_1, BlockQ4_0, BlockQ4_1, BlockQ8_0, BlockQ8_1, QK};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Result, Tensor};
use rayon::prelude::*;
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
dispatch!(dot_q4_0_q8_0, BlockQ4_0, BlockQ8_0);
dispatch!(dot_q8_0_q8_0, BlockQ8_0, BlockQ8_0);

enum Acts {
    Q8_0(Vec<BlockQ8_0>),
    Q8_1(Vec<BlockQ8_1>),
}

impl QWeight {
    pub fn new(q: Arc<QTensor>) -> Result<QWeight> {
        let (n, k) = q.shape().dims2()?;
        if !supported(q.dtype()) || k % QK != 0 {
            candle_core::bail!("kernels: unsupported weight {:?} {:?}", q.dtype(), q.shape());
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
            candle_core::bail!("kernels: activation width {k} does not match weight {}x{}", self.n, self.k);
        }
        let m = x.elem_count() / k;
        let xs = x.flatten_all()?.to_vec1::<f32>()?;
        let nb = k / QK;
        let acts = match self.q.dtype() {
            GgmlDType::Q4_1 => {
                let mut a = vec![BlockQ8_1::default(); m * nb];
                a.par_chunks_mut(nb).zip(xs.par_chunks(k)).for_each(|(o, r)| quantize_row_q8_1(r, o));
                Acts::Q8_1(a)
            }
            _ => {
                let mut a = vec![BlockQ8_0::default(); m * nb];
                a.par_chunks_mut(nb).zip(xs.par_chunks(k)).for_each(|(o, r)| quantize_row_q8_0(r, o));
                Acts::Q8_0(a)
            }
        };
        let data = self.q.data()?;
        let n = self.n;
        let dtype = self.q.dtype();
        // Weight rows in parallel (a task per block of rows, all columns of x), then
        // transposed into (m, n).
        let rows_per_task = n.div_ceil(rayon::current_num_threads() * 8).max(16);
        let mut by_row = vec![0f32; n * m];
        by_row.par_chunks_mut(rows_per_task * m).enumerate().for_each(|(t, chunk)| {
            for (i, cell) in chunk.iter_mut().enumerate() {
                let row = t * rows_per_task + i / m;
                let col = i % m;
                let (w, a) = (row * nb..(row + 1) * nb, col * nb..(col + 1) * nb);
                *cell = match (&acts, dtype) {
                    (Acts::Q8_1(x), _) => dot_q4_1_q8_1(&as_blocks::<BlockQ4_1>(&data)[w], &x[a]),
                    (Acts::Q8_0(x), GgmlDType::Q4_0) => dot_q4_0_q8_0(&as_blocks::<BlockQ4_0>(&data)[w], &x[a]),
                    (Acts::Q8_0(x), _) => dot_q8_0_q8_0(&as_blocks::<BlockQ8_0>(&data)[w], &x[a]),
                };
            }
        });
        let mut out = vec![0f32; m * n];
        for (row, vals) in by_row.chunks_exact(m).enumerate() {
            for (col, v) in vals.iter().enumerate() {
                out[col * n + row] = *v;
            }
        }
        let mut shape = dims;
        *shape.last_mut().expect("rank >= 1") = n;
        Tensor::from_vec(out, shape, x.device())
    }
}
