//! The configured folders (`models_dir`, `extra_model_dirs`): `.gguf` files and safetensors
//! folders, two levels deep. Named by the lower-cased file stem or folder name.

use super::{is_gguf_name, is_safetensors_dir, lower_stem, sorted_entries, Location, Source};
use std::path::{Path, PathBuf};

fn scan_dir(dir: &Path, depth: usize, out: &mut Vec<Location>) {
    for p in sorted_entries(dir) {
        if p.is_file() && is_gguf_name(&p) {
            out.push(Location::at(Source::Folder, lower_stem(&p), p));
        } else if p.is_dir() {
            if is_safetensors_dir(&p) {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().to_lowercase())
                    .unwrap_or_default();
                out.push(Location::at(Source::Folder, name, p));
            } else if depth > 0 {
                scan_dir(&p, depth - 1, out);
            }
        }
    }
}

/// Every model in `dirs`, in the order given (folders that do not exist are skipped).
pub fn scan(dirs: &[PathBuf]) -> Vec<Location> {
    let mut out = Vec::new();
    for d in dirs {
        scan_dir(d, 2, &mut out);
    }
    out
}
