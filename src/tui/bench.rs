//! The Bench tab's state: the form (models, mode, sizes), the run in progress and its
//! live results. The run itself is [`crate::bench::session::run`], as `lmwb bench` runs it.

use crate::bench::latency::LatencyResult;
use crate::bench::long::{self, Block, Check, LongRun};
use crate::bench::standard::TestResult;
use crate::bench::{BenchConfig, Progress};
use crate::engine::CancelToken;
use std::path::PathBuf;
use std::time::Instant;

/// What a run measures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// llama-bench's pp/tg tests.
    #[default]
    Standard,
    /// vLLM's TTFT/TPOT/ITL/E2E.
    Latency,
    /// One long generation per window, with the PASS/FAIL checks.
    Long,
}

impl Mode {
    pub fn next(self) -> Mode {
        match self {
            Mode::Standard => Mode::Latency,
            Mode::Latency => Mode::Long,
            Mode::Long => Mode::Standard,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Mode::Standard => "standard: pp/tg",
            Mode::Latency => "latency: TTFT/TPOT/ITL",
            Mode::Long => "long: run per window",
        }
    }

    /// The form's fields this mode uses, in order.
    pub fn fields(self) -> &'static [FieldId] {
        match self {
            Mode::Standard => &[FieldId::Prompt, FieldId::Gen, FieldId::Repetitions],
            Mode::Latency => &[FieldId::Requests, FieldId::Prompt, FieldId::Gen],
            Mode::Long => &[FieldId::Windows, FieldId::LongGen, FieldId::Block],
        }
    }
}

/// The form's text fields (their number is the `FieldTarget::Bench` index).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldId {
    Prompt = 0,
    Gen = 1,
    Repetitions = 2,
    Requests = 3,
    Windows = 4,
    LongGen = 5,
    Block = 6,
}

impl FieldId {
    pub fn from_index(i: u8) -> Option<FieldId> {
        use FieldId::*;
        [Prompt, Gen, Repetitions, Requests, Windows, LongGen, Block]
            .get(i as usize)
            .copied()
    }

    /// The name in the form.
    pub fn label(self, mode: Mode) -> &'static str {
        match (self, mode) {
            (FieldId::Prompt, Mode::Latency) => "input tokens",
            (FieldId::Gen, Mode::Latency) => "output tokens",
            (FieldId::Prompt, _) => "pp sizes",
            (FieldId::Gen, _) => "tg sizes",
            (FieldId::Repetitions, _) => "repetitions",
            (FieldId::Requests, _) => "requests",
            (FieldId::Windows, _) => "windows",
            (FieldId::LongGen, _) => "generated",
            (FieldId::Block, _) => "block",
        }
    }

    /// The open field's title: the name and the `lmwb bench` flag it stands for.
    pub fn title(self, mode: Mode) -> String {
        let flag = match self {
            FieldId::Prompt => "-p",
            FieldId::Gen => "-n",
            FieldId::Repetitions => "-r",
            FieldId::Requests => "--requests",
            FieldId::Windows => "--max-kv-size",
            FieldId::LongGen => "--gen-tokens",
            FieldId::Block => "--block",
        };
        format!("{} ({flag})", self.label(mode))
    }

    /// What to type, under the open field.
    pub fn hint(self) -> &'static str {
        match self {
            FieldId::Prompt | FieldId::Gen => "token counts, comma-separated: 512 or 128,256",
            FieldId::Windows => "KV windows, comma-separated: 256,512,none (none: no window)",
            FieldId::LongGen => "tokens each long run generates",
            FieldId::Block => "tokens per tok/s and RSS sample",
            _ => "a number, at least 1",
        }
    }
}

/// One row of the form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Row {
    Model(usize),
    Mode,
    Field(FieldId),
}

/// What the next run measures.
#[derive(Clone, Debug, PartialEq)]
pub struct Form {
    /// The models chosen, by name; `None` until the first toggle: the loaded model.
    pub chosen: Option<Vec<String>>,
    pub mode: Mode,
    pub prompt: Vec<usize>,
    pub gen: Vec<usize>,
    pub repetitions: usize,
    pub requests: usize,
    pub windows: Vec<Option<usize>>,
    pub long_gen: usize,
    pub block: usize,
}

impl Default for Form {
    /// `lmwb bench`'s defaults; a 512-entry window for long runs.
    fn default() -> Form {
        let d = BenchConfig::default();
        Form {
            chosen: None,
            mode: Mode::Standard,
            prompt: d.prompt_tokens,
            gen: d.gen_tokens,
            repetitions: d.repetitions,
            requests: 10,
            windows: vec![Some(512)],
            long_gen: d.long_gen_tokens,
            block: d.block,
        }
    }
}

fn join<T>(v: &[T], f: impl Fn(&T) -> String) -> String {
    v.iter().map(f).collect::<Vec<_>>().join(",")
}

/// A comma list of token counts (`0` skips a test, as `-p 0` does).
pub fn parse_sizes(s: &str) -> Result<Vec<usize>, String> {
    if s.trim().is_empty() {
        return Err("no size given: write token counts like `512` or `128,256`".into());
    }
    s.split(',')
        .map(|x| {
            x.trim().parse::<usize>().map_err(|_| {
                format!(
                    "`{}` is not a number of tokens: write counts like `512` or `128,256`",
                    x.trim()
                )
            })
        })
        .collect()
}

/// A count of at least 1.
pub fn parse_count(s: &str, what: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "`{}`: {what} must be a number, at least 1",
            s.trim()
        )),
    }
}

impl Form {
    /// A field's value as the field shows it.
    pub fn text(&self, f: FieldId) -> String {
        match f {
            FieldId::Prompt => join(&self.prompt, usize::to_string),
            FieldId::Gen => join(&self.gen, usize::to_string),
            FieldId::Repetitions => self.repetitions.to_string(),
            FieldId::Requests => self.requests.to_string(),
            FieldId::Windows => join(&self.windows, |w| long::window_label(*w)),
            FieldId::LongGen => self.long_gen.to_string(),
            FieldId::Block => self.block.to_string(),
        }
    }

    /// Set a field from its text, or say what is wrong with it (the form is unchanged).
    pub fn set(&mut self, f: FieldId, text: &str) -> Result<(), String> {
        match f {
            FieldId::Prompt => self.prompt = parse_sizes(text)?,
            FieldId::Gen => self.gen = parse_sizes(text)?,
            FieldId::Repetitions => self.repetitions = parse_count(text, "repetitions")?,
            FieldId::Requests => self.requests = parse_count(text, "requests")?,
            FieldId::Windows => self.windows = long::parse_windows(text)?,
            FieldId::LongGen => self.long_gen = parse_count(text, "generated tokens")?,
            FieldId::Block => self.block = parse_count(text, "tokens per sample")?,
        }
        Ok(())
    }

    /// The models chosen (the loaded one until the list is touched).
    pub fn chosen(&self, active: Option<&str>) -> Vec<String> {
        match &self.chosen {
            Some(c) => c.clone(),
            None => active.map(String::from).into_iter().collect(),
        }
    }

    pub fn toggle(&mut self, name: &str, active: Option<&str>) {
        let mut c = self.chosen(active);
        match c.iter().position(|n| n == name) {
            Some(i) => {
                c.remove(i);
            }
            None => c.push(name.to_string()),
        }
        self.chosen = Some(c);
    }

    /// The rows of the form with `models` models listed.
    pub fn rows(&self, models: usize) -> Vec<Row> {
        (0..models)
            .map(Row::Model)
            .chain([Row::Mode])
            .chain(self.mode.fields().iter().map(|&f| Row::Field(f)))
            .collect()
    }

    /// What the session runs for this form.
    pub fn config(&self) -> BenchConfig {
        let base = BenchConfig {
            standard: false,
            prompt_tokens: self.prompt.clone(),
            gen_tokens: self.gen.clone(),
            repetitions: self.repetitions.max(1),
            ..BenchConfig::default()
        };
        match self.mode {
            Mode::Standard => BenchConfig {
                standard: true,
                ..base
            },
            Mode::Latency => BenchConfig {
                latency_requests: Some(self.requests.max(1)),
                ..base
            },
            Mode::Long => BenchConfig {
                windows: self.windows.clone(),
                long_gen_tokens: self.long_gen.max(1),
                block: self.block.max(1),
                ..base
            },
        }
    }
}

/// tok/s per block of one long run.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub model: String,
    pub window: Option<usize>,
    /// (generated tokens at the block's end, tok/s over the block).
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// The legend's name: the window, and the model when several are measured.
    pub fn name(&self, many_models: bool) -> String {
        let w = format!("max-kv-size {}", long::window_label(self.window));
        if many_models {
            format!("{} {w}", self.model)
        } else {
            w
        }
    }
}

/// What a run has measured so far, each result with its model's name.
#[derive(Clone, Debug, Default)]
pub struct Live {
    pub series: Vec<Series>,
    pub tests: Vec<(String, TestResult)>,
    pub latency: Vec<(String, LatencyResult)>,
    pub long: Vec<(String, LongRun)>,
    pub checks: Vec<(String, Check)>,
    /// Models measured (or being measured), in order.
    pub models: Vec<String>,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Finished; the report folder.
    Report(PathBuf),
    /// Cancelled; nothing was written.
    Cancelled,
    /// Stopped by an error (it names what to change).
    Failed(String),
}

/// A run in progress.
#[derive(Debug)]
pub struct Running {
    pub cancel: CancelToken,
    pub since: Instant,
}

/// The Bench tab.
#[derive(Debug, Default)]
pub struct BenchTab {
    pub form: Form,
    /// The form row under the cursor.
    pub sel: usize,
    pub running: Option<Running>,
    /// The config of the run shown (running or last).
    pub run_config: Option<BenchConfig>,
    pub run_mode: Mode,
    /// The step in progress (the line `lmwb bench` prints).
    pub step: Option<String>,
    pub live: Live,
    pub outcome: Option<Outcome>,
    /// Why the last `r` did not start a run.
    pub error: Option<String>,
}

impl BenchTab {
    /// A benchmark is running.
    pub fn busy(&self) -> bool {
        self.running.is_some()
    }

    /// A run starts: the results shown so far are dropped.
    pub fn start(&mut self, cancel: CancelToken, cfg: BenchConfig) {
        self.running = Some(Running {
            cancel,
            since: Instant::now(),
        });
        self.run_config = Some(cfg);
        self.run_mode = self.form.mode;
        self.step = None;
        self.live = Live::default();
        self.outcome = None;
        self.error = None;
    }

    /// Ask the run to stop (it ends with [`Outcome::Cancelled`]).
    pub fn cancel(&mut self) {
        if let Some(r) = &self.running {
            r.cancel.cancel();
            self.step = Some("cancelling: waiting for the generation in progress to stop".into());
        }
    }

    fn current(&self) -> String {
        self.live.models.last().cloned().unwrap_or_default()
    }

    pub fn on(&mut self, m: BenchMsg) {
        let model = self.current();
        match m {
            BenchMsg::Step(s) => {
                if !self
                    .running
                    .as_ref()
                    .is_some_and(|r| r.cancel.is_cancelled())
                {
                    self.step = Some(s)
                }
            }
            BenchMsg::Model(name) => self.live.models.push(name),
            BenchMsg::Test(t) => self.live.tests.push((model, t)),
            BenchMsg::Latency(l) => self.live.latency.push((model, l)),
            BenchMsg::Block { window, block } => {
                let point = (block.end as f64, block.tok_s);
                match self
                    .live
                    .series
                    .iter_mut()
                    .find(|s| s.model == model && s.window == window)
                {
                    Some(s) => s.points.push(point),
                    None => self.live.series.push(Series {
                        model,
                        window,
                        points: vec![point],
                    }),
                }
            }
            BenchMsg::Long(l) => self.live.long.push((model, l)),
            BenchMsg::Checks(c) => self
                .live
                .checks
                .extend(c.into_iter().map(|c| (model.clone(), c))),
            BenchMsg::Done(o) => {
                self.running = None;
                self.step = None;
                self.outcome = Some(o);
            }
        }
    }
}

/// What the benchmark thread reports.
#[derive(Debug)]
pub enum BenchMsg {
    Step(String),
    Model(String),
    Test(TestResult),
    Latency(LatencyResult),
    Block { window: Option<usize>, block: Block },
    Long(LongRun),
    Checks(Vec<Check>),
    Done(Outcome),
}

impl BenchMsg {
    /// The session's progress as a message for the App (concurrency levels are not shown).
    pub fn from_progress(p: &Progress) -> Option<BenchMsg> {
        Some(match p {
            Progress::Message(m) => BenchMsg::Step(m.clone()),
            Progress::Model(n) => BenchMsg::Model(n.to_string()),
            Progress::Test(t) => BenchMsg::Test((*t).clone()),
            Progress::Latency(l) => BenchMsg::Latency((*l).clone()),
            Progress::Concurrency(_) => return None,
            Progress::Block { window, block } => BenchMsg::Block {
                window: *window,
                block: (*block).clone(),
            },
            Progress::Long(l) => BenchMsg::Long((*l).clone()),
            Progress::Checks(c) => BenchMsg::Checks(c.to_vec()),
        })
    }
}
