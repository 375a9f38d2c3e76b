//! The workbench's Bench tab driven headless by Actions, on fake models: the form, a run
//! through the same session `lmwb bench` uses (report folder under `runs_dir`), the live
//! chart and tables, cancel, and the errors it shows. Snapshots of the form and of
//! finished runs (built from fixed results, so nothing varies).

mod common;

use common::tui::{app_in, screen, BROKEN, MODEL, OTHER};
use insta::assert_snapshot;
use lmwb::bench::long::{self, Block, SummaryInput};
use lmwb::bench::report::BenchResults;
use lmwb::bench::standard::{TestKind, TestResult};
use lmwb::bench::stats::Summary;
use lmwb::client::fake::Script;
use lmwb::tui::action::{bindings, Action, BenchAction, Edit, Scope, Tab};
use lmwb::tui::app::{App, Msg};
use lmwb::tui::bench::{BenchMsg, FieldId, Mode, Outcome};
use lmwb::tui::field::FieldTarget;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SETTLE: Duration = Duration::from_secs(60);

fn pieces(n: usize) -> Vec<Script> {
    vec![Script::Reply((0..n).map(|i| format!("t{i} ")).collect())]
}

fn bench_app(runs: &Path, delay: Duration) -> App {
    let mut a = app_in(pieces(600), delay, runs);
    a.dispatch(Action::Show(Tab::Bench));
    a
}

fn act(a: &mut App, b: BenchAction) {
    a.dispatch(Action::Bench(b));
}

/// Put the cursor on `row` of the form.
fn go(a: &mut App, row: usize) {
    for _ in 0..20 {
        act(a, BenchAction::Prev);
    }
    for _ in 0..row {
        act(a, BenchAction::Next);
    }
}

/// The form row of field `f` (after the three models and the mode).
fn field_row(a: &App, f: FieldId) -> usize {
    4 + a
        .bench
        .form
        .mode
        .fields()
        .iter()
        .position(|&x| x == f)
        .unwrap()
}

/// Edit field `f` as a user does: move to it, Enter, clear, type, Enter.
fn set(a: &mut App, f: FieldId, text: &str) {
    go(a, field_row(a, f));
    act(a, BenchAction::Edit);
    assert_eq!(
        a.field.as_ref().map(|x| x.target),
        Some(FieldTarget::Bench(f as u8))
    );
    a.dispatch(Action::Edit(Edit::ClearLine));
    a.dispatch(Action::Edit(Edit::Paste(text.into())));
    a.dispatch(Action::FieldSubmit);
}

fn mode(a: &mut App, m: Mode) {
    while a.bench.form.mode != m {
        act(a, BenchAction::Mode);
    }
}

fn report_dir(a: &App) -> PathBuf {
    match &a.bench.outcome {
        Some(Outcome::Report(d)) => d.clone(),
        o => panic!("no report: {o:?}\n{}", screen(a, 120, 40)),
    }
}

fn failure(a: &App) -> String {
    match &a.bench.outcome {
        Some(Outcome::Failed(e)) => e.clone(),
        o => panic!("expected an error, got {o:?}"),
    }
}

#[test]
fn long_mode_charts_one_line_per_window_and_writes_the_report() {
    let runs = tempfile::tempdir().unwrap();
    let mut a = bench_app(runs.path(), Duration::ZERO);
    assert_eq!(a.bench.form.chosen(a.models.active.as_deref()), [MODEL]);
    mode(&mut a, Mode::Long);
    set(&mut a, FieldId::Windows, "32,64");
    set(&mut a, FieldId::LongGen, "128");
    set(&mut a, FieldId::Block, "16");
    assert!(a.field.is_none(), "every field took its text");
    act(&mut a, BenchAction::Run);
    assert!(a.bench.busy(), "the run is in the background");
    assert!(a.settle(SETTLE), "the benchmark did not finish");

    // The chart: one dataset per window (the unwindowed baseline added), a point per block.
    let windows: Vec<_> = a.bench.live.series.iter().map(|s| s.window).collect();
    assert_eq!(windows, [Some(32), Some(64), None]);
    for s in &a.bench.live.series {
        let x: Vec<f64> = s.points.iter().map(|p| p.0).collect();
        assert_eq!(x, (1..=8).map(|b| b as f64 * 16.0).collect::<Vec<_>>());
        assert!(s.points.iter().all(|p| p.1 > 0.0), "{s:?}");
        assert_eq!(s.model, MODEL);
    }
    let long: Vec<_> = a.bench.live.long.iter().map(|(_, l)| l.window).collect();
    assert_eq!(long, [Some(32), Some(64), None]);
    assert_eq!(a.bench.live.checks.len(), 4 + 4 + 1);

    let dir = report_dir(&a);
    assert_eq!(dir.parent().unwrap(), runs.path().join("bench"));
    for f in ["report.md", "results.json", "samples.csv", "tok_s.png"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let r: BenchResults =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    let m = &r.models[0];
    assert_eq!(m.model.name, MODEL);
    let loaded = a.models.load_ms.unwrap();
    assert!(
        (m.model.load_ms - loaded).abs() <= 1e-9 * loaded.max(1.0),
        "the loaded model is benchmarked as it is, not loaded again: {} vs {loaded}",
        m.model.load_ms
    );
    assert_eq!(m.long.len(), 3);
    assert_eq!(r.config.windows, [Some(32), Some(64)]);

    let s = screen(&a, 140, 50);
    for want in [
        "tok/s per block vs generated tokens",
        "max-kv-size 32",
        "max-kv-size 64",
        "max-kv-size none",
        "window",
        "tok/s last¼",
        "context respected",
        "report: ",
    ] {
        assert!(s.contains(want), "{want} missing:\n{s}");
    }
    assert!(s.contains(&dir.display().to_string()[..40]), "{s}");
}

#[test]
fn standard_mode_two_models_side_by_side_fill_the_table() {
    let runs = tempfile::tempdir().unwrap();
    let mut a = bench_app(runs.path(), Duration::ZERO);
    go(&mut a, 1);
    act(&mut a, BenchAction::Toggle);
    assert_eq!(
        a.bench.form.chosen(a.models.active.as_deref()),
        [MODEL, OTHER]
    );
    set(&mut a, FieldId::Prompt, "8");
    set(&mut a, FieldId::Gen, "4");
    set(&mut a, FieldId::Repetitions, "2");
    act(&mut a, BenchAction::Run);
    assert!(a.settle(SETTLE));
    let rows: Vec<(String, String)> = a
        .bench
        .live
        .tests
        .iter()
        .map(|(m, t)| (m.clone(), t.test.clone()))
        .collect();
    let want: Vec<(String, String)> = [
        (MODEL, "pp8"),
        (MODEL, "tg4"),
        (OTHER, "pp8"),
        (OTHER, "tg4"),
    ]
    .iter()
    .map(|(m, t)| (m.to_string(), t.to_string()))
    .collect();
    assert_eq!(rows, want);
    assert!(a.bench.live.tests.iter().all(|(_, t)| t.tok_s.n == 2));
    let dir = report_dir(&a);
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains(MODEL) && md.contains(OTHER));
    let s = screen(&a, 120, 40);
    assert!(
        s.contains("pp8") && s.contains("tg4") && s.contains(" ± "),
        "{s}"
    );
    assert!(s.contains(OTHER), "{s}");
}

#[test]
fn latency_mode_shows_ttft_tpot_itl_rows() {
    let runs = tempfile::tempdir().unwrap();
    let mut a = bench_app(runs.path(), Duration::ZERO);
    mode(&mut a, Mode::Latency);
    set(&mut a, FieldId::Requests, "3");
    set(&mut a, FieldId::Prompt, "8");
    set(&mut a, FieldId::Gen, "4");
    act(&mut a, BenchAction::Run);
    assert!(a.settle(SETTLE));
    report_dir(&a);
    let (_, l) = &a.bench.live.latency[0];
    assert_eq!(
        (l.samples.len(), l.input_tokens, l.output_tokens),
        (3, 8, 4)
    );
    let s = screen(&a, 120, 40);
    for m in ["TTFT", "TPOT", "ITL", "E2E", "p50", "p90", "p99"] {
        assert!(s.contains(m), "{m} missing:\n{s}");
    }
}

#[test]
fn no_model_chosen_is_an_error_naming_the_key() {
    let runs = tempfile::tempdir().unwrap();
    let mut a = bench_app(runs.path(), Duration::ZERO);
    go(&mut a, 0);
    act(&mut a, BenchAction::Toggle); // drops the preselected loaded model
    act(&mut a, BenchAction::Run);
    assert!(!a.bench.busy());
    let e = a.bench.error.clone().unwrap();
    assert_eq!(
        e,
        "no model chosen: move to a model in the list and press space to choose it"
    );
    assert!(screen(&a, 120, 30).contains("no model chosen"));
}

#[test]
fn bad_window_text_opens_the_field_again_with_the_parsers_error() {
    let runs = tempfile::tempdir().unwrap();
    let mut a = bench_app(runs.path(), Duration::ZERO);
    mode(&mut a, Mode::Long);
    set(&mut a, FieldId::Windows, "32,big");
    let f = a.field.as_ref().expect("the field is open again");
    assert_eq!(f.target, FieldTarget::Bench(FieldId::Windows as u8));
    assert_eq!(f.text(), "32,big");
    assert_eq!(
        f.hint.as_deref(),
        Some("`big` is not a number of KV entries or `none`")
    );
    assert_eq!(a.bench.form.windows, [Some(512)], "the form is unchanged");
    let s = screen(&a, 120, 30);
    assert!(
        s.contains("`big` is not a number of KV entries or `none`"),
        "{s}"
    );
    a.dispatch(Action::FieldCancel);
    set(&mut a, FieldId::LongGen, "0");
    assert_eq!(
        a.field.as_ref().and_then(|f| f.hint.clone()).as_deref(),
        Some("`0`: generated tokens must be a number, at least 1")
    );
}

#[test]
fn a_broken_model_or_a_window_beyond_the_context_is_shown_with_what_to_change() {
    let runs = tempfile::tempdir().unwrap();
    let mut a = bench_app(runs.path(), Duration::ZERO);
    go(&mut a, 0);
    act(&mut a, BenchAction::Toggle);
    go(&mut a, 2);
    act(&mut a, BenchAction::Edit); // Enter on a model toggles it too
    assert_eq!(a.bench.form.chosen(None), [BROKEN]);
    act(&mut a, BenchAction::Run);
    assert!(a.settle(SETTLE));
    assert_eq!(
        failure(&a),
        "cannot load broken-model.q4_0: tensor blk.0.attn_q.weight is truncated: the file is incomplete; download it again"
    );
    assert!(screen(&a, 160, 30).contains("error: cannot load broken-model.q4_0"));

    go(&mut a, 2);
    act(&mut a, BenchAction::Toggle);
    go(&mut a, 0);
    act(&mut a, BenchAction::Toggle);
    mode(&mut a, Mode::Long);
    set(&mut a, FieldId::Windows, "10000");
    act(&mut a, BenchAction::Run);
    assert!(a.settle(SETTLE));
    let e = failure(&a);
    assert!(
        e.contains("larger than the model's context of 8192 tokens; use at most 8192"),
        "{e}"
    );
    assert!(
        !runs.path().join("bench").exists(),
        "no report for failed runs"
    );
}

#[test]
fn x_cancels_a_run_mid_generation_and_nothing_is_written() {
    let runs = tempfile::tempdir().unwrap();
    let mut a = bench_app(runs.path(), Duration::from_millis(5));
    mode(&mut a, Mode::Long);
    set(&mut a, FieldId::Windows, "64");
    set(&mut a, FieldId::LongGen, "500");
    set(&mut a, FieldId::Block, "16");
    act(&mut a, BenchAction::Run);
    let t = Instant::now();
    while a.bench.live.series.is_empty() && t.elapsed() < SETTLE {
        if let Some(m) = a.next_msg(Duration::from_millis(50)) {
            a.handle(m);
        }
    }
    assert!(a.bench.busy(), "still running after the first block");
    assert!(screen(&a, 120, 40).contains("running"));
    act(&mut a, BenchAction::Run);
    assert!(a
        .bench
        .error
        .as_deref()
        .unwrap()
        .contains("press x to cancel"));
    act(&mut a, BenchAction::Cancel);
    assert!(
        a.settle(Duration::from_secs(10)),
        "the cancel did not stop the run"
    );
    assert_eq!(a.bench.outcome, Some(Outcome::Cancelled));
    assert!(t.elapsed() < Duration::from_secs(2) * 5);
    assert!(!runs.path().join("bench").exists(), "nothing written");
    assert!(screen(&a, 120, 40).contains("cancelled: no report was written"));
}

#[test]
fn footer_and_help_list_every_bench_key() {
    let runs = tempfile::tempdir().unwrap();
    let mut a = bench_app(runs.path(), Duration::ZERO);
    let s = screen(&a, 220, 30);
    let footer = s.lines().rev().find(|l| !l.is_empty()).unwrap();
    for (keys, what) in [
        ("up/k/down/j", "move"),
        ("space", "choose model"),
        ("enter", "edit"),
        ("m", "mode"),
        ("r", "run"),
        ("x", "cancel"),
    ] {
        assert!(
            footer.contains(&format!(" {keys}  {what} ")),
            "{keys} {what}: {footer}"
        );
    }
    a.dispatch(Action::Help);
    let mut help = String::new();
    for _ in 0..10 {
        help.push_str(&screen(&a, 100, 60));
        a.dispatch(Action::Wheel(10));
    }
    let bench: Vec<_> = bindings()
        .into_iter()
        .filter(|b| b.scope == Scope::Bench)
        .collect();
    assert_eq!(bench.len(), 7);
    for b in bench {
        assert!(help.contains(b.about), "{} missing from help", b.about);
    }
}

// ---- snapshots ----

/// A finished long run with fixed figures: windows 64 and none over 256 tokens.
fn finished_long(a: &mut App) {
    mode(a, Mode::Long);
    set(a, FieldId::Windows, "64");
    set(a, FieldId::LongGen, "256");
    set(a, FieldId::Block, "32");
    a.bench.run_mode = Mode::Long;
    a.bench.run_config = Some(a.bench.form.config());
    let send = |a: &mut App, m: BenchMsg| a.handle(Msg::Bench(m));
    send(a, BenchMsg::Model(MODEL.into()));
    let mut runs = Vec::new();
    for (window, slow) in [(Some(64), 0.0), (None, 0.02)] {
        // 10 ms per token, slowing by `slow` ms per token without a window.
        let mut t = vec![50.0];
        for i in 1..256 {
            t.push(t[i - 1] + 10.0 + slow * i as f64);
        }
        let blocks: Vec<Block> = (1..=8)
            .map(|b| Block {
                start: (b - 1) * 32,
                end: b * 32,
                tok_s: long::rate(&t, (b - 1) * 32, b * 32).unwrap(),
                t_ms: t[b * 32 - 1],
                rss_bytes: (200 << 20)
                    + if window.is_none() {
                        (b as u64) << 20
                    } else {
                        0
                    },
                cpu_percent: None,
            })
            .collect();
        for b in &blocks {
            send(
                a,
                BenchMsg::Block {
                    window,
                    block: b.clone(),
                },
            );
        }
        let r = long::summarize(SummaryInput {
            window,
            prompt_tokens: 16,
            requested: 256,
            fill_at: 48,
            arrivals: &t,
            blocks,
            rss_start_bytes: 190 << 20,
            rss_end_bytes: 210 << 20,
            kv_peak: Some(window.unwrap_or(272)),
            finish_reason: "length",
            total_ms: t[255],
        });
        send(a, BenchMsg::Long(r.clone()));
        runs.push(r);
    }
    send(a, BenchMsg::Checks(long::checks(&runs, 8192)));
    send(
        a,
        BenchMsg::Done(Outcome::Report(
            "/home/me/.lmwb/runs/bench/20250101-120000-fake-llama-135m.q4_1".into(),
        )),
    );
}

fn summary(mean: f64, sd: f64) -> Summary {
    Summary {
        n: 2,
        mean,
        sd,
        min: mean - sd,
        p50: mean,
        p90: mean + sd,
        p99: mean + sd,
        max: mean + sd,
    }
}

#[test]
fn snapshot_form_before_a_run() {
    let runs = tempfile::tempdir().unwrap();
    let mut a = bench_app(runs.path(), Duration::ZERO);
    assert_snapshot!("bench_form_standard", screen(&a, 100, 30));
    mode(&mut a, Mode::Long);
    let row = field_row(&a, FieldId::Windows);
    go(&mut a, row);
    act(&mut a, BenchAction::Edit);
    assert_snapshot!("bench_form_long_editing_windows", screen(&a, 100, 30));
}

#[test]
fn snapshot_finished_long_run() {
    let runs = tempfile::tempdir().unwrap();
    let mut a = bench_app(runs.path(), Duration::ZERO);
    finished_long(&mut a);
    assert_snapshot!("bench_finished_long", screen(&a, 120, 40));
}

#[test]
fn snapshot_finished_standard_run_and_an_error() {
    let runs = tempfile::tempdir().unwrap();
    let mut a = bench_app(runs.path(), Duration::ZERO);
    a.bench.run_mode = Mode::Standard;
    a.handle(Msg::Bench(BenchMsg::Model(MODEL.into())));
    for (kind, n, mean, sd) in [
        (TestKind::Pp, 512, 812.25, 10.5),
        (TestKind::Tg, 128, 54.5, 0.75),
    ] {
        let t = TestResult {
            test: lmwb::bench::standard::label(kind, n, 0),
            kind,
            tokens: n,
            depth: 0,
            samples_tok_s: vec![mean - sd, mean + sd],
            samples_ms: vec![1.0, 1.0],
            tok_s: summary(mean, sd),
        };
        a.handle(Msg::Bench(BenchMsg::Test(t)));
    }
    a.handle(Msg::Bench(BenchMsg::Model(OTHER.into())));
    a.handle(Msg::Bench(BenchMsg::Done(Outcome::Failed(format!(
        "{OTHER}: pp512 needs 512 tokens but the model's context is 256; use smaller sizes"
    )))));
    assert_snapshot!("bench_standard_then_error", screen(&a, 110, 30));
}
