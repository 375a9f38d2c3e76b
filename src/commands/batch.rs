//! `lmwb batch FILE`: a prompt set × models, one Markdown file (+ JSON sidecar) per item.
//! The work is `crate::batch`; this is flags → plan, progress on stderr, a summary table.

use super::{gen, EXIT_USAGE};
use crate::artifacts;
use crate::batch::plan::{default_out_dir, resolve_models};
use crate::batch::runner::{self, Outcome, Progress, RunOptions, Summary};
use crate::batch::spec::ModelSpec;
use crate::batch::{Overrides, Plan, PlanOptions, Settings, ValidSpec};
use crate::cli::{BatchArgs, SamplingArgs};
use crate::config::Config;
use crate::engine::CancelToken;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Exit code after Ctrl-C.
const EXIT_INTERRUPTED: u8 = 130;

/// The command-line sampling flags as the top layer of settings.
pub fn overrides(s: &SamplingArgs, system: Option<String>, template: Option<String>) -> Overrides {
    Overrides {
        temperature: s.temperature,
        top_p: s.top_p,
        top_k: s.top_k,
        min_p: s.min_p,
        repeat_penalty: s.repeat_penalty,
        repeat_last_n: s.repeat_last_n,
        presence_penalty: s.presence_penalty,
        frequency_penalty: s.frequency_penalty,
        seed: s.seed,
        max_tokens: s.max_tokens,
        max_kv_size: s.max_kv_size,
        stop: (!s.stop.is_empty()).then(|| s.stop.clone()),
        system,
        template,
    }
}

fn usage(msg: impl std::fmt::Display) -> anyhow::Result<u8> {
    eprintln!("lmwb: {msg}");
    Ok(EXIT_USAGE)
}

/// Everything up to the plan; `Err` holds a usage or configuration error to print (exit 2).
fn plan(args: &BatchArgs, cfg: &Config) -> Result<Plan, String> {
    let text = match (&args.text, &args.text_file) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(f)) => Some(
            std::fs::read_to_string(f)
                .map_err(|e| format!("--text-file {}: cannot read it: {e}", f.display()))?,
        ),
        (None, None) => None,
    };
    let spec = ValidSpec::load(&args.file, text).map_err(|e| e.to_string())?;
    let models: Vec<ModelSpec> = if !args.models.is_empty() {
        args.models
            .iter()
            .map(|m| m.trim())
            .filter(|m| !m.is_empty())
            .map(|m| ModelSpec {
                spec: m.to_string(),
                line: None,
            })
            .collect()
    } else if !spec.models.is_empty() {
        spec.models.clone()
    } else {
        vec![ModelSpec {
            spec: cfg.default_model.clone(),
            line: None,
        }]
    };
    let models = resolve_models(&spec, &models, cfg).map_err(|e| e.to_string())?;
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| default_out_dir(&cfg.runs_dir(), &spec.name));
    let opts = PlanOptions {
        force: args.force,
        retry_errors: args.retry_errors,
        cli: overrides(&args.sampling, args.system.clone(), args.template.clone()),
    };
    Plan::build(&spec, models, &Settings::from_config(cfg), out_dir, &opts)
        .map_err(|e| e.to_string())
}

pub fn run(args: BatchArgs, cfg: &Config) -> anyhow::Result<u8> {
    if !(args.stall_timeout.is_finite() && args.stall_timeout > 0.0) {
        return usage(format!(
            "--stall-timeout {}: give a number of seconds above 0",
            args.stall_timeout
        ));
    }
    let plan = match plan(&args, cfg) {
        Ok(p) => p,
        Err(msg) => return usage(msg),
    };
    if args.dry_run {
        print!("{}", plan.describe());
        return Ok(0);
    }
    eprintln!("lmwb: {}", plan.headline());
    for n in &plan.notes {
        eprintln!("lmwb: note: {n}");
    }
    let engine = gen::engine_options(&args.engine, cfg)?;

    let interrupt = CancelToken::default();
    let on_ctrl_c = interrupt.clone();
    let _ = ctrlc::set_handler(move || {
        if on_ctrl_c.is_cancelled() {
            // A second Ctrl-C: nothing partial exists (every write is atomic), leave now.
            std::process::exit(EXIT_INTERRUPTED as i32);
        }
        eprintln!("\nlmwb: interrupted: cancelling the current item (Ctrl-C again to quit now)");
        on_ctrl_c.cancel();
    });
    let opts = RunOptions {
        stall_timeout: Duration::from_secs_f64(args.stall_timeout),
        interrupt,
        ..RunOptions::default()
    };
    let mut load = |m: &crate::batch::ModelRef| {
        tracing::info!(model = %m.target.location(), "batch: loading");
        m.target.open(engine.clone())
    };
    let mut reporter = Reporter::new(plan.to_run(), std::io::stderr().is_terminal());
    let runs_dir = cfg.runs_dir();
    let summary = runner::run(&plan, &mut load, &opts, &mut |p| {
        if let Progress::ItemEnd {
            item,
            model,
            outcome: Outcome::Done(stats),
            ..
        } = &p
        {
            artifacts::record_batch_item(&runs_dir, model, item, stats, false);
        }
        reporter.on(p)
    })?;
    reporter.finish();
    print!("{}", summary_table(&plan, &summary));
    if summary.interrupted {
        eprintln!(
            "lmwb: interrupted: {} item(s) not run; run the same command again to continue",
            summary.not_run()
        );
        return Ok(EXIT_INTERRUPTED);
    }
    Ok(u8::from(summary.failed() > 0))
}

/// Progress on stderr: an indicatif bar on a terminal, one plain line per item otherwise.
struct Reporter {
    bar: Option<ProgressBar>,
    n: usize,
    started: Instant,
    item_max: usize,
    label: String,
}

fn secs(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

impl Reporter {
    fn new(n: usize, terminal: bool) -> Reporter {
        let bar = (terminal && n > 0).then(|| {
            let b = ProgressBar::with_draw_target(Some(n as u64), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:24}] {pos}/{len} · {elapsed} · ETA {eta} · {msg}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            b.set_prefix("lmwb batch");
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Reporter {
            bar,
            n,
            started: Instant::now(),
            item_max: 0,
            label: String::new(),
        }
    }

    fn line(&self, s: String) {
        match &self.bar {
            Some(b) => b.println(s),
            None => eprintln!("{s}"),
        }
    }

    /// Total ETA from the mean time per finished item.
    fn eta(&self, k: usize) -> String {
        if k == 0 || k >= self.n {
            return "0s".into();
        }
        let per = self.started.elapsed() / k as u32;
        secs(per * (self.n - k) as u32)
    }

    fn on(&mut self, p: Progress) {
        match p {
            Progress::Loading { model, items } => self.line(format!(
                "lmwb: loading {} ({items} item(s) to run)",
                model.name
            )),
            Progress::Loaded { model, load_ms } => self.line(format!(
                "lmwb: loaded {} in {:.2} s",
                model.name,
                load_ms / 1e3
            )),
            Progress::LoadFailed { model, error } => {
                self.line(format!("lmwb: {}: {error}", model.name))
            }
            Progress::ItemStart { item, model, .. } => {
                self.item_max = item.settings.max_tokens;
                self.label = format!("{} · {}", model.name, item.prompt_name);
                if let Some(b) = &self.bar {
                    b.set_message(self.label.clone());
                }
            }
            Progress::Tokens { tokens, .. } => {
                if let Some(b) = &self.bar {
                    let of = if self.item_max > 0 {
                        format!("{tokens}/{} tokens", self.item_max)
                    } else {
                        format!("{tokens} tokens")
                    };
                    b.set_message(format!("{} · {of}", self.label));
                }
            }
            Progress::ItemEnd {
                k,
                n,
                item,
                outcome,
                ms,
                ..
            } => {
                let what = match outcome {
                    Outcome::Done(s) => format!(
                        "done · {} tokens · {:.1} s · decode {:.1} tok/s · finish {}",
                        s.generated_tokens,
                        ms / 1e3,
                        s.decode_tok_s,
                        s.finish_reason.as_str()
                    ),
                    Outcome::Failed(why) => format!("FAILED: {why}"),
                };
                match &self.bar {
                    Some(b) => {
                        if let Outcome::Failed(_) = outcome {
                            b.println(format!("lmwb: {}.md: {what}", item.stem));
                        }
                        b.inc(1);
                    }
                    None => eprintln!(
                        "lmwb: [{k}/{n}] {}.md: {what} · ETA {}",
                        item.stem,
                        self.eta(k)
                    ),
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// The table printed at the end (stdout).
pub fn summary_table(plan: &Plan, s: &Summary) -> String {
    let w = s
        .models
        .iter()
        .map(|m| m.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    let mut out = format!(
        "{:<w$}  {:>8}  {:>5}  {:>7}  {:>6}\n",
        "model", "load", "done", "skipped", "failed"
    );
    for m in &s.models {
        let load = m
            .load_ms
            .map(|ms| format!("{:.2} s", ms / 1e3))
            .unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "{:<w$}  {load:>8}  {:>5}  {:>7}  {:>6}\n",
            m.name, m.done, m.skipped, m.failed
        ));
    }
    out.push_str(&format!(
        "{:<w$}  {:>8}  {:>5}  {:>7}  {:>6}\n",
        "total",
        format!("{} loaded", s.models_loaded()),
        s.done(),
        s.skipped(),
        s.failed()
    ));
    out.push_str(&format!(
        "elapsed {} · outputs in {}\n",
        secs(s.elapsed),
        plan.out_dir.display()
    ));
    for (stem, why) in &s.failures {
        out.push_str(&format!("failed: {stem}.error.txt: {why}\n"));
    }
    out
}
