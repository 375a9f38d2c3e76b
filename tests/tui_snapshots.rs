//! Snapshots of every pane in its main states (ratatui TestBackend, fixed sizes, fake
//! models). Review changes with `cargo insta review` (or INSTA_UPDATE=always).

mod common;

use common::tui::{app, screen, send, BROKEN};
use insta::assert_snapshot;
use lmwb::engine::Event;
use lmwb::tui::action::{Action, Tab};
use std::time::{Duration, Instant};

const SETTLE: Duration = Duration::from_secs(10);
const REPLY: &str = "<think>They want Rust. Keep it short.</think>## Hello in Rust\n\n\
Use **`println!`** — see [the book](https://doc.rust-lang.org/book/):\n\n\
```rust\nfn main() {\n    println!(\"Hello\");\n}\n```\n\n\
| lang | call |\n|---|---|\n| Rust | `println!` |\n| Python | `print` |\n\n\
> Quotes work too.\n\n- one\n- two\n  1. nested";

fn chatted() -> lmwb::tui::app::App {
    let mut a = app(&[REPLY]);
    send(&mut a, "How do I print in Rust?");
    a.settle(SETTLE);
    a.gauges.clear_history(Instant::now()); // the sparkline depends on the clock
    a
}

#[test]
fn chat_empty() {
    let a = app(&["x"]);
    assert_snapshot!(screen(&a, 100, 30));
}

#[test]
fn chat_reply_markdown_reasoning_folded() {
    assert_snapshot!(screen(&chatted(), 100, 40));
}

#[test]
fn chat_reasoning_unfolded() {
    let mut a = chatted();
    a.dispatch(Action::ToggleReasoning);
    assert_snapshot!(screen(&a, 100, 40));
}

#[test]
fn chat_raw_view() {
    let mut a = chatted();
    a.dispatch(Action::ToggleRaw);
    assert_snapshot!(screen(&a, 100, 40));
}

#[test]
fn chat_streaming_with_multiline_input() {
    let mut a = app(&["x"]);
    send(&mut a, "Tell me a story");
    a.settle(SETTLE);
    // Replay a reply half-way through its stream.
    a.chat.clear();
    a.chat
        .transcript
        .turns
        .push(lmwb::chat::transcript::Turn::user("Tell me a story"));
    a.chat.begin(99, Default::default());
    for ev in [
        Event::Started {
            prompt_tokens: 12,
            cached_tokens: 0,
        },
        Event::Token {
            id: 1,
            text: "Once upon".into(),
            logprobs: None,
        },
        Event::Token {
            id: 2,
            text: " a time, in a `terminal`".into(),
            logprobs: None,
        },
    ] {
        let cap = Some(8192);
        let mut g = a.gauges.clone();
        a.chat.on_event(99, ev, &mut g, cap);
        a.gauges.kv = g.kv;
    }
    a.gauges.clear_history(Instant::now());
    a.gauges.token(Instant::now());
    a.dispatch(Action::Edit(lmwb::tui::action::Edit::Paste(
        "first line\nsecond line".into(),
    )));
    assert_snapshot!(screen(&a, 100, 30));
}

#[test]
fn chat_small_terminal_80x24() {
    assert_snapshot!(screen(&chatted(), 80, 24));
}

#[test]
fn chat_notices_and_errors() {
    let mut a = app(&["x"]);
    send(&mut a, "/set top_p 9");
    send(&mut a, "/nope");
    send(&mut a, "/system Be brief.");
    assert_snapshot!(screen(&a, 100, 30));
}

#[test]
fn help_overlay() {
    let mut a = app(&["x"]);
    a.dispatch(Action::Help);
    assert_snapshot!(screen(&a, 100, 48));
    assert_snapshot!("help_overlay_80x24", screen(&a, 80, 24));
    a.dispatch(Action::Wheel(10));
    assert_snapshot!("help_overlay_80x24_scrolled", screen(&a, 80, 24));
}

#[test]
fn models_loaded() {
    let mut a = app(&["x"]);
    a.dispatch(Action::Show(Tab::Models));
    assert!(a.models.load_ms.is_some());
    a.models.load_ms = Some(1234.0); // a fixed load time for the snapshot
    assert_snapshot!(screen(&a, 100, 30));
}

#[test]
fn models_loading_and_error() {
    let mut a = app(&["x"]);
    a.dispatch(Action::Show(Tab::Models));
    let i = a.models.rows.iter().position(|r| r.name == BROKEN).unwrap();
    a.models.selected = i;
    a.dispatch(Action::Load);
    a.settle(SETTLE);
    assert_snapshot!("models_load_error", screen(&a, 100, 30));
    a.models.error = None;
    a.models.loading = Some((
        "fake-qwen-500m.q8_0".into(),
        Instant::now() - Duration::from_millis(1520),
    ));
    assert_snapshot!("models_loading", screen(&a, 100, 30));
}

#[test]
fn tiny_terminals_do_not_panic() {
    let mut a = chatted();
    for tab in Tab::ALL {
        a.dispatch(Action::Show(tab));
        for (w, h) in [(1, 1), (20, 5), (40, 10), (80, 24)] {
            screen(&a, w, h);
        }
    }
}
