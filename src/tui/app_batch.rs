//! The Batch tab's actions and messages: plan a prompt set, run it on a thread through
//! the same runner `lmwb batch` uses, pause, cancel, retry, open an output.

use super::action::BatchAction;
use super::app::{App, Msg};
use super::batch::{self, BatchMsg, ItemState, OutputView, RunControl};
use super::complete;
use super::field::FieldTarget;
use crate::batch::plan::ModelRef;
use crate::batch::runner::{self, Outcome, Progress, RunOptions};
use crate::chat::transcript::Turn;
use crate::client::GenerationClient;
use crate::engine::{CancelToken, EngineError};
use std::collections::HashMap;

impl App {
    pub(super) fn batch_action(&mut self, a: BatchAction) {
        if self.batch.view.is_some() {
            match a {
                BatchAction::Prev => return self.batch_scroll(-1),
                BatchAction::Next => return self.batch_scroll(1),
                BatchAction::View | BatchAction::Close => {
                    self.batch.view = None;
                    return;
                }
                _ => self.batch.view = None,
            }
        }
        match a {
            BatchAction::Open => {
                let text = self
                    .batch
                    .path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                self.open_field(
                    FieldTarget::BatchPath,
                    "Prompt set (TOML; tab completes)",
                    &text,
                );
            }
            BatchAction::Run => self.batch_start(false),
            BatchAction::Retry => self.batch_start(true),
            BatchAction::Pause => match &self.batch.run {
                Some(r) => {
                    r.pause.cancel();
                    self.batch.status = Some("pausing after the current item (r resumes)".into());
                }
                None => self.batch.status = Some("nothing is running".into()),
            },
            BatchAction::Cancel => match &self.batch.run {
                Some(r) => {
                    r.interrupt.cancel();
                    self.batch.status = Some(
                        "cancelling: the current item is dropped, nothing of it is written".into(),
                    );
                }
                None => self.batch.status = Some("nothing is running".into()),
            },
            BatchAction::Prev => self.batch.select(-1),
            BatchAction::Next => self.batch.select(1),
            BatchAction::View => self.batch_open_output(),
            BatchAction::Close => {}
        }
    }

    fn batch_scroll(&mut self, n: i32) {
        if let Some(v) = &mut self.batch.view {
            v.scroll = (v.scroll as i64 + n as i64).max(0) as usize;
        }
    }

    pub(super) fn batch_wheel(&mut self, n: i32) {
        if self.batch.view.is_some() {
            self.batch_scroll(n);
        } else {
            self.batch.select(n.signum());
        }
    }

    /// The prompt-set path was entered: plan it.
    pub(super) fn batch_field(&mut self, text: String) {
        if text.is_empty() {
            return;
        }
        if self.batch.busy() {
            self.batch.status =
                Some("a batch is running: cancel it (x) before opening another set".into());
            return;
        }
        let path = crate::config::expand_home(&text);
        self.batch.path = Some(path.clone());
        self.batch_replan(false);
    }

    /// Plan the prompt set again from what is on disk now; false when it cannot be planned.
    fn batch_replan(&mut self, retry_errors: bool) -> bool {
        let Some(path) = self.batch.path.clone() else {
            self.batch.error = Some("no prompt set: press o and type its path".into());
            return false;
        };
        match batch::plan(&path, &self.config, &self.models, retry_errors) {
            Ok(plan) => {
                self.batch.set_plan(path, plan);
                true
            }
            Err(e) => {
                self.batch.plan = None;
                self.batch.states.clear();
                self.batch.error = Some(e);
                false
            }
        }
    }

    pub(super) fn batch_complete(&mut self) {
        if let Some(f) = &mut self.field {
            let (text, names) = complete::complete_path(f.text());
            f.hint = (names.is_empty() && text == f.text())
                .then(|| "no folder or .toml file matches".to_string());
            f.input.set(&text);
            f.candidates = names;
        }
    }

    /// Run the plan (`retry`: with the failed items rerun) on a thread.
    fn batch_start(&mut self, retry: bool) {
        if self.batch.busy() {
            self.batch.status = Some("the batch is already running".into());
            return;
        }
        if !self.batch_replan(retry) {
            return;
        }
        let plan = self.batch.plan.clone().expect("just planned");
        if plan.to_run() == 0 {
            let why = if self.batch.failed() > 0 {
                "nothing to run: every output exists or failed before (f retries the failed ones)"
            } else {
                "nothing to run: every output exists (delete one to run it again)"
            };
            self.batch.status = Some(why.into());
            return;
        }
        let interrupt = CancelToken::default();
        let pause = CancelToken::default();
        self.batch.run = Some(RunControl {
            interrupt: interrupt.clone(),
            pause: pause.clone(),
            loading: None,
        });
        self.batch.status = Some(format!("running {} item(s)", plan.to_run()));
        self.batch.live = None;
        let opts = RunOptions {
            interrupt,
            pause,
            ..RunOptions::default()
        };
        // The model in use is shared, not loaded twice.
        let shared = self.client.clone().and_then(|c| {
            let active = self.models.active.as_ref()?;
            let row = self.models.rows.iter().find(|r| &r.name == active)?;
            Some((row.target(), c))
        });
        let loader = self.loader.clone();
        let runs_dir = self.config.runs_dir();
        let tx = self.tx.clone();
        std::thread::spawn(move || {
            let index: HashMap<&str, usize> = plan
                .items
                .iter()
                .enumerate()
                .map(|(i, it)| (it.stem.as_str(), i))
                .collect();
            let send = |m: BatchMsg| {
                let _ = tx.send(Msg::Batch(m));
            };
            let mut load = |m: &ModelRef| -> Result<Box<dyn GenerationClient>, EngineError> {
                if let Some((target, client)) = &shared {
                    if *target == m.target {
                        return Ok(Box::new(client.clone()));
                    }
                }
                let c = loader.open(&m.target).map_err(EngineError::Backend)?;
                Ok(Box::new(c))
            };
            let result = runner::run(&plan, &mut load, &opts, &mut |p| match p {
                Progress::Loading { model, .. } => send(BatchMsg::Loading {
                    model: model.name.clone(),
                }),
                Progress::Loaded { model, load_ms } => send(BatchMsg::Loaded {
                    model: model.name.clone(),
                    ms: load_ms,
                }),
                Progress::LoadFailed { model, error } => send(BatchMsg::LoadFailed {
                    model: model.name.clone(),
                    error: error.to_string(),
                }),
                Progress::ItemStart { item, .. } => send(BatchMsg::Start {
                    index: index[item.stem.as_str()],
                }),
                Progress::Tokens { tokens, text } => send(BatchMsg::Token {
                    text: text.to_string(),
                    tokens,
                }),
                Progress::ItemEnd {
                    item,
                    model,
                    outcome,
                    ms,
                    ..
                } => {
                    if let Outcome::Done(stats) = outcome {
                        crate::artifacts::record_batch_item(&runs_dir, model, item, stats, true);
                    }
                    send(BatchMsg::End {
                        index: index[item.stem.as_str()],
                        outcome: outcome.clone(),
                        ms,
                    })
                }
            });
            send(BatchMsg::Finished(result.map_err(|e| e.to_string())));
        });
    }

    pub(super) fn on_batch(&mut self, m: BatchMsg) {
        let b = &mut self.batch;
        match m {
            BatchMsg::Loading { model } => {
                if let Some(r) = &mut b.run {
                    r.loading = Some(model);
                }
            }
            BatchMsg::Loaded { model, ms } => {
                if let Some(r) = &mut b.run {
                    r.loading = None;
                }
                b.status = Some(format!("{model} ready in {:.2} s", ms / 1e3));
            }
            BatchMsg::LoadFailed { model, error } => {
                if let Some(r) = &mut b.run {
                    r.loading = None;
                }
                b.status = Some(format!("{model}: {error}"));
            }
            BatchMsg::Start { index } => {
                if let Some(s) = b.states.get_mut(index) {
                    *s = ItemState::Running { tokens: 0 };
                }
                b.live = Some((index, Turn::assistant()));
            }
            BatchMsg::Token { text, tokens } => {
                // The gauges show whatever is generating: the chat, or the batch.
                self.gauges.token(std::time::Instant::now());
                if let Some((i, turn)) = &mut b.live {
                    turn.push_token(&text);
                    if let Some(s) = b.states.get_mut(*i) {
                        *s = ItemState::Running { tokens };
                    }
                }
            }
            BatchMsg::End { index, outcome, ms } => {
                let state = match &outcome {
                    Outcome::Done(stats) => {
                        self.gauges.last_ttft_ms = Some(stats.ttft_ms);
                        self.gauges.last_prefill_tok_s = Some(stats.prefill_tok_s);
                        self.gauges.last_decode_tok_s = Some(stats.decode_tok_s);
                        ItemState::Done {
                            tokens: stats.generated_tokens,
                            ms,
                            tok_s: stats.decode_tok_s,
                        }
                    }
                    Outcome::Failed(e) => ItemState::Failed {
                        error: e.clone(),
                        before: false,
                    },
                };
                if let Some(s) = b.states.get_mut(index) {
                    *s = state;
                }
                if let Some((i, turn)) = &mut b.live {
                    if *i == index {
                        match outcome {
                            Outcome::Done(stats) => turn.finish(Some(stats), None),
                            Outcome::Failed(e) => turn.finish(None, Some(e)),
                        }
                    }
                }
            }
            BatchMsg::Finished(result) => {
                b.run = None;
                for s in &mut b.states {
                    if matches!(s, ItemState::Queued | ItemState::Running { .. }) {
                        *s = ItemState::NotRun;
                    }
                }
                if let Some((_, turn)) = &mut b.live {
                    if turn.streaming {
                        turn.stopped = true;
                        turn.finish(None, None);
                    }
                }
                b.status = Some(match result {
                    Err(e) => format!("the run stopped: {e}"),
                    Ok(s) => {
                        let out = b
                            .plan
                            .as_ref()
                            .map(|p| p.out_dir.display().to_string())
                            .unwrap_or_default();
                        let how = if s.interrupted {
                            "cancelled"
                        } else if s.paused {
                            "paused (r resumes)"
                        } else {
                            "finished"
                        };
                        format!(
                            "{how} in {:.1} s: {} done, {} skipped, {} failed, {} not run · outputs in {out}",
                            s.elapsed.as_secs_f64(),
                            s.done(),
                            s.skipped(),
                            s.failed(),
                            s.not_run()
                        )
                    }
                });
            }
        }
    }

    /// Enter: the selected item's output, rendered as the chat renders a reply.
    fn batch_open_output(&mut self) {
        let Some(plan) = &self.batch.plan else {
            self.batch.error = Some("no prompt set: press o and type its path".into());
            return;
        };
        let i = self.batch.selected;
        let Some(item) = plan.items.get(i) else {
            return;
        };
        let title = format!("{}.md", item.stem);
        let live = matches!(&self.batch.live, Some((j, t)) if *j == i && t.streaming);
        let turn = if live {
            None
        } else if let Ok(md) = std::fs::read_to_string(&item.files.md) {
            let raw = crate::batch::output::raw_from_markdown(&md);
            let stats = match (&self.batch.live, &self.batch.states[i]) {
                (Some((j, t)), ItemState::Done { .. }) if *j == i => t.stats.clone(),
                _ => None,
            };
            Some(Turn::assistant_from(&raw, stats, None))
        } else if let Ok(err) = std::fs::read_to_string(&item.files.error) {
            Some(Turn::assistant_from("", None, Some(err.trim().to_string())))
        } else {
            self.batch.status = Some(format!(
                "{title} has no output yet ({})",
                self.batch.states[i].label()
            ));
            return;
        };
        self.batch.view = Some(OutputView {
            title,
            path: item.files.md.clone(),
            turn,
            scroll: 0,
        });
    }

    /// The workbench quits: cancel a running batch (nothing partial is written).
    pub(super) fn batch_quit(&mut self) {
        if let Some(r) = &self.batch.run {
            r.interrupt.cancel();
        }
    }
}
