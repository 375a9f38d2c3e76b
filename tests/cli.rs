//! The `lmwb` binary end to end (assert_cmd) on the real default model: stdout carries only
//! model text, stderr the stats line, exit codes and error messages say what to do.
//!
//! Every command runs in its own temporary folder with HOME, XDG_CONFIG_HOME and
//! LMWB_RUNS_DIR pointing into it (no user config leaks in, logs stay out of the repo);
//! LMWB_MODELS_DIR still points at the real models. Needs `bash scripts/fetch-models.sh`.

#[path = "common/real.rs"]
mod real;
#[path = "common/sandbox.rs"]
mod sandbox;

use sandbox::{output as run, Out};
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const FRANCE: &str = "The capital of France is";

/// A sandbox for one test: its own home, config, runs and working folders.
struct Sandbox {
    dir: tempfile::TempDir,
    models: PathBuf,
}

impl Sandbox {
    fn new() -> Sandbox {
        // Fails with the fetch instruction when the model is missing.
        let model = real::default_model_path();
        Sandbox {
            dir: tempfile::tempdir().expect("temp dir"),
            models: model.parent().expect("models folder").to_path_buf(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `lmwb` with a clean environment (no inherited `LMWB_*`).
    fn std_cmd(&self) -> std::process::Command {
        sandbox::command(self.path(), &self.models)
    }

    fn cmd(&self) -> assert_cmd::Command {
        sandbox::assert_command(self.path(), &self.models)
    }
}

fn lmwb(sb: &Sandbox, args: &[&str]) -> Out {
    sandbox::lmwb(sb.path(), &sb.models, args)
}

/// Exit 0, or panic showing stderr.
fn ok(r: Out) -> Out {
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    r
}

/// The single stats line on stderr.
fn stats_line(r: &Out) -> &str {
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "stderr should be one stats line: {:?}",
        r.stderr
    );
    let line = lines[0];
    assert!(
        line.starts_with("lmwb: ") && line.contains("prompt tokens") && line.contains("decode"),
        "{line}"
    );
    line
}

fn greedy_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "run",
        "-m",
        "smollm2-135m-instruct.q4_1",
        "--temperature",
        "0",
        "-n",
        "16",
    ];
    v.extend_from_slice(extra);
    v
}

#[test]
fn run_streams_model_text_to_stdout_and_one_stats_line_to_stderr() {
    let sb = Sandbox::new();
    let r = ok(lmwb(&sb, &greedy_args(&[FRANCE])));
    assert!(!r.stdout.trim().is_empty(), "no text on stdout");
    assert!(
        !r.stdout.contains("lmwb"),
        "stats leaked into stdout: {:?}",
        r.stdout
    );
    let line = stats_line(&r);
    assert!(
        line.contains("5 prompt tokens") && line.contains("16 generated"),
        "{line}"
    );
    assert!(line.contains("finish: length"), "{line}");

    // --json: one object, nothing else; its text is what the plain run printed.
    let j = ok(lmwb(&sb, &greedy_args(&["--json", FRANCE])));
    assert_eq!(j.stdout.lines().count(), 1, "{:?}", j.stdout);
    let v: Value = serde_json::from_str(&j.stdout).expect("stdout is one JSON object");
    assert!(v.is_object());
    assert_eq!(
        v["text"].as_str(),
        Some(r.stdout.as_str()),
        "--json text != streamed text"
    );
    let s = &v["stats"];
    assert_eq!(s["finish_reason"], "length");
    assert_eq!(s["generated_tokens"], 16);
    assert_eq!(s["prompt_tokens"], 5);
    assert!(s["decode_tok_s"].as_f64().unwrap() > 0.0, "{s}");
    assert!(s["ttft_ms"].as_f64().unwrap() > 0.0, "{s}");
    stats_line(&j);

    // The prompt from standard input: the same text.
    let i = ok(run(sb.cmd().args(greedy_args(&["-"])).write_stdin(FRANCE)));
    assert_eq!(i.stdout, r.stdout, "prompt from stdin");
    assert!(stats_line(&i).contains("5 prompt tokens"));
}

#[test]
fn chat_and_system_apply_the_template_and_unknown_templates_list_the_builtins() {
    let sb = Sandbox::new();
    let json = |extra: &[&str]| -> Value {
        let r = ok(lmwb(
            &sb,
            &greedy_args(&[extra, &["--json", "Say hello."]].concat()),
        ));
        serde_json::from_str(&r.stdout).expect("JSON")
    };
    let plain = json(&[]);
    let chat = json(&["--chat"]);
    let system = json(&[
        "--chat",
        "--system",
        "You are a pirate who answers in one line.",
    ]);
    let n = |v: &Value| v["stats"]["prompt_tokens"].as_u64().unwrap();
    assert_eq!(n(&plain), real::raw_prompt_len("Say hello.") as u64);
    // ChatML: the model's template adds its default system prompt and the role markers.
    assert!(n(&chat) > n(&plain) + 10, "{} vs {}", n(&chat), n(&plain));
    assert_ne!(n(&system), n(&chat), "--system did not change the prompt");
    for v in [&chat, &system] {
        assert!(!v["text"].as_str().unwrap().trim().is_empty(), "{v}");
    }
    // A built-in template by name works too.
    let named = json(&["--template", "chatml"]);
    assert!(n(&named) > n(&plain));

    let r = lmwb(&sb, &greedy_args(&["--template", "nosuch", "hi"]));
    assert_ne!(r.code, Some(0));
    assert!(r.stdout.is_empty(), "{:?}", r.stdout);
    assert!(r.stderr.contains("nosuch"), "{}", r.stderr);
    for name in ["chatml", "llama2", "llama3", "mistral", "zephyr", "gemma"] {
        assert!(r.stderr.contains(name), "{name} missing from: {}", r.stderr);
    }
}

#[test]
fn bad_model_device_and_sampling_fail_with_a_clear_message() {
    let sb = Sandbox::new();
    let fail = |args: &[&str], wants: &[&str]| {
        let r = lmwb(&sb, args);
        assert!(
            r.code.is_some_and(|c| c != 0),
            "{args:?} should fail: {r:?}",
            r = (r.code, &r.stderr)
        );
        assert!(r.stdout.is_empty(), "{args:?}: stdout {:?}", r.stdout);
        for w in wants {
            assert!(
                r.stderr.contains(w),
                "{args:?}: {w:?} missing from {}",
                r.stderr
            );
        }
        assert!(
            r.stderr.starts_with("lmwb: error:"),
            "{args:?}: {}",
            r.stderr
        );
    };
    fail(
        &["run", "-m", "nosuchmodel", "hi"],
        &["nosuchmodel", "lmwb models list"],
    );
    let missing = sb.path().join("nowhere").join("missing.gguf");
    let missing = missing.to_str().unwrap();
    fail(&["run", "-m", missing, "hi"], &[missing, "does not exist"]);
    fail(
        &[
            "run",
            "-m",
            "smollm2-135m-instruct.q4_1",
            "--device",
            "cuda",
            "hi",
        ],
        &["cuda", "--features cuda"],
    );
    fail(
        &[
            "run",
            "-m",
            "smollm2-135m-instruct.q4_1",
            "--temperature",
            "-1",
            "hi",
        ],
        &["temperature", "-1"],
    );
    fail(
        &[
            "run",
            "-m",
            "smollm2-135m-instruct.q4_1",
            "--temperature=-1",
            "hi",
        ],
        &["temperature"],
    );
    fail(
        &[
            "run",
            "-m",
            "smollm2-135m-instruct.q4_1",
            "--top-p",
            "0",
            "hi",
        ],
        &["top_p"],
    );
}

#[test]
fn models_pull_and_rm_refuse_bad_input_without_the_network() {
    let sb = Sandbox::new();
    let r = lmwb(&sb, &["models", "pull", "not a repo"]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("is not a hub model"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{:?}", r.stdout);
    let r = lmwb(&sb, &["models", "rm", "--yes", "nosuch/model"]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("lmwb did not download a model named nosuch/model"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty(), "{:?}", r.stdout);
}

#[test]
fn the_workbench_needs_a_terminal() {
    let sb = Sandbox::new();
    let r = lmwb(&sb, &[]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr.contains("the workbench needs a terminal"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty());
}

#[test]
fn models_list_and_show_describe_the_default_model() {
    let sb = Sandbox::new();
    let r = ok(lmwb(&sb, &["models", "list"]));
    let row = r
        .stdout
        .lines()
        .find(|l| l.starts_with("smollm2-135m-instruct.q4_1 "))
        .unwrap_or_else(|| panic!("default model not listed: {}", r.stdout));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[1], "llama", "{row}");
    assert_eq!(cols[2], "Q4_1", "{row}");
    assert_eq!(cols[cols.len() - 2], "8192", "{row}");
    assert_eq!(cols.last(), Some(&"folder"), "{row}");

    let r = ok(lmwb(&sb, &["models", "list", "--json"]));
    let rows: Value = serde_json::from_str(&r.stdout).expect("models list --json");
    let e = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "smollm2-135m-instruct.q4_1")
        .unwrap_or_else(|| panic!("{rows}"));
    assert_eq!(e["info"]["arch"], "llama");
    assert_eq!(e["info"]["quant"], "Q4_1");
    assert_eq!(e["info"]["context_length"], 8192);

    let r = ok(lmwb(&sb, &["models", "show", "smollm2-135m-instruct.q4_1"]));
    assert!(
        r.stdout.contains("Q4_1") && r.stdout.contains("8192"),
        "{}",
        r.stdout
    );
    // The file runs as shipped on lmwb's kernels, not on candle's slow Q4_1 path.
    let note = r
        .stdout
        .lines()
        .find(|l| l.contains("Q4_1 tensors"))
        .unwrap_or_else(|| panic!("no note on how Q4_1 runs: {}", r.stdout));
    assert!(note.contains("lmwb's CPU kernels"), "{note}");

    let r = ok(lmwb(
        &sb,
        &["models", "show", "smollm2-135m-instruct.q4_1", "--json"],
    ));
    let v: Value = serde_json::from_str(&r.stdout).expect("models show --json");
    assert_eq!(v["arch"], "llama");
    assert_eq!(v["quant"], "Q4_1");
    assert_eq!(v["context_length"], 8192);
    assert_eq!(v["has_chat_template"], true);
    let notes = v["notes"].to_string();
    assert!(notes.contains("Q4_1 tensors run as stored"), "{notes}");
}

#[test]
fn config_file_errors_name_the_key_and_environment_sets_sampling() {
    let sb = Sandbox::new();
    let file = sb.path().join("bad.toml");
    std::fs::write(&file, "[sampling]\ntemprature = 0.5\n").unwrap();
    let r = lmwb(
        &sb,
        &["--config", file.to_str().unwrap(), "run", "-n", "1", "hi"],
    );
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("sampling.temprature"), "{}", r.stderr);
    assert!(r.stderr.contains(file.to_str().unwrap()), "{}", r.stderr);
    assert!(r.stdout.is_empty());

    // The user config file is read from XDG_CONFIG_HOME (here: the sandbox's).
    let user = sb.path().join("config").join("lmwb");
    std::fs::create_dir_all(&user).unwrap();
    std::fs::write(user.join("config.toml"), "bogus_key = 1\n").unwrap();
    let r = lmwb(&sb, &["run", "-n", "1", "hi"]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("bogus_key"), "{}", r.stderr);
    std::fs::remove_file(user.join("config.toml")).unwrap();

    // LMWB_SAMPLING_TEMPERATURE=0: greedy without --temperature, so two runs agree, and
    // agree with --temperature 0.
    let env_run = || {
        ok(run(sb.cmd().env("LMWB_SAMPLING_TEMPERATURE", "0").args([
            "run",
            "-m",
            "smollm2-135m-instruct.q4_1",
            "-n",
            "24",
            FRANCE,
        ])))
        .stdout
    };
    let (a, b) = (env_run(), env_run());
    assert!(!a.trim().is_empty());
    assert_eq!(a, b, "LMWB_SAMPLING_TEMPERATURE=0 runs differ");
    let flag = ok(lmwb(
        &sb,
        &[
            "run",
            "-m",
            "smollm2-135m-instruct.q4_1",
            "--temperature",
            "0",
            "-n",
            "24",
            FRANCE,
        ],
    ));
    assert_eq!(a, flag.stdout);
    let r = run(sb
        .cmd()
        .env("LMWB_SAMPLING_TEMPERATURE", "warm")
        .args(["run", "-n", "1", "hi"]));
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr.contains("LMWB_SAMPLING_TEMPERATURE"),
        "{}",
        r.stderr
    );
}

#[test]
fn ctrl_c_stops_cleanly_with_exit_130() {
    let sb = Sandbox::new();
    let mut child = sb
        .std_cmd()
        .args([
            "run",
            "-m",
            "smollm2-135m-instruct.q4_1",
            "--temperature",
            "0",
            "-n",
            "2000",
        ])
        .arg("Once upon a time")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn lmwb");
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let (mut all, mut buf) = (Vec::new(), [0u8; 256]);
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
            let _ = tx.send(());
        }
        all
    });
    if rx.recv_timeout(Duration::from_secs(120)).is_err() {
        let _ = child.kill();
        panic!("lmwb printed nothing in 120 s");
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("lmwb did not exit within 30 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = String::from_utf8(reader.join().unwrap()).expect("UTF-8 stdout");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    eprintln!("exited after {:?}: {stderr}", t.elapsed());
    assert_eq!(status.code(), Some(130), "stderr: {stderr}");
    assert!(stderr.contains("finish: cancelled"), "{stderr}");
    assert!(!text.is_empty() && !text.contains("lmwb"), "{text:?}");
}
