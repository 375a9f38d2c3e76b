//! The Batch tab's state: the prompt set, its plan (the same [`Plan`] `lmwb batch` builds),
//! the run and each item's state, the running item's live output, an opened output.

use super::models::ModelsState;
use crate::batch::plan::{
    default_out_dir, resolve_models_with, Action as PlanAction, OnDisk, Plan,
};
use crate::batch::runner::{Outcome, Summary};
use crate::batch::spec::ModelSpec;
use crate::batch::{PlanOptions, Settings, ValidSpec};
use crate::chat::transcript::Turn;
use crate::client::Target;
use crate::config::Config;
use crate::engine::CancelToken;
use std::path::{Path, PathBuf};

/// Where an item stands.
#[derive(Clone, Debug, PartialEq)]
pub enum ItemState {
    Queued,
    Running {
        tokens: usize,
    },
    Done {
        tokens: usize,
        ms: f64,
        tok_s: f64,
    },
    /// Its output exists from an earlier run.
    Skipped,
    /// Failed now, or in an earlier run (`before`) and not retried.
    Failed {
        error: String,
        before: bool,
    },
    /// Left undone by a cancel or a pause.
    NotRun,
}

impl ItemState {
    pub fn label(&self) -> &'static str {
        match self {
            ItemState::Queued => "queued",
            ItemState::Running { .. } => "running",
            ItemState::Done { .. } => "done",
            ItemState::Skipped => "skipped",
            ItemState::Failed { .. } => "failed",
            ItemState::NotRun => "not run",
        }
    }
}

/// A run in progress: how to pause or cancel it.
#[derive(Debug)]
pub struct RunControl {
    pub interrupt: CancelToken,
    pub pause: CancelToken,
    /// The model being loaded, if any.
    pub loading: Option<String>,
}

/// An output opened with Enter.
pub struct OutputView {
    pub title: String,
    pub path: PathBuf,
    /// `None`: the running item, drawn from [`BatchTab::live`] as it streams.
    pub turn: Option<Turn>,
    pub scroll: usize,
}

/// The Batch tab.
#[derive(Default)]
pub struct BatchTab {
    /// The prompt set, as typed.
    pub path: Option<PathBuf>,
    pub plan: Option<Plan>,
    /// One per plan item.
    pub states: Vec<ItemState>,
    pub selected: usize,
    /// Why the prompt set could not be planned.
    pub error: Option<String>,
    pub run: Option<RunControl>,
    /// The last run's outcome or what just happened, one line.
    pub status: Option<String>,
    /// The running (or last run) item and its output as it streams.
    pub live: Option<(usize, Turn)>,
    pub view: Option<OutputView>,
}

/// What the batch thread reports.
#[derive(Debug)]
pub enum BatchMsg {
    Loading {
        model: String,
    },
    Loaded {
        model: String,
        ms: f64,
    },
    LoadFailed {
        model: String,
        error: String,
    },
    Start {
        index: usize,
    },
    Token {
        text: String,
        tokens: usize,
    },
    End {
        index: usize,
        outcome: Outcome,
        ms: f64,
    },
    Finished(Result<Summary, String>),
}

impl BatchTab {
    /// A batch is running.
    pub fn busy(&self) -> bool {
        self.run.is_some()
    }

    /// Take a new plan: every item's state from what its output folder holds.
    pub fn set_plan(&mut self, path: PathBuf, plan: Plan) {
        self.states = plan.items.iter().map(initial_state).collect();
        self.selected = self.selected.min(plan.items.len().saturating_sub(1));
        self.path = Some(path);
        self.plan = Some(plan);
        self.error = None;
        self.view = None;
    }

    pub fn select(&mut self, delta: i32) {
        let n = self.states.len() as i32;
        if n > 0 {
            self.selected = (self.selected as i32 + delta).clamp(0, n - 1) as usize;
        }
    }

    /// Items of the plan that failed (now or before).
    pub fn failed(&self) -> usize {
        self.states
            .iter()
            .filter(|s| matches!(s, ItemState::Failed { .. }))
            .count()
    }

    /// How many items are in each state, for the headline.
    pub fn counts(&self) -> String {
        let mut parts = Vec::new();
        for label in ["queued", "running", "done", "skipped", "failed", "not run"] {
            let n = self.states.iter().filter(|s| s.label() == label).count();
            if n > 0 {
                parts.push(format!("{n} {label}"));
            }
        }
        parts.join(" · ")
    }
}

fn initial_state(item: &crate::batch::plan::Item) -> ItemState {
    match (item.action, item.on_disk) {
        (PlanAction::Run, _) => ItemState::Queued,
        (PlanAction::Skip, OnDisk::Failed) => ItemState::Failed {
            error: std::fs::read_to_string(&item.files.error)
                .ok()
                .and_then(|t| t.lines().next().map(str::to_string))
                .unwrap_or_else(|| "failed in an earlier run".into()),
            before: true,
        },
        (PlanAction::Skip, _) => ItemState::Skipped,
    }
}

/// The plan of the prompt set at `path`, as `lmwb batch FILE` plans it: the set's models
/// (a name the Models pane lists is taken from there, anything else is resolved as `-m`
/// resolves it), or the model in use when the set names none; outputs under
/// `runs/batch/<set>`.
pub fn plan(
    path: &Path,
    cfg: &Config,
    models: &ModelsState,
    retry_errors: bool,
) -> Result<Plan, String> {
    let spec = ValidSpec::load(path, None).map_err(|e| e.to_string())?;
    let specs: Vec<ModelSpec> = if !spec.models.is_empty() {
        spec.models.clone()
    } else if let Some(active) = &models.active {
        vec![ModelSpec {
            spec: active.clone(),
            line: None,
        }]
    } else {
        return Err(format!(
            "{}: the set names no models and none is loaded: load one in the Models tab, or add models = [\"NAME\"] to the file",
            path.display()
        ));
    };
    let refs = resolve_models_with(&spec, &specs, &|name| match models
        .rows
        .iter()
        .find(|r| r.name == name)
    {
        Some(row) => Ok(row.target()),
        None => Target::resolve(name, cfg).map_err(|e| e.to_string()),
    })
    .map_err(|e| e.to_string())?;
    let opts = PlanOptions {
        retry_errors,
        ..PlanOptions::default()
    };
    let out = default_out_dir(&cfg.runs_dir(), &spec.name);
    Plan::build(&spec, refs, &Settings::from_config(cfg), out, &opts).map_err(|e| e.to_string())
}
