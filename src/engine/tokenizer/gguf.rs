//! Reading the `tokenizer.ggml.*` metadata of a GGUF file into plain vectors.

use super::*;

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

pub(super) fn bad(key: &str, expected: &'static str, v: &Value) -> TokenizerError {
    let mut found = format!("{v:?}");
    found.truncate(80);
    TokenizerError::BadMetadata {
        key: key.to_string(),
        expected,
        found,
    }
}

pub(super) fn to_i64(key: &str, v: &Value) -> Result<i64> {
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
pub(super) fn list<T>(
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
