//! `lmwb models list|show|verify` and `lmwb run -m NAME` on fixture stores
//! (tests/common/stores.rs): the binary finds the HF cache, LM Studio and Ollama through
//! HOME, HF_HOME and OLLAMA_MODELS, as on a user's machine. Tiny models only; nothing is
//! downloaded; `[registry]` switches work from the environment.

mod common;
#[path = "common/sandbox.rs"]
mod sandbox;

use common::stores::Stores;
use common::tiny::{self, Arch, Spec};
use sandbox::Out;
use serde_json::Value;
use std::path::{Path, PathBuf};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const HF_NAME: &str = "tinyorg/tiny-gguf/tiny-llama";

struct Fixture {
    s: Stores,
    src: tempfile::TempDir,
    blob: PathBuf,
}

fn fixture() -> Fixture {
    let s = Stores::new();
    let src = tempfile::tempdir().unwrap();
    let llama = src.path().join("llama.gguf");
    let qwen2 = src.path().join("qwen2.gguf");
    tiny::write_gguf(&Spec::new(Arch::Llama), &llama);
    tiny::write_gguf(&Spec::new(Arch::Qwen2), &qwen2);
    s.hf_snapshot(
        "TinyOrg/Tiny-GGUF",
        COMMIT,
        &[("tiny-llama.gguf", &llama)],
        true,
    );
    s.lmstudio_file("someone/Tiny-GGUF/tiny-llama.gguf", &llama);
    let blob = s.ollama_model("registry.ollama.ai/library/tiny", "1b", &qwen2);
    s.folder_file("Folder-Qwen2.gguf", &qwen2);
    Fixture { s, src, blob }
}

fn lmwb_env(f: &Fixture, env: &[(&str, &str)], args: &[&str]) -> Out {
    let mut c = sandbox::assert_command(f.s.root(), &f.s.folder());
    c.env("HF_HOME", f.s.hf_home())
        .env("OLLAMA_MODELS", f.s.ollama())
        .env("LMWB_EXTRA_MODEL_DIRS", "")
        .args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    sandbox::output(&mut c)
}

fn lmwb(f: &Fixture, args: &[&str]) -> Out {
    lmwb_env(f, &[], args)
}

fn ok(r: Out) -> Out {
    assert_eq!(
        r.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
    r
}

fn row<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no `{name}` row in\n{out}"))
}

#[test]
fn list_shows_every_store_with_its_source_and_the_copies() {
    let f = fixture();
    let r = ok(lmwb(&f, &["models", "list"]));
    let hf = row(&r.stdout, HF_NAME);
    let cols: Vec<&str> = hf.split_whitespace().collect();
    assert_eq!(
        (cols[1], cols.last().copied()),
        ("llama", Some("hf+lmstudio")),
        "{hf}"
    );
    assert!(
        r.stdout
            .contains("also lmstudio someone/tiny-gguf/tiny-llama"),
        "the LM Studio copy is shown under the HF entry:\n{}",
        r.stdout
    );
    // The folder copy of the Ollama blob: one entry, named by the folder, both places.
    let q = row(&r.stdout, "folder-qwen2");
    assert!(q.ends_with("folder+ollama"), "{q}");
    assert!(r.stdout.contains("also ollama tiny:1b"), "{}", r.stdout);
    assert_eq!(
        r.stdout.lines().filter(|l| l.contains("qwen2 ")).count(),
        1,
        "{}",
        r.stdout
    );

    let r = ok(lmwb(&f, &["models", "list", "--json"]));
    let rows: Value = serde_json::from_str(&r.stdout).unwrap();
    let e = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == HF_NAME)
        .unwrap_or_else(|| panic!("{rows}"));
    assert_eq!(e["source"], "hf");
    assert_eq!(e["sources"], serde_json::json!(["hf", "lmstudio"]));
    assert_eq!(e["locations"].as_array().unwrap().len(), 2);
    assert_eq!(e["info"]["arch"], "llama");
    assert_eq!(e["sha256"].as_str().map(str::len), Some(64));

    // Switched off from the environment: the Ollama and HF entries go; the LM Studio copy
    // stands alone.
    let r = ok(lmwb_env(
        &f,
        &[
            ("LMWB_REGISTRY_HUGGINGFACE", "false"),
            ("LMWB_REGISTRY_OLLAMA", "off"),
        ],
        &["models", "list"],
    ));
    assert!(
        !r.stdout.contains(HF_NAME) && !r.stdout.contains("ollama"),
        "{}",
        r.stdout
    );
    assert!(row(&r.stdout, "someone/tiny-gguf/tiny-llama").ends_with("lmstudio"));
}

#[test]
fn show_prints_paths_tokenizer_template_and_the_memory_estimate() {
    let f = fixture();
    let r = ok(lmwb(&f, &["models", "show", "tiny:1b"]));
    let out = &r.stdout;
    for want in [
        "name:          folder-qwen2",
        "tokenizer:     embedded in the GGUF",
        "chat template: yes, embedded in the GGUF",
        &format!("ollama   {}", f.blob.display()),
        "template layer",
    ] {
        assert!(out.contains(want), "`{want}` in\n{out}");
    }
    let mem = out
        .lines()
        .find(|l| l.starts_with("memory:"))
        .unwrap_or_else(|| panic!("no memory line:\n{out}"));
    assert!(
        mem.contains("KV cache (F16) at") && mem.contains("free: "),
        "{mem}"
    );
    assert!(
        ["fits", "tight", "does not fit"]
            .iter()
            .any(|v| mem.ends_with(v)),
        "{mem}"
    );

    let r = ok(lmwb(
        &f,
        &["models", "show", HF_NAME, "--ctx", "100", "--json"],
    ));
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["arch"], "llama");
    assert_eq!(v["fit"]["context"], 100);
    let per = v["fit"]["kv_bytes_per_token"].as_u64().unwrap();
    assert_eq!(
        per,
        2 * tiny::LAYERS as u64 * tiny::KV_HEADS as u64 * 16 * 2,
        "K and V, F16 on the CPU, every layer"
    );
    assert_eq!(v["fit"]["kv_bytes"].as_u64(), Some(per * 100));
    assert_eq!(v["locations"][0]["source"], "hf");
    assert!(v["tokenizer"].as_str().unwrap().contains("embedded"), "{v}");
}

#[test]
fn run_loads_models_by_their_ollama_and_hf_names() {
    let f = fixture();
    // Without the folder copy, `tiny:1b` loads from the Ollama blob itself (no extension).
    std::fs::remove_file(f.s.folder().join("Folder-Qwen2.gguf")).unwrap();
    for name in ["tiny:1b", HF_NAME] {
        let r = ok(lmwb(
            &f,
            &[
                "run",
                "-m",
                name,
                "--temperature",
                "0",
                "--max-tokens",
                "3",
                "hello",
            ],
        ));
        // Random weights may stop at once; the stats line says it loaded and ran.
        assert!(
            r.stderr.contains("prompt tokens") && r.stderr.contains("finish:"),
            "{name}: {}",
            r.stderr
        );
    }
}

fn corrupt_last_byte(path: &Path) {
    let mut b = std::fs::read(path).unwrap();
    let n = b.len();
    b[n - 1] ^= 0xff;
    std::fs::write(path, b).unwrap();
}

#[test]
fn verify_exits_0_on_good_files_and_1_on_truncated_or_damaged_ones() {
    let f = fixture();
    let r = ok(lmwb(&f, &["models", "verify", HF_NAME]));
    assert!(
        r.stdout.contains("ok   sha256") && r.stdout.contains("Hugging Face blob name"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("all 4 checks passed"),
        "two files, header and sum each:\n{}",
        r.stdout
    );

    // A truncated copy in the configured folder.
    let src = f.src.path().join("llama.gguf");
    let keep = tiny::gguf_data_offset(&src) + 10;
    tiny::write_truncated(&src, &f.s.folder().join("cut.gguf"), keep);
    let r = lmwb(&f, &["models", "verify", "cut"]);
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stdout.contains("FAIL header") && r.stdout.contains("truncated"),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr.contains("cut failed 1 of 2 checks") && r.stderr.contains("download it again"),
        "{}",
        r.stderr
    );

    // The Ollama blob's content no longer matches its digest.
    corrupt_last_byte(&f.blob);
    let r = lmwb(&f, &["models", "verify", "tiny:1b"]);
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stdout.contains("FAIL sha256") && r.stdout.contains("Ollama digest"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("ollama pull tiny:1b"), "{}", r.stderr);

    let r = lmwb(&f, &["models", "verify", "no-such-model"]);
    assert_ne!(r.code, Some(0));
    assert!(
        r.stderr.contains("no model named `no-such-model`"),
        "{}",
        r.stderr
    );
}
