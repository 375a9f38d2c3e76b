//! A model file's metadata as `key = value` lines (GGUF key/values, or a safetensors
//! folder's config.json), long strings and arrays shortened for display.

use candle_core::quantized::gguf_file::{Content, Value};
use std::path::Path;

fn show(v: &Value) -> String {
    match v {
        Value::Array(a) => format!(
            "[{} items: {}…]",
            a.len(),
            a.iter().take(3).map(show).collect::<Vec<_>>().join(", ")
        ),
        Value::String(s) if s.chars().count() > 80 => {
            format!(
                "{:?}… ({} chars)",
                s.chars().take(80).collect::<String>(),
                s.chars().count()
            )
        }
        Value::String(s) => format!("{s:?}"),
        Value::U8(x) => x.to_string(),
        Value::I8(x) => x.to_string(),
        Value::U16(x) => x.to_string(),
        Value::I16(x) => x.to_string(),
        Value::U32(x) => x.to_string(),
        Value::I32(x) => x.to_string(),
        Value::U64(x) => x.to_string(),
        Value::I64(x) => x.to_string(),
        Value::F32(x) => x.to_string(),
        Value::F64(x) => x.to_string(),
        Value::Bool(x) => x.to_string(),
    }
}

/// Sorted `(key, value)` pairs, or why they could not be read.
pub fn metadata(path: &Path) -> Result<Vec<(String, String)>, String> {
    if path.is_dir() {
        let text = std::fs::read_to_string(path.join("config.json"))
            .map_err(|e| format!("{}: {e}", path.join("config.json").display()))?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        let mut out: Vec<(String, String)> = v
            .as_object()
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.to_string())).collect())
            .unwrap_or_default();
        out.sort();
        return Ok(out);
    }
    let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let ct = Content::read(&mut f).map_err(|e| crate::engine::error::candle_msg(&e))?;
    let mut out: Vec<(String, String)> = ct
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), show(v)))
        .collect();
    out.sort();
    Ok(out)
}
