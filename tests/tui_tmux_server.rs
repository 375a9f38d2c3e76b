//! The real `lmwb` workbench on the real default model, in a real terminal (tmux): start
//! the server from the Server tab on a free port, send it a chat completion, see the
//! request in the tab's log, stop the server, and find the port closed.

mod common;
#[path = "common/http.rs"]
mod http;

use common::tmux::{quote, Tmux};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

const MODEL: &str = "smollm2-135m-instruct.q4_1";

#[test]
fn serve_from_the_server_tab_and_see_the_request() {
    let model = common::real::default_model_path();
    let home = tempfile::tempdir().unwrap();
    let models = home.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    std::os::unix::fs::symlink(&model, models.join(model.file_name().unwrap())).unwrap();
    let h = home.path();
    let launch = format!(
        "cd {h} && env -u LMWB_LOG -u LMWB_API_KEY HOME={home} XDG_CONFIG_HOME={cfg} LMWB_RUNS_DIR={runs} LMWB_MODELS_DIR={models} \
         LMWB_SAMPLING_TEMPERATURE=0 LMWB_SAMPLING_MAX_TOKENS=8 {bin}; echo LMWB_EXIT=$?; sleep 600",
        h = quote(h),
        home = quote(&h.join("home")),
        cfg = quote(&h.join("config")),
        runs = quote(&h.join("runs")),
        models = quote(&models),
        bin = quote(Path::new(env!("CARGO_BIN_EXE_lmwb"))),
    );
    let t = Tmux::new("lmwb-server-test", false);
    t.cmd(&[
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "120",
        "-y",
        "36",
        &launch,
    ]);
    t.wait_for(&format!("● {MODEL}"), Duration::from_secs(120));

    t.cmd(&["send-keys", "-t", "t", "M-5"]);
    t.wait_for("○ stopped", Duration::from_secs(10));
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    t.cmd(&["send-keys", "-t", "t", "p"]);
    t.wait_for("Port (0 takes any free one)", Duration::from_secs(10));
    t.cmd(&["send-keys", "-t", "t", "C-u"]);
    t.send(&port.to_string());
    t.wait_for(&format!("port {port}"), Duration::from_secs(10));
    t.cmd(&["send-keys", "-t", "t", "s"]);
    let addr = format!("127.0.0.1:{port}");
    let s = t.wait_for(
        &format!("● running at http://{addr}"),
        Duration::from_secs(30),
    );
    assert!(s.contains(&format!("model    {MODEL}")), "{s}");

    let body = json!({
        "model": MODEL,
        "max_tokens": 8,
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
    });
    let (status, text) = http::request(&addr, "POST", "/v1/chat/completions", Some(&body));
    assert_eq!(status, 200, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let completion = v["usage"]["completion_tokens"].as_u64().unwrap();
    assert!(completion > 0, "{v}");
    let s = t.wait_for("/v1/chat/completions", Duration::from_secs(30));
    let row = s
        .lines()
        .find(|l| l.contains("/v1/chat/completions"))
        .unwrap();
    assert!(row.contains("POST") && row.contains(" 200 "), "{row}");
    assert!(row.contains(MODEL) && row.contains("127.0.0.1:"), "{row}");
    assert!(row.contains(&format!("→{completion}")), "{row}");
    assert!(s.contains("requests 1"), "{s}");

    t.cmd(&["send-keys", "-t", "t", "s"]);
    t.wait_for("○ stopped", Duration::from_secs(30));
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "the port is still open"
    );

    t.cmd(&["send-keys", "-t", "t", "C-q"]);
    let s = t.wait_for("LMWB_EXIT=", Duration::from_secs(30));
    assert!(s.contains("LMWB_EXIT=0"), "{s}");
}
