//! Drawing the Server tab: where the server stands and what it serves, its counters (the
//! `/metrics` highlights), and the live request log, newest at the bottom.

use crate::server::metrics::Highlights;
use crate::server::request_log::RequestEntry;
use crate::tui::app::App;
use crate::tui::server::{ServerTab, Status};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

const DIM: Style = Style::new().fg(Color::DarkGray);
const LABEL: Style = Style::new().fg(Color::Cyan);

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let [head, counters, log] = Layout::vertical([
        Constraint::Length(8),
        Constraint::Length(4),
        Constraint::Min(4),
    ])
    .areas(area);
    draw_head(f, app, head);
    f.render_widget(
        Paragraph::new(counter_lines(&app.server.highlights)).block(
            Block::bordered()
                .title(" Counters since start (/metrics) ")
                .border_style(DIM),
        ),
        counters,
    );
    draw_log(f, &app.server, log);
}

fn key(app: &App, name: &str) -> String {
    app.keymap.keys(name)
}

fn draw_head(f: &mut Frame, app: &App, area: Rect) {
    let s = &app.server;
    let status = match &s.status {
        Status::Running(addr) => Line::styled(
            format!("● running at http://{addr}"),
            Style::new().fg(Color::Green).add_modifier(Modifier::BOLD),
        ),
        Status::Stopped => Line::styled(
            format!("○ stopped · {} starts it", key(app, "server_toggle")),
            DIM,
        ),
        Status::Starting => Line::styled(
            format!("◌ starting on {}…", s.addr()),
            Style::new().fg(Color::Yellow),
        ),
        Status::Stopping => Line::styled(
            "◌ stopping: requests in flight finish first…",
            Style::new().fg(Color::Yellow),
        ),
        Status::Error(e) => Line::styled(format!("✗ {e}"), Style::new().fg(Color::Red)),
    };
    let model = match (&s.status, &s.model, &app.models.active) {
        (Status::Running(_), Some(m), _) => Span::raw(m.clone()),
        (_, _, Some(m)) => Span::raw(format!("{m} (the model in use)")),
        _ => Span::styled("none: load a model in the Models tab first", DIM),
    };
    let key_line = match s.api_key() {
        Some(k) => {
            let from = if s.key_from_env {
                "from LMWB_API_KEY"
            } else {
                "made up for this session"
            };
            vec![
                Span::styled("on  ", Style::new().fg(Color::Green)),
                Span::raw(k.to_string()),
                Span::styled(format!("  ({from}; send Authorization: Bearer KEY)"), DIM),
            ]
        }
        None => vec![
            Span::raw("off "),
            Span::styled(
                format!(
                    " any client may call · {} requires a key",
                    key(app, "server_key")
                ),
                DIM,
            ),
        ],
    };
    let field = |name: &str| Span::styled(format!("{name:<9}"), LABEL);
    let mut lines = vec![
        status,
        Line::from(vec![field("model"), model]),
        Line::from(vec![
            field("address"),
            Span::raw(s.host.clone()),
            Span::styled("   port ", LABEL),
            Span::raw(s.port.to_string()),
            Span::styled(
                format!(
                    "   {} edits the address, {} the port",
                    key(app, "server_host"),
                    key(app, "server_port")
                ),
                DIM,
            ),
        ]),
        Line::from([vec![field("API key")], key_line].concat()),
    ];
    if let Some(n) = &s.notice {
        lines.push(Line::styled(n.clone(), Style::new().fg(Color::Yellow)));
    } else {
        lines.push(Line::styled(
            format!(
                "lmwb serve's server: OpenAI and Anthropic APIs under /v1, Ollama's under /api · {} copies the URL",
                key(app, "server_copy")
            ),
            DIM,
        ));
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(" Server ").border_style(DIM)),
        area,
    );
}

/// Seconds as milliseconds, `—` before the first.
fn ms(secs: Option<f64>) -> String {
    match secs {
        None => "—".into(),
        Some(s) if s * 1000.0 >= 10.0 => format!("{:.0} ms", s * 1000.0),
        Some(s) => format!("{:.1} ms", s * 1000.0),
    }
}

fn counter_lines(h: &Highlights) -> Vec<Line<'static>> {
    let pair = |label: &str, value: String, style: Style| {
        vec![
            Span::styled(format!("{label} "), LABEL),
            Span::styled(value, style),
            Span::raw("   "),
        ]
    };
    let errors = if h.errors > 0 {
        Style::new().fg(Color::Red)
    } else {
        Style::new()
    };
    let first = Line::from(
        [
            pair("requests", h.requests.to_string(), Style::new()),
            pair("errors", h.errors.to_string(), errors),
            pair(
                "tokens in",
                format!("{} · out {}", h.prompt_tokens, h.generated_tokens),
                Style::new(),
            ),
        ]
        .concat(),
    );
    let second = Line::from(
        [
            pair("in flight", h.in_flight.to_string(), Style::new()),
            pair("queued", h.queued.to_string(), Style::new()),
            pair(
                "mean TTFT",
                format!("{} ({})", ms(h.ttft_mean_s), h.ttft_count),
                Style::new(),
            ),
            pair("mean ITL", ms(h.itl_mean_s), Style::new()),
        ]
        .concat(),
    );
    vec![first, second]
}

fn duration(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else if ms < 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

fn row(e: &RequestEntry) -> Row<'static> {
    let status = if e.status >= 400 {
        Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
    } else {
        Style::new().fg(Color::Green)
    };
    let tokens = if e.prompt_tokens + e.generated_tokens > 0 {
        format!("{}→{}", e.prompt_tokens, e.generated_tokens)
    } else {
        "—".into()
    };
    Row::new(vec![
        Cell::from(e.time.clone()).style(DIM),
        Cell::from(e.method.clone()),
        Cell::from(e.path.clone()),
        Cell::from(e.model.clone().unwrap_or_else(|| "—".into())),
        Cell::from(e.status.to_string()).style(status),
        Cell::from(tokens),
        Cell::from(duration(e.duration_ms)),
        Cell::from(e.client.map_or("—".into(), |c| c.to_string())).style(DIM),
    ])
}

fn draw_log(f: &mut Frame, s: &ServerTab, area: Rect) {
    let title = format!(" Requests · {} ", s.log.len());
    let block = Block::bordered().title(title).border_style(DIM);
    if s.log.is_empty() {
        let hint = if s.running() {
            format!("no requests yet: try curl {}/models", s.base_url())
        } else {
            "requests show here as they end".into()
        };
        f.render_widget(Paragraph::new(Line::styled(hint, DIM)).block(block), area);
        return;
    }
    let fit = area.height.saturating_sub(3) as usize;
    let skip = s.log.len().saturating_sub(fit);
    let rows: Vec<Row> = s.log.iter().skip(skip).map(row).collect();
    let header = Row::new([
        "time", "method", "path", "model", "st", "tokens", "took", "client",
    ])
    .style(Style::new().add_modifier(Modifier::BOLD));
    let widths = [
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(22),
        Constraint::Fill(1),
        Constraint::Length(3),
        Constraint::Length(9),
        Constraint::Length(8),
        Constraint::Length(21),
    ];
    f.render_widget(Table::new(rows, widths).header(header).block(block), area);
}

/// The tab's keys for the footer: (keys, what they do).
pub fn footer(app: &App) -> Vec<(String, &'static str)> {
    let toggle = if app.server.running() {
        "stop"
    } else {
        "start"
    };
    vec![
        (key(app, "server_toggle"), toggle),
        (key(app, "server_key"), "API key"),
        (key(app, "server_host"), "address"),
        (key(app, "server_port"), "port"),
        (key(app, "server_copy"), "copy URL"),
    ]
}
