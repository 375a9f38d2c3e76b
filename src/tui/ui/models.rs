//! Drawing the Models pane: the table of models and the selected one's details.

use crate::models::fit::Verdict;
use crate::tui::gauges::bytes;
use crate::tui::keymap::Keymap;
use crate::tui::models::ModelsState;
use crate::tui::pull::PullState;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Borders, Cell, Paragraph, Row, StatefulWidget, Table, TableState, Widget, Wrap,
};

const DIM: Style = Style::new().fg(Color::DarkGray);

pub struct ModelsView<'a> {
    pub models: &'a ModelsState,
    pub keymap: &'a Keymap,
}

fn params(n: u64) -> String {
    match n {
        0 => "—".into(),
        n if n >= 1_000_000_000 => format!("{:.1}B", n as f64 / 1e9),
        n => format!("{:.0}M", n as f64 / 1e6),
    }
}

impl Widget for ModelsView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let m = self.models;
        let rows_h = (m.rows.len() as u16 + 3)
            .min(area.height / 2)
            .max(area.height.min(5));
        let [list, detail] =
            Layout::vertical([Constraint::Length(rows_h), Constraint::Min(3)]).areas(area);
        let title = if m.scanning {
            " Models · scanning… ".to_string()
        } else {
            format!(" Models · {} found ", m.rows.len())
        };
        let header = Row::new(["", "name", "arch", "params", "quant", "size", "context"])
            .style(Style::new().add_modifier(Modifier::BOLD));
        let rows: Vec<Row> = m
            .rows
            .iter()
            .map(|r| {
                let mark = if m.active.as_deref() == Some(r.name.as_str()) {
                    Cell::from("●").style(Style::new().fg(Color::Green))
                } else if m.loading.as_ref().is_some_and(|(n, _)| *n == r.name) {
                    Cell::from("◌").style(Style::new().fg(Color::Yellow))
                } else {
                    Cell::from(" ")
                };
                match &r.info {
                    Ok(i) => Row::new(vec![
                        mark,
                        Cell::from(r.name.clone()),
                        Cell::from(i.arch.clone()),
                        Cell::from(params(i.params)),
                        Cell::from(i.quant.clone()),
                        Cell::from(bytes(i.size_bytes)),
                        Cell::from(i.context_length.to_string()),
                    ]),
                    Err(_) => Row::new(vec![
                        mark,
                        Cell::from(r.name.clone()),
                        Cell::from(if r.remote.is_some() {
                            "unreachable"
                        } else {
                            "unreadable"
                        })
                        .style(Style::new().fg(Color::Red)),
                    ]),
                }
            })
            .collect();
        let widths = [
            Constraint::Length(1),
            Constraint::Min(16),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(9),
            Constraint::Length(8),
        ];
        let table = Table::new(rows, widths)
            .header(header)
            .block(Block::new().borders(Borders::TOP).title(title))
            .row_highlight_style(
                Style::new()
                    .bg(Color::DarkGray)
                    .add_modifier(Modifier::BOLD),
            );
        let mut state =
            TableState::default().with_selected((!m.rows.is_empty()).then_some(m.selected));
        StatefulWidget::render(table, list, buf, &mut state);

        let mut lines: Vec<Line> = Vec::new();
        if let Some(p) = &m.pull {
            lines.extend(pull_lines(p, detail.width as usize));
        }
        if let Some((name, since)) = &m.loading {
            let spin = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
            let ms = since.elapsed().as_millis();
            lines.push(Line::styled(
                format!(
                    "{} loading {name}… {:.1} s",
                    spin[(ms / 100) as usize % spin.len()],
                    ms as f64 / 1000.0
                ),
                Style::new().fg(Color::Yellow),
            ));
        }
        if let Some(e) = &m.error {
            lines.push(Line::styled(
                format!("error: {e}"),
                Style::new().fg(Color::Red),
            ));
        }
        if let (Some(a), Some(ms)) = (&m.active, m.load_ms) {
            lines.push(Line::styled(
                format!("● {a} loaded in {:.2} s", ms / 1000.0),
                Style::new().fg(Color::Green),
            ));
        }
        if m.rows.is_empty() && !m.scanning {
            lines.push(Line::raw("No models found. Run `bash scripts/fetch-models.sh` for the default model, or add folders to extra_model_dirs in config.toml."));
        }
        if let Some(r) = m.selected_row() {
            let kv = |k: &str, v: String| {
                Line::from(vec![Span::styled(format!("{k:<10}"), DIM), Span::raw(v)])
            };
            lines.push(kv("path", r.path.display().to_string()));
            match &r.info {
                Ok(i) => {
                    lines.push(kv(
                        "format",
                        format!(
                            "{} · {} · {} params · {}",
                            i.format,
                            i.arch,
                            params(i.params),
                            i.quant
                        ),
                    ));
                    lines.push(kv(
                        "size",
                        format!("{} · context {}", bytes(i.size_bytes), i.context_length),
                    ));
                    lines.push(kv(
                        "template",
                        if i.has_chat_template {
                            "yes (from the model file)".into()
                        } else {
                            "none: chat uses a built-in template".into()
                        },
                    ));
                    if let Some(f) = &r.fit {
                        let color = match f.verdict {
                            Verdict::Fits => Color::Green,
                            Verdict::Tight => Color::Yellow,
                            Verdict::DoesNotFit => Color::Red,
                            Verdict::Unknown => Color::Reset,
                        };
                        lines.push(Line::from(vec![
                            Span::styled(format!("{:<10}", "memory"), DIM),
                            Span::styled(f.line(), Style::new().fg(color)),
                        ]));
                    }
                    for n in &i.notes {
                        lines.push(kv("note", n.clone()));
                    }
                }
                Err(e) => lines.push(Line::styled(
                    if r.remote.is_some() {
                        format!("unreachable: {e}")
                    } else {
                        format!("cannot read: {e}")
                    },
                    Style::new().fg(Color::Red),
                )),
            }
            if !r.metadata.is_empty() {
                lines.push(Line::styled("metadata", DIM.add_modifier(Modifier::BOLD)));
                for (k, v) in &r.metadata {
                    lines.push(Line::from(vec![
                        Span::styled(format!("  {k} = "), DIM),
                        Span::raw(v.clone()),
                    ]));
                }
            }
        }
        let hint = format!(
            " {} load · {} unload · {} rescan · {} pull ",
            self.keymap.keys("load"),
            self.keymap.keys("unload"),
            self.keymap.keys("rescan"),
            self.keymap.keys("pull")
        );
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(
                Block::new()
                    .borders(Borders::TOP)
                    .title(" Details ")
                    .title_bottom(Line::styled(hint, DIM)),
            )
            .render(detail, buf);
    }
}

/// A pull's lines: a bar while it downloads, then what it gave or why it failed.
fn pull_lines(p: &PullState, width: usize) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    for n in p.notes.iter().rev().take(2).rev() {
        out.push(Line::styled(format!("pull: {n}"), DIM));
    }
    match &p.result {
        None => {
            let bar_w = width.saturating_sub(50).clamp(10, 40);
            let filled = (p.ratio() * bar_w as f64).round() as usize;
            let file = if p.file.is_empty() {
                format!("pulling {}…", p.spec)
            } else {
                format!("pulling {}", p.file)
            };
            out.push(Line::from(vec![
                Span::styled(file, Style::new().fg(Color::Yellow)),
                Span::raw(" ["),
                Span::styled("=".repeat(filled), Style::new().fg(Color::Green)),
                Span::raw(" ".repeat(bar_w - filled)),
                Span::raw(format!(
                    "] {:.0}% {} / {} · {}/s",
                    p.ratio() * 100.0,
                    bytes(p.pos),
                    bytes(p.total),
                    bytes(p.rate() as u64)
                )),
            ]));
        }
        Some(Ok((name, path))) => out.push(Line::styled(
            format!(
                "pulled {name} → {} (in the list now; enter loads it)",
                path.display()
            ),
            Style::new().fg(Color::Green),
        )),
        Some(Err(e)) => out.push(Line::styled(
            format!("pull {} failed: {e}", p.spec),
            Style::new().fg(Color::Red),
        )),
    }
    out
}
