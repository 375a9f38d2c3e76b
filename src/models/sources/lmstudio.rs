//! LM Studio's models folders (`~/.lmstudio/models`, `~/.cache/lm-studio/models`), laid out
//! `publisher/repo/file.gguf`. A GGUF is named by its path under the folder without the
//! extension (`publisher/repo/file`), a safetensors folder (MLX) by its path
//! (`publisher/repo`); all lower-case.

use super::{is_gguf_name, is_safetensors_dir, sorted_entries, Location, Source};
use std::path::{Path, PathBuf};

fn walk(dir: &Path, rel: &str, depth: usize, out: &mut Vec<Location>) {
    for p in sorted_entries(dir) {
        let name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let here = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        if p.is_file() && is_gguf_name(&p) {
            let stem = here[..here.len() - ".gguf".len()].to_lowercase();
            out.push(Location::at(Source::LmStudio, stem, p));
        } else if p.is_dir() {
            if is_safetensors_dir(&p) {
                out.push(Location::at(Source::LmStudio, here.to_lowercase(), p));
            } else if depth > 0 {
                walk(&p, &here, depth - 1, out);
            }
        }
    }
}

/// Every model in the LM Studio folders `roots` (folders that do not exist are skipped).
pub fn scan(roots: &[PathBuf]) -> Vec<Location> {
    let mut out = Vec::new();
    for root in roots {
        walk(root, "", 3, &mut out);
    }
    out
}
