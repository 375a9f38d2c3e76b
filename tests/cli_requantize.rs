//! `lmwb models requantize` end to end on the real default model (SmolLM2-135M-Instruct,
//! Q4_1): the Q8_0 copy is written where asked, `models show` reads it as Q8_0 and
//! `lmwb run` generates from it; bad targets and overwriting the source are refused.
//!
//! Every command runs with HOME, XDG_* and LMWB_RUNS_DIR in a temporary folder; nothing is
//! written into the real models folder. Needs `bash scripts/fetch-models.sh`.

#[path = "common/real.rs"]
mod real;
#[path = "common/sandbox.rs"]
mod sandbox;

use sandbox::Out;
use std::path::{Path, PathBuf};

struct Sandbox {
    dir: tempfile::TempDir,
    models: PathBuf,
}

impl Sandbox {
    /// A sandbox whose models folder is `models` (default: the real one).
    fn new(models: Option<PathBuf>) -> Sandbox {
        let model = real::default_model_path();
        Sandbox {
            dir: tempfile::tempdir().expect("temp dir"),
            models: models.unwrap_or_else(|| model.parent().expect("models folder").into()),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn lmwb(&self, args: &[&str]) -> Out {
        sandbox::lmwb(self.path(), &self.models, args)
    }
}

fn ok(o: Out) -> Out {
    assert_eq!(o.code, Some(0), "{o:#?}");
    o
}

fn fingerprint(p: &Path) -> (u64, std::time::SystemTime) {
    let m = std::fs::metadata(p).expect("source model");
    (m.len(), m.modified().expect("mtime"))
}

#[test]
fn requantize_to_q8_0_then_show_and_run_it() {
    let sb = Sandbox::new(None);
    let src = real::default_model_path();
    let before = fingerprint(&src);
    let out = sb.path().join("copy.Q8_0.gguf");
    let out_s = out.to_str().unwrap();

    let r = ok(sb.lmwb(&[
        "models",
        "requantize",
        "smollm2-135m-instruct.q4_1",
        "--to",
        "q8_0",
        "--out",
        out_s,
    ]));
    assert!(r.stdout.contains("Q8_0"), "{r:#?}");
    assert!(
        r.stdout.contains("Q4_1"),
        "says what it converted from: {r:#?}"
    );
    assert!(out.is_file());
    // ~145 MB: every Q4_1 matrix is now Q8_0 (34 bytes per 32 weights).
    let size = std::fs::metadata(&out).unwrap().len();
    assert!((130_000_000..160_000_000).contains(&size), "size {size}");
    assert_eq!(fingerprint(&src), before, "the source is untouched");
    // No temporary file left in the output folder.
    let names: Vec<String> = std::fs::read_dir(sb.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(names.is_empty(), "{names:?}");

    let r = ok(sb.lmwb(&["models", "show", out_s]));
    let quant = r
        .stdout
        .lines()
        .find(|l| l.starts_with("quantization:"))
        .unwrap_or_else(|| panic!("no quantization line: {r:#?}"));
    assert!(quant.contains("Q8_0"), "{quant}");
    assert!(
        !r.stdout.contains("requantized at load"),
        "a Q8_0 file needs no load-time requantization: {r:#?}"
    );
    assert!(
        r.stdout.contains("chat template: yes"),
        "metadata kept: {r:#?}"
    );

    let r = ok(sb.lmwb(&["run", "-m", out_s, "--temperature", "0", "-n", "8", "Hello"]));
    assert!(!r.stdout.trim().is_empty(), "{r:#?}");
    assert!(r.stderr.contains("8 generated"), "{r:#?}");

    // Same greedy first token as the Q4_1 file (Q8_0 of the same weights is close).
    let q41 = ok(sb.lmwb(&[
        "run",
        "-m",
        "smollm2-135m-instruct.q4_1",
        "--temperature",
        "0",
        "-n",
        "1",
        "--json",
        "The capital of France is",
    ]));
    let q80 = ok(sb.lmwb(&[
        "run",
        "-m",
        out_s,
        "--temperature",
        "0",
        "-n",
        "1",
        "--json",
        "The capital of France is",
    ]));
    let text = |o: &Out| -> String {
        let v: serde_json::Value = serde_json::from_str(o.stdout.trim()).expect("one JSON record");
        v["text"].as_str().unwrap_or_default().to_string()
    };
    assert_eq!(text(&q41), text(&q80), "{q41:#?}\n{q80:#?}");
}

#[test]
fn default_output_goes_beside_the_source_with_the_quant_renamed() {
    // A private models folder holding a link to the real file, so the default output
    // (beside the source) lands in the sandbox.
    let models = tempfile::tempdir().expect("temp dir");
    let src = real::default_model_path();
    let link = models.path().join(real::DEFAULT_MODEL_FILE);
    #[cfg(unix)]
    std::os::unix::fs::symlink(&src, &link).expect("symlink");
    #[cfg(not(unix))]
    std::fs::copy(&src, &link).expect("copy");
    let sb = Sandbox::new(Some(models.path().into()));

    let r = ok(sb.lmwb(&["models", "requantize", "smollm2-135m-instruct.q4_1"]));
    let want = models.path().join("SmolLM2-135M-Instruct.Q8_0.gguf");
    assert!(want.is_file(), "{r:#?}");
    assert!(
        r.stdout.contains("SmolLM2-135M-Instruct.Q8_0.gguf"),
        "{r:#?}"
    );

    let r = ok(sb.lmwb(&["models", "list"]));
    let row = r
        .stdout
        .lines()
        .find(|l| l.starts_with("smollm2-135m-instruct.q8_0 "))
        .unwrap_or_else(|| panic!("the copy is listed: {r:#?}"));
    assert!(row.contains("Q8_0"), "{row}");
}

#[test]
fn unknown_target_and_overwriting_the_source_are_refused() {
    let sb = Sandbox::new(None);
    let src = real::default_model_path();
    let before = fingerprint(&src);

    let r = sb.lmwb(&[
        "models",
        "requantize",
        "smollm2-135m-instruct.q4_1",
        "--to",
        "q3_k",
    ]);
    assert_eq!(r.code, Some(2), "{r:#?}");
    assert!(r.stderr.contains("q3_k"), "{r:#?}");
    for name in ["q8_0", "q4_0", "f16"] {
        assert!(r.stderr.contains(name), "lists {name}: {r:#?}");
    }

    let r = sb.lmwb(&[
        "models",
        "requantize",
        "smollm2-135m-instruct.q4_1",
        "--out",
        src.to_str().unwrap(),
    ]);
    assert_eq!(r.code, Some(2), "{r:#?}");
    assert!(r.stderr.contains("refusing to overwrite"), "{r:#?}");
    assert_eq!(fingerprint(&src), before);

    let r = sb.lmwb(&["models", "requantize", "no-such-model"]);
    assert_ne!(r.code, Some(0), "{r:#?}");
    assert!(r.stderr.contains("no-such-model"), "{r:#?}");
    assert!(r.stdout.is_empty(), "{r:#?}");
}
