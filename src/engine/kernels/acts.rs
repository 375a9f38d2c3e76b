//! Activations quantized for the kernels: Q8_0 / Q8_1 blocks (and Q8_K for K-quant
//! weights) made from f32 rows once per matmul input and shared by every weight that
//! multiplies them, with the extra layouts the AVX-512 tiles read. Buffers are kept from
//! step to step, so a decode step allocates nothing.

use super::avx512;
use super::blocks::{quantize_row_q8_0, quantize_row_q8_1, BlockQ8_0, BlockQ8_1, QK};
#[cfg(target_arch = "x86_64")]
use super::vnni;
use super::{kquants, par, use_avx512};

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
    pub(super) q8_0: Vec<BlockQ8_0>,
    pub(super) q8_1: Vec<BlockQ8_1>,
    pub(super) q8k: Vec<kquants::BlockQ8K>,
    /// Lane offsets of the Q8_0 blocks for the AVX-512 tiles (see [`avx512::lane_offsets`]).
    pub(super) offs: Vec<([i32; 8], [i32; 8])>,
    /// For the AVX-512 tiles of several rows ([`vnni`]): the Q8_0 values as unsigned
    /// bytes, and the blocks' scales as f32, block-major (block b of row c at b·m + c).
    #[cfg(target_arch = "x86_64")]
    pub(super) qu: Vec<vnni::Bytes32>,
    #[cfg(target_arch = "x86_64")]
    pub(super) d0: Vec<f32>,
    pub(super) ready: [bool; 3],
    pub(super) m: usize,
    pub(super) k: usize,
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
                self.offs
                    .resize(if wide { m * per } else { 0 }, ([0; 8], [0; 8]));
                // The VNNI tiles' layouts, for enough rows: flipped values, block-major scales.
                #[cfg(target_arch = "x86_64")]
                let tiles = wide && m >= vnni::MIN_ROWS;
                #[cfg(target_arch = "x86_64")]
                {
                    let n = if tiles { m * per } else { 0 };
                    self.qu.resize(n, vnni::Bytes32::default());
                    self.d0.resize(n, 0.0);
                }
                let (q, o) = (
                    par::Rows::new(&mut self.q8_0, per),
                    par::Rows::new(&mut self.offs, per),
                );
                #[cfg(target_arch = "x86_64")]
                let (qu, d0) = (
                    par::Rows::new(&mut self.qu, per),
                    par::Scatter::new(&mut self.d0),
                );
                par::for_rows(m, k, |r| {
                    // SAFETY: each row range is handed to one thread.
                    let qb = unsafe { q.get(r.clone()) };
                    quantize_rows(&xs[r.start * k..r.end * k], k, qb, quantize_row_q8_0);
                    if wide {
                        let ob = unsafe { o.get(r.clone()) };
                        ob.iter_mut()
                            .zip(qb.iter())
                            .for_each(|(o, b)| *o = avx512::lane_offsets(b));
                    }
                    #[cfg(target_arch = "x86_64")]
                    if tiles {
                        let ub = unsafe { qu.get(r.clone()) };
                        for (i, (u, b)) in ub.iter_mut().zip(qb.iter()).enumerate() {
                            *u = vnni::flip(b);
                            // Block `i % per` of row `r.start + i / per`, written by this thread only.
                            unsafe { d0.set((i % per) * m + r.start + i / per, b.d.to_f32()) };
                        }
                    }
                });
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
    pub(super) fn vnni(&self) -> vnni::Acts<'_> {
        vnni::Acts {
            qu: &self.qu,
            d: &self.d0,
            m: self.m,
        }
    }
}

fn quantize_rows<B>(xs: &[f32], k: usize, out: &mut [B], row: fn(&[f32], &mut [B])) {
    out.chunks_mut(k / QK)
        .zip(xs.chunks(k))
        .for_each(|(o, r)| row(r, o));
}
