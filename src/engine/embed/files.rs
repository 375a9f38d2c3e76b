//! What a sentence-transformers folder says about its embedding model: the BERT
//! hyper-parameters (`config.json`), the pooling (`1_Pooling/config.json`), whether the
//! vectors are L2-normalized (`modules.json`) and the longest input
//! (`sentence_bert_config.json`'s `max_seq_length`, at most `max_position_embeddings`).

use crate::engine::error::LoadError;
use candle_transformers::models::bert::Config as BertConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// How token vectors become one sentence vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// The mean of the token vectors the attention mask keeps.
    Mean,
    /// The first token's (`[CLS]`) vector.
    Cls,
}

impl Pooling {
    pub fn name(self) -> &'static str {
        match self {
            Pooling::Mean => "mean",
            Pooling::Cls => "cls",
        }
    }
}

/// An embedding model folder, read (no weights loaded).
#[derive(Clone, Debug)]
pub struct EmbedSpec {
    pub dir: PathBuf,
    pub bert: BertConfig,
    pub pooling: Pooling,
    pub normalize: bool,
    /// The most tokens one input may have, special tokens included.
    pub max_tokens: usize,
}

fn read_json(path: &Path) -> Result<Option<serde_json::Value>, LoadError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(LoadError::Io {
                path: path.into(),
                why: e.to_string(),
            })
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| LoadError::Format {
            path: path.into(),
            why: e.to_string(),
        })
}

/// Whether `dir` holds an embedding model: a BERT `config.json`, or a sentence-transformers
/// `modules.json`. (Such a folder is listed and served as an embedding model, never chatted
/// with.)
pub fn is_embedding_dir(dir: &Path) -> bool {
    if dir.join("modules.json").is_file() {
        return true;
    }
    let Ok(Some(cfg)) = read_json(&dir.join("config.json")) else {
        return false;
    };
    let bert = |s: &str| s.eq_ignore_ascii_case("bert") || s.eq_ignore_ascii_case("BertModel");
    cfg.get("model_type")
        .and_then(|t| t.as_str())
        .is_some_and(bert)
        || cfg
            .get("architectures")
            .and_then(|a| a.as_array())
            .is_some_and(|a| a.iter().filter_map(|x| x.as_str()).any(bert))
}

#[derive(Deserialize)]
struct PoolingFile {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

fn pooling(dir: &Path, modules: &[Module]) -> Result<Pooling, LoadError> {
    let sub = modules
        .iter()
        .find(|m| m.kind.ends_with(".Pooling"))
        .map_or("1_Pooling", |m| m.path.as_str());
    let path = dir.join(sub).join("config.json");
    let Some(v) = read_json(&path)? else {
        // sentence-transformers' own default for a plain transformer folder.
        return Ok(Pooling::Mean);
    };
    let p: PoolingFile = serde_json::from_value(v).map_err(|e| LoadError::Format {
        path: path.clone(),
        why: e.to_string(),
    })?;
    let unsupported = |mode: &str| LoadError::Config {
        path: path.clone(),
        why: format!("pooling mode `{mode}` is not supported; lmwb pools by mean or [CLS]"),
    };
    if p.pooling_mode_max_tokens {
        return Err(unsupported("max_tokens"));
    }
    if p.pooling_mode_mean_sqrt_len_tokens {
        return Err(unsupported("mean_sqrt_len_tokens"));
    }
    match (p.pooling_mode_mean_tokens, p.pooling_mode_cls_token) {
        (true, false) => Ok(Pooling::Mean),
        (false, true) => Ok(Pooling::Cls),
        (true, true) => Err(unsupported("mean_tokens together with cls_token")),
        (false, false) => Err(LoadError::Config {
            path,
            why: "no pooling mode is set; set pooling_mode_mean_tokens or pooling_mode_cls_token"
                .into(),
        }),
    }
}

#[derive(Deserialize)]
struct Module {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    path: String,
}

fn modules(dir: &Path) -> Result<Vec<Module>, LoadError> {
    let path = dir.join("modules.json");
    match read_json(&path)? {
        None => Ok(vec![]),
        Some(v) => serde_json::from_value(v).map_err(|e| LoadError::Format {
            path,
            why: e.to_string(),
        }),
    }
}

impl EmbedSpec {
    /// Read the folder's configuration files.
    pub fn read(dir: &Path) -> Result<EmbedSpec, LoadError> {
        let cfg_path = dir.join("config.json");
        let cfg = read_json(&cfg_path)?.ok_or_else(|| LoadError::Format {
            path: dir.into(),
            why: "config.json is missing".into(),
        })?;
        let model_type = cfg
            .get("model_type")
            .and_then(|t| t.as_str())
            .unwrap_or("?");
        if !model_type.eq_ignore_ascii_case("bert") {
            return Err(LoadError::Config {
                path: cfg_path,
                why: format!(
                    "embedding model type `{model_type}` is not supported; lmwb embeds with BERT models (model_type \"bert\")"
                ),
            });
        }
        let bert: BertConfig = serde_json::from_value(cfg).map_err(|e| LoadError::Config {
            path: cfg_path.clone(),
            why: format!("not a BERT config lmwb can read: {e}"),
        })?;
        let modules = modules(dir)?;
        let pooling = pooling(dir, &modules)?;
        let normalize = modules.iter().any(|m| m.kind.ends_with(".Normalize"));
        let st_path = dir.join("sentence_bert_config.json");
        let max_seq = read_json(&st_path)?
            .and_then(|v| v.get("max_seq_length").and_then(|n| n.as_u64()))
            .map(|n| n as usize);
        let max_tokens = max_seq
            .unwrap_or(bert.max_position_embeddings)
            .min(bert.max_position_embeddings);
        if max_tokens < 2 || bert.hidden_size == 0 {
            return Err(LoadError::Config {
                path: cfg_path,
                why: "max_position_embeddings and hidden_size must be positive".into(),
            });
        }
        Ok(EmbedSpec {
            dir: dir.into(),
            bert,
            pooling,
            normalize,
            max_tokens,
        })
    }

    /// The length of the vectors.
    pub fn dims(&self) -> usize {
        self.bert.hidden_size
    }

    /// One line for `models show` and the model's notes.
    pub fn summary(&self) -> String {
        format!(
            "embedding model: {} dimensions, {} pooling{}, inputs up to {} tokens",
            self.dims(),
            self.pooling.name(),
            if self.normalize {
                ", L2-normalized"
            } else {
                ""
            },
            self.max_tokens
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    const BERT: &str = r#"{"model_type":"bert","vocab_size":10,"hidden_size":8,
        "num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":16,
        "hidden_act":"gelu","hidden_dropout_prob":0.1,"max_position_embeddings":512,
        "type_vocab_size":2,"initializer_range":0.02,"layer_norm_eps":1e-12,"pad_token_id":0}"#;

    #[test]
    fn reads_pooling_normalize_and_the_length_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        write(d, "config.json", BERT);
        assert!(is_embedding_dir(d));
        let s = EmbedSpec::read(d).unwrap();
        assert_eq!(
            (s.pooling, s.normalize, s.max_tokens, s.dims()),
            (Pooling::Mean, false, 512, 8)
        );
        write(
            d,
            "modules.json",
            r#"[{"type":"sentence_transformers.models.Transformer","path":""},
                {"type":"sentence_transformers.models.Pooling","path":"1_Pooling"},
                {"type":"sentence_transformers.models.Normalize","path":"2_Normalize"}]"#,
        );
        write(
            d,
            "1_Pooling/config.json",
            r#"{"pooling_mode_cls_token":true}"#,
        );
        write(d, "sentence_bert_config.json", r#"{"max_seq_length":256}"#);
        let s = EmbedSpec::read(d).unwrap();
        assert_eq!(
            (s.pooling, s.normalize, s.max_tokens),
            (Pooling::Cls, true, 256)
        );
        write(
            d,
            "1_Pooling/config.json",
            r#"{"pooling_mode_max_tokens":true}"#,
        );
        let e = EmbedSpec::read(d).unwrap_err().to_string();
        assert!(
            e.contains("max_tokens") && e.contains("not supported"),
            "{e}"
        );
    }

    #[test]
    fn a_llama_folder_is_not_an_embedding_model() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "config.json", r#"{"model_type":"llama"}"#);
        assert!(!is_embedding_dir(tmp.path()));
        let e = EmbedSpec::read(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("`llama` is not supported"), "{e}");
    }
}
