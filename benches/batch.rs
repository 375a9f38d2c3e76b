//! `cargo bench --bench batch`: lmwb batch's overhead per item beyond generation —
//! parsing, planning, rendering, the watchdog loop, Markdown/sidecar rendering and the
//! atomic (synced, renamed) writes — on a 100-item run (25 prompts × 4 models) against the
//! deterministic FakeClient, whose generations cost next to nothing. The same 100 fake
//! generations collected directly are measured and subtracted. Target: < 20 ms per item.

use lmwb::batch::plan::ModelRef;
use lmwb::batch::{runner, Plan, PlanOptions, RunOptions, Settings, ValidSpec};
use lmwb::client::fake::{FakeClient, Script};
use lmwb::client::GenerationClient;
use lmwb::config::Config;
use lmwb::engine::{EngineError, GenerateRequest};
use std::time::Instant;

const PROMPTS: usize = 25;
const MODELS: usize = 4;
const REPLY: &str =
    "<think>A short chain of thought.</think>The answer, in about twelve tokens of text here.";

fn spec_text() -> String {
    let mut s = String::from(
        "name = \"bench\"\n[defaults]\ntemperature = 0\nmax_tokens = 16\nsystem = \"Be brief.\"\n[vars]\ntext = \"An input text.\"\n[prompts]\n",
    );
    for i in 0..PROMPTS {
        s.push_str(&format!("p{i} = \"Prompt {i} about:\\n\\n{{{{text}}}}\"\n"));
    }
    s
}

fn once(dir: &std::path::Path) -> (f64, f64, usize) {
    let out = dir.join("out");
    let _ = std::fs::remove_dir_all(&out);
    let t = Instant::now();
    let spec_path = dir.join("set.toml");
    std::fs::write(&spec_path, spec_text()).unwrap();
    let spec = ValidSpec::load(&spec_path, None).unwrap();
    let models = (0..MODELS)
        .map(|i| ModelRef::local(format!("fake-model-{i}"), dir.join(format!("m{i}.gguf"))))
        .collect();
    let plan = Plan::build(
        &spec,
        models,
        &Settings::from_config(&Config::defaults()),
        out,
        &PlanOptions::default(),
    )
    .unwrap();
    let plan_ms = t.elapsed().as_secs_f64() * 1e3;
    let mut load = |m: &ModelRef| -> Result<Box<dyn GenerationClient>, EngineError> {
        Ok(Box::new(FakeClient::new(
            &m.name,
            vec![Script::text(REPLY)],
        )))
    };
    let s = runner::run(&plan, &mut load, &RunOptions::default(), &mut |_| {}).unwrap();
    assert_eq!(s.done(), PROMPTS * MODELS);
    (t.elapsed().as_secs_f64() * 1e3, plan_ms, s.done())
}

/// The same number of fake generations, collected directly: the part that is "generation".
fn generation_only(n: usize) -> f64 {
    let c = FakeClient::new("m", vec![Script::text(REPLY)]);
    let t = Instant::now();
    for _ in 0..n {
        let mut r = GenerateRequest::new(lmwb::engine::Prompt::Raw("x".into()));
        r.max_tokens = Some(16);
        c.generate(r).collect().unwrap();
    }
    t.elapsed().as_secs_f64() * 1e3
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let n = PROMPTS * MODELS;
    once(dir.path()); // warm up the file system and the allocator
    let mut runs = Vec::new();
    for _ in 0..5 {
        let (total, plan, _) = once(dir.path());
        let gen = generation_only(n);
        runs.push(((total - gen) / n as f64, total, plan, gen));
    }
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    println!("| run | total ms | parse+plan ms | fake generation ms | overhead ms/item |");
    println!("|---|---:|---:|---:|---:|");
    for (i, (per, total, plan, gen)) in runs.iter().enumerate() {
        println!("| {i} | {total:.1} | {plan:.2} | {gen:.1} | {per:.2} |");
    }
    let median = runs[runs.len() / 2].0;
    println!(
        "\nbatch overhead per item ({n} items, {PROMPTS} prompts × {MODELS} models): median {median:.2} ms (target < 20 ms)"
    );
}
