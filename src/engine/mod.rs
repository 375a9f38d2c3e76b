//! The in-process engine: model forward, KV cache, sampling, tokenizer, chat templates.
//!
//! The engine runs on its own thread behind a cloneable [`EngineHandle`]. Each request
//! carries its own event channel; load failures come back through a ready handshake.

pub mod constrain;
pub mod detok;
pub mod embed;
pub mod error;
pub(crate) mod fast;
pub mod kernels;
pub mod kv;
pub mod logprobs;
pub mod model;
mod pool;
mod prompt;
pub mod request;
pub mod sampler;
mod scheduler;
mod sequence;
pub mod stop;
pub mod template;
pub mod tokenizer;
pub mod tool_prompt;

use candle_core::Device;
pub use error::{EngineError, LoadError};
use model::{LoadOptions, ModelInfo};
pub use request::{CancelToken, ChatOptions, Event, FinishReason, GenerateRequest, Prompt, Stats};
use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;

/// How the engine loads and runs its model.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    pub load: LoadOptions,
    /// Largest number of prompt tokens fed to the model in one forward step (all the
    /// sequences prefilling in that step together; the oldest one always gets its chunk).
    pub prefill_chunk: usize,
    /// Most sequences decoded together (continuous batching); more requests wait in
    /// arrival order. Also how many idle KV caches are kept for prefix reuse.
    pub max_batch: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            load: LoadOptions::default(),
            prefill_chunk: 256,
            max_batch: 8,
        }
    }
}

/// Parse `cpu`, `cuda`, `cuda:N` or `metal` into a candle device.
pub fn parse_device(spec: &str) -> Result<Device, LoadError> {
    let err = |why: String| LoadError::Device {
        device: spec.to_string(),
        why,
    };
    let (kind, index) = match spec.split_once(':') {
        Some((k, i)) => (
            k,
            i.parse::<usize>()
                .map_err(|_| err(format!("`{i}` is not a device number")))?,
        ),
        None => (spec, 0),
    };
    match kind {
        "cpu" => Ok(Device::Cpu),
        "cuda" if !candle_core::utils::cuda_is_available() => {
            Err(err("this lmwb was built without CUDA; rebuild with `cargo build --release --features cuda`".into()))
        }
        "metal" if !candle_core::utils::metal_is_available() => {
            Err(err("this lmwb was built without Metal; rebuild with `cargo build --release --features metal`".into()))
        }
        "cuda" => Device::new_cuda(index).map_err(|e| err(error::candle_msg(&e))),
        "metal" => Device::new_metal(index).map_err(|e| err(error::candle_msg(&e))),
        other => Err(err(format!("unknown device kind `{other}`; use cpu, cuda, cuda:N or metal"))),
    }
}

/// What handles send the engine thread.
enum Command {
    Generate {
        req: Box<GenerateRequest>,
        events: mpsc::Sender<Event>,
        cancel: CancelToken,
    },
}

/// A running generation: its events and a way to stop it.
pub struct Generation {
    pub events: mpsc::Receiver<Event>,
    pub cancel: CancelToken,
}

/// A cloneable handle to the engine thread that owns one loaded model.
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::Sender<Command>,
    info: Arc<ModelInfo>,
    chat_template: Option<Arc<str>>,
}

/// Give the memory freed after a load (GGUF metadata, vocabulary lists: tens of MB for a
/// large vocabulary) back to the system, so the process's RSS is the mapped weights, the
/// tokenizer and the KV caches. glibc keeps freed heap otherwise.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: malloc_trim only returns unused heap pages; it takes no pointers.
        unsafe { malloc_trim(0) };
    }
}

impl EngineHandle {
    /// Load the model on a new engine thread; returns once it is ready or failed.
    pub fn load(path: &Path, opts: EngineOptions) -> Result<EngineHandle, EngineError> {
        let (tx, rx) = mpsc::channel::<Command>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let path = path.to_path_buf();
        std::thread::Builder::new()
            .name("lmwb-engine".into())
            .spawn(move || {
                let loaded = match model::load(&path, &opts.load) {
                    Ok(m) => m,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                release_freed_memory();
                let template = loaded.chat_template.as_deref().map(Arc::<str>::from);
                let _ = ready_tx.send(Ok((loaded.info.clone(), template)));
                scheduler::Scheduler::new(loaded, opts).run(rx);
            })
            .map_err(|e| {
                EngineError::Load(LoadError::Io {
                    path: "engine thread".into(),
                    why: e.to_string(),
                })
            })?;
        let (info, chat_template) = ready_rx.recv().map_err(|_| EngineError::Gone)??;
        Ok(EngineHandle {
            tx,
            info: Arc::new(info),
            chat_template,
        })
    }

    /// What was loaded.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The model's own chat template source, when it ships one.
    pub fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }

    /// Queue a generation; events arrive on the returned receiver.
    pub fn generate(&self, req: GenerateRequest) -> Generation {
        let (events_tx, events) = mpsc::channel();
        let cancel = CancelToken::default();
        let cmd = Command::Generate {
            req: Box::new(req),
            events: events_tx.clone(),
            cancel: cancel.clone(),
        };
        if self.tx.send(cmd).is_err() {
            let _ = events_tx.send(Event::Error(EngineError::Gone));
        }
        Generation { events, cancel }
    }
}

/// The text and stats of a finished generation (see [`Generation::collect`]).
#[derive(Debug)]
pub struct Output {
    pub text: String,
    pub token_ids: Vec<u32>,
    pub stats: Stats,
}

impl Generation {
    /// Wait for the end, calling `on_text` for each piece of text as it streams.
    pub fn collect_with(self, mut on_text: impl FnMut(&str)) -> Result<Output, EngineError> {
        let mut text = String::new();
        let mut token_ids = Vec::new();
        for ev in self.events.iter() {
            match ev {
                Event::Started { .. } => {}
                Event::Token {
                    id, text: piece, ..
                } => {
                    token_ids.push(id);
                    on_text(&piece);
                    text.push_str(&piece);
                }
                Event::Text(piece) => {
                    on_text(&piece);
                    text.push_str(&piece);
                }
                Event::Done(stats) => {
                    return Ok(Output {
                        text,
                        token_ids,
                        stats,
                    })
                }
                Event::Error(e) => return Err(e),
            }
        }
        Err(EngineError::Gone)
    }

    /// Wait for the end and return everything.
    pub fn collect(self) -> Result<Output, EngineError> {
        self.collect_with(|_| {})
    }
}
