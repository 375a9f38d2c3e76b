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

mod build;
mod bytes;
mod gguf;
mod pre;
#[cfg(test)]
mod tests;

use build::*;
pub use bytes::TokenBytes;
pub use gguf::GgufVocab;
pub use pre::PRE_TOKENIZERS;
use pre::*;

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
