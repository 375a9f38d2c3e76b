//! The CPU forward pass on plain buffers: one step for a batch of sequences, each with
//! its own KV cache. The rows of every sequence go through each weight matrix together
//! (the weights are read once per step), attention runs per sequence, and all scratch
//! space is kept between steps, so decoding allocates nothing per token.
//!
//! The arithmetic is the candle path's (and llama.cpp's), operation for operation: the
//! same kernels, RMS norm, RoPE, F16 cache and flash attention. A sequence's logits are
//! bit-identical whether it runs alone or in a batch.

use super::attention::{flash_row_f16, F16Rows};
use super::llama::SeqStep;
use super::norm::{rms_norm_ggml, swiglu_ggml};
use super::rope::Rope;
use super::weights::{Linear, Matrix};
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
    logits: Vec<f32>,
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
    pub norms: Vec<(&'a Tensor, &'a Tensor, Option<&'a Tensor>, Option<&'a Tensor>)>,
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

    /// One step for every sequence in `steps`; `x0` holds the embeddings of all their
    /// tokens, sequence after sequence. Returns each sequence's last-token logits.
    pub fn forward(&self, steps: &mut [SeqStep<'_>], x0: &[f32], rope: &Rope) -> Result<Vec<Vec<f32>>> {
        let mut guard = self.scratch.lock().unwrap_or_else(|p| p.into_inner());
        let s = &mut *guard;
        let (nh, nkv, hd, hidden) = (self.n_heads, self.n_kv_heads, self.head_dim, self.hidden);
        let (qw, kvw) = (nh * hd, nkv * hd);
        let m: usize = steps.iter().map(|st| st.tokens.len()).sum();
        let views = steps
            .iter_mut()
            .map(|st| st.cache.begin(st.tokens.len()))
            .collect::<Result<Vec<_>>>()?;

        // RoPE tables: one row per token, at its sequence's next positions.
        let half = rope.half();
        grow(&mut s.cos, m * half);
        grow(&mut s.sin, m * half);
        let mut row = 0;
        for st in steps.iter() {
            let start = st.cache.next_pos();
            for i in 0..st.tokens.len() {
                let r = row * half..(row + 1) * half;
                rope.row(start + i, &mut s.cos[r.clone()], &mut s.sin[r]);
                row += 1;
            }
        }

        grow(&mut s.x, m * hidden).copy_from_slice(&x0[..m * hidden]);
        let ffw = self.blocks.first().map(|b| b.gate.w.dims().0).unwrap_or(0);
        for (layer, b) in self.blocks.iter().enumerate() {
            // Attention.
            rms_norm_ggml(&s.x[..m * hidden], &b.attn_norm, self.eps, grow(&mut s.h, m * hidden));
            s.acts.set(m, hidden);
            for l in [&b.q, &b.k, &b.v] {
                s.acts.prepare(&s.h, l.w.act_kind());
            }
            let (q, k, v) = (grow(&mut s.q, m * qw), grow(&mut s.k, m * kvw), grow(&mut s.v, m * kvw));
            matmul(&mut [b.q.job(&s.acts, q), b.k.job(&s.acts, k), b.v.job(&s.acts, v)]);
            b.q.add_bias(q);
            b.k.add_bias(k);
            b.v.add_bias(v);
            if let (Some(qn), Some(kn)) = (&b.q_norm, &b.k_norm) {
                norm_heads(q, qn, self.eps);
                norm_heads(k, kn, self.eps);
            }
            for r in 0..m {
                let (c, sn) = (&s.cos[r * half..(r + 1) * half], &s.sin[r * half..(r + 1) * half]);
                for h in q[r * qw..(r + 1) * qw].chunks_exact_mut(hd) {
                    rope.rotate(h, c, sn);
                    // The query is rounded to F16, as ggml converts it to the cache's type.
                    h.iter_mut().for_each(|x| *x = half::f16::from_f32(*x).to_f32());
                }
                for h in k[r * kvw..(r + 1) * kvw].chunks_exact_mut(hd) {
                    rope.rotate(h, c, sn);
                }
            }
            let att = grow(&mut s.att, m * qw);
            let mut row0 = 0;
            let scale = 1.0 / (hd as f32).sqrt();
            for (st, view) in steps.iter_mut().zip(&views) {
                let n = st.tokens.len();
                let rows = row0..row0 + n;
                let total = st.cache.append_raw(
                    layer,
                    kvw,
                    &k[rows.start * kvw..rows.end * kvw],
                    &v[rows.start * kvw..rows.end * kvw],
                )?;
                debug_assert!(total >= view.n_new);
                let (kc, vc) = st.cache.raw(layer);
                attend(
                    &q[rows.start * qw..rows.end * qw],
                    (kc, vc),
                    (nh, nkv, hd),
                    total,
                    scale,
                    &mut att[rows.start * qw..rows.end * qw],
                );
                row0 += n;
            }
            s.acts.set(m, qw);
            s.acts.prepare(att, b.o.w.act_kind());
            let proj = grow(&mut s.proj, m * hidden);
            matmul(&mut [b.o.job(&s.acts, proj)]);
            b.o.add_bias(proj);
            s.x[..m * hidden].iter_mut().zip(proj.iter()).for_each(|(x, p)| *x += p);

            // Feed-forward.
            rms_norm_ggml(&s.x[..m * hidden], &b.ffn_norm, self.eps, grow(&mut s.h, m * hidden));
            s.acts.set(m, hidden);
            s.acts.prepare(&s.h, b.gate.w.act_kind());
            s.acts.prepare(&s.h, b.up.w.act_kind());
            let (gate, up) = (grow(&mut s.gate, m * ffw), grow(&mut s.up, m * ffw));
            matmul(&mut [b.gate.job(&s.acts, gate), b.up.job(&s.acts, up)]);
            b.gate.add_bias(gate);
            b.up.add_bias(up);
            // silu(gate) · up, into `h` (ffw wide).
            let act = grow(&mut s.h, m * ffw.max(hidden));
            swiglu_ggml(gate, up, &mut act[..m * ffw]);
            s.acts.set(m, ffw);
            s.acts.prepare(&act[..m * ffw], b.down.w.act_kind());
            let proj = grow(&mut s.proj, m * hidden);
            matmul(&mut [b.down.job(&s.acts, proj)]);
            b.down.add_bias(proj);
            s.x[..m * hidden].iter_mut().zip(proj.iter()).for_each(|(x, p)| *x += p);
        }

        // The last token of each sequence → norm → logits.
        let seqs = steps.len();
        let last = grow(&mut s.last, seqs * hidden);
        let mut end = 0;
        for (i, st) in steps.iter().enumerate() {
            end += st.tokens.len();
            let src = &s.x[(end - 1) * hidden..end * hidden];
            rms_norm_ggml(src, &self.norm, self.eps, &mut last[i * hidden..(i + 1) * hidden]);
        }
        let vocab = self.lm_head.w.dims().0;
        s.acts.set(seqs, hidden);
        s.acts.prepare(last, self.lm_head.w.act_kind());
        let logits = grow(&mut s.logits, seqs * vocab);
        matmul(&mut [self.lm_head.job(&s.acts, logits)]);
        self.lm_head.add_bias(logits);
        for st in steps.iter_mut() {
            st.cache.commit(st.tokens);
        }
        Ok(logits.chunks_exact(vocab).map(|l| l.to_vec()).collect())
    }
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

/// A raw pointer the pool's workers may share; each writes disjoint rows.
struct SyncPtr(*mut f32);
unsafe impl Sync for SyncPtr {}
unsafe impl Send for SyncPtr {}

/// Attention of one sequence's `n` new rows over its cache (`total` entries visible
/// after this step; new row i sees `total - n + i + 1`), every (row, head) on the pool.
fn attend(
    q: &[f32],
    (kc, vc): (&[half::f16], &[half::f16]),
    (nh, nkv, hd): (usize, usize, usize),
    total: usize,
    scale: f32,
    out: &mut [f32],
) {
    let qw = nh * hd;
    let n = q.len() / qw;
    let rep = nh / nkv;
    let dst = SyncPtr(out.as_mut_ptr());
    let dst = &dst;
    let work = |items: std::ops::Range<usize>| {
        let mut acc = [0f32; 256];
        for idx in items {
            let (i, h) = (idx / nh, idx % nh);
            let kvh = h / rep;
            let rows = |data| F16Rows {
                data,
                stride: nkv * hd,
                offset: kvh * hd,
            };
            let qrow = &q[i * qw + h * hd..i * qw + (h + 1) * hd];
            // SAFETY: each (row, head) slice of `out` is written by exactly one item.
            let o = unsafe { std::slice::from_raw_parts_mut(dst.0.add(i * qw + h * hd), hd) };
            let len = total - n + i + 1;
            flash_row_f16(qrow, &rows(kc), &rows(vc), len, scale, &mut acc[..hd], o);
        }
    };
    let items = n * nh;
    if items * total < 4096 {
        work(0..items);
    } else {
        barrier_pool().execute_chunked(items, work);
    }
}
