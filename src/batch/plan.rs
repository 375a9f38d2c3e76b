//! The plan of a batch run: models × prompts, each item with its output name, its settings
//! and whether it runs or is skipped, from what the output folder already holds.

use super::naming;
use super::output::ItemFiles;
use super::settings::{Overrides, Settings};
use super::spec::{ModelSpec, SpecError, ValidSpec};
use crate::client::target::{local_name, Target};
use crate::config::Config;
use std::path::{Path, PathBuf};

/// A model of the run: its display name (used in file names) and what runs it: a model on
/// disk, or a model on a remote backend (`BACKEND/MODEL`).
#[derive(Clone, Debug, PartialEq)]
pub struct ModelRef {
    pub name: String,
    pub target: Target,
}

impl ModelRef {
    /// Named as `lmwb models list` names it: the file stem, or the folder name, lower-case.
    pub fn from_path(path: PathBuf) -> ModelRef {
        ModelRef::local(local_name(&path), path)
    }

    pub fn local(name: impl Into<String>, path: PathBuf) -> ModelRef {
        let name = name.into();
        ModelRef {
            target: Target::Local {
                name: name.clone(),
                path,
            },
            name,
        }
    }

    pub fn from_target(target: Target) -> ModelRef {
        ModelRef {
            name: target.name(),
            target,
        }
    }

    /// The weights' path (`None` for a remote model).
    pub fn path(&self) -> Option<&Path> {
        self.target.path()
    }
}

/// Resolve model names (or paths, or `BACKEND/MODEL`) as `-m` does; an unknown or
/// ambiguous name is an error at its line. A model named twice runs once.
pub fn resolve_models(
    spec: &ValidSpec,
    models: &[ModelSpec],
    cfg: &Config,
) -> Result<Vec<ModelRef>, SpecError> {
    resolve_models_with(spec, models, &|s| {
        Target::resolve(s, cfg).map_err(|e| e.to_string())
    })
}

/// [`resolve_models`] with another resolver (the workbench looks in its model list first).
pub fn resolve_models_with(
    spec: &ValidSpec,
    models: &[ModelSpec],
    resolve: &dyn Fn(&str) -> Result<Target, String>,
) -> Result<Vec<ModelRef>, SpecError> {
    let mut out: Vec<ModelRef> = Vec::new();
    for m in models {
        let target = resolve(&m.spec).map_err(|e| {
            let from = if m.line.is_some() {
                "models"
            } else {
                "--models"
            };
            spec.error(m.line, format!("{from}: `{}`: {e}", m.spec))
        })?;
        let r = ModelRef::from_target(target);
        if !out.iter().any(|o| o.target == r.target) {
            out.push(r);
        }
    }
    Ok(out)
}

/// What the output folder says about an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnDisk {
    /// No output yet.
    New,
    /// `<stem>.md` exists.
    Done,
    /// `<stem>.error.txt` exists and no `.md`.
    Failed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Run,
    Skip,
}

/// How the plan treats existing outputs.
#[derive(Clone, Debug, Default)]
pub struct PlanOptions {
    /// Rerun everything.
    pub force: bool,
    /// Rerun items that failed before.
    pub retry_errors: bool,
    /// Command-line values: they win over the file.
    pub cli: Overrides,
}

/// One prompt × model.
#[derive(Clone, Debug)]
pub struct Item {
    /// Index into [`Plan::models`].
    pub model: usize,
    /// The `[run]` entry name (`"think,tldr"`) and its prompts.
    pub prompt_name: String,
    pub parts: Vec<String>,
    /// The rendered user message.
    pub prompt: String,
    pub settings: Settings,
    pub stem: String,
    pub files: ItemFiles,
    pub on_disk: OnDisk,
    pub action: Action,
    /// Renamed because its name collided with an item before it (the note says how).
    pub renamed: Option<String>,
}

/// Every item, grouped by model in the order the models were given.
#[derive(Clone, Debug)]
pub struct Plan {
    pub name: String,
    pub spec_path: PathBuf,
    pub out_dir: PathBuf,
    pub models: Vec<ModelRef>,
    pub items: Vec<Item>,
    /// Renamed items (collisions after sanitizing) and other things the user should know.
    pub notes: Vec<String>,
}

/// Check one item's settings; an error points at the line that set the bad value.
fn check(
    spec: &ValidSpec,
    entry: &super::spec::Entry,
    cli: &Overrides,
    s: &Settings,
) -> Result<(), SpecError> {
    let at = |key: &str, why: String| {
        if cli.sets(key) {
            spec.error(None, format!("--{}: {why}", key.replace('_', "-")))
        } else {
            let line = spec.line_of(key, entry);
            let table = if entry.overrides.sets(key) {
                format!("[prompts] (`{}`)", entry.name)
            } else {
                "[defaults]".into()
            };
            spec.error(line, format!("{table} {key}: {why}"))
        }
    };
    if let Err(e) = s.sampling.validate() {
        return Err(at(e.name, e.to_string()));
    }
    if let Some(t) = &s.template {
        if let Err(e) = crate::engine::template::ChatTemplate::builtin(t) {
            return Err(at("template", e.to_string()));
        }
    }
    Ok(())
}

impl Plan {
    /// Cross `models` × the spec's entries and look at `out_dir` for what exists.
    pub fn build(
        spec: &ValidSpec,
        models: Vec<ModelRef>,
        base: &Settings,
        out_dir: PathBuf,
        opts: &PlanOptions,
    ) -> Result<Plan, SpecError> {
        let mut settings = Vec::with_capacity(spec.entries.len());
        for e in &spec.entries {
            let s = base.with(&spec.defaults.then(&e.overrides).then(&opts.cli));
            check(spec, e, &opts.cli, &s)?;
            settings.push(s);
        }
        let mut stems = Vec::new();
        let mut keys = Vec::new();
        for m in &models {
            for e in &spec.entries {
                stems.push(naming::stem(&e.name, &m.name));
                keys.push((e.name.as_str(), m.name.as_str()));
            }
        }
        let renamed = naming::disambiguate(&mut stems, &keys);
        let notes = renamed.iter().map(|(_, n)| n.clone()).collect();
        let mut items = Vec::with_capacity(stems.len());
        let mut stems = stems.into_iter().enumerate();
        for mi in 0..models.len() {
            for (e, s) in spec.entries.iter().zip(&settings) {
                let (k, stem) = stems.next().expect("one stem per item");
                let files = ItemFiles::new(&out_dir, &stem);
                let on_disk = if files.md.exists() {
                    OnDisk::Done
                } else if files.error.exists() {
                    OnDisk::Failed
                } else {
                    OnDisk::New
                };
                let action = match on_disk {
                    _ if opts.force => Action::Run,
                    OnDisk::New => Action::Run,
                    OnDisk::Failed if opts.retry_errors => Action::Run,
                    OnDisk::Failed | OnDisk::Done => Action::Skip,
                };
                items.push(Item {
                    model: mi,
                    prompt_name: e.name.clone(),
                    parts: e.parts.clone(),
                    prompt: e.prompt.clone(),
                    settings: s.clone(),
                    stem,
                    files,
                    on_disk,
                    action,
                    renamed: renamed
                        .iter()
                        .find(|(i, _)| *i == k)
                        .map(|(_, n)| n.clone()),
                });
            }
        }
        Ok(Plan {
            name: spec.name.clone(),
            spec_path: spec.path.clone(),
            out_dir,
            models,
            items,
            notes,
        })
    }

    /// Items that will run.
    pub fn to_run(&self) -> usize {
        self.items
            .iter()
            .filter(|i| i.action == Action::Run)
            .count()
    }

    /// Models with at least one item to run: the ones that will be loaded.
    pub fn models_to_load(&self) -> usize {
        (0..self.models.len())
            .filter(|&m| {
                self.items
                    .iter()
                    .any(|i| i.model == m && i.action == Action::Run)
            })
            .count()
    }

    /// One line: items, to run, to skip, models to load.
    pub fn headline(&self) -> String {
        let n = self.items.len();
        let run = self.to_run();
        let load = self.models_to_load();
        let failed = self
            .items
            .iter()
            .filter(|i| i.action == Action::Skip && i.on_disk == OnDisk::Failed)
            .count();
        let mut s = format!(
            "batch `{}` → {}: {n} item{} ({} prompt{} × {} model{}), {run} to run, {} to skip",
            self.name,
            self.out_dir.display(),
            plural(n),
            n / self.models.len().max(1),
            plural(n / self.models.len().max(1)),
            self.models.len(),
            plural(self.models.len()),
            n - run,
        );
        if failed > 0 {
            s.push_str(&format!(
                " ({failed} failed before: --retry-errors reruns them)"
            ));
        }
        s.push_str(&format!("; {load} model{} to load", plural(load)));
        s
    }

    /// The plan as text: the headline, then each model and its items as run or skip.
    pub fn describe(&self) -> String {
        let mut out = self.headline();
        out.push('\n');
        for (mi, m) in self.models.iter().enumerate() {
            out.push_str(&format!("model {} ({})\n", m.name, m.target.location()));
            for i in self.items.iter().filter(|i| i.model == mi) {
                let (what, why) = match (i.action, i.on_disk) {
                    (Action::Run, OnDisk::New) => ("run ", ""),
                    (Action::Run, OnDisk::Done) => ("run ", "  (replaces the output: --force)"),
                    (Action::Run, OnDisk::Failed) => ("run ", "  (failed before: retried)"),
                    (Action::Skip, OnDisk::Failed) => {
                        ("skip", "  (failed before; --retry-errors reruns it)")
                    }
                    (Action::Skip, _) => ("skip", "  (done)"),
                };
                out.push_str(&format!("  {what}  {}.md{why}\n", i.stem));
            }
        }
        for n in &self.notes {
            out.push_str(&format!("note: {n}\n"));
        }
        out
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `<runs_dir>/batch/<safe set name>`.
pub fn default_out_dir(runs_dir: &Path, name: &str) -> PathBuf {
    runs_dir.join("batch").join(naming::safe(name))
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
