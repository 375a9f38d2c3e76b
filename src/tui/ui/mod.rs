//! Drawing the workbench: tabs, the gauges strip, the pane in front, the footer and the
//! help overlay. Drawing reads the App; it never changes it (caches aside).

mod batch;
mod bench;
mod chat;
mod field;
mod gauges;
mod models;
mod server;

use super::action::{bindings, Scope, Tab};
use super::app::App;
use super::slash::COMMANDS;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Tabs};
use ratatui::Frame;

const DIM: Style = Style::new().fg(Color::DarkGray);

pub fn draw(f: &mut Frame, app: &App) {
    let area = f.area();
    let [tabs, gauges, main, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(2),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_tabs(f, app, tabs);
    f.render_widget(
        gauges::GaugesView {
            gauges: &app.gauges,
            streaming: app.chat.busy(),
        },
        gauges,
    );
    match app.tab {
        Tab::Chat => {
            let view = chat::ChatView {
                chat: &app.chat,
                keymap: &app.keymap,
                model: app.models.active.as_deref(),
            };
            let cursor = view.cursor(main);
            f.render_widget(view, main);
            if !app.help {
                f.set_cursor_position(cursor);
            }
        }
        Tab::Models => f.render_widget(
            models::ModelsView {
                models: &app.models,
                keymap: &app.keymap,
            },
            main,
        ),
        Tab::Batch => batch::draw(f, app, main),
        Tab::Bench => bench::draw(f, app, main),
        Tab::Server => server::draw(f, app, main),
    }
    if let Some(field) = &app.field {
        let cursor = field::draw(f, field, main);
        if !app.help {
            f.set_cursor_position(cursor);
        }
    }
    f.render_widget(
        Paragraph::new(footer_line(app, footer.width as usize)),
        footer,
    );
    if app.help {
        draw_help(f, app, area);
    }
}

fn draw_tabs(f: &mut Frame, app: &App, area: Rect) {
    let titles: Vec<Line> = Tab::ALL.iter().map(|t| Line::raw(t.title())).collect();
    let right = match (&app.models.active, &app.models.loading) {
        (_, Some((n, _))) => format!("loading {n}… "),
        (Some(n), None) => format!("● {n} "),
        (None, None) => "no model ".into(),
    };
    let [l, r] = Layout::horizontal([
        Constraint::Min(10),
        Constraint::Length(right.chars().count() as u16),
    ])
    .areas(area);
    let tabs = Tabs::new(titles)
        .select(app.tab.index())
        .style(DIM)
        .highlight_style(
            Style::new()
                .fg(Color::Cyan)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED),
        )
        .divider("│");
    f.render_widget(tabs, l);
    f.render_widget(
        Paragraph::new(Line::styled(right, Style::new().fg(Color::Green))),
        r,
    );
}

/// The keys that matter in the tab in front, as many as fit in `width`.
fn footer_line(app: &App, width: usize) -> Line<'static> {
    let k = |n: &str| app.keymap.keys(n);
    let mut items: Vec<(String, &str)> = vec![(k("help"), "help")];
    if app.field.is_some() {
        items = vec![
            ("enter".into(), "ok"),
            ("esc".into(), "cancel"),
            ("tab".into(), "complete"),
        ];
        items.push((k("quit"), "quit"));
        return key_spans(items, width);
    }
    items.extend(match app.tab {
        Tab::Chat => vec![
            (k("submit"), "send"),
            (k("newline"), "new line"),
            (k("stop"), "stop"),
            (k("toggle_reasoning"), "reasoning"),
            (k("toggle_raw"), "raw"),
            ("pgup/pgdn".into(), "scroll"),
        ],
        Tab::Models => vec![
            (k("select_prev") + "/" + &k("select_next"), "select"),
            (k("load"), "load"),
            (k("unload"), "unload"),
            (k("rescan"), "rescan"),
            (k("pull"), "pull"),
        ],
        Tab::Batch => batch::footer(app),
        Tab::Bench => bench::footer(app),
        Tab::Server => server::footer(app),
    });
    items.extend([(k("next_tab"), "next tab"), (k("quit"), "quit")]);
    key_spans(items, width)
}

/// Key hints as footer spans, as many as fit in `width`.
fn key_spans(items: Vec<(String, &str)>, width: usize) -> Line<'static> {
    let mut spans = Vec::new();
    let mut used = 0;
    for (key, what) in items {
        let w = key.chars().count() + what.chars().count() + 5;
        if used + w > width {
            continue;
        }
        used += w;
        spans.push(Span::styled(
            format!(" {key} "),
            Style::new().fg(Color::Black).bg(Color::DarkGray),
        ));
        spans.push(Span::styled(format!(" {what}  "), DIM));
    }
    Line::from(spans)
}

fn draw_help(f: &mut Frame, app: &App, area: Rect) {
    let w = area.width.saturating_sub(4).min(90);
    let h = area.height.saturating_sub(2);
    let popup = Rect::new(area.x + (area.width - w) / 2, area.y + 1, w, h);
    let mut lines = Vec::new();
    let head = |s: &str| {
        Line::styled(
            s.to_string(),
            Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
        )
    };
    for (scope, title) in Scope::ALL {
        lines.push(head(title));
        for b in bindings().into_iter().filter(|b| b.scope == scope) {
            lines.push(Line::from(vec![
                Span::styled(
                    format!("  {:<22}", app.keymap.keys(b.name)),
                    Style::new().fg(Color::Yellow),
                ),
                Span::raw(b.about),
            ]));
        }
        if scope == Scope::Chat {
            lines.push(Line::styled(
                "  editing: ←/→ ctrl-←/→ home/end backspace delete ctrl-u · mouse wheel scrolls",
                DIM,
            ));
        }
        if scope == Scope::Global {
            lines.push(Line::styled(
                "  in a text field: enter takes it · esc closes it · tab completes a path",
                DIM,
            ));
        }
    }
    lines.push(head("Slash commands (type in the chat)"));
    for (c, about) in COMMANDS {
        lines.push(Line::from(vec![
            Span::styled(format!("  {c:<22}"), Style::new().fg(Color::Yellow)),
            Span::raw(about),
        ]));
    }
    lines.push(Line::styled("keys are set in [keymap] of config.toml", DIM));
    let inner_h = popup.height.saturating_sub(2) as usize;
    let max = lines.len().saturating_sub(inner_h);
    let top = app.help_scroll.min(max);
    let hint = if max > 0 {
        format!(
            " ↑/↓ pgup/pgdn scroll ({}/{}) · other keys close ",
            top, max
        )
    } else {
        " any key closes ".to_string()
    };
    f.render_widget(Clear, popup);
    f.render_widget(
        Paragraph::new(lines).scroll((top as u16, 0)).block(
            Block::bordered()
                .title(" Help ")
                .title_bottom(Line::styled(hint, DIM))
                .border_style(Style::new().fg(Color::Cyan)),
        ),
        popup,
    );
}
