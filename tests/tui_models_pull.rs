//! The Models pane's pull, driven headless: `p`, a `REPO:FILE`, the download from a fake
//! hub on 127.0.0.1 with its progress, then the model on disk in the Hugging Face cache;
//! a repo the hub lacks says so. One test: it sets the process's HF_* variables.

mod common;
#[path = "common/fake_hub.rs"]
mod fake_hub;

use common::tiny::{self, Arch, Spec};
use common::tui::{app, screen};
use fake_hub::{FakeHub, HubFile, HubRepo};
use lmwb::tui::action::{Action, Edit, Tab};
use std::time::{Duration, Instant};

#[test]
fn pull_downloads_with_progress_then_lists_the_result_and_a_missing_repo_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let gguf = tmp.path().join("m.gguf");
    tiny::write_gguf(&Spec::new(Arch::Llama), &gguf);
    let bytes = std::fs::read(&gguf).unwrap();
    let hub = FakeHub::start(vec![HubRepo::new(
        "tiny/llama-GGUF",
        vec![HubFile::lfs("tiny-llama-F32.gguf", bytes.clone())],
    )]);
    hub.set_pace(Duration::from_millis(5));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().to_string();
        if k.starts_with("HF_") || k.starts_with("HUGGING") || k.to_lowercase().ends_with("_proxy")
        {
            std::env::remove_var(k);
        }
    }
    std::env::set_var("HF_HOME", tmp.path().join("hf"));
    std::env::set_var("HF_ENDPOINT", &hub.url);
    std::env::set_var("XDG_CACHE_HOME", tmp.path().join("cache"));

    let mut a = app(&["x"]);
    a.dispatch(Action::Show(Tab::Models));
    a.dispatch(Action::Pull);
    assert!(a.field.is_some(), "p asks for the repo");
    a.dispatch(Action::Edit(Edit::Paste(
        "tiny/llama-GGUF:tiny-llama-F32.gguf".into(),
    )));
    a.dispatch(Action::FieldSubmit);
    assert!(a.models.pulling());
    // The bar moves while the bytes arrive.
    let end = Instant::now() + Duration::from_secs(30);
    let mut seen_partial = false;
    while a.models.pulling() {
        assert!(Instant::now() < end, "the pull did not finish");
        if let Some(m) = a.next_msg(Duration::from_millis(20)) {
            a.handle(m);
        }
        let p = a.models.pull.as_ref().unwrap();
        if p.total > 0 && p.pos > 0 && p.pos < p.total {
            seen_partial = true;
            let shown = screen(&a, 100, 30);
            assert!(shown.contains("pulling tiny-llama-F32.gguf ["), "{shown}");
        }
    }
    assert!(seen_partial, "progress was reported on the way");
    let p = a.models.pull.clone().unwrap();
    let (name, path) = p.result.clone().unwrap().expect("pulled");
    assert_eq!(name, "tiny/llama-GGUF:tiny-llama-F32.gguf");
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    assert!(path.starts_with(tmp.path().join("hf/hub/models--tiny--llama-GGUF")));
    assert_eq!((p.pos, p.total), (bytes.len() as u64, bytes.len() as u64));
    assert!(a.settle(Duration::from_secs(10)));
    let shown = screen(&a, 100, 30);
    assert!(
        shown.contains("pulled tiny/llama-GGUF:tiny-llama-F32.gguf"),
        "{shown}"
    );

    a.dispatch(Action::Pull);
    a.dispatch(Action::Edit(Edit::Paste("tiny/nothing-here".into())));
    a.dispatch(Action::FieldSubmit);
    assert!(a.settle(Duration::from_secs(30)));
    let err = a
        .models
        .pull
        .as_ref()
        .unwrap()
        .result
        .clone()
        .unwrap()
        .unwrap_err();
    assert!(err.contains("tiny/nothing-here"), "{err}");
    assert!(screen(&a, 100, 30).contains("pull tiny/nothing-here failed"));
}
