//! Where a model's tokenizer and chat template come from, as `models show` prints them.

use crate::engine::template::ChatTemplate;
use candle_core::quantized::gguf_file::{Content, Value};
use serde::Serialize;
use std::path::Path;

/// A model's tokenizer and chat template, each said in one line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Details {
    /// e.g. `embedded in the GGUF (gpt2, pre smollm, 49152 tokens)` or `tokenizer.json`.
    pub tokenizer: String,
    /// e.g. `embedded in the GGUF: chatml` or `none`.
    pub template: String,
}

/// The built-in template whose source this is, else its first non-empty line, shortened.
fn template_summary(text: &str) -> String {
    let norm = |s: &str| s.split_whitespace().collect::<String>();
    for name in ChatTemplate::builtin_names() {
        if let Ok(t) = ChatTemplate::builtin(name) {
            if norm(t.source()) == norm(text) {
                return format!("{name} (lmwb's built-in `{name}` template)");
            }
        }
    }
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let short: String = line.chars().take(70).collect();
    let more = if short.len() < line.len() || text.lines().count() > 1 {
        "…"
    } else {
        ""
    };
    format!("\"{short}{more}\" ({} chars)", text.chars().count())
}

fn gguf_str<'a>(ct: &'a Content, key: &str) -> Option<&'a str> {
    match ct.metadata.get(key) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

fn gguf_details(path: &Path) -> Result<Details, String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let ct = Content::read(&mut f).map_err(|e| crate::engine::error::candle_msg(&e))?;
    let tokenizer = match gguf_str(&ct, "tokenizer.ggml.model") {
        Some(model) => {
            let pre = gguf_str(&ct, "tokenizer.ggml.pre")
                .map(|p| format!(", pre {p}"))
                .unwrap_or_default();
            let n = match ct.metadata.get("tokenizer.ggml.tokens") {
                Some(Value::Array(a)) => format!(", {} tokens", a.len()),
                _ => String::new(),
            };
            format!("embedded in the GGUF ({model}{pre}{n})")
        }
        None => "none: the GGUF has no tokenizer.ggml.* keys, so it cannot run".into(),
    };
    let template = match gguf_str(&ct, "tokenizer.chat_template") {
        Some(t) => format!("embedded in the GGUF: {}", template_summary(t)),
        None => "none (pass --template NAME with --chat)".into(),
    };
    Ok(Details {
        tokenizer,
        template,
    })
}

fn folder_template(dir: &Path) -> Option<String> {
    let jinja = dir.join("chat_template.jinja");
    if let Ok(t) = std::fs::read_to_string(&jinja) {
        return Some(format!("chat_template.jinja: {}", template_summary(&t)));
    }
    let text = std::fs::read_to_string(dir.join("tokenizer_config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let t = match v.get("chat_template")? {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(list) => list
            .iter()
            .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
            .or(list.first())?
            .get("template")?
            .as_str()?
            .to_string(),
        _ => return None,
    };
    Some(format!("tokenizer_config.json: {}", template_summary(&t)))
}

fn folder_details(dir: &Path) -> Details {
    let tj = dir.join("tokenizer.json");
    let tokenizer = if tj.is_file() {
        format!("tokenizer.json ({})", tj.display())
    } else if dir.join("vocab.txt").is_file() {
        format!("vocab.txt ({})", dir.join("vocab.txt").display())
    } else {
        "none: tokenizer.json is missing from the folder".into()
    };
    Details {
        tokenizer,
        template: folder_template(dir)
            .unwrap_or_else(|| "none (pass --template NAME with --chat)".into()),
    }
}

/// The tokenizer and template of the model at `path` (a GGUF file or a safetensors folder).
pub fn details(path: &Path) -> Result<Details, String> {
    if path.is_dir() {
        Ok(folder_details(path))
    } else if path.extension().is_some_and(|e| e == "safetensors") {
        Ok(folder_details(path.parent().unwrap_or(Path::new("."))))
    } else {
        gguf_details(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_named_or_shown_by_their_first_line() {
        let chatml = ChatTemplate::builtin("chatml").unwrap();
        assert!(template_summary(chatml.source()).starts_with("chatml"));
        let s = template_summary("\n{% for m in messages %}\n{{ m.content }}{% endfor %}");
        assert!(s.starts_with("\"{% for m in messages %}…\""), "{s}");
    }
}
