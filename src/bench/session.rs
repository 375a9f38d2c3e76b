//! A whole benchmark, as `lmwb bench` and the workbench's Bench tab run it: every model in
//! turn (one loaded at a time, dropped before the next), then the report folder —
//! charts, `report.md`, `results.json`, `samples.csv`.
//!
//! A cancel stops the run between steps or mid-generation with [`BenchError::Cancelled`];
//! the report folder is only created once every model has finished, so a cancelled run
//! writes nothing.

use super::provenance::{self, Machine, ModelMeta};
use super::report::{self, BenchResults};
use super::{plots, run_model, BenchConfig, BenchError, Progress};
use crate::client::{GenerationClient, Target};
use crate::engine::CancelToken;
use std::path::PathBuf;

/// One model to benchmark: the name it goes by (`-m`'s value, a row of the Models pane)
/// and where it is.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchModel {
    pub name: String,
    pub target: Target,
}

/// Where the report goes.
#[derive(Clone, Debug, PartialEq)]
pub enum OutDir {
    /// This folder (`--out`).
    Exactly(PathBuf),
    /// `<runs_dir>/bench/<timestamp>-<first model>`.
    Runs(PathBuf),
}

/// A model ready to benchmark: its client and what the report says about it.
pub type Opened = (Box<dyn GenerationClient>, ModelMeta);

/// A finished benchmark: everything measured, and the folder the report was written to.
#[derive(Debug)]
pub struct Finished {
    pub results: BenchResults,
    pub dir: PathBuf,
}

/// Run `cfg` on every model (opened with `open` in turn, each dropped before the next is
/// opened) and write the report folder.
pub fn run(
    models: &[BenchModel],
    open: &mut dyn FnMut(&BenchModel) -> Result<Opened, BenchError>,
    cfg: &BenchConfig,
    out: OutDir,
    progress: &mut dyn FnMut(Progress),
    cancel: &CancelToken,
) -> Result<Finished, BenchError> {
    if models.is_empty() {
        return Err(BenchError::NoModels);
    }
    let started = provenance::timestamp();
    let machine = Machine::detect();
    let mut results = Vec::new();
    for m in models {
        check(cancel)?;
        progress(Progress::Model(&m.name));
        let (client, meta) = open(m)?;
        results.push(run_model(client.as_ref(), meta, cfg, progress, cancel)?);
        drop(client);
    }
    check(cancel)?;
    let dir = match out {
        OutDir::Exactly(dir) => dir,
        OutDir::Runs(runs) => {
            let name = provenance::slug(&results[0].model.name);
            runs.join("bench").join(format!("{started}-{name}"))
        }
    };
    std::fs::create_dir_all(&dir).map_err(|e| BenchError::CreateDir {
        path: dir.display().to_string(),
        why: e.to_string(),
    })?;
    let charts = plots::draw_all(&dir, &results)?;
    let results = BenchResults {
        schema: report::SCHEMA.into(),
        started,
        machine,
        config: cfg.clone(),
        models: results,
        charts,
    };
    report::write_all(&dir, &results)?;
    Ok(Finished { results, dir })
}

fn check(cancel: &CancelToken) -> Result<(), BenchError> {
    if cancel.is_cancelled() {
        Err(BenchError::Cancelled)
    } else {
        Ok(())
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
