use super::*;
use crate::config::Config;

fn spec(src: &str) -> ValidSpec {
    ValidSpec::parse(Path::new("/sets/p.toml"), src, None).unwrap()
}

fn models(names: &[&str]) -> Vec<ModelRef> {
    names
        .iter()
        .map(|n| ModelRef::local(*n, PathBuf::from(format!("/m/{n}.gguf"))))
        .collect()
}

fn base() -> Settings {
    Settings::from_config(&Config::defaults())
}

const SET: &str = "[defaults]\ntemperature = 0\nmax_tokens = 8\n[prompts]\na = \"A\"\nb = { text = \"B\", max_tokens = 3 }\nc = \"C\"\n";

#[test]
fn items_are_grouped_by_model_in_order_with_layered_settings() {
    let dir = tempfile::tempdir().unwrap();
    let opts = PlanOptions {
        cli: Overrides {
            seed: Some(9),
            ..Overrides::default()
        },
        ..PlanOptions::default()
    };
    let p = Plan::build(
        &spec(SET),
        models(&["m2", "m1"]),
        &base(),
        dir.path().into(),
        &opts,
    )
    .unwrap();
    let got: Vec<(usize, &str)> = p.items.iter().map(|i| (i.model, i.stem.as_str())).collect();
    assert_eq!(
        got,
        [
            (0, "a--m2"),
            (0, "b--m2"),
            (0, "c--m2"),
            (1, "a--m1"),
            (1, "b--m1"),
            (1, "c--m1")
        ]
    );
    assert_eq!(p.items[0].settings.max_tokens, 8);
    assert_eq!(p.items[1].settings.max_tokens, 3);
    assert!(p.items.iter().all(|i| i.settings.sampling.seed == Some(9)));
    assert!(p
        .items
        .iter()
        .all(|i| i.settings.sampling.temperature == 0.0));
    assert_eq!((p.to_run(), p.models_to_load()), (6, 2));
    assert!(
        p.headline()
            .contains("6 items (3 prompts × 2 models), 6 to run, 0 to skip; 2 models to load"),
        "{}",
        p.headline()
    );
}

#[test]
fn what_exists_decides_run_or_skip() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("a--m1.md"), "done").unwrap();
    std::fs::write(d.join("b--m1.error.txt"), "boom").unwrap();
    std::fs::write(d.join("c--m1.json"), "{}").unwrap(); // a sidecar alone is not an output
    let build = |force, retry_errors| {
        let opts = PlanOptions {
            force,
            retry_errors,
            ..PlanOptions::default()
        };
        Plan::build(&spec(SET), models(&["m1"]), &base(), d.into(), &opts).unwrap()
    };
    let actions = |p: &Plan| p.items.iter().map(|i| i.action).collect::<Vec<_>>();
    use Action::{Run, Skip};
    let p = build(false, false);
    assert_eq!(actions(&p), [Skip, Skip, Run]);
    let text = p.describe();
    assert!(text.contains("skip  a--m1.md  (done)"), "{text}");
    assert!(
        text.contains("skip  b--m1.md  (failed before; --retry-errors reruns it)"),
        "{text}"
    );
    assert!(text.contains("run   c--m1.md\n"), "{text}");
    assert!(p.headline().contains("1 failed before"), "{}", p.headline());
    assert_eq!(actions(&build(false, true)), [Skip, Run, Run]);
    assert_eq!(actions(&build(true, false)), [Run, Run, Run]);
    // Everything done: no model to load.
    std::fs::write(d.join("b--m1.md"), "done").unwrap();
    std::fs::write(d.join("c--m1.md"), "done").unwrap();
    let p = build(false, true);
    assert_eq!((p.to_run(), p.models_to_load()), (0, 0));
}

#[test]
fn colliding_names_are_renamed_and_the_plan_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec("[prompts]\n\"a/b\" = \"1\"\n\"a:b\" = \"2\"\nCON = \"3\"\n\"..\" = \"4\"\n");
    let p = Plan::build(
        &s,
        models(&["m"]),
        &base(),
        dir.path().into(),
        &PlanOptions::default(),
    )
    .unwrap();
    let stems: Vec<&str> = p.items.iter().map(|i| i.stem.as_str()).collect();
    assert_eq!(stems[0], "a_b--m");
    assert!(stems[1].starts_with("a_b--m~"), "{stems:?}");
    assert_eq!(stems[2], "_--m");
    assert!(stems[3].starts_with("_--m~"), "{stems:?}");
    assert_eq!(p.notes.len(), 2, "{:?}", p.notes);
    assert!(
        p.describe().contains("note: prompt `a:b`"),
        "{}",
        p.describe()
    );
    for i in &p.items {
        assert_eq!(i.files.md.parent(), Some(dir.path()), "stays in the folder");
    }
}

#[test]
fn bad_values_point_at_the_line_or_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let build = |src: &str, cli: Overrides| {
        let opts = PlanOptions {
            cli,
            ..PlanOptions::default()
        };
        Plan::build(
            &spec(src),
            models(&["m"]),
            &base(),
            dir.path().into(),
            &opts,
        )
        .unwrap_err()
        .to_string()
    };
    let e = build(
        "[defaults]\nmax_tokens = 3\ntop_p = 2.0\n[prompts]\na = \"a\"\n",
        Overrides::default(),
    );
    assert!(e.starts_with("/sets/p.toml:3: [defaults] top_p"), "{e}");
    let e = build(
        "[prompts]\n\na = { text = \"a\", temperature = -1 }\n",
        Overrides::default(),
    );
    assert!(
        e.starts_with("/sets/p.toml:3: [prompts] (`a`) temperature"),
        "{e}"
    );
    let e = build(
        "[defaults]\ntemplate = \"nosuch\"\n[prompts]\na = \"a\"\n",
        Overrides::default(),
    );
    assert!(
        e.starts_with("/sets/p.toml:2: [defaults] template") && e.contains("nosuch"),
        "{e}"
    );
    let e = build(
        "[prompts]\na = \"a\"\n",
        Overrides {
            min_p: Some(3.0),
            ..Overrides::default()
        },
    );
    assert!(e.starts_with("/sets/p.toml: --min-p"), "{e}");
}
