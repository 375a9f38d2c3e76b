//! `lmwb models verify`: is every file of a model whole and what its store says it is?
//!
//! - GGUF: the file is at least as long as its header's tensors need (a truncated download
//!   is caught without any hash); safetensors: each file is as long as its header declares.
//! - Ollama: the blob's size is the manifest's.
//! - sha256 against the name the store gave the file (HF LFS blob, Ollama digest), else
//!   against the sum another copy of the same model is named by or lmwb recorded; a file with
//!   nothing to compare with is hashed and its sum shown.

use super::hash::HashCache;
use super::sources::{is_sha256_hex, safetensors_in, Location, Source};
use candle_core::quantized::gguf_file::Content;
use serde::Serialize;
use std::io::Read;
use std::path::{Path, PathBuf};

/// One check on one file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Check {
    pub path: PathBuf,
    /// `size`, `header` or `sha256`.
    pub what: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// Every check run, and what to do about the failed ones.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
    /// One line per failed location: how to get a good copy.
    pub fixes: Vec<String>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }
}

/// Hashing progress: the file, bytes read so far, its size.
pub type Progress<'a> = &'a mut dyn FnMut(&Path, u64, u64);

/// Bytes a GGUF file must have: where its last tensor's data ends.
pub fn gguf_needed_bytes(path: &Path) -> Result<u64, String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("cannot open it: {e}"))?;
    let ct = Content::read(&mut f).map_err(|e| {
        format!(
            "the header is unreadable ({})",
            crate::engine::error::candle_msg(&e)
        )
    })?;
    let mut end = ct.tensor_data_offset as u128;
    for (name, t) in &ct.tensor_infos {
        let (n, bs) = (
            t.shape.elem_count() as u128,
            t.ggml_dtype.block_size() as u128,
        );
        if bs == 0 || n % bs != 0 {
            return Err(format!(
                "tensor `{name}` has {n} values, not whole {:?} blocks",
                t.ggml_dtype
            ));
        }
        let bytes = n / bs * t.ggml_dtype.type_size() as u128;
        end = end.max(ct.tensor_data_offset as u128 + t.offset as u128 + bytes);
    }
    u64::try_from(end).map_err(|_| "the header declares more data than any file can hold".into())
}

/// Bytes a safetensors file must have: 8 + its JSON header + the data the header declares.
pub fn safetensors_needed_bytes(path: &Path) -> Result<u64, String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("cannot open it: {e}"))?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut n = [0u8; 8];
    f.read_exact(&mut n)
        .map_err(|_| format!("{len} bytes: too short for a safetensors header"))?;
    let n = u64::from_le_bytes(n);
    if n > 100 << 20 || 8 + n > len {
        return Err(format!(
            "the header claims {n} bytes but the file has {len}"
        ));
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header)
        .map_err(|e| format!("cannot read the header: {e}"))?;
    let v: serde_json::Value =
        serde_json::from_slice(&header).map_err(|e| format!("the header is not JSON: {e}"))?;
    let obj = v.as_object().ok_or("the header is not a JSON object")?;
    let mut end = 0u64;
    for (name, t) in obj.iter().filter(|(k, _)| *k != "__metadata__") {
        let off = t.get("data_offsets").and_then(|o| o.as_array());
        let e = off
            .and_then(|o| o.get(1))
            .and_then(|x| x.as_u64())
            .ok_or_else(|| format!("tensor `{name}` has no data_offsets"))?;
        end = end.max(e);
    }
    Ok(8 + n + end)
}

/// The structure check of one file: its length against what its header needs.
fn length_check(path: &Path, gguf: bool) -> Check {
    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let needed = if gguf {
        gguf_needed_bytes(path)
    } else {
        safetensors_needed_bytes(path)
    };
    let (ok, detail) = match needed {
        Err(why) => (false, why),
        Ok(need) if len < need => (
            false,
            format!(
                "truncated: the header needs {need} bytes, the file has {len} ({} missing)",
                need - len
            ),
        ),
        Ok(need) if !gguf && len > need => (
            false,
            format!(
                "{len} bytes, but the header accounts for {need}: {} extra bytes at the end",
                len - need
            ),
        ),
        Ok(need) => (true, format!("{len} bytes, the header needs {need}")),
    };
    Check {
        path: path.into(),
        what: "header",
        ok,
        detail,
    }
}

/// What to do when a location fails.
fn fix(loc: &Location) -> String {
    let p = loc.path.display();
    match loc.source {
        Source::HuggingFace => {
            let repo = loc
                .origin
                .as_deref()
                .and_then(|o| o.split('@').next())
                .unwrap_or("REPO");
            let blob = loc
                .blob
                .as_ref()
                .map(|b| format!(" and its blob {}", b.display()))
                .unwrap_or_default();
            format!("{p}: delete it{blob}, then download it again (`lmwb models pull {repo}`, or `huggingface-cli download {repo}`)")
        }
        Source::Ollama => format!(
            "{p}: re-pull it: `ollama rm {0}` then `ollama pull {0}`",
            loc.name
        ),
        Source::LmStudio => format!("{p}: delete it and download it again in LM Studio"),
        Source::Folder => format!(
            "{p}: copy or download it again (the default model: `bash scripts/fetch-models.sh`)"
        ),
    }
}

/// The sha256 check of one file against `expected` (with where that sum comes from).
fn sha_check(
    path: &Path,
    expected: Option<(&str, &str)>,
    cache: &mut HashCache,
    progress: Progress,
) -> Check {
    let total = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let got = super::hash::sha256_file(path, &mut |done| progress(path, done, total));
    let (ok, detail) = match (got, expected) {
        (Err(e), _) => (false, e.to_string()),
        (Ok(h), Some((want, from))) if h == want => {
            cache.put(path, &h);
            (true, format!("{h}, as {from} says"))
        }
        (Ok(h), Some((want, from))) => (
            false,
            format!("the content hashes to {h}, but {from} says {want}: the file is damaged or was replaced"),
        ),
        (Ok(h), None) => {
            cache.put(path, &h);
            (true, format!("{h} (no published sum to compare with)"))
        }
    };
    Check {
        path: path.into(),
        what: "sha256",
        ok,
        detail,
    }
}

fn sum_source(loc: &Location) -> &'static str {
    match loc.source {
        Source::Ollama => "the Ollama digest",
        Source::HuggingFace => "the Hugging Face blob name",
        _ => "the blob name",
    }
}

/// Check every file of every location; a file reached by several locations (links) is
/// checked once, against what any of them says of it (a store's sum, a manifest's size).
/// `known` is the model's sum when the registry knows one (another copy's blob name, an
/// earlier hash).
pub fn verify(
    locations: &[Location],
    known: Option<&str>,
    cache: &mut HashCache,
    progress: Progress,
) -> Report {
    let mut report = Report::default();
    let mut files: Vec<(PathBuf, Vec<&Location>)> = vec![];
    for loc in locations {
        let real = std::fs::canonicalize(&loc.path).unwrap_or_else(|_| loc.path.clone());
        match files.iter_mut().find(|(r, _)| *r == real) {
            Some((_, locs)) => locs.push(loc),
            None => files.push((real, vec![loc])),
        }
    }
    for (_, locs) in files {
        let start = report.checks.len();
        // The location that says the most about the file speaks for it.
        let loc = locs
            .iter()
            .find(|l| l.expected_sha256.is_some())
            .copied()
            .unwrap_or(locs[0]);
        let path = &locs[0].path;
        if !path.exists() {
            report.checks.push(Check {
                path: path.clone(),
                what: "size",
                ok: false,
                detail: "the file is gone".into(),
            });
        } else if path.is_dir() {
            for f in safetensors_in(path) {
                report.checks.push(length_check(&f, false));
                if let Some(h) = super::sources::sha256_in_name(&f) {
                    let from = "the Hugging Face blob name";
                    report
                        .checks
                        .push(sha_check(&f, Some((&h, from)), cache, progress));
                }
            }
        } else {
            if let Some(want) = locs.iter().find_map(|l| l.expected_size) {
                let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
                report.checks.push(Check {
                    path: path.clone(),
                    what: "size",
                    ok: len == want,
                    detail: if len == want {
                        format!("{len} bytes, as the manifest says")
                    } else {
                        format!("{len} bytes, but the manifest says {want}")
                    },
                });
            }
            report.checks.push(length_check(path, true));
            let expected = match (&loc.expected_sha256, known) {
                (Some(h), _) => Some((h.as_str(), sum_source(loc))),
                (None, Some(h)) if is_sha256_hex(h) => {
                    Some((h, "the registry (another copy's name, or an earlier hash)"))
                }
                _ => None,
            };
            report
                .checks
                .push(sha_check(path, expected, cache, progress));
        }
        if report.checks[start..].iter().any(|c| !c.ok) {
            report.fixes.push(fix(loc));
        }
    }
    report
}
