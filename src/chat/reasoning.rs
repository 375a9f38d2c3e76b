//! Splits model output into channels: the answer (`Final`) and reasoning (`Analysis`,
//! `Commentary`), for both Harmony (`<|channel|>analysis<|message|>…<|end|>`) and
//! `<think>…</think>`.
//!
//! [`ChannelParser`] works on a stream cut anywhere: a piece that might be the start of a
//! tag is held back until the next push shows whether it is one. Malformed input never
//! fails: an unclosed `<think>` keeps the rest in reasoning (and [`ChannelParser::unclosed`]
//! says so), a stray `</think>` or `<|message|>` is dropped, a Harmony header that never
//! reaches `<|message|>` within 256 bytes is given back as answer text.

use serde::{Deserialize, Serialize};

/// Where a piece of output belongs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// The answer shown to the user.
    Final,
    /// Chain of thought: Harmony `analysis`, or `<think>` content.
    Analysis,
    /// Harmony `commentary` (tool preambles and calls) or an unknown channel.
    Commentary,
}

impl Channel {
    pub fn is_reasoning(self) -> bool {
        self != Channel::Final
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Final => "final",
            Channel::Analysis => "analysis",
            Channel::Commentary => "commentary",
        }
    }

    fn from_harmony(name: &str) -> Channel {
        match name {
            "final" => Channel::Final,
            "analysis" => Channel::Analysis,
            _ => Channel::Commentary,
        }
    }
}

/// Text belonging to one channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Piece {
    pub channel: Channel,
    pub text: String,
}

const THINK_OPEN: &str = "<think>";
const THINK_CLOSE: &str = "</think>";
const CHANNEL: &str = "<|channel|>";
const START: &str = "<|start|>";
const MESSAGE: &str = "<|message|>";
const CONSTRAIN: &str = "<|constrain|>";
const ENDS: [&str; 3] = ["<|end|>", "<|return|>", "<|call|>"];
const TAGS: [&str; 9] = [
    THINK_OPEN,
    THINK_CLOSE,
    CHANNEL,
    START,
    MESSAGE,
    CONSTRAIN,
    ENDS[0],
    ENDS[1],
    ENDS[2],
];
const MAX_HEADER: usize = 256;

#[derive(Clone, Debug, PartialEq)]
enum State {
    Body {
        channel: Channel,
        think: bool,
    },
    /// Inside a Harmony header (after `<|start|>` or `<|channel|>`), up to `<|message|>`.
    Header {
        raw: String,
    },
}

/// Incremental channel splitter.
#[derive(Clone, Debug)]
pub struct ChannelParser {
    state: State,
    /// Text not yet classified: a possible tag prefix at the end of the input so far.
    pending: String,
}

impl Default for ChannelParser {
    fn default() -> Self {
        ChannelParser {
            state: State::Body {
                channel: Channel::Final,
                think: false,
            },
            pending: String::new(),
        }
    }
}

/// Length of the longest suffix of `s` that is a proper prefix of some tag.
fn partial_tag_suffix(s: &str) -> usize {
    let start = s.len().saturating_sub(11);
    (start..s.len())
        .filter(|&i| s.is_char_boundary(i))
        .find(|&i| {
            TAGS.iter()
                .any(|t| t.len() > s.len() - i && t.starts_with(&s[i..]))
        })
        .map_or(0, |i| s.len() - i)
}

fn push_piece(out: &mut Vec<Piece>, channel: Channel, text: &str) {
    if text.is_empty() {
        return;
    }
    match out.last_mut() {
        Some(p) if p.channel == channel => p.text.push_str(text),
        _ => out.push(Piece {
            channel,
            text: text.to_string(),
        }),
    }
}

impl ChannelParser {
    pub fn new() -> ChannelParser {
        ChannelParser::default()
    }

    /// The channel text is currently going to.
    pub fn channel(&self) -> Channel {
        match &self.state {
            State::Body { channel, .. } => *channel,
            State::Header { .. } => Channel::Commentary,
        }
    }

    /// True while inside a `<think>` or Harmony message that has not been closed.
    pub fn unclosed(&self) -> bool {
        match &self.state {
            State::Body { channel, think } => *think || channel.is_reasoning(),
            State::Header { .. } => true,
        }
    }

    /// Feed more output; returns what can be classified so far.
    pub fn push(&mut self, text: &str) -> Vec<Piece> {
        let mut out = Vec::new();
        self.pending.push_str(text);
        let buf = std::mem::take(&mut self.pending);
        let mut rest = buf.as_str();
        loop {
            match self.state.clone() {
                State::Body { channel, think } => {
                    let Some(pos) = rest.find('<') else {
                        push_piece(&mut out, channel, rest);
                        rest = "";
                        break;
                    };
                    push_piece(&mut out, channel, &rest[..pos]);
                    rest = &rest[pos..];
                    match TAGS.iter().find(|t| rest.starts_with(**t)) {
                        Some(tag) => {
                            rest = &rest[tag.len()..];
                            self.on_tag(tag, channel, think);
                        }
                        None if TAGS
                            .iter()
                            .any(|t| t.len() > rest.len() && t.starts_with(rest)) =>
                        {
                            break
                        }
                        None => {
                            push_piece(&mut out, channel, "<");
                            rest = &rest[1..];
                        }
                    }
                }
                State::Header { mut raw } => {
                    if let Some(pos) = rest.find(MESSAGE) {
                        raw.push_str(&rest[..pos]);
                        rest = &rest[pos + MESSAGE.len()..];
                        self.state = State::Body {
                            channel: header_channel(&raw),
                            think: false,
                        };
                    } else {
                        let keep = partial_tag_suffix(rest);
                        raw.push_str(&rest[..rest.len() - keep]);
                        rest = &rest[rest.len() - keep..];
                        if raw.len() > MAX_HEADER {
                            // Not a header after all: give it back as answer text.
                            push_piece(&mut out, Channel::Final, &raw);
                            self.state = State::Body {
                                channel: Channel::Final,
                                think: false,
                            };
                            continue;
                        }
                        self.state = State::Header { raw };
                        break;
                    }
                }
            }
        }
        self.pending = rest.to_string();
        out
    }

    /// End of output: release whatever was held back.
    pub fn finish(&mut self) -> Vec<Piece> {
        let mut out = Vec::new();
        let rest = std::mem::take(&mut self.pending);
        if let State::Body { channel, .. } = self.state {
            push_piece(&mut out, channel, &rest);
        }
        out
    }

    fn on_tag(&mut self, tag: &str, channel: Channel, think: bool) {
        self.state = match tag {
            THINK_OPEN => State::Body {
                channel: Channel::Analysis,
                think: true,
            },
            THINK_CLOSE if think => State::Body {
                channel: Channel::Final,
                think: false,
            },
            CHANNEL => State::Header {
                raw: CHANNEL.to_string(),
            },
            START => State::Header { raw: String::new() },
            t if ENDS.contains(&t) => State::Body {
                channel: Channel::Final,
                think: false,
            },
            // Stray `</think>`, `<|message|>` or `<|constrain|>`: dropped.
            _ => State::Body { channel, think },
        };
    }
}

/// The channel a Harmony header names (`assistant<|channel|>analysis to=… <|constrain|>json`).
fn header_channel(raw: &str) -> Channel {
    match raw.find(CHANNEL) {
        Some(i) => {
            let name = raw[i + CHANNEL.len()..]
                .split(|c: char| c.is_whitespace() || c == '<')
                .find(|w| !w.is_empty())
                .unwrap_or("");
            Channel::from_harmony(name)
        }
        None => Channel::Final,
    }
}

/// A whole output split into its answer and its reasoning.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    /// Everything in the `Final` channel.
    pub answer: String,
    /// Reasoning pieces in order (consecutive pieces of one channel merged).
    pub reasoning: Vec<Piece>,
    /// The output ended inside reasoning (an unclosed `<think>` or Harmony message).
    pub unclosed: bool,
}

impl Split {
    /// All reasoning text, channels joined by blank lines.
    pub fn reasoning_text(&self) -> String {
        self.reasoning
            .iter()
            .map(|p| p.text.trim())
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join("\n\n")
    }
}

/// Split a finished output.
pub fn split(text: &str) -> Split {
    let mut p = ChannelParser::new();
    let mut pieces = p.push(text);
    pieces.extend(p.finish());
    let mut s = Split {
        unclosed: p.unclosed(),
        ..Split::default()
    };
    for piece in pieces {
        if piece.channel == Channel::Final {
            s.answer.push_str(&piece.text);
        } else {
            push_piece(&mut s.reasoning, piece.channel, &piece.text);
        }
    }
    s
}

#[cfg(test)]
#[path = "reasoning_tests.rs"]
mod tests;
