//! Print a GGUF file's metadata (arrays shortened) and tensor list: `cargo run --example gguf_meta FILE`.
use candle_core::quantized::gguf_file::{Content, Value};

fn show(v: &Value) -> String {
    match v {
        Value::Array(a) => format!(
            "[{} items: {}…]",
            a.len(),
            a.iter().take(3).map(show).collect::<Vec<_>>().join(", ")
        ),
        Value::String(s) => format!("{:?}", s.chars().take(120).collect::<String>()),
        other => format!("{other:?}"),
    }
}

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: gguf_meta FILE"))?;
    let mut f = std::fs::File::open(&path)?;
    let ct = Content::read(&mut f)?;
    let mut keys: Vec<_> = ct.metadata.keys().collect();
    keys.sort();
    for k in keys {
        println!("{k} = {}", show(&ct.metadata[k]));
    }
    let mut names: Vec<_> = ct.tensor_infos.iter().collect();
    names.sort_by_key(|(n, _)| n.as_str());
    for (n, t) in names
        .iter()
        .filter(|(n, _)| !n.starts_with("blk.") || n.starts_with("blk.0."))
    {
        println!("{n}: {:?} {:?}", t.ggml_dtype, t.shape);
    }
    Ok(())
}
