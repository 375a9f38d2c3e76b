//! The workbench's Batch tab, driven headless by Actions on fake models: open a prompt set
//! (with completion), see the plan, run, pause, cancel, retry, open an output.

mod common;

use common::tui::{screen, MODEL, OTHER};
use insta::assert_snapshot;
use lmwb::client::fake::Script;
use lmwb::tui::action::{Action, BatchAction, Edit, Tab};
use lmwb::tui::app::App;
use lmwb::tui::batch::ItemState;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A folder for one test: the prompt set and `runs/` in it. Fixed relative names (tests
/// run in the crate's folder), so screens show the same paths on every machine.
fn folder(name: &str) -> PathBuf {
    let d = PathBuf::from(format!("target/tui-batch/{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn app_in(dir: &Path, scripts: Vec<Script>, delay: Duration) -> App {
    let mut a = common::tui::app_in(scripts, delay, &dir.join("runs"));
    a.dispatch(Action::Show(Tab::Batch));
    a
}

const SET: &str = "name = \"demo\"\nmodels = [\"fake-llama-135m.q4_1\", \"fake-qwen-500m.q8_0\"]\n[defaults]\nmax_tokens = 20\n[prompts]\nhello = \"Say hello.\"\nbye = \"Say bye.\"\n";

fn write_set(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("set.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn open(a: &mut App, path: &Path) {
    a.dispatch(Action::Batch(BatchAction::Open));
    assert!(a.field.is_some(), "o opens the path field");
    a.dispatch(Action::Edit(Edit::ClearLine));
    a.dispatch(Action::Edit(Edit::Paste(path.display().to_string())));
    a.dispatch(Action::FieldSubmit);
}

fn out_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("runs/batch/demo"))
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn wait_until(a: &mut App, what: &str, ok: impl Fn(&App) -> bool) {
    let end = Instant::now() + Duration::from_secs(20);
    while !ok(a) {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        if let Some(m) = a.next_msg(Duration::from_millis(50)) {
            a.handle(m);
        }
    }
}

/// The screen without the gauges' two lines (live readings of timing and memory).
fn masked(a: &App, _dir: &Path) -> String {
    let s = screen(a, 110, 24);
    s.lines()
        .enumerate()
        .map(|(i, l)| if i == 1 || i == 2 { "<gauges>" } else { l })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_two_model_set_plans_runs_and_writes_every_output() {
    let dir = folder("run");
    let set = write_set(&dir, SET);
    let mut a = app_in(
        &dir,
        vec![Script::text("Hello there, friend.")],
        Duration::ZERO,
    );
    // One output exists already: the plan skips it.
    std::fs::create_dir_all(dir.join("runs/batch/demo")).unwrap();
    std::fs::write(
        dir.join("runs/batch/demo/bye--fake-llama-135m.q4_1.md"),
        "Bye.\n",
    )
    .unwrap();
    open(&mut a, &set);
    let plan = a.batch.plan.as_ref().expect("a plan");
    assert_eq!(plan.items.len(), 4, "2 prompts × 2 models");
    assert_eq!(
        a.batch.states,
        [
            ItemState::Queued,
            ItemState::Skipped,
            ItemState::Queued,
            ItemState::Queued
        ]
    );
    assert_snapshot!("batch_plan", masked(&a, &dir));

    a.dispatch(Action::Batch(BatchAction::Run));
    assert!(a.batch.busy());
    assert!(a.settle(Duration::from_secs(20)), "the batch finished");
    assert!(
        a.batch
            .states
            .iter()
            .enumerate()
            .all(|(i, s)| matches!(s, ItemState::Done { tokens: 6, .. }) || i == 1),
        "{:?}",
        a.batch.states
    );
    let status = a.batch.status.clone().unwrap();
    assert!(
        status.starts_with("finished") && status.contains("3 done, 1 skipped, 0 failed"),
        "{status}"
    );
    assert_eq!(
        out_files(&dir),
        [
            "bye--fake-llama-135m.q4_1.md",
            "bye--fake-qwen-500m.q8_0.json",
            "bye--fake-qwen-500m.q8_0.md",
            "hello--fake-llama-135m.q4_1.json",
            "hello--fake-llama-135m.q4_1.md",
            "hello--fake-qwen-500m.q8_0.json",
            "hello--fake-qwen-500m.q8_0.md",
        ]
    );
    let md =
        std::fs::read_to_string(dir.join("runs/batch/demo/hello--fake-qwen-500m.q8_0.md")).unwrap();
    assert_eq!(md, "Hello there, friend.\n");
    // The same metrics lines `lmwb batch` writes.
    let metrics: Vec<_> = std::fs::read_dir(dir.join("runs/metrics"))
        .unwrap()
        .flatten()
        .collect();
    let text = std::fs::read_to_string(metrics[0].path()).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.contains("\"command\":\"batch\""), "{text}");
    let shown = masked(&a, &dir);
    assert!(shown.contains("finished in"), "{shown}");

    // Run again: everything exists, nothing runs.
    a.dispatch(Action::Batch(BatchAction::Run));
    assert!(!a.batch.busy());
    assert!(
        a.batch
            .status
            .as_deref()
            .unwrap()
            .starts_with("nothing to run"),
        "{:?}",
        a.batch.status
    );
}

#[test]
fn a_failed_item_shows_its_error_and_retry_reruns_only_it() {
    let dir = folder("retry");
    let set = write_set(
        &dir,
        "name = \"demo\"\nmodels = [\"fake-llama-135m.q4_1\"]\n[prompts]\nhello = \"Say hello.\"\nbye = \"Say bye.\"\n",
    );
    // The model's first request fails, the later ones answer.
    let mut a = app_in(
        &dir,
        vec![
            Script::Fail("the backend fell over".into()),
            Script::text("Fine."),
        ],
        Duration::ZERO,
    );
    open(&mut a, &set);
    a.dispatch(Action::Batch(BatchAction::Run));
    assert!(a.settle(Duration::from_secs(20)));
    assert!(
        matches!(&a.batch.states[0], ItemState::Failed { error, before: false } if error.contains("the backend fell over")),
        "{:?}",
        a.batch.states
    );
    assert!(matches!(a.batch.states[1], ItemState::Done { .. }));
    assert!(out_files(&dir).contains(&"hello--fake-llama-135m.q4_1.error.txt".to_string()));
    let shown = screen(&a, 110, 24);
    assert!(shown.contains("✗ failed"), "{shown}");
    assert!(shown.contains("the backend fell over"), "{shown}");

    // Planned again, the failure from before is shown and skipped until retried.
    open(&mut a, &set);
    assert!(matches!(
        &a.batch.states[0],
        ItemState::Failed { before: true, .. }
    ));
    a.dispatch(Action::Batch(BatchAction::Run));
    assert!(a.batch.status.as_deref().unwrap().contains("f retries"));
    a.dispatch(Action::Batch(BatchAction::Retry));
    assert!(a.settle(Duration::from_secs(20)));
    assert!(matches!(a.batch.states[0], ItemState::Done { .. }));
    assert!(matches!(a.batch.states[1], ItemState::Skipped));
    let files = out_files(&dir);
    assert!(
        files.contains(&"hello--fake-llama-135m.q4_1.md".to_string()),
        "{files:?}"
    );
    assert!(
        !files.iter().any(|f| f.ends_with(".error.txt")),
        "{files:?}"
    );
}

const LONG: &str = "one two three four five six seven eight nine ten eleven twelve";

/// The two-model set running slowly, its first item two tokens in.
fn streaming(dir: &Path) -> App {
    let set = write_set(dir, SET);
    let mut a = app_in(dir, vec![Script::text(LONG)], Duration::from_millis(15));
    open(&mut a, &set);
    a.dispatch(Action::Batch(BatchAction::Run));
    wait_until(
        &mut a,
        "the first item to stream",
        |a| matches!(a.batch.states[0], ItemState::Running { tokens } if tokens >= 2),
    );
    a
}

#[test]
fn pause_finishes_the_current_item_and_run_resumes() {
    let dir = folder("pause");
    let mut a = streaming(&dir);
    // The live output streams in the side panel.
    let live = a.batch.live.as_ref().map(|(_, t)| t.raw.clone()).unwrap();
    assert!(LONG.starts_with(&live) && !live.is_empty(), "{live}");
    assert!(screen(&a, 110, 24).contains("one two"));
    a.dispatch(Action::Batch(BatchAction::Pause));
    assert!(a.settle(Duration::from_secs(20)));
    assert!(
        matches!(a.batch.states[0], ItemState::Done { .. }),
        "{:?}",
        a.batch.states
    );
    assert_eq!(
        a.batch.states[1..],
        [ItemState::NotRun, ItemState::NotRun, ItemState::NotRun]
    );
    assert!(a.batch.status.as_deref().unwrap().starts_with("paused"));
    assert_eq!(
        std::fs::read_to_string(dir.join("runs/batch/demo/hello--fake-llama-135m.q4_1.md"))
            .unwrap(),
        format!("{LONG}\n"),
        "the item in flight was finished and written whole"
    );
    a.dispatch(Action::Batch(BatchAction::Run));
    assert!(a.settle(Duration::from_secs(30)));
    assert_eq!(a.batch.states[0], ItemState::Skipped);
    assert!(a.batch.states[1..]
        .iter()
        .all(|s| matches!(s, ItemState::Done { .. })));
    assert_eq!(out_files(&dir).len(), 8);
}

#[test]
fn cancel_drops_the_current_item_and_writes_nothing_of_it() {
    let dir = folder("cancel");
    let mut a = streaming(&dir);
    a.dispatch(Action::Batch(BatchAction::Cancel));
    assert!(a.settle(Duration::from_secs(20)));
    assert!(
        a.batch.states.iter().all(|s| *s == ItemState::NotRun),
        "{:?}",
        a.batch.states
    );
    assert!(a.batch.status.as_deref().unwrap().starts_with("cancelled"));
    assert_eq!(out_files(&dir), Vec::<String>::new());
}

#[test]
fn enter_opens_an_output_with_the_chat_rendering() {
    let dir = folder("view");
    let set = write_set(
        &dir,
        "name = \"demo\"\nmodels = [\"fake-llama-135m.q4_1\"]\n[prompts]\nhello = \"Say hello.\"\n",
    );
    let reply = "<think>The user wants a greeting.</think>**Hello** there.\n\n- one\n- two";
    let mut a = app_in(&dir, vec![Script::text(reply)], Duration::ZERO);
    open(&mut a, &set);
    a.dispatch(Action::Batch(BatchAction::View));
    assert!(a.batch.view.is_none(), "no output yet");
    assert!(a.batch.status.as_deref().unwrap().contains("no output yet"));
    a.dispatch(Action::Batch(BatchAction::Run));
    assert!(a.settle(Duration::from_secs(20)));
    a.batch.live = None; // the view reads the file, as after a restart
    a.dispatch(Action::Batch(BatchAction::View));
    let view = a.batch.view.as_ref().expect("the output is open");
    let turn = view.turn.as_ref().unwrap();
    assert_eq!(turn.answer().trim(), "**Hello** there.\n\n- one\n- two");
    assert!(turn.has_reasoning());
    let shown = masked(&a, &dir);
    assert!(shown.contains("The user wants a greeting."), "{shown}");
    assert!(
        !shown.contains("**Hello**"),
        "markdown is rendered: {shown}"
    );
    assert_snapshot!("batch_output_view", shown);
    a.dispatch(Action::Batch(BatchAction::Close));
    assert!(a.batch.view.is_none());
}

#[test]
fn the_path_field_completes_and_bad_sets_say_what_is_wrong() {
    let dir = folder("errors");
    write_set(&dir, SET);
    std::fs::write(dir.join("broken.toml"), "[prompts\n").unwrap();
    std::fs::write(
        dir.join("unknown.toml"),
        "models = [\"no-such-model\"]\n[prompts]\na = \"x\"\n",
    )
    .unwrap();
    let mut a = app_in(&dir, vec![Script::text("x")], Duration::ZERO);
    a.dispatch(Action::Batch(BatchAction::Open));
    a.dispatch(Action::Edit(Edit::Paste(format!("{}/se", dir.display()))));
    a.dispatch(Action::FieldComplete);
    assert_eq!(
        a.field.as_ref().unwrap().text(),
        format!("{}/set.toml", dir.display())
    );
    a.dispatch(Action::Edit(Edit::ClearLine));
    a.dispatch(Action::Edit(Edit::Paste(format!("{}/", dir.display()))));
    a.dispatch(Action::FieldComplete);
    let f = a.field.as_ref().unwrap();
    assert_eq!(f.candidates, ["broken.toml", "set.toml", "unknown.toml"]);
    assert_snapshot!("batch_path_completion", masked(&a, &dir));
    a.dispatch(Action::FieldCancel);
    assert!(a.field.is_none());

    open(&mut a, &dir.join("broken.toml"));
    let e = a.batch.error.clone().unwrap();
    assert!(e.contains("broken.toml:1:"), "{e}");
    open(&mut a, &dir.join("unknown.toml"));
    let e = a.batch.error.clone().unwrap();
    assert!(e.contains("no-such-model"), "{e}");
    open(&mut a, &dir.join("missing.toml"));
    let e = a.batch.error.clone().unwrap();
    assert!(e.contains("missing.toml"), "{e}");
    assert!(screen(&a, 110, 24).contains("missing.toml"));
    a.dispatch(Action::Batch(BatchAction::Run));
    assert!(!a.batch.busy());
}

#[test]
fn colliding_names_are_flagged_and_the_set_defaults_to_the_loaded_model() {
    let dir = folder("collide");
    let set = write_set(
        &dir,
        "name = \"demo\"\n[prompts]\n\"a/b\" = \"1\"\n\"a:b\" = \"2\"\n",
    );
    let mut a = app_in(&dir, vec![Script::text("x")], Duration::ZERO);
    open(&mut a, &set);
    let plan = a.batch.plan.as_ref().unwrap();
    assert_eq!(plan.models.len(), 1);
    assert_eq!(
        plan.models[0].name, MODEL,
        "no models in the set: the loaded one"
    );
    assert!(plan.items[1].renamed.is_some());
    let shown = screen(&a, 110, 24);
    assert!(shown.contains("⚠ renamed"), "{shown}");
    assert!(shown.contains("note: prompt `a:b`"), "{shown}");
    let _ = OTHER;
}
