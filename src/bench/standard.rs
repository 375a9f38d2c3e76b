//! llama-bench's tests: `pp N` (prompt processing) and `tg N` (text generation).
//!
//! - `pp N`: a prompt of N random token ids, one output token; tok/s = N / (time from
//!   sending the request to the first token's arrival).
//! - `tg N`: a one-token prompt, N tokens generated (EOS ignored); tok/s = N / (time from
//!   sending to the last token's arrival) — every token costs one forward step.
//! - `@ dD`: before every repetition the cache is filled with the same D random tokens
//!   (untimed); the timed request then extends them, and must find exactly D cached.
//!
//! One untimed warmup per test, then `repetitions` timed runs: mean ± sample sd.

use super::stats::Summary;
use super::{BenchConfig, BenchError, Ctx, Progress};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TestKind {
    Pp,
    Tg,
}

/// One llama-bench row.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TestResult {
    /// `pp512`, `tg128`, `pp512 @ d512`.
    pub test: String,
    pub kind: TestKind,
    pub tokens: usize,
    pub depth: usize,
    /// Tokens/s of each timed repetition.
    pub samples_tok_s: Vec<f64>,
    /// Milliseconds of each timed repetition.
    pub samples_ms: Vec<f64>,
    pub tok_s: Summary,
}

/// The test's name as llama-bench prints it.
pub fn label(kind: TestKind, tokens: usize, depth: usize) -> String {
    let k = match kind {
        TestKind::Pp => "pp",
        TestKind::Tg => "tg",
    };
    if depth > 0 {
        format!("{k}{tokens} @ d{depth}")
    } else {
        format!("{k}{tokens}")
    }
}

pub fn run(
    ctx: &mut Ctx,
    cfg: &BenchConfig,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<TestResult>, BenchError> {
    let mut tests = Vec::new();
    for &d in &cfg.depths {
        for &p in cfg.prompt_tokens.iter().filter(|&&p| p > 0) {
            tests.push((TestKind::Pp, p, d));
        }
        for &n in cfg.gen_tokens.iter().filter(|&&n| n > 0) {
            tests.push((TestKind::Tg, n, d));
        }
    }
    for &(kind, n, d) in &tests {
        let need = d + if kind == TestKind::Pp { n } else { n + 1 };
        ctx.fits(label(kind, n, d), need)?;
    }
    let mut out = Vec::new();
    let mut depth_tokens: Vec<u32> = Vec::new();
    let mut prev_first: Option<u32> = None;
    for (kind, n, d) in tests {
        if depth_tokens.len() != d {
            depth_tokens = ctx.random_tokens(d, None);
        }
        let name = label(kind, n, d);
        progress(Progress::Message(format!(
            "{}: {name}: warmup + {} repetitions",
            ctx.name, cfg.repetitions
        )));
        let mut samples_tok_s = Vec::new();
        let mut samples_ms = Vec::new();
        for rep in 0..=cfg.repetitions {
            if d > 0 {
                // Fill the cache with exactly the depth tokens (untimed).
                ctx.timed(depth_tokens.clone(), 1, None, &mut |_, _| {})?;
            }
            let fresh = ctx.random_tokens(
                if kind == TestKind::Pp { n } else { 1 },
                if d == 0 { prev_first } else { None },
            );
            prev_first = fresh.first().copied();
            let mut prompt = depth_tokens.clone();
            prompt.extend(fresh);
            let (max_tokens, tokens) = match kind {
                TestKind::Pp => (1, n),
                TestKind::Tg => (n, 0),
            };
            let t = ctx.timed_cached(prompt, max_tokens, d)?;
            let (tokens, ms) = match kind {
                TestKind::Pp => (tokens, t.ttft_ms()),
                TestKind::Tg => (t.token_ms.len(), t.last_ms()),
            };
            if rep > 0 {
                samples_ms.push(ms);
                samples_tok_s.push(tokens as f64 * 1000.0 / ms.max(1e-9));
            }
        }
        let tok_s = Summary::of(&samples_tok_s);
        progress(Progress::Message(format!(
            "{}: {name}: {} tok/s",
            ctx.name,
            tok_s.mean_sd(2)
        )));
        let r = TestResult {
            test: name,
            kind,
            tokens: n,
            depth: d,
            samples_tok_s,
            samples_ms,
            tok_s,
        };
        progress(Progress::Test(&r));
        out.push(r);
    }
    Ok(out)
}
