//! `lmwb bench`: load each `-m` model in turn, run the modes asked for, and write the
//! report folder. Progress goes to stderr; stdout gets report.md (or results.json with
//! `--json`). Exits 1 when a long-run check fails (after writing everything).

use super::gen;
use crate::bench::provenance::{self, Machine, ModelMeta};
use crate::bench::report::{self, BenchResults};
use crate::bench::{self, BenchConfig, Progress};
use crate::cli::{BenchArgs, EngineArgs, GenArgs};
use crate::client::{GenerationClient, HttpClient, LocalClient, Target};
use crate::config::Config;
use crate::engine::EngineHandle;
use std::path::Path;
use std::time::Instant;

fn config(args: &BenchArgs) -> BenchConfig {
    let windows: Vec<Option<usize>> = args.max_kv_size.iter().map(|w| w.0).collect();
    BenchConfig {
        standard: args.standard
            || (!args.latency && windows.is_empty() && args.concurrency.is_empty()),
        prompt_tokens: args.n_prompt.clone(),
        gen_tokens: args.n_gen.clone(),
        repetitions: args.repetitions.max(1),
        depths: args.n_depth.clone(),
        latency_requests: args.latency.then_some(args.requests.max(1)),
        windows,
        long_gen_tokens: args.gen_tokens.max(1),
        block: args.block.max(1),
        seed: args.seed,
        concurrency: args.concurrency.clone(),
        ..BenchConfig::default()
    }
}

fn progress(p: Progress) {
    match p {
        Progress::Message(m) => eprintln!("lmwb bench: {m}"),
        Progress::Block { window, block } => eprintln!(
            "lmwb bench:   max-kv-size {}: tokens {:>5}–{:<5} {:>8.2} tok/s  RSS {:.1} MB",
            bench::long::window_label(window),
            block.start,
            block.end,
            block.tok_s,
            bench::long::mb(block.rss_bytes)
        ),
    }
}

pub fn run(args: BenchArgs, cfg: &Config) -> anyhow::Result<u8> {
    let bench_cfg = config(&args);
    let specs = if args.model.is_empty() {
        vec![cfg.default_model.clone()]
    } else {
        args.model.clone()
    };
    let models: Vec<(String, GenArgs, Target)> = specs
        .iter()
        .map(|spec| {
            let g = GenArgs {
                model: Some(spec.clone()),
                engine: EngineArgs {
                    device: args.device.clone(),
                    no_requantize: false,
                },
                ..GenArgs::default()
            };
            let target = gen::target(&g, cfg)?;
            Ok((spec.clone(), g, target))
        })
        .collect::<anyhow::Result<_>>()?;
    let started = provenance::timestamp();
    let machine = Machine::detect();
    let mut results = Vec::new();
    for (spec, g, target) in models {
        let (client, meta): (Box<dyn GenerationClient>, ModelMeta) = match &target {
            Target::Local { path, .. } => {
                let (client, meta) = load_local(&spec, &g, path, cfg)?;
                (Box::new(client), meta)
            }
            Target::Remote { backend, model } => {
                eprintln!("lmwb bench: connecting to {}", target.location());
                let t = Instant::now();
                let client = HttpClient::connect(backend, model)?;
                let meta = ModelMeta {
                    name: client.model_name().to_string(),
                    path: target.location(),
                    sha256: None,
                    arch: format!("remote ({})", backend.kind.as_str()),
                    quantization: "?".into(),
                    load_notes: remote_notes(&client),
                    params: 0,
                    size_bytes: 0,
                    context_length: client.context_length().unwrap_or(0),
                    device: target.transport(),
                    threads: 0,
                    load_ms: t.elapsed().as_secs_f64() * 1000.0,
                };
                (Box::new(client), meta)
            }
        };
        results.push(bench::run_model(
            client.as_ref(),
            meta,
            &bench_cfg,
            &mut progress,
        )?);
    }
    let dir = args.out.clone().unwrap_or_else(|| {
        let name = provenance::slug(&results[0].model.name);
        cfg.runs_dir()
            .join("bench")
            .join(format!("{started}-{name}"))
    });
    std::fs::create_dir_all(&dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let charts = bench::plots::draw_all(&dir, &results)?;
    let r = BenchResults {
        schema: report::SCHEMA.into(),
        started,
        machine,
        config: bench_cfg,
        models: results,
        charts,
    };
    report::write_all(&dir, &r)?;
    for m in &r.models {
        for c in &m.checks {
            eprintln!("lmwb bench: {}", report::check_line(&m.model.name, c));
        }
    }
    eprintln!("lmwb bench: wrote {}", dir.display());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print!("{}", report::markdown(&r));
    }
    Ok(if r.all_pass() { 0 } else { 1 })
}

/// Load a model on disk, with what the report says about it.
fn load_local(
    spec: &str,
    g: &GenArgs,
    path: &Path,
    cfg: &Config,
) -> anyhow::Result<(LocalClient, ModelMeta)> {
    eprintln!("lmwb bench: loading {}", path.display());
    let opts = gen::engine_options(&g.engine, cfg)?;
    let t = Instant::now();
    let engine = EngineHandle::load(path, opts)?;
    let load_ms = t.elapsed().as_secs_f64() * 1000.0;
    let info = engine.info().clone();
    // A path is shown by its file name; a registry name as given.
    let name = if spec.contains(std::path::MAIN_SEPARATOR) {
        provenance::slug(spec)
    } else {
        spec.to_string()
    };
    let meta = ModelMeta {
        name: name.clone(),
        path: path.display().to_string(),
        sha256: path
            .is_file()
            .then(|| provenance::sha256_file(path).ok())
            .flatten(),
        arch: info.arch.clone(),
        quantization: info.quant.clone(),
        load_notes: info.notes.clone(),
        params: info.params,
        size_bytes: info.size_bytes,
        context_length: info.context_length,
        device: g
            .engine
            .device
            .clone()
            .unwrap_or_else(|| cfg.device.clone()),
        threads: candle_core::utils::get_num_threads(),
        load_ms,
    };
    Ok((LocalClient::new(name, engine), meta))
}

/// What the report says about a remote model.
fn remote_notes(client: &HttpClient) -> Vec<String> {
    let mut notes = vec![format!(
        "served by {}; times are measured by lmwb's HTTP client",
        client.base_url()
    )];
    if !client.vocab_listed() {
        notes.push(format!(
            "the server does not list the vocabulary size: prompt token ids are drawn below {}",
            crate::client::FALLBACK_VOCAB
        ));
    }
    notes
}
