//! `lmwb models pull` and `rm` in a real terminal (tmux) against the fake hub: a progress bar
//! while a slow download runs, and rm's `[y/N]` question: "n" keeps the files, "y" removes
//! them.

mod common;

use common::tmux::{quote, Tmux};
#[path = "common/fake_hub.rs"]
mod fake_hub;

use common::tiny::{self, Arch, Spec};
use fake_hub::{FakeHub, HubFile, HubRepo};
use std::path::Path;
use std::time::Duration;

#[test]
fn a_progress_bar_while_pulling_and_a_question_before_removing() {
    let tmp = tempfile::tempdir().unwrap();
    let gguf = tmp.path().join("m.gguf");
    tiny::write_gguf(&Spec::new(Arch::Llama), &gguf);
    let hub = FakeHub::start(vec![HubRepo::new(
        "tiny/llama-GGUF",
        vec![HubFile::lfs("tiny.gguf", std::fs::read(&gguf).unwrap())],
    )]);
    // About 3 s for the ~450 KB file: long enough to see the bar.
    hub.set_pace(Duration::from_millis(100));
    let h = tmp.path();
    std::fs::create_dir_all(h.join("models")).unwrap();
    let env = format!(
        "env -i PATH=/usr/bin:/bin TERM=xterm-256color HOME={home} XDG_CONFIG_HOME={cfg} \
         XDG_CACHE_HOME={cache} LMWB_RUNS_DIR={runs} LMWB_MODELS_DIR={models} HF_HOME={hf} \
         HF_ENDPOINT={url}",
        home = quote(&h.join("home")),
        cfg = quote(&h.join("config")),
        cache = quote(&h.join("cache")),
        runs = quote(&h.join("runs")),
        models = quote(&h.join("models")),
        hf = quote(&h.join("hf")),
        url = hub.url,
    );
    let bin = quote(Path::new(env!("CARGO_BIN_EXE_lmwb")));
    let t = Tmux::new("lmwb-pull-test", true);
    t.cmd(&[
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "160",
        "-y",
        "40",
        "-c",
        &h.display().to_string(),
        "bash --norc --noprofile",
    ]);
    let name = "tiny/llama-GGUF:tiny.gguf";
    t.send(&format!(
        "{env} {bin} models pull {name}; echo PULL_$((1+1))EXIT=$?"
    ));
    // (The markers are echoed as PULL_2EXIT / RM_2EXIT so the typed command never matches.)
    // The bar: file name, bytes so far / total, rate, ETA (indicatif, on stderr).
    // Some bytes in (KiB so far / KiB in all), while the download still runs.
    let bar = t.wait_for("KiB/", Duration::from_secs(60));
    assert!(
        bar.contains("tiny.gguf [") && bar.contains(" · ETA ") && !bar.contains("PULL_2EXIT="),
        "{bar}"
    );
    let done = t.wait_for("PULL_2EXIT=", Duration::from_secs(60));
    assert!(done.contains("PULL_2EXIT=0"), "{done}");
    assert!(done.contains("downloaded tiny.gguf"), "{done}");
    let snapshots = h.join("hf/hub/models--tiny--llama-GGUF/snapshots");
    let snap = std::fs::read_dir(&snapshots)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let file = snap.join("tiny.gguf");
    assert!(file.exists());

    t.send("clear");
    t.send(&format!(
        "{env} {bin} models rm {name}; echo RM_$((1+1))EXIT=$?"
    ));
    let ask = t.wait_for("[y/N]", Duration::from_secs(30));
    assert!(ask.contains(&format!("Remove {name}")), "{ask}");
    t.send("n");
    let no = t.wait_for("RM_2EXIT=", Duration::from_secs(30));
    assert!(
        no.contains("nothing removed") && no.contains("RM_2EXIT=1"),
        "{no}"
    );
    assert!(file.exists(), "n keeps the files");

    t.send("clear");
    t.send(&format!(
        "{env} {bin} models rm {name}; echo RM_$((1+1))EXIT=$?"
    ));
    t.wait_for("[y/N]", Duration::from_secs(30));
    t.send("y");
    let yes = t.wait_for("RM_2EXIT=", Duration::from_secs(30));
    assert!(
        yes.contains("removed tiny/llama-GGUF:tiny.gguf") && yes.contains("RM_2EXIT=0"),
        "{yes}"
    );
    assert!(
        !h.join("hf/hub/models--tiny--llama-GGUF").exists(),
        "the repo folder goes"
    );
}
