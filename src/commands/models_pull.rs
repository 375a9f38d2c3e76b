//! `lmwb models pull REPO[:FILE]` and `lmwb models rm NAME`: progress on stderr (a bar on a
//! terminal, plain lines otherwise), the model's name and path on stdout, and rm's
//! confirmation (never waiting on a stdin that is not a terminal).

use crate::cli::{PullArgs, RmArgs};
use crate::config::Config;
use crate::models::downloaded::ManifestFile;
use crate::models::hub::{HubEnv, PullError};
use crate::models::pull::{pull as pull_model, FileStatus, PullProgress, PullRequest};
use crate::models::remove::{execute, plan};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

fn size(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} KB", b / 1e3)
    } else {
        format!("{bytes} B")
    }
}

/// A progress bar on a terminal; otherwise a line when a file starts, every 10 %, and done.
struct Reporter {
    bar: Option<ProgressBar>,
    terminal: bool,
    file: String,
    total: u64,
    pos: u64,
    /// Last tenth printed as a plain line.
    tenth: u64,
}

impl Reporter {
    fn new(terminal: bool) -> Reporter {
        Reporter {
            bar: None,
            terminal,
            file: String::new(),
            total: 0,
            pos: 0,
            tenth: 0,
        }
    }

    fn line(&self, s: &str) {
        match &self.bar {
            Some(b) => b.println(format!("lmwb: {s}")),
            None => eprintln!("lmwb: {s}"),
        }
    }
}

impl PullProgress for Reporter {
    fn note(&mut self, line: &str) {
        self.line(line);
    }

    fn start(&mut self, file: &str, total: u64) {
        let again = self.file == file && self.total == total;
        (self.total, self.pos) = (total, 0);
        if self.terminal {
            let bar = self.bar.get_or_insert_with(|| {
                let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
                b.set_style(
                    ProgressStyle::with_template(
                        "{msg} [{bar:30}] {bytes}/{total_bytes} · {bytes_per_sec} · ETA {eta}",
                    )
                    .expect("a valid template")
                    .progress_chars("=> "),
                );
                b.enable_steady_tick(Duration::from_millis(200));
                b
            });
            bar.set_length(total);
            bar.set_position(0);
            bar.set_message(file.to_string());
        } else if !again {
            eprintln!("lmwb: downloading {file} ({})", size(total));
            self.tenth = 0;
        }
        self.file = file.to_string();
    }

    fn advance(&mut self, bytes: u64) {
        self.pos += bytes;
        match &self.bar {
            Some(b) => b.set_position(self.pos),
            None if self.total > 0 => {
                let tenth = self.pos.saturating_mul(10) / self.total;
                if tenth > self.tenth && tenth < 10 {
                    eprintln!(
                        "lmwb: {}: {}% ({} of {})",
                        self.file,
                        tenth * 10,
                        size(self.pos),
                        size(self.total)
                    );
                }
                self.tenth = self.tenth.max(tenth);
            }
            None => {}
        }
    }

    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

/// `lmwb models pull`.
pub fn pull(args: PullArgs) -> anyhow::Result<u8> {
    let req = PullRequest {
        spec: args.spec,
        revision: args.revision,
        offline: args.offline,
    };
    let env = HubEnv::from_env();
    let mut reporter = Reporter::new(std::io::stderr().is_terminal());
    let result = pull_model(&req, env, &ManifestFile::at_default(), &mut reporter);
    reporter.finish();
    let outcome = match result {
        Ok(o) => o,
        Err(e @ (PullError::BadSpec(_) | PullError::BadRevision(_))) => {
            eprintln!("lmwb: {e}");
            return Ok(super::EXIT_USAGE);
        }
        Err(e) => return Err(e.into()),
    };
    for f in &outcome.files {
        let s = size(f.size);
        let line = match &f.status {
            FileStatus::Downloaded { resumed_from: 0 } => format!("downloaded {} ({s})", f.file),
            FileStatus::Downloaded { resumed_from } => format!(
                "downloaded {} ({s}; resumed at {})",
                f.file,
                size(*resumed_from)
            ),
            FileStatus::AlreadyPulled => format!("{} is already downloaded ({s})", f.file),
            FileStatus::InCache => format!(
                "{} is already in the Hugging Face cache ({s}), put there by another tool; `lmwb models rm` leaves it alone",
                f.file
            ),
            FileStatus::Linked => format!(
                "{} was already in the cache (another revision); linked it ({s})",
                f.file
            ),
            FileStatus::Offline => format!("offline: {} is in the cache ({s})", f.file),
        };
        eprintln!("lmwb: {line}");
    }
    eprintln!(
        "lmwb: run it with `lmwb run -m {} \"…\"`; remove it with `lmwb models rm {}`",
        outcome.name, outcome.name
    );
    println!("{}\t{}", outcome.name, outcome.model_path.display());
    Ok(0)
}

/// `lmwb models rm`.
pub fn rm(args: RmArgs, cfg: &Config) -> anyhow::Result<u8> {
    let manifest = ManifestFile::at_default();
    let env = HubEnv::from_env();
    // Where a model lmwb did not download is, for the refusal.
    let elsewhere =
        crate::models::resolve(&args.name, &crate::models::Sources::from_config(cfg)).ok();
    let p = match plan(&args.name, &manifest.load()?, &env.cache, elsewhere) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("lmwb: {e}");
            return Ok(1);
        }
    };
    for l in &p.links {
        eprintln!("lmwb: will remove {}", l.display());
    }
    for b in &p.blobs {
        eprintln!("lmwb: will remove {}", b.display());
    }
    for b in &p.kept {
        eprintln!(
            "lmwb: keeps {} (another snapshot still links to it)",
            b.display()
        );
    }
    if !args.yes {
        let terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
        if !terminal {
            eprintln!(
                "lmwb: not removing {}: stdin is not a terminal to confirm on; pass --yes to remove it",
                p.name
            );
            return Ok(super::EXIT_USAGE);
        }
        eprint!(
            "Remove {} ({} file(s), {})? [y/N] ",
            p.name,
            p.links.len() + p.blobs.len(),
            size(p.bytes)
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            eprintln!("lmwb: nothing removed");
            return Ok(1);
        }
    }
    let done = execute(&p, &manifest)?;
    println!(
        "removed {} ({} file(s), {} freed)",
        p.name,
        done.files,
        size(done.bytes)
    );
    Ok(0)
}
