//! `lmwb serve` as a child process over a models folder: `--port 0`, the port it printed,
//! plain HTTP requests, and SIGTERM.
//!
//! Include it with `#[path = "common/serve_proc.rs"] mod serve_proc;` beside
//! `common/http.rs` (as `http`) and `common/sandbox.rs` (as `sandbox`).
#![allow(dead_code)]

use super::{http, sandbox};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub struct Server {
    child: Child,
    pub addr: String,
    stderr: mpsc::Receiver<String>,
    _home: tempfile::TempDir,
}

impl Server {
    /// `lmwb serve -m model` over the models folder `models`.
    pub fn start_in(models: &std::path::Path, model: &str, extra: &[&str]) -> Server {
        let home = tempfile::tempdir().unwrap();
        let mut child = sandbox::command(home.path(), models)
            .args(["serve", "--port", "0", "-m", model])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("lmwb serve starts");
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut seen = Vec::new();
        let addr = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(120))
                .unwrap_or_else(|_| panic!("no address printed; stderr so far: {seen:?}"));
            if let Some(rest) = line.split("at http://").nth(1) {
                break rest.split_whitespace().next().unwrap().to_string();
            }
            seen.push(line);
        };
        assert!(!addr.ends_with(":0"), "the real port is printed: {addr}");
        Server {
            child,
            addr,
            stderr: rx,
            _home: home,
        }
    }

    pub fn http(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, String) {
        http::request(&self.addr, method, path, body)
    }

    pub fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(ok.success());
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "lmwb serve exits 0 on SIGTERM: {status:?}"
        );
        self.stderr.try_iter().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}
