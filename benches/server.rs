//! What the HTTP server costs on the default model: decode tok/s through `/v1/completions`
//! (SSE, as a streaming client sees it) against the same request in-process, and TTFT
//! p50/p99 when 16 streaming requests arrive at once.
//!
//! `cargo bench --bench server`
//!
//! - Decode: a raw prompt, 128 greedy tokens (`ignore_eos`, so every run has 128); tok/s =
//!   127 / (last token − first token), timed where the tokens arrive: on the engine's event
//!   channel in-process, on the socket for the server. Alternating runs, one warmup each,
//!   `LMWB_BENCH_REPS` (default 5) each; overhead = 1 − server / in-process.
//! - Concurrency: 16 clients send a 32-token streaming request at the same moment (each a
//!   different prompt); TTFT is from sending to the first token's chunk; the server runs
//!   `max_batch` (8) at once and queues the rest. `LMWB_BENCH_REPS` rounds.
//!
//! Prints a markdown table. `LMWB_MODELS_DIR` picks the models folder.

use lmwb::bench::stats::{mean, percentile, sample_sd};
use lmwb::client::{GenerationClient, LocalClient};
use lmwb::config::Config;
use lmwb::engine::sampler::SamplingParams;
use lmwb::engine::{EngineHandle, EngineOptions, Event, GenerateRequest, Prompt};
use lmwb::server::{self, ServedModel, ServerConfig};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::sync::{Arc, Barrier};
use std::time::Instant;

const MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const PROMPT: &str = "Once upon a time, in a small village by the sea, there lived";
const TG: usize = 128;
const CONCURRENT: usize = 16;
const CONCURRENT_TOKENS: usize = 32;

fn greedy(prompt: &str, max_tokens: usize) -> GenerateRequest {
    let mut req = GenerateRequest::new(Prompt::Raw(prompt.into()));
    req.sampling = SamplingParams {
        temperature: 0.0,
        ..SamplingParams::default()
    };
    req.max_tokens = Some(max_tokens);
    req.ignore_eos = true;
    req
}

/// tok/s between the first and the last of `arrivals` (seconds).
fn rate(arrivals: &[f64]) -> f64 {
    let n = arrivals.len();
    assert!(n > 1, "at least two tokens");
    (n - 1) as f64 / (arrivals[n - 1] - arrivals[0])
}

fn in_process(client: &dyn GenerationClient) -> f64 {
    let start = Instant::now();
    let generation = client.generate(greedy(PROMPT, TG));
    let mut arrivals = Vec::with_capacity(TG);
    for ev in generation.events.iter() {
        match ev {
            Event::Token { .. } => arrivals.push(start.elapsed().as_secs_f64()),
            Event::Done(_) => break,
            Event::Error(e) => panic!("generation failed: {e}"),
            _ => {}
        }
    }
    assert_eq!(arrivals.len(), TG);
    rate(&arrivals)
}

/// Stream one completion; the arrival time (seconds after `start`) of each chunk that
/// carries text.
fn stream(addr: &str, prompt: &str, max_tokens: usize, start: Instant) -> Vec<f64> {
    let body = json!({"model": "smollm2", "prompt": prompt, "max_tokens": max_tokens,
        "temperature": 0, "ignore_eos": true, "stream": true});
    let res = ureq::post(&format!("http://{addr}/v1/completions"))
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .unwrap_or_else(|e| panic!("POST /v1/completions: {e}"));
    let reader = BufReader::new(res.into_body().into_reader());
    let mut arrivals = Vec::with_capacity(max_tokens);
    for line in reader.lines() {
        let line = line.expect("read the stream");
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            break;
        }
        let chunk: Value = serde_json::from_str(data).expect("a JSON chunk");
        if chunk["choices"][0]["text"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
        {
            arrivals.push(start.elapsed().as_secs_f64());
        }
    }
    arrivals
}

fn main() {
    let cfg = Config::load(None).unwrap_or_else(|e| panic!("config: {e}"));
    let path = cfg.models_dir().join(MODEL_FILE);
    if !path.is_file() {
        eprintln!(
            "bench: the default model {} is missing: run `bash scripts/fetch-models.sh`",
            path.display()
        );
        std::process::exit(1);
    }
    let reps: usize = std::env::var("LMWB_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(5);
    let handle = EngineHandle::load(&path, EngineOptions::default())
        .unwrap_or_else(|e| panic!("loading {}: {e}", path.display()));
    let client = Arc::new(LocalClient::new("smollm2", handle));
    let config = ServerConfig {
        port: 0,
        ..ServerConfig::default()
    };
    let model = ServedModel {
        id: "smollm2".into(),
        client: client.clone(),
        created: 0,
        info: None,
    };
    let server = server::start(config, vec![model]).expect("the server starts");
    let addr = server.addr().to_string();

    // Decode, alternating so drift in the machine's speed hits both alike.
    in_process(client.as_ref());
    stream(&addr, PROMPT, TG, Instant::now());
    let (mut local, mut http) = (vec![], vec![]);
    for _ in 0..reps {
        local.push(in_process(client.as_ref()));
        let arrivals = stream(&addr, PROMPT, TG, Instant::now());
        assert!(
            arrivals.len() >= TG - 2,
            "{} text chunks for {TG} tokens",
            arrivals.len()
        );
        http.push(rate(&arrivals));
    }

    // 16 at once.
    let (mut p50s, mut p99s, mut walls) = (vec![], vec![], vec![]);
    for round in 0..reps {
        let barrier = Arc::new(Barrier::new(CONCURRENT));
        let started = Instant::now();
        let threads: Vec<_> = (0..CONCURRENT)
            .map(|i| {
                let (addr, barrier) = (addr.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let prompt = format!("Story {round}-{i}: {PROMPT}");
                    barrier.wait();
                    let sent = Instant::now();
                    let arrivals = stream(&addr, &prompt, CONCURRENT_TOKENS, sent);
                    assert!(!arrivals.is_empty(), "request {i} got no text");
                    arrivals[0]
                })
            })
            .collect();
        let ttfts: Vec<f64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        walls.push(started.elapsed().as_secs_f64());
        p50s.push(percentile(&ttfts, 50.0).unwrap());
        p99s.push(percentile(&ttfts, 99.0).unwrap());
    }
    server.shutdown().unwrap();

    let ms = |xs: &[f64]| format!("{:.0} ± {:.0}", mean(xs) * 1e3, sample_sd(xs) * 1e3);
    let overhead = (1.0 - mean(&http) / mean(&local)) * 100.0;
    println!("| {MODEL_FILE}, {reps} runs | value |");
    println!("|---|---|");
    println!(
        "| decode tg{TG} in-process | {:.1} ± {:.1} tok/s |",
        mean(&local),
        sample_sd(&local)
    );
    println!(
        "| decode tg{TG} through the server (SSE) | {:.1} ± {:.1} tok/s |",
        mean(&http),
        sample_sd(&http)
    );
    println!("| server overhead | {overhead:.1} % |");
    println!(
        "| {CONCURRENT} concurrent streams ({CONCURRENT_TOKENS} tokens): TTFT p50 | {} ms |",
        ms(&p50s)
    );
    println!(
        "| {CONCURRENT} concurrent streams: TTFT p99 | {} ms |",
        ms(&p99s)
    );
    println!(
        "| {CONCURRENT} concurrent streams: all done | {} ms |",
        ms(&walls)
    );
}
