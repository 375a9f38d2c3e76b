//! `lmwb`: argument parsing and dispatch only.

use clap::Parser;
use lmwb::cli::{Cli, Command};
use lmwb::commands::{self, EXIT_USAGE};
use lmwb::config::Config;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cfg = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lmwb: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let _log = match lmwb::logging::init(&cfg.runs_dir(), &cfg.log_level) {
        Ok(g) => Some(g),
        Err(e) => {
            eprintln!(
                "lmwb: warning: cannot write logs under {}: {e}",
                cfg.runs_dir().display()
            );
            None
        }
    };
    let result = match cli.command {
        None => lmwb::tui::run(&cfg),
        Some(Command::Run(args)) => commands::run::run(*args, &cfg),
        Some(Command::Models(cmd)) => commands::models::run(cmd, &cfg),
        Some(Command::Batch(args)) => commands::batch::run(*args, &cfg),
        Some(Command::Bench(args)) => commands::bench::run(*args, &cfg),
        Some(Command::Serve(args)) => commands::serve::run(*args, &cfg),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("lmwb: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
