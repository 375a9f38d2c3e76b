//! The real `lmwb` workbench on the real default model, in a real terminal (tmux): open
//! it, ask a question, see the answer and its stats line, quit, and find the terminal
//! restored (normal screen, no mouse reporting).

mod common;

use common::tmux::Workbench;

use std::process::Command;
use std::time::Duration;

#[test]
fn ask_a_question_in_the_real_workbench_and_quit() {
    let model = common::real::default_model_path();
    let wb = Workbench::start(
        "lmwb-test",
        (100, 30),
        &["LMWB_SAMPLING_TEMPERATURE=0", "LMWB_SAMPLING_MAX_TOKENS=24"],
    );
    let (t, h) = (&wb.tmux, wb.dir());
    let s = t.screen();
    assert!(s.contains("Models │ Chat │ Batch │ Bench │ Server"), "{s}");
    assert_eq!(
        t.cmd(&["display", "-p", "-t", "t", "#{alternate_on}"])
            .trim(),
        "1"
    );

    t.cmd(&[
        "send-keys",
        "-t",
        "t",
        "-l",
        "What is the capital of France?",
    ]);
    t.cmd(&["send-keys", "-t", "t", "Enter"]);
    let s = t.wait_for("tokens · TTFT", Duration::from_secs(180));
    assert!(
        s.contains("you ›") && s.contains("What is the capital of France?"),
        "{s}"
    );
    assert!(s.contains("model ›"), "{s}");
    // The same greedy text `lmwb run --chat` gives (its first line, as far as it is shown).
    let run = Command::new(env!("CARGO_BIN_EXE_lmwb"))
        .args(["run", "-m"])
        .arg(&model)
        .args([
            "--chat",
            "--temperature",
            "0",
            "-n",
            "24",
            "What is the capital of France?",
        ])
        .env("LMWB_RUNS_DIR", h.join("runs"))
        .output()
        .unwrap();
    let expected = String::from_utf8(run.stdout).unwrap();
    let first: String = expected
        .trim()
        .lines()
        .next()
        .unwrap()
        .chars()
        .take(40)
        .collect();
    assert!(
        first.len() > 5 && s.contains(first.trim()),
        "expected {first:?} on screen:\n{s}"
    );
    assert!(s.contains("KV █"), "the KV gauge shows the fill: {s}");

    t.cmd(&["send-keys", "-t", "t", "C-q"]);
    let s = t.wait_for("LMWB_EXIT=", Duration::from_secs(30));
    assert!(s.contains("LMWB_EXIT=0"), "{s}");
    assert!(
        !s.contains("Models │ Chat"),
        "the workbench is gone from the screen: {s}"
    );
    let flags = t.cmd(&[
        "display",
        "-p",
        "-t",
        "t",
        "#{alternate_on} #{mouse_any_flag} #{cursor_flag}",
    ]);
    assert_eq!(
        flags.trim(),
        "0 0 1",
        "alternate screen off, mouse off, cursor shown"
    );
    // Logs went to the log file, not the screen.
    let logs = std::fs::read_dir(h.join("runs").join("logs"))
        .unwrap()
        .count();
    assert!(logs > 0);
}
