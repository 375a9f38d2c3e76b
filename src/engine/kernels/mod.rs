//! Our quantized matrix multiplication for the CPU: GGML Q4_0, Q4_1 and Q8_0 weights
//! times activations quantized on the fly (Q8_0 / Q8_1), computed as llama.cpp computes
//! them so greedy outputs agree with it, split across threads by output rows.

mod acts;
pub mod avx2;
pub mod avx512;
pub mod blocks;
pub mod dot;
pub mod kquants;
#[cfg(target_arch = "aarch64")]
pub mod neon;
pub mod par;
#[cfg(target_arch = "x86_64")]
mod quant_x86;
#[cfg(target_arch = "x86_64")]
mod tiles;
#[cfg(target_arch = "x86_64")]
pub mod vnni;

pub use acts::{ActKind, Acts};

use blocks::{as_blocks, BlockQ4_0, BlockQ4_1, BlockQ8_0, BlockQ8_1, QK};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::utils::barrier_pool;
use candle_core::{Result, Tensor};
use std::sync::Arc;

/// Weight types this module computes.
pub fn supported(dtype: GgmlDType) -> bool {
    matches!(dtype, GgmlDType::Q4_0 | GgmlDType::Q4_1 | GgmlDType::Q8_0)
        || kquants::supported(dtype)
}

/// Where a weight's GGML blocks live: in the memory-mapped model file (no copy), or in
/// a tensor lmwb made at load (requantization).
#[derive(Clone)]
enum Bytes {
    Mapped {
        map: Arc<memmap2::Mmap>,
        start: usize,
        len: usize,
    },
    Owned(Arc<QTensor>),
}

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bytes::Mapped { start, len, .. } => write!(f, "Mapped({start}..+{len})"),
            Bytes::Owned(q) => write!(f, "Owned({:?})", q.shape()),
        }
    }
}

/// A quantized weight matrix `(n, k)` stored as GGML blocks.
#[derive(Clone, Debug)]
pub struct QWeight {
    bytes: Bytes,
    dtype: GgmlDType,
    n: usize,
    k: usize,
}

/// One matrix product of a batch: `out (m, n) = acts (m, k) · wᵀ`.
pub struct Job<'a> {
    pub w: &'a QWeight,
    pub acts: &'a Acts,
    pub out: &'a mut [f32],
}

/// Weight rows per work item.
const ROWS: usize = 8;

/// Run several matrix products in one dispatch on candle's barrier pool (the threads
/// candle's own ops use, so nothing is oversubscribed): the work items are groups of
/// [`ROWS`] weight rows of any job, each against every activation row. Each output cell
/// is the single-row dot product of [`dot_q4_1_q8_1`] and friends, so results do not
/// depend on the batch. Activations must be prepared for each weight's [`ActKind`].
pub fn matmul(jobs: &mut [Job<'_>]) {
    assert!(
        jobs.len() <= MAX_JOBS,
        "matmul: at most {MAX_JOBS} jobs per dispatch"
    );
    // Fixed arrays, not vectors: a decode step allocates nothing.
    let mut starts = [usize::MAX; MAX_JOBS];
    let mut work: [Option<(&QWeight, &Acts, SyncPtr)>; MAX_JOBS] = [None, None, None, None];
    let mut total = 0;
    for ((j, start), slot) in jobs.iter_mut().zip(&mut starts).zip(&mut work) {
        debug_assert!(j.out.len() >= j.acts.m * j.w.n);
        *start = total;
        total += j.w.n.div_ceil(ROWS);
        *slot = Some((j.w, j.acts, SyncPtr(j.out.as_mut_ptr())));
    }
    let run = |items: std::ops::Range<usize>| {
        // Consecutive items of one job go in one call, so its tiles can sweep a panel of
        // rows against each group of activation rows.
        let mut item = items.start;
        while item < items.end {
            let j = starts.partition_point(|&s| s <= item) - 1;
            let Some((w, acts, dst)) = &work[j] else {
                break;
            };
            let last = items
                .end
                .min(starts.get(j + 1).copied().unwrap_or(usize::MAX));
            let start = (item - starts[j]) * ROWS;
            let end = w.n.min((last - starts[j]) * ROWS);
            // SAFETY: each (job, col, row) cell is written by exactly one work item, and
            // the outputs outlive this call.
            unsafe { w.rows_into(acts, start..end, dst.0) };
            item = last;
        }
    };
    if total <= 2 {
        run(0..total);
    } else {
        barrier_pool().execute_chunked(total, run);
    }
}

/// Most matrix products one [`matmul`] call takes (q/k/v is three).
pub const MAX_JOBS: usize = 4;

/// A raw pointer the pool's workers may share; each writes disjoint cells.
struct SyncPtr(*mut f32);
unsafe impl Sync for SyncPtr {}
unsafe impl Send for SyncPtr {}

pub(crate) fn use_avx512() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| avx512::available() && std::env::var_os("LMWB_NO_AVX512").is_none())
}

#[cfg(target_arch = "x86_64")]
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
            #[cfg(target_arch = "aarch64")]
            if neon::available() {
                // SAFETY: FEAT_DotProd was detected at run time.
                return unsafe { neon::$name(x, y) };
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
    x.map(|r| dot_q4_1_q8_1(r, y))
}

/// Four rows at once; each result equals [`dot_q8_0_q8_0`] of that row.
pub fn dot4_q8_0_q8_0(x: [&[BlockQ8_0]; 4], y: &[BlockQ8_0]) -> [f32; 4] {
    #[cfg(target_arch = "x86_64")]
    if use_avx2() {
        // SAFETY: AVX2, FMA and F16C were detected at run time.
        return unsafe { avx2::dot4_q8_0_q8_0(x, y) };
    }
    x.map(|r| dot_q8_0_q8_0(r, y))
}
dispatch!(dot_q4_0_q8_0, BlockQ4_0, BlockQ8_0);
dispatch!(dot_q8_0_q8_0, BlockQ8_0, BlockQ8_0);

/// Weight rows `rows` against every activation row, written to `dst (m, n)`.
///
/// # Safety
/// `dst` must point to `m * n` writable floats that nobody else writes in these rows.
unsafe fn rows_dot<W, A>(
    w: &[W],
    acts: &[A],
    (m, n, nb): (usize, usize, usize),
    rows: std::ops::Range<usize>,
    dst: *mut f32,
    dot1: fn(&[W], &[A]) -> f32,
    dot4: impl Fn([&[W]; 4], &[A]) -> [f32; 4],
) {
    let row = |r: usize| &w[r * nb..(r + 1) * nb];
    for col in 0..m {
        let a = &acts[col * nb..(col + 1) * nb];
        let mut r = rows.start;
        while r + 4 <= rows.end {
            let vals = dot4([0, 1, 2, 3].map(|i| row(r + i)), a);
            for (i, v) in vals.into_iter().enumerate() {
                *dst.add(col * n + r + i) = v;
            }
            r += 4;
        }
        for r in r..rows.end {
            *dst.add(col * n + r) = dot1(row(r), a);
        }
    }
}

impl QWeight {
    /// A weight made at load time (requantized or converted).
    pub fn new(q: Arc<QTensor>) -> Result<QWeight> {
        let (n, k) = q.shape().dims2()?;
        Self::check(q.dtype(), n, k)?;
        Ok(QWeight {
            dtype: q.dtype(),
            bytes: Bytes::Owned(q),
            n,
            k,
        })
    }

    /// A weight read in place from the memory-mapped model file: `len` bytes at `start`.
    pub fn mapped(
        map: Arc<memmap2::Mmap>,
        start: usize,
        len: usize,
        dtype: GgmlDType,
        (n, k): (usize, usize),
    ) -> Result<QWeight> {
        Self::check(dtype, n, k)?;
        let want = n * k / dtype.block_size() * dtype.type_size();
        if len != want || start + len > map.len() {
            candle_core::bail!(
                "kernels: {dtype:?} {n}x{k} needs {want} bytes at {start}, the file has {}",
                map.len()
            );
        }
        Ok(QWeight {
            bytes: Bytes::Mapped { map, start, len },
            dtype,
            n,
            k,
        })
    }

    fn check(dtype: GgmlDType, n: usize, k: usize) -> Result<()> {
        if !supported(dtype) || k % dtype.block_size() != 0 || n == 0 {
            candle_core::bail!("kernels: unsupported weight {dtype:?} {n}x{k}");
        }
        Ok(())
    }

    pub fn dtype(&self) -> GgmlDType {
        self.dtype
    }

    /// `(n, k)`: output rows, input width.
    pub fn dims(&self) -> (usize, usize) {
        (self.n, self.k)
    }

    /// The activation format this weight multiplies with.
    pub fn act_kind(&self) -> ActKind {
        match self.dtype {
            GgmlDType::Q4_1 => ActKind::Q8_1,
            d if kquants::supported(d) => ActKind::Q8K,
            _ => ActKind::Q8_0,
        }
    }

    /// The raw GGML blocks.
    pub fn bytes(&self) -> std::borrow::Cow<'_, [u8]> {
        match &self.bytes {
            Bytes::Mapped { map, start, len } => {
                std::borrow::Cow::Borrowed(&map[*start..*start + *len])
            }
            Bytes::Owned(q) => q.data().unwrap_or_default(),
        }
    }

    /// Whether the blocks are read in place from the model file.
    pub fn is_mapped(&self) -> bool {
        matches!(self.bytes, Bytes::Mapped { .. })
    }

    /// # Safety
    /// See [`rows_dot`]: `dst` holds `acts.m * n` floats, these rows written by no one else.
    unsafe fn rows_into(&self, acts: &Acts, rows: std::ops::Range<usize>, dst: *mut f32) {
        let data = self.bytes();
        if kquants::supported(self.dtype) {
            let row_bytes = self.k / kquants::QK_K * self.dtype.type_size();
            let per_row = self.k / kquants::QK_K;
            for c in 0..acts.m {
                let a = &acts.q8k[c * per_row..(c + 1) * per_row];
                for r in rows.clone() {
                    let w = &data[r * row_bytes..(r + 1) * row_bytes];
                    *dst.add(c * self.n + r) = kquants::dot_row(self.dtype, w, a);
                }
            }
            return;
        }
        let shape = (acts.m, self.n, self.k / QK);
        #[cfg(target_arch = "x86_64")]
        let nb = shape.2;
        #[cfg(target_arch = "x86_64")]
        if use_avx512() && acts.m >= vnni::MIN_ROWS && self.dtype == GgmlDType::Q8_0 {
            let (w, y0) = (as_blocks::<BlockQ8_0>(&data), &acts.q8_0);
            let one = |r: usize, c: usize| {
                dot_q8_0_q8_0(&w[r * nb..(r + 1) * nb], &y0[c * nb..(c + 1) * nb])
            };
            return tiles::rows_cells(w, acts.vnni(), shape, rows, dst, one);
        }
        #[cfg(target_arch = "x86_64")]
        if use_avx512() {
            use avx512::{A, W};
            match self.dtype {
                GgmlDType::Q4_1 => {
                    let (w, y) = (as_blocks::<BlockQ4_1>(&data), &acts.q8_1);
                    let one = |r: usize, c: usize| {
                        dot_q4_1_q8_1(&w[r * nb..(r + 1) * nb], &y[c * nb..(c + 1) * nb])
                    };
                    return tiles::rows_tiled(W::Q4_1(w), A::Q8_1(y), shape, rows, dst, one);
                }
                GgmlDType::Q8_0 => {
                    let (w, y) = (as_blocks::<BlockQ8_0>(&data), &acts.q8_0);
                    let one = |r: usize, c: usize| {
                        dot_q8_0_q8_0(&w[r * nb..(r + 1) * nb], &y[c * nb..(c + 1) * nb])
                    };
                    return tiles::rows_tiled(
                        W::Q8_0(w),
                        A::Q8_0(y, &acts.offs),
                        shape,
                        rows,
                        dst,
                        one,
                    );
                }
                _ => {
                    let (w, y) = (as_blocks::<BlockQ4_0>(&data), &acts.q8_0);
                    let one = |r: usize, c: usize| {
                        dot_q4_0_q8_0(&w[r * nb..(r + 1) * nb], &y[c * nb..(c + 1) * nb])
                    };
                    return tiles::rows_tiled(
                        W::Q4_0(w),
                        A::Q8_0(y, &acts.offs),
                        shape,
                        rows,
                        dst,
                        one,
                    );
                }
            }
        }
        match self.dtype {
            GgmlDType::Q4_1 => rows_dot(
                as_blocks::<BlockQ4_1>(&data),
                &acts.q8_1,
                shape,
                rows,
                dst,
                dot_q4_1_q8_1,
                dot4_q4_1_q8_1,
            ),
            GgmlDType::Q8_0 => rows_dot(
                as_blocks::<BlockQ8_0>(&data),
                &acts.q8_0,
                shape,
                rows,
                dst,
                dot_q8_0_q8_0,
                dot4_q8_0_q8_0,
            ),
            _ => rows_dot(
                as_blocks::<BlockQ4_0>(&data),
                &acts.q8_0,
                shape,
                rows,
                dst,
                dot_q4_0_q8_0,
                |w, a| w.map(|r| dot_q4_0_q8_0(r, a)),
            ),
        }
    }

    /// Row `r` dequantized into `out` (`k` values), as candle's dequantization computes it.
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        let data = self.bytes();
        let nb = self.k / QK;
        if kquants::supported(self.dtype) {
            let row_bytes = self.k / kquants::QK_K * self.dtype.type_size();
            let bytes = &data[r * row_bytes..(r + 1) * row_bytes];
            return kquants::dequantize_row(self.dtype, bytes, &mut out[..self.k]);
        }
        match self.dtype {
            GgmlDType::Q4_1 => {
                for (b, o) in as_blocks::<BlockQ4_1>(&data)[r * nb..(r + 1) * nb]
                    .iter()
                    .zip(out.chunks_exact_mut(QK))
                {
                    let (d, m) = (b.d.to_f32(), b.m.to_f32());
                    for j in 0..16 {
                        o[j] = (b.qs[j] & 0x0f) as f32 * d + m;
                        o[j + 16] = (b.qs[j] >> 4) as f32 * d + m;
                    }
                }
            }
            GgmlDType::Q4_0 => {
                for (b, o) in as_blocks::<BlockQ4_0>(&data)[r * nb..(r + 1) * nb]
                    .iter()
                    .zip(out.chunks_exact_mut(QK))
                {
                    let d = b.d.to_f32();
                    for j in 0..16 {
                        o[j] = ((b.qs[j] & 0x0f) as i32 - 8) as f32 * d;
                        o[j + 16] = ((b.qs[j] >> 4) as i32 - 8) as f32 * d;
                    }
                }
            }
            _ => {
                for (b, o) in as_blocks::<BlockQ8_0>(&data)[r * nb..(r + 1) * nb]
                    .iter()
                    .zip(out.chunks_exact_mut(QK))
                {
                    let d = b.d.to_f32();
                    for j in 0..QK {
                        o[j] = b.qs[j] as f32 * d;
                    }
                }
            }
        }
    }

    /// Token embeddings: rows `ids` as a `(len, k)` f32 tensor.
    pub fn embedding(&self, ids: &[u32], device: &candle_core::Device) -> Result<Tensor> {
        let mut out = vec![0f32; ids.len() * self.k];
        for (&id, o) in ids.iter().zip(out.chunks_exact_mut(self.k)) {
            if id as usize >= self.n {
                candle_core::bail!("token id {id} is outside the vocabulary of {}", self.n);
            }
            self.dequantize_row(id as usize, o);
        }
        Tensor::from_vec(out, (ids.len(), self.k), device)
    }

    /// `x (…, k)` f32 tensor → `(…, n)`.
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
        let mut acts = Acts::default();
        acts.set(m, k);
        acts.prepare(&xs, self.act_kind());
        let mut out = vec![0f32; m * self.n];
        matmul(&mut [Job {
            w: self,
            acts: &acts,
            out: &mut out,
        }]);
        let mut shape = dims;
        *shape.last_mut().expect("rank >= 1") = self.n;
        Tensor::from_vec(out, shape, x.device())
    }
}

#[cfg(test)]
mod tests;
