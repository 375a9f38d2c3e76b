//! Text ⇄ token ids: a Hugging Face `tokenizers::Tokenizer` built from the vocabulary a GGUF
//! file embeds (read the way llama.cpp reads it) or loaded from a `tokenizer.json`, together
//! with the model's BOS/EOS conventions.
//!
//! Two GGUF tokenizer models are supported:
//! - `gpt2`: byte-level BPE. The text is first split by the regex list llama.cpp uses for the
//!   file's `tokenizer.ggml.pre` (see [`PRE_TOKENIZERS`]), with no prefix space.
//! - `llama`: SentencePiece BPE with byte fallback (Llama 2, TinyLlama, Mistral). Merge
//!   priority comes from the token scores, spaces become `▁`, a `▁` is prepended to every run
//!   of text (also after a special token, as llama.cpp does) and `<0xNN>` tokens cover bytes.
//!
//! Control and unknown tokens become special added tokens (parsed in text, skipped by
//! `decode(.., true)`); user-defined tokens are parsed in text too but always decoded.

use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::byte_level::ByteLevel;
use tokenizers::decoders::{fuse::Fuse, sequence::Sequence as DecoderSeq, strip::Strip};
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::{Prepend, Replace, Sequence as NormalizerSeq};
use tokenizers::pre_tokenizers::sequence::Sequence as PreTokenizerSeq;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, SplitDelimiterBehavior};

/// Why a tokenizer could not be built or used; each message says what to do about it.
#[derive(thiserror::Error, Debug)]
pub enum TokenizerError {
    #[error("GGUF metadata has no `{0}`: the file carries no tokenizer; use a GGUF that embeds one or pass a tokenizer.json")]
    MissingMetadata(&'static str),
    #[error("GGUF metadata `{key}` should be {expected}, found {found}: the file is malformed; re-convert the model or pass a tokenizer.json")]
    BadMetadata {
        key: String,
        expected: &'static str,
        found: String,
    },
    #[error("tokenizer model `{0}` is not supported (only `gpt2` byte-level BPE and `llama` SentencePiece BPE are); pass a tokenizer.json instead")]
    UnsupportedModel(String),
    #[error("could not build the tokenizer from the GGUF vocabulary: {0}; the vocabulary or merges are inconsistent, re-convert the model or pass a tokenizer.json")]
    Build(String),
    #[error("could not load `{path}`: {message}; check that it is a Hugging Face tokenizer.json (or tokenizer_config.json)")]
    Load { path: String, message: String },
    #[error("token id {id} is outside the vocabulary ({size} tokens): the ids do not come from this model's tokenizer")]
    UnknownId { id: u32, size: usize },
    #[error("could not tokenize the text: {0}")]
    Encode(String),
    #[error("could not decode the token ids: {0}")]
    Decode(String),
}

type Result<T> = std::result::Result<T, TokenizerError>;

/// llama.cpp token types (`tokenizer.ggml.token_type`).
const TYPE_UNKNOWN: i32 = 2;
const TYPE_CONTROL: i32 = 3;
const TYPE_USER_DEFINED: i32 = 4;

/// Token texts that end generation whatever the metadata says (llama.cpp's EOG list).
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "<|end_of_text|>",
    "<end_of_utterance>",
];

const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const CJK: &str = "[一-龥ࠀ-一가-퟿]+";
// Escaped: letters that Unicode normalization would silently rewrite in the source.
const DEEPSEEK_LETTERS: &str = r"\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\x{1F7D}ᾀ-ᾴᾶ-ᾼ\x{1FBE}ῂ-ῄῆ-ῌῐ-\x{1FD3}ῖ-\x{1FDB}ῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\x{2126}ℨ\x{212A}-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+";
const BLOOM: &str = r" ?[^(\s|.,!?…。，、।۔،)]+";

const DEFAULT: &[&str] = &[r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", "[0-9][0-9][0-9]"];
const FALCON: &[&str] = &[r"[\p{P}\$\+<=>\^~\|`]+", GPT2, "[0-9][0-9][0-9]"];
const DEEPSEEK_LLM: &[&str] = &[
    "[\r\n]",
    DEEPSEEK_LETTERS,
    r"\s?[!-/:-~！-／：-～‘-‟　-。]+",
    r"\s+$",
    CJK,
    r"\p{N}+",
];
const DEEPSEEK_CODER: &[&str] = &["[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", CJK, r"\p{N}"];

/// Byte-level pre-tokenizers as in llama.cpp's `llama-vocab.cpp`: (the `tokenizer.ggml.pre`
/// values that select the rule, the first one naming it; regexes applied in turn, each
/// splitting the pieces of the one before; llama3-style `ignore_merges` and BOS by default).
/// Other values fall back to `default`, as in llama.cpp, which spells GPT-2 `gpt-2`: a plain
/// `gpt2` gets `default` there too.
pub const PRE_TOKENIZERS: &[(&str, &[&str], bool)] = &[
    ("default", DEFAULT, false),
    (
        "llama3 llama-v3 llama-bpe falcon3 falcon-h1 pixtral midm-2.0 lfm2",
        &[LLAMA3],
        true,
    ),
    ("smaug-bpe dbrx glm4 chatglm-bpe", &[LLAMA3], false),
    (
        "qwen2 deepseek-r1-qwen kormo stablelm2 megrez hunyuan",
        &[QWEN2],
        false,
    ),
    (
        "smollm starcoder refact command-r codeshell exaone minerva-7b",
        &[r"\p{N}", GPT2],
        false,
    ),
    (
        "gpt-2 phi-2 mpt olmo jais trillion granite-docling exaone4 jina-es jina-de jina-v2-es \
         jina-v2-de jina-v1-en jina-v2-code roberta-bpe gigachat a.x-4.0 mellum",
        &[GPT2],
        false,
    ),
    ("falcon", FALCON, false),
    ("deepseek-llm", DEEPSEEK_LLM, false),
    ("deepseek-coder", DEEPSEEK_CODER, false),
    ("bloom poro-chat gpt3-finnish", &[BLOOM], false),
    ("viking", &[BLOOM, r"\p{N}"], false),
];

/// The `tokenizer.ggml.*` metadata of a GGUF file as plain values, so a tokenizer can also be
/// built from vectors (tests, synthetic models) through [`Tokenizer::from_vocab`].
#[derive(Debug, Clone, Default)]
pub struct GgufVocab {
    /// `tokenizer.ggml.model`: `gpt2` or `llama`.
    pub model: String,
    /// `tokenizer.ggml.pre`, the byte-level pre-tokenizer name.
    pub pre: Option<String>,
    pub tokens: Vec<String>,
    /// Per-token scores (SentencePiece merge priority); may be empty.
    pub scores: Vec<f32>,
    /// Per-token llama.cpp types (1 normal, 2 unknown, 3 control, 4 user-defined, 6 byte); may be empty.
    pub token_types: Vec<i32>,
    /// BPE merges as `"left right"` (`gpt2` only).
    pub merges: Vec<String>,
    pub bos_id: Option<u32>,
    pub eos_id: Option<u32>,
    pub eot_id: Option<u32>,
    pub eom_id: Option<u32>,
    pub unk_id: Option<u32>,
    pub pad_id: Option<u32>,
    pub add_bos: Option<bool>,
    pub add_eos: Option<bool>,
    pub add_space_prefix: Option<bool>,
}

fn bad(key: &str, expected: &'static str, v: &Value) -> TokenizerError {
    let mut found = format!("{v:?}");
    found.truncate(80);
    TokenizerError::BadMetadata {
        key: key.to_string(),
        expected,
        found,
    }
}

fn to_i64(key: &str, v: &Value) -> Result<i64> {
    Ok(match v {
        Value::U8(x) => *x as i64,
        Value::I8(x) => *x as i64,
        Value::U16(x) => *x as i64,
        Value::I16(x) => *x as i64,
        Value::U32(x) => *x as i64,
        Value::I32(x) => *x as i64,
        Value::U64(x) => *x as i64,
        Value::I64(x) => *x,
        _ => return Err(bad(key, "an integer", v)),
    })
}

/// Reads the array `key` (empty when absent), converting each element with `f`.
fn list<T>(
    ct: &Content,
    key: &str,
    what: &'static str,
    f: impl Fn(&Value) -> Option<T>,
) -> Result<Vec<T>> {
    let Some(v) = ct.metadata.get(key) else {
        return Ok(Vec::new());
    };
    let items = v.to_vec().map_err(|_| bad(key, what, v))?;
    items
        .iter()
        .map(|x| f(x).ok_or_else(|| bad(key, what, x)))
        .collect()
}

impl GgufVocab {
    /// Reads the tokenizer metadata of a GGUF file.
    pub fn from_gguf(ct: &Content) -> Result<Self> {
        let md = &ct.metadata;
        let string = |key: &'static str| -> Result<Option<String>> {
            md.get(key)
                .map(|v| v.to_string().cloned().map_err(|_| bad(key, "a string", v)))
                .transpose()
        };
        let id = |key: &'static str| -> Result<Option<u32>> {
            let id = md.get(key).map(|v| to_i64(key, v)).transpose()?;
            Ok(id.and_then(|i| u32::try_from(i).ok()))
        };
        let flag = |key: &'static str| -> Result<Option<bool>> {
            md.get(key)
                .map(|v| v.to_bool().map_err(|_| bad(key, "a boolean", v)))
                .transpose()
        };
        let text = |v: &Value| v.to_string().ok().cloned();
        let model = "tokenizer.ggml.model";
        let tokens = "tokenizer.ggml.tokens";
        if !md.contains_key(tokens) {
            return Err(TokenizerError::MissingMetadata(tokens));
        }
        Ok(Self {
            model: string(model)?.ok_or(TokenizerError::MissingMetadata(model))?,
            pre: string("tokenizer.ggml.pre")?,
            tokens: list(ct, tokens, "an array of strings", text)?,
            scores: list(ct, "tokenizer.ggml.scores", "an array of f32", |v| {
                v.to_f32().ok()
            })?,
            token_types: list(ct, "tokenizer.ggml.token_type", "an array of i32", |v| {
                to_i64("", v).ok().map(|t| t as i32)
            })?,
            merges: list(ct, "tokenizer.ggml.merges", "an array of strings", text)?,
            bos_id: id("tokenizer.ggml.bos_token_id")?,
            eos_id: id("tokenizer.ggml.eos_token_id")?,
            eot_id: id("tokenizer.ggml.eot_token_id")?,
            eom_id: id("tokenizer.ggml.eom_token_id")?,
            unk_id: id("tokenizer.ggml.unknown_token_id")?,
            pad_id: id("tokenizer.ggml.padding_token_id")?,
            add_bos: flag("tokenizer.ggml.add_bos_token")?,
            add_eos: flag("tokenizer.ggml.add_eos_token")?,
            add_space_prefix: flag("tokenizer.ggml.add_space_prefix")?,
        })
    }
}

/// A model's tokenizer plus its BOS/EOS conventions.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    vocab_size: usize,
    bos_id: Option<u32>,
    bos_token: Option<String>,
    eos_token: Option<String>,
    eos_ids: Vec<u32>,
    add_bos: bool,
    add_eos: bool,
    special_ids: Vec<u32>,
    pre: String,
}

fn build_err(e: impl std::fmt::Display) -> TokenizerError {
    TokenizerError::Build(e.to_string())
}

/// The byte-level pre-tokenizer rule for a `tokenizer.ggml.pre` value (unknown → `default`).
fn pre_rule(pre: Option<&str>) -> (&'static str, &'static [&'static str], bool) {
    let name = pre.unwrap_or("default");
    let rule = PRE_TOKENIZERS
        .iter()
        .find(|(names, ..)| names.split(' ').any(|n| n == name));
    if rule.is_none() {
        tracing::warn!("unknown tokenizer.ggml.pre `{name}`: using llama.cpp's `default` rule");
    }
    let (names, regexes, llama3) = rule.unwrap_or(&PRE_TOKENIZERS[0]);
    (names.split(' ').next().unwrap_or(names), regexes, *llama3)
}

/// Byte-level BPE (`gpt2`): regex splits, then bytes mapped to printable chars, no prefix space.
fn build_byte_level(
    v: &GgufVocab,
    regexes: &[&str],
    ignore_merges: bool,
) -> Result<tokenizers::Tokenizer> {
    let vocab = v
        .tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect::<Vocab>();
    let merges = v
        .merges
        .iter()
        .map(|m| {
            // Like llama.cpp: split at the first space after the first character.
            let first = m.chars().next().map_or(0, char::len_utf8);
            m[first..]
                .find(' ')
                .map(|p| (m[..first + p].to_string(), m[first + p + 1..].to_string()))
                .ok_or_else(|| TokenizerError::Build(format!("merge `{m}` has no space")))
        })
        .collect::<Result<Vec<_>>>()?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .ignore_merges(ignore_merges)
        .build()
        .map_err(build_err)?;
    let split = |re: &&str| {
        Split::new(
            SplitPattern::Regex(re.to_string()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
    };
    let mut steps = regexes
        .iter()
        .map(|re| split(re).map(Into::into))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(build_err)?;
    steps.push(ByteLevel::new(false, false, false).into());
    let mut tk = tokenizers::Tokenizer::new(bpe);
    tk.with_pre_tokenizer(Some(PreTokenizerSeq::new(steps)));
    tk.with_decoder(Some(ByteLevel::new(false, false, false)));
    Ok(tk)
}

/// SentencePiece BPE (`llama`): merges derived from the scores, as llama.cpp merges the adjacent
/// pair whose concatenation is the highest-scoring vocabulary entry.
fn build_spm(v: &GgufVocab) -> Result<tokenizers::Tokenizer> {
    let vocab: Vocab = v
        .tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let score = |id: usize| v.scores.get(id).copied().unwrap_or(0.0);
    let mut merges = Vec::new();
    for (id, tok) in v.tokens.iter().enumerate() {
        for (cut, _) in tok.char_indices().skip(1) {
            let (l, r) = tok.split_at(cut);
            if let (Some(&li), Some(&ri)) = (vocab.get(l), vocab.get(r)) {
                merges.push((score(id), li, ri, l.to_string(), r.to_string()));
            }
        }
    }
    merges.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
    let merges = merges.into_iter().map(|(_, _, _, l, r)| (l, r)).collect();
    let mut builder = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .byte_fallback(true)
        .fuse_unk(true);
    if let Some(unk) = v.unk_id.and_then(|i| v.tokens.get(i as usize)) {
        builder = builder.unk_token(unk.clone());
    }
    let mut tk = tokenizers::Tokenizer::new(builder.build().map_err(build_err)?);
    let space = Replace::new(" ", "▁").map_err(build_err)?;
    let mut decoders = vec![
        Replace::new("▁", " ").map_err(build_err)?.into(),
        ByteFallback::new().into(),
        Fuse::new().into(),
    ];
    if v.add_space_prefix.unwrap_or(true) {
        tk.with_normalizer(Some(NormalizerSeq::new(vec![
            Prepend::new("▁".into()).into(),
            space.into(),
        ])))
        .map_err(build_err)?;
        decoders.push(Strip::new(' ', 1, 0).into());
    } else {
        tk.with_normalizer(Some(space)).map_err(build_err)?;
    }
    tk.with_decoder(Some(DecoderSeq::new(decoders)));
    Ok(tk)
}

/// Ids that end generation: the given ones, then every token whose text is in [`EOG_TEXTS`].
fn eog_ids(
    given: impl IntoIterator<Item = Option<u32>>,
    token_to_id: impl Fn(&str) -> Option<u32>,
) -> Vec<u32> {
    let mut ids: Vec<u32> = given.into_iter().flatten().collect();
    ids.extend(EOG_TEXTS.iter().filter_map(|t| token_to_id(t)));
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(*id));
    ids
}

impl Tokenizer {
    /// Builds the tokenizer a GGUF file embeds (`tokenizer.ggml.*` metadata).
    pub fn from_gguf(ct: &Content) -> Result<Self> {
        Self::from_vocab(GgufVocab::from_gguf(ct)?)
    }

    /// Builds a tokenizer from GGUF-style vocabulary data.
    pub fn from_vocab(mut v: GgufVocab) -> Result<Self> {
        if v.tokens.is_empty() {
            return Err(TokenizerError::MissingMetadata("tokenizer.ggml.tokens"));
        }
        for (i, t) in v.tokens.iter_mut().enumerate() {
            if t.is_empty() {
                *t = format!("[EMPTY_{i}]"); // as llama.cpp does
            }
        }
        let n = v.tokens.len();
        let valid = |id: Option<u32>| id.filter(|&i| (i as usize) < n);
        let (mut inner, pre, add_bos_default) = match v.model.as_str() {
            "gpt2" => {
                if v.merges.is_empty() {
                    return Err(TokenizerError::MissingMetadata("tokenizer.ggml.merges"));
                }
                let (rule, regexes, llama3) = pre_rule(v.pre.as_deref());
                (
                    build_byte_level(&v, regexes, llama3)?,
                    rule.to_string(),
                    llama3,
                )
            }
            "llama" => {
                // llama.cpp's defaults for SentencePiece vocabularies.
                v.bos_id = v.bos_id.or(Some(1));
                v.eos_id = v.eos_id.or(Some(2));
                v.unk_id = v.unk_id.or(Some(0));
                (build_spm(&v)?, "spm".to_string(), true)
            }
            other => return Err(TokenizerError::UnsupportedModel(other.to_string())),
        };
        let (bos_id, eos_id) = (valid(v.bos_id), valid(v.eos_id));
        let eos_ids = eog_ids([eos_id, valid(v.eot_id), valid(v.eom_id)], |t| {
            v.tokens.iter().position(|x| x == t).map(|i| i as u32)
        });
        let ty = |i: usize| v.token_types.get(i).copied().unwrap_or(1);
        let mut special_ids: Vec<u32> = (0..n)
            .filter(|&i| matches!(ty(i), TYPE_UNKNOWN | TYPE_CONTROL))
            .map(|i| i as u32)
            .collect();
        special_ids.extend(
            [bos_id, eos_id, valid(v.unk_id), valid(v.pad_id)]
                .into_iter()
                .flatten(),
        );
        special_ids.extend(&eos_ids);
        special_ids.sort_unstable();
        special_ids.dedup();
        let special = special_ids
            .iter()
            .map(|&i| AddedToken::from(v.tokens[i as usize].clone(), true));
        inner
            .add_special_tokens(special.collect::<Vec<_>>())
            .map_err(build_err)?;
        let user: Vec<_> = (0..n)
            .filter(|&i| {
                ty(i) == TYPE_USER_DEFINED && special_ids.binary_search(&(i as u32)).is_err()
            })
            .map(|i| AddedToken::from(v.tokens[i].clone(), false).normalized(false))
            .collect();
        inner.add_tokens(user).map_err(build_err)?;
        let name = |id: Option<u32>| id.map(|i| v.tokens[i as usize].clone());
        Ok(Self {
            inner,
            vocab_size: n,
            bos_token: name(bos_id),
            eos_token: name(eos_id),
            bos_id,
            eos_ids,
            add_bos: v.add_bos.unwrap_or(add_bos_default),
            add_eos: v.add_eos.unwrap_or(false),
            special_ids,
            pre,
        })
    }

    /// Loads a Hugging Face `tokenizer.json` (safetensors models). BOS/EOS come from
    /// `tokenizer_config.json` (`bos_token`/`eos_token` as strings or `{"content": ..}`,
    /// `add_bos_token`); without them the BOS is what the file's post-processor prepends.
    pub fn from_files(tokenizer_json: &Path, tokenizer_config_json: Option<&Path>) -> Result<Self> {
        let load_err = |p: &Path, e: &dyn std::fmt::Display| TokenizerError::Load {
            path: p.display().to_string(),
            message: e.to_string(),
        };
        let inner = tokenizers::Tokenizer::from_file(tokenizer_json)
            .map_err(|e| load_err(tokenizer_json, &e))?;
        let config: serde_json::Value = match tokenizer_config_json {
            None => serde_json::Value::Null,
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| load_err(p, &e))?;
                serde_json::from_str(&text).map_err(|e| load_err(p, &e))?
            }
        };
        let token = |key: &str| match &config[key] {
            serde_json::Value::String(s) => Some(s.clone()),
            other => other["content"].as_str().map(str::to_string),
        };
        // What the post-processor prepends to a text, if anything, is the BOS.
        let ids = |add: bool| {
            inner
                .encode("a", add)
                .map(|e| e.get_ids().to_vec())
                .map_err(|e| TokenizerError::Encode(e.to_string()))
        };
        let (with, without) = (ids(true)?, ids(false)?);
        let probed_bos =
            (with.len() > without.len() && with.first() != without.first()).then(|| with[0]);
        let bos_token =
            token("bos_token").or_else(|| probed_bos.and_then(|i| inner.id_to_token(i)));
        let bos_id = bos_token.as_deref().and_then(|t| inner.token_to_id(t));
        let eos_token = token("eos_token");
        let eos_ids = eog_ids(
            [eos_token.as_deref().and_then(|t| inner.token_to_id(t))],
            |t| inner.token_to_id(t),
        );
        let mut special_ids: Vec<u32> = inner
            .get_added_tokens_decoder()
            .iter()
            .filter(|(_, t)| t.special)
            .map(|(&i, _)| i)
            .collect();
        special_ids.sort_unstable();
        Ok(Self {
            vocab_size: inner.get_vocab_size(true),
            add_bos: config["add_bos_token"]
                .as_bool()
                .unwrap_or(bos_id.is_some() && probed_bos == bos_id),
            add_eos: config["add_eos_token"].as_bool().unwrap_or(false),
            inner,
            bos_id,
            bos_token,
            eos_token,
            eos_ids,
            special_ids,
            pre: "tokenizer.json".to_string(),
        })
    }

    /// Tokenizes `text`; special-token texts in it (`<|im_start|>`) become their ids. The BOS
    /// is prepended only when `add_bos` is true and the model has one.
    pub fn encode(&self, text: &str, add_bos: bool) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| TokenizerError::Encode(e.to_string()))?;
        let bos = self.bos_id.filter(|_| add_bos);
        Ok(bos
            .into_iter()
            .chain(enc.get_ids().iter().copied())
            .collect())
    }

    /// Turns ids back into text, leaving out special tokens when `skip_special` is true.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= self.vocab_size) {
            return Err(TokenizerError::UnknownId {
                id,
                size: self.vocab_size,
            });
        }
        self.inner
            .decode(ids, skip_special)
            .map_err(|e| TokenizerError::Decode(e.to_string()))
    }

    /// The raw vocabulary string of a token (`Ġworld`, `▁world`, `<0x0A>`, `<|im_end|>`).
    pub fn token_to_piece(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Number of tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    pub fn bos_id(&self) -> Option<u32> {
        self.bos_id
    }

    /// Whether the model expects a BOS at the start of a prompt (`tokenizer.ggml.add_bos_token`).
    pub fn add_bos_default(&self) -> bool {
        self.add_bos
    }

    /// Whether the model expects an EOS after a whole document (`tokenizer.ggml.add_eos_token`).
    pub fn add_eos_default(&self) -> bool {
        self.add_eos
    }

    /// Ids that end generation: EOS first, then EOT/EOM and llama.cpp's end-of-generation texts.
    pub fn eos_ids(&self) -> &[u32] {
        &self.eos_ids
    }

    /// Adds ids that end generation (e.g. from `generation_config.json`), keeping them unique.
    pub fn add_eos_ids(&mut self, ids: impl IntoIterator<Item = u32>) {
        for id in ids {
            if !self.eos_ids.contains(&id) {
                self.eos_ids.push(id);
            }
        }
    }

    /// The BOS token's text, as chat templates want it.
    pub fn bos_token(&self) -> Option<&str> {
        self.bos_token.as_deref()
    }

    /// The EOS token's text, as chat templates want it.
    pub fn eos_token(&self) -> Option<&str> {
        self.eos_token.as_deref()
    }

    /// Ids of special (control) tokens, sorted.
    pub fn special_ids(&self) -> &[u32] {
        &self.special_ids
    }

    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// The pre-tokenizer rule in use: a name of [`PRE_TOKENIZERS`], `spm` for SentencePiece
    /// vocabularies, `tokenizer.json` for [`Tokenizer::from_files`].
    pub fn pre(&self) -> &str {
        &self.pre
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::Tokenizer;
    use std::sync::OnceLock;

    /// A tiny SentencePiece vocabulary: specials, the 256 byte tokens, then scored pieces.
    pub(crate) fn tiny_spm(pieces: &[(&str, f32)]) -> Tokenizer {
        let mut tokens: Vec<String> = ["<unk>", "<s>", "</s>"].map(String::from).to_vec();
        let mut types = vec![2, 3, 3];
        tokens.extend((0..=255u8).map(|b| format!("<0x{b:02X}>")));
        types.extend([6; 256]);
        let mut scores = vec![0.0; tokens.len()];
        for (p, s) in pieces {
            tokens.push(p.to_string());
            types.push(1);
            scores.push(*s);
        }
        Tokenizer::from_vocab(super::GgufVocab {
            model: "llama".into(),
            tokens,
            scores,
            token_types: types,
            ..Default::default()
        })
        .unwrap()
    }

    /// The real SmolLM2 tokenizer; panics with the fix when the model is not cached.
    pub(crate) fn smollm() -> &'static Tokenizer {
        static TOK: OnceLock<Tokenizer> = OnceLock::new();
        TOK.get_or_init(|| {
            let dir = std::env::var_os("LMWB_MODELS_DIR")
                .map(Into::into)
                .unwrap_or_else(|| dirs::cache_dir().expect("no cache dir").join("lmwb/models"));
            let path = dir.join("SmolLM2-135M-Instruct.Q4_1.gguf");
            let mut f = std::io::BufReader::new(std::fs::File::open(&path).unwrap_or_else(|e| {
                panic!(
                    "{} is missing ({e}): run `bash scripts/fetch-models.sh` first",
                    path.display()
                )
            }));
            let ct =
                candle_core::quantized::gguf_file::Content::read(&mut f).expect("readable GGUF");
            Tokenizer::from_gguf(&ct).expect("SmolLM2 tokenizer")
        })
    }
}

#[cfg(test)]
mod tests {
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
}
