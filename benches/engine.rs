//! Engine speed on the default model: prefill (pp512) and decode (tg128) tokens/s.
//!
//! `cargo bench --bench engine`
//!
//! Measures SmolLM2-135M-Instruct as shipped (Q4_1) and its Q8_0 requantization (written
//! beside it with `requantize_gguf` when missing), each on lmwb's own CPU kernels and on
//! candle's stock quantized matmul (for Q4_1: requantized to Q8_0 at load, and as stored).
//!
//! - tg128: 128 greedy tokens after a short prompt; decode tok/s from the request's stats
//!   (127 decode steps: the first token comes from prefill).
//! - pp512: a prompt of exactly 512 tokens with max_tokens 1; prefill tok/s from the stats.
//!   Each repetition starts with a different word, so nothing is reused from the KV cache
//!   (checked: cached_tokens == 0).
//!
//! One warmup request per configuration, then `LMWB_BENCH_REPS` repetitions (default 3;
//! candle's slow Q4_1 path runs at most 2). Prints a markdown table and writes it as JSON to
//! `<runs_dir>/bench/engine-<unix time>.json` (`runs/` in the crate by default).
//! `LMWB_MODELS_DIR` picks the models folder, as everywhere else.

use candle_core::quantized::{gguf_file, GgmlDType};
use candle_core::Device;
use lmwb::config::Config;
use lmwb::engine::model::quantize::{default_output, requantize_gguf};
use lmwb::engine::model::LoadOptions;
use lmwb::engine::sampler::SamplingParams;
use lmwb::engine::tokenizer::Tokenizer;
use lmwb::engine::{EngineHandle, EngineOptions, GenerateRequest, Prompt, Stats};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const PP: usize = 512;
const TG: usize = 128;
const DECODE_PROMPT: &str = "Once upon a time, in a small village by the sea, there lived";
/// Repeated to make the 512-token prompts; each repetition puts a different word first.
const FILLER: &str = "The history of the printing press begins in the fifteenth century, \
when movable type made books cheaper to produce and easier to share. Scholars, merchants \
and students across Europe could read the same texts, compare them, and write new ones. \
Within a few decades, presses were running in hundreds of towns, and the way people \
learned, argued and kept records changed for good. ";
const FIRST_WORDS: &[&str] = &[
    "Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot", "Golf", "Hotel", "India", "Juliet",
];

#[derive(Serialize, Clone)]
struct Measure {
    mean: f64,
    sd: f64,
    samples: Vec<f64>,
}

impl Measure {
    fn of(samples: Vec<f64>) -> Measure {
        let n = samples.len() as f64;
        let mean = samples.iter().sum::<f64>() / n;
        let sd = if samples.len() > 1 {
            (samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        Measure { mean, sd, samples }
    }

    fn cell(&self) -> String {
        if self.samples.len() > 1 {
            format!("{:.1} ± {:.1}", self.mean, self.sd)
        } else {
            format!("{:.1} (n=1)", self.mean)
        }
    }
}

#[derive(Serialize)]
struct Row {
    model: String,
    file_quant: String,
    path: String,
    own_kernels: bool,
    requantize: bool,
    load_ms: f64,
    notes: Vec<String>,
    reps: usize,
    pp512_tok_s: Measure,
    tg128_tok_s: Measure,
    tg_generated_tokens: Vec<usize>,
}

#[derive(Serialize)]
struct Report {
    bench: &'static str,
    unix_time: u64,
    cpu: String,
    threads: usize,
    /// /proc/loadavg when the bench started: other work on the machine skews the numbers.
    load_avg_at_start: Option<String>,
    git_commit: Option<String>,
    pp_tokens: usize,
    tg_tokens: usize,
    total_s: f64,
    rows: Vec<Row>,
    table: String,
}

fn greedy() -> SamplingParams {
    SamplingParams::greedy()
}

fn request(text: String, max_tokens: usize) -> GenerateRequest {
    let mut r = GenerateRequest::new(Prompt::Raw(text));
    r.sampling = greedy();
    r.max_tokens = Some(max_tokens);
    r
}

fn run(engine: &EngineHandle, text: String, max_tokens: usize) -> Stats {
    engine
        .generate(request(text, max_tokens))
        .collect()
        .unwrap_or_else(|e| panic!("generation failed: {e}"))
        .stats
}

/// Tokens the engine feeds for a raw text (BOS added when the model asks for it).
fn prompt_len(tok: &Tokenizer, text: &str) -> usize {
    let ids = tok.encode(text, false).expect("encode");
    let bos =
        tok.add_bos_default() && tok.bos_id().is_some() && ids.first() != tok.bos_id().as_ref();
    ids.len() + usize::from(bos)
}

/// A text that tokenizes to exactly `n` prompt tokens, starting with `first`.
fn prompt_of(tok: &Tokenizer, first: &str, n: usize) -> String {
    let mut long = format!("{first}. ");
    while prompt_len(tok, &long) < n + 64 {
        long.push_str(FILLER);
    }
    let ids = tok.encode(&long, false).expect("encode");
    // Truncate the ids, decode, and correct until the re-encoded text has n tokens.
    let mut take = n.min(ids.len());
    for _ in 0..32 {
        let text = tok.decode(&ids[..take], false).expect("decode");
        let got = prompt_len(tok, &text);
        if got == n {
            return text;
        }
        take = (take as isize + n as isize - got as isize).clamp(1, ids.len() as isize) as usize;
    }
    panic!("could not build a prompt of exactly {n} tokens");
}

fn tokenizer_of(path: &Path) -> Tokenizer {
    let mut f = std::io::BufReader::new(std::fs::File::open(path).expect("open the model"));
    let ct = gguf_file::Content::read(&mut f).expect("a GGUF file");
    Tokenizer::from_gguf(&ct).expect("the embedded tokenizer")
}

fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

struct Case {
    file: PathBuf,
    file_quant: &'static str,
    path: &'static str,
    own_kernels: bool,
    requantize: bool,
    /// Fewer repetitions on candle's slow scalar Q4_1 path.
    slow: bool,
}

fn bench(case: &Case, tok: &Tokenizer, reps: usize, word: &mut usize) -> Row {
    let reps = if case.slow { reps.clamp(1, 2) } else { reps };
    let opts = EngineOptions {
        load: LoadOptions {
            device: Device::Cpu,
            requantize: case.requantize,
            own_kernels: case.own_kernels,
        },
        ..EngineOptions::default()
    };
    let t = Instant::now();
    let engine = EngineHandle::load(&case.file, opts)
        .unwrap_or_else(|e| panic!("loading {}: {e}", case.file.display()));
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    eprintln!(
        "bench: {} · {} (loaded in {load_ms:.0} ms)",
        case.file_quant, case.path
    );

    // Warmup: a short prefill and a few decode steps.
    let warm_tokens = if case.slow { 4 } else { 16 };
    run(&engine, prompt_of(tok, "Zulu", 64), warm_tokens);

    let mut tg = Vec::new();
    let mut generated = Vec::new();
    for _ in 0..reps {
        let s = run(&engine, DECODE_PROMPT.to_string(), TG);
        if s.generated_tokens != TG {
            eprintln!(
                "bench: warning: generated {} tokens, not {TG} ({:?})",
                s.generated_tokens, s.finish_reason
            );
        }
        generated.push(s.generated_tokens);
        tg.push(s.decode_tok_s);
    }
    let mut pp = Vec::new();
    for _ in 0..reps {
        let first = FIRST_WORDS[*word % FIRST_WORDS.len()];
        *word += 1;
        let s = run(&engine, prompt_of(tok, first, PP), 1);
        assert_eq!(s.prompt_tokens, PP, "the pp prompt must be {PP} tokens");
        assert_eq!(
            s.cached_tokens, 0,
            "the pp prompt must not reuse the KV cache"
        );
        pp.push(s.prefill_tok_s);
    }
    let row = Row {
        model: case
            .file
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default(),
        file_quant: case.file_quant.into(),
        path: case.path.into(),
        own_kernels: case.own_kernels,
        requantize: case.requantize,
        load_ms,
        notes: engine.info().notes.clone(),
        reps,
        pp512_tok_s: Measure::of(pp),
        tg128_tok_s: Measure::of(tg),
        tg_generated_tokens: generated,
    };
    eprintln!(
        "bench:   pp{PP} {} tok/s · tg{TG} {} tok/s",
        row.pp512_tok_s.cell(),
        row.tg128_tok_s.cell()
    );
    row
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported (the set is small).
    let started = Instant::now();
    let load_avg_at_start = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
    let cfg = Config::load(None).unwrap_or_else(|e| panic!("config: {e}"));
    let models = cfg.models_dir();
    let q41 = models.join(DEFAULT_MODEL_FILE);
    if !q41.is_file() {
        eprintln!(
            "bench: the default model {} is missing: run `bash scripts/fetch-models.sh` \
             (LMWB_MODELS_DIR picks the folder)",
            q41.display()
        );
        std::process::exit(1);
    }
    let q80 = default_output(&q41, GgmlDType::Q8_0);
    if !q80.is_file() {
        eprintln!("bench: writing the Q8_0 copy {}", q80.display());
        let r = requantize_gguf(&q41, &q80, GgmlDType::Q8_0)
            .unwrap_or_else(|e| panic!("requantizing: {e}"));
        eprintln!(
            "bench: {} tensors converted, {} kept, {:.0} MB",
            r.converted,
            r.kept,
            r.dst_bytes as f64 / 1e6
        );
    }
    let reps: usize = std::env::var("LMWB_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(3);
    let tok = tokenizer_of(&q41);

    let cases = [
        Case {
            file: q41.clone(),
            file_quant: "Q4_1",
            path: "lmwb kernels",
            own_kernels: true,
            requantize: false,
            slow: false,
        },
        Case {
            file: q41.clone(),
            file_quant: "Q4_1",
            path: "candle, requantized to Q8_0 at load",
            own_kernels: false,
            requantize: true,
            slow: false,
        },
        Case {
            file: q41.clone(),
            file_quant: "Q4_1",
            path: "candle, as stored",
            own_kernels: false,
            requantize: false,
            slow: true,
        },
        Case {
            file: q80.clone(),
            file_quant: "Q8_0",
            path: "lmwb kernels",
            own_kernels: true,
            requantize: false,
            slow: false,
        },
        Case {
            file: q80.clone(),
            file_quant: "Q8_0",
            path: "candle",
            own_kernels: false,
            requantize: false,
            slow: false,
        },
    ];
    let mut word = 0;
    let rows: Vec<Row> = cases
        .iter()
        .map(|c| bench(c, &tok, reps, &mut word))
        .collect();

    let mut table =
        format!("| model | path | pp{PP} tok/s | tg{TG} tok/s |\n|---|---|---:|---:|\n");
    for r in &rows {
        table.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            r.model,
            r.path,
            r.pp512_tok_s.cell(),
            r.tg128_tok_s.cell()
        ));
    }
    let cpu = cpu_name();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!();
    println!("{table}");
    println!("{cpu}, {threads} threads; mean ± sd over the repetitions (candle's Q4_1-as-stored path: fewer).");

    let unix_time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let report = Report {
        bench: "engine",
        unix_time,
        cpu,
        threads,
        load_avg_at_start,
        git_commit: git_commit(),
        pp_tokens: PP,
        tg_tokens: TG,
        total_s: started.elapsed().as_secs_f64(),
        rows,
        table,
    };
    let mut runs = cfg.runs_dir();
    if runs.is_relative() {
        runs = Path::new(env!("CARGO_MANIFEST_DIR")).join(runs);
    }
    let dir = runs.join("bench");
    let file = dir.join(format!("engine-{unix_time}.json"));
    let written = std::fs::create_dir_all(&dir).and_then(|_| {
        std::fs::write(
            &file,
            serde_json::to_string_pretty(&report).expect("serializable"),
        )
    });
    match written {
        Ok(()) => eprintln!(
            "bench: wrote {} ({:.0} s in all)",
            file.display(),
            report.total_s
        ),
        Err(e) => eprintln!("bench: cannot write {}: {e}", file.display()),
    }
}
