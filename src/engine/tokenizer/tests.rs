//! Tokenizer unit tests (the SPM path on a tiny vocabulary, the real SmolLM2 vocabulary).

use super::test_support::tiny_spm;
use super::*;

fn pieces(tok: &Tokenizer, text: &str) -> Vec<String> {
    tok.encode(text, false)
        .unwrap()
        .iter()
        .map(|&i| tok.token_to_piece(i).unwrap())
        .collect()
}

const HELLO: &[(&str, f32)] = &[
    ("▁", -1.0),
    ("h", -2.0),
    ("e", -2.0),
    ("l", -2.0),
    ("o", -2.0),
    ("w", -2.0),
    ("r", -2.0),
    ("d", -2.0),
    ("ll", -3.0),
    ("▁h", -4.0),
    ("▁he", -5.0),
    ("llo", -6.0),
    ("▁hello", -7.0),
    ("or", -8.0),
    ("▁w", -9.0),
    ("▁wor", -10.0),
    ("ld", -11.0),
    ("▁world", -12.0),
];

#[test]
fn spm_merges_follow_scores_and_prefix_space() {
    let tok = tiny_spm(HELLO);
    assert_eq!(pieces(&tok, "hello world"), ["▁hello", "▁world"]);
    // A leading space is kept on top of the prefix one, as SentencePiece and llama.cpp do.
    assert_eq!(pieces(&tok, " hello"), ["▁", "▁hello"]);
    assert_eq!(
        tok.decode(&tok.encode("hello world", true).unwrap(), true)
            .unwrap(),
        "hello world"
    );
    assert_eq!(tok.encode("hello", true).unwrap()[0], 1);
    assert!(tok.add_bos_default());
    assert_eq!(tok.pre(), "spm");
    // Which of two overlapping merges wins depends only on the scores.
    let ab = tiny_spm(&[
        ("▁", -1.0),
        ("a", -1.0),
        ("b", -1.0),
        ("c", -1.0),
        ("ab", -2.0),
        ("bc", -3.0),
    ]);
    assert_eq!(pieces(&ab, "abc"), ["▁", "ab", "c"]);
    let bc = tiny_spm(&[
        ("▁", -1.0),
        ("a", -1.0),
        ("b", -1.0),
        ("c", -1.0),
        ("ab", -3.0),
        ("bc", -2.0),
    ]);
    assert_eq!(pieces(&bc, "abc"), ["▁", "a", "bc"]);
}

#[test]
fn spm_byte_fallback_and_specials() {
    let tok = tiny_spm(HELLO);
    assert_eq!(pieces(&tok, "hé\n"), ["▁h", "<0xC3>", "<0xA9>", "<0x0A>"]);
    assert_eq!(
        tok.decode(&tok.encode("hé\n", false).unwrap(), false)
            .unwrap(),
        "hé\n"
    );
    // Control tokens in text are parsed; the text after one gets its own prefix space.
    let ids = tok.encode("<s>hello</s>", false).unwrap();
    assert_eq!(ids.len(), 3);
    assert_eq!((ids[0], ids[2]), (1, 2));
    assert_eq!(tok.decode(&ids, true).unwrap(), "hello");
    assert_eq!(tok.decode(&ids, false).unwrap(), "<s> hello</s>");
    assert_eq!(tok.eos_ids(), [2]);
    assert_eq!(
        (tok.bos_token(), tok.eos_token()),
        (Some("<s>"), Some("</s>"))
    );
    assert!(matches!(
        tok.decode(&[9999], false),
        Err(TokenizerError::UnknownId { id: 9999, .. })
    ));
}

#[test]
fn pre_tokenizer_regexes() {
    use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};
    use SplitDelimiterBehavior::Isolated;
    let split = |pre: &str, text: &str| -> Vec<String> {
        let (_, regexes, _) = pre_rule(Some(pre));
        let mut s = PreTokenizedString::from(text);
        for re in regexes {
            Split::new(
                SplitPattern::Regex(re.to_string()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .unwrap()
            .pre_tokenize(&mut s)
            .unwrap();
        }
        s.get_splits(OffsetReferential::Original, OffsetType::Byte)
            .into_iter()
            .map(|(s, ..)| s.to_string())
            .collect()
    };
    let text = "Hello'Ve world 1234\n\n  foo";
    assert_eq!(
        split("smollm", text),
        ["Hello", "'", "Ve", " world", " ", "1", "2", "3", "4", "\n\n ", " foo"]
    );
    assert_eq!(
        split("llama-bpe", text),
        ["Hello", "'Ve", " world", " ", "123", "4", "\n\n", " ", " foo"]
    );
    assert_eq!(
        split("qwen2", text),
        ["Hello", "'Ve", " world", " ", "1", "2", "3", "4", "\n\n", " ", " foo"]
    );
    assert_eq!(
        split("deepseek-llm", "Hello world 12"),
        ["Hello", " world", " ", "12"]
    );
    for (names, regexes, _) in PRE_TOKENIZERS {
        for re in *regexes {
            let split = Split::new(SplitPattern::Regex(re.to_string()), Isolated, false);
            assert!(split.is_ok(), "{names}: {re}");
        }
    }
    assert_eq!(pre_rule(Some("no-such-pre")).0, "default");
    assert_eq!(pre_rule(None).0, "default");
}

#[test]
fn from_files_reads_config_tokens() {
    let tok = tiny_spm(HELLO);
    let dir = tempfile::tempdir().unwrap();
    let (json, cfg) = (
        dir.path().join("tokenizer.json"),
        dir.path().join("tokenizer_config.json"),
    );
    tok.inner().save(&json, false).unwrap();
    std::fs::write(
        &cfg,
        r#"{"bos_token": {"content": "<s>"}, "eos_token": "</s>", "add_bos_token": true}"#,
    )
    .unwrap();
    let loaded = Tokenizer::from_files(&json, Some(&cfg)).unwrap();
    assert_eq!((loaded.bos_id(), loaded.eos_ids()), (Some(1), &[2][..]));
    assert!(loaded.add_bos_default());
    assert_eq!(
        loaded.encode("hello world", true).unwrap(),
        tok.encode("hello world", true).unwrap()
    );
    let mut bare = Tokenizer::from_files(&json, None).unwrap();
    assert_eq!((bare.bos_id(), bare.add_bos_default()), (None, false));
    bare.add_eos_ids([2, 2, 7]);
    assert_eq!(bare.eos_ids(), [2, 7]);
    let err = Tokenizer::from_files(&dir.path().join("missing.json"), None).unwrap_err();
    assert!(err.to_string().contains("tokenizer.json"), "{err}");
}

#[test]
fn missing_tokens_is_explained() {
    let err = Tokenizer::from_vocab(GgufVocab {
        model: "gpt2".into(),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("tokenizer.ggml.tokens"), "{err}");
    let err = Tokenizer::from_vocab(GgufVocab {
        model: "t5".into(),
        tokens: vec!["a".into()],
        ..Default::default()
    })
    .unwrap_err();
    assert!(matches!(err, TokenizerError::UnsupportedModel(_)));
}

#[test]
fn smollm_metadata() {
    let tok = test_support::smollm();
    assert_eq!(tok.pre(), "smollm");
    assert_eq!(tok.encode("Hello", false).unwrap(), [19556]);
    assert_eq!(tok.encode("<|im_start|>user", false).unwrap(), [1, 4093]);
    assert_eq!(
        (tok.bos_id(), tok.add_bos_default(), tok.vocab_size()),
        (Some(1), false, 49152)
    );
    assert_eq!(tok.eos_ids(), [2, 0]);
    assert_eq!(
        (tok.bos_token(), tok.eos_token()),
        (Some("<|im_start|>"), Some("<|im_end|>"))
    );
    assert_eq!(tok.special_ids(), (0..17).collect::<Vec<_>>());
    assert_eq!(tok.decode(&[1, 4093, 2], true).unwrap(), "user");
}
