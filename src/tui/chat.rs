//! The Chat pane's state: transcript, input, settings, the generation in flight, scroll
//! position and the render cache. Drawing lives in `ui/chat.rs`.

use super::gauges::Gauges;
use super::input::Input;
use super::slash::ChatSettings;
use crate::chat::transcript::{Speaker, Transcript, Turn};
use crate::engine::{CancelToken, Event, FinishReason, GenerateRequest, Prompt};
use ratatui::text::Line;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::Instant;

/// The generation streaming into the last assistant turn.
#[derive(Debug)]
pub struct Inflight {
    pub id: u64,
    pub cancel: CancelToken,
    pub turn: usize,
    pub started: Instant,
    pub prompt_tokens: usize,
    pub generated: usize,
}

/// What the last draw saw: viewport size and transcript height in lines.
#[derive(Clone, Copy, Debug, Default)]
pub struct View {
    pub width: u16,
    pub height: u16,
    pub total: usize,
}

/// Rendered lines per turn, keyed by what they depend on.
#[derive(Default)]
pub struct RenderCache {
    pub entries: Vec<Option<CachedTurn>>,
}

pub struct CachedTurn {
    pub key: (u64, u16, usize, bool, bool),
    pub lines: Vec<Line<'static>>,
    /// Code blocks this turn's answer holds (numbering continues across turns).
    pub blocks: usize,
}

pub struct ChatState {
    pub transcript: Transcript,
    pub input: Input,
    pub settings: ChatSettings,
    pub show_reasoning: bool,
    pub raw: bool,
    /// First transcript line shown; `None` follows the bottom.
    pub top: Option<usize>,
    pub inflight: Option<Inflight>,
    /// Generation id → turn index, so a late `Done` still attaches its stats.
    pub gen_turns: HashMap<u64, usize>,
    /// A message waits for the model to finish loading.
    pub pending: bool,
    pub view: Cell<View>,
    pub cache: RefCell<RenderCache>,
}

impl ChatState {
    pub fn new(settings: ChatSettings) -> ChatState {
        ChatState {
            transcript: Transcript::default(),
            input: Input::default(),
            settings,
            show_reasoning: false,
            raw: false,
            top: None,
            inflight: None,
            gen_turns: HashMap::new(),
            pending: false,
            view: Cell::new(View::default()),
            cache: RefCell::new(RenderCache::default()),
        }
    }

    pub fn notice(&mut self, text: impl Into<String>) {
        self.transcript.turns.push(Turn::notice(text));
    }

    pub fn busy(&self) -> bool {
        self.inflight.is_some()
    }

    /// The request for the conversation so far.
    pub fn request(&self) -> GenerateRequest {
        GenerateRequest {
            prompt: Prompt::Chat {
                messages: self.transcript.messages(self.settings.system.as_deref()),
                template: None,
                options: Default::default(),
            },
            sampling: self.settings.sampling.clone(),
            max_tokens: self.settings.max_tokens,
            stop: vec![],
            max_kv_size: self.settings.max_kv_size,
            ignore_eos: false,
            logprobs: None,
            constraint: None,
        }
    }

    /// An assistant turn starts streaming for generation `id`.
    pub fn begin(&mut self, id: u64, cancel: CancelToken) {
        self.transcript.turns.push(Turn::assistant());
        let turn = self.transcript.turns.len() - 1;
        self.gen_turns.insert(id, turn);
        self.inflight = Some(Inflight {
            id,
            cancel,
            turn,
            started: Instant::now(),
            prompt_tokens: 0,
            generated: 0,
        });
    }

    /// Stop the generation now: the turn is closed at once, the engine stops within a token.
    pub fn stop(&mut self) -> bool {
        let Some(f) = self.inflight.take() else {
            return false;
        };
        f.cancel.cancel();
        if let Some(t) = self.transcript.turns.get_mut(f.turn) {
            t.stopped = true;
            t.finish(None, None);
        }
        true
    }

    /// Apply one engine event; `cap` is the KV window or the context length.
    pub fn on_event(&mut self, id: u64, ev: Event, gauges: &mut Gauges, cap: Option<usize>) {
        let current = self.inflight.as_ref().is_some_and(|f| f.id == id);
        let Some(&turn) = self.gen_turns.get(&id) else {
            return;
        };
        if !current {
            // A stopped generation: only its final stats are still of interest.
            if let Event::Done(stats) = ev {
                if let Some(t) = self.transcript.turns.get_mut(turn) {
                    t.stats = Some(stats);
                    t.version += 1;
                }
                self.gen_turns.remove(&id);
            }
            return;
        }
        let now = Instant::now();
        let Some(t) = self.transcript.turns.get_mut(turn) else {
            return;
        };
        let f = self.inflight.as_mut().expect("current generation");
        match ev {
            Event::Started { prompt_tokens, .. } => {
                f.prompt_tokens = prompt_tokens;
                gauges.kv = cap.map(|c| (prompt_tokens.min(c), c));
            }
            Event::Token { text, .. } => {
                t.push_token(&text);
                f.generated += 1;
                gauges.token(now);
                gauges.kv = cap.map(|c| ((f.prompt_tokens + f.generated).min(c), c));
            }
            Event::Text(text) => t.push_text(&text),
            Event::Done(stats) => {
                gauges.last_ttft_ms = Some(stats.ttft_ms);
                gauges.last_prefill_tok_s = Some(stats.prefill_tok_s);
                gauges.last_decode_tok_s = Some(stats.decode_tok_s);
                gauges.kv = cap.map(|c| (stats.kv_used, c));
                t.stopped = stats.finish_reason == FinishReason::Cancelled;
                t.finish(Some(stats), None);
                self.inflight = None;
                self.gen_turns.remove(&id);
            }
            Event::Error(e) => {
                t.finish(None, Some(format!("{e:#}")));
                self.inflight = None;
                self.gen_turns.remove(&id);
            }
        }
    }

    /// Forget the conversation (the settings stay).
    pub fn clear(&mut self) {
        self.stop();
        self.transcript = Transcript::default();
        self.gen_turns.clear();
        self.top = None;
        self.cache.borrow_mut().entries.clear();
    }

    /// Drop everything after the last user turn (for /regenerate); false if there is none.
    pub fn rewind_to_last_user(&mut self) -> bool {
        match self.transcript.last_user() {
            Some(i) => {
                self.transcript.turns.truncate(i + 1);
                self.cache.borrow_mut().entries.truncate(i + 1);
                true
            }
            None => false,
        }
    }

    /// Every fenced code block in the answers, in order (what `/copy N` numbers).
    pub fn code_blocks(&self) -> Vec<crate::chat::markdown::CodeBlock> {
        self.transcript
            .turns
            .iter()
            .filter(|t| t.speaker == Speaker::Assistant)
            .flat_map(|t| crate::chat::markdown::code_blocks(&t.answer()))
            .collect()
    }

    /// Scroll by `delta` lines (negative: up). Reaching the bottom resumes following.
    pub fn scroll(&mut self, delta: i64) {
        let v = self.view.get();
        let max_top = v.total.saturating_sub(v.height as usize);
        let cur = self.top.unwrap_or(max_top) as i64;
        let next = (cur + delta).clamp(0, max_top as i64) as usize;
        self.top = (next < max_top).then_some(next);
    }

    pub fn page(&self) -> i64 {
        (self.view.get().height as i64 - 2).max(1)
    }
}
