//! `BACKEND/MODEL` through the binary, on scripted servers: `lmwb run` streams a remote
//! model's answer; a batch over a backend that is down, one that answers garbage and one
//! that works fails the first two with clear errors and still writes every output of the
//! third; `runs/metrics/` gets a line per generation; a bad `[[backends]]` table is an
//! error naming the file.

#[path = "common/fake_backend.rs"]
mod fake_backend;
#[path = "common/sandbox.rs"]
mod sandbox;

use fake_backend::{openai_server, response, FakeBackend};
use serde_json::Value;
use std::path::Path;

fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A config file with the backends `good`, `bad` and `down`.
fn config(dir: &Path, good: &FakeBackend, bad: &FakeBackend) -> std::path::PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[[backends]]
name = "good"
base_url = "{}/v1"

[[backends]]
name = "bad"
base_url = "{}"

[[backends]]
name = "down"
base_url = "http://127.0.0.1:{}/v1"
connect_timeout = 2
"#,
            good.url(),
            bad.url(),
            closed_port()
        ),
    )
    .unwrap();
    path
}

fn metrics_lines(runs: &Path) -> Vec<Value> {
    let dir = runs.join("metrics");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        out.extend(
            text.lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap()),
        );
    }
    out
}

#[test]
fn run_and_batch_reach_remote_models_and_a_bad_backend_does_not_stop_the_batch() {
    let good = openai_server(&["Fine", " answer"]);
    let bad = FakeBackend::start(|_| response(200, "text/html", "<html>a router page</html>"));
    let home = tempfile::tempdir().unwrap();
    let models = tempfile::tempdir().unwrap();
    let cfg = config(home.path(), &good, &bad);
    let cfg_s = cfg.to_str().unwrap();

    // lmwb run on a remote model: the answer on stdout, the stats line on stderr.
    let out = sandbox::lmwb(
        home.path(),
        models.path(),
        &[
            "--config",
            cfg_s,
            "run",
            "-m",
            "good/m",
            "--temperature",
            "0",
            "hi",
        ],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout.trim_end(), "Fine answer");
    assert!(out.stderr.contains("2 generated"), "{}", out.stderr);

    let out = sandbox::lmwb(
        home.path(),
        models.path(),
        &["--config", cfg_s, "run", "-m", "down/m", "hi"],
    );
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("cannot reach backend `down`"),
        "{}",
        out.stderr
    );

    // models list: the remote models after the local ones, and why a backend is missing.
    let out = sandbox::lmwb(
        home.path(),
        models.path(),
        &["--config", cfg_s, "models", "list"],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let line = |name: &str| {
        out.stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} row in:\n{}", out.stdout))
            .to_string()
    };
    assert!(line("good/m").contains("4096"), "{}", out.stdout);
    assert!(line("down/").contains("unreachable"), "{}", out.stdout);
    assert!(
        line("bad/").contains("did not answer like"),
        "{}",
        out.stdout
    );
    let out = sandbox::lmwb(
        home.path(),
        models.path(),
        &["--config", cfg_s, "models", "list", "--json"],
    );
    let rows: Vec<Value> = serde_json::from_str(&out.stdout).unwrap();
    let good_row = rows.iter().find(|r| r["name"] == "good/m").unwrap();
    assert_eq!(good_row["source"], "backend");
    assert_eq!(good_row["context_length"], 4096);
    assert!(rows
        .iter()
        .any(|r| r["name"] == "down/" && r["error"].is_string()));

    // A batch over the three.
    let spec = home.path().join("set.toml");
    std::fs::write(
        &spec,
        r#"
name = "remote"
models = ["down/m", "bad/m", "good/m"]

[defaults]
temperature = 0.0
max_tokens = 8

[prompts]
greet = "Say hello."
bye = "Say goodbye."
"#,
    )
    .unwrap();
    let outdir = home.path().join("out");
    let out = sandbox::lmwb(
        home.path(),
        models.path(),
        &[
            "--config",
            cfg_s,
            "batch",
            spec.to_str().unwrap(),
            "--out",
            outdir.to_str().unwrap(),
        ],
    );
    assert_eq!(out.code, Some(1), "failed items exit 1\n{}", out.stderr);
    assert!(
        out.stderr.contains("cannot reach backend `down`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("backend `bad`") && out.stderr.contains("did not answer like"),
        "{}",
        out.stderr
    );
    let mut files: Vec<String> = std::fs::read_dir(&outdir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    files.sort();
    let good_md: Vec<&String> = files
        .iter()
        .filter(|f| f.contains("good") && f.ends_with(".md"))
        .collect();
    assert_eq!(good_md.len(), 2, "{files:?}");
    for f in &good_md {
        let md = std::fs::read_to_string(outdir.join(f)).unwrap();
        assert!(md.contains("Fine answer"), "{md}");
        let side: Value = serde_json::from_str(
            &std::fs::read_to_string(outdir.join(f.replace(".md", ".json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(side["model"]["name"], "good/m");
        assert_eq!(
            side["model"]["transport"],
            format!("http {}/v1", good.url())
        );
    }
    // The other two models' items failed, each with its reason on disk.
    let errors: Vec<&String> = files.iter().filter(|f| f.ends_with(".error.txt")).collect();
    assert_eq!(errors.len(), 4, "{files:?}");
    for f in errors {
        let text = std::fs::read_to_string(outdir.join(f)).unwrap();
        assert!(text.contains("backend `"), "{f}: {text}");
    }

    // One metrics line per finished generation, local and remote alike.
    let lines = metrics_lines(&home.path().join("runs"));
    let remote: Vec<&Value> = lines.iter().filter(|l| l["model"] == "good/m").collect();
    assert_eq!(remote.len(), 3, "{lines:?}");
    assert_eq!(remote.iter().filter(|l| l["command"] == "batch").count(), 2);
    assert!(remote
        .iter()
        .all(|l| l["stats"]["generated_tokens"] == 2 && l["stats"]["prompt_tokens"] == 7));
}

#[test]
fn a_bad_backends_table_is_an_error_naming_the_file() {
    let home = tempfile::tempdir().unwrap();
    let models = tempfile::tempdir().unwrap();
    let cfg = home.path().join("bad.toml");
    for (table, want) in [
        ("name = \"a/b\"\nbase_url = \"http://x\"", "`/`"),
        (
            "name = \"a\"\nbase_url = \"localhost:8080\"",
            "localhost:8080",
        ),
        (
            "name = \"a\"\nbase_url = \"http://x\"\nkind = \"grpc\"",
            "grpc",
        ),
        (
            "name = \"a\"\nbase_url = \"http://x\"\napi_key = \"k\"",
            "api_key",
        ),
    ] {
        std::fs::write(&cfg, format!("[[backends]]\n{table}\n")).unwrap();
        let out = sandbox::lmwb(
            home.path(),
            models.path(),
            &["--config", cfg.to_str().unwrap(), "run", "-m", "a/m", "hi"],
        );
        assert_eq!(out.code, Some(2), "{table}: {}", out.stderr);
        assert!(
            out.stderr.contains("bad.toml") && out.stderr.contains(want),
            "{table}: {}",
            out.stderr
        );
    }
}
