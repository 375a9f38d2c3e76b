//! `lmwb models list|show|requantize` (pull and rm: `models_pull.rs`).

use crate::cli::ModelsCommand;
use crate::config::Config;
use crate::engine::model::quantize::{default_output, parse_target, requantize_gguf, target_names};
use crate::engine::model::{inspect, ModelInfo, ModelKind};
use crate::models::{describe, resolve, scan};

fn human_size(bytes: u64) -> String {
    let mb = bytes as f64 / 1e6;
    if mb < 1.0 {
        format!("{:.0} KB", bytes as f64 / 1e3)
    } else if mb >= 1000.0 {
        format!("{:.1} GB", mb / 1000.0)
    } else {
        format!("{mb:.0} MB")
    }
}

fn human_params(n: u64) -> String {
    if n >= 1_000_000_000 {
        format!("{:.1}B", n as f64 / 1e9)
    } else {
        format!("{:.0}M", n as f64 / 1e6)
    }
}

pub fn run(cmd: ModelsCommand, cfg: &Config) -> anyhow::Result<u8> {
    match cmd {
        ModelsCommand::List { json } => {
            let entries = scan(&cfg.model_dirs());
            if json {
                let rows: Vec<_> = entries
                    .iter()
                    .map(|e| match describe(e) {
                        Ok(info) => {
                            serde_json::json!({"name": e.name, "path": e.path, "info": info})
                        }
                        Err(err) => {
                            serde_json::json!({"name": e.name, "path": e.path, "error": err})
                        }
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(0);
            }
            if entries.is_empty() {
                let dirs: Vec<String> = cfg
                    .model_dirs()
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect();
                eprintln!("lmwb: no models in {}; run `bash scripts/fetch-models.sh` for the default model", dirs.join(", "));
                return Ok(0);
            }
            let rows: Vec<_> = entries.iter().map(|e| (e, describe(e))).collect();
            let embedding = |r: &Result<ModelInfo, String>| {
                r.as_ref().is_ok_and(|i| i.kind == ModelKind::Embedding)
            };
            println!(
                "{:<40} {:<8} {:<6} {:>7} {:>9} {:>8}",
                "NAME", "ARCH", "QUANT", "PARAMS", "SIZE", "CONTEXT"
            );
            for (e, info) in rows.iter().filter(|(_, i)| !embedding(i)) {
                match info {
                    Ok(i) => list_row(&e.name, i),
                    Err(err) => println!("{:<40} unreadable: {err}", e.name),
                }
            }
            // Embedding models answer /v1/embeddings under `lmwb serve`; they do not chat.
            let embedders: Vec<_> = rows.iter().filter(|(_, i)| embedding(i)).collect();
            if !embedders.is_empty() {
                println!(
                    "\n{:<40} {:<8} {:<6} {:>7} {:>9} {:>8}",
                    "EMBEDDING MODEL", "ARCH", "QUANT", "PARAMS", "SIZE", "MAX TOK"
                );
            }
            for (e, info) in embedders {
                if let Ok(i) = info {
                    list_row(&e.name, i);
                }
            }
            Ok(0)
        }
        ModelsCommand::Show { model, json } => {
            let path = resolve(&model, &cfg.model_dirs())?;
            let info = inspect(&path)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
                return Ok(0);
            }
            println!("path:          {}", info.path.display());
            if info.kind == ModelKind::Embedding {
                return show_embedding(&info);
            }
            show_basics(&info);
            println!("context:       {}", info.context_length);
            println!(
                "chat template: {}",
                if info.has_chat_template {
                    "yes"
                } else {
                    "no (use --template NAME)"
                }
            );
            if let Some(c) = &info.config {
                println!(
                    "layers:        {} · hidden {} · heads {} (KV {}) · head dim {} · vocab {}",
                    c.n_layers, c.hidden_size, c.n_heads, c.n_kv_heads, c.head_dim, c.vocab_size
                );
                println!(
                    "KV cache:      {} per token",
                    human_size(c.kv_bytes_per_token() as u64)
                );
            }
            for n in &info.notes {
                println!("note:          {n}");
            }
            Ok(0)
        }
        ModelsCommand::Requantize { model, to, out } => requantize(&model, &to, out, cfg),
        ModelsCommand::Pull(args) => super::models_pull::pull(args),
        ModelsCommand::Rm(args) => super::models_pull::rm(args, cfg),
    }
}

/// One row of `models list` (the last column: context, or tokens per input).
fn list_row(name: &str, i: &ModelInfo) {
    println!(
        "{:<40} {:<8} {:<6} {:>7} {:>9} {:>8}",
        name,
        i.arch,
        i.quant,
        human_params(i.params),
        human_size(i.size_bytes),
        i.context_length
    );
}

/// The lines `models show` prints for every model: format, architecture, weights, size.
fn show_basics(info: &ModelInfo) {
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
fn show_embedding(info: &ModelInfo) -> anyhow::Result<u8> {
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
    Ok(0)
}

fn requantize(
    model: &str,
    to: &str,
    out: Option<std::path::PathBuf>,
    cfg: &Config,
) -> anyhow::Result<u8> {
    let Some(target) = parse_target(to) else {
        eprintln!("lmwb: unknown --to `{to}`; accepted: {}", target_names());
        return Ok(super::EXIT_USAGE);
    };
    let src = resolve(model, &cfg.model_dirs())?;
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
