//! Drawing the Batch tab: the plan (items grouped by model, each with its state), the
//! running item's live output or the selected item's details, and an opened output.

use super::chat::turn_lines;
use crate::tui::app::App;
use crate::tui::batch::{BatchTab, ItemState};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;

const DIM: Style = Style::new().fg(Color::DarkGray);

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let b = &app.batch;
    if let Some(view) = &b.view {
        let turn = match (&view.turn, &b.live) {
            (Some(t), _) => Some(t),
            (None, Some((_, t))) => Some(t),
            (None, None) => None,
        };
        let width = area.width.saturating_sub(2) as usize;
        let lines = turn
            .map(|t| turn_lines(t, width.max(10), 0, true, false, "").0)
            .unwrap_or_default();
        let max = lines
            .len()
            .saturating_sub(area.height.saturating_sub(2) as usize);
        let top = view.scroll.min(max);
        let hint = format!(
            " {} · ↑/↓ scroll · {} closes ",
            view.path.display(),
            app.keymap.keys("batch_close")
        );
        f.render_widget(
            Paragraph::new(lines).scroll((top as u16, 0)).block(
                Block::bordered()
                    .title(format!(" {} ", view.title))
                    .title_bottom(Line::styled(hint, DIM))
                    .border_style(Style::new().fg(Color::Cyan)),
            ),
            area,
        );
        return;
    }
    let Some(plan) = &b.plan else {
        let text = match &b.error {
            Some(e) => e.clone(),
            None => format!(
                "Press {} and type the path of a prompt set (TOML, as `lmwb batch FILE` takes; tab completes). Its plan shows here; {} runs it.",
                app.keymap.keys("batch_open"),
                app.keymap.keys("batch_run")
            ),
        };
        let style = if b.error.is_some() {
            Style::new().fg(Color::Red)
        } else {
            DIM
        };
        f.render_widget(
            Paragraph::new(text)
                .wrap(Wrap { trim: false })
                .style(style)
                .block(Block::bordered().title(" Batch ")),
            area,
        );
        return;
    };
    let [head, body] = Layout::vertical([Constraint::Length(4), Constraint::Min(3)]).areas(area);
    let mut head_lines = vec![Line::from(plan.headline())];
    let loading = b.run.as_ref().and_then(|r| r.loading.as_ref());
    let status = match (loading, &b.status) {
        (Some(m), _) => format!("loading {m}…"),
        (None, Some(s)) => s.clone(),
        (None, None) => String::new(),
    };
    let status = Line::styled(status, Style::new().fg(Color::Yellow));
    head_lines.push(Line::styled(b.counts(), Style::new().fg(Color::Cyan)));
    head_lines.push(status);
    f.render_widget(Paragraph::new(head_lines).wrap(Wrap { trim: false }), head);

    let [list, side] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(body);
    draw_items(f, b, list);
    draw_side(f, b, side);
}

fn state_span(s: &ItemState) -> Span<'static> {
    let (text, style) = match s {
        ItemState::Queued => ("· queued ".to_string(), DIM),
        ItemState::Running { tokens } => (
            format!("▶ running {tokens} tok "),
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ),
        ItemState::Done { tokens, ms, .. } => (
            format!("✓ done {tokens} tok {:.1}s ", ms / 1e3),
            Style::new().fg(Color::Green),
        ),
        ItemState::Skipped => ("↷ skipped (exists) ".to_string(), DIM),
        ItemState::Failed { before, .. } => (
            if *before {
                "✗ failed before ".to_string()
            } else {
                "✗ failed ".to_string()
            },
            Style::new().fg(Color::Red),
        ),
        ItemState::NotRun => ("– not run ".to_string(), Style::new().fg(Color::Yellow)),
    };
    Span::styled(text, style)
}

fn draw_items(f: &mut Frame, b: &BatchTab, area: Rect) {
    let Some(plan) = &b.plan else { return };
    let mut lines: Vec<Line> = Vec::new();
    let mut selected_line = 0;
    for (mi, m) in plan.models.iter().enumerate() {
        lines.push(Line::styled(
            format!("{} ({})", m.name, m.target.location()),
            Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
        ));
        for (i, item) in plan
            .items
            .iter()
            .enumerate()
            .filter(|(_, it)| it.model == mi)
        {
            let sel = i == b.selected;
            if sel {
                selected_line = lines.len();
            }
            let mut spans = vec![
                Span::raw(if sel { "› " } else { "  " }),
                state_span(&b.states[i]),
                Span::raw(format!("{}.md", item.stem)),
            ];
            if item.renamed.is_some() {
                spans.push(Span::styled(" ⚠ renamed", Style::new().fg(Color::Magenta)));
            }
            let mut line = Line::from(spans);
            if sel {
                line = line.style(Style::new().add_modifier(Modifier::REVERSED));
            }
            lines.push(line);
        }
    }
    for n in &plan.notes {
        lines.push(Line::styled(
            format!("note: {n}"),
            Style::new().fg(Color::Magenta),
        ));
    }
    let inner = area.height.saturating_sub(2) as usize;
    let top = selected_line.saturating_sub(inner.saturating_sub(2));
    f.render_widget(
        Paragraph::new(lines)
            .scroll((top as u16, 0))
            .block(Block::bordered().title(format!(" {} ", plan.spec_path.display()))),
        area,
    );
}

fn draw_side(f: &mut Frame, b: &BatchTab, area: Rect) {
    let Some(plan) = &b.plan else { return };
    let width = area.width.saturating_sub(2) as usize;
    // The running item streams here; otherwise the selected item's details.
    if let Some((i, turn)) = &b.live {
        if turn.streaming || *i == b.selected {
            let lines = turn_lines(turn, width.max(10), 0, true, false, "").0;
            let h = area.height.saturating_sub(2) as usize;
            let top = lines.len().saturating_sub(h);
            f.render_widget(
                Paragraph::new(lines)
                    .scroll((top as u16, 0))
                    .block(Block::bordered().title(format!(" {}.md ", plan.items[*i].stem))),
                area,
            );
            return;
        }
    }
    let Some(item) = plan.items.get(b.selected) else {
        return;
    };
    let m = &plan.models[item.model];
    let mut lines = vec![
        Line::from(vec![
            Span::styled("prompt  ", DIM),
            Span::raw(item.prompt_name.clone()),
        ]),
        Line::from(vec![
            Span::styled("model   ", DIM),
            Span::raw(m.name.clone()),
        ]),
        Line::from(vec![
            Span::styled("output  ", DIM),
            Span::raw(item.files.md.display().to_string()),
        ]),
        Line::from(vec![
            Span::styled("state   ", DIM),
            state_span(&b.states[b.selected]),
        ]),
    ];
    match &b.states[b.selected] {
        ItemState::Failed { error, .. } => {
            lines.push(Line::styled(
                format!("error: {error}"),
                Style::new().fg(Color::Red),
            ));
        }
        ItemState::Done { tok_s, .. } => {
            lines.push(Line::styled(format!("decode {tok_s:.1} tok/s"), DIM));
        }
        _ => {}
    }
    if let Some(n) = &item.renamed {
        lines.push(Line::styled(n.clone(), Style::new().fg(Color::Magenta)));
    }
    lines.push(Line::from(""));
    lines.push(Line::styled("prompt:", DIM));
    lines.push(Line::raw(item.prompt.clone()));
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(" item ")),
        area,
    );
}

/// The tab's keys for the footer: (keys, what they do).
pub fn footer(app: &App) -> Vec<(String, &'static str)> {
    let k = |n: &str| app.keymap.keys(n);
    if app.batch.view.is_some() {
        return vec![
            (k("batch_prev") + "/" + &k("batch_next"), "scroll"),
            (k("batch_close"), "close"),
        ];
    }
    let mut v = vec![(k("batch_open"), "open set")];
    if app.batch.busy() {
        v.push((k("batch_pause"), "pause"));
        v.push((k("batch_cancel"), "cancel"));
    } else {
        v.push((k("batch_run"), "run"));
        v.push((k("batch_retry"), "retry failed"));
    }
    v.push((k("batch_prev") + "/" + &k("batch_next"), "select"));
    v.push((k("batch_view"), "open output"));
    v
}
