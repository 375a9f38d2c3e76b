//! Sentence embeddings with a BERT model from a sentence-transformers folder (such as
//! all-MiniLM-L6-v2): WordPiece tokens → BERT forward (candle-transformers) → pooling over
//! the attention mask → L2 normalization, as the folder's files say.
//!
//! ```no_run
//! use lmwb::engine::embed::{Embedder, EmbedInput};
//! let e = Embedder::load("models/all-MiniLM-L6-v2".as_ref()).unwrap();
//! let out = e.embed(&[EmbedInput::Text("A man is eating food.".into())], false).unwrap();
//! assert_eq!(out.vectors[0].len(), e.dims());
//! ```

pub mod files;
pub mod pool;

use crate::engine::error::{candle_msg, EngineError, LoadError};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::BertModel;
pub use files::{is_embedding_dir, EmbedSpec, Pooling};
use std::path::Path;

/// Inputs run through the model together (sorted by length, so padding stays small).
const BATCH: usize = 32;

/// One input: text, or token ids used as they are (special tokens included: a text's own
/// ids are `[CLS] … [SEP]`).
#[derive(Clone, Debug, PartialEq)]
pub enum EmbedInput {
    Text(String),
    Tokens(Vec<u32>),
}

/// One vector per input, in input order, and the tokens the model read.
#[derive(Clone, Debug, PartialEq)]
pub struct Embeddings {
    pub vectors: Vec<Vec<f32>>,
    pub prompt_tokens: usize,
}

/// Why inputs could not be embedded; all but `Compute` are the request's fault.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub enum EmbedError {
    #[error("there is no input to embed")]
    NoInput,
    #[error("input {index} is empty: give some text or token ids")]
    Empty { index: usize },
    #[error("input {index} is {tokens} tokens, more than the {limit} tokens this embedding model reads; shorten it or split it")]
    TooLong {
        index: usize,
        tokens: usize,
        limit: usize,
    },
    #[error("input {index}: token id {id} is outside the model's vocabulary of {vocab} tokens")]
    TokenOutOfRange { index: usize, id: u32, vocab: usize },
    #[error("input {index} cannot be tokenized: {why}")]
    Tokenizer { index: usize, why: String },
    #[error("embedding computation failed: {0}")]
    Compute(String),
}

impl From<candle_core::Error> for EmbedError {
    fn from(e: candle_core::Error) -> EmbedError {
        EmbedError::Compute(candle_msg(&e))
    }
}

/// What the server needs from an embedding model (tests put a fake behind it).
pub trait EmbeddingClient: Send + Sync {
    /// The model's name (its folder's name).
    fn model_name(&self) -> &str;
    /// The length of every vector.
    fn dims(&self) -> usize;
    /// The most tokens one input may have.
    fn max_tokens(&self) -> usize;
    /// Embed `inputs`; past [`EmbeddingClient::max_tokens`], cut them when `truncate`,
    /// else fail with [`EmbedError::TooLong`]. Blocking: call it off the async runtime.
    fn embed(&self, inputs: &[EmbedInput], truncate: bool) -> Result<Embeddings, EmbedError>;
}

/// A loaded embedding model.
pub struct Embedder {
    spec: EmbedSpec,
    name: String,
    model: BertModel,
    /// Without padding or truncation (the file's fixed ones are turned off).
    tokenizer: tokenizers::Tokenizer,
    /// The same, truncating to `max_tokens` (special tokens kept).
    truncating: tokenizers::Tokenizer,
    pad_id: u32,
    device: Device,
}

fn tokenizers_for(
    dir: &Path,
    max_tokens: usize,
) -> Result<(tokenizers::Tokenizer, tokenizers::Tokenizer, Option<u32>), LoadError> {
    let path = dir.join("tokenizer.json");
    let err = |why: String| LoadError::Tokenizer {
        path: path.clone(),
        why,
    };
    if !path.is_file() {
        return Err(err(
            "tokenizer.json is missing; put the model's tokenizer.json in the folder".into(),
        ));
    }
    let mut tok = tokenizers::Tokenizer::from_file(&path).map_err(|e| err(e.to_string()))?;
    let pad_id = tok.get_padding().map(|p| p.pad_id);
    tok.with_padding(None);
    tok.with_truncation(None).map_err(|e| err(e.to_string()))?;
    let mut truncating = tok.clone();
    truncating
        .with_truncation(Some(tokenizers::TruncationParams {
            max_length: max_tokens,
            ..Default::default()
        }))
        .map_err(|e| err(e.to_string()))?;
    Ok((tok, truncating, pad_id))
}

impl Embedder {
    /// Load the model in `dir` (a sentence-transformers folder) on the CPU.
    pub fn load(dir: &Path) -> Result<Embedder, EngineError> {
        if !dir.exists() {
            return Err(LoadError::NotFound(dir.into()).into());
        }
        let spec = EmbedSpec::read(dir)?;
        let files = crate::engine::model::safetensors_files(dir)?;
        let (tokenizer, truncating, pad_id) = tokenizers_for(dir, spec.max_tokens)?;
        let device = Device::Cpu;
        // SAFETY: the files are only read; lmwb never writes model files while they are mapped.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&files, DType::F32, &device) }
            .map_err(|e| crate::engine::model::weights::classify(dir, e))?;
        let model = BertModel::load(vb, &spec.bert).map_err(|e| LoadError::Tensor {
            path: dir.into(),
            why: format!("not a complete BERT checkpoint: {}", candle_msg(&e)),
        })?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        Ok(Embedder {
            pad_id: pad_id.unwrap_or(spec.bert.pad_token_id as u32),
            spec,
            name,
            model,
            tokenizer,
            truncating,
            device,
        })
    }

    /// What the folder's files say (pooling, normalization, limits).
    pub fn spec(&self) -> &EmbedSpec {
        &self.spec
    }

    pub fn dims(&self) -> usize {
        self.spec.dims()
    }

    /// The token ids of each input, checked against the vocabulary and the length limit.
    pub fn tokenize(
        &self,
        inputs: &[EmbedInput],
        truncate: bool,
    ) -> Result<Vec<Vec<u32>>, EmbedError> {
        if inputs.is_empty() {
            return Err(EmbedError::NoInput);
        }
        let limit = self.spec.max_tokens;
        let vocab = self.spec.bert.vocab_size;
        let tok = if truncate {
            &self.truncating
        } else {
            &self.tokenizer
        };
        let mut out = Vec::with_capacity(inputs.len());
        for (index, input) in inputs.iter().enumerate() {
            let mut ids = match input {
                EmbedInput::Text(s) if s.is_empty() => return Err(EmbedError::Empty { index }),
                EmbedInput::Text(s) => tok
                    .encode(s.as_str(), true)
                    .map_err(|e| EmbedError::Tokenizer {
                        index,
                        why: e.to_string(),
                    })?
                    .get_ids()
                    .to_vec(),
                EmbedInput::Tokens(ids) if ids.is_empty() => {
                    return Err(EmbedError::Empty { index })
                }
                EmbedInput::Tokens(ids) => ids.clone(),
            };
            if let Some(&id) = ids.iter().find(|&&id| id as usize >= vocab) {
                return Err(EmbedError::TokenOutOfRange { index, id, vocab });
            }
            if ids.len() > limit {
                if !truncate {
                    return Err(EmbedError::TooLong {
                        index,
                        tokens: ids.len(),
                        limit,
                    });
                }
                ids.truncate(limit);
            }
            out.push(ids);
        }
        Ok(out)
    }

    /// Embed `inputs` (see [`EmbeddingClient::embed`]).
    pub fn embed(&self, inputs: &[EmbedInput], truncate: bool) -> Result<Embeddings, EmbedError> {
        let ids = self.tokenize(inputs, truncate)?;
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| ids[i].len());
        let mut vectors = vec![Vec::new(); ids.len()];
        for chunk in order.chunks(BATCH) {
            let rows: Vec<&[u32]> = chunk.iter().map(|&i| ids[i].as_slice()).collect();
            for (v, &i) in self.forward(&rows)?.into_iter().zip(chunk) {
                vectors[i] = v;
            }
        }
        Ok(Embeddings {
            vectors,
            prompt_tokens: ids.iter().map(Vec::len).sum(),
        })
    }

    /// One padded batch through the model, pooled (and normalized).
    fn forward(&self, rows: &[&[u32]]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let len = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        let (mut flat, mut mask) = (Vec::with_capacity(rows.len() * len), Vec::new());
        for r in rows {
            flat.extend_from_slice(r);
            flat.extend(std::iter::repeat_n(self.pad_id, len - r.len()));
            mask.extend(std::iter::repeat_n(1u32, r.len()));
            mask.extend(std::iter::repeat_n(0u32, len - r.len()));
        }
        let shape = (rows.len(), len);
        let ids = Tensor::from_vec(flat, shape, &self.device)?;
        let mask = Tensor::from_vec(mask, shape, &self.device)?;
        let types = ids.zeros_like()?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?;
        let mut pooled = pool::pool(&hidden, &mask, self.spec.pooling)?;
        if self.spec.normalize {
            pooled = pool::l2_normalize(&pooled)?;
        }
        Ok(pooled.to_vec2::<f32>()?)
    }
}

impl EmbeddingClient for Embedder {
    fn model_name(&self) -> &str {
        &self.name
    }

    fn dims(&self) -> usize {
        self.spec.dims()
    }

    fn max_tokens(&self) -> usize {
        self.spec.max_tokens
    }

    fn embed(&self, inputs: &[EmbedInput], truncate: bool) -> Result<Embeddings, EmbedError> {
        Embedder::embed(self, inputs, truncate)
    }
}
