//! Logging to a file under `<runs_dir>/logs/` with tracing-appender: nothing on stdout.

use std::path::{Path, PathBuf};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

/// Start file logging; keep the guard alive until exit so the log is flushed.
/// `LMWB_LOG` (tracing filter syntax) overrides `level`.
pub fn init(runs_dir: &Path, level: &str) -> std::io::Result<(WorkerGuard, PathBuf)> {
    let dir = runs_dir.join("logs");
    std::fs::create_dir_all(&dir)?;
    let file = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("lmwb")
        .filename_suffix("log")
        .build(&dir)
        .map_err(std::io::Error::other)?;
    // A few thousand lines of buffer (the default, 128k, is 4 MB held for the whole run).
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(4096)
        .finish(file);
    let filter = EnvFilter::try_from_env("LMWB_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("lmwb={level},warn")));
    let _ = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init();
    Ok((guard, dir))
}
