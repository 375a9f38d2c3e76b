//! Concurrent streams (`--concurrency 1,2,4,8`): for each N, N greedy requests are sent at
//! the same moment, each a distinct prompt of [`PROMPT_TOKENS`] random token ids (short, so
//! decoding dominates) generating exactly the first `--n-gen` size (EOS ignored), after
//! one untimed warmup request. The engine batches them (continuous batching), so N streams
//! share each step's read of the weights.
//!
//! - **aggregate tok/s**: tokens generated after each stream's first token, summed over
//!   the streams, / the decode phase (first token of the earliest stream → last token of
//!   the latest one). A stream's first token comes from its prefill, so it is left out.
//! - **per-stream tok/s**: (tokens − 1) / (its last token − its first token), per stream;
//!   mean ± sample sd and min.
//! - **speedup**: aggregate tok/s over the aggregate tok/s of N = 1 (when 1 is measured).

use super::stats::Summary;
use super::{BenchConfig, BenchError, Ctx, Progress};
use serde::{Deserialize, Serialize};
use std::sync::Barrier;
use std::time::Instant;

/// Prompt tokens of every stream.
pub const PROMPT_TOKENS: usize = 16;

/// One stream of a level, times in ms from the moment all streams were sent.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StreamSample {
    pub output_tokens: usize,
    pub first_token_ms: f64,
    pub last_token_ms: f64,
    /// (output tokens − 1) / (last token − first token).
    pub tok_s: f64,
}

/// N streams at once.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConcurrencyResult {
    pub streams: usize,
    pub prompt_tokens: usize,
    pub gen_tokens: usize,
    /// The decode phase: earliest first token → latest last token, in seconds.
    pub decode_s: f64,
    pub aggregate_tok_s: f64,
    pub per_stream_tok_s: Summary,
    /// Aggregate tok/s over that of one stream (`None` when 1 is not among the levels).
    pub speedup: Option<f64>,
    /// Time to first token of each stream.
    pub ttft_ms: Summary,
    pub samples: Vec<StreamSample>,
}

fn per_s(tokens: usize, ms: f64) -> f64 {
    if ms > 0.0 {
        tokens as f64 * 1000.0 / ms
    } else {
        0.0
    }
}

/// Aggregate and per-stream figures of one level from its streams' samples.
pub fn summarise(streams: usize, gen: usize, samples: Vec<StreamSample>) -> ConcurrencyResult {
    let first = samples
        .iter()
        .map(|s| s.first_token_ms)
        .fold(f64::INFINITY, f64::min);
    let last = samples.iter().map(|s| s.last_token_ms).fold(0.0, f64::max);
    let decode_ms = (last - first).max(0.0);
    let tokens: usize = samples
        .iter()
        .map(|s| s.output_tokens.saturating_sub(1))
        .sum();
    let tok_s: Vec<f64> = samples.iter().map(|s| s.tok_s).collect();
    let ttft: Vec<f64> = samples.iter().map(|s| s.first_token_ms).collect();
    ConcurrencyResult {
        streams,
        prompt_tokens: PROMPT_TOKENS,
        gen_tokens: gen,
        decode_s: decode_ms / 1000.0,
        aggregate_tok_s: per_s(tokens, decode_ms),
        per_stream_tok_s: Summary::of(&tok_s),
        speedup: None,
        ttft_ms: Summary::of(&ttft),
        samples,
    }
}

pub fn run(
    ctx: &mut Ctx,
    cfg: &BenchConfig,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<ConcurrencyResult>, BenchError> {
    let levels: Vec<usize> = cfg.concurrency.iter().copied().filter(|&n| n > 0).collect();
    if levels.is_empty() {
        return Ok(vec![]);
    }
    let gen = cfg
        .gen_tokens
        .iter()
        .copied()
        .find(|&x| x > 0)
        .unwrap_or(128)
        .max(2);
    ctx.fits("the concurrent streams", PROMPT_TOKENS + gen)?;
    let mut prev_first = None;
    let warmup = ctx.random_tokens(PROMPT_TOKENS, prev_first);
    prev_first = warmup.first().copied();
    ctx.timed(warmup, 4, None, &mut |_, _| {})?;
    let mut results: Vec<ConcurrencyResult> = Vec::new();
    for n in levels {
        progress(Progress::Message(format!(
            "{}: concurrency: {n} streams of {PROMPT_TOKENS} → {gen} tokens",
            ctx.name
        )));
        let prompts: Vec<Vec<u32>> = (0..n)
            .map(|_| {
                let p = ctx.random_tokens(PROMPT_TOKENS, prev_first);
                prev_first = p.first().copied();
                p
            })
            .collect();
        let shared: &Ctx = ctx;
        let barrier = Barrier::new(n);
        let start = Instant::now();
        let samples: Result<Vec<StreamSample>, BenchError> = std::thread::scope(|s| {
            let handles: Vec<_> = prompts
                .into_iter()
                .map(|p| {
                    let barrier = &barrier;
                    s.spawn(move || {
                        barrier.wait();
                        let sent = start.elapsed().as_secs_f64() * 1000.0;
                        let t = shared.timed(p, gen, None, &mut |_, _| {})?;
                        let n = t.token_ms.len();
                        let (first, last) = (t.ttft_ms(), t.last_ms());
                        Ok(StreamSample {
                            output_tokens: n,
                            first_token_ms: sent + first,
                            last_token_ms: sent + last,
                            tok_s: per_s(n.saturating_sub(1), last - first),
                        })
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a stream thread panicked"))
                .collect()
        });
        let mut r = summarise(n, gen, samples?);
        r.speedup = results
            .iter()
            .find(|x| x.streams == 1)
            .filter(|one| one.aggregate_tok_s > 0.0)
            .map(|one| r.aggregate_tok_s / one.aggregate_tok_s);
        progress(Progress::Message(format!(
            "{}: concurrency: {n} streams: {:.2} tok/s aggregate, {:.2} ± {:.2} tok/s per stream",
            ctx.name, r.aggregate_tok_s, r.per_stream_tok_s.mean, r.per_stream_tok_s.sd
        )));
        progress(Progress::Concurrency(&r));
        results.push(r);
    }
    // Levels measured before N = 1 get their speedup now.
    if let Some(one) = results
        .iter()
        .find(|x| x.streams == 1)
        .map(|x| x.aggregate_tok_s)
    {
        for r in results.iter_mut().filter(|_| one > 0.0) {
            r.speedup = Some(r.aggregate_tok_s / one);
        }
    }
    Ok(results)
}
