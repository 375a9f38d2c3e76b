//! A one-line text field the tabs open to ask for something (a prompt-set path, a port, a
//! hub repo). Typing goes to it while it is open; Enter hands the text to the tab that
//! opened it, Esc closes it, Tab completes it where the tab offers completions.

use super::action::Edit;
use super::input::Input;

/// Who asked, and so who gets the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldTarget {
    BatchPath,
    /// A field of the Bench tab's form, by its index there.
    Bench(u8),
    ServerHost,
    ServerPort,
    PullRepo,
}

#[derive(Clone, Debug)]
pub struct Field {
    pub target: FieldTarget,
    pub label: String,
    pub input: Input,
    /// One line under the field (what to type, or why the last try was refused).
    pub hint: Option<String>,
    /// What Tab offered last (shown above the field).
    pub candidates: Vec<String>,
}

impl Field {
    pub fn new(target: FieldTarget, label: impl Into<String>, text: &str) -> Field {
        let mut input = Input::default();
        input.set(text);
        Field {
            target,
            label: label.into(),
            input,
            hint: None,
            candidates: vec![],
        }
    }

    pub fn text(&self) -> &str {
        self.input.text()
    }

    /// An edit; pasted line breaks become spaces (the field is one line).
    pub fn edit(&mut self, e: &Edit) {
        match e {
            Edit::Paste(s) => self.input.edit(&Edit::Paste(s.replace(['\r', '\n'], " "))),
            e => self.input.edit(e),
        }
        self.candidates.clear();
    }
}
