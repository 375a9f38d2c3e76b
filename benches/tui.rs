//! Workbench speed: frame render time with a 5,000-message transcript (mean and p99 —
//! target p99 under 4 ms), and the real binary's idle CPU over 10 s (target under 1 %).
//!
//! `cargo bench --bench tui` (the idle part needs tmux and the default model; it is
//! skipped with a note otherwise). `-- --frames N` sets the frames timed per case.

use lmwb::chat::transcript::Turn;
use lmwb::client::fake::{FakeClient, Script};
use lmwb::client::GenerationClient;
use lmwb::config::Config;
use lmwb::tui::action::Action;
use lmwb::tui::app::{App, AppOptions};
use lmwb::tui::keymap::Keymap;
use lmwb::tui::loader::{FakeLoader, ModelRow};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn app() -> App {
    let cfg = Config::defaults();
    let loader = FakeLoader {
        rows: vec![ModelRow::fake("bench-model", "Q4_1", 134_515_008, 8192)],
        make: Box::new(|r| {
            Ok(Arc::new(FakeClient::new(&r.name, vec![Script::text("ok")]))
                as Arc<dyn GenerationClient>)
        }),
    };
    let mut a = App::new(
        AppOptions {
            keymap: Keymap::from_config(&cfg.keymap).unwrap(),
            settings: lmwb::tui::chat_settings(&cfg),
            autoload: Some("bench-model".into()),
            config: cfg.clone(),
        },
        Arc::new(loader),
    );
    a.settle(Duration::from_secs(10));
    a
}

fn reply(i: usize) -> String {
    match i % 4 {
        0 => format!("Here is **answer {i}** with a list:\n\n- first point about the question\n- second point, with `code`\n- third point\n\nAnd a closing sentence that wraps across the width of the terminal window."),
        1 => format!("<think>Reasoning for {i}: consider the options.</think>```rust\nfn f{i}(x: u32) -> u32 {{\n    x * {i}\n}}\n```\nThat function multiplies."),
        2 => format!("| k | v |\n|---|---|\n| a | {i} |\n| b | {} |\n\n> quoted remark {i}", i * 2),
        _ => format!("# Heading {i}\n\nA plain paragraph of text number {i}, long enough to wrap once or twice in a 120-column terminal, so that the transcript has a realistic height."),
    }
}

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let pct = |p: f64| v[((p / 100.0) * (v.len() - 1) as f64).round() as usize];
    (mean, pct(50.0), pct(99.0))
}

fn time_frames(
    t: &mut Terminal<TestBackend>,
    a: &mut App,
    frames: usize,
    mut step: impl FnMut(&mut App, usize),
) -> Vec<f64> {
    (0..frames)
        .map(|i| {
            step(a, i);
            let s = Instant::now();
            t.draw(|f| lmwb::tui::ui::draw(f, a)).unwrap();
            s.elapsed().as_secs_f64() * 1000.0
        })
        .collect()
}

fn render_bench(frames: usize) {
    let mut a = app();
    for i in 0..2500 {
        a.chat
            .transcript
            .turns
            .push(Turn::user(format!("Question number {i}: what about this?")));
        a.chat
            .transcript
            .turns
            .push(Turn::assistant_from(&reply(i), None, None));
    }
    let mut t = Terminal::new(TestBackend::new(120, 40)).unwrap();
    let s = Instant::now();
    t.draw(|f| lmwb::tui::ui::draw(f, &a)).unwrap();
    println!(
        "5,000-message transcript, 120×40: first frame (renders every message once) {:.1} ms",
        s.elapsed().as_secs_f64() * 1000.0
    );
    println!(
        "{:<44} {:>9} {:>9} {:>9}",
        "case", "mean ms", "p50 ms", "p99 ms"
    );
    let report = |name: &str, v: Vec<f64>| {
        let (mean, p50, p99) = stats(v);
        println!("{name:<44} {mean:>9.3} {p50:>9.3} {p99:>9.3}");
    };
    report(
        "redraw at the bottom (follow)",
        time_frames(&mut t, &mut a, frames, |_, _| {}),
    );
    // Streaming: a token lands in the last (long) message before every frame.
    a.chat.transcript.turns.push(Turn::assistant());
    let v = time_frames(&mut t, &mut a, frames, |a, i| {
        let last = a.chat.transcript.turns.last_mut().unwrap();
        last.push_token(if i % 40 == 39 { "\n\n" } else { "word " });
    });
    report("streaming: one token per frame", v);
    let v = time_frames(&mut t, &mut a, frames, |a, i| {
        a.dispatch(if (i / 50) % 2 == 0 {
            Action::ScrollUp
        } else {
            Action::ScrollDown
        })
    });
    report("scrolling a page per frame", v);
    a.dispatch(Action::Show(lmwb::tui::action::Tab::Models));
    report(
        "models pane",
        time_frames(&mut t, &mut a, frames, |_, _| {}),
    );
}

/// Linux reports process CPU time in clock ticks of 1/100 s (USER_HZ) on every platform
/// lmwb builds for.
fn clock_ticks() -> f64 {
    100.0
}

fn cpu_ticks(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    Some(f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?)
}

fn idle_bench() {
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/lmwb");
    let bin = if bin.exists() {
        bin
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/debug/lmwb")
    };
    if Command::new("tmux").arg("-V").output().is_err() || !bin.exists() {
        println!("idle CPU: skipped (needs tmux and a built lmwb binary)");
        return;
    }
    let sock = format!("lmwb-bench-{}", std::process::id());
    let tmux = |args: &[&str]| {
        let o = Command::new("tmux")
            .arg("-L")
            .arg(&sock)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    tmux(&[
        "new-session",
        "-d",
        "-s",
        "b",
        "-x",
        "120",
        "-y",
        "40",
        &format!("exec {}", bin.display()),
    ]);
    let end = Instant::now() + Duration::from_secs(120);
    while !tmux(&["capture-pane", "-p", "-t", "b"]).contains("● ") {
        if Instant::now() > end {
            println!(
                "idle CPU: skipped (the default model did not load; run scripts/fetch-models.sh)"
            );
            tmux(&["kill-server"]);
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    let pid = tmux(&["display", "-p", "-t", "b", "#{pane_pid}"])
        .trim()
        .to_string();
    let (Some(t0), s) = (cpu_ticks(&pid), Instant::now()) else {
        println!("idle CPU: skipped (cannot read /proc/{pid}/stat)");
        tmux(&["kill-server"]);
        return;
    };
    std::thread::sleep(Duration::from_secs(10));
    let t1 = cpu_ticks(&pid).unwrap_or(t0);
    let secs = s.elapsed().as_secs_f64();
    tmux(&["kill-server"]);
    println!(
        "idle CPU of {} with the default model loaded, over {secs:.1} s: {:.2} % of one core",
        bin.file_name().unwrap().to_string_lossy(),
        (t1 - t0) / clock_ticks() / secs * 100.0
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let frames = args
        .iter()
        .position(|a| a == "--frames")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(500);
    render_bench(frames);
    idle_bench();
}
