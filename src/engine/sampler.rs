//! Token sampling, following llama.cpp's default sampler chain.
//!
//! Order: penalties (repeat, presence, frequency) over the last `repeat_last_n` tokens of the
//! history, then either greedy argmax (`temperature == 0`) or top-k → top-p → min-p →
//! temperature → softmax → weighted draw. Like llama.cpp, top-p and min-p look at the
//! distribution *before* temperature is applied.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The request settings front ends accept by name (`/set`, prompt-set TOML): the
/// sampler's knobs, then the two request limits.
pub const SETTING_KEYS: [&str; 11] = [
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "repeat_penalty",
    "repeat_last_n",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "max_tokens",
    "max_kv_size",
];

/// How many refused picks [`Sampler::sample_allowed`] retries one by one before it checks
/// every token at once.
pub const PICKS_BEFORE_MASK: usize = 32;

/// Knobs of the sampler; every "off" value makes its stage a no-op.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SamplingParams {
    /// Softmax temperature; `0` means greedy decoding.
    pub temperature: f32,
    /// Nucleus sampling: keep the smallest set of tokens whose probability reaches this (1.0 = off).
    pub top_p: f32,
    /// Keep only the `top_k` most likely tokens (0 = off).
    pub top_k: usize,
    /// Drop tokens whose probability is below `min_p` × the top token's probability (0.0 = off).
    pub min_p: f32,
    /// Divide positive / multiply negative logits of recently seen tokens (1.0 = off).
    pub repeat_penalty: f32,
    /// How many of the most recent history tokens all penalties look at (0 = penalties off).
    pub repeat_last_n: usize,
    /// Subtracted once from the logit of every distinct recently seen token.
    pub presence_penalty: f32,
    /// Subtracted from a recently seen token's logit once per occurrence.
    pub frequency_penalty: f32,
    /// RNG seed; `None` draws one from OS entropy (see [`Sampler::seed`]).
    pub seed: Option<u64>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 0.8,
            top_p: 1.0,
            top_k: 0,
            min_p: 0.0,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            seed: None,
        }
    }
}

/// A sampling parameter outside its allowed range.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
#[error("invalid sampling parameter {name} = {value}: it must be {allowed}")]
pub struct SamplerError {
    /// The parameter's name as in [`SamplingParams`].
    pub name: &'static str,
    /// The rejected value, as written.
    pub value: String,
    /// Human-readable allowed range.
    pub allowed: &'static str,
}

impl SamplingParams {
    /// Greedy decoding with every other stage off and a fixed seed.
    pub fn greedy() -> SamplingParams {
        SamplingParams {
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            min_p: 0.0,
            repeat_penalty: 1.0,
            seed: Some(0),
            ..SamplingParams::default()
        }
    }

    /// Check every value is finite and within its range.
    pub fn validate(&self) -> Result<(), SamplerError> {
        let (t, top_p, min_p, rp) = (
            self.temperature,
            self.top_p,
            self.min_p,
            self.repeat_penalty,
        );
        let any = "a finite number (0 = off)";
        let checks = [
            (
                "temperature",
                t,
                t >= 0.0,
                "a finite number >= 0 (0 = greedy)",
            ),
            (
                "top_p",
                top_p,
                top_p > 0.0 && top_p <= 1.0,
                "in (0, 1] (1 = off)",
            ),
            (
                "min_p",
                min_p,
                (0.0..=1.0).contains(&min_p),
                "in [0, 1] (0 = off)",
            ),
            (
                "repeat_penalty",
                rp,
                rp > 0.0,
                "a finite number > 0 (1 = off)",
            ),
            ("presence_penalty", self.presence_penalty, true, any),
            ("frequency_penalty", self.frequency_penalty, true, any),
        ];
        match checks
            .into_iter()
            .find(|&(_, value, ok, _)| !(ok && value.is_finite()))
        {
            Some((name, value, _, allowed)) => {
                let value = value.to_string();
                Err(SamplerError {
                    name,
                    value,
                    allowed,
                })
            }
            None => Ok(()),
        }
    }
}

/// Picks the next token from a logits vector. Holds its RNG and scratch buffers, so create
/// one per generation stream and reuse it across steps.
#[derive(Debug)]
pub struct Sampler {
    params: SamplingParams,
    seed: u64,
    rng: StdRng,
    /// (token id, logit) candidates, reused between calls.
    candidates: Vec<(u32, f32)>,
    /// Sorted copy of the penalty window, reused between calls.
    window: Vec<u32>,
}

impl Sampler {
    /// Build a sampler. Parameters are not validated here (call [`SamplingParams::validate`]
    /// first); out-of-range values never panic but may behave oddly.
    pub fn new(params: SamplingParams) -> Self {
        let seed = params.seed.unwrap_or_else(|| rand::rng().random());
        Self {
            params,
            seed,
            rng: StdRng::seed_from_u64(seed),
            candidates: Vec::new(),
            window: Vec::new(),
        }
    }

    /// The seed actually in use (drawn from entropy when none was given), for reproducibility.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The parameters this sampler was built with.
    pub fn params(&self) -> &SamplingParams {
        &self.params
    }

    /// Choose the next token. `history` is every token so far (prompt + generated). Penalties
    /// are applied to `logits` in place; the later stages work on an internal copy. NaN logits
    /// are treated as impossible; if no token is possible, token 0 is returned.
    pub fn sample(&mut self, logits: &mut [f32], history: &[u32]) -> u32 {
        self.apply_penalties(logits, history);
        self.pick(logits)
    }

    /// Like [`Self::sample`], but only a token `allowed` accepts is returned: the pick is
    /// made as usual, and when `allowed` refuses it, that token is removed (its logit set to
    /// `-inf`) and the pick made again from what remains — which samples the distribution
    /// conditioned on the allowed tokens. After [`PICKS_BEFORE_MASK`] refusals every token is
    /// checked once and the refused ones removed together. `None` when no token is allowed.
    pub fn sample_allowed(
        &mut self,
        logits: &mut [f32],
        history: &[u32],
        mut allowed: impl FnMut(u32) -> bool,
    ) -> Option<u32> {
        self.apply_penalties(logits, history);
        for _ in 0..PICKS_BEFORE_MASK {
            let id = self.pick(logits);
            let possible = logits
                .get(id as usize)
                .is_some_and(|l| *l > f32::NEG_INFINITY);
            if !possible {
                return None;
            }
            if allowed(id) {
                return Some(id);
            }
            logits[id as usize] = f32::NEG_INFINITY;
        }
        let mut any = false;
        for (i, l) in logits.iter_mut().enumerate() {
            if *l > f32::NEG_INFINITY && !l.is_nan() {
                if allowed(i as u32) {
                    any = true;
                } else {
                    *l = f32::NEG_INFINITY;
                }
            }
        }
        if !any {
            return None;
        }
        let id = self.pick(logits);
        logits
            .get(id as usize)
            .is_some_and(|l| *l > f32::NEG_INFINITY)
            .then_some(id)
    }

    /// The sampling stages after the penalties; `logits` is read, not changed.
    fn pick(&mut self, logits: &[f32]) -> u32 {
        let p = &self.params;
        if p.temperature.is_nan() || p.temperature <= 0.0 {
            return argmax(logits);
        }

        let cands = &mut self.candidates;
        cands.clear();
        let possible = |(_, l): &(usize, &f32)| !l.is_nan() && **l > f32::NEG_INFINITY;
        let as_candidate = |(i, &l): (usize, &f32)| (i as u32, l);
        cands.extend(logits.iter().enumerate().filter(possible).map(as_candidate));
        let max = cands.iter().map(|c| c.1).fold(f32::NEG_INFINITY, f32::max);
        if cands.is_empty() || max == f32::INFINITY {
            return argmax(logits);
        }

        // Highest logit first; ties broken by lower id so results are deterministic.
        let by_logit_desc =
            |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));

        // top-k: partition instead of sorting the whole vocabulary.
        if p.top_k > 0 && p.top_k < cands.len() {
            cands.select_nth_unstable_by(p.top_k - 1, by_logit_desc);
            cands.truncate(p.top_k);
        }

        // top-p: keep the most likely prefix whose mass reaches top_p. Only that prefix needs
        // sorting, so sort a growing head (usually a few dozen tokens) instead of the vocabulary.
        if p.top_p < 1.0 {
            let total: f64 = cands.iter().map(|c| f64::from(c.1 - max).exp()).sum();
            let target = f64::from(p.top_p) * total;
            let mut head = cands.len().min(64);
            loop {
                if head < cands.len() {
                    cands.select_nth_unstable_by(head - 1, by_logit_desc);
                }
                cands[..head].sort_unstable_by(by_logit_desc);
                let mut cum = 0.0;
                let reached = cands[..head].iter().position(|c| {
                    cum += f64::from(c.1 - max).exp();
                    cum >= target
                });
                if let Some(i) = reached {
                    cands.truncate(i + 1);
                    break;
                }
                if head == cands.len() {
                    break; // rounding kept the mass just short of the target: keep everything
                }
                head = cands.len().min(head * 4);
            }
        }

        // min-p: p_i >= min_p * p_max  <=>  logit_i >= max_logit + ln(min_p). Keeps the top token.
        if p.min_p > 0.0 {
            let threshold = max + p.min_p.min(1.0).ln();
            cands.retain(|c| c.1 >= threshold);
        }

        // temperature + softmax (max subtracted for stability), then draw.
        let inv_t = 1.0 / f64::from(p.temperature);
        let mut total = 0.0;
        for c in cands.iter_mut() {
            c.1 = (f64::from(c.1 - max) * inv_t).exp() as f32;
            total += f64::from(c.1);
        }
        let mut r = self.rng.random::<f64>() * total;
        for c in cands.iter() {
            r -= f64::from(c.1);
            if r < 0.0 {
                return c.0;
            }
        }
        // Rounding left a sliver: take the last candidate that had any weight.
        let last = cands.iter().rev().find(|c| c.1 > 0.0);
        last.unwrap_or(&cands[0]).0
    }

    /// llama.cpp's penalties: for each distinct token seen `count` times in the window,
    /// `logit = logit <= 0 ? logit * repeat : logit / repeat`, then
    /// `logit -= count * frequency + presence`.
    fn apply_penalties(&mut self, logits: &mut [f32], history: &[u32]) {
        let p = &self.params;
        let off =
            p.repeat_penalty == 1.0 && p.presence_penalty == 0.0 && p.frequency_penalty == 0.0;
        if off || p.repeat_last_n == 0 || history.is_empty() {
            return;
        }
        let start = history.len().saturating_sub(p.repeat_last_n);
        self.window.clear();
        self.window.extend_from_slice(&history[start..]);
        self.window.sort_unstable();
        for run in self.window.chunk_by(|a, b| a == b) {
            let Some(logit) = logits.get_mut(run[0] as usize) else {
                continue;
            };
            if *logit <= 0.0 {
                *logit *= p.repeat_penalty;
            } else {
                *logit /= p.repeat_penalty;
            }
            *logit -= run.len() as f32 * p.frequency_penalty + p.presence_penalty;
        }
    }
}

/// Index of the largest logit; ties go to the lowest id, NaN is never chosen.
fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    let mut best_val = f32::NEG_INFINITY;
    for (i, &l) in logits.iter().enumerate() {
        if l > best_val {
            best = i;
            best_val = l;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seeded parameters at temperature 1, adjusted by `f`.
    fn with(f: impl FnOnce(&mut SamplingParams)) -> SamplingParams {
        let mut p = SamplingParams {
            temperature: 1.0,
            seed: Some(42),
            ..Default::default()
        };
        f(&mut p);
        p
    }

    fn draws(p: SamplingParams, logits: &[f32], n: usize) -> Vec<u32> {
        let mut s = Sampler::new(p);
        (0..n)
            .map(|_| s.sample(&mut logits.to_vec(), &[]))
            .collect()
    }

    fn ln(probs: &[f32]) -> Vec<f32> {
        probs.iter().map(|p| p.ln()).collect()
    }

    #[test]
    fn greedy_picks_argmax_lowest_id_on_ties_and_ignores_nan() {
        let mut s = Sampler::new(with(|p| p.temperature = 0.0));
        assert_eq!(s.sample(&mut [0.1, 3.0, -1.0, 2.9], &[]), 1);
        assert_eq!(s.sample(&mut [1.0, 5.0, 5.0, 5.0], &[]), 1);
        assert_eq!(s.sample(&mut [f32::NAN, 0.5, f32::NAN, 0.7], &[]), 3);
        assert_eq!(s.sample(&mut [f32::NAN; 3], &[]), 0);
        let mut s = Sampler::new(with(|_| ()));
        assert_eq!(
            s.sample(&mut [f32::NAN, 0.5, f32::NAN, f32::NEG_INFINITY], &[]),
            1
        );
        assert_eq!(s.sample(&mut [0.0, f32::INFINITY, f32::INFINITY], &[]), 1);
        assert_eq!(s.sample(&mut [f32::NAN; 3], &[]), 0);
        assert_eq!(s.sample(&mut [], &[]), 0);
    }

    #[test]
    fn seeds_reproduce_and_differ() {
        let logits: Vec<f32> = (0..100).map(|i| (i % 7) as f32 * 0.1).collect();
        let a = draws(with(|_| ()), &logits, 200);
        assert_eq!(a, draws(with(|_| ()), &logits, 200));
        assert_ne!(a, draws(with(|p| p.seed = Some(43)), &logits, 200));
        let from_entropy = Sampler::new(with(|p| p.seed = None));
        let seed = from_entropy.seed();
        assert_eq!(Sampler::new(with(|p| p.seed = Some(seed))).seed(), seed);
    }

    #[test]
    fn top_k_one_and_tiny_top_p_are_greedy() {
        let logits: Vec<f32> = (0..1000).map(|i| ((i * 37) % 101) as f32 * 0.05).collect();
        let greedy = argmax(&logits);
        let k1 = with(|p| (p.top_k, p.temperature) = (1, 1.5));
        assert!(draws(k1, &logits, 200).iter().all(|&t| t == greedy));
        let p_tiny = with(|p| (p.top_p, p.temperature) = (1e-6, 1.5));
        assert!(draws(p_tiny, &logits, 200).iter().all(|&t| t == greedy));
    }

    #[test]
    fn top_k_and_top_p_restrict_support() {
        let logits = [3.0, 2.9, 2.8, 0.0, -1.0, 2.7];
        let k3 = with(|p| (p.top_k, p.temperature) = (3, 5.0));
        let d = draws(k3, &logits, 500);
        assert!(d.iter().all(|&t| t <= 2) && d.contains(&2));
        // probabilities [0.5, 0.3, 0.2]: top_p 0.75 keeps the first two.
        let d = draws(with(|p| p.top_p = 0.75), &ln(&[0.5, 0.3, 0.2]), 500);
        assert!(d.iter().all(|&t| t <= 1) && d.contains(&1));
    }

    #[test]
    fn min_p_filters_relative_to_top() {
        // probabilities [0.5, 0.3, 0.15, 0.05]: min_p 0.25 keeps p >= 0.125.
        let logits = ln(&[0.5, 0.3, 0.15, 0.05]);
        let d = draws(with(|p| p.min_p = 0.25), &logits, 2000);
        assert!(!d.contains(&3) && d.contains(&2));
        assert!(draws(with(|_| ()), &logits, 2000).contains(&3));
    }

    #[test]
    fn penalties_change_exactly_the_seen_logits() {
        let base = [2.0f32, -2.0, 1.0, 0.5, 4.0];
        let history = [0, 1, 0, 7_000]; // token 0 twice, token 1 once; out-of-vocab ignored
        let run = |f: fn(&mut SamplingParams)| {
            let mut logits = base;
            let params = with(|p| {
                f(p);
                p.temperature = 0.0;
            });
            Sampler::new(params).sample(&mut logits, &history);
            logits
        };
        assert_eq!(run(|p| p.repeat_penalty = 2.0), [1.0, -4.0, 1.0, 0.5, 4.0]);
        assert_eq!(
            run(|p| p.presence_penalty = 0.5),
            [1.5, -2.5, 1.0, 0.5, 4.0]
        );
        assert_eq!(
            run(|p| p.frequency_penalty = 0.25),
            [1.5, -2.25, 1.0, 0.5, 4.0]
        );
        let all =
            run(|p| (p.repeat_penalty, p.presence_penalty, p.frequency_penalty) = (2.0, 0.5, 0.25));
        assert_eq!(all, [0.0, -4.75, 1.0, 0.5, 4.0]);
        // Only the last `repeat_last_n` tokens count: the window [0, 7000] holds token 0 once.
        let windowed = run(|p| (p.frequency_penalty, p.repeat_last_n) = (1.0, 2));
        assert_eq!(windowed, [1.0, -2.0, 1.0, 0.5, 4.0]);
        assert_eq!(
            run(|p| (p.repeat_penalty, p.repeat_last_n) = (2.0, 0)),
            base
        );
    }

    #[test]
    fn distribution_matches_softmax() {
        let n = 20_000;
        let d = draws(with(|_| ()), &ln(&[0.7, 0.2, 0.1]), n);
        for (id, want) in [0.7, 0.2, 0.1].into_iter().enumerate() {
            let got = d.iter().filter(|&&t| t == id as u32).count() as f64 / n as f64;
            assert!((got - want).abs() < 0.02, "token {id}: {got} vs {want}");
        }
    }

    #[test]
    fn sample_allowed_picks_the_best_allowed_token_or_none() {
        let mut s = Sampler::new(with(|p| p.temperature = 0.0));
        let logits = [0.1, 3.0, -1.0, 2.9, 2.0];
        assert_eq!(
            s.sample_allowed(&mut logits.to_vec(), &[], |id| id != 1),
            Some(3)
        );
        assert_eq!(
            s.sample_allowed(&mut logits.to_vec(), &[], |id| id == 2),
            Some(2)
        );
        assert_eq!(s.sample_allowed(&mut logits.to_vec(), &[], |_| false), None);
        // Past PICKS_BEFORE_MASK refusals every token is checked at once.
        let many: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        let got = s.sample_allowed(&mut many.clone(), &[], |id| id == 5);
        assert_eq!(got, Some(5));
        // Sampling: only allowed tokens come out, in their conditioned proportions.
        let mut s = Sampler::new(with(|_| ()));
        let logits = ln(&[0.5, 0.3, 0.2]);
        let n = 10_000;
        let d: Vec<u32> = (0..n)
            .filter_map(|_| s.sample_allowed(&mut logits.clone(), &[], |id| id != 0))
            .collect();
        assert_eq!(d.len(), n);
        let ones = d.iter().filter(|&&t| t == 1).count() as f64 / n as f64;
        assert!((ones - 0.6).abs() < 0.03, "{ones}");
    }

    #[test]
    fn validate_names_parameter_and_range() {
        assert!(SamplingParams::default().validate().is_ok());
        type Case = (fn(&mut SamplingParams), &'static str, &'static str);
        let bad: [Case; 8] = [
            (|p| p.temperature = -0.1, "temperature", ">= 0"),
            (|p| p.temperature = f32::INFINITY, "temperature", "finite"),
            (|p| p.top_p = 0.0, "top_p", "(0, 1]"),
            (|p| p.top_p = 1.5, "top_p", "(0, 1]"),
            (|p| p.min_p = -0.5, "min_p", "[0, 1]"),
            (|p| p.repeat_penalty = 0.0, "repeat_penalty", "> 0"),
            (
                |p| p.presence_penalty = f32::NAN,
                "presence_penalty",
                "finite",
            ),
            (
                |p| p.frequency_penalty = f32::NEG_INFINITY,
                "frequency_penalty",
                "finite",
            ),
        ];
        for (f, name, range) in bad {
            let err = with(f).validate().unwrap_err();
            assert_eq!(err.name, name);
            let msg = err.to_string();
            assert!(msg.contains(name) && msg.contains(range), "{msg}");
        }
    }

    #[test]
    fn params_deserialize_with_defaults() {
        let p: SamplingParams = serde_json::from_str(r#"{"temperature": 0.0, "seed": 7}"#).unwrap();
        let want = SamplingParams {
            temperature: 0.0,
            seed: Some(7),
            ..Default::default()
        };
        assert_eq!(p, want);
    }
}
