//! The CPU forward pass on plain buffers: one step for a batch of sequences, each with
//! its own KV cache. The rows of every sequence go through each weight matrix together
//! (the weights are read once per step), attention runs per sequence, and all scratch
//! space is kept between steps, so decoding allocates nothing per token.
//!
//! The arithmetic is the candle path's (and llama.cpp's), operation for operation: the
//! same kernels, RMS norm, RoPE, F16 cache and flash attention. A sequence's logits are
//! bit-identical whether it runs alone or in a batch.

use super::attention::{flash_group_f16, F16Rows};
use super::llama::SeqStep;
use super::norm::{rms_norm_ggml, swiglu_ggml};
use super::rope::Rope;
use super::weights::{Linear, Matrix};
use crate::engine::kernels::par::{self, Rows};
use crate::engine::kernels::{matmul, Acts, Job, QWeight};
use candle_core::utils::barrier_pool;
use candle_core::{Result, Tensor};
use std::sync::Mutex;

/// A linear layer on our kernels, its bias as plain floats.
pub(super) struct CpuLinear {
    w: QWeight,
    b: Option<Vec<f32>>,
}

impl CpuLinear {
    fn from(l: &Linear) -> Option<CpuLinear> {
        let Matrix::Ggml(w) = &l.w else { return None };
        let b = match &l.b {
            Some(b) => Some(b.to_vec1::<f32>().ok()?),
            None => None,
        };
        Some(CpuLinear { w: w.clone(), b })
    }

    fn job<'a>(&'a self, acts: &'a Acts, out: &'a mut [f32]) -> Job<'a> {
        Job {
            w: &self.w,
            acts,
            out,
        }
    }

    fn add_bias(&self, out: &mut [f32]) {
        if let Some(b) = &self.b {
            for row in out.chunks_exact_mut(b.len()) {
                row.iter_mut().zip(b).for_each(|(o, b)| *o += b);
            }
        }
    }
}

pub(super) struct CpuBlock {
    pub attn_norm: Vec<f32>,
    pub q: CpuLinear,
    pub k: CpuLinear,
    pub v: CpuLinear,
    pub o: CpuLinear,
    pub q_norm: Option<Vec<f32>>,
    pub k_norm: Option<Vec<f32>>,
    pub ffn_norm: Vec<f32>,
    pub gate: CpuLinear,
    pub up: CpuLinear,
    pub down: CpuLinear,
}

/// Buffers reused from step to step (grown to the largest batch seen).
#[derive(Default)]
struct Scratch {
    x: Vec<f32>,
    h: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    att: Vec<f32>,
    proj: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    cos: Vec<f32>,
    sin: Vec<f32>,
    last: Vec<f32>,
    /// Per sequence of the step: cache entries after this layer's append, first
    /// attention item.
    totals: Vec<usize>,
    seq_rows: Vec<usize>,
    acts: Acts,
}

fn grow(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    if v.len() < n {
        v.resize(n, 0.0);
    }
    &mut v[..n]
}

/// The model on plain buffers, when every matrix runs on lmwb's kernels.
pub(super) struct CpuModel {
    pub blocks: Vec<CpuBlock>,
    pub norm: Vec<f32>,
    pub lm_head: CpuLinear,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub hidden: usize,
    pub eps: f32,
    scratch: Mutex<Scratch>,
}

/// Parts of the model [`CpuModel::build`] needs.
pub(super) struct Parts<'a> {
    pub blocks: Vec<[&'a Linear; 7]>,
    pub norms: Vec<(
        &'a Tensor,
        &'a Tensor,
        Option<&'a Tensor>,
        Option<&'a Tensor>,
    )>,
    pub norm: &'a Tensor,
    pub lm_head: &'a Linear,
}

impl CpuModel {
    /// `None` when some matrix is not on our kernels (then candle's path runs).
    pub fn build(
        parts: Parts<'_>,
        (n_heads, n_kv_heads, head_dim, hidden, eps): (usize, usize, usize, usize, f32),
    ) -> Option<CpuModel> {
        if head_dim > 256 || head_dim % 2 != 0 || n_kv_heads == 0 || n_heads % n_kv_heads != 0 {
            return None;
        }
        let vec = |t: &Tensor| t.to_vec1::<f32>().ok();
        let mut blocks = Vec::with_capacity(parts.blocks.len());
        for ([q, k, v, o, gate, up, down], (an, fnorm, qn, kn)) in
            parts.blocks.iter().zip(&parts.norms)
        {
            blocks.push(CpuBlock {
                attn_norm: vec(an)?,
                q: CpuLinear::from(q)?,
                k: CpuLinear::from(k)?,
                v: CpuLinear::from(v)?,
                o: CpuLinear::from(o)?,
                q_norm: match qn {
                    Some(t) => Some(vec(t)?),
                    None => None,
                },
                k_norm: match kn {
                    Some(t) => Some(vec(t)?),
                    None => None,
                },
                ffn_norm: vec(fnorm)?,
                gate: CpuLinear::from(gate)?,
                up: CpuLinear::from(up)?,
                down: CpuLinear::from(down)?,
            });
        }
        Some(CpuModel {
            blocks,
            norm: vec(parts.norm)?,
            lm_head: CpuLinear::from(parts.lm_head)?,
            n_heads,
            n_kv_heads,
            head_dim,
            hidden,
            eps,
            scratch: Mutex::new(Scratch::default()),
        })
    }

    /// One step for every sequence in `steps`: `embed(id, row)` writes a token's
    /// embedding; each sequence's last-token logits go to `logits` (`vocab` values per
    /// sequence, sequence after sequence). Nothing is allocated once the scratch buffers
    /// have grown to the batch.
    pub fn forward(
        &self,
        steps: &mut [SeqStep<'_>],
        embed: impl Fn(u32, &mut [f32]) -> Result<()>,
        rope: &Rope,
        logits: &mut Vec<f32>,
    ) -> Result<()> {
        let mut guard = self.scratch.lock().unwrap_or_else(|p| p.into_inner());
        let s = &mut *guard;
        let (nh, nkv, hd, hidden) = (self.n_heads, self.n_kv_heads, self.head_dim, self.hidden);
        let (qw, kvw) = (nh * hd, nkv * hd);
        let m: usize = steps.iter().map(|st| st.tokens.len()).sum();
        for st in steps.iter_mut() {
            st.cache.begin(st.tokens.len())?;
        }

        // Embeddings and RoPE tables: one row per token, at its sequence's next positions.
        let half = rope.half();
        let (x, cos, sin) = (
            grow(&mut s.x, m * hidden),
            grow(&mut s.cos, m * half),
            grow(&mut s.sin, m * half),
        );
        let mut row = 0;
        for st in steps.iter() {
            let start = st.cache.next_pos();
            for (i, &id) in st.tokens.iter().enumerate() {
                embed(id, &mut x[row * hidden..(row + 1) * hidden])?;
                let r = row * half..(row + 1) * half;
                rope.row(start + i, &mut cos[r.clone()], &mut sin[r]);
                row += 1;
            }
        }

        let ffw = self.blocks.first().map(|b| b.gate.w.dims().0).unwrap_or(0);
        grow(&mut s.h, m * ffw.max(hidden));
        grow(&mut s.proj, m * hidden);
        let eps = self.eps;
        let mut pending = false; // `proj` holds a residual still to add to `x`
        for (layer, b) in self.blocks.iter().enumerate() {
            // Attention.
            residual_norm(
                &mut s.x[..m * hidden],
                &s.proj[..m * hidden],
                pending,
                &b.attn_norm,
                eps,
                &mut s.h,
            );
            s.acts.set(m, hidden);
            for l in [&b.q, &b.k, &b.v] {
                s.acts.prepare(&s.h, l.w.act_kind());
            }
            let (q, k, v) = (
                grow(&mut s.q, m * qw),
                grow(&mut s.k, m * kvw),
                grow(&mut s.v, m * kvw),
            );
            matmul(&mut [
                b.q.job(&s.acts, q),
                b.k.job(&s.acts, k),
                b.v.job(&s.acts, v),
            ]);
            self.post_qkv(b, (q, k, v), (&s.cos[..m * half], &s.sin[..m * half]), rope);
            let mut row0 = 0;
            s.totals.clear();
            for st in steps.iter_mut() {
                let rows = row0..row0 + st.tokens.len();
                let (kn, vn) = (
                    &k[rows.start * kvw..rows.end * kvw],
                    &v[rows.start * kvw..rows.end * kvw],
                );
                s.totals.push(st.cache.append_raw(layer, kvw, kn, vn)?);
                row0 = rows.end;
            }
            let att = grow(&mut s.att, m * qw);
            attend(
                steps,
                layer,
                q,
                (nh, nkv, hd),
                (&s.totals, &mut s.seq_rows),
                att,
            );
            s.acts.set(m, qw);
            s.acts.prepare(att, b.o.w.act_kind());
            let proj = &mut s.proj[..m * hidden];
            matmul(&mut [b.o.job(&s.acts, proj)]);
            b.o.add_bias(proj);

            // Feed-forward.
            residual_norm(
                &mut s.x[..m * hidden],
                &s.proj[..m * hidden],
                true,
                &b.ffn_norm,
                eps,
                &mut s.h,
            );
            s.acts.set(m, hidden);
            s.acts.prepare(&s.h, b.gate.w.act_kind());
            s.acts.prepare(&s.h, b.up.w.act_kind());
            let (gate, up) = (grow(&mut s.gate, m * ffw), grow(&mut s.up, m * ffw));
            matmul(&mut [b.gate.job(&s.acts, gate), b.up.job(&s.acts, up)]);
            // silu(gate) · up, into `h` (ffw wide).
            let act = &mut s.h[..m * ffw];
            let (g, u, a) = (
                Rows::new(gate, ffw),
                Rows::new(up, ffw),
                Rows::new(act, ffw),
            );
            par::for_rows(m, ffw, |r| {
                // SAFETY: each row range is handed to one thread.
                let (g, u, a) = unsafe { (g.get(r.clone()), u.get(r.clone()), a.get(r)) };
                b.gate.add_bias(g);
                b.up.add_bias(u);
                swiglu_ggml(g, u, a);
            });
            s.acts.set(m, ffw);
            s.acts.prepare(&s.h[..m * ffw], b.down.w.act_kind());
            let proj = &mut s.proj[..m * hidden];
            matmul(&mut [b.down.job(&s.acts, proj)]);
            b.down.add_bias(proj);
            pending = true;
        }
        if pending {
            let x = &mut s.x[..m * hidden];
            x.iter_mut()
                .zip(&s.proj[..m * hidden])
                .for_each(|(x, p)| *x += p);
        }

        // The last token of each sequence → norm → logits.
        let seqs = steps.len();
        let last = grow(&mut s.last, seqs * hidden);
        let mut end = 0;
        for (i, st) in steps.iter().enumerate() {
            end += st.tokens.len();
            let src = &s.x[(end - 1) * hidden..end * hidden];
            rms_norm_ggml(
                src,
                &self.norm,
                self.eps,
                &mut last[i * hidden..(i + 1) * hidden],
            );
        }
        let vocab = self.lm_head.w.dims().0;
        s.acts.set(seqs, hidden);
        s.acts.prepare(last, self.lm_head.w.act_kind());
        logits.resize(seqs * vocab, 0.0);
        matmul(&mut [self.lm_head.job(&s.acts, &mut logits[..seqs * vocab])]);
        self.lm_head.add_bias(logits);
        for st in steps.iter_mut() {
            st.cache.commit(st.tokens);
        }
        Ok(())
    }

    /// Biases, QK norm and RoPE, row by row on the pool. (The query stays f32: the
    /// one-row attention rounds it to F16 itself, the tiled one uses it as is.)
    fn post_qkv(
        &self,
        b: &CpuBlock,
        (q, k, v): (&mut [f32], &mut [f32], &mut [f32]),
        (cos, sin): (&[f32], &[f32]),
        rope: &Rope,
    ) {
        let (hd, half) = (self.head_dim, rope.half());
        let (qw, kvw) = (self.n_heads * hd, self.n_kv_heads * hd);
        let m = q.len() / qw;
        let (qr, kr, vr) = (Rows::new(q, qw), Rows::new(k, kvw), Rows::new(v, kvw));
        par::for_rows(m, qw + 2 * kvw, |rows| {
            for r in rows {
                // SAFETY: each row is handed to one thread.
                let (q, k, v) = unsafe { (qr.get(r..r + 1), kr.get(r..r + 1), vr.get(r..r + 1)) };
                b.q.add_bias(q);
                b.k.add_bias(k);
                b.v.add_bias(v);
                if let (Some(qn), Some(kn)) = (&b.q_norm, &b.k_norm) {
                    norm_heads(q, qn, self.eps);
                    norm_heads(k, kn, self.eps);
                }
                let (c, sn) = (
                    &cos[r * half..(r + 1) * half],
                    &sin[r * half..(r + 1) * half],
                );
                for h in q.chunks_exact_mut(hd) {
                    rope.rotate(h, c, sn);
                }
                for h in k.chunks_exact_mut(hd) {
                    rope.rotate(h, c, sn);
                }
            }
        });
    }
}

/// `x += proj` (when `add`), then `h = rms_norm(x)`, row by row on the pool.
fn residual_norm(x: &mut [f32], proj: &[f32], add: bool, w: &[f32], eps: f32, h: &mut [f32]) {
    let dim = w.len();
    let m = x.len() / dim;
    let (xr, hr) = (Rows::new(x, dim), Rows::new(&mut h[..m * dim], dim));
    par::for_rows(m, dim, |r| {
        // SAFETY: each row range is handed to one thread.
        let (x, h) = unsafe { (xr.get(r.clone()), hr.get(r.clone())) };
        if add {
            x.iter_mut()
                .zip(&proj[r.start * dim..r.end * dim])
                .for_each(|(x, p)| *x += p);
        }
        rms_norm_ggml(x, w, eps, h);
    });
}

/// RMS norm of every head's vector (Qwen3's QK norm).
fn norm_heads(x: &mut [f32], w: &[f32], eps: f32) {
    let mut tmp = [0f32; 256];
    for h in x.chunks_exact_mut(w.len()) {
        let t = &mut tmp[..w.len()];
        rms_norm_ggml(h, w, eps, t);
        h.copy_from_slice(t);
    }
}

/// Attention of every sequence's new rows over its cache, one item per (row, KV head)
/// with the query heads sharing that KV head, all sequences in one dispatch. New row `i`
/// of a sequence whose cache holds `total` entries after this step sees `total - n + i + 1`.
/// `totals[s]` is sequence `s`'s cache length after this step's append; `seq_rows` is
/// scratch (the first item of each sequence).
fn attend(
    steps: &[SeqStep<'_>],
    layer: usize,
    q: &[f32],
    (nh, nkv, hd): (usize, usize, usize),
    (totals, seq_rows): (&[usize], &mut Vec<usize>),
    out: &mut [f32],
) {
    let qw = nh * hd;
    let group = (nh / nkv) * hd;
    let scale = 1.0 / (hd as f32).sqrt();
    seq_rows.clear();
    let (mut items, mut work, mut row0) = (0, 0, 0);
    for (st, &total) in steps.iter().zip(totals) {
        seq_rows.push(items);
        let n = st.tokens.len();
        items += n * nkv;
        work += n * nh * total;
        row0 += n;
    }
    debug_assert_eq!(row0 * qw, q.len());
    let dst = Rows::new(out, group);
    let seq_rows = &seq_rows[..];
    let run = |range: std::ops::Range<usize>| {
        let mut acc = [0f32; 256];
        for idx in range {
            let si = seq_rows.partition_point(|&s| s <= idx) - 1;
            let st = &steps[si];
            let (n, total) = (st.tokens.len(), totals[si]);
            let (i, g) = ((idx - seq_rows[si]) / nkv, (idx - seq_rows[si]) % nkv);
            let (kc, vc) = st.cache.raw(layer);
            let rows = |data| F16Rows {
                data,
                stride: nkv * hd,
                offset: g * hd,
            };
            // Rows of this sequence start at item seq_rows[si] / nkv of the whole step.
            let r = seq_rows[si] / nkv + i;
            let qs = &q[r * qw + g * group..r * qw + (g + 1) * group];
            // SAFETY: each (row, KV head) slice of `out` is written by exactly one item.
            let o = unsafe { dst.get(r * nkv + g..r * nkv + g + 1) };
            let len = total - n + i + 1;
            flash_group_f16(
                qs,
                &rows(kc),
                &rows(vc),
                (len, hd),
                scale,
                &mut acc[..hd],
                o,
            );
        }
    };
    if work < 512 {
        run(0..items);
    } else {
        barrier_pool().execute_chunked(items, run);
    }
}
