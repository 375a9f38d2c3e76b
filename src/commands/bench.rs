//! `lmwb bench`: load each `-m` model in turn, run the modes asked for, and write the
//! report folder. Progress goes to stderr; stdout gets report.md (or results.json with
//! `--json`). Exits 1 when a long-run check fails (after writing everything).

use super::gen;
use crate::bench::provenance::{self, ModelMeta};
use crate::bench::report;
use crate::bench::session::{self, BenchModel, Opened, OutDir};
use crate::bench::{self, BenchConfig, BenchError, Progress};
use crate::cli::{BenchArgs, EngineArgs, GenArgs};
use crate::client::{HttpClient, LocalClient, Target};
use crate::config::Config;
use crate::engine::{CancelToken, EngineHandle};
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
        _ => {}
    }
}

pub fn run(args: BenchArgs, cfg: &Config) -> anyhow::Result<u8> {
    let bench_cfg = config(&args);
    let specs = if args.model.is_empty() {
        vec![cfg.default_model.clone()]
    } else {
        args.model.clone()
    };
    let engine = EngineArgs {
        device: args.device.clone(),
        no_requantize: false,
    };
    let models: Vec<BenchModel> = specs
        .iter()
        .map(|spec| {
            let g = gen_args(spec, &engine);
            Ok(BenchModel {
                name: spec.clone(),
                target: gen::target(&g, cfg)?,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let mut open = |m: &BenchModel| {
        open_model(m, &engine, cfg).map_err(|e| BenchError::Open {
            model: m.name.clone(),
            why: format!("{e:#}"),
        })
    };
    let out = match &args.out {
        Some(dir) => OutDir::Exactly(dir.clone()),
        None => OutDir::Runs(cfg.runs_dir()),
    };
    let done = session::run(
        &models,
        &mut open,
        &bench_cfg,
        out,
        &mut progress,
        &CancelToken::default(),
    )?;
    let r = &done.results;
    for m in &r.models {
        for c in &m.checks {
            eprintln!("lmwb bench: {}", report::check_line(&m.model.name, c));
        }
    }
    eprintln!("lmwb bench: wrote {}", done.dir.display());
    if args.json {
        println!("{}", serde_json::to_string_pretty(r)?);
    } else {
        print!("{}", report::markdown(r));
    }
    Ok(if r.all_pass() { 0 } else { 1 })
}

fn gen_args(spec: &str, engine: &EngineArgs) -> GenArgs {
    GenArgs {
        model: Some(spec.to_string()),
        engine: engine.clone(),
        ..GenArgs::default()
    }
}

/// Load a model on disk, or connect to a remote one, with what the report says about it.
fn open_model(m: &BenchModel, engine: &EngineArgs, cfg: &Config) -> anyhow::Result<Opened> {
    match &m.target {
        Target::Local { path, .. } => {
            let (client, meta) = load_local(&m.name, engine, path, cfg)?;
            Ok((Box::new(client), meta))
        }
        Target::Remote { backend, model } => {
            eprintln!("lmwb bench: connecting to {}", m.target.location());
            let t = Instant::now();
            let client = HttpClient::connect(backend, model)?;
            let meta = ModelMeta::remote(&client, &m.target, t.elapsed().as_secs_f64() * 1000.0);
            Ok((Box::new(client), meta))
        }
    }
}

/// Load a model on disk, with what the report says about it.
fn load_local(
    spec: &str,
    engine: &EngineArgs,
    path: &Path,
    cfg: &Config,
) -> anyhow::Result<(LocalClient, ModelMeta)> {
    eprintln!("lmwb bench: loading {}", path.display());
    let opts = gen::engine_options(engine, cfg)?;
    let t = Instant::now();
    let handle = EngineHandle::load(path, opts)?;
    let load_ms = t.elapsed().as_secs_f64() * 1000.0;
    // A path is shown by its file name; a registry name as given.
    let name = if spec.contains(std::path::MAIN_SEPARATOR) {
        provenance::slug(spec)
    } else {
        spec.to_string()
    };
    let device = engine.device.clone().unwrap_or_else(|| cfg.device.clone());
    let meta = ModelMeta::local(
        &name,
        path,
        handle.info(),
        &device,
        candle_core::utils::get_num_threads(),
        load_ms,
    );
    Ok((LocalClient::new(name, handle), meta))
}
