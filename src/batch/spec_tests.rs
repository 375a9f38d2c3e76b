use super::*;

fn parse(src: &str) -> Result<ValidSpec, SpecError> {
    ValidSpec::parse(Path::new("/sets/p.toml"), src, None)
}

fn err(src: &str) -> SpecError {
    parse(src).expect_err("should be refused")
}

const PRODUCT_EXAMPLE: &str = r#"name = "adam"
models = ["smollm2-135m", "qwen2.5-0.5b"]

[defaults]
temperature = 0.0
max_tokens = 512
system = "You are a careful editor."

[vars]
text = "An article."

[prompts]
think = "Think step by step before answering."
tldr = "Summarize in one paragraph:\n\n{{text}}"
humanize = "Rewrite this so it reads naturally:\n\n{{text}}"

[run]
prompts = ["think,tldr", "tldr", "think,humanize"]
"#;

#[test]
fn the_product_example_parses() {
    let s = parse(PRODUCT_EXAMPLE).unwrap();
    assert_eq!(s.name, "adam");
    assert_eq!(
        s.models,
        [
            ModelSpec {
                spec: "smollm2-135m".into(),
                line: Some(2)
            },
            ModelSpec {
                spec: "qwen2.5-0.5b".into(),
                line: Some(2)
            }
        ]
    );
    assert_eq!(s.defaults.temperature, Some(0.0));
    assert_eq!(
        s.defaults.system.as_deref(),
        Some("You are a careful editor.")
    );
    let names: Vec<&str> = s.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["think,tldr", "tldr", "think,humanize"]);
    assert_eq!(
        s.entries[0].prompt,
        "Think step by step before answering.\n\nSummarize in one paragraph:\n\nAn article."
    );
    assert_eq!(s.entries[0].parts, ["think", "tldr"]);
    assert_eq!(s.entries[1].line, 18);
    assert_eq!(s.line_of("temperature", &s.entries[1]), Some(5));
    assert_eq!(s.line_of("top_k", &s.entries[1]), None);
}

#[test]
fn without_run_every_prompt_runs_in_file_order_and_name_defaults_to_the_stem() {
    let s = parse("[prompts]\nzeta = \"z\"\nalpha = \"a\"\n").unwrap();
    assert_eq!(s.name, "p");
    let names: Vec<&str> = s.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["zeta", "alpha"]);
    assert!(s.models.is_empty());
}

#[test]
fn prompt_tables_carry_their_own_settings_later_parts_winning() {
    let s = parse(
        "[prompts]\na = { text = \"A\", temperature = 0.5, max_tokens = 9 }\nb = { text = \"B\", temperature = 0.1 }\n[run]\nprompts = [\"a,b\", \"b , a\"]\n",
    )
    .unwrap();
    assert_eq!(s.entries[0].overrides.temperature, Some(0.1));
    assert_eq!(s.entries[0].overrides.max_tokens, Some(9));
    assert_eq!(s.entries[1].overrides.temperature, Some(0.5));
    assert_eq!(s.entries[1].name, "b,a");
    assert_eq!(s.entries[1].prompt, "B\n\nA");
    assert_eq!(s.line_of("temperature", &s.entries[0]), Some(5));
}

#[test]
fn text_from_the_command_line_replaces_the_var_and_files_are_relative_to_the_toml() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("inputs")).unwrap();
    std::fs::write(dir.path().join("inputs/a.md"), "from file").unwrap();
    let f = dir.path().join("set.toml");
    std::fs::write(
        &f,
        "[vars]\ntext = { file = \"inputs/a.md\" }\nother = { file = \"inputs/a.md\" }\n[prompts]\np = \"{{text}}|{{other}}\"\n",
    )
    .unwrap();
    let s = ValidSpec::load(&f, None).unwrap();
    assert_eq!(s.entries[0].prompt, "from file|from file");
    let s = ValidSpec::load(&f, Some("from cli".into())).unwrap();
    assert_eq!(s.entries[0].prompt, "from cli|from file");
    // --text makes an unreadable [vars].text irrelevant.
    std::fs::write(
        &f,
        "[vars]\ntext = { file = \"gone.md\" }\n[prompts]\np = \"{{text}}\"\n",
    )
    .unwrap();
    let e = ValidSpec::load(&f, None).unwrap_err();
    assert!(
        e.to_string().contains("gone.md") && e.line == Some(2),
        "{e}"
    );
    assert!(ValidSpec::load(&f, Some("t".into())).is_ok());
}

#[test]
fn each_mistake_names_file_line_and_key() {
    let cases: &[(&str, usize, &[&str])] = &[
        ("nmae = \"x\"\n[prompts]\na = \"a\"\n", 1, &["nmae"]),
        (
            "[defaults]\ntemprature = 0.1\n[prompts]\na = \"a\"\n",
            2,
            &["temprature"],
        ),
        (
            "[defaults]\ntemperature = \"hot\"\n[prompts]\na = \"a\"\n",
            2,
            &["temperature"],
        ),
        (
            "[prompts]\na = \"{{txt}}\"\n",
            2,
            &["[prompts].a", "{{txt}}", "[vars]"],
        ),
        ("[prompts]\na = \"{{text}}\"\n", 2, &["{{text}}", "--text"]),
        (
            "[prompts]\na = \"a\"\n[run]\nprompts = [\"a\", \"a,nope\"]\n",
            4,
            &["nope", "a,nope", "defined: a"],
        ),
        (
            "[prompts]\na = \"a\"\n[run]\nprompts = [\"a,\"]\n",
            4,
            &["empty prompt name"],
        ),
        (
            "[prompts]\na = \"a\"\n[run]\nprompts = [\"a\", \"a\"]\n",
            4,
            &["listed twice"],
        ),
        (
            "[prompts]\na = \"a\"\n[run]\nprompts = []\n",
            3,
            &["[run].prompts is empty"],
        ),
        (
            "[prompts]\na = \"a\"\n[run]\nprompt = [\"a\"]\n",
            4,
            &["prompt"],
        ),
        (
            "[prompts]\n\na = { txt = \"a\" }\n",
            3,
            &["[prompts].a", "text"],
        ),
        (
            "[prompts]\na = { text = \"a\", temprature = 1 }\n",
            2,
            &["[prompts].a", "temprature"],
        ),
        ("[prompts]\na = 3\n", 2, &["[prompts].a", "integer"]),
        ("[prompts]\na = \"  \"\n", 2, &["[prompts].a", "empty"]),
        ("[vars]\nx = 1\n[prompts]\na = \"a\"\n", 2, &["[vars].x"]),
        (
            "[vars]\nx = { path = \"f\" }\n[prompts]\na = \"a\"\n",
            2,
            &["[vars].x", "file"],
        ),
        ("name = \"\"\n[prompts]\na = \"a\"\n", 1, &["name"]),
        ("models = [\"\"]\n[prompts]\na = \"a\"\n", 1, &["models"]),
        (
            "[prompts]\na = \"a\"\n[prompts]\nb = \"b\"\n",
            3,
            &["prompts"],
        ),
        ("[prompts\na = \"a\"\n", 1, &[]),
    ];
    for (src, line, words) in cases {
        let e = err(src);
        assert_eq!(e.line, Some(*line), "{src:?}: {e}");
        let msg = e.to_string();
        assert!(msg.starts_with(&format!("/sets/p.toml:{line}: ")), "{msg}");
        for w in *words {
            assert!(msg.contains(w), "{src:?}: `{w}` missing from: {msg}");
        }
    }
    let e = err("name = \"x\"\n");
    assert!(e.to_string().contains("no prompts"), "{e}");
}
