//! A workbench App on fake models: deterministic streams, no weights, no terminal.

use lmwb::client::fake::{FakeClient, Script};
use lmwb::client::GenerationClient;
use lmwb::config::Config;
use lmwb::tui::app::{App, AppOptions};
use lmwb::tui::keymap::Keymap;
use lmwb::tui::loader::{FakeLoader, ModelRow};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::sync::Arc;
use std::time::Duration;

pub const MODEL: &str = "fake-llama-135m.q4_1";
pub const OTHER: &str = "fake-qwen-500m.q8_0";
pub const BROKEN: &str = "broken-model.q4_0";

/// An App whose models stream `scripts` (the same list for each load), with `delay`
/// between tokens; `MODEL` is loaded at start.
pub fn app_with(scripts: Vec<Script>, delay: Duration) -> App {
    app_with_config(scripts, delay, Config::defaults())
}

/// As [`app_with`], with the configuration given (a `runs_dir` in a temporary folder …).
pub fn app_with_config(scripts: Vec<Script>, delay: Duration, cfg: Config) -> App {
    let rows = vec![
        ModelRow::fake(MODEL, "Q4_1", 134_515_008, 8192),
        ModelRow::fake(OTHER, "Q8_0", 494_032_768, 32768),
        ModelRow::fake(BROKEN, "Q4_0", 1_000_000, 2048),
    ];
    let loader = FakeLoader {
        rows,
        make: Box::new(move |row| {
            if row.name == BROKEN {
                return Err("tensor blk.0.attn_q.weight is truncated: the file is incomplete; download it again".into());
            }
            let context = row.info.as_ref().map_or(2048, |i| i.context_length);
            let c = FakeClient::new(&row.name, scripts.clone())
                .with_delay(delay)
                .with_context(context);
            Ok(Arc::new(c) as Arc<dyn GenerationClient>)
        }),
    };
    let mut app = App::new(
        AppOptions {
            keymap: Keymap::from_config(&cfg.keymap).unwrap(),
            settings: lmwb::tui::chat_settings(&cfg),
            autoload: Some(MODEL.into()),
            config: cfg.clone(),
        },
        Arc::new(loader),
    );
    assert!(
        app.settle(Duration::from_secs(10)),
        "the fake model did not load"
    );
    app
}

pub fn app(replies: &[&str]) -> App {
    app_with(
        replies.iter().map(|r| Script::text(r)).collect(),
        Duration::ZERO,
    )
}

/// Type `text` and press the submit key.
pub fn send(app: &mut App, text: &str) {
    use lmwb::tui::action::{Action, Edit};
    app.dispatch(Action::Edit(Edit::Paste(text.into())));
    app.dispatch(Action::Submit);
}

/// The screen as text.
pub fn screen(app: &App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| lmwb::tui::ui::draw(f, app)).unwrap();
    let buf = t.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..h {
        let line: String = (0..w).map(|x| buf[(x, y)].symbol().to_string()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// [`app_with`] whose configuration writes under `runs_dir` (reports, logs), as
/// `runs_dir` in config.toml would.
pub fn app_in(scripts: Vec<Script>, delay: Duration, runs_dir: &std::path::Path) -> App {
    let mut cfg = Config::defaults();
    cfg.runs_dir = runs_dir.display().to_string();
    app_with_config(scripts, delay, cfg)
}
