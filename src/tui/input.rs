//! The chat input: a multi-line editor with a cursor and a history of sent messages.

use super::action::Edit;
use unicode_width::UnicodeWidthStr;

#[derive(Clone, Debug, Default)]
pub struct Input {
    text: String,
    /// Byte offset of the cursor (always on a char boundary).
    cursor: usize,
    history: Vec<String>,
    /// Position while browsing the history, and what was typed before browsing.
    browsing: Option<usize>,
    draft: String,
}

impl Input {
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    pub fn set(&mut self, text: &str) {
        self.text = text.to_string();
        self.cursor = self.text.len();
    }

    /// Take the text (to send it), remembering it in the history.
    pub fn take(&mut self) -> String {
        let t = std::mem::take(&mut self.text);
        self.cursor = 0;
        self.browsing = None;
        if !t.trim().is_empty() && self.history.last() != Some(&t) {
            self.history.push(t.clone());
        }
        t
    }

    pub fn history(&self) -> &[String] {
        &self.history
    }

    fn prev_boundary(&self) -> usize {
        self.text[..self.cursor]
            .char_indices()
            .last()
            .map_or(0, |(i, _)| i)
    }

    fn next_boundary(&self) -> usize {
        self.text[self.cursor..]
            .chars()
            .next()
            .map_or(self.cursor, |c| self.cursor + c.len_utf8())
    }

    fn line_start(&self) -> usize {
        self.text[..self.cursor].rfind('\n').map_or(0, |i| i + 1)
    }

    fn line_end(&self) -> usize {
        self.text[self.cursor..]
            .find('\n')
            .map_or(self.text.len(), |i| self.cursor + i)
    }

    pub fn edit(&mut self, e: &Edit) {
        match e {
            Edit::Insert(c) => {
                self.text.insert(self.cursor, *c);
                self.cursor += c.len_utf8();
            }
            Edit::Paste(s) => {
                let s = s.replace("\r\n", "\n").replace('\r', "\n");
                self.text.insert_str(self.cursor, &s);
                self.cursor += s.len();
            }
            Edit::Backspace => {
                if self.cursor > 0 {
                    let p = self.prev_boundary();
                    self.text.replace_range(p..self.cursor, "");
                    self.cursor = p;
                }
            }
            Edit::Delete => {
                let n = self.next_boundary();
                self.text.replace_range(self.cursor..n, "");
            }
            Edit::Left => self.cursor = self.prev_boundary(),
            Edit::Right => self.cursor = self.next_boundary(),
            Edit::Home => self.cursor = self.line_start(),
            Edit::End => self.cursor = self.line_end(),
            Edit::WordLeft => {
                let before = self.text[..self.cursor].trim_end();
                self.cursor = before.rfind([' ', '\n']).map_or(0, |i| i + 1);
            }
            Edit::WordRight => {
                let after = &self.text[self.cursor..];
                let skip = after.len() - after.trim_start().len();
                let word = after
                    .trim_start()
                    .find([' ', '\n'])
                    .unwrap_or(after.len() - skip);
                self.cursor += skip + word;
            }
            Edit::ClearLine => {
                let (s, e) = (self.line_start(), self.line_end());
                self.text.replace_range(s..e, "");
                self.cursor = s;
            }
        }
    }

    pub fn newline(&mut self) {
        self.edit(&Edit::Insert('\n'));
    }

    /// Up: to the line above, or (on the first line) the previous history entry.
    pub fn up(&mut self) {
        let start = self.line_start();
        if start > 0 {
            let col = self.text[start..self.cursor].chars().count();
            let prev_start = self.text[..start - 1].rfind('\n').map_or(0, |i| i + 1);
            self.cursor = advance(&self.text, prev_start, start - 1, col);
            return;
        }
        if self.history.is_empty() {
            return;
        }
        let i = match self.browsing {
            None => {
                self.draft = self.text.clone();
                self.history.len() - 1
            }
            Some(i) => i.saturating_sub(1),
        };
        self.browsing = Some(i);
        self.set(&self.history[i].clone());
    }

    /// Down: to the line below, or (on the last line) the next history entry.
    pub fn down(&mut self) {
        let end = self.line_end();
        if end < self.text.len() {
            let col = self.text[self.line_start()..self.cursor].chars().count();
            let next_end = self.text[end + 1..]
                .find('\n')
                .map_or(self.text.len(), |i| end + 1 + i);
            self.cursor = advance(&self.text, end + 1, next_end, col);
            return;
        }
        match self.browsing {
            Some(i) if i + 1 < self.history.len() => {
                self.browsing = Some(i + 1);
                self.set(&self.history[i + 1].clone());
            }
            Some(_) => {
                self.browsing = None;
                let d = std::mem::take(&mut self.draft);
                self.set(&d);
            }
            None => {}
        }
    }

    /// (line, column in cells) of the cursor.
    pub fn cursor_pos(&self) -> (usize, usize) {
        let before = &self.text[..self.cursor];
        let line = before.matches('\n').count();
        let col = before[self.line_start()..].width();
        (line, col)
    }

    pub fn line_count(&self) -> usize {
        self.text.split('\n').count()
    }
}

/// The byte offset `col` characters after `start`, at most `end`.
fn advance(text: &str, start: usize, end: usize, col: usize) -> usize {
    text[start..end]
        .char_indices()
        .nth(col)
        .map_or(end, |(i, _)| start + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(s: &str) -> Input {
        let mut i = Input::default();
        i.edit(&Edit::Paste(s.into()));
        i
    }

    #[test]
    fn editing_and_multiline_cursor() {
        let mut i = typed("héllo");
        i.edit(&Edit::Backspace);
        i.edit(&Edit::Left);
        i.edit(&Edit::Insert('X'));
        assert_eq!(i.text(), "hélXl");
        i.edit(&Edit::End);
        i.newline();
        i.edit(&Edit::Paste("ab".into()));
        assert_eq!(i.cursor_pos(), (1, 2));
        i.up();
        assert_eq!(i.cursor_pos(), (0, 2));
        i.down();
        assert_eq!(i.cursor_pos(), (1, 2));
        i.edit(&Edit::ClearLine);
        assert_eq!(i.text(), "hélXl\n");
    }

    #[test]
    fn history_browses_and_restores_the_draft() {
        let mut i = typed("one");
        i.take();
        i.edit(&Edit::Paste("two".into()));
        i.take();
        i.edit(&Edit::Paste("dra".into()));
        i.up();
        assert_eq!(i.text(), "two");
        i.up();
        assert_eq!(i.text(), "one");
        i.up();
        assert_eq!(i.text(), "one");
        i.down();
        assert_eq!(i.text(), "two");
        i.down();
        assert_eq!(i.text(), "dra");
        assert_eq!(i.history(), ["one", "two"]);
    }
}
