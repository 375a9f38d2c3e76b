//! The runner against the deterministic fake client, and the long-run checks on made-up
//! samples (they must be able to fail).

use super::long::{self, Block, LongRun, SummaryInput};
use super::*;
use crate::client::fake::{FakeClient, Script};

fn meta() -> provenance::ModelMeta {
    provenance::ModelMeta {
        name: "fake".into(),
        path: "-".into(),
        sha256: None,
        arch: "fake".into(),
        quantization: "F32".into(),
        load_notes: vec![],
        params: 1,
        size_bytes: 1,
        context_length: 2048,
        device: "cpu".into(),
        threads: 1,
        load_ms: 0.0,
    }
}

fn fake() -> FakeClient {
    let pieces = (0..400).map(|i| format!("t{i} ")).collect();
    FakeClient::new("fake", vec![Script::Reply(pieces)])
}

#[test]
fn standard_and_latency_measure_every_repetition_with_exact_sizes() {
    let client = fake();
    let cfg = BenchConfig {
        prompt_tokens: vec![32],
        gen_tokens: vec![16],
        repetitions: 3,
        latency_requests: Some(4),
        ..BenchConfig::default()
    };
    let mut lines = Vec::new();
    let r = run_model(
        &client,
        meta(),
        &cfg,
        &mut |p| {
            if let Progress::Message(m) = p {
                lines.push(m)
            }
        },
        &CancelToken::default(),
    )
    .unwrap();
    let names: Vec<_> = r.standard.iter().map(|t| t.test.as_str()).collect();
    assert_eq!(names, ["pp32", "tg16"]);
    assert!(r
        .standard
        .iter()
        .all(|t| t.samples_tok_s.len() == 3 && t.tok_s.n == 3));
    let l = r.latency.unwrap();
    assert_eq!((l.requests, l.samples.len()), (4, 4));
    assert!(l
        .samples
        .iter()
        .all(|s| s.output_tokens == 16 && s.itl_ms.len() == 15));
    assert_eq!(l.itl_ms.n, 4 * 15, "ITL pools every gap");
    // (1 warmup + 3) × 2 tests + (1 warmup + 4) latency requests.
    assert_eq!(client.calls(), 8 + 5);
    for req in client.requests() {
        assert!(req.ignore_eos && matches!(req.prompt, crate::engine::Prompt::Tokens(_)));
    }
    let pp: Vec<usize> = client
        .requests()
        .iter()
        .map(|r| match &r.prompt {
            crate::engine::Prompt::Tokens(t) => t.len(),
            _ => 0,
        })
        .collect();
    assert_eq!(&pp[..4], &[32; 4]);
    assert_eq!(&pp[4..8], &[1; 4]);
    assert!(lines.iter().any(|l| l.contains("pp32")));
}

#[test]
fn a_window_larger_than_the_context_is_refused_before_anything_runs() {
    let client = fake();
    let cfg = BenchConfig {
        windows: vec![Some(4096)],
        ..BenchConfig::default()
    };
    let e = run_model(&client, meta(), &cfg, &mut |_| {}, &CancelToken::default()).unwrap_err();
    assert!(
        e.to_string()
            .contains("larger than the model's context of 2048"),
        "{e}"
    );
    assert_eq!(client.calls(), 0);
}

#[test]
fn long_mode_adds_the_unwindowed_baseline_last() {
    let cfg = BenchConfig {
        windows: vec![Some(512), None, Some(64), Some(64)],
        ..BenchConfig::default()
    };
    assert_eq!(long::plan(&cfg), vec![Some(64), Some(512), None]);
}

#[test]
fn rate_counts_tokens_over_their_arrival_span() {
    let t: Vec<f64> = (0..10).map(|i| 100.0 + 10.0 * i as f64).collect();
    // Tokens 2..6 arrive 10 ms apart: 4 tokens after token 1's arrival → 40 ms.
    assert_eq!(long::rate(&t, 2, 6), Some(100.0));
    // From 0: token 0 (holding the prefill) starts the clock; 9 tokens over 90 ms.
    assert_eq!(long::rate(&t, 0, 10), Some(100.0));
    assert_eq!(long::rate(&t, 0, 1), None);
}

/// A run of `n` tokens whose gap grows by `slow` ms per token and whose RSS grows by
/// `leak` bytes per block of 16.
fn synthetic(window: Option<usize>, n: usize, slow: f64, leak: u64) -> LongRun {
    let mut t = vec![0.0];
    for i in 1..n {
        t.push(t[i - 1] + 10.0 + slow * i as f64);
    }
    let blocks = (1..=n / 16)
        .map(|b| Block {
            start: (b - 1) * 16,
            end: b * 16,
            tok_s: long::rate(&t, (b - 1) * 16, b * 16).unwrap(),
            t_ms: t[b * 16 - 1],
            rss_bytes: 100_000_000 + leak * b as u64,
            cpu_percent: None,
        })
        .collect();
    long::summarize(SummaryInput {
        window,
        prompt_tokens: 16,
        requested: n,
        fill_at: window.map_or(48, |w| w - 16),
        arrivals: &t,
        blocks,
        rss_start_bytes: 90_000_000,
        rss_end_bytes: 100_000_000,
        kv_peak: Some(window.unwrap_or(n + 16).min(64)),
        finish_reason: "length",
        total_ms: t[n - 1],
    })
}

fn verdicts(runs: &[LongRun]) -> Vec<(u8, bool)> {
    long::checks(runs, 8192)
        .iter()
        .filter(|c| c.window.is_some())
        .map(|c| (c.id, c.pass))
        .collect()
}

#[test]
fn steady_windowed_run_passes_every_check() {
    let runs = [
        synthetic(Some(64), 256, 0.0, 0),
        synthetic(None, 256, 0.1, 1 << 20),
    ];
    assert_eq!(
        verdicts(&runs),
        [(1, true), (2, true), (3, true), (4, true)]
    );
    let base = &runs[1];
    assert!(base.ratio.unwrap() < 0.9 && base.rss_growth_pct.unwrap() > 5.0);
}

#[test]
fn slowing_or_growing_runs_fail_their_checks() {
    let slow = synthetic(Some(64), 256, 0.1, 0);
    let leak = synthetic(Some(64), 256, 0.0, 2_000_000);
    assert_eq!(verdicts(&[slow])[..2], [(1, false), (2, true)]);
    let v = verdicts(std::slice::from_ref(&leak));
    assert_eq!(v[..2], [(1, true), (2, false)]);
    // No baseline beside it: check 4 fails.
    assert_eq!(v[3], (4, false));
    // A baseline that stopped early (context full) fails check 4 too.
    let short = synthetic(None, 128, 0.0, 0);
    assert_eq!(verdicts(&[leak, short])[3], (4, false));
    // A window that never fills within the run fails check 1.
    let unfilled = synthetic(Some(1024), 256, 0.0, 0);
    assert_eq!(verdicts(&[unfilled])[0], (1, false));
}

#[test]
fn concurrency_runs_n_streams_per_level_and_reports_speedup_over_one() {
    let client = fake().with_delay(std::time::Duration::from_millis(1));
    let cfg = BenchConfig {
        standard: false,
        gen_tokens: vec![0, 8],
        concurrency: vec![2, 1, 3],
        ..BenchConfig::default()
    };
    let r = run_model(&client, meta(), &cfg, &mut |_| {}, &CancelToken::default()).unwrap();
    assert!(r.standard.is_empty() && r.latency.is_none());
    let levels: Vec<usize> = r.concurrency.iter().map(|c| c.streams).collect();
    assert_eq!(levels, [2, 1, 3]);
    for c in &r.concurrency {
        assert_eq!(c.samples.len(), c.streams);
        assert_eq!(
            (c.gen_tokens, c.prompt_tokens),
            (8, concurrency::PROMPT_TOKENS)
        );
        assert!(c.samples.iter().all(|s| s.output_tokens == 8));
        assert_eq!(c.per_stream_tok_s.n, c.streams);
        assert!(
            c.aggregate_tok_s > 0.0 && c.per_stream_tok_s.min > 0.0,
            "{c:?}"
        );
        assert!(c.speedup.is_some(), "every level compares with N = 1");
    }
    assert_eq!(r.concurrency[1].speedup, Some(1.0));
    // 1 warmup + 2 + 1 + 3 streams, each a distinct prompt.
    let reqs = client.requests();
    assert_eq!(reqs.len(), 7);
    let mut firsts: Vec<Vec<u32>> = reqs
        .iter()
        .map(|r| match &r.prompt {
            crate::engine::Prompt::Tokens(t) => t.clone(),
            _ => panic!("token prompts"),
        })
        .collect();
    assert!(firsts.iter().all(|t| t.len() == concurrency::PROMPT_TOKENS));
    firsts.sort();
    firsts.dedup();
    assert_eq!(firsts.len(), 7, "distinct prompts");
    let md = report::markdown(&report::BenchResults {
        schema: report::SCHEMA.into(),
        started: "now".into(),
        machine: provenance::Machine::detect(),
        config: cfg,
        models: vec![r],
        charts: vec![],
    });
    assert!(md.contains("## Concurrent streams"), "{md}");
}

#[test]
fn aggregate_counts_tokens_after_each_first_over_the_decode_phase() {
    let s = |first: f64, last: f64, n: usize| concurrency::StreamSample {
        output_tokens: n,
        first_token_ms: first,
        last_token_ms: last,
        tok_s: (n - 1) as f64 * 1000.0 / (last - first),
    };
    let r = concurrency::summarise(2, 11, vec![s(100.0, 1100.0, 11), s(200.0, 2100.0, 11)]);
    // 20 tokens after the first ones over 100 → 2100 ms.
    assert!(
        (r.aggregate_tok_s - 10.0).abs() < 1e-9,
        "{}",
        r.aggregate_tok_s
    );
    assert!((r.decode_s - 2.0).abs() < 1e-9);
    assert!((r.per_stream_tok_s.min - 10.0 * 1000.0 / 1900.0).abs() < 1e-9);
    assert_eq!(r.ttft_ms.n, 2);
}

#[test]
fn random_prompts_never_start_like_a_recent_one() {
    let client = fake();
    let mut ctx = Ctx::new(&client, 7).unwrap();
    let firsts: Vec<u32> = (0..200).map(|_| ctx.random_tokens(3, None)[0]).collect();
    for w in firsts.windows(RECENT_FIRSTS + 1) {
        let mut d = w.to_vec();
        d.sort();
        d.dedup();
        assert_eq!(d.len(), w.len(), "a first token repeats within {w:?}");
    }
}

#[test]
fn windows_parse_as_max_kv_size_takes_them() {
    assert_eq!(
        long::parse_windows("256, 512,none,0").unwrap(),
        [Some(256), Some(512), None, None]
    );
    let e = long::parse_windows("256,big").unwrap_err();
    assert_eq!(e, "`big` is not a number of KV entries or `none`");
    assert!(long::parse_windows(" ")
        .unwrap_err()
        .contains("256,512,none"));
    use clap::Parser;
    let cli =
        crate::cli::Cli::try_parse_from(["lmwb", "bench", "--max-kv-size", "64,none"]).unwrap();
    let Some(crate::cli::Command::Bench(b)) = cli.command else {
        panic!("bench")
    };
    let w: Vec<_> = b.max_kv_size.iter().map(|w| w.0).collect();
    assert_eq!(w, [Some(64), None]);
}
