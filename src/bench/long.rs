//! Long runs: one generation of `long_gen_tokens` per `--max-kv-size` (EOS ignored), with
//! decode tok/s and this process's RSS sampled at the end of every block of `block`
//! tokens, and an unwindowed run beside the windowed ones (added when not asked for).
//!
//! The window *fills* once prompt + generated tokens reach its size; the unwindowed run is
//! read from the smallest window's fill point, so both compare the same stretch. Checks:
//!
//! 1. decode tok/s over the last quarter ≥ 90 % of the first full block after the fill;
//! 2. RSS after the fill grows by < 5 % and never swings (max − min) by more than 5 %;
//! 3. cached tokens never exceed the window nor the context (a window larger than the
//!    context is refused before anything runs);
//! 4. the unwindowed run was measured beside it, over the same number of tokens.

use super::{BenchConfig, BenchError, Ctx, Progress};
use crate::metrics::ProcessSampler;
use serde::{Deserialize, Serialize};

/// Random prompt tokens before each long generation.
pub const PROMPT_TOKENS: usize = 16;
/// Check 1: the last quarter keeps at least this share of the first block's tok/s.
pub const MIN_RATIO: f64 = 0.9;
/// Check 2: RSS growth and swing after the fill stay under this many percent.
pub const MAX_RSS_PCT: f64 = 5.0;

/// One block of generated tokens `[start, end)`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Block {
    pub start: usize,
    pub end: usize,
    /// Decode tokens/s over the block.
    pub tok_s: f64,
    /// When the block's last token arrived, ms from sending the request.
    pub t_ms: f64,
    pub rss_bytes: u64,
    pub cpu_percent: Option<f32>,
}

/// One long generation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LongRun {
    /// `None`: no window.
    pub window: Option<usize>,
    pub prompt_tokens: usize,
    pub requested: usize,
    pub generated: usize,
    /// Generated tokens after which figures are read (the window's fill point).
    pub fill_at: usize,
    pub first_block_tok_s: Option<f64>,
    pub last_quarter_tok_s: f64,
    pub ratio: Option<f64>,
    pub rss_start_bytes: u64,
    pub rss_at_fill_bytes: Option<u64>,
    pub rss_end_bytes: u64,
    pub rss_growth_pct: Option<f64>,
    pub rss_swing_pct: Option<f64>,
    pub kv_peak: Option<usize>,
    pub finish_reason: String,
    pub total_ms: f64,
    pub blocks: Vec<Block>,
}

/// One PASS/FAIL line.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Check {
    pub window: Option<usize>,
    pub id: u8,
    pub name: String,
    pub pass: bool,
    pub detail: String,
}

/// Window label as tables print it.
pub fn window_label(w: Option<usize>) -> String {
    w.map_or_else(|| "none".into(), |w| w.to_string())
}

/// One `--max-kv-size` value: a number of entries, or `none` / `0` for no window.
pub fn parse_window(s: &str) -> Result<Option<usize>, String> {
    match s.trim() {
        "none" | "0" => Ok(None),
        n => n
            .parse::<usize>()
            .map(Some)
            .map_err(|_| format!("`{n}` is not a number of KV entries or `none`")),
    }
}

/// A comma list of `--max-kv-size` values (`256,512,none`).
pub fn parse_windows(s: &str) -> Result<Vec<Option<usize>>, String> {
    if s.trim().is_empty() {
        return Err("no window given: write sizes like `256,512,none`".into());
    }
    s.split(',').map(parse_window).collect()
}

/// The runs to make: windows ascending, then the unwindowed one (always present).
pub fn plan(cfg: &BenchConfig) -> Vec<Option<usize>> {
    if cfg.windows.is_empty() {
        return vec![];
    }
    let mut w: Vec<usize> = cfg.windows.iter().flatten().copied().collect();
    w.sort_unstable();
    w.dedup();
    w.into_iter().map(Some).chain([None]).collect()
}

/// Refuse a window larger than the context (or too small) before anything runs.
pub fn validate(ctx: &Ctx, cfg: &BenchConfig) -> Result<(), BenchError> {
    for w in plan(cfg).into_iter().flatten() {
        if w > ctx.context {
            return Err(BenchError::WindowTooLarge {
                model: ctx.name.clone(),
                max: w,
                context: ctx.context,
            });
        }
        if w < 8 {
            return Err(ctx.engine_err(crate::engine::EngineError::WindowTooSmall(w)));
        }
    }
    Ok(())
}

/// Tokens/s over generated tokens `[a, b)` from arrival times; token 0's time (which holds
/// the prefill) is the start when `a` is 0.
pub fn rate(arrivals: &[f64], a: usize, b: usize) -> Option<f64> {
    let b = b.min(arrivals.len());
    let (n, from) = if a == 0 {
        (b.checked_sub(1)?, 0)
    } else {
        (b.checked_sub(a)?, a - 1)
    };
    let dt = arrivals.get(b.checked_sub(1)?)? - arrivals[from];
    (n > 0 && dt > 0.0).then(|| n as f64 * 1000.0 / dt)
}

pub fn run(
    ctx: &mut Ctx,
    cfg: &BenchConfig,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<LongRun>, BenchError> {
    let runs = plan(cfg);
    let prompt_n = cfg.long_prompt_tokens.max(1);
    let min_fill = runs
        .iter()
        .flatten()
        .map(|w| w.saturating_sub(prompt_n))
        .min()
        .unwrap_or(0);
    let block = cfg.block.max(1);
    let mut out = Vec::new();
    let mut prev_first = None;
    for window in runs {
        progress(Progress::Message(format!(
            "{}: long run, max-kv-size {}: {} tokens",
            ctx.name,
            window_label(window),
            cfg.long_gen_tokens
        )));
        let prompt = ctx.random_tokens(prompt_n, prev_first);
        prev_first = prompt.first().copied();
        let mut sampler = ProcessSampler::new();
        let rss_start_bytes = sampler.sample().rss_bytes;
        let mut arrivals: Vec<f64> = Vec::new();
        let mut blocks: Vec<Block> = Vec::new();
        let mut on_token = |count: usize, now: f64| {
            arrivals.push(now);
            if count.is_multiple_of(block) {
                let s = sampler.sample();
                let b = Block {
                    start: count - block,
                    end: count,
                    tok_s: rate(&arrivals, count - block, count).unwrap_or(0.0),
                    t_ms: now,
                    rss_bytes: s.rss_bytes,
                    cpu_percent: s.cpu_percent,
                };
                progress(Progress::Block { window, block: &b });
                blocks.push(b);
            }
        };
        let t = ctx.timed(prompt, cfg.long_gen_tokens, window, &mut on_token)?;
        let fill_at = window.map_or(min_fill, |w| w.saturating_sub(prompt_n));
        let stats = t.stats.as_ref();
        let r = summarize(SummaryInput {
            window,
            prompt_tokens: prompt_n,
            requested: cfg.long_gen_tokens,
            fill_at,
            arrivals: &t.token_ms,
            blocks,
            rss_start_bytes,
            rss_end_bytes: sampler.sample().rss_bytes,
            kv_peak: stats.map(|s| s.kv_peak),
            finish_reason: stats.map_or("unknown", |s| s.finish_reason.as_str()),
            total_ms: t.done_ms,
        });
        progress(Progress::Message(format!(
            "{}: max-kv-size {}: {:.2} tok/s last quarter (×{}), RSS {}",
            ctx.name,
            window_label(window),
            r.last_quarter_tok_s,
            r.ratio.map_or("-".into(), |x| format!("{x:.2}")),
            r.rss_growth_pct
                .map_or("-".into(), |x| format!("{x:+.1} %")),
        )));
        progress(Progress::Long(&r));
        out.push(r);
    }
    Ok(out)
}

/// What [`summarize`] reads.
pub struct SummaryInput<'a> {
    pub window: Option<usize>,
    pub prompt_tokens: usize,
    pub requested: usize,
    pub fill_at: usize,
    pub arrivals: &'a [f64],
    pub blocks: Vec<Block>,
    pub rss_start_bytes: u64,
    pub rss_end_bytes: u64,
    pub kv_peak: Option<usize>,
    pub finish_reason: &'a str,
    pub total_ms: f64,
}

/// The figures of one long run, from its arrival times and block samples.
pub fn summarize(i: SummaryInput) -> LongRun {
    let generated = i.arrivals.len();
    let after: Vec<&Block> = i.blocks.iter().filter(|b| b.start >= i.fill_at).collect();
    let first_block_tok_s = after.first().map(|b| b.tok_s);
    let last_quarter_tok_s = rate(i.arrivals, generated - generated / 4, generated).unwrap_or(0.0);
    let ratio = first_block_tok_s
        .filter(|&f| f > 0.0)
        .map(|f| last_quarter_tok_s / f);
    let rss: Vec<u64> = after.iter().map(|b| b.rss_bytes).collect();
    let base = rss.first().copied();
    let pct = |x: f64| base.map(|b| x * 100.0 / b.max(1) as f64);
    let (lo, hi) = (rss.iter().min(), rss.iter().max());
    LongRun {
        window: i.window,
        prompt_tokens: i.prompt_tokens,
        requested: i.requested,
        generated,
        fill_at: i.fill_at,
        first_block_tok_s,
        last_quarter_tok_s,
        ratio,
        rss_start_bytes: i.rss_start_bytes,
        rss_at_fill_bytes: base,
        rss_end_bytes: i.rss_end_bytes,
        rss_growth_pct: rss
            .last()
            .and_then(|&l| pct(l as f64 - base.unwrap_or(l) as f64)),
        rss_swing_pct: lo.zip(hi).and_then(|(&lo, &hi)| pct((hi - lo) as f64)),
        kv_peak: i.kv_peak,
        finish_reason: i.finish_reason.to_string(),
        total_ms: i.total_ms,
        blocks: i.blocks,
    }
}

/// The four checks for every windowed run (check 3 for the unwindowed one as well).
pub fn checks(runs: &[LongRun], context: usize) -> Vec<Check> {
    let baseline = runs.iter().find(|r| r.window.is_none());
    let mut out = Vec::new();
    for r in runs {
        let c = |id: u8, name: &str, pass: bool, detail: String| Check {
            window: r.window,
            id,
            name: name.into(),
            pass,
            detail,
        };
        let Some(w) = r.window else {
            let total = r.prompt_tokens + r.generated;
            out.push(c(
                3,
                "context respected",
                total <= context,
                format!("no window: prompt + generated = {total} ≤ context {context}"),
            ));
            continue;
        };
        out.push(match (r.first_block_tok_s, r.ratio) {
            (Some(f), Some(ratio)) => c(
                1,
                "throughput holds",
                ratio >= MIN_RATIO,
                format!(
                    "last quarter {:.2} tok/s vs first block after fill {f:.2} tok/s: {:.0} % (≥ {:.0} %)",
                    r.last_quarter_tok_s,
                    ratio * 100.0,
                    MIN_RATIO * 100.0
                ),
            ),
            _ => c(
                1,
                "throughput holds",
                false,
                format!(
                    "the window never filled within {} tokens (it fills after {}): generate more",
                    r.generated, r.fill_at
                ),
            ),
        });
        out.push(match (r.rss_growth_pct, r.rss_swing_pct) {
            (Some(g), Some(s)) => c(
                2,
                "memory plateaus",
                g < MAX_RSS_PCT && s <= MAX_RSS_PCT,
                format!(
                    "RSS after fill {:.1} MB → {:.1} MB: growth {g:+.2} % (< {MAX_RSS_PCT} %), swing {s:.2} % (≤ {MAX_RSS_PCT} %)",
                    mb(r.rss_at_fill_bytes.unwrap_or(0)),
                    mb(r.blocks.last().map_or(0, |b| b.rss_bytes)),
                ),
            ),
            _ => c(2, "memory plateaus", false, "no RSS sample after the window filled".into()),
        });
        let peak = r.kv_peak;
        out.push(c(
            3,
            "context respected",
            w <= context && peak.is_none_or(|p| p <= w),
            format!(
                "KV peak {} ≤ window {w} ≤ context {context}; {} tokens went through",
                peak.map_or("?".into(), |p| p.to_string()),
                r.prompt_tokens + r.generated
            ),
        ));
        out.push(match baseline {
            Some(b) => c(
                4,
                "no-window baseline beside",
                b.generated == r.generated && r.generated == r.requested,
                format!(
                    "no window: {} tokens, last quarter {:.2} tok/s (×{}), RSS {}; window {w}: {} tokens, {:.2} tok/s (×{}), RSS {}",
                    b.generated,
                    b.last_quarter_tok_s,
                    fmt_opt(b.ratio, 2),
                    fmt_pct(b.rss_growth_pct),
                    r.generated,
                    r.last_quarter_tok_s,
                    fmt_opt(r.ratio, 2),
                    fmt_pct(r.rss_growth_pct),
                ),
            ),
            None => c(4, "no-window baseline beside", false, "no unwindowed run was measured".into()),
        });
    }
    out
}

pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

pub fn fmt_opt(x: Option<f64>, decimals: usize) -> String {
    x.map_or_else(|| "-".into(), |x| format!("{x:.decimals$}"))
}

pub fn fmt_pct(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |x| format!("{x:+.1} %"))
}
