//! Attention for a query row that sees more than [`TILE`] cache rows: the scheme of
//! llama.cpp's tiled CPU flash attention (the one it runs for prefill batches of 64 or
//! more rows): keys in tiles of 64, each tile's scores softmaxed at once against the
//! running maximum with ggml's vectorised `expf` (the tile's sum in f64), and f32
//! accumulators. A row seeing up to 64 rows keeps llama.cpp's one-row arithmetic with its
//! F16 accumulator ([`super::attention`]).
//!
//! The choice depends only on how many cache rows the query row sees, never on how rows
//! were batched, so prefill in any chunks, prefix reuse and batching all give the same
//! bits. The scores are the one-row path's F16-style dot product (four 16-lane partial
//! sums and a fixed tree) of the unrounded f32 query with the cache's keys.
//!
//! [`flash_tiled_row`] is the portable reference; the AVX-512 kernel
//! ([`super::attention_x86::attend_tiled`]) computes the same bits.

use super::attention::dot_f16;
use super::norm::ggml_expf;

/// Keys per tile, and the most cache rows a query row may see and still take the one-row
/// path.
pub const TILE: usize = 64;

/// Whether a query row that sees `len` cache rows takes the tiled path.
pub fn tiled(len: usize) -> bool {
    len > TILE
}

/// Sixteen values summed as GCC expands `_mm512_reduce_add_ps`: halves, quarters, pairs.
#[inline]
pub(super) fn reduce16(x: &[f32; 16]) -> f32 {
    let h: [f32; 8] = std::array::from_fn(|l| x[l + 8] + x[l]);
    let q = [h[4] + h[0], h[5] + h[1], h[6] + h[2], h[7] + h[3]];
    (q[0] + q[2]) + (q[1] + q[3])
}

crate::engine::fast::fast_fn! {
    /// One query row `q` (f32, not rounded) over the first `len` cache rows: `key(j, row)` and
    /// `val(j, row)` write cache row `j` as f32; the output goes to `out`.
    pub fn flash_tiled_row(
        q: &[f32],
        len: usize,
        scale: f32,
        key: impl Fn(usize, &mut [f32]),
        val: impl Fn(usize, &mut [f32]),
        out: &mut [f32],
    ) {
        let dim = q.len();
        let mut acc = [0f32; 256];
        let mut row = [0f32; 256];
        let (acc, row) = (&mut acc[..dim], &mut row[..dim]);
        let (mut m, mut s) = (f32::NEG_INFINITY, 0f32);
        let mut kq = [0f32; TILE];
        for t in (0..len).step_by(TILE) {
            let n = TILE.min(len - t);
            for (j, x) in kq.iter_mut().enumerate() {
                *x = if j < n {
                    key(t + j, row);
                    dot_f16(q, row) * scale
                } else {
                    f32::NEG_INFINITY // past the visible rows: no weight
                };
            }
            // ggml_vec_max_f32, then the running maximum with fmaxf.
            let tile_max = kq.iter().fold(f32::NEG_INFINITY, |a, &x| if a > x { a } else { x });
            let new = m.max(tile_max);
            if new > m {
                let ms = (m - new).exp();
                acc.iter_mut().for_each(|a| *a *= ms);
                s *= ms;
            }
            m = new;
            // ggml_vec_soft_max_f32: sixteen at a time, each group's sum added in f64.
            let mut sum = 0f64;
            for chunk in kq.chunks_exact_mut(16) {
                let mut e = [0f32; 16];
                for (e, x) in e.iter_mut().zip(chunk.iter_mut()) {
                    *e = ggml_expf(*x - new);
                    *x = *e;
                }
                sum += reduce16(&e) as f64;
            }
            s = (s as f64 + sum) as f32;
            for (j, &w) in kq.iter().enumerate().take(n) {
                val(t + j, row);
                for (a, &x) in acc.iter_mut().zip(row.iter()) {
                    *a = x.mul_add(w, *a);
                }
            }
        }
        let inv = if s == 0.0 { 0.0 } else { 1.0 / s };
        for (o, a) in out.iter_mut().zip(acc.iter()) {
            *o = a * inv;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The tiled path is attention: against softmax(q·K·scale)·V in f64 it is within
    /// f32 rounding, for lengths around the tile boundaries and peaked or flat scores.
    #[test]
    fn tiled_attention_matches_an_exact_softmax() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let dim = 64;
        for len in [65, 100, 128, 129, 300] {
            for amp in [0.3f32, 3.0] {
                let keys: Vec<f32> = (0..len * dim)
                    .map(|_| half::f16::from_f32(rng.random_range(-amp..amp)).to_f32())
                    .collect();
                let vals: Vec<f32> = (0..len * dim)
                    .map(|_| half::f16::from_f32(rng.random_range(-1.0..1.0)).to_f32())
                    .collect();
                let q: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect();
                let scale = 0.125;
                let mut out = vec![0f32; dim];
                let key =
                    |j: usize, r: &mut [f32]| r.copy_from_slice(&keys[j * dim..(j + 1) * dim]);
                let val =
                    |j: usize, r: &mut [f32]| r.copy_from_slice(&vals[j * dim..(j + 1) * dim]);
                flash_tiled_row(&q, len, scale, key, val, &mut out);
                let scores: Vec<f64> = (0..len)
                    .map(|j| {
                        (0..dim)
                            .map(|d| q[d] as f64 * keys[j * dim + d] as f64)
                            .sum::<f64>()
                            * scale as f64
                    })
                    .collect();
                let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let w: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let total: f64 = w.iter().sum();
                for d in 0..dim {
                    let want: f64 = (0..len)
                        .map(|j| w[j] * vals[j * dim + d] as f64)
                        .sum::<f64>()
                        / total;
                    assert!(
                        (out[d] as f64 - want).abs() < 2e-5,
                        "len {len} amp {amp} [{d}]: {} vs {want}",
                        out[d]
                    );
                }
            }
        }
    }
}
