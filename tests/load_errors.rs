//! Load errors as a person reads them: one clean message naming the file and the problem,
//! with no backtrace even when RUST_BACKTRACE is set; GGUFs of an unknown architecture
//! are not models; `tie_word_embeddings: false` without an output layer is an error.

mod common;

use common::tiny::{self, Arch, Spec, Tiny};
use lmwb::engine::model::{inspect, load, LoadOptions};
use lmwb::engine::LoadError;
use std::path::Path;
use std::sync::Once;

/// Make candle capture backtraces in this process, as `RUST_BACKTRACE=1` does for users.
/// std reads the variable once, at the first capture, so every test calls this first.
fn backtraces_on() {
    static ON: Once = Once::new();
    ON.call_once(|| std::env::set_var("RUST_BACKTRACE", "1"));
}

fn load_err(path: &Path) -> LoadError {
    match load(path, &LoadOptions::default()) {
        Ok(_) => panic!("{} loaded but should not", path.display()),
        Err(e) => e,
    }
}

/// One line, no backtrace, names the file and says `what`.
fn assert_clean(msg: &str, file: &Path, what: &str) {
    assert!(!msg.contains('\n'), "message spans several lines:\n{msg}");
    assert!(
        !msg.to_ascii_lowercase().contains("backtrace"),
        "message carries a backtrace:\n{msg}"
    );
    // Stack frames look like `  12: some::function` and `at /path/file.rs:3:5`.
    let frame = msg.split('\n').any(|l| {
        let l = l.trim_start();
        let digits = l.chars().take_while(char::is_ascii_digit).count();
        (digits > 0 && l[digits..].starts_with(": ")) || l.starts_with("at /")
    });
    assert!(!frame, "message carries stack frames:\n{msg}");
    assert!(!msg.contains(".rs:"), "message names Rust sources:\n{msg}");
    let name = file.file_name().unwrap().to_str().unwrap();
    assert!(msg.contains(name), "`{msg}` does not name {name}");
    assert!(msg.contains(what), "`{msg}` does not say `{what}`");
}

#[test]
fn truncated_gguf_errors_carry_no_backtrace() {
    backtraces_on();
    let t = Tiny::write(&Spec::new(Arch::Qwen2));
    let data_at = tiny::gguf_data_offset(&t.gguf);
    let len = std::fs::metadata(&t.gguf).unwrap().len() as usize;
    for (name, keep) in [
        ("cut-data.gguf", (data_at + len) / 2),
        ("cut-meta.gguf", data_at / 2),
        // Inside the header counts, the vocabulary array, the tensor infos.
        ("cut-head.gguf", 20),
        ("cut-vocab.gguf", data_at / 4),
        ("cut-infos.gguf", data_at - 8),
    ] {
        let cut = t.path(name);
        tiny::write_truncated(&t.gguf, &cut, keep);
        let e = load_err(&cut);
        assert!(matches!(e, LoadError::Truncated { .. }), "{name}: {e:?}");
        assert_clean(&e.to_string(), &cut, "truncated");
    }
    // inspect reads only the header: cut inside it, it reports the same clean error.
    let cut = t.path("cut-meta.gguf");
    let e = inspect(&cut).unwrap_err();
    assert!(matches!(e, LoadError::Truncated { .. }), "{e:?}");
    assert_clean(&e.to_string(), &cut, "truncated");
}

#[test]
fn not_a_gguf_error_carries_no_backtrace() {
    backtraces_on();
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.gguf");
    std::fs::write(&junk, b"this is not a model file at all").unwrap();
    for e in [load_err(&junk), inspect(&junk).unwrap_err()] {
        assert!(matches!(e, LoadError::Format { .. }), "{e:?}");
        assert_clean(&e.to_string(), &junk, "magic");
    }
}

#[test]
fn unknown_architecture_gguf_is_not_a_model() {
    backtraces_on();
    let dir = tempfile::tempdir().unwrap();
    let gpt2 = dir.path().join("gpt2.gguf");
    tiny::write_gguf(
        &Spec {
            gguf_arch: Some("gpt2".into()),
            ..Spec::new(Arch::Qwen2)
        },
        &gpt2,
    );
    let e = inspect(&gpt2).expect_err("inspect accepted a gpt2 GGUF");
    assert!(matches!(e, LoadError::Config { .. }), "{e:?}");
    assert_clean(&e.to_string(), &gpt2, "unknown architecture `gpt2`");
    // Same message as loading it.
    assert_eq!(e.to_string(), load_err(&gpt2).to_string());
}

/// The tiny Qwen2 HF folder (tied: no `lm_head.weight`) with `tie_word_embeddings` set to
/// `tie`, or removed for `None`.
fn qwen2_hf_with_tie(t: &Tiny, name: &str, tie: Option<bool>) -> std::path::PathBuf {
    let dir = t.path(name);
    tiny::hf_without(&t.hf, &dir, "config.json");
    let text = std::fs::read_to_string(t.hf.join("config.json")).unwrap();
    let mut cfg: serde_json::Value = serde_json::from_str(&text).unwrap();
    let obj = cfg.as_object_mut().unwrap();
    match tie {
        Some(b) => obj.insert("tie_word_embeddings".into(), b.into()),
        None => obj.remove("tie_word_embeddings"),
    };
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    dir
}

#[test]
fn untied_checkpoint_without_lm_head_is_an_error() {
    backtraces_on();
    let t = Tiny::write(&Spec::new(Arch::Qwen2));
    assert!(
        Arch::Qwen2.tied(),
        "the tiny qwen2 is written without lm_head"
    );

    let untied = qwen2_hf_with_tie(&t, "untied", Some(false));
    let e = load_err(&untied);
    match &e {
        LoadError::MissingTensor { name, .. } => assert_eq!(name, "lm_head.weight"),
        other => panic!("wrong error {other:?}"),
    }
    assert_clean(&e.to_string(), &untied, "lm_head.weight");

    // `true`, or no key at all, ties the output layer to the embeddings.
    for (name, tie) in [("tied", Some(true)), ("no-key", None)] {
        let dir = qwen2_hf_with_tie(&t, name, tie);
        if let Err(e) = load(&dir, &LoadOptions::default()) {
            panic!("{name}: {e}");
        }
    }
}
