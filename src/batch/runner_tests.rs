use super::*;
use crate::batch::plan::PlanOptions;
use crate::batch::{Settings, ValidSpec};
use crate::client::fake::{FakeClient, Script};
use crate::config::Config;
use crate::engine::{GenerateRequest, Generation, Prompt};
use std::path::Path;
use std::sync::Arc;

/// A fake shared between the loader and the test.
struct Shared(Arc<FakeClient>);

impl GenerationClient for Shared {
    fn model_name(&self) -> &str {
        self.0.model_name()
    }
    fn context_length(&self) -> Option<usize> {
        self.0.context_length()
    }
    fn generate(&self, req: GenerateRequest) -> Generation {
        self.0.generate(req)
    }
}

const SET: &str = "[defaults]\ntemperature = 0\nmax_tokens = 50\nsystem = \"Be brief.\"\n[vars]\nx = \"X\"\n[prompts]\na = \"A {{x}}\"\nb = \"B\"\nc = \"C\"\n";

struct Bench {
    dir: tempfile::TempDir,
    fakes: Vec<Arc<FakeClient>>,
    loads: Vec<String>,
}

impl Bench {
    fn new(scripts: Vec<Vec<Script>>) -> Bench {
        let fakes = scripts
            .into_iter()
            .enumerate()
            .map(|(i, s)| Arc::new(FakeClient::new(&format!("m{i}"), s)))
            .collect();
        Bench {
            dir: tempfile::tempdir().unwrap(),
            fakes,
            loads: Vec::new(),
        }
    }

    fn plan(&self, force: bool, retry_errors: bool) -> Plan {
        let spec = ValidSpec::parse(Path::new("/s/p.toml"), SET, None).unwrap();
        let models = (0..self.fakes.len())
            .map(|i| ModelRef::local(format!("m{i}"), format!("/nonexistent/m{i}.gguf").into()))
            .collect();
        let opts = PlanOptions {
            force,
            retry_errors,
            ..PlanOptions::default()
        };
        let base = Settings::from_config(&Config::defaults());
        Plan::build(&spec, models, &base, self.dir.path().into(), &opts).unwrap()
    }

    fn run_with(
        &mut self,
        plan: &Plan,
        opts: &RunOptions,
        on: &mut dyn FnMut(Progress),
    ) -> Summary {
        let fakes = self.fakes.clone();
        let loads = &mut self.loads;
        let mut load = |m: &ModelRef| -> Result<Box<dyn GenerationClient>, EngineError> {
            loads.push(m.name.clone());
            let i: usize = m.name[1..].parse().unwrap();
            if fakes[i].model_name() == "broken" {
                return Err(EngineError::Backend("no such weights".into()));
            }
            Ok(Box::new(Shared(fakes[i].clone())))
        };
        run(plan, &mut load, opts, on).unwrap()
    }

    fn run(&mut self, force: bool, retry_errors: bool) -> Summary {
        let plan = self.plan(force, retry_errors);
        self.run_with(&plan, &RunOptions::default(), &mut |_| {})
    }

    fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap()
    }
}

#[test]
fn each_model_loads_once_and_every_item_gets_md_and_sidecar() {
    let mut b = Bench::new(vec![
        vec![Script::text("Hello there.")],
        vec![Script::text("<think>Let me see.</think>Fine.")],
    ]);
    let s = b.run(false, false);
    assert_eq!(b.loads, ["m0", "m1"]);
    assert_eq!(
        (s.done(), s.skipped(), s.failed(), s.models_loaded()),
        (6, 0, 0, 2)
    );
    assert_eq!(b.files().len(), 12, "{:?}", b.files());
    assert_eq!(b.read("a--m0.md"), "Hello there.\n");
    let md = b.read("b--m1.md");
    assert!(
        md.starts_with("Fine.\n") && md.contains("## Reasoning\n\nLet me see."),
        "{md}"
    );

    let req = &b.fakes[0].requests()[0];
    let Prompt::Chat { messages, .. } = &req.prompt else {
        panic!("chat")
    };
    assert_eq!(messages[0].content, "Be brief.");
    assert_eq!(messages[1].content, "A X");
    assert_eq!(req.max_tokens, Some(50));

    let v: serde_json::Value = serde_json::from_str(&b.read("a--m0.json")).unwrap();
    assert_eq!(v["prompt"]["name"], "a");
    assert_eq!(v["prompt"]["rendered"], "A X");
    assert_eq!(v["prompt"]["system"], "Be brief.");
    assert_eq!(v["model"]["name"], "m0");
    assert!(v["model"]["sha256"].is_null(), "no file to hash");
    assert!(v["model"]["load_ms"].as_f64().is_some());
    assert_eq!(v["params"]["temperature"], 0.0);
    assert_eq!(v["params"]["max_tokens"], 50);
    // Every setting but the two prompt ones is in `params`, the seed as a number.
    for k in crate::batch::settings::keys() {
        if !["system", "template"].contains(&k) {
            assert!(!v["params"][k].is_null(), "{k}");
        }
    }
    assert!(v["params"]["seed"].as_u64().is_some());
    for k in [
        "prompt_tokens",
        "ttft_ms",
        "prefill_tok_s",
        "decode_tok_s",
        "output_tokens",
    ] {
        assert!(v["stats"][k].as_f64().is_some(), "{k}");
    }
    assert_eq!(v["stats"]["finish_reason"], "stop");
    assert_eq!(v["lmwb_version"], env!("CARGO_PKG_VERSION"));
    assert!(v["started_at"].as_str().unwrap().ends_with('Z'));
    assert!(v["finished_at"].as_str().unwrap() >= v["started_at"].as_str().unwrap());
    let v: serde_json::Value = serde_json::from_str(&b.read("b--m1.json")).unwrap();
    assert_eq!(v["reasoning"], true);

    // A rerun skips everything and loads nothing.
    b.loads.clear();
    let s = b.run(false, false);
    assert!(b.loads.is_empty());
    assert_eq!((s.done(), s.skipped(), s.models_loaded()), (0, 6, 0));
    // --force reruns everything.
    let s = b.run(true, false);
    assert_eq!((s.done(), s.skipped()), (6, 0));
}

#[test]
fn a_failure_leaves_error_txt_the_run_goes_on_and_retry_errors_reruns_only_it() {
    let mut b = Bench::new(vec![vec![
        Script::text("one"),
        Script::Fail("the backend broke".into()),
        Script::text("three"),
    ]]);
    let s = b.run(false, false);
    assert_eq!((s.done(), s.failed()), (2, 1));
    assert_eq!(s.failures[0].0, "b--m0");
    assert!(b.read("b--m0.error.txt").starts_with("the backend broke\n"));
    assert!(!b.files().contains(&"b--m0.md".to_string()));
    // A plain rerun leaves the failure alone.
    let s = b.run(false, false);
    assert_eq!((s.done(), s.skipped(), s.models_loaded()), (0, 3, 0));
    // --retry-errors reruns only the failed item; success removes the error file.
    let calls = b.fakes[0].calls();
    let s = b.run(false, true);
    assert_eq!((s.done(), s.skipped(), s.failed()), (1, 2, 0));
    assert_eq!(b.fakes[0].calls(), calls + 1);
    assert_eq!(b.read("b--m0.md"), "three\n");
    assert!(
        !b.files().iter().any(|f| f.ends_with(".error.txt")),
        "{:?}",
        b.files()
    );
}

#[test]
fn a_model_that_fails_to_load_fails_its_items_and_the_next_model_runs() {
    let mut b = Bench::new(vec![vec![Script::text("x")], vec![Script::text("y")]]);
    b.fakes[0] = Arc::new(FakeClient::new("broken", vec![]));
    let s = b.run(false, false);
    assert_eq!((s.done(), s.failed(), s.models_loaded()), (3, 3, 1));
    assert!(b.read("a--m0.error.txt").contains("no such weights"));
    assert_eq!(b.read("a--m1.md"), "y\n");
}

#[test]
fn the_watchdog_cancels_a_stalled_item_and_records_it() {
    let mut b = Bench::new(vec![vec![Script::text("slow reply")]]);
    b.fakes[0] = Arc::new(
        FakeClient::new("m0", vec![Script::text("slow reply")])
            .with_delay(Duration::from_millis(400)),
    );
    let plan = b.plan(false, false);
    let opts = RunOptions {
        stall_timeout: Duration::from_millis(100),
        ..RunOptions::default()
    };
    let t = Instant::now();
    let s = b.run_with(&plan, &opts, &mut |_| {});
    assert_eq!((s.done(), s.failed()), (0, 3));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let e = b.read("a--m0.error.txt");
    assert!(
        e.contains("stalled") && e.contains("--stall-timeout"),
        "{e}"
    );
    assert!(!b.files().iter().any(|f| f.ends_with(".md")));
}

#[test]
fn an_interrupt_cancels_the_current_item_writes_nothing_of_it_and_stops() {
    let mut b = Bench::new(vec![
        vec![Script::text("a b c d e f g h")],
        vec![Script::text("z")],
    ]);
    b.fakes[0] = Arc::new(
        FakeClient::new("m0", vec![Script::text("a b c d e f g h")])
            .with_delay(Duration::from_millis(20)),
    );
    let plan = b.plan(false, false);
    let opts = RunOptions::default();
    let stop = opts.interrupt.clone();
    let mut ends = 0;
    let s = b.run_with(&plan, &opts, &mut |p| match p {
        Progress::ItemEnd { .. } => ends += 1,
        // Ctrl-C in the middle of the second item.
        Progress::Tokens { tokens: 2, .. } if ends == 1 => stop.cancel(),
        _ => {}
    });
    assert!(s.interrupted);
    assert_eq!((s.done(), s.failed(), s.not_run()), (1, 0, 5));
    assert_eq!(b.loads, ["m0"], "the next model is not loaded");
    assert_eq!(b.files(), ["a--m0.json", "a--m0.md"]);
    // The rerun continues where it stopped.
    let s = b.run(false, false);
    assert_eq!((s.done(), s.skipped()), (5, 1));
}

#[test]
fn a_pause_finishes_the_current_item_writes_it_and_stops() {
    let mut b = Bench::new(vec![
        vec![Script::text("a b c d e f g h")],
        vec![Script::text("z")],
    ]);
    let plan = b.plan(false, false);
    let opts = RunOptions::default();
    let pause = opts.pause.clone();
    let mut live = String::new();
    let s = b.run_with(&plan, &opts, &mut |p| match p {
        // Pause asked in the middle of the second item: that item still completes.
        Progress::Tokens { tokens, text } => {
            live.push_str(text);
            if tokens == 2 && live.starts_with("a b c d e f g ha b") {
                pause.cancel();
            }
        }
        _ => {}
    });
    assert!(s.paused && !s.interrupted);
    assert_eq!((s.done(), s.failed(), s.not_run()), (2, 0, 4));
    assert!(live.starts_with("a b c d e f g h"), "{live}");
    assert_eq!(
        b.files(),
        ["a--m0.json", "a--m0.md", "b--m0.json", "b--m0.md"]
    );
    let s = b.run(false, false);
    assert_eq!((s.done(), s.skipped()), (4, 2));
}

#[test]
fn stale_temp_files_of_a_killed_run_are_removed() {
    let mut b = Bench::new(vec![vec![Script::text("x")]]);
    std::fs::write(b.dir.path().join(".lmwb-abc.tmp"), "half a fi").unwrap();
    b.run(false, false);
    assert!(
        !b.files().iter().any(|f| f.ends_with(".tmp")),
        "{:?}",
        b.files()
    );
}
