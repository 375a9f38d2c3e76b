//! The gauges strip: always visible, two lines.

use crate::tui::gauges::{bytes, Gauges};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline, Widget};

const LABEL: Style = Style::new().fg(Color::DarkGray);
const DASH: &str = "—";

pub struct GaugesView<'a> {
    pub gauges: &'a Gauges,
    pub streaming: bool,
}

fn field(label: &str, value: String) -> Vec<Span<'static>> {
    vec![
        Span::styled(format!("{label} "), LABEL),
        Span::styled(value, Style::new().fg(Color::White)),
        Span::styled("  ", LABEL),
    ]
}

fn kv_bar(used: usize, cap: usize, width: usize) -> String {
    let filled = if cap == 0 {
        0
    } else {
        (used * width).div_ceil(cap).min(width)
    };
    format!("{}{}", "█".repeat(filled), "░".repeat(width - filled))
}

impl Widget for GaugesView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let g = self.gauges;
        let [top, bottom] =
            Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(area);
        let hist = g.history();
        // The current second is partial: show the last complete one as the rate.
        let rate = if self.streaming {
            hist[hist.len().saturating_sub(2)]
        } else {
            0
        };
        let label = format!(
            "tok/s {:>4} ",
            if self.streaming {
                rate.to_string()
            } else {
                DASH.into()
            }
        );
        let spark_w = (area.width / 5).clamp(8, 60);
        let [l, s, rest] = Layout::horizontal([
            Constraint::Length(label.len() as u16),
            Constraint::Length(spark_w),
            Constraint::Min(0),
        ])
        .areas(top);
        buf.set_string(l.x, l.y, label, LABEL);
        let data: Vec<u64> = hist[hist.len().saturating_sub(spark_w as usize)..].to_vec();
        Sparkline::default()
            .data(&data)
            .style(Style::new().fg(Color::Green))
            .render(s, buf);
        let mut spans = vec![Span::raw(" ")];
        spans.extend(field(
            "TTFT",
            g.last_ttft_ms.map_or(DASH.into(), |t| format!("{t:.0} ms")),
        ));
        spans.extend(field(
            "prefill",
            g.last_prefill_tok_s
                .map_or(DASH.into(), |t| format!("{t:.0} tok/s")),
        ));
        spans.extend(field(
            "decode",
            g.last_decode_tok_s
                .map_or(DASH.into(), |t| format!("{t:.1} tok/s")),
        ));
        Paragraph::new(Line::from(spans)).render(rest, buf);

        let p = g.process;
        let mut spans = Vec::new();
        spans.extend(field(
            "CPU",
            p.and_then(|p| p.cpu_percent)
                .map_or(DASH.into(), |c| format!("{c:.0}%")),
        ));
        spans.extend(field("RSS", p.map_or(DASH.into(), |p| bytes(p.rss_bytes))));
        spans.extend(field(
            "mem",
            p.filter(|p| p.sys_total_bytes > 0)
                .map_or(DASH.into(), |p| {
                    format!("{} / {}", bytes(p.sys_used_bytes), bytes(p.sys_total_bytes))
                }),
        ));
        spans.extend(field(
            "KV",
            g.kv.map_or(DASH.into(), |(u, c)| format!("{} {u}/{c}", kv_bar(u, c, 8))),
        ));
        spans.extend(field(
            "GPU",
            p.and_then(|p| p.gpu).map_or(DASH.into(), |gpu| {
                format!(
                    "{:.0}% {} / {}",
                    gpu.util_percent,
                    bytes(gpu.mem_used_bytes),
                    bytes(gpu.mem_total_bytes)
                )
            }),
        ));
        Paragraph::new(Line::from(spans)).render(bottom, buf);
    }
}
