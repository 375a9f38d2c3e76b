//! The workbench's state and everything that changes it: actions from keys, messages from
//! background work (scans, loads, token streams). Drawing lives in `ui/`; nothing here
//! draws, and nothing here waits on the engine.

use super::action::{Action, Edit, Scope, Tab};
use super::batch::{BatchMsg, BatchTab};
use super::bench::{BenchMsg, BenchTab};
use super::chat::ChatState;
use super::field::{Field, FieldTarget};
use super::gauges::Gauges;
use super::keymap::Keymap;
use super::loader::{ModelLoader, ModelRow};
use super::models::ModelsState;
use super::pull::PullMsg;
use super::server::{ServerMsg, ServerTab};
use super::slash::ChatSettings;
use crate::client::GenerationClient;
use crate::config::Config;
use crate::engine::Event;
use ratatui::crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEvent, MouseEventKind,
};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What background threads (and the terminal reader) send to the App.
pub enum Msg {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Paste(String),
    Resize(u16, u16),
    Scanned(Vec<ModelRow>),
    Loaded {
        name: String,
        result: Result<Arc<dyn GenerationClient>, String>,
        ms: f64,
    },
    Gen {
        id: u64,
        event: Event,
    },
    Batch(BatchMsg),
    Bench(BenchMsg),
    Server(ServerMsg),
    Pull(PullMsg),
}

/// Things the App asks its runner to do outside the state (terminal output).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Put text on the clipboard (OSC 52).
    Clipboard(String),
}

/// How the App starts.
pub struct AppOptions {
    pub keymap: Keymap,
    pub settings: ChatSettings,
    /// Load this model once the scan finds it.
    pub autoload: Option<String>,
    /// The configuration the headless commands would run with (folders, backends,
    /// defaults, `runs/`): the Batch, Bench and Server tabs use it the same way.
    pub config: Config,
}

pub struct App {
    pub tab: Tab,
    pub help: bool,
    /// First line of the help overlay shown.
    pub help_scroll: usize,
    pub quit: bool,
    pub keymap: Keymap,
    pub models: ModelsState,
    pub chat: ChatState,
    pub gauges: Gauges,
    pub batch: BatchTab,
    pub bench: BenchTab,
    pub server: ServerTab,
    /// A one-line text field open in front of the tab (typing goes there).
    pub field: Option<Field>,
    /// The model in use (the chat's, and the server's when it runs).
    pub client: Option<Arc<dyn GenerationClient>>,
    pub effects: Vec<Effect>,
    /// Something changed since the last draw.
    pub dirty: bool,
    autoload: Option<String>,
    pub(super) config: Config,
    pub(super) loader: Arc<dyn ModelLoader>,
    pub(super) tx: Sender<Msg>,
    rx: Receiver<Msg>,
    next_gen: u64,
}

impl App {
    pub fn new(opts: AppOptions, loader: Arc<dyn ModelLoader>) -> App {
        let (tx, rx) = mpsc::channel();
        let mut app = App {
            tab: Tab::Chat,
            help: false,
            help_scroll: 0,
            quit: false,
            keymap: opts.keymap,
            models: ModelsState::default(),
            chat: ChatState::new(opts.settings),
            gauges: Gauges::new(Instant::now()),
            batch: BatchTab::default(),
            bench: BenchTab::default(),
            server: ServerTab::default(),
            field: None,
            client: None,
            effects: vec![],
            dirty: true,
            autoload: opts.autoload,
            config: opts.config,
            loader,
            tx,
            rx,
            next_gen: 1,
        };
        app.rescan();
        app
    }

    /// Where background work reports (the terminal reader sends here too).
    pub fn sender(&self) -> Sender<Msg> {
        self.tx.clone()
    }

    /// Wait up to `timeout` for the next message.
    pub fn next_msg(&self, timeout: Duration) -> Option<Msg> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// Nothing is scanning, loading or generating.
    pub fn idle(&self) -> bool {
        !self.models.scanning
            && self.models.loading.is_none()
            && !self.chat.busy()
            && !self.batch.busy()
            && !self.bench.busy()
            && !self.server.busy()
            && !self.models.pulling()
    }

    /// The configuration the App was started with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Open a one-line text field in front of the tab.
    pub fn open_field(&mut self, target: FieldTarget, label: impl Into<String>, text: &str) {
        self.field = Some(Field::new(target, label, text));
        self.dirty = true;
    }

    /// Handle messages until idle (or `limit` passes). For tests and scripted use.
    pub fn settle(&mut self, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        while !self.idle() {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            if let Some(m) = self.next_msg(left) {
                self.handle(m);
            }
        }
        // Late events (a stopped generation's stats) that are already queued.
        self.drain();
        true
    }

    /// Handle every message already queued (coalescing a burst of tokens into one frame).
    pub fn drain(&mut self) {
        while let Ok(m) = self.rx.try_recv() {
            self.handle(m);
        }
    }

    pub fn handle(&mut self, msg: Msg) {
        if let Msg::Mouse(m) = &msg {
            if !matches!(
                m.kind,
                MouseEventKind::ScrollUp | MouseEventKind::ScrollDown
            ) {
                return;
            }
        }
        self.dirty = true;
        match msg {
            Msg::Key(k) => {
                if let Some(a) = self.translate_key(&k) {
                    self.dispatch(a);
                }
            }
            Msg::Mouse(m) => match m.kind {
                MouseEventKind::ScrollUp => self.dispatch(Action::Wheel(-3)),
                MouseEventKind::ScrollDown => self.dispatch(Action::Wheel(3)),
                _ => {}
            },
            Msg::Paste(s) if self.tab == Tab::Chat || self.field.is_some() => {
                self.dispatch(Action::Edit(Edit::Paste(s)))
            }
            Msg::Paste(_) => {}
            Msg::Resize(w, h) => self.dispatch(Action::Resize(w, h)),
            Msg::Scanned(rows) => self.on_scanned(rows),
            Msg::Loaded { name, result, ms } => self.on_loaded(name, result, ms),
            Msg::Gen { id, event } => {
                let cap = self.kv_cap();
                self.chat.on_event(id, event, &mut self.gauges, cap);
            }
            Msg::Batch(m) => self.on_batch(m),
            Msg::Bench(m) => self.on_bench(m),
            Msg::Server(m) => self.on_server(m),
            Msg::Pull(m) => self.on_pull(m),
        }
    }

    fn kv_cap(&self) -> Option<usize> {
        self.chat
            .settings
            .max_kv_size
            .or_else(|| self.client.as_ref().and_then(|c| c.context_length()))
    }

    /// The scope whose bindings apply now.
    pub fn scope(&self) -> Scope {
        match self.tab {
            Tab::Chat => Scope::Chat,
            Tab::Models => Scope::Models,
            Tab::Batch => Scope::Batch,
            Tab::Bench => Scope::Bench,
            Tab::Server => Scope::Server,
        }
    }

    /// A key as the action it means here, or None.
    pub fn translate_key(&self, k: &KeyEvent) -> Option<Action> {
        if k.kind == KeyEventKind::Release {
            return None;
        }
        let km = &self.keymap;
        if self.help {
            return match (km.lookup(Scope::Global, k), k.code) {
                (Some(Action::Quit), _) => Some(Action::Quit),
                (_, KeyCode::Up) => Some(Action::Wheel(-1)),
                (_, KeyCode::Down) => Some(Action::Wheel(1)),
                (_, KeyCode::PageUp) => Some(Action::Wheel(-10)),
                (_, KeyCode::PageDown) => Some(Action::Wheel(10)),
                _ => Some(Action::Help),
            };
        }
        if self.field.is_some() {
            return field_key(km, k);
        }
        if self.tab == Tab::Chat {
            let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
            let alt = k.modifiers.contains(KeyModifiers::ALT);
            if let KeyCode::Char(c) = k.code {
                if !ctrl && !alt {
                    // Typing wins over global single-character keys once a message is started.
                    let global = km.lookup(Scope::Chat, k);
                    if global.is_none() || !self.chat.input.is_empty() {
                        return Some(Action::Edit(Edit::Insert(c)));
                    }
                    return global;
                }
            }
            let edit = match (k.code, ctrl) {
                (KeyCode::Backspace, _) => Some(Edit::Backspace),
                (KeyCode::Delete, _) => Some(Edit::Delete),
                (KeyCode::Left, true) => Some(Edit::WordLeft),
                (KeyCode::Right, true) => Some(Edit::WordRight),
                (KeyCode::Left, false) => Some(Edit::Left),
                (KeyCode::Right, false) => Some(Edit::Right),
                (KeyCode::Home, false) => Some(Edit::Home),
                (KeyCode::End, false) => Some(Edit::End),
                (KeyCode::Char('u'), true) => Some(Edit::ClearLine),
                _ => None,
            };
            if let Some(e) = edit {
                if km.lookup(Scope::Chat, k).is_none() {
                    return Some(Action::Edit(e));
                }
            }
        }
        km.lookup(self.scope(), k)
    }

    pub fn dispatch(&mut self, action: Action) {
        self.dirty = true;
        match action {
            Action::Quit => {
                self.chat.stop();
                self.batch_quit();
                self.bench_quit();
                self.server_quit();
                self.quit = true;
            }
            Action::Help => {
                self.help = !self.help;
                self.help_scroll = 0;
            }
            Action::Wheel(n) if self.help => {
                self.help_scroll = (self.help_scroll as i64 + n as i64).clamp(0, 200) as usize;
            }
            Action::NextTab => self.tab = Tab::ALL[(self.tab.index() + 1) % Tab::ALL.len()],
            Action::PrevTab => {
                self.tab = Tab::ALL[(self.tab.index() + Tab::ALL.len() - 1) % Tab::ALL.len()]
            }
            Action::Show(t) => self.tab = t,
            Action::Submit => self.submit(),
            Action::Newline => self.chat.input.newline(),
            Action::Stop => {
                self.chat.stop();
            }
            Action::ToggleReasoning => self.chat.show_reasoning = !self.chat.show_reasoning,
            Action::ToggleRaw => self.chat.raw = !self.chat.raw,
            Action::ScrollUp => self.chat.scroll(-self.chat.page()),
            Action::ScrollDown => self.chat.scroll(self.chat.page()),
            Action::ScrollTop => self.chat.top = Some(0),
            Action::Follow => self.chat.top = None,
            Action::HistoryPrev => self.chat.input.up(),
            Action::HistoryNext => self.chat.input.down(),
            Action::Edit(e) => match &mut self.field {
                Some(f) => f.edit(&e),
                None => self.chat.input.edit(&e),
            },
            Action::FieldSubmit => {
                if let Some(f) = self.field.take() {
                    let text = f.text().trim().to_string();
                    match f.target {
                        FieldTarget::BatchPath => self.batch_field(text),
                        FieldTarget::Bench(i) => self.bench_field(i, text),
                        FieldTarget::ServerHost | FieldTarget::ServerPort => {
                            self.server_field(f.target, text)
                        }
                        FieldTarget::PullRepo => self.pull(text),
                    }
                }
            }
            Action::FieldCancel => self.field = None,
            Action::FieldComplete => {
                if matches!(&self.field, Some(f) if f.target == FieldTarget::BatchPath) {
                    self.batch_complete();
                }
            }
            Action::Wheel(n) => match self.tab {
                Tab::Models => self.models.select(n.signum()),
                Tab::Batch => self.batch_wheel(n),
                Tab::Chat => self.chat.scroll(n as i64),
                Tab::Bench | Tab::Server => {}
            },
            Action::SelectPrev => self.models.select(-1),
            Action::SelectNext => self.models.select(1),
            Action::Load => {
                let i = self.models.selected;
                self.load(i);
            }
            Action::Unload => self.unload(),
            Action::Rescan => self.rescan(),
            Action::Pull => self.open_field(
                FieldTarget::PullRepo,
                "Pull from the hub (REPO or REPO:FILE)",
                "",
            ),
            Action::Batch(a) => self.batch_action(a),
            Action::Bench(a) => self.bench_action(a),
            Action::Server(a) => self.server_action(a),
            Action::Resize(..) => {}
        }
    }

    fn submit(&mut self) {
        let text = self.chat.input.text().to_string();
        if text.trim().is_empty() {
            return;
        }
        if text.trim_start().starts_with('/') {
            self.chat.input.take();
            self.chat.top = None;
            return self.slash(text.trim());
        }
        if self.chat.busy() {
            self.chat
                .notice("a reply is still streaming: wait for it, or press Esc to stop it");
            return;
        }
        self.chat.input.take();
        self.chat.top = None;
        self.chat
            .transcript
            .turns
            .push(crate::chat::transcript::Turn::user(text));
        self.generate();
    }

    /// Start a reply to the conversation as it stands (or queue it behind a load).
    pub(super) fn generate(&mut self) {
        let Some(client) = self.client.clone() else {
            if let Some((name, _)) = &self.models.loading {
                let msg = format!("waiting for {name} to load; the reply starts when it is ready");
                self.chat.pending = true;
                self.chat.notice(msg);
            } else {
                self.chat.notice(
                    "no model is loaded: choose one in the Models tab (Enter loads it) or type /model NAME",
                );
            }
            return;
        };
        let id = self.next_gen;
        self.next_gen += 1;
        let generation = client.generate(self.chat.request());
        self.chat.begin(id, generation.cancel.clone());
        let tx = self.tx.clone();
        std::thread::spawn(move || {
            for event in generation.events.iter() {
                if tx.send(Msg::Gen { id, event }).is_err() {
                    break;
                }
            }
        });
    }

    pub fn rescan(&mut self) {
        if self.models.scanning {
            return;
        }
        self.models.scanning = true;
        let loader = self.loader.clone();
        let tx = self.tx.clone();
        std::thread::spawn(move || {
            let _ = tx.send(Msg::Scanned(loader.scan()));
        });
    }

    fn on_scanned(&mut self, rows: Vec<ModelRow>) {
        let selected = self.models.selected_row().map(|r| r.name.clone());
        self.models.rows = rows;
        self.models.scanning = false;
        let keep = selected.or_else(|| self.models.active.clone());
        if let Some(i) = keep.and_then(|n| self.models.rows.iter().position(|r| r.name == n)) {
            self.models.selected = i;
        }
        self.models.selected = self
            .models
            .selected
            .min(self.models.rows.len().saturating_sub(1));
        if let Some(name) = self.autoload.take() {
            match self.models.find(&name) {
                Ok(i) => {
                    self.models.selected = i;
                    self.load(i);
                }
                Err(e) => self.models.error = Some(format!("default model: {e}")),
            }
        }
    }

    /// Load model `i` in the background (the current one is unloaded first).
    pub fn load(&mut self, i: usize) {
        let Some(row) = self.models.rows.get(i).cloned() else {
            return;
        };
        if let Some((name, _)) = &self.models.loading {
            let msg = format!("{name} is still loading; wait for it before loading another model");
            self.models.error = Some(msg);
            return;
        }
        self.server_model_swap();
        self.unload();
        self.models.error = None;
        self.models.loading = Some((row.name.clone(), Instant::now()));
        let loader = self.loader.clone();
        let tx = self.tx.clone();
        std::thread::spawn(move || {
            let t = Instant::now();
            let result = loader.load(&row);
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            let _ = tx.send(Msg::Loaded {
                name: row.name,
                result,
                ms,
            });
        });
    }

    fn on_loaded(
        &mut self,
        name: String,
        result: Result<Arc<dyn GenerationClient>, String>,
        ms: f64,
    ) {
        self.models.loading = None;
        match result {
            Ok(client) => {
                self.client = Some(client);
                self.models.active = Some(name.clone());
                self.models.load_ms = Some(ms);
                self.gauges.kv = None;
                if std::mem::take(&mut self.chat.pending) {
                    self.generate();
                }
                self.server_model_loaded();
            }
            Err(e) => {
                let msg = format!("cannot load {name}: {e}");
                if std::mem::take(&mut self.chat.pending) {
                    self.chat.notice(msg.clone());
                }
                self.models.error = Some(msg);
                self.server_model_loaded();
            }
        }
    }

    pub fn unload(&mut self) {
        self.chat.stop();
        self.client = None;
        self.server_model_gone();
        self.models.active = None;
        self.models.load_ms = None;
        self.gauges.kv = None;
    }
}

/// A key while a text field is open: editing keys edit it, Enter / Esc / Tab take, close
/// or complete it, the quit keys still quit.
fn field_key(km: &Keymap, k: &KeyEvent) -> Option<Action> {
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    let alt = k.modifiers.contains(KeyModifiers::ALT);
    if ctrl && km.lookup(Scope::Global, k) == Some(Action::Quit) {
        return Some(Action::Quit);
    }
    let edit = match (k.code, ctrl) {
        (KeyCode::Enter, _) => return Some(Action::FieldSubmit),
        (KeyCode::Esc, _) => return Some(Action::FieldCancel),
        (KeyCode::Tab, _) => return Some(Action::FieldComplete),
        (KeyCode::Char('u'), true) => Edit::ClearLine,
        (KeyCode::Char(c), false) if !alt => Edit::Insert(c),
        (KeyCode::Backspace, _) => Edit::Backspace,
        (KeyCode::Delete, _) => Edit::Delete,
        (KeyCode::Left, true) => Edit::WordLeft,
        (KeyCode::Right, true) => Edit::WordRight,
        (KeyCode::Left, false) => Edit::Left,
        (KeyCode::Right, false) => Edit::Right,
        (KeyCode::Home, _) => Edit::Home,
        (KeyCode::End, _) => Edit::End,
        _ => return None,
    };
    Some(Action::Edit(edit))
}
