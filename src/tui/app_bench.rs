//! The Bench tab's actions and messages. A run goes through
//! [`crate::bench::session::run`] on a background thread, as `lmwb bench` runs it; the
//! loaded model is benchmarked through the client the workbench already holds.

use super::action::BenchAction;
use super::app::{App, Msg};
use super::bench::{BenchMsg, FieldId, Outcome, Row};
use super::field::FieldTarget;
use super::loader::{ModelLoader, ModelRow};
use crate::bench::provenance::ModelMeta;
use crate::bench::session::{self, BenchModel, Opened, OutDir};
use crate::bench::{BenchError, Progress};
use crate::client::GenerationClient;
use crate::engine::CancelToken;
use std::sync::Arc;
use std::time::Instant;

impl App {
    pub(super) fn bench_action(&mut self, a: BenchAction) {
        let rows = self.bench.form.rows(self.models.rows.len());
        let sel = self.bench.sel.min(rows.len().saturating_sub(1));
        self.bench.sel = sel;
        let row = rows.get(sel).copied();
        match a {
            BenchAction::Prev => self.bench.sel = sel.saturating_sub(1),
            BenchAction::Next => self.bench.sel = (sel + 1).min(rows.len().saturating_sub(1)),
            BenchAction::Toggle => {
                if let Some(Row::Model(i)) = row {
                    self.bench_toggle(i)
                }
            }
            BenchAction::Edit => match row {
                Some(Row::Model(i)) => self.bench_toggle(i),
                Some(Row::Mode) => self.bench_mode(),
                Some(Row::Field(f)) => self.bench_open_field(f, &self.bench.form.text(f), None),
                None => {}
            },
            BenchAction::Mode => self.bench_mode(),
            BenchAction::Run => self.bench_run(),
            BenchAction::Cancel => self.bench.cancel(),
        }
    }

    pub(super) fn on_bench(&mut self, m: BenchMsg) {
        self.bench.on(m);
    }

    /// A form field's new text: kept when it parses, else the field opens again with the
    /// parser's error under it.
    pub(super) fn bench_field(&mut self, i: u8, text: String) {
        let Some(f) = FieldId::from_index(i) else {
            return;
        };
        if let Err(e) = self.bench.form.set(f, &text) {
            self.bench_open_field(f, &text, Some(e));
        }
    }

    /// The workbench quits: cancel a running benchmark.
    pub(super) fn bench_quit(&mut self) {
        self.bench.cancel();
    }

    fn bench_open_field(&mut self, f: FieldId, text: &str, error: Option<String>) {
        let title = f.title(self.bench.form.mode);
        self.open_field(FieldTarget::Bench(f as u8), title, text);
        if let Some(field) = &mut self.field {
            field.hint = Some(error.unwrap_or_else(|| f.hint().to_string()));
        }
    }

    fn bench_toggle(&mut self, i: usize) {
        if let Some(name) = self.models.rows.get(i).map(|r| r.name.clone()) {
            let active = self.models.active.clone();
            self.bench.form.toggle(&name, active.as_deref());
        }
    }

    fn bench_mode(&mut self) {
        let n = self.models.rows.len();
        self.bench.form.mode = self.bench.form.mode.next();
        // Keep the cursor inside the form (the new mode may have fewer fields).
        self.bench.sel = self.bench.sel.min(self.bench.form.rows(n).len() - 1);
    }

    fn bench_run(&mut self) {
        if self.bench.busy() {
            self.bench.error = Some(format!(
                "a benchmark is running: wait for it, or press {} to cancel it",
                self.keymap.keys("bench_cancel")
            ));
            return;
        }
        let chosen = self.bench.form.chosen(self.models.active.as_deref());
        let rows: Vec<ModelRow> = self
            .models
            .rows
            .iter()
            .filter(|r| chosen.contains(&r.name))
            .cloned()
            .collect();
        if rows.is_empty() {
            self.bench.error = Some(format!(
                "no model chosen: move to a model in the list and press {} to choose it",
                self.keymap.keys("bench_toggle")
            ));
            return;
        }
        let cfg = self.bench.form.config();
        let cancel = CancelToken::default();
        self.bench.start(cancel.clone(), cfg.clone());
        let ctx = OpenCtx {
            loader: self.loader.clone(),
            active: self
                .models
                .active
                .clone()
                .zip(self.client.clone())
                .map(|(n, c)| (n, c, self.models.load_ms.unwrap_or(0.0))),
            device: self.config.device.clone(),
        };
        let out = OutDir::Runs(self.config.runs_dir());
        let tx = self.tx.clone();
        std::thread::spawn(move || {
            let models: Vec<BenchModel> = rows
                .iter()
                .map(|r| BenchModel {
                    name: r.name.clone(),
                    target: r.target(),
                })
                .collect();
            let mut open = |m: &BenchModel| {
                let row = rows
                    .iter()
                    .find(|r| r.name == m.name)
                    .expect("a chosen row");
                ctx.open(row)
            };
            let mut progress = |p: Progress| {
                if let Some(m) = BenchMsg::from_progress(&p) {
                    let _ = tx.send(Msg::Bench(m));
                }
            };
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                session::run(&models, &mut open, &cfg, out, &mut progress, &cancel)
            }));
            let outcome = match run {
                Ok(Ok(done)) => Outcome::Report(done.dir),
                Ok(Err(BenchError::Cancelled)) => Outcome::Cancelled,
                Ok(Err(e)) => Outcome::Failed(e.to_string()),
                Err(_) => Outcome::Failed(
                    "the benchmark stopped on an internal error (see the log)".into(),
                ),
            };
            let _ = tx.send(Msg::Bench(BenchMsg::Done(outcome)));
        });
    }
}

/// What the benchmark thread opens models with.
struct OpenCtx {
    loader: Arc<dyn ModelLoader>,
    /// The loaded model: its name, client and load time (benchmarked as it is).
    active: Option<(String, Arc<dyn GenerationClient>, f64)>,
    device: String,
}

impl OpenCtx {
    fn open(&self, row: &ModelRow) -> Result<Opened, BenchError> {
        let fail = |why: String| BenchError::Open {
            model: row.name.clone(),
            why,
        };
        let target = row.target();
        let info = match (&row.remote, &row.info) {
            (None, Err(e)) => return Err(fail(format!("cannot read {}: {e}", row.name))),
            (None, Ok(info)) => Some(info),
            (Some(_), _) => None,
        };
        let (client, load_ms) = match &self.active {
            Some((name, client, ms)) if *name == row.name => (client.clone(), *ms),
            _ => {
                let t = Instant::now();
                let verb = if row.remote.is_some() {
                    "cannot connect to"
                } else {
                    "cannot load"
                };
                let c = self
                    .loader
                    .open(&target)
                    .map_err(|e| fail(format!("{verb} {}: {e}", row.name)))?;
                (c, t.elapsed().as_secs_f64() * 1000.0)
            }
        };
        let meta = match info {
            Some(info) => ModelMeta::local(
                &row.name,
                &row.path,
                info,
                &self.device,
                candle_core::utils::get_num_threads(),
                load_ms,
            ),
            None => ModelMeta::remote(&*client, &target, load_ms),
        };
        Ok((Box::new(client), meta))
    }
}
