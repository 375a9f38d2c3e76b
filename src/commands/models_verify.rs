//! `lmwb models verify NAME`: every check on every file of the model, printed one per line;
//! exit 0 when all pass, 1 when one fails (with what to do). A bar on a terminal while big
//! files are hashed.

use crate::models::hash::HashCache;
use crate::models::verify::{self, Report};
use crate::models::{lookup, Location, Source, Sources};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// Files smaller than this hash too fast for a bar.
const BAR_FROM: u64 = 32 << 20;

/// One bar per file being hashed, on stderr when it is a terminal.
struct Bars {
    terminal: bool,
    current: Option<(PathBuf, ProgressBar)>,
}

impl Bars {
    fn update(&mut self, path: &Path, done: u64, total: u64) {
        if !self.terminal || total < BAR_FROM {
            return;
        }
        if self.current.as_ref().map(|(p, _)| p.as_path()) != Some(path) {
            if let Some((_, b)) = self.current.take() {
                b.finish_and_clear();
            }
            let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "sha256 {msg} [{bar:24}] {bytes}/{total_bytes} · {bytes_per_sec} · ETA {eta}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            b.set_message(
                path.file_name()
                    .map(|n| n.to_string_lossy().chars().take(40).collect::<String>())
                    .unwrap_or_default(),
            );
            self.current = Some((path.to_path_buf(), b));
        }
        if let Some((_, b)) = &self.current {
            b.set_position(done);
            if done >= total {
                b.finish_and_clear();
            }
        }
    }
}

pub fn verify(spec: &str, json: bool, sources: &Sources) -> anyhow::Result<u8> {
    let r = lookup(spec, sources)?;
    let (locations, known) = match r.entry {
        Some(e) => (e.locations, e.sha256),
        None => (
            vec![Location::at(Source::Folder, r.name.clone(), r.path.clone())],
            None,
        ),
    };
    let mut cache = HashCache::open(sources.hash_cache.as_deref());
    let mut bars = Bars {
        terminal: std::io::stderr().is_terminal() && !json,
        current: None,
    };
    let started = std::time::Instant::now();
    let report = verify::verify(&locations, known.as_deref(), &mut cache, &mut |p, d, t| {
        bars.update(p, d, t)
    });
    if let Some((_, b)) = bars.current.take() {
        b.finish_and_clear();
    }
    if let Err(e) = cache.save() {
        tracing::warn!(%e, "the sha256 cache could not be written");
    }
    tracing::info!(model = %r.name, secs = started.elapsed().as_secs_f64(), passed = report.passed(), "verified");
    if json {
        let v = serde_json::json!({
            "name": r.name,
            "passed": report.passed(),
            "checks": report.checks,
            "fixes": report.fixes,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_report(&r.name, &report);
    }
    if report.passed() {
        return Ok(0);
    }
    let failed = report.checks.iter().filter(|c| !c.ok).count();
    eprintln!(
        "lmwb: {} failed {failed} of {} checks; to fix it: {}",
        r.name,
        report.checks.len(),
        report.fixes.join("; ")
    );
    Ok(1)
}

fn print_report(name: &str, report: &Report) {
    println!("verifying {name}");
    let mut last: Option<&Path> = None;
    for c in &report.checks {
        if last != Some(c.path.as_path()) {
            println!("{}", c.path.display());
            last = Some(&c.path);
        }
        let mark = if c.ok { "ok  " } else { "FAIL" };
        println!("  {mark} {:<7} {}", c.what, c.detail);
    }
    match report.checks.len() {
        _ if !report.passed() => {}
        1 => println!("the check passed"),
        n => println!("all {n} checks passed"),
    }
}
