//! lmwb: a local-LLM workbench. The library holds everything; `main.rs` only dispatches.

pub mod cli;
pub mod commands;
pub mod config;
pub mod engine;
pub mod logging;
pub mod models;
