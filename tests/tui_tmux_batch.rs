//! The real `lmwb` workbench in a real terminal (tmux), on the real default model: open a
//! two-item prompt set in the Batch tab by typing its path (Tab completes it), run it,
//! watch both items finish, find both outputs on disk as `lmwb batch` writes them, and
//! open one with Enter.

mod common;

use common::tmux::{quote, Tmux};
use std::path::Path;
use std::time::Duration;

#[test]
fn run_a_two_item_batch_from_the_batch_tab() {
    let model = common::real::default_model_path();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let models = h.join("models");
    std::fs::create_dir_all(&models).unwrap();
    std::os::unix::fs::symlink(&model, models.join(model.file_name().unwrap())).unwrap();
    std::fs::write(
        h.join("greetings.toml"),
        "name = \"greetings\"\n[defaults]\ntemperature = 0\nmax_tokens = 12\n[prompts]\nhello = \"Say hello.\"\ncolour = \"Name a colour.\"\n",
    )
    .unwrap();
    let launch = format!(
        "cd {h} && env -u LMWB_LOG HOME={home} XDG_CONFIG_HOME={cfg} LMWB_RUNS_DIR={runs} LMWB_MODELS_DIR={models} {bin}; echo LMWB_EXIT=$?; sleep 600",
        h = quote(h),
        home = quote(&h.join("home")),
        cfg = quote(&h.join("config")),
        runs = quote(&h.join("runs")),
        models = quote(&models),
        bin = quote(Path::new(env!("CARGO_BIN_EXE_lmwb"))),
    );
    let t = Tmux::new("lmwb-batch", false);
    t.cmd(&[
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "110",
        "-y",
        "30",
        &launch,
    ]);
    t.wait_for("● smollm2-135m-instruct.q4_1", Duration::from_secs(120));

    t.cmd(&["send-keys", "-t", "t", "M-3"]);
    t.wait_for("type the path of a prompt set", Duration::from_secs(10));
    t.cmd(&["send-keys", "-t", "t", "o"]);
    t.wait_for("Prompt set (TOML", Duration::from_secs(10));
    t.cmd(&["send-keys", "-t", "t", "-l", "gree"]);
    t.cmd(&["send-keys", "-t", "t", "Tab"]);
    t.wait_for("greetings.toml", Duration::from_secs(10));
    t.cmd(&["send-keys", "-t", "t", "Enter"]);
    let s = t.wait_for("2 queued", Duration::from_secs(10));
    assert!(
        s.contains("hello--smollm2-135m-instruct.q4_1.md")
            && s.contains("colour--smollm2-135m-instruct.q4_1.md"),
        "{s}"
    );
    t.cmd(&["send-keys", "-t", "t", "r"]);
    let s = t.wait_for("finished in", Duration::from_secs(180));
    assert!(s.contains("2 done, 0 skipped, 0 failed"), "{s}");

    let out = h.join("runs/batch/greetings");
    for stem in ["hello", "colour"] {
        let md =
            std::fs::read_to_string(out.join(format!("{stem}--smollm2-135m-instruct.q4_1.md")))
                .unwrap();
        assert!(!md.trim().is_empty(), "{stem}: empty output");
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(format!("{stem}--smollm2-135m-instruct.q4_1.json")))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(json["model"]["name"], "smollm2-135m-instruct.q4_1");
        assert_eq!(json["params"]["max_tokens"], 12);
    }
    // Enter opens the selected (first) output, rendered.
    t.cmd(&["send-keys", "-t", "t", "Enter"]);
    let s = t.wait_for("esc closes", Duration::from_secs(10));
    assert!(s.contains("model ›"), "{s}");
    t.cmd(&["send-keys", "-t", "t", "Escape"]);
    t.cmd(&["send-keys", "-t", "t", "C-q"]);
    let s = t.wait_for("LMWB_EXIT=", Duration::from_secs(30));
    assert!(s.contains("LMWB_EXIT=0"), "{s}");
}
