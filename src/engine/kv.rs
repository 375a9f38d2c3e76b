//! The KV cache of one sequence: ours, so windowing and prefix reuse are under our control.
//!
//! Keys and values of each layer live in a preallocated buffer `(kv_heads, capacity, head_dim)`.
//! With `max_kv_size = N` the cache never holds more than N entries: the first
//! [`KEEP`] tokens stay (attention sinks) and the rest rotate, as mlx-lm's rotating cache
//! does. A single decoded token overwrites the oldest rotating slot in place (attention
//! over cached tokens does not depend on their order); a multi-token chunk first puts the
//! entries back in temporal order and drops the oldest so the chunk fits.
//!
//! Token ids are remembered while nothing has rotated out, so a prompt that extends (or
//! shares a prefix with) what is cached only prefills the new part.

use candle_core::{Device, Result, Tensor};
use half::f16;

/// Tokens always kept at the start of a windowed cache.
pub const KEEP: usize = 4;

/// Where the current forward step writes its entries.
#[derive(Clone, Debug)]
enum Plan {
    /// Append at `at`, after optionally gathering the listed slots to the front.
    Append { at: usize, gather: Option<Vec<u32>> },
    /// Overwrite one rotating slot (a single decoded token in a full window).
    Ring { slot: usize },
}

#[derive(Default)]
struct LayerKv {
    k: Option<Tensor>,
    v: Option<Tensor>,
    /// The CPU forward's storage: F16 rows, token-major `(capacity, kv_width)`.
    raw_k: Vec<f16>,
    raw_v: Vec<f16>,
}

pub struct KvCache {
    layers: Vec<LayerKv>,
    max: Option<usize>,
    len: usize,
    ring: usize,
    rotated: bool,
    next_pos: usize,
    tokens: Vec<u32>,
    plan: Option<(Plan, usize)>,
    peak: usize,
}

/// The visible part of the cache for one step: `before` cached entries precede the new ones.
#[derive(Clone, Copy, Debug)]
pub struct StepView {
    pub before: usize,
    pub n_new: usize,
    pub ordered: bool,
}

impl KvCache {
    pub fn new(n_layers: usize, max_kv_size: Option<usize>) -> KvCache {
        KvCache {
            layers: (0..n_layers).map(|_| LayerKv::default()).collect(),
            max: max_kv_size,
            len: 0,
            ring: KEEP,
            rotated: false,
            next_pos: 0,
            tokens: Vec::new(),
            plan: None,
            peak: 0,
        }
    }

    /// The window size, if any.
    pub fn max_kv_size(&self) -> Option<usize> {
        self.max
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most entries this cache ever held.
    pub fn peak(&self) -> usize {
        self.peak
    }

    /// Start counting the peak afresh (at the start of a request).
    pub fn reset_peak(&mut self) {
        self.peak = self.len;
    }

    /// Position (RoPE index) the next token gets.
    pub fn next_pos(&self) -> usize {
        self.next_pos
    }

    /// Whether entries were dropped by the window.
    pub fn rotated(&self) -> bool {
        self.rotated
    }

    /// The largest chunk one forward step may add (bounded by the window).
    pub fn max_chunk(&self, wanted: usize) -> usize {
        match self.max {
            Some(m) if self.len + wanted <= m => wanted,
            Some(m) => wanted.min(m.saturating_sub(KEEP).max(1)),
            None => wanted,
        }
    }

    /// Forget everything.
    pub fn clear(&mut self) {
        self.len = 0;
        self.ring = KEEP;
        self.rotated = false;
        self.next_pos = 0;
        self.tokens.clear();
        self.plan = None;
    }

    /// Keep the longest cached prefix of `prompt` (at most `prompt.len() - 1` tokens, so the
    /// last prompt token is always fed to get logits) and return its length.
    pub fn reuse_prefix(&mut self, prompt: &[u32]) -> usize {
        if self.rotated {
            self.clear();
            return 0;
        }
        let common = self
            .tokens
            .iter()
            .zip(prompt)
            .take_while(|(a, b)| a == b)
            .count();
        let keep = common.min(prompt.len().saturating_sub(1));
        self.len = keep;
        self.next_pos = keep;
        self.tokens.truncate(keep);
        self.ring = KEEP;
        keep
    }

    /// Plan a forward step of `n_new` tokens; the model then calls [`Self::append`] once per
    /// layer and [`Self::commit`] at the end.
    pub fn begin(&mut self, n_new: usize) -> Result<StepView> {
        if n_new == 0 {
            candle_core::bail!("a forward step needs at least one token");
        }
        let (plan, before) = match self.max {
            Some(max) if n_new > self.max_chunk(n_new) => {
                candle_core::bail!("a step of {n_new} tokens does not fit a window of {max}")
            }
            Some(max) if self.len + n_new > max && n_new == 1 && self.len == max => {
                (Plan::Ring { slot: self.ring }, self.len)
            }
            Some(max) if self.len + n_new > max => {
                let target = max - n_new;
                let order = self.temporal_order();
                let keep = KEEP.min(target);
                let mut gather: Vec<u32> = order[..keep].iter().map(|&s| s as u32).collect();
                gather.extend(
                    order[order.len() - (target - keep)..]
                        .iter()
                        .map(|&s| s as u32),
                );
                (
                    Plan::Append {
                        at: target,
                        gather: Some(gather),
                    },
                    target,
                )
            }
            _ => (
                Plan::Append {
                    at: self.len,
                    gather: None,
                },
                self.len,
            ),
        };
        let ordered = !matches!(plan, Plan::Ring { .. });
        self.plan = Some((plan, n_new));
        Ok(StepView {
            before,
            n_new,
            ordered,
        })
    }

    /// Slots in the order their tokens were written.
    fn temporal_order(&self) -> Vec<usize> {
        let keep = KEEP.min(self.len);
        let mut order: Vec<usize> = (0..keep).collect();
        if self.len > KEEP {
            order.extend(self.ring..self.len);
            order.extend(KEEP..self.ring);
        }
        order
    }

    /// Write this layer's new keys/values `(kv_heads, n_new, head_dim)` and return the
    /// visible keys and values `(kv_heads, entries, head_dim)`.
    pub fn append(&mut self, layer: usize, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let (plan, n_new) = self
            .plan
            .clone()
            .ok_or_else(|| candle_core::Error::msg("KvCache::append before begin"))?;
        let len = self.len;
        let max = self.max;
        let slot = &mut self.layers[layer];
        let mut out = Vec::with_capacity(2);
        for (buf, new) in [(&mut slot.k, k), (&mut slot.v, v)] {
            let total = match &plan {
                Plan::Ring { slot } => {
                    let b = buf.as_ref().expect("a full window has buffers");
                    b.slice_set(&new.contiguous()?, 1, *slot)?;
                    len
                }
                Plan::Append { at, gather } => {
                    let need = at + n_new;
                    if let Some(idx) = gather {
                        let b = buf.as_ref().expect("a window to trim has buffers");
                        let idx = Tensor::new(idx.as_slice(), b.device())?;
                        let moved = b.index_select(&idx, 1)?;
                        b.slice_set(&moved, 1, 0)?;
                    }
                    ensure_capacity(buf, new, need, len, max)?;
                    buf.as_ref()
                        .expect("allocated")
                        .slice_set(&new.contiguous()?, 1, *at)?;
                    need
                }
            };
            out.push(buf.as_ref().expect("allocated").narrow(1, 0, total)?);
        }
        let v_out = out.pop().expect("two tensors");
        let k_out = out.pop().expect("two tensors");
        Ok((k_out, v_out))
    }

    /// The CPU path's [`Self::append`]: write this layer's new keys and values, `n_new`
    /// rows of `width` values each (rounded to F16), and return how many entries are
    /// visible after the step. Read them with [`Self::raw`].
    pub fn append_raw(
        &mut self,
        layer: usize,
        width: usize,
        k: &[f32],
        v: &[f32],
    ) -> Result<usize> {
        let (plan, n_new) = self
            .plan
            .clone()
            .ok_or_else(|| candle_core::Error::msg("KvCache::append_raw before begin"))?;
        if k.len() != n_new * width || v.len() != n_new * width {
            candle_core::bail!(
                "KvCache::append_raw: {} values for {n_new} rows of {width}",
                k.len()
            );
        }
        let len = self.len;
        let max = self.max;
        let mut grown = 0;
        let slot = &mut self.layers[layer];
        for (buf, new) in [(&mut slot.raw_k, k), (&mut slot.raw_v, v)] {
            let at = match &plan {
                Plan::Ring { slot } => *slot,
                Plan::Append { at, gather } => {
                    if let Some(idx) = gather {
                        let moved: Vec<f16> = idx
                            .iter()
                            .flat_map(|&s| {
                                buf[s as usize * width..(s as usize + 1) * width]
                                    .iter()
                                    .copied()
                            })
                            .collect();
                        buf[..moved.len()].copy_from_slice(&moved);
                    }
                    let need = (at + n_new) * width;
                    if buf.len() < need {
                        let cap = match max {
                            Some(m) => m.max(at + n_new) * width,
                            None => need.max(buf.len() * 2).next_multiple_of(256 * width),
                        };
                        buf.resize(cap, f16::ZERO);
                        grown = grown.max(cap / width);
                    }
                    *at
                }
            };
            let dst = &mut buf[at * width..(at + n_new) * width];
            round_into(new, dst);
        }
        // The token record grows with the buffers, so decoding allocates only when they do.
        self.tokens.reserve(grown.saturating_sub(self.tokens.len()));
        Ok(match plan {
            Plan::Ring { .. } => len,
            Plan::Append { at, .. } => at + n_new,
        })
    }

    /// This layer's keys and values as F16 rows (see [`Self::append_raw`]).
    pub fn raw(&self, layer: usize) -> (&[f16], &[f16]) {
        let l = &self.layers[layer];
        (&l.raw_k, &l.raw_v)
    }

    /// Finish the step planned by [`Self::begin`]: record the tokens and advance positions.
    pub fn commit(&mut self, tokens: &[u32]) {
        let Some((plan, n_new)) = self.plan.take() else {
            return;
        };
        debug_assert_eq!(n_new, tokens.len());
        match plan {
            Plan::Ring { .. } => {
                let max = self.max.expect("ring needs a window");
                self.ring = if self.ring + 1 >= max {
                    KEEP
                } else {
                    self.ring + 1
                };
                self.rotated = true;
            }
            Plan::Append { at, gather } => {
                if gather.is_some() {
                    self.rotated = true;
                    self.ring = KEEP;
                }
                self.len = at + n_new;
            }
        }
        if self.rotated {
            self.tokens.clear();
        } else {
            self.tokens.extend_from_slice(tokens);
        }
        self.next_pos += n_new;
        self.peak = self.peak.max(self.len);
    }

    /// Bytes the key/value buffers take.
    pub fn buffer_bytes(&self) -> usize {
        self.layers
            .iter()
            .flat_map(|l| [&l.k, &l.v])
            .flatten()
            .map(|t| t.elem_count() * t.dtype().size_in_bytes())
            .sum::<usize>()
            + self
                .layers
                .iter()
                .map(|l| (l.raw_k.len() + l.raw_v.len()) * 2)
                .sum::<usize>()
    }
}

/// f32 → F16 with round-to-nearest-even, eight at a time with F16C where the CPU has it.
fn round_into(src: &[f32], dst: &mut [f16]) {
    #[cfg(target_arch = "x86_64")]
    if crate::engine::kernels::avx2::available() {
        // SAFETY: F16C was detected at run time; both slices have the same length.
        unsafe { round_into_f16c(src, dst) };
        return;
    }
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = f16::from_f32(s);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
unsafe fn round_into_f16c(src: &[f32], dst: &mut [f16]) {
    use std::arch::x86_64::*;
    let n8 = src.len().min(dst.len()) / 8 * 8;
    for i in (0..n8).step_by(8) {
        let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_loadu_ps(src.as_ptr().add(i)));
        _mm_storeu_si128(dst.as_mut_ptr().add(i) as *mut __m128i, h);
    }
    for i in n8..src.len().min(dst.len()) {
        dst[i] = f16::from_f32(src[i]);
    }
}

/// Grow (or allocate) a `(kv_heads, cap, head_dim)` buffer so `need` entries fit.
fn ensure_capacity(
    buf: &mut Option<Tensor>,
    like: &Tensor,
    need: usize,
    len: usize,
    max: Option<usize>,
) -> Result<()> {
    let (heads, _, dim) = like.dims3()?;
    let cap = buf.as_ref().map(|b| b.dim(1)).transpose()?.unwrap_or(0);
    if need <= cap {
        return Ok(());
    }
    let new_cap = match max {
        Some(m) => m.max(need),
        None => need.max(cap * 2).next_multiple_of(256),
    };
    let fresh = Tensor::zeros((heads, new_cap, dim), like.dtype(), like.device())?;
    if let Some(old) = buf.as_ref() {
        if len > 0 {
            fresh.slice_set(&old.narrow(1, 0, len)?, 1, 0)?;
        }
    }
    *buf = Some(fresh);
    Ok(())
}

/// Additive causal mask `(n_new, before + n_new)` for a step whose new tokens come after
/// `before` visible cached entries.
pub fn causal_mask(view: StepView, device: &Device) -> Result<Tensor> {
    let StepView { before, n_new, .. } = view;
    let total = before + n_new;
    let mask: Vec<f32> = (0..n_new)
        .flat_map(|i| {
            (0..total).map(move |j| {
                if j <= before + i {
                    0.0
                } else {
                    f32::NEG_INFINITY
                }
            })
        })
        .collect();
    Tensor::from_vec(mask, (n_new, total), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(c: &mut KvCache, toks: &[u32]) -> (Tensor, StepView) {
        let view = c.begin(toks.len()).unwrap();
        let vals: Vec<f32> = toks.iter().map(|&t| t as f32).collect();
        let k = Tensor::from_vec(vals, (1, toks.len(), 1), &Device::Cpu).unwrap();
        let (ks, _) = c.append(0, &k, &k).unwrap();
        c.commit(toks);
        (ks, view)
    }

    fn contents(t: &Tensor) -> Vec<u32> {
        t.flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|&x| x as u32)
            .collect()
    }

    #[test]
    fn unwindowed_cache_grows_and_reuses_prefix() {
        let mut c = KvCache::new(1, None);
        let (ks, _) = step(&mut c, &[1, 2, 3]);
        assert_eq!(contents(&ks), [1, 2, 3]);
        let (ks, _) = step(&mut c, &[4]);
        assert_eq!(contents(&ks), [1, 2, 3, 4]);
        assert_eq!(c.reuse_prefix(&[1, 2, 9, 9]), 2);
        assert_eq!(c.next_pos(), 2);
        let (ks, _) = step(&mut c, &[9, 9]);
        assert_eq!(contents(&ks), [1, 2, 9, 9]);
        // The whole prompt cached: the last token is fed again.
        assert_eq!(c.reuse_prefix(&[1, 2, 9, 9]), 3);
    }

    #[test]
    fn window_keeps_first_tokens_and_never_exceeds_max() {
        let mut c = KvCache::new(1, Some(8));
        step(&mut c, &[0, 1, 2, 3, 4, 5]);
        for t in 6..40u32 {
            let (ks, _) = step(&mut c, &[t]);
            assert!(ks.dim(1).unwrap() <= 8);
            let mut got = contents(&ks);
            got.sort();
            let mut want: Vec<u32> = (0..4).chain((t.saturating_sub(3).max(4))..=t).collect();
            want.sort();
            assert_eq!(got, want, "after token {t}");
        }
        assert!(c.rotated());
        assert_eq!(c.peak(), 8);
        assert_eq!(
            c.reuse_prefix(&[0, 1, 2]),
            0,
            "a rotated cache is not a prefix"
        );
    }

    #[test]
    fn chunk_into_full_window_reorders_and_trims() {
        let mut c = KvCache::new(1, Some(8));
        step(&mut c, &[0, 1, 2, 3, 4, 5, 6, 7]);
        step(&mut c, &[8]); // ring: overwrites slot 4
        let (ks, view) = step(&mut c, &[9, 10, 11]);
        assert_eq!(view.before, 5);
        assert_eq!(contents(&ks), [0, 1, 2, 3, 8, 9, 10, 11]);
    }

    #[test]
    fn mask_is_causal_after_cached_entries() {
        let view = StepView {
            before: 2,
            n_new: 2,
            ordered: true,
        };
        let m = causal_mask(view, &Device::Cpu)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(m[0][..3], [0.0, 0.0, 0.0]);
        assert!(m[0][3].is_infinite());
        assert_eq!(m[1], [0.0, 0.0, 0.0, 0.0]);
    }
}
