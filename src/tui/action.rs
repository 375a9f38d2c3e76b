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
    Batch,
    Bench,
    Server,
}

impl Scope {
    /// The scopes in help order, with their titles.
    pub const ALL: [(Scope, &'static str); 6] = [
        (Scope::Global, "Everywhere"),
        (Scope::Chat, "Chat"),
        (Scope::Models, "Models"),
        (Scope::Batch, "Batch"),
        (Scope::Bench, "Bench"),
        (Scope::Server, "Server"),
    ];
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

/// The Batch tab's actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchAction {
    Open,
    Run,
    Pause,
    Cancel,
    Retry,
    Prev,
    Next,
    View,
    Close,
}

/// The Bench tab's actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchAction {
    Prev,
    Next,
    Toggle,
    Edit,
    Mode,
    Run,
    Cancel,
}

/// The Server tab's actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerAction {
    Toggle,
    Key,
    Host,
    Port,
    Copy,
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
    /// Pull a model from the hub (asks for `REPO[:FILE]`).
    Pull,
    Batch(BatchAction),
    Bench(BenchAction),
    Server(ServerAction),
    /// A text field is open: Enter takes it, Esc closes it, Tab completes it.
    FieldSubmit,
    FieldCancel,
    FieldComplete,
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
        b(
            "pull",
            Models,
            A::Pull,
            "pull a model from the hub (REPO or REPO:FILE)",
        ),
        b(
            "batch_open",
            Batch,
            A::Batch(BatchAction::Open),
            "open a prompt set (TOML path; tab completes)",
        ),
        b(
            "batch_run",
            Batch,
            A::Batch(BatchAction::Run),
            "run the plan (or resume after a pause)",
        ),
        b(
            "batch_pause",
            Batch,
            A::Batch(BatchAction::Pause),
            "pause after the current item",
        ),
        b(
            "batch_cancel",
            Batch,
            A::Batch(BatchAction::Cancel),
            "cancel the run (the current item is dropped)",
        ),
        b(
            "batch_retry",
            Batch,
            A::Batch(BatchAction::Retry),
            "retry the failed items",
        ),
        b("batch_prev", Batch, A::Batch(BatchAction::Prev), "previous item"),
        b("batch_next", Batch, A::Batch(BatchAction::Next), "next item"),
        b(
            "batch_view",
            Batch,
            A::Batch(BatchAction::View),
            "open the item's output (markdown, as in the chat)",
        ),
        b(
            "batch_close",
            Batch,
            A::Batch(BatchAction::Close),
            "close the output",
        ),
        b("bench_prev", Bench, A::Bench(BenchAction::Prev), "move up the form"),
        b("bench_next", Bench, A::Bench(BenchAction::Next), "move down the form"),
        b(
            "bench_toggle",
            Bench,
            A::Bench(BenchAction::Toggle),
            "choose / drop the model",
        ),
        b("bench_edit", Bench, A::Bench(BenchAction::Edit), "edit the field"),
        b(
            "bench_mode",
            Bench,
            A::Bench(BenchAction::Mode),
            "mode: standard / latency / long",
        ),
        b("bench_run", Bench, A::Bench(BenchAction::Run), "run the benchmark"),
        b(
            "bench_cancel",
            Bench,
            A::Bench(BenchAction::Cancel),
            "cancel the benchmark",
        ),
        b(
            "server_toggle",
            Server,
            A::Server(ServerAction::Toggle),
            "start / stop the server",
        ),
        b(
            "server_key",
            Server,
            A::Server(ServerAction::Key),
            "API key on / off",
        ),
        b(
            "server_host",
            Server,
            A::Server(ServerAction::Host),
            "edit the address",
        ),
        b(
            "server_port",
            Server,
            A::Server(ServerAction::Port),
            "edit the port",
        ),
        b(
            "server_copy",
            Server,
            A::Server(ServerAction::Copy),
            "copy the URL (and key) to the clipboard",
        ),
    ]
}
