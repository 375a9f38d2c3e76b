//! Pulling a model from the hub in the Models pane: the download's progress, fed by the
//! same [`crate::models::pull::pull`] `lmwb models pull` runs.

use crate::models::pull::PullProgress;
use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

/// What the download thread reports.
#[derive(Debug)]
pub enum PullMsg {
    Note(String),
    Start {
        file: String,
        total: u64,
    },
    /// Bytes of the current file so far.
    At(u64),
    Done(Result<(String, PathBuf), String>),
}

/// A pull: what is downloading, how far it is, or how it ended.
#[derive(Debug, Clone)]
pub struct PullState {
    pub spec: String,
    pub file: String,
    pub total: u64,
    pub pos: u64,
    /// When the current file started (for the rate).
    pub since: Instant,
    pub notes: Vec<String>,
    /// `(name, path)` of the pulled model, or why it failed; `None` while it runs.
    pub result: Option<Result<(String, PathBuf), String>>,
}

impl PullState {
    pub fn new(spec: String) -> PullState {
        PullState {
            spec,
            file: String::new(),
            total: 0,
            pos: 0,
            since: Instant::now(),
            notes: vec![],
            result: None,
        }
    }

    pub fn running(&self) -> bool {
        self.result.is_none()
    }

    /// The share done, 0 to 1.
    pub fn ratio(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            (self.pos as f64 / self.total as f64).clamp(0.0, 1.0)
        }
    }

    /// Bytes a second over the current file.
    pub fn rate(&self) -> f64 {
        self.pos as f64 / self.since.elapsed().as_secs_f64().max(1e-3)
    }

    pub fn on(&mut self, m: PullMsg) {
        match m {
            PullMsg::Note(n) => self.notes.push(n),
            PullMsg::Start { file, total } => {
                (self.file, self.total, self.pos) = (file, total, 0);
                self.since = Instant::now();
            }
            PullMsg::At(pos) => self.pos = pos,
            PullMsg::Done(r) => self.result = Some(r),
        }
    }
}

/// [`PullProgress`] as messages to the App, at most ten a second.
pub struct Reporter<F: Fn(PullMsg)> {
    pub send: F,
    pos: u64,
    total: u64,
    last: Instant,
}

impl<F: Fn(PullMsg)> Reporter<F> {
    pub fn new(send: F) -> Reporter<F> {
        Reporter {
            send,
            pos: 0,
            total: 0,
            last: Instant::now(),
        }
    }
}

impl<F: Fn(PullMsg)> PullProgress for Reporter<F> {
    fn note(&mut self, line: &str) {
        (self.send)(PullMsg::Note(line.to_string()));
    }

    fn start(&mut self, file: &str, total: u64) {
        (self.pos, self.total) = (0, total);
        (self.send)(PullMsg::Start {
            file: file.to_string(),
            total,
        });
    }

    fn advance(&mut self, bytes: u64) {
        self.pos += bytes;
        if self.last.elapsed() >= Duration::from_millis(100) || self.pos >= self.total {
            self.last = Instant::now();
            (self.send)(PullMsg::At(self.pos));
        }
    }

    fn finish(&mut self) {
        (self.send)(PullMsg::At(self.pos));
    }
}

/// Where the pull's messages go.
pub fn sender(tx: Sender<super::app::Msg>) -> impl Fn(PullMsg) {
    move |m| {
        let _ = tx.send(super::app::Msg::Pull(m));
    }
}
