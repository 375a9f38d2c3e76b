//! Builds styled lines word-wrapped to a width, with a prefix for the first line of a
//! block and another for its continuation lines (list markers, quote bars).

use ratatui::style::Style;
use ratatui::text::{Line, Span};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

pub struct LineBuilder {
    width: usize,
    lines: Vec<Line<'static>>,
    cur: Vec<Span<'static>>,
    cur_w: usize,
    /// Something other than the prefix is on the current line.
    has_content: bool,
    first_prefix: Vec<Span<'static>>,
    rest_prefix: Vec<Span<'static>>,
    first_used: bool,
    item: bool,
}

fn width_of(spans: &[Span]) -> usize {
    spans.iter().map(|s| s.content.width()).sum()
}

impl LineBuilder {
    pub fn new(width: usize) -> LineBuilder {
        LineBuilder {
            width,
            lines: vec![],
            cur: vec![],
            cur_w: 0,
            has_content: false,
            first_prefix: vec![],
            rest_prefix: vec![],
            first_used: false,
            item: false,
        }
    }

    /// Columns left after the continuation prefix.
    pub fn avail(&self) -> usize {
        self.width
            .saturating_sub(width_of(&self.rest_prefix))
            .max(1)
    }

    pub fn set_prefix(&mut self, first: Vec<Span<'static>>, rest: Vec<Span<'static>>) {
        self.first_prefix = first;
        self.rest_prefix = rest;
        self.first_used = false;
    }

    /// A list item's marker is set and its first paragraph should not open a new block.
    pub fn mark_item(&mut self) {
        self.item = true;
    }

    pub fn item_pending(&self) -> bool {
        self.item
    }

    fn begin_line(&mut self) {
        if self.cur.is_empty() && !self.has_content {
            let p = if self.first_used {
                self.rest_prefix.clone()
            } else {
                self.first_used = true;
                self.first_prefix.clone()
            };
            self.cur_w = width_of(&p);
            self.cur = p;
        }
    }

    fn end_line(&mut self) {
        let spans = std::mem::take(&mut self.cur);
        self.lines.push(Line::from(spans));
        self.cur_w = 0;
        self.has_content = false;
    }

    fn push(&mut self, s: &str, style: Style) {
        self.cur_w += s.width();
        self.has_content = true;
        self.item = false;
        match self.cur.last_mut() {
            Some(last) if last.style == style => last.content.to_mut().push_str(s),
            _ => self.cur.push(Span::styled(s.to_string(), style)),
        }
    }

    fn trim_trailing_space(&mut self) {
        if let Some(last) = self.cur.last_mut() {
            let trimmed = last.content.trim_end_matches(' ').len();
            self.cur_w -= last.content.len() - trimmed;
            last.content.to_mut().truncate(trimmed);
        }
    }

    /// Add inline text, wrapping at word boundaries (a word longer than a line is split).
    pub fn text(&mut self, s: &str, style: Style) {
        for (i, segment) in s.split('\n').enumerate() {
            if i > 0 {
                self.newline();
            }
            for word in split_words(segment) {
                self.begin_line();
                let w = word.width();
                let blank = word.trim().is_empty();
                if self.cur_w + w > self.width && self.has_content {
                    self.trim_trailing_space();
                    self.end_line();
                    if blank {
                        continue;
                    }
                    self.begin_line();
                }
                if self.cur_w + w > self.width {
                    self.hard_split(word, style);
                } else {
                    self.push(word, style);
                }
            }
        }
    }

    fn hard_split(&mut self, word: &str, style: Style) {
        let mut piece = String::new();
        for c in word.chars() {
            let cw = c.width().unwrap_or(0);
            if self.cur_w + piece.width() + cw > self.width
                && (self.has_content || !piece.is_empty())
            {
                self.push(&std::mem::take(&mut piece), style);
                self.end_line();
                self.begin_line();
            }
            piece.push(c);
        }
        if !piece.is_empty() {
            self.push(&piece, style);
        }
    }

    /// End the current line even if it is empty (a hard break).
    pub fn newline(&mut self) {
        self.begin_line();
        self.end_line();
    }

    /// End the current line if anything is on it.
    pub fn flush(&mut self) {
        if self.has_content {
            self.end_line();
        }
        self.cur.clear();
        self.cur_w = 0;
    }

    /// An empty line carrying only `prefix` (e.g. quote bars).
    pub fn blank(&mut self, prefix: Vec<Span<'static>>) {
        self.flush();
        self.lines.push(Line::from(prefix));
    }

    /// A preformatted line (code, table row): not word-wrapped, split at the width.
    pub fn code_line(&mut self, spans: Vec<Span<'static>>) {
        self.flush();
        self.begin_line();
        self.has_content = true;
        for span in spans {
            let style = span.style;
            let mut piece = String::new();
            for c in span.content.chars() {
                let cw = c.width().unwrap_or(0);
                if self.cur_w + cw > self.width {
                    if !piece.is_empty() {
                        self.cur
                            .push(Span::styled(std::mem::take(&mut piece), style));
                    }
                    self.end_line();
                    self.begin_line();
                    self.has_content = true;
                }
                piece.push(c);
                self.cur_w += cw;
            }
            if !piece.is_empty() {
                self.cur.push(Span::styled(piece, style));
            }
        }
        self.end_line();
    }

    pub fn into_lines(mut self) -> Vec<Line<'static>> {
        self.flush();
        self.lines
    }
}

/// Words and the runs of spaces between them, in order.
fn split_words(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_space = None;
    for (i, c) in s.char_indices() {
        let sp = c == ' ' || c == '\t';
        if in_space.is_some_and(|prev| prev != sp) {
            out.push(&s[start..i]);
            start = i;
        }
        in_space = Some(sp);
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}
