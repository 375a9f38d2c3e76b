//! The chat transcript: turns with their raw text, reasoning channels, token counts and
//! stats. Shared by the TUI and saved sessions; drawing lives elsewhere.

use super::reasoning::{Channel, ChannelParser, Piece};
use crate::engine::template::ChatMessage;
use crate::engine::Stats;
use serde::{Deserialize, Serialize};

/// Who a turn is from. Notices are lmwb's own lines (command output, errors); they are
/// never sent to the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    User,
    Assistant,
    Notice,
}

/// One entry of the transcript.
#[derive(Clone, Debug)]
pub struct Turn {
    pub speaker: Speaker,
    /// Exactly what was typed or what the model emitted.
    pub raw: String,
    /// `raw` split into channels (assistant turns).
    pub pieces: Vec<Piece>,
    /// Tokens that went to reasoning channels / to the answer.
    pub reasoning_tokens: usize,
    pub answer_tokens: usize,
    pub stats: Option<Stats>,
    pub error: Option<String>,
    pub streaming: bool,
    /// The user stopped it.
    pub stopped: bool,
    /// Bumped on every change, so renderers can cache by (index, version).
    pub version: u64,
    parser: ChannelParser,
}

fn add_piece(pieces: &mut Vec<Piece>, p: Piece) {
    match pieces.last_mut() {
        Some(last) if last.channel == p.channel => last.text.push_str(&p.text),
        _ => pieces.push(p),
    }
}

impl Turn {
    fn new(speaker: Speaker, raw: String) -> Turn {
        Turn {
            speaker,
            raw,
            pieces: vec![],
            reasoning_tokens: 0,
            answer_tokens: 0,
            stats: None,
            error: None,
            streaming: false,
            stopped: false,
            version: 0,
            parser: ChannelParser::new(),
        }
    }

    pub fn user(text: impl Into<String>) -> Turn {
        Turn::new(Speaker::User, text.into())
    }

    pub fn notice(text: impl Into<String>) -> Turn {
        Turn::new(Speaker::Notice, text.into())
    }

    /// An assistant turn about to stream.
    pub fn assistant() -> Turn {
        let mut t = Turn::new(Speaker::Assistant, String::new());
        t.streaming = true;
        t
    }

    /// A finished assistant turn rebuilt from its raw text (a loaded session).
    pub fn assistant_from(raw: &str, stats: Option<Stats>, error: Option<String>) -> Turn {
        let mut t = Turn::assistant();
        t.push_text(raw);
        t.finish(stats, error);
        t
    }

    fn feed(&mut self, text: &str) -> Option<Channel> {
        self.raw.push_str(text);
        self.version += 1;
        let mut last = None;
        for p in self.parser.push(text) {
            last = Some(p.channel);
            add_piece(&mut self.pieces, p);
        }
        last
    }

    /// One generated token's text.
    pub fn push_token(&mut self, text: &str) {
        let channel = self.feed(text).unwrap_or_else(|| self.parser.channel());
        if channel.is_reasoning() {
            self.reasoning_tokens += 1;
        } else {
            self.answer_tokens += 1;
        }
    }

    /// Text that belongs to no single token.
    pub fn push_text(&mut self, text: &str) {
        self.feed(text);
    }

    pub fn finish(&mut self, stats: Option<Stats>, error: Option<String>) {
        for p in self.parser.finish() {
            add_piece(&mut self.pieces, p);
        }
        self.streaming = false;
        if stats.is_some() {
            self.stats = stats;
        }
        if error.is_some() {
            self.error = error;
        }
        self.version += 1;
    }

    /// The answer channel only (what is sent back to the model as the assistant's turn).
    pub fn answer(&self) -> String {
        self.pieces
            .iter()
            .filter(|p| p.channel == Channel::Final)
            .map(|p| p.text.as_str())
            .collect()
    }

    pub fn has_reasoning(&self) -> bool {
        self.pieces.iter().any(|p| p.channel.is_reasoning())
    }
}

/// The conversation so far.
#[derive(Clone, Debug, Default)]
pub struct Transcript {
    pub turns: Vec<Turn>,
}

impl Transcript {
    /// The messages to send: system prompt, then user and assistant turns (answers only;
    /// notices, failed and empty replies left out).
    pub fn messages(&self, system: Option<&str>) -> Vec<ChatMessage> {
        let mut out = Vec::new();
        if let Some(s) = system {
            out.push(ChatMessage::system(s.to_string()));
        }
        for t in &self.turns {
            match t.speaker {
                Speaker::User => out.push(ChatMessage::user(t.raw.clone())),
                Speaker::Assistant => {
                    let a = t.answer();
                    if !a.trim().is_empty() {
                        out.push(ChatMessage::assistant(a.trim().to_string()));
                    }
                }
                Speaker::Notice => {}
            }
        }
        out
    }

    /// Index of the last user turn.
    pub fn last_user(&self) -> Option<usize> {
        self.turns.iter().rposition(|t| t.speaker == Speaker::User)
    }
}
