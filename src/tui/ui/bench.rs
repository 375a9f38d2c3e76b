//! Drawing the Bench tab.

use crate::tui::app::App;
use ratatui::layout::Rect;
use ratatui::Frame;

pub fn draw(f: &mut Frame, _app: &App, area: Rect) {
    super::placeholder(f, area, "this tab is being built");
}

/// The tab's keys for the footer: (keys, what they do).
pub fn footer(_app: &App) -> Vec<(String, &'static str)> {
    vec![]
}
