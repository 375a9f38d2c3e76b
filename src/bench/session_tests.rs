//! The session on fake clients: the order of progress events, two models in one report,
//! one model loaded at a time, and a cancel that leaves no report behind.

use super::*;
use crate::client::fake::{FakeClient, Script};
use crate::client::GenerateRequest;
use crate::engine::model::ModelInfo;
use crate::engine::Generation;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn model(name: &str) -> BenchModel {
    BenchModel {
        name: name.into(),
        target: Target::Local {
            name: name.into(),
            path: format!("/models/{name}.gguf").into(),
        },
    }
}

fn info() -> ModelInfo {
    ModelInfo {
        path: "/models/x.gguf".into(),
        kind: Default::default(),
        format: "gguf",
        arch: "llama".into(),
        quant: "Q4_0".into(),
        params: 1000,
        size_bytes: 600,
        context_length: 2048,
        has_chat_template: true,
        notes: vec![],
        config: None,
    }
}

fn fake(name: &str, delay: Duration) -> FakeClient {
    let pieces = (0..400).map(|i| format!("t{i} ")).collect();
    FakeClient::new(name, vec![Script::Reply(pieces)]).with_delay(delay)
}

/// A client that says when it is dropped.
struct Logged {
    inner: Arc<FakeClient>,
    log: Arc<Mutex<Vec<String>>>,
}

impl GenerationClient for Logged {
    fn model_name(&self) -> &str {
        self.inner.model_name()
    }
    fn context_length(&self) -> Option<usize> {
        self.inner.context_length()
    }
    fn vocab_size(&self) -> Option<usize> {
        self.inner.vocab_size()
    }
    fn generate(&self, req: GenerateRequest) -> Generation {
        self.inner.generate(req)
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let name = self.inner.model_name().to_string();
        self.log.lock().unwrap().push(format!("drop {name}"));
    }
}

fn opener(
    log: Arc<Mutex<Vec<String>>>,
    delay: Duration,
    fakes: Arc<Mutex<Vec<Arc<FakeClient>>>>,
) -> impl FnMut(&BenchModel) -> Result<Opened, BenchError> {
    move |m| {
        log.lock().unwrap().push(format!("open {}", m.name));
        let inner = Arc::new(fake(&m.name, delay));
        fakes.lock().unwrap().push(inner.clone());
        let meta = ModelMeta::local(&m.name, m.target.path().unwrap(), &info(), "cpu", 1, 0.0);
        let client = Logged {
            inner,
            log: log.clone(),
        };
        Ok((Box::new(client) as Box<dyn GenerationClient>, meta))
    }
}

fn small() -> BenchConfig {
    BenchConfig {
        standard: true,
        prompt_tokens: vec![8],
        gen_tokens: vec![4],
        repetitions: 1,
        latency_requests: Some(2),
        windows: vec![Some(32)],
        long_gen_tokens: 64,
        block: 16,
        ..BenchConfig::default()
    }
}

/// Each event as a short word, for comparing orders.
fn word(p: &Progress) -> Option<String> {
    Some(match p {
        Progress::Message(_) => return None,
        Progress::Model(n) => format!("model {n}"),
        Progress::Test(t) => format!("test {}", t.test),
        Progress::Latency(l) => format!("latency {}", l.samples.len()),
        Progress::Concurrency(c) => format!("streams {}", c.streams),
        Progress::Block { window, block } => format!(
            "block {} {}",
            crate::bench::long::window_label(*window),
            block.end
        ),
        Progress::Long(l) => format!("long {}", crate::bench::long::window_label(l.window)),
        Progress::Checks(c) => format!("checks {}", c.len()),
    })
}

#[test]
fn progress_events_come_in_order_and_the_report_is_written() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let fakes = Arc::new(Mutex::new(Vec::new()));
    let mut open = opener(log.clone(), Duration::ZERO, fakes);
    let runs = tempfile::tempdir().unwrap();
    let mut events = Vec::new();
    let done = run(
        &[model("a")],
        &mut open,
        &small(),
        OutDir::Runs(runs.path().into()),
        &mut |p| events.extend(word(&p)),
        &CancelToken::default(),
    )
    .unwrap();
    let mut want: Vec<String> = ["model a", "test pp8", "test tg4", "latency 2"]
        .map(String::from)
        .to_vec();
    for w in ["32", "none"] {
        want.extend((1..=4).map(|b| format!("block {w} {}", b * 16)));
        want.push(format!("long {w}"));
    }
    // Four checks for the window, check 3 for the unwindowed run.
    want.push("checks 5".into());
    assert_eq!(events, want);
    let dir = &done.dir;
    assert_eq!(dir.parent().unwrap(), runs.path().join("bench"));
    let folder = dir.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        folder.starts_with(&done.results.started) && folder.ends_with("-a"),
        "{folder}"
    );
    for f in [
        "report.md",
        "results.json",
        "samples.csv",
        "tok_s.png",
        "rss.svg",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing in {}", dir.display());
    }
    let on_disk: report::BenchResults =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(on_disk.models.len(), 1);
    assert_eq!(on_disk.models[0].long.len(), 2);
}

#[test]
fn two_models_side_by_side_one_loaded_at_a_time() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let fakes = Arc::new(Mutex::new(Vec::new()));
    let mut open = opener(log.clone(), Duration::ZERO, fakes.clone());
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("given");
    let cfg = BenchConfig {
        latency_requests: None,
        windows: vec![],
        ..small()
    };
    let mut models_seen = Vec::new();
    let done = run(
        &[model("a"), model("b")],
        &mut open,
        &cfg,
        OutDir::Exactly(dir.clone()),
        &mut |p| {
            if let Progress::Model(n) = p {
                models_seen.push(n.to_string())
            }
        },
        &CancelToken::default(),
    )
    .unwrap();
    assert_eq!(models_seen, ["a", "b"]);
    assert_eq!(
        *log.lock().unwrap(),
        ["open a", "drop a", "open b", "drop b"]
    );
    assert_eq!(done.dir, dir);
    let names: Vec<&str> = done
        .results
        .models
        .iter()
        .map(|m| m.model.name.as_str())
        .collect();
    assert_eq!(names, ["a", "b"]);
    for m in &done.results.models {
        let tests: Vec<&str> = m.standard.iter().map(|t| t.test.as_str()).collect();
        assert_eq!(tests, ["pp8", "tg4"]);
    }
    // Each model was asked through its own client: warmup + 1 per test.
    assert!(fakes.lock().unwrap().iter().all(|f| f.calls() == 4));
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("| a ") && md.contains("| b "), "{md}");
}

#[test]
fn a_cancel_mid_generation_stops_it_and_writes_no_report() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let fakes = Arc::new(Mutex::new(Vec::new()));
    let mut open = opener(log.clone(), Duration::from_millis(2), fakes.clone());
    let out = tempfile::tempdir().unwrap();
    let cfg = BenchConfig {
        standard: false,
        latency_requests: None,
        long_gen_tokens: 300,
        ..small()
    };
    let cancel = CancelToken::default();
    let mut blocks = 0;
    let e = run(
        &[model("a"), model("b")],
        &mut open,
        &cfg,
        OutDir::Runs(out.path().into()),
        &mut |p| {
            if let Progress::Block { .. } = p {
                blocks += 1;
                cancel.cancel();
            }
        },
        &cancel,
    )
    .unwrap_err();
    assert!(matches!(e, BenchError::Cancelled), "{e}");
    assert_eq!(blocks, 1, "no block after the cancel");
    assert_eq!(*log.lock().unwrap(), ["open a", "drop a"], "b never opened");
    let f = fakes.lock().unwrap()[0].clone();
    assert_eq!(f.calls(), 1, "the cancelled generation was the last one");
    let t = Instant::now();
    while f.cancelled() == 0 && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(f.cancelled(), 1, "the running generation saw the cancel");
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        0,
        "nothing written"
    );
}

#[test]
fn a_cancel_from_another_thread_reaches_a_generation_waiting_for_its_next_token() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let fakes = Arc::new(Mutex::new(Vec::new()));
    // 200 ms per token: the cancel comes while the runner waits for one.
    let mut open = opener(log, Duration::from_millis(200), fakes);
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("never");
    let cancel = CancelToken::default();
    let c = cancel.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        c.cancel();
    });
    let t = Instant::now();
    let e = run(
        &[model("a")],
        &mut open,
        &small(),
        OutDir::Exactly(dir.clone()),
        &mut |_| {},
        &cancel,
    )
    .unwrap_err();
    assert!(matches!(e, BenchError::Cancelled), "{e}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(!dir.exists());
}

#[test]
fn no_models_is_an_error_naming_what_to_do() {
    let mut open = |_: &BenchModel| -> Result<Opened, BenchError> { unreachable!() };
    let e = run(
        &[],
        &mut open,
        &small(),
        OutDir::Runs("/nonexistent".into()),
        &mut |_| {},
        &CancelToken::default(),
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "no model to benchmark: choose at least one");
}

#[test]
fn remote_meta_says_how_the_model_was_reached() {
    let backend: crate::client::backend::BackendConfig =
        toml::from_str("name = \"vllm\"\nbase_url = \"http://gpu:8000\"\n").unwrap();
    let target = Target::Remote {
        backend,
        model: "m".into(),
    };
    let client = FakeClient::new("vllm/m", vec![]);
    let meta = ModelMeta::remote(&client, &target, 12.0);
    assert_eq!(meta.name, "vllm/m");
    assert_eq!(meta.path, "http://gpu:8000/v1 (m)");
    assert_eq!(meta.arch, "remote (openai)");
    assert_eq!(meta.device, "http http://gpu:8000/v1");
    assert_eq!(meta.context_length, 2048);
    assert_eq!(
        meta.load_notes,
        ["served by http://gpu:8000/v1; times are measured by lmwb's HTTP client"]
    );
}
