//! The Hugging Face cache layout, shared with `huggingface_hub`, `hf-hub` and every tool
//! built on them: `<cache>/models--ORG--NAME/{blobs/<etag>, refs/<revision>,
//! snapshots/<commit>/<file> -> ../../blobs/<etag>}`.
//!
//! Where the cache is: `HF_HUB_CACHE`, else `$HF_HOME/hub`, else
//! `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub` (as huggingface_hub).

use std::path::{Component, Path, PathBuf};

/// A hub repo id (`ORG/NAME`, or a legacy one-part id such as `gpt2`), checked to be safe as
/// a URL part and a folder name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoId(String);

impl RepoId {
    /// `None` unless `s` is one or two parts of letters, digits, `-`, `_` and `.` (not `..`).
    pub fn parse(s: &str) -> Option<RepoId> {
        let parts: Vec<&str> = s.split('/').collect();
        let part_ok = |p: &str| {
            !p.is_empty()
                && p.len() <= 96
                && !p.starts_with('.')
                && !p.contains("..")
                && !p.contains("--")
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        (parts.len() <= 2 && parts.iter().all(|p| part_ok(p))).then(|| RepoId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The repo's folder in the cache: `models--ORG--NAME`.
    pub fn folder_name(&self) -> String {
        format!("models--{}", self.0.replace('/', "--"))
    }
}

impl std::fmt::Display for RepoId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A file path inside a repo (`model.gguf`, `Q4_K_M/part-00001-of-00002.gguf`): relative,
/// `/`-separated, no `..`, nothing a snapshot folder could be escaped with.
pub fn safe_repo_file(s: &str) -> bool {
    !s.is_empty()
        && !s.contains('\\')
        && !s.contains('\0')
        && Path::new(s)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// A name the hub gives that becomes one path component (a commit hash, an etag).
pub fn safe_component(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The cache folder from the environment (`var` reads one variable).
pub fn hub_cache_dir(var: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(dir) = var("HF_HUB_CACHE").or_else(|| var("HUGGINGFACE_HUB_CACHE")) {
        return crate::config::expand_home(&dir);
    }
    hf_home(var).join("hub")
}

/// Whether the environment names the cache itself (`HF_HUB_CACHE`, `HUGGINGFACE_HUB_CACHE`,
/// `HF_HOME`), rather than leaving it to the defaults.
pub fn cache_is_set(var: &dyn Fn(&str) -> Option<String>) -> bool {
    ["HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME"]
        .iter()
        .any(|k| var(k).is_some())
}

/// `HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `$HOME/.cache/huggingface`.
pub fn hf_home(var: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(home) = var("HF_HOME") {
        return crate::config::expand_home(&home);
    }
    let cache = var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| crate::config::expand_home("~/.cache"));
    cache.join("huggingface")
}

/// One repo's part of the cache.
#[derive(Clone, Debug)]
pub struct CacheRepo {
    pub dir: PathBuf,
}

impl CacheRepo {
    pub fn new(cache: &Path, repo: &RepoId) -> CacheRepo {
        CacheRepo {
            dir: cache.join(repo.folder_name()),
        }
    }

    pub fn blob(&self, etag: &str) -> PathBuf {
        self.dir.join("blobs").join(etag)
    }

    pub fn snapshot(&self, commit: &str) -> PathBuf {
        self.dir.join("snapshots").join(commit)
    }

    fn ref_path(&self, revision: &str) -> PathBuf {
        self.dir.join("refs").join(revision)
    }

    /// The commit a revision points at in the cache: `refs/<revision>`, or the revision
    /// itself when it is a commit with a snapshot.
    pub fn commit_for(&self, revision: &str) -> Option<String> {
        if let Ok(c) = std::fs::read_to_string(self.ref_path(revision)) {
            let c = c.trim().to_string();
            if safe_component(&c) {
                return Some(c);
            }
        }
        (safe_component(revision) && self.snapshot(revision).is_dir()).then(|| revision.into())
    }

    /// `snapshots/<commit of revision>/<file>` when that file is in the cache.
    pub fn cached_file(&self, revision: &str, file: &str) -> Option<PathBuf> {
        let p = self.snapshot(&self.commit_for(revision)?).join(file);
        p.is_file().then_some(p)
    }

    /// Write `refs/<revision>` = `commit` (revisions such as `refs/pr/1` make subfolders).
    pub fn write_ref(&self, revision: &str, commit: &str) -> std::io::Result<()> {
        if revision == commit {
            return Ok(());
        }
        let p = self.ref_path(revision);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(p, commit)
    }

    /// Link `snapshots/<commit>/<file>` to `blob` with a relative symlink (a copy where the
    /// system has no symlinks). Returns the link's path.
    pub fn link(&self, commit: &str, file: &str, blob: &Path) -> std::io::Result<PathBuf> {
        let link = self.snapshot(commit).join(file);
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if link.symlink_metadata().is_ok() {
            std::fs::remove_file(&link)?;
        }
        // snapshots/<commit>/<file…> -> ../../(one more per folder in file)/blobs/<etag>
        let depth = Path::new(file).components().count() + 1;
        let mut target = PathBuf::new();
        for _ in 0..depth {
            target.push("..");
        }
        target.push("blobs");
        target.push(blob.file_name().unwrap_or_default());
        #[cfg(unix)]
        std::os::unix::fs::symlink(&target, &link)?;
        #[cfg(not(unix))]
        std::fs::copy(blob, &link).map(|_| ())?;
        Ok(link)
    }

    /// Every snapshot entry (file or symlink) under `snapshots/`, as paths.
    pub fn snapshot_entries(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk(&self.dir.join("snapshots"), &mut out);
        out
    }

    /// Remove the folders under the repo left empty (deepest first), refs whose snapshot is
    /// gone, and the repo folder itself when nothing is left in it.
    pub fn prune(&self) {
        remove_empty_dirs(&self.dir.join("snapshots"));
        let refs = self.dir.join("refs");
        let mut ref_files = Vec::new();
        walk(&refs, &mut ref_files);
        for r in ref_files {
            let gone = std::fs::read_to_string(&r)
                .map(|c| !self.snapshot(c.trim()).exists())
                .unwrap_or(false);
            if gone {
                let _ = std::fs::remove_file(&r);
            }
        }
        remove_empty_dirs(&self.dir);
    }
}

/// Files and symlinks under `dir`, recursively (symlinks are not followed).
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.filter_map(Result::ok) {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => walk(&p, out),
            Ok(_) => out.push(p),
            Err(_) => {}
        }
    }
}

/// Remove `dir` and the folders inside it that hold nothing (returns whether `dir` went).
fn remove_empty_dirs(dir: &Path) -> bool {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return false;
    };
    let mut empty = true;
    for e in rd.filter_map(Result::ok) {
        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if !(is_dir && remove_empty_dirs(&e.path())) {
            empty = false;
        }
    }
    empty && std::fs::remove_dir(dir).is_ok()
}

/// The files of a snapshot folder, as repo paths (`a/b.gguf`), sorted.
pub fn snapshot_files(snapshot: &Path) -> Vec<String> {
    let mut files = Vec::new();
    walk(snapshot, &mut files);
    let mut out: Vec<String> = files
        .iter()
        .filter(|p| p.is_file())
        .filter_map(|p| p.strip_prefix(snapshot).ok())
        .map(|p| p.to_string_lossy().replace('\\', "/"))
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids() {
        for ok in [
            "gpt2",
            "org/name",
            "HuggingFaceTB/SmolLM2-135M-Instruct",
            "a.b_c/d-e.GGUF",
        ] {
            assert!(RepoId::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            "/",
            "a/",
            "/a",
            "a/b/c",
            "../x",
            "a/..",
            "a/.hidden",
            "a b/c",
            "a--b/c",
            "a/b:c",
        ] {
            assert!(RepoId::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(
            RepoId::parse("org/name").unwrap().folder_name(),
            "models--org--name"
        );
    }

    #[test]
    fn repo_files_and_components() {
        assert!(safe_repo_file("model.gguf"));
        assert!(safe_repo_file("Q4_K_M/model-00001-of-00002.gguf"));
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "a\\b", "./x"] {
            assert!(!safe_repo_file(bad), "{bad}");
        }
        assert!(safe_component("0123abcdef"));
        for bad in ["", "..", "a/b", "W/\"x\"", "a b"] {
            assert!(!safe_component(bad), "{bad}");
        }
    }

    #[test]
    fn cache_dir_from_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            hub_cache_dir(&env(&[("HF_HUB_CACHE", "/c"), ("HF_HOME", "/h")])),
            PathBuf::from("/c")
        );
        assert_eq!(
            hub_cache_dir(&env(&[("HF_HOME", "/h")])),
            PathBuf::from("/h/hub")
        );
        assert_eq!(
            hub_cache_dir(&env(&[("XDG_CACHE_HOME", "/x")])),
            PathBuf::from("/x/huggingface/hub")
        );
    }

    #[cfg(unix)]
    #[test]
    fn link_ref_prune() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = CacheRepo::new(tmp.path(), &RepoId::parse("o/n").unwrap());
        std::fs::create_dir_all(repo.dir.join("blobs")).unwrap();
        std::fs::write(repo.blob("abc"), b"hello").unwrap();
        let link = repo.link("c1", "sub/m.gguf", &repo.blob("abc")).unwrap();
        assert_eq!(std::fs::read(&link).unwrap(), b"hello");
        repo.write_ref("main", "c1").unwrap();
        assert_eq!(repo.cached_file("main", "sub/m.gguf"), Some(link.clone()));
        assert_eq!(
            snapshot_files(&repo.snapshot("c1")),
            vec!["sub/m.gguf".to_string()]
        );
        std::fs::remove_file(&link).unwrap();
        repo.prune();
        assert!(
            !repo.dir.join("refs/main").exists(),
            "a ref to a gone snapshot goes"
        );
        assert!(repo.blob("abc").exists());
        std::fs::remove_file(repo.blob("abc")).unwrap();
        repo.prune();
        assert!(!repo.dir.exists(), "an emptied repo folder goes");
    }
}
