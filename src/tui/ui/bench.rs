//! Drawing the Bench tab: the form on the left; on the right the run's status, the live
//! tok/s chart of long runs (one line per window), the results tables as tests finish,
//! the PASS/FAIL checks and the report folder.

use crate::bench::long::{fmt_opt, fmt_pct, window_label};
use crate::bench::report::check_line;
use crate::tui::app::App;
use crate::tui::bench::{BenchTab, Mode, Outcome, Row};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Chart, Dataset, GraphType, Paragraph, Row as TRow, Table, Wrap,
};
use ratatui::Frame;

const DIM: Style = Style::new().fg(Color::DarkGray);
const HEAD: Style = Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD);
const COLORS: [Color; 6] = [
    Color::Cyan,
    Color::Yellow,
    Color::Magenta,
    Color::Green,
    Color::Blue,
    Color::Red,
];
const FORM_WIDTH: u16 = 40;

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let w = FORM_WIDTH.min(area.width / 2);
    let [form, live] = Layout::horizontal([Constraint::Length(w), Constraint::Fill(1)]).areas(area);
    draw_form(f, app, form);
    draw_live(f, app, live);
}

fn draw_form(f: &mut Frame, app: &App, area: Rect) {
    let b = &app.bench;
    let rows = b.form.rows(app.models.rows.len());
    let sel = b.sel.min(rows.len().saturating_sub(1));
    let active = app.models.active.as_deref();
    let chosen = b.form.chosen(active);
    let mut lines = vec![Line::styled("Models", HEAD)];
    for (k, row) in rows.iter().enumerate() {
        let mark = if k == sel { "▸ " } else { "  " };
        let line = match *row {
            Row::Model(i) => {
                let m = &app.models.rows[i];
                let on = chosen.contains(&m.name);
                let tag = if Some(m.name.as_str()) == active {
                    " ●"
                } else if m.remote.is_some() {
                    " remote"
                } else if m.info.is_err() {
                    " unreadable"
                } else {
                    ""
                };
                Line::from(vec![
                    Span::raw(format!("{mark}[{}] {}", if on { "x" } else { " " }, m.name)),
                    Span::styled(tag, Style::new().fg(Color::Green)),
                ])
            }
            Row::Mode => Line::from(vec![
                Span::raw(format!("{mark}{:<14}", "mode")),
                Span::styled(b.form.mode.label(), Style::new().fg(Color::Yellow)),
            ]),
            Row::Field(id) => Line::from(vec![
                Span::raw(format!("{mark}{:<14}", id.label(b.form.mode))),
                Span::styled(b.form.text(id), Style::new().fg(Color::Yellow)),
            ]),
        };
        if *row == Row::Mode {
            lines.push(Line::raw(""));
        }
        lines.push(if k == sel {
            line.style(Style::new().add_modifier(Modifier::REVERSED))
        } else {
            line
        });
    }
    if app.models.rows.is_empty() {
        lines.insert(1, Line::styled("  no models found", DIM));
    }
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Bench ")),
        area,
    );
}

fn status(app: &App) -> Vec<Line<'static>> {
    let b = &app.bench;
    let mut out = Vec::new();
    if let Some(e) = &b.error {
        out.push(Line::styled(e.clone(), Style::new().fg(Color::Red)));
    }
    if let Some(r) = &b.running {
        let model = b.live.models.last().cloned().unwrap_or_default();
        out.push(Line::from(vec![
            Span::styled("running ", Style::new().fg(Color::Yellow)),
            Span::raw(format!(
                "{model} · {} s · {}",
                r.since.elapsed().as_secs(),
                b.step.as_deref().unwrap_or("starting")
            )),
        ]));
        return out;
    }
    match &b.outcome {
        Some(Outcome::Report(dir)) => {
            let (pass, fail) =
                b.live.checks.iter().fold(
                    (0, 0),
                    |(p, f), (_, c)| {
                        if c.pass {
                            (p + 1, f)
                        } else {
                            (p, f + 1)
                        }
                    },
                );
            let mut spans = vec![Span::styled("done", Style::new().fg(Color::Green))];
            if pass + fail > 0 {
                spans.push(Span::raw(format!(": {pass} PASS, {fail} FAIL")));
            }
            out.push(Line::from(spans));
            out.push(Line::raw(format!("report: {}", dir.display())));
        }
        Some(Outcome::Cancelled) => out.push(Line::styled(
            "cancelled: no report was written",
            Style::new().fg(Color::Yellow),
        )),
        Some(Outcome::Failed(e)) => out.push(Line::styled(
            format!("error: {e}"),
            Style::new().fg(Color::Red),
        )),
        None if b.error.is_none() => out.push(Line::styled(
            format!(
                "press {} to run the benchmark ({}) on the chosen models",
                app.keymap.keys("bench_run"),
                b.form.mode.label()
            ),
            DIM,
        )),
        None => {}
    }
    out
}

fn draw_live(f: &mut Frame, app: &App, area: Rect) {
    let b = &app.bench;
    let block = Block::bordered().title(" Results ");
    let inner = block.inner(area);
    f.render_widget(block, area);
    let status_lines = status(app);
    let status_h = wrapped_h(&status_lines, inner.width).min(6);
    let status = Paragraph::new(status_lines).wrap(Wrap { trim: false });
    let check_lines = check_lines(b);
    let checks_h = wrapped_h(&check_lines, inner.width);
    let checks = Paragraph::new(check_lines).wrap(Wrap { trim: false });
    let standard = standard_table(b);
    let latency = latency_table(b);
    let long = long_table(b);
    let long_mode = b.run_mode == Mode::Long && (b.running.is_some() || b.outcome.is_some())
        || !b.live.series.is_empty();
    let [s, chart, t1, t2, t3, c, _] = Layout::vertical([
        Constraint::Length(status_h + 1),
        if long_mode {
            Constraint::Min(8)
        } else {
            Constraint::Length(0)
        },
        Constraint::Length(table_h(b.live.tests.len())),
        Constraint::Length(table_h(b.live.latency.len() * 4)),
        Constraint::Length(table_h(b.live.long.len())),
        Constraint::Length(checks_h.min(inner.height / 2)),
        Constraint::Fill(if long_mode { 0 } else { 1 }),
    ])
    .areas(inner);
    f.render_widget(status, s);
    if long_mode {
        draw_chart(f, b, chart);
    }
    f.render_widget(standard, t1);
    f.render_widget(latency, t2);
    f.render_widget(long, t3);
    f.render_widget(checks, c);
}

/// Rows `lines` take wrapped at `width` (about: words wrap a little earlier).
fn wrapped_h(lines: &[Line], width: u16) -> u16 {
    let w = width.max(1) as usize;
    lines
        .iter()
        .map(|l| l.width().max(1).div_ceil(w) as u16)
        .sum()
}

/// A table's height: header, rows and a blank line; none without rows.
fn table_h(rows: usize) -> u16 {
    if rows == 0 {
        0
    } else {
        rows as u16 + 2
    }
}

fn header(cells: &[&'static str]) -> TRow<'static> {
    TRow::new(cells.to_vec()).style(HEAD)
}

fn standard_table(b: &BenchTab) -> Table<'static> {
    let rows = b
        .live
        .tests
        .iter()
        .map(|(m, t)| TRow::new(vec![t.test.clone(), m.clone(), t.tok_s.mean_sd(2)]));
    Table::new(
        rows,
        [
            Constraint::Length(14),
            Constraint::Fill(1),
            Constraint::Length(20),
        ],
    )
    .header(header(&["test", "model", "tok/s"]))
}

fn latency_table(b: &BenchTab) -> Table<'static> {
    let rows = b.live.latency.iter().flat_map(|(m, l)| {
        [
            ("TTFT", &l.ttft_ms),
            ("TPOT", &l.tpot_ms),
            ("ITL", &l.itl_ms),
            ("E2E", &l.e2e_ms),
        ]
        .map(|(name, x)| {
            TRow::new(vec![
                name.to_string(),
                m.clone(),
                format!("{:.2}", x.mean),
                format!("{:.2}", x.p50),
                format!("{:.2}", x.p90),
                format!("{:.2}", x.p99),
            ])
        })
    });
    let n = Constraint::Length(9);
    Table::new(
        rows.collect::<Vec<_>>(),
        [Constraint::Length(6), Constraint::Fill(1), n, n, n, n],
    )
    .header(header(&["ms", "model", "mean", "p50", "p90", "p99"]))
}

fn long_table(b: &BenchTab) -> Table<'static> {
    let rows = b.live.long.iter().map(|(m, l)| {
        TRow::new(vec![
            window_label(l.window),
            m.clone(),
            l.generated.to_string(),
            format!("{:.2}", l.last_quarter_tok_s),
            fmt_opt(l.ratio, 2),
            fmt_pct(l.rss_growth_pct),
        ])
    });
    Table::new(
        rows.collect::<Vec<_>>(),
        [
            Constraint::Length(7),
            Constraint::Fill(1),
            Constraint::Length(7),
            Constraint::Length(12),
            Constraint::Length(7),
            Constraint::Length(9),
        ],
    )
    .header(header(&[
        "window",
        "model",
        "tokens",
        "tok/s last¼",
        "×first",
        "RSS",
    ]))
}

fn check_lines(b: &BenchTab) -> Vec<Line<'static>> {
    b.live
        .checks
        .iter()
        .map(|(m, c)| {
            let line = check_line(m, c);
            let (word, rest) = line.split_at(4);
            let color = if c.pass { Color::Green } else { Color::Red };
            Line::from(vec![
                Span::styled(
                    word.to_string(),
                    Style::new().fg(color).add_modifier(Modifier::BOLD),
                ),
                Span::raw(rest.to_string()),
            ])
        })
        .collect()
}

fn draw_chart(f: &mut Frame, b: &BenchTab, area: Rect) {
    if area.height < 4 {
        return;
    }
    let many = b.live.models.len() > 1;
    let datasets: Vec<Dataset> = b
        .live
        .series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            Dataset::default()
                .name(s.name(many))
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(COLORS[i % COLORS.len()]))
                .data(&s.points)
        })
        .collect();
    let points = || b.live.series.iter().flat_map(|s| s.points.iter());
    let planned = b.run_config.as_ref().map_or(0, |c| c.long_gen_tokens);
    let x_max = points()
        .map(|p| p.0)
        .fold(planned as f64, f64::max)
        .max(1.0);
    let y_max = (points().map(|p| p.1).fold(0.0, f64::max) * 1.1).max(1.0);
    let labels = |max: f64| [0.0, max / 2.0, max].map(|v| Span::styled(format!("{v:.0}"), DIM));
    let chart = Chart::new(datasets)
        .block(Block::new().title(Line::styled("tok/s per block vs generated tokens", HEAD)))
        .x_axis(
            Axis::default()
                .title("tokens")
                .style(DIM)
                .bounds([0.0, x_max])
                .labels(labels(x_max)),
        )
        .y_axis(
            Axis::default()
                .title("tok/s")
                .style(DIM)
                .bounds([0.0, y_max])
                .labels(labels(y_max)),
        )
        .hidden_legend_constraints((Constraint::Percentage(60), Constraint::Percentage(60)));
    f.render_widget(chart, area);
}

/// The tab's keys for the footer: (keys, what they do).
pub fn footer(app: &App) -> Vec<(String, &'static str)> {
    let k = |n: &str| app.keymap.keys(n);
    vec![
        (k("bench_prev") + "/" + &k("bench_next"), "move"),
        (k("bench_toggle"), "choose model"),
        (k("bench_edit"), "edit"),
        (k("bench_mode"), "mode"),
        (k("bench_run"), "run"),
        (k("bench_cancel"), "cancel"),
    ]
}
