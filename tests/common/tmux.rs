//! A private tmux server for the tests that drive the real binary in a real terminal:
//! start a session, type, read the screen, wait for text; killed on drop.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Tmux {
    socket: String,
    /// Capture with `-J` (wrapped lines joined: for shell output, not full-screen apps).
    join_wrapped: bool,
}

impl Tmux {
    /// A tmux server on its own socket (`name` and the process id).
    pub fn new(name: &str, join_wrapped: bool) -> Tmux {
        Tmux {
            socket: format!("{name}-{}", std::process::id()),
            join_wrapped,
        }
    }

    pub fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux is installed (scripts/test.sh installs it)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn screen(&self) -> String {
        if self.join_wrapped {
            self.cmd(&["capture-pane", "-p", "-J", "-t", "t"])
        } else {
            self.cmd(&["capture-pane", "-p", "-t", "t"])
        }
    }

    /// The screen once it shows `what`; panics with the screen after `limit`.
    pub fn wait_for(&self, what: &str, limit: Duration) -> String {
        let end = Instant::now() + limit;
        loop {
            let s = self.screen();
            if s.contains(what) {
                return s;
            }
            if Instant::now() > end {
                panic!("{what:?} did not appear within {limit:?}; the screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Type `line` and Enter.
    pub fn send(&self, line: &str) {
        self.cmd(&["send-keys", "-t", "t", "-l", line]);
        self.cmd(&["send-keys", "-t", "t", "Enter"]);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.cmd(&["kill-server"]);
    }
}

/// `p` quoted for a POSIX shell.
pub fn quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}
