//! Everything the user can do, as one typed enum. Keys map to actions through the keymap
//! (`[keymap]` in config.toml); the App only ever sees actions.

/// The tabs, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    Models,
    Chat,
    Batch,
    Bench,
    Server,
}

impl Tab {
    pub const ALL: [Tab; 5] = [Tab::Models, Tab::Chat, Tab::Batch, Tab::Bench, Tab::Server];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Models => "Models",
            Tab::Chat => "Chat",
            Tab::Batch => "Batch",
            Tab::Bench => "Bench",
            Tab::Server => "Server",
        }
    }

    pub fn index(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }
}

/// Where an action's key binding applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Global,
    Chat,
    Models,
}

/// Edits of the chat input (fixed keys, not in the keymap).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Edit {
    Insert(char),
    Paste(String),
    Backspace,
    Delete,
    Left,
    Right,
    Home,
    End,
    WordLeft,
    WordRight,
    ClearLine,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Quit,
    Help,
    NextTab,
    PrevTab,
    Show(Tab),
    // chat
    Submit,
    Newline,
    Stop,
    ToggleReasoning,
    ToggleRaw,
    ScrollUp,
    ScrollDown,
    ScrollTop,
    Follow,
    HistoryPrev,
    HistoryNext,
    Edit(Edit),
    /// Mouse wheel: positive scrolls down.
    Wheel(i32),
    // models
    SelectPrev,
    SelectNext,
    Load,
    Unload,
    Rescan,
    /// The terminal was resized.
    Resize(u16, u16),
}

/// One bindable action: its config name, scope, what it does, and the default keys.
pub struct Binding {
    pub name: &'static str,
    pub scope: Scope,
    pub action: Action,
    pub about: &'static str,
}

/// Every bindable action. The keys come from `[keymap]` in config.toml.
pub fn bindings() -> Vec<Binding> {
    use Action as A;
    use Scope::*;
    let b = |name, scope, action, about| Binding {
        name,
        scope,
        action,
        about,
    };
    vec![
        b("quit", Global, A::Quit, "quit lmwb"),
        b("help", Global, A::Help, "show or hide this help"),
        b("next_tab", Global, A::NextTab, "next tab"),
        b("prev_tab", Global, A::PrevTab, "previous tab"),
        b("tab_models", Global, A::Show(Tab::Models), "Models tab"),
        b("tab_chat", Global, A::Show(Tab::Chat), "Chat tab"),
        b("tab_batch", Global, A::Show(Tab::Batch), "Batch tab"),
        b("tab_bench", Global, A::Show(Tab::Bench), "Bench tab"),
        b("tab_server", Global, A::Show(Tab::Server), "Server tab"),
        b(
            "submit",
            Chat,
            A::Submit,
            "send the message (or run a /command)",
        ),
        b("newline", Chat, A::Newline, "new line in the message"),
        b("stop", Chat, A::Stop, "stop the generation"),
        b(
            "toggle_reasoning",
            Chat,
            A::ToggleReasoning,
            "fold / unfold reasoning",
        ),
        b(
            "toggle_raw",
            Chat,
            A::ToggleRaw,
            "raw view: exactly what the model emitted",
        ),
        b("scroll_up", Chat, A::ScrollUp, "scroll up a page"),
        b("scroll_down", Chat, A::ScrollDown, "scroll down a page"),
        b("scroll_top", Chat, A::ScrollTop, "scroll to the top"),
        b(
            "follow",
            Chat,
            A::Follow,
            "back to the bottom, follow new text",
        ),
        b(
            "history_prev",
            Chat,
            A::HistoryPrev,
            "previous input (or line up)",
        ),
        b(
            "history_next",
            Chat,
            A::HistoryNext,
            "next input (or line down)",
        ),
        b(
            "select_prev",
            Models,
            A::SelectPrev,
            "select the previous model",
        ),
        b(
            "select_next",
            Models,
            A::SelectNext,
            "select the next model",
        ),
        b("load", Models, A::Load, "load the selected model"),
        b("unload", Models, A::Unload, "unload the active model"),
        b("rescan", Models, A::Rescan, "scan the model folders again"),
    ]
}
