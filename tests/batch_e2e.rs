//! `lmwb batch` end to end on the real default model in two variants — as shipped (Q4_1)
//! and requantized to Q8_0 by lmwb itself — with three prompts: six outputs with sidecars,
//! reruns that skip and load nothing, a deleted output recreated alone, a SIGKILLed run that
//! leaves no truncated file, an item that must fail (a prompt longer than the context) and
//! `--retry-errors`, and one message per malformed prompt-set fixture.
//!
//! Every command runs sandboxed (tests/common/sandbox.rs) with LMWB_MODELS_DIR at a folder
//! holding exactly the two variants, so model names are unambiguous. Needs
//! `bash scripts/fetch-models.sh`.

#[path = "common/real.rs"]
mod real;
#[path = "common/sandbox.rs"]
mod sandbox;

use sandbox::Out;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

const Q4: &str = "smollm2-135m-instruct.q4_1";
const Q8: &str = "smollm2-135m-instruct.q8_0";

/// A models folder with the default model (linked) and its Q8_0 requantization, made once
/// and kept under the target folder between test runs.
fn models_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let src = real::default_model_path();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("batch-models");
        std::fs::create_dir_all(&dir).unwrap();
        let q4 = dir.join("SmolLM2-135M-Instruct.Q4_1.gguf");
        if !q4.exists() {
            std::os::unix::fs::symlink(&src, &q4).unwrap();
        }
        let q8 = dir.join("SmolLM2-135M-Instruct.Q8_0.gguf");
        if !q8.exists() {
            // Written aside and renamed: a parallel test binary never sees half a file.
            let tmp = dir.join(format!(".q8-{}.part", std::process::id()));
            lmwb::engine::model::quantize::requantize_gguf(
                &src,
                &tmp,
                candle_core::quantized::GgmlDType::Q8_0,
            )
            .expect("requantize the default model to Q8_0");
            std::fs::rename(&tmp, &q8).unwrap();
        }
        dir
    })
}

struct Set {
    tmp: tempfile::TempDir,
}

impl Set {
    /// A prompt set `set.toml` in a fresh folder; outputs go to `<folder>/out`.
    fn new(toml: &str) -> Set {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("set.toml"), toml).unwrap();
        Set { tmp }
    }

    fn out(&self) -> PathBuf {
        self.tmp.path().join("out")
    }

    fn args<'a>(&'a self, toml: &'a str, extra: &[&'a str]) -> Vec<String> {
        let mut v: Vec<String> = vec![
            "batch".into(),
            self.tmp.path().join(toml).display().to_string(),
            "--out".into(),
            self.out().display().to_string(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    }

    fn lmwb(&self, extra: &[&str]) -> Out {
        let args = self.args("set.toml", extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        sandbox::lmwb(self.tmp.path(), models_dir(), &args)
    }

    /// Every file in the output folder with its modification time.
    fn files(&self) -> BTreeMap<String, SystemTime> {
        let Ok(rd) = std::fs::read_dir(self.out()) else {
            return BTreeMap::new();
        };
        rd.map(|e| e.unwrap())
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().unwrap().modified().unwrap(),
                )
            })
            .collect()
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.out().join(name)).unwrap()
    }
}

const THREE: &str = r#"name = "three"
models = ["smollm2-135m-instruct.q4_1", "smollm2-135m-instruct.q8_0"]

[defaults]
temperature = 0.0
max_tokens = 8
system = "You are a terse assistant."

[vars]
city = "Paris"

[prompts]
capital = "Which country is {{city}} the capital of?"
hello = "Say hello."
color = "Name one color."
"#;

fn stems() -> Vec<String> {
    let mut v = Vec::new();
    for m in [Q4, Q8] {
        for p in ["capital", "hello", "color"] {
            v.push(format!("{p}--{m}"));
        }
    }
    v
}

/// Each of the six items has a whole `.md` and a sidecar that parses, and nothing else is there.
fn assert_six_complete(set: &Set) {
    let files = set.files();
    let mut want: Vec<String> = stems()
        .iter()
        .flat_map(|s| [format!("{s}.md"), format!("{s}.json")])
        .collect();
    want.sort();
    assert_eq!(files.keys().cloned().collect::<Vec<_>>(), want);
    for s in stems() {
        let v: Value = serde_json::from_str(&set.read(&format!("{s}.json")))
            .unwrap_or_else(|e| panic!("{s}.json: {e}"));
        assert_eq!(v["output"], format!("{s}.md"));
        assert_eq!(v["stats"]["output_tokens"].as_u64().unwrap(), 8, "{s}");
        assert!(
            !set.read(&format!("{s}.md")).trim().is_empty(),
            "{s}.md is empty"
        );
    }
}

#[test]
fn six_outputs_then_reruns_skip_and_a_deleted_output_is_recreated_alone() {
    let set = Set::new(THREE);
    // Dry run: the plan, nothing loaded, nothing written.
    let r = set.lmwb(&["--dry-run"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stdout.matches("\n  run   ").count(), 6, "{}", r.stdout);
    assert!(
        r.stdout.contains("6 to run, 0 to skip; 2 models to load"),
        "{}",
        r.stdout
    );
    assert!(!set.out().exists());

    let r = set.lmwb(&[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("loaded {Q4}")) && r.stderr.contains(&format!("loaded {Q8}")),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout.contains("total") && r.stdout.contains("2 loaded"),
        "{}",
        r.stdout
    );
    assert_six_complete(&set);
    let a: Value = serde_json::from_str(&set.read(&format!("capital--{Q4}.json"))).unwrap();
    let b: Value = serde_json::from_str(&set.read(&format!("capital--{Q8}.json"))).unwrap();
    assert_eq!(
        a["model"]["sha256"], "b179c9523d0e6a0f",
        "the shipped file's sha256 prefix"
    );
    assert_ne!(a["model"]["sha256"], b["model"]["sha256"]);
    assert_eq!(
        a["prompt"]["rendered"],
        "Which country is Paris the capital of?"
    );
    assert_eq!(a["prompt"]["system"], "You are a terse assistant.");
    assert_eq!(a["params"]["temperature"], 0.0);
    assert_eq!(a["stats"]["finish_reason"], "length");
    assert!(a["model"]["load_ms"].as_f64().unwrap() > 0.0);
    let before = set.files();

    // A rerun skips all six and loads no model.
    let r = set.lmwb(&[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stderr.contains("0 to run, 6 to skip; 0 models to load"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("loading"), "{}", r.stderr);
    assert!(r.stdout.contains("0 loaded"), "{}", r.stdout);
    assert_eq!(set.files(), before, "nothing rewritten");

    // Delete one output: only it is recreated, with the same greedy text.
    let victim = format!("hello--{Q8}.md");
    let text = set.read(&victim);
    std::fs::remove_file(set.out().join(&victim)).unwrap();
    let r = set.lmwb(&[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stderr.contains("1 to run, 5 to skip; 1 model to load"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains(&format!("loading {Q4}")), "{}", r.stderr);
    let after = set.files();
    for (name, t) in &before {
        if name.starts_with(&format!("hello--{Q8}.")) {
            assert_ne!(after[name], *t, "{name} rewritten");
        } else {
            assert_eq!(after[name], *t, "{name} untouched");
        }
    }
    assert_eq!(set.read(&victim), text);
}

#[test]
fn sigkill_mid_run_leaves_no_truncated_file_and_the_rerun_completes() {
    let set = Set::new(THREE);
    let args = set.args("set.toml", &[]);
    let mut child = sandbox::command(set.tmp.path(), models_dir())
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kill it once two items are written, in the middle of the third.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let t = Instant::now();
    let mut seen = String::new();
    loop {
        let line = lines.next().expect("lmwb exited before item 2").unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("[2/6]") {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(240), "{seen}");
    }
    std::thread::sleep(Duration::from_millis(150));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // Whatever is there is whole: every .md has a sidecar that parses.
    let files = set.files();
    let done: Vec<&String> = files.keys().filter(|f| f.ends_with(".md")).collect();
    assert!(done.len() >= 2 && done.len() < 6, "{files:?}\n{seen}");
    for md in &done {
        let json = md.replace(".md", ".json");
        serde_json::from_str::<Value>(&set.read(&json)).unwrap_or_else(|e| panic!("{json}: {e}"));
    }
    for f in files.keys() {
        assert!(
            f.ends_with(".md") || f.ends_with(".json") || f.starts_with(".lmwb-"),
            "{f}"
        );
    }

    let r = set.lmwb(&[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("{} to run", 6 - done.len())),
        "{}",
        r.stderr
    );
    assert_six_complete(&set);
}

#[test]
fn a_prompt_longer_than_the_context_fails_alone_and_retry_errors_touches_only_it() {
    let set = Set::new(
        "name = \"long\"\nmodels = [\"smollm2-135m-instruct.q4_1\"]\n[defaults]\ntemperature = 0\nmax_tokens = 8\n\
         [prompts]\nhello = \"Say hello.\"\nlong = \"Summarize:\\n\\n{{text}}\"\ncolor = \"Name one color.\"\n",
    );
    // ~9000 tokens: past the model's 8192-token context.
    let big = set.tmp.path().join("big.txt");
    std::fs::write(&big, "lorem ipsum ".repeat(4600)).unwrap();
    let big_s = big.display().to_string();
    let r = set.lmwb(&["--text-file", &big_s]);
    assert_eq!(r.code, Some(1), "exit 1 when an item failed: {}", r.stderr);
    let err_file = format!("long--{Q4}.error.txt");
    let files = set.files();
    assert!(files.contains_key(&err_file), "{files:?}");
    assert!(
        set.read(&err_file).contains("context"),
        "{}",
        set.read(&err_file)
    );
    assert!(!files.contains_key(&format!("long--{Q4}.md")));
    for p in ["hello", "color"] {
        assert!(files.contains_key(&format!("{p}--{Q4}.md")), "{files:?}");
    }
    assert!(
        r.stdout.contains(&format!("failed: long--{Q4}.error.txt")),
        "{}",
        r.stdout
    );

    // A plain rerun leaves it; --retry-errors reruns only it.
    let r = set.lmwb(&["--text-file", &big_s]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stderr.contains("0 to run, 3 to skip (1 failed before"),
        "{}",
        r.stderr
    );
    let r = set.lmwb(&["--text-file", &big_s, "--retry-errors"]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("1 to run, 2 to skip"), "{}", r.stderr);
    let after = set.files();
    for (name, t) in &files {
        assert_eq!(after[name] == *t, name != &err_file, "{name}");
    }
    // With a text that fits, the retry succeeds and the error file goes.
    let r = set.lmwb(&["--text", "A short text.", "--retry-errors"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let after = set.files();
    assert!(!after.contains_key(&err_file) && after.contains_key(&format!("long--{Q4}.md")));
}

#[test]
fn each_malformed_prompt_set_gives_its_own_message() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/batch");
    let cases: &[(&str, &[&str])] = &[
        ("unknown_key.toml", &[":5:", "max_tokns"]),
        (
            "missing_var.toml",
            &[":5:", "[prompts].tldr", "{{article}}", "no value"],
        ),
        (
            "missing_prompt.toml",
            &[":7:", "hello,tldr", "`tldr`", "does not define"],
        ),
        (
            "unreadable_file.toml",
            &[":4:", "[vars].text", "does-not-exist.md"],
        ),
        (
            "unknown_model.toml",
            &[":4:", "no-such-model-anywhere", "no model named"],
        ),
        ("wrong_type.toml", &[":4:", "temperature", "cold"]),
        ("out_of_range.toml", &[":5:", "top_p", "(0, 1]"]),
        ("not_toml.toml", &[":2:"]),
    ];
    let home = tempfile::tempdir().unwrap();
    let mut messages = std::collections::HashSet::new();
    for (file, words) in cases {
        let path = fixtures.join(file);
        let r = sandbox::lmwb(
            home.path(),
            models_dir(),
            &["batch", path.to_str().unwrap(), "--dry-run"],
        );
        assert_eq!(r.code, Some(2), "{file}: {r:?}");
        assert!(r.stdout.is_empty(), "{file}: {}", r.stdout);
        let msg = r.stderr.trim();
        assert_eq!(msg.lines().count(), 1, "{file}: one line: {msg}");
        assert!(
            msg.contains(&format!("{file}:")),
            "{file}: the file is named: {msg}"
        );
        for w in *words {
            assert!(msg.contains(w), "{file}: `{w}` missing: {msg}");
        }
        assert!(
            messages.insert(msg.to_string()),
            "{file}: same message as another: {msg}"
        );
    }
    // Command-line mistakes are usage errors too.
    let set = Set::new(THREE);
    let r = set.lmwb(&["--models", "nope-model", "--dry-run"]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("--models: `nope-model`"), "{}", r.stderr);
    let r = set.lmwb(&["--text-file", "/nonexistent/t.md"]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(
        r.stderr.contains("--text-file /nonexistent/t.md"),
        "{}",
        r.stderr
    );
    let r = set.lmwb(&["--temperature", "-1", "--dry-run"]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("--temperature"), "{}", r.stderr);
}
