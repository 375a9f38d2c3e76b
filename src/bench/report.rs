//! A benchmark's output folder: `report.md` (llama-bench-shaped tables), `results.json`
//! (every sample plus provenance), `samples.csv`, and the charts of [`super::plots`].

use super::long::{fmt_opt, fmt_pct, mb, window_label};
use super::provenance::Machine;
use super::standard::TestKind;
use super::stats::Summary;
use super::{BenchConfig, BenchError, ModelResults};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::Path;

/// `results.json`'s schema name; bump it when a field changes meaning.
pub const SCHEMA: &str = "lmwb.bench/1";

/// Everything a `lmwb bench` run measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchResults {
    pub schema: String,
    /// UTC, `YYYYMMDD-HHMMSS`.
    pub started: String,
    pub machine: Machine,
    pub config: BenchConfig,
    pub models: Vec<ModelResults>,
    /// Charts written beside the report.
    pub charts: Vec<super::plots::Chart>,
}

impl BenchResults {
    /// Whether every PASS/FAIL check passed.
    pub fn all_pass(&self) -> bool {
        self.models.iter().flat_map(|m| &m.checks).all(|c| c.pass)
    }
}

fn write(path: &Path, text: &str) -> Result<(), BenchError> {
    std::fs::write(path, text).map_err(|e| BenchError::Write {
        path: path.display().to_string(),
        why: e.to_string(),
    })
}

/// Write `report.md`, `results.json` and `samples.csv` into `dir` (which must exist).
pub fn write_all(dir: &Path, r: &BenchResults) -> Result<(), BenchError> {
    write(&dir.join("report.md"), &markdown(r))?;
    let json = serde_json::to_string_pretty(r).expect("results serialize");
    write(&dir.join("results.json"), &(json + "\n"))?;
    write(&dir.join("samples.csv"), &csv(r))
}

fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", mb(bytes))
}

fn params(n: u64) -> String {
    if n >= 1_000_000_000 {
        format!("{:.2} B", n as f64 / 1e9)
    } else {
        format!("{:.2} M", n as f64 / 1e6)
    }
}

fn row(cells: &[String]) -> String {
    format!("| {} |\n", cells.join(" | "))
}

/// The whole report as Markdown.
pub fn markdown(r: &BenchResults) -> String {
    let m = &r.machine;
    let mut s = format!(
        "# lmwb bench {}\n\n{} ({} physical cores, {} logical), {:.1} GiB RAM, {}; lmwb {} ({}); load average at start: {}\n\n",
        r.started,
        m.cpu,
        m.physical_cores.map_or("?".into(), |c| c.to_string()),
        m.logical_cpus,
        m.ram_bytes as f64 / (1u64 << 30) as f64,
        m.os,
        m.lmwb_version,
        m.git_commit,
        m.load_avg_at_start.as_deref().unwrap_or("?"),
    );
    for model in &r.models {
        let x = &model.model;
        let _ = writeln!(
            s,
            "- `{}`: {} ({}, {}, {} params), sha256 `{}`{}",
            x.name,
            x.path,
            x.arch,
            x.quantization,
            params(x.params),
            x.sha256.as_deref().unwrap_or("-"),
            if x.load_notes.is_empty() {
                String::new()
            } else {
                format!("; {}", x.load_notes.join("; "))
            }
        );
    }
    standard_table(&mut s, r);
    latency_table(&mut s, r);
    concurrency_table(&mut s, r);
    long_table(&mut s, r);
    if !r.charts.is_empty() {
        s.push_str("\n## Charts\n\n");
        for c in r.charts.iter().filter(|c| c.file.ends_with(".png")) {
            let _ = writeln!(s, "![{}]({})\n", c.title, c.file);
        }
    }
    s
}

fn standard_table(s: &mut String, r: &BenchResults) {
    if r.models.iter().all(|m| m.standard.is_empty()) {
        return;
    }
    let _ = writeln!(
        s,
        "\n## Throughput (llama-bench)\n\n{} repetitions after a warmup; t/s = mean ± sample sd.\n",
        r.config.repetitions
    );
    s.push_str("| model | size | params | backend | threads | test | t/s |\n");
    s.push_str("| --- | ---: | ---: | --- | ---: | ---: | ---: |\n");
    for m in &r.models {
        let x = &m.model;
        for t in &m.standard {
            s.push_str(&row(&[
                format!("{} {}", x.name, x.quantization),
                mib(x.size_bytes),
                params(x.params),
                x.device.clone(),
                x.threads.to_string(),
                t.test.clone(),
                t.tok_s.mean_sd(2),
            ]));
        }
    }
}

fn latency_table(s: &mut String, r: &BenchResults) {
    if r.models.iter().all(|m| m.latency.is_none()) {
        return;
    }
    s.push_str("\n## Latency (vLLM metrics, ms)\n\n");
    s.push_str("| model | requests | in → out | metric | mean | p50 | p90 | p99 |\n");
    s.push_str("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |\n");
    for m in &r.models {
        let Some(l) = &m.latency else { continue };
        let metrics: [(&str, &Summary); 4] = [
            ("TTFT", &l.ttft_ms),
            ("TPOT", &l.tpot_ms),
            ("ITL", &l.itl_ms),
            ("E2E", &l.e2e_ms),
        ];
        for (name, x) in metrics {
            s.push_str(&row(&[
                m.model.name.clone(),
                l.requests.to_string(),
                format!("{} → {}", l.input_tokens, l.output_tokens),
                name.into(),
                format!("{:.2}", x.mean),
                format!("{:.2}", x.p50),
                format!("{:.2}", x.p90),
                format!("{:.2}", x.p99),
            ]));
        }
        let _ = writeln!(
            s,
            "\n{}: {:.2} requests/s, {:.2} output tokens/s over {:.1} s.",
            m.model.name, l.request_throughput, l.output_throughput, l.duration_s
        );
    }
}

fn concurrency_table(s: &mut String, r: &BenchResults) {
    if r.models.iter().all(|m| m.concurrency.is_empty()) {
        return;
    }
    let _ = writeln!(
        s,
        "\n## Concurrent streams\n\nN streams sent at once, each {} random prompt tokens → the tokens shown \
         (EOS ignored, greedy). aggregate = tokens after each stream's first / decode phase \
         (earliest first token → latest last token); per stream = mean ± sample sd (min); \
         speedup = aggregate / aggregate of 1 stream.\n",
        super::concurrency::PROMPT_TOKENS
    );
    s.push_str("| model | streams | tokens/stream | aggregate t/s | per-stream t/s | min t/s | TTFT mean ms | speedup |\n");
    s.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for m in &r.models {
        for c in &m.concurrency {
            s.push_str(&row(&[
                m.model.name.clone(),
                c.streams.to_string(),
                c.gen_tokens.to_string(),
                format!("{:.2}", c.aggregate_tok_s),
                c.per_stream_tok_s.mean_sd(2),
                format!("{:.2}", c.per_stream_tok_s.min),
                format!("{:.1}", c.ttft_ms.mean),
                c.speedup.map_or("-".into(), |x| format!("{x:.2}×")),
            ]));
        }
    }
}

fn long_table(s: &mut String, r: &BenchResults) {
    if r.models.iter().all(|m| m.long.is_empty()) {
        return;
    }
    let c = &r.config;
    let _ = writeln!(
        s,
        "\n## Long runs\n\n{} random prompt tokens, {} tokens generated per run; tok/s and RSS sampled every {} tokens. \
         \"first block\" is the first full block after the window filled (for `none`: the smallest window's fill point).\n",
        c.long_prompt_tokens, c.long_gen_tokens, c.block
    );
    s.push_str("| model | max-kv-size | generated | tok/s first block | tok/s last quarter | ratio | RSS at fill | RSS end | RSS growth | RSS swing | KV peak |\n");
    s.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for m in &r.models {
        for l in &m.long {
            s.push_str(&row(&[
                m.model.name.clone(),
                window_label(l.window),
                l.generated.to_string(),
                fmt_opt(l.first_block_tok_s, 2),
                format!("{:.2}", l.last_quarter_tok_s),
                fmt_opt(l.ratio, 2),
                l.rss_at_fill_bytes
                    .map_or("-".into(), |b| format!("{:.1} MB", mb(b))),
                format!("{:.1} MB", mb(l.rss_end_bytes)),
                fmt_pct(l.rss_growth_pct),
                l.rss_swing_pct.map_or("-".into(), |x| format!("{x:.1} %")),
                l.kv_peak.map_or("-".into(), |k| k.to_string()),
            ]));
        }
    }
    s.push_str("\n### Checks\n\n");
    for m in &r.models {
        for k in &m.checks {
            let _ = writeln!(s, "- {}", check_line(&m.model.name, k));
        }
    }
}

/// `PASS 1 throughput holds (model, max-kv-size 64): …`, as printed on stderr too.
pub fn check_line(model: &str, k: &super::long::Check) -> String {
    format!(
        "{} {} {} ({model}, max-kv-size {}): {}",
        if k.pass { "PASS" } else { "FAIL" },
        k.id,
        k.name,
        window_label(k.window),
        k.detail
    )
}

/// One row per sample: `model,mode,test,sample,tokens,value,unit,t_ms,rss_bytes`.
pub fn csv(r: &BenchResults) -> String {
    let mut s = String::from("model,mode,test,sample,tokens,value,unit,t_ms,rss_bytes\n");
    let q = |x: &str| {
        if x.contains([',', '"', '\n']) {
            format!("\"{}\"", x.replace('"', "\"\""))
        } else {
            x.to_string()
        }
    };
    for m in &r.models {
        let name = q(&m.model.name);
        for t in &m.standard {
            let tokens = t.tokens;
            for (i, (v, ms)) in t.samples_tok_s.iter().zip(&t.samples_ms).enumerate() {
                let mode = match t.kind {
                    TestKind::Pp => "pp",
                    TestKind::Tg => "tg",
                };
                let _ = writeln!(
                    s,
                    "{name},{mode},{},{i},{tokens},{v},tok/s,{ms},",
                    q(&t.test)
                );
            }
        }
        if let Some(l) = &m.latency {
            for (i, x) in l.samples.iter().enumerate() {
                let n = x.output_tokens;
                let _ = writeln!(s, "{name},latency,ttft,{i},{n},{},ms,,", x.ttft_ms);
                if let Some(tpot) = x.tpot_ms {
                    let _ = writeln!(s, "{name},latency,tpot,{i},{n},{tpot},ms,,");
                }
                let _ = writeln!(s, "{name},latency,e2e,{i},{n},{},ms,,", x.e2e_ms);
                for (j, g) in x.itl_ms.iter().enumerate() {
                    let _ = writeln!(s, "{name},latency,itl,{i}.{j},{n},{g},ms,,");
                }
            }
        }
        for c in &m.concurrency {
            let test = format!("streams={}", c.streams);
            for (i, x) in c.samples.iter().enumerate() {
                let (n, v, t) = (x.output_tokens, x.tok_s, x.last_token_ms);
                let _ = writeln!(s, "{name},concurrency,{test},{i},{n},{v},tok/s,{t},");
            }
            let (n, v) = (c.streams * c.gen_tokens, c.aggregate_tok_s);
            let _ = writeln!(s, "{name},concurrency,{test},aggregate,{n},{v},tok/s,,");
        }
        for l in &m.long {
            let test = format!("max-kv-size={}", window_label(l.window));
            for (i, b) in l.blocks.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "{name},long,{test},{i},{},{},tok/s,{},{}",
                    b.end, b.tok_s, b.t_ms, b.rss_bytes
                );
            }
        }
    }
    s
}
