//! Runs a [`Plan`] against any [`GenerationClient`]: grouped by model (each loaded once, in
//! the order given), a no-progress watchdog per item, a run-wide interrupt (Ctrl-C), and
//! every output written atomically. A failed item leaves `<stem>.error.txt` and the run
//! goes on; an interrupted item leaves nothing.

use super::output::{self, ItemFiles, ModelRecord, ParamsRecord, PromptRecord, Sidecar};
use super::plan::{Action, Item, ModelRef, Plan};
use crate::client::GenerationClient;
use crate::engine::sampler::SamplingParams;
use crate::engine::{CancelToken, EngineError, Event, FinishReason, Stats};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long an interrupted or stalled generation gets to acknowledge its cancellation.
const CANCEL_GRACE: Duration = Duration::from_secs(10);

/// Loads a model for the run; the CLI loads it in-process, tests hand out fakes.
pub type Loader<'a> = dyn FnMut(&ModelRef) -> Result<Box<dyn GenerationClient>, EngineError> + 'a;

#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Cancel an item that produced no token for this long and record it as failed.
    pub stall_timeout: Duration,
    /// Cancelled (Ctrl-C): the current item is cancelled, nothing of it is written, the run
    /// stops.
    pub interrupt: CancelToken,
    /// Cancelled: the current item finishes and is written, then the run stops (a pause;
    /// running the plan again goes on where it stopped, as every output is skipped).
    pub pause: CancelToken,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            stall_timeout: Duration::from_secs(120),
            interrupt: CancelToken::default(),
            pause: CancelToken::default(),
        }
    }
}

/// Writing outputs failed: the run cannot go on.
#[derive(thiserror::Error, Debug)]
#[error("cannot write {}: {why}; check the folder exists and is writable (--out DIR picks another)", path.display())]
pub struct RunError {
    pub path: PathBuf,
    pub why: String,
}

fn write_err(path: &std::path::Path) -> impl Fn(std::io::Error) -> RunError + '_ {
    move |e| RunError {
        path: path.to_path_buf(),
        why: e.to_string(),
    }
}

/// What happened to one item.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Done(Stats),
    Failed(String),
}

/// What the runner reports as it goes (for a progress bar, log lines or the TUI).
pub enum Progress<'a> {
    Loading {
        model: &'a ModelRef,
        items: usize,
    },
    Loaded {
        model: &'a ModelRef,
        load_ms: f64,
    },
    LoadFailed {
        model: &'a ModelRef,
        error: &'a str,
    },
    /// Item `k` of `n` (counting only items that run) starts.
    ItemStart {
        k: usize,
        n: usize,
        item: &'a Item,
        model: &'a ModelRef,
    },
    /// The current item has produced `tokens` tokens, the last one `text`.
    Tokens {
        tokens: usize,
        text: &'a str,
    },
    ItemEnd {
        k: usize,
        n: usize,
        item: &'a Item,
        model: &'a ModelRef,
        outcome: &'a Outcome,
        ms: f64,
    },
}

/// Per-model counts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelSummary {
    pub name: String,
    /// `None`: not loaded (nothing to run, or loading failed).
    pub load_ms: Option<f64>,
    pub done: usize,
    pub skipped: usize,
    pub failed: usize,
    /// Left undone by an interrupt.
    pub not_run: usize,
}

#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub models: Vec<ModelSummary>,
    /// `(output stem, error)` of every failed item.
    pub failures: Vec<(String, String)>,
    pub elapsed: Duration,
    pub interrupted: bool,
    /// Stopped by [`RunOptions::pause`] between two items.
    pub paused: bool,
}

impl Summary {
    fn sum(&self, f: impl Fn(&ModelSummary) -> usize) -> usize {
        self.models.iter().map(f).sum()
    }
    pub fn done(&self) -> usize {
        self.sum(|m| m.done)
    }
    pub fn skipped(&self) -> usize {
        self.sum(|m| m.skipped)
    }
    pub fn failed(&self) -> usize {
        self.sum(|m| m.failed)
    }
    pub fn not_run(&self) -> usize {
        self.sum(|m| m.not_run)
    }
    pub fn models_loaded(&self) -> usize {
        self.models.iter().filter(|m| m.load_ms.is_some()).count()
    }
}

enum ItemError {
    Interrupted,
    /// The item failed; `gone` when the model no longer answers (its other items fail too).
    Failed {
        why: String,
        gone: bool,
    },
}

/// Wait for the end of a cancelled generation; false when it never came.
fn drain(events: &Receiver<Event>, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(Event::Done(_) | Event::Error(_)) | Err(RecvTimeoutError::Disconnected) => {
                return true
            }
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => return false,
        }
    }
}

fn generate(
    client: &dyn GenerationClient,
    item: &Item,
    opts: &RunOptions,
    on: &mut dyn FnMut(Progress),
) -> Result<(String, Stats), ItemError> {
    let g = client.generate(item.settings.request(&item.prompt));
    let tick = Duration::from_millis(50).min(opts.stall_timeout);
    let mut last = Instant::now();
    let mut text = String::new();
    let mut tokens = 0;
    loop {
        if opts.interrupt.is_cancelled() {
            g.cancel.cancel();
            drain(&g.events, CANCEL_GRACE);
            return Err(ItemError::Interrupted);
        }
        if last.elapsed() >= opts.stall_timeout {
            g.cancel.cancel();
            let ended = drain(&g.events, CANCEL_GRACE);
            return Err(ItemError::Failed {
                why: format!(
                    "stalled: no token for {:.1} s, cancelled by the watchdog (--stall-timeout {})",
                    opts.stall_timeout.as_secs_f64(),
                    opts.stall_timeout.as_secs_f64()
                ),
                gone: !ended,
            });
        }
        match g.events.recv_timeout(tick) {
            Ok(Event::Started { .. }) | Err(RecvTimeoutError::Timeout) => {}
            Ok(Event::Token { text: t, .. }) => {
                text.push_str(&t);
                tokens += 1;
                last = Instant::now();
                on(Progress::Tokens { tokens, text: &t });
            }
            Ok(Event::Text(t)) => text.push_str(&t),
            Ok(Event::Done(stats)) if stats.finish_reason == FinishReason::Cancelled => {
                return Err(ItemError::Failed {
                    why: "the generation was cancelled by its backend".into(),
                    gone: false,
                })
            }
            Ok(Event::Done(stats)) => return Ok((text, stats)),
            Ok(Event::Error(e)) => {
                return Err(ItemError::Failed {
                    gone: matches!(e, EngineError::Gone),
                    why: e.to_string(),
                })
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(ItemError::Failed {
                    why: EngineError::Gone.to_string(),
                    gone: true,
                })
            }
        }
    }
}

fn write_error(plan: &Plan, item: &Item, files: &ItemFiles, why: &str) -> Result<(), RunError> {
    let m = &plan.models[item.model];
    let text = format!(
        "{why}\n\nprompt: {}\nmodel: {} ({})\nat: {}\n",
        item.prompt_name,
        m.name,
        m.target.location(),
        output::now_rfc3339()
    );
    output::atomic_write(&files.error, text.as_bytes()).map_err(write_err(&files.error))
}

fn sidecar(
    plan: &Plan,
    item: &Item,
    model: ModelRecord,
    stats: &Stats,
    split: &crate::chat::reasoning::Split,
    started_at: String,
) -> Sidecar {
    let s = &item.settings;
    Sidecar {
        lmwb_version: env!("CARGO_PKG_VERSION"),
        set: plan.name.clone(),
        output: format!("{}.md", item.stem),
        prompt: PromptRecord {
            name: item.prompt_name.clone(),
            parts: item.parts.clone(),
            system: s.system.clone(),
            rendered: item.prompt.clone(),
            template: s.template.clone(),
        },
        model,
        params: ParamsRecord {
            sampling: SamplingParams {
                seed: Some(stats.seed),
                ..s.sampling.clone()
            },
            seed_given: s.sampling.seed.is_some(),
            max_tokens: s.max_tokens,
            max_kv_size: s.max_kv_size,
            stop: s.stop.clone(),
        },
        stats: stats.into(),
        reasoning: !split.reasoning.is_empty(),
        reasoning_unclosed: split.unclosed,
        started_at,
        finished_at: output::now_rfc3339(),
    }
}

/// Run every item of `plan` marked [`Action::Run`], loading each model through `load` once.
pub fn run(
    plan: &Plan,
    load: &mut Loader,
    opts: &RunOptions,
    on: &mut dyn FnMut(Progress),
) -> Result<Summary, RunError> {
    let t0 = Instant::now();
    std::fs::create_dir_all(&plan.out_dir).map_err(write_err(&plan.out_dir))?;
    output::remove_stale_temps(&plan.out_dir);
    let n = plan.to_run();
    let mut k = 0;
    let mut summary = Summary::default();
    for (mi, model) in plan.models.iter().enumerate() {
        let items: Vec<&Item> = plan.items.iter().filter(|i| i.model == mi).collect();
        let todo: Vec<&Item> = items
            .iter()
            .copied()
            .filter(|i| i.action == Action::Run)
            .collect();
        let mut ms = ModelSummary {
            name: model.name.clone(),
            skipped: items.len() - todo.len(),
            ..ModelSummary::default()
        };
        if todo.is_empty() {
            summary.models.push(ms);
            continue;
        }
        if opts.interrupt.is_cancelled() || opts.pause.is_cancelled() {
            summary.interrupted |= opts.interrupt.is_cancelled();
            summary.paused |= !summary.interrupted;
            ms.not_run = todo.len();
            summary.models.push(ms);
            continue;
        }
        on(Progress::Loading {
            model,
            items: todo.len(),
        });
        let t = Instant::now();
        let (client, mut gone) = match load(model) {
            Ok(c) => (Some(c), None),
            Err(e) => {
                let why = format!("loading the model failed: {e}");
                on(Progress::LoadFailed { model, error: &why });
                (None, Some(why))
            }
        };
        let load_ms = t.elapsed().as_secs_f64() * 1e3;
        let model_record = client.as_ref().map(|_| {
            on(Progress::Loaded { model, load_ms });
            ms.load_ms = Some(load_ms);
            ModelRecord {
                name: model.name.clone(),
                path: model.target.location().into(),
                sha256: model.path().and_then(|p| output::model_sha256(p).ok()),
                transport: model.target.transport(),
                load_ms,
            }
        });
        for item in todo {
            if opts.interrupt.is_cancelled() || opts.pause.is_cancelled() {
                summary.interrupted |= opts.interrupt.is_cancelled();
                summary.paused |= !summary.interrupted;
                ms.not_run += 1;
                continue;
            }
            k += 1;
            on(Progress::ItemStart { k, n, item, model });
            let t = Instant::now();
            let started_at = output::now_rfc3339();
            let result = match (&client, &gone) {
                (Some(c), None) => generate(c.as_ref(), item, opts, on),
                (_, Some(why)) => Err(ItemError::Failed {
                    why: why.clone(),
                    gone: true,
                }),
                (None, None) => unreachable!("no client means a load error"),
            };
            let outcome = match result {
                Ok((text, stats)) => {
                    let (md, split) = output::markdown(&text);
                    let rec = model_record.clone().expect("a loaded model");
                    let sc = sidecar(plan, item, rec, &stats, &split, started_at);
                    output::write_done(&item.files, &md, &sc).map_err(write_err(&item.files.md))?;
                    ms.done += 1;
                    Outcome::Done(stats)
                }
                Err(ItemError::Interrupted) => {
                    summary.interrupted = true;
                    ms.not_run += 1;
                    k -= 1;
                    continue;
                }
                Err(ItemError::Failed { why, gone: g }) => {
                    if g && gone.is_none() {
                        gone = Some(format!("not run: the model stopped responding ({why})"));
                    }
                    write_error(plan, item, &item.files, &why)?;
                    ms.failed += 1;
                    summary.failures.push((item.stem.clone(), why.clone()));
                    Outcome::Failed(why)
                }
            };
            let ms_item = t.elapsed().as_secs_f64() * 1e3;
            on(Progress::ItemEnd {
                k,
                n,
                item,
                model,
                outcome: &outcome,
                ms: ms_item,
            });
        }
        summary.models.push(ms);
        // `client` drops here: the model is unloaded before the next one loads.
    }
    summary.elapsed = t0.elapsed();
    Ok(summary)
}

#[cfg(test)]
#[path = "runner_tests.rs"]
mod tests;
