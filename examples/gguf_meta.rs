//! Print a GGUF file's metadata (arrays shortened) and tensor list: `cargo run --example gguf_meta FILE`.
use candle_core::quantized::gguf_file::Content;

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: gguf_meta FILE"))?;
    for (k, v) in lmwb::models::metadata(std::path::Path::new(&path)).map_err(anyhow::Error::msg)? {
        println!("{k} = {v}");
    }
    let mut f = std::fs::File::open(&path)?;
    let ct = Content::read(&mut f)?;
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
