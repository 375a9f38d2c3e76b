//! Error output of the `lmwb` binary: each cause is said once, and models lmwb cannot run are
//! listed as unreadable with the reason.
//!
//! Every command gets a clean environment: HOME, XDG_* and LMWB_RUNS_DIR in a temp folder,
//! no inherited `LMWB_*`, RUST_BACKTRACE=1 (backtraces must not leak into messages).

mod common;
#[path = "common/sandbox.rs"]
mod sandbox;

use common::real;
use common::tiny::{self, Arch, Spec};
use sandbox::Out;
use std::path::Path;

/// `lmwb args…` with its models folder at `models`, sandboxed under `home`.
fn lmwb(home: &Path, models: &Path, args: &[&str]) -> Out {
    let mut c = sandbox::assert_command(home, models);
    c.env("RUST_BACKTRACE", "1").args(args);
    sandbox::output(&mut c)
}

#[test]
fn unknown_template_is_reported_once() {
    let model = real::default_model_path();
    let tmp = tempfile::tempdir().unwrap();
    let model_s = model.to_str().unwrap();
    let r = lmwb(
        tmp.path(),
        model.parent().unwrap(),
        &["run", "--template", "nosuch", "-m", model_s, "hi"],
    );
    assert_ne!(r.code, Some(0), "stdout: {}", r.stdout);
    let what = "unknown built-in chat template `nosuch`";
    assert_eq!(
        r.stderr.matches(what).count(),
        1,
        "`{what}` should appear once in stderr:\n{}",
        r.stderr
    );
    // The message still says what to do.
    assert!(r.stderr.contains("known templates"), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "stderr:\n{}", r.stderr);
}

#[test]
fn unknown_architecture_gguf_is_listed_unreadable() {
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    tiny::write_gguf(&Spec::new(Arch::Qwen2), &models.join("good.gguf"));
    tiny::write_gguf(
        &Spec {
            gguf_arch: Some("gpt2".into()),
            ..Spec::new(Arch::Qwen2)
        },
        &models.join("gpt2.gguf"),
    );
    let why = "unknown architecture `gpt2`";

    let r = lmwb(tmp.path(), &models, &["models", "list"]);
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    let line = |name: &str| {
        r.stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no `{name}` row in\n{}", r.stdout))
            .to_string()
    };
    let gpt2 = line("gpt2 ");
    assert!(gpt2.contains("unreadable") && gpt2.contains(why), "{gpt2}");
    let good = line("good ");
    assert!(
        good.contains("qwen2") && !good.contains("unreadable"),
        "{good}"
    );

    let r = lmwb(tmp.path(), &models, &["models", "list", "--json"]);
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    let rows: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "gpt2")
        .expect("a gpt2 row");
    assert!(row.get("info").is_none(), "{row}");
    assert!(row["error"].as_str().unwrap().contains(why), "{row}");

    let r = lmwb(tmp.path(), &models, &["models", "show", "gpt2"]);
    assert_ne!(r.code, Some(0), "stdout: {}", r.stdout);
    assert_eq!(r.stderr.matches(why).count(), 1, "stderr:\n{}", r.stderr);
    assert!(r.stderr.contains("gpt2.gguf"), "{}", r.stderr);
}
