//! Turning the shared generation flags and the config into engine options and a request.

use crate::cli::{EngineArgs, GenArgs, SamplingArgs};
use crate::config::Config;
use crate::engine::model::LoadOptions;
use crate::engine::sampler::SamplingParams;
use crate::engine::template::ChatMessage;
use crate::engine::{parse_device, EngineOptions, GenerateRequest, Prompt};
use std::path::PathBuf;

/// What `-m` (or the configured default) names: a model on disk or on a remote backend.
pub fn target(args: &GenArgs, cfg: &Config) -> anyhow::Result<crate::client::Target> {
    let spec = args
        .model
        .clone()
        .unwrap_or_else(|| cfg.default_model.clone());
    Ok(crate::client::Target::resolve(&spec, cfg)?)
}

/// The model path `-m` (or the configured default) names.
pub fn model_path(args: &GenArgs, cfg: &Config) -> anyhow::Result<PathBuf> {
    let spec = args
        .model
        .clone()
        .unwrap_or_else(|| cfg.default_model.clone());
    Ok(crate::models::resolve(
        &spec,
        &crate::models::Sources::from_config(cfg),
    )?)
}

pub fn engine_options(args: &EngineArgs, cfg: &Config) -> anyhow::Result<EngineOptions> {
    let device = parse_device(args.device.as_deref().unwrap_or(&cfg.device))?;
    Ok(EngineOptions {
        load: LoadOptions {
            device,
            requantize: cfg.requantize && !args.no_requantize,
            own_kernels: true,
        },
        prefill_chunk: cfg.prefill_chunk.max(1),
        max_batch: cfg.max_batch.max(1),
    })
}

/// Config defaults overridden by flags.
pub fn sampling(args: &SamplingArgs, cfg: &Config) -> SamplingParams {
    let d = cfg.sampling.params.clone();
    SamplingParams {
        temperature: args.temperature.unwrap_or(d.temperature),
        top_p: args.top_p.unwrap_or(d.top_p),
        top_k: args.top_k.unwrap_or(d.top_k),
        min_p: args.min_p.unwrap_or(d.min_p),
        repeat_penalty: args.repeat_penalty.unwrap_or(d.repeat_penalty),
        repeat_last_n: args.repeat_last_n.unwrap_or(d.repeat_last_n),
        presence_penalty: args.presence_penalty.unwrap_or(d.presence_penalty),
        frequency_penalty: args.frequency_penalty.unwrap_or(d.frequency_penalty),
        seed: args.seed.or(d.seed),
    }
}

/// The request for `prompt` with every flag applied.
pub fn request(args: &GenArgs, cfg: &Config, prompt: String) -> GenerateRequest {
    let chat = args.chat || args.system.is_some() || args.template.is_some();
    let prompt = if chat {
        let mut messages = Vec::new();
        if let Some(s) = &args.system {
            messages.push(ChatMessage::system(s.clone()));
        }
        messages.push(ChatMessage::user(prompt));
        Prompt::Chat {
            messages,
            template: args.template.clone(),
            options: Default::default(),
        }
    } else {
        Prompt::Raw(prompt)
    };
    let nonzero = |n: usize| (n > 0).then_some(n);
    GenerateRequest {
        prompt,
        sampling: sampling(&args.sampling, cfg),
        max_tokens: nonzero(args.sampling.max_tokens.unwrap_or(cfg.sampling.max_tokens)),
        stop: args.sampling.stop.clone(),
        max_kv_size: nonzero(
            args.sampling
                .max_kv_size
                .unwrap_or(cfg.sampling.max_kv_size),
        ),
        ignore_eos: false,
        logprobs: None,
        constraint: None,
    }
}
