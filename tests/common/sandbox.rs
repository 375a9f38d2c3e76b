//! The `lmwb` binary in a sandbox, for the CLI integration tests.
//!
//! A command gets a clean environment: no inherited `LMWB_*`, its working folder `home`
//! with HOME, XDG_CONFIG_HOME, XDG_CACHE_HOME and LMWB_RUNS_DIR inside it (no user config
//! leaks in, logs stay out of the repo), and LMWB_MODELS_DIR at the models folder given.
//! The other tools' model stores are found through HOME only: HF_HOME, HF_HUB_CACHE and
//! OLLAMA_MODELS are removed (a test sets them to its own fixture stores).
//!
//! Include it with `#[path = "common/sandbox.rs"] mod sandbox;`.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

/// How long one `lmwb` command may run.
pub const TIMEOUT: Duration = Duration::from_secs(300);

/// `lmwb` sandboxed under `home`, with its models folder at `models`.
pub fn command(home: &Path, models: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_lmwb"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("LMWB_") {
            c.env_remove(k);
        }
    }
    for k in ["HF_HOME", "HF_HUB_CACHE", "OLLAMA_MODELS"] {
        c.env_remove(k);
    }
    c.current_dir(home)
        .env("HOME", home.join("home"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("LMWB_RUNS_DIR", home.join("runs"))
        .env("LMWB_MODELS_DIR", models);
    c
}

/// [`command`] as an assert_cmd command, with the [`TIMEOUT`].
pub fn assert_command(home: &Path, models: &Path) -> assert_cmd::Command {
    let mut c = assert_cmd::Command::from_std(command(home, models));
    c.timeout(TIMEOUT);
    c
}

/// What a command did: its exit code and its UTF-8 stdout and stderr.
#[derive(Debug)]
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to the end; panics when it cannot start or writes anything but UTF-8.
pub fn output(cmd: &mut assert_cmd::Command) -> Out {
    let out = cmd.output().expect("lmwb runs");
    Out {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("UTF-8 stderr"),
    }
}

/// `lmwb args…` sandboxed under `home`, with its models folder at `models`.
pub fn lmwb(home: &Path, models: &Path, args: &[&str]) -> Out {
    output(assert_command(home, models).args(args))
}
