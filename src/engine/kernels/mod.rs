//! Our quantized matrix multiplication for the CPU: GGML Q4_0, Q4_1 and Q8_0 weights
//! times activations quantized on the fly (Q8_0 / Q8_1), computed as llama.cpp computes
//! them so greedy outputs agree with it, split across threads by output rows.

pub mod avx2;
pub mod avx512;
pub mod blocks;
pub mod dot;
pub mod kquants;
pub mod par;
#[cfg(target_arch = "x86_64")]
pub mod vnni;
#[cfg(target_arch = "x86_64")]
mod quant_x86;

use blocks::{
    as_blocks, quantize_row_q8_0, quantize_row_q8_1, BlockQ4_0, BlockQ4_1, BlockQ8_0, BlockQ8_1, QK,
};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::utils::barrier_pool;
use candle_core::{Result, Tensor};
use std::sync::Arc;

/// Weight types this module computes.
pub fn supported(dtype: GgmlDType) -> bool {
    matches!(dtype, GgmlDType::Q4_0 | GgmlDType::Q4_1 | GgmlDType::Q8_0) || kquants::supported(dtype)
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

/// Which activation format a weight type multiplies with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActKind {
    Q8_0,
    Q8_1,
    /// K-quant weights: 256-value super-blocks.
    Q8K,
}

/// Rows of activations quantized for the kernels; buffers are reused between steps.
#[derive(Default)]
pub struct Acts {
    q8_0: Vec<BlockQ8_0>,
    q8_1: Vec<BlockQ8_1>,
    q8k: Vec<kquants::BlockQ8K>,
    /// Lane offsets of the Q8_0 blocks for the AVX-512 tiles (see [`avx512::lane_offsets`]).
    offs: Vec<([i32; 8], [i32; 8])>,
    /// For the AVX-512 tiles of several rows ([`vnni`]): the Q8_0 values as unsigned
    /// bytes, and the blocks' scales as f32, block-major (block b of row c at b·m + c).
    qu: Vec<vnni::Bytes32>,
    d0: Vec<f32>,
    ready: [bool; 3],
    m: usize,
    k: usize,
}

impl Acts {
    /// Take new activations `xs (m, k)`; each format is quantized when first asked for.
    pub fn set(&mut self, m: usize, k: usize) {
        self.m = m;
        self.k = k;
        self.ready = [false; 3];
    }

    /// Quantize `xs` for `kind` unless already done since the last [`Self::set`]; rows
    /// are split over the pool's threads when there are enough of them.
    pub fn prepare(&mut self, xs: &[f32], kind: ActKind) {
        let (m, k) = (self.m, self.k);
        let xs = &xs[..m * k];
        match kind {
            ActKind::Q8_0 if !self.ready[0] => {
                let per = k / QK;
                self.q8_0.resize(m * per, BlockQ8_0::default());
                let wide = use_avx512();
                self.offs.resize(if wide { m * per } else { 0 }, ([0; 8], [0; 8]));
                let (q, o) = (par::Rows::new(&mut self.q8_0, per), par::Rows::new(&mut self.offs, per));
                par::for_rows(m, k, |r| {
                    // SAFETY: each row range is handed to one thread.
                    let qb = unsafe { q.get(r.clone()) };
                    quantize_rows(&xs[r.start * k..r.end * k], k, qb, quantize_row_q8_0);
                    if wide {
                        let ob = unsafe { o.get(r) };
                        ob.iter_mut().zip(qb.iter()).for_each(|(o, b)| *o = avx512::lane_offsets(b));
                    }
                });
                if wide && m > 1 {
                    self.qu.clear();
                    self.qu.extend(self.q8_0.iter().map(vnni::flip));
                    block_major(&self.q8_0, m, per, &mut self.d0);
                }
                self.ready[0] = true;
            }
            ActKind::Q8K if !self.ready[2] => {
                let per = k / kquants::QK_K;
                self.q8k.resize_with(m * per, kquants::BlockQ8K::default);
                let q = par::Rows::new(&mut self.q8k, per);
                par::for_rows(m, k, |r| {
                    // SAFETY: each row range is handed to one thread.
                    let qb = unsafe { q.get(r.clone()) };
                    qb.chunks_mut(per)
                        .zip(xs[r.start * k..r.end * k].chunks(k))
                        .for_each(|(o, x)| kquants::quantize_row_q8_k(x, o));
                });
                self.ready[2] = true;
            }
            ActKind::Q8_1 if !self.ready[1] => {
                let per = k / QK;
                self.q8_1.resize(m * per, BlockQ8_1::default());
                let q = par::Rows::new(&mut self.q8_1, per);
                par::for_rows(m, k, |r| {
                    // SAFETY: each row range is handed to one thread.
                    let qb = unsafe { q.get(r.clone()) };
                    quantize_rows(&xs[r.start * k..r.end * k], k, qb, quantize_row_q8_1);
                });
                self.ready[1] = true;
            }
            _ => {}
        }
    }
}

impl Acts {
    /// The prepared Q8_0 rows as the [`vnni`] tiles read them.
    #[cfg(target_arch = "x86_64")]
    fn vnni(&self) -> vnni::Acts<'_> {
        vnni::Acts {
            qu: &self.qu,
            d: &self.d0,
            m: self.m,
        }
    }
}

/// Every block's scale as f32, block-major: block `b` of row `c` at `b·m + c`.
fn block_major(blocks: &[BlockQ8_0], m: usize, per: usize, out: &mut Vec<f32>) {
    out.resize(m * per, 0.0);
    for (c, row) in blocks.chunks_exact(per).enumerate() {
        for (b, blk) in row.iter().enumerate() {
            out[b * m + c] = blk.d.to_f32();
        }
    }
}

fn quantize_rows<B>(xs: &[f32], k: usize, out: &mut [B], row: fn(&[f32], &mut [B])) {
    out.chunks_mut(k / QK)
        .zip(xs.chunks(k))
        .for_each(|(o, r)| row(r, o));
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
    assert!(jobs.len() <= MAX_JOBS, "matmul: at most {MAX_JOBS} jobs per dispatch");
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
            let Some((w, acts, dst)) = &work[j] else { break };
            let last = items.end.min(starts.get(j + 1).copied().unwrap_or(usize::MAX));
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

/// Bytes of weight rows one sweep keeps in L1 while activation rows pass by.
const PANEL_BYTES: usize = 24 * 1024;

/// Visit `rows × 0..m` as tiles of four weight rows by up to four activation rows
/// (`tile(r, c, cols)`), the leftover weight rows cell by cell (`one(r, c)`). Weight rows
/// go in panels of about [`PANEL_BYTES`]; within a panel each group of activation rows
/// meets every weight row before the next group comes, so both stay in L1.
fn sweep(
    rows: std::ops::Range<usize>,
    m: usize,
    row_bytes: usize,
    mut tile: impl FnMut(usize, usize, usize),
    mut one: impl FnMut(usize, usize),
) {
    let full = rows.start + rows.len() / 4 * 4;
    let panel = (PANEL_BYTES / row_bytes.max(1) / 4 * 4).max(4);
    let mut p = rows.start;
    while p < full {
        let pe = (p + panel).min(full);
        let mut c = 0;
        while c < m {
            let cols = (m - c).min(4);
            for r in (p..pe).step_by(4) {
                tile(r, c, cols);
            }
            c += cols;
        }
        p = pe;
    }
    for r in full..rows.end {
        for c in 0..m {
            one(r, c);
        }
    }
}

/// Copy a tile's `out[c][r]` to `dst (m, n)` at rows `r..r+4`, activation rows `c..`.
///
/// # Safety
/// `dst` must hold those cells.
unsafe fn put(out: &[[f32; 4]], dst: *mut f32, n: usize, r: usize, c: usize) {
    for (i, o) in out.iter().enumerate() {
        std::ptr::copy_nonoverlapping(o.as_ptr(), dst.add((c + i) * n + r), 4);
    }
}

/// Weight rows `rows` × every activation row with the AVX-512 tiles of [`avx512`] (four
/// rows by up to four activation rows), leftovers by the single-row dots.
///
/// # Safety
/// As [`rows_dot`]; the CPU must have the AVX-512 features ([`avx512::available`]).
#[cfg(target_arch = "x86_64")]
unsafe fn rows_tiled(
    w: avx512::W<'_>,
    a: avx512::A<'_>,
    (m, n, nb): (usize, usize, usize),
    rows: std::ops::Range<usize>,
    dst: *mut f32,
    dot1: impl Fn(usize, usize) -> f32,
) {
    let row_bytes = nb * w.block_bytes();
    let tile = |r: usize, c: usize, cols: usize| match cols {
        4 => {
            let mut out = [[0f32; 4]; 4];
            avx512::tile::<4>(w, a, nb, r, c, &mut out);
            put(&out, dst, n, r, c);
        }
        _ => {
            for c in c..c + cols {
                let mut out = [[0f32; 4]; 1];
                avx512::tile::<1>(w, a, nb, r, c, &mut out);
                put(&out, dst, n, r, c);
            }
        }
    };
    sweep(rows, m, row_bytes, tile, |r, c| *dst.add(c * n + r) = dot1(r, c));
}

/// Q8_0 weight rows `rows` × every activation row with the [`vnni`] tiles: four rows by up
/// to four activation rows, leftover rows by the single-row dots. The rows go in panels
/// of about [`PANEL_BYTES`], [`vnni::pack`]ed into this thread's buffer (which only grows),
/// each group of activation rows meeting the whole panel before the next.
///
/// # Safety
/// As [`rows_dot`]; the CPU must have the AVX-512 features ([`avx512::available`]).
#[cfg(target_arch = "x86_64")]
unsafe fn rows_cells(
    w: &[BlockQ8_0],
    a: vnni::Acts<'_>,
    (m, n, nb): (usize, usize, usize),
    rows: std::ops::Range<usize>,
    dst: *mut f32,
    dot1: impl Fn(usize, usize) -> f32,
) {
    thread_local! {
        static PANEL: std::cell::RefCell<Vec<vnni::Packed>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let full = rows.start + rows.len() / 4 * 4;
    let groups = (PANEL_BYTES / (nb * std::mem::size_of::<vnni::Packed>())).max(1);
    PANEL.with_borrow_mut(|buf| {
        if buf.len() < groups * nb {
            buf.resize(groups * nb, vnni::Packed::default());
        }
        let mut p = rows.start;
        while p < full {
            let g = ((full - p) / 4).min(groups);
            for i in 0..g {
                vnni::pack(w, nb, p + 4 * i, &mut buf[i * nb..(i + 1) * nb]);
            }
            let mut c = 0;
            while c < m {
                let cols = (m - c).min(4);
                for i in 0..g {
                    let (pw, r) = (&buf[i * nb..(i + 1) * nb], p + 4 * i);
                    match cols {
                        4 => {
                            let mut out = [[0f32; 4]; 4];
                            vnni::tile::<4>(pw, a, nb, c, &mut out);
                            put(&out, dst, n, r, c);
                        }
                        3 => {
                            let mut out = [[0f32; 4]; 3];
                            vnni::tile::<3>(pw, a, nb, c, &mut out);
                            put(&out, dst, n, r, c);
                        }
                        2 => {
                            let mut out = [[0f32; 4]; 2];
                            vnni::tile::<2>(pw, a, nb, c, &mut out);
                            put(&out, dst, n, r, c);
                        }
                        _ => {
                            let mut out = [[0f32; 4]; 1];
                            vnni::tile::<1>(pw, a, nb, c, &mut out);
                            put(&out, dst, n, r, c);
                        }
                    }
                }
                c += cols;
            }
            p += 4 * g;
        }
    });
    for r in full..rows.end {
        for c in 0..m {
            *dst.add(c * n + r) = dot1(r, c);
        }
    }
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
            candle_core::bail!("kernels: {dtype:?} {n}x{k} needs {want} bytes at {start}, the file has {}", map.len());
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
            Bytes::Mapped { map, start, len } => std::borrow::Cow::Borrowed(&map[*start..*start + *len]),
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
        let nb = shape.2;
        #[cfg(target_arch = "x86_64")]
        if use_avx512() && acts.m > 1 && self.dtype == GgmlDType::Q8_0 {
            let (w, y0) = (as_blocks::<BlockQ8_0>(&data), &acts.q8_0);
            let one = |r: usize, c: usize| dot_q8_0_q8_0(&w[r * nb..(r + 1) * nb], &y0[c * nb..(c + 1) * nb]);
            return rows_cells(w, acts.vnni(), shape, rows, dst, one);
        }
        #[cfg(target_arch = "x86_64")]
        if use_avx512() {
            use avx512::{A, W};
            match self.dtype {
                GgmlDType::Q4_1 => {
                    let (w, y) = (as_blocks::<BlockQ4_1>(&data), &acts.q8_1);
                    let one = |r: usize, c: usize| dot_q4_1_q8_1(&w[r * nb..(r + 1) * nb], &y[c * nb..(c + 1) * nb]);
                    return rows_tiled(W::Q4_1(w), A::Q8_1(y), shape, rows, dst, one);
                }
                GgmlDType::Q8_0 => {
                    let (w, y) = (as_blocks::<BlockQ8_0>(&data), &acts.q8_0);
                    let one = |r: usize, c: usize| dot_q8_0_q8_0(&w[r * nb..(r + 1) * nb], &y[c * nb..(c + 1) * nb]);
                    return rows_tiled(W::Q8_0(w), A::Q8_0(y, &acts.offs), shape, rows, dst, one);
                }
                _ => {
                    let (w, y) = (as_blocks::<BlockQ4_0>(&data), &acts.q8_0);
                    let one = |r: usize, c: usize| dot_q4_0_q8_0(&w[r * nb..(r + 1) * nb], &y[c * nb..(c + 1) * nb]);
                    return rows_tiled(W::Q4_0(w), A::Q8_0(y, &acts.offs), shape, rows, dst, one);
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
