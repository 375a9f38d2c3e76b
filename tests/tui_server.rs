//! The Server tab driven headless by Actions on fake models: it serves the model in use
//! over a real socket (`lmwb serve`'s server), logs each request live, requires its API
//! key when asked, follows the model in use, stops cleanly; and snapshots of the tab.

mod common;
#[path = "common/http.rs"]
mod http;

use common::tui::{app, screen, MODEL, OTHER};
use insta::assert_snapshot;
use lmwb::server::metrics::Highlights;
use lmwb::server::request_log::RequestEntry;
use lmwb::tui::action::{Action, Edit, ServerAction, Tab};
use lmwb::tui::app::{App, Effect};
use lmwb::tui::server::Status;
use serde_json::{json, Value};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SETTLE: Duration = Duration::from_secs(10);

fn server_action(a: &mut App, s: ServerAction) {
    a.dispatch(Action::Server(s));
}

/// Type `text` into the field the last action opened and press Enter.
fn type_field(a: &mut App, text: &str) {
    assert!(a.field.is_some(), "no field is open");
    a.dispatch(Action::Edit(Edit::ClearLine));
    a.dispatch(Action::Edit(Edit::Paste(text.into())));
    a.dispatch(Action::FieldSubmit);
}

/// Handle messages until `done` holds (or fail after 10 s).
fn wait_for(a: &mut App, what: &str, done: impl Fn(&App) -> bool) {
    let end = Instant::now() + SETTLE;
    while !done(a) {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        if let Some(m) = a.next_msg(Duration::from_millis(20)) {
            a.handle(m);
        }
    }
}

/// The App on the Server tab, its port set to `port`.
fn on_server_tab(replies: &[&str], port: &str) -> App {
    let mut a = app(replies);
    a.dispatch(Action::Show(Tab::Server));
    server_action(&mut a, ServerAction::Port);
    type_field(&mut a, port);
    a
}

/// Start the server on a free port; its address.
fn serving(a: &mut App) -> String {
    server_action(a, ServerAction::Toggle);
    assert!(a.settle(SETTLE));
    match &a.server.status {
        Status::Running(addr) => addr.to_string(),
        s => panic!("not running: {s:?}"),
    }
}

fn chat_body(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

#[test]
fn serves_the_model_in_use_and_logs_each_request_live() {
    let mut a = on_server_tab(&["Hello from the server"], "0");
    let addr = serving(&mut a);
    assert_eq!(a.server.model.as_deref(), Some(MODEL));
    let (status, body) = http::request(
        &addr,
        "POST",
        "/v1/chat/completions",
        Some(&chat_body(MODEL)),
    );
    assert_eq!(status, 200, "{body}");
    let usage = serde_json::from_str::<Value>(&body).unwrap()["usage"].clone();
    wait_for(&mut a, "the log entry", |a| a.server.log.len() == 1);
    let e = &a.server.log[0];
    assert_eq!(
        (e.method.as_str(), e.path.as_str(), e.status),
        ("POST", "/v1/chat/completions", 200)
    );
    assert_eq!(e.model.as_deref(), Some(MODEL));
    http::assert_usage(&e, &usage);
    assert_eq!(e.client.unwrap().ip().to_string(), "127.0.0.1");
    let h = &a.server.highlights;
    assert_eq!((h.requests, h.errors), (1, 0));
    assert_eq!(h.generated_tokens, e.generated_tokens as u64);
    assert_eq!(h.ttft_count, 1);
    let s = screen(&a, 120, 30);
    assert!(s.contains(&format!("running at http://{addr}")), "{s}");
    assert!(
        s.contains("/v1/chat/completions") && s.contains(" 200 "),
        "{s}"
    );
    assert!(s.contains("requests 1"), "{s}");
}

#[test]
fn the_chat_and_the_server_share_the_loaded_model() {
    let mut a = on_server_tab(&["shared"], "0");
    let addr = serving(&mut a);
    let served = a.server.handle.as_ref().unwrap().state().pool.loaded();
    let (mine, theirs) = (a.client.clone().unwrap(), served[0].client.clone());
    assert!(
        Arc::ptr_eq(&mine, &theirs),
        "the server holds another copy of the model"
    );
    // The chat keeps working while serving.
    common::tui::send(&mut a, "hello");
    let (status, _) = http::request(
        &addr,
        "POST",
        "/v1/chat/completions",
        Some(&chat_body(MODEL)),
    );
    assert!(a.settle(SETTLE));
    assert_eq!(status, 200);
    assert!(a
        .chat
        .transcript
        .turns
        .iter()
        .any(|t| t.raw.contains("shared")));
}

#[test]
fn with_the_key_on_a_request_without_it_gets_401_in_the_log() {
    let mut a = on_server_tab(&["ok"], "0");
    server_action(&mut a, ServerAction::Key);
    let key = a.server.api_key().expect("a key").to_string();
    assert!(key.len() >= 16);
    let addr = serving(&mut a);
    let (status, _) = http::request(&addr, "GET", "/v1/models", None);
    assert_eq!(status, 401);
    let bearer = format!("Bearer {key}");
    let (status, _) = http::request_with(
        &addr,
        "GET",
        "/v1/models",
        None,
        &[("Authorization", &bearer)],
    );
    assert_eq!(status, 200);
    wait_for(&mut a, "two entries", |a| a.server.log.len() == 2);
    assert_eq!(a.server.log[0].status, 401);
    assert_eq!(a.server.log[1].status, 200);
    assert_eq!(a.server.highlights.errors, 1);
    let s = screen(&a, 120, 30);
    assert!(s.contains(&key), "the key is shown: {s}");
    // `y` copies the URL and the header.
    server_action(&mut a, ServerAction::Copy);
    assert_eq!(
        a.effects.last(),
        Some(&Effect::Clipboard(format!(
            "http://{addr}/v1\nAuthorization: {bearer}"
        )))
    );
    // Turning the key off restarts the server without it.
    server_action(&mut a, ServerAction::Key);
    assert!(a.settle(SETTLE));
    let Status::Running(addr) = a.server.status.clone() else {
        panic!("not running again: {:?}", a.server.status);
    };
    let (status, _) = http::request(&addr.to_string(), "GET", "/v1/models", None);
    assert_eq!(status, 200);
}

#[test]
fn stopping_closes_the_port() {
    let mut a = on_server_tab(&["ok"], "0");
    let addr = serving(&mut a);
    assert!(TcpStream::connect(&addr).is_ok());
    server_action(&mut a, ServerAction::Toggle);
    assert!(a.server.busy());
    assert!(a.settle(SETTLE));
    assert_eq!(a.server.status, Status::Stopped);
    assert!(TcpStream::connect(&addr).is_err(), "still listening");
    assert!(screen(&a, 120, 30).contains("○ stopped"));
}

#[test]
fn quitting_stops_the_server() {
    let mut a = on_server_tab(&["ok"], "0");
    let addr = serving(&mut a);
    a.dispatch(Action::Quit);
    assert!(a.quit);
    assert!(
        TcpStream::connect(&addr).is_err(),
        "still listening after quit"
    );
}

#[test]
fn without_a_model_it_says_to_load_one() {
    let mut a = on_server_tab(&["ok"], "0");
    a.dispatch(Action::Unload);
    server_action(&mut a, ServerAction::Toggle);
    assert!(a.settle(SETTLE));
    assert_eq!(a.server.status, Status::Stopped);
    let notice = a.server.notice.clone().unwrap_or_default();
    assert!(
        notice.contains("load a model in the Models tab first"),
        "{notice}"
    );
    assert!(screen(&a, 120, 30).contains("load a model in the Models tab first"));
}

#[test]
fn a_busy_port_is_an_error_in_the_tab() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let mut a = on_server_tab(&["ok"], &port);
    server_action(&mut a, ServerAction::Toggle);
    assert!(a.settle(SETTLE));
    let Status::Error(e) = &a.server.status else {
        panic!("no error: {:?}", a.server.status);
    };
    assert!(e.contains(&format!("127.0.0.1:{port}")), "{e}");
    assert!(e.contains("press p to pick another"), "{e}");
    let s = screen(&a, 120, 30);
    assert!(s.contains("another program uses port"), "{s}");
    // Another port works.
    server_action(&mut a, ServerAction::Port);
    type_field(&mut a, "0");
    serving(&mut a);
}

#[test]
fn a_bad_port_or_address_reopens_the_field_with_why() {
    let mut a = app(&["ok"]);
    a.dispatch(Action::Show(Tab::Server));
    server_action(&mut a, ServerAction::Port);
    type_field(&mut a, "99999");
    let f = a.field.as_ref().expect("the field again");
    assert!(
        f.hint.as_deref().unwrap().contains("from 0 to 65535"),
        "{:?}",
        f.hint
    );
    assert_eq!(a.server.port, 8080);
    a.dispatch(Action::FieldCancel);
    server_action(&mut a, ServerAction::Host);
    type_field(&mut a, "");
    assert!(a
        .field
        .as_ref()
        .unwrap()
        .hint
        .as_deref()
        .unwrap()
        .contains("not an address"));
    a.dispatch(Action::FieldCancel);
    server_action(&mut a, ServerAction::Host);
    type_field(&mut a, "localhost");
    assert_eq!(a.server.host, "localhost");
}

#[test]
fn loading_another_model_restarts_the_server_with_it() {
    let mut a = on_server_tab(&["ok"], "0");
    serving(&mut a);
    a.models.selected = a.models.find(OTHER).unwrap();
    a.dispatch(Action::Load);
    assert!(a.settle(SETTLE));
    wait_for(&mut a, "the restart", |a| a.server.running());
    assert_eq!(a.server.model.as_deref(), Some(OTHER));
    let notice = a.server.notice.clone().unwrap_or_default();
    assert!(notice.contains(&format!("now serving {OTHER}")), "{notice}");
    let Status::Running(addr) = a.server.status.clone() else {
        unreachable!()
    };
    let (status, body) = http::request(&addr.to_string(), "GET", "/v1/models", None);
    assert_eq!(status, 200);
    assert!(body.contains(OTHER) && !body.contains(MODEL), "{body}");
}

#[test]
fn unloading_the_model_stops_the_server() {
    let mut a = on_server_tab(&["ok"], "0");
    let addr = serving(&mut a);
    a.dispatch(Action::Unload);
    assert!(a.settle(SETTLE));
    assert_eq!(a.server.status, Status::Stopped);
    assert!(TcpStream::connect(&addr).is_err());
    let notice = a.server.notice.clone().unwrap_or_default();
    assert!(
        notice.contains("was unloaded, so the server stopped"),
        "{notice}"
    );
}

#[test]
fn the_footer_and_help_list_every_server_key() {
    let mut a = app(&["ok"]);
    a.dispatch(Action::Show(Tab::Server));
    let s = screen(&a, 160, 30);
    let footer = s.lines().rev().find(|l| !l.trim().is_empty()).unwrap();
    for k in [" s ", " k ", " a ", " p ", " y "] {
        assert!(
            footer.contains(k),
            "{k:?} missing from the footer: {footer}"
        );
    }
    a.dispatch(Action::Help);
    let help = screen(&a, 100, 200);
    for about in [
        "start / stop the server",
        "API key on / off",
        "edit the address",
        "edit the port",
        "copy the URL",
    ] {
        assert!(
            help.contains(about),
            "{about:?} missing from the help: {help}"
        );
    }
}

fn entry(
    time: &str,
    method: &str,
    path: &str,
    status: u16,
    tokens: (usize, usize),
    ms: f64,
) -> RequestEntry {
    RequestEntry {
        time: time.into(),
        method: method.into(),
        path: path.into(),
        model: (tokens.1 > 0).then(|| MODEL.to_string()),
        status,
        prompt_tokens: tokens.0,
        generated_tokens: tokens.1,
        duration_ms: ms,
        client: Some("127.0.0.1:51234".parse().unwrap()),
    }
}

#[test]
fn snapshot_stopped() {
    let mut a = app(&["ok"]);
    a.dispatch(Action::Show(Tab::Server));
    assert_snapshot!(screen(&a, 110, 30));
}

#[test]
fn snapshot_running_with_requests() {
    let mut a = app(&["ok"]);
    a.dispatch(Action::Show(Tab::Server));
    // The state a running server leaves (no socket, so nothing varies).
    a.server.status = Status::Running("127.0.0.1:8080".parse().unwrap());
    a.server.model = Some(MODEL.into());
    a.server.key_on = true;
    a.server.key = Some("lmwb-0123456789abcdef".into());
    for e in [
        entry("09:14:02", "GET", "/v1/models", 200, (0, 0), 0.4),
        entry(
            "09:14:05",
            "POST",
            "/v1/chat/completions",
            200,
            (12, 48),
            812.0,
        ),
        entry("09:14:09", "POST", "/v1/chat/completions", 401, (0, 0), 0.2),
        entry("09:14:11", "POST", "/api/chat", 200, (9, 120), 2140.5),
        entry("09:14:15", "GET", "/nope", 404, (0, 0), 0.3),
    ] {
        a.server.push(e);
    }
    a.server.highlights = Highlights {
        requests: 5,
        errors: 2,
        prompt_tokens: 21,
        generated_tokens: 168,
        in_flight: 0,
        queued: 0,
        ttft_mean_s: Some(0.02),
        ttft_count: 2,
        itl_mean_s: Some(0.0123),
    };
    assert_snapshot!(screen(&a, 110, 30));
}

#[test]
fn the_counters_follow_a_request_in_flight_between_log_entries() {
    use lmwb::client::fake::Script;
    let mut a = common::tui::app_with(
        vec![Script::text("one two three four five six seven eight")],
        Duration::from_millis(40),
    );
    a.dispatch(Action::Show(Tab::Server));
    server_action(&mut a, ServerAction::Port);
    type_field(&mut a, "0");
    let addr = serving(&mut a);
    let client = {
        let addr = addr.clone();
        std::thread::spawn(move || {
            http::request(
                &addr,
                "POST",
                "/v1/chat/completions",
                Some(&chat_body(MODEL)),
            )
        })
    };
    let end = Instant::now() + SETTLE;
    while a.server.highlights.in_flight != 1 {
        assert!(
            Instant::now() < end,
            "the request never showed as in flight"
        );
        std::thread::sleep(Duration::from_millis(10));
        a.server.tick();
    }
    assert!(a.server.log.is_empty(), "no entry yet: it is still running");
    assert!(screen(&a, 110, 30).contains("in flight 1"));
    let (status, _) = client.join().unwrap();
    assert_eq!(status, 200);
    assert!(a.server.tick(), "the counters moved");
    assert_eq!(a.server.highlights.in_flight, 0);
}
