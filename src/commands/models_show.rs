//! `lmwb models show NAME [--ctx N]`: what the model is, where every copy is, where its
//! tokenizer and template come from, and whether it fits in memory.

use super::models::{human_size, show_basics, show_embedding};
use crate::config::Config;
use crate::engine::model::{inspect, ModelInfo, ModelKind};
use crate::models::fit::{self, FitEstimate};
use crate::models::{details, lookup, Location, Sources};

fn location_line(l: &Location) -> String {
    let blob = l
        .blob
        .as_ref()
        .map(|b| format!(" -> {}", b.display()))
        .unwrap_or_default();
    format!("{:<8} {}{blob}", l.source.label(), l.path.display())
}

pub fn show(
    spec: &str,
    ctx: Option<usize>,
    json: bool,
    sources: &Sources,
    cfg: &Config,
) -> anyhow::Result<u8> {
    let r = lookup(spec, sources)?;
    let info = inspect(&r.path)?;
    let det = details::details(&r.path).ok();
    let context = ctx.unwrap_or_else(|| fit::default_context(&info, cfg.sampling.max_kv_size));
    let kv = fit::KvDtype::for_device(&cfg.device);
    let est = fit::estimate_now(&info, context, kv);
    let locations: Vec<Location> = r
        .entry
        .as_ref()
        .map(|e| e.locations.clone())
        .unwrap_or_default();
    let sha256 = r.entry.as_ref().and_then(|e| e.sha256.clone());
    if json {
        let mut v = serde_json::to_value(&info)?;
        v["name"] = r.name.clone().into();
        v["sources"] = serde_json::to_value(r.entry.as_ref().map(|e| e.sources.clone()))?;
        v["locations"] = serde_json::to_value(&locations)?;
        v["sha256"] = sha256.into();
        v["tokenizer"] = det.as_ref().map(|d| d.tokenizer.clone()).into();
        v["template"] = det.as_ref().map(|d| d.template.clone()).into();
        v["fit"] = serde_json::to_value(&est)?;
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    println!("path:          {}", info.path.display());
    println!("name:          {}", r.name);
    for (i, l) in locations.iter().enumerate() {
        let head = if i == 0 { "locations:" } else { "" };
        println!("{head:<14} {}", location_line(l));
    }
    match &sha256 {
        Some(h) => println!("sha256:        {h}"),
        None if info.format == "gguf" => {
            println!(
                "sha256:        not known yet (`lmwb models verify {}` computes it)",
                r.name
            )
        }
        None => {}
    }
    if info.kind == ModelKind::Embedding {
        show_embedding(&info)?;
    } else {
        show_chat(&info, det.as_ref(), &est);
    }
    println!("memory:        {}", est.line());
    if info.context_length > 0 && context > info.context_length {
        println!(
            "note:          --ctx {context} is beyond the model's context ({}); it stops there",
            info.context_length
        );
    }
    for n in info
        .notes
        .iter()
        .chain(locations.iter().flat_map(|l| &l.notes))
    {
        println!("note:          {n}");
    }
    Ok(0)
}

/// The lines of a chat model: basics, context, tokenizer, template, shape, KV per token.
fn show_chat(info: &ModelInfo, det: Option<&details::Details>, est: &FitEstimate) {
    show_basics(info);
    println!("context:       {}", info.context_length);
    if let Some(d) = det {
        println!("tokenizer:     {}", d.tokenizer);
    }
    if info.has_chat_template {
        let from = det.map(|d| format!(", {}", d.template)).unwrap_or_default();
        println!("chat template: yes{from}");
    } else {
        println!("chat template: no (use --template NAME)");
    }
    if let Some(c) = &info.config {
        println!(
            "layers:        {} · hidden {} · heads {} (KV {}) · head dim {} · vocab {}",
            c.n_layers, c.hidden_size, c.n_heads, c.n_kv_heads, c.head_dim, c.vocab_size
        );
        println!(
            "KV cache:      {} per token ({:?})",
            human_size(est.kv_bytes_per_token),
            est.kv_dtype
        );
    }
}
