//! The workbench App driven headless by Actions, on fake models.

mod common;

use common::tui::{app, app_with, screen, send, BROKEN, MODEL, OTHER};
use lmwb::chat::transcript::Speaker;
use lmwb::client::fake::Script;
use lmwb::engine::FinishReason;
use lmwb::tui::action::{Action, Edit, Tab};
use lmwb::tui::app::Effect;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::time::Duration;

const SETTLE: Duration = Duration::from_secs(10);

fn last_notice(app: &lmwb::tui::app::App) -> String {
    app.chat
        .transcript
        .turns
        .iter()
        .rev()
        .find(|t| t.speaker == Speaker::Notice)
        .map(|t| t.raw.clone())
        .unwrap_or_default()
}

#[test]
fn loads_the_default_model_and_streams_a_reply_with_stats() {
    let mut a = app(&["Paris is the **capital**."]);
    assert_eq!(a.models.active.as_deref(), Some(MODEL));
    send(&mut a, "Capital of France?");
    assert!(a.chat.busy(), "the reply streams in the background");
    assert!(a.settle(SETTLE));
    let turns = &a.chat.transcript.turns;
    assert_eq!(turns.len(), 2);
    assert_eq!(turns[0].raw, "Capital of France?");
    assert_eq!(turns[1].raw, "Paris is the **capital**.");
    let stats = turns[1].stats.as_ref().expect("stats");
    assert_eq!(stats.finish_reason, FinishReason::Stop);
    assert!(a.chat.input.is_empty());
    let s = screen(&a, 100, 30);
    assert!(s.contains("Paris is the capital."), "{s}");
    assert!(s.contains("tokens · TTFT 20 ms"), "{s}");
    assert_eq!(a.gauges.last_ttft_ms, Some(20.0));
    assert!(a
        .gauges
        .kv
        .is_some_and(|(used, cap)| used > 0 && cap == 8192));
}

#[test]
fn the_second_turn_sends_the_whole_conversation() {
    let mut a = app(&["One.", "Two."]);
    send(&mut a, "first");
    a.settle(SETTLE);
    send(&mut a, "second");
    a.settle(SETTLE);
    assert_eq!(a.chat.transcript.turns.len(), 4);
    let msgs = a.chat.transcript.messages(None);
    let contents: Vec<&str> = msgs.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(contents, ["first", "One.", "second", "Two."]);
}

#[test]
fn esc_stops_a_generation_at_once() {
    let long: Vec<String> = (0..200).map(|i| format!("w{i} ")).collect();
    let mut a = app_with(vec![Script::Reply(long)], Duration::from_millis(20));
    send(&mut a, "go on forever");
    while a.chat.inflight.as_ref().map_or(0, |f| f.generated) < 3 {
        let m = a.next_msg(SETTLE).expect("tokens");
        a.handle(m);
    }
    let key = KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE);
    assert_eq!(a.translate_key(&key), Some(Action::Stop));
    a.dispatch(Action::Stop);
    assert!(!a.chat.busy(), "stopped at once, not after the next token");
    let turn = a.chat.transcript.turns.last().unwrap();
    assert!(turn.stopped && !turn.streaming);
    let shown = turn.raw.clone();
    a.settle(SETTLE);
    std::thread::sleep(Duration::from_millis(100));
    a.drain();
    let turn = a.chat.transcript.turns.last().unwrap();
    assert_eq!(turn.raw, shown, "no text arrives after the stop");
    assert!(turn.raw.split_whitespace().count() < 50);
    assert_eq!(
        turn.stats.as_ref().map(|s| s.finish_reason),
        Some(FinishReason::Cancelled)
    );
    assert!(screen(&a, 100, 30).contains("■ stopped"));
}

#[test]
fn reasoning_is_folded_counted_and_unfolds() {
    let mut a = app(&["<think>The user wants a city. Paris.</think>Paris."]);
    send(&mut a, "capital?");
    a.settle(SETTLE);
    let t = &a.chat.transcript.turns[1];
    assert_eq!(t.answer(), "Paris.");
    assert!(t.reasoning_tokens > 3, "{}", t.reasoning_tokens);
    let folded = screen(&a, 100, 30);
    assert!(
        folded.contains(&format!(
            "▸ reasoning (analysis) · {} tokens hidden",
            t.reasoning_tokens
        )),
        "{folded}"
    );
    assert!(!folded.contains("wants a city"));
    a.dispatch(Action::ToggleReasoning);
    let open = screen(&a, 100, 30);
    assert!(
        open.contains("▾ reasoning") && open.contains("The user wants a city. Paris."),
        "{open}"
    );
    a.dispatch(Action::ToggleRaw);
    let raw = screen(&a, 100, 30);
    assert!(
        raw.contains("<think>The user wants a city. Paris.</think>Paris."),
        "{raw}"
    );
    // Only the answer goes back to the model.
    assert_eq!(a.chat.transcript.messages(None)[1].content, "Paris.");
}

#[test]
fn slash_commands_and_their_errors() {
    let mut a = app(&["```rust\nfn main() {}\n```\nand\n```py\nprint(1)\n```"]);
    send(&mut a, "/help");
    assert!(last_notice(&a).contains("/regenerate"));
    send(&mut a, "/system Answer in French.");
    assert_eq!(a.chat.settings.system.as_deref(), Some("Answer in French."));
    send(&mut a, "/set temperature 0.2");
    assert_eq!(a.chat.settings.sampling.temperature, 0.2);
    send(&mut a, "/set top_p 7");
    assert!(
        last_notice(&a).starts_with("error: /set top_p"),
        "{}",
        last_notice(&a)
    );
    send(&mut a, "/set");
    assert!(last_notice(&a).contains("temperature = 0.2"));
    send(&mut a, "/frob");
    assert!(last_notice(&a).contains("unknown command /frob"));
    send(&mut a, "/stats");
    assert!(last_notice(&a).contains("no reply with statistics yet"));
    send(&mut a, "/regenerate");
    assert!(last_notice(&a).contains("nothing to regenerate"));
    send(&mut a, "/copy 1");
    assert!(last_notice(&a).contains("no code blocks"));

    send(&mut a, "code please");
    a.settle(SETTLE);
    let req = a.client.as_ref().map(|_| ()).and(Some(()));
    assert!(req.is_some());
    send(&mut a, "/copy 2");
    assert_eq!(a.effects, vec![Effect::Clipboard("print(1)\n".into())]);
    assert!(last_notice(&a).contains("copied code block 2 (py, 1 lines)"));
    send(&mut a, "/copy 3");
    assert!(last_notice(&a).contains("there is no code block 3; the replies hold 2"));
    send(&mut a, "/stats");
    assert!(last_notice(&a).contains("TTFT 20 ms"));

    let before = a.chat.transcript.turns.len();
    send(&mut a, "/regenerate");
    a.settle(SETTLE);
    let turns = &a.chat.transcript.turns;
    assert_eq!(turns.last().unwrap().speaker, Speaker::Assistant);
    assert_eq!(
        turns[turns.len() - 2].raw,
        "code please",
        "notices after the question are dropped"
    );
    assert!(turns.len() < before);

    send(&mut a, "/model nope");
    assert!(last_notice(&a).contains("no model named `nope`"));
    send(&mut a, "/model fake");
    assert!(last_notice(&a).contains("matches several models"));
    send(&mut a, "/model qwen");
    a.settle(SETTLE);
    assert_eq!(a.models.active.as_deref(), Some(OTHER));
    send(&mut a, "/clear now");
    assert!(last_notice(&a).contains("takes no arguments"));
    send(&mut a, "/clear");
    assert!(a.chat.transcript.turns.is_empty());
    send(&mut a, "/load /definitely/not/here.json");
    assert!(last_notice(&a).contains("cannot read session /definitely/not/here.json"));
}

#[test]
fn sessions_save_and_load_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let f1 = dir.path().join("s1.json");
    let f2 = dir.path().join("s2.json");
    let mut a = app(&["<think>hmm</think>**Bonjour** ✓", "Second."]);
    send(&mut a, "/system Be nice.");
    send(&mut a, "/set seed 7");
    send(&mut a, "hello\nworld");
    a.settle(SETTLE);
    send(&mut a, "again");
    a.settle(SETTLE);
    send(&mut a, &format!("/save {}", f1.display()));
    assert!(
        last_notice(&a).contains("saved 4 turns"),
        "{}",
        last_notice(&a)
    );

    let mut b = app(&["x"]);
    send(&mut b, &format!("/load {}", f1.display()));
    assert!(
        last_notice(&b).contains("loaded 4 turns"),
        "{}",
        last_notice(&b)
    );
    assert_eq!(b.chat.settings.system.as_deref(), Some("Be nice."));
    assert_eq!(b.chat.settings.sampling.seed, Some(7));
    let raws = |x: &lmwb::tui::app::App| -> Vec<(Speaker, String)> {
        x.chat
            .transcript
            .turns
            .iter()
            .filter(|t| t.speaker != Speaker::Notice)
            .map(|t| (t.speaker, t.raw.clone()))
            .collect()
    };
    assert_eq!(raws(&a), raws(&b));
    assert_eq!(b.chat.transcript.turns[1].answer(), "**Bonjour** ✓");
    send(&mut b, &format!("/save {}", f2.display()));
    assert_eq!(std::fs::read(&f1).unwrap(), std::fs::read(&f2).unwrap());

    std::fs::write(&f2, "{\"not\": \"a session\"}").unwrap();
    send(&mut b, &format!("/load {}", f2.display()));
    assert!(last_notice(&b).contains("is not an lmwb session"));
    assert_eq!(raws(&a), raws(&b), "a failed load changes nothing");
}

#[test]
fn models_pane_loads_unloads_and_shows_errors() {
    let mut a = app(&["hi"]);
    a.dispatch(Action::Show(Tab::Models));
    let i = a.models.rows.iter().position(|r| r.name == BROKEN).unwrap();
    while a.models.selected != i {
        a.dispatch(Action::SelectNext);
    }
    a.dispatch(Action::Load);
    assert!(a.models.loading.is_some());
    a.settle(SETTLE);
    assert!(
        a.models.active.is_none(),
        "the old model was unloaded first"
    );
    let s = screen(&a, 100, 30);
    assert!(
        s.contains("error: cannot load broken-model.q4_0: tensor blk.0.attn_q.weight is truncated"),
        "{s}"
    );
    a.dispatch(Action::SelectPrev);
    a.dispatch(Action::Load);
    a.settle(SETTLE);
    assert_eq!(a.models.active.as_deref(), Some(OTHER));
    a.dispatch(Action::Unload);
    assert!(a.client.is_none() && a.models.active.is_none());
    a.dispatch(Action::Show(Tab::Chat));
    send(&mut a, "anyone?");
    assert!(last_notice(&a).contains("no model is loaded"));
}

#[test]
fn a_message_sent_while_loading_waits_for_the_model() {
    let mut a = app(&["ready"]);
    a.dispatch(Action::Show(Tab::Models));
    a.dispatch(Action::Rescan);
    a.settle(SETTLE);
    a.dispatch(Action::Load);
    a.dispatch(Action::Show(Tab::Chat));
    send(&mut a, "hello?");
    assert!(a.chat.pending || a.chat.busy());
    a.settle(SETTLE);
    assert_eq!(a.chat.transcript.turns.last().unwrap().raw, "ready");
}

#[test]
fn keys_type_into_the_input_or_act() {
    let mut a = app(&["x"]);
    let k = |c: KeyCode, m: KeyModifiers| KeyEvent::new(c, m);
    assert_eq!(
        a.translate_key(&k(KeyCode::Char('?'), KeyModifiers::NONE)),
        Some(Action::Help)
    );
    a.dispatch(Action::Edit(Edit::Insert('a')));
    assert_eq!(
        a.translate_key(&k(KeyCode::Char('?'), KeyModifiers::NONE)),
        Some(Action::Edit(Edit::Insert('?')))
    );
    assert_eq!(
        a.translate_key(&k(KeyCode::Enter, KeyModifiers::ALT)),
        Some(Action::Newline)
    );
    assert_eq!(
        a.translate_key(&k(KeyCode::Char('j'), KeyModifiers::CONTROL)),
        Some(Action::Newline)
    );
    assert_eq!(
        a.translate_key(&k(KeyCode::Char('q'), KeyModifiers::CONTROL)),
        Some(Action::Quit)
    );
    a.dispatch(Action::Show(Tab::Models));
    assert_eq!(
        a.translate_key(&k(KeyCode::Char('j'), KeyModifiers::NONE)),
        Some(Action::SelectNext)
    );
    a.dispatch(Action::Help);
    assert!(a.help);
    assert_eq!(
        a.translate_key(&k(KeyCode::Char('x'), KeyModifiers::NONE)),
        Some(Action::Help)
    );
    a.dispatch(Action::Help);
    a.dispatch(Action::Quit);
    assert!(a.quit);
}

#[test]
fn scrollback_pages_and_follow_mode() {
    let mut a = app(&["line\n\n".repeat(40).as_str()]);
    send(&mut a, "long please");
    a.settle(SETTLE);
    screen(&a, 80, 24);
    assert!(a.chat.top.is_none(), "following the bottom");
    a.dispatch(Action::ScrollUp);
    assert!(a.chat.top.is_some());
    let s = screen(&a, 80, 24);
    assert!(s.contains("more lines"), "{s}");
    a.dispatch(Action::Wheel(-3));
    a.dispatch(Action::ScrollTop);
    assert!(screen(&a, 80, 24).contains("you ›"));
    a.dispatch(Action::Follow);
    assert!(a.chat.top.is_none());
    for _ in 0..50 {
        a.dispatch(Action::ScrollDown);
    }
    assert!(
        a.chat.top.is_none(),
        "scrolling to the bottom resumes following"
    );
}

#[test]
fn the_models_pane_shows_the_memory_estimate_before_a_load() {
    use lmwb::models::fit::{estimate, KvDtype};
    let mut a = app(&["x"]);
    a.dispatch(Action::Show(Tab::Models));
    let info = a.models.rows[0].info.clone().unwrap();
    // 84 MB of weights against 8 GiB free fits; against 50 MB it does not.
    a.models.rows[0].fit = Some(estimate(&info, 8192, KvDtype::F16, Some(8 << 30)));
    let s = screen(&a, 120, 30);
    let line = s
        .lines()
        .find(|l| l.contains("memory"))
        .unwrap_or_else(|| panic!("{s}"));
    assert!(
        line.contains("weights") && line.contains(": fits"),
        "{line}"
    );
    a.models.rows[0].fit = Some(estimate(&info, 8192, KvDtype::F16, Some(50_000_000)));
    let s = screen(&a, 120, 30);
    assert!(s.contains("does not fit"), "{s}");
}
