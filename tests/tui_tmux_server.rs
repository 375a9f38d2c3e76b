//! The real `lmwb` workbench on the real default model, in a real terminal (tmux): start
//! the server from the Server tab on a free port, send it a chat completion with curl, see the
//! request in the tab's log, stop the server, and find the port closed.

mod common;

use common::tmux::Workbench;
use serde_json::json;
use std::time::Duration;

const MODEL: &str = "smollm2-135m-instruct.q4_1";

#[test]
fn serve_from_the_server_tab_and_see_the_request() {
    let wb = Workbench::start(
        "lmwb-server-test",
        (120, 36),
        &["LMWB_SAMPLING_TEMPERATURE=0", "LMWB_SAMPLING_MAX_TOKENS=8"],
    );
    let t = &wb.tmux;
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
    // curl, as a user would.
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "-w",
            "\n%{http_code}",
            "-H",
            "Content-Type: application/json",
            "-d",
        ])
        .arg(body.to_string())
        .arg(format!("http://{addr}/v1/chat/completions"))
        .output()
        .expect("curl is installed (scripts/test.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (text, status) = text.rsplit_once('\n').unwrap();
    assert_eq!(status, "200", "{text}");
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
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

    wb.quit();
}
