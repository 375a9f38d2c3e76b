//! lmwb: a local-LLM workbench. The library holds everything; `main.rs` only dispatches.

pub mod artifacts;
pub mod batch;
pub mod bench;
pub mod chat;
pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod engine;
pub mod logging;
pub mod metrics;
pub mod models;
pub mod server;
pub mod tui;
