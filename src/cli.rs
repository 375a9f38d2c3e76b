//! Command-line interface (clap). `main.rs` dispatches; each command lives in `commands/`.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "lmwb",
    version,
    about = "A local-LLM workbench: chat, batch, bench and serve models from one binary"
)]
pub struct Cli {
    /// Config file (default: ~/.config/lmwb/config.toml when it exists).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// One generation, streamed to stdout; stats to stderr.
    Run(Box<RunArgs>),
    /// Headless batch: prompts × models → one Markdown file (+ JSON sidecar) each, resumable.
    Batch(Box<BatchArgs>),
    /// Prefill/decode speed (llama-bench), latency percentiles (vLLM), long-run KV-window checks.
    Bench(Box<BenchArgs>),
    /// OpenAI-, Anthropic- and Ollama-compatible HTTP server on the engine.
    Serve(Box<ServeArgs>),
    /// Local models: list, show, requantize, pull from the Hugging Face hub, rm.
    #[command(subcommand)]
    Models(ModelsCommand),
}

#[derive(Subcommand, Debug)]
pub enum ModelsCommand {
    /// Models on disk (configured folders, Hugging Face cache, LM Studio, Ollama): name,
    /// architecture, quantization, size, context, source.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Everything lmwb knows about one model: format, tokenizer, template, every path, and
    /// whether it fits in memory.
    Show {
        /// Model name (from `lmwb models list`) or path.
        model: String,
        /// Context length for the memory estimate (default: the configured max_kv_size when
        /// set, else the model's context).
        #[arg(long, value_name = "N")]
        ctx: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// Check a model's files: lengths against their headers, sha256 against the store's
    /// names for them. Exit 0 when every check passes, 1 when one fails.
    Verify {
        /// Model name (from `lmwb models list`) or path.
        model: String,
        #[arg(long)]
        json: bool,
    },
    /// Write a copy of a GGUF model with its weight matrices in another type (e.g. Q8_0).
    Requantize {
        /// Model name (from `lmwb models list`) or path to a .gguf file.
        model: String,
        /// Target type: q8_0, q4_0, q4_1, q5_0, q5_1, f16 or f32.
        #[arg(long, default_value = "q8_0")]
        to: String,
        /// Output file (default: beside the source, the quantization in its name replaced,
        /// e.g. X.Q4_1.gguf -> X.Q8_0.gguf).
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
    },
    /// Download from the Hugging Face hub into its cache (resumes an interrupted download).
    Pull(PullArgs),
    /// Remove a model `lmwb models pull` downloaded (nothing another tool put there).
    Rm(RmArgs),
}

/// `lmwb models pull REPO[:FILE]`.
#[derive(Args, Debug)]
pub struct PullArgs {
    /// ORG/NAME (picks a GGUF, or a safetensors model), ORG/NAME:FILE, or ORG/NAME:QUANT
    /// (e.g. :Q8_0).
    #[arg(value_name = "REPO[:FILE]")]
    pub spec: String,
    /// Branch, tag or commit.
    #[arg(long, default_value = "main")]
    pub revision: String,
    /// No network: only look in the Hugging Face cache (as HF_HUB_OFFLINE=1).
    #[arg(long)]
    pub offline: bool,
}

/// `lmwb models rm NAME`.
#[derive(Args, Debug)]
pub struct RmArgs {
    /// The name `lmwb models pull` printed, or ORG/NAME[:FILE].
    pub name: String,
    /// Do not ask for confirmation (needed when stdin is not a terminal).
    #[arg(short, long)]
    pub yes: bool,
}

/// Sampling flags and request limits, shared by every command that generates.
#[derive(Args, Debug, Clone, Default)]
pub struct SamplingArgs {
    #[arg(long, allow_negative_numbers = true)]
    pub temperature: Option<f32>,
    #[arg(long, allow_negative_numbers = true)]
    pub top_p: Option<f32>,
    /// 0 turns top-k off.
    #[arg(long)]
    pub top_k: Option<usize>,
    #[arg(long, allow_negative_numbers = true)]
    pub min_p: Option<f32>,
    #[arg(long, allow_negative_numbers = true)]
    pub repeat_penalty: Option<f32>,
    /// How many recent tokens the repeat penalty looks at.
    #[arg(long)]
    pub repeat_last_n: Option<usize>,
    #[arg(long, allow_negative_numbers = true)]
    pub presence_penalty: Option<f32>,
    #[arg(long, allow_negative_numbers = true)]
    pub frequency_penalty: Option<f32>,
    /// Same seed, same text.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Tokens to generate at most (0: until EOS or the context is full).
    #[arg(short = 'n', long)]
    pub max_tokens: Option<usize>,
    /// Stop at this string (never printed); repeatable.
    #[arg(long)]
    pub stop: Vec<String>,
    /// Keep at most N KV entries (first 4 kept, the rest rotating); 0: no window.
    #[arg(long)]
    pub max_kv_size: Option<usize>,
}

/// Where and how the engine runs.
#[derive(Args, Debug, Clone, Default)]
pub struct EngineArgs {
    /// cpu, cuda, cuda:N or metal.
    #[arg(long)]
    pub device: Option<String>,
    /// Run Q5_0/Q5_1 weights as stored on candle's slow CPU path instead of requantizing them to Q8_0.
    #[arg(long)]
    pub no_requantize: bool,
}

/// Flags shared by every command that generates.
#[derive(Args, Debug, Clone, Default)]
pub struct GenArgs {
    /// Model name (from `lmwb models list`) or path to a .gguf file / safetensors folder.
    #[arg(short = 'm', long)]
    pub model: Option<String>,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// System message (implies --chat).
    #[arg(long)]
    pub system: Option<String>,
    /// Apply the model's chat template.
    #[arg(long)]
    pub chat: bool,
    /// Use a built-in chat template (chatml, llama2, llama3, mistral, zephyr, gemma) instead of the model's (implies --chat).
    #[arg(long)]
    pub template: Option<String>,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Print one JSON record at the end instead of streaming text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub gen: GenArgs,
    /// The prompt; `-` or nothing reads it from standard input.
    pub prompt: Option<String>,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (loopback by default; 0.0.0.0 exposes the server to the network).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port (0 picks a free one; the address is printed on stderr).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Model name (from `lmwb models list`) or path (default: the configured one).
    #[arg(short = 'm', long)]
    pub model: Option<String>,
    /// Embedding model for /v1/embeddings and /api/embed: a name or path, `none` for no
    /// embeddings (default: `embedding_model` from the config, all-minilm-l6-v2).
    #[arg(long, value_name = "NAME")]
    pub embedding_model: Option<String>,
    /// Require `Authorization: Bearer KEY` (or `x-api-key`) on every route but /health.
    #[arg(long, env = "LMWB_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Allow browser requests from this origin (repeatable; `*` allows any).
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origin: Vec<String>,
    /// Generations running at once, decoded together in one batch (default: `max_batch`
    /// from the config, 8).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Requests that may wait while --concurrency generate; past that the server answers 429.
    #[arg(long, default_value_t = 16)]
    pub queue: usize,
    /// Most models loaded at once (others load on their first request; the least recently
    /// used idle one makes room). Default: `[server] max_models`, 3.
    #[arg(long, value_name = "N")]
    pub max_models: Option<usize>,
    /// Most weight bytes loaded at once, e.g. 8G or 512M (default: `[server]
    /// memory_budget`, or 80% of the memory).
    #[arg(long, value_name = "SIZE")]
    pub memory_budget: Option<String>,
    /// How long a model loaded on demand stays after its last request: 5m, 1h30m, 0
    /// (unload at once), -1 (for good). Default: `[server] ttl`, 5m.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub ttl: Option<String>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Args, Debug)]
pub struct BatchArgs {
    /// The prompt-set TOML file (see README, `lmwb batch`).
    pub file: PathBuf,
    /// Models to run, comma-separated (overrides `models` in the file).
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub models: Vec<String>,
    /// Sets the `text` variable (overrides [vars].text).
    #[arg(long, conflicts_with = "text_file", value_name = "S")]
    pub text: Option<String>,
    /// Sets the `text` variable from a file.
    #[arg(long, value_name = "FILE")]
    pub text_file: Option<PathBuf>,
    /// Output folder (default: <runs_dir>/batch/<name>).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print the plan (each item as run or skip) and exit without loading a model.
    #[arg(long)]
    pub dry_run: bool,
    /// Rerun every item, replacing what exists.
    #[arg(long)]
    pub force: bool,
    /// Also rerun items that failed before (those with an .error.txt).
    #[arg(long)]
    pub retry_errors: bool,
    /// Cancel an item that produced no token for this many seconds (it is recorded as failed).
    #[arg(long, default_value_t = 120.0, value_name = "SECS")]
    pub stall_timeout: f64,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// System message (overrides `system` in the file).
    #[arg(long)]
    pub system: Option<String>,
    /// Use a built-in chat template (chatml, llama2, llama3, mistral, zephyr, gemma) instead of the model's.
    #[arg(long)]
    pub template: Option<String>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// A `--max-kv-size` value: a number of entries, or `none` / `0` for no window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window(pub Option<usize>);

impl std::str::FromStr for Window {
    type Err = String;
    fn from_str(s: &str) -> Result<Window, String> {
        crate::bench::long::parse_window(s).map(Window)
    }
}

/// `lmwb bench`: flag names follow llama-bench (`-p -n -r -d`) and vLLM where they exist.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Model name or path; repeat for several models side by side (default: the configured one).
    #[arg(short = 'm', long)]
    pub model: Vec<String>,
    /// pp test prompt sizes in tokens (comma list; 0 skips pp); latency mode's input length.
    #[arg(
        short = 'p',
        long = "n-prompt",
        value_delimiter = ',',
        default_value = "512"
    )]
    pub n_prompt: Vec<usize>,
    /// tg test generation sizes in tokens (comma list; 0 skips tg); latency mode's output length.
    #[arg(
        short = 'n',
        long = "n-gen",
        value_delimiter = ',',
        default_value = "128"
    )]
    pub n_gen: Vec<usize>,
    /// Timed repetitions of each test (after one warmup).
    #[arg(short = 'r', long, default_value_t = 5)]
    pub repetitions: usize,
    /// Tokens cached before each test (comma list): `pp512 @ d512`.
    #[arg(
        short = 'd',
        long = "n-depth",
        value_delimiter = ',',
        default_value = "0"
    )]
    pub n_depth: Vec<usize>,
    /// Latency mode (vLLM metrics): TTFT, TPOT, ITL, E2E over --requests requests.
    #[arg(long)]
    pub latency: bool,
    /// Requests in latency mode (vLLM's --num-prompts).
    #[arg(long, alias = "num-prompts", default_value_t = 10)]
    pub requests: usize,
    /// Long mode: one long run per value (repeatable or a comma list; `none` or 0: no
    /// window). An unwindowed run is always measured beside the windowed ones.
    #[arg(long = "max-kv-size", value_name = "N|none", value_delimiter = ',')]
    pub max_kv_size: Vec<Window>,
    /// Tokens each long run generates.
    #[arg(long, default_value_t = 4096)]
    pub gen_tokens: usize,
    /// Long runs: tokens per tok/s and RSS sample.
    #[arg(long, default_value_t = 128)]
    pub block: usize,
    /// Concurrency mode: for each N (comma list, e.g. 1,2,4,8), N streams at once, each a
    /// 16-token random prompt generating the first --n-gen size; aggregate and per-stream
    /// tok/s, speedup over N = 1.
    #[arg(long, value_delimiter = ',', value_name = "N,...")]
    pub concurrency: Vec<usize>,
    /// Also run the pp/tg tests when --latency, --concurrency or --max-kv-size is given.
    #[arg(long)]
    pub standard: bool,
    /// Seed of the random prompt tokens (sampling is greedy).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output folder (default: <runs_dir>/bench/<timestamp>-<model>/).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// cpu, cuda, cuda:N or metal.
    #[arg(long)]
    pub device: Option<String>,
    /// Print results.json to stdout (progress stays on stderr).
    #[arg(long)]
    pub json: bool,
}
