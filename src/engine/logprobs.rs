//! Log probabilities of generated tokens: the log-softmax of the model's raw logits at the
//! step (before penalties, temperature, top-k/top-p/min-p and any output constraint — what
//! vLLM returns by default), for the chosen token and the `n` most likely ones.
//!
//! The log-sum-exp runs in f64 over the finite logits (max subtracted), and the top `n`
//! come from one pass keeping a sorted list of at most `n` entries: no sort of the
//! vocabulary, no allocation beyond the answer.

use super::tokenizer::TokenBytes;

/// The most alternatives a request may ask for (OpenAI's limit).
pub const MAX_TOP_LOGPROBS: usize = 20;

/// One of the most likely tokens at a step.
#[derive(Clone, Debug, PartialEq)]
pub struct TopLogprob {
    pub id: u32,
    /// The token's exact bytes (may be part of a UTF-8 character).
    pub bytes: Vec<u8>,
    pub logprob: f32,
}

/// The chosen token's log probability and the most likely alternatives, most likely first.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenLogprobs {
    pub logprob: f32,
    /// The chosen token's exact bytes.
    pub bytes: Vec<u8>,
    pub top: Vec<TopLogprob>,
}

/// Bytes as text: valid UTF-8 as is, anything else with U+FFFD for the broken part.
pub fn bytes_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl TokenLogprobs {
    /// The chosen token as text (see [`bytes_text`]).
    pub fn text(&self) -> String {
        bytes_text(&self.bytes)
    }
}

/// `ln Σ exp(l)` over the finite logits, in f64; `-inf` when none is finite.
pub fn log_sum_exp(logits: &[f32]) -> f64 {
    let finite = || logits.iter().copied().filter(|l| l.is_finite());
    let max = finite().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    let max = f64::from(max);
    let sum: f64 = finite().map(|l| (f64::from(l) - max).exp()).sum();
    max + sum.ln()
}

/// The `n` largest finite logits as `(id, logit)`, largest first (ties: lower id first).
pub fn top_n(logits: &[f32], n: usize, out: &mut Vec<(u32, f32)>) {
    out.clear();
    if n == 0 {
        return;
    }
    for (i, &l) in logits.iter().enumerate() {
        if !l.is_finite() || (out.len() == n && l <= out[n - 1].1) {
            continue;
        }
        let at = out.partition_point(|&(_, x)| x >= l);
        if out.len() == n {
            out.pop();
        }
        out.insert(at, (i as u32, l));
    }
}

/// The log probabilities of step `logits` (raw, before any sampling stage) for `chosen`
/// and its `n` most likely alternatives.
pub fn compute(logits: &[f32], chosen: u32, n: usize, bytes: &TokenBytes) -> TokenLogprobs {
    let lse = log_sum_exp(logits);
    let lp = |l: f32| (f64::from(l) - lse) as f32;
    let mut top = Vec::with_capacity(n.min(MAX_TOP_LOGPROBS));
    top_n(logits, n.min(MAX_TOP_LOGPROBS), &mut top);
    let raw = logits
        .get(chosen as usize)
        .copied()
        .unwrap_or(f32::NEG_INFINITY);
    TokenLogprobs {
        logprob: if raw.is_finite() {
            lp(raw)
        } else {
            f32::NEG_INFINITY
        },
        bytes: bytes.get(chosen).to_vec(),
        top: top
            .into_iter()
            .map(|(id, l)| TopLogprob {
                id,
                bytes: bytes.get(id).to_vec(),
                logprob: lp(l),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The textbook definition, in f64: ln(exp(l_i) / Σ exp(l_j)).
    fn reference(logits: &[f32]) -> Vec<f64> {
        let e: Vec<f64> = logits.iter().map(|&l| f64::from(l).exp()).collect();
        let total: f64 = e.iter().sum();
        e.iter().map(|x| (x / total).ln()).collect()
    }

    #[test]
    fn log_softmax_matches_the_reference_on_random_logits() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let table = TokenBytes::default();
        for _ in 0..20 {
            let n = rng.random_range(1..3000);
            let logits: Vec<f32> = (0..n).map(|_| rng.random_range(-30.0..30.0)).collect();
            let want = reference(&logits);
            let chosen = rng.random_range(0..n as u32);
            let got = compute(&logits, chosen, 20, &table);
            // Tolerance: 1e-4 absolute (the answer is f32; the reference f64).
            assert!((f64::from(got.logprob) - want[chosen as usize]).abs() < 1e-4);
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
            assert_eq!(got.top.len(), n.min(20));
            for (t, &i) in got.top.iter().zip(&order) {
                assert_eq!(t.id as usize, i);
                assert!((f64::from(t.logprob) - want[i]).abs() < 1e-4);
            }
            let mass: f64 = got.top.iter().map(|t| f64::from(t.logprob).exp()).sum();
            assert!(mass <= 1.0 + 1e-5);
        }
    }

    #[test]
    fn large_logits_stay_finite_and_non_finite_ones_are_skipped() {
        let logits = [1000.0, 999.0, f32::NAN, f32::NEG_INFINITY];
        let got = compute(&logits, 1, 5, &TokenBytes::default());
        let want = -(1.0 + (-1.0f64).exp()).ln() - 1.0;
        assert!((f64::from(got.logprob) - want).abs() < 1e-5, "{got:?}");
        assert_eq!(got.top.len(), 2);
        assert_eq!(
            compute(&logits, 3, 0, &TokenBytes::default()).logprob,
            f32::NEG_INFINITY
        );
        assert_eq!(log_sum_exp(&[f32::NAN]), f64::NEG_INFINITY);
        let mut out = vec![];
        top_n(&[1.0, 3.0, 3.0, 2.0], 3, &mut out);
        assert_eq!(out, [(1, 3.0), (2, 3.0), (3, 2.0)]);
    }
}
