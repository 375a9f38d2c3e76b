//! vLLM's latency metrics over R requests, sent one after another (concurrency 1: the
//! engine runs one sequence at a time), each a fresh prompt of random token ids with EOS
//! ignored, after one untimed warmup request:
//!
//! - TTFT: sending the request → first token's arrival;
//! - TPOT: (E2E − TTFT) / (output tokens − 1), per request;
//! - ITL: every gap between consecutive tokens, pooled over all requests;
//! - E2E: sending the request → the final event's arrival.
//!
//! Each is summarised as mean, p50, p90, p99 (see [`super::stats`]).

use super::stats::{self, Summary};
use super::{BenchConfig, BenchError, Ctx, Progress};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// One request's figures, in milliseconds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RequestSample {
    pub ttft_ms: f64,
    pub tpot_ms: Option<f64>,
    pub e2e_ms: f64,
    pub output_tokens: usize,
    /// Gaps between consecutive tokens.
    pub itl_ms: Vec<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LatencyResult {
    pub requests: usize,
    pub input_tokens: usize,
    pub output_tokens: usize,
    pub duration_s: f64,
    /// Requests per second and output tokens per second over the whole run.
    pub request_throughput: f64,
    pub output_throughput: f64,
    pub ttft_ms: Summary,
    pub tpot_ms: Summary,
    pub itl_ms: Summary,
    pub e2e_ms: Summary,
    pub samples: Vec<RequestSample>,
}

pub fn run(
    ctx: &mut Ctx,
    cfg: &BenchConfig,
    requests: usize,
    progress: &mut dyn FnMut(Progress),
) -> Result<LatencyResult, BenchError> {
    let first_nonzero = |v: &[usize], d: usize| v.iter().copied().find(|&x| x > 0).unwrap_or(d);
    let input = first_nonzero(&cfg.prompt_tokens, 512);
    let output = first_nonzero(&cfg.gen_tokens, 128);
    ctx.fits("the latency requests", input + output)?;
    progress(Progress::Message(format!(
        "{}: latency: warmup + {requests} requests of {input} → {output} tokens",
        ctx.name
    )));
    let mut prev_first = None;
    let mut samples = Vec::with_capacity(requests);
    let mut arrivals = Vec::with_capacity(requests);
    let mut t_start = Instant::now();
    for i in 0..=requests {
        if i == 1 {
            t_start = Instant::now();
        }
        let prompt = ctx.random_tokens(input, prev_first);
        prev_first = prompt.first().copied();
        let t = ctx.timed_cached(prompt, output, 0)?;
        if i == 0 {
            continue;
        }
        let n = t.token_ms.len();
        samples.push(RequestSample {
            ttft_ms: t.ttft_ms(),
            tpot_ms: stats::tpot(t.done_ms, t.ttft_ms(), n),
            e2e_ms: t.done_ms,
            output_tokens: n,
            itl_ms: stats::gaps(&t.token_ms),
        });
        arrivals.push(t.token_ms);
    }
    let duration_s = t_start.elapsed().as_secs_f64();
    let col = |f: fn(&RequestSample) -> Option<f64>| -> Vec<f64> {
        samples.iter().filter_map(f).collect()
    };
    let itl = stats::pooled_itl(arrivals.iter().map(|a| &a[..]));
    let out_tokens: usize = samples.iter().map(|s| s.output_tokens).sum();
    let res = LatencyResult {
        requests,
        input_tokens: input,
        output_tokens: output,
        duration_s,
        request_throughput: requests as f64 / duration_s.max(1e-9),
        output_throughput: out_tokens as f64 / duration_s.max(1e-9),
        ttft_ms: Summary::of(&col(|s| Some(s.ttft_ms))),
        tpot_ms: Summary::of(&col(|s| s.tpot_ms)),
        itl_ms: Summary::of(&itl),
        e2e_ms: Summary::of(&col(|s| Some(s.e2e_ms))),
        samples,
    };
    progress(Progress::Message(format!(
        "{}: latency: TTFT p50 {:.1} ms, TPOT p50 {:.2} ms, ITL p99 {:.2} ms",
        ctx.name, res.ttft_ms.p50, res.tpot_ms.p50, res.itl_ms.p99
    )));
    progress(Progress::Latency(&res));
    Ok(res)
}
