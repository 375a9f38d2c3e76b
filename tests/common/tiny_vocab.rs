//! The byte-level BPE vocabulary of the tiny test models, written both as GGUF
//! `tokenizer.ggml.*` metadata and as an equivalent Hugging Face `tokenizer.json`.
//!
//! 256 GPT-2 byte characters (id = byte value), the results of [`MERGES`] in order, then the
//! specials `<|endoftext|>` (BOS), `<|im_start|>` and `<|im_end|>` (EOS): [`VOCAB`] tokens.

use candle_core::quantized::gguf_file::Value;
use std::path::Path;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior};

/// Merges in priority order, in byte-level spelling (`Ġ` is a space, `Ċ` a newline).
pub const MERGES: &[(&str, &str)] = &[
    ("Ġ", "t"),
    ("h", "e"),
    ("i", "n"),
    ("e", "r"),
    ("o", "n"),
    ("Ġ", "a"),
    ("r", "e"),
    ("a", "t"),
    ("Ġt", "he"),
    ("e", "n"),
    ("o", "r"),
    ("Ġ", "s"),
    ("Ġ", "w"),
    ("e", "s"),
    ("l", "l"),
    ("Ġ", "o"),
    ("i", "s"),
    ("Ġ", "h"),
    ("a", "n"),
    ("Ġ", "i"),
    ("Ġ", "b"),
    ("Ġ", "c"),
    ("Ġ", "m"),
    ("Ġ", "f"),
    ("Ġ", "d"),
    ("l", "o"),
    ("o", "u"),
    ("Ġ", "p"),
    ("Ġa", "n"),
    ("Ġan", "d"),
    ("in", "g"),
    ("Ġ", "l"),
    ("Ġ", "y"),
    ("Ġy", "ou"),
    ("Ġw", "or"),
    ("Ġwor", "l"),
    ("Ġworl", "d"),
    ("he", "ll"),
    ("hell", "o"),
    ("Ġ", "Ċ"),
    ("Ċ", "Ċ"),
];

pub const BOS: &str = "<|endoftext|>";
pub const IM_START: &str = "<|im_start|>";
pub const EOS: &str = "<|im_end|>";
pub const SPECIALS: [&str; 3] = [BOS, IM_START, EOS];
pub const VOCAB: usize = 256 + MERGES.len() + SPECIALS.len();

/// The ChatML template Qwen and SmolLM ship.
pub const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/// GPT-2's byte → printable character table.
pub fn byte_chars() -> Vec<char> {
    let printable = |b: u32| {
        (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b)
    };
    let mut extra = 0;
    (0..256u32)
        .map(|b| {
            if printable(b) {
                char::from_u32(b).unwrap()
            } else {
                extra += 1;
                char::from_u32(255 + extra).unwrap()
            }
        })
        .collect()
}

/// All token strings, by id.
pub fn tokens() -> Vec<String> {
    let mut t: Vec<String> = byte_chars().iter().map(|c| c.to_string()).collect();
    for (a, b) in MERGES {
        assert!(
            t.iter().any(|x| x == a) && t.iter().any(|x| x == b),
            "merge {a} {b}"
        );
        let joined = format!("{a}{b}");
        assert!(!t.contains(&joined), "duplicate merge result {joined}");
        t.push(joined);
    }
    t.extend(SPECIALS.iter().map(|s| s.to_string()));
    assert_eq!(t.len(), VOCAB);
    t
}

pub fn id_of(token: &str) -> u32 {
    tokens().iter().position(|t| t == token).unwrap() as u32
}

/// `tokenizer.ggml.*` metadata for a gpt2-style tokenizer with pre-tokenizer `pre`.
pub fn gguf_metadata(pre: &str) -> Vec<(String, Value)> {
    let toks = tokens();
    let types = toks
        .iter()
        .map(|t| Value::I32(if SPECIALS.contains(&t.as_str()) { 3 } else { 1 }))
        .collect();
    vec![
        ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
        ("tokenizer.ggml.pre".into(), Value::String(pre.into())),
        (
            "tokenizer.ggml.tokens".into(),
            Value::Array(toks.into_iter().map(Value::String).collect()),
        ),
        (
            "tokenizer.ggml.merges".into(),
            Value::Array(
                MERGES
                    .iter()
                    .map(|(a, b)| Value::String(format!("{a} {b}")))
                    .collect(),
            ),
        ),
        ("tokenizer.ggml.token_type".into(), Value::Array(types)),
        ("tokenizer.ggml.bos_token_id".into(), Value::U32(id_of(BOS))),
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(id_of(EOS))),
        ("tokenizer.ggml.add_bos_token".into(), Value::Bool(false)),
    ]
}

/// The Hugging Face pre-tokenizer equivalent to llama.cpp's rule for `pre`, spelled the way
/// the real model families spell it in their tokenizer.json.
fn hf_pre_tokenizer(pre: &str) -> PreTokenizerWrapper {
    let steps: Vec<PreTokenizerWrapper> = match pre {
        // SmolLM: digits one by one, then GPT-2's regex inside ByteLevel.
        "smollm" => vec![
            Digits::new(true).into(),
            ByteLevel::new(false, true, true).into(),
        ],
        // Qwen2: its own split regex, then ByteLevel without a regex.
        "qwen2" => {
            let re = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
            let split = Split::new(
                SplitPattern::Regex(re.into()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .unwrap();
            vec![split.into(), ByteLevel::new(false, false, false).into()]
        }
        other => panic!("no HF pre-tokenizer for `{other}`"),
    };
    Sequence::new(steps).into()
}

/// Write `tokenizer.json` (and `tokenizer_config.json`, with the chat template when given).
pub fn write_hf_tokenizer(dir: &Path, pre: &str, chat_template: Option<&str>) {
    let vocab: Vocab = tokens()
        .into_iter()
        .enumerate()
        .map(|(i, t)| (t, i as u32))
        .collect();
    let merges = MERGES
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .unwrap();
    let mut tk = tokenizers::Tokenizer::new(bpe);
    tk.with_pre_tokenizer(Some(hf_pre_tokenizer(pre)));
    tk.with_decoder(Some(ByteLevel::new(false, false, false)));
    let specials: Vec<AddedToken> = SPECIALS
        .iter()
        .map(|s| AddedToken::from(s.to_string(), true))
        .collect();
    tk.add_special_tokens(specials).unwrap();
    tk.save(dir.join("tokenizer.json"), true).unwrap();
    let mut cfg = serde_json::json!({
        "add_bos_token": false,
        "bos_token": BOS,
        "eos_token": EOS,
        "model_max_length": 4096,
        "tokenizer_class": "PreTrainedTokenizerFast",
    });
    if let Some(t) = chat_template {
        cfg["chat_template"] = t.into();
    }
    std::fs::write(
        dir.join("tokenizer_config.json"),
        serde_json::to_string_pretty(&cfg).unwrap(),
    )
    .unwrap();
}
