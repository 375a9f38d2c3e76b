//! lmwb: a local-LLM workbench. The library holds everything; `main.rs` only dispatches.

pub mod engine;
