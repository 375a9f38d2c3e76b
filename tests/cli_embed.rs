//! The embedding model in the CLI: `models list` shows it apart from the chat models,
//! `models show` describes its vectors, `run` refuses it with what to do instead.
//! Needs `bash scripts/fetch-models.sh` (it fetches all-MiniLM-L6-v2).

#[path = "common/real.rs"]
mod real;
#[path = "common/real_embed.rs"]
mod real_embed;
#[path = "common/sandbox.rs"]
mod sandbox;

use serde_json::Value;

fn lmwb(args: &[&str]) -> sandbox::Out {
    let models = real_embed::embedding_model_path()
        .parent()
        .expect("models folder")
        .to_path_buf();
    let home = tempfile::tempdir().expect("temp dir");
    sandbox::lmwb(home.path(), &models, args)
}

#[test]
fn models_list_shows_it_as_an_embedding_model() {
    let r = lmwb(&["models", "list"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let (chat, embed) = r
        .stdout
        .split_once("EMBEDDING MODEL")
        .unwrap_or_else(|| panic!("no embedding section: {}", r.stdout));
    assert!(!chat.contains("all-minilm-l6-v2"), "{}", r.stdout);
    let row = embed
        .lines()
        .find(|l| l.starts_with("all-minilm-l6-v2 "))
        .unwrap_or_else(|| panic!("{}", r.stdout));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!((cols[1], cols[2]), ("bert", "F32"), "{row}");
    assert_eq!(cols[cols.len() - 2], "256", "{row}");

    let r = lmwb(&["models", "list", "--json"]);
    let rows: Value = serde_json::from_str(&r.stdout).expect("models list --json");
    let e = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "all-minilm-l6-v2")
        .unwrap_or_else(|| panic!("{rows}"));
    assert_eq!(e["info"]["kind"], "embedding", "{e}");
    assert_eq!(e["info"]["context_length"], 256, "{e}");
}

#[test]
fn models_show_describes_its_vectors() {
    let r = lmwb(&["models", "show", "all-minilm-l6-v2"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    for want in [
        "embedding model",
        "dimensions:    384",
        "mean, then L2-normalized",
        "256 per input",
        "6 · hidden 384",
    ] {
        assert!(r.stdout.contains(want), "{want}: {}", r.stdout);
    }
    let r = lmwb(&["models", "show", "all-minilm-l6-v2", "--json"]);
    let v: Value = serde_json::from_str(&r.stdout).expect("models show --json");
    assert_eq!(v["kind"], "embedding");
}

#[test]
fn run_refuses_it_and_says_how_to_use_it() {
    let r = lmwb(&["run", "-m", "all-minilm-l6-v2", "Hello"]);
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(
        r.stderr.contains("is an embedding model")
            && r.stderr.contains("lmwb serve")
            && r.stderr.contains("/v1/embeddings"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
}

#[test]
fn serve_with_it_as_the_chat_model_says_to_use_the_embedding_flag() {
    let r = lmwb(&["serve", "--port", "0", "-m", "all-minilm-l6-v2"]);
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stderr.contains("is an embedding model")
            && r.stderr.contains("--embedding-model all-minilm-l6-v2"),
        "{}",
        r.stderr
    );
}
