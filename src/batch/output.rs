//! What a batch item leaves on disk: `<stem>.md` (the answer, reasoning below it),
//! `<stem>.json` (the sidecar) or `<stem>.error.txt`, each written atomically.

use crate::chat::reasoning;
use crate::engine::Stats;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Temporary files start with this and end in [`TMP_SUFFIX`]; a killed run may leave one.
pub const TMP_PREFIX: &str = ".lmwb-";
pub const TMP_SUFFIX: &str = ".tmp";

/// The three files an item may have.
#[derive(Clone, Debug, PartialEq)]
pub struct ItemFiles {
    pub md: PathBuf,
    pub json: PathBuf,
    pub error: PathBuf,
}

impl ItemFiles {
    pub fn new(dir: &Path, stem: &str) -> ItemFiles {
        ItemFiles {
            md: dir.join(format!("{stem}.md")),
            json: dir.join(format!("{stem}.json")),
            error: dir.join(format!("{stem}.error.txt")),
        }
    }
}

/// Write `bytes` to `path` through a temporary file in the same folder, synced, then renamed
/// over it: readers (and a rerun) see the old file or the whole new one, never a part.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(TMP_PREFIX)
        .suffix(TMP_SUFFIX)
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Remove temporary files a killed run left in `dir`; returns how many.
pub fn remove_stale_temps(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.filter_map(Result::ok)
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.starts_with(TMP_PREFIX) && n.ends_with(TMP_SUFFIX)
        })
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count()
}

const REASONING_HEAD: &str = "\n---\n\n## Reasoning\n\n";
const UNCLOSED_NOTE: &str = "_(the output ended before the reasoning was closed)_\n\n";

/// The `.md` of an output: the answer, then the reasoning (Harmony analysis/commentary or
/// `<think>`) in its own section below, never mixed into the answer.
pub fn markdown(text: &str) -> (String, reasoning::Split) {
    let split = reasoning::split(text);
    let mut md = split.answer.trim().to_string();
    md.push('\n');
    let r = split.reasoning_text();
    if !r.is_empty() {
        md.push_str(REASONING_HEAD);
        if split.unclosed {
            md.push_str(UNCLOSED_NOTE);
        }
        md.push_str(&r);
        md.push('\n');
    }
    (md, split)
}

/// The generated text back from an output's `.md` (as [`markdown`] wrote it): the
/// reasoning section goes back inside `<think>` tags before the answer, so the chat's
/// reasoning parser splits it again.
pub fn raw_from_markdown(md: &str) -> String {
    match md.split_once(REASONING_HEAD) {
        Some((answer, reasoning)) => {
            let reasoning = reasoning
                .strip_prefix(UNCLOSED_NOTE)
                .unwrap_or(reasoning)
                .trim_end();
            format!("<think>{reasoning}</think>{}", answer.trim_end())
        }
        None => md.trim_end().to_string(),
    }
}

/// First 16 hex digits of the sha256 of a model: the file, or for a folder its
/// `*.safetensors` files in name order.
pub fn model_sha256(path: &Path) -> std::io::Result<String> {
    let mut files = Vec::new();
    if path.is_dir() {
        for e in std::fs::read_dir(path)? {
            let p = e?.path();
            if p.extension().is_some_and(|x| x == "safetensors") {
                files.push(p);
            }
        }
        files.sort();
    } else {
        files.push(path.to_path_buf());
    }
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    for f in files {
        let mut r = std::fs::File::open(f)?;
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    Ok(h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Now, as RFC 3339 in UTC.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The model part of a sidecar.
#[derive(Clone, Debug, Serialize)]
pub struct ModelRecord {
    pub name: String,
    pub path: PathBuf,
    /// First 16 hex digits of the sha256 of the weights (`null` when they could not be read).
    pub sha256: Option<String>,
    /// How requests reached it: `in-process`, or `http <base url>` for a remote backend.
    pub transport: String,
    /// How long loading the model took (once per run, shared by its items).
    pub load_ms: f64,
}

/// The prompt part of a sidecar.
#[derive(Clone, Debug, Serialize)]
pub struct PromptRecord {
    /// As in `[run].prompts` (`"think,tldr"`).
    pub name: String,
    pub parts: Vec<String>,
    pub system: Option<String>,
    /// The user message after `{{vars}}` were filled in.
    pub rendered: String,
    /// The built-in chat template asked for (`null`: the model's own).
    pub template: Option<String>,
}

/// Every sampling parameter, with the seed the sampler actually used.
#[derive(Clone, Debug, Serialize)]
pub struct ParamsRecord {
    /// Every sampler field, `seed` set to the seed actually used.
    #[serde(flatten)]
    pub sampling: crate::engine::sampler::SamplingParams,
    /// Whether the seed was given (else drawn at random and recorded here).
    pub seed_given: bool,
    /// 0: until EOS or the context is full.
    pub max_tokens: usize,
    /// 0: no window.
    pub max_kv_size: usize,
    pub stop: Vec<String>,
}

/// Generation statistics.
#[derive(Clone, Debug, Serialize)]
pub struct StatsRecord {
    pub prompt_tokens: usize,
    pub cached_tokens: usize,
    pub output_tokens: usize,
    pub ttft_ms: f64,
    pub prefill_tok_s: f64,
    pub decode_tok_s: f64,
    pub total_ms: f64,
    pub finish_reason: &'static str,
    pub stop_string: Option<String>,
}

impl From<&Stats> for StatsRecord {
    fn from(s: &Stats) -> Self {
        StatsRecord {
            prompt_tokens: s.prompt_tokens,
            cached_tokens: s.cached_tokens,
            output_tokens: s.generated_tokens,
            ttft_ms: s.ttft_ms,
            prefill_tok_s: s.prefill_tok_s,
            decode_tok_s: s.decode_tok_s,
            total_ms: s.total_ms,
            finish_reason: s.finish_reason.as_str(),
            stop_string: s.stop_string.clone(),
        }
    }
}

/// The `.json` sidecar of one output.
#[derive(Clone, Debug, Serialize)]
pub struct Sidecar {
    pub lmwb_version: &'static str,
    pub set: String,
    pub output: String,
    pub prompt: PromptRecord,
    pub model: ModelRecord,
    pub params: ParamsRecord,
    pub stats: StatsRecord,
    /// The output has a reasoning section (and whether it was left unclosed).
    pub reasoning: bool,
    pub reasoning_unclosed: bool,
    pub started_at: String,
    pub finished_at: String,
}

/// Write an item's sidecar, then its `.md` (the `.md` last: it is what marks the item done),
/// and remove an `.error.txt` from an earlier failure.
pub fn write_done(files: &ItemFiles, md: &str, sidecar: &Sidecar) -> std::io::Result<()> {
    let mut json = serde_json::to_vec_pretty(sidecar).map_err(std::io::Error::other)?;
    json.push(b'\n');
    atomic_write(&files.json, &json)?;
    atomic_write(&files.md, md.as_bytes())?;
    match std::fs::remove_file(&files.error) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_text_comes_back_from_the_markdown() {
        for raw in ["<think>a\nb</think>The **answer**.", "Only an answer."] {
            let (md, _) = markdown(raw);
            let back = raw_from_markdown(&md);
            let (a, b) = (reasoning::split(raw), reasoning::split(&back));
            assert_eq!(a.answer.trim(), b.answer.trim(), "{md}");
            assert_eq!(a.reasoning_text().trim(), b.reasoning_text().trim(), "{md}");
        }
        let (md, _) = markdown("<think>cut off");
        assert_eq!(raw_from_markdown(&md), "<think>cut off</think>");
    }

    #[test]
    fn reasoning_goes_below_the_answer() {
        let (md, split) = markdown("<think>step one\nstep two</think>\n\nThe answer is 4.");
        assert_eq!(split.answer.trim(), "The answer is 4.");
        assert!(md.starts_with("The answer is 4.\n"), "{md}");
        let r = md.find("## Reasoning").expect("a reasoning section");
        assert!(md[r..].contains("step one\nstep two"), "{md}");
        assert!(!md[..r].contains("step"), "{md}");

        let (md, _) = markdown(
            "<|channel|>analysis<|message|>Think.<|end|><|start|>assistant<|channel|>final<|message|>Done.",
        );
        assert!(
            md.starts_with("Done.\n") && md.contains("## Reasoning\n\nThink."),
            "{md}"
        );

        let (md, _) = markdown("Plain answer.");
        assert_eq!(md, "Plain answer.\n");

        let (md, split) = markdown("<think>never closed");
        assert!(split.unclosed);
        assert!(
            md.contains("before the reasoning was closed") && md.contains("never closed"),
            "{md}"
        );
    }

    #[test]
    fn atomic_write_replaces_whole_files_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.md");
        atomic_write(&p, b"one").unwrap();
        atomic_write(&p, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        std::fs::write(dir.path().join(".lmwb-x.tmp"), "half").unwrap();
        std::fs::write(dir.path().join(".keep"), "").unwrap();
        assert_eq!(remove_stale_temps(dir.path()), 1);
        assert!(dir.path().join(".keep").exists());
    }

    #[test]
    fn sha_prefix_of_file_and_folder() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("m.safetensors");
        std::fs::write(&f, b"abc").unwrap();
        std::fs::write(dir.path().join("config.json"), b"{}").unwrap();
        // sha256("abc") = ba7816bf8f01cfea…
        assert_eq!(model_sha256(&f).unwrap(), "ba7816bf8f01cfea");
        assert_eq!(model_sha256(dir.path()).unwrap(), "ba7816bf8f01cfea");
        assert!(now_rfc3339().ends_with('Z'));
    }
}
