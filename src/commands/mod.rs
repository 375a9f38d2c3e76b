//! One module per command; `main.rs` only dispatches here.

pub mod batch;
pub mod bench;
pub mod gen;
pub mod models;
pub mod models_pull;
pub mod models_remote;
pub mod models_show;
pub mod models_verify;
pub mod run;
pub mod serve;

/// Exit code for "this command is not built yet" and for usage errors.
pub const EXIT_USAGE: u8 = 2;

/// Say that a command is not built yet and which issue brings it.
pub fn not_built(command: &str) -> u8 {
    eprintln!("lmwb: `{command}` is not built yet; today `lmwb`, `lmwb run`, `lmwb batch`, `lmwb bench`, `lmwb serve` and `lmwb models list|show|verify|requantize|pull|rm` work (see README.md)");
    EXIT_USAGE
}
