//! Which files `lmwb models pull REPO` downloads when no file is named: one GGUF (a sensible
//! quantization when there are several, all parts of a split one), or a safetensors model
//! with its config, tokenizer and template files.

/// Quantizations in the order a repo with several GGUFs is picked from.
const PREFERRED: &[&str] = &[
    "Q4_K_M", "Q4_0", "Q8_0", "Q4_K_S", "Q5_K_M", "Q5_K_S", "Q6_K", "Q4_1", "Q5_0", "Q5_1",
    "IQ4_XS", "IQ4_NL", "Q3_K_M", "Q3_K_L", "Q3_K_S", "Q2_K", "BF16", "F16", "F32",
];

/// Files a safetensors model needs beside its weights (top level of the repo).
const SAFETENSORS_COMPANIONS: &[&str] = &[
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "chat_template.json",
    "chat_template.jinja",
    "model.safetensors.index.json",
    // sentence-transformers (embedding models)
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
];

/// What to download.
#[derive(Clone, Debug, PartialEq)]
pub enum Choice {
    /// One GGUF model: its file, or every part of a split one (first part first).
    Gguf {
        files: Vec<String>,
        /// Why this one: "the only GGUF" or the quantization picked.
        why: String,
        /// The other GGUF models in the repo (first file of each).
        others: Vec<String>,
    },
    /// A safetensors model: weights plus companions, all at the top of the repo.
    Safetensors { files: Vec<String> },
}

impl Choice {
    pub fn files(&self) -> &[String] {
        match self {
            Choice::Gguf { files, .. } | Choice::Safetensors { files } => files,
        }
    }
}

/// `model-00001-of-00003.gguf` → (`model`, 1); other names → None.
fn split_part(name: &str) -> Option<(&str, u32)> {
    let stem = name.strip_suffix(".gguf")?;
    let (head, of) = stem.rsplit_once("-of-")?;
    let (base, part) = head.rsplit_once('-')?;
    let digits = |s: &str| s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit());
    (digits(part) && digits(of)).then(|| (base, part.parse().unwrap_or(0)))
}

/// The quantization named in a file name (`…-Q4_K_M.gguf`, `….q8_0.gguf`), upper case.
pub fn quant_of(name: &str) -> Option<&'static str> {
    let upper = name.rsplit('/').next().unwrap_or(name).to_ascii_uppercase();
    let tokens: Vec<&str> = upper
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .collect();
    // Longest names first so Q4_K_M is not read as Q4_K.
    let mut by_len: Vec<&'static str> = PREFERRED.to_vec();
    by_len.sort_by_key(|q| std::cmp::Reverse(q.len()));
    by_len.into_iter().find(|q| {
        tokens
            .iter()
            .any(|t| t == q || t.ends_with(&format!("_{q}")))
    })
}

fn is_gguf(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with(".gguf")
}

/// Pick from a repo's files (sorted repo paths). `None`: nothing lmwb can pick.
pub fn choose(files: &[String]) -> Option<Choice> {
    // GGUF models: a split model's parts grouped under their first part.
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for f in files.iter().filter(|f| is_gguf(f)) {
        let key = match split_part(f) {
            Some((base, _)) => format!("{base}.gguf"),
            None => f.clone(),
        };
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, parts)) => parts.push(f.clone()),
            None => groups.push((key, vec![f.clone()])),
        }
    }
    for (_, parts) in groups.iter_mut() {
        parts.sort_by_key(|p| split_part(p).map(|(_, n)| n).unwrap_or(0));
    }
    // Vision projectors (mmproj) are not models on their own.
    let models: Vec<&(String, Vec<String>)> = groups
        .iter()
        .filter(|(k, _)| !k.to_ascii_lowercase().contains("mmproj"))
        .collect();
    let models = if models.is_empty() {
        groups.iter().collect()
    } else {
        models
    };
    if !models.is_empty() {
        let (index, why) = if models.len() == 1 {
            (0, "the only GGUF in the repo".to_string())
        } else {
            let rank = |k: &str| {
                quant_of(k)
                    .and_then(|q| PREFERRED.iter().position(|p| *p == q))
                    .unwrap_or(PREFERRED.len())
            };
            let best = (0..models.len())
                .min_by_key(|&i| rank(&models[i].0))
                .unwrap_or(0);
            let why = match quant_of(&models[best].0) {
                Some(q) => format!("{q}, the default among {} GGUFs", models.len()),
                None => format!("the first of {} GGUFs", models.len()),
            };
            (best, why)
        };
        let others = models
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != index)
            .map(|(_, (_, parts))| parts[0].clone())
            .collect();
        return Some(Choice::Gguf {
            files: models[index].1.clone(),
            why,
            others,
        });
    }
    // A safetensors model at the top of the repo.
    let top = |f: &&String| !f.contains('/');
    let weights: Vec<&String> = files
        .iter()
        .filter(top)
        .filter(|f| f.ends_with(".safetensors"))
        .collect();
    if weights.is_empty() {
        return None;
    }
    // Mistral-style repos hold the weights twice: HF shards (with an index) and consolidated.
    let indexed = files.iter().any(|f| f == "model.safetensors.index.json");
    let mut chosen: Vec<String> = weights
        .into_iter()
        .filter(|f| !(indexed && f.starts_with("consolidated")))
        .cloned()
        .collect();
    chosen.extend(
        files
            .iter()
            .filter(|f| SAFETENSORS_COMPANIONS.contains(&f.as_str()))
            .cloned(),
    );
    chosen.sort();
    Some(Choice::Safetensors { files: chosen })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_single_gguf_is_taken() {
        let c = choose(&names(&["README.md", "model.Q5_K_S.gguf"])).unwrap();
        assert_eq!(c.files(), ["model.Q5_K_S.gguf"]);
    }

    #[test]
    fn several_ggufs_prefer_q4_k_m_then_q4_0_and_q8_0() {
        let files = names(&[
            "m-F16.gguf",
            "m-Q2_K.gguf",
            "m-Q4_K_M.gguf",
            "m-Q4_K_S.gguf",
            "m-Q8_0.gguf",
            "mmproj-m-f16.gguf",
        ]);
        let Some(Choice::Gguf {
            files: f,
            why,
            others,
        }) = choose(&files)
        else {
            panic!("a GGUF choice");
        };
        assert_eq!(f, ["m-Q4_K_M.gguf"]);
        assert!(why.contains("Q4_K_M"), "{why}");
        assert_eq!(others.len(), 4, "{others:?}");
        assert!(!others.iter().any(|o| o.contains("mmproj")));
        let files = names(&["m.q8_0.gguf", "m.q4_0.gguf", "m.f32.gguf"]);
        assert_eq!(choose(&files).unwrap().files(), ["m.q4_0.gguf"]);
        let files = names(&["m-Q8_0.gguf", "m-f16.gguf"]);
        assert_eq!(choose(&files).unwrap().files(), ["m-Q8_0.gguf"]);
    }

    #[test]
    fn split_ggufs_come_whole() {
        let files = names(&[
            "Q4_K_M/m-Q4_K_M-00002-of-00002.gguf",
            "Q4_K_M/m-Q4_K_M-00001-of-00002.gguf",
            "m-Q8_0.gguf",
        ]);
        assert_eq!(
            choose(&files).unwrap().files(),
            [
                "Q4_K_M/m-Q4_K_M-00001-of-00002.gguf",
                "Q4_K_M/m-Q4_K_M-00002-of-00002.gguf"
            ]
        );
    }

    #[test]
    fn safetensors_repo_takes_weights_config_tokenizer_and_templates() {
        let files = names(&[
            ".gitattributes",
            "README.md",
            "config.json",
            "consolidated.safetensors",
            "generation_config.json",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
            "model.safetensors.index.json",
            "onnx/model.onnx",
            "original/model.safetensors",
            "tokenizer.json",
            "tokenizer_config.json",
            "chat_template.jinja",
        ]);
        assert_eq!(
            choose(&files).unwrap().files(),
            [
                "chat_template.jinja",
                "config.json",
                "generation_config.json",
                "model-00001-of-00002.safetensors",
                "model-00002-of-00002.safetensors",
                "model.safetensors.index.json",
                "tokenizer.json",
                "tokenizer_config.json"
            ]
        );
    }

    #[test]
    fn nothing_to_pick() {
        assert_eq!(choose(&names(&["README.md", "model.onnx"])), None);
        assert_eq!(
            quant_of("Llama-3.2-1B-Instruct-Q4_K_M.gguf"),
            Some("Q4_K_M")
        );
        assert_eq!(quant_of("model.gguf"), None);
    }
}
