//! The `runs/` layout shared by every command: `logs/` (see [`crate::logging`]) and
//! `metrics/`, one JSON line per generation in `metrics/generations-YYYY-MM-DD.jsonl`,
//! with the same fields whether the model ran in-process or behind HTTP, so runs compare
//! file by file.

use crate::engine::Stats;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One generation's line in `metrics/`.
#[derive(Debug, Serialize)]
pub struct MetricsRecord<'a> {
    /// When it finished (RFC 3339, UTC).
    pub time: String,
    /// `run` or `batch`.
    pub command: &'a str,
    /// The model's name (`BACKEND/MODEL` for a remote one).
    pub model: &'a str,
    /// `in-process`, or `http <base url>`.
    pub transport: String,
    /// The model's path, or the backend's URL and model id.
    pub location: String,
    /// The file the output went to (batch), if any.
    pub output: Option<String>,
    pub stats: &'a Stats,
}

/// The metrics file for today under `runs_dir`.
pub fn metrics_file(runs_dir: &Path) -> PathBuf {
    let today = time::OffsetDateTime::now_utc().date();
    runs_dir
        .join("metrics")
        .join(format!("generations-{today}.jsonl"))
}

/// Append `rec` as one line (one `write` on a file opened for appending, so concurrent runs
/// never interleave within a line).
pub fn append_metrics(runs_dir: &Path, rec: &MetricsRecord) -> std::io::Result<PathBuf> {
    let path = metrics_file(runs_dir);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut line = serde_json::to_vec(rec).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    f.write_all(&line)?;
    Ok(path)
}

/// Append, and say on stderr (once per process) when the file cannot be written: metrics
/// never stop a run.
pub fn record(runs_dir: &Path, rec: &MetricsRecord) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    if let Err(e) = append_metrics(runs_dir, rec) {
        WARNED.call_once(|| {
            eprintln!(
                "lmwb: warning: cannot write {}: {e}",
                metrics_file(runs_dir).display()
            )
        });
    }
}

/// The metrics line of a finished batch item (`lmwb batch` and the workbench's Batch
/// tab). `quiet`: a failure to write goes to the log only (the workbench owns the terminal).
pub fn record_batch_item(
    runs_dir: &Path,
    model: &crate::batch::ModelRef,
    item: &crate::batch::plan::Item,
    stats: &Stats,
    quiet: bool,
) {
    let rec = MetricsRecord {
        time: now(),
        command: "batch",
        model: &model.name,
        transport: model.target.transport(),
        location: model.target.location(),
        output: Some(item.files.md.display().to_string()),
        stats,
    };
    if quiet {
        if let Err(e) = append_metrics(runs_dir, &rec) {
            tracing::warn!("cannot write {}: {e}", metrics_file(runs_dir).display());
        }
    } else {
        record(runs_dir, &rec);
    }
}

pub fn now() -> String {
    crate::batch::output::now_rfc3339()
}
