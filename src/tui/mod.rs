//! `lmwb` with no arguments: the workbench. State and actions in `app.rs`, drawing in
//! `ui/`, this file owns the terminal: alternate screen, raw mode, mouse and paste, a
//! panic hook that restores the terminal, and the event loop (coalesced redraws, at most
//! ~30 frames a second while streaming, none while idle).

pub mod action;
pub mod app;
mod app_batch;
mod app_bench;
mod app_pull;
mod app_server;
mod app_slash;
pub mod batch;
pub mod bench;
pub mod chat;
pub mod complete;
pub mod field;
pub mod gauges;
pub mod input;
pub mod keymap;
pub mod loader;
pub mod models;
pub mod pull;
pub mod server;
pub mod slash;
pub mod ui;

use crate::config::Config;
use crate::metrics::ProcessSampler;
use app::{App, AppOptions, Effect, Msg};
use base64::Engine as _;
use ratatui::crossterm::event::{
    self, DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    Event as TermEvent,
};
use ratatui::crossterm::execute;
use slash::ChatSettings;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Frames at most every this long while something changes.
const FRAME: Duration = Duration::from_millis(33);

/// The settings a new chat starts with, from the config.
pub fn chat_settings(cfg: &Config) -> ChatSettings {
    let nonzero = |n: usize| (n > 0).then_some(n);
    ChatSettings {
        system: None,
        sampling: cfg.sampling.params.clone(),
        max_tokens: nonzero(cfg.sampling.max_tokens),
        max_kv_size: nonzero(cfg.sampling.max_kv_size),
    }
}

fn restore_extras() {
    let _ = execute!(
        std::io::stdout(),
        DisableMouseCapture,
        DisableBracketedPaste
    );
}

/// Run the workbench until the user quits. Returns the exit code.
pub fn run(cfg: &Config) -> anyhow::Result<u8> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        eprintln!("lmwb: the workbench needs a terminal; in scripts use `lmwb run`, `lmwb models list` … (see lmwb --help)");
        return Ok(crate::commands::EXIT_USAGE);
    }
    let keymap = match keymap::Keymap::from_config(&cfg.keymap) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("lmwb: config: {e}");
            return Ok(crate::commands::EXIT_USAGE);
        }
    };
    let settings = chat_settings(cfg);
    settings.sampling.validate()?;
    let mut app = App::new(
        AppOptions {
            keymap,
            settings,
            autoload: Some(cfg.default_model.clone()),
            config: cfg.clone(),
        },
        Arc::new(loader::EngineLoader::from_config(cfg)),
    );
    crate::chat::highlight::warm_up();

    let mut terminal = ratatui::init(); // raw mode, alternate screen, restoring panic hook
    let previous = std::panic::take_hook();
    let ui_thread = std::thread::current().id();
    std::panic::set_hook(Box::new(move |info| {
        // A background thread's panic (caught or not) must not tear the screen down or
        // print over it: it goes to the log, and that thread's work reports an error.
        if std::thread::current().id() != ui_thread {
            tracing::error!("a background thread panicked: {info}");
            return;
        }
        restore_extras();
        previous(info);
    }));
    let _ = execute!(std::io::stdout(), EnableMouseCapture, EnableBracketedPaste);

    let tx = app.sender();
    std::thread::Builder::new()
        .name("lmwb-terminal".into())
        .spawn(move || loop {
            let msg = match event::read() {
                Ok(TermEvent::Key(k)) => Msg::Key(k),
                Ok(TermEvent::Mouse(m)) => Msg::Mouse(m),
                Ok(TermEvent::Paste(s)) => Msg::Paste(s),
                Ok(TermEvent::Resize(w, h)) => Msg::Resize(w, h),
                Ok(_) => continue,
                Err(_) => break,
            };
            if tx.send(msg).is_err() {
                break;
            }
        })?;

    let gpu = crate::metrics::gpu::GpuReader::for_device(&cfg.device);
    let result = event_loop(&mut terminal, &mut app, gpu);
    restore_extras();
    ratatui::restore();
    result?;
    Ok(0)
}

/// What the gauges show, rounded as drawn: a change means a redraw is needed.
fn gauge_signature(app: &App) -> (u64, u64, u64) {
    let p = app.gauges.process.unwrap_or_default();
    (
        p.cpu_percent.unwrap_or(0.0).round() as u64,
        p.rss_bytes >> 20,
        p.sys_used_bytes >> 26,
    )
}

fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    gpu: Option<crate::metrics::gpu::GpuReader>,
) -> anyhow::Result<()> {
    let mut sampler = ProcessSampler::new();
    let mut last_draw = Instant::now() - FRAME;
    let mut last_sample = Instant::now() - Duration::from_secs(1);
    loop {
        let now = Instant::now();
        if now - last_sample >= Duration::from_secs(1) {
            let before = gauge_signature(app);
            let mut sample = sampler.sample();
            sample.gpu = gpu.as_ref().and_then(|g| g.read());
            app.gauges.process = Some(sample);
            app.gauges.advance(now);
            if gauge_signature(app) != before || app.gauges.active() {
                app.dirty = true;
            }
            // The server's in-flight and queued counts move between log entries too.
            if app.tab == action::Tab::Server && app.server.tick() {
                app.dirty = true;
            }
            last_sample = now;
        }
        if app.models.loading.is_some() && now - last_draw >= Duration::from_millis(100) {
            app.dirty = true; // the load spinner
        }
        if app.dirty && now - last_draw >= FRAME {
            terminal.draw(|f| ui::draw(f, app))?;
            app.dirty = false;
            last_draw = Instant::now();
            for e in app.effects.drain(..) {
                match e {
                    Effect::Clipboard(text) => {
                        let b64 = base64::engine::general_purpose::STANDARD.encode(text);
                        let mut out = std::io::stdout();
                        let _ = write!(out, "\x1b]52;c;{b64}\x07");
                        let _ = out.flush();
                    }
                }
            }
        }
        if app.quit {
            return Ok(());
        }
        let next_sample =
            Duration::from_secs(1).saturating_sub(now.elapsed().max(now - last_sample));
        let timeout = if app.dirty {
            FRAME.saturating_sub(last_draw.elapsed())
        } else if app.models.loading.is_some() {
            Duration::from_millis(100)
        } else {
            next_sample.max(Duration::from_millis(5))
        };
        if let Some(msg) = app.next_msg(timeout) {
            app.handle(msg);
            app.drain();
        }
    }
}
