//! Embedding latency on all-MiniLM-L6-v2: one sentence, and a batch of 32 sentences.
//!
//! `cargo bench --bench embed`
//!
//! The model is found as `lmwb serve` finds it (the configured `embedding_model` in the
//! models folder; `LMWB_MODELS_DIR` picks the folder). One warmup call, then
//! `LMWB_BENCH_REPS` repetitions (default 10) of each; prints the median and the fastest.

use lmwb::config::Config;
use lmwb::engine::embed::{EmbedInput, Embedder};
use std::time::Instant;

const SENTENCES: [&str; 4] = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The new movie is awesome, and everybody in the theatre laughed at the jokes.",
    "Two dogs are running through a field of tall grass on a sunny afternoon.",
];

fn time_ms(e: &Embedder, inputs: &[EmbedInput], reps: usize) -> (f64, f64) {
    e.embed(inputs, false).expect("warmup");
    let mut ms: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            e.embed(inputs, false).expect("embed");
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    (ms[ms.len() / 2], ms[0])
}

fn main() {
    let cfg = Config::load(None).expect("config");
    let path = lmwb::models::resolve(
        &cfg.embedding_model,
        &lmwb::models::Sources::from_config(&cfg),
    )
    .expect("the embedding model (bash scripts/fetch-models.sh fetches it)");
    let e = Embedder::load(&path).expect("load");
    let reps = std::env::var("LMWB_BENCH_REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10usize)
        .max(1);
    let one = [EmbedInput::Text(SENTENCES[0].into())];
    let batch: Vec<EmbedInput> = (0..32)
        .map(|i| EmbedInput::Text(SENTENCES[i % SENTENCES.len()].into()))
        .collect();
    println!("| input | median ms | fastest ms | per input ms |");
    println!("|---|---|---|---|");
    for (name, inputs) in [("1 sentence", &one[..]), ("32 sentences", &batch[..])] {
        let (median, fastest) = time_ms(&e, inputs, reps);
        println!(
            "| {name} | {median:.1} | {fastest:.1} | {:.2} |",
            median / inputs.len() as f64
        );
    }
}
