//! Batch prompt sets: a TOML file of prompts run against several models, one Markdown file
//! (plus a JSON sidecar) per prompt × model, resumable and written atomically.
//!
//! The pipeline, each step its own module: [`spec`] parses and checks the TOML into a
//! [`spec::ValidSpec`] (every error names the file, the line and the key); [`plan`] crosses
//! models × prompts into [`plan::Plan`] items with safe output names ([`naming`]) and a
//! run/skip decision from what is on disk; [`runner`] runs the plan against any
//! [`crate::client::GenerationClient`], grouped by model, and [`output`] writes the files.
//! `lmwb batch` (`commands/batch.rs`) and the TUI's Batch tab drive the same code.

pub mod naming;
pub mod output;
pub mod plan;
pub mod runner;
pub mod settings;
pub mod spec;
mod vars;

pub use plan::{Action, Item, ModelRef, Plan, PlanOptions};
pub use runner::{run, Progress, RunOptions, Summary};
pub use settings::{Overrides, Settings};
pub use spec::{SpecError, ValidSpec};
