//! The GGUF tokenizer must give exactly llama.cpp's token ids on the real SmolLM2 model.
//! Reference ids: tests/fixtures/reference/smollm2-135m-q4_1.json (see the README there).

use std::path::PathBuf;

use candle_core::quantized::gguf_file;
use lmwb::engine::detok::Detokenizer;
use lmwb::engine::tokenizer::Tokenizer;
use serde_json::Value;

/// Where `scripts/fetch-models.sh` caches models (`LMWB_MODELS_DIR` overrides).
fn models_dir() -> PathBuf {
    std::env::var_os("LMWB_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            dirs::cache_dir()
                .expect("no cache directory")
                .join("lmwb/models")
        })
}

fn smollm() -> Tokenizer {
    let path = models_dir().join("SmolLM2-135M-Instruct.Q4_1.gguf");
    let file = std::fs::File::open(&path).unwrap_or_else(|e| {
        panic!(
            "{} is missing ({e}): run `bash scripts/fetch-models.sh` to fetch the test models",
            path.display()
        )
    });
    let ct =
        gguf_file::Content::read(&mut std::io::BufReader::new(file)).expect("a readable GGUF file");
    Tokenizer::from_gguf(&ct).expect("the embedded tokenizer builds")
}

fn reference() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/reference/smollm2-135m-q4_1.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("reference fixture"))
        .expect("reference JSON")
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("id list")
        .iter()
        .map(|i| i.as_u64().expect("id") as u32)
        .collect()
}

#[test]
fn tokenize_matches_llama_cpp() {
    let tok = smollm();
    assert_eq!(tok.pre(), "smollm");
    let cases = reference()["tokenize"]
        .as_array()
        .expect("tokenize cases")
        .clone();
    assert!(cases.len() >= 10);
    for case in &cases {
        let text = case["text"].as_str().unwrap();
        let got = tok.encode(text, false).unwrap();
        assert_eq!(got, ids(&case["ids"]), "token ids of {text:?}");
        assert_eq!(
            tok.decode(&got, false).unwrap(),
            text,
            "round trip of {text:?}"
        );
    }
}

#[test]
fn greedy_prompts_match_llama_cpp() {
    let tok = smollm();
    let cases = reference()["greedy"]
        .as_array()
        .expect("greedy cases")
        .clone();
    assert!(!cases.is_empty());
    for case in &cases {
        let text = case["prompt_text"].as_str().unwrap();
        let got = tok.encode(text, false).unwrap();
        assert_eq!(
            got,
            ids(&case["prompt_ids"]),
            "prompt ids of {:?}",
            case["name"]
        );
        assert_eq!(
            tok.decode(&got, false).unwrap(),
            text,
            "round trip of {:?}",
            case["name"]
        );
    }
}

#[test]
fn hello_has_no_prefix_space() {
    let tok = smollm();
    assert_eq!(tok.encode("Hello", false).unwrap(), [19556]);
    assert_eq!(tok.encode(" Hello", false).unwrap(), [38699]);
    assert_eq!(tok.eos_ids().first(), Some(&2));
}

#[test]
fn streamed_greedy_outputs_match_llama_cpp_text() {
    let tok = smollm();
    for case in reference()["greedy"].as_array().expect("greedy cases") {
        let prompt = ids(&case["prompt_ids"]);
        let mut detok = Detokenizer::new(&prompt[prompt.len().saturating_sub(4)..]);
        let mut text = String::new();
        for id in ids(&case["generated_ids"]) {
            let piece = detok.push(&tok, id).unwrap();
            assert!(!piece.contains('\u{FFFD}'), "{piece:?}");
            text += &piece;
        }
        text += &detok.flush(&tok);
        assert_eq!(
            text,
            case["generated_text"].as_str().unwrap(),
            "{:?}",
            case["name"]
        );
    }
}
