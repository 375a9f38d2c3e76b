//! `lmwb run`: one generation streamed to stdout, a stats line to stderr.

use super::gen;
use crate::artifacts::{self, MetricsRecord};
use crate::cli::RunArgs;
use crate::config::Config;
use crate::engine::{FinishReason, Stats};
use std::io::{IsTerminal, Read, Write};

/// The one-line summary printed to stderr.
pub fn stats_line(s: &Stats) -> String {
    let mut line = format!(
        "lmwb: {} prompt tokens ({} reused) · {} generated · TTFT {:.0} ms · prefill {:.1} tok/s · decode {:.1} tok/s · finish: {}",
        s.prompt_tokens,
        s.cached_tokens,
        s.generated_tokens,
        s.ttft_ms,
        s.prefill_tok_s,
        s.decode_tok_s,
        s.finish_reason.as_str()
    );
    if let Some(m) = s.max_kv_size {
        line.push_str(&format!(" · KV {}/{m}", s.kv_peak));
    }
    line
}

fn read_prompt(arg: Option<String>) -> anyhow::Result<String> {
    match arg.as_deref() {
        Some("-") | None => {
            if arg.is_none() && std::io::stdin().is_terminal() {
                anyhow::bail!("no prompt: give one as an argument (lmwb run -m MODEL \"prompt\") or pipe it on standard input");
            }
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            Ok(s)
        }
        Some(p) => Ok(p.to_string()),
    }
}

pub fn run(args: RunArgs, cfg: &Config) -> anyhow::Result<u8> {
    let prompt = read_prompt(args.prompt)?;
    let target = gen::target(&args.gen, cfg)?;
    let opts = gen::engine_options(&args.gen.engine, cfg)?;
    let req = gen::request(&args.gen, cfg, prompt);
    req.sampling.validate()?;
    tracing::info!(model = %target.location(), transport = %target.transport(), "loading");
    let t = std::time::Instant::now();
    let client = target.open(opts)?;
    let load_ms = t.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(load_ms, notes = ?client.notes(), "loaded");

    let generation = client.generate(req);
    let cancel = generation.cancel.clone();
    let _ = ctrlc::set_handler(move || cancel.cancel());

    let mut stdout = std::io::stdout().lock();
    let json = args.gen.json;
    let out = generation.collect_with(|piece| {
        if !json {
            let _ = stdout.write_all(piece.as_bytes());
            let _ = stdout.flush();
        }
    })?;
    if json {
        let record = serde_json::json!({
            "model": target.location(),
            "name": client.model_name(),
            "transport": target.transport(),
            "text": out.text,
            "stats": out.stats,
            "load_ms": load_ms,
            "notes": client.notes(),
        });
        writeln!(stdout, "{record}")?;
    } else if std::io::stdout().is_terminal() && !out.text.ends_with('\n') {
        writeln!(stdout)?;
    }
    drop(stdout);
    artifacts::record(
        &cfg.runs_dir(),
        &MetricsRecord {
            time: artifacts::now(),
            command: "run",
            model: client.model_name(),
            transport: target.transport(),
            location: target.location(),
            output: None,
            stats: &out.stats,
        },
    );
    eprintln!("{}", stats_line(&out.stats));
    tracing::info!(stats = ?out.stats, "done");
    Ok(if out.stats.finish_reason == FinishReason::Cancelled {
        130
    } else {
        0
    })
}
