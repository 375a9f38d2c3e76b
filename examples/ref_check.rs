//! Teacher-forced comparison with llama.cpp's greedy references: for each reference
//! prompt, feed the reference tokens and report where our argmax differs and by how much.
//! `cargo run --release --example ref_check [--no-requantize] [REFERENCE_JSON]`
use lmwb::engine::kv::KvCache;
use lmwb::engine::model::{load, LoadOptions};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let requantize = !args.iter().any(|a| a == "--no-requantize");
    let refs = args
        .iter()
        .find(|a| a.ends_with(".json"))
        .cloned()
        .unwrap_or_else(|| {
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/reference/smollm2-135m-q4_1.json"
            )
            .into()
        });
    let model_path = lmwb::config::Config::defaults()
        .models_dir()
        .join("SmolLM2-135M-Instruct.Q4_1.gguf");
    let m = load(
        &model_path,
        &LoadOptions {
            requantize,
            ..Default::default()
        },
    )?;
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(refs)?)?;
    for g in r["greedy"].as_array().unwrap() {
        let prompt: Vec<u32> = g["prompt_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let gen: Vec<u32> = g["generated_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let mut cache = KvCache::new(m.model.cfg.n_layers, None);
        let mut logits = m.model.forward(&prompt, &mut cache)?;
        let mut first_diff = None;
        let mut report = vec![];
        for (i, &want) in gen.iter().enumerate() {
            let l = logits.to_vec1::<f32>()?;
            let best = l
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .unwrap();
            if best.0 as u32 != want {
                first_diff.get_or_insert(i);
                report.push(format!(
                    "  step {i}: ours {} ({:.3}) vs ref {} ({:.3}), gap {:.3}",
                    best.0,
                    best.1,
                    want,
                    l[want as usize],
                    best.1 - l[want as usize]
                ));
            }
            logits = m.model.forward(&[want], &mut cache)?;
        }
        println!(
            "{}: first difference at {:?} of {}",
            g["name"],
            first_diff,
            gen.len()
        );
        for line in report.iter().take(5) {
            println!("{line}");
        }
    }
    Ok(())
}
