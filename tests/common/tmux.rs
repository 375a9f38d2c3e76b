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

/// The real workbench (`lmwb`, no arguments) in a tmux session on the real default model,
/// in a home of its own (config, runs and a models folder with the model linked in it),
/// once the model has loaded. `env` adds `NAME=value` settings to its environment.
pub struct Workbench {
    pub home: tempfile::TempDir,
    pub tmux: Tmux,
}

impl Workbench {
    pub fn start(name: &str, size: (u16, u16), env: &[&str]) -> Workbench {
        let model = crate::common::real::default_model_path();
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        let models = h.join("models");
        std::fs::create_dir_all(&models).unwrap();
        std::os::unix::fs::symlink(&model, models.join(model.file_name().unwrap())).unwrap();
        let launch = format!(
            "cd {h} && env -u LMWB_LOG -u LMWB_API_KEY HOME={home} XDG_CONFIG_HOME={cfg} LMWB_RUNS_DIR={runs} LMWB_MODELS_DIR={models} {env} {bin}; echo LMWB_EXIT=$?; sleep 600",
            h = quote(h),
            home = quote(&h.join("home")),
            cfg = quote(&h.join("config")),
            runs = quote(&h.join("runs")),
            models = quote(&models),
            env = env.join(" "),
            bin = quote(Path::new(env!("CARGO_BIN_EXE_lmwb"))),
        );
        let tmux = Tmux::new(name, false);
        let (w, hh) = (size.0.to_string(), size.1.to_string());
        tmux.cmd(&["new-session", "-d", "-s", "t", "-x", &w, "-y", &hh, &launch]);
        tmux.wait_for("● smollm2-135m-instruct.q4_1", Duration::from_secs(120));
        Workbench { home, tmux }
    }

    pub fn dir(&self) -> &Path {
        self.home.path()
    }

    /// Press keys (tmux key names: `M-3`, `Enter`, `C-q` …).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend(keys);
        self.tmux.cmd(&args);
    }

    /// Type text as it is.
    pub fn type_text(&self, text: &str) {
        self.tmux.cmd(&["send-keys", "-t", "t", "-l", text]);
    }

    /// Quit with ctrl-q and check the exit status was 0.
    pub fn quit(&self) {
        self.keys(&["C-q"]);
        let s = self.tmux.wait_for("LMWB_EXIT=", Duration::from_secs(30));
        assert!(s.contains("LMWB_EXIT=0"), "{s}");
    }
}
