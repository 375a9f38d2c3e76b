//! The Hugging Face hub cache: `models--ORG--NAME/{blobs/<sha>, refs/main,
//! snapshots/<commit>/<file> -> ../../blobs/<sha>}`, read in place.
//!
//! One snapshot per repo: the commit `refs/main` names, else the newest snapshot. In it, every
//! `.gguf` file is a model named `org/name/<file stem>` (`org/name/<sub>/<stem>` in a
//! subfolder), and a snapshot holding `config.json` and `.safetensors` files is one model named
//! `org/name`; all lower-case. A GGUF's path is its snapshot link; the blob it points at is
//! named by the file's sha256 (LFS), which becomes the model's hash without reading it.

use super::{is_gguf_name, is_safetensors_dir, sorted_entries, Location, Source};
use std::path::{Path, PathBuf};

/// `models--org--name` → `org/name` (hub repo names cannot hold `--`).
pub fn repo_id(dir_name: &str) -> Option<String> {
    let rest = dir_name.strip_prefix("models--")?;
    (!rest.is_empty()).then(|| rest.replace("--", "/"))
}

/// The snapshot folder to read and its commit: `refs/main`'s, else the newest one.
pub fn snapshot(repo_dir: &Path) -> Option<(PathBuf, String)> {
    let snaps = repo_dir.join("snapshots");
    if let Ok(main) = std::fs::read_to_string(repo_dir.join("refs").join("main")) {
        let commit = main.trim();
        let dir = snaps.join(commit);
        if !commit.is_empty() && !commit.contains(['/', '\\']) && dir.is_dir() {
            return Some((dir, commit.to_string()));
        }
    }
    let mut all: Vec<(std::time::SystemTime, PathBuf)> = sorted_entries(&snaps)
        .into_iter()
        .filter(|p| p.is_dir())
        .map(|p| {
            let t = std::fs::metadata(&p)
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            (t, p)
        })
        .collect();
    // Newest first; the name breaks ties so the pick is the same on every scan.
    all.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let (_, dir) = all.into_iter().next()?;
    let commit = dir.file_name()?.to_string_lossy().to_string();
    Some((dir, commit))
}

/// The blob a snapshot link points at (`../../blobs/<name>`), and the sha256 its name is
/// when it is an LFS blob. Read from the link itself, so a blob that is in turn a link
/// elsewhere keeps its name.
fn blob_of(repo_dir: &Path, link: &Path) -> (Option<PathBuf>, Option<String>) {
    let target = std::fs::read_link(link).ok();
    let name = target
        .as_ref()
        .and_then(|t| t.file_name())
        .map(|n| n.to_string_lossy().to_string());
    let blob = name
        .as_ref()
        .map(|n| repo_dir.join("blobs").join(n))
        .filter(|b| b.is_file())
        .or_else(|| std::fs::canonicalize(link).ok().filter(|b| b != link));
    let sha = name.filter(|n| super::is_sha256_hex(n));
    (blob, sha)
}

fn location(repo: &str, commit: &str, name: String, path: PathBuf, repo_dir: &Path) -> Location {
    let mut loc = Location::at(Source::HuggingFace, name, path);
    if loc.is_file() {
        let (blob, sha) = blob_of(repo_dir, &loc.path);
        loc.blob = blob;
        loc.expected_sha256 = sha.or(loc.expected_sha256.take());
    }
    loc.origin = Some(format!("{repo}@{commit}"));
    loc
}

fn scan_snapshot(
    repo_dir: &Path,
    repo: &str,
    commit: &str,
    dir: &Path,
    rel: &str,
    depth: usize,
    out: &mut Vec<Location>,
) {
    let base = if rel.is_empty() {
        repo.to_lowercase()
    } else {
        format!("{}/{}", repo.to_lowercase(), rel.to_lowercase())
    };
    if is_safetensors_dir(dir) {
        out.push(location(
            repo,
            commit,
            base.clone(),
            dir.to_path_buf(),
            repo_dir,
        ));
    }
    for p in sorted_entries(dir) {
        let file_name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        if p.is_file() && is_gguf_name(&p) {
            let stem = super::lower_stem(&p);
            out.push(location(
                repo,
                commit,
                format!("{base}/{stem}"),
                p,
                repo_dir,
            ));
        } else if p.is_dir() && depth > 0 {
            let sub = if rel.is_empty() {
                file_name
            } else {
                format!("{rel}/{file_name}")
            };
            scan_snapshot(repo_dir, repo, commit, &p, &sub, depth - 1, out);
        }
    }
}

/// Every model in the hub caches `hubs` (caches that do not exist are skipped).
pub fn scan(hubs: &[PathBuf]) -> Vec<Location> {
    let mut out = Vec::new();
    for hub in hubs {
        for repo_dir in sorted_entries(hub) {
            let Some(repo) = repo_dir
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(repo_id)
            else {
                continue;
            };
            if let Some((snap, commit)) = snapshot(&repo_dir) {
                scan_snapshot(&repo_dir, &repo, &commit, &snap, "", 2, &mut out);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids_from_folder_names() {
        assert_eq!(
            repo_id("models--HuggingFaceTB--SmolLM2-135M").as_deref(),
            Some("HuggingFaceTB/SmolLM2-135M")
        );
        assert_eq!(repo_id("models--gpt2").as_deref(), Some("gpt2"));
        assert_eq!(repo_id("datasets--a--b"), None);
        assert_eq!(repo_id("models--"), None);
    }
}
