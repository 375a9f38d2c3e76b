//! Markdown → styled terminal lines, wrapped to a width: headings, emphasis, lists,
//! quotes, links, tables (shrunk to fit), rules, and fenced code blocks with a language
//! label and syntax highlighting. Works on partial input (an unclosed fence is a code
//! block to the end), so a streaming reply renders as it grows.

use super::highlight;
use super::wrap::LineBuilder;
use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use unicode_width::UnicodeWidthStr;

/// A fenced code block found while rendering (for `/copy N`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeBlock {
    pub lang: String,
    pub code: String,
}

/// Rendered lines plus the code blocks, in order.
#[derive(Clone, Debug, Default)]
pub struct Rendered {
    pub lines: Vec<Line<'static>>,
    pub code_blocks: Vec<CodeBlock>,
}

pub fn render(md: &str, width: usize) -> Rendered {
    render_numbered(md, width, 1)
}

/// As [`render`], numbering code block labels from `first` (numbers run across a transcript).
pub fn render_numbered(md: &str, width: usize, first: usize) -> Rendered {
    let mut r = Renderer::new(width.max(10));
    r.first_block = first;
    r.run(md)
}

/// Only the fenced code blocks of `md`.
pub fn code_blocks(md: &str) -> Vec<CodeBlock> {
    let mut out = Vec::new();
    let mut cur: Option<CodeBlock> = None;
    for ev in Parser::new_ext(md, options()) {
        match ev {
            Event::Start(Tag::CodeBlock(kind)) => {
                cur = Some(CodeBlock {
                    lang: lang_of(&kind),
                    code: String::new(),
                })
            }
            Event::Text(t) => {
                if let Some(c) = cur.as_mut() {
                    c.code.push_str(&t)
                }
            }
            Event::End(TagEnd::CodeBlock) => out.extend(cur.take()),
            _ => {}
        }
    }
    out.extend(cur);
    out
}

fn options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS
}

fn lang_of(kind: &CodeBlockKind) -> String {
    match kind {
        CodeBlockKind::Fenced(l) => l.split_whitespace().next().unwrap_or("").to_string(),
        CodeBlockKind::Indented => String::new(),
    }
}

struct Table {
    rows: Vec<Vec<String>>,
    cell: String,
    header_rows: usize,
}

struct Renderer {
    b: LineBuilder,
    styles: Vec<Style>,
    /// One entry per open list: the next number, or None for bullets.
    lists: Vec<Option<u64>>,
    quote: usize,
    code: Option<CodeBlock>,
    link: Option<String>,
    table: Option<Table>,
    blocks: Vec<CodeBlock>,
    /// A block has been written (so the next one gets a blank line before it).
    started: bool,
    first_block: usize,
}

const DIM: Color = Color::DarkGray;

impl Renderer {
    fn new(width: usize) -> Renderer {
        Renderer {
            b: LineBuilder::new(width),
            styles: vec![Style::default()],
            lists: vec![],
            quote: 0,
            code: None,
            link: None,
            table: None,
            blocks: vec![],
            started: false,
            first_block: 1,
        }
    }

    fn style(&self) -> Style {
        *self.styles.last().unwrap_or(&Style::default())
    }

    fn push_style(&mut self, f: impl Fn(Style) -> Style) {
        let s = f(self.style());
        self.styles.push(s);
    }

    fn pop_style(&mut self) {
        if self.styles.len() > 1 {
            self.styles.pop();
        }
    }

    fn prefix(&self) -> Vec<Span<'static>> {
        let mut p = Vec::new();
        for _ in 0..self.quote {
            p.push(Span::styled("│ ", Style::default().fg(DIM)));
        }
        p
    }

    /// Start a block: a blank line between blocks (not inside a tight list item).
    fn block_start(&mut self) {
        self.b.flush();
        if self.started && self.lists.is_empty() {
            let prefix = self.prefix();
            self.b.blank(prefix);
        }
        self.started = true;
        let prefix = self.prefix();
        self.b.set_prefix(prefix.clone(), prefix);
    }

    fn run(mut self, md: &str) -> Rendered {
        for ev in Parser::new_ext(md, options()) {
            self.event(ev);
        }
        if self.code.is_some() {
            self.end_code();
        }
        self.b.flush();
        Rendered {
            lines: self.b.into_lines(),
            code_blocks: self.blocks,
        }
    }

    fn event(&mut self, ev: Event) {
        if let Some(t) = self.table.as_mut() {
            match ev {
                Event::Text(s) | Event::Code(s) => return t.cell.push_str(&s),
                Event::SoftBreak | Event::HardBreak => return t.cell.push(' '),
                Event::End(TagEnd::TableCell) => {
                    let cell = std::mem::take(&mut t.cell);
                    if let Some(row) = t.rows.last_mut() {
                        row.push(cell.trim().to_string());
                    }
                    return;
                }
                Event::Start(Tag::TableHead) | Event::Start(Tag::TableRow) => {
                    t.rows.push(vec![]);
                    if matches!(ev, Event::Start(Tag::TableHead)) {
                        t.header_rows = t.rows.len();
                    }
                    return;
                }
                Event::End(TagEnd::Table) => return self.end_table(),
                _ => return,
            }
        }
        if let Some(c) = self.code.as_mut() {
            match ev {
                Event::Text(s) => return c.code.push_str(&s),
                Event::End(TagEnd::CodeBlock) => return self.end_code(),
                _ => return,
            }
        }
        match ev {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(s) => {
                let st = self.style();
                self.b.text(&s, st);
            }
            Event::Code(s) => {
                let st = self.style().fg(Color::Yellow);
                self.b.text(&s, st);
            }
            Event::Html(s) | Event::InlineHtml(s) => {
                let st = self.style().fg(DIM);
                self.b.text(s.trim_end_matches('\n'), st);
            }
            Event::SoftBreak => self.b.text(" ", Style::default()),
            Event::HardBreak => self.b.newline(),
            Event::Rule => {
                self.block_start();
                let w = self.b.avail();
                self.b.text(&"─".repeat(w), Style::default().fg(DIM));
                self.b.flush();
            }
            Event::TaskListMarker(done) => {
                let st = self.style().fg(Color::Cyan);
                self.b.text(if done { "[x] " } else { "[ ] " }, st);
            }
            _ => {}
        }
    }

    fn start(&mut self, tag: Tag) {
        match tag {
            Tag::Paragraph if !self.b.item_pending() => self.block_start(),
            Tag::Heading { level, .. } => {
                self.block_start();
                let n = heading_level(level);
                let color = [Color::Magenta, Color::Cyan, Color::Green][(n - 1).min(2)];
                self.push_style(|s| s.fg(color).add_modifier(Modifier::BOLD));
                let st = self.style();
                self.b.text(&format!("{} ", "#".repeat(n)), st);
            }
            Tag::BlockQuote(_) => {
                self.block_start();
                self.quote += 1;
                self.push_style(|s| s.add_modifier(Modifier::ITALIC));
                let p = self.prefix();
                self.b.set_prefix(p.clone(), p);
                self.b.mark_item(); // the quote's first paragraph needs no blank line of its own
            }
            Tag::CodeBlock(kind) => {
                self.block_start();
                self.code = Some(CodeBlock {
                    lang: lang_of(&kind),
                    code: String::new(),
                });
            }
            Tag::List(start) => {
                if self.lists.is_empty() {
                    self.block_start();
                }
                self.b.flush();
                self.lists.push(start);
            }
            Tag::Item => {
                self.b.flush();
                let depth = self.lists.len().saturating_sub(1);
                let marker = match self.lists.last_mut() {
                    Some(Some(n)) => {
                        *n += 1;
                        format!("{}. ", *n - 1)
                    }
                    _ => ["• ", "◦ ", "▪ "][depth % 3].to_string(),
                };
                let indent = "  ".repeat(depth);
                let mut first = self.prefix();
                first.push(Span::raw(indent.clone()));
                first.push(Span::styled(
                    marker.clone(),
                    Style::default().fg(Color::Cyan),
                ));
                let mut rest = self.prefix();
                rest.push(Span::raw(format!("{indent}{}", " ".repeat(marker.width()))));
                self.b.set_prefix(first, rest);
                self.b.mark_item();
            }
            Tag::Emphasis => self.push_style(|s| s.add_modifier(Modifier::ITALIC)),
            Tag::Strong => self.push_style(|s| s.add_modifier(Modifier::BOLD)),
            Tag::Strikethrough => self.push_style(|s| s.add_modifier(Modifier::CROSSED_OUT)),
            Tag::Link { dest_url, .. } => {
                self.link = Some(dest_url.to_string());
                self.push_style(|s| s.fg(Color::Blue).add_modifier(Modifier::UNDERLINED));
            }
            Tag::Image { dest_url, .. } => {
                self.link = Some(dest_url.to_string());
                self.push_style(|s| s.fg(Color::Blue));
                let st = self.style();
                self.b.text("[image] ", st);
            }
            Tag::Table(_) => {
                self.block_start();
                self.table = Some(Table {
                    rows: vec![],
                    cell: String::new(),
                    header_rows: 0,
                });
            }
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph => self.b.flush(),
            TagEnd::Heading(_) => {
                self.pop_style();
                self.b.flush();
            }
            TagEnd::BlockQuote(_) => {
                self.b.flush();
                self.quote = self.quote.saturating_sub(1);
                self.pop_style();
                let p = self.prefix();
                self.b.set_prefix(p.clone(), p);
            }
            TagEnd::List(_) => {
                self.b.flush();
                self.lists.pop();
                let p = self.prefix();
                self.b.set_prefix(p.clone(), p);
            }
            TagEnd::Item => self.b.flush(),
            TagEnd::Emphasis | TagEnd::Strong | TagEnd::Strikethrough => self.pop_style(),
            TagEnd::Link | TagEnd::Image => {
                self.pop_style();
                if let Some(url) = self.link.take() {
                    if !url.is_empty() {
                        self.b.text(&format!(" ({url})"), Style::default().fg(DIM));
                    }
                }
            }
            _ => {}
        }
    }

    fn end_code(&mut self) {
        let Some(block) = self.code.take() else {
            return;
        };
        let n = self.blocks.len() + self.first_block;
        let label = if block.lang.is_empty() {
            format!("─ code [{n}] ")
        } else {
            format!("─ {} [{n}] ", block.lang)
        };
        let w = self.b.avail();
        let fill = w.saturating_sub(label.width());
        self.b.flush();
        self.b.text(
            &format!("{label}{}", "─".repeat(fill)),
            Style::default().fg(DIM),
        );
        self.b.flush();
        for spans in highlight::highlight(&block.code, &block.lang) {
            self.b.code_line(spans);
        }
        self.blocks.push(block);
    }

    fn end_table(&mut self) {
        let Some(t) = self.table.take() else { return };
        let cols = t.rows.iter().map(Vec::len).max().unwrap_or(0);
        if cols == 0 {
            return;
        }
        let mut widths = vec![1usize; cols];
        for row in &t.rows {
            for (i, c) in row.iter().enumerate() {
                widths[i] = widths[i].max(c.width());
            }
        }
        // Shrink the widest column until the table fits: cells + " │ " separators.
        let avail = self.b.avail();
        let sep = 3 * (cols - 1);
        while widths.iter().sum::<usize>() + sep > avail {
            let (i, &w) = widths.iter().enumerate().max_by_key(|(_, w)| **w).unwrap();
            if w <= 3 {
                break;
            }
            widths[i] -= 1;
        }
        let border = Style::default().fg(DIM);
        for (r, row) in t.rows.iter().enumerate() {
            let mut spans = Vec::new();
            for (i, w) in widths.iter().enumerate() {
                if i > 0 {
                    spans.push(Span::styled(" │ ", border));
                }
                let cell = row.get(i).map(String::as_str).unwrap_or("");
                let style = if r < t.header_rows {
                    Style::default().add_modifier(Modifier::BOLD)
                } else {
                    Style::default()
                };
                spans.push(Span::styled(fit(cell, *w), style));
            }
            self.b.code_line(spans);
            if r + 1 == t.header_rows {
                let rule: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
                self.b
                    .code_line(vec![Span::styled(rule.join("─┼─"), border)]);
            }
        }
    }
}

fn heading_level(l: HeadingLevel) -> usize {
    match l {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

/// `s` padded or cut (with `…`) to exactly `w` columns.
fn fit(s: &str, w: usize) -> String {
    if s.width() <= w {
        return format!("{s}{}", " ".repeat(w - s.width()));
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let cw = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + cw + 1 > w {
            break;
        }
        out.push(c);
        used += cw;
    }
    out.push('…');
    used += 1;
    format!("{out}{}", " ".repeat(w.saturating_sub(used)))
}

#[cfg(test)]
#[path = "markdown_tests.rs"]
mod tests;
