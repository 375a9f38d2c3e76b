//! Parity: the default model served by `lmwb serve` and driven through lmwb's HTTP client
//! (`-m self/MODEL`) gives the same greedy text as in-process, for raw and chat prompts and
//! for a batch, and writes the same artifact layout under `runs/` (`logs/`, `metrics/`,
//! batch outputs: the same file names and fields). Needs `bash scripts/fetch-models.sh`.

#[path = "common/http.rs"]
mod http;
#[path = "common/real.rs"]
mod real;
#[path = "common/sandbox.rs"]
mod sandbox;
#[path = "common/serve_proc.rs"]
mod serve_proc;

use serde_json::Value;
use serve_proc::Server;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const MODEL: &str = "smollm2-135m-instruct.q4_1";

fn models() -> PathBuf {
    real::default_model_path().parent().unwrap().to_path_buf()
}

/// Every file under `dir`, relative, with the remote model's name made local.
fn tree(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.insert(rel.replace("self_", ""));
            }
        }
    }
    out
}

/// The key paths of a JSON value (`stats.ttft_ms`, …).
fn keys(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    if let Value::Object(m) = v {
        for (k, v) in m {
            let p = format!("{prefix}{k}");
            out.insert(p.clone());
            keys(v, &format!("{p}."), out);
        }
    }
}

fn key_set(v: &Value) -> BTreeSet<String> {
    let mut s = BTreeSet::new();
    keys(v, "", &mut s);
    s
}

fn metrics(runs: &Path) -> Vec<Value> {
    let dir = runs.join("metrics");
    let mut lines = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        lines.extend(
            text.lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap()),
        );
    }
    lines
}

const SET: &str = r#"
name = "parity"
models = ["MODEL"]

[defaults]
temperature = 0.0
max_tokens = 20
system = "You are brief."

[prompts]
capital = "What is the capital of France?"
colour = "Name a colour."
"#;

#[test]
fn the_http_client_on_lmwb_serve_matches_in_process_text_and_artifacts() {
    let server = Server::start_in(&models(), MODEL, &[]);
    let local = tempfile::tempdir().unwrap();
    let remote = tempfile::tempdir().unwrap();
    let cfg = remote.path().join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[backends]]\nname = \"self\"\nbase_url = \"http://{}\"\n",
            server.addr
        ),
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap().to_string();
    let remote_model = format!("self/{MODEL}");
    let run = |home: &Path, model: &str, extra: &[&str]| {
        let mut args = vec!["--config"];
        let local_cfg = home.join("none.toml");
        std::fs::write(&local_cfg, "").unwrap();
        let c = if home == remote.path() {
            cfg.clone()
        } else {
            local_cfg.to_str().unwrap().to_string()
        };
        args.push(&c);
        args.extend(["run", "-m", model, "--temperature", "0", "-n", "24"]);
        args.extend(extra);
        let out = sandbox::lmwb(home, &models(), &args);
        assert_eq!(out.code, Some(0), "{model} {extra:?}: {}", out.stderr);
        out
    };
    for extra in [
        &["The capital of France is"][..],
        &["--chat", "What is the capital of France?"][..],
        &["--chat", "--system", "Answer in French.", "Say hello."][..],
    ] {
        let a = run(local.path(), MODEL, extra);
        let b = run(remote.path(), &remote_model, extra);
        assert!(!a.stdout.trim().is_empty(), "{extra:?}");
        assert_eq!(a.stdout, b.stdout, "greedy text differs for {extra:?}");
    }

    // A batch, in-process and through the server.
    for (home, model, c) in [
        (local.path(), MODEL.to_string(), None),
        (remote.path(), remote_model.clone(), Some(cfg.as_str())),
    ] {
        let spec = home.join("set.toml");
        std::fs::write(&spec, SET.replace("MODEL", &model)).unwrap();
        let mut args: Vec<&str> = Vec::new();
        if let Some(c) = c {
            args.extend(["--config", c]);
        }
        args.extend(["batch", spec.to_str().unwrap()]);
        let out = sandbox::lmwb(home, &models(), &args);
        assert_eq!(out.code, Some(0), "{model}: {}", out.stderr);
    }
    // A benchmark through the server: exact-length token prompts, every token timed here.
    let bench_out = remote.path().join("bench");
    let out = sandbox::lmwb(
        remote.path(),
        &models(),
        &[
            "--config",
            &cfg,
            "bench",
            "-m",
            &remote_model,
            "-p",
            "16",
            "-n",
            "8",
            "-r",
            "1",
            "--out",
            bench_out.to_str().unwrap(),
        ],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(bench_out.join("results.json")).unwrap())
            .unwrap();
    let m = &results["models"][0];
    assert_eq!(m["model"]["name"], remote_model.as_str());
    let tests: Vec<&str> = m["standard"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["test"].as_str().unwrap())
        .collect();
    assert_eq!(tests, ["pp16", "tg8"]);
    assert!(m["standard"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["tok_s"]["mean"].as_f64().unwrap() > 0.0));
    std::fs::remove_dir_all(&bench_out).unwrap();

    let addr = server.addr.clone();
    server.stop();

    // The same files under runs/: logs, metrics, batch outputs.
    let (ra, rb) = (local.path().join("runs"), remote.path().join("runs"));
    let (ta, tb) = (tree(&ra), tree(&rb));
    assert_eq!(ta, tb, "runs/ layouts differ");
    assert!(ta.iter().any(|f| f.starts_with("logs/")), "{ta:?}");
    assert!(ta.iter().any(|f| f.starts_with("metrics/")), "{ta:?}");
    let outputs: Vec<&String> = ta.iter().filter(|f| f.ends_with(".md")).collect();
    assert_eq!(outputs.len(), 2, "{ta:?}");
    for md in outputs {
        let remote_md = md.replace(MODEL, &format!("self_{MODEL}"));
        let a = std::fs::read_to_string(ra.join(md)).unwrap();
        let b = std::fs::read_to_string(rb.join(&remote_md)).unwrap();
        assert_eq!(a, b, "{md} differs");
        let side = |root: &Path, f: &str| -> Value {
            serde_json::from_str(
                &std::fs::read_to_string(root.join(f.replace(".md", ".json"))).unwrap(),
            )
            .unwrap()
        };
        let (sa, sb) = (side(&ra, md), side(&rb, &remote_md));
        assert_eq!(key_set(&sa), key_set(&sb), "sidecar fields differ");
        assert_eq!(
            sa["stats"]["generated_tokens"],
            sb["stats"]["generated_tokens"]
        );
        assert_eq!(sb["model"]["transport"], format!("http http://{addr}/v1"));
        assert_eq!(sa["model"]["transport"], "in-process");
    }

    // The metrics lines: same fields, same token counts.
    let (ma, mb) = (metrics(&ra), metrics(&rb));
    assert_eq!(ma.len(), 5);
    assert_eq!(mb.len(), 5);
    for (a, b) in ma.iter().zip(&mb) {
        assert_eq!(key_set(a), key_set(b));
        assert_eq!(a["command"], b["command"]);
        assert_eq!(
            b["transport"].as_str().unwrap().split(' ').next(),
            Some("http")
        );
        for k in ["prompt_tokens", "generated_tokens", "finish_reason"] {
            assert_eq!(a["stats"][k], b["stats"][k], "{k}: {a} vs {b}");
        }
    }
}
