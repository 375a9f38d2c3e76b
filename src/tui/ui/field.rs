//! The one-line text field, drawn over the bottom of the tab in front: the label in its
//! border, the hint under it, Tab's completions above it.

use crate::tui::field::Field;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

const MAX_CANDIDATES: usize = 8;

/// Draw `field` at the bottom of `area`; returns where the cursor goes.
pub fn draw(f: &mut Frame, field: &Field, area: Rect) -> Position {
    let shown = field.candidates.len().min(MAX_CANDIDATES);
    let extra = u16::from(!field.candidates.is_empty()) * (shown as u16 + 1);
    let h = (3 + extra).min(area.height);
    let box_area = Rect::new(area.x, area.y + area.height - h, area.width, h);
    f.render_widget(Clear, box_area);
    let mut lines: Vec<Line> = Vec::new();
    if !field.candidates.is_empty() {
        for c in field.candidates.iter().take(shown) {
            lines.push(Line::styled(format!(" {c}"), Style::new().fg(Color::Cyan)));
        }
        let more = field.candidates.len() - shown;
        lines.push(Line::styled(
            if more > 0 {
                format!(" … and {more} more")
            } else {
                String::new()
            },
            Style::new().fg(Color::DarkGray),
        ));
    }
    let text = field.text();
    let inner_w = area.width.saturating_sub(2) as usize;
    // Keep the cursor in view: show the end of a text longer than the box.
    let (_, col) = field.input.cursor_pos();
    let skip = col.saturating_sub(inner_w.saturating_sub(1));
    let visible: String = skip_width(text, skip);
    lines.push(Line::raw(visible));
    let mut block = Block::bordered()
        .title(format!(" {} ", field.label))
        .border_style(Style::new().fg(Color::Yellow));
    if let Some(h) = &field.hint {
        block = block.title_bottom(Line::styled(format!(" {h} "), Style::new().fg(Color::Gray)));
    }
    f.render_widget(Paragraph::new(lines).block(block), box_area);
    let x = box_area.x + 1 + (col - skip) as u16;
    Position::new(
        x.min(box_area.right().saturating_sub(2)),
        box_area.bottom().saturating_sub(2),
    )
}

fn skip_width(s: &str, w: usize) -> String {
    let mut used = 0;
    s.chars()
        .skip_while(|c| {
            if used >= w {
                return false;
            }
            used += unicode_width::UnicodeWidthChar::width(*c).unwrap_or(0);
            true
        })
        .collect()
}
