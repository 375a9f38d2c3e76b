//! Drawing the Chat pane: the transcript (cached per turn, only visible lines drawn) and
//! the input box.

use crate::chat::markdown;
use crate::chat::reasoning::Channel;
use crate::chat::transcript::{Speaker, Turn};
use crate::tui::chat::{CachedTurn, ChatState, View};
use crate::tui::keymap::Keymap;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget};
use unicode_width::UnicodeWidthStr;

const DIM: Style = Style::new().fg(Color::DarkGray);

fn plain_lines(text: &str, width: usize, style: Style) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    for raw in text.split('\n') {
        if raw.is_empty() {
            out.push(Line::from(""));
            continue;
        }
        let mut cur = String::new();
        for c in raw.chars() {
            let cw = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
            if cur.width() + cw > width {
                out.push(Line::styled(std::mem::take(&mut cur), style));
            }
            cur.push(c);
        }
        out.push(Line::styled(cur, style));
    }
    out
}

fn dimmed(lines: Vec<Line<'static>>) -> Vec<Line<'static>> {
    lines
        .into_iter()
        .map(|l| {
            Line::from(
                l.spans
                    .into_iter()
                    .map(|s| Span::styled(s.content, DIM.add_modifier(Modifier::ITALIC)))
                    .collect::<Vec<_>>(),
            )
        })
        .collect()
}

/// One line of per-reply stats: tokens, TTFT, tok/s, reused tokens.
fn stats_line(t: &Turn) -> Option<Line<'static>> {
    let s = t.stats.as_ref()?;
    Some(Line::styled(
        format!(
            "{} tokens · TTFT {:.0} ms · {:.1} tok/s · prefill {:.0} tok/s · reused {} · {}",
            s.generated_tokens,
            s.ttft_ms,
            s.decode_tok_s,
            s.prefill_tok_s,
            s.cached_tokens,
            s.finish_reason.as_str()
        ),
        DIM,
    ))
}

/// A turn's lines at `width`; returns them and the number of code blocks it holds.
pub(super) fn turn_lines(
    t: &Turn,
    width: usize,
    first_block: usize,
    show_reasoning: bool,
    raw: bool,
    keys: &str,
) -> (Vec<Line<'static>>, usize) {
    let mut lines = Vec::new();
    let mut blocks = 0;
    match t.speaker {
        Speaker::User => {
            lines.push(Line::styled(
                "you ›",
                Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
            ));
            lines.extend(plain_lines(&t.raw, width, Style::new()));
        }
        Speaker::Notice => {
            lines.extend(plain_lines(&t.raw, width, Style::new().fg(Color::Yellow)));
        }
        Speaker::Assistant => {
            let mut head = vec![Span::styled(
                "model ›",
                Style::new().fg(Color::Green).add_modifier(Modifier::BOLD),
            )];
            if t.streaming {
                head.push(Span::styled(" streaming…", DIM));
            }
            lines.push(Line::from(head));
            if raw {
                lines.extend(plain_lines(&t.raw, width, Style::new()));
            } else {
                let mut i = 0;
                while i < t.pieces.len() {
                    if t.pieces[i].channel == Channel::Final {
                        let r = markdown::render_numbered(
                            &t.pieces[i].text,
                            width,
                            first_block + blocks,
                        );
                        blocks += r.code_blocks.len();
                        lines.extend(r.lines);
                        i += 1;
                        continue;
                    }
                    let mut text = String::new();
                    let mut names = Vec::new();
                    while i < t.pieces.len() && t.pieces[i].channel.is_reasoning() {
                        text.push_str(&t.pieces[i].text);
                        let n = t.pieces[i].channel.as_str();
                        if !names.contains(&n) {
                            names.push(n);
                        }
                        i += 1;
                    }
                    let mut label = format!("reasoning ({})", names.join(", "));
                    if t.reasoning_tokens > 0 {
                        label.push_str(&format!(" · {} tokens", t.reasoning_tokens));
                    }
                    if show_reasoning {
                        lines.push(Line::styled(format!("▾ {label}"), DIM));
                        lines.extend(dimmed(
                            markdown::render(text.trim(), width.saturating_sub(2)).lines,
                        ));
                        lines.push(Line::from(""));
                    } else {
                        lines.push(Line::styled(
                            format!("▸ {label} hidden ({keys} shows)"),
                            DIM,
                        ));
                    }
                }
            }
            if t.stopped {
                lines.push(Line::styled("■ stopped", Style::new().fg(Color::Yellow)));
            }
            if let Some(e) = &t.error {
                lines.extend(plain_lines(
                    &format!("error: {e}"),
                    width,
                    Style::new().fg(Color::Red),
                ));
            }
            lines.extend(stats_line(t));
        }
    }
    lines.push(Line::from(""));
    (lines, blocks)
}

pub struct ChatView<'a> {
    pub chat: &'a ChatState,
    pub keymap: &'a Keymap,
    pub model: Option<&'a str>,
}

impl ChatView<'_> {
    /// Bring the cache up to date for `width` and return the total height.
    fn refresh(&self, width: u16) -> usize {
        let chat = self.chat;
        let keys = self.keymap.keys("toggle_reasoning");
        let mut cache = chat.cache.borrow_mut();
        let turns = &chat.transcript.turns;
        cache.entries.resize_with(turns.len(), || None);
        let mut block = 1;
        let mut total = 0;
        for (t, slot) in turns.iter().zip(cache.entries.iter_mut()) {
            let key = (t.version, width, block, chat.show_reasoning, chat.raw);
            if slot.as_ref().is_none_or(|c| c.key != key) {
                let (lines, blocks) = turn_lines(
                    t,
                    width as usize,
                    block,
                    chat.show_reasoning,
                    chat.raw,
                    &keys,
                );
                *slot = Some(CachedTurn { key, lines, blocks });
            }
            let c = slot.as_ref().expect("filled");
            block += c.blocks;
            total += c.lines.len();
        }
        total
    }

    /// The input box's height for this text.
    pub fn input_height(&self) -> u16 {
        (self.chat.input.line_count().min(6) as u16) + 2
    }

    /// Where the terminal cursor goes (inside the input box).
    pub fn cursor(&self, area: Rect) -> Position {
        let [_, input] =
            Layout::vertical([Constraint::Min(1), Constraint::Length(self.input_height())])
                .areas(area);
        let (line, col) = self.chat.input.cursor_pos();
        let inner_h = input.height.saturating_sub(2) as usize;
        let line = line.min(inner_h.saturating_sub(1));
        let x = input.x + 1 + (col as u16).min(input.width.saturating_sub(3));
        Position::new(x, input.y + 1 + line as u16)
    }
}

impl Widget for ChatView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let [log, input] =
            Layout::vertical([Constraint::Min(1), Constraint::Length(self.input_height())])
                .areas(area);
        let chat = self.chat;
        let title = match (self.model, chat.busy()) {
            (Some(m), true) => format!(" Chat · {m} · generating "),
            (Some(m), false) => format!(" Chat · {m} "),
            (None, _) => " Chat · no model loaded ".to_string(),
        };
        let mut block = Block::new().borders(Borders::TOP).title(title);
        if chat.raw {
            block = block.title_bottom(Line::styled(" raw view ", Style::new().fg(Color::Yellow)));
        }
        let inner = block.inner(log);
        block.render(log, buf);
        let width = inner.width.saturating_sub(1).max(10);
        let total = self.refresh(width);
        let height = inner.height as usize;
        let max_top = total.saturating_sub(height);
        let top = chat.top.map_or(max_top, |t| t.min(max_top));
        chat.view.set(View {
            width,
            height: inner.height,
            total,
        });
        // Collect only the visible lines.
        let cache = chat.cache.borrow();
        let mut visible = Vec::with_capacity(height);
        let mut line_no = 0;
        for c in cache.entries.iter().flatten() {
            let n = c.lines.len();
            if line_no + n > top && line_no < top + height {
                let from = top.saturating_sub(line_no);
                let to = (top + height - line_no).min(n);
                visible.extend(c.lines[from..to].iter().cloned());
            }
            line_no += n;
            if line_no >= top + height {
                break;
            }
        }
        Paragraph::new(visible).render(inner, buf);
        if chat.top.is_some() && top < max_top {
            let more = format!(
                " ↓ {} more lines ({} follows) ",
                max_top - top,
                self.keymap.keys("follow")
            );
            let x = inner.right().saturating_sub(more.width() as u16);
            buf.set_string(
                x,
                inner.bottom().saturating_sub(1),
                more,
                Style::new().fg(Color::Black).bg(Color::Yellow),
            );
        }

        let hint = format!(
            " message · {} send · {} new line ",
            self.keymap.keys("submit"),
            self.keymap.keys("newline")
        );
        let iblock = Block::bordered().title(hint).border_style(DIM);
        let text_area = iblock.inner(input);
        iblock.render(input, buf);
        let (cur_line, _) = chat.input.cursor_pos();
        let skip = (cur_line + 1).saturating_sub(text_area.height as usize);
        let lines: Vec<Line> = chat
            .input
            .text()
            .split('\n')
            .skip(skip)
            .map(|l| Line::raw(l.to_string()))
            .collect();
        Paragraph::new(lines).render(text_area, buf);
    }
}
