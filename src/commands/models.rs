//! `lmwb models list|requantize` and the dispatch of `models show|verify|pull|rm`
//! (`models_show.rs`, `models_verify.rs`, `models_pull.rs`).

use crate::cli::ModelsCommand;
use crate::config::Config;
use crate::engine::model::quantize::{default_output, parse_target, requantize_gguf, target_names};
use crate::engine::model::{ModelInfo, ModelKind};
use crate::models::{describe, resolve, scan, Entry, Sources};

pub(super) use crate::models::fit::human_size;

pub(super) fn human_params(n: u64) -> String {
    if n >= 1_000_000_000 {
        format!("{:.1}B", n as f64 / 1e9)
    } else {
        format!("{:.0}M", n as f64 / 1e6)
    }
}

pub fn run(cmd: ModelsCommand, cfg: &Config) -> anyhow::Result<u8> {
    let sources = Sources::from_config(cfg);
    match cmd {
        ModelsCommand::List { json } => list(&sources, cfg, json),
        ModelsCommand::Show { model, ctx, json } => {
            super::models_show::show(&model, ctx, json, &sources, cfg)
        }
        ModelsCommand::Verify { model, json } => {
            super::models_verify::verify(&model, json, &sources)
        }
        ModelsCommand::Requantize { model, to, out } => requantize(&model, &to, out, &sources),
        ModelsCommand::Pull(args) => super::models_pull::pull(args),
        ModelsCommand::Rm(args) => super::models_pull::rm(args, cfg),
    }
}

/// A `--json` row of `models list`: the entry, and its headers or why they are unreadable.
fn json_row(e: &Entry) -> serde_json::Value {
    let mut row = serde_json::json!({
        "name": e.name,
        "path": e.path,
        "source": e.source,
        "sources": e.sources,
        "size": e.size,
        "sha256": e.sha256,
        "locations": e.locations,
    });
    match describe(e) {
        Ok(info) => row["info"] = serde_json::to_value(info).unwrap_or_default(),
        Err(err) => row["error"] = err.into(),
    }
    row
}

/// The SOURCE column: every source holding the model, `+`-joined.
fn sources_label(e: &Entry) -> String {
    e.sources
        .iter()
        .map(|s| s.label())
        .collect::<Vec<_>>()
        .join("+")
}

fn list(sources: &Sources, cfg: &Config, json: bool) -> anyhow::Result<u8> {
    let entries = scan(sources);
    if json {
        let mut rows: Vec<_> = entries.iter().map(json_row).collect();
        rows.extend(super::models_remote::json_rows(cfg));
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(0);
    }
    if entries.is_empty() {
        eprintln!(
            "lmwb: no models in {}; run `bash scripts/fetch-models.sh` for the default model",
            sources.describe()
        );
        super::models_remote::print(cfg);
        return Ok(0);
    }
    let width = entries
        .iter()
        .map(|e| e.name.chars().count() + 1)
        .max()
        .unwrap_or(0)
        .max(40);
    let rows: Vec<_> = entries.iter().map(|e| (e, describe(e))).collect();
    let embedding =
        |r: &Result<ModelInfo, String>| r.as_ref().is_ok_and(|i| i.kind == ModelKind::Embedding);
    let header = |first: &str, last: &str| {
        println!(
            "{first:<width$} {:<8} {:<6} {:>7} {:>9} {last:>8} SOURCE",
            "ARCH", "QUANT", "PARAMS", "SIZE"
        )
    };
    header("NAME", "CONTEXT");
    for (e, info) in rows.iter().filter(|(_, i)| !embedding(i)) {
        list_row(e, info, width);
    }
    // Embedding models answer /v1/embeddings under `lmwb serve`; they do not chat.
    let embedders: Vec<_> = rows.iter().filter(|(_, i)| embedding(i)).collect();
    if !embedders.is_empty() {
        println!();
        header("EMBEDDING MODEL", "MAX TOK");
    }
    for (e, info) in embedders {
        list_row(e, info, width);
    }
    super::models_remote::print(cfg);
    Ok(0)
}

/// One row of `models list` (the context column: context, or tokens per input), then a
/// line for each other place the same model is.
fn list_row(e: &Entry, info: &Result<ModelInfo, String>, width: usize) {
    match info {
        Ok(i) => println!(
            "{:<width$} {:<8} {:<6} {:>7} {:>9} {:>8} {}",
            e.name,
            i.arch,
            i.quant,
            human_params(i.params),
            human_size(i.size_bytes),
            i.context_length,
            sources_label(e)
        ),
        Err(err) => println!(
            "{:<width$} unreadable ({}): {err}",
            e.name,
            sources_label(e)
        ),
    }
    for l in e.locations.iter().skip(1) {
        println!(
            "  also {} {} ({})",
            l.source.label(),
            l.name,
            l.path.display()
        );
    }
}

/// The lines `models show` prints for every model: format, architecture, weights, size.
pub(super) fn show_basics(info: &ModelInfo) {
    println!("format:        {}", info.format);
    println!("architecture:  {}", info.arch);
    println!("quantization:  {}", info.quant);
    println!(
        "parameters:    {} ({})",
        info.params,
        human_params(info.params)
    );
    println!("size:          {}", human_size(info.size_bytes));
}

/// `models show` of an embedding model: what it is for, and its vectors.
pub(super) fn show_embedding(info: &ModelInfo) -> anyhow::Result<()> {
    let spec = crate::engine::embed::EmbedSpec::read(&info.path)?;
    println!(
        "kind:          embedding model (lmwb serve: /v1/embeddings, /api/embed); it does not chat"
    );
    show_basics(info);
    println!("dimensions:    {}", spec.dims());
    println!(
        "pooling:       {}{}",
        spec.pooling.name(),
        if spec.normalize {
            ", then L2-normalized"
        } else {
            ""
        }
    );
    println!("max tokens:    {} per input", spec.max_tokens);
    println!(
        "layers:        {} · hidden {} · heads {} · vocab {}",
        spec.bert.num_hidden_layers,
        spec.bert.hidden_size,
        spec.bert.num_attention_heads,
        spec.bert.vocab_size
    );
    Ok(())
}

fn requantize(
    model: &str,
    to: &str,
    out: Option<std::path::PathBuf>,
    sources: &Sources,
) -> anyhow::Result<u8> {
    let Some(target) = parse_target(to) else {
        eprintln!("lmwb: unknown --to `{to}`; accepted: {}", target_names());
        return Ok(super::EXIT_USAGE);
    };
    let src = resolve(model, sources)?;
    if src.is_dir()
        || !src
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
    {
        eprintln!(
            "lmwb: {} is not a .gguf file; only GGUF models can be requantized",
            src.display()
        );
        return Ok(super::EXIT_USAGE);
    }
    let dst = out.unwrap_or_else(|| default_output(&src, target));
    let same = match (src.canonicalize(), dst.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        eprintln!(
            "lmwb: the output {} is the source model; refusing to overwrite it (pass --out PATH)",
            dst.display()
        );
        return Ok(super::EXIT_USAGE);
    }
    eprintln!(
        "lmwb: requantizing {} to {target:?} -> {}",
        src.display(),
        dst.display()
    );
    let r = requantize_gguf(&src, &dst, target)?;
    let from: Vec<String> = r
        .converted_from
        .iter()
        .map(|(t, n)| format!("{n} {t}"))
        .collect();
    println!(
        "wrote {} ({}, {}): {} tensors converted ({}), {} kept as they were",
        r.dst.display(),
        r.to,
        human_size(r.dst_bytes),
        r.converted,
        if from.is_empty() {
            "none".into()
        } else {
            from.join(", ")
        },
        r.kept
    );
    if !r.unsplittable.is_empty() {
        println!(
            "note: {} matrices kept: their rows do not split into {} blocks ({})",
            r.unsplittable.len(),
            r.to,
            r.unsplittable.join(", ")
        );
    }
    Ok(0)
}
