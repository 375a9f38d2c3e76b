//! What logprobs and constrained decoding cost per token on the real default model:
//! end-to-end greedy decode speed with each off and on, and the CPU time of the extra
//! work alone (log-softmax + top-20; picking a token under a JSON constraint).
//!
//! `cargo run --release --example structured_cost [-- MODEL.gguf]`

use lmwb::engine::constrain::{compile, Constraint};
use lmwb::engine::logprobs;
use lmwb::engine::sampler::{Sampler, SamplingParams};
use lmwb::engine::template::ChatMessage;
use lmwb::engine::tokenizer::TokenBytes;
use lmwb::engine::{EngineHandle, EngineOptions, GenerateRequest, Prompt};
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let path = std::env::args().nth(1).map(Into::into).unwrap_or_else(|| {
        dirs::cache_dir()
            .unwrap()
            .join("lmwb/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    });
    let engine = EngineHandle::load(&path, EngineOptions::default()).expect("the model loads");
    let schema = serde_json::json!({"type": "object", "properties": {
        "name": {"type": "string"}, "age": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string"}}},
        "required": ["name", "age", "tags"]});
    let grammar = Arc::new(compile(&schema, "schema").unwrap());
    let runs: [(&str, Option<usize>, Option<Constraint>); 4] = [
        ("plain", None, None),
        ("logprobs top 20", Some(20), None),
        ("json_object", None, Some(Constraint::Json)),
        ("json_schema", None, Some(Constraint::Schema(grammar))),
    ];
    println!("| run | tokens | decode tok/s | ms/token |");
    println!("|---|---|---|---|");
    for (name, lp, c) in runs {
        let mut tokens = 0;
        let mut ms = 0.0;
        for rep in 0..3 {
            let mut req = GenerateRequest::new(Prompt::chat(vec![ChatMessage::user(format!(
                "Describe person number {rep} as JSON with name, age and tags."
            ))]));
            req.sampling = SamplingParams::greedy();
            req.max_tokens = Some(96);
            req.logprobs = lp;
            req.constraint = c.clone();
            let out = engine.generate(req).collect().expect("generation");
            tokens += out.stats.generated_tokens;
            ms += out.stats.decode_ms;
        }
        println!(
            "| {name} | {tokens} | {:.1} | {:.2} |",
            tokens as f64 * 1000.0 / ms,
            ms / tokens as f64
        );
    }

    // The extra work alone, on the real vocabulary and logits-like values.
    let m = lmwb::engine::model::load(&path, &Default::default()).unwrap();
    let table = TokenBytes::new(&m.tokenizer);
    let n = table.len();
    let logits: Vec<f32> = (0..n).map(|i| ((i * 7919) % 1000) as f32 * 0.01).collect();
    let iters = 200;
    let t = Instant::now();
    for i in 0..iters {
        std::hint::black_box(logprobs::compute(&logits, i as u32, 20, &table));
    }
    println!(
        "\nlogprobs (log-sum-exp + top 20 over {n} logits): {:.3} ms/token",
        t.elapsed().as_secs_f64() * 1e3 / iters as f64
    );
    let t = Instant::now();
    let _ = TokenBytes::new(&m.tokenizer);
    println!(
        "token bytes table (once per model): {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    // Typical greedy pick under a constraint: the best token is allowed (one check).
    let quote = m.tokenizer.encode("\"", false).unwrap()[0];
    let mut best = logits.clone();
    best[quote as usize] = 100.0;
    let mut r = Constraint::Json.recognizer();
    r.feed(b"{\"name\": ");
    let mut s = Sampler::new(SamplingParams::greedy());
    let t = Instant::now();
    for _ in 0..iters {
        let mut l = best.clone();
        std::hint::black_box(s.sample_allowed(&mut l, &[], |id| r.accepts(table.get(id))));
    }
    let typical = t.elapsed().as_secs_f64() * 1e3 / iters as f64;
    let t = Instant::now();
    for _ in 0..iters {
        let mut l = best.clone();
        std::hint::black_box(s.sample(&mut l, &[]));
    }
    let plain = t.elapsed().as_secs_f64() * 1e3 / iters as f64;
    println!("greedy pick: {plain:.3} ms/token plain, {typical:.3} ms/token under json_object when the best token is allowed");
    // Greedy pick under json_object from a state inside an object, where the best logit is
    // a token the grammar refuses (worst case: every pick refused until the full mask).
    let mut r = Constraint::Json.recognizer();
    r.feed(b"{\"name\": \"Ann\", ");
    let mut s = Sampler::new(SamplingParams::greedy());
    let t = Instant::now();
    for _ in 0..20 {
        let mut l = logits.clone();
        std::hint::black_box(s.sample_allowed(&mut l, &[], |id| {
            !table.is_special(id) && !table.get(id).is_empty() && r.accepts(table.get(id))
        }));
    }
    println!(
        "worst-case constrained pick (32 refusals, then all {n} tokens checked): {:.2} ms/token",
        t.elapsed().as_secs_f64() * 1e3 / 20.0
    );
}
